//! ARP for IPv4 over Ethernet (RFC 826), the only kind a switch sees: 28 bytes of hardware
//! and protocol types, operation, and sender and target addresses. Other hardware or
//! protocol types parse as [`Error::Unsupported`].

use std::net::Ipv4Addr;

use super::{read_array, read_u16, read_u8, write_bytes, write_u16, write_u8, Error, Result};

/// Byte ranges of an Ethernet/IPv4 ARP packet.
pub mod field {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

pub const PACKET_LEN: usize = field::TPA.end;
/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// ARP operations.
pub mod operation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// A view of an ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds the 28 bytes of Ethernet/IPv4 ARP (Ethernet padding
    /// may follow).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE.start)
    }

    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE.start)
    }

    pub fn hardware_len(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HLEN)
    }

    pub fn protocol_len(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::PLEN)
    }

    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER.start)
    }

    pub fn sender_mac(&self) -> [u8; 6] {
        read_array(self.buffer.as_ref(), field::SHA.start)
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::SPA.start))
    }

    pub fn target_mac(&self) -> [u8; 6] {
        read_array(self.buffer.as_ref(), field::THA.start)
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::TPA.start))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware and protocol types and lengths of Ethernet/IPv4.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE.start, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE.start, crate::flowkey::ethertype::IPV4);
        write_u8(b, field::HLEN, 6);
        write_u8(b, field::PLEN, 4);
    }

    pub fn set_operation(&mut self, op: u16) {
        write_u16(self.buffer.as_mut(), field::OPER.start, op);
    }

    pub fn set_sender_mac(&mut self, mac: [u8; 6]) {
        write_bytes(self.buffer.as_mut(), field::SHA.start, &mac);
    }

    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::SPA.start, &ip.octets());
    }

    pub fn set_target_mac(&mut self, mac: [u8; 6]) {
        write_bytes(self.buffer.as_mut(), field::THA.start, &mac);
    }

    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::TPA.start, &ip.octets());
    }
}

/// The values of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// [`operation::REQUEST`], [`operation::REPLY`], or another.
    pub operation: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != crate::flowkey::ethertype::IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            operation: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into `buf` of exactly [`PACKET_LEN`] bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() != PACKET_LEN {
            return Err(Error::BufferLength);
        }
        let mut p = Packet::new_unchecked(buf);
        p.set_ethernet_ipv4();
        p.set_operation(self.operation);
        p.set_sender_mac(self.sender_mac);
        p.set_sender_ip(self.sender_ip);
        p.set_target_mac(self.target_mac);
        p.set_target_ip(self.target_ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 10.0.0.2? Tell 10.0.0.1.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
        0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 1, // sender
        0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // target
    ];

    fn repr() -> Repr {
        Repr {
            operation: operation::REQUEST,
            sender_mac: [0x02, 0, 0, 0, 0, 0x01],
            sender_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        }
    }

    #[test]
    fn parse_and_emit_fixture() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        let mut b = [0xeeu8; 28];
        repr().emit(&mut b).unwrap();
        assert_eq!(b, REQUEST);
    }

    #[test]
    fn refuses_other_formats_and_lengths() {
        let mut other = REQUEST;
        other[1] = 6; // IEEE 802 hardware
        let p = Packet::new_checked(&other[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Unsupported));
        assert_eq!(Packet::new_checked(&REQUEST[..27]), Err(Error::Truncated));
        assert_eq!(repr().emit(&mut [0u8; 29]), Err(Error::BufferLength));
    }
}
