//! The vecswitch daemon and CLI: graph wiring, ports and replay. This is the only crate that
//! does I/O; the feature crates it wires know nothing of ports.
#![deny(unsafe_code)]

pub mod afpacket;
pub mod afxdp;
pub mod bridge;
pub mod daemon;
pub mod demo;
pub mod netns;
pub mod netsys;
pub mod pcapio;
pub mod pktgen;
pub mod ports;
pub mod probe;
pub mod replay;
pub mod scenario;
pub mod switch;
pub mod traffic;
pub mod virtio_user;
