#![allow(clippy::panic)]
//! The daemon's port types through `PortIo`, opened from `PortSpec`s as the control socket
//! would: an AF_XDP and an AF_PACKET port on veth pairs whose far ends live in throw-away
//! namespaces (`common::VethNs`, removed by a drop guard even when an assertion fails) exchange
//! frames with python AF_PACKET sockets there, byte-exact, both ways; an AF_XDP port with
//! `queues=2` on a two-queue veth shares one XDP program between its sockets, receives each
//! queue's frames on that queue's socket (steered as described at [`send_on_cpu`]) and lets go
//! of the program with its last queue; a tap port sends frames into the host stack and receives
//! what the stack sends out of it (ARP requests); a missing interface is named in the error.
//! Needs root and skips with a message otherwise.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    counter, ethertype, frame, hex, is_root, port_receive as receive,
    port_transmit_all as transmit_all, python, run, FrameReceiver, VethNs, ETHERTYPE,
};
use ports::afxdp::{XdpModeRequest, XskConfig, XskError, XskPort};
use ports::{PortIo, PortSpec};

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: port tests need root (veth pairs, namespaces, AF_XDP, tap)");
            return;
        }
    };
}

/// Opens `words` for port `name` through the spec parser, one queue expected.
fn open_one(name: &str, words: &[&str]) -> Box<dyn PortIo> {
    let spec = PortSpec::parse_args(name, words).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut queues = spec.open().unwrap_or_else(|e| panic!("open {name}: {e}"));
    assert_eq!(queues.len(), 1, "{name}: one queue");
    queues.remove(0)
}

/// Sends `frames` from `peer` inside `ns` through an AF_PACKET socket.
fn send_from_ns(ns: &str, peer: &str, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{peer}',0))\n\
         for h in {hex:?}:\n    s.send(bytes.fromhex(h))\n"
    );
    run(&["ip", "netns", "exec", ns, python(), "-c", &script]);
}

/// Frames from the namespace arrive byte-exact at `port`, and frames `port` sends arrive
/// byte-exact in the namespace.
fn exchange_both_ways(env: &VethNs, port: &mut dyn PortIo) {
    let n = 60u32;
    let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
    send_from_ns(&env.ns, &env.peers[0], &frames);
    let got = receive(port, ETHERTYPE, frames.len());
    assert_eq!(got.len(), frames.len(), "all frames received");
    for (i, (g, want)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(hex(g), hex(want), "received frame {i} bytes");
    }

    let out: Vec<Vec<u8>> = (1000..1000 + n).map(frame).collect();
    let receiver = FrameReceiver::start(Some(&env.ns), &env.peers[0], ETHERTYPE, out.len(), None);
    transmit_all(port, &out);
    let seen = receiver.finish();
    assert_eq!(seen.len(), out.len(), "the namespace received every frame");
    for (i, (s, want)) in seen.iter().zip(&out).enumerate() {
        assert_eq!(s, &hex(want), "sent frame {i} bytes");
    }
}

#[test]
fn afxdp_port_exchanges_frames_both_ways() {
    require_root!();
    let env = VethNs::new(1);
    let host = env.hosts[0].clone();
    let mut port = open_one(&host, &["type=afxdp", "ofport=3"]);
    let info = port.info();
    assert_eq!(info.kind, "afxdp");
    assert_eq!(
        info.mode, "native copy need_wakeup multi-buffer",
        "veth: native XDP, copy mode"
    );
    assert!(port.rx_fd().is_some());
    exchange_both_ways(&env, port.as_mut());
    assert_eq!(counter(port.as_ref(), "rx-dropped"), 0);
    assert_eq!(counter(port.as_ref(), "rx-invalid-descs"), 0);
    assert_eq!(counter(port.as_ref(), "tx-invalid-descs"), 0);
    assert_eq!(counter(port.as_ref(), "tx-no-room"), 0);
    assert_eq!(counter(port.as_ref(), "wakeup-errors"), 0);
}

