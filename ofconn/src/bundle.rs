//! Bundles (the ONF extension for OpenFlow 1.3, as Open vSwitch implements it): a connection
//! opens bundles by id, adds FLOW_MODs to them, and commits one as a single change of the
//! rule set (all or nothing, in order), or discards it. The checks and error codes follow
//! OVS's `ofproto/bundles.c` and `handle_bundle_control`: opening an id that exists, closing
//! a closed bundle, or flags that differ from the open's drop the bundle and refuse; a
//! commit refused by one message answers that message's ERROR, then `OFPBFC_MSG_FAILED`.

use std::collections::HashMap;

use ofwire::msg::bundle::{BundleAdd, BundleCtrl, BundleCtrlType, Experimenter};
use ofwire::{ErrorCode as E, Header, Message, MsgType, OfpError};

use crate::conn::Connection;
use crate::handle::{flow_mod, writable, PendingFlowMod, Shared};
use crate::switch::Switch;

/// Bundles one connection may hold open at once (`OFPBFC_OUT_OF_BUNDLES` beyond).
pub const MAX_BUNDLES: usize = 64;
/// Messages one bundle may hold (`OFPBFC_MSG_TOO_MANY` beyond): room for a million rules.
pub const MAX_BUNDLE_MESSAGES: usize = 1 << 20;

/// One open (or closed, not yet committed) bundle.
#[derive(Default)]
pub struct Bundle {
    flags: u16,
    closed: bool,
    mods: Vec<PendingFlowMod>,
}

/// A connection's bundles by id.
pub type Bundles = HashMap<u32, Bundle>;

/// Handles a bundle control or add message; `raw` is the whole message (for ERRORs).
pub fn handle(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    h: &Header,
    m: Experimenter,
    raw: &[u8],
) -> Result<(), OfpError> {
    // A slave may not use bundles (OVS's reject_secondary_controller).
    writable(c)?;
    match m {
        Experimenter::BundleAdd(a) => add(c, h, a, raw),
        Experimenter::BundleControl(ctrl) => control(c, sw, shared, h.xid, ctrl),
    }
}

fn add(c: &mut Connection, h: &Header, a: BundleAdd, raw: &[u8]) -> Result<(), OfpError> {
    let (ih, body) = a.inner();
    // Only what OVS bundles, and of that what this switch bundles: FLOW_MOD.
    if ih.msg_type != MsgType::FlowMod as u8 {
        return Err(OfpError::new(E::BundleMsgUnsup, "bundle_add.message.type"));
    }
    // A FLOW_MOD the decoder refuses is answered with its own error, as OVS does.
    let fm = flow_mod(c, &ih, body)?;
    let n_open = c.bundles.len();
    let bundle = match c.bundles.get_mut(&a.bundle_id) {
        // An add to an id never opened opens it (OVS's ofp_bundle_add_message).
        None if n_open >= MAX_BUNDLES => {
            return Err(OfpError::new(E::BundleOutOfBundles, "bundle_add.bundle_id"))
        }
        None => c.bundles.entry(a.bundle_id).or_insert(Bundle {
            flags: a.flags,
            ..Bundle::default()
        }),
        Some(b) if b.closed => {
            c.bundles.remove(&a.bundle_id);
            return Err(OfpError::new(E::BundleClosed, "bundle_add.bundle_id"));
        }
        Some(b) if b.flags != a.flags => {
            c.bundles.remove(&a.bundle_id);
            return Err(OfpError::new(E::BundleBadFlags, "bundle_add.flags"));
        }
        Some(b) => b,
    };
    if bundle.mods.len() >= MAX_BUNDLE_MESSAGES {
        return Err(OfpError::new(E::BundleMsgTooMany, "bundle_add"));
    }
    bundle.mods.push(PendingFlowMod {
        fm,
        // An ERROR quotes at most the first 64 bytes.
        raw: raw[..raw.len().min(64)].to_vec(),
        xid: h.xid,
    });
    Ok(())
}

fn control(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    xid: u32,
    ctrl: BundleCtrl,
) -> Result<(), OfpError> {
    use BundleCtrlType as T;
    let id = ctrl.bundle_id;
    let bad_id = || OfpError::new(E::BundleBadId, "bundle_ctrl.bundle_id");
    match ctrl.ctrl_type {
        T::OpenRequest => {
            if c.bundles.remove(&id).is_some() {
                return Err(bad_id());
            }
            if c.bundles.len() >= MAX_BUNDLES {
                return Err(OfpError::new(
                    E::BundleOutOfBundles,
                    "bundle_ctrl.bundle_id",
                ));
            }
            c.bundles.insert(
                id,
                Bundle {
                    flags: ctrl.flags,
                    ..Bundle::default()
                },
            );
        }
        T::CloseRequest => {
            let b = c.bundles.get_mut(&id).ok_or_else(bad_id)?;
            if b.closed {
                c.bundles.remove(&id);
                return Err(OfpError::new(E::BundleClosed, "bundle_ctrl.bundle_id"));
            }
            if b.flags != ctrl.flags {
                c.bundles.remove(&id);
                return Err(OfpError::new(E::BundleBadFlags, "bundle_ctrl.flags"));
            }
            b.closed = true;
        }
        T::CommitRequest => {
            let b = c.bundles.remove(&id).ok_or_else(bad_id)?;
            if b.flags != ctrl.flags {
                return Err(OfpError::new(E::BundleBadFlags, "bundle_ctrl.flags"));
            }
            commit(c, sw, shared, b)?;
        }
        T::DiscardRequest => {
            c.bundles.remove(&id).ok_or_else(bad_id)?;
        }
        T::OpenReply | T::CloseReply | T::CommitReply | T::DiscardReply => {}
    }
    // A reply type is not a request.
    let Some(reply_type) = ctrl.ctrl_type.reply() else {
        return Err(OfpError::new(E::BundleBadType, "bundle_ctrl.type"));
    };
    let reply = BundleCtrl {
        bundle_id: id,
        ctrl_type: reply_type,
        flags: 0,
        properties: Vec::new(),
    };
    c.send(
        &Message::Experimenter(Experimenter::BundleControl(reply)),
        xid,
    );
    Ok(())
}

/// Applies a bundle's flow mods as one change of the rule set. The message the rule set
/// refuses gets its ERROR (quoting its add message); the commit then fails as a whole.
fn commit(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    b: Bundle,
) -> Result<(), OfpError> {
    if b.mods.is_empty() {
        return Ok(());
    }
    let mut quoted = Vec::with_capacity(b.mods.len());
    let mods: Vec<_> = b
        .mods
        .into_iter()
        .map(|p| {
            quoted.push((p.raw, p.xid));
            p.fm
        })
        .collect();
    match sw.apply_all(&mods) {
        Ok(()) => {
            shared.flow_mods += mods.len() as u64;
            shared.unacknowledged = true;
            Ok(())
        }
        Err((index, e)) => {
            shared.flow_mods_refused += 1;
            let (raw, xid) = &quoted[index.min(quoted.len() - 1)];
            c.send_error(&e, raw, *xid);
            Err(OfpError::new(E::BundleMsgFailed, "bundle commit"))
        }
    }
}
