//! The four single-producer/single-consumer rings of an AF_XDP socket (fill, completion, rx,
//! tx), mapped from the socket. Each side keeps cached copies of both indices and touches the
//! shared ones once per batch: a producer publishes with a release store after writing the
//! descriptors, a consumer reads the producer index with an acquire load before reading them.
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::Mmap;

/// One mapped ring of `T` descriptors (`u64` frame addresses or `libc::xdp_desc`).
pub struct Ring<T: Copy> {
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
    _t: PhantomData<T>,
}

// SAFETY: the ring owns its mapping; all access goes through `&mut self` (or `&self` for the
// atomics only), so moving it to the PMD thread is sound.
unsafe impl<T: Copy> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps the ring of `size` entries at mmap page offset `pgoff` of `fd`, using the kernel's
    /// layout `off` from `XDP_MMAP_OFFSETS`.
    pub fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> io::Result<Ring<T>> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = Mmap::ring(fd, len, pgoff)?;
        let base = map.ptr();
        // SAFETY: the kernel guarantees the offsets it reported lie within a mapping of `len`
        // bytes, suitably aligned for u32 indices and for the descriptor type.
        let (producer, consumer, flags, descs) = unsafe {
            (
                base.add(off.producer as usize) as *const AtomicU32,
                base.add(off.consumer as usize) as *const AtomicU32,
                base.add(off.flags as usize) as *const AtomicU32,
                base.add(off.desc as usize) as *mut T,
            )
        };
        let mut ring = Ring {
            _map: map,
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
            _t: PhantomData,
        };
        ring.cached_prod = ring.prod().load(Ordering::Relaxed);
        ring.cached_cons = ring.cons().load(Ordering::Relaxed);
        Ok(ring)
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping (see `map`); the kernel updates it atomically.
        unsafe { &*self.producer }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as for `prod`.
        unsafe { &*self.consumer }
    }

    /// Whether the kernel asked to be woken (`XDP_RING_NEED_WAKEUP`) for this ring.
    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `prod`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Ring capacity in entries.
    pub fn size(&self) -> u32 {
        self.size
    }

    // ---- producer side (fill, tx) ----

    /// How many of `want` entries can be written now.
    pub fn reserve(&mut self, want: u32) -> u32 {
        let mut free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free < want {
            self.cached_cons = self.cons().load(Ordering::Acquire);
            free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        }
        free.min(want)
    }

    /// Writes entry `i` of the current reservation.
    pub fn write(&mut self, i: u32, value: T) {
        let slot = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `slot <= mask < size`, inside the descriptor array; the slot is ours until
        // `submit` publishes it, because `reserve` checked the consumer has released it.
        unsafe { self.descs.add(slot).write_volatile(value) }
    }

    /// Publishes `n` written entries to the kernel.
    pub fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    /// Entries published but not yet consumed by the kernel (producer side).
    pub fn outstanding(&mut self) -> u32 {
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    // ---- consumer side (rx, completion) ----

    /// How many of `want` entries are ready to read.
    pub fn peek(&mut self, want: u32) -> u32 {
        let mut ready = self.cached_prod.wrapping_sub(self.cached_cons);
        if ready < want {
            self.cached_prod = self.prod().load(Ordering::Acquire);
            ready = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        ready.min(want)
    }

    /// Reads entry `i` of the current peek.
    pub fn read(&self, i: u32) -> T {
        let slot = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `slot < size`; the kernel published it (acquire in `peek`) and will not
        // overwrite it until `release`.
        unsafe { self.descs.add(slot).read_volatile() }
    }

    /// Hands `n` read entries back to the kernel.
    pub fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }
}
