//! The exact-match cache (EMC): a small per-PMD table from a packet's full [`FlowKey`] to the
//! megaflow that classified it, as Open vSwitch's dpif-netdev keeps one. Each key has two
//! candidate slots derived from the packet hash (2-way associative); a hit needs the stored
//! hash, the whole key and the megaflow's generation to agree, so an entry whose megaflow was
//! deleted or replaced can never hit. Insertion is probabilistic (`emc-insert-inv-prob`) with a
//! seeded xorshift generator, so that replays insert exactly the same entries every run.

use pipeline::FlowKey;

/// Megaflow index meaning "no megaflow" (an empty slot).
const EMPTY: u32 = u32::MAX;

/// What a lookup checks before it looks at the key: kept apart from the keys (12 bytes, five
/// to a cache line) so that a probe whose hash differs never touches the 192-byte key.
#[derive(Clone, Copy)]
struct EmcTag {
    hash: u32,
    flow: u32,
    generation: u32,
}

impl EmcTag {
    const VACANT: EmcTag = EmcTag {
        hash: 0,
        flow: EMPTY,
        generation: 0,
    };
}

/// A stored key on its own three cache lines, so a compare touches no more than three.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct SlotKey(FlowKey);

/// The exact-match cache of one PMD.
pub struct Emc {
    tags: Vec<EmcTag>,
    keys: Vec<SlotKey>,
    mask: u32,
    /// Insert when the next random number is `<= threshold`; `None` never inserts.
    threshold: Option<u32>,
    rng: u32,
}

impl Emc {
    /// A cache of `entries` slots (rounded up to a power of two; 0 disables the cache),
    /// inserting one time in `insert_inv_prob` (0 = never, 1 = always), with its random
    /// generator seeded from `seed`.
    pub fn new(entries: usize, insert_inv_prob: u32, seed: u64) -> Emc {
        let n = if entries == 0 {
            0
        } else {
            entries.min(1 << 24).next_power_of_two()
        };
        // xorshift32 must not start at 0; fold the 64-bit seed and force a bit on.
        let rng = ((seed ^ (seed >> 32)) as u32) | 1;
        Emc {
            tags: vec![EmcTag::VACANT; n],
            keys: vec![SlotKey::default(); n],
            mask: n.saturating_sub(1) as u32,
            threshold: match insert_inv_prob {
                0 => None,
                p => Some(u32::MAX / p),
            },
            rng,
        }
    }

    /// Number of slots (0 when disabled).
    pub fn capacity(&self) -> usize {
        self.tags.len()
    }

    /// Slots holding an entry (alive or stale).
    pub fn occupied(&self) -> usize {
        self.tags.iter().filter(|e| e.flow != EMPTY).count()
    }

