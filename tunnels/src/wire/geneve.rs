//! Geneve headers (RFC 8926 section 3): 8 bytes after a UDP header to port 6081, then up to
//! 252 bytes of options (type-length-value), then the payload of the protocol type the header
//! names (0x6558, an Ethernet frame, is what vecswitch carries).
//!
//! ```text
//!  0                   1                   2                   3
//! |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//! |        Virtual Network Identifier (VNI)       |    Reserved   |
//! |                    Variable-Length Options                    |
//! ```
//!
//! Each option:
//!
//! ```text
//! |          Option Class         |      Type     |R|R|R| Length  |
//! |                 Variable-Length Option Data                   |
//! ```
//!
//! The top bit of the type marks an option critical: a receiver that does not know it must
//! drop the packet. The C bit of the header says that some option is critical.

use super::{read_u16, read_u24, read_u8, slice, slice_mut, write_bytes, write_u16, write_u24};
use super::{write_u8, Error, Result, MAX_VNI};

/// The IANA port of Geneve.
pub const UDP_PORT: u16 = 6081;
/// Protocol type of an Ethernet payload (transparent Ethernet bridging).
pub const PROTOCOL_ETHERNET: u16 = 0x6558;
/// The only version defined.
pub const VERSION: u8 = 0;

/// Byte ranges of the Geneve header.
pub mod field {
    use crate::wire::Field;
    /// Version (2 high bits) and options length in 4-byte words (6 low bits).
    pub const VER_OPT_LEN: usize = 0;
    /// O (0x80), C (0x40) and 6 reserved bits.
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Field = 2..4;
    pub const VNI: Field = 4..7;
    pub const RESERVED: usize = 7;
    pub const OPTIONS: usize = 8;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// Most option bytes: 63 words.
pub const MAX_OPTIONS_LEN: usize = 63 * 4;
/// The O bit: an OAM (control) packet, not tenant data.
pub const FLAG_OAM: u8 = 0x80;
/// The C bit: an option is critical.
pub const FLAG_CRITICAL: u8 = 0x40;
/// The bit of an option's type that marks it critical.
pub const OPTION_TYPE_CRITICAL: u8 = 0x80;
/// Length of an option's header (class, type, length).
pub const OPTION_HEADER_LEN: usize = 4;
/// Most data bytes of one option: 31 words.
pub const MAX_OPTION_DATA_LEN: usize = 31 * 4;

/// A view of a Geneve header, its options and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks: accessors past the end read 0.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view of a buffer that holds the 8-byte header and the options its length gives.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_OPT_LEN) >> 6
    }

    /// Bytes of options (the 6-bit field in words, times 4).
    pub fn options_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::VER_OPT_LEN) & 0x3f) * 4
    }

    /// Header bytes, options included: where the payload starts.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// The O bit.
    pub fn oam(&self) -> bool {
        read_u8(self.buffer.as_ref(), field::FLAGS) & FLAG_OAM != 0
    }

    /// The C bit.
    pub fn critical(&self) -> bool {
        read_u8(self.buffer.as_ref(), field::FLAGS) & FLAG_CRITICAL != 0
    }

    pub fn protocol(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PROTOCOL.start)
    }

    pub fn vni(&self) -> u32 {
        read_u24(self.buffer.as_ref(), field::VNI.start)
    }

    /// The options area as bytes.
    pub fn options(&self) -> &[u8] {
        slice(self.buffer.as_ref(), field::OPTIONS, self.header_len())
    }

    /// The payload after the options.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        slice(b, self.header_len(), b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version and the options length (bytes, a multiple of 4 up to 252; more is
    /// cut to 63 words).
    pub fn set_version_and_options_len(&mut self, version: u8, options_len: usize) {
        let words = (options_len / 4).min(63) as u8;
        write_u8(
            self.buffer.as_mut(),
            field::VER_OPT_LEN,
            version << 6 | words,
        );
    }

    /// Sets the O and C bits; the reserved bits become zero.
    pub fn set_flags(&mut self, oam: bool, critical: bool) {
        let f = if oam { FLAG_OAM } else { 0 } | if critical { FLAG_CRITICAL } else { 0 };
        write_u8(self.buffer.as_mut(), field::FLAGS, f);
    }

    pub fn set_protocol(&mut self, protocol: u16) {
        write_u16(self.buffer.as_mut(), field::PROTOCOL.start, protocol);
    }

    /// Sets the low 24 bits of `vni` and zeroes the reserved byte after it.
    pub fn set_vni(&mut self, vni: u32) {
        write_u24(self.buffer.as_mut(), field::VNI.start, vni);
        write_u8(self.buffer.as_mut(), field::RESERVED, 0);
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        slice_mut(self.buffer.as_mut(), field::OPTIONS, hl)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let len = b.len();
        slice_mut(b, hl, len)
    }
}

/// One option TLV, borrowed from the options area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    pub class: u16,
    /// The whole type byte, [`OPTION_TYPE_CRITICAL`] included.
    pub option_type: u8,
    /// The data, a multiple of 4 bytes (up to 124).
    pub data: &'a [u8],
}

