//! `vecswitch pktgen`: a packet generator over AF_XDP (the role of trafgen or testpmd's
//! txonly). It transmits a [`TrafficProfile`]'s frames on one interface at a token-bucket rate
//! (or as fast as the port takes them) for a duration or a count, optionally receives and
//! counts its own frames on a second interface in the same loop, and reports Mpps, Gbps, loss
//! and latency percentiles. Frames live in the port's UMEM: a frame gets its flow's template
//! copied in only when it last carried another flow, and then only its 16-byte stamp (magic,
//! sequence, CLOCK_MONOTONIC transmit time, placed right after the L4 header) and the L4
//! checksum are rewritten, the checksum incrementally from the template's. The receiver
//! recognises frames by the stamp's magic, so it counts only ours and can run in another
//! process (`--rx-only`): the timestamps are the system-wide monotonic clock.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline::buffer::{FRAME_SIZE, HEADROOM};
use pipeline::checksum::fold;
use serde::Serialize;

use crate::loss_account::{breakdown, LossBreakdown, LossSnapshot, LossSources};
use ports::afxdp::{RxDesc, XdpMode, XdpModeRequest, XskConfig, XskError, XskPort};
use ports::generator::traffic::{
    parse_profile, Generator, Protocol, TrafficError, TrafficProfile, FCS_LEN,
};
pub use ports::sys::monotonic_ns;

/// Bytes of the stamp written after the L4 header: magic (4), sequence (4), transmit time in
/// CLOCK_MONOTONIC nanoseconds (8), all big-endian.
pub const STAMP_LEN: usize = 16;
/// The stamp's first four bytes ("vsPG").
pub const STAMP_MAGIC: u32 = 0x7673_5047;
/// Bytes a frame occupies on an Ethernet wire beyond its L2 bytes: FCS (4), preamble and
/// start delimiter (8), inter-frame gap (12).
pub const WIRE_OVERHEAD: usize = 24;
/// Largest batch of descriptors per transmit call.
pub const MAX_BATCH: u32 = 256;
/// How long to keep receiving after the last transmission before counting losses.
pub const DEFAULT_DRAIN: Duration = Duration::from_millis(200);

const ETH_LEN: usize = 14;
const IPV4_AT: usize = ETH_LEN;
const L4_AT: usize = ETH_LEN + 20;
/// How often the progress callback runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Errors of setting up a run; each names the option (CLI flag name) it is about.
#[derive(Debug, thiserror::Error)]
pub enum PktgenError {
    /// An option's value was refused.
    #[error("{field}: {reason}")]
    Invalid {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The traffic profile was refused (the error names the profile key).
    #[error("profile: {0}")]
    Profile(#[from] TrafficError),
    /// The switch's counters could not be read (`--socket`).
    #[error("socket: {0}")]
    Switch(String),
    /// The AF_XDP port on an interface could not be opened.
    #[error("{field} {ifname:?}: {source}")]
    Port {
        /// `port` or `rx`.
        field: &'static str,
        /// The interface.
        ifname: String,
        /// What the port said.
        #[source]
        source: XskError,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> PktgenError {
    PktgenError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Transmit rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// As fast as the port takes frames.
    Max,
    /// Frames per second.
    Pps(f64),
}

/// Reads a rate: `max`, or a positive number of frames per second with an optional `k`, `M`
/// or `G` multiplier and an optional `pps` suffix (`20000`, `200k`, `1.5M`, `2Mpps`).
pub fn parse_rate(s: &str) -> Result<Rate, PktgenError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let t = t
        .strip_suffix("pps")
        .or_else(|| t.strip_suffix("PPS"))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        invalid(
            "rate",
            format!("{s:?} is not max or a number like 200k, 1.5M"),
        )
    })?;
    let pps = v * mult;
    if !pps.is_finite() || pps <= 0.0 {
        return Err(invalid("rate", format!("{s:?} must be more than 0 pps")));
    }
    Ok(Rate::Pps(pps))
}

/// Reads a duration: seconds (`10`, `1.5`, `10s`), or with `ms` or `m` (minutes).
pub fn parse_duration(s: &str) -> Result<Duration, PktgenError> {
    let t = s.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| invalid("duration", format!("{s:?} is not a number of seconds")))?;
    let secs = v * unit;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(invalid("duration", format!("{s:?} must be more than 0")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Reads an XDP mode: `auto`, `native` (or `driver`), `generic` (or `skb`).
pub fn parse_xdp_mode(s: &str) -> Result<XdpModeRequest, PktgenError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(XdpModeRequest::Auto),
        "native" | "driver" | "drv" => Ok(XdpModeRequest::Driver),
        "generic" | "skb" => Ok(XdpModeRequest::Generic),
        _ => Err(invalid(
            "xdp-mode",
            format!("{s:?}: expected auto, native or generic"),
        )),
    }
}

/// What a run does.
#[derive(Clone, Debug)]
pub struct PktgenOptions {
    /// Interface to transmit on (to receive on when `rx_only`).
    pub port: String,
    /// Queue of `port` (and of `rx`).
    pub queue: u32,
    pub profile: TrafficProfile,
    pub rate: Rate,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames sent (`rx_only`: received).
    pub count: Option<u64>,
    /// Also receive and count our frames on this interface.
    pub rx: Option<String>,
    /// Only receive and count, on `port`.
    pub rx_only: bool,
    /// Descriptors per transmit call (`1..=MAX_BATCH`).
    pub batch: u32,
    pub xdp_mode: XdpModeRequest,
    /// Receive time allowed after the last transmission.
    pub drain: Duration,
    /// Set from outside (a signal handler) to end the run early; the report still comes.
    pub stop: Option<Arc<AtomicBool>>,
    /// Pin the calling thread to this core first (keep the generator off the switch's PMD
    /// cores: two busy pollers on one core measure the scheduler, not the switch).
    pub core: Option<usize>,
    /// The switch's control socket: the report says where the lost frames went, the
    /// switch's named drops among them ([`crate::loss_account`]).
    pub socket: Option<PathBuf>,
}

impl PktgenOptions {
    /// Defaults: queue 0, the default profile, max rate, no limit, batch 64, auto XDP mode.
    pub fn new(port: &str) -> PktgenOptions {
        PktgenOptions {
            port: port.to_string(),
            queue: 0,
            profile: TrafficProfile::default(),
            rate: Rate::Max,
            duration: None,
            count: None,
            rx: None,
            rx_only: false,
            batch: 64,
            xdp_mode: XdpModeRequest::Auto,
            drain: DEFAULT_DRAIN,
            stop: None,
            core: None,
            socket: None,
        }
    }

