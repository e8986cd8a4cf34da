//! `XskPort`: one AF_XDP socket bound to (interface, queue) with its four rings, its share of
//! a UMEM and the XDP program that steers the queue to it — its own, or the one the ports on
//! the interface's other queues share (the kernel takes one program per interface). The batch
//! calls (`rx_burst`,
//! `tx_burst`, `poll`) never allocate beyond the caller's vectors' capacity, never return
//! `Result` and never panic; what goes wrong on the hot path is counted in [`PortCounters`].
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline::buffer::{FRAME_SIZE, HEADROOM};

use super::ring::Ring;
use super::sys;
use super::sys::setsockopt;
use super::umem::Umem;
use super::xdp_prog::{XdpMode, XdpModeRequest, XdpProgram};
use super::{sys_err, XskError, XskMode};

/// How to bind the socket with respect to zero-copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// Let the kernel pick zero-copy where the driver supports it, copy otherwise.
    #[default]
    Auto,
    /// Copy mode (`XDP_COPY`).
    Copy,
    /// Zero-copy or fail (`XDP_ZEROCOPY`).
    ZeroCopy,
}

/// Port configuration.
#[derive(Clone, Debug)]
pub struct XskConfig {
    /// UMEM frames when the port creates its own UMEM ([`XskPort::open`]).
    pub frames: u32,
    /// Bytes of each of those frames: [`FRAME_SIZE`], or
    /// [`SINGLE_BUFFER_FRAME_SIZE`](super::SINGLE_BUFFER_FRAME_SIZE) so that
    /// a socket without multi-buffer receives frames up to 4,096 − [`HEADROOM`] bytes. A port
    /// in a UMEM it is given has that UMEM's.
    pub frame_size: usize,
    /// Entries of each ring (rx, tx, fill, completion); a power of two.
    pub ring_size: u32,
    /// XDP hook to attach the redirect program to.
    pub xdp_mode: XdpModeRequest,
    /// Zero-copy or copy.
    pub bind_mode: BindMode,
    /// Ask for `XDP_USE_NEED_WAKEUP` (syscalls only when the kernel asks).
    pub need_wakeup: bool,
    /// How long to retry a bind that fails with `EBUSY` (a previous socket on this queue is
    /// still being torn down by the kernel).
    pub bind_timeout: Duration,
    /// Slots of the XSKMAP (queues of the interface that can be steered) when the port attaches
    /// the program; a port on a shared program has that program's.
    pub max_queues: u32,
    /// The caller feeds the fill ring with frames it lends ([`XskPort::lend_fill`], e.g. a
    /// packet pool's in the same UMEM) and may transmit them ([`XskPort::tx_lent`]); the
    /// port's own frames then only carry `tx_burst` copies.
    pub lend_fill: bool,
    /// Steer the queue's received frames to the socket with the XDP redirect program (attached,
    /// or joined when given). `false` makes a transmit-only socket that leaves the
    /// interface's receive path alone (a generator's port on a NIC that also receives).
    pub steer: bool,
    /// Ask for XDP multi-buffer (`XDP_USE_SG`): frames longer than a UMEM frame arrive and
    /// leave as chains of descriptors ([`RxDesc::more`]). Taken where the kernel accepts it
    /// ([`XskMode::multi_buffer`]); not asked with [`XskConfig::lend_fill`] (a pool's frames
    /// hold whole packets), and a socket sharing a UMEM has what the UMEM's first socket got.
    pub multi_buffer: bool,
}

impl Default for XskConfig {
    fn default() -> XskConfig {
        XskConfig {
            frames: 4096,
            frame_size: FRAME_SIZE,
            ring_size: 2048,
            xdp_mode: XdpModeRequest::Auto,
            bind_mode: BindMode::Auto,
            need_wakeup: true,
            bind_timeout: Duration::from_secs(5),
            max_queues: 64,
            lend_fill: false,
            steer: true,
            multi_buffer: true,
        }
    }
}

/// Kernel counters of one socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Packets dropped for reasons other than invalid descriptors (e.g. no room).
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the tx ring.
    pub tx_invalid_descs: u64,
    /// Packets dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a packet arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the tx ring empty when woken.
    pub tx_ring_empty_descs: u64,
}

