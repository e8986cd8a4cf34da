//! [`DatapathUpcall`]: the upcall of a datapath that serves every bridge at once, as Open
//! vSwitch's dpif-netdev does. Each port has a datapath port number (OVS's odp port) unique
//! across bridges; the megaflows match it as `in_port`, so `in_port` says which bridge a
//! packet is in. On a miss the port map names the bridge and the OpenFlow port of the
//! packet's datapath port, the bridge translates with that OpenFlow port, and the outputs of
//! the translation are mapped back to datapath ports. The map is published atomically by
//! whoever owns the ports (the daemon), and read lock-free by every PMD's classifier.
//!
//! An output to a tunnel port becomes OVS's native tunnel output: the route and neighbour
//! tables ([`Underlay`]) give the outer headers (`tunnels::resolve`), and the encapsulated
//! packet is translated through the underlay bridge as if its LOCAL port sent it; the
//! megaflow gets `clone(tnl_push(...),<the underlay's outputs>)`. A next hop whose MAC is not
//! known yet has its ARP request sent into the underlay bridge from LOCAL (the PMD takes it
//! with [`Upcall::take_frames`]) and the packet is dropped, counted as `tunnel-neigh-miss`;
//! no route drops it as `tunnel-no-route`. The route and neighbour generations are part of
//! the upcall's, so megaflows are translated again when either table changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pipeline::flowkey::{TUN_FLAG_CSUM, TUN_FLAG_DF, TUN_FLAG_PRESENT, TUN_OPTS_LEN};
use pipeline::{
    DpAction, ExecDrop, FlowKey, Header, RuleChange, Upcall, UpcallResult, REWRITTEN_ALL,
};
use tunnels::underlay::{NeighTable, RouteTable};
use tunnels::{resolve, OptionStore, Resolved, TunnelOutput};

use crate::bridge::{rule_changes_of, Bridge, BridgeSeen, DatapathContext};
use crate::recirc::{Conntrack, Hooks, RecircTable};
use crate::rule::{Action, Fields};
use crate::tlv::TlvMap;
use crate::OFPP_LOCAL;

/// Weight of one change of the port map in [`DatapathUpcall::generation`]. The map's change
/// counter counts in units the sum of the bridges' own generations is not expected to reach
/// (2^40 rule changes and MAC moves), so that a change of the map moves the generation up even
/// when it takes a bridge, and that bridge's share of the sum, away.
const MAP_CHANGE: u64 = 1 << 40;

/// One bridge as the port map holds it.
#[derive(Clone)]
pub struct DatapathBridge {
    pub name: String,
    pub bridge: Arc<Bridge>,
    /// `(ofport, dp_port)` of each of its ports that has a datapath port (tunnel ports too:
    /// theirs is the `in_port` of the packets they decapsulate).
    pub ports: Vec<(u32, u32)>,
    /// `(ofport, how to send)` of each of its tunnel ports.
    pub tunnels: Vec<(u32, TunnelOutput)>,
    /// The MAC of its LOCAL port: the outer source of tunnel packets it sends.
    pub mac: Option<[u8; 6]>,
    /// `(ofport, MTU)` of its ports whose MTU is known (kernel interfaces): a tunnel packet
    /// sent out of one must fit it.
    pub mtus: Vec<(u32, u16)>,
}

/// The route and neighbour tables tunnel outputs resolve with, and the Geneve options the
/// `tunnel-decap` nodes kept by digest (clones share them).
#[derive(Clone, Default)]
pub struct Underlay {
    pub routes: RouteTable,
    pub neighs: NeighTable,
    pub options: OptionStore,
    /// Translations that found no neighbour since the last tick.
    misses: Arc<AtomicU64>,
    /// Moved by a tick after misses, so that the megaflows that dropped for want of a
    /// neighbour are translated again and ask again (OVS's revalidators do the same).
    retries: Arc<AtomicU64>,
}

impl Underlay {
    pub fn new(routes: RouteTable, neighs: NeighTable) -> Underlay {
        Underlay {
            routes,
            neighs,
            ..Underlay::default()
        }
    }

    fn generation(&self) -> u64 {
        self.routes
            .generation()
            .wrapping_add(self.neighs.generation())
            .wrapping_add(self.retries.load(Ordering::Acquire))
    }
}

/// A port map that cannot be published; the map in use stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortMapError {
    #[error("dp_port: {dp_port} is given to two ports ({first} and {second})")]
    DuplicateDpPort {
        dp_port: u32,
        first: String,
        second: String,
    },
    #[error("ofport: bridge {bridge} has two ports numbered {ofport}")]
    DuplicateOfport { bridge: String, ofport: u32 },
    #[error("bridge: {0:?} is listed twice")]
    DuplicateBridge(String),
}

/// One published version of the port map.
#[derive(Default)]
struct PortMap {
    /// Bumped by every change of the map (see [`MAP_CHANGE`]).
    changes: u64,
    bridges: Vec<DatapathBridge>,
    /// Datapath port → (index into `bridges`, OpenFlow port).
    by_dp: HashMap<u32, (usize, u32)>,
    /// Per bridge (same index): OpenFlow port → datapath port.
    to_dp: Vec<HashMap<u32, u32>>,
    /// Per bridge (same index): OpenFlow port → tunnel port.
    tunnels: Vec<HashMap<u32, TunnelOutput>>,
    /// Datapath port → MTU, where known.
    mtus: HashMap<u32, u16>,
}

impl PortMap {
    fn build(bridges: Vec<DatapathBridge>, changes: u64) -> Result<PortMap, PortMapError> {
        let mut by_dp = HashMap::new();
        let mut to_dp = Vec::with_capacity(bridges.len());
        for (bi, b) in bridges.iter().enumerate() {
            if bridges[..bi].iter().any(|o| o.name == b.name) {
                return Err(PortMapError::DuplicateBridge(b.name.clone()));
            }
            let mut ofports = HashMap::new();
            for &(ofport, dp_port) in &b.ports {
                if ofports.insert(ofport, dp_port).is_some() {
                    return Err(PortMapError::DuplicateOfport {
                        bridge: b.name.clone(),
                        ofport,
                    });
                }
                if let Some((other, other_of)) = by_dp.insert(dp_port, (bi, ofport)) {
                    let name = |i: usize, of: u32| {
                        format!("{} port {of}", bridges.get(i).map_or("?", |b| &b.name))
                    };
                    return Err(PortMapError::DuplicateDpPort {
                        dp_port,
                        first: name(other, other_of),
                        second: name(bi, ofport),
                    });
                }
            }
            to_dp.push(ofports);
        }
        let tunnels = bridges
            .iter()
            .map(|b| b.tunnels.iter().copied().collect())
            .collect();
        let mtus = bridges
            .iter()
            .zip(&to_dp)
            .flat_map(|(b, to_dp)| {
                b.mtus
                    .iter()
                    .filter_map(|(of, mtu)| Some((*to_dp.get(of)?, *mtu)))
            })
            .collect();
        Ok(PortMap {
            changes,
            bridges,
            by_dp,
            to_dp,
            tunnels,
            mtus,
        })
    }

