//! MULTIPART_REQUEST and MULTIPART_REPLY for DESC, FLOW, AGGREGATE, TABLE, PORT_STATS,
//! PORT_DESC, GROUP, GROUP_DESC, GROUP_FEATURES, TABLE_FEATURES, METER, METER_CONFIG and
//! METER_FEATURES. Other multipart types are refused with `OFPBRC_BAD_MULTIPART`.

use openflow::Match;

use crate::action::{decode_instructions, encode_instructions, Instruction};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::msg::group::{GroupDesc, GroupStats};
use crate::msg::meter::{MeterConfig, MeterFeatures, MeterStats};
use crate::msg::port::{Port, PORT_LEN};
use crate::msg::table_features::TableFeatures;
use crate::oxm::{decode_match, encode_match};

/// `OFPMPF_REQ_MORE` / `OFPMPF_REPLY_MORE`.
pub const OFPMPF_MORE: u16 = 1;

mod ty {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
}

/// The filter of FLOW and AGGREGATE requests.
#[derive(Clone, PartialEq, Debug)]
pub struct FlowStatsRequest {
    /// `OFPTT_ALL` for every table.
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub matches: Match,
}

impl FlowStatsRequest {
    fn decode(mut r: Reader) -> Result<FlowStatsRequest, OfpError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        r.skip(4)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie: r.u64()?,
            cookie_mask: r.u64()?,
            matches: decode_match(&mut r)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        out.put_u8(self.table_id);
        out.put_zeros(3);
        out.put_u32(self.out_port);
        out.put_u32(self.out_group);
        out.put_zeros(4);
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        encode_match(&self.matches, out)
    }
}

/// A MULTIPART_REQUEST body.
#[derive(Clone, PartialEq, Debug)]
pub enum RequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    /// `OFPP_ANY` for every port.
    PortStats(u32),
    PortDesc,
    /// GROUP stats of a group (`OFPG_ALL` for every group).
    Group(u32),
    GroupDesc,
    GroupFeatures,
    /// METER statistics of a meter (`OFPM_ALL` for every meter).
    Meter(u32),
    /// METER_CONFIG of a meter (`OFPM_ALL` for every meter).
    MeterConfig(u32),
    MeterFeatures,
    /// Empty: what the tables support; otherwise the features to give them.
    TableFeatures(Vec<TableFeatures>),
}

/// MULTIPART_REQUEST.
#[derive(Clone, PartialEq, Debug)]
pub struct MultipartRequest {
    pub flags: u16,
    pub body: RequestBody,
}

fn empty<T>(r: &Reader, v: T) -> Result<T, OfpError> {
    if r.is_empty() {
        Ok(v)
    } else {
        err(E::BadRequestLen, "multipart body")
    }
}

