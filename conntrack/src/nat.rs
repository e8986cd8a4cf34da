//! NAT: the `nat(...)` argument of `ct()` as the tracker takes it ([`CtNat`]), the choice of a
//! connection's translated tuple ([`Search`], after Open vSwitch's `nat_get_unique_tuple`) and
//! what a packet of a NAT'ed connection must be rewritten to ([`NatRewrite`]).
//!
//! **The translated tuple is the reply key.** A connection committed with `nat(src=...)`
//! keeps the packet's key as its original key; its reply key is what replies will carry: the
//! reverse of the original with the chosen source address and port put in as the reply's
//! destination (for `dst=`, the reply's source). Originals are rewritten to look like the
//! reverse of the reply key, replies to look like the reverse of the original key, so a
//! connection's two keys say everything, as in OVS.
//!
//! **The choice** (OVS 3.1 `nat_get_unique_tuple`, with the port kept where it can be, as
//! Linux does): one address of the range, by a keyed hash of the connection (with
//! `persistent`, of its source address only, so a client keeps its address across
//! connections); then the ports. `src=` with a port range walks that range; `src=` without one
//! and every `dst=` walk the source port's class, OVS's `1-511`, `600-1023` or `1024-65535`,
//! starting at the port itself; `dst=` with a port range walks it for the destination port
//! first. A walk starts at the original port when it lies in the range (unless `hash` or
//! `random`), otherwise at an offset in the range (a keyed hash of the connection, or random
//! with `random`), and goes up from there, wrapping; as in OVS it tries at most 128 ports, then
//! rounds of 64, 32, 16 and 8 from new offsets, so an almost full range of thousands of ports
//! costs a bounded number of lookups. TCP and UDP translate ports, ICMP and ICMPv6 queries
//! their identifier (as OVS since 3.2); other protocols only addresses.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use pipeline::flowkey::ipproto;

use crate::key::{ConnKey, CtAddr, Family};
use crate::proto::ProtoClass;

/// Which end a `nat` rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// `nat(src=...)`: the source of originals (the destination of replies).
    Src,
    /// `nat(dst=...)`: the destination of originals (the source of replies).
    Dst,
}

impl fmt::Display for CtNat {
    /// As OVS's dpctl prints it (`format_odp_ct_nat`): `nat`, or
    /// `nat(src=10.0.0.1-10.0.0.2:1000-2000,persistent,hash)`, IPv6 addresses in brackets
    /// when ports follow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nat")?;
        let Some(kind) = self.kind else {
            return Ok(());
        };
        f.write_str(match kind {
            NatKind::Src => "(src",
            NatKind::Dst => "(dst",
        })?;
        if let Some(r) = self.range {
            let bracket = r.ports.is_some() && r.family == Family::V6;
            let addr = |a: CtAddr| {
                let ip = a.to_ip(r.family);
                if bracket {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                }
            };
            write!(f, "={}", addr(r.min))?;
            if r.max != r.min {
                write!(f, "-{}", addr(r.max))?;
            }
            if let Some((lo, hi)) = r.ports {
                write!(f, ":{lo}")?;
                if hi != lo {
                    write!(f, "-{hi}")?;
                }
            }
        }
        for (on, name) in [
            (self.persistent, "persistent"),
            (self.hash, "hash"),
            (self.random, "random"),
        ] {
            if on {
                write!(f, ",{name}")?;
            }
        }
        f.write_str(")")
    }
}

impl NatKind {
    /// The rewrite of the other direction.
    pub const fn reverse(self) -> NatKind {
        match self {
            NatKind::Src => NatKind::Dst,
            NatKind::Dst => NatKind::Src,
        }
    }
}

/// The addresses and ports a `nat` may choose from (addresses of the connection's family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatRange {
    pub family: Family,
    pub min: CtAddr,
    pub max: CtAddr,
    /// The port range; `None`: ports are kept where they can be.
    pub ports: Option<(u16, u16)>,
}

/// The `nat` of a `ct()` action. Without a kind (`nat` alone) it commits no translation and
/// applies the translation of connections committed with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtNat {
    pub kind: Option<NatKind>,
    /// `None`: the address is kept (only ports may change).
    pub range: Option<NatRange>,
    pub persistent: bool,
    pub hash: bool,
    pub random: bool,
}

/// How a packet of a NAT'ed connection is rewritten: the tuple it must carry afterwards
/// (`to`: addresses and ports, the identifier of an ICMP query in both ports) and which end
/// the translation touches in this direction. For an ICMP error (`related`) the end applies
/// to the outer addresses and the quoted header becomes the reverse of `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatRewrite {
    pub to: ConnKey,
    pub kind: NatKind,
    pub related: bool,
}

