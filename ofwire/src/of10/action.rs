//! OpenFlow 1.0's actions (`OFPAT10_*`) to and from the wire actions of 1.3
//! ([`WireAction`]), so that a 1.0 FLOW_MOD becomes the same vecswitch actions as a 1.3 one
//! (`crate::action::to_action`). `set_vlan_vid`, `set_vlan_pcp`, `set_dl_*`, `set_nw_*`,
//! `set_nw_tos` and `set_tp_*` are set-fields; `set_tp_*` writes the port of the protocol the
//! match names (TCP, UDP or SCTP), and needs one (`OFPBAC_MATCH_INCONSISTENT` otherwise, as
//! Open vSwitch). `enqueue` (queues) and vendor actions are refused.

use openflow::{Field, Match};
use pipeline::field::{
    ETH_DST, ETH_SRC, IP_DSCP, IP_DST, IP_PROTO, IP_SRC, SCTP_DST, SCTP_SRC, TCP_DST, TCP_SRC,
    UDP_DST, UDP_SRC, VLAN_PCP, VLAN_VID,
};
use pipeline::flowkey::ipproto;

use crate::action::{set_field, WireAction};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::of10::matching::{port_from_16, port_to_16};

mod ty {
    pub const OUTPUT: u16 = 0;
    pub const SET_VLAN_VID: u16 = 1;
    pub const SET_VLAN_PCP: u16 = 2;
    pub const STRIP_VLAN: u16 = 3;
    pub const SET_DL_SRC: u16 = 4;
    pub const SET_DL_DST: u16 = 5;
    pub const SET_NW_SRC: u16 = 6;
    pub const SET_NW_DST: u16 = 7;
    pub const SET_NW_TOS: u16 = 8;
    pub const SET_TP_SRC: u16 = 9;
    pub const SET_TP_DST: u16 = 10;
    pub const ENQUEUE: u16 = 11;
    pub const VENDOR: u16 = 0xffff;
}

/// The field `set_tp_src` / `set_tp_dst` writes under `m`.
fn tp_field(m: &Match, src: bool) -> Result<Field, OfpError> {
    let ip_proto_set = m.mask.get(IP_PROTO) == 0xff;
    let (s, d) = match m.value.get(IP_PROTO) as u8 {
        ipproto::TCP if ip_proto_set => (TCP_SRC, TCP_DST),
        ipproto::UDP if ip_proto_set => (UDP_SRC, UDP_DST),
        ipproto::SCTP if ip_proto_set => (SCTP_SRC, SCTP_DST),
        _ => {
            return err(
                E::BadActionMatchInconsistent,
                "set_tp: match has no TCP/UDP/SCTP",
            )
        }
    };
    Ok(if src { s } else { d })
}

/// Reads one action of a rule with match `m`.
fn decode_one(r: &mut Reader, m: &Match) -> Result<WireAction, OfpError> {
    let t = r.u16()?;
    let len = usize::from(r.u16()?);
    if len < 8 || !len.is_multiple_of(8) || len - 4 > r.remaining() {
        return err(E::BadActionLen, "action.len");
    }
    let mut b = Reader::new(r.bytes(len - 4)?, E::BadActionLen, "action.len");
    let want = match t {
        ty::SET_DL_SRC | ty::SET_DL_DST | ty::ENQUEUE => 16,
        ty::VENDOR => len,
        _ => 8,
    };
    if len != want {
        return err(E::BadActionLen, "action.len");
    }
    let u128_of = |v: u32| u128::from(v);
    Ok(match t {
        ty::OUTPUT => {
            let p = b.u16()?;
            WireAction::Output {
                port: port_from_16(p),
                max_len: b.u16()?,
            }
        }
        ty::SET_VLAN_VID => {
            let vid = b.u16()?;
            if vid > 0x0fff {
                return err(E::BadActionArgument, "set_vlan_vid.vlan_vid");
            }
            set_field(VLAN_VID, u128::from(vid))?
        }
        ty::SET_VLAN_PCP => {
            let pcp = b.u8()?;
            if pcp > 7 {
                return err(E::BadActionArgument, "set_vlan_pcp.vlan_pcp");
            }
            set_field(VLAN_PCP, u128::from(pcp))?
        }
        ty::STRIP_VLAN => WireAction::PopVlan,
        ty::SET_DL_SRC | ty::SET_DL_DST => {
            let mac = pipeline::field::mac_to_u128(b.array()?);
            set_field(
                if t == ty::SET_DL_SRC {
                    ETH_SRC
                } else {
                    ETH_DST
                },
                mac,
            )?
        }
        ty::SET_NW_SRC => set_field(IP_SRC, u128_of(b.u32()?))?,
        ty::SET_NW_DST => set_field(IP_DST, u128_of(b.u32()?))?,
        ty::SET_NW_TOS => {
            let tos = b.u8()?;
            if tos & 3 != 0 {
                return err(E::BadActionArgument, "set_nw_tos.nw_tos");
            }
            set_field(IP_DSCP, u128::from(tos >> 2))?
        }
        ty::SET_TP_SRC | ty::SET_TP_DST => {
            let f = tp_field(m, t == ty::SET_TP_SRC)?;
            set_field(f, u128::from(b.u16()?))?
        }
        // Queues: vecswitch has none.
        ty::ENQUEUE => return err(E::BadActionType, "enqueue"),
        ty::VENDOR => return err(E::BadActionExperimenter, "vendor action"),
        _ => return err(E::BadActionType, "action.type"),
    })
}

