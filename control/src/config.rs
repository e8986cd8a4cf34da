//! The daemon's TOML configuration and `vecswitch run`.
//!
//! ```toml
//! socket = "/run/vecswitch/vecswitch.sock"   # optional
//! pmd-cores = [1]                             # one PMD per core; default: the last core
//! batch-size = 256                            # 1..=256
//! busy-poll = false                           # true: idle PMDs never sleep
//! pmd-sleep-max-us = 100000
//! emc-entries = 8192
//! emc-insert-inv-prob = 100
//! flow-limit = 200000
//! vlan-limit = 1                              # VLAN headers parsed (OVS's; 0 = 2, the most)
//! dpdk-eal-args = ["--no-huge", "-m", "512", "--no-pci"]   # `--features dpdk` builds only
//!
//! [[bridge]]
//! name = "br0"
//! local = true              # the bridge's tap (OpenFlow LOCAL); default true
//! rules = "br0.flows"       # ovs-ofctl add-flows file, relative to this file; default NORMAL
//! controller = ["ptcp:6653:127.0.0.1", "punix:/run/vecswitch/br0.mgmt"]   # as set-controller
//! datapath-id = "0000000000000001"   # as set-datapath-id; default: from the bridge's MAC
//! fail-mode = "secure"      # as set-fail-mode; default standalone
//! inactivity-probe = 5000   # ms, as set-controller's inactivity_probe; 0: off
//! bundle-idle-timeout = 10  # s, as set-controller's bundle_idle_timeout
//! protocols = "OpenFlow10,OpenFlow13"  # as set-controller's protocols
//!
//! [[bridge.port]]
//! name = "veth0"
//! type = "afxdp"            # every other key is a port option, as `add-port` takes them
//! ofport = 1
//!
//! [[bridge]]
//! name = "br-int"
//! local = false
//! tlv-map = "{class=0xffff,type=0,len=4}->tun_metadata0"   # as add-tlv-map
//! [[bridge.port]]
//! name = "vx0"
//! type = "vxlan"
//! remote_ip = "172.31.1.2"
//! key = 5000
//!
//! neighbours = ["br0 172.31.1.2 aa:55:aa:55:00:02"]      # static, as neigh-add
//!
//! [bridge.netflow]          # NetFlow v5 export of the bridge above, as set-netflow
//! targets = ["127.0.0.1:2055", "[::1]:9995"]
//! active_timeout = 60       # seconds; 0 and -1: 600
//! engine_type = 0
//! engine_id = 7
//! add_id_to_interface = false
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::socket::{ControlSocket, DEFAULT_SOCKET};
use datapath::daemon::{Daemon, DaemonSettings};
use ports::spec::PortSpec;
use tunnels::underlay::NeighSpec;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    socket: Option<PathBuf>,
    pmd_cores: Option<Vec<usize>>,
    batch_size: Option<usize>,
    busy_poll: Option<bool>,
    pmd_sleep_max_us: Option<u64>,
    emc_entries: Option<usize>,
    emc_insert_inv_prob: Option<u32>,
    flow_limit: Option<usize>,
    vlan_limit: Option<u64>,
    dpdk_eal_args: Option<Vec<String>>,
    /// Static underlay neighbours, each as `neigh-add` takes it: `BRIDGE IP MAC`.
    #[serde(default)]
    neighbours: Vec<String>,
    #[serde(default)]
    bridge: Vec<BridgeFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BridgeFile {
    name: String,
    local: Option<bool>,
    rules: Option<PathBuf>,
    #[serde(rename = "frag-mode")]
    frag_mode: Option<String>,
    #[serde(rename = "tlv-map")]
    tlv_map: Option<String>,
    netflow: Option<netflow::NetflowOptions>,
    #[serde(default)]
    controller: Vec<String>,
    #[serde(rename = "datapath-id")]
    datapath_id: Option<String>,
    #[serde(rename = "fail-mode")]
    fail_mode: Option<String>,
    #[serde(rename = "inactivity-probe")]
    inactivity_probe: Option<u64>,
    #[serde(rename = "bundle-idle-timeout")]
    bundle_idle_timeout: Option<u64>,
    protocols: Option<String>,
    #[serde(default)]
    port: Vec<toml::Table>,
}