#[test]
fn afxdp_generic_mode_says_so() {
    require_root!();
    let env = VethNs::new(1);
    let host = env.hosts[0].clone();
    let mut port = open_one(&host, &["type=afxdp", "xdp-mode=generic"]);
    assert_eq!(port.info().mode, "generic copy need_wakeup multi-buffer");
    let frames: Vec<Vec<u8>> = (0..6).map(frame).collect();
    send_from_ns(&env.ns, &env.peers[0], &frames);
    let got = receive(port.as_mut(), ETHERTYPE, frames.len());
    assert_eq!(got, frames);
}

#[test]
fn afpacket_port_exchanges_frames_both_ways() {
    require_root!();
    let env = VethNs::new(1);
    let host = env.hosts[0].clone();
    let mut port = open_one(&host, &["type=afpacket", "block-size=65536", "blocks=4"]);
    assert_eq!(port.info().kind, "afpacket");
    assert_eq!(port.info().mode, "tpacket_v3");
    assert!(port.rx_fd().is_some());
    exchange_both_ways(&env, port.as_mut());
    assert!(counter(port.as_ref(), "rx-kernel-packets") >= 60);
    assert_eq!(counter(port.as_ref(), "rx-kernel-drops"), 0);
    assert_eq!(counter(port.as_ref(), "tx-too-long"), 0);
    assert_eq!(counter(port.as_ref(), "rx-truncated"), 0);
}

/// Whether interface `name` exists.
fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn tap_port_carries_frames_to_and_from_the_host_stack() {
    require_root!();
    let pid = std::process::id() % 100_000;
    let name = format!("vxt{pid}");
    // The port deletes the device when it drops, also while unwinding from a failed assertion.
    let mut port = open_one(&name, &["type=tap"]);
    assert_eq!(port.info().kind, "tap");
    let fd = port.rx_fd().unwrap_or_else(|| panic!("tap has an fd"));
    assert!(fd >= 0);
    let up = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).unwrap_or_default();
    let flags = u32::from_str_radix(up.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    assert_eq!(flags & 1, 1, "the port brought {name} up");

    // Frames the port sends appear on the tap.
    let out: Vec<Vec<u8>> = (0..40).map(frame).collect();
    let receiver = FrameReceiver::start(None, &name, ETHERTYPE, out.len(), None);
    let refs: Vec<&[u8]> = out.iter().map(|f| f.as_slice()).collect();
    assert_eq!(port.tx_burst(&refs), out.len());
    let seen = receiver.finish();
    assert_eq!(seen.len(), out.len(), "every frame appeared on {name}");
    for (i, (s, want)) in seen.iter().zip(&out).enumerate() {
        assert_eq!(s, &hex(want), "frame {i} bytes");
    }
    assert_eq!(counter(port.as_ref(), "tx-dropped"), 0);
    assert_eq!(counter(port.as_ref(), "tx-errors"), 0);

    // What the host stack sends out of the tap arrives at rx_burst: a datagram to a neighbour
    // on the tap's subnet makes the kernel ask for its address.
    let third = 100 + (pid % 100) as u8;
    run(&[
        "ip",
        "addr",
        "add",
        &format!("10.251.{third}.1/24"),
        "dev",
        &name,
    ]);
    let target = [10u8, 251, third, 2];
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("udp: {e}"));
    let _ = sock.send_to(b"hello", (std::net::Ipv4Addr::from(target), 9));
    let arps = receive(port.as_mut(), 0x0806, 1);
    assert!(!arps.is_empty(), "an ARP request came out of {name}");
    let arp = &arps[0];
    assert_eq!(&arp[0..6], &[0xff; 6], "broadcast");
    assert_eq!(&arp[20..22], &[0, 1], "ARP request");
    assert_eq!(
        &arp[28..32],
        &[10, 251, third, 1],
        "sender is the tap's address"
    );
    assert_eq!(&arp[38..42], &target, "asks for the neighbour");
    assert_eq!(counter(port.as_ref(), "rx-errors"), 0);

    // A device taken down refuses frames; the port takes them and counts them lost (not a
    // full ring for the caller to count) without a write per frame, and writes again once the
    // device is back up (after its 100 ms back-off).
    run(&["ip", "link", "set", &name, "down"]);
    assert_eq!(port.tx_burst(&refs), out.len());
    assert_eq!(port.tx_burst(&refs), out.len());
    assert_eq!(counter(port.as_ref(), "tx-link-down"), 2 * out.len() as u64);
    assert_eq!(
        port.losses().get(ports::PortLoss::TxLinkDown),
        2 * out.len() as u64
    );
    assert_eq!(counter(port.as_ref(), "tx-errors"), 0);
    run(&["ip", "link", "set", &name, "up"]);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(port.tx_burst(&refs), out.len());

    drop(port);
    let deadline = Instant::now() + Duration::from_secs(2);
    while link_exists(&name) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!link_exists(&name), "{name} disappears with the port");
}

