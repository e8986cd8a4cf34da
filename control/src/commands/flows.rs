//! The rule verbs' operator side, as ovs-ofctl: port names in rules (resolved against the
//! bridge's ports), `dump-flows` filters (`table=`, `cookie=V/MASK`, `out_port=`,
//! `out_group=`, any match, selecting the rules at least as specific), `--no-stats`,
//! `--names`/`--no-names`, `--sort[=FIELD]`/`--rsort[=FIELD]`, and `dump-flows --json` /
//! `dump-megaflows --json` as structured objects.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Map, Value};

use datapath::daemon::{BridgeState, Daemon};
use openflow::dump::{dump_json, dump_line, sort_rules, DumpOptions, SortCriterion};
use openflow::PortNames;

use super::{arg, Reply};

/// The bridge's ports by name (LOCAL under the bridge's name, as in OVS).
pub(super) fn port_names(b: &BridgeState) -> PortNames {
    PortNames::new(b.ports.iter().map(|p| (p.ofport, p.name.as_str())))
}

/// A rule's text with its port names replaced by the bridge's numbers.
pub(super) fn resolve(d: &Daemon, bridge: &str, text: &str) -> Result<String> {
    port_names(d.bridge(bridge)?)
        .resolve(text)
        .map_err(|e| anyhow!("{e}"))
}

/// A flows or bundle file with its port names resolved line by line (an error names the
/// line, as the file's parse errors do).
pub(super) fn resolve_file(d: &Daemon, bridge: &str, text: &str) -> Result<String> {
    let names = port_names(d.bridge(bridge)?);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            out.push_str(line);
        } else {
            let r = names
                .resolve(line)
                .map_err(|e| anyhow!("file: line {}: {e}", i + 1))?;
            out.push_str(&r);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Refuses `priority=` in a non-strict filter: it selects nothing there (ovs-ofctl says
/// "unknown keyword priority").
pub(super) fn check_loose_filter(verb: &str, text: &str) -> Result<()> {
    let has_priority = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .any(|t| t.starts_with("priority=") || t == "priority");
    if has_priority {
        bail!("priority: {verb} selects by priority only with --strict");
    }
    Ok(())
}

/// The dump options of a request's flags; unknown flags are refused.
fn options<'a>(flags: &[String], names: &'a PortNames) -> Result<(DumpOptions<'a>, bool)> {
    let mut opts = DumpOptions::default();
    let mut show_names = false;
    let mut accept_names = true;
    for f in flags {
        let (name, value) = match f.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (f.as_str(), None),
        };
        match (name, value) {
            ("--sort", v) | ("--rsort", v) => opts
                .sort
                .push(SortCriterion::parse(v, name == "--rsort").map_err(|e| anyhow!("{e}"))?),
            ("--no-stats", None) => opts.no_stats = true,
            ("--stats", None) => opts.no_stats = false,
            ("--names", None) => {
                show_names = true;
                accept_names = true;
            }
            ("--no-names", None) => {
                show_names = false;
                accept_names = false;
            }
            _ => bail!("dump-flows: unknown option {f}"),
        }
    }
    if show_names {
        opts.names = Some(names);
    }
    Ok((opts, accept_names))
}

/// `dump-flows BRIDGE [FILTER] [--no-stats] [--names|--no-names] [--sort[=F]]... [--rsort[=F]]...`.
pub(super) fn dump_flows(d: &Daemon, args: &[String], flags: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let b = d.bridge(bridge)?;
    let names = port_names(b);
    let (opts, accept_names) = options(flags, &names)?;
    let mut text = args.get(1..).map(|a| a.join(" ")).unwrap_or_default();
    if accept_names {
        text = names.resolve(&text).map_err(|e| anyhow!("{e}"))?;
    }
    check_loose_filter("dump-flows", &text)?;
    let filter = openflow::parse_del_flow(&text, false).map_err(|e| {
        if e.field == "actions" {
            anyhow!("actions: not allowed in a dump-flows filter")
        } else {
            anyhow!("{e}")
        }
    })?;
    let mut rules = b.of.rules().load().filter(&filter.spec, false);
    sort_rules(&mut rules, &opts.sort);
    let now = d.now_ns();
    let lines: Vec<String> = rules.iter().map(|r| dump_line(r, now, &opts)).collect();
    let objects: Vec<Value> = rules.iter().map(|r| dump_json(r, now, &opts)).collect();
    Ok(Reply::new(lines.join("\n"), json!(objects)))
}