    fn bridge_index(&self, name: &str) -> Option<usize> {
        self.bridges.iter().position(|b| b.name == name)
    }

    fn sum(&self, bridge_generation: impl Fn(&Bridge) -> u64) -> u64 {
        self.bridges
            .iter()
            .fold(self.changes.wrapping_mul(MAP_CHANGE), |g, b| {
                g.wrapping_add(bridge_generation(&b.bridge))
            })
    }
}

/// An output to a tunnel port as translation reached it.
struct TunnelOut<'a> {
    port: &'a TunnelOutput,
    /// The tunnel port's datapath number (its `tx` counters).
    dp_port: u32,
    /// The flow at the output (its tunnel words and `tun_metadataN` as the actions left them).
    flow: &'a Fields,
    tlv: &'a TlvMap,
    /// The packet's own Geneve options, sent when no `tun_metadataN` is set.
    options: &'a [u8],
}

/// The upcall over every bridge of a datapath. Clones share the port map: the owner of the
/// ports publishes a new one with [`DatapathUpcall::set_bridges`], and every classifier holding
/// a clone translates with it from its next miss on (its megaflows are revalidated first: the
/// generation moved).
#[derive(Clone, Default)]
pub struct DatapathUpcall {
    map: Arc<ArcSwap<PortMap>>,
    underlay: Underlay,
    /// Frames translations want sent, as `(dp_port, frame)`: received on that port (ARP
    /// requests from an underlay bridge's LOCAL port). Each clone has its own.
    frames: Vec<(u32, Vec<u8>)>,
    /// The frozen states of `ct(table=...)`, by recirculation id.
    recirc: RecircTable,
    /// Connection tracking; without it a `ct()` drops (`ct-refused`).
    conntrack: Option<Arc<dyn Conntrack>>,
    /// The datapath as this clone's last revalidation saw it ([`Upcall::rule_changes`]).
    seen: Option<DatapathSeen>,
}

/// Where a [`DatapathUpcall`]'s generation stood for a revalidation.
#[derive(Clone, PartialEq, Eq)]
struct DatapathSeen {
    map: u64,
    underlay: u64,
    bridges: Vec<BridgeSeen>,
}

impl DatapathUpcall {
    /// An upcall with no bridges (every packet is dropped) and empty underlay tables.
    pub fn new() -> DatapathUpcall {
        DatapathUpcall::default()
    }

    /// An upcall with no bridges whose tunnel ports send through `underlay`.
    pub fn with_underlay(underlay: Underlay) -> DatapathUpcall {
        DatapathUpcall {
            underlay,
            ..DatapathUpcall::default()
        }
    }

    /// The underlay tables.
    pub fn underlay(&self) -> &Underlay {
        &self.underlay
    }

    /// This upcall, whose `ct()` actions track with `conntrack`.
    pub fn with_conntrack(self, conntrack: Arc<dyn Conntrack>) -> DatapathUpcall {
        DatapathUpcall {
            conntrack: Some(conntrack),
            ..self
        }
    }

    /// The frozen states of recirculation.
    pub fn recirc(&self) -> &RecircTable {
        &self.recirc
    }

    /// Publishes a new port map (checked whole first: on an error nothing changes). Meant for
    /// one thread, the owner of the ports.
    pub fn set_bridges(&self, bridges: Vec<DatapathBridge>) -> Result<(), PortMapError> {
        let changes = self.map.load().changes.wrapping_add(1);
        self.map.store(Arc::new(PortMap::build(bridges, changes)?));
        Ok(())
    }

    /// The bridge and OpenFlow port of datapath port `dp_port`.
    pub fn port(&self, dp_port: u32) -> Option<(String, u32)> {
        let map = self.map.load();
        let &(bi, ofport) = map.by_dp.get(&dp_port)?;
        Some((map.bridges.get(bi)?.name.clone(), ofport))
    }

    /// The datapath port of OpenFlow port `ofport` of bridge `bridge`.
    pub fn dp_port(&self, bridge: &str, ofport: u32) -> Option<u32> {
        let map = self.map.load();
        let bi = map.bridges.iter().position(|b| b.name == bridge)?;
        map.to_dp.get(bi)?.get(&ofport).copied()
    }

    /// Translates `key` in the bridge of its in_port (`NORMAL` learning when `learn`), see
    /// the module documentation. A datapath port of no bridge drops (a megaflow on that
    /// in_port alone).
    fn translate_with(&mut self, key: &FlowKey, now_ns: u64, learn: bool) -> UpcallResult {
        let map = self.map.load();
        let (bi, ofport) = match map.by_dp.get(&key.in_port) {
            Some(&found) => found,
            None => (usize::MAX, 0),
        };
        self.translate_in(&map, bi, ofport, key, None, now_ns, learn)
    }

    /// Translates a PACKET_OUT: `actions` run on `key` (its `in_port` a datapath port, or
    /// any number when `in_port`, the OpenFlow one, has none: `CONTROLLER`) in bridge
    /// `bridge`, with the outputs as datapath ports. `None` when there is no such bridge.
    pub fn translate_packet_out(
        &mut self,
        bridge: &str,
        in_port: u32,
        key: &FlowKey,
        actions: &[Action],
        now_ns: u64,
    ) -> Option<UpcallResult> {
        let map = self.map.load();
        let bi = map.bridge_index(bridge)?;
        Some(self.translate_in(&map, bi, in_port, key, Some(actions), now_ns, true))
    }

