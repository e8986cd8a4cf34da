//! A poll-mode thread: it owns one [`Switch`] for every bridge (packet pool, graph, caches;
//! ports known by their datapath numbers, new flows translated by `openflow::DatapathUpcall`)
//! and a list of receive queues, and loops: poll each queue for a batch, run it through the
//! graph, send what the graph queued, account the cycles. The pool is made of a UMEM that the
//! PMD's AF_XDP receive queues join ([`PortIo::join_pool`]), whatever their bridge, when the
//! PMD takes them on, so frames pass between them with no copy, also from one bridge to
//! another; a PMD lets go of a queue ([`Pmd::leave_queues`]) before another takes it. Between
//! iterations it runs the jobs the control thread sends (reconfiguration, statistics,
//! acknowledgements), so the control thread never touches the per-packet state. An idle PMD
//! spins a little, then sleeps in `poll(2)` on its queues' descriptors (or in short naps when a
//! queue has none) unless busy polling was asked for.
//!
//! [`PortIo::join_pool`]: ports::PortIo::join_pool

mod queue;
mod snapshot;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use flowcache::ClassifyConfig;
use pipeline::buffer::FRAME_SIZE;
use pipeline::clock::{Clock, MonotonicClock};
use pipeline::PacketPool;
use serde::Serialize;

use openflow::DatapathUpcall;
use ports::afxdp::port::JOINED_OWN_FRAMES;
use ports::afxdp::Umem;
use ports::sys::{poll_readable, EventFd};
use ports::Wakeup;

use crate::packet_out::PacketOut;
use crate::switch::{Switch, SwitchPort, POOL_FRAMES};

pub use queue::Queue;
pub use snapshot::{BridgeSnapshot, PmdSnapshot, PoolSnapshot, RxqSnapshot};

/// Idle iterations before a PMD starts to sleep.
const IDLE_SPIN: u32 = 2000;

/// Frames of the packet pool of a PMD whose pool is a UMEM.
const UMEM_POOL_FRAMES: u32 = 16384;
/// AF_XDP queues, of all bridges together, that can join one such pool (each claims its own
/// frames beside it).
const UMEM_QUEUES: u32 = 16;

/// What the control thread wants a PMD to run, between two iterations.
pub type Job = Box<dyn FnOnce(&mut Pmd) + Send>;

/// A port as the plan names it: its numbers, and its queues (for transmit) in queue order.
#[derive(Clone)]
pub struct PortPlan {
    pub name: String,
    pub ofport: u32,
    /// Unique across the bridges: the `in_port` of its packets in the switch.
    pub dp_port: u32,
    /// Its MTU (`mtu_request`, else its kernel interface's, else 1500).
    pub mtu: u16,
    pub queues: Vec<Arc<Queue>>,
}

