//! The node graph and its dispatcher, in VPP's model.
//!
//! A [`Node`] takes a frame of up to [`MAX_BATCH`] packet handles and writes one [`Next`] per
//! packet: an index into its list of next nodes, a drop with a reason, or "consumed" (the node
//! kept, queued or freed the packet itself). The [`Graph`] then scatters the frame once, into
//! the pending frames of the next nodes, frees dropped packets and counts them under
//! `<node>.<reason>`. It runs nodes in the order they were added until every pending frame is
//! empty, so a node may send packets back to an earlier node (recirculation).

use crate::buffer::{PacketId, PacketPool};
use crate::cycles;
use crate::txq::TxQueues;

/// Largest frame a node is given at once.
pub const MAX_BATCH: usize = 256;

/// Where a packet goes after a node: encoded in 16 bits so that the per-packet array is small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Next(u16);

impl Next {
    const DROP_BIT: u16 = 0x8000;
    /// The node took care of the packet (queued it for transmit, kept it, or freed it).
    pub const CONSUMED: Next = Next(u16::MAX);

    /// To the node at `index` in [`Node::next_nodes`].
    #[inline(always)]
    pub const fn to(index: u16) -> Next {
        Next(index)
    }

    /// Drop, counted under the reason at `index` in [`Node::drop_reasons`].
    #[inline(always)]
    pub const fn drop(reason: u16) -> Next {
        Next(Self::DROP_BIT | reason)
    }

    /// The drop reason index, if this is a drop.
    #[inline(always)]
    pub const fn drop_reason(self) -> Option<u16> {
        if self.0 != u16::MAX && self.0 & Self::DROP_BIT != 0 {
            Some(self.0 & !Self::DROP_BIT)
        } else {
            None
        }
    }

    /// The next-node index, if the packet goes on to another node.
    #[inline(always)]
    pub const fn next_index(self) -> Option<u16> {
        if self.0 & Self::DROP_BIT == 0 {
            Some(self.0)
        } else {
            None
        }
    }
}

/// What every node sees besides its frame: the packet memory, the transmit queues and the time.
pub struct Ctx<'a> {
    pub pool: &'a mut PacketPool,
    pub tx: &'a mut TxQueues,
    /// Nanoseconds on the pipeline's clock at the start of this dispatch.
    pub now_ns: u64,
}

/// A graph node: one function over a whole frame.
pub trait Node {
    /// Kebab-case name, equal to its module's name (`parse`, `classify`, `geneve-decap`).
    fn name(&self) -> &'static str;
    /// Names of the nodes this one sends packets to; [`Next::to`] indexes this list.
    fn next_nodes(&self) -> &[&'static str];
    /// Names of this node's drop reasons; [`Next::drop`] indexes this list.
    fn drop_reasons(&self) -> &[&'static str];
    /// Handles `pkts` and writes `next[i]` for `pkts[i]`. `next.len() == pkts.len()`.
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]);

    /// The node as `Any`, so that its owner can reach node-specific state (caches, stats)
    /// through [`Graph::node_as`]. Nodes with such state return `Some(self)`.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

/// Errors when wiring a graph.
#[derive(Debug, PartialEq, Eq)]
pub enum GraphError {
    /// A node names a next node that was never added.
    UnknownNext { node: String, next: String },
    /// Two nodes share a name.
    DuplicateName(String),
    /// A node declares more next nodes or drop reasons than a [`Next`] can encode.
    TooManyEdges(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::UnknownNext { node, next } => {
                write!(f, "node {node}: next node {next} does not exist")
            }
            GraphError::DuplicateName(n) => write!(f, "node name {n} is used twice"),
            GraphError::TooManyEdges(n) => {
                write!(f, "node {n}: too many next nodes or drop reasons")
            }
        }
    }
}

impl std::error::Error for GraphError {}

/// Counters of one node, as VPP's `show runtime` prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Times the node ran.
    pub calls: u64,
    /// Packets it handled (VPP's "vectors").
    pub vectors: u64,
    /// Time-stamp-counter cycles spent inside it.
    pub cycles: u64,
}

/// One node's counters with its name and drop counts, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport {
    pub name: &'static str,
    pub stats: NodeStats,
    /// `(reason, count)` for every declared reason, zero counts included.
    pub drops: Vec<(&'static str, u64)>,
}

