//! What the root tests share: a root check, a command runner that panics with the command's
//! stderr, `VethNs` (a throw-away namespace holding the peer ends of veth pairs), `TestNs` (an
//! empty throw-away namespace for `tools::netns::attach_veth`), and traffic checks between
//! namespaces: `ping`, `tcp_transfer` and `udp_exchange`; and `DaemonProc`, a `vecswitch run`
//! process with its own control socket. Everything made here is deleted by a
//! drop guard, also while unwinding from a failed assertion; names carry the test process's pid
//! and a counter, so test binaries and tests run in parallel.
#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use control::client;
use control::socket::Response;
use pipeline::wire::{ethernet, FrameBuilder};
use ports::PortIo;

use tools::netns::{create_netns, delete_netns, ns_exec, NsTarget};

/// The port's counter `name`; panics, listing them all, when there is none of that name.
pub fn counter(port: &dyn PortIo, name: &str) -> u64 {
    port.counters()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no counter {name} in {:?}", port.counters()))
        .1
}

/// Whether `ifname` has an XDP program attached.
pub fn has_xdp(ifname: &str) -> bool {
    let o = Command::new("ip")
        .args(["-d", "link", "show", "dev", ifname])
        .output()
        .unwrap_or_else(|e| panic!("ip link show: {e}"));
    String::from_utf8_lossy(&o.stdout).contains("prog/xdp")
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    ports::sys::is_root()
}

/// Runs a command; panics with its stderr when it fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("{args:?}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

/// A namespace with the peer ends of `n` veth pairs; the host ends stay here. Dropping it
/// (also while unwinding from a failed assertion) deletes the namespace and the links.
pub struct VethNs {
    pub ns: String,
    pub hosts: Vec<String>,
    pub peers: Vec<String>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl VethNs {
    pub fn new(pairs: usize) -> VethNs {
        let pid = std::process::id() % 100_000;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let ns = format!("vxs-{pid}-{n}");
        let mut me = VethNs {
            ns: ns.clone(),
            hosts: Vec::new(),
            peers: Vec::new(),
        };
        run(&["ip", "netns", "add", &ns]);
        for i in 0..pairs {
            let host = format!("vxh{pid}x{n}x{i}");
            let peer = format!("vxp{pid}x{n}x{i}");
            me.hosts.push(host.clone());
            run(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer, "netns", &ns,
            ]);
            me.peers.push(peer.clone());
            // No IPv6 autoconfiguration chatter on the links.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{peer}.disable_ipv6=1"),
            ]);
            run(&["ip", "link", "set", &host, "up"]);
            run(&["ip", "-n", &ns, "link", "set", &peer, "up"]);
        }
        me
    }

    /// The host end of the first pair.
    pub fn host(&self) -> &str {
        &self.hosts[0]
    }

    /// The namespace end of the first pair.
    pub fn peer(&self) -> &str {
        &self.peers[0]
    }
}

impl Drop for VethNs {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["link", "del", h]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// Debian's `python3` (the one with scapy), else the first on PATH.
pub fn python() -> &'static str {
    tools::probe::python()
}

/// Runs the Python script `script` with `input` as JSON on its stdin and returns the JSON it
/// prints (the OVS comparison scripts under pcaps/ work this way).
#[allow(dead_code)]
pub fn python_json(script: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A veth pair with both ends in this namespace (IPv6 off, up), e.g. for pktgen on `outer`
/// while `inner` is a switch port, or a link between two bridges; deleted on drop.
#[allow(dead_code)]
pub struct RootVeth {
    pub outer: String,
    pub inner: String,
}

impl RootVeth {
    pub fn new(tag: &str) -> RootVeth {
        let id = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let me = RootVeth {
            outer: format!("{tag}{pid}x{id}o"),
            inner: format!("{tag}{pid}x{id}i"),
        };
        run(&[
            "ip", "link", "add", &me.outer, "type", "veth", "peer", "name", &me.inner,
        ]);
        for l in [&me.outer, &me.inner] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{l}/disable_ipv6"), "1");
            run(&["ip", "link", "set", l, "up"]);
        }
        me
    }
}

impl Drop for RootVeth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer])
            .output();
    }
}

/// An empty named network namespace (`vxt-<pid>-<n>`, loopback up), deleted on drop with
/// whatever interfaces are inside (and so the host ends of their veth pairs). `new` turns IPv6
/// off, so that no router solicitations or MLD reports add packets to a test's counts;
/// `with_ipv6` keeps it for tests that use IPv6.
pub struct TestNs {
    pub name: String,
    pub target: NsTarget,
}

