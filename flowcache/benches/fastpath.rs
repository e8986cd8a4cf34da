//! The per-packet fast path: `parse` → `classify` on an EMC hit → output, through a real
//! `Graph`, as a PMD runs it. Each iteration allocates a frame of 64-byte Ethernet/IPv4/UDP
//! packets (copying the bytes in), dispatches it, drains the transmit queue and frees the
//! packets. Also benched alone: `parse` over resident packets and `classify` on EMC hits over
//! keys already in the metadata (empty actions, and a single output).
//!
//! Each case prints Mpps, ns/packet and cycles/packet at 2.6 GHz from its own timing. With
//! `FASTPATH_LOOP=<case>:<iterations>` the binary runs only that case's loop, without
//! criterion, for `valgrind --tool=callgrind` (cases: `full-1`, `full-1000`, `parse`,
//! `classify`; batch from `FASTPATH_BATCH`, default 32).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use flowcache::{Classify, ClassifyConfig};
use pipeline::{
    Ctx, DpAction, FlowKey, Graph, Next, Node, PacketId, PacketPool, Parse, TxQueues, Upcall,
    UpcallResult,
};

/// Nominal clock of the bench machine, for the cycles/packet column.
const GHZ: f64 = 2.6;
/// Output port of every flow.
const OUT_PORT: u32 = 2;
/// Input port written into the key before parsing (parse keeps the words before `dl_dst`).
const IN_PORT: u32 = 1;

/// Outputs every flow to [`OUT_PORT`] (or does nothing with `drop`), with OVS's 5-tuple mask.
struct OutputUpcall {
    drop: bool,
}

impl Upcall for OutputUpcall {
    fn translate(&mut self, _key: &FlowKey, _now_ns: u64) -> UpcallResult {
        UpcallResult {
            rewritten: 0,
            actions: if self.drop {
                Vec::new()
            } else {
                vec![DpAction::Output(OUT_PORT)]
            },
            mask: FlowKey {
                in_port: u32::MAX,
                dl_type: 0xffff,
                nw_src: u32::MAX,
                nw_dst: u32::MAX,
                nw_proto: 0xff,
                tp_src: 0xffff,
                tp_dst: 0xffff,
                ..FlowKey::default()
            },
            sinks: Vec::new(),
        }
    }

    fn generation(&self) -> u64 {
        0
    }
}

fn always_emc() -> ClassifyConfig {
    ClassifyConfig {
        emc_insert_inv_prob: 1,
        ..ClassifyConfig::default()
    }
}

/// A 64-byte Ethernet/IPv4/UDP frame of flow `f` (source address and port vary).
fn udp_frame(f: u32) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    d[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    d[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut d[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&(0x0a00_0000 | f).to_be_bytes());
    ip[16..20].copy_from_slice(&0x0a01_0001u32.to_be_bytes());
    let udp = &mut d[34..42];
    udp[0..2].copy_from_slice(&(1024 + (f % 50_000) as u16).to_be_bytes());
    udp[2..4].copy_from_slice(&4789u16.to_be_bytes());
    udp[4..6].copy_from_slice(&30u16.to_be_bytes());
    d
}

/// The whole graph: parse → classify → tx, packets allocated and freed every frame.
struct FullRig {
    pool: PacketPool,
    tx: TxQueues,
    graph: Graph,
    entry: usize,
    frames: Vec<[u8; 64]>,
    ids: Vec<PacketId>,
    out: Vec<PacketId>,
    at: usize,
}

impl FullRig {
    fn new(flows: u32) -> FullRig {
        let mut graph = Graph::new();
        let entry = graph.add(Box::new(Parse::default())).unwrap_or(0);
        let _ = graph.add(Box::new(Classify::new(
            OutputUpcall { drop: false },
            always_emc(),
        )));
        let _ = graph.wire();
        let mut rig = FullRig {
            pool: PacketPool::new(1024),
            tx: TxQueues::new(&[1, OUT_PORT]),
            graph,
            entry,
            frames: (0..flows).map(udp_frame).collect(),
            ids: Vec::with_capacity(256),
            out: Vec::with_capacity(256),
            at: 0,
        };
        // Warm the caches: every flow upcalled and in the EMC.
        for _ in 0..2 {
            for _ in 0..flows.div_ceil(32) {
                rig.frame(32);
            }
        }
        rig
    }

    /// One frame of `batch` packets, flows taken round-robin.
    #[inline(never)]
    fn frame(&mut self, batch: usize) {
        self.ids.clear();
        for _ in 0..batch {
            let Some(f) = self.frames.get(self.at) else {
                return;
            };
            self.at = if self.at + 1 == self.frames.len() {
                0
            } else {
                self.at + 1
            };
            let Ok(id) = self.pool.alloc_with(f) else {
                return;
            };
            self.pool.meta_mut(id).key.in_port = IN_PORT;
            self.ids.push(id);
        }
        let mut cx = Ctx {
            pool: &mut self.pool,
            tx: &mut self.tx,
            now_ns: 0,
        };
        self.graph.dispatch(&mut cx, self.entry, &self.ids);
        self.tx.drain(OUT_PORT, &mut self.out);
        for &p in &self.out {
            self.pool.free(p);
        }
        self.out.clear();
    }
}

impl FullRig {
    /// Each node's own time-stamp-counter cycles per packet, as the graph counted them.
    fn print_node_cycles(&self) {
        for r in self.graph.reports() {
            if r.stats.vectors > 0 {
                println!(
                    "  node {}: {:.1} tsc cycles/packet",
                    r.name,
                    r.stats.cycles as f64 / r.stats.vectors as f64
                );
            }
        }
    }
}

/// Resident packets run through one node again and again (no allocation per frame).
struct NodeRig<N: Node> {
    pool: PacketPool,
    tx: TxQueues,
    node: N,
    ids: Vec<PacketId>,
    next: Vec<Next>,
    out: Vec<PacketId>,
}

impl<N: Node> NodeRig<N> {
    /// `packets` packets of `flows` flows, parsed.
    fn new(node: N, packets: usize, flows: u32) -> NodeRig<N> {
        let mut pool = PacketPool::new(packets as u32);
        let ids = (0..packets)
            .filter_map(|i| {
                let id = pool.alloc_with(&udp_frame(i as u32 % flows)).ok()?;
                let (data, meta) = pool.data_and_meta_mut(id);
                meta.key.in_port = IN_PORT;
                let _ = pipeline::parse_packet(data, meta);
                Some(id)
            })
            .collect();
        NodeRig {
            pool,
            tx: TxQueues::new(&[1, OUT_PORT]),
            node,
            ids,
            next: vec![Next::CONSUMED; pipeline::MAX_BATCH],
            out: Vec::new(),
        }
    }

    /// Every packet once through the node, `batch` at a time; output packets are taken
    /// back from the queue (they stay allocated).
    #[inline(never)]
    fn pass(&mut self, batch: usize) {
        for chunk in self.ids.chunks(batch) {
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns: 0,
            };
            self.node
                .process(&mut cx, chunk, &mut self.next[..chunk.len()]);
            self.tx.drain(OUT_PORT, &mut self.out);
            self.out.clear();
        }
    }
}