impl MultipartRequest {
    pub fn decode(mut r: Reader) -> Result<MultipartRequest, OfpError> {
        let t = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match t {
            ty::DESC => empty(&r, RequestBody::Desc)?,
            ty::FLOW => RequestBody::Flow(FlowStatsRequest::decode(r)?),
            ty::AGGREGATE => RequestBody::Aggregate(FlowStatsRequest::decode(r)?),
            ty::TABLE => empty(&r, RequestBody::Table)?,
            ty::PORT_STATS => {
                let p = r.u32()?;
                r.skip(4)?;
                empty(&r, RequestBody::PortStats(p))?
            }
            ty::PORT_DESC => empty(&r, RequestBody::PortDesc)?,
            ty::GROUP => {
                let g = r.u32()?;
                r.skip(4)?;
                empty(&r, RequestBody::Group(g))?
            }
            ty::GROUP_DESC => empty(&r, RequestBody::GroupDesc)?,
            ty::GROUP_FEATURES => empty(&r, RequestBody::GroupFeatures)?,
            ty::METER | ty::METER_CONFIG => {
                let m = r.u32()?;
                r.skip(4)?;
                let body = if t == ty::METER {
                    RequestBody::Meter(m)
                } else {
                    RequestBody::MeterConfig(m)
                };
                empty(&r, body)?
            }
            ty::METER_FEATURES => empty(&r, RequestBody::MeterFeatures)?,
            ty::TABLE_FEATURES => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(TableFeatures::decode(&mut r)?);
                }
                RequestBody::TableFeatures(v)
            }
            _ => return err(E::BadRequestMultipart, "multipart.type"),
        };
        Ok(MultipartRequest { flags, body })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let t = match &self.body {
            RequestBody::Desc => ty::DESC,
            RequestBody::Flow(_) => ty::FLOW,
            RequestBody::Aggregate(_) => ty::AGGREGATE,
            RequestBody::Table => ty::TABLE,
            RequestBody::PortStats(_) => ty::PORT_STATS,
            RequestBody::PortDesc => ty::PORT_DESC,
            RequestBody::Group(_) => ty::GROUP,
            RequestBody::GroupDesc => ty::GROUP_DESC,
            RequestBody::GroupFeatures => ty::GROUP_FEATURES,
            RequestBody::Meter(_) => ty::METER,
            RequestBody::MeterConfig(_) => ty::METER_CONFIG,
            RequestBody::MeterFeatures => ty::METER_FEATURES,
            RequestBody::TableFeatures(_) => ty::TABLE_FEATURES,
        };
        out.put_u16(t);
        out.put_u16(self.flags);
        out.put_zeros(4);
        match &self.body {
            RequestBody::Flow(f) | RequestBody::Aggregate(f) => f.encode(out)?,
            RequestBody::TableFeatures(v) => v.iter().for_each(|t| t.encode(out)),
            RequestBody::PortStats(p)
            | RequestBody::Group(p)
            | RequestBody::Meter(p)
            | RequestBody::MeterConfig(p) => {
                out.put_u32(*p);
                out.put_zeros(4);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The DESC reply.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Desc {
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub serial_num: String,
    pub dp_desc: String,
}

impl Desc {
    /// `ofp_desc` (the same in 1.0 and 1.3).
    pub(crate) fn decode(r: &mut Reader) -> Result<Desc, OfpError> {
        Ok(Desc {
            mfr_desc: r.string(256)?,
            hw_desc: r.string(256)?,
            sw_desc: r.string(256)?,
            serial_num: r.string(32)?,
            dp_desc: r.string(256)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_string(&self.mfr_desc, 256);
        out.put_string(&self.hw_desc, 256);
        out.put_string(&self.sw_desc, 256);
        out.put_string(&self.serial_num, 32);
        out.put_string(&self.dp_desc, 256);
    }
}

/// The AGGREGATE reply's body (the same in 1.0 and 1.3).
pub(crate) fn decode_aggregate(r: &mut Reader) -> Result<ReplyBody, OfpError> {
    let a = ReplyBody::Aggregate {
        packet_count: r.u64()?,
        byte_count: r.u64()?,
        flow_count: r.u32()?,
    };
    r.skip(4)?;
    Ok(a)
}

/// Writes an AGGREGATE reply's body; nothing for another body.
pub(crate) fn encode_aggregate(body: &ReplyBody, out: &mut Vec<u8>) {
    if let ReplyBody::Aggregate {
        packet_count,
        byte_count,
        flow_count,
    } = body
    {
        out.put_u64(*packet_count);
        out.put_u64(*byte_count);
        out.put_u32(*flow_count);
        out.put_zeros(4);
    }
}

/// One flow of the FLOW reply.
#[derive(Clone, PartialEq, Debug)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub matches: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    fn decode(r: &mut Reader) -> Result<FlowStats, OfpError> {
        let len = usize::from(r.u16()?);
        if len < 56 {
            return err(E::BadRequestLen, "flow_stats.length");
        }
        let mut b = Reader::new(r.bytes(len - 2)?, E::BadRequestLen, "flow_stats.length");
        let table_id = b.u8()?;
        b.skip(1)?;
        let duration_sec = b.u32()?;
        let duration_nsec = b.u32()?;
        let priority = b.u16()?;
        let idle_timeout = b.u16()?;
        let hard_timeout = b.u16()?;
        let flags = b.u16()?;
        b.skip(4)?;
        let cookie = b.u64()?;
        let packet_count = b.u64()?;
        let byte_count = b.u64()?;
        let matches = decode_match(&mut b)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            matches,
            instructions: decode_instructions(b)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_u8(0);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.priority);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.flags);
        out.put_zeros(4);
        out.put_u64(self.cookie);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        encode_match(&self.matches, out)?;
        encode_instructions(&self.instructions, out);
        let len = out.len() - start;
        out.set_u16(start, len as u16);
        Ok(())
    }
}

