//! The datapath's `ct()` action: [`CtTracker`] runs one resolved `ct()` (zone, commit, what
//! to set) over the shared [`ConnTable`] for a group of packets, as the `pipeline`'s
//! [`Track`]. [`ct_packet`] reads what the tracker needs from a parsed packet: the key's
//! 5-tuple, and from the bytes the TCP sequence numbers, window, window-scale option and
//! payload length, the ICMP identifier, and the header an ICMP error quotes. A packet of a
//! NAT'ed connection is rewritten (`rewrite.rs`) when the action has a `nat`.

use std::sync::Arc;

use pipeline::buffer::NO_OFFSET;
use pipeline::flowkey::{ct_state, ethertype, ipproto};
use pipeline::{ExecDrop, PacketId, PacketMeta, PacketPool, Track};

use crate::key::CtAddr;
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
    ) {
        const NAT_BITS: u8 = ct_state::SRC_NAT | ct_state::DST_NAT;
        for (&p, drop) in pkts.iter().zip(drops.iter_mut()) {
            let (data, meta) = pool.data_and_meta_mut(p);
            let (before, before_zone) = (meta.key.ct_state, meta.key.ct_zone);
            let (state, mark, label) = match ct_packet(data, meta) {
                Some(pkt) => {
                    let out = self.table.execute(&pkt, &self.exec, now_ns);
                    if matches!(
                        out.event,
                        CtEvent::TableFull
                            | CtEvent::ZoneFull
                            | CtEvent::NatExhausted
                            | CtEvent::ReplyTaken
                    ) {
                        *drop = Some(ExecDrop::CtRefused);
                    }
                    let mut state = out.state;
                    if let Some(nat) = out.nat {
                        // OVS `handle_nat`: a packet translated in this zone already is
                        // not translated again.
                        if before & NAT_BITS != 0 && before_zone == self.exec.zone {
                            state = (state & !NAT_BITS) | (before & NAT_BITS);
                        } else {
                            let table = &self.table;
                            let _ = rewrite(data, meta, &nat, |s, d, proto| {
                                table.next_ip_id(s, d, proto)
                            });
                        }
                    }
                    (state, out.mark, out.label)
                }
                // Not trackable (a later fragment, a non-IP frame): invalid, as in OVS.
                None => (ct_state::TRACKED | ct_state::INVALID, 0, 0),
            };
            let k = &mut meta.key;
            k.ct_state = state;
            k.ct_zone = self.exec.zone;
            k.ct_mark = mark;
            k.ct_label = label.to_be_bytes();
        }
    }

    fn describe(&self) -> String {
        self.text.clone()
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*d.get(at..)?.first_chunk::<2>()?))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*d.get(at..)?.first_chunk::<4>()?))
}

/// The tracker's view of a parsed packet (`data` its bytes, `meta` its key and offsets);
/// `None` when it has none (not IP, a later fragment, an L4 header the parser did not find).
pub fn ct_packet(data: &[u8], meta: &PacketMeta) -> Option<CtPacket> {
    let key = &meta.key;
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
            t.track(&mut pool, &[id], 1, &mut drops);
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
}
