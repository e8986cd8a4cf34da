//! OpenFlow 1.0's `ofp_match` (40 bytes: wildcard bits, then every field in place) to and
//! from vecswitch's [`Match`], as Open vSwitch 3.1's `ofputil_match_from_ofp10_match` and
//! `ofputil_match_to_ofp10_match` do it: unknown wildcard bits are ignored, a source or
//! destination wildcard count of 32 or more wildcards the whole address, `dl_vlan` 0xffff
//! means "no VLAN header", and `nw_tos` is the DSCP bits. Decoding then drops the fields whose
//! prerequisites the match does not establish (`ofputil_normalize_match`), as OVS does, rather
//! than refusing them. Encoding says what 1.0 can: any other field of a rule (IPv6,
//! registers, metadata, tunnel, conntrack, ...) is left out of it, as OVS does for a
//! controller that speaks the standard 1.0 format.

use openflow::{Field, Match};
use pipeline::field::{
    ETH_DST, ETH_SRC, ETH_TYPE, IN_PORT, IP_DSCP, IP_DST, IP_PROTO, IP_SRC, TP_DST, TP_SRC,
    VLAN_TCI,
};
use pipeline::flowkey::ipproto;

use crate::buf::{Put, Reader};
use crate::error::OfpError;

/// Bytes of `ofp_match`.
pub const MATCH_LEN: usize = 40;

/// `OFPFW10_*` wildcard bits.
pub mod wc {
    pub const IN_PORT: u32 = 1 << 0;
    pub const DL_VLAN: u32 = 1 << 1;
    pub const DL_SRC: u32 = 1 << 2;
    pub const DL_DST: u32 = 1 << 3;
    pub const DL_TYPE: u32 = 1 << 4;
    pub const NW_PROTO: u32 = 1 << 5;
    pub const TP_SRC: u32 = 1 << 6;
    pub const TP_DST: u32 = 1 << 7;
    pub const NW_SRC_SHIFT: u32 = 8;
    pub const NW_DST_SHIFT: u32 = 14;
    pub const DL_VLAN_PCP: u32 = 1 << 20;
    pub const NW_TOS: u32 = 1 << 21;
    /// Every defined bit.
    pub const ALL: u32 = (1 << 22) - 1;
}

/// `OFP_VLAN_NONE`: `dl_vlan` of a frame without a VLAN header.
pub const OFP10_VLAN_NONE: u16 = 0xffff;
const VLAN_CFI: u16 = 0x1000;
const VLAN_VID_MASK: u16 = 0x0fff;
const VLAN_PCP_MASK: u16 = 0xe000;
const ETH_TYPE_IP: u16 = 0x0800;
const ETH_TYPE_ARP: u16 = 0x0806;
const ETH_TYPE_RARP: u16 = 0x8035;
/// An 802.3 frame's `dl_type` (OVS's `FLOW_DL_TYPE_NONE`).
const DL_TYPE_NONE: u16 = 0x05ff;

/// A 16-bit OpenFlow 1.0 port number as a 32-bit one (reserved ports 0xff00.. become
/// 0xffffff00..).
pub fn port_from_16(p: u16) -> u32 {
    if p >= 0xff00 {
        u32::from(p) | 0xffff_0000
    } else {
        u32::from(p)
    }
}

/// A 32-bit port number in 16 bits; `None` for a number 1.0 cannot say.
pub fn port_to_16(p: u32) -> Option<u16> {
    if p >= 0xffff_ff00 {
        Some((p & 0xffff) as u16)
    } else if p < 0xff00 {
        Some(p as u16)
    } else {
        None
    }
}

/// The netmask a wildcard bit count means.
fn netmask(bits: u32) -> u32 {
    let n = bits & 0x3f;
    if n >= 32 {
        0
    } else {
        u32::MAX << n
    }
}

/// The wildcard bit count of a netmask (its trailing zeros, as OVS counts them).
fn wcbits(mask: u32) -> u32 {
    if mask == 0 {
        32
    } else {
        mask.trailing_zeros()
    }
}

fn set(m: &mut Match, f: Field, value: u128, mask: u128) {
    m.mask.set(f, mask);
    m.value.set(f, value & mask);
}

/// Reads an `ofp_match`. Only a short buffer is refused (with the reader's length code).
pub fn decode_match(r: &mut Reader) -> Result<Match, OfpError> {
    decode_match_as(r, true)
}

