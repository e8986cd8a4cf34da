//! OpenFlow 1.0 on the wire, read into and written from the same [`Message`]s as 1.3 where
//! the two mean the same thing, so the connection layer answers both alike: HELLO, ERROR,
//! ECHO, FEATURES_REQUEST / REPLY (with `ofp_phy_port`s: [`features_reply`]),
//! GET_CONFIG_REQUEST / REPLY, SET_CONFIG, FLOW_MOD (`ofp_match` and 1.0 actions),
//! PACKET_OUT, PORT_MOD, PACKET_IN, FLOW_REMOVED, PORT_STATUS, STATS_REQUEST / REPLY (`stats`) and BARRIER_REQUEST / REPLY (types
//! 18 and 19).
//! Every other type is `OFPBRC_BAD_TYPE`; VENDOR messages (Nicira's NXT_SET_FLOW_FORMAT,
//! NXT_FLOW_MOD_TABLE_ID, NXT_SET_PACKET_IN_FORMAT, ...) are `OFPBRC_BAD_VENDOR`, the
//! answer of a switch without Open vSwitch's extensions, after which ovs-ofctl uses the
//! standard 1.0 formats.

pub mod action;
pub mod matching;
pub mod stats;

use openflow::{FlowMod, FlowModCommand, FlowSpec};

use crate::action::{port, to_actions, Instruction};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::header::{Header, OFP_HEADER_LEN, OFP_MAX_LEN};
use crate::msg::flow::{
    command_from, command_to, FlowModMsg, FlowRemoved, OFPG_ANY, OFPTT_ALL, OFP_NO_BUFFER,
};
use crate::msg::packet::{PacketIn, PacketInReason, PacketOut};
use crate::msg::port::{
    Port, PortMod, PortReason, PortStatus, OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV,
    OFPPC_PORT_DOWN, OFPPS_LINK_DOWN,
};
use crate::msg::switch::{Features, SwitchConfig};
use crate::msg::{symmetric, Message};
use crate::OFP10_VERSION;

/// `ofp_type` of OpenFlow 1.0 (only those that differ from 1.3's or are read here).
pub(crate) mod ty {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const VENDOR: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const PORT_MOD: u8 = 15;
    pub const STATS_REQUEST: u8 = 16;
    pub const STATS_REPLY: u8 = 17;
    pub const BARRIER_REQUEST: u8 = 18;
    pub const BARRIER_REPLY: u8 = 19;
}

/// `OFPFF10_*` flow mod flags (the first two are 1.3's too).
pub mod flags {
    pub use crate::msg::flow::flags::{CHECK_OVERLAP, SEND_FLOW_REM};
    pub const EMERG: u16 = 1 << 2;
}

/// `OFPC_*` capabilities both versions have at the same bit (flow, table, port, IP
/// reassembly and queue stats); 1.0's `OFPC_ARP_MATCH_IP` (bit 7) is 1.3's group stats
/// elsewhere.
const CAPABILITIES_IN_BOTH: u32 = 1 | 2 | 4 | 32 | 64;
const OFPC10_ARP_MATCH_IP: u32 = 1 << 7;
/// The 1.0 actions a FLOW_MOD may use, as FEATURES_REPLY's `actions` bitmap: every
/// `OFPAT10_*` but enqueue.
const ACTIONS_BITMAP: u32 = (1 << 11) - 1;
/// Bytes of `ofp_phy_port`.
const PHY_PORT_LEN: usize = 48;

fn empty(body: &[u8], m: Message) -> Result<Message, OfpError> {
    if body.is_empty() {
        Ok(m)
    } else {
        err(E::BadRequestLen, "body")
    }
}

