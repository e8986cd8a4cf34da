//! The datapath's `ct()` action: [`CtTracker`] runs one resolved `ct()` (zone, commit, what
//! to set) over the shared [`ConnTable`] for a group of packets, as the `pipeline`'s
//! [`Track`]. [`ct_packet`] reads what the tracker needs from a parsed packet: the key's
//! 5-tuple, and from the bytes the TCP sequence numbers, window, window-scale option and
//! payload length, the ICMP identifier, and the header an ICMP error quotes. A packet of a
//! NAT'ed connection is rewritten (`rewrite.rs`) when the action has a `nat`.

use std::sync::Arc;

use pipeline::buffer::NO_OFFSET;
use pipeline::flowkey::{ct_state, ethertype, ipproto, FlowKey};
use pipeline::{ExecDrop, Fragments, PacketId, PacketMeta, PacketPool, Track};

use crate::ipf::FragVerdict;
use crate::key::{ConnKey, CtAddr};
use crate::packet::{tcp_wscale_option, CtPacket, QuotedHeader};
use crate::proto::ProtoClass;
use crate::rewrite::rewrite;
use crate::table::{ConnTable, CtExec};
use crate::{CtEvent, Family};

/// One `ct()` over a table.
pub struct CtTracker {
    table: Arc<ConnTable>,
    exec: CtExec,
    text: String,
}

impl CtTracker {
    pub fn new(table: Arc<ConnTable>, exec: CtExec) -> CtTracker {
        let text = describe(&exec);
        CtTracker { table, exec, text }
    }
}

/// OVS's datapath text: `ct(commit,zone=1,mark=0x5/0xff,label=0x1/0xffff,nat(src=...))`.
fn describe(exec: &CtExec) -> String {
    let mut parts = Vec::new();
    if exec.commit {
        parts.push("commit".to_string());
    }
    if exec.zone != 0 {
        parts.push(format!("zone={}", exec.zone));
    }
    if let Some((v, m)) = exec.set_mark {
        parts.push(format!("mark={v:#x}/{m:#x}"));
    }
    if let Some((v, m)) = exec.set_label {
        parts.push(format!("label={v:#x}/{m:#x}"));
    }
    if let Some(nat) = &exec.nat {
        parts.push(nat.to_string());
    }
    format!("ct({})", parts.join(","))
}

impl Track for CtTracker {
    fn track(
        &self,
        pool: &mut PacketPool,
        pkts: &[PacketId],
        now_ns: u64,
        drops: &mut [Option<ExecDrop>],
        frags: &mut Fragments,
    ) {
        for (i, (&p, drop)) in pkts.iter().zip(drops.iter_mut()).enumerate() {
            if pool.meta(p).key.nw_frag != 0 && self.fragment(pool, p, i, now_ns, frags) {
                continue;
            }
            let (data, meta) = pool.data_and_meta_mut(p);
            *drop = self.track_one(data, meta, now_ns);
        }
    }

    fn describe(&self) -> String {
        self.text.clone()
    }
}

/// Writes the connection's original-direction tuple into the key's `ct_nw_*` / `ct_ipv6_*`
/// and `ct_tp_*` fields (OVS `write_ct_md`); no tuple clears them.
fn write_tuple(k: &mut FlowKey, orig: Option<&ConnKey>) {
    k.clear_ct_tuple();
    let Some(o) = orig else {
        return;
    };
    match o.family {
        Family::V4 => {
            k.ct_nw_src = o.src.v4_bits();
            k.ct_nw_dst = o.dst.v4_bits();
        }
        Family::V6 => {
            k.ct_ipv6_src = o.src.0;
            k.ct_ipv6_dst = o.dst.0;
        }
    }
    (k.ct_tp_src, k.ct_tp_dst) = o.tuple_ports();
    k.ct_nw_proto = o.proto;
}

// ---- IP fragments (OVS `ipf_preprocess_conntrack` / `ipf_postprocess_conntrack`) ----------

