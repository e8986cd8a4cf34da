//! The table as a whole: zones, limits, sweep, flush, two threads, and random traffic.
// Tests stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use conntrack::{
    tcp_flags as f, ConnTable, CtAddr, CtConfig, CtEvent, CtPacket, Family, IcmpHeader,
    QuotedHeader, TcpSegment,
};
use pipeline::flowkey::ct_state::{ESTABLISHED as EST, NEW, REPLY as RPL, TRACKED as TRK};

fn flow(i: u32) -> CtPacket {
    let [_, b, c, d] = i.to_be_bytes();
    udp(
        v4(10, b, c, d),
        1024 + (i % 50_000) as u16,
        v4(172, 16, 0, 1),
        53,
    )
}

fn reverse(p: &CtPacket) -> CtPacket {
    udp(p.dst, p.dport, p.src, p.sport)
}

#[test]
fn zones_are_separate_tables() {
    let t = ConnTable::default();
    let p = flow(1);
    t.process(&p, 1, true, 0);
    assert_eq!(t.process(&reverse(&p), 1, true, 0).state, TRK | EST | RPL);
    // The same packets in zone 2 know nothing of zone 1's connection.
    assert_eq!(t.process(&reverse(&p), 2, false, 0).state, TRK | NEW);
    assert_eq!(t.process(&p, 2, true, 0).state, TRK | NEW);
    assert_eq!((t.zone_count(1), t.zone_count(2), t.len()), (1, 1, 2));
    assert_eq!(t.flush(Some(1)), 1);
    assert_eq!((t.zone_count(1), t.zone_count(2), t.len()), (0, 1, 1));
    assert_eq!(t.process(&reverse(&p), 2, false, 0).state, TRK | EST | RPL);
    t.check_invariants().unwrap();
}

#[test]
fn timeouts_set_at_run_time_apply_from_the_next_packet() {
    const SEC: u64 = 1_000_000_000;
    let t = ConnTable::default();
    let mut short = t.timeouts(None);
    short.udp_first = 2;
    t.set_timeouts(Some(3), short);
    assert_eq!(t.timeouts(Some(3)).udp_first, 2);
    assert_eq!(
        t.timeouts(Some(4)).udp_first,
        60,
        "other zones keep the default"
    );
    let (a, b, c) = (flow(1), flow(2), flow(3));
    for (p, zone) in [(&a, 3), (&b, 0), (&c, 3)] {
        assert_eq!(t.process(p, zone, true, 0).event, CtEvent::Committed);
    }
    // Unreplied, zone 3's connections live 2 s; zone 0's 60 s.
    assert_eq!(
        t.process(&reverse(&c), 3, false, SEC).state,
        TRK | EST | RPL
    );
    assert_eq!(t.process(&reverse(&a), 3, false, 3 * SEC).state, TRK | NEW);
    assert_eq!(
        t.process(&reverse(&b), 0, false, 3 * SEC).state,
        TRK | EST | RPL
    );
    t.del_timeouts(3);
    assert_eq!(t.timeouts(Some(3)), t.timeouts(None));
    t.check_invariants().unwrap();
}

#[test]
fn the_global_limit_refuses_commits_but_not_traffic() {
    let t = ConnTable::new(CtConfig {
        max_conns: 3,
        ..CtConfig::default()
    });
    for i in 0..3 {
        assert_eq!(t.process(&flow(i), 0, true, 0).event, CtEvent::Committed);
    }
    let out = t.process(&flow(3), 0, true, 0);
    assert_eq!((out.state, out.event), (TRK | NEW, CtEvent::TableFull));
    assert_eq!(t.stats().events.table_full, 1);
    assert_eq!(t.len(), 3);
    // Established connections go on.
    assert_eq!(
        t.process(&reverse(&flow(0)), 0, true, 0).state,
        TRK | EST | RPL
    );
    // Room again after a flush or a raise.
    t.set_max_conns(4);
    assert_eq!(t.process(&flow(3), 0, true, 0).event, CtEvent::Committed);
    t.check_invariants().unwrap();
}

