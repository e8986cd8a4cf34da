#!/bin/bash
# The vhost-user loop's fast and slow states, sampled for one or more vecswitch builds:
# for each round and each binary, a fresh vecswitch (PMD on core 1, busy-poll, p2p flows,
# two vhost-user ports) and a fresh dpdk-testpmd container (core 0, io forwarding, 256
# frames injected per port), then the switch's busy cycles per packet over a window, from
# pmd-stats. Either build lands in either state (the container's memory layout sets it;
# BENCHMARKS.md), so compare builds by their fast-state samples and by how often they are
# slow, not by averages.
#   benches/vhost/states.sh [--rounds N] [--window S] [--perf DIR] BINARY...
# With --perf, each window is also recorded with `perf record` on the PMD thread (timer-based
# here: no PMU in this VM) into DIR/round-R-N.data, and its top symbols are printed, so that
# the two states' profiles can be put side by side (PERF_ARGS="--call-graph dwarf" adds
# callers). Each sample ends with the round trip between the two cores (coreping, read
# right after the sample): ~80 ns or ~330 ns here, the host's placement of the two vCPUs,
# which sets the state. CT_ARGS adds testpmd options to the container (e.g. --mbcache=512),
# VDEV_ARGS options to both its virtio-user devices (e.g. VDEV_ARGS=,packed_vq=1), VS_BATCH
# the switch's batch-size (default 256, the daemon's).
# Needs root and both cores; reserves 600 2 MiB hugepages on a mount of its own and gives
# them back on exit.
set -euo pipefail

ROUNDS=5
WINDOW=3
PERF_DIR=
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --window) WINDOW=$2; shift 2 ;;
        --perf) PERF_DIR=$2; shift 2; mkdir -p "$PERF_DIR" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: states.sh [--rounds N] [--window S] BINARY..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "states.sh: needs root" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/vswstates.XXXXXX)
HUGE=$WORK/huge
. "$REPO/benches/lib.sh"

SW=
CT=
stop_run() {
    bench_kill_testpmd "$CT" "$WORK/ct.cmd"
    bench_kill_testpmd "$SW" "$WORK/sw.cmd"
    CT= SW=
    rm -rf /var/run/dpdk/vswstates /var/run/dpdk/vswstatessw 2>/dev/null
    return 0
}
bench_traps

bench_install
bench_huge 600
bench_coreping_build
printf 'in_port=1,actions=output:2\nin_port=2,actions=output:1\n' > "$WORK/p2p.flows"
cat > "$WORK/vs.toml" <<EOF
pmd-cores = [1]
batch-size = ${VS_BATCH:-256}
busy-poll = true
[[bridge]]
name = "vsst0"
local = false
rules = "$WORK/p2p.flows"
[[bridge.port]]
name = "vhu0"
type = "vhost-user"
socket = "$WORK/a.sock"
ofport = 1
[[bridge.port]]
name = "vhu1"
type = "vhost-user"
socket = "$WORK/b.sock"
ofport = 2
EOF

# An interactive testpmd's `show fwd stats all`, asked through its command file $1 and read
# from its log $2: "RX-packets cycles/packet" (cycles 0 without --record-core-cycles).
fwd_stats() {
    local mark
    mark=$(wc -c < "$2")
    echo "show fwd stats all" >> "$1"
    for _ in $(seq 50); do
        tail -c +"$((mark + 1))" "$2" | grep -q "Accumulated" && break
        sleep 0.1
    done
    sleep 0.2
    tail -c +"$((mark + 1))" "$2" | /usr/bin/python3 -c '
import re, sys
t = sys.stdin.read()
acc = t[t.find("Accumulated"):]
rx = re.search(r"RX-packets:\s+(\d+)", acc)
cyc = re.search(r"CPU cycles/packet=([\d.]+)", t)
print(rx.group(1) if rx else 0, cyc.group(1) if cyc else 0)'
}

# busy cycles, received packets, batches and busy iterations, summed over the PMDs; for
# the ceiling, since its counters were cleared at the window's start (no batch or
# iteration counts: 0 prints as "-")
snap() {
    if [ "$1" = ceiling ]; then
        read -r rx cyc < <(fwd_stats "$WORK/sw.cmd" "$WORK/vs.log")
        /usr/bin/python3 -c "print(int($rx * $cyc), $rx, 0, 0)"
        return
    fi
    "$1" pmd-stats --json --socket "$WORK/ctl.sock" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(p["stats"]["busy_cycles"] for p in d), sum(p["stats"]["rx_packets"] for p in d),
      sum(p["stats"]["rx_batches"] for p in d), sum(p["stats"]["busy_iterations"] for p in d))'
}

