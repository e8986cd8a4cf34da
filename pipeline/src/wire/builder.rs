//! [`FrameBuilder`]: Ethernet, up to two VLAN tags, ARP or IPv4 or IPv6, then UDP, TCP, ICMP or
//! ICMPv6, composed into one frame with every length, protocol, ethertype and checksum filled
//! in. `build` makes a new `Vec` for tools and tests; `emit_in_front` writes the same headers
//! in front of a payload that is already in a buffer (a packet grown into its headroom with
//! `PacketPool::push_front`), so an encap node never copies the payload.

use super::{
    arp, ethernet, vlan, ArpRepr, Error, EthernetRepr, Icmpv4Repr, Icmpv6Repr, Ipv4Repr, Ipv6Repr,
    Result, TcpRepr, UdpRepr, VlanRepr,
};
use crate::flowkey::{ethertype, ipproto};

/// What follows the Ethernet header and its tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// The payload, of this ethertype, right after the Ethernet header and tags.
    Raw { ethertype: u16 },
    /// ARP; the payload, if any, follows as Ethernet padding.
    Arp(ArpRepr),
    /// IPv4; its protocol (unless [`Transport::None`]) and payload length are filled in.
    Ipv4(Ipv4Repr),
    /// IPv6; its next header (unless [`Transport::None`]) and payload length are filled in.
    Ipv6(Ipv6Repr),
}

/// What follows the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The payload right after the IP header (of the IP repr's protocol).
    None,
    /// `checksum: false` sends 0, "no checksum".
    Udp {
        repr: UdpRepr,
        checksum: bool,
    },
    Tcp(TcpRepr),
    Icmpv4(Icmpv4Repr),
    Icmpv6(Icmpv6Repr),
}

impl Transport {
    fn protocol(&self) -> Option<u8> {
        match self {
            Transport::None => None,
            Transport::Udp { .. } => Some(ipproto::UDP),
            Transport::Tcp(_) => Some(ipproto::TCP),
            Transport::Icmpv4(_) => Some(ipproto::ICMP),
            Transport::Icmpv6(_) => Some(ipproto::ICMPV6),
        }
    }

    fn header_len(&self) -> usize {
        match self {
            Transport::None => 0,
            Transport::Udp { repr, .. } => repr.header_len(),
            Transport::Tcp(r) => r.header_len(),
            Transport::Icmpv4(r) => r.header_len(),
            Transport::Icmpv6(r) => r.header_len(),
        }
    }
}

/// Most VLAN tags a frame gets (QinQ), as the parser reads.
const MAX_VLANS: usize = 2;

/// The headers of a frame, outermost first; see the module documentation.
///
/// ```
/// use std::net::Ipv4Addr;
/// use pipeline::wire::{FrameBuilder, Ipv4Repr};
///
/// let ip = Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1));
/// let b = FrameBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
///     .ipv4(ip)
///     .udp(1024, 5001);
/// let frame = b.build(b"payload").unwrap();
/// assert_eq!(frame.len(), 14 + 20 + 8 + 7);
///
/// // The same headers in front of a payload already in place (a buffer's headroom).
/// let mut buf = vec![0u8; b.header_len()];
/// buf.extend_from_slice(b"payload");
/// b.emit_in_front(&mut buf).unwrap();
/// assert_eq!(buf, frame);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBuilder {
    src: [u8; 6],
    dst: [u8; 6],
    /// (TPID, TCI), outermost first; `vlan_count` past 2 is refused when emitting.
    vlans: [(u16, u16); MAX_VLANS],
    vlan_count: usize,
    network: Network,
    transport: Transport,
    min_len: usize,
}

impl FrameBuilder {
    /// A frame from `src` to `dst`; without another call its payload follows the Ethernet
    /// header with ethertype 0.
    pub const fn ethernet(src: [u8; 6], dst: [u8; 6]) -> FrameBuilder {
        FrameBuilder {
            src,
            dst,
            vlans: [(0, 0); MAX_VLANS],
            vlan_count: 0,
            network: Network::Raw { ethertype: 0 },
            transport: Transport::None,
            min_len: 0,
        }
    }

    /// Adds a VLAN tag inside those already added (`tpid`: [`vlan::TPID_8021Q`] or
    /// [`vlan::TPID_8021AD`]). A third tag makes emitting fail with [`Error::Unsupported`].
    pub fn vlan(mut self, tpid: u16, tci: u16) -> FrameBuilder {
        if let Some(slot) = self.vlans.get_mut(self.vlan_count) {
            *slot = (tpid, tci);
        }
        self.vlan_count = (self.vlan_count + 1).min(MAX_VLANS + 1);
        self
    }