    /// Checks the options that do not need the interfaces.
    pub fn validate(&self) -> Result<(), PktgenError> {
        self.profile.validate()?;
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(invalid(
                "batch",
                format!("{} is outside 1..={MAX_BATCH}", self.batch),
            ));
        }
        if self.count == Some(0) {
            return Err(invalid("count", "must be at least 1"));
        }
        if self.port.is_empty() {
            return Err(invalid("port", "no interface given"));
        }
        if let Some(rx) = &self.rx {
            if self.rx_only {
                return Err(invalid(
                    "rx",
                    "--rx-only receives on --port; --rx is for sending and receiving",
                ));
            }
            if rx == &self.port {
                return Err(invalid(
                    "rx",
                    "must be another interface than --port (run a second pktgen with --rx-only \
                     to count on the same one)",
                ));
            }
            if StampLayout::new(&self.profile).is_none() {
                return Err(invalid(
                    "size",
                    format!(
                        "{:?} frames of {} bytes have no room for the {STAMP_LEN}-byte stamp \
                         that receive counting needs",
                        self.profile.protocol,
                        self.profile.frame_size + FCS_LEN
                    ),
                ));
            }
        }
        if self.duration.is_none() && self.count.is_none() && self.stop.is_none() {
            return Err(invalid(
                "duration",
                "give a duration or a count (or a stop flag)",
            ));
        }
        Ok(())
    }
}

/// A snapshot handed to the progress callback about four times a second.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub elapsed: Duration,
    pub sent: u64,
    /// Our frames received so far (0 without a receiver).
    pub received: u64,
    /// Transmit rate over the last interval.
    pub tx_mpps: f64,
    /// Receive rate (our frames) over the last interval.
    pub rx_mpps: f64,
    /// Fraction done (0..=1) when the run has a count or a duration.
    pub done: Option<f64>,
}

/// Latency percentiles in nanoseconds; each is the upper edge of its histogram bucket (at
/// most ~3 % above the true value) capped at the maximum.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub min_ns: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct PktgenReport {
    /// `tx`, `tx+rx` or `rx`.
    pub mode: &'static str,
    pub port: String,
    pub rx_port: Option<String>,
    /// `none` when transmitting (the generator's port runs without an XDP program); for `rx`,
    /// the receiving port's hook: `driver` or `generic`.
    pub xdp_mode: &'static str,
    /// Frame bytes without FCS (the L2 bytes handed to the port).
    pub frame_size: usize,
    pub flows: u32,
    pub protocol: &'static str,
    /// Requested rate; `None` is max.
    pub rate_pps: Option<f64>,
    /// Transmit (or, for `rx`, receive) phase, without the drain wait.
    pub elapsed_s: f64,
    pub sent: u64,
    pub tx_mpps: f64,
    /// Gbit/s of frame bytes without FCS.
    pub tx_gbps_l2: f64,
    /// Gbit/s on an Ethernet wire: frame bytes plus 24 (FCS, preamble, inter-frame gap).
    pub tx_gbps_wire: f64,
    /// Our frames received.
    pub received: Option<u64>,
    /// Other frames seen by the receiver (not counted).
    pub rx_other: Option<u64>,
    /// `sent - received` (negative would mean duplicates); only when this run sent and received.
    pub lost: Option<i64>,
    pub loss_pct: Option<f64>,
    /// Receive rate of our frames over the receive phase (first to last frame for `rx`).
    pub rx_mpps: Option<f64>,
    pub rx_gbps_l2: Option<f64>,
    pub rx_gbps_wire: Option<f64>,
    /// Receive time minus the stamp's transmit time.
    pub latency: Option<Latency>,
    /// Frames received whose sequence number was lower than one before them.
    pub rx_reordered: Option<u64>,
    /// Kernel: descriptors the transmit ring refused as invalid.
    pub tx_invalid_descs: u64,
    /// Wake-up system calls the transmit port made.
    pub tx_wakeups: u64,
    /// Kernel: frames the receive socket dropped (ring full or no fill frames).
    pub rx_dropped: Option<u64>,
    /// Where the lost frames went (with a receiver).
    pub losses: Option<LossBreakdown>,
    /// The receive socket's losses by kernel counter, for [`PktgenReport::losses`].
    #[serde(skip)]
    rx_losses: Vec<(&'static str, u64)>,
}

