//! OXM (OpenFlow Extensible Match, OpenFlow 1.3.5 section 7.2.2) to and from vecswitch's
//! [`Match`]. Which fields exist, their OXM / NXM class and field numbers, widths, masks and
//! prerequisites all come from the match-field table (`pipeline::field`); this module only
//! knows the TLV layout, the few fields whose wire size is not their width rounded up to bytes,
//! and `vlan_vid`'s `OFPVID_PRESENT` bit (which is the `vlan_tci` CFI bit, as in Open vSwitch).

use std::collections::HashMap;
use std::sync::LazyLock;

use openflow::{Field, Fields, Match};
use pipeline::field::{FieldDef, Nxm, Prereq, Print, Slot, N_REGS, VLAN_PCP, VLAN_TCI, VLAN_VID};
use pipeline::flowkey::KEY_WORDS;

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};

/// `ofp_match.type` for OXM.
pub const OFPMT_OXM: u16 = 1;
/// `OFPVID_PRESENT`: a VLAN header is there (the CFI bit of `vlan_tci`).
pub const OFPVID_PRESENT: u16 = 0x1000;
const OXM_CLASS_BASIC: u16 = 0x8000;
const OXM_CLASS_EXPERIMENTER: u16 = 0xffff;
/// The `vlan_tci` bits `vlan_vid` covers on the wire (id plus present bit).
const VID_BITS: u16 = 0x1fff;
const PCP_BITS: u16 = 0xe000;

/// One decoded OXM TLV.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OxmField {
    pub field: Field,
    pub nxm: Nxm,
    pub value: u128,
    /// `None` when the TLV has no mask.
    pub mask: Option<u128>,
}

/// The wire size of a field's value: its width in bytes, except where Open vSwitch's field
/// is wider than vecswitch's (`arp_op`, `ct_state`, `ipv6_label` / `OXM_OF_IPV6_FLABEL`) or
/// OpenFlow 1.0's 16-bit port number (`NXM_OF_IN_PORT`).
fn value_len(def: &FieldDef, nxm: &Nxm) -> usize {
    match nxm.name {
        "NXM_OF_IN_PORT" | "NXM_OF_ARP_OP" | "OXM_OF_ARP_OP" => 2,
        "NXM_NX_CT_STATE" | "NXM_NX_IPV6_LABEL" | "OXM_OF_IPV6_FLABEL" => 4,
        "OXM_OF_VLAN_VID" => 2,
        _ => def.width.div_ceil(8) as usize,
    }
}

/// What a TLV header names: the field, its NXM/OXM entry and its value's wire size.
#[derive(Clone, Copy)]
struct Known {
    field: Field,
    nxm: Nxm,
    len: usize,
}

/// The field an OXM / NXM header names: the first entry of the table with that class, field
/// number and experimenter (an index built once; decoding a FLOW_MOD scanned the whole
/// table per TLV).
fn lookup(class: u16, field: u8, experimenter: u32) -> Option<Known> {
    static BY_NUMBER: LazyLock<HashMap<(u16, u8, u32), Known>> = LazyLock::new(|| {
        let mut m = HashMap::new();
        for id in Field::all() {
            for n in id.def().nxm {
                m.entry((n.class, n.field, n.experimenter))
                    .or_insert(Known {
                        field: id,
                        nxm: *n,
                        len: value_len(id.def(), n),
                    });
            }
        }
        m
    });
    BY_NUMBER.get(&(class, field, experimenter)).copied()
}

/// Whether a match establishes what `field` needs: its prerequisite and, for fields that
/// share bits with others (`icmp_type` vs `icmpv6_type`, `arp_spa` vs `ipv4_src`), the
/// condition under which it is the field those bits mean.
fn usable(field: Field, m: &Match) -> bool {
    let d = field.def();
    let (v, k) = (&m.value.key, &m.mask.key);
    if !d.prereq.holds(v, k) {
        return false;
    }
    match d.print {
        Print::As(_, Prereq::CtProto) => true,
        Print::As(_, cond) => cond.holds(v, k),
        _ => true,
    }
}

