//! Guest memory as the PMD touches it: a table of the mapped regions (guest physical start,
//! length, host address) and the split ring's fields in it, read and written with raw-pointer
//! copies and atomics after one bounds check per buffer. vm-memory owns the mappings (built by
//! the protocol thread in `device.rs`) and still serves the rare buffer that straddles two
//! regions, but its checked accessors are not on the per-packet path: they walk a slice
//! iterator per access, and in the vhost-user loop (`benches/vhost`) they took 60 % of the
//! PMD's cycles, over 1,000 cycles per packet. This is the only module of the port with
//! `unsafe`; every block relies on one invariant, stated on [`GuestMemory`].
//!
//! A guest that shrinks a memory file after the switch mapped it (`ftruncate` on its memfd or
//! hugetlbfs file) would make the next access to the lost pages raise SIGBUS and kill the
//! switch, as it would QEMU or DPDK's vhost library. DPDK creates its memfds without
//! `MFD_ALLOW_SEALING`, so the switch cannot seal them; instead a SIGBUS handler (installed
//! with the first guest memory) maps zero pages over a faulting page that lies in guest
//! memory, counts the fault for that memory, and returns: the access completes, reading
//! zeros or writing into the void, and the port stops its rings until the guest sets them up
//! again ([`GuestMemory::faults`]). A SIGBUS anywhere else gets the default action.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{fence, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend as _, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

/// One mapped region.
#[derive(Clone, Copy, Debug)]
struct HostRegion {
    start: u64,
    len: u64,
    host: *mut u8,
}

/// A guest's memory: vm-memory's mappings plus the table the data path translates with.
///
/// Invariant: every `host` pointer is the start of the mapping of `len` bytes that `mmap`
/// owns, and `mmap` lives exactly as long as the table (both are private to this struct and
/// never replaced). So a pointer translated from an address inside a region stays valid for
/// as long as the `&GuestMemory` it came from.
pub struct GuestMemory {
    mmap: GuestMemoryMmap,
    regions: Vec<HostRegion>,
    /// The SIGBUS guards of the regions (indexes into [`GUARDS`]).
    guards: Vec<usize>,
}

