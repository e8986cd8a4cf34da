//! The per-bridge NetFlow state as Open vSwitch's `ofproto/netflow.c` keeps it: one record per
//! NetFlow key, fed with statistics pushes (`flow_update`), expired when its megaflow goes
//! (`flow_clear`), when its output interface changes, or every active timeout (`run`), and
//! turned into v5 datagrams of up to 30 records. Pure state: time comes in as arguments
//! (ns of the pipeline clock; the rules count in ms as OVS's `time_msec`), datagrams go out through
//! [`Exporter::take_datagrams`]; [`crate::collectors`] sends them.

use std::collections::HashMap;

use pipeline::flowkey::ipproto;

use crate::options::NetflowOptions;
use crate::wire::{Header, Record, HEADER_LEN, MAX_RECORDS, RECORD_LEN};

const NS_PER_MS: u64 = 1_000_000;

/// Output interface of a flow that was flooded (OVS `NF_OUT_FLOOD`).
pub const NF_OUT_FLOOD: u16 = 0xffff;
/// Output interface of a flow sent to several ports (OVS `NF_OUT_MULTI`).
pub const NF_OUT_MULTI: u16 = 0xfffe;
/// Output interface of a dropped flow (OVS `NF_OUT_DROP`).
pub const NF_OUT_DROP: u16 = 0xfffd;

/// The TOS bits a record carries: DSCP, ECN cleared.
pub const IP_DSCP_MASK: u8 = 0xfc;

/// Byte counts above this many times 2^32 are taken for a bug and not exported (OVS: what a
/// 10GbE link can carry in 600 s).
const IMPOSSIBLE_BYTES_HI: u64 = 175;

/// What identifies a NetFlow record: OVS's `netflow_flow_lookup` fields. `nw_tos` is kept with
/// ECN cleared: the megaflows NetFlow asks for match DSCP only, so two ECN values share one
/// megaflow and so one record, as in OVS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetflowKey {
    /// OpenFlow port.
    pub in_port: u16,
    pub nw_src: u32,
    pub nw_dst: u32,
    pub nw_tos: u8,
    pub nw_proto: u8,
    /// For ICMP: the type.
    pub tp_src: u16,
    /// For ICMP: the code.
    pub tp_dst: u16,
}

/// A push of statistics: what a megaflow carried since the last push.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_flags: u16,
    /// When the first of these packets passed, if the push is the megaflow's first (its
    /// upcall: a new record starts then); otherwise equal to `used_ms` (OVS's pushes always
    /// are: its upcall pushes the first packet at once).
    pub first_used_ms: u64,
    /// When a packet last used the megaflow (ms of the pipeline clock).
    pub used_ms: u64,
}

/// One record being accumulated (OVS `struct netflow_flow`).
#[derive(Clone, Debug)]
struct FlowRecord {
    /// When it was last expired (or the active-timeout base); `None` until first used.
    last_expired: Option<u64>,
    /// First-seen time of this record's flow (kept across active timeouts).
    created: u64,
    output_iface: u16,
    tcp_flags: u16,
    packets: u64,
    bytes: u64,
    /// Last-used time; 0 until a push says otherwise.
    used: u64,
}

/// Counters of one exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExporterStats {
    pub records: u64,
    pub datagrams: u64,
    /// Expiries refused for a byte counter beyond OVS's sanity bound.
    pub impossible_counters: u64,
}

/// The NetFlow state of one bridge.
pub struct Exporter {
    engine_type: u8,
    engine_id: u8,
    add_id_to_interface: bool,
    /// Creation time: sysuptime counts from here.
    boot_ms: u64,
    /// Unix time minus pipeline time, in ns (the daemon keeps it current; replay's clock is
    /// Unix time already, offset 0).
    wall_offset_ns: i128,
    /// OVS's `netflow_cnt`: records generated so far.
    flow_sequence: u32,
    /// The datagram being filled (empty: none), its record count and the number of its
    /// last record.
    packet: Vec<u8>,
    count: u16,
    header_seq: u32,
    active_timeout_ms: u64,
    next_timeout_ms: u64,
    reconfig_ms: u64,
    flows: HashMap<NetflowKey, FlowRecord>,
    out: Vec<Vec<u8>>,
    stats: ExporterStats,
}

