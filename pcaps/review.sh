#!/usr/bin/env bash
# Prints every input and output frame of a replay scenario, one line per frame, for review.
#
#   pcaps/review.sh SCENARIO [OUTDIR]
#
# SCENARIO is a name (l2-learning) or a directory (pcaps/l2-learning); OUTDIR defaults to
# SCENARIO/expected (the goldens). Columns:
#   #      the input frame number, from the timestamp: 1700000000.000 + (#-1) ms (gen.py's
#          clock; output frames carry the timestamp of the input frame that caused them, so
#          '#' matches the scenario README table, as long as replay keeps input timestamps)
#   len    frame length
#   eth    source > destination MAC
#   vlan   VIDs, outer first ('ad:' marks an 802.1ad S-tag; '-' untagged)
#   ip     source > destination (IPv4 or IPv6), 'ttl' is the TTL or hop limit, 'tos' the
#          IPv4 DS field
#   l4     protocol column and ports
#   csum   checksum status per layer as tshark sees it: ok, BAD, 'unv' (not verified),
#          ILLEGAL (e.g. UDP 0 over IPv6); absent layers are left out
#   info   tshark's Info column
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
scen="$1"
[[ -d "$scen" ]] || scen="$here/$1"
[[ -f "$scen/scenario.toml" ]] || { echo "no scenario.toml in $scen" >&2; exit 2; }
out="${2:-$scen/expected}"

show() {
    local f="$1"
    echo "---- $f ($(tshark -r "$f" 2>/dev/null | wc -l) frames)"
    tshark -r "$f" -n \
        -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
        -T fields -E separator=/t -E occurrence=a -E aggregator=, \
        -e frame.time_epoch -e frame.len -e eth.src -e eth.dst -e vlan.id -e ieee8021ad.id \
        -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e _ws.col.Protocol \
        -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport \
        -e ip.ttl -e ipv6.hlim -e ip.dsfield \
        -e ip.checksum.status -e tcp.checksum.status -e udp.checksum.status \
        -e icmp.checksum.status -e icmpv6.checksum.status -e _ws.col.Info 2>/dev/null |
    awk -F'\t' '
        function st(v, name) {
            if (v == "") return ""
            split(v, a, ","); v = a[1]
            s = (v == "0") ? "BAD" : (v == "1") ? "ok" : (v == "2") ? "unv" : (v == "4") ? "ILLEGAL" : "-"
            return " " name ":" s
        }
        function first(v) { split(v, a, ","); return a[1] }
        {
            n = sprintf("%d", ($1 - 1700000000) * 1000 + 1.5)
            vlan = ($5 == "" && $6 == "") ? "-" : ($6 == "" ? $5 : ($5 == "" ? "ad:" $6 : "ad:" $6 "," $5))
            src = ($7 != "") ? first($7) : first($9)
            dst = ($8 != "") ? first($8) : first($10)
            ip = (src == "") ? "" : src ">" dst
            ttl = ($16 != "") ? " ttl=" first($16) : ($17 != "") ? " ttl=" first($17) : ""
            tos = ($18 != "") ? " tos=" first($18) : ""
            ports = ($12 != "") ? first($12) ">" first($13) : ($14 != "") ? first($14) ">" first($15) : ""
            cs = st($19, "ip") st($20, "tcp") st($21, "udp") st($22, "icmp") st($23, "icmp6")
            printf "#%-3s len=%-4s %s>%s vlan=%s %s%s%s %s %s |%s | %s\n", n, $2, $3, $4, vlan, ip, ttl, tos, $11, ports, cs, $24
        }'
}

echo "==== $(basename "$scen"): inputs"
shopt -s nullglob
inputs=("$scen"/*-in.pcap)
for f in "${inputs[@]}"; do show "$f"; done
echo "==== outputs in $out"
if [[ -d "$out" ]]; then
    for f in "$out"/*.pcap; do show "$f"; done
    if [[ -f "$out/counters.json" ]]; then
        echo "---- $out/counters.json: drops"
        /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])).get("drops",{}); print("\n".join("%s %d" % kv for kv in sorted(d.items())) or "none")' "$out/counters.json"
    fi
else
    echo "(no $out yet)"
fi
