#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! dump-flows, del-flows and mod-flows against Open vSwitch: the same ports (by name and
//! number), the same rules and the same requests go to an OVS userspace bridge through
//! `ovs-ofctl` (pcaps/ovs_dump_flows.py) and to the daemon through its control socket, and
//! what each prints (or leaves) must agree: which rules a filter selects, the order of
//! `--sort`/`--rsort`, port names, and which requests are refused; and megaflows' port names
//! against `ovs-appctl dpctl/dump-flows --names`/`--no-names` after the same frame. Skips with
//! a message where Open vSwitch is not installed (scripts/setup.sh installs it).

mod common;

use common::{DaemonProc, GEN_BRIDGE};
use serde_json::{json, Value};

const PORTS: &[(&str, u32)] = &[("p1", 1), ("veth0", 2), ("my-port", 3), ("x.y", 4)];

/// Distinct priorities: with them `--sort` leaves no ties, so the order is OVS's to the line.
const RULES: &[&str] = &[
    "priority=100,in_port=1,actions=output:2",
    "priority=200,in_port=2,ip,nw_dst=10.0.0.0/24,actions=output:1,output:3",
    "cookie=0x1234,priority=50,tcp,tp_dst=80,actions=NORMAL",
    "cookie=0x12345,priority=51,udp,actions=resubmit(,4)",
    "table=4,priority=10,in_port=2,actions=drop",
    "table=4,cookie=0x1234,ip,actions=output:3,LOCAL",
    "table=4,priority=11,idle_timeout=60,actions=FLOOD",
    "table=1,priority=8,in_port=LOCAL,actions=resubmit(4,1)",
    "table=1,priority=7,in_port=3,dl_vlan=5,actions=output:4",
    "priority=0,actions=drop",
    "priority=300,ip,nw_src=192.168.0.0/16,nw_dst=10.1.0.0/16,actions=output:4",
    "priority=301,tcp,nw_src=192.168.1.1,tp_src=1000,tp_dst=22,actions=LOCAL,output:1",
    "priority=302,arp,in_port=4,actions=NORMAL",
    "priority=303,dl_src=00:00:00:00:00:01,actions=output:2",
    "priority=304,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=FLOOD",
    "priority=305,ipv6,ipv6_dst=2001:db8::/32,actions=output:3",
    "cookie=0xff00,priority=306,udp,tp_dst=53,actions=output:2,output:4",
    "table=2,cookie=0x1,priority=400,in_port=1,ip,actions=resubmit(,3)",
    "table=3,cookie=0x2,priority=401,in_port=1,tcp,actions=output:2",
];