struct Slot {
    node: Box<dyn Node>,
    name: &'static str,
    /// Graph index of each of the node's next nodes.
    nexts: Vec<usize>,
    reasons: Vec<&'static str>,
    pending: Vec<PacketId>,
    stats: NodeStats,
    drops: Vec<u64>,
}

/// A set of nodes wired by name, with a dispatcher.
#[derive(Default)]
pub struct Graph {
    slots: Vec<Slot>,
    scratch: Vec<PacketId>,
    next: Vec<Next>,
    wired: bool,
}

impl Graph {
    pub fn new() -> Graph {
        Graph {
            slots: Vec::new(),
            scratch: Vec::with_capacity(MAX_BATCH),
            next: vec![Next::CONSUMED; MAX_BATCH],
            wired: false,
        }
    }

    /// Adds a node and returns its index. Call [`Graph::wire`] after the last one.
    pub fn add(&mut self, node: Box<dyn Node>) -> Result<usize, GraphError> {
        let name = node.name();
        if self.slots.iter().any(|s| s.name == name) {
            return Err(GraphError::DuplicateName(name.to_string()));
        }
        let reasons: Vec<&'static str> = node.drop_reasons().to_vec();
        if reasons.len() >= 0x7fff || node.next_nodes().len() >= 0x7fff {
            return Err(GraphError::TooManyEdges(name.to_string()));
        }
        self.slots.push(Slot {
            drops: vec![0; reasons.len()],
            reasons,
            node,
            name,
            nexts: Vec::new(),
            pending: Vec::with_capacity(MAX_BATCH),
            stats: NodeStats::default(),
        });
        self.wired = false;
        Ok(self.slots.len() - 1)
    }

    /// Resolves every node's next-node names to graph indices.
    pub fn wire(&mut self) -> Result<(), GraphError> {
        let names: Vec<&'static str> = self.slots.iter().map(|s| s.name).collect();
        for slot in &mut self.slots {
            let mut nexts = Vec::new();
            for next in slot.node.next_nodes() {
                match names.iter().position(|n| n == next) {
                    Some(i) => nexts.push(i),
                    None => {
                        return Err(GraphError::UnknownNext {
                            node: slot.name.to_string(),
                            next: next.to_string(),
                        })
                    }
                }
            }
            slot.nexts = nexts;
        }
        self.wired = true;
        Ok(())
    }

    /// Index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Runs `pkts` through the graph starting at node `entry`, until no frame is pending.
    pub fn dispatch(&mut self, cx: &mut Ctx<'_>, entry: usize, pkts: &[PacketId]) {
        if !self.wired || entry >= self.slots.len() {
            // Not wired: nothing can be forwarded; give the packets back rather than leak them.
            for &p in pkts {
                cx.pool.free(p);
            }
            return;
        }
        self.slots[entry].pending.extend_from_slice(pkts);
        loop {
            let mut ran = false;
            for i in 0..self.slots.len() {
                while !self.slots[i].pending.is_empty() {
                    ran = true;
                    std::mem::swap(&mut self.scratch, &mut self.slots[i].pending);
                    let input = std::mem::take(&mut self.scratch);
                    for chunk in input.chunks(MAX_BATCH) {
                        self.run_node(i, cx, chunk);
                    }
                    let mut input = input;
                    input.clear();
                    self.scratch = input;
                }
            }
            if !ran {
                break;
            }
        }
    }

    fn run_node(&mut self, i: usize, cx: &mut Ctx<'_>, pkts: &[PacketId]) {
        let n = pkts.len();
        let next = &mut self.next[..n];
        let slot = &mut self.slots[i];
        let t0 = cycles::now();
        slot.node.process(cx, pkts, next);
        let t1 = cycles::now();
        slot.stats.calls += 1;
        slot.stats.vectors += n as u64;
        slot.stats.cycles += t1.wrapping_sub(t0);
        // The usual frame has one fate for every packet (all parsed, all queued): scatter it
        // in one piece.
        if let Some((&first, rest)) = self.next[..n].split_first() {
            if rest.iter().all(|&x| x == first) {
                if first == Next::CONSUMED {
                    return;
                }
                let target = first
                    .next_index()
                    .and_then(|k| self.slots[i].nexts.get(k as usize).copied());
                if let Some(target) = target {
                    self.slots[target].pending.extend_from_slice(pkts);
                    return;
                }
            }
        }
        for (&p, &nx) in pkts.iter().zip(self.next[..n].iter()) {
            if let Some(k) = nx.next_index() {
                match self.slots[i].nexts.get(k as usize) {
                    Some(&target) => self.slots[target].pending.push(p),
                    None => cx.pool.free(p),
                }
            } else if let Some(r) = nx.drop_reason() {
                if let Some(c) = self.slots[i].drops.get_mut(r as usize) {
                    *c += 1;
                }
                cx.pool.free(p);
            }
        }
    }

