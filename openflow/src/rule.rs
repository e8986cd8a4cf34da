//! The data model of a rule: what it matches ([`Match`] over [`Fields`], the packet key plus the
//! translation context registers and metadata), what it does ([`Action`]), a whole rule as
//! written in a flow mod ([`FlowSpec`]) and an installed rule with its counters ([`Rule`],
//! which the classifier holds and the rule set manages). Parsing lives in `parse`, printing
//! in `print`.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pipeline::field::Slot;
use pipeline::flowkey::hash_words;
use pipeline::{FlowKey, StatsSink};

use crate::tlv::TunMetadata;

/// Number of registers (`reg0`..`reg15`), 32 bits each as in Open vSwitch; the match-field
/// table has one entry per register.
pub const N_REGS: usize = pipeline::field::N_REGS;
/// Number of OpenFlow tables (0..=254; 255 means "all tables" on the wire).
pub const N_TABLES: usize = 255;
/// Priority of a rule that does not say (OpenFlow's `OFP_DEFAULT_PRIORITY`).
pub const DEFAULT_PRIORITY: u16 = 32768;
/// The bridge's own port (`LOCAL`), defined once with the megaflow printer that names it.
pub use pipeline::field::dp::OFPP_LOCAL;

/// Everything a rule can match: the packet's key and the translation context.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Fields {
    pub key: FlowKey,
    pub regs: [u32; N_REGS],
    pub metadata: u64,
    /// `tun_metadataN`, decoded from the key's Geneve options by the bridge's TLV map.
    pub tun_md: TunMetadata,
}

impl Fields {
    /// Context fields zeroed, as at the start of a translation.
    pub fn from_key(key: &FlowKey) -> Fields {
        Fields {
            key: *key,
            ..Fields::default()
        }
    }