/// Reads an OpenFlow 1.0 message's body.
pub fn decode(h: &Header, body: &[u8]) -> Result<Message, OfpError> {
    let r = || Reader::new(body, E::BadRequestLen, "body");
    Ok(match h.msg_type {
        ty::HELLO => Message::Hello(symmetric::Hello::decode(r())?),
        ty::ERROR => Message::Error(symmetric::ErrorMsg::decode(r())?),
        ty::ECHO_REQUEST => Message::EchoRequest(body.to_vec()),
        ty::ECHO_REPLY => Message::EchoReply(body.to_vec()),
        ty::VENDOR => return err(E::BadRequestExperimenter, "vendor"),
        ty::FEATURES_REQUEST => empty(body, Message::FeaturesRequest)?,
        ty::FEATURES_REPLY => Message::FeaturesReply(decode_features(r())?),
        ty::GET_CONFIG_REQUEST => empty(body, Message::GetConfigRequest)?,
        ty::GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::decode(r())?),
        ty::SET_CONFIG => Message::SetConfig(SwitchConfig::decode(r())?),
        ty::PACKET_IN => Message::PacketIn(decode_packet_in(r())?),
        ty::FLOW_REMOVED => Message::FlowRemoved(decode_flow_removed(r())?),
        ty::PORT_STATUS => Message::PortStatus(decode_port_status(r())?),
        ty::PACKET_OUT => Message::PacketOut(decode_packet_out(r())?),
        ty::FLOW_MOD => Message::FlowMod(decode_flow_mod(r())?),
        ty::PORT_MOD => Message::PortMod(decode_port_mod(r())?),
        ty::STATS_REQUEST => Message::MultipartRequest(stats::decode_request(r())?),
        ty::STATS_REPLY => Message::MultipartReply(stats::decode_reply(r())?),
        ty::BARRIER_REQUEST => empty(body, Message::BarrierRequest)?,
        ty::BARRIER_REPLY => empty(body, Message::BarrierReply)?,
        // QUEUE_GET_CONFIG and unknown types: not spoken in 1.0 here.
        _ => return err(E::BadRequestType, "ofp_header.type"),
    })
}

/// The whole message in OpenFlow 1.0 with transaction id `xid`; a message 1.0 does not
/// have (or that this module does not write) is refused with `OFPBRC_BAD_TYPE`.
pub fn encode(m: &Message, xid: u32) -> Result<Vec<u8>, OfpError> {
    use Message as M;
    let mut out = vec![0u8; OFP_HEADER_LEN];
    let t = match m {
        M::Hello(h) => {
            h.encode(&mut out);
            ty::HELLO
        }
        M::Error(e) => {
            e.encode(&mut out);
            ty::ERROR
        }
        M::EchoRequest(d) => {
            out.extend_from_slice(d);
            ty::ECHO_REQUEST
        }
        M::EchoReply(d) => {
            out.extend_from_slice(d);
            ty::ECHO_REPLY
        }
        M::FeaturesRequest => ty::FEATURES_REQUEST,
        M::FeaturesReply(f) => {
            encode_features(f, &[], &mut out);
            ty::FEATURES_REPLY
        }
        M::GetConfigRequest => ty::GET_CONFIG_REQUEST,
        M::GetConfigReply(c) => {
            c.encode(&mut out);
            ty::GET_CONFIG_REPLY
        }
        M::SetConfig(c) => {
            c.encode(&mut out);
            ty::SET_CONFIG
        }
        M::FlowMod(f) => {
            encode_flow_mod(f, &mut out)?;
            ty::FLOW_MOD
        }
        M::PacketOut(p) => {
            encode_packet_out(p, &mut out)?;
            ty::PACKET_OUT
        }
        M::FlowRemoved(f) => {
            encode_flow_removed(f, &mut out);
            ty::FLOW_REMOVED
        }
        M::PacketIn(p) => {
            encode_packet_in(p, &mut out);
            ty::PACKET_IN
        }
        M::PortStatus(p) => {
            let Some(no) = matching::port_to_16(p.port.port_no) else {
                return err(E::BadRequestPort, "port_status.port_no");
            };
            out.put_u8(p.reason as u8);
            out.put_zeros(7);
            encode_phy_port(no, &p.port, &mut out);
            ty::PORT_STATUS
        }
        M::PortMod(p) => {
            encode_port_mod(p, &mut out)?;
            ty::PORT_MOD
        }
        M::MultipartRequest(s) => {
            stats::encode_request(s, &mut out)?;
            ty::STATS_REQUEST
        }
        M::MultipartReply(s) => {
            stats::encode_reply(s, &mut out)?;
            ty::STATS_REPLY
        }
        M::BarrierRequest => ty::BARRIER_REQUEST,
        M::BarrierReply => ty::BARRIER_REPLY,
        _ => return err(E::BadRequestType, "no OpenFlow 1.0 message"),
    };
    finish(out, t, xid)
}