#[test]
fn zone_limits_and_the_default() {
    let t = ConnTable::default();
    t.set_zone_limit(5, Some(2));
    t.set_default_zone_limit(1);
    for i in 0..2 {
        assert_eq!(t.process(&flow(i), 5, true, 0).event, CtEvent::Committed);
    }
    assert_eq!(t.process(&flow(2), 5, true, 0).event, CtEvent::ZoneFull);
    // Zone 6 has the default limit of one.
    assert_eq!(t.process(&flow(2), 6, true, 0).event, CtEvent::Committed);
    assert_eq!(t.process(&flow(3), 6, true, 0).event, CtEvent::ZoneFull);
    // Zone 7 has its own limit of 0: unlimited.
    t.set_zone_limit(7, Some(0));
    for i in 0..5 {
        assert_eq!(t.process(&flow(i), 7, true, 0).event, CtEvent::Committed);
    }
    assert_eq!(t.stats().events.zone_full, 2);
    assert_eq!(
        t.process(&reverse(&flow(0)), 5, true, 0).state,
        TRK | EST | RPL
    );
    // Back to the default for zone 5: one, already exceeded; nothing is removed.
    t.set_zone_limit(5, None);
    assert_eq!(t.zone_limit(5), 1);
    assert_eq!(t.zone_count(5), 2);
    t.check_invariants().unwrap();
}

#[test]
fn sweep_expires_within_its_budget() {
    let t = ConnTable::default();
    for i in 0..1000 {
        t.process(&flow(i), 0, true, 0);
    }
    // Keep 10 alive with a reply at 50 s (udp_multiple: 30 s more).
    for i in 0..10 {
        t.process(&reverse(&flow(i)), 0, true, 50 * SEC);
    }
    assert_eq!(t.sweep(59 * SEC, 1000), 0, "nothing expired yet");
    let now = 61 * SEC;
    let mut swept = 0;
    let mut calls = 0;
    loop {
        let n = t.sweep(now, 64);
        assert!(n <= 64);
        swept += n;
        calls += 1;
        if n == 0 {
            break;
        }
    }
    assert_eq!(swept, 990);
    assert!(calls >= 990 / 64);
    assert_eq!(t.len(), 10);
    assert_eq!(t.stats().events.expired, 990);
    t.check_invariants().unwrap();
    // An expired connection is absent even before a sweep.
    assert_eq!(
        t.process(&reverse(&flow(0)), 0, false, 81 * SEC).state,
        TRK | NEW
    );
    assert_eq!(t.len(), 9, "the lookup removed it");
}

#[test]
fn two_threads_see_both_directions_of_one_connection() {
    let t = ConnTable::default();
    let mut c = Tcp::new(v4(10, 0, 0, 1), 40000, v4(10, 0, 0, 2), 80);
    t.process(&c.c2s(f::SYN, 0), 0, true, 0);
    t.process(&c.s2c(f::SYN | f::ACK, 0), 0, true, 0);
    t.process(&c.c2s(f::ACK, 0), 0, true, 0);
    std::thread::scope(|s| {
        let (t, c) = (&t, c);
        s.spawn(move || {
            let mut c = c;
            for i in 0..20_000u64 {
                let out = t.process(&c.c2s(f::ACK, 0), 0, true, i);
                assert_eq!(out.state, TRK | EST);
            }
        });
        s.spawn(move || {
            let mut c = c;
            for i in 0..20_000u64 {
                let out = t.process(&c.s2c(f::ACK, 0), 0, true, i);
                assert_eq!(out.state, TRK | EST | RPL);
            }
        });
        // Meanwhile, other connections come and go.
        s.spawn(move || {
            for i in 0..5_000 {
                t.process(&flow(i), 9, true, 0);
                t.sweep(100 * SEC, 8);
            }
        });
    });
    t.check_invariants().unwrap();
}

