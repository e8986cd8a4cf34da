use super::*;
use crate::table::{ConnTable, CtExec};
use crate::track::CtTracker;
use crate::{CtAddr, CtConfig, CtNat, Family, NatKind, NatRange};
use pipeline::checksum::{l4_checksum, pseudo_sum_ipv4, pseudo_sum_ipv6};
use pipeline::flowkey::ct_state;
use pipeline::wire::{FrameBuilder, Ipv4Repr, Ipv6Repr};
use pipeline::{parse_packet_limit, Fragments, PacketPool, Track, VlanLimit};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const SEC: u64 = 1_000_000_000;

/// A UDP datagram 10.0.0.1:5000 → 10.0.0.2:53 with `len` bytes of payload, DF clear.
fn udp4(len: usize, ident: u16) -> Vec<u8> {
    let ip = Ipv4Repr {
        ident,
        dont_frag: false,
        ..Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
    };
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    FrameBuilder::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(ip)
        .udp(5000, 53)
        .build(&payload)
        .unwrap()
}

fn udp6(len: usize) -> Vec<u8> {
    let (a, b): (Ipv6Addr, Ipv6Addr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    FrameBuilder::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv6(Ipv6Repr::new(a, b))
        .udp(5000, 53)
        .build(&payload)
        .unwrap()
}

fn set_ip_checksum(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    set_ipv4_checksum(&mut ip[..ihl]);
}

/// Cuts the IPv4 datagram of `frame` into fragments of `data` payload bytes each (multiples
/// of 8 but the last).
fn fragments_v4(frame: &[u8], data: usize) -> Vec<Vec<u8>> {
    let (l2, ihl) = (&frame[..14], usize::from(frame[14] & 0x0f) * 4);
    let header = &frame[14..14 + ihl];
    let payload = &frame[14 + ihl..];
    payload
        .chunks(data)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = [l2, header, chunk].concat();
            let ip = &mut f[14..];
            ip[2..4].copy_from_slice(&((ihl + chunk.len()) as u16).to_be_bytes());
            let more = (i + 1) * data < payload.len();
            let off = (i * data / 8) as u16 | if more { 0x2000 } else { 0 };
            ip[6..8].copy_from_slice(&off.to_be_bytes());
            set_ip_checksum(ip);
            f
        })
        .collect()
}

