//! The group verbs, as ovs-ofctl's: `add-group`, `add-groups` (a file, all or none),
//! `mod-group`, `del-groups`, `dump-groups`, `dump-group-stats`. A change waits until every
//! PMD has seen it, so no packet takes a group's old buckets after the answer.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use datapath::daemon::Daemon;
use openflow::group::{parse_group_mod, GroupModCommand, OFPG_ALL};
use openflow::GroupReport;

use super::{arg, Reply};

/// Every group verb.
pub(super) fn groups(
    d: &mut Daemon,
    verb: &str,
    args: &[String],
    data: Option<&str>,
) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let text = args.get(1..).map(|a| a.join(" ")).unwrap_or_default();
    let b = d.bridge(bridge)?;
    let of = b.of.clone();
    let now = d.now_ns();
    let report = match verb {
        "add-group" | "mod-group" | "del-groups" => {
            let command = match verb {
                "add-group" => GroupModCommand::Add,
                "mod-group" => GroupModCommand::Modify,
                _ => GroupModCommand::Delete,
            };
            let m = parse_group_mod(&text, command).map_err(|e| anyhow!("{e}"))?;
            of.apply_groups(&[m], now)
                .map_err(|e| anyhow!("{}", e.error))?
        }
        "add-groups" => {
            if !text.is_empty() {
                bail!("add-groups: unexpected {text:?} (usage: add-groups BRIDGE FILE)");
            }
            let text = data.ok_or_else(|| anyhow!("file: the request carries no file contents"))?;
            of.rules()
                .apply_groups_text(text, now)
                .map_err(|e| anyhow!("file: {e}"))?
        }
        "dump-groups" | "dump-group-stats" => return dump(d, verb, bridge, &text),
        _ => bail!("verb: unknown verb {verb:?}"),
    };
    d.barrier()?;
    Ok(done(&report))
}

fn done(r: &GroupReport) -> Reply {
    Reply::new(
        format!(
            "{} groups added, {} modified, {} removed ({} rules removed with them)",
            r.added, r.modified, r.removed, r.rules_removed
        ),
        json!({
            "added": r.added,
            "modified": r.modified,
            "removed": r.removed,
            "rules_removed": r.rules_removed,
            "generation": r.generation,
        }),
    )
}

/// `dump-groups BRIDGE [GROUP]` and `dump-group-stats BRIDGE [GROUP]` (GROUP: `N`,
/// `group_id=N`, or `all`).
fn dump(d: &Daemon, verb: &str, bridge: &str, text: &str) -> Result<Reply> {
    let only = match text.trim().trim_start_matches("group_id=") {
        "" | "all" => None,
        t => {
            let g: u32 = t
                .parse()
                .map_err(|_| anyhow!("group_id: {t:?} is not a group id (a number or all)"))?;
            (g != OFPG_ALL).then_some(g)
        }
    };
    let rules = d.bridge(bridge)?.of.rules().snapshot();
    let now = d.now_ns();
    let groups: Vec<_> = rules
        .groups()
        .filter(|g| only.is_none_or(|id| g.spec.group_id == id))
        .collect();
    if verb == "dump-groups" {
        let json: Vec<Value> = groups
            .iter()
            .map(|g| {
                let s = &g.spec;
                json!({
                    "group_id": s.group_id,
                    "type": s.kind.name(),
                    "buckets": s.buckets.iter().map(|b| json!({
                        "weight": b.weight,
                        "watch_port": b.watch_port,
                        "watch_group": b.watch_group,
                        "actions": openflow::format_actions(&b.actions),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(Reply::new(rules.dump_groups(only).join("\n"), json!(json)));
    }
    let json: Vec<Value> = groups
        .iter()
        .map(|g| {
            let id = g.spec.group_id;
            json!({
                "group_id": id,
                "type": g.spec.kind.name(),
                "duration_ns": now.saturating_sub(g.created_ns),
                "ref_count": rules.group_ref_count(id),
                "packet_count": g.stats.packets(),
                "byte_count": g.stats.bytes(),
                "buckets": g.stats.buckets().iter().map(|(p, b)| json!({
                    "packet_count": p,
                    "byte_count": b,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Reply::new(
        rules.dump_group_stats(only, now).join("\n"),
        json!(json),
    ))
}
