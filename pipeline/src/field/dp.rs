//! How fields look in Open vSwitch's datapath-flow syntax (`ovs-appctl dpctl/dump-flows`:
//! `in_port(1),eth(src=..),ipv4(src=..,proto=6)`), which the megaflow printer uses. The
//! datapath matches key bytes, not OpenFlow sub-fields, so an item prints its whole key slot.
//! Which group a slot prints in depends on the packet's protocol (`nw_src` is `ipv4(src=)`,
//! `arp(sip=)` or, without a known ethertype, `nw(src=)`), so an entry may list several
//! items, each for the context its group and condition select.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{u128_to_mac, KeySlot, TUN_OPTS_LEN};
use crate::flowkey::{ethertype, ipproto, FlowKey, FRAG_ANY, FRAG_LATER, VLAN_PCP_SHIFT};

/// OpenFlow's LOCAL port: a bridge's megaflows, printed in OpenFlow port numbers, name it.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;

/// A datapath-flow group, in printing order. Groups print as `name(a=..,b=..)`, except the
/// single-value ones (`recirc_id(0x1)`), whose one item carries the name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum DpGroup {
    // Open vSwitch's order: tunnel, conntrack, recirc_id, in_port.
    Tunnel,
    CtState,
    CtZone,
    CtMark,
    CtLabel,
    /// The original-direction tuple: `ct_tuple4(src=..,dst=..,proto=..,tp_src=..,tp_dst=..)`
    /// for IPv4, `ct_tuple6(src=..,dst=..,proto=..,src_port=..,dst_port=..)` for IPv6.
    CtTuple4,
    CtTuple6,
    RecircId,
    InPort,
    Eth,
    Vlan,
    Vlan2,
    EthType,
    Ipv4,
    Ipv6,
    Arp,
    /// L3 fields under a masked but unknown ethertype (or none): shown so nothing is hidden.
    Nw,
    /// `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, or `l4` when the protocol is not known.
    L4,
    TcpFlags,
    Nd,
}

/// An extra condition on an item inside an active group.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DpWhen {
    Always,
    /// The L4 group is ICMP or ICMPv6.
    Icmp,
    NotIcmp,
    /// The ethertype is IPv6.
    Ipv6,
}

/// How an item's value prints.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DpFmt {
    /// As C's `%#x` (OVS's style): `0x7`, but `0` for zero.
    Hex,
    Dec,
    /// A port number: decimal, OpenFlow's LOCAL (`0xfffffffe`) as `LOCAL`.
    Port,
    Ip4,
    Ip6,
    Mac,
    /// `0x` and every byte.
    Bytes,
    /// `0x%04x`.
    EthType,
    /// `tci=V/M`, or `vid=N,pcp=N` when exact.
    Tci,
    /// `no` / `first` / `later` when both fragment bits are masked.
    Frag,
    /// The Geneve option bytes with their mask, whenever they or their length were consulted.
    Geneve,
    /// `name(+a-b)`: each named bit of the mask, `+` when set in the value (OVS's tunnel
    /// `flags(-df+csum+key)`); bits without a name as `0xV/0xM` after them.
    Flags(&'static [(&'static str, u16)]),
}

/// One field as a datapath-flow item.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DpItem {
    pub group: DpGroup,
    pub name: &'static str,
    pub fmt: DpFmt,
    pub when: DpWhen,
    /// The mask that prints as the value alone; `None`: every bit of the slot.
    pub full: Option<u128>,
    /// Order inside the group where it differs from table order (the dump-flows order).
    pub pos: u8,
}

/// An item of `group` named `name`.
pub const fn dp(group: DpGroup, name: &'static str, fmt: DpFmt) -> DpItem {
    DpItem {
        group,
        name,
        fmt,
        when: DpWhen::Always,
        full: None,
        pos: 0,
    }
}

impl DpItem {
    pub const fn when(mut self, w: DpWhen) -> DpItem {
        self.when = w;
        self
    }

    pub const fn full(mut self, f: u128) -> DpItem {
        self.full = Some(f);
        self
    }

    pub const fn pos(mut self, p: u8) -> DpItem {
        self.pos = p;
        self
    }
}

/// What the printer knows of a megaflow's protocols.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DpContext {
    /// The ethertype when it is masked, else 0.
    pub l3: u16,
    /// The L4 group's name.
    pub l4: &'static str,
}

/// The context of a key and its mask.
pub fn dp_context(k: &FlowKey, m: &FlowKey) -> DpContext {
    let l3 = if m.dl_type == 0 { 0 } else { k.dl_type };
    let v6 = l3 == ethertype::IPV6;
    let ip = l3 == ethertype::IPV4 || v6;
    let proto = (ip && m.nw_proto != 0).then_some(k.nw_proto);
    let l4 = match proto {
        Some(ipproto::TCP) => "tcp",
        Some(ipproto::UDP) => "udp",
        Some(ipproto::SCTP) => "sctp",
        Some(ipproto::ICMP) if !v6 => "icmp",
        Some(ipproto::ICMPV6) if v6 => "icmpv6",
        _ => "l4",
    };
    DpContext { l3, l4 }
}

