//! Typed, checked views and emitters of the headers vecswitch reads and writes: Ethernet II,
//! VLAN tags, ARP, IPv4, IPv6, UDP, TCP, ICMP and ICMPv6, with their checksums, and
//! [`FrameBuilder`], which composes them into a whole frame or writes them in front of a
//! payload already in a buffer (the headroom an encap node pushes into).
//!
//! Each protocol has a file, shaped as smoltcp's `src/wire/`: a view `Packet<T: AsRef<[u8]>>`
//! whose `new_checked` validates the lengths once (its accessors then read in bounds; they
//! never panic, even on an unchecked view, where out-of-range reads give 0), a `field` module
//! of byte ranges, and a `Repr` with `parse` (view → values, checksums verified) and `emit`
//! (values → bytes, lengths and checksums filled in). The views and reprs are re-exported here
//! under prefixed names (`Ipv4Packet`, `Ipv4Repr`, ...). The `parse` node does not use them:
//! it has its own straight-line reader tuned for the per-packet path; this module is for
//! building frames (pktgen, benches, tests, tunnel header templates) and for reading single
//! packets off the hot path.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;

pub mod arp;
mod builder;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vlan;

#[cfg(test)]
mod crosscheck;

pub use arp::{Packet as ArpPacket, Repr as ArpRepr};
pub use builder::{FrameBuilder, Network, Transport};
pub use ethernet::{Frame as EthernetFrame, Repr as EthernetRepr};
pub use icmpv4::{Packet as Icmpv4Packet, Repr as Icmpv4Repr};
pub use icmpv6::{Packet as Icmpv6Packet, Repr as Icmpv6Repr};
pub use ipv4::{Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use ipv6::{Packet as Ipv6Packet, Repr as Ipv6Repr};
pub use tcp::{Packet as TcpPacket, Repr as TcpRepr};
pub use udp::{Packet as UdpPacket, Repr as UdpRepr};
pub use vlan::{Repr as VlanRepr, Tag as VlanTag};

/// Why bytes could not be read as a header, or a `Repr` could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field says.
    Truncated,
    /// A field holds a value the format forbids (a version, a header length below the
    /// minimum, a total length below the header length, a VLAN ID past 4095).
    Malformed,
    /// A checksum does not verify.
    Checksum,
    /// The buffer given to `emit` is not the size the `Repr` needs.
    BufferLength,
    /// A length does not fit its field (a payload past 65535 bytes, options past 40 bytes).
    TooLong,
    /// Well formed but not handled here (ARP other than Ethernet/IPv4, an ICMPv6 message
    /// over IPv4, a third VLAN tag).
    Unsupported,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Checksum => "bad checksum",
            Error::BufferLength => "buffer is not the length the header needs",
            Error::TooLong => "length does not fit its field",
            Error::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A byte range of a header.
pub type Field = std::ops::Range<usize>;

/// Up to 40 bytes of IPv4 or TCP options, kept inline so that a `Repr` stays `Copy`. On the
/// wire they are padded with zeros (end-of-options in both protocols) to a multiple of 4.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Options {
    bytes: [u8; Options::MAX_LEN],
    len: u8,
}

impl Options {
    /// The most option bytes a 4-bit header length in words leaves (60 - 20).
    pub const MAX_LEN: usize = 40;
    pub const EMPTY: Options = Options {
        bytes: [0; Options::MAX_LEN],
        len: 0,
    };

    /// `bytes` as options; [`Error::TooLong`] past 40 bytes.
    pub fn new(bytes: &[u8]) -> Result<Options> {
        let mut o = Options::EMPTY;
        o.bytes
            .get_mut(..bytes.len())
            .ok_or(Error::TooLong)?
            .copy_from_slice(bytes);
        o.len = bytes.len() as u8;
        Ok(o)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len as usize).unwrap_or_default()
    }

    /// Bytes on the wire: the length rounded up to a multiple of 4.
    pub const fn padded_len(&self) -> usize {
        (self.len as usize).div_ceil(4) * 4
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::EMPTY
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Options({:02x?})", self.as_bytes())
    }
}