/// [`decode_match`], normalized (what a FLOW_MOD or a request says) or not (a FLOW reply,
/// which Open vSwitch prints as it was sent).
pub fn decode_match_as(r: &mut Reader, normalize: bool) -> Result<Match, OfpError> {
    let w = r.u32()? & wc::ALL;
    let in_port = r.u16()?;
    let dl_src: [u8; 6] = r.array()?;
    let dl_dst: [u8; 6] = r.array()?;
    let dl_vlan = r.u16()?;
    let dl_vlan_pcp = r.u8()?;
    r.skip(1)?;
    let dl_type = r.u16()?;
    let nw_tos = r.u8()?;
    let nw_proto = r.u8()?;
    r.skip(2)?;
    let nw_src = r.u32()?;
    let nw_dst = r.u32()?;
    let tp_src = r.u16()?;
    let tp_dst = r.u16()?;

    let mac = |b: [u8; 6]| pipeline::field::mac_to_u128(b);
    let mut m = Match::default();
    let exact = |bit: u32| w & bit == 0;
    if exact(wc::IN_PORT) {
        set(
            &mut m,
            IN_PORT,
            u128::from(port_from_16(in_port)),
            u128::MAX,
        );
    }
    if exact(wc::DL_SRC) {
        set(&mut m, ETH_SRC, mac(dl_src), u128::MAX);
    }
    if exact(wc::DL_DST) {
        set(&mut m, ETH_DST, mac(dl_dst), u128::MAX);
    }
    let dl_type = if dl_type < 0x0600 {
        DL_TYPE_NONE
    } else {
        dl_type
    };
    let typed = exact(wc::DL_TYPE);
    if typed {
        set(&mut m, ETH_TYPE, u128::from(dl_type), u128::MAX);
    }
    // VLAN: "no header", or the id and priority bits with the present (CFI) bit.
    if exact(wc::DL_VLAN) && dl_vlan == OFP10_VLAN_NONE {
        set(&mut m, VLAN_TCI, 0, 0xffff);
    } else {
        let mut mask = 0u16;
        if exact(wc::DL_VLAN_PCP) {
            mask |= VLAN_PCP_MASK | VLAN_CFI;
        }
        if exact(wc::DL_VLAN) {
            mask |= VLAN_VID_MASK | VLAN_CFI;
        }
        if mask != 0 {
            let tci = (dl_vlan & VLAN_VID_MASK)
                | ((u16::from(dl_vlan_pcp) << 13) & VLAN_PCP_MASK)
                | VLAN_CFI;
            set(&mut m, VLAN_TCI, u128::from(tci), u128::from(mask));
        }
    }
    // What the match's dl_type and nw_proto allow (OVS's `ofputil_normalize_match`).
    let ip = !normalize || (typed && dl_type == ETH_TYPE_IP);
    let arp = typed && (dl_type == ETH_TYPE_ARP || dl_type == ETH_TYPE_RARP);
    if ip || arp {
        if exact(wc::NW_PROTO) {
            set(&mut m, IP_PROTO, u128::from(nw_proto), u128::MAX);
        }
        let (sm, dm) = (
            netmask(w >> wc::NW_SRC_SHIFT),
            netmask(w >> wc::NW_DST_SHIFT),
        );
        if sm != 0 {
            set(&mut m, IP_SRC, u128::from(nw_src), u128::from(sm));
        }
        if dm != 0 {
            set(&mut m, IP_DST, u128::from(nw_dst), u128::from(dm));
        }
    }
    if ip && exact(wc::NW_TOS) {
        set(&mut m, IP_DSCP, u128::from(nw_tos >> 2), u128::MAX);
    }
    let l4 = !normalize
        || (ip
            && exact(wc::NW_PROTO)
            && matches!(
                nw_proto,
                ipproto::TCP | ipproto::UDP | ipproto::SCTP | ipproto::ICMP
            ));
    if l4 {
        if exact(wc::TP_SRC) {
            set(&mut m, TP_SRC, u128::from(tp_src), u128::MAX);
        }
        if exact(wc::TP_DST) {
            set(&mut m, TP_DST, u128::from(tp_dst), u128::MAX);
        }
    }
    Ok(m)
}

