//! Actions (OpenFlow 1.3.5 section 7.2.5) and instructions (7.2.4) on the wire, and their
//! conversion to and from vecswitch's [`Action`] list: apply-actions become the list,
//! write-metadata and goto-table its last entries. What vecswitch cannot do (write-actions,
//! clear-actions, meters, queues, TTL copies) decodes, so messages round-trip, but is
//! refused by the conversion with the code the spec gives.

use openflow::Action;
use pipeline::field::{Write, VLAN_VID};

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::oxm::{decode_tlv, encode_tlv, OxmField, OFPVID_PRESENT};

/// Reserved port numbers (`ofp_port_no`).
pub mod port {
    pub const MAX: u32 = 0xffff_ff00;
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    pub const ANY: u32 = 0xffff_ffff;
}

/// `OFPCML_NO_BUFFER`: send the whole packet to the controller.
pub const OFPCML_NO_BUFFER: u16 = 0xffff;

/// One action as the wire has it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireAction {
    Output { port: u32, max_len: u16 },
    CopyTtlOut,
    CopyTtlIn,
    PushVlan(u16),
    PopVlan,
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    SetField(OxmField),
}

mod ty {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const EXPERIMENTER: u16 = 0xffff;
}

impl WireAction {
    /// Reads one action.
    pub fn decode(r: &mut Reader) -> Result<WireAction, OfpError> {
        let t = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 {
            return err(E::BadActionLen, "action.len");
        }
        let mut b = Reader::new(r.bytes(len - 4)?, E::BadActionLen, "action.len");
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                err(E::BadActionLen, "action.len")
            }
        };
        let a = match t {
            ty::OUTPUT => {
                fixed(16)?;
                let port = b.u32()?;
                let max_len = b.u16()?;
                if port == 0 || port == port::ANY {
                    return err(E::BadActionOutPort, "output.port");
                }
                WireAction::Output { port, max_len }
            }
            ty::COPY_TTL_OUT => fixed(8).map(|_| WireAction::CopyTtlOut)?,
            ty::COPY_TTL_IN => fixed(8).map(|_| WireAction::CopyTtlIn)?,
            ty::PUSH_VLAN => {
                fixed(8)?;
                let et = b.u16()?;
                if et != 0x8100 && et != 0x88a8 {
                    return err(E::BadActionArgument, "push_vlan.ethertype");
                }
                WireAction::PushVlan(et)
            }
            ty::POP_VLAN => fixed(8).map(|_| WireAction::PopVlan)?,
            ty::SET_QUEUE => fixed(8).and_then(|_| b.u32()).map(WireAction::SetQueue)?,
            ty::GROUP => fixed(8).and_then(|_| b.u32()).map(WireAction::Group)?,
            ty::SET_NW_TTL => fixed(8).and_then(|_| b.u8()).map(WireAction::SetNwTtl)?,
            ty::DEC_NW_TTL => fixed(8).map(|_| WireAction::DecNwTtl)?,
            ty::SET_FIELD => {
                let mut tlv = Reader::new(b.rest(), E::BadActionSetLen, "set_field");
                let f = decode_tlv(&mut tlv).map_err(|e| {
                    let code = match e.code {
                        E::BadMatchField => E::BadActionSetType,
                        E::BadMatchValue | E::BadMatchMask => E::BadActionSetArgument,
                        _ => E::BadActionSetLen,
                    };
                    OfpError::new(code, "set_field.oxm")
                })?;
                if f.mask.is_some() {
                    return err(E::BadActionSetArgument, "set_field.mask");
                }
                // What is left is padding (at most 7 zero bytes).
                if tlv.remaining() >= 8 {
                    return err(E::BadActionSetLen, "set_field.len");
                }
                if f.field.def().write == Write::No {
                    return err(E::BadActionSetType, "set_field.field");
                }
                WireAction::SetField(f)
            }
            ty::EXPERIMENTER => return err(E::BadActionExperimenter, "action.experimenter"),
            _ => return err(E::BadActionType, "action.type"),
        };
        Ok(a)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let short = |out: &mut Vec<u8>, t: u16| {
            out.put_u16(t);
            out.put_u16(8);
        };
        match *self {
            WireAction::Output { port, max_len } => {
                out.put_u16(ty::OUTPUT);
                out.put_u16(16);
                out.put_u32(port);
                out.put_u16(max_len);
                out.put_zeros(6);
            }
            WireAction::CopyTtlOut => short(out, ty::COPY_TTL_OUT),
            WireAction::CopyTtlIn => short(out, ty::COPY_TTL_IN),
            WireAction::PushVlan(et) => {
                short(out, ty::PUSH_VLAN);
                out.put_u16(et);
                out.put_zeros(2);
            }
            WireAction::PopVlan => short(out, ty::POP_VLAN),
            WireAction::SetQueue(q) => {
                short(out, ty::SET_QUEUE);
                out.put_u32(q);
            }
            WireAction::Group(g) => {
                short(out, ty::GROUP);
                out.put_u32(g);
            }
            WireAction::SetNwTtl(t) => {
                short(out, ty::SET_NW_TTL);
                out.put_u8(t);
                out.put_zeros(3);
            }
            WireAction::DecNwTtl => short(out, ty::DEC_NW_TTL),
            WireAction::SetField(f) => {
                out.put_u16(ty::SET_FIELD);
                out.put_u16(0);
                encode_tlv(&f, out);
                out.pad8_from(start);
                let len = out.len() - start;
                out.set_u16(start + 2, len as u16);
            }
        }
        if start + 8 > out.len() {
            out.put_zeros(start + 8 - out.len());
        }
    }
}

