#![allow(clippy::panic)]
//! AF_PACKET ports against a real veth pair whose far end lives in a throw-away network
//! namespace (`common::VethNs`, removed by a drop guard even when an assertion fails). Needs
//! root (CI runs as root) and skips with a message otherwise. Every test has its own namespace
//! and links, so they run in parallel; waits are polls against deadlines.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{frame, hex, is_root, python, run, FrameReceiver, VethNs, ETHERTYPE};
use pipeline::wire::{ethernet, EthernetFrame, FrameBuilder};
use ports::afpacket::{AfPacketConfig, AfPacketError, AfPacketPort};

const MARKER: u16 = 0x88b6; // the other local experimental type: "the namespace is done"

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: AF_PACKET tests need root (veth pairs and network namespaces)");
            return;
        }
    };
}

/// Frame `i` with an 802.1Q (even `i`) or 802.1ad (odd `i`) tag of VLAN `100 + i` and
/// priority 5 after the addresses, at most 1514 bytes with the tag (the kernel refuses a
/// longer 802.1ad frame at the sender).
fn tagged_frame(i: u32) -> Vec<u8> {
    let f = frame(i);
    let eth = EthernetFrame::new_checked(&f[..]).unwrap_or_else(|e| panic!("frame {i}: {e}"));
    let payload = &eth.payload()[..eth.payload().len().min(1510 - 14)];
    let tpid: u16 = if i.is_multiple_of(2) { 0x8100 } else { 0x88a8 };
    let tci: u16 = (5 << 13) | (100 + i as u16);
    FrameBuilder::ethernet(eth.src(), eth.dst())
        .vlan(tpid, tci)
        .ethertype(eth.ethertype())
        .build(payload)
        .unwrap_or_else(|e| panic!("tagged frame {i}: {e}"))
}

fn ethertype_at_12(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(12..14)?.try_into().ok()?))
}

/// A receiver on the peer end for `n` of our frames; it sends the marker frame when done.
fn ns_receiver(env: &VethNs, n: usize) -> FrameReceiver {
    FrameReceiver::start(Some(&env.ns), env.peer(), ETHERTYPE, n, Some(&marker()))
}

fn marker() -> Vec<u8> {
    FrameBuilder::ethernet([0x02, 0, 0, 0, 0, 0x02], ethernet::BROADCAST)
        .ethertype(MARKER)
        .min_len(60)
        .build(&[])
        .unwrap_or_else(|e| panic!("marker: {e}"))
}

/// Sends `frames` from the peer end inside the namespace through an AF_PACKET socket.
fn send_from_ns(env: &VethNs, frames: &[Vec<u8>]) {
    let hex: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{}',0))\n\
         for h in {hex:?}:\n    s.send(bytes.fromhex(h))\n",
        env.peer()
    );
    run(&["ip", "netns", "exec", &env.ns, python(), "-c", &script]);
}

/// Opens a port on the host end or fails the test with the error.
fn open(env: &VethNs, config: &AfPacketConfig) -> AfPacketPort {
    AfPacketPort::open(env.host(), config).unwrap_or_else(|e| panic!("open {}: {e}", env.host()))
}

