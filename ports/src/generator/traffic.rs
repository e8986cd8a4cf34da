//! Synthetic traffic (VPP's `pg`, trafgen's and testpmd's multi-flow): a [`TrafficProfile`]
//! describes Ethernet/IPv4 frames of one size and protocol spread over `flows` 5-tuples, and a
//! [`Generator`] builds one checksum-correct template per flow up front so that producing
//! traffic only hands out slices of those templates, round-robin over the flows, with no
//! allocation and no per-frame work. [`parse_profile`] reads the CLI form
//! (`size=64,flows=10000,proto=udp`), where `size` is the on-the-wire size with the FCS.
//!
//! Flow `i` (`0..flows`) of a UDP or TCP profile has source address `src_ip + i % 256` and
//! source port `src_port + i / 256` (both wrapping: the address as a 32-bit number, the port in
//! 16 bits): the low byte of the source address turns first like testpmd's multi-flow mode,
//! and the source port widens it to 2^24 distinct 5-tuples. ICMP has no ports in the flow key,
//! so flow `i` of an ICMP profile has source address `src_ip + i` and echo identifier
//! `src_port + i` (`dst_port` is unused). Everything else is the same in every frame.

use std::net::Ipv4Addr;
use std::str::FromStr;

use pipeline::wire::{self, tcp, FrameBuilder, Icmpv4Repr, Ipv4Repr, TcpRepr};

/// Bytes of the frame check sequence, counted in the on-the-wire `size` of a spec.
pub const FCS_LEN: usize = 4;
/// Smallest frame without FCS (64 bytes on the wire).
pub const MIN_FRAME: usize = 60;
/// Largest untagged frame without FCS (1518 bytes on the wire).
pub const MAX_FRAME: usize = 1514;
/// Most flows: the UDP/TCP rule gives 2^24 distinct 5-tuples.
pub const MAX_FLOWS: u32 = 1 << 24;
/// Most bytes of templates a generator may hold (`flows * frame_size`).
pub const MAX_TEMPLATE_BYTES: usize = 512 << 20;

/// The L4 protocol of the generated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Udp,
    Tcp,
    /// ICMP echo requests.
    Icmp,
}

impl Protocol {
    /// Its name in a profile (`proto=udp`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// What to generate: untagged Ethernet/IPv4 frames of one size and protocol over `flows`
/// 5-tuples (see the module documentation for how flows differ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficProfile {
    /// Frame length without the FCS (`MIN_FRAME..=MAX_FRAME`).
    pub frame_size: usize,
    /// Distinct flows (`1..=MAX_FLOWS`).
    pub flows: u32,
    pub protocol: Protocol,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Source address of flow 0.
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    /// Source port of flow 0 (the echo identifier of flow 0 for ICMP).
    pub src_port: u16,
    /// Destination port (unused for ICMP).
    pub dst_port: u16,
}

impl Default for TrafficProfile {
    /// One flow of 60-byte (64 on the wire) UDP frames between locally administered MACs.
    fn default() -> Self {
        TrafficProfile {
            frame_size: MIN_FRAME,
            flows: 1,
            protocol: Protocol::Udp,
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::new(10, 0, 1, 1),
            src_port: 1024,
            dst_port: 5001,
        }
    }
}

/// A refused profile or spec, naming the field (or spec key) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    /// A profile field out of range.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{key}: unknown key (known: {KNOWN_KEYS})")]
    UnknownKey { key: String },
    #[error("{key}: given twice")]
    DuplicateKey { key: String },
    #[error("{key}: bad value {value:?}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{key}: {value} is out of range: {reason}")]
    OutOfRange {
        key: String,
        value: String,
        reason: String,
    },
}

const KNOWN_KEYS: &str = "size, flows, proto, src-mac, dst-mac, src-ip, dst-ip, src-port, dst-port";

