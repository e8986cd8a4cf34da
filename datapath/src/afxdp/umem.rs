//! The UMEM: one anonymous mapping cut into [`FRAME_SIZE`] frames, registered with the kernel
//! on an AF_XDP socket. It has the shape of `pipeline::PacketPool` on purpose (same frame size,
//! packets land [`HEADROOM`] bytes into a frame) so that the pool can later live in it. Ports
//! that share a UMEM each claim a disjoint range of frames; a port only touches its own range.
#![allow(unsafe_code)]

use std::ops::Range;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use pipeline::buffer::{FRAME_SIZE, HEADROOM};

use super::sys::Mmap;
use super::{sys_err, XskError};

/// Headroom the kernel puts in front of every received packet on its own (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Extra headroom registered with the UMEM so that packets start at [`HEADROOM`] in a frame.
pub const UMEM_HEADROOM: u32 = (HEADROOM - XDP_PACKET_HEADROOM) as u32;

/// A registered UMEM. Shared between ports with `Arc`; unmapped when the last port is gone
/// (the kernel keeps its own page references while any socket still uses it).
pub struct Umem {
    area: Mmap,
    frames: u32,
    /// The socket the UMEM was registered on, until the first port binds it.
    owner: Mutex<Option<OwnedFd>>,
    /// Frame ranges claimed by live ports.
    claims: Mutex<Vec<Range<u32>>>,
}

impl Umem {
    /// Maps and registers a UMEM of `frames` frames.
    pub fn new(frames: u32) -> Result<Arc<Umem>, XskError> {
        if frames == 0 || frames > (1 << 20) {
            return Err(XskError::Config {
                field: "frames",
                reason: "must be between 1 and 1048576",
            });
        }
        let len = frames as usize * FRAME_SIZE;
        let area = Mmap::anonymous(len).map_err(sys_err("mmap umem"))?;
        let fd = super::socket::xsk_socket()?;
        let reg = libc::xdp_umem_reg {
            addr: area.ptr() as u64,
            len: len as u64,
            chunk_size: FRAME_SIZE as u32,
            headroom: UMEM_HEADROOM,
            flags: 0,
            tx_metadata_len: 0,
        };
        super::socket::setsockopt(&fd, libc::XDP_UMEM_REG, &reg)
            .map_err(sys_err("setsockopt XDP_UMEM_REG"))?;
        Ok(Arc::new(Umem {
            area,
            frames,
            owner: Mutex::new(Some(fd)),
            claims: Mutex::new(Vec::new()),
        }))
    }

    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Takes the registering socket for the first port to bind, if still unused.
    pub(crate) fn take_owner(&self) -> Option<OwnedFd> {
        self.owner.lock().ok()?.take()
    }

    /// Claims `range` for one port; refused if it is empty, out of bounds or overlaps a claim.
    pub(crate) fn claim(&self, range: Range<u32>) -> Result<(), XskError> {
        if range.is_empty() || range.end > self.frames {
            return Err(XskError::Config {
                field: "frames",
                reason: "range is empty or beyond the UMEM",
            });
        }
        let mut claims = self.claims.lock().map_err(|_| XskError::Poisoned)?;
        if claims
            .iter()
            .any(|c| c.start < range.end && range.start < c.end)
        {
            return Err(XskError::Config {
                field: "frames",
                reason: "range overlaps another port's frames",
            });
        }
        claims.push(range);
        Ok(())
    }

    /// Gives a claimed range back (port drop).
    pub(crate) fn unclaim(&self, range: &Range<u32>) {
        if let Ok(mut claims) = self.claims.lock() {
            claims.retain(|c| c != range);
        }
    }

    /// The bytes of the frame holding UMEM address `addr`, from the frame start.
    ///
    /// Callers must own the frame (it is on no ring the kernel writes to); the port enforces
    /// this by only reaching frames of its claimed range through `&self`/`&mut self`.
    pub(crate) fn frame_ptr(&self, addr: u64) -> *mut u8 {
        let base = addr as usize & !(FRAME_SIZE - 1);
        debug_assert!(base + FRAME_SIZE <= self.area.len());
        // SAFETY: the caller passes an address inside its claimed range, which lies inside
        // the mapping (checked by `claim`), so `base + FRAME_SIZE <= len`.
        unsafe { self.area.ptr().add(base) }
    }
}