/// One table of the TABLE reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

/// One port of the PORT_STATS reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PortStats {
    pub port_no: u32,
    /// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped, rx_errors,
    /// tx_errors, rx_frame_err, rx_over_err, rx_crc_err, collisions.
    pub counters: [u64; 12],
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

/// The GROUP_FEATURES reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct GroupFeatures {
    /// Bit N: group type N supported.
    pub types: u32,
    pub capabilities: u32,
    pub max_groups: [u32; 4],
    /// Per group type, bit N: action type N supported.
    pub actions: [u32; 4],
}

/// A MULTIPART_REPLY body.
#[derive(Clone, PartialEq, Debug)]
pub enum ReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate {
        packet_count: u64,
        byte_count: u64,
        flow_count: u32,
    },
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    PortDesc(Vec<Port>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    GroupFeatures(GroupFeatures),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig>),
    MeterFeatures(MeterFeatures),
    TableFeatures(Vec<TableFeatures>),
}

/// MULTIPART_REPLY.
#[derive(Clone, PartialEq, Debug)]
pub struct MultipartReply {
    pub flags: u16,
    pub body: ReplyBody,
}

/// Entries of a fixed size filling `r`.
fn fixed<T>(
    mut r: Reader,
    size: usize,
    f: impl Fn(&mut Reader) -> Result<T, OfpError>,
) -> Result<Vec<T>, OfpError> {
    if !r.remaining().is_multiple_of(size) {
        return err(E::BadRequestLen, "multipart entry");
    }
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(f(&mut r)?);
    }
    Ok(v)
}

/// Entries of their own lengths filling `r`.
fn entries<T>(
    mut r: Reader,
    f: impl Fn(&mut Reader) -> Result<T, OfpError>,
) -> Result<Vec<T>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(f(&mut r)?);
    }
    Ok(v)
}

impl MultipartReply {
    pub fn decode(mut r: Reader) -> Result<MultipartReply, OfpError> {
        let t = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match t {
            ty::DESC => ReplyBody::Desc(Desc::decode(&mut r)?),
            ty::FLOW => ReplyBody::Flow(entries(r, FlowStats::decode)?),
            ty::AGGREGATE => decode_aggregate(&mut r)?,
            ty::TABLE => ReplyBody::Table(fixed(r, 24, |r| {
                let table_id = r.u8()?;
                r.skip(3)?;
                Ok(TableStats {
                    table_id,
                    active_count: r.u32()?,
                    lookup_count: r.u64()?,
                    matched_count: r.u64()?,
                })
            })?),
            ty::PORT_STATS => ReplyBody::PortStats(fixed(r, 112, |r| {
                let port_no = r.u32()?;
                r.skip(4)?;
                let mut counters = [0u64; 12];
                for c in &mut counters {
                    *c = r.u64()?;
                }
                Ok(PortStats {
                    port_no,
                    counters,
                    duration_sec: r.u32()?,
                    duration_nsec: r.u32()?,
                })
            })?),
            ty::PORT_DESC => ReplyBody::PortDesc(fixed(r, PORT_LEN, Port::decode)?),
            ty::GROUP => ReplyBody::Group(entries(r, GroupStats::decode)?),
            ty::GROUP_DESC => ReplyBody::GroupDesc(entries(r, GroupDesc::decode)?),
            ty::TABLE_FEATURES => ReplyBody::TableFeatures(entries(r, TableFeatures::decode)?),
            ty::GROUP_FEATURES => {
                let types = r.u32()?;
                let capabilities = r.u32()?;
                let mut max_groups = [0u32; 4];
                for m in &mut max_groups {
                    *m = r.u32()?;
                }
                let mut actions = [0u32; 4];
                for a in &mut actions {
                    *a = r.u32()?;
                }
                ReplyBody::GroupFeatures(GroupFeatures {
                    types,
                    capabilities,
                    max_groups,
                    actions,
                })
            }
            ty::METER => ReplyBody::Meter(entries(r, MeterStats::decode)?),
            ty::METER_CONFIG => ReplyBody::MeterConfig(entries(r, MeterConfig::decode)?),
            ty::METER_FEATURES => ReplyBody::MeterFeatures(MeterFeatures::decode(&mut r)?),
            _ => return err(E::BadRequestMultipart, "multipart.type"),
        };
        Ok(MultipartReply { flags, body })
    }

