//! A poll-mode thread: it owns one [`Switch`] per bridge (packet pool, graph, caches) and a
//! list of receive queues, and loops: poll each queue for a batch, run it through the graph,
//! send what the graph queued, account the cycles. Each pool is made of a UMEM that the
//! PMD's AF_XDP receive queues join ([`PortIo::join_pool`]) when the PMD takes them on, so
//! frames pass between them with no copy; a PMD lets go of a queue ([`Pmd::leave_queues`])
//! before another takes it. Between iterations it runs the jobs the
//! control thread sends (reconfiguration, statistics, acknowledgements), so the control thread
//! never touches the per-packet state. An idle PMD spins a little, then sleeps in `poll(2)` on
//! its queues' descriptors (or in short naps when a queue has none) unless busy polling was
//! asked for.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use flowcache::ClassifyConfig;
use pipeline::clock::{Clock, MonotonicClock};
use pipeline::PacketPool;
use serde::Serialize;

use openflow::BridgeUpcall;
use ports::afxdp::port::JOINED_OWN_FRAMES;
use ports::afxdp::Umem;
use ports::sys::{poll_readable, EventFd};
use ports::{PortIo, QueueInfo};

use crate::switch::{PortStats, Switch, POOL_FRAMES};

/// Idle iterations before a PMD starts to sleep.
const IDLE_SPIN: u32 = 2000;

/// One queue of one port, shared between the PMD that receives on it and the PMDs that send
/// on it (each holds the lock for one burst).
pub struct Queue {
    pub bridge: String,
    pub port: String,
    pub ofport: u32,
    pub queue_id: u32,
    /// [`PortIo::rx_poll_interval_ns`].
    pub rx_poll_interval_ns: u64,
    /// [`PortIo::link_flag`].
    pub link: Option<Arc<AtomicBool>>,
    pub io: Mutex<Box<dyn PortIo>>,
    /// Busy cycles the receiving PMD spent on this queue (receive, graph, transmit): what
    /// cycle-based placement balances.
    pub cycles: AtomicU64,
    /// Packets received on this queue.
    pub packets: AtomicU64,
}

impl Queue {
    pub fn new(bridge: &str, port: &str, ofport: u32, queue_id: u32, io: Box<dyn PortIo>) -> Queue {
        Queue {
            bridge: bridge.to_string(),
            port: port.to_string(),
            ofport,
            queue_id,
            rx_poll_interval_ns: io.rx_poll_interval_ns(),
            link: io.link_flag(),
            io: Mutex::new(io),
            cycles: AtomicU64::new(0),
            packets: AtomicU64::new(0),
        }
    }

    /// The port I/O, locked (a panic elsewhere leaves the queue usable).
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn PortIo>> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Type and mode, for `show` (the mode changes when an AF_XDP queue joins a PMD's pool).
    pub fn info(&self) -> QueueInfo {
        self.lock().info()
    }
}

/// What the control thread wants a PMD to run, between two iterations.
pub type Job = Box<dyn FnOnce(&mut Pmd) + Send>;

/// A port as the plan names it: its queues (for transmit) in queue order.
#[derive(Clone)]
pub struct PortPlan {
    pub name: String,
    pub ofport: u32,
    pub queues: Vec<Arc<Queue>>,
}

/// A bridge as the plan names it.
#[derive(Clone)]
pub struct BridgePlan {
    pub name: String,
    pub of: Arc<openflow::Bridge>,
    pub ports: Vec<PortPlan>,
}

/// Settings the control thread can change at run time.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct PmdSettings {
    /// Frames per receive burst (1..=256).
    pub batch: usize,
    /// Never sleep when idle.
    pub busy_poll: bool,
    /// Longest idle sleep, in microseconds.
    pub sleep_max_us: u64,
}

impl Default for PmdSettings {
    fn default() -> Self {
        PmdSettings {
            batch: 32,
            busy_poll: false,
            sleep_max_us: 100_000,
        }
    }
}

