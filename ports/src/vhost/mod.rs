//! The `vhost-user` port type: the switch is the vhost-user backend (the virtio-net device)
//! of a container or VM whose driver (DPDK's `net_virtio_user`, QEMU) is the frontend, on a
//! unix socket the switch listens on (`mode=server`) or connects to (`mode=client`). The
//! port owns a control thread that serves the protocol with the `vhost` crate's
//! `BackendReqHandler` (blocking, one message at a time) and maps guest memory with
//! `vm-memory`; the PMD polls the rings (split, `vhost_user::ring`, or packed, `vhost_user::packed`, as the
//! frontend negotiated) in [`PortIo::rx_burst_into`] and [`PortIo::tx_burst`] and never
//! blocks on the socket: it `try_lock`s the vring once per burst and skips the burst while
//! the control thread reconfigures it (as DPDK's vhost library does with its per-vring
//! access lock). Two rust-vmm crates are not used, because
//! they do not fit a poll-mode data path: `vhost-user-backend`'s daemon runs its own epoll
//! worker threads woken by kick eventfds, where a PMD polls instead; `virtio-queue` (and
//! vm-memory's checked accessors) walk guest memory through per-access slice iterators that
//! cost over 1,000 cycles per packet in the vhost-user loop, so the rings are read and
//! written through `vhost_user::guest`'s bounds-checked raw copies instead.
//!
//! The guest is told not to kick (`VRING_USED_F_NO_NOTIFY`, or the packed ring's device
//! event flags) while the PMD polls; an idle PMD that sleeps asks for kicks first
//! ([`PortIo::before_sleep`]) and sleeps on the ring's `vhost_user::kick::KickWatch`, and its
//! next burst tells the guest to stop again. The call eventfd is written only when the guest
//! asks for interrupts. A disconnect resets the device to waiting; the server accepts the
//! next frontend, the client reconnects every second.
//!
//! Multiqueue (`queues=N`, the `MQ` feature): the port is N [`PortIo`] queues, one per queue
//! pair, each placed on a PMD like any receive queue; every vring has its own lock, so PMDs
//! running different pairs never meet. A PMD transmits on the pair of its own number (modulo
//! N); when the guest has not enabled that pair (it uses fewer queues than offered), the
//! frames go to one of the enabled pairs instead, as OVS remaps its vhost transmit queues.
//! The rings, guest memory and the protocol handler (`Device`) are the `vhost-user` crate's;
//! this folder is the port: options, the control thread, and the `PortIo` queues.

pub mod options;

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use vhost::vhost_user::{BackendReqHandler, Error as VhostError, Listener};

use pipeline::RxSink;
use vhost_user::device::{self, Device, SharedVring, GUEST_RX, GUEST_TX};
use vhost_user::kick::{self, KickWatch};
use vhost_user::ring::{self, RingCounters, Vq, MAX_FRAME};
use vhost_user::{guest, packed};

use crate::{PortError, PortIo, PortLoss, PortLosses, QueueInfo, Wakeup};

/// Who opens the unix socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VhostUserMode {
    /// The switch listens (creating the socket file) and the frontend connects.
    Server,
    /// The frontend listens (`server=1` in DPDK) and the switch connects, and reconnects.
    Client,
}

impl VhostUserMode {
    /// The `mode=` value.
    pub fn name(self) -> &'static str {
        match self {
            VhostUserMode::Server => "server",
            VhostUserMode::Client => "client",
        }
    }
}

/// Options of a vhost-user port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VhostUserOptions {
    /// The unix socket's path.
    pub socket: PathBuf,
    /// Who listens on it.
    pub mode: VhostUserMode,
    /// Queue pairs offered (`MQ` when more than one).
    pub queues: u16,
}

/// Most queue pairs a vhost-user port offers.
pub const MAX_QUEUE_PAIRS: u16 = 16;

/// How long the control thread waits between looks at its stop flag while it has no
/// frontend (server: accept polls; client: connect retries count this many times).
const IDLE_TICK: Duration = Duration::from_millis(50);
/// Client mode: ticks between connection attempts.
const RECONNECT_TICKS: u32 = 20;

