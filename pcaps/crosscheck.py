#!/usr/bin/python3
"""Compares a replay's output pcaps with the predictions declared in gen.py, byte for byte.

Usage:
  /usr/bin/python3 pcaps/crosscheck.py SCENARIO... [--out DIR]
      compare DIR/<port>.pcap (default pcaps/<scenario>/expected/) with what gen.py says must
      leave each port, in order; print the drops of DIR/counters.json beside the expected
      drop reasons. Exit 1 on any difference in the frames.
  /usr/bin/python3 pcaps/crosscheck.py SCENARIO... --out DIR --ovs
      the same for an Open vSwitch run (ovs_reference.py): where gen.py says OVS differs on
      purpose (send(..., ovs=...)), compare with what it says OVS sends.
  /usr/bin/python3 pcaps/crosscheck.py --all
      the same for every scenario that has an expected/ directory.
  /usr/bin/python3 pcaps/crosscheck.py SCENARIO --write-predicted DIR
      write the predicted output pcaps (timestamp = that of the input frame) into DIR.

The predictions are independent of the switch: gen.py states, for each input frame, the exact
bytes expected on each output port (built with scapy, checksums recomputed from scratch). So a
golden that passes this check has been reviewed against the scenario's README table. Drop
reason names are only shown, not compared: the switch's names may differ from gen.py's.
Frames of different flows that arrived in the same rx batch may leave in either order (the
switch executes a batch grouped by megaflow, as OVS does); every other order is compared.
An encapsulated frame's outer UDP source port is a hash of the inner flow that OVS and
vecswitch compute differently: gen.py declares it as a range (gen.Loose, 32768..60999), and
only that it falls in the range is checked.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # keep pcaps/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen  # noqa: E402
import netflow_records  # noqa: E402
from check_checksums import read_pcap  # noqa: E402
from scapy.all import Ether  # noqa: E402


def summary(b):
    try:
        return Ether(b).summary()
    except Exception as e:  # scapy cannot dissect some malformed frames
        return "undecodable (%s)" % e


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def rx_batches(s):
    """The rx batch of every input frame, as replay forms them: runs of consecutive frames of
    one port (inputs are declared in time order), at most options.batch (default 32) long."""
    size = s.options.get("batch", 32)
    batch_of, batch, run, prev = [], -1, 0, None
    for f in s.frames:
        if f.port != prev or run == size:
            batch, run, prev = batch + 1, 0, f.port
        batch_of.append(batch)
        run += 1
    return batch_of


def batch_order(expected, got, batch_of):
    """Within one rx batch the switch executes packets grouped by megaflow, as OVS does, so
    frames of different flows of the same batch may leave in another order than they came.
    Reorders `expected` within each batch to follow `got` where the same bytes are there."""
    out, k = [], 0
    while k < len(expected):
        b = batch_of[expected[k][0]]
        seg = [e for e in expected[k:] if batch_of[e[0]] == b]
        seg = seg[: next((i for i, e in enumerate(seg) if batch_of[e[0]] != b), len(seg))]
        pool = list(seg)
        for g in got[len(out) : len(out) + len(seg)]:
            m = next((e for e in pool if gen.output_matches(e[1], e[2], g)), None)
            if m is not None:
                pool.remove(m)
                out.append(m)
            else:
                out.append(pool.pop(0))
        out.extend(pool)
        k += len(seg)
    return out


def compare(s, out_dir, ovs=False):
    """Returns the number of differences between out_dir and the predictions of s (with
    `ovs`, Open vSwitch's where it differs on purpose)."""
    problems = 0
    expected = s.expected_outputs(ovs)
    batch_of = rx_batches(s)
    print("== %s (%s)" % (s.name, out_dir))
    for port in s.port_names():
        path = os.path.join(out_dir, "%s.pcap" % port)
        exp = expected[port]
        if not os.path.exists(path):
            print("  %s: MISSING %s (expected %d frames)" % (port, path, len(exp)))
            problems += 1
            continue
        got = [b for _, b in read_pcap(path)]
        exp = batch_order(exp, got, batch_of)
        bad = []
        for k in range(max(len(exp), len(got))):
            e = exp[k] if k < len(exp) else None
            g = got[k] if k < len(got) else None
            if e is not None and g is not None and gen.output_matches(e[1], e[2], g):
                continue
            bad.append(k)
            if e is None:
                print("  %s out #%d: UNEXPECTED extra frame: %s" % (port, k + 1, summary(g)))
            elif g is None:
                f = s.frames[e[0]]
                print("  %s out #%d: MISSING (from input #%d on %s: %s)" % (port, k + 1, e[0] + 1, f.port, f.what))
            else:
                f = s.frames[e[0]]
                i = first_difference(e[1], g)
                print("  %s out #%d: DIFFERS from the prediction for input #%d (%s)" % (port, k + 1, e[0] + 1, f.what))
                print("      first difference at byte %d; lengths expected %d, got %d" % (i, len(e[1]), len(g)))
                print("      expected: %s" % e[1][max(0, i - 8) : i + 16].hex())
                print("      got:      %s" % g[max(0, i - 8) : i + 16].hex())
                print("      expected: %s" % summary(e[1]))
                print("      got:      %s" % summary(g))
        problems += len(bad)
        print("  %s: %d frames expected, %d present, %s" % (port, len(exp), len(got), "OK" if not bad else "%d WRONG" % len(bad)))
    if ovs and s.netflow:
        problems += compare_netflow(s, out_dir)
    problems += compare_packet_ins(s, out_dir)
    counters = os.path.join(out_dir, "counters.json")
    want = s.expected_drops()
    print("  drops expected (gen.py names): %s" % (", ".join("%s=%d" % kv for kv in sorted(want.items())) or "none"))
    if os.path.exists(counters):
        with open(counters) as f:
            c = json.load(f)
        drops = c.get("drops", {})
        print("  drops counted (counters.json): %s" % (", ".join("%s=%d" % kv for kv in sorted(drops.items())) or "none"))
        total_want, total_got = sum(want.values()), sum(drops.values())
        if total_want != total_got:
            print("  note: %d drops expected, %d counted (a frame may count under several nodes)" % (total_want, total_got))
    else:
        print("  (no counters.json)")
    return problems


def packet_ins_of(text):
    """(description, bytes) of every packet-in of a controller.txt."""
    res = []
    for entry in text.split("OFPT_PACKET_IN:")[1:]:
        desc, _, data = entry.rpartition("\n data=")
        res.append((desc, bytes.fromhex(data.strip())))
    return res


def compare_packet_ins(s, out_dir):
    """Differences between the packet-ins of out_dir/controller.txt and the predictions."""
    want = s.expected_packet_ins()
    path = os.path.join(out_dir, "controller.txt")
    if not want and not os.path.exists(path):
        return 0
    got = []
    if os.path.exists(path):
        with open(path) as f:
            got = packet_ins_of(f.read())
    bad = 0
    for k in range(max(len(want), len(got))):
        w = want[k] if k < len(want) else None
        g = got[k] if k < len(got) else None
        if w and g and (w[1].strip(), w[2]) == (g[0].strip(), g[1]):
            continue
        bad += 1
        if w is None:
            print("  packet-in #%d: UNEXPECTED %s" % (k + 1, g[0].strip()))
        elif g is None:
            print("  packet-in #%d: MISSING (from input #%d): %s" % (k + 1, w[0] + 1, w[1].strip()))
        else:
            print("  packet-in #%d (from input #%d): DIFFERS" % (k + 1, w[0] + 1))
            print("      expected: %s %s" % (w[1].strip(), w[2].hex()))
            print("      got:      %s %s" % (g[0].strip(), g[1].hex()))
    print("  packet-ins: %d expected, %d present, %s" % (len(want), len(got), "OK" if not bad else "%d WRONG" % bad))
    return bad


def compare_netflow(s, out_dir):
    """Differences between Open vSwitch's NetFlow records (ovs_reference.py's netflow.txt)
    and the golden's, summed per target, flow and output: packets, bytes, TCP flags."""
    path = os.path.join(out_dir, "netflow.txt")
    if not os.path.exists(path):
        print("  netflow: MISSING %s" % path)
        return 1
    with open(path) as f:
        got = netflow_records.totals_of_text(f.read())
    with open(os.path.join(gen.HERE, s.name, "expected", "netflow.txt")) as f:
        want = netflow_records.totals_of_text(f.read())
    # Where gen.py declares that OVS differs (`netflow_ovs`, with why), OVS is held to that.
    declared, why = s.netflow_ovs or ({}, "")
    bad = 0
    for k in sorted(set(got) | set(want)):
        flow = k[1:]
        if flow in declared:
            ok = got.get(k) == declared[flow]
            print("  netflow %s: OVS %s, vecswitch %s, declared for OVS %s (%s)%s"
                  % (" ".join(k), got.get(k), want.get(k), declared[flow], why, "" if ok else " WRONG"))
            bad += not ok
        elif got.get(k) != want.get(k):
            bad += 1
            print("  netflow %s: OVS %s, vecswitch %s" % (" ".join(k), got.get(k), want.get(k)))
    print("  netflow: %d flow totals, %s" % (len(want), "OK" if not bad else "%d WRONG" % bad))
    return bad


def write_predicted(s, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for port, frames in s.expected_outputs().items():
        gen.write_pcap(os.path.join(out_dir, "%s.pcap" % port), [(s.timestamp_us(i), b) for i, b, _ in frames])
    print("wrote the predicted outputs of %s into %s" % (s.name, out_dir))


def main(argv):
    args = argv[1:]
    out = predicted = None
    ovs = False
    names = []
    while args:
        a = args.pop(0)
        if a == "--out" and args:
            out = args.pop(0)
        elif a == "--ovs":
            ovs = True
        elif a == "--write-predicted" and args:
            predicted = args.pop(0)
        elif a == "--all":
            names = [s.name for s in gen.build() if os.path.isdir(os.path.join(gen.HERE, s.name, "expected"))]
        elif a.startswith("-"):
            sys.exit(__doc__)
        else:
            names.append(os.path.basename(os.path.normpath(a)))
    if not names:
        sys.exit(__doc__)
    scenarios = gen.build(names)
    missing = set(names) - {s.name for s in scenarios}
    if missing:
        sys.exit("unknown scenario(s): %s" % ", ".join(sorted(missing)))
    if predicted:
        if len(scenarios) != 1:
            sys.exit("--write-predicted takes one scenario")
        write_predicted(scenarios[0], predicted)
        return 0
    problems = 0
    for s in scenarios:
        problems += compare(s, out or os.path.join(gen.HERE, s.name, "expected"), ovs)
    print("%d difference(s)" % problems)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
