#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! NetFlow end to end. The replay scenarios `pcaps/netflow`, `pcaps/netflow-add-id`,
//! `pcaps/netflow-64bit` (4 GiB through one megaflow, split as OVS splits it) and
//! `pcaps/netflow-tunnel` (a VXLAN port as in and out interface): every datagram decoded from `netflow.pcap` and every record asserted (the goldens hold the bytes;
//! these say what they mean), and tshark decoding them as cflow v5. The daemon: `set-netflow`,
//! `show-netflow`, `clear-netflow` and refusals, with generator traffic exported to a UDP
//! socket here (no root); and (root, nfdump installed) the daemon in a namespace exporting to
//! the real `nfcapd` on that namespace's 127.0.0.1, read back with `nfdump -r`.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{is_root, pcap_sink_for_port_2, DaemonProc, TestNs, GEN_BRIDGE};
use netflow::wire::{parse_datagram, Header, Record};

/// Every datagram of a replay's `netflow.pcap` with the port it went to.
fn datagrams(pcap: &Path) -> Vec<(u16, Header, Vec<Record>)> {
    let f = std::fs::File::open(pcap).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let data = p.unwrap().data.into_owned();
        // Ethernet, then IPv4 (20 bytes) or IPv6 (40), then UDP.
        let l4 = match u16::from_be_bytes([data[12], data[13]]) {
            0x0800 => 14 + 20,
            0x86dd => 14 + 40,
            t => panic!("ethertype {t:#x}"),
        };
        let dport = u16::from_be_bytes([data[l4 + 2], data[l4 + 3]]);
        let (h, recs) = parse_datagram(&data[l4 + 8..]).unwrap();
        out.push((dport, h, recs));
    }
    out
}

fn replay(name: &str) -> (tempfile::TempDir, Vec<(u16, Header, Vec<Record>)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pcaps")
        .join(name);
    let s = tools::scenario::Scenario::load(&dir).unwrap();
    let out = tempfile::tempdir().unwrap();
    tools::replay::replay(&s, out.path()).unwrap();
    let d = datagrams(&out.path().join("netflow.pcap"));
    (out, d)
}

const fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// (src, dst, in, out, packets, octets, sport, dport, flags, proto, tos, (first, last))
type Rec = (
    u32,
    u32,
    u16,
    u16,
    u32,
    u32,
    u16,
    u16,
    u8,
    u8,
    u8,
    (u32, u32),
);

fn rec(r: &Record) -> Rec {
    (
        r.src_addr,
        r.dst_addr,
        r.input,
        r.output,
        r.packets,
        r.octets,
        r.src_port,
        r.dst_port,
        r.tcp_flags,
        r.proto,
        r.tos,
        (r.first, r.last),
    )
}

