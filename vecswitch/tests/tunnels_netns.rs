#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! VXLAN between vecswitch and the Linux kernel's vxlan device (root; skips otherwise). The
//! switch is one VTEP: an underlay bridge whose LOCAL tap holds the VTEP address (as with
//! OVS-DPDK's `br-phy`) and a tenant bridge with a `type=vxlan` port. The other VTEP is a
//! kernel vxlan device in a namespace, with the kernel's own defaults where they differ from
//! Open vSwitch's (DF clear, its own source-port hash) and the UDP checksum on. No neighbour
//! is configured: the switch finds the remote's MAC by ARP. Ping, TCP and UDP cross in both
//! directions. Namespaces and links go with drop guards, also when an assertion fails.

mod common;

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
    let vtep = VethNs::new(1);
    let tenant = VethNs::new(1);
    // AF_XDP does not complete checksums the sender left to the device.
    for (ns, dev) in [(&vtep.ns, vtep.peer()), (&tenant.ns, tenant.peer())] {
        in_ns(ns, &["ethtool", "-K", dev, "tx", "off"]);
    }
    for dev in [vtep.host(), tenant.host()] {
        let _ = Command::new("ethtool")
            .args(["-K", dev, "tx", "off"])
            .output();
    }
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

    let d = DaemonProc::start(&format!(
        "[[bridge]]\nname = \"{phy}\"\n\
         [[bridge.port]]\nname = \"{}\"\ntype = \"afxdp\"\n\
         [[bridge]]\nname = \"vi{pid}\"\nlocal = false\n\
         [[bridge.port]]\nname = \"{}\"\ntype = \"afxdp\"\n\
         [[bridge.port]]\nname = \"vx0\"\ntype = \"vxlan\"\nremote_ip = \"{remote}\"\nkey = 5000\n",
        vtep.host(),
        tenant.host(),
    ));
    // The VTEP address lives on the underlay bridge's tap, as OVS-DPDK's on br-phy.
    run(&["ip", "addr", "add", &format!("{local}/24"), "dev", &phy]);
    run(&["ip", "link", "set", &phy, "up"]);
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
    // The tenant bridge's megaflows show the encapsulation, OVS's way.
    let flows = d.ok(&["dump-megaflows", &format!("vi{pid}")]).text;
    assert!(flows.contains("tnl_push(header(size=50,type=4"), "{flows}");
    assert!(
        flows.contains("vxlan(flags=0x8000000,vni=0x1388)"),
        "{flows}"
    );
}
