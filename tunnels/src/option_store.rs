//! Geneve options longer than a flow key holds.
//!
//! A [`FlowKey`] carries [`TUN_OPTS_LEN`] (32) bytes of Geneve options inline; RFC 8926
//! allows 252. A longer option area is kept here, once per distinct content, and the key
//! carries a *digest* of it instead: 128 bits of a keyed hash in the first 16 bytes of
//! `tun_opts` (little endian, the rest zero), with `tun_opts_len` the true length
//! (33..=252). Every cache still compares keys word by word, and a megaflow that consulted
//! the options (its mask covers `tun_opts` and `tun_opts_len`) matches them exactly: two
//! different option areas never share a digest here, as [`OptionStore::intern`] refuses the
//! second. Translation, and revalidation long after the packet is gone, read the bytes back
//! with [`OptionStore::options_of`].
//!
//! The hash is SipHash (std's) behind a random 128-bit secret prefix per store, so that a
//! sender cannot choose options that collide with another tenant's. The store is shared by
//! every PMD thread and the upcall (a clone shares it); it is touched only for packets whose
//! options do not fit the key. It holds at most a fixed number of areas: an entry no packet
//! has used for [`KEEP_NS`] (six times the default megaflow idle time, so no megaflow still
//! refers to it) is evicted when room is needed, and when nothing can be evicted a new area is
//! refused ([`StoreFull`]: the node drops the packet as `geneve-options-store-full`).

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use pipeline::flowkey::{FlowKey, TUN_OPTS_LEN};

/// An entry unused this long may be evicted: 60 s.
pub const KEEP_NS: u64 = 60 * 1_000_000_000;

/// Default bound on the option areas a store keeps.
pub const DEFAULT_CAPACITY: usize = 65_536;

const SHARDS: usize = 16;

/// The store has no room for another option area (or, with odds of 2^-128, another area
/// has its digest): the packet cannot be represented in a flow key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the Geneve option store is full")]
pub struct StoreFull;

struct Entry {
    options: Box<[u8]>,
    used_ns: AtomicU64,
}

struct Inner {
    secret: [u64; 2],
    hasher: RandomState,
    shard_capacity: usize,
    shards: [RwLock<HashMap<u128, Entry>>; SHARDS],
}

/// Option areas longer than a key holds, by digest. See the module documentation.
#[derive(Clone)]
pub struct OptionStore(Arc<Inner>);

impl Default for OptionStore {
    fn default() -> OptionStore {
        OptionStore::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for OptionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptionStore")
            .field("len", &self.len())
            .finish()
    }
}

impl OptionStore {
    /// An empty store holding at most about `capacity` areas, with a fresh random secret.
    pub fn new(capacity: usize) -> OptionStore {
        let hasher = RandomState::new();
        let secret = [hasher.hash_one(1u64), hasher.hash_one(2u64)];
        OptionStore(Arc::new(Inner {
            secret,
            hasher,
            shard_capacity: capacity.div_ceil(SHARDS).max(1),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }))
    }

    /// The digest of `options`: two 64-bit SipHash values, each behind its half of the
    /// secret.
    pub fn digest(&self, options: &[u8]) -> u128 {
        let half = |secret: u64| {
            let mut h = self.0.hasher.build_hasher();
            h.write_u64(secret);
            h.write(options);
            h.finish()
        };
        u128::from(half(self.0.secret[0])) | u128::from(half(self.0.secret[1])) << 64
    }

    fn shard(&self, digest: u128) -> &RwLock<HashMap<u128, Entry>> {
        &self.0.shards[digest as usize % SHARDS]
    }

    /// Keeps `options` (used at `now_ns`) and returns its digest. An area already kept is
    /// only marked used. A full store first evicts what was unused for [`KEEP_NS`].
    pub fn intern(&self, options: &[u8], now_ns: u64) -> Result<u128, StoreFull> {
        let digest = self.digest(options);
        let shard = self.shard(digest);
        {
            let map = shard.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = map.get(&digest) {
                if *e.options != *options {
                    return Err(StoreFull);
                }
                e.used_ns.store(now_ns, Ordering::Relaxed);
                return Ok(digest);
            }
        }
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get(&digest) {
            // Another thread kept it in between.
            if *e.options != *options {
                return Err(StoreFull);
            }
            e.used_ns.store(now_ns, Ordering::Relaxed);
            return Ok(digest);
        }
        if map.len() >= self.0.shard_capacity {
            map.retain(|_, e| now_ns.saturating_sub(e.used_ns.load(Ordering::Relaxed)) < KEEP_NS);
            if map.len() >= self.0.shard_capacity {
                return Err(StoreFull);
            }
        }
        map.insert(
            digest,
            Entry {
                options: options.into(),
                used_ns: AtomicU64::new(now_ns),
            },
        );
        Ok(digest)
    }

    /// The option area kept under `digest`.
    pub fn get(&self, digest: u128) -> Option<Box<[u8]>> {
        let map = self
            .shard(digest)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(&digest).map(|e| e.options.clone())
    }

