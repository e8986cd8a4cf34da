//! NAT in the table: tuple choice without collisions, exhaustion, reverse translation, ICMP
//! errors, IPv6, the forwarding entries of the two-shard design under random traffic and
//! under threads.
// Tests stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use conntrack::{
    ConnKey, ConnTable, CtAddr, CtConfig, CtEvent, CtExec, CtNat, CtPacket, Family, NatKind,
    NatRange,
};
use pipeline::flowkey::ct_state::{
    DST_NAT, ESTABLISHED as EST, NEW, RELATED as REL, REPLY as RPL, SRC_NAT, TRACKED as TRK,
};

fn range(family: Family, min: CtAddr, max: CtAddr, ports: Option<(u16, u16)>) -> NatRange {
    NatRange {
        family,
        min,
        max,
        ports,
    }
}

fn snat(addr: CtAddr, ports: Option<(u16, u16)>) -> CtNat {
    CtNat {
        kind: Some(NatKind::Src),
        range: Some(range(family_of(addr), addr, addr, ports)),
        ..CtNat::default()
    }
}

fn commit(zone: u16, nat: CtNat) -> CtExec {
    CtExec {
        zone,
        commit: true,
        nat: Some(nat),
        ..CtExec::default()
    }
}

/// A later `ct(nat)`: applies the connection's translation.
fn apply(zone: u16) -> CtExec {
    CtExec {
        zone,
        nat: Some(CtNat::default()),
        ..CtExec::default()
    }
}

fn seeded() -> ConnTable {
    ConnTable::new(CtConfig {
        seed: Some(42),
        ..CtConfig::default()
    })
}

/// The packet `p` as the translation says it leaves (addresses and ports of `to`).
fn translated(p: &CtPacket, to: &ConnKey) -> CtPacket {
    CtPacket {
        src: to.src,
        dst: to.dst,
        sport: to.sport,
        dport: to.dport,
        ..*p
    }
}

fn reverse(p: &CtPacket) -> CtPacket {
    CtPacket {
        src: p.dst,
        dst: p.src,
        sport: p.dport,
        dport: p.sport,
        ..*p
    }
}

#[test]
fn snat_gives_every_connection_its_own_port_then_refuses() {
    let t = seeded();
    let outside = v4(192, 168, 0, 1);
    let server = v4(192, 168, 0, 2);
    let nat = snat(outside, Some((1000, 1099)));
    let mut ports = HashSet::new();
    // 100 clients with the same source port: 100 ports, all different, all in range.
    for i in 0..100u8 {
        let p = udp(v4(10, 0, 1, i), 40000, server, 53);
        let out = t.execute(&p, &commit(1, nat), 0);
        assert_eq!(out.event, CtEvent::Committed);
        assert_eq!(out.state, TRK | NEW | SRC_NAT);
        let to = out.nat.unwrap().to;
        assert_eq!((to.src, to.dst, to.dport), (outside, server, 53));
        assert!((1000..=1099).contains(&to.sport), "{to:?}");
        assert!(ports.insert(to.sport), "port {} twice", to.sport);
    }
    // The 101st finds nothing free: refused and counted, nothing stored.
    let p = udp(v4(10, 0, 2, 1), 40000, server, 53);
    let out = t.execute(&p, &commit(1, nat), 0);
    assert_eq!(
        (out.state, out.event, out.nat),
        (TRK | NEW, CtEvent::NatExhausted, None)
    );
    assert_eq!(t.stats().events.nat_exhausted, 1);
    assert_eq!(t.len(), 100);
    // The same server port of another protocol, or another server, is free again.
    let other = udp(v4(10, 0, 2, 1), 40000, v4(192, 168, 0, 3), 53);
    assert_eq!(
        t.execute(&other, &commit(1, nat), 0).event,
        CtEvent::Committed
    );
    t.check_invariants().unwrap();
}

#[test]
fn the_source_port_is_kept_when_free_and_moves_when_taken() {
    let t = seeded();
    let outside = v4(192, 168, 0, 1);
    let server = v4(192, 168, 0, 2);
    let nat = snat(outside, None);
    let a = udp(v4(10, 0, 0, 1), 40000, server, 53);
    let b = udp(v4(10, 0, 0, 3), 40000, server, 53);
    let low = udp(v4(10, 0, 0, 3), 700, server, 53);
    let to = |p| t.execute(p, &commit(0, nat), 0).nat.unwrap().to;
    assert_eq!(to(&a).sport, 40000);
    // OVS walks up from the port taken.
    assert_eq!(to(&b).sport, 40001);
    assert_eq!(to(&low).sport, 700);
    t.check_invariants().unwrap();
}

