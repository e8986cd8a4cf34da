//! Connection tracking for the datapath: the `ct()` actions a translation resolves
//! (`openflow::xlate::CtCall`) run over one [`ConnTable`] that every PMD thread shares.

use std::sync::Arc;

use conntrack::{ConnTable, CtExec, CtTracker};
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
        };
        Tracker(Arc::new(CtTracker::new(self.0.clone(), exec)))
    }
}
