//! ICMP for IPv4 (RFC 792): echo request and reply, and the error messages a switch or its
//! tests send (destination unreachable with the next-hop MTU of RFC 1191, time exceeded,
//! parameter problem). The checksum covers the whole message and no pseudo-header; an error's
//! payload is the invoking packet's IP header and at least 8 bytes of what follows it.

use super::{read_u16, read_u32, read_u8, slice, slice_mut, write_u16, write_u32, write_u8};
use super::{Error, Result};
use crate::checksum;

/// Byte ranges of the ICMP header.
pub mod field {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// The type-specific word: identifier and sequence of an echo, MTU of "fragmentation
    /// needed", pointer of a parameter problem.
    pub const REST: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const POINTER: usize = 4;
    pub const PAYLOAD: usize = 8;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// Message types.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination-unreachable code "fragmentation needed and DF set", the one that carries a
/// next-hop MTU.
pub const CODE_FRAG_NEEDED: u8 = 4;

/// A view of an ICMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds the 8-byte header; the message is the whole buffer.
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

    pub fn msg_type(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TYPE)
    }

    pub fn code(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::CODE)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The type-specific word after the checksum.
    pub fn rest(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST.start)
    }

    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    pub fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ.start)
    }

    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        slice(b, HEADER_LEN, b.len())
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, t: u8) {
        write_u8(self.buffer.as_mut(), field::TYPE, t);
    }

    pub fn set_code(&mut self, code: u8) {
        write_u8(self.buffer.as_mut(), field::CODE, code);
    }

    pub fn set_checksum(&mut self, csum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, csum);
    }

    pub fn set_rest(&mut self, rest: u32) {
        write_u32(self.buffer.as_mut(), field::REST.start, rest);
    }

    /// Computes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(csum);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        slice_mut(b, HEADER_LEN, len)
    }
}

/// The values of an ICMP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr {
    EchoRequest {
        ident: u16,
        seq: u16,
    },
    EchoReply {
        ident: u16,
        seq: u16,
    },
    /// `next_hop_mtu` is sent with code [`CODE_FRAG_NEEDED`] (0 otherwise).
    DstUnreachable {
        code: u8,
        next_hop_mtu: u16,
    },
    TimeExceeded {
        code: u8,
    },
    /// `pointer`: the byte of the invoking header at fault.
    ParamProblem {
        code: u8,
        pointer: u8,
    },
    /// Any other type, with its type-specific word as it is.
    Other {
        msg_type: u8,
        code: u8,
        rest: u32,
    },
}

impl Repr {
    /// Reads a message (the whole buffer) whose checksum verifies.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let (code, rest) = (packet.code(), packet.rest());
        Ok(match packet.msg_type() {
            msg_type::ECHO_REQUEST if code == 0 => Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq: packet.echo_seq(),
            },
            msg_type::ECHO_REPLY if code == 0 => Repr::EchoReply {
                ident: packet.echo_ident(),
                seq: packet.echo_seq(),
            },
            msg_type::DST_UNREACHABLE => Repr::DstUnreachable {
                code,
                next_hop_mtu: if code == CODE_FRAG_NEEDED {
                    rest as u16
                } else {
                    0
                },
            },
            msg_type::TIME_EXCEEDED => Repr::TimeExceeded { code },
            msg_type::PARAM_PROBLEM => Repr::ParamProblem {
                code,
                pointer: (rest >> 24) as u8,
            },
            msg_type => Repr::Other {
                msg_type,
                code,
                rest,
            },
        })
    }

    /// Type, code and the type-specific word.
    fn header_words(&self) -> (u8, u8, u32) {
        let echo = |ident: u16, seq: u16| u32::from(ident) << 16 | u32::from(seq);
        match *self {
            Repr::EchoRequest { ident, seq } => (msg_type::ECHO_REQUEST, 0, echo(ident, seq)),
            Repr::EchoReply { ident, seq } => (msg_type::ECHO_REPLY, 0, echo(ident, seq)),
            Repr::DstUnreachable { code, next_hop_mtu } => (
                msg_type::DST_UNREACHABLE,
                code,
                if code == CODE_FRAG_NEEDED {
                    u32::from(next_hop_mtu)
                } else {
                    0
                },
            ),
            Repr::TimeExceeded { code } => (msg_type::TIME_EXCEEDED, code, 0),
            Repr::ParamProblem { code, pointer } => {
                (msg_type::PARAM_PROBLEM, code, u32::from(pointer) << 24)
            }
            Repr::Other {
                msg_type,
                code,
                rest,
            } => (msg_type, code, rest),
        }
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header and payload bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header into `buf`, the header followed by the payload (already there), with
    /// the checksum over the whole message.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferLength);
        }
        if buf.len() > usize::from(u16::MAX) {
            return Err(Error::TooLong);
        }
        let (t, code, rest) = self.header_words();
        let mut p = Packet::new_unchecked(buf);
        p.set_msg_type(t);
        p.set_code(code);
        p.set_rest(rest);
        p.fill_checksum();
        Ok(())
    }
}

