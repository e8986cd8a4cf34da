#!/usr/bin/python3
"""Open vSwitch's own OpenFlow tests (tests/ofproto.at) run against a live Open vSwitch 3.1
bridge and a vecswitch daemon, step by step, for vecswitch/tests/ofproto_at.rs to compare.

    ofproto_at.py extract [OVS_GIT_DIR]   (default /work/.mirror/openvswitch+ovs/repo)
        reads HEAD:tests/ofproto.at, selects the tests (below) and writes ofproto_at_cases.json
        beside this script (committed: the test needs no OVS checkout).
    ofproto_at.py run VECSWITCH_BINARY [TITLE_SUBSTRING...]
        runs every selected case (or those whose title has one of the substrings) against both
        switches and prints, on stdout, a JSON object {"cases": [{"title", "line", "steps":
        [{"cmd", "ovs": {"rc", "out", "err"}, "ours": {...}, "same"}]}]}; "same" is after the
        normalisations below.

Selection. A test is taken when its steps are only:
  - OVS_VSWITCHD_START, bare or with `add-port br0 pN -- set Interface pN type=dummy
    [ofport_request=N]` or `set bridge br0 protocols=...` (ignored: both sides speak 1.3 only);
  - `add_of_ports br0 N...` (dummy ports pN at OpenFlow port N);
  - AT_DATA (a file in the step's directory), AT_CHECK of a shell command, and plain shell
    lines, whose programs are ovs-ofctl (not `monitor`, `snoop`, `--detach`) and text tools
    (echo, cat, sort, sed, grep, printf, head, tail, ofctl_strip, strip_xids, ...);
  - OVS_VSWITCHD_STOP, AT_CLEANUP, AT_KEYWORDS, comments.
Tests defined inside m4 templates (`$1`), and tests whose title or commands name OpenFlow 1.0
(helper-owned elsewhere, and ovs-ofctl's NXM defaults), 1.4 or 1.5, NXM or an extension, or a
feature vecswitch does not claim (meters, queues, flow monitors, tunnel metadata, PTAP,
packet-in format NXT_PACKET_IN2), are left out and listed with the reason.

Versions: every ovs-ofctl invocation gets `-O OpenFlow13` (an -O OpenFlow10/11/12 in the test
becomes OpenFlow13): vecswitch speaks OpenFlow 1.3 only, and the OVS bridge is given
`protocols=OpenFlow13` so that both negotiate the same.

Set-up. OVS: ovsdb-server and `ovs-vswitchd --enable-dummy=override` in a private directory
(pcaps/ovs_reference.py), bridge br0 as OVS's add_of_br makes it (datapath_type=dummy,
fail-mode=secure, datapath id fedcba9876543210, hwaddr aa:55:aa:55:00:00), dummy ports pN
with ofport_request=N. vecswitch: `vecswitch run` in its own network and mount namespaces
(`unshare --net --mount`, so that its LOCAL tap can be named br0 and /sys shows it), with
IPv6 off there (no router solicitations on LOCAL) and LOCAL set up before the first step (as
OVS's dummy LOCAL is live), bridge br0 with `local = true`, the same
datapath id, fail-mode secure, no rules, pcap ports pN at OpenFlow port N, and a `punix:`
listener at RUNDIR/br0.mgmt. Each step runs under bash in a directory of its own side, with
OVS_RUNDIR pointing at that side's run directory, so that `ovs-ofctl ... br0` reaches
br0.mgmt of that switch; OVS's ofctl_strip and strip_* shell functions are defined.

Normalisations (applied to both sides' stdout and stderr before comparing; each is what
legitimately differs between two switches or two runs):
  - ` (xid=0x...)`: transaction ids are the client's and the switches' counters;
  - `duration=N.NNNs` → `duration=?s`, `idle_age=N`/`hard_age=N` → `?`: time;
  - dump-desc's Manufacturer/Hardware/Software/Serial/DP description text: each switch's own;
  - an error's echoed request: after an `OFPT_ERROR ... : CODE` line ovs-ofctl decodes the
    failed request the switch sent back; OVS returns it whole, vecswitch (as OpenFlow 1.3
    §7.4.4 asks, "at least 64 bytes") its first 64 bytes, so only the error line (type and
    code) is compared;
  - `ovs-ofctl: ` messages naming the switch's socket path: the path is replaced by `SOCKET`;
  - the group lines of dump-groups and dump-group-stats are put in group id order (OVS
    answers in its hash table's order, which changes from run to run; vecswitch by id);
  - port MAC addresses (`addr:...`, `hw_addr=...`): dummy and pcap ports draw theirs
    differently; and `current/advertised/supported/peer` and `speed:` lines of
    show/dump-ports-desc: a netdev-dummy port has no link features, a pcap port reports 10G.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "pcaps"))

CASES = os.path.join(HERE, "ofproto_at_cases.json")

# ---------------------------------------------------------------------------------------------
# Extraction

KNOWN_MACROS = {"AT_SETUP", "AT_CLEANUP", "AT_CHECK", "AT_DATA", "AT_KEYWORDS",
                "OVS_VSWITCHD_START", "OVS_VSWITCHD_STOP", "AT_SKIP_IF", "AT_CAPTURE_FILE",
                "OVS_WAIT_UNTIL", "OVS_WAIT_UNTIL_EQUAL", "OVS_WAIT_WHILE", "AT_FAIL_IF",
                "OVS_APP_EXIT_AND_WAIT", "CHECK_CT_DPIF", "OVS_WAIT", "AT_BANNER",
                "AT_XFAIL_IF", "OVS_CHECK_BATCH_GROW", "OVS_TRAFFIC_VSWITCHD_START",
                "m4_define", "m4_foreach", "m4_if", "AS_BOX", "dnl", "OVS_TUNNEL_METADATA",
                "CHECK_ASYNC", "AT_CHECK_UNQUOTED"}

# Programs a step may run besides ovs-ofctl.
TEXT_TOOLS = {"echo", "cat", "sort", "sed", "grep", "printf", "head", "tail", "ofctl_strip",
              "strip_xids", "strip_duration", "strip_used", "wc", "tr", "cut", "uniq", "awk",
              "true", "false", "test", "for", "do", "done", "in", "seq", "if", "then", "fi",
              "else", "ofctl_strip_bytes", "expr", "sleep"}

LEFT_OUT_TITLE = [
    (r"OpenFlow 1\.0|\(NXM\)|- NXM|NXT|extension", "OpenFlow 1.0, NXM or a Nicira extension"),
    (r"OpenFlow ?1\.[45]|OpenFlow1[45]", "OpenFlow 1.4/1.5 only"),
    (r"queue", "queues (not claimed)"),
    (r"meter", "meters (not claimed)"),
    (r"monitor", "flow monitors (not claimed)"),
    (r"tun_md|tunnel metadata", "tunnel metadata TLVs (not claimed)"),
    (r"PTAP|packet_type", "packet-type aware pipelines (not claimed)"),
]


def unquote(s):
    """Removes one level of m4 quotes ([ and ]), keeping nested ones."""
    out, depth = [], 0
    for c in s:
        if c == "[":
            if depth > 0:
                out.append(c)
            depth += 1
        elif c == "]":
            depth -= 1
            if depth > 0:
                out.append(c)
        else:
            out.append(c)
    return "".join(out)


def parse_args(text, i):
    """m4 arguments of a call whose `(` is at text[i]: (args as written, index after `)`)."""
    assert text[i] == "("
    i += 1
    args, cur, q, p = [], [], 0, 0
    at_start = True
    while i < len(text):
        c = text[i]
        if at_start and c in " \t\n":
            i += 1
            continue
        at_start = False
        if c == "[":
            q += 1
        elif c == "]":
            q -= 1
        elif q == 0 and c == "(":
            p += 1
        elif q == 0 and c == ")":
            if p == 0:
                args.append("".join(cur))
                return args, i + 1
            p -= 1
        elif q == 0 and p == 0 and c == ",":
            args.append("".join(cur))
            cur, at_start = [], True
            i += 1
            continue
        cur.append(c)
        i += 1
    raise ValueError("unterminated macro call")


def arg_text(a):
    """An AT_CHECK/AT_DATA argument as the shell sees it: collected (one level of quotes off)
    and rescanned (another); `dnl` ends a line's text; @&t@ is empty."""
    t = unquote(unquote(a)).replace("@&t@", "")
    t = re.sub(r"dnl[^\n]*\n", "", t)
    return t


