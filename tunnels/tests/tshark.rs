#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! tshark dissects every frame the encap code writes without an expert warning: VXLAN and
//! Geneve (no option, one, several with a critical one, OAM) with the UDP checksum off and
//! on, DF on and off, TOS and TTL set, around inner IPv4/UDP, IPv4/TCP and ARP frames. tshark
//! verifies every IPv4, UDP and TCP checksum (off by default in tshark: the prefs turn them
//! on), reads back the stack, the VNI and the Geneve options, and reports no expert Warning
//! or Error. Skips when `tshark` is not on PATH.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use pipeline::wire::{arp, tcp, ArpRepr, FrameBuilder, Ipv4Repr, TcpRepr};
use tunnels::wire::{OptionIter, MAX_VNI};
use tunnels::{udp_src_port, EncapParams, TunnelHeader, TunnelKind};

/// Class 0x0102 type 1 with 4 bytes of data.
const ONE_OPTION: &[u8] = &[0x01, 0x02, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef];
/// Class 0x0102 type 0x83 (critical) with 4 bytes, class 0xffff type 5 without data, class
/// 0x0103 type 0x10 with 8 bytes.
const OPTIONS: &[u8] = &[
    0x01, 0x02, 0x83, 0x01, 1, 2, 3, 4, 0xff, 0xff, 0x05, 0x00, 0x01, 0x03, 0x10, 0x02, 0, 1, 2, 3,
    4, 5, 6, 7,
];

const CHECKSUM_PREFS: [&str; 6] = [
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
];
/// What tshark reads of each frame, in this order; occurrences joined by ','.
const FIELDS: [&str; 10] = [
    "frame.protocols",
    "vxlan.vni",
    "geneve.vni",
    "geneve.option.class",
    "geneve.option.type",
    "ip.checksum.status",
    "udp.checksum.status",
    "tcp.checksum.status",
    "_ws.expert.severity",
    "_ws.expert.message",
];
/// Expert severities (epan's `PI_NOTE`, `PI_WARN`).
const NOTE: u32 = 0x40_0000;
const WARN: u32 = 0x60_0000;

fn tunnels() -> Vec<(EncapParams, &'static [u8])> {
    let with = |kind, vni| {
        EncapParams::new(
            kind,
            vni,
            [2, 0, 0, 0, 1, 1],
            [2, 0, 0, 0, 1, 2],
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        )
    };
    let (vxlan, geneve) = (TunnelKind::Vxlan, TunnelKind::Geneve);
    vec![
        // The defaults: DF, no UDP checksum, TTL 64, TOS 0.
        (with(vxlan, 42), &[]),
        // TTL 3 earns a Note ("Time To Live" only 3), which shows that notes are read.
        (
            EncapParams {
                udp_checksum: true,
                dont_frag: false,
                tos: 0xb8,
                ttl: 3,
                ..with(vxlan, 0xab_cdef)
            },
            &[],
        ),
        (
            EncapParams {
                udp_checksum: true,
                ..with(geneve, 0)
            },
            &[],
        ),
        (with(geneve, 7), ONE_OPTION),
        (
            EncapParams {
                udp_checksum: true,
                tos: 0x02,
                ttl: 255,
                ..with(geneve, MAX_VNI)
            },
            OPTIONS,
        ),
        (
            EncapParams {
                oam: true,
                dont_frag: false,
                ..with(geneve, 0x01_0203)
            },
            OPTIONS,
        ),
    ]
}

/// The inner frames with tshark's protocols after `eth:ethertype`. The TCP segment is data
/// with PSH|ACK on ports of its own (`n`), so that tshark's sequence analysis sees one lone
/// segment per connection and finds nothing to flag (no retransmission, no lost segment).
fn inner_frames(n: u16) -> [(&'static str, Vec<u8>); 3] {
    let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let (ip_a, ip_b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let ip = FrameBuilder::ethernet(a, b).ipv4(Ipv4Repr::new(ip_a, ip_b));
    let segment = TcpRepr {
        seq_number: 1000,
        ack_number: 2000,
        flags: tcp::flags::PSH | tcp::flags::ACK,
        ..TcpRepr::new(20000 + n, 30000 + n)
    };
    let request = ArpRepr {
        operation: arp::operation::REQUEST,
        sender_mac: a,
        sender_ip: ip_a,
        target_mac: [0; 6],
        target_ip: ip_b,
    };
    let arp = FrameBuilder::ethernet(a, [0xff; 6])
        .arp(request)
        .min_len(60);
    let payload = b"vecswitch encap, dissected by tshark";
    [
        ("ip:udp:data", ip.udp(20000 + n, 30000 + n).build(payload)),
        ("ip:tcp:data", ip.tcp(segment).build(payload)),
        ("arp", arp.build(&[])),
    ]
    .map(|(protocols, frame)| (protocols, frame.unwrap()))
}

/// Classic pcap: the global header (magic, version 2.4, zone, sigfigs, snaplen, Ethernet),
/// then per frame its record header (seconds, microseconds, captured and original length).
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend(word.to_le_bytes());
    }
    for (i, frame) in frames.iter().enumerate() {
        for word in [i as u32, 0, frame.len() as u32, frame.len() as u32] {
            out.extend(word.to_le_bytes());
        }
        out.extend(frame);
    }
    std::fs::write(path, out).unwrap();
}

