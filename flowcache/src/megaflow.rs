//! The megaflow cache: tuple space search over masked keys, Open vSwitch's "dpcls".
//!
//! Megaflows with the same mask share a [`Subtable`]. A subtable knows which key words its mask
//! touches and stores, per entry, only those words (masked) in one flat arena, plus a
//! `hashbrown::HashTable` from the hash of those words to the entry. A lookup masks the packet
//! key's relevant words, hashes them and probes each subtable in rank order (most hits first,
//! re-ranked periodically). Megaflows live in a slab indexed by `u32`; each slot has a
//! generation that changes when the megaflow is deleted, which is what lets the exact-match
//! cache refer to megaflows without ever hitting a deleted or replaced one. Actions are
//! interned so that megaflows with equal actions share one `Arc<[DpAction]>`.

use std::sync::Arc;

use hashbrown::{HashSet, HashTable};
use pipeline::flowkey::{hash_words, KEY_WORDS};
use pipeline::{DpAction, FlowKey, RuleChange, StatsSink, UpcallResult};
use smallvec::SmallVec;

/// Megaflow index meaning "none".
pub const NO_FLOW: u32 = u32::MAX;

/// Subtable index of a free megaflow slot.
const NO_SUBTABLE: u32 = u32::MAX;

/// Most subtables (distinct masks) the cache holds; further masks are not installed.
pub const MAX_SUBTABLES: usize = 4096;

/// A rule change as one subtable tests its entries against it: `(entry word, value, mask, key
/// word)` for each word both the change and the subtable's mask constrain.
type ChangeTest = SmallVec<[(u8, u64, u64, u8); 8]>;

/// Most mask bits a rule change may leave free for a targeted revalidation to find its
/// megaflows by hash (2^this lookups) instead of testing every entry.
const PROBE_FREE_BITS: usize = 4;

/// Lookups between two re-rankings of the subtables (besides the periodic re-rank).
const RERANK_LOOKUPS: u32 = 1 << 16;

/// Traffic counters of one megaflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MegaflowStats {
    pub packets: u64,
    pub bytes: u64,
    /// OR of the TCP flags of every packet.
    pub tcp_flags: u16,
    /// Install time (ns on the pipeline clock).
    pub first_used_ns: u64,
    /// Last time a packet used it (install time until then).
    pub last_used_ns: u64,
}

/// One megaflow as `dump-megaflows` shows it.
#[derive(Clone)]
pub struct MegaflowInfo {
    /// Slab index (also `PacketMeta::flow_ref` of its packets).
    pub index: u32,
    /// The key with only the mask's bits kept.
    pub key: FlowKey,
    pub mask: FlowKey,
    pub actions: Arc<[DpAction]>,
    pub stats: MegaflowStats,
}

