//! IP fragment reassembly for `ct()`, after Open vSwitch's `lib/ipf.c`: connection tracking
//! needs a whole datagram (the L4 header is in the first fragment only), so a fragment that
//! reaches `ct()` is held in a list keyed by (zone, source, destination, protocol, IP
//! identifier, dl_type, recirc_id) until its datagram is complete. Then [`Ipf::add`] gives
//! back the reassembled datagram and the fragments ([`Datagram`]); the caller tracks the
//! datagram once and sends the *fragments* on with its verdict ([`Datagram::release`]: the
//! conntrack fields, and for NAT the translated addresses, identifier and, in the first
//! fragment, L4 header). IPv4 and IPv6 (fragment extension header).
//!
//! Shared by every PMD thread: 16 shards, each a `Mutex` over a map of lists; a fragment locks
//! one shard once. A held fragment is a copy (its bytes and metadata): the packet buffer goes
//! back to its PMD's pool at once, and the last fragment may arrive on another PMD. Copies
//! are allocations, on the fragment path only (OVS too: "the processing cost for fragments
//! is not important").
//!
//! Limits, OVS's defaults: at most 1000 fragments held (`set_max_frags`, at most 5000), a
//! non-last fragment of at least 1200 (IPv4) / 1280 (IPv6) bytes of IP packet
//! (`set_min_frag`, at least 400), at most `ceil((65535 - 60) / (min_v4 - 60))` fragments in
//! an IPv4 list (58 by default), a reassembled IP datagram of at most 65535 bytes, a list
//! lives 15 s from its first fragment ([`Ipf::expire`] drops what is left, as OVS 3.6+).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use pipeline::buffer::NO_OFFSET;
use pipeline::checksum::checksum;
use pipeline::flowkey::{ethertype, ipproto, CT_TUPLE_WORD};
use pipeline::{FlowKey, PacketMeta};

/// OVS `IPF_MAX_FRAGS_DEFAULT`: fragments held at most, all lists together.
pub const DEFAULT_MAX_FRAGS: u32 = 1000;
/// OVS `IPF_NFRAG_UBOUND`: the largest `set_max_frags` accepts.
pub const MAX_FRAGS_BOUND: u32 = 5000;
/// OVS `IPF_V4_FRAG_SIZE_MIN_DEF`: the smallest non-last IPv4 fragment (IP header included).
pub const DEFAULT_MIN_FRAG_V4: u32 = 1200;
/// OVS `IPF_V6_FRAG_SIZE_MIN_DEF`.
pub const DEFAULT_MIN_FRAG_V6: u32 = 1280;
/// OVS `IPF_V4_FRAG_SIZE_LBOUND` / `IPF_V6_FRAG_SIZE_LBOUND`: the smallest `set_min_frag`.
pub const MIN_FRAG_BOUND: u32 = 400;
/// OVS `IPF_FRAG_LIST_TIMEOUT`: a list expires this long after its first fragment.
pub const LIST_TIMEOUT_NS: u64 = 15_000_000_000;

const SHARDS: usize = 16;
const IPV4_MAX_HEADER: u32 = 60;
const IP_MAX_SIZE: usize = 65535;
/// OVS `IPF_IPV6_MAX_FRAG_LIST_SIZE`.
const V6_MAX_LIST: usize = 65535;

/// One counter per outcome, per family: OVS's `ipf-get-status` ones first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpfCounter {
    /// Fragments taken into a list.
    Accepted,
    /// Fragments released after their datagram was complete and tracked (to go on with the
    /// actions, or to be dropped as `ct-refused` when the table refused the datagram).
    Completed,
    /// Fragments dropped with their list when it expired.
    Expired,
    /// Non-last fragments smaller than the minimum (tracked as invalid).
    TooSmall,
    /// Fragments overlapping one already held (tracked as invalid).
    Overlap,
    /// Fragments of a complete datagram that could not be sent on (no free packet buffer).
    Purged,
    /// Fragments refused because the reassembler holds its maximum (tracked as invalid).
    TableFull,
    /// Fragments refused because their list holds its maximum (tracked as invalid).
    ListFull,
    /// Fragments with a bad header: lengths, IPv4 header checksum (tracked as invalid).
    Invalid,
    /// Datagrams whose reassembly would exceed 65535 bytes (their fragments expire).
    TooBig,
}

