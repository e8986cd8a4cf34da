#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input is refused whole, with the line, the field and the reason, and nothing is written;
//! and how replay reads its inputs (pcapng, a file's order, `repeat`).

use std::path::Path;

use tools::replay::replay;
use tools::scenario::Scenario;

fn acl_copy_with_rules(rules: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps/acl");
    let dir = tempfile::tempdir().unwrap();
    for f in ["scenario.toml", "p1-in.pcap", "p2-in.pcap", "p3-in.pcap"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("rules.txt"), rules).unwrap();
    dir
}

#[test]
fn a_bad_rule_refuses_the_whole_scenario() {
    let cases = [
        (
            "priority=10,actions=drop\npriority=100,tcp,nw_src=10.0.0.300,actions=output:2\n",
            "line 2: nw_src:",
        ),
        (
            "# comment\n\npriority=100,tp_dst=80,actions=output:2\n",
            "line 3: tp_dst: requires",
        ),
        ("priority=100,ip,actions=set_field:1->tcp_dst\n", "line 1: "),
        ("priority=70000,actions=drop\n", "line 1: priority:"),
    ];
    for (rules, want) in cases {
        let dir = acl_copy_with_rules(rules);
        let scenario = Scenario::load(dir.path()).unwrap();
        let out = dir.path().join("out");
        let err = format!("{:#}", replay(&scenario, &out).unwrap_err());
        assert!(err.contains(want), "{rules:?}: {err}");
        let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(written, 0, "{rules:?}: nothing may be written");
    }
}

#[test]
fn a_truncated_pcap_is_refused_with_its_name() {
    let dir = acl_copy_with_rules("priority=0,actions=normal\n");
    let pcap = dir.path().join("p2-in.pcap");
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() - 3]).unwrap();
    let scenario = Scenario::load(dir.path()).unwrap();
    let err = format!(
        "{:#}",
        replay(&scenario, &dir.path().join("out")).unwrap_err()
    );
    assert!(err.contains("p2-in.pcap: record "), "{err}");
    assert!(err.contains(": truncated: "), "{err}");
}

/// The acl scenario with its inputs rewritten as pcapng by Wireshark's `editcap` forwards and
/// drops exactly as with the pcap files; with one file's frames in reverse order (their
/// timestamps going backwards) it keeps that file's order.
#[test]
fn pcapng_inputs_replay_like_pcap_and_a_file_keeps_its_order() {
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps/acl/rules.txt"),
    )
    .unwrap();
    let run = |dir: &Path| {
        let out = dir.join("out");
        let report = replay(&Scenario::load(dir).unwrap(), &out).unwrap();
        let outputs: Vec<Vec<ports::pcap::capture::Frame>> = ["p1", "p2", "p3"]
            .iter()
            .map(|p| ports::pcap::capture::read_capture(&out.join(format!("{p}.pcap"))).unwrap())
            .collect();
        (report.drops, outputs)
    };
    let plain = acl_copy_with_rules(&rules);
    let (drops, outputs) = run(plain.path());
    assert!(outputs.iter().any(|o| !o.is_empty()));

    let ng = acl_copy_with_rules(&rules);
    for f in ["p1-in.pcap", "p2-in.pcap", "p3-in.pcap"] {
        let path = ng.path().join(f);
        let tmp = ng.path().join("tmp.pcapng");
        let status = std::process::Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&path)
            .arg(&tmp)
            .status()
            .expect("editcap (installed with tshark) runs");
        assert!(status.success());
        std::fs::rename(&tmp, &path).unwrap();
    }
    assert_eq!(run(ng.path()), (drops, outputs));

    // p2's frames reversed: their output keeps the reversed order.
    let reversed = acl_copy_with_rules(&rules);
    let p2 = reversed.path().join("p2-in.pcap");
    let frames = ports::pcap::capture::read_capture(&p2).unwrap();
    assert!(frames.len() > 1);
    let mut w = ports::pcap::file::PcapOut::create(&p2).unwrap();
    for f in frames.iter().rev() {
        w.write(f.ts_ns, &f.data).unwrap();
    }
    drop(w);
    let sent: Vec<Vec<u8>> = frames.iter().rev().map(|f| f.data.clone()).collect();
    let (_, outputs) = run(reversed.path());
    // On each output port, the frames p2 sent come out in the order of p2's file.
    let mut longest = 0;
    for o in &outputs {
        let from_p2: Vec<usize> = o
            .iter()
            .filter_map(|f| sent.iter().position(|s| *s == f.data))
            .collect();
        assert!(from_p2.windows(2).all(|w| w[0] <= w[1]), "{from_p2:?}");
        longest = longest.max(from_p2.len());
    }
    assert!(longest >= 2, "no port shows an order");
}

