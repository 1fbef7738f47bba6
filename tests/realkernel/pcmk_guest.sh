#!/bin/sh
# One node of the pcmk stack as Debian 12 runs it: corosync, dlm_controld and
# a pcmk OCFS2 volume on the booted kernel, then our init script's stopping
# verbs under it.  Every command is shown after "$", its exit status as
# "[exit N]" (doc/pcmk.md quotes such a run).
#
# Runs as root in a virtme-ng guest whose root is the host's, read-only,
# with /etc as an overlay and /tmp/pcmk-share shared with the host:
#   vng --run 6.1.0-57-amd64 --disable-kvm --verbose --memory 1G \
#       --overlay-rwdir /etc --rwdir /tmp/pcmk-share \
#       --exec 'TREE=/path/to/o2cb PY=/path/to/python3 sh /tmp/pcmk-share/script.sh'
# TREE: the source tree whose init script is run (python3 -m o2cb_init);
# BEFORE (optional): another tree whose stop is run last, to compare;
# PY: an interpreter that has click, configobj and psutil.
SHARE=/tmp/pcmk-share
FIXED=${TREE:?TREE names the source tree of the init script to run}
BEFORE=${BEFORE:-$SHARE/before}
CLUSTER=ocfs2
PY=${PY:-python3}

run() {
    echo "\$ $*"
    "$@" 2>&1
    echo "[exit $?]"
}
section() { echo; echo "=== $* ==="; }
o2cb_tool() {  # TREE VERB: our init script, from a source tree
    tree=$1; shift
    echo "\$ (cd $tree && python3 -m o2cb_init $*)"
    (cd "$tree" && "$PY" -m o2cb_init "$@") 2>&1
    echo "[exit $?]"
}
state() {
    run sh -c "grep -E 'configfs|ocfs2|dlm' /proc/mounts"
    run ls /sys/kernel/config/dlm
    run sh -c "grep -E '^(dlm|configfs|ocfs2[a-z_]*) ' /proc/modules | cut -d' ' -f1-4"
    run ls /sys/kernel/dlm
    run ls /sys/kernel/config
}

section kernel
run uname -r
run hostname

section "corosync: not running yet"
run corosync-quorumtool -s
run corosync-cmapctl -g totem.cluster_name

# Two nodes in the nodelist, the second absent and no two_node: one vote
# of two expected, so the first phase is not quorate.
mkdir -p /etc/corosync /var/log/corosync /etc/dlm
cat > /etc/corosync/corosync.conf <<CONF
totem {
    version: 2
    cluster_name: $CLUSTER
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 10000
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: virtme-ng
        nodeid: 1
    }
    node {
        ring0_addr: 10.99.99.2
        name: absent
        nodeid: 2
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: no
    to_logfile: yes
    logfile: /tmp/corosync.log
    to_syslog: no
}
CONF
section "corosync: started, one vote of two"
corosync -f > /tmp/corosync.out 2>&1 &
COROSYNC=$!
i=0
until corosync-cmapctl -g totem.cluster_name >/dev/null 2>&1 || [ $i -ge 120 ]; do
    sleep 1; i=$((i + 1))
done
echo "corosync answered cmap after ${i}s"
sleep 15
run corosync-cmapctl -g totem.cluster_name
run corosync-quorumtool -s
run corosync-quorumtool -l
run corosync-quorumtool -p

section "configfs and dlm, before dlm_controld"
run modprobe configfs
run mount -t configfs none /sys/kernel/config
run ls /sys/kernel/config
run modprobe dlm
run ls -R /sys/kernel/config/dlm
run ls -la /sys/kernel/dlm
run sh -c "grep -E '^(dlm|configfs) ' /proc/modules | cut -d' ' -f1-4"
run sh -c "ls -l /dev | grep -i dlm"
mkdir -p /dev/misc
for name in dlm-control dlm-monitor dlm_plock; do
    [ -e /dev/$name ] && ln -sf /dev/$name /dev/misc/$name
done
echo "enable_fencing=0" > /etc/dlm/dlm.conf

