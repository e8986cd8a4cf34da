//! Datapath action execution over any frame the parser accepts.
//!
//! Each fixed action list runs over a batch of two copies of the frame in a small pool. After
//! `execute`: no panic; every packet has a fate (queued, dropped with an `ExecDrop` reason the
//! caller frees, or recirculated with its `recirc_id` set); no packet is queued twice; every
//! frame is accounted for (free + queued == capacity); every queued packet parses (unless a
//! `PopVlan` uncovered a header the parser had not read) to the key and offsets its metadata
//! carries, under either VLAN limit; and an IPv4 header checksum or TCP / UDP /
//! ICMPv6 / SCTP checksum that was right before is still right.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::actions::{execute, ExecTargets};
use pipeline::buffer::NO_OFFSET;
use pipeline::checksum::{crc32c, fold, l4_checksum, pseudo_sum_ipv4, pseudo_sum_ipv6, sum};
use pipeline::flowkey::{ethertype, ipproto, FlowKey};
use pipeline::parse::{parse_packet_limit, VlanLimit};
use pipeline::{Ctx, DpAction, ExecDrop, Next, PacketId, PacketMeta, PacketPool, TxQueues};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
const MAC_B: [u8; 6] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77,
];
const V6_ZERO: [u8; 16] = [0; 16];

/// `(pool frames, recirculation allowed, actions)`; ports 1 and 2 have queues, 3 has none.
fn cases() -> Vec<(u32, bool, Vec<DpAction>)> {
    use DpAction::*;
    vec![
        (
            8,
            false,
            vec![SetEthSrc(MAC_A), SetEthDst(MAC_B), Output(1)],
        ),
        (
            8,
            false,
            vec![
                SetIpv4Src(0x0a00_0063),
                SetIpv4Dst(0xffff_ffff),
                SetTpSrc(0),
                SetTpDst(65535),
                DecTtl,
                Output(2),
            ],
        ),
        (
            8,
            false,
            vec![
                SetIpv6Src(V6),
                SetIpv6Dst(V6_ZERO),
                SetIpDscp(0xb8),
                SetIpEcn(3),
                SetIpTtl(1),
                Output(1),
                DecTtl,
                Output(2),
            ],
        ),
        (
            8,
            false,
            vec![
                PushVlan {
                    tpid: 0x8100,
                    tci: 0x1064,
                },
                Output(1),
                SetVlanVid(4095),
                SetVlanPcp(7),
                PopVlan,
                Output(2),
            ],
        ),
        (
            8,
            false,
            vec![PopVlan, SetVlanVid(7), SetVlanPcp(5), Output(1)],
        ),
        (
            8,
            false,
            vec![
                SetIcmpType(0),
                SetIcmpCode(255),
                SetIpv6Label(0xf_ffff),
                SetNdTarget(V6),
                SetNdSll(MAC_A),
                SetNdTll(MAC_B),
                Output(1),
            ],
        ),
        (
            8,
            false,
            vec![
                PushVlan {
                    tpid: 0x88a8,
                    tci: 5,
                },
                PushVlan {
                    tpid: 0x8100,
                    tci: 6,
                },
                Output(1),
                PushVlan {
                    tpid: 0x8100,
                    tci: 7,
                },
                Output(2),
            ],
        ),
        // Flooding, a port without a queue, and a pool too small for every copy.
        (8, false, vec![Output(1), Output(3), Output(2), Output(1)]),
        (3, false, vec![Output(1), Output(2), Output(1), Output(2)]),
        (8, false, vec![]),
        (8, false, vec![SetEthSrc(MAC_A), DecTtl, DecTtl, DecTtl]),
        (8, false, vec![Output(1), Controller(to_controller()), Output(2)]),
        (8, false, vec![Controller(to_controller())]),
        (
            8,
            true,
            vec![SetIpv4Dst(1), Output(2), Recirc(5), Output(1)],
        ),
        (8, false, vec![Recirc(5)]),
        (
            8,
            false,
            vec![SetTpSrc(1), SetTpDst(2), SetIpEcn(1), PopVlan, Output(1)],
        ),
        // Clones (tunnel outputs are clones): on a copy, on the packet itself when last, with
        // drops inside, recirculation inside (refused), too small a pool for every copy.
        (
            8,
            false,
            vec![Clone(Box::new([SetEthDst(MAC_A), Output(2)])), Output(1)],
        ),
        (
            3,
            false,
            vec![
                Clone(Box::new([Output(1)])),
                Clone(Box::new([SetIpTtl(9), Output(2)])),
                Clone(Box::new([Drop(ExecDrop::TunnelNeighMiss)])),
            ],
        ),
        (
            8,
            false,
            vec![
                Output(1),
                Clone(Box::new([Drop(ExecDrop::TunnelNoRoute)])),
                Drop(ExecDrop::TunnelNeighMiss),
                Output(2),
            ],
        ),
        (
            8,
            true,
            vec![Clone(Box::new([Recirc(5), Output(2)])), Output(3), Output(1)],
        ),
    ]
}

