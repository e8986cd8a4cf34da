//! The underlay of the tunnels: what the encap side needs to send an encapsulated frame to a
//! remote VTEP, as Open vSwitch's userspace native tunneling finds it. The [`RouteTable`]
//! (connected routes from the bridges' addresses, user routes from `route-add`) gives the
//! output bridge, the source address and the next hop of the remote; the [`NeighTable`]
//! (static entries from `neigh-add`, dynamic ones snooped from ARP and neighbour
//! advertisements) gives the next hop's MAC, or [`arp_request`] / [`nd_solicit`] the frame
//! that asks for it. Both are plain data structures shared by threads, with a generation
//! counter each that moves when a lookup may answer differently; they hold no ports and do
//! no I/O. The verbs' parsers and their text output are here too; the control socket wires
//! them.

pub mod neigh;
pub mod prefix;
pub mod route;

pub use neigh::{
    arp_request, format_mac, nd_solicit, parse_neigh_del, solicited_node, Learn, NeighError,
    NeighInfo, NeighKind, NeighSpec, NeighTable, Snoop,
};
pub use prefix::{BridgeAddr, Prefix, PrefixError};
pub use route::{
    parse_route_del, NextHop, RouteError, RouteInfo, RouteKind, RouteSpec, RouteTable,
};
