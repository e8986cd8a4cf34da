//! The node in a graph `parse` → `tunnel-decap` → a sink named `classify` that keeps what it
//! is given, over frames made with `FrameBuilder` and `TunnelHeader`.
use super::*;
use crate::encap::{EncapParams, TunnelHeader};
use pipeline::flowkey::{TUN_FLAG_OAM, TUN_FLAG_PRESENT};
use pipeline::parse::{key_hash, Parse};
use pipeline::wire::{FrameBuilder, Ipv4Repr};
use pipeline::{parse_packet_limit, Graph, NodeReport, PacketMeta, TxQueues};

const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LOCAL_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const OTHER_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
const REMOTE_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
/// The port the underlay frames arrive on.
const UNDERLAY_PORT: u32 = 1;
/// One option, class 0x0102, type 3, one data word; and the same with the critical bit.
const OPTION: [u8; 8] = [0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef];
const CRITICAL_OPTION: [u8; 8] = [0x01, 0x02, 0x83, 0x01, 0xde, 0xad, 0xbe, 0xef];

/// A 64-byte Ethernet/IPv4/UDP frame.
fn inner_frame() -> Vec<u8> {
    let ip = Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    FrameBuilder::ethernet([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb])
        .ipv4(ip)
        .udp(1000, 2000)
        .build(&[0x5a; 22])
        .unwrap()
}

fn params(kind: TunnelKind, vni: u32, src: Ipv4Addr, dst: Ipv4Addr, mac: [u8; 6]) -> EncapParams {
    EncapParams::new(kind, vni, REMOTE_MAC, mac, src, dst)
}

/// `inner` behind the header of `p` with `options`.
fn encap(p: &EncapParams, options: &[u8], inner: &[u8]) -> Vec<u8> {
    let h = TunnelHeader::new(p, options).unwrap();
    let mut b = vec![0u8; h.header_len()];
    b.extend_from_slice(inner);
    h.write(&mut b, 40000).unwrap();
    b
}

fn vxlan(vni: u32, src: Ipv4Addr) -> Vec<u8> {
    let p = params(TunnelKind::Vxlan, vni, src, LOCAL_IP, LOCAL_MAC);
    encap(&p, &[], &inner_frame())
}

fn geneve(vni: u32, options: &[u8], oam: bool) -> Vec<u8> {
    let p = EncapParams {
        oam,
        ..params(TunnelKind::Geneve, vni, REMOTE_IP, LOCAL_IP, LOCAL_MAC)
    };
    encap(&p, options, &inner_frame())
}

fn endpoint() -> VtepEndpoint {
    VtepEndpoint {
        addr: LOCAL_IP,
        mac: LOCAL_MAC,
        in_ports: vec![],
    }
}

fn port(
    dp_port: u32,
    kind: TunnelKind,
    remote: Option<Ipv4Addr>,
    in_key: Option<u32>,
) -> TunnelPortConfig {
    TunnelPortConfig {
        dp_port,
        kind,
        dst_port: kind.default_port(),
        local: None,
        remote,
        in_key,
    }
}

/// A VXLAN port (10: REMOTE_IP, VNI 5000) and a Geneve one (11: REMOTE_IP, key 7).
fn config() -> TunnelDecapConfig {
    TunnelDecapConfig {
        endpoints: vec![endpoint()],
        ports: vec![
            port(10, TunnelKind::Vxlan, Some(REMOTE_IP), Some(5000)),
            port(11, TunnelKind::Geneve, Some(REMOTE_IP), Some(7)),
        ],
        ..TunnelDecapConfig::default()
    }
}

/// Keeps the packets it is given.
#[derive(Default)]
struct Sink {
    got: Vec<(PacketMeta, Vec<u8>)>,
}

impl Node for Sink {
    fn name(&self) -> &'static str {
        "classify"
    }
    fn next_nodes(&self) -> &[&'static str] {
        &[]
    }
    fn drop_reasons(&self) -> &[&'static str] {
        &[]
    }
    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
        for (&p, n) in pkts.iter().zip(next.iter_mut()) {
            self.got.push((*cx.pool.meta(p), cx.pool.data(p).to_vec()));
            cx.pool.free(p);
            *n = Next::CONSUMED;
        }
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

