//! A tap device as a [`PortIo`]: the bridge's host-side interface, like Open vSwitch's LOCAL
//! port. The port opens `/dev/net/tun` non-blocking, creates the named device with
//! `IFF_TAP | IFF_NO_PI` (frames without a packet-information header), not persistent, so the
//! kernel deletes it when the descriptor closes, and brings it up with `SIOCSIFFLAGS`.
//! Frames the host stack sends out of the device are read by `rx_burst` (one `read` each into
//! a reused 64 KiB buffer); frames the switch sends to the host are written with one `write`
//! each. The MTU is the kernel's default (1500).
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use crate::{PortError, PortIo, PortLoss, PortLosses, QueueInfo};

/// Longest name the kernel accepts (`IFNAMSIZ - 1`).
pub const MAX_NAME: usize = 15;
/// Bytes of the receive buffer: the largest frame a tap can hand over.
const RX_BUFFER: usize = 64 * 1024;
/// [`PortIo::rx_poll_interval_ns`] of a tap.
const TAP_POLL_INTERVAL_NS: u64 = 100_000;
/// How long a tap that answered `EIO` (the device is down) gets no writes.
const DOWN_BACKOFF: Duration = Duration::from_millis(100);

/// `struct ifreq` as far as the name and the flags (`ifr_flags`, a short); padded to the
/// kernel's 40 bytes.
#[repr(C)]
struct IfReqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReqFlags {
    fn new(name: &str) -> IfReqFlags {
        let mut req = IfReqFlags {
            name: [0; 16],
            flags: 0,
            _pad: [0; 22],
        };
        let n = name.len().min(MAX_NAME);
        req.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        req
    }
}

/// Why a name cannot be a device name, if it cannot.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("a device name has 1 to 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not device names");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == b'%' || b.is_ascii_whitespace() || b == 0)
    {
        return Err("a device name has no `/`, `:`, `%`, whitespace or NUL");
    }
    Ok(())
}

/// Counters of the tap's batch calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapCounters {
    /// Reads that failed with something other than `EAGAIN`.
    pub rx_errors: u64,
    /// Frames not written because the device's queue was full (`EAGAIN`).
    pub tx_dropped: u64,
    /// Frames not written for another reason.
    pub tx_errors: u64,
    /// Frames not written because the device is down (`EIO`, then no writes for
    /// [`DOWN_BACKOFF`]: the kernel refuses every one, each a system call).
    pub tx_link_down: u64,
}

/// A tap device owned by the switch.
pub struct TapPort {
    file: File,
    name: String,
    buf: Vec<u8>,
    counters: TapCounters,
    /// Set when a write found the device down: no writes before then.
    down_until: Option<Instant>,
}

impl TapPort {
    /// Creates and brings up tap device `name`; errors name the port and the step.
    pub fn open(name: &str) -> Result<TapPort, PortError> {
        let io_err = |step: &str| {
            let step = step.to_string();
            move |source| PortError::Io {
                port: name.to_string(),
                step,
                source,
            }
        };
        check_name(name).map_err(|reason| PortError::Invalid {
            port: name.to_string(),
            step: "check the device name".to_string(),
            reason: reason.to_string(),
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(io_err("open /dev/net/tun"))?;

        let mut req = IfReqFlags::new(name);
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` has its layout and size
        // and lives across the call.
        let ret = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if ret < 0 {
            return Err(io_err("ioctl TUNSETIFF (create the tap)")(
                io::Error::last_os_error(),
            ));
        }
        let given = req.name.iter().position(|&b| b == 0).unwrap_or(16);
        if &req.name[..given] != name.as_bytes() {
            return Err(PortError::Invalid {
                port: name.to_string(),
                step: "ioctl TUNSETIFF (create the tap)".to_string(),
                reason: "the kernel gave the device another name".to_string(),
            });
        }
        set_up(name).map_err(io_err("bring the device up (SIOCSIFFLAGS)"))?;
        Ok(TapPort {
            file,
            name: name.to_string(),
            buf: vec![0; RX_BUFFER],
            counters: TapCounters::default(),
            down_until: None,
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the batch calls counted.
    pub fn tap_counters(&self) -> TapCounters {
        self.counters
    }
}

/// Sets `IFF_UP` on `name` through an `AF_INET` datagram socket (the usual handle for
/// interface ioctls).
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket creation; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReqFlags::new(name);
    // SAFETY: SIOCGIFFLAGS fills `ifr_flags` of the `struct ifreq` it is given; `req` has that
    // layout and outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS reads the name and flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl PortIo for TapPort {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max {
            match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(len) => {
                    f(&self.buf[..len]);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.counters.rx_errors += 1;
                    break;
                }
            }
        }
        n
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        // A down device (OVS's LOCAL port is, until the admin brings it up) refuses every
        // frame with EIO; like OVS, don't spend a system call per frame finding that out.
        if let Some(until) = self.down_until {
            if Instant::now() < until {
                self.counters.tx_link_down += frames.len() as u64;
                return frames.len();
            }
            self.down_until = None;
        }
        // Taken: written, or dropped and counted (link down, an error). A full queue
        // (EAGAIN) leaves the rest to the caller, who counts them as `tx-ring-full`.
        let mut taken = 0;
        for (i, frame) in frames.iter().enumerate() {
            match self.file.write(frame) {
                Ok(_) => taken += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.counters.tx_dropped += (frames.len() - i) as u64;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    self.counters.tx_link_down += (frames.len() - i) as u64;
                    self.down_until = Some(Instant::now() + DOWN_BACKOFF);
                    return frames.len();
                }
                Err(_) => {
                    self.counters.tx_errors += 1;
                    taken += 1;
                }
            }
        }
        taken
    }

    fn rx_poll_interval_ns(&self) -> u64 {
        // Host-stack traffic (ARP, ping, ssh to the bridge address) tolerates 100 µs; a look
        // per PMD iteration cost the vhost-user loop over half its throughput.
        TAP_POLL_INTERVAL_NS
    }

    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn info(&self) -> QueueInfo {
        QueueInfo {
            kind: "tap",
            mode: "tap".to_string(),
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx-errors", self.counters.rx_errors),
            ("tx-dropped", self.counters.tx_dropped),
            ("tx-errors", self.counters.tx_errors),
            ("tx-link-down", self.counters.tx_link_down),
        ]
    }

    fn losses(&self) -> PortLosses {
        let c = &self.counters;
        let mut l = PortLosses::default();
        l.add(PortLoss::RxErrors, c.rx_errors);
        l.add(PortLoss::TxErrors, c.tx_errors);
        l.add(PortLoss::TxLinkDown, c.tx_link_down);
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_has_the_kernel_size() {
        assert_eq!(std::mem::size_of::<IfReqFlags>(), 40);
        assert_eq!(std::mem::offset_of!(IfReqFlags, flags), 16);
    }

    #[test]
    fn names_the_kernel_would_refuse_are_refused() {
        assert!(check_name("vs-local0").is_ok());
        assert!(check_name("a23456789012345").is_ok());
        for bad in [
            "",
            "a234567890123456",
            "a/b",
            "tap%d",
            "a b",
            "a:1",
            ".",
            "..",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ifreq_carries_the_name_nul_terminated() {
        let req = IfReqFlags::new("br0");
        assert_eq!(&req.name[..4], b"br0\0");
    }
}
