#!/bin/sh
# modprobe, mount and umount of the benchmark's fake kernel, in one small
# POSIX shell script (installed under each name), so that both
# implementations pay the same small price per call.  The state is plain
# files under the root: $O2CB_ROOT for ours (it sets the variable for the
# commands it runs), "/" for the reference, which runs chrooted into it.
#   proc/modules, proc/filesystems, proc/mounts   in the kernel's formats
#   sys/fs/ocfs2/*, sys/fs/o2cb/interface_revision while their modules are in
#   sys/kernel/config/cluster                       while ocfs2_nodemanager is in
#   .bench/state/loaded                             loaded modules, load order
# Refcounts are the dependent modules plus mounts (configfs, ocfs2_dlmfs,
# ocfs2); configfs items do not pin ocfs2_nodemanager here.
R=${O2CB_ROOT%/}
S=$R/.bench/state
CFG=$R/sys/kernel/config
GLUE=$R/sys/fs/ocfs2

deps() {
    case $1 in
        configfs|ocfs2_stackglue) D= ;;
        ocfs2_nodemanager) D=configfs ;;
        ocfs2_dlm) D=ocfs2_nodemanager ;;
        ocfs2_stack_o2cb) D="ocfs2_dlm ocfs2_nodemanager ocfs2_stackglue" ;;
        ocfs2_dlmfs) D="ocfs2_stackglue ocfs2_nodemanager" ;;
        ocfs2) D=ocfs2_stackglue ;;
        *) return 1 ;;
    esac
}

# RC: how many hold module $1; U: its users column
refcount() {
    RC=0 U=
    for other in $L; do
        deps "$other"
        case " $D " in *" $1 "*) RC=$((RC + 1)) U="$other,$U" ;; esac
    done
    case $1 in configfs|ocfs2_dlmfs|ocfs2) ;; *) return ;; esac
    while read -r _dev _mp fstype _rest; do
        [ "$fstype" = "$1" ] && RC=$((RC + 1))
    done < "$R/proc/mounts"
}

render_modules() {
    out=
    for m in $L; do
        refcount "$m"
        out="$m 16384 $RC ${U:--} Live 0x0000000000000000
$out"
    done
    printf '%s' "$out" > "$R/proc/modules"
}

add_filesystem() { printf '%s\t%s\n' "$2" "$1" >> "$R/proc/filesystems"; }

drop_line() {  # drop_line FILE WORD: remove the lines whose last word is WORD
    kept=
    while IFS= read -r line; do
        case $line in *[[:space:]]"$2"|"$2") ;; *) kept="$kept$line
" ;; esac
    done < "$1"
    printf '%s' "$kept" > "$1"
}

loaded_effects() {
    case $1 in
        configfs) add_filesystem configfs nodev ;;
        ocfs2_stackglue)
            mkdir -p "$GLUE"
            echo o2cb > "$GLUE/cluster_stack"
            : > "$GLUE/loaded_cluster_plugins"
            echo > "$GLUE/active_cluster_plugin"
            echo 0.0 > "$GLUE/max_locking_protocol"
            echo 1 > "$GLUE/dlm_recover_callback_support" ;;
        ocfs2_nodemanager)
            mkdir -p "$CFG/cluster" "$R/sys/fs/o2cb"
            echo 5 > "$R/sys/fs/o2cb/interface_revision" ;;
        ocfs2_stack_o2cb) echo o2cb >> "$GLUE/loaded_cluster_plugins" ;;
        ocfs2_dlmfs) add_filesystem ocfs2_dlmfs nodev ;;
        ocfs2) add_filesystem ocfs2 ""; echo 1.0 > "$GLUE/max_locking_protocol" ;;
    esac
}

unloaded_effects() {
    case $1 in
        configfs) drop_line "$R/proc/filesystems" configfs ;;
        ocfs2_stackglue) rm -rf "$GLUE" ;;
        ocfs2_nodemanager) rm -rf "$CFG/cluster" "$R/sys/fs/o2cb" ;;
        ocfs2_stack_o2cb) drop_line "$GLUE/loaded_cluster_plugins" o2cb ;;
        ocfs2_dlmfs) drop_line "$R/proc/filesystems" ocfs2_dlmfs ;;
        ocfs2) drop_line "$R/proc/filesystems" ocfs2; echo 0.0 > "$GLUE/max_locking_protocol" ;;
    esac
}

