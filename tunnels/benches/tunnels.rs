//! Per-packet cost of the tunnel functions, over a working set of 32 or 256 packets (a batch):
//! `TunnelHeader::push` (VXLAN, Geneve with 8 bytes of options, VXLAN with the UDP checksum
//! on) and `decap::decap` (outer checks + strip + inner parse; VXLAN, Geneve with options,
//! VXLAN with a UDP checksum to verify), with `parse_packet_limit` of the same inner frames
//! alone as the reference for what decap adds; and the `tunnel-decap` node's `process` over
//! a batch of 32 VXLAN frames to its endpoint and over the 32 plain inner frames (its cost
//! on traffic that is not for it). Inner frames are 64-byte Ethernet/IPv4/UDP of 256 flows.
//!
//! Only the pass over the batch is timed: putting the packets back as they were (pulling the
//! header off again, restoring the metadata of the received frame) is outside the timed
//! region, so each sample is one `Instant` pair around 32 or 256 calls. Prints ns and cycles
//! per packet at the nominal 2.6 GHz TSC, as the workspace's other benches do.
// A bench whose frames or headers cannot be built must stop, not time something else.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use pipeline::wire::{FrameBuilder, Ipv4Repr};
use pipeline::{
    parse_packet_limit, Ctx, Next, Node, PacketId, PacketMeta, PacketPool, TxQueues, VlanLimit,
};
use tunnels::decap::{self, DecapConfig};
use tunnels::{
    EncapParams, OptionStore, TunnelDecap, TunnelDecapConfig, TunnelHeader, TunnelKind,
    TunnelPortConfig, VtepEndpoint,
};

/// Nominal clock of the bench machine, for the cycles/packet column.
const GHZ: f64 = 2.6;

/// A 64-byte Ethernet/IPv4/UDP frame of flow `f`.
fn inner_frame(f: u32) -> Vec<u8> {
    let ip = Ipv4Repr::new(
        Ipv4Addr::from_bits(0x0a00_0000 | f),
        Ipv4Addr::new(10, 1, 0, 1),
    );
    FrameBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(ip)
        .udp(1024 + f as u16, 5001)
        .build(&[0x5a; 22])
        .expect("inner frame")
}

fn params(kind: TunnelKind, udp_checksum: bool) -> EncapParams {
    EncapParams {
        udp_checksum,
        ..EncapParams::new(
            kind,
            5000,
            [2, 0, 0, 0, 1, 1],
            [2, 0, 0, 0, 1, 2],
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        )
    }
}

/// One 8-byte option: class 0x0102, type 3, one data word.
const OPTIONS: [u8; 8] = [0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef];

/// The header cases: name, params, options.
fn headers() -> [(&'static str, TunnelHeader); 3] {
    let h = |kind, csum, options: &[u8]| {
        TunnelHeader::new(&params(kind, csum), options).expect("header")
    };
    [
        ("vxlan", h(TunnelKind::Vxlan, false, &[])),
        ("geneve-8B-options", h(TunnelKind::Geneve, false, &OPTIONS)),
        ("vxlan-udp-checksum", h(TunnelKind::Vxlan, true, &[])),
    ]
}

/// `batch` packets in a pool, each with the metadata it had when it was ready for the
/// function under test, so that they can be put back after each pass.
struct Rig {
    pool: PacketPool,
    ids: Vec<PacketId>,
    saved: Vec<PacketMeta>,
}

impl Rig {
    /// `frame(i)` for i in 0..batch, parsed.
    fn new(batch: usize, frame: impl Fn(u32) -> Vec<u8>) -> Rig {
        let mut pool = PacketPool::new(batch as u32);
        let mut ids = Vec::new();
        for i in 0..batch {
            let id = pool.alloc_with(&frame(i as u32 % 256)).expect("frame");
            let (data, meta) = pool.data_and_meta_mut(id);
            meta.key.in_port = 1;
            parse_packet_limit(data, meta, VlanLimit::DEFAULT).expect("parse");
            ids.push(id);
        }
        let saved = ids.iter().map(|&id| *pool.meta(id)).collect();
        Rig { pool, ids, saved }
    }

    fn restore(&mut self) {
        for (&id, m) in self.ids.iter().zip(&self.saved) {
            *self.pool.meta_mut(id) = *m;
        }
    }
}

fn report(name: &str, packets: u64, elapsed: Duration) {
    if packets == 0 {
        return; // filtered out on the command line
    }
    let ns = elapsed.as_nanos() as f64 / packets as f64;
    println!("{name}: {ns:.2} ns/packet, {:.0} cycles/packet", ns * GHZ);
}

/// Times `pass` over the rig (`batch` packets per call), restoring the packets untimed.
fn bench(c: &mut Criterion, name: &str, rig: &mut Rig, mut pass: impl FnMut(&mut Rig)) {
    let batch = rig.ids.len();
    let mut g = c.benchmark_group("tunnels");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .throughput(Throughput::Elements(batch as u64));
    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut e = Duration::ZERO;
            for _ in 0..iters {
                rig.restore();
                let t0 = Instant::now();
                pass(rig);
                e += t0.elapsed();
            }
            n += iters * batch as u64;
            t += e;
            e
        })
    });
    g.finish();
    report(&format!("tunnels/{name}"), n, t);
}