def statements(body):
    """The test body as (kind, payload, line) statements: ("macro", (name, [args]), line) or
    ("shell", text, line)."""
    out, i, line = [], 0, 1
    while i < len(body):
        c = body[i]
        if c in " \t":
            i += 1
            continue
        if c == "\n":
            line += 1
            i += 1
            continue
        start_line = line
        if body.startswith("dnl", i) or c == "#":
            j = body.find("\n", i)
            i = len(body) if j < 0 else j
            continue
        m = re.match(r"[A-Za-z_][A-Za-z_0-9]*", body[i:])
        if m and m.group(0) in KNOWN_MACROS:
            name = m.group(0)
            j = i + len(name)
            if j < len(body) and body[j] == "(":
                args, k = parse_args(body, j)
            else:
                args, k = [], j
            line += body[i:k].count("\n")
            out.append(("macro", (name, args), start_line))
            i = k
            continue
        # A shell line, with its continuations and brackets balanced.
        j, q = i, 0
        while j < len(body):
            if body[j] == "[":
                q += 1
            elif body[j] == "]":
                q -= 1
            elif body[j] == "\n" and q <= 0 and not body[j - 1] == "\\":
                break
            j += 1
        h = re.search(r"<<-?\s*'?(\w+)'?\s*$", body[i:j])
        if h:
            end = body.find("\n%s\n" % h.group(1), j)
            j = len(body) if end < 0 else end + len(h.group(1)) + 1
        text = body[i:j]
        line += text.count("\n")
        out.append(("shell", unquote(text).replace("@&t@", ""), start_line))
        i = j
    return out


