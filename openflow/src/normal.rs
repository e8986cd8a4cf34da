//! The OpenFlow `NORMAL` action: an L2 learning switch with MAC aging and VLAN access / trunk
//! ports, with Open vSwitch's semantics (`xlate_normal` in ofproto-dpif-xlate.c and
//! lib/mac-learning.c). [`normal_xlate`] runs on the upcall path: it learns the source MAC of
//! the packet, picks the output ports (the learned port, or a flood of the VLAN), emits the
//! datapath actions with the VLAN edits each port needs, and ORs into the megaflow mask only
//! the key bits it consulted. The [`MacTable`] is shared by every PMD thread; its
//! [`generation`](MacTable::generation) moves whenever a lookup may come out differently, so
//! the caller's megaflow cache revalidates, and the [`StatsSink`] pushed for each learned
//! source keeps that MAC alive while its traffic only hits the megaflow cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use pipeline::flowkey::{VLAN_PCP_MASK, VLAN_PRESENT, VLAN_VID_MASK};
use pipeline::{DpAction, FlowKey, StatsSink};

/// Open vSwitch's default MAC idle time: 300 s.
pub const DEFAULT_AGING_NS: u64 = 300 * 1_000_000_000;

/// Default capacity of a [`MacTable`] (Open vSwitch's `mac-table-size` default).
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

/// The TPID of a VLAN header pushed onto an untagged frame.
const TPID_8021Q: u16 = 0x8100;

/// How a port treats VLANs. VLAN ids are 12-bit (0..=4095); the control plane validates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanMode {
    /// Carries one VLAN, untagged on the wire. Untagged and priority-tagged (VID 0) frames in
    /// belong to it; frames tagged with any other VID are dropped.
    Access(u16),
    /// Carries the listed VLANs tagged (an empty list: every VLAN). Untagged frames belong to
    /// VLAN 0, which — as in Open vSwitch — a trunk carries only when its list is empty or
    /// names 0.
    Trunk(Vec<u16>),
    /// A trunk of `trunks` (empty: every VLAN) whose untagged and priority-tagged frames in
    /// belong to the native VLAN `tag`; out, the native VLAN's frames are tagged too
    /// (Open vSwitch's `vlan_mode=native-tagged`).
    NativeTagged { tag: u16, trunks: Vec<u16> },
    /// The same, except that the native VLAN's frames go out untagged
    /// (`vlan_mode=native-untagged`).
    NativeUntagged { tag: u16, trunks: Vec<u16> },
}

impl VlanMode {
    /// Whether a port in this mode is a member of `vlan`.
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            VlanMode::Access(tag) => *tag == vlan,
            VlanMode::Trunk(list) => list.is_empty() || list.contains(&vlan),
            VlanMode::NativeTagged { tag, trunks } | VlanMode::NativeUntagged { tag, trunks } => {
                *tag == vlan || trunks.is_empty() || trunks.contains(&vlan)
            }
        }
    }

    /// The VLAN of a frame that comes in tagged with `vid` (0: untagged or priority-tagged),
    /// or `None` when the port does not take it (Open vSwitch's `input_vid_to_vlan` and
    /// `input_vid_is_valid`).
    fn input_vlan(&self, vid: u16) -> Option<u16> {
        match self {
            VlanMode::Access(tag) => (vid == 0).then_some(*tag),
            VlanMode::Trunk(_) => self.carries(vid).then_some(vid),
            VlanMode::NativeTagged { tag, trunks } | VlanMode::NativeUntagged { tag, trunks } => {
                if vid == 0 {
                    Some(*tag)
                } else {
                    // A tagged frame needs a trunked VLAN, the native one included.
                    (trunks.is_empty() || trunks.contains(&vid)).then_some(vid)
                }
            }
        }
    }

    /// Whether frames of `vlan` leave this port as a trunk sends them (tagged, VLAN 0 aside);
    /// false: untagged.
    fn sends_tagged(&self, vlan: u16) -> bool {
        match self {
            VlanMode::Access(_) => false,
            VlanMode::Trunk(_) | VlanMode::NativeTagged { .. } => true,
            VlanMode::NativeUntagged { tag, .. } => *tag != vlan,
        }
    }
}

/// `OFPP_CONTROLLER` and `OFPP_ANY` (OpenFlow 1.0's `OFPP_NONE`): the in_port of a packet a
/// controller sends.
const OFPP_CONTROLLER: u32 = 0xffff_fffd;
const OFPP_NONE: u32 = 0xffff_ffff;

/// A bridge port as `NORMAL` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalPort {
    pub ofport: u32,
    pub vlan: VlanMode,
    /// False: never flooded to (OpenFlow `no-flood`); it still receives frames to MACs
    /// learned on it.
    pub flood: bool,
}

/// One learned MAC, for `fdb/show`-like output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntryInfo {
    pub port: u32,
    pub vlan: u16,
    pub mac: [u8; 6],
    /// When the MAC was last seen, on the pipeline clock.
    pub last_seen_ns: u64,
}

impl MacEntryInfo {
    /// Age of the entry at `now_ns` (0 if it was seen "after" `now_ns`).
    pub fn age_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.last_seen_ns)
    }
}

/// A table entry. The port never changes: a MAC that moves gets a fresh entry, and the old
/// one is marked superseded, so the sinks of megaflows learned on the old port know that the
/// table no longer says what they found.
#[derive(Debug)]
struct MacEntry {
    port: u32,
    last_seen_ns: AtomicU64,
    /// Out of the table: replaced by a move, aged out, evicted or flushed.
    superseded: AtomicBool,
}

