//! The vhost-user data path against a guest that writes anything into its rings: split or
//! packed, in order or not, mergeable buffers or not, a burst of transmits (`guest_tx`) and
//! receives (`guest_rx`) over descriptors, indexes and flags taken from the input. Guest
//! memory is two 32 KiB regions, contiguous in guest addresses but separate host mappings,
//! each between two inaccessible pages: a read or write of the switch past a region ends the
//! run with SIGSEGV instead of going unseen. Checked after every burst: no panic; every frame
//! is accounted for exactly once in the counters; what `guest_tx` hands over is at most
//! `MAX_FRAME` bytes per frame and adds up to `rx_bytes`.
#![no_main]

use std::sync::OnceLock;

use vhost_user::guest::GuestMemory;
use vhost_user::packed;
use vhost_user::ring::{
    guest_rx, guest_tx, ClosureSink, NetHdr, RingCounters, RingState, Vq, LEGACY_NET_HDR_LEN,
    MAX_FRAME, NET_HDR_LEN,
};
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

/// Bytes per region; the two regions are guest addresses `[0, 2 * REGION)`.
const REGION: usize = 32 << 10;
const PAGE: usize = 4096;
/// Where the ring's three areas are: the descriptors (a 256-entry split table or packed
/// ring fits below `AVAIL`), the available ring (packed: the driver's event area) and the
/// used ring (packed: the device's event area). Buffers may be anywhere, the rings included.
const DESC: u64 = 0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;
/// Input bytes before the memory image: the ring's set-up and the bursts.
const HEAD: usize = 8 + 4 * OPS;
const OPS: usize = 6;

/// One region of `REGION` bytes at `gpa`, with an inaccessible page on each side (mapped
/// once per process and never unmapped).
fn guarded_region(gpa: u64) -> GuestRegionMmap {
    let total = REGION + 2 * PAGE;
    // SAFETY: a fresh anonymous mapping that nothing else refers to; only its middle is made
    // accessible, and it is never unmapped, so the pointer handed to `build_raw` stays valid
    // for `REGION` bytes for the life of the process.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        let inner = base.cast::<u8>().add(PAGE);
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        assert_eq!(libc::mprotect(inner.cast(), REGION, rw), 0, "mprotect");
        let region =
            MmapRegion::build_raw(inner, REGION, rw, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS)
                .expect("build_raw");
        GuestRegionMmap::new(region, GuestAddress(gpa)).expect("region")
    }
}

fn memory() -> &'static GuestMemory {
    static MEM: OnceLock<GuestMemory> = OnceLock::new();
    MEM.get_or_init(|| {
        let regions = vec![guarded_region(0), guarded_region(REGION as u64)];
        GuestMemory::new(GuestMemoryMmap::from_regions(regions).expect("regions"))
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEAD {
        return;
    }
    let (head, image) = data.split_at(HEAD);
    let mem = memory();
    // The guest's memory as the input has it, zero past its end.
    let mut bytes = vec![0u8; 2 * REGION];
    let n = image.len().min(bytes.len());
    bytes[..n].copy_from_slice(&image[..n]);
    mem.mmap()
        .write_slice(&bytes, GuestAddress(0))
        .expect("write image");

    let flags = head[0];
    let is_packed = flags & 1 != 0;
    let hdr = NetHdr {
        len: if flags & 8 != 0 {
            LEGACY_NET_HDR_LEN
        } else {
            NET_HDR_LEN
        },
        mergeable: flags & 4 != 0,
    };
    let size = if is_packed {
        u16::from(head[1] % 64) + 1
    } else {
        1u16 << (head[1] % 9)
    };
    let mut ring = RingState {
        size,
        desc: DESC,
        avail: AVAIL,
        used: USED,
        packed: is_packed,
        in_order: flags & 2 != 0,
        ..RingState::default()
    };
    let base = u16::from_le_bytes([head[2], head[3]]);
    if is_packed {
        // The index within the ring, the wrap counter in bit 15.
        ring.set_base((base % size) | (base & 0x8000));
    } else {
        ring.set_base(base);
    }
    ring.next_head = u16::from_le_bytes([head[4], head[5]]);

    let mut c = RingCounters::default();
    let mut scratch = vec![0u8; MAX_FRAME];
    for op in head[8..].chunks_exact(4) {
        let before = c;
        if op[0] & 1 == 0 {
            // The guest transmits: up to `max` of its chains come out.
            let max = usize::from(op[1]) + 1;
            let mut got: Vec<usize> = Vec::new();
            let vq = Vq {
                ring: &mut ring,
                mem,
                call: None,
                hdr,
            };
            let mut sink = ClosureSink {
                buf: &mut scratch,
                f: &mut |f: &[u8]| got.push(f.len()),
            };
            let handed = if is_packed {
                packed::guest_tx(vq, max, &mut c, &mut sink)
            } else {
                guest_tx(vq, max, &mut c, &mut sink)
            };
            assert_eq!(handed, got.len());
            assert_eq!(c.rx_frames - before.rx_frames, handed as u64);
            assert!(got.iter().all(|&len| len <= MAX_FRAME));
            let bytes: u64 = got.iter().map(|&len| len as u64).sum();
            assert_eq!(c.rx_bytes - before.rx_bytes, bytes);
            let chains = (c.rx_frames + c.rx_too_long + c.rx_runts + c.bad_descriptors)
                - (before.rx_frames
                    + before.rx_too_long
                    + before.rx_runts
                    + before.bad_descriptors);
            assert!(chains <= max as u64, "{chains} chains for a burst of {max}");
        } else {
            // The switch sends `count` frames of one length (up to past `MAX_FRAME`).
            let count = usize::from(op[1] % 80);
            let len = usize::from(u16::from_le_bytes([op[2], op[3]])) % (MAX_FRAME + 64);
            // One frame, sent `count` times (building each apart cost most of a run).
            let one: Vec<u8> = (0..len).map(|k| k as u8).collect();
            let refs: Vec<&[u8]> = vec![&one; count];
            let vq = Vq {
                ring: &mut ring,
                mem,
                call: None,
                hdr,
            };
            let taken = if is_packed {
                packed::guest_rx(vq, &refs, &mut c)
            } else {
                guest_rx(vq, &refs, &mut c)
            };
            let outcome = |c: &RingCounters| c.tx_frames + c.tx_too_long + c.bad_descriptors;
            assert_eq!(outcome(&c) - outcome(&before), taken as u64);
            assert_eq!(
                (outcome(&c) + c.tx_dropped) - (outcome(&before) + before.tx_dropped),
                count as u64,
                "every frame counted once"
            );
            assert_eq!(
                c.tx_bytes - before.tx_bytes,
                (c.tx_frames - before.tx_frames) * len as u64
            );
        }
    }
    // What the bursts did, for checking that a seed reaches the paths it was made for.
    if std::env::var_os("VHOST_RING_DEBUG").is_some() {
        eprintln!("{c:?}");
    }
});
