//! Per-packet decapsulation of VXLAN and Geneve over IPv4: [`check`] reads a frame that
//! `pipeline::parse_packet_limit` parsed (its key and offsets describe the outer headers)
//! and says where the inner Ethernet frame is and what the tunnel metadata are, or names why
//! the packet is dropped; [`apply`] then strips the outer headers, writes the metadata into
//! the key's tunnel words and parses the inner frame in place. [`decap`] does both.
//!
//! The checks follow Open vSwitch's userspace tunnel pop (`lib/netdev-native-tnl.c`): the
//! outer IPv4 header without options and with a checksum that verifies, the UDP datagram
//! inside the IP packet, its checksum when it is not 0, then the tunnel header. The key is
//! reset as OVS's `pkt_metadata_init_tnl` does: the tunnel, conntrack and recirculation words
//! are cleared (the input port stays, the node sets the tunnel port's) before the tunnel
//! fields are written. Nothing here allocates or panics.

use pipeline::buffer::KEY_METADATA_WORDS;
use pipeline::checksum;
use pipeline::flowkey::TUN_FLAG_PRESENT;
use pipeline::flowkey::{ethertype, ipproto, FlowKey, TUN_OPTS_LEN};

use pipeline::flowkey::{TUN_FLAG_CRITICAL, TUN_FLAG_CSUM, TUN_FLAG_DF, TUN_FLAG_OAM};
use pipeline::parse::view;
use pipeline::{parse_packet_limit, PacketId, PacketMeta, PacketPool, VlanLimit};

use crate::option_store::{digest_bytes, OptionStore};
use crate::wire::{geneve, vxlan, GenevePacket, OptionIter, VxlanPacket};

/// The tunnel protocols vecswitch speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Vxlan,
    Geneve,
}

impl TunnelKind {
    /// The IANA UDP port: 4789 or 6081.
    pub const fn default_port(self) -> u16 {
        match self {
            TunnelKind::Vxlan => vxlan::UDP_PORT,
            TunnelKind::Geneve => geneve::UDP_PORT,
        }
    }

    /// The port type name, as Open vSwitch's (`type=vxlan`).
    pub const fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }
}

/// What the decap listens to: a UDP port per kind (0: that kind is not received) and what to
/// do with Geneve OAM packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecapConfig {
    pub vxlan_port: u16,
    pub geneve_port: u16,
    /// Forward Geneve packets with the O bit (with [`TUN_FLAG_OAM`] in the key, as Open
    /// vSwitch does) instead of dropping them as `geneve-oam`.
    pub forward_oam: bool,
}

impl DecapConfig {
    /// Ports 4789 and 6081; OAM packets dropped.
    pub const DEFAULT: DecapConfig = DecapConfig {
        vxlan_port: vxlan::UDP_PORT,
        geneve_port: geneve::UDP_PORT,
        forward_oam: false,
    };

    /// The kind of tunnel UDP port `port` receives, if any.
    #[inline(always)]
    pub const fn kind_of(&self, port: u16) -> Option<TunnelKind> {
        if port == 0 {
            None
        } else if port == self.vxlan_port {
            Some(TunnelKind::Vxlan)
        } else if port == self.geneve_port {
            Some(TunnelKind::Geneve)
        } else {
            None
        }
    }
}

impl Default for DecapConfig {
    fn default() -> DecapConfig {
        DecapConfig::DEFAULT
    }
}

/// Why a packet was not decapsulated; the names are the decap node's drop-reason counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum DecapDrop {
    /// Not UDP (over IPv4 or IPv6): not a tunnel packet.
    NotUdp = 0,
    /// UDP over IPv6 to a tunnel port: an IPv6 underlay, not supported yet (the key has no
    /// IPv6 tunnel address slots).
    OuterIpv6,
    /// The outer IPv4 packet is a fragment (first or later); tunnels are not reassembled.
    OuterFragment,
    /// The outer IPv4 header has options (Open vSwitch drops these too).
    OuterIpOptions,
    /// UDP to a port no tunnel kind listens to (or a later fragment, which has no ports):
    /// not a tunnel packet.
    NotTunnelPort,
    /// The frame is shorter than the IPv4 total length, the UDP length does not fit in the
    /// IP packet or is shorter than UDP + the tunnel header, or Geneve options run past the
    /// datagram.
    OuterTruncated,
    /// The outer IPv4 header checksum does not verify.
    BadIpChecksum,
    /// A non-zero UDP checksum does not verify.
    BadUdpChecksum,
    /// VXLAN without the I flag.
    BadVxlanHeader,
    /// Geneve of a version other than 0 or a protocol other than Ethernet (0x6558).
    BadGeneveHeader,
    /// Geneve with the O bit (control traffic, not for tenants), unless forwarded.
    GeneveOam,
    /// Geneve options longer than the key holds (`TUN_OPTS_LEN`, 32 bytes) that the option
    /// store has no room for ([`crate::option_store`]).
    GeneveOptionsStoreFull,
    /// A Geneve option running past the options area.
    BadGeneveOption,
    /// A critical Geneve option the switch does not know ([`check_critical_options`]).
    UnknownCriticalOption,
    /// The inner frame does not parse (any `ParseError` of the inner frame).
    BadInnerFrame,
}