    /// The Geneve options of `key` as they were on the wire: the key's own bytes, or the area
    /// its digest names. `None`: the area is no longer kept (see the module documentation).
    pub fn options_of<'k>(&self, key: &'k FlowKey) -> Option<Cow<'k, [u8]>> {
        let len = usize::from(key.tun_opts_len);
        if len <= TUN_OPTS_LEN {
            return key.tun_opts.get(..len).map(Cow::Borrowed);
        }
        let stored = self.get(key_digest(key))?;
        (stored.len() == len).then_some(Cow::Owned(stored.into_vec()))
    }

    /// `text`, a megaflow printed from `key`, with options kept by digest written out: the
    /// printer shows the key's bytes (`geneve=0x<digest, zero padded>/0xff…`, the mask a
    /// translation sets whole), this shows the options and a mask as long. Anything else is
    /// returned as it is.
    pub fn expand_digest(&self, text: String, key: &FlowKey) -> String {
        if usize::from(key.tun_opts_len) <= TUN_OPTS_LEN {
            return text;
        }
        let Some(options) = self.options_of(key) else {
            return text;
        };
        let printed = format!(
            "geneve={}/{}",
            hex(&key.tun_opts),
            hex(&[0xff; TUN_OPTS_LEN])
        );
        let full = format!(
            "geneve={}/{}",
            hex(&options),
            hex(&vec![0xff; options.len()])
        );
        text.replacen(&printed, &full, 1)
    }

    /// The number of areas kept.
    pub fn len(&self) -> usize {
        self.0
            .shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether no area is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::from("0x"), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The digest a key with more than [`TUN_OPTS_LEN`] bytes of options carries.
pub fn key_digest(key: &FlowKey) -> u128 {
    let mut b = [0u8; 16];
    if let Some(d) = key.tun_opts.get(..16) {
        b.copy_from_slice(d);
    }
    u128::from_le_bytes(b)
}

/// The `tun_opts` bytes of a key whose options are kept under `digest`.
pub fn digest_bytes(digest: u128) -> [u8; TUN_OPTS_LEN] {
    let mut b = [0u8; TUN_OPTS_LEN];
    b[..16].copy_from_slice(&digest.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(fill: u8, len: usize) -> Vec<u8> {
        vec![fill; len]
    }

    #[test]
    fn interned_options_read_back_through_the_key() {
        let s = OptionStore::new(64);
        let opts = area(7, 252);
        let d = s.intern(&opts, 1).unwrap();
        assert_eq!(s.intern(&opts, 2), Ok(d), "the same area, the same digest");
        let key = FlowKey {
            tun_opts: digest_bytes(d),
            tun_opts_len: 252,
            ..FlowKey::default()
        };
        assert_eq!(s.options_of(&key).as_deref(), Some(&opts[..]));
        // A megaflow's text shows the options, not the digest.
        let printed = format!(
            "in_port(1),geneve={}/0x{},eth_type(0x0800)",
            hex(&key.tun_opts),
            "ff".repeat(32)
        );
        let shown = s.expand_digest(printed, &key);
        let want = format!("geneve=0x{}/0x{},", "07".repeat(252), "ff".repeat(252));
        assert!(shown.contains(&want), "{shown}");
        assert!(shown.starts_with("in_port(1),") && shown.ends_with(",eth_type(0x0800)"));
        assert_ne!(s.intern(&area(8, 252), 3).unwrap(), d);
        assert_eq!(s.len(), 2);
        // A key whose length disagrees with the area kept reads nothing.
        let wrong = FlowKey {
            tun_opts_len: 248,
            ..key
        };
        assert_eq!(s.options_of(&wrong), None);
    }

    #[test]
    fn short_options_are_the_keys_own_bytes() {
        let s = OptionStore::new(4);
        let mut key = FlowKey {
            tun_opts_len: 8,
            ..FlowKey::default()
        };
        key.tun_opts[..8].copy_from_slice(&[0xff, 0xff, 0, 1, 0, 0, 0, 9]);
        assert_eq!(s.options_of(&key).as_deref(), Some(&key.tun_opts[..8]));
        assert!(s.is_empty());
    }

    #[test]
    fn a_full_store_evicts_only_what_went_unused() {
        // One area per shard at most.
        let s = OptionStore::new(SHARDS);
        let mut kept = Vec::new();
        let mut refused = 0;
        for i in 0..200u8 {
            match s.intern(&area(i, 40), 0) {
                Ok(d) => kept.push(d),
                Err(StoreFull) => refused += 1,
            }
        }
        assert!(
            kept.len() <= SHARDS && refused >= 200 - SHARDS,
            "{}",
            kept.len()
        );
        // Later, the old areas have gone unused long enough: new ones take their places.
        let later = KEEP_NS;
        let fresh: Vec<u128> = (0..200u8)
            .filter_map(|i| s.intern(&area(i, 44), later).ok())
            .collect();
        assert!(!fresh.is_empty());
        assert!(s.len() <= SHARDS);
        for d in fresh {
            assert!(s.get(d).is_some());
        }
    }

    #[test]
    fn stores_do_not_share_digests() {
        let (a, b) = (OptionStore::new(4), OptionStore::new(4));
        let opts = area(1, 36);
        assert_ne!(
            a.digest(&opts),
            b.digest(&opts),
            "each store has its own secret"
        );
    }
}