impl IpfCounter {
    pub const ALL: [IpfCounter; 10] = [
        IpfCounter::Accepted,
        IpfCounter::Completed,
        IpfCounter::Expired,
        IpfCounter::TooSmall,
        IpfCounter::Overlap,
        IpfCounter::Purged,
        IpfCounter::TableFull,
        IpfCounter::ListFull,
        IpfCounter::Invalid,
        IpfCounter::TooBig,
    ];

    /// The counter's name in `ipf-get-status --json`.
    pub fn name(self) -> &'static str {
        [
            "accepted",
            "completed",
            "expired",
            "too_small",
            "overlapped",
            "purged",
            "table_full",
            "list_full",
            "invalid",
            "too_big",
        ][self as usize]
    }
}

/// A family's settings and counters, as `ipf-get-status` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpfFamilyStatus {
    pub enabled: bool,
    pub min_frag_size: u32,
    /// By [`IpfCounter`] index.
    pub counters: [u64; IpfCounter::ALL.len()],
}

impl IpfFamilyStatus {
    pub fn get(&self, c: IpfCounter) -> u64 {
        self.counters[c as usize]
    }
}

/// What `ipf-get-status` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpfStatus {
    pub max_frags: u32,
    /// Fragments held now.
    pub frags: u32,
    pub v4: IpfFamilyStatus,
    pub v6: IpfFamilyStatus,
}

impl std::fmt::Display for IpfStatus {
    /// OVS's `dpctl/ipf-get-status` text, then the counters OVS does not have.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const P: &str = "        ";
        writeln!(f, "{P}Fragmentation Module Status")?;
        writeln!(f, "{P}---------------------------")?;
        writeln!(f, "{P}v4 enabled: {}", u8::from(self.v4.enabled))?;
        writeln!(f, "{P}v6 enabled: {}", u8::from(self.v6.enabled))?;
        writeln!(f, "{P}max num frags (v4/v6): {}", self.max_frags)?;
        writeln!(f, "{P}num frag: {}", self.frags)?;
        for (v, s) in [("v4", &self.v4), ("v6", &self.v6)] {
            writeln!(f, "{P}min {v} frag size: {}", s.min_frag_size)?;
            for (c, what) in [
                (IpfCounter::Accepted, "accepted"),
                (IpfCounter::Completed, "completed"),
                (IpfCounter::Expired, "expired"),
                (IpfCounter::TooSmall, "too small"),
                (IpfCounter::Overlap, "overlapped"),
                (IpfCounter::Purged, "purged"),
            ] {
                writeln!(f, "{P}{v} frags {what}: {}", s.get(c))?;
            }
        }
        for (v, s) in [("v4", &self.v4), ("v6", &self.v6)] {
            for (c, what) in [
                (IpfCounter::TableFull, "refused, table full"),
                (IpfCounter::ListFull, "refused, list full"),
                (IpfCounter::Invalid, "invalid"),
            ] {
                writeln!(f, "{P}{v} frags {what}: {}", s.get(c))?;
            }
            writeln!(f, "{P}{v} datagrams too big: {}", s.get(IpfCounter::TooBig))?;
        }
        Ok(())
    }
}

/// A refused setting, naming the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpfError {
    #[error("min-frag: {0} is below the smallest fragment size accepted ({MIN_FRAG_BOUND})")]
    MinFragTooSmall(u32),
    #[error(
        "max-nfrags: {0} is above the largest number of fragments accepted ({MAX_FRAGS_BOUND})"
    )]
    MaxFragsTooBig(u32),
}

/// What [`Ipf::add`] did with a fragment.
#[derive(Debug)]
pub enum FragVerdict {
    /// Not taken: reassembly is off for its family, or the fragment was refused (counted).
    /// The caller tracks it as OVS's conntrack does a fragment: `+trk+inv`.
    NotTaken,
    /// Held until its datagram is complete or its list expires.
    Held,
    /// It completed its datagram.
    Complete(Box<Datagram>),
}

/// The key of a list (OVS `ipf_list_key`). IPv4 addresses in the first four bytes; the
/// protocol is 0 for IPv6 (as OVS: the fragment header's next header is not part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ListKey {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    recirc_id: u32,
    zone: u16,
    dl_type: u16,
    proto: u8,
}

