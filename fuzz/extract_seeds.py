#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/seeds/ from the replay scenarios in pcaps/.

parse_packet and actions: every frame of pcaps/*/*.pcap, one file per distinct frame.
parse_flow: every rule line of pcaps/*/rules.txt plus the rule strings quoted in the
openflow crate's tests. scenario: every pcaps/*/scenario.toml. vhost_ring: well-formed
split and packed rings (transmit and receive, in order or not), built here. vhost_message:
the messages a DPDK virtio-user frontend sends to bring up one or two queue pairs (once also
with a memory image whose rings hold buffers and frames). control: request scripts that
use every verb the target runs, good and bad. wire: every pcap frame behind a first byte
of 0 (walk it from Ethernet), single headers read raw (an L4 one after its pseudo-header
addresses), and FrameBuilder set-ups (first byte 0x80) for each network and transport.
File names are the SHA-1 of the content (as libFuzzer names corpus files), so running the
script twice writes nothing new. Standard library only.
"""
import glob
import hashlib
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def pcap_frames(path):
    """Frames of a classic pcap file (either byte order, µs or ns timestamps)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file (magic {magic.hex()})")
    off = 24
    while off + 16 <= len(data):
        _sec, _frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            raise ValueError(f"{path}: truncated record at byte {off - 16}")
        yield data[off:off + incl]
        off += incl


def write(target, blob):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    name = os.path.join(d, hashlib.sha1(blob).hexdigest())
    if os.path.exists(name):
        return 0
    with open(name, "wb") as f:
        f.write(blob)
    return 1


def rule_strings_from_rust(path):
    """String literals in a Rust source that look like rules (contain '=' or 'actions')."""
    with open(path, encoding="utf-8") as f:
        src = f.read()
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', src):
        s = m.group(1)
        if "\\" in s or len(s) < 3:
            continue
        if "actions=" in s or re.match(r"^[a-z_0-9]+(=|,|$)", s):
            yield s


# vhost_ring's input: 8 bytes of ring set-up, 6 bursts of 4 bytes, then guest memory from
# address 0 (descriptors at 0, available ring / driver area at 0x1000, used ring / device
# area at 0x2000; see fuzz_targets/vhost_ring.rs).
VHOST_AVAIL = 0x1000
VHOST_BUFS = 0x4000
DESC_F_NEXT, DESC_F_WRITE = 1, 2
PACKED_AVAIL, PACKED_USED = 1 << 7, 1 << 15


def vhost_seed(packed, in_order, mergeable, size_code, base, ops, descs, avail):
    """One input: `descs` as (addr, len, flags, next_or_id), `avail` the split ring's entries."""
    flags = (1 if packed else 0) | (2 if in_order else 0) | (4 if mergeable else 0)
    head = bytes([flags, size_code]) + struct.pack("<HH", base, 0) + b"\0\0"
    for op in ops:
        head += bytes(op)
    head += b"\0" * (4 * (6 - len(ops)))
    image = bytearray(VHOST_BUFS)
    for i, (addr, length, fl, nxt) in enumerate(descs):
        if packed:
            struct.pack_into("<QIHH", image, 16 * i, addr, length, nxt, fl)
        else:
            struct.pack_into("<QIHH", image, 16 * i, addr, length, fl, nxt)
    if not packed:
        struct.pack_into("<HH", image, VHOST_AVAIL, 0, base + len(avail))
        for k, head_index in enumerate(avail):
            struct.pack_into("<H", image, VHOST_AVAIL + 4 + 2 * ((base + k) % 16), head_index)
    return head + bytes(image)


def vhost_seeds():
    tx = lambda n: (0, n, 0, 0)
    rx = lambda n, length: (1, n) + tuple(struct.pack("<H", length))
    for packed in (False, True):
        size_code = 15 if packed else 4  # 16 entries either way
        base = 0x8000 if packed else 0
        avail = PACKED_AVAIL if packed else 0
        # Transmit: four one-descriptor frames and one of two descriptors (header apart).
        descs = [(VHOST_BUFS + 0x800 * i, 12 + 60, avail, i) for i in range(4)]
        descs += [(VHOST_BUFS + 0x2000, 12, avail | DESC_F_NEXT, 5), (VHOST_BUFS + 0x2100, 100, avail, 4)]
        for in_order in (False, True):
            yield vhost_seed(packed, in_order, True, size_code, base,
                             [tx(8), tx(8)], descs, [0, 1, 2, 3, 4])
        # Receive: eight 2 KiB buffers; 60-byte frames, then frames that need two buffers.
        descs = [(VHOST_BUFS + 0x800 * i, 0x800, avail | DESC_F_WRITE, i) for i in range(8)]
        for mergeable in (False, True):
            yield vhost_seed(packed, True, mergeable, size_code, base,
                             [rx(4, 60), rx(2, 3000), rx(4, 60)], descs, list(range(8)))


