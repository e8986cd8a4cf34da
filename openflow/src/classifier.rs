//! One OpenFlow table as a priority classifier using tuple space search: rules are grouped by
//! their match mask into subtables, each a hash map from masked value to rules. A lookup
//! probes subtables in order of their highest priority and stops once no later subtable can
//! beat the best match; the masks of the probed subtables are exactly the key bits the
//! decision depended on (what the megaflow must match).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::rule::{Fields, Match, Rule};

/// Rules sharing one mask.
#[derive(Clone, Debug)]
struct Subtable {
    mask: Fields,
    /// Masked value → rules with that match, best first (priority descending, then oldest).
    rules: HashMap<Fields, SmallVec<[Arc<Rule>; 1]>>,
    /// Priority → number of rules, to keep `max_priority` right after removals.
    priorities: BTreeMap<u16, u32>,
    max_priority: u16,
}

/// A priority classifier.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    /// Ordered by `max_priority`, highest first.
    subtables: Vec<Subtable>,
    n_rules: usize,
}

/// Whether `a` beats `b`: higher priority, then the earlier-added rule.
#[inline]
fn better(a: &Rule, b: &Rule) -> bool {
    (a.spec.priority, std::cmp::Reverse(a.id)) > (b.spec.priority, std::cmp::Reverse(b.id))
}

impl Classifier {
    pub fn len(&self) -> usize {
        self.n_rules
    }

    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// The best rule matching `f`; ORs the masks of the probed subtables into `wc`.
    pub fn lookup(&self, f: &Fields, wc: &mut Fields) -> Option<&Arc<Rule>> {
        let mut best: Option<&Arc<Rule>> = None;
        for st in &self.subtables {
            if let Some(b) = best {
                if b.spec.priority > st.max_priority {
                    break;
                }
            }
            wc.or_assign(&st.mask);
            if let Some(r) = st.rules.get(&f.masked(&st.mask)).and_then(|v| v.first()) {
                if best.is_none_or(|b| better(r, b)) {
                    best = Some(r);
                }
            }
        }
        best
    }

    /// The rule with exactly this match and priority.
    pub fn find_exact(&self, m: &Match, priority: u16) -> Option<&Arc<Rule>> {
        let st = self.subtables.iter().find(|s| s.mask == m.mask)?;
        st.rules
            .get(&m.value)?
            .iter()
            .find(|r| r.spec.priority == priority)
    }

    /// Inserts `rule`; a rule with the same match and priority is replaced and returned.
    pub fn insert(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        let m = rule.spec.matches.clone();
        let prio = rule.spec.priority;
        let idx = match self.subtables.iter().position(|s| s.mask == m.mask) {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable {
                    mask: m.mask,
                    rules: HashMap::new(),
                    priorities: BTreeMap::new(),
                    max_priority: 0,
                });
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[idx];
        let bucket = st.rules.entry(m.value).or_default();
        if let Some(pos) = bucket.iter().position(|r| r.spec.priority == prio) {
            return Some(std::mem::replace(&mut bucket[pos], rule));
        }
        let pos = bucket
            .iter()
            .position(|r| better(&rule, r))
            .unwrap_or(bucket.len());
        bucket.insert(pos, rule);
        *st.priorities.entry(prio).or_insert(0) += 1;
        self.n_rules += 1;
        if st.priorities.len() == 1 || prio > st.max_priority {
            st.max_priority = prio;
            self.resort();
        }
        None
    }

    /// Removes the rule with `rule`'s match, priority and id; returns whether it was there.
    pub fn remove(&mut self, rule: &Rule) -> bool {
        let m = &rule.spec.matches;
        let Some(idx) = self.subtables.iter().position(|s| s.mask == m.mask) else {
            return false;
        };
        let st = &mut self.subtables[idx];
        let Some(bucket) = st.rules.get_mut(&m.value) else {
            return false;
        };
        let Some(pos) = bucket.iter().position(|r| r.id == rule.id) else {
            return false;
        };
        bucket.remove(pos);
        if bucket.is_empty() {
            st.rules.remove(&m.value);
        }
        let prio = rule.spec.priority;
        if let Some(c) = st.priorities.get_mut(&prio) {
            *c -= 1;
            if *c == 0 {
                st.priorities.remove(&prio);
            }
        }
        self.n_rules -= 1;
        match st.priorities.last_key_value() {
            None => {
                self.subtables.remove(idx);
            }
            Some((&p, _)) if p != st.max_priority => {
                st.max_priority = p;
                self.resort();
            }
            Some(_) => {}
        }
        true
    }

    fn resort(&mut self) {
        self.subtables
            .sort_by_key(|s| std::cmp::Reverse(s.max_priority));
    }

    /// Every rule, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.subtables
            .iter()
            .flat_map(|s| s.rules.values().flat_map(|b| b.iter()))
    }
}
