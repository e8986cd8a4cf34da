//! FLOW_MOD and FLOW_REMOVED, and the conversion of a FLOW_MOD into the [`FlowMod`] vecswitch's
//! rule set applies.

use openflow::{FlowMod, FlowModCommand, FlowSpec, Match, ADD_KEEPS_COUNTS};

use crate::action::Instruction;
use crate::action::{decode_instructions, encode_instructions, from_actions, port, to_actions};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::oxm::{decode_match, encode_match};

/// `OFP_NO_BUFFER`.
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// `OFPG_ANY`: no group filter.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// `OFPTT_ALL`.
pub const OFPTT_ALL: u8 = 0xff;

/// `OFPFF_*` flow mod flags.
pub mod flags {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
    pub const ALL: u16 = 0x1f;
}

/// FLOW_MOD as the wire has it.
#[derive(Clone, PartialEq, Debug)]
pub struct FlowModMsg {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub matches: Match,
    pub instructions: Vec<Instruction>,
}

/// The command numbered `c` (the same in 1.0, whose field is 16 bits, and 1.3).
pub(crate) fn command_from(c: u16) -> Result<FlowModCommand, OfpError> {
    Ok(match c {
        0 => FlowModCommand::Add,
        1 => FlowModCommand::Modify,
        2 => FlowModCommand::ModifyStrict,
        3 => FlowModCommand::Delete,
        4 => FlowModCommand::DeleteStrict,
        _ => return err(E::FlowModBadCommand, "flow_mod.command"),
    })
}

pub(crate) fn command_to(c: FlowModCommand) -> u8 {
    match c {
        FlowModCommand::Add => 0,
        FlowModCommand::Modify => 1,
        FlowModCommand::ModifyStrict => 2,
        FlowModCommand::Delete => 3,
        FlowModCommand::DeleteStrict => 4,
    }
}

