#!/bin/bash
# vhost-user loop benchmarks of issue 5: vecswitch, OVS-DPDK and the testpmd ceiling in the
# same run (see bench.py for the topology and BENCHMARKS.md for results).
#   benches/vhost/run.sh [quick] [cases...]
#   cases: p2p-64 p2p-1518 p2p-256flows p2p-64-packed normal-learned normal-flood vxlan-64
#          ct-1 ct-256flows ct-snat (closed loop, as p2p: the first burst circles)
#          ct-1-replay ct-64flows ct-10k (the replay loop: a pcap of N connections'
#          requests feeds port 1, testpmd 5tswaps them back into port 2 as replies)
#          nf-1-off nf-1-on nf-64-off nf-64-on (the replay loop with the p2p rules, 1 or
#          64 UDP flows, NetFlow v5 export off and on in both switches)
#          p2p-64-nf p2p-256flows-nf (p2p-64 and p2p-256flows with NetFlow on)
#          (default: all; quick: p2p-64, normal-learned and vxlan-64, one run each)
# Needs root and both cores. Installs DPDK and OVS (+ unpacks ovs-vswitchd-dpdk), builds
# vecswitch, reserves 1100 2 MiB hugepages on a mount of its own, and gives everything back
# on exit. Extra options go to bench.py through BENCH_ARGS (e.g. BENCH_ARGS="--runs 5").
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODE=full
if [ "${1:-}" = quick ]; then MODE=quick; shift; fi
CASES=("$@")
TAG=vh$$
WORK=$(mktemp -d /tmp/vswvhost.XXXXXX)
HUGE=$WORK/huge
. "$REPO/benches/lib.sh"
# OVS's bridge br0 has a LOCAL tap; remove it after the run unless it was there before.
OVS_TAP=
ip link show br0 >/dev/null 2>&1 || OVS_TAP=br0
# The vxlan case's taps, with the VTEP addresses on them: vecswitch's underlay bridges and
# OVS's four bridges (bench.py refuses the case if one is already there). Removed after the
# run, should a killed switch leave one behind.
TUN_TAPS=()
for t in phy1 phy2 br-phy1 br-phy2 br-t1 br-t2; do
    ip link show "$t" >/dev/null 2>&1 || TUN_TAPS+=("$t")
done

cleanup() {
    set +e
    trap - EXIT INT TERM
    [ -n "${PY_PID:-}" ] && kill -TERM "$PY_PID" 2>/dev/null && wait "$PY_PID" 2>/dev/null
    bench_stop_ovs
    [ -n "$OVS_TAP" ] && ip link del "$OVS_TAP" 2>/dev/null
    for t in "${TUN_TAPS[@]}"; do ip link del "$t" 2>/dev/null; done
    bench_huge_release
    [ -n "${KEEP_WORK:-}" ] && cp -r "$WORK" /tmp/vswvhost-last
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
T0=$(date +%s)
echo "== set-up (work dir $WORK)" >&2
bench_install
bench_ovs_dpdk
bench_build
bench_coreping_build
# Container 512 MiB + OVS-DPDK 1024 MiB (or the ceiling's 512) at once, with room.
bench_huge 1100
echo "== set-up took $(( $(date +%s) - T0 )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
/usr/bin/python3 "$HERE/bench.py" ${CASES[@]+"${CASES[@]}"} --mode $MODE --tag $TAG \
    --work "$WORK" --vecswitch "$VECSWITCH" --ovs-dpdk "$OVS_DPDK" --huge "$HUGE" \
    --coreping "$COREPING" \
    ${BENCH_ARGS:-} &
PY_PID=$!
wait $PY_PID
rc=$?
PY_PID=
echo "== total $(( $(date +%s) - T0 )) s" >&2
exit $rc
