//! The packet parser and the `parse` node: fills each packet's [`FlowKey`], its RSS-style hash
//! and its L3/L4 offsets from the frame bytes, following Open vSwitch's `flow_extract`
//! (lib/flow.c) field by field, except that a malformed header is a drop with a named reason
//! (OVS keeps such packets with the fields it could read).
//!
//! Every read is a checked fixed-size view ([`view`]), so the parser cannot panic on any input.
//! Ethernet (at most one VLAN tag) / IPv4 without options / TCP-or-UDP has its own
//! straight-line path that writes the key as whole words; everything else, errors included,
//! goes through the general parser, with the same result bit for bit.
#![forbid(unsafe_code)]

use crate::buffer::{PacketId, PacketMeta, NO_OFFSET};
use crate::flowkey::{
    ethertype, ipproto, FlowKey, FRAG_ANY, FRAG_LATER, PACKET_WORDS, VLAN_PRESENT,
};
use crate::graph::{Ctx, Next, Node};

/// Why a frame could not be parsed; the names are the `parse` node's drop-reason counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ParseError {
    /// Shorter than the 14-byte Ethernet header.
    EthTruncated = 0,
    /// A VLAN TPID, within the VLAN limit, without the 4 bytes of its tag and next ethertype.
    VlanTruncated,
    /// ARP shorter than the 28 bytes of Ethernet/IPv4 ARP.
    ArpTruncated,
    /// ARP for another hardware or protocol type, or with other address lengths.
    ArpBadFormat,
    /// Shorter than 20 bytes, than the header length, or than the total length.
    Ipv4Truncated,
    /// The version nibble is not 4.
    Ipv4BadVersion,
    /// Header length below 5 words.
    Ipv4BadIhl,
    /// Total length smaller than the header length.
    Ipv4BadTotalLength,
    /// Shorter than 40 bytes or than 40 + payload length.
    Ipv6Truncated,
    /// The version nibble is not 6.
    Ipv6BadVersion,
    /// An extension header that runs past the payload.
    Ipv6BadExtHeader,
    /// The L4 header (TCP 20, UDP 8, SCTP 12, ICMP 8, ICMPv6 4, ND 24 bytes) is cut short.
    L4Truncated,
    /// TCP data offset below 5 words or past the end of the segment.
    TcpBadOffset,
    /// A neighbour discovery option of length zero, running past the message, or a second
    /// link-layer address option of the same kind.
    Icmpv6NdBadOption,
}

impl ParseError {
    /// Counter names, indexed by the enum value.
    pub const NAMES: [&'static str; 14] = [
        "eth-truncated",
        "vlan-truncated",
        "arp-truncated",
        "arp-bad-format",
        "ipv4-truncated",
        "ipv4-bad-version",
        "ipv4-bad-ihl",
        "ipv4-bad-total-length",
        "ipv6-truncated",
        "ipv6-bad-version",
        "ipv6-bad-ext-header",
        "l4-truncated",
        "tcp-bad-offset",
        "icmpv6-nd-bad-option",
    ];

    /// The counter name of this reason.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for ParseError {}

/// How many VLAN headers the parser reads: Open vSwitch's `vlan-limit`. Past the limit the
/// next TPID is the frame's `dl_type` and nothing after it is parsed, so a rule for `ip` does
/// not match a frame with more tags than that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanLimit(u8);

impl VlanLimit {
    /// The most headers the key holds (`vlan_tci`, `vlan2_tci`).
    pub const MAX: VlanLimit = VlanLimit(2);
    /// Open vSwitch's default: one header.
    pub const DEFAULT: VlanLimit = VlanLimit(1);

    /// The limit of the setting `n` as OVS reads `other_config:vlan-limit`: 0 means as many
    /// as the parser can read, more than that is capped.
    pub fn from_setting(n: u64) -> VlanLimit {
        match n {
            0 => VlanLimit::MAX,
            n => VlanLimit(n.min(VlanLimit::MAX.0 as u64) as u8),
        }
    }

