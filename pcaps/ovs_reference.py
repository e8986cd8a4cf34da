#!/usr/bin/python3
"""Replays scenarios through a real Open vSwitch, for a second opinion on gen.py's predictions.

Usage: /usr/bin/python3 pcaps/ovs_reference.py OUTDIR [SCENARIO...]

Needs Debian's openvswitch-switch (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl,
ovs-appctl); it is an optional review tool, not part of any test. It starts a private
ovsdb-server and `ovs-vswitchd --enable-dummy=override` in a temporary directory (no kernel
module, no real interfaces, nothing outside that directory is touched), builds the scenario's
bridge from scenario.toml with dummy ports (ofport, tag/trunks/vlan_mode as configured),
loads rules.txt with ovs-ofctl, injects every input frame in time order with
`ovs-appctl netdev-dummy/receive`, captures each port's transmissions with the dummy port's
`tx_pcap` option into OUTDIR/<scenario>/<port>.pcap, and stops both daemons (by pid).
Then compare: `/usr/bin/python3 pcaps/crosscheck.py SCENARIO --out OUTDIR/SCENARIO`.

Scenarios with an underlay (tunnels) run in a second ovs-vswitchd started with
`--enable-dummy --disable-system`, as tests/tunnel-push-pop.at does, so that vxlan and geneve
ports are OVS's own native tunnels: the underlay bridge gets LOCAL's MAC as hwaddr, its
address with `netdev-dummy/ip4addr`, its connected route with `ovs/route/add`, and static
neighbours with `tnl/neigh/set`; LOCAL's transmissions go to OUTDIR/<scenario>/<underlay>.pcap.

A scenario that expects packet-ins (gen.py's `pins=`) gets `ovs-ofctl -O OpenFlow13 monitor`
on the bridge for the run, its packet-ins written as OUTDIR/<scenario>/controller.txt in
replay's form; `crosscheck.py --ovs` compares them with the predictions.

A scenario with `netflow` gets OVS's NetFlow on the bridge, sending to UDP sockets of this
script (one per target, same family); after the frames, `revalidator/purge` deletes the
datapath flows (and so sends their records), and the datagrams are written as
OUTDIR/<scenario>/netflow.txt. `crosscheck.py --ovs` compares their totals per flow and output
(packets, bytes, TCP flags) with the golden's: record boundaries depend on timing (active
timeouts, revalidations), as OVS's own NetFlow tests accept.

Known, intended differences from vecswitch: OVS forwards most malformed frames that vecswitch
drops with a parser reason (see malformed/README.md), and it cannot inject a 0-byte frame.
With tunnels (each declared in gen.py with `ovs=`, compared with `crosscheck.py --ovs`):
OVS forwards a Geneve packet with an unknown critical option and one with the OAM bit
(vecswitch drops them: unknown-critical-option, geneve-oam); it delivers a first outer
fragment of a tunnel packet to LOCAL as plain traffic (vecswitch drops it: outer-fragment);
while a tunnel's next hop is unresolved it sends fewer ARP requests than vecswitch (one
revalidation for the MACs one translation taught; vecswitch revalidates after each), 42 bytes
long (vecswitch pads to 60: vxlan-arp); its megaflow of a Geneve packet without options has no
mask on the option bytes, so a later packet of that megaflow whose mapped option is not the
first is handled as option-less (geneve-options). An underlay port's `mtu` becomes its
`mtu_request` (netdev-dummy keeps it, and refuses to send a frame longer than it plus the
Ethernet header); OVS drops an encapsulated frame too big for it without a word, where
vecswitch answers the sender with ICMP "fragmentation needed" or ICMPv6 "packet too big"
(tunnel-mtu).
With NAT (ct-snat): OVS sends a packet whose commit found the NAT range exhausted on
untranslated (it only logs; vecswitch drops it, ct-refused), and it keeps the IPv4 identifier
of a translated datagram with DF clear (vecswitch gives a new one: gen.py declares the
identifier as a range; ct-frag: the same for fragments, whose new identifier is the same in
each). With fragments (ct-frag), a list that expires: OVS 3.1 sends its fragments on marked
invalid with the next batch through conntrack (the rules drop them), vecswitch drops them
(as OVS 3.6+): the frames out are the same.
Not compared: the outer UDP source port's value (both hash the inner flow into
32768..60999, with different hashes: gen.py declares the range), the megaflows (OVS pops in
one pass and recirculates, vecswitch opens and classifies in one), the counters; and a
netdev-dummy port with an address answers ARP requests for it, as a host would (vecswitch
has no host stack: the scenarios send none).
"""

