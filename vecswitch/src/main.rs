//! `vecswitch`: the command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use control::client;
use control::config::Config;
use control::socket::DEFAULT_SOCKET;
use tools::netns::{self, AttachSpec, NsTarget};
use tools::out::closed_is_ok;
use tools::replay::{replay, ReplayReport};
use tools::scenario::Scenario;
use tools::virtio_user::{self, VirtioUser};
use tools::{out, outln};

#[derive(Parser)]
#[command(
    name = "vecswitch",
    version,
    about = "A userspace-datapath virtual switch",
    allow_external_subcommands = true,
    disable_help_subcommand = true,
    after_help = CONTROL_HELP
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
    /// Run the switch daemon (no config: bridge br0 with NORMAL and its LOCAL tap).
    Run {
        /// TOML configuration (bridges, ports, rules files, pmd cores, batch size).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Control socket path (overrides the configuration's).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Show the switch working: two containers, ping, TCP, pktgen, counters; then clean up.
    Demo(tools::demo::DemoArgs),
    /// Generate traffic on an interface over AF_XDP (and count it on another).
    Pktgen(tools::pktgen::PktgenArgs),
    /// Attach a network namespace (a container) to a bridge through a new veth pair; or, with
    /// --virtio-user, add a vhost-user port and print the DPDK arguments a container needs.
    Attach(AttachArgs),
    /// Undo `attach`: delete the port and the veth pair (or the vhost-user port).
    Detach(DetachArgs),
    /// A control verb for the running daemon (see below).
    #[command(external_subcommand)]
    Control(Vec<String>),
}

#[derive(clap::Args)]
struct AttachArgs {
    /// The bridge.
    bridge: String,
    /// A named network namespace (`ip netns`); or give --pid or --virtio-user.
    #[arg(required_unless_present_any = ["pid", "virtio_user"])]
    netns: Option<String>,
    /// The network namespace of this process (a Docker or containerd container's PID).
    #[arg(long, conflicts_with = "netns")]
    pid: Option<u32>,
    /// No veth: a vhost-user port of this name for a DPDK container (net_virtio_user);
    /// prints the EAL arguments the container needs.
    #[arg(long, value_name = "PORT", conflicts_with_all = ["netns", "pid"])]
    virtio_user: Option<String>,
    /// --virtio-user: where the socket goes (PORT.sock).
    #[arg(long, default_value = tools::virtio_user::DEFAULT_SOCKET_DIR)]
    socket_dir: PathBuf,
    /// --virtio-user: who listens on the socket, server (the switch) or client (the
    /// container, `server=1`).
    #[arg(long, default_value = "server")]
    mode: String,
    /// --virtio-user: the container uses hugepages (--single-file-segments) instead of
    /// --no-huge.
    #[arg(long)]
    hugepages: bool,
    /// --virtio-user: queue pairs (multiqueue: the container gets as many rx/tx queues,
    /// which the switch places on its PMDs like any receive queues).
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// --virtio-user: the container's device uses packed virtqueues (`packed_vq=1`) instead
    /// of split ones.
    #[arg(long)]
    packed: bool,
    /// Address with prefix for the namespace end, e.g. 10.0.0.2/24.
    #[arg(long)]
    ip: Option<String>,
    /// MAC of the namespace end (default: the kernel's random one).
    #[arg(long)]
    mac: Option<String>,
    /// Interface name inside the namespace.
    #[arg(long, default_value = "eth0")]
    name: String,
    /// Port type of the host end.
    #[arg(long = "type", default_value = datapath::daemon::ATTACH_PORT_TYPE)]
    port_type: String,
    #[arg(long)]
    json: bool,
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

#[derive(clap::Args)]
struct DetachArgs {
    bridge: String,
    #[arg(required_unless_present_any = ["pid", "virtio_user"])]
    netns: Option<String>,
    #[arg(long, conflicts_with = "netns")]
    pid: Option<u32>,
    /// The vhost-user port `attach --virtio-user` added.
    #[arg(long, value_name = "PORT", conflicts_with_all = ["netns", "pid"])]
    virtio_user: Option<String>,
    #[arg(long, default_value = "eth0")]
    name: String,
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

fn target(netns: &Option<String>, pid: Option<u32>) -> anyhow::Result<NsTarget> {
    match (netns, pid) {
        (_, Some(p)) => Ok(NsTarget::Pid(p)),
        (Some(n), None) => Ok(NsTarget::Name(n.clone())),
        (None, None) => anyhow::bail!("netns: give a namespace name or --pid"),
    }
}

/// Creates the veth pair and adds its host end as a port; undoes the pair when the daemon
/// refuses the port.
fn attach(a: AttachArgs) -> anyhow::Result<()> {
    if let Some(port) = &a.virtio_user {
        return attach_virtio_user(&a, port);
    }
    let mut spec = AttachSpec::new(target(&a.netns, a.pid)?);
    spec.ip = a.ip.clone();
    spec.mac = a.mac.as_deref().map(netns::parse_mac).transpose()?;
    spec.name = Some(a.name.clone());
    // The daemon must be there before anything is created.
    client::call(&a.socket, &["list-ports", &a.bridge])?;
    let att = netns::attach_veth(&spec)?;
    let added = client::call(
        &a.socket,
        &[
            "add-port",
            &a.bridge,
            &att.host_if,
            &format!("type={}", a.port_type),
        ],
    );
    let added = match added {
        Ok(r) => r,
        Err(e) => {
            let _ = netns::detach_veth(&att.host_if);
            return Err(e);
        }
    };
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "attachment": att, "port": added.json })
            )?
        )?;
    } else {
        outln!(
            "attached {} ({} {} {}) to {}: {}",
            att.netns,
            att.ns_if,
            netns::format_mac(&att.mac),
            att.ip.as_deref().unwrap_or("no address"),
            a.bridge,
            added.text
        )?;
    }
    Ok(())
}

