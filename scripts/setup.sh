#!/usr/bin/env bash
# Installs the system packages the tests and tools use (Debian 12). Safe to run again.
set -euo pipefail
need=()
command -v tshark >/dev/null || need+=(tshark)
/usr/bin/python3 -c 'import scapy' 2>/dev/null || need+=(python3-scapy)
command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
command -v ip >/dev/null || need+=(iproute2)
command -v ethtool >/dev/null || need+=(ethtool)
command -v ping >/dev/null || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install: ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}"
fi
