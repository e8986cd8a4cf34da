#!/usr/bin/python3
"""PACKET_IN -> FLOW_MOD under a packet-in storm: what it costs the PMD's other flows (issue 23).

One `vecswitch run` daemon, one PMD, bridge pistorm0 (no LOCAL tap) with four generator ports
(no I/O, so no veth limit): `other` (ofport 1, 100 UDP flows at --other-rate, default max)
forwarded by `in_port=1,actions=output:2` to the sink `sink` (ofport 2); `storm` (ofport 3,
--storm-flows distinct UDP flows at --storm-rate) that misses to the table-miss rule `priority=0,
actions=controller`; and `learned` (ofport 4), where the controller's rules send what they
learned. The controller is this script: an OpenFlow 1.3 client on raw sockets that listens on
127.0.0.1 (the bridge's `controller=tcp:`), answers each PACKET_IN of a flow it has not seen
with a FLOW_MOD (`priority=50,in_port=3,udp,nw_src=S,tp_src=P,actions=output:4`) and a
BARRIER, and times PACKET_IN received -> BARRIER_REPLY received (the rule is in and, per the
barrier, every PMD uses it).

Windows of --seconds each, alternating: baseline (storm port absent), storm (storm port
added; its first second is not measured), for --rounds rounds. For each window: packets the
sink got from `other` (port-stats tx of `sink`) per second and the PMD's processing cycles per
packet (pmd-stats), packet-ins received, flow mods installed, and the packet-ins the bridge
dropped (`drop-reasons`: bridge.pistorm0.packet-in-queue-full), upcalls, revalidations and
megaflows (pmd-stats), and the CPU time the PMD thread and the daemon's other threads got
(/proc). --no-flow-mods counts the PACKET_INs and answers none; --pin keeps this script and the
daemon's threads other than its PMD on core 0. Prints the ratio of the other flows' rate under
the storm to without, raw and per second of CPU the PMD thread got (on a loaded 2-core machine
the control side's CPU comes partly out of the PMD's core).

    benches/openflow/packet_in_storm.py [--seconds S] [--rounds R] [--storm-rate PPS]
        [--storm-flows N] [--other-rate PPS|max] [--no-flow-mods] [--pin] [--vecswitch PATH]
        [--json FILE]
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import shutil
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BR = "pistorm0"  # no LOCAL tap, a name no one else uses
OFP13 = 4
HELLO, ECHO_REQ, ECHO_REP, PACKET_IN, FLOW_MOD, BARRIER_REQ, BARRIER_REP = 0, 2, 3, 10, 14, 20, 21


def oxm(field, value):
    return struct.pack("!HBB", 0x8000, field << 1, len(value)) + value


def flow_mod(xid, src_ip, src_port):
    fields = (oxm(0, struct.pack("!I", 3)) + oxm(5, struct.pack("!H", 0x0800))
              + oxm(10, b"\x11") + oxm(11, src_ip) + oxm(15, src_port))
    mlen = 4 + len(fields)
    match = struct.pack("!HH", 1, mlen) + fields + b"\0" * ((8 - mlen % 8) % 8)
    output = struct.pack("!HHIH6x", 0, 16, 4, 0)
    inst = struct.pack("!HH4x", 4, 8 + len(output)) + output
    body = struct.pack("!QQBBHHHIIIH2x", 0, 0, 0, 0, 0, 0, 50, 0xFFFFFFFF, 0xFFFFFFFF,
                       0xFFFFFFFF, 0) + match + inst
    return struct.pack("!BBHI", OFP13, FLOW_MOD, 8 + len(body), xid) + body


class Controller(threading.Thread):
    """OpenFlow 1.3 controller: one FLOW_MOD + BARRIER per new flow seen in a PACKET_IN."""

    def __init__(self, answer=True):
        super().__init__(daemon=True)
        self.answer = answer
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.packet_ins = 0
        self.flow_mods = 0
        self.installed = 0
        self.latencies = []
        self.seen = set()
        self.pending = {}
        self.connected = threading.Event()
        self.stop = False
        self.xid = 1

    def run(self):
        conn, _ = self.lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(struct.pack("!BBHI", OFP13, HELLO, 8, 0))
        self.connected.set()
        buf = b""
        while not self.stop:
            data = conn.recv(1 << 20)
            if not data:
                return
            now = time.perf_counter()
            buf += data
            out = []
            off = 0
            while len(buf) - off >= 8:
                _, typ, length, xid = struct.unpack_from("!BBHI", buf, off)
                if len(buf) - off < length:
                    break
                msg = buf[off:off + length]
                off += length
                if typ == ECHO_REQ:
                    out.append(struct.pack("!BBHI", OFP13, ECHO_REP, length, xid) + msg[8:])
                elif typ == PACKET_IN:
                    self.packet_in(msg, now, out)
                elif typ == BARRIER_REP:
                    t = self.pending.pop(xid, None)
                    if t is not None:
                        with self.lock:
                            self.installed += 1
                            self.latencies.append(now - t)
            buf = buf[off:]
            if out:
                conn.sendall(b"".join(out))

    def packet_in(self, msg, now, out):
        # header 8, buffer_id 4, total_len 2, reason 1, table 1, cookie 8, then the match.
        mlen = struct.unpack_from("!H", msg, 26)[0]
        data = msg[24 + (mlen + 7) // 8 * 8 + 2:]
        with self.lock:
            self.packet_ins += 1
        key = (data[26:30], data[34:36])
        if not self.answer or len(data) < 42 or key in self.seen:
            return
        self.seen.add(key)
        self.xid += 2
        out.append(flow_mod(self.xid, *key))
        out.append(struct.pack("!BBHI", OFP13, BARRIER_REQ, 8, self.xid + 1))
        self.pending[self.xid + 1] = now
        with self.lock:
            self.flow_mods += 1

    def counts(self):
        with self.lock:
            return self.packet_ins, self.flow_mods, self.installed, len(self.latencies)


class Daemon:
    def __init__(self, exe, tmp):
        self.exe = exe
        self.sock = os.path.join(tmp, "vecswitch.sock")
        cfg = os.path.join(tmp, "vecswitch.toml")
        with open(cfg, "w") as f:
            f.write("socket = %s\n[[bridge]]\nname = \"%s\"\nlocal = false\n"
                    % (json.dumps(self.sock), BR))
        self.proc = subprocess.Popen([exe, "run", "--config", cfg],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(tmp, "d.log"), "w"))
        for _ in range(100):
            if os.path.exists(self.sock):
                return
            time.sleep(0.1)
        raise RuntimeError("the daemon did not open %s" % self.sock)

    def run(self, *args):
        r = subprocess.run([self.exe, *args[:1], "--socket", self.sock, *args[1:]],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("vecswitch %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def json(self, *args):
        return json.loads(self.run(*args, "--json"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def sample(d):
    """(sink tx packets, learned tx packets, PMD processing cycles, PMD packets, queue-full)."""
    tx = {p["port"]: p["stats"]["tx_packets"] for p in d.json("port-stats", BR)}
    pmds = d.json("pmd-stats")
    busy = sum(p["stats"]["busy_cycles"] for p in pmds)
    pk = sum(p["stats"]["rx_packets"] for p in pmds)
    cls = {k: sum(p["classify"][k] for p in pmds) for k in ("upcalls", "revalidations",
                                                          "revalidated-deleted")}
    cls["megaflows"] = sum(p["megaflows"] for p in pmds)
    ticks = {}
    for tid in os.listdir("/proc/%d/task" % d.proc.pid):
        try:
            with open("/proc/%d/task/%s/stat" % (d.proc.pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        # utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the comm.
        key = "pmd" if comm.startswith("pmd") else "control"
        ticks[key] = ticks.get(key, 0) + int(fields[11]) + int(fields[12])
    drops = d.run("drop-reasons")
    full = 0
    for line in drops.splitlines():
        if "packet-in-queue-full" in line:
            full = int(line.split()[-1])
    return {"t": time.perf_counter(), "sink": tx.get("sink", 0), "learned": tx.get("learned", 0),
            "busy": busy, "packets": pk, "queue_full": full, **cls,
            "pmd_ticks": ticks.get("pmd", 0), "control_ticks": ticks.get("control", 0)}


def window(d, ctl, seconds):
    a, ca = sample(d), ctl.counts()
    time.sleep(seconds)
    b, cb = sample(d), ctl.counts()
    dt = b["t"] - a["t"]
    hz = os.sysconf("SC_CLK_TCK")
    pk = b["packets"] - a["packets"]
    return {"seconds": dt,
            "other_pps": (b["sink"] - a["sink"]) / dt,
            "learned_pps": (b["learned"] - a["learned"]) / dt,
            "cycles_per_packet": (b["busy"] - a["busy"]) / pk if pk else None,
            "pmd_pps": pk / dt,
            "packet_ins_per_s": (cb[0] - ca[0]) / dt,
            "flow_mods_per_s": (cb[1] - ca[1]) / dt,
            "installs_per_s": (cb[2] - ca[2]) / dt,
            "queue_full": b["queue_full"] - a["queue_full"],
            "upcalls_per_s": (b["upcalls"] - a["upcalls"]) / dt,
            "revalidations_per_s": (b["revalidations"] - a["revalidations"]) / dt,
            "revalidated_deleted_per_s": (b["revalidated-deleted"] - a["revalidated-deleted"]) / dt,
            "megaflows": b["megaflows"],
            # CPU time the PMD thread (and the daemon's other threads) got, per second of wall.
            "pmd_cpu": (b["pmd_ticks"] - a["pmd_ticks"]) / hz / dt,
            "control_cpu": (b["control_ticks"] - a["control_ticks"]) / hz / dt,
            "load": os.getloadavg()[0]}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--storm-rate", default="10000")
    ap.add_argument("--storm-flows", type=int, default=1_000_000)
    ap.add_argument("--other-rate", default="max")
    ap.add_argument("--vecswitch", default=os.path.join(ROOT, "target/release/vecswitch"))
    ap.add_argument("--no-flow-mods", action="store_true",
                    help="count the PACKET_INs, answer none (the storm without rule changes)")
    ap.add_argument("--pin", action="store_true",
                    help="keep this script and the daemon's threads other than its PMD "
                         "(pmd0, pinned to the last core) on core 0")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vecswitch-pistorm-")
    ctl = Controller(answer=not a.no_flow_mods)
    ctl.start()
    d = Daemon(a.vecswitch, tmp)
    if a.pin:
        os.sched_setaffinity(0, {0})
        for tid in os.listdir("/proc/%d/task" % d.proc.pid):
            with open("/proc/%d/task/%s/comm" % (d.proc.pid, tid)) as f:
                if not f.read().startswith("pmd"):
                    os.sched_setaffinity(int(tid), {0})
    rows = []
    try:
        d.run("del-flows", BR)
        d.run("add-port", BR, "sink", "type=generator", "profile=size=64,flows=1,proto=udp",
              "count=1", "ofport=2")
        d.run("add-port", BR, "learned", "type=generator",
              "profile=size=64,flows=1,proto=udp", "count=1", "ofport=4")
        d.run("add-flow", BR, "priority=100,in_port=1,actions=output:2")
        d.run("add-flow", BR, "priority=0,actions=controller")
        d.run("set-controller", BR, "tcp:127.0.0.1:%d" % ctl.port)
        if not ctl.connected.wait(15):
            raise RuntimeError("the bridge did not connect to the controller")
        d.run("add-port", BR, "other", "type=generator",
              "profile=size=64,flows=100,proto=udp,src-ip=10.0.0.1", "rate=%s" % a.other_rate,
              "ofport=1")
        time.sleep(2)
        for r in range(a.rounds):
            rows.append(dict(window(d, ctl, a.seconds), phase="baseline", round=r))
            d.run("add-port", BR, "storm", "type=generator",
                  "profile=size=64,flows=%d,proto=udp,src-ip=172.16.0.1" % a.storm_flows,
                  "rate=%s" % a.storm_rate, "ofport=3")
            time.sleep(1)
            rows.append(dict(window(d, ctl, a.seconds), phase="storm", round=r))
            d.run("del-port", BR, "storm")
            time.sleep(1)
        rows.append(dict(window(d, ctl, a.seconds), phase="baseline", round=a.rounds))
        rules = sum(1 for line in d.run("dump-flows", BR).splitlines() if "tp_src=" in line)
    finally:
        ctl.stop = True
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = ctl.latencies
    print("%-9s %5s %6s %11s %8s %11s %10s %9s %8s %9s %8s %9s %5s %7s %7s" % (
        "phase", "round", "secs", "other pps", "cyc/pkt", "packet-in/s", "flow-mod/s",
        "learned/s", "q-full", "upcalls/s", "reval/s", "megaflows", "load", "pmd-cpu", "ctl-cpu"))
    for w in rows:
        print(("%-9s %5d %6.1f %11.0f %8.1f %11.0f %10.0f %9.0f %8d %9.0f %8.0f %9d %5.1f"
               " %7.2f %7.2f") % (
            w["phase"], w["round"], w["seconds"], w["other_pps"], w["cycles_per_packet"] or 0,
            w["packet_ins_per_s"], w["flow_mods_per_s"], w["learned_pps"], w["queue_full"],
            w["upcalls_per_s"], w["revalidations_per_s"], w["megaflows"], w["load"],
            w["pmd_cpu"], w["control_cpu"]))
    base = [w["other_pps"] for w in rows if w["phase"] == "baseline"]
    storm = [w["other_pps"] for w in rows if w["phase"] == "storm"]
    ratio = (sum(storm) / len(storm)) / (sum(base) / len(base))
    print("other flows under the storm / without: %.3f (target >= 0.95)" % ratio)
    # Per second of CPU the PMD thread got: on a shared machine the control side's CPU (the
    # daemon's control thread and this script) comes partly out of the PMD's core.
    per_cpu = {ph: [w["other_pps"] / w["pmd_cpu"] for w in rows
                    if w["phase"] == ph and w["pmd_cpu"]] for ph in ("baseline", "storm")}
    cpu_ratio = ((sum(per_cpu["storm"]) / len(per_cpu["storm"]))
                 / (sum(per_cpu["baseline"]) / len(per_cpu["baseline"])))
    print("the same per second of CPU the PMD thread got: %.3f" % cpu_ratio)
    print("rules the controller installed: %d; PACKET_IN -> BARRIER_REPLY over %d flow mods: "
          "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms" % (
              rules, len(lat), 1e3 * (pct(lat, 50) or 0), 1e3 * (pct(lat, 90) or 0),
              1e3 * (pct(lat, 99) or 0), 1e3 * (max(lat) if lat else 0)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rows": rows, "ratio": ratio,
                       "ratio_per_pmd_cpu": cpu_ratio, "rules": rules,
                       "latency_ms": {str(p): 1e3 * pct(lat, p) for p in (50, 90, 99)} if lat
                       else None,
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=1)


if __name__ == "__main__":
    main()
