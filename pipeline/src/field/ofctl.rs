//! Field values in ovs-ofctl(8) flow syntax: parsing a match's `VALUE[/MASK]` into slot bits,
//! printing them back the way dump-flows does, and the values of `set_field` actions, each
//! according to the entry's [`Syntax`]. Errors are reasons; the caller names the field.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{ones, u128_to_mac, FieldDef, Syntax};
use crate::flowkey::{
    ct_state, ethertype, ipproto, FRAG_ANY, FRAG_LATER, VLAN_PCP_SHIFT, VLAN_PRESENT, VLAN_VID_MASK,
};

/// Why a value was refused; the text follows the field name in a rule error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// Named TCP flags, in `tcp_flags=+syn-ack` syntax.
pub const TCP_FLAG_NAMES: [(&str, u16); 9] = [
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
];

/// Named conntrack state bits, in `ct_state=+trk+est` syntax (Open vSwitch's names).
pub const CT_STATE_NAMES: [(&str, u16); 8] = [
    ("new", ct_state::NEW as u16),
    ("est", ct_state::ESTABLISHED as u16),
    ("rel", ct_state::RELATED as u16),
    ("rpl", ct_state::REPLY as u16),
    ("inv", ct_state::INVALID as u16),
    ("trk", ct_state::TRACKED as u16),
    ("snat", ct_state::SRC_NAT as u16),
    ("dnat", ct_state::DST_NAT as u16),
];

/// The `tun_flags` names: Open vSwitch's `oam` (the one flag its ovs-ofctl matches) and the
/// datapath flags it prints in tunnel keys, `df`, `csum` and `key` (a tunnel header was
/// there).
pub const TUN_FLAG_NAMES: [(&str, u16); 4] = [
    ("oam", crate::flowkey::TUN_FLAG_OAM),
    ("df", crate::flowkey::TUN_FLAG_DF),
    ("csum", crate::flowkey::TUN_FLAG_CSUM),
    ("key", crate::flowkey::TUN_FLAG_PRESENT),
];

/// `tun_flags=N[/M]` in OpenFlow's numbering (NXM_NX_TUN_FLAGS), where the one public flag,
/// `oam`, is bit 0 (`FLOW_TNL_F_OAM`): a bit beyond it is refused, as ovs-ofctl refuses it, and
/// the mask is only ever `oam` (`tun_flags=0` is `-oam`).
fn tun_flags_number(s: &str) -> Result<(u128, u128), BadValue> {
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (uint(v, 0xffff)?, uint(m, 0xffff)?),
        None => (uint(s, 0xffff)?, 1),
    };
    if (v | m) & !1 != 0 {
        return Err(bad(format!(
            "\"{s}\": unknown tunnel flag(s) (bit 0 is oam, the only one OpenFlow matches)"
        )));
    }
    let oam = u128::from(crate::flowkey::TUN_FLAG_OAM);
    Ok((
        if v & m & 1 != 0 { oam } else { 0 },
        if m & 1 != 0 { oam } else { 0 },
    ))
}

/// A match shorthand: an ethertype and, for the protocol ones, an IP protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Shorthand {
    pub name: &'static str,
    pub dl_type: u16,
    pub proto: Option<u8>,
}

const fn short(name: &'static str, dl_type: u16, proto: Option<u8>) -> Shorthand {
    Shorthand {
        name,
        dl_type,
        proto,
    }
}

/// Every shorthand, in the order the printer prefers them.
pub const SHORTHANDS: [Shorthand; 11] = [
    short("ip", ethertype::IPV4, None),
    short("ipv6", ethertype::IPV6, None),
    short("arp", ethertype::ARP, None),
    short("tcp", ethertype::IPV4, Some(ipproto::TCP)),
    short("udp", ethertype::IPV4, Some(ipproto::UDP)),
    short("sctp", ethertype::IPV4, Some(ipproto::SCTP)),
    short("icmp", ethertype::IPV4, Some(ipproto::ICMP)),
    short("tcp6", ethertype::IPV6, Some(ipproto::TCP)),
    short("udp6", ethertype::IPV6, Some(ipproto::UDP)),
    short("sctp6", ethertype::IPV6, Some(ipproto::SCTP)),
    short("icmp6", ethertype::IPV6, Some(ipproto::ICMPV6)),
];

fn bad(s: impl Into<String>) -> BadValue {
    BadValue(s.into())
}

