//! Benches of the flow caches: EMC hit, megaflow hit at several flow and subtable counts, and
//! upcall + install, over keys put straight into packet metadata (no parsing). Criterion
//! reports elements (packets) per second; each bench also prints Mpps and ns/packet from its
//! own timing, and the megaflow benches print the cache's heap bytes per megaflow.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowcache::{Classify, ClassifyConfig, MegaflowCache};
use pipeline::{
    Ctx, DpAction, FlowKey, Next, Node, PacketId, PacketPool, RuleChange, TxQueues, Upcall,
    UpcallResult,
};

/// Packets per frame, as OVS's PMD batch.
const BATCH: usize = 32;
/// Distinct packets cycled through by the hit benches (their keys stay in cache).
const PACKETS: usize = 1024;

/// Mask of subtable `s` of `count`: 5-tuple-ish fields with a /(8+s) destination prefix, so
/// every subtable has its own mask; `nw_src` is exact in all of them, which makes every
/// flow's masked key unique across subtables.
fn mask(s: u32) -> FlowKey {
    FlowKey {
        in_port: u32::MAX,
        dl_type: 0xffff,
        nw_src: u32::MAX,
        nw_dst: !(u32::MAX >> (s + 8)),
        nw_proto: 0xff,
        tp_dst: if s % 2 == 1 { 0xffff } else { 0 },
        ..FlowKey::default()
    }
}

/// The key of flow `j` (subtable `j % subtables`), with a random-ish unmasked `tp_src`.
fn flow_key(j: u32, salt: u32) -> FlowKey {
    FlowKey {
        in_port: 1,
        dl_type: 0x0800,
        nw_src: j,
        nw_dst: j.wrapping_mul(2_654_435_761),
        nw_proto: 6,
        tp_dst: j as u16,
        tp_src: (salt.wrapping_mul(40_503) >> 3) as u16,
        ..FlowKey::default()
    }
}

/// xorshift, for reproducible packet choices.
fn rng(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

/// Translates flow `j` into the mask of subtable `j % subtables`, dropping (no tx work).
struct BenchUpcall {
    subtables: u32,
}

impl Upcall for BenchUpcall {
    fn translate(&mut self, key: &FlowKey, _now_ns: u64) -> UpcallResult {
        UpcallResult {
            rewritten: 0,
            actions: Vec::new(),
            mask: mask(key.nw_src % self.subtables),
            sinks: Vec::new(),
        }
    }

    fn generation(&self) -> u64 {
        0
    }
}

fn report(name: &str, packets: u64, elapsed: Duration) {
    if packets == 0 {
        return; // filtered out on the command line
    }
    let ns = elapsed.as_nanos() as f64 / packets as f64;
    println!("{name}: {:.2} Mpps, {ns:.1} ns/packet", 1e3 / ns);
}

/// Megaflow lookups alone (the cache, no node), `flows` flows over `subtables` masks.
fn megaflow_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("megaflow-lookup");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(PACKETS as u64));
    for (flows, subtables) in [
        (1, 1),
        (10_000, 1),
        (10_000, 5),
        (10_000, 20),
        (100_000, 1),
        (100_000, 5),
        (100_000, 20),
    ] {
        let mut cache = MegaflowCache::new(1 << 20);
        for j in 0..flows {
            let _ = cache.insert(
                &flow_key(j, 0),
                &mask(j % subtables),
                &[DpAction::Output(2)],
                &[],
                0,
            );
        }
        let mut st = 0x1234_5678;
        let keys: Vec<FlowKey> = (0..PACKETS)
            .map(|i| flow_key(rng(&mut st) % flows, i as u32))
            .collect();
        println!(
            "megaflow cache {flows} flows / {subtables} subtables: {} heap bytes per megaflow",
            cache.heap_bytes() / cache.len()
        );
        let name = format!("{flows}-flows/{subtables}-subtables");
        let (mut n, mut t) = (0u64, Duration::ZERO);
        g.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    for k in &keys {
                        black_box(cache.lookup(black_box(k)));
                    }
                }
                let e = t0.elapsed();
                n += iters * PACKETS as u64;
                t += e;
                e
            })
        });
        report(&format!("megaflow-lookup/{name}"), n, t);
    }
    g.finish();
}

