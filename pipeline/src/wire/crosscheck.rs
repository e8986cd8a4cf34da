//! Frames from [`FrameBuilder`] against an independent implementation, etherparse: it decodes
//! every layer, its checksum functions agree with ours, and where its own builder has the
//! same defaults, its frames are ours byte for byte.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    LinkExtHeader, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader, VlanId,
};

use super::*;

const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const V4_SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const V4_DST: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// Decodes `f` with etherparse and checks every length and checksum it can see; returns the
/// headers for further checks.
fn check<'a>(f: &'a [u8], want_payload: &[u8]) -> PacketHeaders<'a> {
    let h = PacketHeaders::from_ethernet_slice(f).unwrap_or_else(|e| panic!("{e:?}: {f:02x?}"));
    let pl = h.payload.slice();
    assert_eq!(pl, want_payload, "payload of {f:02x?}");
    match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), t) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "ipv4 checksum"
            );
            let l4_len = t.as_ref().map_or(0, TransportHeader::header_len) + pl.len();
            assert_eq!(
                usize::from(ip.total_len),
                ip.header_len() + l4_len,
                "total length"
            );
            match t {
                Some(TransportHeader::Udp(u)) => {
                    assert_eq!(usize::from(u.length), 8 + pl.len());
                    if u.checksum != 0 {
                        assert_eq!(u.checksum, u.calc_checksum_ipv4(ip, pl).unwrap());
                    }
                }
                Some(TransportHeader::Tcp(t)) => {
                    assert_eq!(t.checksum, t.calc_checksum_ipv4(ip, pl).unwrap());
                }
                Some(TransportHeader::Icmpv4(i)) => {
                    assert_eq!(i.checksum, i.icmp_type.calc_checksum(pl));
                }
                Some(other) => panic!("{other:?} over IPv4"),
                None => {}
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), t) => {
            let l4_len = t.as_ref().map_or(0, TransportHeader::header_len) + pl.len();
            assert_eq!(usize::from(ip.payload_length), l4_len, "payload length");
            match t {
                Some(TransportHeader::Udp(u)) => {
                    assert_eq!(u.checksum, u.calc_checksum_ipv6(ip, pl).unwrap());
                }
                Some(TransportHeader::Tcp(t)) => {
                    assert_eq!(t.checksum, t.calc_checksum_ipv6(ip, pl).unwrap());
                }
                Some(TransportHeader::Icmpv6(i)) => {
                    let c = i
                        .icmp_type
                        .calc_checksum(ip.source, ip.destination, pl)
                        .unwrap();
                    assert_eq!(i.checksum, c);
                }
                Some(other) => panic!("{other:?} over IPv6"),
                None => {}
            }
        }
        _ => {}
    }
    h
}

#[test]
fn udp_over_ipv4_and_ipv6_every_payload_length() {
    for n in [0, 1, 2, 17, 18, 1472] {
        let p = payload(n);
        let f = FrameBuilder::ethernet(SRC, DST)
            .ipv4(Ipv4Repr::new(V4_SRC, V4_DST))
            .udp(1024, 5001)
            .build(&p)
            .unwrap();
        check(&f, &p);
        let mut theirs = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4(V4_SRC.octets(), V4_DST.octets(), 64)
            .udp(1024, 5001)
            .write(&mut theirs, &p)
            .unwrap();
        assert_eq!(f, theirs, "udp4 {n}");

        let f = FrameBuilder::ethernet(SRC, DST)
            .ipv6(Ipv6Repr::new(V6_SRC, V6_DST))
            .udp(53, 40000)
            .build(&p)
            .unwrap();
        check(&f, &p);
        let mut theirs = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(V6_SRC.octets(), V6_DST.octets(), 64)
            .udp(53, 40000)
            .write(&mut theirs, &p)
            .unwrap();
        assert_eq!(f, theirs, "udp6 {n}");
    }
}

#[test]
fn tcp_with_flags_and_options() {
    let tcp = TcpRepr {
        seq_number: 0x0102_0304,
        ack_number: 0x0a0b_0c0d,
        flags: tcp::flags::SYN | tcp::flags::ACK,
        window: 1000,
        options: Options::new(&[2, 4, 0x05, 0xb4]).unwrap(),
        ..TcpRepr::new(40000, 443)
    };
    let ip = Ipv4Repr {
        tos: 0x10,
        ident: 0x1234,
        ttl: 7,
        options: Options::new(&[0x94, 0x04, 0, 0]).unwrap(),
        ..Ipv4Repr::new(V4_SRC, V4_DST)
    };
    for n in [0, 5, 100] {
        let p = payload(n);
        let f = FrameBuilder::ethernet(SRC, DST)
            .ipv4(ip)
            .tcp(tcp)
            .build(&p)
            .unwrap();
        let h = check(&f, &p);
        let Some(NetHeaders::Ipv4(ip4, _)) = &h.net else {
            panic!("not ipv4")
        };
        assert_eq!(
            (ip4.identification, ip4.time_to_live, ip4.options.as_slice()),
            (0x1234, 7, &[0x94, 0x04, 0, 0][..])
        );
        let Some(TransportHeader::Tcp(t)) = &h.transport else {
            panic!("not tcp")
        };
        assert!(t.syn && t.ack && !t.fin);
        assert_eq!(
            (t.sequence_number, t.acknowledgment_number),
            (0x0102_0304, 0x0a0b_0c0d)
        );
        assert_eq!(t.options.as_slice(), &[2, 4, 0x05, 0xb4]);

        let f6 = FrameBuilder::ethernet(SRC, DST)
            .ipv6(Ipv6Repr::new(V6_SRC, V6_DST))
            .tcp(TcpRepr {
                options: Options::EMPTY,
                ..tcp
            })
            .build(&p)
            .unwrap();
        check(&f6, &p);
        let mut theirs = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(V6_SRC.octets(), V6_DST.octets(), 64)
            .tcp(40000, 443, 0x0102_0304, 1000)
            .syn()
            .ack(0x0a0b_0c0d)
            .write(&mut theirs, &p)
            .unwrap();
        assert_eq!(f6, theirs, "tcp6 {n}");
    }
}