/// A list of actions filling `r`.
pub fn decode_actions(mut r: Reader) -> Result<Vec<WireAction>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(WireAction::decode(&mut r)?);
    }
    Ok(v)
}

pub fn encode_actions(actions: &[WireAction], out: &mut Vec<u8>) {
    for a in actions {
        a.encode(out);
    }
}

/// One instruction as the wire has it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata { value: u64, mask: u64 },
    WriteActions(Vec<WireAction>),
    ApplyActions(Vec<WireAction>),
    ClearActions,
    Meter(u32),
}

impl Instruction {
    fn kind(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => 1,
            Instruction::WriteMetadata { .. } => 2,
            Instruction::WriteActions(_) => 3,
            Instruction::ApplyActions(_) => 4,
            Instruction::ClearActions => 5,
            Instruction::Meter(_) => 6,
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Instruction, OfpError> {
        let t = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 {
            return err(E::BadInstructionLen, "instruction.len");
        }
        let mut b = Reader::new(r.bytes(len - 4)?, E::BadInstructionLen, "instruction.len");
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                err(E::BadInstructionLen, "instruction.len")
            }
        };
        Ok(match t {
            1 => fixed(8).and_then(|_| b.u8()).map(Instruction::GotoTable)?,
            2 => {
                fixed(24)?;
                b.skip(4)?;
                Instruction::WriteMetadata {
                    value: b.u64()?,
                    mask: b.u64()?,
                }
            }
            3 | 4 => {
                b.skip(4)?;
                let a = decode_actions(Reader::new(b.rest(), E::BadActionLen, "actions"))?;
                if t == 3 {
                    Instruction::WriteActions(a)
                } else {
                    Instruction::ApplyActions(a)
                }
            }
            5 => fixed(8).map(|_| Instruction::ClearActions)?,
            6 => fixed(8).and_then(|_| b.u32()).map(Instruction::Meter)?,
            _ => return err(E::BadInstructionUnknown, "instruction.type"),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.kind());
        out.put_u16(0);
        match self {
            Instruction::GotoTable(t) => {
                out.put_u8(*t);
                out.put_zeros(3);
            }
            Instruction::WriteMetadata { value, mask } => {
                out.put_zeros(4);
                out.put_u64(*value);
                out.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                out.put_zeros(4);
                encode_actions(a, out);
            }
            Instruction::ClearActions => out.put_zeros(4),
            Instruction::Meter(m) => out.put_u32(*m),
        }
        let len = out.len() - start;
        out.set_u16(start + 2, len as u16);
    }
}

/// Instructions filling `r`; a type given twice is refused.
pub fn decode_instructions(mut r: Reader) -> Result<Vec<Instruction>, OfpError> {
    let mut v: Vec<Instruction> = Vec::new();
    while !r.is_empty() {
        let i = Instruction::decode(&mut r)?;
        if v.iter().any(|x| x.kind() == i.kind()) {
            return err(E::BadInstructionUnsupported, "instruction given twice");
        }
        v.push(i);
    }
    Ok(v)
}