impl PktgenReport {
    /// A human-readable multi-line summary.
    pub fn summary(&self) -> String {
        let hook = match self.xdp_mode {
            "none" => "transmit-only, no XDP program".to_string(),
            m => format!("{m} XDP"),
        };
        let mut s = format!(
            "pktgen {} on {} ({hook}), {} B frames (+{FCS_LEN} FCS), {} flow(s), {}, rate {}\n",
            self.mode,
            self.port,
            self.frame_size,
            self.flows,
            self.protocol,
            self.rate_pps
                .map_or("max".to_string(), |r| format!("{r:.0} pps")),
        );
        if self.mode != "rx" {
            s += &format!(
                "  tx: {} frames in {:.3} s = {:.3} Mpps, {:.3} Gbps L2 (frame bytes), \
                 {:.3} Gbps wire (+24 B FCS/preamble/IFG); {} wake-ups, {} invalid descriptors\n",
                self.sent,
                self.elapsed_s,
                self.tx_mpps,
                self.tx_gbps_l2,
                self.tx_gbps_wire,
                self.tx_wakeups,
                self.tx_invalid_descs
            );
        }
        if let (Some(rx), Some(mpps)) = (self.received, self.rx_mpps) {
            s += &format!(
                "  rx{}: {rx} frames = {mpps:.3} Mpps, {:.3} Gbps L2, {:.3} Gbps wire; {} other \
                 frames, {} reordered, {} dropped by the socket\n",
                self.rx_port
                    .as_ref()
                    .map_or(String::new(), |p| format!(" on {p}")),
                self.rx_gbps_l2.unwrap_or(0.0),
                self.rx_gbps_wire.unwrap_or(0.0),
                self.rx_other.unwrap_or(0),
                self.rx_reordered.unwrap_or(0),
                self.rx_dropped.unwrap_or(0),
            );
        }
        if let (Some(lost), Some(pct)) = (self.lost, self.loss_pct) {
            s += &format!("  loss: {lost} frames ({pct:.4} %)\n");
        }
        if let Some(l) = &self.losses {
            s += &l.text();
        }
        if let Some(l) = self.latency {
            s += &format!(
                "  latency (us): min {:.1} mean {:.1} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} \
                 max {:.1} ({} samples)\n",
                l.min_ns as f64 / 1e3,
                l.mean_ns as f64 / 1e3,
                l.p50_ns as f64 / 1e3,
                l.p90_ns as f64 / 1e3,
                l.p99_ns as f64 / 1e3,
                l.p999_ns as f64 / 1e3,
                l.max_ns as f64 / 1e3,
                l.samples
            );
        }
        s
    }
}

/// Where the stamp and the L4 checksum sit in a profile's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StampLayout {
    /// Offset of the stamp (right after the L4 header).
    pub stamp_at: usize,
    /// Offset of the L4 checksum.
    pub csum_at: usize,
    /// UDP: a computed checksum of 0 is sent as 0xffff.
    pub udp: bool,
}

impl StampLayout {
    /// The layout for `profile`, or `None` when its frames have no room for a stamp.
    pub fn new(profile: &TrafficProfile) -> Option<StampLayout> {
        let (hdr, csum) = match profile.protocol {
            Protocol::Udp => (8, 6),
            Protocol::Tcp => (20, 16),
            Protocol::Icmp => (8, 2),
        };
        let stamp_at = L4_AT + hdr;
        (stamp_at + STAMP_LEN <= profile.frame_size).then_some(StampLayout {
            stamp_at,
            csum_at: L4_AT + csum,
            udp: profile.protocol == Protocol::Udp,
        })
    }
}

/// Writes the stamp into `frame` (a copy of `template` apart from an earlier stamp and
/// checksum) and sets the L4 checksum from the template's by RFC 1624 over the stamp's eight
/// words. Does nothing if the frames are shorter than the layout (checked at setup).
#[inline]
pub fn stamp(frame: &mut [u8], template: &[u8], layout: &StampLayout, seq: u32, tx_ns: u64) {
    let mut st = [0u8; STAMP_LEN];
    st[..4].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
    st[4..8].copy_from_slice(&seq.to_be_bytes());
    st[8..].copy_from_slice(&tx_ns.to_be_bytes());
    let (Some(old), Some(old_csum)) = (
        template.get(layout.stamp_at..layout.stamp_at + STAMP_LEN),
        template.get(layout.csum_at..layout.csum_at + 2),
    ) else {
        return;
    };
    let mut acc = u32::from(!u16::from_be_bytes([old_csum[0], old_csum[1]]));
    for (o, n) in old.chunks_exact(2).zip(st.chunks_exact(2)) {
        acc += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    let mut csum = !fold(acc);
    if layout.udp && csum == 0 {
        csum = 0xffff;
    }
    if let Some(dst) = frame.get_mut(layout.stamp_at..layout.stamp_at + STAMP_LEN) {
        dst.copy_from_slice(&st);
    } else {
        return;
    }
    if let Some(dst) = frame.get_mut(layout.csum_at..layout.csum_at + 2) {
        dst.copy_from_slice(&csum.to_be_bytes());
    }
}

/// The (sequence, transmit time) of a stamped IPv4 UDP/TCP/ICMP frame, found by parsing the
/// headers (so any profile's frames are recognised), or `None` if the frame is not ours.
#[inline]
pub fn read_stamp(frame: &[u8]) -> Option<(u32, u64)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(frame.get(IPV4_AT)? & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let l4 = IPV4_AT + ihl;
    let hdr = match *frame.get(IPV4_AT + 9)? {
        1 | 17 => 8,
        6 => usize::from(frame.get(l4 + 12)? >> 4) * 4,
        _ => return None,
    };
    let st = frame.get(l4 + hdr..l4 + hdr + STAMP_LEN)?;
    if st[..4] != STAMP_MAGIC.to_be_bytes() {
        return None;
    }
    let seq = u32::from_be_bytes([st[4], st[5], st[6], st[7]]);
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&st[8..]);
    Some((seq, u64::from_be_bytes(ts)))
}

/// Sub-bucket bits of the latency histogram: 32 buckets per power of two (~3 % resolution).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// A log-linear histogram of nanosecond values with a fixed number of buckets: values below
/// 32 are exact, above that each power of two is cut into 32 buckets.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    buckets: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // >= SUB_BITS
    let shift = e - u64::from(SUB_BITS);
    let m = (v >> shift) - SUB;
    (SUB + shift * SUB + m) as usize
}

/// The largest value that falls into bucket `b`.
fn bucket_high(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let shift = (b - SUB) / SUB;
    let m = (b - SUB) % SUB;
    ((SUB + m + 1) << shift).wrapping_sub(1)
}

impl LatencyHistogram {
    /// Counts one value.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        if let Some(b) = self.buckets.get_mut(bucket_of(ns)) {
            *b += 1;
        }
        self.count += 1;
        self.sum += u128::from(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value below or at which a fraction `q` (0..=1) of the samples lie, as the upper
    /// edge of its bucket capped at the maximum; `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_high(b).min(self.max).max(self.min));
            }
        }
        Some(self.max)
    }

    /// The summary, `None` when empty.
    pub fn latency(&self) -> Option<Latency> {
        Some(Latency {
            samples: self.count,
            min_ns: self.min.min(self.max),
            mean_ns: (self.sum / u128::from(self.count.max(1))) as u64,
            p50_ns: self.percentile(0.5)?,
            p90_ns: self.percentile(0.9)?,
            p99_ns: self.percentile(0.99)?,
            p999_ns: self.percentile(0.999)?,
            max_ns: self.max,
        })
    }
}

