//! Per-port transmit queues filled by the graph and flushed by the I/O layer once per batch.

use crate::buffer::{PacketId, PacketPool};

/// Packets and bytes per port, `(port, packets, bytes)`: the tunnel ports' counters, kept
/// by the nodes that act for them (a tunnel port has no queue).
pub type PortCounts = Vec<(u32, u64, u64)>;

/// Adds `packets` packets of `bytes` bytes in all to `port`'s entry of `counts` (a linear
/// search: a switch has few tunnel ports).
#[inline]
pub fn count_port(counts: &mut PortCounts, port: u32, packets: u64, bytes: u64) {
    match counts.iter_mut().find(|c| c.0 == port) {
        Some(c) => {
            c.1 += packets;
            c.2 += bytes;
        }
        None => counts.push((port, packets, bytes)),
    }
}

/// Transmit queues, one per output port number.
#[derive(Default)]
pub struct TxQueues {
    ports: Vec<u32>,
    queues: Vec<Vec<PacketId>>,
    /// Packets sent to a port number that has no queue (freed).
    pub no_such_port: u64,
    /// Copies for a non-final output that could not be made for want of a free buffer (the
    /// original packet goes on, so this is not a drop of it).
    pub no_buffers: u64,
    /// Packets the actions made that later actions dropped, by [`crate::ExecDrop`] reason:
    /// copies a [`crate::DpAction::Clone`] made (the original packet went on), and IP
    /// fragments a [`crate::DpAction::Ct`] released ([`crate::Fragments`]).
    pub clone_drops: [u64; crate::ExecDrop::NAMES.len()],
    /// Packets a [`crate::DpAction::TunnelPush`] encapsulated.
    pub encapsulated: u64,
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" sent for packets too big for
    /// their tunnel.
    pub too_big_answers: u64,
    /// What each tunnel port sent ([`crate::PushHeader::port`]), inner frames counted.
    pub tunnel_tx: PortCounts,
    /// Copies a [`crate::DpAction::Recirc`] inside a [`crate::DpAction::Clone`] sent back to
    /// classification (`recirc_id` set), and released IP fragments a `Recirc` after their
    /// `Ct` sent; the switch runs them after the batch.
    pub recirc: Vec<PacketId>,
    /// Packets the actions made that enter the pipeline as received on a port, `(port,
    /// packet)`: too-big answers, from the tunnel port. The switch runs them after the batch.
    pub arrivals: Vec<(u32, PacketId)>,
    /// The encapsulation's own counters, as a node's: runs of a [`crate::DpAction::TunnelPush`]
    /// over a group, packets it took, cycles it spent (inside the executing node's).
    pub encap: crate::NodeStats,
}

impl TxQueues {
    /// Queues for the given port numbers.
    pub fn new(ports: &[u32]) -> TxQueues {
        let mut t = TxQueues::default();
        for &p in ports {
            t.add_port(p);
        }
        t
    }

    /// Adds a queue for `port` (no effect if it exists).
    pub fn add_port(&mut self, port: u32) {
        if !self.ports.contains(&port) {
            self.ports.push(port);
            self.queues.push(Vec::with_capacity(256));
        }
    }

    /// Removes the queue of `port`, freeing what it held.
    pub fn remove_port(&mut self, port: u32, pool: &mut PacketPool) {
        if let Some(i) = self.ports.iter().position(|&p| p == port) {
            self.ports.swap_remove(i);
            for p in self.queues.swap_remove(i) {
                pool.free(p);
            }
        }
    }

    /// True when `port` has a queue.
    pub fn has_port(&self, port: u32) -> bool {
        self.ports.contains(&port)
    }

    /// The port numbers with queues.
    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    /// Index of `port`'s queue, to enqueue many packets with one lookup.
    #[inline]
    pub fn index_of(&self, port: u32) -> Option<usize> {
        self.ports.iter().position(|&p| p == port)
    }

    /// Queue `pkt` on `port`; an unknown port frees the packet and counts it. Returns whether
    /// the packet was queued.
    #[inline]
    pub fn enqueue(&mut self, port: u32, pkt: PacketId, pool: &mut PacketPool) -> bool {
        match self.index_of(port) {
            Some(i) => {
                self.queues[i].push(pkt);
                true
            }
            None => {
                self.no_such_port += 1;
                pool.free(pkt);
                false
            }
        }
    }

    /// Queue by index from [`TxQueues::index_of`].
    #[inline(always)]
    pub fn enqueue_at(&mut self, index: usize, pkt: PacketId) {
        self.queues[index].push(pkt);
    }

    /// Queue a whole group by index from [`TxQueues::index_of`], in order.
    #[inline(always)]
    pub fn enqueue_all_at(&mut self, index: usize, pkts: &[PacketId]) {
        self.queues[index].extend_from_slice(pkts);
    }

    /// What is queued on `port`.
    pub fn queue(&self, port: u32) -> Option<&Vec<PacketId>> {
        self.index_of(port).map(|i| &self.queues[i])
    }

    /// Takes everything queued on `port`, leaving its queue empty (capacity kept).
    pub fn drain(&mut self, port: u32, out: &mut Vec<PacketId>) {
        if let Some(i) = self.index_of(port) {
            out.append(&mut self.queues[i]);
        }
    }

    /// Total packets waiting in all queues.
    pub fn pending(&self) -> usize {
        self.queues.iter().map(|q| q.len()).sum()
    }
}
