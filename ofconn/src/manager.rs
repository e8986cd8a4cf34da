//! A bridge's OpenFlow connections: its targets (listeners bound, active controllers
//! connected and reconnected with a backoff), the connections they gave, and one `run` call
//! per control-loop iteration that accepts, reads, handles a bounded number of messages per
//! connection, writes and closes. Port changes become PORT_STATUS messages in `send_port_changes`.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use ofwire::msg::port::{Port, PortReason, PortStatus};
use ofwire::msg::switch::ControllerRole;

use crate::conn::{Connection, Effect, State};
use crate::handle::Shared;
use crate::stream::{Listener, Stream};
use crate::switch::Switch;
use crate::target::Target;

/// OVS's default inactivity probe interval.
pub const DEFAULT_PROBE: Duration = Duration::from_secs(5);
/// The first wait before reconnecting to an active target, doubled up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How long a connection attempt may hold the control thread.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Connections accepted per listener per call.
const ACCEPTS_PER_CALL: usize = 16;
/// Connections at once per bridge; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 64;

/// What a bridge does while no controller is connected (OVS's `fail_mode`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum FailMode {
    /// After three inactivity-probe intervals without a connected active controller, the
    /// bridge fails open: its rules are flushed and NORMAL handles every packet, until a
    /// controller connects.
    #[default]
    Standalone,
    /// The rules stay as they are.
    Secure,
}

impl FailMode {
    pub fn parse(v: &str) -> Option<FailMode> {
        match v {
            "standalone" => Some(FailMode::Standalone),
            "secure" => Some(FailMode::Secure),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailMode::Standalone => "standalone",
            FailMode::Secure => "secure",
        }
    }
}

/// How long without a controller before failing open when the probe is off.
const FAIL_OPEN_WITHOUT_PROBE: Duration = Duration::from_secs(15);

/// An active target and its reconnection state.
struct Active {
    target: Target,
    /// The connection it has now.
    conn: Option<u64>,
    next_attempt: Instant,
    backoff: Duration,
    last_error: Option<String>,
}

/// One line of `show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnStatus {
    pub target: String,
    pub peer: String,
    /// `listening`, `connecting`, `hello`, `connected`, `backoff`.
    pub state: String,
    pub role: Option<String>,
    /// `OpenFlow13` once negotiated.
    pub version: Option<String>,
    /// The TCP port a `ptcp:` listener is bound to.
    pub port: Option<u16>,
    pub detail: Option<String>,
}

/// The OpenFlow connections of one bridge.
pub struct Controllers {
    targets: Vec<Target>,
    listeners: Vec<(Target, Listener)>,
    actives: Vec<Active>,
    conns: Vec<Connection>,
    shared: Shared,
    next_id: u64,
    /// The ports as the last look for changes saw them.
    ports: Option<BTreeMap<u32, Port>>,
    pub probe: Option<Duration>,
    /// How long a bundle may go without a message before it is discarded.
    pub bundle_idle_timeout: Duration,
    /// The versions connections offer (`protocols`; bit N: version N), as new connections
    /// take it.
    pub versions: u32,
    pub fail_mode: FailMode,
    /// Since when the bridge has active targets and none of them a connection with a
    /// negotiated version.
    disconnected_since: Option<Instant>,
}

impl Default for Controllers {
    fn default() -> Controllers {
        Controllers {
            targets: Vec::new(),
            listeners: Vec::new(),
            actives: Vec::new(),
            conns: Vec::new(),
            shared: Shared::default(),
            next_id: 1,
            ports: None,
            probe: Some(DEFAULT_PROBE),
            bundle_idle_timeout: crate::bundle::DEFAULT_BUNDLE_IDLE_TIMEOUT,
            versions: crate::conn::OUR_VERSIONS,
            fail_mode: FailMode::default(),
            disconnected_since: None,
        }
    }
}

fn version_name(v: u8) -> String {
    match v {
        1 => "OpenFlow10".into(),
        4 => "OpenFlow13".into(),
        v => format!("0x{v:02x}"),
    }
}

fn role_name(r: ControllerRole) -> &'static str {
    match r {
        ControllerRole::Equal | ControllerRole::NoChange => "equal",
        ControllerRole::Master => "master",
        ControllerRole::Slave => "slave",
    }
}

impl Controllers {
    /// The configured targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Replaces the targets: every new listener is bound first, and when one cannot be,
    /// nothing changes. Listeners and active targets that stay keep their connections;
    /// the connections of removed targets close.
    pub fn set_targets(&mut self, targets: Vec<Target>, now: Instant) -> Result<(), String> {
        // Bind what is new first; on an error the new ones close and nothing else changed.
        let mut fresh = Vec::new();
        for t in targets.iter().filter(|t| t.is_passive()) {
            if self.listeners.iter().any(|(lt, _)| lt == t) {
                continue;
            }
            match Listener::bind(t) {
                Ok(l) => fresh.push((t.clone(), l)),
                Err(e) => return Err(format!("{t}: cannot listen: {e}")),
            }
        }
        let mut listeners: Vec<(Target, Listener)> = std::mem::take(&mut self.listeners)
            .into_iter()
            .filter(|(t, _)| targets.contains(t))
            .collect();
        listeners.append(&mut fresh);
        let mut actives = Vec::new();
        for t in targets.iter().filter(|t| !t.is_passive()) {
            match self.actives.iter().position(|a| &a.target == t) {
                Some(i) => actives.push(self.actives.swap_remove(i)),
                None => actives.push(Active {
                    target: t.clone(),
                    conn: None,
                    next_attempt: now,
                    backoff: MIN_BACKOFF,
                    last_error: None,
                }),
            }
        }
        let kept: Vec<String> = targets.iter().map(Target::to_string).collect();
        for c in &mut self.conns {
            if !kept.contains(&c.target) {
                c.close("its target was removed");
            }
        }
        self.listeners = listeners;
        self.actives = actives;
        self.targets = targets;
        Ok(())
    }

    /// The TCP port a `ptcp:` target listens on (useful with `ptcp:0`).
    pub fn listening_port(&self, target: &Target) -> Option<u16> {
        self.listeners
            .iter()
            .find(|(t, _)| t == target)
            .and_then(|(_, l)| l.local_port())
    }

    /// The descriptors to wait on: listeners and connections.
    pub fn fds(&self, out: &mut Vec<RawFd>) {
        out.extend(self.listeners.iter().map(|(_, l)| l.as_raw_fd()));
        out.extend(self.conns.iter().map(Connection::fd));
    }

    /// Connections that have a negotiated version.
    pub fn connected(&self) -> usize {
        self.conns.iter().filter(|c| c.version().is_some()).count()
    }