/// A token bucket on the monotonic clock, consulted once per batch.
struct Bucket {
    rate: f64,
    tokens: f64,
    cap: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, cap: u32, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: 0.0,
            cap: f64::from(cap),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.cap);
        self.last = now;
    }

    /// Whole tokens available.
    fn available(&self) -> u64 {
        self.tokens as u64
    }

    fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    /// Time until `n` tokens are there.
    fn wait_for(&self, n: u64) -> Duration {
        let missing = (n as f64 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.rate)
    }
}

/// The receive side: a port, its counters and the latency histogram.
struct Receiver {
    port: XskPort,
    descs: Vec<RxDesc>,
    received: u64,
    bytes: u64,
    other: u64,
    reordered: u64,
    last_seq: Option<u32>,
    hist: LatencyHistogram,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Receiver {
    fn new(port: XskPort) -> Receiver {
        Receiver {
            port,
            descs: Vec::with_capacity(MAX_BATCH as usize),
            received: 0,
            bytes: 0,
            other: 0,
            reordered: 0,
            last_seq: None,
            hist: LatencyHistogram::default(),
            first: None,
            last: None,
        }
    }

    /// Takes what the ring holds, counts our frames, gives the frames back; returns how many
    /// descriptors it took.
    fn poll(&mut self) -> u32 {
        self.descs.clear();
        let n = self.port.rx_burst(&mut self.descs, MAX_BATCH);
        if n > 0 {
            let now_ns = monotonic_ns();
            let now = Instant::now();
            self.first.get_or_insert(now);
            self.last = Some(now);
            for d in &self.descs {
                match read_stamp(self.port.packet(d.addr, d.len)) {
                    Some((seq, tx_ns)) => {
                        self.received += 1;
                        self.bytes += u64::from(d.len);
                        self.hist.record(now_ns.saturating_sub(tx_ns));
                        if let Some(prev) = self.last_seq {
                            // Wrapping comparison: "before" means less than half the space back.
                            if seq.wrapping_sub(prev) > u32::MAX / 2 {
                                self.reordered += 1;
                            }
                        }
                        self.last_seq = Some(seq);
                    }
                    None => self.other += 1,
                }
                self.port.recycle(d.addr);
            }
        }
        self.port.refill();
        n
    }

    fn active(&self) -> Duration {
        match (self.first, self.last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }
}

/// The transmit side: the port, the templates and the UMEM frames' current flows.
struct Sender {
    port: XskPort,
    generator: Generator,
    layout: Option<StampLayout>,
    /// Per UMEM frame: the flow whose template it holds (`u32::MAX`: none yet).
    frame_flow: Vec<u32>,
    descs: Vec<RxDesc>,
    seq: u64,
}

impl Sender {
    /// Fills and queues up to `n` frames; returns how many were queued.
    fn send(&mut self, n: u32) -> u32 {
        self.port.reap_completions();
        self.descs.clear();
        let size = self.generator.profile().frame_size;
        let flows = u64::from(self.generator.profile().flows);
        let tx_ns = monotonic_ns();
        for _ in 0..n {
            let Some(base) = self.port.alloc_frame() else {
                break;
            };
            let seq = self.seq + self.descs.len() as u64;
            let flow = (seq % flows) as u32;
            let idx = (base / FRAME_SIZE as u64) as usize;
            let template = self.generator.frame(u64::from(flow));
            let Some(pkt) = self.port.frame_mut(base).get_mut(HEADROOM..HEADROOM + size) else {
                self.port.recycle(base);
                break;
            };
            if self.frame_flow.get(idx) != Some(&flow) {
                pkt.copy_from_slice(template);
                if let Some(slot) = self.frame_flow.get_mut(idx) {
                    *slot = flow;
                }
            }
            if let Some(layout) = &self.layout {
                stamp(pkt, template, layout, seq as u32, tx_ns);
            }
            self.descs.push(RxDesc {
                addr: base + HEADROOM as u64,
                len: size as u32,
                more: false,
            });
        }
        let queued = self.port.tx_frames(&self.descs);
        // Frames the ring had no room for go back to the free list.
        for d in self.descs.iter().skip(queued as usize) {
            self.port.recycle(d.addr);
        }
        self.seq += u64::from(queued);
        queued
    }
}

/// Opens the generator's socket on `ifname`: steered by an XDP program when it receives
/// (`steer`), else transmit-only, leaving the interface's own receive path alone (on a NIC,
/// a program would take that queue's incoming frames away from the host).
fn open_port(
    field: &'static str,
    ifname: &str,
    queue: u32,
    mode: XdpModeRequest,
    steer: bool,
) -> Result<XskPort, PktgenError> {
    let config = XskConfig {
        xdp_mode: mode,
        steer,
        // pktgen's frames fit one UMEM frame; a longer one is the kernel's to drop.
        multi_buffer: false,
        ..XskConfig::default()
    };
    XskPort::open(ifname, queue, &config).map_err(|source| PktgenError::Port {
        field,
        ifname: ifname.to_string(),
        source,
    })
}

fn xdp_name(mode: Option<XdpMode>) -> &'static str {
    match mode {
        Some(XdpMode::Driver) => "driver",
        Some(XdpMode::Generic) => "generic",
        None => "none",
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Udp => "udp",
        Protocol::Tcp => "tcp",
        Protocol::Icmp => "icmp",
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Runs the generator (or, with `rx_only`, the counter) until the count, the duration or the
/// stop flag ends it, then drains the receiver for `opts.drain` and reports.
pub fn run(
    opts: &PktgenOptions,
    progress: Option<&dyn Fn(&Progress)>,
) -> Result<PktgenReport, PktgenError> {
    opts.validate()?;
    let sources = LossSources {
        socket: opts.socket.clone(),
        tx_if: opts.port.clone(),
        rx_if: opts.rx.clone(),
    };
    let before = LossSnapshot::take(&sources).map_err(PktgenError::Switch)?;
    let mut report = run_counted(opts, progress)?;
    if let Some(lost) = report.lost {
        let after = LossSnapshot::take(&sources).map_err(PktgenError::Switch)?;
        report.losses = Some(breakdown(&before, &after, &report.rx_losses, lost));
    }
    Ok(report)
}

/// [`run`] without the loss accounting around it.
fn run_counted(
    opts: &PktgenOptions,
    progress: Option<&dyn Fn(&Progress)>,
) -> Result<PktgenReport, PktgenError> {
    if let Some(core) = opts.core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            return Err(invalid("core", format!("cannot pin to core {core}")));
        }
    }
    if opts.rx_only {
        return run_rx_only(opts, progress);
    }
    let generator = Generator::new(opts.profile.clone())?;
    let port = open_port("port", &opts.port, opts.queue, opts.xdp_mode, false)?;
    let mut rx = match &opts.rx {
        Some(ifname) => Some(Receiver::new(open_port(
            "rx",
            ifname,
            opts.queue,
            opts.xdp_mode,
            true,
        )?)),
        None => None,
    };
    let frames = XskConfig::default().frames as usize;
    let mut tx = Sender {
        port,
        layout: StampLayout::new(&opts.profile),
        generator,
        frame_flow: vec![u32::MAX; frames],
        descs: Vec::with_capacity(MAX_BATCH as usize),
        seq: 0,
    };

    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let limit = opts.count.unwrap_or(u64::MAX);
    let mut bucket = match opts.rate {
        // Room for 10 ms of frames: a sleep that overshoots (a loaded machine) is made up for
        // by the next bursts instead of lowering the rate.
        Rate::Pps(pps) => Some(Bucket::new(
            pps,
            opts.batch.max((pps / 100.0) as u32),
            start,
        )),
        Rate::Max => None,
    };
    // At low rates send chunks of about a millisecond's worth so the loop can sleep between.
    let chunk = match opts.rate {
        Rate::Pps(pps) => ((pps / 1000.0) as u64).clamp(1, u64::from(opts.batch)),
        Rate::Max => u64::from(opts.batch),
    };
    let mut sent = 0u64;
    let mut next_progress = start + PROGRESS_EVERY;
    let mut last_progress = (start, 0u64, 0u64);
    let report_progress = |now: Instant,
                           sent: u64,
                           received: u64,
                           last: &mut (Instant, u64, u64)| {
        if let Some(cb) = progress {
            let dt = now.saturating_duration_since(last.0);
            let done = match (opts.count, opts.duration) {
                (Some(c), _) => Some(sent as f64 / c as f64),
                (None, Some(d)) => Some(now.duration_since(start).as_secs_f64() / d.as_secs_f64()),
                (None, None) => None,
            };
            cb(&Progress {
                elapsed: now.duration_since(start),
                sent,
                received,
                tx_mpps: per_sec(sent - last.1, dt) / 1e6,
                rx_mpps: per_sec(received.saturating_sub(last.2), dt) / 1e6,
                done: done.map(|f| f.clamp(0.0, 1.0)),
            });
            *last = (now, sent, received);
        }
    };

    let mut now = start;
    loop {
        if sent >= limit
            || deadline.is_some_and(|d| now >= d)
            || opts
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            break;
        }
        let want = (limit - sent).min(u64::from(opts.batch));
        let n = match &mut bucket {
            Some(b) => {
                b.refill(now);
                let avail = b.available();
                if avail >= chunk.min(want) {
                    avail.min(want)
                } else {
                    0
                }
            }
            None => want,
        };
        if n > 0 {
            let queued = tx.send(n as u32);
            if let Some(b) = &mut bucket {
                b.take(u64::from(queued));
            }
            sent += u64::from(queued);
        }
        // Copy mode sends at most 32 descriptors per kick: keep kicking and reaping.
        tx.port.poll();
        if let Some(r) = &mut rx {
            r.poll();
        }
        now = Instant::now();
        if now >= next_progress {
            report_progress(
                now,
                sent,
                rx.as_ref().map_or(0, |r| r.received),
                &mut last_progress,
            );
            next_progress = now + PROGRESS_EVERY;
        }
        if n == 0 {
            if let Some(b) = &bucket {
                let wait = b.wait_for(chunk.min(want));
                if wait > Duration::from_micros(200) {
                    std::thread::sleep(wait.min(Duration::from_millis(1)));
                    now = Instant::now();
                }
            }
        }
    }
    let tx_elapsed = now.saturating_duration_since(start);

