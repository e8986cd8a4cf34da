//! Datapath actions: what a megaflow does to its packets.
//!
//! OpenFlow translation produces a list of these per megaflow; `pipeline::actions` executes
//! them over a group of packets at once. They are deliberately lower-level than OpenFlow
//! actions (no tables, no NORMAL, no resubmit): translation has already resolved those.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::buffer::{PacketId, PacketMeta, PacketPool};
use crate::packet_in::{PacketInContext, PacketInQueue};

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
    /// The IPv6 flow label (20 bits).
    SetIpv6Label(u32),
    /// DSCP: the high 6 bits of the TOS / traffic class byte, given already shifted (`tos & 0xfc`).
    SetIpDscp(u8),
    /// ECN: the low 2 bits.
    SetIpEcn(u8),
    SetIpTtl(u8),
    /// ARP (Ethernet/IPv4) opcode, sender and target protocol and hardware addresses.
    SetArpOp(u16),
    SetArpSpa(u32),
    SetArpTpa(u32),
    SetArpSha([u8; 6]),
    SetArpTha([u8; 6]),
    /// TCP / UDP / SCTP source port.
    SetTpSrc(u16),
    SetTpDst(u16),
    /// The ICMP or ICMPv6 type, and the code; fix the ICMP checksum.
    SetIcmpType(u8),
    SetIcmpCode(u8),
    /// Neighbour discovery (RFC 4861): the target address of a solicitation or advertisement,
    /// and the source and target link-layer address options, as Open vSwitch's `set(nd(...))`
    /// writes them: an address goes into the first link-layer address option (of length 1)
    /// when that option is of its kind, and nowhere else. The ICMPv6 checksum is fixed.
    SetNdTarget([u8; 16]),
    SetNdSll([u8; 6]),
    SetNdTll([u8; 6]),
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
    /// A copy for the controller (OpenFlow's `controller` action): queued as a packet-in,
    /// the packet going on with the actions after it.
    Controller(ToController),
    /// Send the packet back to classification with `recirc_id` set (after `Ct`). Ends the
    /// list; inside a [`DpAction::Clone`] it sends the copy (OVS's `recirc` before more
    /// actions). A packet recirculated [`MAX_RECIRCS`] times already is dropped as
    /// `recirc-too-deep`.
    Recirc(u32),
    /// Connection tracking (OVS's `ct(...)`): sets each packet's `ct_state`, `ct_zone`,
    /// `ct_mark` and `ct_label` (and translates its addresses for NAT).
    Ct(Tracker),
    /// Run these actions on a copy of the packet (on the packet itself when nothing follows)
    /// and go on with the packet as it was: Open vSwitch's `clone()`. An output to a tunnel
    /// port is one: the encapsulated copy goes through the underlay bridge's outputs.
    Clone(Box<[DpAction]>),
    /// Put a tunnel's outer headers in front of the packet (OVS `tnl_push`); the key still
    /// describes the inner frame (later actions other than outputs read the outer one again).
    TunnelPush(Header),
    /// Drop the packet, counted as the reason, unless an earlier output took it. Ends the list.
    Drop(ExecDrop),
}

impl DpAction {
    /// Pushes onto `out` the recirculation ids that `actions` send packets to, those of
    /// clones included.
    pub fn recirc_ids(actions: &[DpAction], out: &mut Vec<u32>) {
        for a in actions {
            match a {
                DpAction::Recirc(id) => out.push(*id),
                DpAction::Clone(inner) => DpAction::recirc_ids(inner, out),
                _ => {}
            }
        }
    }
}

/// How many times a packet may be recirculated (Open vSwitch's `MAX_RECIRC_DEPTH`).
pub const MAX_RECIRCS: u8 = 6;

/// What a [`DpAction::Ct`] runs: one `ct()` action's arguments (zone, commit, what to set,
/// NAT) over the shared connection table, built once per megaflow by the `conntrack` crate.
pub trait Track: Send + Sync + 'static {
    /// Tracks the packets `pkts` (one megaflow's, in order): writes each key's conntrack
    /// fields, rewrites NAT'ed headers; a packet to drop gets its reason in `drops` (same
    /// index), the others are left `None`. IP fragments are reassembled first (OVS's ipf): a
    /// fragment the tracker holds is listed in `frags.held`, and the fragments of a datagram
    /// it completed and tracked come back in `frags.released` ([`Fragments`]).
    fn track(
        &self,
        pool: &mut PacketPool,
        pkts: &[PacketId],
        now_ns: u64,
        drops: &mut [Option<ExecDrop>],
        frags: &mut Fragments,
    );
    /// The action as `dump-megaflows` prints it (OVS's `ct(commit,zone=1,...)`); two trackers
    /// that print alike do the same.
    fn describe(&self) -> String;
}

/// What a [`Track`] did with IP fragments, besides passing or dropping packets: a third
/// outcome, held, and packets it gives back. Empty (and allocation-free) unless a fragment
/// came by.
#[derive(Debug, Default)]
pub struct Fragments {
    /// Indices into `pkts` of the fragments the tracker holds (it kept a copy): the executor
    /// frees them and they leave the group, neither sent nor dropped.
    pub held: Vec<u16>,
    /// Fragments of datagrams completed by this call, new packets of the pool in offset
    /// order, carrying the tracked datagram's conntrack fields (and NAT): they go on with the
    /// actions after the `ct()`, or are dropped with the reason given (the datagram's
    /// tracking refused it).
    pub released: Vec<(PacketId, Option<ExecDrop>)>,
}

