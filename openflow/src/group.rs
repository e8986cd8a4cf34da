//! OpenFlow groups, as Open vSwitch 3.1 has them: the model (a group's type and buckets, each
//! with its actions, `weight`, `watch_port` and `watch_group`), group mods in ovs-ofctl's
//! syntax (`add-group`, `mod-group`, `del-groups`, `add-groups` files), the checks a switch
//! makes (with the OpenFlow error each refusal is), the group and bucket counters, and the
//! `dump-groups` / `dump-group-stats` lines. The group table itself lives in the rule set
//! (`ruleset.rs`), so rules and the groups they use change together; translation is in
//! `xlate.rs`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pipeline::field::ofctl;
use pipeline::StatsSink;

use crate::error::RuleError;
use crate::parse::{parse_actions_unchecked, split_top_level};
#[cfg(test)]
use crate::print::format_actions;
use crate::print::format_actions_of13;
use crate::rule::{Action, Match, OFPP_LOCAL};

/// The highest group id a group may have (`OFPG_MAX`).
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// "Every group", in a delete or a stats request (`OFPG_ALL`).
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// "No group" (`OFPG_ANY`): a bucket without `watch_group`.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// "No port" (`OFPP_ANY`) in OpenFlow 1.1+: a bucket without `watch_port`.
pub const OFPP_ANY: u32 = 0xffff_ffff;
/// Liveness checks through `watch_group` stop after this many links (OVS's
/// `MAX_LIVENESS_RECURSION`).
pub const MAX_LIVENESS_DEPTH: u32 = 128;

/// A group's type (`ofp_group_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum GroupType {
    /// Every bucket, each on a copy of the packet.
    All,
    /// One bucket, chosen by a hash of the flow among the live ones, by weight.
    Select,
    /// The one bucket.
    Indirect,
    /// The first live bucket.
    FastFailover,
}

impl GroupType {
    pub const ALL: [GroupType; 4] = [
        GroupType::All,
        GroupType::Select,
        GroupType::Indirect,
        GroupType::FastFailover,
    ];

    /// The name dump-groups prints (`ff` for fast failover, as OVS).
    pub fn name(self) -> &'static str {
        match self {
            GroupType::All => "all",
            GroupType::Select => "select",
            GroupType::Indirect => "indirect",
            GroupType::FastFailover => "ff",
        }
    }

    /// `OFPGT_*`.
    pub fn wire(self) -> u8 {
        match self {
            GroupType::All => 0,
            GroupType::Select => 1,
            GroupType::Indirect => 2,
            GroupType::FastFailover => 3,
        }
    }

    pub fn from_wire(v: u8) -> Option<GroupType> {
        GroupType::ALL.into_iter().find(|t| t.wire() == v)
    }

    /// A bucket's weight when it gives none: 1 in a select group, else 0 (as ovs-ofctl).
    pub fn default_weight(self) -> u16 {
        u16::from(self == GroupType::Select)
    }
}

/// One bucket.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Bucket {
    /// Share of a select group's flows; a select bucket of weight 0 is never used.
    pub weight: u16,
    /// The bucket is live while this port is up (`None`: not watched).
    pub watch_port: Option<u32>,
    /// The bucket is live while this group has a live bucket (`None`: not watched).
    pub watch_group: Option<u32>,
    /// The bucket's actions as written; they run as an action set (see [`action_set`]).
    pub actions: Vec<Action>,
}

impl Bucket {
    /// True when liveness is watched (`ofputil_bucket_has_liveness`).
    pub fn has_liveness(&self) -> bool {
        self.watch_port.is_some() || self.watch_group.is_some()
    }
}

/// A group as a group mod gives it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupSpec {
    pub group_id: u32,
    pub kind: GroupType,
    pub buckets: Vec<Bucket>,
}

