//! Attaching network namespaces (containers) to the switch through veth pairs, as `vecswitch
//! attach`/`detach` do: create a pair, put one end into a named namespace or into the namespace of
//! a process (`/proc/PID/ns/net`, so Docker and containerd containers work), name it, give it its
//! MAC and address, turn its TX checksum offload off and bring it up, and leave the other end up in
//! the switch's namespace for the caller to add as a port. The work is done by the `ip`, `ethtool`
//! and `nsenter` commands (easier to read and debug than netlink); every failure names the step and
//! carries the command's stderr, and a failed attach deletes what it created. Choices: TX checksum
//! offload is off on both ends, because a veth otherwise hands frames with a partial checksum to
//! AF_XDP/AF_PACKET, and a userspace switch forwards them unfinished (TCP then breaks; OVS's AF_XDP
//! documentation says the same). IPv6 is disabled on the host end only: it is a switch port, and
//! the host stack must not send its router solicitations and MLD reports straight to the container.
//! The namespace keeps IPv6 (it is the container's stack); an IPv6 address given to `attach` is
//! added with `nodad` so that it is usable at once.

use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use ports::sys::if_index;

/// The longest interface name the kernel takes (`IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;
/// Where `ip netns add` mounts named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";
/// The interface name inside the namespace when the caller gives none.
pub const DEFAULT_NS_IF: &str = "eth0";

/// What went wrong; the message starts with the field or the step it is about.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A request field is malformed.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The named namespace does not exist (`ip netns add` is the user's job).
    #[error(
        "netns: network namespace {name:?} does not exist (create it with `ip netns add {name}`)"
    )]
    NoSuchNamespace { name: String },
    /// No process with that pid (or its namespace is not visible).
    #[error("pid: no process {pid} (no /proc/{pid}/ns/net)")]
    NoSuchProcess { pid: u32 },
    /// The target is the switch's own namespace: a veth end there is not a container's.
    #[error("{field}: {target} is the switch's own network namespace")]
    OwnNamespace { field: &'static str, target: String },
    /// An interface name is already taken.
    #[error("{field}: interface {name:?} already exists{place}")]
    NameTaken {
        field: &'static str,
        name: String,
        place: String,
    },
    /// The interface to detach does not exist.
    #[error("host_if: no interface {name:?}")]
    NoSuchInterface { name: String },
    /// The interface to detach is not a veth, so it was not made by `attach`.
    #[error("host_if: {name:?} is a {kind}, not a veth; refusing to delete it")]
    NotVeth { name: String, kind: String },
    /// A command the step needs is not installed.
    #[error("{step}: `{tool}` is not installed (scripts/setup.sh installs it)")]
    MissingTool {
        step: &'static str,
        tool: &'static str,
    },
    /// A command failed.
    #[error("{step}: `{command}` failed: {stderr}")]
    Command {
        step: &'static str,
        command: String,
        stderr: String,
    },
}

/// The network namespace to attach to: one made by `ip netns add NAME`, or a process's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NsTarget {
    Name(String),
    Pid(u32),
}

impl NsTarget {
    /// The namespace file: `/run/netns/NAME` or `/proc/PID/ns/net`.
    pub fn path(&self) -> PathBuf {
        match self {
            NsTarget::Name(n) => Path::new(NETNS_RUN_DIR).join(n),
            NsTarget::Pid(p) => PathBuf::from(format!("/proc/{p}/ns/net")),
        }
    }

    /// The field a request names this target with.
    fn field(&self) -> &'static str {
        match self {
            NsTarget::Name(_) => "netns",
            NsTarget::Pid(_) => "pid",
        }
    }

    /// Checks that the target is well formed, exists and is not the switch's own namespace;
    /// returns its namespace file.
    fn resolve(&self) -> Result<PathBuf, NetnsError> {
        match self {
            NsTarget::Name(n) => check_netns_name(n)?,
            NsTarget::Pid(0) => return Err(invalid("pid", "0 is not a process")),
            NsTarget::Pid(_) => {}
        }
        let path = self.path();
        let meta = std::fs::metadata(&path).map_err(|_| match self {
            NsTarget::Name(n) => NetnsError::NoSuchNamespace { name: n.clone() },
            NsTarget::Pid(p) => NetnsError::NoSuchProcess { pid: *p },
        })?;
        if let Ok(own) = std::fs::metadata("/proc/self/ns/net") {
            if own.dev() == meta.dev() && own.ino() == meta.ino() {
                return Err(NetnsError::OwnNamespace {
                    field: self.field(),
                    target: self.to_string(),
                });
            }
        }
        Ok(path)
    }
}

