//! Time for everything that ages (MAC table, megaflows, conntrack, NetFlow, rule timeouts).
//!
//! The daemon reads a monotonic clock; replay reads the pcap timestamps through a
//! [`VirtualClock`], which is what makes replay deterministic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A source of nanoseconds that never goes backwards.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an arbitrary, fixed origin.
    fn now_ns(&self) -> u64;
}

/// Wall-independent monotonic time, for the daemon.
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    pub fn new() -> MonotonicClock {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// Time that moves only when told to: replay sets it to each packet's capture timestamp.
#[derive(Default)]
pub struct VirtualClock {
    now: AtomicU64,
}

impl VirtualClock {
    pub fn new(start_ns: u64) -> VirtualClock {
        VirtualClock {
            now: AtomicU64::new(start_ns),
        }
    }

    /// Moves the clock to `ns`; a time in the past is ignored (time never goes backwards).
    pub fn advance_to(&self, ns: u64) {
        self.now.fetch_max(ns, Ordering::Relaxed);
    }
}

impl Clock for VirtualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_never_goes_back() {
        let c = VirtualClock::new(10);
        c.advance_to(5);
        assert_eq!(c.now_ns(), 10);
        c.advance_to(20);
        assert_eq!(c.now_ns(), 20);
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let c = MonotonicClock::new();
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a);
    }
}
