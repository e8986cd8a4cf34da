#!/usr/bin/python3
"""What Open vSwitch's `ovs-ofctl` prints for dump-flows filters, sorting and names, and what
its del-flows / mod-flows leave, for vecswitch's tests to compare with (vecswitch/tests/ovs_dump_flows.rs).

Reads a JSON case on stdin: {"ports": [[name, ofport], ...], "rules": [flow, ...],
"requests": [[verb, option..., argument...], ...]}. Starts ovsdb-server and
`ovs-vswitchd --enable-dummy=override` in a private directory (as ovs_reference.py does), adds
bridge br0 (datapath_type=dummy, fail-mode=secure) with dummy ports of those names and numbers,
and for each request adds the rules afresh, runs `ovs-ofctl VERB [OPTIONS] br0 [ARGUMENTS]`
and answers, on stdout, a JSON list of {"ok", "lines", "error", "after"}: "lines" what it
printed (headers dropped), "after" (add-flow, del-flows and mod-flows) `dump-flows --no-stats`
then. With "receive": [[port, frame hex], ...] in the case, the rules are added afresh, the
frames received on those ports (`netdev-dummy/receive`), and one more element ends the list:
{"megaflows": {"names": [...], "numbers": [...]}}, the lines of `ovs-appctl dpctl/dump-flows`
with `--names` and with `--no-names`.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovs_reference import Ovs, dummy_bridge  # noqa: E402


def main():
    case = json.load(sys.stdin)
    ovs = Ovs()
    ovs.start()
    try:
        mgmt = dummy_bridge(ovs, "br0", case["ports"])

        def reset():
            ovs.run("ovs-ofctl", "del-flows", mgmt)
            for r in case["rules"]:
                ovs.run("ovs-ofctl", "add-flow", mgmt, r)

        out = []
        for req in case["requests"]:
            reset()
            verb = req[0]
            opts = [a for a in req[1:] if a.startswith("--")]
            args = [a for a in req[1:] if not a.startswith("--")]
            r = ovs.run("ovs-ofctl", *opts, verb, mgmt, *args, check=False)
            lines = [l for l in r.stdout.splitlines() if l.startswith(" ")]
            res = {"ok": r.returncode == 0, "lines": lines, "error": r.stderr.strip()}
            if verb in ("add-flow", "del-flows", "mod-flows"):
                a = ovs.run("ovs-ofctl", "--no-stats", "dump-flows", mgmt)
                res["after"] = [l for l in a.stdout.splitlines() if l.startswith(" ")]
            out.append(res)
        if case.get("receive"):
            reset()
            for port, frame in case["receive"]:
                ovs.appctl("netdev-dummy/receive", port, frame)
            time.sleep(0.3)
            dumps = {}
            for key, flag in (("names", "--names"), ("numbers", "--no-names")):
                r = ovs.appctl("dpctl/dump-flows", flag)
                dumps[key] = [l for l in r.stdout.splitlines() if "actions:" in l]
            out.append({"megaflows": dumps})
        json.dump(out, sys.stdout)
    finally:
        ovs.stop()


if __name__ == "__main__":
    main()
