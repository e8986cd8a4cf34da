//! `ofp_header` and the framing of a byte stream into messages. The [`Framer`] takes bytes as
//! they arrive (any split) and yields one whole message at a time; a header whose length is
//! below 8 or above the framer's limit is an error (`OFPBRC_BAD_LEN`) after which the stream
//! cannot be re-synchronised, so the connection layer answers and closes.

use crate::buf::Reader;
use crate::error::{err, ErrorCode, OfpError};

/// Bytes of `ofp_header`.
pub const OFP_HEADER_LEN: usize = 8;
/// The largest message the 16-bit length allows.
pub const OFP_MAX_LEN: usize = 0xffff;

/// `ofp_header`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    /// Length of the whole message, header included.
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes; the length is checked against the 8-byte minimum.
    pub fn decode(b: &[u8]) -> Result<Header, OfpError> {
        let mut r = Reader::new(b, ErrorCode::BadRequestLen, "ofp_header");
        let h = Header {
            version: r.u8()?,
            msg_type: r.u8()?,
            length: r.u16()?,
            xid: r.u32()?,
        };
        if usize::from(h.length) < OFP_HEADER_LEN {
            return err(ErrorCode::BadRequestLen, "ofp_header.length");
        }
        Ok(h)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.push(self.msg_type);
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.xid.to_be_bytes());
    }
}

/// Consumed bytes the framer keeps before moving the rest to the front.
const COMPACT_AT: usize = 64 << 10;

/// What [`Framer::next_message`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message: its header and body (the bytes after the header).
    Message(Header, Vec<u8>),
    /// Not enough bytes yet.
    NeedMore,
}

/// Splits a byte stream into messages. Messages are taken from the front of the buffer by
/// moving a start offset; the buffer is compacted only when most of it is consumed, so a
/// burst of many small messages (100k FLOW_MODs from `ovs-ofctl --bundle`) costs linear
/// time, not a move of the whole rest per message.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start.
    start: usize,
    max_len: usize,
    /// Set by a bad header: the stream has lost its framing.
    broken: bool,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::new(OFP_MAX_LEN)
    }
}

impl Framer {
    /// A framer that refuses messages longer than `max_len` bytes (at most 65535).
    pub fn new(max_len: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            max_len: max_len.clamp(OFP_HEADER_LEN, OFP_MAX_LEN),
            broken: false,
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that are not yet a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// True when [`Framer::next_message`] has a whole message (or a bad header) to give,
    /// false when it would say `NeedMore`.
    pub fn has_message(&self) -> bool {
        let b = self.unread();
        if self.broken || b.len() < OFP_HEADER_LEN {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        len < OFP_HEADER_LEN || len > self.max_len || b.len() >= len
    }

    /// The next whole message, `NeedMore`, or the framing error (`OFPBRC_BAD_LEN`: a length
    /// under 8 or over the limit). After an error every call returns the same error.
    pub fn next_message(&mut self) -> Result<Frame, OfpError> {
        if self.broken {
            return err(ErrorCode::BadRequestLen, "ofp_header.length");
        }
        let b = self.unread();
        if b.len() < OFP_HEADER_LEN {
            return Ok(Frame::NeedMore);
        }
        let h = match Header::decode(b) {
            Ok(h) => h,
            Err(e) => {
                self.broken = true;
                self.buf.clear();
                self.start = 0;
                return Err(e);
            }
        };
        let len = usize::from(h.length);
        if len > self.max_len {
            self.broken = true;
            self.buf.clear();
            self.start = 0;
            return err(ErrorCode::BadRequestLen, "ofp_header.length");
        }
        if b.len() < len {
            return Ok(Frame::NeedMore);
        }
        let body = b[OFP_HEADER_LEN..len].to_vec();
        self.start += len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= COMPACT_AT && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Frame::Message(h, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_reads_need_more_then_yield() {
        let msg = [4u8, 2, 0, 12, 0, 0, 0, 7, 1, 2, 3, 4];
        let mut f = Framer::default();
        for b in &msg[..11] {
            f.push(&[*b]);
            assert_eq!(f.next_message(), Ok(Frame::NeedMore));
        }
        assert!(!f.has_message());
        f.push(&msg[11..]);
        assert!(f.has_message());
        f.push(&msg[..3]);
        let Ok(Frame::Message(h, body)) = f.next_message() else {
            unreachable!("whole message expected")
        };
        assert_eq!((h.version, h.msg_type, h.length, h.xid), (4, 2, 12, 7));
        assert_eq!(body, [1, 2, 3, 4]);
        assert_eq!(f.next_message(), Ok(Frame::NeedMore));
        assert_eq!(f.buffered(), 3);
    }

    #[test]
    fn a_long_burst_is_framed_in_order_across_compactions() {
        let mut f = Framer::default();
        let msg = |i: u32| {
            let mut m = vec![4u8, 2, 0, 12];
            m.extend_from_slice(&i.to_be_bytes());
            m.extend_from_slice(&(i * 3).to_be_bytes());
            m
        };
        let mut next = 0u32;
        let mut bytes = Vec::new();
        for i in 0..50_000 {
            bytes.extend(msg(i));
        }
        // Pushed in pieces that cut messages, taken as they complete.
        for piece in bytes.chunks(1000) {
            f.push(piece);
            while let Ok(Frame::Message(h, body)) = f.next_message() {
                assert_eq!(h.xid, next);
                assert_eq!(body, (next * 3).to_be_bytes());
                next += 1;
            }
        }
        assert_eq!(next, 50_000);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn short_and_oversized_lengths_are_bad_len() {
        let mut f = Framer::default();
        f.push(&[4, 0, 0, 7, 0, 0, 0, 0]);
        let e = f.next_message().err();
        assert_eq!(e.map(|e| e.code.type_code()), Some((1, 6)));
        // The stream stays broken.
        f.push(&[4, 0, 0, 8, 0, 0, 0, 0]);
        assert!(f.next_message().is_err());

        let mut f = Framer::new(100);
        f.push(&[4, 0, 0, 101, 0, 0, 0, 0]);
        assert_eq!(
            f.next_message().err().map(|e| e.code),
            Some(ErrorCode::BadRequestLen)
        );
    }
}
