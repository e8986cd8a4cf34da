//! The no-drop rate (NDR) and partial-drop rate (PDR) search of `vecswitch pktgen --ndr`:
//! throughput the way RFC 2544 (section 26.1) and FD.io CSIT's MLRsearch report it. Each
//! trial offers a constant load for a fixed time and counts what came back; a trial whose
//! loss ratio is at most a threshold (0 for NDR, `--pdr-loss` for PDR) is a lower bound of
//! that rate, any other an upper bound. The first trial runs at the generator's full speed
//! (or `--max-rate`); its received rate (CSIT's MRR) is the first guess below it, each
//! further loss without a lower bound doubles the step down (MLRsearch's external search),
//! and then the search halves the interval between the bounds until its relative width,
//! (upper − lower) / upper, is at most the precision goal. Trials are shared between the two
//! thresholds, as in MLRsearch. With a `--final-trial` longer than `--trial`, the search
//! goes on at the final duration: only a final-length trial counts as a lower bound, while a
//! loss in any trial is an upper bound. The latency percentiles reported are those of the
//! trial that set the lower bound. A trial's rate is what the generator offered: a rate it
//! could not reach is not reported as passed (the search stops and says so).
//!
//! The search itself ([`search`]) talks to a [`TrialRunner`], so it is tested against a
//! simulated device of known capacity; the real runner is pktgen over AF_XDP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::pktgen::{
    self, parse_duration, parse_rate, Latency, PktgenArgs, PktgenError, PktgenOptions,
    PktgenReport, Rate,
};

/// Default lowest rate tried (CSIT's minimum is 9001 pps).
pub const DEFAULT_MIN_RATE: f64 = 10_000.0;
/// Default relative width goal of the final interval.
pub const DEFAULT_PRECISION: f64 = 0.01;
/// Default PDR loss ratio threshold (CSIT's: 0.5 %).
pub const DEFAULT_PDR_LOSS: f64 = 0.005;
/// Default trial duration.
pub const DEFAULT_TRIAL: Duration = Duration::from_secs(1);
/// Default limit on the number of trials.
pub const DEFAULT_MAX_TRIALS: u32 = 40;

fn invalid(field: &'static str, reason: impl Into<String>) -> PktgenError {
    PktgenError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// What a search does.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// Lowest rate tried, frames per second.
    pub min_rate: f64,
    /// Highest rate; `None`: the first trial runs at full speed and its transmit rate is the
    /// highest.
    pub max_rate: Option<f64>,
    /// Relative width goal, (upper − lower) / upper.
    pub precision: f64,
    /// Duration of the search trials.
    pub trial: Duration,
    /// Duration of the trials that count as lower bounds at the end (≥ `trial`).
    pub final_trial: Duration,
    /// Loss ratio threshold of the PDR (0 < x < 1).
    pub pdr_loss: f64,
    /// The search stops (unconverged) after this many trials.
    pub max_trials: u32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            min_rate: DEFAULT_MIN_RATE,
            max_rate: None,
            precision: DEFAULT_PRECISION,
            trial: DEFAULT_TRIAL,
            final_trial: DEFAULT_TRIAL,
            pdr_loss: DEFAULT_PDR_LOSS,
            max_trials: DEFAULT_MAX_TRIALS,
        }
    }
}

impl SearchConfig {
    /// Checks the values; errors name the flag.
    pub fn validate(&self) -> Result<(), PktgenError> {
        if !self.min_rate.is_finite() || self.min_rate <= 0.0 {
            return Err(invalid("min-rate", "must be more than 0 pps"));
        }
        if let Some(max) = self.max_rate {
            if !max.is_finite() || max <= self.min_rate {
                return Err(invalid(
                    "max-rate",
                    format!(
                        "{max:.0} pps must be above --min-rate ({:.0} pps)",
                        self.min_rate
                    ),
                ));
            }
        }
        if !(self.precision > 0.0 && self.precision < 1.0) {
            return Err(invalid(
                "precision",
                "must be between 0 and 100 % (e.g. 1%)",
            ));
        }
        if !(self.pdr_loss > 0.0 && self.pdr_loss < 1.0) {
            return Err(invalid(
                "pdr-loss",
                "must be between 0 and 100 % (e.g. 0.5%)",
            ));
        }
        if self.trial.is_zero() {
            return Err(invalid("trial", "must be more than 0"));
        }
        if self.final_trial < self.trial {
            return Err(invalid("final-trial", "must be at least --trial"));
        }
        if self.max_trials < 2 {
            return Err(invalid("max-trials", "must be at least 2"));
        }
        Ok(())
    }
}

