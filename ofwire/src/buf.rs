//! Big-endian readers and writers over byte slices. A short read is an [`OfpError`] with the
//! code the caller names (a message body, a match and an action list each have their own
//! "bad length" code), never a panic.

use crate::error::{ErrorCode, OfpError};

/// Reads big-endian fields off the front of a slice.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// The code a short read gives.
    short: ErrorCode,
    field: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], short: ErrorCode, field: &'static str) -> Reader<'a> {
        Reader { buf, short, field }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfpError> {
        if n > self.buf.len() {
            return Err(OfpError::new(self.short, self.field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.buf;
        self.buf = &[];
        r
    }

    pub fn skip(&mut self, n: usize) -> Result<(), OfpError> {
        self.bytes(n).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], OfpError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, OfpError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, OfpError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, OfpError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, OfpError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A NUL-padded string of `n` bytes (up to the first NUL). Not UTF-8: every byte above
    /// 0x7f becomes `?`, so that the string is as long as its bytes and encodes back to as
    /// many.
    pub fn string(&mut self, n: usize) -> Result<String, OfpError> {
        let b = self.bytes(n)?;
        let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
        let b = &b[..end];
        Ok(match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => b
                .iter()
                .map(|c| if c.is_ascii() { char::from(*c) } else { '?' })
                .collect(),
        })
    }
}

/// Appends big-endian fields.
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
    /// `s` in a NUL-padded field of `n` bytes (cut at a character boundary to fit).
    fn put_string(&mut self, s: &str, n: usize);
    /// Zeros up to the next multiple of 8 from `start`.
    fn pad8_from(&mut self, start: usize);
    /// Writes `v` as a big-endian u16 at `at` (a length filled in afterwards).
    fn set_u16(&mut self, at: usize, v: u16);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn put_string(&mut self, s: &str, n: usize) {
        let mut k = s.len().min(n);
        while !s.is_char_boundary(k) {
            k -= 1;
        }
        self.extend_from_slice(&s.as_bytes()[..k]);
        self.put_zeros(n - k);
    }
    fn pad8_from(&mut self, start: usize) {
        let used = self.len() - start;
        self.put_zeros((8 - used % 8) % 8);
    }
    fn set_u16(&mut self, at: usize, v: u16) {
        if let Some(s) = self.get_mut(at..at + 2) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }
}
