//! The match-field table: every field a rule can match or an action can write, described once,
//! as Open vSwitch's meta-flow (`include/openvswitch/meta-flow.h`) describes its fields.
//!
//! An entry ([`FieldDef`], named by a [`FieldId`] constant such as [`ETH_SRC`]) gives the
//! field's ovs-ofctl name and aliases, its NXM/OXM names with their class and field number,
//! its width, its prerequisites, whether it is maskable, where it lives (a byte range of
//! [`FlowKey`], or one of OpenFlow's registers or `metadata`), how its value is written and
//! printed in ovs-ofctl syntax ([`Syntax`], `ofctl.rs`), whether and how dump-flows prints it
//! ([`Print`]), what writing it does in the datapath ([`Write`]), and how the megaflow
//! printer shows it ([`DpItem`], `dp.rs`). The rule parser, the two printers and the megaflow
//! mask completion read this table; the per-packet path never does (it stays word loops over
//! the key). The entries themselves are in `table.rs`.
//!
//! Several entries may share key bits on purpose, as ovs-ofctl's names do: `nw_src` (IPv4 or
//! ARP), `arp_spa` and `ip_src` are one slot with three prerequisites; `tp_src`, `tcp_src`
//! and `icmp_type` are another. Within the match syntax and within the action syntax each name
//! names one entry (see the tests).

pub mod dp;
pub mod ofctl;
mod prereq;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use crate::dpaction::DpAction;
use crate::flowkey::FlowKey;

pub use dp::{dp_context, DpContext, DpFmt, DpGroup, DpItem, DpWhen};
pub use ofctl::{
    format_action_value, format_match_value, parse_action_value, parse_flags, parse_match_value,
    BadValue, Shorthand, CT_STATE_NAMES, SHORTHANDS, TCP_FLAG_NAMES, TUN_FLAG_NAMES,
};
pub use prereq::{Layer, Prereq};
pub use table::*;

/// Number of OpenFlow registers (`reg0`..`reg15`) the table describes, as in Open vSwitch.
pub const N_REGS: usize = 16;

/// One entry of the table, by index. `Copy`, comparable and hashable, so actions can hold it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u16);

impl FieldId {
    /// The entry.
    pub fn def(self) -> &'static FieldDef {
        // Ids are only made by the table's own constants and `all`: the index is in range.
        &table::FIELDS[usize::from(self.0)]
    }

    /// The canonical name (printed by actions).
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Width of the value in bits.
    pub fn width(self) -> u32 {
        self.def().width
    }

    /// All-ones value of the field's width.
    pub fn max_value(self) -> u128 {
        ones(self.width())
    }

    /// Every entry, in table order (the order dump-flows prints matches in).
    pub fn all() -> impl Iterator<Item = FieldId> {
        (0..table::FIELDS.len() as u16).map(FieldId)
    }

    /// The entry the match syntax calls `name` (`dl_src=...`): case-sensitive, ovs-ofctl
    /// names and aliases of entries usable in a match.
    pub fn by_match_name(name: &str) -> Option<FieldId> {
        static NAMES: LazyLock<HashMap<&'static str, FieldId>> = LazyLock::new(|| {
            let mut m = HashMap::new();
            for id in FieldId::all().filter(|f| f.def().in_match) {
                for n in id.def().names() {
                    m.entry(n).or_insert(id);
                }
            }
            m
        });
        NAMES.get(name).copied()
    }

    /// The entry `set_field`, `load` and `move` call `name`: case-insensitive, ovs-ofctl names,
    /// aliases and NXM/OXM names of writable entries.
    pub fn by_action_name(name: &str) -> Option<FieldId> {
        static NAMES: LazyLock<HashMap<String, FieldId>> = LazyLock::new(|| {
            let mut m = HashMap::new();
            for id in FieldId::all().filter(|f| f.def().write != Write::No) {
                let d = id.def();
                for n in d.names().chain(d.nxm.iter().map(|x| x.name)) {
                    m.entry(n.to_ascii_lowercase()).or_insert(id);
                }
            }
            m
        });
        NAMES.get(name.to_ascii_lowercase().as_str()).copied()
    }
}

