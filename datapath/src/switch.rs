//! One switch instance on one thread: packet pool, graph (parse → tunnel-decap → classify),
//! transmit queues
//! and port counters. A PMD has one for every bridge (its upcall is `openflow::DatapathUpcall`);
//! replay has one for its one bridge. Ports are known by their datapath port numbers (unique
//! across the bridges; the packets' `in_port` and the `Output` actions carry them), and each
//! remembers its bridge and OpenFlow number for the counters and the printing. The I/O around
//! it feeds received frames in with [`Switch::receive`] or [`Switch::receive_with`] and takes
//! transmitted ones out with [`Switch::drain_tx`] or [`Switch::drain_tx_batch`].

use flowcache::{Classify, ClassifyConfig};
use pipeline::buffer::BufferError;
use pipeline::parse::Parse;
use pipeline::{
    Ctx, Direction, Graph, PacketId, PacketPool, PortLoss, PortLosses, RxSink, Sent, TxQueues,
    Upcall, HEADROOM,
};
use serde::Serialize;
use tunnels::underlay::NeighTable;
use tunnels::{TunnelConfigError, TunnelDecap, TunnelDecapConfig};

/// Rounds of [`Switch::send_injected`] after one batch.
const ARRIVAL_ROUNDS: usize = 4;

/// The name `runtime` lists the encapsulation's counters under.
pub const ENCAP_NODE: &str = "tunnel-encap";

/// Frames in the pool of one switch instance.
pub const POOL_FRAMES: u32 = 8192;

/// Free frames a pool keeps from lending to ports, for the packets in flight (copies of
/// flooded frames, frames of ports that copy in).
const LEND_RESERVE: usize = 1024;

/// How frames entered and left the pool: copied, or passed as they are (ports that share
/// the pool's memory, [`pipeline::RxSink::adopt`]).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CopyStats {
    /// Received frames copied into the pool.
    pub rx_copies: u64,
    /// Received frames that were pool frames already.
    pub rx_zero_copy: u64,
    /// Sent packets a port copied out.
    pub tx_copies: u64,
    /// Sent packets a port took as they are.
    pub tx_zero_copy: u64,
}

/// Counters of one port, as `port-stats` prints them: what the switch counted (the port
/// type counts its own losses, `ports::PortIo::losses`).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames the switch could not take in (the receive reasons of `losses`).
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames the port's transmit bursts did not take (the transmit reasons of `losses`).
    pub tx_dropped: u64,
    /// Those two by reason: longer than a buffer or than the MTU, no free buffer, the
    /// transmit ring full, ...
    #[serde(skip_serializing_if = "PortLosses::is_empty")]
    pub losses: PortLosses,
}

impl PortStats {
    /// Counts `n` frames lost for `reason`.
    #[inline]
    pub fn lose(&mut self, reason: PortLoss, n: u64) {
        self.losses.add(reason, n);
        match reason.direction() {
            Direction::Rx => self.rx_dropped += n,
            Direction::Tx => self.tx_dropped += n,
        }
    }
}

/// Bytes of an Ethernet header, as an MTU leaves it out.
const ETH_HEADER_LEN: usize = 14;
/// Bytes of an 802.1Q tag, which a tagged frame may carry beyond the MTU.
const VLAN_HEADER_LEN: usize = 4;

/// A port of the switch: its bridge, name, OpenFlow and datapath numbers, and counters.
#[derive(Clone, Debug, Serialize)]
pub struct SwitchPort {
    pub bridge: String,
    pub name: String,
    pub ofport: u32,
    /// The number the packets' `in_port` and the `Output` actions carry.
    pub dp_port: u32,
    /// The port's MTU: frames longer than it plus [`pipeline::FRAME_OVERHEAD`] are dropped
    /// both ways.
    pub mtu: u16,
    pub stats: PortStats,
}

impl SwitchPort {
    /// A port of MTU [`ports::spec::DEFAULT_MTU`] (1500).
    pub fn new(bridge: &str, name: &str, ofport: u32, dp_port: u32) -> SwitchPort {
        SwitchPort {
            bridge: bridge.to_string(),
            name: name.to_string(),
            ofport,
            dp_port,
            mtu: ports::spec::DEFAULT_MTU,
            stats: PortStats::default(),
        }
    }

    /// The same port with MTU `mtu`.
    pub fn with_mtu(mut self, mtu: u16) -> SwitchPort {
        self.mtu = mtu;
        self
    }

    /// Whether `frame` is longer than the port's MTU allows: more than the MTU plus the
    /// 14-byte Ethernet header, plus 4 when it carries an 802.1Q tag (what Open vSwitch's
    /// ports check before they send).
    #[inline(always)]
    pub fn exceeds_mtu(&self, frame: &[u8]) -> bool {
        let base = usize::from(self.mtu) + ETH_HEADER_LEN;
        frame.len() > base
            && (frame.len() > base + VLAN_HEADER_LEN || frame.get(12..14) != Some(&[0x81, 0x00]))
    }

    /// Whether `other` is the same port (stats aside).
    pub fn same_port(&self, other: &SwitchPort) -> bool {
        self.bridge == other.bridge
            && self.name == other.name
            && self.ofport == other.ofport
            && self.dp_port == other.dp_port
    }
}

