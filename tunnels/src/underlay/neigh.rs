//! The neighbour table of the underlay, after Open vSwitch's `lib/tnl-neigh-cache.c`: the MAC
//! of a next hop (bridge, IP), to address the outer Ethernet header of an encapsulated frame.
//! Entries are *static* (`neigh-add`; they never age, and snooping never changes them) or
//! *dynamic*: learned by [`NeighTable::snoop`] from the ARP and neighbour-advertisement
//! frames OVS learns from, or by [`NeighTable::learn`] (OVS also learns the outer source of
//! every tunnel packet it receives). A dynamic entry expires after an idle time (OVS's
//! `NEIGH_ENTRY_DEFAULT_IDLE_TIME_MS`, 15 minutes) on the caller's clock; as in OVS, a lookup
//! that finds it counts as a use. The table holds at most `max_entries`, so a flood of ARP
//! cannot grow it without bound, and its [`generation`](NeighTable::generation) moves with
//! every change that may alter a lookup, for the datapath to re-resolve the encap headers it
//! cached. [`arp_request`] and [`nd_solicit`] build the frames that ask for a missing MAC.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pipeline::wire::{
    arp, ethernet, ethertype, protocol, vlan, ArpPacket, ArpRepr, EthernetFrame, FrameBuilder,
    Icmpv6Packet, Icmpv6Repr, Ipv6Packet, Ipv6Repr, VlanTag,
};

/// Open vSwitch's idle time of a learned neighbour: 15 minutes.
pub const DEFAULT_IDLE_NS: u64 = 15 * 60 * 1_000_000_000;

/// Default bound on the entries of a [`NeighTable`].
pub const DEFAULT_MAX_ENTRIES: usize = 65_536;

/// How an entry came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NeighKind {
    /// Set with `neigh-add`: never ages, never changed by snooping.
    Static,
    /// Learned; expires when idle.
    Dynamic,
}

impl NeighKind {
    /// The label of `show-neighbours`.
    pub const fn label(self) -> &'static str {
        match self {
            NeighKind::Static => "STATIC",
            NeighKind::Dynamic => "DYNAMIC",
        }
    }
}

/// A refused neighbour change, naming the field at fault. The table is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NeighError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("unexpected argument \"{0}\"")]
    Unexpected(String),
    #[error("ip: \"{0}\" is not an IP address")]
    BadIp(String),
    #[error("ip: {0} is not a unicast address")]
    NotUnicastIp(IpAddr),
    #[error("mac: \"{0}\" is not an Ethernet address")]
    BadMac(String),
    #[error("mac: {0} is not a unicast Ethernet address")]
    NotUnicastMac(String),
    #[error("no neighbour {ip} on {bridge}")]
    NotFound { bridge: String, ip: IpAddr },
    #[error("the neighbour table is full: its {0} entries are all static")]
    Full(usize),
}

/// A `neigh-add` request: `BRIDGE IP MAC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighSpec {
    pub bridge: String,
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

impl NeighSpec {
    /// Parses the words after `neigh-add`: `BRIDGE IP MAC`.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<NeighSpec, NeighError> {
        let mut words = args.iter().map(AsRef::as_ref);
        let (bridge, ip) = bridge_and_ip(&mut words)?;
        let m = words.next().ok_or(NeighError::Missing("mac"))?;
        let mac = pipeline::field::ofctl::mac(m).map_err(|_| NeighError::BadMac(m.to_string()))?;
        if !is_unicast_mac(mac) {
            return Err(NeighError::NotUnicastMac(format_mac(mac)));
        }
        if let Some(w) = words.next() {
            return Err(NeighError::Unexpected(w.to_string()));
        }
        Ok(NeighSpec { bridge, ip, mac })
    }
}

/// Parses the words after `neigh-del`: `BRIDGE IP`.
pub fn parse_neigh_del<S: AsRef<str>>(args: &[S]) -> Result<(String, IpAddr), NeighError> {
    let mut words = args.iter().map(AsRef::as_ref);
    let found = bridge_and_ip(&mut words)?;
    match words.next() {
        Some(w) => Err(NeighError::Unexpected(w.to_string())),
        None => Ok(found),
    }
}

fn bridge_and_ip<'a>(
    words: &mut impl Iterator<Item = &'a str>,
) -> Result<(String, IpAddr), NeighError> {
    let bridge = words
        .next()
        .filter(|b| !b.is_empty())
        .ok_or(NeighError::Missing("bridge"))?;
    let w = words.next().ok_or(NeighError::Missing("ip"))?;
    let ip: IpAddr = w.parse().map_err(|_| NeighError::BadIp(w.to_string()))?;
    if !is_unicast_ip(ip) {
        return Err(NeighError::NotUnicastIp(ip));
    }
    Ok((bridge.to_string(), ip))
}

fn is_unicast_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

fn is_unicast_mac(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

pub use pipeline::field::ofctl::format_mac;

/// One entry, for `show-neighbours`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighInfo {
    pub bridge: String,
    pub ip: IpAddr,
    pub mac: [u8; 6],
    pub kind: NeighKind,
    /// When the entry was set, learned or last looked up, on the caller's clock.
    pub last_used_ns: u64,
    /// A dynamic entry past its idle time, not yet removed by [`NeighTable::expire`]
    /// (OVS's `STALE`); lookups no longer answer with it.
    pub stale: bool,
}

/// What [`NeighTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    /// A new entry (or one whose predecessor had expired).
    Added,
    /// The MAC of a live dynamic entry changed.
    Changed,
    /// The same MAC again: its idle time starts over.
    Refreshed,
    /// The address has a static entry, which learning never changes.
    Static,
    /// The table is full of static entries.
    Full,
    /// Not a unicast IP address and MAC: nothing learned.
    Invalid,
}