/// Fills in the header of a message whose body follows 8 zero bytes.
fn finish(mut out: Vec<u8>, msg_type: u8, xid: u32) -> Result<Vec<u8>, OfpError> {
    if out.len() > OFP_MAX_LEN {
        return err(E::BadRequestLen, "message too long");
    }
    let mut head = Vec::with_capacity(OFP_HEADER_LEN);
    Header {
        version: OFP10_VERSION,
        msg_type,
        length: out.len() as u16,
        xid,
    }
    .encode(&mut head);
    out[..OFP_HEADER_LEN].copy_from_slice(&head);
    Ok(out)
}

/// FEATURES_REPLY in 1.0, with the ports (`ofp_phy_port`; those whose number 1.0 cannot
/// say, 0xff00 up to the reserved ones, are left out).
pub fn features_reply(f: &Features, ports: &[Port], xid: u32) -> Result<Vec<u8>, OfpError> {
    let mut out = vec![0u8; OFP_HEADER_LEN];
    encode_features(f, ports, &mut out);
    finish(out, ty::FEATURES_REPLY, xid)
}

/// 1.3's `OFPPF_*` speed and medium bits as 1.0's (Open vSwitch's
/// `netdev_port_features_to_ofp10`: 40G, 100G, 1T and "other" have no 1.0 bit).
fn port_features_10(f: u32) -> u32 {
    (f & 0x7f) | ((f >> 4) & 0xf80)
}

fn encode_features(f: &Features, ports: &[Port], out: &mut Vec<u8>) {
    out.put_u64(f.datapath_id);
    out.put_u32(f.n_buffers);
    out.put_u8(f.n_tables);
    out.put_zeros(3);
    out.put_u32((f.capabilities & CAPABILITIES_IN_BOTH) | OFPC10_ARP_MATCH_IP);
    out.put_u32(ACTIONS_BITMAP);
    for p in ports {
        let Some(no) = matching::port_to_16(p.port_no) else {
            continue;
        };
        let room = OFP_MAX_LEN.saturating_sub(out.len());
        if room < PHY_PORT_LEN {
            break;
        }
        encode_phy_port(no, p, out);
    }
}

/// `ofp_phy_port`: `OFPPC_*` bits that 1.3 kept are where 1.0 had them; the state is the
/// link bit (1.0's other state bits are the spanning tree's).
fn encode_phy_port(no: u16, p: &Port, out: &mut Vec<u8>) {
    out.put_u16(no);
    out.extend_from_slice(&p.hw_addr);
    out.put_string(&p.name, 16);
    out.put_u32(p.config);
    out.put_u32(p.state & OFPPS_LINK_DOWN);
    for v in [p.curr, p.advertised, p.supported, p.peer] {
        out.put_u32(port_features_10(v));
    }
}

fn decode_phy_port(r: &mut Reader) -> Result<Port, OfpError> {
    let port_no = matching::port_from_16(r.u16()?);
    let hw_addr = r.array()?;
    let name = r.string(16)?;
    let config = r.u32()?;
    let state = r.u32()? & OFPPS_LINK_DOWN;
    let mut f = [0u32; 4];
    for v in &mut f {
        // 1.0's bits 7..11 (media, autonegotiation, pause) are 1.3's 11..15.
        let x = r.u32()? & 0xfff;
        *v = (x & 0x7f) | ((x & 0xf80) << 4);
    }
    Ok(Port {
        port_no,
        hw_addr,
        name,
        config,
        state,
        curr: f[0],
        advertised: f[1],
        supported: f[2],
        peer: f[3],
        curr_speed: 0,
        max_speed: 0,
    })
}

fn decode_port_status(mut r: Reader) -> Result<PortStatus, OfpError> {
    let reason = PortReason::from_wire(r.u8()?)?;
    r.skip(7)?;
    let port = decode_phy_port(&mut r)?;
    if !r.is_empty() {
        return err(E::BadRequestLen, "port_status");
    }
    Ok(PortStatus { reason, port })
}

/// `ofp_packet_in` (1.0): the in_port of the packet-in's match, no table, cookie or other
/// metadata.
fn encode_packet_in(p: &PacketIn, out: &mut Vec<u8>) {
    let in_port = p.matches.value.get(pipeline::field::IN_PORT) as u32;
    out.put_u32(p.buffer_id);
    out.put_u16(p.total_len);
    out.put_u16(matching::port_to_16(in_port).unwrap_or(in_port as u16));
    out.put_u8(p.reason as u8);
    out.put_u8(0);
    out.extend_from_slice(&p.data);
}

