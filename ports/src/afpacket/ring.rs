//! The kernel layouts of a `TPACKET_V3` receive ring and a `TPACKET_V2` transmit ring (from
//! `linux/if_packet.h`, checked by the tests below) and the two
//! walkers: [`RxRing`] hands retired blocks' packets to a closure and gives each block back as
//! soon as its last packet was seen; [`TxRing`] copies packets into free frames and marks them
//! for the kernel. Neither allocates, returns `Result` or panics: a block whose headers point
//! outside it is handed back unread and counted by the caller.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering;

use crate::sys::Mmap;

/// Block or frame owned by the kernel (rx).
pub(super) const TP_STATUS_KERNEL: u32 = 0;
/// Block retired to user space (rx).
pub(super) const TP_STATUS_USER: u32 = 1;
/// The packet's checksum is not yet computed (locally generated, offloaded).
pub(super) const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `tp_vlan_tci` holds a tag the kernel took out of the frame.
pub(super) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `tp_vlan_tpid` holds that tag's TPID.
pub(super) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// Frame free for user space to fill (tx).
pub(super) const TP_STATUS_AVAILABLE: u32 = 0;
/// Frame filled, for the kernel to send (tx).
pub(super) const TP_STATUS_SEND_REQUEST: u32 = 1;

/// `struct tpacket_req3`, the `PACKET_RX_RING` request of a `TPACKET_V3` socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TpacketReq3 {
    pub tp_block_size: u32,
    pub tp_block_nr: u32,
    pub tp_frame_size: u32,
    pub tp_frame_nr: u32,
    pub tp_retire_blk_tov: u32,
    pub tp_sizeof_priv: u32,
    pub tp_feature_req_word: u32,
}

/// `struct tpacket_req`, the `PACKET_TX_RING` request of a `TPACKET_V2` socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TpacketReq {
    pub tp_block_size: u32,
    pub tp_block_nr: u32,
    pub tp_frame_size: u32,
    pub tp_frame_nr: u32,
}

/// `struct tpacket_block_desc` with its `tpacket_hdr_v1` inlined.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // the kernel's layout: every field is there, not every one is read
struct BlockDesc {
    version: u32,
    offset_to_priv: u32,
    block_status: u32,
    num_pkts: u32,
    offset_to_first_pkt: u32,
    blk_len: u32,
    seq_num: u64,
    ts_first_pkt: [u32; 2],
    ts_last_pkt: [u32; 2],
}

/// `struct tpacket3_hdr` with its `tpacket_hdr_variant1` inlined.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // the kernel's layout: every field is there, not every one is read
struct Tpacket3Hdr {
    tp_next_offset: u32,
    tp_sec: u32,
    tp_nsec: u32,
    tp_snaplen: u32,
    tp_len: u32,
    tp_status: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_rxhash: u32,
    tp_vlan_tci: u32,
    tp_vlan_tpid: u16,
    hv1_padding: u16,
    tp_padding: [u8; 8],
}

/// `struct tpacket2_hdr`.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // the kernel's layout: every field is there, not every one is read
struct Tpacket2Hdr {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_sec: u32,
    tp_nsec: u32,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
    tp_padding: [u8; 4],
}

/// Where a `TPACKET_V2` tx frame's packet starts: the kernel reads it at `TPACKET2_HDRLEN -
/// sizeof(struct sockaddr_ll)` (32) when `PACKET_TX_HAS_OFF` is off.
pub(super) const TX_DATA_OFFSET: usize = 32;

/// One received packet as the kernel described it.
pub(super) struct RxPacket<'a> {
    /// The bytes captured (`tp_snaplen` of them).
    pub data: &'a [u8],
    /// The packet's length on the wire (`tp_len`); larger than `data` when truncated.
    pub wire_len: u32,
    /// `tp_status` of the packet.
    pub status: u32,
    /// The VLAN tag the kernel took out, when `TP_STATUS_VLAN_VALID`.
    pub vlan_tci: u16,
    /// Its TPID, when `TP_STATUS_VLAN_TPID_VALID`.
    pub vlan_tpid: u16,
}