impl DpGroup {
    /// Whether the group prints at all in this context.
    pub fn active(self, cx: &DpContext) -> bool {
        let known = [ethertype::IPV4, ethertype::IPV6, ethertype::ARP];
        match self {
            DpGroup::Ipv4 | DpGroup::CtTuple4 => cx.l3 == ethertype::IPV4,
            DpGroup::Ipv6 | DpGroup::CtTuple6 => cx.l3 == ethertype::IPV6,
            DpGroup::Arp => cx.l3 == ethertype::ARP,
            DpGroup::Nw => !known.contains(&cx.l3),
            DpGroup::L4 | DpGroup::TcpFlags | DpGroup::Nd => cx.l3 != ethertype::ARP,
            _ => true,
        }
    }

    /// The name before the parentheses of a list group; `None` for single-value groups.
    pub fn label(self, cx: &DpContext) -> Option<&'static str> {
        Some(match self {
            DpGroup::Tunnel => "tunnel",
            DpGroup::Eth => "eth",
            DpGroup::Vlan => "vlan",
            DpGroup::Vlan2 => "vlan2",
            DpGroup::Ipv4 => "ipv4",
            DpGroup::Ipv6 => "ipv6",
            DpGroup::Arp => "arp",
            DpGroup::Nw => "nw",
            DpGroup::L4 => cx.l4,
            DpGroup::Nd => "nd",
            DpGroup::CtTuple4 => "ct_tuple4",
            DpGroup::CtTuple6 => "ct_tuple6",
            DpGroup::RecircId
            | DpGroup::CtState
            | DpGroup::CtZone
            | DpGroup::CtMark
            | DpGroup::CtLabel
            | DpGroup::InPort
            | DpGroup::EthType
            | DpGroup::TcpFlags => return None,
        })
    }
}

impl DpWhen {
    pub fn holds(self, cx: &DpContext) -> bool {
        let icmp = cx.l4 == "icmp" || cx.l4 == "icmpv6";
        match self {
            DpWhen::Always => true,
            DpWhen::Icmp => icmp,
            DpWhen::NotIcmp => !icmp,
            DpWhen::Ipv6 => cx.l3 == ethertype::IPV6,
        }
    }
}

/// Hex as C's `%#x` prints it: `0x7`, but plain `0` for zero.
fn hex(v: u128) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

fn bytes_hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn mac(v: u128) -> String {
    super::ofctl::format_mac(u128_to_mac(v))
}

impl DpItem {
    /// The item's text for `slot` of key `k` under mask `m` (`name=value[/mask]`, or
    /// `name(value[/mask])` for a single-value group); `None` when no bit was consulted.
    pub fn format(&self, slot: KeySlot, k: &FlowKey, m: &FlowKey, single: bool) -> Option<String> {
        let (v, mv) = (slot.read(k), slot.read(m));
        let text = match self.fmt {
            DpFmt::Geneve => {
                let len = TUN_OPTS_LEN.def().key_slot();
                if !slot.any(m) && !len.is_some_and(|l| l.any(m)) {
                    return None;
                }
                return Some(format!(
                    "{}={}/{}",
                    self.name,
                    bytes_hex(slot.of(k)),
                    bytes_hex(slot.of(m))
                ));
            }
            _ if !slot.any(m) => return None,
            DpFmt::Tci if mv == slot.full() => {
                let (vid, pcp) = (v & 0x0fff, v >> VLAN_PCP_SHIFT);
                return Some(format!("vid={vid},pcp={pcp}"));
            }
            DpFmt::Flags(names) => {
                let mut t = String::new();
                let mut rest = mv;
                for &(name, bit) in names {
                    let bit = u128::from(bit);
                    if mv & bit != 0 {
                        t.push(if v & bit != 0 { '+' } else { '-' });
                        t.push_str(name);
                        rest &= !bit;
                    }
                }
                if rest != 0 {
                    let _ = write!(
                        t,
                        "{}{:#x}/{rest:#x}",
                        if t.is_empty() { "" } else { "," },
                        v & rest
                    );
                }
                return Some(format!("{}({t})", self.name));
            }
            DpFmt::Frag => {
                let both = u128::from(FRAG_ANY | FRAG_LATER);
                let t = if mv & both == both {
                    match v & both {
                        0 => "no".to_string(),
                        x if x == u128::from(FRAG_ANY) => "first".to_string(),
                        _ => "later".to_string(),
                    }
                } else {
                    format!("{v:#x}/{mv:#x}")
                };
                return Some(format!("{}={t}", self.name));
            }
            _ => {
                let show = |x: u128| match self.fmt {
                    DpFmt::Dec => x.to_string(),
                    DpFmt::Port if x == u128::from(OFPP_LOCAL) => "LOCAL".to_string(),
                    DpFmt::Port => x.to_string(),
                    DpFmt::Ip4 => Ipv4Addr::from(x as u32).to_string(),
                    DpFmt::Ip6 => Ipv6Addr::from(x).to_string(),
                    DpFmt::Mac => mac(x),
                    DpFmt::Bytes => {
                        let b = x.to_be_bytes();
                        bytes_hex(&b[16 - usize::from(slot.len).min(16)..])
                    }
                    DpFmt::EthType => format!("{x:#06x}"),
                    _ => hex(x),
                };
                if mv == self.full.unwrap_or_else(|| slot.full()) {
                    show(v)
                } else if matches!(self.fmt, DpFmt::Dec | DpFmt::Port) {
                    // OVS's `format_be16` / `format_u8u`: a decimal value, a hex mask.
                    format!("{v}/{mv:#x}")
                } else {
                    format!("{}/{}", show(v), show(mv))
                }
            }
        };
        Some(if single {
            format!("{}({text})", self.name)
        } else {
            format!("{}={text}", self.name)
        })
    }
}
