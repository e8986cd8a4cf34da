use super::*;
use crate::underlay::{BridgeAddr, NeighSpec, RouteSpec};

const BR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x01];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];

fn port(kind: TunnelKind) -> TunnelOutput {
    TunnelOutput {
        kind,
        remote: Some(Ipv4Addr::new(172, 31, 1, 2)),
        local: LocalIp::Route,
        out_key: Some(5000),
        dst_port: kind.default_port(),
        ttl: Some(64),
        tos: Some(0),
        df: true,
        csum: false,
    }
}

/// br-phy holds 172.31.1.1/24; a route to 10.9.0.0/16 through 172.31.1.254.
fn underlay() -> (RouteTable, NeighTable) {
    let routes = RouteTable::new();
    routes.set_bridge_addresses("br-phy", &["172.31.1.1/24".parse::<BridgeAddr>().unwrap()]);
    routes
        .add(RouteSpec::parse(&["10.9.0.0/16", "br-phy", "172.31.1.254"]).unwrap())
        .unwrap();
    (routes, NeighTable::default())
}

fn mac_of(bridge: &str) -> Option<[u8; 6]> {
    (bridge == "br-phy").then_some(BR_MAC)
}

fn inner_ip(tos: u8, ttl: u8) -> FlowKey {
    FlowKey {
        dl_type: ethertype::IPV4,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        nw_proto: ipproto::UDP,
        nw_tos: tos,
        nw_ttl: ttl,
        ..FlowKey::default()
    }
}

#[test]
fn a_missing_neighbour_asks_for_it_then_the_header_is_built() {
    let (routes, neighs) = underlay();
    let p = port(TunnelKind::Vxlan);
    let key = inner_ip(0, 64);
    let Resolved::NeighMiss { bridge, request } =
        resolve(&p, &key, &[], &routes, &neighs, mac_of, 0)
    else {
        panic!("expected a neighbour miss");
    };
    assert_eq!(&*bridge, "br-phy");
    // Who has 172.31.1.2? Tell 172.31.1.1, from the bridge's MAC, broadcast.
    assert_eq!(&request[..6], &[0xff; 6]);
    assert_eq!(&request[6..12], &BR_MAC);
    assert_eq!(&request[28..32], &[172, 31, 1, 1]);
    assert_eq!(&request[38..42], &[172, 31, 1, 2]);

    let spec = NeighSpec::parse(&["br-phy", "172.31.1.2", "02:00:00:00:cc:02"]).unwrap();
    neighs.add_static(&spec, 0).unwrap();
    let Resolved::Send {
        header,
        bridge,
        outer,
    } = resolve(&p, &key, &[], &routes, &neighs, mac_of, 0)
    else {
        panic!("expected a header");
    };
    assert_eq!(&*bridge, "br-phy");
    let h = header.params();
    assert_eq!(
        (h.vni, h.ip_src, h.ip_dst),
        (5000, Ipv4Addr::new(172, 31, 1, 1), p.remote.unwrap())
    );
    assert_eq!((h.eth_src, h.eth_dst), (BR_MAC, spec.mac));
    assert_eq!(
        (outer.dl_src, outer.dl_dst, outer.tp_dst),
        (BR_MAC, spec.mac, 4789)
    );
    assert_eq!(outer.nw_proto, ipproto::UDP);
}

#[test]
fn a_remote_off_link_goes_to_the_gateway_and_one_without_a_route_is_refused() {
    let (routes, neighs) = underlay();
    let gw = NeighSpec::parse(&["br-phy", "172.31.1.254", "02:00:00:00:cc:01"]).unwrap();
    neighs.add_static(&gw, 0).unwrap();
    let mut p = port(TunnelKind::Geneve);
    p.remote = Some(Ipv4Addr::new(10, 9, 3, 4));
    let Resolved::Send { header, .. } =
        resolve(&p, &inner_ip(0, 9), &[], &routes, &neighs, mac_of, 0)
    else {
        panic!("expected a header");
    };
    assert_eq!(header.params().eth_dst, GW_MAC);
    assert_eq!(header.params().ip_dst, Ipv4Addr::new(10, 9, 3, 4));
    p.remote = Some(Ipv4Addr::new(192, 0, 2, 1));
    assert!(matches!(
        resolve(&p, &inner_ip(0, 9), &[], &routes, &neighs, mac_of, 0),
        Resolved::NoRoute
    ));
    // A bridge without a MAC (no LOCAL port) cannot send either.
    p.remote = Some(Ipv4Addr::new(10, 9, 3, 4));
    assert!(matches!(
        resolve(&p, &inner_ip(0, 9), &[], &routes, &neighs, |_| None, 0),
        Resolved::NoRoute
    ));
}

