//! Cross-checks with Open vSwitch's `ovs-ofctl` (3.1): it must decode what we encode
//! (`ovs-ofctl ofp-print`), and we must decode what it encodes (`ovs-ofctl -O OpenFlow13
//! add-flow` / `del-flows` / `packet-out` / ... against a Unix socket this test listens on),
//! into the same `FlowMod` vecswitch's own parser makes of the same text. Skipped, with a
//! message, where `ovs-ofctl` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::Duration;

use ofwire::header::Frame;
use ofwire::msg::flow::FlowModMsg;
use ofwire::msg::symmetric::{ErrorMsg, Hello};
use ofwire::{Framer, Message};

/// `assert_eq!` that shows where two long values first differ.
fn assert_same<T: std::fmt::Debug + PartialEq>(a: &T, b: &T, what: &str) {
    if a == b {
        return;
    }
    let (x, y) = (format!("{a:?}"), format!("{b:?}"));
    let at = x.bytes().zip(y.bytes()).take_while(|(p, q)| p == q).count();
    let from = at.saturating_sub(120);
    let show = |s: &str| {
        s.get(from..(at + 80).min(s.len()))
            .unwrap_or("")
            .to_string()
    };
    panic!(
        "{what}: differ at {at}:\n  ovs: ...{}\n ours: ...{}",
        show(&x),
        show(&y)
    );
}

fn have_ovs_ofctl() -> bool {
    let ok = Command::new("ovs-ofctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: ovs-ofctl is not installed (scripts/setup.sh installs it)");
    }
    ok
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `ovs-ofctl ofp-print` of a message we encoded.
fn ofp_print(msg: &Message, version: u8) -> String {
    let b = msg
        .encode(version, 0x11)
        .unwrap_or_else(|e| unreachable!("{msg:?}: {e}"));
    let out = Command::new("ovs-ofctl")
        .args(["ofp-print", &hex(&b)])
        .output()
        .unwrap_or_else(|e| unreachable!("ovs-ofctl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let back = Message::decode_bytes(&b).map(|(_, m)| m);
    assert_eq!(back.as_ref(), Ok(msg), "our own decoder on {}", hex(&b));
    text
}

/// Runs `ovs-ofctl -O OpenFlow13 VERB unix:SOCK ARGS...`, answering as a switch, and returns
/// every message it sent after HELLO, as bytes.
fn from_ovs_ofctl(verb: &str, args: &[&str]) -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("ofwire-{}-{verb}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
    let sock = dir.join("sw.sock");
    let listener = UnixListener::bind(&sock).unwrap_or_else(|e| unreachable!("{e}"));
    let target = format!("unix:{}", sock.display());
    let mut child = Command::new("ovs-ofctl")
        .args([
            "-O",
            "OpenFlow13",
            "--no-names",
            "--timeout=5",
            verb,
            &target,
        ])
        .args(args)
        .spawn()
        .unwrap_or_else(|e| unreachable!("ovs-ofctl: {e}"));
    let (mut conn, _) = listener.accept().unwrap_or_else(|e| unreachable!("{e}"));
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| unreachable!("{e}"));
    let hello = Message::Hello(Hello::offering(1 << 4))
        .encode(4, 0)
        .unwrap_or_default();
    conn.write_all(&hello)
        .unwrap_or_else(|e| unreachable!("{e}"));
    let mut framer = Framer::default();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    'read: loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Ok(Frame::Message(h, body)) = framer.next_message() {
            let mut whole = Vec::new();
            h.encode(&mut whole);
            whole.extend_from_slice(&body);
            // What we refuse (ovs-ofctl asks for TABLE_FEATURES first) gets the ERROR the
            // decoder names, as the connection layer will send; ovs-ofctl goes on.
            let reply = match Message::decode(&h, &body) {
                Ok(Message::Hello(_)) => continue,
                Ok(Message::BarrierRequest) => Some(Message::BarrierReply),
                Ok(Message::EchoRequest(d)) => Some(Message::EchoReply(d)),
                Ok(_) => None,
                Err(e) => Some(Message::Error(ErrorMsg::refusing(&e, &whole))),
            };
            if !matches!(reply, Some(Message::Error(_))) {
                got.push(whole);
            }
            if let Some(r) = reply {
                let b = r.encode(4, h.xid).unwrap_or_default();
                if conn.write_all(&b).is_err() {
                    break 'read;
                }
            }
        }
    }
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    got
}

/// The FLOW_MODs ovs-ofctl sends for `verb FLOW`, as vecswitch flow mods.
fn ovs_flow_mods(verb: &str, flow: &str) -> Vec<openflow::FlowMod> {
    from_ovs_ofctl(verb, &[flow])
        .iter()
        .filter_map(|b| match Message::decode_bytes(b) {
            Ok((_, Message::FlowMod(m))) => Some(
                m.to_flow_mod()
                    .unwrap_or_else(|e| unreachable!("{flow}: {e} in {}", hex(b))),
            ),
            Ok(_) => None,
            Err(e) => unreachable!("{flow}: {e} in {}", hex(b)),
        })
        .collect()
}

