use super::*;
use crate::fixtures::*;
use pipeline::flowkey::{CT_TUPLE_WORD, TUN_OPTS_LEN, VLAN_PRESENT};
use pipeline::wire::Ipv4Packet;

/// `frame` in a pool, parsed (outer headers in its key), from input port 7 with stale
/// conntrack and recirculation words that decap must clear.
fn parsed(pool: &mut PacketPool, frame: &[u8]) -> PacketId {
    let id = pool.alloc_with(frame).unwrap();
    let (data, meta) = pool.data_and_meta_mut(id);
    meta.key.in_port = 7;
    meta.key.ct_state = 0x21;
    meta.key.recirc_id = 9;
    meta.key.tun_id = 0xdead;
    parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
    id
}

fn check_frame(frame: &[u8], config: &DecapConfig) -> Result<Decap, DecapDrop> {
    let mut meta = PacketMeta::default();
    parse_packet_limit(frame, &mut meta, VlanLimit::DEFAULT).unwrap();
    check(frame, &meta, config)
}

/// [`decap`] with the default config and VLAN limit, long options kept in `store`.
fn decap_into(
    pool: &mut PacketPool,
    id: PacketId,
    store: &OptionStore,
) -> Result<TunnelMetadata, DecapDrop> {
    decap(
        pool,
        id,
        &DecapConfig::DEFAULT,
        VlanLimit::DEFAULT,
        store,
        5,
    )
}

fn drop_of(frame: &[u8]) -> DecapDrop {
    check_frame(frame, &DecapConfig::DEFAULT).unwrap_err()
}

/// Recomputes the outer IPv4 checksum after a change (the outer IP header is at 14).
fn fix_ip(mut f: Vec<u8>) -> Vec<u8> {
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    f
}

fn vxlan_metadata() -> TunnelMetadata {
    TunnelMetadata {
        kind: TunnelKind::Vxlan,
        vni: 42,
        src: OUTER_SRC_IP,
        dst: OUTER_DST_IP,
        tos: 0,
        ttl: 64,
        tp_src: OUTER_SRC_PORT,
        tp_dst: 4789,
        flags: TUN_FLAG_PRESENT | TUN_FLAG_DF,
    }
}

#[test]
fn vxlan_scapy_frame_decaps_to_its_inner_frame() {
    let d = check_frame(&VXLAN_FRAME, &DecapConfig::DEFAULT).unwrap();
    assert_eq!(d.tunnel, vxlan_metadata());
    assert_eq!(
        (d.inner_ofs, d.inner_len, d.options_len),
        (50, INNER_LEN, 0)
    );
    assert_eq!(d.inner(&VXLAN_FRAME), inner());

    let mut pool = PacketPool::new(2);
    let id = parsed(&mut pool, &VXLAN_FRAME);
    let t = decap_into(&mut pool, id, &OptionStore::default()).unwrap();
    assert_eq!(t, vxlan_metadata());
    assert_eq!(pool.data(id), inner());
    let m = pool.meta(id);
    let k = &m.key;
    assert_eq!(
        (k.tun_id, k.tun_src, k.tun_dst),
        (42, OUTER_SRC_IP, OUTER_DST_IP)
    );
    assert_eq!(
        (k.tun_tp_src, k.tun_tp_dst, k.tun_ttl, k.tun_tos),
        (49152, 4789, 64, 0)
    );
    assert_eq!(
        (k.tun_flags, k.tun_opts_len),
        (TUN_FLAG_PRESENT | TUN_FLAG_DF, 0)
    );
    assert_eq!(
        (k.in_port, k.ct_state, k.recirc_id),
        (7, 0, 0),
        "metadata reset, port kept"
    );
    // The inner frame is parsed, under the tunnel id.
    let mut want = PacketMeta {
        key: *k,
        ..PacketMeta::default()
    };
    parse_packet_limit(inner(), &mut want, VlanLimit::DEFAULT).unwrap();
    assert_eq!(
        (m.key, m.hash, m.l3_ofs, m.l4_ofs),
        (want.key, want.hash, 14, 34)
    );
    assert_eq!(
        (k.nw_src, k.nw_dst, k.tp_src, k.tp_dst),
        (0x0a00_0001, 0x0a00_0101, 1024, 5001)
    );
}

