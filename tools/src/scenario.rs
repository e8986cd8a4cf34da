//! Replay scenarios: a bridge, its ports backed by pcap files, and a rules file, in TOML;
//! optionally an underlay bridge (`[underlay]`) that holds a VTEP address, with the bridge's
//! tunnel ports (`type = "vxlan"|"geneve"`) sending and receiving through it.
//!
//! Every error names the file, the field and the reason; a scenario is either loaded whole or
//! refused (nothing of it is applied).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ports::spec::{PortKind, PortSpec};
pub use ports::tunnel::options::TunnelOptions;
use serde::Deserialize;
use tunnels::underlay::{BridgeAddr, NeighSpec, RouteSpec, RouteTable};

/// Errors loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}:{}{field}: {reason}", line.map(|l| format!(" line {l}: ")).unwrap_or_else(|| " ".into()))]
    Field {
        path: PathBuf,
        /// 1-based line of the field in the file, where it is there.
        line: Option<usize>,
        field: String,
        reason: String,
    },
}

/// How NORMAL treats VLAN tags on a port: the bridge's own type.
pub use openflow::normal::VlanMode as PortVlan;

/// One port of the scenario.
#[derive(Clone, Debug)]
pub struct ScenarioPort {
    pub name: String,
    pub ofport: u32,
    /// Frames received on this port.
    pub input: Option<PathBuf>,
    pub vlan: PortVlan,
    /// A tunnel port's options (`type = "vxlan"|"geneve"`); such a port has no pcap.
    pub tunnel: Option<TunnelOptions>,
    /// An underlay wire port's MTU (`mtu`): a tunnel packet leaving by it must fit.
    pub mtu: Option<u16>,
    /// The port's `mtu_request` (any port but a tunnel's), as `add-port` takes it.
    pub mtu_request: Option<u16>,
    /// How many times the input is played (`repeat`, default 1): the frames are shared, not
    /// copied, and each repetition starts one gap (the file's first two frames' spacing)
    /// after the one before ended.
    pub repeat: u32,
    /// `link = "down"`: the port's link is down (a group bucket watching it is not live).
    pub link_down: bool,
}

impl ScenarioPort {
    /// The MTU the switch checks the port's frames against: `mtu_request`, else `mtu`, else
    /// 1500.
    pub fn port_mtu(&self) -> u16 {
        self.mtu_request
            .or(self.mtu)
            .unwrap_or(ports::spec::DEFAULT_MTU)
    }
}

/// The underlay bridge of a scenario with tunnel ports: its LOCAL port holds the VTEP
/// address, its wire ports carry the tunnel packets.
#[derive(Clone, Debug)]
pub struct ScenarioUnderlay {
    pub bridge: String,
    /// The LOCAL port's address (the VTEP's), with its network: a connected route.
    pub address: BridgeAddr,
    /// The LOCAL port's MAC: the outer source of tunnel packets, the destination of those
    /// the switch decapsulates.
    pub mac: [u8; 6],
    /// Path of its rules file; without one, `priority=0,actions=normal`.
    pub rules: Option<PathBuf>,
    /// Its wire ports (never tunnel ports).
    pub ports: Vec<ScenarioPort>,
    /// Static neighbours (`neigh-add`).
    pub neighbours: Vec<NeighSpec>,
    /// Routes (`route-add`), besides the connected one.
    pub routes: Vec<RouteSpec>,
}

/// Tunables of the replayed switch.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScenarioOptions {
    /// OVS's `emc-insert-inv-prob` (default 100).
    pub emc_insert_inv_prob: Option<u32>,
    /// Most packets per rx batch (default 32, at most 256).
    pub batch: Option<usize>,
    /// How the bridge treats IP fragments: `normal` (the default), `nx-match` or `drop`, as
    /// `ovs-ofctl set-frags` sets them.
    pub frag_mode: Option<String>,
    /// How many VLAN headers the parser reads (OVS's `other_config:vlan-limit`; default 1,
    /// 0 for as many as it can).
    pub vlan_limit: Option<u64>,
    /// The connection table's limit (OVS's `dpctl/ct-set-maxconns`; default 3,000,000).
    pub ct_max_conns: Option<u32>,
}

