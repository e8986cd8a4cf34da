//! The daemon's control verbs (`control::commands::execute`, what the control socket
//! runs for every request) against requests made of anything. Each input is a fresh daemon
//! (one unpinned PMD, no bridges) and up to 16 requests, one per line: words separated by
//! spaces; a line's text after a tab is the request's data (`add-flows` file contents).
//!
//! Only verbs that touch nothing outside the daemon run: a request for `add-port` (which could
//! attach XDP to a real interface or write a pcap file) is skipped, and `add-br` always gets
//! `local=false` (no tap device). Every other word, flag and value is the input's.
//!
//! Checked: no panic; and a request refused with an error changes nothing (issue 4: "a request
//! that fails validation changes nothing"): the bridges, their rules as `dump-flows` prints
//! them (durations aside), their rule generation and the daemon's settings are as before.
//! `add-flows` without `--bundle` is exempt: like ovs-ofctl it applies rules one by one, so an
//! error part way leaves the ones before it.
#![no_main]

use control::commands::execute;
use datapath::daemon::{Daemon, DaemonSettings};
use libfuzzer_sys::fuzz_target;

const REQUESTS: usize = 16;

/// What a refused request must leave as it was.
fn state(d: &Daemon) -> String {
    let mut out = format!("{:?}\n", d.settings);
    for b in &d.bridges {
        out += &format!(
            "bridge {} generation {} ports {}\n",
            b.name,
            b.of.config_generation(),
            b.ports.len()
        );
        for line in b.of.dump_flows(d.now_ns()) {
            // The rule's age moves on its own.
            let kept: Vec<&str> = line
                .split(", ")
                .filter(|f| !f.starts_with("duration=") && !f.contains("_age="))
                .collect();
            out += &kept.join(", ");
            out.push('\n');
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let settings = DaemonSettings {
        pmd_cores: vec![None],
        ..DaemonSettings::default()
    };
    let mut d = Daemon::new(settings).expect("daemon");
    for line in text.lines().take(REQUESTS) {
        let (words, file) = match line.split_once('\t') {
            Some((w, f)) => (w, Some(f.replace("\\n", "\n"))),
            None => (line, None),
        };
        let mut argv: Vec<String> = words.split(' ').map(str::to_string).collect();
        match argv.first().map(String::as_str) {
            Some("add-port") => continue,
            // Pinned PMDs on the machine's cores are fine; a hundred of them are not.
            Some("set") if argv.iter().any(|a| a.starts_with("pmd-cores")) => continue,
            Some("add-br") => {
                argv.retain(|a| !a.starts_with("local"));
                argv.push("local=false".to_string());
            }
            _ => {}
        }
        let exempt =
            argv.first().is_some_and(|v| v == "add-flows") && !argv.iter().any(|a| a == "--bundle");
        let before = state(&d);
        let result = execute(&mut d, &argv, file.as_deref());
        // Each request's outcome, for checking what a seed reaches.
        if std::env::var_os("CONTROL_DEBUG").is_some() {
            match &result {
                Ok(_) => eprintln!("ok    {argv:?}"),
                Err(e) => eprintln!("error {argv:?}: {e:#}"),
            }
        }
        if result.is_err() && !exempt {
            assert_eq!(
                before,
                state(&d),
                "refused request {argv:?} changed the daemon: {:?}",
                result.err()
            );
        }
    }
    d.shutdown();
});
