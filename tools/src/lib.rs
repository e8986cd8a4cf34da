//! The tools around the switch: `pktgen` (an AF_XDP packet generator and receiver with
//! latency, and its no-drop rate search, `ndr`), network-namespace helpers for containers (`netns`, `vecswitch attach`), probes
//! that run ping and TCP transfers in them (`probe`), the live `demo`, the pcap replay of
//! scenario directories (`scenario`, `replay`), the virtio-user container command line
//! (`virtio_user`) and standard output that a closed pipe does not break (`out`). None of it
//! is on the switch's data path.
#![deny(unsafe_code)]

pub mod demo;
pub mod loss_account;
pub mod ndr;
pub mod netflow_capture;
pub mod netns;
pub mod out;
pub mod pktgen;
pub mod probe;
pub mod replay;
pub mod scenario;
pub mod virtio_user;
