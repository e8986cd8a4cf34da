//! Benches of the vhost-user port's split-ring data path on one thread, with this process
//! as the guest: `guest_rx` writing a burst of frames into the guest's receive buffers and
//! `guest_tx` taking a burst of frames from its transmit ring, 64 and 1518 bytes.
//!
//! The guest's side is kept to the minimum a DPDK virtio-user driver does in steady state:
//! fixed descriptors and available entries (its in-order layout), and per burst only the
//! available index moving on. Everything runs on one core, so these numbers are the ring
//! code and the copies without the cache lines crossing between cores that the vhost-user
//! loop of `benches/vhost/run.sh` adds (BENCHMARKS.md). Criterion reports packets per second;
//! each bench also prints ns/packet.

// Set-up that fails (no memory for the guest) has nothing to measure: as in the tests.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datapath::ports::vhost::guest::GuestMemory;
use datapath::ports::vhost::ring::{
    guest_rx, guest_tx, ClosureSink, NetHdr, RingCounters, RingState, Vq, MAX_FRAME, NET_HDR_LEN,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Ring entries (DPDK's virtio-user default) and the burst of every call.
const SIZE: u16 = 256;
const BURST: usize = 32;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
/// Buffers of 2 KiB + 128 (a DPDK mbuf's data room plus headroom), one per descriptor.
const DATA: u64 = 0x10_0000;
const BUF: u64 = 2176;
const F_WRITE: u16 = 2;
const HDR: NetHdr = NetHdr {
    len: NET_HDR_LEN,
    mergeable: true,
};

/// One split ring in guest memory with every descriptor pointing at a buffer of its own
/// (writable for a receive ring) and available entry `i` naming descriptor `i`.
struct Ring {
    mem: GuestMemory,
    state: RingState,
    avail_idx: u16,
}

impl Ring {
    fn new(writable: bool, frame_len: usize) -> Ring {
        let size = DATA + BUF * u64::from(SIZE);
        let mmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size as usize)])
            .expect("guest memory");
        for i in 0..SIZE {
            let addr = DATA + BUF * u64::from(i);
            // A transmit chain holds a zeroed header and the frame; a receive one is empty.
            let len = if writable {
                BUF as u32
            } else {
                (NET_HDR_LEN + frame_len) as u32
            };
            let mut d = [0u8; 16];
            d[0..8].copy_from_slice(&addr.to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            d[12..14].copy_from_slice(&(if writable { F_WRITE } else { 0 }).to_le_bytes());
            mmap.write_slice(&d, GuestAddress(DESC + 16 * u64::from(i)))
                .expect("descriptor");
            mmap.write_obj(i.to_le(), GuestAddress(AVAIL + 4 + 2 * u64::from(i)))
                .expect("available entry");
            if !writable {
                let frame: Vec<u8> = (0..frame_len).map(|b| b as u8).collect();
                mmap.write_slice(&frame, GuestAddress(addr + NET_HDR_LEN as u64))
                    .expect("frame");
            }
        }
        let state = RingState {
            size: SIZE,
            desc: DESC,
            avail: AVAIL,
            used: USED,
            ..RingState::default()
        };
        Ring {
            mem: GuestMemory::new(mmap),
            state,
            avail_idx: 0,
        }
    }

    /// The guest offers the next `n` entries (their descriptors are already in place).
    fn offer(&mut self, n: usize) {
        self.avail_idx = self.avail_idx.wrapping_add(n as u16);
        self.mem
            .mmap()
            .write_obj(self.avail_idx.to_le(), GuestAddress(AVAIL + 2))
            .expect("available index");
    }

    fn vq(&mut self) -> Vq<'_> {
        Vq {
            ring: &mut self.state,
            mem: &self.mem,
            call: None,
            hdr: HDR,
        }
    }
}

fn report(name: &str, packets: u64, elapsed: Duration) {
    if packets > 0 {
        let ns = elapsed.as_nanos() as f64 / packets as f64;
        println!("{name}: {ns:.1} ns/packet");
    }
}

fn vhost(c: &mut Criterion) {
    let mut g = c.benchmark_group("vhost");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(BURST as u64));
    for len in [60usize, 1514] {
        let frames: Vec<Vec<u8>> = (0..BURST)
            .map(|k| (0..len).map(|b| (b + k) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        let mut rx = Ring::new(true, len);
        let mut c = RingCounters::default();
        let (mut packets, mut spent) = (0u64, Duration::ZERO);
        g.bench_function(BenchmarkId::new("guest_rx", len + 4), |b| {
            b.iter(|| {
                rx.offer(BURST);
                let t = Instant::now();
                let n = guest_rx(rx.vq(), black_box(&refs), &mut c);
                spent += t.elapsed();
                packets += n as u64;
                assert_eq!(n, BURST, "the guest offered a buffer per frame");
            })
        });
        report(&format!("guest_rx {} B", len + 4), packets, spent);

        let mut tx = Ring::new(false, len);
        let mut scratch = vec![0u8; MAX_FRAME];
        let mut got = 0usize;
        let (mut packets, mut spent) = (0u64, Duration::ZERO);
        g.bench_function(BenchmarkId::new("guest_tx", len + 4), |b| {
            b.iter(|| {
                tx.offer(BURST);
                let mut sink = ClosureSink {
                    buf: &mut scratch,
                    f: &mut |f| got += black_box(f).len(),
                };
                let t = Instant::now();
                let n = guest_tx(tx.vq(), BURST, &mut c, &mut sink);
                spent += t.elapsed();
                packets += n as u64;
                assert_eq!(n, BURST, "the guest offered a chain per frame");
            })
        });
        report(&format!("guest_tx {} B", len + 4), packets, spent);
        assert_eq!(c.bad_descriptors + c.tx_dropped, 0);
    }
    g.finish();
}

criterion_group!(benches, vhost);
criterion_main!(benches);
