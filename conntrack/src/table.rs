//! The connection table shared by every PMD thread.
//!
//! **Sharding.** The table is 64 shards, each a `Mutex` around its own slab and index, on its
//! own cache lines. A packet locks exactly one shard, for one lookup and one update; there is
//! no global lock anywhere on the packet path, and the only shared atomics touched are the
//! connection counts, and only when a connection is committed or removed.
//!
//! **Both keys in one shard.** The shard is chosen by [`KeyHasher`]'s keyed, *symmetric* hash:
//! a key and its reverse hash alike, so the original and reply keys of a connection always
//! select the same shard (and the same bucket group inside it), and a packet of either
//! direction finds the connection with one lock. The later NAT slice makes the reply key a
//! translated tuple, whose hash may select another shard; the design for it is that the
//! reply shard then holds a forwarding entry (home shard, slot, generation), commits and
//! removals lock the two shards in increasing index order (so two threads can never wait on
//! each other), and lookups never hold two locks (read the forward entry, unlock, lock the
//! home shard, check the generation). Until then every connection is wholly in one shard.
//!
//! **Commit and limits.** As in OVS, an uncommitted `+new` packet leaves nothing behind.
//! A commit first takes a place under the zone's limit, then under the table's (atomic
//! add-then-check, undone on refusal, so limits are exact under concurrency); a refusal leaves
//! the packet `+new`, counts `table_full` / `zone_full` and reports it in the outcome, while
//! packets of existing connections go on.
//!
//! **Expiry.** An expired connection is absent: a lookup that meets one removes it and goes
//! on as for a miss. [`ConnTable::sweep`] removes the others, a bounded number of slots per
//! lock hold and a bounded number of connections per call, resuming where it stopped, so a
//! PMD loop or a background thread can call it without stalling packets.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use hashbrown::HashMap;
use pipeline::flowkey::ct_state;

use crate::dump::ConnEntry;
use crate::key::{ConnKey, KeyHasher};
use crate::outcome::{CtEvent, CtInvalid, CtOutcome};
use crate::packet::{lookup_key, CtPacket};
use crate::proto::{self, ProtoClass, Update};
use crate::shard::{Conn, Shard, ShardStats};
use crate::tcp;
use crate::timeouts::TimeoutPolicy;

/// Number of shards (a power of two).
pub const SHARDS: usize = 64;

/// OVS's default limit of connections (`DEFAULT_N_CONN_LIMIT`).
pub const DEFAULT_MAX_CONNS: u32 = 3_000_000;

/// Slots a sweep examines per lock hold.
const SWEEP_SLOTS_PER_LOCK: u32 = 64;

/// Zone limit meaning "the default zone limit applies".
const ZONE_LIMIT_DEFAULT: u32 = u32::MAX;

const ZONES: usize = 1 << 16;

/// How a table is set up.
#[derive(Clone, Debug)]
pub struct CtConfig {
    /// Most connections the table holds (OVS default 3,000,000).
    pub max_conns: u32,
    /// Limit of a zone without a limit of its own; 0 is unlimited (OVS's default).
    pub default_zone_limit: u32,
    /// Timeouts of every zone without a policy of its own.
    pub timeouts: TimeoutPolicy,
    /// Timeout policies of particular zones.
    pub zone_timeouts: Vec<(u16, TimeoutPolicy)>,
    /// Check TCP sequence numbers and windows (OVS `tcp_seq_chk`, on by default).
    pub tcp_seq_check: bool,
    /// Let a TCP segment other than a SYN open a connection (a stream picked up mid-way, with
    /// unknown window scaling). On by default because OVS does so (`tcp_valid_new` refuses
    /// only a SYN-ACK); off, only a SYN opens a connection.
    pub tcp_midstream_pickup: bool,
}

impl Default for CtConfig {
    fn default() -> Self {
        CtConfig {
            max_conns: DEFAULT_MAX_CONNS,
            default_zone_limit: 0,
            timeouts: TimeoutPolicy::default(),
            zone_timeouts: Vec::new(),
            tcp_seq_check: true,
            tcp_midstream_pickup: true,
        }
    }
}

/// The `ct()` action's parameters for one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtExec {
    pub zone: u16,
    /// Create the connection of a `+new` packet.
    pub commit: bool,
    /// `(value, mask)` to write into the connection's mark.
    pub set_mark: Option<(u32, u32)>,
    /// `(value, mask)` to write into the connection's label.
    pub set_label: Option<(u128, u128)>,
}

/// Counters of the whole table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    /// Connections in the table now.
    pub conns: u32,
    /// The per-shard event counters, summed.
    pub events: ShardStats,
}

