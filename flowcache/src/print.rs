//! Text form of megaflows, in the style of `ovs-appctl dpctl/dump-flows`: only fields whose
//! mask is nonzero are printed, a partial mask as `value/mask`, then the counters and the
//! datapath actions. Pure formatting of control-plane data; nothing here runs per packet.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use pipeline::flowkey::{ethertype, ipproto, FRAG_ANY, FRAG_LATER, VLAN_PCP_SHIFT};
use pipeline::DpAction;

use crate::megaflow::MegaflowInfo;

/// Collects the `name=value` items of one `group(...)`.
struct Items(Vec<String>);

impl Items {
    fn new() -> Items {
        Items(Vec::new())
    }

    /// Adds `name=value[/mask]` when `mask` is nonzero; `full` is the all-ones mask.
    fn num<T>(&mut self, name: &str, v: T, m: T, full: T, show: impl Fn(T) -> String)
    where
        T: PartialEq + Default + Copy,
    {
        if m == T::default() {
            return;
        }
        if m == full {
            self.0.push(format!("{name}={}", show(v)));
        } else {
            self.0.push(format!("{name}={}/{}", show(v), show(m)));
        }
    }

    fn push_group(self, out: &mut Vec<String>, group: &str) {
        if !self.0.is_empty() {
            out.push(format!("{group}({})", self.0.join(",")));
        }
    }
}

