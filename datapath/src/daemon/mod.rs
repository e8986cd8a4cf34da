//! The daemon: bridges (OpenFlow rules and NORMAL's MAC table), their ports (one or more
//! queues each) and the PMD threads that move the packets. This module is the control thread's
//! state: it opens and closes ports, numbers them for the datapath (a datapath port number
//! unique across bridges, the lowest free one from 1, kept while the port exists) and
//! publishes the port map the PMDs' `openflow::DatapathUpcall` translates with, places
//! receive queues on PMDs by measured cycles (OVS's `pmd-rxq-assign=cycles`) and reaches into
//! a PMD only through jobs it runs between two iterations ([`pmd::Job`]). The `control` crate
//! turns control-socket requests and the TOML file into calls here.

pub mod pmd;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use conntrack::{ConnTable, CtConfig};
use crossbeam_channel::{Receiver, Sender};
use flowcache::ClassifyConfig;
use netflow::{BridgeNetflow, NetflowOptions};
use openflow::normal::{MacTable, NormalPort, VlanMode, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use pipeline::clock::{Clock, MonotonicClock};

use openflow::{DatapathBridge, DatapathUpcall, Underlay, DEFAULT_RULES, OFPP_LOCAL};
use pmd::{BridgePlan, Job, Pmd, PmdProgress, PmdSettings, PmdSetup, PmdSnapshot, PortPlan, Queue};
use ports::spec::{PortKind, PortSpec, VlanSpec};
use ports::sys::EventFd;
use ports::PortLosses;
use tunnels::underlay::{BridgeAddr, NeighTable, RouteTable};
use tunnels::{SnoopBridge, TunnelDecapConfig, VtepEndpoint};

use crate::conntrack::DatapathConntrack;
use crate::packet_out::PacketOut;
use crate::tunnel_ports::{tunnel_output, tunnel_receive};

/// The port type `vecswitch attach` gives the host end of a veth pair: AF_XDP, because on veth
/// it forwarded 1.1–1.3× the packets of AF_PACKET (TPACKET_V3/V2) at 0.7–0.9× the cycles per
/// packet in every case measured (BENCHMARKS.md, "AF_XDP against AF_PACKET on veth").
pub const ATTACH_PORT_TYPE: &str = "afxdp";

/// How long the control thread waits for a PMD to answer a job.
const PMD_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// PACKET_OUTs sent to a PMD and not run yet beyond which [`Daemon::packet_out`] waits for
/// the PMD to run them.
const PACKET_OUTS_IN_FLIGHT: usize = 256;

/// A port of a bridge.
pub struct PortState {
    pub name: String,
    pub ofport: u32,
    /// Unique across the bridges: the port's number in the PMDs' switches.
    pub dp_port: u32,
    pub spec: PortSpec,
    pub vlan: VlanMode,
    pub queues: Vec<Arc<Queue>>,
    /// Set when the port's interface disappeared: its queues are no longer polled.
    pub down: bool,
    /// The MTU of its kernel interface (afxdp, afpacket, tap), read again every second: tunnel
    /// packets sent out of it must fit.
    pub mtu: Option<u16>,
    /// When the port was added: OpenFlow port stats' duration, as Open vSwitch's.
    pub added: std::time::Instant,
}

impl PortState {
    /// The MTU its frames are checked against: `mtu_request`, else its kernel interface's,
    /// else 1500.
    pub fn effective_mtu(&self) -> u16 {
        self.spec.mtu(self.mtu)
    }

    /// Refuses `mtu` (naming `mtu_request`) if its frames are longer than a queue of the
    /// port takes (an AF_XDP socket without multi-buffer: one UMEM chunk).
    fn check_mtu(&self, mtu: u16) -> Result<()> {
        let max_frame = self.queues.iter().filter_map(|q| q.max_frame).min();
        ports::spec::check_frame_limit(&self.spec.kind, mtu, max_frame).map_err(|e| anyhow!("{e}"))
    }

    /// Its link as `show` prints it: `up`, `down` (its interface went), `waiting` (a
    /// vhost-user port without a running guest), or its kernel interface's operstate,
    /// `down` or `gone` (afxdp, afpacket, tap).
    pub fn link_state(&self) -> &'static str {
        let link = self.queues.first().and_then(|q| q.link.as_ref());
        if self.down {
            "down"
        } else if let Some(link) = link {
            // A vhost-user port: up while a guest has its rings running.
            if link.load(std::sync::atomic::Ordering::Relaxed) {
                "up"
            } else {
                "waiting"
            }
        } else if needs_interface(&self.spec) || matches!(self.spec.kind, PortKind::Tap) {
            link_state(&self.name)
        } else {
            "up"
        }
    }

    /// The port type's counters summed over its queues, since the last
    /// [`PortState::clear_counters`] (gauges as they are).
    pub fn counters(&self) -> BTreeMap<&'static str, u64> {
        let mut sum: BTreeMap<&'static str, u64> = BTreeMap::new();
        for q in &self.queues {
            for (k, v) in q.counters() {
                *sum.entry(k).or_default() += v;
            }
        }
        sum
    }

    /// The frames the port type lost, summed over its queues, since the last
    /// [`PortState::clear_counters`].
    pub fn losses(&self) -> PortLosses {
        let mut sum = PortLosses::default();
        for q in &self.queues {
            sum.merge(&q.losses());
        }
        sum
    }

    /// Counts the port type's counters and losses, and its queues' packets and cycles shown,
    /// from zero again.
    pub fn clear_counters(&mut self) {
        for q in &self.queues {
            q.clear();
        }
    }
}