#[test]
fn tap_port_refuses_a_name_taken_by_another_device() {
    require_root!();
    let env = VethNs::new(1);
    let host = env.hosts[0].clone();
    let spec = PortSpec::parse_args(&host, &["type=tap"]).unwrap_or_else(|e| panic!("{e}"));
    let e = spec.open().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains(&host) && e.contains("TUNSETIFF"), "{e}");
}

#[test]
fn afxdp_on_a_missing_interface_names_it() {
    // No root needed: the interface is looked up before any socket is made.
    let spec =
        PortSpec::parse_args("vxs-missing0", &["type=afxdp"]).unwrap_or_else(|e| panic!("{e}"));
    let e = spec.open().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("\"vxs-missing0\": no such interface"), "{e}");
    assert!(e.contains("queue 0"), "{e}");
    let spec =
        PortSpec::parse_args("vxs-missing0", &["type=afpacket"]).unwrap_or_else(|e| panic!("{e}"));
    let e = spec.open().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains("vxs-missing0") && e.contains("no such interface"),
        "{e}"
    );
}

/// A veth pair `a`–`b` with `queues` receive and transmit queues on each end, both ends in this
/// namespace, up, IPv6 off; deleted (both ends) when dropped.
struct MultiQueueVeth {
    a: String,
    b: String,
}

static VETH_SEQ: AtomicU32 = AtomicU32::new(0);

impl MultiQueueVeth {
    fn new(queues: u32) -> MultiQueueVeth {
        let pid = std::process::id() % 100_000;
        let n = VETH_SEQ.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (format!("vxq{pid}x{n}a"), format!("vxq{pid}x{n}b"));
        let q = queues.to_string();
        let counts = ["numtxqueues", &q, "numrxqueues", &q];
        let mut cmd = vec!["ip", "link", "add", &a];
        cmd.extend(counts);
        cmd.extend(["type", "veth", "peer", "name", &b]);
        cmd.extend(counts);
        run(&cmd);
        let me = MultiQueueVeth { a, b };
        for end in [&me.a, &me.b] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{end}/disable_ipv6"), "1");
            run(&["ip", "link", "set", end, "up"]);
        }
        me
    }
}

impl Drop for MultiQueueVeth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).output();
    }
}

/// Sends `frames` out of `ifname` from CPU `cpu`, which selects the queue they arrive on at
/// the veth's other end. A veth delivers a frame on the peer's receive queue of the index of
/// the transmit queue it was sent on; a packet socket with `PACKET_QDISC_BYPASS` picks transmit
/// queue `cpu % tx queues` (`packet_pick_tx_queue` records it, and with no XPS map on the veth
/// `skb_tx_hash` returns it). Without the bypass the queue comes from the flow hash, the same
/// for every frame of one ethertype (all on one queue; only IP flows with varying ports
/// spread), and tc's `skbedit queue_mapping` is not built into this kernel.
fn send_on_cpu(ifname: &str, cpu: usize, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    // 263 and 20: SOL_PACKET and PACKET_QDISC_BYPASS (python's socket module lacks the latter).
    let script = format!(
        "import os,socket\nos.sched_setaffinity(0,{{{cpu}}})\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.setsockopt(263,20,1)\n\
         s.bind(('{ifname}',0))\nfor h in {hex:?}:\n    s.send(bytes.fromhex(h))\n"
    );
    run(&[python(), "-c", &script]);
}

/// Two CPUs this process may run on that select transmit queues 0 and 1 of a two-queue device
/// (an even and an odd one), if there are such.
fn cpus_for_queues() -> Option<[usize; 2]> {
    let ids: Vec<usize> = core_affinity::get_core_ids()?
        .iter()
        .map(|c| c.id)
        .collect();
    let even = ids.iter().find(|&&c| c % 2 == 0)?;
    let odd = ids.iter().find(|&&c| c % 2 == 1)?;
    Some([*even, *odd])
}

