//! The split-ring data path of a vhost-user port, run by the PMD: [`guest_tx`] takes the
//! chains the guest offers on its transmit virtqueue, gathers each frame (after the
//! `virtio_net_hdr`) into a scratch buffer and hands it on; [`guest_rx`] writes frames with
//! their header into the buffers the guest offers on its receive virtqueue, merging buffers
//! (`num_buffers`) when a frame spans several. Guest memory goes through [`GuestMemory`]'s
//! bounds-checked copies and every chain through [`Chain`], which stops after queue-size
//! descriptors, so a bad guest costs a counted, dropped chain, never a read or write outside
//! its memory. A burst reads the available index once and publishes the used index once
//! (a frame merged across buffers must appear whole: DPDK's virtio driver drops a frame whose
//! buffers it sees only in part). No allocation, no `Result` and no panic per packet.

use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use crate::guest::{Desc, GuestMemory, GuestSpan, PackedView, RingView, DESC_F_NEXT, DESC_F_WRITE};
use pipeline::RxSink;

/// Bytes of `virtio_net_hdr_mrg_rxbuf` (VIRTIO 1.x, or legacy with mergeable rx buffers).
pub const NET_HDR_LEN: usize = 12;
/// Bytes of the legacy `virtio_net_hdr` without mergeable rx buffers.
pub const LEGACY_NET_HDR_LEN: usize = 10;
/// Largest frame (without the header) either direction carries: a 9000-byte MTU plus L2.
pub const MAX_FRAME: usize = 9216;
/// Most guest buffers one received frame may be merged across.
pub(super) const MAX_MERGE: usize = 64;
/// `VRING_AVAIL_F_NO_INTERRUPT`: the guest does not want the call eventfd signalled.
const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// What the data path counts, per queue (the PMD owns them, no atomics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Frames received from the guest.
    pub rx_frames: u64,
    /// Bytes of those frames (headers excluded).
    pub rx_bytes: u64,
    /// Guest chains longer than [`MAX_FRAME`] plus the header, dropped.
    pub rx_too_long: u64,
    /// Guest chains shorter than the header, dropped.
    pub rx_runts: u64,
    /// Frames written to the guest.
    pub tx_frames: u64,
    /// Bytes of those frames (headers excluded).
    pub tx_bytes: u64,
    /// Frames not written: the guest offered no (or too few) receive buffers.
    pub tx_dropped: u64,
    /// Frames longer than [`MAX_FRAME`] or than `MAX_MERGE` buffers hold, dropped.
    pub tx_too_long: u64,
    /// Chains dropped as malformed: an address outside guest memory, a loop or a dangling
    /// `next`, a descriptor of the wrong direction, a head index past the ring.
    pub bad_descriptors: u64,
    /// Bursts refused because the guest's available index ran more than a ring ahead.
    pub bad_rings: u64,
    /// Call eventfd writes (the guest asked for interrupts).
    pub call_signals: u64,
    /// Vrings stopped because the guest's memory lost pages under them (SIGBUS caught).
    pub memory_faults: u64,
}

/// How a frame's header looks on this connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetHdr {
    /// Header bytes before each frame.
    pub len: usize,
    /// Whether `num_buffers` may be above 1 (`VIRTIO_NET_F_MRG_RXBUF`).
    pub mergeable: bool,
}

/// A virtqueue as the frontend configured it, and where the device is in it: a split ring,
/// or a packed one (`VIRTIO_F_RING_PACKED`, [`crate::packed`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingState {
    /// Entries (split: a power of two; 0 until set).
    pub size: u16,
    /// Guest physical addresses of the descriptor table, available ring and used ring
    /// (packed: the descriptor ring, and the driver's and the device's event suppression
    /// areas).
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// The next available-ring entry the device takes (packed: the next descriptor).
    pub next_avail: u16,
    /// The next used-ring entry the device writes (packed: the next descriptor).
    pub next_used: u16,
    /// The packed layout.
    pub packed: bool,
    /// Packed: the wrap counters that go with `next_avail` and `next_used`.
    pub avail_wrap: bool,
    pub used_wrap: bool,
    /// `VIRTIO_F_IN_ORDER` was negotiated: the device uses buffers in the order the guest
    /// made them available, so it may give back a run of them with one used entry naming the
    /// last, at the slot of the first (VIRTIO 1.1 §2.6.9, §2.7.21). Transmit rings do: their
    /// chains come back with length 0, so one entry says all.
    pub in_order: bool,
    /// Split, in order: one past the head of the last chain taken, where the guest's next
    /// chain most likely starts (a guess, only ever used to prefetch).
    pub next_head: u16,
}

impl RingState {
    /// The split ring's areas in `mem`, or None when one is outside it (or misaligned), or
    /// the ring is packed.
    pub fn view<'a>(&self, mem: &'a GuestMemory) -> Option<RingView<'a>> {
        if self.packed {
            return None;
        }
        RingView::new(mem, self.size, self.desc, self.avail, self.used)
    }

    /// The packed ring's areas in `mem`, or None as for [`RingState::view`], or the ring is
    /// split.
    pub fn packed_view<'a>(&self, mem: &'a GuestMemory) -> Option<PackedView<'a>> {
        if !self.packed {
            return None;
        }
        PackedView::new(mem, self.size, self.desc, self.avail, self.used)
    }

    /// The ring's state as GET_VRING_BASE reports it (packed: the wrap counter in bit 15).
    pub fn base(&self) -> u32 {
        u32::from(self.next_avail) | (u32::from(self.packed && self.avail_wrap) << 15)
    }

    /// Sets the device's position from SET_VRING_BASE (packed: bit 15 is the wrap counter).
    pub fn set_base(&mut self, base: u16) {
        if self.packed {
            self.next_avail = base & 0x7fff;
            self.avail_wrap = base & 0x8000 != 0;
            self.next_used = self.next_avail;
            self.used_wrap = self.avail_wrap;
        } else {
            self.next_avail = base;
            self.next_used = base;
        }
    }
}