/// `NAME` or `pid:N`, as `Attachment::netns` shows it.
impl fmt::Display for NsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsTarget::Name(n) => f.write_str(n),
            NsTarget::Pid(p) => write!(f, "pid:{p}"),
        }
    }
}

/// The inverse of `Display`: `pid:N` is a process, anything else a namespace name.
impl FromStr for NsTarget {
    type Err = NetnsError;
    fn from_str(s: &str) -> Result<NsTarget, NetnsError> {
        match s.strip_prefix("pid:") {
            Some(p) => p
                .parse::<u32>()
                .map(NsTarget::Pid)
                .map_err(|_| invalid("pid", format!("{p:?} is not a process id"))),
            None => {
                check_netns_name(s)?;
                Ok(NsTarget::Name(s.to_string()))
            }
        }
    }
}

/// What `attach_veth` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSpec {
    pub target: NsTarget,
    /// An address with its prefix length (`10.0.0.2/24`, `fd00::2/64`), checked by `parse_cidr`.
    pub ip: Option<String>,
    /// The MAC of the namespace end; the kernel picks a random one when `None`.
    pub mac: Option<[u8; 6]>,
    /// The interface name inside the namespace; `eth0` when `None`.
    pub name: Option<String>,
    /// The host end's name; `host_if_name(target, name)` when `None`.
    pub host_name: Option<String>,
}

impl AttachSpec {
    /// A spec with only the target: `eth0`, no address, a kernel-chosen MAC.
    pub fn new(target: NsTarget) -> AttachSpec {
        AttachSpec {
            target,
            ip: None,
            mac: None,
            name: None,
            host_name: None,
        }
    }
}

/// What `attach_veth` made: the host end (to add as a switch port) and the namespace end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub host_if: String,
    pub ns_if: String,
    /// The namespace name, or `pid:N`.
    pub netns: String,
    /// The namespace end's MAC as the kernel reports it after configuration.
    pub mac: [u8; 6],
    /// The address as given (`10.0.0.2/24`), if any.
    pub ip: Option<String>,
}

/// An address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> NetnsError {
    NetnsError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (two hex digits per byte) and refuses what an interface cannot
/// carry: a multicast (group bit set) or all-zero address.
pub fn parse_mac(s: &str) -> Result<[u8; 6], NetnsError> {
    let bad = || invalid("mac", format!("{s:?} is not six colon-separated hex bytes"));
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in mac.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    check_mac(&mac)?;
    Ok(mac)
}

fn check_mac(mac: &[u8; 6]) -> Result<(), NetnsError> {
    if mac[0] & 1 != 0 {
        return Err(invalid(
            "mac",
            format!("{} is a multicast address", format_mac(mac)),
        ));
    }
    if *mac == [0; 6] {
        return Err(invalid("mac", "00:00:00:00:00:00 is not an address"));
    }
    Ok(())
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    pipeline::field::ofctl::format_mac(*mac)
}

/// Parses `ADDR/PREFIX` (IPv4 or IPv6); the prefix is required, and unspecified or multicast
/// addresses are refused because an interface cannot own them.
pub fn parse_cidr(s: &str) -> Result<Cidr, NetnsError> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| invalid("ip", format!("{s:?} needs a prefix length (ADDR/PREFIX)")))?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| invalid("ip", format!("{a:?} is not an IPv4 or IPv6 address")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = p
        .parse::<u8>()
        .ok()
        .filter(|&n| (1..=max).contains(&n) && !p.starts_with('+'))
        .ok_or_else(|| invalid("ip", format!("prefix {p:?} is not in 1..={max}")))?;
    if addr.is_unspecified() || addr.is_multicast() {
        return Err(invalid(
            "ip",
            format!("{addr} cannot be an interface address"),
        ));
    }
    Ok(Cidr { addr, prefix })
}

