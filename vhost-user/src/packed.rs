//! The packed-ring data path of a vhost-user port (VIRTIO 1.1 §2.7, `VIRTIO_F_RING_PACKED`):
//! one ring of descriptors that the driver marks available and the device marks used in
//! place, each side keeping a wrap counter that flips at the ring's end. [`guest_tx`] and
//! [`guest_rx`] do what their split-ring namesakes in [`crate::ring`] do, with the same
//! counters and the same checks: a chain is a run of consecutive descriptors (`NEXT` on all
//! but the last, which carries the buffer id), walked to its end even when it is malformed
//! (the next chain starts after it) and never past the ring's size. Chains are used in the
//! order they were made available, so each used descriptor goes where its chain began. A
//! burst's used descriptors are written together and the first one's flags last, with a
//! release store: the driver polls that one, and so never sees a burst (or a frame merged
//! across buffers) in part.

use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use crate::guest::{
    GuestMemory, PackedDesc, PackedView, DESC_F_AVAIL, DESC_F_NEXT, DESC_F_USED, DESC_F_WRITE,
    RING_EVENT_FLAGS_DISABLE,
};
use crate::ring::{
    count_put, prefetch_buffer, set_num_buffers, write_span, Copies, PutError, RingCounters,
    RingState, Vq, BUF_AHEAD, DESC_AHEAD, DESC_F_INDIRECT, MAX_FRAME, MAX_MERGE, NET_HDR_LEN, STEP,
};
use pipeline::RxSink;

/// Whether a descriptor with `flags` is available in the driver's round `wrap`: `AVAIL`
/// matches the wrap counter and `USED` does not.
pub(crate) fn is_avail(flags: u16, wrap: bool) -> bool {
    (flags & DESC_F_AVAIL != 0) == wrap && (flags & DESC_F_USED != 0) != wrap
}

/// The flags of a descriptor the driver made available in round `wrap`: `AVAIL` set to the
/// wrap counter and `USED` to its inverse, with `dir` (`DESC_F_WRITE` or 0) and nothing else.
fn avail_flags(wrap: bool, dir: u16) -> u16 {
    dir | if wrap { DESC_F_AVAIL } else { DESC_F_USED }
}

/// A place in the ring and the wrap counter that goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    idx: u16,
    wrap: bool,
}

impl Pos {
    /// One descriptor on, flipping the counter at the ring's end.
    fn next(self, size: u16) -> Pos {
        if self.idx + 1 >= size {
            Pos {
                idx: 0,
                wrap: !self.wrap,
            }
        } else {
            Pos {
                idx: self.idx + 1,
                wrap: self.wrap,
            }
        }
    }
}

/// Used descriptors held during a burst.
const HELD: usize = 2 * MAX_MERGE;

/// One used descriptor to write: where its chain began, its buffer id, the bytes the device
/// wrote.
#[derive(Clone, Copy, Debug)]
struct Used {
    at: u16,
    wrap: bool,
    id: u16,
    len: u32,
}

/// The used descriptors of a burst, written to the ring together. Inline and not
/// initialised up front: zeroing all `HELD` entries cost every burst 1.5 KiB of stores.
struct UsedBatch {
    entries: SmallVec<[Used; HELD]>,
}

impl UsedBatch {
    fn new() -> UsedBatch {
        UsedBatch {
            entries: SmallVec::new(),
        }
    }

    /// Entries held.
    #[inline]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entries held from `n` on (a frame that did not go out).
    fn truncate(&mut self, n: usize) {
        self.entries.truncate(n);
    }

    /// Holds one (the caller makes room with [`UsedBatch::publish`] first; past `HELD` it
    /// is not held, as the inline room ends there).
    fn push(&mut self, chain: Pos, id: u16, len: u32) {
        if self.entries.len() < HELD {
            self.entries.push(Used {
                at: chain.idx,
                wrap: chain.wrap,
                id,
                len,
            });
        }
    }

    /// Gives the buffers held from entry `from` on back empty (length 0).
    fn empty_from(&mut self, from: usize) {
        for u in self.entries.iter_mut().skip(from) {
            u.len = 0;
        }
    }

    /// Writes what is held: ids and lengths, then the flags, the first entry's last. Returns
    /// whether anything was written.
    fn publish(&mut self, view: &PackedView<'_>) -> bool {
        let held = &self.entries[..];
        for u in held {
            view.write_used(u.at, u.id, u.len);
        }
        let flags = |u: &Used| {
            let round = if u.wrap {
                DESC_F_AVAIL | DESC_F_USED
            } else {
                0
            };
            round | if u.len > 0 { DESC_F_WRITE } else { 0 }
        };
        for u in held.iter().skip(1) {
            view.set_flags(u.at, flags(u));
        }
        if let Some(first) = held.first() {
            view.set_flags(first.at, flags(first));
        }
        let any = !self.entries.is_empty();
        self.entries.clear();
        any
    }
}

/// Signals `call` unless the driver disabled used-buffer notifications (a poll-mode guest
/// such as DPDK's virtio-user does).
fn signal(view: &PackedView<'_>, call: Option<&File>, c: &mut RingCounters) {
    let Some(mut call) = call else { return };
    // The used flags must be visible before the driver's event flags are read.
    std::sync::atomic::fence(Ordering::SeqCst);
    if view.driver_event_flags() == RING_EVENT_FLAGS_DISABLE {
        return;
    }
    if call.write(&1u64.to_ne_bytes()).is_ok() {
        c.call_signals += 1;
    }
}

/// One chain as walked: its descriptors, its buffer id, and whether it was malformed.
struct Walked {
    next: Pos,
    descriptors: u16,
    id: u16,
    bad: bool,
}

