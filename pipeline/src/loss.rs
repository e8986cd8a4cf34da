//! Why a port loses frames: [`PortLoss`] names every reason once, and [`PortLosses`] counts
//! frames by reason (a seam type, as [`crate::Sent`] is: the switch and the ports both count
//! with it). Each port type counts what it loses itself (`ports::PortIo::losses`:
//! the kernel's ring counters, frames too long for its buffers, a guest that is gone); the
//! switch counts what its intake and transmit queues lose (no free packet buffer, a transmit
//! ring that took fewer frames than it was given). `drop-reasons` shows both as
//! `port.<port>.<reason>`, beside the graph's `<node>.<reason>`, so that every frame that
//! entered the switch and did not leave it has a name.
//!
//! A new reason is a new variant here, with its name and meaning: the one place to add it.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Which way the frame was going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Arriving at the switch.
    Rx,
    /// Leaving the switch.
    Tx,
}

/// A reason a port lost a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortLoss {
    /// The kernel found the socket's receive ring full: the switch did not drain it in time.
    RxRingFull,
    /// AF_XDP: the kernel found no free frame on the fill ring to copy the frame into.
    RxFillRingEmpty,
    /// Longer than the buffer that was to hold it.
    RxTooLong,
    /// The switch's packet pool (or DPDK's mbuf pool) had no free buffer.
    RxNoBuffers,
    /// DPDK: the device's receive ring was full (`imissed`).
    RxMissed,
    /// A receive error the device or the kernel reported.
    RxErrors,
    /// Shorter than an Ethernet header, or a frame the port could not read.
    RxMalformed,
    /// A port handed the switch more frames than a batch holds (never expected).
    RxBatchFull,
    /// A zero-copy frame that was not the pool's (never expected).
    RxForeignFrame,
    /// Longer than the port's MTU allows (the MTU plus the Ethernet header, and 4 bytes more
    /// for an 802.1Q-tagged frame).
    RxMtuExceeded,
    /// The transmit ring took fewer frames than it was given (no room or no free frame).
    TxRingFull,
    /// vhost-user: the guest offered too few receive buffers (it does not drain its ring).
    GuestRingFull,
    /// Longer than a transmit buffer holds.
    TxTooLong,
    /// DPDK: no free mbuf to copy the frame into.
    TxNoBuffers,
    /// Nothing to send to: a tap that is down, a vhost-user port with no guest.
    TxLinkDown,
    /// vhost-user: another thread held the guest's receive ring.
    TxBusy,
    /// AF_XDP: the kernel refused transmit descriptors as invalid (`tx_invalid_descs`).
    TxInvalidDescs,
    /// A transmit error the device or the kernel reported.
    TxErrors,
    /// A port with no queue to transmit on (never expected).
    TxNoQueue,
    /// Longer than the output port's MTU allows (OVS-DPDK's `ovs_tx_mtu_exceeded_drops`).
    TxMtuExceeded,
    /// vhost-user: a malformed guest descriptor chain (either direction).
    BadDescriptors,
}

impl PortLoss {
    /// Every reason, in the order they are shown.
    pub const ALL: [PortLoss; 21] = [
        PortLoss::RxRingFull,
        PortLoss::RxFillRingEmpty,
        PortLoss::RxTooLong,
        PortLoss::RxNoBuffers,
        PortLoss::RxMissed,
        PortLoss::RxErrors,
        PortLoss::RxMalformed,
        PortLoss::RxBatchFull,
        PortLoss::RxForeignFrame,
        PortLoss::RxMtuExceeded,
        PortLoss::TxRingFull,
        PortLoss::GuestRingFull,
        PortLoss::TxTooLong,
        PortLoss::TxNoBuffers,
        PortLoss::TxLinkDown,
        PortLoss::TxBusy,
        PortLoss::TxInvalidDescs,
        PortLoss::TxErrors,
        PortLoss::TxNoQueue,
        PortLoss::TxMtuExceeded,
        PortLoss::BadDescriptors,
    ];