// SAFETY: the raw pointers point into the mappings owned by `mmap` (which is Send and Sync
// itself); they are only used for raw copies and atomic accesses, never to form references,
// exactly as vm-memory's own accessors use them.
unsafe impl Send for GuestMemory {}
// SAFETY: as for Send: no method hands out a reference into guest memory.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Takes over `mmap` and tabulates its regions, each guarded against SIGBUS (while
    /// guard slots last: [`GUARD_SLOTS`]).
    pub fn new(mmap: GuestMemoryMmap) -> GuestMemory {
        INSTALL.call_once(install_sigbus_handler);
        let mut regions = Vec::new();
        let mut guards = Vec::new();
        for r in mmap.iter() {
            if let Ok(host) = r.get_host_address(MemoryRegionAddress(0)) {
                regions.push(HostRegion {
                    start: r.start_addr().0,
                    len: r.len(),
                    host,
                });
                guards.extend(Guard::claim(host as usize, r.len() as usize));
            }
        }
        GuestMemory {
            mmap,
            regions,
            guards,
        }
    }

    /// Accesses that found a page gone from under the guest's memory (SIGBUS) since it was
    /// mapped. Nonzero means the guest shrank its memory: its rings must stop.
    pub fn faults(&self) -> u64 {
        self.guards
            .iter()
            .map(|&g| GUARDS[g].faults.load(Ordering::Relaxed))
            .sum()
    }

    /// vm-memory's view, for the control plane and tests.
    pub fn mmap(&self) -> &GuestMemoryMmap {
        &self.mmap
    }

    /// `len` bytes at `gpa`, for the ring tests (panics outside guest memory).
    #[cfg(test)]
    pub(super) fn bytes(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.mmap.read_slice(&mut out, GuestAddress(gpa)).unwrap();
        out
    }

    /// The host address of `[gpa, gpa + len)` when one region holds all of it.
    #[inline]
    fn host(&self, gpa: u64, len: usize) -> Option<*mut u8> {
        let len = len as u64;
        for r in &self.regions {
            let off = gpa.wrapping_sub(r.start);
            if off < r.len && len <= r.len - off {
                // In bounds of the region's mapping: `off + len <= r.len`.
                return Some(r.host.wrapping_add(off as usize));
            }
        }
        None
    }

    /// The `len` bytes at `gpa`, to be written later, when they lie inside one mapping
    /// (None otherwise: [`GuestMemory::write`] handles the rest).
    #[inline]
    pub fn span(&self, gpa: u64, len: usize) -> Option<GuestSpan<'_>> {
        self.host(gpa, len).map(|ptr| GuestSpan {
            ptr,
            len,
            _mem: PhantomData,
        })
    }

    /// Asks the CPU to start loading the cache line of `gpa` (nothing if it is outside guest
    /// memory). The guest wrote the frame and its descriptors on another core, so every first
    /// touch misses; issuing the misses of a whole burst before touching any overlaps them.
    #[inline]
    pub fn prefetch(&self, gpa: u64) {
        if let Some(p) = self.host(gpa, 1) {
            prefetch(p);
        }
    }

    /// As [`GuestMemory::prefetch`], for a line about to be written: the line is fetched
    /// owned, saving the second round trip a write after a plain prefetch costs.
    #[inline]
    pub fn prefetch_write(&self, gpa: u64) {
        if let Some(p) = self.host(gpa, 1) {
            prefetch_write(p);
        }
    }

    /// Copies guest bytes at `gpa` into `dst`; false if any of them is outside guest memory.
    #[inline]
    pub fn read(&self, gpa: u64, dst: &mut [u8]) -> bool {
        match self.host(gpa, dst.len()) {
            // SAFETY: `host` checked that the `dst.len()` bytes lie inside one live mapping
            // (the struct's invariant); `dst` is our own buffer, so the two cannot overlap.
            // The guest may write these bytes meanwhile (a buggy or hostile guest); the copy
            // then reads some mix of old and new bytes, which the parser treats as any frame.
            Some(src) => unsafe {
                ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len());
                true
            },
            None => self.mmap.read_slice(dst, GuestAddress(gpa)).is_ok(),
        }
    }

    /// Copies `src` into guest memory at `gpa`; false if any byte is outside guest memory.
    #[inline]
    pub fn write(&self, gpa: u64, src: &[u8]) -> bool {
        match self.host(gpa, src.len()) {
            // SAFETY: as in `read`, with the roles swapped: the destination is inside one
            // live mapping and `src` is ours.
            Some(dst) => unsafe {
                ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
                true
            },
            None => self.mmap.write_slice(src, GuestAddress(gpa)).is_ok(),
        }
    }

    /// As [`GuestMemory::write`] for a few bytes (at most [`SMALL_WRITE`]) that are often
    /// there already, such as a receive buffer's `virtio_net_hdr`: it writes only when they
    /// differ ([`copy_if_changed`]).
    #[inline]
    pub fn write_if_changed(&self, gpa: u64, src: &[u8]) -> bool {
        if src.len() > SMALL_WRITE {
            return self.write(gpa, src);
        }
        match self.host(gpa, src.len()) {
            // SAFETY: `host` checked that the bytes lie inside one live mapping; `src` is
            // ours, so the two cannot overlap.
            Some(dst) => unsafe {
                copy_if_changed(dst, src);
                true
            },
            None => self.mmap.write_slice(src, GuestAddress(gpa)).is_ok(),
        }
    }
}

/// The most bytes [`copy_if_changed`] compares before writing.
pub const SMALL_WRITE: usize = 16;

/// Copies `src` (at most [`SMALL_WRITE`] bytes) to `dst` unless the bytes there are equal
/// already. A line both cores only read stays in both caches, where a write would take it
/// from the guest's and make the guest's next read of it miss (DPDK's vhost library and
/// virtio driver leave equal header fields alone for the same reason).
///
/// # Safety
///
/// `dst` must be valid for reads and writes of `src.len()` bytes and must not overlap
/// `src`. The guest may change those bytes between the read and the write: it does not own
/// a buffer or a used entry while the device may still write it, and what it reads there
/// then is its own doing.
#[inline]
unsafe fn copy_if_changed(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    debug_assert!(n <= SMALL_WRITE);
    // SAFETY: both reads stay inside the `n` bytes of `dst` and of `src` (the caller's
    // contract for `dst`).
    let same = unsafe {
        if n >= 8 {
            // Two 8-byte loads that overlap cover 8 to 16 bytes (no memcmp call).
            let word = |p: *const u8, at: usize| ptr::read_unaligned(p.add(at).cast::<u64>());
            let s = src.as_ptr();
            word(dst, 0) == word(s, 0) && word(dst, n - 8) == word(s, n - 8)
        } else {
            let mut now = [0u8; 8];
            ptr::copy_nonoverlapping(dst, now.as_mut_ptr(), n);
            now[..n] == *src
        }
    };
    if !same {
        // SAFETY: the caller's contract.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, n) };
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // Before `mmap` unmaps the regions (fields drop after this).
        for &g in &self.guards {
            GUARDS[g].release();
        }
    }
}

/// Guest memory mappings the SIGBUS handler may repair at once (one per region; DPDK
/// frontends send at most 8, QEMU's vhost-user up to 509 with hot-plugged memory).
pub const GUARD_SLOTS: usize = 256;