#[test]
fn icmp_echo_and_errors() {
    let p = payload(20);
    let f = FrameBuilder::ethernet(SRC, DST)
        .ipv4(Ipv4Repr::new(V4_SRC, V4_DST))
        .icmpv4(Icmpv4Repr::EchoRequest { ident: 7, seq: 9 })
        .build(&p)
        .unwrap();
    check(&f, &p);
    let mut theirs = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4(V4_SRC.octets(), V4_DST.octets(), 64)
        .icmpv4_echo_request(7, 9)
        .write(&mut theirs, &p)
        .unwrap();
    assert_eq!(f, theirs);

    // A time-exceeded error quoting the echo's IP header and 8 bytes.
    let quoted = icmpv4::quote(&f[14..]).to_vec();
    assert_eq!(quoted.len(), 28);
    let e = FrameBuilder::ethernet(DST, SRC)
        .ipv4(Ipv4Repr::new(V4_DST, V4_SRC))
        .icmpv4(Icmpv4Repr::TimeExceeded { code: 0 })
        .build(&quoted)
        .unwrap();
    check(&e, &quoted);

    let f6 = FrameBuilder::ethernet(SRC, DST)
        .ipv6(Ipv6Repr::new(V6_SRC, V6_DST))
        .icmpv6(Icmpv6Repr::EchoReply { ident: 7, seq: 9 })
        .build(&p)
        .unwrap();
    check(&f6, &p);
    let mut theirs = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv6(V6_SRC.octets(), V6_DST.octets(), 64)
        .icmpv6_echo_reply(7, 9)
        .write(&mut theirs, &p)
        .unwrap();
    assert_eq!(f6, theirs);

    let too_big = FrameBuilder::ethernet(SRC, DST)
        .ipv6(Ipv6Repr::new(V6_SRC, V6_DST))
        .icmpv6(Icmpv6Repr::PacketTooBig { mtu: 1280 })
        .build(&p)
        .unwrap();
    check(&too_big, &p);
}

#[test]
fn neighbor_discovery_checksums() {
    let ns = Icmpv6Repr::NeighborSolicit {
        target: V6_DST,
        source_mac: Some(SRC),
    };
    let f = FrameBuilder::ethernet(SRC, [0x33, 0x33, 0xff, 0, 0, 2])
        .ipv6(Ipv6Repr {
            hop_limit: 255,
            ..Ipv6Repr::new(V6_SRC, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2))
        })
        .icmpv6(ns)
        .build(&[])
        .unwrap();
    // etherparse keeps the ND body (target, options) as the ICMPv6 payload.
    check(&f, &f[14 + 40 + 8..]);
    let mut meta = crate::PacketMeta::default();
    crate::parse_packet(&f, &mut meta).unwrap();
    assert_eq!(meta.key.nd_target, V6_DST.octets());
    assert_eq!(meta.key.arp_sha, SRC);
}

#[test]
fn vlan_tags_and_arp() {
    let p = payload(30);
    let f = FrameBuilder::ethernet(SRC, DST)
        .vlan(vlan::TPID_8021Q, 100)
        .ipv4(Ipv4Repr::new(V4_SRC, V4_DST))
        .udp(1, 2)
        .build(&p)
        .unwrap();
    let h = check(&f, &p);
    let [LinkExtHeader::Vlan(tag)] = h.link_exts.as_slice() else {
        panic!("one tag: {:?}", h.link_exts)
    };
    assert_eq!(tag.vlan_id.value(), 100);
    let mut theirs = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4(V4_SRC.octets(), V4_DST.octets(), 64)
        .udp(1, 2)
        .write(&mut theirs, &p)
        .unwrap();
    assert_eq!(f, theirs);

    let qinq = FrameBuilder::ethernet(SRC, DST)
        .vlan(vlan::TPID_8021AD, 0x2000 | 10)
        .vlan(vlan::TPID_8021Q, 20)
        .ipv6(Ipv6Repr::new(V6_SRC, V6_DST))
        .udp(1, 2)
        .build(&p)
        .unwrap();
    let h = check(&qinq, &p);
    let [LinkExtHeader::Vlan(outer), LinkExtHeader::Vlan(inner)] = h.link_exts.as_slice() else {
        panic!("two tags: {:?}", h.link_exts)
    };
    assert_eq!((outer.vlan_id.value(), outer.pcp.value()), (10, 1));
    assert_eq!(inner.vlan_id.value(), 20);

    let arp = FrameBuilder::ethernet(SRC, ethernet::BROADCAST)
        .arp(ArpRepr {
            operation: arp::operation::REPLY,
            sender_mac: SRC,
            sender_ip: V4_SRC,
            target_mac: DST,
            target_ip: V4_DST,
        })
        .build(&[])
        .unwrap();
    let h = check(&arp, &[]);
    let Some(NetHeaders::Arp(a)) = &h.net else {
        panic!("not arp: {:?}", h.net)
    };
    assert_eq!(a.sender_hw_addr(), &SRC[..]);
    assert_eq!(a.target_protocol_addr(), &V4_DST.octets()[..]);
}