/// One vring as a burst sees it.
pub struct Vq<'a> {
    /// The split ring.
    pub ring: &'a mut RingState,
    /// The guest's memory.
    pub mem: &'a GuestMemory,
    /// The eventfd to signal, if the frontend gave one.
    pub call: Option<&'a File>,
    /// The header layout.
    pub hdr: NetHdr,
}

/// `VIRTQ_DESC_F_INDIRECT`: not negotiated, so a descriptor carrying it is malformed.
pub(super) const DESC_F_INDIRECT: u16 = 4;

/// The descriptors of one chain, from its head: it ends early (after yielding nothing, or a
/// last descriptor that still says `next`) at an index past the table or after `size`
/// descriptors (a loop), which the caller sees as a malformed chain.
struct Chain<'v, 'a> {
    view: &'v RingView<'a>,
    next: Option<u16>,
    left: u32,
}

impl<'v, 'a> Chain<'v, 'a> {
    fn new(view: &'v RingView<'a>, head: u16) -> Chain<'v, 'a> {
        Chain {
            view,
            next: Some(head),
            left: u32::from(view.mask()) + 1,
        }
    }
}

impl Iterator for Chain<'_, '_> {
    type Item = Desc;

    #[inline]
    fn next(&mut self) -> Option<Desc> {
        let i = self.next.take()?;
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let d = self.view.desc(i)?;
        if d.flags & DESC_F_NEXT != 0 {
            self.next = Some(d.next);
        }
        Some(d)
    }
}

/// How many entries the guest has made available past `next`, or None when its index is
/// more than a ring ahead (a corrupt ring).
fn pending(view: &RingView<'_>, next: u16) -> Option<u16> {
    let n = view.avail_idx().wrapping_sub(next);
    (n <= view.mask().wrapping_add(1)).then_some(n)
}

/// How many entries ahead of the one being processed a burst has started loading the
/// descriptor ([`Ahead`]). 16/8 and 64/32 (with [`BUF_AHEAD`]) were no better on the
/// vhost-user loop with the cores far apart (BENCHMARKS.md).
pub(super) const DESC_AHEAD: u16 = 32;
/// How many entries ahead a burst has started loading the buffer a descriptor points to.
pub(super) const BUF_AHEAD: u16 = 16;
/// Packets between two [`Ahead::advance`] calls: each call tops the loads up to
/// `AHEAD + STEP` past the next entry, a few at a time, which costs fewer instructions than
/// one each per packet. Once per 32 packets is too coarse: on packed rings with the cores far
/// apart it gained nothing over no pipeline (BENCHMARKS.md).
pub(super) const STEP: usize = 8;

/// Starts loading, before the burst has read the guest's available index, the lines it
/// will most likely need first: the next available entries, and in order
/// ([`RingState::in_order`]) the descriptors from [`RingState::next_head`] on, where a
/// guest that gives its chains in order puts the next ones. Otherwise each waits for the
/// one before: index, entry, descriptor, a round trip to the guest's core apiece. A wrong
/// guess costs only the loads.
fn guess_ahead(ring: &RingState, view: &RingView<'_>) {
    view.prefetch_avail(ring.next_avail, GUESS);
    if ring.in_order {
        for k in (0..GUESS).step_by(4) {
            view.prefetch_desc(ring.next_head.wrapping_add(k));
        }
    }
}

/// Entries [`guess_ahead`] prefetches.
const GUESS: u16 = 32;

/// A split-ring burst's loads started ahead of its copies, as a pipeline over the
/// available entries `[next, end)`: when entry `i` is processed, the available entries'
/// lines are already on their way (all of them, from the start), and so are the
/// descriptors up to at least `i + DESC_AHEAD` and the buffers up to at least
/// `i + BUF_AHEAD`.
///
/// Each step's address comes out of the step before (entry → descriptor → buffer), so
/// loading a group of chains only when its first one came up waited out the three loads
/// one after another, each group: a round trip to the guest's core apiece, ~330 ns with the
/// two cores far apart. Staggered, only the burst's first chains wait for them.
struct Ahead {
    /// The next entries whose descriptor and buffer are to be prefetched.
    descs: u16,
    bufs: u16,
    /// The end of the burst's available entries.
    end: u16,
    hdr_len: usize,
    /// Receive buffers (fetched owned) rather than transmitted frames.
    write: bool,
}

impl Ahead {
    /// Starts the burst's pipeline over entries `[next, end)`, with the available-ring lines
    /// past the first [`GUESS`] entries ([`guess_ahead`] started those).
    fn start(view: &RingView<'_>, next: u16, end: u16, hdr_len: usize, write: bool) -> Ahead {
        if let Some(rest) = end.wrapping_sub(next).checked_sub(GUESS) {
            view.prefetch_avail(next.wrapping_add(GUESS), rest);
        }
        Ahead {
            descs: next,
            bufs: next,
            end,
            hdr_len,
            write,
        }
    }

    /// Keeps the loads ahead of entry `next`, the one about to be processed; called every
    /// [`STEP`] packets.
    #[inline]
    fn advance(&mut self, view: &RingView<'_>, mem: &GuestMemory, next: u16) {
        let left = self.end.wrapping_sub(next);
        // A cursor that fell behind (a frame took several entries) restarts at `next`.
        if self.descs.wrapping_sub(next) > left {
            self.descs = next;
        }
        if self.bufs.wrapping_sub(next) > left {
            self.bufs = next;
        }
        let descs_to = next.wrapping_add(left.min(DESC_AHEAD + STEP as u16));
        while self.descs != descs_to {
            view.prefetch_desc(view.avail_entry(self.descs));
            self.descs = self.descs.wrapping_add(1);
        }
        let bufs_to = next.wrapping_add(left.min(BUF_AHEAD + STEP as u16));
        while self.bufs != bufs_to {
            if let Some(d) = view.desc(view.avail_entry(self.bufs)) {
                prefetch_buffer(mem, d.addr, self.hdr_len, self.write);
            }
            self.bufs = self.bufs.wrapping_add(1);
        }
    }
}

