#!/usr/bin/python3
"""veth benchmarks of GitHub issue 4: every peer in the same run.

Topology (root namespace, unique names TAG+{g,a,b,k}):

    generator -> [g]==veth==[a]  switch  [b]==veth==[k] -> native XDP_DROP sink

Item 1 ("gen"): a generator straight on [b] into the sink [k] (no switch).
Item 2 ("fwd"): vecswitch (afxdp), OVS 3.1 userspace (afxdp), OVS-DPDK (net_af_xdp), testpmd io.
Item 3 ("afp"): vecswitch with type=afpacket ports (compared with item 2's afxdp rows).

Throughput is what the sink drops (`ethtool -S k` rx_queue_0_xdp_drops) over the window;
cycles/packet are the switch's PMD busy (processing) cycles over packets received in the
same window. Called by run.sh, which installs, builds and cleans up behind us as well.
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: rc={r.returncode}: {r.stderr.strip()[-800:]}")
    return r.stdout


class Bench:
    def __init__(self, args):
        self.a = args
        self.tag = args.tag
        self.work = args.work
        self.ifs = {k: self.tag + k for k in "gabk"}
        self.procs = []  # Popen objects we started
        self.extra_pids = []  # daemons that detached (OVS)
        self.cfg = dict(warmup=args.warmup, measure=args.measure, runs=args.runs)
        self.results = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": args.mode,
            "machine": machine(),
            "config": self.cfg,
            "gen": [],
            "fwd": [],
            "afp": [],
            "notes": [],
        }
        self.generator = None

    # ---------------------------------------------------------------- plumbing
    def veths(self):
        g, a, b, k = (self.ifs[x] for x in "gabk")
        for x, y in ((g, a), (b, k)):
            sh(f"ip link del {x}", check=False)
            sh(f"ip link add {x} type veth peer name {y}")
        for i in (g, a, b, k):
            sh(f"sysctl -qw net.ipv6.conf.{i}.disable_ipv6=1", check=False)
            sh(f"ip link set {i} up")
        sh(f"ip link set {k} xdpdrv obj {self.a.xdp_obj} sec xdp")

    def xdp_off(self, *names):
        for n in names:
            sh(f"ip link set {self.ifs[n]} xdp off", check=False)

    def ethtool(self, n):
        out = sh(f"ethtool -S {self.ifs[n]}")
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*(\S+):\s+(\d+)\s*$", out, re.M)}

    def sink(self):
        return self.ethtool("k").get("rx_queue_0_xdp_drops", 0)

    def offered(self):
        # Frames the switch's first port saw at its XDP hook (redirected to the socket or not).
        # Without an XDP program on it (AF_PACKET ports) the interface's rx counter instead.
        xdp = self.ethtool("a").get("rx_queue_0_xdp_packets", 0)
        rx = int(open(f"/sys/class/net/{self.ifs['a']}/statistics/rx_packets").read())
        return (xdp, rx)

    def spawn(self, cmd, **kw):
        log("  $", " ".join(cmd))
        p = subprocess.Popen(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL),
                             stderr=kw.pop("stderr", subprocess.STDOUT), start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGINT, wait=5):
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
            p.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        except ProcessLookupError:
            pass

    def cleanup(self):
        for p in self.procs:
            self.stop(p, signal.SIGTERM, 3)
        for pid in self.extra_pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    # -------------------------------------------------------- foreign CPU load
    def ours(self):
        pids = {os.getpid(), os.getppid()} | set(self.extra_pids)
        pids |= {p.pid for p in self.procs}
        return pids

    def foreign_cpu(self):
        """CPU seconds of user processes that are not ours (nor our children), so far."""
        ours = self.ours()
        tot = {}
        hz = os.sysconf("SC_CLK_TCK")
        for st in glob.glob("/proc/[0-9]*/stat"):
            try:
                s = open(st).read()
            except OSError:
                continue
            pid = int(st.split("/")[2])
            f = s[s.rfind(")") + 2:].split()
            ppid, pgid, sid = int(f[1]), int(f[2]), int(f[3])
            if pid == 2 or ppid == 2:
                continue  # kernel threads (softirq work of our own traffic lands there)
            if pid in ours or ppid in ours or pgid in ours or sid in ours:
                continue
            tot[pid] = (int(f[11]) + int(f[12])) / hz
        return tot

    def wait_quiet(self, limit=120):
        """Waits (up to `limit` s) until other users leave at least ~1.6 cores idle."""
        t0 = time.time()
        while True:
            a = self.foreign_cpu()
            time.sleep(1)
            b = self.foreign_cpu()
            busy = sum(max(0.0, b[p] - a.get(p, 0.0)) for p in b)
            if busy < 0.4 or time.time() - t0 > limit:
                return busy
            log(f"  machine busy ({busy:.2f} cores used by others), waiting")

    # -------------------------------------------------------------- generators
    def gen_cmd(self, kind, port, size, flows, secs):
        if kind == "pktgen":
            return ["taskset", "-c", "0", self.a.vecswitch, "pktgen", "--port", self.ifs[port],
                    "--rate", "max", "--duration", f"{secs}s", "--size", str(size),
                    "--flows", str(flows), "--json", "--no-progress"]
        l2 = size - 4  # sizes are on the wire with FCS, like pktgen's --size
        mode = (["--forward-mode=txonly"] if flows == 1
                else ["--forward-mode=flowgen", f"--flowgen-flows={flows}"])
        return ["dpdk-testpmd", "-l", "0,1", "--main-lcore", "1", "--no-huge", "-m", "512",
                "--no-pci", f"--file-prefix={self.tag}gen",
                f"--vdev=net_af_xdp0,iface={self.ifs[port]}", "--"] + mode + [
                f"--txpkts={l2}", "--auto-start", "--stats-period", "1",
                "--total-num-mbufs=16384"]

    def measure(self, kind, port, size, flows, switch=None):
        """One run: start the generator, warm up, read counters over the window, stop."""
        w, m = self.cfg["warmup"], self.cfg["measure"]
        for attempt in range(3):
            quiet = self.wait_quiet()
            logf = open(os.path.join(self.work, f"gen-{kind}.log"), "w")
            p = self.spawn(self.gen_cmd(kind, port, size, flows, w + m + 2), stdout=logf,
                           stderr=subprocess.STDOUT)
            time.sleep(w)
            if p.poll() is not None:
                logf.close()
                raise RuntimeError(f"generator {kind} exited: see {logf.name}:\n"
                                   + open(logf.name).read()[-1500:])
            if switch:
                switch.window_start()
            s0, o0, f0, t0 = self.sink(), self.offered(), self.foreign_cpu(), time.time()
            time.sleep(m)
            s1, o1, f1, t1 = self.sink(), self.offered(), self.foreign_cpu(), time.time()
            swr = switch.window_end() if switch else {}
            self.stop(p, signal.SIGINT, 10)
            logf.close()
            dt = t1 - t0
            foreign = sum(max(0.0, f1[x] - f0.get(x, 0.0)) for x in f1) / dt
            r = {"generator": kind, "size": size, "flows": flows, "window_s": round(dt, 3),
                 "sink_mpps": (s1 - s0) / dt / 1e6, "foreign_cores": round(foreign, 3),
                 "quiet_before": round(quiet, 3)}
            if switch is not None:
                d = o1[0] - o0[0] if o1[0] > o0[0] else o1[1] - o0[1]
                r["offered_mpps"] = d / dt / 1e6
                r.update(swr)
            time.sleep(0.5)
            if foreign < 0.15 or attempt == 2:
                if foreign >= 0.15:
                    r["noisy"] = True
                return r
            log(f"  other work used {foreign:.2f} cores during the window: run again")
        return r

    def runs(self, kind, port, size, flows, switch=None, label=None):
        out = []
        for i in range(self.cfg["runs"]):
            r = self.measure(kind, port, size, flows, switch)
            log(f"  {label or kind} {size}B {flows} flows run {i + 1}: {r['sink_mpps']:.3f} Mpps"
                + (f", {r['cycles_per_packet']:.0f} cycles/pkt" if r.get("cycles_per_packet") else "")
                + (f", busy {r['busy_percent']:.0f} %" if r.get("busy_percent") is not None else ""))
            out.append(r)
        return summarize(out, label or kind, kind, size, flows)

    # --------------------------------------------------------------- item 1
    def item_gen(self):
        log("== item 1: generator -> veth -> native XDP_DROP")
        flows = [1] if self.a.mode == "quick" else [1, 10000]
        for fl in flows:
            for kind in ("pktgen", "testpmd"):
                try:
                    self.results["gen"].append(self.runs(kind, "b", 64, fl))
                except RuntimeError as e:
                    log(f"  {kind} {fl} flows failed: {e}")
                    self.results["notes"].append(f"generator {kind} {fl} flows: failed: {e}")
                self.xdp_off("b")
                time.sleep(1)
        best = {}
        for fl in flows:
            rows = {r["generator"]: r for r in self.results["gen"] if r["flows"] == fl}
            best[fl] = max(rows, key=lambda k: rows[k]["sink_mpps"]) if rows else "pktgen"
        self.results["gen_ratio"] = {
            str(fl): ratio(self.results["gen"], fl, "pktgen", "testpmd") for fl in flows}
        return best

    # --------------------------------------------------------------- items 2, 3
    def item_fwd(self, switches, combos, gen, section):
        for name in switches:
            log(f"== {section}: {name}")
            sw = SWITCHES[name](self)
            try:
                sw.start()
                for size, flows in combos:
                    g = gen[flows] if isinstance(gen, dict) else gen
                    r = self.runs(g, "g", size, flows, sw, label=name)
                    r["switch"] = name
                    r.update(sw.describe())
                    self.results[section].append(r)
                    self.save()
            except Exception as e:  # a peer that fails does not stop the others
                log(f"  {name} failed: {e}")
                self.results["notes"].append(f"{name}: failed: {e}")
            finally:
                sw.stop()
                self.xdp_off("a", "b")
                time.sleep(1)

    def save(self):
        # Date, time and mode in the name: a later run never overwrites an earlier one.
        stamp = self.results["date"][:19].replace(":", "")
        path = os.path.join(
            ROOT, f"results-{stamp}-{self.a.mode}{self.a.out_suffix}.json"
        )
        with open(path, "w") as f:
            json.dump(self.results, f, indent=1)
        return path


def summarize(runs, label, gen, size, flows):
    med = lambda k: statistics.median([r[k] for r in runs if r.get(k) is not None]) \
        if any(r.get(k) is not None for r in runs) else None
    out = {"label": label, "generator": gen, "size": size, "flows": flows,
           "sink_mpps": med("sink_mpps"), "offered_mpps": med("offered_mpps"),
           "cycles_per_packet": med("cycles_per_packet"), "busy_percent": med("busy_percent"),
           "runs": runs}
    out["noisy"] = any(r.get("noisy") for r in runs)
    return out


def ratio(rows, flows, a, b, key="sink_mpps", field="generator", size=64):
    ra = [r for r in rows if r[field] == a and r["flows"] == flows and r["size"] == size]
    rb = [r for r in rows if r[field] == b and r["flows"] == flows and r["size"] == size]
    if not ra or not rb or not rb[0][key] or ra[0][key] is None:
        return None
    return ra[0][key] / rb[0][key]


def machine():
    m = {}
    try:
        cpu = open("/proc/cpuinfo").read()
        m["cpu"] = re.search(r"model name\s*:\s*(.*)", cpu).group(1)
    except (OSError, AttributeError):
        pass
    m["cpus"] = os.cpu_count()
    m["kernel"] = os.uname().release
    for k, cmd in (("ovs", "ovs-vswitchd --version | head -1"),
                   ("dpdk", "dpkg-query -W -f '${Version}' dpdk-dev"),
                   ("git", "git -C " + ROOT + " rev-parse --short HEAD")):
        try:
            m[k] = sh(cmd, check=False).strip()
        except OSError:
            pass
    return m


# ======================================================================== switches
class VecSwitch:
    def __init__(self, b, kind="afxdp"):
        self.b, self.kind, self.p = b, kind, None
        self.binary = b.a.vecswitch
        self.sock = os.path.join(b.work, "vs.sock")

    def start(self):
        b = self.b
        rules = os.path.join(b.work, "vs.flows")
        open(rules, "w").write("in_port=1,actions=output:2\n")
        conf = os.path.join(b.work, "vs.toml")
        bp = "true" if b.a.vs_busy_poll else "false"
        open(conf, "w").write(
            f'pmd-cores = [1]\nbatch-size = {b.a.vs_batch}\nbusy-poll = {bp}\n'
            f'[[bridge]]\nname = "br0"\nlocal = false\nrules = "{rules}"\n'
            f'[[bridge.port]]\nname = "{b.ifs["a"]}"\ntype = "{self.kind}"\nofport = 1\n'
            f'[[bridge.port]]\nname = "{b.ifs["b"]}"\ntype = "{self.kind}"\nofport = 2\n')
        self.log = open(os.path.join(b.work, f"vecswitch-{self.kind}.log"), "w")
        self.p = b.spawn([self.binary, "run", "--config", conf, "--socket", self.sock],
                         stdout=self.log)
        for _ in range(100):
            time.sleep(0.2)
            if self.p.poll() is not None:
                raise RuntimeError("vecswitch exited: " + open(self.log.name).read()[-1000:])
            if os.path.exists(self.sock) and sh(
                    [self.binary, "pmd-stats", "--json", "--socket", self.sock],
                    check=False).strip():
                return
        raise RuntimeError("vecswitch did not come up")

    def snap(self):
        out = json.loads(sh([self.binary, "pmd-stats", "--json", "--socket", self.sock]))
        pmds = out if isinstance(out, list) else out.get("data", out.get("reply", out))
        busy = sum(p["stats"]["busy_cycles"] for p in pmds)
        idle = sum(p["stats"]["idle_cycles"] for p in pmds)
        rx = sum(p["stats"]["rx_packets"] for p in pmds)
        batches = sum(p["stats"]["rx_batches"] for p in pmds)
        sleeps = sum(p["stats"]["sleeps"] for p in pmds)
        return dict(busy=busy, idle=idle, rx=rx, batches=batches, sleeps=sleeps)

    def window_start(self):
        self.s0 = self.snap()

    def window_end(self):
        s0, s1 = self.s0, self.snap()
        d = {k: s1[k] - s0[k] for k in s0}
        return {"cycles_per_packet": d["busy"] / d["rx"] if d["rx"] else None,
                "busy_percent": 100 * d["busy"] / (d["busy"] + d["idle"]) if d["busy"] + d["idle"] else None,
                "avg_batch": d["rx"] / d["batches"] if d["batches"] else None,
                "sleeps": d["sleeps"]}

    def describe(self):
        return {"ports": self.kind, "batch": self.b.a.vs_batch, "busy_poll": self.b.a.vs_busy_poll}

    def stop(self):
        self.b.stop(self.p, signal.SIGTERM, 10)


class VecSwitchAfPacket(VecSwitch):
    def __init__(self, b):
        super().__init__(b, "afpacket")


class VecSwitchB(VecSwitch):
    """Another vecswitch binary (--vecswitch-b), for A/B runs of a change in one run."""
    def __init__(self, b):
        super().__init__(b)
        self.binary = b.a.vecswitch_b


class Ovs:
    """Open vSwitch 3.1 userspace datapath; `dpdk` uses ovs-vswitchd-dpdk with net_af_xdp ports."""
    dpdk = False

    def __init__(self, b):
        self.b = b
        self.d = os.path.join(b.work, "ovs-dpdk" if self.dpdk else "ovs")
        self.env = dict(os.environ, OVS_RUNDIR=self.d, OVS_DBDIR=self.d, OVS_LOGDIR=self.d)
        self.ctl = None

    def run(self, cmd, check=True):
        return sh(cmd, check=check, env=self.env)

    def vsctl(self, *a):
        return self.run(["ovs-vsctl", "--timeout=30"] + list(a))

    def appctl(self, *a):
        return self.run(["ovs-appctl", "-t", self.ctl] + list(a))

    def start(self):
        b = self.b
        self.start_daemon()
        for n, ofp in (("a", 1), ("b", 2)):
            ifn = b.ifs[n]
            if self.dpdk:
                typ = ["type=dpdk", f"options:dpdk-devargs=net_af_xdp{ofp - 1},iface={ifn}"]
            else:
                typ = ["type=afxdp"]
            self.vsctl("add-port", "br0", ifn, "--", "set", "Interface", ifn,
                       f"ofport_request={ofp}", *typ)
        self.run(["ovs-ofctl", "del-flows", "br0"])
        self.run(["ovs-ofctl", "add-flow", "br0", "in_port=1,actions=output:2"])
        time.sleep(2)
        self.check_ports([b.ifs["a"], b.ifs["b"]])

    def check_ports(self, names):
        for n in names:
            err = self.vsctl("get", "Interface", n, "error").strip()
            if err and err != "[]":
                raise RuntimeError(f"port {n}: {err}")

    def start_daemon(self, vswitchd_args=()):
        """ovsdb-server and ovs-vswitchd (with `vswitchd_args`) in our own directory, PMD on
        core 1, bridge br0."""
        b, d = self.b, self.d
        os.makedirs(d, exist_ok=True)
        self.run(["ovsdb-tool", "create", f"{d}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema"])
        self.run(["ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                  f"--pidfile={d}/ovsdb-server.pid", f"--log-file={d}/ovsdb-server.log",
                  "--detach", "--no-chdir"])
        b.extra_pids.append(int(open(f"{d}/ovsdb-server.pid").read()))
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=0x2")
        if self.dpdk:
            self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                       "other_config:dpdk-init=true", "other_config:dpdk-socket-mem=1024",
                       "other_config:dpdk-socket-limit=1024",
                       f'other_config:dpdk-extra="--no-pci --huge-dir={b.a.huge} --file-prefix={b.tag}ovs"')
            binary = b.a.ovs_dpdk
        else:
            binary = "ovs-vswitchd"
        self.run([binary, *vswitchd_args, f"unix:{d}/db.sock",
                  f"--pidfile={d}/ovs-vswitchd.pid", f"--log-file={d}/ovs-vswitchd.log",
                  "--detach", "--no-chdir"])
        pid = int(open(f"{d}/ovs-vswitchd.pid").read())
        b.extra_pids.append(pid)
        ctl = glob.glob(f"{d}/*.{pid}.ctl")
        self.ctl = ctl[0] if ctl else f"{d}/ovs-vswitchd.{pid}.ctl"
        self.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")

    def pmd_stats(self):
        out = self.appctl("dpif-netdev/pmd-stats-show")
        sec = re.split(r"\n(?=\S)", out)
        for s in sec:
            if "core_id 1" in s:
                g = lambda k: int(re.search(k + r":\s+(\d+)", s).group(1)) if re.search(k + r":\s+(\d+)", s) else 0
                return dict(rx=g("packets received"), busy=g("processing cycles"),
                            idle=g("idle cycles"))
        raise RuntimeError("no PMD on core 1 in pmd-stats-show:\n" + out)

    def window_start(self):
        self.appctl("dpif-netdev/pmd-stats-clear")

    def window_end(self):
        d = self.pmd_stats()
        return {"cycles_per_packet": d["busy"] / d["rx"] if d["rx"] else None,
                "busy_percent": 100 * d["busy"] / (d["busy"] + d["idle"]) if d["busy"] + d["idle"] else None}

    def describe(self):
        if self.dpdk:
            return {"ports": "dpdk net_af_xdp"}
        modes = {}
        for n in ("a", "b"):
            st = self.vsctl("get", "Interface", self.b.ifs[n], "status").strip()
            m = re.search(r'xdp-mode(?:-in-use)?="?([\w-]+)', st)
            modes[n] = m.group(1) if m else st
        return {"ports": "afxdp", "xdp_mode": modes}

    def stop(self):
        # Delete the bridge first: OVS's userspace datapath leaves its taps (br0, ovs-netdev)
        # on the host when it is only killed.
        try:
            self.vsctl("--if-exists", "del-br", "br0")
        except Exception:  # the daemon may already be gone
            pass
        for name in ("ovs-vswitchd", "ovsdb-server"):
            try:
                pid = int(open(f"{self.d}/{name}.pid").read())
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    time.sleep(0.1)
                    os.kill(pid, 0)
            except (OSError, ValueError):
                pass


class OvsDpdk(Ovs):
    dpdk = True


class TestpmdIo:
    """dpdk-testpmd io forwarding between two net_af_xdp ports, forwarding lcore 1, run
    interactively so that its forwarding counters can be cleared after the warm-up."""

    def __init__(self, b):
        self.b, self.p = b, None

    def start(self):
        b = self.b
        self.logf = os.path.join(b.work, "testpmd-io.log")
        self.p = b.spawn(["stdbuf", "-oL", "dpdk-testpmd", "-l", "0,1", "--main-lcore", "0", "--no-huge", "-m", "1024",
                          "--no-pci", f"--file-prefix={b.tag}fwd",
                          f"--vdev=net_af_xdp0,iface={b.ifs['a']}",
                          f"--vdev=net_af_xdp1,iface={b.ifs['b']}", "--", "-i",
                          "--forward-mode=io", "--nb-cores=1", "--record-core-cycles",
                          "--total-num-mbufs=32768"],
                         stdin=subprocess.PIPE, stdout=open(self.logf, "w"))
        time.sleep(4)
        self.cmd("start")
        time.sleep(1)
        if self.p.poll() is not None:
            raise RuntimeError("testpmd exited: " + open(self.logf).read()[-1500:])

    def cmd(self, c):
        self.p.stdin.write((c + "\n").encode())
        self.p.stdin.flush()

    def window_start(self):
        self.cmd("clear fwd stats all")

    def window_end(self):
        self.mark = os.path.getsize(self.logf)
        self.cmd("show fwd stats all")
        for _ in range(50):
            time.sleep(0.1)
            with open(self.logf) as f:
                f.seek(self.mark)
                out = f.read()
            m = re.search(r"CPU cycles/packet=([\d.]+) \((?:busy|total) cycles=(\d+) / total (\w+) packets=(\d+)\)", out)
            if m:
                return {"cycles_per_packet": float(m.group(1)), "busy_percent": None}
        return {"cycles_per_packet": None, "busy_percent": None}

    def describe(self):
        return {"ports": "net_af_xdp"}

    def stop(self):
        if self.p and self.p.poll() is None:
            try:
                self.cmd("stop")
                self.cmd("quit")
                self.p.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.b.stop(self.p, signal.SIGTERM, 5)


SWITCHES = {"vecswitch": VecSwitch, "vecswitch-b": VecSwitchB,
            "vecswitch-afpacket": VecSwitchAfPacket, "ovs-afxdp": Ovs,
            "ovs-dpdk": OvsDpdk, "testpmd-io": TestpmdIo}


# ======================================================================== reports
def table(rows, cols):
    # (max over a list: a run stopped before its first row has no rows)
    w = [max([len(c[0])] + [len(fmt(r.get(c[1]), c[2])) for r in rows]) for c in cols]
    lines = ["  ".join(c[0].ljust(w[i]) for i, c in enumerate(cols))]
    for r in rows:
        lines.append("  ".join(fmt(r.get(c[1]), c[2]).ljust(w[i]) for i, c in enumerate(cols)))
    return "\n".join(lines)


def fmt(v, f):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "noisy" if v else ""
    return format(v, f) if f else str(v)


def report(res):
    out = []
    if res["gen"]:
        out.append("Item 1: generator -> veth -> native XDP_DROP (64 B, sink Mpps, median of runs)")
        out.append(table(res["gen"], [("generator", "generator", ""), ("flows", "flows", ""),
                                      ("Mpps", "sink_mpps", ".3f"), ("", "noisy", "")]))
        for fl, r in res.get("gen_ratio", {}).items():
            if r is not None:
                out.append(f"  pktgen / testpmd, {fl} flow(s): {r:.2f}x (target >= 1.0x)")
    for sec, title in (("fwd", "Item 2: forwarding veth -> switch -> veth -> XDP_DROP"),
                       ("afp", "Item 3: vecswitch AF_PACKET vs AF_XDP ports")):
        rows = res[sec]
        if sec == "afp":
            rows = [r for r in res["fwd"] if r["switch"] == "vecswitch"] + rows
        if not rows:
            continue
        out.append("")
        out.append(title + f" (generator as listed; median of {res['config']['runs']})")
        out.append(table(rows, [("switch", "switch", ""), ("size", "size", ""), ("flows", "flows", ""),
                                ("gen", "generator", ""), ("offered", "offered_mpps", ".3f"),
                                ("Mpps", "sink_mpps", ".3f"), ("cyc/pkt", "cycles_per_packet", ".0f"),
                                ("busy%", "busy_percent", ".0f"), ("", "noisy", "")]))
    if res["fwd"]:
        out.append("")
        out.append("Ratios (vecswitch vs peers, same size/flows):")
        for size in sorted({r["size"] for r in res["fwd"]}):
            for flows in sorted({r["flows"] for r in res["fwd"]}):
                rows = {r["switch"]: r for r in res["fwd"] if r["size"] == size and r["flows"] == flows}
                v = rows.get("vecswitch")
                if not v or not v["sink_mpps"]:
                    continue
                peers = {k: r for k, r in rows.items() if k != "vecswitch" and r["sink_mpps"]}
                s = f"  {size} B {flows} flows:"
                if peers:
                    bp = max(peers, key=lambda k: peers[k]["sink_mpps"])
                    s += f" throughput / best peer ({bp}) = {v['sink_mpps'] / peers[bp]['sink_mpps']:.2f}x (>= 1.0)"
                o = rows.get("ovs-afxdp")
                if o and o.get("cycles_per_packet") and v.get("cycles_per_packet"):
                    s += f"; cycles/pkt / OVS afxdp = {v['cycles_per_packet'] / o['cycles_per_packet']:.2f}x (<= 0.5)"
                o = rows.get("ovs-dpdk")
                if o and o.get("cycles_per_packet") and v.get("cycles_per_packet"):
                    s += f"; / OVS-DPDK = {v['cycles_per_packet'] / o['cycles_per_packet']:.2f}x"
                out.append(s)
    if res["notes"]:
        out.append("")
        out += ["note: " + n for n in res["notes"]]
    return "\n".join(out)


def write_chart(path):
    """The SVG bar chart beside the results JSON (benches/chart.py); a chart that fails
    does not cost the run its report."""
    sys.path.insert(0, os.path.join(ROOT, ".."))
    try:
        import chart
        return chart.write(path)
    except Exception as e:  # noqa: BLE001
        return f"not written: {e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("items", nargs="*", default=["gen", "fwd", "afp"])
    ap.add_argument("--mode", default="full", choices=["full", "quick"])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--vecswitch", required=True)
    ap.add_argument("--xdp-obj", required=True)
    ap.add_argument("--ovs-dpdk", default="")
    ap.add_argument("--huge", default="")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--measure", type=float, default=5)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--generator", default="auto", choices=["auto", "pktgen", "testpmd"])
    ap.add_argument("--switches", default="vecswitch,ovs-afxdp,ovs-dpdk,testpmd-io")
    ap.add_argument("--vecswitch-b", default="", help="binary of the vecswitch-b switch")
    ap.add_argument("--out-suffix", default="", help="results-<date>T<time>-<mode><suffix>.json")
    # The daemon's default batch-size (256; BENCHMARKS.md, "The default batch").
    ap.add_argument("--vs-batch", type=int, default=256)
    ap.add_argument("--vs-busy-poll", type=int, default=1)
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 1 if args.mode == "quick" else 3
    if "vecswitch-b" in args.switches.split(",") and not args.vecswitch_b:
        ap.error("--switches vecswitch-b needs --vecswitch-b BINARY")
    b = Bench(args)

    def term(sig, frm):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    try:
        b.veths()
        gen = {1: "pktgen", 10000: "pktgen"}
        if "gen" in args.items:
            gen.update(b.item_gen())
            b.save()
        if args.generator != "auto":
            gen = {1: args.generator, 10000: args.generator}
        # testpmd's txonly makes one flow; its flowgen mode makes the 10k.
        b.results["generator_used"] = {str(k): v for k, v in gen.items()}
        if args.mode == "quick":
            combos = [(64, 1)]
        else:
            combos = [(64, 1), (64, 10000), (1500, 1), (1500, 10000)]
        switches = [s for s in args.switches.split(",") if s]
        if not args.ovs_dpdk and "ovs-dpdk" in switches:
            switches.remove("ovs-dpdk")
            b.results["notes"].append("ovs-dpdk skipped: ovs-vswitchd-dpdk not available")
        if "fwd" in args.items:
            b.item_fwd(switches, combos, gen, "fwd")
        if "afp" in args.items:
            b.item_fwd(["vecswitch-afpacket"], combos, gen, "afp")
    finally:
        b.cleanup()
        path = b.save()
        print(report(b.results))
        print(f"\nresults: {path}")
        print(f"chart: {write_chart(path)}")


if __name__ == "__main__":
    main()