fn encap(c: &mut Criterion) {
    for (what, header) in headers() {
        for batch in [32, 256] {
            let mut rig = Rig::new(batch, inner_frame);
            for &id in &rig.ids {
                header.push(&mut rig.pool, id).expect("push");
            }
            bench(c, &format!("encap/{what}/batch-{batch}"), &mut rig, |r| {
                for &id in &r.ids {
                    let _ = black_box(header.push(&mut r.pool, id));
                }
            });
        }
    }
}

fn decap(c: &mut Criterion) {
    let config = DecapConfig::DEFAULT;
    let store = OptionStore::default();
    for (what, header) in headers() {
        // The frames a peer sent: each inner frame behind the header, with a source port per
        // flow.
        let frame = |f: u32| {
            let inner = inner_frame(f);
            let mut b = vec![0u8; header.header_len()];
            b.extend_from_slice(&inner);
            header.write(&mut b, 32768 + f as u16).expect("encap");
            b
        };
        for batch in [32, 256] {
            let mut rig = Rig::new(batch, frame);
            for &id in &rig.ids {
                decap::decap(&mut rig.pool, id, &config, VlanLimit::DEFAULT, &store, 0)
                    .expect("decap");
            }
            bench(c, &format!("decap/{what}/batch-{batch}"), &mut rig, |r| {
                for &id in &r.ids {
                    let t = decap::decap(&mut r.pool, id, &config, VlanLimit::DEFAULT, &store, 0);
                    let _ = black_box(t);
                }
            });
        }
    }
    // The checks alone (no change to the packets), VXLAN.
    let (_, vx) = &headers()[0];
    let frame = |f: u32| {
        let mut b = vec![0u8; vx.header_len()];
        b.extend_from_slice(&inner_frame(f));
        vx.write(&mut b, 32768 + f as u16).expect("encap");
        b
    };
    for batch in [32, 256] {
        let mut rig = Rig::new(batch, frame);
        bench(
            c,
            &format!("decap-check-only/vxlan/batch-{batch}"),
            &mut rig,
            |r| {
                for &id in &r.ids {
                    let t = decap::check(r.pool.data(id), r.pool.meta(id), &config);
                    let _ = black_box(t);
                }
            },
        );
    }
    // The reference: parsing the same inner frames alone.
    for batch in [32, 256] {
        let mut rig = Rig::new(batch, inner_frame);
        bench(
            c,
            &format!("parse-inner-alone/batch-{batch}"),
            &mut rig,
            |r| {
                for &id in &r.ids {
                    let (data, meta) = r.pool.data_and_meta_mut(id);
                    let _ = black_box(parse_packet_limit(data, meta, VlanLimit::DEFAULT));
                }
            },
        );
    }
}

/// The `tunnel-decap` node's `process` over one batch: VXLAN to its endpoint and port, and
/// plain UDP frames (not tunnel packets: the filter in front of everything else).
fn node(c: &mut Criterion) {
    let p = params(TunnelKind::Vxlan, false);
    let config = TunnelDecapConfig {
        endpoints: vec![VtepEndpoint {
            addr: p.ip_dst,
            mac: p.eth_dst,
            in_ports: vec![1],
        }],
        ports: vec![TunnelPortConfig {
            dp_port: 10,
            kind: TunnelKind::Vxlan,
            dst_port: 4789,
            local: None,
            remote: Some(p.ip_src),
            in_key: Some(p.vni),
        }],
        ..TunnelDecapConfig::default()
    };
    let (_, vx) = &headers()[0];
    let vxlan_frame = |f: u32| {
        let mut b = vec![0u8; vx.header_len()];
        b.extend_from_slice(&inner_frame(f));
        vx.write(&mut b, 32768 + f as u16).expect("encap");
        b
    };
    let mut tx = TxQueues::default();
    for (what, frame) in [
        ("vxlan", &vxlan_frame as &dyn Fn(u32) -> Vec<u8>),
        ("plain-udp", &inner_frame),
    ] {
        let batch = 32;
        let mut rig = Rig::new(batch, frame);
        let mut n = TunnelDecap::default();
        n.set_config(config.clone()).expect("config");
        let mut next = vec![Next::CONSUMED; batch];
        bench(c, &format!("node/{what}/batch-{batch}"), &mut rig, |r| {
            let mut cx = Ctx {
                pool: &mut r.pool,
                tx: &mut tx,
                now_ns: 0,
            };
            n.process(&mut cx, &r.ids, &mut next);
            black_box(&next);
        });
        let want = if what == "vxlan" { 1 } else { 0 };
        assert_eq!(
            (n.stats().decapsulated > 0) as u32,
            want,
            "{what}: the node did what the case says"
        );
    }
}

criterion_group!(benches, encap, decap, node);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
