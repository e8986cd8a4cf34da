//! The connection table shared by every PMD thread.
//!
//! **Sharding.** The table is 64 shards, each a `Mutex` around its own slab and index, on its
//! own cache lines. A packet locks one shard at a time (two in turn only to follow a NAT
//! forward); there is no global lock anywhere on the packet path, and the only shared atomics
//! touched are the connection counts, only when a connection is committed or removed, and an
//! IPv4 identifier counter, only for a translated datagram that is not atomic.
//!
//! **Both keys in one shard, or a forward.** The shard is chosen by [`KeyHasher`]'s keyed,
//! *symmetric* hash: a key and its reverse hash alike, so the original and reply keys of a
//! connection without NAT always select the same shard (and the same bucket group inside it),
//! and a packet of either direction finds the connection with one lock. A NAT'ed connection's
//! reply key is the translated tuple, which may hash to another shard: the connection then
//! lives in its original key's shard (its *home*), indexed there by that key only, and the
//! reply key's shard holds a forwarding entry (home shard, slot, the slot's generation).
//!
//! - A lookup never holds two locks: it locks the key's shard; a forward found there is
//!   copied, the lock released, the home locked, and the connection in the slot checked (same
//!   generation, same reply key): if it is gone the forward was stale, the lookup removes it
//!   and starts again.
//! - A NAT commit locks the home and a candidate's shard in increasing index order (only one
//!   when they are the same), so two threads never wait on each other; under the two locks it
//!   checks that the original key is still unknown and that no connection uses the candidate
//!   (as any key: the index, or a forward), then inserts the connection and its forward.
//! - A removal (expiry, reopen, flush, sweep) holds the home lock only; it removes the forward
//!   after releasing it (locking the forward's shard alone). In between the forward is stale,
//!   which lookups recognise by the generation, and a NAT commit treats its tuple as taken for
//!   that moment.
//!
//! A commit also refuses a reply key another connection uses (`reply_taken`): the reverse of
//! a new connection without NAT can be a NAT'ed connection's translated tuple, and two
//! connections may never share a key.
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

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use arc_swap::ArcSwap;
use hashbrown::HashMap;
use pipeline::flowkey::ct_state;

use crate::dump::ConnEntry;
use crate::ipf::Ipf;
use crate::key::{ConnKey, CtAddr, KeyHasher};
use crate::nat::{keyed, CtNat, NatKind, NatRewrite, Search};
use crate::outcome::{CtEvent, CtInvalid, CtOutcome};
use crate::packet::{lookup_key, CtPacket};
use crate::proto::{self, ProtoClass, Update};
use crate::shard::{Conn, Forward, Shard, ShardStats};
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

/// Buckets of IPv4 identifier counters (see [`ConnTable::next_ip_id`]).
const IP_ID_BUCKETS: usize = 2048;

/// Times a packet's lookup starts again after a race (a stale forward, a removal, a commit of
/// the same key by another thread) before it is given up as an uncommitted `+new`.
const MAX_TRIES: usize = 4;

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
    /// The key of the hashes that choose NAT addresses and ports and of the IPv4 identifier
    /// counters; `None`: random (the daemon). Replay fixes it so runs are reproducible.
    pub seed: Option<u64>,
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
            seed: None,
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
    /// `nat(...)`: with a kind, a committed new connection is translated; with or without,
    /// the packets of a translated connection are rewritten (`None`: nothing is).
    pub nat: Option<CtNat>,
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

/// The timeout policies: the default one and those of zones with their own.
#[derive(Clone, Default)]
struct Policies {
    default: TimeoutPolicy,
    zones: HashMap<u16, TimeoutPolicy>,
}

impl Policies {
    fn of(&self, zone: u16) -> TimeoutPolicy {
        if self.zones.is_empty() {
            return self.default;
        }
        self.zones.get(&zone).copied().unwrap_or(self.default)
    }
}

