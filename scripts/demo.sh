#!/usr/bin/env bash
# The main job on its built-in default: builds vecswitch, then `vecswitch demo` starts the switch
# daemon, attaches two network namespaces to bridge br0 as containers, shows ping and a TCP
# transfer across, runs pktgen through the switch, prints the counters and removes everything it
# created. Needs root (namespaces, veth, XDP); installs iproute2, ethtool and ping if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build --release -q -p vecswitch
exec target/release/vecswitch demo "$@"