/// Counters of things the port's own batch calls had to skip (hot path, no `Result`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Packets not queued by `tx_burst` because they exceed a frame (a chain of
    /// [`MAX_CHAIN_DESCS`] frames with multi-buffer).
    pub tx_too_long: u64,
    /// Packets `tx_burst` queued in more than one frame (multi-buffer).
    pub tx_multi_buffer: u64,
    /// Packets not queued by `tx_burst` for lack of free frames or tx ring room.
    pub tx_no_room: u64,
    /// `sendto`/`recvfrom` wake-ups issued.
    pub wakeups: u64,
    /// Wake-ups that failed with an unexpected errno.
    pub wakeup_errors: u64,
    /// Frames handed back by `recycle` that are not this port's.
    pub foreign_frames: u64,
}

/// One received packet, or with multi-buffer one piece of it: its UMEM address (the first
/// byte) and length. The frame is the caller's until it is given back with
/// [`XskPort::recycle`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxDesc {
    /// UMEM address of the first byte of the packet.
    pub addr: u64,
    /// Length of the packet (of this piece).
    pub len: u32,
    /// The packet goes on in the next descriptor (`XDP_PKT_CONTD`, multi-buffer only).
    pub more: bool,
}

/// Most descriptors of one multi-buffer packet: the kernel's `MAX_SKB_FRAGS` (17) pieces
/// plus the head, as its copy-mode transmit and receive allow.
pub const MAX_CHAIN_DESCS: usize = 18;

/// The longest frame a multi-buffer transmit sends: 17 frames of [`FRAME_SIZE`] bytes (the
/// kernel refuses a longer chain as an invalid descriptor).
pub const MAX_CHAIN_FRAME: usize = (MAX_CHAIN_DESCS - 1) * FRAME_SIZE;

/// An AF_XDP port on one (interface, queue).
pub struct XskPort {
    // Field order is drop order: let go of the program first (`Drop` has already emptied this
    // queue's slot, so nothing is steered here any more; the last port of the interface
    // detaches it), then unmap the rings, close the socket and finally let go of the UMEM.
    prog: Option<Arc<XdpProgram>>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    fd: OwnedFd,
    umem: Arc<Umem>,
    frames: Range<u32>,
    /// Bytes of one UMEM frame.
    chunk: u64,
    free: Vec<u64>,
    mode: XskMode,
    counters: PortCounters,
    tx_in_flight: u32,
    ifindex: u32,
    queue: u32,
    /// [`XskConfig::lend_fill`].
    lend_fill: bool,
    /// Completed lent frames (addresses), for [`XskPort::take_returned`].
    returned: Vec<u64>,
}

/// `getsockopt(fd, SOL_XDP, opt)` into a zeroed `T`; returns the value and the length the
/// kernel wrote.
fn getsockopt<T: Copy>(fd: &OwnedFd, opt: libc::c_int) -> io::Result<(T, usize)> {
    // SAFETY: only used with plain-old-data kernel structs, for which all-zero is valid.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes and `len` is a valid in/out length.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            &mut value as *mut T as *mut libc::c_void,
            &mut len,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((value, len as usize))
    }
}

impl XskPort {
    /// Opens a port on `ifname` queue `queue` with a UMEM of its own (`config.frames` frames),
    /// attaching the XDP program to the interface. Ports on further queues of the interface
    /// share it: [`XskPort::open_with_program`] with [`XskPort::program`].
    pub fn open(ifname: &str, queue: u32, config: &XskConfig) -> Result<XskPort, XskError> {
        let umem = Umem::new_sized(config.frames, config.frame_size)?;
        XskPort::open_in_with_program(ifname, queue, config, &umem, 0..config.frames, None, None)
    }

    /// Opens a port on `ifname` queue `queue` with a UMEM of its own, steered by `prog`, the
    /// program another port on the interface attached (its [`XskPort::program`]). The program
    /// stays attached until its last port drops.
    pub fn open_with_program(
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        prog: &Arc<XdpProgram>,
    ) -> Result<XskPort, XskError> {
        let umem = Umem::new_sized(config.frames, config.frame_size)?;
        let frames = 0..config.frames;
        XskPort::open_in_with_program(ifname, queue, config, &umem, frames, None, Some(prog))
    }

