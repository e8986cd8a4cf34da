//! The answer to each message of an established connection, over the [`Switch`] trait.
//! A refusal is an ERROR with the type and code OpenFlow 1.3.5 gives and the connection goes
//! on; only the framing errors (in `conn`) close it.

use std::time::Instant;

use ofwire::msg::flow::{OFPG_ANY, OFPTT_ALL};
use ofwire::msg::meter::{MeterFeatures, OFPM_ALL};
use ofwire::msg::multipart::{
    FlowStats, FlowStatsRequest, MultipartReply, MultipartRequest, ReplyBody, RequestBody,
    TableStats, OFPMPF_MORE,
};
use ofwire::msg::switch::{ControllerRole, Role, SwitchConfig};
use ofwire::msg::table_features::{describe, TableFeatures};
use ofwire::{ErrorCode as E, Header, Message, OfpError, OFP10_VERSION, OFP13_VERSION};
use openflow::{FlowMod, FlowSpec, Rule, N_TABLES};

use crate::conn::{Connection, Effect};
use crate::switch::Switch;

/// State shared by the connections of one bridge.
#[derive(Debug, Default)]
pub struct Shared {
    /// The largest generation id a master or slave request carried (OpenFlow 1.3.5
    /// section 6.3.6), once one did.
    pub generation_id: Option<u64>,
    /// Flow mods were applied since the PMDs last acknowledged the rules.
    pub unacknowledged: bool,
    /// Flow mods applied over OpenFlow, refused, and barriers answered.
    pub flow_mods: u64,
    pub flow_mods_refused: u64,
}

/// `OFPP_ANY`.
const OFPP_ANY: u32 = 0xffff_ffff;

/// A FLOW_MOD waiting to be applied with the ones that follow it: the flow mod, the message
/// (for an ERROR) and its xid.
pub struct PendingFlowMod {
    pub fm: FlowMod,
    pub raw: Vec<u8>,
    pub xid: u32,
}

/// Handles one message; returns what it asks of the other connections. FLOW_MODs are not
/// handled here but gathered ([`flow_mod`]) and applied together ([`apply_flow_mods`]).
pub fn handle(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    h: &Header,
    body: &[u8],
    raw: &[u8],
    now: Instant,
) -> Option<Effect> {
    let m = match Message::decode(h, body) {
        Ok(Message::Experimenter(x)) => {
            return crate::bundle::handle(c, sw, shared, h, x, raw, now).unwrap_or_else(|e| {
                c.send_error(&e, raw, h.xid);
                None
            });
        }
        Ok(m) => m,
        Err(e) => {
            c.send_error(&e, raw, h.xid);
            return None;
        }
    };
    match answer(c, sw, shared, h.xid, m) {
        Ok(effect) => effect,
        Err(e) => {
            c.send_error(&e, raw, h.xid);
            None
        }
    }
}

/// The flow mod a FLOW_MOD asks for, or its refusal (a slave's, or what the decoder and the
/// conversion refuse).
pub fn flow_mod(c: &Connection, h: &Header, body: &[u8]) -> Result<FlowMod, OfpError> {
    writable(c)?;
    match Message::decode(h, body)? {
        Message::FlowMod(m) if h.version == OFP10_VERSION => ofwire::of10::to_flow_mod(m),
        Message::FlowMod(m) => m.into_flow_mod(),
        _ => refuse(E::BadRequestType, "ofp_header.type"),
    }
}

/// Applies consecutive flow mods as one change of the rule set (the rule set publishes one
/// version, not one per message); when that is refused, one by one, each refusal an ERROR
/// for its message, in order.
pub fn apply_flow_mods(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    pending: &mut Vec<PendingFlowMod>,
) {
    if pending.is_empty() {
        return;
    }
    // Moved out, not copied: a flow mod holds a 720-byte match.
    let (mods, quoted): (Vec<FlowMod>, Vec<(Vec<u8>, u32)>) =
        pending.drain(..).map(|p| (p.fm, (p.raw, p.xid))).unzip();
    if sw.apply_all(&mods).is_ok() {
        shared.flow_mods += mods.len() as u64;
        shared.unacknowledged = true;
        return;
    }
    for (fm, (raw, xid)) in mods.iter().zip(&quoted) {
        match sw.apply_all(std::slice::from_ref(fm)) {
            Ok(()) => {
                shared.flow_mods += 1;
                shared.unacknowledged = true;
            }
            Err((_, e)) => {
                shared.flow_mods_refused += 1;
                c.send_error(&e, raw, *xid);
            }
        }
    }
}

fn refuse<T>(code: E, field: &'static str) -> Result<T, OfpError> {
    Err(OfpError::new(code, field))
}