struct Run {
    got: Vec<(PacketMeta, Vec<u8>)>,
    reports: Vec<NodeReport>,
    stats: TunnelDecapStats,
}

impl Run {
    /// The drop count of `reason` in the node.
    fn drops(&self, reason: &str) -> u64 {
        self.reports
            .iter()
            .find(|r| r.name == NAME)
            .and_then(|r| r.drops.iter().find(|(n, _)| *n == reason))
            .map_or(0, |&(_, c)| c)
    }

    fn total_drops(&self) -> u64 {
        self.reports
            .iter()
            .find(|r| r.name == NAME)
            .map_or(0, |r| r.drops.iter().map(|&(_, c)| c).sum())
    }
}

/// Runs `frames`, received on `in_port`, through parse → tunnel-decap → sink.
fn run_on(config: TunnelDecapConfig, in_port: u32, frames: &[Vec<u8>]) -> Run {
    run_with(config, in_port, VlanLimit::DEFAULT, frames)
}

/// [`run_on`] with the node reading `vlans` VLAN headers of the inner frames.
fn run_with(config: TunnelDecapConfig, in_port: u32, vlans: VlanLimit, frames: &[Vec<u8>]) -> Run {
    let mut pool = PacketPool::new(64);
    let mut tx = TxQueues::default();
    let mut g = Graph::new();
    let entry = g.add(Box::new(Parse::new(NAME))).unwrap();
    let mut node = TunnelDecap::default();
    node.set_config(config).unwrap();
    node.set_vlan_limit(vlans);
    let decap = g.add(Box::new(node)).unwrap();
    let sink = g.add(Box::new(Sink::default())).unwrap();
    g.wire().unwrap();
    let ids: Vec<PacketId> = frames
        .iter()
        .map(|f| {
            let id = pool.alloc_with(f).unwrap();
            pool.meta_mut(id).key.in_port = in_port;
            id
        })
        .collect();
    let mut cx = Ctx {
        pool: &mut pool,
        tx: &mut tx,
        now_ns: 0,
    };
    g.dispatch(&mut cx, entry, &ids);
    assert_eq!(pool.available(), 64, "every packet freed");
    let stats = g.node_as::<TunnelDecap>(decap).unwrap().stats();
    let got = std::mem::take(&mut g.node_as::<Sink>(sink).unwrap().got);
    Run {
        got,
        reports: g.reports(),
        stats,
    }
}

fn run(config: TunnelDecapConfig, frames: &[Vec<u8>]) -> Run {
    run_on(config, UNDERLAY_PORT, frames)
}

/// The metadata `parse` alone gives `frame` received on `in_port`.
fn parsed(frame: &[u8], in_port: u32) -> PacketMeta {
    let mut pool = PacketPool::new(1);
    let id = pool.alloc_with(frame).unwrap();
    let (data, meta) = pool.data_and_meta_mut(id);
    meta.key.in_port = in_port;
    parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
    *meta
}

#[test]
fn drop_reasons_are_decap_drops_then_no_such_tunnel() {
    assert_eq!(DROP_REASONS[..DecapDrop::NAMES.len()], DecapDrop::NAMES);
    assert_eq!(DROP_REASONS[usize::from(NO_SUCH_TUNNEL)], "no-such-tunnel");
    assert_eq!(
        DecapDrop::BadInnerFrame.name(),
        DROP_REASONS[DecapDrop::BadInnerFrame as usize]
    );
}