/// A loaded, validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub dir: PathBuf,
    pub description: String,
    pub bridge: String,
    /// Path of the rules file, if any. Without one the bridge has `priority=0,actions=normal`.
    pub rules: Option<PathBuf>,
    /// Path of the groups file (`add-groups` syntax), if any; installed before the rules.
    pub groups: Option<PathBuf>,
    pub ports: Vec<ScenarioPort>,
    pub options: ScenarioOptions,
    pub underlay: Option<ScenarioUnderlay>,
    /// The bridge's Geneve TLV map (`add-tlv-map` syntax), checked as `add-tlv-map` checks it.
    pub tlv_map: Option<String>,
    /// NetFlow export (`[netflow]`, the settings of `set-netflow`): the datagrams are kept
    /// and written as `netflow.pcap` and `netflow.txt`.
    pub netflow: Option<netflow::NetflowOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    description: String,
    #[serde(default = "default_bridge")]
    bridge: String,
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    groups: Option<String>,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    options: ScenarioOptions,
    #[serde(default)]
    underlay: Option<RawUnderlay>,
    #[serde(default)]
    tlv_map: Option<String>,
    #[serde(default)]
    netflow: Option<netflow::NetflowOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnderlay {
    bridge: String,
    address: String,
    mac: String,
    #[serde(default)]
    rules: Option<String>,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    neighbour: Vec<RawNeighbour>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbour {
    ip: String,
    mac: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    src: Option<String>,
}

/// The tunnel options a `[[port]]` takes, with Open vSwitch's names.
const TUNNEL_KEYS: [&str; 10] = [
    "remote_ip",
    "local_ip",
    "key",
    "in_key",
    "out_key",
    "dst_port",
    "ttl",
    "tos",
    "df_default",
    "csum",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    ofport: u32,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    vlan_mode: Option<String>,
    #[serde(default)]
    tag: Option<u16>,
    #[serde(default)]
    trunks: Option<Vec<u16>>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    remote_ip: Option<toml::Value>,
    #[serde(default)]
    local_ip: Option<toml::Value>,
    #[serde(default)]
    key: Option<toml::Value>,
    #[serde(default)]
    in_key: Option<toml::Value>,
    #[serde(default)]
    out_key: Option<toml::Value>,
    #[serde(default)]
    dst_port: Option<toml::Value>,
    #[serde(default)]
    ttl: Option<toml::Value>,
    #[serde(default)]
    tos: Option<toml::Value>,
    #[serde(default)]
    df_default: Option<toml::Value>,
    #[serde(default)]
    csum: Option<toml::Value>,
    #[serde(default)]
    mtu: Option<i64>,
    #[serde(default)]
    mtu_request: Option<i64>,
    #[serde(default)]
    repeat: Option<i64>,
    link: Option<String>,
}

impl RawPort {
    /// The tunnel options given, as `(name, value)` in [`TUNNEL_KEYS`] order.
    fn tunnel_options(&self) -> Vec<(&'static str, &toml::Value)> {
        let given = [
            &self.remote_ip,
            &self.local_ip,
            &self.key,
            &self.in_key,
            &self.out_key,
            &self.dst_port,
            &self.ttl,
            &self.tos,
            &self.df_default,
            &self.csum,
        ];
        TUNNEL_KEYS
            .iter()
            .zip(given)
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
            .collect()
    }
}

fn default_bridge() -> String {
    "br0".to_string()
}

impl Scenario {
    /// Loads `dir/scenario.toml` (or `dir` itself when it names a file).
    pub fn load(dir: &Path) -> Result<Scenario, ScenarioError> {
        let (dir, file) = if dir.is_file() {
            (
                dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
                dir.to_path_buf(),
            )
        } else {
            (dir.to_path_buf(), dir.join("scenario.toml"))
        };
        let text = std::fs::read_to_string(&file).map_err(|source| ScenarioError::Io {
            path: file.clone(),
            source,
        })?;
        Self::parse(&text, &dir, &file)
    }

    /// Parses scenario text; `dir` resolves relative paths, `file` names errors.
    pub fn parse(text: &str, dir: &Path, file: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            path: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let field = |field: String, reason: String| ScenarioError::Field {
            path: file.to_path_buf(),
            line: line_of(text, &field),
            field,
            reason,
        };
        if raw.port.is_empty() {
            return Err(field(
                "port".into(),
                "a scenario needs at least one [[port]]".into(),
            ));
        }
        // Port names name the output pcaps: unique across both bridges.
        let mut names = HashSet::new();
        let ports = parse_ports(raw.port, "port", dir, &mut names, &field)?;
        let underlay = match raw.underlay {
            Some(u) => Some(parse_underlay(u, &raw.bridge, dir, &mut names, &field)?),
            None => None,
        };
        if underlay.is_none() {
            if let Some(i) = ports.iter().position(|p| p.tunnel.is_some()) {
                return Err(field(
                    format!("port[{i}].type"),
                    "a tunnel port needs an [underlay] bridge to send and receive through".into(),
                ));
            }
        }
        if let Some(m) = &raw.options.frag_mode {
            if openflow::FragMode::from_name(m).is_none() {
                return Err(field(
                    "options.frag_mode".into(),
                    format!("{m:?} is not one of normal, nx-match, drop"),
                ));
            }
        }
        if let Some(b) = raw.options.batch {
            if b == 0 || b > pipeline::MAX_BATCH {
                return Err(field(
                    "options.batch".into(),
                    format!("{b} is not in 1..{}", pipeline::MAX_BATCH),
                ));
            }
        }
        if let Some(m) = &raw.tlv_map {
            openflow::tlv::TlvMap::default().add(m).map_err(|e| {
                let text = e.to_string();
                let reason = text.strip_prefix("tlv-map: ").unwrap_or(&text);
                field("tlv_map".into(), reason.to_string())
            })?;
        }
        if let Some(nf) = &raw.netflow {
            nf.validate().map_err(|e| {
                let text = e.to_string();
                let (name, reason) = text.split_once(": ").unwrap_or(("", &text));
                field(format!("netflow.{name}"), reason.to_string())
            })?;
        }
        let rules = rules_path(raw.rules, dir, "rules", &field)?;
        let groups = rules_path(raw.groups, dir, "groups", &field)?;
        Ok(Scenario {
            dir: dir.to_path_buf(),
            description: raw.description,
            bridge: raw.bridge,
            rules,
            groups,
            ports,
            options: raw.options,
            underlay,
            tlv_map: raw.tlv_map,
            netflow: raw.netflow,
        })
    }
}

type FieldError<'a> = &'a dyn Fn(String, String) -> ScenarioError;

/// A rules file named in the scenario (`table_key` names it in errors); `""` or absent: none.
fn rules_path(
    rules: Option<String>,
    dir: &Path,
    table_key: &str,
    field: FieldError,
) -> Result<Option<PathBuf>, ScenarioError> {
    match rules {
        Some(r) if !r.is_empty() => {
            let path = dir.join(&r);
            if !path.is_file() {
                return Err(field(
                    table_key.into(),
                    format!("{} does not exist", path.display()),
                ));
            }
            Ok(Some(path))
        }
        _ => Ok(None),
    }
}

/// Most repetitions of a port's input (`repeat`).
pub const MAX_REPEAT: u32 = 10_000_000;

/// The `[[port]]`s of one bridge (`table` is `port` or `underlay.port`); `names` holds the
/// names taken already, by the other bridge's ports too.
fn parse_ports(
    raw: Vec<RawPort>,
    table: &str,
    dir: &Path,
    names: &mut HashSet<String>,
    field: FieldError,
) -> Result<Vec<ScenarioPort>, ScenarioError> {
    let mut numbers = HashSet::new();
    let mut ports = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("{table}[{i}].{f}");
        if p.name.is_empty()
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(field(
                at("name"),
                format!("{:?} must be letters, digits, '-', '_' or '.'", p.name),
            ));
        }
        if !names.insert(p.name.clone()) {
            return Err(field(
                at("name"),
                format!("{:?} is used by another port", p.name),
            ));
        }
        if p.ofport == 0 || p.ofport >= 0xff00 {
            return Err(field(
                at("ofport"),
                format!("{} is not in 1..65279", p.ofport),
            ));
        }
        if !numbers.insert(p.ofport) {
            return Err(field(
                at("ofport"),
                format!("{} is used by another port", p.ofport),
            ));
        }
        let tunnel = tunnel_options(&p, table, &at, field)?;
        let vlan = port_vlan(&p, &at, field)?;
        let mtu = port_mtu(p.mtu, table, &at, field)?;
        let mtu_request = match p.mtu_request {
            None => None,
            Some(_) if tunnel.is_some() => {
                return Err(field(
                    at("mtu_request"),
                    "a tunnel port sends through its underlay port: set it there".into(),
                ))
            }
            Some(n) => {
                let (lo, hi) = (ports::spec::MIN_MTU, ports::spec::MAX_MTU);
                match u16::try_from(n) {
                    Ok(m) if (lo..=hi).contains(&m) => Some(m),
                    _ => {
                        return Err(field(
                            at("mtu_request"),
                            format!("{n} is not in {lo}..={hi}"),
                        ))
                    }
                }
            }
        };
        let input = match p.input {
            Some(f) if !f.is_empty() => {
                if tunnel.is_some() {
                    return Err(field(
                        at("input"),
                        "a tunnel port receives what its underlay decapsulates, no pcap".into(),
                    ));
                }
                let path = dir.join(&f);
                if !path.is_file() {
                    return Err(field(
                        at("input"),
                        format!("{} does not exist", path.display()),
                    ));
                }
                Some(path)
            }
            _ => None,
        };
        let repeat = match p.repeat {
            None => 1,
            Some(_) if input.is_none() => {
                return Err(field(
                    at("repeat"),
                    "the port has no input to repeat".into(),
                ))
            }
            Some(n) => match u32::try_from(n) {
                Ok(r) if (1..=MAX_REPEAT).contains(&r) => r,
                _ => {
                    return Err(field(
                        at("repeat"),
                        format!("{n} is not in 1..={MAX_REPEAT}"),
                    ))
                }
            },
        };
        let link_down = match p.link.as_deref() {
            None | Some("up") => false,
            Some("down") => true,
            Some(other) => {
                return Err(field(
                    at("link"),
                    format!("{other:?} is not one of up, down"),
                ))
            }
        };
        ports.push(ScenarioPort {
            name: p.name,
            ofport: p.ofport,
            input,
            vlan,
            tunnel,
            mtu,
            mtu_request,
            repeat,
            link_down,
        });
    }
    Ok(ports)
}