/// What one trial measured.
#[derive(Clone, Debug)]
pub struct TrialOutcome {
    pub sent: u64,
    pub received: u64,
    /// Transmit rate the generator reached, frames per second.
    pub tx_pps: f64,
    /// Receive rate of our frames.
    pub rx_pps: f64,
    pub latency: Option<Latency>,
    /// The full pktgen report of the trial (the real runner's).
    pub report: Option<PktgenReport>,
}

/// Runs one trial: a constant load for a duration, then counts.
pub trait TrialRunner {
    fn trial(&mut self, rate: Rate, duration: Duration) -> Result<TrialOutcome, PktgenError>;
}

/// One trial of the search, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// The offered load, frames per second: the rate asked for, or the transmit rate reached
    /// when lower (at full speed: the rate reached).
    pub rate_pps: f64,
    /// The rate asked for (`None`: full speed).
    pub intended_pps: Option<f64>,
    /// Whether it ran as fast as the generator could.
    pub full_speed: bool,
    pub duration_s: f64,
    pub sent: u64,
    pub received: u64,
    /// `sent - received` when positive.
    pub lost: u64,
    pub loss_ratio: f64,
    pub tx_pps: f64,
    pub rx_pps: f64,
    pub latency: Option<Latency>,
    /// The pktgen report of the trial.
    #[serde(skip)]
    pub report: Option<PktgenReport>,
}

/// The bounds found for one loss threshold.
#[derive(Clone, Debug, Serialize)]
pub struct Bounds {
    /// `ndr` or `pdr`.
    pub name: &'static str,
    pub loss_threshold: f64,
    /// The highest rate whose trial lost at most the threshold (the reported rate).
    pub lower_pps: Option<f64>,
    /// The lowest rate whose trial lost more; `None`: none did up to the highest rate.
    pub upper_pps: Option<f64>,
    /// (upper − lower) / upper.
    pub width: Option<f64>,
    /// The width reached the precision goal, or the highest rate passed.
    pub converged: bool,
    /// Why the search stopped short, when it did for a reason of its own.
    pub note: Option<String>,
    /// The trial that set the lower bound (latency at the rate).
    pub lower_trial: Option<Trial>,
}

impl Bounds {
    /// One line: the rate, the bounds and the latency at the rate.
    pub fn line(&self, frame_size: Option<usize>) -> String {
        let name = self.name.to_uppercase();
        let thr = format!("loss ≤ {}", pct(self.loss_threshold));
        let Some(lower) = self.lower_pps else {
            return format!(
                "{name} ({thr}): below the lowest rate tried{}",
                self.upper_pps
                    .map_or(String::new(), |u| format!(" ({u:.0} pps lost packets)"))
            );
        };
        let gbps = frame_size.map_or(String::new(), |s| {
            format!(", {:.3} Gbps L2", lower * (s * 8) as f64 / 1e9)
        });
        let mut s = format!("{name} ({thr}): {:.3} Mpps{gbps}", lower / 1e6);
        match (self.upper_pps, self.width) {
            (Some(u), Some(w)) => {
                s += &format!(
                    " [bounds {:.3}–{:.3} Mpps, width {}{}]",
                    lower / 1e6,
                    u / 1e6,
                    pct(w),
                    match (&self.note, self.converged) {
                        (_, true) => String::new(),
                        (Some(n), false) => format!(", not converged: {n}"),
                        (None, false) => ", not converged".to_string(),
                    }
                )
            }
            _ => s += " [no loss up to the highest rate: the generator's limit, not the device's]",
        }
        if let Some(l) = self.lower_trial.as_ref().and_then(|t| t.latency) {
            s += &format!(
                "; latency (us) p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
                l.p50_ns as f64 / 1e3,
                l.p90_ns as f64 / 1e3,
                l.p99_ns as f64 / 1e3,
                l.p999_ns as f64 / 1e3,
                l.max_ns as f64 / 1e3
            );
        }
        s
    }
}

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p == 0.0 {
        "0 %".to_string()
    } else if p >= 1.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.3} %")
    }
}

/// What the search found.
#[derive(Clone, Debug, Serialize)]
pub struct SearchReport {
    pub min_rate_pps: f64,
    pub max_rate_pps: f64,
    pub precision: f64,
    pub trial_s: f64,
    pub final_trial_s: f64,
    /// The frame size without FCS, when known.
    pub frame_size: Option<usize>,
    /// The first trial: at full speed (or `--max-rate`).
    pub full_speed: Trial,
    pub ndr: Bounds,
    pub pdr: Bounds,
    /// Every trial in the order run.
    pub trials: Vec<Trial>,
    /// The search was stopped (signal) before it converged.
    pub interrupted: bool,
}

