//! Port names in rule text, as ovs-ofctl's port map: a rule may name a port wherever a port
//! number goes (`in_port=veth0`, `out_port=veth0`, `output:veth0`, `output(port=veth0,...)`,
//! a bare `veth0` action, `resubmit:veth0`, `resubmit(veth0,1)`, `enqueue:veth0:Q`,
//! `enqueue(veth0,Q)`, `set_field:veth0->in_port`), and dumps may print names instead of
//! numbers (`--names`).
//!
//! Resolution is a pass over the text before the rule parser runs: each port position is
//! found (outside quotes and parentheses, as the parser splits), a name there is replaced by
//! the bridge's number for it, and the parser sees numbers only. A name that needs quoting
//! (anything but a letter followed by letters and digits, as OVS's `namemap_put_name`) is
//! written and printed as a JSON string: `in_port="x.y"`. Reserved port names (`LOCAL`,
//! `NORMAL`, ...) win over a port of the same name, and a name two ports share resolves to
//! neither, as in OVS.

use std::collections::BTreeMap;

use crate::error::RuleError;
use crate::rule::{Action, Match, OFPP_LOCAL};

/// OpenFlow's reserved ports in the 32-bit (OpenFlow 1.1+) numbering, by their ovs-ofctl
/// names; `ANY` and `NONE` mean "no port" (no `out_port` filter).
pub const RESERVED_PORTS: &[(&str, u32)] = &[
    ("IN_PORT", 0xffff_fff8),
    ("TABLE", 0xffff_fff9),
    ("NORMAL", 0xffff_fffa),
    ("FLOOD", 0xffff_fffb),
    ("ALL", 0xffff_fffc),
    ("CONTROLLER", 0xffff_fffd),
    ("LOCAL", OFPP_LOCAL),
    ("ANY", 0xffff_ffff),
    ("NONE", 0xffff_ffff),
];

/// `OFPP_ANY`: no port.
pub const OFPP_ANY: u32 = 0xffff_ffff;

/// Action keywords without arguments: a bare action word is one of these before it is a
/// port name (OVS parses actions before ports).
const BARE_ACTIONS: &[&str] = &[
    "drop",
    "normal",
    "flood",
    "all",
    "local",
    "in_port",
    "controller",
    "pop_vlan",
    "strip_vlan",
    "dec_ttl",
    "exit",
    "pop_queue",
    "ct_clear",
    "dec_mpls_ttl",
    "dec_nsh_ttl",
    "clear_actions",
];

/// A bridge's ports by name and number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortNames {
    by_number: BTreeMap<u32, String>,
    by_name: BTreeMap<String, u32>,
    /// Names or numbers that two ports share: resolved to neither.
    dup_names: Vec<String>,
    dup_numbers: Vec<u32>,
}