    /// `self & mask`.
    #[inline]
    pub fn masked(&self, mask: &Fields) -> Fields {
        let mut regs = [0u32; N_REGS];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = self.regs[i] & mask.regs[i];
        }
        let tun_md = if self.tun_md.present & mask.tun_md.present == 0 {
            TunMetadata::default()
        } else {
            self.tun_md.masked(&mask.tun_md)
        };
        Fields {
            key: self.key.masked(&mask.key),
            regs,
            metadata: self.metadata & mask.metadata,
            tun_md,
        }
    }

    /// OR `other` into `self` (mask union).
    pub fn or_assign(&mut self, other: &Fields) {
        self.key.or_assign(&other.key);
        for (r, o) in self.regs.iter_mut().zip(other.regs) {
            *r |= o;
        }
        self.metadata |= other.metadata;
        if other.tun_md.present != 0 {
            self.tun_md.or_assign(&other.tun_md);
        }
    }

    /// `self & other`.
    pub fn and(&self, other: &Fields) -> Fields {
        self.masked(other)
    }

    /// True when no bit is set.
    pub fn is_zero(&self) -> bool {
        self.key.is_zero()
            && self.regs.iter().all(|r| *r == 0)
            && self.metadata == 0
            && self.tun_md.present == 0
    }

    /// True when every bit of `self` is also set in `other` (as masks: `self` is the less
    /// specific).
    pub fn is_subset_of(&self, other: &Fields) -> bool {
        self.masked(other) == *self
    }

    /// The value of a slot of the table (a key member, a register or `metadata`) as a number.
    pub fn slot(&self, slot: Slot) -> u128 {
        match slot {
            Slot::Key(k) => k.read(&self.key),
            Slot::Reg(i) => u128::from(self.regs[usize::from(i) % N_REGS]),
            Slot::XReg(i) => self.wide_reg(usize::from(i) * 2, 2),
            Slot::XXReg(i) => self.wide_reg(usize::from(i) * 4, 4),
            Slot::Metadata => u128::from(self.metadata),
            Slot::TunMetadata(i) => self.tun_md.get(i),
        }
    }

    /// Writes a slot (truncated to its width).
    pub fn set_slot(&mut self, slot: Slot, v: u128) {
        match slot {
            Slot::Key(k) => k.write(&mut self.key, v),
            Slot::Reg(i) => self.regs[usize::from(i) % N_REGS] = v as u32,
            Slot::XReg(i) => self.set_wide_reg(usize::from(i) * 2, 2, v),
            Slot::XXReg(i) => self.set_wide_reg(usize::from(i) * 4, 4, v),
            Slot::Metadata => self.metadata = v as u64,
            // Writing a field makes it present (a match on it needs the option there).
            Slot::TunMetadata(i) => self.tun_md.set(i, v),
        }
    }

    /// Registers `first..first + n` as one number, the first most significant.
    fn wide_reg(&self, first: usize, n: usize) -> u128 {
        (first..first + n).fold(0u128, |a, i| (a << 32) | u128::from(self.regs[i % N_REGS]))
    }

    fn set_wide_reg(&mut self, first: usize, n: usize, v: u128) {
        for k in 0..n {
            self.regs[(first + k) % N_REGS] = (v >> (32 * (n - 1 - k))) as u32;
        }
    }

    /// Reads a field.
    pub fn get(&self, field: Field) -> u128 {
        let d = field.def();
        d.value_of(self.slot(d.slot))
    }

    /// Writes a field (the value is truncated to the field's width); its other slot bits stay.
    pub fn set(&mut self, field: Field, v: u128) {
        let d = field.def();
        if field == pipeline::field::IN_PORT_OF10 {
            // OpenFlow 1.0's reserved ports (0xff00 and up) are the 32-bit ones.
            let p = (v & 0xffff) as u32;
            self.key.in_port = if p >= 0xff00 { p | 0xffff_0000 } else { p };
            return;
        }
        let cur = self.slot(d.slot);
        self.set_slot(d.slot, d.into_slot(cur, v));
    }

    /// Marks `bits` of a field as consulted (in a mask).
    pub fn or_field(&mut self, field: Field, bits: u128) {
        let cur = self.get(field);
        self.set(field, cur | bits);
    }

    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.key
            .words()
            .iter()
            .copied()
            .chain(self.regs.chunks(2).map(|c| {
                let hi = c.get(1).copied().unwrap_or(0);
                u64::from(c[0]) | (u64::from(hi) << 32)
            }))
            .chain(std::iter::once(self.metadata))
            .chain(std::iter::once(self.tun_md.present))
            // Only the fields present: equal fields hash equal, and no cost without them.
            .chain(
                self.tun_md
                    .iter()
                    .flat_map(|(_, v)| [v as u64, (v >> 64) as u64]),
            )
    }
}

impl Hash for Fields {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(hash_words(self.words()));
    }
}

/// A rule's match: `value` holds only bits that are set in `mask`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Hash)]
pub struct Match {
    pub value: Fields,
    pub mask: Fields,
}

impl Match {
    /// The match that matches everything.
    pub fn catch_all() -> Match {
        Match::default()
    }

    /// True when `f` is matched.
    #[inline]
    pub fn matches(&self, f: &Fields) -> bool {
        f.masked(&self.mask) == self.value
    }

    /// True when every packet `other` matches is matched by `self` as well, i.e. `other` is at
    /// least as specific (the OpenFlow rule for non-strict modify and delete).
    pub fn covers(&self, other: &Match) -> bool {
        // The catch-all (dump-flows, del-flows without a match) covers every rule: say so
        // without building two masked copies per rule.
        if self.mask.is_zero() {
            return self.value.is_zero();
        }
        self.mask.is_subset_of(&other.mask) && other.value.masked(&self.mask) == self.value
    }

    /// Merges `other` into `self`; `Err(())` when they disagree on a bit both constrain.
    pub(crate) fn merge(&mut self, other: &Match) -> Result<(), ()> {
        let common = self.mask.and(&other.mask);
        if self.value.masked(&common) != other.value.masked(&common) {
            return Err(());
        }
        self.value.or_assign(&other.value);
        self.mask.or_assign(&other.mask);
        Ok(())
    }

    /// True when the match establishes the prerequisite.
    pub(crate) fn holds(&self, p: Prereq) -> bool {
        p.holds(&self.value.key, &self.mask.key)
    }