    /// The counter's name (kebab-case), as `drop-reasons` prints it after `port.<port>.`.
    pub fn name(self) -> &'static str {
        match self {
            PortLoss::RxRingFull => "rx-ring-full",
            PortLoss::RxFillRingEmpty => "rx-fill-ring-empty",
            PortLoss::RxTooLong => "rx-too-long",
            PortLoss::RxNoBuffers => "rx-no-buffers",
            PortLoss::RxMissed => "rx-missed",
            PortLoss::RxErrors => "rx-errors",
            PortLoss::RxMalformed => "rx-malformed",
            PortLoss::RxBatchFull => "rx-batch-full",
            PortLoss::RxForeignFrame => "rx-foreign-frame",
            PortLoss::RxMtuExceeded => "rx-mtu-exceeded",
            PortLoss::TxRingFull => "tx-ring-full",
            PortLoss::GuestRingFull => "guest-ring-full",
            PortLoss::TxTooLong => "tx-too-long",
            PortLoss::TxNoBuffers => "tx-no-buffers",
            PortLoss::TxLinkDown => "tx-link-down",
            PortLoss::TxBusy => "tx-busy",
            PortLoss::TxInvalidDescs => "tx-invalid-descs",
            PortLoss::TxErrors => "tx-errors",
            PortLoss::TxNoQueue => "tx-no-queue",
            PortLoss::TxMtuExceeded => "tx-mtu-exceeded",
            PortLoss::BadDescriptors => "bad-descriptors",
        }
    }

    /// Which way the lost frame was going (a bad descriptor counts as received: the guest's
    /// chains are read on both rings, and most are its transmit ring's).
    pub fn direction(self) -> Direction {
        match self {
            PortLoss::RxRingFull
            | PortLoss::RxFillRingEmpty
            | PortLoss::RxTooLong
            | PortLoss::RxNoBuffers
            | PortLoss::RxMissed
            | PortLoss::RxErrors
            | PortLoss::RxMalformed
            | PortLoss::RxBatchFull
            | PortLoss::RxForeignFrame
            | PortLoss::RxMtuExceeded
            | PortLoss::BadDescriptors => Direction::Rx,
            _ => Direction::Tx,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Frames lost, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortLosses([u64; PortLoss::ALL.len()]);

impl PortLosses {
    /// Counts `n` frames lost for `reason`.
    #[inline]
    pub fn add(&mut self, reason: PortLoss, n: u64) {
        self.0[reason.index()] += n;
    }

    /// Frames lost for `reason`.
    pub fn get(&self, reason: PortLoss) -> u64 {
        self.0[reason.index()]
    }

    /// The reasons with frames lost, and how many.
    pub fn iter(&self) -> impl Iterator<Item = (PortLoss, u64)> + '_ {
        PortLoss::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }

    /// Every frame lost.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Frames lost on the way in (`Rx`) or out (`Tx`).
    pub fn total_of(&self, d: Direction) -> u64 {
        self.iter()
            .filter(|(r, _)| r.direction() == d)
            .map(|(_, n)| n)
            .sum()
    }

    /// Whether no frame was lost.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &PortLosses) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Each count less `base`'s (0 where `base` has more: a counter that started again).
    pub fn since(&self, base: &PortLosses) -> PortLosses {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(base.0.iter()) {
            *a = a.saturating_sub(*b);
        }
        out
    }

    /// `name=count` for every reason with frames lost, space-separated.
    pub fn text(&self) -> String {
        self.iter()
            .map(|(r, n)| format!("{}={n}", r.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A map of the reasons with frames lost: `{"rx-ring-full": 12, ...}`.
impl Serialize for PortLosses {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (r, n) in self.iter() {
            m.serialize_entry(r.name(), &n)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_a_kebab_case_name() {
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in PortLoss::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?} out of order");
            assert!(seen.insert(r.name()), "{} twice", r.name());
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn losses_add_merge_subtract_and_print_only_what_is_not_zero() {
        let mut a = PortLosses::default();
        a.add(PortLoss::RxRingFull, 5);
        a.add(PortLoss::GuestRingFull, 2);
        let mut b = a;
        b.merge(&a);
        assert_eq!(b.get(PortLoss::RxRingFull), 10);
        assert_eq!(
            (b.total_of(Direction::Rx), b.total_of(Direction::Tx)),
            (10, 4)
        );
        assert_eq!(b.since(&a), a);
        assert_eq!(
            a.since(&b),
            PortLosses::default(),
            "a restarted counter reads 0"
        );
        assert_eq!(a.text(), "rx-ring-full=5 guest-ring-full=2");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"rx-ring-full":5,"guest-ring-full":2}"#
        );
        assert!(PortLosses::default().is_empty());
    }
}