    fn type_code(&self) -> u16 {
        match &self.body {
            ReplyBody::Desc(_) => ty::DESC,
            ReplyBody::Flow(_) => ty::FLOW,
            ReplyBody::Aggregate { .. } => ty::AGGREGATE,
            ReplyBody::Table(_) => ty::TABLE,
            ReplyBody::PortStats(_) => ty::PORT_STATS,
            ReplyBody::PortDesc(_) => ty::PORT_DESC,
            ReplyBody::Group(_) => ty::GROUP,
            ReplyBody::GroupDesc(_) => ty::GROUP_DESC,
            ReplyBody::GroupFeatures(_) => ty::GROUP_FEATURES,
            ReplyBody::Meter(_) => ty::METER,
            ReplyBody::MeterConfig(_) => ty::METER_CONFIG,
            ReplyBody::MeterFeatures(_) => ty::METER_FEATURES,
            ReplyBody::TableFeatures(_) => ty::TABLE_FEATURES,
        }
    }

    /// The reply as whole OpenFlow 1.3 messages with transaction id `xid`, each at most
    /// 65535 bytes: a list that does not fit in one is split between its entries, every
    /// message but the last flagged `OFPMPF_REPLY_MORE` (section 7.3.5).
    pub fn encode_parts(&self, xid: u32) -> Result<Vec<Vec<u8>>, OfpError> {
        let single = |body: &MultipartReply| {
            crate::msg::Message::MultipartReply(body.clone()).encode(crate::OFP13_VERSION, xid)
        };
        let Some(n) = self.entries() else {
            return Ok(vec![single(self)?]);
        };
        let parts = split_entries(n, PARTS_HEAD, |i, out| self.encode_entry(i, out))?;
        Ok(frame_parts(self.type_code(), self.flags, xid, parts))
    }

    /// [`MultipartReply::encode_parts`] in `version`: OpenFlow 1.0's STATS_REPLY on a 1.0
    /// connection.
    pub fn encode_parts_in(&self, version: u8, xid: u32) -> Result<Vec<Vec<u8>>, OfpError> {
        if version == crate::OFP10_VERSION {
            return crate::of10::stats::reply_parts(self, xid);
        }
        self.encode_parts(xid)
    }

    /// How many entries the body's list has; `None` for a body that is one structure.
    fn entries(&self) -> Option<usize> {
        Some(match &self.body {
            ReplyBody::Flow(v) => v.len(),
            ReplyBody::Table(v) => v.len(),
            ReplyBody::PortStats(v) => v.len(),
            ReplyBody::PortDesc(v) => v.len(),
            ReplyBody::Group(v) => v.len(),
            ReplyBody::GroupDesc(v) => v.len(),
            ReplyBody::TableFeatures(v) => v.len(),
            ReplyBody::Meter(v) => v.len(),
            ReplyBody::MeterConfig(v) => v.len(),
            ReplyBody::Desc(_)
            | ReplyBody::Aggregate { .. }
            | ReplyBody::GroupFeatures(_)
            | ReplyBody::MeterFeatures(_) => return None,
        })
    }

