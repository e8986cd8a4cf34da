//! VLAN tags (802.1Q, and 802.1ad for the outer tag of QinQ): the 4 bytes that follow a TPID
//! in the ethertype position, a TCI (priority, drop eligible, VLAN ID) and the ethertype of
//! what follows. The TPID itself is the ethertype of the header before (Ethernet or an outer
//! tag), so a view starts after it.

use super::{read_u16, slice, slice_mut, write_u16, Error, Result};

/// Byte ranges of a tag, counted from after its TPID.
pub mod field {
    use crate::wire::Field;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

pub const HEADER_LEN: usize = field::PAYLOAD;
/// TPID of an 802.1Q (customer) tag.
pub const TPID_8021Q: u16 = crate::flowkey::ethertype::VLAN;
/// TPID of an 802.1ad (service) tag, the outer one of QinQ.
pub const TPID_8021AD: u16 = crate::flowkey::ethertype::QINQ;

/// A view of a VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tag<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Tag<T> {
        Tag { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Tag<T>> {
        let t = Tag::new_unchecked(buffer);
        t.check_len()?;
        Ok(t)
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

    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI.start)
    }

    /// Priority code point (3 bits).
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN ID (12 bits).
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        slice(b, field::PAYLOAD, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(self.buffer.as_mut(), field::TCI.start, tci);
    }

    pub fn set_ethertype(&mut self, ethertype: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE.start, ethertype);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        slice_mut(b, field::PAYLOAD, len)
    }
}

/// The values of a VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    pub dei: bool,
    /// VLAN ID, 0..=4095.
    pub vid: u16,
    /// Ethertype of what follows the tag.
    pub ethertype: u16,
}

impl Repr {
    /// The tag whose TCI is `tci`.
    pub const fn from_tci(tci: u16, ethertype: u16) -> Repr {
        Repr {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
            ethertype,
        }
    }

    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16) << 13) | ((self.dei as u16) << 12) | self.vid
    }

    pub fn parse<T: AsRef<[u8]>>(tag: &Tag<T>) -> Result<Repr> {
        tag.check_len()?;
        Ok(Repr::from_tci(tag.tci(), tag.ethertype()))
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the tag at the start of `buf` (the tag and then whatever it carries).
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.pcp > 7 || self.vid > 0x0fff {
            return Err(Error::Malformed);
        }
        let mut t = Tag::new_checked(buf).map_err(|_| Error::BufferLength)?;
        t.set_tci(self.tci());
        t.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Priority 5, DEI set, VLAN 100, then IPv4.
    const TAG: [u8; 4] = [0xb0, 0x64, 0x08, 0x00];

    #[test]
    fn parse_and_emit_fixture() {
        let t = Tag::new_checked(&TAG[..]).unwrap();
        let r = Repr::parse(&t).unwrap();
        assert_eq!(
            r,
            Repr {
                pcp: 5,
                dei: true,
                vid: 100,
                ethertype: 0x0800
            }
        );
        assert_eq!((t.pcp(), t.dei(), t.vid(), r.tci()), (5, true, 100, 0xb064));
        let mut b = [0u8; 4];
        r.emit(&mut b).unwrap();
        assert_eq!(b, TAG);
    }

    #[test]
    fn refuses_bad_values_and_short_buffers() {
        let r = Repr::from_tci(0, 0x0800);
        assert_eq!(r.emit(&mut [0u8; 3]), Err(Error::BufferLength));
        let bad = Repr { vid: 4096, ..r };
        assert_eq!(bad.emit(&mut [0u8; 4]), Err(Error::Malformed));
        assert_eq!(Tag::new_checked(&TAG[..3]), Err(Error::Truncated));
    }
}