/// Reads an action list (the rest of a FLOW_MOD or PACKET_OUT) of a rule with match `m`.
pub fn decode_actions(mut r: Reader, m: &Match) -> Result<Vec<WireAction>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        if r.remaining() < 8 {
            return err(E::BadActionLen, "action.len");
        }
        v.push(decode_one(&mut r, m)?);
    }
    Ok(v)
}

/// Writes one action; `Err` for an action OpenFlow 1.0 has no standard action for (groups,
/// push_vlan, TTLs, set-field of other fields).
pub fn encode_action(a: &WireAction, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let head = |out: &mut Vec<u8>, t: u16, len: u16| {
        out.put_u16(t);
        out.put_u16(len);
    };
    match a {
        WireAction::Output { port, max_len } => {
            let Some(p) = port_to_16(*port) else {
                return err(E::BadActionOutPort, "output.port");
            };
            head(out, ty::OUTPUT, 8);
            out.put_u16(p);
            out.put_u16(*max_len);
        }
        WireAction::PopVlan => {
            head(out, ty::STRIP_VLAN, 8);
            out.put_zeros(4);
        }
        WireAction::SetField(f) => {
            let v = f.value;
            let f = f.field;
            if f == VLAN_VID {
                head(out, ty::SET_VLAN_VID, 8);
                out.put_u16((v & 0x0fff) as u16);
                out.put_zeros(2);
            } else if f == VLAN_PCP {
                head(out, ty::SET_VLAN_PCP, 8);
                out.put_u8(v as u8);
                out.put_zeros(3);
            } else if f == ETH_SRC || f == ETH_DST {
                head(
                    out,
                    if f == ETH_SRC {
                        ty::SET_DL_SRC
                    } else {
                        ty::SET_DL_DST
                    },
                    16,
                );
                out.extend_from_slice(&pipeline::field::u128_to_mac(v));
                out.put_zeros(6);
            } else if f == IP_SRC || f == IP_DST {
                head(
                    out,
                    if f == IP_SRC {
                        ty::SET_NW_SRC
                    } else {
                        ty::SET_NW_DST
                    },
                    8,
                );
                out.put_u32(v as u32);
            } else if f == IP_DSCP {
                head(out, ty::SET_NW_TOS, 8);
                out.put_u8((v as u8) << 2);
                out.put_zeros(3);
            } else if [TCP_SRC, UDP_SRC, SCTP_SRC].contains(&f) {
                head(out, ty::SET_TP_SRC, 8);
                out.put_u16(v as u16);
                out.put_zeros(2);
            } else if [TCP_DST, UDP_DST, SCTP_DST].contains(&f) {
                head(out, ty::SET_TP_DST, 8);
                out.put_u16(v as u16);
                out.put_zeros(2);
            } else {
                return err(
                    E::BadActionSetType,
                    "no OpenFlow 1.0 action sets this field",
                );
            }
        }
        _ => return err(E::BadActionType, "no OpenFlow 1.0 action"),
    }
    Ok(())
}

