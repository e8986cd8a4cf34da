//! Targeted revalidation against the full one: after random rule changes (multi-table rules,
//! rewrites before lookups, lookups as another port, prefixes, registers, two bridges, group
//! changes), a megaflow cache revalidated only where a change may match must do for every key
//! what a fresh translation gives. A megaflow the change test missed would keep actions the
//! rules no longer give.
// Tests stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use flowcache::{MegaflowCache, NO_FLOW};
use openflow::normal::{MacTable, NormalPort, VlanMode};
use openflow::{parse_del_flow, parse_flow, parse_mod_flow, Bridge, DatapathBridge};
use openflow::{DatapathUpcall, FlowMod, FlowModCommand};
use pipeline::{FlowKey, RuleChange, Upcall};

/// xorshift64: the same rounds every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn bridge(ofports: &[u32]) -> Arc<Bridge> {
    let ports = ofports
        .iter()
        .map(|&ofport| NormalPort {
            ofport,
            vlan: VlanMode::Trunk(Vec::new()),
            flood: true,
        })
        .collect();
    Arc::new(Bridge::new(ports, MacTable::default()))
}

fn entry(name: &str, bridge: &Arc<Bridge>, ports: &[(u32, u32)]) -> DatapathBridge {
    DatapathBridge {
        name: name.to_string(),
        bridge: bridge.clone(),
        ports: ports.to_vec(),
        tunnels: Vec::new(),
        mac: None,
        mtus: Vec::new(),
    }
}

/// A random rule of bridge A (ofports 1-3): match and actions.
fn rule_a(rng: &mut Rng) -> String {
    let p = 1 + rng.below(5);
    let i = 1 + rng.below(3);
    let o = 1 + rng.below(3);
    let a = 1 + rng.below(3);
    let b = 1 + rng.below(3);
    let t = 1 + rng.below(2);
    match rng.below(12) {
        0 => format!("priority={p},in_port={i},actions=output:{o}"),
        1 => format!("priority={p},ip,nw_src=10.0.0.{a},actions=output:{o}"),
        2 => {
            format!("priority={p},ip,nw_dst=10.0.0.{a},actions=mod_nw_dst:10.0.0.{b},resubmit(,1)")
        }
        3 => format!("table=1,priority={p},ip,nw_dst=10.0.0.{a},actions=output:{o}"),
        4 => format!("priority={p},tcp,tp_dst={t},actions=resubmit({i},2)"),
        5 => format!("table=2,priority={p},in_port={i},actions=output:{o}"),
        6 => format!("priority={p},udp,tp_src={t},actions=load:{t}->reg0[],goto_table:3"),
        7 => format!("table=3,priority={p},reg0={t},actions=output:{o}"),
        8 => format!("table=1,priority={p},ip,nw_src=10.0.0.0/31,actions=output:{o}"),
        9 => format!("priority={p},tcp,actions=mod_tp_dst:{t},resubmit(,4)"),
        10 => format!("table=4,priority={p},tcp,tp_dst={t},actions=output:{o}"),
        _ => format!("table=1,priority={p},actions=output:{o}"),
    }
}

/// A random rule of bridge B (ofports 1-2): one without in_port may match bridge A's keys.
fn rule_b(rng: &mut Rng) -> String {
    let p = 1 + rng.below(5);
    let i = 1 + rng.below(2);
    let o = 1 + rng.below(2);
    let a = 1 + rng.below(3);
    match rng.below(3) {
        0 => format!("priority={p},in_port={i},actions=output:{o}"),
        1 => format!("priority={p},ip,nw_dst=10.0.0.{a},actions=output:{o}"),
        _ => format!("priority={p},ip,nw_src=10.0.0.{a},actions=group:1"),
    }
}

/// An add, modify or delete (strict or not) of `rule`.
fn flow_mod(rng: &mut Rng, rule: &str) -> FlowMod {
    let bare = rule.split(",actions=").next().unwrap_or(rule);
    let strict = rng.below(2) == 0;
    match rng.below(4) {
        0 | 1 => FlowMod {
            command: FlowModCommand::Add,
            spec: parse_flow(rule).unwrap_or_else(|e| panic!("{rule}: {e}")),
        },
        2 => parse_mod_flow(rule, strict).unwrap_or_else(|e| panic!("{rule}: {e}")),
        _ => parse_del_flow(bare, strict).unwrap_or_else(|e| panic!("{bare}: {e}")),
    }
}