    /// Translates `key` in bridge `bi` of `map` (none there: a drop on in_port alone) as
    /// from its OpenFlow port `ofport`, from table 0 or through a PACKET_OUT's `actions`.
    #[allow(clippy::too_many_arguments)]
    fn translate_in(
        &mut self,
        map: &PortMap,
        bi: usize,
        ofport: u32,
        key: &FlowKey,
        packet_out: Option<&[Action]>,
        now_ns: u64,
        learn: bool,
    ) -> UpcallResult {
        let found = (|| {
            Some((
                map.bridges.get(bi)?,
                map.to_dp.get(bi)?,
                map.tunnels.get(bi)?,
            ))
        })();
        let Some((b, to_dp, tunnels)) = found else {
            return UpcallResult {
                rewritten: 0,
                actions: Vec::new(),
                mask: FlowKey {
                    in_port: u32::MAX,
                    ..FlowKey::default()
                },
                sinks: Vec::new(),
            };
        };
        let Some(options) = self.underlay.options.options_of(key) else {
            // Options kept by digest that the store no longer has: only a megaflow unused
            // for a minute can ask (see `tunnels::option_store`). It drops just these options
            // (the next packet with them keeps them again, and revalidation mends it).
            return UpcallResult {
                rewritten: 0,
                actions: Vec::new(),
                mask: FlowKey {
                    in_port: u32::MAX,
                    tun_opts: [u8::MAX; TUN_OPTS_LEN],
                    tun_opts_len: u8::MAX,
                    ..FlowKey::default()
                },
                sinks: Vec::new(),
            };
        };
        // A recirculated packet goes on where its first translation froze, in the bridge of
        // its in_port; an id this datapath did not give drops (a megaflow on that id).
        let thawed = match key.recirc_id {
            0 => None,
            id => match self.recirc.thaw(id) {
                Some((bridge, frozen)) if bridge == b.name => Some(frozen),
                _ => {
                    return UpcallResult {
                        rewritten: 0,
                        actions: Vec::new(),
                        mask: FlowKey {
                            in_port: u32::MAX,
                            recirc_id: u32::MAX,
                            ..FlowKey::default()
                        },
                        sinks: Vec::new(),
                    }
                }
            },
        };
        let bridge_key = FlowKey {
            in_port: ofport,
            ..*key
        };
        let hooks = Hooks {
            bridge: &b.name,
            recirc: &self.recirc,
            conntrack: self.conntrack.as_deref(),
        };
        let dp = DatapathContext {
            options: &options,
            hooks: Some(&hooks),
            frozen: thawed.as_ref(),
            actions: packet_out,
            // As in OVS, what a controller sends is not a flow NetFlow records.
            netflow: packet_out.is_none(),
        };
        let (mut r, marks) = b.bridge.translate_marked(&bridge_key, dp, now_ns, learn);
        let mut marks = marks.into_iter().peekable();
        let mut state = Fields::from_key(&bridge_key);
        let mut actions = Vec::with_capacity(r.actions.len());
        for (i, a) in std::mem::take(&mut r.actions).into_iter().enumerate() {
            while let Some((_, k)) = marks.next_if(|m| m.0 <= i) {
                state = k;
            }
            let DpAction::Output(port) = a else {
                actions.push(a);
                continue;
            };
            if let Some(t) = tunnels.get(&port) {
                t.mask_reads(&state.key, &mut r.mask);
                let tlv = b.bridge.tlv_map();
                let out = TunnelOut {
                    port: t,
                    dp_port: to_dp.get(&port).copied().unwrap_or(0),
                    flow: &state,
                    tlv: &tlv,
                    options: &options,
                };
                actions.push(self.tunnel_output(map, out, &mut r, now_ns));
            } else if let Some(&dp_port) = to_dp.get(&port) {
                actions.push(DpAction::Output(dp_port));
            }
        }
        r.actions = actions;
        // The in_port says which bridge and the recirc_id where translation began: every
        // megaflow matches both (OVS's xlate_wc_init).
        r.mask.in_port = u32::MAX;
        r.mask.recirc_id = u32::MAX;
        // A packet from a tunnel: its megaflow matches the tunnel it came in on whatever the
        // rules read (OVS's tnl_wc_init): VNI, outer addresses, DF and checksum, outer TOS.
        if key.tun_flags & TUN_FLAG_PRESENT != 0 {
            r.mask.tun_id = u64::MAX;
            r.mask.tun_src = u32::MAX;
            r.mask.tun_dst = u32::MAX;
            r.mask.tun_flags |= TUN_FLAG_PRESENT | TUN_FLAG_DF | TUN_FLAG_CSUM;
            r.mask.tun_tos = u8::MAX;
        } else if tunnels.contains_key(&ofport) {
            // A packet the switch made that enters by a tunnel port (a too-big answer): its
            // megaflow must not serve the packets that came through the tunnel.
            r.mask.tun_flags |= TUN_FLAG_PRESENT;
        }
        r
    }

    /// The action that sends `key` out of tunnel port `t`: a clone that pushes the header
    /// and takes the underlay bridge's outputs, or one that drops with the reason.
    fn tunnel_output(
        &mut self,
        map: &PortMap,
        out: TunnelOut<'_>,
        r: &mut UpcallResult,
        now_ns: u64,
    ) -> DpAction {
        let TunnelOut {
            port: t,
            dp_port,
            flow,
            tlv,
            options,
        } = out;
        let mac = |bridge: &str| map.bridge_index(bridge).and_then(|i| map.bridges[i].mac);
        let u = &self.underlay;
        let dropped = |reason| DpAction::Clone(Box::new([DpAction::Drop(reason)]));
        // Geneve options: the `tun_metadataN` fields by the TLV map, else those the packet
        // came with.
        let key = &flow.key;
        let encoded = tlv.encode(&flow.tun_md);
        let options = match &encoded {
            Some(o) => o.as_slice(),
            None => options,
        };
        match resolve(t, key, options, &u.routes, &u.neighs, mac, now_ns) {
            Resolved::Send {
                header,
                bridge,
                outer,
            } => {
                let Some(ui) = map.bridge_index(&bridge) else {
                    return dropped(ExecDrop::TunnelNoRoute);
                };
                let outer = FlowKey {
                    in_port: OFPP_LOCAL,
                    ..*outer
                };
                let (under, _) = map.bridges[ui].bridge.translate_marked(
                    &outer,
                    DatapathContext::default(),
                    now_ns,
                    true,
                );
                r.sinks.extend(under.sinks);
                // The underlay looked up the outer header, nothing like the packet's key.
                r.rewritten = REWRITTEN_ALL;
                let to_dp = &map.to_dp[ui];
                // The underlay's outputs, in datapath numbers; a tunnel port of the underlay
                // (a tunnel in a tunnel) is not followed.
                let outputs: Vec<DpAction> = under
                    .actions
                    .into_iter()
                    .filter_map(|a| match a {
                        DpAction::Output(p) => to_dp.get(&p).copied().map(DpAction::Output),
                        DpAction::Clone(_) => None,
                        other => Some(other),
                    })
                    .collect();
                // The smallest MTU among the ports the outer packet leaves by.
                let mtu = outputs
                    .iter()
                    .filter_map(|a| match a {
                        DpAction::Output(p) => map.mtus.get(p).copied(),
                        _ => None,
                    })
                    .min()
                    .unwrap_or(0);
                let header = Header(Arc::new(header.with_mtu(mtu).with_port(dp_port)));
                let mut sub = vec![DpAction::TunnelPush(header)];
                sub.extend(outputs);
                DpAction::Clone(sub.into())
            }
            Resolved::NeighMiss { bridge, request } => {
                let local = map
                    .bridge_index(&bridge)
                    .and_then(|i| map.to_dp[i].get(&OFPP_LOCAL).copied());
                if let Some(dp) = local {
                    self.frames.push((dp, request));
                }
                u.misses.fetch_add(1, Ordering::Relaxed);
                dropped(ExecDrop::TunnelNeighMiss)
            }
            Resolved::NoRoute | Resolved::Invalid => dropped(ExecDrop::TunnelNoRoute),
        }
    }
}