impl TestNs {
    pub fn new() -> TestNs {
        let me = TestNs::with_ipv6();
        // `all` for the interfaces already there, `default` for those attached later.
        let quiet = "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; \
                     echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6";
        let out = ns_exec(&me.target, &["sh", "-c", quiet]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "{quiet}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        me
    }

    pub fn with_ipv6() -> TestNs {
        let pid = std::process::id() % 100_000;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("vxt-{pid}-{n}");
        create_netns(&name).unwrap_or_else(|e| panic!("{e}"));
        TestNs {
            target: NsTarget::Name(name.clone()),
            name,
        }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = delete_netns(&self.name);
    }
}

#[allow(unused_imports)]
pub use tools::probe::{tcp_transfer, udp_exchange};

/// Whether all `count` pings from `ns` to `addr` are answered (panics when ping cannot run).
pub fn ping(ns: &NsTarget, addr: &str, count: u32) -> bool {
    tools::probe::ping(ns, addr, count).unwrap_or_else(|e| panic!("{e}"))
}

/// A running `vecswitch run` with its own socket and directory; SIGTERM on drop.
pub struct DaemonProc {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

/// A bridge name no other test uses (at most 15 characters), starting with `prefix` (two
/// letters).
#[allow(dead_code)]
pub fn unique_bridge(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl DaemonProc {
    /// `vecswitch attach` of `ns` (its end named eth0) to `bridge` as a port of `port_type`,
    /// through the CLI; returns the host end's name.
    #[allow(dead_code)]
    pub fn attach(&self, bridge: &str, ns: &TestNs, ip: &str, port_type: &str) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
            .args([
                "attach", bridge, &ns.name, "--ip", ip, "--type", port_type, "--json", "--socket",
            ])
            .arg(&self.socket)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "attach: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["attachment"]["host_if"].as_str().unwrap().to_string()
    }

    /// Starts the daemon on `config` (TOML; the socket line is added here).
    pub fn start(config: &str) -> DaemonProc {
        DaemonProc::start_in(None, config)
    }

    /// [`DaemonProc::start`] inside network namespace `ns` (`ip netns exec` execs the daemon:
    /// the child's pid is the daemon's; the control socket is a file, reachable from here).
    pub fn start_in(ns: Option<&str>, config: &str) -> DaemonProc {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("ctl.sock");
        let cfg = dir.path().join("vecswitch.toml");
        std::fs::write(&cfg, format!("socket = {:?}\n{config}", socket)).unwrap();
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_vecswitch")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_vecswitch")),
        };
        let child = cmd
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut d = DaemonProc { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = client::request(&d.socket, &["show".to_string()], None) {
                if r.ok {
                    break;
                }
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("the daemon exited: {status}");
            }
            assert!(Instant::now() < deadline, "the daemon did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ctl(&self, argv: &[&str]) -> Response {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        client::request(&self.socket, &argv, None).unwrap()
    }

    pub fn ok(&self, argv: &[&str]) -> Response {
        let r = self.ctl(argv);
        assert!(r.ok, "{argv:?}: {:?}", r.error);
        r
    }

    pub fn err(&self, argv: &[&str]) -> String {
        let r = self.ctl(argv);
        assert!(!r.ok, "{argv:?} should be refused");
        r.error.unwrap()
    }

    /// tx packets of `port` on `bridge`.
    pub fn tx(&self, bridge: &str, port: &str) -> u64 {
        self.port_stat(bridge, port, "tx_packets")
    }

    pub fn port_stat(&self, bridge: &str, port: &str, field: &str) -> u64 {
        let r = self.ok(&["port-stats", bridge]);
        r.json
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .unwrap_or_else(|| panic!("no port {port} in {:#}", r.json))["stats"][field]
            .as_u64()
            .unwrap()
    }

    /// Sends SIGTERM and waits; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// A Python AF_PACKET receiver of frames of one ethertype on an interface (in a namespace or
/// here), started and ready before `start` returns; `finish` gives the hex of each frame.
pub struct FrameReceiver {
    child: Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl FrameReceiver {
    /// Receives up to `n` frames of `ethertype` on `ifname` (5 s without one ends it); when
    /// done, sends `marker` (a whole frame) out of `ifname` if given, to tell the other side.
    pub fn start(
        ns: Option<&str>,
        ifname: &str,
        ethertype: u16,
        n: usize,
        marker: Option<&[u8]>,
    ) -> FrameReceiver {
        use std::io::BufRead;
        let send_marker = match marker {
            Some(m) => format!(
                "m=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\nm.bind(('{ifname}',0))\n\
                 m.send(bytes.fromhex('{}'))\n",
                hex(m)
            ),
            None => String::new(),
        };
        let script = format!(
            "import socket\n\
             s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons({ethertype}))\n\
             s.bind(('{ifname}',0))\ns.settimeout(5)\nprint('ready',flush=True)\nc=0\n\
             try:\n    while c<{n}:\n        f,a=s.recvfrom(65536)\n        if a[0]!='{ifname}': continue\n        print(f.hex(),flush=True)\n        c+=1\n\
             except socket.timeout:\n    pass\n{send_marker}print('done',flush=True)\n"
        );
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, python()]);
                c
            }
            None => Command::new(python()),
        };
        let mut child = cmd
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn receiver: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert_eq!(
            lines.next().and_then(|l| l.ok()).as_deref(),
            Some("ready"),
            "receiver started"
        );
        FrameReceiver { child, lines }
    }

    /// The hex of every frame received, once the receiver is done.
    pub fn finish(mut self) -> Vec<String> {
        let got: Vec<String> = self
            .lines
            .by_ref()
            .map_while(|l| l.ok())
            .take_while(|l| l != "done")
            .collect();
        let _ = self.child.wait();
        got
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        // On a failed assertion the child would otherwise outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ethertype of the test frames: IEEE local experimental, nothing else on a link uses it.
pub const ETHERTYPE: u16 = 0x88b5;

/// Test frame `i`: broadcast, our ethertype, a 4-byte sequence number, then a pattern;
/// lengths vary from 60 to 1514 bytes.
pub fn frame(i: u32) -> Vec<u8> {
    let len = [60usize, 64, 128, 333, 1000, 1514][i as usize % 6];
    let mut payload = i.to_be_bytes().to_vec();
    // The pattern byte at frame offset `at`, from after the sequence number.
    payload.extend((ethernet::HEADER_LEN + 4..len).map(|at| (at as u32 * 7 + i) as u8));
    FrameBuilder::ethernet([0x02, 0, 0, 0, 0, 0x01], ethernet::BROADCAST)
        .ethertype(ETHERTYPE)
        .build(&payload)
        .unwrap()
}

pub fn ethertype(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(12..14)?.try_into().ok()?))
}

