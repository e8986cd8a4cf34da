"""NetFlow v5 datagrams for the review tools: decoded into records, printed as Open vSwitch's
`test-netflow` prints them, and summed per flow and output for comparing two exporters whose
record boundaries differ by timing (active timeouts, revalidations), as OVS's own NetFlow tests
compare totals."""

import ipaddress
import struct

HEADER = struct.Struct("!HHIIIIBBH")
RECORD = struct.Struct("!IIIHHIIIIHHBBBBHHBBH")


def decode(d):
    """(header fields, [record fields]) of one datagram."""
    h = HEADER.unpack_from(d, 0)
    recs = [RECORD.unpack_from(d, HEADER.size + i * RECORD.size) for i in range(h[1])]
    return h, recs


def lines(target, d):
    """`to TARGET`, then test-netflow's lines for datagram `d` (the subset replay writes)."""
    h, recs = decode(d)
    out = ["to %s" % target,
           "header: v%d, uptime %d, now %d.%09d, seq %d, engine %d,%d" % (h[0], h[2], h[3], h[4], h[5], h[6], h[7])]
    for r in recs:
        out.append("seq %d: %s > %s, if %d > %d, %d pkts, %d bytes, proto %d %d > %d, flags %x, TOS %x"
                   % (h[5], ipaddress.ip_address(r[0]), ipaddress.ip_address(r[1]), r[3], r[4], r[5], r[6],
                      r[13], r[9], r[10], r[12], r[14]))
    return out


def totals_of_text(text):
    """{(target, src, dst, in, out, proto/ports): (packets, bytes, flags)} summed over the
    records of a netflow.txt (replay's or ovs_reference.py's)."""
    res = {}
    target = None
    for line in text.splitlines():
        if line.startswith("to "):
            target = line[3:]
            continue
        if not line.startswith("seq "):
            continue
        body = line.split(": ", 1)[1]
        fields = body.split(", ")
        src, dst = fields[0].split(" > ")
        iface = fields[1]
        pkts = int(fields[2].split()[0])
        byts = int(fields[3].split()[0])
        rest = fields[4:]
        flags = 0
        flow = []
        for f in rest:
            if f.startswith("time "):
                continue
            if f.startswith("flags "):
                flags = int(f.split()[1], 16)
                continue
            # replay's TCP line carries its flags as names after the ports
            words = f.split()
            if words[0] == "TCP" and len(words) > 4:
                names = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"]
                for n in words[4].split("|"):
                    flags |= 1 << names.index(n)
                f = " ".join(words[:4])
            flow.append(normalise(f))
        key = (target, src, dst, iface, " ".join(x for x in flow if x))
        p, b, fl = res.get(key, (0, 0, 0))
        res[key] = (p + pkts, b + byts, fl | flags)
    return res


def normalise(f):
    """One flow field of either format as `proto N S > D` / `TOS x`."""
    words = f.split()
    protos = {"TCP": 6, "UDP": 17, "SCTP": 132}
    if words[0] in protos:
        return "proto %d %s > %s" % (protos[words[0]], words[1], words[3])
    if words[0] == "ICMP":
        t, c = words[1].split(":")
        return "proto 1 0 > %d" % (int(t) * 256 + int(c))
    if words[0] == "proto":
        return f
    if words[0] == "TOS":
        return "" if int(words[1], 16) == 0 else "TOS %x" % int(words[1], 16)
    return f
