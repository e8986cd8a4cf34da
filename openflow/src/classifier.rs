//! One OpenFlow table as a priority classifier using tuple space search: rules are grouped by
//! their match mask into subtables, each a hash map from masked value to rules. A lookup
//! probes subtables in order of their highest priority and stops once no later subtable can
//! beat the best match; the masks of the probed subtables are exactly the key bits the
//! decision depended on (what the megaflow must match).
//!
//! A subtable's map is keyed by the 32-bit hash of the masked value, not by a copy of it (a
//! [`Fields`] is 360 bytes): each rule already holds its value, so a bucket's rules are
//! compared with it. The small entries make a table of 100k rules a few megabytes instead of
//! forty, and growing it cheap (page faults and rehashing were a third of adding 100k rules
//! in one bundle, BENCHMARKS.md "FLOW_MOD throughput").

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::rule::{Fields, Match, Rule};

/// The hash `Fields` gives (its `Hash` writes one `u32`, a hash of its words), taken as is.
#[derive(Default)]
struct ValueHash(u32);

impl Hasher for ValueHash {
    fn finish(&self) -> u64 {
        u64::from(self.0)
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = v;
    }
    // Only if `Fields` hashed otherwise: fold whatever it writes.
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    }
}

fn value_hash(v: &Fields) -> u32 {
    let mut h = ValueHash::default();
    v.hash(&mut h);
    h.0
}

/// The map's own hasher over those hashes: spreads them over 64 bits (the map takes its
/// probe position from the low bits and a tag from the high ones).
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// Rules whose masked values share a hash, best first (priority descending, then oldest);
/// almost always the rules of one value.
type Bucket = SmallVec<[Arc<Rule>; 1]>;

/// Rules sharing one mask.
#[derive(Clone, Debug)]
struct Subtable {
    mask: Fields,
    /// Hash of the masked value → its rules (and those of any value with the same hash).
    rules: HashMap<u32, Bucket, BuildHasherDefault<Spread>>,
    /// Priority → number of rules, to keep `max_priority` right after removals.
    priorities: BTreeMap<u16, u32>,
    max_priority: u16,
}

impl Subtable {
    /// The best rule whose value is `v`.
    #[inline]
    fn best(&self, v: &Fields) -> Option<&Arc<Rule>> {
        self.rules
            .get(&value_hash(v))?
            .iter()
            .find(|r| r.spec.matches.value == *v)
    }
}

/// A priority classifier.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    /// Ordered by `max_priority`, highest first.
    subtables: Vec<Subtable>,
    n_rules: usize,
    /// Rules with an idle or hard timeout: none, and expiry has nothing to look at here.
    n_timed: usize,
}

