//! Execution of datapath actions over one megaflow's group of packets.

use crate::buffer::PacketId;
use crate::dpaction::{DpAction, ExecDrop};
use crate::graph::{Ctx, Next};

/// Where execution sends packets that leave through something other than a port.
#[derive(Clone, Copy, Debug)]
pub struct ExecTargets {
    /// The executing node's drop-reason index of [`ExecDrop::NoOutput`]; the other
    /// [`ExecDrop`] reasons follow it in order (`drop_base + ExecDrop::X as u16`).
    pub drop_base: u16,
    /// The executing node's next index for recirculation, if it has one.
    pub recirc_next: Option<u16>,
}

/// Executes `actions` on every packet of `pkts` and writes each packet's fate to `next`:
/// [`Next::CONSUMED`] once it was queued for output, a drop with an [`ExecDrop`] reason
/// otherwise, or the recirculation next index.
pub fn execute(
    actions: &[DpAction],
    cx: &mut Ctx<'_>,
    pkts: &[PacketId],
    next: &mut [Next],
    targets: ExecTargets,
) {
    let last_output = actions
        .iter()
        .rposition(|a| matches!(a, DpAction::Output(_)));
    for (i, &p) in pkts.iter().enumerate() {
        next[i] = Next::drop(targets.drop_base + ExecDrop::NoOutput as u16);
        for (ai, a) in actions.iter().enumerate() {
            if let DpAction::Output(port) = *a {
                if Some(ai) == last_output {
                    if cx.tx.enqueue(port, p, cx.pool) {
                        next[i] = Next::CONSUMED;
                    } else {
                        next[i] = Next::CONSUMED; // freed and counted by the tx queues
                    }
                } else if let Some(c) = cx.pool.clone_packet(p) {
                    cx.tx.enqueue(port, c, cx.pool);
                }
            }
        }
    }
}
