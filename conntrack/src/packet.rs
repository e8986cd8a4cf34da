//! What the datapath hands the tracker for one packet ([`CtPacket`]), and the extraction of
//! the lookup key from it, after Open vSwitch's `conn_key_extract` / `extract_l4*`: the
//! 5-tuple from the parsed `FlowKey`, the TCP fields the window tracking needs, the ICMP
//! type, code and identifier, and for an ICMP error the quoted header (IP addresses, protocol
//! and the first 8 bytes of its L4 header, which RFC 792 guarantees are quoted).
//!
//! A packet whose key cannot be extracted is `+trk+inv` (OVS does the same): port 0, an ICMP
//! query with a non-zero code, an ICMP type that is neither a query nor an error, an error
//! whose quoted source is not the error's destination, or one quoting another error.

use pipeline::flowkey::{ethertype, ipproto, FlowKey, FRAG_LATER};

use crate::key::{ConnKey, CtAddr, Family};
use crate::outcome::CtInvalid;
use crate::proto::ProtoClass;

/// TCP flag bits (as in `FlowKey::tcp_flags`).
pub mod tcp_flags {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
    pub const URG: u16 = 0x20;
}

/// The TCP fields the tracker checks (all host order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSegment {
    pub flags: u16,
    pub seq: u32,
    pub ack: u32,
    /// The window field as sent (unscaled).
    pub window: u16,
    /// The shift count of the window-scale option, when the segment carries one.
    pub wscale: Option<u8>,
    /// Bytes of TCP payload.
    pub payload_len: u32,
}

/// The header an ICMP error quotes: its addresses, protocol and first 8 bytes of L4 header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotedHeader {
    pub src: CtAddr,
    pub dst: CtAddr,
    pub proto: u8,
    /// The first bytes of the quoted L4 header (ports, or ICMP type, code, checksum, id).
    pub l4: [u8; 8],
    /// How many bytes of quoted L4 header the error really carries (at most 8 are kept).
    pub l4_len: u16,
}

/// ICMP or ICMPv6 fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpHeader {
    pub icmp_type: u8,
    pub code: u8,
    /// The identifier of a query (echo, timestamp, info); 0 otherwise.
    pub id: u16,
    /// The quoted header of an error message.
    pub quoted: Option<QuotedHeader>,
}

/// One packet as the tracker sees it. Ports are zero for protocols without them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtPacket {
    pub family: Family,
    pub src: CtAddr,
    pub dst: CtAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp: TcpSegment,
    pub icmp: IcmpHeader,
    /// An earlier `ct(nat)` of the same zone translated the packet already (its `ct_state`
    /// has `+snat` or `+dnat`): its connection is found by the reverse of its tuple, as
    /// OVS's `initial_conn_lookup` does.
    pub natted: bool,
}

impl CtPacket {
    /// The fields a parsed `FlowKey` already has: family, addresses, protocol, ports, TCP
    /// flags, ICMP type and code. The datapath adds what the key lacks (TCP sequence numbers,
    /// window, options and payload length; the ICMP identifier and quoted header). `None` for
    /// non-IP packets and for later fragments (no L4 header; reassembly is not done here).
    pub fn from_flow_key(key: &FlowKey) -> Option<CtPacket> {
        if key.nw_frag & FRAG_LATER != 0 {
            return None;
        }
        let (family, src, dst) = match key.dl_type {
            ethertype::IPV4 => (
                Family::V4,
                CtAddr::from_v4_bits(key.nw_src),
                CtAddr::from_v4_bits(key.nw_dst),
            ),
            ethertype::IPV6 => (Family::V6, CtAddr(key.ipv6_src), CtAddr(key.ipv6_dst)),
            _ => return None,
        };
        let mut pkt = CtPacket {
            family,
            src,
            dst,
            proto: key.nw_proto,
            ..CtPacket::default()
        };
        match ProtoClass::of(key.nw_proto, family) {
            ProtoClass::Icmp => {
                pkt.icmp.icmp_type = key.tp_src as u8;
                pkt.icmp.code = key.tp_dst as u8;
            }
            _ if has_ports(key.nw_proto) => {
                pkt.sport = key.tp_src;
                pkt.dport = key.tp_dst;
                if key.nw_proto == ipproto::TCP {
                    pkt.tcp.flags = key.tcp_flags;
                }
            }
            _ => {}
        }
        Some(pkt)
    }
}

/// True for the protocols whose first four L4 bytes are source and destination ports.
fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        ipproto::TCP | ipproto::UDP | ipproto::SCTP | UDPLITE | DCCP
    )
}

