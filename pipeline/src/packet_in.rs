//! Packets for the controller: what a `controller` action hands to the control thread, which
//! turns them into OpenFlow PACKET_IN messages.
//!
//! Translation freezes what the rule knew ([`PacketInContext`]: reason, table, cookie, the
//! OpenFlow `in_port`, registers and metadata at that point, as Open vSwitch freezes them in
//! the controller action's userdata); execution adds the whole packet as it is at that point
//! and its key (tunnel and conntrack fields), and queues it on the bridge's [`PacketInQueue`]. The queue
//! is bounded: a full queue drops the packet-in (counted in [`PacketInQueue::overflows`]), never
//! the PMD's time, so a packet-in storm costs the other flows only the copies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::flowkey::FlowKey;

/// Why a packet goes to the controller (OpenFlow 1.3's `ofp_packet_in_reason`, with Open
/// vSwitch's names as `controller(reason=...)` takes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketInReason {
    /// A table-miss rule (`no_match`).
    NoMatch = 0,
    /// An explicit output to the controller (`action`).
    Action = 1,
    /// A `dec_ttl` that reached zero (`invalid_ttl`).
    InvalidTtl = 2,
    /// OpenFlow 1.4's reasons, which `controller(reason=...)` may name.
    ActionSet = 3,
    Group = 4,
    PacketOut = 5,
    /// `action` in a table-miss rule (priority 0, matching everything): a miss in OpenFlow
    /// 1.3 and later (`no_match` on the wire), `action` in 1.0, as Open vSwitch sends it.
    ExplicitMiss = 6,
}

impl PacketInReason {
    /// Every reason `controller(reason=...)` can name, by number.
    pub const ALL: [PacketInReason; 6] = [
        PacketInReason::NoMatch,
        PacketInReason::Action,
        PacketInReason::InvalidTtl,
        PacketInReason::ActionSet,
        PacketInReason::Group,
        PacketInReason::PacketOut,
    ];

    /// Open vSwitch's name (`ofputil_packet_in_reason_to_string`); an explicit miss is
    /// `no_match`, as OpenFlow 1.3 sends it.
    pub fn name(self) -> &'static str {
        match self {
            PacketInReason::NoMatch | PacketInReason::ExplicitMiss => "no_match",
            PacketInReason::Action => "action",
            PacketInReason::InvalidTtl => "invalid_ttl",
            PacketInReason::ActionSet => "action_set",
            PacketInReason::Group => "group",
            PacketInReason::PacketOut => "packet_out",
        }
    }

    /// The reason as OpenFlow `version` (0x01 = 1.0, 0x04 = 1.3, ...) sends it, as Open
    /// vSwitch encodes it: before 1.4 the 1.4 reasons are `action`; an explicit miss is
    /// `no_match` from 1.3 on and `action` before.
    pub fn on_wire(self, version: u8) -> PacketInReason {
        match self {
            PacketInReason::ExplicitMiss if version >= 0x04 => PacketInReason::NoMatch,
            PacketInReason::ExplicitMiss => PacketInReason::Action,
            PacketInReason::ActionSet | PacketInReason::Group | PacketInReason::PacketOut
                if version < 0x05 =>
            {
                PacketInReason::Action
            }
            r => r,
        }
    }

    /// The reason named `s`.
    pub fn from_name(s: &str) -> Option<PacketInReason> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// What translation knew when it reached a `controller` action; the same for every packet of
/// the megaflow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PacketInContext {
    pub reason: PacketInReason,
    /// The table of the rule whose actions sent it, and that rule's cookie.
    pub table_id: u8,
    pub cookie: u64,
    /// `controller(id=...)`: the controller connections it is for (0: the default ones).
    pub controller_id: u16,
    /// `controller(userdata=...)`.
    pub userdata: Box<[u8]>,
    /// `max_len`, kept: a switch that buffers nothing sends the whole packet whatever it says
    /// (OpenFlow 1.3.5 §7.2.7), as Open vSwitch does.
    pub max_len: u16,
    /// The OpenFlow port the packet came in on (the key's `in_port` is the datapath's number).
    pub in_port: u32,
    /// The pipeline fields at that point.
    pub metadata: u64,
    pub regs: [u32; crate::field::N_REGS],
}