fn mac(b: [u8; 6]) -> String {
    let mut s = String::with_capacity(17);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn ip4(v: u32) -> String {
    Ipv4Addr::from(v).to_string()
}

fn ip6(v: [u8; 16]) -> String {
    Ipv6Addr::from(v).to_string()
}

/// Hex as C's `%#x` prints it (OVS's style): `0x7`, but plain `0` for zero.
fn hex(v: impl std::fmt::LowerHex) -> String {
    let s = format!("{v:#x}");
    if s == "0x0" {
        "0".into()
    } else {
        s
    }
}

fn dec(v: impl std::fmt::Display) -> String {
    v.to_string()
}

fn bytes_hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn frag(v: u8, m: u8) -> String {
    if m & (FRAG_ANY | FRAG_LATER) == FRAG_ANY | FRAG_LATER {
        match v & (FRAG_ANY | FRAG_LATER) {
            0 => "no".into(),
            FRAG_ANY => "first".into(),
            _ => "later".into(),
        }
    } else {
        format!("{v:#x}/{m:#x}")
    }
}

/// The match part: `in_port(1),eth(src=..),eth_type(0x0800),ipv4(..),tcp(..)`.
pub fn format_match(k: &pipeline::FlowKey, m: &pipeline::FlowKey) -> String {
    let mut out: Vec<String> = Vec::new();

    let mut t = Items::new();
    t.num("tun_id", k.tun_id, m.tun_id, u64::MAX, hex);
    t.num("src", k.tun_src, m.tun_src, u32::MAX, ip4);
    t.num("dst", k.tun_dst, m.tun_dst, u32::MAX, ip4);
    t.num("tos", k.tun_tos, m.tun_tos, u8::MAX, dec);
    t.num("ttl", k.tun_ttl, m.tun_ttl, u8::MAX, dec);
    t.num("tp_src", k.tun_tp_src, m.tun_tp_src, u16::MAX, dec);
    t.num("tp_dst", k.tun_tp_dst, m.tun_tp_dst, u16::MAX, dec);
    t.num("flags", k.tun_flags, m.tun_flags, u16::MAX, hex);
    if m.tun_opts_len != 0 || m.tun_opts.iter().any(|b| *b != 0) {
        t.0.push(format!(
            "geneve={}/{}",
            bytes_hex(&k.tun_opts),
            bytes_hex(&m.tun_opts)
        ));
    }
    t.push_group(&mut out, "tunnel");

    one(
        &mut out,
        "recirc_id",
        k.recirc_id,
        m.recirc_id,
        u32::MAX,
        hex,
    );
    one(&mut out, "ct_state", k.ct_state, m.ct_state, u8::MAX, hex);
    one(&mut out, "ct_zone", k.ct_zone, m.ct_zone, u16::MAX, dec);
    one(&mut out, "ct_mark", k.ct_mark, m.ct_mark, u32::MAX, hex);
    one(
        &mut out,
        "ct_label",
        k.ct_label,
        m.ct_label,
        [0xff; 16],
        |b| bytes_hex(&b),
    );
    one(&mut out, "in_port", k.in_port, m.in_port, u32::MAX, dec);

    let mut e = Items::new();
    e.num("src", k.dl_src, m.dl_src, [0xff; 6], mac);
    e.num("dst", k.dl_dst, m.dl_dst, [0xff; 6], mac);
    e.push_group(&mut out, "eth");

    let mut v = Items::new();
    v.num("tpid", k.vlan_tpid, m.vlan_tpid, u16::MAX, hex);
    v.num("tci", k.vlan_tci, m.vlan_tci, u16::MAX, hex);
    if m.vlan_tci == u16::MAX {
        // Full TCI: print it as OVS does, vid and pcp.
        v.0.pop();
        v.0.push(format!(
            "vid={},pcp={}",
            k.vlan_tci & pipeline::flowkey::VLAN_VID_MASK,
            k.vlan_tci >> VLAN_PCP_SHIFT
        ));
    }
    v.push_group(&mut out, "vlan");
    let mut v2 = Items::new();
    v2.num("tci", k.vlan2_tci, m.vlan2_tci, u16::MAX, hex);
    v2.push_group(&mut out, "vlan2");

    one(&mut out, "eth_type", k.dl_type, m.dl_type, u16::MAX, |x| {
        format!("{x:#06x}")
    });

    let l3 = if m.dl_type == 0 { 0 } else { k.dl_type };
    match l3 {
        ethertype::IPV4 | ethertype::IPV6 => {
            let mut ip = Items::new();
            let v6 = l3 == ethertype::IPV6;
            if v6 {
                ip.num("src", k.ipv6_src, m.ipv6_src, [0xff; 16], ip6);
                ip.num("dst", k.ipv6_dst, m.ipv6_dst, [0xff; 16], ip6);
                ip.num("label", k.ipv6_label, m.ipv6_label, 0xfffff, hex);
            } else {
                ip.num("src", k.nw_src, m.nw_src, u32::MAX, ip4);
                ip.num("dst", k.nw_dst, m.nw_dst, u32::MAX, ip4);
            }
            ip.num("proto", k.nw_proto, m.nw_proto, u8::MAX, dec);
            ip.num(
                if v6 { "tclass" } else { "tos" },
                k.nw_tos,
                m.nw_tos,
                u8::MAX,
                hex,
            );
            ip.num(
                if v6 { "hlimit" } else { "ttl" },
                k.nw_ttl,
                m.nw_ttl,
                u8::MAX,
                dec,
            );
            if m.nw_frag != 0 {
                ip.0.push(format!("frag={}", frag(k.nw_frag, m.nw_frag)));
            }
            ip.push_group(&mut out, if v6 { "ipv6" } else { "ipv4" });
            let proto = if m.nw_proto == 0 {
                None
            } else {
                Some(k.nw_proto)
            };
            l4(&mut out, proto, k, m, v6);
        }
        ethertype::ARP => {
            let mut a = Items::new();
            a.num("sip", k.nw_src, m.nw_src, u32::MAX, ip4);
            a.num("tip", k.nw_dst, m.nw_dst, u32::MAX, ip4);
            a.num("op", k.nw_proto, m.nw_proto, u8::MAX, dec);
            a.num("sha", k.arp_sha, m.arp_sha, [0xff; 6], mac);
            a.num("tha", k.arp_tha, m.arp_tha, [0xff; 6], mac);
            a.push_group(&mut out, "arp");
        }
        _ => {
            // Fields masked without a known eth_type (a translation bug, or a new protocol):
            // still shown, under neutral names, so that nothing masked is hidden.
            let mut nw = Items::new();
            nw.num("src", k.nw_src, m.nw_src, u32::MAX, hex);
            nw.num("dst", k.nw_dst, m.nw_dst, u32::MAX, hex);
            nw.num("proto", k.nw_proto, m.nw_proto, u8::MAX, dec);
            nw.num("tos", k.nw_tos, m.nw_tos, u8::MAX, hex);
            nw.num("ttl", k.nw_ttl, m.nw_ttl, u8::MAX, dec);
            nw.num("frag", k.nw_frag, m.nw_frag, u8::MAX, hex);
            nw.push_group(&mut out, "nw");
            l4(&mut out, None, k, m, false);
        }
    }
    out.join(",")
}

/// Adds `name(value[/mask])` when `mask` is nonzero.
fn one<T>(out: &mut Vec<String>, name: &str, v: T, m: T, full: T, show: impl Fn(T) -> String)
where
    T: PartialEq + Default + Copy,
{
    if m == T::default() {
        return;
    }
    if m == full {
        out.push(format!("{name}({})", show(v)));
    } else {
        out.push(format!("{name}({}/{})", show(v), show(m)));
    }
}

fn l4(
    out: &mut Vec<String>,
    proto: Option<u8>,
    k: &pipeline::FlowKey,
    m: &pipeline::FlowKey,
    v6: bool,
) {
    let name = match proto {
        Some(ipproto::TCP) => "tcp",
        Some(ipproto::UDP) => "udp",
        Some(ipproto::SCTP) => "sctp",
        Some(ipproto::ICMP) if !v6 => "icmp",
        Some(ipproto::ICMPV6) if v6 => "icmpv6",
        _ => "l4",
    };
    let icmp = name == "icmp" || name == "icmpv6";
    let mut t = Items::new();
    t.num(
        if icmp { "type" } else { "src" },
        k.tp_src,
        m.tp_src,
        u16::MAX,
        dec,
    );
    t.num(
        if icmp { "code" } else { "dst" },
        k.tp_dst,
        m.tp_dst,
        u16::MAX,
        dec,
    );
    t.push_group(out, name);
    one(out, "tcp_flags", k.tcp_flags, m.tcp_flags, u16::MAX, hex);
    let mut nd = Items::new();
    nd.num("target", k.nd_target, m.nd_target, [0xff; 16], ip6);
    if v6 {
        nd.num("sll", k.arp_sha, m.arp_sha, [0xff; 6], mac);
        nd.num("tll", k.arp_tha, m.arp_tha, [0xff; 6], mac);
    }
    nd.push_group(out, "nd");
}

/// One datapath action in `dpctl` style.
pub fn format_action(a: &DpAction) -> String {
    match a {
        DpAction::Output(p) => p.to_string(),
        DpAction::SetEthSrc(m) => format!("set(eth(src={}))", mac(*m)),
        DpAction::SetEthDst(m) => format!("set(eth(dst={}))", mac(*m)),
        DpAction::SetIpv4Src(v) => format!("set(ipv4(src={}))", ip4(*v)),
        DpAction::SetIpv4Dst(v) => format!("set(ipv4(dst={}))", ip4(*v)),
        DpAction::SetIpv6Src(v) => format!("set(ipv6(src={}))", ip6(*v)),
        DpAction::SetIpv6Dst(v) => format!("set(ipv6(dst={}))", ip6(*v)),
        DpAction::SetIpDscp(v) => format!("set(ip(dscp={:#x}))", v),
        DpAction::SetIpEcn(v) => format!("set(ip(ecn={v}))"),
        DpAction::SetIpTtl(v) => format!("set(ip(ttl={v}))"),
        DpAction::SetTpSrc(v) => format!("set(l4(src={v}))"),
        DpAction::SetTpDst(v) => format!("set(l4(dst={v}))"),
        DpAction::PushVlan { tpid, tci } => format!(
            "push_vlan(tpid={tpid:#06x},vid={},pcp={})",
            tci & pipeline::flowkey::VLAN_VID_MASK,
            tci >> VLAN_PCP_SHIFT
        ),
        DpAction::PopVlan => "pop_vlan".into(),
        DpAction::SetVlanVid(v) => format!("set(vlan(vid={v}))"),
        DpAction::SetVlanPcp(v) => format!("set(vlan(pcp={v}))"),
        DpAction::DecTtl => "dec_ttl".into(),
        DpAction::Controller => "userspace(controller)".into(),
        DpAction::Recirc(id) => format!("recirc({id:#x})"),
    }
}

/// The action list, `drop` when empty.
pub fn format_actions(actions: &[DpAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions
        .iter()
        .map(format_action)
        .collect::<Vec<_>>()
        .join(",")
}

/// One megaflow: `<match>, packets:N, bytes:N, used:S.SSSs|never[, flags:0xNN], actions:A`.
pub fn format_megaflow(f: &MegaflowInfo, now_ns: u64) -> String {
    let s = &f.stats;
    let used = if s.packets == 0 {
        "never".to_string()
    } else {
        let age = now_ns.saturating_sub(s.last_used_ns);
        format!("{}.{:03}s", age / 1_000_000_000, (age / 1_000_000) % 1000)
    };
    let mut line = format_match(&f.key, &f.mask);
    if line.is_empty() {
        // A megaflow that matches everything: OVS prints nothing; say so explicitly.
        line.push_str("any");
    }
    let _ = write!(
        line,
        ", packets:{}, bytes:{}, used:{}",
        s.packets, s.bytes, used
    );
    if s.tcp_flags != 0 {
        let _ = write!(line, ", flags:{:#x}", s.tcp_flags);
    }
    let _ = write!(line, ", actions:{}", format_actions(&f.actions));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::megaflow::MegaflowStats;
    use pipeline::FlowKey;
    use std::sync::Arc;

    #[test]
    fn tcp_megaflow_prints_only_masked_fields() {
        let mask = FlowKey {
            in_port: u32::MAX,
            dl_src: [0xff; 6],
            dl_type: 0xffff,
            nw_src: 0xffff_ff00,
            nw_proto: 0xff,
            nw_frag: 0xff,
            tp_dst: 0xffff,
            ..FlowKey::default()
        };
        let key = FlowKey {
            in_port: 1,
            dl_src: [0, 1, 2, 3, 4, 5],
            dl_dst: [9; 6],
            dl_type: 0x0800,
            nw_src: 0x0a00_0001,
            nw_dst: 0x0a00_0002,
            nw_proto: 6,
            tp_dst: 80,
            tp_src: 999,
            ..FlowKey::default()
        }
        .masked(&mask);
        let info = MegaflowInfo {
            index: 0,
            key,
            mask,
            actions: Arc::from(vec![DpAction::SetEthDst([1; 6]), DpAction::Output(2)]),
            stats: MegaflowStats {
                packets: 12,
                bytes: 1200,
                tcp_flags: 0x12,
                first_used_ns: 0,
                last_used_ns: 1_000_000_000,
            },
        };
        assert_eq!(
            format_megaflow(&info, 1_500_000_000),
            "in_port(1),eth(src=00:01:02:03:04:05),eth_type(0x0800),\
             ipv4(src=10.0.0.0/255.255.255.0,proto=6,frag=no),tcp(dst=80), \
             packets:12, bytes:1200, used:0.500s, flags:0x12, \
             actions:set(eth(dst=01:01:01:01:01:01)),2"
        );
    }

    #[test]
    fn arp_ipv6_recirc_and_drop() {
        let mask = FlowKey {
            recirc_id: u32::MAX,
            dl_type: 0xffff,
            nw_proto: 0xff,
            nw_dst: u32::MAX,
            ..FlowKey::default()
        };
        let key = FlowKey {
            recirc_id: 1,
            dl_type: ethertype::ARP,
            nw_proto: 1,
            nw_dst: 0xc0a8_0001,
            ..FlowKey::default()
        };
        assert_eq!(
            format_match(&key, &mask),
            "recirc_id(0x1),eth_type(0x0806),arp(tip=192.168.0.1,op=1)"
        );
        let mask6 = FlowKey {
            dl_type: 0xffff,
            ipv6_dst: [0xff; 16],
            nw_proto: 0xff,
            tp_src: 0xffff,
            ..FlowKey::default()
        };
        let mut dst = [0u8; 16];
        dst[0] = 0xfe;
        dst[1] = 0x80;
        dst[15] = 1;
        let key6 = FlowKey {
            dl_type: ethertype::IPV6,
            ipv6_dst: dst,
            nw_proto: ipproto::ICMPV6,
            tp_src: 135,
            ..FlowKey::default()
        };
        assert_eq!(
            format_match(&key6, &mask6),
            "eth_type(0x86dd),ipv6(dst=fe80::1,proto=58),icmpv6(type=135)"
        );
        assert_eq!(format_actions(&[]), "drop");
        assert_eq!(
            format_actions(&[
                DpAction::Recirc(2),
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 10
                }
            ]),
            "recirc(0x2),push_vlan(tpid=0x8100,vid=10,pcp=0)"
        );
        let info = MegaflowInfo {
            index: 0,
            key: FlowKey::default(),
            mask: FlowKey::default(),
            actions: Arc::from(Vec::new()),
            stats: MegaflowStats::default(),
        };
        assert_eq!(
            format_megaflow(&info, 5),
            "any, packets:0, bytes:0, used:never, actions:drop"
        );
    }
}
