//! [`PortIo`] for one AF_XDP queue. On its own, a queue has a UMEM of its own and costs
//! one copy each way: received frames are copied out through the caller's closure and
//! handed straight back to the fill ring, transmitted ones are copied into its frames.
//!
//! The PMD that receives on a queue moves it into the UMEM its packet pool is made of
//! ([`PortIo::join_pool`]): the socket is opened again there with `XDP_SHARED_UMEM`, its
//! fill ring gets empty pool frames ([`RxSink::lend`]), and what the kernel writes into them
//! becomes packets with no copy ([`RxSink::adopt`]). Packets of that pool sent on the queue
//! go onto its transmit ring as they are and come back through the completion ring
//! ([`RxSink::give_back`]). So forwarding between two queues of one PMD copies nothing;
//! a packet from another PMD's pool is copied once, into the queue's own frames (a range
//! of the same UMEM). The queue records every pool frame it holds, so that leaving the
//! pool ([`PortIo::leave_pool`], when the queue moves to another PMD or goes away) gives
//! each one back after the socket is closed. The queue stays closed until the PMD that takes
//! it on next opens it in its own pool (or, with none, alone: [`PortIo::open_alone`]), so
//! that a move re-opens the socket once.
//!
//! The queues of one port share the interface's XDP program: the first queue attaches it,
//! the others open with [`AfXdpQueue::open_with_program`]; each queue keeps it, so that
//! re-opening a socket leaves it attached. `info` says which XDP hook the kernel gave the
//! port (`native` or `generic`, the latter also when `xdp-mode=auto` fell back), copy or
//! zero-copy, and `pmd-pool` when the queue is in its PMD's pool; `counters` adds the
//! socket's `XDP_STATISTICS` to the port's own.

use std::os::fd::RawFd;
use std::sync::Arc;

use pipeline::buffer::FRAME_SIZE;
use pipeline::{PacketId, PacketPool};

use crate::afxdp::{
    PortCounters, RxDesc, Umem, XdpMode, XdpProgram, XskConfig, XskError, XskPort, XskStats,
    MAX_CHAIN_DESCS, MAX_CHAIN_FRAME, SINGLE_BUFFER_FRAME_SIZE,
};

use pipeline::{send_copies, RxSink, Sent};

use crate::{PortError, PortIo, PortLoss, PortLosses, QueueInfo};

/// Frames of its own a queue in a pool's UMEM keeps for copies from other pools.
pub const JOINED_OWN_FRAMES: u32 = 1024;

/// One AF_XDP queue as a [`PortIo`].
pub struct AfXdpQueue {
    /// `None` only when re-opening failed (the queue then receives and sends nothing).
    port: Option<XskPort>,
    /// Receive descriptors of the current burst; capacity fixed at open (one ring).
    descs: Vec<RxDesc>,
    name: String,
    ifname: String,
    queue: u32,
    config: XskConfig,
    prog: Arc<XdpProgram>,
    /// The pool whose UMEM the socket is in, if it joined one.
    joined: Option<Joined>,
    /// Scratch for lent frame addresses and completed ones.
    addrs: Vec<u64>,
    /// A multi-buffer frame being gathered from its pieces.
    chain: Chain,
    /// Whether the first socket got multi-buffer (`XDP_USE_SG`): what frame length the port
    /// takes ([`PortIo::max_frame_len`]).
    multi_buffer: bool,
    counters: QueueCounters,
}

/// A queue's share of a pool it joined.
struct Joined {
    /// [`PacketPool::memory_addr`] of the pool.
    pool: usize,
    /// Pool frames the queue holds: on the fill or receive ring, or sent and not completed.
    held: FrameSet,
}

#[derive(Default)]
struct QueueCounters {
    rx_zero_copy: u64,
    tx_zero_copy: u64,
    /// Sockets opened again (joining or leaving a pool).
    reopens: u64,
    reopen_errors: u64,
    /// Descriptors naming a pool frame the queue did not lend (never expected).
    stray_frames: u64,
    /// Receive bursts asked for by a PMD of another pool than the one joined (never expected).
    foreign_polls: u64,
    /// Frames sent while the socket was closed.
    tx_closed: u64,
    /// Frames received in more than one piece (multi-buffer).
    rx_multi_buffer: u64,
    /// Multi-buffer chains of more than [`MAX_CHAIN_DESCS`] pieces, or cut off by a socket
    /// closing: dropped (never expected from the kernel).
    rx_bad_chains: u64,
    /// What the sockets closed so far lost and counted: a socket's counters start from 0 when
    /// it is opened again, the queue's go on.
    retired: SocketTotals,
}

