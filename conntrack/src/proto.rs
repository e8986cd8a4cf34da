//! The per-protocol state of a connection and its update, dispatched by protocol class as
//! OVS's `l4_protos[]` table does: TCP has the window tracker of [`crate::tcp`]; ICMP and
//! ICMPv6 queries have first/reply (`conntrack-icmp.c`); every other protocol, UDP and SCTP
//! included, has first/multiple/bidirectional (`conntrack-other.c`).

use pipeline::flowkey::ipproto;

use crate::key::Family;
use crate::outcome::CtInvalid;
use crate::packet::{icmp_valid_new, CtPacket};
use crate::tcp::{self, TcpConn};
use crate::timeouts::Timeout;

/// Which tracker a protocol gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProtoClass {
    Tcp,
    Icmp,
    Other,
}

impl ProtoClass {
    /// ICMP counts as ICMP only in its own family (OVS parses ICMP in IPv6 as "other").
    pub(crate) fn of(proto: u8, family: Family) -> ProtoClass {
        match (proto, family) {
            (ipproto::TCP, _) => ProtoClass::Tcp,
            (ipproto::ICMP, Family::V4) | (ipproto::ICMPV6, Family::V6) => ProtoClass::Icmp,
            _ => ProtoClass::Other,
        }
    }
}

/// States of a connection of another protocol (OVS `other_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OtherState {
    First,
    Multiple,
    Bidir,
}

/// States of an ICMP query (OVS `icmp_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpState {
    First,
    Reply,
}

/// The protocol part of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ProtoState {
    Tcp(TcpConn),
    Icmp(IcmpState),
    Other(OtherState),
}

/// The result of updating a connection with a packet (OVS `ct_update_res`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// In state: `+est`.
    Valid,
    /// In state, but the connection is not yet established: `+new`.
    ValidNew,
    /// `+inv`.
    Invalid(CtInvalid),
    /// A SYN that reopens a closed TCP connection: drop the old one and start anew.
    Reopen,
}

/// May `pkt` open a connection? (OVS `valid_new`.)
pub(crate) fn valid_new(pkt: &CtPacket) -> bool {
    match ProtoClass::of(pkt.proto, pkt.family) {
        ProtoClass::Tcp => tcp::valid_new(&pkt.tcp),
        ProtoClass::Icmp => icmp_valid_new(pkt.family, pkt.icmp.icmp_type),
        ProtoClass::Other => true,
    }
}

/// The state of a new connection opened by `pkt`, with its first timeout.
pub(crate) fn new_state(pkt: &CtPacket) -> (ProtoState, Timeout) {
    match ProtoClass::of(pkt.proto, pkt.family) {
        ProtoClass::Tcp => (
            ProtoState::Tcp(TcpConn::new(&pkt.tcp)),
            Timeout::TcpFirstPacket,
        ),
        ProtoClass::Icmp => (ProtoState::Icmp(IcmpState::First), Timeout::IcmpFirst),
        ProtoClass::Other => (ProtoState::Other(OtherState::First), Timeout::OtherFirst),
    }
}

impl ProtoState {
    /// Updates the state with `pkt` sent in the `reply` direction. Returns the verdict and
    /// the timeout to restart, if any (a TCP segment let through by the loose close rules
    /// restarts none, as in OVS).
    pub(crate) fn update(
        &mut self,
        pkt: &CtPacket,
        reply: bool,
        tcp_seq_check: bool,
    ) -> (Update, Option<Timeout>) {
        match self {
            ProtoState::Tcp(conn) => conn.update(&pkt.tcp, reply, tcp_seq_check),
            ProtoState::Icmp(state) => {
                let mut verdict = Update::Valid;
                if reply && *state == IcmpState::First {
                    *state = IcmpState::Reply;
                } else if *state == IcmpState::First {
                    verdict = Update::ValidNew;
                }
                let timeout = match state {
                    IcmpState::First => Timeout::IcmpFirst,
                    IcmpState::Reply => Timeout::IcmpReply,
                };
                (verdict, Some(timeout))
            }
            ProtoState::Other(state) => {
                if reply && *state != OtherState::Bidir {
                    *state = OtherState::Bidir;
                } else if *state == OtherState::First {
                    *state = OtherState::Multiple;
                }
                let (verdict, timeout) = match state {
                    OtherState::First => (Update::ValidNew, Timeout::OtherFirst),
                    OtherState::Multiple => (Update::ValidNew, Timeout::OtherMultiple),
                    OtherState::Bidir => (Update::Valid, Timeout::OtherBidir),
                };
                (verdict, Some(timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_goes_first_multiple_bidir() {
        let pkt = CtPacket::default();
        let mut s = ProtoState::Other(OtherState::First);
        assert_eq!(
            s.update(&pkt, false, true),
            (Update::ValidNew, Some(Timeout::OtherMultiple))
        );
        assert_eq!(
            s.update(&pkt, true, true),
            (Update::Valid, Some(Timeout::OtherBidir))
        );
        assert_eq!(
            s.update(&pkt, false, true),
            (Update::Valid, Some(Timeout::OtherBidir))
        );
    }

    #[test]
    fn icmp_goes_first_reply() {
        let pkt = CtPacket::default();
        let mut s = ProtoState::Icmp(IcmpState::First);
        assert_eq!(
            s.update(&pkt, false, true),
            (Update::ValidNew, Some(Timeout::IcmpFirst))
        );
        assert_eq!(
            s.update(&pkt, true, true),
            (Update::Valid, Some(Timeout::IcmpReply))
        );
        assert_eq!(
            s.update(&pkt, false, true),
            (Update::Valid, Some(Timeout::IcmpReply))
        );
    }
}