/// A bridge.
pub struct BridgeState {
    pub name: String,
    pub of: Arc<openflow::Bridge>,
    pub ports: Vec<PortState>,
    /// The addresses of its LOCAL tap, as the kernel has them (`ip addr add ... dev BRIDGE`):
    /// the VTEP addresses of the tunnels sent through it. Read again every second.
    pub addresses: Vec<BridgeAddr>,
    /// The MAC of its LOCAL tap: the outer source MAC of those tunnels.
    pub mac: Option<[u8; 6]>,
    /// Packet-ins its `controller` actions sent that no controller connection took (Open
    /// vSwitch's `connmgr_async_unsent`).
    pub packet_ins_unsent: u64,
    /// Its OpenFlow connections (`set-controller`); the control thread runs them.
    pub controllers: ofconn::Controllers,
    /// The datapath id set for it; `None`: derived from its MAC (see [`BridgeState::datapath_id`]).
    pub datapath_id: Option<u64>,
}

impl BridgeState {
    /// Whether port `p` is live (OpenFlow's `OFPPS_LIVE`, fast-failover liveness): its link
    /// is up and no PORT_MOD took it down.
    pub fn port_live(&self, p: &PortState) -> bool {
        p.link_state() == "up"
            && self.of.port_config(p.ofport) & openflow::bridge::OFPPC_PORT_DOWN == 0
    }

    /// The datapath id OpenFlow controllers see: the one set, else as Open vSwitch derives
    /// it, the bridge's MAC in the low 48 bits; a bridge without a LOCAL tap has no MAC and
    /// gets a locally administered one made from its name (stable across restarts).
    pub fn datapath_id(&self) -> u64 {
        if let Some(id) = self.datapath_id {
            return id;
        }
        let mac = self.mac.unwrap_or_else(|| name_mac(&self.name));
        mac.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
    }
}

/// A locally administered unicast MAC from a name (FNV-1a of its bytes).
fn name_mac(name: &str) -> [u8; 6] {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [(b[2] & 0xfe) | 0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// A running PMD thread as the control thread sees it.
struct PmdHandle {
    id: usize,
    core: Option<usize>,
    jobs: Sender<Job>,
    wake: Arc<EventFd>,
    progress: Arc<PmdProgress>,
    thread: Option<JoinHandle<()>>,
}

/// The daemon's configuration that is not bridges.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// One PMD per entry; `None` leaves that PMD unpinned.
    pub pmd_cores: Vec<Option<usize>>,
    pub pmd: PmdSettings,
    pub classify: ClassifyConfig,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            pmd_cores: vec![default_pmd_core()],
            pmd: PmdSettings::default(),
            classify: ClassifyConfig::default(),
        }
    }
}

/// The last core of the machine (the first is left to the control thread and the kernel).
pub fn default_pmd_core() -> Option<usize> {
    let cores = core_affinity::get_core_ids()?;
    cores.last().map(|c| c.id)
}

/// Expires the connections whose time is up, a slice of the table per call of the sweep
/// (each holds a shard's lock briefly), until a call finds less than its budget.
pub fn sweep_conntrack(table: &ConnTable, now_ns: u64) {
    const BUDGET: usize = 4096;
    for _ in 0..256 {
        if table.sweep(now_ns, BUDGET) < BUDGET {
            break;
        }
    }
}

/// The control thread's state.
pub struct Daemon {
    pub clock: Arc<MonotonicClock>,
    pub bridges: Vec<BridgeState>,
    pub settings: DaemonSettings,
    /// The underlay route table (`route-add`, and a connected route per bridge address).
    pub routes: RouteTable,
    /// The underlay neighbour table (`neigh-add`, and what the PMDs snoop).
    pub neighs: NeighTable,
    /// The connection table every PMD tracks in (`ct()` actions).
    pub conntrack: Arc<ConnTable>,
    /// The port map every PMD translates with (each holds a clone).
    upcall: DatapathUpcall,
    pmds: Vec<PmdHandle>,
    /// Which PMD polls each queue: `(bridge, port, queue) -> pmd id`.
    placement: Vec<(String, String, u32, usize)>,
    /// Bytes of a frame of the PMDs' packet pools: grown (the PMDs restarted) when a port's
    /// MTU needs more, as OVS-DPDK re-creates a mempool for a new MTU.
    frame_size: usize,
    /// PACKET_OUTs sent to the first PMD that it has not run yet.
    packet_outs_in_flight: Arc<AtomicUsize>,
}

impl Daemon {
    /// A daemon with no bridges and its PMD threads started.
    pub fn new(settings: DaemonSettings) -> Result<Daemon> {
        let (routes, neighs) = (RouteTable::new(), NeighTable::default());
        let conntrack = Arc::new(ConnTable::new(CtConfig::default()));
        let upcall = DatapathUpcall::with_underlay(Underlay::new(routes.clone(), neighs.clone()))
            .with_conntrack(Arc::new(DatapathConntrack(conntrack.clone())));
        let mut d = Daemon {
            clock: Arc::new(MonotonicClock::new()),
            bridges: Vec::new(),
            settings,
            conntrack,
            upcall,
            routes,
            neighs,
            pmds: Vec::new(),
            placement: Vec::new(),
            frame_size: pipeline::buffer::FRAME_SIZE,
            packet_outs_in_flight: Arc::new(AtomicUsize::new(0)),
        };
        d.start_pmds()?;
        Ok(d)
    }