/// A socket's own and kernel counters, summed over the sockets a queue closed.
#[derive(Clone, Copy, Default)]
struct SocketTotals {
    own: PortCounters,
    kernel: XskStats,
}

impl SocketTotals {
    fn add(&mut self, own: PortCounters, kernel: XskStats) {
        let (o, k) = (&mut self.own, &mut self.kernel);
        o.tx_too_long += own.tx_too_long;
        o.tx_multi_buffer += own.tx_multi_buffer;
        o.tx_no_room += own.tx_no_room;
        o.wakeups += own.wakeups;
        o.wakeup_errors += own.wakeup_errors;
        o.foreign_frames += own.foreign_frames;
        k.rx_dropped += kernel.rx_dropped;
        k.rx_invalid_descs += kernel.rx_invalid_descs;
        k.tx_invalid_descs += kernel.tx_invalid_descs;
        k.rx_ring_full += kernel.rx_ring_full;
        k.rx_fill_ring_empty_descs += kernel.rx_fill_ring_empty_descs;
        k.tx_ring_empty_descs += kernel.tx_ring_empty_descs;
    }
}

/// A multi-buffer frame gathered from the pieces of a descriptor chain, in memory fixed at
/// the start: it never allocates on the packet path.
struct Chain {
    /// The frame so far; capacity `max_pieces` whole UMEM frames.
    buf: Vec<u8>,
    /// Pieces added since the frame began (0: none).
    pieces: usize,
    max_pieces: usize,
}

/// What a piece did to the frame being gathered.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// More pieces follow.
    Pending,
    /// That was the last: the whole frame is [`Chain::frame`] until [`Chain::clear`].
    Whole,
    /// The last of a chain of more than `max_pieces` pieces: dropped.
    Malformed,
}

impl Chain {
    fn new(max_pieces: usize) -> Chain {
        Chain {
            buf: Vec::with_capacity(max_pieces * FRAME_SIZE),
            pieces: 0,
            max_pieces,
        }
    }

    /// Adds one piece (at most a UMEM frame of it); `more` says whether others follow.
    fn add(&mut self, piece: &[u8], more: bool) -> Piece {
        self.pieces += 1;
        if self.pieces <= self.max_pieces {
            self.buf
                .extend_from_slice(&piece[..piece.len().min(FRAME_SIZE)]);
        }
        if more {
            return Piece::Pending;
        }
        let whole = self.pieces <= self.max_pieces;
        self.pieces = 0;
        if whole {
            Piece::Whole
        } else {
            self.buf.clear();
            Piece::Malformed
        }
    }

    /// The frame the last [`Piece::Whole`] completed.
    fn frame(&self) -> &[u8] {
        &self.buf
    }

    fn clear(&mut self) {
        self.buf.clear();
    }

    /// Whether a frame has begun and not ended.
    fn is_open(&self) -> bool {
        self.pieces > 0
    }

    /// Drops a frame that has begun (its socket closes); returns whether there was one.
    fn abandon(&mut self) -> bool {
        let open = self.is_open();
        self.pieces = 0;
        self.buf.clear();
        open
    }
}

/// A set of frame numbers below a bound, one bit each.
struct FrameSet {
    words: Vec<u64>,
    frames: usize,
}

impl FrameSet {
    fn new(frames: usize) -> FrameSet {
        FrameSet {
            words: vec![0; frames.div_ceil(64)],
            frames,
        }
    }

    /// Adds `id`; false if it is out of range.
    #[inline]
    fn insert(&mut self, id: PacketId) -> bool {
        if id as usize >= self.frames {
            return false;
        }
        match self.words.get_mut(id as usize / 64) {
            Some(w) => {
                *w |= 1 << (id % 64);
                true
            }
            None => false,
        }
    }

    /// Removes `id`; false if it was not in the set.
    #[inline]
    fn remove(&mut self, id: PacketId) -> bool {
        let Some(w) = self.words.get_mut(id as usize / 64) else {
            return false;
        };
        let bit = 1 << (id % 64);
        let had = *w & bit != 0;
        *w &= !bit;
        had
    }

