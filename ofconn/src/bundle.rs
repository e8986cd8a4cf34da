//! Bundles (the ONF extension for OpenFlow 1.3, as Open vSwitch 3.1 implements it): a
//! connection opens bundles by id, adds FLOW_MOD, GROUP_MOD, PORT_MOD and PACKET_OUT
//! messages to them (`ofputil_is_bundlable`; anything else is `OFPBFC_MSG_UNSUP`), and
//! commits one or discards it. The checks and error codes follow OVS's `ofproto/bundles.c`,
//! `handle_bundle_control` and `do_bundle_commit`: opening an id that exists, closing a
//! closed bundle, or flags that differ from the open's drop the bundle and refuse; a commit
//! refused by one message answers that message's ERROR, then `OFPBFC_MSG_FAILED`.
//!
//! A commit applies the flow mods and group mods as one change of the rule set, in order,
//! all or nothing (a group a PACKET_OUT names must exist where it stands); port mods are
//! checked where they stand and applied after that change (OVS's are not atomic: an
//! `OFPBF_ATOMIC` bundle with one fails); PACKET_OUTs run last, in order, and only when the
//! commit succeeded. A bundle without a message for [`DEFAULT_BUNDLE_IDLE_TIMEOUT`] is
//! discarded with `OFPBFC_TIMEOUT` (OVS's `bundle-idle-timeout`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ofwire::msg::bundle::{BundleAdd, BundleCtrl, BundleCtrlType, Experimenter, OFPBF_ATOMIC};
use ofwire::msg::port::PortMod;
use ofwire::{ErrorCode as E, Header, Message, MsgType, OfpError};
use openflow::ruleset::TableMod;
use openflow::{FlowMod, GroupMod};

use crate::conn::{Connection, Effect};
use crate::handle::{flow_mod, packet_out_request, writable, PacketOutRequest, Shared};
use crate::switch::Switch;

/// Bundles one connection may hold open at once (`OFPBFC_OUT_OF_BUNDLES` beyond).
pub const MAX_BUNDLES: usize = 64;
/// Messages one bundle may hold (`OFPBFC_MSG_TOO_MANY` beyond): room for a million rules.
pub const MAX_BUNDLE_MESSAGES: usize = 1 << 20;
/// How long a bundle may go without a message (opened, added to or closed) before it is
/// discarded: Open vSwitch's default `other_config:bundle-idle-timeout`, 10 s.
pub const DEFAULT_BUNDLE_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// An ERROR quotes at most the first 64 bytes of the message it refuses.
const QUOTED: usize = 64;

/// What a bundled message asks for, decoded and checked as far as it can be without the
/// rule set.
// Nearly every entry of a large bundle is a flow mod: kept inline, not one allocation each.
#[allow(clippy::large_enum_variant)]
enum Bundled {
    Flow(FlowMod),
    Group(GroupMod),
    Port(PortMod),
    PacketOut(PacketOutRequest),
}

/// A bundled message: what it asks for, its add message (quoted by an ERROR) and xid.
struct Entry {
    what: Bundled,
    raw: Vec<u8>,
    xid: u32,
}

/// One open (or closed, not yet committed) bundle.
pub struct Bundle {
    flags: u16,
    closed: bool,
    entries: Vec<Entry>,
    /// When it was last opened, added to or closed (for the idle timeout).
    used: Instant,
    /// The message that made it (an open or the first add) and its xid: the timeout's
    /// ERROR quotes it, as OVS's does.
    first: (Vec<u8>, u32),
}

impl Bundle {
    fn new(flags: u16, raw: &[u8], xid: u32, now: Instant) -> Bundle {
        Bundle {
            flags,
            closed: false,
            entries: Vec::new(),
            used: now,
            first: (quote(raw), xid),
        }
    }
}

/// A connection's bundles by id.
pub type Bundles = HashMap<u32, Bundle>;

fn quote(raw: &[u8]) -> Vec<u8> {
    raw[..raw.len().min(QUOTED)].to_vec()
}