impl TrafficProfile {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), TrafficError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&self.frame_size) {
            return Err(TrafficError::Invalid {
                field: "frame_size",
                reason: format!(
                    "{} is outside {MIN_FRAME}..={MAX_FRAME} (bytes without FCS)",
                    self.frame_size
                ),
            });
        }
        if self.flows == 0 {
            return Err(TrafficError::Invalid {
                field: "flows",
                reason: "must be at least 1".to_string(),
            });
        }
        if self.flows > MAX_FLOWS {
            return Err(TrafficError::Invalid {
                field: "flows",
                reason: format!("{} is more than {MAX_FLOWS}", self.flows),
            });
        }
        let bytes = self.flows as usize * self.frame_size;
        if bytes > MAX_TEMPLATE_BYTES {
            return Err(TrafficError::Invalid {
                field: "flows",
                reason: format!(
                    "{} templates of {} bytes need {} MiB, more than {} MiB",
                    self.flows,
                    self.frame_size,
                    bytes >> 20,
                    MAX_TEMPLATE_BYTES >> 20
                ),
            });
        }
        if self.src_mac[0] & 1 != 0 {
            return Err(TrafficError::Invalid {
                field: "src_mac",
                reason: "a multicast address cannot be a source".to_string(),
            });
        }
        Ok(())
    }

    /// The source address, source port (ICMP: echo identifier) of flow `i`.
    pub fn flow_fields(&self, i: u32) -> (Ipv4Addr, u16) {
        let base = u32::from(self.src_ip);
        match self.protocol {
            Protocol::Udp | Protocol::Tcp => (
                Ipv4Addr::from(base.wrapping_add(i % 256)),
                self.src_port.wrapping_add((i / 256) as u16),
            ),
            Protocol::Icmp => (
                Ipv4Addr::from(base.wrapping_add(i)),
                self.src_port.wrapping_add(i as u16),
            ),
        }
    }

    /// The frame of flow `i`, with all checksums filled in, appended to `out`.
    fn emit(&self, i: u32, out: &mut Vec<u8>) -> Result<(), wire::Error> {
        let (src_ip, sport) = self.flow_fields(i);
        // Identification 0 with DF (`Ipv4Repr::new`): the frames are never fragmented.
        let b = FrameBuilder::ethernet(self.src_mac, self.dst_mac)
            .ipv4(Ipv4Repr::new(src_ip, self.dst_ip));
        let b = match self.protocol {
            Protocol::Udp => b.udp(sport, self.dst_port),
            Protocol::Tcp => b.tcp(TcpRepr {
                seq_number: 1,
                ack_number: 1,
                flags: tcp::flags::ACK,
                ..TcpRepr::new(sport, self.dst_port)
            }),
            Protocol::Icmp => b.icmpv4(Icmpv4Repr::EchoRequest {
                ident: sport,
                seq: 0,
            }),
        };
        // The payload goes straight into the templates and the headers in front of it.
        let start = out.len();
        let payload = self.frame_size.saturating_sub(b.header_len());
        out.resize(start + b.header_len(), 0);
        out.extend((0..payload).map(|b| b as u8));
        debug_assert_eq!(out.len() - start, self.frame_size);
        b.emit_in_front(&mut out[start..])
    }
}

/// Precomputed frames of a profile: one template per flow in one buffer.
#[derive(Clone, Debug)]
pub struct Generator {
    profile: TrafficProfile,
    templates: Vec<u8>,
    /// Index of the next frame [`Generator::next_burst`] hands out.
    next: u64,
}

impl Generator {
    /// Validates `profile` and builds its templates.
    pub fn new(profile: TrafficProfile) -> Result<Generator, TrafficError> {
        profile.validate()?;
        let mut templates = Vec::with_capacity(profile.flows as usize * profile.frame_size);
        for i in 0..profile.flows {
            profile
                .emit(i, &mut templates)
                .map_err(|e| TrafficError::Invalid {
                    field: "frame_size",
                    reason: e.to_string(),
                })?;
        }
        Ok(Generator {
            profile,
            templates,
            next: 0,
        })
    }

    pub fn profile(&self) -> &TrafficProfile {
        &self.profile
    }

    /// Frame `i` of the stream: the template of flow `i % flows`.
    #[inline]
    pub fn frame(&self, i: u64) -> &[u8] {
        let size = self.profile.frame_size;
        let flow = (i % u64::from(self.profile.flows)) as usize;
        &self.templates[flow * size..(flow + 1) * size]
    }

    /// Frames `start..start + n` of the stream.
    pub fn frames(&self, start: u64, n: usize) -> Frames<'_> {
        Frames {
            generator: self,
            next: start,
            left: n,
        }
    }

    /// The next `n` frames of the stream (round-robin over the flows, continuing where the
    /// previous burst stopped).
    pub fn next_burst(&mut self, n: usize) -> Frames<'_> {
        let start = self.next;
        self.next = self.next.wrapping_add(n as u64);
        self.frames(start, n)
    }

    /// Index of the frame the next burst starts with.
    pub fn position(&self) -> u64 {
        self.next
    }
}

