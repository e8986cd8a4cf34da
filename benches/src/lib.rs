//! Shared helpers for the benches: 64-byte frame builders with correct checksums, rule-set
//! generators (the 5-mask rule set whose translations give 5 megaflow masks, the 100k-rule
//! install set), and [`PipelineRig`], the full `parse → classify → output` pipeline over a
//! real `openflow::Bridge` that both the criterion benches and the `targets` check drive.
#![forbid(unsafe_code)]

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowcache::{Classify, ClassifyConfig};
use openflow::normal::{MacTable, NormalPort, VlanMode, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use openflow::Bridge;
use openflow::BridgeUpcall;
use pipeline::parse::Parse;
use pipeline::wire::{tcp, FrameBuilder, Ipv4Repr, Ipv6Repr, TcpRepr};
use pipeline::{Ctx, FlowKey, Graph, PacketId, PacketPool, TxQueues, Upcall, UpcallResult};

/// Length of the IPv4 frames (Ethernet header to the end of the UDP payload, no FCS).
pub const FRAME_LEN: usize = 64;
/// Destination MAC of every generated frame.
pub const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Source MAC of every generated frame.
pub const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Source address of the IPv4 frames (10.255.0.1).
pub const IP_SRC: u32 = 0x0aff_0001;
/// Destination address of the single-flow IPv4 frames (10.0.0.2).
pub const IP_DST: u32 = 0x0a00_0002;

/// Number of rule groups (and megaflow masks) of [`five_mask_rules`].
pub const MASK_GROUPS: u32 = 5;

/// A 64-byte Ethernet/IPv4/UDP frame (TTL 64, TOS 0, 22 payload bytes) with valid IPv4 and
/// UDP checksums.
pub fn udp4_frame(src: u32, dst: u32, sport: u16, dport: u16) -> Vec<u8> {
    let ip = Ipv4Repr {
        ident: 1,
        ..Ipv4Repr::new(src.into(), dst.into())
    };
    let payload: Vec<u8> = (0..FRAME_LEN - 14 - 20 - 8).map(|i| i as u8).collect();
    // Cannot fail: every length fits (a test checks the 64 bytes).
    FrameBuilder::ethernet(MAC_SRC, MAC_DST)
        .ipv4(ip)
        .udp(sport, dport)
        .build(&payload)
        .unwrap_or_default()
}

/// The smallest Ethernet/IPv6/TCP frame (74 bytes: no TCP options, no payload), ACK set,
/// with a valid TCP checksum.
pub fn tcp6_frame(sport: u16, dport: u16) -> Vec<u8> {
    let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let tcp = TcpRepr {
        seq_number: 1,
        ack_number: 1,
        flags: tcp::flags::ACK,
        ..TcpRepr::new(sport, dport)
    };
    // Cannot fail: every length fits (a test checks the 74 bytes).
    FrameBuilder::ethernet(MAC_SRC, MAC_DST)
        .ipv6(Ipv6Repr::new(src, dst))
        .tcp(tcp)
        .build(&[])
        .unwrap_or_default()
}

/// `flows` single-flow frames that differ only in the UDP source port (1 megaflow under a
/// rule that matches `in_port` only, `flows` EMC entries).
pub fn sport_frames(flows: u32) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|j| udp4_frame(IP_SRC, IP_DST, 10_000 + j as u16, 53))
        .collect()
}

/// Destination address of flow `j` of [`five_mask_rules`]: `10.g.hi.lo` with group
/// `g = j % 5` and `hi.lo` = `j / 5`.
pub fn five_mask_dst(j: u32) -> u32 {
    let g = j % MASK_GROUPS;
    let n = j / MASK_GROUPS;
    0x0a00_0000 | g << 16 | (n & 0xffff)
}

/// The rules of the 5-mask rule set for `flows` flows (a multiple of 5): one rule per flow,
/// exact on its destination address, in 5 groups of falling priority that each match one
/// more field (group 0: `udp,nw_dst`; then `+tp_dst=53`, `+nw_tos=0`, `+nw_ttl=64`,
/// `+tp_src=1234`). A flow of group `g` probes the subtables of groups `0..=g`, so its
/// megaflow mask is their union: 5 distinct megaflow masks, one megaflow per flow.
pub fn five_mask_rules(flows: u32) -> String {
    let extra = ["", ",tp_dst=53", ",nw_tos=0", ",nw_ttl=64", ",tp_src=1234"];
    let mut text = String::with_capacity(flows as usize * 64);
    for j in 0..flows {
        let g = (j % MASK_GROUPS) as usize;
        let d = five_mask_dst(j);
        text.push_str(&format!(
            "priority={},udp,nw_dst={}.{}.{}.{}{},actions=output:2\n",
            500 - 100 * g,
            d >> 24,
            (d >> 16) & 0xff,
            (d >> 8) & 0xff,
            d & 0xff,
            extra.get(g).copied().unwrap_or_default()
        ));
    }
    text
}