/// A port's `mtu`: only an underlay wire port takes one (what the datapath checks is the
/// outer packet a tunnel sends out of it), in 68..=65535 as an IPv4 link's (RFC 791).
fn port_mtu(
    mtu: Option<i64>,
    table: &str,
    at: &dyn Fn(&str) -> String,
    field: FieldError,
) -> Result<Option<u16>, ScenarioError> {
    let Some(mtu) = mtu else {
        return Ok(None);
    };
    if table != "underlay.port" {
        return Err(field(
            at("mtu"),
            "only an [[underlay.port]] takes one: tunnel packets leaving it must fit".into(),
        ));
    }
    match u16::try_from(mtu) {
        Ok(m) if m >= 68 => Ok(Some(m)),
        _ => Err(field(at("mtu"), format!("{mtu} is not in 68..65535"))),
    }
}

/// A port's `type` and tunnel options, checked as `add-port` checks them.
fn tunnel_options(
    p: &RawPort,
    table: &str,
    at: &dyn Fn(&str) -> String,
    field: FieldError,
) -> Result<Option<TunnelOptions>, ScenarioError> {
    let given = p.tunnel_options();
    let Some(kind) = &p.kind else {
        return match given.first() {
            Some((k, _)) => Err(field(
                at(k),
                "only a tunnel port (type = \"vxlan\" or \"geneve\") takes it".into(),
            )),
            None => Ok(None),
        };
    };
    if kind != "vxlan" && kind != "geneve" {
        return Err(field(
            at("type"),
            format!("{kind:?} is not one of \"vxlan\", \"geneve\" (absent: a pcap port)"),
        ));
    }
    if table != "port" {
        return Err(field(
            at("type"),
            "the underlay's ports are wire ports; tunnel ports go in the top [[port]]s".into(),
        ));
    }
    if p.vlan_mode.is_some() || p.tag.is_some() || p.trunks.is_some() {
        return Err(field(
            at("vlan_mode/tag/trunks"),
            "a tunnel port carries every VLAN: no VLAN settings".into(),
        ));
    }
    let mut options = vec![("type".to_string(), kind.clone())];
    for (k, v) in &given {
        let v = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(field(
                    at(k),
                    format!("{other} is not a string, number or boolean"),
                ))
            }
        };
        options.push((k.to_string(), v));
    }
    match PortSpec::parse(&p.name, &options) {
        Ok(PortSpec {
            kind: PortKind::Tunnel(o),
            ..
        }) => Ok(Some(o)),
        Ok(_) => Err(field(at("type"), format!("{kind:?} is not a tunnel type"))),
        Err(e) => {
            // The port layer names the option as `add-port` spells it (`remote-ip`).
            let text = e.to_string();
            let (key, reason) = text.split_once(": ").unwrap_or(("type", text.as_str()));
            Err(field(at(&key.replace('-', "_")), reason.to_string()))
        }
    }
}

