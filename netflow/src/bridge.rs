//! [`BridgeNetflow`]: NetFlow on one bridge. Translations (on the PMDs, in the upcall path)
//! ask it for a [`FlowSink`] per megaflow and hand it to the classifier with the rule sinks;
//! the control thread calls [`BridgeNetflow::run`] about once a second of the pipeline clock:
//! it reads every sink's counts since the last call into the exporter (OVS's revalidator
//! pushing megaflow stats), clears the records of megaflows that are gone, runs the active
//! timeouts and sends the datagrams. Nothing here runs per packet.
//!
//! A revalidation of the datapath's megaflows ([`BridgeNetflow::revalidated`]: a rule, port,
//! group or MAC changed anywhere) ends every record that megaflows made before it fed, even of
//! megaflows it kept as they were: Open vSwitch's revalidators clear each datapath flow's
//! translation cache when anything changed, and clearing its NetFlow entry exports the
//! record (`netflow_flow_clear`); the flow's later packets start a new one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use pipeline::{FlowKey, StatsSink};

use crate::collectors::Collectors;
use crate::exporter::{Exporter, ExporterStats, FlowStats};
use crate::options::NetflowOptions;
use crate::sink::{FlowSink, SinkCounts};

const NS_PER_MS: u64 = 1_000_000;

/// A sink the control thread follows, with what it had read of it.
struct Tracked {
    sink: Arc<FlowSink>,
    seen: SinkCounts,
}

struct State {
    options: NetflowOptions,
    exporter: Exporter,
    collectors: Collectors,
    tracked: Vec<Tracked>,
}

/// What `show-netflow` prints of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetflowStatus {
    pub options: NetflowOptions,
    /// The active timeout in effect, in seconds.
    pub active_timeout_s: u64,
    pub exporter: ExporterStats,
    /// Records being accumulated.
    pub flows: usize,
    /// Megaflows feeding them.
    pub megaflows: usize,
    /// `(target, datagrams sent, send failures, last error)`.
    pub targets: Vec<(SocketAddr, u64, u64, Option<String>)>,
}

/// NetFlow on one bridge. See the module documentation.
pub struct BridgeNetflow {
    /// Sinks translations made since the last run (the upcall path's only lock here).
    pending: Mutex<Pending>,
    state: Mutex<State>,
}

