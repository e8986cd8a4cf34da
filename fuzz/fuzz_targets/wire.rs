//! The wire module's views, reprs and frame builder (`pipeline::wire`) over any bytes.
//!
//! The first byte picks what the rest is. With bit 7 clear the rest is bytes to read: a frame
//! walked from Ethernet through its tags to ARP / IPv4 / IPv6 and on to UDP / TCP / ICMP /
//! ICMPv6 (pseudo-headers from the IP header), or, by bits 1-4, one header read raw (an L4
//! one after 32 bytes of pseudo-header addresses). Bit 0 fills every checksum first, so
//! that arbitrary contents reach `Repr::parse`. For every view `new_checked` runs and, where
//! it accepts, every accessor and `Repr::parse`; every `Repr` that parses is emitted into a
//! buffer of its own `buffer_len` and must parse back equal, with the bytes it covers
//! unchanged (bits the `Repr` does not keep and checksums aside). Unchecked views get every
//! accessor and setter, on any length. With bit 7 set the rest sets up a `FrameBuilder`
//! (addresses, up to three tags, network and transport, their fields, a minimum length,
//! then the payload): `build` must succeed exactly for valid layer combinations with at most
//! two tags, agree with `emit_in_front`, read back through the views to the same fields and
//! payload, and `parse_packet` must accept it with the key those fields give.
#![no_main]

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use pipeline::buffer::NO_OFFSET;
use pipeline::flowkey::{ethertype, ipproto, FRAG_ANY, FRAG_LATER, VLAN_PRESENT};
use pipeline::parse::{parse_packet, ParseError};
use pipeline::wire::{
    arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, vlan, ArpPacket, ArpRepr, Error,
    EthernetFrame, EthernetRepr, FrameBuilder, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, Options, PseudoHeader, TcpPacket, TcpRepr,
    UdpPacket, UdpRepr, VlanRepr, VlanTag,
};
use pipeline::PacketMeta;

/// Emitters refuse buffers past this (length fields are 16 bits); inputs are far shorter.
const MAX_EMIT: usize = 65_535;
/// Tags followed when walking a frame (the views themselves set no limit).
const MAX_WALK_TAGS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    if op & 0x80 != 0 {
        build(rest);
        return;
    }
    let fill = op & 1 != 0;
    let mut body = rest.to_vec();
    unchecked_views(&mut body.clone());
    match (op >> 1) & 0x0f {
        1 => walk_vlan(&mut body, fill, 0),
        2 => walk_arp(&body),
        3 => walk_ipv4(&mut body, fill),
        4 => walk_ipv6(&mut body, fill),
        l4 @ 5..=8 => {
            let (pseudo, seg) = pseudo_from(rest, op & 0x20 != 0);
            let mut seg = seg.to_vec();
            match l4 {
                5 => walk_udp(&mut seg, &pseudo, fill),
                6 => walk_tcp(&mut seg, &pseudo, fill),
                7 => walk_icmpv4(&mut seg, fill),
                _ => {
                    let (src, dst) = v6_addrs(rest);
                    walk_icmpv6(&mut seg, src, dst, fill)
                }
            }
        }
        _ => walk_ethernet(&mut body, fill),
    }
});

/// A pseudo-header from the first 32 bytes (IPv6 addresses, or IPv4 from the first 8) and
/// the bytes after them.
fn pseudo_from(b: &[u8], v6: bool) -> (PseudoHeader, &[u8]) {
    let mut r = Reader::new(b);
    let addrs: [u8; 32] = r.array();
    let pseudo = if v6 {
        let (src, dst) = v6_addrs(&addrs);
        PseudoHeader::Ipv6 { src, dst }
    } else {
        PseudoHeader::Ipv4 {
            src: Ipv4Addr::from(take::<4>(&addrs, 0)),
            dst: Ipv4Addr::from(take::<4>(&addrs, 4)),
        }
    };
    (pseudo, r.rest())
}

fn v6_addrs(b: &[u8]) -> (Ipv6Addr, Ipv6Addr) {
    (
        Ipv6Addr::from(take::<16>(b, 0)),
        Ipv6Addr::from(take::<16>(b, 16)),
    )
}

/// `N` bytes of `b` at `at`, zeros past its end.
fn take<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, i) in out.iter_mut().zip(at..) {
        *o = b.get(i).copied().unwrap_or(0);
    }
    out
}

/// `a` and `b` (of equal length) differ only in the bits of `ignore` (byte index, mask).
fn same_except(a: &[u8], b: &[u8], ignore: &[(usize, u8)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: emitted length");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let mask = ignore
            .iter()
            .filter(|&&(at, _)| at == i)
            .fold(0xffu8, |m, &(_, bits)| m & !bits);
        assert_eq!(
            x & mask,
            y & mask,
            "{what}: byte {i} {x:#04x} became {y:#04x} after parse and emit"
        );
    }
}

/// `WIRE_DEBUG=1` prints what each input built and what the reprs round-tripped.
fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("WIRE_DEBUG").is_some())
}

// ---- reading: each header's view, repr and round trip ----

fn walk_ethernet(b: &mut [u8], fill: bool) {
    let Ok(f) = EthernetFrame::new_checked(&b[..]) else {
        assert!(b.len() < ethernet::HEADER_LEN);
        return;
    };
    black_box((f.dst(), f.src(), f.ethertype(), f.payload().len()));
    let r = EthernetRepr::parse(&f).expect("a checked Ethernet frame parses");
    assert_eq!(
        (r.src, r.dst, r.ethertype),
        (f.src(), f.dst(), f.ethertype())
    );
    let mut out = [0u8; ethernet::HEADER_LEN];
    r.emit(&mut out).expect("Ethernet emit");
    assert_eq!(out[..], b[..ethernet::HEADER_LEN], "Ethernet header bytes");
    let back = EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).expect("view")).unwrap();
    assert_eq!(back, r, "Ethernet round trip");
    if debug() {
        eprintln!("Ethernet: {r:?}");
    }
    after_l2(r.ethertype, &mut b[ethernet::HEADER_LEN..], fill, 0);
}

fn after_l2(ty: u16, payload: &mut [u8], fill: bool, tags: usize) {
    match ty {
        vlan::TPID_8021Q | vlan::TPID_8021AD => walk_vlan(payload, fill, tags),
        ethertype::ARP => walk_arp(payload),
        ethertype::IPV4 => walk_ipv4(payload, fill),
        ethertype::IPV6 => walk_ipv6(payload, fill),
        _ => {}
    }
}

