//! `vecswitch demo`, the README's first command: starts the daemon (a child `vecswitch run`),
//! attaches two network namespaces to its bridge as containers, shows ping and a TCP transfer
//! across, runs pktgen through the switch at full speed for a few seconds over two more veth
//! pairs, prints the throughput with the switch's per-port, per-PMD and per-node counters,
//! then searches the no-drop rate with short trials, and removes everything it created, also
//! when a step fails or Ctrl-C stops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::ndr;
use crate::netns::{self, AttachSpec, NsTarget};
use crate::pktgen::{self, PktgenOptions, Rate};
use control::client;
use ports::generator::traffic::parse_profile;

/// `vecswitch demo` options.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seconds of pktgen traffic at full speed through the switch.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Seconds per trial of the no-drop rate search through the switch (0: no search).
    #[arg(long, default_value_t = 1.0)]
    pub ndr_trial: f64,
    /// Precision goal of the no-drop rate search: (upper - lower) / upper, e.g. 10%.
    #[arg(long, default_value = "10%")]
    pub ndr_precision: String,
    /// pktgen profile (frame size, flows, protocol).
    #[arg(long, default_value = "size=64,flows=1,proto=udp")]
    pub profile: String,
    /// Port type of the attached containers' host ends.
    #[arg(long = "type", default_value = datapath::daemon::ATTACH_PORT_TYPE)]
    pub port_type: String,
}

/// What the demo made, undone on drop in reverse order.
struct Made {
    daemon: Option<Child>,
    links: Vec<String>,
    namespaces: Vec<String>,
    dir: PathBuf,
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = d.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        for n in &self.namespaces {
            let _ = netns::delete_netns(n);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = crate::outln!("\ncleaned up: daemon stopped, namespaces and veths removed");
    }
}

fn step(title: &str) -> std::io::Result<()> {
    crate::outln!("\n== {title}")
}

