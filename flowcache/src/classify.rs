//! The `classify` node: EMC → megaflow → upcall for every packet of a frame, then the actions
//! of each megaflow executed once over all of its packets in the frame (OVS's
//! `packet_batch_per_flow`). Before the frame it revalidates the megaflows when the upcall's
//! generation moved, ticks the upcall about once a second and sweeps idle megaflows about
//! every 100 ms, all on the pipeline clock (`Ctx::now_ns`).

use std::collections::BTreeMap;
use std::sync::Arc;

use pipeline::actions::{execute, packets_independent, ExecTargets};
use pipeline::{
    Ctx, DpAction, ExecDrop, FlowKey, Next, Node, PacketId, RuleChange, StatsSink, Upcall,
    VlanLimit, MAX_BATCH,
};

use crate::emc::Emc;
use crate::megaflow::{MegaflowCache, MegaflowInfo, NO_FLOW};

/// Clock time between two idle sweeps, and between two pushes of the megaflows' counts to
/// their deferred sinks while the PMD is busy.
const SWEEP_INTERVAL_NS: u64 = 100_000_000;
/// Clock time between two calls of [`Upcall::tick`].
const TICK_INTERVAL_NS: u64 = 1_000_000_000;
/// Clock time a generation that only learning moved waits after a revalidation whose own
/// translations learned: with a MAC flapping between two ports, about ten passes a second
/// instead of one per frame (Open vSwitch's revalidators, on threads of their own, pass at
/// most every few hundred milliseconds).
const LEARN_BACKOFF_NS: u64 = 100_000_000;
/// Most rule changes a revalidation tests every megaflow against
/// ([`MegaflowCache::revalidate_matching`]); with more it retranslates every megaflow.
const MAX_TARGETED_CHANGES: usize = 64;
/// Group index meaning "this megaflow has no group in the current frame".
const NO_GROUP: u16 = u16::MAX;
/// Tag of a group index that refers to an uninstalled upcall result, not a megaflow.
const EPHEMERAL: u32 = 0x8000_0000;

/// Settings of the classifier, with Open vSwitch's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifyConfig {
    /// Exact-match cache slots (rounded up to a power of two; 0 disables the EMC).
    pub emc_entries: usize,
    /// Insert into the EMC one time in this many (OVS `emc-insert-inv-prob`; 0 = never).
    pub emc_insert_inv_prob: u32,
    /// Megaflows unused this long are deleted (OVS `max-idle`, 10 s).
    pub megaflow_idle_ns: u64,
    /// Most megaflows; beyond it upcalls execute without installing (OVS `flow-limit`).
    pub flow_limit: usize,
    /// Seed of the EMC insertion draws (replays insert the same entries every run).
    pub seed: u64,
    /// How many VLAN headers the parser reads (OVS `vlan-limit`): the switch's `parse` node
    /// reads this many, and the actions keep the key as it would.
    pub vlans: VlanLimit,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        ClassifyConfig {
            emc_entries: 8192,
            emc_insert_inv_prob: 100,
            megaflow_idle_ns: 10_000_000_000,
            flow_limit: 200_000,
            seed: 0x5eed,
            vlans: VlanLimit::DEFAULT,
        }
    }
}

/// A refused [`ClassifyConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("emc_entries: {0} is not 0 or a power of two up to 2^24")]
    EmcEntries(usize),
    #[error("megaflow_idle_ns: must be greater than 0")]
    IdleTimeout,
}

impl ClassifyConfig {
    /// Checks the settings for the control plane ([`Classify::new`] itself rounds instead).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = self.emc_entries;
        if e != 0 && (!e.is_power_of_two() || e > 1 << 24) {
            return Err(ConfigError::EmcEntries(e));
        }
        if self.megaflow_idle_ns == 0 {
            return Err(ConfigError::IdleTimeout);
        }
        Ok(())
    }
}

/// Counters of the classifier (OVS `pmd-stats-show` plus the cache's own events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassifyStats {
    pub packets: u64,
    pub emc_hits: u64,
    pub megaflow_hits: u64,
    /// Packets that missed both caches and were translated.
    pub upcalls: u64,
    pub megaflows_installed: u64,
    pub emc_inserts: u64,
    /// Revalidation passes (the upcall generation moved).
    pub revalidations: u64,
    /// Of those, the passes that only rules moved: only the megaflows a changed rule may
    /// match were translated again.
    pub revalidations_targeted: u64,
    /// Megaflows translated again by all passes.
    pub revalidated_megaflows: u64,
    pub revalidated_deleted: u64,
    pub idle_evicted: u64,
    /// Upcalls executed without installing because the cache was full (or had too many masks).
    pub flow_limit_hits: u64,
    /// Subtables probed by all megaflow lookups, hits and misses.
    pub masked_lookups: u64,
    /// Subtables probed by the lookups that hit (÷ `megaflow_hits` = OVS's "avg. subtable
    /// lookups per megaflow hit").
    pub masked_hit_lookups: u64,
}

impl ClassifyStats {
    /// Average subtables probed per megaflow hit.
    pub fn avg_subtable_lookups_per_hit(&self) -> f64 {
        if self.megaflow_hits == 0 {
            0.0
        } else {
            self.masked_hit_lookups as f64 / self.megaflow_hits as f64
        }
    }