fn walk_vlan(b: &mut [u8], fill: bool, tags: usize) {
    let Ok(t) = VlanTag::new_checked(&b[..]) else {
        assert!(b.len() < vlan::HEADER_LEN);
        return;
    };
    black_box((
        t.tci(),
        t.pcp(),
        t.dei(),
        t.vid(),
        t.ethertype(),
        t.payload().len(),
    ));
    let r = VlanRepr::parse(&t).expect("a checked tag parses");
    assert_eq!(
        (r.tci(), r.pcp, r.dei, r.vid),
        (t.tci(), t.pcp(), t.dei(), t.vid())
    );
    let mut out = [0u8; vlan::HEADER_LEN];
    r.emit(&mut out).expect("a parsed tag emits");
    assert_eq!(out[..], b[..vlan::HEADER_LEN], "VLAN tag bytes");
    let back = VlanRepr::parse(&VlanTag::new_checked(&out[..]).expect("view")).unwrap();
    assert_eq!(back, r, "VLAN round trip");
    if debug() {
        eprintln!("VLAN: {r:?}");
    }
    if tags + 1 < MAX_WALK_TAGS {
        after_l2(r.ethertype, &mut b[vlan::HEADER_LEN..], fill, tags + 1);
    }
}

fn walk_arp(b: &[u8]) {
    let Ok(p) = ArpPacket::new_checked(b) else {
        assert!(b.len() < arp::PACKET_LEN);
        return;
    };
    black_box((
        p.hardware_type(),
        p.protocol_type(),
        p.hardware_len(),
        p.protocol_len(),
        p.operation(),
        p.sender_mac(),
        p.sender_ip(),
        p.target_mac(),
        p.target_ip(),
    ));
    let Ok(r) = ArpRepr::parse(&p) else {
        return;
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut out).expect("a parsed ARP packet emits");
    // Only Ethernet/IPv4 parses, so every byte is kept.
    assert_eq!(out[..], b[..arp::PACKET_LEN], "ARP bytes");
    let back = ArpRepr::parse(&ArpPacket::new_checked(&out[..]).expect("view")).unwrap();
    assert_eq!(back, r, "ARP round trip");
    if debug() {
        eprintln!("ARP: {r:?}");
    }
}

fn walk_ipv4(b: &mut [u8], fill: bool) {
    let Ok(mut p) = Ipv4Packet::new_checked(&mut b[..]) else {
        return;
    };
    if fill {
        p.fill_checksum();
        assert!(
            p.verify_checksum(),
            "IPv4 checksum just filled does not verify"
        );
    }
    let p = Ipv4Packet::new_checked(&b[..]).expect("still checked");
    let (hl, total) = (p.header_len(), usize::from(p.total_len()));
    assert!(ipv4::HEADER_LEN <= hl && hl <= total && total <= b.len());
    assert_eq!(p.payload().len(), total - hl);
    assert_eq!(p.options().len(), hl - ipv4::HEADER_LEN);
    black_box((
        p.version(),
        p.tos(),
        p.ident(),
        p.dont_frag(),
        p.more_frags(),
        p.frag_offset(),
        p.ttl(),
        p.checksum(),
        p.src(),
        p.dst(),
        p.pseudo_header(),
    ));
    match Ipv4Repr::parse(&p) {
        Ok(r) => {
            assert!(fill || p.verify_checksum());
            assert_eq!(r.header_len(), hl, "IPv4 header length");
            assert_eq!(r.buffer_len(), total, "IPv4 buffer length");
            let mut out = b[..total].to_vec();
            r.emit(&mut out).expect("a parsed IPv4 header emits");
            // The reserved flag bit is not kept; the checksum is recomputed.
            same_except(
                &b[..total],
                &out,
                &[(6, 0x80), (10, 0xff), (11, 0xff)],
                "IPv4",
            );
            let q = Ipv4Packet::new_checked(&out[..]).expect("emitted IPv4 is checked");
            assert_eq!(Ipv4Repr::parse(&q), Ok(r), "IPv4 round trip");
            if debug() {
                eprintln!("IPv4: {r:?}");
            }
        }
        Err(e) => assert!(
            (e == Error::Malformed && p.version() != 4)
                || (e == Error::Checksum && !fill && !p.verify_checksum()),
            "IPv4 parse refused a checked packet: {e:?}"
        ),
    }
    let pseudo = p.pseudo_header();
    let protocol = p.protocol();
    let seg = &mut b[hl..total];
    match protocol {
        ipproto::UDP => walk_udp(seg, &pseudo, fill),
        ipproto::TCP => walk_tcp(seg, &pseudo, fill),
        ipproto::ICMP => walk_icmpv4(seg, fill),
        _ => {}
    }
}

fn walk_ipv6(b: &mut [u8], fill: bool) {
    let Ok(p) = Ipv6Packet::new_checked(&b[..]) else {
        return;
    };
    let end = ipv6::HEADER_LEN + usize::from(p.payload_len());
    assert!(end <= b.len());
    assert_eq!(p.payload().len(), end - ipv6::HEADER_LEN);
    black_box((
        p.version(),
        p.traffic_class(),
        p.flow_label(),
        p.next_header(),
        p.hop_limit(),
        p.src(),
        p.dst(),
        p.pseudo_header(),
    ));
    match Ipv6Repr::parse(&p) {
        Ok(r) => {
            assert_eq!(r.buffer_len(), end, "IPv6 buffer length");
            let mut out = b[..end].to_vec();
            r.emit(&mut out).expect("a parsed IPv6 header emits");
            assert_eq!(out[..], b[..end], "IPv6 bytes");
            let q = Ipv6Packet::new_checked(&out[..]).expect("emitted IPv6 is checked");
            assert_eq!(Ipv6Repr::parse(&q), Ok(r), "IPv6 round trip");
            if debug() {
                eprintln!("IPv6: {r:?}");
            }
        }
        Err(e) => assert!(
            e == Error::Malformed && p.version() != 6,
            "IPv6 parse refused a checked packet: {e:?}"
        ),
    }
    let (src, dst, next) = (p.src(), p.dst(), p.next_header());
    let pseudo = p.pseudo_header();
    let seg = &mut b[ipv6::HEADER_LEN..end];
    match next {
        ipproto::UDP => walk_udp(seg, &pseudo, fill),
        ipproto::TCP => walk_tcp(seg, &pseudo, fill),
        ipproto::ICMPV6 => walk_icmpv6(seg, src, dst, fill),
        _ => {}
    }
}

