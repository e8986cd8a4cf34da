#!/usr/bin/env bash
# Replays the bundled L2-learning scenario through the switch and prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p datapath
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
target/release/vecswitch replay pcaps/l2-learning --out "$out"