impl Default for PacketInContext {
    /// `controller` with no arguments in table 0, a rule of cookie 0, from port 0.
    fn default() -> PacketInContext {
        PacketInContext {
            reason: PacketInReason::Action,
            table_id: 0,
            cookie: 0,
            controller_id: 0,
            userdata: Box::new([]),
            max_len: u16::MAX,
            in_port: 0,
            metadata: 0,
            regs: [0; crate::field::N_REGS],
        }
    }
}

/// One packet for the controller.
#[derive(Clone, Debug)]
pub struct PacketIn {
    pub context: std::sync::Arc<PacketInContext>,
    /// The packet's key when it was sent (its tunnel and conntrack fields are the packet-in's
    /// metadata; `in_port` is the datapath's number: use the context's).
    pub key: FlowKey,
    /// The packet's length, and the packet.
    pub total_len: u32,
    pub data: Vec<u8>,
}

/// A bounded queue from the PMDs (or any thread) to the control thread: a bridge's
/// packet-ins ([`PacketInQueue`]), its rules' removal notices. A full queue drops new items
/// and counts them, so the producer never waits for the consumer.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    queued: AtomicU64,
    overflows: AtomicU64,
}

/// A bridge's packet-ins on their way to the control thread.
pub type PacketInQueue = BoundedQueue<PacketIn>;

/// Packet-ins (or other items) a bridge holds for the control thread before it drops new ones.
pub const PACKET_IN_QUEUE: usize = 1024;

impl<T> Default for BoundedQueue<T> {
    fn default() -> Self {
        BoundedQueue::with_capacity(PACKET_IN_QUEUE)
    }
}

impl<T> BoundedQueue<T> {
    pub fn with_capacity(capacity: usize) -> BoundedQueue<T> {
        BoundedQueue {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            queued: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
        }
    }

    /// Queues `items`, in order, dropping (and counting) those past the capacity. They are
    /// made before the lock is taken (a packet-in copies its frame), then queued under one
    /// lock for the lot, so the thread that takes them never waits for the copies.
    pub fn push_all(&self, items: impl IntoIterator<Item = T>) {
        let mut items: Vec<T> = items.into_iter().collect();
        if items.is_empty() {
            return;
        }
        let queued = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let n = items.len().min(self.capacity.saturating_sub(q.len()));
            q.extend(items.drain(..n));
            n
        };
        self.queued.fetch_add(queued as u64, Ordering::Relaxed);
        self.overflows
            .fetch_add(items.len() as u64, Ordering::Relaxed);
    }

    /// Takes every item queued, oldest first.
    pub fn take(&self) -> Vec<T> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *q).into()
    }

    /// Items queued so far.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Items dropped so far because the queue was full.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pin(n: u8) -> PacketIn {
        PacketIn {
            context: Arc::new(PacketInContext {
                in_port: 1,
                ..PacketInContext::default()
            }),
            key: FlowKey::default(),
            total_len: 1,
            data: vec![n],
        }
    }

    #[test]
    fn a_full_queue_drops_new_packet_ins_and_counts_them_and_keeps_the_order_of_the_rest() {
        let q = PacketInQueue::with_capacity(3);
        q.push_all((0..2).map(pin));
        q.push_all((2..5).map(pin));
        assert_eq!((q.queued(), q.overflows()), (3, 2));
        let got: Vec<u8> = q.take().iter().map(|p| p.data[0]).collect();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(q.take().is_empty());
        q.push_all([pin(9)]);
        assert_eq!(q.take().len(), 1);
    }

    #[test]
    fn reasons_on_the_wire_follow_the_version() {
        use PacketInReason::*;
        assert_eq!(ExplicitMiss.on_wire(0x04), NoMatch);
        assert_eq!(ExplicitMiss.on_wire(0x01), Action);
        assert_eq!(Group.on_wire(0x04), Action);
        assert_eq!(Group.on_wire(0x05), Group);
        assert_eq!(InvalidTtl.on_wire(0x04), InvalidTtl);
    }

    #[test]
    fn reasons_have_ovs_names() {
        for r in PacketInReason::ALL {
            assert_eq!(PacketInReason::from_name(r.name()), Some(r));
        }
        assert_eq!(
            PacketInReason::from_name("no_match"),
            Some(PacketInReason::NoMatch)
        );
        assert_eq!(PacketInReason::from_name("bogus"), None);
    }
}
