//! The split-ring data path of a vhost-user port, run by the PMD: [`guest_tx`] pops the
//! chains the guest offers on its transmit virtqueue, gathers each frame (after the
//! `virtio_net_hdr`) into a scratch buffer and hands it on; [`guest_rx`] writes frames with
//! their header into the buffers the guest offers on its receive virtqueue, merging buffers
//! (`num_buffers`) when a frame spans several. Every guest address goes through vm-memory's
//! checked accessors and every chain through virtio-queue's walker (which stops after
//! queue-size descriptors), so a bad guest costs a counted, dropped chain, never a read or
//! write outside its memory. No allocation, no `Result` and no panic per packet.

use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Bytes of `virtio_net_hdr_mrg_rxbuf` (VIRTIO 1.x, or legacy with mergeable rx buffers).
pub const NET_HDR_LEN: usize = 12;
/// Bytes of the legacy `virtio_net_hdr` without mergeable rx buffers.
pub const LEGACY_NET_HDR_LEN: usize = 10;
/// Largest frame (without the header) either direction carries: a 9000-byte MTU plus L2.
pub const MAX_FRAME: usize = 9216;
/// Most guest buffers one received frame may be merged across.
const MAX_MERGE: usize = 64;
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
    /// Call eventfd writes (the guest asked for interrupts).
    pub call_signals: u64,
}

/// How a frame's header looks on this connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetHdr {
    /// Header bytes before each frame.
    pub len: usize,
    /// Whether `num_buffers` may be above 1 (`VIRTIO_NET_F_MRG_RXBUF`).
    pub mergeable: bool,
}

/// One vring as a burst sees it.
pub struct Vq<'a> {
    /// The split ring.
    pub queue: &'a mut Queue,
    /// The guest's memory.
    pub mem: &'a GuestMemoryMmap,
    /// The eventfd to signal, if the frontend gave one.
    pub call: Option<&'a File>,
    /// The header layout.
    pub hdr: NetHdr,
}

/// Used-ring entries written but not yet published: the guest sees a burst's entries at
/// once, when [`UsedRing::publish`] stores the index. A frame merged across buffers must
/// appear whole (DPDK's virtio driver drops a frame whose buffers it sees only in part, and
/// takes the rest for new frames), and one index store per burst is cheaper than one per
/// chain, which is why virtio-queue's `add_used` is not used.
struct UsedRing {
    next: u16,
    size: u16,
    addr: GuestAddress,
    pending: bool,
}

impl UsedRing {
    fn new(queue: &Queue) -> UsedRing {
        UsedRing {
            next: queue.next_used(),
            size: queue.size(),
            addr: GuestAddress(queue.used_ring()),
            pending: false,
        }
    }

    /// Writes entry (`head`, `len`); false for a head past the ring (nothing to give back)
    /// or an unwritable ring.
    fn push(&mut self, mem: &GuestMemoryMmap, head: u16, len: u32) -> bool {
        if head >= self.size {
            return false;
        }
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        let at = 4 + 8 * u64::from(self.next % self.size);
        let Some(at) = self.addr.0.checked_add(at) else {
            return false;
        };
        if mem.write_slice(&elem, GuestAddress(at)).is_err() {
            return false;
        }
        self.next = self.next.wrapping_add(1);
        self.pending = true;
        true
    }

    /// Makes the entries visible: the index store is a release, after every buffer and
    /// entry write.
    fn publish(self, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        if !self.pending {
            return false;
        }
        queue.set_next_used(self.next);
        if let Some(at) = self.addr.0.checked_add(2) {
            let _ = mem.store(self.next.to_le(), GuestAddress(at), Ordering::Release);
        }
        true
    }
}

/// Signals `call` unless the guest set `VRING_AVAIL_F_NO_INTERRUPT` (a poll-mode guest such
/// as DPDK's virtio-user does). Called once per burst that used descriptors.
fn signal(queue: &Queue, mem: &GuestMemoryMmap, call: Option<&File>, c: &mut RingCounters) {
    let Some(mut call) = call else { return };
    let flags: u16 = match mem.load(GuestAddress(queue.avail_ring()), Ordering::Acquire) {
        Ok(f) => u16::from_le(f),
        Err(_) => return,
    };
    if flags & VRING_AVAIL_F_NO_INTERRUPT != 0 {
        return;
    }
    // An eventfd write fails only when the counter would overflow: the guest has a signal
    // pending anyway.
    if call.write(&1u64.to_ne_bytes()).is_ok() {
        c.call_signals += 1;
    }
}