fn decode_packet_in(mut r: Reader) -> Result<PacketIn, OfpError> {
    let buffer_id = r.u32()?;
    let total_len = r.u16()?;
    let in_port = matching::port_from_16(r.u16()?);
    let reason = match r.u8()? {
        0 => PacketInReason::NoMatch,
        1 => PacketInReason::Action,
        2 => PacketInReason::InvalidTtl,
        _ => return err(E::BadRequestType, "packet_in.reason"),
    };
    r.skip(1)?;
    let mut matches = openflow::Match::default();
    matches
        .value
        .set(pipeline::field::IN_PORT, u128::from(in_port));
    matches.mask.set(pipeline::field::IN_PORT, u128::MAX);
    Ok(PacketIn {
        buffer_id,
        total_len,
        reason,
        table_id: 0,
        cookie: 0,
        matches,
        data: r.rest().to_vec(),
    })
}

/// `ofp_flow_removed` (1.0): no table id and no hard timeout in it.
fn encode_flow_removed(f: &FlowRemoved, out: &mut Vec<u8>) {
    matching::encode_match(&f.matches, out);
    out.put_u64(f.cookie);
    out.put_u16(f.priority);
    out.put_u8(f.reason as u8);
    out.put_u8(0);
    out.put_u32(f.duration_sec);
    out.put_u32(f.duration_nsec);
    out.put_u16(f.idle_timeout);
    out.put_zeros(2);
    out.put_u64(f.packet_count);
    out.put_u64(f.byte_count);
}

fn decode_flow_removed(mut r: Reader) -> Result<FlowRemoved, OfpError> {
    let matches = matching::decode_match_as(&mut r, false)?;
    let cookie = r.u64()?;
    let priority = r.u16()?;
    let reason = crate::msg::flow::removed_reason(r.u8()?)?;
    r.skip(1)?;
    let duration_sec = r.u32()?;
    let duration_nsec = r.u32()?;
    let idle_timeout = r.u16()?;
    r.skip(2)?;
    let packet_count = r.u64()?;
    let byte_count = r.u64()?;
    if !r.is_empty() {
        return err(E::BadRequestLen, "flow_removed");
    }
    Ok(FlowRemoved {
        cookie,
        priority,
        reason,
        table_id: 0,
        duration_sec,
        duration_nsec,
        idle_timeout,
        hard_timeout: 0,
        packet_count,
        byte_count,
        matches,
    })
}

/// FEATURES_REPLY's switch part (its ports are not kept).
fn decode_features(mut r: Reader) -> Result<Features, OfpError> {
    let datapath_id = r.u64()?;
    let n_buffers = r.u32()?;
    let n_tables = r.u8()?;
    r.skip(3)?;
    let capabilities = r.u32()? & CAPABILITIES_IN_BOTH;
    r.skip(4)?;
    if !r.remaining().is_multiple_of(PHY_PORT_LEN) {
        return err(E::BadRequestLen, "features_reply.ports");
    }
    Ok(Features {
        datapath_id,
        n_buffers,
        n_tables,
        auxiliary_id: 0,
        capabilities,
    })
}

/// Reads an `ofp_packet_out` (1.0): 16-bit `in_port`, the actions' length, the actions
/// (`set_tp_*` needs a match saying TCP, UDP or SCTP, which a PACKET_OUT has not: refused),
/// the frame.
fn decode_packet_out(mut r: Reader) -> Result<PacketOut, OfpError> {
    let buffer_id = r.u32()?;
    let in_port = matching::port_from_16(r.u16()?);
    let actions_len = usize::from(r.u16()?);
    let actions = action::decode_actions(
        Reader::new(r.bytes(actions_len)?, E::BadActionLen, "packet_out.actions"),
        &openflow::Match::default(),
    )?;
    Ok(PacketOut {
        buffer_id,
        in_port,
        actions,
        data: r.rest().to_vec(),
    })
}

fn encode_packet_out(p: &PacketOut, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let Some(in_port) = matching::port_to_16(p.in_port) else {
        return err(E::BadRequestPort, "packet_out.in_port");
    };
    out.put_u32(p.buffer_id);
    out.put_u16(in_port);
    let at = out.len();
    out.put_u16(0);
    let start = out.len();
    action::encode_actions(&p.actions, out)?;
    let len = out.len() - start;
    out.set_u16(at, len as u16);
    out.extend_from_slice(&p.data);
    Ok(())
}

