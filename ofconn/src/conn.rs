//! One OpenFlow connection: its socket, the framing of what it reads, what waits to be
//! written, and its state (HELLO exchange, then the negotiated version, the controller's
//! role, its async configuration and `miss_send_len`), with the echo keepalive and the
//! inactivity probe. [`Connection::process`] handles a bounded number of messages per call,
//! so that one flooding peer cannot hold the control thread.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use ofwire::header::Frame;
use ofwire::msg::port::PortStatus;
use ofwire::msg::switch::{AsyncConfig, ControllerRole};
use ofwire::msg::symmetric::{negotiate, ErrorMsg, Hello};
use ofwire::msg::table_features::TableFeatures;
use ofwire::{ErrorCode, Framer, Header, Message, MsgType, OfpError, OFP10_VERSION, OFP13_VERSION};

use crate::handle::{apply_flow_mods, flow_mod, handle, PendingFlowMod, Shared};
use crate::stream::Stream;
use crate::switch::Switch;

/// The versions this switch speaks (bit N: version N): OpenFlow 1.3 and 1.0. The highest
/// both sides speak is used, so 1.3 whenever the peer has it.
pub const OUR_VERSIONS: u32 = (1 << OFP13_VERSION) | (1 << OFP10_VERSION);
/// The versions `protocols` names (`OpenFlow10,OpenFlow13`, Open vSwitch's names, comma
/// separated), as a bitmap; a name vecswitch does not speak is refused naming it.
pub fn parse_protocols(s: &str) -> Result<u32, String> {
    let mut v = 0u32;
    for name in s.split(',').map(str::trim) {
        v |= match name {
            "OpenFlow10" => 1 << OFP10_VERSION,
            "OpenFlow13" => 1 << OFP13_VERSION,
            _ => {
                return Err(format!(
                    "protocols: {name:?} is not one of OpenFlow10, OpenFlow13"
                ))
            }
        };
    }
    Ok(v)
}

/// Open vSwitch's names of the versions of bitmap `v`, comma separated.
pub fn protocols_names(v: u32) -> String {
    [(OFP10_VERSION, "OpenFlow10"), (OFP13_VERSION, "OpenFlow13")]
        .iter()
        .filter(|(n, _)| v & (1 << n) != 0)
        .map(|(_, s)| *s)
        .collect::<Vec<_>>()
        .join(",")
}

/// Messages handled per connection per call of [`Connection::process`].
pub const MESSAGES_PER_CALL: usize = 256;
/// Bytes read per connection per call.
const READ_PER_CALL: usize = 256 << 10;
/// While more than this waits to be written, the connection's input is not handled (a peer
/// that sends but does not read is held back, not buffered without bound).
const OUTPUT_HIGH_WATER: usize = 4 << 20;

/// What a message asked of the other connections of the bridge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// This connection became master: the other masters become slaves.
    BecameMaster,
    /// This connection changed a port (PORT_MOD): the others get a PORT_STATUS now (not
    /// this one: before OpenFlow 1.5 the originator is not told, as in Open vSwitch).
    PortModified,
}

/// Where a connection is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// HELLO sent; the peer's not yet received.
    Hello,
    /// Versions agreed.
    Connected(u8),
}

/// A connection and its state.
pub struct Connection {
    pub id: u64,
    /// The target it belongs to, as configured.
    pub target: String,
    pub peer: String,
    stream: Stream,
    framer: Framer,
    /// Queued output; its first `out_sent` bytes are written already (dropped from the
    /// front only once they are half the buffer, so a long reply that the socket takes a
    /// piece at a time is not moved down after every piece).
    out: Vec<u8>,
    out_sent: usize,
    pub state: State,
    pub role: ControllerRole,
    pub async_config: AsyncConfig,
    pub miss_send_len: u16,
    last_rx: Instant,
    probe_sent: Option<Instant>,
    /// Why it closed, once it has (what is queued is still written).
    pub closed: Option<String>,
    /// The peer has closed its side: what it sent before is still handled, then the
    /// connection closes.
    eof: bool,
    pub rx_messages: u64,
    pub errors_sent: u64,
    /// A TABLE_FEATURES set request spread over messages (`OFPMPF_REQ_MORE`): its xid and
    /// the tables so far.
    pub(crate) table_features_parts: Option<(u32, Vec<TableFeatures>)>,
    /// Bundles opened and not yet committed or discarded.
    pub(crate) bundles: crate::bundle::Bundles,
    /// The versions it offers (bit N: version N).
    versions: u32,
}