/// OVS's source port classes (`set_sport_range`).
fn port_class(port: u16) -> (u16, u16) {
    match port {
        0..=511 => (1, 511),
        512..=1023 => (600, 1023),
        _ => (1024, 65535),
    }
}

/// True for the protocols whose ports (or ICMP identifier) NAT translates.
fn translates_ports(key: &ConnKey) -> bool {
    matches!(key.proto, ipproto::TCP | ipproto::UDP)
        || ProtoClass::of(key.proto, key.family) == ProtoClass::Icmp
}

/// A keyed hash of `words` (SipHash keyed by the table's seed), for the address and the
/// ports' starting offset.
pub(crate) fn keyed(seed: u64, words: &[u64]) -> u64 {
    // `DefaultHasher::new()` has fixed keys: the seed, written first, keys it.
    let mut h = std::hash::DefaultHasher::new();
    h.write_u64(seed);
    for w in words {
        h.write_u64(*w);
    }
    h.finish()
}

/// A fresh random number (for `random`): std's `RandomState` draws new keys per instance.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x6e6174u64)
}

fn addr_words(a: CtAddr) -> [u64; 2] {
    let n = u128::from_be_bytes(a.0);
    [(n >> 64) as u64, n as u64]
}

/// The address `offset` places after `min` in `[min, max]` (`offset` taken modulo the range's
/// size), IPv4 in the first four bytes.
fn addr_in_range(min: CtAddr, max: CtAddr, family: Family, offset: u64) -> CtAddr {
    match family {
        Family::V4 => {
            let lo = u32::from_be_bytes([min.0[0], min.0[1], min.0[2], min.0[3]]);
            let hi = u32::from_be_bytes([max.0[0], max.0[1], max.0[2], max.0[3]]);
            let size = u64::from(hi.saturating_sub(lo)) + 1;
            CtAddr::from_v4_bits(lo.wrapping_add((offset % size) as u32))
        }
        Family::V6 => {
            let lo = u128::from_be_bytes(min.0);
            let hi = u128::from_be_bytes(max.0);
            let size = hi.saturating_sub(lo).saturating_add(1);
            CtAddr((lo.wrapping_add(u128::from(offset) % size)).to_be_bytes())
        }
    }
}

/// Which field of the reply key a port walk sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The reply's destination port: the translated source port of originals.
    ReplyDport,
    /// The reply's source port: the translated destination port.
    ReplySport,
    /// Both: the identifier of an ICMP query.
    IcmpId,
}

/// A walk over a port range (OVS `nat_get_unique_l4` with `FOR_EACH_PORT_IN_RANGE`).
#[derive(Clone, Copy, Debug)]
struct PortWalk {
    slot: Slot,
    min: u16,
    max: u16,
    first: u16,
    curr: u16,
    /// Ports left in this round, and the size of the round.
    left: u32,
    round: u32,
    /// Where new rounds start.
    rng: u64,
}

const MAX_ATTEMPTS: u32 = 128;

impl PortWalk {
    fn new(slot: Slot, (min, max): (u16, u16), first: u16, rng: u64) -> PortWalk {
        let size = u32::from(max - min) + 1;
        let round = size.min(MAX_ATTEMPTS);
        PortWalk {
            slot,
            min,
            max,
            first,
            curr: first,
            left: round,
            round,
            rng,
        }
    }

    fn size(&self) -> u32 {
        u32::from(self.max - self.min) + 1
    }

    fn next(&mut self) -> Option<u16> {
        loop {
            if self.left > 0 {
                self.left -= 1;
                let port = self.curr;
                self.curr = if port >= self.max || port < self.min {
                    self.min
                } else {
                    port + 1
                };
                return Some(port);
            }
            if self.round < self.size() && self.round >= 16 {
                self.round /= 2;
                self.left = self.round;
                self.rng = keyed(self.rng, &[u64::from(self.round)]);
                self.curr = self.min + (self.rng % u64::from(self.size())) as u16;
            } else {
                return None;
            }
        }
    }
}

/// The candidate reply keys of a new connection, best first (see the module documentation).
/// The table takes the first one no other connection of the zone uses.
#[derive(Clone, Debug)]
pub(crate) struct Search {
    base: ConnKey,
    walks: [Option<PortWalk>; 2],
    at: usize,
    /// A protocol without ports has one candidate.
    single: bool,
}

