//! VXLAN and Geneve tunnels for vecswitch: the header formats (`wire`), the per-packet
//! decapsulation of a parsed outer frame (`decap`: checks, tunnel metadata into the key, the
//! inner frame parsed again) and encapsulation through a prebuilt header template (`encap`,
//! as Open vSwitch's native tunnels push a header built once per flow).
//!
//! No graph node, port or control verb lives here yet: the `tunnel-decap` / `tunnel-encap`
//! nodes, the tunnel ports and their config call these functions (see `README.md`).
#![forbid(unsafe_code)]

pub mod decap;
pub mod encap;
pub mod wire;

#[cfg(test)]
mod fixtures;

pub use decap::{
    check_critical_options, Decap, DecapConfig, DecapDrop, TunnelKind, TunnelMetadata,
};
pub use encap::{udp_src_port, EncapDrop, EncapParams, TunnelHeader};