section "dlm_controld: started while not quorate"
dlm_controld --foreground > /tmp/dlm_controld.out 2>&1 &
DLMC=$!
i=0
until dlm_tool status >/dev/null 2>&1 || [ $i -ge 120 ]; do sleep 1; i=$((i + 1)); done
echo "dlm_tool status answered after ${i}s"
sleep 5
run dlm_tool status
run ls -R /sys/kernel/config/dlm
run sh -c "grep -E '^(dlm|configfs) ' /proc/modules | cut -d' ' -f1-4"

section "quorum: expected votes set to 1"
run corosync-quorumtool -e 1
i=0
until corosync-quorumtool -s >/dev/null 2>&1 || [ $i -ge 120 ]; do sleep 1; i=$((i + 1)); done
echo "quorate after ${i}s"
run corosync-quorumtool -s
run corosync-quorumtool -l
run corosync-quorumtool -p
sleep 5
run dlm_tool status
run dlm_tool ls
run ls -R /sys/kernel/config/dlm

section "a pcmk volume"
run modprobe ocfs2_stack_user
run modprobe ocfs2
run cat /sys/fs/ocfs2/loaded_cluster_plugins
run cat /sys/fs/ocfs2/dlm_recover_callback_support
run cat /sys/fs/ocfs2/cluster_stack
echo pcmk > /sys/fs/ocfs2/cluster_stack
run cat /sys/fs/ocfs2/cluster_stack
run modprobe loop
truncate -s 256M /tmp/vol.img
DEV=$(losetup -f --show /tmp/vol.img)
echo "device $DEV"
run mkfs.ocfs2 -q -F -N 2 --cluster-stack=pcmk --cluster-name=$CLUSTER "$DEV"
run blkid "$DEV"
run mounted.ocfs2 -d
mkdir -p /tmp/mnt
run mount -t ocfs2 "$DEV" /tmp/mnt
run sh -c "grep ocfs2 /proc/mounts"
run sh -c "echo written > /tmp/mnt/file && cat /tmp/mnt/file"
run ls /sys/kernel/dlm
run sh -c "for d in /sys/kernel/dlm/*; do echo \$d; ls \$d; done"
run dlm_tool ls
run dlm_tool status
run ls -R /sys/kernel/config/dlm
run cat /sys/fs/ocfs2/active_cluster_plugin

section "another lockspace (not OCFS2)"
run dlm_tool join lvm_test
# Without udev the lockspace's own misc device has no /dev/misc link either.
sleep 3
for dev in /dev/dlm_*; do
    case $dev in /dev/dlm_plock) ;; *) ln -sf "$dev" /dev/misc/"${dev#/dev/}" ;; esac
done
run ls /sys/kernel/dlm
run dlm_tool ls

section "our init script, O2CB_STACK=pcmk, volume mounted"
cat > /etc/default/o2cb <<CONF
O2CB_ENABLED=true
O2CB_STACK=pcmk
O2CB_BOOTCLUSTER=$CLUSTER
CONF
state
for verb in status stop offline unload force-offline; do
    o2cb_tool "$FIXED" "$verb"
done
state
run cat /tmp/mnt/file

section "volume unmounted, lvm_test lockspace still there: stop goes, dlm and configfs stay"
run umount /tmp/mnt
run ls /sys/kernel/dlm
o2cb_tool "$FIXED" stop
state
section "only dlm_controld's cluster left: configfs stays"
run dlm_tool leave lvm_test
run ls /sys/kernel/dlm
o2cb_tool "$FIXED" stop
state

if [ -d "$BEFORE/o2cb_init" ]; then
section "the same stop with $BEFORE, volume mounted again"
run mount -t ocfs2 "$DEV" /tmp/mnt
run ls /sys/kernel/dlm
o2cb_tool "$BEFORE" stop
state
run dlm_tool ls
run cat /tmp/mnt/file
run umount /tmp/mnt
run mount -t ocfs2 "$DEV" /tmp/mnt
state
fi

section "stopping the daemons"
kill $DLMC; sleep 3
kill $COROSYNC; sleep 5
run sh -c "ps -e | grep -E 'corosync|dlm_controld'"
section "logs"
run tail -n 20 /tmp/dlm_controld.out
run tail -n 20 /tmp/corosync.log
echo "script done"