/// Runs the demo.
pub fn main(args: &DemoArgs) -> Result<()> {
    if !ports::sys::is_root() {
        bail!("demo: needs root (network namespaces, veth pairs, XDP)");
    }
    let profile = parse_profile(&args.profile).map_err(|e| anyhow!("profile: {e}"))?;
    let search = ndr_config(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let id = std::process::id() % 100_000;
    let dir = std::env::temp_dir().join(format!("vecswitch-demo-{id}"));
    std::fs::create_dir_all(&dir)?;
    let mut made = Made {
        daemon: None,
        links: Vec::new(),
        namespaces: Vec::new(),
        dir: dir.clone(),
    };
    let socket = dir.join("vecswitch.sock");
    let bridge = if ports::sys::if_index("br0").is_none() {
        "br0".to_string()
    } else {
        format!("vsdemo{id}")
    };

    step(&format!(
        "starting the switch: vecswitch run, bridge {bridge} (NORMAL, LOCAL tap)"
    ))?;
    let config = dir.join("vecswitch.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\n[[bridge]]\nname = {bridge:?}\nlocal = true\n",
            socket.display().to_string()
        ),
    )?;
    let log = std::fs::File::create(dir.join("daemon.log"))?;
    made.daemon = Some(
        Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the daemon")?,
    );
    wait_for_daemon(&socket, &mut made)?;
    crate::outln!("{}", client::call(&socket, &["show"])?.text)?;

    step("two containers (network namespaces) attached with veth pairs")?;
    let mut ns = Vec::new();
    for (i, ip) in ["10.99.0.1/24", "10.99.0.2/24"].iter().enumerate() {
        let name = format!("vsdemo-{}-{id}", ["a", "b"][i]);
        netns::create_netns(&name)?;
        made.namespaces.push(name.clone());
        let mut spec = AttachSpec::new(NsTarget::Name(name.clone()));
        spec.ip = Some(ip.to_string());
        let att = netns::attach_veth(&spec)?;
        made.links.push(att.host_if.clone());
        let r = client::call(
            &socket,
            &[
                "add-port",
                &bridge,
                &att.host_if,
                &format!("type={}", args.port_type),
            ],
        )?;
        crate::outln!(
            "  {name}: eth0 {ip} {} <-> {} ({})",
            netns::format_mac(&att.mac),
            att.host_if,
            r.text
        )?;
        ns.push(NsTarget::Name(name));
    }
    check_stop(&stop)?;

    step("ping 10.99.0.1 -> 10.99.0.2 through the switch")?;
    let out = netns::ns_exec(
        &ns[0],
        &["ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", "10.99.0.2"],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text
        .lines()
        .filter(|l| l.contains("packets") || l.contains("rtt"))
    {
        crate::outln!("  {l}")?;
    }
    if !out.status.success() {
        bail!("ping: no replies across the switch");
    }
    check_stop(&stop)?;

    step("TCP transfer 10.99.0.1 -> 10.99.0.2 (32 MiB, SHA-256 checked)")?;
    let bytes = 32 << 20;
    let t = Instant::now();
    let n = crate::probe::tcp_transfer(&ns[1], "10.99.0.2", &ns[0], bytes)?;
    let secs = t.elapsed().as_secs_f64();
    crate::outln!(
        "  {n} bytes in {secs:.2} s: {:.0} Mbit/s (includes the Python endpoints' start)",
        n as f64 * 8.0 / secs / 1e6
    )?;
    check_stop(&stop)?;

    step(&format!(
        "pktgen through the switch at full speed for {} s: {} (flows in_port=gen-in -> gen-out)",
        args.seconds, args.profile
    ))?;
    // Two veth pairs in this namespace: pktgen sends on one end of the first, the switch
    // forwards between the other ends, pktgen counts on the far end of the second.
    let mut ends = Vec::new();
    for i in 0..2 {
        let (outer, inner) = (format!("vsdg{id}t{i}"), format!("vsdg{id}s{i}"));
        run(&[
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        made.links.push(outer.clone());
        for l in [&outer, &inner] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{l}/disable_ipv6"), "1");
            run(&["ip", "link", "set", l, "up"])?;
        }
        ends.push((outer, inner));
    }
    let mut ofports = Vec::new();
    for (_, inner) in &ends {
        let r = client::call(
            &socket,
            &[
                "add-port",
                &bridge,
                inner,
                &format!("type={}", args.port_type),
            ],
        )?;
        ofports.push(r.json["ofport"].as_u64().unwrap_or(0));
    }
    client::call(
        &socket,
        &[
            "add-flow",
            &bridge,
            &format!(
                "priority=100,in_port={},actions=output:{}",
                ofports[0], ofports[1]
            ),
        ],
    )?;
    client::call(&socket, &["clear-stats"])?;
    let mut opts = PktgenOptions::new(&ends[0].0);
    opts.rx = Some(ends[1].0.clone());
    opts.profile = profile;
    opts.rate = Rate::Max;
    opts.duration = Some(Duration::from_secs(args.seconds));
    opts.stop = Some(stop.clone());
    // Off the PMD's core (the daemon pins its PMD to the last core).
    opts.core = Some(0);
    // The report says where the lost frames went: the switch's named losses over the run,
    // the veths' kernel drops, the generator's own socket.
    opts.socket = Some(socket.clone());
    let report = pktgen::run_with_bar(&opts, true)?;
    opts.socket = None;
    crate::out!("{}", report.summary())?;
    if report.lost.is_some_and(|l| l > 0) {
        crate::outln!(
            "  (full speed offers more than this veth path takes: the loss is the generator \
             outrunning the path, not a broken switch; the counters below, cleared before \
             this run, say where it went, and the no-drop rate after them is what the path \
             carries without loss)"
        )?;
    }

    for (title, verb) in [
        ("per-port counters", "port-stats"),
        ("per-PMD counters", "pmd-stats"),
        ("per-node counters (like VPP show runtime)", "runtime"),
        ("drops", "drop-reasons"),
    ] {
        step(title)?;
        crate::outln!("{}", client::call(&socket, &[verb])?.text)?;
    }

    if let Some(cfg) = search {
        step(&format!(
            "no-drop rate through the switch: binary search of the offered load (RFC 2544, \
             CSIT NDR/PDR), {:.1} s trials, precision {:.0} %",
            cfg.trial.as_secs_f64(),
            cfg.precision * 100.0
        ))?;
        opts.duration = None;
        let mut runner = ndr::PktgenRunner { opts };
        let mut n = 0;
        let mut show = |t: &ndr::Trial| {
            n += 1;
            let _ = crate::outln!("  {}", ndr::trial_line(n, t));
        };
        let found = ndr::search(&mut runner, &cfg, Some(&stop), &mut show)?;
        crate::out!("{}", found.summary())?;
    }
    Ok(())
}

/// The search the demo runs, `None` when `--ndr-trial 0`; errors name the flag.
fn ndr_config(args: &DemoArgs) -> Result<Option<ndr::SearchConfig>> {
    if args.ndr_trial == 0.0 {
        return Ok(None);
    }
    if !(args.ndr_trial.is_finite() && args.ndr_trial > 0.0 && args.ndr_trial <= 3600.0) {
        bail!(
            "ndr-trial: {} must be 0 (no search) or up to 3600 seconds",
            args.ndr_trial
        );
    }
    let trial = Duration::from_secs_f64(args.ndr_trial);
    let cfg = ndr::SearchConfig {
        trial,
        final_trial: trial,
        precision: ndr::parse_ratio("ndr-precision", &args.ndr_precision)?,
        // A short search: enough for the precision above, bounded for the demo's time.
        max_trials: 10,
        ..ndr::SearchConfig::default()
    };
    cfg.validate().map_err(|e| anyhow!("ndr-{e}"))?;
    Ok(Some(cfg))
}

fn check_stop(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

fn run(args: &[&str]) -> Result<()> {
    let o = Command::new(args[0]).args(&args[1..]).output()?;
    if !o.status.success() {
        bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// Waits until the daemon answers on `socket`; shows its log if it exits instead.
fn wait_for_daemon(socket: &Path, made: &mut Made) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client::call(socket, &["show"]).is_ok() {
            return Ok(());
        }
        if let Some(d) = made.daemon.as_mut() {
            if let Ok(Some(status)) = d.try_wait() {
                let log = std::fs::read_to_string(made.dir.join("daemon.log")).unwrap_or_default();
                bail!("the daemon exited ({status}):\n{log}");
            }
        }
        if Instant::now() > deadline {
            bail!("the daemon did not answer within 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
