//! The underlay of the tunnels: what the encap side needs to send an encapsulated frame to a
//! remote VTEP, as Open vSwitch's userspace native tunneling finds it. The [`RouteTable`]
//! (connected routes from the bridges' addresses, user routes from `route-add`) gives the
//! output bridge, the source address and the next hop of the remote. It is plain data shared
//! by threads, with a generation counter that moves when a lookup may answer differently; it
//! holds no ports and does no I/O. The verbs' parsers and their text output are here too; the
//! control socket wires them.

pub mod prefix;
pub mod route;

pub use prefix::{BridgeAddr, Prefix, PrefixError};
pub use route::{
    parse_route_del, NextHop, RouteError, RouteInfo, RouteKind, RouteSpec, RouteTable,
};