/// The frames of the 5-mask rule set's flows, each matching its own rule.
pub fn five_mask_frames(flows: u32) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|j| udp4_frame(IP_SRC, five_mask_dst(j), 1234, 53))
        .collect()
}

/// `n` add-flow rules with distinct matches over 4 masks, for the install benches: exact
/// `nw_dst` (a /32 walking 10.0.0.0/8), plus `tp_dst` on tcp or udp in 3 of the 4 groups.
pub fn install_rules(n: u32) -> String {
    let mut text = String::with_capacity(n as usize * 64);
    for i in 0..n {
        text.push_str(&install_rule(i));
        text.push('\n');
    }
    text
}

/// Rule `i` of [`install_rules`].
pub fn install_rule(i: u32) -> String {
    let d = 0x0a00_0000 | (i & 0x00ff_ffff);
    let ip = format!(
        "{}.{}.{}.{}",
        d >> 24,
        (d >> 16) & 0xff,
        (d >> 8) & 0xff,
        d & 0xff
    );
    match i % 4 {
        0 => format!("priority=100,ip,nw_dst={ip},actions=output:2"),
        1 => format!(
            "priority=200,tcp,nw_dst={ip},tp_dst={},actions=output:3",
            i % 60_000
        ),
        2 => format!(
            "priority=300,udp,nw_dst={ip},tp_dst={},actions=dec_ttl,output:2",
            i % 60_000
        ),
        _ => format!(
            "priority=400,tcp,nw_src=192.168.0.0/16,nw_dst={ip},tp_dst={},actions=output:4",
            i % 60_000
        ),
    }
}

/// A bridge with ports 1–4 (access, VLAN 0) and `rules` installed as one bundle.
pub fn bridge_with(rules: &str) -> Result<Arc<Bridge>, openflow::BundleError> {
    let ports = (1..=4)
        .map(|ofport| NormalPort {
            ofport,
            vlan: VlanMode::Access(0),
            flood: true,
        })
        .collect();
    let bridge = Bridge::new(ports, MacTable::new(DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES));
    bridge.add_flows_text(rules, 0)?;
    Ok(Arc::new(bridge))
}