#[test]
fn flow_mods_from_ovs_ofctl_equal_our_parser() {
    if !have_ovs_ofctl() {
        return;
    }
    for flow in [
        "priority=100,in_port=1,actions=output:2",
        "table=1,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=dec_ttl,output:1",
        "udp6,ipv6_dst=fe80::/64,udp_src=53,idle_timeout=10,hard_timeout=20,actions=NORMAL",
        "icmp,icmp_type=8,cookie=0x1234,actions=CONTROLLER,FLOOD",
        "icmp6,icmp_type=135,nd_target=fe80::1,actions=drop",
        "arp,arp_tpa=10.0.0.1,arp_op=1,arp_sha=00:11:22:33:44:55,actions=ALL",
        "dl_vlan=100,dl_vlan_pcp=3,actions=pop_vlan,output:3",
        "vlan_tci=0,actions=push_vlan:0x8100,set_field:10->vlan_vid,output:2",
        "dl_src=00:11:22:33:44:55/ff:ff:ff:00:00:00,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=LOCAL",
        "metadata=0x5/0xff,actions=write_metadata:0x10/0xff,goto_table:4",
        "reg3=0x7,tun_id=0x42,actions=set_field:0x5->reg2,goto_table:2",
        "ip,nw_tos=16,nw_ecn=1,nw_ttl=5,actions=mod_nw_dst:10.1.1.1,IN_PORT",
        "ip,ip_frag=first,actions=drop",
        "tcp,tcp_flags=+syn-ack,actions=set_field:8080->tcp_dst,output:1",
        "ipv6,ipv6_label=0x12345,actions=drop",
        "in_port=LOCAL,actions=output:1",
    ] {
        let ours = openflow::parse_flow_mod(&format!("add {flow}"))
            .unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        let theirs = ovs_flow_mods("add-flow", flow);
        assert_same(&theirs, &vec![ours.clone()], flow);
        // And back: ovs-ofctl prints our encoding of it as the same flow.
        let msg = FlowModMsg::from_flow_mod(&ours).unwrap_or_else(|e| unreachable!("{e}"));
        let text = ofp_print(&Message::FlowMod(msg), 4);
        let ovs_text = Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "parse-flow", flow])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let line = |s: &str| {
            s.lines()
                .find(|l| l.starts_with("OFPT_FLOW_MOD"))
                .map(|l| l.split_once("): ").map_or("", |x| x.1).to_string())
        };
        // OVS's own OpenFlow 1.3 parser wants the present bit in set_field's vlan_vid
        // (4096 + id); what it prints of our bytes is what it would have sent.
        let want = if flow.contains("set_field:10->vlan_vid") {
            Some("ADD vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4106->vlan_vid,output:2".to_string())
        } else {
            line(&ovs_text)
        };
        assert_eq!(line(&text), want, "{flow}\n{text}");
    }
}

#[test]
fn del_and_mod_flows_filters_from_ovs_ofctl() {
    if !have_ovs_ofctl() {
        return;
    }
    for (verb, flow, text) in [
        ("del-flows", "tcp,tp_dst=80", "delete tcp,tp_dst=80"),
        (
            "del-flows",
            "table=3,cookie=0x10/0xf0",
            "delete table=3,cookie=0x10/0xf0",
        ),
        // OpenFlow 1.3 has no "every table" for modify: ovs-ofctl sends table 0.
        (
            "mod-flows",
            "ip,actions=output:4",
            "modify table=0,ip,actions=output:4",
        ),
        (
            "mod-flows",
            "--strict priority=5,ip,actions=drop",
            "modify_strict table=0,priority=5,ip,actions=drop",
        ),
    ] {
        let ours = openflow::parse_flow_mod(text).unwrap_or_else(|e| unreachable!("{text}: {e}"));
        let (v, f) = match flow.strip_prefix("--strict ") {
            Some(f) => (format!("--strict {verb}"), f),
            None => (verb.to_string(), flow),
        };
        let theirs = if let Some(v) = v.strip_prefix("--strict ") {
            from_ovs_ofctl_strict(v, f)
        } else {
            ovs_flow_mods(&v, f)
        };
        assert_same(&theirs, &vec![ours], flow);
    }
}

fn from_ovs_ofctl_strict(verb: &str, flow: &str) -> Vec<openflow::FlowMod> {
    from_ovs_ofctl(verb, &["--strict", flow])
        .iter()
        .filter_map(|b| match Message::decode_bytes(b) {
            Ok((_, Message::FlowMod(m))) => m.to_flow_mod().ok(),
            _ => None,
        })
        .collect()
}
