#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Faucet (PyPI `faucet`, on os-ken; `scripts/setup.sh` installs it pinned in
//! /opt/vecswitch-faucet) as the OpenFlow controller of vecswitch bridges, with containers in
//! network namespaces (root; skips without root or without Faucet):
//! - one datapath of three ports in two VLANs, one port tagged, and an ACL: hosts of a VLAN
//!   ping and talk TCP, hosts of different VLANs do not reach each other, the ACL drops what it
//!   names, and Faucet's Prometheus metrics show the datapath up and each host learned on its
//!   port and VLAN;
//! - two datapaths (two bridges of one daemon) joined by a link, a plain trunk or a Faucet
//!   stack (LLDP through PACKET_OUT and PACKET_IN, sw1 the root): Faucet's multi-switch L2;
//! - Faucet's router: VIPs on two VLANs joined by `routers:` (ARP and ping of the VIPs by
//!   PACKET_OUT, hosts resolved by ARP, FIB rules with dec_ttl and MAC rewrites);
//! - `group_table: true`: a VLAN flooded through an OpenFlow `all` group;
//! - `use_idle_timeout: true`: learned hosts idle out (FLOW_REMOVED) and are relearned.
//!
//! Faucet gets a free TCP port on 127.0.0.1 for OpenFlow and another for Prometheus; the
//! bridges connect to it with `set-controller BR tcp:127.0.0.1:PORT`, fail mode secure, and
//! the datapath id its faucet.yaml names. The kernel here has no 802.1Q module, so the tagged
//! host tags and untags its frames with a tc BPF program (`faucet_vlan_tag.bpf.c`). Faucet,
//! the namespaces, links and daemons are removed by drop guards, also when a check fails; a
//! failing test prints the end of Faucet's log.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_root, ping, tcp_transfer, DaemonProc, RootVeth, TestNs};
use tools::netns::ns_exec;

/// The tests take turns: each runs a daemon with a busy PMD and Faucet.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Faucet's executable: `$VECSWITCH_FAUCET`, else setup.sh's venv, else `faucet` on PATH.
fn faucet_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VECSWITCH_FAUCET") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from("/opt/vecswitch-faucet/bin/faucet");
    if venv.exists() {
        return Some(venv);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v faucet"])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

/// Skips the test without root or without Faucet; otherwise waits for its turn (held to the
/// end of the test) and gives Faucet's executable.
macro_rules! require_root_and_faucet {
    () => {{
        if !is_root() {
            eprintln!("SKIP: the Faucet tests need root");
            return;
        }
        let Some(bin) = faucet_bin() else {
            eprintln!("SKIP: Faucet is not installed (scripts/setup.sh installs it)");
            return;
        };
        (bin, SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
    }};
}

/// A TCP port of 127.0.0.1 nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on TCP `port` of 127.0.0.1 (read from /proc/net/tcp, so that
/// the check is no connection Faucet would take for a switch).
fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == want && f[3] == "0A"
        })
}

/// A running Faucet with its own config, logs, OpenFlow port and Prometheus port; killed on
/// drop. A test that fails prints the end of its logs.
struct Faucet {
    child: Child,
    dir: tempfile::TempDir,
    of_port: u16,
    prom_port: u16,
}

