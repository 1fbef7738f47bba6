#!/bin/sh
# o2hbmonitor of the benchmark's fake kernel: daemonises and idles like the
# real one (whose parent returns at once), so that starting it costs what it
# costs.  It leaves its pid in run/ so the benchmark can end it after a run
# whose own stop could not (the reference's killall sees the fake /proc).
if [ "$1" = --daemon ]; then
    echo $$ > "${O2CB_ROOT%/}/run/o2hbmonitor.fake.pid"
    trap 'kill $! 2>/dev/null; exit 0' TERM
    sleep 30 &
    wait
    exit 0
fi
"$0" --daemon </dev/null >/dev/null 2>&1 &
exit 0