/// One guarded mapping: host start address (0: free slot), length and faults.
struct Guard {
    start: AtomicUsize,
    len: AtomicUsize,
    faults: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE_GUARD: Guard = Guard {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicU64::new(0),
};

/// The guarded mappings, read by the signal handler without locks.
static GUARDS: [Guard; GUARD_SLOTS] = [FREE_GUARD; GUARD_SLOTS];
static INSTALL: Once = Once::new();
/// The SIGBUS action before ours, which a fault outside guest memory goes back to.
static PREVIOUS: OnceLock<SavedAction> = OnceLock::new();

struct SavedAction(libc::sigaction);
// SAFETY: a plain C struct of a handler address, flags and a signal mask, only copied.
unsafe impl Sync for SavedAction {}
// SAFETY: as for Sync.
unsafe impl Send for SavedAction {}

impl Guard {
    /// Guards `[start, start + len)`; `None` when every slot is taken (the region is then
    /// unguarded, as every mapping is without this handler).
    fn claim(start: usize, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        GUARDS.iter().position(|g| {
            // A slot is claimed by setting its length first; the start, set last, makes it
            // visible to the handler.
            g.len
                .compare_exchange(0, len, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
                && {
                    g.faults.store(0, Ordering::Relaxed);
                    g.start.store(start, Ordering::Release);
                    true
                }
        })
    }

    fn release(&self) {
        self.start.store(0, Ordering::Release);
        self.len.store(0, Ordering::Release);
    }
}

fn install_sigbus_handler() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler has
    // the SA_SIGINFO signature and only calls async-signal-safe system calls (mmap,
    // sigaction) and atomics.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &sa, &mut old) == 0 {
            let _ = PREVIOUS.set(SavedAction(old));
        }
    }
}

/// The SIGBUS handler: a fault inside a guarded guest mapping gets zero pages mapped over its
/// page (4 KiB, or the 2 MiB or 1 GiB page of a hugetlbfs mapping, where a smaller fixed
/// mapping is refused) and is counted; the access then completes. Any other SIGBUS puts the
/// action before ours back (the default: the process dies), and the access faults again.
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; for SIGBUS its
    // address field is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    for g in &GUARDS {
        let start = g.start.load(Ordering::Acquire);
        let len = g.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr - start >= len {
            continue;
        }
        for page in [4usize << 10, 2 << 20, 1 << 30] {
            let at = addr & !(page - 1);
            if at < start || at + page > start + len {
                continue;
            }
            // SAFETY: [at, at + page) lies inside a guest mapping this process owns (the
            // guard is released before it is unmapped, and the faulting thread holds the
            // GuestMemory it reads through); replacing those pages with anonymous zero pages
            // only changes what the guest shares with us there, which it gave up.
            let p = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                g.faults.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    // SAFETY: the saved action is what sigaction gave back (or SIG_DFL, zeroed); both are
    // valid to install.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let previous = PREVIOUS.get().map_or(&dfl, |p| &p.0);
        libc::sigaction(libc::SIGBUS, previous, ptr::null_mut());
    }
}

#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
    // SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// PREFETCHW: the line is fetched owned (exclusive), so the write that follows needs no
/// second round trip to take it from the core that shared it. `_mm_prefetch` with
/// `_MM_HINT_ET0` is not this: without the `prfchw` target feature (not in the x86_64
/// baseline) LLVM lowers it to a plain PREFETCHT0. The instruction is run as a NOP by x86
/// CPUs older than it (Intel before Broadwell), so it needs no feature check.
#[inline]
fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, and it neither reads into the program
    // nor writes memory.
    unsafe {
        std::arch::asm!(
            "prefetchw [{}]",
            in(reg) p,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bytes of guest memory inside one live mapping, checked once and written later; it
/// borrows the [`GuestMemory`], so the mapping outlives it.
pub struct GuestSpan<'m> {
    ptr: *mut u8,
    len: usize,
    _mem: PhantomData<&'m GuestMemory>,
}

impl GuestSpan<'_> {
    /// Copies `src` into the span, as much of it as fits.
    #[inline]
    pub fn write(&self, src: &[u8]) {
        let n = src.len().min(self.len);
        // SAFETY: `GuestMemory::span` checked that `len` bytes from `ptr` lie inside one
        // mapping, which lives as long as the borrowed `GuestMemory`; `n <= len`. `src` is
        // ours, not guest memory, so the two cannot overlap. The guest may read or write
        // these bytes meanwhile, as with every copy into its memory.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.ptr, n) };
    }
}

/// A descriptor of the split ring, read from guest memory in one copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

/// `VIRTQ_DESC_F_NEXT`.
pub const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the device writes this buffer.
pub const DESC_F_WRITE: u16 = 2;
/// `VRING_USED_F_NO_NOTIFY`: the device does not want kicks.
pub const USED_F_NO_NOTIFY: u16 = 1;