#[test]
fn the_netflow_scenario_sends_ovs_records_to_both_collectors() {
    let (_out, d) = replay("netflow");
    let (h1, h2, h3) = (ip(10, 0, 0, 1), ip(10, 0, 0, 2), ip(10, 0, 0, 3));
    // Two collectors: each datagram twice, the IPv4 one first, byte for byte the same records.
    assert_eq!(d.len() % 2, 0);
    for pair in d.chunks(2) {
        assert_eq!((pair[0].0, pair[1].0), (2055, 9995));
        assert_eq!((pair[0].1, &pair[0].2), (pair[1].1, &pair[1].2));
    }
    let d: Vec<_> = d.into_iter().step_by(2).collect();
    for (_, h, r) in &d {
        assert_eq!(
            (
                h.count as usize,
                h.engine_type,
                h.engine_id,
                h.sampling_interval
            ),
            (r.len(), 2, 1, 0)
        );
        assert_eq!(
            h.unix_secs,
            1_700_000_000 + h.sysuptime / 1000,
            "pcap time is Unix time"
        );
        assert!(r.iter().all(|r| r.nexthop == 0
            && r.src_as == 0
            && r.dst_as == 0
            && r.src_mask == 0
            && r.dst_mask == 0));
    }
    // flow_sequence: the number of the datagram's last record, counted from 0.
    let seqs: Vec<u32> = d.iter().map(|x| x.1.flow_sequence).collect();
    assert_eq!(seqs, vec![0, 6, 7, 8, 9]);
    let recs: Vec<Vec<Rec>> = d.iter().map(|x| x.2.iter().map(rec).collect()).collect();
    // The ARP request (frame 0) is not IPv4: no record. The flood, at the first run after h2
    // was learned (revalidation took its megaflow).
    assert_eq!(
        recs[0],
        vec![(h1, h2, 1, 65535, 1, 98, 0, 8 << 8, 0, 1, 0, (1, 1))]
    );
    assert_eq!(d[0].1.sysuptime, 1000);
    // Idle for 10 s from 18 ms: evicted at the frame of 10.018 s, sent at the 11 s run.
    assert_eq!(d[1].1.sysuptime, 11_000);
    assert_eq!(
        recs[1],
        vec![
            (h2, h1, 2, 1, 3, 294, 0, 0, 0, 1, 0, (2, 6)),
            (h1, h2, 1, 2, 2, 196, 0, 8 << 8, 0, 1, 0, (3, 5)),
            // syn|ack|psh|fin, 5 segments h1→h2 and 3 back.
            (h1, h2, 1, 2, 5, 288, 1234, 80, 0x1b, 6, 0, (7, 18)),
            (h2, h1, 2, 1, 3, 181, 80, 1234, 0x1b, 6, 0, (8, 13)),
            (h1, h2, 1, 2, 3, 147, 5000, 53, 0, 17, 0, (18, 18)),
            // TOS 0xb9: its own record, ECN cleared.
            (h1, h2, 1, 2, 1, 49, 5000, 53, 0, 17, 0xb8, (18, 18)),
        ]
    );
    // 25 s of one packet a second, active timeout 10 s: the packets since the last record,
    // the first time kept; the rest when the replay ends.
    let keepalive =
        |n: u32, last: u32| vec![(h3, h1, 3, 1, n, 63 * n, 2000, 22, 0x10, 6, 0, (1018, last))];
    assert_eq!(recs[2], keepalive(12, 12_018));
    assert_eq!(recs[3], keepalive(10, 22_018));
    assert_eq!(recs[4], keepalive(3, 25_018));
    assert_eq!((d[2].1.sysuptime, d[3].1.sysuptime), (13_000, 23_000));
}

#[test]
fn add_id_to_interface_and_the_special_outputs() {
    let (_out, d) = replay("netflow-add-id");
    assert_eq!(d.len(), 1);
    let (port, h, r) = &d[0];
    assert_eq!((*port, h.engine_id, h.count), (2055, 133, 3));
    let id = 5 << 9; // 133 & 0x7f = 5
    let ifaces: Vec<(u16, u16)> = r.iter().map(|r| (r.input, r.output)).collect();
    assert_eq!(
        ifaces,
        vec![(id | 1, id | 0x1fe), (id | 2, id | 1), (id | 3, id | 0x1fd)],
        "several outputs 65534, one port, drop 65533"
    );
}

/// OVS's `netflow_expire__` (ofproto/netflow.c): a flow whose bytes do not fit the record's
/// 32 bits goes out as several records, each `pkts / n_recs` packets and `bytes / n_recs`
/// bytes with `n_recs = ceil(bytes / UINT32_MAX)`, while the bytes are at most 175 × 2^32.
fn ovs_split(mut pkts: u64, mut bytes: u64) -> Vec<(u32, u32)> {
    assert!(bytes >> 32 <= 175);
    let mut out = Vec::new();
    while bytes > 0 {
        let n_recs = bytes.div_ceil(u64::from(u32::MAX));
        let (p, b) = (pkts / n_recs, bytes / n_recs);
        out.push((u32::try_from(p).unwrap(), u32::try_from(b).unwrap()));
        pkts -= p;
        bytes -= b;
    }
    out
}

