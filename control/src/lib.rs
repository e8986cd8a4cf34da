//! The control plane of the daemon: the unix control socket and its request/response
//! protocol ([`socket`]), the verbs it serves ([`commands`]: `add-port`, `dump-flows`,
//! `pmd-stats`, ...) and their help ([`help`]), the client side that `vecswitch VERB` uses ([`client`]), and the TOML
//! configuration ([`config`]); and the daemon's side of the OpenFlow connections
//! ([`openflow_conn`]). Every verb is a call on `datapath`'s `Daemon`; nothing here
//! touches a packet.
#![deny(unsafe_code)]

pub mod client;
pub mod commands;
pub mod config;
pub mod help;
pub mod openflow_conn;
pub mod socket;
