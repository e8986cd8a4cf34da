//! Recirculation ids and the datapath's side of `ct()` translation.
//!
//! A `ct(table=T)` action freezes the translation: the packet goes through the datapath's
//! tracking, then back to classification with a `recirc_id` that names where its
//! translation goes on (bridge, table T, registers, metadata, the action set written so
//! far: a [`Frozen`]), as Open vSwitch's `recirc_alloc_id_ctx` does. The same state always
//! gets the same id, so a rule set makes a fixed set of ids; every megaflow matches its
//! `recirc_id`.
//!
//! The table holds at most [`MAX_STATES`] states and never frees one (a rule set whose
//! registers or action sets take ever new values at a `ct` could fill it: `freeze` then
//! refuses, and the packet is dropped as `ct-refused`).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use pipeline::{DpAction, Tracker};

use crate::xlate::{CtCall, Frozen, XlateHooks};

/// Most frozen states a datapath keeps.
pub const MAX_STATES: usize = 1 << 20;

#[derive(Default)]
struct States {
    by_state: HashMap<(String, Frozen), u32>,
    /// Index `id - 1`.
    by_id: Vec<(String, Frozen)>,
}

/// The frozen states of a datapath by recirculation id (clones share them).
#[derive(Clone, Default)]
pub struct RecircTable(Arc<RwLock<States>>);

impl RecircTable {
    /// The id of `frozen` in bridge `bridge`, made the first time; `None` when the table is
    /// full.
    pub fn freeze(&self, bridge: &str, frozen: &Frozen) -> Option<u32> {
        let key = (bridge.to_string(), frozen.clone());
        if let Some(&id) = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_state
            .get(&key)
        {
            return Some(id);
        }
        let mut s = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = s.by_state.get(&key) {
            return Some(id);
        }
        if s.by_id.len() >= MAX_STATES {
            return None;
        }
        let id = u32::try_from(s.by_id.len() + 1).ok()?;
        s.by_id.push(key.clone());
        s.by_state.insert(key, id);
        Some(id)
    }

    /// The bridge and state of `id`.
    pub fn thaw(&self, id: u32) -> Option<(String, Frozen)> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .get(i)
            .cloned()
    }

    /// The number of states kept.
    pub fn len(&self) -> usize {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .len()
    }

    /// Whether no state is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Connection tracking as the datapath offers it to translation: the `Tracker` that runs
/// one resolved `ct()` (the `conntrack` crate's, over the datapath's table).
pub trait Conntrack: Send + Sync {
    fn tracker(&self, call: &CtCall) -> Tracker;
}

/// The hooks a datapath gives one bridge's translation.
pub(crate) struct Hooks<'a> {
    pub bridge: &'a str,
    pub recirc: &'a RecircTable,
    pub conntrack: Option<&'a dyn Conntrack>,
}

impl XlateHooks for Hooks<'_> {
    fn ct(&self, call: &CtCall) -> Option<DpAction> {
        self.conntrack.map(|c| DpAction::Ct(c.tracker(call)))
    }

    fn freeze(&self, frozen: &Frozen) -> Option<u32> {
        self.recirc.freeze(self.bridge, frozen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_keeps_its_id() {
        let t = RecircTable::default();
        let f = |table| Frozen {
            table,
            regs: [0; crate::rule::N_REGS],
            metadata: 0,
            action_set: Arc::from([]),
        };
        let a = t.freeze("br0", &f(1)).unwrap();
        assert_eq!(t.freeze("br0", &f(1)), Some(a));
        let b = t.freeze("br0", &f(2)).unwrap();
        let c = t.freeze("br1", &f(1)).unwrap();
        assert!(a != b && b != c && a != 0);
        assert_eq!(t.thaw(b), Some(("br0".to_string(), f(2))));
        assert_eq!(t.thaw(0), None);
        assert_eq!(t.thaw(99), None);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn states_that_differ_only_in_their_action_set_get_their_own_ids() {
        use crate::rule::Action;
        let t = RecircTable::default();
        let f = |set: &[Action]| Frozen {
            table: 1,
            regs: [0; crate::rule::N_REGS],
            metadata: 0,
            action_set: set.into(),
        };
        let empty = t.freeze("br0", &f(&[])).unwrap();
        let out2 = t.freeze("br0", &f(&[Action::Output(2)])).unwrap();
        let out3 = t.freeze("br0", &f(&[Action::Output(3)])).unwrap();
        let both = t
            .freeze("br0", &f(&[Action::Output(2), Action::Output(3)]))
            .unwrap();
        assert_eq!(
            [empty, out2, out3, both]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            4
        );
        // An equal set, built anew, shares the id; thawing gives the set back.
        assert_eq!(t.freeze("br0", &f(&[Action::Output(2)])), Some(out2));
        let (_, thawed) = t.thaw(out2).unwrap();
        assert_eq!(&thawed.action_set[..], &[Action::Output(2)]);
        assert_eq!(t.len(), 4);
    }
}
