//! The device state a vhost-user frontend configures, and the protocol handler that
//! configures it: features, the memory table (each region's fd mapped through vm-memory),
//! and per vring its size, addresses (frontend virtual addresses translated to guest
//! physical ones), base, kick, call and enable. The `vhost` crate's `BackendReqHandler`
//! parses the messages and calls [`Device`] (through its `Mutex`, one message at a time) on
//! the port's control thread. Each vring sits behind a lock of its own ([`VringSlot`]), with
//! a reference to the guest memory and the header layout, so that the PMDs polling different
//! queue pairs of one port never contend: a PMD `try_lock`s the one vring it runs, once per
//! burst, and runs it only while it is [`Vring::live`]. Only what a virtio-net device with
//! up to the port's `MAX_QUEUE_PAIRS` (16) queue pairs needs is accepted; every other request is
//! refused with an error reply.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVirtioFeatures,
    VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{Error, GpuBackend, Result, VhostUserBackendReqHandlerMut};
use vhost::VhostUserMemoryRegionBase;
use vm_memory::{
    FileOffset, GuestAddress, GuestMemoryMmap, GuestMemoryRegion as _, GuestRegionMmap, MmapRegion,
};

use crate::guest::GuestMemory;
use crate::kick::{self, KickWatch};
use crate::ring::{NetHdr, RingState, LEGACY_NET_HDR_LEN, NET_HDR_LEN};

/// `VIRTIO_NET_F_MTU`: the device reports the MTU it was given (a frontend such as QEMU's
/// `host_mtu` tells it with `VHOST_USER_NET_SET_MTU`).
pub const VIRTIO_NET_F_MTU: u64 = 1 << 3;
/// Smallest MTU `VHOST_USER_NET_SET_MTU` takes (DPDK's `VIRTIO_MIN_MTU`).
pub const VIRTIO_MIN_MTU: u64 = 68;
/// Largest MTU `VHOST_USER_NET_SET_MTU` takes (DPDK's `VIRTIO_MAX_MTU`).
pub const VIRTIO_MAX_MTU: u64 = 65535;
/// `VIRTIO_NET_F_MRG_RXBUF`: the device may merge receive buffers.
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// `VIRTIO_NET_F_MQ`: the device has more than one queue pair.
pub const VIRTIO_NET_F_MQ: u64 = 1 << 22;
/// `VIRTIO_F_VERSION_1`: a VIRTIO 1.x device (little-endian, 12-byte header).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// `VIRTIO_F_RING_PACKED`: the packed virtqueue layout.
pub const VIRTIO_F_RING_PACKED: u64 = 1 << 34;
/// `VIRTIO_F_IN_ORDER`: buffers are used in the order they were made available.
pub const VIRTIO_F_IN_ORDER: u64 = 1 << 35;
/// `VHOST_USER_F_PROTOCOL_FEATURES`: protocol features are negotiated (rings start disabled).
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
/// The virtio features offered by a device with one queue pair: split or packed rings, used
/// in order, the MTU (as DPDK's vhost library offers it). No offloads, no event index, no
/// indirect descriptors.
pub const OFFERED_FEATURES: u64 = VIRTIO_NET_F_MRG_RXBUF
    | VIRTIO_NET_F_MTU
    | VIRTIO_F_VERSION_1
    | VIRTIO_F_RING_PACKED
    | VIRTIO_F_IN_ORDER
    | VHOST_USER_F_PROTOCOL_FEATURES;
/// The protocol features offered: REPLY_ACK (which the vhost crate adds in any case), MQ
/// (GET_QUEUE_NUM) and NET_MTU (`VHOST_USER_NET_SET_MTU`, which the port's control thread
/// takes off the socket before the vhost crate, which does not know it: [`Device::net_set_mtu`]).
/// Not STATUS, whose messages rust-vmm does not handle.
const OFFERED_PROTOCOL_FEATURES: VhostUserProtocolFeatures = VhostUserProtocolFeatures::REPLY_ACK
    .union(VhostUserProtocolFeatures::MQ)
    .union(VhostUserProtocolFeatures::MTU);
