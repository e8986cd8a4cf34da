//! The glue between the classifier and OpenFlow: [`OfUpcall`] implements the pipeline's
//! `Upcall` over an `openflow::Bridge` (its rules, ports and MAC table).

use std::sync::Arc;

use anyhow::{Context, Result};
use openflow::normal::{MacTable, NormalPort, VlanMode, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use openflow::Bridge;
use pipeline::{FlowKey, Upcall, UpcallResult};

use crate::scenario::{PortVlan, Scenario};

/// The default rule of a bridge without rules, as OVS installs it.
pub const DEFAULT_RULES: &str = "priority=0,actions=normal\n";

/// OpenFlow translation as the classifier's slow path.
pub struct OfUpcall {
    bridge: Arc<Bridge>,
}

impl OfUpcall {
    pub fn new(bridge: Arc<Bridge>) -> OfUpcall {
        OfUpcall { bridge }
    }

    /// A bridge with the scenario's ports and rules installed at `now_ns` (all rules or none: a bad line refuses
    /// the whole file with its line number and field).
    pub fn from_scenario(s: &Scenario, now_ns: u64) -> Result<OfUpcall> {
        let ports = s
            .ports
            .iter()
            .map(|p| NormalPort {
                ofport: p.ofport,
                vlan: match &p.vlan {
                    PortVlan::Access(tag) => VlanMode::Access(*tag),
                    PortVlan::Trunk(vids) => VlanMode::Trunk(vids.clone()),
                },
                flood: true,
            })
            .collect();
        let bridge = Bridge::new(ports, MacTable::new(DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES));
        let (text, name) = match &s.rules {
            Some(path) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?,
                path.display().to_string(),
            ),
            None => (DEFAULT_RULES.to_string(), "default rules".to_string()),
        };
        bridge
            .add_flows_text(&text, now_ns)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        Ok(OfUpcall::new(Arc::new(bridge)))
    }

    /// The bridge behind this upcall.
    pub fn bridge(&self) -> &Arc<Bridge> {
        &self.bridge
    }

    /// The rules with their counters, as `dump-flows` prints them.
    pub fn dump_flows(&self, now_ns: u64) -> Vec<String> {
        self.bridge.dump_flows(now_ns)
    }
}

impl Upcall for OfUpcall {
    fn translate(&mut self, key: &FlowKey, now_ns: u64) -> UpcallResult {
        self.bridge.translate(key, now_ns)
    }

    fn generation(&self) -> u64 {
        self.bridge.generation()
    }

    fn config_generation(&self) -> u64 {
        self.bridge.config_generation()
    }

    fn retranslate(&mut self, key: &FlowKey, now_ns: u64, used: bool) -> UpcallResult {
        self.bridge.translate_learning(key, now_ns, used)
    }

    fn tick(&mut self, now_ns: u64) {
        self.bridge.tick(now_ns);
    }
}
