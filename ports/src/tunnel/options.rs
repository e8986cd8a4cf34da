//! The options of `type=vxlan` and `type=geneve` ports, as Open vSwitch's tunnel interfaces
//! take them (`options:remote_ip=...` in `ovs-vsctl`): what `add-port` and the config take,
//! and their canonical text. A tunnel port has no queues: the tunnel nodes of the datapath
//! carry its packets.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::option::{bad, number, parse_bool, required, PortSpecError};

/// The keys of the tunnel types (`_` and `-` are the same in a key).
pub const KEYS: &[&str] = &[
    "remote-ip",
    "local-ip",
    "key",
    "in-key",
    "out-key",
    "dst-port",
    "ttl",
    "tos",
    "df-default",
    "csum",
];

/// Largest VNI: VXLAN and Geneve carry 24 bits.
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// The encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelType {
    /// RFC 7348, UDP 4789.
    Vxlan,
    /// RFC 8926, UDP 6081.
    Geneve,
}

impl TunnelType {
    /// The `type=` value.
    pub fn name(self) -> &'static str {
        match self {
            TunnelType::Vxlan => "vxlan",
            TunnelType::Geneve => "geneve",
        }
    }

    /// The IANA UDP port, `dst_port`'s default.
    pub fn default_port(self) -> u16 {
        match self {
            TunnelType::Vxlan => 4789,
            TunnelType::Geneve => 6081,
        }
    }
}

/// An address option that may be `flow`: taken from the packet's tunnel metadata
/// (`set_field:IP->tun_dst`) instead of fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowOr<T> {
    Fixed(T),
    Flow,
}

impl<T> FlowOr<T> {
    /// The fixed value; `None` for `flow`.
    pub fn fixed(self) -> Option<T> {
        match self {
            FlowOr::Fixed(v) => Some(v),
            FlowOr::Flow => None,
        }
    }
}

impl<T: std::fmt::Display> std::fmt::Display for FlowOr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowOr::Fixed(v) => v.fmt(f),
            FlowOr::Flow => f.write_str("flow"),
        }
    }
}

/// A TTL or TOS that may be `inherit`: copied from the inner IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InheritOr {
    Fixed(u8),
    Inherit,
}

impl InheritOr {
    /// The fixed value; `None` for `inherit`.
    pub fn fixed(self) -> Option<u8> {
        match self {
            InheritOr::Fixed(v) => Some(v),
            InheritOr::Inherit => None,
        }
    }
}

impl std::fmt::Display for InheritOr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InheritOr::Fixed(n) => n.fmt(f),
            InheritOr::Inherit => f.write_str("inherit"),
        }
    }
}

/// Options of a tunnel port, with Open vSwitch's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelOptions {
    pub ty: TunnelType,
    /// The other VTEP (`remote_ip`, required).
    pub remote_ip: FlowOr<Ipv4Addr>,
    /// This end's address; `None` picks the route's source address.
    pub local_ip: Option<FlowOr<Ipv4Addr>>,
    /// The VNI a received packet must carry (`in_key`, else `key`; default 0).
    pub in_key: FlowOr<u32>,
    /// The VNI sent (`out_key`, else `key`; default 0).
    pub out_key: FlowOr<u32>,
    /// The UDP destination port (default the type's IANA port).
    pub dst_port: u16,
    /// The outer TTL (default 64).
    pub ttl: InheritOr,
    /// The outer TOS (default 0).
    pub tos: InheritOr,
    /// Set DF on the outer IPv4 header (default true).
    pub df_default: bool,
    /// Compute the outer UDP checksum (default false over IPv4).
    pub csum: bool,
}

impl TunnelOptions {
    /// The options of a `type=vxlan` or `type=geneve` port, defaults for those not given.
    pub fn parse<'o>(
        ty: TunnelType,
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let need = format!(
            "type={} needs remote-ip=IP (or remote-ip=flow), the other VTEP",
            ty.name()
        );
        let remote_ip = flow_or(
            "remote-ip",
            required(given, "remote-ip", &need)?,
            parse_ipv4,
        )?;
        let local_ip = given("local-ip")
            .map(|v| flow_or("local-ip", v, parse_ipv4))
            .transpose()?;
        let key = given("key")
            .map(|v| flow_or("key", v, parse_vni))
            .transpose()?;
        let in_key = match given("in-key") {
            Some(v) => flow_or("in-key", v, parse_vni)?,
            None => key.unwrap_or(FlowOr::Fixed(0)),
        };
        let out_key = match given("out-key") {
            Some(v) => flow_or("out-key", v, parse_vni)?,
            None => key.unwrap_or(FlowOr::Fixed(0)),
        };
        let dst_port = given("dst-port")
            .map(|v| number("dst-port", v, 1, u16::MAX))
            .transpose()?
            .unwrap_or(ty.default_port());
        let ttl = match given("ttl") {
            None => InheritOr::Fixed(64),
            Some(v) => inherit_or("ttl", v, 1)?,
        };
        let tos = match given("tos") {
            None => InheritOr::Fixed(0),
            Some(v) => inherit_or("tos", v, 0)?,
        };
        let df_default = given("df-default")
            .map(|v| parse_bool("df-default", v))
            .transpose()?
            .unwrap_or(true);
        let csum = given("csum")
            .map(|v| parse_bool("csum", v))
            .transpose()?
            .unwrap_or(false);
        Ok(TunnelOptions {
            ty,
            remote_ip,
            local_ip,
            in_key,
            out_key,
            dst_port,
            ttl,
            tos,
            df_default,
            csum,
        })
    }

    /// The options as `options_text` prints them, every one with its value, in OVS's
    /// spelling (`remote_ip`).
    pub fn write(&self, s: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(s, " remote_ip={}", self.remote_ip);
        if let Some(l) = self.local_ip {
            let _ = write!(s, " local_ip={l}");
        }
        let _ = write!(
            s,
            " in_key={} out_key={} dst_port={} ttl={} tos={} df_default={} csum={}",
            self.in_key,
            self.out_key,
            self.dst_port,
            self.ttl,
            self.tos,
            self.df_default,
            self.csum
        );
    }
}