/// Vring index, within a queue pair, of the guest's receive virtqueue (the switch transmits
/// into it): pair `q` has its vrings at `2q + GUEST_RX` and `2q + GUEST_TX`.
pub const GUEST_RX: usize = 0;
/// Vring index, within a queue pair, of the guest's transmit virtqueue (the switch receives
/// from it).
pub const GUEST_TX: usize = 1;
/// Largest ring a frontend may set up (VIRTIO's maximum for both layouts).
const MAX_RING: u16 = 32768;

/// One virtqueue as configured.
pub struct Vring {
    /// The ring (split or packed), in guest physical addresses.
    pub queue: RingState,
    /// The eventfd to signal when the guest asks for interrupts.
    pub call: Option<File>,
    /// The frontend's kick eventfd: in the vring's [`KickWatch`] (guest transmit rings), for
    /// a PMD that sleeps; a polling PMD tells the guest not to kick.
    kick: Option<File>,
    addressed: bool,
    started: bool,
    enabled: bool,
    /// Configured, started, enabled and inside guest memory: the PMD may run it.
    pub live: bool,
}

impl Vring {
    fn new() -> Vring {
        Vring {
            queue: RingState::default(),
            call: None,
            kick: None,
            addressed: false,
            started: false,
            enabled: false,
            live: false,
        }
    }
}

/// What a PMD needs to run one vring, behind that vring's own lock.
pub struct VringSlot {
    /// The vring.
    pub vring: Vring,
    /// Guest memory as of the last SET_MEM_TABLE (shared by every vring of the device).
    pub mem: Option<Arc<GuestMemory>>,
    /// The header layout the acked features give.
    pub hdr: NetHdr,
}

impl VringSlot {
    fn new() -> VringSlot {
        VringSlot {
            vring: Vring::new(),
            mem: None,
            hdr: net_hdr(0),
        }
    }
}

/// A vring slot as the device and a port queue share it.
pub type SharedVring = Arc<Mutex<VringSlot>>;

/// Locks a vring slot for the control thread (which may wait: a PMD holds it for one burst).
pub fn lock_slot(slot: &Mutex<VringSlot>) -> MutexGuard<'_, VringSlot> {
    // Nothing panics while holding it; if something did, the state is still plain data.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The header layout `features` give.
fn net_hdr(features: u64) -> NetHdr {
    let mergeable = features & VIRTIO_NET_F_MRG_RXBUF != 0;
    let modern = features & VIRTIO_F_VERSION_1 != 0;
    NetHdr {
        len: if mergeable || modern {
            NET_HDR_LEN
        } else {
            LEGACY_NET_HDR_LEN
        },
        mergeable,
    }
}

/// A memory region's frontend virtual address and guest physical address.
#[derive(Clone, Copy, Debug)]
struct RegionMap {
    user_addr: u64,
    size: u64,
    guest_addr: u64,
}

/// What the frontend configured on the current connection.
pub struct Device {
    acked_features: u64,
    acked_protocol_features: u64,
    /// Guest memory, mapped from the frontend's fds; `None` before SET_MEM_TABLE.
    mem: Option<Arc<GuestMemory>>,
    /// Where each region sits for the frontend, to translate vring addresses.
    regions: Vec<RegionMap>,
    /// The vrings, two per queue pair ([`GUEST_RX`], [`GUEST_TX`]), shared with the port's
    /// queues; they outlive connections.
    vrings: Arc<[SharedVring]>,
    /// Bit `q`: the guest's receive vring of pair `q` is live (where transmits may go).
    rx_live: Arc<AtomicU64>,
    /// Vrings that went live with the packed layout, over all connections.
    packed_rings: Arc<AtomicU64>,
    /// Per vring, what a sleeping PMD waits on: for the guest's transmit rings (`None` for
    /// the receive rings, and where the system gave no epoll set).
    kicks: Arc<[Option<KickWatch>]>,
    /// Whether a frontend owns the device (SET_OWNER).
    owned: bool,
    /// The MTU the frontend gave the guest (`VHOST_USER_NET_SET_MTU`).
    mtu: Option<u16>,
}

