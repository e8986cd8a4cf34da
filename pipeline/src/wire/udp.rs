//! UDP headers (RFC 768): ports, length and the checksum over the IPv4 or IPv6 pseudo-header.
//! A checksum of 0 means "none" (allowed over IPv4, and over IPv6 for tunnels, RFC 6935), so a
//! computed 0 is sent as 0xffff.

use super::{read_u16, slice, slice_mut, write_u16, Error, PseudoHeader, Result};
use crate::flowkey::ipproto;

/// Byte ranges of the UDP header.
pub mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// A view of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds the header and the length the header gives.
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
        let field = self.length() as usize;
        if field < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < field {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header and payload bytes.
    pub fn length(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The bytes after the header up to the length field.
    pub fn payload(&self) -> &[u8] {
        slice(self.buffer.as_ref(), HEADER_LEN, self.length() as usize)
    }

    /// Whether the checksum verifies under `pseudo` (0, no checksum, verifies).
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        self.checksum() == 0 || {
            let seg = slice(self.buffer.as_ref(), 0, self.length() as usize);
            pseudo.checksum(ipproto::UDP, seg) == 0
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, port);
    }

    pub fn set_length(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    pub fn set_checksum(&mut self, csum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, csum);
    }

    /// Computes the checksum over `pseudo` and the datagram (up to the length field).
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let seg = slice(self.buffer.as_ref(), 0, self.length() as usize);
        let csum = match pseudo.checksum(ipproto::UDP, seg) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(csum);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.length() as usize;
        slice_mut(self.buffer.as_mut(), HEADER_LEN, len)
    }
}

/// The values of a UDP header (its length and checksum come from the payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl Repr {
    /// Reads a datagram whose checksum verifies under `pseudo`.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, pseudo: &PseudoHeader) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum(pseudo) {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header and payload bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header into `buf`, the header followed by the payload (already there), with
    /// the length and the checksum over `pseudo`.
    pub fn emit(&self, buf: &mut [u8], pseudo: &PseudoHeader) -> Result<()> {
        let mut p = self.emit_header(buf)?;
        p.fill_checksum(pseudo);
        Ok(())
    }

    /// [`Repr::emit`] with checksum 0, "none" (VXLAN over IPv4 sends no checksum).
    pub fn emit_without_checksum(&self, buf: &mut [u8]) -> Result<()> {
        self.emit_header(buf).map(|_| ())
    }

    fn emit_header<'a>(&self, buf: &'a mut [u8]) -> Result<Packet<&'a mut [u8]>> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferLength);
        }
        let len = u16::try_from(buf.len()).map_err(|_| Error::TooLong)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_length(len);
        p.set_checksum(0);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pseudo() -> PseudoHeader {
        PseudoHeader::Ipv4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 1, 1),
        }
    }

    /// 1024 → 5001 with 18 bytes 0..18: the UDP part of `datapath::traffic`'s default frame
    /// (checksum from the RFC 1071 fold by hand, as that module's fixture does).
    fn datagram() -> Vec<u8> {
        let mut d = vec![0x04, 0x00, 0x13, 0x89, 0x00, 0x1a, 0, 0];
        d.extend(0..18u8);
        let c = pseudo().checksum(17, &d);
        d[6..8].copy_from_slice(&c.to_be_bytes());
        d
    }

    #[test]
    fn emit_and_parse_fixture() {
        let want = datagram();
        let mut b = vec![0u8; 26];
        b[8..].copy_from_slice(&want[8..]);
        let r = Repr {
            src_port: 1024,
            dst_port: 5001,
        };
        r.emit(&mut b, &pseudo()).unwrap();
        assert_eq!(b, want);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, &pseudo()).unwrap(), r);
        assert_eq!(p.payload(), &want[8..]);
        r.emit_without_checksum(&mut b).unwrap();
        assert_eq!(&b[6..8], &[0, 0]);
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(&pseudo()));
    }

    #[test]
    fn a_computed_zero_is_sent_as_ffff() {
        // Find a payload word that makes the sum come out 0 (the checksum then is 0xffff).
        let r = Repr {
            src_port: 1,
            dst_port: 2,
        };
        let mut b = [0u8; 10];
        r.emit(&mut b, &pseudo()).unwrap();
        let c = u16::from_be_bytes([b[6], b[7]]);
        // Adding `c` to the data makes the sum all ones: the checksum would be 0.
        b[8..10].copy_from_slice(&c.to_be_bytes());
        r.emit(&mut b, &pseudo()).unwrap();
        assert_eq!(&b[6..8], &[0xff, 0xff]);
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(&pseudo()));
    }

    #[test]
    fn refuses_bad_datagrams() {
        let mut b = datagram();
        b[9] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, &pseudo()), Err(Error::Checksum));
        let b = datagram();
        assert_eq!(Packet::new_checked(&b[..25]), Err(Error::Truncated));
        let mut b = datagram();
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
        let r = Repr {
            src_port: 1,
            dst_port: 2,
        };
        assert_eq!(r.emit(&mut [0u8; 7], &pseudo()), Err(Error::BufferLength));
        assert_eq!(
            r.emit(&mut vec![0u8; 65_536], &pseudo()),
            Err(Error::TooLong)
        );
    }
}
