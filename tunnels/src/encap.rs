//! Per-packet encapsulation through header templates, as Open vSwitch's native tunnels do
//! (`netdev_*_build_header` once per flow, `netdev_tnl_push_udp_header` per packet): a
//! [`TunnelHeader`] holds the outer Ethernet, IPv4, UDP and VXLAN / Geneve bytes built once
//! per (tunnel port, flow) from [`EncapParams`]; [`TunnelHeader::push`] copies them into the
//! packet's headroom and fills in what depends on the packet: the IPv4 total length and
//! header checksum (updated from the template's, RFC 1624), the UDP length, the UDP source
//! port from the inner flow's hash, and the UDP checksum over the datagram when it is on.
//!
//! As in OVS: IPv4 identification 0 (with or without DF), DF set and UDP checksum off by
//! default, TTL 64, source ports in 32768..=61000 (`tnl_udp_port_min` / `max`), the Geneve C
//! bit set when an option is critical. No VLAN on the outer frame and no IPv6 underlay yet.

use std::net::Ipv4Addr;

use pipeline::checksum;
use pipeline::flowkey::{ipproto, TUN_FLAG_CSUM, TUN_FLAG_DF, TUN_FLAG_OAM};
use pipeline::wire::{ethernet, ipv4, udp, Error, FrameBuilder, Ipv4Repr};
use std::fmt::Write as _;

use pipeline::field::ofctl::format_mac;
use pipeline::{ExecDrop, PacketId, PacketMeta, PacketPool, PushHeader};

use crate::decap::{TunnelKind, TunnelMetadata};
use crate::wire::{geneve, vxlan, GeneveRepr, OptionIter, VxlanRepr};

/// Lowest UDP source port of encapsulated packets (OVS's `tnl_udp_port_min`).
pub const SRC_PORT_MIN: u16 = 32768;
/// Upper bound of the source port range (OVS's `tnl_udp_port_max`; as OVS computes it, the
/// highest port sent is one below).
pub const SRC_PORT_MAX: u16 = 61000;

/// Longest template: Geneve with 252 bytes of options (302 bytes). A received packet's
/// headroom ([`HEADROOM`](pipeline::HEADROOM), 256 bytes) takes one with up to 204 bytes of options; a packet
/// that came through a tunnel has the room its outer headers left too. A packet without the
/// room is dropped as `tunnel-no-headroom`.
pub const MAX_HEADER_LEN: usize = FIXED_LEN + geneve::HEADER_LEN + geneve::MAX_OPTIONS_LEN;

/// The UDP source port for an inner flow of hash `hash`: OVS's `netdev_tnl_get_src_port`,
/// `((u64) hash * (max - min)) >> 32` + min, so the flows of one tunnel spread over the
/// underlay's ECMP paths and the receiver's RSS queues.
#[inline(always)]
pub const fn udp_src_port(hash: u32) -> u16 {
    let span = (SRC_PORT_MAX - SRC_PORT_MIN) as u64;
    ((hash as u64 * span) >> 32) as u16 + SRC_PORT_MIN
}

/// Where the fields filled per packet are in every template (outer Ethernet without VLAN,
/// IPv4 without options).
const IP_OFS: usize = ethernet::HEADER_LEN;
const UDP_OFS: usize = IP_OFS + ipv4::HEADER_LEN;
const IP_LENGTH: usize = IP_OFS + ipv4::field::LENGTH.start;
const IP_CHECKSUM: usize = IP_OFS + ipv4::field::CHECKSUM.start;
const UDP_SRC_PORT: usize = UDP_OFS + udp::field::SRC_PORT.start;
const UDP_LENGTH: usize = UDP_OFS + udp::field::LENGTH.start;
/// Bytes of every template before the tunnel header.
const FIXED_LEN: usize = UDP_OFS + udp::HEADER_LEN;

/// The values a tunnel header is built from: the tunnel port's config and the flow's tunnel
/// metadata (OVS's `netdev_tnl_build_header_params`), with the underlay's next hop resolved
/// to MAC addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncapParams {
    pub kind: TunnelKind,
    /// 24 bits.
    pub vni: u32,
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub ttl: u8,
    /// The whole TOS byte.
    pub tos: u8,
    pub dont_frag: bool,
    /// Compute the UDP checksum (over the whole datagram, per packet).
    pub udp_checksum: bool,
    pub dst_port: u16,
    /// The Geneve O bit (OAM). VXLAN has none and refuses it.
    pub oam: bool,
}

