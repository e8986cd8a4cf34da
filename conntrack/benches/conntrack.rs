//! Per-packet cost of the connection table: established lookups (a batch of 32 packets of one
//! connection or of 64 connections, UDP and TCP, both directions), commits of new
//! connections, and the memory of one million connections. Prints ns and cycles per packet at
//! the nominal 2.6 GHz TSC, as the workspace's other benches do, and the memory figures.
// A bench that cannot set up its table must stop, not time something else.
#![allow(clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use conntrack::{tcp_flags as f, ConnTable, CtAddr, CtConfig, CtPacket, Family, TcpSegment};
use criterion::{criterion_group, Criterion, Throughput};
use pipeline::flowkey::{ct_state, ipproto};

/// Nominal clock of the bench machine, for the cycles/packet column.
const GHZ: f64 = 2.6;

fn addr(i: u32) -> CtAddr {
    CtAddr::from_v4(Ipv4Addr::from_bits(0x0a00_0000 | (i >> 14)))
}

fn udp(i: u32) -> CtPacket {
    CtPacket {
        family: Family::V4,
        src: addr(i),
        dst: CtAddr::from_v4(Ipv4Addr::new(172, 16, 0, 1)),
        proto: ipproto::UDP,
        sport: 1024 + (i & 0x3fff) as u16,
        dport: 53,
        ..CtPacket::default()
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

/// An established TCP connection `i`: its client and server ACKs without data (repeatable).
fn tcp_established(t: &ConnTable, i: u32) -> (CtPacket, CtPacket) {
    let seg = |flags, seq, ack| TcpSegment {
        flags,
        seq,
        ack,
        window: 65535,
        wscale: None,
        payload_len: 0,
    };
    let c = CtPacket {
        proto: ipproto::TCP,
        dport: 80,
        tcp: seg(f::SYN, 1000, 0),
        ..udp(i)
    };
    let s = CtPacket {
        tcp: seg(f::SYN | f::ACK, 9000, 1001),
        ..reverse(&c)
    };
    t.process(&c, 0, true, 0);
    t.process(&s, 0, true, 0);
    let c_ack = CtPacket {
        tcp: seg(f::ACK, 1001, 9001),
        ..c
    };
    let s_ack = CtPacket {
        tcp: seg(f::ACK, 9001, 1001),
        ..s
    };
    assert_eq!(
        t.process(&c_ack, 0, true, 0).state & ct_state::ESTABLISHED,
        ct_state::ESTABLISHED
    );
    (c_ack, s_ack)
}

fn report(name: &str, packets: u64, elapsed: Duration) {
    if packets == 0 {
        return;
    }
    let ns = elapsed.as_nanos() as f64 / packets as f64;
    println!("{name}: {ns:.2} ns/packet, {:.0} cycles/packet", ns * GHZ);
}

/// Established lookups: 32 packets a batch, alternating directions.
fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(32));
    for (proto, conns) in [("udp", 1u32), ("udp", 64), ("tcp", 1), ("tcp", 64)] {
        let t = ConnTable::default();
        // Background: 100k other connections, so the index is not trivially small.
        for i in 1_000_000..1_100_000 {
            t.process(&udp(i), 0, true, 0);
        }
        let mut batch = Vec::new();
        for i in 0..conns {
            let (a, b) = if proto == "udp" {
                let p = udp(i);
                t.process(&p, 0, true, 0);
                t.process(&reverse(&p), 0, true, 0);
                (p, reverse(&p))
            } else {
                tcp_established(&t, i)
            };
            batch.push(a);
            batch.push(b);
        }
        let batch: Vec<CtPacket> = batch.iter().cycle().take(32).copied().collect();
        let name = format!("established/{proto}/{conns}-conns/batch-32");
        let mut total = (0u64, Duration::ZERO);
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for p in &batch {
                        let out = t.process(black_box(p), 0, true, 1);
                        black_box(out);
                    }
                }
                let e = start.elapsed();
                total.0 += iters * 32;
                total.1 += e;
                e
            })
        });
        report(&name, total.0, total.1);
        assert_eq!(
            t.stats().events.invalid,
            0,
            "{name}: every packet was valid"
        );
    }
    g.finish();
}

/// Commits of new UDP connections into a table that already holds 100k.
fn commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(1));
    let t = ConnTable::default();
    for i in 0..100_000 {
        t.process(&udp(i), 0, true, 0);
    }
    let mut next = 100_000u32;
    let mut total = (0u64, Duration::ZERO);
    g.bench_function("commit/udp", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let out = t.process(&udp(next), 0, true, 0);
                black_box(out);
                next = next.wrapping_add(1);
            }
            let e = start.elapsed();
            total.0 += iters;
            total.1 += e;
            e
        })
    });
    report("commit/udp", total.0, total.1);
    if total.1 > Duration::ZERO {
        println!(
            "commit/udp: {:.2} M new connections/s (one thread)",
            total.0 as f64 / total.1.as_secs_f64() / 1e6
        );
    }
    g.finish();
}

/// One million UDP connections: the entry size and the table's heap.
fn memory() {
    let t = ConnTable::new(CtConfig::default());
    let n = 1_000_000u32;
    let start = Instant::now();
    for i in 0..n {
        t.process(&udp(i), 0, true, 0);
    }
    let fill = start.elapsed();
    assert_eq!(t.len(), n as usize);
    let bytes = t.heap_bytes();
    println!(
        "memory: entry {} B; {n} connections: {:.1} MiB heap, {:.0} B/connection (filled in {:.2} s)",
        ConnTable::conn_size(),
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / f64::from(n),
        fill.as_secs_f64()
    );
}

criterion_group!(benches, established, commit);

fn main() {
    memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
