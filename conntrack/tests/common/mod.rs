//! Packet builders shared by the integration tests.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use conntrack::{tcp_flags as f, CtAddr, CtPacket, Family, IcmpHeader, QuotedHeader, TcpSegment};
use pipeline::flowkey::ipproto;

pub const SEC: u64 = 1_000_000_000;

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> CtAddr {
    CtAddr::from_v4(Ipv4Addr::new(a, b, c, d))
}

pub fn v6(s: &str) -> CtAddr {
    CtAddr::from_v6(s.parse::<Ipv6Addr>().unwrap())
}

pub fn family_of(a: CtAddr) -> Family {
    if a.0[4..].iter().all(|b| *b == 0) {
        Family::V4
    } else {
        Family::V6
    }
}

pub fn udp(src: CtAddr, sport: u16, dst: CtAddr, dport: u16) -> CtPacket {
    CtPacket {
        family: family_of(src),
        src,
        dst,
        proto: ipproto::UDP,
        sport,
        dport,
        ..CtPacket::default()
    }
}

pub fn icmp(src: CtAddr, dst: CtAddr, icmp_type: u8, code: u8, id: u16) -> CtPacket {
    let family = family_of(src);
    CtPacket {
        family,
        src,
        dst,
        proto: if family == Family::V4 {
            ipproto::ICMP
        } else {
            ipproto::ICMPV6
        },
        icmp: IcmpHeader {
            icmp_type,
            code,
            id,
            quoted: None,
        },
        ..CtPacket::default()
    }
}

/// An ICMP error from `router` to the sender of `quoted`, quoting it.
pub fn icmp_error(router: CtAddr, icmp_type: u8, code: u8, quoted: &CtPacket) -> CtPacket {
    let mut l4 = [0u8; 8];
    if quoted.proto == ipproto::ICMP || quoted.proto == ipproto::ICMPV6 {
        l4[0] = quoted.icmp.icmp_type;
        l4[1] = quoted.icmp.code;
        l4[4..6].copy_from_slice(&quoted.icmp.id.to_be_bytes());
    } else {
        l4[0..2].copy_from_slice(&quoted.sport.to_be_bytes());
        l4[2..4].copy_from_slice(&quoted.dport.to_be_bytes());
    }
    let mut pkt = icmp(router, quoted.src, icmp_type, code, 0);
    pkt.icmp.quoted = Some(QuotedHeader {
        src: quoted.src,
        dst: quoted.dst,
        proto: quoted.proto,
        l4,
        l4_len: if quoted.proto == ipproto::TCP { 20 } else { 8 },
    });
    pkt
}

/// A TCP connection's two ends, with their next sequence numbers.
#[derive(Clone, Copy, Debug)]
pub struct Tcp {
    pub client: CtAddr,
    pub cport: u16,
    pub server: CtAddr,
    pub sport: u16,
    /// Next sequence number of the client and of the server.
    pub cseq: u32,
    pub sseq: u32,
    pub window: u16,
    pub wscale: Option<u8>,
}

impl Tcp {
    pub fn new(client: CtAddr, cport: u16, server: CtAddr, sport: u16) -> Tcp {
        Tcp {
            client,
            cport,
            server,
            sport,
            cseq: 1_000,
            sseq: 5_000_000,
            window: 65_535,
            wscale: None,
        }
    }

    fn segment(&mut self, from_client: bool, flags: u16, len: u32) -> CtPacket {
        let (src, sp, dst, dp) = if from_client {
            (self.client, self.cport, self.server, self.sport)
        } else {
            (self.server, self.sport, self.client, self.cport)
        };
        let (seq, ack) = if from_client {
            (self.cseq, self.sseq)
        } else {
            (self.sseq, self.cseq)
        };
        let advance = len + u32::from(flags & f::SYN != 0) + u32::from(flags & f::FIN != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(advance);
        } else {
            self.sseq = self.sseq.wrapping_add(advance);
        }
        CtPacket {
            family: family_of(src),
            src,
            dst,
            proto: ipproto::TCP,
            sport: sp,
            dport: dp,
            tcp: TcpSegment {
                flags,
                seq,
                ack: if flags & f::ACK != 0 { ack } else { 0 },
                window: self.window,
                wscale: if flags & f::SYN != 0 {
                    self.wscale
                } else {
                    None
                },
                payload_len: len,
            },
            ..CtPacket::default()
        }
    }

    /// A segment from the client, advancing its sequence number.
    pub fn c2s(&mut self, flags: u16, len: u32) -> CtPacket {
        self.segment(true, flags, len)
    }

    /// A segment from the server, advancing its sequence number.
    pub fn s2c(&mut self, flags: u16, len: u32) -> CtPacket {
        self.segment(false, flags, len)
    }
}