/// What a group mod does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupModCommand {
    /// Refused when the group exists.
    Add,
    /// Refused when the group does not exist; keeps the creation time, restarts the
    /// counters and keeps the rules that use it.
    Modify,
    /// Add, or modify when it exists (OpenFlow 1.5's `ADD_OR_MOD`).
    AddOrModify,
    /// Deletes the group (every group for [`OFPG_ALL`]) and the rules that use it; a group
    /// that does not exist is not an error.
    Delete,
}

/// One request to change the group table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub spec: GroupSpec,
}

/// Why a group mod (or a rule's `group` action) was refused: OpenFlow's
/// `ofp_group_mod_failed_code` names, plus the bad-action code a missing group in an action
/// list is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupModFailed {
    GroupExists,
    InvalidGroup,
    WatchUnsupported,
    Loop,
    UnknownGroup,
    BadType,
    BadBucket,
    BadWatch,
    /// `OFPBAC_BAD_OUT_GROUP` (an action error): a rule's `group` action names a group that
    /// does not exist.
    BadOutGroup,
}

impl GroupModFailed {
    /// `(ofp_error_type, code)`: `OFPET_GROUP_MOD_FAILED` (6), or `OFPET_BAD_ACTION` (2).
    pub fn ofp_error(self) -> (u16, u16) {
        match self {
            GroupModFailed::GroupExists => (6, 0),
            GroupModFailed::InvalidGroup => (6, 1),
            GroupModFailed::WatchUnsupported => (6, 6),
            GroupModFailed::Loop => (6, 7),
            GroupModFailed::UnknownGroup => (6, 8),
            GroupModFailed::BadType => (6, 10),
            GroupModFailed::BadBucket => (6, 12),
            GroupModFailed::BadWatch => (6, 13),
            GroupModFailed::BadOutGroup => (2, 9),
        }
    }
}

/// A refused group mod: the OpenFlow error, the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct GroupError {
    pub code: GroupModFailed,
    pub error: RuleError,
}

impl GroupError {
    pub fn new(
        code: GroupModFailed,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> GroupError {
        GroupError {
            code,
            error: RuleError::new(field, reason),
        }
    }
}

/// A refused list of group mods: nothing changed. `index` is the 0-based position of the
/// offending mod, `line` its 1-based line when it came from a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", line.map(|l| format!("line {l}")).unwrap_or_else(|| format!("group mod {}", index + 1)))]
pub struct GroupModError {
    pub index: usize,
    pub line: Option<usize>,
    pub error: GroupError,
}

/// A group's and its buckets' counters, shared by every snapshot and every megaflow that
/// went through the group (credited per megaflow push, never per packet).
#[derive(Debug, Default)]
pub struct GroupStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    buckets: Box<[(AtomicU64, AtomicU64)]>,
}

