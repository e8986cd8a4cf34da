//! The vhost-user port against a guest this test plays itself over the real protocol (the
//! rust-vmm `vhost` crate's frontend), with guest memory in a file it shares: descriptors made
//! up on purpose (out of range, looping, running past the end of memory, writable on the
//! transmit queue) are dropped and counted while a good frame beside them gets through, and a
//! guest that shrinks its memory file under the switch (which would be SIGBUS) leaves the
//! switch running with that guest's rings stopped and counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::counter;
use ports::{PortIo, PortLoss, PortSpec};
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};
use vmm_sys_util::eventfd::EventFd;

/// Guest memory: 1 MiB at guest address 0, which the "guest process" sees at `UADDR`.
const MEM: u64 = 1 << 20;
const UADDR: u64 = 0x4000_0000;
/// The transmit vring (index 1) and the receive vring (index 0), 16 entries each.
const TX_DESC: u64 = 0x1000;
const TX_AVAIL: u64 = 0x2000;
const TX_USED: u64 = 0x3000;
const RX_DESC: u64 = 0x4000;
const RX_AVAIL: u64 = 0x5000;
const RX_USED: u64 = 0x6000;
const DATA: u64 = 0x10000;
const SIZE: u16 = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const VERSION_1: u64 = 1 << 32;
const PROTOCOL_FEATURES: u64 = 1 << 30;

struct Guest {
    front: Frontend,
    file: File,
    mem: GuestMemoryMmap,
    avail_idx: u16,
    _events: Vec<EventFd>,
}

impl Guest {
    /// Connects to `socket`, shares its memory and starts both vrings, as a virtio driver
    /// would.
    fn connect(socket: &std::path::Path) -> Guest {
        let file = tempfile::tempfile().unwrap();
        file.set_len(MEM).unwrap();
        let region =
            MmapRegion::from_file(FileOffset::new(file.try_clone().unwrap(), 0), MEM as usize)
                .unwrap();
        let mem =
            GuestMemoryMmap::from_regions(vec![
                GuestRegionMmap::new(region, GuestAddress(0)).unwrap()
            ])
            .unwrap();
        let mut front = Frontend::connect(socket, 2).unwrap();
        front.set_owner().unwrap();
        let offered = front.get_features().unwrap();
        assert_ne!(offered & PROTOCOL_FEATURES, 0);
        front.set_features(VERSION_1 | PROTOCOL_FEATURES).unwrap();
        let protocol = front.get_protocol_features().unwrap();
        front
            .set_protocol_features(protocol & VhostUserProtocolFeatures::REPLY_ACK)
            .unwrap();
        front
            .set_mem_table(&[VhostUserMemoryRegionInfo {
                guest_phys_addr: 0,
                memory_size: MEM,
                userspace_addr: UADDR,
                mmap_offset: 0,
                mmap_handle: file.as_raw_fd(),
            }])
            .unwrap();
        let mut events = Vec::new();
        for (index, desc, avail, used) in [
            (0, RX_DESC, RX_AVAIL, RX_USED),
            (1, TX_DESC, TX_AVAIL, TX_USED),
        ] {
            front.set_vring_num(index, SIZE).unwrap();
            front
                .set_vring_addr(
                    index,
                    &VringConfigData {
                        queue_max_size: SIZE,
                        queue_size: SIZE,
                        flags: 0,
                        desc_table_addr: UADDR + desc,
                        used_ring_addr: UADDR + used,
                        avail_ring_addr: UADDR + avail,
                        log_addr: None,
                    },
                )
                .unwrap();
            front.set_vring_base(index, 0).unwrap();
            let (call, kick) = (EventFd::new(0).unwrap(), EventFd::new(0).unwrap());
            front.set_vring_call(index, &call).unwrap();
            front.set_vring_kick(index, &kick).unwrap();
            front.set_vring_enable(index, true).unwrap();
            events.extend([call, kick]);
        }
        Guest {
            front,
            file,
            mem,
            avail_idx: 0,
            _events: events,
        }
    }

    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        self.mem
            .write_slice(&b, GuestAddress(TX_DESC + 16 * u64::from(i)))
            .unwrap();
    }

    /// Puts chain `head` on the transmit vring's available ring.
    fn offer(&mut self, head: u16) {
        let slot = u64::from(self.avail_idx % SIZE);
        self.mem
            .write_obj(head.to_le(), GuestAddress(TX_AVAIL + 4 + 2 * slot))
            .unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .write_obj(self.avail_idx.to_le(), GuestAddress(TX_AVAIL + 2))
            .unwrap();
    }
}