/// Counters of one PMD, like OVS's `pmd-perf-show`.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PmdStats {
    pub iterations: u64,
    /// Iterations that received at least one packet.
    pub busy_iterations: u64,
    /// Cycles of the iterations that received packets.
    pub busy_cycles: u64,
    /// Cycles of the iterations that received nothing (not counting sleeps).
    pub idle_cycles: u64,
    /// Times it went to sleep.
    pub sleeps: u64,
    pub rx_packets: u64,
    /// Receive bursts that returned packets (packets ÷ this = average batch).
    pub rx_batches: u64,
    /// Frames copied into the packet pool on receive.
    pub rx_copies: u64,
    /// Frames received in the pool's own memory (AF_XDP queues in the PMD's UMEM).
    pub rx_zero_copy: u64,
    /// Packets handed to ports' transmit bursts.
    pub tx_packets: u64,
    /// Of those, packets the port copied out of the pool.
    pub tx_copies: u64,
    /// Of those, packets the port sent from the pool as they are.
    pub tx_zero_copy: u64,
}

/// Frames of the packet pool of a bridge in a PMD whose pool is a UMEM.
const UMEM_POOL_FRAMES: u32 = 16384;
/// AF_XDP queues that can join one such pool (each claims its own frames beside it).
const UMEM_QUEUES: u32 = 16;

/// A bridge inside a PMD.
pub struct PmdBridge {
    pub name: String,
    pub of: Arc<openflow::Bridge>,
    pub switch: Switch<BridgeUpcall>,
    /// The UMEM the switch's packet pool is made of, for AF_XDP queues to join; `None`
    /// when it could not be mapped (the pool is then plain memory).
    umem: Option<Arc<Umem>>,
    /// Per switch port (same index): the queues to transmit on.
    tx: Vec<Vec<Arc<Queue>>>,
}

impl PmdBridge {
    /// The bridge `bp` with empty caches, its packet pool in a UMEM of its own when one can
    /// be mapped (no privilege is needed until a queue joins).
    fn new(bp: &BridgePlan, classify: ClassifyConfig) -> anyhow::Result<PmdBridge> {
        let upcall = BridgeUpcall::new(bp.of.clone());
        let frames = UMEM_POOL_FRAMES + UMEM_QUEUES * JOINED_OWN_FRAMES;
        let in_umem = Umem::map(frames).ok().and_then(|umem| {
            let memory = umem.pool_memory(UMEM_POOL_FRAMES).ok()?;
            let pool = PacketPool::over(memory, UMEM_POOL_FRAMES).ok()?;
            Some((umem, pool))
        });
        let (umem, pool) = match in_umem {
            Some((umem, pool)) => (Some(umem), pool),
            None => (None, PacketPool::new(POOL_FRAMES)),
        };
        Ok(PmdBridge {
            name: bp.name.clone(),
            of: bp.of.clone(),
            switch: Switch::with_pool(&[], upcall, classify, pool)?,
            umem,
            tx: Vec::new(),
        })
    }
}

struct PmdRxq {
    queue: Arc<Queue>,
    bridge: usize,
    port: usize,
    /// When a queue with a poll interval is looked at next.
    next_poll_ns: u64,
}

/// One receive queue's share, for `pmd-stats` and placement.
#[derive(Clone, Debug, Serialize)]
pub struct RxqSnapshot {
    pub bridge: String,
    pub port: String,
    pub queue: u32,
    pub cycles: u64,
    pub packets: u64,
}

/// Where the frames of one bridge's packet pool in one PMD are, between two iterations
/// (when no packet is in the graph): `free + lent == frames`, else frames leaked.
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

/// One bridge's counters inside one PMD.
#[derive(Clone, Debug, Serialize)]
pub struct BridgeSnapshot {
    pub name: String,
    pub pool: PoolSnapshot,
    pub ports: Vec<(String, u32, PortStats)>,
    /// `(node, calls, vectors, cycles)`.
    pub nodes: Vec<(String, u64, u64, u64)>,
    /// `(reason, count)`, non-zero only.
    pub drops: Vec<(String, u64)>,
    pub classify: BTreeMap<String, u64>,
    pub megaflows: usize,
}

/// Everything `pmd-stats`, `runtime`, `port-stats` and `drop-reasons` read from a PMD.
#[derive(Clone, Debug, Serialize)]
pub struct PmdSnapshot {
    pub id: usize,
    pub core: Option<usize>,
    pub settings: PmdSettings,
    pub stats: PmdStats,
    pub rxqs: Vec<RxqSnapshot>,
    pub bridges: Vec<BridgeSnapshot>,
}