impl SearchReport {
    /// A human-readable summary: the full-speed trial, NDR and PDR with their bounds.
    pub fn summary(&self) -> String {
        let f = &self.full_speed;
        let mut s = format!(
            "NDR/PDR search: {} trials ({:.1} s each{}), precision {}, rates {:.0}–{:.0} pps{}\n",
            self.trials.len(),
            self.trial_s,
            if self.final_trial_s > self.trial_s {
                format!(", final {:.1} s", self.final_trial_s)
            } else {
                String::new()
            },
            pct(self.precision),
            self.min_rate_pps,
            self.max_rate_pps,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
        );
        s += &format!(
            "  {}: offered {:.3} Mpps, received {:.3} Mpps, loss {} frames ({})\n",
            if f.full_speed {
                "full speed"
            } else {
                "highest rate"
            },
            f.tx_pps / 1e6,
            f.rx_pps / 1e6,
            f.lost,
            pct(f.loss_ratio)
        );
        s += &format!("  {}\n", self.ndr.line(self.frame_size));
        s += &format!("  {}\n", self.pdr.line(self.frame_size));
        s
    }
}

/// What to do next for one threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Done,
    Trial(f64, Duration),
}

/// The bounds of `threshold` among `trials`: the lowest rate with more loss (any duration:
/// a loss is a loss), and the highest rate below it with at most that loss in a trial of at
/// least `duration` (index into `trials`).
fn bounds(trials: &[Trial], threshold: f64, duration: Duration) -> (Option<usize>, Option<usize>) {
    let d = duration.as_secs_f64() * 0.999;
    let upper = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.loss_ratio > threshold)
        .min_by(|a, b| a.1.rate_pps.total_cmp(&b.1.rate_pps))
        .map(|(i, _)| i);
    let limit = upper.map_or(f64::INFINITY, |u| trials[u].rate_pps);
    let lower = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.loss_ratio <= threshold && t.duration_s >= d && t.rate_pps < limit)
        .max_by(|a, b| a.1.rate_pps.total_cmp(&b.1.rate_pps))
        .map(|(i, _)| i);
    (lower, upper)
}

/// The next trial for `threshold`, or `Done`.
fn next_step(
    trials: &[Trial],
    threshold: f64,
    duration: Duration,
    cfg: &SearchConfig,
    max_rate: f64,
) -> Step {
    let (lower, upper) = bounds(trials, threshold, duration);
    let Some(u) = upper else {
        // Nothing lost more than the threshold: done once the highest rate passed at this
        // duration.
        return match lower {
            Some(l) if trials[l].rate_pps >= max_rate * (1.0 - 1e-9) => Step::Done,
            _ => Step::Trial(max_rate, duration),
        };
    };
    let up = &trials[u];
    if let Some(l) = lower {
        let lo = trials[l].rate_pps;
        if (up.rate_pps - lo) / up.rate_pps <= cfg.precision {
            return Step::Done;
        }
        return Step::Trial((lo + up.rate_pps) / 2.0, duration);
    }
    // No lower bound yet at this duration. A shorter trial that passed is re-run first (the
    // final phase); else, CSIT's first guess: the rate the device delivered when overloaded,
    // lowered by the threshold's share.
    let d = duration.as_secs_f64() * 0.999;
    let shorter = trials
        .iter()
        .filter(|t| t.loss_ratio <= threshold && t.duration_s < d && t.rate_pps < up.rate_pps)
        .map(|t| t.rate_pps)
        .max_by(f64::total_cmp);
    if let Some(r) = shorter {
        return Step::Trial(r, duration);
    }
    if up.rate_pps <= cfg.min_rate * (1.0 + 1e-9) {
        // Lost even at the lowest rate: no lower bound.
        return Step::Done;
    }
    // Each further loss without a lower bound doubles the step down (MLRsearch's external
    // search), so a device that loses a little everywhere is passed in a few trials.
    let failed = trials.iter().filter(|t| t.loss_ratio > threshold).count();
    let step = (cfg.precision * 2f64.powi(failed.saturating_sub(1).min(30) as i32)).min(0.5);
    let guess = (up.rx_pps * (1.0 - threshold)).min(up.rate_pps * (1.0 - step));
    Step::Trial(guess.max(cfg.min_rate), duration)
}