#[test]
fn geneve_scapy_frame_with_options_and_checksum() {
    let d = check_frame(&GENEVE_FRAME_CSUM, &DecapConfig::DEFAULT).unwrap();
    let flags = TUN_FLAG_PRESENT | TUN_FLAG_DF | TUN_FLAG_CSUM | TUN_FLAG_CRITICAL;
    assert_eq!(
        d.tunnel,
        TunnelMetadata {
            kind: TunnelKind::Geneve,
            vni: 0x01_0203,
            tp_dst: 6081,
            flags,
            ..vxlan_metadata()
        }
    );
    assert_eq!(d.options(&GENEVE_FRAME_CSUM), &GENEVE_OPTIONS);
    assert_eq!(d.inner(&GENEVE_FRAME_CSUM), inner());

    let mut pool = PacketPool::new(1);
    let id = parsed(&mut pool, &GENEVE_FRAME_CSUM);
    decap_into(&mut pool, id, &OptionStore::default()).unwrap();
    assert_eq!(pool.data(id), inner());
    let k = &pool.meta(id).key;
    assert_eq!(k.tun_opts_len, 12);
    assert_eq!(&k.tun_opts[..12], &GENEVE_OPTIONS);
    assert!(k.tun_opts[12..].iter().all(|&b| b == 0));
    assert_eq!((k.tun_flags, k.tun_id), (flags, 0x01_0203));
}

