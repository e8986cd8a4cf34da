//! Text form of megaflows, in the style of `ovs-appctl dpctl/dump-flows`: only fields whose
//! mask is nonzero are printed, a partial mask as `value/mask`, then the counters and the
//! datapath actions. Pure formatting of control-plane data; nothing here runs per packet.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use pipeline::field::{dp_context, DpGroup, FieldId};
use pipeline::flowkey::VLAN_PCP_SHIFT;
use pipeline::DpAction;

use crate::megaflow::MegaflowInfo;

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

/// The match part: `in_port(1),eth(src=..),eth_type(0x0800),ipv4(..),tcp(..)`. Every entry of
/// the match-field table with datapath items contributes the ones its slot's mask and the
/// megaflow's protocols select; groups print in `DpGroup` order.
pub fn format_match(k: &pipeline::FlowKey, m: &pipeline::FlowKey) -> String {
    format_match_port(k, m, &port_number)
}

/// A port as `dpctl/dump-flows --no-names` prints it: its number, `LOCAL` for the local port.
pub fn port_number(p: u32) -> String {
    if p == pipeline::field::dp::OFPP_LOCAL {
        "LOCAL".to_string()
    } else {
        p.to_string()
    }
}

/// [`format_match`] with an exactly matched `in_port` printed as `port` names it.
fn format_match_port(
    k: &pipeline::FlowKey,
    m: &pipeline::FlowKey,
    port: &dyn Fn(u32) -> String,
) -> String {
    let cx = dp_context(k, m);
    let mut items = Vec::new();
    for (seq, id) in FieldId::all().enumerate() {
        let d = id.def();
        let Some(slot) = d.key_slot() else {
            continue;
        };
        for item in d.dp {
            if !item.group.active(&cx) || !item.when.holds(&cx) {
                continue;
            }
            let single = item.group.label(&cx).is_none();
            if item.group == DpGroup::InPort && m.in_port == u32::MAX {
                items.push((
                    item.group,
                    item.pos,
                    seq,
                    format!("in_port({})", port(k.in_port)),
                ));
            } else if let Some(text) = item.format(slot, k, m, single) {
                items.push((item.group, item.pos, seq, text));
            }
        }
    }
    items.sort_by_key(|(group, pos, seq, _)| (*group, *pos, *seq));
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let group = items[i].0;
        let n = items[i..].iter().take_while(|x| x.0 == group).count();
        let texts = items[i..i + n].iter().map(|x| x.3.as_str());
        match group.label(&cx) {
            Some(label) => out.push(format!("{label}({})", texts.collect::<Vec<_>>().join(","))),
            None => out.extend(texts.map(str::to_string)),
        }
        i += n;
    }
    out.join(",")
}

/// One datapath action in `dpctl` style.
pub fn format_action(a: &DpAction) -> String {
    format_action_port(a, &port_number)
}

/// [`format_action`] with output ports (those in clones too) printed as `port` names them.
fn format_action_port(a: &DpAction, port: &dyn Fn(u32) -> String) -> String {
    match a {
        DpAction::Output(p) => port(*p),
        DpAction::SetEthSrc(m) => format!("set(eth(src={}))", mac(*m)),
        DpAction::SetEthDst(m) => format!("set(eth(dst={}))", mac(*m)),
        DpAction::SetIpv4Src(v) => format!("set(ipv4(src={}))", ip4(*v)),
        DpAction::SetIpv4Dst(v) => format!("set(ipv4(dst={}))", ip4(*v)),
        DpAction::SetIpv6Src(v) => format!("set(ipv6(src={}))", ip6(*v)),
        DpAction::SetIpv6Dst(v) => format!("set(ipv6(dst={}))", ip6(*v)),
        DpAction::SetIpv6Label(v) => format!("set(ipv6(label={v:#x}))"),
        DpAction::SetIpDscp(v) => format!("set(ip(dscp={:#x}))", v),
        DpAction::SetIpEcn(v) => format!("set(ip(ecn={v}))"),
        DpAction::SetIpTtl(v) => format!("set(ip(ttl={v}))"),
        DpAction::SetArpOp(v) => format!("set(arp(op={v}))"),
        DpAction::SetArpSpa(v) => format!("set(arp(sip={}))", ip4(*v)),
        DpAction::SetArpTpa(v) => format!("set(arp(tip={}))", ip4(*v)),
        DpAction::SetArpSha(m) => format!("set(arp(sha={}))", mac(*m)),
        DpAction::SetArpTha(m) => format!("set(arp(tha={}))", mac(*m)),
        DpAction::SetTpSrc(v) => format!("set(l4(src={v}))"),
        DpAction::SetTpDst(v) => format!("set(l4(dst={v}))"),
        DpAction::SetIcmpType(v) => format!("set(icmp(type={v}))"),
        DpAction::SetIcmpCode(v) => format!("set(icmp(code={v}))"),
        DpAction::SetNdTarget(v) => format!("set(nd(target={}))", ip6(*v)),
        DpAction::SetNdSll(m) => format!("set(nd(sll={}))", mac(*m)),
        DpAction::SetNdTll(m) => format!("set(nd(tll={}))", mac(*m)),
        DpAction::PushVlan { tpid, tci } => format!(
            "push_vlan(tpid={tpid:#06x},vid={},pcp={})",
            tci & pipeline::flowkey::VLAN_VID_MASK,
            tci >> VLAN_PCP_SHIFT
        ),
        DpAction::PopVlan => "pop_vlan".into(),
        DpAction::SetVlanVid(v) => format!("set(vlan(vid={v}))"),
        DpAction::SetVlanPcp(v) => format!("set(vlan(pcp={v}))"),
        DpAction::DecTtl => "dec_ttl".into(),
        DpAction::Controller(to) => {
            let c = &to.context;
            format!(
                "userspace(controller(reason={},table_id={},rule_cookie={:#x},controller_id={},max_len={}))",
                c.reason as u8, c.table_id, c.cookie, c.controller_id, c.max_len
            )
        }
        DpAction::Recirc(id) => format!("recirc({id:#x})"),
        DpAction::Clone(sub) => format!("clone({})", format_actions_port(sub, port)),
        DpAction::TunnelPush(h) => h.0.describe(),
        DpAction::Ct(t) => t.0.describe(),
        DpAction::Drop(reason) => format!("drop({})", reason.name()),
    }
}

