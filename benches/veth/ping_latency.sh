#!/bin/bash
# Ping round trip between two containers attached to one bridge, for each port type given
# (afxdp, afpacket): a vecswitch daemon with explicit flows 1<->2, two namespaces attached
# with `vecswitch attach --type T`, then `ping -c 20 -i 0.05` from one to the other; prints
# ping's summary line. Everything it makes is removed on exit.
#   benches/veth/ping_latency.sh [VECSWITCH_BINARY] [TYPE...]   (default: afxdp afpacket)
set -euo pipefail
VS=${1:-target/release/vecswitch}
shift || true
TYPES=("$@")
[ ${#TYPES[@]} -gt 0 ] || TYPES=(afxdp afpacket)
[ "$(id -u)" = 0 ] || { echo "ping_latency.sh: needs root" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vswping.XXXXXX)
TAG=vp$$
DAEMON=
cleanup() {
    set +e
    [ -z "$DAEMON" ] || { kill "$DAEMON"; wait "$DAEMON"; } 2>/dev/null
    ip netns del "${TAG}a" 2>/dev/null
    ip netns del "${TAG}b" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
for t in "${TYPES[@]}"; do
    printf 'socket = "%s"\n[[bridge]]\nname = "%s"\nlocal = false\n' "$WORK/ctl.sock" "$TAG" \
        > "$WORK/vs.toml"
    "$VS" run --config "$WORK/vs.toml" > "$WORK/vs.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 50); do [ -S "$WORK/ctl.sock" ] && break; sleep 0.1; done
    ip netns add "${TAG}a"
    ip netns add "${TAG}b"
    "$VS" attach "$TAG" "${TAG}a" --ip 10.94.0.1/24 --type "$t" --socket "$WORK/ctl.sock" > /dev/null
    "$VS" attach "$TAG" "${TAG}b" --ip 10.94.0.2/24 --type "$t" --socket "$WORK/ctl.sock" > /dev/null
    "$VS" del-flows "$TAG" --socket "$WORK/ctl.sock" > /dev/null
    "$VS" add-flow "$TAG" in_port=1,actions=output:2 --socket "$WORK/ctl.sock" > /dev/null
    "$VS" add-flow "$TAG" in_port=2,actions=output:1 --socket "$WORK/ctl.sock" > /dev/null
    ip netns exec "${TAG}a" ping -c 2 -W 1 10.94.0.2 > /dev/null || true  # ARP
    printf '%-9s ' "$t"
    ip netns exec "${TAG}a" ping -q -c 20 -i 0.05 10.94.0.2 | tail -1
    kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
    DAEMON=
    ip netns del "${TAG}a"
    ip netns del "${TAG}b"
done