impl Fragments {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.released.is_empty()
    }
}

/// Where a [`DpAction::Controller`] sends packets (the bridge's queue) and what it tells the
/// controller with each, frozen by translation. Equal when they say the same to the same
/// queue.
#[derive(Clone)]
pub struct ToController {
    pub context: Arc<PacketInContext>,
    pub queue: Arc<PacketInQueue>,
}

impl PartialEq for ToController {
    fn eq(&self, other: &ToController) -> bool {
        self.context == other.context && Arc::ptr_eq(&self.queue, &other.queue)
    }
}

impl Eq for ToController {}

impl Hash for ToController {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.context.hash(state);
    }
}

impl fmt::Debug for ToController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.context)
    }
}

/// A shared [`Track`], compared and hashed by its description.
#[derive(Clone)]
pub struct Tracker(pub Arc<dyn Track>);

impl PartialEq for Tracker {
    fn eq(&self, other: &Tracker) -> bool {
        self.0.describe() == other.0.describe()
    }
}

impl Eq for Tracker {}

impl Hash for Tracker {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.describe().hash(state);
    }
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}

/// A header that [`DpAction::TunnelPush`] puts in front of packets: a tunnel's outer
/// Ethernet, IP, UDP and tunnel headers, built once per megaflow by the `tunnels` crate,
/// which owns the formats.
pub trait PushHeader: Send + Sync + 'static {
    /// The header as built: equal templates (and [`PushHeader::checksummed`]) push equal headers.
    fn template(&self) -> &[u8];
    /// Whether a UDP checksum is computed per packet.
    fn checksummed(&self) -> bool;
    /// Puts the header in front of packet `id`; a packet that cannot take it is dropped with
    /// the reason returned.
    fn push(&self, pool: &mut PacketPool, id: PacketId) -> Result<(), ExecDrop>;
    /// For a packet `push` refused as [`ExecDrop::TunnelTooBig`]: the frame that tells its
    /// sender (ICMP "fragmentation needed", ICMPv6 "packet too big"), sent back out of the
    /// port it came in on; `None` when it gets none.
    fn too_big_reply(&self, _frame: &[u8], _meta: &PacketMeta) -> Option<Vec<u8>> {
        None
    }
    /// The action as `dump-megaflows` prints it (OVS's `tnl_push(...)`).
    fn describe(&self) -> String;
    /// The port the packets it pushes are counted as sent by (a tunnel port's datapath
    /// number); 0: none.
    fn port(&self) -> u32 {
        0
    }
    /// The largest outer packet it lets through (an MTU); 0: not checked.
    fn mtu(&self) -> u16 {
        0
    }
}

/// A shared [`PushHeader`], compared by what it pushes and counts (template, checksum, port,
/// MTU) and hashed by its template.
#[derive(Clone)]
pub struct Header(pub Arc<dyn PushHeader>);

impl PartialEq for Header {
    fn eq(&self, other: &Header) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.template() == b.template()
            && a.checksummed() == b.checksummed()
            && a.port() == b.port()
            && a.mtu() == b.mtu()
    }
}

impl Eq for Header {}

impl Hash for Header {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.template().hash(state);
        self.0.checksummed().hash(state);
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}

/// Why action execution dropped a packet; the names are the drop-reason counter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ExecDrop {
    /// The actions ended without any output (an OpenFlow `drop`, or no matching rule).
    NoOutput = 0,
    TtlExceeded,
    NoSuchPort,
    /// No free buffer for a copy (flooding).
    NoBuffers,
    /// A push_vlan on a frame that already has two VLAN headers, or a set on an absent header.
    BadHeader,
    /// An output to a tunnel port whose remote no route reaches.
    TunnelNoRoute,
    /// An output to a tunnel port whose next hop's MAC is not known yet (an ARP request or
    /// neighbour solicitation went out; the packet is not held).
    TunnelNeighMiss,
    /// A packet with too little headroom for the tunnel header.
    TunnelNoHeadroom,
    /// An encapsulated packet longer than IPv4 allows.
    TunnelTooLong,
    /// An encapsulated packet longer than the underlay port's MTU.
    TunnelTooBig,
    /// A packet recirculated [`MAX_RECIRCS`] times already.
    RecircTooDeep,
    /// Connection tracking refused it: the table (or the zone) is full for a new
    /// connection, or NAT found no free address and port.
    CtRefused,
    /// Received on a port an OpenFlow PORT_MOD took down (`OFPPC_PORT_DOWN`).
    PortDown,
    /// Received on a port set not to receive (`OFPPC_NO_RECV`).
    PortNoRecv,
}

impl ExecDrop {
    /// Counter names, indexed by the enum value.
    pub const NAMES: [&'static str; 14] = [
        "no-output",
        "ttl-exceeded",
        "no-such-port",
        "no-buffers",
        "bad-header",
        "tunnel-no-route",
        "tunnel-neigh-miss",
        "tunnel-no-headroom",
        "tunnel-too-long",
        "tunnel-too-big",
        "recirc-too-deep",
        "ct-refused",
        "port-down",
        "port-no-recv",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}