    // Protocol predicates used by prerequisite checks.
    pub(crate) fn is_ipv6(&self) -> bool {
        self.holds(Prereq::Ipv6)
    }
    pub(crate) fn is_arp(&self) -> bool {
        self.holds(Prereq::Arp)
    }
    pub(crate) fn proto_is(&self, p: u8) -> bool {
        self.holds(Prereq::Proto(p))
    }
}

/// A field that actions can write (`set_field`, `load`, `move`) or read (`move`): an entry of
/// the match-field table (`pipeline::field`) whose `write` is not `No`.
pub use pipeline::field::FieldId as Field;
pub(crate) use pipeline::field::{ones, Prereq};

/// A bit range of a field, `field[start..end]` in the syntax (inclusive end).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct FieldRef {
    pub field: Field,
    pub start: u32,
    pub n_bits: u32,
}

impl FieldRef {
    /// The whole field.
    pub fn whole(field: Field) -> FieldRef {
        FieldRef {
            field,
            start: 0,
            n_bits: field.width(),
        }
    }

    pub fn is_whole(&self) -> bool {
        self.start == 0 && self.n_bits == self.field.width()
    }

    /// The bits of the field this range covers.
    pub fn bit_mask(&self) -> u128 {
        ones(self.n_bits) << self.start
    }

    pub fn read(&self, f: &Fields) -> u128 {
        (f.get(self.field) >> self.start) & ones(self.n_bits)
    }

    /// Writes `v` into the range, keeping the field's other bits.
    pub fn write(&self, f: &mut Fields, v: u128) {
        let m = self.bit_mask();
        let cur = f.get(self.field);
        f.set(self.field, (cur & !m) | ((v << self.start) & m));
    }
}

/// One OpenFlow action (or instruction: `goto_table`, `write_metadata`).
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub enum Action {
    /// `output:N` or a bare port number.
    Output(u32),
    /// Back out of the input port.
    InPort,
    /// The L2 learning switch.
    Normal,
    /// Every port except the input port and ports marked no-flood.
    Flood,
    /// Every port except the input port.
    All,
    /// The bridge's own port, if it has one.
    Local,
    /// `controller` / `controller:MAX_LEN` / `controller(key=value,...)`, kept as written
    /// in ovs-ofctl's printed form; there is no controller connection to send to.
    Controller(Box<ControllerArgs>),
    /// `set_field:VALUE->FIELD` and the `mod_*` shorthands.
    SetField {
        field: Field,
        value: u128,
    },
    /// `load:VALUE->FIELD[a..b]`.
    Load {
        dst: FieldRef,
        value: u128,
    },
    /// `move:SRC[a..b]->DST[c..d]`.
    Move {
        src: FieldRef,
        dst: FieldRef,
    },
    /// `push:FIELD[a..b]`: the bits onto translation's stack (NXAST_STACK_PUSH).
    StackPush(FieldRef),
    /// `pop:FIELD[a..b]`: the top of the stack into the bits; nothing on an empty stack.
    StackPop(FieldRef),
    /// `push_vlan:ETHERTYPE`.
    PushVlan(u16),
    /// `pop_vlan` / `strip_vlan`.
    PopVlan,
    DecTtl,
    /// `dec_ttl(ID,...)`: `dec_ttl` naming the controllers told of an expired TTL
    /// (NXAST_DEC_TTL_CNT_IDS); connections are all controller 0, so others hear nothing.
    DecTtlIds(Vec<u16>),
    /// `resubmit(port,table)`: a missing port means the packet's in_port, a missing table the
    /// current table.
    Resubmit {
        port: Option<u32>,
        table: Option<u8>,
    },
    /// Continue in a later table after this rule's actions; always last.
    GotoTable(u8),
    WriteMetadata {
        value: u64,
        mask: u64,
    },
    /// Opaque bytes, ignored by translation.
    Note(Vec<u8>),
    /// `ct(...)`: connection tracking.
    Ct(Box<crate::ct::CtAction>),
    /// `group:N`: the group's buckets (see `group.rs`); the group must exist.
    Group(u32),
    /// `write_actions(...)`: the actions join the packet's action set (OpenFlow 1.3 §5.10),
    /// which runs when translation ends; only [`Action::allowed_in_action_set`] ones.
    WriteActions(Vec<Action>),
    /// `clear_actions`: empties the packet's action set.
    ClearActions,
}

