use super::*;
use crate::decap::{self, DecapConfig};
use crate::fixtures::*;
use pipeline::flowkey::{TUN_FLAG_CRITICAL, TUN_FLAG_PRESENT};
use pipeline::wire::{Ipv4Packet, UdpPacket};
use pipeline::{parse_packet_limit, VlanLimit};

fn params(kind: TunnelKind, vni: u32) -> EncapParams {
    EncapParams::new(
        kind,
        vni,
        OUTER_SRC_MAC,
        OUTER_DST_MAC,
        Ipv4Addr::from_bits(OUTER_SRC_IP),
        Ipv4Addr::from_bits(OUTER_DST_IP),
    )
}

/// `inner` behind `h`'s header, written with `src_port`.
fn encapsulated(h: &TunnelHeader, inner: &[u8], src_port: u16) -> Vec<u8> {
    let mut f = vec![0u8; h.header_len()];
    f.extend_from_slice(inner);
    h.write(&mut f, src_port).unwrap();
    f
}

#[test]
fn vxlan_matches_scapy_byte_for_byte() {
    let h = TunnelHeader::new(&params(TunnelKind::Vxlan, 42), &[]).unwrap();
    assert_eq!(h.header_len(), 50);
    assert_eq!(encapsulated(&h, inner(), OUTER_SRC_PORT), VXLAN_FRAME);
}

#[test]
fn geneve_with_options_and_checksum_matches_scapy_byte_for_byte() {
    let p = EncapParams {
        udp_checksum: true,
        ..params(TunnelKind::Geneve, 0x01_0203)
    };
    let h = TunnelHeader::new(&p, &GENEVE_OPTIONS).unwrap();
    assert_eq!(h.header_len(), 62);
    assert_eq!(encapsulated(&h, inner(), OUTER_SRC_PORT), GENEVE_FRAME_CSUM);
}

#[test]
fn source_ports_spread_over_ovs_range() {
    assert_eq!(udp_src_port(0), 32768);
    assert_eq!(udp_src_port(u32::MAX), 60999);
    assert_eq!(udp_src_port(1 << 31), 32768 + 14116);
}

/// Every length of inner frame: the IPv4 checksum updated from the template's equals the
/// one computed from scratch, and the UDP checksum (when on) verifies.
#[test]
fn lengths_and_checksums_for_every_inner_length() {
    for udp_checksum in [false, true] {
        let p = EncapParams {
            udp_checksum,
            tos: 0xb8,
            ttl: 3,
            dont_frag: false,
            ..params(TunnelKind::Geneve, 5)
        };
        let h = TunnelHeader::new(&p, &GENEVE_OPTIONS[8..]).unwrap();
        for n in (0..1500).step_by(7) {
            let inner: Vec<u8> = (0..n).map(|i| (i * 13 + n) as u8).collect();
            let f = encapsulated(&h, &inner, 40000 + n as u16);
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum(), "inner length {n}");
            assert_eq!(ip.total_len() as usize, f.len() - 14);
            assert_eq!(
                (ip.tos(), ip.ttl(), ip.dont_frag(), ip.ident()),
                (0xb8, 3, false, 0)
            );
            let udp = UdpPacket::new_checked(ip.payload()).unwrap();
            assert_eq!(udp.length() as usize, f.len() - 34);
            assert_eq!(udp.src_port(), 40000 + n as u16);
            assert_eq!(udp.checksum() != 0, udp_checksum);
            assert!(udp.verify_checksum(&ip.pseudo_header()));
        }
    }
}

/// Encapsulate through a pool, decapsulate with `decap`: the inner frame and the tunnel
/// metadata come back.
#[test]
fn push_then_decap_gives_the_inner_frame_and_metadata_back() {
    let cases: [(TunnelKind, bool, &[u8]); 4] = [
        (TunnelKind::Vxlan, false, &[]),
        (TunnelKind::Vxlan, true, &[]),
        (TunnelKind::Geneve, false, &GENEVE_OPTIONS),
        (TunnelKind::Geneve, true, &[]),
    ];
    for (kind, udp_checksum, options) in cases {
        let p = EncapParams {
            udp_checksum,
            tos: 0x10,
            ..params(kind, 0xab_cdef)
        };
        let h = TunnelHeader::new(&p, options).unwrap();
        let mut pool = PacketPool::new(1);
        let id = pool.alloc_with(inner()).unwrap();
        let (data, meta) = pool.data_and_meta_mut(id);
        parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
        let hash = meta.hash;
        h.push(&mut pool, id).unwrap();
        assert_eq!(
            pool.meta(id).l3_ofs as usize,
            h.header_len() + 14,
            "offsets moved"
        );
        assert_eq!(&pool.data(id)[h.header_len()..], inner());

        // As received: parse the outer headers, then decap.
        let (data, meta) = pool.data_and_meta_mut(id);
        parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
        let store = crate::OptionStore::default();
        let t = decap::decap(
            &mut pool,
            id,
            &DecapConfig::DEFAULT,
            VlanLimit::DEFAULT,
            &store,
            0,
        )
        .unwrap();
        assert_eq!(pool.data(id), inner());
        let mut flags = TUN_FLAG_PRESENT | TUN_FLAG_DF;
        if udp_checksum {
            flags |= TUN_FLAG_CSUM;
        }
        if !options.is_empty() {
            flags |= TUN_FLAG_CRITICAL;
        }
        let want = TunnelMetadata {
            kind,
            vni: 0xab_cdef,
            src: OUTER_SRC_IP,
            dst: OUTER_DST_IP,
            tos: 0x10,
            ttl: 64,
            tp_src: udp_src_port(hash),
            tp_dst: kind.default_port(),
            flags,
        };
        assert_eq!(t, want, "{kind:?} checksum {udp_checksum}");
        let k = &pool.meta(id).key;
        assert_eq!(&k.tun_opts[..k.tun_opts_len as usize], options);
        // And the same header again from the metadata.
        let again = TunnelHeader::new(
            &EncapParams::from_tunnel(&t, OUTER_SRC_MAC, OUTER_DST_MAC),
            options,
        );
        assert_eq!(again.unwrap().template(), h.template());
    }
}