/// Reads one OXM TLV (header, optional experimenter id, value, optional mask).
pub fn decode_tlv(r: &mut Reader) -> Result<OxmField, OfpError> {
    let class = r.u16()?;
    let fh = r.u8()?;
    let len = usize::from(r.u8()?);
    let (field, has_mask) = (fh >> 1, fh & 1 == 1);
    let mut body = Reader::new(r.bytes(len)?, E::BadMatchLen, "oxm.length");
    let experimenter = if class == OXM_CLASS_EXPERIMENTER {
        body.u32()?
    } else {
        0
    };
    let Some(Known {
        field: id,
        nxm,
        len: n,
    }) = lookup(class, field, experimenter)
    else {
        return err(E::BadMatchField, "oxm.field");
    };
    if body.remaining() != if has_mask { 2 * n } else { n } {
        return err(E::BadMatchLen, "oxm.length");
    }
    let be = |b: &[u8]| b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x));
    let mut value = be(body.bytes(n)?);
    let mut mask = if has_mask {
        Some(be(body.bytes(n)?))
    } else {
        None
    };
    if nxm.name == "NXM_OF_IN_PORT" {
        // OpenFlow 1.0's reserved ports 0xff00.. are 1.1's 0xffffff00...
        if value >= 0xff00 {
            value += 0xffff_0000;
        }
    }
    let max = if id == VLAN_VID {
        u128::from(VID_BITS)
    } else {
        id.max_value()
    };
    if value > max {
        return err(E::BadMatchValue, "oxm.value");
    }
    if let Some(m) = mask.as_mut() {
        if !id.def().maskable && id != VLAN_VID {
            return err(E::BadMatchMask, "oxm.mask");
        }
        if *m > max {
            return err(E::BadMatchMask, "oxm.mask");
        }
        value &= *m;
    }
    Ok(OxmField {
        field: id,
        nxm,
        value,
        mask,
    })
}

/// Writes one OXM TLV.
pub fn encode_tlv(f: &OxmField, out: &mut Vec<u8>) {
    let n = value_len(f.field.def(), &f.nxm);
    let exp = if f.nxm.class == OXM_CLASS_EXPERIMENTER {
        4
    } else {
        0
    };
    let len = exp + if f.mask.is_some() { 2 * n } else { n };
    out.put_u16(f.nxm.class);
    out.put_u8((f.field_number() << 1) | u8::from(f.mask.is_some()));
    out.put_u8(len as u8);
    if exp != 0 {
        out.put_u32(f.nxm.experimenter);
    }
    let put = |out: &mut Vec<u8>, v: u128| out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
    put(out, f.value);
    if let Some(m) = f.mask {
        put(out, m);
    }
}

/// The 32-bit OXM header of `field` under `nxm` (the form TABLE_FEATURES lists fields in):
/// class, field number, has-mask bit and payload length.
pub fn oxm_header(field: Field, nxm: &Nxm, masked: bool) -> u32 {
    let n = value_len(field.def(), nxm) * if masked { 2 } else { 1 };
    (u32::from(nxm.class) << 16) | (u32::from(nxm.field) << 9) | (u32::from(masked) << 8) | n as u32
}

/// The OXM (or, for what OXM lacks, NXM) number a field is written with: the OXM basic class
/// when it has one; fields only in an experimenter class have none here.
pub fn preferred_nxm(field: Field) -> Option<Nxm> {
    let d = field.def();
    d.nxm
        .iter()
        .find(|n| n.class == OXM_CLASS_BASIC)
        .or_else(|| d.nxm.iter().find(|n| n.class != OXM_CLASS_EXPERIMENTER))
        .copied()
}

impl OxmField {
    fn field_number(&self) -> u8 {
        self.nxm.field
    }
}

/// The `vlan_tci` bits `vlan_vid` / `vlan_pcp` cover, or the field's own bits of its slot.
fn covered(m: &Match, f: Field) -> u128 {
    let tci = u128::from(m.mask.key.vlan_tci);
    if f == VLAN_VID {
        tci & u128::from(VID_BITS)
    } else if f == VLAN_PCP {
        tci & u128::from(PCP_BITS)
    } else {
        let d = f.def();
        m.mask.slot(d.slot) & d.bits
    }
}

