//! The seam between the flow caches and whoever decides what a new flow does (OpenFlow translation
//! in the daemon and in replay; simple closures in tests and benches).

use std::sync::Arc;

use crate::flowkey::KEY_WORDS;
use crate::{DpAction, FlowKey};

/// [`UpcallResult::rewritten`] of a translation whose lookups saw a key that is not the
/// packet's at all (the outer header of a tunnel output, looked up in the underlay bridge):
/// every rule change may touch it.
pub const REWRITTEN_ALL: u32 = u32::MAX;

/// Receives the traffic of the megaflows that a translation produced: OpenFlow rules count
/// packets and bytes this way (and refresh their idle timeout), and NORMAL refreshes the MAC
/// entries it learned. Called with a megaflow's sums, never per packet: once per batch, or,
/// for a [`StatsSink::deferrable`] one, summed over the batches since the last push.
pub trait StatsSink: Send + Sync {
    fn credit(&self, packets: u64, bytes: u64, tcp_flags: u16, used_ns: u64);

    /// Whether the credits may come late, summed: up to the classifier's push interval
    /// while its PMD is busy, at once when it idles or the megaflow goes. Counters can
    /// (rules, NetFlow); a sink whose credit changes what the next packets do (MAC learning)
    /// cannot.
    fn deferrable(&self) -> bool {
        true
    }
}

/// What a translation decided for a flow.
#[derive(Clone)]
pub struct UpcallResult {
    /// What to do with every packet of the megaflow.
    pub actions: Vec<DpAction>,
    /// Every key bit the translation consulted; the megaflow matches exactly these bits.
    pub mask: FlowKey,
    /// Who gets the megaflow's statistics.
    pub sinks: Vec<Arc<dyn StatsSink>>,
    /// The key words (bit `i`: `FlowKey::words()[i]`) that a rule lookup of the translation
    /// saw other than the packet has them, because an earlier action wrote them: a
    /// [`RuleChange`] is tested against the megaflow's key on the other words only.
    pub rewritten: u32,
}

/// A rule added, changed or removed in the slow path, as the classifier sees it: the bits its
/// match constrains, in the classifier's key space (fields outside the packet key, such as
/// registers and metadata, are left out: any value may match them). A translation can come
/// out differently after the change only if the rule can match a packet of the megaflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleChange {
    /// The match's values (only bits of `mask`).
    pub value: FlowKey,
    pub mask: FlowKey,
}

impl RuleChange {
    /// A change whose match is `value`/`mask` (`value` is masked here).
    pub fn new(value: &FlowKey, mask: &FlowKey) -> RuleChange {
        RuleChange {
            value: value.masked(mask),
            mask: *mask,
        }
    }

    /// Whether the rule may match some packet of the megaflow of masked key `key` and mask
    /// `mask` whose translation rewrote the words `rewritten` before a lookup: no bit that
    /// both constrain, in a word the translation saw as the packet had it, differs.
    pub fn may_match(&self, key: &FlowKey, mask: &FlowKey, rewritten: u32) -> bool {
        let (k, m) = (key.words(), mask.words());
        let (v, rm) = (self.value.words(), self.mask.words());
        (0..KEY_WORDS).all(|i| rewritten & (1 << i) != 0 || (k[i] ^ v[i]) & m[i] & rm[i] == 0)
    }
}

/// The slow path of the classifier.
pub trait Upcall {
    /// Decides what packets with this key do, and which key bits that decision depends on.
    fn translate(&mut self, key: &FlowKey, now_ns: u64) -> UpcallResult;

    /// A number that changes whenever a translation may come out differently (rules changed,
    /// a MAC was learned or expired). The classifier revalidates its megaflows when it moves.
    fn generation(&self) -> u64;

    /// The part of [`Upcall::generation`] that configuration moves (rules, ports), as against
    /// learning. The classifier revalidates at once when this moves; a change that learning
    /// alone made may wait a little after a revalidation that itself learned (see flowcache's
    /// `Classify`). By default every change counts as configuration.
    fn config_generation(&self) -> u64 {
        self.generation()
    }

