#!/usr/bin/env bash
# The test suite: the workspace's tests (unit tests, replay goldens checked against independent
# predictions, a real Open vSwitch and recomputed checksums, the daemon between namespaces),
# then the `dpdk` feature's. Prints a one-line total at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --release "$@" 2>&1 | tee "$log" || status=$?
# The DPDK port type is behind a cargo feature (the default build needs no DPDK): its own
# tests (names with "dpdk": the port options and config unit tests, then the port itself).
cargo test -p ports -p control --release --features dpdk --lib "$@" dpdk 2>&1 \
  | tee -a "$log" || status=$?
cargo test -p vecswitch --release --features dpdk --test dpdk_ports "$@" dpdk 2>&1 \
  | tee -a "$log" || status=$?
# Leave target/release/vecswitch as the default build: the dpdk steps above replaced it (cargo
# re-links the default one from what the workspace tests built).
cargo build --release -p vecswitch 2>&1 | tail -n 1
if grep -q rte_eal_init "${CARGO_TARGET_DIR:-target}/release/vecswitch"; then
  echo "test.sh: target/release/vecswitch is still the dpdk build" >&2
  status=1
fi
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
