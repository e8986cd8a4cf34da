//! The rewrite of a NAT'ed packet (OVS `nat_packet`, `pat_packet`, `nat_inner_packet`): the
//! addresses the translation touches, the TCP and UDP ports or the ICMP query identifier, and
//! for an ICMP error the outer address and the quoted header (its addresses, ports or
//! identifier, its IP header checksum and its L4 checksum where quoted). Checksums are patched
//! incrementally (RFC 1624): the IPv4 header's, TCP's, UDP's (a zero, "no checksum", stays
//! zero) and ICMPv6's pseudo-header; an ICMP error's own checksum is summed again over the
//! message, as OVS does, since much of it changed.
//!
//! **IPv4 identifier (RFC 6864).** A datagram whose address is rewritten and that may be
//! fragmented (DF clear) or is a fragment gets a new identifier, as if the switch had sent it
//! ([`crate::ConnTable::next_ip_id`]); an atomic datagram (DF set, not a fragment) keeps its
//! own, which no one may use for reassembly. The quoted header of an ICMP error keeps the
//! identifier it has.
//!
//! The packet's key is updated with the new addresses and ports, so later actions and a
//! recirculation see the translated packet.

use pipeline::buffer::NO_OFFSET;
use pipeline::checksum::{
    checksum, l4_checksum, pseudo_sum_ipv6, update16, update32, update_bytes,
};
use pipeline::flowkey::{ethertype, ipproto};
use pipeline::PacketMeta;

use crate::key::{CtAddr, Family};
use crate::nat::{NatKind, NatRewrite};
use crate::proto::ProtoClass;

fn get<const N: usize>(d: &[u8], at: usize) -> Option<[u8; N]> {
    d.get(at..)?.first_chunk::<N>().copied()
}

fn rd16(d: &[u8], at: usize) -> Option<u16> {
    get::<2>(d, at).map(u16::from_be_bytes)
}

fn wr16(d: &mut [u8], at: usize, v: u16) -> Option<()> {
    *d.get_mut(at..)?.first_chunk_mut::<2>()? = v.to_be_bytes();
    Some(())
}

/// Rewrites the checksum at `at` with `f`, if the packet has it (`end`: where the packet's
/// bytes stop). With `udp`, a zero checksum stays zero and a computed zero is sent as 0xffff.
fn fix(d: &mut [u8], at: usize, end: usize, udp: bool, f: impl FnOnce(u16) -> u16) {
    if at + 2 > end {
        return;
    }
    let Some(old) = rd16(d, at) else {
        return;
    };
    let new = match (udp, old) {
        (true, 0) => return,
        (true, _) => match f(old) {
            0 => 0xffff,
            x => x,
        },
        (false, _) => f(old),
    };
    let _ = wr16(d, at, new);
}

/// An address of `family` at `at`: its bytes as a 16-byte `CtAddr`.
fn addr_at(d: &[u8], at: usize, family: Family) -> Option<CtAddr> {
    let mut a = [0u8; 16];
    let n = if family == Family::V4 { 4 } else { 16 };
    a.get_mut(..n)?.copy_from_slice(d.get(at..at + n)?);
    Some(CtAddr(a))
}

/// One header's addresses, ports and checksums, where they are in the packet.
struct Header {
    family: Family,
    /// The IP header's start, and its end of bytes (the IP packet's end).
    l3: usize,
    end: usize,
    l4: usize,
    proto: u8,
}

impl Header {
    fn src_at(&self) -> usize {
        self.l3 + if self.family == Family::V4 { 12 } else { 8 }
    }

    fn dst_at(&self) -> usize {
        self.l3 + if self.family == Family::V4 { 16 } else { 24 }
    }

    /// Where the L4 checksum that covers the pseudo-header is, and whether it is UDP's.
    fn pseudo_csum(&self) -> Option<(usize, bool)> {
        match (self.proto, self.family) {
            (ipproto::TCP, _) => Some((self.l4 + 16, false)),
            (ipproto::UDP, _) => Some((self.l4 + 6, true)),
            (ipproto::ICMPV6, Family::V6) => Some((self.l4 + 2, false)),
            _ => None,
        }
    }

    /// Writes `new` as the address at `at` (the source's or destination's), patching the IP
    /// header checksum and the L4 checksum (`l4_too`). Returns whether it changed.
    fn set_addr(&self, d: &mut [u8], at: usize, new: CtAddr, l4_too: bool) -> Option<bool> {
        let old = addr_at(d, at, self.family)?;
        if old == new {
            return Some(false);
        }
        let n = if self.family == Family::V4 { 4 } else { 16 };
        d.get_mut(at..at + n)?.copy_from_slice(new.0.get(..n)?);
        let (o, w) = (old.0, new.0);
        if self.family == Family::V4 {
            let (o4, n4) = (
                u32::from_be_bytes([o[0], o[1], o[2], o[3]]),
                u32::from_be_bytes([w[0], w[1], w[2], w[3]]),
            );
            fix(d, self.l3 + 10, self.end, false, |c| update32(c, o4, n4));
        }
        if l4_too {
            if let Some((at, udp)) = self.pseudo_csum() {
                fix(d, at, self.end, udp, |c| update_bytes(c, &o[..n], &w[..n]));
            }
        }
        Some(true)
    }