import os
import shutil
import signal
import socket
import threading
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep pcaps/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen  # noqa: E402
import netflow_records  # noqa: E402

# Time between injected frames, so that OVS handles each (and learns from it) before the next.
GAP = 0.05


class Ovs:
    def __init__(self, dummy="--enable-dummy=override"):
        # Scenarios with an underlay need OVS's own vxlan and geneve netdevs, which
        # `--enable-dummy=override` replaces with dummies: they run as tunnel-push-pop.at does,
        # with `--enable-dummy --disable-system`.
        self.dummy = dummy
        self.dir = tempfile.mkdtemp(prefix="vecswitch-ovs-")
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_LOGDIR=self.dir, OVS_DBDIR=self.dir,
                        OVS_SYSCONFDIR=self.dir)
        self.db = "unix:%s/db.sock" % self.dir
        self.pids = []

    def run(self, *args, check=True):
        r = subprocess.run(args, env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            # What ovs-vswitchd said last (a crash leaves its reason there).
            log = ""
            try:
                with open(os.path.join(self.dir, "ovs-vswitchd.log")) as f:
                    log = "".join(f.readlines()[-15:])
            except OSError:
                pass
            raise RuntimeError("%s: %s\novs-vswitchd.log ends:\n%s" % (" ".join(args), r.stderr.strip(), log))
        return r

    def start(self):
        conf = os.path.join(self.dir, "conf.db")
        self.run("ovsdb-tool", "create", conf, "/usr/share/openvswitch/vswitch.ovsschema")
        self.run("ovsdb-server", "--remote=punix:%s/db.sock" % self.dir, "--pidfile=%s/db.pid" % self.dir,
                 "--detach", "--log-file=%s/ovsdb-server.log" % self.dir, conf)
        self.pids.append(self.pidfile("db.pid"))
        self.vsctl("--no-wait", "init")
        self.run("ovs-vswitchd", *self.dummy.split(), self.db, "--pidfile=%s/vswitchd.pid" % self.dir,
                 "--detach", "--log-file=%s/ovs-vswitchd.log" % self.dir, "-vconsole:off")
        self.pids.append(self.pidfile("vswitchd.pid"))

    def pidfile(self, name):
        path = os.path.join(self.dir, name)
        for _ in range(50):
            if os.path.exists(path):
                with open(path) as f:
                    return int(f.read().strip())
            time.sleep(0.1)
        raise RuntimeError("%s did not appear" % path)

    def stop(self):
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
        # A daemon that did not go (a hung ovs-vswitchd) is killed.
        for pid in self.pids:
            for _ in range(20):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def vsctl(self, *args):
        return self.run("ovs-vsctl", "--db=" + self.db, "--timeout=10", *args)

    def appctl(self, *args, check=True):
        return self.run("ovs-appctl", "--timeout=30", "-t", "%s/ovs-vswitchd.%d.ctl" % (self.dir, self.pids[-1]), *args, check=check)

    def ofctl(self, *args):
        return self.run("ovs-ofctl", "--timeout=30", "-O", "OpenFlow10,OpenFlow13", *args)


def port_args(br, p, out):
    """ovs-vsctl words that add scenario port `p` (a dict of gen.py) to bridge `br`."""
    if "type" in p:
        args = ["add-port", br, p["name"], "--", "set", "interface", p["name"], "type=" + p["type"],
                "ofport_request=%d" % p["ofport"]]
        for k in gen.TUNNEL_KEYS:
            if k in p:
                v = p[k]
                args.append("options:%s=%s" % (k, ("true" if v else "false") if isinstance(v, bool) else v))
        return args
    args = ["add-port", br, p["name"], "--", "set", "interface", p["name"], "type=dummy",
            "ofport_request=%d" % p["ofport"], "options:tx_pcap=%s" % os.path.join(out, p["name"] + ".pcap")]
    if "mtu" in p:
        args.append("mtu_request=%d" % p["mtu"])
    if "mtu_request" in p:
        args.append("mtu_request=%d" % p["mtu_request"])
    if p.get("vlan_mode") == "access":
        args += ["--", "set", "port", p["name"], "vlan_mode=access", "tag=%d" % p["tag"]]
    elif p.get("vlan_mode") == "trunk":
        args += ["--", "set", "port", p["name"], "vlan_mode=trunk"]
        if p.get("trunks"):
            args += ["trunks=" + ",".join(map(str, p["trunks"]))]
    elif p.get("vlan_mode") in ("native-tagged", "native-untagged"):
        args += ["--", "set", "port", p["name"], "vlan_mode=" + p["vlan_mode"], "tag=%d" % p["tag"]]
        if p.get("trunks"):
            args += ["trunks=" + ",".join(map(str, p["trunks"]))]
    elif "vlan_mode" in p:
        raise SystemExit("ovs_reference.py: %s: vlan_mode %r is not mapped" % (p["name"], p["vlan_mode"]))
    return args


def dummy_bridge(ovs, br, ports):
    """Adds bridge `br` (datapath_type=dummy, fail-mode=secure) with dummy ports `ports`
    ([name, ofport] pairs); returns its management socket."""
    ovs.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=dummy", "fail-mode=secure")
    for name, ofport in ports:
        ovs.vsctl("add-port", br, name, "--", "set", "interface", name, "type=dummy",
                  "ofport_request=%d" % ofport)
    return mgmt_socket(ovs, br)


def mgmt_socket(ovs, br):
    """The bridge's management socket: ovs-ofctl talks to it in-process."""
    mgmt = "unix:%s/%s.mgmt" % (ovs.dir, br)
    for _ in range(50):
        if os.path.exists(mgmt[5:]):
            break
        time.sleep(0.1)
    return mgmt


def add_underlay(ovs, u, out):
    """The underlay bridge as tests/tunnel-push-pop.at builds it: a dummy bridge with the
    LOCAL MAC as hwaddr, dummy wire ports, the address on LOCAL (netdev-dummy/ip4addr), its
    connected route (ovs/route/add), static neighbours (tnl/neigh/set), and LOCAL's
    transmissions captured into <bridge>.pcap."""
    br = u["bridge"]
    ovs.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=dummy", "fail-mode=standalone",
              "protocols=OpenFlow10,OpenFlow13", "other-config:hwaddr=" + u["mac"], "--",
              "set", "interface", br, "options:tx_pcap=%s" % os.path.join(out, br + ".pcap"))
    for p in u["ports"]:
        ovs.vsctl(*port_args(br, p, out))
    ovs.appctl("netdev-dummy/ip4addr", br, u["address"])
    ip, plen = u["address"].split("/")
    net = ".".join(str(int(a) & int(m)) for a, m in zip(ip.split("."), str_mask(int(plen)).split(".")))
    ovs.appctl("ovs/route/add", "%s/%s" % (net, plen), br)
    for prefix, gw in u.get("routes", []):
        ovs.appctl("ovs/route/add", prefix, br, *([gw] if gw else []))
    for ip, m in u.get("neighbours", []):
        ovs.appctl("tnl/neigh/set", br, ip, m)
    mgmt = mgmt_socket(ovs, br)
    if u.get("rules") is not None:
        rules = os.path.join(out, "underlay-rules.txt")
        with open(rules, "w") as f:
            f.write("\n".join(u["rules"]) + "\n")
        ovs.ofctl("del-flows", mgmt)
        ovs.ofctl("add-flows", mgmt, rules)
    return br, mgmt


