//! Guest kicks for a PMD that sleeps.
//!
//! A polling PMD tells the guest not to kick (`VRING_USED_F_NO_NOTIFY`, or the packed ring's
//! device event flags): a kick is a system call in the guest for every burst it sends. A PMD
//! that goes idle without `busy-poll` wants the opposite before it sleeps, as DPDK's
//! `rte_vhost_enable_guest_notification` gives its interrupt mode: [`set_kicks`] asks the
//! guest to kick, and says whether buffers were made available before the guest could see
//! the request (then the PMD must look again rather than sleep). It sleeps in `poll(2)` on
//! the ring's [`KickWatch`], which becomes readable on the guest's next kick, and the next
//! burst tells the guest to stop again.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::guest::{
    GuestMemory, RING_EVENT_FLAGS_DISABLE, RING_EVENT_FLAGS_ENABLE, USED_F_NO_NOTIFY,
};
use crate::packed::is_avail;
use crate::ring::RingState;

/// One descriptor a PMD can sleep on for one vring, whatever connection the vring serves:
/// an epoll set holding the guest's current kick eventfd and an eventfd of the device's own,
/// written when the ring starts or stops (a guest that has just connected is told not to
/// kick, so without it a sleeping PMD would sleep through the guest's first frames).
/// Both are edge-triggered: [`KickWatch::drain`] makes the set quiet again without reading
/// the guest's eventfd.
pub struct KickWatch {
    epoll: Epoll,
    changed: EventFd,
    /// The guest's kick eventfd is in the set.
    watching: AtomicBool,
}

impl KickWatch {
    /// An empty watch (the device's eventfd only).
    pub fn new() -> io::Result<KickWatch> {
        let watch = KickWatch {
            epoll: Epoll::new()?,
            changed: EventFd::new(EFD_NONBLOCK)?,
            watching: AtomicBool::new(false),
        };
        watch.ctl(ControlOperation::Add, watch.changed.as_raw_fd())?;
        Ok(watch)
    }

    fn ctl(&self, op: ControlOperation, fd: RawFd) -> io::Result<()> {
        let events = EventSet::IN | EventSet::EDGE_TRIGGERED;
        self.epoll.ctl(op, fd, EpollEvent::new(events, fd as u64))
    }

    /// The descriptor to `poll(2)` for readable.
    pub fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Whether a guest kick can wake a sleeper: the guest gave the ring an eventfd, and it
    /// went into the set. (A frontend may give none: it will not kick.)
    pub fn watching(&self) -> bool {
        self.watching.load(Ordering::Acquire)
    }

    /// Swaps the guest kick eventfd the set holds: `old` (the one the ring had) out, `new` in.
    pub(crate) fn replace(&self, old: Option<&File>, new: Option<&File>) {
        if let Some(old) = old {
            // Removed by hand: closing our copy does not remove it while the guest holds
            // the same eventfd open.
            let _ = self.ctl(ControlOperation::Delete, old.as_raw_fd());
        }
        // A descriptor epoll refuses (a plain file): then no kick can wake the PMD, which
        // must not sleep on this ring.
        let ok = new.is_some_and(|f| self.ctl(ControlOperation::Add, f.as_raw_fd()).is_ok());
        self.watching.store(ok, Ordering::Release);
    }

    /// Wakes a sleeper: the ring started or stopped.
    pub(crate) fn changed(&self) {
        let _ = self.changed.write(1);
    }

    /// Takes the events that arrived so far, so that the set is readable again only on the
    /// next kick or change.
    pub fn drain(&self) {
        let mut events = [EpollEvent::default(); 4];
        while let Ok(n) = self.epoll.wait(0, &mut events) {
            if n < events.len() {
                break;
            }
        }
    }
}

/// Asks the guest to kick when it makes buffers available on `ring` (`on`), or not to. With
/// `on`, true when buffers are available already: the guest made them available before it
/// could see the request, so it will not kick for them. False for a ring outside `mem`.
pub fn set_kicks(ring: &RingState, mem: &GuestMemory, on: bool) -> bool {
    if let Some(view) = ring.view(mem) {
        view.set_used_flags(if on { 0 } else { USED_F_NO_NOTIFY });
        if !on {
            return false;
        }
        // The flags must be visible before the index is read (the guest does the reverse).
        fence(Ordering::SeqCst);
        return view.avail_idx() != ring.next_avail;
    }
    if let Some(view) = ring.packed_view(mem) {
        let flags = if on {
            RING_EVENT_FLAGS_ENABLE
        } else {
            RING_EVENT_FLAGS_DISABLE
        };
        view.set_device_event_flags(flags);
        if !on {
            return false;
        }
        fence(Ordering::SeqCst);
        return is_avail(view.flags(ring.next_avail), ring.avail_wrap);
    }
    false
}
