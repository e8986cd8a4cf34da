//! Connection targets as `ovs-vsctl set-controller` writes them: `tcp:IP[:PORT]` (the switch
//! connects, and reconnects), `ptcp:PORT[:IP]` and `punix:PATH` (the switch listens). A
//! target that does not parse names the part at fault.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// OpenFlow's IANA port.
pub const DEFAULT_PORT: u16 = 6653;

/// Where a bridge's OpenFlow connections come from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Target {
    /// Connect to a controller.
    Tcp(SocketAddr),
    /// Listen on a TCP port (every address without an IP).
    Ptcp(SocketAddr),
    /// Listen on a unix socket (created with mode 0600).
    Punix(PathBuf),
}

/// A target that does not parse: `field` is the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TargetError {
    pub field: &'static str,
    pub reason: String,
}

fn bad<T>(field: &'static str, reason: impl Into<String>) -> Result<T, TargetError> {
    Err(TargetError {
        field,
        reason: reason.into(),
    })
}

fn parse_port(s: &str, field: &'static str) -> Result<u16, TargetError> {
    match s.parse::<u16>() {
        Ok(p) if p != 0 || field == "ptcp port" => Ok(p),
        _ => bad(field, format!("{s:?} is not a port number (1..=65535)")),
    }
}

fn parse_ip(s: &str, field: &'static str) -> Result<IpAddr, TargetError> {
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse()
        .or_else(|_| bad(field, format!("{s:?} is not an IP address")))
}

/// Splits `IP[:PORT]` where the IP may be `[v6]`.
fn split_ip_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        match s.find(']') {
            Some(i) => (&s[..=i], s[i + 1..].strip_prefix(':')),
            None => (s, None),
        }
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address has no port.
        (s, None)
    } else {
        match s.split_once(':') {
            Some((ip, port)) => (ip, Some(port)),
            None => (s, None),
        }
    }
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, TargetError> {
        let Some((kind, rest)) = s.split_once(':') else {
            return bad(
                "target",
                format!("{s:?}: expected tcp:IP[:PORT], ptcp:PORT[:IP] or punix:PATH"),
            );
        };
        match kind {
            "tcp" => {
                let (ip, port) = split_ip_port(rest);
                let ip = parse_ip(ip, "tcp ip")?;
                let port = match port {
                    Some(p) => parse_port(p, "tcp port")?,
                    None => DEFAULT_PORT,
                };
                Ok(Target::Tcp(SocketAddr::new(ip, port)))
            }
            "ptcp" => {
                let (port, ip) = match rest.split_once(':') {
                    Some((p, ip)) => (p, Some(ip)),
                    None => (rest, None),
                };
                let port = if port.is_empty() {
                    DEFAULT_PORT
                } else {
                    parse_port(port, "ptcp port")?
                };
                let ip = match ip {
                    Some(ip) => parse_ip(ip, "ptcp ip")?,
                    None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                };
                Ok(Target::Ptcp(SocketAddr::new(ip, port)))
            }
            "punix" => {
                if rest.is_empty() {
                    return bad("punix path", "empty");
                }
                Ok(Target::Punix(PathBuf::from(rest)))
            }
            "unix" | "ssl" | "pssl" => bad(
                "target",
                format!("{kind}: not supported (tcp:, ptcp: and punix: are)"),
            ),
            _ => bad(
                "target",
                format!("{kind:?}: unknown kind (tcp:, ptcp: or punix:)"),
            ),
        }
    }

    /// True for the targets the switch listens on.
    pub fn is_passive(&self) -> bool {
        !matches!(self, Target::Tcp(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = |a: &SocketAddr| match a.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        match self {
            Target::Tcp(a) => write!(f, "tcp:{}:{}", ip(a), a.port()),
            Target::Ptcp(a) if a.ip().is_unspecified() && a.is_ipv4() => {
                write!(f, "ptcp:{}", a.port())
            }
            Target::Ptcp(a) => write!(f, "ptcp:{}:{}", a.port(), ip(a)),
            Target::Punix(p) => write!(f, "punix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for (text, printed) in [
            ("tcp:127.0.0.1", "tcp:127.0.0.1:6653"),
            ("tcp:10.0.0.1:6633", "tcp:10.0.0.1:6633"),
            ("tcp:[::1]:6653", "tcp:[::1]:6653"),
            ("ptcp:6653", "ptcp:6653"),
            ("ptcp:", "ptcp:6653"),
            ("ptcp:0:127.0.0.1", "ptcp:0:127.0.0.1"),
            ("ptcp:6653:[::1]", "ptcp:6653:[::1]"),
            ("punix:/run/x.mgmt", "punix:/run/x.mgmt"),
        ] {
            let t = Target::parse(text).unwrap_or_else(|e| unreachable!("{text}: {e}"));
            assert_eq!(t.to_string(), printed);
            assert_eq!(Target::parse(printed), Ok(t));
        }
    }

    #[test]
    fn bad_targets_name_the_part() {
        for (text, field) in [
            ("127.0.0.1", "target"),
            ("udp:1.2.3.4", "target"),
            ("ssl:1.2.3.4", "target"),
            ("tcp:1.2.3", "tcp ip"),
            ("tcp:1.2.3.4:0", "tcp port"),
            ("tcp:1.2.3.4:70000", "tcp port"),
            ("ptcp:x", "ptcp port"),
            ("ptcp:6653:foo", "ptcp ip"),
            ("punix:", "punix path"),
        ] {
            assert_eq!(
                Target::parse(text).err().map(|e| e.field),
                Some(field),
                "{text}"
            );
        }
    }
}