    /// The payload follows the Ethernet header (and tags) as `ethertype`.
    pub fn ethertype(mut self, ethertype: u16) -> FrameBuilder {
        self.network = Network::Raw { ethertype };
        self
    }

    pub fn arp(mut self, repr: ArpRepr) -> FrameBuilder {
        self.network = Network::Arp(repr);
        self
    }

    /// IPv4 as `repr` says, but with the protocol of the transport added after (if any) and
    /// the payload length of what follows.
    pub fn ipv4(mut self, repr: Ipv4Repr) -> FrameBuilder {
        self.network = Network::Ipv4(repr);
        self
    }

    /// IPv6 as `repr` says, but with the next header of the transport added after (if any)
    /// and the payload length of what follows.
    pub fn ipv6(mut self, repr: Ipv6Repr) -> FrameBuilder {
        self.network = Network::Ipv6(repr);
        self
    }

    /// UDP with its checksum computed (a computed 0 is sent as 0xffff).
    pub fn udp(mut self, src_port: u16, dst_port: u16) -> FrameBuilder {
        let repr = UdpRepr { src_port, dst_port };
        self.transport = Transport::Udp {
            repr,
            checksum: true,
        };
        self
    }

    /// UDP with checksum 0, as tunnels over IPv4 send it.
    pub fn udp_without_checksum(mut self, src_port: u16, dst_port: u16) -> FrameBuilder {
        let repr = UdpRepr { src_port, dst_port };
        self.transport = Transport::Udp {
            repr,
            checksum: false,
        };
        self
    }

    pub fn tcp(mut self, repr: TcpRepr) -> FrameBuilder {
        self.transport = Transport::Tcp(repr);
        self
    }

    /// ICMP; needs IPv4.
    pub fn icmpv4(mut self, repr: Icmpv4Repr) -> FrameBuilder {
        self.transport = Transport::Icmpv4(repr);
        self
    }

    /// ICMPv6; needs IPv6.
    pub fn icmpv6(mut self, repr: Icmpv6Repr) -> FrameBuilder {
        self.transport = Transport::Icmpv6(repr);
        self
    }

    /// [`FrameBuilder::build`] pads shorter frames with zeros to `len` bytes (60 is the
    /// Ethernet minimum without FCS). The padding is after the IP packet, not in it.
    pub fn min_len(mut self, len: usize) -> FrameBuilder {
        self.min_len = len;
        self
    }

    /// Bytes of headers in front of the payload.
    pub fn header_len(&self) -> usize {
        let l3 = match &self.network {
            Network::Raw { .. } => 0,
            Network::Arp(r) => r.buffer_len(),
            Network::Ipv4(r) => r.header_len(),
            Network::Ipv6(r) => r.header_len(),
        };
        ethernet::HEADER_LEN
            + self.vlan_count.min(MAX_VLANS) * vlan::HEADER_LEN
            + l3
            + self.transport.header_len()
    }

    /// Length of the frame [`FrameBuilder::build`] makes around `payload_len` bytes.
    pub fn frame_len(&self, payload_len: usize) -> usize {
        (self.header_len() + payload_len).max(self.min_len)
    }

    /// A new frame of these headers and `payload`, padded to the minimum length if one was
    /// set.
    pub fn build(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let hl = self.header_len();
        let mut frame = Vec::with_capacity(self.frame_len(payload.len()));
        frame.resize(hl, 0);
        frame.extend_from_slice(payload);
        self.emit_in_front(&mut frame)?;
        if frame.len() < self.min_len {
            frame.resize(self.min_len, 0);
        }
        Ok(frame)
    }