/// Writes `m` as an `ofp_match`: the fields 1.0 has; any other field is left out.
pub fn encode_match(m: &Match, out: &mut Vec<u8>) {
    let (v, k) = (&m.value, &m.mask);
    let mut w = 0u32;
    let mut wild = |bit: u32, f: Field| {
        if k.get(f) == 0 {
            w |= bit;
        }
    };
    wild(wc::IN_PORT, IN_PORT);
    wild(wc::DL_TYPE, ETH_TYPE);
    wild(wc::NW_PROTO, IP_PROTO);
    wild(wc::NW_TOS, IP_DSCP);
    wild(wc::TP_SRC, TP_SRC);
    wild(wc::TP_DST, TP_DST);
    wild(wc::DL_SRC, ETH_SRC);
    wild(wc::DL_DST, ETH_DST);
    w |= wcbits(k.get(IP_SRC) as u32) << wc::NW_SRC_SHIFT;
    w |= wcbits(k.get(IP_DST) as u32) << wc::NW_DST_SHIFT;

    let (tci, tci_mask) = (v.get(VLAN_TCI) as u16, k.get(VLAN_TCI) as u16);
    let (mut dl_vlan, mut dl_vlan_pcp) = (0u16, 0u8);
    if tci_mask == 0 {
        w |= wc::DL_VLAN | wc::DL_VLAN_PCP;
    } else if tci_mask & VLAN_CFI != 0 && tci & VLAN_CFI == 0 {
        dl_vlan = OFP10_VLAN_NONE;
    } else {
        if tci_mask & VLAN_VID_MASK == 0 {
            w |= wc::DL_VLAN;
        } else {
            dl_vlan = tci & VLAN_VID_MASK;
        }
        if tci_mask & VLAN_PCP_MASK == 0 {
            w |= wc::DL_VLAN_PCP;
        } else {
            dl_vlan_pcp = (tci >> 13) as u8;
        }
    }
    let in_port = v.get(IN_PORT) as u32;
    out.put_u32(w);
    out.put_u16(port_to_16(in_port).unwrap_or(in_port as u16));
    out.extend_from_slice(&pipeline::field::u128_to_mac(v.get(ETH_SRC)));
    out.extend_from_slice(&pipeline::field::u128_to_mac(v.get(ETH_DST)));
    out.put_u16(dl_vlan);
    out.put_u8(dl_vlan_pcp);
    out.put_u8(0);
    out.put_u16(v.get(ETH_TYPE) as u16);
    out.put_u8((v.get(IP_DSCP) as u8) << 2);
    out.put_u8(v.get(IP_PROTO) as u8);
    out.put_zeros(2);
    out.put_u32(v.get(IP_SRC) as u32);
    out.put_u32(v.get(IP_DST) as u32);
    out.put_u16(v.get(TP_SRC) as u16);
    out.put_u16(v.get(TP_DST) as u16);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn round_trip(text: &str) -> (Match, Match) {
        let fm = openflow::parse_flow_mod(&format!("add {text},actions=drop"))
            .unwrap_or_else(|e| unreachable!("{text}: {e}"));
        let mut b = Vec::new();
        encode_match(&fm.spec.matches, &mut b);
        assert_eq!(b.len(), MATCH_LEN);
        let mut r = Reader::new(&b, ErrorCode::BadRequestLen, "ofp_match");
        let back = decode_match(&mut r).unwrap_or_else(|e| unreachable!("{e}"));
        (fm.spec.matches, back)
    }

    #[test]
    fn every_field_of_ofp10_match_round_trips() {
        for text in [
            "in_port=3",
            "in_port=LOCAL",
            "dl_src=00:01:02:03:04:05,dl_dst=0a:0b:0c:0d:0e:0f",
            "dl_type=0x88cc",
            "dl_vlan=10",
            "dl_vlan=10,dl_vlan_pcp=5",
            "dl_vlan_pcp=3",
            "vlan_tci=0",
            "ip,nw_src=10.0.0.0/8,nw_dst=192.168.1.1",
            "ip,nw_tos=16,nw_proto=47",
            "tcp,tp_src=80,tp_dst=8080",
            "udp,tp_dst=53",
            "icmp,icmp_type=8,icmp_code=0",
            "arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,arp_op=2",
            "sctp,tp_src=5",
        ] {
            let (m, back) = round_trip(text);
            assert_eq!(m, back, "{text}");
        }
    }

    #[test]
    fn what_10_cannot_say_is_left_out_and_the_rest_kept() {
        // IPv6 addresses, registers and metadata: only dl_type and in_port stay.
        let (_, back) = round_trip("ipv6,in_port=2,ipv6_src=::1,reg0=5,metadata=7");
        let (want, _) = round_trip("ipv6,in_port=2");
        assert_eq!(back, want);
    }

    fn ofp10_match(w: u32, f: impl FnOnce(&mut [u8])) -> Match {
        let mut b = vec![0u8; MATCH_LEN];
        b[..4].copy_from_slice(&w.to_be_bytes());
        f(&mut b);
        let mut r = Reader::new(&b, ErrorCode::BadRequestLen, "ofp_match");
        decode_match(&mut r).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn wildcards_as_open_vswitch_reads_them() {
        let all = wc::ALL;
        // Unknown bits are ignored; nw_src bit counts of 32 and more wildcard it all.
        assert_eq!(ofp10_match(u32::MAX, |_| {}), Match::default());
        let ip = |b: &mut [u8]| {
            b[22..24].copy_from_slice(&0x0800u16.to_be_bytes());
            b[28..32].copy_from_slice(&[10, 1, 2, 3]);
        };
        let m = ofp10_match(all & !wc::DL_TYPE & !(0x3f << 8) | (63 << 8), ip);
        assert_eq!(m, round_trip("ip").0);
        let m = ofp10_match(all & !wc::DL_TYPE & !(0x3f << 8) | (8 << 8), ip);
        assert_eq!(m, round_trip("ip,nw_src=10.1.2.0/24").0);
        // nw_src without dl_type=ip is dropped (OVS's normalization), as are ports without
        // nw_proto.
        let m = ofp10_match(all & !(0x3f << 8) & !wc::TP_DST, |b| {
            b[28..32].copy_from_slice(&[10, 1, 2, 3]);
            b[38..40].copy_from_slice(&80u16.to_be_bytes());
        });
        assert_eq!(m, Match::default());
        // dl_vlan 0xffff exact: no VLAN header.
        let m = ofp10_match(all & !wc::DL_VLAN, |b| {
            b[18..20].copy_from_slice(&[0xff, 0xff])
        });
        assert_eq!(m, round_trip("vlan_tci=0x0000/0xffff").0);
    }
}