/// Checks a Linux interface name as the kernel's `dev_valid_name` does.
fn check_ifname(field: &'static str, name: &str) -> Result<(), NetnsError> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(invalid(
            field,
            format!("{name:?} must be 1 to {MAX_IFNAME} bytes"),
        ));
    }
    if name == "." || name == ".." {
        return Err(invalid(field, format!("{name:?} is not an interface name")));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            field,
            format!("{name:?} contains '/', ':', a space or a control character"),
        ));
    }
    Ok(())
}

/// Checks a namespace name as `ip netns add` would take it (a file name in `/run/netns`).
fn check_netns_name(name: &str) -> Result<(), NetnsError> {
    if name.is_empty() || name.len() > 255 || name == "." || name == ".." {
        return Err(invalid(
            "netns",
            format!("{name:?} is not a namespace name"),
        ));
    }
    if name.contains('/') || name.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "netns",
            format!("{name:?} contains '/' or a control character"),
        ));
    }
    Ok(())
}

/// The host end's default name: `vs` and 8 hex digits of a hash of the namespace and the
/// interface name inside it. Deterministic, so the same attachment always gets the same port
/// name, and 10 bytes, within `MAX_IFNAME`. Distinct attachments can collide only by hash
/// accident, and `attach_veth` refuses a name that is taken.
pub fn host_if_name(target: &NsTarget, ns_if: &str) -> String {
    // FNV-1a: tiny, stable across Rust versions (unlike `DefaultHasher`).
    let mut h: u32 = 0x811c_9dc5;
    for b in target.to_string().bytes().chain([0]).chain(ns_if.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("vs{h:08x}")
}

/// Looks a tool up in `PATH` and the sbin directories (a non-login root shell may lack them).
fn tool(step: &'static str, name: &'static str) -> Result<PathBuf, NetnsError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(NetnsError::MissingTool { step, tool: name })
}

/// Runs `cmd`; a failure to start or a non-zero exit becomes an error naming `step`.
fn run(step: &'static str, mut cmd: Command) -> Result<Output, NetnsError> {
    let command = render(&cmd);
    let out = cmd.output().map_err(|e| NetnsError::Command {
        step,
        command: command.clone(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(NetnsError::Command {
        step,
        command,
        stderr: if stderr.is_empty() {
            out.status.to_string()
        } else {
            stderr
        },
    })
}

fn render(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command in the switch's own namespace.
fn host_cmd(
    step: &'static str,
    program: &'static str,
    args: &[&str],
) -> Result<Command, NetnsError> {
    let mut cmd = Command::new(tool(step, program)?);
    cmd.args(args);
    Ok(cmd)
}

/// A command run inside the namespace at `ns_path` (`nsenter --net=PATH -- PROGRAM ARGS`).
fn in_ns(
    step: &'static str,
    ns_path: &Path,
    program: &'static str,
    args: &[&str],
) -> Result<Command, NetnsError> {
    let program = tool(step, program)?;
    let mut cmd = Command::new(tool(step, "nsenter")?);
    cmd.arg(format!("--net={}", ns_path.display()))
        .arg("--")
        .arg(program)
        .args(args);
    Ok(cmd)
}

/// A `Command` that runs `program` inside the target namespace (only the network namespace is
/// entered: the program is the host's). For spawning servers in tests and demos.
pub fn ns_command(target: &NsTarget, program: &str) -> Result<Command, NetnsError> {
    let path = target.resolve()?;
    let mut cmd = Command::new(tool("ns_command", "nsenter")?);
    cmd.arg(format!("--net={}", path.display()))
        .arg("--")
        .arg(program);
    Ok(cmd)
}

/// Runs `args` inside the target namespace and returns its output whatever its exit status
/// (a failed `ping` is an answer); an error only when the namespace is missing or the command
/// cannot start.
pub fn ns_exec(target: &NsTarget, args: &[&str]) -> Result<Output, NetnsError> {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| invalid("args", "no command given"))?;
    let mut cmd = ns_command(target, program)?;
    cmd.args(rest);
    let command = render(&cmd);
    cmd.output().map_err(|e| NetnsError::Command {
        step: "ns_exec",
        command,
        stderr: e.to_string(),
    })
}

/// Creates a named namespace (`ip netns add NAME`) with its loopback up. A helper for demos and
/// tests: `attach_veth` never creates namespaces.
pub fn create_netns(name: &str) -> Result<(), NetnsError> {
    check_netns_name(name)?;
    run(
        "create netns",
        host_cmd("create netns", "ip", &["netns", "add", name])?,
    )?;
    let lo = host_cmd(
        "create netns",
        "ip",
        &["-n", name, "link", "set", "lo", "up"],
    )
    .and_then(|cmd| run("create netns: loopback up", cmd));
    if let Err(e) = lo {
        let _ = delete_netns(name);
        return Err(e);
    }
    Ok(())
}

/// Deletes a named namespace (`ip netns del NAME`); the veth ends inside go with it, and so do
/// their host ends.
pub fn delete_netns(name: &str) -> Result<(), NetnsError> {
    check_netns_name(name)?;
    run(
        "delete netns",
        host_cmd("delete netns", "ip", &["netns", "del", name])?,
    )?;
    Ok(())
}

/// Deletes the host end of a half-made attachment unless disarmed.
struct Rollback<'a> {
    host_if: &'a str,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut cmd) = host_cmd("rollback", "ip", &["link", "del", self.host_if]) {
                let _ = cmd.output();
            }
        }
    }
}