    /// The counters by name (kebab-case), for reports and golden files.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        [
            ("packets", self.packets),
            ("emc-hits", self.emc_hits),
            ("megaflow-hits", self.megaflow_hits),
            ("upcalls", self.upcalls),
            ("megaflows-installed", self.megaflows_installed),
            ("emc-inserts", self.emc_inserts),
            ("revalidations", self.revalidations),
            ("revalidations-targeted", self.revalidations_targeted),
            ("revalidated-megaflows", self.revalidated_megaflows),
            ("revalidated-deleted", self.revalidated_deleted),
            ("idle-evicted", self.idle_evicted),
            ("flow-limit-hits", self.flow_limit_hits),
            ("masked-lookups", self.masked_lookups),
            ("masked-hit-lookups", self.masked_hit_lookups),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The packets of one megaflow (or one uninstalled upcall) in the current frame.
#[derive(Clone, Copy)]
struct Group {
    /// Megaflow index, or `EPHEMERAL | i` for `ephemeral[i]`.
    flow: u32,
    count: u16,
    start: u16,
    bytes: u64,
    tcp_flags: u16,
}

/// Consecutive packets of one megaflow, counted before they are added to its [`Group`].
struct Run {
    flow: u32,
    group: u16,
    count: u16,
    bytes: u64,
    tcp_flags: u16,
}

/// Actions and sinks of an upcall that could not be installed.
type Ephemeral = (Arc<[DpAction]>, Vec<Arc<dyn StatsSink>>);

/// The classify node. See the module documentation.
pub struct Classify<U: Upcall> {
    upcall: U,
    config: ClassifyConfig,
    emc: Emc,
    cache: MegaflowCache,
    stats: ClassifyStats,
    /// The upcall's generation and configuration generation as the last revalidation saw
    /// them.
    generation: u64,
    config_generation: u64,
    /// When the last revalidation ran.
    revalidated_ns: u64,
    /// Until then a generation that learning alone moved waits: the last revalidation itself
    /// learned ([`LEARN_BACKOFF_NS`]).
    learn_backoff_until_ns: u64,
    last_tick_ns: Option<u64>,
    last_sweep_ns: Option<u64>,
    /// Group of each megaflow in the current frame ([`NO_GROUP`] otherwise), by megaflow index.
    flow_group: Vec<u16>,
    groups: Vec<Group>,
    /// Group of each packet of the frame.
    pkt_group: Vec<u16>,
    /// The frame's packets ordered by group, their original positions and their fates.
    sorted: Vec<PacketId>,
    sorted_pos: Vec<u16>,
    sorted_next: Vec<Next>,
    /// Actions and sinks of upcalls that could not be installed, for this frame only.
    ephemeral: Vec<Ephemeral>,
    /// The rule changes of the current revalidation ([`Upcall::rule_changes`]).
    changes: Vec<RuleChange>,
    /// The recirculation ids of the last report ([`Upcall::keep_recirc`]).
    recirc_ids: Vec<u32>,
}

impl<U: Upcall> Classify<U> {
    /// A classifier translating misses with `upcall`.
    pub fn new(upcall: U, config: ClassifyConfig) -> Classify<U> {
        let generation = upcall.generation();
        let config_generation = upcall.config_generation();
        Classify {
            emc: Emc::new(config.emc_entries, config.emc_insert_inv_prob, config.seed),
            cache: MegaflowCache::new(config.flow_limit),
            upcall,
            config,
            stats: ClassifyStats::default(),
            generation,
            config_generation,
            revalidated_ns: 0,
            learn_backoff_until_ns: 0,
            last_tick_ns: None,
            last_sweep_ns: None,
            flow_group: Vec::new(),
            groups: Vec::with_capacity(MAX_BATCH),
            pkt_group: vec![0; MAX_BATCH],
            sorted: vec![0; MAX_BATCH],
            sorted_pos: vec![0; MAX_BATCH],
            sorted_next: vec![Next::CONSUMED; MAX_BATCH],
            ephemeral: Vec::new(),
            changes: Vec::new(),
            recirc_ids: Vec::new(),
        }
    }

    pub fn config(&self) -> &ClassifyConfig {
        &self.config
    }

    pub fn stats(&self) -> &ClassifyStats {
        &self.stats
    }

    pub fn clear_stats(&mut self) {
        self.stats = ClassifyStats::default();
    }

    pub fn upcall(&self) -> &U {
        &self.upcall
    }

    /// The upcall handler, for control-plane changes (bump its generation to have the
    /// megaflows revalidated before the next frame).
    pub fn upcall_mut(&mut self) -> &mut U {
        &mut self.upcall
    }

    /// The megaflow cache (read-only: changes go through the classifier).
    pub fn megaflows(&self) -> &MegaflowCache {
        &self.cache
    }

    pub fn emc(&self) -> &Emc {
        &self.emc
    }

    /// Changes the flow limit (OVS `flow-limit`); existing megaflows stay.
    pub fn set_flow_limit(&mut self, limit: usize) {
        self.config.flow_limit = limit;
        self.cache.set_flow_limit(limit);
    }

    /// Heap bytes of both caches.
    pub fn heap_bytes(&self) -> usize {
        self.emc.heap_bytes() + self.cache.heap_bytes() + self.flow_group.capacity() * 2
    }

    /// Every megaflow with masked key, mask, actions and stats, in slab order.
    pub fn dump_megaflows(&self, _now_ns: u64) -> Vec<MegaflowInfo> {
        self.cache.dump()
    }

    /// The megaflows in `dpctl/dump-flows` format, sorted (deterministic for golden files).
    pub fn dump_megaflows_text(&self, now_ns: u64) -> Vec<String> {
        let mut v: Vec<String> = self
            .cache
            .dump()
            .iter()
            .map(|m| crate::print::format_megaflow(m, now_ns))
            .collect();
        v.sort();
        v
    }

    /// Keeps the key of pushed and popped VLAN headers as a parser reading `vlans` headers
    /// would, and deletes every megaflow: their keys were read under the old limit.
    pub fn set_vlan_limit(&mut self, vlans: VlanLimit) {
        self.config.vlans = vlans;
        self.flush();
    }

    /// Deletes every megaflow (and so every EMC entry); returns how many.
    pub fn flush(&mut self) -> usize {
        let n = self.cache.flush();
        self.cache.release_deferred();
        self.cache.prune_interned();
        self.emc.clear();
        n
    }

    /// The upkeep a frame gets first (the upcall's tick, revalidation when the generation
    /// moved, the idle sweep), without a frame: an idle PMD calls it, so that megaflows age and
    /// follow changes (and their sinks go with them) when no traffic comes.
    pub fn upkeep(&mut self, now_ns: u64) {
        self.maintain(now_ns);
        self.cache.push_stats();
        self.cache.release_deferred();
    }

    /// Credits the megaflows' deferred sinks (rule counters, NetFlow) with what they counted
    /// since the last push. The classifier does it every `SWEEP_INTERVAL_NS` while busy and
    /// in every [`Classify::upkeep`]; a reader that needs exact counts now (replay) calls it.
    pub fn push_stats(&mut self) {
        self.cache.push_stats();
    }

    /// Revalidates every megaflow now, whether or not the generation moved (control plane).
    pub fn revalidate_now(&mut self, now_ns: u64) -> usize {
        let n = self.revalidate_pass(now_ns, true);
        self.cache.release_deferred();
        n
    }

    fn revalidate(&mut self, now_ns: u64) -> usize {
        self.revalidate_pass(now_ns, false)
    }

    /// One revalidation: of every megaflow with `all` or when more than rules changed, else
    /// of those a changed rule may match.
    fn revalidate_pass(&mut self, now_ns: u64, all: bool) -> usize {
        // The generation first: a change the upcall's list misses then moves it again.
        let generation = self.upcall.generation();
        self.generation = generation;
        self.config_generation = self.upcall.config_generation();
        self.upcall.revalidation_begins(generation);
        let since = self.revalidated_ns;
        self.changes.clear();
        let targeted = self.upcall.rule_changes(&mut self.changes)
            && !all
            && self.changes.len() <= MAX_TARGETED_CHANGES;
        let upcall = &mut self.upcall;
        let retranslate =
            |k: &FlowKey, last_used_ns: u64| upcall.retranslate(k, now_ns, last_used_ns >= since);
        let deleted = if targeted {
            let (retranslated, deleted) =
                self.cache.revalidate_matching(&self.changes, retranslate);
            self.stats.revalidations_targeted += 1;
            self.stats.revalidated_megaflows += retranslated as u64;
            deleted
        } else {
            self.stats.revalidated_megaflows += self.cache.len() as u64;
            self.cache.revalidate(retranslate)
        };
        self.revalidated_ns = now_ns;
        // A pass whose translations learned moved the generation itself: a MAC seen on two
        // ports at once (a loop) is learned on each in turn, and every pass would set up the
        // next, every frame. Such changes wait for LEARN_BACKOFF_NS; configuration does not.
        self.learn_backoff_until_ns = if self.upcall.generation() != generation {
            now_ns.saturating_add(LEARN_BACKOFF_NS)
        } else {
            0
        };
        self.stats.revalidations += 1;
        self.stats.revalidated_deleted += deleted as u64;
        deleted
    }

