//! Replay scenarios: a bridge, its ports backed by pcap files, and a rules file, in TOML.
//!
//! Every error names the file, the field and the reason; a scenario is either loaded whole or
//! refused (nothing of it is applied).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
}

/// A loaded, validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub dir: PathBuf,
    pub description: String,
    pub bridge: String,
    /// Path of the rules file, if any. Without one the bridge has `priority=0,actions=normal`.
    pub rules: Option<PathBuf>,
    pub ports: Vec<ScenarioPort>,
    pub options: ScenarioOptions,
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
    port: Vec<RawPort>,
    #[serde(default)]
    options: ScenarioOptions,
}

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
        let mut names = HashSet::new();
        let mut numbers = HashSet::new();
        let mut ports = Vec::new();
        for (i, p) in raw.port.into_iter().enumerate() {
            let at = |f: &str| format!("port[{i}].{f}");
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
            // Open vSwitch's defaults: no vlan_mode means access with a tag and trunk without
            // one, so a port with no VLAN settings at all carries every VLAN (as in the daemon).
            let vlan = match p.vlan_mode.as_deref() {
                Some("trunk") | None if p.tag.is_none() => {
                    PortVlan::Trunk(p.trunks.unwrap_or_default())
                }
                None | Some("access") if p.trunks.is_none() => PortVlan::Access(p.tag.unwrap_or(0)),
                Some("access") => {
                    return Err(field(at("trunks"), "an access port has no trunks".into()))
                }
                Some("trunk") => return Err(field(at("tag"), "a trunk port has no tag".into())),
                Some(m @ ("native-tagged" | "native-untagged")) => {
                    let Some(tag) = p.tag else {
                        return Err(field(
                            at("tag"),
                            format!("a {m} port needs its native VLAN"),
                        ));
                    };
                    let trunks = p.trunks.unwrap_or_default();
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
                PortVlan::NativeTagged { tag, trunks }
                | PortVlan::NativeUntagged { tag, trunks } => std::iter::once(*tag)
                    .chain(trunks.iter().copied())
                    .collect(),
            };
            if let Some(bad) = vids.iter().find(|v| **v > 4095) {
                return Err(field(
                    at("tag/trunks"),
                    format!("VLAN {bad} is not in 0..4095"),
                ));
            }
            let input = match p.input {
                Some(f) if !f.is_empty() => {
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
            ports.push(ScenarioPort {
                name: p.name,
                ofport: p.ofport,
                input,
                vlan,
            });
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
        let rules = match raw.rules {
            Some(r) if !r.is_empty() => {
                let path = dir.join(&r);
                if !path.is_file() {
                    return Err(field(
                        "rules".into(),
                        format!("{} does not exist", path.display()),
                    ));
                }
                Some(path)
            }
            _ => None,
        };
        Ok(Scenario {
            dir: dir.to_path_buf(),
            description: raw.description,
            bridge: raw.bridge,
            rules,
            ports,
            options: raw.options,
        })
    }
}

/// The 1-based line where a field path (`rules`, `port[2].ofport`, `options.batch`,
/// `port[0].tag/trunks`) is set in scenario text; for a path naming a whole `[[port]]`, its
/// header line.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let (section, keys): (Option<(&str, usize)>, &str) =
        if let Some(rest) = path.strip_prefix("port[") {
            let (index, key) = rest.split_once("].")?;
            (Some(("[[port]]", index.parse().ok()?)), key)
        } else if let Some(key) = path.strip_prefix("options.") {
            (Some(("[options]", 0)), key)
        } else {
            (None, path)
        };
    let mut current: Option<(&str, usize)> = None;
    let mut seen_ports = 0;
    let mut header_line = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = if t.starts_with("[[port]]") {
                seen_ports += 1;
                Some(("[[port]]", seen_ports - 1))
            } else if t.starts_with("[options]") {
                Some(("[options]", 0))
            } else {
                Some(("other", 0))
            };
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
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = parse("[[port]]\nname='p1'\nofport=1\nbogus=3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4"), "{e}");
    }
}