/// Adds one TLV to a match, checking its prerequisite against what came before it (the spec
/// wants prerequisites earlier in the list) and refusing a field whose bits an earlier one
/// already matched (the same field twice, or `vlan_vid` and `NXM_OF_VLAN_TCI`), as Open
/// vSwitch does.
fn apply(m: &mut Match, f: &OxmField) -> Result<(), OfpError> {
    if covered(m, f.field) != 0 {
        return err(E::BadMatchDupField, "oxm.field");
    }
    if f.field == VLAN_VID {
        // An exact OFPVID_NONE is "no VLAN header": the whole TCI is zero, as the text
        // parser has `vlan_tci=0`.
        let mask = match f.mask {
            Some(x) => x as u16,
            None if f.value == 0 => 0xffff,
            None => VID_BITS,
        };
        let k = &mut m.value.key;
        k.vlan_tci = (k.vlan_tci & !mask) | (f.value as u16 & mask);
        m.mask.key.vlan_tci |= mask;
        return Ok(());
    }
    if f.field == VLAN_PCP {
        let present = OFPVID_PRESENT;
        if m.value.key.vlan_tci & present == 0 || m.mask.key.vlan_tci & present == 0 {
            return err(E::BadMatchPrereq, "oxm.vlan_pcp");
        }
        m.value.key.vlan_tci = (m.value.key.vlan_tci & !PCP_BITS) | ((f.value as u16) << 13);
        m.mask.key.vlan_tci |= PCP_BITS;
        return Ok(());
    }
    if !usable(f.field, m) {
        return err(E::BadMatchPrereq, "oxm.prereq");
    }
    let d = f.field.def();
    match f.mask {
        Some(mask) => {
            m.mask.set(f.field, mask);
            m.value.set(f.field, f.value & mask);
        }
        None => {
            // Exact: every bit of the field's slot range, as the text parser sets it.
            let cur = m.mask.slot(d.slot);
            m.mask.set_slot(d.slot, cur | d.bits);
            m.value.set(f.field, f.value);
        }
    }
    Ok(())
}

/// Reads an `ofp_match` (type, length, OXM TLVs, padding to 8 bytes) into a [`Match`].
pub fn decode_match(r: &mut Reader) -> Result<Match, OfpError> {
    let ty = r.u16()?;
    let len = usize::from(r.u16()?);
    if ty != OFPMT_OXM {
        return err(E::BadMatchType, "ofp_match.type");
    }
    if len < 4 {
        return err(E::BadMatchLen, "ofp_match.length");
    }
    let fields = Reader::new(r.bytes(len - 4)?, E::BadMatchLen, "ofp_match.length");
    r.skip((8 - len % 8) % 8)?;
    match_from_tlvs(fields)
}

/// A [`Match`] from a run of OXM TLVs.
pub fn match_from_tlvs(mut fields: Reader) -> Result<Match, OfpError> {
    let mut m = Match::default();
    while !fields.is_empty() {
        let f = decode_tlv(&mut fields)?;
        apply(&mut m, &f)?;
    }
    Ok(m)
}

/// Bit `i` of a [`Fields`]' word map: key word `i`, then the register pairs, `metadata`
/// and the presence of `tun_metadata`.
const REG_WORDS: usize = KEY_WORDS;
const METADATA_WORD: usize = REG_WORDS + N_REGS / 2;
const TUN_MD_WORD: usize = METADATA_WORD + 1;
const _: () = assert!(TUN_MD_WORD < 64);

/// The words of a [`Fields`] (as in [`word_map`]) a slot lies in.
fn slot_words(slot: Slot) -> u64 {
    let reg = |i: usize| 1u64 << (REG_WORDS + (i % N_REGS) / 2);
    match slot {
        Slot::Key(k) => {
            let (first, last) = (
                usize::from(k.offset) / 8,
                (usize::from(k.offset) + usize::from(k.len).max(1) - 1) / 8,
            );
            (first..=last.min(KEY_WORDS - 1)).fold(0, |w, i| w | 1 << i)
        }
        Slot::Reg(i) => reg(usize::from(i)),
        Slot::XReg(i) => (0..2).fold(0, |w, k| w | reg(usize::from(i) * 2 + k)),
        Slot::XXReg(i) => (0..4).fold(0, |w, k| w | reg(usize::from(i) * 4 + k)),
        Slot::Metadata => 1 << METADATA_WORD,
        Slot::TunMetadata(_) => 1 << TUN_MD_WORD,
    }
}

/// The words of `f` with a bit set.
fn word_map(f: &Fields) -> u64 {
    let mut w = 0u64;
    for (i, x) in f.key.words().iter().enumerate() {
        w |= u64::from(*x != 0) << i;
    }
    for (i, pair) in f.regs.chunks(2).enumerate() {
        w |= u64::from(pair.iter().any(|r| *r != 0)) << (REG_WORDS + i);
    }
    w |= u64::from(f.metadata != 0) << METADATA_WORD;
    w | u64::from(f.tun_md.present != 0) << TUN_MD_WORD
}