/// A slave may not change the switch (OpenFlow 1.3.5 section 6.3.5).
pub(crate) fn writable(c: &Connection) -> Result<(), OfpError> {
    if c.role == ControllerRole::Slave {
        return refuse(E::BadRequestIsSlave, "role");
    }
    Ok(())
}

fn answer(
    c: &mut Connection,
    sw: &mut dyn Switch,
    shared: &mut Shared,
    xid: u32,
    m: Message,
) -> Result<Option<Effect>, OfpError> {
    use Message as M;
    match m {
        // A second HELLO says nothing new; an ERROR from the peer is only logged.
        M::Hello(_) => {}
        M::Error(e) => eprintln!(
            "vecswitch: openflow {}: peer sent ERROR type {} code {}",
            c.peer, e.err_type, e.code
        ),
        M::EchoRequest(d) => c.send(&M::EchoReply(d), xid),
        M::EchoReply(_) => {}
        // OpenFlow 1.0's reply carries the ports (1.3 has PORT_DESC for them).
        M::FeaturesRequest if c.version() == Some(OFP10_VERSION) => c.send_bytes(
            &ofwire::of10::features_reply(&sw.features(), &sw.ports(), xid)?,
        ),
        M::FeaturesRequest => c.send(&M::FeaturesReply(sw.features()), xid),
        M::GetConfigRequest => c.send(
            &M::GetConfigReply(SwitchConfig {
                flags: sw.frag_flags(),
                miss_send_len: c.miss_send_len,
            }),
            xid,
        ),
        M::SetConfig(cfg) => {
            // As Open vSwitch: a slave's fragment handling is ignored, its miss_send_len kept.
            if c.role != ControllerRole::Slave {
                sw.set_frag_flags(cfg.flags)?;
            }
            c.miss_send_len = cfg.miss_send_len;
        }
        // Gathered by the connection and applied by `apply_flow_mods`.
        M::FlowMod(_) => return refuse(E::BadRequestType, "ofp_header.type"),
        M::BarrierRequest => {
            if shared.unacknowledged {
                if let Err(e) = sw.barrier() {
                    eprintln!("vecswitch: openflow barrier: {e}");
                    return refuse(E::BadRequestEperm, "barrier: the PMDs did not answer");
                }
                shared.unacknowledged = false;
            }
            c.send(&M::BarrierReply, xid);
        }
        M::RoleRequest(r) => return role(c, shared, xid, r),
        M::GetAsyncRequest => c.send(&M::GetAsyncReply(c.async_config), xid),
        // As in Open vSwitch 3.1, the action bit also covers the OpenFlow 1.4 reasons
        // action_set, group and packet_out (its `ofconn_set_async_config`), which an OpenFlow
        // 1.3 connection gets as action: `Connection::packet_in` filters them by that bit.
        M::SetAsync(a) => c.async_config = a.named_reasons_only(),
        M::PortMod(pm) => {
            writable(c)?;
            sw.port_mod(&pm)?;
            // A barrier after it waits until no PMD uses the old configuration.
            shared.unacknowledged = true;
            return Ok(Some(Effect::PortModified));
        }
        M::MeterMod(mm) => {
            writable(c)?;
            mm.without_meters()?;
        }
        M::MultipartRequest(req) => multipart(c, sw, xid, req)?,
        M::GroupMod(gm) => {
            writable(c)?;
            sw.group_mod(&gm.to_model()?)?;
            shared.unacknowledged = true;
        }
        M::PacketOut(po) => {
            writable(c)?;
            packet_out(sw, po)?;
            shared.unacknowledged = true;
        }
        // What only a switch sends.
        M::FeaturesReply(_)
        | M::GetConfigReply(_)
        | M::PacketIn(_)
        | M::FlowRemoved(_)
        | M::PortStatus(_)
        | M::MultipartReply(_)
        | M::BarrierReply
        | M::RoleReply(_)
        | M::GetAsyncReply(_) => return refuse(E::BadRequestType, "ofp_header.type"),
        // Handled before (`crate::bundle`).
        M::Experimenter(_) => return refuse(E::BadRequestExperimenter, "experimenter"),
    }
    Ok(None)
}

/// A PACKET_OUT with what needs no rule set checked: the port it comes in on, its
/// actions as vecswitch's and the frame.
pub struct PacketOutRequest {
    pub in_port: u32,
    pub actions: Vec<openflow::Action>,
    pub frame: Vec<u8>,
}