impl GroupStats {
    pub fn new(n_buckets: usize) -> GroupStats {
        GroupStats {
            buckets: (0..n_buckets).map(|_| Default::default()).collect(),
            ..GroupStats::default()
        }
    }

    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `(packets, bytes)` of each bucket.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.buckets
            .iter()
            .map(|(p, b)| (p.load(Ordering::Relaxed), b.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The statistics sink of one megaflow's pass through a group: the group, and the bucket it
/// took (every bucket for `all` and `indirect`, as OVS's `xlate_group_stats`).
#[derive(Debug)]
pub struct GroupSink {
    pub stats: Arc<GroupStats>,
    pub bucket: Option<usize>,
}

impl StatsSink for GroupSink {
    fn credit(&self, packets: u64, bytes: u64, _tcp_flags: u16, _used_ns: u64) {
        let s = &self.stats;
        s.packets.fetch_add(packets, Ordering::Relaxed);
        s.bytes.fetch_add(bytes, Ordering::Relaxed);
        let add = |(p, b): &(AtomicU64, AtomicU64)| {
            p.fetch_add(packets, Ordering::Relaxed);
            b.fetch_add(bytes, Ordering::Relaxed);
        };
        match self.bucket {
            Some(i) => s.buckets.get(i).into_iter().for_each(add),
            None => s.buckets.iter().for_each(add),
        }
    }
}

/// An installed group.
#[derive(Debug)]
pub struct Group {
    pub spec: GroupSpec,
    /// Each bucket's actions as translation runs them ([`action_set`]).
    pub exec: Vec<Vec<Action>>,
    pub stats: Arc<GroupStats>,
    /// When the group was added (a modify keeps it, as OVS).
    pub created_ns: u64,
}

impl Group {
    pub fn new(spec: GroupSpec, created_ns: u64) -> Group {
        Group {
            exec: spec
                .buckets
                .iter()
                .map(|b| action_set(&b.actions))
                .collect(),
            stats: Arc::new(GroupStats::new(spec.buckets.len())),
            spec,
            created_ns,
        }
    }

    /// The dump-groups line (with its leading space), as `ovs-ofctl -O OpenFlow13 dump-groups`.
    pub fn desc_line(&self) -> String {
        format!(" {}", format_group(&self.spec))
    }

    /// The dump-group-stats line (with its leading space); `ref_count` is the number of
    /// rules that use the group.
    pub fn stats_line(&self, now_ns: u64, ref_count: usize) -> String {
        let d = now_ns.saturating_sub(self.created_ns);
        let mut s = format!(
            " group_id={},duration={}.{:03}s,ref_count={ref_count},packet_count={},byte_count={}",
            self.spec.group_id,
            d / 1_000_000_000,
            (d % 1_000_000_000) / 1_000_000,
            self.stats.packets(),
            self.stats.bytes()
        );
        for (i, (p, b)) in self.stats.buckets().into_iter().enumerate() {
            let _ = write!(s, ",bucket{i}:packet_count={p},byte_count={b}");
        }
        s
    }
}

/// Where an action goes in an action set (OVS's `action_set_classify`): a slot run first,
/// in the set's order, the last one written of each kind; a field write, all in the order
/// written; a final action, of which only the last of the highest kind runs; or nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SetClass {
    Slot(u8),
    SetOrMove,
    Final(u8),
    Ignored,
}

fn set_class(a: &Action) -> SetClass {
    match a {
        Action::PopVlan => SetClass::Slot(0),
        Action::PushVlan(_) => SetClass::Slot(1),
        Action::DecTtl | Action::DecTtlIds(_) => SetClass::Slot(2),
        Action::SetField { .. } | Action::Load { .. } | Action::Move { .. } => SetClass::SetOrMove,
        Action::Ct(_) => SetClass::Final(0),
        Action::Resubmit { .. } => SetClass::Final(2),
        Action::Output(_)
        | Action::InPort
        | Action::Normal
        | Action::Flood
        | Action::All
        | Action::Local => SetClass::Final(3),
        // OVS's controller action (with arguments) has no place in a set; its plain output
        // to the controller has.
        Action::Controller(c) if c.is_output() => SetClass::Final(3),
        Action::Group(_) => SetClass::Final(4),
        _ => SetClass::Ignored,
    }
}

/// Whether `write_actions` may hold the action (OVS's `ofpact_is_allowed_in_actions_set`).
pub fn in_action_set(a: &Action) -> bool {
    set_class(a) != SetClass::Ignored
}

/// A bucket's actions as Open vSwitch runs them (`ofpacts_execute_action_set`): buckets are
/// action sets, so `pop_vlan`, `push_vlan` and `dec_ttl` (the last of each) come first, then
/// every field write in order, then the one final action (the last of `group` over `output`
/// over `resubmit` over `ct`); without a final action nothing runs. Other actions are not
/// part of an action set and do nothing.
pub fn action_set(actions: &[Action]) -> Vec<Action> {
    let mut slots: [Option<&Action>; 3] = [None; 3];
    let mut writes = Vec::new();
    let mut last: Option<(u8, &Action)> = None;
    for a in actions {
        match set_class(a) {
            SetClass::Slot(i) => slots[usize::from(i)] = Some(a),
            SetClass::SetOrMove => writes.push(a.clone()),
            SetClass::Final(c) => {
                if last.is_none_or(|(lc, _)| c >= lc) {
                    last = Some((c, a));
                }
            }
            SetClass::Ignored => {}
        }
    }
    let Some((_, fin)) = last else {
        return Vec::new();
    };
    let mut out: Vec<Action> = slots.into_iter().flatten().cloned().collect();
    out.extend(writes);
    out.push(fin.clone());
    out
}

fn port_text(p: u32) -> String {
    if p == OFPP_LOCAL {
        "LOCAL".to_string()
    } else {
        p.to_string()
    }
}

/// `group_id=N,type=T,bucket=...` as ovs-ofctl prints a group in OpenFlow 1.3 (bucket ids
/// are not printed before 1.5; a weight only when not the type's default; actions as
/// OpenFlow 1.3 carries them, [`crate::print::format_actions_of13`]).
pub fn format_group(g: &GroupSpec) -> String {
    let mut s = format!("group_id={},type={}", g.group_id, g.kind.name());
    for b in &g.buckets {
        s.push_str(",bucket=");
        if b.weight != g.kind.default_weight() {
            let _ = write!(s, "weight:{},", b.weight);
        }
        if let Some(p) = b.watch_port {
            let _ = write!(s, "watch_port:{},", port_text(p));
        }
        if let Some(w) = b.watch_group {
            let _ = write!(s, "watch_group:{w},");
        }
        let _ = write!(s, "actions={}", format_actions_of13(&b.actions));
    }
    s
}

fn uint(field: &str, s: &str, max: u32) -> Result<u32, RuleError> {
    ofctl::uint(s, u128::from(max))
        .map(|v| v as u32)
        .map_err(|e| RuleError::new(field, e.to_string()))
}

/// `key=value` or `key:value` (the first of the two), or a bare key.
fn key_value(item: &str) -> (&str, Option<&str>) {
    match item.find(['=', ':']) {
        Some(i) => (&item[..i], Some(&item[i + 1..])),
        None => (item, None),
    }
}

/// One `bucket=` of a group mod: `weight`, `watch_port`, `watch_group`, then its actions
/// (after `actions=`, or every other item, as ovs-ofctl reads them).
fn parse_bucket<'a>(text: &'a str, kind: GroupType) -> Result<Bucket, RuleError> {
    let mut b = Bucket {
        weight: kind.default_weight(),
        watch_port: None,
        watch_group: None,
        actions: Vec::new(),
    };
    let mut actions: Vec<&'a str> = Vec::new();
    let mut in_actions = false;
    for item in split_top_level(text) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, value) = key_value(item);
        let lower = key.to_ascii_lowercase();
        let need = |v: Option<&'a str>| -> Result<&'a str, RuleError> {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| RuleError::new(&lower, "needs a value"))
        };
        match lower.as_str() {
            _ if in_actions => actions.push(item),
            "weight" => b.weight = uint("weight", need(value)?, u32::from(u16::MAX))? as u16,
            "watch_port" => {
                let v = need(value)?;
                b.watch_port = if v.eq_ignore_ascii_case("any") {
                    None
                } else {
                    // As ovs-ofctl: a port, not a reserved one (LOCAL included).
                    match ofctl::port(v, OFPP_LOCAL) {
                        Ok(p) if p != OFPP_LOCAL => Some(p),
                        _ => {
                            return Err(RuleError::new(
                                "watch_port",
                                format!("{v}: invalid watch_port"),
                            ))
                        }
                    }
                };
            }
            "watch_group" => {
                let g = uint("watch_group", need(value)?, u32::MAX)?;
                if g > OFPG_MAX {
                    return Err(RuleError::new(
                        "watch_group",
                        format!("invalid watch_group id {g}"),
                    ));
                }
                b.watch_group = Some(g);
            }
            "bucket_id" => {
                return Err(RuleError::new(
                    "bucket_id",
                    "needs OpenFlow 1.5 (not supported)",
                ))
            }
            "action" | "actions" => {
                in_actions = true;
                actions.push(need(value)?);
            }
            _ => actions.push(item),
        }
    }
    if actions.is_empty() {
        return Err(RuleError::new("bucket", "bucket must specify actions"));
    }
    if kind == GroupType::FastFailover && !b.has_liveness() {
        return Err(RuleError::new(
            "bucket",
            "fast failover bucket requires watch_port or watch_group",
        ));
    }
    b.actions = parse_actions_unchecked(&actions.join(","), &Match::catch_all())?;
    check_bucket_actions(&b.actions)?;
    Ok(b)
}