def map_versions(cmd):
    """Every ovs-ofctl invocation speaks OpenFlow 1.3: (new command, reason to leave out)."""
    if re.search(r"-O\s*[Oo]pen[Ff]low1[45]|-OpenFlow1[45]|--protocols", cmd):
        return None, "OpenFlow 1.4/1.5 only"
    cmd = re.sub(r"-O\s*[Oo]pen[Ff]low1[0-3]\b", "", cmd)
    cmd = re.sub(r"\bovs-ofctl\b(?!\.)", "ovs-ofctl -O OpenFlow13", cmd)
    return cmd, None


def check_command(cmd):
    """Why a shell command cannot be a step (None: it can)."""
    for bad, why in [(r"ovs-vsctl|ovs-appctl|ovs-vswitchd|ovsdb", "drives OVS itself"),
                     (r"\bmonitor\b|\bsnoop\b|--detach|--pidfile", "a monitor or daemon"),
                     (r"OVS_WAIT|on_exit|kill\b|\$1|\$2", "waits, daemons or a template"),
                     (r"ovs-pcap|ovs-ofctl\s[^|]*\bofp-parse-pcap|ofctl_add_flow",
                      "pcap tooling"),
                     (r"meter|queue|tun_metadata|tlv", "a feature vecswitch does not claim"),
                     (r"&\s*$|&\s*\n", "a background job")]:
        if re.search(bad, cmd):
            return why
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", cmd)
    bare = re.sub(r"<<-?\s*'?(\w+)'?\n.*?\n\1(\n|$)", "\n", bare, flags=re.S)
    functions = set(re.findall(r"(\w+)\s*\(\)", bare))
    for word in re.findall(r"(?:^|[|;&(\n{]|&&|\|\||\$\(|\bdo\b|\bthen\b)\s*([A-Za-z_][\w.-]*)",
                          bare):
        if word in functions or re.match(r"\w+=", bare[bare.find(word):]):
            continue
        if word not in TEXT_TOOLS and word != "ovs-ofctl" and word not in functions:
            return "runs %s" % word
    if subprocess.run(["bash", "-n", "-c", cmd], capture_output=True).returncode != 0:
        return "shell control flow around m4 macros"
    return None