#[test]
fn refused_templates() {
    let vx = params(TunnelKind::Vxlan, 1);
    let ge = params(TunnelKind::Geneve, 1);
    let e = |p: EncapParams, o: &[u8]| TunnelHeader::new(&p, o).unwrap_err();
    assert_eq!(e(vx, &GENEVE_OPTIONS), Error::Unsupported);
    assert_eq!(e(EncapParams { oam: true, ..vx }, &[]), Error::Unsupported);
    assert_eq!(e(params(TunnelKind::Vxlan, 1 << 24), &[]), Error::Malformed);
    assert_eq!(
        e(params(TunnelKind::Geneve, 1 << 24), &[]),
        Error::Malformed
    );
    assert_eq!(e(ge, &GENEVE_OPTIONS[..6]), Error::Malformed);
    // Up to 252 bytes of options (RFC 8926's limit: opt_len is 6 bits of 4-byte words).
    let option = |words: u8| {
        let mut o = vec![0u8; 4 + 4 * words as usize];
        o[3] = words;
        o
    };
    let too_long = [option(31), option(31)].concat();
    assert_eq!(too_long.len(), 256);
    assert_eq!(e(ge, &too_long), Error::TooLong);
    let longest = [option(31), option(30)].concat();
    let h = TunnelHeader::new(&ge, &longest).unwrap();
    assert_eq!(h.header_len(), 50 + 252);
    // A received packet's headroom takes 204 bytes of options, not more.
    let mut pool = PacketPool::new(2);
    let id = pool.alloc_with(inner()).unwrap();
    assert_eq!(h.push(&mut pool, id), Err(EncapDrop::NoHeadroom));
    let fits = [option(31), option(18)].concat();
    assert_eq!(fits.len(), 204);
    let h = TunnelHeader::new(&ge, &fits).unwrap();
    h.push(&mut pool, id).unwrap();
    assert_eq!(pool.meta(id).data_off, 2, "the headroom taken but 2 bytes");
    let oam = TunnelHeader::new(&EncapParams { oam: true, ..ge }, &[]).unwrap();
    assert_eq!(oam.template()[43], geneve::FLAG_OAM);
    assert!(format!("{oam:?}").starts_with("TunnelHeader { template: [02, 00"));
}

#[test]
fn push_without_headroom_or_past_65535_bytes() {
    let h = TunnelHeader::new(&params(TunnelKind::Vxlan, 1), &[]).unwrap();
    let mut pool = PacketPool::new(1);
    let id = pool.alloc_with(inner()).unwrap();
    pool.push_front(id, pipeline::HEADROOM - 49).unwrap();
    assert_eq!(h.push(&mut pool, id), Err(EncapDrop::NoHeadroom));
    assert_eq!(
        pool.meta(id).len as usize,
        pipeline::HEADROOM - 49 + INNER_LEN,
        "packet unchanged"
    );
    let mut big = vec![0u8; 50 + 65_536 - 36];
    assert_eq!(h.write(&mut big, 1), Err(EncapDrop::TooLong));
    assert_eq!(h.write(&mut [0u8; 49], 1), Err(EncapDrop::NoHeadroom));
    let mut fits = vec![0u8; 50 + 65_535 - 36];
    h.write(&mut fits, 1).unwrap();
    assert_eq!(EncapDrop::NAMES, ["no-headroom", "too-long", "too-big"]);
    assert_eq!(EncapDrop::TooLong.to_string(), "too-long");
}

#[test]
fn a_packet_past_the_mtu_is_too_big_and_one_that_fits_is_pushed() {
    let vxlan = EncapParams::new(
        TunnelKind::Vxlan,
        5000,
        OUTER_SRC_MAC,
        OUTER_DST_MAC,
        Ipv4Addr::from_bits(OUTER_SRC_IP),
        Ipv4Addr::from_bits(OUTER_DST_IP),
    );
    // MTU 1500: the tunnel leaves 1450 bytes for an inner IP packet.
    let h = TunnelHeader::new(&vxlan, &[]).unwrap().with_mtu(1500);
    assert_eq!(h.inner_mtu(), 1450);
    let mut pool = PacketPool::new(4);
    let fits = pool.alloc_with(&vec![0u8; 14 + 1450]).unwrap();
    assert_eq!(h.push(&mut pool, fits), Ok(()));
    assert_eq!(pool.meta(fits).len, 1500 + 14);
    let big = pool.alloc_with(&vec![0u8; 14 + 1451]).unwrap();
    assert_eq!(h.push(&mut pool, big), Err(EncapDrop::TooBig));
    assert_eq!(pool.meta(big).len, 14 + 1451, "packet unchanged");
    // No MTU: not checked.
    let h = TunnelHeader::new(&vxlan, &[]).unwrap();
    assert_eq!((h.inner_mtu(), h.push(&mut pool, big)), (0, Ok(())));
}