    // Drain: let the completions come back and the last frames arrive.
    let drain_end = Instant::now() + opts.drain;
    while Instant::now() < drain_end {
        tx.port.poll();
        let got = rx.as_mut().map_or(0, Receiver::poll);
        let all_in = rx.as_ref().is_none_or(|r| r.received + r.other >= sent);
        if tx.port.tx_in_flight() == 0 && all_in {
            break;
        }
        if got == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    report_progress(
        Instant::now(),
        sent,
        rx.as_ref().map_or(0, |r| r.received),
        &mut last_progress,
    );

    let size = opts.profile.frame_size;
    let tx_pps = per_sec(sent, tx_elapsed);
    let tx_stats = tx.port.stats().ok();
    let rx_stats = rx.as_ref().and_then(|r| r.port.stats().ok());
    let rx_elapsed = tx_elapsed;
    Ok(PktgenReport {
        mode: if rx.is_some() { "tx+rx" } else { "tx" },
        port: opts.port.clone(),
        rx_port: opts.rx.clone(),
        xdp_mode: xdp_name(tx.port.mode().xdp),
        frame_size: size,
        flows: opts.profile.flows,
        protocol: proto_name(opts.profile.protocol),
        rate_pps: match opts.rate {
            Rate::Pps(p) => Some(p),
            Rate::Max => None,
        },
        elapsed_s: tx_elapsed.as_secs_f64(),
        sent,
        tx_mpps: tx_pps / 1e6,
        tx_gbps_l2: tx_pps * (size * 8) as f64 / 1e9,
        tx_gbps_wire: tx_pps * ((size + WIRE_OVERHEAD) * 8) as f64 / 1e9,
        received: rx.as_ref().map(|r| r.received),
        rx_other: rx.as_ref().map(|r| r.other),
        lost: rx.as_ref().map(|r| sent as i64 - r.received as i64),
        loss_pct: rx
            .as_ref()
            .map(|r| 100.0 * (sent as f64 - r.received as f64) / (sent.max(1) as f64)),
        rx_mpps: rx.as_ref().map(|r| per_sec(r.received, rx_elapsed) / 1e6),
        rx_gbps_l2: rx.as_ref().map(|r| per_sec(r.bytes * 8, rx_elapsed) / 1e9),
        rx_gbps_wire: rx.as_ref().map(|r| {
            per_sec(
                (r.bytes + r.received * WIRE_OVERHEAD as u64) * 8,
                rx_elapsed,
            ) / 1e9
        }),
        latency: rx.as_ref().and_then(|r| r.hist.latency()),
        rx_reordered: rx.as_ref().map(|r| r.reordered),
        tx_invalid_descs: tx_stats.map_or(0, |s| s.tx_invalid_descs),
        tx_wakeups: tx.port.counters().wakeups,
        rx_dropped: rx_stats.map(|s| s.rx_dropped + s.rx_ring_full),
        losses: None,
        rx_losses: rx_stats.map_or(Vec::new(), |s| {
            vec![
                ("rx-ring-full", s.rx_ring_full),
                // No free frame on the fill ring, or longer than a frame.
                ("rx-dropped", s.rx_dropped),
            ]
        }),
    })
}

/// Counts our frames on `opts.port` until the count (of frames received), the duration or
/// the stop flag.
fn run_rx_only(
    opts: &PktgenOptions,
    progress: Option<&dyn Fn(&Progress)>,
) -> Result<PktgenReport, PktgenError> {
    let mut rx = Receiver::new(open_port(
        "port",
        &opts.port,
        opts.queue,
        opts.xdp_mode,
        true,
    )?);
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let limit = opts.count.unwrap_or(u64::MAX);
    let mut next_progress = start + PROGRESS_EVERY;
    let mut last = (start, 0u64);
    loop {
        let now = Instant::now();
        if rx.received >= limit
            || deadline.is_some_and(|d| now >= d)
            || opts
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            break;
        }
        if rx.poll() == 0 {
            // Idle: a short sleep keeps a waiting counter off the generator's core.
            std::thread::sleep(Duration::from_micros(50));
        }
        if now >= next_progress {
            if let Some(cb) = progress {
                let done = match (opts.count, opts.duration) {
                    (Some(c), _) => Some(rx.received as f64 / c as f64),
                    (None, Some(d)) => {
                        Some(now.duration_since(start).as_secs_f64() / d.as_secs_f64())
                    }
                    (None, None) => None,
                };
                cb(&Progress {
                    elapsed: now.duration_since(start),
                    sent: 0,
                    received: rx.received,
                    tx_mpps: 0.0,
                    rx_mpps: per_sec(rx.received - last.1, now.duration_since(last.0)) / 1e6,
                    done: done.map(|f| f.clamp(0.0, 1.0)),
                });
                last = (now, rx.received);
            }
            next_progress = now + PROGRESS_EVERY;
        }
    }
    let active = rx.active();
    let stats = rx.port.stats().ok();
    Ok(PktgenReport {
        mode: "rx",
        port: opts.port.clone(),
        rx_port: None,
        xdp_mode: xdp_name(rx.port.mode().xdp),
        frame_size: opts.profile.frame_size,
        flows: opts.profile.flows,
        protocol: proto_name(opts.profile.protocol),
        rate_pps: None,
        elapsed_s: active.as_secs_f64(),
        sent: 0,
        tx_mpps: 0.0,
        tx_gbps_l2: 0.0,
        tx_gbps_wire: 0.0,
        received: Some(rx.received),
        rx_other: Some(rx.other),
        lost: None,
        loss_pct: None,
        rx_mpps: Some(per_sec(rx.received, active) / 1e6),
        rx_gbps_l2: Some(per_sec(rx.bytes * 8, active) / 1e9),
        rx_gbps_wire: Some(
            per_sec((rx.bytes + rx.received * WIRE_OVERHEAD as u64) * 8, active) / 1e9,
        ),
        latency: rx.hist.latency(),
        rx_reordered: Some(rx.reordered),
        tx_invalid_descs: 0,
        tx_wakeups: 0,
        rx_dropped: stats.map(|s| s.rx_dropped + s.rx_ring_full),
        losses: None,
        rx_losses: Vec::new(),
    })
}

