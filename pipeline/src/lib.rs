//! The packet pipeline of vecswitch: buffers, batches, the parser that fills a [`FlowKey`],
//! the [`Node`] trait with its graph dispatcher, datapath actions and the [`Clock`].
//!
//! This crate knows no I/O: ports live in `ports` and `vhost-user`, features in their own crates.
#![deny(unsafe_code)]

pub mod actions;
pub mod buffer;
pub mod checksum;
pub mod clock;
pub mod cycles;
pub mod dpaction;
pub mod field;
pub mod flowkey;
pub mod graph;
pub mod loss;
pub mod memory;
pub mod packet_in;
pub mod parse;
pub mod sink;
pub mod txq;
pub mod upcall;
pub mod wire;

pub use buffer::{
    frame_size_for_mtu, PacketId, PacketMeta, PacketPool, FRAME_OVERHEAD, HEADROOM, MAX_PACKET,
};
pub use clock::{Clock, MonotonicClock, VirtualClock};
pub use dpaction::{
    DpAction, ExecDrop, Fragments, Header, PushHeader, ToController, Track, Tracker, MAX_RECIRCS,
};
pub use field::FieldId;
pub use flowkey::FlowKey;
pub use graph::{Ctx, Graph, Next, Node, NodeReport, NodeStats, MAX_BATCH};
pub use loss::{Direction, PortLoss, PortLosses};
pub use memory::FrameMemory;
pub use packet_in::{BoundedQueue, PacketIn, PacketInContext, PacketInQueue, PacketInReason};
pub use parse::{parse_packet, parse_packet_limit, Parse, ParseError, VlanLimit};
pub use sink::{send_copies, RxSink, Sent};
pub use txq::TxQueues;
pub use upcall::{RuleChange, StatsSink, Upcall, UpcallResult, REWRITTEN_ALL};
