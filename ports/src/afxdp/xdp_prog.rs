//! The XDP side of a port: an XSKMAP and the six-instruction program
//! `return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);` given as bytes (no
//! clang, no libbpf), attached through a BPF link so that the program goes away with the last
//! descriptor, even when the process is killed. The kernel takes one program per interface
//! hook, so the sockets of all queues of an interface share one `XdpProgram` (behind an `Arc`),
//! each in its queue's slot of the XSKMAP. `detach_stale` removes a program left behind by a
//! tool that attached the pre-link way.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use super::sys;
use super::{sys_err, XskError};

/// Which XDP hook the program was attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Native XDP in the driver (`XDP_FLAGS_DRV_MODE`).
    Driver,
    /// Generic XDP on the socket buffer (`XDP_FLAGS_SKB_MODE`).
    Generic,
}

/// Which XDP hook to ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpModeRequest {
    /// Driver mode, falling back to generic where the driver has no XDP.
    #[default]
    Auto,
    /// Driver mode or fail.
    Driver,
    /// Generic mode.
    Generic,
}

/// Offset of the map fd (the `imm` field of instruction 1, a `ld_imm64`) in [`PROGRAM`].
const MAP_FD_AT: usize = 8 + 4;

/// `r2 = *(u32 *)(r1 + 16)` (ctx->rx_queue_index); `r1 = map fd` (ld_imm64 with
/// `BPF_PSEUDO_MAP_FD`, two slots); `r3 = XDP_PASS` (the action when the slot is empty);
/// `call bpf_redirect_map` (51); `exit`.
pub const PROGRAM: [u8; 48] = [
    0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, // ldxw r2, [r1 + 16]
    0x18, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // lddw r1, map_fd (patched)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   (second half of lddw)
    0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // mov64 r3, 2 (XDP_PASS)
    0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, // call 51 (bpf_redirect_map)
    0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
];

/// An XSKMAP plus the redirect program attached to one interface, shared (through an `Arc`)
/// by the sockets of its queues. Dropping it detaches the program (the link closes first, by
/// field order).
pub struct XdpProgram {
    link: OwnedFd,
    _prog: OwnedFd,
    map: OwnedFd,
    mode: XdpMode,
    ifindex: u32,
    /// Which slots of the map hold a socket. The kernel cannot tell (an XSKMAP refuses lookups
    /// from user space), and two sockets must not claim one queue's slot.
    slots: Mutex<Vec<bool>>,
}

/// The program bytes with the map descriptor patched in.
pub fn program_for_map(map_fd: i32) -> [u8; 48] {
    let mut insns = PROGRAM;
    insns[MAP_FD_AT..MAP_FD_AT + 4].copy_from_slice(&map_fd.to_le_bytes());
    insns
}

/// Creates the XSKMAP and loads the program (not attached).
pub(crate) fn load(max_queues: u32) -> Result<(OwnedFd, OwnedFd), XskError> {
    let map = sys::xskmap_create(max_queues).map_err(sys_err("bpf BPF_MAP_CREATE xskmap"))?;
    let insns = program_for_map(map.as_raw_fd());
    // Frags-aware (it only redirects), so that native XDP takes frames longer than a page
    // (veth refuses a larger MTU under a program without it) and a multi-buffer socket
    // gets them whole; a kernel before 5.18 does not know the flag and loads it without.
    let prog = sys::prog_load_xdp(&insns, "vecswitch_xsk", sys::BPF_F_XDP_HAS_FRAGS)
        .or_else(|_| sys::prog_load_xdp(&insns, "vecswitch_xsk", 0))
        .map_err(|(source, log)| XskError::ProgramLoad { source, log })?;
    Ok((map, prog))
}

impl XdpProgram {
    /// Loads the program and attaches it to `ifindex` in the requested mode, with an XSKMAP of
    /// `max_queues` slots.
    pub fn attach(
        ifindex: u32,
        max_queues: u32,
        request: XdpModeRequest,
    ) -> Result<XdpProgram, XskError> {
        let (map, prog) = load(max_queues)?;
        let driver = || sys::link_create_xdp(&prog, ifindex, sys::XDP_FLAGS_DRV_MODE);
        let generic = || sys::link_create_xdp(&prog, ifindex, sys::XDP_FLAGS_SKB_MODE);
        let (link, mode) = match request {
            XdpModeRequest::Driver => (
                driver().map_err(sys_err("bpf BPF_LINK_CREATE (driver mode)"))?,
                XdpMode::Driver,
            ),
            XdpModeRequest::Generic => (
                generic().map_err(sys_err("bpf BPF_LINK_CREATE (generic mode)"))?,
                XdpMode::Generic,
            ),
            XdpModeRequest::Auto => match driver() {
                Ok(link) => (link, XdpMode::Driver),
                Err(_) => (
                    generic().map_err(sys_err("bpf BPF_LINK_CREATE (generic mode)"))?,
                    XdpMode::Generic,
                ),
            },
        };
        Ok(XdpProgram {
            link,
            _prog: prog,
            map,
            mode,
            ifindex,
            slots: Mutex::new(vec![false; max_queues as usize]),
        })
    }

    /// Points queue `queue` at socket `xsk` (packets of that queue now go to the socket).
    /// Refuses a queue beyond the map and a queue whose slot already holds a socket.
    pub fn insert(&self, queue: u32, xsk: &OwnedFd) -> Result<(), XskError> {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(queue as usize) else {
            return Err(XskError::Config {
                field: "queue",
                reason: "beyond the XSKMAP of the interface's XDP program",
            });
        };
        if *slot {
            return Err(XskError::Config {
                field: "queue",
                reason: "another socket already receives this queue",
            });
        }
        sys::map_update_u32(&self.map, queue, xsk.as_raw_fd() as u32)
            .map_err(sys_err("bpf BPF_MAP_UPDATE_ELEM xskmap"))?;
        *slot = true;
        Ok(())
    }