/// Handles a bundle control or add message at `now`; `raw` is the whole message (for
/// ERRORs). A commit that changed a port says so.
pub fn handle(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    h: &Header,
    m: Experimenter,
    raw: &[u8],
    now: Instant,
) -> Result<Option<Effect>, OfpError> {
    // A slave may not use bundles (OVS's reject_secondary_controller).
    writable(c)?;
    match m {
        Experimenter::BundleAdd(a) => add(c, h, a, raw, now).map(|()| None),
        Experimenter::BundleControl(ctrl) => control(c, sw, shared, h.xid, ctrl, raw, now),
    }
}

/// Decodes a bundled message as OVS's `handle_bundle_add` does: only what may be bundled,
/// each refused by its own checks (with the add message quoted).
fn decode(c: &Connection, a: &BundleAdd) -> Result<Bundled, OfpError> {
    let (ih, body) = a.inner();
    const FLOW_MOD: u8 = MsgType::FlowMod as u8;
    const GROUP_MOD: u8 = MsgType::GroupMod as u8;
    const PORT_MOD: u8 = MsgType::PortMod as u8;
    const PACKET_OUT: u8 = MsgType::PacketOut as u8;
    let unsup = || OfpError::new(E::BundleMsgUnsup, "bundle_add.message.type");
    match ih.msg_type {
        FLOW_MOD => flow_mod(c, &ih, body).map(Bundled::Flow),
        GROUP_MOD | PORT_MOD | PACKET_OUT => match Message::decode(&ih, body)? {
            Message::GroupMod(gm) => {
                let m = gm.to_model()?;
                // OVS checks a group mod's type, buckets, weights and watches when it decodes
                // it (`ofputil_check_group_mod`): a bundled one that cannot be valid is
                // refused when added, not at commit.
                if m.command != openflow::group::GroupModCommand::Delete {
                    openflow::group::check_group(&m.spec).map_err(|e| {
                        OfpError::new(ofwire::msg::group::group_mod_error(e.code), "group_mod")
                    })?;
                }
                Ok(Bundled::Group(m))
            }
            Message::PortMod(pm) => Ok(Bundled::Port(pm)),
            Message::PacketOut(po) => packet_out_request(po).map(Bundled::PacketOut),
            _ => Err(unsup()),
        },
        _ => Err(unsup()),
    }
}