impl CtTracker {
    /// Gives fragment `p` (index `i` of the group) to the reassembler: true when it took it
    /// (held, listed in `frags.held`); when it completed a datagram, the datagram goes through
    /// the table once and its fragments, with its verdict, into `frags.released`. False: not
    /// taken, tracked as the rest (`+trk+inv`).
    fn fragment(
        &self,
        pool: &mut PacketPool,
        p: PacketId,
        i: usize,
        now_ns: u64,
        frags: &mut Fragments,
    ) -> bool {
        let ipf = self.table.ipf();
        let mut datagram = match ipf.add(pool.data(p), pool.meta(p), self.exec.zone, now_ns) {
            FragVerdict::NotTaken => return false,
            FragVerdict::Held => {
                frags.held.push(i as u16);
                return true;
            }
            FragVerdict::Complete(d) => d,
        };
        frags.held.push(i as u16);
        let drop = self.track_one(&mut datagram.frame, &mut datagram.meta, now_ns);
        let v6 = datagram.is_v6();
        let (mut sent, mut purged) = (0, 0);
        for (frame, meta) in datagram.release() {
            let Ok(id) = pool.alloc_with(&frame) else {
                purged += 1;
                continue;
            };
            let m = pool.meta_mut(id);
            let (data_off, len) = (m.data_off, m.len);
            *m = PacketMeta {
                data_off,
                len,
                ..meta
            };
            frags.released.push((id, drop));
            sent += 1;
        }
        ipf.released(v6, sent, purged);
        true
    }

    /// Tracks one packet (`data` its bytes, `meta` its key and offsets; a reassembled
    /// datagram may be longer than a pool frame): looks it up, commits it if asked, rewrites
    /// it for NAT and writes its conntrack fields; its drop reason when the table refused it.
    fn track_one(&self, data: &mut [u8], meta: &mut PacketMeta, now_ns: u64) -> Option<ExecDrop> {
        const NAT_BITS: u8 = ct_state::SRC_NAT | ct_state::DST_NAT;
        let (before, before_zone) = (meta.key.ct_state, meta.key.ct_zone);
        let mut drop = None;
        let (state, mark, label, orig) = match ct_packet(data, meta) {
            Some(mut pkt) => {
                pkt.natted = before & NAT_BITS != 0 && before_zone == self.exec.zone;
                let out = self.table.execute(&pkt, &self.exec, now_ns);
                if refuses(out.event) {
                    drop = Some(ExecDrop::CtRefused);
                }
                let mut state = out.state;
                if pkt.natted {
                    // OVS `handle_nat`: a packet translated in this zone already is not
                    // translated again, and (OVS ORs the new bits into the state the packet
                    // has) keeps its `+snat` / `+dnat` unless it is invalid now.
                    if state & ct_state::INVALID == 0 {
                        state = (state & !NAT_BITS) | (before & NAT_BITS);
                    }
                } else if let Some(nat) = out.nat {
                    let table = &self.table;
                    let _ = rewrite(data, meta, &nat, |s, d, p| table.next_ip_id(s, d, p));
                }
                (state, out.mark, out.label, out.orig)
            }
            // Not trackable (a fragment not reassembled, a non-IP frame): invalid, as in OVS.
            None => (ct_state::TRACKED | ct_state::INVALID, 0, 0, None),
        };
        let k = &mut meta.key;
        k.ct_state = state;
        k.ct_zone = self.exec.zone;
        k.ct_mark = mark;
        k.ct_label = label.to_be_bytes();
        write_tuple(k, orig.as_ref());
        drop
    }
}

/// Whether the table refused the packet (the datapath drops it as `ct-refused`).
fn refuses(event: CtEvent) -> bool {
    matches!(
        event,
        CtEvent::TableFull | CtEvent::ZoneFull | CtEvent::NatExhausted | CtEvent::ReplyTaken
    )
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*d.get(at..)?.first_chunk::<2>()?))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*d.get(at..)?.first_chunk::<4>()?))
}