/// Whether `r` can time out.
fn timed(r: &Rule) -> bool {
    r.spec.idle_timeout != 0 || r.spec.hard_timeout != 0
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

    /// Rules with an idle or hard timeout.
    pub fn n_timed(&self) -> usize {
        self.n_timed
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
            if let Some(r) = st.best(&f.masked(&st.mask)) {
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
            .get(&value_hash(&m.value))?
            .iter()
            .find(|r| r.spec.priority == priority && r.spec.matches.value == m.value)
    }

    /// Inserts `rule`; a rule with the same match and priority is replaced and returned.
    pub fn insert(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        let m = &rule.spec.matches;
        let prio = rule.spec.priority;
        let idx = match self.subtables.iter().position(|s| s.mask == m.mask) {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable {
                    mask: m.mask.clone(),
                    rules: HashMap::default(),
                    priorities: BTreeMap::new(),
                    max_priority: 0,
                });
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[idx];
        let bucket = st.rules.entry(value_hash(&m.value)).or_default();
        if let Some(pos) = bucket
            .iter()
            .position(|r| r.spec.priority == prio && r.spec.matches.value == m.value)
        {
            self.n_timed =
                self.n_timed + usize::from(timed(&rule)) - usize::from(timed(&bucket[pos]));
            return Some(std::mem::replace(&mut bucket[pos], rule));
        }
        let pos = bucket
            .iter()
            .position(|r| better(&rule, r))
            .unwrap_or(bucket.len());
        self.n_timed += usize::from(timed(&rule));
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
        let h = value_hash(&m.value);
        let Some(bucket) = st.rules.get_mut(&h) else {
            return false;
        };
        let Some(pos) = bucket.iter().position(|r| r.id == rule.id) else {
            return false;
        };
        let gone = bucket.remove(pos);
        self.n_timed -= usize::from(timed(&gone));
        if bucket.is_empty() {
            st.rules.remove(&h);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_flow;
    use crate::rule::RuleStats;

    fn rule(id: u64, text: &str) -> Arc<Rule> {
        Arc::new(Rule {
            id,
            spec: parse_flow(text).unwrap_or_else(|e| panic!("{text}: {e}")),
            stats: Arc::new(RuleStats::default()),
            created_ns: 0,
            modified_ns: 0,
        })
    }

    fn ip(a: u32) -> String {
        format!(
            "{}.{}.{}.{}",
            a >> 24,
            (a >> 16) & 255,
            (a >> 8) & 255,
            a & 255
        )
    }

    /// Two IPv4 destinations whose masked values (under `ip,nw_dst=X`) hash alike.
    fn sharing_a_hash() -> (u32, u32) {
        let template = rule(0, "ip,nw_dst=10.0.0.1,actions=drop");
        let mut v = template.spec.matches.value.clone();
        let mut seen = HashMap::new();
        for a in 0x0a00_0000u32.. {
            v.key.nw_dst = a;
            if let Some(b) = seen.insert(value_hash(&v), a) {
                return (b, a);
            }
        }
        unreachable!("a 32-bit hash repeats within 2^32 values")
    }

    fn winner(c: &Classifier, dst: u32) -> Option<u64> {
        let mut f = Fields::default();
        f.key.dl_type = 0x0800;
        f.key.nw_dst = dst;
        let mut wc = Fields::default();
        c.lookup(&f, &mut wc).map(|r| r.id)
    }

    #[test]
    fn rules_that_can_time_out_are_counted_through_inserts_replacements_and_removals() {
        let mut c = Classifier::default();
        c.insert(rule(1, "ip,nw_dst=10.0.0.1,actions=drop"));
        c.insert(rule(2, "idle_timeout=5,ip,nw_dst=10.0.0.2,actions=drop"));
        c.insert(rule(3, "hard_timeout=9,ip,nw_dst=10.0.0.3,actions=drop"));
        assert_eq!(c.n_timed(), 2);
        // Replacing a rule that times out by one that does not, and the other way round.
        c.insert(rule(4, "ip,nw_dst=10.0.0.2,actions=drop"));
        assert_eq!(c.n_timed(), 1);
        c.insert(rule(5, "idle_timeout=1,ip,nw_dst=10.0.0.1,actions=drop"));
        assert_eq!(c.n_timed(), 2);
        assert!(c.remove(&rule(3, "ip,nw_dst=10.0.0.3,actions=drop")));
        assert!(!c.remove(&rule(3, "ip,nw_dst=10.0.0.3,actions=drop")));
        assert_eq!(c.n_timed(), 1);
        assert!(c.remove(&rule(5, "ip,nw_dst=10.0.0.1,actions=drop")));
        assert_eq!(c.n_timed(), 0);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn values_that_share_a_hash_are_told_apart() {
        let (a, b) = sharing_a_hash();
        let flow =
            |dst: u32, prio: u16| format!("priority={prio},ip,nw_dst={},actions=drop", ip(dst));
        let mut c = Classifier::default();
        assert!(c.insert(rule(1, &flow(a, 10))).is_none());
        assert!(c.insert(rule(2, &flow(b, 20))).is_none());
        assert!(c.insert(rule(3, &flow(a, 5))).is_none());
        assert_eq!(c.len(), 3);
        assert_eq!(c.n_subtables(), 1);
        assert_eq!(winner(&c, a), Some(1));
        assert_eq!(winner(&c, b), Some(2));
        assert_eq!(winner(&c, a + 1), None);
        let m = |dst: u32| rule(0, &flow(dst, 0)).spec.matches.clone();
        assert_eq!(c.find_exact(&m(a), 10).map(|r| r.id), Some(1));
        assert_eq!(c.find_exact(&m(a), 20).map(|r| r.id), None);
        assert_eq!(c.find_exact(&m(b), 20).map(|r| r.id), Some(2));
        // The same match and priority replaces, the other value's rule stays.
        let old = c.insert(rule(4, &flow(b, 20)));
        assert_eq!(old.map(|r| r.id), Some(2));
        assert_eq!(winner(&c, b), Some(4));
        assert_eq!(winner(&c, a), Some(1));
        assert!(c.remove(&rule(1, &flow(a, 10))));
        assert!(!c.remove(&rule(1, &flow(a, 10))));
        assert_eq!(winner(&c, a), Some(3));
        assert_eq!(winner(&c, b), Some(4));
        let mut ids: Vec<u64> = c.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [3, 4]);
        assert!(c.remove(&rule(3, &flow(a, 5))));
        assert!(c.remove(&rule(4, &flow(b, 20))));
        assert!(c.is_empty());
        assert_eq!(c.n_subtables(), 0);
    }
}