/// How NORMAL treats VLAN tags on the port.
fn port_vlan(
    p: &RawPort,
    at: &dyn Fn(&str) -> String,
    field: FieldError,
) -> Result<PortVlan, ScenarioError> {
    // Open vSwitch's defaults: no vlan_mode means access with a tag and trunk without
    // one, so a port with no VLAN settings at all carries every VLAN (as in the daemon).
    let vlan = match p.vlan_mode.as_deref() {
        Some("trunk") | None if p.tag.is_none() => {
            PortVlan::Trunk(p.trunks.clone().unwrap_or_default())
        }
        None | Some("access") if p.trunks.is_none() => PortVlan::Access(p.tag.unwrap_or(0)),
        Some("access") => return Err(field(at("trunks"), "an access port has no trunks".into())),
        Some("trunk") => return Err(field(at("tag"), "a trunk port has no tag".into())),
        Some(m @ ("native-tagged" | "native-untagged")) => {
            let Some(tag) = p.tag else {
                return Err(field(
                    at("tag"),
                    format!("a {m} port needs its native VLAN"),
                ));
            };
            let trunks = p.trunks.clone().unwrap_or_default();
            if m == "native-tagged" {
                PortVlan::NativeTagged { tag, trunks }
            } else {
                PortVlan::NativeUntagged { tag, trunks }
            }
        }
        None => {
            return Err(field(
                at("vlan_mode"),
                "give it when both tag and trunks are set".into(),
            ))
        }
        Some(other) => {
            return Err(field(
                at("vlan_mode"),
                format!(
                    "{other:?} is not one of \"access\", \"trunk\", \"native-tagged\", \
                     \"native-untagged\""
                ),
            ))
        }
    };
    let vids = match &vlan {
        PortVlan::Access(t) => vec![*t],
        PortVlan::Trunk(t) => t.clone(),
        PortVlan::NativeTagged { tag, trunks } | PortVlan::NativeUntagged { tag, trunks } => {
            std::iter::once(*tag)
                .chain(trunks.iter().copied())
                .collect()
        }
    };
    if let Some(bad) = vids.iter().find(|v| **v > 4095) {
        return Err(field(
            at("tag/trunks"),
            format!("VLAN {bad} is not in 0..4095"),
        ));
    }
    Ok(vlan)
}

