#![cfg(feature = "dpdk")]
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
//! `type=dpdk` ports on `net_af_packet` vdevs over two veth pairs whose far ends live in a
//! throw-away namespace (`common::VethNs`, removed by a drop guard even when an assertion
//! fails): frames sent into one veth come out of the port's `rx_burst` byte-exact, are forwarded
//! through the other port's `tx_burst` and arrive at the other veth's far end byte-exact; then
//! the error paths and the detach on drop. DPDK allows one EAL per process, so everything runs
//! in one test function. Needs root and the system DPDK (`cargo test -p vecswitch --features
//! dpdk --test dpdk_ports`); skips with a message when not root.

mod common;

use common::{
    counter, frame, hex, is_root, port_receive, port_transmit_all as transmit_all, python, run,
    FrameReceiver, VethNs, ETHERTYPE,
};
use ports::dpdk::{default_eal_args, eal_init};
use ports::{PortIo, PortSpec};

/// Sends `frames` from the far end of pair `pair` inside the namespace (AF_PACKET socket).
fn send_from_ns(env: &VethNs, pair: usize, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{}',0))\n\
         for h in {hex:?}:\n    s.send(bytes.fromhex(h))\n",
        env.peers[pair]
    );
    run(&["ip", "netns", "exec", &env.ns, python(), "-c", &script]);
}

fn dpdk_port(name: &str, words: &[&str]) -> Result<Vec<Box<dyn PortIo>>, String> {
    let mut args = vec!["type=dpdk"];
    args.extend_from_slice(words);
    let spec = PortSpec::parse_args(name, &args).map_err(|e| e.to_string())?;
    spec.open().map_err(|e| e.to_string())
}

fn open_one(name: &str, devargs: &str) -> Box<dyn PortIo> {
    let mut queues = dpdk_port(name, &[&format!("dpdk-devargs={devargs}")])
        .unwrap_or_else(|e| panic!("open {name} {devargs}: {e}"));
    assert_eq!(queues.len(), 1);
    queues.remove(0)
}

