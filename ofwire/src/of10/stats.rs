//! OpenFlow 1.0's STATS_REQUEST / STATS_REPLY (1.3's MULTIPART) for DESC, FLOW, AGGREGATE,
//! TABLE and PORT, read into and written from the same [`MultipartRequest`] /
//! [`MultipartReply`] as 1.3's, so the connection layer answers both alike. The 1.0 layouts
//! differ: a 4-byte stats header, `ofp_match` and 1.0 actions in flow stats, 16-bit ports,
//! table stats with a name and wildcards, port stats without durations. Other stats types
//! are `OFPBRC_BAD_STAT` (QUEUE, and VENDOR such as Nicira's NXST_FLOW).

use crate::action::Instruction;
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::msg::multipart::{
    decode_aggregate, encode_aggregate, split_entries, Desc, FlowStats, FlowStatsRequest,
    MultipartReply, MultipartRequest, PortStats, ReplyBody, RequestBody, TableStats,
};
use crate::of10::action::{decode_actions, encode_actions};
use crate::of10::matching::{
    decode_match, decode_match_as, encode_match, port_from_16, port_to_16, wc,
};

mod ty {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT: u16 = 4;
    pub const VENDOR: u16 = 0xffff;
}

/// `OFPP_NONE`: every port (PORT request), no filter (FLOW request).
const OFPP10_NONE: u16 = 0xffff;
/// Bytes of `ofp_stats_request` / `ofp_stats_reply` after `ofp_header`.
const STATS_HEAD: usize = 4;

fn flow_request(mut r: Reader) -> Result<FlowStatsRequest, OfpError> {
    let matches = decode_match(&mut r)?;
    let table_id = r.u8()?;
    r.skip(1)?;
    let out_port = port_from_16(r.u16()?);
    if !r.is_empty() {
        return err(E::BadRequestLen, "flow_stats_request");
    }
    Ok(FlowStatsRequest {
        table_id,
        out_port,
        out_group: crate::msg::flow::OFPG_ANY,
        cookie: 0,
        cookie_mask: 0,
        matches,
    })
}

fn empty(r: &Reader) -> Result<(), OfpError> {
    if r.is_empty() {
        Ok(())
    } else {
        err(E::BadRequestLen, "stats body")
    }
}

/// Reads a STATS_REQUEST body.
pub fn decode_request(mut r: Reader) -> Result<MultipartRequest, OfpError> {
    let t = r.u16()?;
    let flags = r.u16()?;
    let body = match t {
        ty::DESC => empty(&r).map(|_| RequestBody::Desc)?,
        ty::FLOW => RequestBody::Flow(flow_request(r)?),
        ty::AGGREGATE => RequestBody::Aggregate(flow_request(r)?),
        ty::TABLE => empty(&r).map(|_| RequestBody::Table)?,
        ty::PORT => {
            let p = r.u16()?;
            r.skip(6)?;
            empty(&r)?;
            RequestBody::PortStats(port_from_16(p))
        }
        ty::VENDOR => return err(E::BadRequestExperimenter, "stats vendor"),
        _ => return err(E::BadRequestMultipart, "stats.type"),
    };
    Ok(MultipartRequest { flags, body })
}

/// Writes a STATS_REQUEST body; requests 1.0 does not have are refused.
pub fn encode_request(m: &MultipartRequest, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let flow = |f: &FlowStatsRequest, out: &mut Vec<u8>| {
        encode_match(&f.matches, out);
        out.put_u8(f.table_id);
        out.put_u8(0);
        out.put_u16(port_to_16(f.out_port).unwrap_or(OFPP10_NONE));
    };
    let t = match &m.body {
        RequestBody::Desc => ty::DESC,
        RequestBody::Flow(_) => ty::FLOW,
        RequestBody::Aggregate(_) => ty::AGGREGATE,
        RequestBody::Table => ty::TABLE,
        RequestBody::PortStats(_) => ty::PORT,
        _ => return err(E::BadRequestMultipart, "no OpenFlow 1.0 stats type"),
    };
    out.put_u16(t);
    out.put_u16(m.flags);
    match &m.body {
        RequestBody::Flow(f) | RequestBody::Aggregate(f) => flow(f, out),
        RequestBody::PortStats(p) => {
            out.put_u16(port_to_16(*p).unwrap_or(OFPP10_NONE));
            out.put_zeros(6);
        }
        _ => {}
    }
    Ok(())
}

