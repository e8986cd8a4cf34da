//! Benches of the vhost-user port's data path on one thread, with this process as the
//! guest: `guest_rx` writing a burst of frames into the guest's receive buffers and
//! `guest_tx` taking a burst of frames from its transmit ring, 64 and 1518 bytes, on split
//! rings and on packed ones (`packed_rx`, `packed_tx`).
//!
//! The guest's side is kept to the minimum a DPDK virtio-user driver does in steady state:
//! fixed buffers in its in-order layout; per burst, on a split ring only the available index
//! moves on, on a packed ring the burst's descriptors are rewritten with the round's flags.
//! Everything runs on one core, so these numbers are the ring code and the copies without
//! the cache lines crossing between cores that the vhost-user loop of `benches/vhost/run.sh`
//! adds (BENCHMARKS.md). Criterion times the calls alone (not the guest's side) per burst of
//! 32 and reports packets per second.

// Set-up that fails (no memory for the guest) has nothing to measure: as in the tests.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use vhost_user::guest::GuestMemory;
use vhost_user::packed;
use vhost_user::ring::{
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
/// Packed descriptors' `AVAIL` and `USED` flags.
const F_AVAIL: u16 = 1 << 7;
const F_USED: u16 = 1 << 15;
const HDR: NetHdr = NetHdr {
    len: NET_HDR_LEN,
    mergeable: true,
};

/// Guest memory with a buffer per ring entry, and the length its descriptors give: the
/// buffer's for a receive ring; for a transmit ring, a zeroed header and a frame of
/// `frame_len` bytes, written once.
fn buffers(writable: bool, frame_len: usize) -> (GuestMemoryMmap, u32) {
    let size = DATA + BUF * u64::from(SIZE);
    let mmap =
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size as usize)]).expect("guest memory");
    if writable {
        return (mmap, BUF as u32);
    }
    let frame: Vec<u8> = (0..frame_len).map(|b| b as u8).collect();
    for i in 0..SIZE {
        mmap.write_slice(&frame, GuestAddress(buffer(i) + NET_HDR_LEN as u64))
            .expect("frame");
    }
    (mmap, (NET_HDR_LEN + frame_len) as u32)
}

/// Where entry `i`'s buffer is.
fn buffer(i: u16) -> u64 {
    DATA + BUF * u64::from(i)
}

/// A descriptor's 16 bytes: address, length, then two 16-bit fields (split: flags and
/// next; packed: buffer id and flags).
fn descriptor(addr: u64, len: u32, a: u16, b: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&a.to_le_bytes());
    d[14..16].copy_from_slice(&b.to_le_bytes());
    d
}

/// A ring at DESC, AVAIL and USED (packed: the descriptors and the two event areas) in
/// guest memory, and the device's state of it.
struct Guest {
    mem: GuestMemory,
    state: RingState,
}