/// Receives up to `max` frames the guest transmits (its transmit virtqueue), handing each to
/// `f` without the header. `scratch` holds at least `hdr.len + MAX_FRAME` bytes. Every popped
/// chain goes back to the used ring (length 0: the device wrote nothing). Returns the frames
/// handed over.
pub fn guest_tx(
    vq: Vq<'_>,
    max: usize,
    scratch: &mut [u8],
    c: &mut RingCounters,
    f: &mut dyn FnMut(&[u8]),
) -> usize {
    let Vq {
        queue,
        mem,
        call,
        hdr,
    } = vq;
    let mut handed = 0;
    let mut used = UsedRing::new(queue);
    let limit = scratch.len().min(hdr.len + MAX_FRAME);
    while handed < max {
        let Some(chain) = queue.pop_descriptor_chain(mem) else {
            break;
        };
        let head = chain.head_index();
        let mut off = 0usize;
        let mut descriptors = 0u32;
        let mut more = false;
        let mut bad = false;
        let mut too_long = false;
        for desc in chain {
            descriptors += 1;
            more = desc.has_next();
            if desc.is_write_only() {
                bad = true;
                break;
            }
            let len = desc.len() as usize;
            let Some(end) = off.checked_add(len).filter(|&end| end <= limit) else {
                too_long = true;
                break;
            };
            if mem.read_slice(&mut scratch[off..end], desc.addr()).is_err() {
                bad = true;
                break;
            }
            off = end;
        }
        // The walker ends a chain early (yielding nothing, or a last descriptor that still
        // says `next`) when the head or a `next` is past the ring, a descriptor is unreadable,
        // or the chain is longer than the ring (a loop).
        if descriptors == 0 || (more && !bad && !too_long) {
            bad = true;
        }
        if !used.push(mem, head, 0) {
            // A head index past the ring: nothing to give back.
            bad = true;
        }
        if bad {
            c.bad_descriptors += 1;
        } else if too_long {
            c.rx_too_long += 1;
        } else if off < hdr.len {
            c.rx_runts += 1;
        } else {
            let frame = &scratch[hdr.len..off];
            c.rx_frames += 1;
            c.rx_bytes += frame.len() as u64;
            f(frame);
            handed += 1;
        }
    }
    if used.publish(queue, mem) {
        signal(queue, mem, call, c);
    }
    handed
}

/// Why a frame did not reach the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PutError {
    /// Too few receive buffers offered: the popped ones were put back.
    NoBuffers,
    /// The frame needs more than `MAX_MERGE` buffers (or more than one without mergeable
    /// buffers): the popped ones were put back.
    TooLong,
    /// A malformed chain: it and the ones popped before it for this frame were used with
    /// length 0.
    Bad,
}

/// Copies bytes `[at, at + n)` of header-then-frame into guest memory at `addr`.
fn write_span(
    mem: &GuestMemoryMmap,
    header: &[u8],
    frame: &[u8],
    at: usize,
    n: usize,
    addr: GuestAddress,
) -> bool {
    let mut at = at;
    let mut n = n;
    let mut addr = addr;
    if at < header.len() {
        let k = n.min(header.len() - at);
        if mem.write_slice(&header[at..at + k], addr).is_err() {
            return false;
        }
        at += k;
        n -= k;
        let Some(next) = addr.0.checked_add(k as u64) else {
            return n == 0;
        };
        addr = GuestAddress(next);
    }
    if n == 0 {
        return true;
    }
    let start = at - header.len();
    mem.write_slice(&frame[start..start + n], addr).is_ok()
}

