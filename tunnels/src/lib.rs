//! VXLAN and Geneve tunnels for vecswitch: the header formats (`wire`).
#![forbid(unsafe_code)]

pub mod wire;