/// A bridge of the configuration.
#[derive(Debug)]
pub struct BridgeConfig {
    pub name: String,
    pub local: bool,
    /// How the rules see IP fragments (`frag-mode`, as `set-frags`).
    pub frag_mode: openflow::FragMode,
    /// The rules file's contents and name.
    pub rules: Option<(String, String)>,
    /// The Geneve TLV map (`tlv-map`, as `add-tlv-map` takes it).
    pub tlv_map: Option<openflow::tlv::TlvMap>,
    /// NetFlow export (`[bridge.netflow]`, the settings `set-netflow` takes).
    pub netflow: Option<netflow::NetflowOptions>,
    /// OpenFlow targets (`controller`, as `set-controller` takes them).
    pub controllers: Vec<ofconn::Target>,
    /// `datapath-id`, as `set-datapath-id` takes it.
    pub datapath_id: Option<u64>,
    /// `fail-mode`, as `set-fail-mode` takes it.
    pub fail_mode: ofconn::FailMode,
    /// `inactivity-probe` (ms), as `set-controller` takes it: `Some(None)` turns it off.
    pub inactivity_probe: Option<Option<std::time::Duration>>,
    /// `bundle-idle-timeout` (s), as `set-controller` takes it.
    pub bundle_idle_timeout: Option<std::time::Duration>,
    /// `protocols` (the OpenFlow versions offered, a bitmap), as `set-controller` takes it.
    pub protocols: Option<u32>,
    pub ports: Vec<PortSpec>,
}

/// The whole configuration.
#[derive(Debug)]
pub struct Config {
    pub socket: PathBuf,
    /// DPDK EAL arguments (`dpdk-eal-args`), for `type=dpdk` ports; default: `--no-huge` ones.
    pub dpdk_eal_args: Option<Vec<String>>,
    pub settings: DaemonSettings,
    pub bridges: Vec<BridgeConfig>,
    /// Static underlay neighbours (`neighbours`).
    pub neighbours: Vec<NeighSpec>,
}

impl Config {
    /// No file: an empty bridge `br0` with NORMAL and its LOCAL port.
    pub fn default_config() -> Config {
        Config {
            socket: PathBuf::from(DEFAULT_SOCKET),
            dpdk_eal_args: None,
            settings: DaemonSettings::default(),
            bridges: vec![BridgeConfig {
                name: "br0".into(),
                local: true,
                frag_mode: openflow::FragMode::default(),
                rules: None,
                tlv_map: None,
                netflow: None,
                controllers: Vec::new(),
                datapath_id: None,
                fail_mode: ofconn::FailMode::default(),
                inactivity_probe: None,
                bundle_idle_timeout: None,
                protocols: None,
                ports: Vec::new(),
            }],
            neighbours: Vec::new(),
        }
    }