#[test]
fn passes_non_tunnel_traffic_untouched() {
    let to_other_addr = encap(
        &params(
            TunnelKind::Vxlan,
            5000,
            REMOTE_IP,
            Ipv4Addr::new(192, 0, 2, 99),
            LOCAL_MAC,
        ),
        &[],
        &inner_frame(),
    );
    let to_other_mac = encap(
        &params(
            TunnelKind::Vxlan,
            5000,
            REMOTE_IP,
            LOCAL_IP,
            [2, 0, 0, 0, 9, 9],
        ),
        &[],
        &inner_frame(),
    );
    let tcp = FrameBuilder::ethernet(REMOTE_MAC, LOCAL_MAC)
        .ipv4(Ipv4Repr::new(REMOTE_IP, LOCAL_IP))
        .tcp(pipeline::wire::TcpRepr::new(1, 4789))
        .build(&[1; 10])
        .unwrap();
    let frames = [inner_frame(), to_other_addr, to_other_mac, tcp];
    let r = run(config(), &frames);
    assert_eq!(r.got.len(), frames.len());
    for ((meta, data), frame) in r.got.iter().zip(&frames) {
        assert_eq!(data, frame);
        let want = parsed(frame, UNDERLAY_PORT);
        assert_eq!(meta.key, want.key);
        assert_eq!(meta.hash, want.hash);
        assert_eq!((meta.len, meta.l3_ofs), (want.len, want.l3_ofs));
    }
    assert_eq!(r.total_drops(), 0);
    assert_eq!(
        r.stats,
        TunnelDecapStats {
            decapsulated: 0,
            passed: 4
        }
    );
}

#[test]
fn passes_everything_without_config() {
    let r = run(TunnelDecapConfig::default(), &[vxlan(5000, REMOTE_IP)]);
    assert_eq!(r.got.len(), 1);
    assert_eq!(r.got[0].1, vxlan(5000, REMOTE_IP));
    assert_eq!(r.stats.passed, 1);
}

#[test]
fn endpoint_in_ports_limit_where_tunnels_arrive() {
    let mut c = config();
    c.endpoints[0].in_ports = vec![UNDERLAY_PORT];
    let r = run_on(c.clone(), 2, &[vxlan(5000, REMOTE_IP)]);
    assert_eq!(r.stats.passed, 1, "from a port of another bridge: not ours");
    assert_eq!(r.got[0].0.key.in_port, 2);
    let r = run_on(c, UNDERLAY_PORT, &[vxlan(5000, REMOTE_IP)]);
    assert_eq!(r.stats.decapsulated, 1);
}

#[test]
fn decapsulates_vxlan_and_geneve_to_their_ports() {
    let r = run(
        config(),
        &[vxlan(5000, REMOTE_IP), geneve(7, &OPTION, false)],
    );
    assert_eq!(r.total_drops(), 0);
    assert_eq!(r.got.len(), 2);
    let inner = inner_frame();
    for ((meta, data), (dp_port, vni, tp_dst)) in
        r.got.iter().zip([(10, 5000, 4789), (11, 7, 6081)])
    {
        let k = &meta.key;
        assert_eq!(data, &inner, "the inner frame alone");
        assert_eq!(k.in_port, dp_port);
        assert_eq!(k.tun_id, vni);
        assert_eq!(k.tun_src, REMOTE_IP.to_bits());
        assert_eq!(k.tun_dst, LOCAL_IP.to_bits());
        assert_eq!(k.tun_tp_dst, tp_dst);
        assert_ne!(k.tun_flags & TUN_FLAG_PRESENT, 0);
        // The inner key: the inner frame parsed as received on the tunnel port.
        let want = parsed(&inner, dp_port);
        assert_eq!(k.dl_dst, want.key.dl_dst);
        assert_eq!((k.nw_src, k.nw_dst), (want.key.nw_src, want.key.nw_dst));
        assert_eq!((k.tp_src, k.tp_dst), (1000, 2000));
        assert_eq!(meta.len as usize, inner.len());
        // The EMC's hash is the whole final key's: tunnel words and the tunnel port included.
        assert_eq!(meta.hash, key_hash(k));
    }
    let g = &r.got[1].0.key;
    assert_eq!(usize::from(g.tun_opts_len), OPTION.len());
    assert_eq!(g.tun_opts[..OPTION.len()], OPTION);
    assert_eq!(
        r.stats,
        TunnelDecapStats {
            decapsulated: 2,
            passed: 0
        }
    );
}

