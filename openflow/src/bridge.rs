//! A bridge as translation sees it: its ports (with their VLAN configuration for NORMAL), its
//! MAC table and its published rule set, and [`BridgeUpcall`], the `pipeline::Upcall` the
//! flow caches call on a miss, over [`Bridge::translate`] and [`Bridge::generation`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use netflow::BridgeNetflow;
use pipeline::{FlowKey, PacketInQueue, RuleChange, Upcall, UpcallResult};

use crate::error::BundleError;
use crate::normal::{MacTable, NormalPort};
use crate::recirc::{Conntrack, Hooks, RecircTable};
use crate::rule::FlowMod;
use crate::rule::{Action, Match};
use crate::ruleset::{ApplyReport, FlowTables, Rule, RuleSet};
use crate::tlv::{TlvError, TlvMap};
use crate::xlate::{translate_netflow, FragMode, Frozen, Start, TunnelMark, XlateEnv, XlateHooks};

/// `OFPPC_PORT_DOWN`: the port neither receives nor sends (OpenFlow PORT_MOD `down`).
pub const OFPPC_PORT_DOWN: u32 = 1 << 0;
/// `OFPPC_NO_RECV`: frames received on the port are dropped.
pub const OFPPC_NO_RECV: u32 = 1 << 2;
/// `OFPPC_NO_FWD`: nothing is sent out of the port.
pub const OFPPC_NO_FWD: u32 = 1 << 5;
/// `OFPPC_NO_PACKET_IN`: kept and reported; as in Open vSwitch over OpenFlow 1.3 it changes
/// nothing (Open vSwitch reads it only for OpenFlow 1.0's table-miss packet-ins).
pub const OFPPC_NO_PACKET_IN: u32 = 1 << 6;
/// `OFPPC_NO_FLOOD` (OpenFlow 1.0's bit; 1.3 has none): FLOOD and NORMAL's floods skip the
/// port; set on the control socket only (`mod-port`).
pub const OFPPC_NO_FLOOD: u32 = 1 << 4;
/// The bits [`Bridge::set_port_config`] takes.
pub const OFPPC_ALL: u32 =
    OFPPC_PORT_DOWN | OFPPC_NO_RECV | OFPPC_NO_FLOOD | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN;

/// One bridge: ports, MAC table, rules.
pub struct Bridge {
    ports: ArcSwap<Vec<NormalPort>>,
    /// Ports whose link is down (fast-failover liveness).
    ports_down: ArcSwap<Vec<u32>>,
    /// The OpenFlow configuration bits of the ports that have any (`OFPPC_*`).
    port_config: ArcSwap<Vec<(u32, u32)>>,
    port_changes: AtomicU64,
    macs: MacTable,
    rules: FlowTables,
    frag_mode: ArcSwap<FragMode>,
    tlv: ArcSwap<TlvMap>,
    /// NetFlow, when on: its translations give megaflows NetFlow's mask and a stats sink.
    netflow: ArcSwapOption<BridgeNetflow>,
    /// The packets its `controller` actions send, for the control thread.
    packet_ins: Arc<PacketInQueue>,
    /// Set while the bridge has failed open (OpenFlow `fail_mode=standalone` without its
    /// controller): translation uses these rules (NORMAL alone) instead of the tables, as
    /// Open vSwitch's hidden fail-open flow overrides every rule.
    fail_open: ArcSwapOption<RuleSet>,
    /// A controller takes `invalid_ttl` packet-ins (see
    /// [`Bridge::set_invalid_ttl_to_controller`]).
    invalid_ttl_to_controller: AtomicBool,
}

