//! Packet buffers: a pool of fixed-size frames with headroom, addressed by `u32` handles.
//!
//! The pool is one contiguous region cut into frames of one size ([`FRAME_SIZE`] unless the
//! pool is built for a larger MTU, [`frame_size_for_mtu`], as OVS-DPDK sizes its mempools by
//! MTU), the shape of an AF_XDP UMEM, so an I/O layer can hand frames to the kernel by offset. Each frame starts with
//! [`HEADROOM`] bytes of room in front of the packet so that encapsulation prepends headers
//! without moving the payload. Per-packet metadata (the parsed [`FlowKey`], hash, offsets,
//! input port) lives in a parallel array indexed by the same handle, as VPP keeps it in the
//! buffer header: batches then move only 4-byte handles between nodes.

use crate::flowkey::FlowKey;
use crate::memory::FrameMemory;

/// Bytes of one frame of a default pool, headroom included (an AF_XDP UMEM chunk).
pub const FRAME_SIZE: usize = 2048;
/// Bytes reserved in front of a received packet for encapsulation.
pub const HEADROOM: usize = 256;
/// Largest packet a default pool's frame holds without encapsulation room taken.
pub const MAX_PACKET: usize = FRAME_SIZE - HEADROOM;
/// Bytes an Ethernet frame carries besides its MTU's worth of payload: the 14-byte header and
/// one 802.1Q tag (the CRC never reaches the switch).
pub const FRAME_OVERHEAD: usize = 18;
/// Largest frame size a pool is built with (a 9,216-byte MTU and more).
pub const MAX_FRAME_SIZE: usize = 16384;

/// The frame size of a pool whose packets may be `mtu` bytes of payload plus
/// [`FRAME_OVERHEAD`]: [`FRAME_SIZE`] while that fits, else the headroom plus the frame rounded
/// up to a cache line (capped at [`MAX_FRAME_SIZE`]).
pub fn frame_size_for_mtu(mtu: usize) -> usize {
    let need = HEADROOM + mtu + FRAME_OVERHEAD;
    if need <= FRAME_SIZE {
        FRAME_SIZE
    } else {
        need.next_multiple_of(64).min(MAX_FRAME_SIZE)
    }
}

/// A packet handle: the index of its frame in the pool.
pub type PacketId = u32;

/// Words of a [`FlowKey`] before `dl_dst`: metadata set by earlier stages (tunnel, conntrack,
/// recirculation, input port), which the parser keeps. `alloc` clears only these and the
/// conntrack tuple at the end of the key (the parser writes the words between).
pub const KEY_METADATA_WORDS: usize = core::mem::offset_of!(FlowKey, dl_dst) / 8;
const _: () = assert!(core::mem::offset_of!(FlowKey, dl_dst) % 8 == 0);

/// Offset value meaning "this header is not present".
pub const NO_OFFSET: u16 = u16::MAX;

/// What the pipeline knows about one packet besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketMeta {
    /// Parsed header fields (filled by the `parse` node, updated by set actions).
    pub key: FlowKey,
    /// RSS-style hash of the 5-tuple, filled by `parse`.
    pub hash: u32,
    /// Offset of the packet's first byte inside its frame.
    pub data_off: u16,
    /// Length of the packet in bytes.
    pub len: u16,
    /// Offset (from the packet start) of the L3 header, or [`NO_OFFSET`].
    pub l3_ofs: u16,
    /// Offset (from the packet start) of the L4 header, or [`NO_OFFSET`].
    pub l4_ofs: u16,
    /// Receive timestamp in nanoseconds on the pipeline's clock.
    pub rx_ns: u64,
    /// Index of the megaflow that classified this packet (for nodes after `classify`).
    pub flow_ref: u32,
    /// Times the packet was recirculated ([`crate::DpAction::Recirc`]).
    pub recircs: u8,
}

/// Errors of the buffer pool (control plane only; the data path counts instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferError {
    /// Every frame is in use.
    Exhausted,
    /// The packet does not fit into a frame.
    TooLong,
    /// Not enough headroom or tailroom for the requested change.
    NoRoom,
}

/// A pool of packet frames and their metadata.
pub struct PacketPool {
    mem: FrameMemory,
    /// Bytes of one frame, headroom included.
    frame_size: usize,
    meta: Vec<PacketMeta>,
    free: Vec<PacketId>,
}