fn report(name: &str, packets: u64, elapsed: Duration) {
    if packets == 0 {
        return; // filtered out on the command line
    }
    let ns = elapsed.as_nanos() as f64 / packets as f64;
    println!(
        "{name}: {:.2} Mpps, {ns:.2} ns/packet, {:.0} cycles/packet",
        1e3 / ns,
        ns * GHZ
    );
}

/// Times `f` (which handles `per_call` packets) under criterion and prints the summary.
fn bench(c: &mut Criterion, name: &str, per_call: usize, mut f: impl FnMut()) {
    let mut g = c.benchmark_group("fastpath");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(per_call as u64));
    let (mut n, mut t) = (0u64, Duration::ZERO);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                f();
            }
            let e = t0.elapsed();
            n += iters * per_call as u64;
            t += e;
            e
        })
    });
    g.finish();
    report(&format!("fastpath/{name}"), n, t);
}

fn full_pipeline(c: &mut Criterion) {
    for flows in [1, 1000] {
        let mut rig = FullRig::new(flows);
        for batch in [32, 256] {
            rig.graph.clear_stats();
            bench(
                c,
                &format!("full/{flows}-flows/batch-{batch}"),
                batch,
                || rig.frame(black_box(batch)),
            );
            rig.print_node_cycles();
        }
    }
}

fn nodes_alone(c: &mut Criterion) {
    for batch in [32, 256] {
        let mut parse = NodeRig::new(Parse::default(), 1024, 1000);
        bench(c, &format!("parse/batch-{batch}"), 1024, || {
            parse.pass(batch)
        });
    }
    for (what, drop) in [("empty-actions", true), ("output", false)] {
        for flows in [1, 1000] {
            let node = Classify::new(OutputUpcall { drop }, always_emc());
            let mut rig = NodeRig::new(node, 1024, flows);
            rig.pass(32);
            bench(
                c,
                &format!("classify-emc-hit/{what}/{flows}-flows/batch-32"),
                1024,
                || rig.pass(32),
            );
        }
    }
}

/// `FASTPATH_LOOP=<case>:<iterations>`: one case's loop alone, for callgrind.
fn run_loop(spec: &str) {
    let batch: usize = std::env::var("FASTPATH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(32);
    let (case, iters) = spec.split_once(':').unwrap_or((spec, "10000"));
    let iters: u64 = iters.parse().unwrap_or(10_000);
    match case {
        "full-1" | "full-1000" => {
            let mut rig = FullRig::new(if case == "full-1" { 1 } else { 1000 });
            for _ in 0..iters {
                rig.frame(batch);
            }
        }
        "parse" => {
            let mut rig = NodeRig::new(Parse::default(), 1024, 1000);
            for _ in 0..iters {
                rig.pass(batch);
            }
        }
        "classify" => {
            let node = Classify::new(OutputUpcall { drop: false }, always_emc());
            let mut rig = NodeRig::new(node, 1024, 1);
            for _ in 0..iters {
                rig.pass(batch);
            }
        }
        _ => eprintln!("unknown case {case}"),
    }
}

criterion_group!(benches, full_pipeline, nodes_alone);

fn main() {
    if let Ok(spec) = std::env::var("FASTPATH_LOOP") {
        run_loop(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