/// A held fragment: a copy of the frame (Ethernet padding cut) and of its metadata.
#[derive(Clone, Debug)]
struct Frag {
    frame: Vec<u8>,
    meta: PacketMeta,
    /// Where the fragment's data starts in `frame`.
    data_at: usize,
    /// Its data's first byte and the byte after its last in the datagram's payload.
    start: usize,
    end: usize,
    more: bool,
}

#[derive(Debug)]
struct FragList {
    frags: Vec<Frag>,
    expires_ns: u64,
    /// Reassembly failed (too big): further fragments are refused until it expires.
    failed: bool,
}

#[derive(Default)]
struct Shard {
    lists: HashMap<ListKey, FragList>,
}

/// The reassembler, shared by every PMD (one per connection table).
pub struct Ipf {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    v4_enabled: AtomicBool,
    v6_enabled: AtomicBool,
    min_v4: AtomicU32,
    min_v6: AtomicU32,
    max_frags: AtomicU32,
    held: AtomicU32,
    counters: [[AtomicU64; IpfCounter::ALL.len()]; 2],
}

impl Default for Ipf {
    fn default() -> Self {
        Ipf::new()
    }
}

/// A fragment's place, read from its bytes (OVS `ipf_is_valid_v*_frag`, `ipf_v*_key_extract`).
struct Parsed {
    key: ListKey,
    /// Bytes of the IP packet (header included): the minimum size applies to this.
    l3_len: usize,
    /// The frame's length without Ethernet padding.
    frame_len: usize,
    data_at: usize,
    start: usize,
    more: bool,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*d.get(at..)?.first_chunk::<2>()?))
}

/// Reads a fragment; `None` when it is not one or is malformed.
fn parse_fragment(data: &[u8], meta: &PacketMeta, zone: u16) -> Option<Parsed> {
    if meta.l3_ofs == NO_OFFSET {
        return None;
    }
    let l3 = usize::from(meta.l3_ofs);
    let ip = data.get(l3..)?;
    let mut key = ListKey {
        src: [0; 16],
        dst: [0; 16],
        id: 0,
        recirc_id: meta.key.recirc_id,
        zone,
        dl_type: meta.key.dl_type,
        proto: 0,
    };
    match meta.key.dl_type {
        ethertype::IPV4 => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            if ihl < 20 || total < ihl || total > ip.len() || checksum(ip.get(..ihl)?) != 0 {
                return None;
            }
            let frag = be16(ip, 6)?;
            if frag & 0x3fff == 0 {
                return None;
            }
            key.src[..4].copy_from_slice(ip.get(12..16)?);
            key.dst[..4].copy_from_slice(ip.get(16..20)?);
            key.id = u32::from(be16(ip, 4)?);
            key.proto = *ip.get(9)?;
            Some(Parsed {
                key,
                l3_len: total,
                frame_len: l3 + total,
                data_at: l3 + ihl,
                start: usize::from(frag & 0x1fff) * 8,
                more: frag & 0x2000 != 0,
            })
        }
        ethertype::IPV6 => {
            let total = 40 + usize::from(be16(ip, 4)?);
            if total > ip.len() {
                return None;
            }
            let (frag_at, _) = v6_fragment_header(ip.get(..total)?)?;
            let offlg = be16(ip, frag_at + 2)?;
            if offlg == 0 {
                return None;
            }
            key.src.copy_from_slice(ip.get(8..24)?);
            key.dst.copy_from_slice(ip.get(24..40)?);
            key.id = u32::from_be_bytes(*ip.get(frag_at + 4..)?.first_chunk::<4>()?);
            Some(Parsed {
                key,
                l3_len: total,
                frame_len: l3 + total,
                data_at: l3 + frag_at + 8,
                start: usize::from(offlg & 0xfff8),
                more: offlg & 1 != 0,
            })
        }
        _ => None,
    }
}

/// The offset (from the IPv6 header) of the fragment header of `ip` and of the next-header
/// byte that names it; `None` without one.
fn v6_fragment_header(ip: &[u8]) -> Option<(usize, usize)> {
    let (mut nh, mut nh_at, mut at) = (*ip.get(6)?, 6, 40);
    loop {
        match nh {
            ipproto::FRAGMENT => return (ip.len() >= at + 8).then_some((at, nh_at)),
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS | 51 => {
                let len = if nh == 51 {
                    (usize::from(*ip.get(at + 1)?) + 2) * 4
                } else {
                    (usize::from(*ip.get(at + 1)?) + 1) * 8
                };
                nh = *ip.get(at)?;
                nh_at = at;
                at += len;
            }
            _ => return None,
        }
    }
}