/// The `[underlay]` table: its bridge, address, MAC, rules, ports, neighbours and routes.
fn parse_underlay(
    u: RawUnderlay,
    bridge: &str,
    dir: &Path,
    names: &mut HashSet<String>,
    field: FieldError,
) -> Result<ScenarioUnderlay, ScenarioError> {
    let at = |f: &str| format!("underlay.{f}");
    if u.bridge.is_empty()
        || u.bridge == bridge
        || !u
            .bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(field(
            at("bridge"),
            format!(
                "{:?} must be letters, digits, '-', '_' or '.', and not {bridge:?}",
                u.bridge
            ),
        ));
    }
    // LOCAL's output is written to <bridge>.pcap.
    names.insert(u.bridge.clone());
    let address: BridgeAddr = u
        .address
        .parse()
        .map_err(|e| field(at("address"), format!("{:?}: {e}", u.address)))?;
    if !address.ip().is_ipv4() {
        return Err(field(
            at("address"),
            "the VTEP address must be IPv4 (no IPv6 underlay yet)".into(),
        ));
    }
    let mac = unicast_mac(&u.mac).map_err(|r| field(at("mac"), r))?;
    let rules = rules_path(u.rules, dir, "underlay.rules", field)?;
    if u.port.is_empty() {
        return Err(field(
            "underlay.port".into(),
            "an underlay needs at least one [[underlay.port]], its wire".into(),
        ));
    }
    let ports = parse_ports(u.port, "underlay.port", dir, names, field)?;
    if let Some(clash) = ports.iter().find(|p| p.name == u.bridge) {
        return Err(field(
            at("bridge"),
            format!("{:?} is the name of a port too", clash.name),
        ));
    }
    let mut neighbours = Vec::new();
    for (i, n) in u.neighbour.iter().enumerate() {
        let spec = NeighSpec::parse(&[u.bridge.as_str(), &n.ip, &n.mac]).map_err(|e| {
            // The neighbour layer names the word it refused (`mac: ...`, `ip: ...`).
            let text = e.to_string();
            let (key, reason) = match text.split_once(": ") {
                Some(("mac", r)) => ("mac", r.to_string()),
                Some(("ip", r)) => ("ip", r.to_string()),
                _ => ("ip", text.clone()),
            };
            field(format!("underlay.neighbour[{i}].{key}"), reason)
        })?;
        if !spec.ip.is_ipv4() {
            return Err(field(
                format!("underlay.neighbour[{i}].ip"),
                "the underlay is IPv4".into(),
            ));
        }
        neighbours.push(spec);
    }
    // Routes are checked against the address as `route-add` checks them.
    let table = RouteTable::new();
    table.set_bridge_addresses(&u.bridge, &[address]);
    let mut routes = Vec::new();
    for (i, r) in u.route.iter().enumerate() {
        let mut words = vec![r.prefix.clone(), u.bridge.clone()];
        words.extend(r.gateway.clone());
        words.extend(r.src.as_ref().map(|s| format!("src={s}")));
        let spec = RouteSpec::parse(&words)
            .map_err(|e| field(format!("underlay.route[{i}].prefix"), e.to_string()))?;
        table
            .add(spec.clone())
            .map_err(|e| field(format!("underlay.route[{i}].prefix"), e.to_string()))?;
        routes.push(spec);
    }
    Ok(ScenarioUnderlay {
        bridge: u.bridge,
        address,
        mac,
        rules,
        ports,
        neighbours,
        routes,
    })
}

