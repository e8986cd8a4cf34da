//! The vhost-user control path against a frontend that sends anything. After a byte that sets
//! the queue pairs (and says whether a memory image follows, which every memfd starts with),
//! the input is cut into messages (a 12-byte header, then the payload the header's size asks
//! for, as far as the input goes), each sent over a socket pair to the handler the port runs
//! (`BackendReqHandler` over `Device`). A message that carries file descriptors in the
//! protocol gets them: memfds of `MEMFD_LEN` bytes for memory regions and the log, eventfds
//! for kick, call and err (unless its payload says "no fd"). The version bits of every header
//! are set to 1 so that messages get past the framing to the device. Checked after every
//! message: no panic; every vring the device calls live has a ring view inside the guest
//! memory it holds, and a burst runs on it as the port would run one. After the connection, a
//! reset leaves no vring live and the link down.
#![no_main]

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use vhost_user::device::{lock_slot, Device, GUEST_TX};
use vhost_user::packed;
use vhost_user::ring::{guest_rx, guest_tx, ClosureSink, RingCounters, Vq, MAX_FRAME};
use libfuzzer_sys::fuzz_target;
use vhost::vhost_user::{BackendReqHandler, Error as VhostError};

/// Bytes of each memfd handed over for a memory region (or the log).
const MEMFD_LEN: u64 = 64 << 10;
/// Messages sent per input at the most.
const MESSAGES: usize = 64;
/// Request codes whose messages carry file descriptors.
const SET_MEM_TABLE: u32 = 5;
const SET_LOG_BASE: u32 = 6;
const SET_LOG_FD: u32 = 7;
const SET_VRING_KICK: u32 = 12;
const SET_VRING_CALL: u32 = 13;
const SET_VRING_ERR: u32 = 14;
const ADD_MEM_REG: u32 = 37;
/// `VHOST_USER_VRING_NOFD_MASK`: bit 8 of a kick/call/err payload says "no fd".
const NOFD: u64 = 0x100;

/// A memfd of `MEMFD_LEN` bytes that starts with `image` (the rest reads zero).
fn memfd(image: &[u8]) -> OwnedFd {
    // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"vhost-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = File::from(fd.try_clone().expect("dup"));
    file.set_len(MEMFD_LEN).expect("ftruncate");
    file.write_all(image).expect("write image");
    fd
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0, "eventfd");
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sends `bytes` as one message with `fds` attached (SCM_RIGHTS).
fn send(stream: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) -> bool {
    if fds.is_empty() {
        return (&*stream).write_all(bytes).is_ok();
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let fd_bytes = std::mem::size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the sendmsg call,
    // and the control buffer is `space` bytes (aligned for cmsghdr), as CMSG_SPACE asks.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as usize;
        std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(cmsg).cast(), raw.len());
        libc::sendmsg(stream.as_raw_fd(), &msg, 0) == bytes.len() as isize
    }
}