/// What a datapath adds to a bridge's translation.
#[derive(Clone, Copy, Default)]
pub struct DatapathContext<'a> {
    /// The packet's Geneve options as on the wire (the key holds at most 32 bytes of them,
    /// see `tunnels::OptionStore`).
    pub options: &'a [u8],
    /// Connection tracking and recirculation.
    pub hooks: Option<&'a dyn XlateHooks>,
    /// A recirculated packet's frozen state: the translation starts from there.
    pub frozen: Option<&'a Frozen>,
    /// A PACKET_OUT's actions: the translation runs them instead of looking up table 0.
    pub actions: Option<&'a [Action]>,
    /// The translation is a packet's own, not the underlay's part of a tunnel output:
    /// NetFlow (when on) accounts it, unless it is recirculated (`frozen`), as in OVS.
    pub netflow: bool,
}

impl Bridge {
    pub fn new(ports: Vec<NormalPort>, macs: MacTable) -> Bridge {
        Bridge {
            ports: ArcSwap::from_pointee(ports),
            ports_down: ArcSwap::from_pointee(Vec::new()),
            port_config: ArcSwap::from_pointee(Vec::new()),
            port_changes: AtomicU64::new(0),
            macs,
            rules: FlowTables::new(),
            frag_mode: ArcSwap::from_pointee(FragMode::default()),
            tlv: ArcSwap::from_pointee(TlvMap::default()),
            netflow: ArcSwapOption::empty(),
            packet_ins: Arc::default(),
            fail_open: ArcSwapOption::empty(),
            invalid_ttl_to_controller: AtomicBool::new(false),
        }
    }

    /// The packets its `controller` actions sent and the control thread has not taken yet
    /// ([`PacketInQueue::take`]).
    pub fn packet_ins(&self) -> &Arc<PacketInQueue> {
        &self.packet_ins
    }

    /// The removal notices of its rules added with `send_flow_rem`, for the control thread
    /// ([`crate::FlowRemovedQueue::take`]).
    pub fn flow_removed(&self) -> &crate::FlowRemovedQueue {
        self.rules.removed()
    }

    /// Whether the bridge has failed open (see [`Bridge::set_fail_open`]).
    pub fn fail_open(&self) -> bool {
        self.fail_open.load().is_some()
    }

    /// Fails open (every packet handled by NORMAL, whatever the rules say; they are kept
    /// and shown) or back; every megaflow is revalidated.
    pub fn set_fail_open(&self, on: bool) {
        let rules = on.then(|| {
            let t = FlowTables::new();
            // A constant rule: it parses.
            let _ = t.add_flows_text(DEFAULT_RULES, 0);
            t.snapshot()
        });
        self.fail_open.store(rules);
        self.port_changes.fetch_add(1, Ordering::Release);
    }

    /// Whether `dec_ttl` at TTL 1 sends the packet to the controllers (see
    /// [`Bridge::set_invalid_ttl_to_controller`]).
    pub fn invalid_ttl_to_controller(&self) -> bool {
        self.invalid_ttl_to_controller.load(Ordering::Acquire)
    }

    /// Set while a controller connection asks for `invalid_ttl` packet-ins: `dec_ttl` at
    /// TTL 1 then queues the packet as one (Open vSwitch's `compose_dec_ttl`), and megaflows
    /// of `dec_ttl` match the TTL. Unset, such a packet is dropped and one megaflow serves
    /// every TTL. A change revalidates every megaflow.
    pub fn set_invalid_ttl_to_controller(&self, on: bool) {
        if self.invalid_ttl_to_controller() != on {
            self.invalid_ttl_to_controller.store(on, Ordering::Release);
            self.port_changes.fetch_add(1, Ordering::Release);
        }
    }

    /// The Geneve TLV map (`dump-tlv-map`).
    pub fn tlv_map(&self) -> Arc<TlvMap> {
        self.tlv.load_full()
    }