/// A split ring's three areas as host pointers, checked once per burst: the descriptor table
/// (16 bytes per entry), the available ring (flags, idx, `size` entries) and the used ring
/// (flags, idx, `size` entries of 8 bytes). It borrows the memory it points into.
pub struct RingView<'a> {
    desc: *const u8,
    avail: *const u8,
    used: *mut u8,
    mask: u16,
    _mem: PhantomData<&'a GuestMemory>,
}

impl<'a> RingView<'a> {
    /// The view of a ring of `size` entries (a power of two) at these guest addresses, when
    /// each area lies in one region and is aligned as the spec requires (16, 2, 4).
    pub fn new(
        mem: &'a GuestMemory,
        size: u16,
        desc: u64,
        avail: u64,
        used: u64,
    ) -> Option<RingView<'a>> {
        if !size.is_power_of_two() {
            return None;
        }
        let n = usize::from(size);
        let d = mem.host(desc, 16 * n)?;
        let a = mem.host(avail, 4 + 2 * n)?;
        let u = mem.host(used, 4 + 8 * n)?;
        let aligned = |p: *mut u8, n: usize| (p as usize).is_multiple_of(n);
        if !aligned(d, 16) || !aligned(a, 2) || !aligned(u, 4) {
            return None;
        }
        Some(RingView {
            desc: d,
            avail: a,
            used: u,
            mask: size - 1,
            _mem: PhantomData,
        })
    }

    /// The ring's size minus one.
    #[inline]
    pub fn mask(&self) -> u16 {
        self.mask
    }

    fn avail_u16(&self, at: usize) -> &AtomicU16 {
        // SAFETY: `at` is at most `2 + 2 * mask + 2` bytes in (callers), inside the
        // `4 + 2 * size` bytes `new` checked; the address is 2-aligned (`new` checked the
        // base, `at` is even); the mapping lives as long as 'a. Guest memory is shared with
        // the guest, so it is accessed as atomics, never as plain references.
        unsafe { AtomicU16::from_ptr(self.avail.add(at) as *mut u16) }
    }

    /// The available ring's `flags` (`VRING_AVAIL_F_NO_INTERRUPT`).
    #[inline]
    pub fn avail_flags(&self) -> u16 {
        u16::from_le(self.avail_u16(0).load(Ordering::Acquire))
    }

    /// The available ring's `idx`, with acquire ordering: entries and descriptors the guest
    /// wrote before publishing it are visible after this load.
    #[inline]
    pub fn avail_idx(&self) -> u16 {
        u16::from_le(self.avail_u16(2).load(Ordering::Acquire))
    }

    /// The head index in available-ring entry `slot` (taken modulo the size).
    #[inline]
    pub fn avail_entry(&self, slot: u16) -> u16 {
        let at = 4 + 2 * usize::from(slot & self.mask);
        u16::from_le(self.avail_u16(at).load(Ordering::Relaxed))
    }

    /// Starts loading descriptor `i`'s cache line.
    #[inline]
    pub fn prefetch_desc(&self, i: u16) {
        prefetch(self.desc.wrapping_add(16 * usize::from(i & self.mask)));
    }

    /// Starts loading the lines of the `n` available entries from `slot` on (wrapping).
    pub fn prefetch_avail(&self, slot: u16, n: u16) {
        let n = n.min(self.mask.wrapping_add(1));
        let line = |s: u16| self.avail.wrapping_add(4 + 2 * usize::from(s & self.mask));
        // 32 entries to a line: one prefetch per 32 covers every line but perhaps the
        // last one's.
        for k in (0..n).step_by(32) {
            prefetch(line(slot.wrapping_add(k)));
        }
        if n > 0 {
            prefetch(line(slot.wrapping_add(n - 1)));
        }
    }

    /// Starts loading the lines of the `n` used entries from `slot` on (wrapping), ahead of
    /// their writes, all but the ring's first line: it holds the index the guest polls,
    /// which would only come back to it for one more round trip. `owned` fetches them for
    /// writing; without it they are only read, for entries that are usually there already
    /// (`write_used` leaves those alone).
    pub fn prefetch_used(&self, slot: u16, n: u16, owned: bool) {
        let n = n.min(self.mask.wrapping_add(1));
        let at = |s: u16| 4 + 8 * usize::from(s & self.mask);
        let fetch = |s: u16| {
            if at(s) >= 64 {
                let p = self.used.wrapping_add(at(s)).cast_const();
                if owned {
                    prefetch_write(p);
                } else {
                    prefetch(p);
                }
            }
        };
        // 8 entries to a line.
        for k in (0..n).step_by(8) {
            fetch(slot.wrapping_add(k));
        }
        if n > 0 {
            fetch(slot.wrapping_add(n - 1));
        }
    }

    /// Descriptor `i`, or None past the table.
    #[inline]
    pub fn desc(&self, i: u16) -> Option<Desc> {
        if i > self.mask {
            return None;
        }
        let mut b = [0u8; 16];
        // SAFETY: entry `i <= mask` lies inside the `16 * size` bytes `new` checked; the
        // mapping lives as long as 'a; a plain byte copy (the guest may be writing it: then
        // the fields are some mix, which the caller checks like any other value).
        unsafe { ptr::copy_nonoverlapping(self.desc.add(16 * usize::from(i)), b.as_mut_ptr(), 16) };
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, n0, n1] = b;
        Some(Desc {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u16::from_le_bytes([f0, f1]),
            next: u16::from_le_bytes([n0, n1]),
        })
    }

    fn used_u16(&self, at: usize) -> &AtomicU16 {
        // SAFETY: `at` is 0 or 2, inside the used ring `new` checked (4-aligned base); the
        // mapping lives as long as 'a; atomics because the guest reads these concurrently.
        unsafe { AtomicU16::from_ptr(self.used.add(at) as *mut u16) }
    }

    /// Writes `entries` (id in the low half, length in the high half) into the used ring
    /// from `slot` on, wrapping at its end; the guest sees them once
    /// [`RingView::publish_used`] moves the index past them.
    #[inline]
    pub fn write_used(&self, slot: u16, entries: &[u64]) {
        let size = usize::from(self.mask) + 1;
        let first = usize::from(slot & self.mask);
        let entries = &entries[..entries.len().min(size)];
        let head = entries.len().min(size - first);
        for (at, part) in [(first, &entries[..head]), (0, &entries[head..])] {
            for (k, e) in part.iter().enumerate() {
                // SAFETY: slot `at + k < size` (the first part ends at the ring's end, the
                // second has at most `first` entries) lies inside the `4 + 8 * size` bytes
                // `new` checked; the guest does not read it before the release store of an
                // index that covers it. An entry already equal is left alone: in order and
                // with frames of one size the entries repeat every lap.
                unsafe { copy_if_changed(self.used.add(4 + 8 * (at + k)), &e.to_le_bytes()) };
            }
        }
    }

    /// Stores the used ring's `idx` with release ordering, after every buffer and entry
    /// write of the burst.
    #[inline]
    pub fn publish_used(&self, idx: u16) {
        self.used_u16(2).store(idx.to_le(), Ordering::Release);
    }

    /// The used ring's `idx` as last published.
    pub fn used_idx(&self) -> u16 {
        u16::from_le(self.used_u16(2).load(Ordering::Relaxed))
    }

    /// Sets the used ring's `flags`.
    pub fn set_used_flags(&self, flags: u16) {
        self.used_u16(0).store(flags.to_le(), Ordering::Release);
    }
}