impl Ipf {
    pub fn new() -> Ipf {
        Ipf {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            v4_enabled: AtomicBool::new(true),
            v6_enabled: AtomicBool::new(true),
            min_v4: AtomicU32::new(DEFAULT_MIN_FRAG_V4),
            min_v6: AtomicU32::new(DEFAULT_MIN_FRAG_V6),
            max_frags: AtomicU32::new(DEFAULT_MAX_FRAGS),
            held: AtomicU32::new(0),
            counters: Default::default(),
        }
    }

    fn count(&self, v6: bool, c: IpfCounter, n: u64) {
        self.counters[usize::from(v6)][c as usize].fetch_add(n, Relaxed);
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic under the lock leaves whole lists behind: keep using them.
        match self.shards[i].lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Takes fragment `data` (its parsed `meta`) arriving at a `ct()` of zone `zone`. Only
    /// for packets whose key has `nw_frag` set.
    pub fn add(&self, data: &[u8], meta: &PacketMeta, zone: u16, now_ns: u64) -> FragVerdict {
        let v6 = meta.key.dl_type == ethertype::IPV6;
        let enabled = if v6 {
            &self.v6_enabled
        } else {
            &self.v4_enabled
        };
        if !enabled.load(Relaxed) {
            return FragVerdict::NotTaken;
        }
        let Some(p) = parse_fragment(data, meta, zone) else {
            self.count(v6, IpfCounter::Invalid, 1);
            return FragVerdict::NotTaken;
        };
        let min = if v6 { &self.min_v6 } else { &self.min_v4 }.load(Relaxed);
        if p.more && p.l3_len < min as usize {
            self.count(v6, IpfCounter::TooSmall, 1);
            return FragVerdict::NotTaken;
        }
        let end = p.start + (p.frame_len - p.data_at);
        if self.held.load(Relaxed) >= self.max_frags.load(Relaxed) {
            self.count(v6, IpfCounter::TableFull, 1);
            return FragVerdict::NotTaken;
        }
        let max_list = if v6 {
            V6_MAX_LIST
        } else {
            ((IP_MAX_SIZE as u32 - IPV4_MAX_HEADER)
                .div_ceil(min.max(MIN_FRAG_BOUND) - IPV4_MAX_HEADER)) as usize
        };
        let shard_index = (self.hasher.hash_one(p.key) as usize) % SHARDS;
        let mut shard = self.lock(shard_index);
        let list = shard.lists.entry(p.key).or_insert_with(|| FragList {
            frags: Vec::new(),
            expires_ns: now_ns.saturating_add(LIST_TIMEOUT_NS),
            failed: false,
        });
        if now_ns > list.expires_ns {
            // Expired, not swept yet: gone, as if the sweep had come first.
            let n = list.frags.len();
            self.held.fetch_sub(n as u32, Relaxed);
            self.count(v6, IpfCounter::Expired, n as u64);
            *list = FragList {
                frags: Vec::new(),
                expires_ns: now_ns.saturating_add(LIST_TIMEOUT_NS),
                failed: false,
            };
        }
        if list.failed {
            self.count(v6, IpfCounter::Invalid, 1);
            return FragVerdict::NotTaken;
        }
        if list.frags.len() >= max_list {
            self.count(v6, IpfCounter::ListFull, 1);
            return FragVerdict::NotTaken;
        }
        if list
            .frags
            .iter()
            .any(|f| p.start < f.end.max(f.start + 1) && f.start < end.max(p.start + 1))
        {
            self.count(v6, IpfCounter::Overlap, 1);
            return FragVerdict::NotTaken;
        }
        let mut frag_meta = *meta;
        frag_meta.len = p.frame_len as u16;
        list.frags.push(Frag {
            frame: data[..p.frame_len].to_vec(),
            meta: frag_meta,
            data_at: p.data_at,
            start: p.start,
            end,
            more: p.more,
        });
        self.held.fetch_add(1, Relaxed);
        self.count(v6, IpfCounter::Accepted, 1);
        if !complete(&mut list.frags) {
            return FragVerdict::Held;
        }
        match reassemble(&list.frags, v6) {
            Some((frame, meta)) => {
                let frags = shard
                    .lists
                    .remove(&p.key)
                    .map(|l| l.frags)
                    .unwrap_or_default();
                drop(shard);
                FragVerdict::Complete(Box::new(Datagram {
                    frame,
                    meta,
                    frags,
                    v6,
                }))
            }
            None => {
                list.failed = true;
                self.count(v6, IpfCounter::TooBig, 1);
                FragVerdict::Held
            }
        }
    }

    /// Drops the lists whose time is up and their fragments (counted `expired`); returns how
    /// many fragments it dropped. Called by the connection table's sweep.
    pub fn expire(&self, now_ns: u64) -> usize {
        if self.held.load(Relaxed) == 0 {
            return 0;
        }
        let mut dropped = 0;
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            shard.lists.retain(|key, list| {
                if now_ns <= list.expires_ns {
                    return true;
                }
                let n = list.frags.len();
                self.held.fetch_sub(n as u32, Relaxed);
                self.count(
                    key.dl_type == ethertype::IPV6,
                    IpfCounter::Expired,
                    n as u64,
                );
                dropped += n;
                false
            });
        }
        dropped
    }