impl DecapDrop {
    /// Counter names, indexed by the enum value.
    pub const NAMES: [&'static str; 15] = [
        "not-udp",
        "outer-ipv6",
        "outer-fragment",
        "outer-ip-options",
        "not-tunnel-port",
        "outer-truncated",
        "bad-ip-checksum",
        "bad-udp-checksum",
        "bad-vxlan-header",
        "bad-geneve-header",
        "geneve-oam",
        "geneve-options-store-full",
        "bad-geneve-option",
        "unknown-critical-option",
        "bad-inner-frame",
    ];

    /// The counter name of this reason.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether the packet is not a tunnel packet at all (`not-udp`, `not-tunnel-port`), as
    /// opposed to a tunnel packet that is broken or not handled: a decap node in front of
    /// classification sends these on unchanged instead of dropping them.
    pub const fn is_not_tunnel(self) -> bool {
        matches!(self, DecapDrop::NotUdp | DecapDrop::NotTunnelPort)
    }
}

impl std::fmt::Display for DecapDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DecapDrop {}

/// The tunnel metadata of a decapsulated packet: the values of the key's `tun_*` words
/// (addresses and ports as host-order numbers, as the key holds them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelMetadata {
    pub kind: TunnelKind,
    /// 24 bits; the key's `tun_id`.
    pub vni: u32,
    /// Outer IPv4 source and destination.
    pub src: u32,
    pub dst: u32,
    /// Outer TOS byte and TTL.
    pub tos: u8,
    pub ttl: u8,
    /// Outer UDP ports.
    pub tp_src: u16,
    pub tp_dst: u16,
    /// `TUN_FLAG_*` bits: always `PRESENT`; `CSUM` (a UDP checksum was sent), `DF`, `OAM`
    /// (O bit, forwarded), `CRITICAL` (some option is critical, read from the options).
    pub flags: u16,
}

impl TunnelMetadata {
    /// Resets the key's metadata words as a packet entering from a tunnel has them (tunnel,
    /// conntrack, recirculation zero; `in_port` kept) and writes these values, `opts_len` and
    /// `opts` into the tunnel words: the options themselves when they fit (`opts_len` at
    /// most `TUN_OPTS_LEN`), else their digest ([`crate::option_store`]); bytes of `opts` past
    /// `TUN_OPTS_LEN` are left out.
    ///
    /// The words are stored whole, built as `parse_fast` builds its words (each the
    /// little-endian value of its bytes, stored with `from_le`): the parser's hash then loads
    /// `in_port`'s word right after, and a load spanning a narrow store and a wide one would
    /// stall on store forwarding.
    #[inline(always)]
    pub fn write_key(&self, key: &mut FlowKey, opts_len: u8, opts: &[u8]) {
        let le16 = |x: u16| x.to_le() as u64;
        let le32 = |x: u32| x.to_le() as u64;
        let n = opts.len().min(TUN_OPTS_LEN);
        let in_port = key.in_port;
        let w = key.words_mut();
        w[0] = u64::from(self.vni);
        w[1] = u64::from_le(le32(self.src) | le32(self.dst) << 32);
        w[2] = u64::from_le(
            le16(self.flags)
                | le16(self.tp_src) << 16
                | le16(self.tp_dst) << 32
                | u64::from(self.tos) << 48
                | u64::from(self.ttl) << 56,
        );
        w[3..7].fill(0);
        // tun_opts_len, then ct_state, ct_zone, recirc_id all 0.
        w[7] = u64::from_le(u64::from(opts_len));
        // in_port, then ct_mark 0; ct_label 0.
        w[8] = u64::from_le(le32(in_port));
        w[9] = 0;
        w[10] = 0;
        key.clear_ct_tuple();
        if n != 0 {
            if let (Some(d), Some(s)) = (key.tun_opts.get_mut(..n), opts.get(..n)) {
                d.copy_from_slice(s);
            }
        }
    }
}

