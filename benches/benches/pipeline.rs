//! Benches of the packet pipeline: the parser alone (64-byte IPv4/UDP, 74-byte IPv6/TCP),
//! action execution alone (set ip dst + dec_ttl + output over a batch), and the full
//! `parse → classify → output` graph over a real OpenFlow bridge, where every iteration is
//! one rx burst: allocate, copy the frame in, dispatch, drain the tx queue and free.
//! Criterion reports elements (packets) per second; each bench also prints Mpps and
//! ns/packet from its own timing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{
    bridge_with, five_mask_frames, five_mask_rules, sport_frames, tcp6_frame, udp4_frame,
    PipelineRig, IP_DST, IP_SRC,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowcache::ClassifyConfig;
use pipeline::actions::{execute, ExecTargets};
use pipeline::checksum::checksum;
use pipeline::{parse_packet, Ctx, DpAction, Next, PacketId, PacketPool, TxQueues};

/// The calling thread's time on a CPU so far (ns, `/proc/thread-self/schedstat`): on a
/// shared machine, time other processes take the core from the bench does not count, where
/// wall time would count it.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn report(name: &str, packets: u64, elapsed: Duration) {
    if packets == 0 {
        return; // filtered out on the command line
    }
    let ns = elapsed.as_nanos() as f64 / packets as f64;
    println!("{name}: {:.2} Mpps, {ns:.1} ns/packet", 1e3 / ns);
}

fn short(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
}

/// A pool holding `n` copies of `frame`.
fn filled_pool(frame: &[u8], n: usize) -> (PacketPool, Vec<PacketId>) {
    let mut pool = PacketPool::new(n as u32);
    let ids = (0..n).filter_map(|_| pool.alloc_with(frame).ok()).collect();
    (pool, ids)
}

/// `parse_packet` over 256 packets already in buffers (the parse node's work per packet).
fn parse(c: &mut Criterion) {
    const N: usize = 256;
    let mut g = c.benchmark_group("parse");
    short(&mut g);
    g.throughput(Throughput::Elements(N as u64));
    let cases = [
        ("udp4-64B", udp4_frame(IP_SRC, IP_DST, 1234, 53)),
        ("tcp6-74B", tcp6_frame(40000, 443)),
    ];
    for (name, frame) in cases {
        let (mut pool, ids) = filled_pool(&frame, N);
        let (mut n, mut t) = (0u64, Duration::ZERO);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    for &id in &ids {
                        let (data, meta) = pool.data_and_meta_mut(id);
                        let _ = black_box(parse_packet(black_box(data), meta));
                    }
                }
                let e = t0.elapsed();
                n += iters * N as u64;
                t += e;
                e
            })
        });
        report(&format!("parse/{name}"), n, t);
    }
    g.finish();
}

