//! One shard of the connection table: its connections in a chunked slab (fixed chunks of 256
//! slots, so growing never moves or copies the connections already there, and never holds the
//! lock for a big copy) and an index from each key to its slot (`slot << 1 | direction` in a
//! `hashbrown::HashTable`, 4 bytes a key), plus the forwarding entries of NAT'ed connections
//! whose reply key hashes here while they live in another shard (see `table.rs`). The shard
//! is only ever used under its lock.

use hashbrown::HashTable;

use crate::key::{ConnKey, KeyHasher};
use crate::nat::NatKind;
use crate::proto::ProtoState;

/// A tracked connection.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    /// The key of the packet that created it.
    pub(crate) orig: ConnKey,
    /// The key packets of the reply direction carry: the reverse of `orig`, or with NAT the
    /// translated tuple.
    pub(crate) reply: ConnKey,
    /// The translation committed with it (of the original direction), if any.
    pub(crate) nat: Option<NatKind>,
    /// The reply key hashes to another shard, which holds a [`Forward`] to this one; this
    /// shard's index then has only the original key.
    pub(crate) split: bool,
    /// Told apart from a later connection in the same slot (a forward names both).
    pub(crate) gen: u32,
    /// When it expires, on the caller's clock.
    pub(crate) expires_ns: u64,
    pub(crate) label: u128,
    pub(crate) mark: u32,
    pub(crate) proto: ProtoState,
}

impl Conn {
    pub(crate) fn expired(&self, now_ns: u64) -> bool {
        now_ns >= self.expires_ns
    }

    pub(crate) fn key(&self, reply: bool) -> &ConnKey {
        if reply {
            &self.reply
        } else {
            &self.orig
        }
    }
}

/// Counters of a shard, kept under its lock (no shared atomics on the packet path).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub committed: u64,
    pub expired: u64,
    pub flushed: u64,
    pub table_full: u64,
    pub zone_full: u64,
    pub invalid: u64,
    pub reopened: u64,
    /// Commits refused because no translated tuple of the NAT range was free.
    pub nat_exhausted: u64,
    /// Commits refused because the reply key is another connection's (a NAT'ed one's
    /// translated tuple).
    pub reply_taken: u64,
}

impl ShardStats {
    pub(crate) fn add(&mut self, o: &ShardStats) {
        self.committed += o.committed;
        self.expired += o.expired;
        self.flushed += o.flushed;
        self.table_full += o.table_full;
        self.zone_full += o.zone_full;
        self.invalid += o.invalid;
        self.reopened += o.reopened;
        self.nat_exhausted += o.nat_exhausted;
        self.reply_taken += o.reply_taken;
    }
}

const CHUNK_SHIFT: u32 = 8;
const CHUNK_LEN: usize = 1 << CHUNK_SHIFT;
const CHUNK_MASK: u32 = (CHUNK_LEN as u32) - 1;

/// A slot number with the direction in the low bit.
type IndexEntry = u32;

fn entry(slot: u32, reply: bool) -> IndexEntry {
    slot << 1 | u32::from(reply)
}

/// Where the connection whose reply key hashes to this shard lives (its home shard and
/// slot, and the slot's generation, checked when the home is locked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Forward {
    pub(crate) key: ConnKey,
    pub(crate) home: u8,
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

#[derive(Default)]
pub(crate) struct Shard {
    index: HashTable<IndexEntry>,
    forwards: HashTable<Forward>,
    next_gen: u32,
    chunks: Vec<Box<[Option<Conn>]>>,
    free: Vec<u32>,
    /// Slots below this were handed out at least once.
    high_water: u32,
    len: usize,
    pub(crate) stats: ShardStats,
}

/// The key an index entry points to.
fn key_in(chunks: &[Box<[Option<Conn>]>], e: IndexEntry) -> Option<&ConnKey> {
    let conn = slot_in(chunks, e >> 1)?;
    Some(conn.key(e & 1 == 1))
}