    /// Translates the key of a megaflow being revalidated. `used`: a packet hit the megaflow
    /// since the last revalidation. A translation for a megaflow nothing used must not learn
    /// what only new packets could show: a MAC that moved away from the megaflow's port stays
    /// moved (Open vSwitch's revalidators learn only from flows that saw new packets). By
    /// default, `translate`.
    fn retranslate(&mut self, key: &FlowKey, now_ns: u64, used: bool) -> UpcallResult {
        let _ = used;
        self.translate(key, now_ns)
    }

    /// Called at the start of every revalidation with the [`Upcall::generation`] just read,
    /// before [`Upcall::rule_changes`]: for what a revalidation ends whether or not any
    /// megaflow changes (NetFlow's records of the megaflows made before it, as Open vSwitch's
    /// revalidators end them). Nothing by default.
    fn revalidation_begins(&mut self, _generation: u64) {}

    /// Called at the start of every revalidation, after [`Upcall::generation`] was read: says
    /// what changed since the previous call (or since the upcall was made). When that was
    /// rule changes only, pushes them onto `changes` and returns true: the revalidation then
    /// retranslates only the megaflows one of them may match ([`RuleChange::may_match`]).
    /// False when anything else may have changed too (ports, groups, learning,
    /// configuration) or the changes are not known any more: every megaflow is revalidated.
    /// By default false.
    fn rule_changes(&mut self, changes: &mut Vec<RuleChange>) -> bool {
        let _ = changes;
        false
    }

    /// Periodic upkeep on the pipeline's clock (rule timeouts, MAC aging). Called by the
    /// classifier at most about once a second of that clock.
    fn tick(&mut self, _now_ns: u64) {}

    /// The classifier's report, about once a second of the pipeline's clock: its megaflows
    /// recirculate packets to `ids` (sorted, no repeats). An upcall that keeps frozen
    /// translation states by recirculation id frees those that no classifier named for a
    /// while. Nothing by default.
    fn keep_recirc(&mut self, _ids: &[u32], _now_ns: u64) {}

    /// Moves into `out` the frames translations asked to send, as `(port, frame)`: each is
    /// to run through the pipeline as if received on that port (an ARP request a tunnel
    /// output needs, sent into the underlay bridge from its LOCAL port). None by default.
    fn take_frames(&mut self, _out: &mut Vec<(u32, Vec<u8>)>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_change_may_match_a_megaflow_unless_a_bit_both_constrain_differs() {
        let mask = FlowKey {
            in_port: u32::MAX,
            dl_type: 0xffff,
            nw_src: u32::MAX,
            ..FlowKey::default()
        };
        let key = FlowKey {
            in_port: 3,
            dl_type: 0x0800,
            nw_src: 0x0a00_0001,
            ..FlowKey::default()
        };
        let rule = |in_port: u32, nw_dst: u32| {
            let value = FlowKey {
                in_port,
                dl_type: 0x0800,
                nw_dst,
                ..FlowKey::default()
            };
            let mask = FlowKey {
                in_port: u32::MAX,
                dl_type: 0xffff,
                nw_dst: u32::MAX,
                ..FlowKey::default()
            };
            RuleChange::new(&value, &mask)
        };
        // The megaflow does not look at nw_dst: some of its packets have any value there.
        assert!(rule(3, 0x0b00_0001).may_match(&key, &mask, 0));
        // in_port differs: none of its packets.
        assert!(!rule(4, 0x0b00_0001).may_match(&key, &mask, 0));
        // Unless its translation rewrote in_port before a lookup.
        let in_port_word = (FlowKey {
            in_port: u32::MAX,
            ..FlowKey::default()
        })
        .nonzero_words();
        assert!(rule(4, 0x0b00_0001).may_match(&key, &mask, in_port_word));
        assert!(rule(4, 0).may_match(&key, &mask, REWRITTEN_ALL));
        // A change on a prefix: the megaflow's source is inside 10.0.0.0/8, not 11.0.0.0/8.
        let prefix = |nw_src: u32| {
            RuleChange::new(
                &FlowKey {
                    nw_src,
                    ..FlowKey::default()
                },
                &FlowKey {
                    nw_src: 0xff00_0000,
                    ..FlowKey::default()
                },
            )
        };
        assert!(prefix(0x0a05_0505).may_match(&key, &mask, 0));
        assert!(!prefix(0x0b00_0000).may_match(&key, &mask, 0));
        // A catch-all change may match everything.
        assert!(RuleChange::new(&FlowKey::default(), &FlowKey::default()).may_match(&key, &mask, 0));
    }
}