/// The same for IPv6: a fragment header (identifier `id`) after the fixed header.
fn fragments_v6(frame: &[u8], data: usize, id: u32) -> Vec<Vec<u8>> {
    let (l2, fixed, payload) = (&frame[..14], &frame[14..54], &frame[54..]);
    payload
        .chunks(data)
        .enumerate()
        .map(|(i, chunk)| {
            let more = (i + 1) * data < payload.len();
            let offlg = (i * data) as u16 | u16::from(more);
            let mut fh = vec![fixed[6], 0];
            fh.extend_from_slice(&offlg.to_be_bytes());
            fh.extend_from_slice(&id.to_be_bytes());
            let mut f = [l2, fixed, &fh, chunk].concat();
            f[14 + 4..14 + 6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
            f[14 + 6] = ipproto::FRAGMENT;
            f
        })
        .collect()
}

fn meta_of(frame: &[u8]) -> PacketMeta {
    let mut m = PacketMeta::default();
    parse_packet_limit(frame, &mut m, VlanLimit::DEFAULT).unwrap();
    m
}

fn add(ipf: &Ipf, frame: &[u8], now: u64) -> FragVerdict {
    ipf.add(frame, &meta_of(frame), 0, now)
}

fn held(v: &FragVerdict) -> bool {
    matches!(v, FragVerdict::Held)
}

fn done(v: FragVerdict) -> Datagram {
    match v {
        FragVerdict::Complete(d) => *d,
        other => panic!("not complete: {other:?}"),
    }
}

#[test]
fn in_order_fragments_make_the_datagram_back() {
    let ipf = Ipf::new();
    let whole = udp4(3000, 7);
    let frags = fragments_v4(&whole, 1480);
    assert_eq!(frags.len(), 3);
    assert!(held(&add(&ipf, &frags[0], 0)));
    assert!(held(&add(&ipf, &frags[1], 0)));
    assert_eq!(ipf.status().frags, 2);
    let d = done(add(&ipf, &frags[2], 0));
    assert!(d.frame == whole, "the datagram");
    assert_eq!(d.meta.key.nw_frag, 0);
    assert_eq!((d.meta.key.tp_src, d.meta.key.tp_dst), (5000, 53));
    assert_eq!(d.fragments(), 3);
    let out: Vec<_> = d.release().map(|(f, _)| f).collect();
    assert!(out == frags, "untracked: the fragments as they came");
    ipf.released(false, 3, 0);
    let s = ipf.status();
    assert_eq!(s.frags, 0);
    assert_eq!(s.v4.get(IpfCounter::Accepted), 3);
    assert_eq!(s.v4.get(IpfCounter::Completed), 3);
}

#[test]
fn out_of_order_fragments_come_out_in_offset_order() {
    let ipf = Ipf::new();
    let whole = udp4(4000, 8);
    let frags = fragments_v4(&whole, 1480);
    assert!(held(&add(&ipf, &frags[2], 0)));
    assert!(held(&add(&ipf, &frags[0], 0)));
    let d = done(add(&ipf, &frags[1], 0));
    assert!(d.frame == whole, "the datagram");
    let out: Vec<_> = d.release().map(|(f, _)| f).collect();
    assert!(out == frags, "the fragments as they came");
}

#[test]
fn duplicates_and_overlaps_are_refused_and_the_list_goes_on() {
    let ipf = Ipf::new();
    let whole = udp4(3000, 9);
    let frags = fragments_v4(&whole, 1480);
    assert!(held(&add(&ipf, &frags[0], 0)));
    assert!(matches!(add(&ipf, &frags[0], 0), FragVerdict::NotTaken));
    // A fragment covering the first one's data and more.
    let big = fragments_v4(&whole, 2960);
    assert!(matches!(add(&ipf, &big[0], 0), FragVerdict::NotTaken));
    assert_eq!(ipf.status().v4.get(IpfCounter::Overlap), 2);
    assert!(held(&add(&ipf, &frags[1], 0)));
    assert!(done(add(&ipf, &frags[2], 0)).frame == whole);
}

#[test]
fn small_non_last_fragments_are_refused() {
    let ipf = Ipf::new();
    let whole = udp4(1000, 10);
    let frags = fragments_v4(&whole, 600);
    assert!(matches!(add(&ipf, &frags[0], 0), FragVerdict::NotTaken));
    assert_eq!(ipf.status().v4.get(IpfCounter::TooSmall), 1);
    // The last one may be small.
    assert!(held(&add(&ipf, &frags[1], 0)));
    // Allowed once the minimum is lower.
    ipf.set_min_frag(false, 600).unwrap();
    assert!(done(add(&ipf, &frags[0], 0)).frame == whole);
}

#[test]
fn an_incomplete_list_expires_after_15_seconds() {
    let ipf = Ipf::new();
    let frags = fragments_v4(&udp4(3000, 11), 1480);
    assert!(held(&add(&ipf, &frags[0], SEC)));
    assert!(held(&add(&ipf, &frags[2], 10 * SEC)));
    assert_eq!(ipf.expire(16 * SEC), 0);
    assert_eq!(ipf.expire(16 * SEC + 1), 2);
    let s = ipf.status();
    assert_eq!((s.frags, s.v4.get(IpfCounter::Expired)), (0, 2));
    // The middle one alone starts a new list.
    assert!(held(&add(&ipf, &frags[1], 17 * SEC)));
    // Found expired before the sweep came: dropped all the same, and a new list starts.
    assert!(held(&add(&ipf, &frags[0], 40 * SEC)));
    let s = ipf.status();
    assert_eq!((s.frags, s.v4.get(IpfCounter::Expired)), (1, 3));
}

#[test]
fn ipv6_fragments_are_reassembled_with_an_atomic_fragment_header() {
    let ipf = Ipf::new();
    let whole = udp6(3000);
    let frags = fragments_v6(&whole, 1448, 0x1234_5678);
    assert_eq!(frags.len(), 3);
    assert!(held(&add(&ipf, &frags[1], 0)));
    assert!(held(&add(&ipf, &frags[2], 0)));
    let d = done(add(&ipf, &frags[0], 0));
    let m = meta_of(&d.frame);
    assert_eq!((m.key.nw_frag, m.key.nw_proto), (0, ipproto::UDP));
    assert_eq!((m.key.tp_src, m.key.tp_dst), (5000, 53));
    // The original with an 8-byte fragment header, offset 0 and no more fragments.
    let mut expect = whole[..54].to_vec();
    expect[18..20].copy_from_slice(&(3008u16 + 8).to_be_bytes());
    expect[20] = ipproto::FRAGMENT;
    expect.extend_from_slice(&[ipproto::UDP, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    expect.extend_from_slice(&whole[54..]);
    assert!(d.frame == expect, "the datagram");
    assert!(d.is_v6());
    let out: Vec<_> = d.release().map(|(f, _)| f).collect();
    assert!(out == frags, "the fragments as they came");
    assert_eq!(ipf.status().v6.get(IpfCounter::Accepted), 3);
    // Too small for IPv6's minimum (1280).
    let small = fragments_v6(&udp6(2000), 1000, 1);
    assert!(matches!(add(&ipf, &small[0], 0), FragVerdict::NotTaken));
    assert_eq!(ipf.status().v6.get(IpfCounter::TooSmall), 1);
}

#[test]
fn the_table_and_a_list_have_limits() {
    let ipf = Ipf::new();
    ipf.set_max_frags(2).unwrap();
    let a = fragments_v4(&udp4(3000, 1), 1480);
    let b = fragments_v4(&udp4(3000, 2), 1480);
    assert!(held(&add(&ipf, &a[0], 0)));
    assert!(held(&add(&ipf, &b[0], 0)));
    assert!(matches!(add(&ipf, &a[1], 0), FragVerdict::NotTaken));
    assert_eq!(ipf.status().v4.get(IpfCounter::TableFull), 1);
    assert_eq!(ipf.set_max_frags(5001), Err(IpfError::MaxFragsTooBig(5001)));
    assert_eq!(
        ipf.set_min_frag(true, 399),
        Err(IpfError::MinFragTooSmall(399))
    );
    let s = ipf.status();
    assert_eq!((s.max_frags, s.v6.min_frag_size), (2, DEFAULT_MIN_FRAG_V6));
    // A list holds ceil((65535 - 60) / (min - 60)) IPv4 fragments at most: reached with
    // 60-byte headers (40 bytes of options) and the smallest fragments allowed.
    let ipf = Ipf::new();
    ipf.set_min_frag(false, 1004).unwrap();
    let base = fragments_v4(&udp4(3000, 3), 1480);
    let at = |i: u16| {
        let mut f = base[1][..34].to_vec();
        f[14] = 0x4f;
        f.extend_from_slice(&[1; 40]);
        f.extend_from_slice(&[0x55; 944]);
        let ip = &mut f[14..];
        ip[2..4].copy_from_slice(&1004u16.to_be_bytes());
        ip[6..8].copy_from_slice(&((i * 118) | 0x2000).to_be_bytes());
        set_ip_checksum(ip);
        f
    };
    let max_list = (65535u16 - 60).div_ceil(1004 - 60);
    assert_eq!(max_list, 70);
    for i in 0..max_list {
        assert!(held(&add(&ipf, &at(i), 0)), "fragment {i}");
    }
    assert!(matches!(add(&ipf, &at(0), 0), FragVerdict::NotTaken));
    assert_eq!(ipf.status().v4.get(IpfCounter::ListFull), 1);
}

#[test]
fn a_datagram_above_65535_bytes_fails_and_expires() {
    let ipf = Ipf::new();
    // 45 fragments of 1480 bytes: 66600 bytes of payload.
    let base = fragments_v4(&udp4(3000, 4), 1480);
    let at = |i: u16, more: bool| {
        let mut f = base[if i == 0 { 0 } else { 1 }].clone();
        let ip = &mut f[14..];
        ip[6..8].copy_from_slice(&((i * 185) | if more { 0x2000 } else { 0 }).to_be_bytes());
        set_ip_checksum(ip);
        f
    };
    for i in 0..44 {
        assert!(held(&add(&ipf, &at(i, true), 0)));
    }
    assert!(held(&add(&ipf, &at(44, false), 0)));
    let s = ipf.status();
    assert_eq!((s.frags, s.v4.get(IpfCounter::TooBig)), (45, 1));
    // The failed list takes nothing more, and expires.
    assert!(matches!(
        add(&ipf, &at(44, false), 0),
        FragVerdict::NotTaken
    ));
    assert_eq!(ipf.expire(LIST_TIMEOUT_NS + 1), 45);
}

/// Every fragment's IPv4 header checksum is right, and the fragments put together carry a
/// UDP datagram whose checksum is right.
fn check_fragments_v4(frags: &[Vec<u8>]) {
    let mut payload = Vec::new();
    for f in frags {
        let ip = &f[14..];
        assert_eq!(checksum(&ip[..20]), 0, "IP header checksum");
        payload.extend_from_slice(&ip[20..]);
    }
    let ip = &frags[0][14..];
    let addr = |at: usize| u32::from_be_bytes([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
    let pseudo = pseudo_sum_ipv4(addr(12), addr(16), 17, payload.len() as u32);
    assert_eq!(
        l4_checksum(pseudo, &payload),
        0,
        "UDP checksum over the datagram"
    );
}

fn snat_table() -> (Arc<ConnTable>, CtTracker, CtTracker) {
    let table = Arc::new(ConnTable::new(CtConfig {
        seed: Some(1),
        ..CtConfig::default()
    }));
    let a = CtAddr::from_v4(Ipv4Addr::new(192, 168, 0, 1));
    let commit = CtTracker::new(
        table.clone(),
        CtExec {
            zone: 1,
            commit: true,
            nat: Some(CtNat {
                kind: Some(NatKind::Src),
                range: Some(NatRange {
                    family: Family::V4,
                    min: a,
                    max: a,
                    ports: Some((1000, 1000)),
                }),
                ..CtNat::default()
            }),
            ..CtExec::default()
        },
    );
    let back = CtTracker::new(
        table.clone(),
        CtExec {
            zone: 1,
            nat: Some(CtNat::default()),
            ..CtExec::default()
        },
    );
    (table, commit, back)
}

/// Runs `frames` through `t` one call each: the frames it released (and their keys).
fn through(t: &CtTracker, frames: &[Vec<u8>]) -> Vec<(Vec<u8>, FlowKey)> {
    let mut pool = PacketPool::new(16);
    let mut out = Vec::new();
    for f in frames {
        let id = pool.alloc_with(f).unwrap();
        let (data, meta) = pool.data_and_meta_mut(id);
        parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
        let mut drops = [None];
        let mut frags = Fragments::default();
        t.track(&mut pool, &[id], SEC, &mut drops, &mut frags);
        assert_eq!(drops[0], None);
        if frags.held.is_empty() {
            out.push((pool.data(id).to_vec(), pool.meta(id).key));
        }
        pool.free(id);
        for (p, drop) in frags.released {
            assert_eq!(drop, None);
            out.push((pool.data(p).to_vec(), pool.meta(p).key));
            pool.free(p);
        }
    }
    out
}

#[test]
fn nat_translates_every_fragment_and_the_reply_comes_back() {
    let (table, commit, back) = snat_table();
    let whole = udp4(3000, 0x4242);
    let frags = fragments_v4(&whole, 1480);
    let out = through(
        &commit,
        &[frags[1].clone(), frags[2].clone(), frags[0].clone()],
    );
    assert_eq!(out.len(), 3, "all released at the last one");
    let ident = &out[0].0[18..20];
    assert_ne!(ident, &whole[18..20], "DF clear: a new identifier");
    for (i, (f, key)) in out.iter().enumerate() {
        assert_eq!(&f[26..30], &[192, 168, 0, 1], "fragment {i}: source");
        assert_eq!(&f[18..20], ident, "fragment {i}: one identifier");
        assert_eq!(key.nw_src, 0xc0a8_0001);
        assert_eq!(
            key.ct_state,
            ct_state::TRACKED | ct_state::NEW | ct_state::SRC_NAT
        );
        assert_eq!(key.ct_zone, 1);
        let offset = u16::from_be_bytes([f[20], f[21]]) & 0x1fff;
        assert_eq!(offset != 0, i > 0, "offsets in order");
    }
    assert_eq!(&out[0].0[34..36], &1000u16.to_be_bytes(), "source port");
    assert_eq!(out[0].1.tp_src, 1000);
    let sent: Vec<Vec<u8>> = out.into_iter().map(|(f, _)| f).collect();
    check_fragments_v4(&sent);
    assert_eq!(table.len(), 1);
    // The reply, fragmented too, to 192.168.0.1:1000: back to 10.0.0.1:5000.
    let mut reply = udp4(2000, 0x99);
    reply[26..30].copy_from_slice(&[10, 0, 0, 2]);
    reply[30..34].copy_from_slice(&[192, 168, 0, 1]);
    reply[34..36].copy_from_slice(&53u16.to_be_bytes());
    reply[36..38].copy_from_slice(&1000u16.to_be_bytes());
    set_ip_checksum(&mut reply[14..]);
    reply[40..42].copy_from_slice(&[0, 0]);
    let pseudo = pseudo_sum_ipv4(0x0a00_0002, 0xc0a8_0001, 17, (reply.len() - 34) as u32);
    let c = l4_checksum(pseudo, &reply[34..]);
    reply[40..42].copy_from_slice(&c.to_be_bytes());
    let out = through(&back, &fragments_v4(&reply, 1480));
    assert_eq!(out.len(), 2);
    for (f, key) in &out {
        assert_eq!(&f[30..34], &[10, 0, 0, 1]);
        assert_eq!(
            key.ct_state,
            ct_state::TRACKED | ct_state::ESTABLISHED | ct_state::REPLY | ct_state::DST_NAT
        );
    }
    assert_eq!(&out[0].0[36..38], &5000u16.to_be_bytes());
    check_fragments_v4(&out.into_iter().map(|(f, _)| f).collect::<Vec<_>>());
}

#[test]
fn ipv6_nat_fixes_the_first_fragments_checksum() {
    let table = Arc::new(ConnTable::new(CtConfig::default()));
    let outside: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let t = CtTracker::new(
        table,
        CtExec {
            commit: true,
            nat: Some(CtNat {
                kind: Some(NatKind::Src),
                range: Some(NatRange {
                    family: Family::V6,
                    min: CtAddr::from_v6(outside),
                    max: CtAddr::from_v6(outside),
                    ports: Some((2000, 2000)),
                }),
                ..CtNat::default()
            }),
            ..CtExec::default()
        },
    );
    let frags = fragments_v6(&udp6(3000), 1448, 77);
    let out = through(&t, &frags);
    assert_eq!(out.len(), 3);
    let mut payload = Vec::new();
    for (f, key) in &out {
        assert_eq!(&f[22..38], &outside.octets());
        assert_eq!(key.ipv6_src, outside.octets());
        assert_eq!(
            key.ct_state,
            ct_state::TRACKED | ct_state::NEW | ct_state::SRC_NAT
        );
        payload.extend_from_slice(&f[62..]);
    }
    assert_eq!(&payload[..2], &2000u16.to_be_bytes());
    let dst: [u8; 16] = out[0].0[38..54].try_into().unwrap();
    let pseudo = pseudo_sum_ipv6(&outside.octets(), &dst, 17, payload.len() as u32);
    assert_eq!(
        l4_checksum(pseudo, &payload),
        0,
        "UDP checksum over the datagram"
    );
}

#[test]
fn refused_and_disabled_fragments_are_invalid() {
    let table = Arc::new(ConnTable::new(CtConfig::default()));
    let t = CtTracker::new(
        table.clone(),
        CtExec {
            commit: true,
            ..CtExec::default()
        },
    );
    let frags = fragments_v4(&udp4(3000, 1), 1480);
    table.ipf().set_enabled(false, false);
    let out = through(&t, &frags);
    assert_eq!(out.len(), 3, "not held");
    for (_, key) in &out {
        assert_eq!(key.ct_state, ct_state::TRACKED | ct_state::INVALID);
    }
    assert_eq!(table.len(), 0);
    assert!(!table.ipf().status().v4.enabled);
    // Enabled again, a fragment held past its time is dropped by the table's sweep.
    table.ipf().set_enabled(false, true);
    assert_eq!(through(&t, &frags[..1]).len(), 0);
    table.sweep(SEC + LIST_TIMEOUT_NS + 1, 16);
    assert_eq!(table.ipf().status().v4.get(IpfCounter::Expired), 1);
}

#[test]
fn status_prints_as_ovs() {
    // `ovs-appctl dpctl/ipf-get-status` of Open vSwitch 3.1 on a fresh netdev datapath.
    const OVS: &str = "        Fragmentation Module Status\n        ---------------------------\n        v4 enabled: 1\n        v6 enabled: 1\n        max num frags (v4/v6): 1000\n        num frag: 0\n        min v4 frag size: 1200\n        v4 frags accepted: 0\n        v4 frags completed: 0\n        v4 frags expired: 0\n        v4 frags too small: 0\n        v4 frags overlapped: 0\n        v4 frags purged: 0\n        min v6 frag size: 1280\n        v6 frags accepted: 0\n        v6 frags completed: 0\n        v6 frags expired: 0\n        v6 frags too small: 0\n        v6 frags overlapped: 0\n        v6 frags purged: 0\n";
    let text = Ipf::new().status().to_string();
    assert!(text.starts_with(OVS), "{text}");
    assert_eq!(
        &text[OVS.len()..],
        "        v4 frags refused, table full: 0\n        v4 frags refused, list full: 0\n        v4 frags invalid: 0\n        v4 datagrams too big: 0\n        v6 frags refused, table full: 0\n        v6 frags refused, list full: 0\n        v6 frags invalid: 0\n        v6 datagrams too big: 0\n"
    );
}

#[test]
fn a_datagram_the_table_refuses_drops_every_fragment() {
    let table = Arc::new(ConnTable::new(CtConfig {
        max_conns: 0,
        ..CtConfig::default()
    }));
    let t = CtTracker::new(
        table.clone(),
        CtExec {
            commit: true,
            ..CtExec::default()
        },
    );
    let mut pool = PacketPool::new(8);
    let frags = fragments_v4(&udp4(3000, 5), 1480);
    let mut released = Vec::new();
    for f in &frags {
        let id = pool.alloc_with(f).unwrap();
        let (data, meta) = pool.data_and_meta_mut(id);
        parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
        let (mut drops, mut out) = ([None], Fragments::default());
        t.track(&mut pool, &[id], SEC, &mut drops, &mut out);
        assert_eq!((out.held.as_slice(), drops[0]), (&[0u16][..], None));
        pool.free(id);
        released.extend(out.released);
    }
    assert_eq!(released.len(), 3);
    for (p, drop) in released {
        assert_eq!(drop, Some(pipeline::ExecDrop::CtRefused));
        assert_eq!(pool.meta(p).key.ct_state, ct_state::TRACKED | ct_state::NEW);
        pool.free(p);
    }
    assert_eq!((table.len(), table.stats().events.table_full), (0, 1));
    assert_eq!(pool.available(), 8);
}