def vswitchd_start(args):
    """Ports of an OVS_VSWITCHD_START's ovs-vsctl arguments, or a reason to leave out."""
    if not args or not args[0].strip():
        return [], None
    if len(args) > 1 and any(a.strip() for a in args[1:]):
        return None, "OVS_VSWITCHD_START with daemon arguments"
    text = arg_text(args[0]).replace("\\\n", " ")
    ports, auto = [], 1
    for part in re.split(r"\s--\s*", text):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"add-port br0 (p\d+)", part)
        if m:
            ports.append([m.group(1), None])
            continue
        m = re.fullmatch(r"set [Ii]nterface (p\d+) type=dummy(?: ofport_request=(\d+))?", part)
        if m and ports and ports[-1][0] == m.group(1):
            ports[-1][1] = int(m.group(2)) if m.group(2) else None
            continue
        if re.fullmatch(r"set bridge br0 protocols=[\w,]+", part):
            continue
        return None, "OVS_VSWITCHD_START with `%s`" % part
    taken = {n for _, n in ports if n}
    for p in ports:
        if p[1] is None:
            while auto in taken:
                auto += 1
            p[1] = auto
            taken.add(auto)
    return ports, None


def command_step(cmd, kind, line, ports, steps):
    """Adds a shell command (an AT_CHECK's or a plain line) to `steps`, or add_of_ports's
    ports to `ports`; returns why the test cannot be taken (None: it can)."""
    m = re.fullmatch(r"add_of_ports(?: --pcap)? br0((?: \d+)+)", cmd)
    if m:
        ports += [["p%s" % n, int(n)] for n in m.group(1).split()]
        return None
    why = check_command(cmd)
    if why:
        return "line %d: %s" % (line, why)
    cmd, why = map_versions(cmd)
    if why:
        return why
    steps.append({"kind": kind, "cmd": cmd, "line": line})
    return None


def select(title, body):
    """A test's case, or (None, reason)."""
    if "$1" in title or "$" in title:
        return None, "an m4 template"
    for pat, why in LEFT_OUT_TITLE:
        if re.search(pat, title):
            return None, why
    ports, steps = [], []
    for kind, payload, line in statements(body):
        if kind == "shell":
            why = command_step(payload.strip(), "shell", line, ports, steps)
            if why:
                return None, why
            continue
        name, args = payload
        if name in ("AT_KEYWORDS", "AT_CLEANUP", "OVS_VSWITCHD_STOP", "AT_CAPTURE_FILE"):
            continue
        if name == "OVS_VSWITCHD_START":
            p, why = vswitchd_start(args)
            if why:
                return None, why
            ports += p
            continue
        if name == "AT_DATA":
            steps.append({"kind": "data", "file": arg_text(args[0]).strip(),
                          "content": arg_text(args[1]) if len(args) > 1 else "",
                          "line": line})
            continue
        if name == "AT_CHECK":
            why = command_step(arg_text(args[0]).strip(), "check", line, ports, steps)
            if why:
                return None, why
            continue
        return None, "line %d: %s" % (line, name)
    if not any("ovs-ofctl" in s.get("cmd", "") for s in steps):
        return None, "no ovs-ofctl step"
    return {"title": title, "ports": ports, "steps": steps}, None


