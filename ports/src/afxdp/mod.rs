//! AF_XDP ports over `libc`, with no libbpf, libxdp or clang: a UMEM of
//! `pipeline::buffer::FRAME_SIZE` frames whose packets land `HEADROOM` bytes in (so that a
//! packet pool can be made of it, `Umem::pool_memory`), the four rings, an `XskPort` bound to one (interface,
//! queue) with `XDP_USE_NEED_WAKEUP`, and the six-instruction XSKMAP redirect program given as
//! bytes, attached through a BPF link so that it disappears with the process.
//!
//! What the kernel (6.18) allowed on veth, as the tests in `vecswitch/tests/afxdp.rs` check:
//! native (driver) XDP attaches and is what `XdpModeRequest::Auto` gets; generic mode works when
//! asked for; the socket runs in copy mode (`BindMode::Auto` falls back silently, `ZeroCopy` is
//! refused with `EOPNOTSUPP`); `XDP_SHARED_UMEM` works for a second socket on another veth with
//! its own fill and completion rings. In copy mode the kernel sends at most 32 descriptors per
//! `sendto` kick, and the transmit calls only queue: a PMD loop calls `XskPort::poll` once per
//! iteration, which kicks each port once for everything queued. The kernel takes one
//! program per interface hook, so the ports on an interface's queues share one `XdpProgram`
//! (`XskPort::open_with_program` with the first port's `XskPort::program`), each in its queue's
//! XSKMAP slot; on veth a frame arrives on the receive queue of the index of the transmit queue
//! the peer sent it on. Frames: a port owns a disjoint range of the UMEM, half of it kept on
//! the fill ring for rx and the rest free for tx; received frames belong to the caller until
//! `recycle`, transmitted frames come back through the completion ring. A killed process leaves no program behind (the
//! link dies with it) and the next bind retries the kernel's asynchronous `EBUSY`;
//! `detach_stale` removes programs that other tools attached through netlink. Rate, one quick
//! run (ignored test `measure_rx_rate`, release): fed by a second port's copy-mode tx in the
//! namespace on the same two cores, the generator offers only ~0.19 Mpps and the port receives
//! ~0.13 Mpps, the rest counted as `rx_fill_ring_empty_descs` (the busy-polling receiver loses
//! its core to the generator's softirq); compare with trafgen before drawing conclusions.
#![allow(unsafe_code)]

pub mod options;
pub mod port;
mod ring;
mod socket;
mod sys;
mod umem;
mod xdp_prog;

pub use socket::{
    BindMode, PortCounters, RxDesc, XskConfig, XskPort, XskStats, MAX_CHAIN_DESCS, MAX_CHAIN_FRAME,
};
pub use umem::{Umem, SINGLE_BUFFER_FRAME_SIZE, UMEM_HEADROOM, XDP_PACKET_HEADROOM};
pub use xdp_prog::{detach_stale, program_for_map, XdpMode, XdpModeRequest, XdpProgram, PROGRAM};

/// Interface index of `ifname`, if it exists.
pub fn if_index(ifname: &str) -> Option<u32> {
    sys::if_index(ifname)
}

/// What the kernel gave the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XskMode {
    /// The XDP hook of the redirect program; `None` for a transmit-only socket
    /// ([`XskConfig::steer`] off).
    pub xdp: Option<XdpMode>,
    /// Whether the socket runs zero-copy (`XDP_OPTIONS_ZEROCOPY`).
    pub zero_copy: bool,
    /// Whether `XDP_USE_NEED_WAKEUP` is in effect.
    pub need_wakeup: bool,
    /// Whether the socket shares another socket's UMEM (`XDP_SHARED_UMEM`).
    pub shared_umem: bool,
    /// Whether XDP multi-buffer (`XDP_USE_SG`) is in effect: frames longer than a UMEM frame
    /// come and go as chains of descriptors.
    pub multi_buffer: bool,
}

/// Errors of opening and managing AF_XDP ports (control plane; the batch calls count instead).
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The named interface does not exist.
    #[error("interface {ifname:?}: no such interface")]
    NoSuchInterface {
        /// The name asked for.
        ifname: String,
    },
    /// A configuration value was refused.
    #[error("{field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// The step that failed.
        what: &'static str,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// The verifier refused the redirect program.
    #[error("bpf BPF_PROG_LOAD: {source}; verifier log: {log}")]
    ProgramLoad {
        /// The kernel's error.
        #[source]
        source: std::io::Error,
        /// The verifier's log.
        log: String,
    },
    /// A lock guarding UMEM bookkeeping was poisoned by a panicking thread.
    #[error("umem bookkeeping lock poisoned")]
    Poisoned,
}

/// Maps an `io::Error` to [`XskError::Sys`] naming the step.
pub(crate) fn sys_err(what: &'static str) -> impl Fn(std::io::Error) -> XskError {
    move |source| XskError::Sys { what, source }
}