    /// Changes the TLV map with `change` (all or nothing: an error leaves it as it was);
    /// every megaflow is revalidated. Meant for one thread, the control thread.
    pub fn change_tlv_map(
        &self,
        change: impl FnOnce(&mut TlvMap) -> Result<(), TlvError>,
    ) -> Result<(), TlvError> {
        let mut map = (**self.tlv.load()).clone();
        change(&mut map)?;
        self.tlv.store(Arc::new(map));
        self.port_changes.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The rule tables (flow mods, bundles, snapshots, dump).
    pub fn rules(&self) -> &FlowTables {
        &self.rules
    }

    pub fn macs(&self) -> &MacTable {
        &self.macs
    }

    pub fn ports(&self) -> Arc<Vec<NormalPort>> {
        self.ports.load_full()
    }

    /// Replaces the port list (moves the generation). A port that left forgets its
    /// configuration bits; one with `OFPPC_NO_FLOOD` is not flooded to.
    pub fn set_ports(&self, mut ports: Vec<NormalPort>) {
        let config = self.port_config.load();
        for p in &mut ports {
            if config
                .iter()
                .any(|(q, c)| *q == p.ofport && c & OFPPC_NO_FLOOD != 0)
            {
                p.flood = false;
            }
        }
        if config
            .iter()
            .any(|(p, _)| !ports.iter().any(|q| q.ofport == *p))
        {
            let kept = config
                .iter()
                .filter(|(p, _)| ports.iter().any(|q| q.ofport == *p))
                .copied()
                .collect();
            self.port_config.store(Arc::new(kept));
        }
        self.ports.store(Arc::new(ports));
        self.port_changes.fetch_add(1, Ordering::Release);
    }

    /// The OpenFlow configuration bits (`OFPPC_*`) of port `ofport`.
    pub fn port_config(&self, ofport: u32) -> u32 {
        self.port_config
            .load()
            .iter()
            .find(|(p, _)| *p == ofport)
            .map_or(0, |(_, c)| *c)
    }

    /// Sets the OpenFlow configuration bits of port `ofport` (bits outside [`OFPPC_ALL`]
    /// are ignored). A change revalidates every megaflow, so no frame is received or sent
    /// against the new bits after the PMDs acknowledge it. Returns whether it changed
    /// anything.
    pub fn set_port_config(&self, ofport: u32, config: u32) -> bool {
        let config = config & OFPPC_ALL;
        if self.port_config(ofport) == config {
            return false;
        }
        let mut all: Vec<(u32, u32)> = self
            .port_config
            .load()
            .iter()
            .filter(|(p, _)| *p != ofport)
            .copied()
            .collect();
        if config != 0 {
            all.push((ofport, config));
        }
        self.port_config.store(Arc::new(all));
        // NORMAL and FLOOD read `NormalPort::flood`.
        let no_flood = config & OFPPC_NO_FLOOD != 0;
        let ports = self.ports.load();
        if ports
            .iter()
            .any(|p| p.ofport == ofport && p.flood == no_flood)
        {
            let mut ports = (**ports).clone();
            for p in ports.iter_mut().filter(|p| p.ofport == ofport) {
                p.flood = !no_flood;
            }
            self.ports.store(Arc::new(ports));
        }
        self.port_changes.fetch_add(1, Ordering::Release);
        true
    }

    /// Says whether a port's link is up: a group bucket watching a port is live only while
    /// it is (and the port is on the bridge). A change revalidates every megaflow, so
    /// fast-failover groups move to the next live bucket at once. Returns whether it
    /// changed anything.
    pub fn set_port_live(&self, ofport: u32, live: bool) -> bool {
        let cur = self.ports_down.load();
        if cur.contains(&ofport) != live {
            return false;
        }
        let mut down: Vec<u32> = cur.iter().copied().filter(|p| *p != ofport).collect();
        if !live {
            down.push(ofport);
        }
        self.ports_down.store(Arc::new(down));
        self.port_changes.fetch_add(1, Ordering::Release);
        true
    }

    /// True unless [`Bridge::set_port_live`] said the port is down.
    pub fn port_live(&self, ofport: u32) -> bool {
        !self.ports_down.load().contains(&ofport)
    }

    /// Applies group mods all-or-nothing (see [`FlowTables::apply_groups`]).
    pub fn apply_groups(
        &self,
        mods: &[crate::group::GroupMod],
        now_ns: u64,
    ) -> Result<crate::ruleset::GroupReport, crate::group::GroupModError> {
        self.rules.apply_groups(mods, now_ns)
    }

    /// NetFlow of the bridge, if on.
    pub fn netflow(&self) -> Option<Arc<BridgeNetflow>> {
        self.netflow.load_full()
    }

    /// Turns NetFlow on (or off with `None`); every megaflow is revalidated at once (the
    /// config generation moves), so each gets NetFlow's mask and sink, or loses them.
    pub fn set_netflow(&self, netflow: Option<Arc<BridgeNetflow>>) {
        self.netflow.store(netflow);
        self.port_changes.fetch_add(1, Ordering::Release);
    }

    /// How translation treats IP fragments (`set-frags`).
    pub fn frag_mode(&self) -> FragMode {
        **self.frag_mode.load()
    }

    /// Sets the fragment handling; every megaflow is revalidated (the config generation
    /// moves), so no fragment is handled the old way after this returns.
    pub fn set_frag_mode(&self, mode: FragMode) {
        self.frag_mode.store(Arc::new(mode));
        self.port_changes.fetch_add(1, Ordering::Release);
    }

    /// Moves whenever a translation may come out differently: rules, MAC table or ports
    /// changed. Read it before translating and tag the megaflow with it.
    pub fn generation(&self) -> u64 {
        self.rules.generation() + self.macs.generation() + self.port_changes.load(Ordering::Acquire)
    }

    /// Applies flow mods all-or-nothing (see [`FlowTables::apply`]).
    pub fn apply(&self, mods: &[FlowMod], now_ns: u64) -> Result<ApplyReport, BundleError> {
        self.rules.apply(mods, now_ns)
    }

    /// Adds every rule of a flows file as one bundle.
    pub fn add_flows_text(&self, text: &str, now_ns: u64) -> Result<ApplyReport, BundleError> {
        self.rules.add_flows_text(text, now_ns)
    }

    /// dump-flows lines.
    pub fn dump_flows(&self, now_ns: u64) -> Vec<String> {
        self.rules.load().dump(now_ns)
    }

    /// Translates a packet's key through the tables (lock-free on the rules).
    pub fn translate(&self, key: &FlowKey, now_ns: u64) -> UpcallResult {
        self.translate_learning(key, now_ns, true)
    }

    /// As [`Bridge::translate`]; `NORMAL` moves a learned source only when `learn` (false to
    /// re-translate a megaflow, [`Upcall::retranslate`]).
    pub fn translate_learning(&self, key: &FlowKey, now_ns: u64, learn: bool) -> UpcallResult {
        let dp = DatapathContext {
            options: key.tun_opts_inline(),
            netflow: true,
            ..DatapathContext::default()
        };
        self.translate_marked(key, dp, now_ns, learn).0
    }

    /// [`Bridge::translate_learning`] with the translation's [`TunnelMark`]s, for the
    /// datapath to send out of tunnel ports, in the datapath's context `dp`.
    pub fn translate_marked(
        &self,
        key: &FlowKey,
        dp: DatapathContext<'_>,
        now_ns: u64,
        learn: bool,
    ) -> (UpcallResult, Vec<TunnelMark>) {
        let live = self.rules.load();
        let fail_open = self.fail_open.load();
        let rules: &RuleSet = match &*fail_open {
            Some(r) => r,
            None => &live,
        };
        let ports = self.ports.load();
        let tlv = self.tlv.load();
        let ports_down = self.ports_down.load();
        let port_config = self.port_config.load();
        let env = XlateEnv {
            rules,
            ports: &ports,
            macs: &self.macs,
            now_ns,
            learn,
            frag_mode: self.frag_mode(),
            tlv: &tlv,
            tun_options: dp.options,
            hooks: dp.hooks,
            packet_ins: &self.packet_ins,
            invalid_ttl_to_controller: self.invalid_ttl_to_controller(),
            ports_down: &ports_down,
            port_config: &port_config,
        };
        let start = match (dp.actions, dp.frozen) {
            (Some(a), _) => Start::Actions(a),
            (None, Some(z)) => Start::Frozen(z),
            (None, None) => Start::Table0,
        };
        let (mut r, marks, nf_output) = translate_netflow(&env, key, start);
        if dp.netflow && dp.frozen.is_none() {
            if let Some(nf) = &*self.netflow.load() {
                // OVS's netflow_mask_wc: one megaflow, one record.
                netflow::mask_wc(key, &mut r.mask);
                r.sinks.extend(nf.sink(key, nf_output));
            }
        }
        (r, marks)
    }

    /// Where [`Bridge::generation`] stands: the rules' part and the rest.
    pub fn seen(&self) -> BridgeSeen {
        BridgeSeen {
            rules: self.rules.generation(),
            other: self.macs.generation() + self.port_changes.load(Ordering::Acquire),
        }
    }

    /// Pushes the matches of the rules changed between `then` and `now` (two [`Bridge::seen`]
    /// of this bridge) onto `out`; false when more than rules changed or the changes are not
    /// known (see [`FlowTables::changes_between`]).
    pub fn rule_changes(&self, then: BridgeSeen, now: BridgeSeen, out: &mut Vec<Match>) -> bool {
        then.other == now.other && self.rules.changes_between(then.rules, now.rules, out)
    }

    /// The part of [`Bridge::generation`] that rules and ports move (not the MAC table).
    pub fn config_generation(&self) -> u64 {
        self.rules.generation() + self.port_changes.load(Ordering::Acquire)
    }

    /// Periodic upkeep: rule timeouts and MAC aging. Returns the rules that expired.
    pub fn tick(&self, now_ns: u64) -> Vec<Arc<Rule>> {
        self.macs.expire(now_ns);
        self.rules.expire(now_ns)
    }
}

/// Where a bridge's generation stood for a revalidation ([`Bridge::seen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeSeen {
    rules: u64,
    other: u64,
}

