//! Output to a tunnel port, as Open vSwitch's native tunneling does it when it translates a
//! flow (`native_tunnel_output` in `ofproto/ofproto-dpif-xlate.c`): the tunnel port's config
//! and the flow's tunnel metadata give the remote and the VNI, the [`RouteTable`] the bridge
//! to send from and the source address, the [`NeighTable`] the next hop's MAC; from those a
//! [`TunnelHeader`] is built once for the megaflow. What comes out is the header and the
//! outer flow to translate through the underlay bridge from its LOCAL port, or why the
//! packet cannot be sent (no route; no MAC yet, with the ARP request that asks for it).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use pipeline::flowkey::{ethertype, ipproto, TUN_FLAG_OAM, TUN_FLAG_PRESENT, TUN_OPTS_LEN};
use pipeline::FlowKey;

use crate::decap::TunnelKind;
use crate::encap::{EncapParams, TunnelHeader};
use crate::underlay::{arp_request, NeighTable, RouteTable};

/// Where a tunnel port takes the outer source address from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalIp {
    /// The route's source address (no `local_ip`).
    Route,
    /// `local_ip=IP`.
    Fixed(Ipv4Addr),
    /// `local_ip=flow`: the flow's `tun_src`.
    Flow,
}

/// A `type=vxlan|geneve` port as packets are sent out of it; `None` in an `Option` field is
/// OVS's `flow` (from the flow's tunnel metadata) or `inherit` (from the inner IP header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelOutput {
    pub kind: TunnelKind,
    /// `remote_ip`; `None`: `remote_ip=flow` (the flow's `tun_dst`).
    pub remote: Option<Ipv4Addr>,
    pub local: LocalIp,
    /// `out_key`; `None`: `key=flow` (the flow's `tun_id`).
    pub out_key: Option<u32>,
    pub dst_port: u16,
    /// `ttl`; `None`: `inherit`.
    pub ttl: Option<u8>,
    /// `tos`; `None`: `inherit`.
    pub tos: Option<u8>,
    pub df: bool,
    pub csum: bool,
}

impl TunnelOutput {
    /// Adds to `mask` what sending `key` reads of it, so that its megaflow matches those
    /// bits: for a packet that came from a tunnel, the tunnel words a flow-based port takes
    /// (and Geneve's options and O bit); the IP header's TTL and DSCP when inherited, and its
    /// ECN bits, which are always inherited. (Another packet's tunnel words are 0, or what
    /// the actions set: nothing of the packet.)
    pub fn mask_reads(&self, key: &FlowKey, mask: &mut FlowKey) {
        if key.tun_flags & TUN_FLAG_PRESENT != 0 {
            if self.remote.is_none() {
                mask.tun_dst = u32::MAX;
            }
            if self.out_key.is_none() {
                mask.tun_id = u64::MAX;
            }
            if self.local == LocalIp::Flow {
                mask.tun_src = u32::MAX;
            }
            if self.kind == TunnelKind::Geneve {
                mask.tun_flags |= TUN_FLAG_OAM;
                mask.tun_opts_len = u8::MAX;
                mask.tun_opts = [u8::MAX; TUN_OPTS_LEN];
            }
        }
        mask.dl_type = u16::MAX;
        if key.is_ip() {
            mask.nw_tos |= ECN_MASK;
            if self.tos.is_none() {
                mask.nw_tos |= DSCP_MASK;
            }
            if self.ttl.is_none() {
                mask.nw_ttl = u8::MAX;
            }
        }
    }

    /// The outer TOS byte for an inner flow `key`, as OVS's `tnl_port_send`: the configured
    /// one or (`inherit`) the inner DSCP, and the inner ECN bits always, CE sent as ECT(0)
    /// (RFC 6040's normal mode).
    pub fn outer_tos(&self, key: &FlowKey) -> u8 {
        if !key.is_ip() {
            return self.tos.unwrap_or(0);
        }
        let tos = self.tos.unwrap_or(key.nw_tos & DSCP_MASK) & DSCP_MASK;
        let ecn = match key.nw_tos & ECN_MASK {
            ECN_CE => ECN_ECT0,
            e => e,
        };
        tos | ecn
    }

    /// The outer TTL for an inner flow `key`: the configured one or (`inherit`) the inner.
    pub fn outer_ttl(&self, key: &FlowKey) -> u8 {
        match self.ttl {
            Some(t) => t,
            None if key.is_ip() => key.nw_ttl,
            None => DEFAULT_TTL,
        }
    }
}