impl Device {
    /// A device with `pairs` queue pairs that no frontend has configured.
    pub fn new(pairs: u16) -> Device {
        let vrings: Vec<SharedVring> = (0..2 * usize::from(pairs.max(1)))
            .map(|_| Arc::new(Mutex::new(VringSlot::new())))
            .collect();
        let kicks: Vec<Option<KickWatch>> = (0..vrings.len())
            .map(|i| (i % 2 == GUEST_TX).then(|| KickWatch::new().ok()).flatten())
            .collect();
        Device {
            acked_features: 0,
            acked_protocol_features: 0,
            mem: None,
            regions: Vec::new(),
            vrings: vrings.into(),
            rx_live: Arc::new(AtomicU64::new(0)),
            packed_rings: Arc::new(AtomicU64::new(0)),
            kicks: kicks.into(),
            owned: false,
            mtu: None,
        }
    }

    /// The vring slots, two per queue pair.
    pub fn vrings(&self) -> Arc<[SharedVring]> {
        Arc::clone(&self.vrings)
    }

    /// The live receive vrings' bits, which the device keeps current.
    pub fn rx_live(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.rx_live)
    }

    /// The count of vrings that went live packed, which the device keeps current.
    pub fn packed_rings(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.packed_rings)
    }

    /// Per vring, the descriptor a PMD sleeps on (the guest's transmit rings).
    pub fn kick_watches(&self) -> Arc<[Option<KickWatch>]> {
        Arc::clone(&self.kicks)
    }

    /// Puts `new` as vring `index`'s kick eventfd, in its watch as well.
    fn set_kick(&self, index: usize, v: &mut Vring, new: Option<File>) {
        if let Some(Some(watch)) = self.kicks.get(index) {
            watch.replace(v.kick.as_ref(), new.as_ref());
        }
        v.kick = new;
    }

    /// Queue pairs served.
    pub fn pairs(&self) -> usize {
        self.vrings.len() / 2
    }

    /// The virtio features this device offers.
    pub fn offered_features(&self) -> u64 {
        if self.pairs() > 1 {
            OFFERED_FEATURES | VIRTIO_NET_F_MQ
        } else {
            OFFERED_FEATURES
        }
    }

    /// Forgets the connection: rings stop, memory is unmapped, fds close.
    pub fn reset(&mut self) {
        for (i, slot) in self.vrings.iter().enumerate() {
            let mut slot = lock_slot(slot);
            self.set_kick(i, &mut slot.vring, None);
            *slot = VringSlot::new();
        }
        self.rx_live.store(0, Ordering::Relaxed);
        self.acked_features = 0;
        self.acked_protocol_features = 0;
        self.mem = None;
        self.regions.clear();
        self.owned = false;
        self.mtu = None;
    }

    /// `VHOST_USER_NET_SET_MTU`: the frontend says which MTU it gave the guest (QEMU's
    /// `host_mtu`, in the guest's `virtio_net_config.mtu`). Taken as DPDK's vhost library
    /// takes it: 68..=65535, else refused; it changes no frame limit of the device (the
    /// port's is its own `mtu_request`, as with OVS-DPDK, which shows the guest's in its
    /// interface status).
    pub fn net_set_mtu(&mut self, mtu: u64) -> Result<()> {
        if !(VIRTIO_MIN_MTU..=VIRTIO_MAX_MTU).contains(&mtu) {
            return Err(Error::InvalidParam);
        }
        self.mtu = u16::try_from(mtu).ok();
        Ok(())
    }

    /// The guest's MTU as the frontend set it, once `VIRTIO_NET_F_MTU` is negotiated (what
    /// DPDK's `rte_vhost_get_mtu` gives).
    pub fn guest_mtu(&self) -> Option<u16> {
        self.mtu
            .filter(|_| self.acked_features & VIRTIO_NET_F_MTU != 0)
    }

    /// Whether the frontend acked `VHOST_USER_PROTOCOL_F_REPLY_ACK`.
    pub fn reply_ack(&self) -> bool {
        self.acked_protocol_features & VhostUserProtocolFeatures::REPLY_ACK.bits() != 0
    }

    /// Whether the first queue pair runs (the others follow the guest's queue count).
    pub fn link_up(&self) -> bool {
        self.vrings[..2].iter().all(|v| lock_slot(v).vring.live)
    }

    fn slot(&self, index: u32) -> Result<MutexGuard<'_, VringSlot>> {
        let slot = self.vrings.get(index as usize).ok_or(Error::InvalidParam)?;
        Ok(lock_slot(slot))
    }

    /// Recomputes whether vring `index` may run, on the way up tells the guest not to kick
    /// (the PMD polls), and either way wakes a PMD asleep on it.
    fn refresh(&self, index: usize) {
        let Some(slot) = self.vrings.get(index) else {
            return;
        };
        let mut slot = lock_slot(slot);
        let VringSlot { vring: v, mem, .. } = &mut *slot;
        let was = v.live;
        let mem = mem.as_ref().filter(|m| m.faults() == 0);
        let split = mem.and_then(|m| v.queue.view(m));
        let packed = mem.and_then(|m| v.queue.packed_view(m));
        v.live = v.addressed && v.started && v.enabled && (split.is_some() || packed.is_some());
        if v.live && !was {
            // The PMD polls: the guest need not kick.
            if let Some(m) = mem {
                kick::set_kicks(&v.queue, m, false);
            }
            if packed.is_some() {
                self.packed_rings.fetch_add(1, Ordering::Relaxed);
            }
        }
        if v.live != was {
            // A PMD asleep on the ring looks at it now.
            if let Some(Some(watch)) = self.kicks.get(index) {
                watch.changed();
            }
        }
        if index % 2 == GUEST_RX && index / 2 < 64 {
            let bit = 1u64 << (index / 2);
            if v.live {
                self.rx_live.fetch_or(bit, Ordering::Relaxed);
            } else {
                self.rx_live.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }

    fn refresh_all(&self) {
        for i in 0..self.vrings.len() {
            self.refresh(i);
        }
    }

    /// Frontend virtual address to guest physical address, for `len` bytes.
    fn va_to_gpa(&self, va: u64, len: u64) -> Result<u64> {
        for r in &self.regions {
            let inside = va >= r.user_addr
                && va
                    .checked_add(len)
                    .is_some_and(|end| end - r.user_addr <= r.size);
            if inside {
                return Ok(r.guest_addr + (va - r.user_addr));
            }
        }
        Err(Error::InvalidParam)
    }
}

/// Maps the frontend's regions. Refuses a region that reaches past its file's end (touching
/// it would fault the switch) or that overlaps another.
fn map_regions(
    ctx: &[VhostUserMemoryRegion],
    files: Vec<File>,
) -> Result<(GuestMemoryMmap, Vec<RegionMap>)> {
    let mut regions = Vec::with_capacity(ctx.len());
    let mut table = Vec::with_capacity(ctx.len());
    for (region, file) in ctx.iter().zip(files) {
        let file_len = file
            .metadata()
            .map_err(|e| Error::ReqHandlerError(std::io::Error::other(e)))?
            .len();
        let end = region.mmap_offset.checked_add(region.memory_size);
        if end.is_none_or(|end| end > file_len) {
            return Err(Error::InvalidParam);
        }
        let size = usize::try_from(region.memory_size).map_err(|_| Error::InvalidParam)?;
        let mapping = MmapRegion::from_file(FileOffset::new(file, region.mmap_offset), size)
            .map_err(|e| Error::ReqHandlerError(std::io::Error::other(e)))?;
        let guest = GuestRegionMmap::new(mapping, GuestAddress(region.guest_phys_addr))
            .ok_or(Error::InvalidParam)?;
        regions.push(guest);
        table.push(RegionMap {
            user_addr: region.user_addr,
            size: region.memory_size,
            guest_addr: region.guest_phys_addr,
        });
    }
    regions.sort_by_key(|r| r.start_addr());
    let mem = GuestMemoryMmap::from_regions(regions).map_err(|_| Error::InvalidParam)?;
    Ok((mem, table))
}

const NOT_SUPPORTED: Error = Error::InvalidOperation("not supported by this device");

impl VhostUserBackendReqHandlerMut for Device {
    fn set_owner(&mut self) -> Result<()> {
        if self.owned {
            return Err(Error::InvalidOperation("already owned"));
        }
        self.owned = true;
        Ok(())
    }

    fn reset_owner(&mut self) -> Result<()> {
        self.reset();
        Ok(())
    }

    fn reset_device(&mut self) -> Result<()> {
        self.reset();
        Ok(())
    }

    fn get_features(&mut self) -> Result<u64> {
        Ok(self.offered_features())
    }

    fn set_features(&mut self, features: u64) -> Result<()> {
        if features & !self.offered_features() != 0 {
            return Err(Error::InvalidParam);
        }
        // The features set the rings' layout and the frames' header: not while a ring runs
        // (DPDK's vhost library refuses the same). Found by fuzz/fuzz_targets/vhost_message.rs:
        // a split ring left running after a switch to packed, or the other way round.
        if features != self.acked_features
            && self.vrings.iter().any(|slot| lock_slot(slot).vring.live)
        {
            return Err(Error::InvalidOperation(
                "features changed while a vring runs",
            ));
        }
        self.acked_features = features;
        for slot in self.vrings.iter() {
            let mut slot = lock_slot(slot);
            slot.hdr = net_hdr(features);
            slot.vring.queue.packed = features & VIRTIO_F_RING_PACKED != 0;
            slot.vring.queue.in_order = features & VIRTIO_F_IN_ORDER != 0;
        }
        // A stopped ring whose size or place does not suit the new layout stays down.
        self.refresh_all();
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<Vec<VhostUserMemoryRegionBase>>> {
        let (mem, table) = map_regions(ctx, files)?;
        let mem = Arc::new(GuestMemory::new(mem));
        // The old mapping goes away once no vring holds it: each is replaced under the lock
        // the PMD takes per burst.
        for slot in self.vrings.iter() {
            lock_slot(slot).mem = Some(Arc::clone(&mem));
        }
        self.mem = Some(mem);
        self.regions = table;
        self.refresh_all();
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> Result<()> {
        let num = u16::try_from(num).map_err(|_| Error::InvalidParam)?;
        let packed = self.acked_features & VIRTIO_F_RING_PACKED != 0;
        if num == 0 || num > MAX_RING || (!packed && !num.is_power_of_two()) {
            return Err(Error::InvalidParam);
        }
        self.slot(index)?.vring.queue.size = num;
        self.refresh(index as usize);
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> Result<()> {
        let (size, packed) = {
            let slot = self.slot(index)?;
            (u64::from(slot.vring.queue.size), slot.vring.queue.packed)
        };
        // The spans the layout gives for `size` entries: split, with the event fields; packed,
        // a descriptor ring and two 4-byte event suppression areas.
        let (avail_len, used_len) = if packed {
            (4, 4)
        } else {
            (6 + 2 * size, 6 + 8 * size)
        };
        let desc = self.va_to_gpa(descriptor, 16 * size)?;
        let avail = self.va_to_gpa(available, avail_len)?;
        let used = self.va_to_gpa(used, used_len)?;
        {
            let mut slot = self.slot(index)?;
            let v = &mut slot.vring;
            v.queue.desc = desc;
            v.queue.avail = avail;
            v.queue.used = used;
            v.addressed = true;
        }
        self.refresh(index as usize);
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> Result<()> {
        let base = u16::try_from(base).map_err(|_| Error::InvalidParam)?;
        self.slot(index)?.vring.queue.set_base(base);
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> Result<VhostUserVringState> {
        let base = {
            let mut slot = self.slot(index)?;
            let v = &mut slot.vring;
            // Stopping: the PMD cannot be inside this ring (it holds the lock per burst), and
            // it returns every chain it pops in the same burst, so next_avail is also
            // next_used.
            v.started = false;
            self.set_kick(index as usize, v, None);
            v.call = None;
            v.queue.base()
        };
        self.refresh(index as usize);
        Ok(VhostUserVringState::new(index, base))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let protocol = self.acked_features & VHOST_USER_F_PROTOCOL_FEATURES != 0;
        {
            let mut slot = self.slot(u32::from(index))?;
            let v = &mut slot.vring;
            self.set_kick(usize::from(index), v, fd);
            v.started = true;
            if !protocol {
                // Without protocol features a ring runs as soon as it is kicked.
                v.enabled = true;
            }
        }
        self.refresh(usize::from(index));
        Ok(())
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        self.slot(u32::from(index))?.vring.call = fd;
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, _fd: Option<File>) -> Result<()> {
        // Nothing is ever reported on it; the fd closes here.
        self.vrings
            .get(usize::from(index))
            .ok_or(Error::InvalidParam)?;
        Ok(())
    }

    fn get_protocol_features(&mut self) -> Result<VhostUserProtocolFeatures> {
        Ok(OFFERED_PROTOCOL_FEATURES)
    }

    fn set_protocol_features(&mut self, features: u64) -> Result<()> {
        if features & !OFFERED_PROTOCOL_FEATURES.bits() != 0 {
            return Err(Error::InvalidParam);
        }
        self.acked_protocol_features = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> Result<u64> {
        Ok(self.pairs() as u64)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> Result<()> {
        if self.acked_features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() == 0 {
            return Err(Error::InvalidOperation("protocol features not negotiated"));
        }
        self.slot(index)?.vring.enabled = enable;
        self.refresh(index as usize);
        Ok(())
    }

    fn get_config(
        &mut self,
        _offset: u32,
        _size: u32,
        _flags: VhostUserConfigFlags,
    ) -> Result<Vec<u8>> {
        Err(NOT_SUPPORTED)
    }

    fn set_config(
        &mut self,
        _offset: u32,
        _buf: &[u8],
        _flags: VhostUserConfigFlags,
    ) -> Result<()> {
        Err(NOT_SUPPORTED)
    }

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> Result<()> {
        Err(NOT_SUPPORTED)
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> Result<File> {
        Err(NOT_SUPPORTED)
    }

    fn get_inflight_fd(
        &mut self,
        _inflight: &VhostUserInflight,
    ) -> Result<(VhostUserInflight, File)> {
        Err(NOT_SUPPORTED)
    }

    fn set_inflight_fd(&mut self, _inflight: &VhostUserInflight, _file: File) -> Result<()> {
        Err(NOT_SUPPORTED)
    }

    fn get_max_mem_slots(&mut self) -> Result<u64> {
        Err(NOT_SUPPORTED)
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<VhostUserMemoryRegionBase>> {
        Err(NOT_SUPPORTED)
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> Result<()> {
        Err(NOT_SUPPORTED)
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> Result<Option<File>> {
        Err(NOT_SUPPORTED)
    }

    fn check_device_state(&mut self) -> Result<()> {
        Err(NOT_SUPPORTED)
    }

    fn get_shmem_config(&mut self) -> Result<VhostUserShMemConfig> {
        Err(NOT_SUPPORTED)
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> Result<()> {
        Err(NOT_SUPPORTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest memory: 64 KiB of a file at guest address 0, which the frontend sees at `UADDR`.
    const MEM: u64 = 64 << 10;
    const UADDR: u64 = 0x7f00_0000_0000;

    /// A device whose vring `index` is set up (`size` entries, split or packed) by a frontend
    /// without protocol features, and not yet started (no kick eventfd).
    fn ring_set_up(index: u32, size: u32, packed: bool) -> Device {
        let mut d = Device::new(1);
        d.set_owner().unwrap();
        let layout = if packed { VIRTIO_F_RING_PACKED } else { 0 };
        d.set_features(VIRTIO_F_VERSION_1 | layout).unwrap();
        let file = tempfile::tempfile().unwrap();
        file.set_len(MEM).unwrap();
        let region = VhostUserMemoryRegion::new(0, MEM, UADDR, 0);
        d.set_mem_table(&[region], vec![file], None).unwrap();
        d.set_vring_num(index, size).unwrap();
        let flags = VhostUserVringAddrFlags::empty();
        d.set_vring_addr(index, flags, UADDR, UADDR + 0x2000, UADDR + 0x1000, 0)
            .unwrap();
        d.set_vring_base(index, if packed { 0x8000 } else { 0 })
            .unwrap();
        d
    }

    /// A device whose vring 0 runs packed (200 entries: not a power of two, so it cannot run
    /// split).
    fn packed_ring_running() -> Device {
        let mut d = ring_set_up(0, 200, true);
        d.set_vring_kick(0, Some(tempfile::tempfile().unwrap()))
            .unwrap();
        assert!(lock_slot(&d.vrings[0]).vring.live);
        d
    }

    /// Whether `watch` would wake a PMD in `poll(2)` (asked through an epoll set of our own,
    /// level-triggered, so that asking takes nothing).
    fn wakes(watch: &KickWatch) -> bool {
        use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
        let outer = Epoll::new().unwrap();
        outer
            .ctl(
                ControlOperation::Add,
                watch.fd(),
                EpollEvent::new(EventSet::IN, 0),
            )
            .unwrap();
        outer.wait(0, &mut [EpollEvent::default(); 1]).unwrap() == 1
    }

    #[test]
    fn a_sleeping_pmd_wakes_on_a_kick_it_asked_for_and_when_the_ring_starts_or_stops() {
        for packed in [false, true] {
            // The guest's transmit ring, vring 1.
            let mut d = ring_set_up(1, 256, packed);
            let mem = d.mem.clone().unwrap();
            let watches = d.kick_watches();
            assert!(watches[0].is_none(), "receive rings need no kicks");
            let watch = watches[1].as_ref().unwrap();
            assert!(!wakes(watch) && !watch.watching());

            // The guest's kick "eventfd" (a pipe: epoll takes both), which the guest keeps
            // open after the device lets go of it.
            let (kick_rx, mut kick) = std::io::pipe().unwrap();
            let given = std::os::fd::OwnedFd::from(kick_rx.try_clone().unwrap());
            d.set_vring_kick(1, Some(File::from(given))).unwrap();
            let ring = lock_slot(&d.vrings[1]).vring.queue;
            assert!(lock_slot(&d.vrings[1]).vring.live);
            assert!(wakes(watch), "the ring started");
            assert!(watch.watching());
            watch.drain();
            assert!(!wakes(watch));

            // Where the guest reads whether to kick: the used ring's flags (split) or the
            // device event suppression flags (packed), both at 0x2000 + the layout's offset.
            let flags_at = if packed { 0x2002 } else { 0x2000 };
            let kick_flags = || {
                let mut b = [0u8; 2];
                assert!(mem.read(flags_at, &mut b));
                u16::from_le_bytes(b)
            };
            assert_eq!(kick_flags(), 1, "a polling PMD wants no kicks");
            assert!(
                !crate::kick::set_kicks(&ring, &mem, true),
                "nothing available"
            );
            assert_eq!(kick_flags(), 0, "kicks asked for");
            use std::io::Write;
            kick.write_all(&[1]).unwrap();
            assert!(wakes(watch), "woken by the kick");
            watch.drain();
            assert!(
                !wakes(watch),
                "drained: the kick's bytes were not read, yet it is quiet"
            );
            kick.write_all(&[1]).unwrap();
            assert!(wakes(watch), "the next kick wakes it again");
            watch.drain();
            assert!(!crate::kick::set_kicks(&ring, &mem, false));
            assert_eq!(kick_flags(), 1, "awake: kicks off again");

            // A buffer made available before the guest saw the request: asking says so.
            if packed {
                // Descriptor 0 available in round 1: AVAIL set, USED clear.
                assert!(mem.write(14, &(1u16 << 7).to_le_bytes()));
            } else {
                // The available ring's index.
                assert!(mem.write(0x1002, &1u16.to_le_bytes()));
            }
            assert!(crate::kick::set_kicks(&ring, &mem, true), "a buffer waits");

            // Stopped: the PMD wakes, and the old kick eventfd no longer wakes it.
            d.get_vring_base(1).unwrap();
            assert!(wakes(watch), "the ring stopped");
            assert!(!watch.watching());
            watch.drain();
            kick.write_all(&[1]).unwrap();
            assert!(!wakes(watch), "the old kick is out of the set");

            // A kick descriptor epoll cannot watch (a plain file): the PMD must not sleep on
            // it, and the port naps instead.
            d.set_vring_kick(1, Some(tempfile::tempfile().unwrap()))
                .unwrap();
            assert!(!watch.watching());
            d.reset();
            assert!(!watch.watching());
        }
    }

    #[test]
    fn the_guest_mtu_is_taken_as_dpdk_takes_it_and_shown_once_f_mtu_is_acked() {
        let mut d = Device::new(1);
        assert_ne!(d.offered_features() & VIRTIO_NET_F_MTU, 0);
        let proto = d.get_protocol_features().unwrap();
        assert!(proto.contains(VhostUserProtocolFeatures::MTU));
        d.set_owner().unwrap();
        for bad in [0, 67, 65536, u64::MAX] {
            assert!(
                matches!(d.net_set_mtu(bad), Err(Error::InvalidParam)),
                "{bad}"
            );
        }
        d.net_set_mtu(9000).unwrap();
        assert_eq!(d.guest_mtu(), None, "VIRTIO_NET_F_MTU not negotiated");
        d.set_features(VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MTU)
            .unwrap();
        assert_eq!(d.guest_mtu(), Some(9000));
        d.net_set_mtu(68).unwrap();
        assert_eq!(d.guest_mtu(), Some(68));
        d.reset();
        assert_eq!(d.guest_mtu(), None, "forgotten with the connection");
    }

    #[test]
    fn features_do_not_change_under_a_running_ring() {
        let mut d = packed_ring_running();
        let split = VIRTIO_F_VERSION_1;
        assert!(matches!(
            d.set_features(split),
            Err(Error::InvalidOperation(_))
        ));
        {
            let slot = lock_slot(&d.vrings[0]);
            assert!(slot.vring.live && slot.vring.queue.packed);
        }
        // The same features again change nothing, and are fine.
        d.set_features(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_PACKED)
            .unwrap();
        // Stopped, the ring may change layout; 200 entries cannot be split, so it stays down.
        d.get_vring_base(0).unwrap();
        d.set_features(split).unwrap();
        d.set_vring_kick(0, Some(tempfile::tempfile().unwrap()))
            .unwrap();
        let slot = lock_slot(&d.vrings[0]);
        assert!(!slot.vring.queue.packed);
        assert!(!slot.vring.live, "a 200-entry split ring does not run");
    }
}