impl Exporter {
    /// An exporter created at `now_ns` with `opts`.
    pub fn new(opts: &NetflowOptions, now_ns: u64) -> Exporter {
        let now_ms = now_ns / NS_PER_MS;
        let mut e = Exporter {
            engine_type: 0,
            engine_id: 0,
            add_id_to_interface: false,
            boot_ms: now_ms,
            wall_offset_ns: 0,
            flow_sequence: 0,
            packet: Vec::new(),
            count: 0,
            header_seq: 0,
            active_timeout_ms: 0,
            next_timeout_ms: 0,
            reconfig_ms: 0,
            flows: HashMap::new(),
            out: Vec::new(),
            stats: ExporterStats::default(),
        };
        e.set_options(opts, now_ns);
        e
    }

    /// Applies new options (OVS `netflow_set_options`): a changed active timeout restarts
    /// the timeout schedule.
    pub fn set_options(&mut self, opts: &NetflowOptions, now_ns: u64) {
        let now_ms = now_ns / NS_PER_MS;
        self.engine_type = opts.engine_type;
        self.engine_id = opts.engine_id;
        self.add_id_to_interface = opts.add_id_to_interface;
        let timeout = opts.active_timeout_ms();
        if timeout != self.active_timeout_ms {
            self.active_timeout_ms = timeout;
            self.reconfig_ms = now_ms;
            self.next_timeout_ms = now_ms;
        }
    }

    /// Sets Unix time minus pipeline time, in ns.
    pub fn set_wall_offset_ns(&mut self, offset: i128) {
        self.wall_offset_ns = offset;
    }

