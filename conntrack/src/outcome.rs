//! What tracking one packet gives back: the `ct_state` bits the flow tables match on, the
//! connection's mark and label, its original-direction tuple, and what happened (for the
//! caller's per-reason counters: the per-packet path formats nothing and counts nothing
//! shared).

use pipeline::flowkey::ct_state;

use crate::key::ConnKey;
use crate::nat::NatRewrite;

/// Why a packet is `+inv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtInvalid {
    /// No key could be taken from the headers (port 0, bad ICMP type or code, an ICMP error
    /// that quotes nothing usable).
    BadHeader,
    /// An ICMP error that quotes no tracked connection.
    UnrelatedIcmpError,
    /// Not a packet that may open a connection (a SYN-ACK, an echo reply, bad TCP flags).
    CannotOpen,
    /// A flag combination TCP forbids (OVS `tcp_invalid_flags`).
    TcpFlags,
    /// A segment outside the window the tracker allows.
    TcpWindow,
}

impl CtInvalid {
    /// The reason's counter name, after the node's name (`ct.<reason>`).
    pub const fn name(self) -> &'static str {
        match self {
            CtInvalid::BadHeader => "bad-header",
            CtInvalid::UnrelatedIcmpError => "unrelated-icmp-error",
            CtInvalid::CannotOpen => "cannot-open",
            CtInvalid::TcpFlags => "tcp-flags",
            CtInvalid::TcpWindow => "tcp-window",
        }
    }
}

/// What the packet did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CtEvent {
    /// Nothing beyond the state bits.
    #[default]
    None,
    /// A new connection was committed.
    Committed,
    /// A commit was refused: the table holds its global limit of connections.
    TableFull,
    /// A commit was refused: the zone holds its limit of connections.
    ZoneFull,
    /// A commit was refused: no translated tuple of the NAT range is free (OVS's "tuple
    /// space exhaustion").
    NatExhausted,
    /// A commit without NAT was refused: its reply key is another connection's (the
    /// translated tuple of a NAT'ed one).
    ReplyTaken,
    /// The packet is `+inv`, for this reason.
    Invalid(CtInvalid),
}

/// The result of tracking one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CtOutcome {
    /// `ct_state` bits: always `TRACKED`, plus `NEW`, `ESTABLISHED`, `RELATED`, `REPLY` or
    /// `INVALID`, and `SRC_NAT` or `DST_NAT` when the packet is to be translated.
    pub state: u8,
    pub zone: u16,
    pub mark: u32,
    pub label: u128,
    /// The original-direction tuple of the connection (of the packet itself when there is no
    /// connection), as OVS's `ct_orig_tuple`; `None` when no key could be extracted.
    pub orig: Option<ConnKey>,
    pub event: CtEvent,
    /// How to rewrite the packet: its connection is NAT'ed and the action has a `nat`.
    pub nat: Option<NatRewrite>,
}

impl CtOutcome {
    /// `+trk+inv` for `reason`.
    pub(crate) fn invalid(zone: u16, orig: Option<ConnKey>, reason: CtInvalid) -> CtOutcome {
        CtOutcome {
            state: ct_state::TRACKED | ct_state::INVALID,
            zone,
            orig,
            event: CtEvent::Invalid(reason),
            ..CtOutcome::default()
        }
    }

    /// True when every bit of `bits` is set.
    pub fn has(&self, bits: u8) -> bool {
        self.state & bits == bits
    }

    /// The state as OVS prints it in a flow's `ct_state` match, e.g. `+trk+est+rpl`.
    pub fn state_string(&self) -> String {
        const NAMES: [(u8, &str); 8] = [
            (ct_state::NEW, "new"),
            (ct_state::ESTABLISHED, "est"),
            (ct_state::RELATED, "rel"),
            (ct_state::REPLY, "rpl"),
            (ct_state::INVALID, "inv"),
            (ct_state::TRACKED, "trk"),
            (ct_state::SRC_NAT, "snat"),
            (ct_state::DST_NAT, "dnat"),
        ];
        // OVS orders trk first in its examples; keep one fixed order.
        let mut s = String::new();
        if self.state & ct_state::TRACKED != 0 {
            s.push_str("+trk");
        }
        for (bit, name) in NAMES {
            if bit != ct_state::TRACKED && self.state & bit != 0 {
                s.push('+');
                s.push_str(name);
            }
        }
        s
    }
}