/// The graph, buffers and ports of one switch instance.
pub struct Switch<U: Upcall + 'static> {
    pub(crate) pool: PacketPool,
    pub(crate) tx: TxQueues,
    pub(crate) graph: Graph,
    entry: usize,
    decap: usize,
    pub(crate) classify: usize,
    /// What PACKET_OUTs did ([`crate::packet_out`]).
    pub(crate) packet_out: crate::packet_out::PacketOutCounters,
    ports: Vec<SwitchPort>,
    /// Frames the upcall asked to send ([`Upcall::take_frames`]), between two dispatches
    /// (kept for its allocation).
    injected: Vec<(u32, Vec<u8>)>,
    rx_scratch: Vec<PacketId>,
    tx_scratch: Vec<PacketId>,
    copies: CopyStats,
    /// See [`Switch::dispatch_cycles`].
    dispatch_cycles: u64,
    _upcall: std::marker::PhantomData<U>,
}

impl<U: Upcall + 'static> Switch<U> {
    /// A switch for the ports (`(name, ofport)`) of one bridge, translating new flows with
    /// `upcall`: their datapath numbers are their OpenFlow numbers, and the bridge has no name
    /// (replay, tests).
    pub fn new(ports: &[(String, u32)], upcall: U, config: ClassifyConfig) -> anyhow::Result<Self> {
        let mut sw = Switch::with_pool(upcall, config, PacketPool::new(POOL_FRAMES))?;
        for (name, ofport) in ports {
            sw.add_port(SwitchPort::new("", name, *ofport, *ofport));
        }
        Ok(sw)
    }

    /// A switch with no ports and the packets in `pool` (one made of a UMEM, for zero-copy
    /// ports); [`Switch::add_port`] adds them.
    pub fn with_pool(upcall: U, config: ClassifyConfig, pool: PacketPool) -> anyhow::Result<Self> {
        let mut graph = Graph::new();
        let mut parse = Parse::new(tunnels::tunnel_decap::NAME);
        parse.set_vlan_limit(config.vlans);
        let entry = graph.add(Box::new(parse))?;
        let mut decap = TunnelDecap::new("classify");
        decap.set_vlan_limit(config.vlans);
        let decap = graph.add(Box::new(decap))?;
        let classify = graph.add(Box::new(Classify::new(upcall, config)))?;
        graph.wire()?;
        Ok(Switch {
            pool,
            tx: TxQueues::default(),
            graph,
            entry,
            decap,
            classify,
            packet_out: Default::default(),
            ports: Vec::new(),
            injected: Vec::new(),
            rx_scratch: Vec::with_capacity(pipeline::MAX_BATCH),
            tx_scratch: Vec::with_capacity(pipeline::MAX_BATCH),
            copies: CopyStats::default(),
            dispatch_cycles: 0,
            _upcall: std::marker::PhantomData,
        })
    }

    /// Parses `vlans` VLAN headers from the next packet on (OVS `vlan-limit`); the caches
    /// are flushed, their keys were read under the old limit.
    pub fn set_vlan_limit(&mut self, vlans: pipeline::VlanLimit) {
        if let Some(p) = self.graph.node_as::<Parse>(self.entry) {
            p.set_vlan_limit(vlans);
        }
        if let Some(d) = self.graph.node_as::<TunnelDecap>(self.decap) {
            d.set_vlan_limit(vlans);
        }
        if let Some(c) = self.classifier() {
            c.set_vlan_limit(vlans);
        }
    }

    /// Decapsulates what `config` says from the next packet on; a refused config leaves the
    /// one in use.
    pub fn set_tunnel_config(
        &mut self,
        config: TunnelDecapConfig,
    ) -> Result<(), TunnelConfigError> {
        match self.graph.node_as::<TunnelDecap>(self.decap) {
            Some(d) => d.set_config(config),
            None => Ok(()),
        }
    }

    /// The `tunnel-decap` node's counters.
    pub fn decap_stats(&mut self) -> tunnels::TunnelDecapStats {
        self.graph
            .node_as::<TunnelDecap>(self.decap)
            .map(|d| d.stats())
            .unwrap_or_default()
    }

    /// Snoops neighbours into `table` (see [`TunnelDecap::set_neigh_table`]).
    pub fn set_neigh_table(&mut self, table: NeighTable) {
        if let Some(d) = self.graph.node_as::<TunnelDecap>(self.decap) {
            d.set_neigh_table(table);
        }
    }

    /// Keeps the Geneve options longer than a key holds in `store`, which the upcall reads
    /// them back from (see [`TunnelDecap::set_option_store`]).
    pub fn set_option_store(&mut self, store: tunnels::OptionStore) {
        if let Some(d) = self.graph.node_as::<TunnelDecap>(self.decap) {
            d.set_option_store(store);
        }
    }

    /// Runs what arrives from inside the switch through the graph, each packet as received on
    /// its port: the frames the upcall asked to send (ARP requests for tunnel next hops, from
    /// an underlay bridge's LOCAL port) and the packets the actions made
    /// ([`TxQueues::arrivals`]: too-big answers, from a tunnel port). The upcall's frames are
    /// taken once and the arrivals for a few rounds at most: what they bring about in turn
    /// waits for the next batch.
    pub(crate) fn send_injected(&mut self, now_ns: u64) {
        self.recirculate(now_ns);
        if let Some(c) = self.graph.node_as::<Classify<U>>(self.classify) {
            c.upcall_mut().take_frames(&mut self.injected);
        }
        for _ in 0..ARRIVAL_ROUNDS {
            for (dp_port, frame) in self.injected.drain(..) {
                if let Ok(id) = self.pool.alloc_with(&frame) {
                    self.pool.meta_mut(id).rx_ns = now_ns;
                    self.tx.arrivals.push((dp_port, id));
                }
            }
            if self.tx.arrivals.is_empty() {
                return;
            }
            let arrivals = std::mem::take(&mut self.tx.arrivals);
            for (port, id) in arrivals {
                self.pool.meta_mut(id).key.in_port = port;
                self.rx_scratch.clear();
                self.rx_scratch.push(id);
                let mut cx = Ctx {
                    pool: &mut self.pool,
                    tx: &mut self.tx,
                    now_ns,
                };
                self.graph.dispatch(&mut cx, self.entry, &self.rx_scratch);
            }
            self.recirculate(now_ns);
        }
    }

    /// Runs the copies the actions recirculated ([`TxQueues::recirc`]) through
    /// classification, until none is left (each copy counts its recirculations, so this
    /// ends).
    fn recirculate(&mut self, now_ns: u64) {
        while !self.tx.recirc.is_empty() {
            let pkts = std::mem::take(&mut self.tx.recirc);
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns,
            };
            self.graph.dispatch(&mut cx, self.classify, &pkts);
        }
    }

    /// Adds what the tunnel ports received (decapsulated) and sent (encapsulated) since the
    /// last call to their counters: a tunnel port has no queue, the tunnel nodes count for
    /// it. Call before reading [`Switch::ports`] for counters.
    pub fn sync_tunnel_stats(&mut self) {
        let rx = match self.graph.node_as::<TunnelDecap>(self.decap) {
            Some(d) => d.take_rx(),
            None => Vec::new(),
        };
        let tx = std::mem::take(&mut self.tx.tunnel_tx);
        for p in &mut self.ports {
            for &(port, packets, bytes) in &rx {
                if port == p.dp_port {
                    p.stats.rx_packets += packets;
                    p.stats.rx_bytes += bytes;
                }
            }
            for &(port, packets, bytes) in &tx {
                if port == p.dp_port {
                    p.stats.tx_packets += packets;
                    p.stats.tx_bytes += bytes;
                }
            }
        }
    }

    /// The ports and their counters.
    pub fn ports(&self) -> &[SwitchPort] {
        &self.ports
    }

    /// Runs one received batch of port `port` (an index into [`Switch::ports`]) through the
    /// graph at time `now_ns`. `frames` yields each frame's bytes and receive time.
    pub fn receive<'a>(
        &mut self,
        port: usize,
        frames: impl Iterator<Item = (&'a [u8], u64)>,
        now_ns: u64,
    ) {
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        self.rx_scratch.clear();
        for (data, rx_ns) in frames {
            if p.exceeds_mtu(data) {
                p.stats.lose(PortLoss::RxMtuExceeded, 1);
                continue;
            }
            match self.pool.alloc_with(data) {
                Ok(id) => {
                    let m = self.pool.meta_mut(id);
                    m.key.in_port = p.dp_port;
                    m.rx_ns = rx_ns;
                    p.stats.rx_packets += 1;
                    p.stats.rx_bytes += data.len() as u64;
                    self.rx_scratch.push(id);
                }
                Err(e) => p.stats.lose(intake_loss(e), 1),
            }
        }
        let mut cx = Ctx {
            pool: &mut self.pool,
            tx: &mut self.tx,
            now_ns,
        };
        self.graph.dispatch(&mut cx, self.entry, &self.rx_scratch);
        self.send_injected(now_ns);
    }

    /// Sets the MTU of the port of datapath number `dp_port` (no effect when there is none).
    pub fn set_port_mtu(&mut self, dp_port: u32, mtu: u16) {
        if let Some(p) = self.ports.iter_mut().find(|p| p.dp_port == dp_port) {
            p.mtu = mtu;
        }
    }

    /// The packet pool's largest packet: what the largest MTU of the ports may not exceed.
    pub fn max_packet(&self) -> usize {
        self.pool.max_packet()
    }

    /// Adds a port (no effect when its datapath number is there already). Returns its index.
    pub fn add_port(&mut self, port: SwitchPort) -> usize {
        if let Some(i) = self.ports.iter().position(|p| p.dp_port == port.dp_port) {
            return i;
        }
        self.tx.add_port(port.dp_port);
        self.ports.push(port);
        self.ports.len() - 1
    }

    /// Removes the port of datapath number `dp_port`, freeing what its transmit queue held.
    /// The indexes of the ports after it move down by one.
    pub fn remove_port(&mut self, dp_port: u32) {
        if let Some(i) = self.ports.iter().position(|p| p.dp_port == dp_port) {
            self.ports.remove(i);
            self.tx.remove_port(dp_port, &mut self.pool);
        }
    }

    /// Receives one batch on port `port` (an index into [`Switch::ports`]) and runs it through
    /// the graph at `now_ns`: `fill` is handed the [`RxSink`] that takes each frame into the
    /// pool (the one copy on the receive side). Returns the number of frames taken in. A frame
    /// longer than a buffer, or one that finds the pool empty or the batch full, counts as
    /// the port's `rx_dropped`.
    pub fn receive_with(
        &mut self,
        port: usize,
        now_ns: u64,
        fill: impl FnOnce(&mut dyn RxSink),
    ) -> usize {
        let Some(p) = self.ports.get_mut(port) else {
            return 0;
        };
        self.rx_scratch.clear();
        let mut sink = Intake {
            pool: &mut self.pool,
            batch: &mut self.rx_scratch,
            port: p,
            copies: &mut self.copies,
            now_ns,
            room: None,
        };
        fill(&mut sink);
        if let Some(id) = sink.room.take() {
            self.pool.free(id);
        }
        let n = self.rx_scratch.len();
        if n > 0 {
            let start = pipeline::cycles::now();
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns,
            };
            self.graph.dispatch(&mut cx, self.entry, &self.rx_scratch);
            self.send_injected(now_ns);
            self.dispatch_cycles += pipeline::cycles::now() - start;
        }
        n
    }

    /// Cycles [`Switch::receive_with`] spent running batches through the graph (the nodes,
    /// and scattering between them), from the switch's start.
    pub fn dispatch_cycles(&self) -> u64 {
        self.dispatch_cycles
    }

    /// Hands the packets queued on port `port` to `send` in slices of at most
    /// `pipeline::MAX_BATCH`, counts what `send` did not take as lost to a full transmit
    /// ring, and frees them, except those a port keeps to send as they are ([`Sent::kept`]).
    /// Returns the packets sent.
    pub fn drain_tx_batch(
        &mut self,
        port: usize,
        send: impl FnMut(&PacketPool, &[PacketId]) -> Sent,
    ) -> usize {
        self.drain_tx_batch_as(port, PortLoss::TxRingFull, send)
    }

    /// [`Switch::drain_tx_batch`], counting what `send` did not take as `full` (the port's
    /// `ports::PortIo::tx_full_loss`).
    pub fn drain_tx_batch_as(
        &mut self,
        port: usize,
        full: PortLoss,
        mut send: impl FnMut(&PacketPool, &[PacketId]) -> Sent,
    ) -> usize {
        let Some(p) = self.ports.get_mut(port) else {
            return 0;
        };
        self.tx_scratch.clear();
        self.tx.drain(p.dp_port, &mut self.tx_scratch);
        drop_over_mtu(&mut self.pool, &mut self.tx_scratch, p);
        let mut sent_total = 0;
        for chunk in self.tx_scratch.chunks(pipeline::MAX_BATCH) {
            let sent = send(&self.pool, chunk);
            let n = sent.count.min(chunk.len());
            let bytes: u64 = chunk[..n]
                .iter()
                .map(|&id| u64::from(self.pool.meta(id).len))
                .sum();
            p.stats.tx_packets += n as u64;
            p.stats.tx_bytes += bytes;
            if n < chunk.len() {
                p.stats.lose(full, (chunk.len() - n) as u64);
            }
            sent_total += n;
            let kept = if sent.kept { n } else { 0 };
            if sent.kept {
                self.copies.tx_zero_copy += n as u64;
            } else {
                self.copies.tx_copies += n as u64;
            }
            for &id in &chunk[kept..] {
                self.pool.free(id);
            }
        }
        sent_total
    }

    /// Frees the packets queued on port `port`, counted as its transmit drops (a port with
    /// no queue to send on).
    pub fn discard_tx(&mut self, port: usize) {
        self.drain_tx_batch_as(port, PortLoss::TxNoQueue, |_, _| Sent {
            count: 0,
            kept: false,
        });
    }

    /// How frames entered and left the pool.
    pub fn copies(&self) -> CopyStats {
        self.copies
    }

    /// The packet pool (a PMD moves zero-copy ports into and out of it).
    pub fn pool_mut(&mut self) -> &mut PacketPool {
        &mut self.pool
    }

    /// Whether port `port` has frames waiting to be sent.
    pub fn tx_pending(&self, port: usize) -> bool {
        self.ports
            .get(port)
            .and_then(|p| self.tx.queue(p.dp_port))
            .is_some_and(|q| !q.is_empty())
    }

    /// Zeroes the port, node and classifier counters.
    pub fn clear_stats(&mut self) {
        for p in &mut self.ports {
            p.stats = PortStats::default();
        }
        self.graph.clear_stats();
        self.packet_out = Default::default();
        self.tx.no_such_port = 0;
        self.tx.no_buffers = 0;
        self.tx.clone_drops = Default::default();
        self.tx.encapsulated = 0;
        self.tx.too_big_answers = 0;
        self.tx.tunnel_tx.clear();
        self.tx.encap = pipeline::NodeStats::default();
        if let Some(d) = self.graph.node_as::<TunnelDecap>(self.decap) {
            d.clear_stats();
        }
        self.copies = CopyStats::default();
        self.dispatch_cycles = 0;
        if let Some(c) = self.classifier() {
            c.clear_stats();
        }
    }

    /// Hands every frame queued on port `port` to `sink` (bytes, receive time) and frees it.
    pub fn drain_tx(&mut self, port: usize, mut sink: impl FnMut(&[u8], u64)) {
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        self.tx_scratch.clear();
        self.tx.drain(p.dp_port, &mut self.tx_scratch);
        drop_over_mtu(&mut self.pool, &mut self.tx_scratch, p);
        for &id in &self.tx_scratch {
            let data = self.pool.data(id);
            p.stats.tx_packets += 1;
            p.stats.tx_bytes += data.len() as u64;
            sink(data, self.pool.meta(id).rx_ns);
            self.pool.free(id);
        }
    }

    /// Per-node counters and drop reasons.
    pub fn node_reports(&self) -> Vec<pipeline::NodeReport> {
        let mut reports = self.graph.reports();
        // Encapsulation runs inside classify's action execution (a tnl_push per megaflow, as
        // in OVS), with counters of its own: listed as a node once it has run (its cycles are
        // also classify's; its drops are classify's `tunnel-*` reasons).
        if self.tx.encap.calls > 0 {
            reports.push(pipeline::NodeReport {
                name: ENCAP_NODE,
                stats: self.tx.encap,
                drops: Vec::new(),
            });
        }
        // PACKET_OUTs run outside the graph, with counters of their own: listed the same way.
        if let Some(r) = self.packet_out.report() {
            reports.push(r);
        }
        reports
    }

    /// Packets sent to a port number the switch does not have.
    pub fn tx_no_such_port(&self) -> u64 {
        self.tx.no_such_port
    }

    /// ICMP / ICMPv6 answers sent for packets too big for their tunnel.
    pub fn too_big_answers(&self) -> u64 {
        self.tx.too_big_answers
    }

    /// Packets encapsulated, and the copies made for outputs (to tunnels) that their clone's
    /// actions dropped, by reason name.
    pub fn tunnel_tx(&self) -> (u64, Vec<(&'static str, u64)>) {
        let drops = pipeline::ExecDrop::NAMES
            .iter()
            .zip(self.tx.clone_drops)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect();
        (self.tx.encapsulated, drops)
    }

    /// The classifier (caches, stats, the upcall handler).
    pub fn classifier(&mut self) -> Option<&mut Classify<U>> {
        self.graph.node_as::<Classify<U>>(self.classify)
    }

    /// The megaflows whose in_port is a port of `bridge`, in `dpctl/dump-flows` format with
    /// the OpenFlow port numbers (in_port and outputs), sorted: for one bridge the text is the
    /// one its own classifier would print. With `names`, the ports are printed by name instead
    /// (LOCAL by the bridge's), as `dpctl/dump-flows --names`.
    pub fn dump_megaflows_text(&mut self, bridge: &str, now_ns: u64, names: bool) -> Vec<String> {
        let ofports: Vec<(u32, u32, bool, String)> = self
            .ports
            .iter()
            .map(|p| (p.dp_port, p.ofport, p.bridge == bridge, p.name.clone()))
            .collect();
        let port = |dp: u32| match ofports.iter().find(|p| p.0 == dp) {
            Some(p) if names => p.3.clone(),
            Some(p) => flowcache::print::port_number(p.1),
            None => flowcache::print::port_number(dp),
        };
        let options = self
            .graph
            .node_as::<TunnelDecap>(self.decap)
            .map(|d| d.option_store().clone())
            .unwrap_or_default();
        let Some(c) = self.classifier() else {
            return Vec::new();
        };
        let mut lines: Vec<String> = c
            .dump_megaflows(now_ns)
            .iter()
            .filter(|m| {
                m.mask.in_port == u32::MAX && ofports.iter().any(|p| p.2 && p.0 == m.key.in_port)
            })
            .map(|m| {
                let text = flowcache::print::format_megaflow_ports(m, now_ns, port);
                options.expand_digest(text, &m.key)
            })
            .collect();
        lines.sort();
        lines
    }

    /// Buffers not in use (every buffer is back after a drained dispatch: a leak check).
    pub fn free_buffers(&self) -> usize {
        self.pool.available()
    }
}