/// Walks the chain that starts at `start` (available) to its end, handing each descriptor
/// to `each`, which returns false to mark the chain malformed. A chain that runs into a
/// descriptor that is not available, or is as long as the ring, is malformed; either way
/// the walk ends and the chain's descriptors are consumed.
fn walk(view: &PackedView<'_>, start: Pos, mut each: impl FnMut(u64, u32, u16) -> bool) -> Walked {
    let size = view.size();
    let mut at = start;
    let mut w = Walked {
        next: start,
        descriptors: 0,
        id: 0,
        bad: false,
    };
    loop {
        let Some(d) = view.desc(at.idx) else {
            w.bad = true;
            break;
        };
        if w.descriptors > 0 && !is_avail(d.flags, at.wrap) {
            w.bad = true;
            break;
        }
        w.descriptors += 1;
        at = at.next(size);
        w.id = d.id;
        if !w.bad && !each(d.addr, d.len, d.flags) {
            w.bad = true;
        }
        if d.flags & DESC_F_NEXT == 0 {
            break;
        }
        if w.descriptors >= size {
            w.bad = true;
            break;
        }
    }
    w.next = at;
    w
}

/// The split path's prefetch pipeline (`ring::Ahead`) over a packed ring, whose
/// descriptors are the ring itself: descriptor lines are loaded up to [`DESC_AHEAD`]
/// positions past the one being processed, and the buffers of those the driver made
/// available up to [`BUF_AHEAD`] past it.
struct Ahead {
    /// The position [`Ahead::advance`] last saw.
    last: Pos,
    /// The next positions whose descriptor, and whose buffer, are to be loaded, and how far
    /// past `last` they are.
    descs: (Pos, u16),
    bufs: (Pos, u16),
    /// Positions from `last` on the burst may still take (usually one per packet).
    left: u16,
    hdr_len: usize,
    /// Receive buffers (fetched owned) rather than transmitted frames.
    write: bool,
}

impl Ahead {
    /// The pipeline of a burst of at most `packets` from `at` on.
    fn new(at: Pos, packets: usize, hdr_len: usize, write: bool) -> Ahead {
        Ahead {
            last: at,
            descs: (at, 0),
            bufs: (at, 0),
            left: u16::try_from(packets).unwrap_or(u16::MAX),
            hdr_len,
            write,
        }
    }

    /// Keeps the loads ahead of position `at`, the one about to be processed; called every
    /// [`STEP`] packets.
    #[inline]
    fn advance(&mut self, view: &PackedView<'_>, mem: &GuestMemory, at: Pos) {
        let size = view.size();
        // `at` only moves forward, by less than a ring in a burst.
        let moved = if at.idx >= self.last.idx {
            at.idx - self.last.idx
        } else {
            at.idx + (size - self.last.idx)
        };
        self.last = at;
        self.left = self.left.saturating_sub(moved);
        let limit = size.saturating_sub(1).min(self.left);
        // A cursor `at` passed (a frame took several positions) restarts there.
        let (mut p, mut k) = match self.descs.1.checked_sub(moved) {
            Some(k) => (self.descs.0, k),
            None => (at, 0),
        };
        while k < (DESC_AHEAD + STEP as u16).min(limit) {
            view.prefetch_desc(p.idx);
            p = p.next(size);
            k += 1;
        }
        self.descs = (p, k);
        let (mut p, mut k) = match self.bufs.1.checked_sub(moved) {
            Some(k) => (self.bufs.0, k),
            None => (at, 0),
        };
        while k < (BUF_AHEAD + STEP as u16).min(limit) {
            let Some(d) = view.desc(p.idx).filter(|d| is_avail(d.flags, p.wrap)) else {
                break;
            };
            prefetch_buffer(mem, d.addr, self.hdr_len, self.write);
            p = p.next(size);
            k += 1;
        }
        self.bufs = (p, k);
    }
}