/// `dst.copy_from_slice(src)` (equal lengths), with frames of 32 to 64 bytes (minimum-size
/// packets) copied as two overlapping 32-byte blocks the compiler inlines: at that size the
/// call into libc's memcpy costs more than the copy.
#[inline(always)]
fn copy_frame(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if (32..=64).contains(&n) && dst.len() == n {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<32>(), src.first_chunk::<32>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<32>(), src.last_chunk::<32>()) {
            *d = *s;
        }
        return;
    }
    dst.copy_from_slice(src);
}

impl PacketPool {
    /// A pool of `frames` frames, all free.
    pub fn new(frames: u32) -> PacketPool {
        PacketPool::with_frame_size(frames, FRAME_SIZE)
    }

    /// A pool of `frames` frames of `frame_size` bytes (at least [`FRAME_SIZE`], at most
    /// [`MAX_FRAME_SIZE`], a multiple of 64), all free.
    pub fn with_frame_size(frames: u32, frame_size: usize) -> PacketPool {
        let frame_size = frame_size
            .clamp(FRAME_SIZE, MAX_FRAME_SIZE)
            .next_multiple_of(64);
        PacketPool::build(
            FrameMemory::heap(frames as usize * frame_size),
            frames,
            frame_size,
        )
    }

    /// A pool of `frames` frames in the first `frames * FRAME_SIZE` bytes of `memory` (memory
    /// shared with the kernel, for zero-copy ports); `TooLong` if it is shorter.
    pub fn over(memory: FrameMemory, frames: u32) -> Result<PacketPool, BufferError> {
        if memory.len() < frames as usize * FRAME_SIZE {
            return Err(BufferError::TooLong);
        }
        Ok(PacketPool::build(memory, frames, FRAME_SIZE))
    }

    fn build(mem: FrameMemory, frames: u32, frame_size: usize) -> PacketPool {
        PacketPool {
            mem,
            frame_size,
            meta: vec![PacketMeta::default(); frames as usize],
            free: (0..frames).rev().collect(),
        }
    }

    /// The address of the pool's memory ([`FrameMemory::addr`]): a zero-copy port checks that
    /// a pool is the one whose memory it shares before it takes or lends frames.
    pub fn memory_addr(&self) -> usize {
        self.mem.addr()
    }

    /// Bytes of one frame, headroom included.
    #[inline(always)]
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Largest packet a frame holds after the headroom.
    #[inline(always)]
    pub fn max_packet(&self) -> usize {
        self.frame_size - HEADROOM
    }

    /// Total number of frames.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Frames not in use.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes a free frame; its packet is empty and starts after the headroom. The key's
    /// metadata words are zero; its header fields are left for the `parse` node to fill.
    #[inline]
    pub fn alloc(&mut self) -> Option<PacketId> {
        let id = self.free.pop()?;
        // Only the key's metadata words (tunnel, conntrack, recirculation, in_port: everything
        // before `dl_dst`) are cleared: the parser writes every header word itself, and
        // clearing them here too cost ~13 stores per packet on the rx path.
        reset_meta(&mut self.meta[id as usize], HEADROOM, 0);
        Some(id)
    }

    /// Takes a free frame out of the pool for someone else to fill (the kernel, on a zero-copy
    /// port's fill ring). The pool does not touch its bytes until it comes back with
    /// [`PacketPool::adopt`] (holding a packet) or [`PacketPool::free`] (empty).
    #[inline]
    pub fn lend(&mut self) -> Option<PacketId> {
        self.free.pop()
    }

    /// Takes back a lent frame that now holds a packet of `len` bytes at `data_off`, as a
    /// packet of the pool (metadata as after [`PacketPool::alloc`]). `NoRoom` if the packet
    /// does not lie inside the frame or `id` is not a frame of the pool; the caller still owns
    /// the frame then.
    #[inline]
    pub fn adopt(&mut self, id: PacketId, data_off: usize, len: usize) -> Result<(), BufferError> {
        if data_off + len > self.frame_size {
            return Err(BufferError::NoRoom);
        }
        let m = self.meta.get_mut(id as usize).ok_or(BufferError::NoRoom)?;
        reset_meta(m, data_off, len);
        Ok(())
    }

    /// Returns a frame to the pool (a packet, or an empty frame that was lent).
    #[inline]
    pub fn free(&mut self, id: PacketId) {
        debug_assert!(!self.free.contains(&id), "double free of packet {id}");
        self.free.push(id);
    }

    /// Allocates a frame and copies `bytes` into it after the headroom.
    pub fn alloc_with(&mut self, bytes: &[u8]) -> Result<PacketId, BufferError> {
        if bytes.len() > self.max_packet() {
            return Err(BufferError::TooLong);
        }
        let id = self.alloc().ok_or(BufferError::Exhausted)?;
        let start = id as usize * self.frame_size + HEADROOM;
        copy_frame(&mut self.mem.bytes_mut()[start..start + bytes.len()], bytes);
        self.meta[id as usize].len = bytes.len() as u16;
        Ok(id)
    }