impl MacEntry {
    fn new(port: u32, now_ns: u64) -> MacEntry {
        MacEntry {
            port,
            last_seen_ns: AtomicU64::new(now_ns),
            superseded: AtomicBool::new(false),
        }
    }

    fn retire(&self) {
        self.superseded.store(true, Ordering::Relaxed);
    }

    fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::Relaxed)
    }

    fn alive(&self, now_ns: u64, aging_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_seen_ns.load(Ordering::Relaxed)) < aging_ns
    }

    fn touch(&self, now_ns: u64) {
        // fetch_max: a late credit with an older timestamp must not make the entry older.
        self.last_seen_ns.fetch_max(now_ns, Ordering::Relaxed);
    }
}

/// Key of the table: VLAN and MAC address.
type MacKey = (u16, [u8; 6]);

/// The MAC learning table of one bridge: (VLAN, MAC) → port, with aging and a size limit.
/// Shared by threads; lookups take a read lock, only learning a new or moved MAC writes.
/// Clones share one table (the megaflows' sinks hold one to learn again).
#[derive(Debug, Clone)]
pub struct MacTable(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    aging_ns: u64,
    max_entries: usize,
    entries: RwLock<HashMap<MacKey, Arc<MacEntry>>>,
    generation: AtomicU64,
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable::new(DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES)
    }
}

impl MacTable {
    /// A table whose entries expire `aging_ns` after they were last seen and which holds at
    /// most `max_entries` MACs (0 disables learning: every frame floods).
    pub fn new(aging_ns: u64, max_entries: usize) -> MacTable {
        MacTable(Arc::new(Shared {
            aging_ns,
            max_entries,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }))
    }

    pub fn aging_ns(&self) -> u64 {
        self.0.aging_ns
    }

    pub fn max_entries(&self) -> usize {
        self.0.max_entries
    }