pub fn encode_instructions(ins: &[Instruction], out: &mut Vec<u8>) {
    for i in ins {
        i.encode(out);
    }
}

/// Where an action list is used: an output to `TABLE` is only meaningful in PACKET_OUT.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Context {
    FlowMod,
    PacketOut,
}

/// A wire action as a vecswitch action.
pub fn to_action(a: &WireAction, cx: Context) -> Result<Action, OfpError> {
    Ok(match *a {
        WireAction::Output { port: p, max_len } => match p {
            port::IN_PORT => Action::InPort,
            port::NORMAL => Action::Normal,
            port::FLOOD => Action::Flood,
            port::ALL => Action::All,
            port::CONTROLLER => Action::Controller(Box::new(openflow::ControllerArgs {
                max_len,
                ..openflow::ControllerArgs::default()
            })),
            port::LOCAL => Action::Local,
            port::TABLE if cx == Context::PacketOut => Action::Resubmit {
                port: None,
                table: Some(0),
            },
            p if p < port::MAX => Action::Output(p),
            _ => return err(E::BadActionOutPort, "output.port"),
        },
        WireAction::PushVlan(et) => Action::PushVlan(et),
        WireAction::PopVlan => Action::PopVlan,
        WireAction::DecNwTtl => Action::DecTtl,
        WireAction::SetNwTtl(t) => Action::SetField {
            field: pipeline::field::NW_TTL,
            value: u128::from(t),
        },
        WireAction::SetField(f) => Action::SetField {
            field: f.field,
            value: if f.field == VLAN_VID {
                f.value & 0x0fff
            } else {
                f.value
            },
        },
        WireAction::Group(g) if g <= openflow::group::OFPG_MAX => Action::Group(g),
        WireAction::Group(_) => return err(E::BadActionOutGroup, "group"),
        WireAction::CopyTtlOut | WireAction::CopyTtlIn | WireAction::SetQueue(_) => {
            return err(E::BadActionType, "action.type")
        }
    })
}

/// A vecswitch action as a wire action; `None` for the instructions (goto-table,
/// write-metadata, write-actions, clear-actions) that [`from_actions`] places itself.
pub fn from_action(a: &Action) -> Result<Option<WireAction>, OfpError> {
    let out = |p| {
        Some(WireAction::Output {
            port: p,
            max_len: 0,
        })
    };
    Ok(match a {
        Action::Output(p) => out(*p),
        Action::InPort => out(port::IN_PORT),
        Action::Normal => out(port::NORMAL),
        Action::Flood => out(port::FLOOD),
        Action::All => out(port::ALL),
        Action::Local => out(port::LOCAL),
        // Only the plain form: reason, id, userdata, pause and meter need NXAST_CONTROLLER2.
        Action::Controller(c) => {
            let plain = openflow::ControllerArgs {
                max_len: c.max_len,
                ..openflow::ControllerArgs::default()
            };
            if **c != plain {
                return err(E::BadActionType, "controller(...) arguments");
            }
            Some(WireAction::Output {
                port: port::CONTROLLER,
                max_len: c.max_len,
            })
        }
        Action::SetField { field, value } => Some(set_field(*field, *value)?),
        Action::Load { dst, value } if dst.is_whole() => Some(set_field(dst.field, *value)?),
        Action::PushVlan(et) => Some(WireAction::PushVlan(*et)),
        Action::PopVlan => Some(WireAction::PopVlan),
        Action::DecTtl => Some(WireAction::DecNwTtl),
        Action::Group(g) => Some(WireAction::Group(*g)),
        Action::GotoTable(_)
        | Action::WriteMetadata { .. }
        | Action::WriteActions(_)
        | Action::ClearActions => None,
        Action::Load { .. }
        | Action::Move { .. }
        | Action::Resubmit { .. }
        | Action::Note(_)
        | Action::DecTtlIds(_)
        | Action::StackPush(_)
        | Action::StackPop(_)
        | Action::Ct(_) => return err(E::BadActionType, "no OpenFlow 1.3 action"),
    })
}

