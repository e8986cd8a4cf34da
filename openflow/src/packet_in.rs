//! A packet-in as OpenFlow describes it: its metadata as a match (Open vSwitch's
//! `flow_get_metadata`) and the text `ovs-ofctl monitor` prints for it.

use std::fmt::Write as _;

use pipeline::field::{CT_IPV6_DST, CT_IPV6_SRC};
use pipeline::field::{
    CT_LABEL, CT_MARK, CT_NW_DST, CT_NW_PROTO, CT_NW_SRC, CT_STATE, CT_TP_DST, CT_TP_SRC, CT_ZONE,
    ETH_TYPE, IN_PORT, METADATA, N_REGS, REG0, TUN_DST, TUN_FLAGS, TUN_ID, TUN_SRC,
};
use pipeline::flowkey::ethertype;
use pipeline::{FieldId, PacketIn};

use crate::rule::{Fields, Match};

/// The packet-in's metadata: the OpenFlow in_port; registers, `metadata`, tunnel and
/// conntrack fields where not zero (the conntrack tuple where the state is valid, with the
/// ethertype that gives it meaning), as Open vSwitch's `flow_get_metadata` builds it.
pub fn metadata(pin: &PacketIn) -> Match {
    let mut m = Match::default();
    let (k, c) = (&pin.key, &pin.context);
    let mut set = |f: FieldId, v: u128, when: bool| {
        if when {
            m.value.set(f, v);
            m.mask.set(f, f.max_value());
        }
    };
    set(TUN_ID, u128::from(k.tun_id), k.tun_id != 0);
    let flags = k.tun_flags & TUN_FLAGS.max_value() as u16;
    set(TUN_FLAGS, u128::from(flags), flags != 0);
    set(TUN_SRC, u128::from(k.tun_src), k.tun_src != 0);
    set(TUN_DST, u128::from(k.tun_dst), k.tun_dst != 0);
    set(METADATA, u128::from(c.metadata), c.metadata != 0);
    for (i, &r) in c.regs.iter().enumerate().take(N_REGS) {
        set(reg(i), u128::from(r), r != 0);
    }
    set(IN_PORT, u128::from(c.in_port), true);
    if k.ct_state != 0 {
        set(CT_STATE, u128::from(k.ct_state), true);
        set(ETH_TYPE, u128::from(k.dl_type), true);
        let probe = Fields {
            key: *k,
            ..Fields::default()
        };
        let tuple = probe.get(CT_NW_PROTO) != 0 && ct_valid(k.ct_state);
        if tuple && k.dl_type == ethertype::IPV4 {
            for f in [CT_NW_SRC, CT_NW_DST, CT_NW_PROTO, CT_TP_SRC, CT_TP_DST] {
                set(f, probe.get(f), true);
            }
        } else if tuple && k.dl_type == ethertype::IPV6 {
            for f in [CT_IPV6_SRC, CT_IPV6_DST, CT_NW_PROTO, CT_TP_SRC, CT_TP_DST] {
                set(f, probe.get(f), true);
            }
        }
    }
    set(CT_ZONE, u128::from(k.ct_zone), k.ct_zone != 0);
    set(CT_MARK, u128::from(k.ct_mark), k.ct_mark != 0);
    let label = u128::from_be_bytes(k.ct_label);
    set(CT_LABEL, label, label != 0);
    m
}

/// Register `i`'s field.
fn reg(i: usize) -> FieldId {
    FieldId::all()
        .find(|f| f.name() == format!("reg{i}"))
        .unwrap_or(REG0)
}

/// Open vSwitch's `is_ct_valid` on a state: tracked, and neither invalid nor untracked.
fn ct_valid(state: u8) -> bool {
    const TRK: u8 = 0x20;
    const INV: u8 = 0x10;
    state & TRK != 0 && state & INV == 0
}

/// What `ovs-ofctl -O OpenFlow13 monitor` prints after `OFPT_PACKET_IN (OF1.3) (xid=...):`
/// for `pin`, unbuffered (`ofputil_packet_in_private_format`): the table (unless 0), the
/// cookie (unless all-ones), the lengths, the metadata, the reason as OpenFlow 1.3 sends it, and the userdata
/// on a line of its own.
pub fn describe(pin: &PacketIn) -> String {
    let c = &pin.context;
    let mut s = String::new();
    if c.table_id != 0 {
        let _ = write!(s, " table_id={}", c.table_id);
    }
    // All-ones is no rule's (a PACKET_OUT's own actions): ovs-ofctl leaves it out.
    if c.cookie != u64::MAX {
        let _ = write!(s, " cookie={:#x}", c.cookie);
    }
    let _ = write!(s, " total_len={} {}", pin.total_len, metadata(pin));
    let reason = c.reason.on_wire(0x04).name();
    let _ = write!(
        s,
        " (via {reason}) data_len={} (unbuffered)",
        pin.data.len()
    );
    if pin.total_len as usize != pin.data.len() {
        // ovs-ofctl flags a truncated packet-in that is not buffered.
        s.push_str(" (***total_len != data_len***)");
    }
    if !c.userdata.is_empty() {
        let hex: Vec<String> = c.userdata.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(s, "\n userdata={}", hex.join("."));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pipeline::{FlowKey, PacketInContext, PacketInReason};

    use super::*;

    fn pin(context: PacketInContext, key: FlowKey, len: usize) -> PacketIn {
        PacketIn {
            context: Arc::new(context),
            key,
            total_len: 60,
            data: vec![0; len],
        }
    }

    fn context() -> PacketInContext {
        PacketInContext {
            in_port: 1,
            ..PacketInContext::default()
        }
    }

    #[test]
    fn describes_as_ovs_ofctl_monitor_prints() {
        let p = pin(context(), FlowKey::default(), 60);
        assert_eq!(
            describe(&p),
            " cookie=0x0 total_len=60 in_port=1 (via action) data_len=60 (unbuffered)"
        );
        let mut c = context();
        c.table_id = 2;
        c.cookie = 0x77;
        c.reason = PacketInReason::ExplicitMiss;
        c.regs[3] = 9;
        c.metadata = 0x42;
        c.userdata = Box::new([1, 2]);
        c.in_port = crate::rule::OFPP_LOCAL;
        let key = FlowKey {
            tun_id: 5,
            ..FlowKey::default()
        };
        assert_eq!(
            describe(&pin(c, key, 20)),
            " table_id=2 cookie=0x77 total_len=60 reg3=0x9,tun_id=0x5,metadata=0x42,in_port=LOCAL \
             (via no_match) data_len=20 (unbuffered) (***total_len != data_len***)\n userdata=01.02"
        );
    }

    #[test]
    fn a_packet_outs_own_packet_in_has_no_cookie() {
        let mut c = context();
        c.cookie = u64::MAX;
        c.reason = PacketInReason::PacketOut;
        assert_eq!(
            describe(&pin(c, FlowKey::default(), 60)),
            " total_len=60 in_port=1 (via action) data_len=60 (unbuffered)"
        );
    }
}
