//! Ethernet II frames: destination and source MAC and the ethertype of what follows (a VLAN
//! TPID when a tag follows). No FCS: ports neither receive nor send it.

use super::{read_array, read_u16, slice, slice_mut, write_bytes, write_u16, Error, Result};

/// Byte ranges of the Ethernet header.
pub mod field {
    use crate::wire::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

pub const HEADER_LEN: usize = field::PAYLOAD;
/// The broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// A view of an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// A view of a buffer that holds at least the 14-byte header.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let f = Frame::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
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

    pub fn dst(&self) -> [u8; 6] {
        read_array(self.buffer.as_ref(), field::DST.start)
    }

    pub fn src(&self) -> [u8; 6] {
        read_array(self.buffer.as_ref(), field::SRC.start)
    }

    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        slice(b, field::PAYLOAD, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        write_bytes(self.buffer.as_mut(), field::DST.start, &mac);
    }

    pub fn set_src(&mut self, mac: [u8; 6]) {
        write_bytes(self.buffer.as_mut(), field::SRC.start, &mac);
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

/// The values of an Ethernet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    pub ethertype: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src: frame.src(),
            dst: frame.dst(),
            ethertype: frame.ethertype(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header at the start of `buf` (the header and then whatever it carries).
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let mut f = Frame::new_checked(buf).map_err(|_| Error::BufferLength)?;
        f.set_dst(self.dst);
        f.set_src(self.src);
        f.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, 0xaa, 0xbb,
    ];

    fn repr() -> Repr {
        Repr {
            src: [0x02, 0, 0, 0, 0, 0x01],
            dst: [0x02, 0, 0, 0, 0, 0x02],
            ethertype: 0x0800,
        }
    }

    #[test]
    fn parse_fixture() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(Repr::parse(&f).unwrap(), repr());
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn emit_fixture_leaves_the_payload() {
        let mut b = [0u8; 16];
        b[14..].copy_from_slice(&[0xaa, 0xbb]);
        repr().emit(&mut b).unwrap();
        assert_eq!(b, FRAME);
    }

    #[test]
    fn short_buffers() {
        assert_eq!(Frame::new_checked(&FRAME[..13]), Err(Error::Truncated));
        assert_eq!(repr().emit(&mut [0u8; 13]), Err(Error::BufferLength));
        // Unchecked views read 0 past the end instead of panicking.
        assert_eq!(Frame::new_unchecked(&FRAME[..12]).ethertype(), 0);
    }
}