/// The action list, `drop` when empty.
pub fn format_actions(actions: &[DpAction]) -> String {
    format_actions_port(actions, &port_number)
}

fn format_actions_port(actions: &[DpAction], port: &dyn Fn(u32) -> String) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions
        .iter()
        .map(|a| format_action_port(a, port))
        .collect::<Vec<_>>()
        .join(",")
}

/// One megaflow: `<match>, packets:N, bytes:N, used:S.SSSs|never[, flags:0xNN], actions:A`.
pub fn format_megaflow(f: &MegaflowInfo, now_ns: u64) -> String {
    format_megaflow_ports(f, now_ns, port_number)
}

/// [`format_megaflow`] with the ports printed as `port` names them: the `in_port` (when the
/// megaflow matches it exactly) and every output, those inside clones too. A datapath serving
/// several bridges numbers its ports across them; this prints a bridge's megaflows with its
/// OpenFlow port numbers ([`port_number`] of the OpenFlow number), or with the ports' names as
/// `ovs-appctl dpctl/dump-flows --names` does (`in_port(veth0)`, `actions:veth1`; no quoting).
pub fn format_megaflow_ports(
    f: &MegaflowInfo,
    now_ns: u64,
    port: impl Fn(u32) -> String,
) -> String {
    let s = &f.stats;
    let used = if s.packets == 0 {
        "never".to_string()
    } else {
        let age = now_ns.saturating_sub(s.last_used_ns);
        format!("{}.{:03}s", age / 1_000_000_000, (age / 1_000_000) % 1000)
    };
    let mut line = format_match_port(&f.key, &f.mask, &port);
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
    let _ = write!(line, ", actions:{}", format_actions_port(&f.actions, &port));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::megaflow::MegaflowStats;
    use pipeline::flowkey::{ethertype, ipproto};
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

    #[test]
    fn ports_renamed_in_the_match_and_the_outputs() {
        let mask = FlowKey {
            in_port: u32::MAX,
            dl_type: 0xffff,
            ..FlowKey::default()
        };
        let key = FlowKey {
            in_port: 7,
            dl_type: 0x88b5,
            ..FlowKey::default()
        };
        let info = MegaflowInfo {
            index: 0,
            key,
            mask,
            actions: Arc::from(vec![
                DpAction::Output(8),
                DpAction::PopVlan,
                DpAction::Output(9),
            ]),
            stats: MegaflowStats::default(),
        };
        let ofport = |p: u32| port_number(p - 6);
        assert_eq!(
            format_megaflow_ports(&info, 0, ofport),
            "in_port(1),eth_type(0x88b5), packets:0, bytes:0, used:never, actions:2,pop_vlan,3"
        );
        // By name, as `dpctl/dump-flows --names`; a clone's outputs too.
        let names = |p: u32| match p {
            7 => "veth0".to_string(),
            8 => "p1".to_string(),
            _ => port_number(p),
        };
        let cloned = MegaflowInfo {
            actions: Arc::from(vec![
                DpAction::Clone(vec![DpAction::Output(8)].into()),
                DpAction::Output(9),
            ]),
            ..info.clone()
        };
        assert_eq!(
            format_megaflow_ports(&cloned, 0, names),
            "in_port(veth0),eth_type(0x88b5), packets:0, bytes:0, used:never, actions:clone(p1),9"
        );
        // An in_port the megaflow does not match exactly is printed as it is.
        let wild = MegaflowInfo {
            mask: FlowKey {
                in_port: 0xff,
                ..mask
            },
            ..info
        };
        assert_eq!(
            format_megaflow_ports(&wild, 0, ofport),
            "in_port(7/0xff),eth_type(0x88b5), packets:0, bytes:0, used:never, actions:2,pop_vlan,3"
        );
    }

    #[test]
    fn tunnel_flags_print_by_name_as_ovs_does() {
        use pipeline::flowkey::{TUN_FLAG_CSUM, TUN_FLAG_DF, TUN_FLAG_PRESENT};
        let k = FlowKey {
            tun_id: 0x1388,
            tun_src: 0xac1f_0102,
            tun_dst: 0xac1f_0101,
            tun_flags: TUN_FLAG_PRESENT | TUN_FLAG_CSUM,
            in_port: 3,
            ..FlowKey::default()
        };
        let m = FlowKey {
            tun_id: u64::MAX,
            tun_src: u32::MAX,
            tun_dst: u32::MAX,
            tun_flags: TUN_FLAG_PRESENT | TUN_FLAG_CSUM | TUN_FLAG_DF,
            in_port: u32::MAX,
            ..FlowKey::default()
        };
        assert_eq!(
            format_match(&k, &m),
            "tunnel(tun_id=0x1388,src=172.31.1.2,dst=172.31.1.1,flags(-df+csum+key)),in_port(3)"
        );
    }
}