    /// Writes the headers into the first [`FrameBuilder::header_len`] bytes of `frame`; the
    /// rest of `frame` is the payload, already in place, which lengths and checksums cover.
    pub fn emit_in_front(&self, frame: &mut [u8]) -> Result<()> {
        if frame.len() < self.header_len() {
            return Err(Error::BufferLength);
        }
        let vlans = self
            .vlans
            .get(..self.vlan_count)
            .ok_or(Error::Unsupported)?;
        let inner = match (&self.network, &self.transport) {
            (Network::Raw { ethertype }, Transport::None) => *ethertype,
            (Network::Arp(_), Transport::None) => ethertype::ARP,
            (Network::Ipv4(_), Transport::Icmpv6(_)) | (Network::Ipv6(_), Transport::Icmpv4(_)) => {
                return Err(Error::Unsupported)
            }
            (Network::Ipv4(_), _) => ethertype::IPV4,
            (Network::Ipv6(_), _) => ethertype::IPV6,
            (Network::Raw { .. } | Network::Arp(_), _) => return Err(Error::Unsupported),
        };

        // Each header's ethertype is the next one's TPID, the innermost's the network's.
        let mut next = inner;
        for (i, &(tpid, tci)) in vlans.iter().enumerate().rev() {
            let at = ethernet::HEADER_LEN + i * vlan::HEADER_LEN;
            VlanRepr::from_tci(tci, next).emit(tail(frame, at)?)?;
            next = tpid;
        }
        EthernetRepr {
            src: self.src,
            dst: self.dst,
            ethertype: next,
        }
        .emit(frame)?;

        let l3 = ethernet::HEADER_LEN + vlans.len() * vlan::HEADER_LEN;
        let protocol = self.transport.protocol();
        match self.network {
            Network::Raw { .. } => Ok(()),
            Network::Arp(r) => {
                let end = l3 + arp::PACKET_LEN;
                r.emit(frame.get_mut(l3..end).ok_or(Error::BufferLength)?)
            }
            Network::Ipv4(r) => {
                let ip = tail(frame, l3)?;
                let r = Ipv4Repr {
                    protocol: protocol.unwrap_or(r.protocol),
                    payload_len: ip.len().saturating_sub(r.header_len()),
                    ..r
                };
                let l4 = tail(ip, r.header_len())?;
                self.emit_transport(l4, &r.pseudo_header(), None)?;
                r.emit(ip)
            }
            Network::Ipv6(r) => {
                let ip = tail(frame, l3)?;
                let r = Ipv6Repr {
                    next_header: protocol.unwrap_or(r.next_header),
                    payload_len: ip.len().saturating_sub(r.header_len()),
                    ..r
                };
                let l4 = tail(ip, r.header_len())?;
                self.emit_transport(l4, &r.pseudo_header(), Some((r.src, r.dst)))?;
                r.emit(ip)
            }
        }
    }

    fn emit_transport(
        &self,
        l4: &mut [u8],
        pseudo: &super::PseudoHeader,
        ipv6: Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)>,
    ) -> Result<()> {
        match &self.transport {
            Transport::None => Ok(()),
            Transport::Udp {
                repr,
                checksum: true,
            } => repr.emit(l4, pseudo),
            Transport::Udp {
                repr,
                checksum: false,
            } => repr.emit_without_checksum(l4),
            Transport::Tcp(r) => r.emit(l4, pseudo),
            Transport::Icmpv4(r) => r.emit(l4),
            Transport::Icmpv6(r) => {
                let (src, dst) = ipv6.ok_or(Error::Unsupported)?;
                r.emit(l4, src, dst)
            }
        }
    }
}