    /// Whether the megaflows must be revalidated before the next packet is classified: the
    /// configuration changed, or learning did and no backoff holds it.
    fn stale(&self, now_ns: u64) -> bool {
        self.upcall.generation() != self.generation
            && (self.upcall.config_generation() != self.config_generation
                || now_ns >= self.learn_backoff_until_ns)
    }

    /// Once-per-frame upkeep: upcall tick, revalidation, idle sweep.
    fn maintain(&mut self, now_ns: u64) {
        if self
            .last_tick_ns
            .is_none_or(|t| now_ns.saturating_sub(t) >= TICK_INTERVAL_NS)
        {
            self.last_tick_ns = Some(now_ns);
            self.recirc_ids.clear();
            self.cache.recirc_ids(&mut self.recirc_ids);
            self.recirc_ids.sort_unstable();
            self.recirc_ids.dedup();
            self.upcall.keep_recirc(&self.recirc_ids, now_ns);
            self.upcall.tick(now_ns);
        }
        if self.stale(now_ns) {
            self.revalidate(now_ns);
        }
        if self
            .last_sweep_ns
            .is_none_or(|t| now_ns.saturating_sub(t) >= SWEEP_INTERVAL_NS)
        {
            self.last_sweep_ns = Some(now_ns);
            self.cache.push_stats();
            let n = self.cache.sweep_idle(now_ns, self.config.megaflow_idle_ns);
            self.stats.idle_evicted += n as u64;
            self.cache.rerank();
            if n > 0 {
                self.cache.prune_interned();
            }
        }
    }

    /// The slow path of one packet: translate, install, maybe insert into the EMC. Returns
    /// the megaflow or an `EPHEMERAL` reference when it could not be installed.
    #[cold]
    #[inline(never)]
    fn upcall_packet(&mut self, key: &FlowKey, hash: u32, now_ns: u64) -> u32 {
        self.stats.upcalls += 1;
        let before = self.upcall.generation();
        let r = self.upcall.translate(key, now_ns);
        let flow = match self
            .cache
            .insert(key, &r.mask, &r.actions, &r.sinks, now_ns)
        {
            Ok(flow) => {
                self.stats.megaflows_installed += 1;
                self.cache.set_rewritten(flow, r.rewritten);
                let cache = &self.cache;
                if self.emc.roll() {
                    self.stats.emc_inserts += 1;
                    self.emc
                        .insert(hash, key, flow, cache.generation(flow), |f, g| {
                            cache.is_current(f, g)
                        });
                }
                if self.flow_group.len() < self.cache.slots() {
                    self.flow_group.resize(self.cache.slots(), NO_GROUP);
                }
                flow
            }
            Err(_) => {
                self.stats.flow_limit_hits += 1;
                self.ephemeral.push((Arc::from(r.actions), r.sinks));
                EPHEMERAL | (self.ephemeral.len() - 1) as u32
            }
        };
        // Translation may have changed what later packets of this frame must do (a MAC was
        // learned): revalidate before classifying them. Deleted megaflows stay readable to
        // the packets already grouped on them until the end of the frame.
        if self.upcall.generation() != before || self.stale(now_ns) {
            self.revalidate(now_ns);
        }
        flow
    }

    /// Finds the megaflow of one packet through EMC, megaflow cache and upcall.
    #[inline(always)]
    fn classify_one(&mut self, key: &FlowKey, hash: u32, now_ns: u64) -> u32 {
        let cache = &self.cache;
        if let Some(flow) = self.emc.lookup(hash, key, |f, g| cache.is_current(f, g)) {
            self.stats.emc_hits += 1;
            return flow;
        }
        self.classify_emc_miss(key, hash, now_ns)
    }

    /// Megaflow lookup and, failing that, upcall: out of line so that the EMC-hit loop stays
    /// small.
    #[inline(never)]
    fn classify_emc_miss(&mut self, key: &FlowKey, hash: u32, now_ns: u64) -> u32 {
        let l = self.cache.lookup(key);
        self.stats.masked_lookups += l.probes as u64;
        if l.flow != NO_FLOW {
            self.stats.megaflow_hits += 1;
            self.stats.masked_hit_lookups += l.probes as u64;
            if self.emc.roll() {
                self.stats.emc_inserts += 1;
                let cache = &self.cache;
                self.emc
                    .insert(hash, key, l.flow, cache.generation(l.flow), |f, g| {
                        cache.is_current(f, g)
                    });
            }
            return l.flow;
        }
        self.upcall_packet(key, hash, now_ns)
    }

    /// Adds a run of consecutive packets of one megaflow to its group.
    #[inline(always)]
    fn close_run(&mut self, run: &Run) {
        if let Some(grp) = self.groups.get_mut(run.group as usize) {
            grp.count += run.count;
            grp.bytes += run.bytes;
            grp.tcp_flags |= run.tcp_flags;
        }
    }

    /// Group index of `flow` in this frame, creating the group.
    #[inline(always)]
    fn group_of(&mut self, flow: u32) -> u16 {
        if flow & EPHEMERAL == 0 {
            if let Some(g) = self.flow_group.get_mut(flow as usize) {
                if *g != NO_GROUP {
                    return *g;
                }
                *g = self.groups.len() as u16;
            }
        }
        self.groups.push(Group {
            flow,
            count: 0,
            start: 0,
            bytes: 0,
            tcp_flags: 0,
        });
        (self.groups.len() - 1) as u16
    }

    /// The actions of every group of the frame when they can run as one group: a single
    /// group, or groups that each came as one run of consecutive packets (so that frame
    /// order is group order, the order grouped execution queues them in) whose megaflows
    /// share one interned action list that gives the same result per packet as per group
    /// (see [`packets_independent`]).
    #[inline(always)]
    fn shared_actions(&self, runs: usize) -> Option<&[DpAction]> {
        let (first, rest) = self.groups.split_first()?;
        let actions = self.actions_of(first.flow);
        if rest.is_empty() {
            return Some(actions);
        }
        if runs != self.groups.len() {
            return None;
        }
        let same = rest
            .iter()
            .all(|g| std::ptr::eq(self.actions_of(g.flow), actions));
        (same && packets_independent(actions)).then_some(actions)
    }

    #[inline(always)]
    fn actions_of(&self, flow: u32) -> &[DpAction] {
        actions_of(&self.cache, &self.ephemeral, flow)
    }
}

/// The actions of a megaflow or of an uninstalled upcall (`EPHEMERAL | i`).
#[inline(always)]
fn actions_of<'a>(
    cache: &'a MegaflowCache,
    ephemeral: &'a [Ephemeral],
    flow: u32,
) -> &'a [DpAction] {
    if flow & EPHEMERAL != 0 {
        ephemeral
            .get((flow & !EPHEMERAL) as usize)
            .map_or(&[], |e| &e.0)
    } else {
        cache.actions(flow)
    }
}