    fn start_pmds(&mut self) -> Result<()> {
        for (id, core) in self.settings.pmd_cores.clone().into_iter().enumerate() {
            let (tx, rx): (Sender<Job>, Receiver<Job>) = crossbeam_channel::unbounded();
            let wake = Arc::new(EventFd::new().context("eventfd for a pmd")?);
            let progress = Arc::new(PmdProgress::default());
            let setup = PmdSetup {
                id,
                core,
                settings: self.settings.pmd,
                classify: self.settings.classify.clone(),
                upcall: self.upcall.clone(),
                clock: self.clock.clone(),
                frame_size: self.frame_size,
                progress: progress.clone(),
            };
            let pmd_wake = wake.clone();
            // The PMD is built on its own thread: graph nodes are not `Send`. One that cannot
            // be built says why; the jobs sent to it then fail ("thread is gone").
            let thread = std::thread::Builder::new()
                .name(format!("pmd{id}"))
                .spawn(move || match Pmd::new(setup, rx, pmd_wake) {
                    Ok(pmd) => pmd.run(),
                    Err(e) => eprintln!("vecswitch: pmd {id}: {e:#}"),
                })
                .context("starting a pmd thread")?;
            self.pmds.push(PmdHandle {
                id,
                core,
                jobs: tx,
                wake,
                progress,
                thread: Some(thread),
            });
        }
        Ok(())
    }

    fn stop_pmds(&mut self) {
        for p in &self.pmds {
            let _ = p.jobs.send(Box::new(|pmd: &mut Pmd| pmd.stop()));
            p.wake.notify();
        }
        for p in &mut self.pmds {
            if let Some(t) = p.thread.take() {
                let _ = t.join();
            }
        }
        self.pmds.clear();
    }

    /// The frozen translation states of `ct(table=N)` recirculations: how many are kept, and
    /// how many were freed because no megaflow recirculated to them any more.
    pub fn recirc_states(&self) -> (usize, u64) {
        let t = self.upcall.recirc();
        (t.len(), t.freed())
    }

    /// Now on the daemon's clock (the one the PMDs and the rule timeouts use).
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// The PMDs: `(id, core)`.
    pub fn pmds(&self) -> Vec<(usize, Option<usize>)> {
        self.pmds.iter().map(|p| (p.id, p.core)).collect()
    }

