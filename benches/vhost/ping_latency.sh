#!/bin/bash
# Round trip at low load through a vhost-user port, for each batch-size given: a vecswitch
# daemon (PMD on core 1, NORMAL) with a vhost-user port to a DPDK container (dpdk-testpmd on
# core 0 in icmpecho mode: it answers ARP and ICMP echo itself) and an AF_XDP port to a
# namespace; `ping -i 0.01` from the namespace to the container crosses the switch twice,
# the vhost-user ring once each way. Batch sizes run interleaved, a fresh daemon and
# container for each sample; each sample prints the round trip's min, median, 99th
# percentile, max and mean in µs. This is issue 24's check that a larger default batch does
# not raise latency at low load.
#   benches/vhost/ping_latency.sh [--rounds R] [--count N] BINARY BATCH...
# VDEV_ARGS adds virtio-user options (VDEV_ARGS=,packed_vq=1 for packed rings), BUSY_POLL=false
# lets the idle PMD sleep (the daemon's default; the loop benches poll). Needs root and both
# cores; reserves 300 2 MiB hugepages on a mount of its own; removes everything it made.
set -euo pipefail

ROUNDS=3
COUNT=500
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --count) COUNT=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "usage: ping_latency.sh [--rounds R] [--count N] BINARY BATCH..." >&2; exit 2; }
VS=$1
shift
[ "$(id -u)" = 0 ] || { echo "ping_latency.sh: needs root" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/vswvping.XXXXXX)
HUGE=$WORK/huge
TAG=vl$$
. "$REPO/benches/lib.sh"

SW=
CT=
stop_run() {
    bench_kill_testpmd "$CT" "$WORK/ct.cmd"
    bench_kill "$SW"
    CT= SW=
    ip netns del "$TAG" 2>/dev/null || true
    rm -rf "/var/run/dpdk/$TAG" 2>/dev/null
    return 0
}
bench_traps

bench_install
bench_huge 300

for round in $(seq "$ROUNDS"); do
    for batch in "$@"; do
        rm -f "$WORK/a.sock" "$WORK/ctl.sock"
        cat > "$WORK/vs.toml" <<EOF
pmd-cores = [1]
batch-size = $batch
busy-poll = ${BUSY_POLL:-true}
[[bridge]]
name = "$TAG"
local = false
[[bridge.port]]
name = "vhu0"
type = "vhost-user"
socket = "$WORK/a.sock"
ofport = 1
EOF
        "$VS" run --config "$WORK/vs.toml" --socket "$WORK/ctl.sock" > "$WORK/vs.log" 2>&1 &
        SW=$!
        bench_wait_sockets "$WORK/a.sock" "$WORK/ctl.sock"
        ip netns add "$TAG"
        "$VS" attach "$TAG" "$TAG" --ip 10.95.0.1/24 --type afxdp --socket "$WORK/ctl.sock" \
            > /dev/null
        : > "$WORK/ct.cmd"
        tail -f "$WORK/ct.cmd" | stdbuf -oL dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci \
            --huge-dir "$HUGE" -m 256 --single-file-segments --file-prefix="$TAG" \
            --vdev "net_virtio_user0,path=$WORK/a.sock,queues=1,mac=02:00:00:00:0b:00${VDEV_ARGS:-}" \
            -- -i --nb-cores=1 --total-num-mbufs=8192 --forward-mode=icmpecho \
            > "$WORK/ct.log" 2>&1 &
        CT=$!
        sleep 2
        echo "start" >> "$WORK/ct.cmd"
        # ARP, and the switch learns both ends.
        ip netns exec "$TAG" ping -c 3 -i 0.2 -W 1 10.95.0.2 > /dev/null || true
        ip netns exec "$TAG" ping -c "$COUNT" -i 0.01 -W 1 10.95.0.2 > "$WORK/ping.out" || true
        /usr/bin/python3 - "$WORK/ping.out" "$batch" "$round" "$COUNT" <<'PY'
import re, statistics, sys
out, batch, rnd, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = sorted(float(m) * 1000 for m in re.findall(r"time=([\d.]+) ms", open(out).read()))
if not t:
    print(f"round {rnd}  batch-size {batch:>3}  no replies")
    sys.exit()
q = lambda p: t[min(len(t) - 1, int(p * len(t)))]
print(f"round {rnd}  batch-size {batch:>3}  {len(t)}/{count} replies  round trip µs: "
      f"min {t[0]:.0f}  p50 {q(0.5):.0f}  p99 {q(0.99):.0f}  max {t[-1]:.0f}  "
      f"mean {statistics.mean(t):.0f}")
PY
        stop_run
        sleep 1
    done
done
