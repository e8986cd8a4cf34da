#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tunnels between vecswitch and real peers (root; skips otherwise). The switch is one VTEP:
//! an underlay bridge whose LOCAL tap holds the VTEP address (as with OVS-DPDK's `br-phy`)
//! and a tenant bridge with a tunnel port. No neighbour is configured: the switch finds the
//! remote's MAC by ARP.
//!
//! - VXLAN with the Linux kernel's vxlan device in a namespace, with the kernel's own defaults
//!   where they differ from Open vSwitch's (DF clear, its own source-port hash) and the UDP
//!   checksum on: ping, TCP and UDP in both directions; NetFlow on the tenant bridge, its
//!   records naming the tunnel port.
//! - Geneve with Open vSwitch's userspace datapath (`ovs-vswitchd` in a namespace of its own,
//!   `datapath_type=netdev`): ping both ways, an option OVS sets passes, an option OVS marks
//!   critical is dropped by name (vecswitch has no TLV map yet).
//!
//! Namespaces, links and processes go with drop guards, also when an assertion fails.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{is_root, ping, run, tcp_transfer, udp_exchange, DaemonProc, VethNs};
use tools::netns::NsTarget;

/// Runs `args` in namespace `ns`; panics with its stderr when it fails.
fn in_ns(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all);
}

/// Retries `cond` for up to 10 s.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Two veth pairs into namespaces of their own: the wire to the other VTEP and the tenant.
/// Transmit checksum offload is off at both ends: AF_XDP does not complete checksums the
/// sender left to the device.
fn wire_and_tenant() -> (VethNs, VethNs) {
    let (wire, tenant) = (VethNs::new(1), VethNs::new(1));
    for (ns, dev) in [(&wire.ns, wire.peer()), (&tenant.ns, tenant.peer())] {
        in_ns(ns, &["ethtool", "-K", dev, "tx", "off"]);
    }
    for dev in [wire.host(), tenant.host()] {
        let _ = Command::new("ethtool")
            .args(["-K", dev, "tx", "off"])
            .output();
    }
    (wire, tenant)
}

/// One VTEP of vecswitch: an underlay bridge (LOCAL tap `underlay`, the wire's host end) and
/// a tenant bridge (the tenant's host end and a tunnel port to `remote` with `key`).
struct Tunnel<'a> {
    underlay: &'a str,
    wire: &'a VethNs,
    tenant_bridge: &'a str,
    tenant: &'a VethNs,
    /// The tunnel port's name and type: `"vx0 type=vxlan"`.
    port: &'a str,
    remote: &'a str,
    key: u32,
    /// The VTEP address, put on the underlay bridge's tap as OVS-DPDK's on br-phy.
    local: &'a str,
}

impl Tunnel<'_> {
    fn start(&self) -> DaemonProc {
        let (name, kind) = self.port.split_once(" type=").unwrap();
        let d = DaemonProc::start(&format!(
            "[[bridge]]\nname = \"{}\"\n\
             [[bridge.port]]\nname = \"{}\"\ntype = \"afxdp\"\n\
             [[bridge]]\nname = \"{}\"\nlocal = false\n\
             [[bridge.port]]\nname = \"{}\"\ntype = \"afxdp\"\n\
             [[bridge.port]]\nname = \"{name}\"\ntype = \"{kind}\"\nremote_ip = \"{}\"\n\
             key = {}\n",
            self.underlay,
            self.wire.host(),
            self.tenant_bridge,
            self.tenant.host(),
            self.remote,
            self.key,
        ));
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.local),
            "dev",
            self.underlay,
        ]);
        run(&["ip", "link", "set", self.underlay, "up"]);
        d
    }
}

