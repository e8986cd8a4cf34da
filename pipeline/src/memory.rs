//! The bytes behind a [`crate::PacketPool`]: the pool's own heap allocation, or memory another
//! owner maps and shares with the kernel (an AF_XDP UMEM), so that the kernel writes received
//! packets straight into pool frames and sends pool frames as they are. This is the crate's one
//! `unsafe` spot: the pool reaches the bytes through a pointer it keeps, and an external owner
//! promises, when it hands the memory over, what `&`/`&mut` borrows of it need.
#![allow(unsafe_code)]

use std::any::Any;
use std::ptr::NonNull;
use std::sync::Arc;

/// The bytes of a packet pool.
pub struct FrameMemory {
    ptr: NonNull<u8>,
    len: usize,
    /// Keeps the bytes alive; never used to reach them (only `ptr` is).
    _owner: Owner,
}

enum Owner {
    Heap(#[allow(dead_code)] Vec<u8>),
    External(#[allow(dead_code)] Arc<dyn Any + Send + Sync>),
}

// SAFETY: the memory is reached only through `&self`/`&mut self` of this value (the heap
// case), or, for external memory, as `FrameMemory::external`'s contract allows; either way
// moving the value to another thread moves that access with it.
unsafe impl Send for FrameMemory {}

impl FrameMemory {
    /// `len` zeroed bytes of the heap.
    pub fn heap(len: usize) -> FrameMemory {
        let mut bytes = vec![0u8; len];
        // A Vec's pointer is never null; an empty one is dangling but valid for 0 bytes.
        let ptr = NonNull::new(bytes.as_mut_ptr()).unwrap_or(NonNull::dangling());
        FrameMemory {
            ptr,
            len,
            _owner: Owner::Heap(bytes),
        }
    }

    /// `len` bytes at `ptr`, kept mapped by `owner`.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for as long as `owner` lives,
    /// and no one but this `FrameMemory` may read or write those bytes, except inside frames
    /// the pool's user has taken out of the pool ([`crate::PacketPool::lend`]) and not yet
    /// given back: those belong to whoever they were lent to (the kernel, for a UMEM).
    pub unsafe fn external(
        ptr: NonNull<u8>,
        len: usize,
        owner: Arc<dyn Any + Send + Sync>,
    ) -> FrameMemory {
        FrameMemory {
            ptr,
            len,
            _owner: Owner::External(owner),
        }
    }

    /// The bytes.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while `_owner` lives (heap: the Vec we own;
        // external: the caller's promise), and `&self` excludes a `&mut` from `bytes_mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    #[inline(always)]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The address of the first byte: who the memory is, for a port that must know whether
    /// a packet lies in memory it shares with the kernel.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the memory has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_memory_is_zeroed_and_writable() {
        let mut m = FrameMemory::heap(100);
        assert_eq!(m.len(), 100);
        assert!(m.bytes().iter().all(|&b| b == 0));
        m.bytes_mut()[99] = 7;
        assert_eq!(m.bytes()[99], 7);
        assert!(FrameMemory::heap(0).is_empty());
    }

    #[test]
    fn external_memory_lives_as_long_as_its_owner() {
        let owner = Arc::new(std::sync::Mutex::new(vec![1u8; 64]));
        let ptr = NonNull::new(owner.lock().unwrap().as_mut_ptr()).unwrap();
        // SAFETY: the Vec stays allocated while `owner` lives, and no one else touches it
        // while the test runs.
        let mut m = unsafe { FrameMemory::external(ptr, 64, owner.clone()) };
        assert_eq!(Arc::strong_count(&owner), 2);
        m.bytes_mut()[0] = 9;
        assert_eq!(m.bytes()[..2], [9, 1]);
        assert_eq!(m.addr(), ptr.as_ptr() as usize);
        drop(m);
        assert_eq!(Arc::strong_count(&owner), 1);
    }
}
