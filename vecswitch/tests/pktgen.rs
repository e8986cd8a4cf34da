//! `vecswitch pktgen` against a real veth pair whose two ends both stay in this namespace:
//! counts and loss with the receiver in the same run and in a second one (`--rx-only`), the
//! frames on the wire (captured with a plain AF_PACKET socket, checked from scratch), rate and
//! count limits, and errors naming the flag. Needs root for everything but the argument
//! checks (skips with a message otherwise). Run with `--test-threads=1`.
//!
//! Maximum rate (ignored test, release build):
//! `cargo test -p vecswitch --release --test pktgen -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{has_xdp, is_root, python, run};
use ports::generator::traffic::{parse_profile, Protocol};
use tools::pktgen::{self, PktgenArgs, PktgenOptions, Rate, STAMP_MAGIC};

/// A veth pair with both ends here, up, without IPv6 chatter; dropping it deletes it.
struct VethPair {
    a: String,
    b: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl VethPair {
    fn new() -> VethPair {
        let pid = std::process::id() % 100_000;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let me = VethPair {
            a: format!("pga{pid}{n}"),
            b: format!("pgb{pid}{n}"),
        };
        run(&[
            "ip", "link", "add", &me.a, "type", "veth", "peer", "name", &me.b,
        ]);
        for ifname in [&me.a, &me.b] {
            let _ = std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
                "1",
            );
            run(&["ip", "link", "set", ifname, "up"]);
        }
        me
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).output();
    }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: pktgen tests need root (AF_XDP and veth)");
            return;
        }
    };
}

fn opts(port: &str, spec: &str) -> PktgenOptions {
    PktgenOptions {
        profile: parse_profile(spec).unwrap(),
        ..PktgenOptions::new(port)
    }
}

#[test]
fn sends_and_counts_without_loss() {
    require_root!();
    let veth = VethPair::new();
    for spec in [
        "size=64,flows=100,proto=udp",
        "size=128,flows=7,proto=tcp",
        "size=1518,flows=3,proto=icmp",
    ] {
        let o = PktgenOptions {
            rx: Some(veth.b.clone()),
            count: Some(5000),
            rate: Rate::Pps(50_000.0),
            ..opts(&veth.a, spec)
        };
        let calls = std::cell::Cell::new(0u32);
        // While it runs: a program steers the receiving end, none is on the sending one.
        let programs = std::cell::Cell::new(None);
        let cb = |p: &pktgen::Progress| {
            if calls.get() == 0 {
                programs.set(Some((has_xdp(&veth.a), has_xdp(&veth.b))));
            }
            calls.set(calls.get() + 1);
            assert!(p.sent <= 5000);
        };
        let r = pktgen::run(&o, Some(&cb)).unwrap();
        eprintln!("{spec}: {}", r.summary());
        assert_eq!(programs.get(), Some((false, true)), "XDP on (tx, rx) port");
        assert_eq!(r.xdp_mode, "none");
        assert!(r.summary().contains("transmit-only"), "{}", r.summary());
        assert_eq!(r.mode, "tx+rx");
        assert_eq!(r.sent, 5000, "{spec}");
        assert_eq!(r.received, Some(5000), "{spec}");
        assert_eq!(r.lost, Some(0));
        assert_eq!(r.loss_pct, Some(0.0));
        assert_eq!(r.rx_reordered, Some(0));
        assert_eq!(r.tx_invalid_descs, 0);
        let l = r.latency.expect("latency");
        assert_eq!(l.samples, 5000);
        assert!(l.min_ns > 0, "{l:?}");
        assert!(
            l.min_ns <= l.p50_ns
                && l.p50_ns <= l.p90_ns
                && l.p90_ns <= l.p99_ns
                && l.p99_ns <= l.p999_ns
                && l.p999_ns <= l.max_ns,
            "{l:?}"
        );
        // Frames cross a veth in microseconds, not seconds.
        assert!(l.p50_ns < 50_000_000, "{l:?}");
        assert!(calls.get() >= 1, "progress called");
        // L2 vs wire Gbps differ by exactly the 24 bytes of overhead per frame.
        let ratio = r.tx_gbps_wire / r.tx_gbps_l2;
        let want = (r.frame_size + 24) as f64 / r.frame_size as f64;
        assert!((ratio - want).abs() < 1e-9, "{ratio} vs {want}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["sent"], 5000);
        assert!(json["latency"]["p99_ns"].is_u64());
    }
}

#[test]
fn rx_only_counts_another_senders_frames() {
    require_root!();
    let veth = VethPair::new();
    let b = veth.b.clone();
    let counter = std::thread::spawn(move || {
        let o = PktgenOptions {
            rx_only: true,
            count: Some(3000),
            duration: Some(Duration::from_secs(5)),
            ..PktgenOptions::new(&b)
        };
        pktgen::run(&o, None).unwrap()
    });
    // Let the counter bind and attach before the first frame.
    std::thread::sleep(Duration::from_millis(700));
    let o = PktgenOptions {
        count: Some(3000),
        rate: Rate::Pps(30_000.0),
        ..opts(&veth.a, "size=100,flows=10,proto=udp")
    };
    let sent = pktgen::run(&o, None).unwrap();
    assert_eq!(sent.mode, "tx");
    assert_eq!(sent.sent, 3000);
    assert_eq!(sent.received, None);
    let got = counter.join().unwrap();
    eprintln!("{}", got.summary());
    assert_eq!(got.mode, "rx");
    assert_eq!(got.received, Some(3000));
    assert_eq!(got.latency.map(|l| l.samples), Some(3000));
}

/// What an AF_PACKET socket on `ifname` sees: the hex of the first `n` incoming IPv4 frames
/// addressed to pktgen's destination MAC (anything else on the link is skipped); the capture is
/// ready when the child printed `ready`. Until `bind` the socket sees every interface, so frames
/// of other tests' veths queued in that moment are skipped by name.
fn capture(ifname: &str, n: usize) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let script = format!(
        "import socket\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(0x0800))\n\
         s.setsockopt(socket.SOL_SOCKET,33,16<<20)  # SO_RCVBUFFORCE: keep every frame\ns.bind(('{ifname}',0))\ns.settimeout(5)\nprint('ready',flush=True)\nn=0\n\
         while n<{n}:\n    f,a=s.recvfrom(65535)\n    if a[0]!='{ifname}' or a[2]==socket.PACKET_OUTGOING or f[:6]!=bytes([2,0,0,0,0,2]): continue\n\
         \x20   print(f.hex(),flush=True)\n    n+=1\n"
    );
    let mut child = Command::new(python())
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (child, out)
}