#[test]
fn vxlan_interoperates_with_the_kernel_vxlan_device_both_ways() {
    if !is_root() {
        eprintln!("SKIP: tunnel namespace tests need root");
        return;
    }
    let pid = std::process::id() % 100_000;
    // 198.18.0.0/15 is for benchmarks (RFC 2544): no one's network here.
    let (local, remote) = ("198.18.7.1", "198.18.7.2");
    let (tenant_ip, far_ip) = ("10.77.0.1", "10.77.0.2");
    let phy = format!("vp{pid}");
    let (vtep, tenant) = wire_and_tenant();
    in_ns(
        &vtep.ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{remote}/24"),
            "dev",
            vtep.peer(),
        ],
    );
    in_ns(
        &vtep.ns,
        &[
            "ip", "link", "add", "vx", "type", "vxlan", "id", "5000", "remote", local, "local",
            remote, "dstport", "4789", "udpcsum",
        ],
    );
    in_ns(&vtep.ns, &["ip", "link", "set", "vx", "up"]);
    in_ns(
        &vtep.ns,
        &["ip", "addr", "add", &format!("{far_ip}/24"), "dev", "vx"],
    );
    in_ns(
        &tenant.ns,
        &["ip", "link", "set", tenant.peer(), "mtu", "1450"],
    );
    in_ns(
        &tenant.ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{tenant_ip}/24"),
            "dev",
            tenant.peer(),
        ],
    );

    let tunnel = Tunnel {
        underlay: &phy,
        wire: &vtep,
        tenant_bridge: &format!("vi{pid}"),
        tenant: &tenant,
        port: "vx0 type=vxlan",
        remote,
        key: 5000,
        local,
    };
    let d = tunnel.start();
    assert!(
        eventually(|| d.ok(&["show-routes"]).text.contains("198.18.7.0/24")),
        "the tap's address never became a route: {}",
        d.ok(&["show-routes"]).text
    );

    let tenant_ns = NsTarget::Name(tenant.ns.clone());
    let vtep_ns = NsTarget::Name(vtep.ns.clone());
    // The first packets find no neighbour: they go (ARP) and come back resolved.
    assert!(
        eventually(|| ping(&tenant_ns, far_ip, 1)),
        "no ping across the tunnel; drops: {}",
        d.ok(&["drop-reasons"]).text
    );
    assert!(ping(&tenant_ns, far_ip, 5), "tenant -> kernel VTEP");
    assert!(ping(&vtep_ns, tenant_ip, 5), "kernel VTEP -> tenant");
    // The remote's MAC was learned from its ARP reply, not configured.
    let neigh = d.ok(&["show-neighbours"]).text;
    assert!(
        neigh.contains(remote) && neigh.contains("DYNAMIC"),
        "{neigh}"
    );
    netflow_records_name_the_tunnel_port(&d, &format!("vi{pid}"), tenant.host(), |n| {
        assert!(ping(&tenant_ns, far_ip, n), "tenant -> kernel VTEP");
        assert!(ping(&vtep_ns, tenant_ip, n), "kernel VTEP -> tenant");
    });

    let bytes = 2 << 20;
    assert_eq!(
        tcp_transfer(&vtep_ns, far_ip, &tenant_ns, bytes).unwrap(),
        bytes,
        "TCP tenant -> kernel VTEP"
    );
    assert_eq!(
        tcp_transfer(&tenant_ns, tenant_ip, &vtep_ns, bytes).unwrap(),
        bytes,
        "TCP kernel VTEP -> tenant"
    );
    assert_eq!(udp_exchange(&vtep_ns, far_ip, &tenant_ns, 50).unwrap(), 50);
    assert_eq!(
        udp_exchange(&tenant_ns, tenant_ip, &vtep_ns, 50).unwrap(),
        50
    );

    let stats = d.ok(&["pmd-stats"]).json;
    let sum = |k: &str| {
        stats
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert!(sum("encapsulated") > 1000, "{stats}");
    assert!(sum("decapsulated") > 1000, "{stats}");
    // The tunnel port counts what it carried, inner frames, as OVS's vport counters do.
    let tenant_br = format!("vi{pid}");
    for field in ["rx_packets", "tx_packets"] {
        assert!(d.port_stat(&tenant_br, "vx0", field) > 1000, "vx0 {field}");
    }
    // Path MTU: a 1500-byte inner MTU over a 1500-byte underlay. A full-size packet with DF
    // does not fit: it is dropped and its sender told the MTU the tunnel leaves (1450), so a
    // TCP transfer converges instead of stalling.
    in_ns(
        &tenant.ns,
        &["ip", "link", "set", tenant.peer(), "mtu", "1500"],
    );
    in_ns(&vtep.ns, &["ip", "link", "set", "vx", "mtu", "1500"]);
    let out = Command::new("ip")
        .args([
            "netns", "exec", &tenant.ns, "ping", "-c", "1", "-M", "do", "-s", "1472",
        ])
        .arg(far_ip)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mtu = 1450"),
        "no fragmentation-needed answer: {text}"
    );
    assert_eq!(
        tcp_transfer(&vtep_ns, far_ip, &tenant_ns, bytes).unwrap(),
        bytes,
        "TCP with a 1500-byte inner MTU"
    );
    let stats = d.ok(&["pmd-stats"]).json;
    let answers: u64 = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["too_big_answers"].as_u64().unwrap_or(0))
        .sum();
    assert!(answers >= 1, "{stats}");
    assert!(
        d.ok(&["drop-reasons"])
            .text
            .contains("classify.tunnel-too-big"),
        "{}",
        d.ok(&["drop-reasons"]).text
    );

    // The tenant bridge's megaflows show the encapsulation, OVS's way.
    let flows = d.ok(&["dump-megaflows", &format!("vi{pid}")]).text;
    assert!(flows.contains("tnl_push(header(size=50,type=4"), "{flows}");
    assert!(
        flows.contains("vxlan(flags=0x8000000,vni=0x1388)"),
        "{flows}"
    );
}