/// What [`NeighTable::snoop`] made of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snoop {
    /// Neither ARP nor ICMPv6 neighbour discovery.
    NotNeighbour,
    /// ARP, or IPv6 carrying ICMPv6, that does not parse: truncated, a bad checksum, ARP of
    /// another hardware or protocol type.
    Malformed,
    /// Well formed but not something to learn from: an ARP request that is not gratuitous, a
    /// reply or advertisement to another host, a neighbour solicitation, no or a multicast
    /// link-layer address.
    Ignored,
    /// The frame told that `ip` is at `mac`; `outcome` is what the table did with it.
    Learned {
        ip: IpAddr,
        mac: [u8; 6],
        outcome: Learn,
    },
}

#[derive(Debug)]
struct Entry {
    mac: [u8; 6],
    kind: NeighKind,
    last_used_ns: AtomicU64,
}

impl Entry {
    fn new(mac: [u8; 6], kind: NeighKind, now_ns: u64) -> Entry {
        Entry {
            mac,
            kind,
            last_used_ns: AtomicU64::new(now_ns),
        }
    }

    fn last_used(&self) -> u64 {
        self.last_used_ns.load(Ordering::Relaxed)
    }

    fn alive(&self, now_ns: u64, idle_ns: u64) -> bool {
        self.kind == NeighKind::Static || now_ns.saturating_sub(self.last_used()) < idle_ns
    }

    fn touch(&self, now_ns: u64) {
        // fetch_max: a late caller with an older clock reading must not age the entry.
        self.last_used_ns.fetch_max(now_ns, Ordering::Relaxed);
    }
}

/// Entries by bridge, then IP (so that a lookup by `&str` needs no allocation).
#[derive(Debug, Default)]
struct Entries {
    bridges: HashMap<Arc<str>, HashMap<IpAddr, Entry>>,
    len: usize,
}

impl Entries {
    fn get(&self, bridge: &str, ip: IpAddr) -> Option<&Entry> {
        self.bridges.get(bridge)?.get(&ip)
    }

    fn insert(&mut self, bridge: &str, ip: IpAddr, entry: Entry) {
        if !self.bridges.contains_key(bridge) {
            self.bridges.insert(Arc::from(bridge), HashMap::new());
        }
        let Some(map) = self.bridges.get_mut(bridge) else {
            return;
        };
        if map.insert(ip, entry).is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, bridge: &str, ip: IpAddr) -> Option<Entry> {
        let map = self.bridges.get_mut(bridge)?;
        let e = map.remove(&ip)?;
        if map.is_empty() {
            self.bridges.remove(bridge);
        }
        self.len -= 1;
        Some(e)
    }

    /// Keeps the entries `keep` says; returns how many went.
    fn retain(&mut self, mut keep: impl FnMut(&str, &Entry) -> bool) -> usize {
        let before = self.len;
        self.bridges.retain(|bridge, map| {
            map.retain(|_, e| keep(bridge, e));
            !map.is_empty()
        });
        self.len = self.bridges.values().map(HashMap::len).sum();
        before - self.len
    }

    /// Makes room for one entry in a table of `max` by evicting the least recently used
    /// dynamic entries: 1/64 of the table at once, so that under a flood of new neighbours
    /// the scan runs once per 1/64 of the table rather than once per frame. False when
    /// every entry is static.
    fn evict(&mut self, max: usize) -> bool {
        let mut dynamic: Vec<(u64, Arc<str>, IpAddr)> = self
            .bridges
            .iter()
            .flat_map(|(b, map)| {
                map.iter()
                    .filter(|(_, e)| e.kind == NeighKind::Dynamic)
                    .map(move |(ip, e)| (e.last_used(), Arc::clone(b), *ip))
            })
            .collect();
        if dynamic.is_empty() {
            return false;
        }
        let n = (max / 64).clamp(1, dynamic.len());
        if n < dynamic.len() {
            dynamic.select_nth_unstable(n - 1);
        }
        for (_, bridge, ip) in dynamic.iter().take(n) {
            self.remove(bridge, *ip);
        }
        true
    }
}

/// The neighbour table of the underlay, shared by threads: lookups take a read lock and
/// refresh an entry with an atomic store; only changes write. Clones share one table.
#[derive(Debug, Clone)]
pub struct NeighTable(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    idle_ns: u64,
    max_entries: usize,
    entries: RwLock<Entries>,
    generation: AtomicU64,
}

impl Default for NeighTable {
    fn default() -> NeighTable {
        NeighTable::new(DEFAULT_IDLE_NS, DEFAULT_MAX_ENTRIES)
    }
}

impl NeighTable {
    /// A table whose dynamic entries expire `idle_ns` after their last use and which holds
    /// at most `max_entries` (0: nothing is learned or set).
    pub fn new(idle_ns: u64, max_entries: usize) -> NeighTable {
        NeighTable(Arc::new(Shared {
            idle_ns,
            max_entries,
            entries: RwLock::new(Entries::default()),
            generation: AtomicU64::new(0),
        }))
    }

    pub fn idle_ns(&self) -> u64 {
        self.0.idle_ns
    }

    pub fn max_entries(&self) -> usize {
        self.0.max_entries
    }