    pub fn stats(&self) -> ExporterStats {
        self.stats
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Accounts `stats` to the record of `key` whose flow goes to `output_iface` (OVS
    /// `netflow_flow_update`). A different output than the record's expires it at once.
    pub fn flow_update(
        &mut self,
        key: &NetflowKey,
        output_iface: u16,
        stats: &FlowStats,
        now_ns: u64,
    ) {
        let now_ms = now_ns / NS_PER_MS;
        let rec = self.flows.entry(*key).or_insert(FlowRecord {
            last_expired: None,
            created: stats.first_used_ms,
            output_iface,
            tcp_flags: 0,
            packets: 0,
            bytes: 0,
            used: 0,
        });
        if rec.output_iface != output_iface {
            let mut rec = rec.clone();
            self.expire(key, &mut rec, now_ns);
            rec.created = stats.first_used_ms;
            rec.output_iface = output_iface;
            self.flows.insert(*key, rec);
        }
        let active_timeout_ms = self.active_timeout_ms;
        let reconfig_ms = self.reconfig_ms;
        let Some(rec) = self.flows.get_mut(key) else {
            return;
        };
        rec.packets += stats.packets;
        rec.bytes += stats.bytes;
        rec.tcp_flags |= stats.tcp_flags;
        let used = rec.used.max(stats.used_ms);
        if rec.used != used {
            rec.used = used;
            let stale = rec.last_expired.is_none_or(|t| reconfig_ms > t);
            if active_timeout_ms == 0 || stale {
                // Keeps the timeout base current so that a flow seen again after a while
                // does not expire at once.
                rec.last_expired = Some(now_ms);
            }
        }
    }

    /// The megaflow of `key` is gone: exports what its record holds and forgets it (OVS
    /// `netflow_flow_clear`).
    pub fn flow_clear(&mut self, key: &NetflowKey, now_ns: u64) {
        if let Some(mut rec) = self.flows.remove(key) {
            self.expire(key, &mut rec, now_ns);
        }
    }

    /// Sends the datagram being filled, and at most once a second expires the records whose
    /// active timeout passed, forgetting those unused since their last expiry, and sends
    /// them (OVS `netflow_run`).
    pub fn run(&mut self, now_ns: u64) {
        let now_ms = now_ns / NS_PER_MS;
        self.flush();
        if self.active_timeout_ms == 0 || now_ms < self.next_timeout_ms {
            return;
        }
        self.next_timeout_ms = now_ms + 1000;
        let timeout = self.active_timeout_ms;
        // Key order: the same records come out in the same datagrams on every run.
        let mut due: Vec<NetflowKey> = self
            .flows
            .iter()
            .filter(|(_, r)| r.last_expired.is_some_and(|t| now_ms > t + timeout))
            .map(|(k, _)| *k)
            .collect();
        due.sort_unstable();
        for key in due {
            let Some(mut rec) = self.flows.remove(&key) else {
                continue;
            };
            let idle = rec.last_expired.is_some_and(|t| rec.used < t);
            self.expire(&key, &mut rec, now_ns);
            if !idle {
                self.flows.insert(key, rec);
            }
        }
        // OVS wakes its main loop at once when records wait, and sends them there.
        self.flush();
    }

    /// The datagrams completed so far, oldest first.
    pub fn take_datagrams(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    /// Exports a record's counts (several records when the bytes overflow 32 bits) and
    /// resets them (OVS `netflow_expire__`).
    fn expire(&mut self, key: &NetflowKey, rec: &mut FlowRecord, now_ns: u64) {
        let (mut pkts, mut bytes) = (rec.packets, rec.bytes);
        rec.last_expired = rec.last_expired.map(|t| t + self.active_timeout_ms);
        if pkts == 0 {
            return;
        }
        if bytes >> 32 <= IMPOSSIBLE_BYTES_HI {
            // Spread packets and bytes evenly so the bytes per packet look alike in each.
            let max = u64::from(u32::MAX);
            while bytes > 0 {
                let n_recs = bytes.div_ceil(max);
                let p = (pkts / n_recs) as u32;
                let b = (bytes / n_recs) as u32;
                self.record(key, rec, p, b, now_ns);
                pkts -= u64::from(p);
                bytes -= u64::from(b);
            }
        } else {
            self.stats.impossible_counters += 1;
        }
        rec.packets = 0;
        rec.bytes = 0;
        rec.tcp_flags = 0;
    }

    /// Appends one record to the datagram being filled (OVS `gen_netflow_rec`).
    fn record(
        &mut self,
        key: &NetflowKey,
        rec: &FlowRecord,
        packets: u32,
        octets: u32,
        now_ns: u64,
    ) {
        if self.packet.is_empty() {
            // The header's times are those of its first record.
            let unix_ns = (i128::from(now_ns) + self.wall_offset_ns).max(0) as u128;
            let header = Header {
                sysuptime: (now_ns / NS_PER_MS).saturating_sub(self.boot_ms) as u32,
                unix_secs: (unix_ns / 1_000_000_000) as u32,
                unix_nsecs: (unix_ns % 1_000_000_000) as u32,
                engine_type: self.engine_type,
                engine_id: self.engine_id,
                ..Header::default()
            };
            self.packet.reserve(HEADER_LEN + MAX_RECORDS * RECORD_LEN);
            header.emit(&mut self.packet);
            self.count = 0;
        }
        self.count += 1;
        // OVS numbers each record and leaves the last one's number in the header.
        let seq = self.flow_sequence;
        self.flow_sequence = self.flow_sequence.wrapping_add(1);
        let iface = |port: u16| {
            if self.add_id_to_interface {
                (u16::from(self.engine_id & 0x7f) << 9) | (port & 0x1ff)
            } else {
                port
            }
        };
        let (src_port, dst_port) = if key.nw_proto == ipproto::ICMP {
            (0, ((key.tp_src & 0xff) << 8) | (key.tp_dst & 0xff))
        } else {
            (key.tp_src, key.tp_dst)
        };
        let uptime = |t: u64| t.saturating_sub(self.boot_ms) as u32;
        let r = Record {
            src_addr: key.nw_src,
            dst_addr: key.nw_dst,
            input: iface(key.in_port),
            output: iface(rec.output_iface),
            packets,
            octets,
            first: uptime(rec.created),
            last: uptime(rec.created.max(rec.used)),
            src_port,
            dst_port,
            tcp_flags: rec.tcp_flags as u8,
            proto: key.nw_proto,
            tos: key.nw_tos & IP_DSCP_MASK,
            ..Record::default()
        };
        r.emit(&mut self.packet);
        self.header_seq = seq;
        self.stats.records += 1;
        if self.count as usize >= MAX_RECORDS {
            self.flush();
        }
    }

    /// Closes the datagram being filled: count and sequence into its header, then out.
    fn flush(&mut self) {
        if self.packet.is_empty() {
            return;
        }
        let mut d = std::mem::take(&mut self.packet);
        if let Some(c) = d.get_mut(2..4) {
            c.copy_from_slice(&self.count.to_be_bytes());
        }
        if let Some(c) = d.get_mut(16..20) {
            c.copy_from_slice(&self.header_seq.to_be_bytes());
        }
        self.count = 0;
        self.stats.datagrams += 1;
        self.out.push(d);
    }
}

#[cfg(test)]
mod tests;