fn walk_udp(b: &mut [u8], pseudo: &PseudoHeader, fill: bool) {
    let Ok(mut p) = UdpPacket::new_checked(&mut b[..]) else {
        return;
    };
    if fill {
        p.fill_checksum(pseudo);
        assert_ne!(p.checksum(), 0, "a filled UDP checksum is never 0 (none)");
        assert!(
            p.verify_checksum(pseudo),
            "UDP checksum just filled does not verify"
        );
    }
    let p = UdpPacket::new_checked(&b[..]).expect("still checked");
    let len = usize::from(p.length());
    assert!(udp::HEADER_LEN <= len && len <= b.len());
    assert_eq!(p.payload().len(), len - udp::HEADER_LEN);
    black_box((p.src_port(), p.dst_port(), p.checksum()));
    let Ok(r) = UdpRepr::parse(&p, pseudo) else {
        assert!(
            !fill && !p.verify_checksum(pseudo),
            "UDP parse refused a good datagram"
        );
        return;
    };
    assert_eq!(r.buffer_len(len - udp::HEADER_LEN), len);
    let mut out = b[..len].to_vec();
    r.emit(&mut out, pseudo).expect("a parsed UDP header emits");
    // A checksum that verified is the one emit computes, unless it was 0 ("none").
    let ignore: &[(usize, u8)] = if p.checksum() == 0 {
        &[(6, 0xff), (7, 0xff)]
    } else {
        &[]
    };
    same_except(&b[..len], &out, ignore, "UDP");
    let q = UdpPacket::new_checked(&out[..]).expect("emitted UDP is checked");
    assert_ne!(q.checksum(), 0, "emitted UDP checksum");
    assert_eq!(UdpRepr::parse(&q, pseudo), Ok(r), "UDP round trip");
    if debug() {
        eprintln!("UDP: {r:?}");
    }
    let mut bare = out.clone();
    r.emit_without_checksum(&mut bare)
        .expect("UDP emit without checksum");
    same_except(&out, &bare, &[(6, 0xff), (7, 0xff)], "UDP without checksum");
    let q = UdpPacket::new_checked(&bare[..]).expect("emitted UDP is checked");
    assert_eq!((q.checksum(), UdpRepr::parse(&q, pseudo)), (0, Ok(r)));
}

fn walk_tcp(b: &mut [u8], pseudo: &PseudoHeader, fill: bool) {
    let Ok(mut p) = TcpPacket::new_checked(&mut b[..]) else {
        return;
    };
    if fill {
        p.fill_checksum(pseudo);
        assert!(
            p.verify_checksum(pseudo),
            "TCP checksum just filled does not verify"
        );
    }
    let p = TcpPacket::new_checked(&b[..]).expect("still checked");
    let hl = p.header_len();
    assert!(tcp::HEADER_LEN <= hl && hl <= b.len());
    assert_eq!(p.options().len(), hl - tcp::HEADER_LEN);
    assert_eq!(p.payload().len(), b.len() - hl);
    black_box((
        p.src_port(),
        p.dst_port(),
        p.seq_number(),
        p.ack_number(),
        p.flags(),
        p.window(),
        p.checksum(),
        p.urgent(),
    ));
    let Ok(r) = TcpRepr::parse(&p, pseudo) else {
        assert!(
            !fill && !p.verify_checksum(pseudo),
            "TCP parse refused a good segment"
        );
        return;
    };
    assert_eq!(r.header_len(), hl, "TCP header length");
    if b.len() > MAX_EMIT {
        return;
    }
    let mut out = b.to_vec();
    assert_eq!(r.buffer_len(b.len() - hl), b.len());
    r.emit(&mut out, pseudo).expect("a parsed TCP header emits");
    // The three reserved bits are not kept; the checksum is recomputed.
    same_except(b, &out, &[(12, 0x0e), (16, 0xff), (17, 0xff)], "TCP");
    let q = TcpPacket::new_checked(&out[..]).expect("emitted TCP is checked");
    assert_eq!(TcpRepr::parse(&q, pseudo), Ok(r), "TCP round trip");
    if debug() {
        eprintln!("TCP: {r:?}");
    }
}

fn walk_icmpv4(b: &mut [u8], fill: bool) {
    black_box(icmpv4::quote(b));
    let Ok(mut p) = Icmpv4Packet::new_checked(&mut b[..]) else {
        return;
    };
    if fill {
        p.fill_checksum();
        assert!(
            p.verify_checksum(),
            "ICMP checksum just filled does not verify"
        );
    }
    let p = Icmpv4Packet::new_checked(&b[..]).expect("still checked");
    assert_eq!(p.payload().len(), b.len() - icmpv4::HEADER_LEN);
    black_box((
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest(),
        p.echo_ident(),
        p.echo_seq(),
    ));
    let Ok(r) = Icmpv4Repr::parse(&p) else {
        assert!(
            !fill && !p.verify_checksum(),
            "ICMP parse refused a good message"
        );
        return;
    };
    if b.len() > MAX_EMIT {
        return;
    }
    let mut out = b.to_vec();
    assert_eq!(r.buffer_len(b.len() - icmpv4::HEADER_LEN), b.len());
    r.emit(&mut out).expect("a parsed ICMP header emits");
    // Type, code and payload stay; what the repr keeps of the rest word depends on it.
    same_except(
        b,
        &out,
        &[
            (2, 0xff),
            (3, 0xff),
            (4, 0xff),
            (5, 0xff),
            (6, 0xff),
            (7, 0xff),
        ],
        "ICMP",
    );
    let q = Icmpv4Packet::new_checked(&out[..]).expect("emitted ICMP is checked");
    assert_eq!(Icmpv4Repr::parse(&q), Ok(r), "ICMP round trip");
    if debug() {
        eprintln!("ICMP: {r:?}");
    }
}

