//! The seam between the switch and its ports: where a port's receive burst puts frames
//! ([`RxSink`], implemented by the switch over its packet pool) and what a transmit burst
//! reports ([`Sent`]). It lives here, beside [`crate::TxQueues`], so that the switch core never
//! imports a port crate; the ports' `PortIo` trait builds on it.

use crate::buffer::{PacketId, PacketPool};
use crate::graph::MAX_BATCH;

/// What a transmit burst did with the packets it was handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Packets taken, from the front; the caller counts the rest as transmit drops.
    pub count: usize,
    /// Whether the port keeps the packets it took (it sends their frames as they are, and
    /// gives each back through [`RxSink::give_back`] once sent); else it copied them and the
    /// caller frees them all.
    pub kept: bool,
}

/// Where a receive burst puts its frames: packets of the switch's pool.
///
/// A port whose frames live in the pool's memory (AF_XDP in the UMEM the pool is made of)
/// takes no copy at all: it borrows empty frames ([`RxSink::lend`]) for the kernel to fill,
/// hands them back holding packets ([`RxSink::adopt`]), and returns the ones it sent
/// ([`RxSink::give_back`]). The other methods then go unused.
pub trait RxSink {
    /// Copies `frame` into a new packet (or counts it as the port's drop: too long, no free
    /// buffer, batch full).
    fn push(&mut self, frame: &[u8]);
    /// A packet buffer of [`crate::MAX_PACKET`] bytes, for a port that writes the next
    /// frame into it in place (one copy less than gathering it and calling
    /// [`RxSink::push`]); `None` when this burst takes no more frames, and the port leaves
    /// the frame where it is. The same buffer is handed out again until it is committed.
    fn room(&mut self) -> Option<&mut [u8]>;
    /// Takes the first `len` bytes of the buffer [`RxSink::room`] gave as a received packet.
    fn commit(&mut self, len: usize);

    /// The pool's [`crate::PacketPool::memory_addr`]; a port lends and adopts frames only
    /// if this is the pool it shares memory with. `None`: no pool (the default).
    fn pool_addr(&self) -> Option<usize> {
        None
    }

    /// An empty frame of the pool, lent to the port until it comes back through
    /// [`RxSink::adopt`] or [`RxSink::give_back`]; `None` when the pool keeps its last frames
    /// for the packets in flight.
    fn lend(&mut self) -> Option<PacketId> {
        None
    }

    /// A lent frame comes back holding a received packet of `len` bytes at `data_off`; it
    /// joins the burst (or, when it cannot, is freed and counted as the port's drop).
    fn adopt(&mut self, _id: PacketId, _data_off: usize, _len: usize) {}

    /// A lent frame comes back empty (or a kept packet was sent).
    fn give_back(&mut self, _id: PacketId) {}
}

/// Hands the bytes of packets `ids` of `pool` (at most [`MAX_BATCH`]) to `send`,
/// which copies them out: the default `PortIo::tx_packets` of the ports.
pub fn send_copies(
    pool: &PacketPool,
    ids: &[PacketId],
    send: impl FnOnce(&[&[u8]]) -> usize,
) -> Sent {
    let mut frames: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
    let n = ids.len().min(MAX_BATCH);
    for (f, &id) in frames.iter_mut().zip(&ids[..n]) {
        *f = pool.data(id);
    }
    Sent {
        count: send(&frames[..n]).min(n),
        kept: false,
    }
}
