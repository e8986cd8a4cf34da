//! What a bridge offers its OpenFlow connections: the trait the daemon implements. It
//! knows nothing of sockets; the connection layer knows nothing of the daemon.

use std::sync::Arc;

use ofwire::msg::multipart::{Desc, PortStats};
use ofwire::msg::port::{Port, PortMod};
use ofwire::msg::switch::Features;
use ofwire::OfpError;
use openflow::ruleset::TableMod;
use openflow::{Action, FlowMod, GroupMod, RuleSet};

/// One bridge as OpenFlow sees it.
pub trait Switch {
    /// FEATURES_REPLY: the datapath id, tables and capabilities.
    fn features(&self) -> Features;
    /// The DESC multipart reply.
    fn desc(&self) -> Desc;
    /// Now, on the clock the rules' durations and timeouts use.
    fn now_ns(&self) -> u64;
    /// The rules as published now (FLOW, AGGREGATE and TABLE replies read them).
    fn rules(&self) -> Arc<RuleSet>;
    /// Applies flow mods, all or none, as the control socket's rule verbs do (the same rule
    /// set and the same megaflow revalidation). The PMDs may still run on the previous rules
    /// until [`Switch::barrier`] returns. A refusal names the index of the flow mod refused.
    fn apply_all(&mut self, fms: &[FlowMod]) -> Result<(), (usize, OfpError)>;
    /// Applies a group mod to the same group table as the local group verbs (a deleted
    /// group takes the rules that use it along). The PMDs may still run on the previous
    /// groups until [`Switch::barrier`] returns.
    fn group_mod(&mut self, gm: &GroupMod) -> Result<(), OfpError>;
    /// Applies a bundle's flow mods and group mods (and checks its PACKET_OUTs' groups) in
    /// order as one change of the rule set, all or none, as [`Switch::apply_all`] applies
    /// flow mods; with `commit` false only checks them, changing nothing. A refusal names
    /// the index of the mod refused.
    fn apply_bundle(&mut self, mods: &[TableMod], commit: bool) -> Result<(), (usize, OfpError)>;
    /// PACKET_OUT: runs `actions` on `frame` as received on `in_port` (OpenFlow numbers;
    /// `OFPP_CONTROLLER`, `OFPP_LOCAL` or `OFPP_ANY` for none), on the datapath. It may
    /// still be on its way until [`Switch::barrier`] returns.
    fn packet_out(
        &mut self,
        in_port: u32,
        actions: Vec<Action>,
        frame: Vec<u8>,
    ) -> Result<(), OfpError>;
    /// Returns once no PMD can handle a packet with rules older than the last
    /// [`Switch::apply`].
    fn barrier(&mut self) -> Result<(), String>;
    /// `OFPC_FRAG_*` of SET_CONFIG / GET_CONFIG_REPLY.
    fn frag_flags(&self) -> u16;
    fn set_frag_flags(&mut self, flags: u16) -> Result<(), OfpError>;
    /// Every port, in OpenFlow numbers (LOCAL as `OFPP_LOCAL`).
    fn ports(&self) -> Vec<Port>;
    /// Every port's counters.
    fn port_stats(&self) -> Vec<PortStats>;
    /// PORT_MOD: changes the `OFPPC_*` bits of a port.
    fn port_mod(&mut self, pm: &PortMod) -> Result<(), OfpError>;
    /// What [`Switch::port_mod`] would refuse (no such port, another hardware address),
    /// changing nothing.
    fn check_port_mod(&self, pm: &PortMod) -> Result<(), OfpError>;
}