    /// Writes entry `i` of the body's list.
    fn encode_entry(&self, i: usize, out: &mut Vec<u8>) -> Result<(), OfpError> {
        match &self.body {
            ReplyBody::Flow(v) => v[i].encode(out)?,
            ReplyBody::Table(v) => {
                let t = &v[i];
                out.put_u8(t.table_id);
                out.put_zeros(3);
                out.put_u32(t.active_count);
                out.put_u64(t.lookup_count);
                out.put_u64(t.matched_count);
            }
            ReplyBody::PortStats(v) => {
                let p = &v[i];
                out.put_u32(p.port_no);
                out.put_zeros(4);
                for c in p.counters {
                    out.put_u64(c);
                }
                out.put_u32(p.duration_sec);
                out.put_u32(p.duration_nsec);
            }
            ReplyBody::PortDesc(v) => v[i].encode(out),
            ReplyBody::Group(v) => v[i].encode(out),
            ReplyBody::GroupDesc(v) => v[i].encode(out),
            ReplyBody::TableFeatures(v) => v[i].encode(out),
            ReplyBody::Meter(v) => v[i].encode(out),
            ReplyBody::MeterConfig(v) => v[i].encode(out),
            ReplyBody::Desc(_)
            | ReplyBody::Aggregate { .. }
            | ReplyBody::GroupFeatures(_)
            | ReplyBody::MeterFeatures(_) => {}
        }
        Ok(())
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        out.put_u16(self.type_code());
        out.put_u16(self.flags);
        out.put_zeros(4);
        if let Some(n) = self.entries() {
            for i in 0..n {
                self.encode_entry(i, out)?;
            }
            return Ok(());
        }
        match &self.body {
            ReplyBody::Desc(d) => d.encode(out),
            ReplyBody::Aggregate { .. } => encode_aggregate(&self.body, out),
            ReplyBody::GroupFeatures(g) => {
                out.put_u32(g.types);
                out.put_u32(g.capabilities);
                for m in g.max_groups.iter().chain(g.actions.iter()) {
                    out.put_u32(*m);
                }
            }
            ReplyBody::MeterFeatures(f) => f.encode(out),
            // Lists: written above.
            ReplyBody::Meter(_)
            | ReplyBody::MeterConfig(_)
            | ReplyBody::Flow(_)
            | ReplyBody::Table(_)
            | ReplyBody::PortStats(_)
            | ReplyBody::PortDesc(_)
            | ReplyBody::Group(_)
            | ReplyBody::GroupDesc(_)
            | ReplyBody::TableFeatures(_) => {}
        }
        Ok(())
    }
}

/// The bodies of the messages a list of `n` entries is split into: each entry is written
/// (by `entry`) into the current body; one that makes it longer than a message of
/// `head` bytes of headers can hold moves to a new body.
/// A multipart reply's header: OpenFlow's, then type, flags and 4 bytes of padding.
const PARTS_HEAD: usize = crate::header::OFP_HEADER_LEN + 8;

/// Each of `parts` (the entries of one message each) as a whole OpenFlow 1.3 MULTIPART_REPLY
/// of type `t`, every one but the last flagged `OFPMPF_REPLY_MORE`.
fn frame_parts(t: u16, flags: u16, xid: u32, parts: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut out = Vec::with_capacity(PARTS_HEAD + body.len());
            crate::header::Header {
                version: crate::OFP13_VERSION,
                msg_type: crate::MsgType::MultipartReply as u8,
                length: (PARTS_HEAD + body.len()) as u16,
                xid,
            }
            .encode(&mut out);
            out.put_u16(t);
            out.put_u16(if i + 1 < n {
                flags | OFPMPF_MORE
            } else {
                flags
            });
            out.put_zeros(4);
            out.extend_from_slice(&body);
            out
        })
        .collect()
}