/// Ones'-complement sum of the bytes as big-endian words, folded; 0xffff verifies.
fn ones_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for w in bytes.chunks(2) {
        let hi = u32::from(w[0]) << 8;
        let lo = w.get(1).map_or(0, |&b| u32::from(b));
        sum += hi | lo;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn frames_on_the_wire_match_the_profile() {
    require_root!();
    let veth = VethPair::new();
    for (spec, proto, size, flows) in [
        ("size=64,flows=10,proto=udp", Protocol::Udp, 60, 10),
        ("size=90,flows=300,proto=tcp", Protocol::Tcp, 86, 300),
        ("size=200,flows=5,proto=icmp", Protocol::Icmp, 196, 5),
    ] {
        let n = 3 * flows;
        let (mut child, out) = capture(&veth.b, n);
        let o = PktgenOptions {
            count: Some(n as u64),
            rate: Rate::Pps(5_000.0),
            ..opts(&veth.a, spec)
        };
        let r = pktgen::run(&o, None).unwrap();
        assert_eq!(r.sent, n as u64);
        let frames: Vec<Vec<u8>> = out.lines().map(|l| unhex(l.unwrap().trim())).collect();
        let _ = child.wait();
        assert_eq!(frames.len(), n, "{spec}: captured");
        let mut tuples = HashSet::new();
        let mut seqs = HashSet::new();
        for f in &frames {
            assert_eq!(f.len(), size, "{spec}");
            assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 2]);
            assert_eq!(&f[12..14], &[8, 0]);
            let ip = &f[14..34];
            assert_eq!(ones_sum(ip), 0xffff, "{spec}: ip checksum");
            assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), size - 14);
            let l4 = &f[34..];
            let hdr = match proto {
                Protocol::Udp => {
                    assert_eq!(ip[9], 17);
                    assert_ne!(&l4[6..8], &[0, 0], "udp checksum present");
                    8
                }
                Protocol::Tcp => {
                    assert_eq!(ip[9], 6);
                    20
                }
                Protocol::Icmp => {
                    assert_eq!(ip[9], 1);
                    8
                }
            };
            let verifies = match proto {
                Protocol::Icmp => ones_sum(l4),
                _ => {
                    let len = (l4.len() as u16).to_be_bytes();
                    let pseudo = [&ip[12..20], &[0, ip[9]], &len[..], l4].concat();
                    ones_sum(&pseudo)
                }
            };
            assert_eq!(verifies, 0xffff, "{spec}: l4 checksum");
            let st = &l4[hdr..hdr + 16];
            assert_eq!(&st[..4], &STAMP_MAGIC.to_be_bytes(), "{spec}: stamp");
            seqs.insert(u32::from_be_bytes([st[4], st[5], st[6], st[7]]));
            let src = [&ip[12..16], &l4[..2]].concat();
            let id = if proto == Protocol::Icmp {
                [&ip[12..16], &l4[4..6]].concat()
            } else {
                src
            };
            tuples.insert(id);
        }
        assert_eq!(tuples.len(), flows, "{spec}: distinct flows");
        assert_eq!(seqs.len(), n, "{spec}: distinct sequence numbers");
    }
}