    /// A number that moves whenever a lookup may answer differently: an entry added,
    /// changed, removed, evicted or expired. Read it before looking up; when it has moved,
    /// resolve again.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Entries, stale ones not yet removed by [`expire`](Self::expire) included.
    pub fn len(&self) -> usize {
        self.read().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The MAC of `ip` on `bridge`, unless it is a dynamic entry idle since `idle_ns` before
    /// `now_ns`. Finding a dynamic entry counts as a use, as in OVS (`tnl_neigh_lookup`), so
    /// the datapath keeps an entry alive by looking it up again when it credits the flows
    /// that send through it.
    pub fn lookup(&self, bridge: &str, ip: IpAddr, now_ns: u64) -> Option<[u8; 6]> {
        let entries = self.read();
        let e = entries.get(bridge, ip)?;
        if !e.alive(now_ns, self.0.idle_ns) {
            return None;
        }
        if e.kind == NeighKind::Dynamic {
            e.touch(now_ns);
        }
        Some(e.mac)
    }

    /// Learns that `ip` is at `mac` on `bridge` at `now_ns` (a dynamic entry). A static
    /// entry stays as it is. When the table is full, the least recently used dynamic entries
    /// make room.
    pub fn learn(&self, bridge: &str, ip: IpAddr, mac: [u8; 6], now_ns: u64) -> Learn {
        if !is_unicast_ip(ip) || !is_unicast_mac(mac) {
            return Learn::Invalid;
        }
        // The common case, a known neighbour seen again, needs only the read lock.
        if let Some(known) = self.known(&self.read(), bridge, ip, mac, now_ns) {
            return known;
        }
        let mut entries = self.write();
        // Another thread may have learned it between the two locks.
        if let Some(known) = self.known(&entries, bridge, ip, mac, now_ns) {
            return known;
        }
        let outcome = match entries.get(bridge, ip) {
            Some(e) if e.alive(now_ns, self.0.idle_ns) => Learn::Changed,
            Some(_) => Learn::Added,
            None => {
                if !self.room(&mut entries) {
                    return Learn::Full;
                }
                Learn::Added
            }
        };
        entries.insert(bridge, ip, Entry::new(mac, NeighKind::Dynamic, now_ns));
        self.bump();
        outcome
    }

    /// Static entry, or live dynamic entry with this MAC (refreshed): nothing to write.
    fn known(
        &self,
        entries: &Entries,
        bridge: &str,
        ip: IpAddr,
        mac: [u8; 6],
        now_ns: u64,
    ) -> Option<Learn> {
        let e = entries.get(bridge, ip)?;
        match e.kind {
            NeighKind::Static => Some(Learn::Static),
            NeighKind::Dynamic if e.mac == mac && e.alive(now_ns, self.0.idle_ns) => {
                e.touch(now_ns);
                Some(Learn::Refreshed)
            }
            NeighKind::Dynamic => None,
        }
    }

    /// Room for one more entry, evicting dynamic ones if need be.
    fn room(&self, entries: &mut Entries) -> bool {
        if self.0.max_entries == 0 {
            return false;
        }
        entries.len < self.0.max_entries || entries.evict(self.0.max_entries)
    }

    /// Sets a static entry (`neigh-add`), replacing what the table had for the address.
    /// Refused when the table is full of static entries.
    pub fn add_static(&self, spec: &NeighSpec, now_ns: u64) -> Result<(), NeighError> {
        if !is_unicast_ip(spec.ip) {
            return Err(NeighError::NotUnicastIp(spec.ip));
        }
        if !is_unicast_mac(spec.mac) {
            return Err(NeighError::NotUnicastMac(format_mac(spec.mac)));
        }
        let mut entries = self.write();
        match entries.get(&spec.bridge, spec.ip) {
            Some(e) if e.kind == NeighKind::Static && e.mac == spec.mac => return Ok(()),
            Some(_) => {}
            None => {
                if !self.room(&mut entries) {
                    return Err(NeighError::Full(entries.len));
                }
            }
        }
        let e = Entry::new(spec.mac, NeighKind::Static, now_ns);
        entries.insert(&spec.bridge, spec.ip, e);
        self.bump();
        Ok(())
    }

    /// Removes the entry of `ip` on `bridge`, static or dynamic (`neigh-del`); returns it as
    /// [`entries`](Self::entries) would have at `now_ns`.
    pub fn remove(&self, bridge: &str, ip: IpAddr, now_ns: u64) -> Result<NeighInfo, NeighError> {
        let e = self
            .write()
            .remove(bridge, ip)
            .ok_or_else(|| NeighError::NotFound {
                bridge: bridge.to_string(),
                ip,
            })?;
        self.bump();
        Ok(self.info(bridge, ip, &e, now_ns))
    }

    /// Forgets every dynamic entry (`neigh-flush`); static entries stay, `neigh-del` removes
    /// them. Returns how many went.
    pub fn flush(&self) -> usize {
        self.remove_where(|_, e| e.kind == NeighKind::Dynamic)
    }

    /// Forgets every entry of `bridge`, static ones included: the bridge is gone or its
    /// addresses changed (OVS's `tnl_neigh_flush` when a port goes). Returns how many went.
    pub fn flush_bridge(&self, bridge: &str) -> usize {
        self.remove_where(|b, _| b == bridge)
    }

    /// Removes the dynamic entries idle for `idle_ns` at `now_ns`; returns how many.
    pub fn expire(&self, now_ns: u64) -> usize {
        let idle = self.0.idle_ns;
        // Most calls find nothing: look under the read lock first, so that periodic upkeep
        // does not hold up lookups.
        let any = self
            .read()
            .bridges
            .values()
            .flat_map(HashMap::values)
            .any(|e| !e.alive(now_ns, idle));
        if !any {
            return 0;
        }
        self.remove_where(|_, e| !e.alive(now_ns, idle))
    }

    fn remove_where(&self, mut gone: impl FnMut(&str, &Entry) -> bool) -> usize {
        let removed = self.write().retain(|b, e| !gone(b, e));
        if removed > 0 {
            self.bump();
        }
        removed
    }

    /// Every entry, by bridge then IP address.
    pub fn entries(&self, now_ns: u64) -> Vec<NeighInfo> {
        let entries = self.read();
        let mut out: Vec<NeighInfo> = entries
            .bridges
            .iter()
            .flat_map(|(b, map)| map.iter().map(move |(ip, e)| (b, *ip, e)))
            .map(|(b, ip, e)| self.info(b, ip, e, now_ns))
            .collect();
        out.sort_by(|x, y| (&x.bridge, x.ip).cmp(&(&y.bridge, y.ip)));
        out
    }

    fn info(&self, bridge: &str, ip: IpAddr, e: &Entry, now_ns: u64) -> NeighInfo {
        NeighInfo {
            bridge: bridge.to_string(),
            ip,
            mac: e.mac,
            kind: e.kind,
            last_used_ns: e.last_used(),
            stale: !e.alive(now_ns, self.0.idle_ns),
        }
    }

    /// The text of `show-neighbours`, Open vSwitch's `tnl/neigh/show` columns (the IP
    /// padded to 46 characters, the MAC, three spaces, the bridge) with the kind after the
    /// bridge and `STALE` after an expired dynamic entry:
    ///
    /// ```text
    /// IP                                            MAC                 Bridge
    /// ==========================================================================
    /// 172.31.1.254                                  aa:55:aa:55:00:01   br-phy STATIC
    /// ```
    pub fn show_text(&self, now_ns: u64) -> String {
        let mut out = String::from(
            "IP                                            MAC                 Bridge\n\
             ==========================================================================\n",
        );
        for n in self.entries(now_ns) {
            let _ = write!(
                out,
                "{:<46}{}   {} {}",
                n.ip.to_string(),
                format_mac(n.mac),
                n.bridge,
                n.kind.label()
            );
            if n.stale {
                out.push_str(" STALE");
            }
            out.push('\n');
        }
        out
    }

    /// Learns from a frame received on `bridge` whose own addresses are `local`, as OVS's
    /// `tnl_neigh_snoop` does: from an ARP reply to one of `local`, from a gratuitous ARP
    /// (request or reply whose sender and target IP are equal) whoever it is for, and from
    /// an IPv6 neighbour advertisement with a target link-layer address sent to one of
    /// `local` or to its solicited-node group. Ordinary ARP requests teach nothing, even
    /// those for us (OVS learns from them neither). Up to two VLAN tags are skipped. A frame
    /// that does not parse, or that claims one of `local`, teaches nothing.
    pub fn snoop(&self, bridge: &str, local: &[IpAddr], frame: &[u8], now_ns: u64) -> Snoop {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Snoop::Malformed;
        };
        let mut next = eth.ethertype();
        let mut at = ethernet::HEADER_LEN;
        for _ in 0..2 {
            if next != ethertype::VLAN && next != ethertype::QINQ {
                break;
            }
            let Ok(tag) = VlanTag::new_checked(frame.get(at..).unwrap_or_default()) else {
                return Snoop::Malformed;
            };
            next = tag.ethertype();
            at += vlan::HEADER_LEN;
        }
        let l3 = frame.get(at..).unwrap_or_default();
        let heard = match next {
            ethertype::ARP => snoop_arp(local, l3),
            ethertype::IPV6 => snoop_nd(local, l3),
            _ => Err(Snoop::NotNeighbour),
        };
        match heard {
            Ok((ip, mac)) if !local.contains(&ip) => Snoop::Learned {
                ip,
                mac,
                outcome: self.learn(bridge, ip, mac, now_ns),
            },
            Ok(_) => Snoop::Ignored,
            Err(s) => s,
        }
    }

