//! The ports of vecswitch behind one batch interface, [`PortIo`]: a PMD thread polls a port's
//! receive queue with [`PortIo::rx_burst`], which hands each frame's bytes to a closure that
//! copies it into the packet pool, and sends what the graph queued for the port with
//! [`PortIo::tx_burst`]. One `PortIo` is one queue of one port: a multi-queue AF_XDP or
//! vhost-user port is several of them.
//!
//! One folder per port kind, each owning its options (`options.rs`: keys, defaults, canonical
//! text, `open`), its system calls and its unit tests: AF_XDP (`afxdp`), AF_PACKET
//! (`afpacket`), the bridge's host interface (`tap`), the vhost-user backend of a container or
//! VM (`vhost`, over the `vhost-user` crate's rings), a traffic generator with no I/O
//! (`generator`, like VPP's `pg`), pcap files (`pcap`) and DPDK (`dpdk`, feature `dpdk`).
//! [`spec`] is the registry: it parses `type=KIND key=value ...` into a [`PortSpec`] and
//! opens it through the kind's folder.

use std::os::fd::RawFd;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pipeline::{send_copies, PacketId, PacketPool, RxSink, Sent};
use serde::Serialize;

pub mod afpacket;
pub mod afxdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod generator;
pub mod option;
pub mod pcap;
pub mod spec;
pub mod sys;
pub mod tap;
pub mod tunnel;
pub mod vhost;

pub use afpacket::options::AfPacketOptions;
pub use afpacket::port::AfPacketQueue;
pub use afxdp::options::AfXdpOptions;
pub use afxdp::port::AfXdpQueue;
#[cfg(feature = "dpdk")]
pub use dpdk::{options::DpdkOptions, DpdkQueue};
pub use generator::options::GeneratorOptions;
pub use generator::GeneratorPort;
pub use pcap::options::PcapOptions;
pub use pcap::PcapPort;
pub use pipeline::loss::{Direction, PortLoss, PortLosses};
pub use spec::{PortKind, PortSpec, PortSpecError, VlanSpec};
pub use tap::TapPort;
pub use vhost::{VhostUserMode, VhostUserOptions, VhostUserQueue};

/// Whether an idle PMD may sleep on a queue's [`PortIo::rx_fd`] ([`PortIo::before_sleep`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// The descriptor becomes readable when frames arrive.
    Armed,
    /// Frames wait already: look again rather than sleep.
    Pending,
    /// Nothing will make the descriptor readable (a vhost-user guest that has no kick
    /// eventfd): sleep only briefly.
    Nap,
}

/// What `show` prints about a queue: its type and the mode the kernel gave it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct QueueInfo {
    /// Port type: `afxdp`, `afpacket`, `tap`, `generator`, `pcap`.
    pub kind: &'static str,
    /// How it runs, e.g. `native copy need_wakeup`, `generic copy`, `tpacket_v3`.
    pub mode: String,
}

/// One queue of a port, as a PMD thread drives it. The per-packet calls count what they cannot
/// do instead of failing.
pub trait PortIo: Send {
    /// Receives up to `max` frames and hands each one's bytes to `f`, in arrival order.
    /// Returns how many it handed over.
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize;

    /// [`PortIo::rx_burst`] into packets of `sink`, as the PMD receives. A port that can
    /// write frames straight into packet buffers does so ([`RxSink::room`]).
    fn rx_burst_into(&mut self, max: usize, sink: &mut dyn RxSink) -> usize {
        self.rx_burst(max, &mut |f| sink.push(f))
    }

    /// Queues `frames` for transmission in order. Returns how many it took from the front:
    /// queued, or dropped and counted in [`PortIo::losses`] (too long, link down, an error).
    /// The rest found the transmit ring full; the caller counts them as the port's
    /// [`PortIo::tx_full_loss`], so the port does not count them again.
    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize;

    /// What the frames a transmit burst did not take are lost to, for the caller to count:
    /// the transmit ring was full ([`PortLoss::TxRingFull`]; a vhost-user guest's receive
    /// ring, [`PortLoss::GuestRingFull`]).
    fn tx_full_loss(&self) -> PortLoss {
        PortLoss::TxRingFull
    }

    /// Queues packets `ids` of `pool` (at most [`pipeline::MAX_BATCH`]) for transmission in
    /// order, as the PMD sends. The default copies them out with [`PortIo::tx_burst`]; a port
    /// sharing the pool's memory keeps them instead ([`Sent::kept`]).
    fn tx_packets(&mut self, pool: &PacketPool, ids: &[PacketId]) -> Sent {
        send_copies(pool, ids, |frames| self.tx_burst(frames))
    }

    /// Moves the queue into `umem`, the memory `pool` is made of, so that frames pass
    /// between them without copies (AF_XDP: the socket is opened again there with
    /// `XDP_SHARED_UMEM`). Called by the PMD that will receive on the queue; `Ok(false)` for
    /// port types that cannot. Undone by [`PortIo::leave_pool`].
    fn join_pool(
        &mut self,
        _umem: &Arc<crate::afxdp::Umem>,
        _pool: &mut PacketPool,
    ) -> Result<bool, PortError> {
        Ok(false)
    }

