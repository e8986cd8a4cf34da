//! The messages of OpenFlow 1.3.5, one module per family, and [`Message`], which reads a
//! framed message by its type and writes one back. HELLO, ERROR and ECHO are read in
//! every version (their layout never changed); OpenFlow 1.0 messages are read and written by
//! `crate::of10` into the same [`Message`]s; everything else must be OpenFlow 1.3.

pub mod bundle;
pub mod flow;
pub mod group;
pub mod meter;
pub mod multipart;
pub mod packet;
pub mod port;
pub mod switch;
pub mod symmetric;
pub mod table_features;

use crate::buf::Reader;
use crate::error::{err, ErrorCode as E, OfpError};
use crate::header::{Header, OFP_HEADER_LEN, OFP_MAX_LEN};
use crate::{OFP10_VERSION, OFP13_VERSION};

/// `ofp_type` of OpenFlow 1.3.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum MsgType {
    Hello = 0,
    Error = 1,
    EchoRequest = 2,
    EchoReply = 3,
    Experimenter = 4,
    FeaturesRequest = 5,
    FeaturesReply = 6,
    GetConfigRequest = 7,
    GetConfigReply = 8,
    SetConfig = 9,
    PacketIn = 10,
    FlowRemoved = 11,
    PortStatus = 12,
    PacketOut = 13,
    FlowMod = 14,
    GroupMod = 15,
    PortMod = 16,
    TableMod = 17,
    MultipartRequest = 18,
    MultipartReply = 19,
    BarrierRequest = 20,
    BarrierReply = 21,
    QueueGetConfigRequest = 22,
    QueueGetConfigReply = 23,
    RoleRequest = 24,
    RoleReply = 25,
    GetAsyncRequest = 26,
    GetAsyncReply = 27,
    SetAsync = 28,
    MeterMod = 29,
}

impl MsgType {
    pub fn from_u8(t: u8) -> Option<MsgType> {
        use MsgType as T;
        const ALL: [MsgType; 30] = [
            T::Hello,
            T::Error,
            T::EchoRequest,
            T::EchoReply,
            T::Experimenter,
            T::FeaturesRequest,
            T::FeaturesReply,
            T::GetConfigRequest,
            T::GetConfigReply,
            T::SetConfig,
            T::PacketIn,
            T::FlowRemoved,
            T::PortStatus,
            T::PacketOut,
            T::FlowMod,
            T::GroupMod,
            T::PortMod,
            T::TableMod,
            T::MultipartRequest,
            T::MultipartReply,
            T::BarrierRequest,
            T::BarrierReply,
            T::QueueGetConfigRequest,
            T::QueueGetConfigReply,
            T::RoleRequest,
            T::RoleReply,
            T::GetAsyncRequest,
            T::GetAsyncReply,
            T::SetAsync,
            T::MeterMod,
        ];
        ALL.get(usize::from(t)).copied()
    }
}