    fn bump(&self) {
        // After the change is visible: whoever reads the new generation finds the change.
        self.0.generation.fetch_add(1, Ordering::AcqRel);
    }

    // A poisoned lock only means a thread panicked mid-update of plain maps, which each
    // change leaves consistent; keep using them.
    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.0
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.0
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The (IP, MAC) an ARP packet teaches, as OVS's `tnl_arp_snoop` reads it.
fn snoop_arp(local: &[IpAddr], l3: &[u8]) -> Result<(IpAddr, [u8; 6]), Snoop> {
    let r = ArpPacket::new_checked(l3)
        .and_then(|p| ArpRepr::parse(&p))
        .map_err(|_| Snoop::Malformed)?;
    let known_op = r.operation == arp::operation::REQUEST || r.operation == arp::operation::REPLY;
    let gratuitous = known_op && r.sender_ip == r.target_ip;
    let reply_to_us =
        r.operation == arp::operation::REPLY && local.contains(&IpAddr::V4(r.target_ip));
    let sender = IpAddr::V4(r.sender_ip);
    if !(gratuitous || reply_to_us) || !is_unicast_ip(sender) || !is_unicast_mac(r.sender_mac) {
        return Err(Snoop::Ignored);
    }
    Ok((sender, r.sender_mac))
}

/// The (IP, MAC) a neighbour advertisement teaches, as OVS's `tnl_nd_snoop` reads it (with
/// RFC 4861's hop limit of 255 checked besides).
fn snoop_nd(local: &[IpAddr], l3: &[u8]) -> Result<(IpAddr, [u8; 6]), Snoop> {
    let ip = Ipv6Packet::new_checked(l3).map_err(|_| Snoop::Malformed)?;
    let ip_repr = Ipv6Repr::parse(&ip).map_err(|_| Snoop::Malformed)?;
    if ip_repr.next_header != protocol::ICMPV6 {
        return Err(Snoop::NotNeighbour);
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload())
        .and_then(|p| Icmpv6Repr::parse(&p, ip_repr.src, ip_repr.dst))
        .map_err(|_| Snoop::Malformed)?;
    let (target, mac) = match icmp {
        Icmpv6Repr::NeighborAdvert {
            target, target_mac, ..
        } => (target, target_mac),
        Icmpv6Repr::NeighborSolicit { .. } => return Err(Snoop::Ignored),
        _ => return Err(Snoop::NotNeighbour),
    };
    let to_us = local.iter().any(|l| match l {
        IpAddr::V6(l) => ip_repr.dst == *l || ip_repr.dst == solicited_node(*l),
        IpAddr::V4(_) => false,
    });
    let target = IpAddr::V6(target);
    match mac {
        Some(mac)
            if ip_repr.hop_limit == 255
                && to_us
                && is_unicast_ip(target)
                && is_unicast_mac(mac) =>
        {
            Ok((target, mac))
        }
        _ => Err(Snoop::Ignored),
    }
}

/// The solicited-node multicast group of `ip` (RFC 4291): ff02::1:ff00:0/104 and its last
/// 24 bits.
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000 | (u128::from(ip) & 0x00ff_ffff))
}