    /// Reads and checks a configuration file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Config::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// Parses a configuration; relative rules paths are relative to `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Config> {
        let f: File = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        let mut s = DaemonSettings::default();
        if let Some(cores) = f.pmd_cores {
            let list = cores
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",");
            s.pmd_cores = super::commands::parse_cores(&list)?;
        }
        if let Some(b) = f.batch_size {
            s.pmd.batch = super::commands::parse_batch(&b.to_string())?;
        }
        if let Some(b) = f.busy_poll {
            s.pmd.busy_poll = b;
        }
        if let Some(us) = f.pmd_sleep_max_us {
            if !(1..=1_000_000).contains(&us) {
                bail!("pmd-sleep-max-us: {us} is not 1..=1000000");
            }
            s.pmd.sleep_max_us = us;
        }
        if let Some(n) = f.emc_entries {
            s.classify.emc_entries = n;
        }
        if let Some(n) = f.emc_insert_inv_prob {
            s.classify.emc_insert_inv_prob = n;
        }
        if let Some(n) = f.flow_limit {
            s.classify.flow_limit = n;
        }
        if let Some(n) = f.vlan_limit {
            s.classify.vlans = pipeline::VlanLimit::from_setting(n);
        }
        s.classify.validate().map_err(|e| anyhow!("{e}"))?;
        let mut bridges = Vec::new();
        for b in f.bridge {
            let rules = match &b.rules {
                Some(p) => {
                    let full = dir.join(p);
                    let text = std::fs::read_to_string(&full).with_context(|| {
                        format!("bridge {}: rules: cannot read {}", b.name, full.display())
                    })?;
                    Some((text, full.display().to_string()))
                }
                None => None,
            };
            let mut ports = Vec::new();
            for (i, t) in b.port.iter().enumerate() {
                let name = match t.get("name") {
                    Some(toml::Value::String(n)) => n.clone(),
                    _ => bail!(
                        "bridge {} port {}: name: missing or not a string",
                        b.name,
                        i + 1
                    ),
                };
                let mut words = Vec::new();
                for (k, v) in t {
                    if k == "name" {
                        continue;
                    }
                    let v = match v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(n) => n.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        _ => bail!(
                            "bridge {} port {name}: {k}: must be a string, number or boolean",
                            b.name
                        ),
                    };
                    words.push(format!("{k}={v}"));
                }
                let refs: Vec<&str> = words.iter().map(String::as_str).collect();
                let spec = PortSpec::parse_args(&name, &refs)
                    .map_err(|e| anyhow!("bridge {} port {name}: {e}", b.name))?;
                ports.push(spec);
            }
            let frag_mode = match &b.frag_mode {
                Some(m) => crate::commands::frag_mode(m)
                    .map_err(|e| anyhow!("bridge {}: frag-mode: {e}", b.name))?,
                None => openflow::FragMode::default(),
            };
            let tlv_map = match &b.tlv_map {
                Some(text) => {
                    let mut m = openflow::tlv::TlvMap::default();
                    m.add(text)
                        .map_err(|e| anyhow!("bridge {}: tlv-map: {e}", b.name))?;
                    Some(m)
                }
                None => None,
            };
            if let Some(nf) = &b.netflow {
                nf.validate()
                    .map_err(|e| anyhow!("bridge {}: netflow: {e}", b.name))?;
            }
            let controllers = crate::commands::parse_targets(&b.controller)
                .map_err(|e| anyhow!("bridge {}: controller: {e}", b.name))?;
            let datapath_id = match &b.datapath_id {
                Some(v) => Some(
                    crate::commands::parse_datapath_id(v)
                        .map_err(|e| anyhow!("bridge {}: {e}", b.name))?,
                ),
                None => None,
            };
            let fail_mode = match &b.fail_mode {
                Some(v) => ofconn::FailMode::parse(v).ok_or_else(|| {
                    anyhow!(
                        "bridge {}: fail-mode: {v:?} is not standalone or secure",
                        b.name
                    )
                })?,
                None => ofconn::FailMode::default(),
            };
            let inactivity_probe = match b.inactivity_probe {
                Some(ms) => Some(
                    crate::commands::parse_probe(&ms.to_string())
                        .map_err(|e| anyhow!("bridge {}: {e}", b.name))?,
                ),
                None => None,
            };
            let bundle_idle_timeout = match b.bundle_idle_timeout {
                Some(s) => Some(
                    crate::commands::parse_bundle_idle_timeout(&s.to_string())
                        .map_err(|e| anyhow!("bridge {}: {e}", b.name))?,
                ),
                None => None,
            };
            let protocols = match &b.protocols {
                Some(p) => Some(
                    ofconn::conn::parse_protocols(p)
                        .map_err(|e| anyhow!("bridge {}: {e}", b.name))?,
                ),
                None => None,
            };
            bridges.push(BridgeConfig {
                protocols,
                netflow: b.netflow,
                controllers,
                datapath_id,
                fail_mode,
                inactivity_probe,
                bundle_idle_timeout,
                name: b.name,
                local: b.local.unwrap_or(true),
                frag_mode,
                rules,
                tlv_map,
                ports,
            });
        }
        let mut neighbours = Vec::new();
        for (i, n) in f.neighbours.iter().enumerate() {
            let words: Vec<&str> = n.split_whitespace().collect();
            let spec = NeighSpec::parse(&words).map_err(|e| anyhow!("neighbours[{i}]: {e}"))?;
            if !bridges.iter().any(|b| b.name == spec.bridge) {
                bail!("neighbours[{i}]: bridge: no bridge named {:?}", spec.bridge);
            }
            neighbours.push(spec);
        }
        if f.dpdk_eal_args.is_some() && !cfg!(feature = "dpdk") {
            bail!("dpdk-eal-args: built without the dpdk feature (cargo build --features dpdk)");
        }
        Ok(Config {
            socket: f.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
            dpdk_eal_args: f.dpdk_eal_args,
            settings: s,
            bridges,
            neighbours,
        })
    }
}

