#!/usr/bin/env bash
# The test suite: unit tests, replay goldens, checksum checks of the rewrite goldens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --release "$@"
