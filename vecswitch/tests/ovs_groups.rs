#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Groups against Open vSwitch: the same group and rule requests go to an OVS userspace
//! bridge through `ovs-ofctl -O OpenFlow13` (pcaps/ovs_groups.py) and to the daemon through
//! its control socket; which requests each refuses, what `dump-groups` prints after them and
//! which rules are left must agree. Skips with a message where Open vSwitch is not installed
//! (scripts/setup.sh installs it).

mod common;

use common::{DaemonProc, GEN_BRIDGE};
use serde_json::{json, Value};

const PORTS: &[(&str, u32)] = &[("p1", 1), ("p2", 2), ("p3", 3)];

/// Each case starts from no rules and no groups.
fn cases() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![
            ("add-group", "group_id=1,type=select,bucket=output:1,bucket=output:2"),
            (
                "add-group",
                "group_id=2,type=select,bucket=weight:3,actions=output:1,bucket=weight=1,output:2,\
                 bucket=weight:0,actions=mod_nw_dst:1.2.3.4,output:3",
            ),
            (
                "add-group",
                "group_id=3,type=all,bucket=actions=mod_dl_src:00:00:00:00:00:01,output:1,bucket=output:2",
            ),
            (
                "add-group",
                "group_id=4,type=fast_failover,bucket=watch_port:1,output:1,\
                 bucket=watch_port=2,watch_group=3,actions=output:2",
            ),
            ("add-group", "group_id=5,type=indirect,bucket=actions=drop"),
            ("add-group", "group_id=6,type=all"),
            ("add-group", "group_id=7,type=ff,bucket=watch_port:LOCAL,actions=LOCAL"),
            (
                "add-group",
                "group_id=8,type=all,bucket=output:1,output:2,dec_ttl,push_vlan:0x8100,note:00",
            ),
            (
                "add-group",
                "group_id=9,type=all,bucket=mod_vlan_pcp:3,mod_nw_tos:16,set_tunnel:0x5,\
                 load:0x5->NXM_NX_REG0[],set_field:0x7->reg2,strip_vlan,resubmit(,2),output:1",
            ),
            ("add-group", "group_id=1,type=all,bucket=output:1"),
            ("mod-group", "group_id=19,type=all,bucket=output:1"),
            ("add-group", "group_id=10,type=all,bucket=group:11"),
            ("add-group", "group_id=11,type=ff,bucket=watch_group:12,output:1"),
            ("add-group", "group_id=12,type=indirect"),
            ("add-group", "group_id=12,type=all,bucket=watch_port:1,output:1"),
            ("add-group", "group_id=12,type=all,bucket=weight:2,output:1"),
            ("add-group", "group_id=12,type=ff,bucket=output:1"),
            ("add-group", "group_id=12,type=bogus,bucket=output:1"),
            ("add-group", "group_id=4294967041,type=all,bucket=output:1"),
            ("add-flow", "actions=group:1"),
            ("add-flow", "priority=5,actions=group:3"),
            ("add-flow", "priority=6,actions=group:13"),
            ("mod-group", "group_id=3,type=indirect,bucket=output:3"),
            ("del-groups", "group_id=1"),
            ("del-groups", "group_id=99"),
        ],
        vec![
            ("add-group", "group_id=1,type=all,bucket=output:1"),
            ("add-group", "group_id=2,type=select,bucket=output:2"),
            ("add-flow", "in_port=1,actions=group:1"),
            ("add-flow", "in_port=2,actions=group:2,group:1"),
            ("add-flow", "in_port=3,actions=output:2"),
            ("del-groups", ""),
        ],
    ]
}