/// A shard on cache lines of its own, so two shards' locks never share a line.
#[repr(align(128))]
#[derive(Default)]
struct PaddedShard(Mutex<Shard>);

/// Where the sweep goes on.
#[derive(Default)]
struct SweepCursor {
    shard: usize,
    slot: u32,
}

/// The connection table. See the module documentation.
pub struct ConnTable {
    shards: Box<[PaddedShard; SHARDS]>,
    hasher: KeyHasher,
    timeouts: TimeoutPolicy,
    zone_timeouts: HashMap<u16, TimeoutPolicy>,
    tcp_seq_check: bool,
    tcp_midstream_pickup: bool,
    n_conns: AtomicU32,
    max_conns: AtomicU32,
    default_zone_limit: AtomicU32,
    zone_limits: Box<[AtomicU32]>,
    zone_counts: Box<[AtomicU32]>,
    sweep_cursor: Mutex<SweepCursor>,
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable::new(CtConfig::default())
    }
}

/// What tracking decided before the outcome is written.
struct Decision {
    state: u8,
    slot: Option<u32>,
    event: CtEvent,
}

impl ConnTable {
    /// An empty table with a fresh random hash key.
    pub fn new(config: CtConfig) -> ConnTable {
        let atomics = |v: u32| (0..ZONES).map(|_| AtomicU32::new(v)).collect();
        ConnTable {
            shards: Box::new(std::array::from_fn(|_| PaddedShard::default())),
            hasher: KeyHasher::new(),
            timeouts: config.timeouts,
            zone_timeouts: config.zone_timeouts.into_iter().collect(),
            tcp_seq_check: config.tcp_seq_check,
            tcp_midstream_pickup: config.tcp_midstream_pickup,
            n_conns: AtomicU32::new(0),
            max_conns: AtomicU32::new(config.max_conns),
            default_zone_limit: AtomicU32::new(config.default_zone_limit),
            zone_limits: atomics(ZONE_LIMIT_DEFAULT),
            zone_counts: atomics(0),
            sweep_cursor: Mutex::new(SweepCursor::default()),
        }
    }

    // ---- the packet path -------------------------------------------------------------

    /// Tracks `pkt` in `zone`, committing it if `commit` and it is `+new`.
    pub fn process(&self, pkt: &CtPacket, zone: u16, commit: bool, now_ns: u64) -> CtOutcome {
        let exec = CtExec {
            zone,
            commit,
            ..CtExec::default()
        };
        self.execute(pkt, &exec, now_ns)
    }

    /// Tracks `pkt` as the `ct()` action `exec` says (OVS `process_one`): looks its key up,
    /// updates the connection's protocol state, commits a new connection if asked, then sets
    /// the mark and label of the connection, if there is one.
    pub fn execute(&self, pkt: &CtPacket, exec: &CtExec, now_ns: u64) -> CtOutcome {
        let zone = exec.zone;
        let (key, related) = match lookup_key(pkt, zone) {
            Ok(found) => found,
            Err(reason) => return CtOutcome::invalid(zone, None, reason),
        };
        let hash = self.hasher.hash(&key);
        let mut shard = self.lock(hash);
        let decision = self.decide(&mut shard, pkt, &key, hash, related, exec, now_ns);
        if matches!(decision.event, CtEvent::Invalid(_)) {
            shard.stats.invalid += 1;
        }
        let mut out = CtOutcome {
            state: decision.state | ct_state::TRACKED,
            zone,
            orig: Some(key),
            event: decision.event,
            ..CtOutcome::default()
        };
        if let Some(conn) = decision.slot.and_then(|s| shard.get_mut(s)) {
            if let Some((value, mask)) = exec.set_mark {
                conn.mark = (value & mask) | (conn.mark & !mask);
            }
            if let Some((value, mask)) = exec.set_label {
                conn.label = (value & mask) | (conn.label & !mask);
            }
            out.mark = conn.mark;
            out.label = conn.label;
            out.orig = Some(conn.orig);
        }
        out
    }

