//! The tunnel crate over any bytes: the VXLAN and Geneve views and reprs, the Geneve option
//! iterator, and decapsulation of a parsed frame followed by encapsulation of what it gave.
//!
//! The first byte sets options, the rest is a frame. Bit 0 fills the outer IPv4 header
//! checksum and bit 1 the UDP checksum (when the frame has them) before anything reads the
//! frame, so that mutated frames get past the checksum checks; bit 2 forwards Geneve OAM
//! packets; bit 3 parses under VLAN limit 2 instead of 1.
//!
//! Properties: no panic. The views and reprs read the UDP payload (and the raw input);
//! every `Repr` that parses emits and parses back equal; the option iterator reads at most
//! the area, gives at most one error and only last. `decap::check` of a parsed frame gives a
//! decap or a reason inside `DecapDrop::NAMES`; a decap lies inside the frame (options
//! before the inner frame, at most 252 bytes of them). `decap::apply` in a pool then gives
//! the inner frame as the packet, the tunnel fields in the key (options past the key's 32
//! bytes read back from the option store), or `bad-inner-frame`. Encapsulating the inner frame with a header built from the decap's
//! metadata and options (`EncapParams::from_tunnel`, source port as received) gives a frame
//! that parses and decaps to the same metadata, options and inner frame.
//! `TUNNEL_HEADERS_DEBUG=1` prints each input's outcome (the drop reason, or the decap).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pipeline::buffer::NO_OFFSET;
use pipeline::checksum;
use pipeline::flowkey::{ethertype, ipproto};
use pipeline::{parse_packet_limit, PacketMeta, PacketPool, VlanLimit, MAX_PACKET};
use tunnels::decap::{self, Decap, DecapConfig, DecapDrop};
use tunnels::wire::{GenevePacket, GeneveRepr, OptionIter, VxlanPacket, VxlanRepr};
use tunnels::{check_critical_options, EncapParams, OptionStore, TunnelHeader};

const MACS: ([u8; 6], [u8; 6]) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);

fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("TUNNEL_HEADERS_DEBUG").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, frame)) = data.split_first() else {
        return;
    };
    wire(frame);
    let vlans = if op & 8 != 0 {
        VlanLimit::MAX
    } else {
        VlanLimit::DEFAULT
    };
    let config = DecapConfig {
        forward_oam: op & 4 != 0,
        ..DecapConfig::DEFAULT
    };
    let mut frame = frame.to_vec();
    let mut meta = PacketMeta::default();
    if parse_packet_limit(&frame, &mut meta, vlans).is_err() {
        return;
    }
    fill_checksums(&mut frame, &meta, op & 1 != 0, op & 2 != 0);
    if meta.l4_ofs != NO_OFFSET && meta.key.nw_proto == ipproto::UDP {
        if let Some(payload) = frame.get(meta.l4_ofs as usize + 8..) {
            wire(payload);
        }
    }
    let d = match decap::check(&frame, &meta, &config) {
        Ok(d) => d,
        Err(e) => {
            assert!((e as usize) < DecapDrop::NAMES.len());
            if debug() {
                eprintln!("outcome: {}", e.name());
            }
            return;
        }
    };
    decap_is_inside(&d, frame.len());
    let options = d.options(&frame).to_vec();
    let inner = d.inner(&frame).to_vec();
    let _ = check_critical_options(&options, |class, ty| class ^ u16::from(ty) != 0x0101);

    if frame.len() <= MAX_PACKET {
        let mut pool = PacketPool::new(1);
        let Ok(id) = pool.alloc_with(&frame) else {
            return;
        };
        let m = pool.meta_mut(id);
        *m = PacketMeta {
            data_off: m.data_off,
            len: m.len,
            ..meta
        };
        // A store of its own per input: it always has room.
        let store = OptionStore::new(16);
        match decap::apply(&mut pool, id, &d, vlans, &store, 0) {
            Ok(()) => {
                assert_eq!(pool.data(id), &inner[..], "the packet is the inner frame");
                let k = &pool.meta(id).key;
                let t = &d.tunnel;
                assert_eq!(
                    (k.tun_id, k.tun_src, k.tun_dst),
                    (t.vni.into(), t.src, t.dst)
                );
                assert_eq!((k.tun_tp_src, k.tun_tp_dst), (t.tp_src, t.tp_dst));
                assert_eq!((k.tun_tos, k.tun_ttl, k.tun_flags), (t.tos, t.ttl, t.flags));
                assert_eq!(usize::from(k.tun_opts_len), options.len());
                assert_eq!(store.options_of(k).as_deref(), Some(&options[..]));
                assert_eq!(k.in_port, meta.key.in_port);
            }
            Err(e) => assert_eq!(e, DecapDrop::BadInnerFrame),
        }
    }
    if debug() {
        let inner_ok = parse_packet_limit(&inner, &mut PacketMeta::default(), vlans).is_ok();
        let kind = d.tunnel.kind.name();
        eprintln!("outcome: {kind} decap, inner frame parses: {inner_ok}");
    }

    // Back into a tunnel: the same metadata, options and inner frame come out.
    let params = EncapParams::from_tunnel(&d.tunnel, MACS.0, MACS.1);
    let header = match TunnelHeader::new(&params, &options) {
        Ok(h) => h,
        Err(e) => panic!(
            "no header for {:?} with options {options:02x?}: {e}",
            d.tunnel
        ),
    };
    let mut again = vec![0u8; header.header_len()];
    again.extend_from_slice(&inner);
    header
        .write(&mut again, d.tunnel.tp_src)
        .expect("a decapsulated frame fits a tunnel again");
    let mut meta2 = PacketMeta::default();
    parse_packet_limit(&again, &mut meta2, vlans).expect("an encapsulated frame parses");
    let d2 = decap::check(&again, &meta2, &config).expect("an encapsulated frame decaps");
    assert_eq!(d2.tunnel, d.tunnel);
    assert_eq!(d2.options(&again), &options[..]);
    assert_eq!(d2.inner(&again), &inner[..]);
});