/// The state of one poll-mode thread.
pub struct Pmd {
    pub id: usize,
    pub core: Option<usize>,
    pub settings: PmdSettings,
    pub stats: PmdStats,
    classify: ClassifyConfig,
    bridges: Vec<PmdBridge>,
    rxqs: Vec<PmdRxq>,
    /// Every distinct queue this PMD receives or transmits on (polled each iteration).
    touched: Vec<Arc<Queue>>,
    /// The receive queues' descriptors and the wake-up eventfd, for idle sleeps.
    fds: Vec<RawFd>,
    /// Whether every receive queue has a descriptor (else idle sleeps are short naps).
    all_fds: bool,
    clock: Arc<MonotonicClock>,
    jobs: Receiver<Job>,
    wake: Arc<EventFd>,
    stop: bool,
}

impl Pmd {
    pub fn new(
        id: usize,
        core: Option<usize>,
        settings: PmdSettings,
        classify: ClassifyConfig,
        clock: Arc<MonotonicClock>,
        jobs: Receiver<Job>,
        wake: Arc<EventFd>,
    ) -> Pmd {
        Pmd {
            id,
            core,
            settings,
            stats: PmdStats::default(),
            classify,
            bridges: Vec::new(),
            rxqs: Vec::new(),
            touched: Vec::new(),
            fds: vec![wake.raw_fd()],
            all_fds: true,
            clock,
            jobs,
            wake,
            stop: false,
        }
    }

    /// Ends the loop after the current job.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Takes on a new configuration: the bridges and ports that exist (for transmit) and the
    /// receive queues this PMD polls. Caches and counters of bridges and ports that stay are
    /// kept.
    pub fn apply_plan(&mut self, plan: &[BridgePlan], rxqs: &[Arc<Queue>]) -> anyhow::Result<()> {
        // Bridges: keep the ones still there (same OpenFlow bridge), make the new ones.
        let mut old: Vec<PmdBridge> = std::mem::take(&mut self.bridges);
        for bp in plan {
            let mut b = match old
                .iter()
                .position(|b| b.name == bp.name && Arc::ptr_eq(&b.of, &bp.of))
            {
                Some(i) => old.swap_remove(i),
                None => PmdBridge::new(bp, self.classify.clone())?,
            };
            let gone: Vec<u32> = b
                .switch
                .ports()
                .iter()
                .map(|p| p.ofport)
                .filter(|o| !bp.ports.iter().any(|p| p.ofport == *o))
                .collect();
            for o in gone {
                b.switch.remove_port(o);
            }
            for p in &bp.ports {
                b.switch.add_port(&p.name, p.ofport);
            }
            b.tx = b
                .switch
                .ports()
                .iter()
                .map(|sp| {
                    bp.ports
                        .iter()
                        .find(|p| p.ofport == sp.ofport)
                        .map(|p| p.queues.clone())
                        .unwrap_or_default()
                })
                .collect();
            self.bridges.push(b);
        }
        self.rxqs = rxqs
            .iter()
            .filter_map(|q| {
                let bridge = self.bridges.iter().position(|b| b.name == q.bridge)?;
                let port = self.bridges[bridge]
                    .switch
                    .ports()
                    .iter()
                    .position(|p| p.ofport == q.ofport)?;
                Some(PmdRxq {
                    queue: q.clone(),
                    bridge,
                    port,
                    next_poll_ns: 0,
                })
            })
            .collect();
        self.touched.clear();
        let mut add = |q: &Arc<Queue>| {
            if !self.touched.iter().any(|t| Arc::ptr_eq(t, q)) {
                self.touched.push(q.clone());
            }
        };
        for r in &self.rxqs {
            add(&r.queue);
        }
        for b in &self.bridges {
            for qs in &b.tx {
                if !qs.is_empty() {
                    add(&qs[self.id % qs.len()]);
                }
            }
        }
        // An AF_XDP queue's socket moves into this PMD's pool (re-opened, so its descriptor
        // changes); the descriptors are read after that.
        for r in &self.rxqs {
            let b = &mut self.bridges[r.bridge];
            let mut io = r.queue.lock();
            let Some(umem) = &b.umem else {
                io.open_alone();
                continue;
            };
            let pool = b.switch.pool_mut();
            if io.joined_pool() == Some(pool.memory_addr()) {
                continue;
            }
            if let Err(e) = io.join_pool(umem, pool) {
                eprintln!(
                    "vecswitch: pmd {}: {}: stays on its own memory (one copy each way): {e}",
                    self.id, r.queue.port
                );
                // A join refused before the socket was opened again (no frames left in the
                // UMEM) leaves a queue that had left its pool closed.
                io.open_alone();
            }
        }
        self.fds = self
            .rxqs
            .iter()
            .filter_map(|r| r.queue.lock().rx_fd())
            .collect();
        self.all_fds = self.fds.len() == self.rxqs.len();
        self.fds.push(self.wake.raw_fd());
        Ok(())
    }

