//! The switch itself: one [`switch::Switch`] per PMD for every bridge (packet pool, graph,
//! caches; ports by datapath port number), the PMD threads that poll port queues into it
//! ([`daemon::pmd`]), their placement, and the [`daemon::Daemon`], the control thread's state
//! (bridges, ports and their datapath numbers, PMDs). It wires the
//! feature crates (`flowcache`, `openflow`, `tunnels`) into the graph and opens ports through the
//! `ports` registry; it has no socket, no config file and no CLI (those are `control` and
//! the `vecswitch` binary).
#![deny(unsafe_code)]

pub mod conntrack;
pub mod daemon;
pub mod packet_out;
pub mod switch;
pub mod tunnel_ports;