fn decap_is_inside(d: &Decap, len: usize) {
    assert!(d.inner_ofs + d.inner_len <= len, "{d:?} past {len} bytes");
    assert!(d.options_ofs + d.options_len <= d.inner_ofs, "{d:?}");
    assert!(d.options_len <= tunnels::wire::geneve::MAX_OPTIONS_LEN);
}

/// Fills the outer IPv4 header checksum and the UDP checksum (if not 0) of a parsed frame.
fn fill_checksums(frame: &mut [u8], meta: &PacketMeta, ip: bool, udp: bool) {
    if meta.key.dl_type != ethertype::IPV4 || meta.l3_ofs == NO_OFFSET {
        return;
    }
    let l3 = meta.l3_ofs as usize;
    let Some(&ver_ihl) = frame.get(l3) else {
        return;
    };
    let hl = usize::from(ver_ihl & 0x0f) * 4;
    if ip {
        if let Some(h) = frame.get_mut(l3..l3 + hl) {
            h[10..12].fill(0);
            let c = checksum::checksum(h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
    }
    if udp && meta.l4_ofs != NO_OFFSET && meta.key.nw_proto == ipproto::UDP {
        let l4 = meta.l4_ofs as usize;
        let Some(len) = frame.get(l4 + 4..l4 + 6) else {
            return;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let pseudo = checksum::pseudo_sum_ipv4(meta.key.nw_src, meta.key.nw_dst, 17, len as u32);
        if let Some(seg) = frame.get_mut(l4..l4 + len) {
            if len >= 8 && seg[6..8] != [0, 0] {
                seg[6..8].fill(0);
                let c = match checksum::l4_checksum(pseudo, seg) {
                    0 => 0xffff,
                    c => c,
                };
                seg[6..8].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
}

/// The views, reprs and option iterator over `b`.
fn wire(b: &[u8]) {
    // Unchecked views read 0 past the end and never panic.
    let v = VxlanPacket::new_unchecked(b);
    let _ = (v.flags(), v.vni(), v.vni_valid(), v.payload().len());
    let g = GenevePacket::new_unchecked(b);
    let _ = (g.version(), g.oam(), g.critical(), g.protocol(), g.vni());
    let _ = (g.options().len(), g.payload().len(), g.header_len());

    if let Ok(p) = VxlanPacket::new_checked(b) {
        if let Ok(r) = VxlanRepr::parse(&p) {
            let mut out = [0u8; 8];
            r.emit(&mut out).expect("a parsed VXLAN header emits");
            let back = VxlanRepr::parse(&VxlanPacket::new_checked(&out[..]).expect("8 bytes"));
            assert_eq!(back, Ok(r));
        }
    }
    if let Ok(p) = GenevePacket::new_checked(b) {
        options(p.options());
        if let Ok(r) = GeneveRepr::parse(&p) {
            let mut out = vec![0u8; r.header_len()];
            r.emit(&mut out).expect("a parsed Geneve header emits");
            let q = GenevePacket::new_checked(&out[..]).expect("its own length");
            assert_eq!(GeneveRepr::parse(&q), Ok(r));
            // The same bytes but the reserved bits (6 after O and C, the byte after the VNI).
            let mut want = b[..r.header_len()].to_vec();
            want[1] &= 0xc0;
            want[7] = 0;
            assert_eq!(out, want);
        }
    }
    options(b);
}

fn options(area: &[u8]) {
    let items: Vec<_> = OptionIter::new(area).collect();
    let errors = items.iter().filter(|o| o.is_err()).count();
    assert!(errors <= 1);
    assert!(errors == 0 || items.last().is_some_and(|o| o.is_err()));
    let read: usize = items.iter().flatten().map(|o| o.wire_len()).sum();
    assert!(read <= area.len());
    assert_eq!(errors == 0, read == area.len());
}
