//! Removal notices: a rule added with `send_flow_rem` that leaves the tables because a
//! timeout ran out, a delete selected it, or the group it used was deleted is queued here
//! (OpenFlow 1.3.5 section 7.4.2) for the control thread to send as FLOW_REMOVED. Rules
//! replaced by an add of the same match, or changed by a modify, are not removed (as in Open
//! vSwitch, whose `removed_reason` stays unset for them). The queue is bounded: a full one
//! drops the notice and counts it.

use std::sync::Arc;

use crate::rule::Rule;

/// `send_flow_rem` (`OFPFF_SEND_FLOW_REM`).
pub const SEND_FLOW_REM: u16 = 1;

/// Why a rule left the tables (`ofp_flow_removed_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RemovedReason {
    IdleTimeout = 0,
    HardTimeout = 1,
    Delete = 2,
    GroupDelete = 3,
}

/// One removed rule, as it was when it went.
#[derive(Clone, Debug)]
pub struct FlowRemoved {
    pub rule: Arc<Rule>,
    pub reason: RemovedReason,
    /// When it was removed, on the rules' clock (its duration ends there).
    pub removed_ns: u64,
}

impl FlowRemoved {
    /// How long the rule lived, in ns.
    pub fn duration_ns(&self) -> u64 {
        self.removed_ns.saturating_sub(self.rule.created_ns)
    }
}

/// A bridge's removal notices on their way to the control thread.
pub type FlowRemovedQueue = pipeline::BoundedQueue<FlowRemoved>;

/// Queues a notice for each of `rules` that asked for one.
pub(crate) fn notify(
    q: &FlowRemovedQueue,
    rules: impl IntoIterator<Item = (Arc<Rule>, RemovedReason)>,
    now_ns: u64,
) {
    q.push_all(
        rules
            .into_iter()
            .filter(|(r, _)| r.spec.flags & SEND_FLOW_REM != 0)
            .map(|(rule, reason)| FlowRemoved {
                rule,
                reason,
                removed_ns: now_ns,
            }),
    );
}