/// Adds the vhost-user port and prints the container's side.
fn attach_virtio_user(a: &AttachArgs, port: &str) -> anyhow::Result<()> {
    let mut v = VirtioUser::new(port, &a.socket_dir, &a.mode, a.hugepages, a.queues)?;
    v.packed = a.packed;
    std::fs::create_dir_all(&a.socket_dir)
        .map_err(|e| anyhow::anyhow!("socket-dir {}: {e}", a.socket_dir.display()))?;
    let mut argv = vec!["add-port".to_string(), a.bridge.clone(), v.port.clone()];
    argv.extend(v.port_options());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let added = client::call(&a.socket, &argv)?;
    if a.json {
        let out = serde_json::json!({
            "attachment": v,
            "eal_args": v.eal_args(),
            "testpmd": v.testpmd_command(),
            "port": added.json,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        outln!(
            "attached vhost-user port {} to {}: {}",
            v.port,
            a.bridge,
            added.text
        )?;
        outln!("socket {} ({} listens)", v.socket.display(), v.mode.name())?;
        outln!("DPDK EAL arguments for the container (mount the socket's directory into it):")?;
        outln!("  {}", virtio_user::shell_line(&v.eal_args()))?;
        outln!("for example:")?;
        outln!("  {}", virtio_user::shell_line(&v.testpmd_command()))?;
    }
    Ok(())
}

fn detach(a: DetachArgs) -> anyhow::Result<()> {
    if let Some(port) = &a.virtio_user {
        client::call(&a.socket, &["del-port", &a.bridge, port])?;
        outln!("detached vhost-user port {port} from {}", a.bridge)?;
        return Ok(());
    }
    let t = target(&a.netns, a.pid)?;
    let host_if = netns::host_if_name(&t, &a.name);
    let removed = client::call(&a.socket, &["del-port", &a.bridge, &host_if]);
    // The pair goes even when the daemon no longer had the port.
    netns::detach_veth(&host_if)?;
    removed?;
    outln!("detached {t} from {}: deleted {host_if}", a.bridge)?;
    Ok(())
}

const CONTROL_HELP: &str = "\
Control verbs are sent to the running daemon (add-br, add-port, add-flow, dump-flows, show,
port-stats, pmd-stats, dump-conntrack, ...): `vecswitch help` lists them all,
`vecswitch help VERB` or `vecswitch VERB --help` explains one, `vecswitch help COMMAND` one of
the commands above.";

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
                outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                print_summary(&report, &out, elapsed)?;
            }
            Ok(())
        }
        Command::Run { config, socket } => {
            let mut c = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default_config(),
            };
            if let Some(s) = socket {
                c.socket = s;
            }
            control::config::run(c)
        }
        Command::Control(argv) => control(argv),
        Command::Pktgen(args) => tools::pktgen::main(&args),
        Command::Demo(args) => tools::demo::main(&args),
        Command::Attach(a) => attach(a),
        Command::Detach(a) => detach(a),
        Command::ParseFlows { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let flows = openflow::parse_flows_file(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for f in flows {
                outln!("{f}")?;
            }
            Ok(())
        }
    }
}