/// PACKET_OUT (OpenFlow 1.3.5 section 7.3.7) up to the groups (Open vSwitch's
/// `ofproto_packet_out_init`): no buffers (`OFPBRC_BUFFER_UNKNOWN` otherwise); in_port a
/// port number, `LOCAL`, `CONTROLLER` or `ANY` (`OFPBRC_BAD_PORT` otherwise, as Open
/// vSwitch); the actions as a FLOW_MOD's apply-actions, plus output to `TABLE`.
pub fn packet_out_request(
    po: ofwire::msg::packet::PacketOut,
) -> Result<PacketOutRequest, OfpError> {
    use ofwire::action::port;
    let actions = po.vecswitch_actions()?;
    let in_port_ok =
        po.in_port < port::MAX || matches!(po.in_port, port::LOCAL | port::CONTROLLER | port::ANY);
    if !in_port_ok {
        return refuse(E::BadRequestPort, "packet_out.in_port");
    }
    Ok(PacketOutRequest {
        in_port: po.in_port,
        actions,
        frame: po.data,
    })
}

/// PACKET_OUT: [`packet_out_request`], then a group that does not exist is
/// `OFPBAC_BAD_OUT_GROUP`.
fn packet_out(sw: &mut dyn Switch, po: ofwire::msg::packet::PacketOut) -> Result<(), OfpError> {
    let req = packet_out_request(po)?;
    let rules = sw.rules();
    for a in &req.actions {
        if let openflow::Action::Group(g) = a {
            if rules.group(*g).is_none() {
                return refuse(E::BadActionOutGroup, "packet_out: group");
            }
        }
    }
    sw.packet_out(req.in_port, req.actions, req.frame)
}

/// ROLE_REQUEST: no-change reports; master and slave carry a generation id that must not be
/// older than the newest seen (`OFPRRFC_STALE`); a new master makes the other masters slaves.
fn role(
    c: &mut Connection,
    shared: &mut Shared,
    xid: u32,
    r: Role,
) -> Result<Option<Effect>, OfpError> {
    let mut effect = None;
    if matches!(r.role, ControllerRole::Master | ControllerRole::Slave) {
        if let Some(g) = shared.generation_id {
            // Compared as a circular 64-bit sequence, as the spec asks.
            if (r.generation_id.wrapping_sub(g) as i64) < 0 {
                return refuse(E::RoleRequestStale, "role_request.generation_id");
            }
        }
        shared.generation_id = Some(r.generation_id);
    }
    if r.role != ControllerRole::NoChange {
        if r.role == ControllerRole::Master && c.role != ControllerRole::Master {
            effect = Some(Effect::BecameMaster);
        }
        c.role = r.role;
    }
    c.send(
        &Message::RoleReply(Role {
            role: c.role,
            generation_id: shared.generation_id.unwrap_or(u64::MAX),
        }),
        xid,
    );
    Ok(effect)
}

/// The filter of a FLOW or AGGREGATE request as the rule set's.
fn flow_filter(req: &FlowStatsRequest) -> Result<FlowSpec, OfpError> {
    if usize::from(req.table_id) >= N_TABLES && req.table_id != OFPTT_ALL {
        return refuse(E::BadRequestTableId, "flow_stats_request.table_id");
    }
    Ok(FlowSpec {
        table: (req.table_id != OFPTT_ALL).then_some(req.table_id),
        cookie: req.cookie,
        cookie_mask: (req.cookie_mask != 0).then_some(req.cookie_mask),
        out_port: (req.out_port != OFPP_ANY).then_some(req.out_port),
        out_group: (req.out_group != OFPG_ANY).then_some(req.out_group),
        matches: req.matches.clone(),
        ..FlowSpec::default()
    })
}

/// One rule as a FLOW reply entry; `None` for a rule whose actions have no OpenFlow 1.3
/// encoding here (resubmit, ct, learn, ... : ofwire's known gaps).
fn flow_stats(r: &Rule, now_ns: u64) -> Option<FlowStats> {
    let instructions = ofwire::action::from_actions(&r.spec.actions).ok()?;
    let d = now_ns.saturating_sub(r.created_ns);
    Some(FlowStats {
        table_id: r.table(),
        duration_sec: (d / 1_000_000_000) as u32,
        duration_nsec: (d % 1_000_000_000) as u32,
        priority: r.spec.priority,
        idle_timeout: r.spec.idle_timeout,
        hard_timeout: r.spec.hard_timeout,
        flags: r.spec.flags,
        cookie: r.spec.cookie,
        packet_count: r.stats.packets(),
        byte_count: r.stats.bytes(),
        matches: r.spec.matches.clone(),
        instructions,
    })
}

/// The features of every table.
fn all_table_features() -> Vec<TableFeatures> {
    (0..N_TABLES)
        .map(|t| describe(t as u8, N_TABLES as u8))
        .collect()
}

