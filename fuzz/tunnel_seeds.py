#!/usr/bin/python3
"""Writes fuzz/seeds/tunnel_headers/: VXLAN and Geneve frames built with scapy (2.5), each
behind the target's option byte (bit 0: fill the outer IPv4 checksum, bit 1: the UDP checksum,
bit 2: forward Geneve OAM, bit 3: VLAN limit 2), named by SHA-1 of the content as
extract_seeds.py names its seeds. Run once from the repository root:
/usr/bin/python3 fuzz/tunnel_seeds.py"""
import hashlib
import os

from scapy.all import Dot1Q, Ether, IP, IPv6, TCP, UDP, raw
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.vxlan import VXLAN

OUT = "fuzz/seeds/tunnel_headers"


def inner(vlan=None):
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    return eth / IP(src="10.0.0.1", dst="10.0.1.1") / UDP(sport=1024, dport=5001) / bytes(18)


def outer(dport, csum=False, vlan=None, df=True):
    eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    ip = IP(src="192.0.2.1", dst="192.0.2.2", id=0, flags="DF" if df else 0)
    udp = UDP(sport=49152, dport=dport) if csum else UDP(sport=49152, dport=dport, chksum=0)
    return eth / ip / udp


def opt(cls, typ, data):
    return GeneveOptions(classid=cls, type=typ, data=data)


def vxlan(vni):
    return VXLAN(flags="Instance", vni=vni)


def geneve(vni, options=(), **kw):
    return GENEVE(vni=vni, proto=0x6558, options=list(options), **kw)


SEEDS = [
    (0, outer(4789) / vxlan(42) / inner()),
    (0, outer(4789, csum=True, df=False) / vxlan(0xffffff) / inner()),
    (0, outer(4789, vlan=100) / vxlan(7) / inner(vlan=20)),
    (8, outer(4789) / vxlan(7) / inner(vlan=20) ),
    (0, outer(4789) / vxlan(1) / Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / TCP(sport=40000, dport=443, flags="S")),
    (0, outer(6081) / geneve(0x10203) / inner()),
    (0, outer(6081, csum=True) / geneve(0x10203, [opt(0x0102, 0x83, b"\x01\x02\x03\x04"),
                                                 opt(0xffff, 0x05, b"")], critical=1) / inner()),
    (4, outer(6081) / geneve(5, [opt(0x0103, 0x01, b"")], oam=1) / inner()),
    # 32 bytes of options: all the key holds.
    (0, outer(6081) / geneve(9, [opt(0x0104, 0x02, bytes(range(24))), opt(0x0105, 0x80, b"")],
                             critical=1) / inner()),
    # An option whose length runs past the options area (opt len 1 word, option says 2);
    # with bit 0 set the outer checksum is right again after mutations.
    (1, outer(6081) / raw(bytes([0x01, 0x00, 0x65, 0x58, 0, 0, 1, 0, 0x01, 0x06, 0x01, 0x02]))
        / inner()),
]

os.makedirs(OUT, exist_ok=True)
for op, pkt in SEEDS:
    b = bytes([op]) + raw(pkt)
    name = hashlib.sha1(b).hexdigest()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b)
    print(name, len(b))
