//! The daemon's side of OpenFlow connections: a bridge as `ofconn::Switch` (flow mods through
//! the same rule set and PMD acknowledgement as the control socket's rule verbs, statistics
//! from the PMDs' snapshots, ports as `show` has them), and the control loop's calls that
//! run every bridge's connections.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use datapath::daemon::{BridgeState, Daemon};
use datapath::packet_out::PacketOut;
use ofwire::msg::multipart::{Desc, PortStats};
use ofwire::msg::port::{Port, PortMod, OFPPS_LINK_DOWN};
use ofwire::msg::switch::Features;
use ofwire::{ErrorCode, OfpError};
use openflow::bridge::OFPPC_NO_FLOOD;
use openflow::ruleset::{TableMod, TableModFailure};
use openflow::{Action, FlowMod, FragMode, GroupMod, RuleError, RuleSet};

use crate::commands::port_totals;

/// `OFPPS_LIVE`: Open vSwitch's state of a port with carrier.
const OFPPS_LIVE: u32 = 1 << 2;
/// `OFPC_FLOW_STATS | OFPC_TABLE_STATS | OFPC_PORT_STATS | OFPC_GROUP_STATS` (Open vSwitch
/// also claims `OFPC_QUEUE_STATS`: vecswitch has no queues).
const CAPABILITIES: u32 = 1 | 2 | 4 | 8;
/// `OFPC_FRAG_NORMAL`, `OFPC_FRAG_DROP`, Open vSwitch's `OFPC_FRAG_NX_MATCH` (not
/// `OFPC_FRAG_REASM`, 2).
const FRAG_NORMAL: u16 = 0;
const FRAG_DROP: u16 = 1;
const FRAG_NX_MATCH: u16 = 3;

/// One bridge of the daemon, as its OpenFlow connections see it.
pub struct BridgeSwitch<'a> {
    pub d: &'a Daemon,
    pub bridge: &'a BridgeState,
}

impl BridgeSwitch<'_> {
    /// `ofp_port` of each port, sorted by number.
    fn describe_ports(&self) -> Vec<Port> {
        let mut v: Vec<Port> = self
            .bridge
            .ports
            .iter()
            .map(|p| {
                let mac = if p.ofport == openflow::OFPP_LOCAL {
                    self.bridge.mac
                } else {
                    ports::sys::interface_mac(&p.name)
                };
                Port {
                    port_no: p.ofport,
                    hw_addr: mac.unwrap_or_default(),
                    name: p.name.clone(),
                    // OpenFlow 1.3 has no no-flood bit (OVS leaves it out too).
                    config: self.bridge.of.port_config(p.ofport) & !OFPPC_NO_FLOOD,
                    // As Open vSwitch: a port a PORT_MOD took down has its link down too.
                    state: if self.bridge.port_live(p) {
                        OFPPS_LIVE
                    } else {
                        OFPPS_LINK_DOWN
                    },
                    ..Port::default()
                }
            })
            .collect();
        v.sort_by_key(|p| p.port_no);
        v
    }
}