/// Parses a decimal or `0x` hexadecimal number.
pub fn number(s: &str) -> Option<u128> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 32 {
            return None;
        }
        u128::from_str_radix(h, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A number no larger than `max`.
pub fn uint(s: &str, max: u128) -> Result<u128, BadValue> {
    let v = number(s).ok_or_else(|| bad(format!("\"{s}\" is not a number")))?;
    if v > max {
        return Err(bad(format!("\"{s}\" is out of range (0-{max})")));
    }
    Ok(v)
}

/// `VALUE[/MASK]`; the value is masked (as ovs-ofctl does), the mask defaults to all ones.
pub fn masked_uint(s: &str, max: u128) -> Result<(u128, u128), BadValue> {
    match s.split_once('/') {
        Some((v, m)) => {
            let m = uint(m, max)?;
            Ok((uint(v, max)? & m, m))
        }
        None => Ok((uint(s, max)?, max)),
    }
}

/// A port number or `LOCAL`, in OpenFlow's port space as ovs-ofctl reads it: 0 to 0xfeff,
/// and LOCAL as a name, as OpenFlow 1.0's 0xfffe or 1.1's 0xfffffffe. Other numbers are
/// refused: above 0xffff and below 0xffffff00 there are no ports, and the other reserved
/// numbers (IN_PORT, TABLE, NORMAL, FLOOD, ALL, CONTROLLER, ANY) are not ports to send to
/// by number (a match takes CONTROLLER: [`match_port`]).
pub fn port(s: &str, local: u32) -> Result<u32, BadValue> {
    if s.eq_ignore_ascii_case("local") {
        return Ok(local);
    }
    let n = uint(s, u128::from(u32::MAX))? as u32;
    match n {
        0..=0xfeff => Ok(n),
        0xfffe | 0xffff_fffe => Ok(local),
        0xff00..=0xffff | 0xffff_ff00..=0xffff_ffff => Err(bad(format!(
            "\"{s}\" is a reserved OpenFlow port number, not a port"
        ))),
        _ => Err(bad(format!(
            "\"{s}\" is outside OpenFlow's port range (0-65279, or LOCAL)"
        ))),
    }
}

/// OpenFlow 1.0's and 1.1's numbers of the `CONTROLLER` port.
const OFPP_CONTROLLER_OF10: u32 = 0xfffd;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;

/// `CONTROLLER` in the numbering `local` (the number of `LOCAL`) is in.
fn controller_port(local: u32) -> u32 {
    if local <= 0xffff {
        OFPP_CONTROLLER_OF10
    } else {
        OFPP_CONTROLLER
    }
}

/// The port a match's `in_port` holds: a [`port`], or `CONTROLLER` (by name, or as OpenFlow
/// 1.0's 0xfffd or 1.1's 0xfffffffd), the in_port of a frame a controller sends with
/// PACKET_OUT, as ovs-ofctl reads it.
pub fn match_port(s: &str, local: u32) -> Result<u32, BadValue> {
    let controller = s.eq_ignore_ascii_case("controller")
        || number(s).is_some_and(|n| n == 0xfffd || n == 0xffff_fffd);
    if controller {
        return Ok(controller_port(local));
    }
    port(s, local)
}

/// A dotted quad.
pub fn ipv4(s: &str) -> Result<u32, BadValue> {
    let err = || bad(format!("\"{s}\" is not an IPv4 address"));
    let mut out = 0u32;
    let mut n = 0;
    for part in s.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let b: u32 = part.parse().map_err(|_| err())?;
        if b > 255 {
            return Err(err());
        }
        out = (out << 8) | b;
        n += 1;
    }
    if n != 4 {
        return Err(err());
    }
    Ok(out)
}