/// Errors setting up a rig (never in the measured loop).
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error("rules: {0}")]
    Rules(#[from] openflow::BundleError),
    #[error("graph: {0}")]
    Graph(#[from] pipeline::graph::GraphError),
    #[error("classify node missing from the graph")]
    NoClassify,
    #[error("packet pool exhausted")]
    Pool,
    #[error("a bench thread panicked")]
    Thread,
}

/// The full pipeline of one PMD over a real bridge: a [`Graph`] of `parse` and `classify`
/// (EMC → megaflow → OpenFlow upcall), transmit queues for ports 1–4, and a pool. Each
/// [`PipelineRig::run_batch`] does what one rx burst costs in memory: allocate, copy the
/// frame in, set `in_port`, dispatch, drain the tx queue of port 2 and free.
pub struct PipelineRig {
    pub pool: PacketPool,
    pub tx: TxQueues,
    pub graph: Graph,
    parse: usize,
    classify: usize,
    frames: Vec<Vec<u8>>,
    cursor: usize,
    rx: Vec<PacketId>,
    out: Vec<PacketId>,
}

impl PipelineRig {
    /// A rig translating through `bridge`, cycling through `frames` (received on port 1).
    pub fn new(
        bridge: Arc<Bridge>,
        config: ClassifyConfig,
        frames: Vec<Vec<u8>>,
    ) -> Result<PipelineRig, RigError> {
        PipelineRig::with_upcall(BridgeUpcall::new(bridge), config, frames)
    }

    /// A rig whose `ct()` actions track in `table`.
    pub fn with_conntrack(
        bridge: Arc<Bridge>,
        table: Arc<conntrack::ConnTable>,
        config: ClassifyConfig,
        frames: Vec<Vec<u8>>,
    ) -> Result<PipelineRig, RigError> {
        let ct = datapath::conntrack::DatapathConntrack(table);
        let upcall = BridgeUpcall::new(bridge).with_conntrack(Arc::new(ct));
        PipelineRig::with_upcall(upcall, config, frames)
    }

    /// A rig translating with `upcall`.
    pub fn with_upcall(
        upcall: BridgeUpcall,
        config: ClassifyConfig,
        frames: Vec<Vec<u8>>,
    ) -> Result<PipelineRig, RigError> {
        let mut graph = Graph::new();
        let parse = graph.add(Box::new(Parse::new("classify")))?;
        let classify = graph.add(Box::new(Classify::new(upcall, config)))?;
        graph.wire()?;
        Ok(PipelineRig {
            pool: PacketPool::new(2048),
            tx: TxQueues::new(&[1, 2, 3, 4]),
            graph,
            parse,
            classify,
            frames,
            cursor: 0,
            rx: Vec::with_capacity(pipeline::MAX_BATCH),
            out: Vec::with_capacity(pipeline::MAX_BATCH),
        })
    }

    /// The classify node (stats, caches).
    pub fn classifier(&mut self) -> Option<&mut Classify<BridgeUpcall>> {
        self.graph.node_as::<Classify<BridgeUpcall>>(self.classify)
    }

    /// One rx burst of `batch` packets (the next frames, cycling) through the graph;
    /// returns the packets transmitted on port 2. Every buffer is back in the pool after.
    #[inline]
    pub fn run_batch(&mut self, batch: usize) -> usize {
        self.rx.clear();
        for _ in 0..batch {
            let Some(frame) = self.frames.get(self.cursor) else {
                break;
            };
            self.cursor += 1;
            if self.cursor == self.frames.len() {
                self.cursor = 0;
            }
            if let Ok(id) = self.pool.alloc_with(frame) {
                self.pool.meta_mut(id).key.in_port = 1;
                self.rx.push(id);
            }
        }
        let mut cx = Ctx {
            pool: &mut self.pool,
            tx: &mut self.tx,
            now_ns: 0,
        };
        self.graph.dispatch(&mut cx, self.parse, &self.rx);
        // Port 2's packets are the ones counted; flooded copies to the others are freed too.
        let mut sent = 0;
        for port in [2, 1, 3, 4] {
            self.out.clear();
            self.tx.drain(port, &mut self.out);
            for &id in &self.out {
                self.pool.free(id);
            }
            if port == 2 {
                sent = self.out.len();
            }
        }
        sent
    }

    /// Runs every frame exactly once from the current position (installs the megaflows and, per the config, EMC entries).
    pub fn warm(&mut self, batch: usize) -> usize {
        let mut sent = 0;
        let mut left = self.frames.len();
        while left > 0 {
            let n = left.min(batch.max(1));
            sent += self.run_batch(n);
            left -= n;
        }
        sent
    }
}

/// The classify node alone, driven like `flowcache`'s benches but over real translation:
/// `frames` are parsed once into packet metadata, then every pass runs those packets through
/// `Classify::process` in frames of `batch` and drains the port 2 queue (no free: the same
/// packets are classified again).
pub struct ClassifyRig<U: Upcall + 'static = BridgeUpcall> {
    pool: PacketPool,
    tx: TxQueues,
    ids: Vec<PacketId>,
    next: Vec<pipeline::Next>,
    out: Vec<PacketId>,
    pub node: Classify<U>,
}

impl ClassifyRig<BridgeUpcall> {
    /// A rig translating through `bridge`.
    pub fn new(
        bridge: Arc<Bridge>,
        config: ClassifyConfig,
        frames: &[Vec<u8>],
    ) -> Result<ClassifyRig, RigError> {
        ClassifyRig::with_upcall(BridgeUpcall::new(bridge), config, frames)
    }
}

impl<U: Upcall + 'static> ClassifyRig<U> {
    /// A rig whose misses go to `upcall`.
    pub fn with_upcall(
        upcall: U,
        config: ClassifyConfig,
        frames: &[Vec<u8>],
    ) -> Result<ClassifyRig<U>, RigError> {
        let mut pool = PacketPool::new(frames.len() as u32 + 1);
        let mut ids = Vec::with_capacity(frames.len());
        for f in frames {
            let id = pool.alloc_with(f).map_err(|_| RigError::Pool)?;
            let (data, meta) = pool.data_and_meta_mut(id);
            meta.key.in_port = 1;
            // Setup only: the frames are generated valid, and a parse error just leaves
            // a key that translates to a drop.
            let _ = pipeline::parse_packet(data, meta);
            ids.push(id);
        }
        Ok(ClassifyRig {
            pool,
            tx: TxQueues::new(&[1, 2, 3, 4]),
            ids,
            next: vec![pipeline::Next::CONSUMED; pipeline::MAX_BATCH],
            out: Vec::with_capacity(pipeline::MAX_BATCH),
            node: Classify::new(upcall, config),
        })
    }

    /// Packets in one pass.
    pub fn packets(&self) -> usize {
        self.ids.len()
    }

    /// Classifies every packet once, `batch` at a time; returns packets sent to port 2.
    #[inline]
    pub fn pass(&mut self, batch: usize) -> usize {
        use pipeline::Node;
        let mut sent = 0;
        for chunk in self.ids.chunks(batch) {
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns: 0,
            };
            self.node
                .process(&mut cx, chunk, &mut self.next[..chunk.len()]);
            self.out.clear();
            self.tx.drain(2, &mut self.out);
            sent += self.out.len();
        }
        sent
    }
}

