//! Path-MTU discovery through a tunnel, better than Open vSwitch, whose userspace datapath
//! drops an encapsulated frame that would not fit the underlay port without a word. vecswitch
//! drops it too (counted as `tunnel-too-big`), and answers the inner sender as a router on
//! the path would: ICMP "fragmentation needed" (type 3 code 4) with the MTU the tunnel leaves
//! for an IPv4 packet with DF set, ICMPv6 "packet too big" for IPv6 (RFC 1191, RFC 8201).
//!
//! The answer comes from the inner destination (the sender's peer on its link: an L2 switch
//! has no address of its own there) to the sender, with the MACs swapped and the sender's
//! VLAN tag, and quotes as much of the dropped packet as RFC 1812 / RFC 4443 allow. The
//! sender's stack checks the quoted header against its sockets. No answer goes to an ICMP
//! error, a later fragment, a packet without DF, or a source that is not unicast.

use std::net::{Ipv4Addr, Ipv6Addr};

use pipeline::buffer::NO_OFFSET;
use pipeline::flowkey::{ethertype, ipproto, FRAG_LATER, VLAN_PRESENT};
use pipeline::wire::icmpv4::CODE_FRAG_NEEDED;
use pipeline::wire::{FrameBuilder, Icmpv4Repr, Icmpv6Repr, Ipv4Repr, Ipv6Repr};
use pipeline::PacketMeta;

/// Most bytes of an answer's IP packet: IPv4's 576 (RFC 1812 4.3.2.3), IPv6's 1280.
const MAX_V4_ANSWER: usize = 576;
const MAX_V6_ANSWER: usize = 1280;
/// IP plus ICMP header bytes of an answer.
const V4_HEADERS: usize = 20 + 8;
const V6_HEADERS: usize = 40 + 8;

/// The answer to `frame` (parsed: `meta`) that did not fit a tunnel leaving `inner_mtu`
/// bytes for its IP packet, or `None` when it gets none (see the module documentation).
pub fn too_big_reply(frame: &[u8], meta: &PacketMeta, inner_mtu: u16) -> Option<Vec<u8>> {
    let k = &meta.key;
    if meta.l3_ofs == NO_OFFSET || k.nw_frag & FRAG_LATER != 0 || k.dl_src[0] & 1 != 0 {
        return None;
    }
    let ip = frame.get(usize::from(meta.l3_ofs)..)?;
    // `inner_mtu` leaves room for a plain Ethernet header; the tunnel carries the inner frame
    // whole, so a VLAN tag takes its bytes from the IP packet's room.
    let l2_extra = usize::from(meta.l3_ofs).saturating_sub(pipeline::wire::ethernet::HEADER_LEN);
    let inner_mtu = inner_mtu.saturating_sub(u16::try_from(l2_extra).unwrap_or(u16::MAX));
    let mut out = FrameBuilder::ethernet(k.dl_dst, k.dl_src);
    if k.vlan_tci & VLAN_PRESENT != 0 {
        out = out.vlan(k.vlan_tpid, k.vlan_tci & !VLAN_PRESENT);
    }
    match k.dl_type {
        ethertype::IPV4 => {
            let dont_frag = ip.get(6).is_some_and(|b| b & 0x40 != 0);
            let src = Ipv4Addr::from_bits(k.nw_src);
            let icmp_error = k.nw_proto == ipproto::ICMP && !matches!(k.tp_src, 0 | 8 | 13..=18);
            if !dont_frag || icmp_error || !is_unicast_v4(src) {
                return None;
            }
            let quote = ip.get(..ip.len().min(MAX_V4_ANSWER - V4_HEADERS))?;
            out.ipv4(Ipv4Repr::new(Ipv4Addr::from_bits(k.nw_dst), src))
                .icmpv4(Icmpv4Repr::DstUnreachable {
                    code: CODE_FRAG_NEEDED,
                    next_hop_mtu: inner_mtu,
                })
                .build(quote)
                .ok()
        }
        ethertype::IPV6 => {
            let src = Ipv6Addr::from(k.ipv6_src);
            let icmp_error = k.nw_proto == ipproto::ICMPV6 && k.tp_src < 128;
            if icmp_error || src.is_multicast() || src.is_unspecified() {
                return None;
            }
            let quote = ip.get(..ip.len().min(MAX_V6_ANSWER - V6_HEADERS))?;
            out.ipv6(Ipv6Repr::new(Ipv6Addr::from(k.ipv6_dst), src))
                .icmpv6(Icmpv6Repr::PacketTooBig {
                    mtu: u32::from(inner_mtu),
                })
                .build(quote)
                .ok()
        }
        _ => None,
    }
}

