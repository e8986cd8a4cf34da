//! The underlay of the tunnels: what the encap side needs to send an encapsulated frame to a
//! remote VTEP, as Open vSwitch's userspace native tunneling finds it: the output bridge,
//! source address and next hop of the remote, and the next hop's MAC. This part holds the
//! prefixes and bridge addresses the route verbs write.

pub mod prefix;

pub use prefix::{BridgeAddr, Prefix, PrefixError};