/// A field as [`match_to_tlvs`] writes it: the NXM/OXM entry it is written with in one pass
/// (`None` for `vlan_vid`, which stands for the VLAN fields).
struct Writable {
    id: Field,
    nxm: Option<Nxm>,
}

/// One pass of [`match_to_tlvs`]: its fields in table order, and for each word of a
/// [`Fields`] (as in [`word_map`]) the positions of the fields whose slot lies in it.
struct Pass {
    fields: Vec<Writable>,
    by_word: Vec<Vec<u16>>,
}

/// The passes of [`match_to_tlvs`] (OXM basic, then the others), with `vlan_vid` standing
/// for the VLAN fields in the first (built once: a dump-flows of 100k rules spent 40 % of
/// its time walking the whole field table twice per rule).
fn passes() -> &'static [Pass; 2] {
    static PASSES: LazyLock<[Pass; 2]> = LazyLock::new(|| {
        [true, false].map(|basic| {
            let fields: Vec<Writable> = Field::all()
                .filter_map(|id| {
                    if id == VLAN_TCI || id == VLAN_PCP || (id == VLAN_VID && !basic) {
                        return None;
                    }
                    let nxm = id.def().nxm.iter().find(|n| {
                        let is_basic =
                            n.class == OXM_CLASS_BASIC || n.class == OXM_CLASS_EXPERIMENTER;
                        is_basic == basic
                    });
                    match (id == VLAN_VID, nxm) {
                        (true, _) => Some(Writable { id, nxm: None }),
                        (false, Some(n)) => Some(Writable { id, nxm: Some(*n) }),
                        (false, None) => None,
                    }
                })
                .collect();
            let mut by_word = vec![Vec::new(); 64];
            for (i, w) in fields.iter().enumerate() {
                let words = slot_words(w.id.def().slot);
                for (b, list) in by_word.iter_mut().enumerate() {
                    if words & (1 << b) != 0 {
                        list.push(i as u16);
                    }
                }
            }
            Pass { fields, by_word }
        })
    });
    &PASSES
}

/// The TLVs that say `m`: OXM basic fields first (in the table's order, so prerequisites come
/// first), then Nicira extensions for what OXM has no field for. A match on bits no field
/// can carry (raw Geneve options) is refused.
pub fn match_to_tlvs(m: &Match) -> Result<Vec<OxmField>, OfpError> {
    let mut out = Vec::new();
    let mut left = m.mask.clone();
    // Only the fields in the words the mask has bits in: the others match nothing.
    let matched = word_map(&m.mask);
    let mut picked: Vec<u16> = Vec::new();
    for pass in passes() {
        picked.clear();
        let mut words = matched;
        while words != 0 {
            let b = words.trailing_zeros() as usize;
            words &= words - 1;
            picked.extend_from_slice(&pass.by_word[b]);
        }
        picked.sort_unstable();
        picked.dedup();
        for w in picked
            .iter()
            .filter_map(|i| pass.fields.get(usize::from(*i)))
        {
            let id = w.id;
            let Some(nxm) = w.nxm else {
                vlan_tlvs(m, &mut out);
                left.key.vlan_tci = 0;
                continue;
            };
            let d = id.def();
            let field_mask = left.slot(d.slot) & d.bits;
            if field_mask == 0 || !usable(id, m) {
                continue;
            }
            let full = m.mask.slot(d.slot) & d.bits;
            let exact = full == d.bits;
            if !exact && !d.maskable {
                continue;
            }
            let mask = m.mask.get(id);
            out.push(OxmField {
                field: id,
                nxm,
                value: m.value.get(id),
                mask: (!exact).then_some(mask),
            });
            let cur = left.slot(d.slot);
            left.set_slot(d.slot, cur & !d.bits);
        }
    }
    // `tun_metadataN` stays present in `left` once matched; its bits are what count.
    let tun_md_left = left.tun_md.iter().any(|(_, v)| v != 0);
    left.tun_md = Default::default();
    if !left.is_zero() || tun_md_left {
        return err(E::BadMatchField, "match has a field with no OXM or NXM");
    }
    Ok(out)
}