/// [`RuleChange`]s of `matches`, with the OpenFlow `in_port` of each as `to_dp` maps it (a
/// port it does not map, or a partly masked one, leaves in_port unconstrained).
pub(crate) fn rule_changes_of(
    matches: &[Match],
    to_dp: impl Fn(u32) -> Option<u32>,
    out: &mut Vec<RuleChange>,
) {
    for m in matches {
        let (mut value, mut mask) = (m.value.key, m.mask.key);
        match (mask.in_port == u32::MAX)
            .then(|| to_dp(value.in_port))
            .flatten()
        {
            Some(dp) => value.in_port = dp,
            None => (value.in_port, mask.in_port) = (0, 0),
        }
        out.push(RuleChange::new(&value, &mask));
    }
}

/// The default rule of a bridge without rules, as OVS installs it.
pub const DEFAULT_RULES: &str = "priority=0,actions=normal\n";

/// The upcall seam for a shared bridge: what the flow caches call on a miss (OpenFlow
/// translation as the classifier's slow path), for a datapath of this one bridge whose port
/// numbers are its OpenFlow numbers (replay, tests). The daemon's PMDs serve every bridge
/// with one classifier: theirs is [`crate::DatapathUpcall`].
#[derive(Clone)]
pub struct BridgeUpcall(pub Arc<Bridge>, BridgeDatapath);