#[test]
fn replies_are_translated_back_and_ct_nat_applies_only_with_nat() {
    let t = seeded();
    let (client, outside, server) = (v4(10, 0, 0, 1), v4(192, 168, 0, 1), v4(192, 168, 0, 2));
    let mut tcp = Tcp::new(client, 40000, server, 80);
    let syn = tcp.c2s(conntrack::tcp_flags::SYN, 0);
    let out = t.execute(&syn, &commit(1, snat(outside, Some((1000, 1001)))), 0);
    let nat = out.nat.unwrap();
    assert_eq!(nat.kind, NatKind::Src);
    let wire = translated(&syn, &nat.to);
    assert_eq!(wire.src, outside);
    // The server answers the translated tuple: +est+rpl, +dnat, back to the client.
    let mut synack = tcp.s2c(conntrack::tcp_flags::SYN | conntrack::tcp_flags::ACK, 0);
    (synack.dst, synack.dport) = (wire.src, wire.sport);
    let out = t.execute(&synack, &apply(1), 0);
    assert_eq!(out.state, TRK | EST | RPL | DST_NAT);
    let back = out.nat.unwrap();
    assert_eq!(
        (back.kind, back.to.dst, back.to.dport),
        (NatKind::Dst, client, 40000)
    );
    assert_eq!((back.to.src, back.to.sport), (server, 80));
    // Without `nat` in the action the packet is tracked, not translated.
    let ack = tcp.c2s(conntrack::tcp_flags::ACK, 0);
    let plain = CtExec {
        zone: 1,
        ..CtExec::default()
    };
    let out = t.execute(&ack, &plain, 0);
    assert_eq!((out.state, out.nat), (TRK | EST, None));
    let out = t.execute(&ack, &apply(1), 0);
    assert_eq!(out.state, TRK | EST | SRC_NAT);
    // The dump shows the translated reply tuple.
    let e = t.get(&out.orig.unwrap(), 0).unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "tcp,orig=(src=10.0.0.1,dst=192.168.0.2,sport=40000,dport=80),reply=(src=192.168.0.2,dst=192.168.0.1,sport=80,dport={}),zone=1,protoinfo=(state=ESTABLISHED)",
            wire.sport
        )
    );
    // Found by the reply key too (through a forward when it lives in another shard).
    assert!(t.get(&e.reply, 0).is_some());
    t.check_invariants().unwrap();
}

#[test]
fn dnat_forwards_a_port_and_icmp_errors_are_related() {
    let t = seeded();
    let (client, vip, server) = (v4(192, 168, 0, 2), v4(192, 168, 0, 1), v4(10, 0, 0, 1));
    let nat = CtNat {
        kind: Some(NatKind::Dst),
        range: Some(range(Family::V4, server, server, Some((80, 80)))),
        ..CtNat::default()
    };
    let p = udp(client, 5353, vip, 8080);
    let out = t.execute(&p, &commit(0, nat), 0);
    assert_eq!(out.state, TRK | NEW | DST_NAT);
    let to = out.nat.unwrap().to;
    assert_eq!(
        (to.src, to.sport, to.dst, to.dport),
        (client, 5353, server, 80)
    );
    let inside = translated(&p, &to);
    // The server's answer goes back as from the VIP.
    let out = t.execute(&reverse(&inside), &apply(0), 0);
    assert_eq!(out.state, TRK | EST | RPL | SRC_NAT);
    let to = out.nat.unwrap().to;
    assert_eq!(
        (to.src, to.sport, to.dst, to.dport),
        (vip, 8080, client, 5353)
    );
    // The server's port unreachable, quoting the translated datagram: related, reply
    // direction, and its quoted header goes back to what the client sent.
    let err = icmp_error(server, 3, 3, &inside);
    let out = t.execute(&err, &apply(0), 0);
    assert_eq!(out.state, TRK | REL | RPL | SRC_NAT);
    let n = out.nat.unwrap();
    assert!(n.related);
    assert_eq!(n.to.reverse().src, client);
    assert_eq!((n.to.reverse().dst, n.to.reverse().dport), (vip, 8080));
    t.check_invariants().unwrap();
}