/// Frames of a [`Generator`] stream, borrowed from its templates.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    generator: &'a Generator,
    next: u64,
    left: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let f = self.generator.frame(self.next);
        self.next = self.next.wrapping_add(1);
        Some(f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Frames<'_> {}

/// Reads a profile from `key=value` pairs separated by commas, e.g.
/// `size=64,flows=10000,proto=udp`. Keys (`_` may stand for `-`): `size` (on-the-wire bytes
/// with FCS, 64..=1518), `flows`, `proto` (`udp`, `tcp`, `icmp`), `src-mac`, `dst-mac`,
/// `src-ip`, `dst-ip`, `src-port`, `dst-port`. Keys not given keep their
/// [`TrafficProfile::default`] value.
pub fn parse_profile(spec: &str) -> Result<TrafficProfile, TrafficError> {
    let mut p = TrafficProfile::default();
    let mut seen: Vec<String> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((raw_key, value)) = item.split_once('=') else {
            return Err(TrafficError::BadValue {
                key: item.to_string(),
                value: String::new(),
                reason: "expected key=value".to_string(),
            });
        };
        let key = raw_key.trim().replace('_', "-");
        let value = value.trim();
        if seen.contains(&key) {
            return Err(TrafficError::DuplicateKey { key });
        }
        let bad = |reason: &str| TrafficError::BadValue {
            key: key.clone(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let range = |reason: String| TrafficError::OutOfRange {
            key: key.clone(),
            value: value.to_string(),
            reason,
        };
        match key.as_str() {
            "size" => {
                let size: usize = value.parse().map_err(|_| bad("not a number"))?;
                let (lo, hi) = (MIN_FRAME + FCS_LEN, MAX_FRAME + FCS_LEN);
                if !(lo..=hi).contains(&size) {
                    return Err(range(format!("on-the-wire size with FCS is {lo}..={hi}")));
                }
                p.frame_size = size - FCS_LEN;
            }
            "flows" => {
                let flows: u32 = value.parse().map_err(|_| bad("not a number"))?;
                if !(1..=MAX_FLOWS).contains(&flows) {
                    return Err(range(format!("flows is 1..={MAX_FLOWS}")));
                }
                p.flows = flows;
            }
            "proto" => {
                p.protocol = match value.to_ascii_lowercase().as_str() {
                    "udp" => Protocol::Udp,
                    "tcp" => Protocol::Tcp,
                    "icmp" => Protocol::Icmp,
                    _ => return Err(bad("expected udp, tcp or icmp")),
                };
            }
            "src-mac" | "dst-mac" => {
                let mac = parse_mac(value).ok_or_else(|| bad("expected xx:xx:xx:xx:xx:xx"))?;
                if key == "src-mac" {
                    p.src_mac = mac;
                } else {
                    p.dst_mac = mac;
                }
            }
            "src-ip" | "dst-ip" => {
                let ip = Ipv4Addr::from_str(value).map_err(|_| bad("expected an IPv4 address"))?;
                if key == "src-ip" {
                    p.src_ip = ip;
                } else {
                    p.dst_ip = ip;
                }
            }
            "src-port" | "dst-port" => {
                let port: u64 = value.parse().map_err(|_| bad("not a number"))?;
                let port = u16::try_from(port).map_err(|_| range("ports are 0..=65535".into()))?;
                if key == "src-port" {
                    p.src_port = port;
                } else {
                    p.dst_port = port;
                }
            }
            _ => return Err(TrafficError::UnknownKey { key }),
        }
        seen.push(key);
    }
    // Fields checked together (template memory, multicast source) are reported under
    // their spec key.
    p.validate().map_err(|e| match e {
        TrafficError::Invalid { field, reason } => TrafficError::Invalid {
            field: match field {
                "frame_size" => "size",
                "src_mac" => "src-mac",
                other => other,
            },
            reason,
        },
        other => other,
    })?;
    Ok(p)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::checksum::{checksum, fold, pseudo_sum_ipv4, sum};

    /// The default profile's frame, byte for byte (checksums computed by hand with the
    /// RFC 1071 fold).
    #[test]
    fn default_frame_bytes() {
        let g = Generator::new(TrafficProfile::default()).unwrap();
        let f = g.frame(0);
        assert_eq!(f.len(), 60);
        let head: [u8; 42] = [
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // ethernet
            0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x25, 0xbe, 10, 0, 0, 1,
            10, 0, 1, 1, // ipv4, total length 46
            0x04, 0x00, 0x13, 0x89, 0x00, 0x1a, 0, 0, // udp 1024 -> 5001, length 26
        ];
        assert_eq!(&f[..40], &head[..40]);
        let payload: Vec<u8> = (0..18u8).collect();
        assert_eq!(&f[42..], &payload[..]);
        // Verifying sum over pseudo-header + UDP is all ones.
        let pseudo = pseudo_sum_ipv4(0x0a00_0001, 0x0a00_0101, 17, 26);
        assert_eq!(fold(sum(&f[34..], pseudo)), 0xffff);
        assert_eq!(checksum(&f[14..34]), 0);
    }

    #[test]
    fn flow_rule() {
        let p = TrafficProfile {
            flows: 1000,
            ..TrafficProfile::default()
        };
        assert_eq!(p.flow_fields(0), (Ipv4Addr::new(10, 0, 0, 1), 1024));
        assert_eq!(p.flow_fields(255), (Ipv4Addr::new(10, 0, 1, 0), 1024));
        assert_eq!(p.flow_fields(256), (Ipv4Addr::new(10, 0, 0, 1), 1025));
        assert_eq!(p.flow_fields(999), (Ipv4Addr::new(10, 0, 0, 232), 1027));
        let icmp = TrafficProfile {
            protocol: Protocol::Icmp,
            ..p
        };
        assert_eq!(icmp.flow_fields(300), (Ipv4Addr::new(10, 0, 1, 45), 1324));
    }

    #[test]
    fn round_robin_bursts() {
        let mut g = Generator::new(TrafficProfile {
            flows: 3,
            ..TrafficProfile::default()
        })
        .unwrap();
        let a: Vec<Vec<u8>> = g.next_burst(2).map(<[u8]>::to_vec).collect();
        assert_eq!(a, vec![g.frame(0), g.frame(1)]);
        let b = g.next_burst(4);
        assert_eq!(b.len(), 4);
        let b: Vec<Vec<u8>> = b.map(<[u8]>::to_vec).collect();
        assert_eq!(b[0], g.frame(2));
        assert_eq!(b[1], g.frame(0));
        assert_eq!(b[3], g.frame(5));
        assert_eq!(g.frame(5), g.frame(2));
        assert_ne!(g.frame(0), g.frame(1));
        assert_eq!(g.position(), 6);
    }

    #[test]
    fn validate_names_the_field() {
        let cases = [
            (
                TrafficProfile {
                    frame_size: 59,
                    ..TrafficProfile::default()
                },
                "frame_size",
            ),
            (
                TrafficProfile {
                    frame_size: 1515,
                    ..TrafficProfile::default()
                },
                "frame_size",
            ),
            (
                TrafficProfile {
                    flows: 0,
                    ..TrafficProfile::default()
                },
                "flows",
            ),
            (
                TrafficProfile {
                    flows: MAX_FLOWS + 1,
                    ..TrafficProfile::default()
                },
                "flows",
            ),
            (
                TrafficProfile {
                    flows: MAX_FLOWS,
                    frame_size: 1514,
                    ..TrafficProfile::default()
                },
                "flows",
            ),
            (
                TrafficProfile {
                    src_mac: [0x01, 0, 0x5e, 0, 0, 1],
                    ..TrafficProfile::default()
                },
                "src_mac",
            ),
        ];
        for (p, field) in cases {
            match p.validate() {
                Err(TrafficError::Invalid { field: f, .. }) => assert_eq!(f, field, "{p:?}"),
                other => panic!("{p:?}: {other:?}"),
            }
            assert!(Generator::new(p).is_err());
        }
        assert_eq!(TrafficProfile::default().validate(), Ok(()));
    }

    #[test]
    fn parse_mac_forms() {
        assert_eq!(
            parse_mac("02:0a:FF:00:00:01"),
            Some([2, 0x0a, 0xff, 0, 0, 1])
        );
        assert_eq!(parse_mac("02:0a:ff:00:00"), None);
        assert_eq!(parse_mac("02:0a:ff:00:00:01:02"), None);
        assert_eq!(parse_mac("2:0a:ff:00:00:01"), None);
        assert_eq!(parse_mac("zz:0a:ff:00:00:01"), None);
    }

    #[test]
    fn spec_keys() {
        let p = parse_profile(
            "size=128, flows=7,proto=TCP,src-mac=02:00:00:00:00:0a,dst_mac=02:00:00:00:00:0b,\
             src-ip=192.168.1.1,dst-ip=192.168.2.1,src-port=7,dst-port=80",
        )
        .unwrap();
        assert_eq!(
            p,
            TrafficProfile {
                frame_size: 124,
                flows: 7,
                protocol: Protocol::Tcp,
                src_mac: [2, 0, 0, 0, 0, 0x0a],
                dst_mac: [2, 0, 0, 0, 0, 0x0b],
                src_ip: Ipv4Addr::new(192, 168, 1, 1),
                dst_ip: Ipv4Addr::new(192, 168, 2, 1),
                src_port: 7,
                dst_port: 80,
            }
        );
        assert_eq!(parse_profile("").unwrap(), TrafficProfile::default());
    }
}