/// Connection tracking and recirculation of a [`BridgeUpcall`].
#[derive(Clone, Default)]
struct BridgeDatapath {
    recirc: RecircTable,
    conntrack: Option<Arc<dyn Conntrack>>,
    /// The bridge as the last revalidation saw it ([`Upcall::rule_changes`]).
    seen: Option<BridgeSeen>,
}

impl BridgeUpcall {
    pub fn new(bridge: Arc<Bridge>) -> BridgeUpcall {
        BridgeUpcall(bridge, BridgeDatapath::default())
    }

    /// This upcall, whose `ct()` actions track with `conntrack`.
    pub fn with_conntrack(self, conntrack: Arc<dyn Conntrack>) -> BridgeUpcall {
        BridgeUpcall(
            self.0,
            BridgeDatapath {
                conntrack: Some(conntrack),
                ..self.1
            },
        )
    }

    /// The bridge behind this upcall.
    pub fn bridge(&self) -> &Arc<Bridge> {
        &self.0
    }

    /// The frozen states of its `ct(table=N)` recirculations.
    pub fn recirc(&self) -> &RecircTable {
        &self.1.recirc
    }

    /// Translates `key` (from its frozen state when recirculated; an unknown id drops).
    fn translate_learning(&self, key: &FlowKey, now_ns: u64, learn: bool) -> UpcallResult {
        let frozen = match key.recirc_id {
            0 => None,
            id => match self.1.recirc.thaw(id) {
                Some((_, frozen)) => Some(frozen),
                None => {
                    return UpcallResult {
                        rewritten: 0,
                        actions: Vec::new(),
                        mask: FlowKey {
                            recirc_id: u32::MAX,
                            ..FlowKey::default()
                        },
                        sinks: Vec::new(),
                    }
                }
            },
        };
        let hooks = Hooks {
            bridge: "",
            recirc: &self.1.recirc,
            conntrack: self.1.conntrack.as_deref(),
        };
        let dp = DatapathContext {
            options: key.tun_opts_inline(),
            hooks: Some(&hooks),
            frozen: frozen.as_ref(),
            netflow: true,
            actions: None,
        };
        let mut r = self.0.translate_marked(key, dp, now_ns, learn).0;
        r.mask.recirc_id = u32::MAX;
        r
    }
}

