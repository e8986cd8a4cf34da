//! Field prerequisites: what a match must establish (an ethertype, an IP protocol, an ICMPv6
//! type) before a field means anything, as meta-flow's `MFP_*`. A match here is a value key
//! and a mask key; a protocol is established when its field is matched exactly.

use crate::flowkey::{ct_state, ethertype, ipproto, FlowKey};

/// What a match must establish before a field may be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Prereq {
    None,
    Ipv4,
    Ipv6,
    IpAny,
    Ipv4OrArp,
    /// IPv4, IPv6 or ARP (`nw_proto`, which means the ARP opcode on ARP).
    IpOrArp,
    Arp,
    /// TCP, UDP or SCTP over IPv4 or IPv6.
    L4,
    /// This IP protocol over IPv4 or IPv6.
    Proto(u8),
    /// ICMP over IPv4 or ICMPv6 over IPv6.
    IcmpAny,
    /// ICMP over IPv4.
    Icmp4,
    Icmp6,
    NdTarget,
    NdSll,
    NdTll,
    /// A valid connection (OVS's `MFP_CT_VALID`): the match's `ct_state` requires one of
    /// `+new`, `+est`, `+rel`, `+rpl`, `+snat`, `+dnat`, or both `+trk` and `-inv`.
    Ct,
    /// A valid connection and IPv4 (the conntrack tuple's IPv4 addresses).
    CtV4,
    /// A valid connection and IPv6.
    CtV6,
    /// Not a prerequisite but a printing condition: the match has `ct_nw_proto` (ovs-ofctl
    /// prints `ct_tp_src` / `ct_tp_dst` only then).
    CtProto,
}

const CT_VALID: &str = "requires a tracked valid connection: ct_state with +new, +est, +rel, \
                        +rpl, +snat or +dnat, or with +trk-inv";

/// The protocol layer a field belongs to, for megaflow mask completion.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layer {
    /// Metadata, tunnel, Ethernet, VLAN: nothing to add.
    None,
    /// Meaningful only with the ethertype.
    L3,
    /// Meaningful only with the ethertype, the IP protocol and the fragment bits.
    L4,
}

fn dl_type_is(v: &FlowKey, m: &FlowKey, t: u16) -> bool {
    m.dl_type == 0xffff && v.dl_type == t
}

fn is_ip(v: &FlowKey, m: &FlowKey) -> bool {
    dl_type_is(v, m, ethertype::IPV4) || dl_type_is(v, m, ethertype::IPV6)
}

/// OVS's `is_ct_valid` on a match: a `ct_state` that only a tracked, valid packet has.
fn ct_valid(v: &FlowKey, m: &FlowKey) -> bool {
    use ct_state::*;
    let state = v.ct_state & m.ct_state;
    state & (NEW | ESTABLISHED | RELATED | REPLY | SRC_NAT | DST_NAT) != 0
        || (state & TRACKED != 0 && m.ct_state & INVALID != 0 && state & INVALID == 0)
}

fn proto_is(v: &FlowKey, m: &FlowKey, p: u8) -> bool {
    is_ip(v, m) && m.nw_proto == 0xff && v.nw_proto == p
}