/// The connection table. See the module documentation.
pub struct ConnTable {
    shards: Box<[PaddedShard; SHARDS]>,
    hasher: KeyHasher,
    /// Swapped whole when changed at run time; a packet reads it without a lock.
    timeouts: ArcSwap<Policies>,
    /// The config's timeouts, read without the swap's load until a policy is set at run
    /// time (`timeouts_set`).
    config_timeouts: TimeoutPolicy,
    timeouts_set: AtomicBool,
    tcp_seq_check: bool,
    tcp_midstream_pickup: bool,
    n_conns: AtomicU32,
    max_conns: AtomicU32,
    default_zone_limit: AtomicU32,
    zone_limits: Box<[AtomicU32]>,
    zone_counts: Box<[AtomicU32]>,
    sweep_cursor: Mutex<SweepCursor>,
    seed: u64,
    ip_ids: Box<[AtomicU16]>,
    /// IP fragment reassembly for the `ct()` actions over this table (its sweep expires it).
    ipf: Ipf,
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable::new(CtConfig::default())
    }
}

/// A forwarding entry to remove once its connection's home lock is released.
#[derive(Clone, Copy, Debug)]
struct Unlink {
    shard: usize,
    hash: u64,
    fwd: Forward,
}

/// What one attempt at tracking a packet gave.
enum Step {
    Done(CtOutcome),
    /// A race (a stale forward, a connection removed, the key committed meanwhile): look the
    /// key up again.
    Retry,
    /// No connection has the reversed key of a translated packet.
    Miss,
}

/// How a looked-up key relates to its packet.
#[derive(Clone, Copy)]
struct Found {
    /// The key is the tuple an ICMP error quotes.
    related: bool,
    /// The key is the packet's own tuple reversed (a packet NAT'ed already).
    reversed: bool,
}

/// The shard `hash` selects. Bits 32.. choose it; the index inside uses the low bits and
/// the top seven.
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (SHARDS - 1)
}