    /// Empties queue `queue`'s slot (its packets go to the kernel stack again).
    pub fn remove(&self, queue: u32) -> Result<(), XskError> {
        let mut slots = self.slots();
        sys::map_delete_u32(&self.map, queue).map_err(sys_err("bpf BPF_MAP_DELETE_ELEM xskmap"))?;
        if let Some(slot) = slots.get_mut(queue as usize) {
            *slot = false;
        }
        Ok(())
    }

    /// The queues whose slot holds a socket, ascending.
    pub fn queues(&self) -> Vec<u32> {
        (0u32..)
            .zip(self.slots().iter())
            .filter(|(_, taken)| **taken)
            .map(|(q, _)| q)
            .collect()
    }

    /// Slots of the XSKMAP: queues `0..max_queues` can be steered.
    pub fn max_queues(&self) -> u32 {
        self.slots().len() as u32
    }

    /// The hook the program runs on.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The interface it is attached to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The link descriptor (closing it detaches).
    pub fn link_fd(&self) -> i32 {
        self.link.as_raw_fd()
    }

    /// The slot table. A panic while it was held cannot leave it inconsistent (a slot changes
    /// only after its map update succeeded), so a poisoned lock is taken over as it is.
    fn slots(&self) -> MutexGuard<'_, Vec<bool>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes an XDP program attached to `ifname` the pre-link way (netlink, `ip link set IF xdp
/// obj ...`, a process killed before it could detach), in both generic and driver mode: the
/// "after SIGKILL, the next start cleans up" step. A program held by a live BPF link (another
/// running daemon) is refused by the kernel with `EBUSY` and reported as [`XskError::Sys`].
pub fn detach_stale(ifname: &str) -> Result<(), XskError> {
    let ifindex = sys::if_index(ifname).ok_or_else(|| XskError::NoSuchInterface {
        ifname: ifname.to_string(),
    })?;
    sys::netlink_set_xdp_fd(ifindex, -1, sys::XDP_FLAGS_SKB_MODE)
        .map_err(sys_err("netlink RTM_SETLINK IFLA_XDP off (generic)"))?;
    sys::netlink_set_xdp_fd(ifindex, -1, sys::XDP_FLAGS_DRV_MODE)
        .map_err(sys_err("netlink RTM_SETLINK IFLA_XDP off (driver)"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn program_bytes_patch_only_the_map_fd() {
        let p = program_for_map(0x0102_0304);
        assert_eq!(&p[12..16], &[0x04, 0x03, 0x02, 0x01]);
        let mut unpatched = p;
        unpatched[12..16].copy_from_slice(&[0; 4]);
        assert_eq!(unpatched, PROGRAM);
        // Six instructions of eight bytes; the last one is `exit`.
        assert_eq!(PROGRAM.len() / 8, 6);
        assert_eq!(PROGRAM[40], 0x95);
    }

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
    }

    /// Deletes the veth pair (both ends) even when an assertion fails.
    struct VethGuard(String);
    impl Drop for VethGuard {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }

    fn link_show(ifname: &str) -> String {
        let out = Command::new("ip")
            .args(["-d", "link", "show", "dev", ifname])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out
    }

    /// The kernel verifies and runs the byte program; a legacy (netlink) attachment survives
    /// its descriptors and `detach_stale` removes it; a link attachment vanishes on close.
    #[test]
    fn verifier_accepts_program_and_detach_stale_removes_leftovers() {
        if !is_root() {
            eprintln!("SKIP: needs root");
            return;
        }
        let name = format!("vxsd{}", std::process::id() % 100_000);
        let peer = format!("{name}p");
        let made = Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(made, "ip link add veth");
        let _guard = VethGuard(name.clone());
        let ifindex = sys::if_index(&name).unwrap_or(0);
        assert_ne!(ifindex, 0);

        // Link attachment: present while held, gone after drop.
        let prog = XdpProgram::attach(ifindex, 4, XdpModeRequest::Generic);
        let prog = match prog {
            Ok(p) => p,
            Err(e) => panic!("attach: {e}"),
        };
        assert_eq!(prog.mode(), XdpMode::Generic);
        assert!(link_show(&name).contains("xdp"), "{}", link_show(&name));
        // A live link is not "stale": the kernel refuses to detach it.
        assert!(detach_stale(&name).is_err());
        drop(prog);
        assert!(!link_show(&name).contains("xdp"), "{}", link_show(&name));

        // Legacy attachment: survives closing the descriptors, like a killed old daemon's.
        let (map, prog) = match load(4) {
            Ok(x) => x,
            Err(e) => panic!("load: {e}"),
        };
        let attached = sys::netlink_set_xdp_fd(ifindex, prog.as_raw_fd(), sys::XDP_FLAGS_SKB_MODE);
        assert!(attached.is_ok(), "{attached:?}");
        drop((map, prog));
        assert!(
            link_show(&name).contains("xdpgeneric"),
            "{}",
            link_show(&name)
        );
        let detached = detach_stale(&name);
        assert!(detached.is_ok(), "{detached:?}");
        assert!(!link_show(&name).contains("xdp"), "{}", link_show(&name));
        // Idempotent on a clean interface.
        assert!(detach_stale(&name).is_ok());
    }
}
