//! Checks that walk the whole table: slots, names, NXM classes, print and datapath views.

use std::collections::HashMap;

use super::*;
use crate::flowkey::{ethertype, FlowKey, FRAG_ANY, FRAG_LATER, KEY_WORDS, VLAN_PRESENT};

fn key_entries() -> impl Iterator<Item = (FieldId, KeySlot)> {
    FieldId::all().filter_map(|f| f.def().key_slot().map(|k| (f, k)))
}

#[test]
fn key_slots_lie_inside_the_key_and_only_alias_whole_members() {
    let size = KEY_WORDS * 8;
    let mut owner: Vec<Option<(u16, u16)>> = vec![None; size];
    for (f, k) in key_entries() {
        let (o, n) = (usize::from(k.offset), usize::from(k.len));
        assert!(n > 0 && o + n <= size, "{f:?}: {o}+{n} outside the key");
        let d = f.def();
        assert!(
            d.bits != 0 && d.bits & !k.full() == 0,
            "{f:?}: bits outside its slot"
        );
        for b in &mut owner[o..o + n] {
            // Entries on the same member alias it deliberately; partial overlaps are errors.
            assert!(
                b.is_none_or(|s| s == (k.offset, k.len)),
                "{f:?} overlaps another slot"
            );
            *b = Some((k.offset, k.len));
        }
    }
    // Every byte of the key but the padding belongs to some field, so a new key member
    // without a table entry is caught here.
    let pad = std::mem::offset_of!(FlowKey, _pad);
    let pad2 = std::mem::offset_of!(FlowKey, _pad2);
    for (i, b) in owner.iter().enumerate() {
        if !(pad..pad + 2).contains(&i) && !(pad2..pad2 + 3).contains(&i) {
            assert!(b.is_some(), "key byte {i} belongs to no field");
        }
    }
}