/// The translations of the 5-mask rule set's flows, made once by the real bridge and
/// replayed (cloned) on every upcall: upcall + install without the OpenFlow lookup, to show
/// how the cost of a new flow splits between translation and the caches.
pub struct ReplayUpcall {
    results: Vec<UpcallResult>,
    generation: u64,
}

impl ReplayUpcall {
    /// Translates the first `flows` flows of [`five_mask_frames`] through `bridge`.
    pub fn new(bridge: &Bridge, frames: &[Vec<u8>]) -> ReplayUpcall {
        let results = frames
            .iter()
            .map(|f| {
                let mut meta = pipeline::PacketMeta::default();
                meta.key.in_port = 1;
                let _ = pipeline::parse_packet(f, &mut meta);
                bridge.translate(&meta.key, 0)
            })
            .collect();
        ReplayUpcall {
            results,
            generation: bridge.generation(),
        }
    }
}

impl Upcall for ReplayUpcall {
    fn translate(&mut self, key: &FlowKey, _now_ns: u64) -> UpcallResult {
        // Inverse of `five_mask_dst`.
        let g = (key.nw_dst >> 16) & 0xff;
        let j = (key.nw_dst & 0xffff) * MASK_GROUPS + g;
        match self.results.get(j as usize) {
            Some(r) => r.clone(),
            None => UpcallResult {
                rewritten: 0,
                actions: Vec::new(),
                mask: FlowKey::default(),
                sinks: Vec::new(),
            },
        }
    }

    fn generation(&self) -> u64 {
        self.generation
    }
}

/// Best (shortest) per-item time of `rounds` runs of `f`, where each run processes `items`
/// items; returns nanoseconds per item.
pub fn best_ns_per_item(rounds: usize, items: u64, mut f: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t0 = Instant::now();
        f();
        best = best.min(t0.elapsed());
    }
    best.as_nanos() as f64 / items.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::checksum::{checksum, l4_checksum, pseudo_sum_ipv4};
    use pipeline::flowkey::ipproto;
    use pipeline::PacketMeta;

    #[test]
    fn frames_parse_with_valid_checksums() {
        let f = udp4_frame(IP_SRC, IP_DST, 1234, 53);
        assert_eq!(f.len(), FRAME_LEN);
        assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
        let pseudo = pseudo_sum_ipv4(IP_SRC, IP_DST, ipproto::UDP, 30);
        assert_eq!(l4_checksum(pseudo, &f[34..]), 0, "UDP checksum");
        let mut m = PacketMeta::default();
        pipeline::parse_packet(&f, &mut m).unwrap();
        assert_eq!(
            (m.key.nw_dst, m.key.tp_src, m.key.tp_dst),
            (IP_DST, 1234, 53)
        );

        let f6 = tcp6_frame(40000, 443);
        assert_eq!(f6.len(), 74);
        let mut m = PacketMeta::default();
        pipeline::parse_packet(&f6, &mut m).unwrap();
        assert_eq!((m.key.nw_proto, m.key.tp_dst), (ipproto::TCP, 443));
    }

    #[test]
    fn pipeline_rig_forwards_and_frees() {
        let bridge = bridge_with("in_port=1,actions=output:2\n").unwrap();
        let config = ClassifyConfig {
            emc_insert_inv_prob: 1,
            ..ClassifyConfig::default()
        };
        let mut rig = PipelineRig::new(bridge, config, sport_frames(100)).unwrap();
        assert_eq!(rig.warm(32), 100);
        assert_eq!(rig.run_batch(32), 32);
        assert_eq!(rig.pool.available(), rig.pool.capacity());
        let s = *rig.classifier().unwrap().stats();
        assert_eq!(s.megaflows_installed, 1);
        assert_eq!(s.emc_hits, 32);
    }

    #[test]
    fn five_mask_rules_give_five_masks_and_a_megaflow_per_flow() {
        let bridge = bridge_with(&five_mask_rules(1000)).unwrap();
        let config = ClassifyConfig {
            emc_entries: 0,
            ..ClassifyConfig::default()
        };
        let mut rig = ClassifyRig::new(bridge, config, &five_mask_frames(1000)).unwrap();
        assert_eq!(rig.pass(32), 1000);
        assert_eq!(rig.pass(32), 1000);
        let mf = rig.node.megaflows();
        assert_eq!(mf.len(), 1000);
        assert_eq!(mf.subtable_count(), 5);
        assert_eq!(rig.node.stats().megaflow_hits, 1000);
    }

    #[test]
    fn install_rules_are_distinct_and_valid() {
        let bridge = bridge_with(&install_rules(1000)).unwrap();
        assert_eq!(bridge.rules().load().len(), 1000);
    }
}