impl Action {
    /// Whether the action may be written to the action set (Open vSwitch's
    /// `ofpact_is_allowed_in_actions_set`, for the actions vecswitch has).
    pub fn allowed_in_action_set(&self) -> bool {
        crate::group::in_action_set(self)
    }
}

/// The actions of a list with those inside `write_actions` in its place (OVS's
/// `OFPACT_FOR_EACH_FLATTENED`): what out_port, out_group and group checks look at. OVS also
/// descends into `clone` and `ct`; vecswitch has no `clone`, and a `ct`'s `exec` holds only
/// field writes, so `write_actions` is the one nesting that can hide an output or a group.
pub fn flattened(actions: &[Action]) -> impl Iterator<Item = &Action> {
    actions.iter().flat_map(|a| match a {
        Action::WriteActions(v) => v.iter(),
        a => std::slice::from_ref(a).iter(),
    })
}

/// The arguments of `controller(...)`, checked as ovs-ofctl checks them.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct ControllerArgs {
    pub max_len: u16,
    /// `action`, `no_match`, `invalid_ttl`, ... (None: OVS's default, `action`).
    pub reason: Option<String>,
    pub id: u16,
    pub userdata: Vec<u8>,
    pub pause: bool,
    pub meter_id: Option<u32>,
}

impl ControllerArgs {
    /// Whether this is a plain output to the controller (`controller`, `controller:MAX_LEN`,
    /// `controller(max_len=N)`), which Open vSwitch keeps as an output (OFPACT_OUTPUT): no
    /// reason but `action`, no id, userdata, pause or meter. Only that one may be in an
    /// action set or bucket, and its packet-in says where it ran (group, action set).
    pub fn is_output(&self) -> bool {
        self.reason.as_deref().is_none_or(|r| r == "action")
            && self.id == 0
            && self.userdata.is_empty()
            && !self.pause
            && self.meter_id.is_none()
    }
}

impl Default for ControllerArgs {
    fn default() -> ControllerArgs {
        ControllerArgs {
            max_len: u16::MAX,
            reason: None,
            id: 0,
            userdata: Vec::new(),
            pause: false,
            meter_id: None,
        }
    }
}

/// A rule as written in an add-flow / mod-flows / del-flows request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FlowSpec {
    /// `None` means "every table" (mod/del); add-flow fills in table 0.
    pub table: Option<u8>,
    pub priority: u16,
    pub cookie: u64,
    /// Set for mod/del when the request filters on `cookie=VALUE/MASK`.
    pub cookie_mask: Option<u64>,
    /// mod/del/dump filter `out_port=`: only rules whose actions output to this port.
    pub out_port: Option<u32>,
    /// mod/del/dump filter `out_group=`: only rules whose actions use this group (`None`:
    /// OFPG_ANY, no filter). With `out_port` a rule must pass both, as in OVS.
    pub out_group: Option<u32>,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    /// OpenFlow 1.4's eviction importance (`importance=N`), kept and printed.
    pub importance: u16,
    /// `send_flow_rem`, `check_overlap`, `reset_counts`, `no_packet_counts`,
    /// `no_byte_counts`: [`FLOW_MOD_FLAGS`] bits.
    pub flags: u16,
    pub matches: Match,
    pub actions: Vec<Action>,
}

/// `reset_counts`: a modify restarts the rules' packet and byte counts, and so does an add
/// that replaces an identical rule (same table, priority and match).
pub const RESET_COUNTS: u16 = 4;
/// Not a wire flag (never stored, printed or sent): an add that replaces an identical rule
/// takes over its packet and byte counts unless `reset_counts` is set, as an OpenFlow 1.2+
/// add does in Open vSwitch. The OpenFlow 1.3 decoder sets it; without it an add restarts
/// the counts, as OVS does for an OpenFlow 1.0 or 1.1 add (`ovs-ofctl add-flow`'s default,
/// which the local socket's verbs follow).
pub const ADD_KEEPS_COUNTS: u16 = 1 << 15;
/// `check_overlap`: an add is refused when a rule of its priority overlaps it.
pub const CHECK_OVERLAP: u16 = 2;