// `write_key` builds these words; pin the field offsets it assumes.
const _: () = {
    use core::mem::offset_of;
    assert!(KEY_METADATA_WORDS == 11);
    assert!(offset_of!(FlowKey, tun_id) == 0);
    assert!(offset_of!(FlowKey, tun_src) == 8 && offset_of!(FlowKey, tun_dst) == 12);
    assert!(offset_of!(FlowKey, tun_flags) == 16 && offset_of!(FlowKey, tun_tp_src) == 18);
    assert!(offset_of!(FlowKey, tun_tp_dst) == 20 && offset_of!(FlowKey, tun_tos) == 22);
    assert!(offset_of!(FlowKey, tun_ttl) == 23 && offset_of!(FlowKey, tun_opts) == 24);
    assert!(offset_of!(FlowKey, tun_opts_len) == 56 && offset_of!(FlowKey, ct_state) == 57);
    assert!(offset_of!(FlowKey, in_port) == 64 && offset_of!(FlowKey, ct_mark) == 68);
    assert!(offset_of!(FlowKey, ct_label) == 72 && offset_of!(FlowKey, dl_dst) == 88);
};

/// What [`check`] found: the metadata and where the options and the inner frame are in the
/// frame it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decap {
    pub tunnel: TunnelMetadata,
    /// Offset of the Geneve options (empty for VXLAN) and their length.
    pub options_ofs: usize,
    pub options_len: usize,
    /// Offset of the inner Ethernet frame and its length (up to the UDP length: outer
    /// Ethernet padding is not part of it).
    pub inner_ofs: usize,
    pub inner_len: usize,
}

impl Decap {
    /// The Geneve options in `frame` (the frame [`check`] read).
    pub fn options<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        frame
            .get(self.options_ofs..self.options_ofs + self.options_len)
            .unwrap_or_default()
    }

    /// The inner frame in `frame` (the frame [`check`] read).
    pub fn inner<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        frame
            .get(self.inner_ofs..self.inner_ofs + self.inner_len)
            .unwrap_or_default()
    }
}

/// IPv4 flags/offset bits that make a fragment: MF and the offset.
const IP_FRAG_MASK: u16 = 0x3fff;
const IP_DF: u16 = 0x4000;
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
/// Both tunnel headers have 8 fixed bytes.
const TUNNEL_BASE_LEN: usize = 8;

/// Whether a 20-byte IPv4 header's checksum verifies (its 16-bit words sum to 0xffff). The
/// one's-complement sum does not depend on byte order (RFC 1071 section 2) and 0xffff is
/// its own byte swap, so the words are added as they lie in memory, five 32-bit loads added
/// in parallel without swapping. In the decap bench this costs a few cycles (within the
/// noise); `checksum::checksum(ip) == 0`, a call and a loop of big-endian loads, cost 11-15.
#[inline(always)]
fn ipv4_checksum_ok(ip: &[u8; IPV4_HEADER_LEN]) -> bool {
    let le32 = |i: usize| u64::from(u32::from_le_bytes([ip[i], ip[i + 1], ip[i + 2], ip[i + 3]]));
    let acc = le32(0) + le32(4) + le32(8) + le32(12) + le32(16);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    checksum::fold(acc as u32) == 0xffff
}