impl FlowModMsg {
    pub fn decode(mut r: Reader) -> Result<FlowModMsg, OfpError> {
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let table_id = r.u8()?;
        let command = command_from(u16::from(r.u8()?))?;
        let idle_timeout = r.u16()?;
        let hard_timeout = r.u16()?;
        let priority = r.u16()?;
        let buffer_id = r.u32()?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        let flags = r.u16()?;
        r.skip(2)?;
        if flags & !flags::ALL != 0 {
            return err(E::FlowModBadFlags, "flow_mod.flags");
        }
        let matches = decode_match(&mut r)?;
        let instructions =
            decode_instructions(Reader::new(r.rest(), E::BadInstructionLen, "instructions"))?;
        Ok(FlowModMsg {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            matches,
            instructions,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        out.put_u8(self.table_id);
        out.put_u8(command_to(self.command));
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.priority);
        out.put_u32(self.buffer_id);
        out.put_u32(self.out_port);
        out.put_u32(self.out_group);
        out.put_u16(self.flags);
        out.put_zeros(2);
        encode_match(&self.matches, out)?;
        encode_instructions(&self.instructions, out);
        Ok(())
    }

    /// The flow mod vecswitch's rule set applies. Refused: table 255 in an add
    /// (`OFPFMFC_BAD_TABLE_ID`) and a buffered packet (`OFPBRC_BUFFER_UNKNOWN`: the switch
    /// buffers none), rather than ignored. Every OpenFlow 1.3 flag goes to the rule
    /// set, which knows them all (`check_overlap` refuses an overlapping add there, with
    /// `OFPFMFC_OVERLAP`); unknown flag bits were refused when the message was decoded. An
    /// add also carries [`ADD_KEEPS_COUNTS`]: in OpenFlow 1.3 an add over an identical rule
    /// keeps its counts unless `reset_counts` is set (OVS's `ofputil_decode_flow_mod`).
    pub fn to_flow_mod(&self) -> Result<FlowMod, OfpError> {
        self.clone().into_flow_mod()
    }

    /// [`FlowModMsg::to_flow_mod`] without copying the match (the connection's path: a
    /// match is 720 bytes).
    pub fn into_flow_mod(self) -> Result<FlowMod, OfpError> {
        let deleting = matches!(
            self.command,
            FlowModCommand::Delete | FlowModCommand::DeleteStrict
        );
        let table = if self.table_id == OFPTT_ALL {
            if !deleting {
                return err(E::FlowModBadTableId, "flow_mod.table_id");
            }
            None
        } else {
            Some(self.table_id)
        };
        if self.buffer_id != OFP_NO_BUFFER {
            return err(E::BadRequestBufferUnknown, "flow_mod.buffer_id");
        }
        let actions = to_actions(&self.instructions, self.table_id)?;
        Ok(FlowMod {
            command: self.command,
            spec: FlowSpec {
                table,
                priority: self.priority,
                cookie: self.cookie,
                // OpenFlow 1.3's modify and delete filter on cookie/cookie_mask; an add sets it.
                // A modify always has its mask, zero included: it never adds a rule and never
                // changes a cookie (1.3.5 §6.4; OVS's `ofputil_decode_flow_mod`, which gives
                // every OpenFlow 1.2+ modify no new cookie).
                cookie_mask: match self.command {
                    FlowModCommand::Add => None,
                    FlowModCommand::Modify | FlowModCommand::ModifyStrict => Some(self.cookie_mask),
                    _ => (self.cookie_mask != 0).then_some(self.cookie_mask),
                },
                idle_timeout: self.idle_timeout,
                hard_timeout: self.hard_timeout,
                // OpenFlow 1.3's modify ignores out_port and out_group; delete filters on
                // them (OVS's `ofputil_decode_flow_mod` and `modify_flows_init_loose`).
                out_port: (deleting && self.out_port != port::ANY).then_some(self.out_port),
                out_group: (deleting && self.out_group != OFPG_ANY).then_some(self.out_group),
                importance: 0,
                flags: if self.command == FlowModCommand::Add {
                    self.flags | ADD_KEEPS_COUNTS
                } else {
                    self.flags
                },
                matches: self.matches,
                actions,
            },
        })
    }

    /// The FLOW_MOD that says `fm`.
    pub fn from_flow_mod(fm: &FlowMod) -> Result<FlowModMsg, OfpError> {
        let s = &fm.spec;
        Ok(FlowModMsg {
            cookie: s.cookie,
            cookie_mask: s.cookie_mask.unwrap_or(0),
            table_id: s.table.unwrap_or(OFPTT_ALL),
            command: fm.command,
            idle_timeout: s.idle_timeout,
            hard_timeout: s.hard_timeout,
            priority: s.priority,
            buffer_id: OFP_NO_BUFFER,
            out_port: s.out_port.unwrap_or(port::ANY),
            out_group: s.out_group.unwrap_or(OFPG_ANY),
            flags: s.flags & flags::ALL,
            matches: s.matches.clone(),
            instructions: from_actions(&s.actions)?,
        })
    }
}

/// Why a flow went: the rule set's own reasons, numbered as on the wire.
pub use openflow::RemovedReason;

/// The removal reason numbered `n` (the same in 1.0 and 1.3).
pub(crate) fn removed_reason(n: u8) -> Result<RemovedReason, OfpError> {
    Ok(match n {
        0 => RemovedReason::IdleTimeout,
        1 => RemovedReason::HardTimeout,
        2 => RemovedReason::Delete,
        3 => RemovedReason::GroupDelete,
        _ => return err(E::BadRequestType, "flow_removed.reason"),
    })
}

/// FLOW_REMOVED.
#[derive(Clone, PartialEq, Debug)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: RemovedReason,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub matches: Match,
}

impl FlowRemoved {
    pub fn decode(mut r: Reader) -> Result<FlowRemoved, OfpError> {
        let cookie = r.u64()?;
        let priority = r.u16()?;
        let reason = removed_reason(r.u8()?)?;
        Ok(FlowRemoved {
            cookie,
            priority,
            reason,
            table_id: r.u8()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            idle_timeout: r.u16()?,
            hard_timeout: r.u16()?,
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            matches: decode_match(&mut r)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), OfpError> {
        out.put_u64(self.cookie);
        out.put_u16(self.priority);
        out.put_u8(self.reason as u8);
        out.put_u8(self.table_id);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        encode_match(&self.matches, out)
    }
}