fn slot_in(chunks: &[Box<[Option<Conn>]>], slot: u32) -> Option<&Conn> {
    chunks
        .get((slot >> CHUNK_SHIFT) as usize)?
        .get((slot & CHUNK_MASK) as usize)?
        .as_ref()
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&Conn> {
        slot_in(&self.chunks, slot)
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Conn> {
        self.chunks
            .get_mut((slot >> CHUNK_SHIFT) as usize)?
            .get_mut((slot & CHUNK_MASK) as usize)?
            .as_mut()
    }

    /// The slot and direction (`true`: reply) of `key`, expired or not.
    pub(crate) fn find(&self, hash: u64, key: &ConnKey) -> Option<(u32, bool)> {
        let chunks = &self.chunks;
        let e = self.index.find(hash, |&e| key_in(chunks, e) == Some(key))?;
        Some((e >> 1, e & 1 == 1))
    }

    /// Stores `conn` and indexes its original key, and its reply key unless `conn.split`.
    /// Returns the slot and generation; `None` when the shard has no slot left.
    pub(crate) fn insert(&mut self, mut conn: Conn, hasher: &KeyHasher) -> Option<(u32, u32)> {
        let (h_orig, h_reply) = (hasher.hash(&conn.orig), hasher.hash(&conn.reply));
        let split = conn.split;
        let slot = self.alloc_slot()?;
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        conn.gen = gen;
        let place = self
            .chunks
            .get_mut((slot >> CHUNK_SHIFT) as usize)
            .and_then(|c| c.get_mut((slot & CHUNK_MASK) as usize))?;
        *place = Some(conn);
        let Shard { index, chunks, .. } = self;
        let rehash = |e: &IndexEntry| key_in(chunks, *e).map_or(0, |k| hasher.hash(k));
        index.insert_unique(h_orig, entry(slot, false), rehash);
        if !split {
            index.insert_unique(h_reply, entry(slot, true), rehash);
        }
        self.len += 1;
        Some((slot, gen))
    }

    /// The forwarding entry of `key`, if this shard holds one.
    pub(crate) fn find_forward(&self, hash: u64, key: &ConnKey) -> Option<Forward> {
        self.forwards.find(hash, |f| f.key == *key).copied()
    }

    /// Records that `f.key` (hashing to `hash`, i.e. to this shard) belongs to a connection
    /// of shard `f.home`.
    pub(crate) fn insert_forward(&mut self, hash: u64, f: Forward, hasher: &KeyHasher) {
        self.forwards
            .insert_unique(hash, f, |f| hasher.hash(&f.key));
    }

    /// Removes the forwarding entry `f` (exactly it: a newer one of the same key stays).
    pub(crate) fn remove_forward(&mut self, hash: u64, f: &Forward) -> bool {
        match self.forwards.find_entry(hash, |x| x == f) {
            Ok(found) => {
                found.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// True when a connection of the table uses `key`, as far as this shard (the one `key`
    /// hashes to) knows: an original or reply key here, or a forward to another shard.
    pub(crate) fn key_in_use(&self, hash: u64, key: &ConnKey) -> bool {
        self.find(hash, key).is_some() || self.find_forward(hash, key).is_some()
    }

    /// Every forwarding entry (for checks).
    pub(crate) fn forwards(&self) -> impl Iterator<Item = &Forward> {
        self.forwards.iter()
    }

    fn alloc_slot(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        let slot = self.high_water;
        if slot >= u32::MAX >> 1 {
            return None;
        }
        if (slot >> CHUNK_SHIFT) as usize >= self.chunks.len() {
            self.chunks.push((0..CHUNK_LEN).map(|_| None).collect());
        }
        self.high_water += 1;
        Some(slot)
    }

    /// Removes the connection in `slot` and both its index entries.
    pub(crate) fn remove(&mut self, slot: u32, hasher: &KeyHasher) -> Option<Conn> {
        let conn = self
            .chunks
            .get_mut((slot >> CHUNK_SHIFT) as usize)?
            .get_mut((slot & CHUNK_MASK) as usize)?
            .take()?;
        let keys = [(&conn.orig, false), (&conn.reply, true)];
        for (key, reply) in keys.into_iter().take(if conn.split { 1 } else { 2 }) {
            let want = entry(slot, reply);
            if let Ok(found) = self.index.find_entry(hasher.hash(key), |&e| e == want) {
                found.remove();
            }
        }
        self.free.push(slot);
        self.len -= 1;
        Some(conn)
    }

    /// Every connection with its slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .enumerate()
            .filter_map(|(i, c)| Some((i as u32, c.as_ref()?)))
    }

    /// Removes expired connections among the slots `from..from + max_scan`, at most `budget`
    /// of them, calling `gone` with each. Returns the next slot to look at (`None` past the
    /// end) and how many were removed.
    pub(crate) fn expire_slots(
        &mut self,
        from: u32,
        max_scan: u32,
        now_ns: u64,
        budget: usize,
        hasher: &KeyHasher,
        mut gone: impl FnMut(u32, &Conn),
    ) -> (Option<u32>, usize) {
        let end = from.saturating_add(max_scan).min(self.high_water);
        let mut removed = 0;
        let mut slot = from;
        while slot < end && removed < budget {
            if self.get(slot).is_some_and(|c| c.expired(now_ns)) {
                if let Some(conn) = self.remove(slot, hasher) {
                    gone(slot, &conn);
                    removed += 1;
                }
            }
            slot += 1;
        }
        self.stats.expired += removed as u64;
        let next = (slot < self.high_water).then_some(slot);
        (next, removed)
    }

    /// Bytes this shard holds on the heap (slab chunks, index, free list).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.len() * CHUNK_LEN * std::mem::size_of::<Option<Conn>>()
            + self.chunks.capacity() * std::mem::size_of::<Box<[Option<Conn>]>>()
            + self.index.allocation_size()
            + self.forwards.allocation_size()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Checks that every connection is found by both its keys and the index holds nothing
    /// else (for tests).
    pub(crate) fn check(&self, hasher: &KeyHasher) -> Result<(), String> {
        let mut n = 0;
        let mut split = 0;
        for (slot, conn) in self.iter() {
            n += 1;
            split += usize::from(conn.split);
            for reply in [false, true]
                .into_iter()
                .take(if conn.split { 1 } else { 2 })
            {
                let key = conn.key(reply);
                // A key equal to its own reverse (same address and port both ends) finds
                // either direction.
                let found = self.find(hasher.hash(key), key);
                let same = conn.orig == conn.reply;
                if found != Some((slot, reply)) && !(same && found.is_some_and(|f| f.0 == slot)) {
                    return Err(format!("slot {slot}: key {key:?} not found"));
                }
            }
        }
        if n != self.len || self.index.len() != 2 * n - split {
            return Err(format!(
                "{n} connections, len {}, {} index entries",
                self.len,
                self.index.len()
            ));
        }
        Ok(())
    }
}