impl PortNames {
    /// The map of `(number, name)` pairs.
    pub fn new<'a>(ports: impl IntoIterator<Item = (u32, &'a str)>) -> PortNames {
        let mut m = PortNames::default();
        for (n, name) in ports {
            if m.by_name.insert(name.to_string(), n).is_some() {
                m.dup_names.push(name.to_string());
            }
            if m.by_number.insert(n, name.to_string()).is_some() {
                m.dup_numbers.push(n);
            }
        }
        m
    }

    /// The number of a port by its name (unquoted).
    pub fn number(&self, name: &str) -> Option<u32> {
        if self.dup_names.iter().any(|d| d == name) {
            return None;
        }
        self.by_name.get(name).copied()
    }

    /// The name of a port, if it has one of its own.
    pub fn name(&self, number: u32) -> Option<&str> {
        if self.dup_numbers.contains(&number) {
            return None;
        }
        self.by_number.get(&number).map(String::as_str)
    }

    /// A port as a dump prints it: a reserved name, the port's name (quoted when it has to
    /// be), or the number.
    pub fn format(&self, number: u32) -> String {
        if let Some((name, _)) = RESERVED_PORTS
            .iter()
            .find(|(n, p)| *p == number && *n != "NONE" && *n != "ANY")
        {
            return (*name).to_string();
        }
        match self.name(number) {
            Some(name) => quote_name(name),
            None => number.to_string(),
        }
    }

    /// `text` (a rule, or a dump filter) with every port name in a port position replaced by
    /// its number. `field` of an error is the keyword or action that named the unknown port.
    pub fn resolve(&self, text: &str) -> Result<String, RuleError> {
        let (match_end, actions_start) = split_actions(text);
        let mut edits: Vec<(usize, usize, u32)> = Vec::new();
        for (start, tok) in tokens(&text[..match_end], |c| c == ',' || c.is_whitespace()) {
            let Some((name, value)) = tok.split_once('=') else {
                continue;
            };
            if matches!(name, "in_port" | "in_port_oxm" | "out_port") {
                let at = start + name.len() + 1;
                if let Some(p) = self.port_value(name, value, true)? {
                    edits.push((at, at + value.len(), p));
                }
            }
        }
        if let Some(a) = actions_start {
            self.resolve_actions(&text[a..], a, &mut edits)?;
        }
        let mut out = text.to_string();
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (s, e, p) in edits {
            out.replace_range(s..e, &p.to_string());
        }
        Ok(out)
    }

    fn resolve_actions(
        &self,
        text: &str,
        offset: usize,
        edits: &mut Vec<(usize, usize, u32)>,
    ) -> Result<(), RuleError> {
        for (start, item) in tokens(text, |c| c == ',') {
            let lead = item.len() - item.trim_start().len();
            let item = item.trim();
            let at = offset + start + lead;
            let mut edit = |field: &str, from: usize, value: &str, strict: bool| {
                self.port_value(field, value, strict).map(|p| {
                    if let Some(p) = p {
                        edits.push((at + from, at + from + value.len(), p));
                    }
                })
            };
            if let Some(rest) = item.strip_prefix("output:") {
                // `output:REG[...]` outputs to a field's value, not a port.
                if !rest.contains('[') {
                    edit("output", 7, rest, true)?;
                }
            } else if let Some(rest) = item.strip_prefix("resubmit:") {
                edit("resubmit", 9, rest, true)?;
            } else if let Some(rest) = item.strip_prefix("enqueue:") {
                let port = rest.rsplit_once(':').map_or(rest, |(p, _)| p);
                edit("enqueue", 8, port, true)?;
            } else if let Some(rest) = item.strip_prefix("set_field:") {
                if let Some((v, dst)) = rest.rsplit_once("->") {
                    if matches!(dst.trim(), "in_port" | "in_port_oxm") {
                        edit("set_field", 10, v, true)?;
                    }
                }
            } else if let Some((name, inner)) = item
                .split_once('(')
                .and_then(|(n, r)| r.strip_suffix(')').map(|i| (n.trim(), i)))
            {
                let from = item.find('(').map_or(0, |i| i + 1);
                match name {
                    "resubmit" | "enqueue" => {
                        let first = tokens(inner, |c| c == ',').next().map_or("", |(_, t)| t);
                        if !first.trim().is_empty() {
                            let lead = first.len() - first.trim_start().len();
                            edit(name, from + lead, first.trim(), true)?;
                        }
                    }
                    "output" => {
                        for (s, kv) in tokens(inner, |c| c == ',') {
                            if let Some(v) = kv.trim().strip_prefix("port=") {
                                let lead = kv.len() - kv.trim_start().len();
                                edit("output", from + s + lead + 5, v, !v.contains('['))?;
                            }
                        }
                    }
                    "clone" => self.resolve_actions(inner, at + from, edits)?,
                    _ => {}
                }
            } else if !item.contains([':', '(', '='])
                && !BARE_ACTIONS.contains(&item.to_ascii_lowercase().as_str())
            {
                // A bare word that is a port: output to it (OVS's `actions=veth0`).
                edit("actions", 0, item, false)?;
            }
        }
        Ok(())
    }

    /// The number a port value names: `None` for a number, a reserved name or (unless
    /// `strict`) a word that is no port, which the parser judges.
    fn port_value(&self, field: &str, v: &str, strict: bool) -> Result<Option<u32>, RuleError> {
        let v = v.trim();
        if v.is_empty()
            || v.bytes().all(|b| b.is_ascii_digit())
            || v.starts_with("0x")
            || RESERVED_PORTS
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(v))
        {
            return Ok(None);
        }
        let name = if v.starts_with('"') {
            serde_json::from_str::<String>(v)
                .map_err(|_| RuleError::new(field, format!("{v} is not a well-quoted port name")))?
        } else {
            v.to_string()
        };
        match self.number(&name) {
            Some(p) => Ok(Some(p)),
            None if strict || v.starts_with('"') => Err(RuleError::new(
                field,
                format!("{v}: invalid or unknown port (the bridge has no port of that name)"),
            )),
            None => Ok(None),
        }
    }

    /// A match's parts (`Match::to_parts`) with `in_port`'s number as the port's name.
    pub fn match_parts(&self, m: &Match) -> Vec<String> {
        m.to_parts()
            .into_iter()
            .map(
                |p| match p.strip_prefix("in_port=").map(str::parse::<u32>) {
                    Some(Ok(n)) => format!("in_port={}", self.format(n)),
                    _ => p,
                },
            )
            .collect()
    }

    /// One action as a dump prints it, with port names.
    pub fn action(&self, a: &Action) -> String {
        match a {
            Action::Output(p) if self.name(*p).is_some() => format!("output:{}", self.format(*p)),
            Action::Resubmit {
                port: Some(p),
                table,
            } if self.name(*p).is_some() => match table {
                None => format!("resubmit:{}", self.format(*p)),
                Some(t) => format!("resubmit({},{t})", self.format(*p)),
            },
            _ => a.to_string(),
        }
    }
}

