//! Open vSwitch's own test suite as the reference for the rule text: every flow string of
//! `tests/ovs-ofctl.at` and `tests/ofp-actions.at`, with what ovs-ofctl 3.1 makes of it, is in
//! `ovs_ofctl_cases.txt` (made by `ovs_ofctl_cases.py`). For each case vecswitch must:
//!
//! - where ovs-ofctl accepts it: print the same match, keywords and actions (the actions when
//!   ovs-ofctl chose OpenFlow 1.0 or NXM, the encoding its dump-flows uses), or refuse it as
//!   "not supported" (a field or action vecswitch does not implement), or refuse it on purpose
//!   (listed in `DELIBERATE`, each with its reason, and in the README);
//! - where ovs-ofctl refuses it: refuse it too;
//! - never call a name ovs-ofctl knows "unknown".
//!
//! The share of cases that agree is printed (`cargo test -p openflow --test ovs_ofctl_suite
//! -- --nocapture`) and stated in the README.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use openflow::{parse_flow, parse_flows_file, print::format_actions, FlowSpec, DEFAULT_PRIORITY};

const CASES: &str = include_str!("ovs_ofctl_cases.txt");

/// Inputs ovs-ofctl accepts and vecswitch refuses on purpose (see the README's table of
/// differences): a substring of the input and the reason.
const DELIBERATE: &[(&str, &str)] = &[
    // A field whose prerequisite the match does not give: OVS drops it silently.
    ("tp_src[5]=1,actions", "prerequisite"),
    ("nw_src=1.2.3.4,actions=5", "prerequisite"),
    // Conflicting values for the same bits: OVS keeps the last.
    ("xreg1=5,xxreg0", "conflict"),
    // Reserved or out-of-range port numbers: OVS maps 0xffff to ANY and accepts 0xff00+.
    ("in_port=65280", "reserved port"),
    ("in_port=65535", "reserved port"),
    // One tun_id writer: printed as set_tunnel when the value fits 32 bits.
    ("set_tunnel64:0x9876", "set_tunnel64"),
    ("set_tunnel64:0x885f3298", "set_tunnel64"),
    // goto_table stays an instruction; OVS shows it in OpenFlow 1.0 as resubmit(,N).
    ("actions=goto_table:1", "goto_table"),
    // clear_actions is an instruction too; OVS's OpenFlow 1.0 encoding drops it (its
    // OpenFlow 1.3 text keeps it, as vecswitch does).
    ("actions=clear_actions", "clear_actions"),
    // A tun_metadata mask is printed against the field's width: ovs-ofctl parse-flow, with no
    // TLV map, takes the width from the bytes the value and mask need.
    ("tun_metadata1=0xef/0xff", "tun_metadata width"),
    // A masked set_field prints as the loads of its bits (OVS's OpenFlow 1.3 text); OVS's
    // OpenFlow 1.0 text is the unmasked mod_dl_src, which would write the whole address.
    (
        "00:00:00:00:12:34/00:00:00:00:ff:ff->eth_src",
        "masked set_field",
    ),
];

/// Cases that differ from ovs-ofctl today and are not on purpose (the README lists them):
/// counted apart so that any other difference fails the test.
const KNOWN_GAPS: &[&str] = &[];

struct Outcome {
    agree: usize,
    not_supported: usize,
    deliberate: usize,
    known_gaps: usize,
    disagree: Vec<String>,
}

/// The flow mod as ovs-ofctl's `parse-flow` prints it after `ADD ` (`ofputil_flow_mod_format`),
/// without `importance`, which OpenFlow 1.0 and NXM cannot carry.
fn ovs_flow_mod_text(spec: &FlowSpec, with_actions: bool) -> String {
    let mut s = String::new();
    if let Some(t) = spec.table.filter(|t| *t != 0) {
        s.push_str(&format!("table:{t} "));
    }
    let mut parts = spec.matches.to_parts();
    if spec.priority != DEFAULT_PRIORITY {
        parts.insert(0, format!("priority={}", spec.priority));
    }
    if !parts.is_empty() {
        s.push_str(&parts.join(","));
        s.push(' ');
    }
    if spec.cookie != 0 {
        s.push_str(&format!("cookie:{:#x} ", spec.cookie));
    }
    if spec.idle_timeout != 0 {
        s.push_str(&format!("idle:{} ", spec.idle_timeout));
    }
    if spec.hard_timeout != 0 {
        s.push_str(&format!("hard:{} ", spec.hard_timeout));
    }
    s.push_str(&openflow::print::flag_words(spec.flags));
    if with_actions {
        s.push_str("actions=");
        s.push_str(&format_actions(&spec.actions));
    }
    s
}