/// Starts loading the buffer at `addr`: for a transmitted frame, its first line after the
/// header; for a receive buffer (`write`), its header line and its first frame line, that
/// one owned. The header line is only read: its header is usually what is written there
/// already ([`GuestMemory::write_if_changed`]), and fetching it owned would take it from
/// the guest's cache.
#[inline]
pub(super) fn prefetch_buffer(mem: &GuestMemory, addr: u64, hdr_len: usize, write: bool) {
    let frame = addr.wrapping_add(hdr_len as u64);
    if write {
        mem.prefetch(addr);
        mem.prefetch_write(frame);
    } else {
        mem.prefetch(frame);
    }
}

/// Used-ring entries held back before they are copied to the ring.
const SHADOW: usize = 2 * MAX_MERGE;

/// A burst's used-ring entries, kept here and copied into the ring together just before the
/// index is published. The guest polls the used index, whose cache line also holds the first
/// entries, so writing them one by one would pull that line back from the guest's core once
/// per packet (DPDK's vhost library keeps a shadow used ring for the same reason).
struct Shadow {
    /// Entries as the ring stores them: id in the low half, length in the high half.
    entries: [u64; SHADOW],
    len: usize,
    /// The ring slot of `entries[0]`.
    base: u16,
    /// Slots the last entry stands for besides its own ([`Shadow::push_run`]).
    skip: u16,
}

impl Shadow {
    fn new(base: u16) -> Shadow {
        Shadow {
            entries: [0; SHADOW],
            len: 0,
            base,
            skip: 0,
        }
    }

    /// Gives back `n` chains used in order, the last with head `id`, as one entry with
    /// length 0 (`VIRTIO_F_IN_ORDER`); the last push before [`Shadow::publish`].
    fn push_run(&mut self, view: &RingView<'_>, id: u16, n: u16) {
        if n > 0 {
            self.push(view, id, 0);
            self.skip = n - 1;
        }
    }

    /// Adds entry (`id`, `len`), first copying the held ones to the ring if it is full.
    #[inline]
    fn push(&mut self, view: &RingView<'_>, id: u16, len: u32) {
        if self.len == SHADOW {
            self.flush(view);
        }
        self.entries[self.len] = u64::from(id) | (u64::from(len) << 32);
        self.len += 1;
    }

    /// Copies the held entries into the ring (still unpublished).
    fn flush(&mut self, view: &RingView<'_>) {
        view.write_used(self.base, &self.entries[..self.len]);
        self.base = self
            .base
            .wrapping_add(self.len as u16)
            .wrapping_add(self.skip);
        self.len = 0;
        self.skip = 0;
    }

    /// Writes what is held, publishes the index past it and signals the guest if it asked.
    fn publish(
        mut self,
        ring: &mut RingState,
        view: &RingView<'_>,
        call: Option<&File>,
        c: &mut RingCounters,
    ) {
        self.flush(view);
        if self.base == ring.next_used {
            return;
        }
        ring.next_used = self.base;
        view.publish_used(self.base);
        signal(view, call, c);
    }
}

/// Signals `call` unless the guest set `VRING_AVAIL_F_NO_INTERRUPT` (a poll-mode guest such
/// as DPDK's virtio-user does). Called once per burst that used descriptors.
fn signal(view: &RingView<'_>, call: Option<&File>, c: &mut RingCounters) {
    let Some(mut call) = call else { return };
    // The used index store must be visible before the flag is read (virtio's "mb" between
    // them), or a guest that just asked for interrupts could miss this one.
    std::sync::atomic::fence(Ordering::SeqCst);
    if view.avail_flags() & VRING_AVAIL_F_NO_INTERRUPT != 0 {
        return;
    }
    // An eventfd write fails only when the counter would overflow: the guest has a signal
    // pending anyway.
    if call.write(&1u64.to_ne_bytes()).is_ok() {
        c.call_signals += 1;
    }
}

/// An [`RxSink`] over one buffer that hands each committed frame to a closure (for callers
/// that take frames as byte slices).
pub struct ClosureSink<'a> {
    /// Where a frame is written; at least [`MAX_FRAME`] bytes.
    pub buf: &'a mut [u8],
    /// Takes each frame.
    pub f: &'a mut dyn FnMut(&[u8]),
}

impl RxSink for ClosureSink<'_> {
    fn push(&mut self, frame: &[u8]) {
        (self.f)(frame);
    }

    fn room(&mut self) -> Option<&mut [u8]> {
        Some(&mut *self.buf)
    }

    fn commit(&mut self, len: usize) {
        if let Some(frame) = self.buf.get(..len) {
            (self.f)(frame);
        }
    }
}

