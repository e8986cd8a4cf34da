#!/bin/bash
# What an idle switch with a vhost-user port costs, for each switch given (interleaved over
# the rounds): a vecswitch daemon (PMD on core 1, the daemon's default busy-poll=false) with
# one vhost-user port, first with no guest, then with a quiet one (dpdk-testpmd rxonly with
# nothing to receive, forwarding on core 0); for each, over a window, the PMD thread's CPU time (/proc, 10 ms
# ticks, as a share of a core) and how often it went to sleep (pmd-stats).
#   benches/vhost/idle.sh [--rounds R] [--window S] SWITCH...
# SWITCH: a vecswitch binary, or `ovs-dpdk` (the peer: OVS-DPDK 3.1 with a dpdkvhostuser
# port, PMD on core 1, as it runs by default) or `ovs-dpdk-sleep` (the same with
# `pmd-maxsleep=10000`, 3.1's longest idle sleep, in µs), whose sleeps are not counted.
# Needs root and both cores (testpmd runs without hugepages; OVS-DPDK takes 512 2 MiB
# hugepages on a mount of its own); removes everything it made.
set -euo pipefail

ROUNDS=2
WINDOW=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --window) WINDOW=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: idle.sh [--rounds R] [--window S] BINARY..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "idle.sh: needs root" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/vswvidle.XXXXXX)
HUGE=$WORK/huge
TAG=vi$$
. "$REPO/benches/lib.sh"

SW=
CT=
stop_run() {
    bench_kill "$CT"
    bench_stop_ovs
    bench_kill "$SW"
    CT= SW=
    rm -rf "/var/run/dpdk/$TAG" "/var/run/dpdk/${TAG}ovs" "$WORK/ovs" 2>/dev/null
    return 0
}
bench_traps

bench_install
case " $* " in
    *" ovs-dpdk"*)
        bench_ovs_dpdk
        [ -n "$OVS_DPDK" ] || { echo "idle.sh: ovs-vswitchd-dpdk not available" >&2; exit 1; }
        bench_huge 512
        ;;
esac
cat > "$WORK/vs.toml" <<TOML
pmd-cores = [1]
[[bridge]]
name = "$TAG"
local = false
[[bridge.port]]
name = "vhu0"
type = "vhost-user"
socket = "$WORK/a.sock"
TOML

# The PMD thread's user and system ticks so far (vecswitch's pmd0, OVS's pmd-c01/...).
pmd_ticks() {
    local t
    for t in /proc/"$SW"/task/*; do
        case "$(cat "$t/comm")" in
            pmd0 | pmd-c01*) awk '{print $14 + $15}' "$t/stat" ;;
        esac
    done
}

pmd_sleeps() {
    case "$VS" in
        ovs-dpdk*) echo 0 ;;
        *) "$VS" pmd-stats --json --socket "$WORK/ctl.sock" | /usr/bin/python3 -c \
            'import json, sys; print(json.load(sys.stdin)[0]["stats"]["sleeps"])' ;;
    esac
}

# OVS-DPDK with one dpdkvhostuser port vhu0 (its socket $WORK/ovs/vhu0), PMD on core 1;
# $1: extra other_config settings.
start_ovs() {
    local d=$WORK/ovs
    mkdir -p "$d"
    export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" --pidfile="$d/ovsdb-server.pid" \
        --log-file="$d/ovsdb-server.log" --detach --no-chdir
    ovs-vsctl --no-wait init
    ovs-vsctl --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2 \
        other_config:dpdk-init=true other_config:dpdk-socket-mem=1024 \
        other_config:dpdk-socket-limit=1024 \
        "other_config:dpdk-extra=\"--no-pci --huge-dir=$HUGE --file-prefix=${TAG}ovs\"" $1
    "$OVS_DPDK" unix:"$d/db.sock" --pidfile="$d/ovs-vswitchd.pid" \
        --log-file="$d/ovs-vswitchd.log" --detach --no-chdir 2> "$WORK/ovs-start.log"
    if [ ! -s "$d/ovs-vswitchd.pid" ]; then
        echo "idle.sh: ovs-vswitchd did not start:" >&2
        grep -v "coverage|INFO" "$WORK/ovs-start.log" "$d/ovs-vswitchd.log" >&2
        exit 1
    fi
    SW=$(cat "$d/ovs-vswitchd.pid")
    ovs-vsctl --timeout=30 add-br br0 -- set bridge br0 datapath_type=netdev
    ovs-vsctl --timeout=30 add-port br0 vhu0 -- set Interface vhu0 type=dpdkvhostuser
    SOCK=$d/vhu0
}

# One window: "WHAT: pmd0 X % of a core, Y sleeps/s".
sample() {
    local t0 s0 t1 s1
    t0=$(pmd_ticks)
    s0=$(pmd_sleeps)
    sleep "$WINDOW"
    t1=$(pmd_ticks)
    s1=$(pmd_sleeps)
    awk -v what="$1:" -v ticks=$((t1 - t0)) -v sleeps=$((s1 - s0)) -v w="$WINDOW" 'BEGIN {
        printf "  %-12s PMD %5.1f %% of a core  %7d sleeps/s\n", what, ticks / w, sleeps / w }'
}

for round in $(seq "$ROUNDS"); do
    for VS in "$@"; do
        echo "round $round  $VS"
        rm -f "$WORK/a.sock" "$WORK/ctl.sock"
        case "$VS" in
            ovs-dpdk) start_ovs "" ;;
            ovs-dpdk-sleep) start_ovs other_config:pmd-maxsleep=10000 ;;
            *)
                "$VS" run --config "$WORK/vs.toml" --socket "$WORK/ctl.sock" \
                    > "$WORK/vs.log" 2>&1 &
                SW=$!
                SOCK=$WORK/a.sock
                ;;
        esac
        bench_wait_sockets "$SOCK"
        sleep 1
        sample "no guest"
        dpdk-testpmd -l 0,1 --main-lcore 1 --no-huge -m 512 --no-pci --file-prefix="$TAG" \
            --vdev "net_virtio_user0,path=$SOCK" -- --forward-mode=rxonly \
            --auto-start --stats-period 1 --total-num-mbufs=2048 > "$WORK/ct.log" 2>&1 &
        CT=$!
        for _ in $(seq 100); do
            if grep -q "forwards packets on" "$WORK/ct.log"; then break; fi
            sleep 0.1
        done
        sleep 1
        sample "quiet guest"
        if ! kill -0 "$CT" 2>/dev/null; then
            echo "idle.sh: testpmd exited:" >&2
            cat "$WORK/ct.log" >&2
            exit 1
        fi
        stop_run
    done
done