/// The tracker's view of a parsed packet (`data` its bytes, `meta` its key and offsets);
/// `None` when it has none (not IP, an L4 header the parser did not find, an IP fragment:
/// OVS's conntrack finds a fragment invalid, datagrams reach it reassembled, `ipf.rs`).
pub fn ct_packet(data: &[u8], meta: &PacketMeta) -> Option<CtPacket> {
    let key = &meta.key;
    if key.nw_frag != 0 {
        return None;
    }
    let mut pkt = CtPacket::from_flow_key(key)?;
    let (l3, l4) = (usize::from(meta.l3_ofs), usize::from(meta.l4_ofs));
    if meta.l3_ofs == NO_OFFSET || meta.l4_ofs == NO_OFFSET {
        return Some(pkt);
    }
    // Where the IP packet ends (padding after it is not payload).
    let ip_end = match key.dl_type {
        ethertype::IPV4 => l3 + usize::from(be16(data, l3 + 2)?),
        ethertype::IPV6 => l3 + 40 + usize::from(be16(data, l3 + 4)?),
        _ => return Some(pkt),
    }
    .min(data.len());
    match ProtoClass::of(key.nw_proto, pkt.family) {
        ProtoClass::Icmp => {
            let error = match pkt.family {
                Family::V4 => matches!(pkt.icmp.icmp_type, 3 | 4 | 5 | 11 | 12),
                Family::V6 => pkt.icmp.icmp_type < 128,
            };
            if error {
                pkt.icmp.quoted = quoted(data.get(l4 + 8..ip_end)?, pkt.family);
            } else {
                pkt.icmp.id = be16(data, l4 + 4).unwrap_or(0);
            }
        }
        _ if key.nw_proto == ipproto::TCP => {
            let doff = usize::from(*data.get(l4 + 12)? >> 4) * 4;
            pkt.tcp.seq = be32(data, l4 + 4)?;
            pkt.tcp.ack = be32(data, l4 + 8)?;
            pkt.tcp.window = be16(data, l4 + 14)?;
            pkt.tcp.wscale = data.get(l4 + 20..l4 + doff).and_then(tcp_wscale_option);
            pkt.tcp.payload_len = ip_end.saturating_sub(l4 + doff) as u32;
        }
        _ => {}
    }
    Some(pkt)
}