load() {
    case " $L " in *" $1 "*) return 0 ;; esac
    if ! deps "$1"; then
        echo "modprobe: FATAL: Module $1 not found in directory /lib/modules/fake" >&2
        exit 1
    fi
    local m=$1 d ds="$D"
    for d in $ds; do load "$d"; done
    L="$L $m"
    loaded_effects "$m"
}

remove() {  # remove MODULE [first]: the module, then its dependencies nothing uses
    local m=$1 first=$2 d ds
    case " $L " in *" $m "*) ;; *)
        [ -z "$first" ] && return 0
        echo "modprobe: FATAL: Module $m is not in kernel." >&2
        exit 1 ;;
    esac
    refcount "$m"
    if [ "$RC" -gt 0 ]; then
        [ -z "$first" ] && return 0
        echo "modprobe: FATAL: Module $m is in use." >&2
        exit 1
    fi
    unloaded_effects "$m"
    rest=
    for d in $L; do [ "$d" = "$m" ] || rest="$rest $d"; done
    L=$rest
    deps "$m"
    ds=$D
    for d in $ds; do remove "$d"; done
}

mountpoint_of() {  # the mount point as the kernel lists it: below the root
    MP=$1
    case $MP in "$R"/*) [ -n "$R" ] && MP=${MP#"$R"} ;; esac
}

read -r L < "$S/loaded"
show_depends() {  # show_depends MODULE: what `modprobe --show-depends` prints
    local m=$1 d ds
    deps "$m" || return 1
    ds=$D
    for d in $ds; do show_depends "$d"; done
    case " $SHOWN " in *" $m "*) ;; *)
        SHOWN="$SHOWN $m"
        echo "insmod /lib/modules/fake/kernel/fs/$m.ko " ;;
    esac
}

case ${0##*/} in
modprobe)
    unload= show= names=
    for arg; do
        case $arg in
            -r|-rs|-sr|--remove) unload=1 ;;
            --show-depends) show=1 ;;
            -*) ;;
            *) name=$arg names="$names $arg" ;;
        esac
    done
    if [ -n "$show" ]; then
        rc=0
        for name in $names; do
            SHOWN=
            if ! show_depends "$name"; then
                echo "modprobe: WARNING: Module $name not found in directory /lib/modules/fake" >&2
                rc=1
            fi
        done
        exit "$rc"
    fi
    if [ -n "$unload" ]; then remove "$name" first; else load "$name"; fi
    echo "$L" > "$S/loaded"
    render_modules ;;
mount)
    if [ $# -eq 0 ]; then
        while read -r dev mp fstype opts _rest; do
            echo "$dev on $mp type $fstype ($opts)"
        done < "$R/proc/mounts"
        exit 0
    fi
    [ "$1" = -t ] || { echo "mount: the fake mount takes -t FSTYPE DEVICE DIR" >&2; exit 1; }
    fstype=$2 dev=$3
    mountpoint_of "$4"
    known=
    while read -r a b; do [ "${b:-$a}" = "$fstype" ] && known=1; done < "$R/proc/filesystems"
    if [ -z "$known" ]; then
        echo "mount: $4: unknown filesystem type '$fstype'." >&2; exit 32
    fi
    while read -r d m _rest; do
        if [ "$m" = "$MP" ]; then
            echo "mount: $4: $d already mounted on $4." >&2; exit 32
        fi
    done < "$R/proc/mounts"
    [ -d "$R$MP" ] || { echo "mount: $4: mount point does not exist." >&2; exit 32; }
    echo "$dev $MP $fstype rw,relatime 0 0" >> "$R/proc/mounts"
    render_modules ;;
umount)
    mountpoint_of "$1"
    kept= found=
    while IFS= read -r line; do
        set -- $line
        if [ "$2" = "$MP" ] && [ -z "$found" ]; then found=1; else kept="$kept$line
"; fi
    done < "$R/proc/mounts"
    [ -n "$found" ] || { echo "umount: $MP: not mounted." >&2; exit 32; }
    printf '%s' "$kept" > "$R/proc/mounts"
    render_modules ;;
*)
    echo "fakekernel: called as ${0##*/}" >&2; exit 1 ;;
esac
