//! OpenFlow for vecswitch: the rule language (ovs-ofctl flow syntax, parsed and printed), a
//! multi-table priority classifier (tuple space search) published as lock-free snapshots,
//! flow mods and all-or-nothing bundles, rule timeouts, the L2 learning switch behind
//! `NORMAL`, and the translation of a packet key into datapath actions plus the wildcard mask
//! of everything the decision read (one megaflow). See `README.md` for the rule syntax.
#![forbid(unsafe_code)]

pub mod bridge;
pub mod classifier;
pub mod ct;
pub mod datapath;
pub mod dump;
pub mod error;
pub mod flow_removed;
pub mod group;
pub mod normal;
pub mod packet_in;
pub mod packet_out;
pub mod parse;
pub mod portnames;
pub mod print;
pub mod recirc;
pub mod rule;
pub mod ruleset;
pub mod tlv;
pub mod xlate;

pub use bridge::{Bridge, BridgeUpcall, DEFAULT_RULES};
pub use datapath::{DatapathBridge, DatapathUpcall, PortMapError, Underlay};
pub use dump::{DumpOptions, SortCriterion};
pub use error::{BundleError, FileError, RuleError};
pub use flow_removed::{FlowRemoved, FlowRemovedQueue, RemovedReason, SEND_FLOW_REM};
pub use group::{
    parse_group_mod, parse_groups_file, Bucket, Group, GroupError, GroupMod, GroupModCommand,
    GroupModError, GroupModFailed, GroupSpec, GroupType,
};
pub use packet_out::{parse_packet_out, PacketOutSpec};
pub use parse::{
    parse_bundle_file, parse_del_flow, parse_flow, parse_flow_mod, parse_flows_file, parse_mod_flow,
};
pub use portnames::PortNames;
pub use print::{format_actions, format_dump};
pub use rule::{
    Action, ControllerArgs, Field, FieldRef, Fields, FlowMod, FlowModCommand, FlowSpec, Match,
    ADD_KEEPS_COUNTS, DEFAULT_PRIORITY, N_REGS, N_TABLES, OFPP_LOCAL,
};
pub use ruleset::{ApplyReport, FlowTables, GroupReport, Rule, RuleSet, RuleStats};
pub use xlate::{translate, FragMode, XlateEnv, MAX_RESUBMIT_DEPTH};
