//! [`PortIo`] for one AF_XDP queue: an [`XskPort`] whose received frames are copied out
//! through the caller's closure and handed straight back to the fill ring, so the PMD never
//! holds UMEM frames between iterations. The queues of one port are one `AfXdpQueue` each
//! (each with a UMEM of its own, for its own PMD thread) sharing the interface's XDP program:
//! the first queue attaches it, the others open with [`AfXdpQueue::open_with_program`]. `info` says which XDP hook the kernel gave the port
//! (`native` or `generic`, the latter also when `xdp-mode=auto` fell back) and whether it runs
//! copy or zero-copy; `counters` adds the socket's `XDP_STATISTICS` to the port's own.

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::afxdp::{RxDesc, XdpMode, XdpProgram, XskConfig, XskError, XskPort};

use super::{PortError, PortIo, QueueInfo};

/// One AF_XDP queue as a [`PortIo`].
pub struct AfXdpQueue {
    port: XskPort,
    /// Receive descriptors of the current burst; capacity fixed at open (one ring).
    descs: Vec<RxDesc>,
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
    /// the program of the port's first queue (`first.xsk().program()`).
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
        let err = |source| PortError::Afxdp {
            port: port.to_string(),
            step: format!("open AF_XDP socket on {ifname} queue {queue}"),
            source,
        };
        // Checked first so that a missing interface is reported as such, also to a user who
        // may not create AF_XDP sockets (the UMEM is registered before the bind looks).
        if crate::afxdp::if_index(ifname).is_none() {
            return Err(err(XskError::NoSuchInterface {
                ifname: ifname.to_string(),
            }));
        }
        let xsk = match prog {
            Some(prog) => XskPort::open_with_program(ifname, queue, config, prog),
            None => XskPort::open(ifname, queue, config),
        }
        .map_err(err)?;
        Ok(AfXdpQueue {
            port: xsk,
            descs: Vec::with_capacity(config.ring_size as usize),
        })
    }

    /// The underlying socket.
    pub fn xsk(&self) -> &XskPort {
        &self.port
    }
}

/// `native copy need_wakeup`, `generic copy`, `native zero-copy`, ...
pub fn mode_text(port: &XskPort) -> String {
    let mode = port.mode();
    let mut text = String::from(match mode.xdp {
        XdpMode::Driver => "native",
        XdpMode::Generic => "generic",
    });
    text.push_str(if mode.zero_copy {
        " zero-copy"
    } else {
        " copy"
    });
    if mode.need_wakeup {
        text.push_str(" need_wakeup");
    }
    if mode.shared_umem {
        text.push_str(" shared_umem");
    }
    text
}

impl PortIo for AfXdpQueue {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        self.descs.clear();
        // Never more than the vector holds, so that the burst does not allocate.
        let max = max.min(self.descs.capacity()) as u32;
        let n = self.port.rx_burst(&mut self.descs, max);
        for d in &self.descs {
            f(self.port.packet(d.addr, d.len));
            self.port.recycle(d.addr);
        }
        if n > 0 {
            self.port.refill();
        }
        n as usize
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        self.port.tx_burst(frames) as usize
    }

    fn poll(&mut self) {
        self.port.poll();
    }

    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.port.raw_fd())
    }

    fn info(&self) -> QueueInfo {
        QueueInfo {
            kind: "afxdp",
            mode: mode_text(&self.port),
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.port.counters();
        let mut out = vec![
            ("tx-too-long", c.tx_too_long),
            ("tx-no-room", c.tx_no_room),
            ("wakeups", c.wakeups),
            ("wakeup-errors", c.wakeup_errors),
            ("foreign-frames", c.foreign_frames),
            ("tx-in-flight", u64::from(self.port.tx_in_flight())),
        ];
        // One getsockopt; the control plane asks, never the packet path.
        match self.port.stats() {
            Ok(s) => out.extend([
                ("rx-dropped", s.rx_dropped),
                ("rx-invalid-descs", s.rx_invalid_descs),
                ("tx-invalid-descs", s.tx_invalid_descs),
                ("rx-ring-full", s.rx_ring_full),
                ("rx-fill-ring-empty-descs", s.rx_fill_ring_empty_descs),
                ("tx-ring-empty-descs", s.tx_ring_empty_descs),
            ]),
            Err(_) => out.push(("kernel-stats-unavailable", 1)),
        }
        out
    }
}