    /// Counts the end of a complete datagram's fragments: `sent` went on, `purged` could not.
    pub fn released(&self, v6: bool, sent: usize, purged: usize) {
        self.held.fetch_sub((sent + purged) as u32, Relaxed);
        self.count(v6, IpfCounter::Completed, sent as u64);
        self.count(v6, IpfCounter::Purged, purged as u64);
    }

    /// OVS `ipf-set-enabled` / `ipf-set-disabled`. Held fragments stay until their list
    /// completes or expires.
    pub fn set_enabled(&self, v6: bool, on: bool) {
        if v6 {
            &self.v6_enabled
        } else {
            &self.v4_enabled
        }
        .store(on, Relaxed);
    }

    /// OVS `ipf-set-min-frag`: the smallest non-last fragment (IP packet bytes).
    pub fn set_min_frag(&self, v6: bool, size: u32) -> Result<(), IpfError> {
        if size < MIN_FRAG_BOUND {
            return Err(IpfError::MinFragTooSmall(size));
        }
        if v6 { &self.min_v6 } else { &self.min_v4 }.store(size, Relaxed);
        Ok(())
    }

    /// OVS `ipf-set-max-nfrags`: the most fragments held, all lists together.
    pub fn set_max_frags(&self, n: u32) -> Result<(), IpfError> {
        if n > MAX_FRAGS_BOUND {
            return Err(IpfError::MaxFragsTooBig(n));
        }
        self.max_frags.store(n, Relaxed);
        Ok(())
    }

    pub fn status(&self) -> IpfStatus {
        let family = |v6: bool| IpfFamilyStatus {
            enabled: if v6 {
                &self.v6_enabled
            } else {
                &self.v4_enabled
            }
            .load(Relaxed),
            min_frag_size: if v6 { &self.min_v6 } else { &self.min_v4 }.load(Relaxed),
            counters: std::array::from_fn(|c| self.counters[usize::from(v6)][c].load(Relaxed)),
        };
        IpfStatus {
            max_frags: self.max_frags.load(Relaxed),
            frags: self.held.load(Relaxed),
            v4: family(false),
            v6: family(true),
        }
    }
}

/// Sorts `frags` by offset and tells whether they make a whole datagram: a first one, a
/// last one, nothing missing between (OVS `ipf_list_complete`; overlaps were refused).
fn complete(frags: &mut [Frag]) -> bool {
    frags.sort_by_key(|f| f.start);
    frags.first().is_some_and(|f| f.start == 0)
        && frags.last().is_some_and(|f| !f.more)
        && frags.windows(2).all(|w| w[0].end == w[1].start)
}