/// Receives until `done` says so or 5 s passed; returns every frame seen, in order.
fn receive_until(
    port: &mut AfPacketPort,
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(&got) && Instant::now() < deadline {
        if port.rx_burst(64, |b| got.push(b.to_vec())) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

fn only(ethertype: u16, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames
        .into_iter()
        .filter(|f| ethertype_at_12(f) == Some(ethertype))
        .collect()
}

/// Transmits `frames` in bursts of 32 and waits until the kernel gave every frame back.
fn transmit_all(port: &mut AfPacketPort, frames: &[Vec<u8>]) {
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(5);
    while sent < frames.len() && Instant::now() < deadline {
        let batch: Vec<&[u8]> = frames[sent..]
            .iter()
            .take(32)
            .map(|f| f.as_slice())
            .collect();
        let n = port.tx_burst(&batch) as usize;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        sent += n;
    }
    assert_eq!(sent, frames.len(), "all frames queued");
    while port.tx_in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(port.tx_in_flight(), 0, "the kernel sent every frame");
}

#[test]
fn frames_from_the_namespace_arrive_byte_exact() {
    require_root!();
    let env = VethNs::new(1);
    let mut port = open(&env, &AfPacketConfig::default());
    let frames: Vec<Vec<u8>> = (0..60).map(frame).collect();
    send_from_ns(&env, &frames);
    let got = only(
        ETHERTYPE,
        receive_until(&mut port, |g| only_count(ETHERTYPE, g) >= 60),
    );
    assert_eq!(got.len(), 60, "all frames received");
    for (i, (g, want)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(hex(g), hex(want), "frame {i} bytes");
    }
    let stats = port.stats().unwrap_or_else(|e| panic!("stats: {e}"));
    assert!(stats.packets >= 60, "kernel counted the packets: {stats:?}");
    assert_eq!(stats.drops, 0, "{stats:?}");
    let c = port.counters();
    assert_eq!(c.rx_truncated + c.rx_bad_blocks, 0, "{c:?}");
    // The kernel reset its counters on read; ours keep the sum.
    assert!(
        port.stats()
            .unwrap_or_else(|e| panic!("stats: {e}"))
            .packets
            >= 60
    );
}

fn only_count(ethertype: u16, frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .filter(|f| ethertype_at_12(f) == Some(ethertype))
        .count()
}

#[test]
fn small_bursts_over_a_small_ring_resume_mid_block_and_wrap_around() {
    require_root!();
    let env = VethNs::new(1);
    // 4 blocks of 64 KiB: 600 frames (~330 KB with headers) must wrap the ring.
    let config = AfPacketConfig {
        block_size: 1 << 16,
        block_count: 4,
        ..AfPacketConfig::default()
    };
    let mut port = open(&env, &config);
    let n = 600u32;
    // The frames are built in python (the same recipe as `frame`): 600 of them in hex would
    // exceed the kernel's limit on one argument.
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{}',0))\n\
         L=[60,64,128,333,1000,1514]\nfor i in range({n}):\n\
         \x20   f=bytearray(b'\\xff'*6+bytes([2,0,0,0,0,1])+({ETHERTYPE}).to_bytes(2,'big')+i.to_bytes(4,'big'))\n\
         \x20   while len(f)<L[i%6]:\n        f.append((len(f)*7+i)&255)\n\
         \x20   s.send(bytes(f))\n",
        env.peer()
    );
    let mut sender = Command::new("ip")
        .args(["netns", "exec", &env.ns, python(), "-c", &script])
        .spawn()
        .unwrap_or_else(|e| panic!("spawn sender: {e}"));
    // Bursts of 7 end in the middle of blocks; the next burst must resume there.
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sender_done = false;
    let mut quiet_since = None;
    while Instant::now() < deadline {
        let k = port.rx_burst(7, |b| {
            if ethertype_at_12(b) == Some(ETHERTYPE) {
                got.push(b.to_vec())
            }
        });
        assert!(k <= 7, "burst honours max");
        if got.len() == n as usize {
            break;
        }
        if !sender_done {
            sender_done = matches!(sender.try_wait(), Ok(Some(_)));
        }
        if k == 0 {
            // Once the sender is gone, give the last block its retire timeout, then stop.
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if sender_done && since.elapsed() > Duration::from_millis(200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        } else {
            quiet_since = None;
        }
    }
    let _ = sender.wait();
    let stats = port.stats().unwrap_or_else(|e| panic!("stats: {e}"));
    eprintln!(
        "received {} of {n}; {stats:?}; {:?}",
        got.len(),
        port.counters()
    );
    // In order and byte-exact; whatever is missing the kernel counted as dropped.
    let mut last = None;
    for g in &got {
        let seq = u32::from_be_bytes([g[14], g[15], g[16], g[17]]);
        assert!(last < Some(seq), "in order: {seq} after {last:?}");
        assert_eq!(hex(g), hex(&frame(seq)), "frame {seq} bytes");
        last = Some(seq);
    }
    assert_eq!(
        got.len() as u64 + stats.drops,
        u64::from(n),
        "received + dropped"
    );
    assert!(got.len() > 300, "most frames received: {}", got.len());
    assert_eq!(port.counters().rx_bad_blocks, 0);
}

#[test]
fn vlan_tagged_frames_arrive_with_their_tag() {
    require_root!();
    let env = VethNs::new(1);
    let mut port = open(&env, &AfPacketConfig::default());
    let frames: Vec<Vec<u8>> = (0..12).map(tagged_frame).collect();
    send_from_ns(&env, &frames);
    let tagged = |f: &&Vec<u8>| matches!(ethertype_at_12(f), Some(0x8100 | 0x88a8));
    let got: Vec<Vec<u8>> = receive_until(&mut port, |g| g.iter().filter(tagged).count() >= 12)
        .into_iter()
        .filter(|f| tagged(&f))
        .collect();
    assert_eq!(got.len(), 12, "all tagged frames received");
    for (i, (g, want)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(hex(g), hex(want), "tagged frame {i} bytes (tag restored)");
    }
    eprintln!(
        "tags the kernel took out and rx_burst restored: {:?}",
        port.counters()
    );
}

#[test]
fn frames_from_the_port_arrive_in_the_namespace_byte_exact() {
    require_root!();
    let env = VethNs::new(1);
    // 32 frames: the 100 frames wrap the tx ring three times.
    let config = AfPacketConfig {
        tx_frames: 32,
        ..AfPacketConfig::default()
    };
    let mut port = open(&env, &config);
    let n = 100u32;
    let receiver = ns_receiver(&env, n as usize);
    let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
    transmit_all(&mut port, &frames);
    let received = receiver.finish();
    assert_eq!(received.len(), n as usize, "namespace received every frame");
    for (i, h) in received.iter().enumerate() {
        assert_eq!(h, &hex(&frame(i as u32)), "frame {i} bytes");
    }
    let c = port.counters();
    assert_eq!(c.tx_too_long + c.tx_kick_errors, 0, "{c:?}");
    assert!(
        c.tx_kicks >= u64::from(n).div_ceil(32),
        "one kick per burst: {c:?}"
    );

    // Longer than a frame: taken, dropped, counted; the rest of the burst still goes.
    let big = vec![0u8; port.max_tx_len() + 1];
    let small = frame(0);
    assert_eq!(port.tx_burst(&[&big, &small]), 2);
    assert_eq!(port.counters().tx_too_long, 1);
    eprintln!("tx counters: {:?}", port.counters());
}

#[test]
fn the_port_does_not_receive_its_own_transmissions() {
    require_root!();
    // Through the qdisc the kernel hands every outgoing frame to the packet taps, so this is
    // PACKET_IGNORE_OUTGOING at work; with the bypass the taps are skipped as well.
    for qdisc_bypass in [false, true] {
        let env = VethNs::new(1);
        let config = AfPacketConfig {
            qdisc_bypass,
            ..AfPacketConfig::default()
        };
        let mut port = open(&env, &config);
        let n = 40u32;
        let receiver = ns_receiver(&env, n as usize);
        let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
        transmit_all(&mut port, &frames);
        // The namespace sends the marker only after it received all our frames, so a copy of
        // our own frame would be in the rx ring before the marker.
        let got = receive_until(&mut port, |g| only_count(MARKER, g) > 0);
        assert_eq!(receiver.finish().len(), n as usize, "bypass {qdisc_bypass}");
        assert_eq!(
            only_count(MARKER, &got),
            1,
            "marker arrived (bypass {qdisc_bypass})"
        );
        assert_eq!(
            only_count(ETHERTYPE, &got),
            0,
            "the port saw its own frames (bypass {qdisc_bypass})"
        );
    }
}

#[test]
fn a_bad_interface_name_gives_an_error_naming_it() {
    // Needs no root: the name is looked up before any socket is made.
    let name = format!("nope{}", std::process::id() % 100_000);
    match AfPacketPort::open(&name, &AfPacketConfig::default()) {
        Err(e @ AfPacketError::NoSuchInterface { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&name), "error names the interface: {msg}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("opened a port on {name}, which does not exist"),
    }
}
