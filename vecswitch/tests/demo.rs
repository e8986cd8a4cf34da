#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `vecswitch demo`, the README's first command, as root: it must show ping and TCP across the
//! switch, pktgen numbers and the counters, the no-drop rate search, and leave no namespace, link or daemon behind.

mod common;

use std::process::Command;

fn names(args: &[&str]) -> String {
    String::from_utf8_lossy(&Command::new("ip").args(args).output().unwrap().stdout).to_string()
}

#[test]
fn the_demo_runs_and_cleans_up() {
    if !common::is_root() {
        eprintln!("SKIP: the demo needs root");
        return;
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .args(["demo", "--seconds", "1", "--ndr-trial", "0.5"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    for want in [
        "5 received, 0% packet loss",
        "33554432 bytes",
        "pktgen tx+rx",
        "no-drop rate through the switch",
        "trial 1: full speed",
        "NDR (loss ≤ 0 %): ",
        "PDR (loss ≤ 0.500 %): ",
        "processing cycles/pkt",
        "parse",
        "classify",
        "cleaned up",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // The child's pid names everything it made; none of it may remain.
    assert!(!names(&["netns", "list"]).contains("vsdemo-"));
    assert!(!names(&["link", "show"]).contains("vsdg"));
    let ps = Command::new("pgrep")
        .args(["-f", "vecswitch-demo-"])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "a daemon is still running");
}
