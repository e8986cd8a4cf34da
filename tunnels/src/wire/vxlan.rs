//! VXLAN headers (RFC 7348 section 5): 8 bytes after a UDP header to port 4789, an I flag
//! saying the VNI is valid and a 24-bit VNI; the payload is an Ethernet frame.
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|               Reserved                        |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```
//!
//! The reserved bits are sent as zeros and ignored on receipt, as the RFC says (Open
//! vSwitch's userspace decap is stricter: it drops a header with any other flag or a
//! non-zero last byte).

use super::MAX_VNI;
use super::{read_u24, read_u8, slice, slice_mut, write_bytes, write_u24, write_u8, Error, Result};

/// The IANA port of VXLAN.
pub const UDP_PORT: u16 = 4789;

/// Byte ranges of the VXLAN header.
pub mod field {
    use crate::wire::Field;
    pub const FLAGS: usize = 0;
    pub const RESERVED1: Field = 1..4;
    pub const VNI: Field = 4..7;
    pub const RESERVED2: usize = 7;
    pub const PAYLOAD: usize = 8;
}

pub const HEADER_LEN: usize = field::PAYLOAD;
/// The I flag: the VNI is valid. It must be set.
pub const FLAG_I: u8 = 0x08;

/// A view of a VXLAN header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds at least the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte (only [`FLAG_I`] is defined).
    pub fn flags(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::FLAGS)
    }

    /// Whether the I flag is set.
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    pub fn vni(&self) -> u32 {
        read_u24(self.buffer.as_ref(), field::VNI.start)
    }

    /// The encapsulated Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        slice(b, HEADER_LEN, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_flags(&mut self, flags: u8) {
        write_u8(self.buffer.as_mut(), field::FLAGS, flags);
    }

    /// Zeroes both reserved fields.
    pub fn clear_reserved(&mut self) {
        write_bytes(self.buffer.as_mut(), field::RESERVED1.start, &[0; 3]);
        write_u8(self.buffer.as_mut(), field::RESERVED2, 0);
    }

    /// Sets the low 24 bits of `vni`.
    pub fn set_vni(&mut self, vni: u32) {
        write_u24(self.buffer.as_mut(), field::VNI.start, vni);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        slice_mut(b, HEADER_LEN, len)
    }
}

/// The values of a VXLAN header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// 24 bits.
    pub vni: u32,
}

impl Repr {
    /// Reads a checked header: the I flag must be set ([`Error::Malformed`] otherwise); the
    /// reserved bits are ignored.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.vni_valid() {
            return Err(Error::Malformed);
        }
        Ok(Repr { vni: packet.vni() })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 8 bytes of `buf` (the payload after it is left as it
    /// is): the I flag, the VNI, zeros elsewhere. A VNI past 24 bits is [`Error::Malformed`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.vni > MAX_VNI {
            return Err(Error::Malformed);
        }
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferLength);
        }
        let mut p = Packet::new_unchecked(buf);
        p.set_flags(FLAG_I);
        p.clear_reserved();
        p.set_vni(self.vni);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by scapy 2.5: `raw(VXLAN(vni=0x123456))` (`tunnels/fixtures/scapy_fixtures.py`).
    const VXLAN_HEADER: [u8; 8] = [0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x00];

    #[test]
    fn parse_and_emit_the_scapy_fixture() {
        let p = Packet::new_checked(&VXLAN_HEADER[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(Repr { vni: 0x12_3456 }));
        assert!(p.payload().is_empty());
        let mut b = [0xffu8; 10];
        Repr { vni: 0x12_3456 }.emit(&mut b).unwrap();
        assert_eq!(&b[..8], &VXLAN_HEADER);
        assert_eq!(&b[8..], &[0xff, 0xff], "payload left as it was");
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().payload(),
            &[0xff, 0xff]
        );
    }

    #[test]
    fn reserved_bits_are_ignored_and_the_i_flag_is_required() {
        let mut b = [0xffu8; 8];
        b[4..7].copy_from_slice(&[0, 0, 42]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(Repr { vni: 42 }));
        b[0] = 0xf7;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Malformed));
    }

    #[test]
    fn refuses_short_buffers_and_wide_vnis() {
        assert_eq!(
            Packet::new_checked(&VXLAN_HEADER[..7]),
            Err(Error::Truncated)
        );
        let unchecked = Packet::new_unchecked(&VXLAN_HEADER[..5]);
        assert_eq!((unchecked.vni(), unchecked.flags()), (0, 0x08));
        assert_eq!(Repr { vni: 1 }.emit(&mut [0; 7]), Err(Error::BufferLength));
        assert_eq!(
            Repr { vni: 1 << 24 }.emit(&mut [0; 8]),
            Err(Error::Malformed)
        );
    }
}