    /// Members.
    fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Empties the set, handing every member to `f`.
    fn drain(&mut self, mut f: impl FnMut(PacketId)) {
        for (i, w) in self.words.iter_mut().enumerate() {
            while *w != 0 {
                let bit = w.trailing_zeros();
                *w &= *w - 1;
                f((i * 64) as PacketId + bit);
            }
        }
    }
}

impl AfXdpQueue {
    /// Opens queue `queue` of interface `ifname` with a UMEM of its own, attaching the XDP
    /// program; errors name `port` (the switch's name for it) and the queue.
    pub fn open(
        port: &str,
        ifname: &str,
        queue: u32,
        config: &XskConfig,
    ) -> Result<AfXdpQueue, PortError> {
        AfXdpQueue::open_on(port, ifname, queue, config, None)
    }

    /// Opens queue `queue` of interface `ifname` like [`AfXdpQueue::open`], steered by `prog`,
    /// the program of the port's first queue (`first.program()`).
    pub fn open_with_program(
        port: &str,
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        prog: &Arc<XdpProgram>,
    ) -> Result<AfXdpQueue, PortError> {
        AfXdpQueue::open_on(port, ifname, queue, config, Some(prog))
    }

    fn open_on(
        port: &str,
        ifname: &str,
        queue: u32,
        config: &XskConfig,
        prog: Option<&Arc<XdpProgram>>,
    ) -> Result<AfXdpQueue, PortError> {
        // Checked first so that a missing interface is reported as such, also to a user who
        // may not create AF_XDP sockets (the UMEM is registered before the bind looks).
        if crate::afxdp::if_index(ifname).is_none() {
            return Err(open_error(
                port,
                ifname,
                queue,
                XskError::NoSuchInterface {
                    ifname: ifname.to_string(),
                },
            ));
        }
        let mut config = config.clone();
        let mut xsk = match prog {
            Some(prog) => XskPort::open_with_program(ifname, queue, &config, prog),
            None => XskPort::open(ifname, queue, &config),
        }
        .map_err(|e| open_error(port, ifname, queue, e))?;
        if config.multi_buffer && !xsk.mode().multi_buffer && !config.lend_fill {
            // The kernel refused XDP_USE_SG: open again without it, in a UMEM of page-sized
            // frames, so that frames up to 4,096 - HEADROOM bytes still arrive whole. (The
            // socket goes first: one socket per queue outside a shared UMEM.)
            config = single_buffer(&config);
            let steering = xsk.program().cloned();
            drop(xsk);
            xsk = match steering.as_ref().or(prog) {
                Some(prog) => XskPort::open_with_program(ifname, queue, &config, prog),
                None => XskPort::open(ifname, queue, &config),
            }
            .map_err(|e| open_error(port, ifname, queue, e))?;
        }
        let no_program = XskError::Config {
            field: "steer",
            reason: "a port's queue must be steered by the XDP program",
        };
        let prog = xsk
            .program()
            .cloned()
            .ok_or_else(|| open_error(port, ifname, queue, no_program))?;
        let multi_buffer = xsk.mode().multi_buffer;
        Ok(AfXdpQueue {
            prog,
            multi_buffer,
            chain: Chain::new(if multi_buffer { MAX_CHAIN_DESCS } else { 0 }),
            port: Some(xsk),
            descs: Vec::with_capacity(config.ring_size as usize),
            name: port.to_string(),
            ifname: ifname.to_string(),
            queue,
            addrs: Vec::with_capacity(config.ring_size as usize),
            config,
            joined: None,
            counters: QueueCounters::default(),
        })
    }

    /// The XDP program steering the interface, for the port's further queues.
    pub fn program(&self) -> &Arc<XdpProgram> {
        &self.prog
    }

    /// The underlying socket (`None` after a failed re-open).
    pub fn xsk(&self) -> Option<&XskPort> {
        self.port.as_ref()
    }