/// A bridge as the plan names it.
#[derive(Clone)]
pub struct BridgePlan {
    pub name: String,
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
            // VPP's frame size, not OVS's 32: per-burst work (ring indexes, fences, prefetch
            // set-up, per-group actions) spreads over more packets. In the vhost-user loop
            // 256 costs 155 against 243 cycles/pkt far (split) and ~186 against ~218 near; on
            // veth it is level; at ping rates the round trip is the same (BENCHMARKS.md, "The
            // default batch").
            batch: 256,
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
    /// Cycles of the iterations that received packets: OVS's "processing cycles" (the whole
    /// iteration: every queue's receive burst, full or empty, the graph, the transmit bursts
    /// and the queues' upkeep).
    pub busy_cycles: u64,
    /// Of `busy_cycles`: in the ports' receive bursts (copies into the pool included, and
    /// looks at queues that had nothing).
    pub busy_rx_cycles: u64,
    /// Of `busy_cycles`: running the batches through the graph (the nodes `runtime` lists,
    /// and the scatter between them).
    pub busy_graph_cycles: u64,
    /// Of `busy_cycles`: in the ports' transmit bursts.
    pub busy_tx_cycles: u64,
    /// Of `busy_cycles`: the queues' upkeep once per iteration (transmit kicks, completions,
    /// refilling receive rings).
    pub busy_upkeep_cycles: u64,
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

/// What a PMD is made with, besides its job channel and wake-up.
pub struct PmdSetup {
    pub id: usize,
    pub core: Option<usize>,
    pub settings: PmdSettings,
    pub classify: ClassifyConfig,
    /// The daemon's upcall: every bridge, by datapath port (clones share its port map).
    pub upcall: DatapathUpcall,
    pub clock: Arc<MonotonicClock>,
    /// Bytes of one frame of the packet pool: [`pipeline::buffer::FRAME_SIZE`] (then the
    /// pool lives in a UMEM AF_XDP queues share), or more for the largest MTU of the ports
    /// ([`pipeline::frame_size_for_mtu`]; the pool is then plain memory).
    pub frame_size: usize,
    /// Where the PMD is in its loop, for the control thread's rule barrier.
    pub progress: Arc<PmdProgress>,
}

/// Where a PMD is in its loop, published for [`crate::daemon::Daemon::rules_barrier`]: the
/// iterations it has finished, and whether it sleeps (is between iterations). Every
/// iteration starts from the bridges' current rules, so once a PMD has finished an iteration
/// that was running when the rules changed, or has been seen asleep after the change, no
/// packet it handles uses the old rules.
///
/// Both fields are stored and loaded `SeqCst`, and Release/Acquire would not do: the
/// barrier is a store-buffering (Dekker) pattern, not a message passed from the PMD. The
/// control thread publishes the rules (an `ArcSwap` swap, `SeqCst`) and then loads
/// `iterations`; the PMD stores `iterations` (or `sleeping = false`) and then loads the
/// rules for its next iteration (`SeqCst` in `ArcSwap`). The barrier counts on "the control
/// thread read the old count, so the PMD's store of the new one, and the rules load after
/// it, come after the publish". That holds only in the single order of `SeqCst` operations;
/// with a Release store the PMD could load the old rules while its new count still sits in
/// its store buffer (x86 allows exactly this), and the barrier would return while the next
/// iteration uses them.
#[derive(Debug, Default)]
pub struct PmdProgress {
    pub iterations: AtomicU64,
    pub sleeping: AtomicBool,
}

/// Where one iteration's cycles went (see [`PmdStats`]).
#[derive(Clone, Copy, Default)]
struct IterationCycles {
    rx: u64,
    graph: u64,
    tx: u64,
    upkeep: u64,
}

struct PmdRxq {
    queue: Arc<Queue>,
    /// Its port's index in the switch.
    port: usize,
    /// When a queue with a poll interval is looked at next.
    next_poll_ns: u64,
}

/// The state of one poll-mode thread.
pub struct Pmd {
    pub id: usize,
    pub core: Option<usize>,
    pub settings: PmdSettings,
    pub stats: PmdStats,
    switch: Switch<DatapathUpcall>,
    /// The UMEM the switch's packet pool is made of, for AF_XDP queues to join; `None` when it
    /// could not be mapped (the pool is then plain memory).
    umem: Option<Arc<Umem>>,
    /// Per switch port (same index): the queues to transmit on.
    tx: Vec<Vec<Arc<Queue>>>,
    /// The bridges of the plan, in its order.
    bridges: Vec<String>,
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
    progress: Arc<PmdProgress>,
    stop: bool,
}

impl Pmd {
    /// A PMD with no ports and empty caches, its packet pool in a UMEM of its own when one can
    /// be mapped (no privilege is needed until a queue joins). Build it on its own thread: the
    /// graph's nodes are not `Send`.
    pub fn new(setup: PmdSetup, jobs: Receiver<Job>, wake: Arc<EventFd>) -> anyhow::Result<Pmd> {
        let frames = UMEM_POOL_FRAMES + UMEM_QUEUES * JOINED_OWN_FRAMES;
        // A UMEM's chunks are FRAME_SIZE: a pool of larger frames (jumbo MTUs) is plain
        // memory, and AF_XDP queues stay on their own UMEMs (one copy each way).
        let umem_frames = setup.frame_size <= FRAME_SIZE;
        let in_umem = umem_frames
            .then(|| Umem::map(frames).ok())
            .flatten()
            .and_then(|umem| {
                let memory = umem.pool_memory(UMEM_POOL_FRAMES).ok()?;
                let pool = PacketPool::over(memory, UMEM_POOL_FRAMES).ok()?;
                Some((umem, pool))
            });
        let (umem, pool) = match in_umem {
            Some((umem, pool)) => (Some(umem), pool),
            None => (
                None,
                PacketPool::with_frame_size(POOL_FRAMES, setup.frame_size),
            ),
        };
        let neighs = setup.upcall.underlay().neighs.clone();
        let options = setup.upcall.underlay().options.clone();
        let mut switch = Switch::with_pool(setup.upcall, setup.classify, pool)?;
        switch.set_neigh_table(neighs);
        switch.set_option_store(options);
        Ok(Pmd {
            id: setup.id,
            core: setup.core,
            settings: setup.settings,
            stats: PmdStats::default(),
            switch,
            umem,
            tx: Vec::new(),
            bridges: Vec::new(),
            rxqs: Vec::new(),
            touched: Vec::new(),
            fds: vec![wake.raw_fd()],
            all_fds: true,
            clock: setup.clock,
            jobs,
            wake,
            progress: setup.progress,
            stop: false,
        })
    }