/// The 1.0 actions of a flow's instructions: apply-actions only.
fn actions_of(ins: &[Instruction]) -> Result<&[crate::action::WireAction], OfpError> {
    match ins {
        [] => Ok(&[]),
        [Instruction::ApplyActions(a)] => Ok(a),
        _ => err(E::BadInstructionUnsupported, "no OpenFlow 1.0 instructions"),
    }
}

/// Writes one `ofp_flow_stats`; `Err` when its actions have no 1.0 encoding.
fn encode_flow_stats(f: &FlowStats, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let start = out.len();
    out.put_u16(0);
    out.put_u8(f.table_id);
    out.put_u8(0);
    encode_match(&f.matches, out);
    out.put_u32(f.duration_sec);
    out.put_u32(f.duration_nsec);
    out.put_u16(f.priority);
    out.put_u16(f.idle_timeout);
    out.put_u16(f.hard_timeout);
    out.put_zeros(6);
    out.put_u64(f.cookie);
    out.put_u64(f.packet_count);
    out.put_u64(f.byte_count);
    if let Err(e) = actions_of(&f.instructions).and_then(|a| encode_actions(a, out)) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start;
    out.set_u16(start, len as u16);
    Ok(())
}

fn decode_flow_stats(r: &mut Reader) -> Result<FlowStats, OfpError> {
    let len = usize::from(r.u16()?);
    if len < 88 {
        return err(E::BadRequestLen, "flow_stats.length");
    }
    let mut b = Reader::new(r.bytes(len - 2)?, E::BadRequestLen, "flow_stats.length");
    let table_id = b.u8()?;
    b.skip(1)?;
    let matches = decode_match_as(&mut b, false)?;
    let duration_sec = b.u32()?;
    let duration_nsec = b.u32()?;
    let priority = b.u16()?;
    let idle_timeout = b.u16()?;
    let hard_timeout = b.u16()?;
    b.skip(6)?;
    let cookie = b.u64()?;
    let packet_count = b.u64()?;
    let byte_count = b.u64()?;
    let actions = decode_actions(b, &matches)?;
    Ok(FlowStats {
        table_id,
        duration_sec,
        duration_nsec,
        priority,
        idle_timeout,
        hard_timeout,
        flags: 0,
        cookie,
        packet_count,
        byte_count,
        matches,
        instructions: if actions.is_empty() {
            Vec::new()
        } else {
            vec![Instruction::ApplyActions(actions)]
        },
    })
}

/// Table stats' constant part: what every vecswitch table matches and holds.
const TABLE_MAX_ENTRIES: u32 = 1_000_000;

fn encode_entry(body: &ReplyBody, i: usize, out: &mut Vec<u8>) -> Result<(), OfpError> {
    match body {
        ReplyBody::Flow(v) => encode_flow_stats(&v[i], out)?,
        ReplyBody::Table(v) => {
            let t = &v[i];
            out.put_u8(t.table_id);
            out.put_zeros(3);
            out.put_string(&format!("table{}", t.table_id), 32);
            out.put_u32(wc::ALL);
            out.put_u32(TABLE_MAX_ENTRIES);
            out.put_u32(t.active_count);
            out.put_u64(t.lookup_count);
            out.put_u64(t.matched_count);
        }
        ReplyBody::PortStats(v) => {
            let p = &v[i];
            out.put_u16(port_to_16(p.port_no).unwrap_or(OFPP10_NONE));
            out.put_zeros(6);
            for c in p.counters {
                out.put_u64(c);
            }
        }
        _ => {}
    }
    Ok(())
}

fn type_of(body: &ReplyBody) -> Result<u16, OfpError> {
    Ok(match body {
        ReplyBody::Desc(_) => ty::DESC,
        ReplyBody::Flow(_) => ty::FLOW,
        ReplyBody::Aggregate { .. } => ty::AGGREGATE,
        ReplyBody::Table(_) => ty::TABLE,
        ReplyBody::PortStats(_) => ty::PORT,
        _ => return err(E::BadRequestMultipart, "no OpenFlow 1.0 stats type"),
    })
}

/// Writes a STATS_REPLY body (one message).
pub fn encode_reply(m: &MultipartReply, out: &mut Vec<u8>) -> Result<(), OfpError> {
    out.put_u16(type_of(&m.body)?);
    out.put_u16(m.flags);
    match &m.body {
        ReplyBody::Desc(d) => d.encode(out),
        ReplyBody::Aggregate { .. } => encode_aggregate(&m.body, out),
        body => {
            let n = entries(body).unwrap_or(0);
            (0..n).try_for_each(|i| encode_entry(body, i, out))?
        }
    }
    Ok(())
}