def vhost_messages(pairs, features, ring_size, ring_addrs):
    """A frontend's bring-up, as vhost_message takes it: the pair count byte, then messages."""
    def msg(request, payload=b""):
        return struct.pack("<III", request, 1, len(payload)) + payload
    u64 = lambda v: struct.pack("<Q", v)
    state = lambda index, num: struct.pack("<II", index, num)
    user = 0x7F0000000000  # the frontend's address of guest address 0
    out = bytes([pairs - 1])
    out += msg(3)  # SET_OWNER
    out += msg(1)  # GET_FEATURES
    out += msg(2, u64(features))
    out += msg(15)  # GET_PROTOCOL_FEATURES
    out += msg(16, u64(0x1 | 0x8))  # MQ | REPLY_ACK
    # SET_MEM_TABLE: one 64 KiB region at guest address 0 (the harness's memfd size).
    out += msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 0x10000, user, 0))
    for index in range(2 * pairs):
        desc, avail, used = (user + a + 0x3000 * index for a in ring_addrs)
        out += msg(8, state(index, ring_size))  # SET_VRING_NUM
        out += msg(9, struct.pack("<IIQQQQ", index, 0, desc, used, avail, 0))  # SET_VRING_ADDR
        out += msg(10, state(index, 0x8000 if features & (1 << 34) else 0))  # SET_VRING_BASE
        out += msg(12, u64(index))  # SET_VRING_KICK (an eventfd attached)
        out += msg(13, u64(index))  # SET_VRING_CALL
        out += msg(18, state(index, 1))  # SET_VRING_ENABLE
    out += msg(11, state(0, 0))  # GET_VRING_BASE
    return out


def vhost_ring_image():
    """Guest memory for the split bring-up: vring 0 (the guest's receive ring) offers eight
    writable 2 KiB buffers, vring 1 (its transmit ring, 0x3000 on) four 72-byte frames."""
    image = bytearray(0x10000)
    for i in range(8):
        struct.pack_into("<QIHH", image, 16 * i, 0x8000 + 0x800 * i, 0x800, DESC_F_WRITE, 0)
        struct.pack_into("<H", image, 0x1000 + 4 + 2 * i, i)
    struct.pack_into("<HH", image, 0x1000, 0, 8)
    for i in range(4):
        struct.pack_into("<QIHH", image, 0x3000 + 16 * i, 0xC000 + 0x100 * i, 72, 0, 0)
        struct.pack_into("<H", image, 0x4000 + 4 + 2 * i, i)
    struct.pack_into("<HH", image, 0x4000, 0, 4)
    return bytes(image[:0xD000])


def vhost_message_seeds():
    split = (1 << 32) | (1 << 15) | (1 << 30)
    plain = vhost_messages(1, split, 256, (0x0, 0x1000, 0x2000))
    yield plain
    # The same with the memory image (bit 7 of the first byte, then its u16 length).
    image = vhost_ring_image()
    yield bytes([plain[0] | 0x80]) + struct.pack("<H", len(image)) + image + plain[1:]
    yield vhost_messages(1, split | (1 << 35) | (1 << 34), 200, (0x0, 0x1000, 0x1100))
    yield vhost_messages(2, split | (1 << 35) | (1 << 22), 64, (0x0, 0x400, 0x800))


CONTROL_SEEDS = [
    "add-br br0\n"
    "add-flow br0 priority=100,ip,nw_dst=10.0.0.0/24,actions=output:2\n"
    "add-flow br0 in_port=1,actions=NORMAL\n"
    "dump-flows br0\n"
    "mod-flows br0 ip actions=drop\n"
    "mod-flows br0 --strict priority=100,ip,nw_dst=10.0.0.0/24 actions=output:3\n"
    "del-flows br0 --strict priority=100,ip,nw_dst=10.0.0.0/24\n"
    "del-flows br0 in_port=1\n"
    "show --json\n",
    "add-br b1\n"
    "add-flows b1 --bundle\tpriority=1,actions=NORMAL\\npriority=2,in_port=1,actions=output:3\n"
    "add-flows b1\tadd priority=3,arp,actions=flood\\ndelete in_port=1\n"
    "set batch-size=64 busy-poll=true\n"
    "set flow-limit=1000 pmd-sleep-max-us=100\n"
    "dump-megaflows b1\npmd-stats\nruntime\ndrop-reasons\nport-stats b1\nclear-stats\n"
    "rebalance\nlist-ports b1\ndel-port b1 p\ndel-br b1\nhelp",
    "add-br b\n"
    "add-flow b priority=1,nw_dst=10.0.0.300,actions=drop\n"
    "add-flow b priority=1,tp_dst=80,actions=drop\n"
    "set batch-size=9999\nset batch-size=64 nosuch=1\nset flow-limit=x\n"
    "add-flows b --bundle\tpriority=1,actions=drop\\nbogus\n"
    "mod-flows nob actions=drop\ndel-flows b --strict\ndump-flows\nadd-br b\n"
    "show --nosuch\nfrobnicate",
]


