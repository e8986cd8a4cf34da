//! The `tunnel-decap` node, between `parse` and `classify`: VXLAN and Geneve packets to one of
//! the switch's own VTEP endpoints (address and MAC) and to the UDP port of one of its tunnel
//! ports are checked ([`decap::check`]), matched to their tunnel port as Open vSwitch's
//! `tnl_port_receive` does (`ofproto/tunnel.c`, `tnl_find`), stripped and parsed again
//! ([`decap::apply`]) with `in_port` set to the tunnel port's datapath number. Everything else
//! goes on to `classify` untouched.
//!
//! The config ([`TunnelDecapConfig`]) is plain data that the datapath builds from the bridges'
//! tunnel ports and addresses and hands over between dispatches with
//! [`TunnelDecap::set_config`]; the node compiles it once into the tables it reads per packet
//! (no lock, no allocation, no panic per packet).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use pipeline::flowkey::{ethertype, ipproto, TUN_FLAG_CRITICAL};
use pipeline::txq::{count_port, PortCounts};
use pipeline::{Ctx, Next, Node, PacketId, PacketPool, VlanLimit};

use crate::decap::{self, check_critical_options, DecapConfig, DecapDrop, TunnelKind};
use crate::option_store::OptionStore;
use crate::underlay::NeighTable;

/// The node's name.
pub const NAME: &str = "tunnel-decap";

/// Drop reason index of `no-such-tunnel`, after [`DecapDrop::NAMES`].
pub const NO_SUCH_TUNNEL: u16 = DecapDrop::NAMES.len() as u16;

/// The node's drop reasons: [`DecapDrop::NAMES`] (indexed by `DecapDrop`), then
/// `no-such-tunnel`. `not-udp` and `not-tunnel-port` stay in the list to keep the indexes but
/// never count: those packets are not tunnel packets and go on to `classify`.
pub const DROP_REASONS: [&str; DecapDrop::NAMES.len() + 1] = {
    let mut r = [""; DecapDrop::NAMES.len() + 1];
    let mut i = 0;
    while i < DecapDrop::NAMES.len() {
        r[i] = DecapDrop::NAMES[i];
        i += 1;
    }
    r[DecapDrop::NAMES.len()] = "no-such-tunnel";
    r
};

/// A local tunnel endpoint: an address of the switch and the MAC of the interface holding it
/// (the underlay bridge's LOCAL port). A frame to the address but another MAC is not for the
/// switch to open (Open vSwitch's tunnel-port map matches `dl_dst` too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VtepEndpoint {
    pub addr: Ipv4Addr,
    pub mac: [u8; 6],
    /// The datapath ports a tunnel packet to this endpoint may arrive on: the ports of the
    /// bridge that holds the address. Empty: any port. Without it a guest on another bridge
    /// could send a packet to this address and MAC and have it taken as coming from a tunnel
    /// (in Open vSwitch only packets that the underlay bridge's flows send to its LOCAL port
    /// are decapsulated).
    pub in_ports: Vec<u32>,
}

/// One `type=vxlan|geneve` port, as received packets are matched to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelPortConfig {
    /// Its datapath port number: the decapsulated packet's `in_port`.
    pub dp_port: u32,
    pub kind: TunnelKind,
    /// The UDP port it listens to (`dst_port`; the kind's IANA port by default).
    pub dst_port: u16,
    /// `local_ip`: the outer destination must be this address; `None` (no `local_ip`, or
    /// `local_ip=flow`): any local endpoint.
    pub local: Option<Ipv4Addr>,
    /// `remote_ip`: the outer source must be this address; `None`: `remote_ip=flow`.
    pub remote: Option<Ipv4Addr>,
    /// `in_key`: the VNI must be this one; `None`: `key=flow` (any VNI, kept in `tun_id`).
    pub in_key: Option<u32>,
}

/// What the node decapsulates: the switch's endpoints, its tunnel ports and the Geneve
/// policy. Plain data, built by the datapath from the daemon's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelDecapConfig {
    pub endpoints: Vec<VtepEndpoint>,
    pub ports: Vec<TunnelPortConfig>,
    /// Forward Geneve OAM packets (with `TUN_FLAG_OAM`) instead of dropping them.
    pub forward_oam: bool,
    /// The Geneve options the switch knows, as `(class, type)` with the type byte whole
    /// (critical bit included): a critical option not listed is `unknown-critical-option`.
    /// Empty: every critical option is unknown (Open vSwitch with no TLV map). The TLV map
    /// (`add-tlv-map`) will fill it.
    pub known_options: Vec<(u16, u8)>,
    /// The bridges whose ARP replies and neighbour advertisements teach the neighbour table
    /// ([`TunnelDecap::set_neigh_table`]): those with addresses.
    pub snoop: Vec<SnoopBridge>,
}