#[test]
fn vlan_limit_applies_to_the_inner_frame() {
    let inner = FrameBuilder::ethernet([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb])
        .vlan(0x88a8, 10)
        .vlan(0x8100, 20)
        .ipv4(Ipv4Repr::new(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        ))
        .udp(1000, 2000)
        .build(&[0; 8])
        .unwrap();
    let frame = encap(
        &params(TunnelKind::Vxlan, 5000, REMOTE_IP, LOCAL_IP, LOCAL_MAC),
        &[],
        &inner,
    );
    let node = TunnelDecap::default();
    assert_eq!(node.vlan_limit(), VlanLimit::DEFAULT);
    // The default limit: one tag read, dl_type is the second TPID.
    let r = run(config(), std::slice::from_ref(&frame));
    assert_eq!(r.got[0].0.key.dl_type, 0x8100);
    // Two: both tags and the IPv4 header.
    let r = run_with(config(), UNDERLAY_PORT, VlanLimit::MAX, &[frame]);
    let k = &r.got[0].0.key;
    assert_eq!(k.dl_type, pipeline::flowkey::ethertype::IPV4);
    assert_ne!(k.vlan2_tci, 0);
    assert_eq!(k.tp_dst, 2000);
}

#[test]
fn exact_ports_beat_flow_based_ones_in_ovs_order() {
    let vx = TunnelKind::Vxlan;
    let mut c = config();
    c.ports = vec![
        port(22, vx, None, None),
        port(21, vx, Some(REMOTE_IP), None),
        port(20, vx, None, Some(5000)),
        port(10, vx, Some(REMOTE_IP), Some(5000)),
    ];
    let frames = [
        vxlan(5000, REMOTE_IP),
        vxlan(5000, OTHER_REMOTE),
        vxlan(6000, REMOTE_IP),
        vxlan(6000, OTHER_REMOTE),
    ];
    let r = run(c.clone(), &frames);
    let ports: Vec<u32> = r.got.iter().map(|(m, _)| m.key.in_port).collect();
    assert_eq!(ports, [10, 20, 21, 22]);
    // key=flow kept the VNI in tun_id.
    assert_eq!(r.got[3].0.key.tun_id, 6000);

    // An exact key beats an exact remote (OVS: in_key first, then ip_dst, then ip_src).
    c.ports.retain(|p| p.dp_port != 10);
    let r = run(c, &[vxlan(5000, REMOTE_IP)]);
    assert_eq!(r.got[0].0.key.in_port, 20);

    // A configured local address beats any local address.
    let mut c = config();
    let any = port(31, vx, Some(REMOTE_IP), Some(1));
    c.ports = vec![
        any,
        TunnelPortConfig {
            dp_port: 30,
            local: Some(LOCAL_IP),
            ..any
        },
    ];
    let r = run(c, &[vxlan(1, REMOTE_IP)]);
    assert_eq!(r.got[0].0.key.in_port, 30);
}

#[test]
fn a_local_address_other_than_the_ports_is_no_such_tunnel() {
    let mut c = config();
    c.endpoints.push(VtepEndpoint {
        addr: Ipv4Addr::new(192, 0, 2, 50),
        ..endpoint()
    });
    c.ports[0].local = Some(LOCAL_IP);
    let frame = encap(
        &params(
            TunnelKind::Vxlan,
            5000,
            REMOTE_IP,
            Ipv4Addr::new(192, 0, 2, 50),
            LOCAL_MAC,
        ),
        &[],
        &inner_frame(),
    );
    let r = run(c, &[frame]);
    assert_eq!(r.drops("no-such-tunnel"), 1);
}

#[test]
fn wrong_remote_or_vni_without_flow_ports_is_no_such_tunnel() {
    let frames = [
        vxlan(5000, OTHER_REMOTE),
        vxlan(5001, REMOTE_IP),
        geneve(8, &[], false),
    ];
    let r = run(config(), &frames);
    assert!(r.got.is_empty());
    assert_eq!(r.drops("no-such-tunnel"), 3);
    assert_eq!(r.total_drops(), 3);
}

#[test]
fn oam_and_unknown_critical_options_are_dropped_and_counted() {
    let frames = [
        geneve(7, &[], true),
        geneve(7, &CRITICAL_OPTION, false),
        geneve(7, &OPTION, false),
    ];
    let r = run(config(), &frames);
    assert_eq!(r.drops("geneve-oam"), 1);
    assert_eq!(r.drops("unknown-critical-option"), 1);
    assert_eq!(r.got.len(), 1, "a plain option is no reason to drop");

    // Known and forwarded.
    let mut c = config();
    c.known_options = vec![(0x0102, 0x83)];
    c.forward_oam = true;
    let r = run(c, &frames);
    assert_eq!(r.total_drops(), 0);
    assert_eq!(r.got.len(), 3);
    assert_ne!(r.got[0].0.key.tun_flags & TUN_FLAG_OAM, 0);
    assert_ne!(r.got[1].0.key.tun_flags & TUN_FLAG_CRITICAL, 0);
}