def extract(git_dir):
    at = subprocess.run(["git", "-C", git_dir, "show", "HEAD:tests/ofproto.at"], check=True,
                        capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "-C", git_dir, "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    cases, left_out, total = [], [], 0
    for m in re.finditer(r"AT_SETUP\(\[(.*?)\]\)\n(.*?)\nAT_CLEANUP", at, re.S):
        total += 1
        title = m.group(1)
        line = at[:m.start()].count("\n") + 1
        case, why = select(title, m.group(2))
        if case:
            case["line"] = line
            for s in case["steps"]:
                s["line"] += line
            cases.append(case)
        else:
            left_out.append({"title": title, "line": line, "why": why})
    doc = {"source": "Open vSwitch %s tests/ofproto.at" % commit, "tests": total,
           "cases": cases, "left_out": left_out}
    with open(CASES, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("%d tests, %d selected, %d left out" % (total, len(cases), len(left_out)))


# ---------------------------------------------------------------------------------------------
# Running

PRELUDE = r"""
ofctl_strip () {
    sed '
s/ (xid=0x[0-9a-fA-F]*)//
s/ duration=[0-9.]*s,//
s/ cookie=0x0,//
s/ table=0,//
s/ n_packets=0,//
s/ n_offload_packets=[0-9]*,//
s/ n_bytes=0,//
s/ n_offload_bytes=[0-9]*,//
s/ idle_age=[0-9]*,//
s/ hard_age=[0-9]*,//
s/dp_hash=0x[0-9a-f]*\//dp_hash=0x0\//
s/recirc_id=0x[0-9a-f]*,/recirc_id=0x0,/
s/[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z|//
s/dir\/[0-9]*\/br0.mgmt/dir\/XXXX\/br0.mgmt/
'
}
ofctl_strip_bytes () { sed 's/ n_bytes=[0-9]*,//'; }
strip_xids () { sed 's/ (xid=0x[0-9a-fA-F]*)//'; }
strip_used () { sed -E 's/used:[0-9]+\.[0-9]*/used:0.0/'; }
strip_duration () { sed 's/duration=[0-9.]*s,//'; }
"""

DPID = "fedcba9876543210"


def normalise(text, rundir):
    text = text.replace(rundir, "RUNDIR")
    text = re.sub(r" \(xid=0x[0-9a-fA-F]+\)", "", text)
    text = re.sub(r"duration=[0-9.]+s", "duration=?s", text)
    text = re.sub(r"(idle_age|hard_age)=[0-9]+", r"\1=?", text)
    text = re.sub(r"(Manufacturer|Hardware|Software|Serial Num|DP Description): .*",
                  r"\1: ?", text)
    text = re.sub(r"(addr:|hw_addr=)[0-9a-f]{2}(:[0-9a-f]{2}){5}", r"\1MAC", text)
    text = re.sub(r"\n\s+(current|advertised|supported|peer): [^\n]*", "", text)
    text = re.sub(r"\n\s+speed: [^\n]*", "", text)
    # An error's echoed request: only the error line is compared.
    lines, out, skip = text.split("\n"), [], False
    for ln in lines:
        if re.match(r"(ovs-ofctl: )?OFPT_ERROR", ln) or re.search(r"OFPT_ERROR", ln):
            out.append(ln)
            skip = True
            continue
        if skip and (ln.startswith("OFPT_") or ln.startswith("ONFT_") or ln.startswith(" ")
                     or ln.startswith("(***") or ln.startswith("OFPST_")
                     or ln.startswith("***") or ln.startswith("NXT_")
                     or re.match(r"[0-9a-f]{8}  ", ln)):
            continue
        skip = False
        out.append(ln)
    # Groups in a dump, in id order: OVS answers in its hash table's order, which varies.
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and out[j].startswith(" group_id="):
            j += 1
        out[i:j] = sorted(out[i:j], key=lambda ln: int(re.match(r" group_id=(\d+)", ln).group(1)))
        i = j + 1
    return "\n".join(out)


class Vecswitch:
    def __init__(self, binary, ports):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="vecswitch-ofproto-at-")
        self.env = dict(os.environ, OVS_RUNDIR=self.dir)
        self.ports = ports
        self.proc = None

    def start(self):
        rules = os.path.join(self.dir, "empty.flows")
        open(rules, "w").close()
        lines = ["socket = %s" % json.dumps(os.path.join(self.dir, "ctl.sock")),
                 "[[bridge]]", 'name = "br0"', "local = true",
                 "rules = %s" % json.dumps(rules),
                 "controller = [%s]" % json.dumps("punix:" + os.path.join(self.dir, "br0.mgmt")),
                 'datapath-id = "%s"' % DPID, 'fail-mode = "secure"']
        for name, n in self.ports:
            lines += ["[[bridge.port]]", "name = %s" % json.dumps(name), 'type = "pcap"',
                      "tx = %s" % json.dumps(os.path.join(self.dir, name + ".pcap")),
                      "ofport = %d" % n]
        cfg = os.path.join(self.dir, "vecswitch.toml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "vecswitch.log"), "w")
        # In a network namespace of its own (and a mount namespace, for a /sys of that
        # network namespace: the daemon reads its ports' link state there), without IPv6 (the kernel would send router
        # solicitations out of the tap, which LOCAL's counters would show), LOCAL's tap up
        # once it is there, as OVS's dummy LOCAL is.
        script = ("mount -t sysfs sysfs /sys\n"
                  "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                  "net.ipv6.conf.default.disable_ipv6=1\n"
                  '"$0" run --config "$1" & pid=$!\n'
                  "for i in $(seq 200); do ip link show br0 >/dev/null 2>&1 && break; "
                  "sleep 0.05; done\n"
                  "ip link set br0 up && touch \"$2\"\n"
                  "wait $pid\n")
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "bash", "-c", script, self.binary, cfg,
                                      os.path.join(self.dir, "local-up")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        mgmt = os.path.join(self.dir, "br0.mgmt")
        for _ in range(150):
            if os.path.exists(mgmt) and os.path.exists(os.path.join(self.dir, "local-up")):
                return mgmt
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        with open(os.path.join(self.dir, "vecswitch.log")) as f:
            raise RuntimeError("vecswitch did not come up: " + f.read()[-2000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            # The daemon and the shell that waits for it: the process group this started.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_steps(case, env, rundir):
    work = tempfile.mkdtemp(prefix="ofproto-at-work-")
    results = []
    try:
        for s in case["steps"]:
            if s["kind"] == "data":
                with open(os.path.join(work, s["file"]), "w") as f:
                    f.write(s["content"])
                continue
            try:
                r = subprocess.run(["bash", "-c", PRELUDE + s["cmd"]], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=20)
                # As AT_CHECK's, the step's output is in files stdout and stderr for the next.
                for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
                    with open(os.path.join(work, name), "w") as f:
                        f.write(text)
                res = {"rc": r.returncode, "out": normalise(r.stdout, rundir),
                       "err": normalise(r.stderr, rundir)}
            except subprocess.TimeoutExpired:
                res = {"rc": None, "out": "", "err": "timed out"}
            results.append(res)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def run_ovs(case):
    from ovs_reference import Ovs, mgmt_socket
    ovs = Ovs()
    ovs.start()
    try:
        ovs.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=dummy",
                  "fail-mode=secure", "other-config:datapath-id=" + DPID,
                  "other-config:hwaddr=aa:55:aa:55:00:00", "protocols=OpenFlow13")
        for name, n in case["ports"]:
            ovs.vsctl("add-port", "br0", name, "--", "set", "interface", name, "type=dummy",
                      "ofport_request=%d" % n)
        mgmt_socket(ovs, "br0")
        return run_steps(case, ovs.env, ovs.dir)
    finally:
        ovs.stop()


def run_ours(case, binary):
    v = Vecswitch(binary, case["ports"])
    try:
        v.start()
        return run_steps(case, v.env, v.dir)
    finally:
        v.stop()


def run(binary, filters):
    with open(CASES) as f:
        doc = json.load(f)
    out = []
    for case in doc["cases"]:
        if filters and not any(x in case["title"] for x in filters):
            continue
        ovs = run_ovs(case)
        ours = run_ours(case, binary)
        steps = []
        cmds = [s for s in case["steps"] if s["kind"] != "data"]
        for s, a, b in zip(cmds, ovs, ours):
            steps.append({"cmd": s["cmd"], "line": s["line"], "ovs": a, "ours": b,
                          "same": a == b})
        out.append({"title": case["title"], "line": case["line"], "steps": steps})
        print("%s: %s" % ("same" if all(s["same"] for s in steps) else "DIFFERENT",
                          case["title"]), file=sys.stderr)
    json.dump({"source": doc["source"], "tests": doc["tests"], "cases": out}, sys.stdout,
              indent=1)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "extract":
        extract(sys.argv[2] if len(sys.argv) > 2 else "/work/.mirror/openvswitch+ovs/repo")
    elif len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