/// What the port and its control thread share.
struct Control {
    device: Arc<Mutex<Device>>,
    stop: AtomicBool,
    /// A clone of the current connection, so dropping the port can shut it down and end
    /// the thread's blocking read.
    conn: Mutex<Option<UnixStream>>,
    /// Whether a frontend has both vrings running, as of the last message handled.
    link: Arc<AtomicBool>,
    /// The guest's MTU as the frontend set it (`Device::guest_mtu`), 0 when it did not.
    guest_mtu: AtomicU32,
    connections: AtomicU64,
    disconnects: AtomicU64,
    refused_requests: AtomicU64,
    protocol_errors: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the state is still
    // plain data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Errors that end the connection (the byte stream is lost or gone); the rest are refused
/// requests the frontend was told about.
fn ends_connection(e: &VhostError) -> bool {
    !matches!(
        e,
        VhostError::InvalidParam
            | VhostError::InvalidOperation(_)
            | VhostError::InactiveFeature(_)
            | VhostError::InactiveOperation(_)
            | VhostError::ReqHandlerError(_)
            | VhostError::BackendInternalError
    )
}

/// Serves one connection until it ends, then resets the device.
fn serve_connection(control: &Control, stream: UnixStream) {
    // Accepted sockets do not inherit the listener's O_NONBLOCK on Linux; make sure.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    *lock(&control.conn) = stream.try_clone().ok();
    control.connections.fetch_add(1, Ordering::Relaxed);
    let Ok(peek) = stream.try_clone() else {
        return;
    };
    let mut handler = BackendReqHandler::from_stream(stream, Arc::clone(&control.device));
    while !control.stop.load(Ordering::Relaxed) {
        // The vhost crate does not know NET_SET_MTU (it would end the connection): that one
        // message is taken here, the rest go to the crate's handler.
        let handled = match next_request(&peek) {
            Some(NET_SET_MTU) => net_set_mtu(control, &peek),
            _ => handler.handle_request(),
        };
        let (up, mtu) = {
            let device = lock(&control.device);
            (device.link_up(), device.guest_mtu())
        };
        control.link.store(up, Ordering::Relaxed);
        control
            .guest_mtu
            .store(mtu.map_or(0, u32::from), Ordering::Relaxed);
        match handled {
            Ok(()) => {}
            Err(e) if !ends_connection(&e) => {
                control.refused_requests.fetch_add(1, Ordering::Relaxed);
            }
            Err(VhostError::Disconnected) | Err(VhostError::PartialMessage) => break,
            Err(_) => {
                control.protocol_errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    *lock(&control.conn) = None;
    lock(&control.device).reset();
    control.link.store(false, Ordering::Relaxed);
    control.guest_mtu.store(0, Ordering::Relaxed);
    control.disconnects.fetch_add(1, Ordering::Relaxed);
}

/// `VHOST_USER_NET_SET_MTU`'s request code.
const NET_SET_MTU: u32 = 20;
/// Message header flags: the version (1) in the low two bits, a reply, and "reply wanted".
const HDR_VERSION_MASK: u32 = 0x3;
const HDR_REPLY: u32 = 0x4;
const HDR_NEED_REPLY: u32 = 0x8;

/// The request code of the next message on the connection, left there for whoever reads
/// it; blocks until it arrives (as the handler's own read would). `None` when the
/// connection ended or the code has not arrived whole (the handler then reads and judges).
fn next_request(stream: &UnixStream) -> Option<u32> {
    let mut code = [0u8; 4];
    let n = crate::sys::peek(stream, &mut code).ok()?;
    (n == code.len()).then(|| u32::from_le_bytes(code))
}

/// Reads one `VHOST_USER_NET_SET_MTU` (a 12-byte header and a u64 body) and hands the MTU
/// to the device, answering as the vhost crate answers the other requests: an ack (0 taken,
/// 1 refused) when REPLY_ACK was negotiated and the frontend asked for one. A malformed
/// header ends the connection, as it does there.
fn net_set_mtu(control: &Control, mut stream: &UnixStream) -> Result<(), VhostError> {
    let mut msg = [0u8; 20];
    stream
        .read_exact(&mut msg[..12])
        .map_err(|_| VhostError::PartialMessage)?;
    let word = |at: usize| u32::from_le_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
    let (flags, size) = (word(4), word(8));
    if size != 8 || flags & HDR_VERSION_MASK != 1 || flags & HDR_REPLY != 0 {
        return Err(VhostError::InvalidMessage);
    }
    stream
        .read_exact(&mut msg[12..])
        .map_err(|_| VhostError::PartialMessage)?;
    let mut value = [0u8; 8];
    value.copy_from_slice(&msg[12..]);
    let (taken, reply) = {
        let mut device = lock(&control.device);
        let taken = device.net_set_mtu(u64::from_le_bytes(value));
        // Shown before the ack goes out, so that a frontend that asks next sees it.
        let mtu = device.guest_mtu().map_or(0, u32::from);
        control.guest_mtu.store(mtu, Ordering::Relaxed);
        (taken, device.reply_ack() && flags & HDR_NEED_REPLY != 0)
    };
    if reply {
        let mut ack = [0u8; 20];
        ack[..4].copy_from_slice(&NET_SET_MTU.to_le_bytes());
        ack[4..8].copy_from_slice(&(1 | HDR_REPLY).to_le_bytes());
        ack[8..12].copy_from_slice(&8u32.to_le_bytes());
        ack[12..].copy_from_slice(&u64::from(taken.is_err()).to_le_bytes());
        stream
            .write_all(&ack)
            .map_err(|_| VhostError::Disconnected)?;
    }
    taken
}

fn serve_server(control: &Control, listener: &Listener) {
    while !control.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok(Some(stream)) => serve_connection(control, stream),
            Ok(None) => std::thread::sleep(IDLE_TICK),
            Err(_) => {
                control.protocol_errors.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(IDLE_TICK);
            }
        }
    }
}

fn serve_client(control: &Control, path: &Path) {
    while !control.stop.load(Ordering::Relaxed) {
        if let Ok(stream) = UnixStream::connect(path) {
            serve_connection(control, stream);
        }
        for _ in 0..RECONNECT_TICKS {
            if control.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(IDLE_TICK);
        }
    }
}

/// The port's control thread, stopped when the last queue of the port is dropped.
struct ControlThread {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ControlThread {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::Relaxed);
        if let Some(conn) = lock(&self.control.conn).as_ref() {
            // Ends the control thread's blocking read.
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stops vring `v` (counted) once an access to `mem` found pages the guest took away: what
/// the PMD read there was zeros, and what it wrote went nowhere. The vring runs again when the
/// guest sets it up anew on fresh memory.
fn stopped_by_fault(v: &mut device::Vring, mem: &guest::GuestMemory, c: &mut RingCounters) -> bool {
    if mem.faults() == 0 {
        return false;
    }
    v.live = false;
    c.memory_faults += 1;
    true
}

/// Why a burst did not run a vring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skipped {
    /// The control thread or another PMD held it (counted in `busy-bursts`).
    Busy,
    /// It is not running: not set up, stopped, or its memory lost pages.
    Down,
}

/// One queue pair of a vhost-user port as a [`PortIo`].
pub struct VhostUserQueue {
    control: Arc<Control>,
    /// Held so that the control thread runs while any queue of the port exists.
    _thread: Arc<ControlThread>,
    options: VhostUserOptions,
    /// This queue pair's number.
    pair: usize,
    /// Every vring of the port, two per pair.
    vrings: Arc<[SharedVring]>,
    /// Bit `q`: the guest's receive vring of pair `q` is live.
    rx_live: Arc<AtomicU64>,
    /// Vrings that went live packed (the device counts them).
    packed_rings: Arc<AtomicU64>,
    /// Per vring, what a sleeping PMD waits on (the device's).
    kicks: Arc<[Option<KickWatch>]>,
    /// The guest was asked to kick on this pair's transmit ring: the next burst stops it.
    kicks_on: bool,
    /// Where a guest frame is gathered for [`PortIo::rx_burst`]'s closure (the PMD's
    /// [`PortIo::rx_burst_into`] writes straight into packet buffers instead).
    scratch: Box<[u8]>,
    counters: RingCounters,
    /// Bursts skipped because the control thread or another PMD held the vring.
    busy_bursts: u64,
    /// Frames sent through another pair because the guest has not enabled this one.
    tx_remapped: u64,
    /// Frames dropped because no guest had the receive ring running.
    tx_link_down: u64,
    /// Frames dropped because another thread held the guest's receive ring.
    tx_busy: u64,
}

impl VhostUserQueue {
    /// Opens the port, one queue per queue pair: in server mode binds the socket now
    /// (replacing a stale file), in client mode starts connecting; errors name `port`.
    pub fn open(port: &str, options: &VhostUserOptions) -> Result<Vec<VhostUserQueue>, PortError> {
        let pairs = options.queues.clamp(1, MAX_QUEUE_PAIRS);
        let device = Device::new(pairs);
        let (vrings, rx_live) = (device.vrings(), device.rx_live());
        let packed_rings = device.packed_rings();
        let kicks = device.kick_watches();
        let control = Arc::new(Control {
            device: Arc::new(Mutex::new(device)),
            stop: AtomicBool::new(false),
            conn: Mutex::new(None),
            link: Arc::new(AtomicBool::new(false)),
            guest_mtu: AtomicU32::new(0),
            connections: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            refused_requests: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
        });
        let socket = options.socket.clone();
        let io = |step: String, source: std::io::Error| PortError::Io {
            port: port.to_string(),
            step,
            source,
        };
        let shared = Arc::clone(&control);
        let builder = std::thread::Builder::new().name(format!("vhost-{port}"));
        let thread = match options.mode {
            VhostUserMode::Server => {
                let listener = Listener::new(&socket, true).map_err(|e| PortError::Invalid {
                    port: port.to_string(),
                    step: format!("listen on {}", socket.display()),
                    reason: e.to_string(),
                })?;
                listener
                    .set_nonblocking(true)
                    .map_err(|e| io("make the listener non-blocking".into(), e.into()))?;
                builder.spawn(move || serve_server(&shared, &listener))
            }
            VhostUserMode::Client => builder.spawn(move || serve_client(&shared, &socket)),
        }
        .map_err(|e| io("start the control thread".to_string(), e))?;
        let thread = Arc::new(ControlThread {
            control: Arc::clone(&control),
            thread: Some(thread),
        });
        Ok((0..usize::from(pairs))
            .map(|pair| VhostUserQueue {
                control: Arc::clone(&control),
                _thread: Arc::clone(&thread),
                options: options.clone(),
                pair,
                vrings: Arc::clone(&vrings),
                rx_live: Arc::clone(&rx_live),
                packed_rings: Arc::clone(&packed_rings),
                kicks: Arc::clone(&kicks),
                kicks_on: false,
                scratch: vec![0u8; MAX_FRAME].into_boxed_slice(),
                counters: RingCounters::default(),
                busy_bursts: 0,
                tx_remapped: 0,
                tx_link_down: 0,
                tx_busy: 0,
            })
            .collect())
    }

    /// Runs `burst` on vring `index` of the port, with the data path's counters, when the
    /// vring is free and running on memory that lost no pages.
    fn run_vring(
        &mut self,
        index: usize,
        burst: impl FnOnce(Vq<'_>, &mut RingCounters) -> usize,
    ) -> Result<usize, Skipped> {
        let Ok(mut slot) = self.vrings[index].try_lock() else {
            self.busy_bursts += 1;
            return Err(Skipped::Busy);
        };
        let hdr = slot.hdr;
        let device::VringSlot { vring: v, mem, .. } = &mut *slot;
        let mem = mem.as_deref().filter(|_| v.live).ok_or(Skipped::Down)?;
        if stopped_by_fault(v, mem, &mut self.counters) {
            return Err(Skipped::Down);
        }
        let vq = Vq {
            ring: &mut v.queue,
            mem,
            call: v.call.as_ref(),
            hdr,
        };
        Ok(burst(vq, &mut self.counters))
    }

    /// The pair whose guest receive vring takes this queue's transmits: its own when the
    /// guest enabled it, otherwise one of the enabled pairs (spread by pair number); `None`
    /// while none is.
    fn tx_pair(&self) -> Option<usize> {
        let live = self.rx_live.load(Ordering::Relaxed);
        if live & (1 << self.pair) != 0 {
            return Some(self.pair);
        }
        let n = live.count_ones() as usize;
        if n == 0 {
            return None;
        }
        let mut rest = live;
        for _ in 0..self.pair % n {
            rest &= rest - 1;
        }
        Some(rest.trailing_zeros() as usize)
    }

    /// Whether a frontend has the first queue pair's vrings running.
    pub fn link_up(&self) -> bool {
        match self.control.device.try_lock() {
            Ok(d) => d.link_up(),
            Err(_) => false,
        }
    }

    /// The data path's counters.
    pub fn ring_counters(&self) -> RingCounters {
        self.counters
    }
}

impl PortIo for VhostUserQueue {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        let n = self.rx_burst_into(
            max,
            &mut ring::ClosureSink {
                buf: &mut scratch,
                f,
            },
        );
        self.scratch = scratch;
        n
    }

    fn rx_burst_into(&mut self, max: usize, sink: &mut dyn RxSink) -> usize {
        let kicks_on = std::mem::take(&mut self.kicks_on);
        let got = self.run_vring(2 * self.pair + GUEST_TX, |vq, c| {
            if kicks_on {
                // Awake again: the PMD polls.
                kick::set_kicks(vq.ring, vq.mem, false);
            }
            if vq.ring.packed {
                packed::guest_tx(vq, max, c, sink)
            } else {
                ring::guest_tx(vq, max, c, sink)
            }
        });
        // A ring the control thread held is asked again next time.
        self.kicks_on = kicks_on && got == Err(Skipped::Busy);
        got.unwrap_or(0)
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        let Some(pair) = self.tx_pair() else {
            // No guest to deliver to: the frames are the port's drops (taken, so that the
            // caller does not count them as a full guest ring).
            self.tx_link_down += frames.len() as u64;
            return frames.len();
        };
        let sent = self.run_vring(2 * pair + GUEST_RX, |vq, c| {
            if vq.ring.packed {
                packed::guest_rx(vq, frames, c)
            } else {
                ring::guest_rx(vq, frames, c)
            }
        });
        match sent {
            Ok(sent) => {
                if pair != self.pair {
                    self.tx_remapped += sent as u64;
                }
                sent
            }
            Err(Skipped::Busy) => {
                self.tx_busy += frames.len() as u64;
                frames.len()
            }
            Err(Skipped::Down) => {
                self.tx_link_down += frames.len() as u64;
                frames.len()
            }
        }
    }

    fn rx_fd(&self) -> Option<RawFd> {
        let watch = self.kicks.get(2 * self.pair + GUEST_TX)?.as_ref()?;
        Some(watch.fd())
    }

    fn before_sleep(&mut self) -> Wakeup {
        let index = 2 * self.pair + GUEST_TX;
        let Some(Some(watch)) = self.kicks.get(index) else {
            return Wakeup::Nap;
        };
        // Kicks and changes from before this point no longer wake the PMD.
        watch.drain();
        let Ok(slot) = self.vrings[index].try_lock() else {
            // The control thread is changing the ring: look again soon.
            return Wakeup::Pending;
        };
        let device::VringSlot { vring: v, mem, .. } = &*slot;
        let Some(mem) = mem.as_deref().filter(|_| v.live) else {
            // Not running: the watch wakes the PMD when it starts.
            return Wakeup::Armed;
        };
        if !watch.watching() {
            return Wakeup::Nap;
        }
        self.kicks_on = true;
        if kick::set_kicks(&v.queue, mem, true) {
            Wakeup::Pending
        } else {
            Wakeup::Armed
        }
    }

    fn info(&self) -> QueueInfo {
        let state = if self.link_up() { "up" } else { "waiting" };
        let mut mode = format!(
            "{} {} pair {}/{} {state}",
            self.options.mode.name(),
            self.options.socket.display(),
            self.pair,
            self.options.queues
        );
        // What the frontend told the guest (VIRTIO_NET_F_MTU), as OVS-DPDK's status:mtu.
        let guest_mtu = self.control.guest_mtu.load(Ordering::Relaxed);
        if guest_mtu != 0 {
            mode.push_str(&format!(" guest-mtu={guest_mtu}"));
        }
        QueueInfo {
            kind: "vhost-user",
            mode,
        }
    }

    fn tx_full_loss(&self) -> PortLoss {
        PortLoss::GuestRingFull
    }

    fn losses(&self) -> PortLosses {
        let c = &self.counters;
        let mut l = PortLosses::default();
        l.add(PortLoss::RxTooLong, c.rx_too_long);
        l.add(PortLoss::RxMalformed, c.rx_runts);
        l.add(PortLoss::BadDescriptors, c.bad_descriptors);
        l.add(PortLoss::TxTooLong, c.tx_too_long);
        l.add(PortLoss::TxLinkDown, self.tx_link_down);
        l.add(PortLoss::TxBusy, self.tx_busy);
        l
    }

    fn link_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(Arc::clone(&self.control.link))
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        // The connection's counters once per port (on pair 0): port-stats sums the queues.
        let first = self.pair == 0;
        let a = |v: &AtomicU64| if first { v.load(Ordering::Relaxed) } else { 0 };
        vec![
            ("rx-frames", c.rx_frames),
            ("rx-bytes", c.rx_bytes),
            ("rx-too-long", c.rx_too_long),
            ("rx-runts", c.rx_runts),
            ("tx-frames", c.tx_frames),
            ("tx-bytes", c.tx_bytes),
            // Frames the guest had no receive buffers for (the caller counts them as
            // `guest-ring-full`).
            ("tx-guest-full", c.tx_dropped),
            ("tx-link-down", self.tx_link_down),
            ("tx-busy", self.tx_busy),
            ("tx-too-long", c.tx_too_long),
            ("bad-descriptors", c.bad_descriptors),
            ("bad-rings", c.bad_rings),
            ("call-signals", c.call_signals),
            ("memory-faults", c.memory_faults),
            ("busy-bursts", self.busy_bursts),
            ("tx-remapped", self.tx_remapped),
            ("connections", a(&self.control.connections)),
            ("packed-rings", a(&self.packed_rings)),
            ("disconnects", a(&self.control.disconnects)),
            ("refused-requests", a(&self.control.refused_requests)),
            ("protocol-errors", a(&self.control.protocol_errors)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_binds_the_socket_and_removes_it_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let q = VhostUserQueue::open(
            "v0",
            &VhostUserOptions {
                socket: path.clone(),
                mode: VhostUserMode::Server,
                queues: 1,
            },
        )
        .unwrap()
        .remove(0);
        assert!(path.exists());
        assert!(!q.link_up());
        assert_eq!(q.info().kind, "vhost-user");
        assert!(q.info().mode.ends_with("waiting"), "{}", q.info().mode);
        // A peer that connects and hangs up counts as a connection and a disconnect.
        drop(UnixStream::connect(&path).unwrap());
        for _ in 0..100 {
            if q.control.disconnects.load(Ordering::Relaxed) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(q.control.connections.load(Ordering::Relaxed), 1);
        assert_eq!(q.control.disconnects.load(Ordering::Relaxed), 1);
        drop(q);
        assert!(!path.exists());
    }

    /// A frontend that speaks the protocol's bytes itself (QEMU's order for `host_mtu`):
    /// sends request `code` with `body`, flags version 1 plus `flags`, and reads a reply of
    /// `reply` bytes of body when it expects one.
    fn request(conn: &mut UnixStream, code: u32, flags: u32, body: &[u8], reply: usize) -> Vec<u8> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&code.to_le_bytes());
        msg.extend_from_slice(&(1 | flags).to_le_bytes());
        msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
        msg.extend_from_slice(body);
        conn.write_all(&msg).unwrap();
        let mut answer = vec![0u8; if reply == 0 { 0 } else { 12 + reply }];
        conn.read_exact(&mut answer).unwrap();
        if reply > 0 {
            assert_eq!(answer[..4], code.to_le_bytes(), "reply to {code}");
        }
        answer.split_off(answer.len().min(12))
    }

    fn u64_of(bytes: &[u8]) -> u64 {
        u64::from_le_bytes(bytes[..8].try_into().unwrap())
    }

    #[test]
    fn a_frontend_that_sets_the_mtu_is_answered_as_dpdk_answers_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let options = VhostUserOptions {
            socket: path.clone(),
            mode: VhostUserMode::Server,
            queues: 1,
        };
        let q = VhostUserQueue::open("m0", &options).unwrap().remove(0);
        let mut conn = UnixStream::connect(&path).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        const GET_FEATURES: u32 = 1;
        const SET_FEATURES: u32 = 2;
        const SET_OWNER: u32 = 3;
        const GET_PROTOCOL_FEATURES: u32 = 15;
        const SET_PROTOCOL_FEATURES: u32 = 16;
        const REPLY_ACK: u64 = 1 << 3;
        const PROTOCOL_F_NET_MTU: u64 = 1 << 4;
        request(&mut conn, SET_OWNER, 0, &[], 0);
        let offered = u64_of(&request(&mut conn, GET_FEATURES, 0, &[], 8));
        assert_ne!(
            offered & device::VIRTIO_NET_F_MTU,
            0,
            "VIRTIO_NET_F_MTU offered"
        );
        let acked = device::VIRTIO_F_VERSION_1
            | device::VIRTIO_NET_F_MTU
            | device::VHOST_USER_F_PROTOCOL_FEATURES;
        request(&mut conn, SET_FEATURES, 0, &acked.to_le_bytes(), 0);
        let protocol = u64_of(&request(&mut conn, GET_PROTOCOL_FEATURES, 0, &[], 8));
        assert_ne!(protocol & PROTOCOL_F_NET_MTU, 0, "NET_MTU offered");
        let both = REPLY_ACK | PROTOCOL_F_NET_MTU;
        request(&mut conn, SET_PROTOCOL_FEATURES, 0, &both.to_le_bytes(), 0);
        // NET_SET_MTU with an ack asked for: taken (0).
        let ack = request(
            &mut conn,
            NET_SET_MTU,
            HDR_NEED_REPLY,
            &9000u64.to_le_bytes(),
            8,
        );
        assert_eq!(u64_of(&ack), 0);
        assert!(
            q.info().mode.ends_with(" guest-mtu=9000"),
            "{}",
            q.info().mode
        );
        // Out of DPDK's 68..=65535: refused (1), the connection and the MTU stay.
        for bad in [67u64, 65536] {
            let ack = request(
                &mut conn,
                NET_SET_MTU,
                HDR_NEED_REPLY,
                &bad.to_le_bytes(),
                8,
            );
            assert_eq!(u64_of(&ack), 1, "{bad}");
        }
        // Without an ack asked for, nothing comes back; the next request is answered.
        request(&mut conn, NET_SET_MTU, 0, &1500u64.to_le_bytes(), 0);
        let again = u64_of(&request(&mut conn, GET_FEATURES, 0, &[], 8));
        assert_eq!(again, offered);
        assert!(
            q.info().mode.ends_with(" guest-mtu=1500"),
            "{}",
            q.info().mode
        );
        assert_eq!(q.control.refused_requests.load(Ordering::Relaxed), 2);
        assert_eq!(q.control.protocol_errors.load(Ordering::Relaxed), 0);
        // A malformed one (a 4-byte body) ends the connection, as the vhost crate's do.
        request(&mut conn, NET_SET_MTU, 0, &[0; 4], 0);
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        assert!(rest.is_empty());
        for _ in 0..100 {
            if q.control.disconnects.load(Ordering::Relaxed) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(q.control.protocol_errors.load(Ordering::Relaxed), 1);
        assert!(
            !q.info().mode.contains("guest-mtu"),
            "forgotten with the frontend"
        );
    }

    #[test]
    fn server_refuses_a_socket_it_cannot_bind() {
        let e = VhostUserQueue::open(
            "v1",
            &VhostUserOptions {
                socket: PathBuf::from("/nonexistent/dir/v.sock"),
                mode: VhostUserMode::Server,
                queues: 1,
            },
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("v1") && e.contains("listen on"), "{e}");
    }

    #[test]
    fn tx_without_a_guest_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = VhostUserQueue::open(
            "v2",
            &VhostUserOptions {
                socket: dir.path().join("v.sock"),
                mode: VhostUserMode::Client,
                queues: 1,
            },
        )
        .unwrap()
        .remove(0);
        // Taken and dropped as the port's own loss, not left for the caller to count as a
        // full guest ring.
        assert_eq!(q.tx_burst(&[&[0u8; 60], &[0u8; 60]]), 2);
        assert_eq!(q.rx_burst(32, &mut |_| {}), 0);
        assert_eq!(q.losses().text(), "tx-link-down=2");
        assert_eq!(q.ring_counters().tx_dropped, 0);
    }
}
