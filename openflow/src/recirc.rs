//! Recirculation ids and the datapath's side of `ct()` translation.
//!
//! A `ct(table=T)` action freezes the translation: the packet goes through the datapath's
//! tracking, then back to classification with a `recirc_id` that names where its
//! translation goes on (bridge, table T, registers, metadata, the `push:` stack, the action
//! set written so far: a [`Frozen`]), as Open vSwitch's `recirc_alloc_id_ctx` does. The same
//! state gets the same id as long as it is kept (below), so a rule set makes a fixed set of
//! ids; every megaflow matches its `recirc_id`.
//!
//! The table holds at most [`MAX_STATES`] states (a rule set whose registers or action sets
//! take ever new values at a `ct` could fill it: `freeze` then refuses, and the packet is
//! dropped as `ct-refused`). A state goes when no classifier has named its id for
//! [`FREE_AFTER_NS`]: each classifier names, about once a second, the ids its megaflows
//! recirculate to ([`RecircTable::keep`]), as Open vSwitch frees a recirculation id when no
//! datapath flow refers to it. Ids are handed out in order and a freed one is not given again
//! until the counter wraps, so a packet or megaflow that still carries an old id finds no
//! state (and drops) rather than another flow's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use pipeline::{DpAction, Tracker};

use crate::xlate::{CtCall, Frozen, XlateHooks};

/// Most frozen states a datapath keeps.
pub const MAX_STATES: usize = 1 << 20;

/// How long a state stays after the last time a classifier named its id (or it was frozen
/// again): far longer than a classifier's report interval (a second) and than a packet takes
/// from its `recirc` back to classification.
pub const FREE_AFTER_NS: u64 = 30_000_000_000;

struct State {
    bridge: String,
    frozen: Frozen,
    /// The table's clock when the id was last named or frozen.
    kept_ns: AtomicU64,
}

#[derive(Default)]
struct States {
    by_state: HashMap<(String, Frozen), u32>,
    by_id: HashMap<u32, State>,
    /// The id the next state gets (skipping 0 and ids in use).
    next_id: u32,
    /// The latest time a classifier reported ([`RecircTable::keep`]).
    clock_ns: u64,
    /// When the table was last swept.
    swept_ns: u64,
    /// States freed so far.
    freed: u64,
}

impl States {
    fn free_id(&mut self) -> Option<u32> {
        if self.by_id.len() >= MAX_STATES {
            return None;
        }
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if self.next_id != 0 && !self.by_id.contains_key(&self.next_id) {
                return Some(self.next_id);
            }
        }
    }
}

/// The frozen states of a datapath by recirculation id (clones share them).
#[derive(Clone, Default)]
pub struct RecircTable(Arc<RwLock<States>>);

impl RecircTable {
    /// The id of `frozen` in bridge `bridge`, made the first time; `None` when the table is
    /// full.
    pub fn freeze(&self, bridge: &str, frozen: &Frozen) -> Option<u32> {
        let key = (bridge.to_string(), frozen.clone());
        {
            let s = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(&id) = s.by_state.get(&key) {
                if let Some(state) = s.by_id.get(&id) {
                    state.kept_ns.fetch_max(s.clock_ns, Ordering::Relaxed);
                }
                return Some(id);
            }
        }
        let mut s = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = s.by_state.get(&key) {
            return Some(id);
        }
        let id = s.free_id()?;
        let kept_ns = AtomicU64::new(s.clock_ns);
        s.by_id.insert(
            id,
            State {
                bridge: key.0.clone(),
                frozen: key.1.clone(),
                kept_ns,
            },
        );
        s.by_state.insert(key, id);
        Some(id)
    }