    /// Opens a port using frames `frames` of `umem`. The first port on a UMEM binds the socket
    /// the UMEM was registered on (or registers it, [`Umem::map`]); later ones bind with
    /// `XDP_SHARED_UMEM` to `share` (a live port on the same UMEM), or when it is `None` to
    /// any live port of the UMEM, with fill and completion rings of their own — which the
    /// kernel allows only on another interface or queue than the shared port's — and inherit
    /// its copy/zero-copy and need-wakeup choice (`config.bind_mode`/`need_wakeup` are
    /// ignored).
    pub fn open_in(
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        umem: &Arc<Umem>,
        frames: Range<u32>,
        share: Option<&XskPort>,
    ) -> Result<XskPort, XskError> {
        XskPort::open_in_with_program(ifname, queue, config, umem, frames, share, None)
    }

    /// [`XskPort::open_in`], steered by `prog` when given (a program attached to `ifname` by
    /// another port, which must match `config.xdp_mode` unless that is `Auto`, and whose map
    /// has a slot for `queue`), else by a program the port attaches.
    pub fn open_in_with_program(
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        umem: &Arc<Umem>,
        frames: Range<u32>,
        share: Option<&XskPort>,
        prog: Option<&Arc<XdpProgram>>,
    ) -> Result<XskPort, XskError> {
        let ifindex = sys::if_index(ifname).ok_or_else(|| XskError::NoSuchInterface {
            ifname: ifname.to_string(),
        })?;
        if !config.ring_size.is_power_of_two() || config.ring_size < 2 {
            return Err(XskError::Config {
                field: "ring_size",
                reason: "must be a power of two of at least 2",
            });
        }
        if let Some(prog) = prog {
            check_shared_program(prog, ifindex, queue, config.xdp_mode)?;
        } else if queue >= config.max_queues {
            return Err(XskError::Config {
                field: "queue",
                reason: "must be below max_queues",
            });
        }
        umem.claim(frames.clone())?;
        let opened = XskPort::bind_and_attach(ifindex, queue, config, umem, &frames, share, prog);
        if opened.is_err() {
            umem.unclaim(&frames);
        }
        opened
    }

