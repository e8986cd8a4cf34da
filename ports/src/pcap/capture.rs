//! Reading capture files: classic pcap (either byte order, microsecond or nanosecond
//! timestamps) and pcapng (every section, in either byte order; enhanced, simple and obsolete
//! packet blocks; each interface's timestamp resolution and offset), Ethernet only.
//!
//! Written here rather than with `pcap-file`, which refuses what tshark reads (a record longer
//! than the file's snap length, a microsecond field of 10^6 or more), does not read pcapng
//! files through the same call, and does not say where a file is broken. An error here names
//! the file and, for a broken record or block, its number (counted from 1) and what is wrong.
//! Frames come back in the file's order, whatever their timestamps.

use std::fmt;
use std::path::{Path, PathBuf};

/// One captured frame: its timestamp (ns since the Unix epoch) and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ts_ns: u64,
    pub data: Vec<u8>,
}

/// Ethernet's link type (LINKTYPE_ETHERNET).
const LINKTYPE_ETHERNET: u32 = 1;
/// The longest record tshark reads for Ethernet (`WTAP_MAX_PACKET_SIZE_STANDARD`).
pub const MAX_RECORD: usize = 262_144;

/// What is wrong with a capture file.
#[derive(Debug)]
pub enum CaptureError {
    /// The file could not be read.
    Open(PathBuf, std::io::Error),
    /// The file is not a pcap or pcapng capture (or is too short to tell).
    NotACapture(PathBuf),
    /// A link type other than Ethernet: of the file (pcap) or of interface `interface`
    /// (pcapng).
    LinkType {
        path: PathBuf,
        linktype: u32,
        interface: Option<u32>,
    },
    /// Record (pcap) or block (pcapng) `index` (from 1; 0 is the file header) is broken.
    Broken {
        path: PathBuf,
        unit: &'static str,
        index: usize,
        what: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Open(p, e) => write!(f, "{}: cannot read: {e}", p.display()),
            CaptureError::NotACapture(p) => {
                write!(
                    f,
                    "{}: not a capture file (neither pcap nor pcapng)",
                    p.display()
                )
            }
            CaptureError::LinkType {
                path,
                linktype,
                interface,
            } => {
                write!(f, "{}: ", path.display())?;
                if let Some(i) = interface {
                    write!(f, "interface {i}: ")?;
                }
                write!(
                    f,
                    "link type {linktype} ({}) is not Ethernet (1)",
                    linktype_name(*linktype)
                )
            }
            CaptureError::Broken {
                path,
                unit,
                index,
                what,
            } => {
                if *index == 0 {
                    write!(f, "{}: file header: {what}", path.display())
                } else {
                    write!(f, "{}: {unit} {index}: {what}", path.display())
                }
            }
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Open(_, e) => Some(e),
            _ => None,
        }
    }
}

fn linktype_name(t: u32) -> &'static str {
    match t {
        0 => "BSD loopback",
        101 => "raw IP",
        105 => "IEEE 802.11",
        113 => "Linux cooked",
        127 => "802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux cooked v2",
        _ => "unknown",
    }
}

/// Every frame of the capture at `path`, in file order.
pub fn read_capture(path: &Path) -> Result<Vec<Frame>, CaptureError> {
    let bytes = std::fs::read(path).map_err(|e| CaptureError::Open(path.to_path_buf(), e))?;
    parse_capture(&bytes).map_err(|e| e.at(path))
}

/// A [`CaptureError`] before the path is known.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    NotACapture,
    LinkType {
        linktype: u32,
        interface: Option<u32>,
    },
    Broken {
        unit: &'static str,
        index: usize,
        what: String,
    },
}

impl ParseError {
    fn at(self, path: &Path) -> CaptureError {
        let path = path.to_path_buf();
        match self {
            ParseError::NotACapture => CaptureError::NotACapture(path),
            ParseError::LinkType {
                linktype,
                interface,
            } => CaptureError::LinkType {
                path,
                linktype,
                interface,
            },
            ParseError::Broken { unit, index, what } => CaptureError::Broken {
                path,
                unit,
                index,
                what,
            },
        }
    }
}