#[test]
fn outer_padding_and_a_vlan_tag_are_stripped() {
    // 802.1Q tag 100 on the outer frame, and 6 bytes of padding after the IP packet.
    let mut f = VXLAN_FRAME[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
    f.extend_from_slice(&VXLAN_FRAME[12..]);
    f.extend_from_slice(&[0xee; 6]);
    let mut pool = PacketPool::new(1);
    let id = parsed(&mut pool, &f);
    assert_eq!(pool.meta(id).key.vlan_tci, VLAN_PRESENT | 100);
    decap_into(&mut pool, id, &OptionStore::default()).unwrap();
    assert_eq!(pool.data(id), inner());
    assert_eq!(pool.meta(id).key.vlan_tci, 0, "the inner frame has no tag");
}

#[test]
fn other_ports_and_oam_by_config() {
    let mut f = VXLAN_FRAME.to_vec();
    f[36..38].copy_from_slice(&8472u16.to_be_bytes()); // Linux's old VXLAN port
    assert_eq!(drop_of(&f), DecapDrop::NotTunnelPort);
    let linux = DecapConfig {
        vxlan_port: 8472,
        ..DecapConfig::DEFAULT
    };
    assert_eq!(check_frame(&f, &linux).unwrap().tunnel.tp_dst, 8472);
    let none = DecapConfig {
        vxlan_port: 0,
        geneve_port: 0,
        forward_oam: false,
    };
    assert_eq!(none.kind_of(0), None);
    assert_eq!(
        check_frame(&VXLAN_FRAME, &none),
        Err(DecapDrop::NotTunnelPort)
    );

    // The O bit: dropped by default, forwarded with the flag when asked. (Setting it breaks
    // the UDP checksum; take it out.)
    let mut f = GENEVE_FRAME_CSUM.to_vec();
    f[43] |= geneve::FLAG_OAM;
    f[40..42].fill(0);
    assert_eq!(drop_of(&f), DecapDrop::GeneveOam);
    let oam = DecapConfig {
        forward_oam: true,
        ..DecapConfig::DEFAULT
    };
    let d = check_frame(&f, &oam).unwrap();
    assert_eq!(
        d.tunnel.flags & (TUN_FLAG_OAM | TUN_FLAG_CSUM),
        TUN_FLAG_OAM
    );
}

#[test]
fn every_outer_drop_reason() {
    let v = VXLAN_FRAME.to_vec();
    let g = GENEVE_FRAME_CSUM.to_vec();

    // Not a tunnel packet: ARP, GRE, UDP to another port (the inner frame itself), a later
    // fragment (no ports); these come before any header is judged, so IP options or a bad
    // checksum on them do not count.
    let cfg = DecapConfig::DEFAULT;
    let mut arp = v.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut meta = PacketMeta::default();
    meta.key.dl_type = ethertype::ARP;
    assert_eq!(check(&arp, &meta, &cfg), Err(DecapDrop::NotUdp));
    let mut gre = v.clone();
    gre[23] = 47;
    gre[24] ^= 0xff; // and a bad checksum
    assert_eq!(drop_of(&gre), DecapDrop::NotUdp);
    assert_eq!(drop_of(inner()), DecapDrop::NotTunnelPort);
    let mut later = v.clone();
    later[21] = 1; // offset 8 bytes
    assert_eq!(drop_of(&fix_ip(later)), DecapDrop::NotTunnelPort);
    // UDP over IPv6 to a tunnel port: an IPv6 underlay; other IPv6 is not a tunnel packet.
    meta.key.dl_type = ethertype::IPV6;
    meta.key.nw_proto = ipproto::UDP;
    meta.key.tp_dst = 4789;
    assert_eq!(check(&arp, &meta, &cfg), Err(DecapDrop::OuterIpv6));
    meta.key.nw_proto = ipproto::TCP;
    assert_eq!(check(&arp, &meta, &cfg), Err(DecapDrop::NotUdp));
    for r in [DecapDrop::NotUdp, DecapDrop::NotTunnelPort] {
        assert!(r.is_not_tunnel());
    }
    assert!(!DecapDrop::OuterIpv6.is_not_tunnel() && !DecapDrop::BadIpChecksum.is_not_tunnel());

    let mut frag = v.clone();
    frag[20] |= 0x20; // MF: a first fragment, which has the ports
    assert_eq!(drop_of(&fix_ip(frag)), DecapDrop::OuterFragment);

    // An IP option (4 bytes of end-of-options) in front of the UDP header; to another port
    // it is not a tunnel packet.
    let mut opts = v[..34].to_vec();
    opts.extend_from_slice(&[0; 4]);
    opts.extend_from_slice(&v[34..]);
    opts[14] = 0x46;
    opts[17] += 4;
    let opts = fix_ip(opts);
    assert_eq!(drop_of(&opts), DecapDrop::OuterIpOptions);
    let mut other_port = opts.clone();
    other_port[40..42].copy_from_slice(&53u16.to_be_bytes());
    assert_eq!(drop_of(&other_port), DecapDrop::NotTunnelPort);

    let mut csum = v.clone();
    csum[22] = 63; // TTL changed, checksum not
    assert_eq!(drop_of(&csum), DecapDrop::BadIpChecksum);

    let mut udp_csum = g.clone();
    udp_csum[121] ^= 1;
    assert_eq!(drop_of(&udp_csum), DecapDrop::BadUdpChecksum);

    // A UDP length past the IP packet, and one with no room for the tunnel header.
    let mut long = v.clone();
    long[39] += 1;
    assert_eq!(drop_of(&long), DecapDrop::OuterTruncated);
    let mut short = v.clone();
    short[38..40].copy_from_slice(&15u16.to_be_bytes());
    assert_eq!(drop_of(&short), DecapDrop::OuterTruncated);
    // The parser already refuses a frame shorter than the IP total length; check() on such
    // a frame with a stale meta does too.
    let mut meta = PacketMeta::default();
    parse_packet_limit(&v, &mut meta, VlanLimit::DEFAULT).unwrap();
    assert_eq!(
        check(&v[..109], &meta, &cfg),
        Err(DecapDrop::OuterTruncated)
    );
    assert_eq!(check(&v[..30], &meta, &cfg), Err(DecapDrop::OuterTruncated));
    assert_eq!(
        check(inner(), &meta, &cfg),
        Err(DecapDrop::NotUdp),
        "another frame"
    );
}

#[test]
fn every_tunnel_header_drop_reason() {
    let v = VXLAN_FRAME.to_vec();
    let mut no_i = v.clone();
    no_i[42] = 0;
    assert_eq!(drop_of(&no_i), DecapDrop::BadVxlanHeader);
    // The reserved bits are ignored.
    let mut reserved = v.clone();
    reserved[42] = 0xff;
    reserved[43..46].fill(0xff);
    reserved[49] = 0xff;
    assert_eq!(
        check_frame(&reserved, &DecapConfig::DEFAULT)
            .unwrap()
            .tunnel
            .vni,
        42
    );

    // Geneve frames below without the UDP checksum, so that bytes can change.
    let mut g = GENEVE_FRAME_CSUM.to_vec();
    g[40..42].fill(0);
    assert!(check_frame(&g, &DecapConfig::DEFAULT).is_ok());
    let mut version = g.clone();
    version[42] |= 0x40;
    assert_eq!(drop_of(&version), DecapDrop::BadGeneveHeader);
    let mut protocol = g.clone();
    protocol[44..46].copy_from_slice(&0x0800u16.to_be_bytes());
    assert_eq!(drop_of(&protocol), DecapDrop::BadGeneveHeader);
    // Options claiming more than the datagram holds (63 words).
    let mut past = g.clone();
    past[42] = 63;
    assert_eq!(drop_of(&past), DecapDrop::OuterTruncated);
    // The second option's length says 1 word, past the area.
    let mut tlv = g.clone();
    tlv[53 + 8] = 1;
    assert_eq!(drop_of(&tlv), DecapDrop::BadGeneveOption);
}

#[test]
fn an_inner_frame_that_does_not_parse() {
    // A 10-byte inner frame: shorter than Ethernet.
    let mut f = VXLAN_FRAME[..60].to_vec();
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    let f = fix_ip(f);
    let d = check_frame(&f, &DecapConfig::DEFAULT).unwrap();
    assert_eq!(d.inner_len, 10);
    let mut pool = PacketPool::new(1);
    let id = parsed(&mut pool, &f);
    assert_eq!(
        decap_into(&mut pool, id, &OptionStore::default()),
        Err(DecapDrop::BadInnerFrame)
    );
}

#[test]
fn apply_refuses_a_decap_of_another_frame() {
    let d = check_frame(&GENEVE_FRAME_CSUM, &DecapConfig::DEFAULT).unwrap();
    let mut pool = PacketPool::new(1);
    let id = parsed(&mut pool, &VXLAN_FRAME);
    let r = apply(
        &mut pool,
        id,
        &d,
        VlanLimit::DEFAULT,
        &OptionStore::default(),
        0,
    );
    assert_eq!(r, Err(DecapDrop::OuterTruncated));
    assert_eq!(pool.data(id), &VXLAN_FRAME, "nothing changed");
}

#[test]
fn critical_options_against_a_map() {
    // GENEVE_OPTIONS: 0x0102/0x83 is critical, 0xffff/0x05 is not.
    let knows_0102 = |class: u16, ty: u8| class == 0x0102 && ty == 0x83;
    assert_eq!(check_critical_options(&GENEVE_OPTIONS, knows_0102), Ok(()));
    assert_eq!(
        check_critical_options(&GENEVE_OPTIONS, |_, _| false),
        Err(DecapDrop::UnknownCriticalOption)
    );
    // An unknown non-critical option is fine; so are no options.
    assert_eq!(
        check_critical_options(&GENEVE_OPTIONS[8..], |_, _| false),
        Ok(())
    );
    assert_eq!(check_critical_options(&[], |_, _| false), Ok(()));
    assert_eq!(
        check_critical_options(&GENEVE_OPTIONS[..6], |_, _| true),
        Err(DecapDrop::BadGeneveOption)
    );
}

#[test]
fn names_are_kebab_case_and_complete() {
    assert_eq!(
        DecapDrop::BadInnerFrame as usize + 1,
        DecapDrop::NAMES.len()
    );
    assert_eq!(DecapDrop::GeneveOam.name(), "geneve-oam");
    assert_eq!(DecapDrop::NotUdp.to_string(), "not-udp");
    for n in DecapDrop::NAMES {
        let kebab = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        assert!(n.chars().all(kebab), "{n}");
    }
}

#[test]
fn the_unrolled_ipv4_checksum_agrees_with_rfc1071() {
    let mut h = [0u8; 20];
    let mut x = 0x9e37_79b9u32;
    for round in 0..20_000 {
        for b in h.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = (x >> 7) as u8;
        }
        if round % 2 == 0 {
            // Half of them with a correct checksum.
            h[10..12].fill(0);
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        assert_eq!(
            ipv4_checksum_ok(&h),
            checksum::checksum(&h) == 0,
            "{h:02x?}"
        );
    }
    assert!(ipv4_checksum_ok(&VXLAN_FRAME[14..34].try_into().unwrap()));
}

#[test]
fn write_key_sets_every_tunnel_field_and_nothing_past_in_port_but_zeros() {
    let mut key = FlowKey::all_ones();
    key.in_port = 0x0102_0304;
    let t = TunnelMetadata {
        kind: TunnelKind::Geneve,
        vni: 0xab_cdef,
        src: 0x0a0b_0c0d,
        dst: 0x1a1b_1c1d,
        tos: 0xb8,
        ttl: 0x3f,
        tp_src: 0xc001,
        tp_dst: 6081,
        flags: 0x0015,
    };
    t.write_key(&mut key, 12, &GENEVE_OPTIONS);
    let want = FlowKey {
        tun_id: 0xab_cdef,
        tun_src: 0x0a0b_0c0d,
        tun_dst: 0x1a1b_1c1d,
        tun_flags: 0x0015,
        tun_tp_src: 0xc001,
        tun_tp_dst: 6081,
        tun_tos: 0xb8,
        tun_ttl: 0x3f,
        tun_opts_len: 12,
        in_port: 0x0102_0304,
        ..FlowKey::default()
    };
    let mut want_opts = want;
    want_opts.tun_opts[..12].copy_from_slice(&GENEVE_OPTIONS);
    assert_eq!(
        key.words()[..KEY_METADATA_WORDS],
        want_opts.words()[..KEY_METADATA_WORDS]
    );
    assert!(key.words()[KEY_METADATA_WORDS..CT_TUPLE_WORD]
        .iter()
        .all(|&w| w == u64::MAX));
    assert!(key.words()[CT_TUPLE_WORD..].iter().all(|&w| w == 0));
    // A digest for options the key does not hold: the length is the options' own, bytes
    // past the key's 32 are cut.
    t.write_key(&mut key, 40, &[7; 40]);
    assert_eq!((key.tun_opts_len, key.tun_opts), (40, [7; 32]));
}

/// The Geneve frame of the fixtures without UDP checksum, carrying `options` (not critical)
/// in front of its inner frame.
fn geneve_with_options(options: &[u8]) -> Vec<u8> {
    let mut g = GENEVE_FRAME_CSUM[..50].to_vec();
    g[42] = (options.len() / 4) as u8;
    g[43] = 0;
    g.extend_from_slice(options);
    g.extend_from_slice(inner());
    let udp_len = (g.len() - 34) as u16;
    g[38..40].copy_from_slice(&udp_len.to_be_bytes());
    g[40..42].fill(0);
    g[16..18].copy_from_slice(&(udp_len + 20).to_be_bytes());
    fix_ip(g)
}

/// `n` bytes of non-critical options (class 0xaabb), each of up to 124 bytes of data.
fn long_options(n: usize, fill: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ty = 0;
    while out.len() < n {
        let data = (n - out.len() - 4).min(124);
        out.extend_from_slice(&[0xaa, 0xbb, ty, (data / 4) as u8]);
        out.extend(std::iter::repeat_n(fill, data));
        ty += 1;
    }
    out
}

#[test]
fn options_longer_than_the_key_are_kept_by_digest() {
    const { assert!(TUN_OPTS_LEN < 36) };
    let store = OptionStore::default();
    let mut pool = PacketPool::new(4);
    for n in [36, 252] {
        let options = long_options(n, 0x5a);
        let id = parsed(&mut pool, &geneve_with_options(&options));
        let t = decap_into(&mut pool, id, &store);
        assert!(t.is_ok(), "{n} bytes: {t:?}");
        let key = &pool.meta(id).key;
        assert_eq!(usize::from(key.tun_opts_len), n);
        assert_eq!(store.options_of(key).as_deref(), Some(&options[..]));
        assert_eq!(pool.data(id), inner(), "the inner frame, parsed");
        assert_eq!(key.dl_type, 0x0800);
    }
    // Other options of the same length: another digest, so another key.
    let a = long_options(40, 1);
    let b = long_options(40, 2);
    let ka = {
        let id = parsed(&mut pool, &geneve_with_options(&a));
        decap_into(&mut pool, id, &store).unwrap();
        pool.meta(id).key
    };
    let id = parsed(&mut pool, &geneve_with_options(&b));
    decap_into(&mut pool, id, &store).unwrap();
    assert_ne!(ka.tun_opts, pool.meta(id).key.tun_opts);
    assert_eq!(store.len(), 4);
}

#[test]
fn a_full_option_store_drops_new_long_options() {
    // A store of one entry per shard: some of many different areas find no room.
    let store = OptionStore::new(1);
    let mut pool = PacketPool::new(1);
    let mut dropped = 0;
    for fill in 0..64u8 {
        let id = parsed(&mut pool, &geneve_with_options(&long_options(36, fill)));
        match decap_into(&mut pool, id, &store) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e, DecapDrop::GeneveOptionsStoreFull);
                dropped += 1;
            }
        }
        pool.free(id);
    }
    assert!(
        dropped > 0 && store.len() <= 16,
        "{dropped} {}",
        store.len()
    );
}