def str_mask(plen):
    m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
    return ".".join(str((m >> s) & 255) for s in (24, 16, 8, 0))


def replay(ovs, s, out):
    shutil.rmtree(out, ignore_errors=True)  # a dummy port's tx_pcap appends
    os.makedirs(out, exist_ok=True)
    br = "br0"
    if "vlan_limit" in s.options:
        ovs.vsctl("set", "Open_vSwitch", ".", "other_config:vlan-limit=%d" % s.options["vlan_limit"])
    under = add_underlay(ovs, s.underlay, out) if s.underlay else None
    ovs.vsctl("--may-exist", "add-br", br, "--", "set", "bridge", br, "datapath_type=dummy",
              "fail-mode=standalone", "protocols=OpenFlow10,OpenFlow13")
    for p in s.ports:
        ovs.vsctl(*port_args(br, p, out))
    # The rule connection is in-process: ovs-ofctl talks to the bridge's management socket.
    mgmt = mgmt_socket(ovs, br)
    if s.tlv_map:
        ovs.ofctl("add-tlv-map", mgmt, s.tlv_map)
    if "frag_mode" in s.options:
        ovs.ofctl("set-frags", mgmt, s.options["frag_mode"])
    if "ct_max_conns" in s.options:
        ovs.appctl("dpctl/ct-set-maxconns", str(s.options["ct_max_conns"]))
    for p in s.ports:
        if p.get("link") == "down":
            ovs.appctl("netdev-dummy/set-admin-state", p["name"], "down")
    if getattr(s, "groups", None) is not None:
        groups = os.path.join(out, "groups.txt")
        with open(groups, "w") as f:
            f.write("\n".join(s.groups) + "\n")
        ovs.ofctl("add-groups", mgmt, groups)
    if s.rules is not None:
        rules = os.path.join(out, "rules.txt")
        with open(rules, "w") as f:
            f.write("\n".join(s.rules) + "\n")
        ovs.ofctl("del-flows", mgmt)
        ovs.ofctl("add-flows", mgmt, rules)
    collector = NetflowCollector(ovs, br, s.netflow) if s.netflow else None
    monitor = Monitor(ovs, mgmt) if s.expected_packet_ins() else None
    time.sleep(0.3)
    notes = []
    for i, f in enumerate(s.frames):
        if not f.data:
            notes.append("#%d: 0-byte frame not injected" % (i + 1))
            continue
        time.sleep(f.pause_us / 1e6)
        r = ovs.appctl("netdev-dummy/receive", f.port, f.data.hex(), check=False)
        if r.returncode != 0:
            notes.append("#%d: refused: %s" % (i + 1, r.stderr.strip()))
        time.sleep(GAP)
    time.sleep(0.5)
    if collector:
        # As OVS's NetFlow tests end: every datagram flow goes, and its record with it.
        ovs.appctl("revalidator/purge", check=False)
        time.sleep(2)
        collector.write(os.path.join(out, "netflow.txt"))
    if monitor:
        monitor.write(os.path.join(out, "controller.txt"))
    with open(os.path.join(out, "dump-flows.txt"), "w") as fh:
        fh.write(ovs.ofctl("dump-flows", mgmt).stdout)
        if under:
            fh.write(ovs.ofctl("dump-flows", under[1]).stdout)
    with open(os.path.join(out, "dpctl-dump-flows.txt"), "w") as fh:
        fh.write(ovs.appctl("dpctl/dump-flows", check=False).stdout)
    if under:
        with open(os.path.join(out, "tnl.txt"), "w") as fh:
            for cmd in (["tnl/ports/show", "-v"], ["tnl/neigh/show"], ["ovs/route/show"], ["dpif/show"]):
                fh.write("$ %s\n%s\n" % (" ".join(cmd), ovs.appctl(*cmd, check=False).stdout))
    ovs.vsctl("del-br", br)
    if under:
        ovs.appctl("tnl/neigh/flush", check=False)
        ovs.appctl("ovs/route/del", check=False)
        ovs.vsctl("del-br", under[0])
    time.sleep(0.3)
    return notes


