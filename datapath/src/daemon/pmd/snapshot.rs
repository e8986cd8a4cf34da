//! What `pmd-stats`, `runtime`, `port-stats` and `drop-reasons` read from a PMD, taken
//! between two iterations: the PMD's counters, its pool, its graph's node and drop counters
//! and its classifier's (all per PMD: one switch serves every bridge), and per bridge its
//! ports' counters under their OpenFlow numbers.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Pmd, PmdSettings, PmdStats};
use crate::switch::PortStats;

/// One receive queue's share since the last `clear-stats`, for `pmd-stats`.
#[derive(Clone, Debug, Serialize)]
pub struct RxqSnapshot {
    pub bridge: String,
    pub port: String,
    pub queue: u32,
    pub cycles: u64,
    pub packets: u64,
    /// What the port type lost on the queue (both ways; a transmit queue may be shared by
    /// PMDs).
    pub losses: ports::PortLosses,
}

/// Where the frames of a PMD's packet pool are, between two iterations (when no packet is in
/// the graph): `free + lent == frames`, else frames leaked.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct PoolSnapshot {
    pub frames: usize,
    /// Whether the pool is a UMEM that AF_XDP queues join.
    pub umem: bool,
    pub free: usize,
    /// Frames AF_XDP queues of this PMD hold (fill and receive rings, sends in flight).
    pub lent: usize,
    /// Frames neither free nor lent: 0 unless frames leaked.
    pub unaccounted: usize,
}

/// One bridge's ports inside one PMD: `(name, ofport, counters)`.
#[derive(Clone, Debug, Serialize)]
pub struct BridgeSnapshot {
    pub name: String,
    pub ports: Vec<(String, u32, PortStats)>,
}

/// Everything `pmd-stats`, `runtime`, `port-stats` and `drop-reasons` read from a PMD.
#[derive(Clone, Debug, Serialize)]
pub struct PmdSnapshot {
    pub id: usize,
    pub core: Option<usize>,
    pub settings: PmdSettings,
    pub stats: PmdStats,
    pub rxqs: Vec<RxqSnapshot>,
    pub pool: PoolSnapshot,
    /// `(node, calls, vectors, cycles)`.
    pub nodes: Vec<(String, u64, u64, u64)>,
    /// `(reason, count)`, non-zero only.
    pub drops: Vec<(String, u64)>,
    pub classify: BTreeMap<String, u64>,
    pub megaflows: usize,
    /// Packets the `tunnel-decap` node opened, and packets tunnel outputs encapsulated.
    pub decapsulated: u64,
    pub encapsulated: u64,
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" sent for packets too big for
    /// their tunnel.
    pub too_big_answers: u64,
    /// In the plan's order.
    pub bridges: Vec<BridgeSnapshot>,
}

impl Pmd {
    /// The counters, for the control thread.
    pub fn snapshot(&mut self) -> PmdSnapshot {
        self.switch.sync_tunnel_stats();
        let rxqs = self
            .rxqs
            .iter()
            .map(|r| {
                let (cycles, packets) = r.queue.cycles_and_packets();
                RxqSnapshot {
                    bridge: r.queue.bridge.clone(),
                    port: r.queue.port.clone(),
                    queue: r.queue.queue_id,
                    cycles,
                    packets,
                    losses: r.queue.losses(),
                }
            })
            .collect();
        let pool = self.pool_snapshot();
        let reports = self.switch.node_reports();
        let mut drops: Vec<(String, u64)> = reports
            .iter()
            .flat_map(|r| {
                r.drops
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(move |(reason, n)| (format!("{}.{reason}", r.name), *n))
            })
            .collect();
        let no_port = self.switch.tx_no_such_port();
        if no_port > 0 {
            drops.push(("tx.no-such-port".to_string(), no_port));
        }
        // Copies for tunnel outputs dropped inside their clone count with classify's reasons.
        let (encapsulated, clone_drops) = self.switch.tunnel_tx();
        for (reason, n) in clone_drops {
            drops.push((format!("classify.{reason}"), n));
        }
        let nodes = reports
            .iter()
            .map(|r| {
                (
                    r.name.to_string(),
                    r.stats.calls,
                    r.stats.vectors,
                    r.stats.cycles,
                )
            })
            .collect();
        let bridges = self
            .bridges
            .iter()
            .map(|name| BridgeSnapshot {
                name: name.clone(),
                ports: self
                    .switch
                    .ports()
                    .iter()
                    .filter(|p| p.bridge == *name)
                    .map(|p| (p.name.clone(), p.ofport, p.stats.clone()))
                    .collect(),
            })
            .collect();
        let (classify, megaflows) = match self.switch.classifier() {
            Some(c) => (c.stats().to_map(), c.megaflows().len()),
            None => (BTreeMap::new(), 0),
        };
        let mut stats = self.stats;
        let c = self.switch.copies();
        stats.rx_copies += c.rx_copies;
        stats.rx_zero_copy += c.rx_zero_copy;
        stats.tx_copies += c.tx_copies;
        stats.tx_zero_copy += c.tx_zero_copy;
        PmdSnapshot {
            id: self.id,
            core: self.core,
            settings: self.settings,
            stats,
            rxqs,
            pool,
            nodes,
            drops,
            classify,
            megaflows,
            decapsulated: self.switch.decap_stats().decapsulated,
            encapsulated,
            too_big_answers: self.switch.too_big_answers(),
            bridges,
        }
    }

    /// The pool's frames: free, or held by the receive queues that joined it.
    fn pool_snapshot(&mut self) -> PoolSnapshot {
        let pool = self.switch.pool_mut();
        let (frames, free, addr) = (pool.capacity(), pool.available(), pool.memory_addr());
        let lent: usize = self
            .rxqs
            .iter()
            .map(|r| {
                let io = r.queue.lock();
                if io.joined_pool() == Some(addr) {
                    io.pool_frames_held()
                } else {
                    0
                }
            })
            .sum();
        PoolSnapshot {
            frames,
            umem: self.umem.is_some(),
            free,
            lent,
            unaccounted: frames.saturating_sub(free + lent),
        }
    }
}
