//! VXLAN and Geneve tunnels for vecswitch: the header formats (`wire`) and the per-packet
//! decapsulation of a parsed outer frame (`decap`: checks, tunnel metadata into the key, the
//! inner frame parsed again).
#![forbid(unsafe_code)]

pub mod decap;
pub mod wire;

#[cfg(test)]
mod fixtures;

pub use decap::{
    check_critical_options, Decap, DecapConfig, DecapDrop, TunnelKind, TunnelMetadata,
};