impl GeneveOption<'_> {
    pub const fn is_critical(&self) -> bool {
        self.option_type & OPTION_TYPE_CRITICAL != 0
    }

    /// Bytes on the wire: header and data.
    pub const fn wire_len(&self) -> usize {
        OPTION_HEADER_LEN + self.data.len()
    }
}

/// The options of an options area, in order. An option whose header or data runs past the
/// area gives one `Err(Error::Malformed)`, after which the iterator ends; any bytes give
/// options or that error, never a panic.
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    pub const fn new(options: &'a [u8]) -> OptionIter<'a> {
        OptionIter { rest: options }
    }

    /// Whether every option is well formed.
    pub fn well_formed(options: &[u8]) -> bool {
        OptionIter::new(options).all(|o| o.is_ok())
    }

    /// Whether some option is marked critical (the rest of the area is not read after a
    /// malformed option).
    pub fn any_critical(options: &[u8]) -> bool {
        OptionIter::new(options).any(|o| matches!(o, Ok(o) if o.is_critical()))
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<GeneveOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = self.rest.split_first_chunk::<OPTION_HEADER_LEN>().and_then(
            |(&[c0, c1, option_type, len], after)| {
                let data_len = usize::from(len & 0x1f) * 4;
                let (data, rest) = after.split_at_checked(data_len)?;
                let class = u16::from_be_bytes([c0, c1]);
                Some((
                    GeneveOption {
                        class,
                        option_type,
                        data,
                    },
                    rest,
                ))
            },
        );
        match parsed {
            Some((option, rest)) => {
                self.rest = rest;
                Some(Ok(option))
            }
            None => {
                self.rest = &[];
                Some(Err(Error::Malformed))
            }
        }
    }
}

impl std::iter::FusedIterator for OptionIter<'_> {}

/// The values of a Geneve header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    /// 24 bits.
    pub vni: u32,
    /// The O bit.
    pub oam: bool,
    /// The C bit.
    pub critical: bool,
    /// [`PROTOCOL_ETHERNET`] for what vecswitch carries.
    pub protocol: u16,
    /// The option TLVs as on the wire: a multiple of 4 bytes, at most 252.
    pub options: &'a [u8],
}