impl fmt::Debug for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An NXM or OXM name of a field with its class and field number, as Open vSwitch defines them
/// (`NXM_OF_ETH_SRC` is class 0x0000 field 2; `OXM_OF_ETH_SRC` class 0x8000 field 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Nxm {
    pub name: &'static str,
    /// `oxm_class`: 0x0000 `NXM_OF_`, 0x0001 `NXM_NX_`, 0x8000 `OXM_OF_`, 0xffff experimenter.
    pub class: u16,
    pub field: u8,
    /// Experimenter id for class 0xffff (0x4f4e4600 ONF, 0x00002320 Nicira), else 0.
    pub experimenter: u32,
}

/// `NXM_OF_*` (OpenFlow 1.0 fields in Nicira's extensible match).
pub const fn nxm_of(name: &'static str, field: u8) -> Nxm {
    Nxm {
        name,
        class: 0x0000,
        field,
        experimenter: 0,
    }
}

/// `NXM_NX_*` (Nicira's own fields).
pub const fn nxm_nx(name: &'static str, field: u8) -> Nxm {
    Nxm {
        name,
        class: 0x0001,
        field,
        experimenter: 0,
    }
}

/// `OXM_OF_*` (OpenFlow 1.2+ basic class).
pub const fn oxm_of(name: &'static str, field: u8) -> Nxm {
    Nxm {
        name,
        class: 0x8000,
        field,
        experimenter: 0,
    }
}

/// `ONFOXM_ET_*` (ONF experimenter OXM).
pub const fn onf_oxm(name: &'static str, field: u8) -> Nxm {
    Nxm {
        name,
        class: 0xffff,
        field,
        experimenter: 0x4f4e_4600,
    }
}

/// `OXM_OF_PKT_REG*` (OpenFlow 1.5 packet registers, class 0x8001): OVS's `xregN`.
pub const fn oxm_pkt(name: &'static str, field: u8) -> Nxm {
    Nxm {
        name,
        class: 0x8001,
        field,
        experimenter: 0,
    }
}

/// Where a field lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Slot {
    /// A member of [`FlowKey`].
    Key(KeySlot),
    /// OpenFlow register `regN`: translation context, never seen by the datapath.
    Reg(u8),
    /// `xregN`: registers 2N (high) and 2N+1 as one 64-bit number.
    XReg(u8),
    /// `xxregN`: registers 4N (most significant) to 4N+3 as one 128-bit number.
    XXReg(u8),
    /// OpenFlow `metadata`: translation context, never seen by the datapath.
    Metadata,
    /// `tun_metadataN`: a Geneve option's data by the bridge's TLV map, decoded from the
    /// key's options at the start of a translation and encoded again on tunnel output.
    TunMetadata(u8),
}

/// Number of `tun_metadataN` fields (as in Open vSwitch).
pub const N_TUN_METADATA: usize = 64;

/// A byte range of [`FlowKey`]: one member, made by [`key_slot!`](crate::key_slot).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeySlot {
    pub offset: u16,
    pub len: u16,
    /// Wire-order bytes (MAC and IPv6 addresses, labels) rather than a host-order number.
    pub bytes: bool,
}

/// What a key member holds: a host-order number or wire-order bytes.
pub trait Member {
    const BYTES: bool;
}
impl Member for u8 {
    const BYTES: bool = false;
}
impl Member for u16 {
    const BYTES: bool = false;
}
impl Member for u32 {
    const BYTES: bool = false;
}
impl Member for u64 {
    const BYTES: bool = false;
}
impl<const N: usize> Member for [u8; N] {
    const BYTES: bool = true;
}

/// The slot of a key member; the accessor only ties the member's type to the offset.
pub const fn member<M: Member>(_: fn(&FlowKey) -> &M, offset: usize) -> Slot {
    Slot::Key(KeySlot {
        offset: offset as u16,
        len: std::mem::size_of::<M>() as u16,
        bytes: M::BYTES,
    })
}

/// `key_slot!(dl_src)`: the [`Slot`] of that member of [`FlowKey`].
#[macro_export]
macro_rules! key_slot {
    ($member:ident) => {
        $crate::field::member(
            |k: &$crate::FlowKey| &k.$member,
            ::core::mem::offset_of!($crate::FlowKey, $member),
        )
    };
}