fn requests() -> Vec<Vec<&'static str>> {
    let mut r: Vec<Vec<&str>> = Vec::new();
    for filter in [
        "",
        "table=0",
        "table=1",
        "table=2",
        "table=4",
        "table=9",
        "in_port=1",
        "in_port=2",
        "in_port=veth0",
        "in_port=\"x.y\"",
        "in_port=LOCAL",
        "cookie=0x1234/-1",
        "cookie=0x1234/0xffff",
        "cookie=0x10000/0x10000",
        "cookie=0/0xffff",
        "out_port=1",
        "out_port=2",
        "out_port=3",
        "out_port=4",
        "out_port=LOCAL",
        "out_port=NORMAL",
        "out_port=FLOOD",
        "out_port=p1",
        "ip",
        "tcp",
        "udp",
        "arp",
        "ipv6",
        "ip,nw_dst=10.0.0.0/8",
        "ip,nw_src=192.168.0.0/16",
        "tcp,tp_dst=22",
        "dl_vlan=5",
        "dl_src=00:00:00:00:00:01",
        "table=0,in_port=2,out_port=3",
        "ip,in_port=1,cookie=0/-1",
        "priority=5",
        "in_port=nosuch",
        "cookie=0x1234",
    ] {
        r.push(if filter.is_empty() {
            vec!["dump-flows", "--no-stats"]
        } else {
            vec!["dump-flows", "--no-stats", filter]
        });
    }
    r.push(vec!["dump-flows", "--no-stats", "--names"]);
    r.push(vec!["dump-flows", "--no-stats", "--names", "table=1"]);
    r.push(vec![
        "dump-flows",
        "--no-stats",
        "--names",
        "out_port=\"my-port\"",
    ]);
    for sort in [
        vec!["--sort"],
        vec!["--rsort"],
        vec!["--sort=in_port"],
        vec!["--rsort=in_port"],
        vec!["--sort=nw_dst"],
        vec!["--rsort=tcp_dst"],
        vec!["--sort=dl_vlan", "--rsort=priority"],
        vec!["--sort=nw_src", "--sort=tcp_dst"],
        vec!["--sort=cookie"],
    ] {
        let mut v = vec!["dump-flows", "--no-stats"];
        v.extend(sort);
        r.push(v);
    }
    for del in [
        vec!["in_port=2"],
        vec!["table=4"],
        vec!["cookie=0x1234/-1"],
        vec!["out_port=1"],
        vec!["out_port=veth0"],
        vec!["ip"],
        vec!["--strict", "priority=10,in_port=2"],
        vec!["--strict", "in_port=2"],
        vec!["--strict", "priority=0"],
        vec!["--strict", "table=4,ip"],
        vec!["--strict", "priority=200,ip,in_port=2,nw_dst=10.0.0.0/24"],
        vec!["cookie=0x1234"],
        vec!["priority=10"],
        vec!["in_port=nosuch"],
    ] {
        let mut v = vec!["del-flows"];
        v.extend(del);
        r.push(v);
    }
    for m in [
        vec!["in_port=2,actions=output:4"],
        vec!["--strict", "priority=100,in_port=1,actions=output:4"],
        vec!["cookie=0x1234/-1,actions=drop"],
        vec!["table=1,actions=output:p1"],
        vec!["ip,actions=drop"],
        vec!["--strict", "in_port=1,actions=drop"],
        vec!["cookie=0x99,in_port=2,actions=output:4"],
        vec!["cookie=0x5/0xff,in_port=9,actions=drop"],
        vec!["in_port=9,actions=output:veth0"],
        vec!["cookie=0/0,ip,actions=drop"],
        // Timeouts: the rules changed keep theirs; a rule added (none selected) takes them.
        vec!["in_port=1,idle_timeout=10,actions=output:3"],
        vec!["table=4,idle_timeout=0,hard_timeout=30,actions=drop"],
        vec![
            "--strict",
            "priority=100,in_port=1,hard_timeout=20,actions=output:3",
        ],
        vec!["in_port=9,idle_timeout=10,hard_timeout=20,actions=output:1"],
    ] {
        let mut v = vec!["mod-flows"];
        v.extend(m);
        r.push(v);
    }
    // check_overlap: refused when a rule of the same priority and table could match the same
    // packet (the same match is a replacement, not an overlap).
    for a in [
        "check_overlap,priority=100,actions=drop",
        "check_overlap,priority=100,in_port=1,actions=drop",
        "check_overlap,priority=100,in_port=3,actions=drop",
        "check_overlap,priority=100,ip,actions=drop",
        "check_overlap,priority=99,actions=drop",
        "check_overlap,table=4,priority=10,in_port=2,ip,actions=drop",
        "check_overlap,table=4,priority=10,in_port=3,actions=drop",
        "check_overlap,priority=50,udp,actions=drop",
        "check_overlap,priority=50,tcp,tp_dst=80,actions=drop",
        "check_overlap,priority=50,tcp,tp_dst=81,actions=drop",
    ] {
        r.push(vec!["add-flow", a]);
    }
    r
}

fn ovs(requests: &[Vec<&str>]) -> Option<Vec<Value>> {
    ovs_case(&json!({ "ports": PORTS, "rules": RULES, "requests": requests }))
}