impl Search {
    /// The candidates for the connection `orig` under `nat` (whose kind is set), with the
    /// table's `seed`.
    pub(crate) fn new(orig: &ConnKey, kind: NatKind, nat: &CtNat, seed: u64) -> Search {
        let mut base = orig.reverse();
        let (src, dst) = (addr_words(orig.src), addr_words(orig.dst));
        let range_words = nat.range.map_or([0; 5], |r| {
            let (lo, hi) = (addr_words(r.min), addr_words(r.max));
            let ports = r
                .ports
                .map_or(0, |(a, b)| u64::from(a) << 16 | u64::from(b));
            [lo[0], lo[1], hi[0], hi[1], ports]
        });
        let meta = u64::from(orig.zone) << 16 | u64::from(orig.proto) << 8 | orig.family as u64;
        let ports = u64::from(orig.sport) << 16 | u64::from(orig.dport);
        let conn_hash = keyed(
            seed,
            &[
                src[0],
                src[1],
                dst[0],
                dst[1],
                ports,
                meta,
                range_words[0],
                range_words[1],
                range_words[2],
                range_words[3],
                range_words[4],
            ],
        );
        if let Some(r) = nat.range {
            let addr_hash = if nat.persistent {
                keyed(
                    seed,
                    &[src[0], src[1], meta, range_words[0], range_words[1]],
                )
            } else {
                conn_hash
            };
            let addr = addr_in_range(r.min, r.max, orig.family, addr_hash);
            match kind {
                NatKind::Src => base.dst = addr,
                NatKind::Dst => base.src = addr,
            }
        }
        let offset = if nat.random {
            random_u64()
        } else {
            conn_hash >> 16
        };
        let keep = !nat.random && !nat.hash;
        let start = |(min, max): (u16, u16), own: u16| {
            if keep && (min..=max).contains(&own) {
                own
            } else {
                min + (offset % (u64::from(max - min) + 1)) as u16
            }
        };
        let mut walks = [None, None];
        let single = !translates_ports(orig);
        if !single {
            let icmp = orig.is_icmp();
            let range_ports = nat.range.and_then(|r| r.ports);
            match (kind, range_ports) {
                (NatKind::Src, Some(ports)) => {
                    let slot = if icmp { Slot::IcmpId } else { Slot::ReplyDport };
                    walks[0] = Some(PortWalk::new(
                        slot,
                        ports,
                        start(ports, orig.sport),
                        conn_hash,
                    ));
                }
                (NatKind::Dst, Some(ports)) if !icmp => {
                    let first = start(ports, orig.dport);
                    base.sport = first;
                    walks[0] = Some(PortWalk::new(Slot::ReplySport, ports, first, conn_hash));
                    let class = port_class(orig.sport);
                    walks[1] = Some(PortWalk::new(
                        Slot::ReplyDport,
                        class,
                        orig.sport,
                        conn_hash,
                    ));
                }
                _ => {
                    let slot = if icmp { Slot::IcmpId } else { Slot::ReplyDport };
                    let class = port_class(orig.sport);
                    walks[0] = Some(PortWalk::new(slot, class, orig.sport, conn_hash));
                }
            }
        }
        Search {
            base,
            walks,
            at: 0,
            single,
        }
    }