    /// The state bits and connection of the packet, under the shard's lock.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        shard: &mut Shard,
        pkt: &CtPacket,
        key: &ConnKey,
        hash: u64,
        related: bool,
        exec: &CtExec,
        now_ns: u64,
    ) -> Decision {
        let reply_bit = |reply: bool| if reply { ct_state::REPLY } else { 0 };
        match self.find_live(shard, hash, key, now_ns) {
            Some((slot, reply)) if related => Decision {
                state: ct_state::RELATED | reply_bit(reply),
                slot: Some(slot),
                event: CtEvent::None,
            },
            None if related => invalid(None, CtInvalid::UnrelatedIcmpError),
            Some((slot, reply)) => {
                let Some(conn) = shard.get_mut(slot) else {
                    return self.open(shard, pkt, key, exec, now_ns);
                };
                let (update, timeout) = conn.proto.update(pkt, reply, self.tcp_seq_check);
                if let Some(t) = timeout {
                    conn.expires_ns = self.policy(key.zone).expiry(t, now_ns);
                }
                match update {
                    Update::Valid => Decision {
                        state: ct_state::ESTABLISHED | reply_bit(reply),
                        slot: Some(slot),
                        event: CtEvent::None,
                    },
                    Update::ValidNew => Decision {
                        state: ct_state::NEW,
                        slot: Some(slot),
                        event: CtEvent::None,
                    },
                    Update::Invalid(reason) => invalid(Some(slot), reason),
                    Update::Reopen => {
                        shard.stats.reopened += 1;
                        self.remove_slot(shard, slot);
                        self.open(shard, pkt, key, exec, now_ns)
                    }
                }
            }
            None => self.open(shard, pkt, key, exec, now_ns),
        }
    }

    /// The slot and direction of `key`, removing an expired connection met on the way.
    fn find_live(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &ConnKey,
        now_ns: u64,
    ) -> Option<(u32, bool)> {
        let (slot, reply) = shard.find(hash, key)?;
        if shard.get(slot).is_some_and(|c| c.expired(now_ns)) {
            shard.stats.expired += 1;
            self.remove_slot(shard, slot);
            return None;
        }
        Some((slot, reply))
    }

    /// A packet without a connection (OVS `conn_not_found`): `+new` if it may open one,
    /// committed if asked and the limits allow.
    fn open(
        &self,
        shard: &mut Shard,
        pkt: &CtPacket,
        key: &ConnKey,
        exec: &CtExec,
        now_ns: u64,
    ) -> Decision {
        if !self.may_open(pkt) {
            return invalid(None, CtInvalid::CannotOpen);
        }
        let mut decision = Decision {
            state: ct_state::NEW,
            slot: None,
            event: CtEvent::None,
        };
        if !exec.commit {
            return decision;
        }
        if let Err(refused) = self.admit(key.zone) {
            match refused {
                CtEvent::ZoneFull => shard.stats.zone_full += 1,
                _ => shard.stats.table_full += 1,
            }
            decision.event = refused;
            return decision;
        }
        let (state, timeout) = proto::new_state(pkt);
        let conn = Conn {
            orig: *key,
            reply: key.reverse(),
            expires_ns: self.policy(key.zone).expiry(timeout, now_ns),
            label: 0,
            mark: 0,
            proto: state,
        };
        match shard.insert(conn, &self.hasher) {
            Some(slot) => {
                shard.stats.committed += 1;
                decision.slot = Some(slot);
                decision.event = CtEvent::Committed;
            }
            None => {
                self.forget(key.zone);
                shard.stats.table_full += 1;
                decision.event = CtEvent::TableFull;
            }
        }
        decision
    }

    fn may_open(&self, pkt: &CtPacket) -> bool {
        if !proto::valid_new(pkt) {
            return false;
        }
        let tcp = ProtoClass::of(pkt.proto, pkt.family) == ProtoClass::Tcp;
        !tcp || self.tcp_midstream_pickup || tcp::is_syn_only(&pkt.tcp)
    }

    /// Takes a place under the zone's limit and the table's, or says which is full.
    fn admit(&self, zone: u16) -> Result<(), CtEvent> {
        let limit = self.zone_limit(zone);
        let Some(count) = self.zone_counts.get(usize::from(zone)) else {
            return Err(CtEvent::ZoneFull);
        };
        if count.fetch_add(1, Ordering::Relaxed) >= limit && limit != 0 {
            count.fetch_sub(1, Ordering::Relaxed);
            return Err(CtEvent::ZoneFull);
        }
        let max = self.max_conns.load(Ordering::Relaxed);
        if self.n_conns.fetch_add(1, Ordering::Relaxed) >= max {
            self.n_conns.fetch_sub(1, Ordering::Relaxed);
            count.fetch_sub(1, Ordering::Relaxed);
            return Err(CtEvent::TableFull);
        }
        Ok(())
    }

    /// Gives back the places of a connection of `zone`.
    fn forget(&self, zone: u16) {
        if let Some(count) = self.zone_counts.get(usize::from(zone)) {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        self.n_conns.fetch_sub(1, Ordering::Relaxed);
    }

    fn remove_slot(&self, shard: &mut Shard, slot: u32) {
        if let Some(conn) = shard.remove(slot, &self.hasher) {
            self.forget(conn.orig.zone);
        }
    }

    fn policy(&self, zone: u16) -> &TimeoutPolicy {
        if self.zone_timeouts.is_empty() {
            return &self.timeouts;
        }
        self.zone_timeouts.get(&zone).unwrap_or(&self.timeouts)
    }

    fn lock(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // Bits 32.. choose the shard; the index inside uses the low bits and the top seven.
        let i = (hash >> 32) as usize & (SHARDS - 1);
        // Cannot panic: `i` is masked to the array's length.
        lock(&self.shards[i].0)
    }

    // ---- connections by key ------------------------------------------------------------

    /// Runs `f` on the live connection `key` names (either direction).
    fn with_conn<R>(
        &self,
        key: &ConnKey,
        now_ns: u64,
        f: impl FnOnce(&mut Conn) -> R,
    ) -> Option<R> {
        let hash = self.hasher.hash(key);
        let mut shard = self.lock(hash);
        let (slot, _) = self.find_live(&mut shard, hash, key, now_ns)?;
        shard.get_mut(slot).map(f)
    }

    /// Sets `mark = value | (mark & !mask)` (value masked) on the connection `key` names.
    /// False when there is none.
    pub fn set_mark(&self, key: &ConnKey, value: u32, mask: u32, now_ns: u64) -> bool {
        self.with_conn(key, now_ns, |c| c.mark = (value & mask) | (c.mark & !mask))
            .is_some()
    }

    /// Sets the label bits of `mask` to those of `value` on the connection `key` names.
    pub fn set_label(&self, key: &ConnKey, value: u128, mask: u128, now_ns: u64) -> bool {
        self.with_conn(key, now_ns, |c| {
            c.label = (value & mask) | (c.label & !mask)
        })
        .is_some()
    }

    /// The connection `key` names, as `dump-conntrack` shows it.
    pub fn get(&self, key: &ConnKey, now_ns: u64) -> Option<ConnEntry> {
        self.with_conn(key, now_ns, |c| ConnEntry::of(c, now_ns))
    }

    // ---- expiry, flush, dump -------------------------------------------------------------

    /// Removes at most `budget` expired connections, examining at most 64 slots per lock
    /// hold and at most one lap of the table, resuming where the last call stopped. Returns
    /// how many it removed. A call while another sweep runs returns 0 at once.
    pub fn sweep(&self, now_ns: u64, budget: usize) -> usize {
        let mut cursor = match self.sweep_cursor.try_lock() {
            Ok(c) => c,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return 0,
        };
        let mut removed = 0;
        let mut shards_done = 0;
        while removed < budget && shards_done <= SHARDS {
            let shard_index = cursor.shard & (SHARDS - 1);
            // Cannot panic: masked to the array's length.
            let mut shard = lock(&self.shards[shard_index].0);
            let (next, n) = shard.expire_slots(
                cursor.slot,
                SWEEP_SLOTS_PER_LOCK,
                now_ns,
                budget - removed,
                &self.hasher,
                |c| self.forget(c.orig.zone),
            );
            drop(shard);
            removed += n;
            match next {
                Some(slot) => cursor.slot = slot,
                None => {
                    cursor.shard = (shard_index + 1) & (SHARDS - 1);
                    cursor.slot = 0;
                    shards_done += 1;
                }
            }
        }
        removed
    }

    /// Removes every connection, or those of one zone. Returns how many.
    pub fn flush(&self, zone: Option<u16>) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(&shard.0);
            let slots: Vec<u32> = shard
                .iter()
                .filter(|(_, c)| zone.is_none_or(|z| c.orig.zone == z))
                .map(|(slot, _)| slot)
                .collect();
            for &slot in &slots {
                self.remove_slot(&mut shard, slot);
            }
            shard.stats.flushed += slots.len() as u64;
            removed += slots.len();
        }
        removed
    }

    /// Calls `f` with every live connection, one shard locked at a time.
    pub fn for_each(&self, now_ns: u64, mut f: impl FnMut(&ConnEntry)) {
        for shard in self.shards.iter() {
            let shard = lock(&shard.0);
            for (_, conn) in shard.iter().filter(|(_, c)| !c.expired(now_ns)) {
                f(&ConnEntry::of(conn, now_ns));
            }
        }
    }

    /// Every live connection (for `dump-conntrack`), optionally of one zone.
    pub fn entries(&self, zone: Option<u16>, now_ns: u64) -> Vec<ConnEntry> {
        let mut all = Vec::new();
        self.for_each(now_ns, |e| {
            if zone.is_none_or(|z| e.zone == z) {
                all.push(*e);
            }
        });
        all
    }

    // ---- limits and counts --------------------------------------------------------------

    /// Connections in the table (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.n_conns.load(Ordering::Relaxed) as usize
    }

    /// True when the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections of `zone`.
    pub fn zone_count(&self, zone: u16) -> u32 {
        self.zone_counts
            .get(usize::from(zone))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Sets the table's limit (OVS `ct-set-maxconns`). Existing connections stay.
    pub fn set_max_conns(&self, max: u32) {
        self.max_conns.store(max, Ordering::Relaxed);
    }

    pub fn max_conns(&self) -> u32 {
        self.max_conns.load(Ordering::Relaxed)
    }

    /// Sets `zone`'s own limit (0: unlimited), or with `None` makes the default apply.
    pub fn set_zone_limit(&self, zone: u16, limit: Option<u32>) {
        if let Some(l) = self.zone_limits.get(usize::from(zone)) {
            l.store(limit.unwrap_or(ZONE_LIMIT_DEFAULT), Ordering::Relaxed);
        }
    }

    /// Sets the limit of zones without their own (0: unlimited).
    pub fn set_default_zone_limit(&self, limit: u32) {
        self.default_zone_limit.store(limit, Ordering::Relaxed);
    }

    /// The limit of zones without their own (0: unlimited).
    pub fn default_zone_limit(&self) -> u32 {
        self.default_zone_limit.load(Ordering::Relaxed)
    }

    /// The zones with a limit of their own, with it, in zone order.
    pub fn zone_limits(&self) -> Vec<(u16, u32)> {
        (0..=u16::MAX)
            .zip(self.zone_limits.iter())
            .filter_map(|(z, l)| {
                let l = l.load(Ordering::Relaxed);
                (l != ZONE_LIMIT_DEFAULT).then_some((z, l))
            })
            .collect()
    }

    /// The limit that applies to `zone` (0: unlimited).
    pub fn zone_limit(&self, zone: u16) -> u32 {
        let own = self
            .zone_limits
            .get(usize::from(zone))
            .map_or(ZONE_LIMIT_DEFAULT, |l| l.load(Ordering::Relaxed));
        if own == ZONE_LIMIT_DEFAULT {
            self.default_zone_limit.load(Ordering::Relaxed)
        } else {
            own
        }
    }

    /// The table's counters.
    pub fn stats(&self) -> CtStats {
        let mut events = ShardStats::default();
        for shard in self.shards.iter() {
            events.add(&lock(&shard.0).stats);
        }
        CtStats {
            conns: self.n_conns.load(Ordering::Relaxed),
            events,
        }
    }

    /// Bytes the table holds on the heap: shards' slabs and indexes, the zone arrays.
    pub fn heap_bytes(&self) -> usize {
        let shards: usize = self.shards.iter().map(|s| lock(&s.0).heap_bytes()).sum();
        shards
            + std::mem::size_of::<[PaddedShard; SHARDS]>()
            + 2 * ZONES * std::mem::size_of::<AtomicU32>()
    }

    /// Size of one connection in the slab.
    pub const fn conn_size() -> usize {
        std::mem::size_of::<Option<Conn>>()
    }

    /// Checks the table's invariants: every connection is found by both its keys, in the
    /// shard its hash selects; the index holds nothing else; the counts agree.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut total = 0usize;
        let mut zones: HashMap<u16, u32> = HashMap::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let shard = lock(&shard.0);
            shard.check(&self.hasher)?;
            for (_, conn) in shard.iter() {
                let home = (self.hasher.hash(&conn.orig) >> 32) as usize & (SHARDS - 1);
                if home != i {
                    return Err(format!("{:?} is in shard {i}, not {home}", conn.orig));
                }
                *zones.entry(conn.orig.zone).or_default() += 1;
            }
            total += shard.len();
        }
        if total != self.len() {
            return Err(format!("{total} connections, count says {}", self.len()));
        }
        for (zone, n) in zones {
            if self.zone_count(zone) != n {
                return Err(format!(
                    "zone {zone}: {n} connections, count {}",
                    self.zone_count(zone)
                ));
            }
        }
        Ok(())
    }
}

fn invalid(slot: Option<u32>, reason: CtInvalid) -> Decision {
    Decision {
        state: ct_state::INVALID,
        slot,
        event: CtEvent::Invalid(reason),
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// The table is shared by every PMD thread.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<ConnTable>();
};
