//! Datapath actions: what a megaflow does to its packets.
//!
//! OpenFlow translation produces a list of these per megaflow; `pipeline::actions` executes
//! them over a group of packets at once. They are deliberately lower-level than OpenFlow
//! actions (no tables, no NORMAL, no resubmit): translation has already resolved those.

/// One datapath action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DpAction {
    /// Transmit a copy of the packet, as it is at this point, on a port.
    Output(u32),
    SetEthSrc([u8; 6]),
    SetEthDst([u8; 6]),
    /// IPv4 source (host-order number); fixes the IP and L4 checksums incrementally.
    SetIpv4Src(u32),
    SetIpv4Dst(u32),
    SetIpv6Src([u8; 16]),
    SetIpv6Dst([u8; 16]),
    /// DSCP: the high 6 bits of the TOS / traffic class byte, given already shifted (`tos & 0xfc`).
    SetIpDscp(u8),
    /// ECN: the low 2 bits.
    SetIpEcn(u8),
    SetIpTtl(u8),
    /// TCP / UDP / SCTP source port.
    SetTpSrc(u16),
    SetTpDst(u16),
    /// Push an 802.1Q (0x8100) or 802.1ad (0x88a8) header; `tci` without the present bit.
    PushVlan {
        tpid: u16,
        tci: u16,
    },
    /// Remove the outermost VLAN header.
    PopVlan,
    /// Set the VLAN id of the outermost VLAN header.
    SetVlanVid(u16),
    /// Set the priority of the outermost VLAN header.
    SetVlanPcp(u8),
    /// Decrement the IPv4 TTL / IPv6 hop limit; a packet whose TTL would reach 0 is dropped
    /// (counted as `ttl-exceeded`).
    DecTtl,
    /// To the controller: there is none yet, so this is a drop counted as `controller`.
    Controller,
    /// Send the packet back to classification with `recirc_id` set (conntrack and tunnels).
    Recirc(u32),
}

/// Why action execution dropped a packet; the names are the drop-reason counter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ExecDrop {
    /// The actions ended without any output (an OpenFlow `drop`, or no matching rule).
    NoOutput = 0,
    TtlExceeded,
    NoSuchPort,
    /// No free buffer for a copy (flooding).
    NoBuffers,
    Controller,
    /// A push_vlan on a frame that already has two VLAN headers, or a set on an absent header.
    BadHeader,
}

impl ExecDrop {
    /// Counter names, indexed by the enum value.
    pub const NAMES: [&'static str; 6] = [
        "no-output",
        "ttl-exceeded",
        "no-such-port",
        "no-buffers",
        "controller",
        "bad-header",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}