    /// Runs `f` on PMD `i` between two of its iterations and returns its result.
    pub fn pmd_call<R: Send + 'static>(
        &self,
        i: usize,
        f: impl FnOnce(&mut Pmd) -> R + Send + 'static,
    ) -> Result<R> {
        let p = self
            .pmds
            .get(i)
            .ok_or_else(|| anyhow!("pmd {i}: no such pmd"))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        p.jobs
            .send(Box::new(move |pmd: &mut Pmd| {
                let _ = tx.send(f(pmd));
            }))
            .map_err(|_| anyhow!("pmd {i}: thread is gone"))?;
        p.wake.notify();
        rx.recv_timeout(PMD_ANSWER_TIMEOUT)
            .map_err(|_| anyhow!("pmd {i}: no answer within {PMD_ANSWER_TIMEOUT:?}"))
    }

    /// Runs `f` on every PMD (all jobs sent first, so they run in parallel) and collects the
    /// results in PMD order.
    pub fn pmd_call_all<R: Send + 'static>(
        &self,
        f: impl Fn(&mut Pmd) -> R + Send + Sync + 'static,
    ) -> Result<Vec<R>> {
        let f = Arc::new(f);
        let mut answers = Vec::new();
        for p in &self.pmds {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let f = f.clone();
            p.jobs
                .send(Box::new(move |pmd: &mut Pmd| {
                    let _ = tx.send(f(pmd));
                }))
                .map_err(|_| anyhow!("pmd {}: thread is gone", p.id))?;
            p.wake.notify();
            answers.push((p.id, rx));
        }
        answers
            .into_iter()
            .map(|(id, rx)| {
                rx.recv_timeout(PMD_ANSWER_TIMEOUT)
                    .map_err(|_| anyhow!("pmd {id}: no answer within {PMD_ANSWER_TIMEOUT:?}"))
            })
            .collect()
    }

    /// Returns once every PMD has finished the iteration it was in: from then on every batch
    /// starts by revalidating against the bridges' current rules (the acknowledgement of a
    /// rule change).
    pub fn barrier(&self) -> Result<()> {
        self.pmd_call_all(|_| ()).map(|_| ())
    }

    /// [`Daemon::barrier`] for rule changes only, without waking a PMD: returns once every
    /// PMD has been seen asleep or has finished the iteration it was in (see
    /// [`PmdProgress`]). A PMD with jobs queued gets the full barrier, so what was sent
    /// before (a packet-out, a reconfiguration) has run too. OpenFlow's BARRIER after
    /// FLOW_MODs uses it: `ovs-ofctl add-flows` sends one per flow mod.
    pub fn rules_barrier(&self) -> Result<()> {
        if self.pmds.iter().any(|p| !p.jobs.is_empty()) {
            return self.barrier();
        }
        let start = std::time::Instant::now();
        for p in &self.pmds {
            // SeqCst, as the PMD's stores and the rules' publish: see `PmdProgress`.
            let seen = p.progress.iterations.load(Ordering::SeqCst);
            let mut spins = 0u32;
            while !p.progress.sleeping.load(Ordering::SeqCst)
                && p.progress.iterations.load(Ordering::SeqCst) == seen
            {
                if p.thread.as_ref().is_none_or(|t| t.is_finished()) {
                    bail!("pmd {}: thread is gone", p.id);
                }
                if start.elapsed() > PMD_ANSWER_TIMEOUT {
                    bail!("pmd {}: no answer within {PMD_ANSWER_TIMEOUT:?}", p.id);
                }
                spins += 1;
                if spins < 256 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        Ok(())
    }

    /// Runs a PACKET_OUT on the first PMD ([`Pmd::packet_out`]) after the jobs sent to it
    /// before; a [`Daemon::barrier`] after it returns once it ran. With `wait`, returns once
    /// it ran; else at once, unless [`PACKET_OUTS_IN_FLIGHT`] wait already: then it waits for
    /// the PMD to run them (a controller that floods PACKET_OUTs is slowed down; the PMD
    /// polls its queues between jobs as always).
    pub fn packet_out(&self, po: PacketOut, wait: bool) -> Result<()> {
        self.bridge(&po.bridge)?;
        let p = self
            .pmds
            .first()
            .ok_or_else(|| anyhow!("packet-out: no pmd is running"))?;
        if wait || self.packet_outs_in_flight.load(Ordering::Acquire) >= PACKET_OUTS_IN_FLIGHT {
            return self.pmd_call(0, move |pmd| pmd.packet_out(&po));
        }
        let in_flight = self.packet_outs_in_flight.clone();
        in_flight.fetch_add(1, Ordering::AcqRel);
        let job: Job = Box::new(move |pmd: &mut Pmd| {
            pmd.packet_out(&po);
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
        if p.jobs.send(job).is_err() {
            self.packet_outs_in_flight.fetch_sub(1, Ordering::AcqRel);
            bail!("pmd {}: thread is gone", p.id);
        }
        p.wake.notify();
        Ok(())
    }

    /// Every PMD's counters.
    pub fn snapshots(&self) -> Result<Vec<PmdSnapshot>> {
        self.pmd_call_all(|p| p.snapshot())
    }

    pub fn bridge(&self, name: &str) -> Result<&BridgeState> {
        self.bridges
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| anyhow!("bridge: no bridge named {name:?}"))
    }

    fn bridge_index(&self, name: &str) -> Result<usize> {
        self.bridges
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| anyhow!("bridge: no bridge named {name:?}"))
    }

    /// The lowest datapath port number from 1 that no port of any bridge has.
    fn free_dp_port(&self) -> u32 {
        let used = |n: u32| {
            self.bridges
                .iter()
                .flat_map(|b| b.ports.iter())
                .any(|p| p.dp_port == n)
        };
        (1..).find(|&n| !used(n)).unwrap_or(1)
    }

    /// Creates a bridge with the default rule (NORMAL) and, with `local`, its host interface:
    /// a tap named like the bridge on OpenFlow port LOCAL.
    pub fn add_bridge(&mut self, name: &str, local: bool) -> Result<()> {
        check_name("bridge", name)?;
        if self.bridges.iter().any(|b| b.name == name) {
            bail!("bridge: {name:?} exists");
        }
        let of = openflow::Bridge::new(
            Vec::new(),
            MacTable::new(DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES),
        );
        of.add_flows_text(DEFAULT_RULES, self.now_ns())
            .map_err(|e| anyhow!("default rules: {e}"))?;
        let mut bridge = BridgeState {
            name: name.to_string(),
            of: Arc::new(of),
            ports: Vec::new(),
            addresses: Vec::new(),
            mac: None,
            packet_ins_unsent: 0,
            controllers: ofconn::Controllers::default(),
            datapath_id: None,
        };
        if local && interface_exists(name) {
            bail!(
                "bridge: an interface named {name:?} exists on this host, and the bridge's LOCAL \
                 tap takes the bridge's name (pick another name, or local=false)"
            );
        }
        if local {
            let mut spec = PortSpec::parse_args(name, &["type=tap"])
                .map_err(|e| anyhow!("LOCAL port: {e}"))?;
            spec.ofport = Some(openflow::OFPP_LOCAL);
            bridge
                .ports
                .push(open_port(name, spec, self.free_dp_port())?);
        }
        self.bridges.push(bridge);
        self.bridges_changed()
    }

    /// Deletes a bridge and its ports.
    pub fn del_bridge(&mut self, name: &str) -> Result<()> {
        let i = self.bridge_index(name)?;
        self.bridges.remove(i);
        self.routes.set_bridge_addresses(name, &[]);
        self.neighs.flush_bridge(name);
        self.bridges_changed()
    }

    /// Adds a port to `bridge` (see [`PortSpec`] for the options). The port's OpenFlow number
    /// is the one asked for, or the lowest free one of the bridge; its datapath number the
    /// lowest free one of the daemon. Returns the OpenFlow number.
    pub fn add_port(&mut self, bridge: &str, spec: PortSpec) -> Result<u32> {
        let bi = self.bridge_index(bridge)?;
        for b in &self.bridges {
            if b.ports.iter().any(|p| p.name == spec.name) {
                bail!("port: {:?} is already a port of {}", spec.name, b.name);
            }
        }
        let b = &self.bridges[bi];
        let ofport = match spec.ofport {
            Some(n) => {
                if let Some(p) = b.ports.iter().find(|p| p.ofport == n) {
                    bail!("ofport: {n} is taken by {}", p.name);
                }
                n
            }
            None => (1..)
                .find(|n| !b.ports.iter().any(|p| p.ofport == *n))
                .unwrap_or(1),
        };
        let mut spec = spec;
        spec.ofport = Some(ofport);
        let port = open_port(bridge, spec, self.free_dp_port())?;
        log_port(bridge, &port);
        self.bridges[bi].ports.push(port);
        // Two tunnel ports that would receive the same packets are refused.
        if let Err(e) = self.tunnel_config().validate() {
            self.bridges[bi].ports.pop();
            bail!("{e}");
        }
        self.bridges_changed()?;
        Ok(ofport)
    }

    /// Deletes a port; NORMAL forgets the MACs learned on it.
    pub fn del_port(&mut self, bridge: &str, name: &str) -> Result<()> {
        let bi = self.bridge_index(bridge)?;
        let b = &mut self.bridges[bi];
        let i = b
            .ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| anyhow!("port: {bridge} has no port {name:?}"))?;
        let p = b.ports.remove(i);
        b.of.macs().flush_port(p.ofport);
        self.bridges_changed()
    }

    /// Bytes of a frame of the PMDs' packet pools.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Sets a port's `mtu_request` (Open vSwitch's `ovs-vsctl set Interface PORT
    /// mtu_request=N`; `None` clears it): checked for the port's type, given to its kernel
    /// interface (afxdp, afpacket, tap), the port reopened when its rings must grow
    /// (afpacket's transmit frames), the packet pools grown when they must. Refused with the
    /// running state unchanged.
    pub fn set_port_mtu(&mut self, port: &str, mtu: Option<u16>) -> Result<()> {
        let (bi, pi) = self
            .bridges
            .iter()
            .enumerate()
            .find_map(|(bi, b)| Some((bi, b.ports.iter().position(|p| p.name == port)?)))
            .ok_or_else(|| anyhow!("port: no port {port:?}"))?;
        let old = self.bridges[bi].ports[pi].spec.clone();
        if let Some(m) = mtu {
            ports::spec::parse_mtu_request(&old.kind, &m.to_string())
                .map_err(|e| anyhow!("{e}"))?;
            self.bridges[bi].ports[pi].check_mtu(m)?;
        }
        let mut spec = old.clone();
        spec.mtu_request = mtu;
        let reopen = match &old.kind {
            PortKind::Afpacket(o) => o.frame_size_for(old.mtu_request) != o.frame_size_for(mtu),
            _ => false,
        };
        let old_kernel_mtu = self.bridges[bi].ports[pi].mtu;
        if let (Some(m), true) = (mtu, has_kernel_interface(&old)) {
            ports::sys::set_interface_mtu(port, m)
                .map_err(|e| anyhow!("mtu_request: {m}: the kernel refused it for {port}: {e}"))?;
        }
        if !reopen {
            self.bridges[bi].ports[pi].spec = spec;
            return self.bridges_changed();
        }
        // The port's queues close before it opens again (its PMDs let go of them first).
        let bridge = self.bridges[bi].name.clone();
        let gone = self.bridges[bi].ports.remove(pi);
        let dp_port = gone.dp_port;
        drop(gone);
        self.bridges_changed()?;
        let opened = open_port(&bridge, spec, dp_port).or_else(|e| {
            if let (Some(m), true) = (old_kernel_mtu, has_kernel_interface(&old)) {
                let _ = ports::sys::set_interface_mtu(port, m);
            }
            let back = open_port(&bridge, old, dp_port)?;
            self.bridges[bi].ports.insert(pi, back);
            self.bridges_changed()?;
            Err(e)
        })?;
        self.bridges[bi].ports.insert(pi, opened);
        self.bridges_changed()
    }

    /// Reads each bridge's LOCAL tap addresses and MAC, and each kernel interface's MTU,
    /// again; the route table follows. Returns whether any changed.
    fn refresh_interfaces(&mut self) -> bool {
        let mut changed = false;
        for b in &mut self.bridges {
            for p in &mut b.ports {
                let mtu = has_kernel_interface(&p.spec)
                    .then(|| ports::sys::interface_mtu(&p.name))
                    .flatten();
                changed |= mtu != p.mtu;
                p.mtu = mtu;
            }
            let has_local = b.ports.iter().any(|p| p.ofport == OFPP_LOCAL);
            let (addresses, mac) = if has_local {
                let addrs = ports::sys::interface_addresses(&b.name)
                    .into_iter()
                    .filter_map(|(ip, len)| BridgeAddr::new(ip, len).ok())
                    .collect();
                (addrs, ports::sys::interface_mac(&b.name))
            } else {
                (Vec::new(), None)
            };
            if addresses != b.addresses || mac != b.mac {
                self.routes.set_bridge_addresses(&b.name, &addresses);
                b.addresses = addresses;
                b.mac = mac;
                changed = true;
            }
        }
        changed
    }

    /// What the PMDs' `tunnel-decap` nodes decapsulate: a VTEP endpoint per IPv4 address of
    /// a bridge (received on its ports other than LOCAL and tunnels), a tunnel port per
    /// `type=vxlan|geneve` port, a neighbour snoop per bridge with addresses, and the Geneve
    /// options the bridges' TLV maps name.
    fn tunnel_config(&self) -> TunnelDecapConfig {
        let mut c = TunnelDecapConfig::default();
        for b in &self.bridges {
            let wire_ports: Vec<u32> = b
                .ports
                .iter()
                .filter(|p| p.ofport != OFPP_LOCAL && !matches!(p.spec.kind, PortKind::Tunnel(_)))
                .map(|p| p.dp_port)
                .collect();
            if let Some(mac) = b.mac {
                for a in &b.addresses {
                    if let std::net::IpAddr::V4(addr) = a.ip() {
                        c.endpoints.push(VtepEndpoint {
                            addr,
                            mac,
                            in_ports: wire_ports.clone(),
                        });
                    }
                }
            }
            if !b.addresses.is_empty() {
                c.snoop.push(SnoopBridge {
                    bridge: b.name.clone(),
                    in_ports: wire_ports.clone(),
                    local: b.addresses.iter().map(BridgeAddr::ip).collect(),
                });
            }
            for p in &b.ports {
                if let PortKind::Tunnel(o) = &p.spec.kind {
                    c.ports.push(tunnel_receive(o, p.dp_port));
                }
            }
            // A critical Geneve option is known when some bridge's TLV map names it.
            for o in b.of.tlv_map().known() {
                if !c.known_options.contains(&o) {
                    c.known_options.push(o);
                }
            }
        }
        c
    }

    /// Tells NORMAL the port list, publishes the datapath port map, places the queues and
    /// hands every PMD its new plan.
    fn bridges_changed(&mut self) -> Result<()> {
        self.refresh_interfaces();
        for b in &self.bridges {
            b.of.set_ports(
                b.ports
                    .iter()
                    .map(|p| NormalPort {
                        ofport: p.ofport,
                        vlan: p.vlan.clone(),
                        flood: true,
                    })
                    .collect(),
            );
        }
        self.upcall
            .set_bridges(
                self.bridges
                    .iter()
                    .map(|b| DatapathBridge {
                        name: b.name.clone(),
                        bridge: b.of.clone(),
                        ports: b.ports.iter().map(|p| (p.ofport, p.dp_port)).collect(),
                        tunnels: b
                            .ports
                            .iter()
                            .filter_map(|p| match &p.spec.kind {
                                PortKind::Tunnel(o) => Some((p.ofport, tunnel_output(o))),
                                _ => None,
                            })
                            .collect(),
                        mac: b.mac,
                        mtus: b
                            .ports
                            .iter()
                            .filter(|p| !matches!(p.spec.kind, PortKind::Tunnel(_)))
                            .map(|p| (p.ofport, p.effective_mtu()))
                            .collect(),
                    })
                    .collect(),
            )
            .map_err(|e| anyhow!("{e}"))?;
        self.replan()
    }

    /// Places every queue that is up on a PMD by measured cycles and sends the plans.
    pub fn replan(&mut self) -> Result<()> {
        let plan: Vec<BridgePlan> = self
            .bridges
            .iter()
            .map(|b| BridgePlan {
                name: b.name.clone(),
                ports: b
                    .ports
                    .iter()
                    .map(|p| PortPlan {
                        name: p.name.clone(),
                        ofport: p.ofport,
                        dp_port: p.dp_port,
                        mtu: p.effective_mtu(),
                        queues: p.queues.clone(),
                    })
                    .collect(),
            })
            .collect();
        // The pools must hold a frame of the largest MTU: grow them (restarting the PMDs,
        // whose caches start empty) when they do not.
        let largest = self
            .bridges
            .iter()
            .flat_map(|b| b.ports.iter())
            .map(PortState::effective_mtu)
            .max()
            .unwrap_or(ports::spec::DEFAULT_MTU);
        let need = pipeline::frame_size_for_mtu(usize::from(largest));
        if need > self.frame_size {
            eprintln!(
                "vecswitch: MTU {largest}: packet buffers grow from {} to {need} bytes (PMDs restart)",
                self.frame_size
            );
            self.stop_pmds();
            self.frame_size = need;
            self.start_pmds()?;
        }
        let queues: Vec<Arc<Queue>> = self
            .bridges
            .iter()
            .flat_map(|b| b.ports.iter())
            .filter(|p| !p.down)
            .flat_map(|p| p.queues.iter().cloned())
            .collect();
        let assignment = place_by_cycles(&queues, self.pmds.len());
        self.placement = queues
            .iter()
            .zip(&assignment)
            .map(|(q, &pmd)| (q.bridge.clone(), q.port.clone(), q.queue_id, pmd))
            .collect();
        let plan = Arc::new(plan);
        let mine: Vec<Vec<Arc<Queue>>> = (0..self.pmds.len())
            .map(|i| {
                queues
                    .iter()
                    .zip(&assignment)
                    .filter(|(_, &p)| p == i)
                    .map(|(q, _)| q.clone())
                    .collect()
            })
            .collect();
        // Two passes: every PMD first lets go of the queues it loses (an AF_XDP queue leaves
        // its pool), then each takes on its new ones.
        for (i, keep) in mine.iter().enumerate() {
            let keep = keep.clone();
            self.pmd_call(i, move |pmd| pmd.leave_queues(&keep))?;
        }
        for (i, mine) in mine.into_iter().enumerate() {
            let plan = plan.clone();
            self.pmd_call(i, move |pmd| pmd.apply_plan(&plan, &mine))??;
        }
        self.push_tunnel_config()
    }

    /// Hands every PMD's `tunnel-decap` node the current tunnel config.
    pub fn push_tunnel_config(&self) -> Result<()> {
        let tunnels = self.tunnel_config();
        for answer in
            self.pmd_call_all(move |pmd| pmd.switch_mut().set_tunnel_config(tunnels.clone()))?
        {
            answer.map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    }

    /// The PMD polling queue `queue` of `port`, if any.
    pub fn placement_of(&self, bridge: &str, port: &str, queue: u32) -> Option<usize> {
        self.placement
            .iter()
            .find(|(b, p, q, _)| b == bridge && p == port && *q == queue)
            .map(|e| e.3)
    }

    /// Changes PMD settings on every PMD.
    pub fn set_pmd_settings(&mut self, s: PmdSettings) -> Result<()> {
        self.settings.pmd = s;
        self.pmd_call_all(move |p| p.settings = s).map(|_| ())
    }

    /// Restarts the PMD threads on other cores (caches start empty; counters restart).
    pub fn set_pmd_cores(&mut self, cores: Vec<Option<usize>>) -> Result<()> {
        self.stop_pmds();
        self.settings.pmd_cores = cores;
        self.start_pmds()?;
        self.replan()
    }

    /// Turns NetFlow on a bridge on or changes its settings (`Some`), or off (`None`: the
    /// records not yet sent are dropped, as OVS does). Once this returns, every megaflow of
    /// the bridge has NetFlow's mask and sink (or has lost them).
    pub fn set_netflow(&mut self, bridge: &str, options: Option<NetflowOptions>) -> Result<()> {
        let now = self.now_ns();
        let of = self.bridge(bridge)?.of.clone();
        match (options, of.netflow()) {
            (None, None) => return Ok(()),
            (None, Some(_)) => of.set_netflow(None),
            (Some(o), Some(nf)) => nf.set_options(o, now),
            (Some(o), None) => {
                let nf = BridgeNetflow::new(o, now);
                nf.set_wall_offset_ns(self.wall_offset_ns());
                of.set_netflow(Some(Arc::new(nf)));
            }
        }
        self.barrier()
    }

    /// Unix time minus the pipeline clock, in ns: NetFlow's headers carry Unix time.
    fn wall_offset_ns(&self) -> i128 {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        unix - i128::from(self.now_ns())
    }

    /// Upkeep, about once a second: rule timeouts and MAC aging without traffic, NetFlow
    /// (records from the megaflows' counts, expiry, export), and ports whose interface
    /// disappeared stop being polled (they show as down).
    /// Takes the packet-ins the bridges' `controller` actions queued, per bridge (index into
    /// `bridges`), oldest first; bridges with none are left out.
    pub fn take_packet_ins(&self) -> Vec<(usize, Vec<pipeline::PacketIn>)> {
        self.bridges
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.of.packet_ins().take()))
            .filter(|(_, pins)| !pins.is_empty())
            .collect()
    }

    /// Sends the packet-ins queued to each bridge's OpenFlow connections (PACKET_IN); those
    /// no connection took are counted unsent.
    pub fn send_packet_ins(&mut self) {
        for (i, pins) in self.take_packet_ins() {
            let b = &mut self.bridges[i];
            b.packet_ins_unsent += b.controllers.send_packet_ins(&pins) as u64;
        }
    }

    /// Tells each bridge which of its ports are live (link up, not taken down by PORT_MOD):
    /// fast-failover groups pick their bucket by it. A change revalidates every megaflow.
    /// Returns whether anything changed.
    pub fn refresh_liveness(&self) -> bool {
        let mut changed = false;
        for b in &self.bridges {
            for p in &b.ports {
                changed |= b.of.set_port_live(p.ofport, b.port_live(p));
            }
        }
        changed
    }

    /// Sends the removal notices of each bridge's rules (FLOW_REMOVED) to its OpenFlow
    /// connections (notices no connection asked for are not news: OpenFlow sends none
    /// without a controller).
    pub fn send_flow_removed(&mut self) {
        for b in &mut self.bridges {
            let removed = b.of.flow_removed().take();
            if !removed.is_empty() {
                b.controllers.send_flow_removed(&removed);
            }
        }
    }

    pub fn housekeeping(&mut self) -> Result<()> {
        let now = self.now_ns();
        for b in &self.bridges {
            b.of.tick(now);
        }
        let wall = self.wall_offset_ns();
        for nf in self.bridges.iter().filter_map(|b| b.of.netflow()) {
            nf.set_wall_offset_ns(wall);
            nf.run(now);
        }
        self.neighs.expire(now);
        sweep_conntrack(&self.conntrack, now);
        if self.refresh_interfaces() {
            self.bridges_changed()?;
        }
        let mut changed = false;
        for b in &mut self.bridges {
            for p in &mut b.ports {
                if !p.down && needs_interface(&p.spec) && !interface_exists(&p.name) {
                    eprintln!(
                        "vecswitch: port {} of {}: interface is gone; port is down",
                        p.name, b.name
                    );
                    p.down = true;
                    changed = true;
                }
            }
        }
        if changed {
            self.replan()?;
        }
        Ok(())
    }

    /// Stops the PMDs and closes every port (their XDP programs go with them).
    pub fn shutdown(&mut self) {
        self.stop_pmds();
        self.bridges.clear();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Says how a port came up, and whether AF_XDP fell back to generic (SKB) mode.
fn log_port(bridge: &str, p: &PortState) {
    if let Some(q) = p.queues.first() {
        let info = q.info();
        eprintln!(
            "vecswitch: {bridge}: port {} ofport {} dp port {}: {} {}",
            p.name, p.ofport, p.dp_port, info.kind, info.mode
        );
        if info.kind == "afxdp" && info.mode.contains("generic") {
            eprintln!(
                "vecswitch: {bridge}: port {}: no native XDP in the driver: generic (SKB) mode, \
                 which is slower",
                p.name
            );
        }
    }
}

/// Opens a port's queues, as datapath port `dp_port`; a kernel interface is given the port's
/// `mtu_request` first.
fn open_port(bridge: &str, spec: PortSpec, dp_port: u32) -> Result<PortState> {
    let ofport = spec.ofport.unwrap_or(0);
    // A tap is created by opening it; the others' interfaces exist already.
    let kernel_first = has_kernel_interface(&spec) && !matches!(spec.kind, PortKind::Tap);
    let before = kernel_first
        .then(|| ports::sys::interface_mtu(&spec.name))
        .flatten();
    if let (Some(m), true) = (spec.mtu_request, kernel_first) {
        ports::sys::set_interface_mtu(&spec.name, m).map_err(|e| {
            anyhow!(
                "mtu_request: {m}: the kernel refused it for {}: {e}",
                spec.name
            )
        })?;
    }
    let ios = spec.open().map_err(|e| anyhow!("{e}"))?;
    if let Some(m) = spec.mtu_request {
        let max_frame = ios.iter().filter_map(|io| io.max_frame_len()).min();
        if let Err(e) = ports::spec::check_frame_limit(&spec.kind, m, max_frame) {
            drop(ios);
            if let Some(before) = before {
                let _ = ports::sys::set_interface_mtu(&spec.name, before);
            }
            return Err(anyhow!("{e}"));
        }
    }
    if let (Some(m), PortKind::Tap) = (spec.mtu_request, &spec.kind) {
        ports::sys::set_interface_mtu(&spec.name, m).map_err(|e| {
            anyhow!(
                "mtu_request: {m}: the kernel refused it for {}: {e}",
                spec.name
            )
        })?;
    }
    let queues = ios
        .into_iter()
        .enumerate()
        .map(|(i, io)| {
            Arc::new(Queue::new(
                bridge,
                &spec.name,
                (ofport, dp_port),
                i as u32,
                io,
            ))
        })
        .collect();
    Ok(PortState {
        added: std::time::Instant::now(),
        name: spec.name.clone(),
        ofport,
        dp_port,
        vlan: match &spec.vlan {
            Some(VlanSpec::Access(v)) => VlanMode::Access(*v),
            Some(VlanSpec::Trunk(v)) => VlanMode::Trunk(v.clone()),
            Some(VlanSpec::NativeTagged { tag, trunks }) => VlanMode::NativeTagged {
                tag: *tag,
                trunks: trunks.clone(),
            },
            Some(VlanSpec::NativeUntagged { tag, trunks }) => VlanMode::NativeUntagged {
                tag: *tag,
                trunks: trunks.clone(),
            },
            None => VlanMode::Trunk(Vec::new()),
        },
        spec,
        queues,
        down: false,
        mtu: None,
    })
}

/// Whether the port is a kernel interface it does not own (it can disappear under us).
pub fn needs_interface(spec: &PortSpec) -> bool {
    matches!(spec.kind, PortKind::Afxdp(_) | PortKind::Afpacket(_))
}

/// Whether the port is a kernel interface (its MTU is the interface's).
fn has_kernel_interface(spec: &PortSpec) -> bool {
    matches!(
        spec.kind,
        PortKind::Afxdp(_) | PortKind::Afpacket(_) | PortKind::Tap
    )
}

/// Whether a network interface of that name exists in this namespace.
pub fn interface_exists(name: &str) -> bool {
    ports::sys::if_index(name).is_some()
}

/// The link state of an interface as `show` prints it: `up`, `down` or `gone`.
pub fn link_state(name: &str) -> &'static str {
    match std::fs::read_to_string(format!("/sys/class/net/{name}/operstate")) {
        Ok(s) if s.trim() == "up" || s.trim() == "unknown" => "up",
        Ok(_) => "down",
        Err(_) => "gone",
    }
}