/// The part of OVS's text before `actions=`, and whether its actions are in the default
/// (OpenFlow 1.0 / NXM) encoding.
fn normalise_ovs(proto: &str, text: &str) -> (String, String) {
    let text = text
        .strip_prefix("table:255 ")
        .or_else(|| text.strip_prefix("table:0 "))
        .unwrap_or(text);
    let text = text.replace(" importance:", " \u{0}").to_string();
    let text: String = text
        .split(' ')
        .filter(|w| !w.starts_with('\u{0}'))
        .collect::<Vec<_>>()
        .join(" ");
    let (head, actions) = text.split_once("actions=").unwrap_or((&text, ""));
    let of10 = proto.starts_with("OpenFlow10") || proto.starts_with("NXM");
    (
        head.to_string(),
        if of10 {
            actions.to_string()
        } else {
            String::new()
        },
    )
}

fn run() -> Outcome {
    let mut o = Outcome {
        agree: 0,
        not_supported: 0,
        deliberate: 0,
        known_gaps: 0,
        disagree: Vec::new(),
    };
    for line in CASES.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        let [source, kind, input, result] = cols[..] else {
            panic!("bad line: {line}");
        };
        let ours = if kind == "file" {
            parse_flows_file(input)
                .map(|mut v| v.pop())
                .map_err(|e| e.error)
        } else {
            parse_flow(input).map(Some)
        };
        let (mut ovs_ok, rest) = result.split_once(' ').unwrap_or((result, ""));
        // ovs-ofctl parsed the flow but could not show it in the protocol it chose (it needs
        // OpenFlow 1.1+, or it does not decode again): accepted, with no text to compare.
        let unprintable =
            ovs_ok == "error" && (rest == "no usable protocol" || rest.starts_with("000000"));
        if unprintable {
            ovs_ok = "ok";
        }
        let gap = KNOWN_GAPS.iter().any(|g| input.contains(g));
        let mut note = |why: String| {
            if gap {
                o.known_gaps += 1;
            } else {
                o.disagree.push(format!("{source}: {input}\n    {why}"));
            }
        };
        match (ovs_ok, ours) {
            (_, Err(e)) if e.reason == "unknown field" || e.reason == "unknown action" => {
                // Names ovs-ofctl knows are never "unknown" (a name both refuse may be).
                if ovs_ok == "ok" {
                    note(format!("vecswitch: {e}; ovs-ofctl: {result}"));
                } else {
                    o.agree += 1;
                }
            }
            ("ok", Err(e)) if e.to_string().contains("not supported") => o.not_supported += 1,
            ("ok", Err(e)) => {
                // A field or action whose prerequisite the match does not establish: OVS
                // takes it (and drops the field, or fails on the packet); refused on purpose.
                if e.reason.contains("requires ")
                    || DELIBERATE.iter().any(|(s, _)| input.contains(s))
                {
                    o.deliberate += 1;
                } else {
                    note(format!("vecswitch refuses: {e}; ovs-ofctl: {rest}"));
                }
            }
            ("ok", Ok(None)) => o.agree += 1,
            ("ok", Ok(Some(_))) if unprintable => o.agree += 1,
            ("ok", Ok(Some(spec))) => {
                let (proto, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let (head, actions) = normalise_ovs(proto, text);
                let ours = ovs_flow_mod_text(&spec, false);
                let ours_actions = format_actions(&spec.actions);
                let deliberate = DELIBERATE.iter().any(|(s, _)| input.contains(s));
                if deliberate {
                    o.deliberate += 1;
                } else if ours != head || (!actions.is_empty() && ours_actions != actions) {
                    note(format!(
                        "vecswitch: {ours}actions={ours_actions}\n    ovs-ofctl: {text}"
                    ));
                } else {
                    o.agree += 1;
                }
            }
            (_, Err(_)) => o.agree += 1,
            (_, Ok(s)) => {
                let s = s.map(|s| s.to_string()).unwrap_or_default();
                note(format!("vecswitch accepts ({s}); ovs-ofctl: {rest}"));
            }
        }
    }
    o
}

#[test]
fn open_vswitch_test_suite_flows_parse_refuse_and_print_as_ovs_ofctl() {
    let o = run();
    let total = o.agree + o.not_supported + o.deliberate + o.known_gaps + o.disagree.len();
    println!(
        "{total} cases: {} agree ({:.0}%), {} not supported, {} differ on purpose, {} known \
         gaps, {} other differences",
        o.agree,
        100.0 * o.agree as f64 / total as f64,
        o.not_supported,
        o.deliberate,
        o.known_gaps,
        o.disagree.len()
    );
    for d in &o.disagree {
        println!("{d}");
    }
    assert!(total > 500, "the cases file lost its cases");
    assert!(o.disagree.is_empty(), "{} cases differ", o.disagree.len());
}