    /// A number that changes whenever a lookup may answer differently: a MAC learned, moved,
    /// evicted or expired, or the table flushed. Read it before translating.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Number of entries, expired ones not yet removed by [`expire`](Self::expire) included.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Removes the entries not seen for `aging_ns` at `now_ns`; returns how many.
    pub fn expire(&self, now_ns: u64) -> usize {
        // Most calls find nothing to do: check under the read lock first so that periodic
        // upkeep does not stall the upcalls of other threads.
        let any = self
            .read()
            .values()
            .any(|e| !e.alive(now_ns, self.0.aging_ns));
        if !any {
            return 0;
        }
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, e| {
            let keep = e.alive(now_ns, self.0.aging_ns);
            if !keep {
                e.retire();
            }
            keep
        });
        let removed = before - map.len();
        if removed > 0 {
            self.bump();
        }
        removed
    }

    /// The port `mac` was learned on in `vlan`, unless it has aged out by `now_ns` (an entry
    /// past its age is not used even before [`expire`](Self::expire) removes it).
    pub fn lookup(&self, vlan: u16, mac: [u8; 6], now_ns: u64) -> Option<u32> {
        self.read()
            .get(&(vlan, mac))
            .filter(|e| e.alive(now_ns, self.0.aging_ns))
            .map(|e| e.port)
    }

    /// As [`MacTable::learn`], but a live entry on another port stays there (None), and one
    /// on `port` is returned without being refreshed: what a re-translation may do that no
    /// new packet backs (see [`MacUse::learn`]). An absent or expired entry is learned.
    fn learn_unless_elsewhere(
        &self,
        vlan: u16,
        mac: [u8; 6],
        port: u32,
        now_ns: u64,
    ) -> Option<Arc<MacEntry>> {
        if let Some(e) = self
            .read()
            .get(&(vlan, mac))
            .filter(|e| e.alive(now_ns, self.0.aging_ns))
        {
            return (e.port == port).then(|| Arc::clone(e));
        }
        self.learn(vlan, mac, port, now_ns)
    }

    /// Every entry, least recently seen first (the order of Open vSwitch's `fdb/show`).
    pub fn entries(&self) -> Vec<MacEntryInfo> {
        let mut out: Vec<MacEntryInfo> = self
            .read()
            .iter()
            .map(|(&(vlan, mac), e)| MacEntryInfo {
                port: e.port,
                vlan,
                mac,
                last_seen_ns: e.last_seen_ns.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by_key(|e| (e.last_seen_ns, e.vlan, e.mac));
        out
    }

    /// Forgets every MAC.
    pub fn flush(&self) {
        for (_, e) in self.write().drain() {
            e.retire();
        }
        self.bump();
    }

    /// Forgets the MACs learned on one port (the port was removed or reconfigured); returns
    /// how many.
    pub fn flush_port(&self, ofport: u32) -> usize {
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, e| {
            if e.port == ofport {
                e.retire();
            }
            e.port != ofport
        });
        let removed = before - map.len();
        if removed > 0 {
            self.bump();
        }
        removed
    }

    /// Learns that `mac` is on `port` in `vlan` at `now_ns`; returns the entry so that a sink
    /// can keep it alive, or `None` when learning is disabled.
    fn learn(&self, vlan: u16, mac: [u8; 6], port: u32, now_ns: u64) -> Option<Arc<MacEntry>> {
        let key = (vlan, mac);
        // The common case, a known MAC seen again on its port, only needs the read lock.
        if let Some(e) = self.fresh_on(&self.read(), &key, port, now_ns) {
            return Some(e);
        }
        if self.0.max_entries == 0 {
            return None;
        }
        let mut map = self.write();
        // Another thread may have learned it between the two locks.
        if let Some(e) = self.fresh_on(&map, &key, port, now_ns) {
            return Some(e);
        }
        if !map.contains_key(&key) && map.len() >= self.0.max_entries {
            evict_oldest(&mut map);
        }
        // New, moved, or back after aging out: every case changes what lookups answer.
        let entry = Arc::new(MacEntry::new(port, now_ns));
        if let Some(old) = map.insert(key, Arc::clone(&entry)) {
            old.retire();
        }
        // Bump after the change is visible, so that a translation which read the old
        // generation cannot have seen the new table and be cached as current.
        self.bump();
        Some(entry)
    }

    /// The live entry for `key` if it is on `port`, refreshed to `now_ns`.
    fn fresh_on(
        &self,
        map: &HashMap<MacKey, Arc<MacEntry>>,
        key: &MacKey,
        port: u32,
        now_ns: u64,
    ) -> Option<Arc<MacEntry>> {
        let e = map.get(key)?;
        if e.port != port || !e.alive(now_ns, self.0.aging_ns) {
            return None;
        }
        e.touch(now_ns);
        Some(Arc::clone(e))
    }

    fn bump(&self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
    }

    // A poisoned lock only means another thread panicked mid-update of a plain map; the map
    // itself is still consistent, so keep using it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<MacKey, Arc<MacEntry>>> {
        self.0
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<MacKey, Arc<MacEntry>>> {
        self.0
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes the least recently seen entry. A linear scan, run only when a new MAC arrives at
/// a full table: lookups stay O(1), and a refresh stays a lock-free atomic store.
fn evict_oldest(map: &mut HashMap<MacKey, Arc<MacEntry>>) {
    let oldest = map
        .iter()
        .min_by_key(|(k, e)| (e.last_seen_ns.load(Ordering::Relaxed), **k))
        .map(|(k, _)| *k);
    if let Some(e) = oldest.and_then(|k| map.remove(&k)) {
        e.retire();
    }
}

/// What a `NORMAL` megaflow does with its packets' source while it carries traffic, as Open
/// vSwitch's xlate cache does when it pushes a used flow's stats: keeps the source's entry
/// alive, or, once the entry is out of the table (the MAC moved to another port, was
/// flushed or aged out), learns the source on the megaflow's input port again. A host that
/// comes back to a port it used before therefore moves back with its first frame, even when
/// that frame hits a megaflow made before it left.
struct MacRefresh {
    table: MacTable,
    /// The entry the translation found on this port; none when it was elsewhere.
    entry: Option<Arc<MacEntry>>,
    vlan: u16,
    mac: [u8; 6],
    port: u32,
}

impl StatsSink for MacRefresh {
    /// A host that moved back is learned with its first frame, not a push later.
    fn deferrable(&self) -> bool {
        false
    }

    fn credit(&self, packets: u64, _bytes: u64, _tcp_flags: u16, used_ns: u64) {
        if packets == 0 {
            return;
        }
        match &self.entry {
            Some(e) if !e.is_superseded() => e.touch(used_ns),
            _ => {
                // A write only when the table disagrees (a move back); the megaflows are
                // revalidated after it, and take sinks holding the new entry.
                let _ = self.table.learn(self.vlan, self.mac, self.port, used_ns);
            }
        }
    }
}

fn is_multicast(mac: [u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// Destinations Open vSwitch never forwards with `NORMAL` (unless `forward_bpdu`, which
/// vecswitch does not have): IEEE 802.1D reserved (STP, pause, LACP, LLDP, ...) and the
/// Extreme and Cisco control protocols, as listed in lib/packets.c `eth_addr_is_reserved`.
fn is_reserved(mac: [u8; 6]) -> bool {
    const RESERVED: [u64; 15] = [
        0x00e0_2b00_0000, // EDP
        0x00e0_2b00_0004, // EAPS
        0x00e0_2b00_0006, // EAPS
        0x0100_0c00_0000, // ISL
        0x0100_0ccc_cccc, // PAgP, UDLD, CDP, DTP, VTP
        0x0100_0ccc_cccd, // PVST+
        0x0100_0ccd_cdcd, // STP Uplink Fast, FlexLink
        0x0100_0ccc_ccc0, // Cisco CFM, ..c0 to ..c7
        0x0100_0ccc_ccc1,
        0x0100_0ccc_ccc2,
        0x0100_0ccc_ccc3,
        0x0100_0ccc_ccc4,
        0x0100_0ccc_ccc5,
        0x0100_0ccc_ccc6,
        0x0100_0ccc_ccc7,
    ];
    let v = mac.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    // 01:80:c2:00:00:00 to 0f: the IEEE 802.1D reserved block.
    (v & !0xf) == 0x0180_c200_0000 || RESERVED.contains(&v)
}

/// The VLAN state a frame must leave a port in: untagged, or tagged with a VID and the input
/// frame's PCP (0 for an untagged input).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Egress {
    Untagged,
    Tagged(u16),
}

/// The MAC table as one translation uses it.
#[derive(Clone, Copy)]
pub struct MacUse<'a> {
    pub table: &'a MacTable,
    pub now_ns: u64,
    /// Learn the packet's source. False when re-translating a megaflow that no packet used
    /// since the last revalidation: a source learned on another port then stays there (the
    /// megaflow's sink learns it on this port again only if packets use the megaflow), while
    /// one that is not in the table (flushed, aged out) is learned as before.
    pub learn: bool,
}

/// Translates the `NORMAL` action for a packet with `key` at `macs.now_ns`: learns its
/// source (when `macs.learn`), appends the datapath actions to `actions` (nothing when the
/// packet is dropped), ORs the key bits it consulted into `mask`, and pushes the sink that
/// keeps the source's entry alive.
///
/// Outputs are grouped by the VLAN state they need: first the ports that take the frame as it
/// is, then one VLAN edit and the rest, each group in the order of `ports`. A frame that was
/// untagged gets `PushVlan` (TPID 0x8100, PCP 0); a tagged one `SetVlanVid` (its TPID and PCP
/// stay) or `PopVlan`. That is one edit at most, except for a priority-tagged frame from an
/// access port flooded to both kinds of port: `SetVlanVid` for the trunks, then `PopVlan`.
///
/// Returns where the packet went, for NetFlow's output interface.
///
/// Read [`MacTable::generation`] before calling, and tag the megaflow with that value.
pub fn normal_xlate(
    key: &FlowKey,
    ports: &[NormalPort],
    macs: MacUse<'_>,
    actions: &mut Vec<DpAction>,
    mask: &mut FlowKey,
    sinks: &mut Vec<Arc<dyn StatsSink>>,
) -> NormalOutput {
    mask.in_port = u32::MAX;
    // A controller's packet (a PACKET_OUT from CONTROLLER or ANY/NONE) has no port: as Open
    // vSwitch's `ofpp_none_bundle`, it is a trunk of every VLAN that learns nothing.
    let none_port;
    let from_controller = matches!(key.in_port, OFPP_CONTROLLER | OFPP_NONE);
    let in_port = match ports.iter().find(|p| p.ofport == key.in_port) {
        Some(p) => p,
        None if from_controller => {
            none_port = NormalPort {
                ofport: key.in_port,
                vlan: VlanMode::Trunk(Vec::new()),
                flood: false,
            };
            &none_port
        }
        None => return NormalOutput::Dropped,
    };

    // Input VLAN.
    mask.vlan_tci |= VLAN_PRESENT | VLAN_VID_MASK;
    let tagged = key.vlan_tci & VLAN_PRESENT != 0;
    let in_vid = if tagged {
        key.vlan_tci & VLAN_VID_MASK
    } else {
        0
    };
    let Some(vlan) = in_port.vlan.input_vlan(in_vid) else {
        return NormalOutput::Dropped;
    };

    mask.dl_dst = [0xff; 6];
    if is_reserved(key.dl_dst) {
        return NormalOutput::Dropped;
    }

    // Learning: never from a multicast source (a broken or malicious sender).
    mask.dl_src = [0xff; 6];
    if !is_multicast(key.dl_src) && !from_controller {
        let (table, now_ns) = (macs.table, macs.now_ns);
        let entry = if macs.learn {
            table.learn(vlan, key.dl_src, in_port.ofport, now_ns)
        } else {
            table.learn_unless_elsewhere(vlan, key.dl_src, in_port.ofport, now_ns)
        };
        if table.max_entries() > 0 {
            sinks.push(Arc::new(MacRefresh {
                table: table.clone(),
                entry,
                vlan,
                mac: key.dl_src,
                port: in_port.ofport,
            }));
        }
    }

    // Forwarding.
    let learned = if is_multicast(key.dl_dst) {
        None
    } else {
        macs.table.lookup(vlan, key.dl_dst, macs.now_ns)
    };
    if let Some(port) = learned {
        if port == in_port.ofport {
            return NormalOutput::Dropped;
        }
        // A port that left the bridge or the VLAN since it was learned is stale: flood,
        // as Open vSwitch does.
        if let Some(out) = ports
            .iter()
            .find(|p| p.ofport == port && p.vlan.carries(vlan))
        {
            emit_outputs(
                key,
                vlan,
                std::slice::from_ref(out),
                |_| true,
                actions,
                mask,
            );
            return NormalOutput::Port(out.ofport);
        }
    }
    let in_ofport = in_port.ofport;
    emit_outputs(
        key,
        vlan,
        ports,
        |p| p.ofport != in_ofport && p.flood && p.vlan.carries(vlan),
        actions,
        mask,
    );
    NormalOutput::Flooded
}

/// Where NORMAL sent a packet, as NetFlow reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalOutput {
    Dropped,
    /// To one learned port.
    Port(u32),
    /// Flooded (unknown, broadcast or multicast destination).
    Flooded,
}

/// Appends the outputs to the ports of `candidates` that `selected` keeps, with the VLAN
/// edits each needs, in the grouping described at [`normal_xlate`].
fn emit_outputs(
    key: &FlowKey,
    vlan: u16,
    candidates: &[NormalPort],
    selected: impl Fn(&NormalPort) -> bool,
    actions: &mut Vec<DpAction>,
    mask: &mut FlowKey,
) {
    let tagged = key.vlan_tci & VLAN_PRESENT != 0;
    let current = if tagged {
        Egress::Tagged(key.vlan_tci & VLAN_VID_MASK)
    } else {
        Egress::Untagged
    };
    // A trunk sends VLAN 0 untagged, except that a tagged frame with a nonzero PCP keeps a
    // priority tag (Open vSwitch's xvlan_put): only then does the PCP decide anything.
    let trunk_pcp = tagged && key.vlan_tci & VLAN_PCP_MASK != 0;
    let trunk_egress = if vlan != 0 || trunk_pcp {
        Egress::Tagged(vlan)
    } else {
        Egress::Untagged
    };
    let egress = |p: &NormalPort| {
        if p.vlan.sends_tagged(vlan) {
            trunk_egress
        } else {
            Egress::Untagged
        }
    };

    // The ports that take the frame as it is go first, then the other states. Tagged goes
    // before untagged so that a tag is never pushed after a pop (that would need the popped
    // header's TPID and PCP).
    let order = [current, trunk_egress, Egress::Untagged];
    let mut state = current;
    for (i, &target) in order.iter().enumerate() {
        if order[..i].contains(&target) {
            continue;
        }
        let mut edited = target == state;
        for p in candidates.iter().filter(|p| selected(p)) {
            if egress(p) != target {
                continue;
            }
            if p.vlan.sends_tagged(vlan) && vlan == 0 && tagged {
                mask.vlan_tci |= VLAN_PCP_MASK;
            }
            if !edited {
                // Only an untagged input is ever untagged here (see the order above), so a
                // pushed tag has the 802.1Q TPID and PCP 0, as Open vSwitch gives it.
                actions.push(match target {
                    Egress::Tagged(vid) if state == Egress::Untagged => DpAction::PushVlan {
                        tpid: TPID_8021Q,
                        tci: vid & VLAN_VID_MASK,
                    },
                    Egress::Tagged(vid) => DpAction::SetVlanVid(vid & VLAN_VID_MASK),
                    Egress::Untagged => DpAction::PopVlan,
                });
                state = target;
                edited = true;
            }
            actions.push(DpAction::Output(p.ofport));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_vlan_modes_as_open_vswitch_has_them() {
        let tagged = VlanMode::NativeTagged {
            tag: 10,
            trunks: vec![10, 20],
        };
        let untagged = VlanMode::NativeUntagged {
            tag: 20,
            trunks: vec![],
        };
        // In: untagged and priority-tagged frames are the native VLAN; tagged ones need a
        // trunked VLAN.
        assert_eq!(tagged.input_vlan(0), Some(10));
        assert_eq!(tagged.input_vlan(20), Some(20));
        assert_eq!(tagged.input_vlan(30), None);
        assert_eq!(untagged.input_vlan(0), Some(20));
        assert_eq!(untagged.input_vlan(4000), Some(4000));
        // Membership: the native VLAN and the trunks.
        assert!(tagged.carries(10) && tagged.carries(20) && !tagged.carries(30));
        assert!(untagged.carries(20) && untagged.carries(7));
        // Out: native-tagged tags its native VLAN, native-untagged does not.
        assert!(tagged.sends_tagged(10) && tagged.sends_tagged(20));
        assert!(!untagged.sends_tagged(20) && untagged.sends_tagged(10));
        assert!(!VlanMode::Access(10).sends_tagged(10));
    }
    use pipeline::flowkey::VLAN_PCP_SHIFT;

    const SEC: u64 = 1_000_000_000;
    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
    const BCAST: [u8; 6] = [0xff; 6];

    struct Out {
        actions: Vec<DpAction>,
        mask: FlowKey,
        sinks: Vec<Arc<dyn StatsSink>>,
    }

    fn xlate(key: &FlowKey, ports: &[NormalPort], macs: &MacTable, now_ns: u64) -> Out {
        let mut out = Out {
            actions: Vec::new(),
            mask: FlowKey::default(),
            sinks: Vec::new(),
        };
        normal_xlate(
            key,
            ports,
            MacUse {
                table: macs,
                now_ns,
                learn: true,
            },
            &mut out.actions,
            &mut out.mask,
            &mut out.sinks,
        );
        out
    }

    fn access(ofport: u32, tag: u16) -> NormalPort {
        NormalPort {
            ofport,
            vlan: VlanMode::Access(tag),
            flood: true,
        }
    }

    fn trunk(ofport: u32, vlans: &[u16]) -> NormalPort {
        NormalPort {
            ofport,
            vlan: VlanMode::Trunk(vlans.to_vec()),
            flood: true,
        }
    }

    /// An untagged frame.
    fn frame(in_port: u32, src: [u8; 6], dst: [u8; 6]) -> FlowKey {
        FlowKey {
            in_port,
            dl_src: src,
            dl_dst: dst,
            dl_type: 0x0800,
            nw_src: 0x0a00_0001,
            tp_dst: 80,
            ..FlowKey::default()
        }
    }

    /// A frame with an 802.1Q header.
    fn tagged(in_port: u32, src: [u8; 6], dst: [u8; 6], vid: u16, pcp: u16) -> FlowKey {
        FlowKey {
            vlan_tpid: 0x8100,
            vlan_tci: VLAN_PRESENT | (pcp << VLAN_PCP_SHIFT) | vid,
            ..frame(in_port, src, dst)
        }
    }

    /// The mask of a translation that consulted port, VLAN and both MACs.
    fn l2_mask() -> FlowKey {
        FlowKey {
            in_port: u32::MAX,
            dl_src: [0xff; 6],
            dl_dst: [0xff; 6],
            vlan_tci: VLAN_PRESENT | VLAN_VID_MASK,
            ..FlowKey::default()
        }
    }

    use DpAction::{Output, PopVlan, PushVlan, SetVlanVid};

    #[test]
    fn learning_then_unicast() {
        let ports = [access(1, 10), access(2, 10), access(3, 10)];
        let macs = MacTable::default();
        let g0 = macs.generation();

        // B is unknown: flood, and A is learned on port 1.
        let out = xlate(&frame(1, A, B), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2), Output(3)]);
        assert_eq!(out.sinks.len(), 1);
        assert_eq!(macs.lookup(10, A, SEC), Some(1));
        let g1 = macs.generation();
        assert_ne!(g0, g1, "learning a new MAC must revalidate");

        // The reply to A is unicast, and learns B.
        let out = xlate(&frame(2, B, A), &ports, &macs, 2 * SEC);
        assert_eq!(out.actions, [Output(1)]);
        assert_eq!(macs.lookup(10, B, 2 * SEC), Some(2));
        let g2 = macs.generation();
        assert_ne!(g1, g2);

        // Now A → B is unicast too; seeing A again on its port changes nothing.
        let out = xlate(&frame(1, A, B), &ports, &macs, 3 * SEC);
        assert_eq!(out.actions, [Output(2)]);
        assert_eq!(macs.generation(), g2);
        assert_eq!(macs.len(), 2);
    }

    #[test]
    fn destination_on_input_port_is_dropped() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::default();
        xlate(&frame(1, B, BCAST), &ports, &macs, SEC);
        let out = xlate(&frame(1, A, B), &ports, &macs, SEC);
        assert!(out.actions.is_empty());
        // The source is still learned.
        assert_eq!(macs.lookup(10, A, SEC), Some(1));
    }

    #[test]
    fn flooding_keeps_vlans_apart() {
        let ports = [
            access(1, 10),
            access(2, 10),
            access(3, 20),
            trunk(4, &[]),
            trunk(5, &[20]),
            access(6, 10),
        ];
        let macs = MacTable::default();
        let out = xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        assert_eq!(
            out.actions,
            [
                Output(2),
                Output(6),
                PushVlan {
                    tpid: 0x8100,
                    tci: 10
                },
                Output(4)
            ]
        );
        let out = xlate(&frame(3, B, BCAST), &ports, &macs, SEC);
        assert_eq!(
            out.actions,
            [
                PushVlan {
                    tpid: 0x8100,
                    tci: 20
                },
                Output(4),
                Output(5)
            ]
        );
        // Learned per VLAN: A is known in VLAN 10 only, so a frame to A in VLAN 20 floods.
        assert_eq!(macs.lookup(10, A, SEC), Some(1));
        assert_eq!(macs.lookup(20, A, SEC), None);
        let out = xlate(&frame(3, B, A), &ports, &macs, SEC);
        assert_eq!(
            out.actions,
            [
                PushVlan {
                    tpid: 0x8100,
                    tci: 20
                },
                Output(4),
                Output(5)
            ]
        );
    }

    #[test]
    fn multicast_destination_floods_even_if_learned() {
        let ports = [access(1, 10), access(2, 10), access(3, 10)];
        let macs = MacTable::default();
        let group = [0x01, 0x00, 0x5e, 0, 0, 1];
        let out = xlate(&frame(1, A, group), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2), Output(3)]);
    }

    #[test]
    fn no_flood_port_gets_only_unicast() {
        let mut quiet = access(3, 10);
        quiet.flood = false;
        let ports = [access(1, 10), access(2, 10), quiet];
        let macs = MacTable::default();
        let out = xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2)]);
        xlate(&frame(3, C, BCAST), &ports, &macs, SEC);
        let out = xlate(&frame(1, A, C), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(3)]);
    }

    #[test]
    fn trunk_to_access_and_trunk() {
        let ports = [
            access(1, 10),
            trunk(2, &[]),
            access(3, 10),
            trunk(4, &[10, 20]),
        ];
        let macs = MacTable::default();
        // Tagged in on a trunk: the trunks take it as it is (PCP kept), the access ports
        // after one pop.
        let out = xlate(&tagged(2, A, BCAST, 10, 5), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(4), PopVlan, Output(1), Output(3)]);
        assert_eq!(out.mask, l2_mask(), "no PCP: it is kept, never decided on");
        // Unicast back from an access port to the trunk: push the tag.
        let out = xlate(&frame(1, B, A), &ports, &macs, SEC);
        let push10 = PushVlan {
            tpid: 0x8100,
            tci: 10,
        };
        assert_eq!(out.actions, [push10, Output(2)]);
        // Unicast from the trunk to an access port: pop.
        let out = xlate(&tagged(4, C, B, 10, 0), &ports, &macs, SEC);
        assert_eq!(out.actions, [PopVlan, Output(1)]);
        // Trunk to trunk in the same VLAN: no edit.
        let out = xlate(&tagged(4, C, A, 10, 3), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2)]);
    }

    #[test]
    fn priority_tagged_on_access_port_is_retagged_with_its_pcp() {
        let ports = [access(1, 10), trunk(2, &[]), access(3, 10)];
        let macs = MacTable::default();
        let out = xlate(&tagged(1, A, BCAST, 0, 6), &ports, &macs, SEC);
        // VID 0 → 10 keeps the header's TPID and PCP; then the access port gets it untagged.
        assert_eq!(out.actions, [SetVlanVid(10), Output(2), PopVlan, Output(3)]);
        assert_eq!(macs.lookup(10, A, SEC), Some(1));
        assert_eq!(out.mask, l2_mask());
    }

    #[test]
    fn vlan_zero_on_trunks() {
        let ports = [trunk(1, &[]), trunk(2, &[]), access(3, 0), trunk(4, &[10])];
        let macs = MacTable::default();
        // Untagged in on a trunk is VLAN 0; trunks send it untagged; trunk 4 does not carry 0.
        let out = xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2), Output(3)]);
        assert_eq!(out.mask, l2_mask());
        // A priority tag with a PCP stays on trunks (Open vSwitch's xvlan_put), so the PCP
        // was consulted.
        let out = xlate(&tagged(1, A, BCAST, 0, 4), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2), PopVlan, Output(3)]);
        let mut pcp_mask = l2_mask();
        pcp_mask.vlan_tci |= VLAN_PCP_MASK;
        assert_eq!(out.mask, pcp_mask);
        // A priority tag without PCP is dropped everywhere.
        let out = xlate(&tagged(1, A, BCAST, 0, 0), &ports, &macs, SEC);
        assert_eq!(out.actions, [PopVlan, Output(2), Output(3)]);
        assert_eq!(out.mask, pcp_mask);
        // Untagged frames on a trunk that does not list VLAN 0 are dropped.
        let out = xlate(&frame(4, B, BCAST), &ports, &macs, SEC);
        assert!(out.actions.is_empty());
        assert_eq!(macs.lookup(0, B, SEC), None);
    }

    #[test]
    fn tagged_frame_on_access_port_is_dropped() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::default();
        let out = xlate(&tagged(1, A, BCAST, 10, 0), &ports, &macs, SEC);
        assert!(out.actions.is_empty());
        assert!(out.sinks.is_empty());
        assert!(macs.is_empty(), "a dropped frame teaches nothing");
        // Only the port and the VLAN decided the drop.
        let mask = FlowKey {
            in_port: u32::MAX,
            vlan_tci: VLAN_PRESENT | VLAN_VID_MASK,
            ..FlowKey::default()
        };
        assert_eq!(out.mask, mask);
    }

    #[test]
    fn vid_not_in_trunk_list_is_dropped() {
        let ports = [trunk(1, &[10, 20]), trunk(2, &[])];
        let macs = MacTable::default();
        let out = xlate(&tagged(1, A, BCAST, 30, 0), &ports, &macs, SEC);
        assert!(out.actions.is_empty());
        assert!(macs.is_empty());
        let out = xlate(&tagged(1, A, BCAST, 20, 0), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2)]);
    }

    #[test]
    fn unknown_input_port_is_dropped_on_in_port_alone() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::default();
        let out = xlate(&frame(9, A, BCAST), &ports, &macs, SEC);
        assert!(out.actions.is_empty());
        assert!(macs.is_empty());
        let mask = FlowKey {
            in_port: u32::MAX,
            ..FlowKey::default()
        };
        assert_eq!(out.mask, mask);
    }

    #[test]
    fn reserved_destinations_and_multicast_sources() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::default();
        for dst in [
            [0x01, 0x80, 0xc2, 0, 0, 0x00],
            [0x01, 0x80, 0xc2, 0, 0, 0x0e],
            [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcd],
        ] {
            let out = xlate(&frame(1, A, dst), &ports, &macs, SEC);
            assert!(out.actions.is_empty(), "{dst:02x?}");
        }
        assert!(macs.is_empty());
        // 01:80:c2:00:00:10 is outside the reserved block: flooded.
        let out = xlate(
            &frame(1, A, [0x01, 0x80, 0xc2, 0, 0, 0x10]),
            &ports,
            &macs,
            SEC,
        );
        assert_eq!(out.actions, [Output(2)]);
        // A multicast source is forwarded but never learned.
        macs.flush();
        let out = xlate(&frame(1, [0x03, 0, 0, 0, 0, 1], BCAST), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2)]);
        assert!(out.sinks.is_empty());
        assert!(macs.is_empty());
    }

    #[test]
    fn mac_move_bumps_generation() {
        let ports = [access(1, 10), access(2, 10), access(3, 10)];
        let macs = MacTable::default();
        let old = xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        let g = macs.generation();
        xlate(&frame(2, A, BCAST), &ports, &macs, 2 * SEC);
        assert_ne!(macs.generation(), g);
        assert_eq!(macs.lookup(10, A, 2 * SEC), Some(2));
        assert_eq!(macs.len(), 1);
        // No traffic on the megaflow learned on the old port: nothing changes.
        old.sinks[0].credit(0, 0, 0, 3 * SEC);
        assert_eq!(macs.lookup(10, A, 3 * SEC), Some(2));
        // Traffic on it: the MAC is back on port 1 (a frame hit a megaflow made before the
        // move, so no translation saw it), and the table says so at once.
        let g = macs.generation();
        old.sinks[0].credit(1, 64, 0, 4 * SEC);
        assert_eq!(macs.lookup(10, A, 4 * SEC), Some(1));
        assert_ne!(macs.generation(), g);
        let e = macs.entries();
        assert_eq!((e.len(), e[0].port, e[0].last_seen_ns), (1, 1, 4 * SEC));
        // The sink of port 2's megaflow, whose entry that superseded, moves it again.
        let on2 = xlate(&frame(3, B, A), &ports, &macs, 4 * SEC);
        assert_eq!(on2.actions, [Output(1)]);
        let back = xlate(&frame(2, A, B), &ports, &macs, 5 * SEC);
        assert_eq!(macs.lookup(10, A, 5 * SEC), Some(2));
        old.sinks[0].credit(2, 128, 0, 6 * SEC);
        assert_eq!(macs.lookup(10, A, 6 * SEC), Some(1));
        back.sinks[0].credit(1, 64, 0, 7 * SEC);
        assert_eq!(macs.lookup(10, A, 7 * SEC), Some(2));
        // Without learning there are no sinks to do it.
        let off = MacTable::new(DEFAULT_AGING_NS, 0);
        assert!(xlate(&frame(1, A, BCAST), &ports, &off, SEC)
            .sinks
            .is_empty());
    }

    #[test]
    fn aging_and_refresh_through_the_sink() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::new(10 * SEC, 16);
        let out = xlate(&frame(1, A, BCAST), &ports, &macs, 0);
        xlate(&frame(2, B, BCAST), &ports, &macs, 0);
        assert_eq!(macs.expire(5 * SEC), 0);
        // A keeps sending through the megaflow cache only.
        out.sinks[0].credit(3, 192, 0, 8 * SEC);
        // A zero-packet credit is not traffic.
        out.sinks[0].credit(0, 0, 0, 9 * SEC);
        // An out-of-order credit does not age the entry back.
        out.sinks[0].credit(1, 64, 0, 6 * SEC);
        let g = macs.generation();
        assert_eq!(
            macs.lookup(10, B, 10 * SEC),
            None,
            "aged even before expire()"
        );
        assert_eq!(macs.expire(10 * SEC), 1);
        assert_ne!(macs.generation(), g);
        assert_eq!(macs.lookup(10, A, 17 * SEC), Some(1));
        let e = macs.entries();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].last_seen_ns, 8 * SEC);
        assert_eq!(e[0].age_ns(17 * SEC), 9 * SEC);
        let g = macs.generation();
        assert_eq!(macs.expire(17 * SEC), 0);
        assert_eq!(
            macs.generation(),
            g,
            "nothing expired, nothing to revalidate"
        );
        assert_eq!(macs.expire(18 * SEC), 1);
        assert!(macs.is_empty());
    }

    #[test]
    fn relearning_an_aged_mac_on_the_same_port_bumps_generation() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::new(10 * SEC, 16);
        xlate(&frame(1, A, BCAST), &ports, &macs, 0);
        let g = macs.generation();
        // Aged (lookups say unknown) but not yet removed: seeing A again is news.
        xlate(&frame(1, A, BCAST), &ports, &macs, 11 * SEC);
        assert_ne!(macs.generation(), g);
        assert_eq!(macs.lookup(10, A, 11 * SEC), Some(1));
    }

    #[test]
    fn mask_holds_exactly_the_consulted_fields() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::default();
        let key = frame(1, A, B);
        let out = xlate(&key, &ports, &macs, SEC);
        assert_eq!(out.mask, l2_mask());
        // No dl_type, IP or L4 bit: the megaflow covers every protocol between the two MACs.
        assert_eq!(out.mask.dl_type, 0);
        assert_eq!(out.mask.nw_src, 0);
        assert_eq!(out.mask.tp_dst, 0);
        // Bits already in the mask stay.
        let mut mask = FlowKey {
            nw_dst: 0xffff_ff00,
            ..FlowKey::default()
        };
        let (mut actions, mut sinks) = (Vec::new(), Vec::new());
        normal_xlate(
            &key,
            &ports,
            MacUse {
                table: &macs,
                now_ns: SEC,
                learn: true,
            },
            &mut actions,
            &mut mask,
            &mut sinks,
        );
        assert_eq!(mask.nw_dst, 0xffff_ff00);
        assert_eq!(mask.dl_src, [0xff; 6]);
    }

    #[test]
    fn stale_learned_port_floods() {
        let ports = [access(1, 10), access(2, 10), access(3, 10)];
        let macs = MacTable::default();
        xlate(&frame(3, B, BCAST), &ports, &macs, SEC);
        // Port 3 moved to VLAN 20 without a flush: its entry must not be used.
        let moved = [access(1, 10), access(2, 10), access(3, 20)];
        let out = xlate(&frame(1, A, B), &moved, &macs, SEC);
        assert_eq!(out.actions, [Output(2)]);
        assert_eq!(macs.flush_port(3), 1);
        assert_eq!(macs.lookup(10, B, SEC), None);
    }

    #[test]
    fn full_table_evicts_the_least_recently_seen() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::new(DEFAULT_AGING_NS, 2);
        let a = xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        xlate(&frame(1, B, BCAST), &ports, &macs, 2 * SEC);
        a.sinks[0].credit(1, 64, 0, 3 * SEC);
        let g = macs.generation();
        xlate(&frame(2, C, BCAST), &ports, &macs, 4 * SEC);
        assert_ne!(macs.generation(), g);
        let e = macs.entries();
        assert_eq!(
            e.iter().map(|e| (e.mac, e.port)).collect::<Vec<_>>(),
            [(A, 1), (C, 2)],
            "B was the oldest; entries() lists least recently seen first"
        );
        assert_eq!(macs.len(), 2);
    }

    #[test]
    fn zero_capacity_disables_learning() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::new(DEFAULT_AGING_NS, 0);
        let out = xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        assert_eq!(out.actions, [Output(2)]);
        assert!(out.sinks.is_empty());
        assert!(macs.is_empty());
    }

    #[test]
    fn flush_bumps_generation() {
        let ports = [access(1, 10), access(2, 10)];
        let macs = MacTable::default();
        xlate(&frame(1, A, BCAST), &ports, &macs, SEC);
        let g = macs.generation();
        macs.flush();
        assert_ne!(macs.generation(), g);
        assert!(macs.is_empty());
        let g = macs.generation();
        assert_eq!(macs.flush_port(1), 0);
        assert_eq!(macs.generation(), g);
    }

    #[test]
    fn shared_by_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MacTable>();
        let macs = Arc::new(MacTable::default());
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let macs = Arc::clone(&macs);
                std::thread::spawn(move || {
                    let ports = [access(1, 10), access(2, 10), access(3, 10), access(4, 10)];
                    for i in 0..100u8 {
                        let src = [0x02, 0, 0, 0, t, i];
                        xlate(&frame(u32::from(t) + 1, src, BCAST), &ports, &macs, SEC);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(macs.len(), 400);
        assert_eq!(macs.generation(), 400);
        assert_eq!(macs.lookup(10, [0x02, 0, 0, 0, 3, 99], SEC), Some(4));
    }
}
