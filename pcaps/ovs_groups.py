#!/usr/bin/python3
"""What Open vSwitch does with group requests, for vecswitch's tests to compare with
(vecswitch/tests/ovs_groups.rs).

Reads a JSON case on stdin: {"ports": [[name, ofport], ...], "cases": [[[verb, argument],
...], ...]}. Starts `ovs-vswitchd --enable-dummy=override` as ovs_reference.py does, adds
bridge br0 (datapath_type=dummy, fail-mode=secure) with dummy ports of those names and
numbers, and for each case starts from no rules and no groups, runs each request as
`ovs-ofctl -O OpenFlow13 VERB br0 ARGUMENT` and answers, on stdout, a JSON list (a case
each) of {"results": [{"ok", "error"}...], "groups": dump-groups lines, "flows":
dump-flows --no-stats lines} (headers dropped).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovs_reference import Ovs, mgmt_socket  # noqa: E402


def main():
    case = json.load(sys.stdin)
    ovs = Ovs()
    ovs.start()
    try:
        br = "br0"
        ovs.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=dummy",
                  "fail-mode=secure", "protocols=OpenFlow10,OpenFlow13")
        for name, ofport in case["ports"]:
            ovs.vsctl("add-port", br, name, "--", "set", "interface", name, "type=dummy",
                      "ofport_request=%d" % ofport)
        mgmt = mgmt_socket(ovs, br)
        of13 = "-O", "OpenFlow13"

        def lines(*args):
            r = ovs.run("ovs-ofctl", *of13, *args)
            return [l for l in r.stdout.splitlines() if l.startswith(" ")]

        out = []
        for steps in case["cases"]:
            ovs.run("ovs-ofctl", *of13, "del-flows", mgmt)
            ovs.run("ovs-ofctl", *of13, "del-groups", mgmt)
            results = []
            for verb, arg in steps:
                args = [arg] if arg else []
                r = ovs.run("ovs-ofctl", *of13, verb, mgmt, *args, check=False)
                results.append({"ok": r.returncode == 0, "error": r.stderr.strip()})
            out.append({
                "results": results,
                "groups": lines("dump-groups", mgmt),
                "flows": lines("--no-stats", "dump-flows", mgmt),
            })
        json.dump(out, sys.stdout)
    finally:
        ovs.stop()


if __name__ == "__main__":
    main()