impl EncapParams {
    /// A `kind` tunnel in `vni` from `ip_src` to `ip_dst` through the next hop `eth_dst`:
    /// TTL 64, TOS 0, DF, no UDP checksum, the kind's IANA port, no OAM.
    pub const fn new(
        kind: TunnelKind,
        vni: u32,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        ip_src: Ipv4Addr,
        ip_dst: Ipv4Addr,
    ) -> EncapParams {
        EncapParams {
            kind,
            vni,
            eth_src,
            eth_dst,
            ip_src,
            ip_dst,
            ttl: 64,
            tos: 0,
            dont_frag: true,
            udp_checksum: false,
            dst_port: kind.default_port(),
            oam: false,
        }
    }

    /// The params that send a tunnel as `t` describes it (addresses, TOS, TTL, destination
    /// port, VNI; DF, UDP checksum and OAM from its flags), for a flow whose tunnel metadata
    /// were set, or that came from a tunnel.
    pub const fn from_tunnel(t: &TunnelMetadata, eth_src: [u8; 6], eth_dst: [u8; 6]) -> Self {
        EncapParams {
            ttl: t.ttl,
            tos: t.tos,
            dont_frag: t.flags & TUN_FLAG_DF != 0,
            udp_checksum: t.flags & TUN_FLAG_CSUM != 0,
            dst_port: t.tp_dst,
            oam: t.flags & TUN_FLAG_OAM != 0,
            ..EncapParams::new(
                t.kind,
                t.vni,
                eth_src,
                eth_dst,
                Ipv4Addr::from_bits(t.src),
                Ipv4Addr::from_bits(t.dst),
            )
        }
    }
}

/// Why a packet was not encapsulated; the names are the encap node's drop-reason counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum EncapDrop {
    /// The packet's headroom is smaller than the header.
    NoHeadroom = 0,
    /// The outer IPv4 packet would pass 65535 bytes.
    TooLong,
    /// The outer IPv4 packet would pass the underlay port's MTU.
    TooBig,
}