fn walk_icmpv6(b: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, fill: bool) {
    let Ok(mut p) = Icmpv6Packet::new_checked(&mut b[..]) else {
        return;
    };
    if fill {
        p.fill_checksum(src, dst);
        assert!(
            p.verify_checksum(src, dst),
            "ICMPv6 checksum just filled does not verify"
        );
    }
    let p = Icmpv6Packet::new_checked(&b[..]).expect("still checked");
    black_box((
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest(),
        p.echo_ident(),
        p.echo_seq(),
        p.nd_target(),
        p.payload().len(),
        p.nd_options().len(),
    ));
    let r = match Icmpv6Repr::parse(&p, src, dst) {
        Ok(r) => r,
        Err(e) => {
            let nd = matches!(
                p.msg_type(),
                icmpv6::msg_type::NEIGHBOR_SOLICIT | icmpv6::msg_type::NEIGHBOR_ADVERT
            ) && p.code() == 0;
            assert!(
                (e == Error::Checksum && !fill && !p.verify_checksum(src, dst))
                    || (e == Error::Malformed && nd),
                "ICMPv6 parse refused a checked message: {e:?}"
            );
            return;
        }
    };
    // An ND message is re-emitted in front of the options it came with (a link-layer
    // address option it read goes first, where it is found again); any other in front of
    // its payload.
    let nd = matches!(
        r,
        Icmpv6Repr::NeighborSolicit { .. } | Icmpv6Repr::NeighborAdvert { .. }
    );
    let tail = if nd { p.nd_options() } else { p.payload() };
    let mut out = vec![0u8; r.header_len()];
    out.extend_from_slice(tail);
    if out.len() > MAX_EMIT {
        return;
    }
    assert_eq!(r.buffer_len(tail.len()), out.len());
    r.emit(&mut out, src, dst)
        .expect("a parsed ICMPv6 header emits");
    assert_eq!(out[..2], b[..2], "ICMPv6 type and code");
    if nd {
        assert_eq!(out[8..24], b[8..24], "ND target");
    }
    assert_eq!(out[r.header_len()..], tail[..], "ICMPv6 payload");
    let q = Icmpv6Packet::new_checked(&out[..]).expect("emitted ICMPv6 is checked");
    assert_eq!(Icmpv6Repr::parse(&q, src, dst), Ok(r), "ICMPv6 round trip");
    if debug() {
        eprintln!("ICMPv6: {r:?}");
    }
}

/// Every accessor and setter of every view, unchecked, on the bytes as they are: reads past
/// the end give 0 and writes past it do nothing, whatever the length.
fn unchecked_views(b: &mut [u8]) {
    let pseudo = PseudoHeader::Ipv4 {
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: Ipv4Addr::new(10, 0, 0, 2),
    };
    let (s6, d6) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    {
        let mut f = EthernetFrame::new_unchecked(&mut *b);
        black_box((f.dst(), f.src(), f.ethertype(), f.payload().len()));
        let _ = EthernetRepr::parse(&f);
        f.set_dst([1; 6]);
        f.set_src([2; 6]);
        f.set_ethertype(0x1234);
        black_box(f.payload_mut().len());
    }
    {
        let mut t = VlanTag::new_unchecked(&mut *b);
        black_box((
            t.tci(),
            t.pcp(),
            t.dei(),
            t.vid(),
            t.ethertype(),
            t.payload().len(),
        ));
        let _ = VlanRepr::parse(&t);
        t.set_tci(0xffff);
        t.set_ethertype(0x0800);
        black_box(t.payload_mut().len());
    }
    {
        let mut p = ArpPacket::new_unchecked(&mut *b);
        black_box((
            p.operation(),
            p.sender_mac(),
            p.sender_ip(),
            p.target_mac(),
            p.target_ip(),
        ));
        let _ = ArpRepr::parse(&p);
        p.set_ethernet_ipv4();
        p.set_operation(1);
        p.set_sender_mac([3; 6]);
        p.set_sender_ip(Ipv4Addr::BROADCAST);
        p.set_target_mac([4; 6]);
        p.set_target_ip(Ipv4Addr::LOCALHOST);
    }
    {
        let mut p = Ipv4Packet::new_unchecked(&mut *b);
        black_box((
            p.version(),
            p.header_len(),
            p.total_len(),
            p.options().len(),
            p.payload().len(),
            p.verify_checksum(),
            p.frag_offset(),
        ));
        let _ = Ipv4Repr::parse(&p);
        p.set_flags_and_frag_offset(true, true, 0x1fff);
        p.set_ttl(1);
        p.set_protocol(17);
        p.set_src(Ipv4Addr::LOCALHOST);
        p.set_dst(Ipv4Addr::BROADCAST);
        black_box((p.options_mut().len(), p.payload_mut().len()));
        p.fill_checksum();
        p.set_version_and_header_len(60);
        p.set_total_len(0xffff);
        black_box((p.options_mut().len(), p.payload_mut().len()));
    }
    {
        let mut p = Ipv6Packet::new_unchecked(&mut *b);
        black_box((
            p.version(),
            p.payload_len(),
            p.payload().len(),
            p.src(),
            p.dst(),
        ));
        let _ = Ipv6Repr::parse(&p);
        p.set_version_tc_flow(0xff, u32::MAX);
        p.set_next_header(58);
        p.set_hop_limit(0);
        p.set_src(s6);
        p.set_dst(d6);
        p.set_payload_len(0xffff);
        black_box(p.payload_mut().len());
    }
    {
        let mut p = UdpPacket::new_unchecked(&mut *b);
        black_box((p.length(), p.payload().len(), p.verify_checksum(&pseudo)));
        let _ = UdpRepr::parse(&p, &pseudo);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.fill_checksum(&pseudo);
        p.set_length(0xffff);
        black_box(p.payload_mut().len());
        p.fill_checksum(&pseudo);
    }
    {
        let mut p = TcpPacket::new_unchecked(&mut *b);
        black_box((
            p.header_len(),
            p.options().len(),
            p.payload().len(),
            p.flags(),
        ));
        let _ = TcpRepr::parse(&p, &pseudo);
        p.set_seq_number(1);
        p.set_ack_number(2);
        p.set_window(3);
        p.set_urgent(4);
        p.set_header_len_and_flags(60, 0xffff);
        black_box((p.options_mut().len(), p.payload_mut().len()));
        p.fill_checksum(&pseudo);
    }
    {
        let mut p = Icmpv4Packet::new_unchecked(&mut *b);
        black_box((
            p.msg_type(),
            p.rest(),
            p.payload().len(),
            p.verify_checksum(),
        ));
        let _ = Icmpv4Repr::parse(&p);
        p.set_msg_type(3);
        p.set_code(4);
        p.set_rest(0x1234);
        black_box(p.payload_mut().len());
        p.fill_checksum();
    }
    {
        let mut p = Icmpv6Packet::new_unchecked(&mut *b);
        black_box((p.nd_target(), p.nd_options().len(), p.payload().len()));
        let _ = Icmpv6Repr::parse(&p, s6, d6);
        p.set_msg_type(135);
        p.set_code(0);
        p.set_rest(0);
        p.set_nd_target(s6);
        black_box(p.payload_mut().len());
        p.fill_checksum(s6, d6);
        let _ = Icmpv6Repr::parse(&p, s6, d6);
    }
    // quote() reads a header length from the first byte, whatever is there.
    let q = icmpv4::quote(b);
    let hl = usize::from(b.first().copied().unwrap_or(0) & 0x0f) * 4;
    assert_eq!(q.len(), (hl + 8).min(b.len()), "quote length");
}

