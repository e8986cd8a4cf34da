//! `vecswitch replay`: feeds a scenario's input pcaps through the whole pipeline on a virtual
//! clock (the capture timestamps) and writes one output pcap per port plus `counters.json`.
//! The same inputs give byte-identical outputs: no wall-clock time, no threads, no cycle
//! counts in what is written. A scenario is one bridge on `BridgeUpcall`, whose datapath port
//! numbers are its OpenFlow port numbers.

use std::collections::BTreeMap;
use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result};
use datapath::switch::{PortStats, Switch};
use openflow::normal::{MacTable, NormalPort, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use openflow::{Bridge, BridgeUpcall, FragMode, DEFAULT_RULES};
use ports::pcap::file::{read_pcap, Frame, PcapOut};
use serde::Serialize;

use crate::scenario::Scenario;

/// Everything a replay counted, as written to `counters.json`.
#[derive(Serialize, Debug)]
pub struct ReplayReport {
    pub scenario: String,
    pub ports: Vec<ReplayPort>,
    pub nodes: Vec<NodeCounters>,
    /// Every nonzero drop counter as `<node>.<reason>`.
    pub drops: BTreeMap<String, u64>,
    pub classify: BTreeMap<String, u64>,
    /// The datapath flow cache at the end (`dump-megaflows`).
    pub megaflows: Vec<String>,
    /// The OpenFlow rules with their counters at the end (`dump-flows`).
    pub flows: Vec<String>,
}

/// One port's counters.
#[derive(Serialize, Debug)]
pub struct ReplayPort {
    pub name: String,
    pub ofport: u32,
    pub stats: PortStats,
}

/// Deterministic per-node counters (cycles are left out: they differ run to run).
#[derive(Serialize, Debug)]
pub struct NodeCounters {
    pub name: &'static str,
    pub calls: u64,
    pub vectors: u64,
}

/// A bridge with the scenario's ports and rules installed at `now_ns` (all rules or none: a
/// bad line refuses the whole file with its line number and field).
pub fn upcall_for(s: &Scenario, now_ns: u64) -> Result<BridgeUpcall> {
    let ports = s
        .ports
        .iter()
        .map(|p| NormalPort {
            ofport: p.ofport,
            vlan: p.vlan.clone(),
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
    if let Some(mode) = s.options.frag_mode.as_deref().and_then(FragMode::from_name) {
        bridge.set_frag_mode(mode);
    }
    bridge
        .add_flows_text(&text, now_ns)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok(BridgeUpcall::new(Arc::new(bridge)))
}

/// Runs `scenario` and writes its outputs into `out` (created if needed).
pub fn replay(scenario: &Scenario, out: &Path) -> Result<ReplayReport> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    // Every input frame, in capture-time order; ties keep port order, then file order.
    let mut arrivals: Vec<(u64, usize, Frame)> = Vec::new();
    for (i, port) in scenario.ports.iter().enumerate() {
        if let Some(input) = &port.input {
            arrivals.extend(read_pcap(input)?.into_iter().map(|f| (f.ts_ns, i, f)));
        }
    }
    arrivals.sort_by_key(|(ts, port, _)| (*ts, *port));

    // The virtual clock starts at the first capture timestamp: rules are installed then.
    let start_ns = arrivals.first().map_or(0, |a| a.0);
    let upcall = upcall_for(scenario, start_ns)?;
    let mut config = flowcache::ClassifyConfig::default();
    if let Some(p) = scenario.options.emc_insert_inv_prob {
        config.emc_insert_inv_prob = p;
    }
    if let Some(n) = scenario.options.vlan_limit {
        config.vlans = pipeline::VlanLimit::from_setting(n);
    }
    let batch = scenario.options.batch.unwrap_or(32);
    let names: Vec<(String, u32)> = scenario
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.ofport))
        .collect();
    let mut switch = Switch::new(&names, upcall, config)?;

    let mut outputs = scenario
        .ports
        .iter()
        .map(|p| PcapOut::create(&out.join(format!("{}.pcap", p.name))))
        .collect::<Result<Vec<_>>>()?;

    // Batches are runs of consecutive frames of one port, as a PMD would poll them.
    let mut start = 0;
    let mut now = start_ns;
    while start < arrivals.len() {
        let port = arrivals[start].1;
        let mut end = start + 1;
        while end < arrivals.len() && end - start < batch && arrivals[end].1 == port {
            end += 1;
        }
        let run = &arrivals[start..end];
        now = run[run.len() - 1].0;
        switch.receive(
            port,
            run.iter().map(|(ts, _, f)| (f.data.as_slice(), *ts)),
            now,
        );
        for (i, o) in outputs.iter_mut().enumerate() {
            let mut err = Ok(());
            switch.drain_tx(i, |data, ts| {
                if err.is_ok() {
                    err = o.write(ts, data);
                }
            });
            err?;
        }
        start = end;
    }
    drop(outputs);
    let report = build_report(scenario, &mut switch, now);
    let json = serde_json::to_string_pretty(&report)? + "\n";
    std::fs::write(out.join("counters.json"), json)
        .with_context(|| format!("{}: cannot write counters.json", out.display()))?;
    Ok(report)
}

fn build_report(scenario: &Scenario, switch: &mut Switch<BridgeUpcall>, now: u64) -> ReplayReport {
    let reports = switch.node_reports();
    let mut drops = BTreeMap::new();
    for r in &reports {
        for (reason, n) in &r.drops {
            if *n > 0 {
                drops.insert(format!("{}.{}", r.name, reason), *n);
            }
        }
    }
    if switch.tx_no_such_port() > 0 {
        drops.insert("tx.no-such-port".to_string(), switch.tx_no_such_port());
    }
    let nodes = reports
        .iter()
        .map(|r| NodeCounters {
            name: r.name,
            calls: r.stats.calls,
            vectors: r.stats.vectors,
        })
        .collect();
    let ports = switch
        .ports()
        .iter()
        .map(|p| ReplayPort {
            name: p.name.clone(),
            ofport: p.ofport,
            stats: p.stats.clone(),
        })
        .collect();
    let (classify, megaflows, flows) = match switch.classifier() {
        Some(c) => (
            c.stats().to_map(),
            c.dump_megaflows_text(now),
            c.upcall().bridge().dump_flows(now),
        ),
        None => Default::default(),
    };
    ReplayReport {
        scenario: scenario.description.clone(),
        ports,
        nodes,
        drops,
        classify,
        megaflows,
        flows,
    }
}