/// What a frame the pool refused is lost to.
fn intake_loss(e: BufferError) -> PortLoss {
    match e {
        BufferError::TooLong | BufferError::NoRoom => PortLoss::RxTooLong,
        BufferError::Exhausted => PortLoss::RxNoBuffers,
    }
}

/// The [`RxSink`] of one receive burst: frames become packets of the pool, stamped with the
/// port and the time, in the batch the graph runs next.
/// Frees the packets of `ids` longer than `port`'s MTU allows, counting them as its
/// `tx-mtu-exceeded`; the rest keep their order. One pass of length checks when none is.
#[inline]
fn drop_over_mtu(pool: &mut PacketPool, ids: &mut Vec<PacketId>, port: &mut SwitchPort) {
    // Lengths first (the metadata is hot); the bytes only of a frame that may be too long.
    let max = usize::from(port.mtu) + ETH_HEADER_LEN;
    if ids.iter().all(|&id| usize::from(pool.meta(id).len) <= max) {
        return;
    }
    ids.retain(|&id| {
        if !port.exceeds_mtu(pool.data(id)) {
            return true;
        }
        pool.free(id);
        port.stats.lose(PortLoss::TxMtuExceeded, 1);
        false
    });
}

struct Intake<'a> {
    pool: &'a mut PacketPool,
    batch: &'a mut Vec<PacketId>,
    port: &'a mut SwitchPort,
    copies: &'a mut CopyStats,
    now_ns: u64,
    /// The packet [`RxSink::room`] handed out and not yet committed.
    room: Option<PacketId>,
}

