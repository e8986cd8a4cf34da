//! [`PortIo`] over an [`AfPacketPort`] (a `TPACKET_V3` receive ring and a `TPACKET_V2`
//! transmit ring on one interface). The port sits in a `RefCell` only because reading the
//! kernel's `PACKET_STATISTICS` resets them, so the layer accumulates them behind `&mut`,
//! while `counters` takes `&self`: the batch calls reach the port through `get_mut` (no
//! runtime check), and `counters` cannot overlap them (`PortIo` is `Send`, not `Sync`).

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};

use crate::afpacket::{AfPacketConfig, AfPacketPort};

use crate::{PortError, PortIo, PortLoss, PortLosses, QueueInfo};

/// An AF_PACKET port as a [`PortIo`] (one queue).
pub struct AfPacketQueue {
    port: RefCell<AfPacketPort>,
    rx_fd: RawFd,
}

impl AfPacketQueue {
    /// Opens `ifname`; errors name `port` (the switch's name for it).
    pub fn open(
        port: &str,
        ifname: &str,
        config: &AfPacketConfig,
    ) -> Result<AfPacketQueue, PortError> {
        let inner = AfPacketPort::open(ifname, config).map_err(|source| PortError::AfPacket {
            port: port.to_string(),
            step: format!("open AF_PACKET sockets on {ifname}"),
            source,
        })?;
        let rx_fd = inner.rx_fd().as_raw_fd();
        Ok(AfPacketQueue {
            port: RefCell::new(inner),
            rx_fd,
        })
    }
}

impl PortIo for AfPacketQueue {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let max = max.min(u32::MAX as usize) as u32;
        self.port.get_mut().rx_burst(max, |b| f(b)) as usize
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        self.port.get_mut().tx_burst(frames) as usize
    }

    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.rx_fd)
    }

    fn info(&self) -> QueueInfo {
        QueueInfo {
            kind: "afpacket",
            mode: "tpacket_v3".to_string(),
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let Ok(mut port) = self.port.try_borrow_mut() else {
            // Unreachable through `&self` alone; say so rather than panic.
            return vec![("counters-busy", 1)];
        };
        let c = port.counters();
        let mut out = vec![
            ("rx-truncated", c.rx_truncated),
            ("rx-csum-not-ready", c.rx_csum_not_ready),
            ("rx-vlan-restored", c.rx_vlan_restored),
            ("rx-bad-blocks", c.rx_bad_blocks),
            ("tx-too-long", c.tx_too_long),
            ("tx-ring-full-bursts", c.tx_ring_full),
            ("tx-kicks", c.tx_kicks),
            ("tx-kick-errors", c.tx_kick_errors),
        ];
        match port.stats() {
            Ok(s) => out.extend([
                ("rx-kernel-packets", s.packets),
                ("rx-kernel-drops", s.drops),
                ("rx-freeze-q", s.freeze_q_cnt),
            ]),
            Err(_) => out.push(("kernel-stats-unavailable", 1)),
        }
        out
    }

    fn losses(&self) -> PortLosses {
        let mut l = PortLosses::default();
        let Ok(mut port) = self.port.try_borrow_mut() else {
            return l;
        };
        let c = port.counters();
        // tp_drops: the kernel had no free block (or the socket's buffer was full).
        if let Ok(s) = port.stats() {
            l.add(PortLoss::RxRingFull, s.drops);
        }
        l.add(PortLoss::RxTooLong, c.rx_truncated);
        l.add(PortLoss::TxTooLong, c.tx_too_long);
        l
    }
}
