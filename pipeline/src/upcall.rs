//! The seam between the flow caches and whoever decides what a new flow does (OpenFlow translation
//! in the daemon and in replay; simple closures in tests and benches).

use std::sync::Arc;

use crate::{DpAction, FlowKey};

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

    /// Periodic upkeep on the pipeline's clock (rule timeouts, MAC aging). Called by the
    /// classifier at most about once a second of that clock.
    fn tick(&mut self, _now_ns: u64) {}

    /// Moves into `out` the frames translations asked to send, as `(port, frame)`: each is
    /// to run through the pipeline as if received on that port (an ARP request a tunnel
    /// output needs, sent into the underlay bridge from its LOCAL port). None by default.
    fn take_frames(&mut self, _out: &mut Vec<(u32, Vec<u8>)>) {}
}
