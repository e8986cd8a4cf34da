//! IP prefixes (`172.31.1.0/24`, a route's destination) and bridge addresses
//! (`172.31.1.1/24`, an address with the length of its network), IPv4 or IPv6, as the route
//! verbs write them. A prefix keeps only its network bits, as the kernel and Open vSwitch do
//! (`10.0.0.7/8` is `10.0.0.0/8`); an address keeps its host bits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why text is not a prefix or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("not an IPv4 or IPv6 address")]
    Address,
    #[error("the length after '/' is not a number from 0 to {0}")]
    Length(u8),
    /// A bridge address that cannot be one (0.0.0.0, ::, multicast, 255.255.255.255).
    #[error("not a unicast address")]
    NotUnicast,
}

/// Bits of an address of `ip`'s family: 32 or 128.
pub(crate) const fn width(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with the bits past the first `len` cleared (`len` past the width keeps them all).
pub(crate) fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// `IP/LEN`, or a bare `IP` for the whole width; the length must fit the family.
fn split(s: &str) -> Result<(IpAddr, u8), PrefixError> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| PrefixError::Address)?;
    let w = width(ip);
    let len = match len {
        None => w,
        // Digits only: `u8::from_str` would take a leading '+'.
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            l.parse::<u8>().map_err(|_| PrefixError::Length(w))?
        }
        Some(_) => return Err(PrefixError::Length(w)),
    };
    if len > w {
        return Err(PrefixError::Length(w));
    }
    Ok((ip, len))
}

/// A route destination: an IPv4 or IPv6 network address and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The network of `len` bits around `addr` (host bits cleared); `None` when `len` is past
    /// the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        (len <= width(addr)).then(|| Prefix {
            addr: masked(addr, len),
            len,
        })
    }

    /// The network address (host bits zero).
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    pub const fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` is in this network (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && masked(ip, self.len) == self.addr
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (ip, len) = split(s)?;
        Ok(Prefix {
            addr: masked(ip, len),
            len,
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An address configured on a bridge, with the length of its network (`172.31.1.1/24`): the
/// bridge sends from it, and its network is a connected route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BridgeAddr {
    ip: IpAddr,
    len: u8,
}

impl BridgeAddr {
    /// `ip` on a network of `len` bits; refused when `len` is past the width or `ip` is not a
    /// unicast address.
    pub fn new(ip: IpAddr, len: u8) -> Result<BridgeAddr, PrefixError> {
        if len > width(ip) {
            return Err(PrefixError::Length(width(ip)));
        }
        let unicast = match ip {
            IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
        };
        if !unicast {
            return Err(PrefixError::NotUnicast);
        }
        Ok(BridgeAddr { ip, len })
    }

    pub const fn ip(&self) -> IpAddr {
        self.ip
    }

    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network the address is on.
    pub fn subnet(&self) -> Prefix {
        Prefix {
            addr: masked(self.ip, self.len),
            len: self.len,
        }
    }
}

impl FromStr for BridgeAddr {
    type Err = PrefixError;

    /// `IP/LEN`; a bare `IP` is a host address (/32, /128).
    fn from_str(s: &str) -> Result<BridgeAddr, PrefixError> {
        let (ip, len) = split(s)?;
        BridgeAddr::new(ip, len)
    }
}

impl fmt::Display for BridgeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_masked_and_print_back() {
        assert_eq!(p("10.0.0.7/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(p("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(p("2001:db8::1").prefix_len(), 128);
        assert_eq!(p("::/0").addr(), "::".parse::<IpAddr>().unwrap());
        assert_eq!(
            Prefix::new("10.9.9.9".parse().unwrap(), 16),
            Some(p("10.9.0.0/16"))
        );
        assert_eq!(Prefix::new("10.9.9.9".parse().unwrap(), 33), None);
    }

    #[test]
    fn bad_prefixes_say_why() {
        for (s, e) in [
            ("10.0.0.0/33", PrefixError::Length(32)),
            ("10.0.0.0/", PrefixError::Length(32)),
            ("10.0.0.0/+8", PrefixError::Length(32)),
            ("10.0.0.0/8/8", PrefixError::Length(32)),
            ("2001:db8::/129", PrefixError::Length(128)),
            ("2001:db8::/999", PrefixError::Length(128)),
            ("10.0.0/8", PrefixError::Address),
            ("br-phy", PrefixError::Address),
            ("", PrefixError::Address),
        ] {
            assert_eq!(s.parse::<Prefix>(), Err(e), "{s}");
        }
    }

    #[test]
    fn contains_stays_in_its_family() {
        let net = p("172.31.1.0/24");
        assert!(net.contains("172.31.1.200".parse().unwrap()));
        assert!(!net.contains("172.31.2.1".parse().unwrap()));
        assert!(!net.contains("::ffff:172.31.1.1".parse().unwrap()));
        assert!(p("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(!p("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(p("2001:db8::/64").contains("2001:db8::99".parse().unwrap()));
    }

    #[test]
    fn bridge_addresses_keep_host_bits_and_must_be_unicast() {
        let a: BridgeAddr = "172.31.1.1/24".parse().unwrap();
        assert_eq!(
            (a.to_string(), a.subnet()),
            ("172.31.1.1/24".into(), p("172.31.1.0/24"))
        );
        assert_eq!("10.0.0.1".parse::<BridgeAddr>().unwrap().prefix_len(), 32);
        for s in [
            "0.0.0.0/8",
            "224.0.0.1/4",
            "255.255.255.255",
            "::/0",
            "ff02::1/64",
        ] {
            assert_eq!(s.parse::<BridgeAddr>(), Err(PrefixError::NotUnicast), "{s}");
        }
        assert_eq!(
            "10.0.0.1/40".parse::<BridgeAddr>(),
            Err(PrefixError::Length(32))
        );
    }
}