impl ofconn::Switch for BridgeSwitch<'_> {
    fn features(&self) -> Features {
        Features {
            datapath_id: self.bridge.datapath_id(),
            n_buffers: 0,
            n_tables: openflow::N_TABLES as u8,
            auxiliary_id: 0,
            capabilities: CAPABILITIES,
        }
    }

    fn desc(&self) -> Desc {
        Desc {
            mfr_desc: "vecswitch".into(),
            hw_desc: "vecswitch userspace datapath".into(),
            sw_desc: env!("CARGO_PKG_VERSION").into(),
            serial_num: "None".into(),
            dp_desc: self.bridge.name.clone(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.d.now_ns()
    }

    fn rules(&self) -> Arc<RuleSet> {
        self.bridge.of.rules().snapshot()
    }

    fn apply_all(&mut self, fms: &[FlowMod]) -> Result<(), (usize, OfpError)> {
        match self.bridge.of.apply(fms, self.d.now_ns()) {
            Ok(_) => Ok(()),
            Err(e) => {
                // A refused batch is tried again one by one: log the one that says which.
                if fms.len() == 1 {
                    eprintln!(
                        "vecswitch: openflow {}: flow mod refused: {}",
                        self.bridge.name, e.error
                    );
                }
                Err((e.index, flow_mod_error(&e.error)))
            }
        }
    }

    fn apply_bundle(&mut self, mods: &[TableMod], commit: bool) -> Result<(), (usize, OfpError)> {
        let now = self.d.now_ns();
        let e = match self.bridge.of.rules().apply_mods(mods, now, commit) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let (why, refusal) = match &e.failure {
            TableModFailure::Flow(f) => (f.to_string(), flow_mod_error(f)),
            TableModFailure::Group(g) => (
                g.to_string(),
                OfpError::new(ofwire::msg::group::group_mod_error(g.code), "group_mod"),
            ),
        };
        eprintln!(
            "vecswitch: openflow {}: bundle refused: {why}",
            self.bridge.name
        );
        Err((e.index, refusal))
    }

    fn group_mod(&mut self, gm: &GroupMod) -> Result<(), OfpError> {
        self.bridge
            .of
            .apply_groups(std::slice::from_ref(gm), self.d.now_ns())
            .map(|_| ())
            .map_err(|e| {
                eprintln!(
                    "vecswitch: openflow {}: group mod refused: {}",
                    self.bridge.name, e.error
                );
                OfpError::new(
                    ofwire::msg::group::group_mod_error(e.error.code),
                    "group_mod",
                )
            })
    }

    fn packet_out(
        &mut self,
        in_port: u32,
        actions: Vec<Action>,
        frame: Vec<u8>,
    ) -> Result<(), OfpError> {
        let po = PacketOut {
            bridge: self.bridge.name.clone(),
            in_port,
            frame,
            actions,
        };
        self.d.packet_out(po, false).map_err(|e| {
            eprintln!(
                "vecswitch: openflow {}: packet out: {e:#}",
                self.bridge.name
            );
            OfpError::new(
                ErrorCode::BadRequestEperm,
                "packet_out: the datapath refused it",
            )
        })
    }

    fn barrier(&mut self) -> Result<(), String> {
        self.d.rules_barrier().map_err(|e| format!("{e:#}"))
    }

    fn frag_flags(&self) -> u16 {
        match self.bridge.of.frag_mode() {
            FragMode::Normal => FRAG_NORMAL,
            FragMode::Drop => FRAG_DROP,
            FragMode::NxMatch => FRAG_NX_MATCH,
        }
    }

    fn set_frag_flags(&mut self, flags: u16) -> Result<(), OfpError> {
        let mode = match flags {
            FRAG_NORMAL => FragMode::Normal,
            FRAG_DROP => FragMode::Drop,
            FRAG_NX_MATCH => FragMode::NxMatch,
            // Reassembly (OFPC_FRAG_REASM) is not done by the tables; the decoder refuses
            // other bits.
            _ => {
                return Err(OfpError::new(
                    ErrorCode::SwitchConfigBadFlags,
                    "switch_config.flags: reassembly is not supported",
                ))
            }
        };
        self.bridge.of.set_frag_mode(mode);
        Ok(())
    }

    fn ports(&self) -> Vec<Port> {
        self.describe_ports()
    }

    fn port_stats(&self) -> Vec<PortStats> {
        let snaps = match self.d.snapshots() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vecswitch: openflow port stats: {e:#}");
                Vec::new()
            }
        };
        let mut v: Vec<PortStats> = self
            .bridge
            .ports
            .iter()
            .map(|p| {
                let t = port_totals(&snaps, &self.bridge.name, p);
                let s = &t.stats;
                let rx_lost = t.losses.total_of(ports::Direction::Rx);
                let tx_lost = t.losses.total_of(ports::Direction::Tx);
                let age = p.added.elapsed();
                // Counters the switch does not keep are all ones, as OpenFlow asks.
                const NONE: u64 = u64::MAX;
                PortStats {
                    port_no: p.ofport,
                    counters: [
                        s.rx_packets,
                        s.tx_packets,
                        s.rx_bytes,
                        s.tx_bytes,
                        rx_lost,
                        tx_lost,
                        NONE,
                        NONE,
                        NONE,
                        NONE,
                        NONE,
                        NONE,
                    ],
                    // Since the port was added (all ones, "not available", is u32::MAX).
                    duration_sec: u32::try_from(age.as_secs()).unwrap_or(u32::MAX - 1),
                    duration_nsec: age.subsec_nanos(),
                }
            })
            .collect();
        v.sort_by_key(|p| p.port_no);
        v
    }

    fn check_port_mod(&self, pm: &PortMod) -> Result<(), OfpError> {
        let Some(port) = self
            .describe_ports()
            .into_iter()
            .find(|p| p.port_no == pm.port_no)
        else {
            return Err(OfpError::new(ErrorCode::PortModBadPort, "port_mod.port_no"));
        };
        if port.hw_addr != pm.hw_addr {
            return Err(OfpError::new(
                ErrorCode::PortModBadHwAddr,
                "port_mod.hw_addr",
            ));
        }
        Ok(())
    }

    fn port_mod(&mut self, pm: &PortMod) -> Result<(), OfpError> {
        self.check_port_mod(pm)?;
        // The decoder refused bits outside OFPPC_PORT_DOWN, NO_RECV, NO_FWD and NO_PACKET_IN
        // (OFPPMFC_BAD_CONFIG); those take effect in translation, and liveness follows
        // PORT_DOWN at once (fast-failover groups).
        let config = (self.bridge.of.port_config(pm.port_no) & !pm.mask) | (pm.config & pm.mask);
        if self.bridge.of.set_port_config(pm.port_no, config) {
            self.d.refresh_liveness();
        }
        Ok(())
    }
}