/// A name as ovs-ofctl writes it: bare when it is a letter followed by letters and digits,
/// otherwise a JSON string.
pub fn quote_name(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if plain {
        name.to_string()
    } else {
        serde_json::Value::String(name.to_string()).to_string()
    }
}

/// The `out_port=` of a filter: a number or a reserved name; `None` for `ANY`/`NONE` (no
/// filter).
pub fn parse_out_port(s: &str) -> Result<Option<u32>, RuleError> {
    if let Some((_, p)) = RESERVED_PORTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
    {
        return Ok((*p != OFPP_ANY).then_some(*p));
    }
    let p = crate::parse::uint("out_port", s, u128::from(u32::MAX))? as u32;
    Ok((p != OFPP_ANY).then_some(p))
}

/// True when the action list sends packets to `port` (OVS's `ofpacts_output_to_port`:
/// `output`, the reserved ports as actions, `controller`; not `resubmit`).
pub fn outputs_to(actions: &[Action], port: u32) -> bool {
    let reserved = |name: &str| RESERVED_PORTS.iter().find(|(n, _)| *n == name).map(|p| p.1);
    crate::rule::flattened(actions).any(|a| {
        let to = match a {
            Action::Output(p) => Some(*p),
            Action::Normal => reserved("NORMAL"),
            Action::Flood => reserved("FLOOD"),
            Action::All => reserved("ALL"),
            Action::Local => Some(OFPP_LOCAL),
            Action::InPort => reserved("IN_PORT"),
            Action::Controller(_) => reserved("CONTROLLER"),
            _ => None,
        };
        to == Some(port)
    })
}

/// Where the match part ends and the action list starts (after `actions=`), as the parser
/// splits them, ignoring quoted text.
fn split_actions(text: &str) -> (usize, Option<usize>) {
    let mut quoted = false;
    let b = text.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'"' => quoted = !quoted,
            b'a' if !quoted && text[i..].starts_with("actions=") => {
                let boundary = i == 0 || b[i - 1] == b',' || b[i - 1].is_ascii_whitespace();
                if boundary {
                    return (i, Some(i + "actions=".len()));
                }
            }
            _ => {}
        }
    }
    (text.len(), None)
}