/// `vlan_tci` as `OXM_OF_VLAN_VID` (with `OFPVID_PRESENT`) and `OXM_OF_VLAN_PCP`, or as
/// `NXM_OF_VLAN_TCI` when OXM cannot say it (a partial priority mask, a priority without a
/// tag).
fn vlan_tlvs(m: &Match, out: &mut Vec<OxmField>) {
    let (tv, tm) = (m.value.key.vlan_tci, m.mask.key.vlan_tci);
    if tm == 0 {
        return;
    }
    let nxm_of = |id: Field, class: u16| id.def().nxm.iter().find(|n| n.class == class).copied();
    // No VLAN header (the present bit matched as zero): the other bits are zero too.
    let none = tm & OFPVID_PRESENT != 0 && tv & OFPVID_PRESENT == 0;
    let tm = if none && tm & VID_BITS == VID_BITS {
        VID_BITS
    } else {
        tm
    };
    let vid_mask = tm & VID_BITS;
    let pcp_mask = tm & PCP_BITS;
    let oxm_ok = pcp_mask == 0
        || (pcp_mask == PCP_BITS && tm & OFPVID_PRESENT != 0 && tv & OFPVID_PRESENT != 0);
    let (Some(vid), Some(pcp), Some(tci), true) = (
        nxm_of(VLAN_VID, OXM_CLASS_BASIC),
        nxm_of(VLAN_PCP, OXM_CLASS_BASIC),
        nxm_of(VLAN_TCI, 0),
        oxm_ok,
    ) else {
        if let Some(tci) = nxm_of(VLAN_TCI, 0) {
            out.push(OxmField {
                field: VLAN_TCI,
                nxm: tci,
                value: u128::from(tv),
                mask: (tm != 0xffff).then_some(u128::from(tm)),
            });
        }
        return;
    };
    let _ = tci;
    if vid_mask != 0 {
        out.push(OxmField {
            field: VLAN_VID,
            nxm: vid,
            value: u128::from(tv & vid_mask),
            mask: (vid_mask != VID_BITS).then_some(u128::from(vid_mask)),
        });
    }
    if pcp_mask != 0 {
        out.push(OxmField {
            field: VLAN_PCP,
            nxm: pcp,
            value: u128::from(tv >> 13),
            mask: None,
        });
    }
}