/// A unicast Ethernet address, `02:00:00:00:00:01`.
fn unicast_mac(text: &str) -> Result<[u8; 6], String> {
    let mac = pipeline::field::ofctl::mac(text)
        .map_err(|_| format!("{text:?} is not an Ethernet address"))?;
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(format!("{text} is not a unicast Ethernet address"));
    }
    Ok(mac)
}

/// The 1-based line where a field path (`rules`, `port[2].ofport`, `options.batch`,
/// `port[0].tag/trunks`, `underlay.mac`, `underlay.port[1].input`) is set in scenario text;
/// for a path naming a whole table (`port[1]`, `underlay.port`), its header line.
fn line_of(text: &str, path: &str) -> Option<usize> {
    // The table (`[[port]]` number 2, `[underlay]`, none for the top level) and the key.
    let (table, keys) = match path.rsplit_once('.') {
        Some((t, k)) if !k.ends_with(']') => (Some(t), k),
        _ => (Some(path), ""),
    };
    let section: Option<(String, usize)> = match table {
        None => None,
        Some(t) => match t.strip_suffix(']').and_then(|t| t.split_once('[')) {
            Some((name, index)) => Some((format!("[[{name}]]"), index.parse().ok()?)),
            None if path.contains('.') => Some((format!("[{t}]"), 0)),
            // A top-level key (`rules`), or an array of tables named whole (`port`).
            None => return line_of_top(text, path),
        },
    };
    let mut current: Option<(String, usize)> = None;
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut header_line = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let header: String = t
                .split(']')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let header = if header.starts_with("[[") {
                format!("{header}]]")
            } else {
                format!("{header}]")
            };
            let count = match seen.iter_mut().find(|(h, _)| *h == header) {
                Some(e) => {
                    e.1 += 1;
                    e.1
                }
                None => {
                    seen.push((header.clone(), 0));
                    0
                }
            };
            current = Some((header, count));
            if current == section {
                header_line = Some(n + 1);
            }
            continue;
        }
        if current != section {
            continue;
        }
        let name = t.split('=').next().unwrap_or("").trim();
        if !name.is_empty() && keys.split('/').any(|k| k == name) && t.contains('=') {
            return Some(n + 1);
        }
    }
    header_line
}