/// The flow-mod flags by name, in the order ovs-ofctl prints them (OFPUTIL_FF_*).
pub const FLOW_MOD_FLAGS: [(&str, u16); 5] = [
    ("send_flow_rem", 1),
    ("check_overlap", CHECK_OVERLAP),
    ("reset_counts", RESET_COUNTS),
    ("no_packet_counts", 8),
    ("no_byte_counts", 16),
];

impl Default for FlowSpec {
    fn default() -> FlowSpec {
        FlowSpec {
            table: Some(0),
            priority: DEFAULT_PRIORITY,
            cookie: 0,
            cookie_mask: None,
            out_port: None,
            out_group: None,
            idle_timeout: 0,
            hard_timeout: 0,
            importance: 0,
            flags: 0,
            matches: Match::catch_all(),
            actions: Vec::new(),
        }
    }
}

/// What a flow mod does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlowModCommand {
    Add,
    Modify,
    ModifyStrict,
    Delete,
    DeleteStrict,
}

/// One request to change the rule set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FlowMod {
    pub command: FlowModCommand,
    pub spec: FlowSpec,
}

/// A rule's counters, shared by every snapshot and every megaflow translated through it.
/// The megaflows push their sums into them (see `MegaflowCache::push_stats`), never per
/// packet.
#[derive(Debug, Default)]
pub struct RuleStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Last time a packet hit the rule (0: never), for `idle_timeout`.
    used_ns: AtomicU64,
}

impl RuleStats {
    /// Packets credited so far.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// Bytes credited so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Last time a packet hit the rule (0: never).
    pub fn used_ns(&self) -> u64 {
        self.used_ns.load(Ordering::Relaxed)
    }

    /// Counts restarted (`reset_counts`), the last-used time kept (idle timeouts).
    pub fn restarted(&self) -> RuleStats {
        RuleStats {
            used_ns: AtomicU64::new(self.used_ns()),
            ..RuleStats::default()
        }
    }
}

impl StatsSink for RuleStats {
    fn credit(&self, packets: u64, bytes: u64, _tcp_flags: u16, used_ns: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.used_ns.fetch_max(used_ns, Ordering::Relaxed);
    }
}

/// An installed rule.
#[derive(Debug)]
pub struct Rule {
    /// Install sequence number: unique, and the tie-break between equal priorities.
    pub id: u64,
    /// The rule as added (its `table` is always `Some`).
    pub spec: FlowSpec,
    pub stats: Arc<RuleStats>,
    /// When the rule was added (modify keeps it).
    pub created_ns: u64,
    /// When the rule was added or last modified (`hard_age` counts from it).
    pub modified_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_at_least_as_specific() {
        let mut general = Match::default();
        general.mask.key.nw_dst = 0xffff_ff00;
        general.value.key.nw_dst = 0x0a00_0000;
        let mut specific = general.clone();
        specific.mask.key.nw_dst = 0xffff_ffff;
        specific.value.key.nw_dst = 0x0a00_0005;
        assert!(general.covers(&specific));
        assert!(!specific.covers(&general));
        specific.value.key.nw_dst = 0x0b00_0005;
        assert!(!general.covers(&specific));
    }

    #[test]
    fn field_ranges_read_and_write() {
        let mut f = Fields::default();
        let r = FieldRef {
            field: pipeline::field::REG1,
            start: 8,
            n_bits: 8,
        };
        r.write(&mut f, 0x1ab);
        assert_eq!(f.regs[1], 0xab00);
        assert_eq!(r.read(&f), 0xab);
        use pipeline::field::{ETH_SRC, VLAN_PCP, VLAN_VID};
        f.set(VLAN_PCP, 5);
        f.set(VLAN_VID, 100);
        assert_eq!(f.key.vlan_tci, (5 << 13) | 100);
        f.set(ETH_SRC, 0x0102_0304_0506);
        assert_eq!(f.key.dl_src, [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.get(ETH_SRC), 0x0102_0304_0506);
    }
}