/// Polls the port as a PMD would until `done` says so (false after 10 s).
fn poll_until(
    port: &mut dyn PortIo,
    frames: &mut Vec<Vec<u8>>,
    done: impl Fn(&dyn PortIo) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        port.rx_burst(32, &mut |f| frames.push(f.to_vec()));
        if done(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn made_up_descriptors_are_counted_and_a_shrunk_memory_file_stops_the_rings() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("g.sock");
    let spec = PortSpec::parse_args(
        "vhg0",
        &["type=vhost-user", &format!("socket={}", socket.display())],
    )
    .unwrap();
    let mut queues = spec.open().unwrap();
    let port: &mut dyn PortIo = queues[0].as_mut();
    let mut g = Guest::connect(&socket);
    let mut frames = Vec::new();
    assert!(
        poll_until(port, &mut frames, |p| p.info().mode.ends_with(" up")),
        "{}",
        port.info().mode
    );

    // A loop (2 -> 3 -> 2), an address past the end of guest memory, a buffer that runs off
    // its end, a writable descriptor on the transmit queue, and one good frame.
    g.desc(2, DATA, 40, F_NEXT, 3);
    g.desc(3, DATA + 40, 40, F_NEXT, 2);
    g.offer(2);
    g.desc(4, MEM + 0x100, 76, 0, 0);
    g.offer(4);
    g.desc(5, MEM - 16, 76, 0, 0);
    g.offer(5);
    g.desc(6, DATA, 76, F_WRITE, 0);
    g.offer(6);
    let frame: Vec<u8> = (0..64u8).collect();
    let mut bytes = vec![0u8; 12];
    bytes.extend_from_slice(&frame);
    g.mem
        .write_slice(&bytes, GuestAddress(DATA + 0x1000))
        .unwrap();
    g.desc(7, DATA + 0x1000, bytes.len() as u32, 0, 0);
    g.offer(7);
    assert!(poll_until(port, &mut frames, |p| counter(p, "rx-frames")
        >= 1
        && counter(p, "bad-descriptors") >= 4));
    assert_eq!(frames, vec![frame.clone()]);
    assert_eq!(counter(port, "bad-descriptors"), 4);
    // Every chain went back to the guest.
    let used: u16 = g.mem.read_obj(GuestAddress(TX_USED + 2)).unwrap();
    assert_eq!(used, 5);

    // The guest offers one more frame, then shrinks its memory file to 8 KiB: the available
    // ring (at 8 KiB) is gone from under the switch.
    g.desc(8, DATA + 0x1000, bytes.len() as u32, 0, 0);
    g.offer(8);
    g.file.set_len(0x2000).unwrap();
    assert!(
        poll_until(port, &mut frames, |p| counter(p, "memory-faults") >= 1),
        "{:?}",
        port.counters()
    );
    // The switch is still here; the guest's rings stay stopped. A frame to send is taken and
    // named lost (`tx-link-down`), not left to the caller as a full ring.
    let before = counter(port, "rx-frames");
    let down = port.losses().get(PortLoss::TxLinkDown);
    for _ in 0..10 {
        port.rx_burst(32, &mut |_| {});
        assert_eq!(port.tx_burst(&[&frame]), 1);
    }
    assert_eq!(counter(port, "rx-frames"), before);
    assert_eq!(port.losses().get(PortLoss::TxLinkDown), down + 10);
    // Both vrings of the guest stopped, each counted once.
    assert_eq!(counter(port, "memory-faults"), 2);
    eprintln!("vhg0 counters: {:?}", port.counters());
    drop(g.front);
}
