#!/usr/bin/env bash
# Builds and runs every criterion bench of the `benches` crate, then the speed-target check
# (benches/benches/targets.rs) TARGET_RUNS times (default 3). Criterion keeps its reports
# under $CARGO_TARGET_DIR/criterion; this script's own log goes to $OUT (default
# target/bench-results). Exit status: non-zero if a bench failed to build or run, or if the
# last targets run missed a target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
OUT="${OUT:-$CARGO_TARGET_DIR/bench-results}"
TARGET_RUNS="${TARGET_RUNS:-3}"
mkdir -p "$OUT"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
commit="$(git log -1 --format=%h 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain 2>/dev/null | grep -q . && echo ' (+ uncommitted changes)' || true)"

{
  echo "commit $commit$dirty, $stamp"
  echo "load: $(uptime)"
  lscpu | grep -E 'Model name|^CPU\(s\)' || true
  uname -r
  rustc --version
} | tee "$OUT/machine-$stamp.txt"

cargo bench -p benches --no-run
for b in pipeline flowcache openflow vhost; do
  echo "== cargo bench -p benches --bench $b (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  cargo bench -p benches --bench "$b" 2>&1 | tee "$OUT/$b-$stamp.txt"
done

status=0
for i in $(seq 1 "$TARGET_RUNS"); do
  echo "== targets run $i/$TARGET_RUNS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  if cargo bench -p benches --bench targets 2>&1 | tee "$OUT/targets-$stamp-$i.txt"; then
    status=0
  else
    status=1
  fi
done

echo
echo "criterion estimates: $CARGO_TARGET_DIR/criterion/<group>/<bench>/new/estimates.json"
echo "logs of this run:  $OUT/*-$stamp*.txt"
echo "targets tables:    grep -h '^|' $OUT/targets-$stamp-*.txt"
exit "$status"
