#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! os-ken (PyPI, pinned by scripts/osken-requirements.txt, installed by scripts/setup.sh in
//! /opt/vecswitch-osken) as the controller of a vecswitch bridge with `fail_mode=secure`:
//! `osken-manager` runs an L2 learning switch (`tests/osken/learning_switch_13.py`, what
//! Ryu's simple_switch_13 example does), and ping between two namespaces goes through the
//! packet-ins, packet-outs and flow mods it makes. Root only; skipped where os-ken is not
//! installed. Namespaces, the daemon and the controller are removed by drop guards, also when
//! an assertion fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_root, ping, DaemonProc, TestNs};

const OSKEN_MANAGER: &str = "/opt/vecswitch-osken/bin/osken-manager";

/// `osken-manager` running the learning switch, killed on drop.
struct Controller {
    child: Child,
    log: std::path::PathBuf,
}

impl Controller {
    fn start(port: u16, dir: &Path) -> Controller {
        let log = dir.join("osken.log");
        let app = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/osken/learning_switch_13.py"
        );
        let child = Command::new(OSKEN_MANAGER)
            .args(["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port"])
            .arg(port.to_string())
            .arg(app)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Controller { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_os_ken_learning_switch_forwards_ping_between_two_namespaces_through_a_secure_bridge() {
    if !is_root() {
        eprintln!("SKIP: needs root (namespaces, veth)");
        return;
    }
    if !Path::new(OSKEN_MANAGER).exists() {
        eprintln!("SKIP: {OSKEN_MANAGER} is not installed (scripts/setup.sh installs it)");
        return;
    }
    let port = free_port();
    let bridge = common::unique_bridge("ok");
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(port, dir.path());
    let d = DaemonProc::start(&format!(
        "[[bridge]]\nname = \"{bridge}\"\nlocal = false\nfail-mode = \"secure\"\n\
         controller = [\"tcp:127.0.0.1:{port}\"]\n"
    ));
    let (a, b) = (TestNs::new(), TestNs::new());
    d.attach(&bridge, &a, "10.94.0.1/24", "afxdp");
    d.attach(&bridge, &b, "10.94.0.2/24", "afxdp");
    // The controller connects (the daemon retries after 1, 2, 4 s) and installs its
    // table-miss rule.
    let deadline = Instant::now() + Duration::from_secs(20);
    let flows = || d.ok(&["dump-flows", &bridge]).text;
    while !flows().contains("actions=CONTROLLER:65535") {
        assert!(
            Instant::now() < deadline,
            "no table-miss rule from os-ken: {}\n{}",
            flows(),
            ctl.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        ping(&a.target, "10.94.0.2", 5),
        "ping a -> b: {}\n{}",
        flows(),
        ctl.log()
    );
    assert!(ping(&b.target, "10.94.0.1", 3), "ping b -> a: {}", flows());
    // What forwarded them: the learning switch's rules, one per direction, hit by traffic
    // (not only its PACKET_OUTs).
    let f = flows();
    let learned: Vec<&str> = f
        .lines()
        .filter(|l| l.contains("priority=1,in_port="))
        .collect();
    assert!(learned.len() >= 2, "{f}\n{}", ctl.log());
    assert!(
        learned.iter().all(|l| !l.contains("n_packets=0,")),
        "{f}\n{}",
        ctl.log()
    );
    let log = ctl.log();
    assert!(log.contains("rule: in_port="), "{log}");
    drop(ctl);
    // Secure: the rules stay without the controller, and so does the traffic they carry.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ping(&a.target, "10.94.0.2", 2),
        "after the controller left: {}",
        flows()
    );
}