/// Writes `m` as an `ofp_match` (OXM, padded to 8 bytes).
pub fn encode_match(m: &Match, out: &mut Vec<u8>) -> Result<(), OfpError> {
    let tlvs = match_to_tlvs(m)?;
    let start = out.len();
    out.put_u16(OFPMT_OXM);
    out.put_u16(0);
    for t in &tlvs {
        encode_tlv(t, out);
    }
    let len = out.len() - start;
    out.set_u16(start + 2, len as u16);
    out.pad8_from(start);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(flow: &str) -> Match {
        let spec = openflow::parse_flow(flow).unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        let mut out = Vec::new();
        encode_match(&spec.matches, &mut out).unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        assert_eq!(out.len() % 8, 0);
        let mut r = Reader::new(&out, E::BadMatchLen, "t");
        let back = decode_match(&mut r).unwrap_or_else(|e| unreachable!("{flow}: {e}"));
        assert!(r.is_empty());
        assert_eq!(back, spec.matches, "{flow}");
        back
    }

    #[test]
    fn matches_round_trip() {
        for f in [
            "in_port=1,actions=drop",
            "tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=drop",
            "udp6,ipv6_dst=fe80::1/64,udp_src=53,actions=drop",
            "icmp,icmp_type=8,icmp_code=0,actions=drop",
            "icmp6,icmp_type=135,nd_target=fe80::1,nd_sll=00:11:22:33:44:55,actions=drop",
            "arp,arp_spa=10.0.0.1,arp_op=1,arp_sha=00:11:22:33:44:55,actions=drop",
            "dl_vlan=100,dl_vlan_pcp=3,actions=drop",
            "dl_src=00:11:22:33:44:55/ff:ff:ff:00:00:00,actions=drop",
            "metadata=0x5/0xff,reg3=0x7,actions=drop",
            "ip,nw_tos=16,nw_ecn=1,nw_ttl=5,ip_frag=no,actions=drop",
            "tcp,tcp_flags=+syn-ack,actions=drop",
            "tun_id=0x42,tun_src=1.2.3.4,actions=drop",
            "vlan_tci=0x1000/0x1000,actions=drop",
            "vlan_tci=0,actions=drop",
            "ipv6,ipv6_label=0x12345,actions=drop",
        ] {
            round_trip(f);
        }
    }

    /// Fields (and values) that establish a prerequisite.
    fn establishing(p: Prereq) -> Vec<(Field, u128)> {
        use pipeline::field::{CT_STATE, ETH_TYPE, ICMPV6_TYPE, IP_PROTO};
        let (ip, ip6, arp) = ((ETH_TYPE, 0x0800), (ETH_TYPE, 0x86dd), (ETH_TYPE, 0x0806));
        let nd = |t| vec![ip6, (IP_PROTO, 58), (ICMPV6_TYPE, t)];
        let est = (CT_STATE, 0x22);
        match p {
            Prereq::None | Prereq::CtProto => vec![],
            Prereq::Ipv4 | Prereq::IpAny | Prereq::Ipv4OrArp | Prereq::IpOrArp => vec![ip],
            Prereq::Ipv6 => vec![ip6],
            Prereq::Arp => vec![arp],
            Prereq::L4 => vec![ip, (IP_PROTO, 6)],
            Prereq::Proto(n) => vec![ip, (IP_PROTO, u128::from(n))],
            Prereq::IcmpAny | Prereq::Icmp4 => vec![ip, (IP_PROTO, 1)],
            Prereq::Icmp6 => vec![ip6, (IP_PROTO, 58)],
            Prereq::NdTarget | Prereq::NdSll => nd(135),
            Prereq::NdTll => nd(136),
            Prereq::Ct => vec![est],
            Prereq::CtV4 => vec![est, ip],
            Prereq::CtV6 => vec![est, ip6],
        }
    }

    fn set_exact(m: &mut Match, f: Field, v: u128) {
        let d = f.def();
        m.value.set(f, v);
        let cur = m.mask.slot(d.slot);
        m.mask.set_slot(d.slot, cur | d.bits);
    }

    /// For every entry of the match-field table with an OXM or NXM number, a match on it,
    /// exact and (where maskable) masked, after the fields its prerequisite needs.
    fn every_field_cases() -> Vec<(&'static str, Match)> {
        let mut cases = Vec::new();
        for id in Field::all() {
            let d = id.def();
            // IN_PORT_OF10 is the actions' view of in_port; a match carries IN_PORT.
            let skip = [VLAN_TCI, VLAN_VID, VLAN_PCP, pipeline::field::IN_PORT_OF10];
            if d.nxm.is_empty() || skip.contains(&id) {
                continue;
            }
            let mut m = Match::default();
            for (f, v) in establishing(d.prereq) {
                set_exact(&mut m, f, v);
            }
            let v = (0x5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5au128 & id.max_value()).max(1);
            let mut exact = m.clone();
            set_exact(&mut exact, id, v);
            cases.push((d.name, exact));
            if d.maskable {
                let mut masked = m.clone();
                let mask = id.max_value() & 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
                masked.mask.set(id, mask);
                masked.value.set(id, v & mask);
                cases.push((d.name, masked));
            }
        }
        cases
    }

    /// Every entry of the match-field table with an OXM or NXM number goes to the wire and
    /// back, exact and (where maskable) masked, after the fields its prerequisite needs.
    #[test]
    fn every_field_with_an_oxm_or_nxm_round_trips() {
        let cases = every_field_cases();
        for (name, case) in &cases {
            let mut out = Vec::new();
            encode_match(case, &mut out).unwrap_or_else(|e| unreachable!("{name}: {e}"));
            let mut r = Reader::new(&out, E::BadMatchLen, "t");
            let back = decode_match(&mut r).unwrap_or_else(|e| unreachable!("{name}: {e}"));
            assert_eq!(back, *case, "{name}");
        }
        assert!(cases.len() > 60, "{} cases", cases.len());
    }

    /// What `match_to_tlvs` gave when it read every field of the table for every match: the
    /// index of the fields it may skip must not change a single TLV.
    fn tlvs_by_table_scan(m: &Match) -> Vec<OxmField> {
        let mut out = Vec::new();
        let mut left = m.mask.clone();
        for basic in [true, false] {
            for id in Field::all().filter(|id| *id != VLAN_TCI && *id != VLAN_PCP) {
                if id == VLAN_VID {
                    if basic {
                        vlan_tlvs(m, &mut out);
                        left.key.vlan_tci = 0;
                    }
                    continue;
                }
                let d = id.def();
                let Some(nxm) = d.nxm.iter().find(|n| {
                    (n.class == OXM_CLASS_BASIC || n.class == OXM_CLASS_EXPERIMENTER) == basic
                }) else {
                    continue;
                };
                let full = m.mask.slot(d.slot) & d.bits;
                if left.slot(d.slot) & d.bits == 0
                    || !usable(id, m)
                    || (full != d.bits && !d.maskable)
                {
                    continue;
                }
                out.push(OxmField {
                    field: id,
                    nxm: *nxm,
                    value: m.value.get(id),
                    mask: (full != d.bits).then_some(m.mask.get(id)),
                });
                let cur = left.slot(d.slot);
                left.set_slot(d.slot, cur & !d.bits);
            }
        }
        out
    }

    #[test]
    fn skipping_unmatched_fields_writes_the_same_tlvs() {
        let mut cases = every_field_cases();
        for f in [
            "in_port=1,dl_vlan=5,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=drop",
            "arp,arp_spa=10.0.0.1,arp_op=1,reg0=1,reg15=2,xreg3=7,actions=drop",
            "vlan_tci=0x1000/0x1000,metadata=0x5/0xff,ct_state=+trk,actions=drop",
            "ipv6,ipv6_src=fe80::1,ipv6_label=0x12345,xxreg1=0x1234,actions=drop",
            "tun_id=0x42,tun_src=1.2.3.4,tun_metadata3=0x55,actions=drop",
        ] {
            let spec = openflow::parse_flow(f).unwrap_or_else(|e| unreachable!("{f}: {e}"));
            cases.push(("flow", spec.matches));
        }
        for (name, m) in &cases {
            let fast = match_to_tlvs(m).unwrap_or_else(|e| unreachable!("{name}: {e}"));
            assert_eq!(fast, tlvs_by_table_scan(m), "{name}");
        }
    }

    #[test]
    fn prerequisites_and_duplicates_are_refused() {
        // OXM_OF_TCP_DST (class 0x8000, field 14) with no eth_type / ip_proto before it.
        let tlv = [0x80, 0x00, 14 << 1, 2, 0, 80];
        let e = match_from_tlvs(Reader::new(&tlv, E::BadMatchLen, "t")).err();
        assert_eq!(e.map(|e| e.code.type_code()), Some((4, 9)));
        // eth_type twice.
        let tlv = [0x80, 0, 5 << 1, 2, 8, 0, 0x80, 0, 5 << 1, 2, 8, 0];
        let e = match_from_tlvs(Reader::new(&tlv, E::BadMatchLen, "t")).err();
        assert_eq!(e.map(|e| e.code), Some(E::BadMatchDupField));
        // vlan_vid = OFPVID_NONE, then NXM_OF_VLAN_TCI on the same bits (found by fuzzing).
        let tlv = [0x80, 0, 6 << 1, 2, 0, 0, 0, 0, 4 << 1, 2, 0, 2];
        let e = match_from_tlvs(Reader::new(&tlv, E::BadMatchLen, "t")).err();
        assert_eq!(e.map(|e| e.code), Some(E::BadMatchDupField));
        // A bad length, an unknown field, a mask on eth_type.
        for (tlv, code) in [
            (&[0x80u8, 0, 5 << 1, 3, 8, 0, 0][..], E::BadMatchLen),
            (&[0x80, 0, 120 << 1, 2, 8, 0][..], E::BadMatchField),
            (
                &[0x80, 0, (5 << 1) | 1, 4, 8, 0, 0xff, 0xff][..],
                E::BadMatchMask,
            ),
        ] {
            let e = match_from_tlvs(Reader::new(tlv, E::BadMatchLen, "t")).err();
            assert_eq!(e.map(|e| e.code), Some(code), "{tlv:?}");
        }
    }

    #[test]
    fn vlan_vid_carries_the_present_bit() {
        let spec = openflow::parse_flow("dl_vlan=10,actions=drop").unwrap_or_default();
        let tlvs = match_to_tlvs(&spec.matches).unwrap_or_default();
        assert_eq!(tlvs.len(), 1);
        assert_eq!(tlvs[0].field, VLAN_VID);
        assert_eq!(tlvs[0].value, 0x1000 | 10);
        assert_eq!(tlvs[0].mask, None);
        // A pcp without a present vid before it.
        let tlv = [0x80, 0, 7 << 1, 1, 3];
        let e = match_from_tlvs(Reader::new(&tlv, E::BadMatchLen, "t")).err();
        assert_eq!(e.map(|e| e.code), Some(E::BadMatchPrereq));
    }
}