    /// A copy of packet `id` (bytes and metadata) in a new frame, for flooding and mirroring.
    #[inline]
    pub fn clone_packet(&mut self, id: PacketId) -> Option<PacketId> {
        let new = self.free.pop()?;
        let m = self.meta[id as usize];
        self.meta[new as usize] = m;
        let src = id as usize * self.frame_size + m.data_off as usize;
        let dst = new as usize * self.frame_size + m.data_off as usize;
        self.mem
            .bytes_mut()
            .copy_within(src..src + m.len as usize, dst);
        Some(new)
    }

    /// The packet's bytes.
    #[inline(always)]
    pub fn data(&self, id: PacketId) -> &[u8] {
        let m = &self.meta[id as usize];
        let start = id as usize * self.frame_size + m.data_off as usize;
        &self.mem.bytes()[start..start + m.len as usize]
    }

    /// The packet's bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self, id: PacketId) -> &mut [u8] {
        let m = &self.meta[id as usize];
        let start = id as usize * self.frame_size + m.data_off as usize;
        &mut self.mem.bytes_mut()[start..start + m.len as usize]
    }

    /// The packet's bytes and its metadata, both writable.
    #[inline(always)]
    pub fn data_and_meta_mut(&mut self, id: PacketId) -> (&mut [u8], &mut PacketMeta) {
        let m = &mut self.meta[id as usize];
        let start = id as usize * self.frame_size + m.data_off as usize;
        (&mut self.mem.bytes_mut()[start..start + m.len as usize], m)
    }

    /// The packet's metadata.
    #[inline(always)]
    pub fn meta(&self, id: PacketId) -> &PacketMeta {
        &self.meta[id as usize]
    }

    /// The packet's metadata, writable.
    #[inline(always)]
    pub fn meta_mut(&mut self, id: PacketId) -> &mut PacketMeta {
        &mut self.meta[id as usize]
    }

    /// Grows the packet at the front by `n` bytes (taken from the headroom) and returns the
    /// new packet bytes. L3/L4 offsets move with the data.
    pub fn push_front(&mut self, id: PacketId, n: usize) -> Result<&mut [u8], BufferError> {
        let m = &mut self.meta[id as usize];
        if (m.data_off as usize) < n {
            return Err(BufferError::NoRoom);
        }
        m.data_off -= n as u16;
        m.len += n as u16;
        shift_offsets(m, n as i32);
        Ok(self.data_mut(id))
    }

    /// Removes `n` bytes from the front of the packet.
    pub fn pull_front(&mut self, id: PacketId, n: usize) -> Result<(), BufferError> {
        let m = &mut self.meta[id as usize];
        if (m.len as usize) < n {
            return Err(BufferError::NoRoom);
        }
        m.data_off += n as u16;
        m.len -= n as u16;
        shift_offsets(m, -(n as i32));
        Ok(())
    }

    /// Sets the packet length (to trim, or to extend into the frame's tailroom).
    pub fn set_len(&mut self, id: PacketId, len: usize) -> Result<(), BufferError> {
        let m = &mut self.meta[id as usize];
        if m.data_off as usize + len > self.frame_size {
            return Err(BufferError::NoRoom);
        }
        m.len = len as u16;
        Ok(())
    }

    /// The whole frame of `id` (headroom included), for I/O layers that place packets
    /// themselves.
    pub fn frame_mut(&mut self, id: PacketId) -> &mut [u8] {
        let start = id as usize * self.frame_size;
        &mut self.mem.bytes_mut()[start..start + self.frame_size]
    }
}

/// The metadata of a fresh packet of `len` bytes at `data_off`.
#[inline(always)]
fn reset_meta(m: &mut PacketMeta, data_off: usize, len: usize) {
    m.key.words_mut()[..KEY_METADATA_WORDS].fill(0);
    m.key.clear_ct_tuple();
    m.hash = 0;
    m.data_off = data_off as u16;
    m.len = len as u16;
    m.l3_ofs = NO_OFFSET;
    m.l4_ofs = NO_OFFSET;
    m.rx_ns = 0;
    m.flow_ref = 0;
    m.recircs = 0;
}

