#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/seeds/ from the replay scenarios in pcaps/.

parse_packet and actions: every frame of pcaps/*/*.pcap, one file per distinct frame.
parse_flow: every rule line of pcaps/*/rules.txt plus the rule strings quoted in the
openflow crate's tests. scenario: every pcaps/*/scenario.toml.
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


def main():
    counts = {}
    for pcap in sorted(glob.glob(os.path.join(ROOT, "pcaps", "*", "*.pcap"))):
        for frame in pcap_frames(pcap):
            for t in ("parse_packet", "actions"):
                counts[t] = counts.get(t, 0) + write(t, frame)
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