/// Polls `port` until `n` frames of `ethertype` `want` arrived or 5 s passed; returns them.
pub fn port_receive(port: &mut dyn PortIo, want: u16, n: usize) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n && Instant::now() < deadline {
        port.poll();
        let k = port.rx_burst(32, &mut |b| {
            if ethertype(b) == Some(want) {
                got.push(b.to_vec());
            }
        });
        if k == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// Transmits `frames` in bursts of 32, polling between bursts, until all were taken and the
/// port had time to send them.
pub fn port_transmit_all(port: &mut dyn PortIo, frames: &[Vec<u8>]) {
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(5);
    while sent < frames.len() && Instant::now() < deadline {
        let batch: Vec<&[u8]> = frames[sent..]
            .iter()
            .take(32)
            .map(|f| f.as_slice())
            .collect();
        let n = port.tx_burst(&batch);
        port.poll();
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        sent += n;
    }
    assert_eq!(sent, frames.len(), "all frames taken");
    // Copy-mode AF_XDP sends at most 32 per kick: keep polling a little.
    for _ in 0..200 {
        port.poll();
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A running testpmd, killed when dropped.
pub struct TestPmd {
    child: Child,
    log: PathBuf,
    /// EAL's runtime directory for this `--file-prefix`, removed after the kill.
    runtime: PathBuf,
    /// Its command line, for one started interactive.
    stdin: Option<std::process::ChildStdin>,
}

impl TestPmd {
    /// `server` makes testpmd the socket's listener (`server=1`), for a port in client mode.
    pub fn start(dir: &Path, socket: &Path, run: u32, mode: &str, server: bool) -> TestPmd {
        let log = dir.join(format!("testpmd-{run}.log"));
        if server {
            // A killed testpmd leaves its socket file behind, and a listener cannot bind
            // over it.
            let _ = std::fs::remove_file(socket);
        }
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new("dpdk-testpmd")
            // Main lcore 0, one forwarding lcore 1 (`-l 0` alone leaves none to forward).
            .args(["-l", "0,1", "--no-huge", "-m", "512", "--no-pci"])
            .arg(format!("--file-prefix=vhut{}-{run}", std::process::id()))
            .arg("--vdev")
            .arg(format!(
                "net_virtio_user0,path={}{}",
                socket.display(),
                if server { ",server=1" } else { "" }
            ))
            .arg("--")
            .arg(format!("--forward-mode={mode}"))
            .args(["--txpkts=64", "--auto-start", "--stats-period", "1"])
            .arg("--total-num-mbufs=2048")
            // Frames past one 2 KiB mbuf arrive merged across several (num_buffers).
            .args(["--max-pkt-len=9216", "--enable-scatter"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let runtime = PathBuf::from(format!("/var/run/dpdk/vhut{}-{run}", std::process::id()));
        TestPmd {
            child,
            log,
            runtime,
            stdin: None,
        }
    }

    /// testpmd at its prompt (`-i`), receiving (`rxonly`), as [`TestPmd::start`] without
    /// `server`: [`TestPmd::command`] drives it.
    pub fn interactive(dir: &Path, socket: &Path, run: u32) -> TestPmd {
        let log = dir.join(format!("testpmd-{run}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let prefix = format!("vhui{}-{run}", std::process::id());
        let mut child = Command::new("dpdk-testpmd")
            .args(["-l", "0,1", "--no-huge", "-m", "512", "--no-pci"])
            .arg(format!("--file-prefix={prefix}"))
            .arg("--vdev")
            .arg(format!("net_virtio_user0,path={}", socket.display()))
            .args([
                "--",
                "-i",
                "--forward-mode=rxonly",
                "--total-num-mbufs=2048",
            ])
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        TestPmd {
            child,
            log,
            runtime: PathBuf::from(format!("/var/run/dpdk/{prefix}")),
            stdin,
        }
    }

    /// Types `line` at the prompt of a testpmd started [`TestPmd::interactive`].
    pub fn command(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("an interactive testpmd");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// testpmd on lcores 0 and 1 with the EAL arguments `eal` (as `vecswitch attach
    /// --virtio-user` prints them) and application arguments `app`, non-interactive.
    pub fn start_with(dir: &Path, run: u32, eal: &[String], app: &[&str]) -> TestPmd {
        let log = dir.join(format!("testpmd-{run}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let prefix = eal
            .iter()
            .find_map(|a| a.strip_prefix("--file-prefix="))
            .unwrap_or("rte")
            .to_string();
        let child = Command::new("dpdk-testpmd")
            .args(["-l", "0,1"])
            .args(eal)
            .arg("--")
            .args(app)
            .args(["--auto-start", "--stats-period", "1"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        TestPmd {
            child,
            log,
            runtime: PathBuf::from(format!("/var/run/dpdk/{prefix}")),
            stdin: None,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The highest value of statistic `name` (e.g. `RX-packets:`) testpmd printed so far.
    pub fn stat(&self, name: &str) -> u64 {
        let log = self.log();
        log.split(name)
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
    }

    /// Whether testpmd has exited (a failure while the test still needs it).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}

/// Whether `dpdk-testpmd` (Debian dpdk-dev) is installed.
pub fn have_testpmd() -> bool {
    Command::new("dpdk-testpmd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A bridge with no LOCAL port, for generator tests.
pub const GEN_BRIDGE: &str = "[[bridge]]\nname = \"b0\"\nlocal = false\n";

/// Adds to bridge `b0` a pcap port (transmitting into a file of the daemon's directory) of
/// each name, at each OpenFlow number.
pub fn add_named_pcap_ports(d: &DaemonProc, ports: &[(&str, u32)]) {
    for (name, ofport) in ports {
        let file = d.path(&format!("tx{ofport}.pcap"));
        d.ok(&[
            "add-port",
            "b0",
            name,
            "type=pcap",
            &format!("tx={}", file.display()),
            &format!("ofport={ofport}"),
        ]);
    }
}

/// Adds port 1, `sink`, writing `out.pcap` in the daemon's directory, and makes the only rule
/// `in_port=2,actions=output:1`. Returns the file.
pub fn pcap_sink_for_port_2(d: &DaemonProc) -> std::path::PathBuf {
    let out = d.path("out.pcap");
    d.ok(&[
        "add-port",
        "b0",
        "sink",
        "type=pcap",
        &format!("tx={}", out.display()),
    ]);
    d.ok(&["del-flows", "b0"]);
    d.ok(&["add-flow", "b0", "in_port=2,actions=output:1"]);
    out
}