fn shift_offsets(m: &mut PacketMeta, delta: i32) {
    for ofs in [&mut m.l3_ofs, &mut m.l4_ofs] {
        if *ofs != NO_OFFSET {
            *ofs = (*ofs as i32 + delta).max(0) as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_with_copies_every_length_exactly() {
        let mut pool = PacketPool::new(4);
        for n in 0..=130usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let id = pool.alloc_with(&bytes).unwrap();
            assert_eq!(pool.data(id), &bytes[..], "length {n}");
            pool.free(id);
        }
    }

    #[test]
    fn alloc_copy_clone_free() {
        let mut pool = PacketPool::new(4);
        let a = pool.alloc_with(&[1, 2, 3]).unwrap();
        assert_eq!(pool.data(a), &[1, 2, 3]);
        let b = pool.clone_packet(a).unwrap();
        assert_ne!(a, b);
        pool.data_mut(b)[0] = 9;
        assert_eq!(pool.data(a), &[1, 2, 3]);
        assert_eq!(pool.data(b), &[9, 2, 3]);
        assert_eq!(pool.available(), 2);
        pool.free(a);
        pool.free(b);
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn headroom_push_and_pull() {
        let mut pool = PacketPool::new(1);
        let a = pool.alloc_with(&[7; 60]).unwrap();
        pool.meta_mut(a).l3_ofs = 14;
        let d = pool.push_front(a, 50).unwrap();
        assert_eq!(d.len(), 110);
        d[..50].fill(0xaa);
        assert_eq!(pool.meta(a).l3_ofs, 64);
        pool.pull_front(a, 50).unwrap();
        assert_eq!(pool.data(a), &[7; 60]);
        assert!(pool.push_front(a, HEADROOM + 1).is_err());
        assert!(pool.alloc().is_none());
    }

    #[test]
    fn a_lent_frame_comes_back_as_a_packet_or_empty() {
        let mut pool = PacketPool::new(3);
        let a = pool.lend().unwrap();
        let b = pool.lend().unwrap();
        assert_eq!(pool.available(), 1);
        // Someone else (the kernel) writes a packet at an offset of its choosing.
        pool.frame_mut(a)[300..304].copy_from_slice(&[1, 2, 3, 4]);
        pool.adopt(a, 300, 4).unwrap();
        assert_eq!(pool.data(a), &[1, 2, 3, 4]);
        assert_eq!(pool.meta(a).l3_ofs, NO_OFFSET);
        assert_eq!(pool.adopt(b, FRAME_SIZE - 3, 4), Err(BufferError::NoRoom));
        assert_eq!(pool.adopt(7, HEADROOM, 4), Err(BufferError::NoRoom));
        pool.free(a);
        pool.free(b);
        assert_eq!(pool.available(), 3);
    }

    #[test]
    fn a_pool_over_shared_memory_uses_its_first_frames() {
        let memory = FrameMemory::heap(3 * FRAME_SIZE);
        let addr = memory.addr();
        assert!(PacketPool::over(FrameMemory::heap(FRAME_SIZE), 2).is_err());
        let mut pool = PacketPool::over(memory, 2).unwrap();
        assert_eq!((pool.capacity(), pool.memory_addr()), (2, addr));
        let a = pool.alloc_with(&[5; 60]).unwrap();
        assert_eq!(pool.data(a), &[5; 60]);
    }

    #[test]
    fn a_jumbo_pool_holds_a_9000_byte_mtu_frame() {
        assert_eq!(frame_size_for_mtu(1500), FRAME_SIZE);
        assert_eq!(frame_size_for_mtu(MAX_PACKET - FRAME_OVERHEAD), FRAME_SIZE);
        assert_eq!(frame_size_for_mtu(9000), 9280);
        let mut pool = PacketPool::with_frame_size(2, frame_size_for_mtu(9000));
        assert_eq!(pool.max_packet(), 9280 - HEADROOM);
        let big: Vec<u8> = (0..9018).map(|i| i as u8).collect();
        let a = pool.alloc_with(&big).unwrap();
        let b = pool.clone_packet(a).unwrap();
        assert_eq!(pool.data(b), &big[..]);
        pool.push_front(b, 50).unwrap();
        assert_eq!(&pool.data(b)[50..], &big[..]);
        assert_eq!(pool.data(a), &big[..], "frames do not overlap");
        assert_eq!(
            pool.alloc_with(&vec![0; pool.max_packet() + 1]),
            Err(BufferError::TooLong)
        );
    }

    #[test]
    fn too_long_is_refused() {
        let mut pool = PacketPool::new(1);
        assert_eq!(
            pool.alloc_with(&vec![0; MAX_PACKET + 1]),
            Err(BufferError::TooLong)
        );
    }
}
