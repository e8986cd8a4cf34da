//! The switch itself: one [`switch::Switch`] per bridge and PMD (packet pool, graph, caches),
//! the PMD threads that poll port queues into it ([`daemon::pmd`]), their placement, and the
//! [`daemon::Daemon`], the control thread's state (bridges, ports, PMDs). It wires the
//! feature crates (`flowcache`, `openflow`) into the graph and opens ports through the
//! `ports` registry; it has no socket, no config file and no CLI (those are `control` and
//! the `vecswitch` binary).
#![deny(unsafe_code)]

pub mod daemon;
pub mod switch;