impl<U: Upcall + 'static> Node for Classify<U> {
    fn name(&self) -> &'static str {
        "classify"
    }

    fn next_nodes(&self) -> &[&'static str] {
        &["classify"]
    }

    fn drop_reasons(&self) -> &[&'static str] {
        &ExecDrop::NAMES
    }

    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
        let now = cx.now_ns;
        self.maintain(now);
        let n = pkts.len().min(next.len()).min(MAX_BATCH);
        let (pkts, next) = (&pkts[..n], &mut next[..n]);
        self.stats.packets += n as u64;

        // Classify every packet. Consecutive packets of one megaflow (the common case) are
        // counted in a local run and reach the group table once per run.
        let mut pkt_group = std::mem::take(&mut self.pkt_group);
        let mut run = Run {
            flow: NO_FLOW,
            group: 0,
            count: 0,
            bytes: 0,
            tcp_flags: 0,
        };
        let mut runs = 0usize;
        for (&p, pg) in pkts.iter().zip(pkt_group.iter_mut()) {
            let meta = cx.pool.meta_mut(p);
            let flow = self.classify_one(&meta.key, meta.hash, now);
            meta.flow_ref = if flow & EPHEMERAL == 0 { flow } else { NO_FLOW };
            // `run.flow` starts as NO_FLOW, which no packet gets; an uninstalled upcall's
            // reference is new every time, so runs never join two of them.
            if flow != run.flow {
                if run.count != 0 {
                    self.close_run(&run);
                }
                runs += 1;
                run = Run {
                    flow,
                    group: self.group_of(flow),
                    count: 0,
                    bytes: 0,
                    tcp_flags: 0,
                };
            }
            run.count += 1;
            run.bytes += meta.len as u64;
            run.tcp_flags |= meta.key.tcp_flags;
            *pg = run.group;
        }
        if run.count != 0 {
            self.close_run(&run);
        }
        self.pkt_group = pkt_group;

        let targets = ExecTargets {
            drop_base: 0,
            recirc_next: Some(0),
            vlans: self.config.vlans,
        };
        if let Some(actions) = self.shared_actions(runs) {
            // The whole frame is one megaflow, or megaflows in one run each with the same
            // (interned) actions that act on each packet alone: execute once, in place.
            execute(actions, cx, pkts, next, targets);
        } else if self.groups.len() == n {
            // Every packet is its own megaflow: group i is packet i, no reordering needed.
            for (i, g) in self.groups.iter().enumerate() {
                if let (Some(p), Some(nx)) = (pkts.get(i..i + 1), next.get_mut(i..i + 1)) {
                    execute(self.actions_of(g.flow), cx, p, nx, targets);
                }
            }
        } else {
            // Counting sort of the packets by group, then one execution per group.
            let mut start = 0u16;
            for g in self.groups.iter_mut() {
                g.start = start;
                start += g.count;
                g.count = 0;
            }
            for (i, &p) in pkts.iter().enumerate() {
                let g = self.pkt_group.get(i).copied().unwrap_or(0);
                if let Some(grp) = self.groups.get_mut(g as usize) {
                    let at = (grp.start + grp.count) as usize;
                    grp.count += 1;
                    if let (Some(s), Some(sp)) =
                        (self.sorted.get_mut(at), self.sorted_pos.get_mut(at))
                    {
                        *s = p;
                        *sp = i as u16;
                    }
                }
            }
            for gi in 0..self.groups.len() {
                let Some(g) = self.groups.get(gi).copied() else {
                    continue;
                };
                let range = g.start as usize..(g.start + g.count) as usize;
                let actions = actions_of(&self.cache, &self.ephemeral, g.flow);
                if let (Some(gp), Some(gn)) = (
                    self.sorted.get(range.clone()),
                    self.sorted_next.get_mut(range),
                ) {
                    execute(actions, cx, gp, gn, targets);
                }
            }
            for (&pos, &nx) in self.sorted_pos[..n].iter().zip(&self.sorted_next[..n]) {
                if let Some(slot) = next.get_mut(pos as usize) {
                    *slot = nx;
                }
            }
        }

        // Credit each megaflow and its sinks once for the frame, then reset the groups.
        for g in self.groups.drain(..) {
            if g.flow & EPHEMERAL != 0 {
                if let Some((_, sinks)) = self.ephemeral.get((g.flow & !EPHEMERAL) as usize) {
                    for s in sinks {
                        s.credit(g.count as u64, g.bytes, g.tcp_flags, now);
                    }
                }
            } else {
                self.cache
                    .credit(g.flow, g.count as u64, g.bytes, g.tcp_flags, now);
                if let Some(fg) = self.flow_group.get_mut(g.flow as usize) {
                    *fg = NO_GROUP;
                }
            }
        }
        self.ephemeral.clear();
        self.cache.release_deferred();
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::{Graph, PacketPool, TxQueues, UpcallResult};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts how often and with what it was credited.
    #[derive(Default)]
    struct CountSink {
        calls: AtomicU64,
        packets: AtomicU64,
        bytes: AtomicU64,
        flags: AtomicU64,
        used: AtomicU64,
        /// Not deferrable: credited with every batch.
        immediate: bool,
    }

    impl StatsSink for CountSink {
        fn deferrable(&self) -> bool {
            !self.immediate
        }

        fn credit(&self, packets: u64, bytes: u64, tcp_flags: u16, used_ns: u64) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.packets.fetch_add(packets, Ordering::Relaxed);
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
            self.flags.fetch_or(tcp_flags as u64, Ordering::Relaxed);
            self.used.store(used_ns, Ordering::Relaxed);
        }
    }

    /// Outputs to the port named by `ports[tp_dst]` (drop if none); the mask is in_port and
    /// tp_dst, or only tp_dst for `wide` ports. One sink per tp_dst.
    struct FakeUpcall {
        ports: HashMap<u16, u32>,
        wide: Vec<u16>,
        sinks: HashMap<u16, Arc<CountSink>>,
        generation: u64,
        translations: u64,
        ticks: Vec<u64>,
        /// The recirculation ids of each report.
        kept: Vec<Vec<u32>>,
        /// Optional override of the whole translation.
        custom: Option<fn(&FlowKey) -> UpcallResult>,
    }

    impl FakeUpcall {
        fn new(ports: &[(u16, u32)]) -> FakeUpcall {
            FakeUpcall {
                ports: ports.iter().copied().collect(),
                wide: Vec::new(),
                sinks: HashMap::new(),
                generation: 1,
                translations: 0,
                ticks: Vec::new(),
                kept: Vec::new(),
                custom: None,
            }
        }

        fn sink(&mut self, tp: u16) -> Arc<CountSink> {
            self.sinks.entry(tp).or_default().clone()
        }
    }

    impl Upcall for FakeUpcall {
        fn translate(&mut self, key: &FlowKey, _now_ns: u64) -> UpcallResult {
            self.translations += 1;
            if let Some(f) = self.custom {
                return f(key);
            }
            let mut mask = FlowKey {
                tp_dst: 0xffff,
                ..FlowKey::default()
            };
            if !self.wide.contains(&key.tp_dst) {
                mask.in_port = u32::MAX;
            }
            let actions = self
                .ports
                .get(&key.tp_dst)
                .map(|&p| vec![DpAction::Output(p)])
                .unwrap_or_default();
            let sink: Arc<dyn StatsSink> = self.sink(key.tp_dst);
            UpcallResult {
                rewritten: 0,
                actions,
                mask,
                sinks: vec![sink],
            }
        }

        fn generation(&self) -> u64 {
            self.generation
        }

        fn tick(&mut self, now_ns: u64) {
            self.ticks.push(now_ns);
        }

        fn keep_recirc(&mut self, ids: &[u32], _now_ns: u64) {
            self.kept.push(ids.to_vec());
        }
    }

    struct Rig {
        pool: PacketPool,
        tx: TxQueues,
        node: Classify<FakeUpcall>,
    }

    impl Rig {
        fn new(upcall: FakeUpcall, config: ClassifyConfig) -> Rig {
            Rig {
                pool: PacketPool::new(4096),
                tx: TxQueues::new(&[1, 2, 3, 4]),
                node: Classify::new(upcall, config),
            }
        }

        fn always_emc() -> ClassifyConfig {
            ClassifyConfig {
                emc_insert_inv_prob: 1,
                ..ClassifyConfig::default()
            }
        }

        /// Runs packets `(in_port, tp_dst, len)` through the node at `now`; returns the
        /// nexts and the packets.
        fn run(&mut self, pkts: &[(u32, u16, usize)], now: u64) -> (Vec<Next>, Vec<PacketId>) {
            let ids: Vec<PacketId> = pkts
                .iter()
                .map(|&(port, tp, len)| {
                    let id = self.pool.alloc_with(&vec![0; len]).unwrap();
                    let m = self.pool.meta_mut(id);
                    m.key = FlowKey {
                        in_port: port,
                        tp_dst: tp,
                        tp_src: 1000 + tp,
                        tcp_flags: 0x10,
                        ..FlowKey::default()
                    };
                    m.hash = m.key.hash();
                    id
                })
                .collect();
            let mut next = vec![Next::CONSUMED; ids.len()];
            let mut cx = Ctx {
                pool: &mut self.pool,
                tx: &mut self.tx,
                now_ns: now,
            };
            self.node.process(&mut cx, &ids, &mut next);
            (next, ids)
        }

        fn drain(&mut self, port: u32) -> Vec<PacketId> {
            let mut v = Vec::new();
            self.tx.drain(port, &mut v);
            for &p in &v {
                self.pool.free(p);
            }
            v
        }
    }

    #[test]
    fn emc_then_megaflow_then_upcall() {
        let mut r = Rig::new(FakeUpcall::new(&[(80, 2)]), Rig::always_emc());
        let (next, _) = r.run(&[(1, 80, 60)], 0);
        assert_eq!(next, vec![Next::CONSUMED]);
        assert_eq!(r.drain(2).len(), 1);
        let s = *r.node.stats();
        assert_eq!((s.upcalls, s.megaflows_installed, s.emc_inserts), (1, 1, 1));
        // Same key again: EMC hit.
        r.run(&[(1, 80, 60)], 1);
        assert_eq!(r.node.stats().emc_hits, 1);
        // Other in_port: other megaflow (mask has in_port), upcall.
        r.run(&[(3, 80, 60)], 2);
        assert_eq!(r.node.stats().upcalls, 2);
        // Same megaflow as the first, other unmasked field: megaflow hit, not EMC.
        let (_, ids) = r.run(&[(1, 80, 60)], 3);
        let _ = ids;
        let id = r.pool.alloc_with(&[0; 60]).unwrap();
        r.pool.meta_mut(id).key = FlowKey {
            in_port: 1,
            tp_dst: 80,
            tp_src: 5,
            ..FlowKey::default()
        };
        r.pool.meta_mut(id).hash = 77;
        let mut next = [Next::CONSUMED];
        let mut cx = Ctx {
            pool: &mut r.pool,
            tx: &mut r.tx,
            now_ns: 4,
        };
        r.node.process(&mut cx, &[id], &mut next);
        let s = *r.node.stats();
        assert_eq!((s.emc_hits, s.megaflow_hits, s.upcalls), (2, 1, 2));
        assert_eq!(s.masked_hit_lookups, 1);
        assert_eq!(r.pool.meta(id).flow_ref, 0, "first megaflow is slot 0");
        assert_eq!(r.drain(2).len(), 4);
    }

    #[test]
    fn emc_disabled_and_never_inserting() {
        for config in [
            ClassifyConfig {
                emc_entries: 0,
                emc_insert_inv_prob: 1,
                ..ClassifyConfig::default()
            },
            ClassifyConfig {
                emc_insert_inv_prob: 0,
                ..ClassifyConfig::default()
            },
        ] {
            let mut r = Rig::new(FakeUpcall::new(&[(80, 2)]), config);
            for t in 0..5 {
                r.run(&[(1, 80, 60)], t);
            }
            let s = *r.node.stats();
            assert_eq!((s.emc_hits, s.megaflow_hits, s.upcalls), (0, 4, 1));
        }
    }

    #[test]
    fn several_masks_and_grouped_execution() {
        let mut up = FakeUpcall::new(&[(80, 2), (53, 3), (22, 4)]);
        up.wide = vec![53];
        let sink80 = up.sink(80);
        let sink53 = up.sink(53);
        let mut r = Rig::new(up, ClassifyConfig::default());
        // Interleaved flows in one frame: 80 from port 1 (x3), 53 from ports 1 and 2 (one
        // megaflow: wide), 22 (x1), 9 (no port: drop).
        let frame = [
            (1, 80, 100),
            (1, 53, 60),
            (1, 80, 100),
            (2, 53, 60),
            (1, 22, 70),
            (1, 9, 60),
            (1, 80, 100),
        ];
        let (next, ids) = r.run(&frame, 10);
        assert_eq!(r.node.megaflows().len(), 4);
        assert_eq!(r.node.megaflows().subtable_count(), 2);
        let drop = Next::drop(ExecDrop::NoOutput as u16);
        assert_eq!(next[5], drop);
        assert!(next
            .iter()
            .enumerate()
            .all(|(i, n)| (i == 5) == (*n == drop)));
        // Each port got exactly its packets, in frame order.
        assert_eq!(r.drain(2), vec![ids[0], ids[2], ids[6]]);
        assert_eq!(r.drain(3), vec![ids[1], ids[3]]);
        assert_eq!(r.drain(4), vec![ids[4]]);
        // The second packet of 53 hit the megaflow the first one installed.
        let s = *r.node.stats();
        assert_eq!((s.upcalls, s.megaflow_hits), (4, 3));
        // The sinks are owed the frame until the next push, which credits each once with
        // its megaflow's totals.
        assert_eq!(sink80.calls.load(Ordering::Relaxed), 0);
        r.node.push_stats();
        assert_eq!(sink80.calls.load(Ordering::Relaxed), 1);
        assert_eq!(sink80.packets.load(Ordering::Relaxed), 3);
        assert_eq!(sink80.bytes.load(Ordering::Relaxed), 300);
        assert_eq!(sink80.flags.load(Ordering::Relaxed), 0x10);
        assert_eq!(sink80.used.load(Ordering::Relaxed), 10);
        assert_eq!(sink53.calls.load(Ordering::Relaxed), 1);
        assert_eq!(sink53.packets.load(Ordering::Relaxed), 2);
        let dump = r.node.dump_megaflows(10);
        let f80 = dump.iter().find(|m| m.key.tp_dst == 80).unwrap();
        assert_eq!((f80.stats.packets, f80.stats.bytes), (3, 300));
        assert_eq!(
            r.node.dump_megaflows_text(10),
            vec![
                "in_port(1),l4(dst=22), packets:1, bytes:70, used:0.000s, flags:0x10, actions:4",
                "in_port(1),l4(dst=80), packets:3, bytes:300, used:0.000s, flags:0x10, actions:2",
                "in_port(1),l4(dst=9), packets:1, bytes:60, used:0.000s, flags:0x10, actions:drop",
                "l4(dst=53), packets:2, bytes:120, used:0.000s, flags:0x10, actions:3",
            ]
        );
    }

    #[test]
    fn megaflows_sharing_actions_run_as_one_group() {
        let mut up = FakeUpcall::new(&[(80, 2), (81, 2), (82, 3)]);
        let sink80 = up.sink(80);
        let sink81 = up.sink(81);
        let mut r = Rig::new(up, Rig::always_emc());
        // Two megaflows with the same (interned) actions, one run each: one execution over
        // the whole frame, in frame order, each megaflow credited alone.
        let frame = [(1, 80, 100), (1, 80, 100), (1, 81, 60), (1, 81, 60)];
        let (next, ids) = r.run(&frame, 0);
        assert_eq!(next, vec![Next::CONSUMED; 4]);
        assert_eq!(r.drain(2), ids);
        // Interleaved: still grouped by megaflow, as grouped execution always queued them.
        let frame = [(1, 80, 100), (1, 81, 60), (1, 80, 100), (1, 81, 60)];
        let (next, ids) = r.run(&frame, 1);
        assert_eq!(next, vec![Next::CONSUMED; 4]);
        assert_eq!(r.drain(2), vec![ids[0], ids[2], ids[1], ids[3]]);
        let s = *r.node.stats();
        assert_eq!((s.upcalls, s.emc_hits), (2, 6));
        r.node.push_stats();
        assert_eq!(sink80.packets.load(Ordering::Relaxed), 4);
        assert_eq!(sink80.bytes.load(Ordering::Relaxed), 400);
        assert_eq!(sink81.packets.load(Ordering::Relaxed), 4);
        assert_eq!(sink81.bytes.load(Ordering::Relaxed), 240);
        // Different actions in the frame: grouped execution, still in order per port.
        let (_, ids) = r.run(&[(1, 80, 60), (1, 82, 60), (1, 81, 60), (1, 82, 60)], 2);
        assert_eq!(r.drain(2), vec![ids[0], ids[2]]);
        assert_eq!(r.drain(3), vec![ids[1], ids[3]]);
    }

    #[test]
    fn revalidation_deletes_exactly_the_changed_flows() {
        let mut r = Rig::new(
            FakeUpcall::new(&[(80, 2), (53, 3), (22, 4)]),
            Rig::always_emc(),
        );
        r.run(&[(1, 80, 60), (1, 53, 60), (1, 22, 60)], 0);
        assert_eq!(r.node.megaflows().len(), 3);
        r.drain(2);
        r.drain(3);
        r.drain(4);
        // Port of 53 changes; the others translate the same.
        let up = r.node.upcall_mut();
        up.ports.insert(53, 1);
        up.generation += 1;
        let before = up.translations;
        r.run(&[(1, 53, 60)], 1);
        let s = *r.node.stats();
        assert_eq!((s.revalidations, s.revalidated_deleted), (1, 1));
        // 3 re-translations + 1 upcall for the packet (its EMC entry is stale).
        assert_eq!(r.node.upcall().translations - before, 4);
        assert_eq!(s.emc_hits, 0);
        assert_eq!(r.drain(1).len(), 1, "new actions used");
        assert_eq!(r.drain(3).len(), 0, "old megaflow never used");
        // Unchanged flows still hit their EMC entries.
        r.run(&[(1, 80, 60), (1, 22, 60)], 2);
        assert_eq!(r.node.stats().emc_hits, 2);
        // No change of generation: no revalidation.
        assert_eq!(r.node.stats().revalidations, 1);
    }

    #[test]
    fn stale_emc_entry_never_hits_after_slot_reuse() {
        let mut r = Rig::new(FakeUpcall::new(&[(80, 2), (81, 3)]), Rig::always_emc());
        r.run(&[(1, 80, 60)], 0);
        r.drain(2);
        // Delete flow 80's megaflow (idle sweep) while its EMC entry stays.
        r.run(&[], 20_000_000_000);
        assert_eq!(r.node.megaflows().len(), 0);
        assert_eq!(r.node.stats().idle_evicted, 1);
        // Flow 81 takes slot 0 again; the EMC entry of 80 names slot 0 with an old generation.
        r.run(&[(1, 81, 60)], 20_000_000_001);
        assert_eq!(r.node.megaflows().len(), 1);
        assert_eq!(r.node.megaflows().dump()[0].index, 0, "slot reused");
        let (next, _) = r.run(&[(1, 80, 60)], 20_000_000_002);
        assert_eq!(next, vec![Next::CONSUMED]);
        let s = *r.node.stats();
        assert_eq!(s.emc_hits, 0);
        assert_eq!(s.upcalls, 3);
        assert_eq!(r.drain(3).len(), 1);
        assert_eq!(r.drain(2).len(), 1);
    }

    #[test]
    fn deferred_sinks_are_pushed_by_the_sweep_upkeep_and_removal() {
        let ms = 1_000_000u64;
        let mut up = FakeUpcall::new(&[(80, 2), (81, 2)]);
        let lazy = up.sink(80);
        let eager = Arc::new(CountSink {
            immediate: true,
            ..CountSink::default()
        });
        up.sinks.insert(81, eager.clone());
        let mut r = Rig::new(up, ClassifyConfig::default());
        let packets = |s: &CountSink| s.packets.load(Ordering::Relaxed);
        r.run(&[(1, 80, 60), (1, 81, 60)], 0);
        assert_eq!(
            (packets(&lazy), packets(&eager)),
            (0, 1),
            "eager: every batch"
        );
        r.run(&[(1, 80, 60), (1, 81, 60)], 50 * ms);
        assert_eq!((packets(&lazy), packets(&eager)), (0, 2));
        // The sweep before this frame (100 ms after the last) pushes the first two frames'
        // counts in one credit, with the last time they were used.
        r.run(&[(1, 80, 60)], 100 * ms);
        assert_eq!(packets(&lazy), 2);
        assert_eq!(lazy.calls.load(Ordering::Relaxed), 1);
        assert_eq!(lazy.used.load(Ordering::Relaxed), 50 * ms);
        assert_eq!(lazy.bytes.load(Ordering::Relaxed), 120);
        // An idle PMD's upkeep pushes everything.
        r.node.upkeep(120 * ms);
        assert_eq!(packets(&lazy), 3);
        // So does a megaflow's removal, before its sinks go.
        r.run(&[(1, 80, 60)], 130 * ms);
        r.node.flush();
        assert_eq!(packets(&lazy), 4);
        assert_eq!(lazy.calls.load(Ordering::Relaxed), 3);
        r.drain(2);
    }

    #[test]
    fn upkeep_without_frames_ages_megaflows_and_drops_their_sinks() {
        let sec = 1_000_000_000u64;
        let mut r = Rig::new(
            FakeUpcall::new(&[(80, 2)]),
            ClassifyConfig {
                megaflow_idle_ns: 5 * sec,
                ..ClassifyConfig::default()
            },
        );
        r.run(&[(1, 80, 60)], 0);
        r.drain(2);
        let sink = r.node.upcall_mut().sink(80);
        let held = Arc::strong_count(&sink);
        r.node.upkeep(4 * sec);
        assert_eq!(r.node.megaflows().len(), 1, "not idle long enough");
        r.node.upkeep(5 * sec);
        assert_eq!(r.node.megaflows().len(), 0);
        assert_eq!(r.node.stats().idle_evicted, 1);
        // The megaflow's reference to its sink went with it (NetFlow sees its flow gone).
        assert_eq!(Arc::strong_count(&sink), held - 1);
        assert_eq!(r.node.upcall().ticks, vec![0, 4 * sec, 5 * sec]);
    }

    #[test]
    fn idle_eviction_on_virtual_clock_and_ticks() {
        let sec = 1_000_000_000u64;
        let mut r = Rig::new(
            FakeUpcall::new(&[(80, 2), (81, 2)]),
            ClassifyConfig {
                megaflow_idle_ns: 5 * sec,
                ..ClassifyConfig::default()
            },
        );
        r.run(&[(1, 80, 60), (1, 81, 60)], 0);
        // 81 stays busy, 80 goes idle.
        for t in 1..=6 {
            r.run(&[(1, 81, 60)], t * sec);
        }
        assert_eq!(r.node.megaflows().len(), 1);
        assert_eq!(r.node.stats().idle_evicted, 1);
        assert_eq!(r.node.megaflows().dump()[0].key.tp_dst, 81);
        // One tick per second of clock, whatever the number of frames.
        r.run(&[], 6 * sec + 10);
        assert_eq!(
            r.node.upcall().ticks,
            vec![0, sec, 2 * sec, 3 * sec, 4 * sec, 5 * sec, 6 * sec]
        );
        r.drain(2);
    }

    #[test]
    fn each_tick_reports_the_recirculation_ids_of_the_live_megaflows() {
        let sec = 1_000_000_000u64;
        let mut up = FakeUpcall::new(&[]);
        up.custom = Some(|key| UpcallResult {
            rewritten: 0,
            actions: match key.tp_dst {
                80 => vec![DpAction::Recirc(7)],
                81 => vec![
                    DpAction::Clone(vec![DpAction::Recirc(9)].into()),
                    DpAction::Output(2),
                ],
                _ => vec![DpAction::Output(2)],
            },
            mask: FlowKey {
                tp_dst: 0xffff,
                ..FlowKey::default()
            },
            sinks: Vec::new(),
        });
        let mut r = Rig::new(
            up,
            ClassifyConfig {
                megaflow_idle_ns: 5 * sec,
                ..ClassifyConfig::default()
            },
        );
        // The first report comes before the frame's upcalls.
        r.run(&[(1, 80, 60), (1, 81, 60), (1, 82, 60)], 0);
        // 81 stays busy; 80's megaflow goes idle at 5 s, after that second's report.
        for t in 1..=6 {
            r.run(&[(1, 81, 60)], t * sec);
        }
        let k = |ids: &[u32]| ids.to_vec();
        assert_eq!(
            r.node.upcall().kept,
            vec![
                k(&[]),
                k(&[7, 9]),
                k(&[7, 9]),
                k(&[7, 9]),
                k(&[7, 9]),
                k(&[7, 9]),
                k(&[9])
            ]
        );
        r.node.flush();
        r.run(&[], 7 * sec);
        assert_eq!(r.node.upcall().kept.last(), Some(&Vec::new()));
        r.drain(2);
    }

    #[test]
    fn flow_limit_executes_without_installing() {
        let up = FakeUpcall::new(&[(1, 2), (2, 2), (3, 2), (4, 2)]);
        let sink = {
            let mut up = up;
            let s = up.sink(4);
            (up, s)
        };
        let (up, sink4) = sink;
        let mut r = Rig::new(
            up,
            ClassifyConfig {
                flow_limit: 2,
                ..ClassifyConfig::default()
            },
        );
        let (next, _) = r.run(
            &[(1, 1, 60), (1, 2, 60), (1, 3, 60), (1, 4, 60), (1, 4, 60)],
            0,
        );
        assert!(next.iter().all(|n| *n == Next::CONSUMED));
        assert_eq!(r.drain(2).len(), 5);
        let s = *r.node.stats();
        assert_eq!(r.node.megaflows().len(), 2);
        assert_eq!(
            (s.megaflows_installed, s.flow_limit_hits, s.upcalls),
            (2, 3, 5)
        );
        // Uninstalled upcalls still credit their sinks (once per packet's own group).
        assert_eq!(sink4.packets.load(Ordering::Relaxed), 2);
    }

    /// 60-byte packets of `pool` whose keys have these (in_port, tp_dst) and nothing else.
    fn keyed(pool: &mut PacketPool, keys: &[(u32, u16)]) -> Vec<PacketId> {
        keys.iter()
            .map(|&(in_port, tp_dst)| {
                let id = pool.alloc_with(&[0; 60]).unwrap();
                let m = pool.meta_mut(id);
                m.key.in_port = in_port;
                m.key.tp_dst = tp_dst;
                m.hash = m.key.hash();
                id
            })
            .collect()
    }

    #[test]
    fn upcall_changing_generation_revalidates_mid_frame() {
        // Translating 99 "learns" something: bumps the generation and changes 80's port.
        struct Learning {
            inner: FakeUpcall,
        }
        impl Upcall for Learning {
            fn translate(&mut self, key: &FlowKey, now: u64) -> UpcallResult {
                if key.tp_dst == 99 && self.inner.ports.insert(80, 3) != Some(3) {
                    self.inner.generation += 1;
                }
                self.inner.translate(key, now)
            }
            fn generation(&self) -> u64 {
                self.inner.generation
            }
        }
        let mut node = Classify::new(
            Learning {
                inner: FakeUpcall::new(&[(80, 2), (99, 4)]),
            },
            Rig::always_emc(),
        );
        let mut pool = PacketPool::new(64);
        let mut tx = TxQueues::new(&[2, 3, 4]);
        let ids = keyed(&mut pool, &[(1, 80), (1, 99), (1, 80)]);
        let mut next = vec![Next::CONSUMED; 3];
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: 0,
        };
        node.process(&mut cx, &ids, &mut next);
        // The first packet went with the old decision, the last one with the new.
        assert_eq!(tx.queue(2).unwrap(), &vec![ids[0]]);
        assert_eq!(tx.queue(3).unwrap(), &vec![ids[2]]);
        assert_eq!(tx.queue(4).unwrap(), &vec![ids[1]]);
        let s = *node.stats();
        assert_eq!(
            (s.revalidations, s.revalidated_deleted, s.upcalls),
            (1, 1, 3)
        );
        assert_eq!(node.megaflows().len(), 2);
    }

    /// A MAC table of one source MAC, learned on the port of each packet translated (or
    /// re-translated as used), as NORMAL does; every packet goes out of port 3.
    struct Flapping {
        at: u32,
        learned: u64,
        config: u64,
        /// (in_port, used) of each re-translation.
        retranslated: Vec<(u32, bool)>,
    }

    impl Flapping {
        fn learn(&mut self, key: &FlowKey) -> UpcallResult {
            if self.at != key.in_port {
                self.at = key.in_port;
                self.learned += 1;
            }
            UpcallResult {
                rewritten: 0,
                actions: vec![DpAction::Output(3)],
                mask: FlowKey {
                    in_port: u32::MAX,
                    tp_dst: 0xffff,
                    ..FlowKey::default()
                },
                sinks: Vec::new(),
            }
        }
    }

    impl Upcall for Flapping {
        fn translate(&mut self, key: &FlowKey, _now_ns: u64) -> UpcallResult {
            self.learn(key)
        }
        fn retranslate(&mut self, key: &FlowKey, _now_ns: u64, used: bool) -> UpcallResult {
            self.retranslated.push((key.in_port, used));
            if used {
                return self.learn(key);
            }
            let at = self.at;
            let r = self.learn(key);
            (self.at, self.learned) = (at, self.learned - u64::from(at != key.in_port));
            r
        }
        fn generation(&self) -> u64 {
            self.learned + self.config
        }
        fn config_generation(&self) -> u64 {
            self.config
        }
    }

    fn flapping() -> Classify<Flapping> {
        let upcall = Flapping {
            at: 0,
            learned: 0,
            config: 0,
            retranslated: Vec::new(),
        };
        Classify::new(upcall, ClassifyConfig::default())
    }

    /// Runs one packet from each of `ports` (same tp_dst) through `node` at `now`.
    fn run_from(node: &mut Classify<Flapping>, ports: &[u32], now: u64) {
        let mut pool = PacketPool::new(16);
        let mut tx = TxQueues::new(&[3]);
        let keys: Vec<(u32, u16)> = ports.iter().map(|&p| (p, 80)).collect();
        let ids = keyed(&mut pool, &keys);
        let mut next = vec![Next::CONSUMED; ids.len()];
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: now,
        };
        node.process(&mut cx, &ids, &mut next);
        assert_eq!(tx.queue(3).map(Vec::len), Some(ids.len()));
    }

    #[test]
    fn a_mac_flapping_between_two_ports_costs_a_revalidation_per_backoff_not_per_frame() {
        let mut node = flapping();
        const MS: u64 = 1_000_000;
        // The MAC arrives on ports 1 and 2 in every frame: a loop. Each pass learns it on
        // both in turn, so each pass moves the generation.
        for frame in 0..200 {
            run_from(&mut node, &[1, 2], frame * MS);
        }
        let passes = node.stats().revalidations;
        // Two at the first frame's upcalls, then one per LEARN_BACKOFF_NS (100 ms): 2 + 2.
        assert!((3..=5).contains(&passes), "{passes} passes in 200 frames");
        // A rule change does not wait for the backoff: the next frame revalidates.
        run_from(&mut node, &[1, 2], 200 * MS);
        let before = node.stats().revalidations;
        node.upcall_mut().config += 1;
        run_from(&mut node, &[1, 2], 201 * MS);
        assert_eq!(node.stats().revalidations, before + 1);
    }

    #[test]
    fn a_megaflow_no_packet_used_since_the_last_pass_is_retranslated_as_unused() {
        let mut node = flapping();
        const MS: u64 = 1_000_000;
        // The MAC moves from port 1 to port 2; port 1's megaflow sees no packet after.
        run_from(&mut node, &[1], 0);
        run_from(&mut node, &[2], MS);
        node.upcall_mut().retranslated.clear();
        node.upcall_mut().config += 1;
        run_from(&mut node, &[2], 2 * MS);
        let mut seen = node.upcall().retranslated.clone();
        seen.sort_unstable();
        assert_eq!(seen, vec![(1, false), (2, true)]);
        // So the pass did not learn the MAC back on port 1.
        assert_eq!(node.upcall().at, 2);
    }

    #[test]
    fn recirculation_goes_back_to_classify() {
        let mut up = FakeUpcall::new(&[]);
        up.custom = Some(|k| UpcallResult {
            rewritten: 0,
            actions: if k.recirc_id == 0 {
                vec![DpAction::Recirc(7)]
            } else {
                vec![DpAction::Output(2)]
            },
            mask: FlowKey {
                recirc_id: u32::MAX,
                ..FlowKey::default()
            },
            sinks: Vec::new(),
        });
        let node = Classify::new(up, ClassifyConfig::default());
        assert_eq!(node.next_nodes(), &["classify"]);
        assert_eq!(node.drop_reasons(), &ExecDrop::NAMES);
        let mut g = Graph::new();
        let entry = g.add(Box::new(node)).unwrap();
        g.wire().unwrap();
        let mut pool = PacketPool::new(16);
        let mut tx = TxQueues::new(&[2]);
        let id = pool.alloc_with(&[0; 60]).unwrap();
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: 0,
        };
        g.dispatch(&mut cx, entry, &[id]);
        assert_eq!(tx.queue(2).map(|q| q.len()), Some(1));
        let c = g.node_as::<Classify<FakeUpcall>>(entry).unwrap();
        assert_eq!(c.stats().upcalls, 2);
        assert_eq!(c.stats().packets, 2);
        assert_eq!(
            c.dump_megaflows_text(0),
            vec![
                "recirc_id(0), packets:1, bytes:60, used:0.000s, actions:recirc(0x7)",
                "recirc_id(0x7), packets:1, bytes:60, used:0.000s, actions:2",
            ]
        );
    }

    #[test]
    fn config_validation_names_the_field() {
        assert_eq!(ClassifyConfig::default().validate(), Ok(()));
        let bad = ClassifyConfig {
            emc_entries: 1000,
            ..ClassifyConfig::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().starts_with("emc_entries"), "{err}");
    }

    #[test]
    fn stats_map_names() {
        let m = ClassifyStats {
            emc_hits: 3,
            ..ClassifyStats::default()
        }
        .to_map();
        assert_eq!(m.get("emc-hits"), Some(&3));
        assert_eq!(m.len(), 14);
    }
}