impl EncapDrop {
    /// Counter names, indexed by the enum value.
    pub const NAMES: [&'static str; 3] = ["no-headroom", "too-long", "too-big"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for EncapDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for EncapDrop {}

/// The outer headers of one tunnel for one flow, ready to be copied in front of packets.
#[derive(Clone)]
pub struct TunnelHeader {
    params: EncapParams,
    bytes: [u8; MAX_HEADER_LEN],
    len: usize,
    /// The template's IPv4 total length (its headers without an inner frame) and checksum.
    ip_total: u16,
    ip_checksum: u16,
    /// The template's UDP length.
    udp_len: u16,
    udp_checksum: bool,
    /// Sum of the IPv4 pseudo-header without its length.
    pseudo: u32,
    /// Largest outer IPv4 packet the underlay port takes (its MTU); 0: not checked.
    mtu: u16,
    /// The tunnel port's datapath number, for its `tx` counters; 0: none.
    port: u32,
}

impl TunnelHeader {
    /// Builds the template. `options` are Geneve option TLVs as on the wire (well formed, a
    /// multiple of 4 bytes): with VXLAN they, and `oam`, are [`Error::Unsupported`]; a VNI
    /// past 24 bits is [`Error::Malformed`]; Geneve options past 252 bytes are
    /// [`Error::TooLong`].
    pub fn new(params: &EncapParams, options: &[u8]) -> Result<TunnelHeader, Error> {
        let mut tunnel = [0u8; geneve::HEADER_LEN + geneve::MAX_OPTIONS_LEN];
        let tunnel_len = match params.kind {
            TunnelKind::Vxlan => {
                if !options.is_empty() || params.oam {
                    return Err(Error::Unsupported);
                }
                VxlanRepr { vni: params.vni }.emit(&mut tunnel)?;
                vxlan::HEADER_LEN
            }
            TunnelKind::Geneve => {
                let r = GeneveRepr {
                    oam: params.oam,
                    critical: OptionIter::any_critical(options),
                    options,
                    ..GeneveRepr::new(params.vni)
                };
                r.emit(&mut tunnel)?;
                r.header_len()
            }
        };
        let len = FIXED_LEN + tunnel_len;
        if len > MAX_HEADER_LEN {
            return Err(Error::TooLong);
        }
        let ip = Ipv4Repr {
            ttl: params.ttl,
            tos: params.tos,
            ident: 0,
            dont_frag: params.dont_frag,
            ..Ipv4Repr::new(params.ip_src, params.ip_dst)
        };
        // The builder fills lengths and the IPv4 checksum as for an empty inner frame; the
        // UDP checksum is always computed per packet, so the template has 0 there.
        let outer = FrameBuilder::ethernet(params.eth_src, params.eth_dst)
            .ipv4(ip)
            .udp_without_checksum(0, params.dst_port);
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let template = bytes.get_mut(..len).ok_or(Error::TooLong)?;
        let (tunnel_bytes, tunnel) = (template.get_mut(FIXED_LEN..), tunnel.get(..tunnel_len));
        if let (Some(d), Some(s)) = (tunnel_bytes, tunnel) {
            d.copy_from_slice(s);
        }
        outer.emit_in_front(template)?;
        let read16 = |b: &[u8; MAX_HEADER_LEN], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        Ok(TunnelHeader {
            params: *params,
            ip_total: read16(&bytes, IP_LENGTH),
            ip_checksum: read16(&bytes, IP_CHECKSUM),
            udp_len: read16(&bytes, UDP_LENGTH),
            bytes,
            len,
            udp_checksum: params.udp_checksum,
            pseudo: checksum::pseudo_sum_ipv4(
                params.ip_src.to_bits(),
                params.ip_dst.to_bits(),
                ipproto::UDP,
                0,
            ),
            mtu: 0,
            port: 0,
        })
    }

    /// The header counted as sent by tunnel port `port` (its datapath number).
    pub const fn with_port(mut self, port: u32) -> TunnelHeader {
        self.port = port;
        self
    }

    /// The header with the underlay port's MTU: a packet whose outer IPv4 packet would be
    /// longer is dropped as [`EncapDrop::TooBig`] (and answered, see `too_big`).
    pub const fn with_mtu(mut self, mtu: u16) -> TunnelHeader {
        self.mtu = mtu;
        self
    }

    /// Bytes the tunnel leaves for an inner IP packet under the MTU (0 without one).
    pub const fn inner_mtu(&self) -> u16 {
        self.mtu.saturating_sub(self.len as u16)
    }

    /// Bytes the header adds in front of a packet.
    pub const fn header_len(&self) -> usize {
        self.len
    }

    /// The template as built (lengths and IPv4 checksum of an empty inner frame, source port
    /// and UDP checksum 0).
    pub fn template(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// Encapsulates packet `id`: grows it into its headroom and writes the header with the
    /// source port from `meta.hash` ([`udp_src_port`]). Its key and hash still describe the
    /// inner frame; its offsets moved with it.
    #[inline]
    pub fn push(&self, pool: &mut PacketPool, id: PacketId) -> Result<(), EncapDrop> {
        let meta = pool.meta(id);
        let (hash, inner_len) = (meta.hash, usize::from(meta.len));
        let outer = usize::from(self.ip_total) + inner_len;
        if outer > usize::from(u16::MAX) {
            return Err(EncapDrop::TooLong);
        }
        if self.mtu != 0 && outer > usize::from(self.mtu) {
            return Err(EncapDrop::TooBig);
        }
        let frame = pool
            .push_front(id, self.len)
            .map_err(|_| EncapDrop::NoHeadroom)?;
        self.write(frame, udp_src_port(hash))
    }

    /// Writes the header into the first [`TunnelHeader::header_len`] bytes of `frame`, whose
    /// rest is the inner frame, with UDP source port `src_port`.
    #[inline]
    pub fn write(&self, frame: &mut [u8], src_port: u16) -> Result<(), EncapDrop> {
        let (head, inner) = frame
            .split_at_mut_checked(self.len)
            .ok_or(EncapDrop::NoHeadroom)?;
        let inner_len = inner.len();
        let total = u16::try_from(usize::from(self.ip_total) + inner_len)
            .map_err(|_| EncapDrop::TooLong)?;
        // Cannot wrap: the UDP length is below the total length.
        let udp_len = self.udp_len.wrapping_add(inner_len as u16);
        if let Some(t) = self.bytes.get(..self.len) {
            copy_header(head, t);
        }
        let Some(h) = head.first_chunk_mut::<FIXED_LEN>() else {
            return Err(EncapDrop::NoHeadroom);
        };
        let csum = checksum::update16(self.ip_checksum, self.ip_total, total);
        h[IP_LENGTH..IP_LENGTH + 2].copy_from_slice(&total.to_be_bytes());
        h[IP_CHECKSUM..IP_CHECKSUM + 2].copy_from_slice(&csum.to_be_bytes());
        h[UDP_SRC_PORT..UDP_SRC_PORT + 2].copy_from_slice(&src_port.to_be_bytes());
        h[UDP_LENGTH..UDP_LENGTH + 2].copy_from_slice(&udp_len.to_be_bytes());
        if self.udp_checksum {
            let datagram = frame.get_mut(UDP_OFS..).unwrap_or_default();
            let pseudo = self.pseudo + u32::from(udp_len);
            let csum = match checksum::l4_checksum(pseudo, datagram) {
                0 => 0xffff,
                c => c,
            };
            if let Some(c) = datagram.get_mut(udp::field::CHECKSUM) {
                c.copy_from_slice(&csum.to_be_bytes());
            }
        }
        Ok(())
    }
}

/// `dst.copy_from_slice(src)` (equal lengths); headers of 33 to 64 bytes (VXLAN and Geneve
/// without options are 50) as two overlapping 32-byte copies the compiler inlines, cheaper at
/// that size than a call into memcpy.
#[inline(always)]
fn copy_header(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if (33..=64).contains(&n) && dst.len() == n {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<32>(), src.first_chunk::<32>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<32>(), src.last_chunk::<32>()) {
            *d = *s;
        }
        return;
    }
    if dst.len() == n {
        dst.copy_from_slice(src);
    }
}

impl TunnelHeader {
    /// The values it was built from.
    pub const fn params(&self) -> &EncapParams {
        &self.params
    }

    /// Its Geneve options as on the wire (empty for VXLAN).
    pub fn options(&self) -> &[u8] {
        match self.params.kind {
            TunnelKind::Vxlan => &[],
            TunnelKind::Geneve => self
                .template()
                .get(FIXED_LEN + geneve::HEADER_LEN..)
                .unwrap_or_default(),
        }
    }
}

impl From<EncapDrop> for ExecDrop {
    fn from(d: EncapDrop) -> ExecDrop {
        match d {
            EncapDrop::NoHeadroom => ExecDrop::TunnelNoHeadroom,
            EncapDrop::TooLong => ExecDrop::TunnelTooLong,
            EncapDrop::TooBig => ExecDrop::TunnelTooBig,
        }
    }
}

impl PushHeader for TunnelHeader {
    fn template(&self) -> &[u8] {
        TunnelHeader::template(self)
    }

    fn checksummed(&self) -> bool {
        self.udp_checksum
    }

    #[inline]
    fn push(&self, pool: &mut PacketPool, id: PacketId) -> Result<(), ExecDrop> {
        TunnelHeader::push(self, pool, id).map_err(ExecDrop::from)
    }

    fn port(&self) -> u32 {
        self.port
    }

    fn mtu(&self) -> u16 {
        self.mtu
    }

    fn too_big_reply(&self, frame: &[u8], meta: &PacketMeta) -> Option<Vec<u8>> {
        crate::too_big::too_big_reply(frame, meta, self.inner_mtu())
    }

    /// As Open vSwitch prints it, without the datapath port numbers it has and we do not:
    /// `tnl_push(header(size=50,type=4,eth(dst=..,src=..,dl_type=0x0800),ipv4(src=..,dst=..,
    /// proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,
    /// vni=0x1388)))`; Geneve as `geneve(oam,crit,vni=0x7b,options(...))` with each option's
    /// class, type, length and data.
    fn describe(&self) -> String {
        let p = &self.params;
        let mut s = format!(
            "tnl_push(header(size={},type={},eth(dst={},src={},dl_type=0x0800),\
             ipv4(src={},dst={},proto=17,tos={:#x},ttl={},frag={:#x}),udp(src=0,dst={},csum={:#x}),",
            self.len,
            match p.kind {
                TunnelKind::Vxlan => 4,
                TunnelKind::Geneve => 5,
            },
            format_mac(p.eth_dst),
            format_mac(p.eth_src),
            p.ip_src,
            p.ip_dst,
            p.tos,
            p.ttl,
            if p.dont_frag { 0x4000 } else { 0 },
            p.dst_port,
            if self.udp_checksum { 0xffff } else { 0 },
        );
        match p.kind {
            TunnelKind::Vxlan => {
                let _ = write!(s, "vxlan(flags=0x8000000,vni={:#x})", p.vni);
            }
            TunnelKind::Geneve => {
                s.push_str("geneve(");
                if p.oam {
                    s.push_str("oam,");
                }
                if OptionIter::any_critical(self.options()) {
                    s.push_str("crit,");
                }
                let _ = write!(s, "vni={:#x}", p.vni);
                let options = self.options();
                if !options.is_empty() {
                    s.push_str(",options(");
                    for (i, o) in OptionIter::new(options).flatten().enumerate() {
                        if i > 0 {
                            s.push(',');
                        }
                        let _ = write!(
                            s,
                            "{{class={:#x},type={:#x},len={}}}",
                            o.class,
                            o.option_type,
                            o.data.len()
                        );
                        if !o.data.is_empty() {
                            s.push_str("0x");
                            for b in o.data {
                                let _ = write!(s, "{b:02x}");
                            }
                        }
                    }
                    s.push(')');
                }
                s.push(')');
            }
        }
        s.push_str("))");
        s
    }
}

impl std::fmt::Debug for TunnelHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelHeader")
            .field("template", &format_args!("{:02x?}", self.template()))
            .field("udp_checksum", &self.udp_checksum)
            .finish()
    }
}

#[cfg(test)]
mod tests;