    fn bind_and_attach(
        ifindex: u32,
        queue: u32,
        config: &XskConfig,
        umem: &Arc<Umem>,
        frames: &Range<u32>,
        share: Option<&XskPort>,
        prog: Option<&Arc<XdpProgram>>,
    ) -> Result<XskPort, XskError> {
        let share = match share {
            Some(other) if !Arc::ptr_eq(&other.umem, umem) => {
                return Err(XskError::Config {
                    field: "share",
                    reason: "that port is on another UMEM",
                });
            }
            Some(other) => Some((other.fd.as_raw_fd(), other.mode)),
            None => None,
        };
        let (fd, shared_with) = umem.socket_for(share)?;
        let size = config.ring_size;
        setsockopt(&fd, libc::XDP_RX_RING, &size).map_err(sys_err("setsockopt XDP_RX_RING"))?;
        setsockopt(&fd, libc::XDP_TX_RING, &size).map_err(sys_err("setsockopt XDP_TX_RING"))?;
        setsockopt(&fd, libc::XDP_UMEM_FILL_RING, &size)
            .map_err(sys_err("setsockopt XDP_UMEM_FILL_RING"))?;
        setsockopt(&fd, libc::XDP_UMEM_COMPLETION_RING, &size)
            .map_err(sys_err("setsockopt XDP_UMEM_COMPLETION_RING"))?;
        let (off, off_len) = getsockopt::<libc::xdp_mmap_offsets>(&fd, libc::XDP_MMAP_OFFSETS)
            .map_err(sys_err("getsockopt XDP_MMAP_OFFSETS"))?;
        if off_len != size_of::<libc::xdp_mmap_offsets>() {
            return Err(XskError::Config {
                field: "kernel",
                reason: "XDP_MMAP_OFFSETS without ring flags (kernel older than 5.4)",
            });
        }
        let rx = Ring::map(&fd, &off.rx, size, libc::XDP_PGOFF_RX_RING)
            .map_err(sys_err("mmap rx ring"))?;
        let tx = Ring::map(&fd, &off.tx, size, libc::XDP_PGOFF_TX_RING)
            .map_err(sys_err("mmap tx ring"))?;
        let fill = Ring::map(
            &fd,
            &off.fr,
            size,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
        )
        .map_err(sys_err("mmap fill ring"))?;
        let comp = Ring::map(
            &fd,
            &off.cr,
            size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
        )
        .map_err(sys_err("mmap completion ring"))?;

        let mut flags = match config.bind_mode {
            BindMode::Auto => 0,
            BindMode::Copy => libc::XDP_COPY,
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
        };
        let mut need_wakeup = config.need_wakeup;
        if need_wakeup {
            flags |= libc::XDP_USE_NEED_WAKEUP;
        }
        let mut multi_buffer = config.multi_buffer && !config.lend_fill;
        if let Some((_, first)) = shared_with {
            // A sharing socket may not pass copy/zero-copy/need-wakeup/multi-buffer flags
            // (EINVAL): it inherits them from the socket that registered the UMEM.
            flags = libc::XDP_SHARED_UMEM;
            need_wakeup = first.need_wakeup;
            multi_buffer = first.multi_buffer;
        } else if multi_buffer {
            flags |= libc::XDP_USE_SG;
        }
        let mut addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: shared_with.map_or(0, |(fd, _)| fd as u32),
        };
        match bind_retrying(&fd, &addr, config.bind_timeout) {
            // A kernel without multi-buffer (before 6.6: EINVAL), or a zero-copy driver
            // without it (EOPNOTSUPP): bind single-buffer, frames up to one UMEM frame.
            Err(XskError::Sys { source, .. })
                if flags & libc::XDP_USE_SG != 0
                    && matches!(source.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) =>
            {
                multi_buffer = false;
                addr.sxdp_flags &= !libc::XDP_USE_SG;
                bind_retrying(&fd, &addr, config.bind_timeout)?;
            }
            other => other?,
        }
        let (opts, _) = getsockopt::<libc::xdp_options>(&fd, libc::XDP_OPTIONS)
            .map_err(sys_err("getsockopt XDP_OPTIONS"))?;

        let prog = match (prog, config.steer) {
            (_, false) => None,
            (Some(prog), true) => Some(prog.clone()),
            (None, true) => Some(Arc::new(XdpProgram::attach(
                ifindex,
                config.max_queues,
                config.xdp_mode,
            )?)),
        };
        if let Some(prog) = &prog {
            prog.insert(queue, &fd)?;
        }