/// Receives up to `max` frames the guest transmits (its transmit virtqueue), each written
/// without its header straight into a buffer of `sink` ([`RxSink::room`]): the one copy out
/// of guest memory. A chain longer than that buffer is counted `rx_too_long`. Every popped
/// chain goes back to the used ring (length 0: the device wrote nothing; in order, the
/// burst's chains as one entry, [`RingState::in_order`]); when the sink has
/// no room, the remaining chains wait in the ring. Returns the frames handed over.
pub fn guest_tx(vq: Vq<'_>, max: usize, c: &mut RingCounters, sink: &mut dyn RxSink) -> usize {
    let Vq {
        ring,
        mem,
        call,
        hdr,
    } = vq;
    let Some(view) = ring.view(mem) else {
        return 0;
    };
    guess_ahead(ring, &view);
    let Some(n) = pending(&view, ring.next_avail) else {
        c.bad_rings += 1;
        return 0;
    };
    let n = usize::from(n).min(max);
    let mut handed = 0;
    let mut used = Shadow::new(ring.next_used);
    // In order: the chains given back so far and the last one's head.
    let mut run = (0u16, 0u16);
    let end = ring.next_avail.wrapping_add(n as u16);
    let mut ahead = Ahead::start(&view, ring.next_avail, end, hdr.len, false);
    view.prefetch_used(
        ring.next_used,
        if ring.in_order { 1 } else { n as u16 },
        true,
    );
    for k in 0..n {
        // Chain bytes past the header land in the sink's buffer; the header is skipped
        // unread (no offloads are negotiated, so it says nothing), which saves a cache line
        // the guest wrote from crossing over per frame.
        let Some(dst) = sink.room() else {
            break;
        };
        let limit = hdr.len + dst.len().min(MAX_FRAME);
        if k % STEP == 0 {
            ahead.advance(&view, mem, ring.next_avail);
        }
        let head = view.avail_entry(ring.next_avail);
        ring.next_avail = ring.next_avail.wrapping_add(1);
        let mut off = 0usize;
        let mut descriptors = 0u32;
        let mut more = false;
        let mut bad = false;
        let mut too_long = false;
        for desc in Chain::new(&view, head) {
            descriptors += 1;
            more = desc.flags & DESC_F_NEXT != 0;
            if desc.flags & (DESC_F_WRITE | DESC_F_INDIRECT) != 0 {
                bad = true;
                break;
            }
            let len = desc.len as usize;
            let Some(end) = off.checked_add(len).filter(|&end| end <= limit) else {
                too_long = true;
                break;
            };
            let from = off.max(hdr.len);
            if end > from {
                // An address that wraps past the top of the address space is outside
                // guest memory like any other.
                let at = desc.addr.checked_add((from - off) as u64);
                if !at.is_some_and(|at| mem.read(at, &mut dst[from - hdr.len..end - hdr.len])) {
                    bad = true;
                    break;
                }
            }
            off = end;
        }
        ring.next_head = head.wrapping_add(descriptors as u16);
        if descriptors == 0 || (more && !bad && !too_long) {
            bad = true;
        }
        if head > view.mask() {
            // A head index past the ring: nothing to give back.
            bad = true;
        } else if ring.in_order {
            run = (run.0 + 1, head);
        } else {
            used.push(&view, head, 0);
        }
        if bad {
            c.bad_descriptors += 1;
        } else if too_long {
            c.rx_too_long += 1;
        } else if off < hdr.len {
            c.rx_runts += 1;
        } else {
            let len = off - hdr.len;
            c.rx_frames += 1;
            c.rx_bytes += len as u64;
            sink.commit(len);
            handed += 1;
        }
    }
    used.push_run(&view, run.1, run.0);
    used.publish(ring, &view, call, c);
    handed
}

/// Why a frame did not reach the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PutError {
    /// Too few receive buffers offered: the popped ones were put back.
    NoBuffers,
    /// The frame needs more than `MAX_MERGE` buffers (or more than one without mergeable
    /// buffers): the popped ones were put back.
    TooLong,
    /// A malformed chain: it and the ones popped before it for this frame were used with
    /// length 0.
    Bad,
}

/// Counts what became of `frame` (of `left` frames still to go in the burst, itself
/// included); true when the burst stops (the guest has no room: the rest are drops).
pub(super) fn count_put(
    c: &mut RingCounters,
    put: Result<(), PutError>,
    frame: &[u8],
    left: usize,
) -> bool {
    match put {
        Ok(()) => {
            c.tx_frames += 1;
            c.tx_bytes += frame.len() as u64;
        }
        Err(PutError::TooLong) => c.tx_too_long += 1,
        Err(PutError::Bad) => c.bad_descriptors += 1,
        Err(PutError::NoBuffers) => {
            c.tx_dropped += left as u64;
            return true;
        }
    }
    false
}

/// Frame bytes bound for the guest's receive buffers, held during a burst and copied
/// together before the burst publishes what it used (as DPDK's vhost library does with
/// `batch_copy_elems`).
///
/// Written as it goes, each frame's copy sat between ring bookkeeping: the reads of the next
/// available entry and descriptor and the used-entry writes. Queued, the copies run back to
/// back, so the CPU has many of them in flight at once. Measured on the vhost-user loop
/// (p2p, 64 B): 256 → 220–238 switch cycles per packet with the two cores near each other,
/// 601–606 → 480–494 with them far apart (BENCHMARKS.md).
///
/// Only spans inside one mapping are held ([`GuestSpan`]: checked when queued, so their copy
/// cannot fail); anything else is written at once through [`GuestMemory::write`], which
/// reports it.
pub(super) struct Copies<'m, 'f> {
    held: SmallVec<[(GuestSpan<'m>, &'f [u8]); COPIES]>,
    /// Copies run so far in this burst.
    ran: usize,
}

/// Copies held at most before they are run (a burst's worth of one-buffer frames; fewer
/// in the unit tests, so that their short bursts run it more than once).
const COPIES: usize = if cfg!(test) { 4 } else { 32 };

impl<'m, 'f> Copies<'m, 'f> {
    pub(super) fn new() -> Copies<'m, 'f> {
        Copies {
            held: SmallVec::new(),
            ran: 0,
        }
    }

    /// Copies `src` to guest address `gpa`, now or before the burst publishes; false when
    /// a byte of it is outside guest memory.
    #[inline]
    fn write(&mut self, mem: &'m GuestMemory, gpa: u64, src: &'f [u8]) -> bool {
        let Some(span) = mem.span(gpa, src.len()) else {
            return mem.write(gpa, src);
        };
        if self.held.len() == COPIES {
            self.run();
        }
        self.held.push((span, src));
        true
    }

    /// Where the next copy goes in the burst's sequence: a frame that fails drops the
    /// copies it added with [`Copies::forget`].
    pub(super) fn mark(&self) -> usize {
        self.ran + self.held.len()
    }

    /// Drops the copies still held from `mark` on: a frame that did not go out. Those of
    /// its copies already run wrote only into buffers the guest does not get back as used
    /// with that data (they stay available, or come back with length 0).
    pub(super) fn forget(&mut self, mark: usize) {
        self.held.truncate(mark.saturating_sub(self.ran));
    }

    /// Runs the held copies. The caller publishes used buffers only after this.
    pub(super) fn run(&mut self) {
        for (span, src) in &self.held {
            span.write(src);
        }
        self.ran += self.held.len();
        self.held.clear();
    }
}

