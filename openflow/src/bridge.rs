//! A bridge as translation sees it: its ports (with their VLAN configuration for NORMAL), its
//! MAC table and its published rule set. The datapath implements `pipeline::Upcall` on top
//! of [`Bridge::translate`] and [`Bridge::generation`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pipeline::{FlowKey, Upcall, UpcallResult};

use crate::error::BundleError;
use crate::normal::{MacTable, NormalPort};
use crate::rule::FlowMod;
use crate::ruleset::{ApplyReport, FlowTables, Rule};
use crate::xlate::{translate, XlateEnv};

/// One bridge: ports, MAC table, rules.
pub struct Bridge {
    ports: ArcSwap<Vec<NormalPort>>,
    port_changes: AtomicU64,
    macs: MacTable,
    rules: FlowTables,
}

impl Bridge {
    pub fn new(ports: Vec<NormalPort>, macs: MacTable) -> Bridge {
        Bridge {
            ports: ArcSwap::from_pointee(ports),
            port_changes: AtomicU64::new(0),
            macs,
            rules: FlowTables::new(),
        }
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

    /// Replaces the port list (moves the generation).
    pub fn set_ports(&self, ports: Vec<NormalPort>) {
        self.ports.store(Arc::new(ports));
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
        let rules = self.rules.load();
        let ports = self.ports.load();
        let env = XlateEnv {
            rules: &rules,
            ports: &ports,
            macs: &self.macs,
            now_ns,
        };
        translate(&env, key)
    }

    /// Periodic upkeep: rule timeouts and MAC aging. Returns the rules that expired.
    pub fn tick(&self, now_ns: u64) -> Vec<Arc<Rule>> {
        self.macs.expire(now_ns);
        self.rules.expire(now_ns)
    }
}

/// The upcall seam for a shared bridge: what the flow caches call on a miss.
#[derive(Clone)]
pub struct BridgeUpcall(pub Arc<Bridge>);

impl Upcall for BridgeUpcall {
    fn translate(&mut self, key: &FlowKey, now_ns: u64) -> UpcallResult {
        self.0.translate(key, now_ns)
    }

    fn generation(&self) -> u64 {
        self.0.generation()
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
        let mut up = BridgeUpcall(bridge.clone());
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
}