/// Prints the help of `topic`: a control verb, one of the commands, or (none) every verb.
fn print_help(topic: Option<&str>) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let Some(topic) = topic else {
        closed_is_ok(Cli::command().print_help())?;
        outln!("\n\n{}", control::help::overview())?;
        return Ok(());
    };
    if let Some(text) = control::help::verb_help(topic) {
        out!("{text}")?;
        return Ok(());
    }
    let mut cli = Cli::command();
    match cli.find_subcommand_mut(topic) {
        Some(sub) => {
            let mut sub = sub.clone().bin_name(format!("vecswitch {topic}"));
            closed_is_ok(sub.print_help())?;
            Ok(())
        }
        None => {
            anyhow::bail!("help: unknown verb or command {topic:?} (`vecswitch help` lists them)")
        }
    }
}

/// Sends a control verb to the daemon and prints the answer (`--json`: the JSON value).
fn control(mut argv: Vec<String>) -> anyhow::Result<()> {
    let mut json = false;
    let mut socket = std::env::var_os("VECSWITCH_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let mut words = Vec::new();
    let mut it = argv.drain(..);
    while let Some(w) = it.next() {
        match w.as_str() {
            "--json" => json = true,
            "--socket" => {
                socket = PathBuf::from(
                    it.next()
                        .ok_or_else(|| anyhow::anyhow!("--socket: missing path"))?,
                )
            }
            _ => words.push(w),
        }
    }
    // Help needs no daemon: `help`, `help VERB|COMMAND`, `VERB --help`.
    let asks_help = words.iter().any(|w| w == "--help" || w == "-h");
    if words.first().map(String::as_str) == Some("help") || asks_help {
        let topic = if asks_help {
            words.iter().find(|w| !w.starts_with('-')).cloned()
        } else {
            words.get(1).cloned()
        };
        return print_help(topic.as_deref());
    }
    // add-flows and add-groups read the file here and send its contents: the daemon may not
    // see our files.
    let mut data = None;
    let verb = words.first().cloned().unwrap_or_default();
    if verb == "add-flows" || verb == "add-groups" {
        let file_at = words
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, w)| !w.starts_with("--"))
            .nth(1)
            .map(|(i, _)| i)
            .ok_or_else(|| anyhow::anyhow!("{verb}: usage: {verb} BRIDGE FILE"))?;
        let file = words.remove(file_at);
        data =
            Some(std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("file: {file}: {e}"))?);
    }
    // As ovs-ofctl: dump-flows prints port names when it talks to a terminal.
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if words.first().map(String::as_str) == Some("dump-flows")
        && interactive
        && !json
        && !words.iter().any(|w| w == "--names" || w == "--no-names")
    {
        words.push("--names".to_string());
    }
    let r = client::request(&socket, &words, data)?;
    if !r.ok {
        anyhow::bail!("{}", r.error.unwrap_or_default());
    }
    let out = if json {
        serde_json::to_string_pretty(&r.json)?
    } else {
        r.text
    };
    if !out.is_empty() {
        // A reader that went away early (`vecswitch show | head`) is not an error.
        outln!("{out}")?;
    }
    Ok(())
}

fn print_summary(
    r: &ReplayReport,
    out: &std::path::Path,
    elapsed: std::time::Duration,
) -> std::io::Result<()> {
    outln!("scenario: {}", r.scenario)?;
    outln!("\nports:")?;
    outln!(
        "  {:<10} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "name",
        "ofport",
        "rx_pkts",
        "rx_bytes",
        "tx_pkts",
        "tx_bytes",
        "rx_drop"
    )?;
    for p in &r.ports {
        let s = &p.stats;
        outln!(
            "  {:<10} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8}",
            p.name,
            p.ofport,
            s.rx_packets,
            s.rx_bytes,
            s.tx_packets,
            s.tx_bytes,
            s.rx_dropped
        )?;
    }
    outln!("\nnodes (calls, vectors):")?;
    for n in &r.nodes {
        outln!("  {:<10} {:>8} {:>8}", n.name, n.calls, n.vectors)?;
    }
    outln!("\nclassifier:")?;
    for (k, v) in &r.classify {
        outln!("  {k:<24} {v}")?;
    }
    outln!("\ndrops:")?;
    if r.drops.is_empty() {
        outln!("  none")?;
    }
    for (k, v) in &r.drops {
        outln!("  {k:<32} {v}")?;
    }
    outln!("\nflows:")?;
    for (bridge, f) in r.flows.lines() {
        outln!(
            "  {}{f}",
            bridge.map(|b| format!("{b}: ")).unwrap_or_default()
        )?;
    }
    outln!("\nmegaflows:")?;
    for (bridge, m) in r.megaflows.lines() {
        outln!(
            "  {}{m}",
            bridge.map(|b| format!("{b}: ")).unwrap_or_default()
        )?;
    }
    outln!(
        "\noutputs written to {} ({:.1} ms)",
        out.display(),
        elapsed.as_secs_f64() * 1e3
    )?;
    Ok(())
}
