#!/usr/bin/python3
"""Extracts the OpenFlow 1.3 (and version-independent HELLO / ERROR / ECHO) messages of Open
vSwitch's tests/ofp-print.at into ofp-print-of13.txt: a `# title` line, then the message in
hex. Usage: extract.py < ofp-print.at > ofp-print-of13.txt
(git -C /work/.mirror/openvswitch+ovs/repo show HEAD:tests/ofp-print.at).
With the argument `10`, the OpenFlow 1.0 messages instead: extract.py 10 > ofp-print-of10.txt."""
import re
import sys

WANT = 1 if sys.argv[1:] == ["10"] else 4


def wanted(version, kind):
    if WANT == 1:
        return version == 1
    return version == 4 or (kind <= 3 and version <= 6)


title = None
lines = sys.stdin.read().splitlines()
i = 0
while i < len(lines):
    line = lines[i]
    m = re.match(r"AT_SETUP\(\[(.*)\]\)", line)
    if m:
        title = m.group(1)
    one = re.search(r'ofp-print "?([0-9a-fA-F ]{16,})"?[\],]', line)
    if one:
        h = one.group(1).replace(" ", "")
        version, kind = int(h[0:2], 16), int(h[2:4], 16)
        if wanted(version, kind):
            print(f"# {title}")
            print(h)
    if 'ofp-print "\\' in line:
        hexs = []
        i += 1
        while i < len(lines) and not lines[i].startswith('"'):
            hexs.append(lines[i].rstrip("\\").strip())
            i += 1
        h = "".join(hexs).replace(" ", "")
        if re.fullmatch(r"[0-9a-fA-F]+", h) and len(h) >= 16:
            version, kind = int(h[0:2], 16), int(h[2:4], 16)
            if wanted(version, kind):
                print(f"# {title}")
                print(h)
    i += 1
