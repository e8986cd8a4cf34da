#!/usr/bin/env bash
# Replays every fuzz target over its committed inputs only (fuzz/regressions/<target>/ and
# fuzz/seeds/<target>/), without mutating: a non-zero exit means an input crashes again.
# Usage: fuzz/run-regressions.sh [target...]   (default: every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); works on stable through RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(parse_packet actions parse_flow scenario vhost_ring vhost_message control wire tunnel_headers conntrack openflow_wire)
fi
status=0
for t in "${targets[@]}"; do
    dirs=()
    for d in "fuzz/regressions/$t" "fuzz/seeds/$t"; do
        if [ -d "$d" ] && [ -n "$(ls -A "$d")" ]; then
            dirs+=("$PWD/$d")
        fi
    done
    if [ ${#dirs[@]} -eq 0 ]; then
        echo "== $t: no inputs, skipped"
        continue
    fi
    echo "== $t: ${dirs[*]}"
    # -runs=0 runs each given input once and does not fuzz; nothing is written to the dirs.
    if ! cargo fuzz run "$t" "${dirs[@]}" -- -runs=0; then
        echo "== $t: FAILED"
        status=1
    fi
done
exit $status