impl Guest {
    fn new(mmap: GuestMemoryMmap, packed: bool) -> Guest {
        let mut state = RingState {
            size: SIZE,
            desc: DESC,
            avail: AVAIL,
            used: USED,
            packed,
            ..RingState::default()
        };
        // Index 0 with (packed) wrap counter 1: how rings start.
        state.set_base(if packed { 0x8000 } else { 0 });
        Guest {
            mem: GuestMemory::new(mmap),
            state,
        }
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

/// One split ring in guest memory with every descriptor pointing at a buffer of its own
/// (writable for a receive ring) and available entry `i` naming descriptor `i`.
struct Ring {
    guest: Guest,
    avail_idx: u16,
}

impl Ring {
    fn new(writable: bool, frame_len: usize) -> Ring {
        let (mmap, len) = buffers(writable, frame_len);
        for i in 0..SIZE {
            let flags = if writable { F_WRITE } else { 0 };
            let d = descriptor(buffer(i), len, flags, 0);
            mmap.write_slice(&d, GuestAddress(DESC + 16 * u64::from(i)))
                .expect("descriptor");
            mmap.write_obj(i.to_le(), GuestAddress(AVAIL + 4 + 2 * u64::from(i)))
                .expect("available entry");
        }
        Ring {
            guest: Guest::new(mmap, false),
            avail_idx: 0,
        }
    }

    /// The guest offers the next `n` entries (their descriptors are already in place).
    fn offer(&mut self, n: usize) {
        self.avail_idx = self.avail_idx.wrapping_add(n as u16);
        self.guest
            .mem
            .mmap()
            .write_obj(self.avail_idx.to_le(), GuestAddress(AVAIL + 2))
            .expect("available index");
    }
}

/// One packed ring in guest memory: descriptor `i` always names buffer `i` (id `i`), and
/// the driver makes a burst available by writing its descriptors with the round's flags.
struct PackedRing {
    guest: Guest,
    writable: bool,
    len: u32,
    /// The driver's next descriptor and wrap counter.
    next: u16,
    wrap: bool,
}

impl PackedRing {
    fn new(writable: bool, frame_len: usize) -> PackedRing {
        let (mmap, len) = buffers(writable, frame_len);
        PackedRing {
            guest: Guest::new(mmap, true),
            writable,
            len,
            next: 0,
            wrap: true,
        }
    }

    /// The driver makes its next `n` descriptors available (each one buffer, no chain).
    fn offer(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.next;
            let round = if self.wrap { F_AVAIL } else { F_USED };
            let flags = round | if self.writable { F_WRITE } else { 0 };
            let d = descriptor(buffer(i), self.len, i, flags);
            self.guest
                .mem
                .mmap()
                .write_slice(&d, GuestAddress(DESC + 16 * u64::from(i)))
                .expect("descriptor");
            self.next += 1;
            if self.next == SIZE {
                self.next = 0;
                self.wrap = !self.wrap;
            }
        }
    }
}

/// Benches one call per burst: `burst` offers a burst, runs the call, and returns the
/// frames it moved and the time the call alone took (the guest's side is not timed).
fn bench_bursts(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    len: usize,
    mut burst: impl FnMut() -> (usize, Duration),
) {
    g.bench_function(BenchmarkId::new(name, len), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let (n, t) = burst();
                assert_eq!(n, BURST, "the guest offered a buffer per frame");
                spent += t;
            }
            spent
        })
    });
}

/// Times `f`.
fn timed(f: impl FnOnce() -> usize) -> (usize, Duration) {
    let t = Instant::now();
    let n = f();
    (n, t.elapsed())
}

fn vhost(c: &mut Criterion) {
    let mut g = c.benchmark_group("vhost");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(BURST as u64));
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut got = 0usize;
    let mut c = RingCounters::default();
    for len in [60usize, 1514] {
        let frames: Vec<Vec<u8>> = (0..BURST)
            .map(|k| (0..len).map(|b| (b + k) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        let mut sink = ClosureSink {
            buf: &mut scratch,
            f: &mut |f| got += black_box(f).len(),
        };
        let wire = len + 4;

        let mut rx = Ring::new(true, len);
        bench_bursts(&mut g, "guest_rx", wire, || {
            rx.offer(BURST);
            timed(|| guest_rx(rx.guest.vq(), black_box(&refs), &mut c))
        });
        let mut tx = Ring::new(false, len);
        bench_bursts(&mut g, "guest_tx", wire, || {
            tx.offer(BURST);
            timed(|| guest_tx(tx.guest.vq(), BURST, &mut c, &mut sink))
        });
        let mut rx = PackedRing::new(true, len);
        bench_bursts(&mut g, "packed_rx", wire, || {
            rx.offer(BURST);
            timed(|| packed::guest_rx(rx.guest.vq(), black_box(&refs), &mut c))
        });
        let mut tx = PackedRing::new(false, len);
        bench_bursts(&mut g, "packed_tx", wire, || {
            tx.offer(BURST);
            timed(|| packed::guest_tx(tx.guest.vq(), BURST, &mut c, &mut sink))
        });
    }
    g.finish();
    assert_eq!(c.bad_descriptors + c.tx_dropped, 0);
}

criterion_group!(benches, vhost);
criterion_main!(benches);