    /// How many headers are read (1 or 2).
    pub fn headers(self) -> usize {
        self.0 as usize
    }
}

impl Default for VlanLimit {
    fn default() -> VlanLimit {
        VlanLimit::DEFAULT
    }
}

impl std::fmt::Display for VlanLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// IPv6 authentication header (RFC 4302); walked like the other extension headers, as OVS does.
pub(crate) const IPPROTO_AH: u8 = 51;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_SOURCE_LINKADDR: u8 = 1;
const ND_OPT_TARGET_LINKADDR: u8 = 2;

/// A checked view of `N` bytes of `d` at `ofs`: after it, constant indexing cannot fail.
#[inline(always)]
pub fn view<const N: usize>(d: &[u8], ofs: usize) -> Option<&[u8; N]> {
    d.get(ofs..)?.first_chunk::<N>()
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// The exact-match-cache hash of a key: what [`parse_packet`] stores in `meta.hash`, for
/// stages that change the key (recirculation) and want the hash to follow.
#[inline]
pub fn key_hash(key: &FlowKey) -> u32 {
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&key.dl_dst);
    macs[6..].copy_from_slice(&key.dl_src);
    hash_with_macs(key, &macs)
}

/// The hash over the fields that tell flows apart: tunnel id, recirculation and conntrack
/// word, in_port, MACs, dl_type, VLANs, addresses, nw_proto and ports. Each field is folded
/// into its own rotation of one 64-bit word (independent XORs, no serial chain), then one
/// folded multiply mixes it.
///
/// The MACs come as a separate argument so that the parser can pass the packet bytes: a
/// wide load across the narrow stores that just wrote `dl_dst` / `dl_src` into the key would
/// stall on store forwarding. Every other field is loaded at the width it was stored with.
#[inline(always)]
fn hash_with_macs(key: &FlowKey, macs: &[u8; 12]) -> u32 {
    let [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = *macs;
    let mut h = hash_fields(
        key,
        u64::from_le_bytes([m0, m1, m2, m3, m4, m5, m6, m7]),
        u32::from_le_bytes([m8, m9, m10, m11]) as u64
            | (key.dl_type as u64) << 32
            | (key.vlan_tci as u64) << 48,
        key.vlan2_tci as u64
            | (key.nw_proto as u64) << 16
            | (key.tp_src as u64) << 32
            | (key.tp_dst as u64) << 48,
        key.nw_src as u64 | (key.nw_dst as u64) << 32,
    );
    if key.dl_type == ethertype::IPV6 {
        let half = |a: &[u8; 16], i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&a[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let (s, d) = (&key.ipv6_src, &key.ipv6_dst);
        h ^= (half(s, 0) ^ half(d, 0).rotate_left(17)).rotate_left(41)
            ^ (half(s, 8) ^ half(d, 8).rotate_left(17)).rotate_left(53);
    }
    fold(h)
}

/// The hash's fields before the IPv6 addresses: the words before `dl_dst` (which parsing
/// does not write) from `key`, the rest already packed by the caller (`t1` the first 8 MAC
/// bytes, `t2` the last 4 with dl_type and vlan_tci, `t3` vlan2_tci, nw_proto and the ports,
/// `t4` the IPv4 addresses), so the fast path can pass values it holds in registers.
#[inline(always)]
fn hash_fields(key: &FlowKey, t1: u64, t2: u64, t3: u64, t4: u64) -> u64 {
    let w = key.words();
    let t0 = w[0] ^ w[7].rotate_left(32) ^ w[8].rotate_left(16);
    t0 ^ t1.rotate_left(9) ^ t2.rotate_left(19) ^ t3 ^ t4.rotate_left(29)
}

/// Folded 64x64→128 multiply (one `mul`): every input bit reaches the middle bits.
#[inline(always)]
fn fold(h: u64) -> u32 {
    let p = (h ^ 0x243f_6a88_85a3_08d3) as u128 * 0x9e37_79b9_7f4a_7c15u128;
    let f = p as u64 ^ (p >> 64) as u64;
    (f ^ (f >> 32)) as u32
}

/// Parses `data` into `meta.key`, `meta.hash`, `meta.l3_ofs` and `meta.l4_ofs`, reading at
/// most [`VlanLimit::DEFAULT`] VLAN headers (see [`parse_packet_limit`]).
#[inline]
pub fn parse_packet(data: &[u8], meta: &mut PacketMeta) -> Result<(), ParseError> {
    parse_packet_limit(data, meta, VlanLimit::DEFAULT)
}

/// Parses `data` into `meta.key`, `meta.hash`, `meta.l3_ofs` and `meta.l4_ofs`, reading at
/// most `vlans` VLAN headers.
///
/// The key is zeroed from `dl_dst` on first; the fields before it are kept. On error the key
/// holds what was parsed before the bad header and the hash is still computed.
#[inline]
pub fn parse_packet_limit(
    data: &[u8],
    meta: &mut PacketMeta,
    vlans: VlanLimit,
) -> Result<(), ParseError> {
    // The fast path reads one tag at most, which every limit allows.
    if parse_fast(data, meta) {
        return Ok(());
    }
    parse_general(data, meta, vlans)
}

/// The general parser: every protocol and every error. [`parse_packet_limit`] gives the same
/// result for every input; it only tries [`parse_fast`] first.
#[inline]
fn parse_general(data: &[u8], meta: &mut PacketMeta, vlans: VlanLimit) -> Result<(), ParseError> {
    meta.key.words_mut()[PACKET_WORDS].fill(0);
    meta.l3_ofs = NO_OFFSET;
    meta.l4_ofs = NO_OFFSET;
    let r = parse_l2(data, meta, vlans);
    meta.hash = match view::<14>(data, 0) {
        Some(eth) => {
            let mut macs = [0u8; 12];
            macs.copy_from_slice(&eth[..12]);
            hash_with_macs(&meta.key, &macs)
        }
        None => key_hash(&meta.key),
    };
    r
}

// The fast path writes the key as whole words; these pin the field offsets it assumes.
const _: () = {
    use core::mem::offset_of;
    assert!(PACKET_WORDS.start == 11 && PACKET_WORDS.end == 24);
    assert!(offset_of!(FlowKey, dl_src) == 94);
    assert!(offset_of!(FlowKey, dl_type) == 100);
    assert!(offset_of!(FlowKey, vlan_tpid) == 102);
    assert!(offset_of!(FlowKey, vlan_tci) == 104);
    assert!(offset_of!(FlowKey, vlan2_tci) == 106);
    assert!(offset_of!(FlowKey, nw_src) == 108);
    assert!(offset_of!(FlowKey, nw_dst) == 112);
    assert!(offset_of!(FlowKey, ipv6_src) == 116);
    assert!(offset_of!(FlowKey, nw_proto) == 152);
    assert!(offset_of!(FlowKey, nw_tos) == 153);
    assert!(offset_of!(FlowKey, nw_ttl) == 154);
    assert!(offset_of!(FlowKey, nw_frag) == 155);
    assert!(offset_of!(FlowKey, tp_src) == 156);
    assert!(offset_of!(FlowKey, tp_dst) == 158);
    assert!(offset_of!(FlowKey, tcp_flags) == 160);
    assert!(offset_of!(FlowKey, arp_sha) == 162);
};

/// The common case in straight-line code: Ethernet II with at most one VLAN tag, IPv4
/// without options and not a fragment, TCP or UDP whose header fits. Every length is checked
/// once up front, the key's words from `dl_dst` on are each stored once, whole, and the hash
/// is computed from the values in registers. Returns false, having written nothing, for
/// anything else (including every error), which [`parse_general`] then handles; for what
/// it accepts the result is the general parser's, bit for bit (tested on fixtures,
/// truncations and random mutations).
#[inline(always)]
fn parse_fast(data: &[u8], meta: &mut PacketMeta) -> bool {
    // UDP needs 14 + 20 + 8 bytes at least, so 18 are there whenever it can succeed.
    let Some(eth) = view::<18>(data, 0) else {
        return false;
    };
    let ty = be16([eth[12], eth[13]]);
    let (ofs, tpid, tci) = if ty == ethertype::IPV4 {
        (14usize, 0u16, 0u16)
    } else if (ty == ethertype::VLAN || ty == ethertype::QINQ)
        && be16([eth[16], eth[17]]) == ethertype::IPV4
    {
        (18, ty, be16([eth[14], eth[15]]) | VLAN_PRESENT)
    } else {
        return false;
    };
    let Some(ip) = view::<28>(data, ofs) else {
        return false;
    };
    let tot_len = be16([ip[2], ip[3]]) as usize;
    // Version 4 with IHL 5; no MF and offset 0; the total length within the frame.
    if ip[0] != 0x45 || be16([ip[6], ip[7]]) & 0x3fff != 0 || data.len() - ofs < tot_len {
        return false;
    }
    let proto = ip[9];
    let (ports, flags) = match proto {
        ipproto::UDP if tot_len >= 28 => ([ip[20], ip[21], ip[22], ip[23]], 0u16),
        ipproto::TCP if tot_len >= 40 => {
            let Some(t) = view::<40>(data, ofs) else {
                return false;
            };
            let doff = (t[32] >> 4) as usize * 4;
            if doff < 20 || doff > tot_len - 20 {
                return false;
            }
            ([t[20], t[21], t[22], t[23]], be16([t[32], t[33]]) & 0x0fff)
        }
        _ => return false,
    };
    // Each word is built as the little-endian value of its bytes (fields at their byte
    // offsets, each in its in-memory order via `to_le`) and stored with `from_le`: one
    // shift-and-or form that is the same bytes on either endianness, and no work on x86.
    let le16 = |x: u16| x.to_le() as u64;
    let le32 = |x: u32| x.to_le() as u64;
    let Some((mac_lo, rest)) = eth.split_first_chunk::<8>() else {
        return false;
    };
    let Some(mac_hi) = rest.first_chunk::<4>() else {
        return false;
    };
    let mac_lo = u64::from_le_bytes(*mac_lo);
    let mac_hi = u32::from_le_bytes(*mac_hi) as u64;
    let nw_src = be32([ip[12], ip[13], ip[14], ip[15]]);
    let nw_dst = be32([ip[16], ip[17], ip[18], ip[19]]);
    let p = be32(ports);
    let (tp_src, tp_dst) = ((p >> 16) as u16, p as u16);
    let w = meta.key.words_mut();
    w[11] = u64::from_le(mac_lo);
    w[12] = u64::from_le(mac_hi | le16(ethertype::IPV4) << 32 | le16(tpid) << 48);
    w[13] = u64::from_le(le16(tci) | le32(nw_src) << 32);
    w[14] = u64::from_le(le32(nw_dst));
    w[15..19].fill(0);
    // nw_proto, nw_tos, nw_ttl, nw_frag 0, tp_src, tp_dst.
    w[19] = u64::from_le(
        proto as u64
            | (ip[1] as u64) << 8
            | (ip[8] as u64) << 16
            | le16(tp_src) << 32
            | le16(tp_dst) << 48,
    );
    w[20] = u64::from_le(le16(flags));
    w[21..PACKET_WORDS.end].fill(0);
    meta.l3_ofs = ofs as u16;
    meta.l4_ofs = ofs as u16 + 20;
    // The same packing as `hash_with_macs` (vlan2_tci is 0).
    let h = hash_fields(
        &meta.key,
        mac_lo,
        mac_hi | (ethertype::IPV4 as u64) << 32 | (tci as u64) << 48,
        (proto as u64) << 16 | (tp_src as u64) << 32 | (tp_dst as u64) << 48,
        nw_src as u64 | (nw_dst as u64) << 32,
    );
    meta.hash = fold(h);
    true
}

fn parse_l2(data: &[u8], meta: &mut PacketMeta, vlans: VlanLimit) -> Result<(), ParseError> {
    let eth = view::<14>(data, 0).ok_or(ParseError::EthTruncated)?;
    let key = &mut meta.key;
    key.dl_dst.copy_from_slice(&eth[0..6]);
    key.dl_src.copy_from_slice(&eth[6..12]);
    let mut ty = be16([eth[12], eth[13]]);
    let mut ofs = 14usize;
    let mut tags = 0;
    while (ty == ethertype::VLAN || ty == ethertype::QINQ) && tags < vlans.headers() {
        let tag = view::<4>(data, ofs).ok_or(ParseError::VlanTruncated)?;
        // The CFI/DEI bit doubles as "present", as in OVS.
        let tci = be16([tag[0], tag[1]]) | VLAN_PRESENT;
        if tags == 0 {
            key.vlan_tpid = ty;
            key.vlan_tci = tci;
        } else {
            key.vlan2_tci = tci;
        }
        ty = be16([tag[2], tag[3]]);
        ofs += 4;
        tags += 1;
    }
    // Below 0x600 the field is an 802.3 length, not a type.
    key.dl_type = if ty < 0x600 { ethertype::NONE } else { ty };
    meta.l3_ofs = ofs as u16;
    match ty {
        ethertype::IPV4 => parse_ipv4(data, ofs, meta),
        ethertype::IPV6 => parse_ipv6(data, ofs, meta),
        ethertype::ARP => parse_arp(data, ofs, &mut meta.key),
        _ => Ok(()),
    }
}

fn parse_arp(data: &[u8], ofs: usize, key: &mut FlowKey) -> Result<(), ParseError> {
    let a = view::<28>(data, ofs).ok_or(ParseError::ArpTruncated)?;
    // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
    if a[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return Err(ParseError::ArpBadFormat);
    }
    let op = be16([a[6], a[7]]);
    // Only the low 8 bits of the opcode are matchable (OVS).
    key.nw_proto = if op <= 0xff { op as u8 } else { 0 };
    key.arp_sha.copy_from_slice(&a[8..14]);
    key.nw_src = be32([a[14], a[15], a[16], a[17]]);
    key.arp_tha.copy_from_slice(&a[18..24]);
    key.nw_dst = be32([a[24], a[25], a[26], a[27]]);
    Ok(())
}

fn parse_ipv4(data: &[u8], ofs: usize, meta: &mut PacketMeta) -> Result<(), ParseError> {
    let ip = view::<20>(data, ofs).ok_or(ParseError::Ipv4Truncated)?;
    if ip[0] >> 4 != 4 {
        return Err(ParseError::Ipv4BadVersion);
    }
    let hlen = ((ip[0] & 0x0f) as usize) * 4;
    if hlen < 20 {
        return Err(ParseError::Ipv4BadIhl);
    }
    let tot_len = be16([ip[2], ip[3]]) as usize;
    if tot_len < hlen {
        return Err(ParseError::Ipv4BadTotalLength);
    }
    // Everything from the IP header on, Ethernet padding after the total length cut off.
    let l3 = data
        .get(ofs..ofs + tot_len)
        .ok_or(ParseError::Ipv4Truncated)?;
    let key = &mut meta.key;
    key.nw_tos = ip[1];
    key.nw_ttl = ip[8];
    key.nw_proto = ip[9];
    key.nw_src = be32([ip[12], ip[13], ip[14], ip[15]]);
    key.nw_dst = be32([ip[16], ip[17], ip[18], ip[19]]);
    let frag = be16([ip[6], ip[7]]);
    if frag & 0x3fff != 0 {
        // MF set or a non-zero offset.
        key.nw_frag = FRAG_ANY;
        if frag & 0x1fff != 0 {
            key.nw_frag |= FRAG_LATER;
            return Ok(());
        }
    }
    let l4 = l3.get(hlen..).unwrap_or(&[]);
    meta.l4_ofs = (ofs + hlen) as u16;
    parse_l4(l4, key)
}

fn parse_ipv6(data: &[u8], ofs: usize, meta: &mut PacketMeta) -> Result<(), ParseError> {
    let ip = view::<40>(data, ofs).ok_or(ParseError::Ipv6Truncated)?;
    let word0 = be32([ip[0], ip[1], ip[2], ip[3]]);
    if word0 >> 28 != 6 {
        return Err(ParseError::Ipv6BadVersion);
    }
    let plen = be16([ip[4], ip[5]]) as usize;
    let payload = data
        .get(ofs + 40..ofs + 40 + plen)
        .ok_or(ParseError::Ipv6Truncated)?;
    let key = &mut meta.key;
    key.nw_tos = (word0 >> 20) as u8;
    key.ipv6_label = word0 & 0x000f_ffff;
    key.nw_ttl = ip[7];
    key.ipv6_src.copy_from_slice(&ip[8..24]);
    key.ipv6_dst.copy_from_slice(&ip[24..40]);

    // Walk the extension headers (each at least 8 bytes, so the loop is bounded).
    let mut nh = ip[6];
    let mut at = 0usize;
    loop {
        match nh {
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS | IPPROTO_AH => {
                let h = view::<2>(payload, at).ok_or(ParseError::Ipv6BadExtHeader)?;
                let len = if nh == IPPROTO_AH {
                    (h[1] as usize + 2) * 4
                } else {
                    (h[1] as usize + 1) * 8
                };
                if payload.len() < at + len {
                    return Err(ParseError::Ipv6BadExtHeader);
                }
                nh = h[0];
                at += len;
            }
            ipproto::FRAGMENT => {
                let h = view::<8>(payload, at).ok_or(ParseError::Ipv6BadExtHeader)?;
                nh = h[0];
                at += 8;
                let offlg = be16([h[2], h[3]]);
                // An atomic fragment (offset 0, no MF) is not a fragment (OVS).
                if offlg != 0 {
                    key.nw_frag = FRAG_ANY;
                    if offlg & 0xfff8 != 0 {
                        // Later fragments: no L4 header; OVS reports nw_proto 44 here.
                        key.nw_frag |= FRAG_LATER;
                        key.nw_proto = ipproto::FRAGMENT;
                        return Ok(());
                    }
                }
            }
            _ => break,
        }
    }
    key.nw_proto = nh;
    meta.l4_ofs = (ofs + 40 + at) as u16;
    let l4 = payload.get(at..).unwrap_or(&[]);
    parse_l4(l4, key)
}

/// Parses the L4 header at the start of `l4` (the segment, padding excluded).
#[inline(always)]
fn parse_l4(l4: &[u8], key: &mut FlowKey) -> Result<(), ParseError> {
    match key.nw_proto {
        ipproto::TCP => {
            let t = view::<20>(l4, 0).ok_or(ParseError::L4Truncated)?;
            let doff = (t[12] >> 4) as usize * 4;
            if doff < 20 || doff > l4.len() {
                return Err(ParseError::TcpBadOffset);
            }
            key.tp_src = be16([t[0], t[1]]);
            key.tp_dst = be16([t[2], t[3]]);
            key.tcp_flags = be16([t[12], t[13]]) & 0x0fff;
        }
        ipproto::UDP => {
            let u = view::<8>(l4, 0).ok_or(ParseError::L4Truncated)?;
            key.tp_src = be16([u[0], u[1]]);
            key.tp_dst = be16([u[2], u[3]]);
        }
        ipproto::SCTP => {
            let s = view::<12>(l4, 0).ok_or(ParseError::L4Truncated)?;
            key.tp_src = be16([s[0], s[1]]);
            key.tp_dst = be16([s[2], s[3]]);
        }
        ipproto::ICMP if key.dl_type == ethertype::IPV4 => {
            let c = view::<8>(l4, 0).ok_or(ParseError::L4Truncated)?;
            key.tp_src = c[0] as u16;
            key.tp_dst = c[1] as u16;
        }
        ipproto::ICMPV6 if key.dl_type == ethertype::IPV6 => parse_icmpv6(l4, key)?,
        _ => {}
    }
    Ok(())
}

fn parse_icmpv6(l4: &[u8], key: &mut FlowKey) -> Result<(), ParseError> {
    let c = view::<4>(l4, 0).ok_or(ParseError::L4Truncated)?;
    key.tp_src = c[0] as u16;
    key.tp_dst = c[1] as u16;
    if c[1] != 0 || (c[0] != ND_NEIGHBOR_SOLICIT && c[0] != ND_NEIGHBOR_ADVERT) {
        return Ok(());
    }
    // 4 bytes header, 4 reserved / flags, 16 target, then options.
    let nd = view::<24>(l4, 0).ok_or(ParseError::L4Truncated)?;
    key.nd_target.copy_from_slice(&nd[8..24]);
    let mut at = 24usize;
    while let Some(opt) = view::<8>(l4, at) {
        let len = opt[1] as usize * 8;
        if len == 0 || l4.len() < at + len {
            return Err(ParseError::Icmpv6NdBadOption);
        }
        // Only 8-byte options are Ethernet link-layer addresses (OVS).
        if len == 8 {
            let mac = [opt[2], opt[3], opt[4], opt[5], opt[6], opt[7]];
            let slot = match opt[0] {
                ND_OPT_SOURCE_LINKADDR => Some(&mut key.arp_sha),
                ND_OPT_TARGET_LINKADDR => Some(&mut key.arp_tha),
                _ => None,
            };
            if let Some(slot) = slot {
                if *slot != [0; 6] {
                    return Err(ParseError::Icmpv6NdBadOption);
                }
                *slot = mac;
            }
        }
        at += len;
    }
    Ok(())
}

/// The `parse` node: parses every packet of the frame; good ones go to its single next node,
/// bad ones are dropped under their [`ParseError`] name.
pub struct Parse {
    next: [&'static str; 1],
    vlans: VlanLimit,
}

impl Parse {
    /// A parse node sending parsed packets to `next`, reading [`VlanLimit::DEFAULT`] VLAN
    /// headers.
    pub fn new(next: &'static str) -> Parse {
        Parse {
            next: [next],
            vlans: VlanLimit::DEFAULT,
        }
    }

    /// How many VLAN headers the node reads.
    pub fn vlan_limit(&self) -> VlanLimit {
        self.vlans
    }

    /// Reads `vlans` VLAN headers from the next frame on. The caches hold keys parsed under
    /// the old limit: their owner flushes them.
    pub fn set_vlan_limit(&mut self, vlans: VlanLimit) {
        self.vlans = vlans;
    }
}

impl Default for Parse {
    /// Sends to `classify`.
    fn default() -> Parse {
        Parse::new("classify")
    }
}

impl Node for Parse {
    fn name(&self) -> &'static str {
        "parse"
    }

    fn next_nodes(&self) -> &[&'static str] {
        &self.next
    }

    fn drop_reasons(&self) -> &[&'static str] {
        &ParseError::NAMES
    }

    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
        for (&p, n) in pkts.iter().zip(next.iter_mut()) {
            let (data, meta) = cx.pool.data_and_meta_mut(p);
            *n = match parse_packet_limit(data, meta, self.vlans) {
                Ok(()) => Next::to(0),
                Err(e) => Next::drop(e as u16),
            };
        }
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Byte fixtures for every protocol and every error, plus helpers that build frames with
    //! correct checksums and verify checksums from scratch (shared with `actions`' tests).
    use super::*;
    use crate::buffer::PacketPool;
    use crate::checksum::{checksum, crc32c, l4_checksum, pseudo_sum_ipv4, pseudo_sum_ipv6};
    use crate::flowkey::VLAN_VID_MASK;
    use crate::graph::Graph;
    use crate::txq::TxQueues;

    pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    pub const IP_A: u32 = 0x0a00_0001;
    pub const IP_B: u32 = 0xc0a8_0102;
    pub const IP6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    pub const IP6_B: [u8; 16] = [
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef,
    ];

    /// Ethernet header with `tags` (`(tpid, tci)`) then `ty` and `payload`.
    pub fn eth_tagged(tags: &[(u16, u16)], ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&MAC_B);
        f.extend_from_slice(&MAC_A);
        for &(tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    pub fn eth(ty: u16, payload: &[u8]) -> Vec<u8> {
        eth_tagged(&[], ty, payload)
    }

    /// IPv4 header (+ options) and payload; TOS 0xb9, TTL 64, checksum left zero (see
    /// [`fill_checksums`]).
    pub fn ipv4(proto: u8, opts: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut h = vec![0x40 | (hl / 4) as u8, 0xb9];
        h.extend_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0]);
        h.extend_from_slice(&IP_A.to_be_bytes());
        h.extend_from_slice(&IP_B.to_be_bytes());
        h.extend_from_slice(opts);
        h.extend_from_slice(payload);
        h
    }

    /// IPv6 header (traffic class 0xb9, label 0x12345, hop limit 64) and payload.
    pub fn ipv6(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = (0x6000_0000u32 | 0xb9 << 20 | 0x1_2345)
            .to_be_bytes()
            .to_vec();
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[nh, 64]);
        h.extend_from_slice(&IP6_A);
        h.extend_from_slice(&IP6_B);
        h.extend_from_slice(payload);
        h
    }

    pub fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = sp.to_be_bytes().to_vec();
        u.extend_from_slice(&dp.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    /// TCP header with `flags` (12 bits) and `opts` (a multiple of 4 bytes).
    pub fn tcp(sp: u16, dp: u16, flags: u16, opts: &[u8], payload: &[u8]) -> Vec<u8> {
        let doff = ((20 + opts.len()) / 4) as u16;
        let mut t = sp.to_be_bytes().to_vec();
        t.extend_from_slice(&dp.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        t.extend_from_slice(&((doff << 12) | flags).to_be_bytes());
        t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(opts);
        t.extend_from_slice(payload);
        t
    }

    pub fn sctp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut s = sp.to_be_bytes().to_vec();
        s.extend_from_slice(&dp.to_be_bytes());
        s.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
        s.extend_from_slice(payload);
        s
    }

    pub fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
        let mut c = vec![ty, code, 0, 0];
        c.extend_from_slice(rest);
        c
    }

    /// Parses `frame` reading up to two VLAN headers; also checks that the hash is
    /// [`key_hash`] of the key.
    pub fn parsed(frame: &[u8]) -> Result<PacketMeta, ParseError> {
        parsed_limit(frame, VlanLimit::MAX)
    }

    /// [`parsed`] with the VLAN limit `vlans`.
    pub fn parsed_limit(frame: &[u8], vlans: VlanLimit) -> Result<PacketMeta, ParseError> {
        let mut m = PacketMeta::default();
        let r = parse_packet_limit(frame, &mut m, vlans);
        if r.is_ok() {
            assert_eq!(m.hash, key_hash(&m.key), "parse hash vs key_hash");
        }
        r.map(|()| m)
    }

    pub fn ok(frame: &[u8]) -> PacketMeta {
        match parsed(frame) {
            Ok(m) => m,
            Err(e) => panic!("frame did not parse: {e}"),
        }
    }

    /// `(offset, correct bytes)` of every checksum in `frame`, computed from scratch.
    /// Nothing for frames that do not parse.
    pub fn correct_checksums(frame: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let Ok(m) = parsed(frame) else {
            return Vec::new();
        };
        let k = m.key;
        let mut f = frame.to_vec();
        let mut out = Vec::new();
        let l3 = m.l3_ofs as usize;
        let end = match k.dl_type {
            ethertype::IPV4 => {
                let hl = (f[l3] & 0x0f) as usize * 4;
                f[l3 + 10..l3 + 12].fill(0);
                out.push((l3 + 10, checksum(&f[l3..l3 + hl]).to_be_bytes().to_vec()));
                l3 + u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize
            }
            ethertype::IPV6 => l3 + 40 + u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize,
            _ => return out,
        };
        if m.l4_ofs == NO_OFFSET {
            return out;
        }
        let l4 = m.l4_ofs as usize;
        let len = (end - l4) as u32;
        let pseudo = if k.dl_type == ethertype::IPV4 {
            pseudo_sum_ipv4(k.nw_src, k.nw_dst, k.nw_proto, len)
        } else {
            pseudo_sum_ipv6(&k.ipv6_src, &k.ipv6_dst, k.nw_proto, len)
        };
        let mut l4sum = |at: usize, pseudo: u32| {
            f[l4 + at..l4 + at + 2].fill(0);
            l4_checksum(pseudo, &f[l4..end])
        };
        match k.nw_proto {
            ipproto::TCP => out.push((l4 + 16, l4sum(16, pseudo).to_be_bytes().to_vec())),
            ipproto::UDP => {
                let c = match l4sum(6, pseudo) {
                    0 => 0xffff,
                    c => c,
                };
                out.push((l4 + 6, c.to_be_bytes().to_vec()));
            }
            ipproto::ICMP if k.dl_type == ethertype::IPV4 => {
                out.push((l4 + 2, l4sum(2, 0).to_be_bytes().to_vec()))
            }
            ipproto::ICMPV6 => out.push((l4 + 2, l4sum(2, pseudo).to_be_bytes().to_vec())),
            ipproto::SCTP => {
                f[l4 + 8..l4 + 12].fill(0);
                out.push((l4 + 8, crc32c(&f[l4..end]).to_le_bytes().to_vec()));
            }
            _ => {}
        }
        out
    }

    /// Writes every checksum of `frame`.
    pub fn fill_checksums(mut frame: Vec<u8>) -> Vec<u8> {
        for (at, v) in correct_checksums(&frame) {
            frame[at..at + v.len()].copy_from_slice(&v);
        }
        frame
    }

    /// Panics unless every checksum of `frame` is right (a UDP checksum of 0 is "none").
    pub fn assert_checksums(frame: &[u8]) {
        let m = ok(frame);
        for (at, v) in correct_checksums(frame) {
            let udp_none = m.key.nw_proto == ipproto::UDP
                && at == m.l4_ofs as usize + 6
                && frame[at..at + 2] == [0, 0];
            assert!(
                udp_none || frame[at..at + v.len()] == v[..],
                "checksum at {at}: {:02x?} should be {v:02x?}",
                &frame[at..at + v.len()]
            );
        }
    }

    pub fn udp4_frame() -> Vec<u8> {
        fill_checksums(eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 0, &udp(1234, 53, b"hello world")),
        ))
    }

    pub fn tcp4_frame() -> Vec<u8> {
        fill_checksums(eth(
            ethertype::IPV4,
            &ipv4(
                ipproto::TCP,
                &[],
                0x4000,
                &tcp(40000, 80, 0x012, &[], b"GET /"),
            ),
        ))
    }

    pub fn tcp6_frame() -> Vec<u8> {
        fill_checksums(eth(
            ethertype::IPV6,
            &ipv6(ipproto::TCP, &tcp(40000, 443, 0x018, &[1, 1, 1, 0], b"x")),
        ))
    }

    pub fn arp_frame() -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend_from_slice(&MAC_A);
        a.extend_from_slice(&IP_A.to_be_bytes());
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&IP_B.to_be_bytes());
        eth(ethertype::ARP, &a)
    }

    /// Neighbour solicitation (or advertisement) for IP6_B with the given options.
    pub fn nd_frame(ty: u8, opts: &[u8]) -> Vec<u8> {
        let mut body = vec![0; 4];
        body.extend_from_slice(&IP6_B);
        body.extend_from_slice(opts);
        fill_checksums(eth(
            ethertype::IPV6,
            &ipv6(ipproto::ICMPV6, &icmp(ty, 0, &body)),
        ))
    }

    #[test]
    fn names_match_variants() {
        assert_eq!(
            ParseError::NAMES.len(),
            ParseError::Icmpv6NdBadOption as usize + 1
        );
        assert_eq!(ParseError::Icmpv6NdBadOption.name(), "icmpv6-nd-bad-option");
        assert_eq!(ParseError::EthTruncated.name(), "eth-truncated");
        let mut names = ParseError::NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ParseError::NAMES.len());
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')));
    }

    #[test]
    fn checksum_helpers_agree_with_etherparse() {
        use etherparse::PacketBuilder;
        let mut frames = Vec::new();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut f, b"abcde")
            .unwrap();
        frames.push(f);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(IP6_A, IP6_B, 9)
            .tcp(5, 6, 7, 8)
            .syn()
            .write(&mut f, b"xyz")
            .unwrap();
        frames.push(f);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(IP6_A, IP6_B, 9)
            .icmpv6_echo_request(1, 2)
            .write(&mut f, b"ping")
            .unwrap();
        frames.push(f);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1)
            .icmpv4_echo_request(1, 2)
            .write(&mut f, b"ping!")
            .unwrap();
        frames.push(f);
        for f in &frames {
            assert_checksums(f);
            assert_eq!(&fill_checksums(f.clone()), f);
        }
        // And a corrupted one is caught.
        let mut bad = frames[0].clone();
        bad[40] ^= 1;
        assert!(std::panic::catch_unwind(|| assert_checksums(&bad)).is_err());
    }

    #[test]
    fn ipv4_udp() {
        let f = udp4_frame();
        let m = ok(&f);
        let k = m.key;
        assert_eq!(
            (k.dl_dst, k.dl_src, k.dl_type),
            (MAC_B, MAC_A, ethertype::IPV4)
        );
        assert_eq!((k.nw_src, k.nw_dst, k.nw_proto), (IP_A, IP_B, ipproto::UDP));
        assert_eq!((k.nw_tos, k.nw_ttl, k.nw_frag), (0xb9, 64, 0));
        assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (1234, 53, 0));
        assert_eq!((m.l3_ofs, m.l4_ofs), (14, 34));
        assert_eq!((k.vlan_tci, k.vlan_tpid), (0, 0));
        assert_eq!(m.hash, key_hash(&k));
    }

    #[test]
    fn ipv4_tcp_flags_and_options() {
        let f = tcp4_frame();
        let k = ok(&f).key;
        assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (40000, 80, 0x012));
        // Data offset 7 with 8 bytes of TCP options.
        let seg = tcp(1, 2, 0xfff, &[2, 4, 5, 0xb4, 1, 1, 1, 0], b"");
        let k = ok(&eth(ethertype::IPV4, &ipv4(ipproto::TCP, &[], 0, &seg))).key;
        assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (1, 2, 0xfff));
    }

    #[test]
    fn ipv4_with_options() {
        let opts = [0x94, 0x04, 0, 0, 1, 1, 1, 0]; // router alert + NOPs + EOL
        let f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &opts, 0, &udp(7, 8, b"")),
        );
        let m = ok(&f);
        assert_eq!(m.l4_ofs, 14 + 28);
        assert_eq!((m.key.tp_src, m.key.tp_dst), (7, 8));
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 0, &udp(7, 8, b"")),
        );
        let before = ok(&f).key;
        f.resize(60, 0xee);
        assert_eq!(ok(&f).key, before);
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: MF, offset 0: L4 parsed.
        let f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 0x2000, &udp(7, 8, b"abc")),
        );
        let m = ok(&f);
        assert_eq!(m.key.nw_frag, FRAG_ANY);
        assert_eq!((m.key.tp_src, m.key.tp_dst, m.l4_ofs), (7, 8, 34));
        // Later fragment: offset 185 (1480 bytes), no L4 even if it looks like UDP.
        let f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 185, &udp(7, 8, b"abc")),
        );
        let m = ok(&f);
        assert_eq!(m.key.nw_frag, FRAG_ANY | FRAG_LATER);
        assert_eq!((m.key.tp_src, m.key.tp_dst, m.l4_ofs), (0, 0, NO_OFFSET));
        assert_eq!(m.key.nw_proto, ipproto::UDP);
        // A later fragment too short for a UDP header is fine.
        let f = eth(ethertype::IPV4, &ipv4(ipproto::UDP, &[], 0x2001, b"ab"));
        assert_eq!(ok(&f).key.nw_frag, FRAG_ANY | FRAG_LATER);
        // DF alone is not a fragment.
        let f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 0x4000, &udp(7, 8, b"")),
        );
        assert_eq!(ok(&f).key.nw_frag, 0);
    }

    #[test]
    fn ieee_802_3_frame() {
        let f = eth(0x0026, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
        let m = ok(&f);
        assert_eq!(m.key.dl_type, ethertype::NONE);
        assert_eq!((m.l3_ofs, m.l4_ofs), (14, NO_OFFSET));
    }

    #[test]
    fn vlan_and_qinq() {
        let l3 = ipv4(ipproto::UDP, &[], 0, &udp(7, 8, b""));
        let f = eth_tagged(&[(ethertype::VLAN, 0xa00a)], ethertype::IPV4, &l3);
        let m = ok(&f);
        assert_eq!(m.key.vlan_tpid, ethertype::VLAN);
        assert_eq!(m.key.vlan_tci, 0xa00a | VLAN_PRESENT);
        assert_eq!(m.key.vlan_tci & VLAN_VID_MASK, 10);
        assert_eq!(m.key.vlan2_tci, 0);
        assert_eq!((m.l3_ofs, m.l4_ofs), (18, 38));
        assert_eq!(m.key.tp_dst, 8);

        let tags = [(ethertype::QINQ, 0x0064), (ethertype::VLAN, 0x2005)];
        let m = ok(&eth_tagged(&tags, ethertype::IPV4, &l3));
        assert_eq!(m.key.vlan_tpid, ethertype::QINQ);
        assert_eq!(m.key.vlan_tci, 0x0064 | VLAN_PRESENT);
        assert_eq!(m.key.vlan2_tci, 0x2005 | VLAN_PRESENT);
        assert_eq!(
            (m.key.dl_type, m.l3_ofs, m.l4_ofs),
            (ethertype::IPV4, 22, 42)
        );

        let tags = [(ethertype::VLAN, 1), (ethertype::VLAN, 2)];
        assert_eq!(
            ok(&eth_tagged(&tags, ethertype::ARP, &arp_frame()[14..]))
                .key
                .nw_proto,
            1
        );

        let f = eth_tagged(&[(ethertype::VLAN, 1)], ethertype::IPV4, &[]);
        assert_eq!(parsed(&f[..16]).err(), Some(ParseError::VlanTruncated));
        assert_eq!(parsed(&f[..13]).err(), Some(ParseError::EthTruncated));
    }

    #[test]
    fn tags_past_the_vlan_limit_are_the_ethertype_and_end_the_parse() {
        let l3 = ipv4(ipproto::UDP, &[], 0, &udp(7, 8, b""));
        let two = [(ethertype::QINQ, 0x0064), (ethertype::VLAN, 0x2005)];
        let f = eth_tagged(&two, ethertype::IPV4, &l3);
        // One header (OVS's default): the inner TPID is the EtherType, no L3.
        let m = parsed_limit(&f, VlanLimit::DEFAULT).unwrap();
        assert_eq!(m.key.vlan_tpid, ethertype::QINQ);
        assert_eq!(m.key.vlan_tci, 0x0064 | VLAN_PRESENT);
        assert_eq!(m.key.vlan2_tci, 0);
        assert_eq!(m.key.dl_type, ethertype::VLAN);
        assert_eq!((m.key.nw_src, m.key.tp_dst), (0, 0));
        assert_eq!((m.l3_ofs, m.l4_ofs), (18, NO_OFFSET));
        // parse_packet is the default limit.
        let mut d = PacketMeta::default();
        parse_packet(&f, &mut d).unwrap();
        assert_eq!(d.key, m.key);
        // A second tag cut short is not read under a limit of one.
        assert!(parsed_limit(&f[..20], VlanLimit::DEFAULT).is_ok());
        assert_eq!(
            parsed_limit(&f[..20], VlanLimit::MAX).err(),
            Some(ParseError::VlanTruncated)
        );

        // Three headers under the largest limit: the third TPID is the EtherType.
        let three = [
            (ethertype::QINQ, 1),
            (ethertype::VLAN, 2),
            (ethertype::VLAN, 3),
        ];
        let m = parsed_limit(&eth_tagged(&three, ethertype::IPV4, &l3), VlanLimit::MAX).unwrap();
        assert_eq!(
            (m.key.vlan_tci, m.key.vlan2_tci, m.key.dl_type),
            (1 | VLAN_PRESENT, 2 | VLAN_PRESENT, ethertype::VLAN)
        );
        assert_eq!((m.l3_ofs, m.key.nw_proto), (22, 0));
    }

    #[test]
    fn the_vlan_limit_setting_reads_as_in_ovs() {
        assert_eq!(VlanLimit::from_setting(0), VlanLimit::MAX);
        assert_eq!(VlanLimit::from_setting(1).headers(), 1);
        assert_eq!(VlanLimit::from_setting(2).headers(), 2);
        assert_eq!(VlanLimit::from_setting(7), VlanLimit::MAX);
        assert_eq!(VlanLimit::default().headers(), 1);
    }

    #[test]
    fn arp() {
        let f = arp_frame();
        let m = ok(&f);
        let k = m.key;
        assert_eq!((k.dl_type, k.nw_proto), (ethertype::ARP, 1));
        assert_eq!((k.nw_src, k.nw_dst), (IP_A, IP_B));
        assert_eq!((k.arp_sha, k.arp_tha), (MAC_A, [0; 6]));
        assert_eq!(m.l4_ofs, NO_OFFSET);
        let mut bad = f.clone();
        bad[18] = 8; // hardware address length
        assert_eq!(parsed(&bad).err(), Some(ParseError::ArpBadFormat));
        assert_eq!(parsed(&f[..41]).err(), Some(ParseError::ArpTruncated));
        // Opcodes above 255 are not matchable.
        let mut big = f.clone();
        big[20] = 1;
        assert_eq!(ok(&big).key.nw_proto, 0);
    }

    #[test]
    fn ipv4_errors() {
        let good = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 0, &udp(7, 8, b"")),
        );
        let err = |patch: &dyn Fn(&mut Vec<u8>)| {
            let mut f = good.clone();
            patch(&mut f);
            parsed(&f).err()
        };
        assert_eq!(err(&|f| f.truncate(33)), Some(ParseError::Ipv4Truncated));
        assert_eq!(err(&|f| f[14] = 0x65), Some(ParseError::Ipv4BadVersion));
        assert_eq!(err(&|f| f[14] = 0x44), Some(ParseError::Ipv4BadIhl));
        assert_eq!(err(&|f| f[14] = 0x4f), Some(ParseError::Ipv4BadTotalLength));
        assert_eq!(err(&|f| f[17] = 19), Some(ParseError::Ipv4BadTotalLength));
        // Total length beyond the frame.
        assert_eq!(err(&|f| f[17] += 1), Some(ParseError::Ipv4Truncated));
        // Total length cutting into the UDP header.
        assert_eq!(err(&|f| f[17] = 24), Some(ParseError::L4Truncated));
    }

    #[test]
    fn l4_errors() {
        let seg = tcp(1, 2, 0, &[], b"");
        let f = eth(ethertype::IPV4, &ipv4(ipproto::TCP, &[], 0, &seg[..19]));
        assert_eq!(parsed(&f).err(), Some(ParseError::L4Truncated));
        let mut s = seg.clone();
        s[12] = 0x40; // data offset 4
        let f = eth(ethertype::IPV4, &ipv4(ipproto::TCP, &[], 0, &s));
        assert_eq!(parsed(&f).err(), Some(ParseError::TcpBadOffset));
        s[12] = 0x60; // data offset 6, but the segment has 20 bytes
        let f = eth(ethertype::IPV4, &ipv4(ipproto::TCP, &[], 0, &s));
        assert_eq!(parsed(&f).err(), Some(ParseError::TcpBadOffset));
        for (proto, len) in [(ipproto::UDP, 7), (ipproto::SCTP, 11), (ipproto::ICMP, 7)] {
            let f = eth(ethertype::IPV4, &ipv4(proto, &[], 0, &[0; 12][..len]));
            assert_eq!(
                parsed(&f).err(),
                Some(ParseError::L4Truncated),
                "proto {proto}"
            );
        }
        let f = eth(ethertype::IPV6, &ipv6(ipproto::ICMPV6, &[128, 0, 0]));
        assert_eq!(parsed(&f).err(), Some(ParseError::L4Truncated));
        // Unknown protocols have no L4 to check.
        let f = eth(ethertype::IPV4, &ipv4(47, &[], 0, b""));
        assert_eq!(ok(&f).l4_ofs, 34);
    }

    #[test]
    fn sctp_and_icmp() {
        let f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::SCTP, &[], 0, &sctp(5000, 5001, b"")),
        );
        let k = ok(&f).key;
        assert_eq!(
            (k.nw_proto, k.tp_src, k.tp_dst),
            (ipproto::SCTP, 5000, 5001)
        );
        let f = eth(
            ethertype::IPV4,
            &ipv4(ipproto::ICMP, &[], 0, &icmp(3, 4, &[0; 4])),
        );
        let k = ok(&f).key;
        assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (ipproto::ICMP, 3, 4));
        let f = eth(
            ethertype::IPV6,
            &ipv6(ipproto::ICMPV6, &icmp(128, 0, &[0; 4])),
        );
        let k = ok(&f).key;
        assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (ipproto::ICMPV6, 128, 0));
        assert_eq!(k.nd_target, [0; 16]);
    }

    #[test]
    fn ipv6_tcp() {
        let f = tcp6_frame();
        let m = ok(&f);
        let k = m.key;
        assert_eq!(k.dl_type, ethertype::IPV6);
        assert_eq!((k.ipv6_src, k.ipv6_dst), (IP6_A, IP6_B));
        assert_eq!((k.nw_tos, k.ipv6_label, k.nw_ttl), (0xb9, 0x1_2345, 64));
        assert_eq!(
            (k.nw_proto, k.tp_src, k.tp_dst, k.tcp_flags),
            (6, 40000, 443, 0x018)
        );
        assert_eq!((k.nw_src, k.nw_dst), (0, 0));
        assert_eq!((m.l3_ofs, m.l4_ofs), (14, 54));
    }

    #[test]
    fn ipv6_extension_headers() {
        let u = udp(7, 8, b"data");
        // Hop-by-hop (8 bytes) → routing (16 bytes) → destination options (8) → UDP.
        let mut p = vec![ipproto::ROUTING, 0, 5, 2, 0, 0, 1, 0];
        p.extend_from_slice(&[ipproto::DSTOPTS, 1, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[ipproto::UDP, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&u);
        let m = ok(&eth(ethertype::IPV6, &ipv6(ipproto::HOPOPTS, &p)));
        assert_eq!(
            (m.key.nw_proto, m.key.tp_src, m.key.tp_dst),
            (ipproto::UDP, 7, 8)
        );
        assert_eq!(m.l4_ofs, 14 + 40 + 32);
        assert_eq!(m.key.nw_frag, 0);

        // First fragment (M set, offset 0).
        let mut p = vec![ipproto::UDP, 0, 0, 1, 0, 0, 0, 9];
        p.extend_from_slice(&u);
        let m = ok(&eth(ethertype::IPV6, &ipv6(ipproto::FRAGMENT, &p)));
        assert_eq!(m.key.nw_frag, FRAG_ANY);
        assert_eq!(
            (m.key.nw_proto, m.key.tp_dst, m.l4_ofs),
            (ipproto::UDP, 8, 62)
        );
        // Later fragment: nw_proto is the fragment header's number, as in OVS.
        let mut p = vec![ipproto::UDP, 0, 0x05, 0xc8, 0, 0, 0, 9];
        p.extend_from_slice(&u);
        let m = ok(&eth(ethertype::IPV6, &ipv6(ipproto::FRAGMENT, &p)));
        assert_eq!(m.key.nw_frag, FRAG_ANY | FRAG_LATER);
        assert_eq!(
            (m.key.nw_proto, m.key.tp_dst, m.l4_ofs),
            (ipproto::FRAGMENT, 0, NO_OFFSET)
        );
        // Atomic fragment: not a fragment.
        let mut p = vec![ipproto::UDP, 0, 0, 0, 0, 0, 0, 9];
        p.extend_from_slice(&u);
        let m = ok(&eth(ethertype::IPV6, &ipv6(ipproto::FRAGMENT, &p)));
        assert_eq!((m.key.nw_frag, m.key.tp_dst), (0, 8));
        // Authentication header (length in 4-byte units minus 2): 12 bytes.
        let mut p = vec![ipproto::TCP, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
        p.extend_from_slice(&tcp(1, 2, 0x10, &[], b""));
        let m = ok(&eth(ethertype::IPV6, &ipv6(IPPROTO_AH, &p)));
        assert_eq!(
            (m.key.nw_proto, m.key.tp_dst, m.l4_ofs),
            (ipproto::TCP, 2, 66)
        );
        // No next header.
        let m = ok(&eth(ethertype::IPV6, &ipv6(ipproto::NONE, b"")));
        assert_eq!(m.key.nw_proto, ipproto::NONE);
    }

    #[test]
    fn ipv6_errors() {
        let good = eth(ethertype::IPV6, &ipv6(ipproto::UDP, &udp(1, 2, b"")));
        let mut f = good.clone();
        f[14] = 0x40;
        assert_eq!(parsed(&f).err(), Some(ParseError::Ipv6BadVersion));
        assert_eq!(parsed(&good[..53]).err(), Some(ParseError::Ipv6Truncated));
        assert_eq!(parsed(&good[..61]).err(), Some(ParseError::Ipv6Truncated));
        // Hop-by-hop header claiming 16 bytes with 8 present.
        let f = eth(
            ethertype::IPV6,
            &ipv6(ipproto::HOPOPTS, &[ipproto::UDP, 1, 0, 0, 0, 0, 0, 0]),
        );
        assert_eq!(parsed(&f).err(), Some(ParseError::Ipv6BadExtHeader));
        let f = eth(
            ethertype::IPV6,
            &ipv6(ipproto::FRAGMENT, &[ipproto::UDP, 0, 0, 1]),
        );
        assert_eq!(parsed(&f).err(), Some(ParseError::Ipv6BadExtHeader));
        let f = eth(ethertype::IPV6, &ipv6(ipproto::ROUTING, &[ipproto::UDP]));
        assert_eq!(parsed(&f).err(), Some(ParseError::Ipv6BadExtHeader));
    }

    #[test]
    fn neighbour_discovery() {
        let mut sll = vec![1, 1];
        sll.extend_from_slice(&MAC_A);
        let mut tll = vec![2, 1];
        tll.extend_from_slice(&MAC_B);
        let mut other = vec![14, 2];
        other.extend_from_slice(&[0; 14]); // a 16-byte nonce option, ignored

        let mut opts = other.clone();
        opts.extend_from_slice(&sll);
        let k = ok(&nd_frame(ND_NEIGHBOR_SOLICIT, &opts)).key;
        assert_eq!((k.tp_src, k.tp_dst), (135, 0));
        assert_eq!(k.nd_target, IP6_B);
        assert_eq!((k.arp_sha, k.arp_tha), (MAC_A, [0; 6]));

        let k = ok(&nd_frame(ND_NEIGHBOR_ADVERT, &tll)).key;
        assert_eq!((k.tp_src, k.nd_target), (136, IP6_B));
        assert_eq!((k.arp_sha, k.arp_tha), ([0; 6], MAC_B));

        // No options; trailing bytes shorter than an option are ignored.
        let k = ok(&nd_frame(ND_NEIGHBOR_SOLICIT, &[1, 2, 3])).key;
        assert_eq!((k.nd_target, k.arp_sha), (IP6_B, [0; 6]));

        let mut zero = sll.clone();
        zero[1] = 0;
        let bad = [
            zero,
            {
                let mut long = sll.clone();
                long[1] = 2;
                long
            },
            [sll.clone(), sll.clone()].concat(),
        ];
        for opts in bad {
            assert_eq!(
                parsed(&nd_frame(ND_NEIGHBOR_SOLICIT, &opts)).err(),
                Some(ParseError::Icmpv6NdBadOption)
            );
        }
        // Target cut short.
        let f = fill_checksums(eth(
            ethertype::IPV6,
            &ipv6(ipproto::ICMPV6, &icmp(135, 0, &[0; 12])),
        ));
        assert_eq!(parsed(&f).err(), Some(ParseError::L4Truncated));
        // Code != 0 is not ND.
        let f = eth(
            ethertype::IPV6,
            &ipv6(ipproto::ICMPV6, &icmp(135, 1, &[0; 4])),
        );
        assert_eq!(ok(&f).key.nd_target, [0; 16]);
    }

    #[test]
    fn keeps_fields_before_l2_and_clears_the_rest() {
        let mut m = PacketMeta {
            key: FlowKey::all_ones(),
            ..PacketMeta::default()
        };
        m.key.in_port = 7;
        m.key.tun_id = 42;
        m.key.recirc_id = 3;
        m.key.ct_state = 0x21;
        parse_packet(&arp_frame(), &mut m).unwrap();
        assert_eq!((m.key.in_port, m.key.tun_id, m.key.recirc_id), (7, 42, 3));
        assert_eq!(m.key.ct_state, 0x21);
        assert_eq!(m.key.ct_label, [0xff; 16]);
        assert_eq!(
            (m.key.tp_src, m.key.ipv6_src, m.key.nd_target),
            (0, [0; 16], [0; 16])
        );
        assert_eq!(m.key._pad, [0; 2]);
        assert_eq!(m.l4_ofs, NO_OFFSET);
    }

    #[test]
    fn hash_separates_flows() {
        let base = ok(&udp4_frame());
        let mut seen = std::collections::HashSet::new();
        let mut collisions = 0;
        for sp in 0..2000u16 {
            let mut k = base.key;
            k.tp_src = sp;
            k.in_port = (sp % 3) as u32;
            if !seen.insert(key_hash(&k) & 0xffff) {
                collisions += 1;
            }
        }
        // 2000 keys into 65536 buckets: about 30 expected collisions at random.
        assert!(collisions < 80, "{collisions} collisions");
        let mut k = base.key;
        k.nw_src ^= 1;
        assert_ne!(key_hash(&k), base.hash);
        let mut k = base.key;
        k.dl_src[5] ^= 1;
        assert_ne!(key_hash(&k), base.hash);
        assert_eq!(ok(&udp4_frame()).hash, base.hash);
        // IPv6 addresses count for IPv6 keys (in every byte).
        let v6 = ok(&tcp6_frame()).key;
        let mut hashes = std::collections::HashSet::new();
        hashes.insert(key_hash(&v6));
        for i in 0..16 {
            let mut k = v6;
            k.ipv6_src[i] ^= 0x80;
            hashes.insert(key_hash(&k));
            let mut k = v6;
            k.ipv6_dst[i] ^= 1;
            hashes.insert(key_hash(&k));
        }
        assert_eq!(hashes.len(), 33);
        // Ports swapped are another flow.
        let mut k = base.key;
        std::mem::swap(&mut k.tp_src, &mut k.tp_dst);
        assert_ne!(key_hash(&k), base.hash);
    }

    #[test]
    fn every_truncation_is_an_error_or_the_same_key() {
        let mut frames = vec![udp4_frame(), tcp4_frame(), tcp6_frame(), arp_frame()];
        let mut sll = vec![1, 1];
        sll.extend_from_slice(&MAC_A);
        frames.push(nd_frame(ND_NEIGHBOR_SOLICIT, &sll));
        let tags = [(ethertype::QINQ, 5), (ethertype::VLAN, 6)];
        frames.push(eth_tagged(
            &tags,
            ethertype::IPV4,
            &ipv4(ipproto::SCTP, &[1; 4], 0, &sctp(1, 2, b"")),
        ));
        for f in &frames {
            let full = ok(f);
            for n in 0..f.len() {
                let mut m = PacketMeta::default();
                match parse_packet_limit(&f[..n], &mut m, VlanLimit::MAX) {
                    Ok(()) => {
                        assert_eq!(m.key, full.key, "prefix {n}");
                        assert_eq!((m.l3_ofs, m.l4_ofs), (full.l3_ofs, full.l4_ofs));
                    }
                    Err(e) => assert!(ParseError::NAMES.contains(&e.name())),
                }
            }
        }
        // And garbage of every length.
        let mut x = 0x1234_5678u32;
        for n in 0..200 {
            let junk: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for ty in [
                ethertype::IPV4,
                ethertype::IPV6,
                ethertype::ARP,
                ethertype::VLAN,
            ] {
                let _ = parsed(&eth(ty, &junk));
            }
        }
    }

    /// Runs `parse_packet` (fast path first) and `parse_general` from the same dirty start
    /// (fields before `dl_dst` set, everything else garbage) and asserts identical results.
    /// Returns whether the fast path took the frame.
    fn same_as_general(frame: &[u8]) -> bool {
        let mut start = PacketMeta {
            key: FlowKey::all_ones(),
            hash: 0xdead_beef,
            l3_ofs: 3,
            l4_ofs: 4,
            ..PacketMeta::default()
        };
        start.key.in_port = 7;
        start.key.tun_id = 0x1234_5678_9abc;
        start.key.recirc_id = 9;
        start.key.ct_mark = 0x55;
        let mut c = start;
        let fast = parse_fast(frame, &mut c);
        if !fast {
            assert_eq!(c.key, start.key, "fast path wrote before falling back");
            assert_eq!((c.hash, c.l3_ofs, c.l4_ofs), (start.hash, 3, 4));
        }
        for vlans in [VlanLimit::DEFAULT, VlanLimit::MAX] {
            let (mut a, mut b) = (start, start);
            let ra = parse_packet_limit(frame, &mut a, vlans);
            let rb = parse_general(frame, &mut b, vlans);
            assert_eq!(ra, rb, "result of {frame:02x?}");
            assert_eq!(a.key, b.key, "key of {frame:02x?}");
            assert_eq!(a.hash, b.hash, "hash of {frame:02x?}");
            assert_eq!(
                (a.l3_ofs, a.l4_ofs),
                (b.l3_ofs, b.l4_ofs),
                "offsets of {frame:02x?}"
            );
            if fast {
                assert_eq!(ra, Ok(()));
                assert_eq!(a.hash, key_hash(&a.key));
            }
        }
        fast
    }

    /// Every fixture kind, the fast path's and the others.
    fn all_fixtures() -> Vec<Vec<u8>> {
        let mut sll = vec![1, 1];
        sll.extend_from_slice(&MAC_A);
        let u = udp(1000, 53, b"payload");
        let t = tcp(40000, 443, 0x018, &[], b"data");
        let topt = tcp(1, 2, 0x002, &[2, 4, 5, 0xb4], b"");
        let mut frames = vec![
            udp4_frame(),
            tcp4_frame(),
            tcp6_frame(),
            arp_frame(),
            nd_frame(ND_NEIGHBOR_SOLICIT, &sll),
            eth(ethertype::IPV4, &ipv4(ipproto::TCP, &[], 0, &topt)),
            eth(ethertype::IPV4, &ipv4(ipproto::UDP, &[1; 4], 0, &u)),
            eth(ethertype::IPV4, &ipv4(ipproto::UDP, &[], 0x2000, &u)),
            eth(ethertype::IPV4, &ipv4(ipproto::UDP, &[], 0x0001, &u)),
            eth(ethertype::IPV4, &ipv4(ipproto::UDP, &[], 0x4000, &u)),
            eth(
                ethertype::IPV4,
                &ipv4(ipproto::SCTP, &[], 0, &sctp(1, 2, b"")),
            ),
            eth(
                ethertype::IPV4,
                &ipv4(ipproto::ICMP, &[], 0, &icmp(8, 0, &[0; 4])),
            ),
            eth(ethertype::IPV4, &ipv4(47, &[], 0, b"gre")),
            eth(ethertype::IPV6, &ipv6(ipproto::UDP, &u)),
            eth(0x0050, b"802.3 frame"),
            eth(0x88cc, b"lldp"),
        ];
        for tpid in [ethertype::VLAN, ethertype::QINQ] {
            for payload in [
                ipv4(ipproto::UDP, &[], 0, &u),
                ipv4(ipproto::TCP, &[], 0, &t),
            ] {
                frames.push(eth_tagged(&[(tpid, 0xe123)], ethertype::IPV4, &payload));
                let tags = [(tpid, 5), (ethertype::VLAN, 6)];
                frames.push(eth_tagged(&tags, ethertype::IPV4, &payload));
            }
        }
        // Ethernet padding after the IP total length.
        let mut padded = eth(
            ethertype::IPV4,
            &ipv4(ipproto::UDP, &[], 0, &udp(1, 2, b"")),
        );
        padded.resize(60, 0xee);
        frames.push(padded);
        frames
    }

    #[test]
    fn fast_path_equals_general_parser() {
        let mut fast = 0;
        let frames = all_fixtures();
        for f in &frames {
            for n in 0..=f.len() {
                if same_as_general(&f[..n]) {
                    fast += 1;
                }
            }
        }
        // The untagged and single-tagged UDP / TCP fixtures, complete.
        assert!(same_as_general(&udp4_frame()) && same_as_general(&tcp4_frame()));
        assert!(fast >= 10, "fast path took {fast} frames");

        // Random mutations of the fast-path frames: a few bytes of the headers set to random
        // or to telling values (versions, IHLs, protocols, TPIDs, lengths), sometimes cut or
        // padded.
        let mut x = 0x9e37_79b9u32;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        const TELLING: [u8; 16] = [
            0, 1, 4, 5, 6, 17, 0x14, 0x1c, 0x20, 0x28, 0x3f, 0x40, 0x45, 0x46, 0x81, 0x88,
        ];
        let bases: Vec<&Vec<u8>> = frames.iter().filter(|f| same_as_general(f)).collect();
        let (mut took, mut mutants) = (0, 0);
        for _ in 0..5000 {
            let mut f = bases[rnd() as usize % bases.len()].clone();
            for _ in 0..1 + rnd() % 3 {
                let at = rnd() as usize % f.len().min(62);
                f[at] = if rnd() % 2 == 0 {
                    TELLING[rnd() as usize % TELLING.len()]
                } else {
                    rnd() as u8
                };
            }
            match rnd() % 4 {
                0 => f.truncate(rnd() as usize % (f.len() + 1)),
                1 => f.resize(f.len() + rnd() as usize % 8, 0),
                _ => {}
            }
            mutants += 1;
            if same_as_general(&f) {
                took += 1;
            }
        }
        // Both paths were exercised by the mutants.
        assert!(
            took > 500 && took < mutants - 500,
            "{took} of {mutants} fast"
        );
    }

    /// Takes what `parse` forwards.
    struct Sink;
    impl Node for Sink {
        fn name(&self) -> &'static str {
            "classify"
        }
        fn next_nodes(&self) -> &[&'static str] {
            &[]
        }
        fn drop_reasons(&self) -> &[&'static str] {
            &[]
        }
        fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
            for (&p, n) in pkts.iter().zip(next.iter_mut()) {
                cx.tx.enqueue(1, p, cx.pool);
                *n = Next::CONSUMED;
            }
        }
    }

    #[test]
    fn parse_node_forwards_and_drops_by_reason() {
        let mut pool = PacketPool::new(16);
        let mut tx = TxQueues::new(&[1]);
        let mut g = Graph::new();
        let entry = g.add(Box::new(Parse::default())).unwrap();
        g.add(Box::new(Sink)).unwrap();
        g.wire().unwrap();
        let frames = [
            udp4_frame(),
            arp_frame(),
            udp4_frame()[..20].to_vec(),
            vec![0; 5],
        ];
        let pkts: Vec<PacketId> = frames.iter().map(|f| pool.alloc_with(f).unwrap()).collect();
        let mut cx = Ctx {
            pool: &mut pool,
            tx: &mut tx,
            now_ns: 0,
        };
        g.dispatch(&mut cx, entry, &pkts);
        let r = g.reports();
        assert_eq!(r[0].name, "parse");
        let drops: Vec<_> = r[0].drops.iter().filter(|d| d.1 > 0).cloned().collect();
        assert_eq!(drops, vec![("eth-truncated", 1), ("ipv4-truncated", 1)]);
        let q = tx.queue(1).unwrap().clone();
        assert_eq!(q.len(), 2);
        assert_eq!(pool.meta(q[0]).key.tp_dst, 53);
        assert_eq!(pool.meta(q[1]).key.dl_type, ethertype::ARP);
        assert_eq!(pool.available(), 14);
        assert_eq!(Parse::new("x").next_nodes(), &["x"]);
    }
}