/// A classify node with packets whose metadata holds keys of `flows` flows.
struct NodeRig {
    pool: PacketPool,
    tx: TxQueues,
    ids: Vec<PacketId>,
    next: Vec<Next>,
    node: Classify<BenchUpcall>,
}

impl NodeRig {
    fn new(flows: u32, subtables: u32, config: ClassifyConfig) -> NodeRig {
        let mut pool = PacketPool::new(PACKETS as u32);
        let mut st = 0x9e37_79b9;
        let ids = (0..PACKETS)
            .map(|i| {
                let id = pool.alloc_with(&[0; 64]).unwrap_or(0);
                let m = pool.meta_mut(id);
                m.key = flow_key(rng(&mut st) % flows, i as u32);
                m.hash = m.key.hash();
                id
            })
            .collect();
        NodeRig {
            pool,
            tx: TxQueues::new(&[1, 2]),
            ids,
            next: vec![Next::CONSUMED; BATCH],
            node: Classify::new(BenchUpcall { subtables }, config),
        }
    }

    /// Runs every packet once through the node, `BATCH` at a time.
    fn pass(&mut self) {
        for chunk in self.ids.chunks(BATCH) {
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns: 0,
            };
            self.node
                .process(&mut cx, chunk, &mut self.next[..chunk.len()]);
        }
    }
}

/// The whole classify node on cache hits: EMC hits (1000 flows, insert always) and megaflow
/// hits (10k flows in 5 subtables, EMC disabled). Actions are empty (drop), so this is the
/// lookup, grouping and execution bookkeeping without transmit work.
fn classify_hits(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(PACKETS as u64));
    let cases = [
        (
            "emc-hit/1000-flows",
            1000,
            1,
            ClassifyConfig {
                emc_insert_inv_prob: 1,
                ..ClassifyConfig::default()
            },
        ),
        (
            "megaflow-hit/10000-flows/5-subtables",
            10_000,
            5,
            ClassifyConfig {
                emc_entries: 0,
                ..ClassifyConfig::default()
            },
        ),
    ];
    for (name, flows, subtables, config) in cases {
        let mut rig = NodeRig::new(flows, subtables, config);
        // Install every megaflow (and fill the EMC) before measuring.
        for j in 0..flows {
            let id = rig.ids[0];
            let m = rig.pool.meta_mut(id);
            m.key = flow_key(j, 0);
            m.hash = m.key.hash();
            let mut cx = Ctx {
                pool: &mut rig.pool,
                tx: &mut rig.tx,
                now_ns: 0,
            };
            rig.node.process(&mut cx, &[id], &mut rig.next[..1]);
        }
        rig.pass();
        rig.pass();
        rig.node.clear_stats();
        let (mut n, mut t) = (0u64, Duration::ZERO);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    rig.pass();
                }
                let e = t0.elapsed();
                n += iters * PACKETS as u64;
                t += e;
                e
            })
        });
        let s = rig.node.stats();
        report(&format!("classify/{name}"), n, t);
        println!(
            "  emc hits {}, megaflow hits {}, upcalls {}, avg subtable lookups per hit {:.2}",
            s.emc_hits,
            s.megaflow_hits,
            s.upcalls,
            s.avg_subtable_lookups_per_hit()
        );
    }
    g.finish();
}