class Monitor:
    """`ovs-ofctl -O OpenFlow13 -mmm monitor` on the bridge (a controller connection with
    OpenFlow 1.3's default asynchronous configuration: no `invalid_ttl` packet-ins; a hex
    dump of each packet),
    written as replay's controller.txt is: `OFPT_PACKET_IN:` and the description, then
    ` data=` and the bytes in hex."""

    def __init__(self, ovs, mgmt):
        self.out = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(["stdbuf", "-oL", "ovs-ofctl", "-O", "OpenFlow13", "-mmm", "monitor", mgmt,
                                      "65534"], stdout=self.out, stderr=self.out, env=ovs.env)

    def write(self, path):
        time.sleep(0.5)
        self.proc.terminate()
        self.proc.wait()
        self.out.seek(0)
        text = self.out.read()
        with open(path + ".raw", "w") as f:
            f.write(text)
        with open(path, "w") as f:
            f.write(packet_ins_of_monitor(text))


def packet_ins_of_monitor(text):
    """The packet-ins of `ovs-ofctl -mmm monitor`'s output in controller.txt's form."""
    res = []
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        k += 1
        # OVS's own format (NXT_PACKET_IN2, which monitor asks for) prints the same fields.
        if not line.startswith("OFPT_PACKET_IN") and not line.startswith("NXT_PACKET_IN"):
            continue
        desc = line.split("):", 1)[1]
        data = ""
        while k < len(lines) and not lines[k].startswith(("OFPT_", "OFPST_", "NXT_")):
            more = lines[k]
            k += 1
            if more.startswith(" userdata="):
                desc += "\n" + more
            elif len(more) > 10 and all(c in "0123456789abcdef" for c in more[:8]) and "|" not in more:
                # The packet's dump, `00000000  02 00 ...-...` (the message's own, after it,
                # has an ASCII column)
                data += more[10:].replace(" ", "").replace("-", "")
        res.append("OFPT_PACKET_IN:%s\n data=%s\n" % (desc, data))
    return "".join(res)