fn to_trial(rate: Rate, duration: Duration, o: TrialOutcome) -> Trial {
    let lost = o.sent.saturating_sub(o.received);
    Trial {
        // What the generator offered: a rate it could not reach was not tried.
        rate_pps: match rate {
            Rate::Pps(p) => p.min(o.tx_pps),
            Rate::Max => o.tx_pps,
        },
        intended_pps: match rate {
            Rate::Pps(p) => Some(p),
            Rate::Max => None,
        },
        full_speed: rate == Rate::Max,
        duration_s: duration.as_secs_f64(),
        sent: o.sent,
        received: o.received,
        lost,
        loss_ratio: lost as f64 / o.sent.max(1) as f64,
        tx_pps: o.tx_pps,
        rx_pps: o.rx_pps,
        latency: o.latency,
        report: o.report,
    }
}

fn make_bounds(
    trials: &[Trial],
    name: &'static str,
    threshold: f64,
    duration: Duration,
    converged: bool,
    note: Option<String>,
) -> Bounds {
    let (lower, upper) = bounds(trials, threshold, duration);
    let lower_pps = lower.map(|i| trials[i].rate_pps);
    let upper_pps = upper.map(|i| trials[i].rate_pps);
    Bounds {
        name,
        loss_threshold: threshold,
        lower_pps,
        upper_pps,
        width: lower_pps.zip(upper_pps).map(|(l, u)| (u - l) / u),
        converged,
        note,
        lower_trial: lower.map(|i| trials[i].clone()),
    }
}

/// Runs the search: NDR (loss 0), then PDR (`cfg.pdr_loss`), sharing trials. `on_trial`
/// sees each trial as it ends; `stop` ends the search after the current trial.
pub fn search(
    runner: &mut dyn TrialRunner,
    cfg: &SearchConfig,
    stop: Option<&AtomicBool>,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<SearchReport, PktgenError> {
    cfg.validate()?;
    let mut trials: Vec<Trial> = Vec::new();
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let mut run = |trials: &mut Vec<Trial>, rate: Rate, d: Duration| -> Result<(), PktgenError> {
        let o = runner.trial(rate, d)?;
        if o.sent == 0 {
            return Err(invalid(
                "port",
                "the trial sent no frames: the interface took none",
            ));
        }
        let t = to_trial(rate, d, o);
        on_trial(&t);
        trials.push(t);
        Ok(())
    };
    let first = cfg.max_rate.map_or(Rate::Max, Rate::Pps);
    run(&mut trials, first, cfg.trial)?;
    let max_rate = trials[0].rate_pps.max(cfg.min_rate);
    let mut interrupted = false;
    let mut converged = [false; 2];
    let mut notes: [Option<String>; 2] = [None, None];
    'thresholds: for (k, threshold) in [0.0, cfg.pdr_loss].into_iter().enumerate() {
        let mut phases = vec![cfg.trial];
        if cfg.final_trial > cfg.trial {
            phases.push(cfg.final_trial);
        }
        for d in phases.iter().copied() {
            loop {
                if stopped() {
                    interrupted = true;
                    break 'thresholds;
                }
                match next_step(&trials, threshold, d, cfg, max_rate) {
                    Step::Done => break,
                    Step::Trial(rate, d) => {
                        if trials.len() >= cfg.max_trials as usize {
                            break 'thresholds;
                        }
                        // Asked for before and not reached: the search cannot go on (the
                        // same trial would come back), and says so.
                        if let Some(t) = trials.iter().find(|t| {
                            t.intended_pps
                                .is_some_and(|i| (i - rate).abs() <= rate * 1e-6)
                                && t.rate_pps < rate * (1.0 - cfg.precision / 4.0)
                        }) {
                            notes[k] = Some(format!(
                                "the generator could not offer {:.0} pps (reached {:.0})",
                                rate, t.tx_pps
                            ));
                            continue 'thresholds;
                        }
                        run(&mut trials, Rate::Pps(rate), d)?;
                    }
                }
            }
        }
        converged[k] = true;
    }
    let d = cfg.final_trial;
    Ok(SearchReport {
        min_rate_pps: cfg.min_rate,
        max_rate_pps: max_rate,
        precision: cfg.precision,
        trial_s: cfg.trial.as_secs_f64(),
        final_trial_s: cfg.final_trial.as_secs_f64(),
        frame_size: trials[0].report.as_ref().map(|r| r.frame_size),
        full_speed: trials[0].clone(),
        ndr: make_bounds(&trials, "ndr", 0.0, d, converged[0], notes[0].take()),
        pdr: make_bounds(
            &trials,
            "pdr",
            cfg.pdr_loss,
            d,
            converged[1],
            notes[1].take(),
        ),
        trials,
        interrupted,
    })
}

/// The real runner: pktgen transmitting on one interface and counting on another.
pub struct PktgenRunner {
    pub opts: PktgenOptions,
}