/// What a bucket's actions must be whatever packet runs them: values that fit their fields,
/// moves of equal widths, no `goto_table`. (Prerequisites are the packet's business: a write
/// to a field the packet lacks is skipped.)
fn check_bucket_actions(actions: &[Action]) -> Result<(), RuleError> {
    for a in actions {
        match a {
            Action::GotoTable(_) => {
                return Err(RuleError::new("goto_table", "not allowed in a bucket"))
            }
            Action::WriteActions(_) => {
                return Err(RuleError::new("write_actions", "not allowed in a bucket"))
            }
            Action::ClearActions => {
                return Err(RuleError::new("clear_actions", "not allowed in a bucket"))
            }
            Action::SetField { field, value } if *value > field.max_value() => {
                return Err(RuleError::new("set_field", "value wider than the field"))
            }
            Action::Load { dst, value } if *value > crate::rule::ones(dst.n_bits) => {
                return Err(RuleError::new("load", "value wider than the bit range"))
            }
            Action::Move { src, dst } if src.n_bits != dst.n_bits => {
                return Err(RuleError::new(
                    "move",
                    "source and destination widths differ",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A group mod in ovs-ofctl syntax: `group_id=N,type=T,bucket=...,bucket=...` for add and
/// modify; `[group_id=N|all]` for delete (empty: every group). Checked as ovs-ofctl checks
/// it; the switch's own checks (existence, loops, liveness) come when it is applied.
pub fn parse_group_mod(text: &str, command: GroupModCommand) -> Result<GroupMod, RuleError> {
    let text = text.trim();
    let delete = command == GroupModCommand::Delete;
    let (head, buckets) = match text.find("bucket=") {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    if delete && buckets.is_some() {
        return Err(RuleError::new("bucket", "bucket is not needed"));
    }
    let mut group_id = None;
    let mut kind = None;
    for item in split_top_level(head) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (item, ""),
        };
        match key {
            "group_id" => {
                group_id = Some(if value == "all" {
                    OFPG_ALL
                } else {
                    let g = uint("group_id", value, u32::MAX)?;
                    if g != OFPG_ALL && g > OFPG_MAX {
                        return Err(RuleError::new("group_id", format!("invalid group id {g}")));
                    }
                    g
                });
            }
            "type" if delete => return Err(RuleError::new("type", "type is not needed")),
            "type" => {
                kind = Some(match value {
                    "all" => GroupType::All,
                    "select" => GroupType::Select,
                    "indirect" => GroupType::Indirect,
                    "ff" | "fast_failover" => GroupType::FastFailover,
                    _ => {
                        return Err(RuleError::new(
                            "type",
                            format!("invalid group type {value}"),
                        ))
                    }
                })
            }
            "selection_method" | "selection_method_param" | "fields" => {
                return Err(RuleError::new(
                    key,
                    "needs OpenFlow 1.5 (not supported; select groups hash the flow's \
                     symmetric L4 fields)",
                ))
            }
            _ => return Err(RuleError::new(key, format!("unknown keyword {key}"))),
        }
    }
    if delete {
        return Ok(GroupMod {
            command,
            spec: GroupSpec {
                group_id: group_id.unwrap_or(OFPG_ALL),
                kind: GroupType::All,
                buckets: Vec::new(),
            },
        });
    }
    let group_id = group_id.ok_or_else(|| RuleError::new("group_id", "must specify a group_id"))?;
    if group_id == OFPG_ALL {
        return Err(RuleError::new(
            "group_id",
            format!("invalid group id {group_id}"),
        ));
    }
    let kind = kind.ok_or_else(|| RuleError::new("type", "must specify a type"))?;
    let mut spec = GroupSpec {
        group_id,
        kind,
        buckets: Vec::new(),
    };
    if let Some(mut rest) = buckets {
        while let Some(body) = rest.strip_prefix("bucket=") {
            let end = body.find("bucket=").unwrap_or(body.len());
            let one = body[..end].trim().trim_end_matches(',');
            rest = &body[end..];
            let b = parse_bucket(one, kind)?;
            if kind != GroupType::Select && b.weight != 0 {
                return Err(RuleError::new(
                    "weight",
                    "Only select groups can have bucket weights.",
                ));
            }
            spec.buckets.push(b);
        }
    }
    if kind == GroupType::Indirect && spec.buckets.len() > 1 {
        return Err(RuleError::new(
            "bucket",
            "Indirect groups can have at most one bucket.",
        ));
    }
    Ok(GroupMod { command, spec })
}

/// The lines of an `add-groups` file: one group mod a line, `#` comments and blank lines
/// skipped; a line may start with `add`, `modify`, `add_or_mod` or `delete` (none: add), as
/// ovs-ofctl's. Errors name the 1-based line.
pub fn parse_groups_file(text: &str) -> Result<Vec<(usize, GroupMod)>, crate::FileError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let word_end = line.find([',', ' ', '\t']).unwrap_or(line.len());
        let (command, rest) = match &line[..word_end] {
            "add" => (GroupModCommand::Add, &line[word_end..]),
            "modify" => (GroupModCommand::Modify, &line[word_end..]),
            "add_or_mod" => (GroupModCommand::AddOrModify, &line[word_end..]),
            "delete" => (GroupModCommand::Delete, &line[word_end..]),
            _ => (GroupModCommand::Add, line),
        };
        let rest = rest.trim_start_matches([',', ' ', '\t']);
        let m = parse_group_mod(rest, command)
            .map_err(|error| crate::FileError { line: i + 1, error })?;
        out.push((i + 1, m));
    }
    Ok(out)
}

/// The switch's checks of a group (`ofputil_check_group_mod` and `init_group`).
/// A bucket's `group:N` of a group that does not exist is accepted, as OVS does (the
/// translation ends that bucket's actions there); loops are refused by the rule set.
pub fn check_group(g: &GroupSpec) -> Result<(), GroupError> {
    use GroupModFailed as F;
    if g.group_id > OFPG_MAX {
        return Err(GroupError::new(
            F::InvalidGroup,
            "group_id",
            format!("invalid group id {}", g.group_id),
        ));
    }
    if g.kind == GroupType::Indirect && g.buckets.len() != 1 {
        return Err(GroupError::new(
            F::InvalidGroup,
            "bucket",
            "an indirect group has exactly one bucket",
        ));
    }
    for (i, b) in g.buckets.iter().enumerate() {
        let field = format!("bucket {i}");
        if b.weight != 0 && g.kind != GroupType::Select {
            return Err(GroupError::new(
                F::InvalidGroup,
                format!("{field}: weight"),
                "only select groups can have bucket weights",
            ));
        }
        match g.kind {
            GroupType::All | GroupType::Indirect if b.has_liveness() => {
                return Err(GroupError::new(
                    F::WatchUnsupported,
                    format!("{field}: watch"),
                    format!("a group of type {} watches nothing", g.kind.name()),
                ))
            }
            GroupType::FastFailover if !b.has_liveness() => {
                return Err(GroupError::new(
                    F::InvalidGroup,
                    format!("{field}: watch"),
                    "a fast failover bucket needs watch_port or watch_group",
                ))
            }
            _ => {}
        }
        if let Some(p) = b.watch_port {
            if p > 0xfeff && p != OFPP_LOCAL {
                return Err(GroupError::new(
                    F::BadWatch,
                    format!("{field}: watch_port"),
                    format!("{p} is not a port"),
                ));
            }
        }
        // A watch_group that does not exist is accepted, as OVS does: the bucket is not live.
        if let Some(w) = b.watch_group.filter(|w| *w > OFPG_MAX) {
            return Err(GroupError::new(
                F::BadWatch,
                format!("{field}: watch_group"),
                format!("{w} is not a group"),
            ));
        }
        check_bucket_actions(&b.actions).map_err(|e| {
            GroupError::new(F::BadBucket, format!("{field}: {}", e.field), e.reason)
        })?;
    }
    Ok(())
}

/// The groups a group's buckets lead to (its `group` actions and `watch_group`s).
pub(crate) fn group_refs(g: &GroupSpec) -> impl Iterator<Item = u32> + '_ {
    g.buckets.iter().flat_map(|b| {
        b.actions
            .iter()
            .filter_map(|a| match a {
                Action::Group(n) => Some(*n),
                _ => None,
            })
            .chain(b.watch_group)
    })
}

/// True when an action list uses `group` (OVS's `ofpacts_output_to_group`: the `out_group`
/// filter).
pub(crate) fn uses_group(actions: &[Action], id: u32) -> bool {
    crate::rule::flattened(actions).any(|a| matches!(a, Action::Group(n) if *n == id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(text: &str) -> Result<GroupMod, RuleError> {
        parse_group_mod(text, GroupModCommand::Add)
    }

    #[test]
    fn groups_parse_and_print_as_ovs_ofctl() {
        let cases = [
            (
                "group_id=1,type=select,bucket=output:1,bucket=output:2",
                "group_id=1,type=select,bucket=actions=output:1,bucket=actions=output:2",
            ),
            (
                "group_id=2,type=select,bucket=weight:3,actions=output:1,bucket=weight=1,output:2",
                "group_id=2,type=select,bucket=weight:3,actions=output:1,bucket=actions=output:2",
            ),
            (
                "group_id=3,type=all,bucket=actions=mod_dl_src:00:00:00:00:00:01,output:1,bucket=output:2",
                "group_id=3,type=all,bucket=actions=set_field:00:00:00:00:00:01->eth_src,output:1,bucket=actions=output:2",
            ),
            (
                "group_id=8,type=all,bucket=mod_vlan_pcp:3,mod_nw_tos:16,set_tunnel:0x5,strip_vlan,output:1",
                "group_id=8,type=all,bucket=actions=push_vlan:0x8100,set_field:3->vlan_pcp,set_field:4->ip_dscp,set_field:0x5->tun_id,pop_vlan,output:1",
            ),
            (
                "group_id=4,type=fast_failover,bucket=watch_port:1,output:1,bucket=watch_port=2,watch_group=3,actions=output:2",
                "group_id=4,type=ff,bucket=watch_port:1,actions=output:1,bucket=watch_port:2,watch_group:3,actions=output:2",
            ),
            ("group_id=5,type=indirect,bucket=actions=drop", "group_id=5,type=indirect,bucket=actions=drop"),
            ("group_id=6,type=all", "group_id=6,type=all"),
            (
                "group_id=7,type=select,bucket=weight:0,actions=LOCAL",
                "group_id=7,type=select,bucket=weight:0,actions=LOCAL",
            ),
        ];
        for (text, want) in cases {
            let m = add(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(format_group(&m.spec), want, "{text}");
            // Printed groups parse back to the same group (but for OpenFlow 1.3's form of
            // mod_vlan_pcp, a push and a set, as in OVS).
            if !want.contains("push_vlan:0x8100,set_field") {
                assert_eq!(add(want).unwrap(), m, "{want}");
            }
        }
    }

    #[test]
    fn bad_groups_are_refused_naming_the_field() {
        let cases = [
            ("type=all,bucket=output:1", "group_id"),
            ("group_id=1,bucket=output:1", "type"),
            ("group_id=1,type=bogus", "type"),
            ("group_id=4294967041,type=all", "group_id"),
            ("group_id=1,type=all,bucket=weight:2,output:1", "weight"),
            ("group_id=1,type=ff,bucket=output:1", "bucket"),
            (
                "group_id=1,type=indirect,bucket=output:1,bucket=output:2",
                "bucket",
            ),
            ("group_id=1,type=select,bucket=weight:1", "bucket"),
            (
                "group_id=1,type=select,bucket=weight:70000,output:1",
                "weight",
            ),
            (
                "group_id=1,type=ff,bucket=watch_group:4294967041,output:1",
                "watch_group",
            ),
            (
                "group_id=1,type=ff,bucket=watch_port:65280,output:1",
                "watch_port",
            ),
            (
                "group_id=1,type=ff,bucket=watch_port:LOCAL,output:1",
                "watch_port",
            ),
            (
                "group_id=1,type=all,bucket=output:1,goto_table:2",
                "goto_table",
            ),
            ("group_id=1,type=all,bucket=frobnicate", "frobnicate"),
            ("group_id=1,type=all,color=red", "color"),
            (
                "group_id=1,type=select,selection_method=hash",
                "selection_method",
            ),
        ];
        for (text, field) in cases {
            let e = add(text).expect_err(text);
            assert_eq!(e.field, field, "{text}: {e}");
        }
        let e = parse_group_mod("group_id=1,bucket=output:1", GroupModCommand::Delete).unwrap_err();
        assert_eq!(e.field, "bucket");
        assert_eq!(
            parse_group_mod("", GroupModCommand::Delete)
                .unwrap()
                .spec
                .group_id,
            OFPG_ALL
        );
    }

    #[test]
    fn buckets_run_as_action_sets() {
        let m = add("group_id=1,type=all,bucket=output:1,output:2,dec_ttl,mod_dl_src:00:00:00:00:00:01,push_vlan:0x8100,note:00,resubmit(,3)").unwrap();
        let set = action_set(&m.spec.buckets[0].actions);
        assert_eq!(
            format_actions(&set),
            "push_vlan:0x8100,dec_ttl,mod_dl_src:00:00:00:00:00:01,output:2"
        );
        // Without a final action, nothing runs.
        assert!(action_set(&[Action::DecTtl]).is_empty());
        // group beats output, output beats resubmit, whatever the order.
        let m = add("group_id=1,type=all,bucket=group:5,output:1,resubmit(,2)").unwrap();
        assert_eq!(
            action_set(&m.spec.buckets[0].actions),
            vec![Action::Group(5)]
        );
    }

    #[test]
    fn files_take_commands_and_name_the_line() {
        let text = "# groups\ngroup_id=1,type=all,bucket=output:1\n\nmodify group_id=1,type=all,bucket=output:2\ndelete group_id=1\nadd_or_mod,group_id=2,type=indirect,bucket=output:3\n";
        let mods = parse_groups_file(text).unwrap();
        let cmds: Vec<(usize, GroupModCommand)> =
            mods.iter().map(|(l, m)| (*l, m.command)).collect();
        assert_eq!(
            cmds,
            vec![
                (2, GroupModCommand::Add),
                (4, GroupModCommand::Modify),
                (5, GroupModCommand::Delete),
                (6, GroupModCommand::AddOrModify)
            ]
        );
        let e = parse_groups_file("group_id=1,type=all\ngroup_id=2,type=nope\n").unwrap_err();
        assert_eq!((e.line, e.error.field.as_str()), (2, "type"));
    }
}
