//! NetFlow v5 of vecswitch, with Open vSwitch's semantics field by field (its
//! `ofproto/netflow.c`). Records are fed from the statistics the classifier already keeps per
//! megaflow (a [`FlowSink`] among each megaflow's stats sinks, credited once per batch), never
//! from a per-packet hash: with NetFlow on, translation matches the NetFlow key fields exactly
//! in every IPv4 megaflow ([`mask_wc`]), as OVS's `netflow_mask_wc` does, so one megaflow
//! feeds one record. See README.md.
#![forbid(unsafe_code)]

pub mod bridge;
pub mod collectors;
pub mod exporter;
pub mod options;
pub mod print;
pub mod sink;
pub mod wire;

pub use bridge::{BridgeNetflow, NetflowStatus};
pub use exporter::{
    Exporter, ExporterStats, FlowStats, NetflowKey, NF_OUT_DROP, NF_OUT_FLOOD, NF_OUT_MULTI,
};
pub use options::{NetflowOptions, OptionsError, DEFAULT_ACTIVE_TIMEOUT_S};
pub use sink::FlowSink;

use pipeline::flowkey::{ethertype, ipproto};
use pipeline::FlowKey;

/// The NetFlow key of an IPv4 flow (`key.in_port` as the bridge numbers it); `None` for
/// anything else, which NetFlow does not report.
pub fn netflow_key(key: &FlowKey) -> Option<NetflowKey> {
    (key.dl_type == ethertype::IPV4).then_some(NetflowKey {
        in_port: key.in_port as u16,
        nw_src: key.nw_src,
        nw_dst: key.nw_dst,
        nw_tos: key.nw_tos & exporter::IP_DSCP_MASK,
        nw_proto: key.nw_proto,
        tp_src: key.tp_src,
        tp_dst: key.tp_dst,
    })
}

/// Makes an IPv4 megaflow match the NetFlow key fields of `key` exactly (OVS
/// `netflow_mask_wc`): addresses, protocol, ports (ICMP: type and code), DSCP. Every
/// megaflow matches the EtherType: OVS's translation always matches it (`dl_type` in
/// `compose_output_action__`), vecswitch's only when the rules read it, and without it the
/// megaflow of an ARP reply would take the IPv4 packets that follow it, whose records then
/// nobody would count.
pub fn mask_wc(key: &FlowKey, mask: &mut FlowKey) {
    mask.dl_type = u16::MAX;
    if key.dl_type != ethertype::IPV4 {
        return;
    }
    mask.nw_proto = u8::MAX;
    mask.nw_src = u32::MAX;
    mask.nw_dst = u32::MAX;
    if key.nw_proto == ipproto::ICMP {
        mask.tp_src |= 0xff;
        mask.tp_dst |= 0xff;
    } else {
        mask.tp_src = u16::MAX;
        mask.tp_dst = u16::MAX;
    }
    mask.nw_tos |= exporter::IP_DSCP_MASK;
}