/// Every frame of the capture `bytes` (pcap or pcapng), in file order.
pub fn parse_capture(bytes: &[u8]) -> Result<Vec<Frame>, ParseError> {
    let magic = bytes.first_chunk::<4>().ok_or(ParseError::NotACapture)?;
    match u32::from_le_bytes(*magic) {
        0x0a0d_0d0a => parse_pcapng(bytes),
        0xa1b2_c3d4 => parse_pcap(bytes, Order::Little, 1_000),
        0xd4c3_b2a1 => parse_pcap(bytes, Order::Big, 1_000),
        0xa1b2_3c4d => parse_pcap(bytes, Order::Little, 1),
        0x4d3c_b2a1 => parse_pcap(bytes, Order::Big, 1),
        _ => Err(ParseError::NotACapture),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Order {
    Little,
    Big,
}

/// A bounds-checked reader of one byte order.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    b: &'a [u8],
    order: Order,
}

impl<'a> Bytes<'a> {
    fn u16(&self, at: usize) -> Option<u16> {
        let x = *self.b.get(at..)?.first_chunk::<2>()?;
        Some(match self.order {
            Order::Little => u16::from_le_bytes(x),
            Order::Big => u16::from_be_bytes(x),
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let x = *self.b.get(at..)?.first_chunk::<4>()?;
        Some(match self.order {
            Order::Little => u32::from_le_bytes(x),
            Order::Big => u32::from_be_bytes(x),
        })
    }

    fn u64(&self, at: usize) -> Option<u64> {
        let x = *self.b.get(at..)?.first_chunk::<8>()?;
        Some(match self.order {
            Order::Little => u64::from_le_bytes(x),
            Order::Big => u64::from_be_bytes(x),
        })
    }

    fn slice(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        self.b.get(at..at.checked_add(len)?)
    }
}

fn broken(unit: &'static str, index: usize, what: impl Into<String>) -> ParseError {
    ParseError::Broken {
        unit,
        index,
        what: what.into(),
    }
}

/// Classic pcap; `frac_ns` is what one unit of the fraction field is worth (1000 for
/// microseconds). A fraction of a second or more is taken as it is, as tshark does.
fn parse_pcap(bytes: &[u8], order: Order, frac_ns: u64) -> Result<Vec<Frame>, ParseError> {
    let r = Bytes { b: bytes, order };
    let header_err = || broken("record", 0, "shorter than the 24 bytes of a pcap header");
    let network = r.u32(20).ok_or_else(header_err)?;
    // The top bits may carry FCS information; the link type is the low 28.
    let linktype = network & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(ParseError::LinkType {
            linktype,
            interface: None,
        });
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let n = frames.len() + 1;
        let left = bytes.len() - at;
        if left < 16 {
            return Err(broken(
                "record",
                n,
                format!("truncated: {left} of the 16 header bytes"),
            ));
        }
        let (sec, frac) = (r.u32(at).unwrap_or(0), r.u32(at + 4).unwrap_or(0));
        let caplen = r.u32(at + 8).unwrap_or(0) as usize;
        if caplen > MAX_RECORD {
            return Err(broken(
                "record",
                n,
                format!("captured length {caplen} is over {MAX_RECORD}"),
            ));
        }
        let data = r.slice(at + 16, caplen).ok_or_else(|| {
            broken(
                "record",
                n,
                format!("truncated: {} of its {caplen} bytes", left - 16),
            )
        })?;
        frames.push(Frame {
            ts_ns: u64::from(sec) * 1_000_000_000 + u64::from(frac) * frac_ns,
            data: data.to_vec(),
        });
        at += 16 + caplen;
    }
    Ok(frames)
}

/// One pcapng interface: what its packets need.
#[derive(Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OBSOLETE_PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

fn parse_pcapng(bytes: &[u8]) -> Result<Vec<Frame>, ParseError> {
    let mut frames = Vec::new();
    let mut order = Order::Little;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut last_ts = 0u64;
    let mut at = 0;
    let mut index = 0;
    while at < bytes.len() {
        index += 1;
        let left = bytes.len() - at;
        if left < 12 {
            return Err(broken(
                "block",
                index,
                format!("truncated: {left} of at least 12 bytes"),
            ));
        }
        let block_type = u32::from_le_bytes(*bytes[at..].first_chunk::<4>().unwrap_or(&[0; 4]));
        if block_type == SHB {
            // A new section: its own byte order and interfaces.
            let bom = Bytes {
                b: bytes,
                order: Order::Little,
            }
            .u32(at + 8)
            .unwrap_or(0);
            order = match bom {
                BYTE_ORDER_MAGIC => Order::Little,
                x if x == BYTE_ORDER_MAGIC.swap_bytes() => Order::Big,
                _ => {
                    return Err(broken(
                        "block",
                        index,
                        format!("section header with byte-order magic {bom:#010x}"),
                    ))
                }
            };
            interfaces.clear();
        }
        let r = Bytes { b: bytes, order };
        let block_type = r.u32(at).unwrap_or(0);
        let len = r.u32(at + 4).unwrap_or(0) as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err(broken(
                "block",
                index,
                format!("block length {len} is not a multiple of 4 of at least 12"),
            ));
        }
        if len > left {
            return Err(broken(
                "block",
                index,
                format!("truncated: {left} of its {len} bytes"),
            ));
        }
        if r.u32(at + len - 4) != Some(len as u32) {
            return Err(broken(
                "block",
                index,
                "its trailing length differs from its length",
            ));
        }
        let body = Bytes {
            b: &bytes[at + 8..at + len - 4],
            order,
        };
        let short = || broken("block", index, "shorter than its fields");
        match block_type {
            IDB => {
                let linktype = u32::from(body.u16(0).ok_or_else(short)?);
                let snaplen = body.u32(4).ok_or_else(short)?;
                let (units, offset_s) =
                    interface_options(&body, 8).map_err(|what| broken("block", index, what))?;
                interfaces.push(Interface {
                    linktype,
                    snaplen,
                    units,
                    offset_s,
                });
            }
            EPB | OBSOLETE_PB => {
                let (iface, ts, caplen, data_at) = if block_type == EPB {
                    let ts = u64::from(body.u32(4).ok_or_else(short)?) << 32
                        | u64::from(body.u32(8).ok_or_else(short)?);
                    (
                        body.u32(0).ok_or_else(short)?,
                        ts,
                        body.u32(12).ok_or_else(short)?,
                        20,
                    )
                } else {
                    let ts = u64::from(body.u32(4).ok_or_else(short)?) << 32
                        | u64::from(body.u32(8).ok_or_else(short)?);
                    let iface = u32::from(body.u16(0).ok_or_else(short)?);
                    (iface, ts, body.u32(12).ok_or_else(short)?, 20)
                };
                let i = packet_interface(&interfaces, iface, index)?;
                let caplen = caplen as usize;
                if caplen > MAX_RECORD {
                    return Err(broken(
                        "block",
                        index,
                        format!("captured length {caplen} is over {MAX_RECORD}"),
                    ));
                }
                let data = body.slice(data_at, caplen).ok_or_else(|| {
                    broken(
                        "block",
                        index,
                        format!("captured length {caplen} overruns the block"),
                    )
                })?;
                last_ts = timestamp_ns(ts, &i);
                frames.push(Frame {
                    ts_ns: last_ts,
                    data: data.to_vec(),
                });
            }
            SPB => {
                // No timestamp: the previous packet's. The data is what the block holds, at
                // most the original length and the interface's snap length.
                let i = packet_interface(&interfaces, 0, index)?;
                let orig = body.u32(0).ok_or_else(short)? as usize;
                let mut caplen = orig.min(body.b.len() - 4);
                if i.snaplen != 0 {
                    caplen = caplen.min(i.snaplen as usize);
                }
                let data = body.slice(4, caplen).ok_or_else(short)?;
                frames.push(Frame {
                    ts_ns: last_ts,
                    data: data.to_vec(),
                });
            }
            // Name resolution, statistics, custom and other blocks carry no frames.
            _ => {}
        }
        at += len;
    }
    Ok(frames)
}

/// The interface a packet block names, which must exist and be Ethernet.
fn packet_interface(
    interfaces: &[Interface],
    id: u32,
    index: usize,
) -> Result<Interface, ParseError> {
    let i = *interfaces.get(id as usize).ok_or_else(|| {
        broken(
            "block",
            index,
            format!(
                "packet on interface {id}, but the section describes {}",
                interfaces.len()
            ),
        )
    })?;
    if i.linktype != LINKTYPE_ETHERNET {
        return Err(ParseError::LinkType {
            linktype: i.linktype,
            interface: Some(id),
        });
    }
    Ok(i)
}

/// An interface description's `if_tsresol` (units per second) and `if_tsoffset` (seconds),
/// from its options at `at`.
fn interface_options(body: &Bytes<'_>, mut at: usize) -> Result<(u64, i64), String> {
    let (mut units, mut offset_s) = (1_000_000u64, 0i64);
    while at + 4 <= body.b.len() {
        let (code, len) = (
            body.u16(at).unwrap_or(0),
            usize::from(body.u16(at + 2).unwrap_or(0)),
        );
        let value = body
            .slice(at + 4, len)
            .ok_or_else(|| format!("option {code} overruns the block"))?;
        match code {
            0 => break,
            9 if len == 1 => {
                let r = value[0];
                let exp = u32::from(r & 0x7f);
                units = if r & 0x80 == 0 {
                    10u64.checked_pow(exp)
                } else {
                    2u64.checked_pow(exp)
                }
                .filter(|u| *u != 0)
                .ok_or_else(|| format!("timestamp resolution {r:#04x} is out of range"))?;
            }
            14 if len == 8 => offset_s = body.u64(at + 4).unwrap_or(0) as i64,
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok((units, offset_s))
}

/// A packet's timestamp in nanoseconds since the epoch.
fn timestamp_ns(ts: u64, i: &Interface) -> u64 {
    let (secs, rest) = (ts / i.units, ts % i.units);
    let ns = (u128::from(rest) * 1_000_000_000 / u128::from(i.units)) as u64;
    secs.saturating_add_signed(i.offset_s)
        .saturating_mul(1_000_000_000)
        .saturating_add(ns)
}

#[cfg(test)]
mod tests;
