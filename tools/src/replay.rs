//! `vecswitch replay`: feeds a scenario's input pcaps through the whole pipeline on a virtual
//! clock (the capture timestamps) and writes one output pcap per port plus `counters.json`.
//! The same inputs give byte-identical outputs: no wall-clock time, no threads, no cycle
//! counts in what is written. A scenario is one bridge on `BridgeUpcall`, whose datapath port
//! numbers are its OpenFlow port numbers; a scenario with an `[underlay]` is two bridges on one
//! `DatapathUpcall`, as the daemon builds them (see [`underlay_switch`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result};
use conntrack::{ConnTable, CtConfig};
use datapath::conntrack::DatapathConntrack;
use datapath::daemon::sweep_conntrack;
use datapath::switch::{PortStats, Switch, SwitchPort, POOL_FRAMES};
use datapath::tunnel_ports::{tunnel_output, tunnel_receive};
use flowcache::Classify;
use netflow::BridgeNetflow;
use openflow::datapath::{DatapathBridge, DatapathUpcall, Underlay};
use openflow::normal::{MacTable, NormalPort, VlanMode, DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES};
use openflow::recirc::RecircTable;
use openflow::{Bridge, BridgeUpcall, FragMode, DEFAULT_RULES, OFPP_LOCAL};
use pipeline::{PacketPool, Upcall};
use ports::pcap::file::{read_pcap, Frame, PcapOut};
use serde::Serialize;
use tunnels::underlay::{NeighTable, RouteTable};
use tunnels::{SnoopBridge, TunnelDecapConfig, VtepEndpoint};

use crate::scenario::{Scenario, ScenarioPort, ScenarioUnderlay};

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
    pub megaflows: PerBridge,
    /// The OpenFlow rules with their counters at the end (`dump-flows`).
    pub flows: PerBridge,
    /// Packets encapsulated and decapsulated (scenarios with an underlay only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnels: Option<TunnelCounters>,
    /// The connection table at the end, as `dpctl/dump-conntrack` prints it (when any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conntrack: Vec<String>,
    /// The fragment reassembler's counters at the end, `v4.accepted`, ..., `held` (when it
    /// saw any fragment).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ipf: BTreeMap<String, u64>,
    /// The frozen states of `ct(table=N)` recirculations at the end, `states` kept and
    /// `freed` (when there were any).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub recirc: BTreeMap<String, u64>,
}

/// Lines of a one-bridge scenario, or of each bridge of one with an underlay (by name).
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum PerBridge {
    One(Vec<String>),
    Each(BTreeMap<String, Vec<String>>),
}

impl PerBridge {
    /// Every line with its bridge's name (`None` for a one-bridge scenario).
    pub fn lines(&self) -> Vec<(Option<&str>, &str)> {
        match self {
            PerBridge::One(l) => l.iter().map(|l| (None, l.as_str())).collect(),
            PerBridge::Each(m) => m
                .iter()
                .flat_map(|(b, l)| l.iter().map(move |l| (Some(b.as_str()), l.as_str())))
                .collect(),
        }
    }
}

/// The tunnel counters of a replay.
#[derive(Serialize, Debug)]
pub struct TunnelCounters {
    pub encapsulated: u64,
    pub decapsulated: u64,
}

/// One port's counters.
#[derive(Serialize, Debug)]
pub struct ReplayPort {
    /// Its bridge (scenarios with an underlay only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    pub name: String,
    /// Its OpenFlow port number (`"LOCAL"` in JSON for a bridge's own port).
    #[serde(serialize_with = "ofport_json")]
    pub ofport: u32,
    pub stats: PortStats,
}

/// An OpenFlow port number in counters.json: the number, or `"LOCAL"`.
fn ofport_json<S: serde::Serializer>(ofport: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *ofport == OFPP_LOCAL {
        s.serialize_str("LOCAL")
    } else {
        s.serialize_u32(*ofport)
    }
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
    Ok(BridgeUpcall::new(Arc::new(tenant_bridge(s, now_ns)?)))
}