    /// The bridge and state of `id`.
    pub fn thaw(&self, id: u32) -> Option<(String, Frozen)> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .get(&id)
            .map(|s| (s.bridge.clone(), s.frozen.clone()))
    }

    /// A classifier's report at `now_ns`: its megaflows recirculate to `ids`. Keeps those
    /// states, and frees (at most once a second) every state no report named and nothing
    /// froze for [`FREE_AFTER_NS`]. Returns how many were freed.
    pub fn keep(&self, ids: &[u32], now_ns: u64) -> usize {
        let mut s = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let now = s.clock_ns.max(now_ns);
        s.clock_ns = now;
        for id in ids {
            if let Some(state) = s.by_id.get(id) {
                state.kept_ns.fetch_max(now, Ordering::Relaxed);
            }
        }
        if now.saturating_sub(s.swept_ns) < 1_000_000_000 {
            return 0;
        }
        s.swept_ns = now;
        let stale: Vec<u32> = s
            .by_id
            .iter()
            .filter(|(_, st)| {
                now.saturating_sub(st.kept_ns.load(Ordering::Relaxed)) >= FREE_AFTER_NS
            })
            .map(|(&id, _)| id)
            .collect();
        for id in &stale {
            if let Some(st) = s.by_id.remove(id) {
                s.by_state.remove(&(st.bridge, st.frozen));
            }
        }
        s.freed += stale.len() as u64;
        stale.len()
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

    /// How many states were freed since the table was made.
    pub fn freed(&self) -> u64 {
        self.0.read().unwrap_or_else(PoisonError::into_inner).freed
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

    /// A state at `table` with nothing else set.
    fn f(table: u8) -> Frozen {
        Frozen {
            table,
            regs: [0; crate::rule::N_REGS],
            metadata: 0,
            action_set: Arc::from([]),
            stack: Arc::from([]),
        }
    }

    #[test]
    fn a_state_keeps_its_id() {
        let t = RecircTable::default();
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
    fn a_state_no_classifier_names_goes_after_the_grace_and_its_id_is_not_given_again() {
        let sec = 1_000_000_000u64;
        let t = RecircTable::default();
        let a = t.freeze("br0", &f(1)).unwrap();
        let b = t.freeze("br0", &f(2)).unwrap();
        // A classifier names `a` every second; nothing names `b`.
        for s in 0..FREE_AFTER_NS / sec {
            assert_eq!(t.keep(&[a, 12345], s * sec), 0, "second {s}");
        }
        assert_eq!(t.keep(&[a], FREE_AFTER_NS), 1);
        assert_eq!((t.len(), t.freed()), (1, 1));
        assert_eq!(t.thaw(a), Some(("br0".to_string(), f(1))));
        assert_eq!(t.thaw(b), None);
        // Freezing `b`'s state again makes a new id; neither old one is reused.
        let b2 = t.freeze("br0", &f(2)).unwrap();
        assert!(b2 != a && b2 != b);
        assert_eq!(t.freeze("br0", &f(1)), Some(a));
        // A freeze keeps its state as a report does: `b2` was made at the latest report's
        // time, so it stays until FREE_AFTER_NS after that.
        assert_eq!(t.keep(&[a], 2 * FREE_AFTER_NS - sec), 0);
        assert_eq!(t.thaw(b2).map(|s| s.1), Some(f(2)));
        assert_eq!(t.keep(&[a], 2 * FREE_AFTER_NS), 1);
        assert_eq!(t.thaw(b2), None);
        // Sweeps run at most once a second: a report in between frees nothing.
        let c = t.freeze("br0", &f(3)).unwrap();
        assert_eq!(
            t.keep(&[a], 3 * FREE_AFTER_NS),
            1,
            "c was frozen at 2 * FREE_AFTER_NS"
        );
        assert_eq!(t.thaw(c), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ids_skip_zero_and_those_in_use_when_the_counter_wraps() {
        let t = RecircTable::default();
        let first = t.freeze("br0", &f(1)).unwrap();
        assert_eq!(first, 1);
        t.0.write().unwrap().next_id = u32::MAX - 1;
        assert_eq!(t.freeze("br0", &f(2)), Some(u32::MAX));
        // 0 is never an id, and 1 is still in use.
        assert_eq!(t.freeze("br0", &f(3)), Some(2));
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
            stack: Arc::from([]),
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