fn add(
    c: &mut Connection,
    h: &Header,
    a: BundleAdd,
    raw: &[u8],
    now: Instant,
) -> Result<(), OfpError> {
    let what = decode(c, &a)?;
    let n_open = c.bundles.len();
    let bundle = match c.bundles.get_mut(&a.bundle_id) {
        // An add to an id never opened opens it (OVS's ofp_bundle_add_message).
        None if n_open >= MAX_BUNDLES => {
            return Err(OfpError::new(E::BundleOutOfBundles, "bundle_add.bundle_id"))
        }
        None => c
            .bundles
            .entry(a.bundle_id)
            .or_insert(Bundle::new(a.flags, raw, h.xid, now)),
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
    if bundle.entries.len() >= MAX_BUNDLE_MESSAGES {
        return Err(OfpError::new(E::BundleMsgTooMany, "bundle_add"));
    }
    bundle.used = now;
    bundle.entries.push(Entry {
        what,
        raw: quote(raw),
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
    raw: &[u8],
    now: Instant,
) -> Result<Option<Effect>, OfpError> {
    use BundleCtrlType as T;
    let id = ctrl.bundle_id;
    let bad_id = || OfpError::new(E::BundleBadId, "bundle_ctrl.bundle_id");
    let mut effect = None;
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
            c.bundles.insert(id, Bundle::new(ctrl.flags, raw, xid, now));
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
            b.used = now;
        }
        T::CommitRequest => {
            let b = c.bundles.remove(&id).ok_or_else(bad_id)?;
            if b.flags != ctrl.flags {
                return Err(OfpError::new(E::BundleBadFlags, "bundle_ctrl.flags"));
            }
            effect = commit(c, sw, shared, b)?;
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
    Ok(effect)
}

/// Commits a bundle (OVS's `do_bundle_commit`): the first message refused, in bundle
/// order, gets its ERROR (quoting its add message) and the commit fails as a whole,
/// `OFPBFC_MSG_FAILED`, with nothing changed. Otherwise the flow and group mods are one
/// change of the rule set, then the port mods and PACKET_OUTs follow in order.
fn commit(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    b: Bundle,
) -> Result<Option<Effect>, OfpError> {
    // Port mods are checked first: they do not depend on the rules, and the table mods
    // are then checked only up to the first refused one, so that the earliest refusal is
    // the one told.
    let atomic = b.flags & OFPBF_ATOMIC != 0;
    let port_refusal = b
        .entries
        .iter()
        .enumerate()
        .find_map(|(i, e)| match &e.what {
            // Port mods are not atomic (OVS refuses them in an atomic bundle).
            Bundled::Port(_) if atomic => Some((
                i,
                OfpError::new(
                    E::BundleMsgFailed,
                    "bundle_add: a port mod in an atomic bundle",
                ),
            )),
            Bundled::Port(pm) => sw.check_port_mod(pm).err().map(|e| (i, e)),
            _ => None,
        });
    let checked = port_refusal.as_ref().map_or(b.entries.len(), |(i, _)| *i);
    let mut at = Vec::new();
    let mods: Vec<TableMod> = b.entries[..checked]
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let m = match &e.what {
                Bundled::Flow(fm) => TableMod::Flow(fm),
                Bundled::Group(gm) => TableMod::Group(gm),
                Bundled::PacketOut(po) => TableMod::Actions(&po.actions),
                Bundled::Port(_) => return None,
            };
            at.push(i);
            Some(m)
        })
        .collect();
    let table_refusal = if mods.is_empty() {
        Ok(())
    } else {
        sw.apply_bundle(&mods, port_refusal.is_none())
    };
    let refusal = match table_refusal {
        Err((k, e)) => Some((at.get(k).copied().unwrap_or(0), e)),
        Ok(()) => port_refusal,
    };
    if let Some((i, e)) = refusal {
        if let Some(entry) = b.entries.get(i) {
            if matches!(entry.what, Bundled::Flow(_)) {
                shared.flow_mods_refused += 1;
            }
            c.send_error(&e, &entry.raw, entry.xid);
        }
        return Err(OfpError::new(E::BundleMsgFailed, "bundle commit"));
    }
    let n_flow_mods = b
        .entries
        .iter()
        .filter(|e| matches!(e.what, Bundled::Flow(_)))
        .count();
    shared.flow_mods += n_flow_mods as u64;
    shared.unacknowledged |= !mods.is_empty();
    let mut effect = None;
    for e in &b.entries {
        let Bundled::Port(pm) = &e.what else {
            continue;
        };
        // Checked above; a port that went away since is told, the rest goes on.
        match sw.port_mod(pm) {
            Ok(()) => {
                shared.unacknowledged = true;
                effect = Some(Effect::PortModified);
            }
            Err(err) => c.send_error(&err, &e.raw, e.xid),
        }
    }
    for e in b.entries {
        let Bundled::PacketOut(po) = e.what else {
            continue;
        };
        match sw.packet_out(po.in_port, po.actions, po.frame) {
            Ok(()) => shared.unacknowledged = true,
            Err(err) => c.send_error(&err, &e.raw, e.xid),
        }
    }
    Ok(effect)
}

/// Discards the bundles of `c` that have had no message for `idle` at `now`, each with an
/// `OFPBFC_TIMEOUT` ERROR quoting the message that made it (OVS's
/// `bundle_remove_expired`).
pub fn expire_idle(c: &mut Connection, now: Instant, idle: Duration) {
    let mut expired: Vec<u32> = c
        .bundles
        .iter()
        .filter(|(_, b)| now.saturating_duration_since(b.used) >= idle)
        .map(|(id, _)| *id)
        .collect();
    expired.sort_unstable();
    for id in expired {
        if let Some(b) = c.bundles.remove(&id) {
            let e = OfpError::new(E::BundleTimeout, "bundle: idle timeout");
            c.send_error(&e, &b.first.0, b.first.1);
        }
    }
}