/// `vecswitch pktgen`: transmit a traffic profile over AF_XDP, optionally receive and count.
#[derive(clap::Args, Debug, Clone)]
pub struct PktgenArgs {
    /// Interface to transmit on (to count on, with --rx-only).
    #[arg(long)]
    pub port: String,
    /// Queue of the interface(s).
    #[arg(long, default_value_t = 0)]
    pub queue: u32,
    /// Traffic profile: size=64,flows=10000,proto=udp,src-ip=..,dst-ip=..,src-mac=..,
    /// dst-mac=..,src-port=..,dst-port=.. (size is on the wire, with FCS).
    #[arg(long, default_value = "")]
    pub profile: String,
    /// Frame size on the wire with FCS (64..=1518); same as size= in --profile.
    #[arg(long)]
    pub size: Option<usize>,
    /// Number of flows; same as flows= in --profile.
    #[arg(long)]
    pub flows: Option<u32>,
    /// udp, tcp or icmp; same as proto= in --profile.
    #[arg(long)]
    pub proto: Option<String>,
    /// Frames per second: max, or e.g. 20000, 200k, 1.5M.
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// Stop after this long: 10, 1.5s, 500ms, 2m.
    #[arg(long)]
    pub duration: Option<String>,
    /// Stop after this many frames (sent; received with --rx-only).
    #[arg(long)]
    pub count: Option<u64>,
    /// Also receive and count our frames on this interface (loss and latency).
    #[arg(long)]
    pub rx: Option<String>,
    /// Only count our frames arriving on --port (another pktgen sends).
    #[arg(long)]
    pub rx_only: bool,
    /// Descriptors per transmit call (1..=256).
    #[arg(long, default_value_t = 64)]
    pub batch: u32,
    /// XDP hook for the AF_XDP program: auto, native or generic.
    #[arg(long, default_value = "auto")]
    pub xdp_mode: String,
    /// Pin pktgen to this core (keep it off the switch's PMD cores).
    #[arg(long)]
    pub core: Option<usize>,
    /// The switch's control socket: the report says where the lost frames went (the
    /// switch's `drop-reasons` over the run, beside the kernel's and pktgen's own counters).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// The no-drop rate search (`--ndr` and its options).
    #[command(flatten)]
    pub search: crate::ndr::NdrArgs,
}