#[test]
fn dpdk_ports_on_af_packet_vdevs_forward_between_veths() {
    if !is_root() {
        eprintln!("SKIP: DPDK port tests need root (veth pairs and network namespaces)");
        return;
    }
    let env = VethNs::new(2);
    let a_args = format!("net_af_packet0,iface={}", env.hosts[0]);
    let b_args = format!("net_af_packet1,iface={}", env.hosts[1]);

    // The EAL comes up on the first port with the default arguments.
    let mut a = open_one("dpa", &a_args);
    let mut b = open_one("dpb", &b_args);
    let info = a.info();
    assert_eq!(info.kind, "dpdk");
    assert!(info.mode.starts_with("net_af_packet "), "{info:?}");
    assert_eq!(a.rx_fd(), None);
    assert!(
        eal_init(&default_eal_args()).is_ok(),
        "same args: first result"
    );
    let e = eal_init(&["--no-huge".to_string()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("already initialised"), "{e}");

    // Namespace -> veth 0 -> port a's rx_burst, byte-exact and in order.
    let frames: Vec<Vec<u8>> = (0..60).map(frame).collect();
    send_from_ns(&env, 0, &frames);
    let got = port_receive(a.as_mut(), ETHERTYPE, frames.len());
    assert_eq!(got.len(), frames.len(), "every frame arrived");
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(hex(g), hex(f), "frame {i}");
    }
    assert!(counter(a.as_ref(), "rx-copies") >= frames.len() as u64);
    assert!(counter(a.as_ref(), "dev-rx-packets") >= frames.len() as u64);

    // Forward what a received through b's tx_burst: it leaves veth 1's far end byte-exact.
    let receiver = FrameReceiver::start(Some(&env.ns), &env.peers[1], ETHERTYPE, got.len(), None);
    transmit_all(b.as_mut(), &got);
    let out = receiver.finish();
    let want: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    assert_eq!(out, want, "forwarded frames at the far end of veth 1");
    assert_eq!(counter(b.as_ref(), "tx-copies"), frames.len() as u64);
    assert_eq!(counter(b.as_ref(), "tx-ring-full"), 0);

    // This thread initialised the EAL (the main lcore); a PMD thread registers as an lcore
    // on its first burst and gives the lcore back when it ends.
    let one = vec![got[0].clone()];
    let b = std::thread::spawn(move || {
        transmit_all(b.as_mut(), &one);
        b
    })
    .join()
    .unwrap_or_else(|_| panic!("burst thread"));
    assert_eq!(counter(b.as_ref(), "bursts-without-lcore"), 0);
    assert_eq!(counter(a.as_ref(), "bursts-without-lcore"), 0);
    let mut b = b;
    let frames_sent = frames.len() as u64 + 1;

    // A frame larger than an mbuf's data room is taken and counted, not sent.
    let big = vec![0xffu8; 3000];
    assert_eq!(b.tx_burst(&[&big]), 1);
    assert_eq!(counter(b.as_ref(), "tx-too-long"), 1);
    assert_eq!(counter(b.as_ref(), "tx-copies"), frames_sent);

    // Refusals name what is wrong, and leave nothing plugged in.
    let e = dpdk_port("dpc", &[&format!("dpdk-devargs={a_args}")]).err();
    let e = e.unwrap_or_default();
    assert!(e.contains("already used by another port"), "{e}");
    let e = dpdk_port("dpd", &["dpdk-devargs=net_af_packet9,iface=no-such-if9"]).err();
    let e = e.unwrap_or_default();
    assert!(
        e.contains("dpd") && e.contains("rte_dev_probe") && e.contains("net_af_packet9"),
        "{e}"
    );
    let two = format!("dpdk-devargs=net_af_packet2,iface={}", env.hosts[0]);
    let e = dpdk_port("dpe", &[&two, "queues=2"])
        .err()
        .unwrap_or_default();
    assert!(e.contains("queues=2") && e.contains("qpairs"), "{e}");

    // Dropping a port stops, closes and detaches its device: the same vdev probes again and
    // still receives.
    drop(a);
    let mut again = open_one("dpa", &a_args);
    send_from_ns(&env, 0, &frames[..3]);
    let got = port_receive(again.as_mut(), ETHERTYPE, 3);
    assert_eq!(got, frames[..3].to_vec(), "after re-probing");

    // Two queue pairs (net_af_packet's qpairs): two queues, both usable.
    drop(again);
    let two = format!("dpdk-devargs={a_args},qpairs=2");
    let queues = dpdk_port("dpq", &[&two, "queues=2"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(queues.len(), 2);
    assert!(
        queues[1].info().mode.contains("queue 1/2"),
        "{:?}",
        queues[1].info()
    );
    assert!(queues[1]
        .counters()
        .iter()
        .all(|(n, _)| !n.starts_with("dev-")));
}

/// Cycles per frame through a `net_null` device (receive, then transmit the same frames),
/// where the mempool is all the work; on a thread of its own, as a PMD's. Run with
/// `cargo test -p vecswitch --release --features dpdk --test dpdk_ports -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn measure_mbuf_cycles_on_net_null() {
    if !is_root() {
        return;
    }
    let mut q = open_one("dpnull", "net_null7,size=64");
    let per_frame = std::thread::spawn(move || {
        let frames = vec![vec![0u8; 64]; 32];
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let mut run = |rounds: u32| {
            let start = std::time::Instant::now();
            let mut n = 0u64;
            for _ in 0..rounds {
                n += q.rx_burst(32, &mut |_| {}) as u64;
                n += q.tx_burst(&refs) as u64;
            }
            start.elapsed().as_nanos() as f64 / n as f64
        };
        run(10_000);
        let ns = run(200_000);
        (ns, counter(q.as_ref(), "bursts-without-lcore"))
    })
    .join()
    .unwrap_or_else(|_| panic!("thread"));
    eprintln!(
        "net_null: {:.1} ns per frame (rx + tx), bursts without lcore: {}",
        per_frame.0, per_frame.1
    );
}
