//! One switch instance on one thread: packet pool, graph (parse → classify), transmit queues
//! and port counters. The I/O around it (pcap replay now; AF_XDP and vhost-user PMDs later)
//! feeds received frames in with [`Switch::receive`] and takes transmitted ones out with
//! [`Switch::drain_tx`].

use flowcache::{Classify, ClassifyConfig};
use pipeline::parse::Parse;
use pipeline::{Ctx, Graph, PacketId, PacketPool, TxQueues, Upcall};
use serde::Serialize;

/// Frames in the pool of one switch instance.
const POOL_FRAMES: u32 = 8192;

/// Counters of one port, as `port-stats` prints them.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames the port could not take in (longer than a buffer, or no free buffer).
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames the port's transmit queue did not take (ring full, frame too long).
    pub tx_dropped: u64,
}

/// A port of the switch: its OpenFlow number, name and counters.
#[derive(Clone, Debug, Serialize)]
pub struct SwitchPort {
    pub name: String,
    pub ofport: u32,
    pub stats: PortStats,
}

/// The graph, buffers and ports of one switch instance.
pub struct Switch<U: Upcall + 'static> {
    pool: PacketPool,
    tx: TxQueues,
    graph: Graph,
    entry: usize,
    classify: usize,
    ports: Vec<SwitchPort>,
    rx_scratch: Vec<PacketId>,
    tx_scratch: Vec<PacketId>,
    _upcall: std::marker::PhantomData<U>,
}