impl Upcall for BridgeUpcall {
    fn translate(&mut self, key: &FlowKey, now_ns: u64) -> UpcallResult {
        self.translate_learning(key, now_ns, true)
    }

    fn generation(&self) -> u64 {
        self.0.generation()
    }

    fn config_generation(&self) -> u64 {
        self.0.config_generation()
    }

    /// As `DatapathUpcall::revalidation_begins`: NetFlow ends its records.
    fn revalidation_begins(&mut self, generation: u64) {
        if let Some(nf) = self.0.netflow() {
            nf.revalidated(generation);
        }
    }

    fn rule_changes(&mut self, changes: &mut Vec<RuleChange>) -> bool {
        let now = self.0.seen();
        let Some(then) = self.1.seen.replace(now) else {
            return false;
        };
        let mut matches = Vec::new();
        if !self.0.rule_changes(then, now, &mut matches) {
            return false;
        }
        rule_changes_of(&matches, Some, changes);
        true
    }

    /// Never moves a MAC, used or not: a megaflow's sinks learn its source again as its
    /// packets arrive (see `normal::MacRefresh`), while "used since the last revalidation"
    /// may reach back to before the MAC moved away, and learning then would move it back.
    fn retranslate(&mut self, key: &FlowKey, now_ns: u64, _used: bool) -> UpcallResult {
        self.translate_learning(key, now_ns, false)
    }

    fn keep_recirc(&mut self, ids: &[u32], now_ns: u64) {
        self.1.recirc.keep(ids, now_ns);
    }