/// The datagram of sorted, complete `frags`: the first fragment's frame with every
/// fragment's data after it, the IP header no longer a fragment's (IPv6 keeps the fragment
/// header, offset 0 and no more fragments: an atomic fragment, as OVS); its metadata is the
/// first fragment's, which has the L4 header parsed. `None` when above 65535 bytes.
fn reassemble(frags: &[Frag], v6: bool) -> Option<(Vec<u8>, PacketMeta)> {
    let first = frags.first()?;
    let payload: usize = frags.iter().map(|f| f.end - f.start).sum();
    let l3 = usize::from(first.meta.l3_ofs);
    let ip_len = first.data_at - l3 + payload;
    let limit = if v6 { IP_MAX_SIZE + 40 } else { IP_MAX_SIZE };
    if ip_len > limit {
        return None;
    }
    let mut frame = Vec::with_capacity(first.data_at + payload);
    frame.extend_from_slice(&first.frame);
    for f in &frags[1..] {
        frame.extend_from_slice(&f.frame[f.data_at..]);
    }
    let ip = &mut frame[l3..];
    if v6 {
        let (frag_at, _) = v6_fragment_header(&ip[..first.data_at - l3])?;
        ip[4..6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
        ip[frag_at + 2..frag_at + 4].copy_from_slice(&[0, 0]);
    } else {
        let ihl = first.data_at - l3;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[6] &= !0x20;
        set_ipv4_checksum(&mut ip[..ihl]);
    }
    let mut meta = first.meta;
    meta.len = frame.len() as u16;
    meta.key.nw_frag = 0;
    Some((frame, meta))
}

fn set_ipv4_checksum(header: &mut [u8]) {
    header[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(header);
    header[10..12].copy_from_slice(&c.to_be_bytes());
}

/// A complete datagram: `frame` / `meta` to track, then [`Datagram::release`] for the
/// fragments.
#[derive(Debug)]
pub struct Datagram {
    /// The reassembled frame (the first fragment's L2 header, the whole IP datagram).
    pub frame: Vec<u8>,
    /// Its metadata: the first fragment's, no longer a fragment.
    pub meta: PacketMeta,
    frags: Vec<Frag>,
    v6: bool,
}

impl Datagram {
    /// Whether the datagram is IPv6.
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// How many fragments it was made of.
    pub fn fragments(&self) -> usize {
        self.frags.len()
    }

    /// The fragments in offset order, each with the tracked datagram's verdict (`self.frame`
    /// and `self.meta` after tracking): its conntrack fields, and what NAT changed (OVS
    /// `ipf_post_execute_reass_pkts`): every fragment gets the datagram's addresses (and,
    /// IPv4, its identifier: a translated non-atomic datagram gets a new one, the same in
    /// every fragment), the first fragment its L4 bytes (header and checksum, over the whole
    /// datagram); IPv4 header checksums are summed again.
    pub fn release(self) -> impl Iterator<Item = (Vec<u8>, PacketMeta)> {
        let Datagram {
            frame: whole,
            meta: done,
            frags,
            v6,
        } = self;
        let l3 = usize::from(done.l3_ofs);
        frags.into_iter().map(move |f| {
            let Frag {
                mut frame,
                mut meta,
                data_at,
                start,
                ..
            } = f;
            copy_ct_fields(&done.key, &mut meta.key);
            let (ip, src) = (&mut frame[l3..], &whole[l3..]);
            if v6 {
                ip[8..40].copy_from_slice(&src[8..40]);
                meta.key.ipv6_src = done.key.ipv6_src;
                meta.key.ipv6_dst = done.key.ipv6_dst;
            } else {
                let ihl = data_at - l3;
                ip[4..6].copy_from_slice(&src[4..6]);
                ip[12..20].copy_from_slice(&src[12..20]);
                set_ipv4_checksum(&mut ip[..ihl]);
                meta.key.nw_src = done.key.nw_src;
                meta.key.nw_dst = done.key.nw_dst;
            }
            if start == 0 {
                let n = frame.len() - data_at;
                frame[data_at..].copy_from_slice(&whole[data_at..data_at + n]);
                meta.key.tp_src = done.key.tp_src;
                meta.key.tp_dst = done.key.tp_dst;
            }
            (frame, meta)
        })
    }
}

/// The conntrack fields a tracked datagram gives its fragments (OVS copies `ct_state`,
/// `ct_zone`, `ct_mark`, `ct_label` and the original-direction tuple).
fn copy_ct_fields(from: &FlowKey, to: &mut FlowKey) {
    to.ct_state = from.ct_state;
    to.ct_zone = from.ct_zone;
    to.ct_mark = from.ct_mark;
    to.ct_label = from.ct_label;
    to.words_mut()[CT_TUPLE_WORD..].copy_from_slice(&from.words()[CT_TUPLE_WORD..]);
}

#[cfg(test)]
mod tests;