/// Writes an action list.
pub fn encode_actions(actions: &[WireAction], out: &mut Vec<u8>) -> Result<(), OfpError> {
    actions.iter().try_for_each(|a| encode_action(a, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{to_action, Context};

    /// The vecswitch actions of `text` through 1.0's encoding and back.
    fn round_trip(matches: &str, actions: &str) {
        let fm = openflow::parse_flow_mod(&format!("add {matches},actions={actions}"))
            .unwrap_or_else(|e| unreachable!("{actions}: {e}"));
        let mut b = Vec::new();
        for a in &fm.spec.actions {
            let w = crate::action::from_action(a)
                .unwrap_or_else(|e| unreachable!("{e}"))
                .unwrap_or_else(|| unreachable!("an action"));
            encode_action(&w, &mut b).unwrap_or_else(|e| unreachable!("{actions}: {e}"));
        }
        let r = Reader::new(&b, E::BadActionLen, "actions");
        let back: Vec<openflow::Action> = decode_actions(r, &fm.spec.matches)
            .unwrap_or_else(|e| unreachable!("{e}"))
            .iter()
            .map(|w| to_action(w, Context::FlowMod).unwrap_or_else(|e| unreachable!("{e}")))
            .collect();
        assert_eq!(back, fm.spec.actions, "{actions}");
    }

    #[test]
    fn every_ofpat10_action_round_trips() {
        round_trip("ip", "output:1,output:65279,IN_PORT,NORMAL,FLOOD,ALL,LOCAL");
        round_trip("ip", "CONTROLLER:128");
        round_trip("ip", "mod_vlan_vid:10,mod_vlan_pcp:3,strip_vlan");
        round_trip(
            "ip",
            "mod_dl_src:00:01:02:03:04:05,mod_dl_dst:0a:0b:0c:0d:0e:0f",
        );
        round_trip("ip", "mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:16");
        round_trip("tcp", "mod_tp_src:1,mod_tp_dst:2");
        round_trip("udp", "mod_tp_src:1,mod_tp_dst:2");
        round_trip("sctp", "mod_tp_src:1,mod_tp_dst:2");
    }

    fn code(b: &[u8], m: &Match) -> Option<(u16, u16)> {
        decode_actions(Reader::new(b, E::BadActionLen, "actions"), m)
            .err()
            .map(|e| e.code.type_code())
    }

    #[test]
    fn refusals() {
        let any = Match::default();
        // Length not a multiple of 8, under 8, beyond the list; set_dl_src of 8 bytes.
        assert_eq!(
            code(&[0, 0, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0], &any),
            Some((2, 1))
        );
        assert_eq!(code(&[0, 0, 0, 4], &any), Some((2, 1)));
        assert_eq!(code(&[0, 0, 0, 16, 0, 1, 0, 0], &any), Some((2, 1)));
        assert_eq!(code(&[0, 4, 0, 8, 0, 1, 0, 0], &any), Some((2, 1)));
        // Enqueue, vendor, an unknown type.
        let mut enq = vec![0, 11, 0, 16];
        enq.resize(16, 0);
        assert_eq!(code(&enq, &any), Some((2, 0)));
        assert_eq!(
            code(&[0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20], &any),
            Some((2, 2))
        );
        assert_eq!(code(&[0, 12, 0, 8, 0, 0, 0, 0], &any), Some((2, 0)));
        // A VLAN id over 4095, a priority over 7, a TOS with ECN bits.
        assert_eq!(code(&[0, 1, 0, 8, 0x10, 0, 0, 0], &any), Some((2, 5)));
        assert_eq!(code(&[0, 2, 0, 8, 8, 0, 0, 0], &any), Some((2, 5)));
        assert_eq!(code(&[0, 8, 0, 8, 1, 0, 0, 0], &any), Some((2, 5)));
        // set_tp_src without TCP, UDP or SCTP in the match.
        assert_eq!(code(&[0, 9, 0, 8, 0, 1, 0, 0], &any), Some((2, 10)));
    }
}
