#!/usr/bin/python3
"""FLOW_MOD throughput over TCP: vecswitch against Open vSwitch 3.1 in the same run (issue 23).

Both switches get a `ptcp:` listener on 127.0.0.1; the same client (`ovs-ofctl -O OpenFlow13`)
sends the same bytes to each: N rules `priority=10,ip,nw_dst=A.B.C.D,actions=output:1`, once
with `add-flows` (ovs-ofctl sends each FLOW_MOD with its own BARRIER and waits for it) and once
with `add-flows --bundle` (ONF bundle: open, N adds, commit), then `dump-flows`. Between runs the
rules are deleted. OVS runs in a private directory (pcaps/ovs_reference.py's `Ovs`) with a
netdev bridge; vecswitch is `vecswitch run` with one PMD. Both bridges are named by --bridge
(default fmbench0; vecswitch's has no LOCAL tap, so the name may even be a host interface's).

    benches/openflow/flowmod.py [--flows N] [--repeat R] [--bridge NAME] [--vecswitch PATH]
                                [--json FILE]

Prints one line per (switch, mode) with the best of R runs, flow mods per second and the ratio
to OVS. Needs Debian's openvswitch-switch.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "pcaps"))

from ovs_reference import Ovs  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def flows_file(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write("priority=10,ip,nw_dst=10.%d.%d.%d,actions=output:1\n"
                    % (i // 62500, (i // 250) % 250, i % 250 + 1))


def ofctl(*args):
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("ovs-ofctl %s: %s" % (" ".join(args), r.stderr.strip()[-500:]))
    return r.stdout


def timed(*args):
    t = time.perf_counter()
    out = ofctl(*args)
    return time.perf_counter() - t, out


def wait_listening(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on port %d" % port)


def measure(target, flows, n, repeat):
    """Best times of add-flows, add-flows --bundle and dump-flows against `target`."""
    best = {"add-flows": None, "add-flows --bundle": None, "dump-flows": None}
    for _ in range(repeat):
        for mode in ("add-flows", "add-flows --bundle"):
            ofctl("del-flows", target)
            words = mode.split()
            t, _ = timed(*words[1:], words[0], target, flows)
            best[mode] = t if best[mode] is None else min(best[mode], t)
        t, out = timed("dump-flows", target)
        got = sum(1 for line in out.splitlines() if "nw_dst=10." in line)
        if got != n:
            raise RuntimeError("%s holds %d of the %d rules" % (target, got, n))
        best["dump-flows"] = t if best["dump-flows"] is None else min(best["dump-flows"], t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--bridge", default="fmbench0",
                    help="the bridge both switches get (default fmbench0)")
    ap.add_argument("--vecswitch", default=os.path.join(ROOT, "target/release/vecswitch"))
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vecswitch-flowmod-")
    flows = os.path.join(tmp, "flows.txt")
    flows_file(flows, a.flows)
    sock = os.path.join(tmp, "vecswitch.sock")
    cfg = os.path.join(tmp, "vecswitch.toml")
    with open(cfg, "w") as f:
        f.write("socket = %s\n[[bridge]]\nname = %s\nlocal = false\n"
                % (json.dumps(sock), json.dumps(a.bridge)))
    daemon = subprocess.Popen([a.vecswitch, "run", "--config", cfg],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "d.log"), "w"))
    ovs = Ovs()
    results = {}
    try:
        vport, oport = free_port(), free_port()
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        subprocess.run([a.vecswitch, "set-controller", "--socket", sock, a.bridge,
                        "ptcp:%d:127.0.0.1" % vport], check=True, capture_output=True)
        ovs.start()
        ovs.vsctl("add-br", a.bridge, "--", "set", "bridge", a.bridge, "datapath_type=netdev",
                  "protocols=OpenFlow13", "--", "set-controller", a.bridge,
                  "ptcp:%d:127.0.0.1" % oport)
        wait_listening(vport)
        wait_listening(oport)
        load = os.getloadavg()[0]
        results["ovs"] = measure("tcp:127.0.0.1:%d" % oport, flows, a.flows, a.repeat)
        results["vecswitch"] = measure("tcp:127.0.0.1:%d" % vport, flows, a.flows, a.repeat)
        load = max(load, os.getloadavg()[0])
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        ovs.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d flows, best of %d, load average up to %.1f" % (a.flows, a.repeat, load))
    print("%-10s %-20s %10s %14s %8s" % ("switch", "mode", "seconds", "flow mods/s", "vs OVS"))
    for sw in ("vecswitch", "ovs"):
        for mode, t in results[sw].items():
            rate = a.flows / t
            ratio = results["ovs"][mode] / t
            print("%-10s %-20s %10.3f %14.0f %7.2fx" % (sw, mode, t, rate, ratio))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"flows": a.flows, "repeat": a.repeat, "load": load, "seconds": results,
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=1)


if __name__ == "__main__":
    main()