class NetflowCollector:
    """UDP sockets standing in for a scenario's NetFlow targets (same family, a free port
    each) and OVS's NetFlow on the bridge sending to them; keeps every datagram with the
    target the scenario names."""

    def __init__(self, ovs, br, nf):
        self.socks = []
        actual = []
        for t in nf["targets"]:
            host, _ = t.rsplit(":", 1)
            v6 = host.startswith("[")
            sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((host.strip("[]"), 0))
            sock.settimeout(0.2)
            port = sock.getsockname()[1]
            self.socks.append((t, sock))
            actual.append("%s:%d" % (host, port))
        self.got = []
        self.done = False
        self.threads = [threading.Thread(target=self.receive, args=(t, sk), daemon=True) for t, sk in self.socks]
        for th in self.threads:
            th.start()
        args = ["targets=%s" % ",".join('"%s"' % a for a in actual)]
        for k in ("engine_type", "engine_id", "active_timeout"):
            if k in nf:
                args.append("%s=%d" % (k, nf[k]))
        args.append("add_id_to_interface=%s" % ("true" if nf.get("add_id_to_interface") else "false"))
        ovs.vsctl("--", "set", "Bridge", br, "netflow=@nf", "--", "--id=@nf", "create", "NetFlow", *args)

    def receive(self, target, sock):
        while not self.done:
            try:
                d = sock.recv(65536)
            except socket.timeout:
                continue
            self.got.append((target, d))

    def write(self, path):
        self.done = True
        for th in self.threads:
            th.join()
        for _, sk in self.socks:
            sk.close()
        with open(path, "w") as f:
            for target, d in self.got:
                f.write("\n".join(netflow_records.lines(target, d)) + "\n")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    out = argv[1]
    scenarios = gen.build(argv[2:])
    # A repeated input (`repeat`) would take one ovs-appctl call per frame played: hours.
    for s in [s for s in scenarios if any(s.repeats(p) > 1 for p in s.input_ports())]:
        print("%s: skipped, its input is played %d times (one ovs-appctl call a frame)"
              % (s.name, max(s.repeats(p) for p in s.input_ports())))
        scenarios.remove(s)
    failed = []
    for dummy, group in (("--enable-dummy=override", [s for s in scenarios if not s.underlay]),
                         ("--enable-dummy --disable-system", [s for s in scenarios if s.underlay])):
        if not group:
            continue
        ovs = None
        try:
            for s in group:
                # A scenario with connection tracking gets an ovs-vswitchd of its own: OVS
                # 3.1's userspace conntrack (with NAT) has left the daemon unresponsive for
                # the next scenario (ovs-vsctl timing out on add-br), and on a loaded machine
                # it now and then aborts in the middle of one.
                fresh = uses_conntrack(s)
                if ovs is not None and fresh:
                    ovs.stop()
                    ovs = None
                if ovs is None:
                    ovs = Ovs(dummy)
                    ovs.start()
                try:
                    notes = replay(ovs, s, os.path.join(out, s.name))
                except RuntimeError as e:
                    # The daemon failed (its log's end is in the message): this scenario
                    # failed, the next ones get a new daemon.
                    print("%s: FAILED: %s" % (s.name, e))
                    failed.append(s.name)
                    ovs.stop()
                    ovs = None
                    continue
                print("%s: done%s" % (s.name, "".join("\n  " + n for n in notes)))
                if fresh:
                    ovs.stop()
                    ovs = None
        finally:
            if ovs is not None:
                ovs.stop()
    if failed:
        print("failed: %s" % " ".join(failed))
        return 1
    return 0


def uses_conntrack(s):
    """Whether a rule of scenario `s` has a ct() action."""
    return any("ct(" in r for r in (s.rules or []))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
