//! Socket system calls and the owned `mmap` shared by the AF_XDP and AF_PACKET port layers.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;

/// `setsockopt(fd, level, opt, value)`.
pub(crate) fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live `T` of exactly the size passed, and `fd` is an open descriptor.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            value as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The interface index of `ifname`, or `None` if there is no such interface.
pub fn if_index(ifname: &str) -> Option<u32> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return None;
    }
    let name = CString::new(ifname).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// An owned memory mapping, unmapped on drop.
pub struct Mmap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to another thread moves
// the ownership with it.
unsafe impl Send for Mmap {}
// SAFETY: `Mmap` itself hands out only raw pointers; whoever dereferences them synchronises.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Anonymous private memory of `len` bytes, pre-faulted (the UMEM).
    pub fn anonymous(len: usize) -> io::Result<Mmap> {
        // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::checked(ptr, len)
    }

    /// A shared mapping of a socket's ring at page offset `offset`.
    pub fn ring(fd: &OwnedFd, len: usize, offset: libc::off_t) -> io::Result<Mmap> {
        // SAFETY: maps a kernel object at a kernel-chosen address; touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::checked(ptr, len)
    }

    fn checked(ptr: *mut libc::c_void, len: usize) -> io::Result<Mmap> {
        if ptr == libc::MAP_FAILED {
            Err(io::Error::last_os_error())
        } else {
            Ok(Mmap {
                ptr: ptr as *mut u8,
                len,
            })
        }
    }

    /// Start of the mapping.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a mapping of no bytes (never made: `mmap` refuses length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 4-byte word at byte `offset`, shared with the kernel (ring status words).
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset + 4 <= self.len && offset.is_multiple_of(4));
        // SAFETY: callers pass the offset of a status word, which lies inside the mapping and
        // is 4-byte aligned (ring blocks and frames are 16-byte aligned); the kernel updates
        // it concurrently, hence atomic access only.
        unsafe { &*(self.ptr.add(offset) as *const AtomicU32) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly a mapping this value created and still owns; every
        // borrow handed out from it is tied to a borrow of its owner, which is ending.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}