    /// Every node's counters, in graph order.
    pub fn reports(&self) -> Vec<NodeReport> {
        self.slots
            .iter()
            .map(|s| NodeReport {
                name: s.name,
                stats: s.stats,
                drops: s
                    .reasons
                    .iter()
                    .copied()
                    .zip(s.drops.iter().copied())
                    .collect(),
            })
            .collect()
    }

    /// Clears every node's counters.
    pub fn clear_stats(&mut self) {
        for s in &mut self.slots {
            s.stats = NodeStats::default();
            s.drops.iter_mut().for_each(|c| *c = 0);
        }
    }

    /// The node at `index` as its concrete type, if it is a `T` that exposes itself through
    /// [`Node::as_any_mut`].
    pub fn node_as<T: 'static>(&mut self, index: usize) -> Option<&mut T> {
        self.slots
            .get_mut(index)?
            .node
            .as_any_mut()?
            .downcast_mut::<T>()
    }

    /// Mutable access to a node, for control-plane changes between dispatches.
    pub fn node_mut(&mut self, index: usize) -> Option<&mut (dyn Node + 'static)> {
        self.slots.get_mut(index).map(|s| s.node.as_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends even-length packets to `sink`, drops odd ones as `odd`.
    struct Split;
    impl Node for Split {
        fn name(&self) -> &'static str {
            "split"
        }
        fn next_nodes(&self) -> &[&'static str] {
            &["sink"]
        }
        fn drop_reasons(&self) -> &[&'static str] {
            &["odd"]
        }
        fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
            for (p, n) in pkts.iter().zip(next.iter_mut()) {
                *n = if cx.pool.meta(*p).len.is_multiple_of(2) {
                    Next::to(0)
                } else {
                    Next::drop(0)
                };
            }
        }
    }

    struct Sink;
    impl Node for Sink {
        fn name(&self) -> &'static str {
            "sink"
        }
        fn next_nodes(&self) -> &[&'static str] {
            &[]
        }
        fn drop_reasons(&self) -> &[&'static str] {
            &[]
        }
        fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
            for (p, n) in pkts.iter().zip(next.iter_mut()) {
                cx.tx.enqueue(1, *p, cx.pool);
                *n = Next::CONSUMED;
            }
        }
    }

    #[test]
    fn dispatch_scatters_and_counts() {
        let mut pool = PacketPool::new(600);
        let mut tx = TxQueues::new(&[1]);
        let mut g = Graph::new();
        let split = g.add(Box::new(Split)).unwrap();
        g.add(Box::new(Sink)).unwrap();
        g.wire().unwrap();
        let pkts: Vec<PacketId> = (0..300)
            .map(|i| pool.alloc_with(&vec![0; 60 + i % 2]).unwrap())
            .collect();
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: 0,
        };
        g.dispatch(&mut cx, split, &pkts);
        let r = g.reports();
        assert_eq!(r[0].stats.vectors, 300);
        assert_eq!(r[0].stats.calls, 2, "300 packets are two frames");
        assert_eq!(r[0].drops, vec![("odd", 150)]);
        assert_eq!(r[1].stats.vectors, 150);
        assert_eq!(tx.queue(1).map(|q| q.len()), Some(150));
        assert_eq!(pool.available(), 600 - 150);
    }

    #[test]
    fn unknown_next_is_refused() {
        let mut g = Graph::new();
        g.add(Box::new(Split)).unwrap();
        assert_eq!(
            g.wire(),
            Err(GraphError::UnknownNext {
                node: "split".into(),
                next: "sink".into()
            })
        );
        assert!(g.add(Box::new(Split)).is_err());
    }
}
