#!/usr/bin/env bash
# Installs the system packages the tests and tools use (Debian 12). Safe to run again.
# `setup.sh demo` installs only what `vecswitch demo` needs.
set -euo pipefail
need=()
if [ "${1:-}" != demo ]; then
  command -v tshark >/dev/null || need+=(tshark)
  # nfcapd and nfdump: the real NetFlow collector of the NetFlow namespace test.
  command -v nfcapd >/dev/null || need+=(nfdump)
  command -v editcap >/dev/null || need+=(wireshark-common)
  command -v systemd-analyze >/dev/null || need+=(systemd)
  /usr/bin/python3 -c 'import scapy' 2>/dev/null || need+=(python3-scapy)
  command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
  # DPDK: dpdk-testpmd is the container of the vhost-user tests; libdpdk-dev, clang and
  # pkg-config build the `dpdk` feature (bindgen).
  command -v dpdk-testpmd >/dev/null || need+=(dpdk-dev)
  pkg-config --exists libdpdk 2>/dev/null || need+=(libdpdk-dev pkg-config)
  command -v clang >/dev/null || need+=(clang)
  # The venvs (below): venv, and a compiler and headers for the wheels Faucet builds.
  /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
  [ -e /usr/include/python3.11/Python.h ] || need+=(python3-dev)
  command -v gcc >/dev/null || need+=(gcc)
fi
[ -x /usr/bin/python3 ] || need+=(python3)
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
# A Python tool from PyPI in a venv of its own, /opt/vecswitch-NAME, pinned by
# scripts/NAME-requirements.txt; redone only when that file changes or BIN is missing.
venv_tool() {
  local name=$1 bin=$2
  local venv=/opt/vecswitch-$name req
  req="$(dirname "$0")/$name-requirements.txt"
  if ! cmp -s "$req" "$venv/requirements.txt" || ! [ -x "$venv/bin/$bin" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: need root to install $name in $venv" >&2
      exit 1
    fi
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
  fi
}
if [ "${1:-}" != demo ]; then
  # os-ken: the controller of vecswitch/tests/osken.rs.
  venv_tool osken osken-manager
  # Faucet (it brings os-ken too): the controller of vecswitch/tests/faucet.rs.
  venv_tool faucet faucet
fi