/// The broadcast ARP request "who has `target_ip`? tell `src_ip`" from `src_mac`, padded to
/// the Ethernet minimum of 60 bytes (OVS's `tnl_send_arp_request`, which leaves the padding
/// to the NIC).
pub fn arp_request(src_mac: [u8; 6], src_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr {
        operation: arp::operation::REQUEST,
        sender_mac: src_mac,
        sender_ip: src_ip,
        target_mac: [0; 6],
        target_ip,
    };
    // The builder refuses only mismatched layers and lengths, which an untagged ARP frame
    // cannot have; the tests pin the bytes.
    FrameBuilder::ethernet(src_mac, ethernet::BROADCAST)
        .arp(repr)
        .min_len(60)
        .build(&[])
        .unwrap_or_default()
}

/// The neighbour solicitation for `target` from `src_ip` at `src_mac`, to `target`'s
/// solicited-node group, with the source link-layer address option and hop limit 255 (OVS's
/// `tnl_send_nd_request`).
pub fn nd_solicit(src_mac: [u8; 6], src_ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    let [.., a, b, c, d] = group.octets();
    let ip = Ipv6Repr {
        hop_limit: 255,
        ..Ipv6Repr::new(src_ip, group)
    };
    let ns = Icmpv6Repr::NeighborSolicit {
        target,
        source_mac: Some(src_mac),
    };
    // As in arp_request: nothing here can be refused; the tests pin the bytes.
    FrameBuilder::ethernet(src_mac, [0x33, 0x33, a, b, c, d])
        .ipv6(ip)
        .icmpv6(ns)
        .build(&[])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;
    const BR: &str = "br-phy";
    const OURS: [u8; 6] = [0xaa, 0x55, 0xaa, 0x55, 0x00, 0x01];
    const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn local() -> Vec<IpAddr> {
        vec![ip("172.31.1.1"), ip("2001:db8:1::1")]
    }

    fn arp_frame(op: u16, sender: (&str, [u8; 6]), target: (&str, [u8; 6])) -> Vec<u8> {
        let r = ArpRepr {
            operation: op,
            sender_mac: sender.1,
            sender_ip: v4(sender.0),
            target_mac: target.1,
            target_ip: v4(target.0),
        };
        FrameBuilder::ethernet(sender.1, ethernet::BROADCAST)
            .arp(r)
            .min_len(60)
            .build(&[])
            .unwrap()
    }

    fn reply(sender: &str, mac: [u8; 6], target: &str) -> Vec<u8> {
        arp_frame(arp::operation::REPLY, (sender, mac), (target, OURS))
    }

    fn advert(dst: &str, target: &str, mac: Option<[u8; 6]>, hop_limit: u8) -> Vec<u8> {
        let ip = Ipv6Repr {
            hop_limit,
            ..Ipv6Repr::new(v6(target), v6(dst))
        };
        FrameBuilder::ethernet(PEER, OURS)
            .ipv6(ip)
            .icmpv6(Icmpv6Repr::NeighborAdvert {
                flags: 0x60,
                target: v6(target),
                target_mac: mac,
            })
            .build(&[])
            .unwrap()
    }

    fn spec(bridge: &str, addr: &str, mac: [u8; 6]) -> NeighSpec {
        NeighSpec {
            bridge: bridge.into(),
            ip: ip(addr),
            mac,
        }
    }

    /// Made by scapy 2.5.0 (`Ether(dst="ff:ff:ff:ff:ff:ff", src="aa:55:aa:55:00:01")/
    /// ARP(op=1, hwsrc="aa:55:aa:55:00:01", psrc="172.31.1.1", hwdst="00:00:00:00:00:00",
    /// pdst="172.31.1.254")`), zero-padded to 60 bytes.
    const SCAPY_ARP_REQUEST: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xaa, 0x55, 0xaa, 0x55, 0x00, 0x01, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0xaa, 0x55, 0xaa, 0x55, 0x00, 0x01, 0xac, 0x1f, 0x01, 0x01, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xac, 0x1f, 0x01, 0xfe, // target
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, // padding
    ];

    /// Made by scapy 2.5.0 (`Ether(src="aa:55:aa:55:00:01", dst="33:33:ff:00:00:fe")/
    /// IPv6(src="2001:db8:1::1", dst="ff02::1:ff00:fe", hlim=255)/
    /// ICMPv6ND_NS(tgt="2001:db8:1::fe")/ICMPv6NDOptSrcLLAddr(lladdr="aa:55:aa:55:00:01")`).
    const SCAPY_ND_SOLICIT: [u8; 86] = [
        0x33, 0x33, 0xff, 0x00, 0x00, 0xfe, 0xaa, 0x55, 0xaa, 0x55, 0x00, 0x01, 0x86,
        0xdd, // eth
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, // ipv6: 32 bytes of ICMPv6, hlim 255
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, // src
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00,
        0xfe, // dst: solicited-node group
        0x87, 0x00, 0xc7, 0x81, 0x00, 0x00, 0x00, 0x00, // NS, checksum c781
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xfe, // target
        0x01, 0x01, 0xaa, 0x55, 0xaa, 0x55, 0x00, 0x01, // source link-layer address
    ];

    #[test]
    fn arp_request_matches_scapy() {
        let f = arp_request(OURS, v4("172.31.1.1"), v4("172.31.1.254"));
        assert_eq!(f, SCAPY_ARP_REQUEST);
    }

    #[test]
    fn nd_solicit_matches_scapy() {
        let f = nd_solicit(OURS, v6("2001:db8:1::1"), v6("2001:db8:1::fe"));
        assert_eq!(f, SCAPY_ND_SOLICIT);
        assert_eq!(
            solicited_node(v6("fe80::1234:5678:9abc")),
            v6("ff02::1:ff78:9abc")
        );
    }

    #[test]
    fn learns_from_replies_to_us_and_gratuitous_arp() {
        let t = NeighTable::default();
        let g = t.generation();
        let s = t.snoop(
            BR,
            &local(),
            &reply("172.31.1.254", PEER, "172.31.1.1"),
            SEC,
        );
        assert_eq!(
            s,
            Snoop::Learned {
                ip: ip("172.31.1.254"),
                mac: PEER,
                outcome: Learn::Added
            }
        );
        assert_ne!(t.generation(), g);
        assert_eq!(t.lookup(BR, ip("172.31.1.254"), SEC), Some(PEER));
        assert_eq!(t.lookup("br-other", ip("172.31.1.254"), SEC), None);
        // Gratuitous request and reply, to anyone.
        let garp = arp_frame(
            arp::operation::REQUEST,
            ("172.31.1.7", OTHER),
            ("172.31.1.7", [0; 6]),
        );
        assert!(matches!(
            t.snoop(BR, &local(), &garp, SEC),
            Snoop::Learned {
                outcome: Learn::Added,
                ..
            }
        ));
        let garp_reply = reply("172.31.1.8", OTHER, "172.31.1.8");
        assert!(matches!(
            t.snoop(BR, &local(), &garp_reply, SEC),
            Snoop::Learned { .. }
        ));
        // The same again refreshes without a new generation; a new MAC changes it.
        let g = t.generation();
        assert!(matches!(
            t.snoop(BR, &local(), &garp, 2 * SEC),
            Snoop::Learned {
                outcome: Learn::Refreshed,
                ..
            }
        ));
        assert_eq!(t.generation(), g);
        let moved = reply("172.31.1.254", OTHER, "172.31.1.1");
        assert!(matches!(
            t.snoop(BR, &local(), &moved, 3 * SEC),
            Snoop::Learned {
                outcome: Learn::Changed,
                ..
            }
        ));
        assert_ne!(t.generation(), g);
        assert_eq!(t.lookup(BR, ip("172.31.1.254"), 3 * SEC), Some(OTHER));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn learns_from_tagged_frames() {
        let t = NeighTable::default();
        let r = ArpRepr {
            operation: arp::operation::REPLY,
            sender_mac: PEER,
            sender_ip: v4("172.31.1.254"),
            target_mac: OURS,
            target_ip: v4("172.31.1.1"),
        };
        let f = FrameBuilder::ethernet(PEER, OURS)
            .vlan(vlan::TPID_8021AD, 100)
            .vlan(vlan::TPID_8021Q, 10)
            .arp(r)
            .build(&[])
            .unwrap();
        assert!(matches!(
            t.snoop(BR, &local(), &f, SEC),
            Snoop::Learned { .. }
        ));
        // A tag cut short is malformed.
        assert_eq!(t.snoop(BR, &local(), &f[..16], SEC), Snoop::Malformed);
    }

    #[test]
    fn ignores_what_ovs_does_not_learn_from() {
        let t = NeighTable::default();
        let l = local();
        let request_for_us = arp_frame(
            arp::operation::REQUEST,
            ("172.31.1.254", PEER),
            ("172.31.1.1", [0; 6]),
        );
        let frames = [
            request_for_us,
            // A reply to another host.
            reply("172.31.1.254", PEER, "172.31.1.2"),
            // Zero, multicast and broadcast sender MACs; an ARP probe's 0.0.0.0.
            reply("172.31.1.254", [0; 6], "172.31.1.1"),
            reply("172.31.1.254", [0x01, 0, 0x5e, 0, 0, 1], "172.31.1.1"),
            reply("172.31.1.254", [0xff; 6], "172.31.1.1"),
            reply("0.0.0.0", PEER, "172.31.1.1"),
            // Another operation with equal addresses (RARP-like op 3).
            arp_frame(3, ("172.31.1.9", PEER), ("172.31.1.9", [0; 6])),
            // Someone claiming our own address.
            reply("172.31.1.1", PEER, "172.31.1.1"),
            // ND: to another host, no target link-layer address, a hop limit below 255.
            advert("2001:db8:1::2", "2001:db8:1::fe", Some(PEER), 255),
            advert("2001:db8:1::1", "2001:db8:1::fe", None, 255),
            advert("2001:db8:1::1", "2001:db8:1::fe", Some(PEER), 64),
            // Unsolicited advertisement to all nodes (OVS does not learn from it either).
            advert("ff02::1", "2001:db8:1::fe", Some(PEER), 255),
        ];
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(t.snoop(BR, &l, f, SEC), Snoop::Ignored, "frame {i}");
        }
        assert!(t.is_empty());
        assert_eq!(t.generation(), 0);
    }

    #[test]
    fn never_learns_from_malformed_or_other_frames() {
        let t = NeighTable::default();
        let l = local();
        let good = reply("172.31.1.254", PEER, "172.31.1.1");
        let mut other_htype = good.clone();
        other_htype[15] = 6; // IEEE 802 hardware type
        let mut short_hlen = good.clone();
        short_hlen[18] = 4;
        let mut bad_checksum = advert("2001:db8:1::1", "2001:db8:1::fe", Some(PEER), 255);
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 1;
        let mut ipv6_cut = advert("2001:db8:1::1", "2001:db8:1::fe", Some(PEER), 255);
        ipv6_cut.truncate(14 + 40 + 10);
        let malformed = [
            vec![],
            good[..13].to_vec(),
            good[..14 + 27].to_vec(),
            other_htype,
            short_hlen,
            bad_checksum,
            ipv6_cut,
        ];
        for (i, f) in malformed.iter().enumerate() {
            assert_eq!(t.snoop(BR, &l, f, SEC), Snoop::Malformed, "frame {i}");
        }
        let udp = FrameBuilder::ethernet(PEER, OURS)
            .ipv4(pipeline::wire::Ipv4Repr::new(
                v4("172.31.1.254"),
                v4("172.31.1.1"),
            ))
            .udp(4789, 4789)
            .build(&[0; 8])
            .unwrap();
        let echo6 = FrameBuilder::ethernet(PEER, OURS)
            .ipv6(Ipv6Repr::new(v6("2001:db8:1::fe"), v6("2001:db8:1::1")))
            .icmpv6(Icmpv6Repr::EchoRequest { ident: 1, seq: 1 })
            .build(&[])
            .unwrap();
        let udp6 = FrameBuilder::ethernet(PEER, OURS)
            .ipv6(Ipv6Repr::new(v6("2001:db8:1::fe"), v6("2001:db8:1::1")))
            .udp(6081, 6081)
            .build(&[])
            .unwrap();
        for f in [udp, echo6, udp6] {
            assert_eq!(t.snoop(BR, &l, &f, SEC), Snoop::NotNeighbour);
        }
        assert!(t.is_empty());
        assert_eq!(t.generation(), 0);
    }

    #[test]
    fn learns_from_neighbour_advertisements_to_us() {
        let t = NeighTable::default();
        for dst in ["2001:db8:1::1", "ff02::1:ff00:1"] {
            let f = advert(dst, "2001:db8:1::fe", Some(PEER), 255);
            assert!(matches!(
                t.snoop(BR, &local(), &f, SEC),
                Snoop::Learned { .. }
            ));
        }
        assert_eq!(t.lookup(BR, ip("2001:db8:1::fe"), SEC), Some(PEER));
        // Our own solicitation, looped back, teaches nothing.
        let ns = nd_solicit(OURS, v6("2001:db8:1::1"), v6("2001:db8:1::fe"));
        assert_eq!(t.snoop(BR, &local(), &ns, SEC), Snoop::Ignored);
    }

    #[test]
    fn dynamic_entries_age_unless_used_static_ones_never() {
        let t = NeighTable::new(10 * SEC, 16);
        t.learn(BR, ip("172.31.1.2"), PEER, 0);
        t.learn(BR, ip("172.31.1.3"), PEER, 0);
        t.add_static(&spec(BR, "172.31.1.254", OTHER), 0).unwrap();
        // A lookup is a use, as in OVS: .2 stays alive, .3 does not.
        assert_eq!(t.lookup(BR, ip("172.31.1.2"), 9 * SEC), Some(PEER));
        assert_eq!(t.expire(9 * SEC), 0);
        assert_eq!(
            t.lookup(BR, ip("172.31.1.3"), 10 * SEC),
            None,
            "aged before expire()"
        );
        let shown = t.show_text(10 * SEC);
        assert!(
            shown.ends_with(
                "172.31.1.3                                    02:00:00:00:00:02   br-phy DYNAMIC STALE\n\
                 172.31.1.254                                  02:00:00:00:00:03   br-phy STATIC\n"
            ),
            "{shown}"
        );
        let g = t.generation();
        assert_eq!(t.expire(10 * SEC), 1);
        assert_ne!(t.generation(), g);
        assert_eq!(t.lookup(BR, ip("172.31.1.2"), 18 * SEC), Some(PEER));
        assert_eq!(t.lookup(BR, ip("172.31.1.254"), 1000 * SEC), Some(OTHER));
        assert_eq!(t.expire(1000 * SEC), 1);
        assert_eq!(t.len(), 1);
        // Relearning an aged entry is news even before expire() removed it.
        t.learn(BR, ip("172.31.1.2"), PEER, 1000 * SEC);
        let g = t.generation();
        assert_eq!(
            t.learn(BR, ip("172.31.1.2"), PEER, 2000 * SEC),
            Learn::Added
        );
        assert_ne!(t.generation(), g);
    }

    #[test]
    fn static_entries_win_over_learning_and_flush() {
        let t = NeighTable::default();
        t.learn(BR, ip("172.31.1.254"), PEER, SEC);
        t.add_static(&spec(BR, "172.31.1.254", OTHER), SEC).unwrap();
        assert_eq!(t.lookup(BR, ip("172.31.1.254"), SEC), Some(OTHER));
        let g = t.generation();
        assert_eq!(t.learn(BR, ip("172.31.1.254"), PEER, SEC), Learn::Static);
        let snooped = t.snoop(
            BR,
            &local(),
            &reply("172.31.1.254", PEER, "172.31.1.1"),
            SEC,
        );
        assert!(matches!(
            snooped,
            Snoop::Learned {
                outcome: Learn::Static,
                ..
            }
        ));
        // Setting the same static entry again changes nothing.
        t.add_static(&spec(BR, "172.31.1.254", OTHER), 2 * SEC)
            .unwrap();
        assert_eq!(t.generation(), g);
        t.learn(BR, ip("172.31.1.2"), PEER, SEC);
        t.learn("br-b", ip("10.0.0.2"), PEER, SEC);
        assert_eq!(t.flush(), 2);
        assert_eq!(t.flush(), 0);
        let e = t.entries(SEC);
        assert_eq!(
            (e.len(), e[0].kind, e[0].mac),
            (1, NeighKind::Static, OTHER)
        );
        let gone = t.remove(BR, ip("172.31.1.254"), SEC).unwrap();
        assert_eq!((gone.kind, gone.stale), (NeighKind::Static, false));
        assert_eq!(
            t.remove(BR, ip("172.31.1.254"), SEC),
            Err(NeighError::NotFound {
                bridge: BR.into(),
                ip: ip("172.31.1.254")
            })
        );
        assert!(t.is_empty());
    }

    #[test]
    fn flush_bridge_takes_static_entries_too() {
        let t = NeighTable::default();
        t.add_static(&spec(BR, "172.31.1.254", OTHER), 0).unwrap();
        t.learn(BR, ip("172.31.1.2"), PEER, 0);
        t.learn("br-b", ip("10.0.0.2"), PEER, 0);
        assert_eq!(t.flush_bridge(BR), 2);
        assert_eq!(t.flush_bridge(BR), 0);
        assert_eq!(t.entries(0).len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_used_dynamic_entry() {
        let t = NeighTable::new(DEFAULT_IDLE_NS, 3);
        t.add_static(&spec(BR, "172.31.1.254", OTHER), 0).unwrap();
        t.learn(BR, ip("172.31.1.2"), PEER, SEC);
        t.learn(BR, ip("172.31.1.3"), PEER, 2 * SEC);
        t.lookup(BR, ip("172.31.1.2"), 3 * SEC);
        assert_eq!(t.learn(BR, ip("172.31.1.4"), PEER, 4 * SEC), Learn::Added);
        let ips: Vec<IpAddr> = t.entries(4 * SEC).iter().map(|e| e.ip).collect();
        assert_eq!(
            ips,
            [ip("172.31.1.2"), ip("172.31.1.4"), ip("172.31.1.254")],
            ".3 was the least recently used"
        );
        // A static entry makes room the same way; when only static entries are left, it
        // is refused, and nothing more is learned.
        t.add_static(&spec(BR, "172.31.1.253", OTHER), 5 * SEC)
            .unwrap();
        t.add_static(&spec(BR, "172.31.1.252", OTHER), 5 * SEC)
            .unwrap();
        let before = (t.entries(5 * SEC), t.generation());
        assert_eq!(
            t.add_static(&spec(BR, "172.31.1.251", OTHER), 5 * SEC),
            Err(NeighError::Full(3))
        );
        assert_eq!(t.learn(BR, ip("172.31.1.5"), PEER, 5 * SEC), Learn::Full);
        assert_eq!((t.entries(5 * SEC), t.generation()), before);
        // A change of an entry already there needs no room.
        t.add_static(&spec(BR, "172.31.1.252", PEER), 6 * SEC)
            .unwrap();
        assert_eq!(t.lookup(BR, ip("172.31.1.252"), 6 * SEC), Some(PEER));
    }

    #[test]
    fn a_flood_of_arp_stays_within_the_bound() {
        let t = NeighTable::new(DEFAULT_IDLE_NS, 256);
        t.add_static(&spec(BR, "172.31.1.254", OTHER), 0).unwrap();
        for i in 0..5000u32 {
            let sender = Ipv4Addr::from(0x0a00_0000 + i).to_string();
            let garp = arp_frame(arp::operation::REQUEST, (&sender, PEER), (&sender, [0; 6]));
            t.snoop(BR, &local(), &garp, u64::from(i));
            assert!(t.len() <= 256);
        }
        assert_eq!(t.lookup(BR, ip("172.31.1.254"), 0), Some(OTHER));
        // The newest neighbours are kept.
        assert_eq!(t.lookup(BR, ip("10.0.19.135"), 5000), Some(PEER));
        assert_eq!(
            NeighTable::new(DEFAULT_IDLE_NS, 0).learn(BR, ip("10.0.0.1"), PEER, 0),
            Learn::Full
        );
    }

    #[test]
    fn learn_refuses_what_is_not_unicast() {
        let t = NeighTable::default();
        assert_eq!(t.learn(BR, ip("224.0.0.1"), PEER, 0), Learn::Invalid);
        assert_eq!(t.learn(BR, ip("10.0.0.1"), [0xff; 6], 0), Learn::Invalid);
        assert_eq!(
            t.add_static(&spec(BR, "0.0.0.0", PEER), 0),
            Err(NeighError::NotUnicastIp(ip("0.0.0.0")))
        );
        assert!(t.is_empty());
    }

    #[test]
    fn show_text_has_ovs_columns() {
        let t = NeighTable::default();
        t.add_static(&spec(BR, "172.31.1.254", OURS), 0).unwrap();
        t.learn(BR, ip("2001:db8:1::fe"), PEER, 0);
        t.learn("br-a", ip("10.0.0.2"), OTHER, 0);
        assert_eq!(
            t.show_text(SEC),
            "IP                                            MAC                 Bridge\n\
             ==========================================================================\n\
             10.0.0.2                                      02:00:00:00:00:03   br-a DYNAMIC\n\
             172.31.1.254                                  aa:55:aa:55:00:01   br-phy STATIC\n\
             2001:db8:1::fe                                02:00:00:00:00:02   br-phy DYNAMIC\n"
        );
        assert_eq!(
            t.entries(SEC)[0],
            NeighInfo {
                bridge: "br-a".into(),
                ip: ip("10.0.0.2"),
                mac: OTHER,
                kind: NeighKind::Dynamic,
                last_used_ns: 0,
                stale: false,
            }
        );
    }

    #[test]
    fn verbs_parse_and_name_the_field() {
        assert_eq!(
            NeighSpec::parse(&["br-phy", "172.31.1.254", "AA:55:aa:55:00:01"]),
            Ok(spec(BR, "172.31.1.254", OURS))
        );
        let refused: [(&[&str], NeighError); 7] = [
            (&[], NeighError::Missing("bridge")),
            (&["br-phy"], NeighError::Missing("ip")),
            (&["br-phy", "172.31.1.254"], NeighError::Missing("mac")),
            (
                &["br-phy", "172.31.1", "aa:55:aa:55:00:01"],
                NeighError::BadIp("172.31.1".into()),
            ),
            (
                &["br-phy", "172.31.1.254", "aa:55:aa:55:00"],
                NeighError::BadMac("aa:55:aa:55:00".into()),
            ),
            (
                &["br-phy", "172.31.1.254", "01:00:5e:00:00:01"],
                NeighError::NotUnicastMac("01:00:5e:00:00:01".into()),
            ),
            (
                &["br-phy", "172.31.1.254", "aa:55:aa:55:00:01", "x"],
                NeighError::Unexpected("x".into()),
            ),
        ];
        for (words, err) in refused {
            assert_eq!(NeighSpec::parse(words), Err(err), "{words:?}");
        }
        assert_eq!(
            parse_neigh_del(&["br-phy", "2001:db8::1"]),
            Ok((BR.to_string(), ip("2001:db8::1")))
        );
        assert_eq!(
            parse_neigh_del(&["br-phy", "ff02::1"]),
            Err(NeighError::NotUnicastIp(ip("ff02::1")))
        );
        assert_eq!(
            NeighError::BadMac("x".into()).to_string(),
            "mac: \"x\" is not an Ethernet address"
        );
    }

    #[test]
    fn shared_by_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NeighTable>();
        let t = NeighTable::default();
        let handles: Vec<_> = (0..4u8)
            .map(|n| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 1..=100u8 {
                        let a = IpAddr::V4(Ipv4Addr::new(10, 0, n, i));
                        t.learn(BR, a, [0x02, 0, 0, 0, n, i], SEC);
                        assert_eq!(t.lookup(BR, a, SEC), Some([0x02, 0, 0, 0, n, i]));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!((t.len(), t.generation()), (400, 400));
    }
}