/// A bridge the node snoops neighbours on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnoopBridge {
    pub bridge: String,
    /// Its ports' datapath numbers (LOCAL's too: the host's own frames teach nothing, as
    /// they are from a local address, but a reply the kernel forwards would).
    pub in_ports: Vec<u32>,
    /// Its addresses.
    pub local: Vec<IpAddr>,
}

impl TunnelDecapConfig {
    /// Refuses what the node would refuse: a tunnel port with a zero `dst_port` or a key past
    /// 24 bits, two kinds on one UDP port, two ports that match the same packets.
    pub fn validate(&self) -> Result<(), TunnelConfigError> {
        Compiled::new(self).map(|_| ())
    }
}

/// A refused [`TunnelDecapConfig`]; the node keeps its previous config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TunnelConfigError {
    #[error("tunnel port {dp_port}: dst_port: must not be 0")]
    ZeroDstPort { dp_port: u32 },
    #[error("tunnel port {dp_port}: in_key: {key} is past 24 bits")]
    KeyTooWide { dp_port: u32, key: u32 },
    #[error("tunnel port {dp_port}: dst_port: {dst_port} is a {other} port already")]
    KindClash {
        dp_port: u32,
        dst_port: u16,
        other: &'static str,
    },
    #[error("tunnel port {dp_port}: same kind, dst_port, local, remote and key as port {other}")]
    SameMatch { dp_port: u32, other: u32 },
}

/// Counters of the node besides the graph's drop counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelDecapStats {
    /// Packets decapsulated and sent on from their tunnel port.
    pub decapsulated: u64,
    /// Packets sent on untouched (not tunnel packets for the switch).
    pub passed: u64,
}

/// How a tunnel port matches, in Open vSwitch's `tnl_find` order: an exact key before
/// `key=flow`, then an exact remote before `remote_ip=flow`, then a configured local address
/// before any (OVS's third kind of local, `local_ip=flow`, receives as "any" here).
/// `class = key_flow * 4 + remote_flow * 2 + local_any`: lower classes win.
const CLASSES: u8 = 8;

fn class_of(p: &TunnelPortConfig) -> u8 {
    u8::from(p.in_key.is_none()) * 4
        + u8::from(p.remote.is_none()) * 2
        + u8::from(p.local.is_none())
}

/// The match key of a class: class (3 bits), UDP port (16), local (32), remote (32), VNI (24);
/// the wildcarded fields are 0.
#[inline(always)]
fn match_key(class: u8, udp_port: u16, local: u32, remote: u32, vni: u32) -> u128 {
    let local = if class & 1 != 0 { 0 } else { local };
    let remote = if class & 2 != 0 { 0 } else { remote };
    let vni = if class & 4 != 0 { 0 } else { vni & 0x00ff_ffff };
    u128::from(class) << 104
        | u128::from(udp_port) << 88
        | u128::from(local) << 56
        | u128::from(remote) << 24
        | u128::from(vni)
}

/// A multiply-fold hasher for the match keys (one `u128`): much cheaper than SipHash, and the
/// keys are the switch's own config, not chosen by senders.
#[derive(Default)]
struct MatchHasher(u64);