/// Refuses names that are not usable as interface names.
fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("{field}: {name:?} must be 1 to 15 characters of letters, digits, '-', '_', '.'");
    }
    Ok(())
}

/// Assigns queues to `pmds` PMDs, heaviest first onto the least loaded PMD (OVS's
/// `pmd-rxq-assign=cycles`). Returns each queue's PMD, in queue order.
pub fn place_by_cycles(queues: &[Arc<Queue>], pmds: usize) -> Vec<usize> {
    let loads: Vec<u64> = queues
        .iter()
        .map(|q| q.cycles.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    place(&loads, pmds)
}

/// [`place_by_cycles`] on plain numbers.
pub fn place(loads: &[u64], pmds: usize) -> Vec<usize> {
    let mut out = vec![0; loads.len()];
    if pmds == 0 {
        return out;
    }
    let mut order: Vec<usize> = (0..loads.len()).collect();
    // Heaviest first; equal loads keep their order (new queues spread round-robin).
    order.sort_by(|&a, &b| loads[b].cmp(&loads[a]).then(a.cmp(&b)));
    let mut pmd_load = vec![(0u64, 0usize); pmds];
    for q in order {
        let target = (0..pmds)
            .min_by_key(|&p| (pmd_load[p].0, pmd_load[p].1, p))
            .unwrap_or(0);
        out[q] = target;
        pmd_load[target].0 += loads[q];
        pmd_load[target].1 += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_puts_the_heaviest_queues_on_different_pmds() {
        assert_eq!(place(&[100, 90, 10, 5], 2), vec![0, 1, 1, 0]);
        // No measurements yet: round-robin.
        assert_eq!(place(&[0, 0, 0, 0], 2), vec![0, 1, 0, 1]);
        assert_eq!(place(&[7, 7], 1), vec![0, 0]);
        assert_eq!(place(&[], 3), Vec::<usize>::new());
    }

    #[test]
    fn bad_bridge_names_are_refused_naming_the_field() {
        for n in ["", "a-very-long-bridge-name", "br 0", "br/0"] {
            let e = check_name("bridge", n).unwrap_err().to_string();
            assert!(e.starts_with("bridge:"), "{e}");
        }
        assert!(check_name("bridge", "br-int.0").is_ok());
    }
}
