//! The rule set of a bridge: 255 classifier tables published as immutable snapshots.
//!
//! Translation reads the current [`RuleSet`] through `arc_swap` without a lock. The control
//! side ([`FlowTables::apply`]) serialises writers, applies a whole bundle of flow mods to a
//! private copy and publishes it with one swap, so a bundle is all-or-nothing and readers
//! never see half of it. To avoid copying every rule on every change, the writer keeps the
//! previous snapshot as a spare: once no reader holds it any more, it is brought up to date by
//! replaying the last change log (left-right), so a flow mod costs O(rules it touches).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::classifier::Classifier;
use crate::error::{BundleError, FileError, RuleError};
use crate::flow_removed::{self, FlowRemovedQueue, RemovedReason};
use crate::group::{
    check_group, group_refs, parse_groups_file, uses_group, Group, GroupError, GroupMod,
    GroupModCommand, GroupModError, GroupModFailed, OFPG_ALL,
};
use crate::parse::{check_actions, check_spec, parse_bundle_file, rule_lines};
use crate::print::{format_dump, DumpStats};
use crate::rule::{
    Action, FlowMod, FlowModCommand, FlowSpec, Match, ADD_KEEPS_COUNTS, CHECK_OVERLAP, N_TABLES,
    RESET_COUNTS,
};
pub use crate::rule::{Rule, RuleStats};

// `Rule` itself lives in `rule.rs`, so that the classifier needs nothing from this module.
impl Rule {
    pub fn table(&self) -> u8 {
        self.spec.table.unwrap_or(0)
    }

    /// The dump-flows line of this rule at time `now_ns`.
    pub fn dump(&self, now_ns: u64) -> String {
        format_dump(
            &self.spec,
            DumpStats {
                duration_ns: now_ns.saturating_sub(self.created_ns),
                n_packets: self.stats.packets(),
                n_bytes: self.stats.bytes(),
            },
        )
    }

    /// True when a timeout has run out at `now_ns`.
    pub fn expired(&self, now_ns: u64) -> bool {
        self.expiry(now_ns).is_some()
    }

    /// Which timeout has run out at `now_ns`, the hard one first, as Open vSwitch's
    /// `rule_expire`: the hard timeout counts from the last add or modify of the rule (OVS's
    /// `rule->modified`: a modify restarts it, while the duration still counts from the
    /// creation), the idle one from [`Rule::idle_since`].
    pub fn expiry(&self, now_ns: u64) -> Option<RemovedReason> {
        const NS: u64 = 1_000_000_000;
        let hard = self.spec.hard_timeout;
        if hard != 0 && now_ns >= self.modified_ns + u64::from(hard) * NS {
            return Some(RemovedReason::HardTimeout);
        }
        let idle = self.spec.idle_timeout;
        (idle != 0 && now_ns >= self.idle_since() + u64::from(idle) * NS)
            .then_some(RemovedReason::IdleTimeout)
    }

    /// What the idle timeout and `idle_age` count from, OVS's `rule->stats.used`: the last
    /// packet, else the creation. A modify keeps it, and so does an add that replaces an
    /// identical rule (the new rule takes the old one's, before its own creation).
    pub fn idle_since(&self) -> u64 {
        match self.stats.used_ns() {
            0 => self.created_ns,
            used => used,
        }
    }
}

/// One snapshot of every table, and of the group table.
#[derive(Clone, Debug)]
pub struct RuleSet {
    tables: Vec<Classifier>,
    groups: BTreeMap<u32, Arc<Group>>,
    generation: u64,
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet {
            tables: vec![Classifier::default(); N_TABLES],
            groups: BTreeMap::new(),
            generation: 0,
        }
    }
}

/// An elementary change, replayable on the spare snapshot.
#[derive(Clone, Debug)]
enum Change {
    Insert(Arc<Rule>),
    Remove(Arc<Rule>),
    /// Group `id` went from `old` to `new` (`None`: absent).
    Group {
        id: u32,
        old: Option<Arc<Group>>,
        new: Option<Arc<Group>>,
    },
}

/// What a successful [`FlowTables::apply_groups`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupReport {
    pub added: usize,
    pub modified: usize,
    /// Groups deleted.
    pub removed: usize,
    /// Rules deleted with the groups they used.
    pub rules_removed: usize,
    /// Generation after the change (unchanged when nothing changed).
    pub generation: u64,
}

impl RuleSet {
    /// Increases on every published change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of rules in every table.
    pub fn len(&self) -> usize {
        self.tables.iter().map(Classifier::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One table (`None` for 255).
    pub fn table(&self, t: u8) -> Option<&Classifier> {
        self.tables.get(usize::from(t))
    }

    /// Every rule, by table, then priority (highest first), then age (oldest first): the
    /// dump-flows order.
    pub fn rules(&self) -> Vec<Arc<Rule>> {
        let mut out = Vec::with_capacity(self.len());
        for t in &self.tables {
            let start = out.len();
            out.extend(t.iter().cloned());
            out[start..].sort_by(|a: &Arc<Rule>, b: &Arc<Rule>| {
                b.spec.priority.cmp(&a.spec.priority).then(a.id.cmp(&b.id))
            });
        }
        out
    }

    /// dump-flows output, one line per rule.
    pub fn dump(&self, now_ns: u64) -> Vec<String> {
        self.rules().iter().map(|r| r.dump(now_ns)).collect()
    }

    /// A group by id.
    #[inline]
    pub fn group(&self, id: u32) -> Option<&Arc<Group>> {
        self.groups.get(&id)
    }

    /// Every group, by id.
    pub fn groups(&self) -> impl Iterator<Item = &Arc<Group>> {
        self.groups.values()
    }

    /// The number of rules whose actions use group `id` (dump-group-stats' `ref_count`).
    pub fn group_ref_count(&self, id: u32) -> usize {
        self.tables
            .iter()
            .flat_map(|t| t.iter())
            .filter(|r| uses_group(&r.spec.actions, id))
            .count()
    }

    /// dump-groups lines (`only`: that group), by group id.
    pub fn dump_groups(&self, only: Option<u32>) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| only.is_none_or(|id| g.spec.group_id == id))
            .map(|g| g.desc_line())
            .collect()
    }

