#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! MTU between real network namespaces (root; skips otherwise): `mtu_request` given to the
//! kernel interfaces of AF_PACKET ports and the LOCAL tap, 9,000-byte pings (`ping -M do -s
//! 8972`) through the switch, a jumbo frame over a port whose MTU is 1500 dropped as
//! `tx-mtu-exceeded`, bad values refused naming the field with nothing changed; 9,000-byte
//! pings and DF UDP both ways between AF_XDP (veth) ports with XDP multi-buffer, frames over
//! the MTU named `rx-mtu-exceeded` and `tx-mtu-exceeded`; 3,600-byte frames between AF_XDP
//! ports without multi-buffer (4 KiB UMEM frames); and jumbo UDP through a vhost-user
//! port to DPDK testpmd (virtio-user, mergeable receive buffers) and back. Every namespace and link is removed by drop guards.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{is_root, DaemonProc, TestNs};

/// One test at a time: each runs a daemon with a busy PMD.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: MTU namespace tests need root");
            return;
        }
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    };
}

/// Whether all `count` pings of `size` bytes of payload, never fragmented (`-M do`), from
/// namespace `ns` (or this one) to `addr` are answered.
fn ping_df(ns: Option<&str>, addr: &str, size: u32, count: u32) -> bool {
    let size = size.to_string();
    let count = count.to_string();
    let ping = [
        "ping", "-n", "-q", "-M", "do", "-s", &size, "-c", &count, "-i", "0.2", "-W", "2", addr,
    ];
    let out = match ns {
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns])
            .args(ping)
            .output(),
        None => Command::new(ping[0]).args(&ping[1..]).output(),
    }
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains(&format!(" {count} received"))
}