/// `A.B.C.D[/N or /MASK]`.
fn masked_ipv4(s: &str) -> Result<(u32, u32), BadValue> {
    match s.split_once('/') {
        None => Ok((ipv4(s)?, u32::MAX)),
        Some((a, m)) => {
            let addr = ipv4(a)?;
            let mask = if m.contains('.') {
                ipv4(m)?
            } else {
                let n = uint(m, 32)
                    .map_err(|_| bad(format!("\"/{m}\" is not a prefix length (0-32)")))?
                    as u32;
                if n == 0 {
                    0
                } else {
                    u32::MAX << (32 - n)
                }
            };
            Ok((addr & mask, mask))
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> Result<[u8; 6], BadValue> {
    let err = || bad(format!("\"{s}\" is not an Ethernet address"));
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(':') {
        if n >= 6 || part.is_empty() || part.len() > 2 {
            return Err(err());
        }
        out[n] = u8::from_str_radix(part, 16).map_err(|_| err())?;
        n += 1;
    }
    if n != 6 {
        return Err(err());
    }
    Ok(out)
}

fn masked_mac(s: &str) -> Result<(u128, u128), BadValue> {
    let num = super::mac_to_u128;
    match s.split_once('/') {
        None => Ok((num(mac(s)?), ones(48))),
        Some((a, m)) => {
            let (a, m) = (num(mac(a)?), num(mac(m)?));
            Ok((a & m, m))
        }
    }
}

/// An IPv6 address as a number.
pub fn ipv6(s: &str) -> Result<u128, BadValue> {
    s.parse::<Ipv6Addr>()
        .map(u128::from)
        .map_err(|_| bad(format!("\"{s}\" is not an IPv6 address")))
}

fn masked_ipv6(s: &str) -> Result<(u128, u128), BadValue> {
    let (a, m) = match s.split_once('/') {
        None => (ipv6(s)?, u128::MAX),
        Some((a, m)) => {
            let mask = if m.contains(':') {
                ipv6(m)?
            } else {
                let n = uint(m, 128)
                    .map_err(|_| bad(format!("\"/{m}\" is not a prefix length (0-128)")))?
                    as u32;
                if n == 0 {
                    0
                } else {
                    u128::MAX << (128 - n)
                }
            };
            (ipv6(a)?, mask)
        }
    };
    Ok((a & m, m))
}

/// `+syn-ack`: flags after `+` must be set, after `-` must be clear.
pub fn parse_flags(s: &str, names: &[(&str, u16)]) -> Result<(u16, u16), BadValue> {
    let (mut val, mut mask) = (0u16, 0u16);
    let mut rest = s;
    while !rest.is_empty() {
        let set = rest.starts_with('+');
        if !set && !rest.starts_with('-') {
            return Err(bad(format!("\"{s}\" is not a flag list like +syn-ack")));
        }
        rest = &rest[1..];
        let end = rest.find(['+', '-']).unwrap_or(rest.len());
        let name = &rest[..end];
        let bit = names
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| bad(format!("\"{name}\" is not a known flag")))?;
        if mask & bit != 0 {
            return Err(bad(format!("flag \"{name}\" given twice")));
        }
        mask |= bit;
        if set {
            val |= bit;
        }
        rest = &rest[end..];
    }
    Ok((val, mask))
}

/// Parses a match's value for `def` into slot bits: `(value, mask)` of the whole slot, the
/// value already masked. `local` is the number of the `LOCAL` port.
pub fn parse_match_value(def: &FieldDef, s: &str, local: u32) -> Result<(u128, u128), BadValue> {
    // Numbers as wide as the syntax allows; the field's bits of them are kept (below).
    let max = ones(def.syntax_width);
    // Field-level value and mask (None: the mask is the field's bits).
    let (v, m): (u128, Option<u128>) = match def.syntax {
        Syntax::Decimal | Syntax::Hex | Syntax::VlanTci | Syntax::EthType | Syntax::Bytes => {
            if def.maskable {
                let (v, m) = masked_uint(s, max)?;
                (v, Some(m))
            } else {
                (uint(s, max)?, None)
            }
        }
        Syntax::Port => (u128::from(match_port(s, local)?), None),
        Syntax::Mac => {
            let (v, m) = masked_mac(s)?;
            (v, Some(m))
        }
        Syntax::Ipv4 => {
            let (v, m) = masked_ipv4(s)?;
            (u128::from(v), Some(u128::from(m)))
        }
        Syntax::Ipv6 => {
            let (v, m) = masked_ipv6(s)?;
            (v, Some(m))
        }
        Syntax::Flags(names) => {
            let (v, m) = if s.starts_with('+') || s.starts_with('-') {
                let (v, m) = parse_flags(s, names)?;
                (u128::from(v), u128::from(m))
            } else if names == TUN_FLAG_NAMES.as_slice() {
                tun_flags_number(s)?
            } else {
                masked_uint(s, max)?
            };
            (v, Some(m))
        }
        Syntax::Tos => {
            let t = uint(s, max)?;
            if t & !def.bits != 0 {
                return Err(bad(format!(
                    "\"{s}\" is not a multiple of 4 (the low 2 bits are nw_ecn)"
                )));
            }
            (t, None)
        }
        // The rest produce slot bits directly.
        Syntax::Frag => {
            return match s {
                "no" => Ok((0, u128::from(FRAG_ANY))),
                "yes" => Ok((u128::from(FRAG_ANY), u128::from(FRAG_ANY))),
                "first" => Ok((u128::from(FRAG_ANY), u128::from(FRAG_ANY | FRAG_LATER))),
                "later" => Ok((
                    u128::from(FRAG_ANY | FRAG_LATER),
                    u128::from(FRAG_ANY | FRAG_LATER),
                )),
                "not_later" => Ok((0, u128::from(FRAG_LATER))),
                _ => Err(bad(format!(
                    "\"{s}\" is not one of no, yes, first, later, not_later"
                ))),
            };
        }
        Syntax::DlVlan => {
            let vid = number(s)
                .filter(|n| *n <= 4095 || *n == 0xffff)
                .ok_or_else(|| {
                    bad(format!(
                        "\"{s}\" is not a VLAN id (0-4095, or 0xffff for no VLAN)"
                    ))
                })?;
            return Ok(if vid == 0xffff {
                // "No VLAN header": every TCI bit zero.
                (0, 0xffff)
            } else {
                (
                    u128::from(VLAN_PRESENT | (vid as u16 & VLAN_VID_MASK)),
                    u128::from(VLAN_PRESENT | VLAN_VID_MASK),
                )
            });
        }
        Syntax::DlVlanPcp => {
            let p = uint(s, 7)? as u16;
            return Ok((
                u128::from(VLAN_PRESENT | (p << VLAN_PCP_SHIFT)),
                u128::from(VLAN_PRESENT) | def.bits,
            ));
        }
    };
    let shifted = |x: u128| (x << def.shift) & def.bits;
    Ok((shifted(v), m.map_or(def.bits, shifted)))
}

/// `aa:bb:cc:dd:ee:ff`: how every printer of vecswitch writes an Ethernet address.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

fn mac_text(v: u128) -> String {
    format_mac(u128_to_mac(v))
}

fn masked_mac_text(v: u128, m: u128) -> String {
    if m == ones(48) {
        mac_text(v)
    } else {
        format!("{}/{}", mac_text(v), mac_text(m))
    }
}

fn masked_ipv4_text(v: u32, m: u32) -> String {
    if m == u32::MAX {
        Ipv4Addr::from(v).to_string()
    } else if m.leading_ones() + m.trailing_zeros() == 32 {
        format!("{}/{}", Ipv4Addr::from(v), m.leading_ones())
    } else {
        format!("{}/{}", Ipv4Addr::from(v), Ipv4Addr::from(m))
    }
}

fn masked_ipv6_text(v: u128, m: u128) -> String {
    if m == u128::MAX {
        Ipv6Addr::from(v).to_string()
    } else if m.leading_ones() + m.trailing_zeros() == 128 {
        format!("{}/{}", Ipv6Addr::from(v), m.leading_ones())
    } else {
        format!("{}/{}", Ipv6Addr::from(v), Ipv6Addr::from(m))
    }
}

/// Hexadecimal, with `/0xM` when masked (a value `VALUE/MASK` parses back).
pub fn masked_hex(v: u128, m: u128, full: u128) -> String {
    if m == full {
        hex(v)
    } else {
        format!("{}/{m:#x}", hex(v))
    }
}

/// `0x` hex, and zero as `0`, as ovs-ofctl prints numbers in hex.
pub fn hex(v: u128) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

/// Decimal when exact, `0xV/0xM` when masked.
fn masked_dec(v: u128, m: u128, full: u128) -> String {
    if m == full {
        v.to_string()
    } else {
        format!("{}/{m:#x}", hex(v))
    }
}

/// `+a-b` over the mask's bits when each has a name, else hex as wide as the field.
fn flags_text(v: u128, m: u128, width: u32, names: &[(&str, u16)]) -> String {
    let named = names.iter().fold(0u128, |a, (_, b)| a | u128::from(*b));
    if m & !named == 0 {
        let mut s = String::new();
        for (name, bit) in names {
            let bit = u128::from(*bit);
            if m & bit != 0 {
                s.push(if v & bit != 0 { '+' } else { '-' });
                s.push_str(name);
            }
        }
        s
    } else {
        let digits = width.div_ceil(4) as usize + 2;
        if m == ones(width) {
            format!("{v:#0digits$x}")
        } else {
            format!("{v:#0digits$x}/{m:#0digits$x}")
        }
    }
}

/// Pushes the `name=value` parts dump-flows prints for a matched field, from the slot's value
/// and mask. `local` is the number of the `LOCAL` port.
pub fn format_match_value(
    def: &FieldDef,
    name: &str,
    v_slot: u128,
    m_slot: u128,
    local: u32,
    out: &mut Vec<String>,
) {
    let (v, m) = (def.value_of(v_slot), def.value_of(m_slot));
    let full = ones(def.width);
    let text = match def.syntax {
        Syntax::Port if v == u128::from(local) => "LOCAL".to_string(),
        Syntax::Port if v == u128::from(controller_port(local)) => "CONTROLLER".to_string(),
        Syntax::Port | Syntax::Tos => v.to_string(),
        Syntax::Decimal if def.maskable => masked_dec(v, m, full),
        Syntax::Decimal => v.to_string(),
        Syntax::Hex | Syntax::Bytes if def.maskable => masked_hex(v, m, full),
        Syntax::Hex | Syntax::Bytes => format!("{v:#x}"),
        Syntax::EthType => format!("{v:#06x}"),
        Syntax::Mac => masked_mac_text(v, m),
        Syntax::Ipv4 => masked_ipv4_text(v as u32, m as u32),
        Syntax::Ipv6 => masked_ipv6_text(v, m),
        Syntax::Flags(names) => flags_text(v, m, def.width, names),
        Syntax::Frag => {
            let (fv, fm) = (v as u8, m as u8);
            match (fv, fm) {
                (0, FRAG_ANY) => "no",
                (FRAG_ANY, FRAG_ANY) => "yes",
                (0, FRAG_LATER) => "not_later",
                (FRAG_ANY, _) => "first",
                _ => "later",
            }
            .to_string()
        }
        Syntax::VlanTci | Syntax::DlVlan | Syntax::DlVlanPcp => {
            return vlan_tci_parts(v_slot as u16, m_slot as u16, out);
        }
    };
    out.push(format!("{name}={text}"));
}

/// The TCI as ovs-ofctl prints it: `dl_vlan` and `dl_vlan_pcp` when they say it exactly.
fn vlan_tci_parts(tv: u16, tm: u16, out: &mut Vec<String>) {
    let vid = tv & VLAN_VID_MASK;
    let pcp = tv >> VLAN_PCP_SHIFT;
    let present = tv & VLAN_PRESENT != 0;
    match tm {
        0x1fff if present => out.push(format!("dl_vlan={vid}")),
        0xf000 if present => out.push(format!("dl_vlan_pcp={pcp}")),
        0xffff if present => {
            out.push(format!("dl_vlan={vid}"));
            out.push(format!("dl_vlan_pcp={pcp}"));
        }
        0xffff => out.push(format!("vlan_tci={tv:#06x}")),
        _ => out.push(format!("vlan_tci={tv:#06x}/{tm:#06x}")),
    }
}

/// The value of `set_field:VALUE->FIELD` in the field's notation (MAC, dotted quad, IPv6,
/// number), refused when wider than the field.
pub fn parse_action_value(def: &FieldDef, s: &str) -> Result<u128, BadValue> {
    let v = match def.syntax {
        Syntax::Mac => super::mac_to_u128(mac(s)?),
        Syntax::Ipv4 => u128::from(ipv4(s)?),
        Syntax::Ipv6 => ipv6(s)?,
        _ => uint(s, u128::MAX)?,
    };
    if v > ones(def.width) {
        return Err(bad(format!(
            "\"{s}\" does not fit {} ({} bits)",
            def.name, def.width
        )));
    }
    Ok(v)
}

/// The value of a `set_field` action as printed.
pub fn format_action_value(def: &FieldDef, v: u128) -> String {
    match def.syntax {
        Syntax::Mac => mac_text(v),
        Syntax::Ipv4 => Ipv4Addr::from(v as u32).to_string(),
        Syntax::Ipv6 => Ipv6Addr::from(v).to_string(),
        Syntax::Hex => format!("{v:#x}"),
        _ => v.to_string(),
    }
}