/// A FLOW reply in `version` (1.3, or 1.0's STATS_REPLY) with transaction id `xid`, its `n`
/// entries made one at a time by `entry` (`None`: left out), so that a dump of many rules
/// never holds them all as [`FlowStats`] at once; split as [`MultipartReply::encode_parts`]
/// splits. An entry 1.0 cannot say is left out of a 1.0 reply (as `reply_parts` does).
pub fn flow_reply_parts(
    version: u8,
    xid: u32,
    n: usize,
    mut entry: impl FnMut(usize) -> Option<FlowStats>,
) -> Result<Vec<Vec<u8>>, OfpError> {
    if version == crate::OFP10_VERSION {
        return crate::of10::stats::flow_reply_parts(xid, n, entry);
    }
    let parts = split_entries(n, PARTS_HEAD, |i, out| match entry(i) {
        Some(f) => f.encode(out),
        None => Ok(()),
    })?;
    Ok(frame_parts(ty::FLOW, 0, xid, parts))
}

pub(crate) fn split_entries(
    n: usize,
    head: usize,
    mut entry: impl FnMut(usize, &mut Vec<u8>) -> Result<(), OfpError>,
) -> Result<Vec<Vec<u8>>, OfpError> {
    use crate::header::OFP_MAX_LEN;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for i in 0..n {
        let at = cur.len();
        entry(i, &mut cur)?;
        let len = cur.len() - at;
        if head + len > OFP_MAX_LEN {
            return err(E::BadRequestLen, "multipart entry too long");
        }
        if head + cur.len() > OFP_MAX_LEN {
            let next = cur.split_off(at);
            parts.push(std::mem::replace(&mut cur, next));
        }
    }
    parts.push(cur);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Message;

    #[test]
    fn a_long_reply_is_split_with_reply_more() {
        let ports: Vec<PortStats> = (0..1000)
            .map(|i| PortStats {
                port_no: i,
                ..PortStats::default()
            })
            .collect();
        let reply = MultipartReply {
            flags: 0,
            body: ReplyBody::PortStats(ports.clone()),
        };
        let parts = reply.encode_parts(9).unwrap_or_default();
        // 112 bytes each: 584 fit in one message.
        assert_eq!(parts.len(), 2);
        let mut got = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 65535);
            let Ok((h, Message::MultipartReply(m))) = Message::decode_bytes(p) else {
                unreachable!("a multipart reply")
            };
            assert_eq!(h.xid, 9);
            assert_eq!(m.flags & OFPMPF_MORE != 0, i == 0);
            let ReplyBody::PortStats(v) = m.body else {
                unreachable!("port stats")
            };
            got.extend(v);
        }
        assert_eq!(got, ports);
        // An empty list is one message with no entries.
        let empty = MultipartReply {
            flags: 0,
            body: ReplyBody::Flow(Vec::new()),
        };
        assert_eq!(empty.encode_parts(1).map(|p| p.len()), Ok(1));
    }

    #[test]
    fn a_flow_reply_made_entry_by_entry_is_the_whole_reply_encoded() {
        use crate::action::WireAction;
        // Enough flows for several messages; every seventh has an action 1.0 cannot say.
        let flows: Vec<FlowStats> = (0..3000u32)
            .map(|i| FlowStats {
                table_id: (i % 3) as u8,
                duration_sec: i,
                duration_nsec: 0,
                priority: i as u16,
                idle_timeout: 0,
                hard_timeout: 0,
                flags: 0,
                cookie: u64::from(i),
                packet_count: 1,
                byte_count: 64,
                matches: Match::default(),
                instructions: vec![Instruction::ApplyActions(vec![if i.is_multiple_of(7) {
                    WireAction::CopyTtlOut
                } else {
                    WireAction::Output {
                        port: i,
                        max_len: 0,
                    }
                }])],
            })
            .collect();
        // Entries the caller leaves out (`None`) are the ones a whole reply would not hold.
        let kept = |i: usize| (!i.is_multiple_of(11)).then(|| flows[i].clone());
        let whole = MultipartReply {
            flags: 0,
            body: ReplyBody::Flow((0..flows.len()).filter_map(kept).collect()),
        };
        for version in [crate::OFP13_VERSION, crate::OFP10_VERSION] {
            let streamed = flow_reply_parts(version, 5, flows.len(), kept);
            let encoded = whole.encode_parts_in(version, 5);
            assert_eq!(streamed, encoded, "version {version}");
            assert!(streamed.map_or(0, |p| p.len()) > 1);
        }
    }
}
