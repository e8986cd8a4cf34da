#!/usr/bin/python3
"""Extracts every flow string of Open vSwitch's own test suite (tests/ovs-ofctl.at and
tests/ofp-actions.at) and records what the installed ovs-ofctl makes of each, into
ovs_ofctl_cases.txt beside this script (read by the test ovs_ofctl_suite.rs).

Usage: ovs_ofctl_cases.py [OVS_GIT_DIR]   (default /work/.mirror/openvswitch+ovs/repo)

The .at expectations are for the OVS of the checkout; the reference recorded is what the
installed ovs-ofctl (Debian's 3.1) prints, so the test checks against a real, pinned peer.
Each output line is tab-separated:

    SOURCE  KIND  INPUT  RESULT

KIND is `flow` (an `ovs-ofctl parse-flow` argument) or `file` (a line of a flows file, where
`#` starts a comment). RESULT is `ok PROTOCOL TEXT` (TEXT the flow mod as ovs-ofctl prints
it, after `ADD `) or `error MESSAGE` (ovs-ofctl's message without the `ovs-ofctl: ` prefix).
"""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def at_file(git_dir, name):
    return subprocess.run(
        ["git", "-C", git_dir, "show", f"HEAD:tests/{name}"],
        check=True, capture_output=True, text=True).stdout


def unquote(s, double):
    """m4 quoting: inside [[...]] text is literal; inside [...] `[[`/`]]` mean `[`/`]`."""
    if double:
        return s
    return s.replace("[[", "[").replace("]]", "]").replace("@&t@", "")


def at_data_blocks(text):
    """(line number, line, double-quoted) of every line of AT_DATA([file], ...) blocks."""
    out = []
    for m in re.finditer(r"AT_DATA\(\[([^\]]+)\],\s*\[(\[?)", text):
        name, double = m.group(1), m.group(2) == "["
        if name in ("nx-match.txt", "oxm.txt", "test-data", "expout", "input.txt"):
            continue
        start = m.end()
        # The block ends at a line that starts with its closing quote (a `])` inside a line
        # is m4-quoted text, e.g. `NXM_NX_CT_MARK[[]])))`).
        end = text.find("\n]])" if double else "\n])", start - 1) + 1
        body = text[start:end]
        if body.startswith("dnl\n"):
            body = body[4:]
        first = text.count("\n", 0, start) + 1
        for i, line in enumerate(body.split("\n")):
            out.append((first + i, line, double))
    return out


def extract(name, text):
    """(source, kind, input) of every flow string of one .at file."""
    cases = []
    lines = text.split("\n")
    for lineno, line, double in at_data_blocks(text):
        line = unquote(line, double).strip()
        if line and not line.startswith("#") and "$" not in line:
            cases.append((f"{name}:{lineno}", "file", line))
    for i, line in enumerate(lines, 1):
        # parse-flow "..." / add-flow br0 '...' / add-flow br0 word
        for m in re.finditer(
                r"(?:parse-flow|add-flow\s+(?:-\S+\s+)*br0)\s+(\"[^\"]*\"|'[^']*'|[^\s\]\)]+)",
                line):
            arg = m.group(1)
            if arg[0] in "\"'":
                arg = arg[1:-1]
            if "$" in arg or "`" in arg:
                continue
            arg = unquote(arg, False).replace("\\>", ">")
            cases.append((f"{name}:{i}", "flow", arg))
        # ofp-actions.at: `# actions=...` of the translation tests, and bad_action 'X' '...'.
        m = re.match(r"# actions=(.*)$", line)
        if m:
            cases.append((f"{name}:{i}", "flow", "actions=" + unquote(m.group(1), False)))
        m = re.match(r"bad_action '([^']*)'", line)
        if m:
            cases.append((f"{name}:{i}", "flow", "actions=" + unquote(m.group(1), False)))
    # The field lists of "parse-flows choice of protocol" and "parse-flow with invalid mask".
    for i, line in enumerate(lines, 1):
        m = re.match(r"\s+'([a-z_0-9]+(?:=| )[^']*?)\s+(?:NXM|OXM|none|any|OpenFlow)[^']*'\s*\\$",
                     line)
        if m and name == "ovs-ofctl.at":
            cases.append((f"{name}:{i}", "flow", unquote(m.group(1), False) + ",actions=drop"))
        m = re.match(r"\s+'(?:([a-z0-9]+) )?([a-z_0-9]+) ([^' ]+)'( \\)?$", line)
        if m and name == "ovs-ofctl.at" and i > 400 and i < 450:
            pre = (m.group(1) + ",") if m.group(1) else ""
            cases.append((f"{name}:{i}", "flow", f"{pre}{m.group(2)}={m.group(3)},actions=drop"))
    return cases


def ovs_result(kind, flow):
    """What the installed ovs-ofctl makes of one flow string."""
    if kind == "file":
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(flow + "\n")
            path = f.name
        cmd = ["ovs-ofctl", "parse-flows", path]
    else:
        path = None
        cmd = ["ovs-ofctl", "parse-flow", flow]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if path:
        os.unlink(path)
    if p.returncode != 0:
        errs = [l for l in p.stderr.split("\n") if l.startswith("ovs-ofctl: ")]
        msg = errs[-1][len("ovs-ofctl: "):] if errs else p.stderr.strip().split("\n")[-1]
        msg = re.sub(r"^\S+\.txt:\d+: ", "", msg)
        return "error " + msg.replace("\t", " ")
    proto = ""
    for l in p.stdout.split("\n"):
        if l.startswith("chosen protocol: "):
            proto = l[len("chosen protocol: "):]
        m = re.match(r"\S+ (?:\(OF1\.\d\) )?\(xid=0x[0-9a-f]+\): ADD (.*)$", l)
        if m:
            return f"ok {proto} {m.group(1)}"
    return "error " + p.stdout.strip().split("\n")[-1]


def main():
    git_dir = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/openvswitch+ovs/repo"
    version = subprocess.run(["ovs-ofctl", "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0]
    commit = subprocess.run(["git", "-C", git_dir, "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    seen = set()
    rows = []
    for name in ("ovs-ofctl.at", "ofp-actions.at"):
        for source, kind, flow in extract(name, at_file(git_dir, name)):
            if "\t" in flow or (kind, flow) in seen:
                continue
            seen.add((kind, flow))
            rows.append((source, kind, flow, ovs_result(kind, flow)))
    out = os.path.join(HERE, "ovs_ofctl_cases.txt")
    with open(out, "w") as f:
        f.write(f"# Generated by ovs_ofctl_cases.py from Open vSwitch {commit}\n")
        f.write(f"# tests/ovs-ofctl.at and tests/ofp-actions.at; results of {version}.\n")
        f.write("# SOURCE\tKIND\tINPUT\tRESULT\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"{len(rows)} cases -> {out}")


if __name__ == "__main__":
    main()