impl Upcall for DatapathUpcall {
    fn translate(&mut self, key: &FlowKey, now_ns: u64) -> UpcallResult {
        self.translate_with(key, now_ns, true)
    }

    /// Every bridge's generation summed, plus the port map's changes times 2^40 (so that a
    /// map that takes a bridge away still moves it up): a rule change or a MAC learned in one
    /// bridge revalidates every megaflow of the classifier, as in Open vSwitch.
    fn generation(&self) -> u64 {
        self.map
            .load()
            .sum(Bridge::generation)
            .wrapping_add(self.underlay.generation())
    }

    fn config_generation(&self) -> u64 {
        self.map
            .load()
            .sum(Bridge::config_generation)
            .wrapping_add(self.underlay.routes.generation())
    }

    /// NetFlow ends the records of the megaflows made before the revalidation, kept or not,
    /// as OVS's revalidators do.
    fn revalidation_begins(&mut self, generation: u64) {
        for b in &self.map.load().bridges {
            if let Some(nf) = b.bridge.netflow() {
                nf.revalidated(generation);
            }
        }
    }

    /// Rule changes only when the port map, the underlay and every bridge's MAC table and
    /// ports stayed; each bridge's with its in_port as a datapath port.
    fn rule_changes(&mut self, changes: &mut Vec<RuleChange>) -> bool {
        let map = self.map.load();
        let now = DatapathSeen {
            map: map.changes,
            underlay: self.underlay.generation(),
            bridges: map.bridges.iter().map(|b| b.bridge.seen()).collect(),
        };
        let Some(then) = self.seen.replace(now.clone()) else {
            return false;
        };
        if (then.map, then.underlay) != (now.map, now.underlay) {
            return false;
        }
        let mut matches = Vec::new();
        for (bi, b) in map.bridges.iter().enumerate() {
            let (Some(&t), Some(&n), Some(to_dp)) =
                (then.bridges.get(bi), now.bridges.get(bi), map.to_dp.get(bi))
            else {
                return false;
            };
            matches.clear();
            if !b.bridge.rule_changes(t, n, &mut matches) {
                return false;
            }
            rule_changes_of(&matches, |p| to_dp.get(&p).copied(), changes);
        }
        true
    }

    /// As `BridgeUpcall`'s: never moves a MAC.
    fn retranslate(&mut self, key: &FlowKey, now_ns: u64, _used: bool) -> UpcallResult {
        self.translate_with(key, now_ns, false)
    }

    fn keep_recirc(&mut self, ids: &[u32], now_ns: u64) {
        self.recirc.keep(ids, now_ns);
    }

    fn tick(&mut self, now_ns: u64) {
        for b in &self.map.load().bridges {
            b.bridge.tick(now_ns);
        }
        if self.underlay.misses.swap(0, Ordering::Relaxed) > 0 {
            self.underlay.retries.fetch_add(1, Ordering::Release);
        }
    }