// ---- building: FrameBuilder from input values ----

/// Reads fields in order; past the end of the input every field is 0.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let out = take::<N>(self.b, 0);
        self.b = self.b.get(N..).unwrap_or(&[]);
        out
    }

    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn rest(self) -> &'a [u8] {
        self.b
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Net {
    Raw(u16),
    Arp(ArpRepr),
    V4(Ipv4Repr),
    V6(Ipv6Repr),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum L4 {
    None,
    Udp(UdpRepr, bool),
    Tcp(TcpRepr),
    Icmpv4(Icmpv4Repr),
    Icmpv6(Icmpv6Repr),
}

/// `bytes` (at most 40) padded with zeros to whole words, as an emitted header carries them.
fn padded(bytes: &[u8]) -> Options {
    let mut b = bytes.to_vec();
    b.resize(bytes.len().div_ceil(4) * 4, 0);
    Options::new(&b).expect("40 bytes at most")
}

/// An ICMP repr that parses back to itself: echo codes 0, an MTU only with "fragmentation
/// needed", and `Other` only for types no variant takes.
fn icmpv4_repr(variant: u8, code: u8, word: u32) -> Icmpv4Repr {
    use icmpv4::msg_type as t;
    let (hi, lo) = ((word >> 16) as u16, word as u16);
    match variant % 6 {
        0 => Icmpv4Repr::EchoRequest { ident: hi, seq: lo },
        1 => Icmpv4Repr::EchoReply { ident: hi, seq: lo },
        2 => Icmpv4Repr::DstUnreachable {
            code,
            next_hop_mtu: if code == icmpv4::CODE_FRAG_NEEDED {
                lo
            } else {
                0
            },
        },
        3 => Icmpv4Repr::TimeExceeded { code },
        4 => Icmpv4Repr::ParamProblem {
            code,
            pointer: (word >> 24) as u8,
        },
        _ => {
            let taken = matches!(
                hi as u8,
                t::DST_UNREACHABLE | t::TIME_EXCEEDED | t::PARAM_PROBLEM
            ) || (matches!(hi as u8, t::ECHO_REQUEST | t::ECHO_REPLY) && code == 0);
            Icmpv4Repr::Other {
                msg_type: if taken { 13 } else { hi as u8 },
                code,
                rest: word,
            }
        }
    }
}

/// The same for ICMPv6. `Other` avoids the types (and codes) the other variants own; types
/// 135 and 136 with a non-zero code are not neighbour discovery and stay `Other`.
fn icmpv6_repr(
    variant: u8,
    code: u8,
    word: u32,
    target: Ipv6Addr,
    mac: Option<[u8; 6]>,
) -> Icmpv6Repr {
    use icmpv6::msg_type as t;
    let (hi, lo) = ((word >> 16) as u16, word as u16);
    match variant % 9 {
        0 => Icmpv6Repr::EchoRequest { ident: hi, seq: lo },
        1 => Icmpv6Repr::EchoReply { ident: hi, seq: lo },
        2 => Icmpv6Repr::DstUnreachable { code },
        3 => Icmpv6Repr::PacketTooBig { mtu: word },
        4 => Icmpv6Repr::TimeExceeded { code },
        5 => Icmpv6Repr::ParamProblem {
            code,
            pointer: word,
        },
        6 => Icmpv6Repr::NeighborSolicit {
            target,
            source_mac: mac,
        },
        7 => Icmpv6Repr::NeighborAdvert {
            flags: (word >> 24) as u8,
            target,
            target_mac: mac,
        },
        _ => {
            let ty = hi as u8;
            let taken = matches!(ty, t::DST_UNREACHABLE | t::TIME_EXCEEDED | t::PARAM_PROBLEM)
                || (matches!(ty, t::NEIGHBOR_SOLICIT | t::NEIGHBOR_ADVERT) && code == 0)
                || (matches!(ty, t::PACKET_TOO_BIG | t::ECHO_REQUEST | t::ECHO_REPLY) && code == 0);
            Icmpv6Repr::Other {
                msg_type: if taken { 133 } else { ty },
                code,
                rest: word,
            }
        }
    }
}

fn build(data: &[u8]) {
    let mut r = Reader::new(data);
    let src: [u8; 6] = r.array();
    let dst: [u8; 6] = r.array();
    // Bits 0-1 tags (0..=3), 2-4 their TPIDs (802.1ad if set), 5-6 the network.
    let shape = r.u8();
    // Bits 0-2 the transport, 3 UDP without checksum, 4 an ND link-layer address option.
    let kinds = r.u8();
    let tcis = [r.u16(), r.u16(), r.u16()];
    let raw_type = r.u16();
    let arp_repr = ArpRepr {
        operation: r.u16(),
        sender_mac: r.array(),
        sender_ip: Ipv4Addr::from(r.array::<4>()),
        target_mac: r.array(),
        target_ip: Ipv4Addr::from(r.array::<4>()),
    };
    let v4_addrs = (
        Ipv4Addr::from(r.array::<4>()),
        Ipv4Addr::from(r.array::<4>()),
    );
    let (protocol, ttl, tos, ident, frag) = (r.u8(), r.u8(), r.u8(), r.u16(), r.u16());
    let ip_opts_len = usize::from(r.u8()) % (Options::MAX_LEN + 1);
    let ip_opts: [u8; Options::MAX_LEN] = r.array();
    let v6_addrs = (
        Ipv6Addr::from(r.array::<16>()),
        Ipv6Addr::from(r.array::<16>()),
    );
    let (next_header, hop_limit, traffic_class, flow) = (r.u8(), r.u8(), r.u8(), r.u32());
    let ports = (r.u16(), r.u16());
    let (seq, ack, tcp_flags, window, urgent) = (r.u32(), r.u32(), r.u16(), r.u16(), r.u16());
    let tcp_opts_len = usize::from(r.u8()) % (Options::MAX_LEN + 1);
    let tcp_opts: [u8; Options::MAX_LEN] = r.array();
    let (icmp_variant, icmp_code, icmp_word) = (r.u8(), r.u8(), r.u32());
    let nd_target = Ipv6Addr::from(r.array::<16>());
    let nd_mac: [u8; 6] = r.array();
    let min_len = usize::from(r.u8());
    let mut payload = r.rest();
    payload = &payload[..payload.len().min(1500)];

    let tag_count = usize::from(shape & 3);
    let tpids: [u16; 3] = std::array::from_fn(|i| {
        if shape >> (2 + i) & 1 != 0 {
            vlan::TPID_8021AD
        } else {
            vlan::TPID_8021Q
        }
    });
    // A raw ethertype the parser would read further is moved off by one.
    let raw_type = match raw_type {
        ethertype::VLAN | ethertype::QINQ | ethertype::IPV4 | ethertype::IPV6 | ethertype::ARP => {
            raw_type ^ 1
        }
        t => t,
    };
    let net = match (shape >> 5) & 3 {
        0 => Net::Raw(raw_type),
        1 => Net::Arp(arp_repr),
        2 => Net::V4(Ipv4Repr {
            protocol,
            ttl,
            tos,
            ident,
            dont_frag: frag & 0x8000 != 0,
            more_frags: frag & 0x4000 != 0,
            frag_offset: frag & 0x1fff,
            options: Options::new(&ip_opts[..ip_opts_len]).expect("40 bytes at most"),
            ..Ipv4Repr::new(v4_addrs.0, v4_addrs.1)
        }),
        _ => Net::V6(Ipv6Repr {
            next_header,
            hop_limit,
            traffic_class,
            flow_label: flow & 0x000f_ffff,
            ..Ipv6Repr::new(v6_addrs.0, v6_addrs.1)
        }),
    };
    let mac = (kinds & 0x10 != 0).then_some(nd_mac);
    let transport = match kinds & 7 {
        1 => L4::Udp(
            UdpRepr {
                src_port: ports.0,
                dst_port: ports.1,
            },
            kinds & 8 == 0,
        ),
        2 => L4::Tcp(TcpRepr {
            seq_number: seq,
            ack_number: ack,
            flags: tcp_flags & tcp::flags::ALL,
            window,
            urgent,
            options: Options::new(&tcp_opts[..tcp_opts_len]).expect("40 bytes at most"),
            ..TcpRepr::new(ports.0, ports.1)
        }),
        3 => L4::Icmpv4(icmpv4_repr(icmp_variant, icmp_code, icmp_word)),
        4 => L4::Icmpv6(icmpv6_repr(
            icmp_variant,
            icmp_code,
            icmp_word,
            nd_target,
            mac,
        )),
        // The ICMP that fits the network, so that fitting ICMP is not left to one bit.
        5 => match net {
            Net::V4(_) => L4::Icmpv4(icmpv4_repr(icmp_variant, icmp_code, icmp_word)),
            _ => L4::Icmpv6(icmpv6_repr(
                icmp_variant,
                icmp_code,
                icmp_word,
                nd_target,
                mac,
            )),
        },
        _ => L4::None,
    };
    // ND options are checked by both readers: ND carries no payload here.
    if let L4::Icmpv6(Icmpv6Repr::NeighborSolicit { .. } | Icmpv6Repr::NeighborAdvert { .. }) =
        transport
    {
        payload = &[];
    }

    let mut b = FrameBuilder::ethernet(src, dst);
    for (&tpid, &tci) in tpids.iter().zip(&tcis).take(tag_count) {
        b = b.vlan(tpid, tci);
    }
    b = match net {
        Net::Raw(t) => b.ethertype(t),
        Net::Arp(a) => b.arp(a),
        Net::V4(ip) => b.ipv4(ip),
        Net::V6(ip) => b.ipv6(ip),
    };
    b = match transport {
        L4::None => b,
        L4::Udp(u, true) => b.udp(u.src_port, u.dst_port),
        L4::Udp(u, false) => b.udp_without_checksum(u.src_port, u.dst_port),
        L4::Tcp(t) => b.tcp(t),
        L4::Icmpv4(i) => b.icmpv4(i),
        L4::Icmpv6(i) => b.icmpv6(i),
    };
    b = b.min_len(min_len);

    let layers_fit = match (net, transport) {
        (Net::Raw(_) | Net::Arp(_), L4::None) => true,
        (Net::Raw(_) | Net::Arp(_), _) => false,
        (Net::V4(_), L4::Icmpv6(_)) | (Net::V6(_), L4::Icmpv4(_)) => false,
        _ => true,
    };
    let built = b.build(payload);
    let mut in_front = vec![0u8; b.header_len()];
    in_front.extend_from_slice(payload);
    let emitted = b.emit_in_front(&mut in_front);
    if tag_count > 2 || !layers_fit {
        assert_eq!(built, Err(Error::Unsupported), "{b:?}");
        assert_eq!(emitted, Err(Error::Unsupported), "{b:?}");
        return;
    }
    let frame = match built {
        Ok(f) => f,
        Err(e) => panic!("build refused {b:?}: {e:?}"),
    };
    emitted.expect("emit_in_front refused what build took");
    let unpadded = b.header_len() + payload.len();
    assert_eq!(frame.len(), unpadded.max(min_len), "frame length");
    assert_eq!(frame.len(), b.frame_len(payload.len()));
    assert_eq!(
        frame[..unpadded],
        in_front[..],
        "build and emit_in_front differ"
    );
    assert!(
        frame[unpadded..].iter().all(|&x| x == 0),
        "padding is not zeros"
    );

    if debug() {
        eprintln!("built {} bytes: {net:?} {transport:?}", frame.len());
    }
    read_back(
        &frame[..unpadded],
        &frame,
        src,
        dst,
        &tpids[..tag_count],
        &tcis,
        net,
        transport,
        payload,
    );
    parse_back(&frame, src, dst, &tpids[..tag_count], &tcis, net, transport);
}

/// The built frame (`frame`, `padded` with its padding) through the views: each header
/// parses to what the builder was given, with what it fills in, and the payload is intact.
#[allow(clippy::too_many_arguments)]
fn read_back(
    frame: &[u8],
    padded_frame: &[u8],
    src: [u8; 6],
    dst: [u8; 6],
    tpids: &[u16],
    tcis: &[u16; 3],
    net: Net,
    transport: L4,
    payload: &[u8],
) {
    let eth = EthernetRepr::parse(&EthernetFrame::new_checked(frame).expect("Ethernet view"))
        .expect("Ethernet");
    assert_eq!((eth.src, eth.dst), (src, dst));
    let mut ty = eth.ethertype;
    let mut at = ethernet::HEADER_LEN;
    for (&tpid, &tci) in tpids.iter().zip(tcis) {
        assert_eq!(ty, tpid, "TPID");
        let tag =
            VlanRepr::parse(&VlanTag::new_checked(&frame[at..]).expect("tag view")).expect("tag");
        assert_eq!(tag.tci(), tci, "TCI");
        ty = tag.ethertype;
        at += vlan::HEADER_LEN;
    }
    let l3 = &frame[at..];
    let th = match transport {
        L4::None => 0,
        L4::Udp(u, _) => u.header_len(),
        L4::Tcp(t) => t.header_len(),
        L4::Icmpv4(i) => i.header_len(),
        L4::Icmpv6(i) => i.header_len(),
    };
    let protocol = l4_protocol(transport);
    match net {
        Net::Raw(t) => {
            assert_eq!(ty, t, "ethertype");
            assert_eq!(l3, payload);
        }
        Net::Arp(a) => {
            assert_eq!(ty, ethertype::ARP);
            let p = ArpPacket::new_checked(l3).expect("ARP view");
            assert_eq!(ArpRepr::parse(&p), Ok(a), "ARP read back");
            assert_eq!(&l3[arp::PACKET_LEN..], payload);
        }
        Net::V4(ip) => {
            assert_eq!(ty, ethertype::IPV4);
            // The view takes the padding after the packet; the total length leaves it out.
            let p = Ipv4Packet::new_checked(&padded_frame[at..]).expect("IPv4 view");
            let want = Ipv4Repr {
                protocol: protocol.unwrap_or(ip.protocol),
                payload_len: th + payload.len(),
                options: padded(ip.options.as_bytes()),
                ..ip
            };
            assert_eq!(Ipv4Repr::parse(&p), Ok(want), "IPv4 read back");
            assert_eq!(p.payload(), &l3[want.header_len()..]);
            read_back_l4(p.payload(), &ip.pseudo_header(), None, transport, payload);
        }
        Net::V6(ip) => {
            assert_eq!(ty, ethertype::IPV6);
            let p = Ipv6Packet::new_checked(&padded_frame[at..]).expect("IPv6 view");
            let want = Ipv6Repr {
                next_header: protocol.unwrap_or(ip.next_header),
                payload_len: th + payload.len(),
                ..ip
            };
            assert_eq!(Ipv6Repr::parse(&p), Ok(want), "IPv6 read back");
            assert_eq!(p.payload(), &l3[ipv6::HEADER_LEN..]);
            let addrs = Some((ip.src, ip.dst));
            read_back_l4(p.payload(), &ip.pseudo_header(), addrs, transport, payload);
        }
    }
}

/// The IP protocol number the builder fills in for `transport`.
fn l4_protocol(transport: L4) -> Option<u8> {
    match transport {
        L4::None => None,
        L4::Udp(..) => Some(ipproto::UDP),
        L4::Tcp(_) => Some(ipproto::TCP),
        L4::Icmpv4(_) => Some(ipproto::ICMP),
        L4::Icmpv6(_) => Some(ipproto::ICMPV6),
    }
}

fn read_back_l4(
    seg: &[u8],
    pseudo: &PseudoHeader,
    v6: Option<(Ipv6Addr, Ipv6Addr)>,
    transport: L4,
    payload: &[u8],
) {
    match transport {
        L4::None => assert_eq!(seg, payload),
        L4::Udp(u, checksum) => {
            let p = UdpPacket::new_checked(seg).expect("UDP view");
            assert_eq!(usize::from(p.length()), seg.len(), "UDP length");
            assert_eq!(p.checksum() != 0, checksum, "UDP checksum present");
            assert_eq!(UdpRepr::parse(&p, pseudo), Ok(u), "UDP read back");
            assert_eq!(p.payload(), payload);
        }
        L4::Tcp(t) => {
            let p = TcpPacket::new_checked(seg).expect("TCP view");
            let want = TcpRepr {
                options: padded(t.options.as_bytes()),
                ..t
            };
            assert_eq!(TcpRepr::parse(&p, pseudo), Ok(want), "TCP read back");
            assert_eq!(p.payload(), payload);
        }
        L4::Icmpv4(i) => {
            let p = Icmpv4Packet::new_checked(seg).expect("ICMP view");
            assert_eq!(Icmpv4Repr::parse(&p), Ok(i), "ICMP read back");
            assert_eq!(p.payload(), payload);
        }
        L4::Icmpv6(i) => {
            let (src, dst) = v6.expect("ICMPv6 is built over IPv6 only");
            let p = Icmpv6Packet::new_checked(seg).expect("ICMPv6 view");
            assert_eq!(Icmpv6Repr::parse(&p, src, dst), Ok(i), "ICMPv6 read back");
            assert_eq!(&seg[i.header_len()..], payload);
        }
    }
}

/// The built frame through `parse_packet`: accepted, with the key its fields give. A
/// protocol the parser reads further, with no transport header built for it, may fail
/// there (the payload is arbitrary).
fn parse_back(
    frame: &[u8],
    src: [u8; 6],
    dst: [u8; 6],
    tpids: &[u16],
    tcis: &[u16; 3],
    net: Net,
    transport: L4,
) {
    let mut meta = PacketMeta::default();
    let res = parse_packet(frame, &mut meta);
    if debug() {
        eprintln!("parse_packet: {res:?}");
    }
    let k = &meta.key;
    assert_eq!((k.dl_dst, k.dl_src), (dst, src), "MACs");
    let tagged = |i: usize| tcis[i] | VLAN_PRESENT;
    let (tpid, tci, tci2) = match tpids.len() {
        0 => (0, 0, 0),
        1 => (tpids[0], tagged(0), 0),
        _ => (tpids[0], tagged(0), tagged(1)),
    };
    assert_eq!(
        (k.vlan_tpid, k.vlan_tci, k.vlan2_tci),
        (tpid, tci, tci2),
        "VLANs"
    );
    let l3 = (ethernet::HEADER_LEN + tpids.len() * vlan::HEADER_LEN) as u16;
    assert_eq!(meta.l3_ofs, l3, "l3_ofs");

    // What the parser reads past the IP header when no transport header was built for it.
    let reads_further = |v6: bool, proto: u8| match proto {
        ipproto::TCP | ipproto::UDP | ipproto::SCTP => true,
        ipproto::ICMP => !v6,
        ipproto::ICMPV6 | ipproto::HOPOPTS | ipproto::ROUTING | ipproto::FRAGMENT => v6,
        ipproto::DSTOPTS | 51 => v6,
        _ => false,
    };
    let (mut want_tp, mut want_flags) = ((0u16, 0u16), 0u16);
    let (mut want_sha, mut want_tha, mut want_target) = ([0u8; 6], [0u8; 6], [0u8; 16]);
    match transport {
        L4::None => {}
        L4::Udp(u, _) => want_tp = (u.src_port, u.dst_port),
        L4::Tcp(t) => {
            want_tp = (t.src_port, t.dst_port);
            want_flags = t.flags;
        }
        L4::Icmpv4(i) => {
            let mut h = [0u8; 8];
            i.emit(&mut h).expect("ICMP header");
            want_tp = (u16::from(h[0]), u16::from(h[1]));
        }
        L4::Icmpv6(i) => {
            let mut h = vec![0u8; i.header_len()];
            i.emit(&mut h, Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED)
                .expect("ICMPv6 header");
            want_tp = (u16::from(h[0]), u16::from(h[1]));
            match i {
                Icmpv6Repr::NeighborSolicit { target, source_mac } => {
                    want_target = target.octets();
                    want_sha = source_mac.unwrap_or_default();
                }
                Icmpv6Repr::NeighborAdvert {
                    target, target_mac, ..
                } => {
                    want_target = target.octets();
                    want_tha = target_mac.unwrap_or_default();
                }
                _ => {}
            }
        }
    }

    match net {
        Net::Raw(t) => {
            assert_eq!(res, Ok(()), "raw ethertype {t:#06x}");
            let want = if t < 0x600 { ethertype::NONE } else { t };
            assert_eq!(k.dl_type, want, "dl_type");
            assert_eq!(meta.l4_ofs, NO_OFFSET);
        }
        Net::Arp(a) => {
            assert_eq!(res, Ok(()), "ARP");
            assert_eq!(k.dl_type, ethertype::ARP);
            let op = if a.operation <= 0xff {
                a.operation as u8
            } else {
                0
            };
            assert_eq!(
                (k.nw_proto, k.arp_sha, k.nw_src, k.arp_tha, k.nw_dst),
                (
                    op,
                    a.sender_mac,
                    u32::from(a.sender_ip),
                    a.target_mac,
                    u32::from(a.target_ip)
                ),
                "ARP fields"
            );
        }
        Net::V4(ip) => {
            assert_eq!(k.dl_type, ethertype::IPV4);
            assert_eq!(
                (k.nw_src, k.nw_dst, k.nw_tos, k.nw_ttl),
                (u32::from(ip.src), u32::from(ip.dst), ip.tos, ip.ttl),
                "IPv4 fields"
            );
            let later = ip.frag_offset != 0;
            let want_frag = match (ip.more_frags || later, later) {
                (false, _) => 0,
                (true, false) => FRAG_ANY,
                (true, true) => FRAG_ANY | FRAG_LATER,
            };
            assert_eq!(k.nw_frag, want_frag, "nw_frag");
            let proto = l4_protocol(transport).unwrap_or(ip.protocol);
            assert_eq!(k.nw_proto, proto, "nw_proto");
            if matches!(transport, L4::None) && reads_further(false, proto) && !later {
                // The arbitrary payload may be a short or bad transport header.
                if res.is_err() {
                    assert!(matches!(
                        res,
                        Err(ParseError::L4Truncated | ParseError::TcpBadOffset)
                    ));
                    return;
                }
            } else {
                assert_eq!(res, Ok(()), "IPv4 {ip:?} {transport:?}");
            }
            if later {
                assert_eq!(meta.l4_ofs, NO_OFFSET, "l4_ofs of a later fragment");
                assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (0, 0, 0));
            } else {
                let hl = ipv4::HEADER_LEN + ip.options.padded_len();
                assert_eq!(meta.l4_ofs, l3 + hl as u16, "l4_ofs");
                if !matches!(transport, L4::None) {
                    assert_eq!((k.tp_src, k.tp_dst), want_tp, "ports");
                    assert_eq!(k.tcp_flags, want_flags, "tcp_flags");
                }
            }
        }
        Net::V6(ip) => {
            assert_eq!(k.dl_type, ethertype::IPV6);
            assert_eq!(
                (k.ipv6_src, k.ipv6_dst, k.nw_tos, k.ipv6_label, k.nw_ttl),
                (
                    ip.src.octets(),
                    ip.dst.octets(),
                    ip.traffic_class,
                    ip.flow_label,
                    ip.hop_limit
                ),
                "IPv6 fields"
            );
            if matches!(transport, L4::None) {
                if reads_further(true, ip.next_header) {
                    return; // extension headers or a transport header of arbitrary bytes
                }
                assert_eq!(res, Ok(()), "IPv6 {ip:?}");
                assert_eq!((k.nw_proto, k.nw_frag), (ip.next_header, 0), "nw_proto");
                assert_eq!(meta.l4_ofs, l3 + ipv6::HEADER_LEN as u16, "l4_ofs");
                return;
            }
            assert_eq!(res, Ok(()), "IPv6 {ip:?} {transport:?}");
            assert_eq!(
                (k.nw_proto, k.nw_frag),
                (l4_protocol(transport).unwrap_or(0), 0)
            );
            assert_eq!(meta.l4_ofs, l3 + ipv6::HEADER_LEN as u16, "l4_ofs");
            assert_eq!((k.tp_src, k.tp_dst), want_tp, "ports");
            assert_eq!(k.tcp_flags, want_flags, "tcp_flags");
            assert_eq!(
                (k.nd_target, k.arp_sha, k.arp_tha),
                (want_target, want_sha, want_tha),
                "ND fields"
            );
        }
    }
}