/// The descriptors the protocol attaches to a message with `request` and `payload`.
fn fds_for(request: u32, payload: &[u8], image: &[u8]) -> Vec<OwnedFd> {
    let u64_at0 = || {
        payload
            .get(..8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    match request {
        SET_MEM_TABLE => {
            let regions = payload
                .get(..4)
                .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
            (0..regions.min(8)).map(|_| memfd(image)).collect()
        }
        ADD_MEM_REG | SET_LOG_BASE | SET_LOG_FD => vec![memfd(image)],
        SET_VRING_KICK | SET_VRING_CALL | SET_VRING_ERR if u64_at0() & NOFD == 0 => {
            vec![eventfd()]
        }
        _ => Vec::new(),
    }
}

/// Every live vring has a view inside the memory it holds, and a burst runs on it as the
/// port runs one: a transmit burst (up to 4 chains) on the guest's transmit vrings, a
/// receive burst (one 60-byte frame) on its receive vrings. Returns the frames moved.
fn check_live_rings(device: &Mutex<Device>) -> u64 {
    let mut moved = 0;
    let vrings = device.lock().unwrap_or_else(|e| e.into_inner()).vrings();
    let mut scratch = vec![0u8; MAX_FRAME];
    for (index, slot) in vrings.iter().enumerate() {
        let mut slot = lock_slot(slot);
        if !slot.vring.live {
            continue;
        }
        let mem = slot.mem.clone().expect("a live vring has guest memory");
        let hdr = slot.hdr;
        let q = &mut slot.vring.queue;
        assert!(
            q.view(&mem).is_some() || q.packed_view(&mem).is_some(),
            "a live vring lies inside guest memory: {q:?}"
        );
        let is_packed = q.packed;
        let vq = Vq {
            ring: q,
            mem: &mem,
            call: None,
            hdr,
        };
        let mut c = RingCounters::default();
        if index % 2 == GUEST_TX {
            let mut sink = ClosureSink {
                buf: &mut scratch,
                f: &mut |_| {},
            };
            if is_packed {
                packed::guest_tx(vq, 4, &mut c, &mut sink);
            } else {
                guest_tx(vq, 4, &mut c, &mut sink);
            }
        } else if is_packed {
            packed::guest_rx(vq, &[&[0u8; 60]], &mut c);
        } else {
            guest_rx(vq, &[&[0u8; 60]], &mut c);
        }
        moved += c.rx_frames + c.tx_frames;
    }
    moved
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let pairs = first & 3;
    // Bit 7: a memory image follows (a u16 length, then the bytes), which every memfd starts
    // with, so that live rings hold descriptors and the bursts move frames.
    let mut image: &[u8] = &[];
    if first & 0x80 != 0 {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        (image, rest) = tail.split_at(len);
    }
    let device = Arc::new(Mutex::new(Device::new(u16::from(pairs) + 1)));
    let (frontend, backend) = UnixStream::pair().expect("socketpair");
    let mut handler = BackendReqHandler::from_stream(backend, Arc::clone(&device));
    let mut moved = 0;
    for _ in 0..MESSAGES {
        if rest.len() < 12 {
            break;
        }
        let mut header: [u8; 12] = rest[..12].try_into().unwrap_or_default();
        let request = u32::from_le_bytes(header[..4].try_into().unwrap_or_default());
        // Version 1 in the low two bits of the flags.
        header[4] = (header[4] & !0x3) | 0x1;
        let size = u32::from_le_bytes(header[8..].try_into().unwrap_or_default()) as usize;
        let payload = &rest[12..(12 + size).min(rest.len())];
        rest = &rest[12 + payload.len()..];
        let mut message = header.to_vec();
        message.extend_from_slice(payload);
        let fds = fds_for(request, payload, image);
        if !send(&frontend, &message, &fds) {
            break;
        }
        drop(fds);
        if payload.len() < size {
            // A message cut short: the handler waits for the rest, which never comes.
            let _ = frontend.shutdown(std::net::Shutdown::Write);
        }
        let handled = handler.handle_request();
        moved += check_live_rings(&device);
        match handled {
            Ok(()) => {}
            Err(VhostError::Disconnected) | Err(VhostError::PartialMessage) => break,
            Err(
                VhostError::InvalidParam
                | VhostError::InvalidOperation(_)
                | VhostError::InactiveFeature(_)
                | VhostError::InactiveOperation(_)
                | VhostError::ReqHandlerError(_)
                | VhostError::BackendInternalError,
            ) => {}
            Err(_) => break,
        }
    }
    // As the port does when a connection ends.
    let mut d = device.lock().unwrap_or_else(|e| e.into_inner());
    // How far the messages got, for checking that a seed brings its rings up.
    if std::env::var_os("VHOST_MESSAGE_DEBUG").is_some() {
        let live = d
            .vrings()
            .iter()
            .filter(|s| lock_slot(s).vring.live)
            .count();
        eprintln!(
            "live vrings {live} of {}, link up {}, frames moved {moved}",
            d.vrings().len(),
            d.link_up()
        );
    }
    d.reset();
    assert!(!d.link_up());
    for slot in d.vrings().iter() {
        assert!(!lock_slot(slot).vring.live);
    }
});
