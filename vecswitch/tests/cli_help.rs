#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Help works the way the errors say, without a daemon: `vecswitch help`, `help VERB`,
//! `VERB --help`, `help COMMAND`, with `--socket` given or not.

use std::process::Command;

fn vecswitch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .args(args)
        // No daemon listens here: help must not need one.
        .env("VECSWITCH_SOCKET", "/nonexistent/vecswitch.sock")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_for_every_verb_in_both_spellings() {
    let (ok, all, err) = vecswitch(&["help"]);
    assert!(ok, "{err}");
    assert!(all.contains("Usage: vecswitch"), "{all}");
    for verb in control::help::verb_names() {
        assert!(all.contains(verb), "{verb} missing from `help`");
        let (ok, a, err) = vecswitch(&["help", verb]);
        assert!(ok, "help {verb}: {err}");
        assert!(a.starts_with("usage: vecswitch "), "help {verb}: {a}");
        let (ok, b, err) = vecswitch(&[verb, "--help"]);
        assert!(ok, "{verb} --help: {err}");
        assert_eq!(a, b, "{verb}");
    }
    let (ok, h, _) = vecswitch(&["show", "-h", "--socket", "/tmp/x.sock"]);
    assert!(ok && h.contains("usage: vecswitch show"), "{h}");
    let (ok, h, _) = vecswitch(&["help", "--socket", "/tmp/x.sock", "dump-flows"]);
    assert!(ok && h.contains("usage: vecswitch dump-flows"), "{h}");
}

#[test]
fn help_for_commands_and_unknown_names() {
    let (ok, h, err) = vecswitch(&["help", "replay"]);
    assert!(ok, "{err}");
    assert!(
        h.contains("Usage: vecswitch replay") && h.contains("--out"),
        "{h}"
    );
    let (ok, _, err) = vecswitch(&["help", "nosuch"]);
    assert!(!ok);
    assert!(
        err.contains("help: unknown verb or command \"nosuch\""),
        "{err}"
    );
    // Without help, a verb still goes to the daemon (none here): the error says so.
    let (ok, _, err) = vecswitch(&["show"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/vecswitch.sock"), "{err}");
}

/// Runs vecswitch with its standard output a pipe whose reader is already gone, as in
/// `vecswitch ... | head -1` once head has exited: (exit code, stderr).
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .args(args)
        .env("VECSWITCH_SOCKET", "/nonexistent/vecswitch.sock")
        .stdout(writer)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_closes_early_ends_no_command_in_a_panic() {
    // ovs-ofctl 3.1 ignores SIGPIPE: `(sleep 1; ovs-ofctl parse-flow ...) | true` exits 0
    // without a word. So do these, where println! panicked (exit 101).
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    std::fs::write(&flows, "in_port=1,actions=output:2\n".repeat(2000)).unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/acl");
    let out = dir.path().join("replay-out");
    let out = out.to_str().unwrap();
    for args in [
        vec!["help"],
        vec!["help", "dump-flows"],
        vec!["help", "replay"],
        vec!["add-flow", "--help"],
        vec!["parse-flows", flows.to_str().unwrap()],
        vec!["replay", scenario, "--out", out],
        vec!["replay", scenario, "--out", out, "--json"],
    ] {
        let (code, err) = into_closed_pipe(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    // The replay still wrote its outputs.
    assert!(std::path::Path::new(out).join("counters.json").is_file());
}