/// A megaflow line (`<match>, packets:N, bytes:N, used:T[, flags:F], actions:A`) as an
/// object: `match` (each key as a string, or an object of its `name=value` parts),
/// `packets`, `bytes`, `used` (seconds since the last packet, `null` for never), `flags`
/// when present, `actions` (each datapath action as printed), `flow` (the line).
pub(super) fn megaflow_json(line: &str) -> Value {
    let mut o = Map::new();
    let (head, actions) = line.split_once(", actions:").unwrap_or((line, ""));
    let mut parts = top_level(head, ',');
    let mut stats = Vec::new();
    while let Some(last) = parts.last() {
        let t = last.trim();
        if t.starts_with("packets:")
            || t.starts_with("bytes:")
            || t.starts_with("used:")
            || t.starts_with("flags:")
        {
            stats.push(t.to_string());
            parts.pop();
        } else {
            break;
        }
    }
    let mut m = Map::new();
    for p in parts {
        let p = p.trim();
        if p == "any" || p.is_empty() {
            continue;
        }
        match p.split_once('(') {
            Some((k, rest)) => {
                let inner = rest.strip_suffix(')').unwrap_or(rest);
                m.insert(k.to_string(), key_value(inner));
            }
            None => {
                m.insert(p.to_string(), json!(true));
            }
        }
    }
    o.insert("match".into(), Value::Object(m));
    for s in stats {
        let Some((k, v)) = s.split_once(':') else {
            continue;
        };
        let value = match k {
            "packets" | "bytes" => v.parse::<u64>().map_or(json!(v), |n| json!(n)),
            "used" if v == "never" => Value::Null,
            "used" => v
                .trim_end_matches('s')
                .parse::<f64>()
                .map_or(json!(v), |n| json!(n)),
            _ => json!(v),
        };
        o.insert(k.to_string(), value);
    }
    let acts: Vec<&str> = if actions == "drop" || actions.is_empty() {
        Vec::new()
    } else {
        top_level(actions, ',')
    };
    o.insert("actions".into(), json!(acts));
    o.insert("flow".into(), json!(line));
    Value::Object(o)
}

/// `a=1,b=2` as an object when every top-level part is `name=value`, else the text.
fn key_value(inner: &str) -> Value {
    let parts = top_level(inner, ',');
    let pairs: Option<Map<String, Value>> = parts
        .iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.contains('('))
                .map(|(k, v)| (k.to_string(), json!(v)))
        })
        .collect();
    match pairs {
        Some(m) if !m.is_empty() => Value::Object(m),
        _ => json!(inner),
    }
}

/// `s` split at `sep` outside parentheses, brackets and braces.
fn top_level(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megaflow_lines_become_objects() {
        let j = megaflow_json(
            "recirc_id(0),in_port(2),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0800),ipv4(frag=no), packets:2000, bytes:128000, used:0.004s, flags:0x2, actions:set(eth(src=00:00:00:00:00:03)),1,LOCAL",
        );
        assert_eq!(j["match"]["recirc_id"], "0");
        assert_eq!(j["match"]["in_port"], "2");
        assert_eq!(j["match"]["eth"]["dst"], "00:00:00:00:00:02");
        assert_eq!(j["match"]["ipv4"], json!({ "frag": "no" }));
        assert_eq!(
            (&j["packets"], &j["bytes"], &j["used"], &j["flags"]),
            (&json!(2000), &json!(128000), &json!(0.004), &json!("0x2"))
        );
        assert_eq!(
            j["actions"],
            json!(["set(eth(src=00:00:00:00:00:03))", "1", "LOCAL"])
        );
        let j = megaflow_json("any, packets:0, bytes:0, used:never, actions:drop");
        assert_eq!(j["match"], json!({}));
        assert_eq!(j["used"], Value::Null);
        assert_eq!(j["actions"], json!([]));
    }

    #[test]
    fn priority_needs_strict() {
        assert!(check_loose_filter("del-flows", "in_port=1,priority=5").is_err());
        assert!(check_loose_filter("del-flows", "in_port=1").is_ok());
    }
}