#[test]
fn a_malformed_inner_frame_is_bad_inner_frame() {
    // An IPv4 header claiming more than is there.
    let mut inner = inner_frame();
    inner[16] = 0x05;
    let frame = encap(
        &params(TunnelKind::Vxlan, 5000, REMOTE_IP, LOCAL_IP, LOCAL_MAC),
        &[],
        &inner,
    );
    let r = run(config(), &[frame]);
    assert!(r.got.is_empty());
    assert_eq!(r.drops("bad-inner-frame"), 1);
}

#[test]
fn counts_each_reason_apart() {
    let mut bad_csum = vxlan(5000, REMOTE_IP);
    bad_csum[24] ^= 0xff; // outer IPv4 checksum
    let mut bad_vxlan = vxlan(5000, REMOTE_IP);
    bad_vxlan[42] = 0; // the I flag
    let frames = [
        bad_csum,
        bad_vxlan,
        vxlan(5000, OTHER_REMOTE),
        vxlan(5000, OTHER_REMOTE),
        geneve(7, &[], true),
        vxlan(5000, REMOTE_IP),
        inner_frame(),
    ];
    let r = run(config(), &frames);
    let decap = r.reports.iter().find(|x| x.name == NAME).unwrap();
    let nonzero: Vec<(&str, u64)> = decap
        .drops
        .iter()
        .copied()
        .filter(|&(_, c)| c != 0)
        .collect();
    assert_eq!(
        nonzero,
        [
            ("bad-ip-checksum", 1),
            ("bad-vxlan-header", 1),
            ("geneve-oam", 1),
            ("no-such-tunnel", 2)
        ]
    );
    assert_eq!(decap.stats.vectors, 7);
    assert_eq!(
        r.stats,
        TunnelDecapStats {
            decapsulated: 1,
            passed: 1
        }
    );
}

#[test]
fn refuses_bad_configs_and_keeps_the_old_one() {
    let mut node = TunnelDecap::default();
    node.set_config(config()).unwrap();
    let mut c = config();
    c.ports
        .push(port(12, TunnelKind::Geneve, Some(OTHER_REMOTE), None));
    c.ports[2].dst_port = 4789;
    assert_eq!(
        node.set_config(c),
        Err(TunnelConfigError::KindClash {
            dp_port: 12,
            dst_port: 4789,
            other: "vxlan"
        })
    );
    let mut c = config();
    c.ports.push(TunnelPortConfig {
        dp_port: 12,
        ..c.ports[0]
    });
    assert_eq!(
        node.set_config(c),
        Err(TunnelConfigError::SameMatch {
            dp_port: 12,
            other: 10
        })
    );
    let mut c = config();
    c.ports[0].dst_port = 0;
    assert!(matches!(
        node.set_config(c),
        Err(TunnelConfigError::ZeroDstPort { dp_port: 10 })
    ));
    let mut c = config();
    c.ports[0].in_key = Some(1 << 24);
    assert!(matches!(
        node.set_config(c),
        Err(TunnelConfigError::KeyTooWide { .. })
    ));
    assert_eq!(node.config(), &config());
}

#[test]
fn another_dst_port_is_its_own_tunnel() {
    let mut c = config();
    c.ports[0].dst_port = 8472;
    let p = EncapParams {
        dst_port: 8472,
        ..params(TunnelKind::Vxlan, 5000, REMOTE_IP, LOCAL_IP, LOCAL_MAC)
    };
    let r = run(c, &[encap(&p, &[], &inner_frame()), vxlan(5000, REMOTE_IP)]);
    assert_eq!(r.got.len(), 2);
    assert_eq!(r.got[0].0.key.in_port, 10);
    // 4789 no longer listened to: an ordinary UDP packet.
    assert_eq!(r.got[1].0.key.in_port, UNDERLAY_PORT);
    assert_eq!(
        r.stats,
        TunnelDecapStats {
            decapsulated: 1,
            passed: 1
        }
    );
}