/// The header an ICMP error quotes (`b` from the quoted IP header on), when one is there.
fn quoted(b: &[u8], family: Family) -> Option<QuotedHeader> {
    let (src, dst, proto, l4) = match family {
        Family::V4 => {
            let ihl = usize::from(*b.first()? & 0x0f) * 4;
            let src = CtAddr::from_v4_bits(be32(b, 12)?);
            let dst = CtAddr::from_v4_bits(be32(b, 16)?);
            (src, dst, *b.get(9)?, b.get(ihl..)?)
        }
        Family::V6 => {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(b.get(8..24)?);
            dst.copy_from_slice(b.get(24..40)?);
            (CtAddr(src), CtAddr(dst), *b.get(6)?, b.get(40..)?)
        }
    };
    let mut q = QuotedHeader {
        src,
        dst,
        proto,
        l4_len: l4.len().min(usize::from(u16::MAX)) as u16,
        ..QuotedHeader::default()
    };
    let n = l4.len().min(8);
    q.l4[..n].copy_from_slice(&l4[..n]);
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::wire::{FrameBuilder, Ipv4Repr, TcpRepr};
    use pipeline::{parse_packet_limit, VlanLimit};
    use std::net::Ipv4Addr;

    fn parsed(pool: &mut PacketPool, frame: &[u8]) -> PacketId {
        let id = pool.alloc_with(frame).unwrap();
        let (data, meta) = pool.data_and_meta_mut(id);
        parse_packet_limit(data, meta, VlanLimit::DEFAULT).unwrap();
        id
    }

    /// A TCP segment a → b with `flags`, sequence `seq`, ack `ack` and 4 bytes of payload.
    fn tcp(a: u8, b: u8, sport: u16, dport: u16, flags: u16, seq: u32, ack: u32) -> Vec<u8> {
        let ip = Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, a), Ipv4Addr::new(10, 0, 0, b));
        FrameBuilder::ethernet([2, 0, 0, 0, 0, a], [2, 0, 0, 0, 0, b])
            .ipv4(ip)
            .tcp(TcpRepr {
                seq_number: seq,
                ack_number: ack,
                flags,
                window: 64000,
                ..TcpRepr::new(sport, dport)
            })
            .build(b"data")
            .unwrap()
    }

    #[test]
    fn a_handshake_through_the_action() {
        let table = Arc::new(ConnTable::new(crate::CtConfig::default()));
        let commit = CtTracker::new(
            table.clone(),
            CtExec {
                zone: 3,
                commit: true,
                set_mark: Some((5, 0xff)),
                ..CtExec::default()
            },
        );
        assert_eq!(commit.describe(), "ct(commit,zone=3,mark=0x5/0xff)");
        let mut pool = PacketPool::new(8);
        let mut run = |t: &CtTracker, frame: Vec<u8>| {
            let id = parsed(&mut pool, &frame);
            let mut drops = [None];
            t.track(&mut pool, &[id], 1, &mut drops, &mut Fragments::default());
            let k = pool.meta(id).key;
            let tcp = ct_packet(pool.data(id), pool.meta(id)).unwrap().tcp;
            pool.free(id);
            (k.ct_state, k.ct_zone, k.ct_mark, tcp, drops[0])
        };
        let (state, zone, mark, seg, drop) = run(&commit, tcp(1, 2, 40000, 80, 0x02, 1000, 0));
        assert_eq!((state, zone, mark, drop), (0x21, 3, 5, None));
        assert_eq!((seg.seq, seg.window, seg.payload_len), (1000, 64000, 4));
        let (state, ..) = run(&commit, tcp(2, 1, 80, 40000, 0x12, 5000, 1005));
        assert_eq!(
            state,
            ct_state::TRACKED | ct_state::ESTABLISHED | ct_state::REPLY
        );
        let (state, ..) = run(&commit, tcp(1, 2, 40000, 80, 0x10, 1005, 5005));
        assert_eq!(state, ct_state::TRACKED | ct_state::ESTABLISHED);
        assert_eq!(table.len(), 1);
    }
    /// Every checksum of an IPv4 frame is right (header, TCP / UDP with the pseudo-header,
    /// ICMP; for an ICMP error also the quoted header's and its UDP datagram's, when whole).
    fn assert_checksums_v4(frame: &[u8]) {
        use pipeline::checksum::{checksum, l4_checksum, pseudo_sum_ipv4};
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        assert_eq!(checksum(&ip[..ihl]), 0, "IP header checksum");
        let l4 = &ip[ihl..total];
        let addr =
            |at: usize, b: &[u8]| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let pseudo = |b: &[u8], proto: u8, len: usize| {
            pseudo_sum_ipv4(addr(12, b), addr(16, b), proto, len as u32)
        };
        match ip[9] {
            6 => assert_eq!(l4_checksum(pseudo(ip, 6, l4.len()), l4), 0, "TCP checksum"),
            17 if l4[6..8] != [0, 0] => {
                assert_eq!(l4_checksum(pseudo(ip, 17, l4.len()), l4), 0, "UDP checksum")
            }
            1 => {
                assert_eq!(checksum(l4), 0, "ICMP checksum");
                if matches!(l4[0], 3 | 11) {
                    let q = &l4[8..];
                    let qihl = usize::from(q[0] & 0x0f) * 4;
                    assert_eq!(checksum(&q[..qihl]), 0, "quoted IP header checksum");
                    let qtotal = usize::from(u16::from_be_bytes([q[2], q[3]]));
                    if q[9] == 17 && qtotal == q.len() {
                        let seg = &q[qihl..];
                        assert_eq!(
                            l4_checksum(pseudo(q, 17, seg.len()), seg),
                            0,
                            "quoted UDP checksum"
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn v4a(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    fn snat_exec(ports: Option<(u16, u16)>) -> CtExec {
        let a = CtAddr::from_v4(v4a(192, 168, 0, 1));
        CtExec {
            zone: 1,
            commit: true,
            nat: Some(crate::CtNat {
                kind: Some(crate::NatKind::Src),
                range: Some(crate::NatRange {
                    family: Family::V4,
                    min: a,
                    max: a,
                    ports,
                }),
                ..crate::CtNat::default()
            }),
            ..CtExec::default()
        }
    }

    fn nat_only() -> CtExec {
        CtExec {
            zone: 1,
            nat: Some(crate::CtNat::default()),
            ..CtExec::default()
        }
    }

    /// Runs `t` on `frame`: the frame after it, its key, its drop.
    fn run_one(t: &CtTracker, frame: &[u8]) -> (Vec<u8>, pipeline::FlowKey, Option<ExecDrop>) {
        let mut pool = PacketPool::new(4);
        let id = parsed(&mut pool, frame);
        let mut drops = [None];
        t.track(&mut pool, &[id], 1, &mut drops, &mut Fragments::default());
        (pool.data(id).to_vec(), pool.meta(id).key, drops[0])
    }

    fn udp4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, df: bool, ident: u16) -> Vec<u8> {
        let ip = Ipv4Repr {
            dont_frag: df,
            ident,
            ..Ipv4Repr::new(src, dst)
        };
        FrameBuilder::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4(ip)
            .udp(sport, dport)
            .build(b"hello")
            .unwrap()
    }

    #[test]
    fn snat_rewrites_addresses_ports_and_checksums_and_replies_come_back() {
        let table = Arc::new(ConnTable::new(crate::CtConfig {
            seed: Some(1),
            ..crate::CtConfig::default()
        }));
        let commit = CtTracker::new(table.clone(), snat_exec(Some((1000, 1000))));
        assert_eq!(
            commit.describe(),
            "ct(commit,zone=1,nat(src=192.168.0.1:1000))"
        );
        let back = CtTracker::new(table.clone(), nat_only());
        assert_eq!(back.describe(), "ct(zone=1,nat)");
        let syn = tcp(1, 2, 40000, 80, 0x02, 1000, 0);
        let (out, key, drop) = run_one(&commit, &syn);
        assert_eq!(drop, None);
        assert_eq!(&out[26..30], &[192, 168, 0, 1], "source address");
        assert_eq!(&out[30..34], &[10, 0, 0, 2]);
        assert_eq!(&out[34..36], &1000u16.to_be_bytes(), "source port");
        // DF set: an atomic datagram keeps its identifier.
        assert_eq!(&out[18..20], &syn[18..20]);
        assert_checksums_v4(&out);
        assert_eq!(
            (key.nw_src, key.tp_src, key.tp_dst),
            (0xc0a8_0001, 1000, 80)
        );
        assert_eq!(
            key.ct_state,
            ct_state::TRACKED | ct_state::NEW | ct_state::SRC_NAT
        );
        // The SYN-ACK to 192.168.0.1:1000 goes back to 10.0.0.1:40000.
        let mut synack = tcp(2, 1, 80, 1000, 0x12, 5000, 1001);
        synack[30..34].copy_from_slice(&[192, 168, 0, 1]);
        let c = pipeline::checksum::checksum(&{
            let mut h = synack[14..34].to_vec();
            h[10..12].copy_from_slice(&[0, 0]);
            h
        });
        synack[24..26].copy_from_slice(&c.to_be_bytes());
        let seg_len = synack.len() - 34;
        synack[50..52].copy_from_slice(&[0, 0]);
        let pseudo =
            pipeline::checksum::pseudo_sum_ipv4(0x0a00_0002, 0xc0a8_0001, 6, seg_len as u32);
        let c = pipeline::checksum::l4_checksum(pseudo, &synack[34..]);
        synack[50..52].copy_from_slice(&c.to_be_bytes());
        assert_checksums_v4(&synack);
        let (out, key, _) = run_one(&back, &synack);
        assert_eq!(&out[30..34], &[10, 0, 0, 1]);
        assert_eq!(&out[36..38], &40000u16.to_be_bytes());
        assert_checksums_v4(&out);
        assert_eq!(
            key.ct_state,
            ct_state::TRACKED | ct_state::ESTABLISHED | ct_state::REPLY | ct_state::DST_NAT
        );
        // A second connection finds the one port taken: dropped as ct-refused.
        let (_, key, drop) = run_one(&commit, &tcp(1, 2, 40001, 80, 0x02, 1000, 0));
        assert_eq!(drop, Some(ExecDrop::CtRefused));
        assert_eq!(key.ct_state & (ct_state::SRC_NAT | ct_state::DST_NAT), 0);
        assert_eq!(table.stats().events.nat_exhausted, 1);
    }

    /// A packet translated by `ct(nat)` meets `ct()` again: in the same zone it finds its
    /// connection by its reversed tuple (OVS `initial_conn_lookup`), so a second commit
    /// changes the connection's mark instead of refusing; in another zone it is new. The key
    /// carries the connection's original tuple either way.
    #[test]
    fn a_translated_packet_finds_its_connection_again_and_carries_the_original_tuple() {
        let table = Arc::new(ConnTable::new(crate::CtConfig {
            seed: Some(1),
            ..crate::CtConfig::default()
        }));
        let snat = CtTracker::new(table.clone(), snat_exec(Some((1000, 1000))));
        let mark = CtTracker::new(
            table.clone(),
            CtExec {
                zone: 1,
                commit: true,
                set_mark: Some((7, 0xff)),
                ..CtExec::default()
            },
        );
        let other_zone = CtTracker::new(
            table.clone(),
            CtExec {
                zone: 2,
                ..CtExec::default()
            },
        );
        let mut pool = PacketPool::new(4);
        let id = parsed(&mut pool, &tcp(1, 2, 40000, 80, 0x02, 1000, 0));
        let mut drops = [None];
        let tuple = |k: &FlowKey| {
            (
                k.ct_nw_src,
                k.ct_nw_dst,
                k.ct_nw_proto,
                k.ct_tp_src,
                k.ct_tp_dst,
            )
        };
        snat.track(&mut pool, &[id], 1, &mut drops, &mut Fragments::default());
        let k = pool.meta(id).key;
        assert_eq!((k.nw_src, k.tp_src), (0xc0a8_0001, 1000), "translated");
        assert_eq!(tuple(&k), (0x0a00_0001, 0x0a00_0002, 6, 40000, 80));
        mark.track(&mut pool, &[id], 2, &mut drops, &mut Fragments::default());
        let k = pool.meta(id).key;
        assert_eq!(drops[0], None);
        assert_eq!(
            k.ct_state,
            ct_state::TRACKED | ct_state::NEW | ct_state::SRC_NAT
        );
        assert_eq!((k.ct_mark, table.len()), (7, 1));
        assert_eq!(tuple(&k), (0x0a00_0001, 0x0a00_0002, 6, 40000, 80));
        other_zone.track(&mut pool, &[id], 3, &mut drops, &mut Fragments::default());
        let k = pool.meta(id).key;
        assert_eq!(
            (k.ct_state, k.ct_zone),
            (ct_state::TRACKED | ct_state::NEW, 2)
        );
        assert_eq!(tuple(&k), (0xc0a8_0001, 0x0a00_0002, 6, 1000, 80));
        // An ICMP echo's tuple has the request's type and code as its ports.
        let ping = FrameBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(Ipv4Repr::new(v4a(10, 0, 0, 1), v4a(10, 0, 0, 2)))
            .icmpv4(pipeline::wire::Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq: 1,
            })
            .build(b"ping")
            .unwrap();
        let (_, k, _) = run_one(&mark, &ping);
        assert_eq!(tuple(&k), (0x0a00_0001, 0x0a00_0002, 1, 8, 0));
    }

    #[test]
    fn a_non_atomic_datagram_gets_a_new_id_and_udp_without_checksum_keeps_none() {
        let table = Arc::new(ConnTable::new(crate::CtConfig {
            seed: Some(1),
            ..crate::CtConfig::default()
        }));
        let commit = CtTracker::new(table.clone(), snat_exec(None));
        let (a, b) = (v4a(10, 0, 0, 1), v4a(10, 0, 0, 2));
        // DF clear: a new identifier, from the counter of (192.168.0.1, 10.0.0.2, UDP).
        let first = udp4(a, 5000, b, 53, false, 0x1234);
        let (out, _, _) = run_one(&commit, &first);
        let id1 = u16::from_be_bytes([out[18], out[19]]);
        assert_ne!(id1, 0x1234);
        assert_checksums_v4(&out);
        let (out, _, _) = run_one(&commit, &udp4(a, 5000, b, 53, false, 0x1234));
        assert_eq!(u16::from_be_bytes([out[18], out[19]]), id1.wrapping_add(1));
        assert_checksums_v4(&out);
        // DF set: kept.
        let (out, _, _) = run_one(&commit, &udp4(a, 5001, b, 53, true, 0x4321));
        assert_eq!(u16::from_be_bytes([out[18], out[19]]), 0x4321);
        assert_checksums_v4(&out);
        // A UDP checksum of zero ("none") stays zero.
        let ip = Ipv4Repr::new(a, b);
        let frame = FrameBuilder::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4(ip)
            .udp_without_checksum(5002, 53)
            .build(b"x")
            .unwrap();
        let (out, _, _) = run_one(&commit, &frame);
        assert_eq!(&out[26..30], &[192, 168, 0, 1]);
        assert_eq!(&out[40..42], &[0, 0]);
        assert_checksums_v4(&out);
    }

    #[test]
    fn an_icmp_error_is_translated_back_with_its_quoted_header() {
        use pipeline::wire::Icmpv4Repr;
        let table = Arc::new(ConnTable::new(crate::CtConfig {
            seed: Some(1),
            ..crate::CtConfig::default()
        }));
        let commit = CtTracker::new(table.clone(), snat_exec(Some((1000, 1000))));
        let back = CtTracker::new(table, nat_only());
        let (client, server) = (v4a(10, 0, 0, 1), v4a(10, 0, 0, 2));
        let (sent, _, _) = run_one(&commit, &udp4(client, 5000, server, 9999, true, 7));
        assert_checksums_v4(&sent);
        // The server's port unreachable quotes the translated datagram.
        let quoted = &sent[14..];
        let err = FrameBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(Ipv4Repr::new(server, v4a(192, 168, 0, 1)))
            .icmpv4(Icmpv4Repr::DstUnreachable {
                code: 3,
                next_hop_mtu: 0,
            })
            .build(quoted)
            .unwrap();
        assert_checksums_v4(&err);
        let (out, key, drop) = run_one(&back, &err);
        assert_eq!(drop, None);
        assert_eq!(
            key.ct_state,
            ct_state::TRACKED | ct_state::RELATED | ct_state::REPLY | ct_state::DST_NAT
        );
        assert_eq!(
            &out[26..30],
            &[10, 0, 0, 2],
            "outer source (the server) kept"
        );
        assert_eq!(&out[30..34], &[10, 0, 0, 1], "outer destination");
        let q = &out[42..];
        assert_eq!(&q[12..16], &[10, 0, 0, 1], "quoted source");
        assert_eq!(&q[16..20], &[10, 0, 0, 2], "quoted destination");
        assert_eq!(&q[20..22], &5000u16.to_be_bytes(), "quoted source port");
        assert_eq!(&q[22..24], &9999u16.to_be_bytes());
        // The quoted datagram is now the one the client sent, checksums and all.
        let orig = udp4(client, 5000, server, 9999, true, 7);
        assert_eq!(q, &orig[14..]);
        assert_checksums_v4(&out);
    }

    #[test]
    fn ipv6_snat_fixes_the_pseudo_header_checksum() {
        use pipeline::wire::Ipv6Repr;
        let table = Arc::new(ConnTable::new(crate::CtConfig::default()));
        let outside: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let exec = CtExec {
            commit: true,
            nat: Some(crate::CtNat {
                kind: Some(crate::NatKind::Src),
                range: Some(crate::NatRange {
                    family: Family::V6,
                    min: CtAddr::from_v6(outside),
                    max: CtAddr::from_v6(outside),
                    ports: Some((2000, 2000)),
                }),
                ..crate::CtNat::default()
            }),
            ..CtExec::default()
        };
        let t = CtTracker::new(table, exec);
        assert_eq!(t.describe(), "ct(commit,nat(src=[2001:db8::1]:2000))");
        let (a, b) = ("fd00::1".parse().unwrap(), "2001:db8:1::2".parse().unwrap());
        let frame = FrameBuilder::ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv6(Ipv6Repr::new(a, b))
            .udp(40000, 53)
            .build(b"query")
            .unwrap();
        let (out, key, _) = run_one(&t, &frame);
        assert_eq!(&out[22..38], &outside.octets());
        assert_eq!(key.ipv6_src, outside.octets());
        assert_eq!(&out[54..56], &2000u16.to_be_bytes());
        let seg = &out[54..];
        let pseudo = pipeline::checksum::pseudo_sum_ipv6(
            &outside.octets(),
            &b.octets(),
            17,
            seg.len() as u32,
        );
        assert_eq!(pipeline::checksum::l4_checksum(pseudo, seg), 0);
    }
}