/// `actions::execute` of `[SetIpv4Dst, DecTtl, Output(2)]` over one megaflow group of 32 or
/// 256 packets (one call per group, as classify makes it). Frames start at TTL 255 and are
/// reset to 255 (untimed) every 250 runs so that dec_ttl never drops.
fn actions(c: &mut Criterion) {
    let mut g = c.benchmark_group("actions");
    short(&mut g);
    let list = [
        DpAction::SetIpv4Dst(0x0a01_0203),
        DpAction::DecTtl,
        DpAction::Output(2),
    ];
    let targets = ExecTargets {
        drop_base: 0,
        recirc_next: None,
        vlans: pipeline::VlanLimit::DEFAULT,
    };
    for batch in [32usize, 256] {
        g.throughput(Throughput::Elements(batch as u64));
        let mut frame = udp4_frame(IP_SRC, IP_DST, 1234, 53);
        frame[22] = 255;
        frame[24..26].fill(0);
        let csum = checksum(&frame[14..34]);
        frame[24..26].copy_from_slice(&csum.to_be_bytes());
        let (mut pool, ids) = filled_pool(&frame, batch);
        for &id in &ids {
            let (data, meta) = pool.data_and_meta_mut(id);
            let _ = parse_packet(data, meta);
        }
        let mut tx = TxQueues::new(&[1, 2]);
        let mut next = vec![Next::CONSUMED; batch];
        let mut out = Vec::with_capacity(batch);
        let mut runs = 0u32;
        let (mut n, mut t) = (0u64, Duration::ZERO);
        g.bench_function(BenchmarkId::new("set-dst+dec_ttl+output", batch), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if runs >= 250 {
                        runs = 0;
                        for &id in &ids {
                            let (d, m) = pool.data_and_meta_mut(id);
                            d[22] = 255;
                            d[24..26].fill(0);
                            let csum = checksum(&d[14..34]);
                            d[24..26].copy_from_slice(&csum.to_be_bytes());
                            m.key.nw_ttl = 255;
                        }
                    }
                    let k = left.min(u64::from(250 - runs));
                    let t0 = Instant::now();
                    for _ in 0..k {
                        let mut cx = Ctx {
                            pool: &mut pool,
                            tx: &mut tx,
                            now_ns: 0,
                        };
                        execute(&list, &mut cx, &ids, &mut next, targets);
                        out.clear();
                        tx.drain(2, &mut out);
                    }
                    total += t0.elapsed();
                    runs += k as u32;
                    left -= k;
                }
                n += iters * batch as u64;
                t += total;
                total
            })
        });
        report(&format!("actions/set-dst+dec_ttl+output/{batch}"), n, t);
        if out.len() != batch {
            println!("  WARNING: {} of {batch} packets output", out.len());
        }
    }
    g.finish();
}

/// The full graph per rx burst of 32 or 256 packets: EMC hits (1 flow and 1000 flows that
/// differ in the UDP source port, rule `in_port=1,actions=output:2`, EMC insert always),
/// NORMAL flooding one flow to three ports, and megaflow hits (EMC off, 10k flows over 5
/// megaflow masks from the 5-group rule set).
fn full_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    short(&mut g);
    let emc = ClassifyConfig {
        emc_insert_inv_prob: 1,
        ..ClassifyConfig::default()
    };
    let no_emc = ClassifyConfig {
        emc_entries: 0,
        ..ClassifyConfig::default()
    };
    let simple = "in_port=1,actions=output:2\n";
    let five = five_mask_rules(10_000);
    let cases: [(&str, &str, ClassifyConfig, Vec<Vec<u8>>); 4] = [
        ("emc-hit/1-flow", simple, emc.clone(), sport_frames(1)),
        // NORMAL with an unlearned destination: each packet flooded to ports 2, 3 and 4,
        // two copies and the original.
        (
            "normal-flood/1-flow",
            "actions=NORMAL\n",
            emc.clone(),
            sport_frames(1),
        ),
        ("emc-hit/1000-flows", simple, emc, sport_frames(1000)),
        (
            "megaflow-hit/10k-flows-5-masks",
            &five,
            no_emc,
            five_mask_frames(10_000),
        ),
    ];
    for (name, rules, config, frames) in cases {
        for batch in [32usize, 256] {
            let bridge = match bridge_with(rules) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{name}: {e}");
                    continue;
                }
            };
            let mut rig = match PipelineRig::new(bridge, config.clone(), frames.clone()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{name}: {e}");
                    continue;
                }
            };
            rig.warm(batch);
            rig.warm(batch);
            if let Some(cl) = rig.classifier() {
                cl.clear_stats();
            }
            let (mut n, mut t, mut sent) = (0u64, Duration::ZERO, 0u64);
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::new(name, batch), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        sent += rig.run_batch(batch) as u64;
                    }
                    let e = t0.elapsed();
                    n += iters * batch as u64;
                    t += e;
                    e
                })
            });
            report(&format!("pipeline/{name}/{batch}"), n, t);
            if let Some(cl) = rig.classifier() {
                let s = *cl.stats();
                let mf = cl.megaflows();
                println!(
                    "  sent {sent} of {n}; emc hits {}, megaflow hits {}, upcalls {}; {} megaflows in {} subtables, avg subtable lookups per hit {:.2}",
                    s.emc_hits,
                    s.megaflow_hits,
                    s.upcalls,
                    mf.len(),
                    mf.subtable_count(),
                    s.avg_subtable_lookups_per_hit()
                );
            }
        }
    }
    g.finish();
}