    /// One round: accept, connect what is due, read, handle, write, probe, close. Returns
    /// true when input is left over (the caller should come back without waiting).
    pub fn run(&mut self, sw: &mut dyn Switch, now: Instant) -> bool {
        self.accept(now);
        self.connect_due(now);
        // The ports as they are before any message of this round: a PORT_MOD is compared
        // with them even before the first look for changes.
        if self.ports.is_none() {
            self.ports = Some(sw.ports().into_iter().map(|p| (p.port_no, p)).collect());
        }
        let mut demote_except = Vec::new();
        let mut port_modified_by = Vec::new();
        for c in &mut self.conns {
            c.read_input();
            for e in c.process(sw, &mut self.shared, now) {
                match e {
                    Effect::BecameMaster => demote_except.push(c.id),
                    Effect::PortModified => port_modified_by.push(c.id),
                }
            }
            c.check_probe(now, self.probe);
            crate::bundle::expire_idle(c, now, self.bundle_idle_timeout);
        }
        if !port_modified_by.is_empty() {
            self.port_changes(sw, &port_modified_by);
        }
        for id in demote_except {
            for c in self.conns.iter_mut().filter(|c| c.id != id) {
                if c.role == ControllerRole::Master {
                    c.role = ControllerRole::Slave;
                }
            }
        }
        for c in &mut self.conns {
            c.flush();
        }
        self.reap(now);
        let connected = self.actives.iter().any(|a| {
            a.conn.is_some_and(|id| {
                self.conns
                    .iter()
                    .any(|c| c.id == id && c.version().is_some())
            })
        });
        if self.actives.is_empty() || connected {
            self.disconnected_since = None;
        } else if self.disconnected_since.is_none() {
            self.disconnected_since = Some(now);
        }
        self.conns.iter().any(Connection::has_input)
    }

    /// Whether the bridge should be failed open now: `standalone`, with active targets,
    /// none connected for three probe intervals (as Open vSwitch: one to probe, one for
    /// the answer, one to reconnect; 15 s with the probe off). Passive listeners never
    /// make a bridge fail open.
    pub fn should_fail_open(&self, now: Instant) -> bool {
        let trigger = self.probe.map_or(FAIL_OPEN_WITHOUT_PROBE, |p| p * 3);
        self.fail_mode == FailMode::Standalone
            && self
                .disconnected_since
                .is_some_and(|t| now.duration_since(t) >= trigger)
    }

    fn accept(&mut self, now: Instant) {
        for (t, l) in &self.listeners {
            for _ in 0..ACCEPTS_PER_CALL {
                match l.accept() {
                    Ok(Some(s)) => {
                        if self.conns.len() >= MAX_CONNECTIONS {
                            eprintln!("vecswitch: openflow {t}: too many connections, refused");
                            continue;
                        }
                        let id = self.next_id;
                        self.next_id += 1;
                        let v = self.versions;
                        self.conns
                            .push(Connection::new(id, t.to_string(), s, now, v));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("vecswitch: openflow {t}: accept: {e}");
                        break;
                    }
                }
            }
        }
    }