#[derive(Default)]
struct Pending {
    sinks: Vec<Arc<FlowSink>>,
    /// A revalidation came since the last run: every tracked sink's record ends, and those of
    /// the pending sinks before this index (made before it; those after are its own).
    revalidated: Option<usize>,
    /// The datapath generation of the last revalidation: the passes of other PMDs for the
    /// same change do not move the index.
    generation: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BridgeNetflow {
    /// NetFlow with `options`, created at `now_ns` (sysuptime counts from here), sending over
    /// UDP.
    pub fn new(options: NetflowOptions, now_ns: u64) -> BridgeNetflow {
        let collectors = Collectors::udp(&options.targets);
        BridgeNetflow::with_collectors(options, collectors, now_ns)
    }

    /// NetFlow that keeps its datagrams instead of sending them (replay, tests).
    pub fn capturing(options: NetflowOptions, now_ns: u64) -> BridgeNetflow {
        let collectors = Collectors::capture(&options.targets);
        BridgeNetflow::with_collectors(options, collectors, now_ns)
    }

    fn with_collectors(options: NetflowOptions, collectors: Collectors, now_ns: u64) -> Self {
        BridgeNetflow {
            pending: Mutex::new(Pending::default()),
            state: Mutex::new(State {
                exporter: Exporter::new(&options, now_ns),
                options,
                collectors,
                tracked: Vec::new(),
            }),
        }
    }

    /// New options (OVS `netflow_set_options`): records and sysuptime go on; new targets get
    /// new sockets (a capture stays a capture).
    pub fn set_options(&self, options: NetflowOptions, now_ns: u64) {
        let mut st = lock(&self.state);
        st.exporter.set_options(&options, now_ns);
        if options.targets != st.options.targets {
            st.collectors = if st.collectors.is_capture() {
                Collectors::capture(&options.targets)
            } else {
                Collectors::udp(&options.targets)
            };
        }
        st.options = options;
    }

    pub fn options(&self) -> NetflowOptions {
        lock(&self.state).options.clone()
    }

    /// Sets Unix time minus pipeline time (ns), for the headers' unix_secs and unix_nsecs.
    pub fn set_wall_offset_ns(&self, offset: i128) {
        lock(&self.state).exporter.set_wall_offset_ns(offset);
    }

    /// The sink for a megaflow of `key` (as the bridge sees it: OpenFlow in_port) whose
    /// translation outputs to `output_iface`; `None` for what NetFlow does not report (not
    /// IPv4).
    pub fn sink(&self, key: &FlowKey, output_iface: u16) -> Option<Arc<dyn StatsSink>> {
        let k = crate::netflow_key(key)?;
        let s = Arc::new(FlowSink::new(k, output_iface));
        lock(&self.pending).sinks.push(s.clone());
        Some(s)
    }

    /// The datapath revalidates its megaflows at `generation`: the next run ends the records
    /// of every megaflow made before (see the module documentation). Each PMD's pass calls
    /// it; the first of a generation counts (the sinks the others' passes made are new).
    pub fn revalidated(&self, generation: u64) {
        let mut p = lock(&self.pending);
        if p.generation != Some(generation) {
            p.generation = Some(generation);
            p.revalidated = Some(p.sinks.len());
        }
    }

    /// Reads the megaflows' counts into the records, clears those whose megaflow is gone,
    /// runs the active timeouts and sends what is ready. Call about once a second.
    pub fn run(&self, now_ns: u64) {
        let (sinks, revalidated) = {
            let mut p = lock(&self.pending);
            (std::mem::take(&mut p.sinks), p.revalidated.take())
        };
        let mut st = lock(&self.state);
        let st = &mut *st;
        // Sinks before this index end their records (a revalidation came).
        let clear_before = revalidated.map(|n| st.tracked.len() + n);
        st.tracked.extend(sinks.into_iter().map(|sink| Tracked {
            sink,
            seen: SinkCounts::default(),
        }));
        let exporter = &mut st.exporter;
        let mut i = 0;
        st.tracked.retain_mut(|t| {
            let revalidated = clear_before.is_some_and(|n| i < n);
            i += 1;
            // Orphaned first: then the counts below are final.
            let gone = t.sink.orphaned();
            let c = t.sink.counts();
            if c.packets != t.seen.packets {
                let stats = FlowStats {
                    packets: c.packets.wrapping_sub(t.seen.packets),
                    bytes: c.bytes.wrapping_sub(t.seen.bytes),
                    tcp_flags: t.sink.take_tcp_flags(),
                    first_used_ms: if t.seen.packets == 0 {
                        c.first_used_ns / NS_PER_MS
                    } else {
                        c.used_ns / NS_PER_MS
                    },
                    used_ms: c.used_ns / NS_PER_MS,
                };
                exporter.flow_update(&t.sink.key, t.sink.output_iface, &stats, now_ns);
                t.seen = c;
            }
            if (gone || revalidated) && c.packets != 0 {
                exporter.flow_clear(&t.sink.key, now_ns);
            }
            !gone
        });
        exporter.run(now_ns);
        for d in exporter.take_datagrams() {
            st.collectors.send(&d);
        }
    }

    /// Datagrams a capturing exporter kept, with their targets.
    pub fn take_captured(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        lock(&self.state).collectors.take_captured()
    }

    pub fn status(&self) -> NetflowStatus {
        let st = lock(&self.state);
        NetflowStatus {
            options: st.options.clone(),
            active_timeout_s: st.options.active_timeout_ms() / 1000,
            exporter: st.exporter.stats(),
            flows: st.exporter.len(),
            megaflows: st.tracked.len() + lock(&self.pending).sinks.len(),
            targets: st
                .collectors
                .targets
                .iter()
                .map(|t| (t.addr, t.sent, t.send_failures, t.last_error.clone()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_datagram;
    use crate::NF_OUT_FLOOD;
    use pipeline::flowkey::ethertype;

    const S: u64 = 1_000_000_000;

    fn key(in_port: u32, src: u32, dst: u32) -> FlowKey {
        FlowKey {
            in_port,
            dl_type: ethertype::IPV4,
            nw_src: src,
            nw_dst: dst,
            nw_proto: 6,
            nw_tos: 0x03,
            tp_src: 1234,
            tp_dst: 80,
            ..FlowKey::default()
        }
    }

    fn records(nf: &BridgeNetflow) -> Vec<(SocketAddr, crate::wire::Record)> {
        nf.take_captured()
            .into_iter()
            .flat_map(|(to, d)| {
                let (_, r) = parse_datagram(&d).unwrap();
                r.into_iter().map(move |r| (to, r))
            })
            .collect()
    }

    #[test]
    fn megaflow_sinks_feed_records_and_a_gone_megaflow_clears_its_own() {
        let opts =
            NetflowOptions::parse_args(&["targets=127.0.0.1:2055,[::1]:2056", "active_timeout=60"])
                .unwrap();
        let nf = BridgeNetflow::capturing(opts, 0);
        // Not IPv4: no sink.
        let arp = FlowKey {
            dl_type: ethertype::ARP,
            ..FlowKey::default()
        };
        assert!(nf.sink(&arp, 2).is_none());

        // The miss is flooded, then (learned) a new megaflow goes to port 2.
        let k = key(1, 1, 2);
        let flooded = nf.sink(&k, NF_OUT_FLOOD).unwrap();
        flooded.credit(1, 74, 0x02, S);
        drop(flooded); // revalidated away
        let unicast = nf.sink(&k, 2).unwrap();
        unicast.credit(2, 140, 0x10, S + S / 2);
        nf.run(2 * S);
        let r = records(&nf);
        // The flooded record, once per collector.
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.to_string(), "127.0.0.1:2055");
        assert_eq!(r[1].0.to_string(), "[::1]:2056");
        assert_eq!(
            (r[0].1.output, r[0].1.packets, r[0].1.tcp_flags),
            (65535, 1, 0x02)
        );
        assert_eq!(r[0].1, r[1].1);
        assert_eq!(nf.status().flows, 1);

        unicast.credit(1, 70, 0x01, 3 * S);
        drop(unicast); // idle eviction
        nf.run(4 * S);
        let r = records(&nf);
        assert_eq!(r.len(), 2);
        let rec = r[0].1;
        assert_eq!(
            (
                rec.output,
                rec.packets,
                rec.octets,
                rec.tcp_flags,
                rec.first,
                rec.last
            ),
            (2, 3, 210, 0x11, 1500, 3000)
        );
        let st = nf.status();
        assert_eq!((st.flows, st.megaflows), (0, 0));
        assert_eq!(st.targets[0].1, 2);
    }

    #[test]
    fn a_revalidation_ends_the_records_of_the_megaflows_made_before_it() {
        let opts =
            NetflowOptions::parse_args(&["targets=127.0.0.1:2055", "active_timeout=60"]).unwrap();
        let nf = BridgeNetflow::capturing(opts, 0);
        let (a, b, c) = (key(1, 1, 2), key(1, 3, 4), key(1, 5, 6));
        // `a` is tracked already; `b` was made since the last run; both kept by the
        // revalidation, which made `c`.
        let kept = nf.sink(&a, 2).unwrap();
        kept.credit(3, 300, 0, S);
        nf.run(S);
        assert!(records(&nf).is_empty());
        let young = nf.sink(&b, 2).unwrap();
        young.credit(1, 100, 0, S + 1);
        nf.revalidated(7);
        nf.revalidated(7); // a second PMD's pass for the same change: the first one counts
        let new = nf.sink(&c, 2).unwrap();
        new.credit(5, 500, 0, S + 2);
        nf.run(2 * S);
        let mut r: Vec<(u32, u32)> = records(&nf)
            .iter()
            .map(|(_, r)| (r.src_addr, r.packets))
            .collect();
        r.sort();
        assert_eq!(r, vec![(1, 3), (3, 1)]);
        // The kept megaflows go on feeding new records; nothing more leaves until a change.
        kept.credit(2, 200, 0, 3 * S);
        nf.run(3 * S);
        assert!(records(&nf).is_empty());
        assert_eq!(nf.status().flows, 2, "records of a and c");
        drop((kept, young, new));
        nf.run(4 * S);
        let mut r: Vec<(u32, u32)> = records(&nf)
            .iter()
            .map(|(_, r)| (r.src_addr, r.packets))
            .collect();
        r.sort();
        assert_eq!(r, vec![(1, 2), (5, 5)]);
    }

    #[test]
    fn a_second_change_before_the_run_ends_the_records_of_the_megaflows_made_between() {
        let opts = NetflowOptions::parse_args(&["targets=127.0.0.1:2055"]).unwrap();
        let nf = BridgeNetflow::capturing(opts, 0);
        nf.revalidated(1);
        let between = nf.sink(&key(1, 1, 2), 2).unwrap();
        between.credit(2, 200, 0, S);
        nf.revalidated(2);
        let after = nf.sink(&key(1, 3, 4), 2).unwrap();
        after.credit(1, 100, 0, S);
        nf.run(2 * S);
        let r: Vec<(u32, u32)> = records(&nf)
            .iter()
            .map(|(_, r)| (r.src_addr, r.packets))
            .collect();
        assert_eq!(r, vec![(1, 2)]);
        drop((between, after));
    }

    #[test]
    fn the_mask_matches_the_netflow_fields() {
        let mut mask = FlowKey::default();
        crate::mask_wc(&key(1, 1, 2), &mut mask);
        assert_eq!(
            (
                mask.nw_src,
                mask.nw_dst,
                mask.nw_proto,
                mask.tp_src,
                mask.tp_dst,
                mask.nw_tos
            ),
            (u32::MAX, u32::MAX, 0xff, 0xffff, 0xffff, 0xfc)
        );
        let icmp = FlowKey {
            nw_proto: 1,
            ..key(1, 1, 2)
        };
        let mut mask = FlowKey::default();
        crate::mask_wc(&icmp, &mut mask);
        assert_eq!((mask.tp_src, mask.tp_dst), (0xff, 0xff));
        let v6 = FlowKey {
            dl_type: ethertype::IPV6,
            ..FlowKey::default()
        };
        let mut mask = FlowKey::default();
        crate::mask_wc(&v6, &mut mask);
        // Not IPv4: only the EtherType, so that this megaflow takes no IPv4 packet.
        assert_eq!(
            mask,
            FlowKey {
                dl_type: u16::MAX,
                ..FlowKey::default()
            }
        );
        assert_eq!(crate::netflow_key(&key(1, 1, 2)).map(|k| k.nw_tos), Some(0));
    }
}