    fn tick(&mut self, now_ns: u64) {
        self.0.tick(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normal::VlanMode;

    #[test]
    fn failing_open_overrides_the_rules_and_revalidates() {
        let port = |n| NormalPort {
            ofport: n,
            vlan: VlanMode::Trunk(Vec::new()),
            flood: true,
        };
        let bridge = Bridge::new(vec![port(1), port(2), port(3)], MacTable::default());
        bridge
            .add_flows_text("priority=9,actions=drop\n", 0)
            .unwrap();
        let key = FlowKey {
            in_port: 1,
            dl_dst: [0xff; 6],
            ..FlowKey::default()
        };
        assert!(bridge.translate(&key, 0).actions.is_empty());
        let g = bridge.generation();
        bridge.set_fail_open(true);
        assert!(bridge.fail_open() && bridge.generation() > g);
        // NORMAL floods the broadcast; the rules are still there.
        assert_eq!(
            bridge.translate(&key, 0).actions,
            vec![pipeline::DpAction::Output(2), pipeline::DpAction::Output(3)]
        );
        assert_eq!(bridge.rules().load().len(), 1);
        bridge.set_fail_open(false);
        assert!(bridge.translate(&key, 0).actions.is_empty());
    }

    #[test]
    fn upcall_follows_the_bridge() {
        let port = |n| NormalPort {
            ofport: n,
            vlan: VlanMode::Trunk(Vec::new()),
            flood: true,
        };
        let bridge = Arc::new(Bridge::new(vec![port(1), port(2)], MacTable::default()));
        bridge
            .add_flows_text("hard_timeout=1,in_port=1,actions=output:2\n", 0)
            .unwrap();
        let mut up = BridgeUpcall::new(bridge.clone());
        let key = FlowKey {
            in_port: 1,
            ..FlowKey::default()
        };
        assert_eq!(
            up.translate(&key, 0).actions,
            vec![pipeline::DpAction::Output(2)]
        );
        let g = up.generation();
        assert_eq!(g, bridge.generation());
        up.tick(1_000_000_000);
        assert!(up.generation() > g);
        assert!(up.translate(&key, 0).actions.is_empty());
    }

    #[test]
    fn a_retranslation_never_moves_a_mac_and_config_excludes_the_mac_table() {
        let port = |n| NormalPort {
            ofport: n,
            vlan: VlanMode::Trunk(Vec::new()),
            flood: true,
        };
        let bridge = Arc::new(Bridge::new(vec![port(1), port(2)], MacTable::default()));
        bridge.add_flows_text("actions=NORMAL\n", 0).unwrap();
        let mut up = BridgeUpcall::new(bridge.clone());
        let mac = [2, 0, 0, 0, 0, 9];
        let from = |in_port| FlowKey {
            in_port,
            dl_src: mac,
            dl_dst: [2, 0, 0, 0, 0, 1],
            ..FlowKey::default()
        };
        let config = up.config_generation();
        // Learned on port 1, then moved to port 2: the MAC table moves the generation, not
        // the configuration.
        up.translate(&from(1), 0);
        up.translate(&from(2), 0);
        assert_eq!(bridge.macs().lookup(0, mac, 0), Some(2));
        assert_eq!(up.config_generation(), config);
        let g = up.generation();
        // Port 1's megaflow, unused, re-translated: the MAC stays on port 2. Its sink learns
        // the MAC on port 1 again only if packets use the megaflow.
        let unused = up.retranslate(&from(1), 0, false);
        assert_eq!(bridge.macs().lookup(0, mac, 0), Some(2));
        assert_eq!(up.generation(), g);
        for s in &unused.sinks {
            s.credit(0, 0, 0, 1);
        }
        assert_eq!(bridge.macs().lookup(0, mac, 1), Some(2));
        // Used since the last pass, it does not learn either: that use may predate the move.
        let used = up.retranslate(&from(1), 0, true);
        assert_eq!(bridge.macs().lookup(0, mac, 0), Some(2));
        assert_eq!(used.sinks.len(), unused.sinks.len());
        // A translation (a new packet) does.
        up.translate(&from(1), 0);
        assert_eq!(bridge.macs().lookup(0, mac, 0), Some(1));
        // A MAC the table lost (flushed, aged out) is learned again even by an unused one.
        bridge.macs().flush();
        let relearned = up.retranslate(&from(2), 0, false);
        assert_eq!(bridge.macs().lookup(0, mac, 0), Some(2));
        assert_eq!(relearned.sinks.len(), used.sinks.len());
        // The unused megaflow's frames arrive on port 1 after all: the MAC moves back.
        for s in &unused.sinks {
            s.credit(1, 64, 0, 2);
        }
        assert_eq!(bridge.macs().lookup(0, mac, 2), Some(1));
        // Rules move both generations.
        bridge
            .add_flows_text("priority=5,actions=NORMAL\n", 0)
            .unwrap();
        assert_ne!(up.config_generation(), config);
    }
}