/// The addresses of the pseudo-header that TCP, UDP and ICMPv6 checksums cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudoHeader {
    Ipv4 { src: Ipv4Addr, dst: Ipv4Addr },
    Ipv6 { src: Ipv6Addr, dst: Ipv6Addr },
}

impl PseudoHeader {
    /// The unfolded sum of the pseudo-header for a `len`-byte segment of `protocol`.
    pub fn sum(&self, protocol: u8, len: usize) -> u32 {
        match self {
            PseudoHeader::Ipv4 { src, dst } => {
                checksum::pseudo_sum_ipv4(u32::from(*src), u32::from(*dst), protocol, len as u32)
            }
            PseudoHeader::Ipv6 { src, dst } => {
                checksum::pseudo_sum_ipv6(&src.octets(), &dst.octets(), protocol, len as u32)
            }
        }
    }

    /// The checksum of `segment` (its checksum field zeroed) under this pseudo-header; to
    /// verify, pass the segment as received and compare with 0.
    pub fn checksum(&self, protocol: u8, segment: &[u8]) -> u16 {
        checksum::l4_checksum(self.sum(protocol, segment.len()), segment)
    }
}

/// The IP protocol numbers the builder fills in.
pub mod protocol {
    pub use crate::flowkey::ipproto::{ICMP, ICMPV6, TCP, UDP};
}

/// The ethertypes of the headers here.
pub mod ethertype {
    pub use crate::flowkey::ethertype::{ARP, IPV4, IPV6, QINQ, VLAN};
}

// Reads and writes that cannot panic: out of range they read 0 and write nothing. Views read
// through these so that an accessor never panics, checked or not; the tunnel headers of the
// `tunnels` crate use them too.

#[inline(always)]
pub fn read_u8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[inline(always)]
pub fn read_u16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline(always)]
pub fn read_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[inline(always)]
pub fn read_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

#[inline(always)]
pub fn write_bytes(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

#[inline(always)]
pub fn write_u8(b: &mut [u8], at: usize, v: u8) {
    if let Some(d) = b.get_mut(at) {
        *d = v;
    }
}

#[inline(always)]
pub fn write_u16(b: &mut [u8], at: usize, v: u16) {
    write_bytes(b, at, &v.to_be_bytes());
}

#[inline(always)]
pub fn write_u32(b: &mut [u8], at: usize, v: u32) {
    write_bytes(b, at, &v.to_be_bytes());
}

/// `b[from..to]`, or empty when out of range.
#[inline(always)]
pub fn slice(b: &[u8], from: usize, to: usize) -> &[u8] {
    b.get(from..to).unwrap_or_default()
}

#[inline(always)]
pub fn slice_mut(b: &mut [u8], from: usize, to: usize) -> &mut [u8] {
    b.get_mut(from..to).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_pad_to_words_and_refuse_more_than_40_bytes() {
        let o = Options::new(&[1, 1, 1]).unwrap();
        assert_eq!((o.as_bytes(), o.padded_len()), (&[1u8, 1, 1][..], 4));
        assert_eq!(Options::new(&[0; 40]).unwrap().padded_len(), 40);
        assert_eq!(Options::new(&[0; 41]), Err(Error::TooLong));
        assert!(Options::default().is_empty());
    }

    #[test]
    fn out_of_range_reads_give_zero_and_writes_nothing() {
        let mut b = [1u8, 2, 3];
        assert_eq!((read_u16(&b, 1), read_u16(&b, 2)), (0x0203, 0));
        assert_eq!(read_u32(&b, 0), 0);
        assert_eq!(read_array::<2>(&b, 2), [0, 0]);
        write_u16(&mut b, 2, 0xffff);
        assert_eq!(b, [1, 2, 3]);
        assert!(slice(&b, 2, 9).is_empty());
    }
}