/// Why a connection closed when the peer closed it.
pub const CLOSED_BY_PEER: &str = "closed by peer";

/// OpenFlow 1.3's defaults for a new connection (and Open vSwitch's): packet-ins for
/// table-miss and actions, every port status, every flow removal, for master and equal; only
/// port status for slaves.
pub fn default_async() -> AsyncConfig {
    AsyncConfig {
        packet_in_mask: [0x3, 0],
        port_status_mask: [0x7, 0x7],
        flow_removed_mask: [0xf, 0],
    }
}

/// `OFPCML_NO_BUFFER`'s neighbour: the spec's default `miss_send_len`.
pub const DEFAULT_MISS_SEND_LEN: u16 = 128;

impl Connection {
    /// A connection on `stream` offering `versions` (bit N: version N); its HELLO is queued
    /// at once.
    pub fn new(id: u64, target: String, stream: Stream, now: Instant, versions: u32) -> Connection {
        let mut c = Connection {
            id,
            target,
            peer: stream.peer(),
            stream,
            framer: Framer::default(),
            out: Vec::new(),
            out_sent: 0,
            state: State::Hello,
            role: ControllerRole::Equal,
            async_config: default_async(),
            miss_send_len: DEFAULT_MISS_SEND_LEN,
            last_rx: now,
            probe_sent: None,
            closed: None,
            eof: false,
            rx_messages: 0,
            errors_sent: 0,
            table_features_parts: None,
            bundles: Default::default(),
            versions,
        };
        c.send(&Message::Hello(Hello::offering(versions)), 0);
        c
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// The negotiated version, once there is one.
    pub fn version(&self) -> Option<u8> {
        match self.state {
            State::Connected(v) => Some(v),
            State::Hello => None,
        }
    }

    /// Bytes queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.out.len() - self.out_sent
    }

    /// Queues `m` with `xid` in the connection's version.
    pub fn send(&mut self, m: &Message, xid: u32) {
        let version = self.version().unwrap_or(OFP13_VERSION);
        match m.encode(version, xid) {
            Ok(b) => self.out.extend_from_slice(&b),
            Err(e) => eprintln!(
                "vecswitch: openflow {}: cannot encode {:?}: {e}",
                self.peer,
                m.msg_type()
            ),
        }
    }

    /// Queues already encoded messages.
    pub fn send_bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// Queues the ERROR refusing `offending` (a whole message) with `e`.
    pub fn send_error(&mut self, e: &OfpError, offending: &[u8], xid: u32) {
        self.errors_sent += 1;
        let version = self.version().unwrap_or(OFP13_VERSION);
        self.send(
            &Message::Error(ErrorMsg::refusing_in(version, e, offending)),
            xid,
        );
    }

    /// Marks the connection closed; what is queued is still written once.
    pub fn close(&mut self, why: impl Into<String>) {
        if self.closed.is_none() {
            self.closed = Some(why.into());
        }
    }

