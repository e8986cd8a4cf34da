//! IPv4 headers (RFC 791): version and header length, TOS, total length, identification,
//! flags and fragment offset, TTL, protocol, header checksum, addresses and options.

use std::net::Ipv4Addr;

use super::{
    read_array, read_u16, read_u8, slice, slice_mut, write_bytes, write_u16, write_u8, Error,
    Options, PseudoHeader, Result,
};
use crate::checksum;

/// Byte ranges of the IPv4 header.
pub mod field {
    use crate::wire::Field;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
    pub const OPTIONS: usize = 20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// Don't fragment, in the flags/offset word.
const DF: u16 = 0x4000;
/// More fragments, in the flags/offset word.
const MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds the whole header and the total length (Ethernet padding
    /// may follow).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        let total = self.total_len() as usize;
        if total < hl {
            return Err(Error::Malformed);
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Header length in bytes (options included).
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    /// The whole TOS byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TOS)
    }

    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & DF != 0
    }

    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & MF != 0
    }

    /// Fragment offset in 8-byte units, as on the wire.
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & OFFSET_MASK
    }

    pub fn ttl(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TTL)
    }

    pub fn protocol(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::PROTOCOL)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::SRC.start))
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::DST.start))
    }

    pub fn options(&self) -> &[u8] {
        slice(self.buffer.as_ref(), field::OPTIONS, self.header_len())
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let hl = self.header_len();
        hl >= HEADER_LEN && b.len() >= hl && checksum::checksum(slice(b, 0, hl)) == 0
    }

    /// The bytes after the header up to the total length.
    pub fn payload(&self) -> &[u8] {
        slice(
            self.buffer.as_ref(),
            self.header_len(),
            self.total_len() as usize,
        )
    }

    pub fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::Ipv4 {
            src: self.src(),
            dst: self.dst(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        let ihl = (header_len / 4).min(15) as u8;
        write_u8(self.buffer.as_mut(), field::VER_IHL, 0x40 | ihl);
    }

    pub fn set_tos(&mut self, tos: u8) {
        write_u8(self.buffer.as_mut(), field::TOS, tos);
    }

    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT.start, ident);
    }

    /// Sets the flags and the fragment offset (8-byte units) in one word.
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let w = if dont_frag { DF } else { 0 } | if more_frags { MF } else { 0 } | offset;
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, w);
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        write_u8(self.buffer.as_mut(), field::TTL, ttl);
    }

    pub fn set_protocol(&mut self, protocol: u8) {
        write_u8(self.buffer.as_mut(), field::PROTOCOL, protocol);
    }

    pub fn set_checksum(&mut self, csum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, csum);
    }

    pub fn set_src(&mut self, ip: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::SRC.start, &ip.octets());
    }

    pub fn set_dst(&mut self, ip: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::DST.start, &ip.octets());
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        slice_mut(self.buffer.as_mut(), field::OPTIONS, hl)
    }

    /// Recomputes the header checksum (after changing fields).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let csum = checksum::checksum(slice(self.buffer.as_ref(), 0, hl));
        self.set_checksum(csum);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), self.total_len() as usize);
        slice_mut(self.buffer.as_mut(), hl, total)
    }
}

/// The values of an IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// Bytes after the header (total length minus header length).
    pub payload_len: usize,
    pub ttl: u8,
    /// The whole TOS byte (DSCP << 2 | ECN).
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in 8-byte units, as on the wire (0..=0x1fff).
    pub frag_offset: u16,
    pub options: Options,
}

impl Repr {
    /// A header from `src` to `dst` with TTL 64, TOS 0, identification 0 and DF set, no
    /// options; protocol and payload length 0 ([`super::FrameBuilder`] fills them in).
    pub const fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Repr {
        Repr {
            src,
            dst,
            protocol: 0,
            payload_len: 0,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: Options::EMPTY,
        }
    }