    fn take_frames(&mut self, out: &mut Vec<(u32, Vec<u8>)>) {
        out.append(&mut self.frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normal::{MacTable, NormalPort, VlanMode};

    fn bridge(ofports: &[u32], rules: &str) -> Arc<Bridge> {
        let ports = ofports
            .iter()
            .map(|&ofport| NormalPort {
                ofport,
                vlan: VlanMode::Trunk(Vec::new()),
                flood: true,
            })
            .collect();
        let b = Bridge::new(ports, MacTable::default());
        b.add_flows_text(rules, 0).unwrap();
        Arc::new(b)
    }

    fn entry(name: &str, bridge: &Arc<Bridge>, ports: &[(u32, u32)]) -> DatapathBridge {
        DatapathBridge {
            name: name.to_string(),
            bridge: bridge.clone(),
            ports: ports.to_vec(),
            tunnels: Vec::new(),
            mac: None,
            mtus: Vec::new(),
        }
    }

    fn key(in_port: u32, src: u8, dst: u8) -> FlowKey {
        FlowKey {
            in_port,
            dl_src: [2, 0, 0, 0, 0, src],
            dl_dst: [2, 0, 0, 0, 0, dst],
            dl_type: 0x88b5,
            ..FlowKey::default()
        }
    }

    fn outputs(r: &UpcallResult) -> Vec<u32> {
        r.actions
            .iter()
            .filter_map(|a| match a {
                DpAction::Output(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// br-a: ofports 1, 2 on dp ports 1, 2; br-b: ofports 1, 2 on dp ports 3, 4.
    fn two_bridges(rules_a: &str, rules_b: &str) -> (DatapathUpcall, Arc<Bridge>, Arc<Bridge>) {
        let (a, b) = (bridge(&[1, 2], rules_a), bridge(&[1, 2], rules_b));
        let up = DatapathUpcall::new();
        up.set_bridges(vec![
            entry("br-a", &a, &[(1, 1), (2, 2)]),
            entry("br-b", &b, &[(1, 3), (2, 4)]),
        ])
        .unwrap();
        (up, a, b)
    }

    /// A tracker that records the calls it was made for and marks packets `+trk+new`.
    struct FakeTrack(crate::xlate::CtCall);

    impl pipeline::Track for FakeTrack {
        fn track(
            &self,
            pool: &mut pipeline::PacketPool,
            pkts: &[pipeline::PacketId],
            _now_ns: u64,
            _drops: &mut [Option<ExecDrop>],
            _frags: &mut pipeline::Fragments,
        ) {
            for &p in pkts {
                pool.meta_mut(p).key.ct_state = 0x21;
            }
        }
        fn describe(&self) -> String {
            format!("{:?}", self.0)
        }
    }

    struct FakeConntrack;

    impl Conntrack for FakeConntrack {
        fn tracker(&self, call: &crate::xlate::CtCall) -> pipeline::Tracker {
            pipeline::Tracker(Arc::new(FakeTrack(call.clone())))
        }
    }

    #[test]
    fn ct_with_a_table_tracks_then_recirculates_into_it() {
        let a = bridge(
            &[1, 2],
            "table=0,ip,actions=load:0x7->reg1[],ct(commit,zone=NXM_NX_REG1[0..15],exec(set_field:0x5/0xff->ct_mark),table=3)\n\
             table=3,ct_state=+trk+new,reg1=7,ip,actions=output:2\n",
        );
        let up = DatapathUpcall::new().with_conntrack(Arc::new(FakeConntrack));
        up.set_bridges(vec![entry("br-a", &a, &[(1, 1), (2, 2)])])
            .unwrap();
        let mut up = up;
        let ip = FlowKey {
            dl_type: 0x0800,
            ..key(1, 1, 2)
        };
        let r = up.translate(&ip, 0);
        let [DpAction::Ct(t), DpAction::Recirc(id)] = r.actions.as_slice() else {
            panic!("{:?}", r.actions)
        };
        assert!(t.0.describe().contains("zone: 7"), "{}", t.0.describe());
        assert!(t.0.describe().contains("mark: (5, 255)"));
        assert_eq!(r.mask.recirc_id, u32::MAX);
        // The recirculated packet, tracked: table 3 with reg1 as it was at the ct.
        let back = FlowKey {
            recirc_id: *id,
            ct_state: 0x21,
            ..ip
        };
        let r = up.translate(&back, 0);
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        assert_eq!((r.mask.recirc_id, r.mask.ct_state & 0x21), (u32::MAX, 0x21));
        // An id the datapath never gave drops.
        let r = up.translate(
            &FlowKey {
                recirc_id: 999,
                ..back
            },
            0,
        );
        assert!(r.actions.is_empty());
        // Without conntrack, a ct() drops by its reason.
        let plain = DatapathUpcall::new();
        plain
            .set_bridges(vec![entry("br-a", &a, &[(1, 1), (2, 2)])])
            .unwrap();
        let mut plain = plain;
        assert_eq!(
            plain.translate(&ip, 0).actions,
            vec![DpAction::Drop(ExecDrop::CtRefused)]
        );
    }

    #[test]
    fn ct_followed_by_outputs_recirculates_a_copy() {
        let a = bridge(&[1, 2], "ip,actions=ct(commit,table=1),output:2\n");
        let up = DatapathUpcall::new().with_conntrack(Arc::new(FakeConntrack));
        up.set_bridges(vec![entry("br-a", &a, &[(1, 1), (2, 2)])])
            .unwrap();
        let mut up = up;
        let ip = FlowKey {
            dl_type: 0x0800,
            ..key(1, 1, 2)
        };
        let r = up.translate(&ip, 0);
        assert!(
            matches!(r.actions.as_slice(), [DpAction::Ct(_), DpAction::Clone(sub), DpAction::Output(2)] if matches!(**sub, [DpAction::Recirc(_)])),
            "{:?}",
            r.actions
        );
    }

    #[test]
    fn each_bridge_translates_by_its_own_rules_and_outputs_come_out_as_dp_ports() {
        let (mut up, _, _) = two_bridges(
            "in_port=1,actions=output:2\n",
            "priority=10,in_port=2,actions=output:1\npriority=0,actions=drop\n",
        );
        // dp 1 is br-a's port 1: out of its port 2, dp 2.
        let r = up.translate(&key(1, 1, 2), 0);
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        assert_eq!(r.mask.in_port, u32::MAX);
        // dp 4 is br-b's port 2: out of its port 1, dp 3.
        let r = up.translate(&key(4, 1, 2), 0);
        assert_eq!(r.actions, vec![DpAction::Output(3)]);
        // dp 3 is br-b's port 1, which br-b drops; br-a's rule on in_port=1 does not apply.
        let r = up.translate(&key(3, 1, 2), 0);
        assert!(r.actions.is_empty());
        assert_eq!(r.mask.in_port, u32::MAX);
        assert_eq!(up.port(3), Some(("br-b".to_string(), 1)));
        assert_eq!(up.dp_port("br-a", 2), Some(2));
        assert_eq!(up.dp_port("br-b", 7), None);
    }

    #[test]
    fn packet_out_actions_run_in_the_named_bridge_with_their_in_port() {
        let (mut up, a, _) = two_bridges(
            "priority=10,in_port=1,actions=output:2\npriority=5,actions=output:1\n",
            "actions=drop\n",
        );
        let table = Action::Resubmit {
            port: None,
            table: Some(0),
        };
        let po = |up: &mut DatapathUpcall, bridge, in_port, actions: &[Action]| {
            up.translate_packet_out(bridge, in_port, &key(0, 1, 2), actions, 0)
        };
        // Output to TABLE looks up table 0 as from the in_port, and the rule counts it.
        let r = po(&mut up, "br-a", 1, std::slice::from_ref(&table)).unwrap();
        assert_eq!(outputs(&r), vec![2]);
        assert_eq!(r.sinks.len(), 1);
        let r = po(&mut up, "br-a", 0xffff_fffd, &[table]).unwrap();
        assert_eq!(outputs(&r), vec![1]);
        // FLOOD and ALL skip the in_port; an output to the in_port itself is dropped, IN_PORT
        // sends there.
        let r = po(&mut up, "br-a", 2, &[Action::Flood]).unwrap();
        assert_eq!(outputs(&r), vec![1]);
        let r = po(&mut up, "br-a", 2, &[Action::Output(2), Action::InPort]).unwrap();
        assert_eq!(outputs(&r), vec![2]);
        let r = po(&mut up, "br-a", 0xffff_fffd, &[Action::All]).unwrap();
        assert_eq!(outputs(&r), vec![1, 2]);
        // NORMAL from the controller floods and learns nothing (OVS's ofpp_none_bundle);
        // from a port it learns.
        let r = po(&mut up, "br-a", 0xffff_fffd, &[Action::Normal]).unwrap();
        assert_eq!(outputs(&r), vec![1, 2]);
        assert!(a.macs().is_empty());
        let r = po(&mut up, "br-a", 1, &[Action::Normal]).unwrap();
        assert_eq!(outputs(&r), vec![2]);
        assert_eq!(a.macs().len(), 1);
        // Ports by bridge: br-b's port 2 is dp port 4.
        let r = po(&mut up, "br-b", 1, &[Action::Output(2)]).unwrap();
        assert_eq!(outputs(&r), vec![4]);
        assert!(po(&mut up, "br-x", 1, &[Action::Output(2)]).is_none());
        assert_eq!(a.rules().load().len(), 2);
    }

    #[test]
    fn a_dp_port_of_no_bridge_drops_on_in_port_alone() {
        let (mut up, _, _) = two_bridges("actions=NORMAL\n", "actions=NORMAL\n");
        let r = up.translate(&key(9, 1, 2), 0);
        assert!(r.actions.is_empty() && r.sinks.is_empty());
        assert_eq!(
            r.mask,
            FlowKey {
                in_port: u32::MAX,
                ..FlowKey::default()
            }
        );
        // Nothing at all: the same.
        let mut empty = DatapathUpcall::new();
        assert!(empty.translate(&key(1, 1, 2), 0).actions.is_empty());
    }

    #[test]
    fn the_same_mac_is_learned_in_each_bridge_on_its_own_port() {
        let (mut up, a, b) = two_bridges("actions=NORMAL\n", "actions=NORMAL\n");
        let mac = [2, 0, 0, 0, 0, 7];
        // MAC 7 sends from br-a's port 1 (dp 1) and from br-b's port 2 (dp 4): each bridge
        // floods it to its other port, in dp numbers, and learns it on its own port.
        assert_eq!(outputs(&up.translate(&key(1, 7, 9), 0)), vec![2]);
        assert_eq!(outputs(&up.translate(&key(4, 7, 9), 0)), vec![3]);
        assert_eq!(a.macs().lookup(0, mac, 0), Some(1));
        assert_eq!(b.macs().lookup(0, mac, 0), Some(2));
        // Frames to MAC 7 go where each bridge learned it.
        assert_eq!(outputs(&up.translate(&key(2, 8, 7), 0)), vec![1]);
        assert_eq!(outputs(&up.translate(&key(3, 8, 7), 0)), vec![4]);
    }

    #[test]
    fn flooding_reaches_local_by_its_dp_port_and_skips_ofports_without_one() {
        // br-b has LOCAL on dp 5 and a port 3 the map does not know (no dp port yet).
        let a = bridge(&[1, 2], "actions=NORMAL\n");
        let b = bridge(&[1, 2, 3, OFPP_LOCAL], "actions=NORMAL\n");
        let mut up = DatapathUpcall::new();
        up.set_bridges(vec![
            entry("br-a", &a, &[(1, 1), (2, 2)]),
            entry("br-b", &b, &[(1, 3), (2, 4), (OFPP_LOCAL, 5)]),
        ])
        .unwrap();
        let mut out = outputs(&up.translate(&key(3, 1, 9), 0));
        out.sort();
        assert_eq!(out, vec![4, 5]);
        // LOCAL sends in: flooded to ports 1 and 2 of br-b only.
        let mut out = outputs(&up.translate(&key(5, 2, 9), 0));
        out.sort();
        assert_eq!(out, vec![3, 4]);
    }

    #[test]
    fn the_generation_moves_with_either_bridge_and_with_the_map() {
        let (up, a, _) = two_bridges("actions=NORMAL\n", "actions=NORMAL\n");
        let (g, c) = (up.generation(), up.config_generation());
        a.add_flows_text("priority=5,actions=drop\n", 0).unwrap();
        assert!(up.generation() > g && up.config_generation() > c);
        let (g, c) = (up.generation(), up.config_generation());
        // Learning in br-b moves the generation, not the configuration.
        let mut u = up.clone();
        u.translate(&key(3, 1, 9), 0);
        assert!(up.generation() > g);
        assert_eq!(up.config_generation(), c);
        // A new map moves both, also when it takes a bridge away.
        let (g, c) = (up.generation(), up.config_generation());
        up.set_bridges(vec![entry("br-a", &a, &[(1, 1), (2, 2)])])
            .unwrap();
        assert!(up.generation() > g && up.config_generation() > c);
        // br-b's ports drop now; br-a's translate as before.
        assert!(u.translate(&key(3, 1, 9), 0).actions.is_empty());
        assert_eq!(outputs(&u.translate(&key(1, 1, 9), 0)), vec![2]);
    }

    #[test]
    fn a_map_with_a_dp_port_twice_is_refused_and_the_old_one_stays() {
        let (up, a, b) = two_bridges("actions=NORMAL\n", "actions=NORMAL\n");
        let g = up.generation();
        let e = up
            .set_bridges(vec![
                entry("br-a", &a, &[(1, 1), (2, 2)]),
                entry("br-b", &b, &[(1, 2)]),
            ])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dp_port: 2 is given to two ports (br-a port 2 and br-b port 1)"
        );
        let e = up
            .set_bridges(vec![entry("br-a", &a, &[(1, 1), (1, 2)])])
            .unwrap_err();
        assert!(e.to_string().starts_with("ofport:"), "{e}");
        let e = up
            .set_bridges(vec![entry("x", &a, &[]), entry("x", &b, &[])])
            .unwrap_err();
        assert!(e.to_string().starts_with("bridge:"), "{e}");
        assert_eq!(up.generation(), g);
        assert_eq!(up.port(4), Some(("br-b".to_string(), 2)));
    }

    #[test]
    fn ticks_reach_every_bridge_and_retranslation_does_not_learn() {
        let (mut up, a, b) = two_bridges(
            "hard_timeout=1,actions=output:2\n",
            "hard_timeout=1,actions=output:1\n",
        );
        assert_eq!(
            up.translate(&key(1, 1, 2), 0).actions,
            [DpAction::Output(2)]
        );
        up.tick(2_000_000_000);
        assert!(a.dump_flows(0).is_empty() && b.dump_flows(0).is_empty());
        // Learned on port 2 (dp 2), then re-translated from port 1: the MAC does not move.
        a.add_flows_text("actions=NORMAL\n", 0).unwrap();
        up.translate(&key(2, 7, 9), 0);
        up.retranslate(&key(1, 7, 9), 0, true);
        assert_eq!(a.macs().lookup(0, [2, 0, 0, 0, 0, 7], 0), Some(2));
    }

    use std::net::Ipv4Addr;
    use tunnels::underlay::{BridgeAddr, NeighSpec};
    use tunnels::{LocalIp, TunnelKind};

    const PHY_MAC: [u8; 6] = [2, 0, 0, 0, 0xee, 1];

    fn vxlan(remote: Option<Ipv4Addr>, key: Option<u32>) -> TunnelOutput {
        TunnelOutput {
            kind: TunnelKind::Vxlan,
            remote,
            local: LocalIp::Route,
            out_key: key,
            dst_port: 4789,
            ttl: Some(64),
            tos: Some(0),
            df: true,
            csum: false,
        }
    }

    /// br-int: a VM on ofport 1 (dp 1), tunnel port 2 (dp 3); br-phy: the wire on ofport 1
    /// (dp 2), LOCAL (dp 4) holding 10.0.0.1/24.
    fn overlay(int_rules: &str, tunnel: TunnelOutput) -> (DatapathUpcall, Underlay) {
        let int = bridge(&[1, 2], int_rules);
        let phy = bridge(&[1, OFPP_LOCAL], "actions=NORMAL\n");
        let underlay = Underlay::default();
        underlay
            .routes
            .set_bridge_addresses("br-phy", &["10.0.0.1/24".parse::<BridgeAddr>().unwrap()]);
        let up = DatapathUpcall::with_underlay(underlay.clone());
        up.set_bridges(vec![
            DatapathBridge {
                tunnels: vec![(2, tunnel)],
                ..entry("br-int", &int, &[(1, 1), (2, 3)])
            },
            DatapathBridge {
                mac: Some(PHY_MAC),
                ..entry("br-phy", &phy, &[(1, 2), (OFPP_LOCAL, 4)])
            },
        ])
        .unwrap();
        (up, underlay)
    }

    /// What a tunnel output's template says: VNI, outer IPv4 destination, next-hop MAC.
    type Outer = (u32, Ipv4Addr, [u8; 6]);

    /// The [`Outer`] of a tunnel output, and the underlay's actions after the push.
    fn pushed(a: &DpAction) -> Option<(Outer, Vec<DpAction>)> {
        let DpAction::Clone(sub) = a else { return None };
        let [DpAction::TunnelPush(h), rest @ ..] = &sub[..] else {
            return None;
        };
        let t = h.0.template();
        assert_eq!(&t[6..12], &PHY_MAC);
        let vni = u32::from_be_bytes([0, t[46], t[47], t[48]]);
        let dst = Ipv4Addr::new(t[30], t[31], t[32], t[33]);
        let mac = t[..6].try_into().unwrap();
        Some(((vni, dst, mac), rest.to_vec()))
    }

    #[test]
    fn output_to_a_tunnel_port_asks_for_the_neighbour_then_pushes_through_the_underlay() {
        let (mut up, underlay) = overlay(
            "actions=NORMAL\n",
            vxlan(Some(Ipv4Addr::new(10, 0, 0, 2)), Some(5000)),
        );
        // From the VM: NORMAL floods to the tunnel; no MAC for 10.0.0.2 yet.
        let r = up.translate(&key(1, 1, 9), 0);
        assert_eq!(
            r.actions,
            vec![DpAction::Clone(Box::new([DpAction::Drop(
                ExecDrop::TunnelNeighMiss
            )]))]
        );
        let mut frames = Vec::new();
        up.take_frames(&mut frames);
        assert_eq!(frames.len(), 1);
        // The ARP request goes into br-phy from its LOCAL port, from the bridge's MAC.
        assert_eq!(frames[0].0, 4);
        assert_eq!(&frames[0].1[6..12], &PHY_MAC);
        let g = up.generation();
        underlay
            .neighs
            .add_static(
                &NeighSpec::parse(&["br-phy", "10.0.0.2", "02:00:00:00:ee:02"]).unwrap(),
                0,
            )
            .unwrap();
        assert!(up.generation() > g, "a new neighbour revalidates");
        let r = up.translate(&key(1, 1, 9), 0);
        assert_eq!(r.actions.len(), 1);
        let ((vni, dst, mac), rest) = pushed(&r.actions[0]).unwrap();
        assert_eq!((vni, dst), (5000, Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(mac, [2, 0, 0, 0, 0xee, 2]);
        // br-phy's NORMAL floods the outer frame from LOCAL to the wire, dp 2.
        assert_eq!(rest, vec![DpAction::Output(2)]);
        // A fixed port reads no tunnel word of the flow.
        assert_eq!((r.mask.tun_id, r.mask.tun_dst), (0, 0));
    }

    #[test]
    fn a_flow_based_port_sends_where_set_tunnel_and_tun_dst_say() {
        let (mut up, underlay) = overlay(
            "in_port=1,actions=set_tunnel:0x77,set_field:10.0.0.9->tun_dst,output:2\n",
            vxlan(None, None),
        );
        underlay
            .neighs
            .add_static(
                &NeighSpec::parse(&["br-phy", "10.0.0.9", "02:00:00:00:ee:09"]).unwrap(),
                0,
            )
            .unwrap();
        let r = up.translate(&key(1, 1, 9), 0);
        let ((vni, dst, _), _) = pushed(&r.actions[0]).unwrap();
        assert_eq!((vni, dst), (0x77, Ipv4Addr::new(10, 0, 0, 9)));
        // Both set by the rule: nothing of the packet's to match.
        assert_eq!((r.mask.tun_id, r.mask.tun_dst), (0, 0));
        // No route to the remote: dropped as such.
        let (mut up, _) = overlay(
            "in_port=1,actions=set_field:192.0.2.9->tun_dst,output:2\n",
            vxlan(None, Some(1)),
        );
        assert_eq!(
            up.translate(&key(1, 1, 9), 0).actions,
            vec![DpAction::Clone(Box::new([DpAction::Drop(
                ExecDrop::TunnelNoRoute
            )]))]
        );
    }

    #[test]
    fn a_packet_from_a_tunnel_matches_its_tunnel_in_the_megaflow() {
        let (mut up, _) = overlay("actions=output:1\n", vxlan(None, None));
        let k = FlowKey {
            tun_id: 5,
            tun_src: 0x0a00_0002,
            tun_dst: 0x0a00_0001,
            tun_flags: TUN_FLAG_PRESENT | TUN_FLAG_DF,
            ..key(3, 1, 9)
        };
        let r = up.translate(&k, 0);
        assert_eq!(r.actions, vec![DpAction::Output(1)]);
        assert_eq!(
            (r.mask.tun_id, r.mask.tun_src, r.mask.tun_dst),
            (u64::MAX, u32::MAX, u32::MAX)
        );
        assert_eq!(r.mask.tun_flags & TUN_FLAG_DF, TUN_FLAG_DF);
    }

    #[test]
    fn tun_metadata_set_by_a_rule_becomes_a_geneve_option_and_matches_on_receive() {
        let geneve = TunnelOutput {
            kind: TunnelKind::Geneve,
            dst_port: 6081,
            ..vxlan(Some(Ipv4Addr::new(10, 0, 0, 2)), Some(9))
        };
        let (mut up, underlay) = overlay(
            "priority=10,in_port=1,actions=set_field:0xabcd->tun_metadata0,output:2\n\
             priority=10,in_port=2,tun_metadata0=0xabcd,actions=output:1\n\
             priority=0,actions=drop\n",
            geneve,
        );
        let map = up.map.load().bridges[0].bridge.clone();
        map.change_tlv_map(|m| m.add("{class=0xffff,type=0x80,len=4}->tun_metadata0"))
            .unwrap();
        // Printed as OVS prints it, tunnel fields first.
        let dump = map.dump_flows(0);
        assert!(
            dump[1].ends_with(" priority=10,tun_metadata0=0xabcd,in_port=2 actions=output:1"),
            "{dump:?}"
        );
        underlay
            .neighs
            .add_static(
                &NeighSpec::parse(&["br-phy", "10.0.0.2", "02:00:00:00:ee:02"]).unwrap(),
                0,
            )
            .unwrap();
        let r = up.translate(&key(1, 1, 9), 0);
        let DpAction::Clone(sub) = &r.actions[0] else {
            panic!("{:?}", r.actions)
        };
        let DpAction::TunnelPush(h) = &sub[0] else {
            panic!("{sub:?}")
        };
        // Geneve header at 42: 8 bytes, then the option: class 0xffff, type 0x80, 1 word.
        let t = h.0.template();
        assert_eq!(&t[50..], &[0xff, 0xff, 0x80, 0x01, 0, 0, 0xab, 0xcd]);
        assert!(h
            .0
            .describe()
            .contains("crit,vni=0x9,options({class=0xffff,type=0x80,len=4}0x0000abcd)"));
        // Received with that option: the rule on tun_metadata0 matches, and the megaflow
        // matches the options.
        let mut k = FlowKey {
            tun_id: 9,
            tun_flags: TUN_FLAG_PRESENT,
            tun_opts_len: 8,
            ..key(3, 1, 9)
        };
        k.tun_opts[..8].copy_from_slice(&[0xff, 0xff, 0x80, 0x01, 0, 0, 0xab, 0xcd]);
        let r = up.translate(&k, 0);
        assert_eq!(r.actions, vec![DpAction::Output(1)]);
        assert_eq!((r.mask.tun_opts, r.mask.tun_opts_len), ([0xff; 32], 0xff));
        // Another value, or no option: the catch-all drops.
        k.tun_opts[7] = 0xce;
        assert!(up.translate(&k, 0).actions.is_empty());
        k.tun_opts_len = 0;
        assert!(up.translate(&k, 0).actions.is_empty());
    }

    #[test]
    fn a_bare_tun_metadata_matches_the_option_being_there() {
        let geneve = TunnelOutput {
            kind: TunnelKind::Geneve,
            dst_port: 6081,
            ..vxlan(Some(Ipv4Addr::new(10, 0, 0, 2)), Some(9))
        };
        let (mut up, _underlay) = overlay(
            "priority=10,in_port=2,tun_metadata0,actions=output:1\n\
             priority=0,actions=drop\n",
            geneve,
        );
        let map = up.map.load().bridges[0].bridge.clone();
        map.change_tlv_map(|m| m.add("{class=0xffff,type=0x80,len=4}->tun_metadata0"))
            .unwrap();
        assert!(
            map.dump_flows(0)[0].ends_with(" priority=10,tun_metadata0,in_port=2 actions=output:1"),
            "{:?}",
            map.dump_flows(0)
        );
        let mut k = FlowKey {
            tun_id: 9,
            tun_flags: TUN_FLAG_PRESENT,
            tun_opts_len: 8,
            ..key(3, 1, 9)
        };
        // Any value of the option matches; another option, or none, does not.
        for value in [0xcd, 0x00] {
            k.tun_opts[..8].copy_from_slice(&[0xff, 0xff, 0x80, 0x01, 0, 0, 0xab, value]);
            assert_eq!(up.translate(&k, 0).actions, vec![DpAction::Output(1)]);
        }
        k.tun_opts[2] = 0x81;
        assert!(up.translate(&k, 0).actions.is_empty());
        k.tun_opts_len = 0;
        k.tun_opts = [0; 32];
        assert!(up.translate(&k, 0).actions.is_empty());
    }

    #[test]
    fn options_longer_than_the_key_are_read_back_from_the_store() {
        let geneve = TunnelOutput {
            kind: TunnelKind::Geneve,
            dst_port: 6081,
            ..vxlan(Some(Ipv4Addr::new(10, 0, 0, 2)), Some(9))
        };
        let (mut up, underlay) = overlay(
            "priority=10,in_port=2,tun_metadata0=0xabcd,actions=output:1\n\
             priority=0,actions=drop\n",
            geneve,
        );
        let map = up.map.load().bridges[0].bridge.clone();
        map.change_tlv_map(|m| m.add("{class=0xffff,type=0,len=4}->tun_metadata0"))
            .unwrap();
        // 32 bytes of another option, then ours: 40 bytes, more than the key holds.
        let options = |value: u8| {
            let mut o = vec![0x01, 0x02, 0x05, 0x07];
            o.extend_from_slice(&[0x55; 28]);
            o.extend_from_slice(&[0xff, 0xff, 0x00, 0x01, 0, 0, 0xab, value]);
            o
        };
        let from_tunnel = |o: &[u8]| FlowKey {
            tun_id: 9,
            tun_flags: TUN_FLAG_PRESENT,
            tun_opts_len: o.len() as u8,
            tun_opts: tunnels::option_store::digest_bytes(underlay.options.intern(o, 0).unwrap()),
            ..key(3, 1, 9)
        };
        let k = from_tunnel(&options(0xcd));
        let r = up.translate(&k, 0);
        assert_eq!(r.actions, vec![DpAction::Output(1)]);
        assert_eq!((r.mask.tun_opts, r.mask.tun_opts_len), ([0xff; 32], 0xff));
        // Another value: another digest, and the catch-all drops.
        assert!(up
            .translate(&from_tunnel(&options(0xce)), 0)
            .actions
            .is_empty());
        // A digest the store does not know: dropped, by a megaflow on just those options.
        let unknown = FlowKey {
            tun_opts: tunnels::option_store::digest_bytes(12345),
            ..k
        };
        let r = up.translate(&unknown, 0);
        assert!(r.actions.is_empty());
        assert_eq!((r.mask.tun_opts, r.mask.tun_opts_len), ([0xff; 32], 0xff));
    }

    #[test]
    fn tun_flags_match_by_name() {
        // `tun_flags=1` is the same rule: OpenFlow numbers oam as bit 0.
        for rule in ["tun_flags=+oam", "tun_flags=1"] {
            let (mut up, _) = overlay(
                &format!(
                    "priority=10,{rule},actions=drop\npriority=5,in_port=2,actions=output:1\n"
                ),
                vxlan(None, None),
            );
            tun_flags_oam_dropped(&mut up);
        }
    }

    fn tun_flags_oam_dropped(up: &mut DatapathUpcall) {
        use pipeline::flowkey::TUN_FLAG_OAM;
        let b = up.map.load().bridges[0].bridge.clone();
        assert!(b.dump_flows(0)[0].contains("priority=10,tun_flags=+oam actions=drop"));
        let mut k = FlowKey {
            tun_flags: TUN_FLAG_PRESENT,
            ..key(3, 1, 9)
        };
        assert_eq!(up.translate(&k, 0).actions, vec![DpAction::Output(1)]);
        k.tun_flags |= TUN_FLAG_OAM;
        let r = up.translate(&k, 0);
        assert!(r.actions.is_empty());
        assert_eq!(r.mask.tun_flags & TUN_FLAG_OAM, TUN_FLAG_OAM);
    }

    #[test]
    fn a_rule_on_in_port_controller_takes_packet_outs_sent_to_the_tables_from_the_controller() {
        let (mut up, a, _) = two_bridges(
            "priority=10,in_port=CONTROLLER,actions=output:2\npriority=5,actions=output:1\n",
            "actions=drop\n",
        );
        let table = Action::Resubmit {
            port: None,
            table: Some(0),
        };
        let po = crate::packet_out::parse_packet_out(
            "in_port=CONTROLLER packet=ffffffffffff0000000000010806 actions=TABLE",
        )
        .unwrap();
        assert_eq!(po.actions, std::slice::from_ref(&table));
        let r = up
            .translate_packet_out("br-a", po.in_port, &key(0, 1, 2), &po.actions, 0)
            .unwrap();
        assert_eq!(outputs(&r), vec![2]);
        // What comes in on a port (or is sent as from one) is no CONTROLLER packet.
        let r = up
            .translate_packet_out("br-a", 2, &key(2, 1, 2), &[table], 0)
            .unwrap();
        assert_eq!(outputs(&r), vec![1]);
        assert_eq!(outputs(&up.translate(&key(2, 1, 2), 0)), vec![1]);
        let rules = a.rules().load().rules();
        assert_eq!(
            rules[0].spec.to_string(),
            "table=0, priority=10,in_port=CONTROLLER actions=output:2"
        );
    }
}
