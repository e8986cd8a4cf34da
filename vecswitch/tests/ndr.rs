//! `vecswitch pktgen --ndr` end to end, as root: the no-drop rate of a device of known
//! capacity built from the kernel's own parts. pktgen sends on veth `a`; `b`'s ingress
//! redirects every frame (tc u32 + mirred) out of veth `c`, whose tbf qdisc passes 10 Mbit/s
//! and drops the rest (a 3000-byte queue); pktgen counts on `c`'s peer `d`. The search must
//! land below the shaper's rate and at most the full-speed offered rate, from a trial that
//! lost nothing. Flags a search sets itself are refused by name (no root needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{is_root, run};

/// Four veths: `a`-`b` and `c`-`d`, `b` redirected into `c`, `c` shaped; dropping it deletes
/// both pairs (and with them the qdiscs and filters).
struct Shaped {
    a: String,
    d: String,
    links: Vec<String>,
}

impl Shaped {
    fn new(rate: &str) -> Shaped {
        let pid = std::process::id() % 100_000;
        let n = |x: &str| format!("nd{x}{pid}");
        let (a, b, c, d) = (n("a"), n("b"), n("c"), n("d"));
        let me = Shaped {
            a: a.clone(),
            d: d.clone(),
            links: Vec::new(),
        };
        let mut me = me;
        for (x, y) in [(&a, &b), (&c, &d)] {
            run(&["ip", "link", "add", x, "type", "veth", "peer", "name", y]);
            me.links.push(x.clone());
        }
        for i in [&a, &b, &c, &d] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{i}/disable_ipv6"), "1");
            run(&["ip", "link", "set", i, "up"]);
        }
        run(&["tc", "qdisc", "add", "dev", &b, "ingress"]);
        run(&[
            "tc", "filter", "add", "dev", &b, "parent", "ffff:", "protocol", "all", "u32", "match",
            "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", &c,
        ]);
        run(&[
            "tc", "qdisc", "add", "dev", &c, "root", "tbf", "rate", rate, "burst", "3000", "limit",
            "3000",
        ]);
        me
    }
}

impl Drop for Shaped {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
    }
}

fn pktgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vecswitch"))
        .arg("pktgen")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn ndr_of_a_shaped_path() {
    if !is_root() {
        eprintln!("SKIP: the NDR search needs root (AF_XDP, veth, tc)");
        return;
    }
    let path = Shaped::new("10mbit");
    let o = pktgen(&[
        "--port",
        &path.a,
        "--rx",
        &path.d,
        "--size",
        "64",
        "--ndr",
        "--trial",
        "0.5s",
        "--precision",
        "5%",
        "--max-trials",
        "20",
        "--min-rate",
        "2k",
        "--core",
        "0",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("{err}{}", serde_json::to_string_pretty(&r["ndr"]).unwrap());
    let trials = r["trials"].as_array().unwrap();
    assert!(
        trials.len() >= 2 && trials.len() <= 20,
        "{} trials",
        trials.len()
    );
    assert!(err.contains("trial 1: full speed"), "{err}");
    // Full speed overruns the 10 Mbit/s shaper: 60-byte frames (tbf counts the L2 bytes) pass
    // at most 20 833 per second, plus one 3000-byte burst.
    let full = &r["full_speed"];
    assert_eq!(full["full_speed"], true);
    let capacity = 10e6 / 8.0 / 60.0;
    let full_tx = full["tx_pps"].as_f64().unwrap();
    assert!(full["lost"].as_u64().unwrap() > 0, "{full}");
    let ndr = r["ndr"]["lower_pps"].as_f64().expect("an NDR");
    assert!(
        ndr <= full_tx,
        "NDR {ndr} above the full-speed rate {full_tx}"
    );
    assert!(
        ndr <= capacity * 1.05,
        "NDR {ndr} above the shaper's {capacity}"
    );
    assert!(ndr >= 2_000.0, "NDR {ndr} below --min-rate");
    if let Some(up) = r["ndr"]["upper_pps"].as_f64() {
        assert!(up > ndr);
    }
    // The trial at the NDR lost nothing, and it ran at that rate.
    let t = &r["ndr"]["lower_trial"];
    assert_eq!(t["lost"], 0, "{t}");
    assert_eq!(t["sent"], t["received"], "{t}");
    let sent = t["sent"].as_f64().unwrap();
    assert!((sent / 0.5 - ndr).abs() <= ndr * 0.05, "{t}");
    let l = &t["latency"];
    assert!(
        l["p50_ns"].as_u64().unwrap() <= l["p99_ns"].as_u64().unwrap(),
        "{l}"
    );
    assert_eq!(l["samples"], t["received"]);
    // PDR at 0.5 % loss is at least the NDR.
    let pdr = r["pdr"]["lower_pps"].as_f64().unwrap();
    assert!(pdr >= ndr, "PDR {pdr} below NDR {ndr}");
    assert!(r["pdr"]["lower_trial"]["loss_ratio"].as_f64().unwrap() <= 0.005);
}

#[test]
fn ndr_flags_are_checked_by_name() {
    let cases: &[(&[&str], &str)] = &[
        (&["--port", "x", "--ndr"], "rx: "),
        (
            &["--port", "x", "--rx", "y", "--ndr", "--rate", "1M"],
            "rate: ",
        ),
        (
            &["--port", "x", "--rx", "y", "--ndr", "--duration", "5"],
            "duration: ",
        ),
        (
            &["--port", "x", "--rx", "y", "--ndr", "--precision", "0"],
            "precision: ",
        ),
        (
            &["--port", "x", "--rx", "y", "--ndr", "--min-rate", "max"],
            "min-rate: ",
        ),
        (
            &["--port", "x", "--rx", "y", "--ndr", "--max-rate", "5k"],
            "max-rate: ",
        ),
        (
            &["--port", "x", "--rx", "y", "--ndr", "--pdr-loss", "lots"],
            "pdr-loss: ",
        ),
        (
            &[
                "--port",
                "x",
                "--rx",
                "y",
                "--ndr",
                "--trial",
                "2s",
                "--final-trial",
                "1s",
            ],
            "final-trial: ",
        ),
    ];
    for (argv, want) in cases {
        let o = pktgen(argv);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{argv:?}");
        assert!(err.contains(want), "{argv:?}: {err}");
    }
}