    /// Lets every receive queue not in `keep` leave this PMD's pools, so that the PMD that
    /// receives on it next (or no one) can take it: the first half of a new plan, run on
    /// every PMD before any takes on its new queues.
    pub fn leave_queues(&mut self, keep: &[Arc<Queue>]) {
        for r in &self.rxqs {
            if keep.iter().any(|k| Arc::ptr_eq(k, &r.queue)) {
                continue;
            }
            let Some(b) = self.bridges.get_mut(r.bridge) else {
                continue;
            };
            r.queue.lock().leave_pool(b.switch.pool_mut());
        }
    }

    /// The bridge named `name` inside this PMD.
    pub fn bridge_mut(&mut self, name: &str) -> Option<&mut PmdBridge> {
        self.bridges.iter_mut().find(|b| b.name == name)
    }

    /// The names of the bridges this PMD has.
    pub fn bridge_names(&self) -> Vec<String> {
        self.bridges.iter().map(|b| b.name.clone()).collect()
    }

    /// Changes the megaflow limit of every bridge (OVS `flow-limit`).
    pub fn set_flow_limit(&mut self, limit: usize) {
        self.classify.flow_limit = limit;
        for b in &mut self.bridges {
            if let Some(c) = b.switch.classifier() {
                c.set_flow_limit(limit);
            }
        }
    }

    /// Changes how many VLAN headers every bridge parses (OVS `vlan-limit`); their caches
    /// are flushed.
    pub fn set_vlan_limit(&mut self, vlans: pipeline::VlanLimit) {
        self.classify.vlans = vlans;
        for b in &mut self.bridges {
            b.switch.set_vlan_limit(vlans);
        }
    }

    /// Zeroes this PMD's counters (the queues' placement cycles stay).
    pub fn clear_stats(&mut self) {
        self.stats = PmdStats::default();
        for b in &mut self.bridges {
            b.switch.clear_stats();
        }
    }

    /// The counters, for the control thread.
    pub fn snapshot(&mut self) -> PmdSnapshot {
        let rxqs = self
            .rxqs
            .iter()
            .map(|r| RxqSnapshot {
                bridge: r.queue.bridge.clone(),
                port: r.queue.port.clone(),
                queue: r.queue.queue_id,
                cycles: r.queue.cycles.load(Ordering::Relaxed),
                packets: r.queue.packets.load(Ordering::Relaxed),
            })
            .collect();
        let rxqs_ref = &self.rxqs;
        let bridges = self
            .bridges
            .iter_mut()
            .enumerate()
            .map(|(bi, b)| {
                let pool = b.switch.pool_mut();
                let (frames, free, addr) = (pool.capacity(), pool.available(), pool.memory_addr());
                let lent: usize = rxqs_ref
                    .iter()
                    .filter(|r| r.bridge == bi)
                    .map(|r| {
                        let io = r.queue.lock();
                        if io.joined_pool() == Some(addr) {
                            io.pool_frames_held()
                        } else {
                            0
                        }
                    })
                    .sum();
                let pool = PoolSnapshot {
                    frames,
                    umem: b.umem.is_some(),
                    free,
                    lent,
                    unaccounted: frames.saturating_sub(free + lent),
                };
                let reports = b.switch.node_reports();
                let mut drops: Vec<(String, u64)> = reports
                    .iter()
                    .flat_map(|r| {
                        r.drops
                            .iter()
                            .filter(|(_, n)| *n > 0)
                            .map(move |(reason, n)| (format!("{}.{reason}", r.name), *n))
                    })
                    .collect();
                let no_port = b.switch.tx_no_such_port();
                if no_port > 0 {
                    drops.push(("tx.no-such-port".to_string(), no_port));
                }
                let ports = b
                    .switch
                    .ports()
                    .iter()
                    .map(|p| (p.name.clone(), p.ofport, p.stats.clone()))
                    .collect();
                let (classify, megaflows) = match b.switch.classifier() {
                    Some(c) => (c.stats().to_map(), c.megaflows().len()),
                    None => (BTreeMap::new(), 0),
                };
                BridgeSnapshot {
                    name: b.name.clone(),
                    pool,
                    ports,
                    nodes: reports
                        .iter()
                        .map(|r| {
                            (
                                r.name.to_string(),
                                r.stats.calls,
                                r.stats.vectors,
                                r.stats.cycles,
                            )
                        })
                        .collect(),
                    drops,
                    classify,
                    megaflows,
                }
            })
            .collect();
        let mut stats = self.stats;
        for b in &self.bridges {
            let c = b.switch.copies();
            stats.rx_copies += c.rx_copies;
            stats.rx_zero_copy += c.rx_zero_copy;
            stats.tx_copies += c.tx_copies;
            stats.tx_zero_copy += c.tx_zero_copy;
        }
        PmdSnapshot {
            id: self.id,
            core: self.core,
            settings: self.settings,
            stats,
            rxqs,
            bridges,
        }
    }