/// A tunnel scenario with a bad tunnel option, or a tunnel port without an underlay, is
/// refused with the file, the line and the field.
#[test]
fn a_bad_tunnel_scenario_is_refused_naming_the_field() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps/vxlan");
    let good = std::fs::read_to_string(src.join("scenario.toml")).unwrap();
    let cases = [
        (
            good.replace("key = 5000", "key = 16777216"),
            "line 16: port[1].key: ",
        ),
        (
            good.replace("remote_ip = \"172.31.1.2\"", "remote_ip = \"224.0.0.1\""),
            "line 15: port[1].remote_ip: ",
        ),
        (
            good.replace("mac = \"02:00:00:00:01:01\"", "mac = \"01:00:00:00:01:01\""),
            "line 21: underlay.mac: ",
        ),
        (
            good.replace("name = \"eth0\"", "name = \"p1\""),
            "port[0].name: \"p1\" is used by another port",
        ),
        (
            good[..good.find("[underlay]").unwrap()].to_string(),
            "line 14: port[1].type: a tunnel port needs an [underlay]",
        ),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        for f in ["p1-in.pcap", "eth0-in.pcap"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        std::fs::write(dir.path().join("scenario.toml"), &text).unwrap();
        let err = Scenario::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("scenario.toml"), "{err}");
        assert!(err.contains(want), "want {want:?}, got {err}");
    }
}

/// A port's input with `repeat = 3`: its two frames (4 ms apart) are played three times,
/// each repetition one gap after the one before ended; an input of one frame has no gap to
/// pace repetitions by and is refused with the port's name.
#[test]
fn a_repeated_input_plays_again_at_its_own_pace() {
    let dir = tempfile::tempdir().unwrap();
    let frame = |n: u8| {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
        f.extend([n; 46]);
        f
    };
    let mut w = ports::pcap::file::PcapOut::create(&dir.path().join("p1-in.pcap")).unwrap();
    w.write(1_000_000_000, &frame(1)).unwrap();
    w.write(1_004_000_000, &frame(2)).unwrap();
    drop(w);
    let toml = "[[port]]\nname='p1'\nofport=1\ninput='p1-in.pcap'\nrepeat=3\n\
                [[port]]\nname='p2'\nofport=2\n";
    std::fs::write(dir.path().join("scenario.toml"), toml).unwrap();
    let out = dir.path().join("out");
    replay(&Scenario::load(dir.path()).unwrap(), &out).unwrap();
    let sent = ports::pcap::capture::read_capture(&out.join("p2.pcap")).unwrap();
    let got: Vec<(u64, u8)> = sent
        .iter()
        .map(|f| (f.ts_ns / 1_000_000, f.data[14]))
        .collect();
    assert_eq!(
        got,
        vec![
            (1000, 1),
            (1004, 2),
            (1008, 1),
            (1012, 2),
            (1016, 1),
            (1020, 2)
        ]
    );

    let mut w = ports::pcap::file::PcapOut::create(&dir.path().join("p1-in.pcap")).unwrap();
    w.write(1_000_000_000, &frame(1)).unwrap();
    drop(w);
    let scenario = Scenario::load(dir.path()).unwrap();
    let err = format!(
        "{:#}",
        replay(&scenario, &dir.path().join("out2")).unwrap_err()
    );
    assert!(
        err.contains("port p1: repeat needs an input of at least two frames"),
        "{err}"
    );
}