pub(crate) fn set_field(field: openflow::Field, value: u128) -> Result<WireAction, OfpError> {
    let d = field.def();
    let Some(nxm) = d
        .nxm
        .iter()
        .find(|n| n.class == 0x8000)
        .or_else(|| d.nxm.first())
    else {
        return err(E::BadActionSetType, "set_field.field");
    };
    let value = if field == VLAN_VID {
        value | u128::from(OFPVID_PRESENT)
    } else {
        value
    };
    Ok(WireAction::SetField(OxmField {
        field,
        nxm: *nxm,
        value,
        mask: None,
    }))
}

/// The vecswitch action list a FLOW_MOD's instructions mean, for a rule in `table`.
pub fn to_actions(ins: &[Instruction], table: u8) -> Result<Vec<Action>, OfpError> {
    let mut v = Vec::new();
    let find = |k: u16| ins.iter().find(|i| i.kind() == k);
    if find(6).is_some() {
        return crate::msg::meter::no_meter("instruction.meter");
    }
    if let Some(Instruction::ApplyActions(a)) = find(4) {
        for x in a {
            v.push(to_action(x, Context::FlowMod)?);
        }
    }
    if find(5).is_some() {
        v.push(Action::ClearActions);
    }
    if let Some(Instruction::WriteActions(a)) = find(3) {
        let mut set = Vec::with_capacity(a.len());
        for x in a {
            let x = to_action(x, Context::FlowMod)?;
            if !x.allowed_in_action_set() {
                return err(
                    E::BadActionType,
                    "write_actions: not allowed in the action set",
                );
            }
            set.push(x);
        }
        v.push(Action::WriteActions(set));
    }
    if let Some(Instruction::WriteMetadata { value, mask }) = find(2) {
        v.push(Action::WriteMetadata {
            value: *value & *mask,
            mask: *mask,
        });
    }
    if let Some(Instruction::GotoTable(t)) = find(1) {
        if *t <= table || usize::from(*t) >= openflow::N_TABLES {
            return err(E::BadInstructionTableId, "goto_table");
        }
        v.push(Action::GotoTable(*t));
    }
    Ok(v)
}