    /// dump-group-stats lines (`only`: that group), by group id.
    pub fn dump_group_stats(&self, only: Option<u32>, now_ns: u64) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| only.is_none_or(|id| g.spec.group_id == id))
            .map(|g| g.stats_line(now_ns, self.group_ref_count(g.spec.group_id)))
            .collect()
    }

    /// Refuses actions that use a group the table does not have (OVS's
    /// `ofproto_check_ofpacts`: `OFPBAC_BAD_OUT_GROUP`).
    fn check_groups(&self, actions: &[Action]) -> Result<(), RuleError> {
        for a in crate::rule::flattened(actions) {
            if let Action::Group(id) = a {
                if !self.groups.contains_key(id) {
                    return Err(RuleError::new(
                        "group",
                        format!("group {id} does not exist"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn set_group(&mut self, id: u32, new: Option<Arc<Group>>, log: &mut Vec<Change>) {
        let old = match &new {
            Some(g) => self.groups.insert(id, g.clone()),
            None => self.groups.remove(&id),
        };
        log.push(Change::Group { id, old, new });
    }

    /// True when following `group` actions and `watch_group`s from `spec`'s buckets comes
    /// back to `spec` (a loop), with `spec` in place of the table's group of its id.
    fn group_loops(&self, spec: &crate::group::GroupSpec) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo: Vec<u32> = group_refs(spec).collect();
        while let Some(id) = todo.pop() {
            if id == spec.group_id {
                return true;
            }
            if seen.insert(id) {
                if let Some(g) = self.groups.get(&id) {
                    todo.extend(group_refs(&g.spec));
                }
            }
        }
        false
    }

    /// Applies one group mod, appending what it changed to `log`. Deleting a group deletes
    /// the rules that use it, as in Open vSwitch.
    fn apply_group_mod(
        &mut self,
        gm: &GroupMod,
        now_ns: u64,
        log: &mut Vec<Change>,
        report: &mut GroupReport,
    ) -> Result<(), GroupError> {
        let id = gm.spec.group_id;
        let exists = self.groups.contains_key(&id);
        let command = match gm.command {
            GroupModCommand::AddOrModify if exists => GroupModCommand::Modify,
            GroupModCommand::AddOrModify => GroupModCommand::Add,
            c => c,
        };
        match command {
            GroupModCommand::Delete => {
                let ids: Vec<u32> = if id == OFPG_ALL {
                    self.groups.keys().copied().collect()
                } else {
                    self.groups.get(&id).map(|_| id).into_iter().collect()
                };
                for id in ids {
                    let users: Vec<Arc<Rule>> = self
                        .tables
                        .iter()
                        .flat_map(|t| t.iter())
                        .filter(|r| uses_group(&r.spec.actions, id))
                        .cloned()
                        .collect();
                    for r in users {
                        let c = Change::Remove(r);
                        self.apply_change(&c);
                        log.push(c);
                        report.rules_removed += 1;
                    }
                    self.set_group(id, None, log);
                    report.removed += 1;
                }
            }
            GroupModCommand::Add | GroupModCommand::Modify => {
                if command == GroupModCommand::Add && exists {
                    return Err(GroupError::new(
                        GroupModFailed::GroupExists,
                        "group_id",
                        format!("group {id} already exists"),
                    ));
                }
                let old = self.groups.get(&id).cloned();
                if command == GroupModCommand::Modify && old.is_none() {
                    return Err(GroupError::new(
                        GroupModFailed::UnknownGroup,
                        "group_id",
                        format!("group {id} does not exist"),
                    ));
                }
                check_group(&gm.spec)?;
                if self.group_loops(&gm.spec) {
                    return Err(GroupError::new(
                        GroupModFailed::Loop,
                        "bucket",
                        format!("group {id} would lead back to itself"),
                    ));
                }
                // A modify keeps the creation time and restarts the counters, as OVS.
                let created = old.as_ref().map_or(now_ns, |g| g.created_ns);
                let g = Arc::new(Group::new(gm.spec.clone(), created));
                self.set_group(id, Some(g), log);
                if old.is_some() {
                    report.modified += 1;
                } else {
                    report.added += 1;
                }
            }
            GroupModCommand::AddOrModify => {}
        }
        Ok(())
    }

    fn apply_change(&mut self, c: &Change) {
        match c {
            Change::Group { id, new, .. } => {
                match new {
                    Some(g) => self.groups.insert(*id, g.clone()),
                    None => self.groups.remove(id),
                };
            }
            Change::Insert(r) => {
                if let Some(t) = self.tables.get_mut(usize::from(r.table())) {
                    t.insert(r.clone());
                }
            }
            Change::Remove(r) => {
                if let Some(t) = self.tables.get_mut(usize::from(r.table())) {
                    t.remove(r);
                }
            }
        }
    }

    fn undo(&mut self, changes: &[Change]) {
        for c in changes.iter().rev() {
            match c {
                Change::Insert(r) => self.apply_change(&Change::Remove(r.clone())),
                Change::Remove(r) => self.apply_change(&Change::Insert(r.clone())),
                Change::Group { id, old, new } => self.apply_change(&Change::Group {
                    id: *id,
                    old: new.clone(),
                    new: old.clone(),
                }),
            }
        }
    }

    /// Rules a modify/delete selects.
    fn select(&self, cmd: FlowModCommand, spec: &FlowSpec) -> Vec<Arc<Rule>> {
        let strict = matches!(
            cmd,
            FlowModCommand::ModifyStrict | FlowModCommand::DeleteStrict
        );
        self.filter(spec, strict)
    }

    /// The rules a filter selects, as OVS's `rule_criteria`: in `spec.table` (every table
    /// without one), whose cookie agrees under `spec.cookie_mask`, whose actions output to
    /// `spec.out_port` and use group `spec.out_group` (OVS's `ofproto_rule_has_out_port` and
    /// `ofproto_rule_has_out_group`), and whose match is at least as specific as `spec.matches`
    /// (`cls_rule_is_loose_match`), or with `strict` exactly it at `spec.priority`. In
    /// dump-flows order.
    pub fn filter(&self, spec: &FlowSpec, strict: bool) -> Vec<Arc<Rule>> {
        let cookie_ok = |r: &Rule| {
            let cookie = match spec.cookie_mask {
                Some(m) => r.spec.cookie & m == spec.cookie & m,
                None => true,
            };
            cookie
                && spec
                    .out_port
                    .is_none_or(|p| crate::portnames::outputs_to(&r.spec.actions, p))
                && spec
                    .out_group
                    .is_none_or(|g| crate::group::uses_group(&r.spec.actions, g))
        };
        let tables: Vec<&Classifier> = match spec.table {
            Some(t) => self.tables.get(usize::from(t)).into_iter().collect(),
            None => self.tables.iter().collect(),
        };
        let mut out = Vec::new();
        for t in tables {
            if strict {
                if let Some(r) = t.find_exact(&spec.matches, spec.priority) {
                    if cookie_ok(r) {
                        out.push(r.clone());
                    }
                }
            } else {
                out.extend(
                    t.iter()
                        .filter(|r| spec.matches.covers(&r.spec.matches) && cookie_ok(r))
                        .cloned(),
                );
            }
        }
        out.sort_by(|a, b| {
            (a.table(), b.spec.priority, a.id).cmp(&(b.table(), a.spec.priority, b.id))
        });
        out
    }

    /// Applies one flow mod, appending what it changed to `log`.
    fn apply_mod(
        &mut self,
        fm: &FlowMod,
        now_ns: u64,
        next_id: &mut u64,
        log: &mut Vec<Change>,
    ) -> Result<(), RuleError> {
        check_spec(&fm.spec)?;
        match fm.command {
            FlowModCommand::Add => {
                let mut spec = fm.spec.clone();
                let table = spec.table.unwrap_or(0);
                spec.table = Some(table);
                spec.cookie_mask = None;
                spec.out_port = None;
                spec.out_group = None;
                check_actions(&spec.actions, &spec.matches, Some(table))?;
                if spec.flags & CHECK_OVERLAP != 0 {
                    check_overlap(&self.tables[usize::from(table)], &spec)?;
                    // A request's flag, not the rule's: OVS's dump-flows does not show it.
                    spec.flags &= !CHECK_OVERLAP;
                }
                self.check_groups(&spec.actions)?;
                let keep_counts =
                    spec.flags & ADD_KEEPS_COUNTS != 0 && spec.flags & RESET_COUNTS == 0;
                spec.flags &= !ADD_KEEPS_COUNTS;
                // Replacing an identical rule, as OVS's `replace_rule_start` and
                // `rule_insert`: the new rule's timeouts, flags and creation time, the old
                // cookie when the new one is all-ones, the old last-used time, and the old
                // counts unless the add resets them; no FLOW_REMOVED for the old rule.
                let table_rules = &self.tables[usize::from(table)];
                let stats = match table_rules.find_exact(&spec.matches, spec.priority) {
                    Some(old) => {
                        if spec.cookie == u64::MAX {
                            spec.cookie = old.spec.cookie;
                        }
                        let stats = if keep_counts {
                            old.stats.clone()
                        } else {
                            Arc::new(RuleStats::default())
                        };
                        pipeline::StatsSink::credit(&*stats, 0, 0, 0, old.idle_since());
                        stats
                    }
                    None => Arc::new(RuleStats::default()),
                };
                let rule = Arc::new(Rule {
                    id: *next_id,
                    spec,
                    stats,
                    created_ns: now_ns,
                    modified_ns: now_ns,
                });
                *next_id += 1;
                let t = &mut self.tables[usize::from(table)];
                if let Some(old) = t.insert(rule.clone()) {
                    log.push(Change::Remove(old));
                }
                log.push(Change::Insert(rule));
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                let selected = self.select(fm.command, &fm.spec);
                // OVS's `modify_may_add_flow`: a modify without a cookie mask (ovs-ofctl's
                // text with none, or with `/0`; OpenFlow 1.0) adds its rule when it selects
                // none, and sets the cookie of those it changes. One with a mask, zero
                // included (every OpenFlow 1.3 modify), does neither.
                let new_cookie = fm.spec.cookie_mask.is_none().then_some(fm.spec.cookie);
                if selected.is_empty() && new_cookie.is_some() {
                    let add = FlowMod {
                        command: FlowModCommand::Add,
                        spec: fm.spec.clone(),
                    };
                    return self.apply_mod(&add, now_ns, next_id, log);
                }
                self.check_groups(&fm.spec.actions)?;
                for old in selected {
                    check_actions(&fm.spec.actions, &old.spec.matches, Some(old.table()))?;
                    let new = Arc::new(Rule {
                        id: old.id,
                        spec: FlowSpec {
                            actions: fm.spec.actions.clone(),
                            cookie: new_cookie.unwrap_or(old.spec.cookie),
                            ..old.spec.clone()
                        },
                        // `reset_counts` on the modify restarts the packet and byte counts,
                        // as in Open vSwitch; the last-used time stays (idle timeouts).
                        stats: if fm.spec.flags & RESET_COUNTS != 0 {
                            Arc::new(old.stats.restarted())
                        } else {
                            old.stats.clone()
                        },
                        created_ns: old.created_ns,
                        modified_ns: now_ns,
                    });
                    let t = &mut self.tables[usize::from(old.table())];
                    t.remove(&old);
                    t.insert(new.clone());
                    log.push(Change::Remove(old));
                    log.push(Change::Insert(new));
                }
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                for old in self.select(fm.command, &fm.spec) {
                    self.tables[usize::from(old.table())].remove(&old);
                    log.push(Change::Remove(old));
                }
            }
        }
        Ok(())
    }
}

/// Published generations whose rule changes [`FlowTables::changes_between`] can list.
const HISTORY_GENERATIONS: usize = 256;
/// Most rules one generation may add, change or remove and still be listed (a bigger change
/// makes every megaflow revalidate; testing each against many matches costs more).
const HISTORY_RULES: usize = 16;

/// The matches of the rules one published generation added or removed; `None` when it
/// changed a group or more than [`HISTORY_RULES`] rules.
type HistoryEntry = (u64, Option<Box<[Match]>>);

struct Writer {
    /// The snapshot before the last publish, once readers let go of it.
    spare: Option<Arc<RuleSet>>,
    /// What the last publish changed relative to `spare`.
    pending: Vec<Change>,
    next_id: u64,
}

/// What a successful [`FlowTables::apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub added: usize,
    pub modified: usize,
    pub removed: usize,
    /// Generation after the change (unchanged when nothing changed).
    pub generation: u64,
}

/// One change of [`FlowTables::apply_mods`].
#[derive(Clone, Copy, Debug)]
pub enum TableMod<'a> {
    Flow(&'a FlowMod),
    Group(&'a GroupMod),
    /// Actions run outside the tables (a bundled PACKET_OUT's): refused, as a flow mod's
    /// would be, when a group they name does not exist at this point of the change.
    Actions(&'a [Action]),
}

/// What [`FlowTables::apply_mods`] refused: the mod (0-based index) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableModError {
    pub index: usize,
    pub failure: TableModFailure,
}

/// A flow mod's (or actions') error, or a group mod's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableModFailure {
    Flow(RuleError),
    Group(GroupError),
}

/// The published rule set of a bridge plus its writer.
pub struct FlowTables {
    live: ArcSwap<RuleSet>,
    writer: Mutex<Writer>,
    /// Rules with `send_flow_rem` that timed out or were deleted, for the controllers.
    removed: FlowRemovedQueue,
    /// What the last [`HISTORY_GENERATIONS`] generations changed, oldest first; an entry is
    /// pushed before its generation is published. A lock of its own, held only to push or
    /// read, so that a reader never waits for a long bundle.
    history: Mutex<VecDeque<HistoryEntry>>,
}

impl Default for FlowTables {
    fn default() -> FlowTables {
        FlowTables::new()
    }
}

impl FlowTables {
    pub fn new() -> FlowTables {
        FlowTables {
            live: ArcSwap::from_pointee(RuleSet::default()),
            writer: Mutex::new(Writer {
                spare: Some(Arc::new(RuleSet::default())),
                pending: Vec::new(),
                next_id: 1,
            }),
            removed: FlowRemovedQueue::default(),
            history: Mutex::new(VecDeque::new()),
        }
    }

    /// The removal notices of rules added with `send_flow_rem` (see [`crate::flow_removed`]).
    pub fn removed(&self) -> &FlowRemovedQueue {
        &self.removed
    }

    /// The current snapshot (lock-free; hold it only for a translation).
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<RuleSet>> {
        self.live.load()
    }

    /// The current snapshot as an owned `Arc`.
    pub fn snapshot(&self) -> Arc<RuleSet> {
        self.live.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.live.load().generation
    }

    /// Pushes the matches of the rules generations `since + 1 ..= until` added, changed or
    /// removed onto `out` (so that revalidation retranslates only the megaflows they may
    /// match). False when that is not known: a group changed, one generation changed more
    /// than [`HISTORY_RULES`] rules, or the history does not reach back to `since`.
    pub fn changes_between(&self, since: u64, until: u64, out: &mut Vec<Match>) -> bool {
        if since == until {
            return true;
        }
        let history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (Some(first), Some(last)) = (history.front(), history.back()) else {
            return false;
        };
        // Entries are consecutive generations: these bounds say every one asked is there.
        if since >= until || first.0 > since + 1 || last.0 < until {
            return false;
        }
        for (generation, matches) in history.iter() {
            if *generation <= since || *generation > until {
                continue;
            }
            match matches {
                Some(m) => out.extend(m.iter().cloned()),
                None => return false,
            }
        }
        true
    }

    /// Records what generation `generation` changes, before it is published.
    fn record(&self, generation: u64, log: &[Change]) {
        let listed = log.len() <= HISTORY_RULES;
        let matches = log
            .iter()
            .map(|c| match c {
                Change::Insert(r) | Change::Remove(r) if listed => Some(r.spec.matches.clone()),
                _ => None,
            })
            .collect::<Option<Box<[Match]>>>();
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if history.len() == HISTORY_GENERATIONS {
            history.pop_front();
        }
        history.push_back((generation, matches));
    }

    /// Applies `mods` all-or-nothing at time `now_ns` and publishes the result. On error
    /// nothing changes and the error names the flow mod (0-based index) and the field.
    pub fn apply(&self, mods: &[FlowMod], now_ns: u64) -> Result<ApplyReport, BundleError> {
        self.apply_inner(mods.iter().map(|m| (None, m)), now_ns)
    }

    /// Applies a bundle file (see [`crate::parse_bundle_file`]) all-or-nothing; errors
    /// name the line.
    pub fn apply_bundle_text(&self, text: &str, now_ns: u64) -> Result<ApplyReport, BundleError> {
        let mods = parse_bundle_file(text).map_err(|e| file_error(text, e))?;
        let mut report = self.apply_inner(mods.iter().map(|(l, m)| (Some(*l), m)), now_ns);
        if let Err(e) = &mut report {
            e.line = mods.get(e.index).map(|(l, _)| *l);
        }
        report
    }

    /// Adds every rule of a flows file (one bundle).
    pub fn add_flows_text(&self, text: &str, now_ns: u64) -> Result<ApplyReport, BundleError> {
        let specs = crate::parse::parse_flows_file(text).map_err(|e| file_error(text, e))?;
        let mods: Vec<FlowMod> = specs
            .into_iter()
            .map(|spec| FlowMod {
                command: FlowModCommand::Add,
                spec,
            })
            .collect();
        self.apply(&mods, now_ns)
    }

    fn apply_inner<'a>(
        &self,
        mods: impl Iterator<Item = (Option<usize>, &'a FlowMod)>,
        now_ns: u64,
    ) -> Result<ApplyReport, BundleError> {
        let ((mut report, gone), generation) = self.transact(|work, next_id, log| {
            let mut report = ApplyReport::default();
            let mut gone = Vec::new();
            for (index, (line, fm)) in mods.enumerate() {
                let before = log.len();
                work.apply_mod(fm, now_ns, next_id, log)
                    .map_err(|error| BundleError { index, line, error })?;
                let n = log.len() - before;
                if matches!(
                    fm.command,
                    FlowModCommand::Delete | FlowModCommand::DeleteStrict
                ) {
                    gone.extend(removed_by(&log[before..], RemovedReason::Delete));
                }
                match fm.command {
                    FlowModCommand::Add => report.added += 1,
                    // A modify that selected nothing and added its rule logged one insert.
                    FlowModCommand::Modify | FlowModCommand::ModifyStrict if n == 1 => {
                        report.added += 1
                    }
                    FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                        report.modified += n / 2
                    }
                    FlowModCommand::Delete | FlowModCommand::DeleteStrict => report.removed += n,
                }
            }
            Ok((report, gone))
        })?;
        flow_removed::notify(&self.removed, gone, now_ns);
        report.generation = generation;
        Ok(report)
    }

    /// Runs `f` on a private copy of the rule set; publishes the copy if `f` succeeded and
    /// changed something, otherwise undoes its changes. Returns `f`'s result and the
    /// generation now published.
    fn transact<T, E>(
        &self,
        f: impl FnOnce(&mut RuleSet, &mut u64, &mut Vec<Change>) -> Result<T, E>,
    ) -> Result<(T, u64), E> {
        // A poisoned lock only means another writer panicked; the state it guards is
        // consistent between calls, so carry on.
        let mut w = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let live = self.live.load_full();
        let mut work = match w.spare.take().map(Arc::try_unwrap) {
            Some(Ok(mut spare)) => {
                for c in &w.pending {
                    spare.apply_change(c);
                }
                spare
            }
            // A reader still holds the old snapshot: copy the live one instead.
            _ => (*live).clone(),
        };
        w.pending.clear();
        work.generation = live.generation;
        let mut log = Vec::new();
        let mut next_id = w.next_id;
        let result = f(&mut work, &mut next_id, &mut log);
        w.next_id = next_id;
        match result {
            Err(e) => {
                work.undo(&log);
                w.spare = Some(Arc::new(work));
                Err(e)
            }
            Ok(t) if log.is_empty() => {
                w.spare = Some(Arc::new(work));
                Ok((t, live.generation))
            }
            Ok(t) => {
                work.generation += 1;
                let generation = work.generation;
                self.record(generation, &log);
                let old = self.live.swap(Arc::new(work));
                w.spare = Some(old);
                w.pending = log;
                Ok((t, generation))
            }
        }
    }

    /// Applies group mods all-or-nothing at time `now_ns` and publishes the result (rules and
    /// groups in one snapshot: the generation moves, so every megaflow that went through a
    /// changed group is revalidated). On error nothing changes; the error names the mod
    /// (0-based index), the field and the OpenFlow error.
    pub fn apply_groups(
        &self,
        mods: &[GroupMod],
        now_ns: u64,
    ) -> Result<GroupReport, GroupModError> {
        self.apply_groups_inner(mods.iter().map(|m| (None, m)), now_ns)
    }

    /// Applies the group mods of an `add-groups` file all-or-nothing; errors name the line.
    pub fn apply_groups_text(&self, text: &str, now_ns: u64) -> Result<GroupReport, GroupModError> {
        let mods = parse_groups_file(text).map_err(|e| GroupModError {
            index: 0,
            line: Some(e.line),
            error: GroupError {
                code: GroupModFailed::InvalidGroup,
                error: e.error,
            },
        })?;
        self.apply_groups_inner(mods.iter().map(|(l, m)| (Some(*l), m)), now_ns)
    }

    fn apply_groups_inner<'a>(
        &self,
        mods: impl Iterator<Item = (Option<usize>, &'a GroupMod)>,
        now_ns: u64,
    ) -> Result<GroupReport, GroupModError> {
        let ((mut report, gone), generation) = self.transact(|work, _, log| {
            let mut report = GroupReport::default();
            for (index, (line, gm)) in mods.enumerate() {
                work.apply_group_mod(gm, now_ns, log, &mut report)
                    .map_err(|error| GroupModError { index, line, error })?;
            }
            // A group mod removes rules only with a deleted group.
            let gone: Vec<_> = removed_by(log, RemovedReason::GroupDelete).collect();
            Ok((report, gone))
        })?;
        flow_removed::notify(&self.removed, gone, now_ns);
        report.generation = generation;
        Ok(report)
    }

    /// Applies flow mods and group mods together, in order, all-or-nothing at time `now_ns`
    /// (an OpenFlow bundle carries both: Open vSwitch commits them as one version); with
    /// `commit` false only checks them and changes nothing. On error nothing changes; the
    /// error names the mod (0-based index).
    pub fn apply_mods(
        &self,
        mods: &[TableMod],
        now_ns: u64,
        commit: bool,
    ) -> Result<u64, TableModError> {
        let result = self.transact(|work, next_id, log| {
            let mut gone = Vec::new();
            for (index, m) in mods.iter().enumerate() {
                let before = log.len();
                let failed = |failure| Some(TableModError { index, failure });
                match m {
                    TableMod::Flow(fm) => {
                        work.apply_mod(fm, now_ns, next_id, log)
                            .map_err(|e| failed(TableModFailure::Flow(e)))?;
                        if matches!(
                            fm.command,
                            FlowModCommand::Delete | FlowModCommand::DeleteStrict
                        ) {
                            gone.extend(removed_by(&log[before..], RemovedReason::Delete));
                        }
                    }
                    TableMod::Group(gm) => {
                        work.apply_group_mod(gm, now_ns, log, &mut GroupReport::default())
                            .map_err(|e| failed(TableModFailure::Group(e)))?;
                        gone.extend(removed_by(&log[before..], RemovedReason::GroupDelete));
                    }
                    TableMod::Actions(actions) => work
                        .check_groups(actions)
                        .map_err(|e| failed(TableModFailure::Flow(e)))?,
                }
            }
            // A check only: undone as a refusal is, with no error to tell.
            if commit {
                Ok(gone)
            } else {
                Err(None)
            }
        });
        match result {
            Ok((gone, generation)) => {
                flow_removed::notify(&self.removed, gone, now_ns);
                Ok(generation)
            }
            Err(Some(e)) => Err(e),
            Err(None) => Ok(self.generation()),
        }
    }

    /// Removes the rules whose idle or hard timeout has run out at `now_ns`; returns them.
    /// Those added with `send_flow_rem` are queued on [`FlowTables::removed`].
    pub fn expire(&self, now_ns: u64) -> Vec<Arc<Rule>> {
        // Only tables with rules that can time out are walked (100k rules without timeouts
        // cost the control thread ~5 % when this looked at each of them every second).
        let timed = |t: &&Classifier| t.n_timed() > 0;
        if !self
            .live
            .load()
            .tables
            .iter()
            .filter(timed)
            .any(|t| t.iter().any(|r| r.expired(now_ns)))
        {
            return Vec::new();
        }
        let result = self.transact(|work, _, log| -> Result<_, BundleError> {
            let expired: Vec<Arc<Rule>> = work
                .tables
                .iter()
                .filter(timed)
                .flat_map(|t| t.iter())
                .filter(|r| r.expired(now_ns))
                .cloned()
                .collect();
            for r in &expired {
                let c = Change::Remove(r.clone());
                work.apply_change(&c);
                log.push(c);
            }
            Ok(expired)
        });
        let expired = result.map(|(e, _)| e).unwrap_or_default();
        flow_removed::notify(
            &self.removed,
            expired
                .iter()
                .filter_map(|r| Some((r.clone(), r.expiry(now_ns)?))),
            now_ns,
        );
        expired
    }
}

/// The rules a change log removed, each with `reason`.
fn removed_by(
    log: &[Change],
    reason: RemovedReason,
) -> impl Iterator<Item = (Arc<Rule>, RemovedReason)> + '_ {
    log.iter().filter_map(move |c| match c {
        Change::Remove(r) => Some((r.clone(), reason)),
        _ => None,
    })
}

/// A parse error of a file as a bundle error: the index counts the rule lines before it.
/// `check_overlap` (OVS's OFPUTIL_FF_CHECK_OVERLAP): an add is refused when a rule of the
/// same priority in the table could match a packet it matches (on every bit both constrain,
/// their values agree), unless the two matches are the same (the add then replaces it).
fn check_overlap(t: &Classifier, spec: &FlowSpec) -> Result<(), RuleError> {
    let m = &spec.matches;
    let other = t.iter().find(|r| {
        let o = &r.spec.matches;
        let common = m.mask.and(&o.mask);
        r.spec.priority == spec.priority
            && o != m
            && m.value.masked(&common) == o.value.masked(&common)
    });
    match other {
        None => Ok(()),
        Some(r) => {
            let mut rule = format!("priority={}", r.spec.priority);
            for part in r.spec.matches.to_parts() {
                rule.push(',');
                rule.push_str(&part);
            }
            Err(RuleError::new(
                "check_overlap",
                format!(
                    "OFPFMFC_OVERLAP: overlaps the rule \"{rule}\" of the same priority in table {}",
                    r.table()
                ),
            ))
        }
    }
}

fn file_error(text: &str, e: FileError) -> BundleError {
    BundleError {
        index: rule_lines(text).take_while(|(l, _)| *l < e.line).count(),
        line: Some(e.line),
        error: e.error,
    }
}

/// A rule built in code: `actions` after `match_` in table `table` at `priority`.
pub fn flow_mod_add(table: u8, priority: u16, matches: Match, actions: Vec<Action>) -> FlowMod {
    FlowMod {
        command: FlowModCommand::Add,
        spec: FlowSpec {
            table: Some(table),
            priority,
            matches,
            actions,
            ..FlowSpec::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_del_flow, parse_flow, parse_mod_flow};
    use crate::rule::Fields;
    use pipeline::{FlowKey, StatsSink};

    fn add(text: &str) -> FlowMod {
        FlowMod {
            command: FlowModCommand::Add,
            spec: parse_flow(text).unwrap_or_else(|e| panic!("{text}: {e}")),
        }
    }

    fn tcp_key(dst: u32, port: u16) -> Fields {
        Fields::from_key(&FlowKey {
            in_port: 1,
            dl_type: 0x0800,
            nw_proto: 6,
            nw_dst: dst,
            tp_dst: port,
            ..FlowKey::default()
        })
    }

    /// Actions of the rule that wins in `table` for `f`.
    fn winner(t: &FlowTables, table: u8, f: &Fields) -> Option<String> {
        let rs = t.load();
        let mut wc = Fields::default();
        rs.table(table)?
            .lookup(f, &mut wc)
            .map(|r| crate::format_actions(&r.spec.actions))
    }

    fn lines(t: &FlowTables) -> Vec<String> {
        t.load()
            .rules()
            .iter()
            .map(|r| r.spec.to_string())
            .collect()
    }

    #[test]
    fn highest_priority_wins_then_oldest() {
        let t = FlowTables::new();
        t.apply(
            &[
                add("priority=10,actions=output:1"),
                add("priority=100,tcp,nw_dst=10.0.0.0/24,actions=output:2"),
                add("priority=200,tcp,tp_dst=80,actions=output:3"),
                add("priority=200,ip,nw_dst=10.0.0.5,actions=output:4"),
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            winner(&t, 0, &tcp_key(0x0a00_0007, 22)).as_deref(),
            Some("output:2")
        );
        assert_eq!(
            winner(&t, 0, &tcp_key(0x0a00_0007, 80)).as_deref(),
            Some("output:3")
        );
        assert_eq!(
            winner(&t, 0, &tcp_key(0x0b00_0007, 22)).as_deref(),
            Some("output:1")
        );
        // Two priority-200 rules match: the one added first wins.
        assert_eq!(
            winner(&t, 0, &tcp_key(0x0a00_0005, 80)).as_deref(),
            Some("output:3")
        );
        assert_eq!(winner(&t, 1, &tcp_key(0x0a00_0005, 80)), None);
        assert_eq!(t.load().len(), 4);
    }

    #[test]
    fn add_replaces_identical_rule_and_resets_counters() {
        let t = FlowTables::new();
        t.apply(&[add("priority=5,ip,actions=output:1")], 0)
            .unwrap();
        let old = t.load().rules()[0].clone();
        old.stats.credit(3, 300, 0, 10);
        let rep = t
            .apply(&[add("priority=5,ip,actions=output:2")], 0)
            .unwrap();
        assert_eq!(rep.added, 1);
        let rules = t.load().rules();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].spec.actions, vec![Action::Output(2)]);
        assert_eq!(rules[0].stats.packets(), 0);
        // A different priority is a different rule.
        t.apply(&[add("priority=6,ip,actions=output:2")], 0)
            .unwrap();
        assert_eq!(t.load().len(), 2);
    }

    /// What Open vSwitch 3.1 did with `ovs-ofctl -O OpenFlow13 add-flow` over an identical
    /// rule: the counts stay (unless `reset_counts`), the new cookie, timeouts and flags go
    /// in, an all-ones cookie keeps the old one.
    #[test]
    fn an_openflow13_add_over_an_identical_rule_keeps_its_counts_unless_reset_counts() {
        let t = FlowTables::new();
        let add13 = |text: &str| {
            let mut m = add(text);
            m.spec.flags |= ADD_KEEPS_COUNTS;
            m
        };
        t.apply(
            &[add13(
                "send_flow_rem,cookie=0x5,idle_timeout=50,priority=10,ip,actions=output:2",
            )],
            0,
        )
        .unwrap();
        t.load().rules()[0].stats.credit(2, 120, 0, 7);
        t.apply(&[add13("cookie=0x6,priority=10,ip,actions=output:2")], 9)
            .unwrap();
        let r = t.load().rules()[0].clone();
        assert_eq!((r.stats.packets(), r.stats.bytes()), (2, 120));
        assert_eq!(
            (r.spec.cookie, r.spec.idle_timeout, r.spec.flags),
            (6, 0, 0)
        );
        assert_eq!((r.created_ns, r.idle_since()), (9, 7));
        t.apply(
            &[add13(
                "cookie=0xffffffffffffffff,priority=10,ip,actions=output:1",
            )],
            9,
        )
        .unwrap();
        let r = t.load().rules()[0].clone();
        assert_eq!((r.spec.cookie, r.stats.packets()), (6, 2));
        t.apply(&[add13("reset_counts,priority=10,ip,actions=output:2")], 9)
            .unwrap();
        let r = t.load().rules()[0].clone();
        assert_eq!((r.stats.packets(), r.stats.bytes()), (0, 0));
        assert_eq!((r.spec.flags, r.idle_since()), (RESET_COUNTS, 7));
    }

    #[test]
    fn check_overlap_refuses_an_add_that_overlaps_a_rule_of_its_priority() {
        // What OVS 3.1 answered on a bridge holding these two rules (pcaps/ovs_dump_flows.py).
        let t = FlowTables::new();
        t.apply(
            &[
                add("priority=100,in_port=1,actions=output:2"),
                add("table=4,priority=11,actions=FLOOD"),
            ],
            0,
        )
        .unwrap();
        for (rule, refused) in [
            ("check_overlap,priority=100,actions=drop", true),
            ("check_overlap,priority=100,in_port=1,actions=drop", false),
            ("check_overlap,priority=100,in_port=2,actions=drop", false),
            ("check_overlap,priority=100,ip,actions=drop", true),
            ("check_overlap,priority=101,actions=drop", false),
            (
                "check_overlap,table=4,priority=11,in_port=2,actions=drop",
                true,
            ),
            ("check_overlap,priority=100,in_port=1,ip,actions=drop", true),
            ("priority=100,ip,actions=drop", false),
        ] {
            let before = lines(&t);
            let r = t.apply(&[add(rule)], 0);
            assert_eq!(r.is_err(), refused, "{rule}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.error.field, "check_overlap");
                assert!(e.error.reason.starts_with("OFPFMFC_OVERLAP"), "{e}");
                assert_eq!(lines(&t), before, "{rule}: refused, nothing changed");
            }
            // Back to the two rules.
            let del = crate::parse_del_flow("", false).unwrap();
            t.apply(&[del], 0).unwrap();
            t.apply(
                &[
                    add("priority=100,in_port=1,actions=output:2"),
                    add("table=4,priority=11,actions=FLOOD"),
                ],
                0,
            )
            .unwrap();
        }
        let e = t
            .apply(&[add("check_overlap,priority=100,actions=drop")], 0)
            .unwrap_err();
        assert_eq!(
            e.error.to_string(),
            "check_overlap: OFPFMFC_OVERLAP: overlaps the rule \"priority=100,in_port=1\" of the \
             same priority in table 0"
        );
    }

    #[test]
    fn modify_with_reset_counts_restarts_the_counts() {
        let t = FlowTables::new();
        t.apply(&[add("priority=5,ip,actions=output:1")], 0)
            .unwrap();
        for r in t.load().rules() {
            r.stats.credit(3, 192, 0, 5);
        }
        let m = parse_mod_flow("reset_counts,ip,actions=output:2", false).unwrap();
        assert_eq!(t.apply(&[m], 0).unwrap().modified, 1);
        let r = t.load().rules()[0].clone();
        assert_eq!(r.spec.actions, vec![Action::Output(2)]);
        assert_eq!(r.stats.packets(), 0);
        assert_eq!(r.stats.bytes(), 0);
        assert_eq!(r.stats.used_ns(), 5);
    }

    #[test]
    fn modify_keeps_counters_strict_and_not() {
        let t = FlowTables::new();
        t.apply(
            &[
                add("priority=5,ip,nw_dst=10.0.0.1,actions=output:1"),
                add("priority=6,ip,nw_dst=10.0.0.0/8,actions=output:1"),
                add("priority=7,arp,actions=output:1"),
            ],
            0,
        )
        .unwrap();
        for r in t.load().rules() {
            r.stats.credit(1, 64, 0, 5);
        }
        let rep = t
            .apply(&[parse_mod_flow("ip,actions=output:9", false).unwrap()], 0)
            .unwrap();
        assert_eq!(rep.modified, 2);
        for r in t.load().rules() {
            let want = if r.spec.matches.is_arp() { 1 } else { 9 };
            assert_eq!(r.spec.actions, vec![Action::Output(want)]);
            assert_eq!(r.stats.packets(), 1);
        }
        let rep = t
            .apply(
                &[
                    parse_mod_flow("priority=6,ip,nw_dst=10.0.0.0/8,actions=output:8", true)
                        .unwrap(),
                ],
                0,
            )
            .unwrap();
        assert_eq!(rep.modified, 1);
        // Strict needs the exact priority.
        let rep = t
            .apply(
                &[
                    parse_mod_flow("priority=9,ip,nw_dst=10.0.0.0/8,actions=output:7", true)
                        .unwrap(),
                ],
                0,
            )
            .unwrap();
        assert_eq!(rep.modified, 0);
    }

    #[test]
    fn delete_strict_and_non_strict() {
        let t = FlowTables::new();
        let setup = [
            add("priority=5,tcp,nw_dst=10.0.0.1,tp_dst=80,actions=drop"),
            add("priority=6,ip,nw_dst=10.0.0.0/8,actions=drop"),
            add("priority=7,ip,actions=drop"),
            add("priority=8,arp,actions=drop"),
            add("table=1,priority=5,tcp,nw_dst=10.0.0.1,tp_dst=80,actions=drop"),
        ];
        t.apply(&setup, 0).unwrap();
        // Non-strict: every rule at least as specific, in every table.
        let rep = t
            .apply(&[parse_del_flow("ip,nw_dst=10.0.0.0/8", false).unwrap()], 0)
            .unwrap();
        assert_eq!(rep.removed, 3);
        assert_eq!(
            lines(&t),
            vec![
                "table=0, priority=8,arp actions=drop",
                "table=0, priority=7,ip actions=drop"
            ]
        );
        t.apply(&setup, 0).unwrap();
        let rep = t
            .apply(
                &[parse_del_flow("table=1,ip,nw_dst=10.0.0.0/8", false).unwrap()],
                0,
            )
            .unwrap();
        assert_eq!(rep.removed, 1);
        // Strict: exact match and priority.
        let rep = t
            .apply(
                &[parse_del_flow("priority=7,ip,nw_dst=10.0.0.0/8", true).unwrap()],
                0,
            )
            .unwrap();
        assert_eq!(rep.removed, 0);
        let rep = t
            .apply(
                &[parse_del_flow("priority=6,ip,nw_dst=10.0.0.0/8", true).unwrap()],
                0,
            )
            .unwrap();
        assert_eq!(rep.removed, 1);
        // An empty match deletes everything.
        t.apply(&[parse_del_flow("", false).unwrap()], 0).unwrap();
        assert!(t.load().is_empty());
    }

    #[test]
    fn cookies_select_rules() {
        let t = FlowTables::new();
        t.apply(
            &[
                add("cookie=0x11,priority=1,actions=drop"),
                add("cookie=0x12,priority=2,actions=drop"),
                add("cookie=0x21,priority=3,actions=drop"),
            ],
            0,
        )
        .unwrap();
        let rep = t
            .apply(
                &[parse_mod_flow("cookie=0x10/0xf0,actions=output:1", false).unwrap()],
                0,
            )
            .unwrap();
        assert_eq!(rep.modified, 2);
        let rep = t
            .apply(&[parse_del_flow("cookie=0x21/-1", false).unwrap()], 0)
            .unwrap();
        assert_eq!(rep.removed, 1);
        let rep = t
            .apply(&[parse_del_flow("cookie=0x2/0xf", false).unwrap()], 0)
            .unwrap();
        assert_eq!(rep.removed, 1);
        assert_eq!(
            lines(&t),
            vec!["table=0, cookie=0x11, priority=1 actions=output:1"]
        );
    }

    #[test]
    fn bundle_is_all_or_nothing() {
        let t = FlowTables::new();
        t.apply(&[add("priority=1,actions=output:1")], 0).unwrap();
        let before = lines(&t);
        let g = t.generation();
        let text = "add priority=2,ip,actions=output:2\n\
                    delete priority=1\n\
                    # the third flow mod is bad\n\
                    add table=2,priority=3,actions=goto_table:1\n";
        let e = t.apply_bundle_text(text, 0).unwrap_err();
        assert_eq!((e.index, e.line), (2, Some(4)));
        assert_eq!(e.error.field, "goto_table");
        assert_eq!(
            e.to_string(),
            "line 4: goto_table: table 1 is not after the rule's table 2"
        );
        assert_eq!(lines(&t), before);
        assert_eq!(t.generation(), g);
        // A mod that fails only when applied (goto_table against a rule in a later table).
        t.apply(&[add("table=5,priority=1,actions=drop")], 0)
            .unwrap();
        let g = t.generation();
        let bad = [
            add("priority=9,actions=drop"),
            parse_mod_flow("actions=goto_table:3", false).unwrap(),
        ];
        let e = t.apply(&bad, 0).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(t.generation(), g);
        assert_eq!(t.load().len(), 2);
        // A parse error in a bundle file names its line.
        let e = t
            .apply_bundle_text("add ip,actions=drop\nadd tcp,tp_dst=x,actions=drop\n", 0)
            .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.error.field, "tp_dst");
        // And a good bundle applies as one generation step.
        let r = t.apply_bundle_text(
            "add priority=2,ip,actions=output:2\ndelete_strict table=5,priority=1\n",
            0,
        );
        assert_eq!(r.unwrap().generation, g + 1);
        assert_eq!(t.load().len(), 2);
    }

    #[test]
    fn flow_and_group_mods_apply_together_or_not_at_all() {
        use crate::group::parse_group_mod;
        let t = FlowTables::new();
        let group = |text: &str, c| parse_group_mod(text, c).unwrap();
        let g7 = group("group_id=7,type=all,bucket=output:1", GroupModCommand::Add);
        let uses_g7 = add("priority=5,ip,actions=group:7");
        let to_g7 = [Action::Group(7)];
        // The rule and the actions see the group added before them in the same change.
        let mods = [
            TableMod::Group(&g7),
            TableMod::Flow(&uses_g7),
            TableMod::Actions(&to_g7),
        ];
        // A check changes nothing.
        assert_eq!(t.apply_mods(&mods, 0, false), Ok(0));
        assert!(t.load().group(7).is_none() && t.load().is_empty());
        assert_eq!(t.apply_mods(&mods, 0, true), Ok(1));
        assert_eq!((t.load().len(), t.load().group(7).is_some()), (1, true));
        // A failing group mod (7 exists) undoes the flow mod before it, and the other way.
        let other = add("priority=6,udp,actions=drop");
        let e = t
            .apply_mods(&[TableMod::Flow(&other), TableMod::Group(&g7)], 0, true)
            .unwrap_err();
        assert_eq!(e.index, 1);
        assert!(
            matches!(&e.failure, TableModFailure::Group(g) if g.code == GroupModFailed::GroupExists)
        );
        let del7 = group("group_id=7", GroupModCommand::Delete);
        let e = t
            .apply_mods(
                &[
                    TableMod::Group(&del7),
                    TableMod::Actions(&to_g7),
                    TableMod::Flow(&other),
                ],
                0,
                true,
            )
            .unwrap_err();
        assert_eq!(e.index, 1);
        assert!(matches!(&e.failure, TableModFailure::Flow(f) if f.field == "group"));
        assert_eq!((t.load().len(), t.load().group(7).is_some()), (1, true));
        assert_eq!(t.generation(), 1);
        // A group delete takes its rules along, as one step.
        assert_eq!(
            t.apply_mods(&[TableMod::Group(&del7), TableMod::Flow(&other)], 0, true),
            Ok(2)
        );
        assert_eq!(lines(&t), ["table=0, priority=6,udp actions=drop"]);
    }

    #[test]
    fn timeouts_expire_rules() {
        const S: u64 = 1_000_000_000;
        let t = FlowTables::new();
        t.apply(
            &[
                add("idle_timeout=10,priority=1,actions=drop"),
                add("hard_timeout=20,priority=2,actions=drop"),
                add("priority=3,actions=drop"),
            ],
            100 * S,
        )
        .unwrap();
        assert!(t.expire(105 * S).is_empty());
        // Traffic at 108 s keeps the idle rule alive until 118 s.
        t.load().rules()[2].stats.credit(1, 60, 0, 108 * S);
        assert_eq!(t.load().rules()[2].spec.idle_timeout, 10);
        assert!(t.expire(117 * S).is_empty());
        let gone = t.expire(118 * S);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].spec.idle_timeout, 10);
        let gone = t.expire(120 * S);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].spec.hard_timeout, 20);
        assert_eq!(t.load().len(), 1);
    }

    #[test]
    fn rules_with_send_flow_rem_leave_a_notice_with_the_reason_they_went() {
        use crate::group::parse_group_mod;
        const S: u64 = 1_000_000_000;
        let t = FlowTables::new();
        let reasons = |t: &FlowTables| -> Vec<(u16, RemovedReason, u64)> {
            t.removed()
                .take()
                .iter()
                .map(|n| (n.rule.spec.priority, n.reason, n.duration_ns()))
                .collect()
        };
        t.apply_groups(
            &[
                parse_group_mod("group_id=7,type=all,bucket=output:1", GroupModCommand::Add)
                    .unwrap(),
            ],
            0,
        )
        .unwrap();
        t.apply(
            &[
                add("send_flow_rem,idle_timeout=10,priority=1,actions=drop"),
                add("send_flow_rem,hard_timeout=20,idle_timeout=5,priority=2,ip,actions=drop"),
                add("hard_timeout=20,priority=3,actions=drop"),
                add("send_flow_rem,priority=4,udp,actions=drop"),
                add("send_flow_rem,priority=5,tcp,actions=drop"),
                add("send_flow_rem,priority=6,arp,actions=group:7"),
                add("priority=7,icmp,actions=group:7"),
            ],
            100 * S,
        )
        .unwrap();
        // Traffic keeps priority 2 from its idle timeout: its hard one takes it.
        t.load()
            .rules()
            .iter()
            .find(|r| r.spec.priority == 2)
            .unwrap()
            .stats
            .credit(1, 60, 0, 118 * S);
        assert_eq!(t.expire(110 * S).len(), 1);
        assert_eq!(reasons(&t), [(1, RemovedReason::IdleTimeout, 10 * S)]);
        assert_eq!(t.expire(121 * S).len(), 2);
        // Priority 3 went too, but asked for no notice.
        assert_eq!(reasons(&t), [(2, RemovedReason::HardTimeout, 21 * S)]);
        // A modify and an add that replaces a rule remove nothing.
        t.apply(
            &[
                parse_mod_flow("udp,actions=output:3", false).unwrap(),
                add("priority=5,tcp,actions=output:4"),
            ],
            122 * S,
        )
        .unwrap();
        assert_eq!(reasons(&t), []);
        t.apply(&[parse_del_flow("udp", false).unwrap()], 123 * S)
            .unwrap();
        assert_eq!(reasons(&t), [(4, RemovedReason::Delete, 23 * S)]);
        t.apply_groups(
            &[parse_group_mod("group_id=7", GroupModCommand::Delete).unwrap()],
            124 * S,
        )
        .unwrap();
        assert_eq!(reasons(&t), [(6, RemovedReason::GroupDelete, 24 * S)]);
        // A refused bundle removes nothing, so tells nothing.
        assert!(t
            .apply(
                &[
                    parse_del_flow("", false).unwrap(),
                    add("priority=9,actions=group:99")
                ],
                125 * S
            )
            .is_err());
        assert_eq!(reasons(&t), []);
        assert_eq!(t.removed().overflows(), 0);
    }

    #[test]
    fn snapshots_stay_consistent_with_and_without_readers() {
        let t = FlowTables::new();
        let mut reference = RuleSet::default();
        let mut id = 1;
        let mut log = Vec::new();
        for i in 0..200u32 {
            // Hold a reader across some changes so the writer must copy instead of replaying.
            let held = (i % 7 == 0).then(|| t.snapshot());
            let fm = if i % 5 == 4 {
                parse_del_flow(&format!("ip,nw_dst=10.0.{}.0/24", i % 3), false).unwrap()
            } else {
                add(&format!(
                    "priority={},ip,nw_dst=10.0.{}.{},actions=output:{i}",
                    i % 4,
                    i % 3,
                    i % 50
                ))
            };
            t.apply(std::slice::from_ref(&fm), 0).unwrap();
            reference.apply_mod(&fm, 0, &mut id, &mut log).unwrap();
            drop(held);
            let got: Vec<String> = t
                .load()
                .rules()
                .iter()
                .map(|r| r.spec.to_string())
                .collect();
            let want: Vec<String> = reference
                .rules()
                .iter()
                .map(|r| r.spec.to_string())
                .collect();
            assert_eq!(got, want, "after change {i}");
        }
        assert!(t.generation() > 150);
    }

    #[test]
    fn the_history_lists_each_generations_rule_matches_while_it_can() {
        let t = FlowTables::new();
        let g0 = t.generation();
        // Nothing changed: nothing to list, and that is known.
        let mut out = Vec::new();
        assert!(t.changes_between(g0, g0, &mut out) && out.is_empty());
        t.apply(&[add("priority=5,tcp,tp_dst=80,actions=output:1")], 0)
            .unwrap();
        t.apply(&[add("priority=6,in_port=2,actions=drop")], 0)
            .unwrap();
        let g2 = t.generation();
        assert_eq!(g2, g0 + 2);
        assert!(t.changes_between(g0, g2, &mut out));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            parse_flow("tcp,tp_dst=80,actions=drop").unwrap().matches
        );
        assert_eq!(
            out[1],
            parse_flow("in_port=2,actions=drop").unwrap().matches
        );
        // From the middle: the second only.
        out.clear();
        assert!(t.changes_between(g0 + 1, g2, &mut out));
        assert_eq!(out.len(), 1);
        // A modify removes and inserts: the match twice (old and new rule).
        let m = parse_mod_flow("priority=6,in_port=2,actions=output:3", true).unwrap();
        t.apply(&[m], 0).unwrap();
        out.clear();
        assert!(t.changes_between(g2, t.generation(), &mut out));
        assert_eq!(out.len(), 2);
        let g3 = t.generation();
        // A group change is more than rules: not listed.
        t.apply_groups_text("group_id=1,type=all,bucket=output:1\n", 0)
            .unwrap();
        assert!(!t.changes_between(g3, t.generation(), &mut out));
        // Nor a generation of more than HISTORY_RULES rules.
        let g4 = t.generation();
        let many: Vec<FlowMod> = (0..=HISTORY_RULES)
            .map(|i| add(&format!("priority=9,tcp,tp_src={i},actions=drop")))
            .collect();
        t.apply(&many, 0).unwrap();
        assert!(!t.changes_between(g4, t.generation(), &mut out));
        // Nor generations older than the history keeps.
        let g5 = t.generation();
        for i in 0..=HISTORY_GENERATIONS {
            t.apply(
                &[add(&format!("priority=8,udp,tp_src={i},actions=drop"))],
                0,
            )
            .unwrap();
        }
        assert!(!t.changes_between(g5, t.generation(), &mut out));
        out.clear();
        assert!(t.changes_between(g5 + 1, t.generation(), &mut out));
        assert_eq!(out.len(), HISTORY_GENERATIONS);
    }

    #[test]
    fn a_modify_restarts_the_hard_timeout_and_the_duration_goes_on() {
        use crate::dump::{dump_line, DumpOptions};
        const S: u64 = 1_000_000_000;
        let t = FlowTables::new();
        t.apply(
            &[add("hard_timeout=10,priority=1,ip,actions=drop")],
            100 * S,
        )
        .unwrap();
        // mod-flows at 108 s: the hard timeout now runs out at 118 s (OVS 3.1 counts it from
        // `rule->modified`), the duration still from 100 s, hard_age from the modify.
        t.apply(
            &[parse_mod_flow("ip,actions=output:2", false).unwrap()],
            108 * S,
        )
        .unwrap();
        assert!(t.expire(115 * S).is_empty());
        let rules = t.load().rules();
        let line = dump_line(&rules[0], 115 * S, &DumpOptions::default());
        assert!(line.contains("duration=15.000s,"), "{line}");
        assert!(
            line.contains("hard_timeout=10, idle_age=15, hard_age=7,"),
            "{line}"
        );
        let gone = t.expire(118 * S);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].expiry(118 * S), Some(RemovedReason::HardTimeout));
        // An add over an identical rule is a new rule: duration and hard timeout restart,
        // but not the idle timeout: OVS 3.1 hands the old rule's last-used time over.
        t.apply(
            &[
                add("hard_timeout=10,priority=1,ip,actions=drop"),
                add("idle_timeout=10,priority=2,ip,actions=drop"),
            ],
            200 * S,
        )
        .unwrap();
        t.apply(
            &[
                add("hard_timeout=10,priority=1,ip,actions=output:3"),
                add("idle_timeout=10,priority=2,ip,actions=output:3"),
            ],
            205 * S,
        )
        .unwrap();
        let rules = t.load().rules();
        let line = dump_line(&rules[0], 206 * S, &DumpOptions::default());
        assert!(line.contains("duration=1.000s,"), "{line}");
        assert!(line.contains("idle_age=6,"), "{line}");
        let gone = t.expire(210 * S);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].spec.priority, 2);
        assert!(t.expire(214 * S).is_empty());
        assert_eq!(t.expire(215 * S).len(), 1);
    }
}
