//! The traffic generator against the real parser and a real switch: every frame parses, flows
//! give distinct keys, checksums verify (recomputed here independently), sizes are exact,
//! bad specs name their key, and generated traffic crosses a switch byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;

use datapath::switch::Switch;
use flowcache::ClassifyConfig;
use openflow::normal::{MacTable, NormalPort, VlanMode, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use openflow::Bridge;
use openflow::BridgeUpcall;
use pipeline::parse::parse_packet;
use pipeline::{FlowKey, PacketMeta};
use ports::generator::traffic::{parse_profile, Generator, Protocol, TrafficError, TrafficProfile};

/// Ones'-complement sum of 16-bit big-endian words, folded; 0xffff means "verifies".
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(p);
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = 0;
    for w in bytes.chunks(2) {
        sum += u32::from(w[0]) << 8 | u32::from(w[1]);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Checks the IPv4 header checksum and the L4 checksum of `f` from scratch.
fn assert_checksums(f: &[u8], proto: Protocol) {
    let ip = &f[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(ones_sum(&[ip]), 0xffff, "ipv4 header checksum");
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    assert_eq!(total, f.len() - 14);
    let l4 = &f[34..];
    match proto {
        Protocol::Icmp => {
            assert_eq!(ip[9], 1);
            assert_eq!(ones_sum(&[l4]), 0xffff, "icmp checksum");
        }
        Protocol::Udp | Protocol::Tcp => {
            let len = (l4.len() as u16).to_be_bytes();
            let pseudo = [&ip[12..20], &[0, ip[9]], &len[..]].concat();
            assert_eq!(ones_sum(&[&pseudo, l4]), 0xffff, "l4 checksum");
            if proto == Protocol::Udp {
                assert_eq!(ip[9], 17);
                assert_eq!(u16::from_be_bytes([l4[4], l4[5]]) as usize, l4.len());
                assert_ne!(&l4[6..8], &[0, 0], "udp checksum present");
            } else {
                assert_eq!(ip[9], 6);
            }
        }
    }
}

fn key_of(f: &[u8]) -> FlowKey {
    let mut meta = PacketMeta::default();
    parse_packet(f, &mut meta).unwrap_or_else(|e| panic!("{e:?}: {f:02x?}"));
    assert_ne!(meta.l4_ofs, pipeline::buffer::NO_OFFSET);
    meta.key
}

#[test]
fn every_frame_parses_with_distinct_keys_and_valid_checksums() {
    for proto in [Protocol::Udp, Protocol::Tcp, Protocol::Icmp] {
        for (size, flows) in [(60, 1), (124, 1000), (1514, 300), (61, 5000)] {
            let p = TrafficProfile {
                frame_size: size,
                flows,
                protocol: proto,
                ..TrafficProfile::default()
            };
            let g = Generator::new(p.clone()).unwrap();
            let mut keys = HashSet::new();
            let mut tuples = HashSet::new();
            for i in 0..u64::from(flows) {
                let f = g.frame(i);
                assert_eq!(f.len(), size);
                assert_checksums(f, proto);
                let k = key_of(f);
                assert_eq!(k.dl_type, 0x0800);
                assert_eq!(k.dl_src, p.src_mac);
                assert_eq!(k.dl_dst, p.dst_mac);
                assert_eq!(k.nw_dst, u32::from(p.dst_ip));
                let (src_ip, sport) = p.flow_fields(i as u32);
                assert_eq!(k.nw_src, u32::from(src_ip));
                match proto {
                    Protocol::Icmp => {
                        assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (1, 8, 0));
                        assert_eq!(u16::from_be_bytes([f[38], f[39]]), sport);
                    }
                    _ => assert_eq!((k.tp_src, k.tp_dst), (sport, p.dst_port)),
                }
                keys.insert(k);
                tuples.insert((k.nw_src, k.nw_dst, k.nw_proto, k.tp_src, k.tp_dst));
                // Frames of the next round are the same templates.
                assert_eq!(g.frame(i + u64::from(flows)), f);
            }
            assert_eq!(keys.len(), flows as usize, "{proto:?} {size} {flows}");
            assert_eq!(tuples.len(), flows as usize, "{proto:?} {size} {flows}");
        }
    }
}

#[test]
fn wide_flow_counts_stay_distinct() {
    // Past 256 flows the source port turns; past 65536 the ICMP address leaves the /16.
    let p = parse_profile("flows=70000").unwrap();
    let g = Generator::new(p).unwrap();
    let tuples: HashSet<_> = (0..70_000)
        .map(|i| {
            let k = key_of(g.frame(i));
            (k.nw_src, k.tp_src)
        })
        .collect();
    assert_eq!(tuples.len(), 70_000);
    let g = Generator::new(parse_profile("flows=70000,proto=icmp").unwrap()).unwrap();
    let srcs: HashSet<_> = (0..70_000).map(|i| key_of(g.frame(i)).nw_src).collect();
    assert_eq!(srcs.len(), 70_000);
}

#[test]
fn spec_sizes_are_on_the_wire() {
    for (spec, len) in [
        ("size=64", 60),
        ("size=128,proto=tcp", 124),
        ("size=1518,proto=icmp", 1514),
    ] {
        let p = parse_profile(spec).unwrap();
        assert_eq!(p.frame_size, len, "{spec}");
        let g = Generator::new(p.clone()).unwrap();
        assert_eq!(g.frame(0).len(), len, "{spec}");
        assert_checksums(g.frame(0), p.protocol);
    }
    let p = parse_profile("size=64,flows=10000,proto=udp").unwrap();
    assert_eq!(
        (p.frame_size, p.flows, p.protocol),
        (60, 10_000, Protocol::Udp)
    );
}

#[test]
fn bad_specs_name_the_key() {
    let key_of_err = |e: &TrafficError| -> String {
        match e {
            TrafficError::Invalid { field, .. } => field.to_string(),
            TrafficError::UnknownKey { key }
            | TrafficError::DuplicateKey { key }
            | TrafficError::BadValue { key, .. }
            | TrafficError::OutOfRange { key, .. } => key.clone(),
        }
    };
    type IsKind = fn(&TrafficError) -> bool;
    let cases: [(&str, &str, IsKind); 14] = [
        ("colour=red", "colour", |e| {
            matches!(e, TrafficError::UnknownKey { .. })
        }),
        ("size=63", "size", |e| {
            matches!(e, TrafficError::OutOfRange { .. })
        }),
        ("size=1519", "size", |e| {
            matches!(e, TrafficError::OutOfRange { .. })
        }),
        ("size=big", "size", |e| {
            matches!(e, TrafficError::BadValue { .. })
        }),
        ("flows=0", "flows", |e| {
            matches!(e, TrafficError::OutOfRange { .. })
        }),
        ("flows=-3", "flows", |e| {
            matches!(e, TrafficError::BadValue { .. })
        }),
        ("flows=16777217", "flows", |e| {
            matches!(e, TrafficError::OutOfRange { .. })
        }),
        ("flows=16777216,size=1518", "flows", |e| {
            matches!(e, TrafficError::Invalid { .. })
        }),
        ("proto=sctp", "proto", |e| {
            matches!(e, TrafficError::BadValue { .. })
        }),
        ("src-ip=10.0.0", "src-ip", |e| {
            matches!(e, TrafficError::BadValue { .. })
        }),
        ("dst-port=65536", "dst-port", |e| {
            matches!(e, TrafficError::OutOfRange { .. })
        }),
        ("src-mac=01:00:5e:00:00:01", "src-mac", |e| {
            matches!(e, TrafficError::Invalid { .. })
        }),
        ("size=64,size=128", "size", |e| {
            matches!(e, TrafficError::DuplicateKey { .. })
        }),
        ("flows", "flows", |e| {
            matches!(e, TrafficError::BadValue { .. })
        }),
    ];
    for (spec, key, kind) in cases {
        let e = parse_profile(spec).expect_err(spec);
        assert_eq!(key_of_err(&e), key, "{spec}: {e}");
        assert!(kind(&e), "{spec}: {e:?}");
        assert!(e.to_string().starts_with(key), "{spec}: {e}");
    }
}

/// Sends 10 000 frames of 1000 UDP flows from port 1 in batches of 32 through a switch with
/// `rules`, checks that every frame leaves port 2 unchanged and in order, and returns the
/// classifier's counters.
fn cross_switch(rules: &str) -> flowcache::ClassifyStats {
    let ports: Vec<NormalPort> = [1, 2]
        .into_iter()
        .map(|ofport| NormalPort {
            ofport,
            vlan: VlanMode::Access(0),
            flood: true,
        })
        .collect();
    let bridge = Bridge::new(ports, MacTable::new(DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES));
    bridge.add_flows_text(rules, 0).unwrap();
    let upcall = BridgeUpcall::new(Arc::new(bridge));
    let mut switch = Switch::new(
        &[("p1".to_string(), 1), ("p2".to_string(), 2)],
        upcall,
        ClassifyConfig::default(),
    )
    .unwrap();

    let mut gen = Generator::new(parse_profile("size=64,flows=1000").unwrap()).unwrap();
    let check = Generator::new(gen.profile().clone()).unwrap();
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut mismatched = 0u64;
    let mut now = 1_000u64;
    while sent < 10_000 {
        let n = 32.min(10_000 - sent) as usize;
        switch.receive(0, gen.next_burst(n).map(|f| (f, now)), now);
        switch.drain_tx(1, |data, _| {
            if data != check.frame(received) {
                mismatched += 1;
            }
            received += 1;
        });
        sent += n as u64;
        now += 1_000;
    }
    assert_eq!(received, 10_000);
    assert_eq!(mismatched, 0);
    assert_eq!(switch.ports()[0].stats.rx_packets, 10_000);
    assert_eq!(switch.ports()[1].stats.tx_packets, 10_000);
    assert_eq!(switch.ports()[1].stats.tx_bytes, 600_000);
    switch.drain_tx(0, |_, _| panic!("nothing goes back out of port 1"));
    assert_eq!(switch.free_buffers(), 8192);
    let stats = *switch.classifier().unwrap().stats();
    assert_eq!(stats.packets, 10_000);
    stats
}

#[test]
fn generated_traffic_crosses_a_switch_unchanged() {
    // A rule on in_port alone leaves the 5-tuple wildcarded: the 1000 flows share one
    // megaflow, so one upcall serves them all.
    let s = cross_switch("in_port=1,actions=output:2\n");
    assert_eq!((s.upcalls, s.megaflows_installed), (1, 1), "{s:?}");
    assert_eq!(s.emc_hits + s.megaflow_hits, 9_999, "{s:?}");
}

#[test]
fn each_generated_flow_is_one_upcall_under_exact_rules() {
    // Higher-priority rules that look at the source address and the source port (and never
    // match) un-wildcard both, so each of the 1000 flows is its own megaflow.
    let s = cross_switch(
        "priority=10,udp,nw_src=192.0.2.1,actions=drop\n\
         priority=10,udp,tp_src=9,actions=drop\n\
         priority=1,in_port=1,actions=output:2\n",
    );
    assert_eq!((s.upcalls, s.megaflows_installed), (1000, 1000), "{s:?}");
}