impl Intake<'_> {
    fn take(&mut self, id: PacketId, len: usize) {
        let m = self.pool.meta_mut(id);
        m.key.in_port = self.port.dp_port;
        m.rx_ns = self.now_ns;
        self.port.stats.rx_packets += 1;
        self.port.stats.rx_bytes += len as u64;
        self.batch.push(id);
    }
}

impl RxSink for Intake<'_> {
    fn push(&mut self, frame: &[u8]) {
        if self.batch.len() >= pipeline::MAX_BATCH {
            self.port.stats.lose(PortLoss::RxBatchFull, 1);
            return;
        }
        if self.port.exceeds_mtu(frame) {
            self.port.stats.lose(PortLoss::RxMtuExceeded, 1);
            return;
        }
        match self.pool.alloc_with(frame) {
            Ok(id) => {
                self.copies.rx_copies += 1;
                self.take(id, frame.len());
            }
            Err(e) => self.port.stats.lose(intake_loss(e), 1),
        }
    }

    fn room(&mut self) -> Option<&mut [u8]> {
        if self.batch.len() >= pipeline::MAX_BATCH {
            return None;
        }
        let id = match self.room {
            Some(id) => id,
            None => {
                let id = self.pool.alloc()?;
                self.room = Some(id);
                id
            }
        };
        let end = HEADROOM + self.pool.max_packet();
        self.pool.frame_mut(id).get_mut(HEADROOM..end)
    }

    fn commit(&mut self, len: usize) {
        let Some(id) = self.room.take() else {
            return;
        };
        let end = (HEADROOM + len).min(self.pool.frame_size());
        if self
            .port
            .exceeds_mtu(&self.pool.frame_mut(id)[HEADROOM..end])
        {
            self.pool.free(id);
            self.port.stats.lose(PortLoss::RxMtuExceeded, 1);
            return;
        }
        // set_len refuses a length past the frame's end (more than the pool's max_packet).
        if self.pool.set_len(id, len).is_err() {
            self.pool.free(id);
            self.port.stats.lose(PortLoss::RxTooLong, 1);
            return;
        }
        self.copies.rx_copies += 1;
        self.take(id, len);
    }

    fn pool_addr(&self) -> Option<usize> {
        Some(self.pool.memory_addr())
    }

    fn lend(&mut self) -> Option<PacketId> {
        if self.pool.available() <= LEND_RESERVE.min(self.pool.capacity() / 2) {
            return None;
        }
        self.pool.lend()
    }

    fn adopt(&mut self, id: PacketId, data_off: usize, len: usize) {
        if id as usize >= self.pool.capacity() {
            // Not a frame of this pool: nothing to free.
            self.port.stats.lose(PortLoss::RxForeignFrame, 1);
            return;
        }
        let too_long = len > usize::from(self.port.mtu) + ETH_HEADER_LEN
            && match self.pool.frame_mut(id).get(data_off..data_off + len) {
                Some(frame) => self.port.exceeds_mtu(frame),
                None => false,
            };
        if too_long {
            self.pool.free(id);
            self.port.stats.lose(PortLoss::RxMtuExceeded, 1);
            return;
        }
        if self.batch.len() >= pipeline::MAX_BATCH {
            self.pool.free(id);
            self.port.stats.lose(PortLoss::RxBatchFull, 1);
            return;
        }
        if self.pool.adopt(id, data_off, len).is_err() {
            // An offset and length that do not fit the frame.
            self.pool.free(id);
            self.port.stats.lose(PortLoss::RxTooLong, 1);
            return;
        }
        self.copies.rx_zero_copy += 1;
        self.take(id, len);
    }

    fn give_back(&mut self, id: PacketId) {
        if (id as usize) < self.pool.capacity() {
            self.pool.free(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::wire::FrameBuilder;
    use pipeline::{DpAction, FlowKey, UpcallResult};

    /// Every flow goes out of port 2.
    struct ToPort2;

    impl Upcall for ToPort2 {
        fn translate(&mut self, _key: &FlowKey, _now_ns: u64) -> UpcallResult {
            UpcallResult {
                rewritten: 0,
                actions: vec![DpAction::Output(2)],
                mask: FlowKey::default(),
                sinks: Vec::new(),
            }
        }

        fn generation(&self) -> u64 {
            0
        }
    }

    /// Every flow goes out of port 2, one megaflow for all; records the EtherType of each key
    /// it translates.
    struct SeesType(std::sync::Arc<std::sync::Mutex<Vec<u16>>>);

    impl Upcall for SeesType {
        fn translate(&mut self, key: &FlowKey, now_ns: u64) -> UpcallResult {
            self.0.lock().unwrap().push(key.dl_type);
            ToPort2.translate(key, now_ns)
        }

        fn generation(&self) -> u64 {
            0
        }
    }

    #[test]
    fn the_vlan_limit_reaches_the_parser_and_flushes_the_caches() {
        let ports = [("a".to_string(), 1), ("b".to_string(), 2)];
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut sw =
            Switch::new(&ports, SeesType(seen.clone()), ClassifyConfig::default()).unwrap();
        let qinq = FrameBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .vlan(0x88a8, 10)
            .vlan(0x8100, 20)
            .ethertype(0x88b5)
            .min_len(60)
            .build(&[1])
            .unwrap();
        sw.receive(0, [(qinq.as_slice(), 0)].into_iter(), 0);
        sw.set_vlan_limit(pipeline::VlanLimit::MAX);
        sw.receive(0, [(qinq.as_slice(), 1)].into_iter(), 1);
        sw.discard_tx(1);
        // One header by default (the inner TPID is the type), then both: the megaflow made
        // under the old limit was gone, so the second frame was translated too.
        assert_eq!(*seen.lock().unwrap(), [0x8100, 0x88b5]);
    }

    fn frame(n: u8) -> Vec<u8> {
        FrameBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ethertype(0x88b5)
            .min_len(60)
            .build(&[n])
            .unwrap()
    }

    #[test]
    fn frames_written_in_place_and_pushed_arrive_alike_and_uncommitted_room_is_returned() {
        let ports = [("a".to_string(), 1), ("b".to_string(), 2)];
        let mut sw = Switch::new(&ports, ToPort2, ClassifyConfig::default()).unwrap();
        let free = sw.pool.available();
        let n = sw.receive_with(0, 5, |sink| {
            sink.push(&frame(1));
            // Written in place: the same buffer comes back until it is committed.
            let first = sink.room().unwrap().as_ptr();
            let room = sink.room().unwrap();
            assert_eq!(room.as_ptr(), first);
            assert_eq!(room.len(), pipeline::MAX_PACKET);
            room[..60].copy_from_slice(&frame(2));
            sink.commit(60);
            // Longer than the port's MTU (1500) allows: dropped, counted.
            sink.room().unwrap();
            sink.commit(1519);
            sink.push(&vec![0u8; 1519]);
            // Left uncommitted: freed after the burst.
            sink.room().unwrap()[0] = 0xff;
        });
        assert_eq!(n, 2);
        let mut out = Vec::new();
        sw.drain_tx(1, |f, _| out.push(f.to_vec()));
        assert_eq!(out, vec![frame(1), frame(2)]);
        let s = &sw.ports()[0].stats;
        assert_eq!((s.rx_packets, s.rx_bytes, s.rx_dropped), (2, 120, 2));
        assert_eq!(s.losses.text(), "rx-mtu-exceeded=2");
        assert_eq!(sw.pool.available(), free, "every buffer is back");
    }

    /// A frame of `len` bytes to the broadcast MAC, with an 802.1Q tag if `tagged`.
    fn long_frame(len: usize, tagged: bool) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].fill(0xff);
        if tagged {
            f[12..14].copy_from_slice(&[0x81, 0x00]);
            f[16..18].copy_from_slice(&0x88b5u16.to_be_bytes());
        } else {
            f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        }
        f
    }

    #[test]
    fn jumbo_frames_cross_a_pool_sized_for_them_and_the_mtu_is_checked_both_ways() {
        let pool = PacketPool::with_frame_size(64, pipeline::frame_size_for_mtu(9000));
        let mut sw = Switch::with_pool(ToPort2, ClassifyConfig::default(), pool).unwrap();
        sw.add_port(SwitchPort::new("br0", "a", 1, 1).with_mtu(9000));
        sw.add_port(SwitchPort::new("br0", "b", 2, 2).with_mtu(9000));
        let free = sw.pool.available();
        let n = sw.receive_with(0, 5, |sink| {
            // A 9000-byte MTU's full frames, tagged (pushed) and untagged (written in place).
            sink.push(&long_frame(9018, true));
            let room = sink.room().unwrap();
            assert!(room.len() >= 9018);
            room[..9014].copy_from_slice(&long_frame(9014, false));
            sink.commit(9014);
            // One byte more each: dropped.
            sink.push(&long_frame(9019, true));
            sink.push(&long_frame(9015, false));
        });
        assert_eq!(n, 2);
        assert_eq!(sw.ports()[0].stats.losses.text(), "rx-mtu-exceeded=2");
        // Port b's MTU drops to 1500: the two jumbo frames queued for it are dropped on
        // transmit with a reason, a short one goes out.
        sw.set_port_mtu(2, 1500);
        sw.receive(0, [(&frame(3)[..], 0)].into_iter(), 6);
        let mut out = Vec::new();
        sw.drain_tx(1, |f, _| out.push(f.len()));
        assert_eq!(out, vec![60]);
        let b = &sw.ports()[1].stats;
        assert_eq!((b.tx_packets, b.tx_dropped), (1, 2));
        assert_eq!(b.losses.text(), "tx-mtu-exceeded=2");
        assert_eq!(sw.pool.available(), free, "every buffer is back");
    }

    #[test]
    fn frames_lent_to_a_port_come_back_as_packets_or_empty() {
        let ports = [("a".to_string(), 1), ("b".to_string(), 2)];
        let mut sw = Switch::new(&ports, ToPort2, ClassifyConfig::default()).unwrap();
        let free = sw.pool.available();
        let addr = sw.pool.memory_addr();
        let mut lent = Vec::new();
        sw.receive_with(0, 5, |sink| {
            assert_eq!(sink.pool_addr(), Some(addr));
            lent.extend((0..3).map(|_| sink.lend().unwrap()));
        });
        assert_eq!(sw.pool.available(), free - 3);
        // The kernel wrote a frame into the first one; the second comes back empty; the
        // third stays lent.
        sw.pool.frame_mut(lent[0])[300..360].copy_from_slice(&frame(7));
        let n = sw.receive_with(0, 6, |sink| {
            sink.adopt(lent[0], 300, 60);
            sink.give_back(lent[1]);
            // Not frames of this pool: counted, nothing freed.
            sink.adopt(u32::MAX, 300, 60);
            sink.give_back(u32::MAX);
        });
        assert_eq!(n, 1);
        let mut out = Vec::new();
        let sent = sw.drain_tx_batch(1, |pool, ids| {
            out.extend(ids.iter().map(|&id| pool.data(id).to_vec()));
            Sent {
                count: ids.len(),
                kept: true,
            }
        });
        assert_eq!((sent, out), (1, vec![frame(7)]));
        let c = sw.copies();
        assert_eq!((c.rx_zero_copy, c.rx_copies, c.tx_zero_copy), (1, 0, 1));
        assert_eq!(sw.ports()[0].stats.rx_dropped, 1);
        assert_eq!(sw.ports()[0].stats.losses.text(), "rx-foreign-frame=1");
        // The sent packet is the port's until it gives it back, as the third frame is.
        assert_eq!(sw.pool.available(), free - 2);
        sw.receive_with(0, 7, |sink| {
            sink.give_back(lent[0]);
            sink.give_back(lent[2]);
        });
        assert_eq!(sw.pool.available(), free);
    }

    #[test]
    fn a_full_batch_has_no_room() {
        let ports = [("a".to_string(), 1), ("b".to_string(), 2)];
        let mut sw = Switch::new(&ports, ToPort2, ClassifyConfig::default()).unwrap();
        let n = sw.receive_with(0, 5, |sink| {
            for i in 0..pipeline::MAX_BATCH {
                let room = sink.room().unwrap();
                room[..60].copy_from_slice(&frame(i as u8));
                sink.commit(60);
            }
            assert!(sink.room().is_none());
            sink.push(&frame(0));
        });
        assert_eq!(n, pipeline::MAX_BATCH);
        assert_eq!(sw.ports()[0].stats.rx_dropped, 1);
        assert_eq!(sw.ports()[0].stats.losses.text(), "rx-batch-full=1");
    }

    #[test]
    fn what_a_transmit_burst_does_not_take_is_lost_to_the_reason_the_port_names() {
        let ports = [("a".to_string(), 1), ("b".to_string(), 2)];
        let mut sw = Switch::new(&ports, ToPort2, ClassifyConfig::default()).unwrap();
        let free = sw.pool.available();
        let receive = |sw: &mut Switch<ToPort2>, n: u8| {
            sw.receive_with(0, 5, |sink| (0..n).for_each(|i| sink.push(&frame(i))));
        };
        receive(&mut sw, 5);
        // The port took 2 of 5 (a guest with room for two).
        let sent = sw.drain_tx_batch_as(1, PortLoss::GuestRingFull, |_, ids| Sent {
            count: ids.len().min(2),
            kept: false,
        });
        assert_eq!(sent, 2);
        receive(&mut sw, 1);
        sw.discard_tx(1);
        let s = &sw.ports()[1].stats;
        assert_eq!((s.tx_packets, s.tx_dropped), (2, 4));
        assert_eq!(s.losses.text(), "guest-ring-full=3 tx-no-queue=1");
        assert_eq!(sw.pool.available(), free, "every buffer is back");
    }

    #[test]
    fn two_bridges_share_the_switch_by_dp_ports_and_dump_their_own_megaflows() {
        use openflow::normal::{MacTable, NormalPort, VlanMode};
        use openflow::{Bridge, DatapathBridge, DatapathUpcall};
        use std::sync::Arc;
        let bridge = |rules: &str| {
            let ports = [1, 2]
                .map(|ofport| NormalPort {
                    ofport,
                    vlan: VlanMode::Trunk(Vec::new()),
                    flood: true,
                })
                .to_vec();
            let b = Bridge::new(ports, MacTable::default());
            b.add_flows_text(rules, 0).unwrap();
            Arc::new(b)
        };
        let up = DatapathUpcall::new();
        up.set_bridges(vec![
            DatapathBridge {
                name: "a".into(),
                bridge: bridge("in_port=1,actions=output:2\n"),
                ports: vec![(1, 1), (2, 2)],
                tunnels: Vec::new(),
                mac: None,
                mtus: Vec::new(),
            },
            DatapathBridge {
                name: "b".into(),
                bridge: bridge("in_port=1,actions=output:2\nin_port=2,actions=drop\n"),
                ports: vec![(1, 3), (2, 4)],
                tunnels: Vec::new(),
                mac: None,
                mtus: Vec::new(),
            },
        ])
        .unwrap();
        let mut sw = Switch::with_pool(up, ClassifyConfig::default(), PacketPool::new(64)).unwrap();
        for (bridge, name, ofport, dp_port) in [
            ("a", "a1", 1, 1),
            ("a", "a2", 2, 2),
            ("b", "b1", 1, 3),
            ("b", "b2", 2, 4),
        ] {
            sw.add_port(SwitchPort::new(bridge, name, ofport, dp_port));
        }
        let free = sw.free_buffers();
        // b's port 1 (index 2) to b's port 2 (index 3); nothing reaches a's ports.
        sw.receive(2, [(frame(1).as_slice(), 0)].into_iter(), 0);
        sw.receive(0, [(frame(2).as_slice(), 0)].into_iter(), 0);
        let mut out: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 4];
        for (i, o) in out.iter_mut().enumerate() {
            sw.drain_tx(i, |f, _| o.push(f.to_vec()));
        }
        assert_eq!(out, vec![vec![], vec![frame(2)], vec![], vec![frame(1)]]);
        assert_eq!(sw.free_buffers(), free);
        for bridge in ["a", "b"] {
            let lines = sw.dump_megaflows_text(bridge, 0, false);
            assert_eq!(lines.len(), 1, "{bridge}: {lines:?}");
            assert!(
                lines[0].starts_with("recirc_id(0),in_port(1),") && lines[0].ends_with("actions:2"),
                "{bridge}: {lines:?}"
            );
            // By name: the bridge's own ports, not the other bridge's of the same number.
            let named = sw.dump_megaflows_text(bridge, 0, true);
            assert!(
                named[0].starts_with(&format!("recirc_id(0),in_port({bridge}1),"))
                    && named[0].ends_with(&format!("actions:{bridge}2")),
                "{bridge}: {named:?}"
            );
        }
        assert!(sw.dump_megaflows_text("c", 0, false).is_empty());
        // A port removed and its number given to a port of the other bridge: a new port.
        sw.remove_port(4);
        let i = sw.add_port(SwitchPort::new("a", "a3", 3, 4));
        assert_eq!(
            (sw.ports()[i].bridge.as_str(), sw.ports()[i].ofport),
            ("a", 3)
        );
    }
}