    /// The [`pipeline::PacketPool::memory_addr`] of the pool the queue joined, if any.
    fn joined_pool(&self) -> Option<usize> {
        None
    }

    /// Frames of the joined pool the queue holds.
    fn pool_frames_held(&self) -> usize {
        0
    }

    /// Leaves the pool joined with [`PortIo::join_pool`], giving back every frame of it the
    /// queue holds (the socket closes, so the kernel holds none). The queue stays closed until
    /// the PMD that takes it on next joins it to its own pool or calls
    /// [`PortIo::open_alone`]. Called by the PMD that owns `pool`; no effect on another pool.
    fn leave_pool(&mut self, _pool: &mut PacketPool) {}

    /// Opens a queue that [`PortIo::leave_pool`] left closed on memory of its own (one copy
    /// each way), for a PMD that has no pool for it to join. No effect on an open queue.
    fn open_alone(&mut self) {}

    /// Upkeep once per PMD iteration: transmit kicks, completions, refilling receive buffers.
    fn poll(&mut self) {}

    /// How long a busy PMD may go between two looks at an empty queue, in nanoseconds; 0
    /// (the default): every iteration. A queue whose every look costs a system call (a tap's
    /// read(2), 1–2 µs here) asks for more, so that it does not tax the packets of the
    /// shared-memory queues beside it on the same PMD (OVS keeps such ports off its PMDs
    /// altogether, on its main thread). A queue that had frames is looked at again in the
    /// next iteration, and a sleeping PMD still wakes on its descriptor.
    fn rx_poll_interval_ns(&self) -> u64 {
        0
    }

    /// A descriptor that polls readable when frames wait, so an idle PMD can sleep in
    /// `poll(2)`; `None` for queues that are always ready or never receive.
    fn rx_fd(&self) -> Option<RawFd>;

    /// Called by an idle PMD before it sleeps on [`PortIo::rx_fd`]: a queue whose descriptor
    /// tells of frames only when asked (a vhost-user guest kicks only when the switch wants
    /// kicks) asks now, and says whether the PMD may sleep.
    fn before_sleep(&mut self) -> Wakeup {
        Wakeup::Armed
    }

    /// Type and mode, for `show`.
    fn info(&self) -> QueueInfo;

    /// For a port whose link comes and goes by itself (a vhost-user guest connects and
    /// leaves), a flag the port keeps current, so `show` can tell without touching the queue
    /// the PMD polls; `None` for the rest.
    fn link_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }

    /// Counters of this port type (name, value), for `port-stats`; names are kebab-case. They
    /// count from the queue's start (`clear-stats` subtracts what they were then).
    fn counters(&self) -> Vec<(&'static str, u64)>;

    /// Levels rather than counts (frames held, descriptors in flight), for `port-stats`:
    /// `clear-stats` leaves them as they are.
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The longest frame the queue can receive and send, if its type has a limit of its own
    /// below the packet buffers' (an AF_XDP socket: one UMEM frame, or a chain of them with
    /// multi-buffer); an `mtu_request` whose frames would be longer is refused.
    fn max_frame_len(&self) -> Option<usize> {
        None
    }

    /// The frames this queue lost, by reason, from its start: what the kernel's ring
    /// counters say and what the port itself dropped (not the frames a transmit burst did not
    /// take: those the caller counts, see [`PortIo::tx_burst`]).
    fn losses(&self) -> PortLosses {
        PortLosses::default()
    }
}

/// A port that could not be opened, naming the port and the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A system call failed.
    #[error("port {port:?}: {step}: {source}")]
    Io {
        /// The port's name.
        port: String,
        /// The step, e.g. `open /dev/net/tun`.
        step: String,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// The AF_XDP layer refused.
    #[error("port {port:?}: {step}: {source}")]
    Afxdp {
        /// The port's name.
        port: String,
        /// The step, e.g. `open queue 0`.
        step: String,
        /// What the AF_XDP layer said.
        #[source]
        source: crate::afxdp::XskError,
    },
    /// The AF_PACKET layer refused.
    #[error("port {port:?}: {step}: {source}")]
    AfPacket {
        /// The port's name.
        port: String,
        /// The step.
        step: String,
        /// What the AF_PACKET layer said.
        #[source]
        source: crate::afpacket::AfPacketError,
    },
    /// A pcap file could not be read or written.
    #[error("port {port:?}: {step}: {source}")]
    Pcap {
        /// The port's name.
        port: String,
        /// The step, e.g. `read rx file /tmp/in.pcap`.
        step: String,
        /// What `pcap-file` said.
        #[source]
        source: pcap_file::PcapError,
    },
    /// A capture file to replay could not be read (the error names the file and where).
    #[error("port {port:?}: rx file: {source}")]
    Capture {
        /// The port's name.
        port: String,
        #[source]
        source: crate::pcap::capture::CaptureError,
    },
    /// Anything else refused while opening, with the reason.
    #[error("port {port:?}: {step}: {reason}")]
    Invalid {
        /// The port's name.
        port: String,
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
}
