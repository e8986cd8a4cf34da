//! [`Queue`]: one queue of one port, as the PMDs share it, and its counters since the last
//! `clear-stats` (the port type's count from the queue's start: what they were at the clear
//! is kept here and subtracted).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ports::{PortIo, PortLosses, QueueInfo};

/// One queue of one port, shared between the PMD that receives on it and the PMDs that send
/// on it (each holds the lock for one burst).
pub struct Queue {
    pub bridge: String,
    pub port: String,
    pub ofport: u32,
    /// The port's datapath number (unique across bridges): its packets' `in_port`.
    pub dp_port: u32,
    pub queue_id: u32,
    /// [`PortIo::rx_poll_interval_ns`].
    pub rx_poll_interval_ns: u64,
    /// [`PortIo::link_flag`].
    pub link: Option<Arc<AtomicBool>>,
    /// [`PortIo::max_frame_len`] at open: what `mtu_request` is checked against.
    pub max_frame: Option<usize>,
    pub io: Mutex<Box<dyn PortIo>>,
    /// Busy cycles the receiving PMD spent on this queue (receive, graph, transmit): what
    /// cycle-based placement balances.
    pub cycles: AtomicU64,
    /// Packets received on this queue.
    pub packets: AtomicU64,
    /// The counts at the last `clear-stats`.
    cleared: Mutex<Cleared>,
}

/// A queue's counts at the last `clear-stats`.
#[derive(Default)]
struct Cleared {
    counters: BTreeMap<&'static str, u64>,
    losses: PortLosses,
    cycles: u64,
    packets: u64,
}

impl Queue {
    /// Queue `queue_id` of port `port` of `bridge`, OpenFlow port `ofport`, datapath port
    /// `dp_port`.
    pub fn new(
        bridge: &str,
        port: &str,
        (ofport, dp_port): (u32, u32),
        queue_id: u32,
        io: Box<dyn PortIo>,
    ) -> Queue {
        Queue {
            bridge: bridge.to_string(),
            port: port.to_string(),
            ofport,
            dp_port,
            queue_id,
            rx_poll_interval_ns: io.rx_poll_interval_ns(),
            link: io.link_flag(),
            max_frame: io.max_frame_len(),
            io: Mutex::new(io),
            cycles: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            cleared: Mutex::new(Cleared::default()),
        }
    }

    fn cleared(&self) -> MutexGuard<'_, Cleared> {
        self.cleared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The port type's counters since the last [`Queue::clear`], then its gauges as they are.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let (counters, gauges) = {
            let io = self.lock();
            (io.counters(), io.gauges())
        };
        let base = self.cleared();
        counters
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.saturating_sub(base.counters.get(k).copied().unwrap_or(0)),
                )
            })
            .chain(gauges)
            .collect()
    }

    /// The frames the port type lost on this queue since the last [`Queue::clear`].
    pub fn losses(&self) -> PortLosses {
        let now = self.lock().losses();
        now.since(&self.cleared().losses)
    }

    /// Busy cycles and packets received since the last [`Queue::clear`] (placement goes on
    /// with the totals).
    pub fn cycles_and_packets(&self) -> (u64, u64) {
        let base = self.cleared();
        (
            self.cycles
                .load(Ordering::Relaxed)
                .saturating_sub(base.cycles),
            self.packets
                .load(Ordering::Relaxed)
                .saturating_sub(base.packets),
        )
    }

    /// Counts from zero again: the port type's counters and losses, and the cycles and
    /// packets shown (not those placement weighs).
    pub fn clear(&self) {
        let (counters, losses) = {
            let io = self.lock();
            (io.counters(), io.losses())
        };
        let mut base = self.cleared();
        base.counters = counters.into_iter().collect();
        base.losses = losses;
        base.cycles = self.cycles.load(Ordering::Relaxed);
        base.packets = self.packets.load(Ordering::Relaxed);
    }

    /// The port I/O, locked (a panic elsewhere leaves the queue usable).
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn PortIo>> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Type and mode, for `show` (the mode changes when an AF_XDP queue joins a PMD's pool).
    pub fn info(&self) -> QueueInfo {
        self.lock().info()
    }
}