/// NetFlow on the tenant bridge `br` of a running tunnel: `pings(n)` pings n times each way
/// (tenant port `tenant` to the far side and back). The records name the tunnel port `vx0` as
/// the flow's in or out interface, as OVS's (its OpenFlow port), with the inner frames' bytes.
fn netflow_records_name_the_tunnel_port(
    d: &DaemonProc,
    br: &str,
    tenant: &str,
    pings: impl Fn(u32),
) {
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let target = format!("targets={}", collector.local_addr().unwrap());
    d.ok(&["set-netflow", br, &target, "engine_id=9"]);
    let ports = d.ok(&["port-stats", br]).json;
    let ofport = |name: &str| {
        ports
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == name)
            .and_then(|p| p["ofport"].as_u64())
            .unwrap_or_else(|| panic!("no port {name}: {ports:#}")) as u16
    };
    let (t, vx) = (ofport(tenant), ofport("vx0"));
    pings(3);
    // A rule change (one no packet here matches) revalidates every megaflow: their records
    // go out at once.
    d.ok(&[
        "add-flow",
        br,
        "priority=5,ip,nw_dst=192.0.2.99,actions=drop",
    ]);
    // (ICMP destination port, in, out) -> (packets, bytes), summed over the records.
    let mut icmp = std::collections::BTreeMap::<(u16, u16, u16), (u32, u32)>::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    while icmp.values().map(|v| v.0).sum::<u32>() < 12 && Instant::now() < deadline {
        if let Ok(n) = collector.recv(&mut buf) {
            let (h, recs) = netflow::wire::parse_datagram(&buf[..n]).unwrap();
            assert_eq!(h.engine_id, 9);
            for r in recs.iter().filter(|r| r.proto == 1) {
                let e = icmp.entry((r.dst_port, r.input, r.output)).or_default();
                *e = (e.0 + r.packets, e.1 + r.octets);
            }
        }
    }
    // Echo requests (8 << 8) and replies (0), each way: 3 of 98 bytes (56 of payload), the
    // inner frames, from the tenant port into vx0 and from vx0 to the tenant port.
    let want: std::collections::BTreeMap<_, _> = [
        ((8 << 8, t, vx), (3, 294)),
        ((0, vx, t), (3, 294)),
        ((8 << 8, vx, t), (3, 294)),
        ((0, t, vx), (3, 294)),
    ]
    .into_iter()
    .collect();
    assert_eq!(icmp, want, "tenant port {t}, vx0 {vx}");
    d.ok(&["del-flows", br, "ip,nw_dst=192.0.2.99"]);
    d.ok(&["clear-netflow", br]);
}

/// `ovsdb-server` and `ovs-vswitchd` (userspace datapath) run in namespace `ns`, in a
/// directory of their own; killed and removed on drop.
struct Ovs {
    dir: PathBuf,
}

