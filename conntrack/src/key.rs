//! Connection keys: the 5-tuple (plus zone) that names one direction of a connection, as Open
//! vSwitch's `struct conn_key` does. Addresses take 16 bytes whatever the family (IPv4 in the
//! first four, the rest zero) so IPv4 and IPv6 share one key type. ICMP queries (echo,
//! timestamp, info) use the identifier as the "port" of both ends and keep the message type of
//! each end, so that a request and its reply are the two directions of one connection (OVS:
//! `src.icmp_id = dst.icmp_id = id`, `dst.icmp_type = reverse(src.icmp_type)`).
//!
//! [`KeyHasher`] hashes a key *symmetrically*: a key and its reverse hash alike, so both
//! directions of a connection select the same shard and the same bucket group. It is keyed
//! with a random seed per table, so senders cannot aim their tuples at one shard.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::DefaultHashBuilder;

/// The address family of a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
#[repr(u8)]
pub enum Family {
    #[default]
    V4 = 4,
    V6 = 6,
}

/// An IPv4 or IPv6 address in 16 bytes, wire order: IPv4 in the first four bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct CtAddr(pub [u8; 16]);

impl CtAddr {
    /// An IPv4 address given as a host-order number (as `FlowKey::nw_src` holds it).
    pub const fn from_v4_bits(bits: u32) -> CtAddr {
        let [a, b, c, d] = bits.to_be_bytes();
        CtAddr([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    /// An IPv4 address.
    pub const fn from_v4(addr: Ipv4Addr) -> CtAddr {
        CtAddr::from_v4_bits(addr.to_bits())
    }

    /// An IPv6 address.
    pub const fn from_v6(addr: Ipv6Addr) -> CtAddr {
        CtAddr(addr.octets())
    }

    /// Either family, with its tag.
    pub const fn from_ip(addr: IpAddr) -> (Family, CtAddr) {
        match addr {
            IpAddr::V4(a) => (Family::V4, CtAddr::from_v4(a)),
            IpAddr::V6(a) => (Family::V6, CtAddr::from_v6(a)),
        }
    }

    /// The first four bytes as a host-order number (an IPv4 address as `FlowKey` holds it).
    pub const fn v4_bits(self) -> u32 {
        let [a, b, c, d, ..] = self.0;
        u32::from_be_bytes([a, b, c, d])
    }

    /// The address as `std` sees it, for the given family.
    pub fn to_ip(self, family: Family) -> IpAddr {
        match family {
            Family::V4 => {
                let [a, b, c, d, ..] = self.0;
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            }
            Family::V6 => IpAddr::V6(Ipv6Addr::from(self.0)),
        }
    }

    /// The two halves as numbers, for hashing and ordering.
    #[inline(always)]
    fn words(self) -> (u64, u64) {
        let n = u128::from_be_bytes(self.0);
        ((n >> 64) as u64, n as u64)
    }
}

impl fmt::Debug for CtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v4 = self.0.iter().skip(4).all(|b| *b == 0);
        let family = if v4 { Family::V4 } else { Family::V6 };
        write!(f, "{}", self.to_ip(family))
    }
}

/// One direction of a connection. `sport`/`dport` are the TCP, UDP or SCTP ports, the ICMP
/// identifier for ICMP queries (both ends) and zero for other protocols. `src_icmp_type` /
/// `dst_icmp_type` are the ICMP message types each end sends (zero for non-ICMP).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ConnKey {
    pub src: CtAddr,
    pub dst: CtAddr,
    pub sport: u16,
    pub dport: u16,
    pub zone: u16,
    pub proto: u8,
    pub family: Family,
    pub src_icmp_type: u8,
    pub dst_icmp_type: u8,
}