    /// Heap bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        self.tags.capacity() * std::mem::size_of::<EmcTag>()
            + self.keys.capacity() * std::mem::size_of::<SlotKey>()
    }

    #[inline(always)]
    fn slots(&self, hash: u32) -> [usize; 2] {
        [
            (hash & self.mask) as usize,
            ((hash >> 16) & self.mask) as usize,
        ]
    }

    /// True when slot `slot` holds `key` under `hash`.
    #[inline(always)]
    fn holds(&self, slot: usize, hash: u32, key: &FlowKey) -> Option<EmcTag> {
        let t = *self.tags.get(slot)?;
        if t.hash != hash || t.flow == EMPTY {
            return None;
        }
        let k = self.keys.get(slot)?;
        k.0.same_as(key).then_some(t)
    }

    /// The megaflow cached for `key`, if one of its two slots holds it and `alive(flow,
    /// generation)` confirms the megaflow still exists unchanged.
    #[inline(always)]
    pub fn lookup(
        &self,
        hash: u32,
        key: &FlowKey,
        alive: impl Fn(u32, u32) -> bool,
    ) -> Option<u32> {
        for slot in self.slots(hash) {
            if let Some(t) = self.holds(slot, hash, key) {
                if alive(t.flow, t.generation) {
                    return Some(t.flow);
                }
            }
        }
        None
    }

    /// Advances the generator and says whether this miss should be inserted.
    #[inline(always)]
    pub fn roll(&mut self) -> bool {
        let Some(t) = self.threshold else {
            return false;
        };
        if self.tags.is_empty() {
            return false;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x <= t
    }

    /// Stores `key → (flow, generation)`: into the slot already holding the key, else into an
    /// empty or stale slot (`alive` says which are alive), else over the entry with the
    /// smaller hash (OVS's pseudo-random choice).
    pub fn insert(
        &mut self,
        hash: u32,
        key: &FlowKey,
        flow: u32,
        generation: u32,
        alive: impl Fn(u32, u32) -> bool,
    ) {
        if self.tags.is_empty() {
            return;
        }
        let [s0, s1] = self.slots(hash);
        let (Some(&e0), Some(&e1)) = (self.tags.get(s0), self.tags.get(s1)) else {
            return;
        };
        let dead = |e: &EmcTag| e.flow == EMPTY || !alive(e.flow, e.generation);
        let target = if self.holds(s0, hash, key).is_some() {
            s0
        } else if self.holds(s1, hash, key).is_some() {
            s1
        } else {
            match (dead(&e0), dead(&e1)) {
                (true, _) => s0,
                (false, true) => s1,
                (false, false) if e1.hash < e0.hash => s1,
                (false, false) => s0,
            }
        };
        if let (Some(t), Some(k)) = (self.tags.get_mut(target), self.keys.get_mut(target)) {
            *t = EmcTag {
                hash,
                flow,
                generation,
            };
            k.0 = *key;
        }
    }

    /// Empties every slot.
    pub fn clear(&mut self) {
        self.tags.iter_mut().for_each(|e| *e = EmcTag::VACANT);
        self.keys.iter_mut().for_each(|k| *k = SlotKey::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tp: u16) -> FlowKey {
        FlowKey {
            tp_dst: tp,
            ..FlowKey::default()
        }
    }

    #[test]
    fn hit_needs_hash_key_and_live_generation() {
        let mut emc = Emc::new(16, 1, 7);
        let k = key(80);
        emc.insert(5, &k, 3, 1, |_, _| true);
        assert_eq!(emc.lookup(5, &k, |_, _| true), Some(3));
        // Same hash, other key: no hit.
        assert_eq!(emc.lookup(5, &key(81), |_, _| true), None);
        // Same key presented with another hash: other slots, no hit.
        assert_eq!(emc.lookup(6 << 16 | 6, &k, |_, _| true), None);
        // The megaflow changed generation: never a hit.
        assert_eq!(emc.lookup(5, &k, |f, g| f == 3 && g == 2), None);
        assert_eq!(emc.lookup(5, &k, |f, g| f == 3 && g == 1), Some(3));
    }

    #[test]
    fn two_ways_hold_colliding_keys() {
        let mut emc = Emc::new(16, 1, 7);
        // Three keys with the same hash: both slots of the hash fill, the third evicts one.
        let (a, b, c) = (key(1), key(2), key(3));
        let h = 0x0003_0002;
        emc.insert(h, &a, 1, 0, |_, _| true);
        emc.insert(h, &b, 2, 0, |_, _| true);
        assert_eq!(emc.lookup(h, &a, |_, _| true), Some(1));
        assert_eq!(emc.lookup(h, &b, |_, _| true), Some(2));
        emc.insert(h, &c, 3, 0, |_, _| true);
        assert_eq!(emc.lookup(h, &c, |_, _| true), Some(3));
        let survivors = [&a, &b]
            .iter()
            .filter(|k| emc.lookup(h, k, |_, _| true).is_some())
            .count();
        assert_eq!(survivors, 1);
        // A stale entry is replaced first: flow 1 is dead, so inserting d keeps b/c alive.
        let mut emc = Emc::new(16, 1, 7);
        emc.insert(h, &a, 1, 0, |_, _| true);
        emc.insert(h, &b, 2, 0, |_, _| true);
        let alive = |f: u32, _| f != 1;
        emc.insert(h, &c, 3, 0, alive);
        assert_eq!(emc.lookup(h, &b, alive), Some(2));
        assert_eq!(emc.lookup(h, &c, alive), Some(3));
    }

    #[test]
    fn reinsert_updates_in_place() {
        let mut emc = Emc::new(16, 1, 7);
        let k = key(9);
        emc.insert(9, &k, 1, 0, |_, _| true);
        emc.insert(9, &k, 4, 2, |_, _| true);
        assert_eq!(emc.lookup(9, &k, |_, _| true), Some(4));
        assert_eq!(emc.occupied(), 1);
    }

    #[test]
    fn insertion_probability_is_seeded() {
        let count = |inv, seed| {
            let mut e = Emc::new(16, inv, seed);
            (0..10_000).filter(|_| e.roll()).count()
        };
        assert_eq!(count(1, 3), 10_000);
        assert_eq!(count(0, 3), 0);
        let c = count(100, 3);
        assert!((50..200).contains(&c), "1 in 100 gave {c}");
        assert_eq!(c, count(100, 3), "same seed, same draws");
        assert!(!Emc::new(0, 1, 1).roll());
    }

    #[test]
    fn disabled_cache_never_hits() {
        let mut emc = Emc::new(0, 1, 1);
        let k = key(1);
        emc.insert(1, &k, 1, 0, |_, _| true);
        assert_eq!(emc.lookup(1, &k, |_, _| true), None);
        assert_eq!(Emc::new(1000, 1, 1).capacity(), 1024);
    }
}