/// xorshift64*: enough randomness for a property test, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn random_packet(r: &mut Rng, hosts: &[CtAddr]) -> CtPacket {
    let (src, dst) = (r.pick(hosts), r.pick(hosts));
    let family = if family_of(src) == family_of(dst) {
        family_of(src)
    } else {
        Family::V4
    };
    let proto = r.pick(&[6u8, 6, 6, 17, 1, 58, 47, 132]);
    let port = |r: &mut Rng| r.pick(&[0u16, 80, 443, 40000, 40001]);
    let flag_sets = [
        f::SYN,
        f::SYN | f::ACK,
        f::ACK,
        f::ACK | f::PSH,
        f::FIN | f::ACK,
        f::RST,
        f::RST | f::ACK,
        f::SYN | f::FIN,
        0,
        r.below(64) as u16,
    ];
    let quoted = (r.below(2) == 0).then(|| QuotedHeader {
        src: r.pick(hosts),
        dst: r.pick(hosts),
        proto: r.pick(&[6u8, 17, 1, 58]),
        l4: r.next().to_be_bytes(),
        l4_len: r.below(30) as u16,
    });
    let x = r.next();
    CtPacket {
        family,
        src,
        dst,
        proto,
        sport: port(r),
        dport: port(r),
        tcp: TcpSegment {
            flags: r.pick(&flag_sets),
            seq: r.pick(&[0u32, 1000, 1001, 5_000_000, u32::MAX, x as u32]),
            ack: r.pick(&[0u32, 1001, 5_000_001, (x >> 32) as u32]),
            window: r.pick(&[0u16, 1, 65535, (x >> 7) as u16]),
            wscale: r.pick(&[None, Some(0), Some(7), Some(14), Some(200)]),
            payload_len: r.pick(&[0u32, 1, 1460, 70_000, u32::MAX]),
        },
        icmp: IcmpHeader {
            icmp_type: r.pick(&[0u8, 3, 8, 11, 128, 129, 2, 135, (x >> 50) as u8]),
            code: r.pick(&[0u8, 0, 1]),
            id: r.pick(&[1u16, 2]),
            quoted,
        },
        // As if an earlier ct(nat) had translated it: looked up by its reversed tuple first.
        natted: r.below(8) == 0,
    }
}

#[test]
fn random_traffic_never_breaks_the_table() {
    let hosts = [
        v4(10, 0, 0, 1),
        v4(10, 0, 0, 2),
        v4(10, 0, 0, 3),
        v6("fd00::1"),
        v6("fd00::2"),
    ];
    for seed in 1..=4u64 {
        let mut r = Rng(seed * 0x9e37_79b9_7f4a_7c15);
        let t = ConnTable::new(CtConfig {
            max_conns: 40,
            ..CtConfig::default()
        });
        t.set_zone_limit(1, Some(10));
        let mut now = 0u64;
        for step in 0..20_000 {
            now += r.below(3 * SEC);
            let pkt = random_packet(&mut r, &hosts);
            let zone = r.below(3) as u16;
            let out = t.process(&pkt, zone, r.below(2) == 0, now);
            assert!(out.has(TRK));
            // One of new, est, rel or inv; never new together with est.
            assert!(
                out.state & (NEW | EST) != (NEW | EST),
                "{}",
                out.state_string()
            );
            match r.below(100) {
                0 => {
                    t.sweep(now, r.below(20) as usize);
                }
                1 => {
                    t.flush(Some(zone));
                }
                2 => now += 100_000 * SEC,
                _ => {}
            }
            if step % 500 == 0 {
                t.check_invariants().unwrap();
                assert!(t.len() <= 40 && t.zone_count(1) <= 10);
                for e in t.entries(None, now) {
                    assert!(t.get(&e.orig, now).is_some() && t.get(&e.reply, now).is_some());
                    let _ = e.to_string();
                }
            }
        }
        t.check_invariants().unwrap();
        let ev = t.stats().events;
        assert!(
            ev.committed > 100 && ev.invalid > 100 && ev.expired > 0,
            "{ev:?}"
        );
        t.flush(None);
        assert!(t.is_empty());
        t.check_invariants().unwrap();
    }
}