fn is_unicast_v4(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::wire::TcpRepr;
    use pipeline::{parse_packet, PacketPool};

    fn parsed(frame: &[u8]) -> (Vec<u8>, PacketMeta) {
        let mut pool = PacketPool::new(4);
        let id = pool.alloc_with(frame).unwrap();
        let (d, m) = pool.data_and_meta_mut(id);
        parse_packet(d, m).unwrap();
        (d.to_vec(), *m)
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn tcp_v4(dont_frag: bool, len: usize) -> Vec<u8> {
        let ip = Ipv4Repr {
            dont_frag,
            ..Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        };
        FrameBuilder::ethernet(A, B)
            .ipv4(ip)
            .tcp(TcpRepr::new(40000, 80))
            .build(&vec![7; len])
            .unwrap()
    }

    #[test]
    fn a_df_ipv4_packet_gets_fragmentation_needed_from_its_peer() {
        let (f, m) = parsed(&tcp_v4(true, 1460));
        let r = too_big_reply(&f, &m, 1450).unwrap();
        let (rf, rm) = parsed(&r);
        // To the sender, from its peer, MACs swapped.
        assert_eq!((rm.key.dl_dst, rm.key.dl_src), (A, B));
        assert_eq!((rm.key.nw_src, rm.key.nw_dst), (0x0a00_0002, 0x0a00_0001));
        // Type 3 code 4, next-hop MTU 1450.
        assert_eq!((rm.key.tp_src, rm.key.tp_dst), (3, 4));
        let icmp = &rf[usize::from(rm.l4_ofs)..];
        assert_eq!(&icmp[6..8], &1450u16.to_be_bytes());
        // The quote starts with the dropped packet's IP header, 576 bytes in all at most.
        assert_eq!(&icmp[8..28], &f[14..34]);
        assert_eq!(rf.len() - 14, 576);
        assert_eq!(pipeline::checksum::checksum(icmp), 0);
    }

    #[test]
    fn a_tagged_sender_is_told_the_mtu_less_its_tag() {
        // 1450 bytes of IP fit a 1500-byte underlay behind VXLAN untagged, 1446 tagged.
        let ip = Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let frame = FrameBuilder::ethernet(A, B)
            .vlan(0x8100, 10)
            .ipv4(ip)
            .tcp(TcpRepr::new(40000, 80))
            .build(&[7; 1410])
            .unwrap();
        let (f, m) = parsed(&frame);
        let r = too_big_reply(&f, &m, 1450).unwrap();
        let (rf, rm) = parsed(&r);
        assert_eq!(rm.key.vlan_tci & 0x0fff, 10);
        let icmp = &rf[usize::from(rm.l4_ofs)..];
        assert_eq!(&icmp[6..8], &1446u16.to_be_bytes());
        assert_eq!(&icmp[8..28], &f[18..38]);
    }

    #[test]
    fn no_answer_without_df_to_errors_or_to_later_fragments() {
        let (f, m) = parsed(&tcp_v4(false, 1460));
        assert_eq!(too_big_reply(&f, &m, 1450), None);
        let (f, mut m) = parsed(&tcp_v4(true, 1460));
        m.key.nw_frag |= FRAG_LATER;
        assert_eq!(too_big_reply(&f, &m, 1450), None);
        let (f, mut m) = parsed(&tcp_v4(true, 1460));
        m.key.nw_proto = ipproto::ICMP;
        m.key.tp_src = 3;
        assert_eq!(too_big_reply(&f, &m, 1450), None);
        // An echo request is answered.
        m.key.tp_src = 8;
        assert!(too_big_reply(&f, &m, 1450).is_some());
    }

    #[test]
    fn an_ipv6_packet_gets_packet_too_big() {
        let ip = Ipv6Repr::new("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let frame = FrameBuilder::ethernet(A, B)
            .ipv6(ip)
            .udp(5000, 6000)
            .build(&[1; 1400])
            .unwrap();
        let (f, m) = parsed(&frame);
        let r = too_big_reply(&f, &m, 1430).unwrap();
        let (rf, rm) = parsed(&r);
        assert_eq!(rm.key.ipv6_dst, m.key.ipv6_src);
        assert_eq!((rm.key.tp_src, rm.key.tp_dst), (2, 0));
        let icmp = &rf[usize::from(rm.l4_ofs)..];
        assert_eq!(&icmp[4..8], &1430u32.to_be_bytes());
        assert_eq!(rf.len() - 14, 1280);
    }
}