/// The non-empty pieces of `text` between separators outside quotes and brackets, with their
/// offsets.
fn tokens(text: &str, sep: impl Fn(char) -> bool) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if depth == 0 && sep(c) => {
                out.push((start, &text[start..i]));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push((start, &text[start..]));
    out.into_iter().filter(|(_, t)| !t.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> PortNames {
        PortNames::new([(1, "p1"), (2, "veth0"), (3, "my port"), (4, "x.y")])
    }

    #[test]
    fn names_resolve_in_every_port_position() {
        let n = names();
        let cases = [
            (
                "in_port=veth0,actions=output:p1",
                "in_port=2,actions=output:1",
            ),
            (
                "priority=5 in_port=\"x.y\" actions=veth0,resubmit(veth0,3)",
                "priority=5 in_port=4 actions=2,resubmit(2,3)",
            ),
            (
                "actions=output:\"my port\",resubmit:p1,enqueue:veth0:3,enqueue(p1,2)",
                "actions=output:3,resubmit:1,enqueue:2:3,enqueue(1,2)",
            ),
            (
                "ip,actions=set_field:veth0->in_port,output(port=p1,max_len=64)",
                "ip,actions=set_field:2->in_port,output(port=1,max_len=64)",
            ),
            ("out_port=veth0,table=3", "out_port=2,table=3"),
            // Numbers, reserved names and field outputs are the parser's.
            (
                "in_port=LOCAL,actions=output:NXM_NX_REG0[0..15],LOCAL,normal,3",
                "in_port=LOCAL,actions=output:NXM_NX_REG0[0..15],LOCAL,normal,3",
            ),
            (
                "actions=clone(output:veth0),ct(commit,table=1)",
                "actions=clone(output:2),ct(commit,table=1)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(n.resolve(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn an_unknown_name_is_refused_naming_the_field() {
        let n = names();
        for (text, field) in [
            ("in_port=nosuch,actions=drop", "in_port"),
            ("actions=output:nosuch", "output"),
            ("actions=resubmit(nosuch,2)", "resubmit"),
            ("out_port=\"no such\"", "out_port"),
        ] {
            let e = n.resolve(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.to_string().contains("unknown port"), "{e}");
        }
        // A bare unknown word is left to the parser ("unknown action").
        assert_eq!(n.resolve("actions=nosuch").unwrap(), "actions=nosuch");
    }

    #[test]
    fn names_print_quoted_as_ovs_does() {
        let n = names();
        assert_eq!(n.format(2), "veth0");
        assert_eq!(n.format(3), "\"my port\"");
        assert_eq!(n.format(4), "\"x.y\"");
        assert_eq!(n.format(9), "9");
        assert_eq!(n.format(OFPP_LOCAL), "LOCAL");
        assert_eq!(quote_name("a1b"), "a1b");
        assert_eq!(quote_name("1a"), "\"1a\"");
        assert_eq!(quote_name("a\"b"), "\"a\\\"b\"");
        // Two ports of one name: neither.
        let d = PortNames::new([(1, "a"), (2, "a")]);
        assert_eq!(d.number("a"), None);
        assert!(d.resolve("in_port=a,actions=drop").is_err());
    }

    #[test]
    fn out_port_takes_numbers_and_reserved_names() {
        assert_eq!(parse_out_port("3").unwrap(), Some(3));
        assert_eq!(parse_out_port("normal").unwrap(), Some(0xffff_fffa));
        assert_eq!(parse_out_port("LOCAL").unwrap(), Some(OFPP_LOCAL));
        assert_eq!(parse_out_port("ANY").unwrap(), None);
        assert!(parse_out_port("x").is_err());
        let acts = [Action::Output(1), Action::Normal];
        assert!(outputs_to(&acts, 1));
        assert!(outputs_to(&acts, 0xffff_fffa));
        assert!(!outputs_to(&acts, 2));
        assert!(!outputs_to(
            &[Action::Resubmit {
                port: Some(2),
                table: None
            }],
            2
        ));
    }
}