    /// Ends the loop after the current job.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Takes on a new configuration: the bridges and ports that exist (for transmit) and the
    /// receive queues this PMD polls. The caches, and the counters of the ports that stay,
    /// are kept.
    pub fn apply_plan(&mut self, plan: &[BridgePlan], rxqs: &[Arc<Queue>]) -> anyhow::Result<()> {
        let wanted: Vec<(SwitchPort, &PortPlan)> = plan
            .iter()
            .flat_map(|b| {
                b.ports.iter().map(|p| {
                    let sp = SwitchPort::new(&b.name, &p.name, p.ofport, p.dp_port);
                    (sp.with_mtu(p.mtu), p)
                })
            })
            .collect();
        // A port that went, or whose datapath number now names another port, goes (and its
        // counters with it).
        let gone: Vec<u32> = self
            .switch
            .ports()
            .iter()
            .filter(|sp| !wanted.iter().any(|(w, _)| w.same_port(sp)))
            .map(|sp| sp.dp_port)
            .collect();
        for dp_port in gone {
            self.switch.remove_port(dp_port);
        }
        for (w, _) in &wanted {
            self.switch.add_port(w.clone());
            // A port that stays may have a new MTU.
            self.switch.set_port_mtu(w.dp_port, w.mtu);
        }
        self.tx = self
            .switch
            .ports()
            .iter()
            .map(|sp| {
                wanted
                    .iter()
                    .find(|(w, _)| w.dp_port == sp.dp_port)
                    .map(|(_, p)| p.queues.clone())
                    .unwrap_or_default()
            })
            .collect();
        self.bridges = plan.iter().map(|b| b.name.clone()).collect();
        let ports = self.switch.ports();
        self.rxqs = rxqs
            .iter()
            .filter_map(|q| {
                let port = ports.iter().position(|p| p.dp_port == q.dp_port)?;
                Some(PmdRxq {
                    queue: q.clone(),
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
        for qs in &self.tx {
            if !qs.is_empty() {
                add(&qs[self.id % qs.len()]);
            }
        }
        // An AF_XDP queue's socket moves into this PMD's pool (re-opened, so its descriptor
        // changes); the descriptors are read after that.
        for r in &self.rxqs {
            let mut io = r.queue.lock();
            let Some(umem) = &self.umem else {
                io.open_alone();
                continue;
            };
            let pool = self.switch.pool_mut();
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

    /// Lets every receive queue not in `keep` leave this PMD's pool, so that the PMD that
    /// receives on it next (or no one) can take it: the first half of a new plan, run on
    /// every PMD before any takes on its new queues.
    pub fn leave_queues(&mut self, keep: &[Arc<Queue>]) {
        for r in &self.rxqs {
            if keep.iter().any(|k| Arc::ptr_eq(k, &r.queue)) {
                continue;
            }
            r.queue.lock().leave_pool(self.switch.pool_mut());
        }
    }

    /// The names of the bridges this PMD has, in the plan's order.
    pub fn bridge_names(&self) -> Vec<String> {
        self.bridges.clone()
    }

    /// The switch of every bridge.
    pub fn switch_mut(&mut self) -> &mut Switch<DatapathUpcall> {
        &mut self.switch
    }

    /// The megaflows of `only` (of every bridge without it), one `(bridge, lines)` per bridge
    /// in the plan's order, ports by name with `names`: see [`Switch::dump_megaflows_text`].
    pub fn dump_megaflows(
        &mut self,
        only: Option<&str>,
        now_ns: u64,
        names: bool,
    ) -> Vec<(String, Vec<String>)> {
        let bridges: Vec<String> = self
            .bridges
            .iter()
            .filter(|b| only.is_none_or(|o| o == b.as_str()))
            .cloned()
            .collect();
        bridges
            .into_iter()
            .map(|b| {
                let lines = self.switch.dump_megaflows_text(&b, now_ns, names);
                (b, lines)
            })
            .collect()
    }

    /// Changes the megaflow limit (OVS `flow-limit`).
    pub fn set_flow_limit(&mut self, limit: usize) {
        if let Some(c) = self.switch.classifier() {
            c.set_flow_limit(limit);
        }
    }

    /// Changes how many VLAN headers are parsed (OVS `vlan-limit`); the caches are flushed.
    pub fn set_vlan_limit(&mut self, vlans: pipeline::VlanLimit) {
        self.switch.set_vlan_limit(vlans);
    }

    /// Zeroes this PMD's counters (the queues' placement cycles stay).
    pub fn clear_stats(&mut self) {
        self.stats = PmdStats::default();
        self.switch.clear_stats();
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
                // Give the queues' frames back: this PMD's pool goes away with it. The queues
                // stay closed until the next plan places them on a PMD.
                self.leave_queues(&[]);
                break;
            }
            let start = pipeline::cycles::now();
            let (got, parts) = self.iteration();
            let end = pipeline::cycles::now();
            self.stats.iterations += 1;
            // SeqCst, not Release: see `PmdProgress`.
            self.progress
                .iterations
                .store(self.stats.iterations, Ordering::SeqCst);
            if got > 0 {
                self.stats.busy_iterations += 1;
                self.stats.busy_cycles += end - start;
                self.stats.busy_rx_cycles += parts.rx;
                self.stats.busy_graph_cycles += parts.graph;
                self.stats.busy_tx_cycles += parts.tx;
                self.stats.busy_upkeep_cycles += parts.upkeep;
                idle = 0;
                sleep_us = 10;
            } else {
                self.stats.idle_cycles += end - start;
                idle = idle.saturating_add(1);
                // Without frames the classifier still ages its megaflows and revalidates
                // them after a change (their NetFlow records expire with them).
                if idle > IDLE_SPIN && (!self.settings.busy_poll || idle.is_multiple_of(4096)) {
                    let now = self.clock.now_ns();
                    if let Some(c) = self.switch.classifier() {
                        c.upkeep(now);
                    }
                }
                if !self.settings.busy_poll && idle > IDLE_SPIN {
                    self.sleep(sleep_us);
                    sleep_us = (sleep_us * 2).min(self.settings.sleep_max_us.max(1));
                }
            }
        }
    }

    /// Polls every queue once; returns the packets received and where the cycles went.
    fn iteration(&mut self) -> (usize, IterationCycles) {
        let now = self.clock.now_ns();
        let batch = self.settings.batch;
        let pmd = self.id;
        let mut got = 0;
        let mut parts = IterationCycles::default();
        for r in self.rxqs.iter_mut() {
            if now < r.next_poll_ns {
                continue;
            }
            let t0 = pipeline::cycles::now();
            let graph0 = self.switch.dispatch_cycles();
            let n = {
                let mut io = r.queue.lock();
                self.switch.receive_with(r.port, now, |sink| {
                    io.rx_burst_into(batch, sink);
                })
            };
            let t1 = pipeline::cycles::now();
            let graph = self.switch.dispatch_cycles() - graph0;
            parts.graph += graph;
            parts.rx += (t1 - t0).saturating_sub(graph);
            if n == 0 {
                // Frames keep a queue looked at every iteration; an empty look waits its
                // interval (0 for most).
                r.next_poll_ns = now.saturating_add(r.queue.rx_poll_interval_ns);
                continue;
            }
            self.stats.rx_packets += n as u64;
            self.stats.rx_batches += 1;
            Self::send_queued(&mut self.switch, &self.tx, pmd, &mut self.stats);
            let t2 = pipeline::cycles::now();
            parts.tx += t2 - t1;
            r.queue.cycles.fetch_add(t2 - t0, Ordering::Relaxed);
            r.queue.packets.fetch_add(n as u64, Ordering::Relaxed);
            got += n;
        }
        let t3 = pipeline::cycles::now();
        for q in &self.touched {
            q.lock().poll();
        }
        parts.upkeep = pipeline::cycles::now() - t3;
        (got, parts)
    }

    /// Hands what the switch queued for each port to the port's transmit queue of PMD `pmd`.
    fn send_queued(
        switch: &mut Switch<DatapathUpcall>,
        tx: &[Vec<Arc<Queue>>],
        pmd: usize,
        stats: &mut PmdStats,
    ) {
        for (i, queues) in tx.iter().enumerate() {
            if !switch.tx_pending(i) {
                continue;
            }
            // A port without queues (none, normally) gets nothing: its frames are freed.
            let Some(q) = queues.get(pmd % queues.len().max(1)) else {
                switch.discard_tx(i);
                continue;
            };
            let mut io = q.lock();
            let full = io.tx_full_loss();
            stats.tx_packets +=
                switch.drain_tx_batch_as(i, full, |pool, ids| io.tx_packets(pool, ids)) as u64;
        }
    }

    /// Runs a PACKET_OUT ([`Switch::packet_out`]) and sends what it queued.
    pub fn packet_out(&mut self, po: &PacketOut) {
        let now = self.clock.now_ns();
        self.switch.packet_out(po, now);
        Self::send_queued(&mut self.switch, &self.tx, self.id, &mut self.stats);
    }

    /// Sleeps until a queue has frames, a job arrives, or `us` microseconds pass.
    fn sleep(&mut self, us: u64) {
        self.stats.sleeps += 1;
        self.progress.sleeping.store(true, Ordering::SeqCst);
        self.sleep_inner(us);
        self.progress.sleeping.store(false, Ordering::SeqCst);
    }

    fn sleep_inner(&mut self, us: u64) {
        // A queue without a descriptor (a generator) is ready whenever it says so: nap.
        let wakeup = if self.all_fds {
            self.arm_queues()
        } else {
            Wakeup::Nap
        };
        match wakeup {
            Wakeup::Armed => {
                let ms = us.div_ceil(1000).min(i32::MAX as u64) as i32;
                if poll_readable(&self.fds, ms).is_err() {
                    std::thread::sleep(Duration::from_micros(us));
                }
                self.wake.drain();
            }
            Wakeup::Pending => {}
            Wakeup::Nap => std::thread::sleep(Duration::from_micros(us.min(50))),
        }
    }

    /// Asks every queue to make its descriptor wake this PMD ([`PortIo::before_sleep`]):
    /// `Pending` when one has frames already, else `Nap` when one cannot wake it, else `Armed`.
    fn arm_queues(&self) -> Wakeup {
        let mut wakeup = Wakeup::Armed;
        for r in &self.rxqs {
            match r.queue.lock().before_sleep() {
                Wakeup::Pending => return Wakeup::Pending,
                Wakeup::Nap => wakeup = Wakeup::Nap,
                Wakeup::Armed => {}
            }
        }
        wakeup
    }
}