#[test]
fn more_than_four_gib_through_one_megaflow_is_split_as_ovs_splits_it() {
    let start = Instant::now();
    let (out, d) = replay("netflow-64bit");
    let elapsed = start.elapsed();
    // 3 frames of 9014 bytes played 160001 times (`repeat`), every one dropped by the rule.
    let (frames, bytes) = (3 * 160_001_u64, 3 * 160_001 * 9014_u64);
    assert!(bytes > 1 << 32);
    let counters: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("counters.json")).unwrap()).unwrap();
    assert_eq!(counters["ports"][0]["stats"]["rx_packets"], frames);
    assert_eq!(counters["ports"][0]["stats"]["rx_bytes"], bytes);
    assert_eq!(counters["classify"]["megaflows-installed"], 1);
    let split = ovs_split(frames, bytes);
    assert_eq!(
        split,
        vec![(240_001, 2_163_373_521), (240_002, 2_163_373_521)]
    );
    // One datagram at the end (the default active timeout, 600 s, is not reached in 480 s).
    assert_eq!(d.len(), 1);
    let (port, h, r) = &d[0];
    assert_eq!((*port, h.count, h.flow_sequence), (2055, 2, 1));
    let flow = |(packets, octets): (u32, u32)| {
        // First: the first rx batch (0-31 ms) is polled at 31 ms; last: the last frame.
        (
            ip(10, 0, 0, 1),
            ip(10, 0, 0, 2),
            1,
            65533,
            packets,
            octets,
            5000,
            6000,
            0,
            17,
            0,
            (31, 480_002),
        )
    };
    let got: Vec<Rec> = r.iter().map(rec).collect();
    assert_eq!(got, split.into_iter().map(flow).collect::<Vec<_>>());
    let sum: (u64, u64) = r.iter().fold((0, 0), |(p, b), r| {
        (p + u64::from(r.packets), b + u64::from(r.octets))
    });
    assert_eq!(sum, (frames, bytes), "no packet or byte lost in the split");
    eprintln!("netflow-64bit: {frames} frames replayed in {elapsed:?}");
}

#[test]
fn a_tunnel_port_is_the_in_or_out_interface_of_the_bridge_it_is_on() {
    let (_out, d) = replay("netflow-tunnel");
    let (vm1, vm2) = (ip(10, 0, 0, 1), ip(10, 0, 0, 2));
    assert_eq!(d.len(), 1, "everything at the end (active timeout 60 s)");
    let (port, h, r) = &d[0];
    assert_eq!((*port, h.engine_id, h.count), (2055, 3, 6));
    let got: Vec<Rec> = r.iter().map(rec).collect();
    // vx0 is OpenFlow port 10 of br0; bytes are the inner frames' (no 50-byte header). The
    // ICMP replies and the TOS datagram come after the ARP reply that taught vm2 on vx0: with
    // NetFlow on, its megaflow matches the EtherType and so takes none of them.
    assert_eq!(
        got,
        vec![
            (vm1, vm2, 1, 10, 2, 196, 0, 8 << 8, 0, 1, 0, (3, 5)),
            (vm2, vm1, 10, 1, 2, 196, 0, 0, 0, 1, 0, (4, 6)),
            (vm1, vm2, 1, 10, 3, 153, 40003, 7000, 0, 17, 0, (9, 9)),
            (vm2, vm1, 10, 1, 1, 51, 40006, 7000, 0, 17, 0xb8, (10, 10)),
            // Flooded from p1 to p2 and vx0, and from vx0 to p1 and p2.
            (
                vm1,
                ip(10, 0, 0, 255),
                1,
                65535,
                1,
                49,
                138,
                138,
                0,
                17,
                0,
                (11, 11)
            ),
            (
                vm2,
                ip(10, 0, 0, 9),
                10,
                65535,
                1,
                49,
                5000,
                5001,
                0,
                17,
                0,
                (13, 13)
            ),
        ]
    );
}