/// `b[at..]`, or [`Error::BufferLength`].
fn tail(b: &mut [u8], at: usize) -> Result<&mut [u8]> {
    b.get_mut(at..).ok_or(Error::BufferLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{arp, icmpv4, tcp, Ipv4Packet};
    use crate::{PacketMeta, PacketPool};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    fn ip4() -> Ipv4Repr {
        Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1))
    }

    /// `datapath::traffic`'s default frame: its fixture there, byte for byte (IPv4 checksum
    /// 25be by hand), here built by the builder.
    #[test]
    fn udp4_fixture() {
        let payload: Vec<u8> = (0..18).collect();
        let f = FrameBuilder::ethernet(A, B)
            .ipv4(ip4())
            .udp(1024, 5001)
            .build(&payload)
            .unwrap();
        let head: [u8; 40] = [
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // ethernet
            0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x25, 0xbe, 10, 0, 0, 1,
            10, 0, 1, 1, // ipv4, total length 46
            0x04, 0x00, 0x13, 0x89, 0x00, 0x1a, // udp 1024 -> 5001, length 26
        ];
        assert_eq!(&f[..40], &head);
        assert_eq!(&f[42..], &payload[..]);
        let mut meta = PacketMeta::default();
        crate::parse_packet(&f, &mut meta).unwrap();
        assert_eq!((meta.key.tp_src, meta.key.tp_dst), (1024, 5001));
    }

    #[test]
    fn qinq_tags_chain_their_ethertypes() {
        let f = FrameBuilder::ethernet(A, B)
            .vlan(vlan::TPID_8021AD, 10)
            .vlan(vlan::TPID_8021Q, 0xa014)
            .ethertype(0x88b5)
            .build(&[1, 2])
            .unwrap();
        assert_eq!(
            &f[12..],
            &[0x88, 0xa8, 0, 10, 0x81, 0x00, 0xa0, 0x14, 0x88, 0xb5, 1, 2]
        );
        let third = FrameBuilder::ethernet(A, B)
            .vlan(0x8100, 1)
            .vlan(0x8100, 2)
            .vlan(0x8100, 3);
        assert_eq!(third.build(&[]), Err(Error::Unsupported));
    }

    #[test]
    fn arp_is_padded_to_the_minimum() {
        let r = ArpRepr {
            operation: arp::operation::REQUEST,
            sender_mac: A,
            sender_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        let f = FrameBuilder::ethernet(A, crate::wire::ethernet::BROADCAST)
            .arp(r)
            .min_len(60)
            .build(&[])
            .unwrap();
        assert_eq!(f.len(), 60);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert!(f[42..].iter().all(|&b| b == 0));
        let mut meta = PacketMeta::default();
        crate::parse_packet(&f, &mut meta).unwrap();
        assert_eq!(meta.key.nw_dst, 0x0a00_0002);
    }

    #[test]
    fn padding_is_outside_the_ip_packet() {
        let f = FrameBuilder::ethernet(A, B)
            .ipv4(ip4())
            .icmpv4(Icmpv4Repr::EchoRequest { ident: 1, seq: 2 })
            .min_len(60)
            .build(&[9; 4])
            .unwrap();
        assert_eq!(f.len(), 60);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.total_len(), 32);
        let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&icmp).unwrap(),
            Icmpv4Repr::EchoRequest { ident: 1, seq: 2 }
        );
    }

    #[test]
    fn mismatched_layers_are_refused() {
        let b = FrameBuilder::ethernet(A, B);
        let v6 = Ipv6Repr::new(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        let echo6 = Icmpv6Repr::EchoRequest { ident: 0, seq: 0 };
        let echo4 = Icmpv4Repr::EchoRequest { ident: 0, seq: 0 };
        assert_eq!(
            b.ipv4(ip4()).icmpv6(echo6).build(&[]),
            Err(Error::Unsupported)
        );
        assert_eq!(b.ipv6(v6).icmpv4(echo4).build(&[]), Err(Error::Unsupported));
        assert_eq!(b.udp(1, 2).build(&[]), Err(Error::Unsupported));
        let huge = vec![0u8; 65_536];
        assert_eq!(b.ipv4(ip4()).build(&huge), Err(Error::TooLong));
        assert_eq!(
            b.ipv4(ip4()).udp(1, 2).emit_in_front(&mut [0u8; 41]),
            Err(Error::BufferLength)
        );
    }

    /// The encap use: a packet in a pool grows into its headroom and gets outer headers
    /// (VXLAN-like: IPv4/UDP without checksum) without its bytes moving.
    #[test]
    fn outer_headers_in_the_headroom() {
        let inner = FrameBuilder::ethernet(A, B)
            .ipv6(Ipv6Repr::new(
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            ))
            .tcp(TcpRepr {
                flags: tcp::flags::SYN,
                ..TcpRepr::new(40000, 443)
            })
            .build(b"inner")
            .unwrap();
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vxlan.extend_from_slice(&inner);
        let outer = FrameBuilder::ethernet(B, A)
            .ipv4(Ipv4Repr {
                ttl: 255,
                ..Ipv4Repr::new(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2))
            })
            .udp_without_checksum(49152, 4789);
        assert_eq!(outer.header_len(), 42);

        let mut pool = PacketPool::new(4);
        let id = pool.alloc_with(&vxlan).unwrap();
        let payload_at = pool.data(id).as_ptr() as usize;
        let frame = pool.push_front(id, outer.header_len()).unwrap();
        outer.emit_in_front(frame).unwrap();
        let data = pool.data(id);
        assert_eq!(
            data.as_ptr() as usize + 42,
            payload_at,
            "payload did not move"
        );
        assert_eq!(data, &outer.build(&vxlan).unwrap()[..]);
        let ip = Ipv4Packet::new_checked(&data[14..]).unwrap();
        assert_eq!(ip.total_len() as usize, 20 + 8 + vxlan.len());
        assert!(ip.verify_checksum());
        assert_eq!(&data[40..42], &[0, 0], "no UDP checksum");
        assert_eq!(&data[42..], &vxlan[..]);
    }
}