        let mode = XskMode {
            xdp: prog.as_ref().map(|p| p.mode()),
            zero_copy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
            need_wakeup,
            shared_umem: shared_with.is_some(),
            multi_buffer,
        };
        let chunk = umem.frame_size() as u64;
        let free = (frames.start..frames.end)
            .rev()
            .map(|f| f as u64 * chunk)
            .collect();
        let mut port = XskPort {
            prog,
            rx,
            tx,
            fill,
            comp,
            fd,
            umem: umem.clone(),
            frames: frames.clone(),
            chunk,
            free,
            mode,
            counters: PortCounters::default(),
            tx_in_flight: 0,
            ifindex,
            queue,
            lend_fill: config.lend_fill,
            returned: Vec::with_capacity(config.ring_size as usize),
        };
        umem.note_bound(port.fd.as_raw_fd(), mode);
        port.refill();
        Ok(port)
    }

    /// Moves up to `ring_size` receive descriptors into `out` (at most `max`); returns how
    /// many. Allocation-free when `out` has the capacity. With multi-buffer a burst holds
    /// whole packets: the pieces of one that are not all on the ring yet stay there for the
    /// next burst (and `max` grows to [`MAX_CHAIN_DESCS`] if one packet needs it), unless
    /// [`MAX_CHAIN_DESCS`] pieces never end, which the caller drops as a malformed chain.
    pub fn rx_burst(&mut self, out: &mut Vec<RxDesc>, max: u32) -> u32 {
        let mut n = self.rx.peek(max);
        if self.mode.multi_buffer && n > 0 && self.rx_more(n - 1) {
            n = self.whole_packets(n);
        }
        for i in 0..n {
            let d = self.rx.read(i);
            out.push(RxDesc {
                addr: d.addr,
                len: d.len,
                more: d.options & libc::XDP_PKT_CONTD != 0,
            });
        }
        self.rx.release(n);
        n
    }

    /// Whether receive descriptor `i` of the current peek goes on in the next.
    fn rx_more(&self, i: u32) -> bool {
        self.rx.read(i).options & libc::XDP_PKT_CONTD != 0
    }

    /// How many of the `n` peeked descriptors, whose last does not end a packet, to take:
    /// up to the end of the last whole packet; if none ends, the first packet's pieces when
    /// they are on the ring (looking up to [`MAX_CHAIN_DESCS`] ahead), or all of those when
    /// that many never end; else none.
    #[cold]
    fn whole_packets(&mut self, n: u32) -> u32 {
        let mut end = n;
        while end > 0 && self.rx_more(end - 1) {
            end -= 1;
        }
        if end > 0 {
            return end;
        }
        let wide = self.rx.peek(MAX_CHAIN_DESCS as u32);
        match (0..wide).find(|&i| !self.rx_more(i)) {
            Some(last) => last + 1,
            None if wide == MAX_CHAIN_DESCS as u32 => wide,
            None => 0,
        }
    }

    /// The bytes of a received packet (or any `addr`/`len` inside one of this port's frames;
    /// an address outside them yields an empty slice).
    pub fn packet(&self, addr: u64, len: u32) -> &[u8] {
        let Some((start, room)) = self.locate(addr) else {
            return &[];
        };
        let len = (len as usize).min(room);
        // SAFETY: `start..start+len` lies within one frame of this port's claimed range (see
        // `locate`); the frame is not on a kernel ring while the caller holds its address, and
        // `&self` keeps `packet_mut` from aliasing it.
        unsafe { std::slice::from_raw_parts(start, len) }
    }

    /// The whole frame holding `addr`, from its first byte (headroom included), writable.
    pub fn frame_mut(&mut self, addr: u64) -> &mut [u8] {
        let base = addr & !(self.chunk - 1);
        let Some((start, room)) = self.locate(base) else {
            return &mut [];
        };
        // SAFETY: as in `packet`, and `&mut self` makes this the only borrow of the frame.
        unsafe { std::slice::from_raw_parts_mut(start, room) }
    }

    /// Pointer to `addr` and the bytes left in its frame, if the frame is this port's.
    fn locate(&self, addr: u64) -> Option<(*mut u8, usize)> {
        let frame = addr / self.chunk;
        if frame >= self.frames.end as u64 || frame < self.frames.start as u64 {
            return None;
        }
        let within = (addr % self.chunk) as usize;
        // SAFETY: `within < chunk`, the UMEM's frame size, so the pointer stays inside the
        // frame.
        let start = unsafe { self.umem.frame_ptr(addr).add(within) };
        Some((start, self.chunk as usize - within))
    }

    /// Gives a received (or allocated) frame back to the port's free list.
    pub fn recycle(&mut self, addr: u64) {
        let frame = addr / self.chunk;
        if frame < self.frames.start as u64 || frame >= self.frames.end as u64 {
            self.counters.foreign_frames += 1;
            return;
        }
        self.free.push(frame * self.chunk);
    }

    /// Tops the fill ring up to [`XskPort::rx_frames`] frames waiting for packets (so that the
    /// other half of the port's frames stays free for `tx_burst`) and wakes the kernel if it
    /// asked; returns how many frames were given.
    pub fn refill(&mut self) -> u32 {
        if self.lend_fill {
            self.wake_rx_if_asked();
            return 0;
        }
        let waiting = self.fill.outstanding();
        let want = self
            .rx_frames()
            .saturating_sub(waiting)
            .min(self.free.len() as u32);
        let n = self.fill.reserve(want);
        for i in 0..n {
            let addr = self.free.pop().unwrap_or(0);
            self.fill.write(i, addr);
        }
        if n > 0 {
            self.fill.submit(n);
        }
        self.wake_rx_if_asked();
        n
    }

    fn wake_rx_if_asked(&mut self) {
        if self.mode.need_wakeup && self.fill.needs_wakeup() {
            self.wake_rx();
        }
    }

    /// How many lent frames would top the fill ring up to [`XskPort::rx_frames`].
    pub fn fill_wanted(&mut self) -> u32 {
        self.rx_frames().saturating_sub(self.fill.outstanding())
    }

    /// Puts frames the caller lends (frame addresses in the UMEM, outside the port's own
    /// range) on the fill ring and wakes the kernel if it asked; returns how many fit, from
    /// the front. They come back through `rx_burst` holding packets.
    pub fn lend_fill(&mut self, frames: &[u64]) -> u32 {
        let n = self.fill.reserve(frames.len() as u32);
        for (i, &addr) in frames.iter().take(n as usize).enumerate() {
            self.fill.write(i as u32, addr);
        }
        if n > 0 {
            self.fill.submit(n);
        }
        self.wake_rx_if_asked();
        n
    }

    /// Queues packets in frames the caller lends (anywhere in the UMEM; `XskConfig::lend_fill`
    /// ports only) as they are; returns how many were queued, from the front. Each comes back
    /// through [`XskPort::take_returned`] once the kernel has sent it.
    pub fn tx_lent(&mut self, descs: &[RxDesc]) -> u32 {
        if !self.lend_fill {
            self.counters.foreign_frames += 1;
            return 0;
        }
        self.reap_completions();
        let end = self.umem.frames() as u64 * self.chunk;
        let inside = descs
            .iter()
            .take_while(|d| d.addr + d.len as u64 <= end)
            .count();
        self.tx_descs(&descs[..inside])
    }

    /// Moves the addresses of lent frames whose transmission completed into `out`.
    pub fn take_returned(&mut self, out: &mut Vec<u64>) {
        out.append(&mut self.returned);
    }

    /// Copies `packets` into free frames and queues them for transmission, from the front
    /// until the ring or the free frames run out; returns how many it took: queued, or
    /// dropped as too long (counted in [`PortCounters`]). The ones after are not taken (and
    /// counted `tx_no_room`). Queued ones leave at the next [`XskPort::poll`].
    pub fn tx_burst(&mut self, packets: &[&[u8]]) -> u32 {
        self.reap_completions();
        let mut room = self.tx.reserve(packets.len() as u32);
        let mut queued = 0u32;
        let mut taken = 0u32;
        for pkt in packets {
            if pkt.len() > self.chunk as usize - HEADROOM {
                if !self.mode.multi_buffer || pkt.len() > MAX_CHAIN_FRAME {
                    self.counters.tx_too_long += 1;
                    taken += 1;
                    continue;
                }
                match self.queue_chain(pkt, queued, room) {
                    Some(used) => {
                        queued += used;
                        taken += 1;
                        self.counters.tx_multi_buffer += 1;
                        let rest = (packets.len() as u32).saturating_sub(taken);
                        room = self.tx.reserve(queued + rest).max(queued);
                        continue;
                    }
                    None => break,
                }
            }
            if queued == room {
                break;
            }
            let Some(base) = self.free.pop() else {
                break;
            };
            let addr = base + HEADROOM as u64;
            let frame = self.frame_mut(base);
            let Some(dst) = frame.get_mut(HEADROOM..HEADROOM + pkt.len()) else {
                // Only this port's frames are on its free list, so this does not happen.
                self.counters.foreign_frames += 1;
                taken += 1;
                continue;
            };
            dst.copy_from_slice(pkt);
            self.tx.write(
                queued,
                libc::xdp_desc {
                    addr,
                    len: pkt.len() as u32,
                    options: 0,
                },
            );
            queued += 1;
            taken += 1;
        }
        self.counters.tx_no_room += (packets.len() as u32 - taken) as u64;
        self.tx_submit(queued);
        taken
    }

    /// Copies `pkt` into as many free frames as it needs, whole frames each, and writes them
    /// as one chain (`XDP_PKT_CONTD` on all but the last) from slot `at` of the transmit
    /// reservation, `room` of which are reserved; returns the slots used, or `None` (nothing
    /// written) when the ring or the free frames run out.
    #[cold]
    fn queue_chain(&mut self, pkt: &[u8], at: u32, room: u32) -> Option<u32> {
        let pieces = pkt.len().div_ceil(self.chunk as usize) as u32;
        if self.free.len() < pieces as usize
            || (at + pieces > room && self.tx.reserve(at + pieces) < at + pieces)
        {
            return None;
        }
        for (i, piece) in pkt.chunks(self.chunk as usize).enumerate() {
            let base = self.free.pop()?;
            let frame = self.frame_mut(base);
            let Some(dst) = frame.get_mut(..piece.len()) else {
                // Only this port's frames are on its free list, so this does not happen.
                self.counters.foreign_frames += 1;
                return None;
            };
            dst.copy_from_slice(piece);
            let last = i + 1 == pieces as usize;
            self.tx.write(
                at + i as u32,
                libc::xdp_desc {
                    addr: base,
                    len: piece.len() as u32,
                    options: if last { 0 } else { libc::XDP_PKT_CONTD },
                },
            );
        }
        Some(pieces)
    }

    /// Takes a free frame for the caller to fill and pass to [`XskPort::tx_frames`].
    pub fn alloc_frame(&mut self) -> Option<u64> {
        self.free.pop()
    }

    /// Queues frames the caller owns (received or allocated, this port's) as they are;
    /// returns how many were queued, stopping at the first frame that is not this port's.
    /// Frames not queued remain the caller's. They leave at the next [`XskPort::poll`].
    pub fn tx_frames(&mut self, descs: &[RxDesc]) -> u32 {
        self.reap_completions();
        // Only this port's frames: completions return to this port's free list.
        let own = descs
            .iter()
            .take_while(|d| self.locate(d.addr).is_some())
            .count();
        if own < descs.len() {
            self.counters.foreign_frames += 1;
        }
        self.tx_descs(&descs[..own])
    }

    /// Queues `descs` as they are, as many as the ring has room for; returns how many.
    fn tx_descs(&mut self, descs: &[RxDesc]) -> u32 {
        let n = self.tx.reserve(descs.len() as u32);
        for (i, d) in descs.iter().take(n as usize).enumerate() {
            self.tx.write(
                i as u32,
                libc::xdp_desc {
                    addr: d.addr,
                    len: d.len,
                    options: if d.more { libc::XDP_PKT_CONTD } else { 0 },
                },
            );
        }
        self.tx_submit(n);
        n
    }

    /// Publishes `n` descriptors. The kick (a `sendto`, which in copy mode is where the kernel
    /// does the transmit) waits for [`XskPort::poll`], so that everything a PMD iteration
    /// queued for this port goes out with one system call.
    fn tx_submit(&mut self, n: u32) {
        if n > 0 {
            self.tx.submit(n);
            self.tx_in_flight += n;
        }
    }

    /// Kicks the kernel's transmit if it asked and descriptors are waiting. In copy mode the
    /// kernel sends at most 32 per kick, so the PMD loop calls `poll` every iteration.
    fn kick_tx(&mut self) {
        if self.tx.outstanding() == 0 {
            return;
        }
        if !self.mode.need_wakeup || self.tx.needs_wakeup() {
            // SAFETY: a zero-length send with no buffer and no address only wakes the socket.
            let ret = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            self.note_wakeup(ret);
        }
    }

    fn wake_rx(&mut self) {
        // SAFETY: a zero-length receive with no buffer and no address only wakes the socket.
        let ret = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        self.note_wakeup(ret);
    }

    fn note_wakeup(&mut self, ret: isize) {
        self.counters.wakeups += 1;
        if ret < 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            let benign = [libc::EAGAIN, libc::EBUSY, libc::ENOBUFS, libc::ENETDOWN];
            if !benign.contains(&errno) {
                self.counters.wakeup_errors += 1;
            }
        }
    }

    /// Moves completed transmissions back to the free list; returns how many.
    pub fn reap_completions(&mut self) -> u32 {
        let n = self.comp.peek(self.comp.size());
        for i in 0..n {
            let addr = self.comp.read(i);
            if self.locate(addr).is_some() {
                self.free.push(addr & !(self.chunk - 1));
            } else if self.lend_fill {
                self.returned.push(addr);
            } else {
                self.counters.foreign_frames += 1;
            }
        }
        if n > 0 {
            self.comp.release(n);
            self.tx_in_flight = self.tx_in_flight.saturating_sub(n);
        }
        n
    }

    /// Housekeeping for one PMD iteration: reap completions, kick pending transmissions,
    /// refill the fill ring.
    pub fn poll(&mut self) {
        self.reap_completions();
        self.kick_tx();
        self.refill();
    }

    /// Descriptors queued for transmission whose completion has not been reaped.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx_in_flight
    }

    /// Frames kept on the fill ring for receiving: half the port's frames, at most a ring;
    /// half a ring of lent frames with [`XskConfig::lend_fill`].
    pub fn rx_frames(&self) -> u32 {
        if self.lend_fill {
            return (self.fill.size() / 2).max(1);
        }
        (self.frames.len() as u32 / 2).clamp(1, self.fill.size())
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Kernel counters of the socket.
    pub fn stats(&self) -> Result<XskStats, XskError> {
        let (s, _) = getsockopt::<libc::xdp_statistics>(&self.fd, libc::XDP_STATISTICS)
            .map_err(sys_err("getsockopt XDP_STATISTICS"))?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }

    /// The port's own skip counters.
    pub fn counters(&self) -> PortCounters {
        self.counters
    }

    /// What the kernel gave the port.
    pub fn mode(&self) -> XskMode {
        self.mode
    }

    /// The UMEM (to open further ports on it).
    pub fn umem(&self) -> &Arc<Umem> {
        &self.umem
    }

    /// The longest frame the port receives and sends in one UMEM frame: its frame size less
    /// [`HEADROOM`] (with multi-buffer longer ones come and go as chains).
    pub fn max_single_frame(&self) -> usize {
        self.chunk as usize - HEADROOM
    }

    /// The XDP program steering the port's queue, to open ports on the interface's other
    /// queues with ([`XskPort::open_with_program`]).
    pub fn program(&self) -> Option<&Arc<XdpProgram>> {
        self.prog.as_ref()
    }

    /// The interface index and queue the port is bound to.
    pub fn binding(&self) -> (u32, u32) {
        (self.ifindex, self.queue)
    }

    /// The socket descriptor (for `poll(2)` in an idle loop).
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl Drop for XskPort {
    fn drop(&mut self) {
        // Stop steering first so that no packet is redirected to a closing socket; that is all
        // this port may do to a program other queues still use. The last port's `prog` drops
        // the link, which detaches the program itself.
        if let Some(prog) = &self.prog {
            let _ = prog.remove(self.queue);
        }
        self.umem.note_closing(self.fd.as_raw_fd());
        self.umem.unclaim(&self.frames);
    }
}

/// Refuses a shared program that cannot steer `queue` of `ifindex` as `request` asks.
fn check_shared_program(
    prog: &XdpProgram,
    ifindex: u32,
    queue: u32,
    request: XdpModeRequest,
) -> Result<(), XskError> {
    if prog.ifindex() != ifindex {
        return Err(XskError::Config {
            field: "prog",
            reason: "attached to another interface",
        });
    }
    if queue >= prog.max_queues() {
        return Err(XskError::Config {
            field: "queue",
            reason: "beyond the XSKMAP of the interface's XDP program",
        });
    }
    let fits = match request {
        XdpModeRequest::Auto => true,
        XdpModeRequest::Driver => prog.mode() == XdpMode::Driver,
        XdpModeRequest::Generic => prog.mode() == XdpMode::Generic,
    };
    if !fits {
        return Err(XskError::Config {
            field: "xdp_mode",
            reason: "differs from the mode of the interface's XDP program",
        });
    }
    Ok(())
}

/// Binds, retrying `EBUSY` until `timeout`: the kernel frees a previous socket on the same
/// queue asynchronously after its process exits.
fn bind_retrying(
    fd: &OwnedFd,
    addr: &libc::sockaddr_xdp,
    timeout: Duration,
) -> Result<(), XskError> {
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: `addr` is a live `sockaddr_xdp` of the size passed.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                addr as *const libc::sockaddr_xdp as *const libc::sockaddr,
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline {
            return Err(XskError::Sys {
                what: "bind AF_XDP socket",
                source: err,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
