#!/bin/bash
# veth benchmarks of issue 4, every peer in the same run (see RESULTS.md).
#   benches/veth/run.sh [quick] [items...]     items: gen fwd afp (default: all three)
# Needs root. Installs clang, DPDK, OVS (+ unpacks ovs-vswitchd-dpdk), builds vecswitch,
# makes its own veths (vb<pid>{g,a,b,k}), XDP_DROP sink, hugepages for OVS-DPDK, and removes
# all of it on exit. Extra options go to bench.py through BENCH_ARGS (e.g.
# BENCH_ARGS="--runs 5 --switches vecswitch,ovs-afxdp").
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODE=full
if [ "${1:-}" = quick ]; then MODE=quick; shift; fi
ITEMS=("$@")
TAG=vb$$
WORK=$(mktemp -d /tmp/vswbench.XXXXXX)
HUGE=$WORK/huge
. "$REPO/benches/lib.sh"
# OVS's userspace datapath makes the taps br0 and ovs-netdev; remove them after the run unless
# they were there before it.
OVS_TAPS=()
for i in br0 ovs-netdev; do ip link show "$i" >/dev/null 2>&1 || OVS_TAPS+=("$i"); done

cleanup() {
    set +e
    trap - EXIT INT TERM
    [ -n "${PY_PID:-}" ] && kill -TERM "$PY_PID" 2>/dev/null && wait "$PY_PID" 2>/dev/null
    bench_stop_ovs
    for i in g a b k; do ip link set "$TAG$i" xdp off 2>/dev/null; done
    for i in "${OVS_TAPS[@]}"; do ip link del "$i" 2>/dev/null; done
    ip link del "${TAG}g" 2>/dev/null
    ip link del "${TAG}b" 2>/dev/null
    bench_huge_release
    rm -rf /dev/hugepages/"${TAG}"* 2>/dev/null
    [ -n "${KEEP_WORK:-}" ] && cp -r "$WORK" /tmp/vswbench-last || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
T0=$(date +%s)
ulimit -l unlimited 2>/dev/null || true  # libbpf in testpmd asks for it; containers may refuse

echo "== set-up (work dir $WORK, interfaces ${TAG}{g,a,b,k})" >&2
bench_install
bench_ovs_dpdk
bench_build

# The XDP_DROP sink, built here (6 lines of C).
cat > "$WORK/drop.c" <<'EOF'
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
SEC("xdp") int drop(struct xdp_md *c) { return XDP_DROP; }
char _license[] SEC("license") = "GPL";
EOF
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$WORK/drop.c" -o "$WORK/drop.o"

# 2 MiB hugepages for OVS-DPDK (returned on exit).
[ -n "$OVS_DPDK" ] && bench_huge 1100

echo "== set-up took $(( $(date +%s) - T0 )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
/usr/bin/python3 "$HERE/bench.py" ${ITEMS[@]+"${ITEMS[@]}"} --mode $MODE --tag $TAG --work "$WORK" \
    --vecswitch "$VECSWITCH" --xdp-obj "$WORK/drop.o" --ovs-dpdk "$OVS_DPDK" --huge "$HUGE" \
    ${BENCH_ARGS:-} &
PY_PID=$!
wait $PY_PID
rc=$?
PY_PID=
echo "== total $(( $(date +%s) - T0 )) s" >&2
exit $rc
