//! The text of a packet-out, as ovs-ofctl's `parse_ofp_packet_out_str`: `in_port=PORT`
//! (`CONTROLLER` when absent), `packet=HEX` (an Ethernet frame of at least 14 bytes) and
//! `actions=...` (the rest of the text), separated by commas or spaces. The actions are a
//! rule's, plus `TABLE` / `output:TABLE`: run the packet through the tables from table 0.

use crate::error::RuleError;
use crate::parse::{parse_actions_unchecked, split_action_items};
use crate::portnames::RESERVED_PORTS;
use crate::rule::{Action, Match, OFPP_LOCAL};

/// `OFPP_CONTROLLER`: a packet-out's in_port when none is given.
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// The largest port number a packet-out's in_port may be, as Open vSwitch's `OFPP_MAX`.
const OFPP_MAX: u32 = 0xff00;
/// The shortest frame: an Ethernet header.
const ETH_HEADER_LEN: usize = 14;

/// A parsed packet-out.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketOutSpec {
    pub in_port: u32,
    pub packet: Vec<u8>,
    pub actions: Vec<Action>,
}

/// Parses `in_port=... packet=... actions=...`.
pub fn parse_packet_out(text: &str) -> Result<PacketOutSpec, RuleError> {
    let (head, actions) = match text.find("actions=") {
        Some(i) => (&text[..i], Some(&text[i + "actions=".len()..])),
        None => (text, None),
    };
    let mut in_port = OFPP_CONTROLLER;
    let mut packet = None;
    for item in head.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').unwrap_or((item, ""));
        if value.is_empty() {
            return Err(RuleError::new(name, "missing value"));
        }
        match name {
            "in_port" => in_port = parse_in_port(value)?,
            "packet" => packet = Some(parse_frame(value)?),
            _ => return Err(RuleError::new(name, "unknown keyword")),
        }
    }
    let packet = packet.ok_or_else(|| RuleError::new("packet", "must specify packet"))?;
    let actions = match actions {
        Some(a) => parse_packet_out_actions(a)?,
        None => Vec::new(),
    };
    Ok(PacketOutSpec {
        in_port,
        packet,
        actions,
    })
}

/// A packet-out's in_port: a port number up to 0xff00, `LOCAL`, `CONTROLLER`, or
/// `NONE`/`ANY` (no port).
pub fn parse_in_port(s: &str) -> Result<u32, RuleError> {
    let reserved = RESERVED_PORTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|p| p.1);
    let p = match reserved {
        Some(p) => p,
        None => crate::parse::uint("in_port", s, u128::from(u32::MAX))? as u32,
    };
    if p > OFPP_MAX && !matches!(p, OFPP_LOCAL | OFPP_CONTROLLER | 0xffff_ffff) {
        return Err(RuleError::new(
            "in_port",
            format!("{s} is not a valid OpenFlow port for PACKET_OUT"),
        ));
    }
    Ok(p)
}

/// A frame in hex (spaces allowed between bytes, as ovs-ofctl's `eth_from_hex`).
pub fn parse_frame(s: &str) -> Result<Vec<u8>, RuleError> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(RuleError::new("packet", "odd number of hex digits"));
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let frame = digits
        .chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| RuleError::new("packet", "trailing garbage in packet data"))?;
    if frame.len() < ETH_HEADER_LEN {
        return Err(RuleError::new(
            "packet",
            "packet data too short for Ethernet",
        ));
    }
    Ok(frame)
}

/// The actions of a packet-out: a rule's, where `TABLE` (or `output:TABLE`) is
/// `resubmit(,0)`.
pub fn parse_packet_out_actions(text: &str) -> Result<Vec<Action>, RuleError> {
    let mut out = Vec::new();
    for item in split_action_items(text)? {
        let port = item
            .strip_prefix("output:")
            .or_else(|| item.strip_prefix("output="))
            .unwrap_or(item);
        if port.eq_ignore_ascii_case("TABLE") {
            out.push(Action::Resubmit {
                port: None,
                table: Some(0),
            });
        } else {
            out.extend(parse_actions_unchecked(item, &Match::catch_all())?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &str = "ffffffffffff0000000000010806";

    #[test]
    fn packet_outs_parse_as_ovs_ofctl_reads_them() {
        let p =
            parse_packet_out(&format!("in_port=1 packet={FRAME} actions=output:2,TABLE")).unwrap();
        assert_eq!(p.in_port, 1);
        assert_eq!(p.packet.len(), 14);
        assert_eq!(
            p.actions,
            vec![
                Action::Output(2),
                Action::Resubmit {
                    port: None,
                    table: Some(0)
                }
            ]
        );
        let p = parse_packet_out(&format!("packet={FRAME},actions=flood")).unwrap();
        assert_eq!(
            (p.in_port, p.actions),
            (OFPP_CONTROLLER, vec![Action::Flood])
        );
        let p = parse_packet_out(&format!("in_port=LOCAL,packet={FRAME}")).unwrap();
        assert_eq!((p.in_port, p.actions.len()), (OFPP_LOCAL, 0));
        let field = |t: &str| parse_packet_out(t).unwrap_err().field;
        assert_eq!(field("in_port=1 actions=drop"), "packet");
        assert_eq!(field("in_port=65281 packet=0 actions=drop"), "in_port");
        assert_eq!(field(&format!("in_port=NORMAL packet={FRAME}")), "in_port");
        assert_eq!(field("packet=ffff"), "packet");
        assert_eq!(field("packet=fffz"), "packet");
        assert_eq!(field(&format!("dl_src=1 packet={FRAME}")), "dl_src");
        assert_eq!(field(&format!("packet={FRAME} actions=output:x")), "output");
    }
}