/// The instructions that say a vecswitch action list.
pub fn from_actions(actions: &[Action]) -> Result<Vec<Instruction>, OfpError> {
    let mut apply = Vec::new();
    let mut tail = Vec::new();
    for a in actions {
        match a {
            Action::WriteMetadata { value, mask } => tail.push(Instruction::WriteMetadata {
                value: *value,
                mask: *mask,
            }),
            Action::GotoTable(t) => tail.push(Instruction::GotoTable(*t)),
            Action::ClearActions => tail.push(Instruction::ClearActions),
            Action::WriteActions(set) => {
                let mut w = Vec::with_capacity(set.len());
                for a in set {
                    match from_action(a)? {
                        Some(x) => w.push(x),
                        None => return err(E::BadActionType, "write_actions"),
                    }
                }
                tail.push(Instruction::WriteActions(w));
            }
            a => {
                if !tail.is_empty() {
                    // The instruction order is fixed: actions after write-metadata (or
                    // clear-actions, write-actions) cannot be said.
                    return err(E::BadInstructionUnsupported, "action after an instruction");
                }
                if let Some(w) = from_action(a)? {
                    apply.push(w);
                }
            }
        }
    }
    let mut out = Vec::new();
    if !apply.is_empty() {
        out.push(Instruction::ApplyActions(apply));
    }
    // Clear-actions (5), write-actions (3), write-metadata (2), goto-table (1): the order
    // ovs-ofctl sends them in, whatever the list said.
    tail.sort_by_key(|i| std::cmp::Reverse(i.kind()));
    out.extend(tail);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_wire(flow: &str) {
        let spec = openflow::parse_flow(flow).unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        let ins = from_actions(&spec.actions).unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        let mut b = Vec::new();
        encode_instructions(&ins, &mut b);
        let back = decode_instructions(Reader::new(&b, E::BadInstructionLen, "t"))
            .unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        assert_eq!(back, ins);
        let table = spec.table.unwrap_or(0);
        let acts = to_actions(&back, table).unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        assert_eq!(acts, spec.actions, "{flow}");
    }

    #[test]
    fn actions_round_trip_through_instructions() {
        for f in [
            "actions=output:1,output:2",
            "actions=NORMAL",
            "actions=FLOOD,ALL,LOCAL,IN_PORT,CONTROLLER",
            "ip,actions=mod_nw_src:10.0.0.1,dec_ttl,output:3",
            "actions=push_vlan:0x8100,set_field:5->vlan_vid,output:2",
            "dl_vlan=5,actions=pop_vlan,output:1",
            "actions=set_field:00:11:22:33:44:55->eth_dst,goto_table:3",
            "actions=write_metadata:0x10/0xff,goto_table:1",
            "actions=set_field:0x5->reg2,output:1",
            "actions=drop",
            "actions=group:5",
            "ip,actions=dec_ttl,group:1,output:2",
            "actions=write_actions(output:2),goto_table:1",
            "actions=clear_actions",
            "actions=output:1,clear_actions,write_actions(pop_vlan,set_field:0x1->reg0,group:3)",
            "ip,actions=write_actions(dec_ttl,mod_nw_dst:10.0.0.2,CONTROLLER:100),\
             write_metadata:0x1/0x1,goto_table:4",
            "actions=write_actions()",
        ] {
            through_wire(f);
        }
    }

    #[test]
    fn refusals_name_the_spec_codes() {
        // An action OpenFlow has but vecswitch cannot run, in the action set: BAD_ACTION.
        let ins = [Instruction::WriteActions(vec![WireAction::CopyTtlIn])];
        assert_eq!(
            to_actions(&ins, 0).err().map(|e| e.code.type_code()),
            Some((2, 0))
        );
        // The instructions arrive in any order; the actions come out in OpenFlow's.
        let ins = [
            Instruction::GotoTable(2),
            Instruction::WriteActions(vec![WireAction::Group(3)]),
            Instruction::ClearActions,
            Instruction::ApplyActions(vec![WireAction::PopVlan]),
        ];
        assert_eq!(
            to_actions(&ins, 0),
            Ok(vec![
                Action::PopVlan,
                Action::ClearActions,
                Action::WriteActions(vec![Action::Group(3)]),
                Action::GotoTable(2)
            ])
        );
        let ins = [Instruction::GotoTable(0)];
        assert_eq!(
            to_actions(&ins, 0).err().map(|e| e.code.type_code()),
            Some((3, 2))
        );
        // A meter (Faucet's ACL `meter:` action): the switch has none, as OVS without meter
        // support answers, OFPMMFC_INVALID_METER.
        let ins = [
            Instruction::Meter(1),
            Instruction::ApplyActions(vec![]),
            Instruction::GotoTable(1),
        ];
        assert_eq!(
            to_actions(&ins, 0).err().map(|e| e.code.type_code()),
            Some((12, 2))
        );
        // A group id beyond OFPG_MAX (ALL, ANY) is no group.
        let ins = [Instruction::ApplyActions(vec![WireAction::Group(
            0xffff_fffc,
        )])];
        assert_eq!(
            to_actions(&ins, 0).err().map(|e| e.code.type_code()),
            Some((2, 9))
        );
        let ins = [Instruction::ApplyActions(vec![WireAction::Group(7)])];
        assert_eq!(to_actions(&ins, 0), Ok(vec![Action::Group(7)]));
        let ins = [Instruction::ApplyActions(vec![WireAction::CopyTtlOut])];
        assert_eq!(
            to_actions(&ins, 0).err().map(|e| e.code.type_code()),
            Some((2, 0))
        );
        // Output to TABLE outside PACKET_OUT, an unknown action type, a short action.
        let a = WireAction::Output {
            port: port::TABLE,
            max_len: 0,
        };
        assert_eq!(
            to_action(&a, Context::FlowMod).err().map(|e| e.code),
            Some(E::BadActionOutPort)
        );
        assert!(to_action(&a, Context::PacketOut).is_ok());
        let bad = [0u8, 99, 0, 8, 0, 0, 0, 0];
        let e = decode_actions(Reader::new(&bad, E::BadActionLen, "t")).err();
        assert_eq!(e.map(|e| e.code.type_code()), Some((2, 0)));
        let bad = [0u8, 0, 0, 8, 0, 0, 0, 1];
        let e = decode_actions(Reader::new(&bad, E::BadActionLen, "t")).err();
        assert_eq!(e.map(|e| e.code.type_code()), Some((2, 1)));
    }
}