#[test]
fn rate_and_count_limits() {
    require_root!();
    let veth = VethPair::new();
    let o = PktgenOptions {
        duration: Some(Duration::from_secs(1)),
        rate: Rate::Pps(20_000.0),
        ..opts(&veth.a, "size=64")
    };
    let t = Instant::now();
    let r = pktgen::run(&o, None).unwrap();
    let took = t.elapsed();
    eprintln!("{}", r.summary());
    assert!(
        (18_000..=22_000).contains(&r.sent),
        "20k pps for 1 s sent {}",
        r.sent
    );
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3));

    let o = PktgenOptions {
        count: Some(12_345),
        duration: Some(Duration::from_secs(10)),
        batch: 256,
        ..opts(&veth.a, "size=64,flows=1000")
    };
    let r = pktgen::run(&o, None).unwrap();
    assert_eq!(r.sent, 12_345, "count mode stops at the count");
    assert!(r.elapsed_s < 10.0);
    assert_eq!(r.rate_pps, None);
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PktgenArgs,
}

fn args(argv: &[&str]) -> PktgenArgs {
    Cli::try_parse_from(std::iter::once("pktgen").chain(argv.iter().copied()))
        .unwrap()
        .args
}

#[test]
fn bad_arguments_name_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["--port", "x", "--rate", "fast"], "rate: "),
        (&["--port", "x", "--rate", "0"], "rate: "),
        (&["--port", "x", "--duration", "soon"], "duration: "),
        (&["--port", "x", "--xdp-mode", "turbo"], "xdp-mode: "),
        (&["--port", "x", "--profile", "size=10"], "profile: size: "),
        (
            &["--port", "x", "--profile", "color=red"],
            "profile: color: ",
        ),
        (&["--port", "x", "--proto", "sctp"], "profile: proto: "),
        (&["--port", "x", "--flows", "0"], "profile: flows: "),
        (
            &["--port", "x", "--profile", "size=64", "--size", "128"],
            "profile: size: ",
        ),
    ];
    for (argv, prefix) in cases {
        let e = args(argv).options().unwrap_err().to_string();
        assert!(e.starts_with(prefix), "{argv:?}: {e}");
    }
    let run_err = |argv: &[&str]| {
        let o = args(argv).options().unwrap();
        pktgen::run(&o, None).unwrap_err().to_string()
    };
    let e = run_err(&["--port", "x", "--count", "10", "--batch", "0"]);
    assert!(e.starts_with("batch: "), "{e}");
    let e = run_err(&["--port", "x", "--count", "10", "--batch", "300"]);
    assert!(e.starts_with("batch: "), "{e}");
    let e = run_err(&["--port", "x", "--count", "0"]);
    assert!(e.starts_with("count: "), "{e}");
    let e = run_err(&["--port", "x"]);
    assert!(e.starts_with("duration: "), "{e}");
    let e = run_err(&["--port", "x", "--rx", "x", "--count", "1"]);
    assert!(e.starts_with("rx: "), "{e}");
    let e = run_err(&["--port", "x", "--rx", "y", "--count", "1", "--proto", "tcp"]);
    assert!(e.starts_with("size: "), "{e}");
    let e = run_err(&["--port", "nosuchif0", "--count", "1"]);
    assert!(e.starts_with("port \"nosuchif0\": "), "{e}");
    assert!(e.contains("no such interface"), "{e}");
    let o = args(&[
        "--port", "x", "--size", "128", "--flows", "9", "--rate", "1.5M",
    ])
    .options()
    .unwrap();
    assert_eq!(o.profile.frame_size, 124);
    assert_eq!(o.profile.flows, 9);
    assert_eq!(o.rate, Rate::Pps(1_500_000.0));
    assert_eq!(o.batch, 64);
}

#[test]
fn bad_rx_interface_is_named() {
    require_root!();
    let veth = VethPair::new();
    let o = PktgenOptions {
        rx: Some("nosuchif1".into()),
        count: Some(1),
        ..opts(&veth.a, "")
    };
    let e = pktgen::run(&o, None).unwrap_err().to_string();
    assert!(e.starts_with("rx \"nosuchif1\": "), "{e}");
}

/// Maximum rate into a veth: 64-byte UDP, 3 s each, first with nothing listening on the far
/// end (the stack drops the frames), then with our own AF_XDP receiver counting there.
#[test]
#[ignore = "benchmark: run in release with --nocapture"]
fn measure_max_rate() {
    require_root!();
    let veth = VethPair::new();
    for batch in [64, 256] {
        let o = PktgenOptions {
            duration: Some(Duration::from_secs(3)),
            batch,
            ..opts(&veth.a, "size=64,flows=1")
        };
        let r = pktgen::run(&o, None).unwrap();
        println!("no receiver, batch {batch}: {}", r.summary());
    }
    let o = PktgenOptions {
        duration: Some(Duration::from_secs(3)),
        rx: Some(veth.b.clone()),
        ..opts(&veth.a, "size=64,flows=1")
    };
    let r = pktgen::run(&o, None).unwrap();
    println!("own AF_XDP receiver: {}", r.summary());
}