#[test]
fn tshark_decodes_the_datagrams_as_cflow_v5() {
    if Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("skipped: no tshark (scripts/setup.sh installs it)");
        return;
    }
    let (out, d) = replay("netflow");
    let fields = Command::new("tshark")
        .arg("-r")
        .arg(out.path().join("netflow.pcap"))
        .args(["-d", "udp.port==2055,cflow", "-d", "udp.port==9995,cflow"])
        .args([
            "-T",
            "fields",
            "-E",
            "separator=;",
            "-e",
            "cflow.version",
            "-e",
            "cflow.count",
        ])
        .args([
            "-e",
            "cflow.sequence",
            "-e",
            "cflow.packets",
            "-e",
            "_ws.malformed",
        ])
        .output()
        .unwrap();
    assert!(
        fields.status.success(),
        "{}",
        String::from_utf8_lossy(&fields.stderr)
    );
    let text = String::from_utf8(fields.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), d.len());
    for (line, (_, h, r)) in lines.iter().zip(&d) {
        let f: Vec<&str> = line.split(';').collect();
        let pkts: Vec<String> = r.iter().map(|r| r.packets.to_string()).collect();
        assert_eq!(
            f,
            vec![
                "5",
                &h.count.to_string(),
                &h.flow_sequence.to_string(),
                &pkts.join(","),
                ""
            ],
            "{line}"
        );
    }
}

/// Datagrams arriving on `sock` until `until` says enough or 15 s pass.
fn collect(sock: &UdpSocket, until: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let mut recs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    while !until(&recs) && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            recs.extend(parse_datagram(&buf[..n]).unwrap().1);
        }
    }
    recs
}

/// A generator on port 2 sending `count` UDP frames of 64 bytes over 4 flows to port 1.
fn generator_bridge(d: &DaemonProc, count: u64) {
    pcap_sink_for_port_2(d);
    d.ok(&[
        "add-port",
        "b0",
        "gen0",
        "type=generator",
        "profile=size=64,flows=4,proto=udp",
        &format!("count={count}"),
        "rate=2000",
    ]);
}