const UDPLITE: u8 = 136;
const DCCP: u8 = 33;

/// The window-scale shift of a TCP options area, if it has the option (OVS
/// `tcp_get_wscale`, without the clamp and flag the tracker adds). Never reads past `opts`.
pub fn tcp_wscale_option(opts: &[u8]) -> Option<u8> {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    const WINDOW: u8 = 3;
    let mut found = None;
    let mut rest = opts;
    while rest.len() >= 3 {
        match rest.first().copied() {
            Some(EOL) | None => return found,
            Some(NOP) => rest = rest.get(1..).unwrap_or_default(),
            Some(kind) => {
                if kind == WINDOW {
                    found = rest.get(2).copied();
                }
                let len = usize::from(rest.get(1).copied().unwrap_or(2)).max(2);
                rest = rest.get(len..).unwrap_or_default();
            }
        }
    }
    found
}

/// ICMPv4 types.
mod icmp4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACH: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROB: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
    pub const INFO_REQUEST: u8 = 15;
    pub const INFO_REPLY: u8 = 16;
}

/// ICMPv6 types.
mod icmp6 {
    pub const DST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROB: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// What an ICMP type is to the tracker.
enum IcmpKind {
    /// A query: the type of its answer (or request).
    Query {
        reverse: u8,
    },
    Error,
    Other,
}

fn icmp_kind(family: Family, icmp_type: u8) -> IcmpKind {
    use IcmpKind::*;
    match family {
        Family::V4 => match icmp_type {
            icmp4::ECHO_REQUEST => Query {
                reverse: icmp4::ECHO_REPLY,
            },
            icmp4::ECHO_REPLY => Query {
                reverse: icmp4::ECHO_REQUEST,
            },
            icmp4::TIMESTAMP => Query {
                reverse: icmp4::TIMESTAMP_REPLY,
            },
            icmp4::TIMESTAMP_REPLY => Query {
                reverse: icmp4::TIMESTAMP,
            },
            icmp4::INFO_REQUEST => Query {
                reverse: icmp4::INFO_REPLY,
            },
            icmp4::INFO_REPLY => Query {
                reverse: icmp4::INFO_REQUEST,
            },
            icmp4::DST_UNREACH
            | icmp4::TIME_EXCEEDED
            | icmp4::PARAM_PROB
            | icmp4::SOURCE_QUENCH
            | icmp4::REDIRECT => Error,
            _ => Other,
        },
        Family::V6 => match icmp_type {
            icmp6::ECHO_REQUEST => Query {
                reverse: icmp6::ECHO_REPLY,
            },
            icmp6::ECHO_REPLY => Query {
                reverse: icmp6::ECHO_REQUEST,
            },
            icmp6::DST_UNREACH
            | icmp6::PACKET_TOO_BIG
            | icmp6::TIME_EXCEEDED
            | icmp6::PARAM_PROB => Error,
            _ => Other,
        },
    }
}

/// True for the ICMP types that may open a connection (OVS `icmp4_valid_new`,
/// `icmp6_valid_new`).
pub(crate) fn icmp_valid_new(family: Family, icmp_type: u8) -> bool {
    match family {
        Family::V4 => matches!(
            icmp_type,
            icmp4::ECHO_REQUEST | icmp4::INFO_REQUEST | icmp4::TIMESTAMP
        ),
        Family::V6 => icmp_type == icmp6::ECHO_REQUEST,
    }
}

/// The key to look up for `pkt` in `zone`, and whether it is an ICMP error (whose key is the
/// quoted header's, reversed: the connection it is related to).
pub(crate) fn lookup_key(pkt: &CtPacket, zone: u16) -> Result<(ConnKey, bool), CtInvalid> {
    let mut key = ConnKey {
        src: pkt.src,
        dst: pkt.dst,
        zone,
        proto: pkt.proto,
        family: pkt.family,
        ..ConnKey::default()
    };
    match ProtoClass::of(pkt.proto, pkt.family) {
        ProtoClass::Icmp => match icmp_kind(pkt.family, pkt.icmp.icmp_type) {
            IcmpKind::Query { reverse } if pkt.icmp.code == 0 => {
                set_icmp_query(&mut key, pkt.icmp.id, pkt.icmp.icmp_type, reverse);
                Ok((key, false))
            }
            IcmpKind::Error => related_key(pkt, zone).map(|k| (k, true)),
            _ => Err(CtInvalid::BadHeader),
        },
        _ if has_ports(pkt.proto) => {
            if pkt.sport == 0 || pkt.dport == 0 {
                return Err(CtInvalid::BadHeader);
            }
            key.sport = pkt.sport;
            key.dport = pkt.dport;
            Ok((key, false))
        }
        _ => Ok((key, false)),
    }
}

fn set_icmp_query(key: &mut ConnKey, id: u16, icmp_type: u8, reverse: u8) {
    key.sport = id;
    key.dport = id;
    key.src_icmp_type = icmp_type;
    key.dst_icmp_type = reverse;
}

/// The key of the connection an ICMP error belongs to: the quoted header's tuple, reversed
/// (the error travels against the quoted packet).
fn related_key(pkt: &CtPacket, zone: u16) -> Result<ConnKey, CtInvalid> {
    let q = pkt.icmp.quoted.ok_or(CtInvalid::BadHeader)?;
    // "pf doesn't do this, but it seems a good idea" (OVS): the error goes back to the sender.
    if q.src != pkt.dst {
        return Err(CtInvalid::BadHeader);
    }
    let need = if pkt.family == Family::V6 && q.proto == ipproto::TCP {
        20 // OVS checks a whole TCP header inside ICMPv6 errors.
    } else {
        8
    };
    if usize::from(q.l4_len) < need {
        return Err(CtInvalid::BadHeader);
    }
    let mut inner = ConnKey {
        src: q.src,
        dst: q.dst,
        zone,
        proto: q.proto,
        family: pkt.family,
        ..ConnKey::default()
    };
    // ICMP: type, code, checksum (2), identifier (2), sequence (2).
    let [b0, b1, b2, b3, b4, b5, _, _] = q.l4;
    match ProtoClass::of(q.proto, pkt.family) {
        ProtoClass::Icmp => match icmp_kind(pkt.family, b0) {
            IcmpKind::Query { reverse } if b1 == 0 => {
                set_icmp_query(&mut inner, u16::from_be_bytes([b4, b5]), b0, reverse);
            }
            _ => return Err(CtInvalid::BadHeader),
        },
        _ if has_ports(q.proto) => {
            inner.sport = u16::from_be_bytes([b0, b1]);
            inner.dport = u16::from_be_bytes([b2, b3]);
            if inner.sport == 0 || inner.dport == 0 {
                return Err(CtInvalid::BadHeader);
            }
        }
        _ => {}
    }
    Ok(inner.reverse())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn wscale_option_is_found_past_nops_and_other_options() {
        // MSS 1460, NOP, window scale 7, SACK permitted, EOL.
        let opts = [2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 0, 0];
        assert_eq!(tcp_wscale_option(&opts), Some(7));
        assert_eq!(tcp_wscale_option(&[2, 4, 5, 180]), None);
        // Truncated or zero-length options never loop or read past the end.
        assert_eq!(tcp_wscale_option(&[3, 0, 0]), Some(0));
        assert_eq!(tcp_wscale_option(&[9, 0, 0, 0, 0]), None);
        assert_eq!(tcp_wscale_option(&[3, 3]), None);
        assert_eq!(tcp_wscale_option(&[]), None);
    }

    #[test]
    fn from_flow_key_takes_the_tuple() {
        let key = FlowKey {
            dl_type: ethertype::IPV4,
            nw_src: 0x0a00_0001,
            nw_dst: 0x0a00_0002,
            nw_proto: ipproto::TCP,
            tp_src: 40000,
            tp_dst: 80,
            tcp_flags: tcp_flags::SYN,
            ..FlowKey::default()
        };
        let pkt = CtPacket::from_flow_key(&key).unwrap();
        assert_eq!(pkt.src, CtAddr::from_v4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            (pkt.sport, pkt.dport, pkt.tcp.flags),
            (40000, 80, tcp_flags::SYN)
        );
        let arp = FlowKey {
            dl_type: ethertype::ARP,
            ..key
        };
        assert!(CtPacket::from_flow_key(&arp).is_none());
        let frag = FlowKey {
            nw_frag: FRAG_LATER | 1,
            ..key
        };
        assert!(CtPacket::from_flow_key(&frag).is_none());
    }

    #[test]
    fn zero_ports_and_unknown_icmp_types_have_no_key() {
        let pkt = CtPacket {
            proto: ipproto::UDP,
            sport: 0,
            dport: 53,
            ..CtPacket::default()
        };
        assert_eq!(lookup_key(&pkt, 0), Err(CtInvalid::BadHeader));
        let router_adv = CtPacket {
            proto: ipproto::ICMP,
            icmp: IcmpHeader {
                icmp_type: 9,
                ..IcmpHeader::default()
            },
            ..CtPacket::default()
        };
        assert_eq!(lookup_key(&router_adv, 0), Err(CtInvalid::BadHeader));
    }
}