    /// Reads what the socket has (up to a budget) into the framer.
    pub fn read_input(&mut self) {
        if self.closed.is_some() || self.eof {
            return;
        }
        let mut buf = [0u8; 16 << 10];
        let mut total = 0;
        while total < READ_PER_CALL {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    self.framer.push(&buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(format!("read: {e}"));
                    return;
                }
            }
        }
    }

    /// Writes what is queued, as far as the socket takes it.
    pub fn flush(&mut self) {
        while self.out_sent < self.out.len() {
            match self.stream.write(&self.out[self.out_sent..]) {
                Ok(0) => break,
                Ok(n) => self.out_sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.out.clear();
                    self.out_sent = 0;
                    self.close(format!("write: {e}"));
                    break;
                }
            }
        }
        if self.out_sent == self.out.len() {
            self.out.clear();
            self.out_sent = 0;
        } else if self.out_sent > self.out.len() / 2 {
            self.out.drain(..self.out_sent);
            self.out_sent = 0;
        }
    }

    /// True when the framer holds a whole message that the next call will handle (a partial
    /// one waits for the socket; all wait while the peer does not read its output).
    pub fn has_input(&self) -> bool {
        self.closed.is_none() && self.backlog() <= OUTPUT_HIGH_WATER && self.framer.has_message()
    }

    /// Handles up to [`MESSAGES_PER_CALL`] whole messages; returns what they asked of the
    /// other connections.
    pub fn process(
        &mut self,
        sw: &mut dyn Switch,
        shared: &mut Shared,
        now: Instant,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Consecutive FLOW_MODs, applied together before the next other message.
        let mut pending = Vec::new();
        for _ in 0..MESSAGES_PER_CALL {
            if self.closed.is_some() || self.backlog() > OUTPUT_HIGH_WATER {
                break;
            }
            let (h, body) = match self.framer.next_message() {
                Ok(Frame::NeedMore) => break,
                Ok(Frame::Message(h, body)) => (h, body),
                Err(e) => {
                    // The length cannot be trusted: the stream has lost its framing
                    // (OpenFlow 1.3.5 section 7.4.4: BAD_LEN), answer and close.
                    self.send_error(&e, &[], 0);
                    self.close(format!("framing: {e}"));
                    break;
                }
            };
            self.last_rx = now;
            self.probe_sent = None;
            self.rx_messages += 1;
            let mut raw = Vec::with_capacity(8 + body.len());
            h.encode(&mut raw);
            raw.extend_from_slice(&body);
            match self.state {
                State::Hello => self.hello(&h, &body, &raw),
                // Every message but HELLO, ERROR and ECHO (the same in every version) must
                // be in the negotiated version.
                State::Connected(v) if h.version != v && h.msg_type > MsgType::EchoReply as u8 => {
                    apply_flow_mods(self, sw, shared, &mut pending);
                    let e = OfpError::new(ErrorCode::BadRequestVersion, "ofp_header.version");
                    self.send_error(&e, &raw, h.xid);
                }
                State::Connected(_) if h.msg_type == MsgType::FlowMod as u8 => {
                    match flow_mod(self, &h, &body) {
                        Ok(fm) => pending.push(PendingFlowMod {
                            fm,
                            raw,
                            xid: h.xid,
                        }),
                        Err(e) => {
                            apply_flow_mods(self, sw, shared, &mut pending);
                            self.send_error(&e, &raw, h.xid);
                        }
                    }
                }
                State::Connected(_) => {
                    // Every message sees the flow mods before it applied.
                    apply_flow_mods(self, sw, shared, &mut pending);
                    if let Some(e) = handle(self, sw, shared, &h, &body, &raw, now) {
                        effects.push(e);
                    }
                }
            }
        }
        apply_flow_mods(self, sw, shared, &mut pending);
        if self.eof && !self.framer.has_message() {
            self.close(CLOSED_BY_PEER);
        }
        effects
    }

    /// The first message must be HELLO; without a common version the peer gets
    /// HELLO_FAILED / INCOMPATIBLE (with our versions in text) and the connection closes.
    fn hello(&mut self, h: &Header, body: &[u8], raw: &[u8]) {
        if h.msg_type != MsgType::Hello as u8 {
            let e = OfpError::new(ErrorCode::HelloIncompatible, "hello");
            self.send_error(&e, raw, h.xid);
            self.close("the peer's first message was not HELLO");
            return;
        }
        let hello = match Message::decode(h, body) {
            Ok(Message::Hello(hello)) => hello,
            _ => Hello::default(),
        };
        match negotiate(self.versions, h.version, &hello) {
            Ok(v) => self.state = State::Connected(v),
            Err(e) => {
                let (err_type, code) = e.code.type_code();
                let text = format!(
                    "We support {}, you support {}",
                    protocols_names(self.versions),
                    match hello.versions {
                        Some(b) => format!("versions bitmap 0x{b:08x}"),
                        None => format!("version 0x{:02x} and below", h.version),
                    }
                );
                let m = Message::Error(ErrorMsg {
                    err_type,
                    code,
                    data: text.into_bytes(),
                });
                // In the peer's version, so that it can read it.
                if let Ok(b) = m.encode(h.version, h.xid) {
                    self.out.extend_from_slice(&b);
                }
                self.errors_sent += 1;
                self.close(format!(
                    "version negotiation failed (peer speaks version 0x{:02x})",
                    h.version
                ));
            }
        }
    }

    /// The inactivity probe: after `interval` without a message, an ECHO_REQUEST; after
    /// another `interval` without one, the connection closes. `None` turns it off.
    pub fn check_probe(&mut self, now: Instant, interval: Option<Duration>) {
        let Some(interval) = interval else { return };
        if self.closed.is_some() {
            return;
        }
        match self.probe_sent {
            None if now.duration_since(self.last_rx) >= interval => {
                if self.version().is_some() {
                    self.send(&Message::EchoRequest(Vec::new()), 0);
                }
                self.probe_sent = Some(now);
            }
            Some(t) if now.duration_since(t) >= interval => {
                self.close(format!(
                    "no message for {:.1} s (inactivity probe)",
                    now.duration_since(self.last_rx).as_secs_f64()
                ));
            }
            _ => {}
        }
    }

    /// Sends a PACKET_IN (`pin`, its reason's bit `reason_bit`) when the connection is up and
    /// its async configuration for its role asks for that reason; returns whether it did.
    pub fn packet_in(&mut self, pin: &ofwire::msg::packet::PacketIn, reason_bit: u8) -> bool {
        if !self.wants_packet_in(reason_bit) {
            return false;
        }
        self.send(&Message::PacketIn(pin.clone()), 0);
        true
    }

    /// Whether the connection is up and its async configuration for its role asks for
    /// packet-ins of reason bit `reason_bit`.
    pub fn wants_packet_in(&self, reason_bit: u8) -> bool {
        let i = usize::from(self.role == ControllerRole::Slave);
        self.version().is_some()
            && self.closed.is_none()
            && self.async_config.packet_in_mask[i] & (1 << reason_bit) != 0
    }

    /// Sends a FLOW_REMOVED when the connection is up and its async configuration for its
    /// role asks for its reason; returns whether it did.
    pub fn flow_removed(&mut self, fr: &ofwire::msg::flow::FlowRemoved) -> bool {
        if self.version().is_none() || self.closed.is_some() {
            return false;
        }
        let i = usize::from(self.role == ControllerRole::Slave);
        if self.async_config.flow_removed_mask[i] & (1 << (fr.reason as u32)) == 0 {
            return false;
        }
        self.send(&Message::FlowRemoved(fr.clone()), 0);
        true
    }

    /// Sends a PORT_STATUS when the connection's async configuration for its role asks for
    /// that reason.
    pub fn port_status(&mut self, ps: &PortStatus) {
        if self.version().is_none() || self.closed.is_some() {
            return;
        }
        let i = usize::from(self.role == ControllerRole::Slave);
        if self.async_config.port_status_mask[i] & (1 << (ps.reason as u32)) != 0 {
            self.send(&Message::PortStatus(ps.clone()), 0);
        }
    }
}
