//! Connection tracking for the datapath: the `ct()` actions a translation resolves
//! (`openflow::xlate::CtCall`) run over one [`ConnTable`] that every PMD thread shares.

use std::net::IpAddr;
use std::sync::Arc;

use conntrack::{ConnTable, CtAddr, CtExec, CtNat, CtTracker, NatKind, NatRange};
use openflow::ct::{Nat, NatKind as OfNatKind};
use openflow::recirc::Conntrack;
use openflow::xlate::CtCall;
use pipeline::Tracker;

/// The datapath's connection table, lent to translation.
pub struct DatapathConntrack(pub Arc<ConnTable>);

impl Conntrack for DatapathConntrack {
    fn tracker(&self, call: &CtCall) -> Tracker {
        let exec = CtExec {
            zone: call.zone,
            commit: call.commit,
            set_mark: (call.mark.1 != 0).then_some(call.mark),
            set_label: (call.label.1 != 0).then_some(call.label),
            nat: call.nat.as_ref().map(ct_nat),
        };
        Tracker(Arc::new(CtTracker::new(self.0.clone(), exec)))
    }
}

/// The rule's `nat(...)` as the connection table takes it.
fn ct_nat(nat: &Nat) -> CtNat {
    let addr = |a: IpAddr| CtAddr::from_ip(a);
    CtNat {
        kind: nat.kind.map(|k| match k {
            OfNatKind::Src => NatKind::Src,
            OfNatKind::Dst => NatKind::Dst,
        }),
        range: nat.range.map(|r| {
            let (family, min) = addr(r.min);
            NatRange {
                family,
                min,
                max: addr(r.max).1,
                ports: r.ports,
            }
        }),
        persistent: nat.persistent,
        hash: nat.hash,
        random: nat.random,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracker_prints_its_nat_as_dpctl() {
        let table = Arc::new(ConnTable::default());
        let dp = DatapathConntrack(table);
        let nat = |text: &str| {
            let rule = format!("ip,actions=ct(commit,zone=1,{text})");
            let flow = openflow::parse::parse_flow(&rule).unwrap();
            match flow.actions.first() {
                Some(openflow::rule::Action::Ct(ct)) => ct.nat().copied(),
                _ => None,
            }
        };
        for (text, dpctl) in [
            (
                "nat(src=10.0.0.1-10.0.0.2:1000-2000)",
                "ct(commit,zone=1,nat(src=10.0.0.1-10.0.0.2:1000-2000))",
            ),
            (
                "nat(dst=10.0.0.1:80)",
                "ct(commit,zone=1,nat(dst=10.0.0.1:80))",
            ),
            ("nat", "ct(commit,zone=1,nat)"),
            (
                "nat(src=10.0.0.1,persistent,random)",
                "ct(commit,zone=1,nat(src=10.0.0.1,persistent,random))",
            ),
        ] {
            let call = CtCall {
                zone: 1,
                commit: true,
                force: false,
                mark: (0, 0),
                label: (0, 0),
                nat: nat(text),
                alg: None,
            };
            assert_eq!(format!("{:?}", dp.tracker(&call)), dpctl, "{text}");
        }
    }
}
