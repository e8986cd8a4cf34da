//! The UMEM: one anonymous mapping cut into [`FRAME_SIZE`] frames, registered with the kernel
//! on an AF_XDP socket. It has the shape of `pipeline::PacketPool` on purpose (same frame size,
//! packets land [`HEADROOM`] bytes into a frame) so that a pool can live in it
//! ([`Umem::pool_memory`]). A queue's own UMEM may have page-sized frames instead
//! ([`SINGLE_BUFFER_FRAME_SIZE`], [`Umem::new_sized`]): without XDP multi-buffer a received
//! frame must fit one UMEM frame, and that doubles what fits. Ports that share a UMEM each claim a disjoint range of frames; a
//! port only touches its own range, and pool frames only while the pool lends them.
#![allow(unsafe_code)]

use std::ops::Range;
use std::os::fd::{OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use pipeline::buffer::{FRAME_SIZE, HEADROOM};
use pipeline::FrameMemory;

use super::sys::Mmap;
use super::sys::{setsockopt, xsk_socket};
use super::{sys_err, XskError, XskMode};

/// Headroom the kernel puts in front of every received packet on its own (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Extra headroom registered with the UMEM so that packets start at [`HEADROOM`] in a frame.
pub const UMEM_HEADROOM: u32 = (HEADROOM - XDP_PACKET_HEADROOM) as u32;
/// UMEM frame size of a queue without XDP multi-buffer (`XDP_USE_SG`): the largest the kernel
/// registers in aligned mode (a page), so that frames up to 4,096 − [`HEADROOM`] bytes
/// arrive whole.
pub const SINGLE_BUFFER_FRAME_SIZE: usize = 4096;

/// A UMEM: memory shared with the kernel, registered on a socket. Shared between ports with
/// `Arc`; unmapped when the last user is gone (the kernel keeps its own page references while
/// any socket still uses it). The kernel's registration lives as long as a socket on it: when
/// the last bound port closes, the next one registers the same memory again.
pub struct Umem {
    area: Mmap,
    frames: u32,
    /// Bytes of one frame (the kernel's chunk size): [`FRAME_SIZE`] or
    /// [`SINGLE_BUFFER_FRAME_SIZE`].
    frame_size: usize,
    /// A socket the UMEM is registered on, not yet bound: the next port binds it.
    owner: Mutex<Option<OwnedFd>>,
    /// Bound sockets of live ports (descriptor and mode): a new port shares one of them.
    bound: Mutex<Vec<(RawFd, XskMode)>>,
    /// Frame ranges claimed by live ports.
    claims: Mutex<Vec<Range<u32>>>,
}

impl Umem {
    /// Maps and registers a UMEM of `frames` frames.
    pub fn new(frames: u32) -> Result<Arc<Umem>, XskError> {
        Umem::new_sized(frames, FRAME_SIZE)
    }

    /// Maps and registers a UMEM of `frames` frames of `frame_size` bytes ([`FRAME_SIZE`] or
    /// [`SINGLE_BUFFER_FRAME_SIZE`]).
    pub fn new_sized(frames: u32, frame_size: usize) -> Result<Arc<Umem>, XskError> {
        let umem = Umem::map_sized(frames, frame_size)?;
        let fd = umem.register()?;
        *umem.owner.lock().map_err(|_| XskError::Poisoned)? = Some(fd);
        Ok(umem)
    }

    /// Maps a UMEM of `frames` frames; the first port to open in it registers it. Also what
    /// a packet pool lives in ([`Umem::pool_memory`]), so it needs no privilege until then.
    pub fn map(frames: u32) -> Result<Arc<Umem>, XskError> {
        Umem::map_sized(frames, FRAME_SIZE)
    }

    fn map_sized(frames: u32, frame_size: usize) -> Result<Arc<Umem>, XskError> {
        if frames == 0 || frames > (1 << 20) {
            return Err(XskError::Config {
                field: "frames",
                reason: "must be between 1 and 1048576",
            });
        }
        if frame_size != FRAME_SIZE && frame_size != SINGLE_BUFFER_FRAME_SIZE {
            return Err(XskError::Config {
                field: "frame_size",
                reason: "must be 2048 or 4096",
            });
        }
        let area = Mmap::anonymous(frames as usize * frame_size).map_err(sys_err("mmap umem"))?;
        Ok(Arc::new(Umem {
            area,
            frames,
            frame_size,
            owner: Mutex::new(None),
            bound: Mutex::new(Vec::new()),
            claims: Mutex::new(Vec::new()),
        }))
    }

    /// A new socket with the UMEM registered on it (`XDP_UMEM_REG`).
    fn register(&self) -> Result<OwnedFd, XskError> {
        let fd = xsk_socket()?;
        let reg = libc::xdp_umem_reg {
            addr: self.area.ptr() as u64,
            len: self.area.len() as u64,
            chunk_size: self.frame_size as u32,
            headroom: UMEM_HEADROOM,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&fd, libc::XDP_UMEM_REG, &reg).map_err(sys_err("setsockopt XDP_UMEM_REG"))?;
        Ok(fd)
    }

    /// The socket a new port binds, and the bound socket (with its mode) it shares the UMEM
    /// with: the registering socket if no port took it yet; else a new socket sharing
    /// `share`, or any bound port's; else (every port closed) a new registration.
    pub(crate) fn socket_for(
        &self,
        share: Option<(RawFd, XskMode)>,
    ) -> Result<(OwnedFd, Option<(RawFd, XskMode)>), XskError> {
        if let Some(fd) = self.owner.lock().map_err(|_| XskError::Poisoned)?.take() {
            return Ok((fd, None));
        }
        let live = share.or_else(|| self.bound.lock().ok()?.first().copied());
        match live {
            Some(live) => Ok((xsk_socket()?, Some(live))),
            None => Ok((self.register()?, None)),
        }
    }

    /// Records a bound port's socket, for later ports to share.
    pub(crate) fn note_bound(&self, fd: RawFd, mode: XskMode) {
        if let Ok(mut bound) = self.bound.lock() {
            bound.push((fd, mode));
        }
    }

    /// Forgets a port's socket before it is closed.
    pub(crate) fn note_closing(&self, fd: RawFd) {
        if let Ok(mut bound) = self.bound.lock() {
            bound.retain(|b| b.0 != fd);
        }
    }

    /// The first `frames` frames as the memory of a packet pool
    /// (`pipeline::PacketPool::over`), which keeps the mapping alive. The pool must be the
    /// only one reaching those frames: ports in this UMEM get them only by the pool lending
    /// them, and claim their own frames ([`Umem::claim`]) from the rest.
    pub fn pool_memory(self: &Arc<Umem>, frames: u32) -> Result<FrameMemory, XskError> {
        if self.frame_size != FRAME_SIZE {
            return Err(XskError::Config {
                field: "frame_size",
                reason: "a pool lives only in a UMEM of 2048-byte frames",
            });
        }
        if frames > self.frames {
            return Err(XskError::Config {
                field: "frames",
                reason: "the pool is larger than the UMEM",
            });
        }
        let ptr = NonNull::new(self.area.ptr()).ok_or(XskError::Config {
            field: "umem",
            reason: "mapping at address 0",
        })?;
        self.claim(0..frames.max(1))?;
        // SAFETY: the mapping is valid for `frames * FRAME_SIZE <= len` bytes while the `Arc`
        // handed over as owner lives. The range is claimed for the pool, so no port is given
        // those frames by `claim`; a port reaches a pool frame only after the pool lends it
        // (`PacketPool::lend`) and stops at its return, as `FrameMemory::external` requires.
        // The claim is never given back, so it outlives the pool.
        Ok(unsafe { FrameMemory::external(ptr, frames as usize * FRAME_SIZE, self.clone()) })
    }

    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Bytes of one frame.
    pub fn frame_size(&self) -> usize {
        self.frame_size
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

    /// The first unclaimed range of `len` frames, at a multiple of `len`, if any (for a port
    /// opening beside a pool; the caller claims it by opening).
    pub fn free_range(&self, len: u32) -> Option<Range<u32>> {
        let claims = self.claims.lock().ok()?;
        (0..self.frames / len.max(1))
            .map(|i| i * len..(i + 1) * len)
            .find(|r| !claims.iter().any(|c| c.start < r.end && r.start < c.end))
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
        let base = addr as usize & !(self.frame_size - 1);
        debug_assert!(base + self.frame_size <= self.area.len());
        // SAFETY: the caller passes an address inside its claimed range, which lies inside
        // the mapping (checked by `claim`), so `base + frame_size <= len`.
        unsafe { self.area.ptr().add(base) }
    }
}