#[test]
fn flow_based_ports_take_remote_key_and_source_from_the_flow_and_mask_them() {
    let (routes, neighs) = underlay();
    let n = NeighSpec::parse(&["br-phy", "172.31.1.9", "02:00:00:00:cc:09"]).unwrap();
    neighs.add_static(&n, 0).unwrap();
    let p = TunnelOutput {
        remote: None,
        out_key: None,
        local: LocalIp::Flow,
        ..port(TunnelKind::Vxlan)
    };
    let key = FlowKey {
        tun_id: 0x1234_5678,
        tun_dst: u32::from(Ipv4Addr::new(172, 31, 1, 9)),
        tun_src: u32::from(Ipv4Addr::new(172, 31, 1, 7)),
        ..inner_ip(0, 64)
    };
    let Resolved::Send { header, .. } = resolve(&p, &key, &[], &routes, &neighs, mac_of, 0) else {
        panic!("expected a header");
    };
    let h = header.params();
    // VXLAN carries the low 24 bits of tun_id.
    assert_eq!(h.vni, 0x34_5678);
    assert_eq!(h.ip_src, Ipv4Addr::new(172, 31, 1, 7));
    assert_eq!(h.ip_dst, Ipv4Addr::new(172, 31, 1, 9));
    // Set by the actions, the tunnel words are nothing of the packet: not matched.
    let mut mask = FlowKey::default();
    p.mask_reads(&key, &mut mask);
    assert_eq!((mask.tun_id, mask.tun_dst, mask.tun_src), (0, 0, 0));
    // A packet from a tunnel: its own words go out, so its megaflow matches them.
    let from_tunnel = FlowKey {
        tun_flags: pipeline::flowkey::TUN_FLAG_PRESENT,
        ..key
    };
    p.mask_reads(&from_tunnel, &mut mask);
    assert_eq!(
        (mask.tun_id, mask.tun_dst, mask.tun_src),
        (u64::MAX, u32::MAX, u32::MAX)
    );
    // Fixed TTL and TOS: only the ECN bits are read.
    assert_eq!((mask.nw_tos, mask.nw_ttl), (0x03, 0));
    // A port with everything fixed reads no tunnel word.
    let mut mask = FlowKey::default();
    port(TunnelKind::Vxlan).mask_reads(&from_tunnel, &mut mask);
    assert_eq!((mask.tun_id, mask.tun_dst, mask.tun_src), (0, 0, 0));
}

#[test]
fn tos_and_ttl_are_inherited_as_open_vswitch_does() {
    let inherit = TunnelOutput {
        ttl: None,
        tos: None,
        ..port(TunnelKind::Vxlan)
    };
    let fixed = TunnelOutput {
        tos: Some(0x28),
        ..port(TunnelKind::Vxlan)
    };
    // DSCP 0xb8 and ECT(1) inherited whole; CE goes out as ECT(0).
    assert_eq!(inherit.outer_tos(&inner_ip(0xb9, 9)), 0xb9);
    assert_eq!(inherit.outer_tos(&inner_ip(0xbb, 9)), 0xba);
    assert_eq!(inherit.outer_ttl(&inner_ip(0, 9)), 9);
    // A fixed TOS keeps the inner ECN bits.
    assert_eq!(fixed.outer_tos(&inner_ip(0xb9, 9)), 0x29);
    assert_eq!(fixed.outer_ttl(&inner_ip(0, 9)), 64);
    // Not IP: nothing to inherit.
    let arp = FlowKey {
        dl_type: ethertype::ARP,
        ..FlowKey::default()
    };
    assert_eq!((inherit.outer_tos(&arp), inherit.outer_ttl(&arp)), (0, 64));
    let mut mask = FlowKey::default();
    inherit.mask_reads(&inner_ip(0, 9), &mut mask);
    assert_eq!(
        (mask.nw_tos, mask.nw_ttl, mask.dl_type),
        (0xff, 0xff, 0xffff)
    );
}

#[test]
fn an_unusable_remote_is_invalid() {
    let (routes, neighs) = underlay();
    for ip in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
    ] {
        let p = TunnelOutput {
            remote: Some(ip),
            ..port(TunnelKind::Vxlan)
        };
        assert!(matches!(
            resolve(&p, &inner_ip(0, 1), &[], &routes, &neighs, mac_of, 0),
            Resolved::Invalid
        ));
    }
    // A flow-based remote that the flow never set is 0.0.0.0.
    let p = TunnelOutput {
        remote: None,
        ..port(TunnelKind::Vxlan)
    };
    assert!(matches!(
        resolve(&p, &inner_ip(0, 1), &[], &routes, &neighs, mac_of, 0),
        Resolved::Invalid
    ));
}