/// The kernel MTU of `ifname` in namespace `ns` (or this one).
fn kernel_mtu(ns: Option<&str>, ifname: &str) -> u32 {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let o = cmd.args(["-o", "link", "show", ifname]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let at = text.find(" mtu ").unwrap_or_else(|| panic!("{text}"));
    text[at + 5..].split(' ').next().unwrap().parse().unwrap()
}

/// A port's counter from `port-stats --json`: a stat, or else a port-type counter (0 when
/// not shown).
fn port_counter(d: &DaemonProc, bridge: &str, port: &str, name: &str) -> u64 {
    let r = d.ok(&["port-stats", bridge]).json;
    let p = r
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .unwrap_or_else(|| panic!("no port {port} in {r:#}"))
        .clone();
    let kebab = name.replace('_', "-");
    p["stats"][name]
        .as_u64()
        .or_else(|| p["losses"][&kebab].as_u64())
        .or_else(|| p["counters"][&kebab].as_u64())
        .unwrap_or(0)
}

/// The `show --json` entry of `port`.
fn show_port(d: &DaemonProc, port: &str) -> serde_json::Value {
    let show = d.ok(&["show"]).json;
    show["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["ports"].as_array().unwrap().iter())
        .find(|p| p["name"] == port)
        .unwrap_or_else(|| panic!("no {port} in {show:#}"))
        .clone()
}

#[test]
fn jumbo_pings_cross_afpacket_ports_and_the_local_tap_and_too_big_frames_are_named() {
    require_root!();
    let bridge = common::unique_bridge("vm");
    let d = DaemonProc::start(&format!("[[bridge]]\nname = \"{bridge}\"\nlocal = true\n"));
    let (a, b) = (TestNs::new(), TestNs::new());
    let host_a = d.attach(&bridge, &a, "10.93.0.1/24", "afpacket");
    let host_b = d.attach(&bridge, &b, "10.93.0.2/24", "afpacket");
    assert!(common::ping(&a.target, "10.93.0.2", 2), "1500 first");
    assert_eq!(show_port(&d, &host_a)["mtu"], 1500);

    // a's side and b's namespace take 9000; the switch's port to b stays at 1500.
    for ns in [&a.name, &b.name] {
        common::run(&["ip", "-n", ns, "link", "set", "eth0", "mtu", "9000"]);
    }
    let set = d.ok(&["set-port", &host_a, "mtu_request=9000"]).text;
    assert!(set.contains("mtu_request=9000"), "{set}");
    assert_eq!(
        kernel_mtu(None, &host_a),
        9000,
        "the kernel interface took it"
    );
    assert_eq!(show_port(&d, &host_a)["mtu"], 9000);
    assert_eq!(show_port(&d, &host_a)["mtu_request"], 9000);
    assert!(!ping_df(Some(&a.name), "10.93.0.2", 8972, 1));
    let dropped = port_counter(&d, &bridge, &host_b, "tx_mtu_exceeded");
    assert!(dropped >= 1, "the jumbo ping is named on b's transmit");
    let reasons = d.ok(&["drop-reasons"]).json;
    let key = format!("port.{host_b}.tx-mtu-exceeded");
    assert_eq!(reasons[&key].as_u64(), Some(dropped), "{reasons:#}");

    // With b's port at 9000 too, 9000-byte IP packets cross both ways whole.
    d.ok(&["set-port", &host_b, "mtu_request=9000"]);
    assert_eq!(kernel_mtu(None, &host_b), 9000);
    assert!(ping_df(Some(&a.name), "10.93.0.2", 8972, 3), "a -> b jumbo");
    assert!(ping_df(Some(&b.name), "10.93.0.1", 8972, 3), "b -> a jumbo");
    let stats = d.ok(&["port-stats", &bridge]).text;
    assert!(stats.contains(&format!("({host_a}, mtu 9000)")), "{stats}");

    // The bridge's LOCAL tap: the host pings a's namespace with jumbo frames.
    d.ok(&["set-port", &bridge, "mtu_request=9000"]);
    assert_eq!(kernel_mtu(None, &bridge), 9000);
    common::run(&["ip", "addr", "add", "10.93.0.254/24", "dev", &bridge]);
    assert!(
        ping_df(None, "10.93.0.1", 8972, 3),
        "host -> a through LOCAL"
    );

    // Bad values: refused naming the field, nothing changed.
    for (bad, why) in [
        ("mtu_request=67", "68..=9702"),
        ("mtu_request=9703", "68..=9702"),
        ("mtu_request=x", "not a number"),
        ("mtu_request=70000", "68..=9702"),
    ] {
        let e = d.err(&["set-port", &host_a, bad]);
        assert!(e.contains("mtu_request") && e.contains(why), "{bad}: {e}");
    }
    let e = d.err(&["set-port", "nosuch", "mtu_request=1500"]);
    assert!(e.contains("port"), "{e}");
    assert_eq!(show_port(&d, &host_a)["mtu"], 9000);
    assert_eq!(kernel_mtu(None, &host_a), 9000);
    assert!(ping_df(Some(&a.name), "10.93.0.2", 8972, 1), "still jumbo");

    // Back to 1500 (`[]` clears the request; the kernel keeps what it was given, as OVS's).
    d.ok(&["set-port", &host_b, "mtu_request=1500"]);
    assert_eq!(kernel_mtu(None, &host_b), 1500);
    d.ok(&["set-port", &host_a, "mtu_request=[]"]);
    assert_eq!(
        show_port(&d, &host_a)["mtu_request"],
        serde_json::Value::Null
    );
    assert_eq!(show_port(&d, &host_a)["mtu"], 9000, "the kernel's own MTU");
    assert!(
        common::ping(&a.target, "10.93.0.2", 2),
        "1500 still crosses"
    );
}

/// How many of `count` UDP datagrams of `size` bytes (DF set) sent from namespace `from`
/// (bound to `src`) to an echo server at `dst` in namespace `to` come back whole.
fn udp_echoes(from: &str, src: &str, to: &str, dst: &str, size: usize, count: u32) -> u32 {
    let server = format!(
        "import socket\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{dst}',7777))\n\
         s.setsockopt(socket.IPPROTO_IP,10,2)\ns.settimeout(15)\n\
         while True:\n    d,a=s.recvfrom(65536)\n    s.sendto(d,a)\n"
    );
    let mut echo = Command::new("ip")
        .args(["netns", "exec", to, common::python(), "-c", &server])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let client = format!(
        "import socket\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{src}',0))\n\
         s.setsockopt(socket.IPPROTO_IP,10,2)\ns.settimeout(2)\nok=0\n\
         for i in range({count}):\n    m=(b'%04d' % i)*({size}//4)\n    \
         s.sendto(m,('{dst}',7777))\n    \
         try:\n        d,a=s.recvfrom(65536)\n        ok+=(d==m and a==('{dst}',7777))\n    \
         except socket.timeout:\n        pass\n\
         print(ok)\n"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", from, common::python(), "-c", &client])
        .output()
        .unwrap();
    let _ = echo.kill();
    let _ = echo.wait();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The modes of the first queue of each of `hosts` once none is closed (a PMD restart with
/// larger pools closes and reopens them).
fn reopened_modes(d: &DaemonProc, hosts: &[&str]) -> Vec<String> {
    let mode = |host: &str| show_port(d, host)["queues"][0]["mode"].to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let modes: Vec<String> = hosts.iter().map(|h| mode(h)).collect();
        if !modes.iter().any(|m| m.contains("closed")) {
            return modes;
        }
        assert!(Instant::now() < deadline, "{modes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn jumbo_frames_cross_afxdp_ports_with_xdp_multi_buffer() {
    require_root!();
    let bridge = common::unique_bridge("vm");
    let d = DaemonProc::start(&format!("[[bridge]]\nname = \"{bridge}\"\nlocal = false\n"));
    let (a, b) = (TestNs::new(), TestNs::new());
    let host_a = d.attach(&bridge, &a, "10.93.1.1/24", "afxdp");
    let host_b = d.attach(&bridge, &b, "10.93.1.2/24", "afxdp");
    let mode = |host: &str| show_port(&d, host)["queues"][0]["mode"].to_string();
    // At 1500 the queues are in their PMD's pool (single-buffer, no copy).
    assert!(mode(&host_a).contains("pmd-pool"), "{}", mode(&host_a));
    assert!(common::ping(&a.target, "10.93.1.2", 2), "1500 first");
    for ns in [&a.name, &b.name] {
        common::run(&["ip", "-n", ns, "link", "set", "eth0", "mtu", "9000"]);
        // UDP checksums complete in the sender, not left to an offload the copy loses.
        common::run(&[
            "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off",
        ]);
    }
    for host in [&host_a, &host_b] {
        d.ok(&["set-port", host, "mtu_request=9000"]);
        assert_eq!(kernel_mtu(None, host), 9000, "the veth took it under XDP");
        assert_eq!(show_port(&d, host)["mtu"], 9000);
    }
    // The pools grew out of the UMEM: the queues go on on their own memory, multi-buffer.
    for m in reopened_modes(&d, &[&host_a, &host_b]) {
        assert!(m.contains("multi-buffer") && !m.contains("pmd-pool"), "{m}");
    }
    assert!(ping_df(Some(&a.name), "10.93.1.2", 8972, 3), "a -> b jumbo");
    assert!(ping_df(Some(&b.name), "10.93.1.1", 8972, 3), "b -> a jumbo");
    let echoed = udp_echoes(&a.name, "10.93.1.1", &b.name, "10.93.1.2", 8972, 20);
    let stats = d.ok(&["port-stats", &bridge]).text;
    assert_eq!(echoed, 20, "9000-byte UDP both ways:\n{stats}");
    for host in [&host_a, &host_b] {
        let rx = port_counter(&d, &bridge, host, "rx_multi_buffer");
        let tx = port_counter(&d, &bridge, host, "tx_multi_buffer");
        assert!(rx >= 26 && tx >= 26, "{host}: rx {rx} tx {tx}\n{stats}");
    }
    let reasons = d.ok(&["drop-reasons"]).json;
    assert!(
        !reasons.to_string().contains("bad-chains"),
        "no malformed chains: {reasons:#}"
    );

    // b's port back at 1500: the jumbo frame is named on its transmit.
    d.ok(&["set-port", &host_b, "mtu_request=1500"]);
    assert!(!ping_df(Some(&a.name), "10.93.1.2", 8972, 1));
    let dropped = port_counter(&d, &bridge, &host_b, "tx_mtu_exceeded");
    assert!(dropped >= 1, "the jumbo ping is named on b's transmit");
    assert!(ping_df(Some(&a.name), "10.93.1.2", 1472, 2), "1500 still");
    d.ok(&["set-port", &host_b, "mtu_request=9000"]);

    // a's port asks for 4000 while its veth (set behind the switch's back) takes 9000: what
    // arrives longer than 4018 bytes is named on a's receive.
    d.ok(&["set-port", &host_a, "mtu_request=4000"]);
    common::run(&["ip", "link", "set", &host_a, "mtu", "9000"]);
    assert!(!ping_df(Some(&a.name), "10.93.1.2", 8972, 1));
    let dropped = port_counter(&d, &bridge, &host_a, "rx_mtu_exceeded");
    assert!(dropped >= 1, "the jumbo ping is named on a's receive");
    let key = format!("port.{host_a}.rx-mtu-exceeded");
    let reasons = d.ok(&["drop-reasons"]).json;
    assert_eq!(reasons[&key].as_u64(), Some(dropped), "{reasons:#}");
    assert!(ping_df(Some(&a.name), "10.93.1.2", 3972, 2), "4000 crosses");

    // Beyond any port's MTU: refused naming the field, nothing changed.
    let e = d.err(&["set-port", &host_a, "mtu_request=9703"]);
    assert!(e.contains("mtu_request"), "{e}");
    assert_eq!(show_port(&d, &host_a)["mtu_request"], 4000);
}

/// Without XDP multi-buffer (`multi-buffer=false`, what a kernel that refuses `XDP_USE_SG` gets
/// too) a queue's UMEM frames are 4,096 bytes: 3,600-byte IP packets cross whole, each in one
/// frame, and `mtu_request` above 3822 is refused naming the field and the limit. With the
/// 2,048-byte frames of before, every such frame would be lost in the kernel (`rx-too-long`).
#[test]
fn frames_up_to_a_4k_umem_frame_cross_afxdp_ports_without_multi_buffer() {
    require_root!();
    let bridge = common::unique_bridge("vm");
    let d = DaemonProc::start(&format!("[[bridge]]\nname = \"{bridge}\"\nlocal = false\n"));
    let (a, b) = (TestNs::new(), TestNs::new());
    let host_a = d.attach(&bridge, &a, "10.93.2.1/24", "afxdp");
    let host_b = d.attach(&bridge, &b, "10.93.2.2/24", "afxdp");
    for ns in [&a.name, &b.name] {
        common::run(&["ip", "-n", ns, "link", "set", "eth0", "mtu", "3600"]);
    }
    // Too large for one 4 KiB frame: refused before the port opens, naming the limit.
    d.ok(&["del-port", &bridge, &host_a]);
    let e = d.err(&[
        "add-port",
        &bridge,
        &host_a,
        "type=afxdp",
        "multi-buffer=false",
        "mtu_request=3823",
    ]);
    assert!(
        e.starts_with("mtu_request") && e.contains("at most 3822"),
        "{e}"
    );
    for host in [&host_a, &host_b] {
        if host == &host_b {
            d.ok(&["del-port", &bridge, host]);
        }
        let added = d
            .ok(&[
                "add-port",
                &bridge,
                host,
                "type=afxdp",
                "multi-buffer=false",
                "mtu_request=3600",
            ])
            .text;
        assert!(!added.contains("multi-buffer"), "{added}");
        assert_eq!(kernel_mtu(None, host), 3600, "the veth took it under XDP");
    }
    // The pools grew past 2 KiB frames: the queues stay on their own (4 KiB-frame) UMEMs.
    for m in reopened_modes(&d, &[&host_a, &host_b]) {
        assert!(
            !m.contains("multi-buffer") && !m.contains("pmd-pool"),
            "{m}"
        );
    }
    for host in [&host_a, &host_b] {
        let opts = show_port(&d, host)["options"].to_string();
        assert!(opts.contains("multi-buffer=false"), "{opts}");
    }
    assert!(
        ping_df(Some(&a.name), "10.93.2.2", 3572, 3),
        "a -> b, 3614-byte frames"
    );
    assert!(
        ping_df(Some(&b.name), "10.93.2.1", 3572, 3),
        "b -> a, 3614-byte frames"
    );
    let echoed = udp_echoes(&a.name, "10.93.2.1", &b.name, "10.93.2.2", 3572, 20);
    let stats = d.ok(&["port-stats", &bridge]).text;
    assert_eq!(echoed, 20, "3600-byte UDP both ways:\n{stats}");
    for host in [&host_a, &host_b] {
        for c in [
            "rx_multi_buffer",
            "tx_multi_buffer",
            "rx_too_long",
            "rx_dropped",
        ] {
            assert_eq!(port_counter(&d, &bridge, host, c), 0, "{host} {c}\n{stats}");
        }
    }
    // At run time too: above 3822 refused, nothing changed.
    let e = d.err(&["set-port", &host_a, "mtu_request=3823"]);
    assert!(
        e.starts_with("mtu_request") && e.contains("at most 3822"),
        "{e}"
    );
    assert_eq!(show_port(&d, &host_a)["mtu_request"], 3600);
    assert!(ping_df(Some(&a.name), "10.93.2.2", 3572, 1), "still 3600");
}

#[test]
fn jumbo_udp_crosses_a_vhost_user_port_to_testpmd_and_back() {
    require_root!();
    if !common::have_testpmd() {
        eprintln!("SKIP: dpdk-testpmd (Debian dpdk-dev) is not installed");
        return;
    }
    let bridge = common::unique_bridge("vm");
    let d = DaemonProc::start(&format!("[[bridge]]\nname = \"{bridge}\"\nlocal = false\n"));
    let a = TestNs::new();
    let host_a = d.attach(&bridge, &a, "10.93.2.1/24", "afpacket");
    common::run(&["ip", "-n", &a.name, "link", "set", "eth0", "mtu", "9000"]);
    d.ok(&["set-port", &host_a, "mtu_request=9000"]);
    let port = format!("vu{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let o = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .args(["attach", &bridge, "--virtio-user", &port, "--socket-dir"])
        .arg(d.dir.path())
        .args(["--json", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let att: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    d.ok(&["set-port", &port, "mtu_request=9000"]);
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let eal = strings(&att["eal_args"]);
    let testpmd = strings(&att["testpmd"]);
    // The container swaps L2 to L4 of what it receives (a datagram to an address behind it
    // comes back as that address's answer); its port takes 9018-byte frames, received in
    // 2 KiB buffers merged by the switch (VIRTIO_NET_F_MRG_RXBUF) and sent back chained.
    let mut app: Vec<&str> = testpmd[eal.len() + 2..]
        .iter()
        .map(String::as_str)
        .filter(|&a| a != "-i")
        .collect();
    app.extend([
        "--forward-mode=5tswap",
        "--max-pkt-len=9018",
        "--enable-scatter",
    ]);
    let guest = common::TestPmd::start_with(d.dir.path(), 1, &eal, &app);
    let deadline = Instant::now() + Duration::from_secs(20);
    while show_port(&d, &port)["state"] != "up"
        || !guest.log().contains("packet forwarding - ports=")
    {
        assert!(Instant::now() < deadline, "no guest:\n{}", guest.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    common::run(&[
        "ip",
        "-n",
        &a.name,
        "neigh",
        "replace",
        "10.93.2.99",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "eth0",
    ]);
    // 8972 bytes of UDP payload: 9000-byte IP packets, 9014-byte frames, DF set.
    let script = "import socket\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.93.2.1',0))\n\
        s.setsockopt(socket.IPPROTO_IP,10,2)\n\
        s.settimeout(2)\nok=0\n\
        for i in range(20):\n    m=(b'%04d' % i)*2243\n    s.sendto(m,('10.93.2.99',7777))\n    \
        try:\n        d,a=s.recvfrom(9100)\n        ok+=(d==m and a==('10.93.2.99',7777))\n    \
        except socket.timeout:\n        pass\n\
        print(ok)\n";
    let out = Command::new("ip")
        .args(["netns", "exec", &a.name, common::python(), "-c", script])
        .output()
        .unwrap();
    let echoed: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let stats = d.ok(&["port-stats", &bridge]).text;
    assert_eq!(
        echoed,
        20,
        "jumbo echoes: {}\n{stats}\n{}",
        String::from_utf8_lossy(&out.stderr),
        guest.log()
    );
    assert!(
        port_counter(&d, &bridge, &port, "rx_packets") >= 20,
        "{stats}"
    );
    // DPDK 22.11's virtio-user masks VIRTIO_NET_F_MTU out of what it acks and never sends
    // VHOST_USER_NET_SET_MTU: no guest MTU is shown, and the port's stays its own.
    let shown = show_port(&d, &port);
    let mode = shown["queues"][0]["mode"].to_string();
    assert!(!mode.contains("guest-mtu"), "{mode}");
    assert_eq!(shown["mtu"], 9000);
    guest.kill();
}