impl ConnTable {
    /// An empty table with a fresh random hash key.
    pub fn new(config: CtConfig) -> ConnTable {
        let atomics = |v: u32| (0..ZONES).map(|_| AtomicU32::new(v)).collect();
        let seed = config.seed.unwrap_or_else(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0u64)
        });
        ConnTable {
            seed,
            ip_ids: (0..IP_ID_BUCKETS as u64)
                .map(|i| AtomicU16::new(keyed(seed, &[i]) as u16))
                .collect(),
            shards: Box::new(std::array::from_fn(|_| PaddedShard::default())),
            hasher: KeyHasher::new(),
            config_timeouts: config.timeouts,
            timeouts_set: AtomicBool::new(!config.zone_timeouts.is_empty()),
            timeouts: ArcSwap::from_pointee(Policies {
                default: config.timeouts,
                zones: config.zone_timeouts.into_iter().collect(),
            }),
            tcp_seq_check: config.tcp_seq_check,
            tcp_midstream_pickup: config.tcp_midstream_pickup,
            n_conns: AtomicU32::new(0),
            max_conns: AtomicU32::new(config.max_conns),
            default_zone_limit: AtomicU32::new(config.default_zone_limit),
            zone_limits: atomics(ZONE_LIMIT_DEFAULT),
            zone_counts: atomics(0),
            sweep_cursor: Mutex::new(SweepCursor::default()),
            ipf: Ipf::new(),
        }
    }

    /// The fragment reassembler of the `ct()` actions over this table.
    pub fn ipf(&self) -> &Ipf {
        &self.ipf
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
    /// updates the connection's protocol state, commits a new connection if asked (choosing
    /// its translated tuple for a `nat(src|dst...)`), then sets the mark and label of the
    /// connection, if there is one, and says how to rewrite the packet when the connection is
    /// NAT'ed and `exec` has a `nat`.
    pub fn execute(&self, pkt: &CtPacket, exec: &CtExec, now_ns: u64) -> CtOutcome {
        let zone = exec.zone;
        let (key, related) = match lookup_key(pkt, zone) {
            Ok(found) => found,
            Err(reason) => return CtOutcome::invalid(zone, None, reason),
        };
        if pkt.natted {
            // Translated by an earlier ct(nat): its tuple reversed is a key of its
            // connection, seen from the other end. When that connection is gone, the packet
            // is looked up as it is (OVS `initial_conn_lookup`).
            if let Some(out) = self.run(pkt, exec, &key.reverse(), related, true, now_ns) {
                return out;
            }
        }
        self.run(pkt, exec, &key, related, false, now_ns)
            .unwrap_or_else(|| new_outcome(&key, CtEvent::None))
    }

    /// [`ConnTable::execute`] with `key`, retried over races. With `reversed` the key is the
    /// packet's tuple reversed: a connection found is entered in the other direction, and a
    /// miss returns `None` instead of a new connection. Inlined, so that the common call
    /// (`reversed` false) drops the `Option`.
    #[inline(always)]
    fn run(
        &self,
        pkt: &CtPacket,
        exec: &CtExec,
        key: &ConnKey,
        related: bool,
        reversed: bool,
        now_ns: u64,
    ) -> Option<CtOutcome> {
        let hash = self.hasher.hash(key);
        let found = Found { related, reversed };
        for _ in 0..MAX_TRIES {
            let mut unlink = None;
            let step = self.execute_once(pkt, exec, key, hash, found, now_ns, &mut unlink);
            if let Some(u) = unlink {
                self.unlink(u);
            }
            match step {
                Step::Done(out) => return Some(out),
                Step::Miss => return None,
                Step::Retry => {}
            }
        }
        (!reversed).then(|| new_outcome(key, CtEvent::None))
    }

    /// One attempt: the key's shard, or the home a forward names, then the connection or
    /// the miss. Removals leave in `unlink` the forward to remove once no lock is held.
    #[allow(clippy::too_many_arguments)]
    fn execute_once(
        &self,
        pkt: &CtPacket,
        exec: &CtExec,
        key: &ConnKey,
        hash: u64,
        found: Found,
        now_ns: u64,
        unlink: &mut Option<Unlink>,
    ) -> Step {
        let related = found.related;
        let s = shard_of(hash);
        let mut shard = self.lock_shard(s);
        if let Some((slot, reply)) = shard.find(hash, key) {
            let reply = reply != found.reversed;
            return self.on_conn(
                s, &mut shard, slot, reply, pkt, exec, related, now_ns, unlink,
            );
        }
        if let Some(fwd) = shard.find_forward(hash, key) {
            drop(shard);
            let home = usize::from(fwd.home);
            let mut home_shard = self.lock_shard(home);
            let live = home_shard
                .get(fwd.slot)
                .is_some_and(|c| c.gen == fwd.gen && c.reply == *key);
            if live {
                return self.on_conn(
                    home,
                    &mut home_shard,
                    fwd.slot,
                    !found.reversed,
                    pkt,
                    exec,
                    related,
                    now_ns,
                    unlink,
                );
            }
            *unlink = Some(Unlink {
                shard: s,
                hash,
                fwd,
            });
            return Step::Retry;
        }
        if found.reversed {
            return Step::Miss;
        }
        // A miss (OVS `conn_not_found`).
        if related {
            shard.stats.invalid += 1;
            return Step::Done(invalid_outcome(key, CtInvalid::UnrelatedIcmpError));
        }
        if !self.may_open(pkt) {
            shard.stats.invalid += 1;
            return Step::Done(invalid_outcome(key, CtInvalid::CannotOpen));
        }
        if !exec.commit {
            return Step::Done(new_outcome(key, CtEvent::None));
        }
        if let Some(nat) = exec.nat.filter(|n| n.kind.is_some()) {
            drop(shard);
            return self.commit_nat(s, pkt, exec, key, hash, &nat, now_ns);
        }
        // Without NAT the reply key is the reverse, in the same shard.
        let reply = key.reverse();
        if reply != *key && shard.key_in_use(hash, &reply) {
            shard.stats.reply_taken += 1;
            return Step::Done(new_outcome(key, CtEvent::ReplyTaken));
        }
        if let Err(refused) = self.admit(key.zone) {
            count_refusal(&mut shard.stats, refused);
            return Step::Done(new_outcome(key, refused));
        }
        let (state, timeout) = proto::new_state(pkt);
        let conn = Conn {
            orig: *key,
            reply,
            nat: None,
            split: false,
            gen: 0,
            expires_ns: self.policy(key.zone).expiry(timeout, now_ns),
            label: 0,
            mark: 0,
            proto: state,
        };
        let Some((slot, _)) = shard.insert(conn, &self.hasher) else {
            self.forget(key.zone);
            shard.stats.table_full += 1;
            return Step::Done(new_outcome(key, CtEvent::TableFull));
        };
        shard.stats.committed += 1;
        match shard.get_mut(slot) {
            Some(conn) => Step::Done(finish(
                conn,
                exec,
                ct_state::NEW,
                false,
                false,
                CtEvent::Committed,
            )),
            None => Step::Retry,
        }
    }

    /// A packet of the connection in `slot` of shard `s` (locked: `shard`), travelling in
    /// the `reply` direction (OVS `conn_update_state` and `handle_nat`).
    #[allow(clippy::too_many_arguments)]
    fn on_conn(
        &self,
        s: usize,
        shard: &mut Shard,
        slot: u32,
        reply: bool,
        pkt: &CtPacket,
        exec: &CtExec,
        related: bool,
        now_ns: u64,
        unlink: &mut Option<Unlink>,
    ) -> Step {
        let Some(conn) = shard.get_mut(slot) else {
            return Step::Retry;
        };
        if conn.expired(now_ns) {
            // An expired connection is absent: remove it and look again.
            shard.stats.expired += 1;
            *unlink = self.remove_slot(s, shard, slot);
            return Step::Retry;
        }
        let reply_bit = if reply { ct_state::REPLY } else { 0 };
        if related {
            return Step::Done(finish(
                conn,
                exec,
                ct_state::RELATED | reply_bit,
                reply,
                true,
                CtEvent::None,
            ));
        }
        let (update, timeout) = conn.proto.update(pkt, reply, self.tcp_seq_check);
        if let Some(t) = timeout {
            conn.expires_ns = self.policy(conn.orig.zone).expiry(t, now_ns);
        }
        let (state, event) = match update {
            Update::Valid => (ct_state::ESTABLISHED | reply_bit, CtEvent::None),
            Update::ValidNew => (ct_state::NEW, CtEvent::None),
            Update::Invalid(reason) => (ct_state::INVALID, CtEvent::Invalid(reason)),
            Update::Reopen => {
                shard.stats.reopened += 1;
                *unlink = self.remove_slot(s, shard, slot);
                return Step::Retry;
            }
        };
        if let CtEvent::Invalid(_) = event {
            shard.stats.invalid += 1;
        }
        match shard.get_mut(slot) {
            Some(conn) => Step::Done(finish(conn, exec, state, reply, false, event)),
            None => Step::Retry,
        }
    }

    /// Commits `key` (of shard `s`, unlocked) with a translated reply key: the first
    /// candidate of the NAT search no connection uses (see the module documentation for the
    /// locking).
    #[allow(clippy::too_many_arguments)]
    fn commit_nat(
        &self,
        s: usize,
        pkt: &CtPacket,
        exec: &CtExec,
        key: &ConnKey,
        hash: u64,
        nat: &CtNat,
        now_ns: u64,
    ) -> Step {
        let Some(kind) = nat.kind else {
            return Step::Retry;
        };
        if let Err(refused) = self.admit(key.zone) {
            count_refusal(&mut self.lock_shard(s).stats, refused);
            return Step::Done(new_outcome(key, refused));
        }
        let (state, timeout) = proto::new_state(pkt);
        let expires_ns = self.policy(key.zone).expiry(timeout, now_ns);
        let mut search = Search::new(key, kind, nat, self.seed);
        while let Some(cand) = search.next_key() {
            if cand == *key {
                continue;
            }
            let cand_hash = self.hasher.hash(&cand);
            let r = shard_of(cand_hash);
            let (mut home, mut other) = self.lock_two(s, r);
            if home.key_in_use(hash, key) {
                // Another thread committed (or NAT'ed to) this key meanwhile.
                drop((home, other));
                self.forget(key.zone);
                return Step::Retry;
            }
            let used = match other.as_deref() {
                Some(o) => o.key_in_use(cand_hash, &cand),
                None => home.key_in_use(cand_hash, &cand),
            };
            if used {
                continue;
            }
            let conn = Conn {
                orig: *key,
                reply: cand,
                nat: Some(kind),
                split: other.is_some(),
                gen: 0,
                expires_ns,
                label: 0,
                mark: 0,
                proto: state,
            };
            let Some((slot, gen)) = home.insert(conn, &self.hasher) else {
                self.forget(key.zone);
                home.stats.table_full += 1;
                return Step::Done(new_outcome(key, CtEvent::TableFull));
            };
            if let Some(o) = other.as_deref_mut() {
                let fwd = Forward {
                    key: cand,
                    home: s as u8,
                    slot,
                    gen,
                };
                o.insert_forward(cand_hash, fwd, &self.hasher);
            }
            drop(other);
            home.stats.committed += 1;
            return match home.get_mut(slot) {
                Some(conn) => Step::Done(finish(
                    conn,
                    exec,
                    ct_state::NEW,
                    false,
                    false,
                    CtEvent::Committed,
                )),
                None => Step::Retry,
            };
        }
        // Every candidate is taken: refused, as OVS's `nat_res_exhaustion`.
        self.forget(key.zone);
        self.lock_shard(s).stats.nat_exhausted += 1;
        Step::Done(new_outcome(key, CtEvent::NatExhausted))
    }

    /// The next IPv4 identifier for a datagram from `src` to `dst` of protocol `proto` that
    /// NAT rewrote (RFC 6864: a non-atomic datagram's identifier must be unique per source,
    /// destination and protocol for as long as it may be reassembled; after SNAT many
    /// senders share the translated source, so their own identifiers may collide). As Linux
    /// does for the datagrams it sources, a counter of 2048 is chosen by a keyed hash of the
    /// triple, offset by the same hash: every datagram of one triple takes the same counter,
    /// so identifiers repeat only after 65,536 datagrams, and they are not predictable from
    /// outside.
    pub fn next_ip_id(&self, src: CtAddr, dst: CtAddr, proto: u8) -> u16 {
        let [s, d] =
            [src, dst].map(|a| u64::from(u32::from_be_bytes([a.0[0], a.0[1], a.0[2], a.0[3]])));
        let h = keyed(self.seed, &[s << 32 | d, u64::from(proto)]);
        let bucket = (h % IP_ID_BUCKETS as u64) as usize;
        let n = self
            .ip_ids
            .get(bucket)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed));
        n.wrapping_add((h >> 48) as u16)
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

    /// Removes the connection in `slot` of shard `s` (locked: `shard`); for a split one,
    /// returns the forward to remove once the lock is released ([`ConnTable::unlink`]).
    fn remove_slot(&self, s: usize, shard: &mut Shard, slot: u32) -> Option<Unlink> {
        let conn = shard.remove(slot, &self.hasher)?;
        self.forget(conn.orig.zone);
        self.unlink_of(s, slot, &conn)
    }

    fn unlink_of(&self, s: usize, slot: u32, conn: &Conn) -> Option<Unlink> {
        conn.split.then(|| {
            let hash = self.hasher.hash(&conn.reply);
            Unlink {
                shard: shard_of(hash),
                hash,
                fwd: Forward {
                    key: conn.reply,
                    home: s as u8,
                    slot,
                    gen: conn.gen,
                },
            }
        })
    }

    /// Removes a forward (no other lock held).
    fn unlink(&self, u: Unlink) {
        self.lock_shard(u.shard).remove_forward(u.hash, &u.fwd);
    }

    fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // Cannot panic: masked to the array's length.
        lock(&self.shards[i & (SHARDS - 1)].0)
    }

    /// Locks shards `home` and `other` in increasing index order (one lock when they are the
    /// same shard): the only place that holds two.
    fn lock_two(
        &self,
        home: usize,
        other: usize,
    ) -> (MutexGuard<'_, Shard>, Option<MutexGuard<'_, Shard>>) {
        if home == other {
            return (self.lock_shard(home), None);
        }
        if home < other {
            let h = self.lock_shard(home);
            (h, Some(self.lock_shard(other)))
        } else {
            let o = self.lock_shard(other);
            (self.lock_shard(home), Some(o))
        }
    }

    // ---- connections by key ------------------------------------------------------------

    /// Runs `f` on the live connection `key` names (either direction), following a forward.
    fn with_conn<R>(
        &self,
        key: &ConnKey,
        now_ns: u64,
        f: impl FnOnce(&mut Conn) -> R,
    ) -> Option<R> {
        let hash = self.hasher.hash(key);
        let s = shard_of(hash);
        let shard = self.lock_shard(s);
        let (home, slot, mut shard) = match shard.find(hash, key) {
            Some((slot, _)) => (s, slot, shard),
            None => {
                let fwd = shard.find_forward(hash, key)?;
                drop(shard);
                let home = usize::from(fwd.home);
                let g = self.lock_shard(home);
                if !g
                    .get(fwd.slot)
                    .is_some_and(|c| c.gen == fwd.gen && c.reply == *key)
                {
                    return None;
                }
                (home, fwd.slot, g)
            }
        };
        if shard.get(slot).is_some_and(|c| c.expired(now_ns)) {
            shard.stats.expired += 1;
            let u = self.remove_slot(home, &mut shard, slot);
            drop(shard);
            if let Some(u) = u {
                self.unlink(u);
            }
            return None;
        }
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
        self.ipf.expire(now_ns);
        let mut cursor = match self.sweep_cursor.try_lock() {
            Ok(c) => c,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return 0,
        };
        let mut removed = 0;
        let mut shards_done = 0;
        let mut unlinks = Vec::new();
        while removed < budget && shards_done <= SHARDS {
            let shard_index = cursor.shard & (SHARDS - 1);
            let mut shard = self.lock_shard(shard_index);
            let (next, n) = shard.expire_slots(
                cursor.slot,
                SWEEP_SLOTS_PER_LOCK,
                now_ns,
                budget - removed,
                &self.hasher,
                |slot, c| {
                    self.forget(c.orig.zone);
                    unlinks.extend(self.unlink_of(shard_index, slot, c));
                },
            );
            drop(shard);
            for u in unlinks.drain(..) {
                self.unlink(u);
            }
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
        let mut unlinks = Vec::new();
        for i in 0..SHARDS {
            let mut shard = self.lock_shard(i);
            let slots: Vec<u32> = shard
                .iter()
                .filter(|(_, c)| zone.is_none_or(|z| c.orig.zone == z))
                .map(|(slot, _)| slot)
                .collect();
            for &slot in &slots {
                unlinks.extend(self.remove_slot(i, &mut shard, slot));
            }
            shard.stats.flushed += slots.len() as u64;
            removed += slots.len();
            drop(shard);
            for u in unlinks.drain(..) {
                self.unlink(u);
            }
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

    fn policy(&self, zone: u16) -> TimeoutPolicy {
        if !self.timeouts_set.load(Ordering::Acquire) {
            return self.config_timeouts;
        }
        self.timeouts.load().of(zone)
    }

    /// The timeouts of `zone` (its own policy, or the default one).
    pub fn timeouts(&self, zone: Option<u16>) -> TimeoutPolicy {
        let p = self.timeouts.load();
        zone.map_or(p.default, |z| p.of(z))
    }

    /// Sets the timeouts of `zone`, or the default ones with `None`. A connection takes
    /// them at its next packet (its current expiry stays), as in OVS.
    pub fn set_timeouts(&self, zone: Option<u16>, policy: TimeoutPolicy) {
        self.timeouts_set.store(true, Ordering::Release);
        self.timeouts.rcu(|p| {
            let mut next = Policies::clone(p);
            match zone {
                Some(z) => {
                    next.zones.insert(z, policy);
                }
                None => next.default = policy,
            }
            next
        });
    }

    /// Makes the default timeouts apply to `zone` again.
    pub fn del_timeouts(&self, zone: u16) {
        self.timeouts.rcu(|p| {
            let mut next = Policies::clone(p);
            next.zones.remove(&zone);
            next
        });
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

    /// Checks the table's invariants (for tests, on a quiet table): every connection is in
    /// the shard its original key selects and found there by it; its reply key is indexed
    /// beside it, or, when it selects another shard, that shard holds a forward naming its
    /// slot and generation; every forward names such a connection; no two connections share
    /// a key; the counts agree.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut total = 0usize;
        let mut zones: HashMap<u16, u32> = HashMap::new();
        let mut keys: HashMap<ConnKey, u32> = HashMap::new();
        let mut want_forwards = Vec::new();
        let mut forwards = Vec::new();
        for i in 0..SHARDS {
            let shard = self.lock_shard(i);
            shard.check(&self.hasher)?;
            for (slot, conn) in shard.iter() {
                let home = shard_of(self.hasher.hash(&conn.orig));
                if home != i {
                    return Err(format!("{:?} is in shard {i}, not {home}", conn.orig));
                }
                let r = shard_of(self.hasher.hash(&conn.reply));
                if conn.split == (r == i) {
                    return Err(format!(
                        "{:?}: split {} with its reply key in shard {r}",
                        conn.orig, conn.split
                    ));
                }
                if conn.split {
                    let fwd = Forward {
                        key: conn.reply,
                        home: i as u8,
                        slot,
                        gen: conn.gen,
                    };
                    want_forwards.push((r, fwd));
                }
                *keys.entry(conn.orig).or_default() += 1;
                if conn.reply != conn.orig {
                    *keys.entry(conn.reply).or_default() += 1;
                }
                *zones.entry(conn.orig.zone).or_default() += 1;
            }
            forwards.extend(shard.forwards().map(|f| (i, *f)));
            total += shard.len();
        }
        let key_of = |(r, f): &(usize, Forward)| (*r, f.key, f.home, f.slot, f.gen);
        let mut a: Vec<_> = want_forwards.iter().map(key_of).collect();
        let mut b: Vec<_> = forwards.iter().map(key_of).collect();
        a.sort_by_key(|x| format!("{x:?}"));
        b.sort_by_key(|x| format!("{x:?}"));
        if a != b {
            return Err(format!("forwards {b:?}, connections want {a:?}"));
        }
        if let Some((k, n)) = keys.iter().find(|(_, n)| **n > 1) {
            return Err(format!("{n} connections share the key {k:?}"));
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

/// `+trk+new` for `key`, with what happened to a commit.
fn new_outcome(key: &ConnKey, event: CtEvent) -> CtOutcome {
    CtOutcome {
        state: ct_state::TRACKED | ct_state::NEW,
        zone: key.zone,
        orig: Some(*key),
        event,
        ..CtOutcome::default()
    }
}

fn invalid_outcome(key: &ConnKey, reason: CtInvalid) -> CtOutcome {
    CtOutcome::invalid(key.zone, Some(*key), reason)
}

fn count_refusal(stats: &mut ShardStats, refused: CtEvent) {
    match refused {
        CtEvent::ZoneFull => stats.zone_full += 1,
        _ => stats.table_full += 1,
    }
}

/// The outcome for a packet of `conn` in the `reply` direction: sets what `exec` sets, and
/// with a `nat` in `exec` and a translation in `conn`, says how to rewrite the packet and
/// adds `+snat` or `+dnat` (OVS `nat_packet`: the kind of this direction, so a reply of a
/// SNAT'ed connection is `+dnat`).
fn finish(
    conn: &mut Conn,
    exec: &CtExec,
    state: u8,
    reply: bool,
    related: bool,
    event: CtEvent,
) -> CtOutcome {
    if let Some((value, mask)) = exec.set_mark {
        conn.mark = (value & mask) | (conn.mark & !mask);
    }
    if let Some((value, mask)) = exec.set_label {
        conn.label = (value & mask) | (conn.label & !mask);
    }
    let nat = match (exec.nat, conn.nat) {
        (Some(_), Some(kind)) => Some(NatRewrite {
            to: if reply {
                conn.orig.reverse()
            } else {
                conn.reply.reverse()
            },
            kind: if reply { kind.reverse() } else { kind },
            related,
        }),
        _ => None,
    };
    let nat_bit = match nat.map(|n| n.kind) {
        Some(NatKind::Src) => ct_state::SRC_NAT,
        Some(NatKind::Dst) => ct_state::DST_NAT,
        None => 0,
    };
    CtOutcome {
        state: state | nat_bit | ct_state::TRACKED,
        zone: conn.orig.zone,
        mark: conn.mark,
        label: conn.label,
        orig: Some(conn.orig),
        event,
        nat,
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