/// The DSCP bits of the TOS byte.
const DSCP_MASK: u8 = 0xfc;
/// The ECN bits, and two of their values.
const ECN_MASK: u8 = 0x03;
const ECN_CE: u8 = 0x03;
const ECN_ECT0: u8 = 0x02;
/// The outer TTL of a non-IP inner frame when the port inherits it (OVS's default TTL).
const DEFAULT_TTL: u8 = 64;

/// What sending a flow out of a tunnel port comes to.
#[derive(Clone, Debug)]
pub enum Resolved {
    /// Push `header` and translate `outer` (its `in_port` is the caller's to set) through
    /// `bridge`.
    Send {
        header: Box<TunnelHeader>,
        bridge: Arc<str>,
        outer: Box<FlowKey>,
    },
    /// No route to the remote (or an IPv6 one: no IPv6 underlay yet).
    NoRoute,
    /// No MAC for the next hop: `request` is the ARP request to send into `bridge` from its
    /// LOCAL port.
    NeighMiss { bridge: Arc<str>, request: Vec<u8> },
    /// The header cannot be built (a remote of 0.0.0.0, Geneve options too long).
    Invalid,
}

/// Resolves output to `port` for a flow that is `key` at the point of output (its tunnel
/// words as the actions left them), with Geneve `options` as on the wire (ignored for
/// VXLAN). `bridge_mac` gives the MAC of a bridge's LOCAL port, the outer source MAC; a
/// bridge without one cannot send.
pub fn resolve(
    port: &TunnelOutput,
    key: &FlowKey,
    options: &[u8],
    routes: &RouteTable,
    neighs: &NeighTable,
    bridge_mac: impl Fn(&str) -> Option<[u8; 6]>,
    now_ns: u64,
) -> Resolved {
    let remote = port.remote.unwrap_or(Ipv4Addr::from_bits(key.tun_dst));
    if remote.is_unspecified() || remote.is_broadcast() || remote.is_multicast() {
        return Resolved::Invalid;
    }
    let Some(hop) = routes.lookup(IpAddr::V4(remote)) else {
        return Resolved::NoRoute;
    };
    let IpAddr::V4(route_src) = hop.src else {
        return Resolved::NoRoute;
    };
    let Some(src_mac) = bridge_mac(&hop.bridge) else {
        return Resolved::NoRoute;
    };
    let src = match port.local {
        LocalIp::Route => route_src,
        LocalIp::Fixed(ip) => ip,
        LocalIp::Flow if key.tun_src != 0 => Ipv4Addr::from_bits(key.tun_src),
        LocalIp::Flow => route_src,
    };
    let Some(dst_mac) = neighs.lookup(&hop.bridge, hop.next_hop, now_ns) else {
        let IpAddr::V4(target) = hop.next_hop else {
            return Resolved::NoRoute;
        };
        return Resolved::NeighMiss {
            bridge: hop.bridge.clone(),
            request: arp_request(src_mac, route_src, target),
        };
    };
    let params = EncapParams {
        ttl: port.outer_ttl(key),
        tos: port.outer_tos(key),
        dont_frag: port.df,
        udp_checksum: port.csum,
        dst_port: port.dst_port,
        oam: port.kind == TunnelKind::Geneve && key.tun_flags & TUN_FLAG_OAM != 0,
        ..EncapParams::new(
            port.kind,
            port.out_key.unwrap_or((key.tun_id & 0x00ff_ffff) as u32),
            src_mac,
            dst_mac,
            src,
            remote,
        )
    };
    let options = match port.kind {
        TunnelKind::Geneve => options,
        TunnelKind::Vxlan => &[],
    };
    let Ok(header) = TunnelHeader::new(&params, options) else {
        return Resolved::Invalid;
    };
    let outer = FlowKey {
        dl_src: src_mac,
        dl_dst: dst_mac,
        dl_type: ethertype::IPV4,
        nw_src: src.to_bits(),
        nw_dst: remote.to_bits(),
        nw_proto: ipproto::UDP,
        nw_ttl: params.ttl,
        nw_tos: params.tos,
        tp_dst: port.dst_port,
        ..FlowKey::default()
    };
    Resolved::Send {
        header: Box::new(header),
        bridge: hop.bridge.clone(),
        outer: Box::new(outer),
    }
}

#[cfg(test)]
mod tests;