/// Creates a veth pair, puts one end into the target namespace under `spec.name` (default
/// `eth0`) with `spec.mac` and `spec.ip`, turns TX checksum offload off on both ends and brings
/// both up. The host end is left for the caller to add as a switch port. Refuses a missing
/// namespace or process, the switch's own namespace, and names already taken on either side;
/// on any later failure it deletes the pair again.
pub fn attach_veth(spec: &AttachSpec) -> Result<Attachment, NetnsError> {
    let ns_path = spec.target.resolve()?;
    let ns_if = spec.name.as_deref().unwrap_or(DEFAULT_NS_IF);
    check_ifname("name", ns_if)?;
    let host_if = match &spec.host_name {
        Some(h) => h.clone(),
        None => host_if_name(&spec.target, ns_if),
    };
    check_ifname("host_name", &host_if)?;
    if let Some(mac) = &spec.mac {
        check_mac(mac)?;
    }
    let cidr = spec.ip.as_deref().map(parse_cidr).transpose()?;
    // Fail before creating anything when a tool is missing.
    for t in ["ip", "ethtool", "nsenter"] {
        tool("attach", t)?;
    }
    if if_index(&host_if).is_some() {
        return Err(NetnsError::NameTaken {
            field: "host_name",
            name: host_if,
            place: String::new(),
        });
    }
    let probe = in_ns(
        "attach: check name",
        &ns_path,
        "ip",
        &["link", "show", "dev", ns_if],
    )?;
    if run("attach: check name", probe).is_ok() {
        return Err(NetnsError::NameTaken {
            field: "name",
            name: ns_if.to_string(),
            place: format!(" in network namespace {}", spec.target),
        });
    }

    let ns_arg = ns_path.to_string_lossy().into_owned();
    let mac_str = spec.mac.as_ref().map(format_mac);
    let mut create = vec![
        "link", "add", &host_if, "type", "veth", "peer", "name", ns_if,
    ];
    if let Some(m) = &mac_str {
        create.extend(["address", m.as_str()]);
    }
    create.extend(["netns", ns_arg.as_str()]);
    run(
        "create veth pair",
        host_cmd("create veth pair", "ip", &create)?,
    )?;
    let mut rollback = Rollback {
        host_if: &host_if,
        armed: true,
    };

    // The host end is a switch port: no IPv6 of its own (see the module docs). A kernel
    // without IPv6 has no such file, and then there is nothing to silence.
    let sysctl = format!("/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6");
    if Path::new(&sysctl).exists() {
        std::fs::write(&sysctl, "1").map_err(|e| NetnsError::Command {
            step: "disable IPv6 on the host end",
            command: format!("write 1 to {sysctl}"),
            stderr: e.to_string(),
        })?;
    }
    run(
        "TX checksum offload off (namespace end)",
        in_ns(
            "TX checksum offload off (namespace end)",
            &ns_path,
            "ethtool",
            &["-K", ns_if, "tx", "off"],
        )?,
    )?;
    run(
        "TX checksum offload off (host end)",
        host_cmd(
            "TX checksum offload off (host end)",
            "ethtool",
            &["-K", &host_if, "tx", "off"],
        )?,
    )?;
    if let Some(c) = &cidr {
        let addr = c.to_string();
        let mut args = vec!["addr", "add", addr.as_str(), "dev", ns_if];
        if c.addr.is_ipv6() {
            args.push("nodad");
        }
        run("set address", in_ns("set address", &ns_path, "ip", &args)?)?;
    }
    run(
        "namespace end up",
        in_ns(
            "namespace end up",
            &ns_path,
            "ip",
            &["link", "set", ns_if, "up"],
        )?,
    )?;
    run(
        "host end up",
        host_cmd("host end up", "ip", &["link", "set", &host_if, "up"])?,
    )?;
    let mac = read_mac(&ns_path, ns_if)?;
    rollback.armed = false;
    Ok(Attachment {
        host_if: host_if.clone(),
        ns_if: ns_if.to_string(),
        netns: spec.target.to_string(),
        mac,
        ip: cidr.map(|c| c.to_string()),
    })
}

