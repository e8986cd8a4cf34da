//! PACKET_IN and PACKET_OUT.

use openflow::{Action, Match};

use crate::action::{decode_actions, encode_actions, to_action, Context, WireAction};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::oxm::{decode_match, encode_match};

/// Why a packet went to the controller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PacketInReason {
    /// Table-miss.
    NoMatch = 0,
    /// A `CONTROLLER` action.
    Action = 1,
    InvalidTtl = 2,
}

/// PACKET_IN. The match carries the pipeline fields (`in_port`, `metadata`, `tunnel_id`).
#[derive(Clone, PartialEq, Debug)]
pub struct PacketIn {
    pub buffer_id: u32,
    /// Length of the whole frame (`data` may be cut to `max_len`).
    pub total_len: u16,
    pub reason: PacketInReason,
    pub table_id: u8,
    pub cookie: u64,
    pub matches: Match,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub fn decode(mut r: Reader) -> Result<PacketIn, OfpError> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = match r.u8()? {
            0 => PacketInReason::NoMatch,
            1 => PacketInReason::Action,
            2 => PacketInReason::InvalidTtl,
            _ => return err(E::BadRequestType, "packet_in.reason"),
        };
        let table_id = r.u8()?;
        let cookie = r.u64()?;
        let matches = decode_match(&mut r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            matches,
            data: r.rest().to_vec(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        out.put_u32(self.buffer_id);
        out.put_u16(self.total_len);
        out.put_u8(self.reason as u8);
        out.put_u8(self.table_id);
        out.put_u64(self.cookie);
        encode_match(&self.matches, out)?;
        out.put_zeros(2);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// PACKET_OUT.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<WireAction>,
    pub data: Vec<u8>,
}

impl PacketOut {
    pub fn decode(mut r: Reader) -> Result<PacketOut, OfpError> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let actions_len = usize::from(r.u16()?);
        r.skip(6)?;
        let actions = decode_actions(Reader::new(
            r.bytes(actions_len)?,
            E::BadActionLen,
            "packet_out.actions",
        ))?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.rest().to_vec(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.buffer_id);
        out.put_u32(self.in_port);
        let at = out.len();
        out.put_u16(0);
        out.put_zeros(6);
        let start = out.len();
        encode_actions(&self.actions, out);
        let len = out.len() - start;
        out.set_u16(at, len as u16);
        out.extend_from_slice(&self.data);
    }

    /// The actions as vecswitch's (an output to `TABLE` runs the packet through table 0).
    pub fn vecswitch_actions(&self) -> Result<Vec<Action>, OfpError> {
        if self.buffer_id != crate::msg::flow::OFP_NO_BUFFER {
            return err(E::BadRequestBufferUnknown, "packet_out.buffer_id");
        }
        self.actions
            .iter()
            .map(|a| to_action(a, Context::PacketOut))
            .collect()
    }
}