impl<U: Upcall + 'static> Switch<U> {
    /// A switch with the given ports (`(name, ofport)`), translating new flows with `upcall`.
    pub fn new(ports: &[(String, u32)], upcall: U, config: ClassifyConfig) -> anyhow::Result<Self> {
        let mut graph = Graph::new();
        let entry = graph.add(Box::new(Parse::new("classify")))?;
        let classify = graph.add(Box::new(Classify::new(upcall, config)))?;
        graph.wire()?;
        let numbers: Vec<u32> = ports.iter().map(|p| p.1).collect();
        Ok(Switch {
            pool: PacketPool::new(POOL_FRAMES),
            tx: TxQueues::new(&numbers),
            graph,
            entry,
            classify,
            ports: ports
                .iter()
                .map(|(name, ofport)| SwitchPort {
                    name: name.clone(),
                    ofport: *ofport,
                    stats: PortStats::default(),
                })
                .collect(),
            rx_scratch: Vec::with_capacity(pipeline::MAX_BATCH),
            tx_scratch: Vec::with_capacity(pipeline::MAX_BATCH),
            _upcall: std::marker::PhantomData,
        })
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
            match self.pool.alloc_with(data) {
                Ok(id) => {
                    let m = self.pool.meta_mut(id);
                    m.key.in_port = p.ofport;
                    m.rx_ns = rx_ns;
                    p.stats.rx_packets += 1;
                    p.stats.rx_bytes += data.len() as u64;
                    self.rx_scratch.push(id);
                }
                Err(_) => p.stats.rx_dropped += 1,
            }
        }
        let mut cx = Ctx {
            pool: &mut self.pool,
            tx: &mut self.tx,
            now_ns,
        };
        self.graph.dispatch(&mut cx, self.entry, &self.rx_scratch);
    }

    /// Adds a port (no effect when `ofport` is there already). Returns its index.
    pub fn add_port(&mut self, name: &str, ofport: u32) -> usize {
        if let Some(i) = self.ports.iter().position(|p| p.ofport == ofport) {
            return i;
        }
        self.tx.add_port(ofport);
        self.ports.push(SwitchPort {
            name: name.to_string(),
            ofport,
            stats: PortStats::default(),
        });
        self.ports.len() - 1
    }

    /// Removes the port `ofport`, freeing what its transmit queue held. The indexes of the
    /// ports after it move down by one.
    pub fn remove_port(&mut self, ofport: u32) {
        if let Some(i) = self.ports.iter().position(|p| p.ofport == ofport) {
            self.ports.remove(i);
            self.tx.remove_port(ofport, &mut self.pool);
        }
    }

    /// Receives one batch on port `port` (an index into [`Switch::ports`]) and runs it through
    /// the graph at `now_ns`: `fill` is handed a closure that copies one frame into the pool
    /// (the one copy on the receive side) and calls it for each received frame. Returns the
    /// number of frames taken in. A frame longer than a buffer, or one that finds the pool
    /// empty, counts as the port's `rx_dropped`.
    pub fn receive_with(
        &mut self,
        port: usize,
        now_ns: u64,
        fill: impl FnOnce(&mut dyn FnMut(&[u8])),
    ) -> usize {
        let Some(p) = self.ports.get_mut(port) else {
            return 0;
        };
        self.rx_scratch.clear();
        let (pool, scratch) = (&mut self.pool, &mut self.rx_scratch);
        let mut push = |data: &[u8]| {
            if scratch.len() >= pipeline::MAX_BATCH {
                p.stats.rx_dropped += 1;
                return;
            }
            match pool.alloc_with(data) {
                Ok(id) => {
                    let m = pool.meta_mut(id);
                    m.key.in_port = p.ofport;
                    m.rx_ns = now_ns;
                    p.stats.rx_packets += 1;
                    p.stats.rx_bytes += data.len() as u64;
                    scratch.push(id);
                }
                Err(_) => p.stats.rx_dropped += 1,
            }
        };
        fill(&mut push);
        let n = self.rx_scratch.len();
        if n > 0 {
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns,
            };
            self.graph.dispatch(&mut cx, self.entry, &self.rx_scratch);
        }
        n
    }

    /// Hands the frames queued on port `port` to `send` in slices of at most
    /// `pipeline::MAX_BATCH` (the one copy on the transmit side happens there), counts what
    /// `send` did not take as `tx_dropped`, and frees them all. Returns the frames sent.
    pub fn drain_tx_batch(
        &mut self,
        port: usize,
        mut send: impl FnMut(&[&[u8]]) -> usize,
    ) -> usize {
        let Some(p) = self.ports.get_mut(port) else {
            return 0;
        };
        self.tx_scratch.clear();
        self.tx.drain(p.ofport, &mut self.tx_scratch);
        let mut sent_total = 0;
        for chunk in self.tx_scratch.chunks(pipeline::MAX_BATCH) {
            let mut frames: [&[u8]; pipeline::MAX_BATCH] = [&[]; pipeline::MAX_BATCH];
            let mut bytes = 0u64;
            for (f, &id) in frames.iter_mut().zip(chunk) {
                *f = self.pool.data(id);
            }
            let sent = send(&frames[..chunk.len()]).min(chunk.len());
            for f in &frames[..sent] {
                bytes += f.len() as u64;
            }
            p.stats.tx_packets += sent as u64;
            p.stats.tx_bytes += bytes;
            p.stats.tx_dropped += (chunk.len() - sent) as u64;
            sent_total += sent;
            for &id in chunk {
                self.pool.free(id);
            }
        }
        sent_total
    }

    /// Whether port `port` has frames waiting to be sent.
    pub fn tx_pending(&self, port: usize) -> bool {
        self.ports
            .get(port)
            .and_then(|p| self.tx.queue(p.ofport))
            .is_some_and(|q| !q.is_empty())
    }

    /// Zeroes the port, node and classifier counters.
    pub fn clear_stats(&mut self) {
        for p in &mut self.ports {
            p.stats = PortStats::default();
        }
        self.graph.clear_stats();
        self.tx.no_such_port = 0;
        self.tx.no_buffers = 0;
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
        self.tx.drain(p.ofport, &mut self.tx_scratch);
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
        self.graph.reports()
    }

    /// Packets sent to a port number the switch does not have.
    pub fn tx_no_such_port(&self) -> u64 {
        self.tx.no_such_port
    }

    /// The classifier (caches, stats, the upcall handler).
    pub fn classifier(&mut self) -> Option<&mut Classify<U>> {
        self.graph.node_as::<Classify<U>>(self.classify)
    }

    /// Buffers not in use (every buffer is back after a drained dispatch: a leak check).
    pub fn free_buffers(&self) -> usize {
        self.pool.available()
    }
}