/// The OpenFlow error for a flow mod the rule set refused.
fn flow_mod_error(e: &RuleError) -> OfpError {
    let code = match e.field.as_str() {
        "table" => ErrorCode::FlowModBadTableId,
        // A group the bridge does not have (OpenFlow's code for it).
        "group" => ErrorCode::BadActionOutGroup,
        "check_overlap" => ErrorCode::FlowModOverlap,
        _ => ErrorCode::FlowModUnknown,
    };
    OfpError::new(code, "flow_mod")
}

/// The descriptors of every bridge's OpenFlow listeners and connections.
pub fn fds(d: &Daemon, out: &mut Vec<RawFd>) {
    for b in &d.bridges {
        b.controllers.fds(out);
    }
}

/// Runs every bridge's connections once; true when one has input left for the next round.
pub fn run(d: &mut Daemon, now: Instant) -> bool {
    let mut busy = false;
    for i in 0..d.bridges.len() {
        if d.bridges[i].controllers.targets().is_empty() && !d.bridges[i].of.fail_open() {
            d.bridges[i].of.set_invalid_ttl_to_controller(false);
            continue;
        }
        // Out of the bridge while it runs, so that the switch can borrow the daemon.
        let mut c = std::mem::take(&mut d.bridges[i].controllers);
        {
            let shared: &Daemon = d;
            let mut sw = BridgeSwitch {
                d: shared,
                bridge: &shared.bridges[i],
            };
            busy |= c.run(&mut sw, now);
        }
        let fail_open = c.should_fail_open(now);
        // A controller that asked for `invalid_ttl` packet-ins (SET_ASYNC) gets them.
        d.bridges[i]
            .of
            .set_invalid_ttl_to_controller(c.wants_invalid_ttl());
        d.bridges[i].controllers = c;
        if fail_open != d.bridges[i].of.fail_open() {
            set_fail_open(d, i, fail_open);
        }
    }
    busy
}

/// Fails bridge `i` open, as Open vSwitch does: its rules are flushed and NORMAL handles
/// every packet; or back, when a controller connects (the rules stay flushed: the
/// controller installs its own).
fn set_fail_open(d: &mut Daemon, i: usize, on: bool) {
    let b = &d.bridges[i];
    if on {
        eprintln!(
            "vecswitch: {}: no controller connected for three probe intervals: failing open (rules flushed, NORMAL)",
            b.name
        );
        if let Ok(delete_all) = openflow::parse_del_flow("", false) {
            if let Err(e) = b.of.apply(&[delete_all], d.now_ns()) {
                eprintln!("vecswitch: {}: flushing the rules: {e}", b.name);
            }
        }
    } else {
        eprintln!(
            "vecswitch: {}: a controller connected: no longer failed open",
            b.name
        );
    }
    b.of.set_fail_open(on);
    if let Err(e) = d.barrier() {
        eprintln!("vecswitch: {}: fail-open: {e:#}", b.name);
    }
}

/// PORT_STATUS for the ports that changed since the last call: after each control request,
/// and about once a second for the changes no request makes (a link going down).
pub fn port_changes(d: &mut Daemon) {
    for i in 0..d.bridges.len() {
        if d.bridges[i].controllers.targets().is_empty() {
            continue;
        }
        let mut c = std::mem::take(&mut d.bridges[i].controllers);
        let shared: &Daemon = d;
        c.send_port_changes(&BridgeSwitch {
            d: shared,
            bridge: &shared.bridges[i],
        });
        d.bridges[i].controllers = c;
    }
}