impl Hasher for MatchHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    #[inline(always)]
    fn write_u128(&mut self, x: u128) {
        let h = (x as u64) ^ ((x >> 64) as u64).rotate_left(29) ^ self.0;
        let p = u128::from(h ^ 0x243f_6a88_85a3_08d3) * 0x9e37_79b9_7f4a_7c15u128;
        self.0 = p as u64 ^ (p >> 64) as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type MatchTable = HashMap<u128, u32, BuildHasherDefault<MatchHasher>>;

/// The config as the per-packet loop reads it.
#[derive(Default)]
struct Compiled {
    /// Each UDP port a tunnel port listens to, with its kind.
    udp: Vec<(u16, TunnelKind)>,
    /// `(address, MAC, in_ports)` of each endpoint.
    endpoints: Vec<(u32, [u8; 6], Vec<u32>)>,
    table: MatchTable,
    /// The classes with a port, in precedence order.
    classes: Vec<u8>,
    known: Vec<(u16, u8)>,
    forward_oam: bool,
}

impl Compiled {
    fn new(config: &TunnelDecapConfig) -> Result<Compiled, TunnelConfigError> {
        let mut c = Compiled {
            forward_oam: config.forward_oam,
            known: config.known_options.clone(),
            ..Compiled::default()
        };
        for e in &config.endpoints {
            c.endpoints
                .push((e.addr.to_bits(), e.mac, e.in_ports.clone()));
        }
        let mut present = [false; CLASSES as usize];
        for p in &config.ports {
            if p.dst_port == 0 {
                return Err(TunnelConfigError::ZeroDstPort { dp_port: p.dp_port });
            }
            if let Some(key) = p.in_key.filter(|&k| k > 0x00ff_ffff) {
                return Err(TunnelConfigError::KeyTooWide {
                    dp_port: p.dp_port,
                    key,
                });
            }
            match c.udp.iter().find(|(u, _)| *u == p.dst_port) {
                Some(&(_, kind)) if kind != p.kind => {
                    return Err(TunnelConfigError::KindClash {
                        dp_port: p.dp_port,
                        dst_port: p.dst_port,
                        other: kind.name(),
                    })
                }
                Some(_) => {}
                None => c.udp.push((p.dst_port, p.kind)),
            }
            let class = class_of(p);
            let bits = |a: Option<Ipv4Addr>| a.map_or(0, Ipv4Addr::to_bits);
            let k = match_key(
                class,
                p.dst_port,
                bits(p.local),
                bits(p.remote),
                p.in_key.unwrap_or(0),
            );
            if let Some(&other) = c.table.get(&k) {
                return Err(TunnelConfigError::SameMatch {
                    dp_port: p.dp_port,
                    other,
                });
            }
            c.table.insert(k, p.dp_port);
            if let Some(x) = present.get_mut(usize::from(class)) {
                *x = true;
            }
        }
        c.classes = (0..CLASSES)
            .filter(|&k| present.get(usize::from(k)) == Some(&true))
            .collect();
        Ok(c)
    }

    /// The kind of tunnel port listening to UDP `port`.
    #[inline(always)]
    fn kind_of(&self, port: u16) -> Option<TunnelKind> {
        self.udp.iter().find(|(u, _)| *u == port).map(|&(_, k)| k)
    }

    /// Whether a frame to `addr` and `mac`, received on `in_port`, is for a local endpoint.
    #[inline(always)]
    fn is_local(&self, addr: u32, mac: &[u8; 6], in_port: u32) -> bool {
        self.endpoints.iter().any(|(a, m, ports)| {
            *a == addr && m == mac && (ports.is_empty() || ports.contains(&in_port))
        })
    }

    /// The tunnel port of a packet to UDP `udp_port` from `remote` to `local` with `vni`.
    #[inline(always)]
    fn lookup(&self, udp_port: u16, local: u32, remote: u32, vni: u32) -> Option<u32> {
        self.classes
            .iter()
            .find_map(|&c| self.table.get(&match_key(c, udp_port, local, remote, vni)))
            .copied()
    }
}

/// The `tunnel-decap` node.
pub struct TunnelDecap {
    next: [&'static str; 1],
    vlans: VlanLimit,
    config: TunnelDecapConfig,
    compiled: Compiled,
    stats: TunnelDecapStats,
    rx: PortCounts,
    neighs: Option<NeighTable>,
    options: OptionStore,
}

impl TunnelDecap {
    /// A node with no endpoints and no tunnel ports (it passes everything on to `next`),
    /// parsing inner frames with [`VlanLimit::DEFAULT`].
    pub fn new(next: &'static str) -> TunnelDecap {
        TunnelDecap {
            next: [next],
            vlans: VlanLimit::DEFAULT,
            config: TunnelDecapConfig::default(),
            compiled: Compiled::default(),
            stats: TunnelDecapStats::default(),
            rx: PortCounts::new(),
            neighs: None,
            options: OptionStore::default(),
        }
    }

    /// What each tunnel port received since the last call, inner frames counted (the caller
    /// adds it to the ports' `rx` counters).
    pub fn take_rx(&mut self) -> PortCounts {
        std::mem::take(&mut self.rx)
    }

    /// Learns neighbours into `table` from the ARP replies and neighbour advertisements
    /// received on the bridges of [`TunnelDecapConfig::snoop`] (OVS's `tnl_neigh_snoop`).
    pub fn set_neigh_table(&mut self, table: NeighTable) {
        self.neighs = Some(table);
    }

    /// Keeps Geneve options longer than a key holds in `store` (by default the node has a
    /// store of its own): the translation reads them back from there.
    pub fn set_option_store(&mut self, store: OptionStore) {
        self.options = store;
    }

    /// The store of long Geneve options the node keeps.
    pub fn option_store(&self) -> &OptionStore {
        &self.options
    }

    /// Snoops the neighbour frames of `pkts`; they go on as they are.
    fn snoop(&mut self, pool: &PacketPool, pkts: &[PacketId], now_ns: u64) {
        let Some(table) = &self.neighs else {
            return;
        };
        for &p in pkts {
            let key = &pool.meta(p).key;
            let neighbour = key.dl_type == ethertype::ARP
                || (key.dl_type == ethertype::IPV6 && key.nw_proto == ipproto::ICMPV6);
            if !neighbour {
                continue;
            }
            let in_port = key.in_port;
            if let Some(b) = self
                .config
                .snoop
                .iter()
                .find(|b| b.in_ports.contains(&in_port))
            {
                let _ = table.snoop(&b.bridge, &b.local, pool.data(p), now_ns);
            }
        }
    }

    /// Takes `config` from the next frame on. A refused config leaves the current one.
    pub fn set_config(&mut self, config: TunnelDecapConfig) -> Result<(), TunnelConfigError> {
        self.compiled = Compiled::new(&config)?;
        self.config = config;
        Ok(())
    }

    /// The config in use.
    pub fn config(&self) -> &TunnelDecapConfig {
        &self.config
    }

    /// How many VLAN headers the inner parse reads.
    pub fn vlan_limit(&self) -> VlanLimit {
        self.vlans
    }

    /// Reads `vlans` VLAN headers of inner frames from the next frame on (the switch sets the
    /// same limit as its `parse` node's).
    pub fn set_vlan_limit(&mut self, vlans: VlanLimit) {
        self.vlans = vlans;
    }

    pub fn stats(&self) -> TunnelDecapStats {
        self.stats
    }

    pub fn clear_stats(&mut self) {
        self.stats = TunnelDecapStats::default();
        self.rx.clear();
    }

    /// One packet: where it goes next.
    #[inline(always)]
    fn one(&self, pool: &mut PacketPool, p: PacketId, now_ns: u64) -> Step {
        let c = &self.compiled;
        let (data, meta) = pool.data_and_meta_mut(p);
        let key = &meta.key;
        if key.dl_type != ethertype::IPV4 || key.nw_proto != ipproto::UDP {
            return Step::Pass;
        }
        let Some(kind) = c.kind_of(key.tp_dst) else {
            return Step::Pass;
        };
        if !c.is_local(key.nw_dst, &key.dl_dst, key.in_port) {
            return Step::Pass;
        }
        let config = DecapConfig {
            vxlan_port: if kind == TunnelKind::Vxlan {
                key.tp_dst
            } else {
                0
            },
            geneve_port: if kind == TunnelKind::Geneve {
                key.tp_dst
            } else {
                0
            },
            forward_oam: c.forward_oam,
        };
        let d = match decap::check(data, meta, &config) {
            Ok(d) => d,
            Err(e) if e.is_not_tunnel() => return Step::Pass,
            Err(e) => return Step::Drop(e as u16),
        };
        let t = &d.tunnel;
        let Some(dp_port) = c.lookup(t.tp_dst, t.dst, t.src, t.vni) else {
            return Step::Drop(NO_SUCH_TUNNEL);
        };
        // Before the packet changes: the same flag `apply` writes into `key.tun_flags`.
        if t.flags & TUN_FLAG_CRITICAL != 0 {
            let known = |class: u16, ty: u8| c.known.contains(&(class, ty));
            if let Err(e) = check_critical_options(d.options(data), known) {
                return Step::Drop(e as u16);
            }
        }
        // Before the inner parse, which hashes `in_port` with the rest of the key.
        meta.key.in_port = dp_port;
        match decap::apply_to(data, meta, &d, self.vlans, &self.options, now_ns) {
            Ok(()) => Step::Decapsulated,
            Err(e) => Step::Drop(e as u16),
        }
    }
}

/// What became of one packet.
enum Step {
    Pass,
    Decapsulated,
    Drop(u16),
}

impl Default for TunnelDecap {
    /// Sends to `classify`.
    fn default() -> TunnelDecap {
        TunnelDecap::new("classify")
    }
}

impl Node for TunnelDecap {
    fn name(&self) -> &'static str {
        NAME
    }

    fn next_nodes(&self) -> &[&'static str] {
        &self.next
    }

    fn drop_reasons(&self) -> &[&'static str] {
        &DROP_REASONS
    }

    fn process(&mut self, cx: &mut Ctx<'_>, pkts: &[PacketId], next: &mut [Next]) {
        if !self.config.snoop.is_empty() {
            self.snoop(cx.pool, pkts, cx.now_ns);
        }
        let c = &self.compiled;
        if c.udp.is_empty() || c.endpoints.is_empty() {
            next.fill(Next::to(0));
            self.stats.passed += pkts.len() as u64;
            return;
        }
        let (mut passed, mut decapsulated) = (0u64, 0u64);
        for (&p, n) in pkts.iter().zip(next.iter_mut()) {
            *n = match self.one(cx.pool, p, cx.now_ns) {
                Step::Pass => {
                    passed += 1;
                    Next::to(0)
                }
                Step::Decapsulated => {
                    decapsulated += 1;
                    let m = cx.pool.meta(p);
                    count_port(&mut self.rx, m.key.in_port, 1, u64::from(m.len));
                    Next::to(0)
                }
                Step::Drop(r) => Next::drop(r),
            };
        }
        self.stats.passed += passed;
        self.stats.decapsulated += decapsulated;
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