/// Writes one frame into the guest's receive buffers.
fn put_frame(
    queue: &mut Queue,
    used: &mut UsedRing,
    mem: &GuestMemoryMmap,
    hdr: NetHdr,
    frame: &[u8],
) -> Result<(), PutError> {
    if frame.len() > MAX_FRAME {
        return Err(PutError::TooLong);
    }
    let start = queue.next_avail();
    // The header goes out zeroed (no checksum or GSO offload negotiated); `num_buffers` is
    // patched in once the buffers are known.
    let header = [0u8; NET_HDR_LEN];
    let header = &header[..hdr.len];
    let total = hdr.len + frame.len();
    let mut heads = [(0u16, 0u32); MAX_MERGE];
    let mut n = 0usize;
    let mut written = 0usize;
    let mut first_addr = GuestAddress(0);
    while written < total {
        if n == MAX_MERGE || (n == 1 && !hdr.mergeable) {
            queue.set_next_avail(start);
            return Err(PutError::TooLong);
        }
        let Some(chain) = queue.pop_descriptor_chain(mem) else {
            queue.set_next_avail(start);
            return Err(PutError::NoBuffers);
        };
        let head = chain.head_index();
        let mut chain_len = 0u32;
        let mut descriptors = 0u32;
        let mut more = false;
        let mut bad = false;
        for desc in chain {
            if written == total {
                break;
            }
            descriptors += 1;
            more = desc.has_next();
            let len = desc.len() as usize;
            // The header must sit in the first descriptor so `num_buffers` can be patched.
            if !desc.is_write_only() || (written == 0 && len < hdr.len) {
                bad = true;
                break;
            }
            if written == 0 {
                first_addr = desc.addr();
            }
            let k = len.min(total - written);
            if !write_span(mem, header, frame, written, k, desc.addr()) {
                bad = true;
                break;
            }
            written += k;
            chain_len += k as u32;
        }
        if descriptors == 0 || (more && written < total && !bad) {
            bad = true;
        }
        heads[n] = (head, chain_len);
        n += 1;
        if bad {
            for &(h, _) in &heads[..n] {
                // A head past the ring cannot be given back; the rest go back empty.
                used.push(mem, h, 0);
            }
            return Err(PutError::Bad);
        }
    }
    if hdr.mergeable {
        // `num_buffers` is the header's last field; n <= MAX_MERGE fits a u16.
        let at = GuestAddress(first_addr.0.wrapping_add(hdr.len as u64 - 2));
        if mem.write_slice(&(n as u16).to_le_bytes(), at).is_err() {
            for &(h, _) in &heads[..n] {
                used.push(mem, h, 0);
            }
            return Err(PutError::Bad);
        }
    }
    for &(h, len) in &heads[..n] {
        used.push(mem, h, len);
    }
    Ok(())
}