/// Copies bytes `[at, at + n)` of header-then-frame into guest memory at `addr`: the header
/// at once, the frame's bytes through `copies`.
pub(super) fn write_span<'m, 'f>(
    mem: &'m GuestMemory,
    header: &[u8],
    frame: &'f [u8],
    at: usize,
    n: usize,
    addr: u64,
    copies: &mut Copies<'m, 'f>,
) -> bool {
    let mut at = at;
    let mut n = n;
    let mut addr = addr;
    if at < header.len() {
        let k = n.min(header.len() - at);
        if !mem.write_if_changed(addr, &header[at..at + k]) {
            return false;
        }
        at += k;
        n -= k;
        let Some(next) = addr.checked_add(k as u64) else {
            return n == 0;
        };
        addr = next;
    }
    if n == 0 {
        return true;
    }
    let start = at - header.len();
    copies.write(mem, addr, &frame[start..start + n])
}

/// The device's side of the receive ring during one burst: the available entries it may
/// take (up to `avail_end`) and the used entries it has made.
struct RxCursor<'v, 'a> {
    view: &'v RingView<'a>,
    avail_end: u16,
    used: Shadow,
}

impl RxCursor<'_, '_> {
    /// Gives back the `n` chains taken from available entry `first` on as used with length
    /// 0 (a head past the ring cannot be given back).
    fn give_back_empty(&mut self, first: u16, n: usize) {
        for k in 0..n {
            let head = self.view.avail_entry(first.wrapping_add(k as u16));
            if head <= self.view.mask() {
                self.used.push(self.view, head, 0);
            }
        }
    }
}

/// Writes one frame into the guest's receive buffers.
fn put_frame<'m, 'f>(
    ring: &mut RingState,
    cur: &mut RxCursor<'_, '_>,
    mem: &'m GuestMemory,
    hdr: NetHdr,
    frame: &'f [u8],
    copies: &mut Copies<'m, 'f>,
) -> Result<(), PutError> {
    if frame.len() > MAX_FRAME {
        return Err(PutError::TooLong);
    }
    let start = ring.next_avail;
    // The header goes out zeroed (no checksum or GSO offload negotiated) but for
    // `num_buffers`, the 12-byte header's last field: 1 (the usual case, and what VIRTIO 1.x
    // requires without mergeable buffers) in the same copy, patched afterwards only when the
    // frame took more buffers.
    let mut header = [0u8; NET_HDR_LEN];
    header[NET_HDR_LEN - 2] = 1;
    let header = &header[..hdr.len];
    let total = hdr.len + frame.len();
    // The usual case first: one writable descriptor (no chain) that holds header and frame
    // (guest_rx 64 B in `--bench vhost`: 797 → 687 ns per burst of 32). Anything else, a
    // failed write included, takes the general walk below, which also sorts out the errors.
    if ring.next_avail != cur.avail_end {
        let head = cur.view.avail_entry(ring.next_avail);
        if let Some(d) = cur.view.desc(head) {
            if d.flags == DESC_F_WRITE
                && d.len as usize >= total
                && write_span(mem, header, frame, 0, total, d.addr, copies)
            {
                ring.next_avail = ring.next_avail.wrapping_add(1);
                ring.next_head = head.wrapping_add(1);
                let view = cur.view;
                cur.used.push(view, head, total as u32);
                return Ok(());
            }
        }
    }
    // Each buffer's used entry is held as soon as it is filled; a frame that fails takes its
    // entries back (and gives the buffers back empty when they were malformed). The caller
    // leaves room for MAX_MERGE entries, so none is flushed to the ring before that.
    let held = cur.used.len;
    let mut n = 0usize;
    let mut written = 0usize;
    let mut first_addr = 0u64;
    while written < total {
        if n == MAX_MERGE || (n == 1 && !hdr.mergeable) {
            ring.next_avail = start;
            cur.used.len = held;
            return Err(PutError::TooLong);
        }
        if ring.next_avail == cur.avail_end {
            ring.next_avail = start;
            cur.used.len = held;
            return Err(PutError::NoBuffers);
        }
        let head = cur.view.avail_entry(ring.next_avail);
        ring.next_avail = ring.next_avail.wrapping_add(1);
        let mut chain_len = 0u32;
        let mut descriptors = 0u32;
        let mut more = false;
        let mut bad = false;
        for desc in Chain::new(cur.view, head) {
            if written == total {
                break;
            }
            descriptors += 1;
            more = desc.flags & DESC_F_NEXT != 0;
            let len = desc.len as usize;
            // The header must sit in the first descriptor so `num_buffers` can be patched.
            if desc.flags & DESC_F_WRITE == 0
                || desc.flags & DESC_F_INDIRECT != 0
                || (written == 0 && len < hdr.len)
            {
                bad = true;
                break;
            }
            if written == 0 {
                first_addr = desc.addr;
            }
            let k = len.min(total - written);
            if !write_span(mem, header, frame, written, k, desc.addr, copies) {
                bad = true;
                break;
            }
            written += k;
            chain_len += k as u32;
        }
        if descriptors == 0 || (more && written < total && !bad) || head > cur.view.mask() {
            bad = true;
        }
        n += 1;
        if bad {
            cur.used.len = held;
            cur.give_back_empty(start, n);
            return Err(PutError::Bad);
        }
        ring.next_head = head.wrapping_add(descriptors as u16);
        let view = cur.view;
        cur.used.push(view, head, chain_len);
    }
    if !set_num_buffers(mem, hdr, first_addr, n) {
        cur.used.len = held;
        cur.give_back_empty(start, n);
        return Err(PutError::Bad);
    }
    Ok(())
}

/// Patches `num_buffers`, the header's last field, of a frame written from `first_addr` on
/// when it took `n` buffers other than one (the header went out saying 1); false when the
/// guest address is bad.
pub(super) fn set_num_buffers(mem: &GuestMemory, hdr: NetHdr, first_addr: u64, n: usize) -> bool {
    if !hdr.mergeable || n == 1 {
        return true;
    }
    // n <= MAX_MERGE fits a u16.
    let at = first_addr.wrapping_add(hdr.len as u64 - 2);
    mem.write(at, &(n as u16).to_le_bytes())
}