/// Checksum state of a frame: `Some(true)` right, `Some(false)` wrong, `None` not checked.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Csums {
    ipv4: Option<bool>,
    l4: Option<bool>,
}

/// The checksums of `d` with its VLAN tags taken off, so that headers past the VLAN limit
/// are checked too.
fn csums_untagged(d: &[u8]) -> Csums {
    let mut u = d.to_vec();
    while u.len() >= 18 && matches!(u16::from_be_bytes([u[12], u[13]]), 0x8100 | 0x88a8) {
        u.drain(12..16);
    }
    let mut m = PacketMeta::default();
    if parse_packet_limit(&u, &mut m, VlanLimit::MAX).is_err() {
        return Csums {
            ipv4: None,
            l4: None,
        };
    }
    csums(&u, &m)
}

fn csums(d: &[u8], m: &PacketMeta) -> Csums {
    let mut c = Csums {
        ipv4: None,
        l4: None,
    };
    if m.l3_ofs == NO_OFFSET {
        return c;
    }
    let l3 = m.l3_ofs as usize;
    let k = &m.key;
    let (pseudo, end) = match k.dl_type {
        ethertype::IPV4 => {
            let Some(h) = d.get(l3..).filter(|h| h.len() >= 20) else {
                return c;
            };
            let hlen = (h[0] & 0x0f) as usize * 4;
            let Some(hdr) = h.get(..hlen) else { return c };
            c.ipv4 = Some(fold(sum(hdr, 0)) == 0xffff);
            let tot = u16::from_be_bytes([h[2], h[3]]) as usize;
            let seg = (l3 + tot).saturating_sub(m.l4_ofs as usize) as u32;
            (
                pseudo_sum_ipv4(k.nw_src, k.nw_dst, k.nw_proto, seg),
                l3 + tot,
            )
        }
        ethertype::IPV6 => {
            let Some(h) = d.get(l3..l3 + 6) else { return c };
            let end = l3 + 40 + u16::from_be_bytes([h[4], h[5]]) as usize;
            let seg = end.saturating_sub(m.l4_ofs as usize) as u32;
            (
                pseudo_sum_ipv6(&k.ipv6_src, &k.ipv6_dst, k.nw_proto, seg),
                end,
            )
        }
        _ => return c,
    };
    if m.l4_ofs == NO_OFFSET || k.nw_frag != 0 {
        return c;
    }
    let Some(seg) = d.get(m.l4_ofs as usize..end) else {
        return c;
    };
    c.l4 = match k.nw_proto {
        ipproto::TCP => Some(l4_checksum(pseudo, seg) == 0),
        ipproto::UDP if seg.get(6..8) != Some(&[0, 0]) => Some(l4_checksum(pseudo, seg) == 0),
        ipproto::ICMPV6 if k.dl_type == ethertype::IPV6 => Some(l4_checksum(pseudo, seg) == 0),
        ipproto::SCTP if seg.len() >= 12 => {
            let mut s = seg.to_vec();
            let stored = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
            s[8..12].fill(0);
            Some(crc32c(&s) == stored)
        }
        _ => None,
    };
    c
}

/// Fields of the key the datapath actions maintain (everything `parse_packet` writes).
fn parsed_part(k: &FlowKey) -> FlowKey {
    let mut k = *k;
    k.recirc_id = 0;
    k
}