impl<'a> Repr<'a> {
    /// A header for an Ethernet payload in `vni`, without options or flags.
    pub const fn new(vni: u32) -> Repr<'static> {
        Repr {
            vni,
            oam: false,
            critical: false,
            protocol: PROTOCOL_ETHERNET,
            options: &[],
        }
    }

    /// Reads a checked header: version 0 ([`Error::Unsupported`] otherwise) and well-formed
    /// options ([`Error::Malformed`] otherwise). Any protocol type is read; the reserved bits
    /// are ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(Error::Unsupported);
        }
        let bytes: &'a [u8] = T::as_ref(packet.buffer);
        let options = slice(bytes, field::OPTIONS, packet.header_len());
        if !OptionIter::well_formed(options) {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            vni: packet.vni(),
            oam: packet.oam(),
            critical: packet.critical(),
            protocol: packet.protocol(),
            options,
        })
    }

    /// Header bytes, options included.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Writes the header and options into the first [`Repr::header_len`] bytes of `buf` (the
    /// payload after them is left as it is). Options longer than 252 bytes are
    /// [`Error::TooLong`]; not a multiple of 4, or not well-formed TLVs, or a VNI past 24
    /// bits, [`Error::Malformed`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if self.options.len() > MAX_OPTIONS_LEN {
            return Err(Error::TooLong);
        }
        if self.vni > MAX_VNI
            || !self.options.len().is_multiple_of(4)
            || !OptionIter::well_formed(self.options)
        {
            return Err(Error::Malformed);
        }
        if buf.len() < self.header_len() {
            return Err(Error::BufferLength);
        }
        let mut p = Packet::new_unchecked(buf);
        p.set_version_and_options_len(VERSION, self.options.len());
        p.set_flags(self.oam, self.critical);
        p.set_protocol(self.protocol);
        p.set_vni(self.vni);
        write_bytes(p.options_mut(), 0, self.options);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by scapy 2.5 (`tunnels/fixtures/scapy_fixtures.py`):
    /// `raw(GENEVE(vni=0xabcdef, proto=0x6558, critical=1, options=[
    ///     GeneveOptions(classid=0x0102, type=0x83, data=b"\x01\x02\x03\x04"),
    ///     GeneveOptions(classid=0xffff, type=0x05, data=b"")]))`.
    const GENEVE_HEADER: [u8; 20] = [
        0x03, 0x40, 0x65, 0x58, 0xab, 0xcd, 0xef, 0x00, 0x01, 0x02, 0x83, 0x01, 0x01, 0x02, 0x03,
        0x04, 0xff, 0xff, 0x05, 0x00,
    ];

    fn repr() -> Repr<'static> {
        Repr {
            critical: true,
            options: &GENEVE_HEADER[8..],
            ..Repr::new(0xab_cdef)
        }
    }

    #[test]
    fn parse_and_emit_the_scapy_fixture() {
        let p = Packet::new_checked(&GENEVE_HEADER[..]).unwrap();
        assert_eq!((p.version(), p.options_len(), p.header_len()), (0, 12, 20));
        assert_eq!(Repr::parse(&p), Ok(repr()));
        let opts: Vec<_> = OptionIter::new(p.options()).collect();
        assert_eq!(
            opts,
            [
                Ok(GeneveOption {
                    class: 0x0102,
                    option_type: 0x83,
                    data: &[1, 2, 3, 4]
                }),
                Ok(GeneveOption {
                    class: 0xffff,
                    option_type: 5,
                    data: &[]
                }),
            ]
        );
        assert!(opts[0].unwrap().is_critical() && !opts[1].unwrap().is_critical());
        assert!(OptionIter::any_critical(p.options()));
        let mut b = [0xeeu8; 22];
        repr().emit(&mut b).unwrap();
        assert_eq!(&b[..20], &GENEVE_HEADER);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().payload(),
            &[0xee, 0xee]
        );
    }

    #[test]
    fn an_option_running_past_the_area_is_reported_once() {
        // One word of options: a header that claims 1 data word more.
        let area = [0x01, 0x02, 0x03, 0x01];
        let got: Vec<_> = OptionIter::new(&area).collect();
        assert_eq!(got, [Err(Error::Malformed)]);
        // A good option, then 2 stray bytes.
        let area = [0, 1, 2, 0, 9, 9];
        let got: Vec<_> = OptionIter::new(&area).map(|o| o.map(|o| o.class)).collect();
        assert_eq!(got, [Ok(1), Err(Error::Malformed)]);
        assert!(!OptionIter::well_formed(&area));
        assert!(OptionIter::new(&[]).next().is_none());
        // The largest option: 31 data words.
        let mut big = vec![0u8; 4 + MAX_OPTION_DATA_LEN];
        big[3] = 0xff; // the 3 reserved bits set too, ignored
        let o = OptionIter::new(&big).next().unwrap().unwrap();
        assert_eq!(o.wire_len(), 128);
    }

    #[test]
    fn every_short_area_gives_options_or_one_error() {
        // Every area of up to 12 bytes drawn from a few interesting byte values.
        let values = [0u8, 1, 0x1f, 0x80, 0xff];
        let mut area = [0u8; 12];
        for n in 0..=area.len() {
            for seed in 0..500usize {
                for (i, b) in area.iter_mut().enumerate() {
                    *b = values[(seed / (i + 1) + i * seed) % values.len()];
                }
                let items: Vec<_> = OptionIter::new(&area[..n]).collect();
                let errors = items.iter().filter(|o| o.is_err()).count();
                assert!(errors <= 1 && items.last().is_none_or(|l| l.is_ok() || errors == 1));
                let read: usize = items.iter().flatten().map(|o| o.wire_len()).sum();
                assert!(read <= n);
                assert_eq!(errors == 0, read == n);
            }
        }
    }

    #[test]
    fn refuses_bad_headers() {
        let p = Packet::new_checked(&GENEVE_HEADER[..19]);
        assert_eq!(p, Err(Error::Truncated));
        assert_eq!(
            Packet::new_checked(&GENEVE_HEADER[..7]),
            Err(Error::Truncated)
        );
        let mut b = GENEVE_HEADER;
        b[0] |= 0x40;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Unsupported));
        let mut b = GENEVE_HEADER;
        b[15] = 0x1f; // first option claims 31 words
        b[11] = 0x05;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Malformed));

        let long = [0u8; MAX_OPTIONS_LEN + 4];
        let r = Repr {
            options: &long,
            ..repr()
        };
        assert_eq!(r.emit(&mut [0; 300]), Err(Error::TooLong));
        let r = Repr {
            options: &[0, 0, 0],
            ..repr()
        };
        assert_eq!(r.emit(&mut [0; 300]), Err(Error::Malformed));
        let r = Repr {
            options: &[0, 0, 0, 1],
            ..repr()
        };
        assert_eq!(r.emit(&mut [0; 300]), Err(Error::Malformed));
        let r = Repr {
            vni: 1 << 24,
            ..repr()
        };
        assert_eq!(r.emit(&mut [0; 300]), Err(Error::Malformed));
        assert_eq!(repr().emit(&mut [0; 19]), Err(Error::BufferLength));
    }

    #[test]
    fn the_largest_options_area_round_trips() {
        // 63 words: one option of 31 data words, one of 30.
        let mut opts = vec![0u8; MAX_OPTIONS_LEN];
        opts[2..4].copy_from_slice(&[0x01, 31]);
        opts[128..132].copy_from_slice(&[0xab, 0xcd, 0x82, 30]);
        let r = Repr {
            oam: true,
            options: &opts,
            ..Repr::new(7)
        };
        let mut b = vec![0u8; r.header_len()];
        r.emit(&mut b).unwrap();
        assert_eq!(b[0], 63);
        assert_eq!(b[1], FLAG_OAM);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(r));
        assert_eq!(OptionIter::new(p.options()).count(), 2);
    }
}
