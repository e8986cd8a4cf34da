#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The daemon as a process (`vecswitch run`), driven through its control socket: generator and
//! pcap ports (no root needed), rule changes under traffic, statistics verbs, and requests that
//! must be refused without effect. Namespace tests with real veths are in `daemon_netns.rs`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{pcap_sink_for_port_2, DaemonProc, GEN_BRIDGE};
use control::socket::Response;
use serde_json::Value;

fn dump_flows(d: &DaemonProc, bridge: &str) -> Vec<String> {
    // Counters and durations move; the rules themselves are what must not.
    d.ok(&["dump-flows", bridge, "--no-stats"])
        .text
        .lines()
        .map(str::to_string)
        .collect()
}

fn pcap_frames(path: &Path) -> usize {
    let f = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        p.unwrap();
        n += 1;
    }
    n
}

#[test]
fn a_generator_feeds_the_graph_and_every_counter_agrees() {
    let d = DaemonProc::start(GEN_BRIDGE);
    let out = pcap_sink_for_port_2(&d);
    d.ok(&[
        "add-port",
        "b0",
        "gen0",
        "type=generator",
        "profile=size=64,flows=16,proto=udp",
        "count=5000",
        "rate=100000",
    ]);
    let gen = d.ok(&["show", "--json"]).json;
    let ofports: Vec<(String, u64)> = gen["bridges"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["ofport"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ofports,
        vec![("sink".to_string(), 1), ("gen0".to_string(), 2)]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.port_stat("b0", "gen0", "rx_packets") < 5000 {
        assert!(Instant::now() < deadline, "the generator did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.port_stat("b0", "gen0", "rx_packets"), 5000);
    assert_eq!(d.tx("b0", "sink"), 5000);

    let pmd = d.ok(&["pmd-stats", "--json"]).json;
    let p0 = &pmd[0];
    assert_eq!(p0["stats"]["rx_packets"].as_u64().unwrap(), 5000);
    let c = &p0["classify"];
    let hits = c["emc-hits"].as_u64().unwrap()
        + c["megaflow-hits"].as_u64().unwrap()
        + c["upcalls"].as_u64().unwrap();
    assert_eq!(hits, 5000, "{c:#}");
    let rt = d.ok(&["runtime", "--json"]).json;
    let parse = rt
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "parse")
        .unwrap();
    assert_eq!(parse["vectors"].as_u64().unwrap(), 5000);
    assert!(d.ok(&["runtime"]).text.contains("classify"));
    let mega = d.ok(&["dump-megaflows", "b0"]).text;
    assert!(mega.contains("in_port"), "{mega}");

    let generated = |d: &DaemonProc| {
        let r = d.ok(&["port-stats", "b0"]).json;
        let gen = r
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == "gen0")
            .cloned();
        gen.unwrap()["counters"]["rx-generated"].as_u64().unwrap()
    };
    assert_eq!(generated(&d), 5000);
    d.ok(&["clear-stats"]);
    assert_eq!(d.port_stat("b0", "gen0", "rx_packets"), 0);
    // The port type's own counters start from zero too, and the text no longer shows them.
    assert_eq!(generated(&d), 0);
    let text = d.ok(&["port-stats", "b0"]).text;
    assert!(!text.contains("rx-generated"), "{text}");
    // The pcap sink flushes when its port goes.
    d.ok(&["del-port", "b0", "sink"]);
    assert_eq!(pcap_frames(&out), 5000);
}

#[test]
fn after_the_acknowledgement_no_packet_follows_the_old_rule() {
    let d = DaemonProc::start(GEN_BRIDGE);
    let (a, b) = (d.path("a.pcap"), d.path("b.pcap"));
    d.ok(&[
        "add-port",
        "b0",
        "a",
        "type=pcap",
        &format!("tx={}", a.display()),
        "ofport=1",
    ]);
    d.ok(&[
        "add-port",
        "b0",
        "b",
        "type=pcap",
        &format!("tx={}", b.display()),
        "ofport=2",
    ]);
    d.ok(&["del-flows", "b0"]);
    d.ok(&["add-flow", "b0", "priority=10,in_port=3,actions=output:1"]);
    d.ok(&[
        "add-port",
        "b0",
        "gen",
        "type=generator",
        "profile=size=64,flows=100,proto=udp",
        "rate=200000",
        "ofport=3",
    ]);
    for round in 0..6 {
        let (to, new, old) = if round % 2 == 0 {
            ("2", "b", "a")
        } else {
            ("1", "a", "b")
        };
        std::thread::sleep(Duration::from_millis(150));
        d.ok(&["mod-flows", "b0", &format!("in_port=3,actions=output:{to}")]);
        // Acknowledged: from here on nothing may reach the old port, and traffic goes on.
        let (old_before, new_before) = (d.tx("b0", old), d.tx("b0", new));
        std::thread::sleep(Duration::from_millis(200));
        let (old_after, new_after) = (d.tx("b0", old), d.tx("b0", new));
        assert_eq!(
            old_before, old_after,
            "round {round}: port {old} got packets after the change"
        );
        assert!(
            new_after > new_before,
            "round {round}: no traffic reached {new}"
        );
    }
    // One snapshot: every generated packet went to exactly one port or was counted as dropped.
    let pmd = d.ok(&["pmd-stats"]).json;
    let (rx, tx, dropped) = (
        pmd[0]["stats"]["rx_packets"].as_u64().unwrap(),
        pmd[0]["stats"]["tx_packets"].as_u64().unwrap(),
        pmd[0]["dropped"].as_u64().unwrap(),
    );
    assert!(rx > 5_000, "generator rx {rx}");
    assert_eq!(rx, tx + dropped, "{pmd:#}");
}

#[test]
fn bad_requests_are_refused_naming_the_field_and_change_nothing() {
    let d = DaemonProc::start(GEN_BRIDGE);
    let flows = dump_flows(&d, "b0");
    for (argv, field) in [
        (
            vec!["add-flow", "b0", "nw_src=10.0.0.300,actions=drop"],
            "nw_src",
        ),
        (
            vec!["add-flow", "b0", "ip,nw_src=10.0.0.3,actions=output:x"],
            "output",
        ),
        (vec!["add-flow", "nope", "actions=drop"], "bridge"),
        (
            vec!["add-port", "b0", "g", "type=generator", "profile=size=10"],
            "size",
        ),
        (vec!["add-port", "b0", "g", "type=warp"], "type"),
        (
            vec!["add-port", "b0", "g", "type=generator", "colour=blue"],
            "colour",
        ),
        (vec!["del-port", "b0", "nothere"], "port"),
        (vec!["set", "batch-size=999"], "batch-size"),
        (vec!["set", "batch-size=64", "busy-poll=maybe"], "busy-poll"),
        (vec!["add-br", "b0"], "bridge"),
        (vec!["frobnicate"], "verb"),
        (vec!["dump-flows"], "bridge"),
        (vec!["set-frags", "b0", "reassemble"], "frag_mode"),
        (vec!["set-frags", "nope", "drop"], "bridge"),
        (vec!["set", "vlan-limit=two"], "vlan-limit"),
        (vec!["set", "vlan-limit=2", "flow-limit=0"], "flow-limit"),
    ] {
        let e = d.err(&argv);
        assert!(e.contains(field), "{argv:?}: {e:?} does not name {field}");
    }
    assert_eq!(dump_flows(&d, "b0"), flows);
    // The refused `set` changed nothing, not even the valid half.
    let show = d.ok(&["show", "--json"]).json;
    assert_eq!(show["settings"]["batch"], 256);
    assert_eq!(
        show["vlan_limit"], 1,
        "OVS's default, and the refused set left it"
    );
    assert_eq!(show["bridges"][0]["ports"].as_array().unwrap().len(), 0);
    // Fragment handling: OVS's default, then what set-frags set.
    assert_eq!(d.ok(&["get-frags", "b0"]).json["frag_mode"], "normal");
    d.ok(&["set-frags", "b0", "nx-match"]);
    assert_eq!(d.ok(&["get-frags", "b0"]).json["frag_mode"], "nx-match");
    // The VLAN limit as OVS reads it: 0 is the most the parser can.
    d.ok(&["set", "vlan-limit=0"]);
    assert_eq!(d.ok(&["show", "--json"]).json["vlan_limit"], 2);
    assert!(d.ok(&["show"]).text.contains("vlan-limit=2"));
}

#[test]
fn garbage_and_half_written_requests_have_no_effect() {
    let d = DaemonProc::start(GEN_BRIDGE);
    let flows = dump_flows(&d, "b0");
    // Garbage gets an error answer.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"\x00\xffnot json at all\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let r: Response = serde_json::from_str(&answer).unwrap();
    assert!(!r.ok && r.error.unwrap().starts_with("request:"));
    // Valid JSON of the wrong shape too.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"{\"verb\": \"del-flows\"}\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"ok\":false"), "{answer}");
    // Half a request, then the client goes away: nothing happens.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(br#"{"argv": ["del-flows", "b0"]"#).unwrap();
    drop(s);
    // Half a request and a stalled client: others are served meanwhile, and when the stalled
    // one gives up (or times out) its half request does nothing.
    let mut stalled = UnixStream::connect(&d.socket).unwrap();
    stalled.write_all(br#"{"argv": ["del-br", "b0"#).unwrap();
    let t = Instant::now();
    assert_eq!(dump_flows(&d, "b0"), flows);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(5500));
    let mut gone = String::new();
    assert_eq!(
        stalled.read_to_string(&mut gone).unwrap_or(0),
        0,
        "cut off, no answer"
    );
    drop(stalled);
    assert_eq!(dump_flows(&d, "b0"), flows);
    let show = d.ok(&["show", "--json"]).json;
    assert_eq!(show["bridges"].as_array().unwrap().len(), 1);
}

#[test]
fn the_cli_speaks_to_the_daemon_in_text_and_json() {
    let d = DaemonProc::start(GEN_BRIDGE);
    let cli = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
            .args(args)
            .arg("--socket")
            .arg(&d.socket)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let rules = d.path("rules.txt");
    std::fs::write(
        &rules,
        "priority=5,ip,actions=drop\n# a comment\npriority=6,arp,actions=normal\n",
    )
    .unwrap();
    let (ok, out, err) = cli(&["add-flows", "b0", rules.to_str().unwrap(), "--bundle"]);
    assert!(ok, "{err}");
    assert!(out.contains("2 added"), "{out}");
    let (ok, out, _) = cli(&["dump-flows", "b0"]);
    assert!(ok && out.contains("priority=5,ip actions=drop"), "{out}");
    let (ok, out, _) = cli(&["dump-flows", "b0", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    std::fs::write(
        &rules,
        "priority=7,ip,actions=drop\npriority=8,ip,nw_src=1.2.3.4.5,actions=drop\n",
    )
    .unwrap();
    let (ok, _, err) = cli(&["add-flows", "b0", rules.to_str().unwrap()]);
    assert!(!ok && err.contains("line 2"), "{err}");
    let (_, out, _) = cli(&["dump-flows", "b0", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        3,
        "a refused file adds nothing"
    );
    let (ok, out, _) = cli(&["del-flows", "b0", "ip", "--strict"]);
    assert!(ok, "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .args(["show", "--socket", "/nonexistent/sock"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("cannot reach"), "{err}");

    // A reader that leaves early (`vecswitch dump-flows b0 | head -1`): no panic, success.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .args(["dump-flows", "b0", "--json", "--socket"])
        .arg(&d.socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.is_empty(),
        "{:?}: {err}",
        o.status
    );
}

/// User + system CPU seconds the process has used so far (from /proc/PID/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Nanoseconds thread `name` of process `pid` has been runnable so far: on a CPU plus
/// waiting for one (`/proc/PID/task/TID/schedstat`). A thread that never sleeps is runnable
/// all the time however loaded the machine is; one that sleeps is not.
fn runnable_ns(pid: u32, name: &str) -> u64 {
    let tasks = format!("/proc/{pid}/task");
    for t in std::fs::read_dir(&tasks).unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap();
        let f: Vec<u64> = stat
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        return f[0] + f[1];
    }
    panic!("no thread {name} in {tasks}");
}

/// The share of `window` that thread `name` of `pid` was runnable.
fn runnable_share(pid: u32, name: &str, window: Duration) -> f64 {
    let (t0, r0) = (Instant::now(), runnable_ns(pid, name));
    std::thread::sleep(window);
    let r1 = runnable_ns(pid, name);
    (r1 - r0) as f64 / t0.elapsed().as_nanos() as f64
}

#[test]
fn an_idle_switch_does_not_burn_a_core_unless_asked_to() {
    let d = DaemonProc::start(GEN_BRIDGE);
    std::thread::sleep(Duration::from_millis(500));
    let pid = d.child.id();
    // CPU time: load on the machine can only lower it.
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(2));
    let idle = cpu_seconds(pid) - before;
    assert!(idle < 0.2, "idle daemon used {idle} s of CPU in 2 s");
    let pmd = d.ok(&["pmd-stats"]).json;
    assert!(pmd[0]["stats"]["sleeps"].as_u64().unwrap() > 0, "{pmd:#}");
    // busy-poll: the PMD spins. How much CPU it gets depends on the load, so what is measured
    // is the share of the time the thread was runnable (on a CPU or waiting for one), near
    // 1 for a thread that never sleeps however busy the machine, near 0 for a sleeping one;
    // idle and busy in the same run.
    let window = Duration::from_secs(2);
    let sleeping = runnable_share(pid, "pmd0", window);
    d.ok(&["set", "busy-poll=true"]);
    let spinning = runnable_share(pid, "pmd0", window);
    d.ok(&["set", "busy-poll=false"]);
    assert!(
        sleeping < 0.2,
        "an idle PMD was runnable {:.0} % of the time",
        sleeping * 100.0
    );
    assert!(
        spinning > 0.8,
        "a busy-polling PMD was runnable only {:.0} % of the time (idle: {:.0} %)",
        spinning * 100.0,
        sleeping * 100.0
    );
    let again = runnable_share(pid, "pmd0", window);
    assert!(
        again < 0.2,
        "busy-poll=false: the PMD stays runnable {:.0} % of the time",
        again * 100.0
    );
}

#[test]
fn an_idle_pmd_sleeps_through_a_quiet_vhost_user_guest_and_wakes_on_its_kick() {
    if !common::have_testpmd() {
        eprintln!("skipped: dpdk-testpmd is not installed (Debian package dpdk-dev)");
        return;
    }
    let d = DaemonProc::start(GEN_BRIDGE);
    let sock = d.path("vhu0.sock");
    d.ok(&[
        "add-port",
        "b0",
        "vhu0",
        "type=vhost-user",
        &format!("socket={}", sock.display()),
    ]);
    // The longest sleep there is: a guest's frames that waited for the PMD to wake by
    // itself would wait up to a second.
    d.ok(&["set", "pmd-sleep-max-us=1000000"]);
    let mut guest = common::TestPmd::interactive(d.dir.path(), &sock, 1);
    let connected = Instant::now() + Duration::from_secs(20);
    while d.ok(&["port-stats", "b0"]).json[0]["counters"]["connections"] != 1 {
        assert!(Instant::now() < connected, "no guest:\n{}", guest.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let sleeps = || {
        d.ok(&["pmd-stats"]).json[0]["stats"]["sleeps"]
            .as_u64()
            .unwrap()
    };
    let received = || d.port_stat("b0", "vhu0", "rx_packets");
    for round in 1..=3 {
        std::thread::sleep(Duration::from_millis(500));
        let before = received();
        // The guest is quiet: the PMD sleeps on its kick eventfd, a few times a second at
        // most (it used to nap 50 µs at a time: 20,000 times a second).
        let s0 = sleeps();
        std::thread::sleep(Duration::from_millis(1500));
        let slept = sleeps() - s0;
        assert!(slept < 200, "round {round}: {slept} sleeps in 1.5 s");
        // That request woke the PMD, which went back to sleep for a second. One burst of 32
        // frames from the guest: its kick wakes the PMD at once (nothing else does: no
        // request reaches the daemon in between).
        guest.command("start tx_first");
        std::thread::sleep(Duration::from_millis(300));
        let got = received() - before;
        assert!(
            got >= 32,
            "round {round}: {got} of 32 frames after 300 ms; testpmd said:\n{}",
            guest.log()
        );
        guest.command("stop");
    }
}

#[test]
fn pmd_cores_change_at_run_time_and_traffic_follows() {
    if core_affinity::get_core_ids().map_or(0, |c| c.len()) < 2 {
        eprintln!("SKIP: needs two cores");
        return;
    }
    let d = DaemonProc::start(GEN_BRIDGE);
    pcap_sink_for_port_2(&d);
    d.ok(&[
        "add-port",
        "b0",
        "g1",
        "type=generator",
        "profile=size=64,flows=4,proto=udp",
        "rate=20000",
        "ofport=2",
    ]);
    d.ok(&[
        "add-port",
        "b0",
        "g2",
        "type=generator",
        "profile=size=64,flows=4,proto=udp",
        "rate=20000",
        "ofport=3",
    ]);
    d.ok(&["set", "pmd-cores=0,1"]);
    let show = d.ok(&["show"]).json;
    assert_eq!(show["pmds"].as_array().unwrap().len(), 2, "{show:#}");
    let pmds: Vec<u64> = show["bridges"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["queues"][0]["pmd"].as_u64().unwrap())
        .collect();
    assert!(
        pmds.contains(&0) && pmds.contains(&1),
        "queues spread: {show:#}"
    );
    let before = d.tx("b0", "sink");
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.tx("b0", "sink") > before, "traffic flows on two PMDs");
    // Back to one PMD on core 1: every queue on it, still forwarding.
    d.ok(&["set", "pmd-cores=1"]);
    let show = d.ok(&["show"]).json;
    assert_eq!(show["pmds"][0]["core"], 1, "{show:#}");
    let before = d.tx("b0", "sink");
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.tx("b0", "sink") > before);
    // A core the machine does not have is refused and changes nothing.
    let e = d.err(&["set", "pmd-cores=0,999"]);
    assert!(e.contains("pmd-cores"), "{e}");
    assert_eq!(d.ok(&["show"]).json["pmds"].as_array().unwrap().len(), 1);
}

/// The dp ports `show` gives the ports of `bridge`, by name.
fn dp_ports(d: &DaemonProc, bridge: &str) -> Vec<(String, u64, u64)> {
    let show = d.ok(&["show", "--json"]).json;
    let b = show["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == bridge)
        .unwrap_or_else(|| panic!("no bridge {bridge} in {show:#}"));
    b["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                // LOCAL is named, not numbered.
                p["ofport"]
                    .as_u64()
                    .or_else(|| (p["ofport"] == "LOCAL").then_some(0xffff_fffe))
                    .unwrap(),
                p["dp_port"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_bridges_on_one_pmd_forward_by_their_own_rules_and_dump_their_own_megaflows() {
    let d = DaemonProc::start(
        "[[bridge]]\nname = \"b0\"\nlocal = false\n[[bridge]]\nname = \"b1\"\nlocal = false\n",
    );
    let sink = |bridge: &str, name: &str| {
        let out = d.path(&format!("{name}.pcap"));
        d.ok(&[
            "add-port",
            bridge,
            name,
            "type=pcap",
            &format!("tx={}", out.display()),
        ]);
    };
    // The same OpenFlow numbers in both bridges, other datapath numbers.
    sink("b0", "s0");
    sink("b1", "s1");
    sink("b1", "t1");
    d.ok(&["del-flows", "b0"]);
    d.ok(&["add-flow", "b0", "in_port=2,actions=output:1"]);
    d.ok(&["del-flows", "b1"]);
    d.ok(&["add-flow", "b1", "in_port=3,actions=output:2"]);
    for (bridge, name) in [("b0", "g0"), ("b1", "g1")] {
        d.ok(&[
            "add-port",
            bridge,
            name,
            "type=generator",
            "profile=size=64,flows=16,proto=udp",
            "count=2000",
            "rate=100000",
        ]);
    }
    let s = |n: &str| n.to_string();
    assert_eq!(dp_ports(&d, "b0"), vec![(s("s0"), 1, 1), (s("g0"), 2, 4)]);
    assert_eq!(
        dp_ports(&d, "b1"),
        vec![(s("s1"), 1, 2), (s("t1"), 2, 3), (s("g1"), 3, 5)]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.port_stat("b0", "g0", "rx_packets") < 2000
        || d.port_stat("b1", "g1", "rx_packets") < 2000
    {
        assert!(Instant::now() < deadline, "the generators did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    // b0's in_port=2 is g0; b1's rule on in_port=3 (g1) sends to its port 2, not to port 1
    // as b0's port 2 would.
    assert_eq!(d.tx("b0", "s0"), 2000);
    assert_eq!(d.tx("b1", "t1"), 2000);
    assert_eq!(d.tx("b1", "s1"), 0);

    // One switch: one pool and one classifier for both, two megaflows in it.
    let pmd = d.ok(&["pmd-stats", "--json"]).json;
    assert_eq!(pmd.as_array().unwrap().len(), 1, "{pmd:#}");
    assert_eq!(pmd[0]["stats"]["rx_packets"], 4000, "{pmd:#}");
    assert_eq!(pmd[0]["stats"]["tx_packets"], 4000, "{pmd:#}");
    assert_eq!(pmd[0]["megaflows"], 2, "{pmd:#}");
    assert_eq!(pmd[0]["classify"]["upcalls"], 2, "{pmd:#}");
    assert!(pmd[0]["pool"]["frames"].as_u64().unwrap() > 0, "{pmd:#}");

    // Each bridge's megaflows, in its own OpenFlow numbers.
    let mega = |bridge: &str| -> Vec<String> {
        let j = d.ok(&["dump-megaflows", bridge]).json;
        let sections = j.as_array().unwrap();
        assert_eq!(sections.len(), 1, "{j:#}");
        assert_eq!(sections[0]["bridge"], bridge, "{j:#}");
        sections[0]["megaflows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                // Structured, and the line beside it.
                assert!(l["match"].is_object() && l["actions"].is_array(), "{l:#}");
                l["flow"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let (m0, m1) = (mega("b0"), mega("b1"));
    let j = d.ok(&["dump-megaflows", "b0"]).json;
    let m = &j[0]["megaflows"][0];
    assert_eq!(m["match"]["in_port"], "2", "{m:#}");
    assert_eq!(m["packets"], 2000, "{m:#}");
    assert_eq!(m["actions"], serde_json::json!(["1"]), "{m:#}");
    assert_eq!(m0.len(), 1, "{m0:?}");
    assert!(m0[0].starts_with("recirc_id(0),in_port(2),"), "{m0:?}");
    assert!(m0[0].ends_with("actions:1"), "{m0:?}");
    assert!(m0[0].contains("packets:2000,"), "{m0:?}");
    assert_eq!(m1.len(), 1, "{m1:?}");
    assert!(m1[0].starts_with("recirc_id(0),in_port(3),"), "{m1:?}");
    assert!(m1[0].ends_with("actions:2"), "{m1:?}");
    let all = d.ok(&["dump-megaflows"]).text;
    assert!(
        all.contains("pmd 0 bridge b0: 1 megaflows")
            && all.contains("pmd 0 bridge b1: 1 megaflows"),
        "{all}"
    );
    // By name, as `ovs-appctl dpctl/dump-flows --names` prints them: each bridge's own port
    // names (b1's port 2 is t1, not b0's g0); the last of --names/--no-names wins.
    let named = |bridge: &str, flags: &[&str]| -> String {
        let mut argv = vec!["dump-megaflows", bridge];
        argv.extend(flags);
        d.ok(&argv).text.lines().nth(1).unwrap().trim().to_string()
    };
    let n0 = named("b0", &["--names"]);
    assert!(n0.starts_with("recirc_id(0),in_port(g0),"), "{n0}");
    assert!(n0.ends_with("actions:s0"), "{n0}");
    let n1 = named("b1", &["--names"]);
    assert!(n1.starts_with("recirc_id(0),in_port(g1),"), "{n1}");
    assert!(n1.ends_with("actions:t1"), "{n1}");
    // The match and the actions (`used:` moves on between dumps).
    let ends = |l: &str| {
        let (m, rest) = l.split_once(", packets:").unwrap();
        (
            m.to_string(),
            rest.split_once("actions:").unwrap().1.to_string(),
        )
    };
    assert_eq!(ends(&named("b1", &["--names", "--no-names"])), ends(&m1[0]));
    assert_eq!(ends(&named("b1", &["--no-names", "--names"])), ends(&n1));
    let j = d.ok(&["dump-megaflows", "b0", "--names"]).json;
    assert_eq!(j[0]["megaflows"][0]["match"]["in_port"], "g0", "{j:#}");
    assert_eq!(
        j[0]["megaflows"][0]["actions"],
        serde_json::json!(["s0"]),
        "{j:#}"
    );
    let e = d.err(&["dump-megaflows", "b0", "--name"]);
    assert!(e.contains("unknown option --name"), "{e}");

    // A datapath number comes free with its port and goes to the next port, of any bridge.
    d.ok(&["del-port", "b1", "s1"]);
    sink("b0", "u0");
    assert_eq!(
        dp_ports(&d, "b0"),
        vec![(s("s0"), 1, 1), (s("g0"), 2, 4), (s("u0"), 3, 2)]
    );
}

/// dump-flows filters, sorting, port names and JSON over the control socket, on the rules and
/// filters whose output `ovs-ofctl` 3.1 printed (README, "dump-flows as ovs-ofctl").
#[test]
fn dump_flows_filters_sorts_and_names_ports_as_ovs_ofctl() {
    let d = DaemonProc::start(GEN_BRIDGE);
    common::add_named_pcap_ports(&d, &[("p1", 1), ("veth0", 2), ("my-port", 3), ("x.y", 4)]);
    d.ok(&["del-flows", "b0"]);
    for rule in [
        "table=0,priority=100,in_port=p1,actions=output:veth0",
        "table=0,priority=200,in_port=veth0,ip,nw_dst=10.0.0.0/24,actions=output:p1,output:\"my-port\"",
        "table=0,cookie=0x1234,priority=50,tcp,tp_dst=80,actions=NORMAL",
        "table=0,cookie=0x12345,priority=50,udp,actions=resubmit(,4)",
        "table=4,priority=10,in_port=2,actions=drop",
        "table=4,cookie=0x1234,ip,actions=output:3,LOCAL",
        "table=1,priority=8,in_port=\"x.y\",actions=resubmit(veth0,1)",
        "table=0,priority=0,actions=drop",
    ] {
        d.ok(&["add-flow", "b0", rule]);
    }
    let dump = |args: &[&str]| -> Vec<String> {
        let mut argv = vec!["dump-flows", "b0", "--no-stats"];
        argv.extend_from_slice(args);
        d.ok(&argv).text.lines().map(str::to_string).collect()
    };
    assert_eq!(
        dump(&["table=4"]),
        [
            " cookie=0x1234, table=4, ip actions=output:3,LOCAL",
            " table=4, priority=10,in_port=2 actions=drop",
        ]
    );
    let in_port_2 = [
        " priority=200,ip,in_port=2,nw_dst=10.0.0.0/24 actions=output:1,output:3",
        " table=4, priority=10,in_port=2 actions=drop",
    ];
    assert_eq!(dump(&["in_port=2"]), in_port_2);
    assert_eq!(dump(&["in_port=veth0"]), in_port_2);
    assert_eq!(
        dump(&["cookie=0x1234/-1"]),
        [
            " cookie=0x1234, priority=50,tcp,tp_dst=80 actions=NORMAL",
            " cookie=0x1234, table=4, ip actions=output:3,LOCAL",
        ]
    );
    assert_eq!(dump(&["out_port=\"my-port\""]), dump(&["out_port=3"]));
    assert_eq!(dump(&["out_port=3"]).len(), 2);
    assert_eq!(dump(&["ip,nw_dst=10.0.0.0/16"]).len(), 1);
    assert_eq!(dump(&["table=4", "out_port=3"]).len(), 1);
    // Sorted: ascending priority; by in_port, rules without one after, highest priority first.
    let prio = |args: &[&str]| -> Vec<String> {
        dump(args)
            .iter()
            .map(|l| {
                l.split([',', ' '])
                    .find_map(|p| p.strip_prefix("priority="))
                    .unwrap_or("32768")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        prio(&["--sort"]),
        ["0", "8", "10", "50", "50", "100", "200", "32768"]
    );
    assert_eq!(
        prio(&["--rsort=in_port"]),
        ["8", "200", "10", "100", "32768", "50", "50", "0"]
    );
    // Names, quoted as OVS quotes them.
    assert_eq!(
        dump(&["--names", "table=1"]),
        [" table=1, priority=8,in_port=\"x.y\" actions=resubmit(veth0,1)"]
    );
    assert_eq!(
        dump(&["--names", "in_port=veth0"])[0],
        " priority=200,ip,in_port=veth0,nw_dst=10.0.0.0/24 actions=output:p1,output:\"my-port\""
    );
    // --no-names: numbers, and names refused in the filter.
    assert!(d
        .err(&["dump-flows", "b0", "in_port=veth0", "--no-names"])
        .contains("in_port"));
    // The CLI asks for names on a terminal (as ovs-ofctl), numbers otherwise.
    let cli = format!(
        "{} dump-flows b0 table=1 --no-stats --socket {}",
        env!("CARGO_BIN_EXE_vecswitch"),
        d.socket.display()
    );
    let piped = Command::new("sh").args(["-c", &cli]).output().unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(piped.contains("in_port=4 actions=resubmit(2,1)"), "{piped}");
    if std::path::Path::new("/usr/bin/script").exists() {
        let tty = Command::new("script")
            .args(["-qec", &cli, "/dev/null"])
            .output()
            .unwrap();
        let tty = String::from_utf8_lossy(&tty.stdout);
        assert!(
            tty.contains("in_port=\"x.y\" actions=resubmit(veth0,1)"),
            "{tty}"
        );
    }
    // With counters: idle_age after n_bytes, before the match.
    let line = d.ok(&["dump-flows", "b0", "table=1"]).text;
    assert!(
        line.starts_with(" cookie=0x0, duration=")
            && line.contains(", table=1, n_packets=0, n_bytes=0, idle_age=")
            && line.ends_with(", priority=8,in_port=4 actions=resubmit(2,1)"),
        "{line}"
    );
    // JSON: objects.
    let j = d.ok(&["dump-flows", "b0", "in_port=veth0", "--names"]).json;
    let r = &j[0];
    assert_eq!(r["table"], 0, "{j:#}");
    assert_eq!(r["priority"], 200);
    assert_eq!(r["cookie"], "0x0");
    assert_eq!(
        r["match"],
        serde_json::json!({ "ip": true, "in_port": "veth0", "nw_dst": "10.0.0.0/24" })
    );
    assert_eq!(
        r["actions"],
        serde_json::json!(["output:p1", "output:\"my-port\""])
    );
    for k in ["packets", "bytes", "duration", "idle_age", "hard_age"] {
        assert!(r[k].is_number(), "{k}: {r:#}");
    }
    // Refusals name the field and change nothing.
    let before = dump(&[]);
    for (argv, field) in [
        (
            vec!["add-flow", "b0", "in_port=nosuch,actions=drop"],
            "in_port",
        ),
        (vec!["add-flow", "b0", "actions=output:nosuch"], "output"),
        (vec!["del-flows", "b0", "in_port=nosuch"], "in_port"),
        (vec!["del-flows", "b0", "priority=10"], "priority"),
        (vec!["dump-flows", "b0", "--sort=cookie"], "--sort"),
        (vec!["dump-flows", "b0", "--strict"], "--strict"),
        (vec!["dump-flows", "b0", "actions=drop"], "actions"),
    ] {
        let e = d.err(&argv);
        assert!(e.contains(field), "{argv:?}: {e:?} does not name {field}");
    }
    assert_eq!(dump(&[]), before);
    // Strict: exact match and priority; loose: every rule at least as specific.
    d.ok(&["del-flows", "b0", "in_port=2", "--strict"]);
    assert_eq!(dump(&[]), before);
    d.ok(&["del-flows", "b0", "--strict", "priority=10,in_port=veth0"]);
    assert_eq!(dump(&["in_port=2"]), in_port_2[..1]);
    d.ok(&["mod-flows", "b0", "in_port=veth0,actions=output:x.y"]);
    assert_eq!(
        dump(&["out_port=4"]),
        [" priority=200,ip,in_port=2,nw_dst=10.0.0.0/24 actions=output:4"]
    );
    d.ok(&[
        "mod-flows",
        "b0",
        "--strict",
        "priority=100,in_port=1,actions=drop",
    ]);
    assert!(dump(&["in_port=p1"])[0].ends_with("actions=drop"));
    d.ok(&["del-flows", "b0", "out_port=LOCAL"]);
    assert_eq!(dump(&["table=4"]).len(), 0);
    d.ok(&["del-flows", "b0", "table=1"]);
    assert_eq!(dump(&[]).len(), 5);
    // A flows file names ports too; an unknown one refuses the file, naming its line.
    let add_flows = |text: &str| {
        let argv = ["add-flows".to_string(), "b0".to_string()];
        control::client::request(&d.socket, &argv, Some(text.to_string())).unwrap()
    };
    let r = add_flows("# names\npriority=9,in_port=p1,actions=output:\"x.y\"\n");
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(
        dump(&["in_port=p1", "out_port=4"]),
        [" priority=9,in_port=1 actions=output:4"]
    );
    let r = add_flows("priority=10,actions=drop\npriority=11,in_port=nosuch,actions=drop\n");
    let e = r.error.unwrap();
    assert!(e.contains("line 2") && e.contains("in_port"), "{e}");
    assert_eq!(dump(&[]).len(), 6, "a refused file adds nothing");
}