    /// Closes the socket and opens it again: in `umem` beside a pool, else with a UMEM of
    /// its own. On failure in `umem`, it goes back to a UMEM of its own.
    fn reopen(&mut self, umem: Option<&Arc<Umem>>) -> Result<(), PortError> {
        let own = match umem {
            Some(umem) => match umem.free_range(JOINED_OWN_FRAMES) {
                Some(own) => Some((umem, own)),
                None => {
                    let full = XskError::Config {
                        field: "frames",
                        reason: "no frames left in the PMD's UMEM for another queue",
                    };
                    return Err(open_error(&self.name, &self.ifname, self.queue, full));
                }
            },
            None => None,
        };
        // The kernel allows one socket per queue outside a shared UMEM: close first.
        self.close_socket();
        self.counters.reopens += 1;
        let opened = match own {
            Some((umem, own)) => {
                let config = XskConfig {
                    lend_fill: true,
                    ..self.config.clone()
                };
                XskPort::open_in_with_program(
                    &self.ifname,
                    self.queue,
                    &config,
                    umem,
                    own,
                    None,
                    Some(&self.prog),
                )
            }
            None => XskPort::open_with_program(&self.ifname, self.queue, &self.config, &self.prog),
        };
        match opened {
            Ok(port) => {
                self.port = Some(port);
                Ok(())
            }
            Err(e) => {
                self.counters.reopen_errors += 1;
                let err = open_error(&self.name, &self.ifname, self.queue, e);
                if umem.is_some() {
                    self.port = XskPort::open_with_program(
                        &self.ifname,
                        self.queue,
                        &self.config,
                        &self.prog,
                    )
                    .ok();
                }
                Err(err)
            }
        }
    }

    /// Closes the socket, keeping what it counted in the queue's totals.
    fn close_socket(&mut self) {
        if self.chain.abandon() {
            self.counters.rx_bad_chains += 1;
        }
        if let Some(port) = self.port.take() {
            let kernel = port.stats().unwrap_or_default();
            self.counters.retired.add(port.counters(), kernel);
        }
    }

    /// The open socket's counters and the closed ones', together.
    fn totals(&self) -> (SocketTotals, bool) {
        let mut t = self.counters.retired;
        let mut kernel_ok = true;
        if let Some(port) = &self.port {
            let kernel = port.stats().unwrap_or_else(|_| {
                kernel_ok = false;
                XskStats::default()
            });
            t.add(port.counters(), kernel);
        }
        (t, kernel_ok)
    }

    /// The receive burst of a queue in `sink`'s pool: completed transmissions go back,
    /// received frames become packets, and the fill ring gets empty pool frames.
    fn rx_in_pool(&mut self, max: usize, sink: &mut dyn RxSink) -> usize {
        let (Some(port), Some(joined)) = (self.port.as_mut(), self.joined.as_mut()) else {
            return 0;
        };
        self.addrs.clear();
        port.take_returned(&mut self.addrs);
        for &addr in &self.addrs {
            let id = (addr / FRAME_SIZE as u64) as PacketId;
            if joined.held.remove(id) {
                sink.give_back(id);
            } else {
                self.counters.stray_frames += 1;
            }
        }
        self.descs.clear();
        let max = max.min(self.descs.capacity()) as u32;
        let n = port.rx_burst(&mut self.descs, max);
        for d in &self.descs {
            let id = (d.addr / FRAME_SIZE as u64) as PacketId;
            if joined.held.remove(id) {
                sink.adopt(id, (d.addr % FRAME_SIZE as u64) as usize, d.len as usize);
                self.counters.rx_zero_copy += 1;
            } else {
                // One of the socket's own frames (there are none on its fill ring): copy.
                sink.push(port.packet(d.addr, d.len));
                port.recycle(d.addr);
                self.counters.stray_frames += 1;
            }
        }
        let want = port.fill_wanted() as usize;
        // Lent in runs, not one by one as each frame arrives. (A kernel that asks for a
        // wake-up with no frames added gets it from `poll`, once per iteration.)
        if want >= 32 {
            self.addrs.clear();
            while self.addrs.len() < want {
                let Some(id) = sink.lend() else { break };
                joined.held.insert(id);
                self.addrs.push(id as u64 * FRAME_SIZE as u64);
            }
            let lent = port.lend_fill(&self.addrs) as usize;
            for &addr in &self.addrs[lent..] {
                let id = (addr / FRAME_SIZE as u64) as PacketId;
                joined.held.remove(id);
                sink.give_back(id);
            }
        }
        n as usize
    }
}

/// `config` without XDP multi-buffer, its own UMEM of page-sized frames.
pub fn single_buffer(config: &XskConfig) -> XskConfig {
    XskConfig {
        multi_buffer: false,
        frame_size: SINGLE_BUFFER_FRAME_SIZE,
        ..config.clone()
    }
}