    /// Writes the ports (TCP, UDP) or the query identifier (ICMP, ICMPv6: `sport`), patching
    /// the L4 checksum.
    fn set_ports(&self, d: &mut [u8], sport: u16, dport: u16) -> Option<()> {
        match ProtoClass::of(self.proto, self.family) {
            ProtoClass::Icmp => {
                let old = rd16(d, self.l4 + 4)?;
                wr16(d, self.l4 + 4, sport)?;
                fix(d, self.l4 + 2, self.end, false, |c| update16(c, old, sport));
            }
            _ if matches!(self.proto, ipproto::TCP | ipproto::UDP) => {
                let (at, udp) = self.pseudo_csum()?;
                for (off, new) in [(0, sport), (2, dport)] {
                    let old = rd16(d, self.l4 + off)?;
                    wr16(d, self.l4 + off, new)?;
                    fix(d, at, self.end, udp, |c| update16(c, old, new));
                }
            }
            _ => {}
        }
        Some(())
    }
}

/// The outer header of the packet `meta` describes.
fn outer(d: &[u8], m: &PacketMeta) -> Option<Header> {
    if m.l3_ofs == NO_OFFSET || m.l4_ofs == NO_OFFSET {
        return None;
    }
    let (l3, l4) = (usize::from(m.l3_ofs), usize::from(m.l4_ofs));
    let (family, end) = match m.key.dl_type {
        ethertype::IPV4 => (Family::V4, l3 + usize::from(rd16(d, l3 + 2)?)),
        ethertype::IPV6 => (Family::V6, l3 + 40 + usize::from(rd16(d, l3 + 4)?)),
        _ => return None,
    };
    Some(Header {
        family,
        l3,
        end: end.min(d.len()),
        l4,
        proto: m.key.nw_proto,
    })
}

/// The header an ICMP error quotes (after the 8 bytes of the ICMP header).
fn quoted(d: &[u8], o: &Header) -> Option<Header> {
    let l3 = o.l4 + 8;
    let (l4, proto) = match o.family {
        Family::V4 => (l3 + usize::from(*d.get(l3)? & 0x0f) * 4, *d.get(l3 + 9)?),
        Family::V6 => (l3 + 40, *d.get(l3 + 6)?),
    };
    Some(Header {
        family: o.family,
        l3,
        end: o.end,
        l4,
        proto,
    })
}

/// Rewrites the packet (`d` its bytes, `m` its metadata) as `nat` says; `ip_id` gives a new
/// IPv4 identifier for a source, destination and protocol. `None` when a header the rewrite
/// needs is missing (the tracker found them, so only a malformed quote gets there).
pub(crate) fn rewrite(
    d: &mut [u8],
    m: &mut PacketMeta,
    nat: &NatRewrite,
    ip_id: impl FnOnce(CtAddr, CtAddr, u8) -> u16,
) -> Option<()> {
    let o = outer(d, m)?;
    let to = &nat.to;
    let l4_too = !nat.related;
    let changed = match nat.kind {
        NatKind::Src => o.set_addr(d, o.src_at(), to.src, l4_too)?,
        NatKind::Dst => o.set_addr(d, o.dst_at(), to.dst, l4_too)?,
    };
    if nat.related {
        let q = quoted(d, &o)?;
        // The quoted packet travelled the other way: it becomes the reverse of `to`.
        let back = to.reverse();
        q.set_addr(d, q.src_at(), back.src, true)?;
        q.set_addr(d, q.dst_at(), back.dst, true)?;
        q.set_ports(d, back.sport, back.dport)?;
        wr16(d, o.l4 + 2, 0)?;
        let msg = d.get(o.l4..o.end)?;
        let sum = match o.family {
            Family::V4 => checksum(msg),
            Family::V6 => {
                let (src, dst) = (
                    addr_at(d, o.src_at(), o.family)?,
                    addr_at(d, o.dst_at(), o.family)?,
                );
                let pseudo = pseudo_sum_ipv6(&src.0, &dst.0, ipproto::ICMPV6, msg.len() as u32);
                l4_checksum(pseudo, msg)
            }
        };
        wr16(d, o.l4 + 2, sum)?;
    } else {
        o.set_ports(d, to.sport, to.dport)?;
        if matches!(o.proto, ipproto::TCP | ipproto::UDP) {
            m.key.tp_src = to.sport;
            m.key.tp_dst = to.dport;
        }
    }
    if changed && o.family == Family::V4 {
        let flags = rd16(d, o.l3 + 6)?;
        let atomic = flags & 0x4000 != 0 && flags & 0x3fff == 0;
        if !atomic {
            let (src, dst) = (
                addr_at(d, o.src_at(), o.family)?,
                addr_at(d, o.dst_at(), o.family)?,
            );
            let new = ip_id(src, dst, o.proto);
            let old = rd16(d, o.l3 + 4)?;
            wr16(d, o.l3 + 4, new)?;
            fix(d, o.l3 + 10, o.end, false, |c| update16(c, old, new));
        }
    }
    let (src, dst) = (
        addr_at(d, o.src_at(), o.family)?,
        addr_at(d, o.dst_at(), o.family)?,
    );
    match o.family {
        Family::V4 => {
            m.key.nw_src = u32::from_be_bytes([src.0[0], src.0[1], src.0[2], src.0[3]]);
            m.key.nw_dst = u32::from_be_bytes([dst.0[0], dst.0[1], dst.0[2], dst.0[3]]);
        }
        Family::V6 => {
            m.key.ipv6_src = src.0;
            m.key.ipv6_dst = dst.0;
        }
    }
    Some(())
}