/// Builds the daemon a configuration describes (all of it, or an error and nothing left).
pub fn build(config: &Config) -> Result<Daemon> {
    // Before any port: the first dpdk port would otherwise start the EAL with its defaults.
    #[cfg(feature = "dpdk")]
    if let Some(args) = &config.dpdk_eal_args {
        ports::dpdk::eal_init(args)?;
    }
    let mut d = Daemon::new(config.settings.clone())?;
    for b in &config.bridges {
        d.add_bridge(&b.name, b.local)
            .with_context(|| format!("bridge {}", b.name))?;
        d.bridge(&b.name)?.of.set_frag_mode(b.frag_mode);
        if let Some((text, name)) = &b.rules {
            let br = d.bridge(&b.name)?;
            // The file replaces the default NORMAL rule.
            let mut all = String::from("delete\n");
            all.push_str(text);
            let mods = openflow::parse_bundle_file(&all).map_err(|e| anyhow!("{name}: {e}"))?;
            let mods: Vec<openflow::FlowMod> = mods.into_iter().map(|(_, m)| m).collect();
            br.of
                .apply(&mods, d.now_ns())
                .map_err(|e| anyhow!("{name}: {e}"))?;
        }
        if let Some(map) = &b.tlv_map {
            let map = map.clone();
            d.bridge(&b.name)?.of.change_tlv_map(|m| {
                *m = map;
                Ok(())
            })?;
        }
        for p in &b.ports {
            d.add_port(&b.name, p.clone())
                .with_context(|| format!("bridge {} port {}", b.name, p.name))?;
        }
        if let Some(nf) = &b.netflow {
            d.set_netflow(&b.name, Some(nf.clone()))
                .with_context(|| format!("bridge {}: netflow", b.name))?;
        }
        if let Some(i) = d.bridges.iter().position(|x| x.name == b.name) {
            d.bridges[i].datapath_id = b.datapath_id;
            d.bridges[i].controllers.fail_mode = b.fail_mode;
            if let Some(p) = b.inactivity_probe {
                d.bridges[i].controllers.probe = p;
            }
            if let Some(t) = b.bundle_idle_timeout {
                d.bridges[i].controllers.bundle_idle_timeout = t;
            }
            if let Some(v) = b.protocols {
                d.bridges[i].controllers.versions = v;
            }
        }
        if !b.controllers.is_empty() {
            crate::commands::set_controllers(&mut d, &b.name, b.controllers.clone())
                .with_context(|| format!("bridge {}: controller", b.name))?;
        }
    }
    for n in &config.neighbours {
        d.neighs
            .add_static(n, d.now_ns())
            .map_err(|e| anyhow!("neighbours: {e}"))?;
    }
    d.push_tunnel_config()?;
    Ok(d)
}