impl std::fmt::Debug for MegaflowInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MegaflowInfo")
            .field("index", &self.index)
            .field("actions", &self.actions)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Why an install was refused (the caller then executes the actions without caching them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallRefused {
    /// The cache holds `flow_limit` megaflows.
    FlowLimit,
    /// The mask would need a subtable beyond [`MAX_SUBTABLES`].
    TooManySubtables,
}

struct Megaflow {
    actions: Arc<[DpAction]>,
    sinks: Box<[Arc<dyn StatsSink>]>,
    /// Whether the sinks are credited with every batch ([`StatsSink::deferrable`] is false
    /// for one of them); else they get what `stats` gained since the last
    /// [`MegaflowCache::push_stats`].
    immediate: bool,
    stats: MegaflowStats,
    /// The packets and bytes of `stats` the sinks have been credited with.
    pushed_packets: u64,
    pushed_bytes: u64,
    /// TCP flags since the last push.
    pending_flags: u16,
    /// On the cache's `dirty` list: credited since the last push.
    dirty: bool,
    generation: u32,
    /// Owning subtable, or [`NO_SUBTABLE`] when the slot is free or deleted.
    subtable: u32,
    /// Entry index inside the subtable.
    pos: u32,
    /// [`UpcallResult::rewritten`] of its translation.
    rewritten: u32,
}

impl Megaflow {
    /// Credits the sinks with what `stats` gained since the last push.
    #[inline]
    fn push(&mut self) {
        let packets = self.stats.packets - self.pushed_packets;
        if packets != 0 {
            let bytes = self.stats.bytes - self.pushed_bytes;
            for s in self.sinks.iter() {
                s.credit(packets, bytes, self.pending_flags, self.stats.last_used_ns);
            }
            self.pushed_packets = self.stats.packets;
            self.pushed_bytes = self.stats.bytes;
            self.pending_flags = 0;
        }
        self.dirty = false;
    }
}

/// All megaflows of one mask.
struct Subtable {
    mask: FlowKey,
    /// Key word indices the mask touches, and the mask's value there.
    idx: SmallVec<[u8; KEY_WORDS]>,
    mwords: SmallVec<[u64; KEY_WORDS]>,
    /// The same as `(word index, mask word)` pairs in one slice, for the lookup loop.
    pairs: Box<[(u32, u64)]>,
    /// Masked words of every entry, `idx.len()` per entry.
    arena: Vec<u64>,
    /// Megaflow index of every entry.
    owners: Vec<u32>,
    /// `(hash of the entry's words, entry index)`.
    table: HashTable<(u32, u32)>,
    /// Hits since the last re-rank.
    hits: u64,
    /// Where the mask has `recirc_id` bits: the entry word and those bits.
    recirc: Option<(usize, u64)>,
    /// Entries with a recirculation id (not 0).
    recirc_entries: u32,
}

/// Makes room for `more` elements, growing by a quarter instead of doubling: the slab and
/// the arenas are most of the cache's memory, and doubling would leave up to half unused.
/// Still amortised O(1) per push.
fn reserve_quarter<T>(v: &mut Vec<T>, more: usize) {
    if v.capacity() - v.len() < more {
        v.reserve_exact((v.len() / 4).max(more * 16));
    }
}

/// Spreads a 32-bit hash over 64 bits: hashbrown takes its tag from the top bits.
#[inline(always)]
fn spread(h: u32) -> u64 {
    (h as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Subtable {
    fn new(mask: &FlowKey) -> Subtable {
        let mut idx = SmallVec::new();
        let mut mwords = SmallVec::new();
        for (i, &w) in mask.words().iter().enumerate() {
            if w != 0 {
                idx.push(i as u8);
                mwords.push(w);
            }
        }
        let pairs = idx
            .iter()
            .zip(mwords.iter())
            .map(|(&i, &m)| (i as u32, m))
            .collect();
        let recirc_word = FlowKey {
            recirc_id: u32::MAX,
            ..FlowKey::default()
        };
        let recirc = recirc_word
            .words()
            .iter()
            .enumerate()
            .find_map(|(i, &bits)| {
                let j = idx.iter().position(|&w| usize::from(w) == i)?;
                let m = bits & mwords.get(j)?;
                (m != 0).then_some((j, m))
            });
        Subtable {
            mask: *mask,
            idx,
            mwords,
            pairs,
            arena: Vec::new(),
            owners: Vec::new(),
            table: HashTable::new(),
            hits: 0,
            recirc,
            recirc_entries: 0,
        }
    }

    /// Whether entry `e` has a recirculation id.
    fn recirculated(&self, e: u32) -> bool {
        self.recirc
            .is_some_and(|(j, m)| self.entry_words(e).get(j).is_some_and(|&w| w & m != 0))
    }

    /// Gathers the masked words of `key` into `buf`; returns how many.
    #[inline(always)]
    fn gather(&self, key: &FlowKey, buf: &mut [u64; KEY_WORDS]) -> usize {
        let kw = key.words();
        for ((b, &i), &m) in buf.iter_mut().zip(&self.idx).zip(&self.mwords) {
            *b = kw.get(i as usize).copied().unwrap_or(0) & m;
        }
        self.idx.len()
    }

    #[inline(always)]
    fn entry_words(&self, e: u32) -> &[u64] {
        let n = self.idx.len();
        let s = e as usize * n;
        self.arena.get(s..s + n).unwrap_or(&[])
    }

    /// The megaflow whose masked key equals `key & mask`. Hashes while gathering and
    /// compares the entry's words against the key in place: no intermediate buffer.
    #[inline(always)]
    fn lookup(&self, key: &FlowKey) -> Option<u32> {
        let kw = key.words();
        let pairs = &self.pairs;
        let h = hash_words(
            pairs
                .iter()
                .map(|&(i, m)| kw.get(i as usize).copied().unwrap_or(0) & m),
        );
        let n = pairs.len();
        let arena = &self.arena;
        let &(_, e) = self.table.find(spread(h), |&(eh, e)| {
            let s = e as usize * n;
            eh == h
                && arena.get(s..s + n).is_some_and(|stored| {
                    stored
                        .iter()
                        .zip(pairs.iter())
                        .all(|(&w, &(i, m))| w == kw.get(i as usize).copied().unwrap_or(0) & m)
                })
        })?;
        self.owners.get(e as usize).copied()
    }

    /// Adds an entry for `key & mask` owned by megaflow `flow`; returns its entry index.
    fn insert(&mut self, key: &FlowKey, flow: u32) -> u32 {
        let mut buf = [0u64; KEY_WORDS];
        let n = self.gather(key, &mut buf);
        let words = buf.get(..n).unwrap_or(&[]);
        let h = hash_words(words.iter().copied());
        let e = self.owners.len() as u32;
        reserve_quarter(&mut self.arena, n);
        reserve_quarter(&mut self.owners, 1);
        self.arena.extend_from_slice(words);
        self.owners.push(flow);
        self.table
            .insert_unique(spread(h), (h, e), |&(h, _)| spread(h));
        if self.recirculated(e) {
            self.recirc_entries += 1;
        }
        e
    }

    /// Removes entry `e`; the last entry moves into its place. Returns the megaflow that moved
    /// (its new position is `e`), if any.
    fn remove(&mut self, e: u32) -> Option<u32> {
        if self.recirculated(e) {
            self.recirc_entries = self.recirc_entries.saturating_sub(1);
        }
        let h = hash_words(self.entry_words(e).iter().copied());
        if let Ok(entry) = self.table.find_entry(spread(h), |&(_, x)| x == e) {
            entry.remove();
        }
        let last = (self.owners.len() as u32).checked_sub(1)?;
        let n = self.idx.len();
        let moved = if e != last {
            let lh = hash_words(self.entry_words(last).iter().copied());
            if let Some(slot) = self.table.find_mut(spread(lh), |&(_, x)| x == last) {
                slot.1 = e;
            }
            let (es, ls) = (e as usize * n, last as usize * n);
            self.arena.copy_within(ls..ls + n, es);
            let owner = self.owners.get(last as usize).copied();
            if let (Some(o), Some(dst)) = (owner, self.owners.get_mut(e as usize)) {
                *dst = o;
            }
            owner
        } else {
            None
        };
        self.arena.truncate(last as usize * n);
        self.owners.truncate(last as usize);
        moved
    }

    /// `change` as this subtable tests its entries one by one.
    fn change_test(&self, change: &RuleChange) -> ChangeTest {
        let (cv, cm) = (change.value.words(), change.mask.words());
        self.idx
            .iter()
            .zip(&self.mwords)
            .enumerate()
            .filter_map(|(j, (&w, &m))| {
                let both = cm.get(usize::from(w)).copied().unwrap_or(0) & m;
                let v = cv.get(usize::from(w)).copied().unwrap_or(0) & both;
                (both != 0).then_some((j as u8, v, both, w))
            })
            .collect()
    }

    /// Pushes onto `picked` the entries `change` may match, found by hash, and returns true,
    /// when the change constrains every bit of the mask but at most [`PROBE_FREE_BITS`]
    /// (the recirculation id counts as constrained to 0 while no entry has one): one lookup
    /// per value of those bits. False (nothing pushed) otherwise.
    fn probe(&self, change: &RuleChange, picked: &mut Vec<u32>) -> bool {
        let cm = change.mask.words();
        let mut free: SmallVec<[(usize, u64); PROBE_FREE_BITS]> = SmallVec::new();
        for (j, (&w, &m)) in self.idx.iter().zip(&self.mwords).enumerate() {
            let mut bits = m & !cm.get(usize::from(w)).copied().unwrap_or(0);
            if let Some((rj, rm)) = self.recirc.filter(|_| self.recirc_entries == 0) {
                if rj == j {
                    bits &= !rm;
                }
            }
            while bits != 0 {
                if free.len() == PROBE_FREE_BITS {
                    return false;
                }
                let bit = bits & bits.wrapping_neg();
                free.push((usize::from(w), bit));
                bits &= !bit;
            }
        }
        let mut key = change.value;
        for combo in 0..1u32 << free.len() {
            let kw = key.words_mut();
            for (b, &(w, bit)) in free.iter().enumerate() {
                if let Some(d) = kw.get_mut(w) {
                    if combo & 1 << b != 0 {
                        *d |= bit;
                    } else {
                        *d &= !bit;
                    }
                }
            }
            if let Some(owner) = self.lookup(&key) {
                picked.push(owner);
            }
        }
        true
    }

    /// The stored masked key of entry `e` as a whole key.
    fn masked_key(&self, e: u32) -> FlowKey {
        let mut k = FlowKey::default();
        let kw = k.words_mut();
        for (&i, &w) in self.idx.iter().zip(self.entry_words(e)) {
            if let Some(d) = kw.get_mut(i as usize) {
                *d = w;
            }
        }
        k
    }

    fn heap_bytes(&self) -> usize {
        let spilled = |inline: bool, bytes: usize| if inline { 0 } else { bytes };
        self.arena.capacity() * 8
            + self.owners.capacity() * 4
            + self.table.allocation_size()
            + spilled(!self.idx.spilled(), self.idx.capacity())
            + spilled(!self.mwords.spilled(), self.mwords.capacity() * 8)
            + self.pairs.len() * 16
    }
}

/// Result of one megaflow lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The megaflow, or [`NO_FLOW`].
    pub flow: u32,
    /// Subtables probed.
    pub probes: u32,
}

/// The megaflow cache of one PMD.
pub struct MegaflowCache {
    flows: Vec<Megaflow>,
    free: Vec<u32>,
    /// Megaflows whose deferred sinks are owed a credit (an index may be stale: its
    /// megaflow's `dirty` says).
    dirty: Vec<u32>,
    /// Deleted slots not yet reusable: packets of the current batch may still refer to them.
    deferred: Vec<u32>,
    live: usize,
    subtables: Vec<Option<Subtable>>,
    free_subtables: Vec<u32>,
    /// Live subtable indices, most hits first.
    order: Vec<u32>,
    interned: HashSet<Arc<[DpAction]>>,
    empty_actions: Arc<[DpAction]>,
    lookups_since_rank: u32,
    flow_limit: usize,
    /// OR of the `rewritten` words of the megaflows since the last full revalidation (a
    /// superset of the live ones'): without any, a targeted revalidation reads no megaflow.
    rewritten_any: u32,
}

impl MegaflowCache {
    /// An empty cache that installs at most `flow_limit` megaflows.
    pub fn new(flow_limit: usize) -> MegaflowCache {
        let empty_actions: Arc<[DpAction]> = Arc::from(Vec::new());
        MegaflowCache {
            flows: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            deferred: Vec::new(),
            live: 0,
            rewritten_any: 0,
            subtables: Vec::new(),
            free_subtables: Vec::new(),
            order: Vec::new(),
            interned: HashSet::new(),
            empty_actions,
            lookups_since_rank: 0,
            flow_limit,
        }
    }

    /// Live megaflows.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Live subtables (distinct masks).
    pub fn subtable_count(&self) -> usize {
        self.order.len()
    }

    /// Size of the slab (an upper bound of every megaflow index + 1).
    pub fn slots(&self) -> usize {
        self.flows.len()
    }

    /// Changes the flow limit; existing megaflows stay.
    pub fn set_flow_limit(&mut self, limit: usize) {
        self.flow_limit = limit;
    }

    /// True while megaflow `flow` exists with generation `generation`.
    #[inline(always)]
    pub fn is_current(&self, flow: u32, generation: u32) -> bool {
        self.flows
            .get(flow as usize)
            .is_some_and(|f| f.generation == generation && f.subtable != NO_SUBTABLE)
    }

    /// Generation of slot `flow` (0 for an index out of range).
    #[inline(always)]
    pub fn generation(&self, flow: u32) -> u32 {
        self.flows.get(flow as usize).map_or(0, |f| f.generation)
    }

    /// The actions of megaflow `flow` (empty for an index out of range). A deleted megaflow
    /// keeps its actions until [`MegaflowCache::release_deferred`].
    #[inline(always)]
    pub fn actions(&self, flow: u32) -> &Arc<[DpAction]> {
        self.flows
            .get(flow as usize)
            .map_or(&self.empty_actions, |f| &f.actions)
    }

    /// Stats of megaflow `flow`.
    pub fn stats(&self, flow: u32) -> Option<MegaflowStats> {
        self.flows
            .get(flow as usize)
            .filter(|f| f.subtable != NO_SUBTABLE)
            .map(|f| f.stats)
    }

    /// Finds the megaflow matching `key`, probing subtables in rank order.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Lookup {
        self.lookups_since_rank = self.lookups_since_rank.wrapping_add(1);
        if self.lookups_since_rank >= RERANK_LOOKUPS {
            self.rerank();
        }
        let mut probes = 0;
        for &s in &self.order {
            probes += 1;
            if let Some(Some(st)) = self.subtables.get_mut(s as usize) {
                if let Some(flow) = st.lookup(key) {
                    st.hits += 1;
                    return Lookup { flow, probes };
                }
            }
        }
        Lookup {
            flow: NO_FLOW,
            probes,
        }
    }

    /// Sorts the subtables by hits since the last re-rank (most first) and restarts counting.
    pub fn rerank(&mut self) {
        self.lookups_since_rank = 0;
        let subtables = &self.subtables;
        let hits = |s: &u32| {
            subtables
                .get(*s as usize)
                .and_then(|s| s.as_ref())
                .map_or(0, |s| s.hits)
        };
        self.order.sort_by_key(|s| std::cmp::Reverse(hits(s)));
        for st in self.subtables.iter_mut().flatten() {
            st.hits = 0;
        }
    }

    /// Shares one allocation between megaflows with equal actions.
    fn intern(&mut self, actions: &[DpAction]) -> Arc<[DpAction]> {
        if actions.is_empty() {
            return self.empty_actions.clone();
        }
        if let Some(a) = self.interned.get(actions) {
            return a.clone();
        }
        let a: Arc<[DpAction]> = Arc::from(actions);
        self.interned.insert(a.clone());
        a
    }

    /// Subtable index for `mask`, created if needed.
    fn subtable_for(&mut self, mask: &FlowKey) -> Result<u32, InstallRefused> {
        for &s in &self.order {
            if let Some(Some(st)) = self.subtables.get(s as usize) {
                if st.mask.words() == mask.words() {
                    return Ok(s);
                }
            }
        }
        if self.order.len() >= MAX_SUBTABLES {
            return Err(InstallRefused::TooManySubtables);
        }
        let st = Some(Subtable::new(mask));
        let s = match self.free_subtables.pop() {
            Some(s) => {
                if let Some(slot) = self.subtables.get_mut(s as usize) {
                    *slot = st;
                }
                s
            }
            None => {
                self.subtables.push(st);
                (self.subtables.len() - 1) as u32
            }
        };
        // A new mask starts last; re-ranking moves it up once it earns hits.
        self.order.push(s);
        Ok(s)
    }

    /// Installs a megaflow for `key` under `mask` with these actions and sinks, first and last
    /// used at `now_ns`. A megaflow with the same masked key and mask is returned as it is.
    pub fn insert(
        &mut self,
        key: &FlowKey,
        mask: &FlowKey,
        actions: &[DpAction],
        sinks: &[Arc<dyn StatsSink>],
        now_ns: u64,
    ) -> Result<u32, InstallRefused> {
        if self.live >= self.flow_limit {
            return Err(InstallRefused::FlowLimit);
        }
        let s = self.subtable_for(mask)?;
        let actions = self.intern(actions);
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                reserve_quarter(&mut self.flows, 1);
                self.flows.push(Megaflow {
                    actions: self.empty_actions.clone(),
                    sinks: Box::new([]),
                    immediate: false,
                    stats: MegaflowStats::default(),
                    pushed_packets: 0,
                    pushed_bytes: 0,
                    pending_flags: 0,
                    dirty: false,
                    generation: 0,
                    subtable: NO_SUBTABLE,
                    pos: 0,
                    rewritten: 0,
                });
                (self.flows.len() - 1) as u32
            }
        };
        let Some(Some(st)) = self.subtables.get_mut(s as usize) else {
            self.free.push(index);
            return Err(InstallRefused::TooManySubtables);
        };
        if let Some(existing) = st.lookup(key) {
            self.free.push(index);
            return Ok(existing);
        }
        let pos = st.insert(key, index);
        if let Some(f) = self.flows.get_mut(index as usize) {
            f.actions = actions;
            f.sinks = sinks.into();
            f.immediate = sinks.iter().any(|s| !s.deferrable());
            f.stats = MegaflowStats {
                first_used_ns: now_ns,
                last_used_ns: now_ns,
                ..MegaflowStats::default()
            };
            f.pushed_packets = 0;
            f.pushed_bytes = 0;
            f.pending_flags = 0;
            f.dirty = false;
            f.subtable = s;
            f.pos = pos;
            f.rewritten = 0;
        }
        self.live += 1;
        Ok(index)
    }

    /// Deletes megaflow `flow`: it stops matching at once and its generation changes; its
    /// slot (with its actions) stays readable until [`MegaflowCache::release_deferred`].
    pub fn remove(&mut self, flow: u32) -> bool {
        let Some(f) = self.flows.get_mut(flow as usize) else {
            return false;
        };
        if f.subtable == NO_SUBTABLE {
            return false;
        }
        let (s, pos) = (f.subtable, f.pos);
        f.subtable = NO_SUBTABLE;
        f.generation = f.generation.wrapping_add(1);
        self.live -= 1;
        self.deferred.push(flow);
        let mut now_empty = false;
        if let Some(Some(st)) = self.subtables.get_mut(s as usize) {
            if let Some(moved) = st.remove(pos) {
                if let Some(m) = self.flows.get_mut(moved as usize) {
                    m.pos = pos;
                }
            }
            now_empty = st.owners.is_empty();
        }
        if now_empty {
            if let Some(slot) = self.subtables.get_mut(s as usize) {
                *slot = None;
            }
            self.order.retain(|&x| x != s);
            self.free_subtables.push(s);
        }
        true
    }

    /// Makes the slots of deleted megaflows reusable and drops their actions and sinks. Call
    /// when no packet refers to them any more (at the end of a batch).
    pub fn release_deferred(&mut self) {
        for i in self.deferred.drain(..) {
            if let Some(f) = self.flows.get_mut(i as usize) {
                f.push();
                f.actions = self.empty_actions.clone();
                f.sinks = Box::new([]);
                self.free.push(i);
            }
        }
    }

    /// Pushes onto `out` the recirculation ids the live megaflows' actions send packets to
    /// (repeats possible).
    pub fn recirc_ids(&self, out: &mut Vec<u32>) {
        for a in self.interned.iter().filter(|a| Arc::strong_count(a) > 1) {
            DpAction::recirc_ids(a, out);
        }
    }

    /// Drops interned actions no megaflow uses any more.
    pub fn prune_interned(&mut self) {
        self.interned.retain(|a| Arc::strong_count(a) > 1);
    }

    /// Credits one batch's packets of megaflow `flow` (live or deleted in this batch). Its
    /// sinks get them now when one of them cannot wait, else at the next
    /// [`MegaflowCache::push_stats`] (or when the megaflow goes or takes other sinks), as
    /// Open vSwitch's revalidators push megaflow stats to rules through the xlate cache:
    /// with many megaflows, the sinks' atomic counters per batch were most of the cost.
    #[inline]
    pub fn credit(&mut self, flow: u32, packets: u64, bytes: u64, tcp_flags: u16, now_ns: u64) {
        if let Some(f) = self.flows.get_mut(flow as usize) {
            f.stats.packets += packets;
            f.stats.bytes += bytes;
            f.stats.tcp_flags |= tcp_flags;
            f.stats.last_used_ns = f.stats.last_used_ns.max(now_ns);
            f.pending_flags |= tcp_flags;
            if f.immediate {
                f.push();
            } else if !f.dirty {
                f.dirty = true;
                self.dirty.push(flow);
            }
        }
    }

    /// Credits every megaflow's sinks with what it counted since they last were.
    pub fn push_stats(&mut self) {
        for i in self.dirty.drain(..) {
            if let Some(f) = self.flows.get_mut(i as usize) {
                f.push();
            }
        }
    }

    /// Live megaflow indices, in slab order.
    fn live_indices(&self) -> Vec<u32> {
        self.flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.subtable != NO_SUBTABLE)
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Masked key and mask of live megaflow `flow`.
    pub fn key_and_mask(&self, flow: u32) -> Option<(FlowKey, FlowKey)> {
        let f = self.flows.get(flow as usize)?;
        let st = self.subtables.get(f.subtable as usize)?.as_ref()?;
        Some((st.masked_key(f.pos), st.mask))
    }

    /// Deletes every megaflow unused since `now_ns - idle_ns`; returns how many.
    pub fn sweep_idle(&mut self, now_ns: u64, idle_ns: u64) -> usize {
        let idle: Vec<u32> = self
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.subtable != NO_SUBTABLE && now_ns.saturating_sub(f.stats.last_used_ns) >= idle_ns
            })
            .map(|(i, _)| i as u32)
            .collect();
        for &i in &idle {
            self.remove(i);
        }
        idle.len()
    }

    /// Records which key words the translation of live megaflow `flow` rewrote before a lookup
    /// ([`UpcallResult::rewritten`]), for [`MegaflowCache::revalidate_matching`].
    pub fn set_rewritten(&mut self, flow: u32, rewritten: u32) {
        if let Some(f) = self.flows.get_mut(flow as usize) {
            f.rewritten = rewritten;
            self.rewritten_any |= rewritten;
        }
    }

    /// Re-translates every megaflow's masked key with `translate`, which also gets the time a
    /// packet last used the megaflow; keeps a megaflow (taking the new sinks) when the actions
    /// and the mask come out equal and deletes it otherwise. Returns how many were deleted.
    pub fn revalidate(&mut self, translate: impl FnMut(&FlowKey, u64) -> UpcallResult) -> usize {
        let all = self.live_indices();
        self.rewritten_any = 0;
        self.revalidate_flows(&all, translate)
    }

    /// [`MegaflowCache::revalidate`] of only the megaflows that one of `changes` may match
    /// ([`RuleChange::may_match`]): no other translation can come out differently. Returns
    /// how many were re-translated and how many of those were deleted.
    ///
    /// In a subtable whose mask the change constrains but for a few bits (a rule as specific
    /// as the megaflows, like a controller's answer to a packet-in), the candidates are
    /// looked up by hash, one probe per value of those bits; otherwise every entry is tested.
    pub fn revalidate_matching(
        &mut self,
        changes: &[RuleChange],
        translate: impl FnMut(&FlowKey, u64) -> UpcallResult,
    ) -> (usize, usize) {
        let mut picked = Vec::new();
        // Per subtable, the changes it must test entry by entry. An entry is out when a
        // word of the test differs in a word its translation did not rewrite.
        let mut tests: Vec<ChangeTest> = Vec::new();
        for st in self.subtables.iter().flatten() {
            let words = st.mask.nonzero_words();
            let probe = self.rewritten_any & words == 0;
            tests.clear();
            for c in changes {
                if !(probe && st.probe(c, &mut picked)) {
                    tests.push(st.change_test(c));
                }
            }
            if tests.is_empty() {
                continue;
            }
            let n = st.idx.len();
            for (e, &owner) in st.owners.iter().enumerate() {
                let words = st.arena.get(e * n..(e + 1) * n).unwrap_or(&[]);
                let rewritten = match self.rewritten_any {
                    0 => 0,
                    _ => self
                        .flows
                        .get(owner as usize)
                        .map_or(u32::MAX, |f| f.rewritten),
                };
                let may_match = tests.iter().any(|t| {
                    t.iter().all(|&(j, v, m, w)| {
                        rewritten & (1 << w) != 0
                            || words.get(usize::from(j)).is_none_or(|&k| k & m == v)
                    })
                });
                if may_match {
                    picked.push(owner);
                }
            }
        }
        picked.sort_unstable();
        picked.dedup();
        let deleted = self.revalidate_flows(&picked, translate);
        (picked.len(), deleted)
    }

    fn revalidate_flows(
        &mut self,
        flows: &[u32],
        mut translate: impl FnMut(&FlowKey, u64) -> UpcallResult,
    ) -> usize {
        let mut deleted = 0;
        for &i in flows {
            let Some((key, mask)) = self.key_and_mask(i) else {
                continue;
            };
            let last_used_ns = self
                .flows
                .get(i as usize)
                .map_or(0, |f| f.stats.last_used_ns);
            let r = translate(&key, last_used_ns);
            let keep = r.mask.words() == mask.words() && *r.actions == **self.actions(i);
            if keep {
                if let Some(f) = self.flows.get_mut(i as usize) {
                    // What the old sinks are owed goes to them, not to the new ones.
                    f.push();
                    f.immediate = r.sinks.iter().any(|s| !s.deferrable());
                    f.sinks = r.sinks.into();
                    f.rewritten = r.rewritten;
                    self.rewritten_any |= r.rewritten;
                }
            } else {
                self.remove(i);
                deleted += 1;
            }
        }
        deleted
    }

    /// Deletes every megaflow; returns how many.
    pub fn flush(&mut self) -> usize {
        let all = self.live_indices();
        for &i in &all {
            self.remove(i);
        }
        all.len()
    }

    /// Every live megaflow with its masked key, mask, actions and stats, in slab order.
    pub fn dump(&self) -> Vec<MegaflowInfo> {
        self.live_indices()
            .into_iter()
            .filter_map(|i| {
                let f = self.flows.get(i as usize)?;
                let (key, mask) = self.key_and_mask(i)?;
                Some(MegaflowInfo {
                    index: i,
                    key,
                    mask,
                    actions: f.actions.clone(),
                    stats: f.stats,
                })
            })
            .collect()
    }

    /// Heap bytes held by the cache: the slab, free lists, subtables (arena, owners, hash
    /// table, subtable structs) and the interned actions. Counted from capacities, so it
    /// includes growth slack; sinks' own objects are not counted (they belong to the rules).
    pub fn heap_bytes(&self) -> usize {
        let action_bytes: usize = self
            .interned
            .iter()
            .map(|a| 16 + std::mem::size_of_val::<[DpAction]>(a))
            .sum();
        let sink_bytes: usize = self
            .flows
            .iter()
            .map(|f| std::mem::size_of_val::<[Arc<dyn StatsSink>]>(&f.sinks))
            .sum();
        self.flows.capacity() * std::mem::size_of::<Megaflow>()
            + (self.free.capacity() + self.deferred.capacity() + self.order.capacity()) * 4
            + self.free_subtables.capacity() * 4
            + self.subtables.capacity() * std::mem::size_of::<Option<Subtable>>()
            + self
                .subtables
                .iter()
                .flatten()
                .map(Subtable::heap_bytes)
                .sum::<usize>()
            + self.interned.allocation_size()
            + action_bytes
            + sink_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(in_port: u32, nw_dst: u32, tp_dst: u16) -> FlowKey {
        FlowKey {
            in_port,
            dl_type: 0x0800,
            nw_dst,
            tp_dst,
            nw_proto: 6,
            tp_src: 1234,
            ..FlowKey::default()
        }
    }

    fn mask_port_dst() -> FlowKey {
        FlowKey {
            in_port: u32::MAX,
            dl_type: 0xffff,
            nw_dst: 0xffff_ff00,
            ..FlowKey::default()
        }
    }

    fn mask_tp() -> FlowKey {
        FlowKey {
            tp_dst: 0xffff,
            ..FlowKey::default()
        }
    }

    #[test]
    fn lookup_respects_masks_and_subtables() {
        let mut c = MegaflowCache::new(100);
        let a = c
            .insert(
                &key(1, 0x0a00_0001, 80),
                &mask_port_dst(),
                &[DpAction::Output(2)],
                &[],
                5,
            )
            .unwrap();
        let b = c
            .insert(&key(9, 0, 53), &mask_tp(), &[DpAction::Output(3)], &[], 5)
            .unwrap();
        assert_eq!(c.subtable_count(), 2);
        // Same /24, other host and port: megaflow a.
        assert_eq!(c.lookup(&key(1, 0x0a00_00fe, 443)).flow, a);
        // Other in_port: not a; tp_dst 53 catches it in the second subtable.
        let l = c.lookup(&key(2, 0x0a00_0001, 53));
        assert_eq!((l.flow, l.probes), (b, 2));
        assert_eq!(c.lookup(&key(2, 0x0a00_0001, 54)).flow, NO_FLOW);
        // Equal mask reuses the subtable.
        c.insert(
            &key(2, 0x0b00_0000, 0),
            &mask_port_dst(),
            &[DpAction::Output(2)],
            &[],
            5,
        )
        .unwrap();
        assert_eq!(c.subtable_count(), 2);
        assert_eq!(c.len(), 3);
        // Equal actions share one allocation.
        assert!(Arc::ptr_eq(c.actions(a), c.actions(2)));
        let (k, m) = c.key_and_mask(a).unwrap();
        assert_eq!(k.nw_dst, 0x0a00_0000);
        assert_eq!(k.tp_dst, 0);
        assert_eq!(m, mask_port_dst());
    }

    #[test]
    fn remove_moves_last_entry_and_bumps_generation() {
        let mut c = MegaflowCache::new(100);
        let ids: Vec<u32> = (0..10)
            .map(|i| {
                c.insert(
                    &key(1, i << 8, 0),
                    &mask_port_dst(),
                    &[DpAction::Output(i)],
                    &[],
                    0,
                )
                .unwrap()
            })
            .collect();
        let g = c.generation(ids[3]);
        assert!(c.remove(ids[3]));
        assert!(!c.remove(ids[3]));
        assert!(!c.is_current(ids[3], g));
        assert_eq!(c.lookup(&key(1, 3 << 8, 0)).flow, NO_FLOW);
        for (i, &id) in ids.iter().enumerate() {
            if i != 3 {
                assert_eq!(c.lookup(&key(1, (i as u32) << 8, 0)).flow, id, "flow {i}");
                assert!(c.is_current(id, c.generation(id)));
            }
        }
        // The deleted slot keeps its actions until released, then is reused.
        assert_eq!(&**c.actions(ids[3]), &[DpAction::Output(3)]);
        let n = c
            .insert(&key(1, 99 << 8, 0), &mask_port_dst(), &[], &[], 0)
            .unwrap();
        assert_ne!(n, ids[3]);
        c.release_deferred();
        let n = c
            .insert(&key(1, 98 << 8, 0), &mask_port_dst(), &[], &[], 0)
            .unwrap();
        assert_eq!(n, ids[3]);
        assert_ne!(c.generation(n), g);
    }

    #[test]
    fn empty_subtable_is_dropped() {
        let mut c = MegaflowCache::new(100);
        let a = c.insert(&key(1, 0, 0), &mask_tp(), &[], &[], 0).unwrap();
        assert_eq!(c.subtable_count(), 1);
        c.remove(a);
        assert_eq!(c.subtable_count(), 0);
        assert_eq!(c.lookup(&key(1, 0, 0)).probes, 0);
    }

    #[test]
    fn flow_limit_refuses() {
        let mut c = MegaflowCache::new(2);
        c.insert(&key(1, 0, 1), &mask_tp(), &[], &[], 0).unwrap();
        c.insert(&key(1, 0, 2), &mask_tp(), &[], &[], 0).unwrap();
        assert_eq!(
            c.insert(&key(1, 0, 3), &mask_tp(), &[], &[], 0),
            Err(InstallRefused::FlowLimit)
        );
    }

    #[test]
    fn rerank_puts_busy_subtable_first() {
        let mut c = MegaflowCache::new(100);
        c.insert(&key(1, 0, 0), &mask_port_dst(), &[], &[], 0)
            .unwrap();
        c.insert(&key(9, 0, 53), &mask_tp(), &[], &[], 0).unwrap();
        for _ in 0..5 {
            assert_eq!(c.lookup(&key(7, 0, 53)).probes, 2);
        }
        c.rerank();
        assert_eq!(c.lookup(&key(7, 0, 53)).probes, 1);
    }

    #[test]
    fn sweep_and_credit() {
        let mut c = MegaflowCache::new(100);
        let a = c.insert(&key(1, 0, 1), &mask_tp(), &[], &[], 0).unwrap();
        let b = c.insert(&key(1, 0, 2), &mask_tp(), &[], &[], 0).unwrap();
        c.credit(b, 3, 300, 0x12, 5_000);
        assert_eq!(c.sweep_idle(9_000, 5_000), 1);
        assert_eq!(c.stats(a), None);
        let s = c.stats(b).unwrap();
        assert_eq!(
            (s.packets, s.bytes, s.tcp_flags, s.last_used_ns),
            (3, 300, 0x12, 5_000)
        );
    }

    #[test]
    fn many_entries_survive_growth_and_removal() {
        let mut c = MegaflowCache::new(100_000);
        let ids: Vec<u32> = (0..5000u32)
            .map(|i| {
                c.insert(&key(i % 7, i << 8, 0), &mask_port_dst(), &[], &[], 0)
                    .unwrap()
            })
            .collect();
        for (i, &id) in ids.iter().enumerate().filter(|(i, _)| i.is_multiple_of(3)) {
            assert!(c.remove(id), "{i}");
        }
        for (i, &id) in ids.iter().enumerate() {
            let i = i as u32;
            let want = if i.is_multiple_of(3) { NO_FLOW } else { id };
            assert_eq!(c.lookup(&key(i % 7, i << 8, 0)).flow, want);
        }
        assert_eq!(c.dump().len(), c.len());
    }

    /// The memory target: at most 200 heap bytes per megaflow (10k flows in 5 subtables with
    /// realistic 5-tuple-ish masks, every flow its own output port: no sharing of actions).
    #[test]
    fn heap_per_megaflow_is_within_budget() {
        let mut c = MegaflowCache::new(1_000_000);
        for j in 0..10_000u32 {
            let s = j % 5;
            let mask = FlowKey {
                in_port: u32::MAX,
                dl_type: 0xffff,
                nw_src: u32::MAX,
                nw_dst: !(u32::MAX >> (s + 8)),
                nw_proto: 0xff,
                tp_dst: if s % 2 == 1 { 0xffff } else { 0 },
                ..FlowKey::default()
            };
            let k = FlowKey {
                in_port: 1,
                dl_type: 0x0800,
                nw_src: j,
                nw_dst: j.wrapping_mul(2_654_435_761),
                nw_proto: 6,
                tp_dst: j as u16,
                ..FlowKey::default()
            };
            c.insert(&k, &mask, &[DpAction::Output(j % 64)], &[], 0)
                .unwrap();
        }
        assert_eq!(c.subtable_count(), 5);
        let per = c.heap_bytes() / c.len();
        eprintln!("{per} heap bytes per megaflow");
        assert!(per <= 200, "{per} bytes per megaflow");
    }

    #[test]
    fn a_targeted_revalidation_translates_only_what_a_change_may_match() {
        let mut c = MegaflowCache::new(100);
        // Ten megaflows by in_port and /24, and one by tp_dst alone.
        let flows: Vec<u32> = (1..=10)
            .map(|p| {
                c.insert(
                    &key(p, 0x0a00_0000 | p << 8, 80),
                    &mask_port_dst(),
                    &[DpAction::Output(2)],
                    &[],
                    5,
                )
                .unwrap()
            })
            .collect();
        let by_tp = c
            .insert(&key(0, 0, 53), &mask_tp(), &[DpAction::Output(3)], &[], 5)
            .unwrap();
        let change = |in_port: u32, tp_dst: u16| {
            RuleChange::new(
                &FlowKey {
                    in_port,
                    tp_dst,
                    ..FlowKey::default()
                },
                &FlowKey {
                    in_port: u32::MAX,
                    tp_dst: 0xffff,
                    ..FlowKey::default()
                },
            )
        };
        let mut seen = Vec::new();
        let mut run = |c: &mut MegaflowCache, changes: &[RuleChange], out: u32| {
            seen.clear();
            c.revalidate_matching(changes, |k, _| {
                seen.push(k.in_port);
                UpcallResult {
                    actions: vec![DpAction::Output(out)],
                    mask: if k.tp_dst == 53 {
                        mask_tp()
                    } else {
                        mask_port_dst()
                    },
                    sinks: Vec::new(),
                    rewritten: 0,
                }
            })
        };
        // in_port 4, tp_dst 80: megaflow 4 (its packets may have tp_dst 80). The tp_dst-53
        // megaflow may hold in_port 4 but not tp_dst 80. Same actions: kept.
        assert_eq!(run(&mut c, &[change(4, 80)], 2), (1, 0));
        // in_port 4, tp_dst 53: megaflow 4 (any tp_dst) and the tp_dst-53 one (any port).
        // New actions: both deleted.
        assert_eq!(run(&mut c, &[change(4, 53)], 9), (2, 2));
        assert!(c.key_and_mask(flows[3]).is_none());
        assert!(c.key_and_mask(by_tp).is_none());
        assert_eq!(c.len(), 9);
        // Two changes: the union.
        assert_eq!(run(&mut c, &[change(1, 80), change(2, 80)], 2), (2, 0));
        // None: nothing to do.
        assert_eq!(run(&mut c, &[], 2), (0, 0));
        // A megaflow whose translation rewrote in_port may match a change on any port.
        let in_port_word = {
            let k = FlowKey {
                in_port: u32::MAX,
                ..FlowKey::default()
            };
            k.words().iter().position(|w| *w != 0).unwrap()
        };
        c.set_rewritten(flows[6], 1 << in_port_word);
        assert_eq!(run(&mut c, &[change(99, 80)], 2), (1, 0));
        assert_eq!(seen, vec![7]);
    }
}