/// `OFPPC_*` bits a 1.0 PORT_MOD changes here: 1.3's and 1.0's `OFPPC_NO_FLOOD`. The
/// spanning tree bits are ignored, as Open vSwitch ignores them.
const PORT_MOD_BITS: u32 =
    OFPPC_PORT_DOWN | OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN | (1 << 4);

/// Reads an `ofp_port_mod` (1.0).
fn decode_port_mod(mut r: Reader) -> Result<PortMod, OfpError> {
    let port_no = matching::port_from_16(r.u16()?);
    let hw_addr = r.array()?;
    let config = r.u32()?;
    let mask = r.u32()? & PORT_MOD_BITS;
    let advertise = r.u32()?;
    r.skip(4)?;
    if !r.is_empty() {
        return err(E::BadRequestLen, "port_mod");
    }
    Ok(PortMod {
        port_no,
        hw_addr,
        config: config & mask,
        mask,
        advertise,
    })
}

fn encode_port_mod(p: &PortMod, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let Some(port_no) = matching::port_to_16(p.port_no) else {
        return err(E::PortModBadPort, "port_mod.port_no");
    };
    out.put_u16(port_no);
    out.extend_from_slice(&p.hw_addr);
    out.put_u32(p.config);
    out.put_u32(p.mask);
    out.put_u32(p.advertise);
    out.put_zeros(4);
    Ok(())
}

/// Reads an `ofp_flow_mod` (1.0) into the 1.3 message's struct: no table (`OFPTT_ALL`: an
/// add goes to table 0, modify and delete act on every table, as in Open vSwitch), no
/// cookie mask, the actions as apply-actions. An exact match (no wildcard bit) gets
/// priority 65535, as 1.0 says. The emergency flag is refused as Open vSwitch refuses it
/// (`OFPFMFC_BAD_EMERG_TIMEOUT` with a timeout, `OFPFMFC_ALL_TABLES_FULL` without).
fn decode_flow_mod(mut r: Reader) -> Result<FlowModMsg, OfpError> {
    let wildcards = {
        let mut peek = r;
        peek.u32()? & matching::wc::ALL
    };
    let matches = matching::decode_match(&mut r)?;
    let cookie = r.u64()?;
    // A table id in the high byte needs NXT_FLOW_MOD_TABLE_ID, which is refused: a bad
    // command.
    let command = command_from(r.u16()?)?;
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let buffer_id = r.u32()?;
    let out_port = matching::port_from_16(r.u16()?);
    let flags = r.u16()?;
    let actions =
        action::decode_actions(Reader::new(r.rest(), E::BadActionLen, "actions"), &matches)?;
    if flags & !(self::flags::SEND_FLOW_REM | self::flags::CHECK_OVERLAP | self::flags::EMERG) != 0
    {
        return err(E::FlowModBadFlags, "flow_mod.flags");
    }
    if flags & self::flags::EMERG != 0 {
        return if idle_timeout != 0 || hard_timeout != 0 {
            err(E::FlowModBadEmergTimeout, "flow_mod.flags: emergency")
        } else {
            err(E::FlowModTableFull, "flow_mod.flags: emergency")
        };
    }
    Ok(FlowModMsg {
        cookie,
        cookie_mask: 0,
        table_id: OFPTT_ALL,
        command,
        idle_timeout,
        hard_timeout,
        priority: if wildcards == 0 { u16::MAX } else { priority },
        buffer_id,
        out_port,
        out_group: OFPG_ANY,
        flags,
        matches,
        instructions: if actions.is_empty() {
            Vec::new()
        } else {
            vec![Instruction::ApplyActions(actions)]
        },
    })
}

fn encode_flow_mod(m: &FlowModMsg, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let actions = match m.instructions.as_slice() {
        [] => &[][..],
        [Instruction::ApplyActions(a)] => a.as_slice(),
        _ => return err(E::BadInstructionUnsupported, "no OpenFlow 1.0 instructions"),
    };
    matching::encode_match(&m.matches, out);
    out.put_u64(m.cookie);
    out.put_u16(u16::from(command_to(m.command)));
    out.put_u16(m.idle_timeout);
    out.put_u16(m.hard_timeout);
    out.put_u16(m.priority);
    out.put_u32(m.buffer_id);
    out.put_u16(matching::port_to_16(m.out_port).unwrap_or(0xffff));
    out.put_u16(m.flags);
    action::encode_actions(actions, out)
}