impl TrialRunner for PktgenRunner {
    fn trial(&mut self, rate: Rate, duration: Duration) -> Result<TrialOutcome, PktgenError> {
        let mut o = self.opts.clone();
        o.rate = rate;
        o.duration = Some(duration);
        o.count = None;
        let r = pktgen::run(&o, None)?;
        let received = r.received.unwrap_or(0);
        Ok(TrialOutcome {
            sent: r.sent,
            received,
            tx_pps: r.tx_mpps * 1e6,
            rx_pps: r.rx_mpps.unwrap_or(0.0) * 1e6,
            latency: r.latency,
            report: Some(r),
        })
    }
}

/// Reads a ratio: a percentage (`0.5%`) or a fraction (`0.005`).
pub fn parse_ratio(field: &'static str, s: &str) -> Result<f64, PktgenError> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| invalid(field, format!("{s:?} is not a percentage like 1% or 0.5%")))?;
    Ok(v * scale)
}

/// The flags of `vecswitch pktgen --ndr`.
#[derive(clap::Args, Debug, Clone)]
pub struct NdrArgs {
    /// Search the no-drop rate (and the partial-drop rate) with trials at constant rates
    /// (RFC 2544 throughput, CSIT's NDR/PDR); needs --rx.
    #[arg(long)]
    pub ndr: bool,
    /// --ndr: lowest rate tried (e.g. 10k).
    #[arg(long, default_value = "10k")]
    pub min_rate: String,
    /// --ndr: highest rate tried (default: max, what the generator reaches in its first,
    /// full-speed trial).
    #[arg(long, default_value = "max")]
    pub max_rate: String,
    /// --ndr: stop when (upper - lower) / upper is at most this (e.g. 1%, 0.005).
    #[arg(long, default_value = "1%")]
    pub precision: String,
    /// --ndr: duration of each trial.
    #[arg(long, default_value = "1s")]
    pub trial: String,
    /// --ndr: duration of the trials that confirm the bounds at the end (default: --trial).
    #[arg(long)]
    pub final_trial: Option<String>,
    /// --ndr: loss ratio of the partial-drop rate (PDR), e.g. 0.5%.
    #[arg(long, default_value = "0.5%")]
    pub pdr_loss: String,
    /// --ndr: stop after this many trials, converged or not.
    #[arg(long, default_value_t = DEFAULT_MAX_TRIALS)]
    pub max_trials: u32,
}