impl ConnKey {
    /// The key of the other direction (OVS `conn_key_reverse`).
    #[inline]
    pub fn reverse(&self) -> ConnKey {
        ConnKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            src_icmp_type: self.dst_icmp_type,
            dst_icmp_type: self.src_icmp_type,
            ..*self
        }
    }

    /// The source address as `std` sees it.
    pub fn src_ip(&self) -> IpAddr {
        self.src.to_ip(self.family)
    }

    /// The destination address as `std` sees it.
    pub fn dst_ip(&self) -> IpAddr {
        self.dst.to_ip(self.family)
    }

    /// True for ICMP (IPv4) and ICMPv6 keys of their own family.
    pub fn is_icmp(&self) -> bool {
        crate::proto::ProtoClass::of(self.proto, self.family) == crate::proto::ProtoClass::Icmp
    }

    /// The ports of the original-direction tuple the datapath exposes (`ct_tp_src` /
    /// `ct_tp_dst`): the ports, or for ICMP the type and code (OVS `write_ct_md`; tracked ICMP
    /// queries always have code 0).
    pub fn tuple_ports(&self) -> (u16, u16) {
        if self.is_icmp() {
            (u16::from(self.src_icmp_type), 0)
        } else {
            (self.sport, self.dport)
        }
    }

    /// One end as three numbers, for the symmetric hash.
    #[inline(always)]
    fn src_end(&self) -> (u64, u64, u32) {
        let (hi, lo) = self.src.words();
        (
            hi,
            lo,
            u32::from(self.sport) << 8 | u32::from(self.src_icmp_type),
        )
    }

    #[inline(always)]
    fn dst_end(&self) -> (u64, u64, u32) {
        let (hi, lo) = self.dst.words();
        (
            hi,
            lo,
            u32::from(self.dport) << 8 | u32::from(self.dst_icmp_type),
        )
    }
}

/// The keyed, direction-symmetric hash of [`ConnKey`]s. One per table, seeded at random.
#[derive(Clone, Debug, Default)]
pub struct KeyHasher {
    seed: DefaultHashBuilder,
}

impl KeyHasher {
    /// A hasher with a fresh random seed.
    pub fn new() -> KeyHasher {
        KeyHasher::default()
    }

    /// The hash of `key`, equal to the hash of `key.reverse()`: the two ends are fed in a
    /// canonical order (the smaller first).
    #[inline]
    pub fn hash(&self, key: &ConnKey) -> u64 {
        let (a, b) = (key.src_end(), key.dst_end());
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h = self.seed.build_hasher();
        h.write_u64(lo.0);
        h.write_u64(lo.1);
        h.write_u64(hi.0);
        h.write_u64(hi.1);
        h.write_u64(u64::from(lo.2) << 32 | u64::from(hi.2));
        h.write_u64(
            u64::from(key.zone) << 16 | u64::from(key.proto) << 8 | u64::from(key.family as u8),
        );
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ConnKey {
        ConnKey {
            src: CtAddr::from_v4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: CtAddr::from_v4(Ipv4Addr::new(10, 0, 0, 2)),
            sport: 40000,
            dport: 80,
            zone: 3,
            proto: 6,
            family: Family::V4,
            ..ConnKey::default()
        }
    }

    #[test]
    fn reverse_twice_is_identity_and_hash_is_symmetric() {
        let k = key();
        let h = KeyHasher::new();
        assert_eq!(k.reverse().reverse(), k);
        assert_ne!(k.reverse(), k);
        assert_eq!(h.hash(&k), h.hash(&k.reverse()));
    }

    #[test]
    fn hash_sees_zone_ports_and_is_seeded_per_table() {
        let k = key();
        let h = KeyHasher::new();
        assert_ne!(h.hash(&k), h.hash(&ConnKey { zone: 4, ..k }));
        assert_ne!(h.hash(&k), h.hash(&ConnKey { sport: 40001, ..k }));
        assert_ne!(h.hash(&k), KeyHasher::new().hash(&k));
    }

    #[test]
    fn addresses_round_trip() {
        let v6: Ipv6Addr = "fd00::1".parse().unwrap();
        assert_eq!(CtAddr::from_v6(v6).to_ip(Family::V6), IpAddr::V6(v6));
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(CtAddr::from_v4(v4).to_ip(Family::V4), IpAddr::V4(v4));
        assert_eq!(CtAddr::from_v4_bits(0xc000_0207), CtAddr::from_v4(v4));
    }
}