/// Every key of the small domains the rules use, on datapath ports 11-13 (bridge A) and
/// 21-22 (bridge B).
fn keys() -> Vec<FlowKey> {
    let mut keys = Vec::new();
    for in_port in [11, 12, 13, 21, 22] {
        for src in 1..=3 {
            for dst in 1..=3 {
                for nw_proto in [6, 17] {
                    for (tp_src, tp_dst) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
                        keys.push(FlowKey {
                            in_port,
                            dl_src: [2, 0, 0, 0, 0, 1],
                            dl_dst: [2, 0, 0, 0, 0, 2],
                            dl_type: 0x0800,
                            nw_src: 0x0a00_0000 | src,
                            nw_dst: 0x0a00_0000 | dst,
                            nw_proto,
                            nw_ttl: 64,
                            tp_src,
                            tp_dst,
                            ..FlowKey::default()
                        });
                    }
                }
            }
        }
    }
    keys
}

#[test]
fn a_targeted_revalidation_leaves_the_cache_as_a_fresh_translation_would() {
    let (a, b) = (bridge(&[1, 2, 3]), bridge(&[1, 2]));
    b.rules()
        .apply_groups_text("group_id=1,type=all,bucket=output:1\n", 0)
        .unwrap();
    let mut up = DatapathUpcall::new();
    up.set_bridges(vec![
        entry("br-a", &a, &[(1, 11), (2, 12), (3, 13)]),
        entry("br-b", &b, &[(1, 21), (2, 22)]),
    ])
    .unwrap();
    let mut cache = MegaflowCache::new(100_000);
    let keys = keys();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut changes: Vec<RuleChange> = Vec::new();
    // The first call has nothing to compare with.
    assert!(!up.rule_changes(&mut changes));
    let (mut targeted, mut full, mut retranslated, mut live_total) = (0, 0, 0usize, 0usize);
    for round in 0..400 {
        // Traffic: every key not cached is translated and installed.
        for k in &keys {
            if cache.lookup(k).flow == NO_FLOW {
                let r = up.translate(k, 0);
                let masked = k.masked(&r.mask);
                let flow = cache
                    .insert(&masked, &r.mask, &r.actions, &r.sinks, 0)
                    .unwrap();
                cache.set_rewritten(flow, r.rewritten);
            }
        }
        // A rule change (now and then a group change: more than rules).
        if round % 37 == 36 {
            let bucket = 1 + rng.below(2);
            b.rules()
                .apply_groups_text(
                    &format!("modify group_id=1,type=all,bucket=output:{bucket}\n"),
                    0,
                )
                .map(|_| ())
                .unwrap_or_else(|e| panic!("{e:?}"));
        } else {
            let on_a = rng.below(4) != 0;
            let rule = if on_a {
                rule_a(&mut rng)
            } else {
                rule_b(&mut rng)
            };
            let fm = flow_mod(&mut rng, &rule);
            let target = if on_a { &a } else { &b };
            target
                .apply(&[fm], 0)
                .unwrap_or_else(|e| panic!("{rule}: {e}"));
        }
        changes.clear();
        live_total += cache.len();
        if up.rule_changes(&mut changes) {
            targeted += 1;
            let (n, _) = cache.revalidate_matching(&changes, |k, _| up.retranslate(k, 0, false));
            retranslated += n;
        } else {
            full += 1;
            cache.revalidate(|k, _| up.retranslate(k, 0, false));
        }
        // Every key: the megaflow it hits (if any) does what a fresh translation says. (Its
        // mask may be wider than a fresh one: a rule none of its packets match can make a
        // translation look at more bits, and the megaflow stays right without them.)
        for k in &keys {
            let flow = cache.lookup(k).flow;
            if flow == NO_FLOW {
                continue;
            }
            let fresh = up.translate(k, 0);
            assert_eq!(
                &**cache.actions(flow),
                &fresh.actions[..],
                "round {round}: key {k:?}\nrules A:\n{}\nrules B:\n{}",
                a.dump_flows(0).join("\n"),
                b.dump_flows(0).join("\n"),
            );
        }
    }
    // Group changes went the full way, and rule changes the targeted one (but for a
    // non-strict delete of more rules than a generation lists).
    assert!(full >= 400 / 37, "{full} full passes");
    assert!(targeted >= 300, "{targeted} targeted passes");
    // And the targeted passes translated a fraction of what full ones would have.
    assert!(
        retranslated * 2 < live_total,
        "{retranslated} retranslated of {live_total}"
    );
}