/// What an error message quotes of the packet `ip` (an IPv4 packet) that caused it: its
/// header and the first 8 bytes after it (RFC 792), or all of it when shorter.
pub fn quote(ip: &[u8]) -> &[u8] {
    let hl = usize::from(read_u8(ip, 0) & 0x0f) * 4;
    slice(ip, 0, (hl + 8).min(ip.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echo request, identifier 1024, sequence 0, payload 0..18: the ICMP part of
    /// `datapath::traffic`'s default ICMP frame; checksum summed by hand.
    fn echo() -> Vec<u8> {
        let mut m = vec![8, 0, 0, 0, 0x04, 0x00, 0, 0];
        m.extend(0..18u8);
        // Words: 0800 0400 0001 0203 ... 1011: 0x0800 + 0x0400 + sum(0x0001 + 0x0203 + ...).
        let words: u32 =
            0x0800 + 0x0400 + (0..9u32).map(|i| (2 * i) << 8 | (2 * i + 1)).sum::<u32>();
        let folded = (words & 0xffff) + (words >> 16);
        m[2..4].copy_from_slice(&(!(folded as u16)).to_be_bytes());
        m
    }

    #[test]
    fn emit_and_parse_echo_fixture() {
        let want = echo();
        let mut b = vec![0u8; 26];
        b[8..].copy_from_slice(&want[8..]);
        let r = Repr::EchoRequest {
            ident: 1024,
            seq: 0,
        };
        r.emit(&mut b).unwrap();
        assert_eq!(b, want);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn errors_round_trip_with_their_words() {
        for (r, rest) in [
            (
                Repr::DstUnreachable {
                    code: CODE_FRAG_NEEDED,
                    next_hop_mtu: 1400,
                },
                [0, 0, 0x05, 0x78],
            ),
            (Repr::TimeExceeded { code: 0 }, [0; 4]),
            (
                Repr::ParamProblem {
                    code: 0,
                    pointer: 9,
                },
                [9, 0, 0, 0],
            ),
            (
                Repr::Other {
                    msg_type: 13,
                    code: 0,
                    rest: 0x0102_0304,
                },
                [1, 2, 3, 4],
            ),
        ] {
            let mut b = [0u8; 36];
            r.emit(&mut b).unwrap();
            assert_eq!(&b[4..8], &rest, "{r:?}");
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(Repr::parse(&p).unwrap(), r);
        }
    }

    #[test]
    fn refuses_bad_messages_and_quotes_header_and_8_bytes() {
        let mut b = echo();
        b[20] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Checksum));
        assert_eq!(Packet::new_checked(&b[..7]), Err(Error::Truncated));
        let r = Repr::TimeExceeded { code: 0 };
        assert_eq!(r.emit(&mut [0u8; 7]), Err(Error::BufferLength));
        let mut ip = vec![0x46u8];
        ip.resize(100, 0);
        assert_eq!(quote(&ip).len(), 32);
        assert_eq!(quote(&ip[..30]).len(), 30);
    }
}