impl KeySlot {
    /// The slot's bytes in `key`.
    pub fn of<'a>(&self, key: &'a FlowKey) -> &'a [u8] {
        let (o, n) = (usize::from(self.offset), usize::from(self.len));
        bytemuck::bytes_of(key).get(o..o + n).unwrap_or(&[])
    }

    fn of_mut<'a>(&self, key: &'a mut FlowKey) -> &'a mut [u8] {
        let (o, n) = (usize::from(self.offset), usize::from(self.len));
        bytemuck::bytes_of_mut(key)
            .get_mut(o..o + n)
            .unwrap_or(&mut [])
    }

    /// All ones over the slot's width.
    pub fn full(&self) -> u128 {
        ones(u32::from(self.len) * 8)
    }

    /// The slot as a number: host order for numbers, big-endian for bytes. Slots wider than
    /// 16 bytes (Geneve options) read as their last 16 bytes; they are printed as bytes.
    pub fn read(&self, key: &FlowKey) -> u128 {
        let b = self.of(key);
        if self.bytes {
            return b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x));
        }
        let mut buf = [0u8; 16];
        let n = b.len().min(16);
        if cfg!(target_endian = "little") {
            buf[..n].copy_from_slice(&b[..n]);
            u128::from_le_bytes(buf)
        } else {
            buf[16 - n..].copy_from_slice(&b[..n]);
            u128::from_be_bytes(buf)
        }
    }

    /// Writes the slot from a number (truncated to the slot's width).
    pub fn write(&self, key: &mut FlowKey, v: u128) {
        let bytes = self.bytes;
        let b = self.of_mut(key);
        let n = b.len().min(16);
        if bytes || cfg!(target_endian = "big") {
            let be = v.to_be_bytes();
            let start = b.len() - n;
            b[start..].copy_from_slice(&be[16 - n..]);
        } else {
            b[..n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
    }

    /// True when any bit of the slot is set.
    pub fn any(&self, key: &FlowKey) -> bool {
        self.of(key).iter().any(|b| *b != 0)
    }

    /// Sets every bit of the slot in `mask`.
    pub fn fill(&self, mask: &mut FlowKey) {
        self.of_mut(mask).iter_mut().for_each(|b| *b = 0xff);
    }
}

/// How a value is written and printed in ovs-ofctl syntax (`ofctl.rs`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Syntax {
    /// Decimal or `0x` hex in; decimal out (`masked` fields print `0xV/0xM` when partial).
    Decimal,
    /// Decimal or `0x` hex in; `0x` hex out.
    Hex,
    /// A port number or `LOCAL`.
    Port,
    /// `aa:bb:cc:dd:ee:ff`, with `/mask` when maskable.
    Mac,
    /// Dotted quad, with `/prefix` or `/dotted.mask` when maskable.
    Ipv4,
    /// IPv6 address, with `/prefix` or `/mask` when maskable.
    Ipv6,
    /// `+name-name...` or a number; printed as names when every mask bit has one.
    Flags(&'static [(&'static str, u16)]),
    /// `no`, `yes`, `first`, `later`, `not_later` over `FRAG_ANY` / `FRAG_LATER`.
    Frag,
    /// The ethertype: a number in, a shorthand (`ip`, `tcp6`, ...) or `0x%04x` out.
    EthType,
    /// The TOS byte's DSCP bits unshifted: a multiple of 4.
    Tos,
    /// `dl_vlan`: a VLAN id, or 0xffff for "no VLAN header".
    DlVlan,
    /// `dl_vlan_pcp`: a priority, implying a VLAN header.
    DlVlanPcp,
    /// `vlan_tci`: printed as `dl_vlan` / `dl_vlan_pcp` when those say it exactly.
    VlanTci,
    /// Not written in ovs-ofctl syntax (datapath-only bytes).
    Bytes,
}