/// Checks that `frame`, parsed into `meta` (outer headers), is a well-formed VXLAN or Geneve
/// packet over IPv4/UDP to a port of `config`, and says where its inner frame is. Changes
/// nothing.
///
/// Whether it is a tunnel packet at all is read from the key first (UDP over IPv4 or IPv6 to
/// a port of `config`; a later fragment has no ports): `not-udp` and `not-tunnel-port`
/// ([`DecapDrop::is_not_tunnel`]) come before any header is judged, so that a node in front
/// of classification can pass such packets on untouched. The outer destination address is
/// not checked: the caller hands over only packets to one of its tunnel endpoints
/// (`meta.key.nw_dst`), as Open vSwitch installs `tnl_pop` only for its own tunnel
/// addresses; VXLAN between two guests is not for the switch to open.
#[inline(always)]
pub fn check(frame: &[u8], meta: &PacketMeta, config: &DecapConfig) -> Result<Decap, DecapDrop> {
    let key = &meta.key;
    let ipv4 = match key.dl_type {
        ethertype::IPV4 => true,
        ethertype::IPV6 => false,
        _ => return Err(DecapDrop::NotUdp),
    };
    if key.nw_proto != ipproto::UDP {
        return Err(DecapDrop::NotUdp);
    }
    let kind = config.kind_of(key.tp_dst).ok_or(DecapDrop::NotTunnelPort)?;
    if !ipv4 {
        return Err(DecapDrop::OuterIpv6);
    }
    let l3 = usize::from(meta.l3_ofs);
    let ip = view::<IPV4_HEADER_LEN>(frame, l3).ok_or(DecapDrop::OuterTruncated)?;
    let be16 = |i: usize| u16::from_be_bytes([ip[i], ip[i + 1]]);
    let flags_frag = be16(6);
    // The key said IPv4/UDP: a frame that says otherwise is not the one parsed.
    if ip[0] >> 4 != 4 || ip[9] != ipproto::UDP {
        return Err(DecapDrop::NotUdp);
    }
    if flags_frag & IP_FRAG_MASK != 0 {
        return Err(DecapDrop::OuterFragment);
    }
    if ip[0] & 0x0f != 5 {
        return Err(DecapDrop::OuterIpOptions);
    }
    let ip_end = l3 + usize::from(be16(2));
    if ip_end > frame.len() || ip_end < l3 + IPV4_HEADER_LEN {
        return Err(DecapDrop::OuterTruncated);
    }
    if !ipv4_checksum_ok(ip) {
        return Err(DecapDrop::BadIpChecksum);
    }
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);

    let l4 = l3 + IPV4_HEADER_LEN;
    let udp = view::<UDP_HEADER_LEN>(frame, l4).ok_or(DecapDrop::OuterTruncated)?;
    let tp_src = u16::from_be_bytes([udp[0], udp[1]]);
    let tp_dst = u16::from_be_bytes([udp[2], udp[3]]);
    if tp_dst != key.tp_dst {
        return Err(DecapDrop::NotUdp);
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let udp_end = l4 + udp_len;
    if udp_len < UDP_HEADER_LEN + TUNNEL_BASE_LEN || udp_end > ip_end {
        return Err(DecapDrop::OuterTruncated);
    }
    let datagram = frame.get(l4..udp_end).ok_or(DecapDrop::OuterTruncated)?;

    let mut flags = TUN_FLAG_PRESENT;
    if flags_frag & IP_DF != 0 {
        flags |= TUN_FLAG_DF;
    }
    if udp[6] != 0 || udp[7] != 0 {
        let pseudo = checksum::pseudo_sum_ipv4(src, dst, ipproto::UDP, udp_len as u32);
        if checksum::l4_checksum(pseudo, datagram) != 0 {
            return Err(DecapDrop::BadUdpChecksum);
        }
        flags |= TUN_FLAG_CSUM;
    }

    let tunnel = datagram.get(UDP_HEADER_LEN..).unwrap_or_default();
    let t = l4 + UDP_HEADER_LEN;
    let (vni, header_len, options_len) = match kind {
        TunnelKind::Vxlan => {
            let h = VxlanPacket::new_unchecked(tunnel);
            if !h.vni_valid() {
                return Err(DecapDrop::BadVxlanHeader);
            }
            (h.vni(), vxlan::HEADER_LEN, 0)
        }
        TunnelKind::Geneve => {
            let h = GenevePacket::new_unchecked(tunnel);
            if h.version() != geneve::VERSION || h.protocol() != geneve::PROTOCOL_ETHERNET {
                return Err(DecapDrop::BadGeneveHeader);
            }
            if h.header_len() > tunnel.len() {
                return Err(DecapDrop::OuterTruncated);
            }
            if h.oam() {
                if !config.forward_oam {
                    return Err(DecapDrop::GeneveOam);
                }
                flags |= TUN_FLAG_OAM;
            }
            let options = h.options();
            for o in OptionIter::new(options) {
                match o {
                    Ok(o) if o.is_critical() => flags |= TUN_FLAG_CRITICAL,
                    Ok(_) => {}
                    Err(_) => return Err(DecapDrop::BadGeneveOption),
                }
            }
            (h.vni(), h.header_len(), options.len())
        }
    };
    let inner_ofs = t + header_len;
    Ok(Decap {
        tunnel: TunnelMetadata {
            kind,
            vni,
            src,
            dst,
            tos: ip[1],
            ttl: ip[8],
            tp_src,
            tp_dst,
            flags,
        },
        options_ofs: t + geneve::HEADER_LEN,
        options_len,
        inner_ofs,
        inner_len: udp_end - inner_ofs,
    })
}