fn open_error(port: &str, ifname: &str, queue: u32, source: XskError) -> PortError {
    PortError::Afxdp {
        port: port.to_string(),
        step: format!("open AF_XDP socket on {ifname} queue {queue}"),
        source,
    }
}

/// `native copy need_wakeup`, `generic copy`, `native zero-copy`, ...
pub fn mode_text(port: &XskPort) -> String {
    let mode = port.mode();
    let mut text = String::from(match mode.xdp {
        Some(XdpMode::Driver) => "native",
        Some(XdpMode::Generic) => "generic",
        None => "transmit-only",
    });
    text.push_str(if mode.zero_copy {
        " zero-copy"
    } else {
        " copy"
    });
    if mode.need_wakeup {
        text.push_str(" need_wakeup");
    }
    if mode.multi_buffer {
        text.push_str(" multi-buffer");
    }
    text
}

impl PortIo for AfXdpQueue {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let Some(port) = self.port.as_mut() else {
            return 0;
        };
        self.descs.clear();
        // Never more than the vector holds, so that the burst does not allocate.
        let max = max.min(self.descs.capacity()) as u32;
        let n = port.rx_burst(&mut self.descs, max);
        let mut frames = 0;
        for d in &self.descs {
            if !d.more && !self.chain.is_open() {
                f(port.packet(d.addr, d.len));
                port.recycle(d.addr);
                frames += 1;
                continue;
            }
            // A piece of a multi-buffer frame: gathered, the whole frame handed over at its
            // last piece.
            match self.chain.add(port.packet(d.addr, d.len), d.more) {
                Piece::Pending => {}
                Piece::Whole => {
                    f(self.chain.frame());
                    self.chain.clear();
                    self.counters.rx_multi_buffer += 1;
                    frames += 1;
                }
                Piece::Malformed => self.counters.rx_bad_chains += 1,
            }
            port.recycle(d.addr);
        }
        if n > 0 {
            port.refill();
        }
        frames
    }

    fn rx_burst_into(&mut self, max: usize, sink: &mut dyn RxSink) -> usize {
        match &self.joined {
            Some(j) if sink.pool_addr() == Some(j.pool) => self.rx_in_pool(max, sink),
            // Frames on the rings are that pool's: only its PMD may take them (a PMD always
            // joins a queue before it receives on it, so this does not happen).
            Some(_) => {
                self.counters.foreign_polls += 1;
                0
            }
            None => self.rx_burst(max, &mut |f| sink.push(f)),
        }
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        match self.port.as_mut() {
            Some(p) => p.tx_burst(frames) as usize,
            None => {
                // Closed while it moves to another PMD (or a re-open failed): lost, named.
                self.counters.tx_closed += frames.len() as u64;
                frames.len()
            }
        }
    }

    fn tx_packets(&mut self, pool: &PacketPool, ids: &[PacketId]) -> Sent {
        let in_pool = self
            .joined
            .as_ref()
            .is_some_and(|j| j.pool == pool.memory_addr());
        let (Some(port), Some(joined), true) = (self.port.as_mut(), self.joined.as_mut(), in_pool)
        else {
            // Another PMD's packets (or no pool): one copy into the socket's own frames.
            return send_copies(pool, ids, |frames| self.tx_burst(frames));
        };
        let mut descs = [RxDesc::default(); pipeline::MAX_BATCH];
        let n = ids.len().min(pipeline::MAX_BATCH);
        for (d, &id) in descs.iter_mut().zip(&ids[..n]) {
            let m = pool.meta(id);
            *d = RxDesc {
                addr: id as u64 * FRAME_SIZE as u64 + m.data_off as u64,
                len: m.len as u32,
                more: false,
            };
        }
        let sent = port.tx_lent(&descs[..n]) as usize;
        for &id in &ids[..sent] {
            joined.held.insert(id);
        }
        self.counters.tx_zero_copy += sent as u64;
        Sent {
            count: sent,
            kept: true,
        }
    }

    fn join_pool(&mut self, umem: &Arc<Umem>, pool: &mut PacketPool) -> Result<bool, PortError> {
        if self
            .joined
            .as_ref()
            .is_some_and(|j| j.pool == pool.memory_addr())
        {
            return Ok(true);
        }
        // Still in another pool (its PMD stopped without leaving it): its frames are that
        // pool's to lose, not this one's to take.
        self.joined = None;
        self.reopen(Some(umem))?;
        self.joined = Some(Joined {
            pool: pool.memory_addr(),
            held: FrameSet::new(pool.capacity()),
        });
        Ok(true)
    }

    fn joined_pool(&self) -> Option<usize> {
        self.joined.as_ref().map(|j| j.pool)
    }

    fn pool_frames_held(&self) -> usize {
        self.joined.as_ref().map_or(0, |j| j.held.len())
    }

    fn leave_pool(&mut self, pool: &mut PacketPool) {
        if self
            .joined
            .as_ref()
            .is_none_or(|j| j.pool != pool.memory_addr())
        {
            return;
        }
        // Closing the socket stops the kernel (its release takes the socket out of the XSKMAP
        // and waits for receives in flight; a copy-mode transmission copied the frame when it
        // was sent), so every frame the queue held is the pool's again. That needs the close
        // to be the socket's last reference: it is opened with SOCK_CLOEXEC, and the daemon
        // starts no processes that could hold a copy between fork and exec.
        self.close_socket();
        if let Some(mut joined) = self.joined.take() {
            joined.held.drain(|id| pool.free(id));
        }
        // Closed until a PMD takes the queue on: it joins that PMD's pool (one reopen, not
        // two through memory of its own) or, with no pool there, `open_alone` opens it.
    }

    fn open_alone(&mut self) {
        if self.port.is_none() && self.joined.is_none() {
            // A failure is counted and leaves the queue closed until the next plan.
            let _ = self.reopen(None);
        }
    }

    fn poll(&mut self) {
        if let Some(port) = self.port.as_mut() {
            port.poll();
        }
    }

    fn rx_fd(&self) -> Option<RawFd> {
        self.port.as_ref().map(|p| p.raw_fd())
    }

    fn info(&self) -> QueueInfo {
        QueueInfo {
            kind: "afxdp",
            mode: match (&self.port, &self.joined) {
                (Some(port), Some(_)) => mode_text(port) + " pmd-pool",
                (Some(port), None) => mode_text(port),
                // Left its PMD's pool and not yet taken on by the next, or a re-open failed
                // (`reopen-errors`).
                (None, _) => "closed".to_string(),
            },
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let q = &self.counters;
        // One getsockopt; the control plane asks, never the packet path.
        let (t, kernel_ok) = self.totals();
        let (c, s) = (t.own, t.kernel);
        let mut out = vec![
            ("rx-zero-copy", q.rx_zero_copy),
            ("tx-zero-copy", q.tx_zero_copy),
            ("reopens", q.reopens),
            ("reopen-errors", q.reopen_errors),
            ("stray-frames", q.stray_frames),
            ("foreign-polls", q.foreign_polls),
            ("tx-closed", q.tx_closed),
            ("rx-multi-buffer", q.rx_multi_buffer),
            ("tx-multi-buffer", c.tx_multi_buffer),
            ("rx-bad-chains", q.rx_bad_chains),
            ("tx-too-long", c.tx_too_long),
            ("tx-no-room", c.tx_no_room),
            ("wakeups", c.wakeups),
            ("wakeup-errors", c.wakeup_errors),
            ("foreign-frames", c.foreign_frames),
            ("rx-dropped", s.rx_dropped),
            ("rx-invalid-descs", s.rx_invalid_descs),
            ("tx-invalid-descs", s.tx_invalid_descs),
            ("rx-ring-full", s.rx_ring_full),
            ("rx-fill-ring-empty-descs", s.rx_fill_ring_empty_descs),
            ("tx-ring-empty-descs", s.tx_ring_empty_descs),
        ];
        if !kernel_ok {
            out.push(("kernel-stats-unavailable", 1));
        }
        out
    }

    fn gauges(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("pool-frames-held", self.pool_frames_held() as u64),
            (
                "tx-in-flight",
                self.port
                    .as_ref()
                    .map_or(0, |p| u64::from(p.tx_in_flight())),
            ),
        ]
    }

    fn losses(&self) -> PortLosses {
        let (t, _) = self.totals();
        let mut l = xsk_losses(&t.own, &t.kernel);
        l.add(PortLoss::TxLinkDown, self.counters.tx_closed);
        l.add(PortLoss::RxMalformed, self.counters.rx_bad_chains);
        l
    }

    fn max_frame_len(&self) -> Option<usize> {
        Some(if self.multi_buffer {
            MAX_CHAIN_FRAME
        } else {
            // Its own UMEM's frame (in a pool's UMEM the pool's frames fit every MTU).
            self.config.frame_size - pipeline::buffer::HEADROOM
        })
    }
}