/// What pcaps/ovs_dump_flows.py answers for `case`; `None` (skipped) without Open vSwitch.
fn ovs_case(case: &Value) -> Option<Vec<Value>> {
    if !std::path::Path::new("/usr/sbin/ovs-vswitchd").exists() {
        eprintln!("skipped: no Open vSwitch (scripts/setup.sh installs it)");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/ovs_dump_flows.py");
    Some(serde_json::from_value(common::python_json(script, case)).unwrap())
}

/// The rules a del-flows or mod-flows left, against what OVS's left.
fn check_after(d: &DaemonProc, req: &[&str], want: &Value, failures: &mut Vec<String>) {
    let after: Vec<String> = serde_json::from_value(want["after"].clone()).unwrap();
    let ours: Vec<String> = d
        .ok(&["dump-flows", "b0", "--no-stats"])
        .text
        .lines()
        .map(str::to_string)
        .collect();
    if sorted(ours.clone()) != sorted(after.clone()) {
        failures.push(format!(
            "{req:?} left:\n vecswitch:\n{}\n ovs-ofctl:\n{}",
            ours.join("\n"),
            after.join("\n")
        ));
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn dump_del_and_mod_flows_select_print_and_sort_as_ovs_ofctl() {
    let reqs = requests();
    let Some(expected) = ovs(&reqs) else {
        return;
    };
    let d = DaemonProc::start(GEN_BRIDGE);
    common::add_named_pcap_ports(&d, PORTS);
    let lines = |text: &str| -> Vec<String> { text.lines().map(str::to_string).collect() };
    let mut failures = Vec::new();
    for (req, want) in reqs.iter().zip(&expected) {
        d.ok(&["del-flows", "b0"]);
        for r in RULES {
            d.ok(&["add-flow", "b0", r]);
        }
        let mut argv = vec![req[0], "b0"];
        argv.extend(req[1..].iter().filter(|a| !a.starts_with("--")));
        argv.extend(req[1..].iter().filter(|a| a.starts_with("--")));
        let r = d.ctl(&argv);
        if r.ok != want["ok"].as_bool().unwrap() {
            failures.push(format!(
                "{req:?}: vecswitch ok={} ({:?}), ovs-ofctl ok={} ({})",
                r.ok, r.error, want["ok"], want["error"]
            ));
            continue;
        }
        // An overlap is refused with OpenFlow's error name, as ovs-ofctl prints it.
        let ovs_error = want["error"].as_str().unwrap_or("");
        if ovs_error.contains("OFPFMFC_OVERLAP")
            && !r.error.as_deref().unwrap_or("").contains("OFPFMFC_OVERLAP")
        {
            failures.push(format!("{req:?}: vecswitch said {:?}", r.error));
        }
        // del-flows and mod-flows: what they leave counts (ovs-ofctl prints nothing).
        if !r.ok || req[0] != "dump-flows" {
            if r.ok {
                check_after(&d, req, want, &mut failures);
            }
            continue;
        }
        let ovs_lines: Vec<String> = serde_json::from_value(want["lines"].clone()).unwrap();
        let ours = lines(&r.text);
        let sorting = req
            .iter()
            .any(|a| a.starts_with("--sort") || a.starts_with("--rsort"));
        let same = if sorting {
            ours == ovs_lines
        } else {
            // Without --sort the order of equal tables is the classifier's, in OVS too.
            sorted(ours.clone()) == sorted(ovs_lines.clone())
        };
        if !same {
            failures.push(format!(
                "{req:?}:\n vecswitch:\n{}\n ovs-ofctl:\n{}",
                ours.join("\n"),
                ovs_lines.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests differ:\n{}",
        failures.len(),
        reqs.len(),
        failures.join("\n")
    );
}

/// The parts of a megaflow line that name ports: the `in_port(...)` item and the actions.
fn port_parts(line: &str) -> (String, String) {
    let in_port = line
        .split(',')
        .find(|item| item.starts_with("in_port("))
        .unwrap_or_else(|| panic!("no in_port in {line}"))
        .to_string();
    let actions = line.rsplit_once("actions:").unwrap().1.to_string();
    (in_port, actions)
}

#[test]
fn megaflows_name_their_ports_as_ovs_dpctl() {
    const MF_PORTS: &[(&str, u32)] = &[("p1", 1), ("veth0", 2)];
    const RULE: &str = "in_port=1,actions=mod_dl_dst:00:00:00:00:00:09,output:2";
    // UDP 192.168.0.1 -> 192.168.0.2 from p1.
    let frame = "ffffffffffff00000000000108004500001c0001000040110000c0a80001c0a80002\
                 0001000200080000";
    let case = json!({ "ports": MF_PORTS, "rules": [RULE], "requests": [],
                       "receive": [["p1", frame]] });
    let Some(expected) = ovs_case(&case) else {
        return;
    };
    let want = &expected.last().unwrap()["megaflows"];
    let d = DaemonProc::start(GEN_BRIDGE);
    common::add_named_pcap_ports(&d, &MF_PORTS[1..]);
    d.ok(&["del-flows", "b0"]);
    d.ok(&["add-flow", "b0", RULE]);
    // p1 plays one frame as it is added.
    let bytes: Vec<u8> = (0..frame.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&frame[i..i + 2], 16).unwrap())
        .collect();
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    pcap.extend([0u8; 8]);
    pcap.extend(65535u32.to_le_bytes());
    pcap.extend(1u32.to_le_bytes());
    pcap.extend([0u8; 8]);
    pcap.extend((bytes.len() as u32).to_le_bytes());
    pcap.extend((bytes.len() as u32).to_le_bytes());
    pcap.extend(&bytes);
    let rx = d.path("p1-rx.pcap");
    std::fs::write(&rx, pcap).unwrap();
    d.ok(&[
        "add-port",
        "b0",
        "p1",
        "type=pcap",
        &format!("rx={}", rx.display()),
        &format!("tx={}", d.path("p1-tx.pcap").display()),
        "ofport=1",
    ]);
    let megaflow = |flag: &str| -> Option<String> {
        let text = d.ok(&["dump-megaflows", "b0", flag]).text;
        text.lines()
            .find(|l| l.contains("actions:"))
            .map(|l| l.trim().to_string())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while megaflow("--no-names").is_none() {
        assert!(std::time::Instant::now() < deadline, "no megaflow");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for (flag, key) in [("--names", "names"), ("--no-names", "numbers")] {
        let theirs: Vec<String> = serde_json::from_value(want[key].clone()).unwrap();
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        let ours = megaflow(flag).unwrap();
        assert_eq!(
            port_parts(&ours),
            port_parts(&theirs[0]),
            "{flag}:\n vecswitch: {ours}\n ovs:       {}",
            theirs[0]
        );
    }
    // By name: p1 and veth0 in both.
    assert_eq!(port_parts(&megaflow("--names").unwrap()).0, "in_port(p1)");
}
