//! `dump-flows` as ovs-ofctl does it: the rules a filter selects (see [`RuleSet::filter`]),
//! sorted by `--sort`/`--rsort` criteria, printed with or without statistics and port names,
//! or as JSON objects.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::error::RuleError;
use crate::portnames::PortNames;
use crate::print::{format_flow, DumpAges, DumpStats};
use crate::rule::{Field, Rule};

const NS: u64 = 1_000_000_000;

/// What a sort criterion compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Priority,
    Field(Field),
}

/// One `--sort[=FIELD]` (ascending) or `--rsort[=FIELD]` (descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortCriterion {
    pub key: SortKey,
    pub descending: bool,
}

impl SortCriterion {
    /// The criterion of `--sort` (`descending` false) or `--rsort`, with its optional field
    /// name (`priority` or none: the priority).
    pub fn parse(field: Option<&str>, descending: bool) -> Result<SortCriterion, RuleError> {
        let key = match field {
            None => SortKey::Priority,
            Some(f) if f.eq_ignore_ascii_case("priority") => SortKey::Priority,
            Some(f) => SortKey::Field(Field::by_match_name(f).ok_or_else(|| {
                RuleError::new(
                    if descending { "--rsort" } else { "--sort" },
                    format!("{f}: unknown field name"),
                )
            })?),
        };
        Ok(SortCriterion { key, descending })
    }
}

/// How `dump-flows` prints.
#[derive(Clone, Debug, Default)]
pub struct DumpOptions<'a> {
    /// `--no-stats` clears it.
    pub no_stats: bool,
    /// `--names`: ports by name.
    pub names: Option<&'a PortNames>,
    /// In the order given; empty keeps the dump order (table, priority, age).
    pub sort: Vec<SortCriterion>,
}

