#!/usr/bin/python3
"""Verifies every IPv4 header, TCP, UDP, ICMP and ICMPv6 checksum in the given pcaps.

Usage: /usr/bin/python3 pcaps/check_checksums.py [-v] PCAP...

Each checksum is verified the receiver's way: the one's complement sum (scapy's `checksum`)
over the pseudo-header (where the protocol has one) and the bytes the header says it covers,
checksum field included, must be 0xFFFF, i.e. `checksum(...) == 0`. This accepts both 0x0000
and 0xFFFF where either is arithmetically right, which is what a receiver does too.

- A UDP checksum of 0 over IPv4 means "no checksum" and is accepted; over IPv6 it is an error.
- The bytes covered are bounded by the IPv4 total length / IPv6 payload length, so Ethernet
  padding is never summed.
- Up to 3 VLAN tags (0x8100, 0x88a8, 0x9100) are skipped; IPv6 hop-by-hop, routing, destination
  options and fragment headers are walked.
- What cannot be verified is skipped, not failed: frames too short for a header (the malformed
  corpus), IP fragments (the L4 checksum covers the whole datagram), IPv6 routing headers with
  segments left (the pseudo-header would need the final destination), other protocols.

Exit status: 0 when no checksum is wrong, 1 when any is, 2 when a file cannot be read.
"""

import struct
import sys

from scapy.utils import checksum

VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


def read_pcap(path):
    """Yields (index from 1, frame bytes) of a classic pcap file (either byte order, us or ns)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: too short for a pcap header" % path)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap file (pcapng is not supported)" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError("%s: link type %d is not Ethernet" % (path, linktype))
    off, n = 24, 0
    while off < len(data):
        if off + 16 > len(data):
            raise ValueError("%s: truncated record header after frame %d" % (path, n))
        incl = struct.unpack(e + "I", data[off + 8 : off + 12])[0]
        off += 16
        if off + incl > len(data):
            raise ValueError("%s: truncated frame %d" % (path, n + 1))
        n += 1
        yield n, data[off : off + incl]
        off += incl


def check_l4(proto, l4, pseudo, is_v6):
    """Returns (name, status) with status 'ok', 'none', 'skip: why' or 'BAD ...'."""
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}
    name = names.get(proto)
    if name is None:
        return None
    minimum = {6: 20, 17: 8, 1: 4, 58: 4}[proto]
    if len(l4) < minimum:
        return name, "skip: truncated"
    field = {6: 16, 17: 6, 1: 2, 58: 2}[proto]
    value = struct.unpack("!H", l4[field : field + 2])[0]
    if proto == 17 and value == 0:
        return name, "BAD 0 over IPv6" if is_v6 else "none"
    covered = l4 if proto == 1 else pseudo + l4
    if checksum(covered) == 0:
        return name, "ok"
    # What it should have been: recompute with the field zeroed.
    zeroed = l4[:field] + b"\x00\x00" + l4[field + 2 :]
    right = checksum(zeroed if proto == 1 else pseudo + zeroed)
    if proto == 17 and right == 0:
        right = 0xFFFF
    return name, "BAD 0x%04x, should be 0x%04x" % (value, right)


def check_frame(b):
    """Returns a list of (what, status) for one Ethernet frame."""
    res = []
    if len(b) < 14:
        return [("eth", "skip: truncated")]
    off, etype = 14, struct.unpack("!H", b[12:14])[0]
    tags = 0
    while etype in VLAN_TPIDS and tags < 3:
        if len(b) < off + 4:
            return [("vlan", "skip: truncated")]
        etype = struct.unpack("!H", b[off + 2 : off + 4])[0]
        off += 4
        tags += 1
    if etype == 0x0800:
        if len(b) < off + 20 or b[off] >> 4 != 4:
            return [("ipv4", "skip: truncated or not version 4")]
        ihl = (b[off] & 0xF) * 4
        if ihl < 20 or len(b) < off + ihl:
            return [("ipv4", "skip: bad IHL")]
        hdr = b[off : off + ihl]
        if checksum(hdr) == 0:
            res.append(("ipv4", "ok"))
        else:
            value = struct.unpack("!H", hdr[10:12])[0]
            right = checksum(hdr[:10] + b"\x00\x00" + hdr[12:])
            res.append(("ipv4", "BAD 0x%04x, should be 0x%04x" % (value, right)))
        tot = struct.unpack("!H", hdr[2:4])[0]
        if tot < ihl or len(b) < off + tot:
            res.append(("l4", "skip: bad total length"))
            return res
        frag = struct.unpack("!H", hdr[6:8])[0]
        if frag & 0x3FFF:
            res.append(("l4", "skip: fragment"))
            return res
        proto = hdr[9]
        l4 = b[off + ihl : off + tot]
        pseudo = hdr[12:20] + struct.pack("!BBH", 0, proto, len(l4))
        r = check_l4(proto, l4, pseudo, False)
        if r:
            res.append(r)
        return res
    if etype == 0x86DD:
        if len(b) < off + 40:
            return [("ipv6", "skip: truncated")]
        plen = struct.unpack("!H", b[off + 4 : off + 6])[0]
        end = off + 40 + plen
        if len(b) < end:
            return [("ipv6", "skip: payload length past the frame")]
        src, dst = b[off + 8 : off + 24], b[off + 24 : off + 40]
        nh, p = b[off + 6], off + 40
        while nh in (0, 43, 60, 44):
            if p + 8 > end:
                return [("ipv6", "skip: truncated extension header")]
            if nh == 44:
                if struct.unpack("!H", b[p + 2 : p + 4])[0] & 0xFFF9:
                    return [("ipv6", "skip: fragment")]
                nh, p = b[p], p + 8
                continue
            if nh == 43 and b[p + 3] != 0:
                return [("ipv6", "skip: routing header with segments left")]
            hl = (b[p + 1] + 1) * 8
            if p + hl > end:
                return [("ipv6", "skip: truncated extension header")]
            nh, p = b[p], p + hl
        l4 = b[p:end]
        pseudo = src + dst + struct.pack("!IxxxB", len(l4), nh)
        r = check_l4(nh, l4, pseudo, True)
        return [r] if r else []
    return []


def main(argv):
    verbose = "-v" in argv
    paths = [a for a in argv[1:] if a != "-v"]
    if not paths:
        sys.stderr.write(__doc__)
        return 2
    bad = checked = skipped = 0
    for path in paths:
        try:
            frames = list(read_pcap(path))
        except (OSError, ValueError) as e:
            print("error: %s" % e)
            return 2
        for n, b in frames:
            results = check_frame(b)
            for what, status in results:
                if status.startswith("BAD"):
                    bad += 1
                elif status.startswith("skip"):
                    skipped += 1
                else:
                    checked += 1
            line = "%s #%d: %s" % (path, n, ", ".join("%s %s" % r for r in results) or "no checksums")
            if verbose or any(s.startswith("BAD") for _, s in results):
                print(line)
    print("%d checksums right, %d wrong, %d skipped in %d file(s)" % (checked, bad, skipped, len(paths)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
