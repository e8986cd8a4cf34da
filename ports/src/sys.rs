//! System calls shared by the port kinds and the daemon: socket options, the owned `mmap` of
//! the AF_XDP and AF_PACKET rings, interface indexes, eventfds, `poll(2)`, and the system-wide
//! monotonic clock.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;

/// Reads up to `buf.len()` bytes from socket `fd` without taking them (`MSG_PEEK`: the bytes,
/// and any descriptors sent with them, stay for the next read); blocks until some arrive as
/// the socket does. Returns how many were read (0: the peer closed).
pub(crate) fn peek(fd: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `recv` writes at most `buf.len()` bytes into `buf`, which lives across the call.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

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

/// The IPv4 and IPv6 addresses of interface `ifname`, each with its prefix length, in the
/// order `getifaddrs(3)` lists them (IPv6 link-local ones left out: no tunnel is sent from
/// one). Empty when it has none or does not exist.
pub fn interface_addresses(ifname: &str) -> Vec<(std::net::IpAddr, u8)> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` receives a list that `freeifaddrs` releases below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*at };
        at = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != ifname.as_bytes() {
            continue;
        }
        // SAFETY: `ifa_addr` and `ifa_netmask` point to sockaddrs of the family they state.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let found = match family {
            libc::AF_INET => {
                // SAFETY: an AF_INET sockaddr is a sockaddr_in.
                let (a, m) = unsafe {
                    (
                        *(ifa.ifa_addr as *const libc::sockaddr_in),
                        *(ifa.ifa_netmask as *const libc::sockaddr_in),
                    )
                };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some((
                    IpAddr::V4(ip),
                    u32::from_be(m.sin_addr.s_addr).count_ones() as u8,
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
                let (a, m) = unsafe {
                    (
                        *(ifa.ifa_addr as *const libc::sockaddr_in6),
                        *(ifa.ifa_netmask as *const libc::sockaddr_in6),
                    )
                };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                let len = u128::from_be_bytes(m.sin6_addr.s6_addr).count_ones() as u8;
                (!ip.is_unicast_link_local()).then_some((IpAddr::V6(ip), len))
            }
            _ => None,
        };
        out.extend(found);
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// The MTU of interface `ifname`, if it exists.
pub fn interface_mtu(ifname: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets the MTU of interface `ifname` (`SIOCSIFMTU`, as `ip link set IF mtu N` and OVS's
/// `netdev_linux_set_mtu` do). The kernel refuses what the device cannot take (a veth with an
/// XDP program attached takes no more than one page's frame, for instance).
pub fn set_interface_mtu(ifname: &str, mtu: u16) -> io::Result<()> {
    /// `struct ifreq` as far as the name and `ifr_mtu`; padded to the kernel's 40 bytes.
    #[repr(C)]
    struct IfReqMtu {
        name: [u8; 16],
        mtu: libc::c_int,
        _pad: [u8; 20],
    }
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut req = IfReqMtu {
        name: [0; 16],
        mtu: libc::c_int::from(mtu),
        _pad: [0; 20],
    };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: plain socket creation; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: SIOCSIFMTU reads the name and `ifr_mtu` of the `struct ifreq` it is given; `req`
    // has that layout and size and outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFMTU, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The MAC address of interface `ifname`, if it exists.
pub fn interface_mac(ifname: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
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
    /// Anonymous private memory of `len` bytes, pre-faulted (the UMEM), so that the data path
    /// takes no page faults. Not in fuzzing builds: the control target starts a daemon per
    /// input, and pre-faulting each pool's 64 MiB was nearly all of its time.
    pub fn anonymous(len: usize) -> io::Result<Mmap> {
        let populate = if cfg!(fuzzing) { 0 } else { libc::MAP_POPULATE };
        // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | populate,
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

/// An `eventfd`: how the control thread wakes a PMD that sleeps in [`poll_readable`].
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A non-blocking eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain descriptor creation; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        Ok(EventFd {
            fd: unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) },
        })
    }

    /// Makes the descriptor readable (a failure can only be a full counter: it is readable).
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an open descriptor.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            )
        };
    }

    /// Resets it to not readable.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; non-blocking, so it returns at once.
        let _ = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
    }

    /// The descriptor, for [`poll_readable`].
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Waits up to `timeout_ms` for any of `fds` to become readable (`poll(2)`). Returns how many
/// are; an interrupted wait returns 0. Every descriptor is watched: up to 64 from the stack
/// (a PMD's queues and its wake-up eventfd), more from the heap.
pub fn poll_readable(fds: &[std::os::fd::RawFd], timeout_ms: i32) -> io::Result<usize> {
    const INLINE: usize = 64;
    let entry = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut inline = [entry(-1); INLINE];
    let mut heap: Vec<libc::pollfd>;
    let set: &mut [libc::pollfd] = if fds.len() <= INLINE {
        for (p, &fd) in inline.iter_mut().zip(fds) {
            p.fd = fd;
        }
        &mut inline[..fds.len()]
    } else {
        heap = fds.iter().map(|&fd| entry(fd)).collect();
        &mut heap
    };
    // SAFETY: `set` holds `set.len()` initialised pollfd entries and outlives the call.
    let ret = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, timeout_ms) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(ret as usize)
}

/// Whether this process runs as root (namespaces, veth pairs and XDP need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// CLOCK_MONOTONIC in nanoseconds: the system-wide clock, so stamps from another process on
/// this host compare (std's `Instant` hides its value).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if ret != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_readable_watches_every_descriptor_past_the_inline_64() {
        let fds: Vec<EventFd> = (0..100).map(|_| EventFd::new().unwrap()).collect();
        let raw: Vec<_> = fds.iter().map(EventFd::raw_fd).collect();
        assert_eq!(poll_readable(&raw, 0).unwrap(), 0);
        fds[99].notify();
        assert_eq!(
            poll_readable(&raw, 0).unwrap(),
            1,
            "the 100th descriptor is watched"
        );
        fds[3].notify();
        assert_eq!(poll_readable(&raw, 0).unwrap(), 2);
        assert_eq!(
            poll_readable(&raw[..10], 0).unwrap(),
            1,
            "a short list from the stack"
        );
    }
}
