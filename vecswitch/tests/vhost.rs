//! The vhost-user port against a real frontend: DPDK's `dpdk-testpmd` with a
//! `net_virtio_user` device (no hugepages) plays the container, and this test's thread plays
//! the PMD (`poll`, `rx_burst`, `tx_burst`). txonly: frames arrive through `rx_burst` as
//! valid Ethernet/IPv4/UDP frames of the generated length; rxonly: frames from `tx_burst`
//! are counted by testpmd; after each testpmd is killed the port goes back to waiting and
//! the next one connects. Skipped with a message when `dpdk-testpmd` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{counter, have_testpmd, TestPmd};
use pipeline::wire::FrameBuilder;
use ports::{PortIo, PortSpec};

/// The tests take turns: two testpmds and two polling loops on two cores starve each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Polls the port until `done` or the deadline; false on timeout.
fn pmd_until(
    port: &mut dyn PortIo,
    secs: u64,
    mut step: impl FnMut(&mut dyn PortIo) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        port.poll();
        if step(port) {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

/// Checks a testpmd txonly frame: Ethernet, IPv4 with a valid header checksum, UDP, and the
/// lengths `--txpkts=64` gives.
fn check_frame(f: &[u8]) -> Result<(), String> {
    if f.len() != 64 {
        return Err(format!("length {}", f.len()));
    }
    if f[12..14] != [0x08, 0x00] {
        return Err(format!("ethertype {:02x}{:02x}", f[12], f[13]));
    }
    let ip = &f[14..34];
    if ip[0] != 0x45 || u16::from_be_bytes([ip[2], ip[3]]) != 50 || ip[9] != 17 {
        return Err(format!("ip header {ip:02x?}"));
    }
    let sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    if (folded & 0xffff) + (folded >> 16) != 0xffff {
        return Err("ip checksum".to_string());
    }
    if u16::from_be_bytes([f[38], f[39]]) != 30 {
        return Err("udp length".to_string());
    }
    Ok(())
}

/// Runs a txonly testpmd until `want` valid frames arrived through `rx_burst`.
fn receive_from_guest(
    port: &mut dyn PortIo,
    dir: &Path,
    socket: &Path,
    run: u32,
    want: u64,
    server: bool,
) {
    let mut pmd = TestPmd::start(dir, socket, run, "txonly", server);
    let mut good = 0u64;
    let mut bad = Vec::new();
    let ok = pmd_until(port, 60, |p| {
        if pmd.exited() {
            return true;
        }
        p.rx_burst(32, &mut |f| match check_frame(f) {
            Ok(()) => good += 1,
            Err(e) if bad.len() < 4 => bad.push(e),
            Err(_) => {}
        });
        good >= want
    });
    assert!(bad.is_empty(), "bad frames: {bad:?}");
    assert!(
        ok && good >= want,
        "only {good} frames; testpmd said:\n{}",
        pmd.log()
    );
    assert!(port.info().mode.ends_with(" up"), "{}", port.info().mode);
    pmd.kill();
}

/// Waits until testpmd forwards. Frames a guest receives before that are flushed from its
/// queues uncounted when forwarding starts.
fn wait_forwarding(port: &mut dyn PortIo, pmd: &mut TestPmd) {
    let started = pmd_until(port, 30, |_| {
        pmd.log().contains("forwards packets on") || pmd.exited()
    });
    assert!(started, "testpmd did not start:\n{}", pmd.log());
}

fn wait_for_disconnect(port: &mut dyn PortIo, disconnects: u64) {
    let ok = pmd_until(port, 10, |p| {
        p.info().mode.ends_with("waiting") && counter(p, "disconnects") >= disconnects
    });
    assert!(ok, "still {} after testpmd died", port.info().mode);
    // Nothing moves while no guest is there: what is sent is taken and lost, named.
    assert_eq!(port.rx_burst(32, &mut |_| {}), 0);
    let down = port.losses().get(ports::PortLoss::TxLinkDown);
    assert_eq!(port.tx_burst(&[&[0u8; 64]]), 1);
    assert_eq!(port.losses().get(ports::PortLoss::TxLinkDown), down + 1);
}

/// A test's set-up: its turn (`None`, with a message, when testpmd is not installed), a
/// temporary directory, and port `name` on `DIR/NAME.sock` with `options`, opened.
struct Rig {
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    queues: Vec<Box<dyn PortIo>>,
}

impl Rig {
    fn new(name: &str, options: &[&str]) -> Option<Rig> {
        if !have_testpmd() {
            eprintln!("skipped: dpdk-testpmd is not installed (Debian package dpdk-dev)");
            return None;
        }
        let turn = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join(format!("{name}.sock"));
        let mut args = vec![
            "type=vhost-user".to_string(),
            format!("socket={}", socket.display()),
        ];
        args.extend(options.iter().map(|o| o.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let queues = PortSpec::parse_args(name, &args).unwrap().open().unwrap();
        Some(Rig {
            _turn: turn,
            dir,
            socket,
            queues,
        })
    }
}

#[test]
fn testpmd_over_virtio_user_both_ways_and_reconnect() {
    let Some(Rig {
        _turn,
        dir,
        socket,
        mut queues,
    }) = Rig::new("vhu0", &[])
    else {
        return;
    };
    assert_eq!(queues.len(), 1);
    let port: &mut dyn PortIo = queues[0].as_mut();
    assert_eq!(port.info().kind, "vhost-user");
    assert!(port.info().mode.ends_with("waiting"));

    // 1. The guest transmits: frames come out of rx_burst.
    receive_from_guest(port, dir.path(), &socket, 1, 2000, false);
    wait_for_disconnect(port, 1);

    // 2. A new guest receives what tx_burst sends; testpmd counts it.
    let mut pmd = TestPmd::start(dir.path(), &socket, 2, "rxonly", false);
    // Small frames, and every fourth one 5000 bytes: three mergeable receive buffers.
    let frame = FrameBuilder::ethernet([0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1])
        .ethertype(0x88b5)
        .build(&[0u8; 5000 - 14])
        .unwrap();
    let burst: Vec<&[u8]> = (0..32)
        .map(|i| if i % 4 == 3 { &frame[..] } else { &frame[..64] })
        .collect();
    wait_forwarding(port, &mut pmd);
    let mut sent = 0u64;
    let ok = pmd_until(port, 60, |p| {
        sent += p.tx_burst(&burst) as u64;
        sent >= 5000 || pmd.exited()
    });
    assert!(
        ok && sent >= 5000,
        "sent only {sent} in 60 s; testpmd said:\n{}",
        pmd.log()
    );
    let counted = pmd_until(port, 15, |_| pmd.stat("RX-packets:") >= sent);
    assert!(counted, "sent {sent}:\n{}", pmd.log());
    // Every frame arrived whole: as many packets and bytes as sent, none in error.
    assert_eq!(pmd.stat("RX-packets:"), sent, "{}", pmd.log());
    assert_eq!(pmd.stat("RX-bytes:"), counter(port, "tx-bytes"));
    assert_eq!(pmd.stat("RX-errors:"), 0);
    assert_eq!(counter(port, "tx-frames"), sent);
    pmd.kill();
    wait_for_disconnect(port, 2);

    // 3. And a third guest connects again after the kill.
    receive_from_guest(port, dir.path(), &socket, 3, 500, false);
    wait_for_disconnect(port, 3);

    assert_eq!(counter(port, "bad-descriptors"), 0);
    assert_eq!(counter(port, "protocol-errors"), 0);
    assert_eq!(counter(port, "connections"), 3);
    eprintln!("vhu0 counters: {:?}", port.counters());
}

#[test]
fn client_mode_connects_to_a_listening_testpmd_and_reconnects() {
    // The port comes first and retries until testpmd listens.
    let Some(Rig {
        _turn,
        dir,
        socket,
        mut queues,
    }) = Rig::new("vhc0", &["mode=client"])
    else {
        return;
    };
    let port: &mut dyn PortIo = queues[0].as_mut();
    assert!(
        port.info().mode.starts_with("client "),
        "{}",
        port.info().mode
    );
    receive_from_guest(port, dir.path(), &socket, 11, 1000, true);
    wait_for_disconnect(port, 1);
    receive_from_guest(port, dir.path(), &socket, 12, 1000, true);
    wait_for_disconnect(port, 2);
    assert_eq!(counter(port, "connections"), 2);
    assert_eq!(counter(port, "protocol-errors"), 0);
}

/// testpmd's default pool is larger than `-m 512` without hugepages holds.
const MBUFS: &str = "--total-num-mbufs=4096";

/// EAL arguments for a testpmd guest on `socket` with these virtio-user device arguments
/// (e.g. `queues=2`, `packed_vq=1`).
fn guest_eal(socket: &Path, run: u32, devargs: &str) -> Vec<String> {
    vec![
        "--no-huge".into(),
        "-m".into(),
        "512".into(),
        "--no-pci".into(),
        format!("--file-prefix=vhg{}-{run}", std::process::id()),
        format!(
            "--vdev=net_virtio_user0,path={},{devargs}",
            socket.display()
        ),
    ]
}

#[test]
fn multiqueue_pairs_each_carry_traffic_and_transmits_follow_the_guests_queues() {
    let Some(Rig {
        _turn,
        dir,
        socket,
        mut queues,
    }) = Rig::new("vhm0", &["queues=2"])
    else {
        return;
    };
    assert_eq!(queues.len(), 2);
    assert!(
        queues[1].info().mode.contains("pair 1/2"),
        "{}",
        queues[1].info().mode
    );

    // 1. A guest with two queue pairs transmits on both: each pair's queue receives its own.
    let mut pmd = TestPmd::start_with(
        dir.path(),
        21,
        &guest_eal(&socket, 21, "queues=2"),
        &[
            "--forward-mode=txonly",
            "--txpkts=64",
            "--rxq=2",
            "--txq=2",
            MBUFS,
        ],
    );
    let mut good = [0u64; 2];
    let mut bad = Vec::new();
    let (q0, q1) = queues.split_at_mut(1);
    let ok = pmd_until(q0[0].as_mut(), 60, |p0| {
        for (i, p) in [p0, q1[0].as_mut()].into_iter().enumerate() {
            p.rx_burst(32, &mut |f| match check_frame(f) {
                Ok(()) => good[i] += 1,
                Err(e) => bad.push(e),
            });
        }
        (good[0] >= 1000 && good[1] >= 1000) || pmd.exited()
    });
    assert!(bad.is_empty(), "bad frames: {:?}", &bad[..bad.len().min(4)]);
    assert!(
        ok && good.iter().all(|&g| g >= 1000),
        "{good:?}:\n{}",
        pmd.log()
    );
    pmd.kill();
    wait_for_disconnect(queues[0].as_mut(), 1);

    // 2. Both pairs enabled: each queue transmits on its own pair (nothing remapped), and
    //    testpmd counts everything on its two receive queues.
    let frame = [0x02u8, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5]
        .into_iter()
        .chain([0u8; 50])
        .collect::<Vec<u8>>();
    let burst: Vec<&[u8]> = vec![&frame[..]; 32];
    // Sends only once testpmd forwards: until its ports are started it may still enable
    // queue pairs (so pair 1's first frames would go through pair 0).
    let send_from_both = |queues: &mut [Box<dyn PortIo>], pmd: &mut TestPmd, each: u64| {
        wait_forwarding(queues[0].as_mut(), pmd);
        let mut sent = [0u64; 2];
        let (q0, q1) = queues.split_at_mut(1);
        pmd_until(q0[0].as_mut(), 60, |p0| {
            for (i, p) in [p0, q1[0].as_mut()].into_iter().enumerate() {
                if sent[i] < each {
                    sent[i] += p.tx_burst(&burst) as u64;
                }
            }
            sent.iter().all(|&s| s >= each) || pmd.exited()
        });
        sent
    };
    let mut pmd = TestPmd::start_with(
        dir.path(),
        22,
        &guest_eal(&socket, 22, "queues=2"),
        &["--forward-mode=rxonly", "--rxq=2", "--txq=2", MBUFS],
    );
    let sent = send_from_both(&mut queues, &mut pmd, 2000);
    let total = sent[0] + sent[1];
    let counted = pmd_until(queues[0].as_mut(), 15, |_| pmd.stat("RX-packets:") >= total);
    assert!(
        counted && sent.iter().all(|&s| s >= 2000),
        "{sent:?} {:?} {:?}:\n{}",
        queues[0].counters(),
        queues[1].counters(),
        pmd.log()
    );
    assert_eq!(pmd.stat("RX-packets:"), total);
    assert_eq!(counter(queues[1].as_ref(), "tx-frames"), sent[1]);
    assert_eq!(counter(queues[1].as_ref(), "tx-remapped"), 0);
    pmd.kill();
    wait_for_disconnect(queues[0].as_mut(), 2);

    // 3. A guest with one queue pair: pair 1's transmits go through pair 0, none is lost.
    let mut pmd = TestPmd::start_with(
        dir.path(),
        23,
        &guest_eal(&socket, 23, "queues=1"),
        &["--forward-mode=rxonly", MBUFS],
    );
    let sent = send_from_both(&mut queues, &mut pmd, 2000);
    let total = sent[0] + sent[1];
    let counted = pmd_until(queues[0].as_mut(), 15, |_| pmd.stat("RX-packets:") >= total);
    assert!(
        counted && sent.iter().all(|&s| s >= 2000),
        "{sent:?}:\n{}",
        pmd.log()
    );
    assert_eq!(pmd.stat("RX-packets:"), total);
    assert_eq!(counter(queues[1].as_ref(), "tx-remapped"), sent[1]);
    pmd.kill();
    wait_for_disconnect(queues[0].as_mut(), 3);
    assert_eq!(counter(queues[0].as_ref(), "connections"), 3);
    assert_eq!(
        counter(queues[1].as_ref(), "connections"),
        0,
        "counted once per port"
    );
    assert_eq!(counter(queues[0].as_ref(), "bad-descriptors"), 0);
}

#[test]
fn a_guest_on_packed_rings_sends_and_receives_merged_frames() {
    let Some(Rig {
        _turn,
        dir,
        socket,
        mut queues,
    }) = Rig::new("vhp0", &[])
    else {
        return;
    };
    let port: &mut dyn PortIo = queues[0].as_mut();
    let devargs = "queues=1,packed_vq=1";
    // 1. txonly over a packed ring: valid frames come out of the port.
    let mut pmd = TestPmd::start_with(
        dir.path(),
        31,
        &guest_eal(&socket, 31, devargs),
        &["--forward-mode=txonly", "--txpkts=64", MBUFS],
    );
    let mut good = 0u64;
    let mut bad = Vec::new();
    let ok = pmd_until(port, 60, |p| {
        p.rx_burst(32, &mut |f| match check_frame(f) {
            Ok(()) => good += 1,
            Err(e) => bad.push(e),
        });
        good >= 3000 || pmd.exited()
    });
    assert!(bad.is_empty(), "bad frames: {:?}", &bad[..bad.len().min(4)]);
    assert!(ok && good >= 3000, "only {good}:\n{}", pmd.log());
    // Both rings of the pair ran packed.
    assert_eq!(counter(port, "packed-rings"), 2, "{:?}", port.counters());
    pmd.kill();
    wait_for_disconnect(port, 1);

    // 2. rxonly: small frames and 5000-byte ones (merged across three buffers) all counted.
    let mut pmd = TestPmd::start_with(
        dir.path(),
        32,
        &guest_eal(&socket, 32, devargs),
        &[
            "--forward-mode=rxonly",
            MBUFS,
            "--max-pkt-len=9216",
            "--enable-scatter",
        ],
    );
    wait_forwarding(port, &mut pmd);
    let frame = FrameBuilder::ethernet([0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1])
        .ethertype(0x88b5)
        .build(&[0u8; 5000 - 14])
        .unwrap();
    let burst: Vec<&[u8]> = (0..32)
        .map(|i| if i % 4 == 3 { &frame[..] } else { &frame[..64] })
        .collect();
    let mut sent = 0u64;
    let ok = pmd_until(port, 60, |p| {
        sent += p.tx_burst(&burst) as u64;
        sent >= 5000 || pmd.exited()
    });
    assert!(ok && sent >= 5000, "sent {sent}:\n{}", pmd.log());
    let counted = pmd_until(port, 15, |_| pmd.stat("RX-packets:") >= sent);
    assert!(counted, "sent {sent}:\n{}", pmd.log());
    assert_eq!(pmd.stat("RX-packets:"), sent, "{}", pmd.log());
    assert_eq!(pmd.stat("RX-bytes:"), counter(port, "tx-bytes"));
    assert_eq!(pmd.stat("RX-errors:"), 0);
    pmd.kill();
    wait_for_disconnect(port, 2);
    assert_eq!(counter(port, "packed-rings"), 4);
    assert_eq!(counter(port, "bad-descriptors"), 0);
    assert_eq!(counter(port, "protocol-errors"), 0);
}

/// One guest ring layout of [`every_ring_layout_a_guest_negotiates_carries_frames_both_ways`]:
/// virtio-user device arguments (ring sizes from 64, where rings wrap often, to 1024),
/// extra EAL arguments, and the segments of its transmits.
struct Layout {
    devargs: &'static str,
    eal: &'static [&'static str],
    txpkts: &'static str,
}

#[test]
fn every_ring_layout_a_guest_negotiates_carries_frames_both_ways() {
    let Some(Rig {
        _turn,
        dir,
        socket,
        mut queues,
    }) = Rig::new("vhl0", &[])
    else {
        return;
    };
    let port: &mut dyn PortIo = queues[0].as_mut();
    let layouts = [
        Layout {
            devargs: "in_order=1",
            eal: &[],
            txpkts: "64",
        },
        Layout {
            devargs: "mrg_rxbuf=0",
            eal: &[],
            txpkts: "20,44",
        },
        Layout {
            devargs: "in_order=1,mrg_rxbuf=0",
            eal: &[],
            txpkts: "64",
        },
        Layout {
            devargs: "packed_vq=1,in_order=1,queue_size=1024",
            eal: &[],
            txpkts: "64",
        },
        Layout {
            devargs: "packed_vq=1,mrg_rxbuf=0,queue_size=64",
            eal: &[],
            txpkts: "20,44",
        },
        Layout {
            devargs: "packed_vq=1,in_order=1,mrg_rxbuf=0",
            eal: &[],
            txpkts: "14,50",
        },
        // DPDK's AVX-512 packed path: four descriptors a cache line, as vecswitch's own.
        Layout {
            devargs: "packed_vq=1,in_order=1,mrg_rxbuf=0,vectorized=1",
            // testpmd logs "using packed ring vectorized Rx path" with
            // --log-level=pmd.net.virtio.*:debug (on a machine with AVX-512).
            eal: &["--force-max-simd-bitwidth=512"],
            txpkts: "64",
        },
    ];
    let big = FrameBuilder::ethernet([0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1])
        .ethertype(0x88b5)
        .build(&[0u8; 5000 - 14])
        .unwrap();
    let mut runs = 0;
    for (i, l) in layouts.iter().enumerate() {
        let mergeable = !l.devargs.contains("mrg_rxbuf=0");
        let eal = |run: u32| {
            let mut eal = guest_eal(&socket, run, &format!("queues=1,{}", l.devargs));
            eal.extend(l.eal.iter().map(|a| a.to_string()));
            eal
        };
        // 1. The guest transmits.
        let run = 40 + 2 * i as u32;
        let txpkts = format!("--txpkts={}", l.txpkts);
        let mut pmd = TestPmd::start_with(
            dir.path(),
            run,
            &eal(run),
            &["--forward-mode=txonly", &txpkts, MBUFS],
        );
        let mut good = 0u64;
        let mut bad = Vec::new();
        let ok = pmd_until(port, 60, |p| {
            p.rx_burst(32, &mut |f| match check_frame(f) {
                Ok(()) => good += 1,
                Err(e) => bad.push(e),
            });
            good >= 3000 || pmd.exited()
        });
        assert!(
            bad.is_empty(),
            "{}: bad frames {:?}",
            l.devargs,
            &bad[..bad.len().min(4)]
        );
        assert!(
            ok && good >= 3000,
            "{}: only {good}:\n{}",
            l.devargs,
            pmd.log()
        );
        pmd.kill();
        runs += 1;
        wait_for_disconnect(port, runs);

        // 2. The guest receives: small, full-size, and (merged, or refused as too long)
        // 5000-byte frames.
        let run = run + 1;
        let mut app = vec!["--forward-mode=rxonly", MBUFS];
        if mergeable {
            app.extend(["--max-pkt-len=9216", "--enable-scatter"]);
        }
        let mut pmd = TestPmd::start_with(dir.path(), run, &eal(run), &app);
        wait_forwarding(port, &mut pmd);
        let burst: Vec<&[u8]> = (0..32)
            .map(|i| match i % 4 {
                3 => &big[..],
                1 => &big[..1514],
                _ => &big[..64],
            })
            .collect();
        let too_long_before = counter(port, "tx-too-long");
        let mut sent = 0u64;
        let ok = pmd_until(port, 60, |p| {
            sent += p.tx_burst(&burst) as u64;
            sent >= 4000 || pmd.exited()
        });
        assert!(
            ok && sent >= 4000,
            "{}: sent {sent}:\n{}",
            l.devargs,
            pmd.log()
        );
        let refused = counter(port, "tx-too-long") - too_long_before;
        let delivered = if mergeable { sent } else { sent - sent / 4 };
        assert_eq!(
            refused,
            sent - delivered,
            "{}: {:?}",
            l.devargs,
            port.counters()
        );
        let counted = pmd_until(port, 15, |_| pmd.stat("RX-packets:") >= delivered);
        assert!(
            counted,
            "{}: delivered {delivered}:\n{}",
            l.devargs,
            pmd.log()
        );
        assert_eq!(pmd.stat("RX-packets:"), delivered, "{}", pmd.log());
        assert_eq!(pmd.stat("RX-errors:"), 0, "{}", pmd.log());
        pmd.kill();
        runs += 1;
        wait_for_disconnect(port, runs);
    }
    assert_eq!(counter(port, "bad-descriptors"), 0);
    assert_eq!(counter(port, "protocol-errors"), 0);
    eprintln!("vhl0 counters: {:?}", port.counters());
}
