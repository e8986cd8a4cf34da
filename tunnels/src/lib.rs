//! VXLAN (RFC 7348) and Geneve (RFC 8926) tunnels for vecswitch, sent and received as Open
//! vSwitch's userspace "native tunneling" does: the header formats (`wire`), the per-packet
//! decapsulation of a parsed outer frame (`decap`: checks, tunnel metadata into the key, the
//! inner frame parsed again), encapsulation through a header template built once per flow
//! (`encap`), and the underlay (`underlay`): for a remote VTEP, which bridge to send from,
//! with which source address, and to which next-hop MAC.
//!
//! The `tunnel-decap` graph node (`tunnel_decap`) runs the decapsulation between `parse` and
//! `classify`. Output to a tunnel port (`output`) resolves the route and the neighbour and builds the
//! header the `TunnelPush` datapath action puts on each packet.
#![forbid(unsafe_code)]

pub mod decap;
pub mod encap;
pub mod option_store;
pub mod output;
pub mod too_big;
pub mod tunnel_decap;
pub mod underlay;
pub mod wire;

#[cfg(test)]
mod fixtures;

pub use decap::{
    check_critical_options, Decap, DecapConfig, DecapDrop, TunnelKind, TunnelMetadata,
};
pub use encap::{udp_src_port, EncapDrop, EncapParams, TunnelHeader};
pub use option_store::OptionStore;
pub use output::{resolve, LocalIp, Resolved, TunnelOutput};
pub use tunnel_decap::{
    SnoopBridge, TunnelConfigError, TunnelDecap, TunnelDecapConfig, TunnelDecapStats,
    TunnelPortConfig, VtepEndpoint,
};