# wire's FrameBuilder set-up after its first byte 0x80 (see fuzz_targets/wire.rs, build()):
# MACs, shape (bits 0-1 tags, 2-4 their TPIDs 802.1ad, 5-6 network: raw, ARP, IPv4, IPv6),
# kinds (bits 0-2 transport: none, UDP, TCP, ICMP, ICMPv6, the network's ICMP; bit 3 UDP
# without checksum; bit 4 an ND link-layer address), three TCIs, raw ethertype, ARP, IPv4,
# IPv6, ports and TCP, ICMP, minimum length; the payload follows.
WIRE_BUILD = ">6s6sBBHHHH" "H6s4s6s4s" "4s4sBBBHHB40s" "16s16sBBBI" "HHIIHHHB40s" "BBI16s6sB"
WIRE_NET = {"raw": 0, "arp": 1, "ipv4": 2, "ipv6": 3}
WIRE_L4 = {"none": 0, "udp": 1, "tcp": 2, "icmpv4": 3, "icmpv6": 4}
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("20010db8000000000000000000000002")


def wire_build_seed(net, l4, payload=b"", tags=(), udp_checksum=True, nd_mac=False,
                    ip_opts=b"", frag=0x8000, tcp_flags=0x10, tcp_opts=b"", icmp=(0, 0, 0),
                    next_header=0, raw_type=0x88B5, min_len=0):
    shape = len(tags) | WIRE_NET[net] << 5
    for i, (tpid, _tci) in enumerate(tags):
        shape |= (tpid == 0x88A8) << (2 + i)
    kinds = WIRE_L4[l4] | (0 if udp_checksum else 8) | (16 if nd_mac else 0)
    tcis = [tci for _tpid, tci in tags] + [0] * (3 - len(tags))
    variant, code, word = icmp
    block = struct.pack(
        WIRE_BUILD,
        bytes([2, 0, 0, 0, 0, 1]), bytes([2, 0, 0, 0, 0, 2]), shape, kinds, *tcis, raw_type,
        1, bytes([2, 0, 0, 0, 0, 1]), bytes([10, 0, 0, 1]), bytes(6), bytes([10, 0, 0, 2]),
        bytes([10, 0, 0, 1]), bytes([10, 0, 1, 1]), 0, 64, 0, 0, frag, len(ip_opts),
        ip_opts.ljust(40, b"\0"),
        V6_A, V6_B, next_header, 64, 0, 0,
        1024, 5001, 1, 0, tcp_flags, 0xFFFF, 0, len(tcp_opts), tcp_opts.ljust(40, b"\0"),
        variant, code, word, bytes.fromhex("fe800000000000000000000000000002"),
        bytes([2, 0, 0, 0, 0, 9]), min_len,
    )
    return b"\x80" + block + payload


