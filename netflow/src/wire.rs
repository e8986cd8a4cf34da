//! The NetFlow v5 datagram: a 24-byte header and up to 30 records of 48 bytes, all fields
//! big-endian (Cisco's format, Open vSwitch's `lib/netflow.h`). `emit` writes a
//! representation into bytes; `parse` reads it back (tests, `show-netflow` decoding, the
//! replay's datagram dumps).

/// The only version written.
pub const VERSION: u16 = 5;
/// Header length.
pub const HEADER_LEN: usize = 24;
/// Record length.
pub const RECORD_LEN: usize = 48;
/// Most records in one datagram.
pub const MAX_RECORDS: usize = 30;

/// Why bytes are not a NetFlow v5 datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the header, or than the records the header counts.
    Truncated,
    /// A version other than 5.
    Version(u16),
    /// More than [`MAX_RECORDS`] records.
    TooManyRecords(u16),
}

/// The datagram header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub count: u16,
    /// Milliseconds since the exporter was created.
    pub sysuptime: u32,
    pub unix_secs: u32,
    pub unix_nsecs: u32,
    pub flow_sequence: u32,
    pub engine_type: u8,
    pub engine_id: u8,
    pub sampling_interval: u16,
}

/// One flow record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub src_addr: u32,
    pub dst_addr: u32,
    pub nexthop: u32,
    pub input: u16,
    pub output: u16,
    pub packets: u32,
    pub octets: u32,
    /// sysuptime of the first packet.
    pub first: u32,
    /// sysuptime of the last packet.
    pub last: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub proto: u8,
    pub tos: u8,
    pub src_as: u16,
    pub dst_as: u16,
    pub src_mask: u8,
    pub dst_mask: u8,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Appends the header to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.sysuptime.to_be_bytes());
        out.extend_from_slice(&self.unix_secs.to_be_bytes());
        out.extend_from_slice(&self.unix_nsecs.to_be_bytes());
        out.extend_from_slice(&self.flow_sequence.to_be_bytes());
        out.push(self.engine_type);
        out.push(self.engine_id);
        out.extend_from_slice(&self.sampling_interval.to_be_bytes());
    }

    /// Reads the header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Header, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let version = be16(b, 0);
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        Ok(Header {
            count: be16(b, 2),
            sysuptime: be32(b, 4),
            unix_secs: be32(b, 8),
            unix_nsecs: be32(b, 12),
            flow_sequence: be32(b, 16),
            engine_type: b[20],
            engine_id: b[21],
            sampling_interval: be16(b, 22),
        })
    }
}

impl Record {
    /// Appends the record to `out` (pads, nexthop, AS and mask fields as given: zero from
    /// the exporter).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.src_addr.to_be_bytes());
        out.extend_from_slice(&self.dst_addr.to_be_bytes());
        out.extend_from_slice(&self.nexthop.to_be_bytes());
        out.extend_from_slice(&self.input.to_be_bytes());
        out.extend_from_slice(&self.output.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.octets.to_be_bytes());
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.push(0);
        out.push(self.tcp_flags);
        out.push(self.proto);
        out.push(self.tos);
        out.extend_from_slice(&self.src_as.to_be_bytes());
        out.extend_from_slice(&self.dst_as.to_be_bytes());
        out.push(self.src_mask);
        out.push(self.dst_mask);
        out.extend_from_slice(&[0, 0]);
    }

    /// Reads the record at the start of `b` (at least [`RECORD_LEN`] bytes).
    pub fn parse(b: &[u8]) -> Result<Record, WireError> {
        if b.len() < RECORD_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Record {
            src_addr: be32(b, 0),
            dst_addr: be32(b, 4),
            nexthop: be32(b, 8),
            input: be16(b, 12),
            output: be16(b, 14),
            packets: be32(b, 16),
            octets: be32(b, 20),
            first: be32(b, 24),
            last: be32(b, 28),
            src_port: be16(b, 32),
            dst_port: be16(b, 34),
            tcp_flags: b[37],
            proto: b[38],
            tos: b[39],
            src_as: be16(b, 40),
            dst_as: be16(b, 42),
            src_mask: b[44],
            dst_mask: b[45],
        })
    }
}

/// Reads a whole datagram: its header and exactly the records it counts.
pub fn parse_datagram(b: &[u8]) -> Result<(Header, Vec<Record>), WireError> {
    let h = Header::parse(b)?;
    if h.count as usize > MAX_RECORDS {
        return Err(WireError::TooManyRecords(h.count));
    }
    let need = HEADER_LEN + h.count as usize * RECORD_LEN;
    if b.len() < need {
        return Err(WireError::Truncated);
    }
    let records = b[HEADER_LEN..need]
        .chunks_exact(RECORD_LEN)
        .map(Record::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((h, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram of one ICMP echo record, byte by byte.
    const FIXTURE: [u8; 72] = [
        0, 5, 0, 1, // version, count
        0, 0, 0x03, 0xe8, // sysuptime 1000
        0x5f, 0x5e, 0x10, 0x00, // unix_secs
        0, 0, 0, 7, // unix_nsecs
        0, 0, 0, 41, // flow_sequence
        2, 7, 0, 0, // engine type, id, sampling
        192, 168, 0, 1, 192, 168, 0, 2, 0, 0, 0, 0, // src, dst, nexthop
        0, 1, 0, 2, // input, output
        0, 0, 0, 3, 0, 0, 1, 38, // packets 3, octets 294
        0, 0, 0, 10, 0, 0, 0, 20, // first, last
        0, 0, 8, 0, // src port 0, dst port type 8 code 0
        0, 0, 1, 0xb8, // pad, tcp_flags, proto, tos
        0, 0, 0, 0, 0, 0, 0, 0, // AS, masks, pad
    ];

    fn fixture_repr() -> (Header, Record) {
        (
            Header {
                count: 1,
                sysuptime: 1000,
                unix_secs: 0x5f5e_1000,
                unix_nsecs: 7,
                flow_sequence: 41,
                engine_type: 2,
                engine_id: 7,
                sampling_interval: 0,
            },
            Record {
                src_addr: 0xc0a8_0001,
                dst_addr: 0xc0a8_0002,
                input: 1,
                output: 2,
                packets: 3,
                octets: 294,
                first: 10,
                last: 20,
                dst_port: 0x0800,
                proto: 1,
                tos: 0xb8,
                ..Record::default()
            },
        )
    }

    #[test]
    fn emit_matches_the_fixture_and_parses_back() {
        let (h, r) = fixture_repr();
        let mut out = Vec::new();
        h.emit(&mut out);
        r.emit(&mut out);
        assert_eq!(out.len(), HEADER_LEN + RECORD_LEN);
        assert_eq!(out, FIXTURE);
        assert_eq!(parse_datagram(&FIXTURE), Ok((h, vec![r])));
    }

    #[test]
    fn bad_datagrams_are_refused() {
        assert_eq!(parse_datagram(&FIXTURE[..20]), Err(WireError::Truncated));
        assert_eq!(parse_datagram(&FIXTURE[..60]), Err(WireError::Truncated));
        let mut v9 = FIXTURE;
        v9[1] = 9;
        assert_eq!(parse_datagram(&v9), Err(WireError::Version(9)));
        let mut many = FIXTURE;
        many[3] = 31;
        assert_eq!(parse_datagram(&many), Err(WireError::TooManyRecords(31)));
    }
}