/// The line of a top-level key, or the first header of an array of tables (`port`,
/// `underlay.port`).
fn line_of_top(text: &str, key: &str) -> Option<usize> {
    let header = format!("[[{key}]]");
    let mut in_table = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with(&header) {
            return Some(n + 1);
        }
        if t.starts_with('[') {
            in_table = true;
            continue;
        }
        let name = t.split('=').next().unwrap_or("").trim();
        if !in_table && name == key && t.contains('=') {
            return Some(n + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("."), Path::new("scenario.toml"))
    }

    #[test]
    fn minimal_scenario_loads() {
        let s = parse("[[port]]\nname='p1'\nofport=1\n[[port]]\nname='p2'\nofport=2\nvlan_mode='trunk'\ntrunks=[10]\n").unwrap();
        assert_eq!(s.bridge, "br0");
        // No VLAN settings: a trunk of every VLAN, as in Open vSwitch and the daemon.
        assert_eq!(s.ports[0].vlan, PortVlan::Trunk(vec![]));
        assert_eq!(s.ports[1].vlan, PortVlan::Trunk(vec![10]));
        let s = parse("[[port]]\nname='p1'\nofport=1\nvlan_mode='native-untagged'\ntag=7\n[[port]]\nname='p2'\nofport=2\nvlan_mode='native-tagged'\ntag=8\ntrunks=[8,9]\n").unwrap();
        assert_eq!(
            s.ports[0].vlan,
            PortVlan::NativeUntagged {
                tag: 7,
                trunks: vec![]
            }
        );
        assert_eq!(
            s.ports[1].vlan,
            PortVlan::NativeTagged {
                tag: 8,
                trunks: vec![8, 9]
            }
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("[[port]]\nname='p1'\nofport=0\n", "port[0].ofport"),
            (
                "[[port]]\nname='p1'\nofport=1\n[[port]]\nname='p1'\nofport=2\n",
                "port[1].name",
            ),
            (
                "[[port]]\nname='p1'\nofport=1\nvlan_mode='hybrid'\n",
                "port[0].vlan_mode",
            ),
            (
                "[[port]]\nname='p1'\nofport=1\ntag=5000\n",
                "port[0].tag/trunks",
            ),
            (
                "[[port]]\nname='p1'\nofport=1\nvlan_mode='native-tagged'\n",
                "port[0].tag",
            ),
            (
                "[[port]]\nname='p1'\nofport=1\ninput='nope.pcap'\n",
                "port[0].input",
            ),
            (
                "rules='missing.txt'\n[[port]]\nname='p1'\nofport=1\n",
                "rules",
            ),
            (
                "[options]\nbatch=0\n[[port]]\nname='p1'\nofport=1\n",
                "options.batch",
            ),
            (
                "[netflow]\ntargets=[]\n[[port]]\nname='p1'\nofport=1\n",
                "netflow.targets",
            ),
            (
                "[netflow]\ntargets=['127.0.0.1:5']\nactive_timeout=-3\n[[port]]\nname='p1'\nofport=1\n",
                "netflow.active_timeout",
            ),
            ("", "port"),
        ];
        for (text, field) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(&format!(" {field}: ")), "{text:?} gave {e}");
        }
    }

    #[test]
    fn field_errors_give_the_line() {
        let e = parse("[[port]]\nname='p1'\nofport=1\n[[port]]\nname='p2'\nofport=1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "scenario.toml: line 6: port[1].ofport: 1 is used by another port"
        );
        let e = parse("[[port]]\nname='p1'\nofport=1\n[options]\nbatch = 300\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenario.toml: line 5: options.batch:"),
            "{e}"
        );
        // The TLV map is checked as add-tlv-map checks it.
        let e = parse("rules = ''\ntlv_map = '{class=0xffff,type=0,len=20}->tun_metadata0'\n[[port]]\nname='p1'\nofport=1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenario.toml: line 2: tlv_map: len: "),
            "{e}"
        );
        let e = parse("tlv_map = '{class=0xffff,type=0,len=4}->tun_metadata0,{class=0xffff,type=0,len=4}->tun_metadata1'\n[[port]]\nname='p1'\nofport=1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "scenario.toml: line 1: tlv_map: option class=0xffff,type=0x0 is mapped already"
        );
        let s = parse("tlv_map = '{class=0xffff,type=0x80,len=8}->tun_metadata3'\n[[port]]\nname='p1'\nofport=1\n").unwrap();
        assert_eq!(
            s.tlv_map.as_deref(),
            Some("{class=0xffff,type=0x80,len=8}->tun_metadata3")
        );
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = parse("[[port]]\nname='p1'\nofport=1\nbogus=3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4"), "{e}");
    }

    const UNDERLAY: &str = "[[port]]\nname='p1'\nofport=1\n[[port]]\nname='vx0'\nofport=10\n\
        type='vxlan'\nremote_ip='172.31.1.2'\nkey=5000\ncsum=true\n[underlay]\nbridge='br-phy'\n\
        address='172.31.1.1/24'\nmac='02:00:00:00:01:01'\n[[underlay.port]]\nname='eth0'\n\
        ofport=1\n[[underlay.neighbour]]\nip='172.31.1.2'\nmac='02:00:00:00:01:02'\n\
        [[underlay.route]]\nprefix='10.9.0.0/16'\ngateway='172.31.1.254'\n";

    #[test]
    fn underlay_scenario_loads() {
        let s = parse(UNDERLAY).unwrap();
        let t = s.ports[1].tunnel.as_ref().unwrap();
        assert_eq!(t.out_key, ports::tunnel::options::FlowOr::Fixed(5000));
        assert!(t.csum && s.ports[0].tunnel.is_none());
        let u = s.underlay.unwrap();
        assert_eq!((u.bridge.as_str(), u.mac), ("br-phy", [2, 0, 0, 0, 1, 1]));
        assert_eq!(
            (u.ports.len(), u.neighbours.len(), u.routes.len()),
            (1, 1, 1)
        );
    }

    #[test]
    fn underlay_errors_name_the_field_and_line() {
        let cases = [
            ("key=5000", "key='x'", "line 9: port[1].key:"),
            ("csum=true", "csum=[1]", "line 10: port[1].csum:"),
            ("type='vxlan'", "type='gre'", "line 7: port[1].type:"),
            (
                "address='172.31.1.1/24'",
                "address='172.31.1.1/40'",
                "line 13: underlay.address:",
            ),
            (
                "mac='02:00:00:00:01:02'",
                "mac='zz'",
                "line 20: underlay.neighbour[0].mac: \"zz\"",
            ),
            (
                "gateway='172.31.1.254'",
                "gateway='172.31.1.1'",
                "line 22: underlay.route[0].prefix:",
            ),
            (
                "name='eth0'",
                "name='vx0'",
                "line 16: underlay.port[0].name:",
            ),
            (
                "bridge='br-phy'",
                "bridge='br0'",
                "line 12: underlay.bridge:",
            ),
        ];
        for (from, to, want) in cases {
            let text = UNDERLAY.replace(from, to);
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("scenario.toml: {want}")),
                "{to}: {e}"
            );
        }
        // Tunnel options on a pcap port, and a tunnel port in the underlay.
        let e = parse("[[port]]\nname='p1'\nofport=1\nkey=5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4: port[0].key: only a tunnel port"), "{e}");
        let text = UNDERLAY.replace(
            "ofport=1\n[[underlay.neighbour]]",
            "ofport=1\ntype='vxlan'\n[[underlay.neighbour]]",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("underlay.port[0].type:"), "{e}");
    }

    #[test]
    fn an_underlay_port_mtu_is_checked() {
        let with_mtu = |mtu: &str| {
            UNDERLAY.replace(
                "ofport=1\n[[underlay.neighbour]]",
                &format!("ofport=1\nmtu={mtu}\n[[underlay.neighbour]]"),
            )
        };
        let s = parse(&with_mtu("1500")).unwrap();
        assert_eq!(s.underlay.unwrap().ports[0].mtu, Some(1500));
        assert_eq!(
            parse(UNDERLAY).unwrap().underlay.unwrap().ports[0].mtu,
            None
        );
        let s = parse(&with_mtu("68")).unwrap();
        assert_eq!(s.underlay.unwrap().ports[0].mtu, Some(68));
        for bad in ["67", "65536", "-1", "0"] {
            let e = parse(&with_mtu(bad)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("scenario.toml: line 18: underlay.port[0].mtu: {bad} is not in 68..65535")
            );
        }
        // Only the underlay's wire ports take one.
        let e = parse("[[port]]\nname='p1'\nofport=1\nmtu=1500\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenario.toml: line 4: port[0].mtu: only an [[underlay.port]]"),
            "{e}"
        );
    }

    #[test]
    fn a_port_repeat_is_checked() {
        // Any file stands for the input here: only replay reads it.
        let port =
            |v: &str| format!("[[port]]\nname='p1'\nofport=1\ninput='Cargo.toml'\nrepeat={v}\n");
        assert_eq!(parse(&port("480000")).unwrap().ports[0].repeat, 480_000);
        let s = parse("[[port]]\nname='p1'\nofport=1\ninput='Cargo.toml'\n").unwrap();
        assert_eq!(s.ports[0].repeat, 1);
        for bad in ["0", "-3", "10000001"] {
            let e = parse(&port(bad)).unwrap_err().to_string();
            assert!(
                e.contains("port[0].repeat: ") && e.contains("not in 1..=10000000"),
                "{bad}: {e}"
            );
        }
        let e = parse("[[port]]\nname='p1'\nofport=1\nrepeat=2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("port[0].repeat: the port has no input"), "{e}");
    }

    #[test]
    fn a_port_mtu_request_is_checked() {
        let port = |v: &str| format!("[[port]]\nname='p1'\nofport=1\nmtu_request={v}\n");
        let s = parse(&port("9000")).unwrap();
        assert_eq!(
            (s.ports[0].mtu_request, s.ports[0].port_mtu()),
            (Some(9000), 9000)
        );
        let s = parse("[[port]]\nname='p1'\nofport=1\n").unwrap();
        assert_eq!(s.ports[0].port_mtu(), 1500);
        for bad in ["67", "9703", "-1"] {
            let e = parse(&port(bad)).unwrap_err().to_string();
            assert!(
                e.contains("port[0].mtu_request: ") && e.contains("not in 68..=9702"),
                "{bad}: {e}"
            );
        }
    }
}