impl Ovs {
    fn start(ns: &str) -> Ovs {
        let dir = std::env::temp_dir().join(format!("vxovs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ovs = Ovs { dir };
        let d = ovs.dir.to_str().unwrap().to_string();
        let db = format!("{d}/conf.db");
        ovs.run(&[
            "ovsdb-tool",
            "create",
            &db,
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]);
        let remote = format!("--remote=punix:{d}/db.sock");
        ovs.run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "ovsdb-server",
            &db,
            &remote,
            "--pidfile",
            "--log-file",
            "--detach",
            "--no-chdir",
        ]);
        ovs.vsctl(&["--no-wait", "init"]);
        let db_sock = format!("unix:{d}/db.sock");
        ovs.run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "ovs-vswitchd",
            &db_sock,
            "--pidfile",
            "--log-file",
            "--detach",
            "--no-chdir",
        ]);
        ovs
    }

    /// Runs a command with OVS's directories set; panics with its stderr when it fails.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("OVS_RUNDIR", &self.dir)
            .env("OVS_DBDIR", &self.dir)
            .env("OVS_LOGDIR", &self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}/db.sock", self.dir.display());
        let mut all = vec!["ovs-vsctl", db.as_str()];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn ofctl(&self, verb: &str, bridge: &str, rest: &[&str]) -> String {
        let target = format!("unix:{}/{bridge}.mgmt", self.dir.display());
        let mut all = vec!["ovs-ofctl", verb, target.as_str()];
        all.extend_from_slice(rest);
        self.run(&all)
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for name in ["ovs-vswitchd", "ovsdb-server"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(format!("{name}.pid"))) {
                let _ = Command::new("kill").arg(pid.trim()).output();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn geneve_interoperates_with_open_vswitch_userspace() {
    if !is_root() {
        eprintln!("SKIP: tunnel namespace tests need root");
        return;
    }
    if Command::new("ovs-vswitchd")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no ovs-vswitchd (Debian openvswitch-switch)");
        return;
    }
    let pid = std::process::id() % 100_000;
    let (local, remote) = ("198.18.8.1", "198.18.8.2");
    let (tenant_ip, far_ip) = ("10.78.0.1", "10.78.0.2");
    let phy = format!("gp{pid}");
    // OVS's namespace: the wire's other end; its bridges' taps appear there.
    let (wire, tenant) = wire_and_tenant();
    in_ns(
        &tenant.ns,
        &["ip", "link", "set", tenant.peer(), "mtu", "1400"],
    );
    in_ns(
        &tenant.ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{tenant_ip}/24"),
            "dev",
            tenant.peer(),
        ],
    );

    let ovs = Ovs::start(&wire.ns);
    ovs.vsctl(&[
        "add-br",
        "br-phy",
        "--",
        "set",
        "bridge",
        "br-phy",
        "datapath_type=netdev",
    ]);
    ovs.vsctl(&["add-port", "br-phy", wire.peer()]);
    ovs.vsctl(&[
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=netdev",
    ]);
    let remote_opt = format!("options:remote_ip={local}");
    ovs.vsctl(&[
        "add-port",
        "br-int",
        "gnv0",
        "--",
        "set",
        "interface",
        "gnv0",
        "type=geneve",
        &remote_opt,
        "options:key=77",
    ]);
    assert!(
        eventually(|| Command::new("ip")
            .args(["-n", &wire.ns, "link", "show", "br-int"])
            .output()
            .is_ok_and(|o| o.status.success())),
        "OVS made no br-int tap"
    );
    in_ns(
        &wire.ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{remote}/24"),
            "dev",
            "br-phy",
        ],
    );
    in_ns(&wire.ns, &["ip", "link", "set", "br-phy", "up"]);
    in_ns(
        &wire.ns,
        &[
            "ip",
            "addr",
            "add",
            &format!("{far_ip}/24"),
            "dev",
            "br-int",
        ],
    );
    in_ns(
        &wire.ns,
        &["ip", "link", "set", "br-int", "mtu", "1400", "up"],
    );

    let tunnel = Tunnel {
        underlay: &phy,
        wire: &wire,
        tenant_bridge: &format!("gi{pid}"),
        tenant: &tenant,
        port: "gnv0 type=geneve",
        remote,
        key: 77,
        local,
    };
    let d = tunnel.start();

    let tenant_ns = NsTarget::Name(tenant.ns.clone());
    let ovs_ns = NsTarget::Name(wire.ns.clone());
    assert!(
        eventually(|| ping(&tenant_ns, far_ip, 1)),
        "no ping across the tunnel; drops: {}",
        d.ok(&["drop-reasons"]).text
    );
    assert!(ping(&tenant_ns, far_ip, 5), "vecswitch -> OVS");
    assert!(ping(&ovs_ns, tenant_ip, 5), "OVS -> vecswitch");

    // A Geneve option set by a rule on each side and matched by a rule on the other: OVS
    // puts 0x1234 in option (0xffff, 0) on its ICMP, vecswitch 0x5678; each forwards the
    // other's ICMP only with its value.
    let option0 = "{class=0xffff,type=0,len=4}->tun_metadata0";
    ovs.ofctl("add-tlv-map", "br-int", &[option0]);
    for flow in [
        "priority=10,in_port=LOCAL,icmp,actions=set_field:0x1234->tun_metadata0,output:gnv0",
        "priority=10,in_port=gnv0,icmp,tun_metadata0=0x5678,actions=LOCAL",
        "priority=5,in_port=gnv0,icmp,actions=drop",
    ] {
        ovs.ofctl("add-flow", "br-int", &[flow]);
    }
    let br = format!("gi{pid}");
    d.ok(&["add-tlv-map", &br, option0]);
    assert!(d
        .ok(&["dump-tlv-map", &br])
        .text
        .contains("0xffff     0       4  tun_metadata0"));
    for flow in [
        "priority=10,in_port=1,icmp,actions=set_field:0x5678->tun_metadata0,output:2",
        "priority=10,in_port=2,icmp,tun_metadata0=0x1234,actions=output:1",
        "priority=5,in_port=2,icmp,actions=drop",
    ] {
        d.ok(&["add-flow", &br, flow]);
    }
    assert!(ping(&tenant_ns, far_ip, 5), "vecswitch -> OVS with options");
    assert!(ping(&ovs_ns, tenant_ip, 5), "OVS -> vecswitch with options");
    // The match is real: expecting another value, vecswitch drops OVS's ICMP.
    d.ok(&["del-flows", &br, "in_port=2,icmp,tun_metadata0=0x1234"]);
    d.ok(&[
        "add-flow",
        &br,
        "priority=10,in_port=2,icmp,tun_metadata0=0x9999,actions=output:1",
    ]);
    assert!(
        !ping(&ovs_ns, tenant_ip, 2),
        "a wrong option value still passed"
    );

    // A critical option (type 0x80) that no TLV map of vecswitch names is dropped by name;
    // once mapped, it is known and passes.
    ovs.ofctl(
        "add-tlv-map",
        "br-int",
        &["{class=0xffff,type=0x80,len=4}->tun_metadata1"],
    );
    ovs.ofctl(
        "add-flow",
        "br-int",
        &["priority=10,in_port=LOCAL,udp,actions=set_field:0x99->tun_metadata1,output:gnv0"],
    );
    let critical = |d: &DaemonProc| {
        let drops = d.ok(&["drop-reasons"]).text;
        drops
            .lines()
            .find(|l| l.starts_with("tunnel-decap.unknown-critical-option"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let send_udp = || {
        in_ns(
            &wire.ns,
            &[
                "python3",
                "-c",
                &format!(
                    "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                     [s.sendto(b'x'*10,('{tenant_ip}',9999)) for i in range(5)]"
                ),
            ],
        )
    };
    let before = critical(&d);
    send_udp();
    assert!(
        eventually(|| critical(&d) >= before + 5),
        "{}",
        d.ok(&["drop-reasons"]).text
    );
    d.ok(&[
        "add-tlv-map",
        &br,
        "{class=0xffff,type=0x80,len=4}->tun_metadata1",
    ]);
    let before = critical(&d);
    let rx = |d: &DaemonProc| d.port_stat(&br, tenant.host(), "tx_packets");
    let sent = rx(&d);
    send_udp();
    assert!(
        eventually(|| rx(&d) >= sent + 5),
        "mapped critical option dropped"
    );
    assert_eq!(critical(&d), before);
    let flows = d.ok(&["dump-megaflows", &br]).text;
    assert!(
        flows.contains("geneve(vni=0x4d,options({class=0xffff,type=0x0,len=4}0x00005678))"),
        "{flows}"
    );

    // Options longer than a flow key holds: OVS adds a 124-byte option (type 2, which
    // vecswitch does not map) after 0x1234 in type 0, 136 bytes in all; vecswitch still
    // matches type 0 among them.
    ovs.ofctl(
        "add-tlv-map",
        "br-int",
        &["{class=0xffff,type=2,len=124}->tun_metadata2"],
    );
    let long = format!("0x{}", "a5".repeat(124));
    ovs.ofctl(
        "add-flow",
        "br-int",
        &[&format!(
            "priority=20,in_port=LOCAL,icmp,actions=set_field:0x1234->tun_metadata0,\
             set_field:{long}->tun_metadata2,output:gnv0"
        )],
    );
    d.ok(&["del-flows", &br, "in_port=2,icmp,tun_metadata0=0x9999"]);
    d.ok(&[
        "add-flow",
        &br,
        "priority=10,in_port=2,icmp,tun_metadata0=0x1234,actions=output:1",
    ]);
    assert!(
        ping(&ovs_ns, tenant_ip, 5),
        "OVS -> vecswitch with 136 bytes of options"
    );
    let flows = d.ok(&["dump-megaflows", &br]).text;
    let want = format!("geneve=0xffff000100001234ffff021f{}/", "a5".repeat(124));
    assert!(flows.contains(&want), "{flows}");
}