#[test]
fn ipv6_snat_over_an_address_range() {
    let t = seeded();
    let (lo, hi) = (v6("2001:db8::10"), v6("2001:db8::13"));
    let nat = CtNat {
        kind: Some(NatKind::Src),
        range: Some(range(Family::V6, lo, hi, Some((2000, 2001)))),
        ..CtNat::default()
    };
    let server = v6("2001:db8:1::1");
    let mut seen = HashSet::new();
    for i in 0..8u16 {
        let p = udp(v6(&format!("fd00::{}", i + 1)), 40000, server, 53);
        let out = t.execute(&p, &commit(0, nat), 0);
        if out.event != CtEvent::Committed {
            // One address of the range per connection (as OVS): only its ports are walked.
            assert_eq!(out.event, CtEvent::NatExhausted);
            continue;
        }
        let to = out.nat.unwrap().to;
        assert!(lo <= to.src && to.src <= hi && (2000..=2001).contains(&to.sport));
        assert!(seen.insert((to.src, to.sport)));
        let back = t.execute(&reverse(&translated(&p, &to)), &apply(0), 0);
        assert_eq!(back.nat.unwrap().to.dst, p.src);
    }
    assert!(seen.len() >= 2);
    t.check_invariants().unwrap();
}

#[test]
fn icmp_echo_ids_are_translated_like_ports() {
    let t = seeded();
    let (outside, server) = (v4(192, 168, 0, 1), v4(192, 168, 0, 2));
    let nat = snat(outside, None);
    let a = icmp(v4(10, 0, 0, 1), server, 8, 0, 7);
    let b = icmp(v4(10, 0, 0, 3), server, 8, 0, 7);
    let ta = t.execute(&a, &commit(0, nat), 0).nat.unwrap().to;
    let tb = t.execute(&b, &commit(0, nat), 0).nat.unwrap().to;
    assert_eq!((ta.sport, ta.dport), (7, 7));
    assert_eq!((tb.sport, tb.dport), (8, 8));
    // The reply to the second: id 8 back to 7.
    let reply = icmp(server, outside, 0, 0, 8);
    let out = t.execute(&reply, &apply(0), 0);
    assert_eq!(out.state, TRK | EST | RPL | DST_NAT);
    assert_eq!(
        (out.nat.unwrap().to.dst, out.nat.unwrap().to.sport),
        (v4(10, 0, 0, 3), 7)
    );
    t.check_invariants().unwrap();
}

#[test]
fn a_plain_commit_may_not_take_a_translated_tuple() {
    let t = seeded();
    let (outside, server) = (v4(192, 168, 0, 1), v4(192, 168, 0, 2));
    let p = udp(v4(10, 0, 0, 1), 40000, server, 53);
    let to = t
        .execute(&p, &commit(0, snat(outside, Some((1000, 1000)))), 0)
        .nat
        .unwrap()
        .to;
    // A packet from the outside address itself, with the translated port, whose reply key
    // would be the NAT'ed connection's.
    let spoof = udp(outside, to.sport, server, 53);
    let out = t.process(&spoof, 0, true, 0);
    assert_eq!((out.state, out.event), (TRK | NEW, CtEvent::ReplyTaken));
    assert_eq!(t.stats().events.reply_taken, 1);
    t.check_invariants().unwrap();
}

#[test]
fn persistent_keeps_a_clients_address() {
    let t = seeded();
    let nat = CtNat {
        kind: Some(NatKind::Src),
        range: Some(range(
            Family::V4,
            v4(192, 168, 1, 0),
            v4(192, 168, 1, 255),
            None,
        )),
        persistent: true,
        ..CtNat::default()
    };
    let client = v4(10, 0, 0, 1);
    let addrs: HashSet<CtAddr> = (0..20u16)
        .map(|i| {
            let p = udp(client, 30000 + i, v4(8, 8, 8, (i % 4) as u8 + 1), 53);
            t.execute(&p, &commit(0, nat), 0).nat.unwrap().to.src
        })
        .collect();
    assert_eq!(addrs.len(), 1);
}

