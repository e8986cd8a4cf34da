//! IPv6 fixed headers (RFC 8200): version, traffic class, flow label, payload length, next
//! header, hop limit and addresses. Extension headers are payload here: whoever builds one
//! writes it after the fixed header and names it in `next_header`.

use std::net::Ipv6Addr;

use super::{
    read_array, read_u16, read_u32, read_u8, slice, slice_mut, write_bytes, write_u16, write_u32,
    write_u8, Error, PseudoHeader, Result,
};

/// Byte ranges of the IPv6 header.
pub mod field {
    use crate::wire::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
    pub const PAYLOAD: usize = 40;
}

pub const HEADER_LEN: usize = field::PAYLOAD;
const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

/// A view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds the header and the payload length (Ethernet padding
    /// may follow).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + self.payload_len() as usize {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW.start)
    }

    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        self.first_word() & FLOW_LABEL_MASK
    }

    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn next_header(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::NXT_HDR)
    }

    pub fn hop_limit(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), field::SRC.start))
    }

    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), field::DST.start))
    }

    /// The bytes after the header up to the payload length.
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        slice(self.buffer.as_ref(), HEADER_LEN, end)
    }

    pub fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::Ipv6 {
            src: self.src(),
            dst: self.dst(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, the traffic class and the flow label (its low 20 bits).
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = 6 << 28 | u32::from(traffic_class) << 20 | (flow_label & FLOW_LABEL_MASK);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW.start, w);
    }

    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    pub fn set_next_header(&mut self, next: u8) {
        write_u8(self.buffer.as_mut(), field::NXT_HDR, next);
    }

    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        write_u8(self.buffer.as_mut(), field::HOP_LIMIT, hop_limit);
    }

    pub fn set_src(&mut self, ip: Ipv6Addr) {
        write_bytes(self.buffer.as_mut(), field::SRC.start, &ip.octets());
    }

    pub fn set_dst(&mut self, ip: Ipv6Addr) {
        write_bytes(self.buffer.as_mut(), field::DST.start, &ip.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        slice_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

/// The values of an IPv6 fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    /// Bytes after the fixed header (extension headers included).
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
}

impl Repr {
    /// A header from `src` to `dst` with hop limit 64, traffic class and flow label 0; next
    /// header and payload length 0 ([`super::FrameBuilder`] fills them in).
    pub const fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Repr {
        Repr {
            src,
            dst,
            next_header: 0,
            payload_len: 0,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    /// Reads a checked packet's header; the version must be 6.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src: packet.src(),
            dst: packet.dst(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len() as usize,
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header and payload bytes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    pub const fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::Ipv6 {
            src: self.src,
            dst: self.dst,
        }
    }

    /// Writes the header at the start of `buf`, which holds exactly [`Repr::buffer_len`]
    /// bytes (the payload after the header is left as it is).
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.payload_len > usize::from(u16::MAX) {
            return Err(Error::TooLong);
        }
        if self.flow_label > FLOW_LABEL_MASK {
            return Err(Error::Malformed);
        }
        if buf.len() != self.buffer_len() {
            return Err(Error::BufferLength);
        }
        let mut p = Packet::new_unchecked(buf);
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src(self.src);
        p.set_dst(self.dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2001:db8::1 → 2001:db8::2, traffic class 0xb8, flow label 0x12345, 4 bytes of UDP(17)
    /// payload, hop limit 255.
    const HEADER: [u8; 40] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x04, 17, 255, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];

    fn repr() -> Repr {
        Repr {
            next_header: 17,
            payload_len: 4,
            hop_limit: 255,
            traffic_class: 0xb8,
            flow_label: 0x12345,
            ..Repr::new(
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            )
        }
    }

    #[test]
    fn parse_and_emit_fixture() {
        let mut b = HEADER.to_vec();
        b.extend_from_slice(&[1, 2, 3, 4]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        let mut e = vec![0u8; 44];
        e[40..].copy_from_slice(&[1, 2, 3, 4]);
        repr().emit(&mut e).unwrap();
        assert_eq!(e, b);
    }

    #[test]
    fn refuses_bad_headers() {
        let mut b = HEADER.to_vec();
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Truncated));
        b.push(4);
        b[0] = 0x4b;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Malformed));
        assert_eq!(repr().emit(&mut [0u8; 45]), Err(Error::BufferLength));
        let r = Repr {
            flow_label: 1 << 20,
            ..repr()
        };
        assert_eq!(r.emit(&mut [0u8; 44]), Err(Error::Malformed));
    }
}
