//! The connection table over arbitrary traffic: the input is a stream of packets (each from a
//! few hosts and ports, so that directions meet; TCP flags, sequence numbers, windows, window
//! scale, payload, ICMP types and quoted headers as the bytes say), each tracked in a zone
//! with or without commit at a time that moves forward, with sweeps and flushes in between;
//! and, from the same bytes, a frame parsed and tracked through the datapath's `ct()`
//! (`CtTracker`, which reads TCP and ICMP fields from the packet itself).
//!
//! Properties: no panic; every outcome is `+trk` and never `+new+est`; after every input the
//! table's invariants hold (every connection found by both keys in its shard, the counts of
//! the table and of each zone agree) and its limits are kept. The rule text of `ct(...)` is
//! fuzzed by the `parse_flow` target.
#![no_main]

use std::sync::Arc;

use conntrack::{
    ConnTable, CtAddr, CtConfig, CtExec, CtPacket, CtTracker, Family, IcmpHeader, QuotedHeader,
    TcpSegment,
};
use libfuzzer_sys::fuzz_target;
use pipeline::flowkey::ct_state::{ESTABLISHED, NEW, TRACKED};
use pipeline::{parse_packet_limit, Fragments, PacketPool, Track, VlanLimit};

/// Reads the input a byte at a time (zeros past its end).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[usize::from(self.u8()) % xs.len()]
    }
}

const SEC: u64 = 1_000_000_000;

fn hosts() -> [CtAddr; 4] {
    [
        CtAddr::from_v4_bits(0x0a00_0001),
        CtAddr::from_v4_bits(0x0a00_0002),
        CtAddr([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        CtAddr([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
    ]
}

fn packet(b: &mut Bytes<'_>) -> CtPacket {
    let h = hosts();
    let v6 = b.u8() & 1 == 1;
    let (src, dst) = if v6 {
        (b.pick(&h[2..]), b.pick(&h[2..]))
    } else {
        (b.pick(&h[..2]), b.pick(&h[..2]))
    };
    let family = if v6 { Family::V6 } else { Family::V4 };
    let port = |b: &mut Bytes<'_>| b.pick(&[0u16, 80, 40000, 40001]);
    let quoted = (b.u8() & 1 == 1).then(|| QuotedHeader {
        src: b.pick(&h),
        dst: b.pick(&h),
        proto: b.pick(&[6u8, 17, 1, 58]),
        l4: [b.u8(), b.u8(), b.u8(), b.u8(), b.u8(), b.u8(), b.u8(), b.u8()],
        l4_len: u16::from(b.u8() % 16),
    });
    CtPacket {
        family,
        src,
        dst,
        proto: b.pick(&[6u8, 6, 17, 1, 58, 132, 47]),
        sport: port(b),
        dport: port(b),
        tcp: TcpSegment {
            flags: u16::from(b.u8() & 0x3f),
            seq: b.u32(),
            ack: b.u32(),
            window: b.u16(),
            wscale: b.pick(&[None, Some(0), Some(7), Some(14), Some(255)]),
            payload_len: b.pick(&[0, 1, 1460, u32::MAX]),
        },
        icmp: IcmpHeader {
            icmp_type: b.u8(),
            code: b.u8() % 3,
            id: b.pick(&[1u16, 2]),
            quoted,
        },
        // As the table test draws it: now and then a packet an earlier ct(nat) translated.
        natted: b.u8() & 7 == 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let table = Arc::new(ConnTable::new(CtConfig {
        max_conns: 16,
        ..CtConfig::default()
    }));
    table.set_zone_limit(1, Some(4));
    let mut b = Bytes(data);
    let mut now = 0u64;
    while !b.0.is_empty() {
        now += u64::from(b.u8()) * SEC / 4;
        let pkt = packet(&mut b);
        let zone = u16::from(b.u8() % 3);
        let commit = b.u8() & 1 == 1;
        let out = table.process(&pkt, zone, commit, now);
        assert!(out.state & TRACKED != 0, "{out:?}");
        assert!(out.state & (NEW | ESTABLISHED) != NEW | ESTABLISHED, "{out:?}");
        match b.u8() % 32 {
            0 => {
                table.sweep(now, usize::from(b.u8()));
            }
            1 => {
                table.flush(Some(zone));
            }
            2 => now += 100_000 * SEC,
            _ => {}
        }
    }
    // The same bytes as frames (cut at each 0xde 0xad), tracked in turn by the datapath's
    // ct() (TCP and ICMP fields read from the packet): IP fragments among them are held,
    // and reassembled when they complete a datagram.
    let mut pool = PacketPool::new(64);
    let ct = CtTracker::new(
        table.clone(),
        CtExec {
            zone: 1,
            commit: true,
            set_mark: Some((1, 0xff)),
            ..CtExec::default()
        },
    );
    let mut rest = data;
    while !rest.is_empty() {
        let cut = rest.windows(2).position(|w| w == [0xde, 0xad]);
        let (frame, next) = match cut {
            Some(at) => (&rest[..at], &rest[at + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let Ok(id) = pool.alloc_with(frame) else {
            continue;
        };
        let (bytes, meta) = pool.data_and_meta_mut(id);
        if parse_packet_limit(bytes, meta, VlanLimit::DEFAULT).is_err() {
            pool.free(id);
            continue;
        }
        let mut drops = [None];
        let mut frags = Fragments::default();
        ct.track(&mut pool, &[id], now, &mut drops, &mut frags);
        if frags.held.is_empty() {
            assert!(pool.meta(id).key.ct_state & TRACKED != 0);
        }
        pool.free(id);
        for (p, _) in frags.released {
            assert!(pool.meta(p).key.ct_state & TRACKED != 0);
            pool.free(p);
        }
    }
    table.sweep(now + 16 * SEC, usize::MAX);
    assert_eq!(table.ipf().status().frags, 0, "expired fragments left");
    if let Err(e) = table.check_invariants() {
        panic!("invariants broken: {e}");
    }
    assert!(table.len() <= 16 && table.zone_count(1) <= 4);
});
