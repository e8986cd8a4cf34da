//! The entries of the match-field table, in the order dump-flows prints a match (the ethertype
//! goes first as a shorthand whatever its place). NXM / OXM classes and field numbers are Open
//! vSwitch's (`include/openvswitch/meta-flow.h`).
//!
//! Adding a field is one entry here (plus its member of `FlowKey` when the datapath sees it):
//! `NAME = FieldDef::new(name, slot, width, syntax)` and the builder calls that apply
//! (`.aliases`, `.nxm`, `.maskable()`, `.prereq`, `.bits`, `.matched`, `.write`, `.dp`).
//! The table's tests check every entry's names, slot and syntax.

use super::dp::{dp, DpFmt as F, DpGroup as G, DpItem, DpWhen};
use super::{
    nxm_nx, nxm_of, onf_oxm, oxm_of, oxm_pkt, u128_to_mac, FieldDef, FieldId, Prereq as P, Slot,
    Syntax as S, Write, CT_STATE_NAMES, TCP_FLAG_NAMES, TUN_FLAG_NAMES,
};
use crate::dpaction::DpAction;
use crate::flowkey::ipproto;
use crate::key_slot;

/// Defines one `FieldId` constant per entry, numbered in order, and the table itself.
macro_rules! fields {
    ($($(#[$doc:meta])* $id:ident = $def:expr;)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[repr(u16)]
        enum Index { $($id,)* Count }
        $( $(#[$doc])* pub const $id: FieldId = FieldId(Index::$id as u16); )*
        pub(super) static FIELDS: [FieldDef; Index::Count as usize] = [$($def,)*];
    };
}

/// The datapath-flow items of the L3 slots shared by IPv4, IPv6 and the neutral `nw` group.
const fn l3_items(v4: &'static str, v6: &'static str, fmt: F) -> [DpItem; 3] {
    [
        dp(G::Ipv4, v4, fmt),
        dp(G::Ipv6, v6, fmt),
        dp(G::Nw, v4, fmt),
    ]
}

/// A 32-bit register.
const fn reg(i: u8, name: &'static str, nxm: &'static [super::Nxm]) -> FieldDef {
    FieldDef::new(name, Slot::Reg(i), 32, S::Hex)
        .nxm(nxm)
        .maskable()
        .matched(name, P::None)
        .write(Write::Context)
}

/// `xregN` (64 bits) or `xxregN` (128 bits): registers seen together.
const fn wide_reg(
    slot: Slot,
    width: u32,
    name: &'static str,
    nxm: &'static [super::Nxm],
) -> FieldDef {
    FieldDef::new(name, slot, width, S::Hex)
        .nxm(nxm)
        .maskable()
        .matched_silently()
        .write(Write::Context)
}

/// `tun_metadataN`: translation context decoded from the Geneve options, 16 bytes at most.
const fn tun_metadata(i: u8, name: &'static str, nxm: &'static [super::Nxm]) -> FieldDef {
    FieldDef::new(name, Slot::TunMetadata(i), 128, S::Hex)
        .nxm(nxm)
        .maskable()
        .matched(name, P::None)
        .write(Write::Context)
}

fields! {
    // Tunnel metadata, set by the decap nodes. Actions write it into the translation's flow
    // (`Write::Context`): it becomes the encapsulation of a later output to a tunnel port, as
    // in Open vSwitch, and is never a datapath set action of its own.
    TUN_ID = FieldDef::new("tun_id", key_slot!(tun_id), 64, S::Hex)
        .aliases(&["tunnel_id"])
        .nxm(&[nxm_nx("NXM_NX_TUN_ID", 16), oxm_of("OXM_OF_TUNNEL_ID", 38)])
        .maskable()
        .matched("tun_id", P::None)
        .dp(&[dp(G::Tunnel, "tun_id", F::Hex)])
        .write(Write::Context);
    TUN_SRC = FieldDef::new("tun_src", key_slot!(tun_src), 32, S::Ipv4)
        .nxm(&[nxm_nx("NXM_NX_TUN_IPV4_SRC", 31)])
        .maskable()
        .matched("tun_src", P::None)
        .dp(&[dp(G::Tunnel, "src", F::Ip4)])
        .write(Write::Context);
    TUN_DST = FieldDef::new("tun_dst", key_slot!(tun_dst), 32, S::Ipv4)
        .nxm(&[nxm_nx("NXM_NX_TUN_IPV4_DST", 32)])
        .maskable()
        .matched("tun_dst", P::None)
        .dp(&[dp(G::Tunnel, "dst", F::Ip4)])
        .write(Write::Context);
    TUN_TOS = FieldDef::new("tun_tos", key_slot!(tun_tos), 8, S::Decimal)
        .dp(&[dp(G::Tunnel, "tos", F::Dec)]);
    TUN_TTL = FieldDef::new("tun_ttl", key_slot!(tun_ttl), 8, S::Decimal)
        .dp(&[dp(G::Tunnel, "ttl", F::Dec)]);
    /// The outer UDP ports (no OpenFlow field; OVS keeps them in the tunnel metadata too).
    TUN_TP_SRC = FieldDef::new("tun_tp_src", key_slot!(tun_tp_src), 16, S::Decimal)
        .dp(&[dp(G::Tunnel, "tp_src", F::Dec)]);
    TUN_TP_DST = FieldDef::new("tun_tp_dst", key_slot!(tun_tp_dst), 16, S::Decimal)
        .dp(&[dp(G::Tunnel, "tp_dst", F::Dec)]);
    /// Matched and printed by name (`tun_flags=+oam`, `flags(-df+csum+key)`).
    TUN_FLAGS = FieldDef::new("tun_flags", key_slot!(tun_flags), 16, S::Flags(&TUN_FLAG_NAMES))
        .nxm(&[nxm_nx("NXM_NX_TUN_FLAGS", 104)])
        .maskable()
        .matched("tun_flags", P::None)
        .dp(&[dp(G::Tunnel, "flags", F::Flags(&TUN_FLAG_NAMES))]);
    /// Geneve options as raw TLV bytes (OVS splits them into `tun_metadata<N>`).
    TUN_OPTS = FieldDef::new("tun_opts", key_slot!(tun_opts), 256, S::Bytes)
        .maskable()
        .dp(&[dp(G::Tunnel, "geneve", F::Geneve)]);
    /// Bytes of `tun_opts` in use; printed with them.
    TUN_OPTS_LEN = FieldDef::new("tun_opts_len", key_slot!(tun_opts_len), 8, S::Decimal);
    /// Geneve options by the bridge's TLV map (`add-tlv-map`): the data of option N as a
    /// big-endian number, present or not (a match needs it present).
    TUN_METADATA0 = tun_metadata(0, "tun_metadata0", &[nxm_nx("NXM_NX_TUN_METADATA0", 40)]);
    TUN_METADATA1 = tun_metadata(1, "tun_metadata1", &[nxm_nx("NXM_NX_TUN_METADATA1", 41)]);
    TUN_METADATA2 = tun_metadata(2, "tun_metadata2", &[nxm_nx("NXM_NX_TUN_METADATA2", 42)]);
    TUN_METADATA3 = tun_metadata(3, "tun_metadata3", &[nxm_nx("NXM_NX_TUN_METADATA3", 43)]);
    TUN_METADATA4 = tun_metadata(4, "tun_metadata4", &[nxm_nx("NXM_NX_TUN_METADATA4", 44)]);
    TUN_METADATA5 = tun_metadata(5, "tun_metadata5", &[nxm_nx("NXM_NX_TUN_METADATA5", 45)]);
    TUN_METADATA6 = tun_metadata(6, "tun_metadata6", &[nxm_nx("NXM_NX_TUN_METADATA6", 46)]);
    TUN_METADATA7 = tun_metadata(7, "tun_metadata7", &[nxm_nx("NXM_NX_TUN_METADATA7", 47)]);
    TUN_METADATA8 = tun_metadata(8, "tun_metadata8", &[nxm_nx("NXM_NX_TUN_METADATA8", 48)]);
    TUN_METADATA9 = tun_metadata(9, "tun_metadata9", &[nxm_nx("NXM_NX_TUN_METADATA9", 49)]);
    TUN_METADATA10 = tun_metadata(10, "tun_metadata10", &[nxm_nx("NXM_NX_TUN_METADATA10", 50)]);
    TUN_METADATA11 = tun_metadata(11, "tun_metadata11", &[nxm_nx("NXM_NX_TUN_METADATA11", 51)]);
    TUN_METADATA12 = tun_metadata(12, "tun_metadata12", &[nxm_nx("NXM_NX_TUN_METADATA12", 52)]);
    TUN_METADATA13 = tun_metadata(13, "tun_metadata13", &[nxm_nx("NXM_NX_TUN_METADATA13", 53)]);
    TUN_METADATA14 = tun_metadata(14, "tun_metadata14", &[nxm_nx("NXM_NX_TUN_METADATA14", 54)]);
    TUN_METADATA15 = tun_metadata(15, "tun_metadata15", &[nxm_nx("NXM_NX_TUN_METADATA15", 55)]);
    TUN_METADATA16 = tun_metadata(16, "tun_metadata16", &[nxm_nx("NXM_NX_TUN_METADATA16", 56)]);
    TUN_METADATA17 = tun_metadata(17, "tun_metadata17", &[nxm_nx("NXM_NX_TUN_METADATA17", 57)]);
    TUN_METADATA18 = tun_metadata(18, "tun_metadata18", &[nxm_nx("NXM_NX_TUN_METADATA18", 58)]);
    TUN_METADATA19 = tun_metadata(19, "tun_metadata19", &[nxm_nx("NXM_NX_TUN_METADATA19", 59)]);
    TUN_METADATA20 = tun_metadata(20, "tun_metadata20", &[nxm_nx("NXM_NX_TUN_METADATA20", 60)]);
    TUN_METADATA21 = tun_metadata(21, "tun_metadata21", &[nxm_nx("NXM_NX_TUN_METADATA21", 61)]);
    TUN_METADATA22 = tun_metadata(22, "tun_metadata22", &[nxm_nx("NXM_NX_TUN_METADATA22", 62)]);
    TUN_METADATA23 = tun_metadata(23, "tun_metadata23", &[nxm_nx("NXM_NX_TUN_METADATA23", 63)]);
    TUN_METADATA24 = tun_metadata(24, "tun_metadata24", &[nxm_nx("NXM_NX_TUN_METADATA24", 64)]);
    TUN_METADATA25 = tun_metadata(25, "tun_metadata25", &[nxm_nx("NXM_NX_TUN_METADATA25", 65)]);
    TUN_METADATA26 = tun_metadata(26, "tun_metadata26", &[nxm_nx("NXM_NX_TUN_METADATA26", 66)]);
    TUN_METADATA27 = tun_metadata(27, "tun_metadata27", &[nxm_nx("NXM_NX_TUN_METADATA27", 67)]);
    TUN_METADATA28 = tun_metadata(28, "tun_metadata28", &[nxm_nx("NXM_NX_TUN_METADATA28", 68)]);
    TUN_METADATA29 = tun_metadata(29, "tun_metadata29", &[nxm_nx("NXM_NX_TUN_METADATA29", 69)]);
    TUN_METADATA30 = tun_metadata(30, "tun_metadata30", &[nxm_nx("NXM_NX_TUN_METADATA30", 70)]);
    TUN_METADATA31 = tun_metadata(31, "tun_metadata31", &[nxm_nx("NXM_NX_TUN_METADATA31", 71)]);
    TUN_METADATA32 = tun_metadata(32, "tun_metadata32", &[nxm_nx("NXM_NX_TUN_METADATA32", 72)]);
    TUN_METADATA33 = tun_metadata(33, "tun_metadata33", &[nxm_nx("NXM_NX_TUN_METADATA33", 73)]);
    TUN_METADATA34 = tun_metadata(34, "tun_metadata34", &[nxm_nx("NXM_NX_TUN_METADATA34", 74)]);
    TUN_METADATA35 = tun_metadata(35, "tun_metadata35", &[nxm_nx("NXM_NX_TUN_METADATA35", 75)]);
    TUN_METADATA36 = tun_metadata(36, "tun_metadata36", &[nxm_nx("NXM_NX_TUN_METADATA36", 76)]);
    TUN_METADATA37 = tun_metadata(37, "tun_metadata37", &[nxm_nx("NXM_NX_TUN_METADATA37", 77)]);
    TUN_METADATA38 = tun_metadata(38, "tun_metadata38", &[nxm_nx("NXM_NX_TUN_METADATA38", 78)]);
    TUN_METADATA39 = tun_metadata(39, "tun_metadata39", &[nxm_nx("NXM_NX_TUN_METADATA39", 79)]);
    TUN_METADATA40 = tun_metadata(40, "tun_metadata40", &[nxm_nx("NXM_NX_TUN_METADATA40", 80)]);
    TUN_METADATA41 = tun_metadata(41, "tun_metadata41", &[nxm_nx("NXM_NX_TUN_METADATA41", 81)]);
    TUN_METADATA42 = tun_metadata(42, "tun_metadata42", &[nxm_nx("NXM_NX_TUN_METADATA42", 82)]);
    TUN_METADATA43 = tun_metadata(43, "tun_metadata43", &[nxm_nx("NXM_NX_TUN_METADATA43", 83)]);
    TUN_METADATA44 = tun_metadata(44, "tun_metadata44", &[nxm_nx("NXM_NX_TUN_METADATA44", 84)]);
    TUN_METADATA45 = tun_metadata(45, "tun_metadata45", &[nxm_nx("NXM_NX_TUN_METADATA45", 85)]);
    TUN_METADATA46 = tun_metadata(46, "tun_metadata46", &[nxm_nx("NXM_NX_TUN_METADATA46", 86)]);
    TUN_METADATA47 = tun_metadata(47, "tun_metadata47", &[nxm_nx("NXM_NX_TUN_METADATA47", 87)]);
    TUN_METADATA48 = tun_metadata(48, "tun_metadata48", &[nxm_nx("NXM_NX_TUN_METADATA48", 88)]);
    TUN_METADATA49 = tun_metadata(49, "tun_metadata49", &[nxm_nx("NXM_NX_TUN_METADATA49", 89)]);
    TUN_METADATA50 = tun_metadata(50, "tun_metadata50", &[nxm_nx("NXM_NX_TUN_METADATA50", 90)]);
    TUN_METADATA51 = tun_metadata(51, "tun_metadata51", &[nxm_nx("NXM_NX_TUN_METADATA51", 91)]);
    TUN_METADATA52 = tun_metadata(52, "tun_metadata52", &[nxm_nx("NXM_NX_TUN_METADATA52", 92)]);
    TUN_METADATA53 = tun_metadata(53, "tun_metadata53", &[nxm_nx("NXM_NX_TUN_METADATA53", 93)]);
    TUN_METADATA54 = tun_metadata(54, "tun_metadata54", &[nxm_nx("NXM_NX_TUN_METADATA54", 94)]);
    TUN_METADATA55 = tun_metadata(55, "tun_metadata55", &[nxm_nx("NXM_NX_TUN_METADATA55", 95)]);
    TUN_METADATA56 = tun_metadata(56, "tun_metadata56", &[nxm_nx("NXM_NX_TUN_METADATA56", 96)]);
    TUN_METADATA57 = tun_metadata(57, "tun_metadata57", &[nxm_nx("NXM_NX_TUN_METADATA57", 97)]);
    TUN_METADATA58 = tun_metadata(58, "tun_metadata58", &[nxm_nx("NXM_NX_TUN_METADATA58", 98)]);
    TUN_METADATA59 = tun_metadata(59, "tun_metadata59", &[nxm_nx("NXM_NX_TUN_METADATA59", 99)]);
    TUN_METADATA60 = tun_metadata(60, "tun_metadata60", &[nxm_nx("NXM_NX_TUN_METADATA60", 100)]);
    TUN_METADATA61 = tun_metadata(61, "tun_metadata61", &[nxm_nx("NXM_NX_TUN_METADATA61", 101)]);
    TUN_METADATA62 = tun_metadata(62, "tun_metadata62", &[nxm_nx("NXM_NX_TUN_METADATA62", 102)]);
    TUN_METADATA63 = tun_metadata(63, "tun_metadata63", &[nxm_nx("NXM_NX_TUN_METADATA63", 103)]);

    // Recirculation and connection tracking.
    RECIRC_ID = FieldDef::new("recirc_id", key_slot!(recirc_id), 32, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_RECIRC_ID", 36)])
        .dp(&[dp(G::RecircId, "recirc_id", F::Hex)]);
    CT_STATE = FieldDef::new("ct_state", key_slot!(ct_state), 8, S::Flags(&CT_STATE_NAMES))
        .nxm(&[nxm_nx("NXM_NX_CT_STATE", 105)])
        .maskable()
        .matched("ct_state", P::None)
        .dp(&[dp(G::CtState, "ct_state", F::Flags(&CT_STATE_NAMES))]);
    CT_ZONE = FieldDef::new("ct_zone", key_slot!(ct_zone), 16, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_CT_ZONE", 106)])
        .matched("ct_zone", P::None)
        .dp(&[dp(G::CtZone, "ct_zone", F::Hex)]);
    CT_MARK = FieldDef::new("ct_mark", key_slot!(ct_mark), 32, S::Hex)
        .nxm(&[nxm_nx("NXM_NX_CT_MARK", 107)])
        .maskable()
        .matched("ct_mark", P::None)
        .dp(&[dp(G::CtMark, "ct_mark", F::Hex)]);
    CT_LABEL = FieldDef::new("ct_label", key_slot!(ct_label), 128, S::Hex)
        .nxm(&[nxm_nx("NXM_NX_CT_LABEL", 108)])
        .maskable()
        .dp(&[dp(G::CtLabel, "ct_label", F::Bytes)]);
    // The connection's original-direction tuple, read-only, in ovs-ofctl's printing order.
    // OVS prints `ct_tp_src` / `ct_tp_dst` only beside `ct_nw_proto` (`match_format`).
    CT_NW_SRC = FieldDef::new("ct_nw_src", key_slot!(ct_nw_src), 32, S::Ipv4)
        .nxm(&[nxm_nx("NXM_NX_CT_NW_SRC", 120)])
        .maskable()
        .prereq(P::CtV4)
        .matched("ct_nw_src", P::None)
        .dp(&[dp(G::CtTuple4, "src", F::Ip4)]);
    CT_IPV6_SRC = FieldDef::new("ct_ipv6_src", key_slot!(ct_ipv6_src), 128, S::Ipv6)
        .nxm(&[nxm_nx("NXM_NX_CT_IPV6_SRC", 122)])
        .maskable()
        .prereq(P::CtV6)
        .matched("ct_ipv6_src", P::None)
        .dp(&[dp(G::CtTuple6, "src", F::Ip6)]);
    CT_NW_DST = FieldDef::new("ct_nw_dst", key_slot!(ct_nw_dst), 32, S::Ipv4)
        .nxm(&[nxm_nx("NXM_NX_CT_NW_DST", 121)])
        .maskable()
        .prereq(P::CtV4)
        .matched("ct_nw_dst", P::None)
        .dp(&[dp(G::CtTuple4, "dst", F::Ip4)]);
    CT_IPV6_DST = FieldDef::new("ct_ipv6_dst", key_slot!(ct_ipv6_dst), 128, S::Ipv6)
        .nxm(&[nxm_nx("NXM_NX_CT_IPV6_DST", 123)])
        .maskable()
        .prereq(P::CtV6)
        .matched("ct_ipv6_dst", P::None)
        .dp(&[dp(G::CtTuple6, "dst", F::Ip6)]);
    CT_NW_PROTO = FieldDef::new("ct_nw_proto", key_slot!(ct_nw_proto), 8, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_CT_NW_PROTO", 119)])
        .prereq(P::Ct)
        .matched("ct_nw_proto", P::None)
        .dp(&[dp(G::CtTuple4, "proto", F::Dec), dp(G::CtTuple6, "proto", F::Dec)]);
    CT_TP_SRC = FieldDef::new("ct_tp_src", key_slot!(ct_tp_src), 16, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_CT_TP_SRC", 124)])
        .maskable()
        .prereq(P::Ct)
        .matched("ct_tp_src", P::CtProto)
        .dp(&[dp(G::CtTuple4, "tp_src", F::Dec), dp(G::CtTuple6, "src_port", F::Dec)]);
    CT_TP_DST = FieldDef::new("ct_tp_dst", key_slot!(ct_tp_dst), 16, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_CT_TP_DST", 125)])
        .maskable()
        .prereq(P::Ct)
        .matched("ct_tp_dst", P::CtProto)
        .dp(&[dp(G::CtTuple4, "tp_dst", F::Dec), dp(G::CtTuple6, "dst_port", F::Dec)]);

    IN_PORT = FieldDef::new("in_port", key_slot!(in_port), 32, S::Port)
        .nxm(&[nxm_of("NXM_OF_IN_PORT", 0), oxm_of("OXM_OF_IN_PORT", 0)])
        .matched("in_port", P::None)
        .dp(&[dp(G::InPort, "in_port", F::Port)]);
    /// `in_port` as `load`, `move`, `push` and `pop` see it: OpenFlow 1.0's 16-bit port number
    /// (OVS's MFF_IN_PORT; LOCAL is 0xfffe, 0xff00 and up the reserved ports). Translation
    /// context: what the rest of the translation takes for the input port.
    IN_PORT_OF10 = FieldDef::new("in_port", key_slot!(in_port), 16, S::Port)
        .nxm(&[nxm_of("NXM_OF_IN_PORT", 0)])
        .write(Write::Context);

    // Translation context: never in the datapath key.
    METADATA = FieldDef::new("metadata", Slot::Metadata, 64, S::Hex)
        .nxm(&[oxm_of("OXM_OF_METADATA", 2)])
        .maskable()
        .matched("metadata", P::None)
        .write(Write::Context);
    REG0 = reg(0, "reg0", &[nxm_nx("NXM_NX_REG0", 0)]);
    REG1 = reg(1, "reg1", &[nxm_nx("NXM_NX_REG1", 1)]);
    REG2 = reg(2, "reg2", &[nxm_nx("NXM_NX_REG2", 2)]);
    REG3 = reg(3, "reg3", &[nxm_nx("NXM_NX_REG3", 3)]);
    REG4 = reg(4, "reg4", &[nxm_nx("NXM_NX_REG4", 4)]);
    REG5 = reg(5, "reg5", &[nxm_nx("NXM_NX_REG5", 5)]);
    REG6 = reg(6, "reg6", &[nxm_nx("NXM_NX_REG6", 6)]);
    REG7 = reg(7, "reg7", &[nxm_nx("NXM_NX_REG7", 7)]);
    REG8 = reg(8, "reg8", &[nxm_nx("NXM_NX_REG8", 8)]);
    REG9 = reg(9, "reg9", &[nxm_nx("NXM_NX_REG9", 9)]);
    REG10 = reg(10, "reg10", &[nxm_nx("NXM_NX_REG10", 10)]);
    REG11 = reg(11, "reg11", &[nxm_nx("NXM_NX_REG11", 11)]);
    REG12 = reg(12, "reg12", &[nxm_nx("NXM_NX_REG12", 12)]);
    REG13 = reg(13, "reg13", &[nxm_nx("NXM_NX_REG13", 13)]);
    REG14 = reg(14, "reg14", &[nxm_nx("NXM_NX_REG14", 14)]);
    REG15 = reg(15, "reg15", &[nxm_nx("NXM_NX_REG15", 15)]);
    // `xregN` is `reg(2N)` (high half) and `reg(2N+1)`; `xxregN` is `reg(4N)` (most
    // significant) to `reg(4N+3)`, as in OVS. Matches on them print as the registers.
    XREG0 = wide_reg(Slot::XReg(0), 64, "xreg0", &[oxm_pkt("OXM_OF_PKT_REG0", 0)]);
    XREG1 = wide_reg(Slot::XReg(1), 64, "xreg1", &[oxm_pkt("OXM_OF_PKT_REG1", 1)]);
    XREG2 = wide_reg(Slot::XReg(2), 64, "xreg2", &[oxm_pkt("OXM_OF_PKT_REG2", 2)]);
    XREG3 = wide_reg(Slot::XReg(3), 64, "xreg3", &[oxm_pkt("OXM_OF_PKT_REG3", 3)]);
    XREG4 = wide_reg(Slot::XReg(4), 64, "xreg4", &[oxm_pkt("OXM_OF_PKT_REG4", 4)]);
    XREG5 = wide_reg(Slot::XReg(5), 64, "xreg5", &[oxm_pkt("OXM_OF_PKT_REG5", 5)]);
    XREG6 = wide_reg(Slot::XReg(6), 64, "xreg6", &[oxm_pkt("OXM_OF_PKT_REG6", 6)]);
    XREG7 = wide_reg(Slot::XReg(7), 64, "xreg7", &[oxm_pkt("OXM_OF_PKT_REG7", 7)]);
    XXREG0 = wide_reg(Slot::XXReg(0), 128, "xxreg0", &[nxm_nx("NXM_NX_XXREG0", 111)]);
    XXREG1 = wide_reg(Slot::XXReg(1), 128, "xxreg1", &[nxm_nx("NXM_NX_XXREG1", 112)]);
    XXREG2 = wide_reg(Slot::XXReg(2), 128, "xxreg2", &[nxm_nx("NXM_NX_XXREG2", 113)]);
    XXREG3 = wide_reg(Slot::XXReg(3), 128, "xxreg3", &[nxm_nx("NXM_NX_XXREG3", 114)]);

    // VLAN and Ethernet (ovs-ofctl prints the VLAN fields before the addresses).
    /// TPID of the outer VLAN header.
    VLAN_TPID = FieldDef::new("vlan_tpid", key_slot!(vlan_tpid), 16, S::Hex)
        .dp(&[dp(G::Vlan, "tpid", F::Hex)]);
    VLAN_TCI = FieldDef::new("vlan_tci", key_slot!(vlan_tci), 16, S::VlanTci)
        .nxm(&[nxm_of("NXM_OF_VLAN_TCI", 4)])
        .maskable()
        .matched("vlan_tci", P::None)
        .write(Write::VlanTci)
        .dp(&[dp(G::Vlan, "tci", F::Tci)]);
    /// OpenFlow 1.0's VLAN id; `vlan_tci` prints it.
    DL_VLAN = FieldDef::new("dl_vlan", key_slot!(vlan_tci), 12, S::DlVlan)
        .bits(0x0fff, 0)
        .matched_silently();
    /// OpenFlow 1.0's VLAN priority; `vlan_tci` prints it.
    DL_VLAN_PCP = FieldDef::new("dl_vlan_pcp", key_slot!(vlan_tci), 3, S::DlVlanPcp)
        .bits(0xe000, 13)
        .matched_silently();
    /// The VLAN id as `set_field` writes it (an untagged frame gets a header).
    VLAN_VID = FieldDef::new("vlan_vid", key_slot!(vlan_tci), 12, S::Decimal)
        .nxm(&[oxm_of("OXM_OF_VLAN_VID", 6)])
        .bits(0x0fff, 0)
        .write(Write::Packet(|v| DpAction::SetVlanVid(v as u16)));
    VLAN_PCP = FieldDef::new("vlan_pcp", key_slot!(vlan_tci), 3, S::Decimal)
        .nxm(&[oxm_of("OXM_OF_VLAN_PCP", 7)])
        .bits(0xe000, 13)
        .write(Write::Packet(|v| DpAction::SetVlanPcp(v as u8)));
    /// Inner TCI of a QinQ frame.
    VLAN2_TCI = FieldDef::new("vlan2_tci", key_slot!(vlan2_tci), 16, S::Hex)
        .dp(&[dp(G::Vlan2, "tci", F::Hex)]);
    ETH_SRC = FieldDef::new("eth_src", key_slot!(dl_src), 48, S::Mac)
        .aliases(&["dl_src"])
        .nxm(&[nxm_of("NXM_OF_ETH_SRC", 2), oxm_of("OXM_OF_ETH_SRC", 4)])
        .maskable()
        .matched("dl_src", P::None)
        .write(Write::Packet(|v| DpAction::SetEthSrc(u128_to_mac(v))))
        .dp(&[dp(G::Eth, "src", F::Mac)]);
    ETH_DST = FieldDef::new("eth_dst", key_slot!(dl_dst), 48, S::Mac)
        .aliases(&["dl_dst"])
        .nxm(&[nxm_of("NXM_OF_ETH_DST", 1), oxm_of("OXM_OF_ETH_DST", 3)])
        .maskable()
        .matched("dl_dst", P::None)
        .write(Write::Packet(|v| DpAction::SetEthDst(u128_to_mac(v))))
        .dp(&[dp(G::Eth, "dst", F::Mac)]);
    ETH_TYPE = FieldDef::new("eth_type", key_slot!(dl_type), 16, S::EthType)
        .aliases(&["dl_type"])
        .nxm(&[nxm_of("NXM_OF_ETH_TYPE", 3), oxm_of("OXM_OF_ETH_TYPE", 5)])
        .matched_silently()
        .print(super::Print::Shorthand("dl_type"))
        .dp(&[dp(G::EthType, "eth_type", F::EthType)]);

    // L3. `nw_src` / `nw_dst` / `nw_proto` are OpenFlow 1.0's names, which mean the ARP
    // fields on ARP; `ip_src` / `ip_dst` are IPv4 only, as `set_field` writes them.
    ARP_SPA = FieldDef::new("arp_spa", key_slot!(nw_src), 32, S::Ipv4)
        .nxm(&[nxm_of("NXM_OF_ARP_SPA", 16), oxm_of("OXM_OF_ARP_SPA", 22)])
        .maskable()
        .prereq(P::Arp)
        .matched("arp_spa", P::Arp)
        .write(Write::Packet(|v| DpAction::SetArpSpa(v as u32)))
        .dp(&[dp(G::Arp, "sip", F::Ip4)]);
    NW_SRC = FieldDef::new("nw_src", key_slot!(nw_src), 32, S::Ipv4)
        .maskable()
        .prereq(P::Ipv4OrArp)
        .matched("nw_src", P::None)
        .dp(&[dp(G::Nw, "src", F::Hex)]);
    IP_SRC = FieldDef::new("ip_src", key_slot!(nw_src), 32, S::Ipv4)
        .aliases(&["ipv4_src", "nw_src"])
        .nxm(&[nxm_of("NXM_OF_IP_SRC", 7), oxm_of("OXM_OF_IPV4_SRC", 11)])
        .maskable()
        .prereq(P::Ipv4)
        .write(Write::Packet(|v| DpAction::SetIpv4Src(v as u32)))
        .dp(&[dp(G::Ipv4, "src", F::Ip4)]);
    ARP_TPA = FieldDef::new("arp_tpa", key_slot!(nw_dst), 32, S::Ipv4)
        .nxm(&[nxm_of("NXM_OF_ARP_TPA", 17), oxm_of("OXM_OF_ARP_TPA", 23)])
        .maskable()
        .prereq(P::Arp)
        .matched("arp_tpa", P::Arp)
        .write(Write::Packet(|v| DpAction::SetArpTpa(v as u32)))
        .dp(&[dp(G::Arp, "tip", F::Ip4)]);
    NW_DST = FieldDef::new("nw_dst", key_slot!(nw_dst), 32, S::Ipv4)
        .maskable()
        .prereq(P::Ipv4OrArp)
        .matched("nw_dst", P::None)
        .dp(&[dp(G::Nw, "dst", F::Hex)]);
    IP_DST = FieldDef::new("ip_dst", key_slot!(nw_dst), 32, S::Ipv4)
        .aliases(&["ipv4_dst", "nw_dst"])
        .nxm(&[nxm_of("NXM_OF_IP_DST", 8), oxm_of("OXM_OF_IPV4_DST", 12)])
        .maskable()
        .prereq(P::Ipv4)
        .write(Write::Packet(|v| DpAction::SetIpv4Dst(v as u32)))
        .dp(&[dp(G::Ipv4, "dst", F::Ip4)]);
    IPV6_SRC = FieldDef::new("ipv6_src", key_slot!(ipv6_src), 128, S::Ipv6)
        .nxm(&[nxm_nx("NXM_NX_IPV6_SRC", 19), oxm_of("OXM_OF_IPV6_SRC", 26)])
        .maskable()
        .prereq(P::Ipv6)
        .matched("ipv6_src", P::None)
        .write(Write::Packet(|v| DpAction::SetIpv6Src(v.to_be_bytes())))
        .dp(&[dp(G::Ipv6, "src", F::Ip6)]);
    IPV6_DST = FieldDef::new("ipv6_dst", key_slot!(ipv6_dst), 128, S::Ipv6)
        .nxm(&[nxm_nx("NXM_NX_IPV6_DST", 20), oxm_of("OXM_OF_IPV6_DST", 27)])
        .maskable()
        .prereq(P::Ipv6)
        .matched("ipv6_dst", P::None)
        .write(Write::Packet(|v| DpAction::SetIpv6Dst(v.to_be_bytes())))
        .dp(&[dp(G::Ipv6, "dst", F::Ip6)]);
    IPV6_LABEL = FieldDef::new("ipv6_label", key_slot!(ipv6_label), 20, S::Hex)
        .nxm(&[nxm_nx("NXM_NX_IPV6_LABEL", 27), oxm_of("OXM_OF_IPV6_FLABEL", 28)])
        .maskable()
        .prereq(P::Ipv6)
        .matched("ipv6_label", P::None)
        .dp(&[dp(G::Ipv6, "label", F::Hex).full(0xf_ffff)])
        .write(Write::Packet(|v| DpAction::SetIpv6Label(v as u32)));
    /// OVS reads 16 bits and keeps the low byte (`arp_op=257` is `arp_op=1`), as its
    /// `flow.nw_proto` holds the opcode; the wire (NXM/OXM, 2 bytes) is `ofwire`'s concern.
    ARP_OP = FieldDef::new("arp_op", key_slot!(nw_proto), 8, S::Decimal)
        .syntax_width(16)
        .nxm(&[nxm_of("NXM_OF_ARP_OP", 15), oxm_of("OXM_OF_ARP_OP", 21)])
        .prereq(P::Arp)
        .matched("arp_op", P::Arp)
        .write(Write::Packet(|v| DpAction::SetArpOp(v as u16)))
        .dp(&[dp(G::Arp, "op", F::Dec)]);
    IP_PROTO = FieldDef::new("nw_proto", key_slot!(nw_proto), 8, S::Decimal)
        .aliases(&["ip_proto"])
        .nxm(&[nxm_of("NXM_OF_IP_PROTO", 6), oxm_of("OXM_OF_IP_PROTO", 10)])
        .prereq(P::IpOrArp)
        .matched("nw_proto", P::None)
        .dp(&l3_items("proto", "proto", F::Dec));
    /// The TOS byte's DSCP bits, unshifted (a multiple of 4).
    NW_TOS = FieldDef::new("nw_tos", key_slot!(nw_tos), 8, S::Tos)
        .nxm(&[nxm_of("NXM_OF_IP_TOS", 5)])
        .bits(0xfc, 0)
        .prereq(P::IpAny)
        .matched("nw_tos", P::None)
        .dp(&l3_items("tos", "tclass", F::Hex));
    /// DSCP shifted down (0-63); matches print as `nw_tos`.
    IP_DSCP = FieldDef::new("ip_dscp", key_slot!(nw_tos), 6, S::Decimal)
        .nxm(&[oxm_of("OXM_OF_IP_DSCP", 8)])
        .bits(0xfc, 2)
        .prereq(P::IpAny)
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetIpDscp((v as u8) << 2)));
    IP_ECN = FieldDef::new("ip_ecn", key_slot!(nw_tos), 2, S::Decimal)
        .aliases(&["nw_ecn"])
        .nxm(&[nxm_nx("NXM_NX_IP_ECN", 28), oxm_of("OXM_OF_IP_ECN", 9)])
        .bits(0x03, 0)
        .prereq(P::IpAny)
        .matched("nw_ecn", P::None)
        .write(Write::Packet(|v| DpAction::SetIpEcn(v as u8)));
    NW_TTL = FieldDef::new("nw_ttl", key_slot!(nw_ttl), 8, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_IP_TTL", 29)])
        .prereq(P::IpAny)
        .matched("nw_ttl", P::None)
        .write(Write::Packet(|v| DpAction::SetIpTtl(v as u8)))
        .dp(&l3_items("ttl", "hlimit", F::Dec));
    IP_FRAG = FieldDef::new("ip_frag", key_slot!(nw_frag), 2, S::Frag)
        .aliases(&["nw_frag"])
        .nxm(&[nxm_nx("NXM_NX_IP_FRAG", 26)])
        .maskable()
        .prereq(P::IpAny)
        .matched("nw_frag", P::None)
        .dp(&[
            dp(G::Ipv4, "frag", F::Frag),
            dp(G::Ipv6, "frag", F::Frag),
            dp(G::Nw, "frag", F::Hex),
        ]);

    // L4. `tp_src` / `tp_dst` are OpenFlow 1.0's (any of TCP, UDP, SCTP); ICMP type and code
    // live in the same slots.
    ICMP_TYPE = FieldDef::new("icmp_type", key_slot!(tp_src), 8, S::Decimal)
        .nxm(&[nxm_of("NXM_OF_ICMP_TYPE", 13), oxm_of("OXM_OF_ICMPV4_TYPE", 19)])
        .bits(0xffff, 0)
        .prereq(P::IcmpAny)
        .matched("icmp_type", P::Icmp4)
        .dp(&[dp(G::L4, "type", F::Dec).when(DpWhen::Icmp)])
        .write(Write::Packet(|v| DpAction::SetIcmpType(v as u8)))
        .write_needs(P::Icmp4);
    ICMPV6_TYPE = FieldDef::new("icmpv6_type", key_slot!(tp_src), 8, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_ICMPV6_TYPE", 21), oxm_of("OXM_OF_ICMPV6_TYPE", 29)])
        .bits(0xffff, 0)
        .prereq(P::Icmp6)
        .matched("icmp_type", P::Icmp6)
        .write(Write::Packet(|v| DpAction::SetIcmpType(v as u8)));
    TP_SRC = FieldDef::new("tp_src", key_slot!(tp_src), 16, S::Decimal)
        .maskable()
        .prereq(P::L4)
        .matched("tp_src", P::None)
        .dp(&[dp(G::L4, "src", F::Dec).when(DpWhen::NotIcmp)]);
    TCP_SRC = FieldDef::new("tcp_src", key_slot!(tp_src), 16, S::Decimal)
        .nxm(&[nxm_of("NXM_OF_TCP_SRC", 9), oxm_of("OXM_OF_TCP_SRC", 13)])
        .maskable()
        .prereq(P::Proto(ipproto::TCP))
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetTpSrc(v as u16)));
    UDP_SRC = FieldDef::new("udp_src", key_slot!(tp_src), 16, S::Decimal)
        .nxm(&[nxm_of("NXM_OF_UDP_SRC", 11), oxm_of("OXM_OF_UDP_SRC", 15)])
        .maskable()
        .prereq(P::Proto(ipproto::UDP))
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetTpSrc(v as u16)));
    SCTP_SRC = FieldDef::new("sctp_src", key_slot!(tp_src), 16, S::Decimal)
        .nxm(&[oxm_of("OXM_OF_SCTP_SRC", 17)])
        .maskable()
        .prereq(P::Proto(ipproto::SCTP))
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetTpSrc(v as u16)));
    ICMP_CODE = FieldDef::new("icmp_code", key_slot!(tp_dst), 8, S::Decimal)
        .nxm(&[nxm_of("NXM_OF_ICMP_CODE", 14), oxm_of("OXM_OF_ICMPV4_CODE", 20)])
        .bits(0xffff, 0)
        .prereq(P::IcmpAny)
        .matched("icmp_code", P::Icmp4)
        .dp(&[dp(G::L4, "code", F::Dec).when(DpWhen::Icmp)])
        .write(Write::Packet(|v| DpAction::SetIcmpCode(v as u8)))
        .write_needs(P::Icmp4);
    ICMPV6_CODE = FieldDef::new("icmpv6_code", key_slot!(tp_dst), 8, S::Decimal)
        .nxm(&[nxm_nx("NXM_NX_ICMPV6_CODE", 22), oxm_of("OXM_OF_ICMPV6_CODE", 30)])
        .bits(0xffff, 0)
        .prereq(P::Icmp6)
        .matched("icmp_code", P::Icmp6)
        .write(Write::Packet(|v| DpAction::SetIcmpCode(v as u8)));
    TP_DST = FieldDef::new("tp_dst", key_slot!(tp_dst), 16, S::Decimal)
        .maskable()
        .prereq(P::L4)
        .matched("tp_dst", P::None)
        .dp(&[dp(G::L4, "dst", F::Dec).when(DpWhen::NotIcmp)]);
    TCP_DST = FieldDef::new("tcp_dst", key_slot!(tp_dst), 16, S::Decimal)
        .nxm(&[nxm_of("NXM_OF_TCP_DST", 10), oxm_of("OXM_OF_TCP_DST", 14)])
        .maskable()
        .prereq(P::Proto(ipproto::TCP))
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetTpDst(v as u16)));
    UDP_DST = FieldDef::new("udp_dst", key_slot!(tp_dst), 16, S::Decimal)
        .nxm(&[nxm_of("NXM_OF_UDP_DST", 12), oxm_of("OXM_OF_UDP_DST", 16)])
        .maskable()
        .prereq(P::Proto(ipproto::UDP))
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetTpDst(v as u16)));
    SCTP_DST = FieldDef::new("sctp_dst", key_slot!(tp_dst), 16, S::Decimal)
        .nxm(&[oxm_of("OXM_OF_SCTP_DST", 18)])
        .maskable()
        .prereq(P::Proto(ipproto::SCTP))
        .matched_silently()
        .write(Write::Packet(|v| DpAction::SetTpDst(v as u16)));
    TCP_FLAGS = FieldDef::new("tcp_flags", key_slot!(tcp_flags), 12, S::Flags(&TCP_FLAG_NAMES))
        .nxm(&[nxm_nx("NXM_NX_TCP_FLAGS", 34), onf_oxm("ONFOXM_ET_TCP_FLAGS", 42)])
        .maskable()
        .prereq(P::Proto(ipproto::TCP))
        .matched("tcp_flags", P::None)
        .dp(&[dp(G::TcpFlags, "tcp_flags", F::Hex)]);

    // ARP hardware addresses; neighbour discovery's link-layer options share their slots.
    ND_TARGET = FieldDef::new("nd_target", key_slot!(nd_target), 128, S::Ipv6)
        .nxm(&[nxm_nx("NXM_NX_ND_TARGET", 23), oxm_of("OXM_OF_IPV6_ND_TARGET", 31)])
        .maskable()
        .prereq(P::NdTarget)
        .matched("nd_target", P::None)
        .dp(&[dp(G::Nd, "target", F::Ip6)])
        .write(Write::Packet(|v| DpAction::SetNdTarget(v.to_be_bytes())));
    ND_SLL = FieldDef::new("nd_sll", key_slot!(arp_sha), 48, S::Mac)
        .nxm(&[nxm_nx("NXM_NX_ND_SLL", 24), oxm_of("OXM_OF_IPV6_ND_SLL", 32)])
        .maskable()
        .prereq(P::NdSll)
        .matched("nd_sll", P::Icmp6)
        .dp(&[dp(G::Nd, "sll", F::Mac).when(DpWhen::Ipv6).pos(1)])
        .write(Write::Packet(|v| DpAction::SetNdSll(u128_to_mac(v))));
    ARP_SHA = FieldDef::new("arp_sha", key_slot!(arp_sha), 48, S::Mac)
        .nxm(&[nxm_nx("NXM_NX_ARP_SHA", 17), oxm_of("OXM_OF_ARP_SHA", 24)])
        .maskable()
        .prereq(P::Arp)
        .matched("arp_sha", P::None)
        .write(Write::Packet(|v| DpAction::SetArpSha(u128_to_mac(v))))
        .dp(&[dp(G::Arp, "sha", F::Mac)]);
    ND_TLL = FieldDef::new("nd_tll", key_slot!(arp_tha), 48, S::Mac)
        .nxm(&[nxm_nx("NXM_NX_ND_TLL", 25), oxm_of("OXM_OF_IPV6_ND_TLL", 33)])
        .maskable()
        .prereq(P::NdTll)
        .matched("nd_tll", P::Icmp6)
        .dp(&[dp(G::Nd, "tll", F::Mac).when(DpWhen::Ipv6).pos(1)])
        .write(Write::Packet(|v| DpAction::SetNdTll(u128_to_mac(v))));
    ARP_THA = FieldDef::new("arp_tha", key_slot!(arp_tha), 48, S::Mac)
        .nxm(&[nxm_nx("NXM_NX_ARP_THA", 18), oxm_of("OXM_OF_ARP_THA", 25)])
        .maskable()
        .prereq(P::Arp)
        .matched("arp_tha", P::None)
        .write(Write::Packet(|v| DpAction::SetArpTha(u128_to_mac(v))))
        .dp(&[dp(G::Arp, "tha", F::Mac)]);
}