/// A descriptor of the packed ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackedDesc {
    pub addr: u64,
    pub len: u32,
    pub id: u16,
    pub flags: u16,
}

/// `VIRTQ_DESC_F_AVAIL` (packed ring).
pub const DESC_F_AVAIL: u16 = 1 << 7;
/// `VIRTQ_DESC_F_USED` (packed ring).
pub const DESC_F_USED: u16 = 1 << 15;
/// `RING_EVENT_FLAGS_ENABLE`: the side that wrote it wants a notification for every buffer.
pub const RING_EVENT_FLAGS_ENABLE: u16 = 0;
/// `RING_EVENT_FLAGS_DISABLE`: the side that wrote it wants no notifications.
pub const RING_EVENT_FLAGS_DISABLE: u16 = 1;

/// A packed ring's three areas as host pointers, checked once per burst: the descriptor ring
/// (16 bytes per entry: address, length, buffer id, flags) and the two 4-byte event
/// suppression structures (the driver's, which the device reads, and the device's, which it
/// writes). It borrows the memory it points into.
pub struct PackedView<'a> {
    desc: *mut u8,
    driver: *const u8,
    device: *mut u8,
    size: u16,
    _mem: PhantomData<&'a GuestMemory>,
}

impl<'a> PackedView<'a> {
    /// The view of a packed ring of `size` entries (1 to 32768, any number) at these guest
    /// addresses, when each area lies in one region and is aligned as the spec requires
    /// (16, 4, 4).
    pub fn new(
        mem: &'a GuestMemory,
        size: u16,
        desc: u64,
        driver: u64,
        device: u64,
    ) -> Option<PackedView<'a>> {
        if size == 0 || size > 32768 {
            return None;
        }
        let d = mem.host(desc, 16 * usize::from(size))?;
        let dr = mem.host(driver, 4)?;
        let dv = mem.host(device, 4)?;
        let aligned = |p: *mut u8, n: usize| (p as usize).is_multiple_of(n);
        if !aligned(d, 16) || !aligned(dr, 4) || !aligned(dv, 4) {
            return None;
        }
        Some(PackedView {
            desc: d,
            driver: dr,
            device: dv,
            size,
            _mem: PhantomData,
        })
    }

    /// Entries in the ring.
    #[inline]
    pub fn size(&self) -> u16 {
        self.size
    }

    fn flags_atomic(&self, i: u16) -> &AtomicU16 {
        // SAFETY: callers pass `i < size` (checked below in the public accessors); entry i's
        // flags (offset 14) lie inside the `16 * size` bytes `new` checked, 2-aligned (the
        // base is 16-aligned); the mapping lives as long as 'a; atomics because the guest
        // writes them concurrently.
        unsafe { AtomicU16::from_ptr(self.desc.add(16 * usize::from(i) + 14) as *mut u16) }
    }

    /// Descriptor `i`'s flags, with acquire ordering: the rest of a descriptor the driver
    /// made available before these flags is visible after this load. 0 past the ring.
    #[inline]
    pub fn flags(&self, i: u16) -> u16 {
        if i >= self.size {
            return 0;
        }
        u16::from_le(self.flags_atomic(i).load(Ordering::Acquire))
    }

    /// Descriptor `i` (its flags as [`PackedView::flags`] read them, before the rest), or
    /// None past the ring.
    #[inline]
    pub fn desc(&self, i: u16) -> Option<PackedDesc> {
        if i >= self.size {
            return None;
        }
        let flags = self.flags(i);
        let mut b = [0u8; 14];
        // SAFETY: entry `i < size` lies inside the checked descriptor ring; a plain byte copy
        // of its first 14 bytes (a guest writing them meanwhile leaves some mix, which the
        // caller checks like any other value).
        unsafe { ptr::copy_nonoverlapping(self.desc.add(16 * usize::from(i)), b.as_mut_ptr(), 14) };
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, i0, i1] = b;
        Some(PackedDesc {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            id: u16::from_le_bytes([i0, i1]),
            flags,
        })
    }

    /// Descriptors `i` to `i + 3` (one cache line when the ring is 64-byte aligned, as
    /// drivers allocate it) when `i` is a multiple of 4, all four lie in the ring, and each
    /// one's flags are exactly `flags`: the four flags are loaded and compared together, and
    /// only then, after an acquire fence, the rest of the four is read in one copy. None
    /// otherwise (the caller takes them one at a time).
    #[inline]
    pub fn desc4(&self, i: u16, flags: u16) -> Option<[PackedDesc; 4]> {
        if !i.is_multiple_of(4) || u32::from(i) + 4 > u32::from(self.size) {
            return None;
        }
        let f = |k: u16| u64::from(self.flags_atomic(i + k).load(Ordering::Relaxed));
        let four = f(0) | f(1) << 16 | f(2) << 32 | f(3) << 48;
        if four != u64::from(flags.to_le()) * 0x0001_0001_0001_0001 {
            return None;
        }
        // What the driver wrote before each of the four flags' release stores is visible.
        fence(Ordering::Acquire);
        let mut b = [0u8; 64];
        // SAFETY: entries `i..i + 4` lie inside the checked descriptor ring (`i + 4 <= size`);
        // a plain byte copy (a guest rewriting available descriptors meanwhile leaves some
        // mix, which the caller checks like any other value).
        unsafe { ptr::copy_nonoverlapping(self.desc.add(16 * usize::from(i)), b.as_mut_ptr(), 64) };
        #[cfg(test)]
        test_log::record(test_log::Access::Read4(i));
        Some(std::array::from_fn(|k| {
            let e = &b[16 * k..16 * k + 16];
            let u64_at = |o: usize| u64::from_le_bytes(std::array::from_fn(|j| e[o + j]));
            PackedDesc {
                addr: u64_at(0),
                len: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
                id: u16::from_le_bytes([e[12], e[13]]),
                flags,
            }
        }))
    }

    /// Starts loading descriptor `i`'s cache line.
    #[inline]
    pub fn prefetch_desc(&self, i: u16) {
        if i < self.size {
            prefetch(self.desc.wrapping_add(16 * usize::from(i)));
        }
    }

    /// Writes a used descriptor's buffer id and length into entry `i` (nothing past the
    /// ring); the driver sees it once [`PackedView::set_flags`] marks the entry used.
    #[inline]
    pub fn write_used(&self, i: u16, id: u16, len: u32) {
        if i >= self.size {
            return;
        }
        #[cfg(test)]
        test_log::record(test_log::Access::Used(i));
        let mut b = [0u8; 6];
        b[..4].copy_from_slice(&len.to_le_bytes());
        b[4..].copy_from_slice(&id.to_le_bytes());
        // SAFETY: bytes 8..14 of entry `i < size`, inside the checked ring; the driver does
        // not read them before the release store of the entry's flags.
        unsafe { ptr::copy_nonoverlapping(b.as_ptr(), self.desc.add(16 * usize::from(i) + 8), 6) };
    }

    /// Stores entry `i`'s flags with release ordering (nothing past the ring).
    #[inline]
    pub fn set_flags(&self, i: u16, flags: u16) {
        if i < self.size {
            #[cfg(test)]
            test_log::record(test_log::Access::Flags(i));
            self.flags_atomic(i).store(flags.to_le(), Ordering::Release);
        }
    }

    /// The driver event suppression flags (`RING_EVENT_FLAGS_*`).
    #[inline]
    pub fn driver_event_flags(&self) -> u16 {
        // SAFETY: bytes 2..4 of the 4 checked, 4-aligned bytes; atomics as the guest writes.
        let f = unsafe { AtomicU16::from_ptr(self.driver.add(2) as *mut u16) };
        u16::from_le(f.load(Ordering::Acquire))
    }

    /// Sets the device event suppression flags (what the driver reads before kicking).
    pub fn set_device_event_flags(&self, flags: u16) {
        // SAFETY: as in `driver_event_flags`, for the device area.
        let f = unsafe { AtomicU16::from_ptr(self.device.add(2) as *mut u16) };
        f.store(flags.to_le(), Ordering::Release);
    }
}

