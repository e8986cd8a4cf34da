//! PACKET_OUT on the datapath (OpenFlow 1.3.5 section 7.3.7): a frame the controller (or the
//! `packet-out` verb) sends, with its in_port and action list. A PMD takes it as a job
//! between two iterations: the frame enters its pool, is parsed as if received, the bridge
//! translates the actions for it (an output to `TABLE` looks table 0 up, `NORMAL`, `FLOOD`,
//! groups and `CONTROLLER` as a rule's), and the datapath actions run on it as a megaflow's
//! would; what it queued leaves by the ports' transmit bursts. Nothing is installed in the
//! caches. Its counters (calls, cycles, drops by reason: the parser's, then execution's)
//! are listed as node `packet-out` once one has run.

use openflow::{Action, DatapathUpcall};
use pipeline::actions::{execute, ExecTargets};
use pipeline::{Ctx, ExecDrop, Next, NodeReport, NodeStats, ParseError};

use crate::switch::Switch;

/// The name `runtime` and `drop-reasons` list PACKET_OUTs' counters under.
pub const PACKET_OUT_NODE: &str = "packet-out";

const PARSE_REASONS: usize = ParseError::NAMES.len();

/// A frame to send with actions, as a controller's PACKET_OUT says it (ports in OpenFlow
/// numbers of `bridge`).
#[derive(Clone, Debug, PartialEq)]
pub struct PacketOut {
    pub bridge: String,
    /// Any port number, `OFPP_LOCAL` or `OFPP_CONTROLLER`.
    pub in_port: u32,
    pub frame: Vec<u8>,
    pub actions: Vec<Action>,
}

/// Counters of the PACKET_OUTs one switch ran.
#[derive(Clone, Debug, Default)]
pub struct PacketOutCounters {
    stats: NodeStats,
    /// By reason: [`ParseError::NAMES`], then [`ExecDrop::NAMES`].
    drops: [u64; PARSE_REASONS + ExecDrop::NAMES.len()],
}

impl PacketOutCounters {
    fn lose(&mut self, reason: ExecDrop) {
        self.drops[PARSE_REASONS + reason as usize] += 1;
    }

    /// The node report, once a PACKET_OUT has run.
    pub fn report(&self) -> Option<NodeReport> {
        if self.stats.calls == 0 {
            return None;
        }
        let names = ParseError::NAMES.iter().chain(ExecDrop::NAMES.iter());
        Some(NodeReport {
            name: PACKET_OUT_NODE,
            stats: self.stats,
            drops: names.copied().zip(self.drops.iter().copied()).collect(),
        })
    }
}

impl Switch<DatapathUpcall> {
    /// Runs one PACKET_OUT at `now_ns` (see the module documentation). The PMD sends what
    /// it queued. A frame the parser refuses, or that finds no free buffer, is dropped and
    /// counted, as a received one would be; so is one for a bridge that does not exist.
    pub fn packet_out(&mut self, po: &PacketOut, now_ns: u64) {
        let start = pipeline::cycles::now();
        self.packet_out.stats.calls += 1;
        self.packet_out.stats.vectors += 1;
        self.run_packet_out(po, now_ns);
        self.send_injected(now_ns);
        self.packet_out.stats.cycles += pipeline::cycles::now().wrapping_sub(start);
    }

    fn run_packet_out(&mut self, po: &PacketOut, now_ns: u64) {
        let Some(c) = self
            .graph
            .node_as::<flowcache::Classify<DatapathUpcall>>(self.classify)
        else {
            return;
        };
        let vlans = c.config().vlans;
        // An in_port with no datapath port (CONTROLLER) is 0, which no port has.
        let in_dp = c.upcall().dp_port(&po.bridge, po.in_port).unwrap_or(0);
        let Ok(id) = self.pool.alloc_with(&po.frame) else {
            self.packet_out.lose(ExecDrop::NoBuffers);
            return;
        };
        let (data, meta) = self.pool.data_and_meta_mut(id);
        meta.key.in_port = in_dp;
        meta.rx_ns = now_ns;
        if let Err(e) = pipeline::parse_packet_limit(data, meta, vlans) {
            self.packet_out.drops[e as usize] += 1;
            self.pool.free(id);
            return;
        }
        let key = meta.key;
        let len = u64::from(meta.len);
        let Some(c) = self
            .graph
            .node_as::<flowcache::Classify<DatapathUpcall>>(self.classify)
        else {
            self.pool.free(id);
            return;
        };
        let Some(r) =
            c.upcall_mut()
                .translate_packet_out(&po.bridge, po.in_port, &key, &po.actions, now_ns)
        else {
            self.packet_out.lose(ExecDrop::NoOutput);
            self.pool.free(id);
            return;
        };
        let mut next = [Next::CONSUMED];
        let mut cx = Ctx {
            pool: &mut self.pool,
            tx: &mut self.tx,
            now_ns,
        };
        let targets = ExecTargets {
            drop_base: 0,
            recirc_next: Some(0),
            vlans,
        };
        execute(&r.actions, &mut cx, &[id], &mut next, targets);
        if let Some(reason) = next[0].drop_reason() {
            if let Some(n) = self
                .packet_out
                .drops
                .get_mut(PARSE_REASONS + reason as usize)
            {
                *n += 1;
            }
            self.pool.free(id);
        } else if next[0].next_index().is_some() {
            // Recirculated (a `ct` of a table it was sent to): classification goes on.
            self.tx.recirc.push(id);
        }
        // The rules and groups it went through count it, as Open vSwitch's do.
        for s in &r.sinks {
            s.credit(1, len, key.tcp_flags, now_ns);
        }
    }
}