/// Sorts as ovs-ofctl's `compare_flows`: each criterion in turn; a rule that does not match
/// on a criterion's field (or lacks its prerequisites) goes after those that do, in either
/// direction, and among themselves by the bits the field reads; then priority, highest
/// first; ties keep their order.
pub fn sort_rules(rules: &mut [Arc<Rule>], criteria: &[SortCriterion]) {
    if criteria.is_empty() {
        return;
    }
    let final_pass = SortCriterion {
        key: SortKey::Priority,
        descending: true,
    };
    rules.sort_by(|a, b| {
        for c in criteria.iter().chain(std::iter::once(&final_pass)) {
            let ord = match c.key {
                SortKey::Priority => a.spec.priority.cmp(&b.spec.priority),
                SortKey::Field(f) => {
                    let has = |r: &Rule| {
                        let m = &r.spec.matches;
                        m.mask.get(f) != 0 && m.holds(f.def().prereq)
                    };
                    match (has(a), has(b)) {
                        (true, false) => return Ordering::Less,
                        (false, true) => return Ordering::Greater,
                        // As OVS, the values count even where neither has the field: a
                        // `udp,tp_dst=53` rule has 53 on the bits `tcp_dst` reads.
                        _ => {
                            let value = |r: &Rule| r.spec.matches.value.get(f);
                            value(a).cmp(&value(b))
                        }
                    }
                }
            };
            let ord = if c.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
}

/// A rule's counters and ages at `now_ns`.
fn stats(r: &Rule, now_ns: u64) -> (DumpStats, DumpAges) {
    (
        DumpStats {
            duration_ns: now_ns.saturating_sub(r.created_ns),
            n_packets: r.stats.packets(),
            n_bytes: r.stats.bytes(),
        },
        DumpAges {
            idle_age: now_ns.saturating_sub(r.idle_since()) / NS,
            hard_age: now_ns.saturating_sub(r.modified_ns) / NS,
        },
    )
}

/// A rule's dump-flows line (with its leading space, as ovs-ofctl prints it).
pub fn dump_line(r: &Rule, now_ns: u64, opts: &DumpOptions) -> String {
    let st = (!opts.no_stats).then(|| {
        let (s, a) = stats(r, now_ns);
        (s, Some(a))
    });
    format!(" {}", format_flow(&r.spec, st, opts.names))
}

/// A rule as a JSON object: `table`, `priority`, `cookie` (hex text: 64 bits do not fit a
/// JSON number everywhere), the timeouts when set, the counters (`duration` in seconds,
/// `packets`, `bytes`, `idle_age`, `hard_age`) unless `--no-stats`, `match` (each field as
/// printed, a shorthand such as `tcp` as `true`), `actions` (each as printed) and `flow`
/// (the dump-flows line).
pub fn dump_json(r: &Rule, now_ns: u64, opts: &DumpOptions) -> Value {
    let spec = &r.spec;
    let mut o = Map::new();
    o.insert("table".into(), json!(r.table()));
    o.insert("priority".into(), json!(spec.priority));
    o.insert("cookie".into(), json!(format!("{:#x}", spec.cookie)));
    if spec.idle_timeout != 0 {
        o.insert("idle_timeout".into(), json!(spec.idle_timeout));
    }
    if spec.hard_timeout != 0 {
        o.insert("hard_timeout".into(), json!(spec.hard_timeout));
    }
    if !opts.no_stats {
        let (s, a) = stats(r, now_ns);
        o.insert(
            "duration".into(),
            json!((s.duration_ns / 1_000_000) as f64 / 1000.0),
        );
        o.insert("packets".into(), json!(s.n_packets));
        o.insert("bytes".into(), json!(s.n_bytes));
        o.insert("idle_age".into(), json!(a.idle_age));
        o.insert("hard_age".into(), json!(a.hard_age));
    }
    let parts = match opts.names {
        Some(n) => n.match_parts(&spec.matches),
        None => spec.matches.to_parts(),
    };
    let mut m = Map::new();
    for p in parts {
        match p.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), json!(v)),
            None => m.insert(p, json!(true)),
        };
    }
    o.insert("match".into(), Value::Object(m));
    let actions: Vec<String> = spec
        .actions
        .iter()
        .map(|a| match opts.names {
            Some(n) => n.action(a),
            None => a.to_string(),
        })
        .collect();
    o.insert("actions".into(), json!(actions));
    o.insert(
        "flow".into(),
        json!(dump_line(r, now_ns, opts).trim_start()),
    );
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_del_flow, parse_flow_mod};
    use crate::ruleset::FlowTables;

    const S: u64 = NS;

    /// The rules of the OVS comparison in the README's dump-flows section.
    const RULES: &str = "\
table=0,priority=100,in_port=1,actions=output:2
table=0,priority=200,in_port=2,ip,nw_dst=10.0.0.0/24,actions=output:1,output:3
table=0,cookie=0x1234,priority=50,tcp,tp_dst=80,actions=NORMAL
table=0,cookie=0x12345,priority=50,udp,actions=resubmit(,4)
table=4,priority=10,in_port=2,actions=drop
table=4,cookie=0x1234,ip,actions=output:3,LOCAL
table=4,priority=10,idle_timeout=60,actions=CONTROLLER
table=1,priority=8,in_port=LOCAL,actions=resubmit(4,1)
table=0,priority=0,actions=drop";

    fn tables() -> FlowTables {
        let t = FlowTables::new();
        t.add_flows_text(RULES, S).unwrap();
        t
    }

    fn filtered(t: &FlowTables, filter: &str) -> Vec<String> {
        let spec = parse_del_flow(filter, false).unwrap().spec;
        let opts = DumpOptions {
            no_stats: true,
            ..DumpOptions::default()
        };
        t.load()
            .filter(&spec, false)
            .iter()
            .map(|r| dump_line(r, 2 * S, &opts))
            .collect()
    }

    #[test]
    fn filters_select_as_ovs_ofctl_does() {
        let t = tables();
        // What ovs-ofctl 3.1 printed for the same rules and filters.
        assert_eq!(
            filtered(&t, "table=4"),
            [
                " cookie=0x1234, table=4, ip actions=output:3,LOCAL",
                " table=4, priority=10,in_port=2 actions=drop",
                " table=4, idle_timeout=60, priority=10 actions=CONTROLLER:65535",
            ]
        );
        assert_eq!(
            filtered(&t, "in_port=2"),
            [
                " priority=200,ip,in_port=2,nw_dst=10.0.0.0/24 actions=output:1,output:3",
                " table=4, priority=10,in_port=2 actions=drop",
            ]
        );
        assert_eq!(
            filtered(&t, "cookie=0x1234/-1"),
            [
                " cookie=0x1234, priority=50,tcp,tp_dst=80 actions=NORMAL",
                " cookie=0x1234, table=4, ip actions=output:3,LOCAL",
            ]
        );
        assert_eq!(filtered(&t, "cookie=0x1234/0xffff").len(), 2);
        assert_eq!(
            filtered(&t, "out_port=3"),
            [
                " priority=200,ip,in_port=2,nw_dst=10.0.0.0/24 actions=output:1,output:3",
                " cookie=0x1234, table=4, ip actions=output:3,LOCAL",
            ]
        );
        assert_eq!(filtered(&t, "out_port=LOCAL").len(), 1);
        assert_eq!(
            filtered(&t, "out_port=NORMAL"),
            [" cookie=0x1234, priority=50,tcp,tp_dst=80 actions=NORMAL"]
        );
        assert_eq!(filtered(&t, "out_port=CONTROLLER").len(), 1);
        assert_eq!(filtered(&t, "ip").len(), 4);
        assert_eq!(filtered(&t, "tcp").len(), 1);
        assert_eq!(filtered(&t, "ip,nw_dst=10.0.0.0/16").len(), 1);
        assert_eq!(filtered(&t, "ip,nw_dst=10.0.0.5").len(), 0);
        assert_eq!(filtered(&t, "table=4,out_port=3").len(), 1);
        assert_eq!(filtered(&t, "").len(), 9);
    }

    #[test]
    fn out_group_selects_the_rules_that_use_the_group_inside_write_actions_too() {
        let t = FlowTables::new();
        t.apply_groups_text(
            "group_id=1,type=all,bucket=output:1\ngroup_id=2,type=indirect,bucket=output:2\n",
            0,
        )
        .unwrap();
        t.add_flows_text(
            "priority=10,in_port=1,actions=group:1
priority=11,in_port=2,actions=output:1,group:2
priority=12,ip,actions=write_actions(group:1)
priority=13,udp,actions=group:2,group:1
priority=14,tcp,actions=output:1
table=1,priority=5,actions=write_actions(output:2,group:2)",
            S,
        )
        .unwrap();
        // What ovs-ofctl 3.1 -O OpenFlow13 printed for the same groups, rules and filters.
        assert_eq!(
            filtered(&t, "out_group=1"),
            [
                " priority=13,udp actions=group:2,group:1",
                " priority=12,ip actions=write_actions(group:1)",
                " priority=10,in_port=1 actions=group:1",
            ]
        );
        assert_eq!(
            filtered(&t, "out_group=2"),
            [
                " priority=13,udp actions=group:2,group:1",
                " priority=11,in_port=2 actions=output:1,group:2",
                " table=1, priority=5 actions=write_actions(output:2,group:2)",
            ]
        );
        assert!(filtered(&t, "out_group=3").is_empty());
        assert!(filtered(&t, "out_group=all").is_empty());
        assert_eq!(filtered(&t, "out_group=ANY").len(), 6);
        // With out_port a rule needs both.
        assert!(filtered(&t, "out_group=1,out_port=1").is_empty());
        assert_eq!(
            filtered(&t, "out_group=2,out_port=1"),
            [" priority=11,in_port=2 actions=output:1,group:2"]
        );
        assert_eq!(
            filtered(&t, "out_group=2,out_port=2"),
            [" table=1, priority=5 actions=write_actions(output:2,group:2)"]
        );
        assert_eq!(filtered(&t, "out_group=2,table=1").len(), 1);

        let apply = |text: &str| {
            t.apply(&[parse_flow_mod(text).unwrap()], 2 * S).unwrap();
        };
        // A strict delete needs the group too.
        apply("delete_strict priority=10,in_port=1,out_group=2");
        assert_eq!(filtered(&t, "").len(), 6);
        apply("delete out_group=2");
        assert_eq!(
            filtered(&t, ""),
            [
                " priority=14,tcp actions=output:1",
                " priority=12,ip actions=write_actions(group:1)",
                " priority=10,in_port=1 actions=group:1",
            ]
        );
        // A modify filtered on the group changes only its rules (the local mod-flows; over
        // OpenFlow 1.3 a modify carries no out_group).
        apply("modify out_group=1,actions=output:2");
        assert_eq!(
            filtered(&t, ""),
            [
                " priority=14,tcp actions=output:1",
                " priority=12,ip actions=output:2",
                " priority=10,in_port=1 actions=output:2",
            ]
        );
        apply("delete_strict priority=14,tcp,out_group=ANY");
        assert_eq!(filtered(&t, "").len(), 2);
    }

    #[test]
    fn strict_and_loose_deletes_and_modifies() {
        let t = tables();
        let apply = |text: &str| {
            t.apply(&[parse_flow_mod(text).unwrap()], 3 * S).unwrap();
        };
        // Strict: the default priority 32768 is not 10.
        apply("delete_strict in_port=2");
        assert_eq!(filtered(&t, "in_port=2").len(), 2);
        apply("delete_strict priority=10,in_port=2");
        assert_eq!(filtered(&t, "in_port=2").len(), 1);
        apply("modify in_port=2,actions=output:4");
        assert_eq!(
            filtered(&t, "out_port=4"),
            [" priority=200,ip,in_port=2,nw_dst=10.0.0.0/24 actions=output:4"]
        );
        // Without a cookie mask a modify sets the cookies (to 0 here) and adds its rule
        // where it selects none, as OVS does.
        apply("modify_strict priority=9,in_port=7,actions=output:5");
        assert_eq!(
            filtered(&t, "in_port=7"),
            [" priority=9,in_port=7 actions=output:5"]
        );
        apply("modify cookie=0x77,in_port=7,actions=output:6");
        assert_eq!(
            filtered(&t, "in_port=7"),
            [" cookie=0x77, priority=9,in_port=7 actions=output:6"]
        );
        apply("modify cookie=0x5/0xff,actions=drop");
        assert_eq!(filtered(&t, "in_port=7").len(), 1);
        apply("delete out_port=4");
        assert_eq!(filtered(&t, "in_port=2").len(), 0);
        apply("modify cookie=0x1234/-1,actions=drop");
        assert_eq!(filtered(&t, "out_port=NORMAL").len(), 0);
        // hard_age counts from the modification; idle_age, as the duration, from the add
        // (Open vSwitch 3.1 after mod-flows: `duration=3.162s, ..., idle_age=3, hard_age=0`).
        let r = t
            .load()
            .filter(&parse_del_flow("tcp", false).unwrap().spec, false)[0]
            .clone();
        let line = dump_line(&r, 5 * S, &DumpOptions::default());
        assert!(
            line.starts_with(" cookie=0x1234, duration=4.000s, table=0, n_packets=0, n_bytes=0, idle_age=4, hard_age=2, priority=50,tcp,tp_dst=80 actions=drop"),
            "{line}"
        );
    }

    #[test]
    fn sorting_follows_ovs_ofctl() {
        let t = tables();
        let rules = t.load().rules();
        let order = |c: &[SortCriterion]| -> Vec<u16> {
            let mut r = rules.clone();
            sort_rules(&mut r, c);
            r.iter().map(|r| r.spec.priority).collect()
        };
        let sort = |f: Option<&str>, d| SortCriterion::parse(f, d).unwrap();
        assert_eq!(
            order(&[sort(None, false)]),
            [0, 8, 10, 10, 50, 50, 100, 200, 32768]
        );
        assert_eq!(
            order(&[sort(Some("priority"), true)]),
            [32768, 200, 100, 50, 50, 10, 10, 8, 0]
        );
        // in_port ascending, LOCAL last of those with one, the others after by priority.
        assert_eq!(
            order(&[sort(Some("in_port"), false)]),
            [100, 200, 10, 8, 32768, 50, 50, 10, 0]
        );
        assert_eq!(
            order(&[sort(Some("in_port"), true)]),
            [8, 200, 10, 100, 32768, 50, 50, 10, 0]
        );
        assert_eq!(
            order(&[sort(Some("tcp_dst"), false)]),
            [50, 32768, 200, 100, 50, 10, 10, 8, 0]
        );
        let e = SortCriterion::parse(Some("cookie"), false).unwrap_err();
        assert_eq!(e.to_string(), "--sort: cookie: unknown field name");
    }

    #[test]
    fn names_and_json() {
        let t = FlowTables::new();
        t.add_flows_text(
            "priority=7,in_port=3,actions=output:1,output:3,resubmit(4,1),resubmit:2,NORMAL",
            0,
        )
        .unwrap();
        let names = PortNames::new([(1, "p1"), (2, "veth0"), (3, "my port"), (4, "x.y")]);
        let r = t.load().rules()[0].clone();
        let opts = DumpOptions {
            no_stats: true,
            names: Some(&names),
            sort: Vec::new(),
        };
        assert_eq!(
            dump_line(&r, S, &opts),
            " priority=7,in_port=\"my port\" actions=output:p1,output:\"my port\",resubmit(\"x.y\",1),resubmit:veth0,NORMAL"
        );
        let j = dump_json(&r, S, &opts);
        assert_eq!(j["match"], json!({ "in_port": "\"my port\"" }));
        assert_eq!(j["actions"][0], "output:p1");
        assert_eq!(j["priority"], 7);
        assert!(j.get("packets").is_none(), "{j}");
        let j = dump_json(&r, 3 * S, &DumpOptions::default());
        assert_eq!(j["match"], json!({ "in_port": "3" }));
        assert_eq!(
            (&j["packets"], &j["bytes"], &j["idle_age"], &j["duration"]),
            (&json!(0), &json!(0), &json!(3), &json!(3.0))
        );
        assert_eq!(j["cookie"], "0x0");
        let ip = FlowTables::new();
        ip.add_flows_text("tcp,nw_src=10.0.0.0/8,actions=drop", 0)
            .unwrap();
        let j = dump_json(&ip.load().rules()[0], 0, &DumpOptions::default());
        assert_eq!(j["match"], json!({ "tcp": true, "nw_src": "10.0.0.0/8" }));
        assert_eq!(j["actions"], json!([]));
    }
}