/// How many entries a list reply has; `None` for one that is one structure.
fn entries(body: &ReplyBody) -> Option<usize> {
    match body {
        ReplyBody::Flow(v) => Some(v.len()),
        ReplyBody::Table(v) => Some(v.len()),
        ReplyBody::PortStats(v) => Some(v.len()),
        _ => None,
    }
}

/// Reads a STATS_REPLY body.
pub fn decode_reply(mut r: Reader) -> Result<MultipartReply, OfpError> {
    let t = r.u16()?;
    let flags = r.u16()?;
    let body = match t {
        ty::DESC => ReplyBody::Desc(Desc::decode(&mut r)?),
        ty::AGGREGATE => decode_aggregate(&mut r)?,
        ty::FLOW => {
            let mut v = Vec::new();
            while !r.is_empty() {
                v.push(decode_flow_stats(&mut r)?);
            }
            ReplyBody::Flow(v)
        }
        ty::TABLE => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let table_id = r.u8()?;
                r.skip(3 + 32 + 8)?;
                v.push(TableStats {
                    table_id,
                    active_count: r.u32()?,
                    lookup_count: r.u64()?,
                    matched_count: r.u64()?,
                });
            }
            ReplyBody::Table(v)
        }
        ty::PORT => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let port_no = port_from_16(r.u16()?);
                r.skip(6)?;
                let mut counters = [0u64; 12];
                for c in &mut counters {
                    *c = r.u64()?;
                }
                v.push(PortStats {
                    port_no,
                    counters,
                    ..PortStats::default()
                });
            }
            ReplyBody::PortStats(v)
        }
        _ => return err(E::BadRequestMultipart, "stats.type"),
    };
    if !r.is_empty() {
        return err(E::BadRequestLen, "stats body");
    }
    Ok(MultipartReply { flags, body })
}

/// The reply as whole 1.0 messages (STATS_REPLY, split as 1.3's multipart replies are, with
/// `OFPSF_REPLY_MORE`). A flow whose actions 1.0 cannot say is left out of a FLOW reply
/// (as 1.3's reply leaves out the actions it has no encoding for).
pub fn reply_parts(m: &MultipartReply, xid: u32) -> Result<Vec<Vec<u8>>, OfpError> {
    let t = type_of(&m.body)?;
    let head_len = crate::header::OFP_HEADER_LEN + STATS_HEAD;
    let bodies = match entries(&m.body) {
        Some(n) => split_entries(n, head_len, |i, out| {
            match encode_entry(&m.body, i, out) {
                // Left out, as described above.
                Err(_) if matches!(m.body, ReplyBody::Flow(_)) => Ok(()),
                r => r,
            }
        })?,
        None => {
            let mut b = Vec::new();
            encode_reply(m, &mut b)?;
            vec![b.split_off(STATS_HEAD)]
        }
    };
    Ok(frame_parts(t, m.flags, xid, bodies))
}

/// [`crate::msg::multipart::flow_reply_parts`] in OpenFlow 1.0: a flow whose actions 1.0
/// cannot say is left out.
pub fn flow_reply_parts(
    xid: u32,
    n: usize,
    mut entry: impl FnMut(usize) -> Option<FlowStats>,
) -> Result<Vec<Vec<u8>>, OfpError> {
    let head_len = crate::header::OFP_HEADER_LEN + STATS_HEAD;
    // An entry 1.0 cannot say writes nothing (`encode_flow_stats`) and is left out.
    let bodies = split_entries(n, head_len, |i, out| match entry(i) {
        Some(f) => encode_flow_stats(&f, out).or(Ok(())),
        None => Ok(()),
    })?;
    Ok(frame_parts(ty::FLOW, 0, xid, bodies))
}

/// Each of `bodies` as a whole 1.0 STATS_REPLY of type `t`, every one but the last flagged
/// `OFPSF_REPLY_MORE`.
fn frame_parts(t: u16, flags: u16, xid: u32, bodies: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    use crate::header::{Header, OFP_HEADER_LEN};
    let head_len = OFP_HEADER_LEN + STATS_HEAD;
    let count = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut out = Vec::with_capacity(head_len + body.len());
            Header {
                version: crate::OFP10_VERSION,
                msg_type: super::ty::STATS_REPLY,
                length: (head_len + body.len()) as u16,
                xid,
            }
            .encode(&mut out);
            out.put_u16(t);
            let more = if i + 1 < count {
                crate::msg::multipart::OFPMPF_MORE
            } else {
                0
            };
            out.put_u16(flags | more);
            out.extend_from_slice(&body);
            out
        })
        .collect()
}