for round in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        rm -f "$WORK"/a.sock "$WORK"/b.sock "$WORK"/ctl.sock
        if [ "$bin" = ceiling ]; then
            : > "$WORK/sw.cmd"
            tail -f "$WORK/sw.cmd" | stdbuf -oL dpdk-testpmd -l 0,1 --main-lcore 0 --no-pci \
                --huge-dir "$HUGE" -m 512 --file-prefix=vswstatessw \
                --vdev "net_vhost0,iface=$WORK/a.sock,queues=1" \
                --vdev "net_vhost1,iface=$WORK/b.sock,queues=1" -- -i --forward-mode=io \
                --nb-cores=1 --burst=256 --total-num-mbufs=16384 --record-core-cycles \
                > "$WORK/vs.log" 2>&1 &
            SW=$!
            echo "start" >> "$WORK/sw.cmd"
            bench_wait_sockets "$WORK/b.sock"
        else
            "$bin" run --config "$WORK/vs.toml" --socket "$WORK/ctl.sock" > "$WORK/vs.log" 2>&1 &
            SW=$!
            bench_wait_sockets "$WORK/b.sock" "$WORK/ctl.sock"
        fi
        # The container: testpmd reads its commands from a file it follows.
        : > "$WORK/ct.cmd"
        tail -f "$WORK/ct.cmd" | stdbuf -oL dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci --huge-dir "$HUGE" \
            -m 512 --single-file-segments --file-prefix=vswstates \
            --vdev "net_virtio_user0,path=$WORK/a.sock,queues=1,mac=02:00:00:00:0a:00${VDEV_ARGS:-}" \
            --vdev "net_virtio_user1,path=$WORK/b.sock,queues=1,mac=02:00:00:00:0a:01${VDEV_ARGS:-}" \
            -- -i --nb-cores=1 --burst=256 --txpkts=60 --total-num-mbufs=16384 \
            --record-core-cycles --forward-mode=io ${CT_ARGS:-} > "$WORK/ct.log" 2>&1 &
        CT=$!
        sleep 2
        echo "start tx_first" >> "$WORK/ct.cmd"
        sleep 3
        echo "clear fwd stats all" >> "$WORK/ct.cmd"
        if [ "$bin" = ceiling ]; then
            echo "clear fwd stats all" >> "$WORK/sw.cmd"
            c0=0 p0=0 b0=0 i0=0
        else
            read -r c0 p0 b0 i0 < <(snap "$bin")
        fi
        if [ -n "$PERF_DIR" ]; then
            n=$(( ${n:-0} + 1 ))
            if [ -n "${PERF_CORE:-}" ]; then
                target=(-C "$PERF_CORE")
            else
                target=(-t "$(ps -T -p "$SW" -o spid=,comm= | awk '$2 == "pmd0" {print $1}')")
            fi
            # shellcheck disable=SC2086  # PERF_ARGS: extra options, e.g. --call-graph dwarf
            perf record -q ${PERF_ARGS:-} "${target[@]}" -o "$PERF_DIR/round-$round-$n.data" \
                -- sleep "$WINDOW" \
                > /dev/null 2>&1
        else
            sleep "$WINDOW"
        fi
        read -r c1 p1 b1 i1 < <(snap "$bin")
        read -r _ ct_cycles < <(fwd_stats "$WORK/ct.cmd" "$WORK/ct.log")
        if [ -n "${KEEP_LOGS:-}" ]; then
            mkdir -p "$KEEP_LOGS"
            cp "$WORK/ct.log" "$KEEP_LOGS/round-$round-$(basename "$bin")-ct.log"
            cp "$WORK/vs.log" "$KEEP_LOGS/round-$round-$(basename "$bin")-sw.log"
        fi
        line=$(/usr/bin/python3 -c "
c, p, b, i, w = $c1 - $c0, $p1 - $p0, $b1 - $b0, $i1 - $i0, $WINDOW
per = lambda n: '%5.1f' % (p / n) if n > 0 else '    -'
print('round $round  %-32s %6.2f Mpps  %4.0f cycles/pkt  %s pkts/batch  %s pkts/iter'
      '  container %4.0f cycles/pkt'
      % ('$bin'[-32:], p / w / 1e6, c / max(p, 1), per(b), per(i), $ct_cycles))")
        if [ -n "$PERF_DIR" ]; then
            perf report -q -i "$PERF_DIR/round-$round-$n.data" --sort symbol --stdio 2>/dev/null \
                | grep -v '^$' | head -12 | cut -c1-110 || true
        fi
        stop_run
        # Where the host has put the two vCPUs now (read right after the sample, before
        # they idle and the host may move them): the two states follow it.
        echo "$line  cores 0-1 $(bench_coreping) ns apart"
        sleep 1
    done
done
