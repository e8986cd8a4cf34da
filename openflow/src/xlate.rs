//! Translation: walks a packet's key through the tables of a rule-set snapshot and produces
//! the datapath actions, the megaflow mask (every key bit any consulted lookup or action
//! read) and the statistics sinks of the rules it hit.

use std::sync::Arc;

use netflow::{NF_OUT_DROP, NF_OUT_FLOOD, NF_OUT_MULTI};
use pipeline::field::{complete_megaflow_mask, Slot, Write, CT_LABEL, CT_MARK, VLAN_PCP, VLAN_VID};
use pipeline::flowkey::{FRAG_ANY, TUN_OPTS_LEN, VLAN_PRESENT};
use pipeline::{
    DpAction, ExecDrop, FlowKey, PacketInContext, PacketInQueue, PacketInReason, StatsSink,
    ToController, UpcallResult,
};

use crate::bridge::{OFPPC_NO_FWD, OFPPC_NO_RECV, OFPPC_PORT_DOWN};
use crate::ct::{CtAction, CtAlg, CtZone, Nat};

use crate::group::{Group, GroupSink, GroupType, MAX_LIVENESS_DEPTH};
use crate::normal::{normal_xlate, MacTable, MacUse, NormalOutput, NormalPort};
use crate::rule::{ones, Action, ControllerArgs, Field, FieldRef, Fields, Match, OFPP_LOCAL};
use crate::ruleset::RuleSet;
use crate::tlv::TlvMap;

/// True for fields of the packet (as opposed to registers and metadata, which the datapath
/// never sees and a megaflow mask never holds).
fn is_packet_field(f: Field) -> bool {
    matches!(f.def().slot, Slot::Key(_))
}

/// Nesting limit of `resubmit`; deeper translations drop the packet, as Open vSwitch does.
pub const MAX_RESUBMIT_DEPTH: u32 = 64;
/// Table lookups and group buckets one translation may run (OVS's `MAX_RESUBMITS`): what
/// nesting alone does not bound (groups whose buckets fan out) drops the packet beyond it.
pub const MAX_RESUBMITS: u32 = MAX_RESUBMIT_DEPTH * MAX_RESUBMIT_DEPTH;
/// Bucket liveness checks one group choice may make through `watch_group`s.
const MAX_LIVENESS_CHECKS: u32 = 4096;

const TPID_8021Q: u16 = 0x8100;
/// Values `push:` may leave on the stack in one translation (OVS grows its stack without a
/// limit; a push beyond this is ignored rather than letting a loop of resubmits grow it).
const MAX_STACK: usize = 1024;

/// How translation treats IP fragments, as Open vSwitch's `ovs-ofctl set-frags` sets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FragMode {
    /// Fragments go through the tables with their L4 ports (and ICMP type and code) read as
    /// 0, the first fragment included: a rule on ports never matches part of a datagram.
    /// Open vSwitch's default.
    #[default]
    Normal,
    /// Fragments go through the tables as they are: the first fragment with its ports, later
    /// ones with 0; rules can tell them apart with `ip_frag`.
    NxMatch,
    /// Every fragment is dropped before the tables.
    Drop,
}

impl FragMode {
    /// The name `set-frags` takes and `get-frags` prints.
    pub fn name(self) -> &'static str {
        match self {
            FragMode::Normal => "normal",
            FragMode::NxMatch => "nx-match",
            FragMode::Drop => "drop",
        }
    }

    /// Parses a name of [`FragMode::name`].
    pub fn from_name(s: &str) -> Option<FragMode> {
        [FragMode::Normal, FragMode::NxMatch, FragMode::Drop]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// What translation needs besides the rules.
pub struct XlateEnv<'a> {
    pub rules: &'a RuleSet,
    pub ports: &'a [NormalPort],
    pub macs: &'a MacTable,
    pub now_ns: u64,
    /// `NORMAL` learns sources (see [`MacUse::learn`]).
    pub learn: bool,
    pub frag_mode: FragMode,
    /// The Geneve TLV map: which options are `tun_metadataN`.
    pub tlv: &'a TlvMap,
    /// The packet's Geneve options as on the wire, which the map decodes.
    pub tun_options: &'a [u8],
    /// What the datapath lends: connection tracking and recirculation (`None`: a `ct`
    /// action drops, counted as `ct-refused`).
    pub hooks: Option<&'a dyn XlateHooks>,
    /// Where `controller` actions queue their packet-ins: the bridge's.
    pub packet_ins: &'a Arc<PacketInQueue>,
    /// A controller takes `invalid_ttl` packet-ins: `dec_ttl` at TTL 1 queues one.
    pub invalid_ttl_to_controller: bool,
    /// Ports of `ports` that are down: a fast-failover (or select) bucket watching one is
    /// not live.
    pub ports_down: &'a [u32],
    /// The OpenFlow configuration bits (`OFPPC_*`, see [`crate::bridge::OFPPC_PORT_DOWN`]) of the
    /// ports that have any set.
    pub port_config: &'a [(u32, u32)],
}

impl XlateEnv<'_> {
    /// The `OFPPC_*` bits of OpenFlow port `p`.
    fn config(&self, p: u32) -> u32 {
        self.port_config
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(0, |(_, c)| *c)
    }

    /// Whether frames may be sent out of `p`: not while it is down or `no_fwd` (Open
    /// vSwitch skips the output; its down port's netdev sends nothing).
    fn may_send(&self, p: u32) -> bool {
        self.config(p) & (OFPPC_PORT_DOWN | OFPPC_NO_FWD) == 0
    }
}

/// The arguments of one `ct()` as translation resolved them for a packet: the zone read
/// from its field, what `exec` sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtCall {
    pub zone: u16,
    pub commit: bool,
    pub force: bool,
    /// `ct_mark` bits to set: `(value, mask)`; mask 0: none.
    pub mark: (u32, u32),
    /// `ct_label` bits to set: `(value, mask)`.
    pub label: (u128, u128),
    pub nat: Option<Nat>,
    pub alg: Option<CtAlg>,
}

/// Where a recirculated packet's translation goes on: a table, with the registers,
/// metadata, `push:` stack and action set the first translation had at the `ct` (Open
/// vSwitch's `frozen_state`). Equal states share a recirculation id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frozen {
    pub table: u8,
    pub regs: [u32; crate::rule::N_REGS],
    pub metadata: u64,
    /// The actions `write_actions` had put in the set, in the order written: the resumed
    /// translation starts with them (OVS's `action_set` of the frozen state), so they run
    /// where its pipeline ends unless a `clear_actions` there empties them.
    pub action_set: Arc<[Action]>,
    /// What `push:` had left on the stack, bottom first: a `pop:` after the recirculation
    /// takes it.
    pub stack: Arc<[u128]>,
}

/// The datapath's side of translation.
pub trait XlateHooks {
    /// The datapath action that runs `call`; `None` when it cannot (the packet is dropped
    /// as `ct-refused`).
    fn ct(&self, call: &CtCall) -> Option<DpAction>;
    /// The recirculation id under which a packet continues in `frozen`; `None` when no id
    /// is left (the packet is dropped as `ct-refused`).
    fn freeze(&self, frozen: &Frozen) -> Option<u32>;
}

struct Xlate<'a> {
    env: &'a XlateEnv<'a>,
    /// The packet as the actions so far have changed it, plus registers and metadata.
    f: Fields,
    /// Bits consulted (of the packet as it was when the bit was read).
    wc: Fields,
    actions: Vec<DpAction>,
    sinks: Vec<Arc<dyn StatsSink>>,
    /// `push:` / `pop:` values.
    stack: Vec<u128>,
    depth: u32,
    /// Lookups and buckets run so far (see [`MAX_RESUBMITS`]).
    resubmits: u32,
    too_deep: bool,
    /// `dec_ttl` at TTL 1 in a resubmitted table: the rest of that table's actions (its
    /// goto included) are skipped, and the caller's go on (Open vSwitch's `compose_dec_ttl`).
    stop_table: bool,
    marks: Vec<TunnelMark>,
    /// NetFlow's output interface (an OpenFlow port, 16-bit, or `netflow::NF_OUT_*`), kept
    /// as Open vSwitch's `nf_output_iface`.
    nf_output: u16,
    /// The rule whose actions run: its cookie, and whether it is a table-miss rule
    /// (priority 0, matching everything), whose packet-ins are misses.
    rule: Option<(u64, bool)>,
    /// The action set `write_actions` built (OpenFlow 1.3 §5.10), run when translation ends.
    action_set: Vec<Action>,
    /// The table this translation started in and the rule it found there: the action set
    /// runs as that rule's actions (OVS's `ctx->table_id` and `ctx->rule` when
    /// `xlate_action_set` runs), which its packet-ins and `resubmit(,)` see.
    pass_table: u8,
    pass_rule: Option<(u64, bool)>,
    /// Where a `controller` output is (OVS's `xlate_output_action`): its packet-in's reason
    /// says `packet_out`, `group` or `action_set` rather than `action`.
    in_packet_out: bool,
    in_bucket: bool,
    in_action_set: bool,
    /// The key the translation began with, and the words of it that a lookup saw changed
    /// ([`UpcallResult::rewritten`]).
    start_key: FlowKey,
    rewritten: u32,
}

/// An OpenFlow port as NetFlow reports it: OpenFlow 1.0's 16-bit numbers (LOCAL = 65534).
pub fn nf_port(port: u32) -> u16 {
    if port >= 0xffff_ff00 {
        (port - 0xffff_0000) as u16
    } else {
        port as u16
    }
}