/// Whether and how dump-flows prints a matched field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Print {
    /// Another entry on the same bits prints them.
    Never,
    /// As `name=value` when the match establishes the condition. Among entries on the same
    /// bits, the first in table order whose condition holds prints; the others are skipped.
    As(&'static str, Prereq),
    /// First, as a shorthand (`tcp`) or `name=0x0800` (the ethertype).
    Shorthand(&'static str),
}

/// What an action that writes the field does.
#[derive(Clone, Copy)]
pub enum Write {
    /// Actions cannot write it (matched only, or read-only).
    No,
    /// A register or `metadata`: translation context only.
    Context,
    /// A packet field: the datapath action that sets it to a value.
    Packet(fn(u128) -> DpAction),
    /// `vlan_tci`, the whole TCI: with the present bit (0x1000) the frame gets or keeps a VLAN
    /// header with that id and priority; without it, its header is removed (as in OVS).
    VlanTci,
}

impl PartialEq for Write {
    fn eq(&self, other: &Write) -> bool {
        matches!(
            (self, other),
            (Write::No, Write::No)
                | (Write::Context, Write::Context)
                | (Write::Packet(_), Write::Packet(_))
                | (Write::VlanTci, Write::VlanTci)
        )
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Write::No => "No",
            Write::Context => "Context",
            Write::Packet(_) => "Packet",
            Write::VlanTci => "VlanTci",
        })
    }
}

/// One field. Build entries with [`FieldDef::new`] and the builder methods (see `table.rs`).
#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    /// Canonical name: what actions print (`eth_src`).
    pub name: &'static str,
    /// Other ovs-ofctl names (`dl_src`).
    pub aliases: &'static [&'static str],
    /// NXM / OXM names (accepted by `set_field`, `load`, `move`).
    pub nxm: &'static [Nxm],
    /// Width of the value in bits.
    pub width: u32,
    /// Width in bits of the numbers a match's text may give: the field's `width`, except where
    /// Open vSwitch's field is wider than the bits it keeps (`arp_op`: 16 bits of syntax, the
    /// low byte kept, as OVS's `flow.nw_proto`).
    pub syntax_width: u32,
    /// Whether a match may give a `/mask`.
    pub maskable: bool,
    /// What a match must establish before the field may be used.
    pub prereq: Prereq,
    pub slot: Slot,
    /// Bits of the slot (as a number) the field covers; the value is `(slot & bits) >> shift`.
    pub bits: u128,
    pub shift: u32,
    pub syntax: Syntax,
    /// Whether rules may match on it.
    pub in_match: bool,
    pub print: Print,
    pub write: Write,
    /// What a match must establish before actions may write the field, where that is more
    /// than [`FieldDef::prereq`] (`icmp_type`: matched on ICMP and ICMPv6, as ovs-ofctl
    /// reads it, but written on ICMP only, as OVS's `MFF_ICMPV4_TYPE`).
    pub write_needs: Option<Prereq>,
    /// How the megaflow printer shows the slot, per context (empty: not shown).
    pub dp: &'static [DpItem],
}

impl FieldDef {
    /// A non-maskable, match-less, read-only field covering its whole `width`.
    pub const fn new(name: &'static str, slot: Slot, width: u32, syntax: Syntax) -> FieldDef {
        FieldDef {
            name,
            aliases: &[],
            nxm: &[],
            width,
            syntax_width: width,
            maskable: false,
            prereq: Prereq::None,
            slot,
            bits: ones(width),
            shift: 0,
            syntax,
            in_match: false,
            print: Print::Never,
            write: Write::No,
            write_needs: None,
            dp: &[],
        }
    }