/// A `TPACKET_V3` receive ring: `blocks` blocks of `block_size` bytes, walked in order.
pub(super) struct RxRing {
    map: Mmap,
    block_size: usize,
    blocks: usize,
    /// The block being read or waited for.
    block: usize,
    /// Whether `block` was retired to us and is being read.
    open: bool,
    /// Packets of `block` not yet handed out.
    remaining: u32,
    /// Offset of the next packet inside the mapping.
    next: usize,
}

impl RxRing {
    pub fn new(map: Mmap, block_size: usize, blocks: usize) -> RxRing {
        RxRing {
            map,
            block_size,
            blocks,
            block: 0,
            open: false,
            remaining: 0,
            next: 0,
        }
    }

    /// Hands up to `max` packets of retired blocks to `f`, in order, and returns how many;
    /// every block whose last packet was seen goes back to the kernel before returning.
    /// Returns how many blocks had to be given back unread because their headers were bad
    /// through `bad_blocks`.
    pub fn burst(
        &mut self,
        max: u32,
        bad_blocks: &mut u64,
        mut f: impl FnMut(RxPacket<'_>),
    ) -> u32 {
        let mut n = 0u32;
        while n < max {
            if !self.open && !self.open_block() {
                break;
            }
            if self.remaining == 0 {
                self.release();
                continue;
            }
            let block_end = (self.block + 1) * self.block_size;
            let Some(pkt) = self.packet_at(self.next, block_end) else {
                *bad_blocks += 1;
                self.release();
                continue;
            };
            let next_offset = pkt.1;
            f(pkt.0);
            n += 1;
            self.remaining -= 1;
            if self.remaining == 0 {
                self.release();
            } else if next_offset == 0 {
                *bad_blocks += 1;
                self.release();
            } else {
                self.next += next_offset as usize;
            }
        }
        n
    }

    /// Opens the current block if the kernel retired it.
    fn open_block(&mut self) -> bool {
        let base = self.block * self.block_size;
        let desc = self
            .map
            .atomic_u32(base + std::mem::offset_of!(BlockDesc, block_status));
        if desc.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return false;
        }
        // SAFETY: `base` is the start of a block inside the mapping, 16-byte aligned, and the
        // kernel no longer writes the block after publishing TP_STATUS_USER (Acquire above).
        let d = unsafe { std::ptr::read(self.map.ptr().add(base) as *const BlockDesc) };
        self.open = true;
        self.remaining = d.num_pkts;
        self.next = base + d.offset_to_first_pkt as usize;
        true
    }

    /// The packet whose header is at `at`, and its `tp_next_offset`; `None` if the header or
    /// the data would lie outside the block ending at `block_end`.
    fn packet_at(&self, at: usize, block_end: usize) -> Option<(RxPacket<'_>, u32)> {
        let hdr_len = std::mem::size_of::<Tpacket3Hdr>();
        if !at.is_multiple_of(4) || at + hdr_len > block_end {
            return None;
        }
        // SAFETY: the header lies inside this retired block (checked above) and is aligned
        // for its `u32` fields; the kernel does not write the block until we release it.
        let h = unsafe { std::ptr::read(self.map.ptr().add(at) as *const Tpacket3Hdr) };
        let start = at + h.tp_mac as usize;
        let end = start.checked_add(h.tp_snaplen as usize)?;
        if end > block_end {
            return None;
        }
        // SAFETY: `start..end` lies inside the retired block (checked above), which stays
        // ours and mapped for the lifetime of `&self`.
        let data = unsafe { std::slice::from_raw_parts(self.map.ptr().add(start), end - start) };
        Some((
            RxPacket {
                data,
                wire_len: h.tp_len,
                status: h.tp_status,
                vlan_tci: h.tp_vlan_tci as u16,
                vlan_tpid: h.tp_vlan_tpid,
            },
            h.tp_next_offset,
        ))
    }