/// Where a translation begins.
#[derive(Clone, Copy, Default)]
pub enum Start<'a> {
    /// Table 0, with zeroed registers and metadata.
    #[default]
    Table0,
    /// A recirculated packet: `frozen`'s table, with its registers and metadata.
    Frozen(&'a Frozen),
    /// A PACKET_OUT's action list, run on the packet as a rule's would be in table 0 (an
    /// output to `TABLE` is its `resubmit(,0)`).
    Actions(&'a [Action]),
}

/// Translates `key` starting at table 0 with zeroed registers and metadata.
pub fn translate(env: &XlateEnv<'_>, key: &FlowKey) -> UpcallResult {
    translate_marked(env, key).0
}

/// [`translate_marked`] of a recirculated packet: from `frozen`'s table, with its registers
/// and metadata.
pub fn translate_frozen(
    env: &XlateEnv<'_>,
    key: &FlowKey,
    frozen: &Frozen,
) -> (UpcallResult, Vec<TunnelMark>) {
    translate_from(env, key, Some(frozen))
}

/// The flow as the actions had left it when they wrote a tunnel field: from action `.0` on
/// (an index into the result's actions), an output to a tunnel port sends with `.1`'s
/// tunnel words and `tun_metadataN` fields.
pub type TunnelMark = (usize, Fields);

/// [`translate`], with the [`TunnelMark`]s of the translation in action order.
pub fn translate_marked(env: &XlateEnv<'_>, key: &FlowKey) -> (UpcallResult, Vec<TunnelMark>) {
    translate_from(env, key, None)
}

fn translate_from(
    env: &XlateEnv<'_>,
    key: &FlowKey,
    frozen: Option<&Frozen>,
) -> (UpcallResult, Vec<TunnelMark>) {
    let start = frozen.map_or(Start::Table0, Start::Frozen);
    let (r, marks, _) = translate_netflow(env, key, start);
    (r, marks)
}

/// [`translate_marked`] (from `start`) that also says where the packet went for
/// NetFlow: an OpenFlow port ([`nf_port`]) or `netflow::NF_OUT_FLOOD`, `NF_OUT_MULTI`,
/// `NF_OUT_DROP`, decided as Open vSwitch's `xlate_output_action` decides it.
pub fn translate_netflow(
    env: &XlateEnv<'_>,
    key: &FlowKey,
    start: Start<'_>,
) -> (UpcallResult, Vec<TunnelMark>, u16) {
    let frozen = match start {
        Start::Frozen(z) => Some(z),
        _ => None,
    };
    let mut f = Fields::from_key(key);
    if let Some(z) = frozen {
        f.regs = z.regs;
        f.metadata = z.metadata;
    }
    f.tun_md = env.tlv.decode(env.tun_options);
    // Options decoded: a tunnel output sends them unless the actions change them.
    let marks = if f.tun_md.present != 0 {
        vec![(0, f.clone())]
    } else {
        Vec::new()
    };
    let mut x = Xlate {
        env,
        f,
        wc: Fields::default(),
        actions: Vec::new(),
        sinks: Vec::new(),
        stack: frozen.map_or_else(Vec::new, |z| z.stack.to_vec()),
        depth: 0,
        resubmits: 0,
        too_deep: false,
        stop_table: false,
        marks,
        nf_output: NF_OUT_DROP,
        rule: None,
        action_set: frozen.map_or_else(Vec::new, |z| z.action_set.to_vec()),
        pass_table: frozen.map_or(0, |z| z.table),
        pass_rule: None,
        in_packet_out: matches!(start, Start::Actions(_)),
        in_bucket: false,
        in_action_set: false,
        start_key: *key,
        rewritten: 0,
    };
    if key.is_ip() {
        let fragment = key.nw_frag & FRAG_ANY != 0;
        match env.frag_mode {
            FragMode::Normal if fragment => {
                // As OVS: the tables see no ports. The megaflow still matches the packet's own
                // (its mask comes from the lookups), which is only more specific.
                x.wc.key.nw_frag |= FRAG_ANY;
                x.f.key.tp_src = 0;
                x.f.key.tp_dst = 0;
            }
            FragMode::Drop => {
                // Every IP megaflow says whether it holds fragments, so none is forwarded.
                x.wc.key.dl_type = 0xffff;
                x.wc.key.nw_frag |= FRAG_ANY;
                if fragment {
                    let r = UpcallResult {
                        rewritten: 0,
                        actions: Vec::new(),
                        mask: complete_megaflow_mask(x.wc.key),
                        sinks: Vec::new(),
                    };
                    return (r, Vec::new(), NF_OUT_DROP);
                }
            }
            _ => {}
        }
    }
    // A port down or set `no_recv` takes nothing in (a recirculated packet came in already;
    // a PACKET_OUT's frame comes from the controller).
    let from_port = !matches!(start, Start::Actions(_));
    if from_port && frozen.is_none() && !env.port_config.is_empty() {
        let c = env.config(key.in_port);
        let refused = if c & OFPPC_PORT_DOWN != 0 {
            Some(ExecDrop::PortDown)
        } else if c & OFPPC_NO_RECV != 0 {
            Some(ExecDrop::PortNoRecv)
        } else {
            None
        };
        if let Some(reason) = refused {
            x.wc.key.in_port = u32::MAX;
            let r = UpcallResult {
                rewritten: 0,
                actions: vec![DpAction::Drop(reason)],
                mask: complete_megaflow_mask(x.wc.key),
                sinks: Vec::new(),
            };
            return (r, Vec::new(), NF_OUT_DROP);
        }
    }
    match start {
        Start::Actions(actions) => x.packet_out(actions),
        _ => x.table(x.pass_table, None),
    }
    if !x.too_deep {
        x.run_action_set();
    }
    if x.too_deep {
        x.actions.clear();
    }
    // A recirculation that nothing follows moves the packet itself.
    if let Some(DpAction::Clone(sub)) = x.actions.last() {
        if let [DpAction::Recirc(id)] = **sub {
            x.actions.pop();
            x.actions.push(DpAction::Recirc(id));
        }
    }
    // A rule read a `tun_metadataN`: the megaflow matches the options it came from.
    if x.wc.tun_md.present != 0 {
        x.wc.key.tun_opts = [u8::MAX; TUN_OPTS_LEN];
        x.wc.key.tun_opts_len = u8::MAX;
    }
    let r = UpcallResult {
        rewritten: x.rewritten,
        actions: x.actions,
        mask: complete_megaflow_mask(x.wc.key),
        sinks: x.sinks,
    };
    (r, x.marks, x.nf_output)
}

impl Xlate<'_> {
    /// Looks `self.f` up in table `t` and runs the actions of the rule it finds. With
    /// `lookup_port` (`resubmit(PORT,TABLE)`), the lookup sees that in_port, but the rule's
    /// actions see the packet's real one, as in Open vSwitch (its `output:PORT`, `in_port`,
    /// NORMAL and nested resubmits act for the port the packet came in on).
    fn table(&mut self, t: u8, lookup_port: Option<u32>) {
        self.resubmits += 1;
        if self.depth >= MAX_RESUBMIT_DEPTH || self.resubmits > MAX_RESUBMITS {
            self.too_deep = true;
            return;
        }
        let Some(table) = self.env.rules.table(t) else {
            return;
        };
        let real_port = self.f.key.in_port;
        if let Some(p) = lookup_port {
            self.f.key.in_port = p;
        }
        let found = table.lookup(&self.f, &mut self.wc);
        self.note_rewrites();
        self.f.key.in_port = real_port;
        // A miss drops: nothing to add.
        let Some(rule) = found else {
            return;
        };
        let rule = rule.clone();
        self.sinks.push(rule.stats.clone());
        let table_miss = rule.spec.priority == 0 && rule.spec.matches == Match::catch_all();
        // The pass's first rule (a goto_table comes back here at depth 0 too).
        if self.depth == 0 && self.pass_rule.is_none() {
            self.pass_rule = Some((rule.spec.cookie, table_miss));
        }
        self.depth += 1;
        let caller = self.rule.replace((rule.spec.cookie, table_miss));
        // A rule's actions are not a bucket's, even when a bucket resubmitted to it.
        let in_bucket = std::mem::replace(&mut self.in_bucket, false);
        let mut goto = None;
        for a in &rule.spec.actions {
            if let Action::GotoTable(n) = a {
                goto = Some(*n);
            } else {
                self.action(a, t);
            }
            if self.too_deep {
                return;
            }
            if self.stop_table {
                break;
            }
        }
        self.rule = caller;
        self.in_bucket = in_bucket;
        self.depth -= 1;
        if std::mem::take(&mut self.stop_table) {
            return;
        }
        if let Some(n) = goto {
            self.table(n, None);
        }
    }

    /// Marks the key words a lookup now sees other than the translation began with.
    fn note_rewrites(&mut self) {
        let (now, start) = (self.f.key.words(), self.start_key.words());
        for (i, (a, b)) in now.iter().zip(start).enumerate() {
            if a != b {
                self.rewritten |= 1 << i;
            }
        }
    }

    /// A PACKET_OUT's actions, as a table-0 rule's without a rule (OVS's `xlate_actions` of
    /// `ofpacts`): their packet-ins say `packet_out`, table 0, cookie all-ones.
    fn packet_out(&mut self, actions: &[Action]) {
        self.depth += 1;
        for a in actions {
            self.action(a, 0);
            if self.too_deep || self.stop_table {
                break;
            }
        }
        self.depth -= 1;
        self.stop_table = false;
    }

    /// A `controller` action's packet-in as translation knows it here (Open vSwitch's
    /// `xlate_output_action` and `xlate_controller_action`): the reason, the table and the
    /// rule's cookie, the OpenFlow in_port, registers and metadata. A plain output to the
    /// controller (OVS's OFPACT_OUTPUT: no reason but `action`, no id, userdata, pause or
    /// meter) says where it ran: in a PACKET_OUT, a group bucket, the action set; any other
    /// `action` in a table-miss rule is a miss.
    fn controller_action(&mut self, args: &ControllerArgs, table: u8) -> ToController {
        // A PACKET_OUT's own actions have no rule: all-ones, which OVS sends for them.
        let none = if self.in_packet_out { u64::MAX } else { 0 };
        let (cookie, table_miss) = self.rule.unwrap_or((none, false));
        let plain = args.is_output();
        let named = args.reason.as_deref().and_then(PacketInReason::from_name);
        let reason = match named.unwrap_or(PacketInReason::Action) {
            PacketInReason::Action if plain && self.in_packet_out => PacketInReason::PacketOut,
            PacketInReason::Action if plain && self.in_bucket => PacketInReason::Group,
            PacketInReason::Action if plain && self.in_action_set => PacketInReason::ActionSet,
            PacketInReason::Action if table_miss => PacketInReason::ExplicitMiss,
            r => r,
        };
        let context = PacketInContext {
            reason,
            table_id: table,
            cookie,
            controller_id: args.id,
            userdata: args.userdata.clone().into_boxed_slice(),
            max_len: args.max_len,
            in_port: self.in_port(),
            metadata: self.f.metadata,
            regs: self.f.regs,
        };
        ToController {
            context: Arc::new(context),
            queue: self.env.packet_ins.clone(),
        }
    }

    /// `dec_ttl` at TTL 1 with a controller that takes `invalid_ttl` packet-ins: the packet
    /// goes to controller 0 (`dec_ttl(ID,...)`: to each ID), whole, as Open vSwitch's
    /// `compose_dec_ttl` sends it.
    fn invalid_ttl(&mut self, dec: &Action, table: u8) {
        let ids = match dec {
            Action::DecTtlIds(ids) => ids.clone(),
            _ => vec![0],
        };
        for id in ids {
            let args = ControllerArgs {
                reason: Some("invalid_ttl".into()),
                id,
                ..ControllerArgs::default()
            };
            let to = self.controller_action(&args, table);
            self.actions.push(DpAction::Controller(to));
        }
    }

    fn in_port(&mut self) -> u32 {
        self.wc.key.in_port = u32::MAX;
        self.f.key.in_port
    }

    fn output(&mut self, port: u32) {
        if port != self.in_port() && self.env.may_send(port) {
            self.actions.push(DpAction::Output(port));
            self.nf_output = nf_port(port);
        }
    }

    /// An action that sends (output, in_port, flood, all, local, NORMAL, controller), with
    /// NetFlow's output interface combined as Open vSwitch's `xlate_output_action` does: a
    /// flood stays a flood, nothing sent keeps what was, a second port makes "several".
    fn sending_action(&mut self, a: &Action, cur_table: u8) {
        let prev = std::mem::replace(&mut self.nf_output, NF_OUT_DROP);
        match a {
            Action::Output(p) => self.output(*p),
            Action::InPort => {
                let p = self.in_port();
                if self.env.may_send(p) {
                    self.actions.push(DpAction::Output(p));
                    self.nf_output = nf_port(p);
                }
            }
            Action::Flood | Action::All => {
                let in_port = self.in_port();
                let flood = matches!(a, Action::Flood);
                for p in self.env.ports {
                    if p.ofport != in_port && (p.flood || !flood) && self.env.may_send(p.ofport) {
                        self.actions.push(DpAction::Output(p.ofport));
                    }
                }
                self.nf_output = NF_OUT_FLOOD;
            }
            Action::Local if self.env.ports.iter().any(|p| p.ofport == OFPP_LOCAL) => {
                self.output(OFPP_LOCAL);
            }
            Action::Normal => {
                let before = self.actions.len();
                let out = normal_xlate(
                    &self.f.key,
                    self.env.ports,
                    MacUse {
                        table: self.env.macs,
                        now_ns: self.env.now_ns,
                        learn: self.env.learn,
                    },
                    &mut self.actions,
                    &mut self.wc.key,
                    &mut self.sinks,
                );
                // NORMAL sends nowhere a port's configuration forbids.
                let env = self.env;
                let mut i = before;
                while i < self.actions.len() {
                    match self.actions[i] {
                        DpAction::Output(p) if !env.may_send(p) => {
                            self.actions.remove(i);
                        }
                        _ => i += 1,
                    }
                }
                self.nf_output = match out {
                    NormalOutput::Dropped => NF_OUT_DROP,
                    NormalOutput::Port(p) => nf_port(p),
                    NormalOutput::Flooded => NF_OUT_FLOOD,
                };
                self.restore_vlan(before);
            }
            Action::Controller(args) => {
                let to = self.controller_action(args, cur_table);
                self.actions.push(DpAction::Controller(to));
            }
            _ => {}
        }
        self.nf_output = if prev == NF_OUT_FLOOD {
            NF_OUT_FLOOD
        } else if self.nf_output == NF_OUT_DROP {
            prev
        } else if prev != NF_OUT_DROP && self.nf_output != NF_OUT_FLOOD {
            NF_OUT_MULTI
        } else {
            self.nf_output
        };
    }

    fn action(&mut self, a: &Action, cur_table: u8) {
        match a {
            Action::Output(_)
            | Action::InPort
            | Action::Flood
            | Action::All
            | Action::Local
            | Action::Normal
            | Action::Controller(_) => self.sending_action(a, cur_table),
            Action::SetField { field, value } => self.write(FieldRef::whole(*field), *value),
            Action::Load { dst, value } => self.write(*dst, *value),
            Action::Move { src, dst } => {
                if is_packet_field(src.field) {
                    self.wc.or_field(src.field, src.bit_mask());
                }
                let v = src.read(&self.f);
                self.write(*dst, v);
            }
            // Open vSwitch's nxm_execute_stack_push / _pop: the stack lives for the whole
            // translation (resubmits included), values right-aligned; a pop writes the low
            // bits of the top value, and a pop on an empty stack does nothing.
            Action::StackPush(src) => {
                if is_packet_field(src.field) {
                    self.wc.or_field(src.field, src.bit_mask());
                }
                if self.stack.len() < MAX_STACK {
                    self.stack.push(src.read(&self.f));
                }
            }
            Action::StackPop(dst) => {
                if let Some(v) = self.stack.pop() {
                    if is_packet_field(dst.field) {
                        self.wc.or_field(dst.field, dst.bit_mask());
                    }
                    self.write(*dst, v & ones(dst.n_bits));
                }
            }
            Action::PushVlan(tpid) => {
                let k = &mut self.f.key;
                // OpenFlow copies the outer TCI into the new header when there is one.
                let tci = if k.has_vlan() {
                    self.wc.key.vlan_tci = 0xffff;
                    k.vlan_tci & !VLAN_PRESENT
                } else {
                    self.wc.key.vlan_tci |= VLAN_PRESENT;
                    0
                };
                k.vlan2_tci = k.vlan_tci;
                k.vlan_tci = tci | VLAN_PRESENT;
                k.vlan_tpid = *tpid;
                self.actions.push(DpAction::PushVlan { tpid: *tpid, tci });
            }
            Action::PopVlan => {
                self.wc.key.vlan_tci |= VLAN_PRESENT;
                let k = &mut self.f.key;
                if k.has_vlan() {
                    k.vlan_tci = k.vlan2_tci;
                    k.vlan2_tci = 0;
                    k.vlan_tpid = if k.has_vlan() { TPID_8021Q } else { 0 };
                    self.actions.push(DpAction::PopVlan);
                }
            }
            Action::DecTtl | Action::DecTtlIds(_) => {
                // Whether the packet is IP decides. In the top-level table the TTL itself is
                // the datapath's business: at TTL 1 its `DecTtl` drops the packet, which is
                // what stopping the action list means there, and one megaflow serves every
                // TTL. In a resubmitted table the caller's actions go on after a TTL-1 stop,
                // and a controller that takes `invalid_ttl` packet-ins gets the packet, so
                // there the translation must know the TTL (as Open vSwitch's always does).
                self.wc.key.dl_type = 0xffff;
                if self.f.key.is_ip() {
                    let to_controller = self.env.invalid_ttl_to_controller;
                    if self.depth > 1 || to_controller {
                        self.wc.key.nw_ttl = 0xff;
                        if self.f.key.nw_ttl <= 1 {
                            if to_controller {
                                self.invalid_ttl(a, cur_table);
                            }
                            self.stop_table = true;
                            return;
                        }
                    }
                    self.f.key.nw_ttl = self.f.key.nw_ttl.saturating_sub(1);
                    self.actions.push(DpAction::DecTtl);
                }
            }
            Action::Resubmit { port, table } => self.table(table.unwrap_or(cur_table), *port),
            // Handled by `table` after the other actions.
            Action::GotoTable(_) => {}
            Action::WriteMetadata { value, mask } => {
                self.f.metadata = (self.f.metadata & !mask) | (value & mask);
            }
            Action::Note(_) => {}
            Action::Ct(ct) => self.conntrack(ct),
            Action::Group(id) => self.group(*id, cur_table),
            Action::WriteActions(v) => self.action_set.extend(v.iter().cloned()),
            Action::ClearActions => self.action_set.clear(),
        }
    }

    /// The action set at the end of the pipeline, in the order Open vSwitch's
    /// `ofpacts_execute_action_set` gives it ([`crate::group::action_set`], as for buckets),
    /// as the actions of the rule this translation started with, in its table (OVS's
    /// `xlate_action_set`, run after the pipeline returned to the top).
    fn run_action_set(&mut self) {
        let set = std::mem::take(&mut self.action_set);
        let list = crate::group::action_set(&set);
        if list.is_empty() {
            return;
        }
        let caller = std::mem::replace(&mut self.rule, self.pass_rule);
        self.in_action_set = true;
        self.depth += 1;
        for a in &list {
            self.action(a, self.pass_table);
            if self.too_deep || self.stop_table {
                break;
            }
        }
        self.depth -= 1;
        self.in_action_set = false;
        self.rule = caller;
        self.stop_table = false;
    }

    /// `group:N` as Open vSwitch's `xlate_group_action`: `all` and `indirect` run every
    /// bucket, `select` the live bucket a hash of the flow picks, `fast_failover` the first
    /// live one. Each bucket runs on the packet as it was before the group (a copy: what a
    /// bucket changed is set back for the actions after it). A group that does not exist
    /// (a bucket's chained group, deleted since) ends this action list, as in OVS.
    fn group(&mut self, id: u32, cur_table: u8) {
        if self.depth >= MAX_RESUBMIT_DEPTH {
            self.too_deep = true;
            return;
        }
        let Some(g) = self.env.rules.group(id).cloned() else {
            self.stop_table = true;
            return;
        };
        let chosen = match g.spec.kind {
            GroupType::All | GroupType::Indirect => None,
            GroupType::Select => match self.select_bucket(&g) {
                Some(i) => Some(i),
                None => return,
            },
            GroupType::FastFailover => {
                let mut budget = MAX_LIVENESS_CHECKS;
                match (0..g.spec.buckets.len()).find(|&i| self.bucket_live(&g, i, 0, &mut budget)) {
                    Some(i) => Some(i),
                    None => return,
                }
            }
        };
        self.sinks.push(Arc::new(GroupSink {
            stats: g.stats.clone(),
            bucket: chosen,
        }));
        match chosen {
            Some(i) => self.bucket(&g.exec[i], cur_table),
            None => {
                for exec in &g.exec {
                    self.bucket(exec, cur_table);
                    if self.too_deep {
                        return;
                    }
                }
            }
        }
    }

    /// Runs one bucket's action set, then puts the packet back as it was (OVS's
    /// `xlate_group_bucket`: the flow is rolled back, as if the bucket had a copy).
    fn bucket(&mut self, exec: &[Action], cur_table: u8) {
        self.resubmits += 1;
        if self.resubmits > MAX_RESUBMITS {
            self.too_deep = true;
            return;
        }
        let saved = self.f.clone();
        let (from, marks) = (self.actions.len(), self.marks.len());
        self.depth += 1;
        let in_bucket = std::mem::replace(&mut self.in_bucket, true);
        for a in exec {
            // OVS's set_field in an action set: skipped when the packet lacks the field.
            let dst = match a {
                Action::SetField { field, .. } => Some(*field),
                Action::Load { dst, .. } | Action::Move { dst, .. } => Some(dst.field),
                _ => None,
            };
            if let Some(field) = dst.filter(|f| is_packet_field(*f)) {
                self.wc.key.dl_type = 0xffff;
                if self.f.key.is_ip() {
                    self.wc.key.nw_proto = 0xff;
                }
                if !field
                    .def()
                    .write_prereq()
                    .holds(&self.f.key, &FlowKey::all_ones())
                {
                    continue;
                }
            }
            self.action(a, cur_table);
            if self.too_deep || self.stop_table {
                break;
            }
        }
        self.in_bucket = in_bucket;
        self.depth -= 1;
        // A bucket that stops (dec_ttl at TTL 1, a missing group) does not stop the caller.
        self.stop_table = false;
        if self.too_deep {
            return;
        }
        let changed = std::mem::replace(&mut self.f, saved);
        if self.actions.len() > from {
            let all = FlowKey::all_ones();
            let mut restore: Vec<DpAction> = Vec::new();
            for field in Field::all() {
                let Write::Packet(set) = field.def().write else {
                    continue;
                };
                if field == VLAN_VID
                    || field == VLAN_PCP
                    || !field.def().write_prereq().holds(&self.f.key, &all)
                {
                    continue;
                }
                let was = self.f.get(field);
                if changed.get(field) != was {
                    // Setting the value back writes what the packet had: the megaflow
                    // matches it.
                    self.wc.or_field(field, field.max_value());
                    let a = set(was);
                    if !restore.contains(&a) {
                        restore.push(a);
                    }
                }
            }
            self.actions.extend(restore);
            self.restore_vlan(from);
        }
        if self.marks.len() > marks {
            self.marks.push((self.actions.len(), self.f.clone()));
        }
    }

    /// OVS's `bucket_is_alive`: a select bucket of weight 0 never is; an unwatched bucket
    /// is; a watched one is while its port is on the bridge and up, or its group has a live
    /// bucket (to [`MAX_LIVENESS_DEPTH`] links, and `budget` checks in all).
    fn bucket_live(&self, g: &Group, i: usize, depth: u32, budget: &mut u32) -> bool {
        let Some(b) = g.spec.buckets.get(i) else {
            return false;
        };
        if *budget == 0
            || depth >= MAX_LIVENESS_DEPTH
            || (g.spec.kind == GroupType::Select && b.weight == 0)
        {
            return false;
        }
        *budget -= 1;
        let port_up = |p: u32| {
            self.env.ports.iter().any(|x| x.ofport == p) && !self.env.ports_down.contains(&p)
        };
        !b.has_liveness()
            || b.watch_port.is_some_and(port_up)
            || b.watch_group.is_some_and(|w| {
                self.env.rules.group(w).is_some_and(|wg| {
                    (0..wg.spec.buckets.len()).any(|j| self.bucket_live(wg, j, depth + 1, budget))
                })
            })
    }

    /// A select group's bucket for this flow, as OVS's default selection method
    /// (`pick_default_select_group`): a symmetric hash of the L2-L4 addresses (the same for
    /// both directions of a connection, and for every PMD and every run), whose fields the
    /// megaflow then matches; among the live buckets the highest
    /// `(hash(bucket, flow hash) & 0xffff) * weight` wins (the last of equal scores).
    fn select_bucket(&mut self, g: &Group) -> Option<usize> {
        let basis = symmetric_l4_hash(&self.f.key, &mut self.wc.key);
        let mut best = None;
        let mut best_score = 0u32;
        let mut budget = MAX_LIVENESS_CHECKS;
        for (i, b) in g.spec.buckets.iter().enumerate() {
            if !self.bucket_live(g, i, 0, &mut budget) {
                continue;
            }
            let score = (hash_int(i as u32, basis) & 0xffff) * u32::from(b.weight);
            if score >= best_score {
                best = Some(i);
                best_score = score;
            }
        }
        best
    }

    /// `ct(...)`: the datapath's tracking action for the arguments as this packet resolves
    /// them, then, with `table=`, a recirculation into that table (on a copy while more
    /// actions follow; the last one moves the packet, see `translate_from`). The rest of the
    /// actions see the packet untracked again (OVS's `clear_conntrack`).
    fn conntrack(&mut self, ct: &CtAction) {
        let zone = match &ct.zone {
            CtZone::Imm(z) => *z,
            CtZone::Field(r) => {
                if is_packet_field(r.field) {
                    self.wc.or_field(r.field, r.bit_mask());
                }
                r.read(&self.f) as u16
            }
        };
        let (mut mark, mut label) = (Fields::default(), Fields::default());
        let (mut mark_mask, mut label_mask) = (0u32, 0u128);
        for a in ct.exec() {
            let (dst, v) = match a {
                Action::SetField { field, value } => (FieldRef::whole(*field), *value),
                Action::Load { dst, value } => (*dst, *value),
                Action::Move { src, dst } => {
                    if is_packet_field(src.field) {
                        self.wc.or_field(src.field, src.bit_mask());
                    }
                    (*dst, src.read(&self.f))
                }
                _ => continue,
            };
            if dst.field == CT_MARK {
                dst.write(&mut mark, v);
                mark_mask |= dst.bit_mask() as u32;
            } else if dst.field == CT_LABEL {
                dst.write(&mut label, v);
                label_mask |= dst.bit_mask();
            }
        }
        let call = CtCall {
            zone,
            commit: ct.commit,
            force: ct.force,
            mark: (FieldRef::whole(CT_MARK).read(&mark) as u32, mark_mask),
            label: (FieldRef::whole(CT_LABEL).read(&label), label_mask),
            nat: ct.nat().copied(),
            alg: ct.alg,
        };
        match self.env.hooks.and_then(|h| h.ct(&call)) {
            Some(a) => self.actions.push(a),
            None => {
                self.actions.push(DpAction::Drop(ExecDrop::CtRefused));
                return;
            }
        }
        if let (Some(table), Some(h)) = (ct.table, self.env.hooks) {
            let frozen = Frozen {
                table,
                regs: self.f.regs,
                metadata: self.f.metadata,
                action_set: self.action_set.as_slice().into(),
                stack: self.stack.as_slice().into(),
            };
            let Some(id) = h.freeze(&frozen) else {
                self.actions.push(DpAction::Drop(ExecDrop::CtRefused));
                return;
            };
            self.actions
                .push(DpAction::Clone(Box::new([DpAction::Recirc(id)])));
        }
        let k = &mut self.f.key;
        (k.ct_state, k.ct_zone, k.ct_mark, k.ct_label) = (0, 0, 0, [0; 16]);
    }

    /// Writes `v` into a field range; for packet fields emits the datapath action that sets
    /// the whole field (so bits of the field outside the range were read).
    fn write(&mut self, r: FieldRef, v: u128) {
        let had_vlan = self.f.key.has_vlan();
        r.write(&mut self.f, v);
        let field = r.field;
        if field.def().write == Write::VlanTci {
            return self.write_vlan_tci(r, had_vlan);
        }
        let Write::Packet(set) = field.def().write else {
            if field.def().name.starts_with("tun_") {
                self.marks.push((self.actions.len(), self.f.clone()));
            }
            return;
        };
        if !r.is_whole() {
            self.wc.or_field(field, field.max_value() & !r.bit_mask());
        }
        let new = self.f.get(field);
        if field == VLAN_VID || field == VLAN_PCP {
            self.wc.key.vlan_tci |= VLAN_PRESENT;
            let k = &mut self.f.key;
            if !k.has_vlan() {
                // As mod_vlan_vid / mod_vlan_pcp: an untagged frame gets a new header.
                k.vlan_tci |= VLAN_PRESENT;
                k.vlan_tpid = TPID_8021Q;
                self.actions.push(DpAction::PushVlan {
                    tpid: TPID_8021Q,
                    tci: k.vlan_tci & !VLAN_PRESENT,
                });
                return;
            }
        }
        self.actions.push(set(new));
    }

    /// After a write of `vlan_tci` (OVS's semantics): a TCI with the present bit gives the
    /// frame that header (pushed, or the id and priority set), one without removes it.
    fn write_vlan_tci(&mut self, r: FieldRef, had_vlan: bool) {
        self.wc.key.vlan_tci |= VLAN_PRESENT;
        if !r.is_whole() {
            self.wc
                .or_field(r.field, r.field.max_value() & !r.bit_mask());
        }
        let k = &mut self.f.key;
        let tci = k.vlan_tci;
        match (had_vlan, tci & VLAN_PRESENT != 0) {
            (false, true) => {
                k.vlan_tpid = TPID_8021Q;
                self.actions.push(DpAction::PushVlan {
                    tpid: TPID_8021Q,
                    tci: tci & !VLAN_PRESENT,
                });
            }
            (true, true) => {
                self.actions.push(DpAction::SetVlanVid(tci & 0x0fff));
                self.actions.push(DpAction::SetVlanPcp((tci >> 13) as u8));
            }
            (true, false) => {
                k.vlan_tci = k.vlan2_tci;
                k.vlan2_tci = 0;
                k.vlan_tpid = if k.has_vlan() { TPID_8021Q } else { 0 };
                self.actions.push(DpAction::PopVlan);
            }
            (false, false) => k.vlan_tci = 0,
        }
    }

    /// NORMAL edits the VLAN header for its outputs; put the packet back as the OpenFlow
    /// actions see it so that later actions act on the right frame.
    fn restore_vlan(&mut self, from: usize) {
        let want = (self.f.key.vlan_tci, self.f.key.vlan_tpid);
        let mut tci = self.f.key.vlan_tci;
        let mut tpid = self.f.key.vlan_tpid;
        let mut inner = self.f.key.vlan2_tci;
        for a in &self.actions[from..] {
            match *a {
                DpAction::PushVlan { tpid: t, tci: c } => {
                    inner = tci;
                    tci = c | VLAN_PRESENT;
                    tpid = t;
                }
                DpAction::PopVlan => {
                    tci = inner;
                    inner = 0;
                    tpid = if tci & VLAN_PRESENT != 0 {
                        TPID_8021Q
                    } else {
                        0
                    };
                }
                DpAction::SetVlanVid(v) => tci = (tci & !0x0fff) | (v & 0x0fff),
                DpAction::SetVlanPcp(p) => tci = (tci & 0x1fff) | (u16::from(p) << 13),
                _ => {}
            }
        }
        if (tci, tpid) == want || self.actions.len() == from {
            return;
        }
        let (have, need) = (tci & VLAN_PRESENT != 0, want.0 & VLAN_PRESENT != 0);
        match (have, need) {
            (true, false) => self.actions.push(DpAction::PopVlan),
            (false, true) => self.actions.push(DpAction::PushVlan {
                tpid: want.1,
                tci: want.0 & !VLAN_PRESENT,
            }),
            (true, true) => {
                if tpid != want.1 {
                    self.actions.push(DpAction::PopVlan);
                    self.actions.push(DpAction::PushVlan {
                        tpid: want.1,
                        tci: want.0 & !VLAN_PRESENT,
                    });
                } else {
                    if tci & 0x0fff != want.0 & 0x0fff {
                        self.actions.push(DpAction::SetVlanVid(want.0 & 0x0fff));
                    }
                    if tci >> 13 != want.0 >> 13 {
                        self.actions
                            .push(DpAction::SetVlanPcp((want.0 >> 13) as u8));
                    }
                }
            }
            (false, false) => {}
        }
    }
}