/// Decapsulates packet `id` as [`check`] found it (`decap` from its current bytes): writes
/// the tunnel metadata and options into the key ([`TunnelMetadata::write_key`]), narrows the
/// packet to the inner frame (outer headers in front, padding behind: what `pull_front` and
/// `set_len` do, written to `meta.data_off` / `meta.len` at once since the inner frame lies
/// inside the packet) and parses that with `vlans`, which fills the rest of the key, the hash
/// and the offsets. An inner frame that does not parse is `bad-inner-frame` (the packet is
/// then half changed: drop it). Options longer than the key holds are kept in `store` (used
/// at `now_ns`), and the key carries their digest.
#[inline(always)]
pub fn apply(
    pool: &mut PacketPool,
    id: PacketId,
    decap: &Decap,
    vlans: VlanLimit,
    store: &OptionStore,
    now_ns: u64,
) -> Result<(), DecapDrop> {
    let (data, meta) = pool.data_and_meta_mut(id);
    apply_to(data, meta, decap, vlans, store, now_ns)
}

/// [`apply`] on a packet's bytes and metadata, reached once (the node reaches the packet
/// once for `check`, the port lookup and this).
#[inline(always)]
pub(crate) fn apply_to(
    data: &[u8],
    meta: &mut PacketMeta,
    decap: &Decap,
    vlans: VlanLimit,
    store: &OptionStore,
    now_ns: u64,
) -> Result<(), DecapDrop> {
    let end = decap.inner_ofs + decap.inner_len;
    let (Some(inner), Ok(ofs), Ok(len)) = (
        data.get(decap.inner_ofs..end),
        u16::try_from(decap.inner_ofs),
        u16::try_from(decap.inner_len),
    ) else {
        return Err(DecapDrop::OuterTruncated);
    };
    let options = decap.options(data);
    // At most 252 bytes (6 bits of 4-byte words).
    let opts_len = options.len() as u8;
    if options.len() <= TUN_OPTS_LEN {
        decap.tunnel.write_key(&mut meta.key, opts_len, options);
    } else {
        let digest = store
            .intern(options, now_ns)
            .map_err(|_| DecapDrop::GeneveOptionsStoreFull)?;
        decap
            .tunnel
            .write_key(&mut meta.key, opts_len, &digest_bytes(digest));
    }
    meta.data_off += ofs;
    meta.len = len;
    parse_packet_limit(inner, meta, vlans).map_err(|_| DecapDrop::BadInnerFrame)
}

/// [`check`] then [`apply`] on packet `id` (parsed, outer headers in its key).
#[inline]
pub fn decap(
    pool: &mut PacketPool,
    id: PacketId,
    config: &DecapConfig,
    vlans: VlanLimit,
    store: &OptionStore,
    now_ns: u64,
) -> Result<TunnelMetadata, DecapDrop> {
    let (data, meta) = pool.data_and_meta_mut(id);
    let d = check(data, meta, config)?;
    apply_to(data, meta, &d, vlans, store, now_ns)?;
    Ok(d.tunnel)
}

/// Checks the Geneve `options` for a critical option that `known(class, type)` does not
/// know (`type` is the whole type byte, critical bit included): `unknown-critical-option`,
/// which RFC 8926 says to drop. A malformed option is `bad-geneve-option`. The node passes
/// its TLV map as `known`; with `key.tun_opts` after [`apply`], it can skip the call when
/// `TUN_FLAG_CRITICAL` is not set.
pub fn check_critical_options(
    options: &[u8],
    known: impl Fn(u16, u8) -> bool,
) -> Result<(), DecapDrop> {
    for o in OptionIter::new(options) {
        let o = o.map_err(|_| DecapDrop::BadGeneveOption)?;
        if o.is_critical() && !known(o.class, o.option_type) {
            return Err(DecapDrop::UnknownCriticalOption);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