impl NdrArgs {
    /// The search these flags stand for; errors name the flag.
    pub fn config(&self) -> Result<SearchConfig, PktgenError> {
        let rate = |field: &'static str, s: &str| match parse_rate(s) {
            Ok(r) => Ok(r),
            Err(PktgenError::Invalid { reason, .. }) => Err(invalid(field, reason)),
            Err(e) => Err(e),
        };
        let min_rate = match rate("min-rate", &self.min_rate)? {
            Rate::Pps(p) => p,
            Rate::Max => return Err(invalid("min-rate", "must be a rate, not max")),
        };
        let max_rate = match rate("max-rate", &self.max_rate)? {
            Rate::Pps(p) => Some(p),
            Rate::Max => None,
        };
        let duration = |field: &'static str, s: &str| match parse_duration(s) {
            Ok(d) => Ok(d),
            Err(PktgenError::Invalid { reason, .. }) => Err(invalid(field, reason)),
            Err(e) => Err(e),
        };
        let trial = duration("trial", &self.trial)?;
        let final_trial = match &self.final_trial {
            Some(s) => duration("final-trial", s)?,
            None => trial,
        };
        let cfg = SearchConfig {
            min_rate,
            max_rate,
            precision: parse_ratio("precision", &self.precision)?,
            trial,
            final_trial,
            pdr_loss: parse_ratio("pdr-loss", &self.pdr_loss)?,
            max_trials: self.max_trials,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The options of the trials of `vecswitch pktgen --ndr` (each trial sets its rate and
/// duration); refuses the flags a search sets itself.
pub fn trial_options(args: &PktgenArgs) -> Result<PktgenOptions, PktgenError> {
    let opts = args.options()?;
    if opts.rx.is_none() {
        return Err(invalid(
            "rx",
            "--ndr counts what comes back: give the receiving interface",
        ));
    }
    if opts.rate != Rate::Max {
        return Err(invalid(
            "rate",
            "--ndr searches the rate: bound it with --min-rate and --max-rate",
        ));
    }
    if opts.duration.is_some() || opts.count.is_some() {
        return Err(invalid(
            "duration",
            "--ndr runs trials of --trial each; --duration and --count do not apply",
        ));
    }
    Ok(opts)
}

/// `vecswitch pktgen --ndr`: the search, each trial on stderr, the report (text or JSON) on
/// stdout.
pub fn main(args: &PktgenArgs, ndr: &NdrArgs) -> anyhow::Result<()> {
    let cfg = ndr.config()?;
    let mut opts = trial_options(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    opts.stop = Some(stop.clone());
    let report = run_search(opts, &cfg, Some(&stop), true)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::out!("{}", report.summary())?;
    }
    Ok(())
}

/// Runs the search with pktgen trials; with `verbose`, one line per trial on stderr.
pub fn run_search(
    opts: PktgenOptions,
    cfg: &SearchConfig,
    stop: Option<&AtomicBool>,
    verbose: bool,
) -> Result<SearchReport, PktgenError> {
    let mut runner = PktgenRunner { opts };
    let mut n = 0;
    let mut log = |t: &Trial| {
        n += 1;
        if verbose {
            eprintln!("  {}", trial_line(n, t));
        }
    };
    search(&mut runner, cfg, stop, &mut log)
}

/// One trial as a line: `trial 3: 0.512 Mpps for 1.0 s: sent N, received M, loss 0 %`.
pub fn trial_line(n: usize, t: &Trial) -> String {
    format!(
        "trial {n}: {}{:.3} Mpps for {:.1} s: sent {}, received {}, lost {} ({})",
        if t.full_speed { "full speed, " } else { "" },
        t.rate_pps / 1e6,
        t.duration_s,
        t.sent,
        t.received,
        t.lost,
        pct(t.loss_ratio)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that forwards everything up to `capacity` pps and drops the excess (or, with
    /// `leak`, only that share of it), losing one frame more at the `spikes` rates. The
    /// generator reaches at most `gen_max` pps.
    struct Device {
        capacity: f64,
        gen_max: f64,
        /// Rates (pps, ±0.5 %) at which a trial loses one frame (noise).
        spikes: Vec<f64>,
        /// Above capacity, lose only this share instead of the excess.
        leak: Option<f64>,
        calls: Vec<(Rate, Duration)>,
    }

    impl Device {
        fn new(capacity: f64, gen_max: f64) -> Device {
            Device {
                capacity,
                gen_max,
                spikes: Vec::new(),
                leak: None,
                calls: Vec::new(),
            }
        }
    }

    impl TrialRunner for Device {
        fn trial(&mut self, rate: Rate, d: Duration) -> Result<TrialOutcome, PktgenError> {
            self.calls.push((rate, d));
            let offered = match rate {
                Rate::Max => self.gen_max,
                Rate::Pps(p) => p.min(self.gen_max),
            };
            let secs = d.as_secs_f64();
            let sent = (offered * secs).round() as u64;
            let mut received = sent.min((self.capacity * secs).round() as u64);
            if let (Some(leak), true) = (self.leak, offered > self.capacity) {
                received = sent - ((sent as f64 * leak).ceil() as u64);
            }
            if self.spikes.iter().any(|s| (offered - s).abs() <= s * 0.005) {
                received = received.saturating_sub(1);
            }
            Ok(TrialOutcome {
                sent,
                received,
                tx_pps: sent as f64 / secs,
                rx_pps: received as f64 / secs,
                latency: None,
                report: None,
            })
        }
    }

    fn quiet(dev: &mut Device, cfg: &SearchConfig) -> SearchReport {
        search(dev, cfg, None, &mut |_| {}).unwrap()
    }

    /// The loss ratio a trial at `r` has on a device of capacity `c`.
    fn loss_at(r: f64, c: f64) -> f64 {
        ((r - c) / r).max(0.0)
    }

    #[test]
    fn finds_a_known_capacity() {
        for (capacity, gen_max) in [(400_000.0, 1_200_000.0), (987_654.0, 1_000_000.0)] {
            for precision in [0.05, 0.01, 0.002] {
                let cfg = SearchConfig {
                    precision,
                    ..SearchConfig::default()
                };
                let mut dev = Device::new(capacity, gen_max);
                let r = quiet(&mut dev, &cfg);
                let ndr = &r.ndr;
                let (lo, up) = (ndr.lower_pps.unwrap(), ndr.upper_pps.unwrap());
                assert!(ndr.converged);
                // The capacity lies between the bounds, which are within the goal.
                assert!(lo <= capacity && capacity < up, "{lo} {capacity} {up}");
                assert!((up - lo) / up <= precision, "{lo} {up}");
                let t = ndr.lower_trial.as_ref().unwrap();
                assert_eq!(t.lost, 0);
                assert_eq!(t.rate_pps, lo);
                // PDR at 0.5 %: the rate whose loss is 0.5 % is capacity / 0.995.
                let pdr_rate = capacity / (1.0 - cfg.pdr_loss);
                let (plo, pup) = (r.pdr.lower_pps.unwrap(), r.pdr.upper_pps.unwrap());
                assert!(plo <= pdr_rate * 1.000_01 && pdr_rate < pup * 1.000_01);
                assert!((pup - plo) / pup <= precision);
                assert!(loss_at(plo, capacity) <= cfg.pdr_loss + 1e-6);
                assert!(plo >= lo, "PDR {plo} below NDR {lo}");
                // The first trial is at full speed, then a binary search: at most about
                // log2(1 / precision) trials per threshold after the first guess.
                assert_eq!(dev.calls[0].0, Rate::Max);
                assert!(r.full_speed.full_speed);
                assert_eq!(r.full_speed.rate_pps, gen_max);
                let budget = 2 * ((1.0 / precision).log2().ceil() as usize + 3);
                assert!(r.trials.len() <= budget, "{} trials", r.trials.len());
                assert_eq!(r.trials.len(), dev.calls.len());
                for (t, c) in r.trials.iter().zip(&dev.calls) {
                    assert_eq!(t.duration_s, c.1.as_secs_f64());
                }
            }
        }
    }

    #[test]
    fn a_device_losing_a_little_everywhere_is_passed_in_few_trials() {
        // Above 100 kpps it loses 0.1 %: the received rate says little, and the steps down
        // from 1 Mpps must grow.
        let mut dev = Device::new(100_000.0, 1_000_000.0);
        dev.leak = Some(0.001);
        let r = quiet(&mut dev, &SearchConfig::default());
        let lo = r.ndr.lower_pps.unwrap();
        assert!((99_000.0..=100_000.0).contains(&lo), "{lo}");
        assert!(r.ndr.converged);
        assert!(r.trials.len() <= 20, "{} trials", r.trials.len());
        // 0.1 % is under the PDR's 0.5 %: the PDR is the full-speed rate.
        assert_eq!(r.pdr.lower_pps, Some(1_000_000.0));
        assert_eq!(r.pdr.upper_pps, None);
    }

    #[test]
    fn the_generator_limit_is_not_a_device_limit() {
        let mut dev = Device::new(2_000_000.0, 800_000.0);
        let r = quiet(&mut dev, &SearchConfig::default());
        assert_eq!(r.trials.len(), 1, "nothing lost at full speed: one trial");
        assert_eq!(r.ndr.lower_pps, Some(800_000.0));
        assert_eq!(r.ndr.upper_pps, None);
        assert!(r.ndr.converged);
        assert!(r.ndr.line(Some(60)).contains("the generator's limit"));
        assert_eq!(r.pdr.lower_pps, Some(800_000.0));
    }

    #[test]
    fn max_and_min_rate_bound_the_search() {
        let cfg = SearchConfig {
            min_rate: 50_000.0,
            max_rate: Some(300_000.0),
            ..SearchConfig::default()
        };
        let mut dev = Device::new(100_000.0, 1_000_000.0);
        let r = quiet(&mut dev, &cfg);
        assert_eq!(dev.calls[0].0, Rate::Pps(300_000.0));
        assert!(!r.full_speed.full_speed);
        for (rate, _) in &dev.calls {
            let Rate::Pps(p) = rate else {
                panic!("max trial")
            };
            assert!((50_000.0..=300_000.0).contains(p), "{p}");
        }
        let lo = r.ndr.lower_pps.unwrap();
        assert!((99_000.0..=100_000.0).contains(&lo), "{lo}");

        // A device that loses at the lowest rate: no NDR, and the search stops there.
        let mut dev = Device::new(10_000.0, 1_000_000.0);
        let r = quiet(&mut dev, &cfg);
        assert_eq!(r.ndr.lower_pps, None);
        assert_eq!(r.ndr.upper_pps, Some(50_000.0));
        assert!(r.ndr.line(None).contains("below the lowest rate tried"));
        assert!(r.trials.len() <= 6, "{}", r.trials.len());
    }

    #[test]
    fn final_trials_confirm_the_lower_bound() {
        let cfg = SearchConfig {
            trial: Duration::from_millis(500),
            final_trial: Duration::from_secs(3),
            precision: 0.01,
            ..SearchConfig::default()
        };
        let mut dev = Device::new(500_000.0, 1_000_000.0);
        let r = quiet(&mut dev, &cfg);
        let t = r.ndr.lower_trial.as_ref().unwrap();
        assert_eq!(
            t.duration_s, 3.0,
            "the lower bound comes from a final trial"
        );
        assert_eq!(r.pdr.lower_trial.as_ref().unwrap().duration_s, 3.0);
        let lo = r.ndr.lower_pps.unwrap();
        assert!(lo <= 500_000.0 && (r.ndr.upper_pps.unwrap() - lo) / lo <= 0.0102);
        let finals = r.trials.iter().filter(|t| t.duration_s == 3.0).count();
        assert!(
            (1..=4).contains(&finals),
            "{finals} final trials: the short ones did the search"
        );
    }

    #[test]
    fn a_noisy_trial_is_an_upper_bound() {
        // The device loses one frame at ~500 kpps although its capacity is 500 kpps: the
        // first guess (the full-speed trial's received rate) lands there and loses, so the
        // NDR is found below it (a loss is a loss), from a trial that lost nothing.
        let mut dev = Device::new(500_000.0, 1_000_000.0);
        dev.spikes = vec![500_000.0];
        let r = quiet(&mut dev, &SearchConfig::default());
        assert_eq!(r.ndr.upper_pps, Some(500_000.0));
        assert_eq!(r.ndr.lower_pps, Some(495_000.0));
        assert_eq!(r.ndr.lower_trial.as_ref().unwrap().lost, 0);
        assert!(r.ndr.converged);
        // Without the spike the same search reports the capacity itself.
        let r = quiet(
            &mut Device::new(500_000.0, 1_000_000.0),
            &SearchConfig::default(),
        );
        assert_eq!(r.ndr.lower_pps, Some(500_000.0));
    }

    #[test]
    fn a_rate_the_generator_cannot_reach_ends_the_search_with_a_note() {
        // The generator reaches 600 kpps at full speed, but paced it manages only 300 kpps.
        struct Slow(Device);
        impl TrialRunner for Slow {
            fn trial(&mut self, rate: Rate, d: Duration) -> Result<TrialOutcome, PktgenError> {
                let rate = match rate {
                    Rate::Pps(p) => Rate::Pps(p.min(300_000.0)),
                    Rate::Max => Rate::Max,
                };
                self.0.trial(rate, d)
            }
        }
        let mut dev = Slow(Device::new(450_000.0, 600_000.0));
        let r = search(&mut dev, &SearchConfig::default(), None, &mut |_| {}).unwrap();
        assert!(!r.ndr.converged);
        assert!(r.trials.len() < 10, "{} trials", r.trials.len());
        let line = r.ndr.line(None);
        assert!(line.contains("could not offer"), "{line}");
        // What it reports passed at the rate it reached, not at the rate asked for.
        assert_eq!(r.ndr.lower_pps, Some(300_000.0));
    }

    #[test]
    fn the_trial_budget_and_the_stop_flag_end_the_search() {
        let cfg = SearchConfig {
            precision: 1e-9,
            max_trials: 5,
            ..SearchConfig::default()
        };
        let mut dev = Device::new(400_000.0, 1_000_000.0);
        let r = quiet(&mut dev, &cfg);
        assert_eq!(r.trials.len(), 5);
        assert!(!r.ndr.converged);
        assert!(r.ndr.line(None).contains("not converged"));
        let stop = AtomicBool::new(true);
        let mut dev = Device::new(400_000.0, 1_000_000.0);
        let r = search(&mut dev, &SearchConfig::default(), Some(&stop), &mut |_| {}).unwrap();
        assert_eq!(r.trials.len(), 1);
        assert!(r.interrupted);
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let cases: &[(SearchConfig, &str)] = &[
            (
                SearchConfig {
                    min_rate: 0.0,
                    ..SearchConfig::default()
                },
                "min-rate: ",
            ),
            (
                SearchConfig {
                    max_rate: Some(5_000.0),
                    ..SearchConfig::default()
                },
                "max-rate: ",
            ),
            (
                SearchConfig {
                    precision: 0.0,
                    ..SearchConfig::default()
                },
                "precision: ",
            ),
            (
                SearchConfig {
                    pdr_loss: 1.5,
                    ..SearchConfig::default()
                },
                "pdr-loss: ",
            ),
            (
                SearchConfig {
                    final_trial: Duration::from_millis(10),
                    ..SearchConfig::default()
                },
                "final-trial: ",
            ),
        ];
        for (cfg, prefix) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.starts_with(prefix), "{e}");
        }
        assert_eq!(parse_ratio("precision", "0.5%").unwrap(), 0.005);
        assert_eq!(parse_ratio("precision", "0.02").unwrap(), 0.02);
        assert!(parse_ratio("pdr-loss", "half")
            .unwrap_err()
            .to_string()
            .starts_with("pdr-loss: "));
    }
}
