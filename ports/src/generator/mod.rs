//! A generator port, like VPP's `pg`: no I/O, `rx_burst` hands out the frames of a
//! [`traffic::Generator`](self::traffic::Generator) (round-robin over the profile's flows)
//! and `tx_burst` is a sink that takes and counts everything. An optional rate limit in
//! packets per second is a token bucket on the monotonic clock, checked once per burst (the
//! bucket holds 10 ms of traffic, at least 256 packets, so an idle PMD does not catch up in a
//! flood); an optional count stops the port after that many frames.

pub mod options;
pub mod traffic;

use std::os::fd::RawFd;
use std::time::Instant;

use self::traffic::{Generator, TrafficProfile};

use crate::{PortError, PortIo, QueueInfo};

const NANOS: u128 = 1_000_000_000;

/// A traffic generator and sink.
pub struct GeneratorPort {
    generator: Generator,
    /// Packets per second, `None` for as fast as polled.
    rate: Option<u64>,
    /// Frames to hand out in total, `None` for no end.
    count: Option<u64>,
    /// Bucket fill in packet-nanoseconds (one packet = `NANOS`).
    credit: u128,
    /// Bucket size in packet-nanoseconds.
    capacity: u128,
    last: Instant,
    generated: u64,
    sunk: u64,
    sunk_bytes: u64,
}

impl GeneratorPort {
    /// A generator of `profile` at `rate` packets/s (`None`: as fast as polled) stopping after
    /// `count` frames (`None`: never). Errors name `port`.
    pub fn new(
        port: &str,
        profile: TrafficProfile,
        rate: Option<u64>,
        count: Option<u64>,
    ) -> Result<GeneratorPort, PortError> {
        GeneratorPort::new_at(port, profile, rate, count, Instant::now())
    }

    fn new_at(
        port: &str,
        profile: TrafficProfile,
        rate: Option<u64>,
        count: Option<u64>,
        now: Instant,
    ) -> Result<GeneratorPort, PortError> {
        if rate == Some(0) {
            return Err(PortError::Invalid {
                port: port.to_string(),
                step: "rate".to_string(),
                reason: "must be at least 1 packet/s".to_string(),
            });
        }
        let generator = Generator::new(profile).map_err(|e| PortError::Invalid {
            port: port.to_string(),
            step: "build the traffic profile".to_string(),
            reason: e.to_string(),
        })?;
        let burst = rate.map_or(0, |r| (r / 100).max(256));
        Ok(GeneratorPort {
            generator,
            rate,
            count,
            // Start empty: the first frames go out after the first tick of the clock.
            credit: 0,
            capacity: u128::from(burst) * NANOS,
            last: now,
            generated: 0,
            sunk: 0,
            sunk_bytes: 0,
        })
    }

    /// Frames handed out so far.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Whether a count was given and reached.
    pub fn finished(&self) -> bool {
        self.count.is_some_and(|c| self.generated >= c)
    }

    /// How many frames the bucket and the count allow now, at most `max`.
    fn allowed(&mut self, max: usize, now: Instant) -> usize {
        let mut n = max as u64;
        if let Some(count) = self.count {
            n = n.min(count.saturating_sub(self.generated));
        }
        if let Some(rate) = self.rate {
            let elapsed = now.saturating_duration_since(self.last).as_nanos();
            self.last = now;
            self.credit = (self.credit + elapsed * u128::from(rate)).min(self.capacity);
            n = n.min((self.credit / NANOS) as u64);
            self.credit -= u128::from(n) * NANOS;
        }
        n as usize
    }

    fn rx_burst_at(&mut self, max: usize, now: Instant, f: &mut dyn FnMut(&[u8])) -> usize {
        let n = self.allowed(max, now);
        for frame in self.generator.next_burst(n) {
            f(frame);
        }
        self.generated += n as u64;
        n
    }
}

impl PortIo for GeneratorPort {
    fn rx_burst(&mut self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        if self.finished() {
            return 0;
        }
        let now = if self.rate.is_some() {
            Instant::now()
        } else {
            self.last
        };
        self.rx_burst_at(max, now, f)
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        self.sunk += frames.len() as u64;
        self.sunk_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        frames.len()
    }

    fn rx_fd(&self) -> Option<RawFd> {
        None
    }

