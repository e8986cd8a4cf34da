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