    /// Gives the current block back to the kernel and moves to the next one.
    fn release(&mut self) {
        let base = self.block * self.block_size;
        self.map
            .atomic_u32(base + std::mem::offset_of!(BlockDesc, block_status))
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % self.blocks;
        self.open = false;
        self.remaining = 0;
    }
}

/// A `TPACKET_V2` transmit ring of `frames` frames of `frame_size` bytes, filled in order.
pub(super) struct TxRing {
    map: Mmap,
    frame_size: usize,
    frames: u32,
    head: u32,
}

impl TxRing {
    pub fn new(map: Mmap, frame_size: usize, frames: u32) -> TxRing {
        TxRing {
            map,
            frame_size,
            frames,
            head: 0,
        }
    }

    /// The longest packet a frame holds.
    pub fn max_packet(&self) -> usize {
        self.frame_size - TX_DATA_OFFSET
    }

    /// Copies `pkt` (at most [`Self::max_packet`] bytes, the caller checks) into the next
    /// frame and marks it for sending; `false` when that frame is still the kernel's.
    pub fn put(&mut self, pkt: &[u8]) -> bool {
        let base = self.head as usize * self.frame_size;
        let status = self.map.atomic_u32(base);
        if status.load(Ordering::Acquire) != TP_STATUS_AVAILABLE {
            return false;
        }
        let len = pkt.len().min(self.max_packet());
        // SAFETY: the frame is ours (TP_STATUS_AVAILABLE, Acquire above) and lies inside the
        // mapping; `len` bytes fit after `TX_DATA_OFFSET` (clamped above); `pkt` is caller
        // memory, so the ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                pkt.as_ptr(),
                self.map.ptr().add(base + TX_DATA_OFFSET),
                len,
            );
            let tp_len = self
                .map
                .ptr()
                .add(base + std::mem::offset_of!(Tpacket2Hdr, tp_len));
            std::ptr::write(tp_len as *mut u32, len as u32);
        }
        // Release: the bytes and the length are visible before the kernel sees the request.
        status.store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (self.head + 1) % self.frames;
        true
    }

    /// Frames not yet given back by the kernel (queued or being sent). Walks the whole ring:
    /// for draining and tests, not for every burst.
    pub fn in_flight(&self) -> u32 {
        (0..self.frames)
            .filter(|i| {
                self.map
                    .atomic_u32(*i as usize * self.frame_size)
                    .load(Ordering::Acquire)
                    != TP_STATUS_AVAILABLE
            })
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_linux_if_packet_h() {
        // Sizes and offsets from linux/if_packet.h (x86_64 and every other Linux ABI: all
        // fields are naturally aligned).
        assert_eq!(size_of::<TpacketReq3>(), 28);
        assert_eq!(size_of::<TpacketReq>(), 16);
        assert_eq!(offset_of!(BlockDesc, block_status), 8);
        assert_eq!(offset_of!(BlockDesc, num_pkts), 12);
        assert_eq!(offset_of!(BlockDesc, offset_to_first_pkt), 16);
        assert_eq!(offset_of!(BlockDesc, seq_num), 24);
        assert_eq!(size_of::<BlockDesc>(), 48);
        assert_eq!(size_of::<Tpacket3Hdr>(), 48);
        assert_eq!(offset_of!(Tpacket3Hdr, tp_status), 20);
        assert_eq!(offset_of!(Tpacket3Hdr, tp_mac), 24);
        assert_eq!(offset_of!(Tpacket3Hdr, tp_vlan_tci), 32);
        assert_eq!(offset_of!(Tpacket3Hdr, tp_vlan_tpid), 36);
        assert_eq!(size_of::<Tpacket2Hdr>(), 32);
        assert_eq!(offset_of!(Tpacket2Hdr, tp_len), 4);
        // TPACKET2_HDRLEN = TPACKET_ALIGN(32) + sizeof(sockaddr_ll) = 52; data at 52 - 20.
        assert_eq!(
            TX_DATA_OFFSET,
            size_of::<Tpacket2Hdr>().next_multiple_of(16) + 20 - size_of::<libc::sockaddr_ll>()
        );
    }
}