/// Random traffic with random NAT actions: the forwards, the uniqueness of every key and
/// the counts hold throughout (`check_invariants`), expiry, flush and sweep included.
#[test]
fn random_nat_traffic_keeps_the_two_shard_invariants() {
    let hosts = [
        v4(10, 0, 0, 1),
        v4(10, 0, 0, 2),
        v4(192, 168, 0, 1),
        v4(192, 168, 0, 2),
    ];
    let mut r = 0x1234_5678_9abc_def1u64;
    let mut next = move |n: u64| {
        r ^= r >> 12;
        r ^= r << 25;
        r ^= r >> 27;
        r.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let t = ConnTable::new(CtConfig {
        max_conns: 200,
        seed: Some(7),
        ..CtConfig::default()
    });
    let mut now = 0;
    for step in 0..30_000u32 {
        now += next(2 * SEC);
        let (src, dst) = (hosts[next(4) as usize], hosts[next(4) as usize]);
        let ports = [53u16, 80, 1000, 1001, 40000];
        let mut p = match next(3) {
            0 => udp(src, ports[next(5) as usize], dst, ports[next(5) as usize]),
            1 => icmp(src, dst, [8, 0][next(2) as usize], 0, next(3) as u16 + 1),
            _ => {
                let seg = udp(src, ports[next(5) as usize], dst, ports[next(5) as usize]);
                CtPacket {
                    proto: 6,
                    tcp: conntrack::TcpSegment {
                        flags: [2u16, 0x12, 0x10, 0x11, 4][next(5) as usize],
                        seq: 1000,
                        ack: 1,
                        window: 65535,
                        ..Default::default()
                    },
                    ..seg
                }
            }
        };
        if next(8) == 0 {
            p = icmp_error(v4(10, 9, 9, 9), 3, 3, &reverse(&p));
        }
        let a = hosts[next(4) as usize];
        let nat = match next(4) {
            0 => None,
            1 => Some(CtNat::default()),
            2 => Some(snat(a, Some((1000, 1000 + next(3) as u16)))),
            _ => Some(CtNat {
                kind: Some(NatKind::Dst),
                range: Some(range(
                    Family::V4,
                    a,
                    a,
                    [None, Some((80, 81))][next(2) as usize],
                )),
                ..CtNat::default()
            }),
        };
        let exec = CtExec {
            zone: next(2) as u16,
            commit: next(2) == 0,
            nat,
            ..CtExec::default()
        };
        let out = t.execute(&p, &exec, now);
        assert!(out.has(TRK));
        if out.event == CtEvent::Committed || out.has(EST) {
            let o = out.orig.unwrap();
            assert!(t.get(&o, now).is_some());
        }
        match next(200) {
            0 => {
                t.sweep(now, next(30) as usize);
            }
            1 => {
                t.flush(Some(exec.zone));
            }
            2 => now += 100_000 * SEC,
            _ => {}
        }
        if step % 250 == 0 {
            t.check_invariants().unwrap();
            for e in t.entries(None, now) {
                assert!(t.get(&e.orig, now).is_some() && t.get(&e.reply, now).is_some());
            }
        }
    }
    t.check_invariants().unwrap();
    let ev = t.stats().events;
    assert!(ev.committed > 500 && ev.nat_exhausted > 0, "{ev:?}");
    t.flush(None);
    assert!(t.is_empty());
    t.check_invariants().unwrap();
}

/// Threads committing NAT'ed connections whose two keys are in different shards, answering
/// them and sweeping, all at once: no deadlock (two locks are only ever taken in order), no
/// tuple given twice.
#[test]
fn threads_commit_nat_connections_at_once() {
    let t = Arc::new(seeded());
    let outside = v4(192, 168, 0, 1);
    let server = v4(192, 168, 0, 2);
    let threads: Vec<_> = (0..4u8)
        .map(|n| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..500u16 {
                    let p = udp(v4(10, n, (i >> 8) as u8, i as u8), 40000, server, 53);
                    let out = t.execute(&p, &commit(0, snat(outside, Some((1000, 2999)))), 0);
                    if let Some(n) = out.nat {
                        let back = t.execute(&reverse(&translated(&p, &n.to)), &apply(0), 0);
                        assert!(back.has(EST | RPL));
                        assert_eq!(back.nat.unwrap().to.dst, p.src);
                        mine.push(n.to.sport);
                    }
                    if i % 50 == 0 {
                        t.sweep(1, 10);
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = HashSet::new();
    for th in threads {
        for port in th.join().unwrap() {
            assert!(all.insert(port), "port {port} given twice");
        }
    }
    t.check_invariants().unwrap();
    assert!(all.len() > 1500, "{}", all.len());
}