fn flow_or<T>(
    key: &str,
    value: &str,
    parse: impl Fn(&str, &str) -> Result<T, PortSpecError>,
) -> Result<FlowOr<T>, PortSpecError> {
    if value.eq_ignore_ascii_case("flow") {
        return Ok(FlowOr::Flow);
    }
    parse(key, value).map(FlowOr::Fixed)
}

fn parse_ipv4(key: &str, value: &str) -> Result<Ipv4Addr, PortSpecError> {
    let a: Ipv4Addr = value
        .parse()
        .map_err(|_| bad(key, value, "not an IPv4 address (or flow)"))?;
    if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
        return Err(bad(key, value, "not a unicast address"));
    }
    Ok(a)
}

/// A VNI: decimal or `0x` hex, 24 bits.
fn parse_vni(key: &str, value: &str) -> Result<u32, PortSpecError> {
    let n = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse::<u64>().ok(),
    };
    match n {
        Some(n) if n <= u64::from(MAX_VNI) => Ok(n as u32),
        Some(_) => Err(bad(key, value, format!("a VNI is 24 bits (0..={MAX_VNI})"))),
        None => Err(bad(key, value, "not a number (or flow)")),
    }
}

fn inherit_or(key: &str, value: &str, lo: u8) -> Result<InheritOr, PortSpecError> {
    if value.eq_ignore_ascii_case("inherit") {
        return Ok(InheritOr::Inherit);
    }
    number(key, value, lo, u8::MAX).map(InheritOr::Fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ty: TunnelType, words: &[(&str, &str)]) -> Result<TunnelOptions, PortSpecError> {
        TunnelOptions::parse(ty, &|k: &str| {
            words.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
        })
    }

    #[test]
    fn defaults_are_open_vswitchs() {
        let o = parse(TunnelType::Vxlan, &[("remote-ip", "172.31.1.2")]).unwrap();
        assert_eq!(o.remote_ip, FlowOr::Fixed(Ipv4Addr::new(172, 31, 1, 2)));
        assert_eq!((o.in_key, o.out_key), (FlowOr::Fixed(0), FlowOr::Fixed(0)));
        assert_eq!(
            (o.dst_port, o.ttl, o.tos),
            (4789, InheritOr::Fixed(64), InheritOr::Fixed(0))
        );
        assert!(o.df_default && !o.csum && o.local_ip.is_none());
        let g = parse(TunnelType::Geneve, &[("remote-ip", "flow")]).unwrap();
        assert_eq!((g.remote_ip, g.dst_port), (FlowOr::Flow, 6081));
    }

    #[test]
    fn key_sets_both_directions_unless_one_is_given() {
        let o = parse(
            TunnelType::Vxlan,
            &[
                ("remote-ip", "10.0.0.2"),
                ("key", "5000"),
                ("out-key", "0x10"),
            ],
        )
        .unwrap();
        assert_eq!(
            (o.in_key, o.out_key),
            (FlowOr::Fixed(5000), FlowOr::Fixed(16))
        );
        let o = parse(
            TunnelType::Vxlan,
            &[("remote-ip", "10.0.0.2"), ("key", "flow")],
        )
        .unwrap();
        assert_eq!((o.in_key, o.out_key), (FlowOr::Flow, FlowOr::Flow));
    }

    #[test]
    fn the_canonical_text_names_every_option() {
        let o = parse(
            TunnelType::Geneve,
            &[
                ("remote-ip", "flow"),
                ("local-ip", "10.0.0.1"),
                ("in-key", "7"),
                ("tos", "inherit"),
            ],
        )
        .unwrap();
        let mut s = String::new();
        o.write(&mut s);
        assert_eq!(
            s,
            " remote_ip=flow local_ip=10.0.0.1 in_key=7 out_key=0 dst_port=6081 ttl=64 tos=inherit \
             df_default=true csum=false"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (words, key) in [
            (vec![], "remote-ip"),
            (vec![("remote-ip", "10.0.0")], "remote-ip"),
            (vec![("remote-ip", "224.0.0.1")], "remote-ip"),
            (vec![("remote-ip", "10.0.0.2"), ("key", "16777216")], "key"),
            (vec![("remote-ip", "10.0.0.2"), ("in-key", "x")], "in-key"),
            (
                vec![("remote-ip", "10.0.0.2"), ("dst-port", "0")],
                "dst-port",
            ),
            (vec![("remote-ip", "10.0.0.2"), ("ttl", "0")], "ttl"),
            (vec![("remote-ip", "10.0.0.2"), ("tos", "256")], "tos"),
            (vec![("remote-ip", "10.0.0.2"), ("csum", "maybe")], "csum"),
            (
                vec![("remote-ip", "10.0.0.2"), ("local-ip", "1.2.3")],
                "local-ip",
            ),
        ] {
            let e = parse(TunnelType::Geneve, &words).unwrap_err().to_string();
            assert!(e.starts_with(key), "{words:?}: {e}");
        }
    }
}