/// TABLE_FEATURES: an empty request gets every table's features; a set request (which may
/// span messages flagged `OFPMPF_REQ_MORE`) is accepted only when it restates them exactly,
/// as the tables cannot be reconfigured (`OFPTFFC_EPERM` otherwise).
fn table_features(
    c: &mut Connection,
    xid: u32,
    flags: u16,
    tables: Vec<TableFeatures>,
) -> Result<(), OfpError> {
    let mut all = match c.table_features_parts.take() {
        Some((x, parts)) if x == xid => parts,
        _ => Vec::new(),
    };
    let setting = !all.is_empty() || !tables.is_empty();
    all.extend(tables);
    if flags & OFPMPF_MORE != 0 {
        if all.len() > N_TABLES {
            return refuse(
                E::TableFeaturesBadTable,
                "table_features: more tables than exist",
            );
        }
        c.table_features_parts = Some((xid, all));
        return Ok(());
    }
    let ours = all_table_features();
    if setting && all != ours {
        return refuse(
            E::TableFeaturesEperm,
            "table_features: the tables cannot be changed",
        );
    }
    let reply = MultipartReply {
        flags: 0,
        body: ReplyBody::TableFeatures(ours),
    };
    for part in reply.encode_parts(xid)? {
        c.send_bytes(&part);
    }
    Ok(())
}

fn multipart(
    c: &mut Connection,
    sw: &mut dyn Switch,
    xid: u32,
    req: MultipartRequest,
) -> Result<(), OfpError> {
    if let RequestBody::TableFeatures(tables) = req.body {
        return table_features(c, xid, req.flags, tables);
    }
    if req.flags & OFPMPF_MORE != 0 {
        // No other request this switch answers spans several messages.
        return refuse(E::BadRequestMultipart, "multipart_request.flags");
    }
    let version = c.version().unwrap_or(OFP13_VERSION);
    let body = match req.body {
        RequestBody::Desc => ReplyBody::Desc(sw.desc()),
        // Encoded one rule at a time: a dump of many rules never holds them all as entries.
        RequestBody::Flow(f) => {
            let spec = flow_filter(&f)?;
            let now = sw.now_ns();
            let rules = sw.rules().filter(&spec, false);
            let parts = ofwire::msg::multipart::flow_reply_parts(version, xid, rules.len(), |i| {
                flow_stats(&rules[i], now)
            })?;
            for part in parts {
                c.send_bytes(&part);
            }
            return Ok(());
        }
        RequestBody::Aggregate(f) => {
            let spec = flow_filter(&f)?;
            let rules = sw.rules().filter(&spec, false);
            ReplyBody::Aggregate {
                packet_count: rules.iter().map(|r| r.stats.packets()).sum(),
                byte_count: rules.iter().map(|r| r.stats.bytes()).sum(),
                flow_count: rules.len() as u32,
            }
        }
        RequestBody::Table => {
            let rules = sw.rules();
            ReplyBody::Table(
                (0..N_TABLES)
                    .map(|t| TableStats {
                        table_id: t as u8,
                        active_count: rules.table(t as u8).map_or(0, |c| c.iter().count()) as u32,
                        // Not counted per table: all ones, as the spec asks of a counter
                        // a switch does not keep.
                        lookup_count: u64::MAX,
                        matched_count: u64::MAX,
                    })
                    .collect(),
            )
        }
        RequestBody::PortStats(port) => ReplyBody::PortStats(
            sw.port_stats()
                .into_iter()
                .filter(|p| port == OFPP_ANY || p.port_no == port)
                .collect(),
        ),
        RequestBody::PortDesc => ReplyBody::PortDesc(sw.ports()),
        RequestBody::Group(id) => {
            let now = sw.now_ns();
            ReplyBody::Group(ofwire::msg::group::group_stats(&sw.rules(), id, now))
        }
        RequestBody::GroupDesc => {
            ReplyBody::GroupDesc(ofwire::msg::group::group_descs(&sw.rules())?)
        }
        RequestBody::GroupFeatures => {
            ReplyBody::GroupFeatures(ofwire::msg::group::group_features())
        }
        // No meters (as Open vSwitch without meter support): every meter is an empty list,
        // a named one is unknown, and the features are all zero.
        RequestBody::Meter(id) | RequestBody::MeterConfig(id) if id != OFPM_ALL => {
            return refuse(E::MeterModUnknownMeter, "multipart.meter_id");
        }
        RequestBody::Meter(_) => ReplyBody::Meter(Vec::new()),
        RequestBody::MeterConfig(_) => ReplyBody::MeterConfig(Vec::new()),
        RequestBody::MeterFeatures => ReplyBody::MeterFeatures(MeterFeatures::default()),
        RequestBody::TableFeatures(_) => return Ok(()),
    };
    let reply = MultipartReply { flags: 0, body };
    for part in reply.encode_parts_in(version, xid)? {
        c.send_bytes(&part);
    }
    Ok(())
}