/// Receives up to `max` frames the guest transmits, each written without its header
/// straight into a buffer of `sink`, as [`crate::ring::guest_tx`] does for split rings. In
/// order ([`RingState::in_order`]) the burst's chains go back as one used descriptor where
/// the first began, with the last one's buffer id.
pub fn guest_tx(vq: Vq<'_>, max: usize, c: &mut RingCounters, sink: &mut dyn RxSink) -> usize {
    let Vq {
        ring,
        mem,
        call,
        hdr,
    } = vq;
    let Some(view) = ring.packed_view(mem) else {
        return 0;
    };
    let mut at = Pos {
        idx: ring.next_avail,
        wrap: ring.avail_wrap,
    };
    let mut used = UsedBatch::new();
    let mut handed = 0;
    let mut published = false;
    // In order: where the burst's first chain began, and the last chain's buffer id.
    let mut run: Option<(Pos, u16)> = None;
    let mut ahead = Ahead::new(at, max, hdr.len, false);
    let mut k = 0;
    let mut step_at = 0;
    'burst: while k < max {
        if k >= step_at {
            ahead.advance(&view, mem, at);
            step_at = k + STEP;
        }
        // Four one-descriptor chains in one line, taken together.
        if max - k >= BATCH {
            if let Some(four) = view.desc4(at.idx, avail_flags(at.wrap, 0)) {
                if !ring.in_order && used.len() + BATCH > HELD {
                    published |= used.publish(&view);
                }
                for d in &four {
                    let Some(dst) = sink.room() else {
                        break 'burst;
                    };
                    if let Some(len) = read_single(mem, hdr.len, d, dst, c) {
                        c.rx_frames += 1;
                        c.rx_bytes += len as u64;
                        sink.commit(len);
                        handed += 1;
                    }
                    if ring.in_order {
                        run = Some((run.map_or(at, |r| r.0), d.id));
                    } else {
                        used.push(at, d.id, 0);
                    }
                    at = at.next(view.size());
                    k += 1;
                }
                continue;
            }
        }
        k += 1;
        if !is_avail(view.flags(at.idx), at.wrap) {
            break;
        }
        let Some(dst) = sink.room() else {
            break;
        };
        let limit = hdr.len + dst.len().min(MAX_FRAME);
        let mut off = 0usize;
        let mut too_long = false;
        let w = walk(&view, at, |addr, len, flags| {
            if flags & (DESC_F_WRITE | DESC_F_INDIRECT) != 0 {
                return false;
            }
            let len = len as usize;
            let Some(end) = off.checked_add(len).filter(|&end| end <= limit) else {
                too_long = true;
                return true;
            };
            if too_long {
                return true;
            }
            let from = off.max(hdr.len);
            if end > from {
                let src = addr.checked_add((from - off) as u64);
                if !src.is_some_and(|src| mem.read(src, &mut dst[from - hdr.len..end - hdr.len])) {
                    return false;
                }
            }
            off = end;
            true
        });
        if ring.in_order {
            run = Some((run.map_or(at, |r| r.0), w.id));
        } else {
            if used.len() == HELD {
                published |= used.publish(&view);
            }
            used.push(at, w.id, 0);
        }
        at = w.next;
        if w.bad {
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
    if let Some((first, id)) = run {
        used.push(first, id, 0);
    }
    finish(ring, &view, &mut used, at, published, call, c);
    handed
}

/// Chains taken (or receive buffers filled) together when four in a row are one descriptor
/// each ([`PackedView::desc4`]): DPDK's vhost library does the same
/// (`virtio_dev_tx_batch_packed`, `virtio_dev_rx_batch_packed`).
const BATCH: usize = 4;

/// The frame a transmitted one-descriptor chain `d` holds, copied without its header into
/// `dst`: its length, or None when it is counted as dropped (too long, a runt, or outside
/// guest memory), just as [`walk`]ing it would count it.
#[inline]
fn read_single(
    mem: &GuestMemory,
    hdr_len: usize,
    d: &PackedDesc,
    dst: &mut [u8],
    c: &mut RingCounters,
) -> Option<usize> {
    let len = d.len as usize;
    if len > hdr_len + dst.len().min(MAX_FRAME) {
        c.rx_too_long += 1;
        return None;
    }
    let Some(n) = len.checked_sub(hdr_len) else {
        c.rx_runts += 1;
        return None;
    };
    if n > 0 {
        let src = d.addr.checked_add(hdr_len as u64);
        if !src.is_some_and(|src| mem.read(src, &mut dst[..n])) {
            c.bad_descriptors += 1;
            return None;
        }
    }
    Some(n)
}

/// Writes `four` frames with their headers into the next four receive buffers when they
/// are one writable descriptor each, in one line ([`PackedView::desc4`]), and each holds its
/// frame; `at` moves past them and their used descriptors are held in `used`. A buffer
/// outside guest memory is used with length 0 and its frame counted in `bad_descriptors`.
/// False, with nothing done, when the four are not like that: the caller takes them one at
/// a time.
#[allow(clippy::too_many_arguments)]
fn put_four<'m, 'f>(
    view: &PackedView<'_>,
    mem: &'m GuestMemory,
    hdr: crate::ring::NetHdr,
    at: &mut Pos,
    used: &mut UsedBatch,
    four: &[&'f [u8]],
    copies: &mut Copies<'m, 'f>,
    c: &mut RingCounters,
) -> bool {
    if four.len() != BATCH {
        return false;
    }
    let Some(descs) = view.desc4(at.idx, avail_flags(at.wrap, DESC_F_WRITE)) else {
        return false;
    };
    let fits =
        |(d, f): (&PackedDesc, &&[u8])| f.len() <= MAX_FRAME && hdr.len + f.len() <= d.len as usize;
    if !descs.iter().zip(four).all(fits) {
        return false;
    }
    // As `put_frame`'s header: no offloads, num_buffers 1.
    let mut header = [0u8; NET_HDR_LEN];
    header[NET_HDR_LEN - 2] = 1;
    let header = &header[..hdr.len];
    for (d, &frame) in descs.iter().zip(four) {
        let total = hdr.len + frame.len();
        let mark = copies.mark();
        if write_span(mem, header, frame, 0, total, d.addr, copies) {
            used.push(*at, d.id, total as u32);
            c.tx_frames += 1;
            c.tx_bytes += frame.len() as u64;
        } else {
            copies.forget(mark);
            used.push(*at, d.id, 0);
            c.bad_descriptors += 1;
        }
        *at = at.next(view.size());
    }
    true
}

/// Writes one frame with its header into the buffers from `at` on, holding their used
/// descriptors in `used`; on success `at` moves past them. Errors as for split rings: no
/// buffers or too long leave the frame's buffers available, a malformed chain uses them with
/// length 0.
fn put_frame<'m, 'f>(
    view: &PackedView<'_>,
    mem: &'m GuestMemory,
    hdr: crate::ring::NetHdr,
    at: &mut Pos,
    used: &mut UsedBatch,
    frame: &'f [u8],
    copies: &mut Copies<'m, 'f>,
) -> Result<(), PutError> {
    if frame.len() > MAX_FRAME {
        return Err(PutError::TooLong);
    }
    // Zeroed (no offloads) but for num_buffers = 1, patched when the frame takes more.
    let mut header = [0u8; NET_HDR_LEN];
    header[NET_HDR_LEN - 2] = 1;
    let header = &header[..hdr.len];
    let total = hdr.len + frame.len();
    // The usual case first: one writable descriptor (no chain) that holds header and frame,
    // as in the split path's `put_frame`. Anything else, a failed write included, takes the
    // general walk below, which also sorts out the errors.
    if let Some(d) = view.desc(at.idx) {
        if d.flags == avail_flags(at.wrap, DESC_F_WRITE)
            && d.len as usize >= total
            && write_span(mem, header, frame, 0, total, d.addr, copies)
        {
            used.push(*at, d.id, total as u32);
            *at = at.next(view.size());
            return Ok(());
        }
    }
    let (start, held) = (*at, used.len());
    let mut buffers = 0usize;
    let mut written = 0usize;
    let mut first_addr = 0u64;
    while written < total {
        if buffers == MAX_MERGE || (buffers == 1 && !hdr.mergeable) {
            *at = start;
            used.truncate(held);
            return Err(PutError::TooLong);
        }
        if !is_avail(view.flags(at.idx), at.wrap) {
            *at = start;
            used.truncate(held);
            return Err(PutError::NoBuffers);
        }
        let mut chain_len = 0u32;
        let w = walk(view, *at, |addr, len, flags| {
            let len = len as usize;
            if flags & DESC_F_WRITE == 0
                || flags & DESC_F_INDIRECT != 0
                || (written == 0 && len < hdr.len)
            {
                return false;
            }
            if written == total {
                return true;
            }
            if written == 0 {
                first_addr = addr;
            }
            let k = len.min(total - written);
            if !write_span(mem, header, frame, written, k, addr, copies) {
                return false;
            }
            written += k;
            chain_len += k as u32;
            true
        });
        used.push(*at, w.id, chain_len);
        *at = w.next;
        buffers += 1;
        if w.bad {
            used.empty_from(held);
            return Err(PutError::Bad);
        }
    }
    if !set_num_buffers(mem, hdr, first_addr, buffers) {
        used.empty_from(held);
        return Err(PutError::Bad);
    }
    Ok(())
}

/// Writes `frames` into the guest's receive ring in order, as [`crate::ring::guest_rx`]
/// does for split rings.
pub fn guest_rx(vq: Vq<'_>, frames: &[&[u8]], c: &mut RingCounters) -> usize {
    let Vq {
        ring,
        mem,
        call,
        hdr,
    } = vq;
    let Some(view) = ring.packed_view(mem) else {
        c.tx_dropped += frames.len() as u64;
        return 0;
    };
    let mut at = Pos {
        idx: ring.next_avail,
        wrap: ring.avail_wrap,
    };
    let mut used = UsedBatch::new();
    let mut published = false;
    let mut copies = Copies::new();
    let mut taken = 0;
    let mut ahead = Ahead::new(at, frames.len(), hdr.len, true);
    let mut step_at = 0;
    while let Some(&frame) = frames.get(taken) {
        if used.len() + MAX_MERGE > HELD {
            // The guest owns what is published: its frames' bytes go first.
            copies.run();
            published |= used.publish(&view);
        }
        if taken >= step_at {
            ahead.advance(&view, mem, at);
            step_at = taken + STEP;
        }
        let four = &frames[taken..frames.len().min(taken + BATCH)];
        if put_four(&view, mem, hdr, &mut at, &mut used, four, &mut copies, c) {
            taken += BATCH;
            continue;
        }
        let mark = copies.mark();
        let put = put_frame(&view, mem, hdr, &mut at, &mut used, frame, &mut copies);
        if put.is_err() {
            copies.forget(mark);
        }
        if count_put(c, put, frame, frames.len() - taken) {
            break;
        }
        taken += 1;
    }
    copies.run();
    finish(ring, &view, &mut used, at, published, call, c);
    taken
}

/// Ends a burst: writes the used descriptors still held, moves the device's position to
/// `at` and signals the guest if anything was used and it asked.
fn finish(
    ring: &mut RingState,
    view: &PackedView<'_>,
    used: &mut UsedBatch,
    at: Pos,
    published: bool,
    call: Option<&File>,
    c: &mut RingCounters,
) {
    let published = used.publish(view) | published;
    // Every chain taken is used in the same burst: the used position is the available one.
    ring.next_avail = at.idx;
    ring.avail_wrap = at.wrap;
    ring.next_used = at.idx;
    ring.used_wrap = at.wrap;
    if published {
        signal(view, call, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{ClosureSink, NetHdr, RingState};
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    const DESC: u64 = 0x1000;
    const DRIVER: u64 = 0x2000;
    const DEVICE: u64 = 0x3000;
    const DATA: u64 = 0x10000;
    /// Not a power of two: packed rings need not be.
    const SIZE: u16 = 6;
    const HDR: NetHdr = NetHdr {
        len: NET_HDR_LEN,
        mergeable: true,
    };

    /// A packed ring of 6 entries in 1 MiB of guest memory, and the driver's side of it.
    struct Guest {
        mem: GuestMemory,
        queue: RingState,
        /// The driver's next descriptor and wrap counter.
        next: u16,
        wrap: bool,
        /// Where the driver reads the next used descriptor.
        used: u16,
        used_wrap: bool,
    }

    impl Guest {
        fn new() -> Guest {
            Guest::with_size(SIZE)
        }

        fn with_size(size: u16) -> Guest {
            let mem = GuestMemory::new(
                GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap(),
            );
            let mut queue = RingState {
                size,
                desc: DESC,
                avail: DRIVER,
                used: DEVICE,
                packed: true,
                ..RingState::default()
            };
            queue.set_base(0x8000); // index 0, wrap counter 1: how rings start
            crate::kick::set_kicks(&queue, &mem, false);
            Guest {
                mem,
                queue,
                next: 0,
                wrap: true,
                used: 0,
                used_wrap: true,
            }
        }

        fn write_desc(&self, i: u16, addr: u64, len: u32, id: u16, flags: u16) {
            let mut b = [0u8; 16];
            b[0..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            b[12..14].copy_from_slice(&id.to_le_bytes());
            b[14..16].copy_from_slice(&flags.to_le_bytes());
            self.mem
                .mmap()
                .write_slice(&b, GuestAddress(DESC + 16 * u64::from(i)))
                .unwrap();
        }

        /// Makes a buffer of `parts` (address, length) available as one chain with id `id`,
        /// the first descriptor's flags written last, as a driver does.
        fn offer(&mut self, id: u16, parts: &[(u64, u32)], write: bool) {
            let flags_at = |wrap: bool, last: bool| {
                let round = if wrap { DESC_F_AVAIL } else { DESC_F_USED };
                let dir = if write { DESC_F_WRITE } else { 0 };
                round | dir | if last { 0 } else { DESC_F_NEXT }
            };
            let (first, first_wrap) = (self.next, self.wrap);
            for (k, &(addr, len)) in parts.iter().enumerate() {
                let flags = flags_at(self.wrap, k + 1 == parts.len());
                // The first descriptor stays unavailable (flags 0) until the rest is written.
                self.write_desc(self.next, addr, len, id, if k == 0 { 0 } else { flags });
                self.next += 1;
                if self.next == self.queue.size {
                    self.next = 0;
                    self.wrap = !self.wrap;
                }
            }
            let flags = flags_at(first_wrap, parts.len() == 1);
            self.mem
                .mmap()
                .write_obj(
                    flags.to_le(),
                    GuestAddress(DESC + 16 * u64::from(first) + 14),
                )
                .unwrap();
        }

        /// The next used descriptor (id, len, flags) if the device has written it, moving on
        /// by `descriptors` (the chain's length, which the driver remembers per id).
        fn take_used(&mut self, descriptors: u16) -> Option<(u16, u32, u16)> {
            let at = DESC + 16 * u64::from(self.used);
            let flags: u16 = self.mem.mmap().read_obj(GuestAddress(at + 14)).unwrap();
            let avail = flags & DESC_F_AVAIL != 0;
            let used = flags & DESC_F_USED != 0;
            if avail != self.used_wrap || used != self.used_wrap {
                return None;
            }
            let len: u32 = self.mem.mmap().read_obj(GuestAddress(at + 8)).unwrap();
            let id: u16 = self.mem.mmap().read_obj(GuestAddress(at + 12)).unwrap();
            for _ in 0..descriptors {
                self.used += 1;
                if self.used == self.queue.size {
                    self.used = 0;
                    self.used_wrap = !self.used_wrap;
                }
            }
            Some((id, len, flags))
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

        fn rx(&mut self, frames: &[&[u8]], c: &mut RingCounters) -> usize {
            guest_rx(
                Vq {
                    ring: &mut self.queue,
                    mem: &self.mem,
                    call: None,
                    hdr: HDR,
                },
                frames,
                c,
            )
        }
    }

    fn frame(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(3) ^ seed).collect()
    }

    #[test]
    fn guest_tx_takes_chains_across_the_ring_end_and_uses_them_in_place() {
        let mut g = Guest::new();
        let mut c = RingCounters::default();
        // Eight frames through a ring of six, as 1- and 2-descriptor chains, so the chains
        // and the wrap counters cross the ring's end more than once.
        let mut sent = Vec::new();
        for round in 0..4u8 {
            let (a, b) = (frame(60, round), frame(100, round + 10));
            let base = DATA + 0x1000 * u64::from(round);
            let mut bytes = vec![0xee; NET_HDR_LEN];
            bytes.extend_from_slice(&a);
            g.mem
                .mmap()
                .write_slice(&bytes, GuestAddress(base))
                .unwrap();
            g.offer(2 * u16::from(round), &[(base, bytes.len() as u32)], false);
            // The header alone, then the frame: two descriptors.
            g.mem
                .mmap()
                .write_slice(&[0xee; NET_HDR_LEN], GuestAddress(base + 0x400))
                .unwrap();
            g.mem
                .mmap()
                .write_slice(&b, GuestAddress(base + 0x800))
                .unwrap();
            g.offer(
                2 * u16::from(round) + 1,
                &[(base + 0x400, NET_HDR_LEN as u32), (base + 0x800, 100)],
                false,
            );
            let got = g.tx(32, &mut c);
            assert_eq!(got, vec![a.clone(), b.clone()], "round {round}");
            sent.push((a, b));
            assert_eq!(
                g.take_used(1).map(|u| (u.0, u.1)),
                Some((2 * u16::from(round), 0))
            );
            assert_eq!(
                g.take_used(2).map(|u| (u.0, u.1)),
                Some((2 * u16::from(round) + 1, 0))
            );
            assert_eq!(g.take_used(1), None, "nothing more used");
        }
        assert_eq!(c.rx_frames, 8);
        assert_eq!(c.bad_descriptors, 0);
        // Nothing offered: nothing taken.
        assert!(g.tx(32, &mut c).is_empty());
        // GET_VRING_BASE reports the index with the wrap counter in bit 15.
        assert_eq!(g.queue.base() & 0x7fff, u32::from(g.next));
        assert_eq!(g.queue.base() & 0x8000 != 0, g.wrap);
    }

    #[test]
    fn in_order_guest_tx_gives_a_burst_back_as_one_used_descriptor_where_it_began() {
        let mut g = Guest::new();
        g.queue.in_order = true;
        let mut c = RingCounters::default();
        // Bursts of a one- and a two-descriptor chain through a ring of six, so the bursts
        // and the wrap counters cross the ring's end.
        for round in 0..4u16 {
            let (a, b) = (frame(60, round as u8), frame(90, round as u8 + 1));
            let base = DATA + 0x1000 * u64::from(round);
            let mut bytes = vec![0u8; NET_HDR_LEN];
            bytes.extend_from_slice(&a);
            g.mem
                .mmap()
                .write_slice(&bytes, GuestAddress(base))
                .unwrap();
            g.offer(2 * round, &[(base, bytes.len() as u32)], false);
            g.mem
                .mmap()
                .write_slice(&b, GuestAddress(base + 0x800))
                .unwrap();
            g.offer(
                2 * round + 1,
                &[(base + 0x400, NET_HDR_LEN as u32), (base + 0x800, 90)],
                false,
            );
            assert_eq!(g.tx(32, &mut c), vec![a, b], "round {round}");
            // One used descriptor for the three: the last chain's id where the first began.
            assert_eq!(g.take_used(3).map(|u| (u.0, u.1)), Some((2 * round + 1, 0)));
            assert_eq!(g.take_used(1), None, "nothing more used");
        }
        assert_eq!((c.rx_frames, c.bad_descriptors), (8, 0));
        assert_eq!(g.queue.base() & 0x7fff, u32::from(g.next));
    }

    #[test]
    fn guest_tx_drops_bad_chains_with_a_counter_and_goes_on() {
        let mut g = Guest::new();
        let mut c = RingCounters::default();
        // A device-writable descriptor in a transmit chain, an address outside memory, then
        // a good frame: the bad ones are used and counted, the good one arrives.
        g.offer(1, &[(DATA, 80)], true);
        g.offer(2, &[(u64::MAX - 8, 80)], false);
        let f = frame(64, 7);
        let mut bytes = vec![0u8; NET_HDR_LEN];
        bytes.extend_from_slice(&f);
        g.mem
            .mmap()
            .write_slice(&bytes, GuestAddress(DATA))
            .unwrap();
        g.offer(3, &[(DATA, bytes.len() as u32)], false);
        assert_eq!(g.tx(32, &mut c), vec![f]);
        assert_eq!(c.bad_descriptors, 2);
        for id in 1..=3 {
            assert_eq!(g.take_used(1).map(|u| u.0), Some(id));
        }
    }

    #[test]
    fn guest_rx_fills_one_buffer_chains_across_the_ring_end_and_never_a_used_one() {
        let mut g = Guest::new();
        let mut c = RingCounters::default();
        // Three rounds of four buffers through a ring of six: the device's position and both
        // wrap counters cross the ring's end.
        for round in 0..3u8 {
            let ids: Vec<u16> = (0..4).map(|k| 4 * u16::from(round) + k).collect();
            for (k, &id) in ids.iter().enumerate() {
                g.offer(id, &[(DATA + 0x100 * k as u64, 128)], true);
            }
            let frames: Vec<Vec<u8>> = (0..4).map(|k| frame(60 + k, round)).collect();
            let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            assert_eq!(g.rx(&refs, &mut c), 4, "round {round}");
            for (k, f) in frames.iter().enumerate() {
                let (id, len, _) = g.take_used(1).unwrap();
                assert_eq!((id, len as usize), (ids[k], NET_HDR_LEN + f.len()));
                let at = DATA + 0x100 * k as u64;
                assert_eq!(&g.mem.bytes(at + NET_HDR_LEN as u64, f.len()), f);
            }
            assert_eq!(g.take_used(1), None);
            // The ring now holds only used descriptors: none of them is taken again.
            assert_eq!(g.rx(&refs[..1], &mut c), 0);
            assert_eq!(g.take_used(1), None);
        }
        assert_eq!((c.tx_frames, c.tx_dropped, c.bad_descriptors), (12, 3, 0));
    }

    #[test]
    fn guest_rx_writes_header_and_frame_merging_buffers_when_needed() {
        let mut g = Guest::new();
        let mut c = RingCounters::default();
        // Four receive buffers of 128 bytes.
        for id in 0..4u16 {
            g.offer(id, &[(DATA + 0x100 * u64::from(id), 128)], true);
        }
        let small = frame(60, 1);
        let big = frame(200, 2); // 212 bytes with its header: two buffers
        assert_eq!(g.rx(&[&small, &big], &mut c), 2);
        let (id, len, flags) = g.take_used(1).unwrap();
        assert_eq!((id, len), (0, 72));
        assert_ne!(flags & DESC_F_WRITE, 0);
        let hdr = g.mem.bytes(DATA, NET_HDR_LEN);
        assert_eq!(&hdr[NET_HDR_LEN - 2..], &[1, 0], "num_buffers 1");
        assert_eq!(g.mem.bytes(DATA + NET_HDR_LEN as u64, 60), small);
        assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((1, 128)));
        assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((2, 84)));
        assert_eq!(
            &g.mem.bytes(DATA + 0x100 + NET_HDR_LEN as u64 - 2, 2),
            &[2, 0],
            "num_buffers 2"
        );
        let mut back = g
            .mem
            .bytes(DATA + 0x100 + NET_HDR_LEN as u64, 128 - NET_HDR_LEN);
        back.extend(g.mem.bytes(DATA + 0x200, 84));
        assert_eq!(back, big);
        assert_eq!(c.tx_frames, 2);
        // One buffer left: a frame that needs two waits (nothing of it is used), and counts
        // as a drop with every frame after it.
        assert_eq!(g.rx(&[&big, &small], &mut c), 0);
        assert_eq!(c.tx_dropped, 2);
        assert_eq!(g.take_used(1), None);
        // The buffer left still takes a small frame.
        assert_eq!(g.rx(&[&small], &mut c), 1);
        assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((3, 72)));
    }

    use crate::guest::test_log::{self, Access};

    /// Writes a transmitted frame (a zeroed header, then `f`) at `at` and offers it as one
    /// descriptor.
    fn offer_tx(g: &mut Guest, id: u16, at: u64, f: &[u8]) {
        let mut bytes = vec![0u8; NET_HDR_LEN];
        bytes.extend_from_slice(f);
        g.mem.mmap().write_slice(&bytes, GuestAddress(at)).unwrap();
        g.offer(id, &[(at, bytes.len() as u32)], false);
    }

    /// The four-descriptor reads of the accesses since the last call.
    fn reads4() -> Vec<u16> {
        test_log::take()
            .into_iter()
            .filter_map(|a| match a {
                Access::Read4(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn guest_tx_takes_one_descriptor_chains_four_at_a_time() {
        let mut g = Guest::with_size(16);
        let mut c = RingCounters::default();
        test_log::take();
        let frames: Vec<Vec<u8>> = (0..9).map(|k| frame(60 + k, k as u8)).collect();
        for (k, f) in frames.iter().enumerate() {
            offer_tx(&mut g, 100 + k as u16, DATA + 0x100 * k as u64, f);
        }
        assert_eq!(g.tx(32, &mut c), frames);
        // Two lines of four, then the ninth alone.
        assert_eq!(reads4(), vec![0, 4]);
        for k in 0..9 {
            assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((100 + k, 0)));
        }
        assert_eq!(g.take_used(1), None);
        assert_eq!((c.rx_frames, c.bad_descriptors), (9, 0));
        // A burst of fewer than four asked for takes none together.
        for (k, f) in frames[..4].iter().enumerate() {
            offer_tx(&mut g, k as u16, DATA + 0x100 * k as u64, f);
        }
        assert_eq!(g.tx(3, &mut c), frames[..3].to_vec());
        assert_eq!(reads4(), Vec::<u16>::new());
        assert_eq!(g.tx(32, &mut c), frames[3..4].to_vec());
    }

    #[test]
    fn in_order_guest_tx_gives_a_batched_burst_back_as_one_used_descriptor() {
        let mut g = Guest::with_size(16);
        g.queue.in_order = true;
        let mut c = RingCounters::default();
        test_log::take();
        let frames: Vec<Vec<u8>> = (0..8).map(|k| frame(64, k as u8)).collect();
        for (k, f) in frames.iter().enumerate() {
            offer_tx(&mut g, k as u16, DATA + 0x100 * k as u64, f);
        }
        assert_eq!(g.tx(32, &mut c), frames);
        assert_eq!(reads4(), vec![0, 4]);
        assert_eq!(g.take_used(8).map(|u| (u.0, u.1)), Some((7, 0)));
        assert_eq!(g.take_used(1), None);
    }

    #[test]
    fn four_at_a_time_falls_back_at_the_ring_end_and_for_chains() {
        let mut g = Guest::new(); // six entries: only 0..4 is a line of four
        let mut c = RingCounters::default();
        test_log::take();
        let frames: Vec<Vec<u8>> = (0..8).map(|k| frame(70, k as u8)).collect();
        for (k, f) in frames[..4].iter().enumerate() {
            offer_tx(&mut g, k as u16, DATA + 0x100 * k as u64, f);
        }
        assert_eq!(g.tx(32, &mut c), frames[..4].to_vec());
        assert_eq!(reads4(), vec![0]);
        for k in 0..4 {
            assert_eq!(g.take_used(1).map(|u| u.0), Some(k));
        }
        // Entries 4, 5, then 0, 1 in the next round: four across the ring's end, and at
        // entry 0 only two of the line are available.
        for (k, f) in frames[4..].iter().enumerate() {
            offer_tx(&mut g, 4 + k as u16, DATA + 0x100 * (4 + k) as u64, f);
        }
        assert_eq!(g.tx(32, &mut c), frames[4..].to_vec());
        assert_eq!(reads4(), Vec::<u16>::new());
        for k in 4..8 {
            assert_eq!(g.take_used(1).map(|u| u.0), Some(k));
        }

        // Mixed chains on a ring of 16: a two-descriptor chain at 0-1 and singles at 2, 3
        // (one at a time); singles at 4..8 (together); at 8 a line with a chain inside.
        let mut g = Guest::with_size(16);
        let mut c = RingCounters::default();
        test_log::take();
        let mut want = Vec::new();
        let mut offer = |g: &mut Guest, id: u16, chain: bool| {
            let f = frame(60 + usize::from(id), id as u8);
            let at = DATA + 0x400 * u64::from(id);
            if chain {
                g.mem
                    .mmap()
                    .write_slice(&f, GuestAddress(at + 0x200))
                    .unwrap();
                g.offer(
                    id,
                    &[(at, NET_HDR_LEN as u32), (at + 0x200, f.len() as u32)],
                    false,
                );
            } else {
                offer_tx(g, id, at, &f);
            }
            want.push(f);
        };
        for (id, chain) in [(0, true), (1, false), (2, false)] {
            offer(&mut g, id, chain);
        }
        for id in 3..7 {
            offer(&mut g, id, false);
        }
        for (id, chain) in [(7, false), (8, true), (9, false)] {
            offer(&mut g, id, chain);
        }
        assert_eq!(g.tx(32, &mut c), want);
        assert_eq!(reads4(), vec![4]);
        for (id, n) in [
            (0, 2),
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
            (5, 1),
            (6, 1),
            (7, 1),
            (8, 2),
            (9, 1),
        ] {
            assert_eq!(g.take_used(n).map(|u| u.0), Some(id));
        }
        assert_eq!(g.take_used(1), None);
        assert_eq!((c.rx_frames, c.bad_descriptors), (10, 0));
    }

    #[test]
    fn a_bad_descriptor_inside_four_is_counted_and_the_rest_go_on() {
        let mut g = Guest::with_size(16);
        let mut c = RingCounters::default();
        test_log::take();
        // Transmit: the second of four points outside guest memory, the fourth is a runt.
        let frames: Vec<Vec<u8>> = (0..3).map(|k| frame(60, k as u8)).collect();
        offer_tx(&mut g, 0, DATA, &frames[0]);
        g.offer(1, &[(u64::MAX - 8, 80)], false);
        offer_tx(&mut g, 2, DATA + 0x100, &frames[1]);
        g.offer(3, &[(DATA + 0x200, 4)], false);
        offer_tx(&mut g, 4, DATA + 0x300, &frames[2]);
        assert_eq!(g.tx(32, &mut c), frames);
        assert_eq!(reads4(), vec![0]);
        assert_eq!((c.rx_frames, c.bad_descriptors, c.rx_runts), (3, 1, 1));
        for id in 0..5 {
            assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((id, 0)));
        }
        // Receive: the third buffer of four lies outside guest memory; it is used empty and
        // its frame counted, the others are written.
        let mut g = Guest::with_size(16);
        let mut c = RingCounters::default();
        for id in 0..4u16 {
            let at = if id == 2 {
                1 << 30
            } else {
                DATA + 0x1000 + 0x100 * u64::from(id)
            };
            g.offer(10 + id, &[(at, 128)], true);
        }
        let frames: Vec<Vec<u8>> = (0..4).map(|k| frame(60, 9 + k as u8)).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_eq!(g.rx(&refs, &mut c), 4);
        assert_eq!(reads4(), vec![0]);
        assert_eq!((c.tx_frames, c.bad_descriptors), (3, 1));
        for id in 0..4u16 {
            let want = if id == 2 {
                0
            } else {
                (NET_HDR_LEN + 60) as u32
            };
            assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((10 + id, want)));
            if id != 2 {
                let at = DATA + 0x1000 + 0x100 * u64::from(id) + NET_HDR_LEN as u64;
                assert_eq!(g.mem.bytes(at, 60), frames[usize::from(id)]);
            }
        }
    }

    #[test]
    fn guest_rx_fills_four_buffers_at_a_time_and_merges_only_where_a_frame_needs_it() {
        let mut g = Guest::with_size(16);
        let mut c = RingCounters::default();
        for id in 0..12u16 {
            g.offer(id, &[(DATA + 0x100 * u64::from(id), 128)], true);
        }
        test_log::take();
        // Four small frames (together), then a frame of two buffers at 4-5 (one at a time),
        // then 6, 7 one at a time until the next line, then 8..12 together.
        let lens = [60, 61, 62, 63, 200, 64, 65, 66, 67, 68, 69];
        let frames: Vec<Vec<u8>> = lens.iter().map(|&n| frame(n, n as u8)).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_eq!(g.rx(&refs, &mut c), frames.len());
        let log = test_log::take();
        let reads: Vec<u16> = log
            .iter()
            .filter_map(|a| match a {
                Access::Read4(i) => Some(*i),
                _ => None,
            })
            .collect();
        // The line at 4 is read, but its first frame does not fit one buffer.
        assert_eq!(reads, vec![0, 4, 8]);
        // Every id and length written before any flags; the first used descriptor's flags
        // last (the driver polls that one).
        let first_flags = log
            .iter()
            .position(|a| matches!(a, Access::Flags(_)))
            .unwrap();
        assert!(log[first_flags..]
            .iter()
            .all(|a| matches!(a, Access::Flags(_))));
        assert_eq!(log.last(), Some(&Access::Flags(0)));
        assert_eq!(
            log.iter().filter(|a| matches!(a, Access::Flags(_))).count(),
            12
        );
        for (k, f) in frames.iter().enumerate() {
            let id = if k < 5 { k as u16 } else { k as u16 + 1 };
            let (got, len, flags) = g.take_used(1).unwrap();
            assert_ne!(flags & DESC_F_WRITE, 0);
            let at = DATA + 0x100 * u64::from(id);
            if f.len() == 200 {
                assert_eq!((got, len), (id, 128));
                assert_eq!(g.take_used(1).map(|u| (u.0, u.1)), Some((id + 1, 84)));
                assert_eq!(&g.mem.bytes(at + NET_HDR_LEN as u64 - 2, 2), &[2, 0]);
                continue;
            }
            assert_eq!((got, len as usize), (id, NET_HDR_LEN + f.len()));
            assert_eq!(&g.mem.bytes(at + NET_HDR_LEN as u64 - 2, 2), &[1, 0]);
            assert_eq!(&g.mem.bytes(at + NET_HDR_LEN as u64, f.len()), f);
        }
        assert_eq!(g.take_used(1), None);
        assert_eq!((c.tx_frames, c.tx_dropped, c.bad_descriptors), (11, 0, 0));
    }
}