/// NetFlow's cost in the pipeline: the same rule (`in_port=1,actions=output:2`) and frames
/// (1 or 64 UDP flows differing in the source port, EMC insert always) with NetFlow off and
/// on. On, every flow has a megaflow of its own (NetFlow's mask, as in OVS) whose stats sink
/// the classifier credits at its pushes. Measured in thread CPU time ([`cpu_ns`]): the
/// differences sought are a few ns, less than other users' load moves wall time. Beside them, the per-packet work a NetFlow node
/// would add instead (a hash-table update per packet on the NetFlow key), alone.
fn netflow(c: &mut Criterion) {
    let mut g = c.benchmark_group("netflow");
    short(&mut g);
    let emc = ClassifyConfig {
        emc_insert_inv_prob: 1,
        ..ClassifyConfig::default()
    };
    let simple = "in_port=1,actions=output:2\n";
    let batch = 32usize;
    // Off, but with a rule on the UDP source port that splits the megaflows per flow as
    // NetFlow's mask does: what the split costs without NetFlow's sink.
    let split = "in_port=1,udp,actions=move:NXM_OF_UDP_SRC[]->NXM_NX_REG0[0..15],output:2\n";
    for flows in [1u32, 64] {
        for (on, rules) in [(false, simple), (false, split), (true, simple)] {
            let Ok(bridge) = bridge_with(rules) else {
                continue;
            };
            if on {
                let Ok(opts) = netflow::NetflowOptions::parse_args(&["targets=127.0.0.1:2055"])
                else {
                    continue;
                };
                bridge.set_netflow(Some(std::sync::Arc::new(
                    netflow::BridgeNetflow::capturing(opts, 0),
                )));
            }
            let Ok(mut rig) = PipelineRig::new(bridge, emc.clone(), sport_frames(flows)) else {
                continue;
            };
            rig.warm(batch);
            rig.warm(batch);
            let state = match (on, rules == split) {
                (true, _) => "on",
                (false, true) => "off-split",
                (false, false) => "off",
            };
            let name = format!("{state}/{flows}-flows");
            let (mut n, mut t) = (0u64, Duration::ZERO);
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::new(&name, batch), |b| {
                b.iter_custom(|iters| {
                    let t0 = cpu_ns();
                    for _ in 0..iters {
                        black_box(rig.run_batch(batch));
                    }
                    let e = Duration::from_nanos(cpu_ns() - t0);
                    n += iters * batch as u64;
                    t += e;
                    e
                })
            });
            report(&format!("netflow/{name}/{batch}"), n, t);
            if let Some(cl) = rig.classifier() {
                println!("  {} megaflows", cl.megaflows().len());
            }
        }
        // The alternative: a node hashing every packet's NetFlow key into a table.
        let keys: Vec<pipeline::FlowKey> = sport_frames(flows)
            .iter()
            .filter_map(|f| {
                let mut meta = pipeline::PacketMeta::default();
                parse_packet(f, &mut meta).ok().map(|_| meta.key)
            })
            .collect();
        let mut table: hashbrown::HashMap<netflow::NetflowKey, (u64, u64, u16)> =
            hashbrown::HashMap::new();
        let (mut n, mut t, mut cursor) = (0u64, Duration::ZERO, 0usize);
        let name = format!("per-packet-hash/{flows}-flows");
        g.bench_function(BenchmarkId::new(&name, batch), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    for _ in 0..batch {
                        let k = &keys[cursor];
                        cursor = if cursor + 1 == keys.len() {
                            0
                        } else {
                            cursor + 1
                        };
                        if let Some(nk) = netflow::netflow_key(black_box(k)) {
                            let e = table.entry(nk).or_insert((0, 0, 0));
                            e.0 += 1;
                            e.1 += 60;
                            e.2 |= k.tcp_flags;
                        }
                    }
                }
                let e = t0.elapsed();
                n += iters * batch as u64;
                t += e;
                e
            })
        });
        report(&format!("netflow/{name}/{batch}"), n, t);
    }
    g.finish();
}

criterion_group!(benches, parse, actions, full_pipeline, netflow);
criterion_main!(benches);