    fn connect_due(&mut self, now: Instant) {
        let versions = self.versions;
        for a in &mut self.actives {
            if a.conn.is_some() || now < a.next_attempt {
                continue;
            }
            match Stream::connect(&a.target, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.conns
                        .push(Connection::new(id, a.target.to_string(), s, now, versions));
                    a.conn = Some(id);
                    a.last_error = None;
                }
                Err(e) => {
                    a.last_error = Some(format!("connect: {e}"));
                    a.next_attempt = now + a.backoff;
                    a.backoff = (a.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Drops the closed connections (after their last write); an active target's goes
    /// back to connecting after its backoff.
    fn reap(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            if let Some(why) = &c.closed {
                // A peer that says goodbye (ovs-ofctl after each command) is not news.
                if why != crate::conn::CLOSED_BY_PEER || c.version().is_none() {
                    eprintln!("vecswitch: openflow {} ({}): {why}", c.target, c.peer);
                }
                let (id, negotiated) = (c.id, c.version().is_some());
                if let Some(a) = self.actives.iter_mut().find(|a| a.conn == Some(id)) {
                    a.conn = None;
                    a.last_error = Some(why.clone());
                    // A connection that got as far as HELLO starts the backoff over.
                    if negotiated {
                        a.backoff = MIN_BACKOFF;
                    }
                    a.next_attempt = now + a.backoff;
                    a.backoff = (a.backoff * 2).min(MAX_BACKOFF);
                }
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Whether a connection takes packet-ins for an expired TTL (reason `invalid_ttl`, bit
    /// 2), which Open vSwitch's default async configuration leaves out and Faucet asks for:
    /// then `dec_ttl` at TTL 1 sends the packet to the controller
    /// (`openflow::Bridge::set_invalid_ttl_to_controller`).
    pub fn wants_invalid_ttl(&self) -> bool {
        self.conns.iter().any(|c| c.wants_packet_in(2))
    }

    /// Sends `pins` (the bridge's packet-ins, oldest first) as PACKET_IN to the connections
    /// whose role and async configuration ask for their reason (OpenFlow 1.3's reasons: an
    /// explicit miss is `no_match`, the 1.4 reasons `action`), unbuffered, the whole packet,
    /// with the metadata match Open vSwitch sends. Packet-ins for a controller id other than
    /// 0 go nowhere (no connection sets one). Returns how many no connection took.
    pub fn send_packet_ins(&mut self, pins: &[pipeline::PacketIn]) -> usize {
        use ofwire::msg::packet::{PacketIn, PacketInReason as Wire};
        let mut unsent = 0;
        for pin in pins {
            let c = &pin.context;
            // The reason and its async bit in `version`: OpenFlow 1.0 names an explicit miss
            // `action`, as Open vSwitch does.
            let on_wire = |version| match c.reason.on_wire(version) {
                pipeline::PacketInReason::NoMatch => (Wire::NoMatch, 0),
                pipeline::PacketInReason::InvalidTtl => (Wire::InvalidTtl, 2),
                _ => (Wire::Action, 1),
            };
            let (reason, bit) = on_wire(ofwire::OFP13_VERSION);
            let (reason10, bit10) = on_wire(ofwire::OFP10_VERSION);
            let msg = PacketIn {
                buffer_id: u32::MAX,
                total_len: u16::try_from(pin.total_len).unwrap_or(u16::MAX),
                reason,
                table_id: c.table_id,
                cookie: c.cookie,
                matches: openflow::packet_in::metadata(pin),
                data: pin.data.clone(),
            };
            let msg10 = PacketIn {
                reason: reason10,
                ..msg.clone()
            };
            let mut sent = false;
            if c.controller_id == 0 {
                for conn in &mut self.conns {
                    sent |= if conn.version() == Some(ofwire::OFP10_VERSION) {
                        conn.packet_in(&msg10, bit10)
                    } else {
                        conn.packet_in(&msg, bit)
                    };
                }
            }
            unsent += usize::from(!sent);
        }
        for conn in &mut self.conns {
            conn.flush();
        }
        unsent
    }

    /// Sends the rules removed with `send_flow_rem` (`removed`, oldest first) as
    /// FLOW_REMOVED to the connections whose role and async configuration ask for their
    /// reason (by default master and equal connections, every reason; slaves none). A rule
    /// whose match has no OpenFlow 1.3 encoding goes nowhere. Returns how many were sent to
    /// no connection.
    pub fn send_flow_removed(&mut self, removed: &[openflow::FlowRemoved]) -> usize {
        use ofwire::msg::flow::FlowRemoved;
        let mut unsent = 0;
        for n in removed {
            let r = &n.rule;
            let d = n.duration_ns();
            let msg = FlowRemoved {
                cookie: r.spec.cookie,
                priority: r.spec.priority,
                reason: n.reason,
                table_id: r.table(),
                duration_sec: (d / 1_000_000_000) as u32,
                duration_nsec: (d % 1_000_000_000) as u32,
                idle_timeout: r.spec.idle_timeout,
                hard_timeout: r.spec.hard_timeout,
                packet_count: r.stats.packets(),
                byte_count: r.stats.bytes(),
                matches: r.spec.matches.clone(),
            };
            let mut sent = false;
            for conn in &mut self.conns {
                sent |= conn.flow_removed(&msg);
            }
            unsent += usize::from(!sent);
        }
        for conn in &mut self.conns {
            conn.flush();
        }
        unsent
    }

    /// PORT_STATUS for every port added, deleted or changed since the last call (the ports are
    /// followed while the bridge has targets, so that a change is told to a connection that
    /// came in between): the daemon calls it after each control request and about once a
    /// second.
    pub fn send_port_changes(&mut self, sw: &dyn Switch) {
        self.port_changes(sw, &[]);
    }

    /// PORT_STATUS for every port added, deleted or changed since the last look, to every
    /// connection but those in `except`.
    fn port_changes(&mut self, sw: &dyn Switch, except: &[u64]) {
        let now: BTreeMap<u32, Port> = sw.ports().into_iter().map(|p| (p.port_no, p)).collect();
        let Some(before) = self.ports.replace(now.clone()) else {
            return;
        };
        let mut events = Vec::new();
        for (n, p) in &now {
            match before.get(n) {
                None => events.push((PortReason::Add, p.clone())),
                Some(old) if old != p => events.push((PortReason::Modify, p.clone())),
                _ => {}
            }
        }
        for (n, p) in &before {
            if !now.contains_key(n) {
                events.push((PortReason::Delete, p.clone()));
            }
        }
        for (reason, port) in events {
            let ps = PortStatus { reason, port };
            for c in self.conns.iter_mut().filter(|c| !except.contains(&c.id)) {
                c.port_status(&ps);
            }
        }
        for c in &mut self.conns {
            c.flush();
        }
    }

    /// Every target and connection, for `show`.
    pub fn status(&self, now: Instant) -> Vec<ConnStatus> {
        let mut out = Vec::new();
        for (t, l) in &self.listeners {
            out.push(ConnStatus {
                target: t.to_string(),
                peer: String::new(),
                state: "listening".into(),
                role: None,
                version: None,
                port: l.local_port(),
                detail: None,
            });
        }
        for a in &self.actives {
            if a.conn.is_none() {
                out.push(ConnStatus {
                    target: a.target.to_string(),
                    peer: String::new(),
                    state: "backoff".into(),
                    role: None,
                    version: None,
                    port: None,
                    detail: Some(format!(
                        "retry in {:.1} s{}",
                        a.next_attempt.saturating_duration_since(now).as_secs_f64(),
                        a.last_error
                            .as_ref()
                            .map(|e| format!(", last: {e}"))
                            .unwrap_or_default()
                    )),
                });
            }
        }
        for c in &self.conns {
            out.push(ConnStatus {
                target: c.target.clone(),
                peer: c.peer.clone(),
                state: match c.state {
                    State::Hello => "hello".into(),
                    State::Connected(_) => "connected".into(),
                },
                role: c.version().map(|_| role_name(c.role).to_string()),
                version: c.version().map(version_name),
                port: None,
                detail: None,
            });
        }
        out
    }

    /// Flow mods applied and refused over OpenFlow since the bridge started.
    pub fn flow_mod_counts(&self) -> (u64, u64) {
        (self.shared.flow_mods, self.shared.flow_mods_refused)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    use ofwire::header::Frame;
    use ofwire::msg::multipart::{Desc, PortStats};
    use ofwire::msg::port::{Port, PortMod};
    use ofwire::msg::switch::Features;
    use ofwire::msg::symmetric::Hello;
    use ofwire::{Framer, Message, OfpError};
    use openflow::normal::MacTable;
    use openflow::{Bridge, FlowMod, RuleSet};

    use super::*;
    use crate::conn::MESSAGES_PER_CALL;

    /// A bridge without a datapath: flow mods go to an `openflow::Bridge`; barriers counted.
    struct Mock {
        bridge: Bridge,
        barriers: usize,
        packet_outs: Vec<(u32, Vec<openflow::Action>, Vec<u8>)>,
        /// The ports PORT_MODs changed, in order; port 99 does not exist.
        port_mods: Vec<u32>,
    }

    impl Switch for Mock {
        fn features(&self) -> Features {
            Features::default()
        }
        fn desc(&self) -> Desc {
            Desc::default()
        }
        fn now_ns(&self) -> u64 {
            0
        }
        fn rules(&self) -> Arc<RuleSet> {
            self.bridge.rules().snapshot()
        }
        fn apply_all(&mut self, fms: &[FlowMod]) -> Result<(), (usize, OfpError)> {
            let refused = |i| {
                (
                    i,
                    OfpError::new(ofwire::ErrorCode::FlowModUnknown, "flow_mod"),
                )
            };
            // Priority 666 stands for what the rule set refuses.
            if let Some(i) = fms.iter().position(|f| f.spec.priority == 666) {
                return Err(refused(i));
            }
            self.bridge
                .apply(fms, 0)
                .map(|_| ())
                .map_err(|e| refused(e.index))
        }
        fn barrier(&mut self) -> Result<(), String> {
            self.barriers += 1;
            Ok(())
        }
        fn frag_flags(&self) -> u16 {
            0
        }
        fn set_frag_flags(&mut self, _: u16) -> Result<(), OfpError> {
            Ok(())
        }
        fn ports(&self) -> Vec<Port> {
            Vec::new()
        }
        fn port_stats(&self) -> Vec<PortStats> {
            Vec::new()
        }
        fn port_mod(&mut self, pm: &PortMod) -> Result<(), OfpError> {
            self.check_port_mod(pm)?;
            self.port_mods.push(pm.port_no);
            Ok(())
        }
        fn check_port_mod(&self, pm: &PortMod) -> Result<(), OfpError> {
            if pm.port_no == 99 {
                return Err(OfpError::new(
                    ofwire::ErrorCode::PortModBadPort,
                    "port_mod.port_no",
                ));
            }
            Ok(())
        }
        fn apply_bundle(
            &mut self,
            mods: &[openflow::ruleset::TableMod],
            commit: bool,
        ) -> Result<(), (usize, OfpError)> {
            use openflow::ruleset::{TableMod, TableModFailure};
            let flow_refused = |i| {
                (
                    i,
                    OfpError::new(ofwire::ErrorCode::FlowModUnknown, "flow_mod"),
                )
            };
            if let Some(i) = mods
                .iter()
                .position(|m| matches!(m, TableMod::Flow(f) if f.spec.priority == 666))
            {
                return Err(flow_refused(i));
            }
            self.bridge
                .rules()
                .apply_mods(mods, 0, commit)
                .map(|_| ())
                .map_err(|e| match e.failure {
                    TableModFailure::Group(g) => (
                        e.index,
                        OfpError::new(ofwire::msg::group::group_mod_error(g.code), "group"),
                    ),
                    TableModFailure::Flow(f) if f.field == "group" => (
                        e.index,
                        OfpError::new(ofwire::ErrorCode::BadActionOutGroup, "group"),
                    ),
                    TableModFailure::Flow(_) => flow_refused(e.index),
                })
        }
        fn group_mod(&mut self, gm: &openflow::GroupMod) -> Result<(), OfpError> {
            self.bridge
                .apply_groups(std::slice::from_ref(gm), 0)
                .map(|_| ())
                .map_err(|e| {
                    OfpError::new(ofwire::msg::group::group_mod_error(e.error.code), "group")
                })
        }
        fn packet_out(
            &mut self,
            in_port: u32,
            actions: Vec<openflow::Action>,
            frame: Vec<u8>,
        ) -> Result<(), OfpError> {
            self.packet_outs.push((in_port, actions, frame));
            Ok(())
        }
    }

    fn mock() -> Mock {
        Mock {
            bridge: Bridge::new(Vec::new(), MacTable::default()),
            barriers: 0,
            packet_outs: Vec::new(),
            port_mods: Vec::new(),
        }
    }

    fn read_all(peer: &mut UnixStream) -> Vec<Message> {
        let mut f = Framer::default();
        let mut buf = [0u8; 65536];
        let _ = peer.set_nonblocking(true);
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            f.push(&buf[..n]);
        }
        let mut out = Vec::new();
        while let Ok(Frame::Message(h, body)) = f.next_message() {
            if let Ok(m) = Message::decode(&h, &body) {
                out.push(m);
            }
        }
        out
    }

    fn connection() -> (Connection, UnixStream) {
        let (ours, mut peer) = UnixStream::pair().unwrap_or_else(|e| unreachable!("{e}"));
        let _ = ours.set_nonblocking(true);
        let c = Connection::new(
            1,
            "punix:test".into(),
            Stream::Unix(ours),
            Instant::now(),
            crate::conn::OUR_VERSIONS,
        );
        let hello = Message::Hello(Hello::offering(1 << 4)).encode(4, 1);
        let _ = peer.write_all(&hello.unwrap_or_default());
        (c, peer)
    }

    /// Sends `msgs` (xids 1, 2, ...) on `peer`, lets `c` handle them and returns what it
    /// answered.
    fn exchange_all(
        c: &mut Connection,
        peer: &mut UnixStream,
        sw: &mut Mock,
        shared: &mut Shared,
        msgs: &[Message],
    ) -> Vec<Message> {
        let mut bytes = Vec::new();
        for (xid, m) in msgs.iter().enumerate() {
            bytes.extend(m.encode(4, xid as u32 + 1).unwrap_or_default());
        }
        let _ = peer.write_all(&bytes);
        c.read_input();
        c.process(sw, shared, Instant::now());
        c.flush();
        read_all(peer)
    }

    #[test]
    fn flow_mods_wait_for_the_pmds_only_at_a_barrier() {
        let (mut c, mut peer) = connection();
        let mut sw = mock();
        let mut shared = Shared::default();
        let fm = openflow::parse_flow_mod("add priority=5,ip,actions=output:1")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let fm = ofwire::msg::flow::FlowModMsg::from_flow_mod(&fm)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut bytes = Vec::new();
        for (i, m) in [
            Message::FlowMod(fm.clone()),
            Message::FlowMod(fm),
            Message::BarrierRequest,
            Message::BarrierRequest,
        ]
        .iter()
        .enumerate()
        {
            bytes.extend(m.encode(4, 10 + i as u32).unwrap_or_default());
        }
        let _ = peer.write_all(&bytes);
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        c.flush();
        assert_eq!(c.version(), Some(4));
        // Two flow mods, one wait; the second barrier has nothing to wait for.
        assert_eq!(sw.barriers, 1);
        assert_eq!(sw.bridge.rules().load().len(), 1);
        let got = read_all(&mut peer);
        assert!(matches!(got[0], Message::Hello(_)));
        assert_eq!(got[1..], [Message::BarrierReply, Message::BarrierReply]);
    }

    #[test]
    fn invalid_ttl_packet_ins_are_wanted_once_set_async_asks_for_them() {
        let (mut c, peer) = connection();
        let (mut sw, mut shared) = (mock(), Shared::default());
        let mut peer = peer;
        // Before HELLO nothing is wanted; by default (OVS's) `no_match` and `action` only.
        assert!(!c.wants_packet_in(1));
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        assert!(c.wants_packet_in(0) && c.wants_packet_in(1));
        assert!(!c.wants_packet_in(2));
        // Faucet's SET_ASYNC: `action` and `invalid_ttl` for master and equal.
        let faucet = ofwire::msg::switch::AsyncConfig {
            packet_in_mask: [1 << 1 | 1 << 2, 1 << 1 | 1 << 2],
            port_status_mask: [0x7, 0x7],
            flow_removed_mask: [0, 0],
        };
        let bytes = Message::SetAsync(faucet).encode(4, 7).unwrap_or_default();
        let _ = peer.write_all(&bytes);
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        assert!(c.wants_packet_in(2) && !c.wants_packet_in(0));
    }

    #[test]
    fn flow_mods_apply_together_and_a_refused_one_errs_alone_even_after_the_peer_closed() {
        let (mut c, mut peer) = connection();
        let mut sw = mock();
        let mut shared = Shared::default();
        let msg = |text: &str, xid| {
            let fm = openflow::parse_flow_mod(text).unwrap_or_else(|e| unreachable!("{e}"));
            let m = ofwire::msg::flow::FlowModMsg::from_flow_mod(&fm)
                .unwrap_or_else(|e| unreachable!("{e}"));
            Message::FlowMod(m).encode(4, xid).unwrap_or_default()
        };
        let mut bytes = msg("add priority=1,ip,actions=output:1", 1);
        bytes.extend(msg("add priority=666,actions=drop", 2));
        bytes.extend(msg("add priority=3,udp,actions=output:2", 3));
        let _ = peer.write_all(&bytes);
        let _ = peer.shutdown(std::net::Shutdown::Write);
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        c.flush();
        assert_eq!(sw.bridge.rules().load().len(), 2);
        assert_eq!((shared.flow_mods, shared.flow_mods_refused), (2, 1));
        let got = read_all(&mut peer);
        assert_eq!(got.len(), 2, "{got:?}");
        // FLOWMOD_FAILED / UNKNOWN, carrying the refused message (its xid, 2).
        assert!(matches!(&got[1], Message::Error(e)
            if (e.err_type, e.code) == (5, 0) && e.data.get(4..8) == Some(&[0, 0, 0, 2][..])));
        assert_eq!(c.closed.as_deref(), Some(crate::conn::CLOSED_BY_PEER));
    }

    /// The ERRORs in `got` as `(xid, type, code)`.
    fn errors(got: &[Message]) -> Vec<(u32, u16, u16)> {
        got.iter()
            .filter_map(|m| match m {
                Message::Error(e) => {
                    let xid = e.data.get(4..8)?;
                    let xid = u32::from_be_bytes([xid[0], xid[1], xid[2], xid[3]]);
                    Some((xid, e.err_type, e.code))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn packet_outs_and_group_mods_are_checked_then_reach_the_switch() {
        use ofwire::action::{port, WireAction};
        use ofwire::msg::group::GroupMod as WireGroupMod;
        use ofwire::msg::packet::PacketOut;
        use openflow::group::{parse_group_mod, GroupModCommand};
        let (mut c, mut peer) = connection();
        let mut sw = mock();
        let mut shared = Shared::default();
        let out = |p| WireAction::Output {
            port: p,
            max_len: 0,
        };
        let po = |xid, buffer_id, in_port, actions: Vec<WireAction>| {
            Message::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data: vec![0xab; 60],
            })
            .encode(4, xid)
            .unwrap_or_default()
        };
        let gm = |xid, text: &str, command| {
            let m = parse_group_mod(text, command).unwrap_or_else(|e| unreachable!("{e}"));
            let w = WireGroupMod::from_model(&m).unwrap_or_else(|e| unreachable!("{e}"));
            Message::GroupMod(w).encode(4, xid).unwrap_or_default()
        };
        const NO_BUFFER: u32 = 0xffff_ffff;
        let add = "group_id=7,type=all,bucket=output:1,bucket=output:2";
        let mut bytes = po(1, 5, 1, vec![out(2)]);
        bytes.extend(po(2, NO_BUFFER, 0xffff_ff00, vec![out(2)]));
        bytes.extend(po(3, NO_BUFFER, port::IN_PORT, vec![out(2)]));
        bytes.extend(po(4, NO_BUFFER, 3, vec![WireAction::Group(7)]));
        bytes.extend(gm(5, add, GroupModCommand::Add));
        bytes.extend(gm(6, add, GroupModCommand::Add));
        bytes.extend(gm(
            7,
            "group_id=9,type=all,bucket=output:1",
            GroupModCommand::Modify,
        ));
        bytes.extend(po(8, NO_BUFFER, 3, vec![WireAction::Group(7)]));
        bytes.extend(po(9, NO_BUFFER, port::CONTROLLER, vec![out(port::TABLE)]));
        bytes.extend(po(10, NO_BUFFER, 2, vec![WireAction::CopyTtlIn]));
        bytes.extend(Message::BarrierRequest.encode(4, 11).unwrap_or_default());
        let _ = peer.write_all(&bytes);
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        c.flush();
        let got = read_all(&mut peer);
        assert_eq!(
            errors(&got),
            vec![
                (1, 1, 8),  // OFPBRC_BUFFER_UNKNOWN
                (2, 1, 11), // OFPBRC_BAD_PORT
                (3, 1, 11),
                (4, 2, 9),  // OFPBAC_BAD_OUT_GROUP: no group 7 yet
                (6, 6, 0),  // OFPGMFC_GROUP_EXISTS
                (7, 6, 8),  // OFPGMFC_UNKNOWN_GROUP
                (10, 2, 0), // OFPBAC_BAD_TYPE
            ]
        );
        assert_eq!(got.last(), Some(&Message::BarrierReply));
        assert!(sw.bridge.rules().snapshot().group(7).is_some());
        assert_eq!(sw.barriers, 1);
        let table = openflow::Action::Resubmit {
            port: None,
            table: Some(0),
        };
        assert_eq!(
            sw.packet_outs,
            vec![
                (3, vec![openflow::Action::Group(7)], vec![0xab; 60]),
                (port::CONTROLLER, vec![table], vec![0xab; 60]),
            ]
        );
        // A slave may do neither.
        c.role = ControllerRole::Slave;
        let mut bytes = po(12, NO_BUFFER, 1, vec![out(2)]);
        bytes.extend(gm(13, "group_id=8,type=all", GroupModCommand::Add));
        let _ = peer.write_all(&bytes);
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        c.flush();
        assert_eq!(errors(&read_all(&mut peer)), vec![(12, 1, 10), (13, 1, 10)]);
        assert_eq!(sw.packet_outs.len(), 2);
    }

    #[test]
    fn out_group_filters_flow_and_aggregate_stats_and_deletes() {
        use ofwire::msg::flow::{FlowModMsg, OFPG_ANY};
        use ofwire::msg::multipart::{FlowStatsRequest, MultipartRequest, ReplyBody, RequestBody};
        use openflow::group::{parse_group_mod, GroupModCommand};
        let (mut c, mut peer) = connection();
        let mut sw = mock();
        let mut shared = Shared::default();
        let groups: Vec<_> = [
            "group_id=1,type=all,bucket=output:1",
            "group_id=2,type=indirect,bucket=output:2",
        ]
        .iter()
        .map(|g| parse_group_mod(g, GroupModCommand::Add).unwrap_or_else(|e| unreachable!("{e}")))
        .collect();
        assert!(sw.bridge.apply_groups(&groups, 0).is_ok());
        let fm =
            |text: &str| openflow::parse_flow_mod(text).unwrap_or_else(|e| unreachable!("{e}"));
        let rules: Vec<_> = [
            "add priority=10,in_port=1,actions=group:1",
            "add priority=11,in_port=2,actions=output:1,group:2",
            "add priority=12,ip,actions=write_actions(group:1)",
            "add priority=13,udp,actions=group:2,group:1",
            "add priority=14,tcp,actions=output:1",
        ]
        .iter()
        .map(|t| fm(t))
        .collect();
        assert!(sw.bridge.apply(&rules, 0).is_ok());
        const ANY: u32 = 0xffff_ffff;
        let stats = |aggregate: bool, out_port, out_group| {
            let req = FlowStatsRequest {
                table_id: 0xff,
                out_port,
                out_group,
                cookie: 0,
                cookie_mask: 0,
                matches: openflow::Match::catch_all(),
            };
            let body = if aggregate {
                RequestBody::Aggregate(req)
            } else {
                RequestBody::Flow(req)
            };
            Message::MultipartRequest(MultipartRequest { flags: 0, body })
        };
        let wire = |text: &str, out_group| {
            let mut m =
                FlowModMsg::from_flow_mod(&fm(text)).unwrap_or_else(|e| unreachable!("{e}"));
            m.out_group = out_group;
            Message::FlowMod(m)
        };
        let msgs = [
            stats(false, ANY, 1),
            stats(false, 1, 2),
            stats(true, ANY, 1),
            stats(true, ANY, OFPG_ANY),
            // Strict: the rule does not use group 2; loose: two rules do.
            wire("delete_strict priority=10,in_port=1", 2),
            wire("delete", 2),
            // A modify's out_group is not a filter (OVS decodes it as OFPG_ANY).
            wire("modify_strict table=0,priority=14,tcp,actions=drop", 1),
            Message::BarrierRequest,
        ];
        let got = exchange_all(&mut c, &mut peer, &mut sw, &mut shared, &msgs);
        assert_eq!(errors(&got), Vec::new(), "{got:?}");
        let priorities = |m: &Message| -> Vec<u16> {
            match m {
                Message::MultipartReply(r) => match &r.body {
                    ReplyBody::Flow(v) => v.iter().map(|f| f.priority).collect(),
                    other => unreachable!("{other:?}"),
                },
                other => unreachable!("{other:?}"),
            }
        };
        let flow_count = |m: &Message| match m {
            Message::MultipartReply(r) => match r.body {
                ReplyBody::Aggregate { flow_count, .. } => flow_count,
                ref other => unreachable!("{other:?}"),
            },
            other => unreachable!("{other:?}"),
        };
        assert_eq!(priorities(&got[1]), [13, 12, 10]);
        // With out_port a rule needs both.
        assert_eq!(priorities(&got[2]), [11]);
        assert_eq!(flow_count(&got[3]), 3);
        assert_eq!(flow_count(&got[4]), 5);
        assert_eq!(got.last(), Some(&Message::BarrierReply));
        let left: Vec<String> = sw
            .bridge
            .rules()
            .load()
            .rules()
            .iter()
            .map(|r| r.spec.to_string())
            .collect();
        assert_eq!(
            left,
            [
                "table=0, priority=14,tcp actions=drop",
                "table=0, priority=12,ip actions=write_actions(group:1)",
                "table=0, priority=10,in_port=1 actions=group:1",
            ]
        );
    }

    #[test]
    fn meters_are_answered_as_by_a_switch_without_them() {
        use ofwire::msg::meter::{MeterBand, MeterFeatures, MeterMod, MeterModCommand, OFPM_ALL};
        use ofwire::msg::multipart::{MultipartRequest, ReplyBody, RequestBody};
        let (mut c, mut peer) = connection();
        let mut sw = mock();
        let mut shared = Shared::default();
        let meter_mod = |command, meter_id| {
            Message::MeterMod(MeterMod {
                command,
                flags: 1,
                meter_id,
                bands: vec![MeterBand {
                    band_type: 1,
                    rate: 1000,
                    burst_size: 0,
                    prec_level: 0,
                }],
            })
        };
        let request = |body| Message::MultipartRequest(MultipartRequest { flags: 0, body });
        let msgs = [
            meter_mod(MeterModCommand::Delete, OFPM_ALL),
            meter_mod(MeterModCommand::Add, 1),
            request(RequestBody::MeterFeatures),
            request(RequestBody::Meter(OFPM_ALL)),
            request(RequestBody::MeterConfig(5)),
            Message::BarrierRequest,
        ];
        let got = exchange_all(&mut c, &mut peer, &mut sw, &mut shared, &msgs);
        assert_eq!(got.len(), 6, "{got:?}");
        // The delete succeeds silently; the add is METER_MOD_FAILED / INVALID_METER.
        assert!(matches!(&got[1], Message::Error(e)
            if (e.err_type, e.code) == (12, 2) && e.data.get(4..8) == Some(&[0, 0, 0, 2][..])));
        assert!(matches!(&got[2], Message::MultipartReply(r)
            if r.body == ReplyBody::MeterFeatures(MeterFeatures::default())));
        assert!(matches!(&got[3], Message::MultipartReply(r)
            if r.body == ReplyBody::Meter(Vec::new())));
        // Meter 5 does not exist: UNKNOWN_METER.
        assert!(matches!(&got[4], Message::Error(e)
            if (e.err_type, e.code) == (12, 3) && e.data.get(4..8) == Some(&[0, 0, 0, 5][..])));
        assert_eq!(got[5], Message::BarrierReply);
    }

    #[test]
    fn a_flood_is_handled_a_bounded_slice_at_a_time() {
        let (mut c, mut peer) = connection();
        let mut sw = mock();
        let mut shared = Shared::default();
        let echo = Message::EchoRequest(vec![7])
            .encode(4, 3)
            .unwrap_or_default();
        let flood: Vec<u8> = echo
            .iter()
            .copied()
            .cycle()
            .take(echo.len() * 1000)
            .collect();
        let _ = peer.write_all(&flood);
        c.read_input();
        c.process(&mut sw, &mut shared, Instant::now());
        // HELLO and 255 echoes; the rest waits for the next round.
        assert_eq!(c.rx_messages, MESSAGES_PER_CALL as u64);
        assert!(c.has_input());
        for _ in 0..4 {
            c.process(&mut sw, &mut shared, Instant::now());
        }
        assert_eq!(c.rx_messages, 1001);
        assert!(!c.has_input());
    }

    #[test]
    fn a_listener_that_cannot_be_bound_changes_nothing() {
        let mut c = Controllers::default();
        let now = Instant::now();
        let ptcp = Target::parse("ptcp:0:127.0.0.1").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.set_targets(vec![ptcp.clone()], now), Ok(()));
        let port = c.listening_port(&ptcp);
        assert!(port.is_some());
        let bad =
            Target::parse("punix:/nonexistent-dir/x.sock").unwrap_or_else(|e| unreachable!("{e}"));
        let other = Target::parse("ptcp:0:127.0.0.2").unwrap_or_else(|e| unreachable!("{e}"));
        assert!(c.set_targets(vec![other.clone(), bad], now).is_err());
        assert_eq!(c.targets(), std::slice::from_ref(&ptcp));
        assert_eq!(c.listening_port(&ptcp), port);
        assert_eq!(c.listening_port(&other), None);
        assert_eq!(c.status(now).len(), 1);
    }

    /// Bundle messages as `ovs-ofctl -O OpenFlow13 --bundle` sends them.
    mod bundles {
        use super::*;
        use ofwire::msg::bundle::{BundleAdd, BundleCtrl, BundleCtrlType as T, Experimenter};

        fn ctrl(t: T, id: u32, flags: u16, xid: u32) -> Vec<u8> {
            let m = Experimenter::BundleControl(BundleCtrl {
                bundle_id: id,
                ctrl_type: t,
                flags,
                properties: Vec::new(),
            });
            Message::Experimenter(m).encode(4, xid).unwrap_or_default()
        }

        fn add(id: u32, flags: u16, text: &str, xid: u32) -> Vec<u8> {
            let fm = openflow::parse_flow_mod(text).unwrap_or_else(|e| unreachable!("{e}"));
            let m = ofwire::msg::flow::FlowModMsg::from_flow_mod(&fm)
                .unwrap_or_else(|e| unreachable!("{e}"));
            let inner = Message::FlowMod(m).encode(4, xid).unwrap_or_default();
            add_raw(id, flags, inner, xid)
        }

        fn add_raw(id: u32, flags: u16, inner: Vec<u8>, xid: u32) -> Vec<u8> {
            let m = Experimenter::BundleAdd(BundleAdd {
                bundle_id: id,
                flags,
                inner,
            });
            Message::Experimenter(m).encode(4, xid).unwrap_or_default()
        }

        /// Sends `msgs`, handles them; returns what came back after the HELLO.
        fn exchange(sw: &mut Mock, msgs: &[Vec<u8>]) -> Vec<Message> {
            let (mut c, mut peer) = connection();
            let mut shared = Shared::default();
            let _ = peer.write_all(&msgs.concat());
            c.read_input();
            c.process(sw, &mut shared, Instant::now());
            c.flush();
            read_all(&mut peer).split_off(1)
        }

        fn reply(t: T, id: u32) -> Message {
            Message::Experimenter(Experimenter::BundleControl(BundleCtrl {
                bundle_id: id,
                ctrl_type: t,
                flags: 0,
                properties: Vec::new(),
            }))
        }

        /// An ERROR's (type, code) and the xid of the message it quotes.
        fn error(m: &Message) -> (u16, u16, u32) {
            let Message::Error(e) = m else {
                panic!("not an error: {m:?}");
            };
            // Experimenter errors carry the ONF's id before the quoted message.
            let at = if e.err_type == 0xffff { 8 } else { 4 };
            let xid = e
                .data
                .get(at..at + 4)
                .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap_or_default()));
            (e.err_type, e.code, xid)
        }

        #[test]
        fn a_committed_bundle_applies_as_one_change() {
            let mut sw = mock();
            let got = exchange(
                &mut sw,
                &[
                    ctrl(T::OpenRequest, 7, 3, 1),
                    add(7, 3, "add priority=1,ip,actions=output:1", 2),
                    add(7, 3, "add priority=2,udp,actions=output:2", 3),
                    ctrl(T::CloseRequest, 7, 3, 4),
                ],
            );
            assert_eq!(got, [reply(T::OpenReply, 7), reply(T::CloseReply, 7)]);
            // Nothing is applied before the commit (a new connection has no bundle 7 ...).
            assert_eq!(sw.bridge.rules().load().len(), 0);
            let got = exchange(&mut sw, &[ctrl(T::CommitRequest, 7, 3, 5)]);
            assert_eq!(error(&got[0]), (0xffff, 2302, 5), "BAD_ID");
            // ... so the whole conversation goes on one connection.
            let got = exchange(
                &mut sw,
                &[
                    ctrl(T::OpenRequest, 7, 3, 1),
                    add(7, 3, "add priority=1,ip,actions=output:1", 2),
                    add(7, 3, "add priority=2,udp,actions=output:2", 3),
                    ctrl(T::CommitRequest, 7, 3, 4),
                    ctrl(T::CommitRequest, 7, 3, 5),
                ],
            );
            assert_eq!(got[..2], [reply(T::OpenReply, 7), reply(T::CommitReply, 7)]);
            assert_eq!(sw.bridge.rules().load().len(), 2);
            // A committed bundle is gone.
            assert_eq!(error(&got[2]), (0xffff, 2302, 5));
        }

        #[test]
        fn a_refused_message_fails_the_whole_commit() {
            let mut sw = mock();
            let got = exchange(
                &mut sw,
                &[
                    add(1, 1, "add priority=1,ip,actions=output:1", 2),
                    add(1, 1, "add priority=666,actions=drop", 3),
                    add(1, 1, "add priority=3,udp,actions=output:2", 4),
                    ctrl(T::CommitRequest, 1, 1, 5),
                ],
            );
            assert_eq!(sw.bridge.rules().load().len(), 0);
            // The refused message's own error (FLOW_MOD_FAILED, quoting its add message),
            // then MSG_FAILED for the commit.
            assert_eq!(
                got.iter().map(error).collect::<Vec<_>>(),
                [(5, 0, 3), (0xffff, 2313, 5)]
            );
        }

        #[test]
        fn misuse_is_refused_as_ovs_refuses_it() {
            let mut sw = mock();
            let barrier = Message::BarrierRequest.encode(4, 3).unwrap_or_default();
            let got = exchange(
                &mut sw,
                &[
                    ctrl(T::OpenRequest, 1, 1, 1),
                    // Reopening drops the bundle and refuses.
                    ctrl(T::OpenRequest, 1, 1, 2),
                    ctrl(T::CloseRequest, 1, 1, 3),
                    // Flags must stay those of the open; a mismatch drops the bundle.
                    ctrl(T::OpenRequest, 2, 1, 4),
                    add(2, 3, "add priority=1,ip,actions=drop", 5),
                    ctrl(T::DiscardRequest, 2, 0, 6),
                    // Closed bundles take no more messages.
                    ctrl(T::OpenRequest, 3, 0, 7),
                    ctrl(T::CloseRequest, 3, 0, 8),
                    add(3, 0, "add priority=1,ip,actions=drop", 9),
                    // Only flow mods are bundled; a reply type is not a request.
                    add_raw(4, 0, barrier, 3),
                    ctrl(T::OpenReply, 5, 0, 10),
                    // Discard forgets.
                    ctrl(T::OpenRequest, 6, 0, 11),
                    add(6, 0, "add priority=1,ip,actions=drop", 12),
                    ctrl(T::DiscardRequest, 6, 0, 13),
                    ctrl(T::CommitRequest, 6, 0, 14),
                ],
            );
            let summary: Vec<_> = got
                .iter()
                .map(|m| match m {
                    Message::Experimenter(Experimenter::BundleControl(c)) => {
                        (0, c.ctrl_type as u16, c.bundle_id)
                    }
                    m => error(m),
                })
                .collect();
            assert_eq!(
                summary,
                [
                    (0, T::OpenReply as u16, 1),
                    (0xffff, 2302, 2),
                    (0xffff, 2302, 3),
                    (0, T::OpenReply as u16, 2),
                    (0xffff, 2307, 5),
                    (0xffff, 2302, 6),
                    (0, T::OpenReply as u16, 3),
                    (0, T::CloseReply as u16, 3),
                    (0xffff, 2304, 9),
                    (0xffff, 2310, 3),
                    (0xffff, 2306, 10),
                    (0, T::OpenReply as u16, 6),
                    (0, T::DiscardReply as u16, 6),
                    (0xffff, 2302, 14),
                ]
            );
            assert_eq!(sw.bridge.rules().load().len(), 0);
        }

        /// Each ERROR in `got` as [`error`] reads it.
        fn codes(got: &[Message]) -> Vec<(u16, u16, u32)> {
            got.iter().map(error).collect()
        }

        fn group_add(id: u32, flags: u16, text: &str, xid: u32) -> Vec<u8> {
            group_mod(id, flags, text, openflow::group::GroupModCommand::Add, xid)
        }

        fn group_mod(
            id: u32,
            flags: u16,
            text: &str,
            command: openflow::group::GroupModCommand,
            xid: u32,
        ) -> Vec<u8> {
            let m = openflow::group::parse_group_mod(text, command)
                .unwrap_or_else(|e| unreachable!("{e}"));
            let w = ofwire::msg::group::GroupMod::from_model(&m)
                .unwrap_or_else(|e| unreachable!("{e}"));
            let inner = Message::GroupMod(w).encode(4, xid).unwrap_or_default();
            add_raw(id, flags, inner, xid)
        }

        fn packet_out(id: u32, flags: u16, actions: Vec<WireAction>, xid: u32) -> Vec<u8> {
            let m = Message::PacketOut(ofwire::msg::packet::PacketOut {
                buffer_id: u32::MAX,
                in_port: 1,
                actions,
                data: vec![0xab; 60],
            });
            add_raw(id, flags, m.encode(4, xid).unwrap_or_default(), xid)
        }

        fn port_mod(id: u32, flags: u16, port_no: u32, xid: u32) -> Vec<u8> {
            let m = Message::PortMod(PortMod {
                port_no,
                hw_addr: [0; 6],
                config: 1,
                mask: 1,
                advertise: 0,
            });
            add_raw(id, flags, m.encode(4, xid).unwrap_or_default(), xid)
        }

        use ofwire::action::WireAction;

        /// Sends `msgs` on `c` and handles them at `now`; what came back, HELLO left out.
        fn round(
            c: &mut Connection,
            peer: &mut UnixStream,
            sw: &mut Mock,
            msgs: &[Vec<u8>],
            now: Instant,
        ) -> Vec<Message> {
            let _ = peer.write_all(&msgs.concat());
            c.read_input();
            c.process(sw, &mut Shared::default(), now);
            c.flush();
            read_all(peer)
                .into_iter()
                .filter(|m| !matches!(m, Message::Hello(_)))
                .collect()
        }

        #[test]
        fn a_group_mod_commits_with_the_flows_that_use_it() {
            let mut sw = mock();
            let got = exchange(
                &mut sw,
                &[
                    group_add(1, 3, "group_id=7,type=all,bucket=output:1", 2),
                    add(1, 3, "add priority=5,ip,actions=group:7", 3),
                    ctrl(T::CommitRequest, 1, 3, 4),
                ],
            );
            assert_eq!(got, [reply(T::CommitReply, 1)]);
            let rules = sw.bridge.rules().snapshot();
            assert_eq!((rules.len(), rules.group(7).is_some()), (1, true));
            // One change of the rule set, not one per message.
            assert_eq!(rules.generation(), 1);
        }

        #[test]
        fn a_failing_group_mod_undoes_the_bundles_flows() {
            use openflow::group::GroupModCommand;
            let mut sw = mock();
            let got = exchange(
                &mut sw,
                &[
                    add(1, 3, "add priority=1,ip,actions=output:1", 2),
                    group_add(1, 3, "group_id=7,type=all,bucket=output:1", 3),
                    // Group 9 does not exist: OFPGMFC_UNKNOWN_GROUP.
                    group_mod(1, 3, "group_id=9,type=all", GroupModCommand::Modify, 4),
                    add(1, 3, "add priority=3,udp,actions=output:2", 5),
                    ctrl(T::CommitRequest, 1, 3, 6),
                ],
            );
            assert_eq!(codes(&got), [(6, 8, 4), (0xffff, 2313, 6)]);
            let rules = sw.bridge.rules().snapshot();
            assert_eq!((rules.len(), rules.group(7).is_some()), (0, false));
            assert_eq!(rules.generation(), 0);
        }

        #[test]
        fn packet_outs_run_in_order_only_after_a_successful_commit() {
            let (mut c, mut peer) = connection();
            let mut sw = mock();
            let now = Instant::now();
            let out = |port| WireAction::Output { port, max_len: 0 };
            let got = round(
                &mut c,
                &mut peer,
                &mut sw,
                &[
                    ctrl(T::OpenRequest, 1, 3, 1),
                    packet_out(1, 3, vec![out(2)], 2),
                    // Its group is added before it in the same bundle.
                    group_add(1, 3, "group_id=7,type=all,bucket=output:1", 3),
                    packet_out(1, 3, vec![WireAction::Group(7)], 4),
                    add(1, 3, "add priority=5,ip,actions=group:7", 5),
                ],
                now,
            );
            assert_eq!(got, [reply(T::OpenReply, 1)]);
            assert!(sw.packet_outs.is_empty(), "nothing runs before the commit");
            let got = round(
                &mut c,
                &mut peer,
                &mut sw,
                &[ctrl(T::CommitRequest, 1, 3, 6)],
                now,
            );
            assert_eq!(got, [reply(T::CommitReply, 1)]);
            let ports: Vec<_> = sw.packet_outs.iter().map(|p| p.1.clone()).collect();
            assert_eq!(
                ports,
                [
                    vec![openflow::Action::Output(2)],
                    vec![openflow::Action::Group(7)]
                ]
            );
            // A bundle that fails runs none of its PACKET_OUTs: here the group is deleted
            // before the PACKET_OUT that names it (OFPBAC_BAD_OUT_GROUP, quoting it).
            use openflow::group::GroupModCommand;
            let got = round(
                &mut c,
                &mut peer,
                &mut sw,
                &[
                    packet_out(2, 3, vec![out(2)], 7),
                    group_mod(2, 3, "group_id=7", GroupModCommand::Delete, 8),
                    packet_out(2, 3, vec![WireAction::Group(7)], 9),
                    ctrl(T::CommitRequest, 2, 3, 10),
                    packet_out(3, 3, vec![out(2)], 11),
                    add(3, 3, "add priority=666,actions=drop", 12),
                    ctrl(T::CommitRequest, 3, 3, 13),
                ],
                now,
            );
            assert_eq!(
                codes(&got),
                [
                    (2, 9, 9),
                    (0xffff, 2313, 10),
                    (5, 0, 12),
                    (0xffff, 2313, 13)
                ]
            );
            assert_eq!(sw.packet_outs.len(), 2);
            let rules = sw.bridge.rules().snapshot();
            assert_eq!((rules.len(), rules.group(7).is_some()), (1, true));
        }

        #[test]
        fn port_mods_are_refused_in_atomic_bundles_and_follow_the_commit_otherwise() {
            let mut sw = mock();
            // OVS's port mods are not atomic: in an atomic bundle one fails the commit, as
            // the first refusal in bundle order (after the bad flow mod before it).
            let got = exchange(
                &mut sw,
                &[
                    add(1, 1, "add priority=1,ip,actions=output:1", 2),
                    port_mod(1, 1, 1, 3),
                    ctrl(T::CommitRequest, 1, 1, 4),
                    add(2, 1, "add priority=666,actions=drop", 5),
                    port_mod(2, 1, 1, 6),
                    ctrl(T::CommitRequest, 2, 1, 7),
                ],
            );
            assert_eq!(
                codes(&got),
                [
                    (0xffff, 2313, 3),
                    (0xffff, 2313, 4),
                    (5, 0, 5),
                    (0xffff, 2313, 7)
                ]
            );
            assert!(sw.port_mods.is_empty());
            assert_eq!(sw.bridge.rules().load().len(), 0);
            // Not atomic: a port that does not exist fails the commit where it stands ...
            let got = exchange(
                &mut sw,
                &[
                    port_mod(1, 0, 1, 2),
                    add(1, 0, "add priority=1,ip,actions=output:1", 3),
                    port_mod(1, 0, 99, 4),
                    ctrl(T::CommitRequest, 1, 0, 5),
                ],
            );
            assert_eq!(codes(&got), [(7, 0, 4), (0xffff, 2313, 5)]);
            assert!(sw.port_mods.is_empty());
            assert_eq!(sw.bridge.rules().load().len(), 0);
            // ... and good ones are applied, in order, after the rules changed.
            let got = exchange(
                &mut sw,
                &[
                    port_mod(1, 0, 2, 2),
                    add(1, 0, "add priority=1,ip,actions=output:1", 3),
                    port_mod(1, 0, 1, 4),
                    ctrl(T::CommitRequest, 1, 0, 5),
                ],
            );
            assert_eq!(got, [reply(T::CommitReply, 1)]);
            assert_eq!(sw.port_mods, [2, 1]);
            assert_eq!(sw.bridge.rules().load().len(), 1);
        }

        #[test]
        fn an_idle_bundle_is_discarded_with_a_timeout_error() {
            let (mut c, mut peer) = connection();
            let mut sw = mock();
            let t0 = Instant::now();
            let secs = Duration::from_secs;
            let got = round(
                &mut c,
                &mut peer,
                &mut sw,
                &[
                    ctrl(T::OpenRequest, 1, 3, 1),
                    // Bundle 2 is made by its first add.
                    add(2, 3, "add priority=1,ip,actions=output:1", 2),
                ],
                t0,
            );
            assert_eq!(got, [reply(T::OpenReply, 1)]);
            // Bundle 1 used again at 5 s (an add), bundle 2 not.
            round(
                &mut c,
                &mut peer,
                &mut sw,
                &[add(1, 3, "add priority=2,ip,actions=output:2", 3)],
                t0 + secs(5),
            );
            crate::bundle::expire_idle(&mut c, t0 + secs(9), DEFAULT_IDLE);
            c.flush();
            assert!(read_all(&mut peer).is_empty());
            crate::bundle::expire_idle(&mut c, t0 + secs(10), DEFAULT_IDLE);
            c.flush();
            // OFPBFC_TIMEOUT, quoting the message that made bundle 2.
            let got = read_all(&mut peer);
            assert_eq!(codes(&got), [(0xffff, 2314, 2)]);
            let got = round(
                &mut c,
                &mut peer,
                &mut sw,
                &[ctrl(T::CommitRequest, 2, 3, 4)],
                t0 + secs(10),
            );
            assert_eq!(codes(&got), [(0xffff, 2302, 4)]);
            // Bundle 1 goes at 15 s; its error quotes the open.
            crate::bundle::expire_idle(&mut c, t0 + secs(15), DEFAULT_IDLE);
            c.flush();
            let got = read_all(&mut peer);
            assert_eq!(codes(&got), [(0xffff, 2314, 1)]);
            assert!(c.bundles.is_empty());
            assert_eq!(sw.bridge.rules().load().len(), 0);
        }

        const DEFAULT_IDLE: Duration = crate::bundle::DEFAULT_BUNDLE_IDLE_TIMEOUT;
    }
}