#[test]
fn slots_read_and_write_numbers_and_bytes() {
    let mut k = FlowKey::default();
    let s = TUN_ID.def().key_slot().unwrap();
    s.write(&mut k, 0x0102_0304_0506_0708);
    assert_eq!(k.tun_id, 0x0102_0304_0506_0708);
    assert_eq!(s.read(&k), 0x0102_0304_0506_0708);
    let s = ETH_SRC.def().key_slot().unwrap();
    s.write(&mut k, 0x0a0b_0c0d_0e0f);
    assert_eq!(k.dl_src, [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
    assert_eq!(s.read(&k), 0x0a0b_0c0d_0e0f);
    let s = IPV6_DST.def().key_slot().unwrap();
    s.write(&mut k, 1);
    assert_eq!(k.ipv6_dst[15], 1);
    let s = IP_PROTO.def().key_slot().unwrap();
    s.write(&mut k, 0x1_06);
    assert_eq!(k.nw_proto, 6, "truncated to the slot");
}

#[test]
fn names_are_unique_within_each_syntax() {
    let mut canonical = HashMap::new();
    let mut in_match: HashMap<&str, FieldId> = HashMap::new();
    let mut in_action: HashMap<String, FieldId> = HashMap::new();
    for f in FieldId::all() {
        let d = f.def();
        // `in_port` is two entries, as in OVS: the 32-bit port rules match, and OpenFlow 1.0's
        // 16-bit number actions read and write; each syntax sees one.
        let shared = f == IN_PORT_OF10;
        assert!(
            canonical.insert(d.name, f).is_none() || shared,
            "{} twice",
            d.name
        );
        if d.in_match {
            for n in d.names() {
                if let Some(other) = in_match.insert(n, f) {
                    panic!("match name {n}: {other:?} and {f:?}");
                }
                assert_eq!(FieldId::by_match_name(n), Some(f));
            }
        }
        if d.write != Write::No {
            for n in d.names().chain(d.nxm.iter().map(|x| x.name)) {
                if let Some(other) = in_action.insert(n.to_ascii_lowercase(), f) {
                    panic!("action name {n}: {other:?} and {f:?}");
                }
                assert_eq!(FieldId::by_action_name(n), Some(f));
                assert_eq!(FieldId::by_action_name(&n.to_ascii_uppercase()), Some(f));
            }
        }
    }
    assert_eq!(
        FieldId::by_match_name("DL_SRC"),
        None,
        "match names are case-sensitive"
    );
    // Shorthands are not field names.
    for s in SHORTHANDS {
        assert_eq!(FieldId::by_match_name(s.name), None, "{}", s.name);
    }
}

#[test]
fn nxm_names_carry_open_vswitch_classes() {
    for f in FieldId::all() {
        for x in f.def().nxm {
            let (class, exp) = match x.name {
                n if n.starts_with("NXM_OF_") => (0x0000, 0),
                n if n.starts_with("NXM_NX_") => (0x0001, 0),
                n if n.starts_with("OXM_OF_PKT_REG") => (0x8001, 0),
                n if n.starts_with("OXM_OF_") => (0x8000, 0),
                n if n.starts_with("ONFOXM_ET_") => (0xffff, 0x4f4e_4600),
                n => panic!("{f:?}: unknown NXM/OXM prefix of {n}"),
            };
            assert_eq!((x.class, x.experimenter), (class, exp), "{}", x.name);
        }
    }
    let regs = [
        REG0, REG1, REG2, REG3, REG4, REG5, REG6, REG7, REG8, REG9, REG10, REG11, REG12, REG13,
        REG14, REG15,
    ];
    assert_eq!(regs.len(), N_REGS);
    for (i, r) in regs.iter().enumerate() {
        let d = r.def();
        assert_eq!(d.slot, Slot::Reg(i as u8));
        assert_eq!(d.nxm[0].field as usize, i);
    }
    for (r, i) in [(XREG0, 0), (XREG7, 7)] {
        assert_eq!((r.def().slot, r.width()), (Slot::XReg(i), 64));
    }
    assert_eq!((XXREG3.def().slot, XXREG3.width()), (Slot::XXReg(3), 128));
    assert_eq!(ETH_SRC.def().nxm[0].field, 2);
    assert_eq!(TUN_ID.def().nxm[1], oxm_of("OXM_OF_TUNNEL_ID", 38));
}

#[test]
fn writable_fields_cover_their_width_and_live_where_their_action_says() {
    for f in FieldId::all() {
        let d = f.def();
        match (d.write, d.slot) {
            (Write::No, _) => continue,
            (
                Write::Context,
                Slot::Reg(_)
                | Slot::XReg(_)
                | Slot::XXReg(_)
                | Slot::Metadata
                | Slot::TunMetadata(_),
            ) => {}
            // Tunnel metadata: written into the translation's flow for a later encap.
            (Write::Context, Slot::Key(_)) if [TUN_ID, TUN_SRC, TUN_DST].contains(&f) => {}
            // The input port, as the translation sees it.
            (Write::Context, Slot::Key(_)) if f == IN_PORT_OF10 => {}
            (Write::Packet(_) | Write::VlanTci, Slot::Key(_)) => {}
            (w, s) => panic!("{f:?}: {w:?} on {s:?}"),
        }
        if [ICMP_TYPE, ICMPV6_TYPE, ICMP_CODE, ICMPV6_CODE].contains(&f) {
            // 8 bits in a 16-bit port slot, whose high byte the parser leaves 0 for ICMP.
            assert_eq!((d.width, d.bits), (8, 0xffff), "{f:?}");
        } else {
            assert_eq!(d.bits, ones(d.width) << d.shift, "{f:?}");
        }
        assert!(d.width <= 128);
    }
    assert!(
        matches!(VLAN_PCP.def().write, Write::Packet(set) if set(5) == DpAction::SetVlanPcp(5))
    );
    assert!(matches!(IP_DSCP.def().write, Write::Packet(set) if set(8) == DpAction::SetIpDscp(32)));
}

#[test]
fn aliases_of_a_slot_share_their_layer_and_print_once() {
    let mut layer: HashMap<(u16, u16), (FieldId, Layer)> = HashMap::new();
    let mut unconditional: HashMap<(u16, u16, u128), FieldId> = HashMap::new();
    for (f, k) in key_entries() {
        let d = f.def();
        let (other, l) = *layer.entry((k.offset, k.len)).or_insert((f, d.layer()));
        assert_eq!(
            l,
            d.layer(),
            "{f:?} and {other:?} share a slot but not a layer"
        );
        if let Print::As(_, when) = d.print {
            let at = (k.offset, k.len, d.bits);
            // An entry printed unconditionally ends its bits' list: a later one never prints.
            assert!(
                !unconditional.contains_key(&at),
                "{f:?} follows an unconditional entry"
            );
            if when == Prereq::None {
                unconditional.insert(at, f);
            }
        }
    }
}

#[test]
fn every_key_member_has_a_datapath_view_and_one_per_context() {
    let mut shown: HashMap<(u16, u16), bool> = HashMap::new();
    for (f, k) in key_entries() {
        *shown.entry((k.offset, k.len)).or_default() |= !f.def().dp.is_empty();
    }
    for ((o, _), s) in &shown {
        let len_slot = TUN_OPTS_LEN.def().key_slot().unwrap();
        assert!(
            *s || *o == len_slot.offset,
            "key bytes at {o} never printed"
        );
    }
    let l4s = ["tcp", "udp", "sctp", "icmp", "icmpv6", "l4"];
    for l3 in [ethertype::IPV4, ethertype::IPV6, ethertype::ARP, 0, 0x88cc] {
        for l4 in l4s {
            let cx = DpContext { l3, l4 };
            let mut seen: HashMap<(u16, u16), FieldId> = HashMap::new();
            for (f, k) in key_entries() {
                for item in f.def().dp {
                    if item.group.active(&cx) && item.when.holds(&cx) {
                        if let Some(other) = seen.insert((k.offset, k.len), f) {
                            panic!("{f:?} and {other:?} both print in {cx:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn megaflow_masks_gain_the_prerequisites_of_what_was_read() {
    let m = complete_megaflow_mask(FlowKey {
        tp_dst: 0xffff,
        ..FlowKey::default()
    });
    assert_eq!(
        (m.dl_type, m.nw_proto, m.nw_frag),
        (0xffff, 0xff, FRAG_ANY | FRAG_LATER)
    );
    let m = complete_megaflow_mask(FlowKey {
        arp_sha: [0, 0, 0, 0, 0, 1],
        ..FlowKey::default()
    });
    assert_eq!((m.dl_type, m.nw_proto, m.nw_frag), (0xffff, 0, 0));
    let m = complete_megaflow_mask(FlowKey {
        in_port: u32::MAX,
        dl_src: [0xff; 6],
        vlan_tci: VLAN_PRESENT,
        ..FlowKey::default()
    });
    assert_eq!((m.dl_type, m.nw_proto), (0, 0));
}

#[test]
fn match_values_parse_and_print_back() {
    // (field, text, printed)
    let cases = [
        (
            ETH_SRC,
            "00:11:22:33:44:55/ff:ff:ff:00:00:00",
            "dl_src=00:11:22:00:00:00/ff:ff:ff:00:00:00",
        ),
        (NW_SRC, "10.1.2.3/16", "nw_src=10.1.0.0/16"),
        (TP_DST, "0x50/0xfff0", "tp_dst=0x50/0xfff0"),
        (TCP_FLAGS, "+syn-ack", "tcp_flags=+syn-ack"),
        (TCP_FLAGS, "0x800/0x800", "tcp_flags=0x800/0x800"),
        (
            CT_STATE,
            "0x21",
            "ct_state=+new-est-rel-rpl-inv+trk-snat-dnat",
        ),
        (IN_PORT, "LOCAL", "in_port=LOCAL"),
        (IP_DSCP, "8", "nw_tos=32"),
        (DL_VLAN, "10", "dl_vlan=10"),
        (DL_VLAN_PCP, "3", "dl_vlan_pcp=3"),
        (IPV6_LABEL, "0x12345", "ipv6_label=0x12345"),
        // OpenFlow's numbering: bit 0 is oam (ovs-ofctl.at's `tun_flags=1`).
        (TUN_FLAGS, "1", "tun_flags=+oam"),
        (TUN_FLAGS, "0", "tun_flags=-oam"),
        (TUN_FLAGS, "0x1/0x1", "tun_flags=+oam"),
        (TUN_FLAGS, "+oam-df", "tun_flags=+oam-df"),
        // 16 bits of syntax, the low byte kept: `ovs-ofctl parse-flow arp,arp_op=257` prints
        // arp_op=1 (OVS 3.1).
        (ARP_OP, "2", "arp_op=2"),
        (ARP_OP, "256", "arp_op=0"),
        (ARP_OP, "257", "arp_op=1"),
        (ARP_OP, "0xffff", "arp_op=255"),
    ];
    for (f, text, printed) in cases {
        let d = f.def();
        let (v, m) = parse_match_value(d, text, 0xffff_fffe).unwrap();
        let shown = match (d.print, f) {
            (Print::As(name, _), _) => (d, name),
            (_, IP_DSCP) => (NW_TOS.def(), "nw_tos"),
            _ => (VLAN_TCI.def(), "vlan_tci"),
        };
        let mut out = Vec::new();
        format_match_value(shown.0, shown.1, v, m, 0xffff_fffe, &mut out);
        assert_eq!(out.join(","), printed, "{f:?}={text}");
    }
    for bad in ["2", "3", "0/0xfffe", "0x10000"] {
        assert!(
            parse_match_value(TUN_FLAGS.def(), bad, 0).is_err(),
            "tun_flags={bad}"
        );
    }
    // Past 16 bits, refused as ovs-ofctl does ("value too large for 2-byte field arp_op");
    // nw_proto, the same byte of the key, stays 8 bits wide.
    let e = parse_match_value(ARP_OP.def(), "65536", 0).unwrap_err();
    assert_eq!(e.0, "\"65536\" is out of range (0-65535)");
    assert!(parse_match_value(IP_PROTO.def(), "256", 0).is_err());
    let e = parse_match_value(NW_TOS.def(), "3", 0).unwrap_err();
    assert_eq!(
        e.0,
        "\"3\" is not a multiple of 4 (the low 2 bits are nw_ecn)"
    );
}

#[test]
fn in_port_matches_controller_as_ovs_ofctl_reads_and_prints_it() {
    // `ovs-ofctl parse-flow in_port=CONTROLLER` (3.1) prints in_port=CONTROLLER; 65533 and
    // 4294967293 are the same port in OpenFlow 1.0's and 1.1's numbering.
    for text in ["CONTROLLER", "controller", "65533", "4294967293"] {
        let (v, m) = parse_match_value(IN_PORT.def(), text, 0xffff_fffe).unwrap();
        assert_eq!(v, 0xffff_fffd, "{text}");
        let mut out = Vec::new();
        format_match_value(IN_PORT.def(), "in_port", v, m, 0xffff_fffe, &mut out);
        assert_eq!(out, ["in_port=CONTROLLER"], "{text}");
    }
    // The other reserved ports are still no port to match.
    for bad in ["65529", "NORMAL", "0xfffffffa"] {
        assert!(
            parse_match_value(IN_PORT.def(), bad, 0xffff_fffe).is_err(),
            "{bad}"
        );
    }
}