/// The named losses of an AF_XDP socket from its counters. The kernel counts a frame it could
/// not copy in (copy mode) in `rx_dropped`, for one of two reasons: no free frame on the fill
/// ring (which `rx_fill_ring_empty_descs` also counts, one per frame) or a frame longer than
/// a UMEM frame. A full receive ring is `rx_ring_full` alone. In zero-copy mode the driver
/// finds the fill ring empty, not the socket: `rx_dropped` stays 0 and so do both parts.
fn xsk_losses(own: &PortCounters, kernel: &XskStats) -> PortLosses {
    let mut l = PortLosses::default();
    let fill_empty = kernel.rx_fill_ring_empty_descs.min(kernel.rx_dropped);
    l.add(PortLoss::RxRingFull, kernel.rx_ring_full);
    l.add(PortLoss::RxFillRingEmpty, fill_empty);
    l.add(PortLoss::RxTooLong, kernel.rx_dropped - fill_empty);
    l.add(PortLoss::TxInvalidDescs, kernel.tx_invalid_descs);
    l.add(PortLoss::TxTooLong, own.tx_too_long);
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_set_holds_what_was_inserted_and_drains_it_all() {
        let mut s = FrameSet::new(130);
        for id in [0, 63, 64, 129] {
            assert!(s.insert(id));
        }
        assert!(!s.insert(130), "past the pool");
        assert_eq!(s.len(), 4);
        assert!(s.remove(64));
        assert!(!s.remove(64), "only once");
        assert!(!s.remove(1000));
        let mut out = Vec::new();
        s.drain(|id| out.push(id));
        assert_eq!(out, vec![0, 63, 129]);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_chain_is_gathered_whole_and_one_of_too_many_pieces_is_dropped_without_allocating() {
        let mut c = Chain::new(MAX_CHAIN_DESCS);
        let cap = c.buf.capacity();
        // A 9014-byte frame as the kernel cuts it: 1792-byte pieces and the rest.
        let frame: Vec<u8> = (0..9014u32).map(|i| i as u8).collect();
        let pieces: Vec<&[u8]> = frame.chunks(1792).collect();
        for (i, p) in pieces.iter().enumerate() {
            let more = i + 1 < pieces.len();
            let want = if more { Piece::Pending } else { Piece::Whole };
            assert_eq!(c.add(p, more), want);
        }
        assert_eq!(c.frame(), &frame[..]);
        c.clear();
        assert!(!c.is_open());
        // More pieces than the kernel ever chains: dropped at its end, named by the caller.
        for _ in 0..MAX_CHAIN_DESCS {
            assert_eq!(c.add(&[0xaa; FRAME_SIZE], true), Piece::Pending);
        }
        assert_eq!(c.add(&[1, 2, 3], false), Piece::Malformed);
        assert_eq!(c.buf.capacity(), cap, "no allocation");
        // The next frame starts clean; a piece longer than a UMEM frame is cut to one.
        assert_eq!(c.add(&[7; FRAME_SIZE + 10], false), Piece::Whole);
        assert_eq!(c.frame().len(), FRAME_SIZE);
        c.clear();
        // A socket closing under an unfinished chain.
        assert_eq!(c.add(&[1], true), Piece::Pending);
        assert!(c.abandon());
        assert!(!c.abandon());
        assert_eq!(c.buf.capacity(), cap);
    }

    #[test]
    fn the_kernels_rx_dropped_splits_into_fill_ring_empty_and_too_long() {
        let kernel = XskStats {
            rx_dropped: 10,
            rx_fill_ring_empty_descs: 7,
            rx_ring_full: 4,
            tx_invalid_descs: 1,
            ..XskStats::default()
        };
        let own = PortCounters {
            tx_too_long: 2,
            tx_no_room: 50,
            ..PortCounters::default()
        };
        let l = xsk_losses(&own, &kernel);
        assert_eq!(
            l.text(),
            "rx-ring-full=4 rx-fill-ring-empty=7 rx-too-long=3 tx-too-long=2 tx-invalid-descs=1"
        );
        // Zero-copy: the driver found the fill ring empty, the socket dropped nothing.
        let zc = XskStats {
            rx_fill_ring_empty_descs: 9,
            ..XskStats::default()
        };
        assert!(xsk_losses(&PortCounters::default(), &zc).is_empty());
    }
}