/// The flow mod a 1.0 FLOW_MOD (as [`decode`] reads it) asks of the rule set, with 1.0's
/// meaning: every table for modify and delete (table 0 for an add), a modify sets the
/// cookie, `out_port` filters only a delete. A buffered packet is `OFPBRC_BUFFER_UNKNOWN`
/// (the switch buffers none).
pub fn to_flow_mod(m: FlowModMsg) -> Result<FlowMod, OfpError> {
    if m.buffer_id != OFP_NO_BUFFER {
        return err(E::BadRequestBufferUnknown, "flow_mod.buffer_id");
    }
    let deleting = matches!(
        m.command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    let actions = to_actions(&m.instructions, 0)?;
    Ok(FlowMod {
        command: m.command,
        spec: FlowSpec {
            table: None,
            priority: m.priority,
            cookie: m.cookie,
            cookie_mask: None,
            idle_timeout: m.idle_timeout,
            hard_timeout: m.hard_timeout,
            out_port: (deleting && m.out_port != port::ANY).then_some(m.out_port),
            // OpenFlow 1.0 has no groups.
            out_group: None,
            importance: 0,
            flags: m.flags,
            matches: m.matches,
            actions,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::flow::RemovedReason;
    use crate::msg::multipart::Desc;
    use crate::msg::multipart::{FlowStats, FlowStatsRequest, PortStats, ReplyBody, TableStats};
    use crate::msg::multipart::{MultipartReply, MultipartRequest, RequestBody};

    fn flow_mod_msg(text: &str) -> FlowModMsg {
        let fm = openflow::parse_flow_mod(text).unwrap_or_else(|e| unreachable!("{e}"));
        let mut m = FlowModMsg::from_flow_mod(&fm).unwrap_or_else(|e| unreachable!("{e}"));
        m.table_id = OFPTT_ALL;
        m
    }

    /// One message of every kind this module reads and writes.
    fn every_message() -> Vec<Message> {
        let matches = flow_mod_msg("add tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=drop").matches;
        let stats_req = |body| Message::MultipartRequest(MultipartRequest { flags: 0, body });
        let stats = |body| Message::MultipartReply(MultipartReply { flags: 0, body });
        let filter = FlowStatsRequest {
            table_id: 0xff,
            out_port: 2,
            out_group: OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            matches: matches.clone(),
        };
        vec![
            Message::Hello(symmetric::Hello::offering(0x12)),
            Message::Error(symmetric::ErrorMsg {
                err_type: 1,
                code: 3,
                data: vec![1, 4, 0, 8, 0, 0, 0, 1],
            }),
            Message::EchoRequest(vec![1, 2, 3]),
            Message::EchoReply(vec![]),
            Message::FeaturesRequest,
            Message::FeaturesReply(Features {
                datapath_id: 0x1234,
                n_buffers: 0,
                n_tables: 255,
                auxiliary_id: 0,
                capabilities: 1 | 2 | 4,
            }),
            Message::GetConfigRequest,
            Message::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            }),
            Message::SetConfig(SwitchConfig {
                flags: 1,
                miss_send_len: 0xffff,
            }),
            Message::FlowMod(flow_mod_msg(
                "add cookie=0x7,priority=9,idle_timeout=5,send_flow_rem,in_port=1,dl_vlan=3,\
                 actions=strip_vlan,mod_dl_src:00:00:00:00:00:01,output:2",
            )),
            Message::FlowMod(flow_mod_msg(
                "add udp,tp_src=1,actions=mod_tp_src:2,mod_nw_tos:8,mod_vlan_pcp:1,LOCAL",
            )),
            stats_req(RequestBody::Desc),
            stats_req(RequestBody::Flow(filter.clone())),
            stats_req(RequestBody::Aggregate(filter)),
            stats_req(RequestBody::Table),
            stats_req(RequestBody::PortStats(port::ANY)),
            stats_req(RequestBody::PortStats(3)),
            stats(ReplyBody::Desc(Desc {
                mfr_desc: "m".into(),
                hw_desc: "h".into(),
                sw_desc: "s".into(),
                serial_num: "n".into(),
                dp_desc: "d".into(),
            })),
            stats(ReplyBody::Flow(vec![FlowStats {
                table_id: 0,
                duration_sec: 1,
                duration_nsec: 2,
                priority: 3,
                idle_timeout: 4,
                hard_timeout: 5,
                flags: 0,
                cookie: 6,
                packet_count: 7,
                byte_count: 8,
                matches,
                instructions: vec![Instruction::ApplyActions(vec![
                    crate::action::WireAction::Output {
                        port: port::CONTROLLER,
                        max_len: 64,
                    },
                ])],
            }])),
            stats(ReplyBody::Aggregate {
                packet_count: 1,
                byte_count: 2,
                flow_count: 3,
            }),
            stats(ReplyBody::Table(vec![TableStats {
                table_id: 4,
                active_count: 5,
                lookup_count: 6,
                matched_count: 7,
            }])),
            stats(ReplyBody::PortStats(vec![PortStats {
                port_no: port::LOCAL,
                counters: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                ..PortStats::default()
            }])),
            Message::PacketOut(PacketOut {
                buffer_id: OFP_NO_BUFFER,
                in_port: port::CONTROLLER,
                actions: vec![crate::action::WireAction::Output {
                    port: port::TABLE,
                    max_len: 0,
                }],
                data: vec![0xff; 60],
            }),
            Message::PortMod(PortMod {
                port_no: 3,
                hw_addr: [0, 1, 2, 3, 4, 5],
                config: OFPPC_PORT_DOWN,
                mask: OFPPC_PORT_DOWN | (1 << 4),
                advertise: 0,
            }),
            Message::PortStatus(PortStatus {
                reason: PortReason::Modify,
                port: Port {
                    port_no: 7,
                    hw_addr: [2, 0, 0, 0, 0, 7],
                    name: "p7".into(),
                    config: OFPPC_PORT_DOWN,
                    state: OFPPS_LINK_DOWN,
                    curr: 0x2820,
                    ..Port::default()
                },
            }),
            Message::PacketIn(PacketIn {
                buffer_id: OFP_NO_BUFFER,
                total_len: 60,
                reason: PacketInReason::Action,
                table_id: 0,
                cookie: 0,
                matches: flow_mod_msg("add in_port=LOCAL,actions=drop").matches,
                data: vec![0xab; 60],
            }),
            Message::FlowRemoved(FlowRemoved {
                cookie: 5,
                priority: 6,
                reason: RemovedReason::Delete,
                table_id: 0,
                duration_sec: 7,
                duration_nsec: 8,
                idle_timeout: 9,
                hard_timeout: 0,
                packet_count: 10,
                byte_count: 11,
                matches: flow_mod_msg("add udp,tp_dst=9,actions=drop").matches,
            }),
            Message::BarrierRequest,
            Message::BarrierReply,
        ]
    }

    #[test]
    fn every_message_round_trips_in_one_zero() {
        for m in every_message() {
            let b = m
                .encode(OFP10_VERSION, 9)
                .unwrap_or_else(|e| unreachable!("{m:?}: {e}"));
            assert_eq!(b[0], OFP10_VERSION);
            let back = Message::decode_bytes(&b).map(|(_, m)| m);
            assert_eq!(back, Ok(m));
        }
    }

    #[test]
    fn layouts_have_the_one_zero_sizes() {
        let len = |m: &Message| m.encode(OFP10_VERSION, 0).map(|b| b.len()).unwrap_or(0);
        // ofp_flow_mod is 72 bytes, then 8-byte actions (16 for set_dl_src).
        assert_eq!(len(&every_message()[9]), 72 + 8 + 16 + 8);
        // FEATURES_REPLY: 32 bytes, then 48 per port; ports 1.0 cannot number are left out.
        let ports: Vec<Port> = [1, port::LOCAL, 0xff05]
            .into_iter()
            .map(|n| Port {
                port_no: n,
                name: format!("p{n}"),
                ..Port::default()
            })
            .collect();
        let b = features_reply(&Features::default(), &ports, 1).unwrap_or_default();
        assert_eq!(b.len(), 32 + 2 * 48);
        assert_eq!(
            (b[1], &b[32..34], &b[80..82]),
            (6, &[0, 1][..], &[0xff, 0xfe][..])
        );
        // Types: BARRIER 18 / 19, STATS 16 / 17.
        let ty = |m: &Message| m.encode(OFP10_VERSION, 0).map(|b| b[1]).unwrap_or(0);
        assert_eq!(ty(&Message::BarrierRequest), 18);
        assert_eq!(ty(&Message::BarrierReply), 19);
        assert_eq!(ty(&every_message()[11]), 16);
        // What 1.0 does not have is refused, not written in 1.3's layout.
        assert_eq!(
            Message::GetAsyncRequest
                .encode(OFP10_VERSION, 0)
                .err()
                .map(|e| e.code),
            Some(E::BadRequestType)
        );
    }

    #[test]
    fn flow_mods_mean_what_one_zero_says() {
        let decode = |b: &[u8]| Message::decode_bytes(b).map(|(_, m)| m);
        let fm = flow_mod_msg("add in_port=1,actions=output:2");
        let mut b = Message::FlowMod(fm)
            .encode(OFP10_VERSION, 1)
            .unwrap_or_default();
        // Every field exact (no wildcard bit): priority 65535, whatever was sent.
        b[8..12].copy_from_slice(&[0, 0, 0, 0]);
        let Ok(Message::FlowMod(m)) = decode(&b) else {
            unreachable!("a flow mod")
        };
        assert_eq!(m.priority, 0xffff);
        // Modify and delete act on every table; out_port filters only a delete.
        let m = to_flow_mod(flow_mod_msg("modify_strict in_port=1,actions=output:3"));
        assert_eq!(m.as_ref().map(|m| m.spec.table), Ok(None));
        let mut d = flow_mod_msg("delete in_port=1");
        d.out_port = 2;
        assert_eq!(to_flow_mod(d).map(|m| m.spec.out_port), Ok(Some(2)));
        let mut d = flow_mod_msg("modify in_port=1,actions=drop");
        d.out_port = 2;
        assert_eq!(to_flow_mod(d).map(|m| m.spec.out_port), Ok(None));
        // Emergency without timeouts: ALL_TABLES_FULL; with one: BAD_EMERG_TIMEOUT.
        let mut b = Message::FlowMod(flow_mod_msg("add actions=drop"))
            .encode(OFP10_VERSION, 1)
            .unwrap_or_default();
        b[70..72].copy_from_slice(&[0, 4]);
        let code = |b: &[u8]| decode(b).err().map(|e| e.code.of10());
        assert_eq!(code(&b), Some(crate::error::Of10Error::Std(3, 0)));
        b[58..60].copy_from_slice(&[0, 1]);
        assert_eq!(code(&b), Some(crate::error::Of10Error::Std(3, 3)));
        // A table id in the command's high byte (NXT_FLOW_MOD_TABLE_ID was refused).
        b[56..58].copy_from_slice(&[1, 0]);
        assert_eq!(code(&b), Some(crate::error::Of10Error::Std(3, 4)));
    }

    #[test]
    fn vendor_messages_and_unspoken_types_are_refused() {
        let code = |b: &[u8]| Message::decode_bytes(b).err().map(|e| e.code.of10());
        use crate::error::Of10Error::Std;
        // NXT_SET_PACKET_IN_FORMAT: BAD_VENDOR.
        let nx = [
            1, 4, 0, 20, 0, 0, 0, 1, 0, 0, 0x23, 0x20, 0, 0, 0, 16, 0, 0, 0, 1,
        ];
        assert_eq!(code(&nx), Some(Std(1, 3)));
        // QUEUE_GET_CONFIG_REQUEST, 21, 22: BAD_TYPE.
        for t in [20, 21, 22] {
            assert_eq!(code(&[1, t, 0, 8, 0, 0, 0, 1]), Some(Std(1, 1)), "type {t}");
        }
        // Stats: QUEUE is BAD_STAT, VENDOR (NXST_FLOW) BAD_VENDOR, a short PORT BAD_LEN.
        assert_eq!(
            code(&[1, 16, 0, 12, 0, 0, 0, 1, 0, 5, 0, 0]),
            Some(Std(1, 2))
        );
        assert_eq!(
            code(&[1, 16, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0, 0]),
            Some(Std(1, 3))
        );
        assert_eq!(
            code(&[1, 16, 0, 14, 0, 0, 0, 1, 0, 4, 0, 0, 0, 1]),
            Some(Std(1, 6))
        );
    }
}