    /// The loop. Returns when a job calls [`Pmd::stop`] or the control thread goes away.
    pub fn run(mut self) {
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!("vecswitch: pmd {}: could not pin to core {core}", self.id);
            }
        }
        let mut idle: u32 = 0;
        let mut sleep_us: u64 = 10;
        loop {
            loop {
                match self.jobs.try_recv() {
                    Ok(job) => job(&mut self),
                    Err(TryRecvError::Empty) => break,
                    // The daemon is gone: nothing will ever stop us otherwise.
                    Err(TryRecvError::Disconnected) => {
                        self.stop = true;
                        break;
                    }
                }
            }
            if self.stop {
                // Give the queues' frames back: this PMD's pools go away with it. The queues
                // stay closed until the next plan places them on a PMD.
                self.leave_queues(&[]);
                break;
            }
            let start = pipeline::cycles::now();
            let got = self.iteration();
            let end = pipeline::cycles::now();
            self.stats.iterations += 1;
            if got > 0 {
                self.stats.busy_iterations += 1;
                self.stats.busy_cycles += end - start;
                idle = 0;
                sleep_us = 10;
            } else {
                self.stats.idle_cycles += end - start;
                idle = idle.saturating_add(1);
                if !self.settings.busy_poll && idle > IDLE_SPIN {
                    self.sleep(sleep_us);
                    sleep_us = (sleep_us * 2).min(self.settings.sleep_max_us.max(1));
                }
            }
        }
    }

    /// Polls every queue once; returns the packets received.
    fn iteration(&mut self) -> usize {
        let now = self.clock.now_ns();
        let batch = self.settings.batch;
        let pmd = self.id;
        let mut got = 0;
        for r in self.rxqs.iter_mut() {
            if now < r.next_poll_ns {
                continue;
            }
            let t0 = pipeline::cycles::now();
            let Some(b) = self.bridges.get_mut(r.bridge) else {
                continue;
            };
            let n = {
                let mut io = r.queue.lock();
                b.switch.receive_with(r.port, now, |sink| {
                    io.rx_burst_into(batch, sink);
                })
            };
            if n == 0 {
                // Frames keep a queue looked at every iteration; an empty look waits its
                // interval (0 for most).
                r.next_poll_ns = now.saturating_add(r.queue.rx_poll_interval_ns);
                continue;
            }
            self.stats.rx_packets += n as u64;
            self.stats.rx_batches += 1;
            for (i, queues) in b.tx.iter().enumerate() {
                if !b.switch.tx_pending(i) {
                    continue;
                }
                // A port without queues (none, normally) gets nothing: its frames are freed.
                let Some(q) = queues.get(pmd % queues.len().max(1)) else {
                    b.switch.discard_tx(i);
                    continue;
                };
                let mut io = q.lock();
                self.stats.tx_packets += b
                    .switch
                    .drain_tx_batch(i, |pool, ids| io.tx_packets(pool, ids))
                    as u64;
            }
            r.queue
                .cycles
                .fetch_add(pipeline::cycles::now() - t0, Ordering::Relaxed);
            r.queue.packets.fetch_add(n as u64, Ordering::Relaxed);
            got += n;
        }
        for q in &self.touched {
            q.lock().poll();
        }
        got
    }

    /// Sleeps until a queue has frames, a job arrives, or `us` microseconds pass.
    fn sleep(&mut self, us: u64) {
        self.stats.sleeps += 1;
        if self.all_fds {
            let ms = us.div_ceil(1000).min(i32::MAX as u64) as i32;
            if poll_readable(&self.fds, ms).is_err() {
                std::thread::sleep(Duration::from_micros(us));
            }
            self.wake.drain();
        } else {
            // A queue without a descriptor (a generator) is ready whenever it says so: nap.
            std::thread::sleep(Duration::from_micros(us.min(50)));
        }
    }
}