/// Writes `frames` into the guest's receive virtqueue in order. Stops at the first frame the
/// guest has no room for (counted in `tx_dropped` with every frame after it) and returns the
/// frames taken: written, or dropped as too long or for a malformed chain.
pub fn guest_rx(vq: Vq<'_>, frames: &[&[u8]], c: &mut RingCounters) -> usize {
    let Vq {
        queue,
        mem,
        call,
        hdr,
    } = vq;
    let mut taken = 0;
    let mut used = UsedRing::new(queue);
    for frame in frames {
        match put_frame(queue, &mut used, mem, hdr, frame) {
            Ok(()) => {
                c.tx_frames += 1;
                c.tx_bytes += frame.len() as u64;
            }
            Err(PutError::TooLong) => c.tx_too_long += 1,
            Err(PutError::Bad) => c.bad_descriptors += 1,
            Err(PutError::NoBuffers) => {
                c.tx_dropped += (frames.len() - taken) as u64;
                break;
            }
        }
        taken += 1;
    }
    if used.publish(queue, mem) {
        signal(queue, mem, call, c);
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESC: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;
    const DATA: u64 = 0x10000;
    const SIZE: u16 = 16;
    const F_NEXT: u16 = 1;
    const F_WRITE: u16 = 2;

    /// 1 MiB of guest memory and a 16-entry split ring in it, as a guest driver lays it out.
    struct Guest {
        mem: GuestMemoryMmap,
        queue: Queue,
        avail_idx: u16,
    }

    impl Guest {
        fn new() -> Guest {
            let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
            let mut queue = Queue::new(SIZE).unwrap();
            queue
                .try_set_desc_table_address(GuestAddress(DESC))
                .unwrap();
            queue
                .try_set_avail_ring_address(GuestAddress(AVAIL))
                .unwrap();
            queue.try_set_used_ring_address(GuestAddress(USED)).unwrap();
            queue.set_ready(true);
            assert!(queue.is_valid(&mem));
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
                .write_slice(&b, GuestAddress(DESC + 16 * u64::from(i)))
                .unwrap();
        }

        fn offer(&mut self, head: u16) {
            let slot = u64::from(self.avail_idx % SIZE);
            self.mem
                .write_obj(head.to_le(), GuestAddress(AVAIL + 4 + 2 * slot))
                .unwrap();
            self.avail_idx = self.avail_idx.wrapping_add(1);
            self.mem
                .write_obj(self.avail_idx.to_le(), GuestAddress(AVAIL + 2))
                .unwrap();
        }

        fn used_idx(&self) -> u16 {
            self.mem.read_obj(GuestAddress(USED + 2)).unwrap()
        }

        /// (id, len) of used entry `i`.
        fn used(&self, i: u16) -> (u32, u32) {
            let at = USED + 4 + 8 * u64::from(i % SIZE);
            (
                self.mem.read_obj(GuestAddress(at)).unwrap(),
                self.mem.read_obj(GuestAddress(at + 4)).unwrap(),
            )
        }

        fn tx(&mut self, max: usize, c: &mut RingCounters) -> Vec<Vec<u8>> {
            let mut got = Vec::new();
            let mut scratch = vec![0u8; NET_HDR_LEN + MAX_FRAME];
            guest_tx(
                Vq {
                    queue: &mut self.queue,
                    mem: &self.mem,
                    call: None,
                    hdr: HDR,
                },
                max,
                &mut scratch,
                c,
                &mut |f| got.push(f.to_vec()),
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
        g.mem.write_slice(&bytes[..32], GuestAddress(DATA)).unwrap();
        g.mem
            .write_slice(&bytes[32..82], GuestAddress(DATA + 0x1000))
            .unwrap();
        g.mem
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
        // Then a good frame still gets through.
        g.desc(10, DATA, 72, 0, 0);
        g.offer(10);
        let mut c = RingCounters::default();
        let got = g.tx(32, &mut c);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 60);
        assert_eq!(c.bad_descriptors, 5);
        assert_eq!(c.rx_runts, 1);
        // Every chain but the bogus head went back.
        assert_eq!(g.used_idx(), 6);
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
        let taken = guest_rx(
            Vq {
                queue: &mut g.queue,
                mem: &g.mem,
                call: None,
                hdr: HDR,
            },
            &[&f, &short],
            &mut c,
        );
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
                .read_slice(&mut out[at..at + 64], GuestAddress(DATA + 0x1000 * i))
                .unwrap();
        }
        assert_eq!(&out[..10], &[0u8; 10]);
        assert_eq!(u16::from_le_bytes([out[10], out[11]]), 3);
        assert_eq!(&out[12..162], &f[..]);
        let mut second = [0u8; 32];
        g.mem
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
        assert_eq!(
            guest_rx(
                Vq {
                    queue: &mut g.queue,
                    mem: &g.mem,
                    call: None,
                    hdr: HDR
                },
                &[&big, &big],
                &mut c
            ),
            0
        );
        assert_eq!(c.tx_dropped, 2);
        assert_eq!(g.used_idx(), 0);
        assert_eq!(g.queue.next_avail(), 0);
        // A frame that fits still uses the buffer that was put back.
        let small = frame(40);
        assert_eq!(
            guest_rx(
                Vq {
                    queue: &mut g.queue,
                    mem: &g.mem,
                    call: None,
                    hdr: HDR
                },
                &[&small],
                &mut c
            ),
            1
        );
        assert_eq!(g.used(0), (0, 52));
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
        assert_eq!(
            guest_rx(
                Vq {
                    queue: &mut g.queue,
                    mem: &g.mem,
                    call: None,
                    hdr: legacy
                },
                &[&f],
                &mut c
            ),
            1
        );
        assert_eq!(g.used(0), (0, 110));
        // 100 bytes do not fit the 64-byte chain and may not be merged.
        assert_eq!(
            guest_rx(
                Vq {
                    queue: &mut g.queue,
                    mem: &g.mem,
                    call: None,
                    hdr: legacy
                },
                &[&f],
                &mut c
            ),
            1
        );
        assert_eq!(c.tx_too_long, 1);
        assert_eq!(g.queue.next_avail(), 1);
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
        let taken = guest_rx(
            Vq {
                queue: &mut g.queue,
                mem: &g.mem,
                call: None,
                hdr: HDR,
            },
            &[&f, &f, &f, &f],
            &mut c,
        );
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
        g.mem.write_obj(1u16.to_le(), GuestAddress(AVAIL)).unwrap();
        guest_rx(
            Vq {
                queue: &mut g.queue,
                mem: &g.mem,
                call: Some(&call),
                hdr: HDR,
            },
            &[&f],
            &mut c,
        );
        assert_eq!(c.call_signals, 0);
        g.mem.write_obj(0u16, GuestAddress(AVAIL)).unwrap();
        guest_rx(
            Vq {
                queue: &mut g.queue,
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