/// The MAC of `ifname` in the namespace, from `ip -j link show`.
fn read_mac(ns_path: &Path, ifname: &str) -> Result<[u8; 6], NetnsError> {
    const STEP: &str = "read the namespace end's MAC";
    let out = run(
        STEP,
        in_ns(STEP, ns_path, "ip", &["-j", "link", "show", "dev", ifname])?,
    )?;
    let bad = |why: &str| NetnsError::Command {
        step: STEP,
        command: format!("ip -j link show dev {ifname}"),
        stderr: why.to_string(),
    };
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| bad(&e.to_string()))?;
    let addr = json
        .get(0)
        .and_then(|l| l.get("address"))
        .and_then(|a| a.as_str())
        .ok_or_else(|| bad("no address in the output"))?;
    parse_mac(addr).map_err(|e| bad(&e.to_string()))
}

/// Deletes an attachment by its host end (`ip link del`, which removes both ends of the pair).
/// Refuses an interface that is not a veth, so a mistaken name cannot take down a real NIC.
pub fn detach_veth(host_if: &str) -> Result<(), NetnsError> {
    check_ifname("host_if", host_if)?;
    if if_index(host_if).is_none() {
        return Err(NetnsError::NoSuchInterface {
            name: host_if.to_string(),
        });
    }
    const STEP: &str = "detach: check the kind";
    let out = run(
        STEP,
        host_cmd(STEP, "ip", &["-j", "-d", "link", "show", "dev", host_if])?,
    )?;
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| NetnsError::Command {
            step: STEP,
            command: format!("ip -j -d link show dev {host_if}"),
            stderr: e.to_string(),
        })?;
    let kind = json
        .get(0)
        .and_then(|l| l.get("linkinfo"))
        .and_then(|l| l.get("info_kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("device without a kind");
    if kind != "veth" {
        return Err(NetnsError::NotVeth {
            name: host_if.to_string(),
            kind: kind.to_string(),
        });
    }
    run(
        "detach",
        host_cmd("detach", "ip", &["link", "del", host_if])?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_format_round_trip() {
        let mac = parse_mac("02:aB:00:ff:10:09").unwrap();
        assert_eq!(mac, [0x02, 0xab, 0x00, 0xff, 0x10, 0x09]);
        assert_eq!(format_mac(&mac), "02:ab:00:ff:10:09");
    }

    #[test]
    fn bad_macs_name_the_field_and_the_reason() {
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02-00-00-00-00-01",
            "2:00:00:00:00:01",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:+1",
            "020:0:00:00:00:01",
        ] {
            let e = parse_mac(bad).unwrap_err().to_string();
            assert!(e.starts_with("mac: "), "{bad:?}: {e}");
        }
        let e = parse_mac("01:00:5e:00:00:01").unwrap_err().to_string();
        assert!(e.contains("multicast"), "{e}");
        let e = parse_mac("00:00:00:00:00:00").unwrap_err().to_string();
        assert!(e.starts_with("mac: "), "{e}");
    }

    #[test]
    fn cidrs_parse_v4_and_v6() {
        let c = parse_cidr("10.1.2.3/24").unwrap();
        assert_eq!(c.addr, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(c.prefix, 24);
        assert_eq!(c.to_string(), "10.1.2.3/24");
        assert_eq!(parse_cidr("fd00::2/64").unwrap().to_string(), "fd00::2/64");
        assert_eq!(parse_cidr("10.0.0.1/32").unwrap().prefix, 32);
        assert_eq!(parse_cidr("fd00::1/128").unwrap().prefix, 128);
    }

    #[test]
    fn bad_cidrs_name_the_field_and_the_reason() {
        for (bad, why) in [
            ("10.0.0.1", "prefix length"),
            ("10.0.0.1/33", "1..=32"),
            ("10.0.0.1/0", "1..=32"),
            ("10.0.0.1/+8", "1..=32"),
            ("10.0.0.1/", "1..=32"),
            ("fd00::1/129", "1..=128"),
            ("10.0.0.256/24", "not an IPv4 or IPv6"),
            ("host/24", "not an IPv4 or IPv6"),
            ("0.0.0.0/8", "cannot be an interface address"),
            ("224.0.0.1/4", "cannot be an interface address"),
            ("::/64", "cannot be an interface address"),
        ] {
            let e = parse_cidr(bad).unwrap_err().to_string();
            assert!(e.starts_with("ip: ") && e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn host_names_are_deterministic_short_and_distinct() {
        let a = NsTarget::Name("red".into());
        let n = host_if_name(&a, "eth0");
        assert_eq!(n, host_if_name(&a, "eth0"));
        assert!(
            n.starts_with("vs") && n.len() == 10 && n.len() <= MAX_IFNAME,
            "{n}"
        );
        check_ifname("host_name", &n).unwrap();
        assert_ne!(n, host_if_name(&a, "eth1"));
        assert_ne!(n, host_if_name(&NsTarget::Name("blue".into()), "eth0"));
        assert_ne!(
            host_if_name(&NsTarget::Pid(42), "eth0"),
            host_if_name(&NsTarget::Name("42".into()), "eth0")
        );
        // Pinned: the name must not change between releases, or detach by a stored name breaks.
        assert_eq!(n, "vs3174ca35");
    }

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        for ok in ["eth0", "a", "123456789012345", "veth-x.1"] {
            check_ifname("name", ok).unwrap();
        }
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
        ] {
            let e = check_ifname("name", bad).unwrap_err().to_string();
            assert!(e.starts_with("name: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn targets_display_and_parse_back() {
        for t in [NsTarget::Name("red".into()), NsTarget::Pid(1234)] {
            assert_eq!(t.to_string().parse::<NsTarget>().unwrap(), t);
        }
        assert_eq!(NsTarget::Pid(7).path(), PathBuf::from("/proc/7/ns/net"));
        assert_eq!(
            NsTarget::Name("red".into()).path(),
            PathBuf::from("/run/netns/red")
        );
        let e = "pid:x".parse::<NsTarget>().unwrap_err().to_string();
        assert!(e.starts_with("pid: "), "{e}");
        for bad in ["", "a/b", ".", ".."] {
            let e = bad.parse::<NsTarget>().unwrap_err().to_string();
            assert!(e.starts_with("netns: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn missing_targets_are_refused_by_field() {
        let e = NsTarget::Name("vecswitch-no-such-ns-x".into())
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("netns: ") && e.contains("vecswitch-no-such-ns-x"),
            "{e}"
        );
        // pid_max bounds every pid, so this one cannot exist.
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let e = NsTarget::Pid(pid_max).resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("pid: ") && e.contains(&pid_max.to_string()),
            "{e}"
        );
        let e = NsTarget::Pid(0).resolve().unwrap_err().to_string();
        assert!(e.starts_with("pid: "), "{e}");
    }

    #[test]
    fn the_own_namespace_is_refused() {
        let me = std::process::id();
        let e = NsTarget::Pid(me).resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("pid: ") && e.contains("own network namespace"),
            "{e}"
        );
    }
}
