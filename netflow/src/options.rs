//! NetFlow settings of a bridge, as Open vSwitch's `NetFlow` table has them: from the TOML
//! file (`[bridge.netflow]`) or from `set-netflow` arguments (`targets=... active_timeout=...`).
//! A bad value is refused naming the field; nothing is half-applied.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Active timeout when none is set, in seconds (OVS `NF_ACTIVE_TIMEOUT_DEFAULT`).
pub const DEFAULT_ACTIVE_TIMEOUT_S: i64 = 600;

/// A refused setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("targets: at least one collector ip:port is needed")]
    NoTargets,
    #[error("targets: {0:?} is not ip:port (IPv6 as [addr]:port)")]
    BadTarget(String),
    #[error("targets: port 0 in {0:?}")]
    ZeroPort(String),
    #[error("{field}: {value:?} is not a number from 0 to 255")]
    BadEngine { field: &'static str, value: String },
    #[error(
        "active_timeout: {0:?} is not a number of seconds from -1 up (0 and -1: the default, 600)"
    )]
    BadActiveTimeout(String),
    #[error("add_id_to_interface: {0:?} is not true or false")]
    BadBool(String),
    #[error("{0}: unknown setting (targets, active_timeout, engine_type, engine_id, add_id_to_interface)")]
    Unknown(String),
    #[error("{0}: expected key=value")]
    NotKeyValue(String),
}

/// The NetFlow settings of one bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetflowOptions {
    /// Collectors, each `ip:port` (IPv6 as `[addr]:port`); each gets every datagram.
    pub targets: Vec<SocketAddr>,
    #[serde(default)]
    pub engine_type: u8,
    #[serde(default)]
    pub engine_id: u8,
    /// Seconds; 0 and -1 mean the default (600), as Open vSwitch's code does (its
    /// documentation says -1 disables active timeouts, which its code never did).
    #[serde(default)]
    pub active_timeout: i64,
    #[serde(default)]
    pub add_id_to_interface: bool,
}

impl NetflowOptions {
    /// The active timeout in effect, in ms.
    pub fn active_timeout_ms(&self) -> u64 {
        let s = if self.active_timeout > 0 {
            self.active_timeout
        } else {
            DEFAULT_ACTIVE_TIMEOUT_S
        };
        (s as u64).saturating_mul(1000)
    }

    /// Checks what serde cannot: at least one target, no port 0, no timeout below -1.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.targets.is_empty() {
            return Err(OptionsError::NoTargets);
        }
        if let Some(t) = self.targets.iter().find(|t| t.port() == 0) {
            return Err(OptionsError::ZeroPort(t.to_string()));
        }
        if self.active_timeout < -1 {
            return Err(OptionsError::BadActiveTimeout(
                self.active_timeout.to_string(),
            ));
        }
        Ok(())
    }

    /// Settings from `key=value` words; `targets` is a comma-separated list. Unset engine
    /// fields are 0, the timeout the default, `add_id_to_interface` false.
    pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<NetflowOptions, OptionsError> {
        let mut o = NetflowOptions {
            targets: Vec::new(),
            engine_type: 0,
            engine_id: 0,
            active_timeout: 0,
            add_id_to_interface: false,
        };
        for a in args {
            let a = a.as_ref();
            let Some((k, v)) = a.split_once('=') else {
                return Err(OptionsError::NotKeyValue(a.to_string()));
            };
            match k {
                "targets" => {
                    o.targets = v
                        .split(',')
                        .filter(|t| !t.is_empty())
                        .map(|t| {
                            t.trim()
                                .parse()
                                .map_err(|_| OptionsError::BadTarget(t.to_string()))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "engine_type" | "engine_id" => {
                    let field = if k == "engine_type" {
                        "engine_type"
                    } else {
                        "engine_id"
                    };
                    let n: u8 = v.parse().map_err(|_| OptionsError::BadEngine {
                        field,
                        value: v.to_string(),
                    })?;
                    if k == "engine_type" {
                        o.engine_type = n;
                    } else {
                        o.engine_id = n;
                    }
                }
                "active_timeout" => {
                    o.active_timeout = v
                        .parse()
                        .map_err(|_| OptionsError::BadActiveTimeout(v.to_string()))?;
                }
                "add_id_to_interface" => {
                    o.add_id_to_interface = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(OptionsError::BadBool(v.to_string())),
                    };
                }
                _ => return Err(OptionsError::Unknown(k.to_string())),
            }
        }
        o.validate()?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_with_defaults() {
        let o = NetflowOptions::parse_args(&[
            "targets=127.0.0.1:2055,[::1]:9995",
            "active_timeout=60",
            "engine_id=7",
        ])
        .unwrap();
        assert_eq!(o.targets.len(), 2);
        assert_eq!(o.targets[1].to_string(), "[::1]:9995");
        assert_eq!((o.engine_type, o.engine_id), (0, 7));
        assert_eq!(o.active_timeout_ms(), 60_000);
        assert!(!o.add_id_to_interface);
    }

    #[test]
    fn zero_and_minus_one_mean_the_default_timeout() {
        for t in ["0", "-1"] {
            let o =
                NetflowOptions::parse_args(&["targets=1.2.3.4:5", &format!("active_timeout={t}")])
                    .unwrap();
            assert_eq!(o.active_timeout_ms(), 600_000);
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        let bad = [
            (vec!["active_timeout=60"], "targets"),
            (vec!["targets=1.2.3.4"], "targets"),
            (vec!["targets=host:2055"], "targets"),
            (vec!["targets=1.2.3.4:0"], "targets"),
            (vec!["targets=1.2.3.4:5", "engine_id=256"], "engine_id"),
            (vec!["targets=1.2.3.4:5", "engine_type=x"], "engine_type"),
            (
                vec!["targets=1.2.3.4:5", "active_timeout=-2"],
                "active_timeout",
            ),
            (
                vec!["targets=1.2.3.4:5", "active_timeout=ten"],
                "active_timeout",
            ),
            (
                vec!["targets=1.2.3.4:5", "add_id_to_interface=yes"],
                "add_id_to_interface",
            ),
            (vec!["targets=1.2.3.4:5", "sampling=1"], "sampling"),
        ];
        for (args, field) in bad {
            let e = NetflowOptions::parse_args(&args).unwrap_err().to_string();
            assert!(e.starts_with(field), "{args:?}: {e}");
        }
    }
}
