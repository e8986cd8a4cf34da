//! Thin wrappers over the system calls AF_XDP needs that `libc` does not wrap: `bpf(2)` for the
//! XSKMAP and the redirect program, `rtnetlink` for removing a program attached the old way, and
//! an owned `mmap` region. Every function here returns `io::Error` from `errno`; the callers
//! name the step that failed.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type` value of `BPF_XDP`.
pub const BPF_XDP: u32 = 37;

/// `XDP_FLAGS_SKB_MODE` from `linux/if_link.h`: generic XDP, run on the socket buffer.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP in the driver.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const NLA_F_NESTED: u16 = 1 << 15;

/// `union bpf_attr` for `BPF_MAP_CREATE` (the prefix this module sets; the kernel reads the
/// rest as zero).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM` / `BPF_MAP_DELETE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_PROG_LOAD` up to `expected_attach_type` (offset 68, checked
/// against the C header on this machine).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_LINK_CREATE` (prefix).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Calls `bpf(cmd, attr, size_of::<T>())` and returns its non-negative result.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `repr(C)` struct of exactly the size passed; the
    // kernel reads (and for some commands writes) only within that size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a file descriptor the kernel just returned to us.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was returned by a successful syscall that creates a new descriptor, so it is
    // open and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// Creates an XSKMAP (`u32` queue index -> AF_XDP socket) with `max_entries` slots.
pub fn xskmap_create(max_entries: u32) -> io::Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(b"xsks_map");
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries,
        map_name: name,
        ..Default::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned)
}

/// Sets `map[key] = value` (both `u32`) in an XSKMAP.
pub fn map_update_u32(map: &OwnedFd, key: u32, value: u32) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: &value as *const u32 as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// Removes `map[key]`.
pub fn map_delete_u32(map: &OwnedFd, key: u32) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
}

/// `BPF_F_XDP_HAS_FRAGS`: the program handles multi-buffer frames (`SEC("xdp.frags")`).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// Loads an XDP program from raw instructions (8 bytes each), with `prog_flags` (e.g.
/// [`BPF_F_XDP_HAS_FRAGS`]). On failure the verifier log is returned beside the error so that
/// the caller can report it.
pub fn prog_load_xdp(
    insns: &[u8],
    name: &str,
    prog_flags: u32,
) -> Result<OwnedFd, (io::Error, String)> {
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let mut prog_name = [0u8; 16];
    let n = name.len().min(15);
    prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name,
        prog_flags,
        expected_attach_type: BPF_XDP,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err((e, String::from_utf8_lossy(&log[..end]).into_owned()))
        }
    }
}

/// Attaches an XDP program to `ifindex` through a BPF link; closing the returned descriptor
/// detaches the program, so a dying process leaves nothing behind.
pub fn link_create_xdp(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

/// A new, unbound AF_XDP socket.
pub(crate) fn xsk_socket() -> Result<OwnedFd, super::XskError> {
    // SAFETY: plain socket creation; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(super::XskError::Sys {
            what: "socket(AF_XDP)",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, SOL_XDP, opt, value)`.
pub(crate) fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, value: &T) -> io::Result<()> {
    crate::sys::setsockopt(fd, libc::SOL_XDP, opt, value)
}

pub use crate::sys::if_index;

/// Sets (or with `fd == -1` removes) the XDP program of `ifindex` the pre-link way, through an
/// `RTM_SETLINK` request with a nested `IFLA_XDP { IFLA_XDP_FD, IFLA_XDP_FLAGS }`. The kernel
/// refuses with `EBUSY` when a BPF link owns the attachment, which is what keeps this from
/// tearing down a live daemon's program.
pub fn netlink_set_xdp_fd(ifindex: u32, fd: i32, flags: u32) -> io::Result<()> {
    let mut msg = Vec::with_capacity(52);
    let total: u32 = 16 + 16 + 4 + 8 + 8;
    // nlmsghdr
    msg.extend_from_slice(&total.to_ne_bytes());
    msg.extend_from_slice(&(libc::RTM_SETLINK).to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
                                                // ifinfomsg
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // IFLA_XDP (nested)
    msg.extend_from_slice(&20u16.to_ne_bytes());
    msg.extend_from_slice(&(IFLA_XDP | NLA_F_NESTED).to_ne_bytes());
    msg.extend_from_slice(&8u16.to_ne_bytes());
    msg.extend_from_slice(&IFLA_XDP_FD.to_ne_bytes());
    msg.extend_from_slice(&fd.to_ne_bytes());
    msg.extend_from_slice(&8u16.to_ne_bytes());
    msg.extend_from_slice(&IFLA_XDP_FLAGS.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());

    // SAFETY: plain socket creation; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = owned(raw as libc::c_long);
    // SAFETY: `sockaddr_nl` is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` and `addr` are valid for the lengths passed and outlive the call.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 1024];
    // SAFETY: `buf` is valid for writes of its length.
    let got = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_netlink_ack(&buf[..got as usize])
}

/// Reads the `NLMSG_ERROR` acknowledgement: error 0 is success, a negative value an errno.
fn parse_netlink_ack(buf: &[u8]) -> io::Result<()> {
    let field = |at: usize| -> Option<[u8; 4]> { buf.get(at..at + 4)?.try_into().ok() };
    let kind = buf
        .get(4..6)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .unwrap_or(0);
    if kind != libc::NLMSG_ERROR as u16 {
        return Err(io::Error::other("netlink: reply is not an acknowledgement"));
    }
    let err = field(16)
        .map(i32::from_ne_bytes)
        .ok_or_else(|| io::Error::other("netlink: acknowledgement too short"))?;
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-err))
    }
}

pub use crate::sys::Mmap;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_ack_success_and_errno() {
        // nlmsghdr (type 2 = NLMSG_ERROR) then error = 0
        let mut ok = vec![36, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        ok.extend_from_slice(&0i32.to_ne_bytes());
        assert!(parse_netlink_ack(&ok).is_ok());
        let mut busy = ok[..16].to_vec();
        busy.extend_from_slice(&(-libc::EBUSY).to_ne_bytes());
        let err = parse_netlink_ack(&busy).err().map(|e| e.raw_os_error());
        assert_eq!(err, Some(Some(libc::EBUSY)));
        assert!(parse_netlink_ack(&ok[..10]).is_err());
    }

    #[test]
    fn attr_layouts_match_the_kernel_header() {
        // Offsets of union bpf_attr fields, from linux/bpf.h on the build machine.
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(MapElemAttr, key), 8);
        assert_eq!(size_of::<LinkCreateAttr>(), 16);
    }
}
