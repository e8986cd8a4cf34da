#!/usr/bin/python3
"""What `ovs-ofctl -O OpenFlow13 monitor` prints of a switch's asynchronous messages
(FLOW_REMOVED, PORT_STATUS) while `ovs-ofctl` requests run, for vecswitch's tests to compare
with an Open vSwitch bridge's (vecswitch/tests/openflow.rs).

Reads a JSON case on stdin: {"target": "tcp:IP:PORT" or null, "ports": [[name, ofport], ...],
"steps": [["ofctl", verb, argument...] | ["sleep", seconds], ...], "wait": seconds}. With a
null target it starts ovsdb-server and `ovs-vswitchd --enable-dummy=override` in a private
directory (as ovs_reference.py does) with bridge br0 (datapath_type=dummy, fail-mode=secure)
and dummy ports of those names and numbers, and uses its management socket. It starts
`ovs-ofctl -O OpenFlow13 monitor TARGET 65534`, runs each step (`ovs-ofctl -O OpenFlow13 VERB
TARGET ARGUMENT...`), waits `wait` seconds and answers, on stdout, a JSON object
{"monitor": what the monitor printed, "steps": [{"ok", "error", "out"}, ...]} ("out": what
the step printed).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovs_reference import Ovs, dummy_bridge  # noqa: E402


def run_case(case, target, env):
    mon_out = tempfile.TemporaryFile(mode="w+")
    mon = subprocess.Popen(["ovs-ofctl", "-O", "OpenFlow13", "monitor", target, "65534"],
                           stdout=mon_out, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        time.sleep(0.5)
        results = []
        for step in case["steps"]:
            if step[0] == "sleep":
                time.sleep(float(step[1]))
                continue
            verb, args = step[1], step[2:]
            r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", verb, target, *args],
                               env=env, capture_output=True, text=True)
            results.append({"ok": r.returncode == 0, "error": r.stderr.strip(), "out": r.stdout})
        time.sleep(float(case.get("wait", 0)))
    finally:
        mon.terminate()
        mon.wait()
    mon_out.seek(0)
    return {"monitor": mon_out.read(), "steps": results}


def answer(run):
    """Reads the JSON case on stdin, calls `run(case, target, env)` with the case's target
    or an Open vSwitch bridge's management socket, and prints what it returns as JSON."""
    case = json.load(sys.stdin)
    if case.get("target"):
        with tempfile.TemporaryDirectory(prefix="vecswitch-ofctl-") as d:
            env = dict(os.environ, OVS_RUNDIR=d)
            out = run(case, case["target"], env)
    else:
        ovs = Ovs()
        ovs.start()
        try:
            out = run(case, dummy_bridge(ovs, "br0", case["ports"]), ovs.env)
        finally:
            ovs.stop()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    answer(run_case)
