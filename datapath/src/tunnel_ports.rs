//! A tunnel port's options (`ports::tunnel::options`) as the datapath reads them: how it sends
//! (`tunnels::TunnelOutput`, for `openflow::DatapathUpcall`) and how it receives
//! (`tunnels::TunnelPortConfig`, for the `tunnel-decap` node). The daemon and replay both build
//! their tunnel ports through these.

use ports::tunnel::options::{FlowOr, TunnelOptions, TunnelType};
use tunnels::{LocalIp, TunnelKind, TunnelOutput, TunnelPortConfig};

/// How a tunnel port sends (its options as the upcall's native tunnel output reads them).
pub fn tunnel_output(o: &TunnelOptions) -> TunnelOutput {
    TunnelOutput {
        kind: tunnel_kind(o.ty),
        remote: o.remote_ip.fixed(),
        local: match o.local_ip {
            None => LocalIp::Route,
            Some(FlowOr::Fixed(ip)) => LocalIp::Fixed(ip),
            Some(FlowOr::Flow) => LocalIp::Flow,
        },
        out_key: o.out_key.fixed(),
        dst_port: o.dst_port,
        ttl: o.ttl.fixed(),
        tos: o.tos.fixed(),
        df: o.df_default,
        csum: o.csum,
    }
}

/// How a tunnel port, datapath port `dp_port`, receives (what the `tunnel-decap` node matches).
pub fn tunnel_receive(o: &TunnelOptions, dp_port: u32) -> TunnelPortConfig {
    TunnelPortConfig {
        dp_port,
        kind: tunnel_kind(o.ty),
        dst_port: o.dst_port,
        local: o.local_ip.and_then(FlowOr::fixed),
        remote: o.remote_ip.fixed(),
        in_key: o.in_key.fixed(),
    }
}

fn tunnel_kind(t: TunnelType) -> TunnelKind {
    match t {
        TunnelType::Vxlan => TunnelKind::Vxlan,
        TunnelType::Geneve => TunnelKind::Geneve,
    }
}
