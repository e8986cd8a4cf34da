//! `vecswitch`: the command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use datapath::replay::{replay, ReplayReport};
use datapath::scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "vecswitch",
    version,
    about = "A userspace-datapath virtual switch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Feed a scenario's input pcaps through the switch on the capture clock; write one output
    /// pcap per port and counters.json.
    Replay {
        /// Scenario directory (holding scenario.toml) or the TOML file itself.
        scenario: PathBuf,
        /// Where to write the outputs.
        #[arg(long, default_value = "replay-out")]
        out: PathBuf,
        /// Print counters.json instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Check a rules file (ovs-ofctl add-flows syntax) and print each rule as dump-flows would.
    ParseFlows { file: PathBuf },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vecswitch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay {
            scenario,
            out,
            json,
        } => {
            let s = Scenario::load(&scenario)?;
            let started = std::time::Instant::now();
            let report = replay(&s, &out)?;
            let elapsed = started.elapsed();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_summary(&report, &out, elapsed);
            }
            Ok(())
        }
        Command::ParseFlows { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let flows = openflow::parse_flows_file(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for f in flows {
                println!("{f}");
            }
            Ok(())
        }
    }
}

fn print_summary(r: &ReplayReport, out: &std::path::Path, elapsed: std::time::Duration) {
    println!("scenario: {}", r.scenario);
    println!("\nports:");
    println!(
        "  {:<10} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "name", "ofport", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes", "rx_drop"
    );
    for p in &r.ports {
        let s = &p.stats;
        println!(
            "  {:<10} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8}",
            p.name, p.ofport, s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes, s.rx_dropped
        );
    }
    println!("\nnodes (calls, vectors):");
    for n in &r.nodes {
        println!("  {:<10} {:>8} {:>8}", n.name, n.calls, n.vectors);
    }
    println!("\nclassifier:");
    for (k, v) in &r.classify {
        println!("  {k:<24} {v}");
    }
    println!("\ndrops:");
    if r.drops.is_empty() {
        println!("  none");
    }
    for (k, v) in &r.drops {
        println!("  {k:<32} {v}");
    }
    println!("\nflows:");
    for f in &r.flows {
        println!("  {f}");
    }
    println!("\nmegaflows:");
    for m in &r.megaflows {
        println!("  {m}");
    }
    println!(
        "\noutputs written to {} ({:.1} ms)",
        out.display(),
        elapsed.as_secs_f64() * 1e3
    );
}
