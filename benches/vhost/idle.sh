#!/bin/bash
# What an idle switch with a vhost-user port costs, for each build given (interleaved over
# the rounds): a vecswitch daemon (PMD on core 1, the daemon's default busy-poll=false) with
# one vhost-user port, first with no guest, then with a quiet one (dpdk-testpmd rxonly with
# nothing to receive); for each, over a window, the PMD thread's CPU time (/proc, 10 ms
# ticks, as a share of a core) and how often it went to sleep (pmd-stats).
#   benches/vhost/idle.sh [--rounds R] [--window S] BINARY...
# Needs root and both cores (testpmd runs without hugepages); removes everything it made.
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
    bench_kill "$SW"
    CT= SW=
    rm -rf "/var/run/dpdk/$TAG" 2>/dev/null
    return 0
}
bench_traps

bench_install
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

# The PMD thread's user and system ticks so far.
pmd_ticks() {
    local t
    for t in /proc/"$SW"/task/*; do
        if [ "$(cat "$t/comm")" = pmd0 ]; then awk '{print $14 + $15}' "$t/stat"; fi
    done
}

pmd_sleeps() {
    "$VS" pmd-stats --json --socket "$WORK/ctl.sock" |
        /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["stats"]["sleeps"])'
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
        printf "  %-12s pmd0 %5.1f %% of a core  %7d sleeps/s\n", what, ticks / w, sleeps / w }'
}

for round in $(seq "$ROUNDS"); do
    for VS in "$@"; do
        echo "round $round  $VS"
        rm -f "$WORK/a.sock" "$WORK/ctl.sock"
        "$VS" run --config "$WORK/vs.toml" --socket "$WORK/ctl.sock" > "$WORK/vs.log" 2>&1 &
        SW=$!
        bench_wait_sockets "$WORK/a.sock" "$WORK/ctl.sock"
        sleep 1
        sample "no guest"
        dpdk-testpmd -l 0,1 --no-huge -m 512 --no-pci --file-prefix="$TAG" \
            --vdev "net_virtio_user0,path=$WORK/a.sock" -- --forward-mode=rxonly \
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