impl Prereq {
    /// True when the match (`v` under mask `m`) establishes the prerequisite.
    pub fn holds(self, v: &FlowKey, m: &FlowKey) -> bool {
        let ipv4 = dl_type_is(v, m, ethertype::IPV4);
        let ipv6 = dl_type_is(v, m, ethertype::IPV6);
        let arp = dl_type_is(v, m, ethertype::ARP);
        let proto = |p| proto_is(v, m, p);
        let icmp6_type = |t: u16| proto(ipproto::ICMPV6) && m.tp_src == 0xffff && v.tp_src == t;
        match self {
            Prereq::None => true,
            Prereq::Ipv4 => ipv4,
            Prereq::Ipv6 => ipv6,
            Prereq::IpAny => ipv4 || ipv6,
            Prereq::Ipv4OrArp => ipv4 || arp,
            Prereq::IpOrArp => ipv4 || ipv6 || arp,
            Prereq::Arp => arp,
            Prereq::L4 => proto(ipproto::TCP) || proto(ipproto::UDP) || proto(ipproto::SCTP),
            Prereq::Proto(p) => proto(p),
            Prereq::IcmpAny => (ipv4 && proto(ipproto::ICMP)) || (ipv6 && proto(ipproto::ICMPV6)),
            Prereq::Icmp4 => ipv4 && proto(ipproto::ICMP),
            Prereq::Icmp6 => ipv6 && proto(ipproto::ICMPV6),
            Prereq::NdTarget => ipv6 && (icmp6_type(135) || icmp6_type(136)),
            Prereq::NdSll => ipv6 && icmp6_type(135),
            Prereq::NdTll => ipv6 && icmp6_type(136),
            Prereq::Ct => ct_valid(v, m),
            Prereq::CtV4 => ct_valid(v, m) && ipv4,
            Prereq::CtV6 => ct_valid(v, m) && ipv6,
            Prereq::CtProto => m.ct_nw_proto != 0,
        }
    }

    /// The explanation of an unmet prerequisite, as it appears in errors.
    pub fn describe(self) -> &'static str {
        match self {
            Prereq::None => "",
            Prereq::Ipv4 => "requires ip (dl_type=0x0800)",
            Prereq::Ipv6 => "requires ipv6 (dl_type=0x86dd)",
            Prereq::IpAny => "requires ip or ipv6 (set dl_type first)",
            Prereq::Ipv4OrArp => "requires ip or arp (dl_type=0x0800 or 0x0806)",
            Prereq::IpOrArp => "requires ip, ipv6 or arp (dl_type=0x0800, 0x86dd or 0x0806)",
            Prereq::Arp => "requires arp (dl_type=0x0806)",
            Prereq::L4 => "requires tcp, udp or sctp (set dl_type and nw_proto first)",
            Prereq::Proto(ipproto::TCP) => {
                "requires tcp or tcp6 (set dl_type and nw_proto=6 first)"
            }
            Prereq::Proto(ipproto::UDP) => {
                "requires udp or udp6 (set dl_type and nw_proto=17 first)"
            }
            Prereq::Proto(_) => "requires sctp or sctp6 (set dl_type and nw_proto=132 first)",
            Prereq::IcmpAny => "requires icmp or icmp6",
            Prereq::Icmp4 => "requires icmp (dl_type=0x0800,nw_proto=1)",
            Prereq::Icmp6 => "requires icmp6 (dl_type=0x86dd,nw_proto=58)",
            Prereq::NdTarget => "requires icmp6 with icmp_type=135 or 136",
            Prereq::NdSll => "requires icmp6 with icmp_type=135",
            Prereq::NdTll => "requires icmp6 with icmp_type=136",
            Prereq::Ct => CT_VALID,
            Prereq::CtV4 => "requires ip (dl_type=0x0800) and a valid connection (as ct_nw_proto)",
            Prereq::CtV6 => {
                "requires ipv6 (dl_type=0x86dd) and a valid connection (as ct_nw_proto)"
            }
            Prereq::CtProto => "requires ct_nw_proto",
        }
    }

    /// The layer of a field with this prerequisite. Neighbour discovery fields count as L3:
    /// the ICMPv6 type that selects them is matched by the rule itself, and the datapath
    /// needs only the ethertype to keep them apart from other protocols' zeroes.
    pub fn layer(self) -> Layer {
        match self {
            Prereq::None | Prereq::Ct | Prereq::CtProto => Layer::None,
            Prereq::Ipv4
            | Prereq::Ipv6
            | Prereq::IpAny
            | Prereq::Ipv4OrArp
            | Prereq::IpOrArp
            | Prereq::Arp
            | Prereq::NdTarget
            | Prereq::NdSll
            | Prereq::NdTll
            | Prereq::CtV4
            | Prereq::CtV6 => Layer::L3,
            Prereq::L4 | Prereq::Proto(_) | Prereq::IcmpAny | Prereq::Icmp4 | Prereq::Icmp6 => {
                Layer::L4
            }
        }
    }
}