fn ovs(cases: &[Vec<(&str, &str)>]) -> Option<Vec<Value>> {
    if !std::path::Path::new("/usr/sbin/ovs-vswitchd").exists() {
        eprintln!("skipped: no Open vSwitch (scripts/setup.sh installs it)");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/ovs_groups.py");
    let case = json!({ "ports": PORTS, "cases": cases });
    Some(serde_json::from_value(common::python_json(script, &case)).unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn group_requests_are_refused_and_dumped_as_ovs_ofctl_does() {
    let cases = cases();
    let Some(expected) = ovs(&cases) else {
        return;
    };
    let d = DaemonProc::start(GEN_BRIDGE);
    common::add_named_pcap_ports(&d, PORTS);
    let mut failures = Vec::new();
    for (steps, want) in cases.iter().zip(&expected) {
        d.ok(&["del-flows", "b0"]);
        d.ok(&["del-groups", "b0"]);
        for ((verb, arg), w) in steps.iter().zip(want["results"].as_array().unwrap()) {
            let mut argv = vec![*verb, "b0"];
            if !arg.is_empty() {
                argv.push(arg);
            }
            let r = d.ctl(&argv);
            if r.ok != w["ok"].as_bool().unwrap() {
                failures.push(format!(
                    "{verb} {arg}: vecswitch ok={} ({:?}), ovs-ofctl ok={} ({})",
                    r.ok, r.error, w["ok"], w["error"]
                ));
            }
        }
        // OVS dumps groups in hash order; vecswitch by id.
        let ovs_groups: Vec<String> = serde_json::from_value(want["groups"].clone()).unwrap();
        let ours = lines(&d.ok(&["dump-groups", "b0"]).text);
        if sorted(ours.clone()) != sorted(ovs_groups.clone()) {
            failures.push(format!(
                "dump-groups:\n vecswitch:\n{}\n ovs-ofctl:\n{}",
                ours.join("\n"),
                ovs_groups.join("\n")
            ));
        }
        let ovs_flows: Vec<String> = serde_json::from_value(want["flows"].clone()).unwrap();
        let ours = lines(&d.ok(&["dump-flows", "b0", "--no-stats"]).text);
        if sorted(ours.clone()) != sorted(ovs_flows.clone()) {
            failures.push(format!(
                "dump-flows after:\n vecswitch:\n{}\n ovs-ofctl:\n{}",
                ours.join("\n"),
                ovs_flows.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `dump-group-stats` and `dump-groups N`: the counters start at zero with one entry per
/// bucket, `ref_count` counts the rules, and refusals name the field and change nothing.
#[test]
fn group_stats_and_refusals_through_the_socket() {
    let d = DaemonProc::start(GEN_BRIDGE);
    common::add_named_pcap_ports(&d, PORTS);
    d.ok(&[
        "add-group",
        "b0",
        "group_id=1,type=select,bucket=output:1,bucket=output:2",
    ]);
    d.ok(&[
        "add-group",
        "b0",
        "group_id=2,type=indirect,bucket=output:3",
    ]);
    d.ok(&["add-flow", "b0", "actions=group:1"]);
    let r = d.ok(&["dump-group-stats", "b0", "1"]);
    let line = r.text.lines().next().unwrap();
    assert!(line.starts_with(" group_id=1,duration="), "{line}");
    assert!(
        line.ends_with(
            ",ref_count=1,packet_count=0,byte_count=0,bucket0:packet_count=0,byte_count=0,bucket1:packet_count=0,byte_count=0"
        ),
        "{line}"
    );
    assert_eq!(r.json[0]["buckets"].as_array().unwrap().len(), 2);
    assert_eq!(
        d.ok(&["dump-groups", "b0", "group_id=2"]).text,
        " group_id=2,type=indirect,bucket=actions=output:3"
    );
    assert_eq!(
        d.ok(&["dump-groups", "b0", "--json"]).json[0]["type"],
        "select"
    );
    let before = d.ok(&["dump-groups", "b0"]).text;
    for (req, field) in [
        ("group_id=1,type=all,bucket=output:1", "group_id"),
        ("group_id=3,type=ff,bucket=output:1", "bucket"),
        ("group_id=3,type=all,bucket=weight:5,output:1", "weight"),
        ("group_id=3,type=all,bucket=output:99999", "output"),
    ] {
        let e = d.err(&["add-group", "b0", req]);
        assert!(e.contains(field), "{req}: {e}");
    }
    // A loop (OVS accepts it and bounds the translation): refused, naming the bucket.
    let e = d.err(&["mod-group", "b0", "group_id=2,type=all,bucket=group:2"]);
    assert!(e.contains("bucket") && e.contains("itself"), "{e}");
    assert_eq!(d.ok(&["dump-groups", "b0"]).text, before);
    // add-groups: all or none, the bad line named.
    let add_groups = |text: &str| {
        let argv = ["add-groups".to_string(), "b0".to_string()];
        control::client::request(&d.socket, &argv, Some(text.to_string())).unwrap()
    };
    let r = add_groups("group_id=5,type=all,bucket=output:1\ngroup_id=6,type=nope\n");
    assert!(!r.ok);
    assert!(
        r.error.as_deref().unwrap_or("").contains("line 2: type"),
        "{:?}",
        r.error
    );
    assert_eq!(d.ok(&["dump-groups", "b0"]).text, before);
    let r = add_groups(
        "# two\ngroup_id=5,type=all,bucket=output:1\nmodify group_id=2,type=all,bucket=output:1\n",
    );
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(
        (r.json["added"].clone(), r.json["modified"].clone()),
        (json!(1), json!(1))
    );
    let r = d.ok(&["del-groups", "b0", "group_id=1"]);
    assert_eq!(r.json["rules_removed"], 1);
    // The bridge's default rule stays; the one that used the group is gone.
    let flows = d.ok(&["dump-flows", "b0"]).text;
    assert!(
        flows.contains("actions=NORMAL") && !flows.contains("group:"),
        "{flows}"
    );
}