/// The scenario's own bridge: its ports, rules and TLV map.
fn tenant_bridge(s: &Scenario, now_ns: u64) -> Result<Bridge> {
    let bridge = bridge_for(s, &s.ports, s.rules.as_deref(), s.groups.as_deref(), now_ns)?;
    if let Some(map) = &s.tlv_map {
        bridge
            .change_tlv_map(|m| m.add(map))
            .map_err(|e| anyhow::anyhow!("tlv_map: {e}"))?;
    }
    Ok(bridge)
}

/// A bridge of `ports` (plus LOCAL when `ports` are an underlay's: see [`underlay_switch`])
/// with the groups of `groups` and the rules of `rules` (absent: NORMAL), the links of
/// `link = "down"` ports down, and the scenario's fragment mode.
fn bridge_for(
    s: &Scenario,
    ports: &[ScenarioPort],
    rules: Option<&Path>,
    groups: Option<&Path>,
    now_ns: u64,
) -> Result<Bridge> {
    let normal = ports
        .iter()
        .map(|p| NormalPort {
            ofport: p.ofport,
            vlan: p.vlan.clone(),
            flood: true,
        })
        .collect();
    let bridge = Bridge::new(normal, MacTable::new(DEFAULT_AGING_NS, DEFAULT_MAX_ENTRIES));
    let (text, name) = match rules {
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
    for p in ports.iter().filter(|p| p.link_down) {
        bridge.set_port_live(p.ofport, false);
    }
    if let Some(path) = groups {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        bridge
            .rules()
            .apply_groups_text(&text, now_ns)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    bridge
        .add_flows_text(&text, now_ns)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok(bridge)
}

/// The bridges of a scenario with an underlay, by name: its own, then the underlay.
pub type NamedBridges = [(String, Arc<Bridge>); 2];

/// The scenario's bridge and its underlay on one `DatapathUpcall`, as the daemon builds
/// them: datapath ports numbered 1, 2, ... in the order of [`switch_ports`]; the underlay's
/// address and a connected route on its LOCAL port, its static neighbours and routes; the
/// `tunnel-decap` node opening what arrives on the underlay's wire ports for its address and
/// MAC, snooping the neighbours there.
pub fn underlay_switch(
    s: &Scenario,
    u: &ScenarioUnderlay,
    config: flowcache::ClassifyConfig,
    now_ns: u64,
    conntrack: &Arc<ConnTable>,
) -> Result<(Switch<DatapathUpcall>, NamedBridges)> {
    let ports = switch_ports(s);
    let dp_ports = |bridge: &str| -> Vec<(u32, u32)> {
        ports
            .iter()
            .filter(|p| p.bridge == bridge)
            .map(|p| (p.ofport, p.dp_port))
            .collect()
    };
    let local = ScenarioPort {
        name: u.bridge.clone(),
        ofport: OFPP_LOCAL,
        input: None,
        vlan: VlanMode::Trunk(Vec::new()),
        tunnel: None,
        mtu: None,
        mtu_request: None,
        repeat: 1,
        link_down: false,
    };
    let tenant = Arc::new(tenant_bridge(s, now_ns)?);
    let mut underlay_ports = u.ports.clone();
    underlay_ports.push(local);
    let underlay = Arc::new(
        bridge_for(s, &underlay_ports, u.rules.as_deref(), None, now_ns)
            .with_context(|| format!("underlay bridge {}", u.bridge))?,
    );

    let routes = RouteTable::new();
    routes.set_bridge_addresses(&u.bridge, &[u.address]);
    for r in &u.routes {
        routes.add(r.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let neighs = NeighTable::default();
    for n in &u.neighbours {
        neighs
            .add_static(n, now_ns)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let upcall = DatapathUpcall::with_underlay(Underlay::new(routes, neighs.clone()))
        .with_conntrack(Arc::new(DatapathConntrack(conntrack.clone())));
    let tunnel_ports: Vec<(&ScenarioPort, u32)> = s
        .ports
        .iter()
        .zip(&ports)
        .filter(|(p, _)| p.tunnel.is_some())
        .map(|(p, sp)| (p, sp.dp_port))
        .collect();
    upcall
        .set_bridges(vec![
            DatapathBridge {
                name: s.bridge.clone(),
                bridge: tenant.clone(),
                ports: dp_ports(&s.bridge),
                tunnels: tunnel_ports
                    .iter()
                    .filter_map(|(p, _)| Some((p.ofport, tunnel_output(p.tunnel.as_ref()?))))
                    .collect(),
                mac: None,
                mtus: Vec::new(),
            },
            DatapathBridge {
                name: u.bridge.clone(),
                bridge: underlay.clone(),
                ports: dp_ports(&u.bridge),
                tunnels: Vec::new(),
                mac: Some(u.mac),
                mtus: u.ports.iter().map(|p| (p.ofport, p.port_mtu())).collect(),
            },
        ])
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let options = upcall.underlay().options.clone();
    let mut switch = Switch::with_pool(upcall, config, scenario_pool(s))?;
    switch.set_option_store(options);
    for p in &ports {
        switch.add_port(p.clone());
    }
    let wire: Vec<u32> = ports
        .iter()
        .filter(|p| p.bridge == u.bridge && p.ofport != OFPP_LOCAL)
        .map(|p| p.dp_port)
        .collect();
    let std::net::IpAddr::V4(addr) = u.address.ip() else {
        anyhow::bail!("underlay.address: the VTEP address must be IPv4");
    };
    switch
        .set_tunnel_config(TunnelDecapConfig {
            endpoints: vec![VtepEndpoint {
                addr,
                mac: u.mac,
                in_ports: wire.clone(),
            }],
            ports: tunnel_ports
                .iter()
                .filter_map(|(p, dp)| Some(tunnel_receive(p.tunnel.as_ref()?, *dp)))
                .collect(),
            snoop: vec![SnoopBridge {
                bridge: u.bridge.clone(),
                in_ports: wire,
                local: vec![u.address.ip()],
            }],
            // A critical Geneve option is known when the TLV map names it (as the daemon).
            known_options: tenant.tlv_map().known().collect(),
            ..TunnelDecapConfig::default()
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    switch.set_neigh_table(neighs);
    Ok((
        switch,
        [(s.bridge.clone(), tenant), (u.bridge.clone(), underlay)],
    ))
}

/// The switch ports of a scenario, in the order their frames and outputs are indexed: the
/// bridge's `[[port]]`s, then (with an underlay) its `[[underlay.port]]`s and its LOCAL port,
/// named after the underlay bridge. With an underlay the datapath ports are numbered 1, 2,
/// ... in this order; without one they are the OpenFlow numbers.
pub fn switch_ports(s: &Scenario) -> Vec<SwitchPort> {
    let Some(u) = &s.underlay else {
        return s
            .ports
            .iter()
            .map(|p| SwitchPort::new("", &p.name, p.ofport, p.ofport).with_mtu(p.port_mtu()))
            .collect();
    };
    let tenant = s
        .ports
        .iter()
        .map(|p| (s.bridge.as_str(), &p.name, p.ofport, p.port_mtu()));
    let wire = u
        .ports
        .iter()
        .map(|p| (u.bridge.as_str(), &p.name, p.ofport, p.port_mtu()));
    let local = std::iter::once((
        u.bridge.as_str(),
        &u.bridge,
        OFPP_LOCAL,
        ports::spec::DEFAULT_MTU,
    ));
    tenant
        .chain(wire)
        .chain(local)
        .zip(1..)
        .map(|((bridge, name, ofport, mtu), dp)| {
            SwitchPort::new(bridge, name, ofport, dp).with_mtu(mtu)
        })
        .collect()
}

/// The scenario's packet pool: its frames hold a frame of the largest port MTU, as the
/// daemon's PMDs size theirs.
fn scenario_pool(s: &Scenario) -> PacketPool {
    let largest = s
        .ports
        .iter()
        .chain(s.underlay.iter().flat_map(|u| u.ports.iter()))
        .map(ScenarioPort::port_mtu)
        .max()
        .unwrap_or(ports::spec::DEFAULT_MTU);
    PacketPool::with_frame_size(
        POOL_FRAMES,
        pipeline::frame_size_for_mtu(usize::from(largest)),
    )
}

/// Runs `scenario` and writes its outputs into `out` (created if needed).
pub fn replay(scenario: &Scenario, out: &Path) -> Result<ReplayReport> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    // Every input frame, in capture-time order; ties keep port order, then file order. A
    // file keeps its own order: a frame stamped earlier than the one before it in its file
    // arrives at that one's time. A repeated input shares its frames (see [`arrivals_of`]).
    let inputs: Vec<&ScenarioPort> = scenario
        .ports
        .iter()
        .chain(scenario.underlay.iter().flat_map(|u| u.ports.iter()))
        .collect();
    let mut files = Vec::new();
    for port in &inputs {
        files.push(match &port.input {
            Some(input) => read_pcap(input)?,
            None => Vec::new(),
        });
    }
    let mut arrivals: Vec<(u64, usize, &Frame)> = Vec::new();
    for (i, (port, frames)) in inputs.iter().zip(&files).enumerate() {
        arrivals_of(port, frames, i, &mut arrivals)?;
    }
    arrivals.sort_by_key(|(ts, port, _)| (*ts, *port));

    // The virtual clock starts at the first capture timestamp: rules are installed then.
    let start_ns = arrivals.first().map_or(0, |a| a.0);
    let mut config = flowcache::ClassifyConfig::default();
    if let Some(p) = scenario.options.emc_insert_inv_prob {
        config.emc_insert_inv_prob = p;
    }
    if let Some(n) = scenario.options.vlan_limit {
        config.vlans = pipeline::VlanLimit::from_setting(n);
    }
    // A fixed seed: NAT's choice of ports and the IPv4 identifiers it gives are the same on
    // every run (the daemon's seed is random).
    let mut ct_config = CtConfig {
        seed: Some(0x7665_6373_7769_7463),
        ..CtConfig::default()
    };
    if let Some(n) = scenario.options.ct_max_conns {
        ct_config.max_conns = n;
    }
    let ct = Arc::new(ConnTable::new(ct_config));
    let mut report = match &scenario.underlay {
        None => {
            let upcall = upcall_for(scenario, start_ns)?
                .with_conntrack(Arc::new(DatapathConntrack(ct.clone())));
            let mut nf = NetflowClock::on(scenario, upcall.bridge(), start_ns);
            let bridges = vec![(String::new(), upcall.bridge().clone())];
            let mut switch = Switch::with_pool(upcall, config, scenario_pool(scenario))?;
            for p in switch_ports(scenario) {
                switch.add_port(p);
            }
            let mut pins = PacketIns::new(bridges);
            let now = run(
                scenario,
                &mut switch,
                &arrivals,
                out,
                &ct,
                nf.as_mut(),
                &mut pins,
            )?;
            pins.write(out)?;
            let mut report = build_report(scenario, &mut switch);
            report.conntrack = dump_conntrack(&ct, now);
            if let Some(c) = switch.classifier() {
                report.classify = c.stats().to_map();
                report.megaflows = PerBridge::One(c.dump_megaflows_text(now));
                report.flows = PerBridge::One(c.upcall().bridge().dump_flows(now));
                report.recirc = recirc_counters(c.upcall().recirc());
                if let Some(nf) = &mut nf {
                    nf.finish(c, now, out)?;
                }
            }
            report
        }
        Some(u) => {
            let (mut switch, bridges) = underlay_switch(scenario, u, config, start_ns, &ct)?;
            // NetFlow on the scenario's bridge, whose tunnel ports are its in and out
            // interfaces (the underlay's part of a tunnel output is not its own, as in OVS).
            let mut nf = NetflowClock::on(scenario, &bridges[0].1, start_ns);
            let mut pins = PacketIns::new(bridges.to_vec());
            let now = run(
                scenario,
                &mut switch,
                &arrivals,
                out,
                &ct,
                nf.as_mut(),
                &mut pins,
            )?;
            pins.write(out)?;
            let mut report = build_report(scenario, &mut switch);
            report.conntrack = dump_conntrack(&ct, now);
            report.megaflows = PerBridge::Each(
                bridges
                    .iter()
                    .map(|(name, _)| (name.clone(), switch.dump_megaflows_text(name, now, false)))
                    .collect(),
            );
            report.flows = PerBridge::Each(
                bridges
                    .iter()
                    .map(|(name, b)| (name.clone(), b.dump_flows(now)))
                    .collect(),
            );
            report.tunnels = Some(TunnelCounters {
                encapsulated: switch.tunnel_tx().0,
                decapsulated: switch.decap_stats().decapsulated,
            });
            if let Some(c) = switch.classifier() {
                report.classify = c.stats().to_map();
                report.recirc = recirc_counters(c.upcall().recirc());
                if let Some(nf) = &mut nf {
                    nf.finish(c, now, out)?;
                }
            }
            report
        }
    };
    report.conntrack.sort();
    report.ipf = ipf_counters(&ct);
    let json = serde_json::to_string_pretty(&report)? + "\n";
    std::fs::write(out.join("counters.json"), json)
        .with_context(|| format!("{}: cannot write counters.json", out.display()))?;
    Ok(report)
}

/// Adds the arrivals of `frames`, the input of `port` (switch port index `index`), played
/// `port.repeat` times: each frame at its time (never before the one before it), each
/// repetition starting one gap (that of the file's first two frames) after the previous one
/// ended. The frames are shared between repetitions, not copied.
fn arrivals_of<'a>(
    port: &ScenarioPort,
    frames: &'a [Frame],
    index: usize,
    arrivals: &mut Vec<(u64, usize, &'a Frame)>,
) -> Result<()> {
    let mut times = Vec::with_capacity(frames.len());
    let mut last = 0;
    for f in frames {
        last = f.ts_ns.max(last);
        times.push(last);
    }
    let period = match (port.repeat, times.as_slice()) {
        (1, _) => 0,
        (_, &[first, second, ..]) => times[times.len() - 1] - first + (second - first).max(1),
        _ => anyhow::bail!(
            "port {}: repeat needs an input of at least two frames (their gap paces the \
             repetitions)",
            port.name
        ),
    };
    arrivals.reserve(frames.len() * port.repeat as usize);
    for r in 0..u64::from(port.repeat) {
        for (f, t) in frames.iter().zip(&times) {
            arrivals.push((t + r * period, index, f));
        }
    }
    Ok(())
}

/// The states a recirculation table keeps and has freed; empty when it never had any.
fn recirc_counters(t: &RecircTable) -> BTreeMap<String, u64> {
    if t.is_empty() && t.freed() == 0 {
        return BTreeMap::new();
    }
    BTreeMap::from([
        ("states".to_string(), t.len() as u64),
        ("freed".to_string(), t.freed()),
    ])
}

/// The nonzero counters of `table`'s fragment reassembler, and the fragments it holds; empty
/// when it saw none.
fn ipf_counters(table: &ConnTable) -> BTreeMap<String, u64> {
    let s = table.ipf().status();
    let mut map = BTreeMap::new();
    for (family, f) in [("v4", &s.v4), ("v6", &s.v6)] {
        for c in conntrack::IpfCounter::ALL {
            if f.get(c) > 0 {
                map.insert(format!("{family}.{}", c.name()), f.get(c));
            }
        }
    }
    if !map.is_empty() {
        map.insert("held".to_string(), u64::from(s.frags));
    }
    map
}

/// The connections of `table` at `now_ns`, as `dpctl/dump-conntrack` prints them.
fn dump_conntrack(table: &ConnTable, now_ns: u64) -> Vec<String> {
    table
        .entries(None, now_ns)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// Clock time between two NetFlow runs (the daemon's housekeeping period).
const NETFLOW_TICK_NS: u64 = 1_000_000_000;

/// NetFlow of a replay: run every second of the virtual clock, its datagrams kept with the
/// time they left.
struct NetflowClock {
    nf: Arc<BridgeNetflow>,
    next_ns: u64,
    sent: Vec<(u64, SocketAddr, Vec<u8>)>,
}

impl NetflowClock {
    /// NetFlow on `bridge` with the scenario's `[netflow]` settings, if any, on the virtual
    /// clock (pcap time is Unix time: no wall offset).
    fn on(scenario: &Scenario, bridge: &Bridge, start_ns: u64) -> Option<NetflowClock> {
        scenario.netflow.as_ref().map(|o| {
            let nf = Arc::new(BridgeNetflow::capturing(o.clone(), start_ns));
            bridge.set_netflow(Some(nf.clone()));
            NetflowClock {
                nf,
                next_ns: start_ns + NETFLOW_TICK_NS,
                sent: Vec::new(),
            }
        })
    }

    /// The end at `now_ns`, as OVS's tests stop the switch: every megaflow of `classifier`
    /// goes, and its record with it; writes what was sent into `out`.
    fn finish<U: Upcall>(
        &mut self,
        classifier: &mut Classify<U>,
        now_ns: u64,
        out: &Path,
    ) -> Result<()> {
        self.advance(now_ns);
        classifier.flush();
        self.run_at(now_ns);
        crate::netflow_capture::write(out, &self.sent)
    }

    /// Runs NetFlow at every whole second (from the start) up to `now_ns`.
    fn advance(&mut self, now_ns: u64) {
        while self.next_ns <= now_ns {
            self.run_at(self.next_ns);
            self.next_ns += NETFLOW_TICK_NS;
        }
    }

    fn run_at(&mut self, now_ns: u64) {
        self.nf.run(now_ns);
        self.sent.extend(
            self.nf
                .take_captured()
                .into_iter()
                .map(|(to, d)| (now_ns, to, d)),
        );
    }
}

/// Feeds `arrivals` (capture time, switch port index, frame) through `switch` and writes
/// every port's transmissions to `<out>/<port>.pcap` (tunnel ports have none); expires
/// the connections of `conntrack` on the virtual clock after each batch, and runs NetFlow
/// every second of it. Returns the virtual time at the end.
fn run<U: Upcall + 'static>(
    scenario: &Scenario,
    switch: &mut Switch<U>,
    arrivals: &[(u64, usize, &Frame)],
    out: &Path,
    conntrack: &ConnTable,
    mut netflow: Option<&mut NetflowClock>,
    packet_ins: &mut PacketIns,
) -> Result<u64> {
    let batch = scenario.options.batch.unwrap_or(32);
    let tunnel = |name: &str| {
        scenario
            .ports
            .iter()
            .any(|p| p.name == name && p.tunnel.is_some())
    };
    let mut outputs = switch
        .ports()
        .iter()
        .map(|p| match tunnel(&p.name) {
            true => Ok(None),
            false => PcapOut::create(&out.join(format!("{}.pcap", p.name))).map(Some),
        })
        .collect::<Result<Vec<_>>>()?;

    // Batches are runs of consecutive frames of one port, as a PMD would poll them; frames
    // more than BATCH_GAP_NS apart never share a poll (a pause in the capture).
    const BATCH_GAP_NS: u64 = 10_000_000;
    let mut start = 0;
    let mut now = arrivals.first().map_or(0, |a| a.0);
    while start < arrivals.len() {
        let port = arrivals[start].1;
        let mut end = start + 1;
        while end < arrivals.len()
            && end - start < batch
            && arrivals[end].1 == port
            && arrivals[end].0.saturating_sub(arrivals[end - 1].0) <= BATCH_GAP_NS
        {
            end += 1;
        }
        let run = &arrivals[start..end];
        now = run[run.len() - 1].0;
        if let Some(nf) = netflow.as_deref_mut() {
            nf.advance(run[0].0);
        }
        switch.receive(
            port,
            run.iter().map(|(ts, _, f)| (f.data.as_slice(), *ts)),
            now,
        );
        // Rule counters and NetFlow get every batch's counts at once, as OVS's tests see
        // them after `revalidator/wait` (a PMD pushes them every 100 ms or when idle).
        if let Some(c) = switch.classifier() {
            c.push_stats();
        }
        for (i, o) in outputs.iter_mut().enumerate() {
            let mut err = Ok(());
            switch.drain_tx(i, |data, ts| {
                if let Some(o) = o.as_mut() {
                    if err.is_ok() {
                        err = o.write(ts, data);
                    }
                }
            });
            err?;
        }
        sweep_conntrack(conntrack, now);
        packet_ins.collect();
        start = end;
    }
    Ok(now)
}

/// The packet-ins of a replay, in the order the bridges' `controller` actions sent them,
/// written as `controller.txt` when there are any: each one as `ovs-ofctl -O OpenFlow13
/// monitor` describes it (bridge-name prefixed where the scenario has an underlay), then its
/// data in hex.
struct PacketIns {
    bridges: Vec<(String, Arc<Bridge>)>,
    text: String,
}

impl PacketIns {
    fn new(bridges: Vec<(String, Arc<Bridge>)>) -> PacketIns {
        PacketIns {
            bridges,
            text: String::new(),
        }
    }

    /// Takes what the bridges queued since the last call.
    fn collect(&mut self) {
        use std::fmt::Write as _;
        for (name, bridge) in &self.bridges {
            let q = bridge.packet_ins();
            for pin in q.take() {
                let prefix = if name.is_empty() {
                    String::new()
                } else {
                    format!("{name}: ")
                };
                let hex: String = pin.data.iter().map(|b| format!("{b:02x}")).collect();
                let _ = writeln!(
                    self.text,
                    "{prefix}OFPT_PACKET_IN:{}\n data={hex}",
                    openflow::packet_in::describe(&pin)
                );
            }
        }
    }

    fn write(&mut self, out: &Path) -> Result<()> {
        self.collect();
        for (name, bridge) in &self.bridges {
            let lost = bridge.packet_ins().overflows();
            if lost > 0 {
                use std::fmt::Write as _;
                let _ = writeln!(self.text, "{name} lost {lost} packet-ins: queue full");
            }
        }
        if self.text.is_empty() {
            return Ok(());
        }
        let path = out.join("controller.txt");
        std::fs::write(&path, &self.text)
            .with_context(|| format!("{}: cannot write", path.display()))
    }
}

/// The counters every replay writes; the caller adds the classifier's and the tables.
fn build_report<U: Upcall + 'static>(scenario: &Scenario, switch: &mut Switch<U>) -> ReplayReport {
    switch.sync_tunnel_stats();
    let reports = switch.node_reports();
    let mut drops = BTreeMap::new();
    for r in &reports {
        for (reason, n) in &r.drops {
            if *n > 0 {
                drops.insert(format!("{}.{}", r.name, reason), *n);
            }
        }
    }
    // The ports' named losses, as `drop-reasons` shows them.
    for p in switch.ports() {
        for (reason, n) in p.stats.losses.iter() {
            drops.insert(format!("port.{}.{}", p.name, reason.name()), n);
        }
    }
    if switch.tx_no_such_port() > 0 {
        drops.insert("tx.no-such-port".to_string(), switch.tx_no_such_port());
    }
    // Copies for tunnel outputs dropped inside their clone count with classify's reasons, as
    // in the daemon's `drop-reasons`.
    for (reason, n) in switch.tunnel_tx().1 {
        *drops.entry(format!("classify.{reason}")).or_insert(0) += n;
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
            bridge: scenario.underlay.as_ref().map(|_| p.bridge.clone()),
            name: p.name.clone(),
            ofport: p.ofport,
            stats: p.stats.clone(),
        })
        .collect();
    ReplayReport {
        scenario: scenario.description.clone(),
        ports,
        nodes,
        drops,
        classify: BTreeMap::new(),
        megaflows: PerBridge::One(Vec::new()),
        flows: PerBridge::One(Vec::new()),
        tunnels: None,
        conntrack: Vec::new(),
        ipf: BTreeMap::new(),
        recirc: BTreeMap::new(),
    }
}
