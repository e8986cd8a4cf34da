//! Connection tracking for vecswitch, with Open vSwitch's userspace semantics
//! (`lib/conntrack*.c`): a [`ConnTable`] shared by every PMD thread, TCP tracking as strict as
//! OVS's (pf's window checks), UDP and other protocols, ICMP and ICMPv6 queries and errors,
//! zones, marks, labels, per-state timeouts, global and per-zone limits, a bounded sweep and
//! `dump-conntrack` output, NAT (source and destination, address and port ranges, IPv4 and
//! IPv6, ICMP errors' quoted headers), IP fragment reassembly (`ipf`) and the datapath's
//! `ct()` action.
#![forbid(unsafe_code)]

pub mod dump;
pub mod ipf;
pub mod key;
pub mod nat;
pub mod outcome;
pub mod packet;
mod proto;
mod rewrite;
mod shard;
pub mod table;
pub mod tcp;
pub mod timeouts;
pub mod track;

pub use dump::ConnEntry;
pub use ipf::{Ipf, IpfCounter, IpfError, IpfStatus};
pub use key::{ConnKey, CtAddr, Family, KeyHasher};
pub use nat::{CtNat, NatKind, NatRange, NatRewrite};
pub use outcome::{CtEvent, CtInvalid, CtOutcome};
pub use packet::{tcp_flags, tcp_wscale_option, CtPacket, IcmpHeader, QuotedHeader, TcpSegment};
pub use shard::ShardStats;
pub use table::{ConnTable, CtConfig, CtExec, CtStats, DEFAULT_MAX_CONNS, SHARDS};
pub use tcp::TcpState;
pub use timeouts::{Timeout, TimeoutPolicy};
pub use track::{ct_packet, CtTracker};