#[test]
fn the_daemon_exports_what_its_megaflows_carried() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let target = collector.local_addr().unwrap().to_string();
    let d = DaemonProc::start(GEN_BRIDGE);
    let t = format!("targets={target}");
    let show = d
        .ok(&["set-netflow", "b0", &t, "active_timeout=60", "engine_id=7"])
        .json;
    assert_eq!(show[0]["netflow"]["engine_id"], 7);
    // Refused, naming the field, and nothing changes.
    for (bad, field) in [
        (
            vec!["set-netflow", "b0", &t, "active_timeout=-2"],
            "active_timeout",
        ),
        (vec!["set-netflow", "b0", "targets=nowhere"], "targets"),
        (
            vec!["set-netflow", "b0", &t, "engine_type=300"],
            "engine_type",
        ),
        (
            vec!["set-netflow", "b0", &t, "add_id_to_interface=maybe"],
            "add_id_to_interface",
        ),
        (vec!["set-netflow", "nobridge", &t], "bridge"),
    ] {
        let e = d.err(&bad);
        assert!(e.contains(field), "{bad:?}: {e}");
    }
    let s = d.ok(&["show-netflow", "b0", "--json"]).json;
    assert_eq!(
        (
            s[0]["netflow"]["active_timeout"].as_i64(),
            s[0]["netflow"]["engine_id"].as_u64()
        ),
        (Some(60), Some(7))
    );

    generator_bridge(&d, 400);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.port_stat("b0", "gen0", "rx_packets") < 400 {
        assert!(Instant::now() < deadline, "the generator did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Any rule change ends every record at once, even one none of the flows' packets can
    // match (their megaflows stay as they are): as Open vSwitch's revalidators clear each
    // flow's NetFlow entry when anything changed (measured with ovs-vswitchd 3.1).
    d.ok(&["add-flow", "b0", "priority=1,arp,actions=drop"]);
    let changed = Instant::now();
    let recs = collect(&collector, |r| {
        r.iter().map(|r| r.packets).sum::<u32>() >= 400
    });
    // At the next NetFlow run (each second), not when the megaflows idle out (10 s).
    assert!(
        changed.elapsed() < Duration::from_secs(5),
        "records came {:?} after the rule change",
        changed.elapsed()
    );
    let mut flows: Vec<(u32, u16, u16, u16, u32, u32)> = recs
        .iter()
        .map(|r| {
            (
                r.src_addr, r.src_port, r.input, r.output, r.packets, r.octets,
            )
        })
        .collect();
    flows.sort();
    // 4 flows of 100 frames of 60 bytes (64 with the FCS), from OpenFlow port 2 to port 1.
    let want: Vec<_> = (1..=4u32)
        .map(|i| {
            (
                u32::from_be_bytes([10, 0, 0, i as u8]),
                flows[0].1,
                2,
                1,
                100,
                6000,
            )
        })
        .collect();
    assert_eq!(flows, want);
    let s = d.ok(&["show-netflow", "--json"]).json;
    assert_eq!(s[0]["netflow"]["records"], 4);
    assert_eq!(s[0]["netflow"]["targets"][0]["send_failures"], 0);
    assert!(d.ok(&["show-netflow"]).text.contains("engine_id=7"));

    d.ok(&["clear-netflow", "b0"]);
    assert!(d.ok(&["show-netflow", "b0"]).text.contains("netflow off"));
    assert_eq!(
        d.ok(&["show-netflow", "--json"]).json,
        serde_json::json!([])
    );
}

#[test]
fn nfcapd_in_a_namespace_reads_exactly_the_flows_the_daemon_sent() {
    if !is_root() || Command::new("nfcapd").arg("-V").output().is_err() {
        eprintln!("skipped: needs root and nfdump (scripts/setup.sh installs it)");
        return;
    }
    let ns = TestNs::new();
    let dir = tempfile::tempdir().unwrap();
    let port = 20_000 + std::process::id() % 20_000;
    let mut nfcapd = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nfcapd", "-w"])
        .arg(dir.path())
        .args(["-p", &port.to_string(), "-b", "127.0.0.1", "-t", "3600"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let config = format!(
        "{GEN_BRIDGE}\n[bridge.netflow]\ntargets = [\"127.0.0.1:{port}\"]\nengine_id = 3\n"
    );
    let mut d = DaemonProc::start_in(Some(&ns.name), &config);
    generator_bridge(&d, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.port_stat("b0", "gen0", "rx_packets") < 200 {
        assert!(Instant::now() < deadline, "the generator did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every megaflow's actions change: they are deleted and their records sent.
    d.ok(&["add-flow", "b0", "priority=65535,actions=drop"]);
    std::thread::sleep(Duration::from_millis(2500));
    let sent = d.ok(&["show-netflow", "--json"]).json;
    assert_eq!(sent[0]["netflow"]["records"], 4, "{sent:#}");
    assert!(d.terminate());
    // SIGTERM makes nfcapd write its file out.
    let _ = Command::new("kill")
        .args(["-TERM", &nfcapd.id().to_string()])
        .status();
    let _ = nfcapd.wait();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("nfcapd."))
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let out = Command::new("nfdump")
        .arg("-r")
        .arg(&files[0])
        .args(["-q", "-o", "fmt:%sa %da %sp %dp %pr %in %out %pkt %byt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    let want: Vec<String> = (1..=4)
        .map(|i| format!("10.0.0.{i} 10.0.1.1 1024 5001 UDP 2 1 50 3000"))
        .collect();
    assert_eq!(lines, want);
}