    /// Reads a checked packet's header; the version must be 4 and the checksum verify.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src: packet.src(),
            dst: packet.dst(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() as usize - packet.header_len(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options: Options::new(packet.options())?,
        })
    }

    /// Header bytes, options (padded to 4 bytes) included.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.padded_len()
    }

    /// Header and payload bytes: the total length.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    pub const fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::Ipv4 {
            src: self.src,
            dst: self.dst,
        }
    }

    /// Writes the header, checksum included, at the start of `buf`, which holds exactly
    /// [`Repr::buffer_len`] bytes (the payload after the header is left as it is).
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.buffer_len() > usize::from(u16::MAX) {
            return Err(Error::TooLong);
        }
        if self.frag_offset > OFFSET_MASK {
            return Err(Error::Malformed);
        }
        if buf.len() != self.buffer_len() {
            return Err(Error::BufferLength);
        }
        let hl = self.header_len();
        let mut p = Packet::new_unchecked(buf);
        p.set_version_and_header_len(hl);
        p.set_tos(self.tos);
        p.set_total_len(self.buffer_len() as u16);
        p.set_ident(self.ident);
        p.set_flags_and_frag_offset(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src(self.src);
        p.set_dst(self.dst);
        let opts = p.options_mut();
        opts.fill(0);
        write_bytes(opts, 0, self.options.as_bytes());
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of `checksum::tests::known_ipv4_header`: 192.168.0.1 → 192.168.0.199, UDP,
    /// total length 115, DF, TTL 64, checksum b861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn repr() -> Repr {
        Repr {
            protocol: 17,
            payload_len: 95,
            ..Repr::new(
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(192, 168, 0, 199),
            )
        }
    }

    fn packet() -> Vec<u8> {
        let mut b = HEADER.to_vec();
        b.resize(115, 0x5a);
        b
    }

    #[test]
    fn parse_fixture() {
        let b = packet();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        assert_eq!(p.payload().len(), 95);
        assert!(p.options().is_empty());
    }

    #[test]
    fn emit_fixture_leaves_the_payload() {
        let mut b = vec![0x5au8; 115];
        repr().emit(&mut b).unwrap();
        assert_eq!(b, packet());
    }

    #[test]
    fn options_fragments_tos_and_ident_round_trip() {
        let r = Repr {
            protocol: 6,
            payload_len: 3,
            ttl: 1,
            tos: 0xb8,
            ident: 0xbeef,
            dont_frag: false,
            more_frags: true,
            frag_offset: 0x1234,
            // Router alert (RFC 2113), one 4-byte option.
            options: Options::new(&[0x94, 0x04, 0, 0]).unwrap(),
            ..Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b).unwrap();
        assert_eq!(&b[..9], &[0x46, 0xb8, 0, 27, 0xbe, 0xef, 0x32, 0x34, 1]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        // Options not a multiple of 4 are padded with zeros.
        let odd = Repr {
            options: Options::new(&[1, 1, 1, 1, 7]).unwrap(),
            ..r
        };
        let mut b = vec![0xffu8; odd.buffer_len()];
        odd.emit(&mut b).unwrap();
        assert_eq!(&b[20..28], &[1, 1, 1, 1, 7, 0, 0, 0]);
        assert_eq!(b[0], 0x47);
    }

    #[test]
    fn refuses_bad_headers() {
        let mut b = packet();
        b[10] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Checksum));
        let mut b = packet();
        b[0] = 0x44;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
        let mut b = packet();
        b[0] = 0x65;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Malformed));
        let b = packet();
        assert_eq!(Packet::new_checked(&b[..114]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&b[..19]), Err(Error::Truncated));
        let mut b = packet();
        b[3] = 19;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
        assert_eq!(repr().emit(&mut [0u8; 114]), Err(Error::BufferLength));
        let huge = Repr {
            payload_len: 65_516,
            ..repr()
        };
        assert_eq!(huge.emit(&mut []), Err(Error::TooLong));
    }

    #[test]
    fn setters_then_fill_checksum() {
        let mut b = packet();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_ttl(63);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.ttl(), 63);
    }
}
