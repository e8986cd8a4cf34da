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