/// A `controller` action with a queue of its own.
fn to_controller() -> pipeline::ToController {
    pipeline::ToController {
        context: std::sync::Arc::new(pipeline::PacketInContext {
            in_port: 1,
            ..pipeline::PacketInContext::default()
        }),
        queue: std::sync::Arc::new(pipeline::PacketInQueue::with_capacity(4)),
    }
}

fuzz_target!(|data: &[u8]| {
    for vlans in [VlanLimit::DEFAULT, VlanLimit::MAX] {
        run(data, vlans);
    }
});

fn run(data: &[u8], vlans: VlanLimit) {
    let mut first = PacketMeta::default();
    if parse_packet_limit(data, &mut first, vlans).is_err() {
        return;
    }
    let before = csums_untagged(data);
    for (case, (frames, recirc, actions)) in cases().into_iter().enumerate() {
        let mut pool = PacketPool::new(frames);
        let mut tx = TxQueues::new(&[1, 2]);
        let mut pkts: Vec<PacketId> = Vec::new();
        for _ in 0..2 {
            let Ok(id) = pool.alloc_with(data) else {
                return; // longer than a frame: the port layer never delivers it
            };
            let (bytes, meta) = pool.data_and_meta_mut(id);
            assert!(
                parse_packet_limit(bytes, meta, vlans).is_ok(),
                "frame parses once but not in the pool"
            );
            pkts.push(id);
        }
        let mut next = [Next::CONSUMED; 2];
        let targets = ExecTargets {
            drop_base: 3,
            recirc_next: recirc.then_some(1),
            vlans,
        };
        {
            let mut cx = Ctx {
                pool: &mut pool,
                tx: &mut tx,
                now_ns: 0,
            };
            execute(&actions, &mut cx, &pkts, &mut next, targets);
        }
        // The caller (the graph) frees drops and takes recirculated packets.
        for (&p, nx) in pkts.iter().zip(next) {
            if let Some(r) = nx.drop_reason() {
                assert!(
                    r >= targets.drop_base
                        && ((r - targets.drop_base) as usize) < ExecDrop::NAMES.len(),
                    "case {case}: drop reason {r} outside the ExecDrop range"
                );
                pool.free(p);
            } else if let Some(n) = nx.next_index() {
                assert!(
                    recirc && n == 1,
                    "case {case}: next index {n} without recirculation"
                );
                assert_eq!(
                    pool.meta(p).key.recirc_id,
                    5,
                    "case {case}: recirc_id not set"
                );
                pool.free(p);
            } else {
                assert_eq!(nx, Next::CONSUMED);
            }
        }
        let mut queued: Vec<PacketId> = Vec::new();
        for port in [1, 2] {
            tx.drain(port, &mut queued);
        }
        assert_eq!(
            pool.available() + queued.len(),
            pool.capacity(),
            "case {case} {actions:?}: frames lost or duplicated (next {next:?})"
        );
        let mut sorted = queued.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            queued.len(),
            "case {case}: a packet is queued twice"
        );
        for &q in &queued {
            let m = *pool.meta(q);
            let mut re = m;
            let r = parse_packet_limit(pool.data(q), &mut re, vlans);
            assert!(
                r.is_ok() || actions.contains(&DpAction::PopVlan),
                "case {case} {actions:?}: output packet no longer parses: {r:?}\n{:02x?}",
                pool.data(q)
            );
            assert_eq!(
                parsed_part(&re.key),
                parsed_part(&m.key),
                "case {case} {actions:?}: key after actions differs from the re-parsed key"
            );
            assert_eq!(
                (re.l3_ofs, re.l4_ofs),
                (m.l3_ofs, m.l4_ofs),
                "case {case} {actions:?}: offsets after actions differ from the re-parsed ones"
            );
            let after = csums_untagged(pool.data(q));
            for (what, b, a) in [
                ("ipv4", before.ipv4, after.ipv4),
                ("l4", before.l4, after.l4),
            ] {
                if b == Some(true) {
                    assert_eq!(
                        a,
                        Some(true),
                        "case {case} {actions:?}: {what} checksum broken\n{:02x?}",
                        pool.data(q)
                    );
                }
            }
        }
    }
}