    pub const fn aliases(mut self, a: &'static [&'static str]) -> FieldDef {
        self.aliases = a;
        self
    }

    pub const fn nxm(mut self, n: &'static [Nxm]) -> FieldDef {
        self.nxm = n;
        self
    }

    /// A match's text may give numbers of `bits` bits, of which the field keeps its own.
    pub const fn syntax_width(mut self, bits: u32) -> FieldDef {
        self.syntax_width = bits;
        self
    }

    pub const fn maskable(mut self) -> FieldDef {
        self.maskable = true;
        self
    }

    pub const fn prereq(mut self, p: Prereq) -> FieldDef {
        self.prereq = p;
        self
    }

    /// The field covers `bits` of its slot, its value shifted right by `shift`.
    pub const fn bits(mut self, bits: u128, shift: u32) -> FieldDef {
        self.bits = bits;
        self.shift = shift;
        self
    }

    /// Rules may match it; dump-flows prints it as `name` when `when` holds.
    pub const fn matched(mut self, name: &'static str, when: Prereq) -> FieldDef {
        self.in_match = true;
        self.print = Print::As(name, when);
        self
    }

    /// Rules may match it under its names; another entry on the same bits prints it.
    pub const fn matched_silently(mut self) -> FieldDef {
        self.in_match = true;
        self.print = Print::Never;
        self
    }

    pub const fn print(mut self, p: Print) -> FieldDef {
        self.print = p;
        self
    }

    pub const fn write(mut self, w: Write) -> FieldDef {
        self.write = w;
        self
    }

    /// Actions may write the field only where a match establishes `p`.
    pub const fn write_needs(mut self, p: Prereq) -> FieldDef {
        self.write_needs = Some(p);
        self
    }

    /// What a match must establish before actions may write the field.
    pub fn write_prereq(&self) -> Prereq {
        self.write_needs.unwrap_or(self.prereq)
    }

    pub const fn dp(mut self, items: &'static [DpItem]) -> FieldDef {
        self.dp = items;
        self
    }

    /// The name and the aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// The key slot, for fields of the packet.
    pub fn key_slot(&self) -> Option<KeySlot> {
        match self.slot {
            Slot::Key(k) => Some(k),
            _ => None,
        }
    }

    /// The field's value out of its slot's value.
    pub fn value_of(&self, slot: u128) -> u128 {
        (slot & self.bits) >> self.shift
    }

    /// The slot's value with the field set to `v` (truncated to the field).
    pub fn into_slot(&self, slot: u128, v: u128) -> u128 {
        (slot & !self.bits) | ((v << self.shift) & self.bits)
    }

    /// Whether ovs-ofctl prints the field before the protocol shorthand: `recirc_id` and the
    /// conntrack fields come first in OVS's `match_format` (`ct_state=+est+trk,ip`).
    pub fn before_shorthand(&self) -> bool {
        self.name == "recirc_id" || self.name.starts_with("ct_")
    }

    /// The megaflow layer this field belongs to (from its prerequisite).
    pub fn layer(&self) -> Layer {
        self.prereq.layer()
    }
}

/// `n` low bits set.
pub const fn ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// A MAC address as a 48-bit number.
pub fn mac_to_u128(b: [u8; 6]) -> u128 {
    b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x))
}

/// The low 48 bits of a number as a MAC address.
pub fn u128_to_mac(v: u128) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[10], b[11], b[12], b[13], b[14], b[15]]
}

/// Key bits of every slot some field of `layer` lives in, and the bits a megaflow must also
/// match when any of them was consulted.
struct LayerMasks {
    l3: FlowKey,
    l4: FlowKey,
    l3_needs: FlowKey,
    l4_needs: FlowKey,
}

static LAYER_MASKS: LazyLock<LayerMasks> = LazyLock::new(|| {
    let mut m = LayerMasks {
        l3: FlowKey::default(),
        l4: FlowKey::default(),
        l3_needs: FlowKey::default(),
        l4_needs: FlowKey::default(),
    };
    for id in FieldId::all() {
        let d = id.def();
        if let Some(k) = d.key_slot() {
            match d.layer() {
                Layer::L3 => k.fill(&mut m.l3),
                Layer::L4 => k.fill(&mut m.l4),
                Layer::None => {}
            }
        }
    }
    // L3 fields mean nothing without the ethertype; L4 fields without the protocol and the
    // fragment bits (a later fragment has no L4 header, its L4 fields are zero).
    or_field(&mut m.l3_needs, ETH_TYPE);
    or_field(&mut m.l4_needs, IP_PROTO);
    or_field(&mut m.l4_needs, IP_FRAG);
    m
});

/// Sets the field's bits in a key used as a mask.
pub fn or_field(mask: &mut FlowKey, f: FieldId) {
    let d = f.def();
    if let Some(k) = d.key_slot() {
        let cur = k.read(mask);
        k.write(mask, cur | d.bits);
    }
}

/// Completes a megaflow mask so that the megaflow never matches another protocol: the
/// prerequisites of every consulted field are added (the ethertype for L3 fields, plus the
/// IP protocol and fragment bits for L4 fields). Word loops over masks built once from the
/// table; called once per upcall.
pub fn complete_megaflow_mask(mut m: FlowKey) -> FlowKey {
    let lm = &*LAYER_MASKS;
    if !m.masked(&lm.l4).is_zero() {
        m.or_assign(&lm.l4_needs);
    }
    if !m.masked(&lm.l3).is_zero() || !m.masked(&lm.l4).is_zero() {
        m.or_assign(&lm.l3_needs);
    }
    m
}

#[cfg(test)]
mod tests;