/// The packed ring's descriptor accesses in order, per thread, for the tests that check
/// which order the device writes used descriptors in.
#[cfg(test)]
pub(crate) mod test_log {
    use std::cell::RefCell;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Access {
        /// Four descriptors read at once ([`super::PackedView::desc4`]), from this entry.
        Read4(u16),
        /// A used descriptor's id and length written.
        Used(u16),
        /// A descriptor's flags stored (release).
        Flags(u16),
    }

    thread_local! {
        static LOG: RefCell<Vec<Access>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn record(a: Access) {
        LOG.with(|l| l.borrow_mut().push(a));
    }

    /// The accesses since the last call.
    pub(crate) fn take() -> Vec<Access> {
        LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{FileOffset, GuestRegionMmap, MmapRegion};

    #[test]
    fn a_guest_that_shrinks_its_memory_file_is_counted_not_fatal() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(0x4000).unwrap();
        let keep = file.try_clone().unwrap();
        let region = MmapRegion::from_file(FileOffset::new(file, 0), 0x4000).unwrap();
        let mem = GuestMemory::new(
            GuestMemoryMmap::from_regions(vec![
                GuestRegionMmap::new(region, GuestAddress(0x1000)).unwrap()
            ])
            .unwrap(),
        );
        assert!(mem.write(0x3000, &[7; 8]));
        assert_eq!(mem.faults(), 0);
        // The guest takes the last two pages away.
        keep.set_len(0x2000).unwrap();
        let mut b = [1u8; 8];
        assert!(mem.read(0x4000, &mut b), "the access completes");
        assert_eq!(b, [0; 8], "and reads zeros");
        assert!(mem.write(0x4800, &[9; 8]));
        assert_eq!(mem.faults(), 1, "one page replaced");
        assert!(
            mem.read(0x1000, &mut b),
            "the pages still there are untouched"
        );
        drop(mem);
        // The guard slot is free again for the next memory.
        let again = two_regions();
        assert_eq!(again.faults(), 0);
    }

    fn two_regions() -> GuestMemory {
        GuestMemory::new(
            GuestMemoryMmap::from_ranges(&[
                (GuestAddress(0), 0x10000),
                (GuestAddress(0x10000), 0x10000),
                (GuestAddress(0x100000), 0x1000),
            ])
            .unwrap(),
        )
    }

    /// Runs `f` with the guest page at `gpa` read-only, so that a write there faults (and
    /// fails the test run).
    fn read_only<T>(m: &GuestMemory, gpa: u64, f: impl FnOnce() -> T) -> T {
        let page = m.host(gpa, 1).unwrap();
        // SAFETY: the page is one of the mapping's own, made read-only for the call and
        // writable again before anything else touches it.
        unsafe { assert_eq!(libc::mprotect(page.cast(), 0x1000, libc::PROT_READ), 0) };
        let r = f();
        // SAFETY: as above.
        unsafe {
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            assert_eq!(libc::mprotect(page.cast(), 0x1000, rw), 0);
        }
        r
    }

    #[test]
    fn used_entries_already_in_the_ring_are_not_written_again() {
        let m = two_regions();
        let v = RingView::new(&m, 16, 0x1000, 0x2000, 0x3000).unwrap();
        let entry = |id: u64, len: u64| id | len << 32;
        let lap = [entry(14, 72), entry(15, 72), entry(0, 72), entry(1, 72)];
        v.write_used(14, &lap);
        let mut b = [0u8; 8];
        assert!(m.read(0x3000 + 4 + 8 * 15, &mut b));
        assert_eq!(u64::from_le_bytes(b), entry(15, 72));
        // The next lap writes the same entries: the used ring's page may be read-only.
        read_only(&m, 0x3000, || v.write_used(30, &lap));
        // A changed length is written.
        v.write_used(0, &[entry(0, 80)]);
        assert!(m.read(0x3000 + 4, &mut b));
        assert_eq!(u64::from_le_bytes(b), entry(0, 80));
    }

    #[test]
    fn write_if_changed_writes_only_bytes_that_differ() {
        let m = two_regions();
        let hdr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert!(m.write_if_changed(0x2000 - 12, &hdr));
        let mut b = [9u8; 12];
        assert!(m.read(0x2000 - 12, &mut b));
        assert_eq!(b, hdr, "changed bytes are written");
        // The same bytes again, with their page read-only: a write would fault.
        let unchanged = read_only(&m, 0x1000, || m.write_if_changed(0x2000 - 12, &hdr));
        assert!(unchanged, "equal bytes are left alone");
        assert!(
            !m.write_if_changed(0x100000 + 0x1000 - 4, &hdr),
            "outside memory"
        );
        // More than SMALL_WRITE bytes: a plain write.
        assert!(m.write_if_changed(0x3000, &[5; 40]));
        let mut big = [0u8; 40];
        assert!(m.read(0x3000, &mut big));
        assert_eq!(big, [5; 40]);
    }

    #[test]
    fn reads_and_writes_inside_and_across_regions_and_refuses_outside() {
        let m = two_regions();
        assert!(m.write(0x100, &[1, 2, 3]));
        let mut b = [0u8; 3];
        assert!(m.read(0x100, &mut b));
        assert_eq!(b, [1, 2, 3]);
        // Straddles the first two (contiguous) regions: vm-memory's path.
        let data: Vec<u8> = (0..32).collect();
        assert!(m.write(0x10000 - 16, &data));
        let mut back = [0u8; 32];
        assert!(m.read(0x10000 - 16, &mut back));
        assert_eq!(&back[..], &data[..]);
        // Outside, or running off the end of the last region.
        assert!(!m.read(0x20000, &mut b));
        assert!(!m.read(0x100000 + 0x1000 - 2, &mut b));
        assert!(!m.write(u64::MAX - 1, &[0; 4]));
    }

    #[test]
    fn a_ring_view_needs_each_area_inside_one_region_and_aligned() {
        let m = two_regions();
        assert!(RingView::new(&m, 16, 0x1000, 0x2000, 0x3000).is_some());
        assert!(RingView::new(&m, 12, 0x1000, 0x2000, 0x3000).is_none());
        // The descriptor table runs into the gap after 0x20000.
        assert!(RingView::new(&m, 16, 0x20000 - 0x80, 0x2000, 0x3000).is_none());
        assert!(RingView::new(&m, 16, 0x1008, 0x2000, 0x3000).is_none());
        assert!(RingView::new(&m, 16, 0x1000, 0x2001, 0x3000).is_none());
        assert!(RingView::new(&m, 16, 0x1000, 0x2000, 0x3002).is_none());
    }

    #[test]
    fn ring_fields_read_and_write_little_endian_in_guest_memory() {
        let m = two_regions();
        let v = RingView::new(&m, 16, 0x1000, 0x2000, 0x3000).unwrap();
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&0x1234_5678u64.to_le_bytes());
        d[8..12].copy_from_slice(&100u32.to_le_bytes());
        d[12..14].copy_from_slice(&3u16.to_le_bytes());
        d[14..].copy_from_slice(&7u16.to_le_bytes());
        assert!(m.write(0x1000 + 16 * 5, &d));
        assert_eq!(
            v.desc(5),
            Some(Desc {
                addr: 0x1234_5678,
                len: 100,
                flags: 3,
                next: 7
            })
        );
        assert_eq!(v.desc(16), None);
        assert!(m.write(0x2000, &[1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 4, 0]));
        assert_eq!((v.avail_flags(), v.avail_idx()), (1, 9));
        // Slot 19 is slot 3.
        assert_eq!(v.avail_entry(19), 4);
        v.write_used(17, &[6 | (70 << 32)]);
        v.publish_used(2);
        v.set_used_flags(USED_F_NO_NOTIFY);
        let mut u = [0u8; 20];
        assert!(m.read(0x3000, &mut u));
        assert_eq!(&u[..4], &[1, 0, 2, 0]);
        assert_eq!(&u[12..20], &[6, 0, 0, 0, 70, 0, 0, 0]);
        assert_eq!(v.used_idx(), 2);
        // Three entries from slot 15 wrap to slots 0 and 1.
        v.write_used(15, &[1, 2, 3]);
        let mut all = [0u8; 4 + 8 * 16];
        assert!(m.read(0x3000, &mut all));
        let slot = |i: usize| u64::from_le_bytes(all[4 + 8 * i..12 + 8 * i].try_into().unwrap());
        assert_eq!((slot(15), slot(0), slot(1)), (1, 2, 3));
    }
}