/// New flows per second: every packet is a new flow, translated by a trivial upcall and
/// installed (one mask). The cache is flushed, untimed, every 64k flows so memory stays flat.
fn upcall_install(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(BATCH as u64));
    let mut rig = NodeRig::new(1, 1, ClassifyConfig::default());
    let mut flow = 0u32;
    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function("upcall-install/1-subtable", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if flow >= 1 << 16 {
                    flow = 0;
                    rig.node.flush();
                }
                let ids = &rig.ids[..BATCH];
                for &id in ids {
                    let m = rig.pool.meta_mut(id);
                    m.key = flow_key(flow, flow);
                    m.hash = m.key.hash();
                    flow += 1;
                }
                let mut cx = Ctx {
                    pool: &mut rig.pool,
                    tx: &mut rig.tx,
                    now_ns: 0,
                };
                let t0 = Instant::now();
                rig.node.process(&mut cx, ids, &mut rig.next[..BATCH]);
                total += t0.elapsed();
            }
            n += iters * BATCH as u64;
            t += total;
            total
        })
    });
    report("classify/upcall-install/1-subtable", n, t);
    println!(
        "  megaflows installed {}",
        rig.node.stats().megaflows_installed
    );
    g.finish();
}

/// Revalidation of 28k megaflows over 1 and 5 subtables after one rule change that matches
/// one of them (as the packet-in storm bench's controller adds): every megaflow translated
/// again (`full`), against only those the change may match, found by testing every entry
/// (`scan`) or by hash (`probe`).
/// The translation gives each megaflow its own mask and actions back (no rule lookup): what a
/// pass costs besides translating. Elements: megaflows.
fn megaflow_revalidate(c: &mut Criterion) {
    const FLOWS: u32 = 28_000;
    let mut g = c.benchmark_group("megaflow-revalidate");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(u64::from(FLOWS)));
    for subtables in [1, 5] {
        let mut cache = MegaflowCache::new(1 << 20);
        for j in 0..FLOWS {
            let _ = cache.insert(
                &flow_key(j, 0),
                &mask(j % subtables),
                &[DpAction::Output(2)],
                &[],
                0,
            );
        }
        // `in_port=1,ip,nw_src=J`: the megaflows' masks read more (nw_dst, nw_proto), so
        // every entry is tested. The same rule with every bit the masks read: found by hash.
        let scan = RuleChange::new(
            &flow_key(FLOWS / 2, 0),
            &FlowKey {
                in_port: u32::MAX,
                dl_type: 0xffff,
                nw_src: u32::MAX,
                ..FlowKey::default()
            },
        );
        let mut all_masks = FlowKey::default();
        for s in 0..subtables {
            all_masks.or_assign(&mask(s));
        }
        let probe = RuleChange::new(&flow_key(FLOWS / 2, 0), &all_masks);
        for (kind, change) in [
            ("full", None),
            ("scan", Some(&scan)),
            ("probe", Some(&probe)),
        ] {
            let name = format!("{kind}/{subtables}-subtables");
            let (mut n, mut t) = (0u64, Duration::ZERO);
            g.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        let translate = |k: &FlowKey, _| UpcallResult {
                            rewritten: 0,
                            actions: vec![DpAction::Output(2)],
                            mask: mask(k.nw_src % subtables),
                            sinks: Vec::new(),
                        };
                        match change {
                            Some(c) => {
                                black_box(
                                    cache.revalidate_matching(std::slice::from_ref(c), translate),
                                );
                            }
                            None => {
                                black_box(cache.revalidate(translate));
                            }
                        }
                    }
                    let elapsed = t0.elapsed();
                    n += iters * u64::from(FLOWS);
                    t += elapsed;
                    elapsed
                })
            });
            let per_pass = t.as_secs_f64() * 1e6 / (n as f64 / f64::from(FLOWS)).max(1.0);
            println!("megaflow-revalidate/{name}: {per_pass:.2} us per pass of {FLOWS} megaflows");
            assert_eq!(cache.len(), FLOWS as usize, "the pass kept every megaflow");
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    megaflow_lookup,
    classify_hits,
    upcall_install,
    megaflow_revalidate
);
criterion_main!(benches);
