#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input is refused whole, with the line, the field and the reason, and nothing is written.

use std::path::Path;

use tools::replay::replay;
use tools::scenario::Scenario;

fn acl_copy_with_rules(rules: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps/acl");
    let dir = tempfile::tempdir().unwrap();
    for f in ["scenario.toml", "p1-in.pcap", "p2-in.pcap", "p3-in.pcap"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("rules.txt"), rules).unwrap();
    dir
}

#[test]
fn a_bad_rule_refuses_the_whole_scenario() {
    let cases = [
        (
            "priority=10,actions=drop\npriority=100,tcp,nw_src=10.0.0.300,actions=output:2\n",
            "line 2: nw_src:",
        ),
        (
            "# comment\n\npriority=100,tp_dst=80,actions=output:2\n",
            "line 3: tp_dst: requires",
        ),
        ("priority=100,ip,actions=set_field:1->tcp_dst\n", "line 1: "),
        ("priority=70000,actions=drop\n", "line 1: priority:"),
    ];
    for (rules, want) in cases {
        let dir = acl_copy_with_rules(rules);
        let scenario = Scenario::load(dir.path()).unwrap();
        let out = dir.path().join("out");
        let err = format!("{:#}", replay(&scenario, &out).unwrap_err());
        assert!(err.contains(want), "{rules:?}: {err}");
        let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(written, 0, "{rules:?}: nothing may be written");
    }
}

#[test]
fn a_truncated_pcap_is_refused_with_its_name() {
    let dir = acl_copy_with_rules("priority=0,actions=normal\n");
    let pcap = dir.path().join("p2-in.pcap");
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() - 3]).unwrap();
    let scenario = Scenario::load(dir.path()).unwrap();
    let err = format!(
        "{:#}",
        replay(&scenario, &dir.path().join("out")).unwrap_err()
    );
    assert!(err.contains("p2-in.pcap"), "{err}");
}