/// One message, decoded.
#[derive(Clone, PartialEq, Debug)]
pub enum Message {
    Hello(symmetric::Hello),
    Error(symmetric::ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    FeaturesRequest,
    FeaturesReply(switch::Features),
    GetConfigRequest,
    GetConfigReply(switch::SwitchConfig),
    SetConfig(switch::SwitchConfig),
    PacketIn(packet::PacketIn),
    FlowRemoved(flow::FlowRemoved),
    PortStatus(port::PortStatus),
    PacketOut(packet::PacketOut),
    FlowMod(flow::FlowModMsg),
    GroupMod(group::GroupMod),
    PortMod(port::PortMod),
    MeterMod(meter::MeterMod),
    MultipartRequest(multipart::MultipartRequest),
    MultipartReply(multipart::MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(switch::Role),
    RoleReply(switch::Role),
    GetAsyncRequest,
    GetAsyncReply(switch::AsyncConfig),
    SetAsync(switch::AsyncConfig),
    /// The EXPERIMENTER messages read here: ONF bundles.
    Experimenter(bundle::Experimenter),
}

fn empty(body: &[u8], m: Message) -> Result<Message, OfpError> {
    if body.is_empty() {
        Ok(m)
    } else {
        err(E::BadRequestLen, "body")
    }
}

impl Message {
    /// Reads the message `h` heads from its body (the bytes after the header).
    pub fn decode(h: &Header, body: &[u8]) -> Result<Message, OfpError> {
        use MsgType as T;
        let r = || Reader::new(body, E::BadRequestLen, "body");
        // Layouts that are the same in every version.
        match h.msg_type {
            0 => return symmetric::Hello::decode(r()).map(Message::Hello),
            1 => return symmetric::ErrorMsg::decode(r()).map(Message::Error),
            2 => return Ok(Message::EchoRequest(body.to_vec())),
            3 => return Ok(Message::EchoReply(body.to_vec())),
            _ => {}
        }
        if h.version == OFP10_VERSION {
            return crate::of10::decode(h, body);
        }
        if h.version != OFP13_VERSION {
            return err(E::BadRequestVersion, "ofp_header.version");
        }
        let Some(t) = MsgType::from_u8(h.msg_type) else {
            return err(E::BadRequestType, "ofp_header.type");
        };
        use switch::{AsyncConfig, Features, Role, SwitchConfig};
        Ok(match t {
            T::FeaturesRequest => empty(body, Message::FeaturesRequest)?,
            T::FeaturesReply => Message::FeaturesReply(Features::decode(r())?),
            T::GetConfigRequest => empty(body, Message::GetConfigRequest)?,
            T::GetConfigReply => Message::GetConfigReply(SwitchConfig::decode(r())?),
            T::SetConfig => Message::SetConfig(SwitchConfig::decode(r())?),
            T::PacketIn => Message::PacketIn(packet::PacketIn::decode(r())?),
            T::FlowRemoved => Message::FlowRemoved(flow::FlowRemoved::decode(r())?),
            T::PortStatus => Message::PortStatus(port::PortStatus::decode(r())?),
            T::PacketOut => Message::PacketOut(packet::PacketOut::decode(r())?),
            T::FlowMod => Message::FlowMod(flow::FlowModMsg::decode(r())?),
            T::GroupMod => Message::GroupMod(group::GroupMod::decode(r())?),
            T::PortMod => Message::PortMod(port::PortMod::decode(r())?),
            T::MeterMod => Message::MeterMod(meter::MeterMod::decode(r())?),
            T::MultipartRequest => {
                Message::MultipartRequest(multipart::MultipartRequest::decode(r())?)
            }
            T::MultipartReply => Message::MultipartReply(multipart::MultipartReply::decode(r())?),
            T::BarrierRequest => empty(body, Message::BarrierRequest)?,
            T::BarrierReply => empty(body, Message::BarrierReply)?,
            T::RoleRequest => Message::RoleRequest(Role::decode(r())?),
            T::RoleReply => Message::RoleReply(Role::decode(r())?),
            T::GetAsyncRequest => empty(body, Message::GetAsyncRequest)?,
            T::GetAsyncReply => Message::GetAsyncReply(AsyncConfig::decode(r())?),
            T::SetAsync => Message::SetAsync(AsyncConfig::decode(r())?),
            T::Experimenter => Message::Experimenter(bundle::Experimenter::decode(h, body)?),
            // Not implemented yet: refused as an unknown type, which the spec allows a switch
            // that does not support a message.
            T::TableMod
            | T::QueueGetConfigRequest
            | T::QueueGetConfigReply
            | T::Hello
            | T::Error
            | T::EchoRequest
            | T::EchoReply => return err(E::BadRequestType, "ofp_header.type"),
        })
    }

    /// The message's type.
    pub fn msg_type(&self) -> MsgType {
        use Message as M;
        use MsgType as T;
        match self {
            M::Hello(_) => T::Hello,
            M::Error(_) => T::Error,
            M::EchoRequest(_) => T::EchoRequest,
            M::EchoReply(_) => T::EchoReply,
            M::FeaturesRequest => T::FeaturesRequest,
            M::FeaturesReply(_) => T::FeaturesReply,
            M::GetConfigRequest => T::GetConfigRequest,
            M::GetConfigReply(_) => T::GetConfigReply,
            M::SetConfig(_) => T::SetConfig,
            M::PacketIn(_) => T::PacketIn,
            M::FlowRemoved(_) => T::FlowRemoved,
            M::PortStatus(_) => T::PortStatus,
            M::PacketOut(_) => T::PacketOut,
            M::FlowMod(_) => T::FlowMod,
            M::GroupMod(_) => T::GroupMod,
            M::PortMod(_) => T::PortMod,
            M::MeterMod(_) => T::MeterMod,
            M::MultipartRequest(_) => T::MultipartRequest,
            M::MultipartReply(_) => T::MultipartReply,
            M::BarrierRequest => T::BarrierRequest,
            M::BarrierReply => T::BarrierReply,
            M::RoleRequest(_) => T::RoleRequest,
            M::RoleReply(_) => T::RoleReply,
            M::GetAsyncRequest => T::GetAsyncRequest,
            M::GetAsyncReply(_) => T::GetAsyncReply,
            M::SetAsync(_) => T::SetAsync,
            M::Experimenter(_) => T::Experimenter,
        }
    }

    /// The body's bytes.
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        use Message as M;
        match self {
            M::Hello(m) => m.encode(out),
            M::Error(m) => m.encode(out),
            M::EchoRequest(d) | M::EchoReply(d) => out.extend_from_slice(d),
            M::FeaturesRequest
            | M::GetConfigRequest
            | M::BarrierRequest
            | M::BarrierReply
            | M::GetAsyncRequest => {}
            M::FeaturesReply(m) => m.encode(out),
            M::GetConfigReply(m) | M::SetConfig(m) => m.encode(out),
            M::PacketIn(m) => m.encode(out)?,
            M::FlowRemoved(m) => m.encode(out)?,
            M::PortStatus(m) => m.encode(out),
            M::PacketOut(m) => m.encode(out),
            M::FlowMod(m) => m.encode(out)?,
            M::GroupMod(m) => m.encode(out),
            M::PortMod(m) => m.encode(out),
            M::MeterMod(m) => m.encode(out),
            M::MultipartRequest(m) => m.encode(out)?,
            M::MultipartReply(m) => m.encode(out)?,
            M::RoleRequest(m) | M::RoleReply(m) => m.encode(out),
            M::GetAsyncReply(m) | M::SetAsync(m) => m.encode(out),
            M::Experimenter(m) => m.encode(out),
        }
        Ok(())
    }

    /// The whole message in `version` with transaction id `xid`: OpenFlow 1.0's layout for
    /// version 1 (`crate::of10`; a message 1.0 does not have is `OFPBRC_BAD_TYPE`), 1.3's
    /// otherwise. A message over 65535 bytes is refused (`OFPBRC_BAD_LEN`).
    pub fn encode(&self, version: u8, xid: u32) -> Result<Vec<u8>, OfpError> {
        if version == OFP10_VERSION {
            return crate::of10::encode(self, xid);
        }
        let mut out = vec![0u8; OFP_HEADER_LEN];
        self.encode_body(&mut out)?;
        if out.len() > OFP_MAX_LEN {
            return err(E::BadRequestLen, "message too long");
        }
        let mut head = Vec::with_capacity(OFP_HEADER_LEN);
        Header {
            version,
            msg_type: self.msg_type() as u8,
            length: out.len() as u16,
            xid,
        }
        .encode(&mut head);
        out[..OFP_HEADER_LEN].copy_from_slice(&head);
        Ok(out)
    }

    /// Reads a whole message (header included), as a test or a fuzzer has it.
    pub fn decode_bytes(b: &[u8]) -> Result<(Header, Message), OfpError> {
        let h = Header::decode(b)?;
        let Some(body) = b.get(OFP_HEADER_LEN..usize::from(h.length)) else {
            return err(E::BadRequestLen, "ofp_header.length");
        };
        Ok((h, Message::decode(&h, body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(b: &[u8]) -> Option<(u16, u16)> {
        Message::decode_bytes(b).err().map(|e| e.code.type_code())
    }

    #[test]
    fn refusals_carry_the_spec_codes() {
        // FEATURES_REQUEST in OpenFlow 1.1: bad version.
        assert_eq!(code(&[2, 5, 0, 8, 0, 0, 0, 1]), Some((1, 0)));
        // Type 99, TABLE_MOD (not implemented): bad type.
        assert_eq!(code(&[4, 99, 0, 8, 0, 0, 0, 1]), Some((1, 1)));
        assert_eq!(
            code(&[4, 17, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Some((1, 1))
        );
        // A BARRIER_REQUEST with a body; a length beyond the bytes.
        assert_eq!(code(&[4, 20, 0, 9, 0, 0, 0, 1, 0]), Some((1, 6)));
        assert_eq!(code(&[4, 20, 0, 16, 0, 0, 0, 1]), Some((1, 6)));
        // MULTIPART_REQUEST for QUEUE (5): bad multipart.
        let mp = [4, 18, 0, 16, 0, 0, 0, 1, 0, 5, 0, 0, 0, 0, 0, 0];
        assert_eq!(code(&mp), Some((1, 2)));
        // METER_FEATURES with a body; METER_MOD with command 7.
        let mp = [
            4, 18, 0, 20, 0, 0, 0, 1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(code(&mp), Some((1, 6)));
        let mm = [4, 29, 0, 16, 0, 0, 0, 1, 0, 7, 0, 0, 0, 0, 0, 1];
        assert_eq!(code(&mm), Some((12, 4)));
        // ROLE_REQUEST with role 9.
        let mut role = vec![4, 24, 0, 24, 0, 0, 0, 1, 0, 0, 0, 9];
        role.resize(24, 0);
        assert_eq!(code(&role), Some((11, 2)));
    }

    #[test]
    fn flow_mod_refusals() {
        let mut fm = openflow::parse_flow_mod("add tcp,tp_dst=80,actions=output:1")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let msg = flow::FlowModMsg::from_flow_mod(&fm).unwrap_or_else(|e| unreachable!("{e}"));
        // Decoded, an OpenFlow 1.3 add keeps the counts of an identical rule it replaces.
        fm.spec.flags |= openflow::ADD_KEEPS_COUNTS;
        let good = Message::FlowMod(msg.clone())
            .encode(4, 1)
            .unwrap_or_default();
        // Every truncation is refused, never a panic, with a length code; cut right after
        // the match it is a flow mod without instructions.
        let match_len = usize::from(u16::from_be_bytes([good[50], good[51]]));
        let match_end = 48 + match_len.div_ceil(8) * 8;
        for n in (8..good.len()).filter(|n| *n != match_end) {
            let mut b = good[..n].to_vec();
            b[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            let e = Message::decode_bytes(&b)
                .err()
                .map(|e| e.code.type_code().1);
            assert!(matches!(e, Some(1) | Some(6) | Some(7)), "{n}: {e:?}");
        }
        // Command 9.
        let mut b = good.clone();
        b[25] = 9;
        assert_eq!(code(&b), Some((5, 6)));
        // Add to table 255; a buffered packet; an unknown flag.
        let mut m = msg.clone();
        m.table_id = 255;
        assert_eq!(
            m.to_flow_mod().err().map(|e| e.code.type_code()),
            Some((5, 2))
        );
        let mut m = msg.clone();
        m.buffer_id = 7;
        assert_eq!(
            m.to_flow_mod().err().map(|e| e.code.type_code()),
            Some((1, 8))
        );
        let mut b = good;
        b[44] = 0x80;
        assert_eq!(code(&b), Some((5, 7)));
        assert_eq!(msg.to_flow_mod().ok(), Some(fm));
    }

    #[test]
    fn out_group_filters_deletes_and_a_modify_ignores_it_as_ovs_decodes_it() {
        let wire = |text: &str, out_group: u32| {
            let fm = openflow::parse_flow_mod(text).unwrap_or_else(|e| unreachable!("{e}"));
            let mut m =
                flow::FlowModMsg::from_flow_mod(&fm).unwrap_or_else(|e| unreachable!("{e}"));
            m.out_group = out_group;
            let b = Message::FlowMod(m).encode(4, 1).unwrap_or_default();
            match Message::decode_bytes(&b) {
                Ok((_, Message::FlowMod(m))) => m.to_flow_mod().map(|f| f.spec.out_group),
                other => unreachable!("{other:?}"),
            }
        };
        // OVS's ofputil_decode_flow_mod keeps out_group for delete and delete_strict only.
        assert_eq!(wire("delete ip", 2).ok(), Some(Some(2)));
        assert_eq!(wire("delete_strict priority=5,ip", 7).ok(), Some(Some(7)));
        assert_eq!(wire("delete ip", flow::OFPG_ANY).ok(), Some(None));
        assert_eq!(wire("modify table=0,ip,actions=drop", 2).ok(), Some(None));
        assert_eq!(
            wire("modify_strict table=0,ip,actions=drop", 2).ok(),
            Some(None)
        );
        // And back: a filter's out_group goes on the wire.
        let fm = openflow::parse_flow_mod("delete out_group=3,out_port=4")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let m = flow::FlowModMsg::from_flow_mod(&fm).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!((m.out_port, m.out_group), (4, 3));
        assert_eq!(m.to_flow_mod().ok(), Some(fm));
    }
}
