//! The statistics a megaflow hands NetFlow. A translation with NetFlow on gives its megaflow a
//! [`FlowSink`] among its stats sinks; the classifier credits it once per megaflow per batch,
//! with the counts it already sums for the megaflow's own stats (no per-packet work). The sink
//! has one writer, the PMD whose megaflow holds it, so the credit is plain loads and stores
//! under a sequence counter (a seqlock), no locked instruction; the control thread reads a
//! consistent snapshot. When the megaflow goes (idle eviction, revalidation, flush) the PMD
//! drops its reference, and the reader sees that it is the last holder: Open vSwitch's
//! `netflow_flow_clear` of a deleted datapath flow.

use std::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use pipeline::StatsSink;

use crate::exporter::NetflowKey;

/// Counters of a sink at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub packets: u64,
    pub bytes: u64,
    /// When the first credited packet passed (0 before).
    pub first_used_ns: u64,
    pub used_ns: u64,
}

/// The NetFlow share of one megaflow. See the module documentation.
#[derive(Debug)]
pub struct FlowSink {
    pub key: NetflowKey,
    /// OpenFlow output interface or one of the `NF_OUT_*` values.
    pub output_iface: u16,
    /// Odd while the writer updates.
    seq: AtomicU32,
    packets: AtomicU64,
    bytes: AtomicU64,
    first_used_ns: AtomicU64,
    used_ns: AtomicU64,
    /// Flags not yet taken by the reader (it swaps them out).
    tcp_flags: AtomicU16,
}

impl FlowSink {
    pub fn new(key: NetflowKey, output_iface: u16) -> FlowSink {
        FlowSink {
            key,
            output_iface,
            seq: AtomicU32::new(0),
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            first_used_ns: AtomicU64::new(0),
            used_ns: AtomicU64::new(0),
            tcp_flags: AtomicU16::new(0),
        }
    }

    /// A consistent snapshot of the counters. A writer caught mid-credit (a PMD descheduled
    /// there) is waited for, yielding the CPU after a short spin.
    pub fn counts(&self) -> SinkCounts {
        let mut spins = 0u32;
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let c = SinkCounts {
                    packets: self.packets.load(Ordering::Relaxed),
                    bytes: self.bytes.load(Ordering::Relaxed),
                    first_used_ns: self.first_used_ns.load(Ordering::Relaxed),
                    used_ns: self.used_ns.load(Ordering::Relaxed),
                };
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return c;
                }
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Takes the TCP flags credited since the last call. Read after [`FlowSink::counts`]: the
    /// flags of the packets counted there are in (flags of a later credit may come early).
    /// A credit that races this swap (between its load of the flags and its check) may see
    /// its bits as already set and skip them: a window of a few instructions, the price of
    /// no locked instruction per credit.
    pub fn take_tcp_flags(&self) -> u16 {
        self.tcp_flags.swap(0, Ordering::AcqRel)
    }

    /// True when the reader holds the only reference: the megaflow is gone and will credit
    /// nothing more.
    pub fn orphaned(self: &Arc<Self>) -> bool {
        // Acquire pairs with the Release of the PMD's drop: its last credit is visible.
        let alone = Arc::strong_count(self) == 1;
        fence(Ordering::Acquire);
        alone
    }
}

impl StatsSink for FlowSink {
    /// One writer (see the module documentation): plain stores inside the seqlock; the flags
    /// take a locked OR only when they bring a new bit.
    fn credit(&self, packets: u64, bytes: u64, tcp_flags: u16, used_ns: u64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let before = self.packets.load(Ordering::Relaxed);
        if before == 0 {
            self.first_used_ns.store(used_ns, Ordering::Relaxed);
        }
        self.packets
            .store(before.wrapping_add(packets), Ordering::Relaxed);
        self.bytes.store(
            self.bytes.load(Ordering::Relaxed).wrapping_add(bytes),
            Ordering::Relaxed,
        );
        if used_ns > self.used_ns.load(Ordering::Relaxed) {
            self.used_ns.store(used_ns, Ordering::Relaxed);
        }
        let flags = self.tcp_flags.load(Ordering::Relaxed);
        if flags | tcp_flags != flags {
            self.tcp_flags.fetch_or(tcp_flags, Ordering::Relaxed);
        }
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_add_up_and_flags_are_taken_once() {
        let s = Arc::new(FlowSink::new(NetflowKey::default(), 2));
        s.credit(2, 196, 0x02, 10);
        s.credit(1, 98, 0x10, 5);
        assert_eq!(
            s.counts(),
            SinkCounts {
                packets: 3,
                bytes: 294,
                first_used_ns: 10,
                used_ns: 10
            }
        );
        assert_eq!(s.take_tcp_flags(), 0x12);
        assert_eq!(s.take_tcp_flags(), 0);
        assert!(s.orphaned());
        let held = s.clone();
        assert!(!s.orphaned());
        drop(held);
        assert!(s.orphaned());
    }

    #[test]
    fn a_reader_never_sees_a_torn_credit() {
        let s = Arc::new(FlowSink::new(NetflowKey::default(), 2));
        let w = s.clone();
        let writer = std::thread::spawn(move || {
            for i in 1..=200_000u64 {
                w.credit(1, 100, 0, i);
            }
        });
        let mut last = 0;
        while !writer.is_finished() {
            let c = s.counts();
            assert_eq!(c.bytes, c.packets * 100);
            assert_eq!(c.used_ns, c.packets);
            assert!(c.packets >= last);
            last = c.packets;
        }
        writer.join().unwrap();
        assert_eq!(s.counts().packets, 200_000);
    }
}