def wire_seeds():
    data = bytes(range(18))
    q, ad = 0x8100, 0x88A8
    yield wire_build_seed("ipv4", "udp", data)
    yield wire_build_seed("ipv4", "udp", data, tags=[(q, 100)], udp_checksum=False, min_len=60)
    yield wire_build_seed("ipv6", "tcp", b"hello", tags=[(ad, 10), (q, 0xA014)],
                          tcp_flags=0x2C2, tcp_opts=bytes([2, 4, 5, 0xB4, 3, 3, 7]))
    yield wire_build_seed("ipv4", "tcp", data, ip_opts=bytes([0x94, 4, 0, 0]), frag=0x4000)
    yield wire_build_seed("ipv4", "icmpv4", data, frag=0x0010, icmp=(0, 0, 0x04000001))
    yield wire_build_seed("ipv4", "icmpv4", data[:8], icmp=(2, 4, 1400))
    yield wire_build_seed("ipv6", "icmpv6", icmp=(6, 0, 0), nd_mac=True)
    yield wire_build_seed("ipv6", "icmpv6", icmp=(7, 0, 0x60000000))
    yield wire_build_seed("ipv6", "icmpv6", data, icmp=(3, 0, 1280))
    yield wire_build_seed("arp", "none", min_len=60)
    yield wire_build_seed("raw", "none", data, tags=[(ad, 1), (q, 2), (q, 3)])
    yield wire_build_seed("raw", "none", data, tags=[(q, 0xE005)])
    yield wire_build_seed("ipv6", "none", data, next_header=59)
    yield wire_build_seed("ipv4", "icmpv6", data)
    # Single headers read raw, checksums filled first (bit 0): bits 1-4 pick the header,
    # bit 5 an IPv6 pseudo-header for UDP and TCP; L4 headers follow 32 address bytes.
    addrs = V6_A + V6_B
    v4_addrs = bytes([10, 0, 0, 1, 10, 0, 1, 1]).ljust(32, b"\0")
    yield bytes([2 << 1]) + bytes([0x00, 0x01, 0x08, 0, 6, 4, 0, 1]) + bytes(20)
    yield bytes([1 << 1]) + bytes([0xB0, 0x64, 0x81, 0x00, 0x00, 0x0A, 0x08, 0x00])
    ip = bytes([0x46, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 1, 1,
                0x94, 4, 0, 0]) + struct.pack(">HHHH", 1, 2, 8, 0)
    yield bytes([3 << 1 | 1]) + ip
    yield bytes([4 << 1]) + bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + addrs + struct.pack(">HHHH", 1, 2, 8, 0)
    yield bytes([5 << 1 | 1]) + v4_addrs + struct.pack(">HHHH", 1024, 5001, 26, 0) + data
    yield bytes([6 << 1 | 1 | 0x20]) + addrs + struct.pack(">HHIIHHHH", 40000, 443, 1, 1, 0x7010, 0xFFFF, 0, 0) + bytes([2, 4, 5, 0xB4, 3, 3, 7, 0]) + b"x"
    yield bytes([7 << 1 | 1]) + bytes([8, 0, 0, 0, 4, 0, 0, 1]) + data
    solicit = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + bytes.fromhex("fe800000000000000000000000000002")
    yield bytes([8 << 1 | 1]) + addrs + solicit + bytes([1, 1, 2, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0, 0, 0])


def main():
    counts = {}
    for text in CONTROL_SEEDS:
        counts["control"] = counts.get("control", 0) + write("control", text.encode())
    for blob in vhost_message_seeds():
        counts["vhost_message"] = counts.get("vhost_message", 0) + write("vhost_message", blob)
    for blob in vhost_seeds():
        counts["vhost_ring"] = counts.get("vhost_ring", 0) + write("vhost_ring", blob)
    for pcap in sorted(glob.glob(os.path.join(ROOT, "pcaps", "*", "*.pcap"))):
        for frame in pcap_frames(pcap):
            for t in ("parse_packet", "actions"):
                counts[t] = counts.get(t, 0) + write(t, frame)
            counts["wire"] = counts.get("wire", 0) + write("wire", b"\0" + frame)
    for blob in wire_seeds():
        counts["wire"] = counts.get("wire", 0) + write("wire", blob)
    # OpenFlow 1.3 messages from Open vSwitch's ofp-print tests: one per seed, and all in one
    # stream; the first byte sets the read size of the framer.
    # The same for OpenFlow 1.0 (ofp-print-of10.txt), so that the 1.0 decoders are reached.
    for name in ("ofp-print-of13.txt", "ofp-print-of10.txt"):
        with open(os.path.join(ROOT, "ofwire", "tests", "data", name)) as f:
            msgs = [bytes.fromhex(l.strip()) for l in f if l.strip() and not l.startswith("#")]
        for i, m in enumerate(msgs):
            counts["openflow_wire"] = counts.get("openflow_wire", 0) + write(
                "openflow_wire", bytes([i % 7]) + m)
        counts["openflow_wire"] += write("openflow_wire", b"\x03" + b"".join(msgs))
    rules = []
    for path in sorted(glob.glob(os.path.join(ROOT, "pcaps", "*", "rules.txt"))):
        with open(path, encoding="utf-8") as f:
            rules += [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    for path in sorted(glob.glob(os.path.join(ROOT, "openflow", "src", "*.rs"))):
        rules += list(rule_strings_from_rust(path))
    for r in rules:
        counts["parse_flow"] = counts.get("parse_flow", 0) + write("parse_flow", r.encode())
    for path in sorted(glob.glob(os.path.join(ROOT, "pcaps", "*", "scenario.toml"))):
        with open(path, "rb") as f:
            counts["scenario"] = counts.get("scenario", 0) + write("scenario", f.read())
    for t, n in sorted(counts.items()):
        print(f"{t}: {n} new seed files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