/// Writes `frames` into the guest's receive virtqueue in order. Stops at the first frame the
/// guest has no room for (counted in `tx_dropped` with every frame after it) and returns the
/// frames taken: written, or dropped as too long or for a malformed chain.
pub fn guest_rx(vq: Vq<'_>, frames: &[&[u8]], c: &mut RingCounters) -> usize {
    let Vq {
        ring,
        mem,
        call,
        hdr,
    } = vq;
    let Some(view) = ring.view(mem) else {
        c.tx_dropped += frames.len() as u64;
        return 0;
    };
    guess_ahead(ring, &view);
    let Some(n) = pending(&view, ring.next_avail) else {
        c.bad_rings += 1;
        c.tx_dropped += frames.len() as u64;
        return 0;
    };
    let mut cur = RxCursor {
        view: &view,
        avail_end: ring.next_avail.wrapping_add(n),
        used: Shadow::new(ring.next_used),
    };
    let mut copies = Copies::new();
    let mut taken = 0;
    // Usually one buffer per frame: the pipeline and the used lines cover that many.
    let wanted = n.min(u16::try_from(frames.len()).unwrap_or(u16::MAX));
    let mut ahead = Ahead::start(
        &view,
        ring.next_avail,
        ring.next_avail.wrapping_add(wanted),
        hdr.len,
        true,
    );
    view.prefetch_used(ring.next_used, wanted, false);
    for frame in frames {
        if cur.used.len + MAX_MERGE > SHADOW {
            cur.used.flush(&view);
        }
        if taken % STEP == 0 {
            ahead.advance(&view, mem, ring.next_avail);
        }
        let mark = copies.mark();
        let put = put_frame(ring, &mut cur, mem, hdr, frame, &mut copies);
        if put.is_err() {
            copies.forget(mark);
        }
        if count_put(c, put, frame, frames.len() - taken) {
            break;
        }
        taken += 1;
    }
    copies.run();
    cur.used.publish(ring, &view, call, c);
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    const DESC: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;
    const DATA: u64 = 0x10000;
    const SIZE: u16 = 16;
    const F_NEXT: u16 = 1;
    const F_WRITE: u16 = 2;

    /// 1 MiB of guest memory and a 16-entry split ring in it, as a guest driver lays it out.
    struct Guest {
        mem: GuestMemory,
        queue: RingState,
        avail_idx: u16,
    }

    impl Guest {
        fn new() -> Guest {
            let mem = GuestMemory::new(
                GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap(),
            );
            let queue = RingState {
                size: SIZE,
                desc: DESC,
                avail: AVAIL,
                used: USED,
                ..RingState::default()
            };
            assert!(queue.view(&mem).is_some());
            Guest {
                mem,
                queue,
                avail_idx: 0,
            }
        }

        fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let mut b = [0u8; 16];
            b[0..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            b[12..14].copy_from_slice(&flags.to_le_bytes());
            b[14..16].copy_from_slice(&next.to_le_bytes());
            self.mem
                .mmap()
                .write_slice(&b, GuestAddress(DESC + 16 * u64::from(i)))
                .unwrap();
        }

        fn offer(&mut self, head: u16) {
            let slot = u64::from(self.avail_idx % SIZE);
            self.mem
                .mmap()
                .write_obj(head.to_le(), GuestAddress(AVAIL + 4 + 2 * slot))
                .unwrap();
            self.avail_idx = self.avail_idx.wrapping_add(1);
            self.mem
                .mmap()
                .write_obj(self.avail_idx.to_le(), GuestAddress(AVAIL + 2))
                .unwrap();
        }

        fn used_idx(&self) -> u16 {
            self.mem.mmap().read_obj(GuestAddress(USED + 2)).unwrap()
        }

        /// (id, len) of used entry `i`.
        fn used(&self, i: u16) -> (u32, u32) {
            let at = USED + 4 + 8 * u64::from(i % SIZE);
            (
                self.mem.mmap().read_obj(GuestAddress(at)).unwrap(),
                self.mem.mmap().read_obj(GuestAddress(at + 4)).unwrap(),
            )
        }

        fn rx(&mut self, frames: &[&[u8]], hdr: NetHdr, c: &mut RingCounters) -> usize {
            let vq = Vq {
                ring: &mut self.queue,
                mem: &self.mem,
                call: None,
                hdr,
            };
            guest_rx(vq, frames, c)
        }

        fn tx(&mut self, max: usize, c: &mut RingCounters) -> Vec<Vec<u8>> {
            let mut got = Vec::new();
            let mut scratch = vec![0u8; MAX_FRAME];
            guest_tx(
                Vq {
                    ring: &mut self.queue,
                    mem: &self.mem,
                    call: None,
                    hdr: HDR,
                },
                max,
                c,
                &mut ClosureSink {
                    buf: &mut scratch,
                    f: &mut |f| got.push(f.to_vec()),
                },
            );
            got
        }
    }

    const HDR: NetHdr = NetHdr {
        len: NET_HDR_LEN,
        mergeable: true,
    };

    fn frame(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    #[test]
    fn guest_tx_gathers_a_scattered_frame_without_its_header() {
        let mut g = Guest::new();
        let f = frame(100);
        let mut bytes = vec![0xaa; NET_HDR_LEN];
        bytes.extend_from_slice(&f);
        // Header and 20 bytes, then 50, then 42.
        g.mem
            .mmap()
            .write_slice(&bytes[..32], GuestAddress(DATA))
            .unwrap();
        g.mem
            .mmap()
            .write_slice(&bytes[32..82], GuestAddress(DATA + 0x1000))
            .unwrap();
        g.mem
            .mmap()
            .write_slice(&bytes[82..], GuestAddress(DATA + 0x2000))
            .unwrap();
        g.desc(3, DATA, 32, F_NEXT, 7);
        g.desc(7, DATA + 0x1000, 50, F_NEXT, 1);
        g.desc(1, DATA + 0x2000, 30, 0, 0);
        g.offer(3);
        let mut c = RingCounters::default();
        let got = g.tx(32, &mut c);
        assert_eq!(got, vec![f]);
        assert_eq!(g.used_idx(), 1);
        assert_eq!(g.used(0), (3, 0));
        assert_eq!((c.rx_frames, c.rx_bytes, c.bad_descriptors), (1, 100, 0));
    }

    #[test]
    fn in_order_guest_tx_gives_a_burst_back_as_one_used_entry_naming_its_last_chain() {
        let mut g = Guest::new();
        g.queue.in_order = true;
        let mut c = RingCounters::default();
        // Two bursts of three one-descriptor chains, at descriptors 0.. in ring order (as an
        // in-order driver lays them out), across the used ring's end: the used index starts
        // at 14 of 16.
        g.queue.set_base(14);
        g.avail_idx = 14;
        let mut d = 0u16;
        let mut first = 14u16;
        for burst in 0..2u16 {
            let mut sent = Vec::new();
            for _ in 0..3 {
                let f = frame(60 + usize::from(d));
                let mut bytes = vec![0u8; NET_HDR_LEN];
                bytes.extend_from_slice(&f);
                let addr = DATA + 0x100 * u64::from(d);
                g.mem
                    .mmap()
                    .write_slice(&bytes, GuestAddress(addr))
                    .unwrap();
                g.desc(d, addr, bytes.len() as u32, 0, 0);
                g.offer(d);
                sent.push(f);
                d += 1;
            }
            assert_eq!(g.tx(32, &mut c), sent, "burst {burst}");
            // The index moves past all three; the first slot names the last chain.
            assert_eq!(g.used_idx(), first + 3);
            assert_eq!(g.used(first), (u32::from(d - 1), 0));
            first += 3;
        }
        assert_eq!(g.used_idx(), 20);
        assert_eq!((c.rx_frames, c.bad_descriptors), (6, 0));
    }

    #[test]
    fn guest_tx_drops_loops_and_out_of_range_addresses_with_a_counter() {
        let mut g = Guest::new();
        // A loop: 2 -> 4 -> 2.
        g.desc(2, DATA, 64, F_NEXT, 4);
        g.desc(4, DATA + 64, 64, F_NEXT, 2);
        g.offer(2);
        // Past the end of guest memory.
        g.desc(5, (1 << 20) - 8, 64, 0, 0);
        g.offer(5);
        // A `next` past the ring.
        g.desc(6, DATA, 64, F_NEXT, 99);
        g.offer(6);
        // A head past the ring.
        g.offer(200);
        // A writable descriptor on the transmit queue.
        g.desc(8, DATA, 64, F_WRITE, 0);
        g.offer(8);
        // A chain shorter than the header.
        g.desc(9, DATA, 4, 0, 0);
        g.offer(9);
        // An address whose frame (past the header) would wrap around to guest address 4.
        g.desc(11, u64::MAX - 7, 72, 0, 0);
        g.offer(11);
        // Then a good frame still gets through.
        g.desc(10, DATA, 72, 0, 0);
        g.offer(10);
        let mut c = RingCounters::default();
        let got = g.tx(32, &mut c);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 60);
        assert_eq!(c.bad_descriptors, 6);
        assert_eq!(c.rx_runts, 1);
        // Every chain but the bogus head went back.
        assert_eq!(g.used_idx(), 7);
    }

    #[test]
    fn guest_tx_drops_a_chain_longer_than_the_largest_frame() {
        let mut g = Guest::new();
        g.desc(0, DATA, (NET_HDR_LEN + MAX_FRAME) as u32 + 1, 0, 0);
        g.offer(0);
        let mut c = RingCounters::default();
        assert!(g.tx(32, &mut c).is_empty());
        assert_eq!((c.rx_too_long, c.bad_descriptors), (1, 0));
        assert_eq!(g.used_idx(), 1);
    }

    #[test]
    fn guest_rx_merges_buffers_and_sets_num_buffers() {
        let mut g = Guest::new();
        for i in 0..4u16 {
            g.desc(i, DATA + 0x1000 * u64::from(i), 64, F_WRITE, 0);
            g.offer(i);
        }
        let f = frame(150);
        let mut c = RingCounters::default();
        let short = frame(20);
        let taken = g.rx(&[&f, &short], HDR, &mut c);
        assert_eq!(taken, 2);
        // 12 + 150 = 162 bytes: 64 + 64 + 34.
        assert_eq!(g.used_idx(), 4);
        assert_eq!(g.used(0), (0, 64));
        assert_eq!(g.used(1), (1, 64));
        assert_eq!(g.used(2), (2, 34));
        assert_eq!(g.used(3), (3, 32));
        let mut out = [0u8; 64 * 3];
        for i in 0..3u64 {
            let at = (i * 64) as usize;
            g.mem
                .mmap()
                .read_slice(&mut out[at..at + 64], GuestAddress(DATA + 0x1000 * i))
                .unwrap();
        }
        assert_eq!(&out[..10], &[0u8; 10]);
        assert_eq!(u16::from_le_bytes([out[10], out[11]]), 3);
        assert_eq!(&out[12..162], &f[..]);
        let mut second = [0u8; 32];
        g.mem
            .mmap()
            .read_slice(&mut second, GuestAddress(DATA + 0x3000))
            .unwrap();
        assert_eq!(u16::from_le_bytes([second[10], second[11]]), 1);
        assert_eq!(&second[12..], &short[..]);
        assert_eq!((c.tx_frames, c.tx_bytes, c.tx_dropped), (2, 170, 0));
    }

    #[test]
    fn guest_rx_without_room_puts_buffers_back_and_counts_drops() {
        let mut g = Guest::new();
        g.desc(0, DATA, 64, F_WRITE, 0);
        g.offer(0);
        let big = frame(100);
        let mut c = RingCounters::default();
        assert_eq!(g.rx(&[&big, &big], HDR, &mut c), 0);
        assert_eq!(c.tx_dropped, 2);
        assert_eq!(g.used_idx(), 0);
        assert_eq!(g.queue.next_avail, 0);
        // A frame that fits still uses the buffer that was put back.
        let small = frame(40);
        assert_eq!(g.rx(&[&small], HDR, &mut c), 1);
        assert_eq!(g.used(0), (0, 52));
    }

    #[test]
    fn guest_rx_copies_every_frame_of_a_burst_longer_than_its_copy_batch() {
        let mut g = Guest::new();
        // Ten one-buffer frames and a last one merged over three buffers: more spans than
        // Copies holds, so it runs mid-burst and again at the end.
        for i in 0..13u16 {
            g.desc(i, DATA + 0x1000 * u64::from(i), 64, F_WRITE, 0);
            g.offer(i);
        }
        let frames: Vec<Vec<u8>> = (0..10u8)
            .map(|k| (0..40).map(|i| i ^ k.wrapping_mul(37)).collect())
            .chain(std::iter::once(frame(150)))
            .collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        let mut c = RingCounters::default();
        assert_eq!(g.rx(&refs, HDR, &mut c), 11);
        assert_eq!(g.used_idx(), 13);
        for (k, f) in frames[..10].iter().enumerate() {
            assert_eq!(g.used(k as u16), (k as u32, 52));
            let got = g.mem.bytes(DATA + 0x1000 * k as u64, 52);
            assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1);
            assert_eq!(&got[12..], &f[..], "frame {k}");
        }
        let merged: Vec<u8> = (10..13u64)
            .flat_map(|i| g.mem.bytes(DATA + 0x1000 * i, 64))
            .collect();
        assert_eq!(u16::from_le_bytes([merged[10], merged[11]]), 3);
        assert_eq!(&merged[12..162], &frames[10][..]);
        assert_eq!((c.tx_frames, c.tx_dropped), (11, 0));
    }

    #[test]
    fn a_frame_dropped_as_too_long_leaves_none_of_its_bytes_in_the_buffer_reused() {
        let mut g = Guest::new();
        g.desc(0, DATA, 64, F_WRITE, 0);
        g.offer(0);
        g.mem
            .mmap()
            .write_slice(&[0xee; 64], GuestAddress(DATA))
            .unwrap();
        let legacy = NetHdr {
            len: LEGACY_NET_HDR_LEN,
            mergeable: false,
        };
        // The first frame fills the buffer, then is found too long for one chain (no
        // mergeable buffers); the second takes the same buffer.
        let long = vec![0xaa; 100];
        let short = frame(20);
        let mut c = RingCounters::default();
        assert_eq!(g.rx(&[&long, &short], legacy, &mut c), 2);
        assert_eq!((c.tx_too_long, c.tx_frames), (1, 1));
        assert_eq!(g.used(0), (0, 30));
        let got = g.mem.bytes(DATA, 64);
        assert_eq!(&got[..10], &[0u8; 10]);
        assert_eq!(&got[10..30], &short[..]);
        assert_eq!(&got[30..], &[0xee; 34], "bytes past the frame were written");
    }

    #[test]
    fn guest_rx_without_mergeable_needs_one_chain_per_frame() {
        let mut g = Guest::new();
        g.desc(0, DATA, 64, F_WRITE | F_NEXT, 1);
        g.desc(1, DATA + 64, 64, F_WRITE, 0);
        g.offer(0);
        g.desc(2, DATA + 0x1000, 64, F_WRITE, 0);
        g.offer(2);
        let legacy = NetHdr {
            len: LEGACY_NET_HDR_LEN,
            mergeable: false,
        };
        let mut c = RingCounters::default();
        let f = frame(100);
        // One chain of two descriptors holds 110 bytes.
        assert_eq!(g.rx(&[&f], legacy, &mut c), 1);
        assert_eq!(g.used(0), (0, 110));
        // 100 bytes do not fit the 64-byte chain and may not be merged.
        assert_eq!(g.rx(&[&f], legacy, &mut c), 1);
        assert_eq!(c.tx_too_long, 1);
        assert_eq!(g.queue.next_avail, 1);
    }

    #[test]
    fn guest_rx_drops_bad_chains_and_gives_them_back_empty() {
        let mut g = Guest::new();
        // Readable (not writable) on the receive queue.
        g.desc(0, DATA, 64, 0, 0);
        g.offer(0);
        // Outside guest memory.
        g.desc(1, 1 << 30, 64, F_WRITE, 0);
        g.offer(1);
        // Shorter than the header.
        g.desc(2, DATA, 8, F_WRITE, 0);
        g.offer(2);
        let f = frame(40);
        let mut c = RingCounters::default();
        let taken = g.rx(&[&f, &f, &f, &f], HDR, &mut c);
        // Three frames dropped on the three bad chains, the fourth finds no buffer.
        assert_eq!(taken, 3);
        assert_eq!(c.bad_descriptors, 3);
        assert_eq!(c.tx_dropped, 1);
        assert_eq!(g.used_idx(), 3);
        assert_eq!(g.used(1), (1, 0));
    }

    #[test]
    fn call_is_signalled_only_when_the_guest_asks() {
        let mut g = Guest::new();
        let call = tempfile::tempfile().unwrap();
        g.desc(0, DATA, 64, F_WRITE, 0);
        g.offer(0);
        g.desc(1, DATA, 64, F_WRITE, 0);
        g.offer(1);
        let f = frame(40);
        let mut c = RingCounters::default();
        // VRING_AVAIL_F_NO_INTERRUPT set: no signal.
        g.mem
            .mmap()
            .write_obj(1u16.to_le(), GuestAddress(AVAIL))
            .unwrap();
        guest_rx(
            Vq {
                ring: &mut g.queue,
                mem: &g.mem,
                call: Some(&call),
                hdr: HDR,
            },
            &[&f],
            &mut c,
        );
        assert_eq!(c.call_signals, 0);
        g.mem.mmap().write_obj(0u16, GuestAddress(AVAIL)).unwrap();
        guest_rx(
            Vq {
                ring: &mut g.queue,
                mem: &g.mem,
                call: Some(&call),
                hdr: HDR,
            },
            &[&f],
            &mut c,
        );
        assert_eq!(c.call_signals, 1);
        assert_eq!(call.metadata().unwrap().len(), 8);
    }
}