impl PktgenArgs {
    /// The options these flags stand for (`stop` unset); errors name the flag.
    pub fn options(&self) -> Result<PktgenOptions, PktgenError> {
        let mut spec = self.profile.clone();
        let mut add = |k: &str, v: String| {
            if !spec.trim().is_empty() {
                spec.push(',');
            }
            spec.push_str(&format!("{k}={v}"));
        };
        if let Some(s) = self.size {
            add("size", s.to_string());
        }
        if let Some(f) = self.flows {
            add("flows", f.to_string());
        }
        if let Some(p) = &self.proto {
            add("proto", p.clone());
        }
        let opts = PktgenOptions {
            port: self.port.clone(),
            queue: self.queue,
            profile: parse_profile(&spec)?,
            rate: parse_rate(&self.rate)?,
            duration: self.duration.as_deref().map(parse_duration).transpose()?,
            count: self.count,
            rx: self.rx.clone(),
            rx_only: self.rx_only,
            batch: self.batch,
            xdp_mode: parse_xdp_mode(&self.xdp_mode)?,
            drain: DEFAULT_DRAIN,
            stop: None,
            core: self.core,
            socket: self.socket.clone(),
        };
        Ok(opts)
    }
}

/// What `vecswitch pktgen` runs: Ctrl-C (SIGINT/SIGTERM) ends the run and still reports.
pub fn main(args: &PktgenArgs) -> anyhow::Result<()> {
    if args.search.ndr {
        return crate::ndr::main(args, &args.search);
    }
    let mut opts = args.options()?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    opts.stop = Some(stop);
    let report = run_with_bar(&opts, !args.no_progress)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::out!("{}", report.summary())?;
    }
    Ok(())
}