impl Faucet {
    fn start(bin: &Path, yaml: &str) -> Faucet {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("faucet.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let (of_port, prom_port) = (free_port(), free_port());
        // faucet execs osken-manager, which sits beside it.
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::fs::File::create(dir.path().join("faucet.out")).unwrap();
        let child = Command::new(bin)
            .args([
                "--ryu-ofp-listen-host=127.0.0.1",
                &format!("--ryu-ofp-tcp-listen-port={of_port}"),
            ])
            .env("PATH", path)
            .env("FAUCET_CONFIG", &cfg)
            .env("FAUCET_LOG", dir.path().join("faucet.log"))
            .env(
                "FAUCET_EXCEPTION_LOG",
                dir.path().join("faucet_exception.log"),
            )
            .env("FAUCET_PROMETHEUS_ADDR", "127.0.0.1")
            .env("FAUCET_PROMETHEUS_PORT", prom_port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut f = Faucet {
            child,
            dir,
            of_port,
            prom_port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(listening(of_port) && listening(prom_port)) {
            if let Ok(Some(s)) = f.child.try_wait() {
                panic!("faucet exited ({s}): {}", f.file("faucet.out"));
            }
            assert!(Instant::now() < deadline, "faucet did not start listening");
            std::thread::sleep(Duration::from_millis(100));
        }
        f
    }

    /// The `set-controller` target.
    fn target(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.of_port)
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn log(&self) -> String {
        self.file("faucet.log")
    }

    /// The Prometheus exposition text.
    fn metrics(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.prom_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    /// The value of metric `name` whose labels include `labels`.
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_in(&self.metrics(), name, labels)
    }

    /// Waits up to 30 s for metric `name` with `labels` to equal `want`.
    fn wait_metric(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        self.wait_metric_where(name, labels, &want.to_string(), |v| v == want);
    }

    /// Waits up to 30 s for metric `name` with `labels` to be present and pass `ok`
    /// (`what` says what is wanted, for the message).
    fn wait_metric_where(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.metric(name, labels);
            if got.is_some_and(&ok) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{labels:?} is {got:?}, not {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Faucet {
    /// Waits up to 30 s for Faucet's `learned_macs` metric (its value is the MAC) to show
    /// `ns`'s eth0 on `port` and `vlan` of datapath `dp_name`.
    fn wait_learned(&self, dp_name: &str, port: &str, vlan: &str, ns: &TestNs) {
        let mac = mac_number(ns);
        let labels = [
            format!("dp_name=\"{dp_name}\""),
            format!("port=\"{port}\""),
            format!("vlan=\"{vlan}\""),
        ];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let metrics = self.metrics();
            let learned = metrics.lines().any(|l| {
                l.starts_with("learned_macs{")
                    && labels.iter().all(|x| l.contains(x.as_str()))
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) == Some(mac)
            });
            if learned {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{dp_name} did not learn {} ({mac}) on port {port} vlan {vlan}:\n{}",
                ns.name,
                metrics
                    .lines()
                    .filter(|l| l.starts_with("learned_macs{"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Faucet {
    /// Waits up to 30 s for Faucet's log to say that datapath `dp_name` learned `ns`'s eth0 on
    /// `port` in `vlan` (a stack's hosts are not in `learned_macs`).
    fn wait_logged(&self, dp_name: &str, port: &str, vlan: &str, ns: &TestNs) {
        let (mac, deadline) = (mac(ns), Instant::now() + Duration::from_secs(30));
        let said = |l: &&str| {
            l.contains(&format!(" {dp_name} L2 learned on Port {port} {mac} "))
                && l.contains(&format!("Port {port} VLAN {vlan} "))
        };
        while !self.log().lines().any(|l| said(&l)) {
            assert!(
                Instant::now() < deadline,
                "{dp_name} did not log {} ({mac}) on port {port} vlan {vlan}",
                ns.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Faucet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- end of faucet.log:");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            eprintln!("--- faucet.out:\n{}", self.file("faucet.out"));
            eprintln!(
                "--- faucet_exception.log:\n{}",
                self.file("faucet_exception.log")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `name{labels...}` in Prometheus text `text`.
fn metric_in(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.split_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

fn ns_ok(ns: &TestNs, args: &[&str]) {
    let o = ns_exec(&ns.target, args).unwrap();
    assert!(
        o.status.success(),
        "{args:?} in {}: {}",
        ns.name,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// eth0's MAC in `ns`, as the number Faucet's `learned_macs` metric gives.
fn mac_number(ns: &TestNs) -> f64 {
    u64::from_str_radix(&mac(ns).replace(':', ""), 16).unwrap() as f64
}

/// eth0's MAC in `ns` (`aa:bb:cc:dd:ee:ff`).
fn mac(ns: &TestNs) -> String {
    // `ip`, not /sys: ns_exec enters the namespace without mounting its sysfs.
    let o = ns_exec(&ns.target, &["ip", "-br", "link", "show", "eth0"]).unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    text.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("ip -br link: {text}"))
        .to_string()
}

/// Makes `ns`'s eth0 a host tagged in VLAN `vid`: every frame it sends carries the tag, and it
/// takes only frames tagged `vid` (and untags them). The tag goes into the frame, not the
/// skb's offload metadata (txvlan off).
fn tag_host(ns: &TestNs, dir: &Path, vid: u16) {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/faucet_vlan_tag.bpf.c");
    let obj = dir.join(format!("vlan{vid}.o"));
    let o = Command::new("clang")
        .args([
            "-O2",
            "-target",
            "bpf",
            &format!("-DVID={vid}"),
            "-c",
            src,
            "-o",
        ])
        .arg(&obj)
        .output()
        .expect("clang (scripts/setup.sh installs it)");
    assert!(
        o.status.success(),
        "clang: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let obj = obj.to_str().unwrap();
    let _ = ns_exec(&ns.target, &["ethtool", "-K", "eth0", "txvlan", "off"]);
    ns_ok(ns, &["tc", "qdisc", "add", "dev", "eth0", "clsact"]);
    for dir in ["egress", "ingress"] {
        ns_ok(
            ns,
            &[
                "tc", "filter", "add", "dev", "eth0", dir, "bpf", "da", "obj", obj, "sec", dir,
            ],
        );
    }
}

/// Whether a TCP connection from `client` to `ip:port` in `server` (a listener started there
/// first) is set up within 3 s.
fn tcp_connects(server: &TestNs, ip: &str, port: u16, client: &TestNs) -> bool {
    let script = format!(
        "import socket\ns=socket.socket()\ns.bind(('{ip}',{port}))\ns.listen(1)\n\
         print('up',flush=True)\ns.settimeout(6)\ntry:\n    s.accept()\nexcept OSError:\n    pass\n"
    );
    let mut srv = tools::netns::ns_command(&server.target, tools::probe::python())
        .unwrap()
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = [0u8; 3];
    srv.stdout.as_mut().unwrap().read_exact(&mut up).unwrap();
    let client_script = format!(
        "import socket\ntry:\n    socket.create_connection(('{ip}',{port}),timeout=3)\n    \
         print('connected')\nexcept OSError as e:\n    print(e)\n"
    );
    let o = ns_exec(
        &client.target,
        &[tools::probe::python(), "-c", &client_script],
    )
    .unwrap();
    let _ = srv.kill();
    let _ = srv.wait();
    String::from_utf8_lossy(&o.stdout).trim() == "connected"
}

/// Whether `count` pings from `from` to `addr` are all answered within 15 s of tries (the
/// first packets of a host go through Faucet's learning).
fn pings(from: &TestNs, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if ping(&from.target, addr, 3) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// Sets up `bridge` for Faucet: fail mode secure, datapath id `dpid` (hex), and `faucet` as
/// its controller; waits until Faucet says the datapath is up.
fn connect(d: &DaemonProc, bridge: &str, dpid: u64, dp_name: &str, faucet: &Faucet) {
    d.ok(&["set-fail-mode", bridge, "secure"]);
    d.ok(&["set-datapath-id", bridge, &format!("{dpid:016x}")]);
    d.ok(&["set-controller", bridge, &faucet.target()]);
    faucet.wait_metric("dp_status", &[("dp_name", dp_name)], 1.0);
    let show = d.ok(&["show", "--json"]).json;
    let br = show["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == bridge)
        .unwrap();
    let conn = &br["openflow"]["connections"][0];
    assert_eq!(conn["state"], "connected", "{br:#}");
    assert_eq!(conn["version"], "OpenFlow13", "{br:#}");
}

/// A daemon with one bridge (no LOCAL port), and the bridge's name.
fn one_bridge() -> (String, DaemonProc) {
    let bridge = common::unique_bridge("fa");
    let d = DaemonProc::start(&format!("[[bridge]]\nname = \"{bridge}\"\nlocal = false\n"));
    (bridge, d)
}

/// The ofport of `port` on `bridge`.
fn ofport(d: &DaemonProc, bridge: &str, port: &str) -> u64 {
    let show = d.ok(&["show", "--json"]).json;
    show["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == bridge)
        .and_then(|b| {
            b["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == port)
        })
        .unwrap_or_else(|| panic!("no port {port} on {bridge}: {show:#}"))["ofport"]
        .as_u64()
        .unwrap()
}

const ONE_DP: &str = r#"
vlans:
  office:
    vid: 100
  guest:
    vid: 200
acls:
  no-tcp-5001:
    - rule:
        dl_type: 0x800
        nw_proto: 6
        tcp_dst: 5001
        actions:
          allow: 0
    - rule:
        actions:
          allow: 1
dps:
  sw1:
    dp_id: 0xa01
    hardware: "Open vSwitch"
    interfaces:
      1:
        native_vlan: office
        acls_in: [no-tcp-5001]
      2:
        tagged_vlans: [office, guest]
      3:
        native_vlan: guest
"#;

#[test]
fn faucet_runs_a_bridge_of_two_vlans_with_a_tagged_port_and_an_acl() {
    let (bin, _turn) = require_root_and_faucet!();
    let (bridge, d) = one_bridge();
    // a: office, untagged on port 1 (behind the ACL); b: office, tagged on port 2 (a trunk of
    // office and guest); c: guest, untagged on port 3. One subnet: only the VLANs part them.
    let (a, b, c) = (TestNs::new(), TestNs::new(), TestNs::new());
    for (i, (ns, ip)) in [
        (&a, "10.94.0.1/24"),
        (&b, "10.94.0.2/24"),
        (&c, "10.94.0.3/24"),
    ]
    .into_iter()
    .enumerate()
    {
        let host = d.attach(&bridge, ns, ip, "afxdp");
        assert_eq!(ofport(&d, &bridge, &host), i as u64 + 1);
    }
    tag_host(&b, d.dir.path(), 100);
    d.ok(&["set-fail-mode", &bridge, "secure"]);
    // Secure and no controller yet: no rules, nothing crosses.
    assert!(!ping(&a.target, "10.94.0.2", 1), "secure with no rules");

    let faucet = Faucet::start(&bin, ONE_DP);
    connect(&d, &bridge, 0xa01, "sw1", &faucet);

    // Within office: untagged port 1 and tagged port 2 (push and pop VLAN 100), ping and TCP.
    assert!(pings(&a, "10.94.0.2"), "office: a -> b (tagged)");
    assert!(pings(&b, "10.94.0.1"), "office: b (tagged) -> a");
    assert_eq!(
        tcp_transfer(&b.target, "10.94.0.2", &a.target, 1 << 20).unwrap(),
        1 << 20
    );
    // Across VLANs: guest reaches neither, not even over the trunk port b is on.
    assert!(!ping(&c.target, "10.94.0.1", 2), "guest -> office");
    assert!(!ping(&c.target, "10.94.0.2", 2), "guest -> office (tagged)");
    assert!(!ping(&a.target, "10.94.0.3", 2), "office -> guest");
    // The ACL on port 1 drops TCP to port 5001 and lets the rest through.
    assert!(tcp_connects(&b, "10.94.0.2", 5002, &a), "tcp 5002 a -> b");
    assert!(
        !tcp_connects(&b, "10.94.0.2", 5001, &a),
        "the ACL lets tcp 5001 through"
    );
    let flows = d.ok(&["dump-flows", &bridge, "table=0"]).text;
    let acl = flows
        .lines()
        .find(|l| l.contains("in_port=1,tp_dst=5001") && l.ends_with("actions=drop"))
        .unwrap_or_else(|| panic!("no ACL rule in\n{flows}"));
    assert!(!acl.contains("n_packets=0,"), "{acl}");

    // Faucet saw each host on its port and VLAN (learned_macs' value is the MAC).
    let sw1 = ("dp_name", "sw1");
    faucet.wait_metric("vlan_hosts_learned", &[sw1, ("vlan", "100")], 2.0);
    faucet.wait_metric("vlan_hosts_learned", &[sw1, ("vlan", "200")], 1.0);
    for (ns, port, vlan) in [(&a, "1", "100"), (&b, "2", "100"), (&c, "3", "200")] {
        faucet.wait_learned("sw1", port, vlan, ns);
    }
    // The switch refused nothing Faucet sent, and Faucet raised no exception.
    assert_eq!(faucet.metric("of_errors_total", &[sw1]), Some(0.0));
    assert_eq!(
        faucet.metric("of_dp_disconnections_total", &[sw1]),
        Some(0.0)
    );
    assert_eq!(faucet.file("faucet_exception.log").trim(), "");
    assert!(
        faucet.log().contains("L2 learned on Port 2"),
        "{}",
        faucet.log()
    );
}

/// Two datapaths, sw1 (0xa11) and sw2 (0xa12), each with an office host on port 1 and a
/// guest host on port 2, joined by port 3 as `link1` / `link2` say; `root` goes in sw1.
fn two_dps(link1: &str, link2: &str, root: &str) -> String {
    let dp = |name: &str, id: &str, link: &str, extra: &str| {
        format!(
            "  {name}:\n    dp_id: {id}\n    hardware: \"Open vSwitch\"\n{extra}    interfaces:\n\
             \x20     1:\n        native_vlan: office\n\
             \x20     2:\n        native_vlan: guest\n\
             \x20     3:\n        {link}\n"
        )
    };
    format!(
        "vlans:\n  office:\n    vid: 100\n  guest:\n    vid: 200\ndps:\n{}{}",
        dp("sw1", "0xa11", link1, root),
        dp("sw2", "0xa12", link2, "")
    )
}

/// Two bridges of one daemon under one Faucet, joined by a veth pair (port 3 of each) that
/// `yaml` configures (see `two_dps`): hosts of a VLAN reach each other across the link, hosts of
/// different VLANs do not, and each switch learns the other's hosts on port 3.
fn two_bridges(bin: &Path, yaml: &str, stack: bool) {
    let (br1, br2) = (common::unique_bridge("fa"), common::unique_bridge("fa"));
    let d = DaemonProc::start(&format!(
        "[[bridge]]\nname = \"{br1}\"\nlocal = false\n\
         [[bridge]]\nname = \"{br2}\"\nlocal = false\n"
    ));
    // sw1: a (office) and b (guest); sw2: c (office) and d2 (guest).
    let (a, b, c, d2) = (TestNs::new(), TestNs::new(), TestNs::new(), TestNs::new());
    for (br, ns, ip) in [
        (&br1, &a, "10.95.0.1/24"),
        (&br1, &b, "10.95.0.2/24"),
        (&br2, &c, "10.95.0.3/24"),
        (&br2, &d2, "10.95.0.4/24"),
    ] {
        d.attach(br, ns, ip, "afxdp");
    }
    let link = RootVeth::new("fl");
    d.ok(&["add-port", &br1, &link.outer, "ofport=3"]);
    d.ok(&["add-port", &br2, &link.inner, "ofport=3"]);

    let faucet = Faucet::start(bin, yaml);
    connect(&d, &br1, 0xa11, "sw1", &faucet);
    connect(&d, &br2, 0xa12, "sw2", &faucet);
    if stack {
        // LLDP over the stack ports (PACKET_OUT there, PACKET_IN here) brings them up
        // (state 3), and sw1 is the root.
        for sw in ["sw1", "sw2"] {
            faucet.wait_metric("port_stack_state", &[("dp_name", sw), ("port", "3")], 3.0);
        }
        faucet.wait_metric("is_dp_stack_root", &[("dp_name", "sw1")], 1.0);
    }

    assert!(pings(&a, "10.95.0.3"), "office: sw1 -> sw2");
    assert!(pings(&c, "10.95.0.1"), "office: sw2 -> sw1");
    assert!(pings(&b, "10.95.0.4"), "guest: sw1 -> sw2");
    assert_eq!(
        tcp_transfer(&c.target, "10.95.0.3", &a.target, 1 << 20).unwrap(),
        1 << 20
    );
    assert!(!ping(&a.target, "10.95.0.4", 2), "office -> guest across");
    assert!(!ping(&b.target, "10.95.0.3", 2), "guest -> office across");

    // Each switch learned the other's hosts on port 3, in their VLANs.
    for (sw, ns, vlan) in [
        ("sw1", &c, "100"),
        ("sw1", &d2, "200"),
        ("sw2", &a, "100"),
        ("sw2", &b, "200"),
    ] {
        if stack {
            faucet.wait_logged(sw, "3", vlan, ns);
        } else {
            faucet.wait_learned(sw, "3", vlan, ns);
        }
    }
    for sw in ["sw1", "sw2"] {
        for vlan in ["100", "200"] {
            faucet.wait_metric(
                "vlan_hosts_learned",
                &[("dp_name", sw), ("vlan", vlan)],
                2.0,
            );
        }
        assert_eq!(
            faucet.metric("of_errors_total", &[("dp_name", sw)]),
            Some(0.0)
        );
    }
    assert_eq!(faucet.file("faucet_exception.log").trim(), "");
}

#[test]
fn faucet_joins_two_bridges_by_a_trunk_into_one_l2_network() {
    let (bin, _turn) = require_root_and_faucet!();
    let trunk = "tagged_vlans: [office, guest]";
    two_bridges(&bin, &two_dps(trunk, trunk, ""), false);
}

#[test]
fn faucet_stacks_two_bridges_into_one_l2_network() {
    let (bin, _turn) = require_root_and_faucet!();
    let yaml = two_dps(
        "stack: {dp: sw2, port: 3}",
        "stack: {dp: sw1, port: 3}",
        "    stack:\n      priority: 1\n",
    );
    two_bridges(&bin, &yaml, true);
}

#[test]
fn prometheus_text_is_read_by_name_and_labels() {
    let text = "# HELP dp_status status\n\
                dp_status{dp_id=\"0x1\",dp_name=\"sw1\"} 1.0\n\
                vlan_hosts_learned{dp_id=\"0x1\",dp_name=\"sw1\",vlan=\"100\"} 2.0\n\
                vlan_hosts_learned{dp_id=\"0x1\",dp_name=\"sw1\",vlan=\"200\"} 1.0\n";
    assert_eq!(
        metric_in(text, "dp_status", &[("dp_name", "sw1")]),
        Some(1.0)
    );
    assert_eq!(
        metric_in(text, "vlan_hosts_learned", &[("vlan", "200")]),
        Some(1.0)
    );
    assert_eq!(metric_in(text, "dp_status", &[("dp_name", "sw2")]), None);
    assert_eq!(metric_in(text, "dp", &[]), None);
}

/// The TTL of the first echo reply `from` gets from `addr` within 15 s of tries (ping's
/// `ttl=N`).
fn reply_ttl(from: &TestNs, addr: &str) -> u8 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let o = ns_exec(&from.target, &["ping", "-n", "-c", "1", "-W", "2", addr]).unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let ttl = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ttl=")?.parse().ok());
        if let Some(ttl) = ttl {
            return ttl;
        }
        assert!(Instant::now() < deadline, "no reply from {addr}: {text}");
    }
}

const ROUTED: &str = r#"
vlans:
  office:
    vid: 100
    faucet_vips: ["10.96.1.254/24"]
  guest:
    vid: 200
    faucet_vips: ["10.96.2.254/24"]
routers:
  office-guest:
    vlans: [office, guest]
dps:
  sw1:
    dp_id: 0xa21
    hardware: "Open vSwitch"
    interfaces:
      1:
        native_vlan: office
      2:
        native_vlan: office
      3:
        native_vlan: guest
"#;

#[test]
fn faucet_routes_between_two_vlans_through_its_vips() {
    let (bin, _turn) = require_root_and_faucet!();
    let (bridge, d) = one_bridge();
    // a and c: office (10.96.1.0/24) on ports 1 and 2; b: guest (10.96.2.0/24) on port 3.
    // Each host's default gateway is its VLAN's VIP, which only Faucet answers.
    let (a, c, b) = (TestNs::new(), TestNs::new(), TestNs::new());
    for (ns, ip, gw) in [
        (&a, "10.96.1.1/24", "10.96.1.254"),
        (&c, "10.96.1.2/24", "10.96.1.254"),
        (&b, "10.96.2.1/24", "10.96.2.254"),
    ] {
        d.attach(&bridge, ns, ip, "afxdp");
        ns_ok(ns, &["ip", "route", "add", "default", "via", gw]);
    }
    let faucet = Faucet::start(&bin, ROUTED);
    connect(&d, &bridge, 0xa21, "sw1", &faucet);

    // The VIPs answer ARP and ping (Faucet's PACKET_OUTs).
    assert!(pings(&a, "10.96.1.254"), "a -> office VIP");
    assert!(pings(&b, "10.96.2.254"), "b -> guest VIP");
    // Across the VLANs through the router: Faucet resolves each host by ARP and installs its
    // FIB rule (set_field vlan_vid, eth_src and eth_dst, dec_ttl).
    assert!(pings(&a, "10.96.2.1"), "office -> guest, routed");
    assert!(pings(&b, "10.96.1.1"), "guest -> office, routed");
    assert_eq!(
        tcp_transfer(&b.target, "10.96.2.1", &a.target, 1 << 20).unwrap(),
        1 << 20
    );
    // A routed reply lost one hop of its TTL (Linux sends 64); a switched one did not.
    assert_eq!(reply_ttl(&a, "10.96.2.1"), 63, "routed a -> b");
    assert_eq!(reply_ttl(&b, "10.96.1.1"), 63, "routed b -> a");
    assert_eq!(reply_ttl(&a, "10.96.1.2"), 64, "switched a -> c");
    // A packet with no hop left: its dec_ttl hands it to Faucet (a PACKET_IN with reason
    // invalid_ttl, which Faucet's SET_ASYNC asks for), and Faucet answers ICMP time exceeded
    // from the VIP, as with Open vSwitch (traceroute's first hop).
    let o = ns_exec(
        &a.target,
        &["ping", "-n", "-c", "1", "-t", "1", "-W", "2", "10.96.2.1"],
    )
    .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("From 10.96.1.254 icmp_seq=1 Time to live exceeded"),
        "{text}"
    );

    // The FIB rule from office to b: the TTL decremented, into guest, Faucet's MAC as
    // source and b's as destination; it carried the traffic.
    let flows = d.ok(&["dump-flows", &bridge]).text;
    let to_b = flows
        .lines()
        .find(|l| l.contains("ip,dl_vlan=100,nw_dst=10.96.2.1 "))
        .unwrap_or_else(|| panic!("no FIB rule to b in\n{flows}"));
    let want = format!(
        "actions=dec_ttl,mod_vlan_vid:200,mod_dl_src:0e:00:00:00:00:01,mod_dl_dst:{},goto_table:",
        mac(&b)
    );
    assert!(to_b.contains(&want), "{want} not in {to_b}");
    assert!(!to_b.contains("n_packets=0,"), "{to_b}");

    // Faucet knows a and b as IPv4 neighbors of their VLANs.
    let sw1 = ("dp_name", "sw1");
    for vlan in ["100", "200"] {
        let labels = [sw1, ("vlan", vlan), ("ipv", "4")];
        faucet.wait_metric_where("vlan_neighbors", &labels, "at least 1", |n| n >= 1.0);
    }
    faucet.wait_learned("sw1", "1", "100", &a);
    faucet.wait_learned("sw1", "3", "200", &b);
    assert_eq!(faucet.metric("of_errors_total", &[sw1]), Some(0.0));
    assert_eq!(faucet.file("faucet_exception.log").trim(), "");
}

/// `dump-group-stats` of `bridge`: each group's id and packet count.
fn group_packets(d: &DaemonProc, bridge: &str) -> Vec<(u32, u64)> {
    let text = d.ok(&["dump-group-stats", bridge]).text;
    text.lines()
        .filter_map(|l| {
            let field = |k: &str| {
                l.trim()
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.parse::<u64>().ok())
            };
            Some((field("group_id=")? as u32, field("packet_count=")?))
        })
        .collect()
}

const GROUP_FLOOD: &str = r#"
vlans:
  office:
    vid: 100
dps:
  sw1:
    dp_id: 0xa31
    hardware: "Open vSwitch"
    group_table: true
    interfaces:
      1:
        native_vlan: office
      2:
        native_vlan: office
      3:
        native_vlan: office
"#;

#[test]
fn faucet_floods_a_vlan_through_an_all_group() {
    let (bin, _turn) = require_root_and_faucet!();
    let (bridge, d) = one_bridge();
    let (a, b, c) = (TestNs::new(), TestNs::new(), TestNs::new());
    let mut ports = vec![];
    for (ns, ip) in [
        (&a, "10.97.0.1/24"),
        (&b, "10.97.0.2/24"),
        (&c, "10.97.0.3/24"),
    ] {
        ports.push(d.attach(&bridge, ns, ip, "afxdp"));
    }
    let faucet = Faucet::start(&bin, GROUP_FLOOD);
    connect(&d, &bridge, 0xa31, "sw1", &faucet);

    // Faucet's flood group of VLAN 100 (its id is the VID): type all, a bucket per port that
    // untags and outputs. The flood rules send to it instead of listing the ports.
    let deadline = Instant::now() + Duration::from_secs(30);
    let groups = loop {
        let text = d.ok(&["dump-groups", &bridge]).text;
        if text.contains("group_id=100,") {
            break text;
        }
        assert!(Instant::now() < deadline, "no group 100 in\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let g100 = groups
        .lines()
        .find(|l| l.contains("group_id=100,"))
        .unwrap();
    assert!(g100.contains("type=all"), "{g100}");
    for port in 1..=3 {
        assert!(
            g100.contains(&format!("bucket=actions=pop_vlan,output:{port}")),
            "{g100}"
        );
    }
    let flows = d.ok(&["dump-flows", &bridge]).text;
    assert!(flows.contains("actions=group:100"), "{flows}");
    let g100_packets = |d: &DaemonProc| {
        group_packets(d, &bridge)
            .into_iter()
            .find(|(id, _)| *id == 100)
            .unwrap()
            .1
    };

    // Unknown unicast: a and b know each other's MAC (no ARP), and the switch knows neither
    // until they send. a's first echo goes to a MAC nobody learned: the group floods it, to
    // b and to c too.
    for (ns, peer, ip) in [(&a, &b, "10.97.0.2"), (&b, &a, "10.97.0.1")] {
        ns_ok(
            ns,
            &[
                "ip",
                "neigh",
                "replace",
                ip,
                "dev",
                "eth0",
                "lladdr",
                &mac(peer),
                "nud",
                "permanent",
            ],
        );
    }
    let (c_tx, flooded) = (d.tx(&bridge, &ports[2]), g100_packets(&d));
    assert!(pings(&a, "10.97.0.2"), "a -> b (unknown unicast)");
    assert!(d.tx(&bridge, &ports[2]) > c_tx, "nothing flooded to c");
    assert!(
        g100_packets(&d) > flooded,
        "the flood did not use group 100"
    );

    // Broadcast: c resolves a by ARP; the request floods through the group.
    let flooded = g100_packets(&d);
    assert!(pings(&c, "10.97.0.1"), "c -> a (ARP broadcast)");
    assert!(g100_packets(&d) > flooded, "the ARP did not use group 100");
    for (ns, port) in [(&a, "1"), (&b, "2"), (&c, "3")] {
        faucet.wait_learned("sw1", port, "100", ns);
    }
    let sw1 = ("dp_name", "sw1");
    assert_eq!(faucet.metric("of_errors_total", &[sw1]), Some(0.0));
    assert_eq!(faucet.file("faucet_exception.log").trim(), "");
}

/// Faucet learning with idle timeouts: `timeout: 15` and `learn_jitter: 1` make every
/// learned host's eth_src rule `idle_timeout=14` (with send_flow_rem); its eth_dst rule
/// idles out 2 s later (`cache_update_guard_time`). The neighbor timeouts must be under half
/// the learn timeout.
const IDLE_LEARN: &str = r#"
vlans:
  office:
    vid: 100
dps:
  sw1:
    dp_id: 0xa41
    hardware: "Open vSwitch"
    timeout: 15
    learn_jitter: 1
    cache_update_guard_time: 2
    arp_neighbor_timeout: 5
    nd_neighbor_timeout: 5
    use_idle_timeout: true
    interfaces:
      1:
        native_vlan: office
      2:
        native_vlan: office
"#;

/// The eth_src (learning) rule of `ns`'s MAC in `flows`, if there is one.
fn eth_src_rule<'a>(flows: &'a str, ns: &TestNs) -> Option<&'a str> {
    let src = format!("dl_src={}", mac(ns));
    flows.lines().find(|l| l.contains(&src))
}

#[test]
fn faucet_expires_a_quiet_host_by_idle_timeout_and_relearns_it() {
    let (bin, _turn) = require_root_and_faucet!();
    let (bridge, d) = one_bridge();
    let (a, b) = (TestNs::new(), TestNs::new());
    d.attach(&bridge, &a, "10.98.0.1/24", "afxdp");
    d.attach(&bridge, &b, "10.98.0.2/24", "afxdp");
    let faucet = Faucet::start(&bin, IDLE_LEARN);
    connect(&d, &bridge, 0xa41, "sw1", &faucet);
    let sw1 = ("dp_name", "sw1");

    assert!(pings(&a, "10.98.0.2"), "a -> b");
    // From here on neither host sends (IPv6 is off).
    let quiet = Instant::now();
    faucet.wait_learned("sw1", "1", "100", &a);
    faucet.wait_learned("sw1", "2", "100", &b);
    let flows = d.ok(&["dump-flows", &bridge]).text;
    let rule = eth_src_rule(&flows, &a).unwrap_or_else(|| panic!("a not learned in\n{flows}"));
    assert!(rule.contains("idle_timeout=14"), "{rule}");
    assert!(rule.contains("send_flow_rem"), "{rule}");

    // The eth_src rules of the quiet hosts idle out, the switch tells Faucet
    // (FLOW_REMOVED), and Faucet forgets the hosts.
    loop {
        let flows = d.ok(&["dump-flows", &bridge]).text;
        if eth_src_rule(&flows, &a).is_none() && eth_src_rule(&flows, &b).is_none() {
            break;
        }
        assert!(
            quiet.elapsed() < Duration::from_secs(30),
            "not expired after 30 s:\n{flows}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        quiet.elapsed() >= Duration::from_secs(13),
        "expired after {:?}, before the idle timeout",
        quiet.elapsed()
    );
    for ns in [&a, &b] {
        let said = format!("expired src_rule for host {}", mac(ns));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !faucet.log().contains(&said) {
            assert!(Instant::now() < deadline, "Faucet did not log: {said}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    faucet.wait_metric("vlan_hosts_learned", &[sw1, ("vlan", "100")], 0.0);

    // Traffic again: both hosts are relearned.
    assert!(pings(&b, "10.98.0.1"), "b -> a after the expiry");
    faucet.wait_metric("vlan_hosts_learned", &[sw1, ("vlan", "100")], 2.0);
    let flows = d.ok(&["dump-flows", &bridge]).text;
    for ns in [&a, &b] {
        assert!(
            eth_src_rule(&flows, ns).is_some(),
            "{} not relearned in\n{flows}",
            ns.name
        );
    }
    assert_eq!(faucet.metric("of_errors_total", &[sw1]), Some(0.0));
    assert_eq!(faucet.file("faucet_exception.log").trim(), "");
}