fn tshark(pcap: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(CHECKSUM_PREFS)
        .args(args)
        .output()
        .unwrap();
    // stderr only matters on failure (as root tshark warns about running as root).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// A decimal or 0x-prefixed hex number, as tshark prints fields.
fn number(s: &str) -> u32 {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn numbers(s: &str) -> Vec<u32> {
    s.split(',').filter(|s| !s.is_empty()).map(number).collect()
}

/// What tshark should read of one frame: the protocols, the VNI, the options' classes and
/// types, the IPv4, UDP and TCP checksum statuses (outer first; 1 is "Good", 3 "Not present",
/// a UDP checksum of 0).
#[derive(Debug, PartialEq)]
struct Dissected {
    protocols: String,
    vni: u32,
    classes: Vec<u32>,
    types: Vec<u32>,
    checksums: [String; 3],
}

fn expected(params: &EncapParams, options: &[u8], inner: &str) -> Dissected {
    let kind = match params.kind {
        TunnelKind::Vxlan => "vxlan",
        TunnelKind::Geneve => "geneve",
    };
    let options: Vec<_> = OptionIter::new(options).map(Result::unwrap).collect();
    let outer_udp = if params.udp_checksum { "1" } else { "3" };
    Dissected {
        protocols: format!("eth:ethertype:ip:udp:{kind}:eth:ethertype:{inner}"),
        vni: params.vni,
        classes: options.iter().map(|o| o.class.into()).collect(),
        types: options.iter().map(|o| o.option_type.into()).collect(),
        checksums: [
            if inner == "arp" { "1" } else { "1,1" }.into(),
            if inner.contains(":udp") {
                format!("{outer_udp},1")
            } else {
                outer_udp.into()
            },
            if inner.contains(":tcp") { "1" } else { "" }.into(),
        ],
    }
}

#[test]
fn tshark_dissects_encapsulated_frames_without_warnings() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("SKIP: tshark is not on PATH");
        return;
    }
    let (mut frames, mut wanted) = (Vec::new(), Vec::new());
    for (t, (params, options)) in tunnels().iter().enumerate() {
        let header = TunnelHeader::new(params, options).unwrap();
        for (protocols, inner) in inner_frames(frames.len() as u16) {
            let mut frame = vec![0; header.header_len()];
            frame.extend(inner);
            let hash = (frames.len() as u32).wrapping_mul(0x9e37_79b9);
            header.write(&mut frame, udp_src_port(hash)).unwrap();
            frames.push(frame);
            wanted.push((t, expected(params, options, protocols)));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("encap.pcap");
    write_pcap(&pcap, &frames);

    let mut args = vec!["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"];
    args.extend(FIELDS.iter().flat_map(|f| ["-e", f]));
    let out = tshark(&pcap, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), frames.len(), "{out}");
    let mut notes = 0;
    for (line, (t, want)) in lines.iter().zip(wanted) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [protocols, vxlan_vni, geneve_vni, classes, types, ip, udp, tcp, severity, message] =
            cols[..]
        else {
            panic!("tunnel {t}: {line}");
        };
        let vni = if vxlan_vni.is_empty() {
            geneve_vni
        } else {
            vxlan_vni
        };
        let got = Dissected {
            protocols: protocols.into(),
            vni: number(vni),
            classes: numbers(classes),
            types: numbers(types),
            checksums: [ip.into(), udp.into(), tcp.into()],
        };
        assert_eq!(got, want, "tunnel {t}: {line}");
        let severities = numbers(severity);
        assert!(
            severities.iter().all(|&s| s < WARN),
            "tunnel {t}: {message}"
        );
        notes += severities.iter().filter(|&&s| s == NOTE).count();
    }
    assert_eq!(notes, 3, "the TTL 3 notes, one per inner frame");

    // The expert tap on its own: nothing at Warning or above.
    let expert = tshark(&pcap, &["-q", "-z", "expert,warn"]);
    assert!(expert.trim().is_empty(), "{expert}");
}