/// How many XDP programs `ip -d link show` lists on `ifname` (any hook).
fn xdp_programs(ifname: &str) -> usize {
    let out = Command::new("ip")
        .args(["-d", "link", "show", "dev", ifname])
        .output()
        .unwrap_or_else(|e| panic!("ip link show: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .matches("prog/xdp")
        .count()
}

/// Polls every queue until `n` frames of our ethertype arrived over all of them or 5 s passed;
/// returns each queue's frames in arrival order.
fn receive_each(queues: &mut [Box<dyn PortIo>], n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); queues.len()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.iter().map(Vec::len).sum::<usize>() < n && Instant::now() < deadline {
        let mut k = 0;
        for (queue, got) in queues.iter_mut().zip(got.iter_mut()) {
            queue.poll();
            k += queue.rx_burst(32, &mut |b| {
                if ethertype(b) == Some(ETHERTYPE) {
                    got.push(b.to_vec());
                }
            });
        }
        if k == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

fn hexes(frames: &[Vec<u8>]) -> Vec<String> {
    frames.iter().map(|f| hex(f)).collect()
}

/// `type=afxdp queues=2` on a veth with two queues: both sockets bind, the interface carries
/// one XDP program, each queue's frames arrive byte-exact on that queue's socket, both queues
/// transmit; dropping queue 1 hands its frames back to the kernel stack while queue 0 keeps
/// receiving under the same program, and dropping queue 0 too detaches it.
#[test]
fn afxdp_queues_share_one_program_and_each_receives_its_own_queue() {
    require_root!();
    let veth = MultiQueueVeth::new(2);
    let spec = PortSpec::parse_args(&veth.a, &["type=afxdp", "queues=2"])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut queues = spec.open().unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(queues.len(), 2, "one PortIo per queue");
    for q in &queues {
        assert_eq!(q.info().mode, "native copy need_wakeup multi-buffer");
        assert!(q.rx_fd().is_some());
    }
    assert_eq!(xdp_programs(&veth.a), 1, "one program for both queues");

    let to_q0: Vec<Vec<u8>> = (0..30).map(frame).collect();
    let to_q1: Vec<Vec<u8>> = (100..130).map(frame).collect();
    let cpus = cpus_for_queues();
    match cpus {
        Some([even, odd]) => {
            send_on_cpu(&veth.b, even, &to_q0);
            send_on_cpu(&veth.b, odd, &to_q1);
            let got = receive_each(&mut queues, 60);
            assert_eq!(
                hexes(&got[0]),
                hexes(&to_q0),
                "queue 0 got queue 0's frames"
            );
            assert_eq!(
                hexes(&got[1]),
                hexes(&to_q1),
                "queue 1 got queue 1's frames"
            );
        }
        None => {
            // One CPU: every frame takes one queue; the union still has to be complete.
            eprintln!("only one CPU: frames cannot be steered to queue 1, checking the union");
            let all: Vec<Vec<u8>> = to_q0.iter().chain(&to_q1).cloned().collect();
            send_on_cpu(&veth.b, 0, &all);
            let got = receive_each(&mut queues, all.len());
            let mut union: Vec<String> = got.iter().flat_map(|g| hexes(g)).collect();
            let mut want = hexes(&all);
            union.sort();
            want.sort();
            assert_eq!(union, want, "every frame arrived on one of the queues");
        }
    }

    // Both sockets transmit.
    let out: Vec<Vec<u8>> = (1000..1040).map(frame).collect();
    let receiver = FrameReceiver::start(None, &veth.b, ETHERTYPE, out.len(), None);
    transmit_all(queues[0].as_mut(), &out[..20]);
    transmit_all(queues[1].as_mut(), &out[20..]);
    assert_eq!(
        receiver.finish(),
        hexes(&out),
        "the peer saw both queues' frames"
    );
    for q in &queues {
        assert_eq!(counter(q.as_ref(), "rx-dropped"), 0);
        assert_eq!(counter(q.as_ref(), "tx-invalid-descs"), 0);
    }

    // Queue 1 goes: the program stays for queue 0, and queue 1's frames reach the stack.
    drop(queues.remove(1));
    assert_eq!(xdp_programs(&veth.a), 1, "the program outlives queue 1");
    let to_q0: Vec<Vec<u8>> = (200..220).map(frame).collect();
    if let Some([even, odd]) = cpus {
        let to_q1: Vec<Vec<u8>> = (300..320).map(frame).collect();
        let stack = FrameReceiver::start(None, &veth.a, ETHERTYPE, to_q1.len(), None);
        send_on_cpu(&veth.b, odd, &to_q1);
        assert_eq!(
            stack.finish(),
            hexes(&to_q1),
            "queue 1's frames passed to the stack"
        );
        send_on_cpu(&veth.b, even, &to_q0);
    } else {
        send_on_cpu(&veth.b, 0, &to_q0);
    }
    let got = receive(queues[0].as_mut(), ETHERTYPE, to_q0.len());
    assert_eq!(hexes(&got), hexes(&to_q0), "queue 0 still receives");

    // The last queue goes: so does the program.
    drop(queues);
    assert_eq!(
        xdp_programs(&veth.a),
        0,
        "the last queue detached the program"
    );

    // The interface is clean: the port opens again.
    let again = spec.open().unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(again.len(), 2);
    assert_eq!(xdp_programs(&veth.a), 1);
}

/// More queues than the interface has are refused before any socket is made, naming both
/// counts.
#[test]
fn afxdp_more_queues_than_the_interface_has_are_refused() {
    require_root!();
    let veth = MultiQueueVeth::new(2);
    let spec = PortSpec::parse_args(&veth.a, &["type=afxdp", "queues=3"])
        .unwrap_or_else(|e| panic!("{e}"));
    let e = spec.open().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains(&veth.a) && e.contains("queues=3") && e.contains("has 2 receive/transmit"),
        "{e}"
    );
    assert_eq!(xdp_programs(&veth.a), 0, "nothing was attached");
}

/// The sockets of one interface share one program and its map: each sits in its queue's
/// slot, leaves it when dropped, and a port that asks for another hook than the shared
/// program's, or a queue beyond its map, is refused.
#[test]
fn afxdp_sockets_of_one_interface_share_the_program_and_its_map() {
    require_root!();
    let veth = MultiQueueVeth::new(2);
    let config = XskConfig {
        frames: 256,
        ring_size: 64,
        max_queues: 2,
        ..XskConfig::default()
    };
    let q0 = XskPort::open(&veth.a, 0, &config).unwrap_or_else(|e| panic!("queue 0: {e}"));
    let prog = q0
        .program()
        .cloned()
        .unwrap_or_else(|| panic!("queue 0 is steered"));
    let q1 = XskPort::open_with_program(&veth.a, 1, &config, &prog)
        .unwrap_or_else(|e| panic!("queue 1: {e}"));
    assert!(q1.program().is_some_and(|p| Arc::ptr_eq(p, &prog)));
    assert_eq!(prog.queues(), vec![0, 1]);
    assert_eq!(q1.mode().xdp, q0.mode().xdp);
    assert_eq!(xdp_programs(&veth.a), 1);

    let generic = XskConfig {
        xdp_mode: XdpModeRequest::Generic,
        ..config.clone()
    };
    drop(q1);
    assert_eq!(prog.queues(), vec![0]);
    match XskPort::open_with_program(&veth.a, 1, &generic, &prog) {
        Err(XskError::Config { field, .. }) => assert_eq!(field, "xdp_mode"),
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("a generic-mode port on a native program was accepted"),
    }
    match XskPort::open_with_program(&veth.a, 2, &config, &prog) {
        Err(XskError::Config { field, .. }) => assert_eq!(field, "queue"),
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("queue 2 of a two-slot map was accepted"),
    }
    assert_eq!(prog.queues(), vec![0], "refusals took no slot");
    let q1 = XskPort::open_with_program(&veth.a, 1, &config, &prog)
        .unwrap_or_else(|e| panic!("queue 1 again: {e}"));
    assert_eq!(prog.queues(), vec![0, 1]);

    // The program lives as long as any holder: here the test's own handle.
    drop((q0, q1));
    assert_eq!(prog.queues(), Vec::<u32>::new());
    assert_eq!(xdp_programs(&veth.a), 1);
    drop(prog);
    assert_eq!(xdp_programs(&veth.a), 0);
}