    fn info(&self) -> QueueInfo {
        let rate = match self.rate {
            Some(r) => format!("rate {r}/s"),
            None => "rate max".to_string(),
        };
        let count = match self.count {
            Some(c) if self.generated >= c => format!(" count {c} (done)"),
            Some(c) => format!(" count {c}"),
            None => String::new(),
        };
        let p = self.generator.profile();
        QueueInfo {
            kind: "generator",
            mode: format!(
                "{} bytes {} flows {} {rate}{count}",
                p.frame_size,
                p.flows,
                p.protocol.name()
            ),
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("rx-generated", self.generated),
            ("tx-sunk", self.sunk),
            ("tx-sunk-bytes", self.sunk_bytes),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use self::traffic::parse_profile;
    use super::*;

    fn collect(port: &mut GeneratorPort, max: usize, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let n = port.rx_burst_at(max, now, &mut |b| out.push(b.to_vec()));
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn unlimited_yields_full_bursts_round_robin_over_the_flows() {
        let profile = parse_profile("size=64,flows=3,proto=udp").unwrap();
        let reference = Generator::new(profile.clone()).unwrap();
        let mut port = GeneratorPort::new("g", profile, None, None).unwrap();
        let mut got = Vec::new();
        assert_eq!(port.rx_burst(32, &mut |b| got.push(b.to_vec())), 32);
        assert_eq!(port.rx_burst(32, &mut |b| got.push(b.to_vec())), 32);
        assert_eq!(got.len(), 64);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.as_slice(), reference.frame(i as u64), "frame {i}");
            assert_eq!(f.len(), 60);
        }
        assert_ne!(got[0], got[1], "flows differ");
        assert_eq!(got[0], got[3], "flow 0 again after 3 frames");
        assert_eq!(port.rx_fd(), None);
    }

    #[test]
    fn count_stops_the_port() {
        let profile = parse_profile("size=64").unwrap();
        let mut port = GeneratorPort::new("g", profile, None, Some(70)).unwrap();
        let mut n = 0;
        for _ in 0..5 {
            n += port.rx_burst(32, &mut |_| {});
        }
        assert_eq!(n, 70);
        assert!(port.finished());
        assert_eq!(port.rx_burst(32, &mut |_| {}), 0);
        let mode = port.info().mode;
        assert!(mode.contains("(done)"), "{mode}");
        assert!(
            mode.contains(" flows udp "),
            "names, not Rust debug text: {mode}"
        );
        assert_eq!(port.counters()[0], ("rx-generated", 70));
    }

    #[test]
    fn rate_limits_per_burst_on_the_clock() {
        let profile = parse_profile("size=64,flows=2").unwrap();
        let t0 = Instant::now();
        let mut port = GeneratorPort::new_at("g", profile, Some(1000), None, t0).unwrap();
        assert_eq!(collect(&mut port, 32, t0).len(), 0, "bucket starts empty");
        // 1000/s: 10 ms is 10 packets.
        assert_eq!(
            collect(&mut port, 32, t0 + Duration::from_millis(10)).len(),
            10
        );
        // 5.5 ms more: 5 packets, the half packet stays in the bucket.
        let t = t0 + Duration::from_micros(15_500);
        assert_eq!(collect(&mut port, 32, t).len(), 5);
        let t = t0 + Duration::from_micros(16_000);
        assert_eq!(
            collect(&mut port, 32, t).len(),
            1,
            "the half packet counted"
        );
        // A burst smaller than the credit leaves the rest for the next one.
        let t = t0 + Duration::from_millis(36);
        assert_eq!(collect(&mut port, 8, t).len(), 8);
        assert_eq!(collect(&mut port, 32, t).len(), 12);
        // A long idle spell fills the bucket only to its size (256 packets here).
        let t = t0 + Duration::from_secs(10);
        let mut total = 0;
        for _ in 0..20 {
            total += collect(&mut port, 32, t).len();
        }
        assert_eq!(total, 256);
        // Over a simulated second of 100 µs polls the rate holds.
        let start = t;
        let mut total = 0;
        for i in 1..=10_000u64 {
            total += collect(&mut port, 32, start + Duration::from_micros(100 * i)).len();
        }
        assert_eq!(total, 1000);
        assert_eq!(port.generated(), 10 + 5 + 1 + 20 + 256 + 1000);
    }

    #[test]
    fn rate_and_count_together() {
        let profile = parse_profile("size=128").unwrap();
        let t0 = Instant::now();
        let mut port = GeneratorPort::new_at("g", profile, Some(1_000_000), Some(50), t0).unwrap();
        assert_eq!(
            collect(&mut port, 64, t0 + Duration::from_millis(1)).len(),
            50
        );
        assert_eq!(
            collect(&mut port, 64, t0 + Duration::from_millis(2)).len(),
            0
        );
        assert!(port.finished());
    }

    #[test]
    fn sink_takes_and_counts_everything() {
        let profile = parse_profile("size=64").unwrap();
        let mut port = GeneratorPort::new("g", profile, None, None).unwrap();
        let a = [0u8; 60];
        let b = [0u8; 100];
        assert_eq!(port.tx_burst(&[&a, &b, &a]), 3);
        let c = port.counters();
        assert!(c.contains(&("tx-sunk", 3)));
        assert!(c.contains(&("tx-sunk-bytes", 220)));
    }

    #[test]
    fn zero_rate_is_refused() {
        let profile = parse_profile("size=64").unwrap();
        let err = GeneratorPort::new("g0", profile, Some(0), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("rate"), "{err}");
        assert!(err.to_string().contains("g0"), "{err}");
    }
}