    /// The next candidate reply key, `None` when the search is over (the range is exhausted).
    pub(crate) fn next_key(&mut self) -> Option<ConnKey> {
        if self.single {
            self.single = false;
            self.at = self.walks.len();
            return Some(self.base);
        }
        while let Some(walk) = self.walks.get_mut(self.at) {
            let Some(w) = walk else {
                self.at += 1;
                continue;
            };
            match w.next() {
                Some(port) => {
                    let mut key = self.base;
                    match w.slot {
                        Slot::ReplyDport => key.dport = port,
                        Slot::ReplySport => key.sport = port,
                        Slot::IcmpId => (key.sport, key.dport) = (port, port),
                    }
                    return Some(key);
                }
                None => {
                    // OVS: a failed destination-port walk leaves its first port in place.
                    if w.slot == Slot::ReplySport {
                        self.base.sport = w.first;
                    }
                    self.at += 1;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(sport: u16, proto: u8) -> ConnKey {
        ConnKey {
            src: CtAddr::from_v4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: CtAddr::from_v4(Ipv4Addr::new(192, 168, 0, 2)),
            sport,
            dport: 80,
            proto,
            ..ConnKey::default()
        }
    }

    fn snat(lo: u16, hi: u16) -> CtNat {
        let a = CtAddr::from_v4(Ipv4Addr::new(192, 168, 0, 1));
        CtNat {
            kind: Some(NatKind::Src),
            range: Some(NatRange {
                family: Family::V4,
                min: a,
                max: a,
                ports: Some((lo, hi)),
            }),
            ..CtNat::default()
        }
    }

    fn all(mut s: Search) -> Vec<ConnKey> {
        std::iter::from_fn(|| s.next_key()).collect()
    }

    #[test]
    fn a_small_range_is_walked_whole_once() {
        let k = key(40000, ipproto::TCP);
        let keys = all(Search::new(&k, NatKind::Src, &snat(1000, 1009), 7));
        let mut ports: Vec<u16> = keys.iter().map(|k| k.dport).collect();
        ports.sort_unstable();
        assert_eq!(ports, (1000..=1009).collect::<Vec<_>>());
        let k0 = keys[0];
        assert_eq!(k0.dst, CtAddr::from_v4(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!((k0.src, k0.sport), (k.dst, 80));
    }

    #[test]
    fn the_own_port_is_kept_when_in_range_unless_hash_or_random() {
        let k = key(1005, ipproto::UDP);
        assert_eq!(
            all(Search::new(&k, NatKind::Src, &snat(1000, 1009), 7))[0].dport,
            1005
        );
        // Without a port range: the port's class, from the port itself.
        let mut nat = snat(0, 0);
        if let Some(r) = nat.range.as_mut() {
            r.ports = None;
        }
        let keys = all(Search::new(
            &key(40000, ipproto::UDP),
            NatKind::Src,
            &nat,
            7,
        ));
        assert_eq!(keys[0].dport, 40000);
        assert_eq!(keys[1].dport, 40001);
        // Bounded as in OVS: 128 + 64 + 32 + 16 + 8 candidates of 64512.
        assert_eq!(keys.len(), 248);
        assert!(keys.iter().all(|k| k.dport >= 1024));
        let k = key(700, ipproto::UDP);
        assert!(all(Search::new(&k, NatKind::Src, &nat, 7))
            .iter()
            .all(|k| (600..=1023).contains(&k.dport)));
    }

    #[test]
    fn other_protocols_have_one_candidate_and_icmp_moves_its_id() {
        let k = key(0, 47);
        let keys = all(Search::new(&k, NatKind::Src, &snat(1000, 1001), 1));
        assert_eq!(keys.len(), 1);
        let icmp = ConnKey {
            proto: ipproto::ICMP,
            sport: 7,
            dport: 7,
            src_icmp_type: 8,
            ..key(0, 0)
        };
        let keys = all(Search::new(&icmp, NatKind::Src, &snat(1000, 1001), 1));
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.sport == k.dport && k.sport >= 1000));
    }

    #[test]
    fn dnat_walks_the_destination_then_the_source_port() {
        let a = CtAddr::from_v4(Ipv4Addr::new(10, 0, 0, 9));
        let nat = CtNat {
            kind: Some(NatKind::Dst),
            range: Some(NatRange {
                family: Family::V4,
                min: a,
                max: a,
                ports: Some((8080, 8081)),
            }),
            ..CtNat::default()
        };
        let keys = all(Search::new(
            &key(40000, ipproto::TCP),
            NatKind::Dst,
            &nat,
            3,
        ));
        assert_eq!(keys[0].src, a);
        assert!(keys[..2].iter().all(|k| k.dport == 40000));
        assert!(keys[2..].iter().all(|k| k.sport == keys[0].sport));
        assert_eq!(keys[2].dport, 40000);
        assert_eq!(keys[3].dport, 40001);
    }

    #[test]
    fn addresses_stay_in_range() {
        let (lo, hi) = (
            CtAddr::from_v4(Ipv4Addr::new(10, 0, 0, 250)),
            CtAddr::from_v4(Ipv4Addr::new(10, 0, 1, 4)),
        );
        for off in 0..40 {
            let a = addr_in_range(lo, hi, Family::V4, off);
            assert!(lo <= a && a <= hi, "{a:?}");
        }
        let v6 = |s: &str| CtAddr::from_v6(s.parse().unwrap());
        let (lo, hi) = (v6("fd00::ffff"), v6("fd00::1:2"));
        for off in 0..10 {
            let a = addr_in_range(lo, hi, Family::V6, off);
            assert!(lo <= a && a <= hi, "{a:?}");
        }
        let all_v6 = addr_in_range(
            v6("::"),
            v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Family::V6,
            5,
        );
        assert_eq!(all_v6, v6("::5"));
    }
}