/// Murmur-style mixing as Open vSwitch's `hash_int` (`lib/hash.h`): no per-process seed,
/// so every PMD and every run picks the same bucket for a flow.
fn hash_int(x: u32, basis: u32) -> u32 {
    let mut h = hash_add(basis, x);
    h ^= 4;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn hash_add(h: u32, data: u32) -> u32 {
    let d = data
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ d)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// The flow hash of a select group, over the fields of Open vSwitch's
/// `flow_hash_symmetric_l4` (Ethernet addresses, VLAN ids, Ethernet type; IPv4 or IPv6
/// addresses and protocol; TCP and SCTP ports), each pair XORed so both directions hash the
/// same. Marks those fields in `wc` as `flow_mask_hash_fields(SYMMETRIC_L4)` does.
fn symmetric_l4_hash(k: &FlowKey, wc: &mut FlowKey) -> u32 {
    const VID_CFI: u16 = 0x1fff;
    wc.dl_src = [0xff; 6];
    wc.dl_dst = [0xff; 6];
    wc.dl_type = 0xffff;
    wc.vlan_tci |= VID_CFI;
    wc.vlan2_tci |= VID_CFI;
    let mut words: Vec<u32> = Vec::with_capacity(8);
    let eth: Vec<u8> = k.dl_src.iter().zip(k.dl_dst).map(|(a, b)| a ^ b).collect();
    words.push(u32::from_be_bytes([eth[0], eth[1], eth[2], eth[3]]));
    words.push(u32::from(u16::from_be_bytes([eth[4], eth[5]])));
    words.push(u32::from((k.vlan_tci ^ k.vlan2_tci) & 0x0fff) | (u32::from(k.dl_type) << 16));
    let (mut proto, mut ports) = (0u8, 0u16);
    if k.dl_type == 0x0800 {
        wc.nw_src = u32::MAX;
        wc.nw_dst = u32::MAX;
        words.push(k.nw_src ^ k.nw_dst);
    } else if k.dl_type == 0x86dd {
        wc.ipv6_src = [0xff; 16];
        wc.ipv6_dst = [0xff; 16];
        for i in (0..16).step_by(4) {
            let w = |a: &[u8; 16]| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
            words.push(w(&k.ipv6_src) ^ w(&k.ipv6_dst));
        }
    }
    if k.is_ip() {
        wc.nw_proto = 0xff;
        proto = k.nw_proto;
        // As OVS: UDP ports are not hashed (nor matched); TCP and SCTP ports are.
        if proto != 17 {
            wc.tp_src = 0xffff;
            wc.tp_dst = 0xffff;
        }
        if proto == 6 || proto == 132 {
            ports = k.tp_src ^ k.tp_dst;
        }
    }
    words.push(u32::from(proto) << 16 | u32::from(ports));
    words.iter().fold(0, |h, w| hash_add(h, *w))
}

#[cfg(test)]
mod tests {
    use pipeline::flowkey::{FRAG_ANY, FRAG_LATER};

    use super::*;
    use crate::normal::VlanMode;
    use crate::Bridge;

    fn port(n: u32) -> NormalPort {
        NormalPort {
            ofport: n,
            vlan: VlanMode::Access(0),
            flood: true,
        }
    }

    fn bridge(flows: &str) -> Bridge {
        let b = Bridge::new(
            vec![port(1), port(2), port(3)],
            MacTable::new(300_000_000_000, 1024),
        );
        b.add_flows_text(flows, 0).unwrap_or_else(|e| panic!("{e}"));
        b
    }

    fn ip_key(dst: u32) -> FlowKey {
        FlowKey {
            in_port: 1,
            dl_src: [0, 0, 0, 0, 0, 1],
            dl_dst: [0, 0, 0, 0, 0, 2],
            dl_type: 0x0800,
            nw_src: 0x0a00_0001,
            nw_dst: dst,
            nw_proto: 6,
            nw_ttl: 64,
            tp_src: 1234,
            tp_dst: 80,
            ..FlowKey::default()
        }
    }

    #[test]
    fn prefix_rule_and_catch_all_give_dl_type_and_prefix_mask() {
        let b = bridge(
            "priority=100,ip,nw_dst=10.0.0.0/24,actions=output:2\npriority=0,actions=output:3\n",
        );
        let want_mask = FlowKey {
            dl_type: 0xffff,
            nw_dst: 0xffff_ff00,
            in_port: u32::MAX,
            ..FlowKey::default()
        };
        let r = b.translate(&ip_key(0x0a00_0005), 0);
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        assert_eq!(r.mask, want_mask);
        assert_eq!(r.sinks.len(), 1);
        let r = b.translate(&ip_key(0x0b00_0005), 0);
        assert_eq!(r.actions, vec![DpAction::Output(3)]);
        assert_eq!(r.mask, want_mask);
    }

    #[test]
    fn lower_priority_subtables_are_not_probed_after_a_match() {
        let b = bridge("priority=200,in_port=1,actions=output:2\npriority=100,ip,nw_dst=10.0.0.0/24,actions=output:3\n");
        let r = b.translate(&ip_key(0x0a00_0005), 0);
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        assert_eq!(
            r.mask,
            FlowKey {
                in_port: u32::MAX,
                ..FlowKey::default()
            }
        );
    }

    #[test]
    fn l4_lookups_unwildcard_proto_and_frag() {
        let b = bridge("priority=100,tcp,tp_dst=80,actions=drop\n");
        let r = b.translate(&ip_key(1), 0);
        assert!(r.actions.is_empty());
        assert_eq!(r.mask.tp_dst, 0xffff);
        assert_eq!(r.mask.nw_proto, 0xff);
        assert_eq!(r.mask.dl_type, 0xffff);
        assert_eq!(r.mask.nw_frag, FRAG_ANY | FRAG_LATER);
        assert_eq!(r.mask.in_port, 0);
    }

    #[test]
    fn resubmit_goto_registers_and_metadata() {
        let b = bridge(
            "actions=load:0x5->reg0[],write_metadata:0x70/0xf0,resubmit(,1),goto_table:2\n\
             table=1,reg0=5,metadata=0x70/0xf0,actions=output:3\n\
             table=2,metadata=0x70,actions=resubmit(2,3)\n\
             table=3,in_port=2,actions=in_port\n",
        );
        let r = b.translate(&ip_key(1), 0);
        // resubmit(2,3) looks up as in_port 2; the rule's `in_port` sends back to the real
        // in_port, 1 (Open vSwitch restores it before running the rule's actions).
        assert_eq!(r.actions, vec![DpAction::Output(3), DpAction::Output(1)]);
        assert_eq!(r.sinks.len(), 4);
        // Registers and metadata are not packet bits.
        assert_eq!(
            r.mask,
            FlowKey {
                in_port: u32::MAX,
                ..FlowKey::default()
            }
        );
    }

    /// NXAST_STACK_PUSH / POP as Open vSwitch runs them: the stack outlives a resubmit, a pop
    /// writes the low bits of what was pushed, a pop on an empty stack changes nothing.
    #[test]
    fn push_and_pop_use_one_stack_for_the_whole_translation() {
        let b = bridge(
            "ip,actions=load:0xabcd->reg0[0..15],push:reg0[0..15],push:NXM_OF_IP_SRC[],resubmit(,1)\n\
             table=1,actions=pop:reg1[],pop:reg2[0..7],pop:reg3[],resubmit(,2)\n\
             table=2,ip,reg1=0x0a000001,reg2=0xcd,reg3=0,actions=pop:NXM_OF_IP_DST[],output:2\n",
        );
        let r = b.translate(&ip_key(0x0a00_0002), 0);
        // reg1 got the IP source, reg2 the low 8 bits of 0xabcd; the pop into reg3 and the
        // last one into ip_dst found the stack empty and changed nothing.
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        // Pushing a packet field reads it.
        assert_eq!(r.mask.nw_src, u32::MAX);
        // A pop into a packet field writes it.
        let b = bridge("ip,actions=push:NXM_OF_IP_SRC[],push:NXM_OF_IP_DST[],pop:NXM_OF_IP_SRC[],pop:NXM_OF_IP_DST[],output:2\n");
        let r = b.translate(&ip_key(0x0a00_0002), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetIpv4Src(0x0a00_0002),
                DpAction::SetIpv4Dst(0x0a00_0001),
                DpAction::Output(2)
            ]
        );
    }

    #[test]
    fn resubmit_port_is_for_the_lookup_only() {
        let b = bridge(
            "in_port=1,actions=resubmit(3,1)\n\
             table=1,in_port=3,actions=output:3,output:1,in_port,resubmit(,4)\n\
             table=4,in_port=1,actions=output:5\n\
             table=4,in_port=3,actions=output:6\n",
        );
        let r = b.translate(&ip_key(1), 0);
        // output:3 is sent (the packet came from 1), output:1 is not (it is the in_port),
        // `in_port` is 1, and the nested resubmit looks up as 1.
        assert_eq!(
            r.actions,
            vec![
                DpAction::Output(3),
                DpAction::Output(1),
                DpAction::Output(5)
            ]
        );
        assert_eq!(r.mask.in_port, u32::MAX);
    }

    #[test]
    fn dec_ttl_at_ttl_one_in_a_resubmit_stops_only_that_table() {
        // `dec_ttl(ids)` names controllers to tell (there is no controller connection): the
        // same decrement and the same stop.
        for dec in ["dec_ttl", "dec_ttl(1,2)"] {
            dec_ttl_stops_only_its_table(dec);
        }
    }

    fn dec_ttl_stops_only_its_table(dec: &str) {
        let b = bridge(&format!(
            "ip,actions=resubmit(,2),output:4\n\
             table=2,ip,actions=output:6,{dec},output:5,goto_table:3\n\
             table=3,actions=output:7\n"
        ));
        assert!(b
            .dump_flows(0)
            .iter()
            .any(|l| l.contains(&format!("output:6,{dec},output:5"))));
        let mut k = ip_key(1);
        k.nw_ttl = 1;
        let r = b.translate(&k, 0);
        assert_eq!(r.actions, vec![DpAction::Output(6), DpAction::Output(4)]);
        assert_eq!(r.mask.nw_ttl, 0xff);
        k.nw_ttl = 2;
        let r = b.translate(&k, 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::Output(6),
                DpAction::DecTtl,
                DpAction::Output(5),
                DpAction::Output(7),
                DpAction::Output(4)
            ]
        );
        assert_eq!(r.mask.nw_ttl, 0xff);
        // Not IP: dec_ttl does nothing and reads no TTL.
        k.dl_type = 0x0806;
        let r = b.translate(&k, 0);
        assert!(r.actions.is_empty());
        assert_eq!(r.mask.nw_ttl, 0);
    }

    #[test]
    fn fragments_follow_the_bridge_frag_mode() {
        let b = bridge(
            "priority=200,tcp,tp_dst=80,actions=output:2\npriority=100,ip,actions=output:3\n",
        );
        let mut first = ip_key(1);
        first.nw_frag = FRAG_ANY;
        // normal (the default): the first fragment's ports read as 0.
        assert_eq!(b.frag_mode(), FragMode::Normal);
        let r = b.translate(&first, 0);
        assert_eq!(r.actions, vec![DpAction::Output(3)]);
        assert_eq!(r.mask.nw_frag & FRAG_ANY, FRAG_ANY);
        // A whole datagram is not affected, and its megaflow holds no fragment.
        let r = b.translate(&ip_key(1), 0);
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        assert_eq!(r.mask.nw_frag & FRAG_ANY, FRAG_ANY);
        b.set_frag_mode(FragMode::NxMatch);
        assert_eq!(b.translate(&first, 0).actions, vec![DpAction::Output(2)]);
        b.set_frag_mode(FragMode::Drop);
        assert!(b.translate(&first, 0).actions.is_empty());
        // In drop mode every IP megaflow says it is not a fragment.
        let b = bridge("ip,actions=output:3\n");
        b.set_frag_mode(FragMode::Drop);
        let r = b.translate(&ip_key(1), 0);
        assert_eq!(r.actions, vec![DpAction::Output(3)]);
        assert_eq!(r.mask.nw_frag & FRAG_ANY, FRAG_ANY);
        assert_eq!(FragMode::from_name("nx-match"), Some(FragMode::NxMatch));
        assert_eq!(FragMode::from_name("reassemble"), None);
    }

    #[test]
    fn resubmit_loop_drops() {
        let b = bridge("actions=output:2,resubmit(,0)\n");
        let r = b.translate(&ip_key(1), 0);
        assert!(r.actions.is_empty());
        assert_eq!(r.sinks.len(), MAX_RESUBMIT_DEPTH as usize);
    }

    #[test]
    fn action_set_runs_at_the_end_in_openflow_order() {
        // Written out of order in table 0; table 1's applied output goes first, then the set:
        // push_vlan, dec_ttl, the field writes, the output.
        let b = bridge(
            "ip,actions=write_actions(output:3,mod_nw_dst:1.2.3.4,dec_ttl,push_vlan:0x8100),\
             goto_table:1\n\
             table=1,ip,actions=output:2\n",
        );
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::Output(2),
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 0
                },
                DpAction::DecTtl,
                DpAction::SetIpv4Dst(0x0102_0304),
                DpAction::Output(3),
            ]
        );
    }

    #[test]
    fn action_set_keeps_one_action_per_type_the_last_written() {
        let b = bridge(
            "ip,actions=write_actions(output:2,mod_nw_dst:1.2.3.4),goto_table:1\n\
             table=1,ip,actions=write_actions(output:3,mod_nw_dst:5.6.7.8)\n",
        );
        let r = b.translate(&ip_key(7), 0);
        // Field writes all run, in the order written; of the outputs only the last.
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetIpv4Dst(0x0102_0304),
                DpAction::SetIpv4Dst(0x0506_0708),
                DpAction::Output(3),
            ]
        );
        let b = bridge("ip,actions=write_actions(output:2,output:3)\n");
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        // A resubmit is a final action too, below an output.
        let b = bridge(
            "ip,actions=write_actions(resubmit(,2))\n\
             table=2,ip,actions=output:3\n",
        );
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        let b = bridge(
            "ip,actions=write_actions(resubmit(,2),output:2)\n\
             table=2,ip,actions=output:3\n",
        );
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(2)]
        );
    }

    #[test]
    fn clear_actions_empties_the_action_set() {
        let b = bridge(
            "ip,actions=write_actions(output:2),goto_table:1\n\
             table=1,ip,actions=clear_actions,goto_table:2\n\
             table=2,ip,actions=output:3\n",
        );
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        // Cleared, then written again: the new set runs.
        let b = bridge(
            "ip,actions=write_actions(output:2),goto_table:1\n\
             table=1,ip,actions=clear_actions,write_actions(output:3)\n",
        );
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        // A set without an output, group or resubmit does not run at all.
        let b = bridge("ip,actions=write_actions(mod_nw_dst:1.2.3.4,dec_ttl)\n");
        assert_eq!(b.translate(&ip_key(7), 0).actions, vec![]);
    }

    #[test]
    fn action_set_group_beats_output() {
        for flow in [
            "ip,actions=write_actions(group:1,output:2)\n",
            "ip,actions=write_actions(output:2,group:1)\n",
            "ip,actions=write_actions(output:2),goto_table:1\n\
             table=1,ip,actions=write_actions(group:1)\n",
            "ip,actions=write_actions(group:1),goto_table:1\n\
             table=1,ip,actions=write_actions(output:2)\n",
        ] {
            let b = bridge("");
            groups(&b, "group_id=1,type=indirect,bucket=output:3\n");
            b.add_flows_text(flow, 0).unwrap();
            let r = b.translate(&ip_key(7), 0);
            assert_eq!(r.actions, vec![DpAction::Output(3)], "{flow}");
        }
    }

    #[test]
    fn set_fields_emit_actions_and_later_tables_see_them() {
        let b = bridge(
            "ip,actions=mod_nw_dst:1.2.3.4,mod_dl_src:00:00:00:00:00:09,dec_ttl,resubmit(,1)\n\
             table=1,ip,nw_dst=1.2.3.4,nw_ttl=63,actions=output:2\n",
        );
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetIpv4Dst(0x0102_0304),
                DpAction::SetEthSrc([0, 0, 0, 0, 0, 9]),
                DpAction::DecTtl,
                DpAction::Output(2),
            ]
        );
        assert_eq!(r.mask.dl_type, 0xffff);
        assert_eq!(r.mask.nw_dst, u32::MAX);
        // dec_ttl itself does not read the TTL; the table-1 lookup does.
        assert_eq!(r.mask.nw_ttl, 0xff);
        let b = bridge("ip,actions=dec_ttl,output:2\n");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(r.actions, vec![DpAction::DecTtl, DpAction::Output(2)]);
        assert_eq!(r.mask.nw_ttl, 0);
    }

    #[test]
    fn dec_ttl_at_ttl_one_goes_to_a_controller_that_takes_invalid_ttl() {
        // Faucet's FIB rule: dec_ttl and rewrites, then the output table.
        let b = bridge(
            "cookie=0x9,ip,actions=dec_ttl,mod_dl_src:00:00:00:00:00:09,goto_table:1\n\
             table=1,actions=output:2\n",
        );
        let rest = [DpAction::SetEthSrc([0, 0, 0, 0, 0, 9]), DpAction::Output(2)];
        let mut last_hop = ip_key(7);
        last_hop.nw_ttl = 1;
        // No controller asked: the datapath drops it, one megaflow for every TTL.
        let r = b.translate(&last_hop, 0);
        assert_eq!(r.actions[..], [&[DpAction::DecTtl][..], &rest].concat());
        assert_eq!(r.mask.nw_ttl, 0);
        let g = b.generation();
        b.set_invalid_ttl_to_controller(true);
        assert!(b.generation() > g, "the megaflows are revalidated");
        // Asked: the whole packet goes to controller 0, and nothing else happens (no
        // rewrite, no goto); the megaflow matches the TTL.
        let r = b.translate(&last_hop, 0);
        let [DpAction::Controller(to)] = &r.actions[..] else {
            panic!("{:?}", r.actions);
        };
        let c = &to.context;
        assert_eq!(c.reason, PacketInReason::InvalidTtl);
        assert_eq!((c.table_id, c.cookie, c.controller_id), (0, 0x9, 0));
        assert_eq!(c.max_len, u16::MAX);
        assert_eq!(r.mask.nw_ttl, 0xff);
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(r.actions[..], [&[DpAction::DecTtl][..], &rest].concat());
        assert_eq!(r.mask.nw_ttl, 0xff);

        // `dec_ttl(1,2)` tells each controller it names; in a resubmitted table the caller
        // goes on.
        let b = bridge("ip,actions=resubmit(,1),output:3\ntable=1,actions=dec_ttl(1,2),output:2\n");
        b.set_invalid_ttl_to_controller(true);
        let r = b.translate(&last_hop, 0);
        let ids: Vec<u16> = r
            .actions
            .iter()
            .filter_map(|a| match a {
                DpAction::Controller(to) => Some(to.context.controller_id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(r.actions.last(), Some(&DpAction::Output(3)));
        b.set_invalid_ttl_to_controller(false);
        assert!(!b.invalid_ttl_to_controller());
        assert_eq!(b.translate(&last_hop, 0).actions, vec![DpAction::Output(3)]);
    }

    #[test]
    fn load_and_move_into_vlan_tci_push_set_and_pop_the_header() {
        // ofp-actions.at: load:0xf009->NXM_OF_VLAN_TCI[], move:NXM_OF_IN_PORT[]->NXM_OF_VLAN_TCI[].
        let b = bridge(
            "in_port=1,actions=load:0xf009->NXM_OF_VLAN_TCI[],output:2\n\
             in_port=2,actions=load:0->vlan_tci,output:3\n\
             in_port=3,actions=load:0x1005->reg0,move:reg0[0..15]->vlan_tci,output:1\n",
        );
        assert!(b.dump_flows(0)[0].ends_with("actions=load:0xf009->NXM_OF_VLAN_TCI[],output:2"));
        // Untagged: a header with vid 9, priority 7 is pushed.
        let r = b.translate(&ip_key(1), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::PushVlan {
                    tpid: TPID_8021Q,
                    tci: 0xe009
                },
                DpAction::Output(2)
            ]
        );
        assert_eq!(r.mask.vlan_tci, VLAN_PRESENT);
        // Tagged: the id and priority are set.
        let mut k = ip_key(1);
        k.vlan_tci = VLAN_PRESENT | 100;
        k.vlan_tpid = TPID_8021Q;
        let r = b.translate(&k, 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetVlanVid(9),
                DpAction::SetVlanPcp(7),
                DpAction::Output(2)
            ]
        );
        // A TCI without the present bit removes the header; untagged, nothing to do.
        k.in_port = 2;
        assert_eq!(
            b.translate(&k, 0).actions,
            vec![DpAction::PopVlan, DpAction::Output(3)]
        );
        let mut u = ip_key(1);
        u.in_port = 2;
        assert_eq!(b.translate(&u, 0).actions, vec![DpAction::Output(3)]);
        // From a register, as ovs-ofctl.at's move:reg0[0..15]->vlan_tci.
        u.in_port = 3;
        assert_eq!(
            b.translate(&u, 0).actions,
            vec![
                DpAction::PushVlan {
                    tpid: TPID_8021Q,
                    tci: 5
                },
                DpAction::Output(1)
            ]
        );
    }

    #[test]
    fn in_port_is_read_and_written_as_openflow_1_0_s_16_bit_port() {
        let b = bridge(
            "table=0,in_port=1,actions=move:NXM_OF_IN_PORT[]->NXM_OF_VLAN_TCI[],output:2\n\
             table=0,in_port=2,actions=load:3->NXM_OF_IN_PORT[],resubmit(,1)\n\
             table=0,in_port=LOCAL,actions=move:in_port[]->reg0[0..15],resubmit(,2)\n\
             table=1,in_port=3,actions=output:3,in_port,output:2\n\
             table=2,reg0=0xfffe,actions=output:1\n",
        );
        // The port number becomes the TCI (1: no present bit, so no header).
        let mut k = ip_key(1);
        k.in_port = 1;
        assert_eq!(b.translate(&k, 0).actions, vec![DpAction::Output(2)]);
        // Written: later tables match the new port, output skips it, in_port sends to it.
        k.in_port = 2;
        assert_eq!(
            b.translate(&k, 0).actions,
            vec![DpAction::Output(3), DpAction::Output(2)]
        );
        // LOCAL reads as 0xfffe.
        k.in_port = OFPP_LOCAL;
        assert_eq!(b.translate(&k, 0).actions, vec![DpAction::Output(1)]);
        let mut f = Fields::default();
        f.set(pipeline::field::IN_PORT_OF10, 0xfffe);
        assert_eq!(f.key.in_port, OFPP_LOCAL);
    }

    #[test]
    fn a_masked_set_field_writes_only_the_masked_bits() {
        // ofp-actions.at: set_field:00:00:00:00:12:34/00:00:00:00:ff:ff->eth_src.
        let b = bridge(
            "ip,actions=set_field:00:00:00:00:12:34/00:00:00:00:ff:ff->eth_src,\
             set_field:10.9.0.0/255.255.0.0->ip_dst,output:2\n",
        );
        assert!(b.dump_flows(0)[0].ends_with(
            " ip actions=load:0x1234->NXM_OF_ETH_SRC[0..15],load:0xa09->NXM_OF_IP_DST[16..31],output:2"
        ));
        let mut k = ip_key(0x0102_0304);
        k.dl_src = [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f];
        let r = b.translate(&k, 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetEthSrc([0x0a, 0x0b, 0x0c, 0x0d, 0x12, 0x34]),
                DpAction::SetIpv4Dst(0x0a09_0304),
                DpAction::Output(2),
            ]
        );
        // The bits kept were read: the megaflow matches them.
        assert_eq!(r.mask.dl_src, [0xff, 0xff, 0xff, 0xff, 0, 0]);
        assert_eq!(r.mask.nw_dst, 0x0000_ffff);
    }

    #[test]
    fn tunnel_fields_are_written_for_later_tables_without_a_datapath_action() {
        let b = bridge(
            "table=0,actions=set_tunnel:0x1388,set_field:172.31.1.2->tun_dst,resubmit(,1)\n\
             table=1,tun_id=0x1388,tun_dst=172.31.1.2,actions=output:2\n",
        );
        let r = b.translate(&ip_key(7), 0);
        // No datapath action of their own; table 1 saw the written values.
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        let mut k = ip_key(7);
        k.tun_id = 9;
        assert_eq!(b.translate(&k, 0).actions, vec![DpAction::Output(2)]);
    }

    #[test]
    fn partial_loads_and_moves_read_packet_bits() {
        let b = bridge("actions=load:0xff->eth_dst[0..7],move:eth_src[0..15]->reg1[0..15],resubmit(,1)\ntable=1,reg1=1,actions=output:2\n");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetEthDst([0, 0, 0, 0, 0, 0xff]),
                DpAction::Output(2)
            ]
        );
        assert_eq!(r.mask.dl_dst, [0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(r.mask.dl_src, [0, 0, 0, 0, 0xff, 0xff]);
    }

    #[test]
    fn output_ports_flood_all_local() {
        let b = bridge("actions=output:1,output:2,in_port,local\n");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(r.actions, vec![DpAction::Output(2), DpAction::Output(1)]);
        let mut ports = vec![port(1), port(2), port(3), port(OFPP_LOCAL)];
        ports[2].flood = false;
        b.set_ports(ports);
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::Output(2),
                DpAction::Output(1),
                DpAction::Output(OFPP_LOCAL)
            ]
        );
        let b2 = bridge("actions=flood\npriority=40000,in_port=2,actions=all\n");
        b2.set_ports(b.ports().to_vec());
        let r = b2.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![DpAction::Output(2), DpAction::Output(OFPP_LOCAL)]
        );
        let mut k = ip_key(7);
        k.in_port = 2;
        let r = b2.translate(&k, 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::Output(1),
                DpAction::Output(3),
                DpAction::Output(OFPP_LOCAL)
            ]
        );
        assert_eq!(r.mask.in_port, u32::MAX);
    }

    #[test]
    fn vlan_actions() {
        let b = bridge("actions=mod_vlan_vid:10,output:2\n");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 10
                },
                DpAction::Output(2)
            ]
        );
        assert_eq!(r.mask.vlan_tci, VLAN_PRESENT);
        let mut k = ip_key(7);
        k.vlan_tci = VLAN_PRESENT | (3 << 13) | 5;
        k.vlan_tpid = 0x8100;
        let r = b.translate(&k, 0);
        assert_eq!(
            r.actions,
            vec![DpAction::SetVlanVid(10), DpAction::Output(2)]
        );
        let b = bridge("actions=pop_vlan,push_vlan:0x88a8,output:2\n");
        let r = b.translate(&k, 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::PopVlan,
                DpAction::PushVlan {
                    tpid: 0x88a8,
                    tci: 0
                },
                DpAction::Output(2)
            ]
        );
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::PushVlan {
                    tpid: 0x88a8,
                    tci: 0
                },
                DpAction::Output(2)
            ]
        );
    }

    #[test]
    fn normal_and_controller() {
        let b = bridge("priority=10,actions=NORMAL\npriority=20,arp,actions=controller\n");
        let r = b.translate(&ip_key(7), 0);
        // Unknown destination: flooded to the other ports of the VLAN.
        assert_eq!(r.actions, vec![DpAction::Output(2), DpAction::Output(3)]);
        assert!(r.sinks.len() >= 2);
        assert_eq!(r.mask.in_port, u32::MAX);
        // The reply finds the learned MAC.
        let mut back = ip_key(7);
        back.in_port = 2;
        back.dl_src = [0, 0, 0, 0, 0, 2];
        back.dl_dst = [0, 0, 0, 0, 0, 1];
        let r = b.translate(&back, 0);
        assert_eq!(r.actions, vec![DpAction::Output(1)]);
        let arp = FlowKey {
            dl_type: 0x0806,
            in_port: 1,
            ..FlowKey::default()
        };
        let r = b.translate(&arp, 0);
        let [DpAction::Controller(to)] = &r.actions[..] else {
            panic!("{:?}", r.actions);
        };
        assert_eq!(to.context.reason, PacketInReason::Action);
        assert_eq!((to.context.in_port, to.context.max_len), (1, u16::MAX));
        assert_eq!(r.mask.in_port, u32::MAX);
    }

    #[test]
    fn controller_freezes_reason_table_cookie_and_pipeline_fields() {
        let b = bridge(
            "cookie=0x77,priority=5,ip,actions=load:0x9->reg3[],write_metadata:0x42,\
             controller(max_len=128,id=4,userdata=01.02),goto_table:1\n\
             table=1,priority=0,actions=controller\n\
             cookie=0x5,arp,actions=controller(reason=invalid_ttl)\n",
        );
        let r = b.translate(&ip_key(7), 0);
        let tos: Vec<_> = r
            .actions
            .iter()
            .filter_map(|a| match a {
                DpAction::Controller(to) => Some(to.context.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(tos.len(), 2, "{:?}", r.actions);
        let (first, miss) = (&tos[0], &tos[1]);
        assert_eq!(first.reason, PacketInReason::Action);
        assert_eq!((first.table_id, first.cookie), (0, 0x77));
        assert_eq!(
            (first.controller_id, &first.userdata[..]),
            (4, &[1u8, 2][..])
        );
        assert_eq!(
            (first.max_len, first.regs[3], first.metadata),
            (128, 9, 0x42)
        );
        assert_eq!(miss.reason, PacketInReason::ExplicitMiss);
        assert_eq!((miss.table_id, miss.cookie, miss.max_len), (1, 0, u16::MAX));
        let arp = FlowKey {
            dl_type: 0x0806,
            in_port: 2,
            ..FlowKey::default()
        };
        let r = b.translate(&arp, 0);
        let [DpAction::Controller(to)] = &r.actions[..] else {
            panic!("{:?}", r.actions);
        };
        assert_eq!(to.context.reason, PacketInReason::InvalidTtl);
        assert_eq!((to.context.cookie, to.context.in_port), (5, 2));
    }

    #[test]
    fn generation_moves_on_every_change() {
        let b = bridge("actions=drop\n");
        let g0 = b.generation();
        b.apply(&[crate::parse_del_flow("", false).unwrap()], 0)
            .unwrap();
        let g1 = b.generation();
        assert!(g1 > g0);
        b.set_ports(vec![port(1)]);
        assert!(b.generation() > g1);
        assert_eq!(b.dump_flows(0), Vec::<String>::new());
    }

    #[test]
    fn sinks_credit_the_rules_hit() {
        let b = bridge("priority=5,ip,actions=resubmit(,1)\ntable=1,actions=output:2\n");
        let r = b.translate(&ip_key(7), 0);
        for s in &r.sinks {
            s.credit(3, 180, 0, 2_000_000_000);
        }
        assert_eq!(
            b.dump_flows(2_500_000_000),
            vec![
                " cookie=0x0, duration=2.500s, table=0, n_packets=3, n_bytes=180, priority=5,ip actions=resubmit(,1)",
                " cookie=0x0, duration=2.500s, table=1, n_packets=3, n_bytes=180, actions=output:2",
            ]
        );
    }

    /// `f` of the translation environment of `b`, with the datapath hooks `hooks`.
    fn with_env<R>(
        b: &Bridge,
        hooks: Option<&dyn XlateHooks>,
        f: impl FnOnce(&XlateEnv<'_>) -> R,
    ) -> R {
        let rules = b.rules().load();
        let ports = b.ports();
        let tlv = b.tlv_map();
        let env = XlateEnv {
            rules: &rules,
            ports: &ports,
            macs: b.macs(),
            now_ns: 0,
            learn: true,
            frag_mode: FragMode::Normal,
            tlv: &tlv,
            tun_options: &[],
            hooks,
            packet_ins: b.packet_ins(),
            invalid_ttl_to_controller: false,
            ports_down: &[],
            port_config: &[],
        };
        f(&env)
    }

    /// NetFlow's output interface of `flows` for `key`.
    fn nf_out(b: &Bridge, key: &FlowKey) -> u16 {
        with_env(b, None, |env| translate_netflow(env, key, Start::Table0).2)
    }

    #[test]
    fn netflow_output_interface_as_ovs_decides_it() {
        let k = ip_key(7);
        let cases = [
            ("actions=output:2\n", 2),
            ("actions=local\n", NF_OUT_DROP), // no LOCAL port on this bridge
            ("actions=drop\n", NF_OUT_DROP),
            ("actions=output:1\n", NF_OUT_DROP), // the input port: not sent
            ("actions=in_port\n", 1),
            ("actions=output:2,output:3\n", NF_OUT_MULTI),
            ("actions=output:2,output:2\n", NF_OUT_MULTI), // OVS: any second output
            ("actions=flood\n", NF_OUT_FLOOD),
            ("actions=all,output:2\n", NF_OUT_FLOOD),
            ("actions=output:2,flood\n", NF_OUT_FLOOD),
            ("actions=controller,output:3\n", 3),
            (
                "actions=output:2,resubmit(,1)\ntable=1,actions=output:3\n",
                NF_OUT_MULTI,
            ),
            ("actions=NORMAL\n", NF_OUT_FLOOD),
        ];
        for (flows, want) in cases {
            assert_eq!(nf_out(&bridge(flows), &k), want, "{flows}");
        }
        // NORMAL after learning: the learned port.
        let b = bridge("actions=NORMAL\n");
        let mut back = ip_key(7);
        back.in_port = 2;
        back.dl_src = [0, 0, 0, 0, 0, 2];
        back.dl_dst = [0, 0, 0, 0, 0, 1];
        assert_eq!(nf_out(&b, &k), NF_OUT_FLOOD);
        assert_eq!(nf_out(&b, &back), 1);
        assert_eq!(nf_port(OFPP_LOCAL), 65534);
    }

    #[test]
    fn netflow_on_a_bridge_unwildcards_its_fields_and_adds_a_sink() {
        let b = bridge("actions=output:2\n");
        let plain = b.translate(&ip_key(7), 0);
        assert_eq!((plain.mask.nw_src, plain.mask.tp_src), (0, 0));
        let opts = netflow::NetflowOptions::parse_args(&["targets=127.0.0.1:2055"]).unwrap();
        let nf = Arc::new(netflow::BridgeNetflow::capturing(opts, 0));
        let before = b.config_generation();
        b.set_netflow(Some(nf.clone()));
        assert_ne!(b.config_generation(), before, "megaflows are revalidated");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(r.actions, plain.actions);
        assert_eq!(
            (
                r.mask.nw_src,
                r.mask.nw_dst,
                r.mask.tp_src,
                r.mask.tp_dst,
                r.mask.nw_tos
            ),
            (u32::MAX, u32::MAX, 0xffff, 0xffff, 0xfc)
        );
        assert_eq!(r.sinks.len(), plain.sinks.len() + 1);
        assert_eq!(nf.status().megaflows, 1);
        b.set_netflow(None);
        assert_eq!(b.translate(&ip_key(7), 0).mask, plain.mask);
    }

    fn groups(b: &Bridge, text: &str) {
        let mods: Vec<crate::GroupMod> = crate::parse_groups_file(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        b.apply_groups(&mods, 0).unwrap_or_else(|e| panic!("{e}"));
    }

    fn tcp_key(i: u32) -> FlowKey {
        let mut k = ip_key(0x0a00_0000 + i);
        k.tp_src = 1000 + (i % 50_000) as u16;
        k
    }

    #[test]
    fn all_group_runs_every_bucket_on_a_copy_and_counts_them() {
        let b = bridge("");
        groups(
            &b,
            "group_id=1,type=all,bucket=mod_dl_src:00:00:00:00:00:09,output:2,bucket=output:3\n",
        );
        b.add_flows_text("ip,actions=group:1,output:3\n", 0)
            .unwrap();
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::SetEthSrc([0, 0, 0, 0, 0, 9]),
                DpAction::Output(2),
                // The second bucket, and what follows the group, see the packet unchanged.
                DpAction::SetEthSrc([0, 0, 0, 0, 0, 1]),
                DpAction::Output(3),
                DpAction::Output(3),
            ]
        );
        for s in &r.sinks {
            s.credit(2, 200, 0, 1);
        }
        let rules = b.rules().load();
        let g = rules.group(1).unwrap();
        assert_eq!((g.stats.packets(), g.stats.bytes()), (2, 200));
        assert_eq!(g.stats.buckets(), vec![(2, 200), (2, 200)]);
        assert_eq!(rules.group_ref_count(1), 1);
        assert_eq!(
            rules.dump_group_stats(None, 1_500_000_000),
            vec![" group_id=1,duration=1.500s,ref_count=1,packet_count=2,byte_count=200,bucket0:packet_count=2,byte_count=200,bucket1:packet_count=2,byte_count=200"]
        );
    }

    #[test]
    fn indirect_group_and_a_bucket_that_pushes_a_vlan() {
        let b = bridge("");
        groups(
            &b,
            "group_id=5,type=indirect,bucket=push_vlan:0x8100,mod_vlan_vid:10,output:2\n",
        );
        b.add_flows_text("actions=group:5,output:3\n", 0).unwrap();
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 0
                },
                DpAction::SetVlanVid(10),
                DpAction::Output(2),
                DpAction::PopVlan,
                DpAction::Output(3),
            ]
        );
        // Only the bucket's last output runs (an action set), and dec_ttl before the writes;
        // the fields set back after the bucket are matched by the megaflow.
        let b2 = bridge("");
        groups(&b2, "group_id=2,type=indirect,bucket=dec_ttl,output:2\n");
        b2.add_flows_text("ip,actions=group:2,output:3\n", 0)
            .unwrap();
        let r = b2.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![
                DpAction::DecTtl,
                DpAction::Output(2),
                DpAction::SetIpTtl(64),
                DpAction::Output(3)
            ]
        );
        assert_eq!(r.mask.nw_ttl, 0xff);
        let b = bridge("");
        groups(
            &b,
            "group_id=5,type=indirect,bucket=output:2,mod_nw_dst:1.2.3.4,dec_ttl,output:3\n",
        );
        b.add_flows_text("ip,actions=group:5\n", 0).unwrap();
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            &r.actions[..3],
            &[
                DpAction::DecTtl,
                DpAction::SetIpv4Dst(0x0102_0304),
                DpAction::Output(3)
            ]
        );
    }

    #[test]
    fn port_config_stops_receiving_and_sending_and_each_change_revalidates() {
        use crate::bridge::{OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV, OFPPC_PORT_DOWN};
        let b = bridge(
            "priority=9,in_port=1,tcp,actions=output:2,output:3\n\
             priority=9,in_port=1,udp,actions=FLOOD\n\
             priority=9,in_port=1,icmp,actions=ALL\n\
             priority=8,in_port=1,actions=NORMAL\n\
             priority=1,actions=output:1\n",
        );
        let key = |proto: u8, in_port: u32| FlowKey {
            nw_proto: proto,
            in_port,
            ..ip_key(7)
        };
        let outs = |k: &FlowKey| b.translate(k, 0).actions;
        assert_eq!(outs(&key(6, 1)), [DpAction::Output(2), DpAction::Output(3)]);
        let g = b.generation();
        assert!(b.set_port_config(2, OFPPC_NO_FWD));
        assert!(
            !b.set_port_config(2, OFPPC_NO_FWD),
            "no change, no revalidation"
        );
        assert!(b.generation() > g);
        // Outputs, FLOOD, ALL and NORMAL's flood all skip port 2.
        assert_eq!(outs(&key(6, 1)), [DpAction::Output(3)]);
        assert_eq!(outs(&key(17, 1)), [DpAction::Output(3)]);
        assert_eq!(outs(&key(1, 1)), [DpAction::Output(3)]);
        assert_eq!(outs(&key(0x84, 1)), [DpAction::Output(3)]);
        // It still receives.
        assert_eq!(outs(&key(6, 2)), [DpAction::Output(1)]);
        b.set_port_config(2, OFPPC_PORT_DOWN);
        assert_eq!(outs(&key(6, 1)), [DpAction::Output(3)]);
        let r = b.translate(&key(6, 2), 0);
        assert_eq!(r.actions, [DpAction::Drop(ExecDrop::PortDown)]);
        assert_eq!(r.mask.in_port, u32::MAX);
        b.set_port_config(2, OFPPC_NO_RECV);
        assert_eq!(outs(&key(6, 2)), [DpAction::Drop(ExecDrop::PortNoRecv)]);
        assert_eq!(outs(&key(6, 1)), [DpAction::Output(2), DpAction::Output(3)]);
        // no_packet_in changes nothing (as Open vSwitch over OpenFlow 1.3).
        b.set_port_config(2, OFPPC_NO_PACKET_IN);
        assert_eq!(outs(&key(6, 2)), [DpAction::Output(1)]);
        assert_eq!(b.port_config(2), OFPPC_NO_PACKET_IN);
        // A port that leaves the bridge forgets its bits.
        b.set_ports(vec![port(1), port(3)]);
        assert_eq!(b.port_config(2), 0);
    }

    #[test]
    fn a_no_flood_port_gets_no_floods_but_all_and_outputs() {
        use crate::bridge::OFPPC_NO_FLOOD;
        let b = bridge(
            "priority=9,in_port=1,udp,actions=FLOOD\n\
             priority=9,in_port=1,icmp,actions=ALL\n\
             priority=9,in_port=1,tcp,actions=output:2\n\
             priority=8,in_port=1,actions=NORMAL\n",
        );
        let outs = |proto: u8| {
            b.translate(
                &FlowKey {
                    nw_proto: proto,
                    ..ip_key(7)
                },
                0,
            )
            .actions
        };
        assert!(b.set_port_config(2, OFPPC_NO_FLOOD));
        assert_eq!(outs(17), [DpAction::Output(3)]);
        assert_eq!(outs(0x84), [DpAction::Output(3)]);
        assert_eq!(outs(1), [DpAction::Output(2), DpAction::Output(3)]);
        assert_eq!(outs(6), [DpAction::Output(2)]);
        // It stays through a new port list, and goes when cleared.
        b.set_ports(vec![port(1), port(2), port(3)]);
        assert_eq!(outs(17), [DpAction::Output(3)]);
        b.set_port_config(2, 0);
        assert_eq!(outs(17), [DpAction::Output(2), DpAction::Output(3)]);
    }

    #[test]
    fn fast_failover_takes_the_first_live_bucket() {
        let b = bridge("");
        groups(
            &b,
            "group_id=1,type=ff,bucket=watch_port:9,output:1,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3\n\
             group_id=2,type=ff,bucket=watch_group:1,output:1,bucket=watch_port:3,output:3\n",
        );
        b.add_flows_text("in_port=1,actions=group:1\nin_port=2,actions=group:2\n", 0)
            .unwrap();
        // Port 9 is not on the bridge: not live.
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(2)]
        );
        let g = b.generation();
        assert!(b.set_port_live(2, false));
        assert!(!b.set_port_live(2, false), "no change, no revalidation");
        assert!(
            b.generation() > g,
            "a port going down revalidates megaflows"
        );
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        let mut k2 = ip_key(7);
        k2.in_port = 2;
        // Group 1 still has a live bucket, so group 2's first bucket is live.
        assert_eq!(b.translate(&k2, 0).actions, vec![DpAction::Output(1)]);
        b.set_port_live(3, false);
        assert!(b.translate(&ip_key(7), 0).actions.is_empty());
        assert!(b.translate(&k2, 0).actions.is_empty());
        b.set_port_live(2, true);
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(2)]
        );
        // The bucket taken is the one counted.
        let r = b.translate(&ip_key(7), 0);
        for s in &r.sinks {
            s.credit(1, 60, 0, 1);
        }
        assert_eq!(
            b.rules().load().group(1).unwrap().stats.buckets(),
            vec![(0, 0), (1, 60), (0, 0)]
        );
    }

    #[test]
    fn select_is_stable_symmetric_and_spreads_by_weight() {
        let text = "group_id=1,type=select,bucket=output:1,bucket=output:2,bucket=weight:4,output:3,bucket=weight:0,output:4\n";
        let (b1, b2) = (bridge(""), bridge(""));
        for b in [&b1, &b2] {
            groups(b, text);
            b.add_flows_text("actions=group:1\n", 0).unwrap();
        }
        let mut hits = [0usize; 5];
        for i in 0..3000 {
            let mut k = tcp_key(i);
            k.in_port = 9;
            let r = b1.translate(&k, 0);
            let [DpAction::Output(p)] = r.actions[..] else {
                panic!("{:?}", r.actions)
            };
            hits[p as usize] += 1;
            // Another switch instance picks the same bucket, and so does the reply.
            assert_eq!(b2.translate(&k, 0).actions, r.actions);
            let mut back = k;
            std::mem::swap(&mut back.nw_src, &mut back.nw_dst);
            std::mem::swap(&mut back.tp_src, &mut back.tp_dst);
            std::mem::swap(&mut back.dl_src, &mut back.dl_dst);
            assert_eq!(b1.translate(&back, 0).actions, r.actions);
        }
        assert_eq!(hits[4], 0, "a weight-0 bucket is never taken");
        assert!(hits[1] > 100 && hits[2] > 100, "{hits:?}");
        assert!(
            hits[3] > hits[1] + hits[2],
            "the heavier bucket gets more: {hits:?}"
        );
        // The megaflow matches what the hash read: addresses, protocol, TCP ports.
        let r = b1.translate(&tcp_key(1), 0);
        assert_eq!(
            (
                r.mask.nw_src,
                r.mask.nw_dst,
                r.mask.tp_src,
                r.mask.tp_dst,
                r.mask.nw_proto
            ),
            (u32::MAX, u32::MAX, 0xffff, 0xffff, 0xff)
        );
        assert_eq!((r.mask.dl_src, r.mask.dl_dst), ([0xff; 6], [0xff; 6]));
        // UDP ports are neither hashed nor matched.
        let mut u = tcp_key(1);
        u.nw_proto = 17;
        let r = b1.translate(&u, 0);
        assert_eq!((r.mask.tp_src, r.mask.tp_dst), (0, 0));
        // A bucket whose port is down is skipped by select too, only when watched.
        let b = bridge("");
        groups(&b, "group_id=1,type=select,bucket=watch_port:2,output:2\n");
        b.add_flows_text("actions=group:1\n", 0).unwrap();
        assert_eq!(
            b.translate(&tcp_key(1), 0).actions,
            vec![DpAction::Output(2)]
        );
        b.set_port_live(2, false);
        assert!(b.translate(&tcp_key(1), 0).actions.is_empty());
    }

    #[test]
    fn fanning_out_groups_are_bounded_like_resubmits() {
        // 30 all-groups, each with two buckets into the next: 2^30 paths, no loop. The
        // translation stops at MAX_RESUBMITS and drops, as OVS's resource check does.
        let b = bridge("");
        let mut text = String::from("group_id=30,type=all,bucket=output:2\n");
        for g in (0..30).rev() {
            let n = g + 1;
            text.push_str(&format!(
                "group_id={g},type=all,bucket=group:{n},bucket=group:{n}\n"
            ));
        }
        groups(&b, &text);
        b.add_flows_text("actions=group:0\n", 0).unwrap();
        assert!(b.translate(&ip_key(7), 0).actions.is_empty());
        // A short chain is translated in full.
        b.add_flows_text("priority=40000,actions=group:27\n", 0)
            .unwrap();
        assert_eq!(b.translate(&ip_key(7), 0).actions.len(), 8);
    }

    #[test]
    fn group_changes_revalidate_and_deleting_a_group_deletes_its_rules() {
        use crate::group::{parse_group_mod, GroupModCommand as C, GroupModFailed as F};
        let b = bridge("");
        groups(&b, "group_id=1,type=indirect,bucket=output:2\n");
        // A rule may not use a group that does not exist.
        let e = b.add_flows_text("actions=group:2\n", 0).unwrap_err();
        assert_eq!(e.error.field, "group");
        b.add_flows_text(
            "priority=5,actions=group:1\npriority=1,actions=output:3\n",
            0,
        )
        .unwrap();
        let g = b.generation();
        let m = parse_group_mod("group_id=1,type=indirect,bucket=output:3", C::Modify).unwrap();
        let r = b.apply_groups(&[m], 0).unwrap();
        assert_eq!(r.modified, 1);
        assert!(
            b.generation() > g,
            "megaflows through the group are revalidated"
        );
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        // Refusals carry the spec's code and change nothing, the good mods before included.
        let refused = |text: &str, cmd: C, code: F| {
            let before = b.generation();
            let ok = parse_group_mod("group_id=9,type=all,bucket=group:1", C::Add).unwrap();
            let m = parse_group_mod(text, cmd).unwrap();
            let e = b.apply_groups(&[ok, m], 0).unwrap_err();
            assert_eq!((e.index, e.error.code), (1, code), "{text}: {e}");
            assert_eq!(b.generation(), before, "{text}");
            assert!(b.rules().load().group(9).is_none());
        };
        refused(
            "group_id=1,type=all,bucket=output:2",
            C::Add,
            F::GroupExists,
        );
        refused(
            "group_id=7,type=all,bucket=output:2",
            C::Modify,
            F::UnknownGroup,
        );
        refused(
            "group_id=1,type=all,bucket=watch_port:2,output:2",
            C::Modify,
            F::WatchUnsupported,
        );
        refused("group_id=1,type=all,bucket=group:9", C::Modify, F::Loop);
        refused(
            "group_id=7,type=ff,bucket=watch_group:7,output:2",
            C::Add,
            F::Loop,
        );
        refused("group_id=7,type=indirect", C::Add, F::InvalidGroup);
        // Deleting the group deletes the rule that used it, and only that one.
        let del = parse_group_mod("group_id=1", C::Delete).unwrap();
        let r = b.apply_groups(std::slice::from_ref(&del), 0).unwrap();
        assert_eq!((r.removed, r.rules_removed), (1, 1));
        assert_eq!(b.dump_flows(0).len(), 1);
        assert_eq!(
            b.translate(&ip_key(7), 0).actions,
            vec![DpAction::Output(3)]
        );
        // Deleting what is not there is no error and no change.
        let g = b.generation();
        assert_eq!(b.apply_groups(&[del], 0).unwrap().removed, 0);
        assert_eq!(b.generation(), g);
    }

    #[test]
    fn lookups_after_a_rewrite_mark_the_words_they_saw_changed() {
        let nw_dst = (FlowKey {
            nw_dst: u32::MAX,
            ..FlowKey::default()
        })
        .nonzero_words();
        let in_port = (FlowKey {
            in_port: u32::MAX,
            ..FlowKey::default()
        })
        .nonzero_words();
        // No rewrite: nothing marked, however many tables.
        let b = bridge("ip,actions=resubmit(,1)\ntable=1,ip,actions=output:2\n");
        assert_eq!(b.translate(&ip_key(7), 0).rewritten, 0);
        // A rewrite and a later lookup: its word.
        let b = bridge(
            "ip,actions=mod_nw_dst:1.2.3.4,resubmit(,1)\n\
             table=1,ip,nw_dst=1.2.3.4,actions=output:2\n",
        );
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            r.actions,
            vec![DpAction::SetIpv4Dst(0x0102_0304), DpAction::Output(2)]
        );
        assert_eq!(r.rewritten, nw_dst);
        // A rewrite that no lookup follows: nothing.
        let b = bridge("ip,actions=mod_nw_dst:1.2.3.4,output:2\n");
        assert_eq!(b.translate(&ip_key(7), 0).rewritten, 0);
        // A lookup as another port (resubmit(PORT,TABLE)) sees another in_port.
        let b = bridge("ip,actions=resubmit(3,1)\ntable=1,in_port=3,actions=output:2\n");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(r.actions, vec![DpAction::Output(2)]);
        assert_eq!(r.rewritten, in_port);
        // The same value written again is no rewrite (the lookup saw the packet's own).
        let b = bridge("ip,actions=mod_nw_dst:0.0.0.7,resubmit(,1)\ntable=1,actions=output:2\n");
        assert_eq!(b.translate(&ip_key(7), 0).rewritten, 0);
    }

    /// A `ct()` that tracks nothing: the tests below follow recirculation, not tracking.
    struct Untracked;

    impl pipeline::Track for Untracked {
        fn track(
            &self,
            _pool: &mut pipeline::PacketPool,
            _pkts: &[pipeline::PacketId],
            _now_ns: u64,
            _drops: &mut [Option<ExecDrop>],
            _frags: &mut pipeline::Fragments,
        ) {
        }
        fn describe(&self) -> String {
            "ct".to_string()
        }
    }

    /// Datapath hooks whose `ct()` is [`Untracked`] and whose frozen states go to a table.
    #[derive(Default)]
    struct Recirculating(crate::recirc::RecircTable);

    impl XlateHooks for Recirculating {
        fn ct(&self, _call: &CtCall) -> Option<DpAction> {
            Some(DpAction::Ct(pipeline::Tracker(Arc::new(Untracked))))
        }
        fn freeze(&self, frozen: &Frozen) -> Option<u32> {
            self.0.freeze("br0", frozen)
        }
    }

    /// The actions of each pass of `key` through `b` (the first, then each recirculated one,
    /// `+trk`, from its frozen state, in the order the passes named them), without their `ct`
    /// and recirculation actions.
    fn passes_with(hooks: &Recirculating, b: &Bridge, key: &FlowKey) -> Vec<Vec<DpAction>> {
        let mut out = Vec::new();
        let mut todo = std::collections::VecDeque::from([(*key, None)]);
        while let Some((k, frozen)) = todo.pop_front() {
            assert!(out.len() < 8, "a recirculation loop: {out:?}");
            let start = frozen.as_ref().map_or(Start::Table0, Start::Frozen);
            let r = with_env(b, Some(hooks), |env| translate_netflow(env, &k, start).0);
            let mut sent = Vec::new();
            for a in r.actions {
                let id = match &a {
                    DpAction::Recirc(id) => Some(*id),
                    DpAction::Clone(sub) => match sub[..] {
                        [DpAction::Recirc(id)] => Some(id),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(id) = id {
                    let (_, z) = hooks.0.thaw(id).unwrap();
                    let back = FlowKey {
                        recirc_id: id,
                        ct_state: 0x21,
                        ..k
                    };
                    todo.push_back((back, Some(z)));
                } else if !matches!(a, DpAction::Ct(_)) {
                    sent.push(a);
                }
            }
            out.push(sent);
        }
        out
    }

    fn passes(flows: &str) -> Vec<Vec<DpAction>> {
        passes_with(&Recirculating::default(), &bridge(flows), &ip_key(7))
    }

    #[test]
    fn the_push_stack_goes_into_a_ct_recirculation() {
        use DpAction::Output;
        // As Open vSwitch's frozen_state: what push: left is popped after the recirculation,
        // though the register it came from was cleared before the ct.
        let flows =
            "table=0,ip,actions=load:5->reg0[],push:NXM_NX_REG0[],load:0->reg0[],ct(table=1)\n\
                     table=1,actions=pop:NXM_NX_REG2[],resubmit(,2)\n\
                     table=2,reg2=5,actions=output:2\n\
                     table=2,priority=0,actions=output:3\n";
        assert_eq!(passes(flows), vec![vec![], vec![Output(2)]]);
    }

    #[test]
    fn the_action_set_goes_into_a_ct_recirculation_and_runs_where_that_pass_ends() {
        use DpAction::Output;
        // As Open vSwitch's ct(table=N), a fork: the first pass goes on and runs the set where
        // it ends; the recirculated one starts with the set as it was at the ct.
        let written = "ip,actions=write_actions(output:2),goto_table:1\n\
                       table=1,ip,actions=ct(table=2)\n";
        assert_eq!(
            passes(&format!("{written}table=2,ip,actions=output:3\n")),
            vec![vec![Output(2)], vec![Output(3), Output(2)]]
        );
        // The resumed pipeline writes over it or clears it.
        assert_eq!(
            passes(&format!(
                "{written}table=2,ip,actions=write_actions(output:3)\n"
            )),
            vec![vec![Output(2)], vec![Output(3)]]
        );
        assert_eq!(
            passes(&format!(
                "{written}table=2,ip,actions=output:3,clear_actions\n"
            )),
            vec![vec![Output(2)], vec![Output(3)]]
        );
        // Cleared in the first pass after the ct: only the recirculated pass has it.
        assert_eq!(
            passes(
                "ip,actions=write_actions(output:2),goto_table:1\n\
                 table=1,ip,actions=ct(table=2),clear_actions\n\
                 table=2,ip,actions=output:3\n"
            ),
            vec![vec![], vec![Output(3), Output(2)]]
        );
        // Written after the ct: the first pass's alone.
        assert_eq!(
            passes(
                "ip,actions=ct(table=2),write_actions(output:2)\n\
                 table=2,ip,actions=output:3\n"
            ),
            vec![vec![Output(2)], vec![Output(3)]]
        );
    }

    #[test]
    fn the_action_set_goes_through_two_recirculations() {
        use DpAction::{Output, SetIpv4Dst};
        let first = "ip,actions=write_actions(output:2),goto_table:1\n\
                     table=1,ip,actions=ct(table=2)\n\
                     table=3,ip,actions=ct(table=4)\n\
                     table=4,ip,actions=write_actions(output:3)\n";
        assert_eq!(
            passes(&format!(
                "{first}table=2,ip,actions=write_actions(mod_nw_dst:1.2.3.4),goto_table:3\n"
            )),
            vec![
                vec![Output(2)],
                vec![SetIpv4Dst(0x0102_0304), Output(2)],
                vec![SetIpv4Dst(0x0102_0304), Output(3)],
            ]
        );
        // Cleared in the second pass: the third starts empty and runs its own.
        assert_eq!(
            passes(&format!(
                "{first}table=2,ip,actions=clear_actions,goto_table:3\n"
            )),
            vec![vec![Output(2)], vec![], vec![Output(3)]]
        );
    }

    #[test]
    fn equal_frozen_action_sets_share_a_recirculation_id() {
        let b = bridge(
            "ip,nw_dst=0.0.0.7,actions=write_actions(output:2),goto_table:1\n\
             ip,nw_dst=0.0.0.8,actions=write_actions(output:2),goto_table:1\n\
             ip,nw_dst=0.0.0.9,actions=write_actions(output:3),goto_table:1\n\
             table=1,ip,actions=ct(table=2)\n\
             table=2,ip,actions=drop\n",
        );
        let hooks = Recirculating::default();
        let mut counts = Vec::new();
        for dst in [7, 8, 7, 9] {
            passes_with(&hooks, &b, &ip_key(dst));
            counts.push(hooks.0.len());
        }
        assert_eq!(counts, [1, 1, 1, 2]);
    }

    /// The packet-ins a translation asks for: (reason, table, cookie) of each.
    fn packet_ins(actions: &[DpAction]) -> Vec<(PacketInReason, u8, u64)> {
        actions
            .iter()
            .filter_map(|a| match a {
                DpAction::Controller(to) => {
                    let c = &to.context;
                    Some((c.reason, c.table_id, c.cookie))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_controller_output_in_the_action_set_says_action_set_as_the_first_rule() {
        use PacketInReason::{Action, ActionSet, ExplicitMiss, Group};
        // Open vSwitch runs the set as the actions of the rule the translation began with:
        // its table and cookie, not those of the rule that wrote the set.
        let b = bridge(
            "cookie=0x7,ip,actions=goto_table:1\n\
             cookie=0x5,table=1,ip,actions=write_actions(controller)\n",
        );
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(packet_ins(&r.actions), [(ActionSet, 0, 0x7)]);
        // From a table-miss rule, still the set's: the miss is only an applied output's.
        let b = bridge("cookie=0x7,priority=0,actions=controller,write_actions(controller)\n");
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            packet_ins(&r.actions),
            [(ExplicitMiss, 0, 0x7), (ActionSet, 0, 0x7)]
        );
        // A controller(...) with arguments is the controller action, which a set cannot hold
        // (OVS's ofpact_is_allowed_in_actions_set); applied in a table-miss rule, a miss.
        let e = b
            .add_flows_text("ip,actions=write_actions(controller(userdata=01))\n", 0)
            .unwrap_err();
        assert!(
            e.to_string().contains("not allowed in the action set"),
            "{e}"
        );
        let b = bridge("cookie=0x7,priority=0,actions=controller(userdata=01)\n");
        assert_eq!(
            packet_ins(&b.translate(&ip_key(7), 0).actions),
            [(ExplicitMiss, 0, 0x7)]
        );
        let b = bridge("ip,actions=controller(reason=action,id=3)\n");
        assert_eq!(
            packet_ins(&b.translate(&ip_key(7), 0).actions),
            [(Action, 0, 0)]
        );
        // A group's bucket, in the set or not, says group; a rule it resubmits to says what
        // it would say there: `action`, or `action_set` while the set runs.
        let b = bridge("");
        groups(
            &b,
            "group_id=1,type=all,bucket=controller,bucket=resubmit(,2)\n",
        );
        b.add_flows_text(
            "cookie=0x3,ip,actions=group:1,write_actions(group:1)\n\
             table=2,ip,actions=controller\n",
            0,
        )
        .unwrap();
        let r = b.translate(&ip_key(7), 0);
        assert_eq!(
            packet_ins(&r.actions),
            [
                (Group, 0, 0x3),
                (Action, 2, 0),
                (Group, 0, 0x3),
                (ActionSet, 2, 0)
            ]
        );
    }

    #[test]
    fn a_recirculated_pass_runs_the_set_as_its_own_first_rule() {
        use PacketInReason::ActionSet;
        let b = bridge(
            "cookie=0x7,ip,actions=write_actions(controller),goto_table:1\n\
             cookie=0x8,table=1,ip,actions=ct(table=2)\n\
             cookie=0x9,table=2,ip,actions=goto_table:3\n\
             cookie=0xb,table=3,ip,actions=drop\n",
        );
        let pins: Vec<_> = passes_with(&Recirculating::default(), &b, &ip_key(7))
            .iter()
            .map(|p| packet_ins(p))
            .collect();
        assert_eq!(pins, [[(ActionSet, 0, 0x7)], [(ActionSet, 2, 0x9)]]);
    }

    #[test]
    fn a_controller_output_in_a_packet_out_says_packet_out() {
        use PacketInReason::PacketOut;
        // Also from a table-miss rule that its output to TABLE reaches (OVS's in_packet_out
        // holds for the whole translation).
        let b = bridge("cookie=0x7,priority=0,actions=controller\n");
        let actions = [
            Action::Controller(Box::default()),
            Action::Resubmit {
                port: None,
                table: Some(0),
            },
        ];
        let r = with_env(&b, None, |env| {
            translate_netflow(env, &ip_key(7), Start::Actions(&actions)).0
        });
        assert_eq!(
            packet_ins(&r.actions),
            [(PacketOut, 0, u64::MAX), (PacketOut, 0, 0x7)]
        );
    }
}