/// [`run`] with a progress bar on stderr when `progress` is asked for and stderr is a
/// terminal.
pub fn run_with_bar(opts: &PktgenOptions, progress: bool) -> Result<PktgenReport, PktgenError> {
    let bar = (progress && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {percent:>3}% {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar
    });
    let update = |p: &Progress| {
        if let Some(bar) = &bar {
            if let Some(done) = p.done {
                bar.set_position((done * 1000.0) as u64);
            }
            bar.set_message(if opts.rx_only {
                format!("rx {:.3} Mpps, {} frames", p.rx_mpps, p.received)
            } else if opts.rx.is_some() {
                format!(
                    "tx {:.3} Mpps, rx {:.3} Mpps, {} sent, {} received",
                    p.tx_mpps, p.rx_mpps, p.sent, p.received
                )
            } else {
                format!("tx {:.3} Mpps, {} sent", p.tx_mpps, p.sent)
            });
        }
    };
    let report = run(opts, bar.as_ref().map(|_| &update as &dyn Fn(&Progress)));
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::checksum::{checksum, pseudo_sum_ipv4, sum};

    /// The L4 checksum of `f` verifies (sum over pseudo-header + segment is all ones).
    fn l4_verifies(f: &[u8], proto: Protocol) -> bool {
        let l4 = &f[L4_AT..];
        let init = match proto {
            Protocol::Icmp => 0,
            _ => pseudo_sum_ipv4(
                u32::from_be_bytes([f[26], f[27], f[28], f[29]]),
                u32::from_be_bytes([f[30], f[31], f[32], f[33]]),
                f[23],
                l4.len() as u32,
            ),
        };
        fold(sum(l4, init)) == 0xffff
    }

    #[test]
    fn stamped_frames_keep_valid_checksums() {
        for proto in [Protocol::Udp, Protocol::Tcp, Protocol::Icmp] {
            for size in [60usize, 70, 71, 333, 1514] {
                let p = TrafficProfile {
                    protocol: proto,
                    frame_size: size,
                    flows: 3,
                    ..TrafficProfile::default()
                };
                let g = Generator::new(p.clone()).unwrap();
                let Some(layout) = StampLayout::new(&p) else {
                    assert!(proto == Protocol::Tcp && size < 70, "{proto:?} {size}");
                    continue;
                };
                for flow in 0..3u64 {
                    let t = g.frame(flow);
                    let mut f = t.to_vec();
                    for (seq, ts) in [(0u32, 0u64), (7, 123_456_789), (u32::MAX, u64::MAX)] {
                        stamp(&mut f, t, &layout, seq, ts);
                        assert!(l4_verifies(&f, proto), "{proto:?} {size} {seq}");
                        assert_eq!(checksum(&f[14..34]), 0);
                        assert_eq!(read_stamp(&f), Some((seq, ts)));
                        assert_eq!(f.len(), size);
                        // Only the stamp and the checksum differ from the template.
                        for (i, (a, b)) in f.iter().zip(t).enumerate() {
                            let in_stamp = (layout.stamp_at..layout.stamp_at + 16).contains(&i);
                            let in_csum = (layout.csum_at..layout.csum_at + 2).contains(&i);
                            assert!(a == b || in_stamp || in_csum, "byte {i} changed");
                        }
                    }
                }
            }
        }
    }

    /// Byte fixture: the default 60-byte UDP frame stamped with seq 1 at t = 0x0102030405060708.
    #[test]
    fn stamp_fixture() {
        let g = Generator::new(TrafficProfile::default()).unwrap();
        let t = g.frame(0);
        let layout = StampLayout::new(g.profile()).unwrap();
        assert_eq!(
            layout,
            StampLayout {
                stamp_at: 42,
                csum_at: 40,
                udp: true
            }
        );
        let mut f = t.to_vec();
        stamp(&mut f, t, &layout, 1, 0x0102_0304_0506_0708);
        assert_eq!(
            &f[42..58],
            &[0x76, 0x73, 0x50, 0x47, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        // Independently: the UDP checksum over pseudo-header + segment from scratch.
        let mut seg = f[34..].to_vec();
        seg[6] = 0;
        seg[7] = 0;
        let want = !fold(sum(&seg, pseudo_sum_ipv4(0x0a00_0001, 0x0a00_0101, 17, 26)));
        assert_eq!(u16::from_be_bytes([f[40], f[41]]), want);
        assert_eq!(&f[58..], &t[58..]);
    }

    #[test]
    fn read_stamp_refuses_foreign_frames() {
        let g = Generator::new(TrafficProfile::default()).unwrap();
        assert_eq!(read_stamp(g.frame(0)), None, "unstamped template");
        let mut arp = vec![0xffu8; 60];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(read_stamp(&arp), None);
        assert_eq!(read_stamp(&[0u8; 10]), None);
        let layout = StampLayout::new(g.profile()).unwrap();
        let mut f = g.frame(0).to_vec();
        stamp(&mut f, g.frame(0), &layout, 5, 9);
        assert_eq!(read_stamp(&f[..50]), None, "truncated");
        f[23] = 47; // GRE
        assert_eq!(read_stamp(&f), None);
    }

    #[test]
    fn histogram_buckets_and_percentiles() {
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            1000,
            123_456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v}");
            assert!(bucket_high(b) >= v, "{v}");
            if b > 0 {
                assert!(bucket_high(b - 1) < v, "{v}");
            }
            // Resolution: the bucket's top is within 1/32 of the value.
            assert!((bucket_high(b) - v) as f64 <= v as f64 / 32.0 + 1.0, "{v}");
        }
        let mut h = LatencyHistogram::default();
        assert_eq!(h.latency(), None);
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let l = h.latency().unwrap();
        assert_eq!(l.samples, 1000);
        assert_eq!(l.min_ns, 1000);
        assert_eq!(l.max_ns, 1_000_000);
        assert_eq!(l.mean_ns, 500_500);
        let near = |got: u64, want: u64| got >= want && (got - want) as f64 <= want as f64 * 0.04;
        assert!(near(l.p50_ns, 500_000), "{l:?}");
        assert!(near(l.p90_ns, 900_000), "{l:?}");
        assert!(near(l.p99_ns, 990_000), "{l:?}");
        assert!(near(l.p999_ns, 999_000), "{l:?}");
        assert!(l.p50_ns <= l.p90_ns && l.p90_ns <= l.p99_ns && l.p99_ns <= l.p999_ns);
        assert!(l.p999_ns <= l.max_ns);
    }

    #[test]
    fn rates_and_durations() {
        assert_eq!(parse_rate("max").unwrap(), Rate::Max);
        assert_eq!(parse_rate("MAX").unwrap(), Rate::Max);
        assert_eq!(parse_rate("20000").unwrap(), Rate::Pps(20000.0));
        assert_eq!(parse_rate("200k").unwrap(), Rate::Pps(200_000.0));
        assert_eq!(parse_rate("1.5M").unwrap(), Rate::Pps(1_500_000.0));
        assert_eq!(parse_rate("2Mpps").unwrap(), Rate::Pps(2_000_000.0));
        for bad in ["", "fast", "0", "-5k", "1.5X", "inf", "nan"] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.to_string().starts_with("rate: "), "{bad}: {e}");
        }
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "soon", "0", "-1", "1h"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().starts_with("duration: "), "{bad}: {e}");
        }
        assert_eq!(parse_xdp_mode("native").unwrap(), XdpModeRequest::Driver);
        assert!(parse_xdp_mode("turbo")
            .unwrap_err()
            .to_string()
            .starts_with("xdp-mode: "));
    }

    #[test]
    fn options_name_the_field() {
        let base = PktgenOptions {
            count: Some(10),
            ..PktgenOptions::new("eth0")
        };
        assert!(base.validate().is_ok());
        let cases: Vec<(PktgenOptions, &str)> = vec![
            (
                PktgenOptions {
                    batch: 0,
                    ..base.clone()
                },
                "batch: ",
            ),
            (
                PktgenOptions {
                    batch: 257,
                    ..base.clone()
                },
                "batch: ",
            ),
            (
                PktgenOptions {
                    count: Some(0),
                    ..base.clone()
                },
                "count: ",
            ),
            (
                PktgenOptions {
                    count: None,
                    ..base.clone()
                },
                "duration: ",
            ),
            (
                PktgenOptions {
                    rx: Some("eth0".into()),
                    ..base.clone()
                },
                "rx: ",
            ),
            (
                PktgenOptions {
                    rx: Some("eth1".into()),
                    profile: TrafficProfile {
                        protocol: Protocol::Tcp,
                        ..TrafficProfile::default()
                    },
                    ..base.clone()
                },
                "size: ",
            ),
        ];
        for (o, prefix) in cases {
            let e = o.validate().unwrap_err().to_string();
            assert!(e.starts_with(prefix), "{e}");
        }
    }

    #[test]
    fn token_bucket_paces() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000.0, 64, t0);
        assert_eq!(b.available(), 0);
        b.refill(t0 + Duration::from_millis(10));
        assert_eq!(b.available(), 10);
        b.take(10);
        assert_eq!(b.available(), 0);
        assert_eq!(b.wait_for(5), Duration::from_millis(5));
        // Capped at the burst size after a long pause.
        b.refill(t0 + Duration::from_secs(10));
        assert_eq!(b.available(), 64);
    }
}
