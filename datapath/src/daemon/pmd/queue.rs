//! [`Queue`]: one queue of one port, as the PMDs share it.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use ports::{PortIo, QueueInfo};

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
    pub io: Mutex<Box<dyn PortIo>>,
    /// Busy cycles the receiving PMD spent on this queue (receive, graph, transmit): what
    /// cycle-based placement balances.
    pub cycles: AtomicU64,
    /// Packets received on this queue.
    pub packets: AtomicU64,
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
            io: Mutex::new(io),
            cycles: AtomicU64::new(0),
            packets: AtomicU64::new(0),
        }
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