/// `vecswitch run`: builds the daemon, serves the control socket until SIGTERM or SIGINT, then
/// stops the PMDs and closes every port (no XDP program stays behind).
pub fn run(config: Config) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let socket = ControlSocket::bind(&config.socket)?;
    let mut daemon = build(&config)?;
    let cores: Vec<String> = daemon
        .pmds()
        .iter()
        .map(|p| {
            p.1.map_or_else(|| "unpinned".to_string(), |c| c.to_string())
        })
        .collect();
    eprintln!(
        "vecswitch: running: {} bridge(s), {} PMD(s) on core(s) {}, control socket {}",
        daemon.bridges.len(),
        daemon.pmds().len(),
        cores.join(","),
        socket.path().display()
    );
    socket.serve(&mut daemon, &stop)?;
    eprintln!("vecswitch: stopping");
    daemon.shutdown();
    drop(socket);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_and_datapath_id_are_read_and_checked() {
        let dir = Path::new(".");
        let c = Config::parse(
            "[[bridge]]\nname = \"b0\"\ncontroller = [\"ptcp:6653:127.0.0.1\", \"tcp:10.0.0.1\"]\n\
             datapath-id = \"00000000000000ab\"\n",
            dir,
        )
        .unwrap_or_else(|e| unreachable!("{e:#}"));
        let b = &c.bridges[0];
        let targets: Vec<String> = b.controllers.iter().map(|t| t.to_string()).collect();
        assert_eq!(targets, ["ptcp:6653:127.0.0.1", "tcp:10.0.0.1:6653"]);
        assert_eq!(b.datapath_id, Some(0xab));
        assert_eq!(b.inactivity_probe, None);
        assert_eq!(b.bundle_idle_timeout, None);
        let c = Config::parse("[[bridge]]\nname = \"b0\"\nbundle-idle-timeout = 3\n", dir)
            .unwrap_or_else(|e| unreachable!("{e:#}"));
        assert_eq!(
            c.bridges[0].bundle_idle_timeout,
            Some(std::time::Duration::from_secs(3))
        );
        assert_eq!(b.protocols, None);
        let c = Config::parse(
            "[[bridge]]\nname = \"b0\"\nprotocols = \"OpenFlow13\"\n",
            dir,
        )
        .unwrap_or_else(|e| unreachable!("{e:#}"));
        assert_eq!(c.bridges[0].protocols, Some(1 << 4));
        for (text, want) in [
            (
                "controller = [\"ptcp:6653\", \"tcp:1.2.3\"]",
                "bridge b0: controller: target 2: tcp ip:",
            ),
            (
                "datapath-id = \"0xfffffffffffffffff\"",
                "bridge b0: datapath-id:",
            ),
            ("datapath-id = \"12\"", "bridge b0: datapath-id:"),
            ("fail-mode = \"open\"", "bridge b0: fail-mode:"),
            ("inactivity-probe = 10", "bridge b0: inactivity_probe:"),
            ("bundle-idle-timeout = 0", "bridge b0: bundle_idle_timeout:"),
            (
                "protocols = \"OpenFlow10,OpenFlow14\"",
                "bridge b0: protocols: \"OpenFlow14\"",
            ),
        ] {
            let e = Config::parse(&format!("[[bridge]]\nname = \"b0\"\n{text}\n"), dir)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(e.starts_with(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_config_with_unknown_or_bad_fields_is_refused_naming_them() {
        let dir = Path::new(".");
        let e = Config::parse("batch-size = 300\n", dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch-size"), "{e}");
        let e = Config::parse("batchsize = 3\n", dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("batchsize"), "{e}");
        let e = Config::parse("pmd-cores = [999]\n", dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pmd-cores"), "{e}");
        let e = Config::parse(
            "[[bridge]]\nname = \"b\"\n[[bridge.port]]\ntype = \"afxdp\"\n",
            dir,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("name"), "{e}");
        let e = Config::parse(
            "[[bridge]]\nname = \"b\"\nrules = \"/nonexistent/flows\"\n",
            dir,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rules"), "{e}");
        let e = Config::parse(
            "[[bridge]]\nname = \"b\"\nfrag-mode = \"reassemble\"\n",
            dir,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("frag-mode") && e.contains("nx-match"), "{e}");
        let c = Config::parse("[[bridge]]\nname = \"b\"\nfrag-mode = \"drop\"\n", dir).unwrap();
        assert_eq!(c.bridges[0].frag_mode, openflow::FragMode::Drop);
    }

    #[test]
    fn a_bridge_netflow_table_is_read_and_checked() {
        let dir = Path::new(".");
        let c = Config::parse(
            "[[bridge]]\nname = \"b\"\n[bridge.netflow]\ntargets = [\"127.0.0.1:2055\", \"[::1]:9995\"]\n\
             active_timeout = 60\nengine_id = 7\nadd_id_to_interface = true\n",
            dir,
        )
        .unwrap();
        let nf = c.bridges[0].netflow.as_ref().unwrap();
        assert_eq!(nf.targets.len(), 2);
        assert_eq!(
            (nf.engine_type, nf.engine_id, nf.active_timeout_ms()),
            (0, 7, 60_000)
        );
        assert!(nf.add_id_to_interface);
        for (bad, field) in [
            ("targets = []", "targets"),
            ("targets = [\"localhost:2055\"]", "targets"),
            (
                "targets = [\"1.2.3.4:5\"]\nactive_timeout = -5",
                "active_timeout",
            ),
            ("targets = [\"1.2.3.4:5\"]\nengine_id = 300", "engine_id"),
            ("targets = [\"1.2.3.4:5\"]\nsampling = 1", "sampling"),
        ] {
            let e = Config::parse(
                &format!("[[bridge]]\nname = \"b\"\n[bridge.netflow]\n{bad}\n"),
                dir,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn tunnel_ports_tlv_maps_and_neighbours_are_read_and_checked() {
        let dir = Path::new(".");
        let c = Config::parse(
            "neighbours = [\"phy 172.31.1.2 02:00:00:00:00:02\"]\n\
             [[bridge]]\nname = \"phy\"\n\
             [[bridge]]\nname = \"int\"\nlocal = false\n\
             tlv-map = \"{class=0xffff,type=0,len=4}->tun_metadata0\"\n\
             [[bridge.port]]\nname = \"gnv0\"\ntype = \"geneve\"\nremote_ip = \"172.31.1.2\"\n\
             key = 5000\n",
            dir,
        )
        .unwrap();
        assert_eq!(c.neighbours.len(), 1);
        assert_eq!(c.bridges[1].tlv_map.as_ref().unwrap().entries().len(), 1);
        assert_eq!(c.bridges[1].ports[0].kind.name(), "geneve");
        for (text, field) in [
            (
                "neighbours = [\"phy 172.31.1.2 zz\"]\n[[bridge]]\nname = \"phy\"\n",
                "neighbours[0]",
            ),
            (
                "neighbours = [\"nope 172.31.1.2 02:00:00:00:00:02\"]\n",
                "bridge",
            ),
            (
                "[[bridge]]\nname = \"b\"\ntlv-map = \"{class=1,type=0,len=5}->tun_metadata0\"\n",
                "len",
            ),
            (
                "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"vx\"\ntype = \"vxlan\"\n",
                "remote-ip",
            ),
        ] {
            let e = Config::parse(text, dir).unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }

    #[test]
    fn a_port_mtu_request_is_read_and_checked() {
        let dir = Path::new(".");
        let port = |mtu: &str| {
            format!(
                "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"g\"\ntype = \"generator\"\n\
                 profile = \"size=64\"\nmtu_request = {mtu}\n"
            )
        };
        let c = Config::parse(&port("9000"), dir).unwrap();
        assert_eq!(c.bridges[0].ports[0].mtu_request, Some(9000));
        for bad in ["67", "9703", "\"big\""] {
            let e = Config::parse(&port(bad), dir).unwrap_err().to_string();
            assert!(e.contains("mtu_request"), "{bad}: {e}");
        }
    }

    #[test]
    #[cfg(not(feature = "dpdk"))]
    fn dpdk_eal_args_need_the_dpdk_feature() {
        let e = Config::parse("dpdk-eal-args = [\"--no-huge\"]\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dpdk-eal-args") && e.contains("--features dpdk"),
            "{e}"
        );
    }

    #[test]
    #[cfg(feature = "dpdk")]
    fn dpdk_eal_args_are_read() {
        let c = Config::parse(
            "dpdk-eal-args = [\"--no-huge\", \"-m\", \"512\"]\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.dpdk_eal_args.unwrap(), ["--no-huge", "-m", "512"]);
    }

    #[test]
    fn the_vlan_limit_reads_as_ovs_reads_it() {
        let c = Config::parse("vlan-limit = 0\n", Path::new(".")).unwrap();
        assert_eq!(c.settings.classify.vlans, pipeline::VlanLimit::MAX);
        let e = Config::parse("vlan-limit = \"two\"\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("vlan-limit"), "{e}");
    }

    #[test]
    fn a_config_sets_what_it_names_and_keeps_defaults_otherwise() {
        let c = Config::parse(
            "batch-size = 64\nbusy-poll = true\n[[bridge]]\nname = \"b0\"\nlocal = false\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.settings.pmd.batch, 64);
        assert!(c.settings.pmd.busy_poll);
        assert_eq!(c.settings.classify.vlans, pipeline::VlanLimit::DEFAULT);
        assert_eq!(c.bridges.len(), 1);
        assert!(!c.bridges[0].local);
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
    }
}
