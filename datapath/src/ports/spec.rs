//! The one parser of port options, shared by the control socket (`add-port br0 IF type=afxdp
//! queues=2 xdp-mode=generic`) and the TOML configuration: a [`PortSpec`] is a port's name,
//! its type with that type's options, and the options every port has (`ofport`, `vlan`). It
//! checks every value when parsed (a refusal names the key and the reason), prints itself back
//! in one canonical form ([`PortSpec::options_text`]) that parses to the same spec, and opens
//! the port's queues ([`PortSpec::open`]). Without `type=`, a name that is an existing
//! interface means `type=afxdp`.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::afpacket::AfPacketConfig;
use crate::afxdp::{XdpModeRequest, XskConfig};
use crate::traffic::parse_profile;

use super::vhost::{VhostUserMode, VhostUserOptions, VhostUserQueue, MAX_QUEUE_PAIRS};
use super::{AfPacketQueue, AfXdpQueue, GeneratorPort, PcapPort, PortError, PortIo, TapPort};

/// Highest OpenFlow port number a port may be given (`OFPP_MAX`).
pub const MAX_OFPORT: u32 = 0xfeff;
/// Most AF_XDP queues one port may have (the XSKMAP's slots).
pub const MAX_QUEUES: u32 = 64;
/// Highest VLAN id.
pub const MAX_VLAN: u16 = 4095;

/// A refused port option, naming the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// A key no port type knows.
    #[error("{key}: unknown option (type={kind} takes {known})")]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The port's type.
        kind: &'static str,
        /// The keys the type takes.
        known: String,
    },
    /// A key of another port type.
    #[error("{key}: not an option of type={kind}")]
    NotForType {
        /// The key as given.
        key: String,
        /// The port's type.
        kind: &'static str,
    },
    /// A key given twice.
    #[error("{key}: given twice")]
    Duplicate {
        /// The key as given.
        key: String,
    },
    /// A value that does not parse or is out of range.
    #[error("{key}: bad value {value:?}: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// Why.
        reason: String,
    },
    /// Something missing or inconsistent.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key (or `name` for the port's name).
        key: String,
        /// Why.
        reason: String,
    },
}

/// The VLAN role of a port, for the NORMAL action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanSpec {
    /// Untagged frames belong to this VLAN (`vlan=access:N`).
    Access(u16),
    /// Tagged frames of these VLANs, ascending, no repeats (`vlan=trunk:1,2,3`).
    Trunk(Vec<u16>),
}

/// Options of an AF_XDP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpOptions {
    /// Sockets, one per receive queue `0..queues`.
    pub queues: u32,
    /// XDP hook to ask for.
    pub xdp_mode: XdpModeRequest,
    /// Entries of each ring.
    pub ring_size: u32,
    /// UMEM frames per queue.
    pub frames: u32,
}

impl Default for AfXdpOptions {
    fn default() -> AfXdpOptions {
        let c = XskConfig::default();
        AfXdpOptions {
            queues: 1,
            xdp_mode: c.xdp_mode,
            ring_size: c.ring_size,
            frames: c.frames,
        }
    }
}

/// Options of an AF_PACKET port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfPacketOptions {
    /// Bytes per receive block.
    pub block_size: u32,
    /// Receive blocks.
    pub blocks: u32,
    /// Bytes per transmit frame.
    pub frame_size: u32,
    /// Milliseconds before the kernel hands over a partly filled receive block: the
    /// latency of a port that receives less than a block's worth in that time.
    pub block_timeout_ms: u32,
}

impl Default for AfPacketOptions {
    fn default() -> AfPacketOptions {
        let c = AfPacketConfig::default();
        AfPacketOptions {
            block_size: c.block_size,
            blocks: c.block_count,
            frame_size: c.frame_size,
            block_timeout_ms: c.block_timeout_ms,
        }
    }
}

/// Options of a generator port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorOptions {
    /// Traffic profile (`traffic::parse_profile` syntax), whitespace removed.
    pub profile: String,
    /// Packets per second; `None` is `rate=max`.
    pub rate: Option<u64>,
    /// Frames after which the port stops; `None` for never.
    pub count: Option<u64>,
}

/// Options of a pcap port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapOptions {
    /// File to replay.
    pub rx: Option<PathBuf>,
    /// File to write.
    pub tx: Option<PathBuf>,
    /// Replay forever.
    pub looping: bool,
}

/// Options of a DPDK port (feature `dpdk`).
#[cfg(feature = "dpdk")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkOptions {
    /// What `rte_dev_probe` takes: a PCI address or a vdev with its arguments
    /// (`net_af_packet0,iface=veth1`); the part before the first comma is the ethdev's name.
    pub devargs: String,
    /// Receive/transmit queue pairs.
    pub queues: u16,
    /// Receive descriptors per queue (the driver may adjust it).
    pub rxd: u16,
    /// Transmit descriptors per queue (the driver may adjust it).
    pub txd: u16,
}

/// A port type with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// `type=afxdp`.
    Afxdp(AfXdpOptions),
    /// `type=afpacket`.
    Afpacket(AfPacketOptions),
    /// `type=tap`: the port's name is the device's.
    Tap,
    /// `type=generator`.
    Generator(GeneratorOptions),
    /// `type=pcap`.
    Pcap(PcapOptions),
    /// `type=vhost-user`: the switch is the virtio-net device of a container or VM.
    VhostUser(VhostUserOptions),
    /// `type=dpdk` (feature `dpdk`).
    #[cfg(feature = "dpdk")]
    Dpdk(DpdkOptions),
}

impl PortKind {
    /// The `type=` value.
    pub fn name(&self) -> &'static str {
        match self {
            PortKind::Afxdp(_) => "afxdp",
            PortKind::Afpacket(_) => "afpacket",
            PortKind::Tap => "tap",
            PortKind::Generator(_) => "generator",
            PortKind::Pcap(_) => "pcap",
            PortKind::VhostUser(_) => "vhost-user",
            #[cfg(feature = "dpdk")]
            PortKind::Dpdk(_) => "dpdk",
        }
    }
}

/// A port as configured: name, type and options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The port's name (for afxdp, afpacket and tap also the interface's).
    pub name: String,
    /// Type and type options.
    pub kind: PortKind,
    /// Requested OpenFlow port number.
    pub ofport: Option<u32>,
    /// VLAN role for NORMAL.
    pub vlan: Option<VlanSpec>,
}

const COMMON_KEYS: [&str; 3] = ["type", "ofport", "vlan"];
const AFXDP_KEYS: [&str; 4] = ["queues", "xdp-mode", "ring-size", "frames"];
const AFPACKET_KEYS: [&str; 4] = ["block-size", "blocks", "frame-size", "block-timeout-ms"];
const GENERATOR_KEYS: [&str; 3] = ["profile", "rate", "count"];
const PCAP_KEYS: [&str; 3] = ["rx", "tx", "loop"];
const VHOST_USER_KEYS: [&str; 3] = ["socket", "mode", "queues"];
#[cfg(feature = "dpdk")]
const DPDK_KEYS: [&str; 4] = ["dpdk-devargs", "queues", "rxd", "txd"];

fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "afxdp" => &AFXDP_KEYS,
        "afpacket" => &AFPACKET_KEYS,
        "generator" => &GENERATOR_KEYS,
        "pcap" => &PCAP_KEYS,
        "vhost-user" => &VHOST_USER_KEYS,
        #[cfg(feature = "dpdk")]
        "dpdk" => &DPDK_KEYS,
        _ => &[],
    }
}

/// How many queues of `ifname` an AF_XDP socket (rx and tx ring) can bind to: the fewer of its
/// receive and transmit queues as sysfs lists them; `None` when sysfs does not say.
fn queue_pairs(ifname: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{ifname}/queues")).ok()?;
    let (mut rx, mut tx) = (0u32, 0u32);
    for entry in dir.flatten() {
        let entry = entry.file_name();
        let entry = entry.to_string_lossy();
        if entry.starts_with("rx-") {
            rx += 1;
        } else if entry.starts_with("tx-") {
            tx += 1;
        }
    }
    Some(rx.min(tx))
}

/// The port type `type=` names, or afxdp when it is not given and `name` is an interface.
fn kind_name(name: &str, given: Option<&str>) -> Result<&'static str, PortSpecError> {
    let Some(t) = given else {
        if crate::netsys::if_index(name).is_some() {
            return Ok("afxdp");
        }
        return Err(PortSpecError::Invalid {
            key: "type".to_string(),
            reason: format!(
                "not given, and there is no interface {name:?} to default to type=afxdp"
            ),
        });
    };
    Ok(match t.to_ascii_lowercase().as_str() {
        "afxdp" => "afxdp",
        "afpacket" => "afpacket",
        "tap" => "tap",
        "generator" => "generator",
        "pcap" => "pcap",
        "vhost-user" => "vhost-user",
        "dpdk" if cfg!(feature = "dpdk") => "dpdk",
        "dpdk" => {
            return Err(bad(
                "type",
                t,
                "built without the dpdk feature (cargo build --features dpdk)",
            ))
        }
        _ => {
            return Err(bad(
                "type",
                t,
                if cfg!(feature = "dpdk") {
                    "expected afxdp, afpacket, tap, generator, pcap, vhost-user or dpdk"
                } else {
                    "expected afxdp, afpacket, tap, generator, pcap or vhost-user"
                },
            ))
        }
    })
}

/// Every key must be common or the type's own: another type's key is refused as such, any
/// other with the list of keys the type takes.
fn check_keys(kind_name: &'static str, options: &[(String, String)]) -> Result<(), PortSpecError> {
    for (key, _) in options {
        let k = normal_key(key);
        if COMMON_KEYS.contains(&k.as_str()) || type_keys(kind_name).contains(&k.as_str()) {
            continue;
        }
        let other = [
            "afxdp",
            "afpacket",
            "generator",
            "pcap",
            "vhost-user",
            "dpdk",
        ]
        .iter()
        .any(|t| type_keys(t).contains(&k.as_str()));
        if other {
            return Err(PortSpecError::NotForType {
                key: key.clone(),
                kind: kind_name,
            });
        }
        let known: Vec<&str> = type_keys(kind_name)
            .iter()
            .chain(COMMON_KEYS.iter())
            .copied()
            .collect();
        return Err(PortSpecError::UnknownKey {
            key: key.clone(),
            kind: kind_name,
            known: known.join(", "),
        });
    }
    Ok(())
}

/// The value of a key the type cannot do without; `reason` says so when it is missing.
fn required<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
    key: &str,
    reason: &str,
) -> Result<&'o str, PortSpecError> {
    given(key).ok_or_else(|| PortSpecError::Invalid {
        key: key.to_string(),
        reason: reason.to_string(),
    })
}

/// The options of `type=afxdp`, defaults for those not given.
fn afxdp_options<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
) -> Result<AfXdpOptions, PortSpecError> {
    let mut o = AfXdpOptions::default();
    if let Some(v) = given("queues") {
        o.queues = number("queues", v, 1, MAX_QUEUES)?;
    }
    if let Some(v) = given("xdp-mode") {
        o.xdp_mode = match v.to_ascii_lowercase().as_str() {
            "auto" => XdpModeRequest::Auto,
            "native" | "driver" => XdpModeRequest::Driver,
            "generic" | "skb" => XdpModeRequest::Generic,
            _ => return Err(bad("xdp-mode", v, "expected auto, native or generic")),
        };
    }
    if let Some(v) = given("ring-size") {
        o.ring_size = power_of_two("ring-size", v, 64, 65536)?;
    }
    if let Some(v) = given("frames") {
        o.frames = number("frames", v, 64, 1 << 20)?;
    }
    Ok(o)
}

/// The options of `type=afpacket`, defaults for those not given.
fn afpacket_options<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
) -> Result<AfPacketOptions, PortSpecError> {
    let mut o = AfPacketOptions::default();
    if let Some(v) = given("frame-size") {
        o.frame_size = power_of_two("frame-size", v, 256, 65536)?;
    }
    if let Some(v) = given("block-size") {
        o.block_size = power_of_two("block-size", v, 4096, 1 << 30)?;
    }
    if let Some(v) = given("blocks") {
        o.blocks = number("blocks", v, 1, 1 << 16)?;
    }
    if let Some(v) = given("block-timeout-ms") {
        o.block_timeout_ms = number("block-timeout-ms", v, 1, 1000)?;
    }
    if o.block_size < o.frame_size {
        return Err(PortSpecError::Invalid {
            key: "block-size".to_string(),
            reason: format!(
                "{} is smaller than frame-size {}",
                o.block_size, o.frame_size
            ),
        });
    }
    if u64::from(o.block_size) * u64::from(o.blocks) > 1 << 31 {
        return Err(PortSpecError::Invalid {
            key: "blocks".to_string(),
            reason: "block-size times blocks is more than 2 GiB".to_string(),
        });
    }
    Ok(o)
}

/// The options of `type=vhost-user`, defaults for those not given.
fn vhost_user_options<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
) -> Result<VhostUserOptions, PortSpecError> {
    let v = required(given, "socket", "type=vhost-user needs socket=PATH")?;
    let socket = parse_path("socket", v)?;
    let mode = match given("mode") {
        None => VhostUserMode::Server,
        Some(m) if m.eq_ignore_ascii_case("server") => VhostUserMode::Server,
        Some(m) if m.eq_ignore_ascii_case("client") => VhostUserMode::Client,
        Some(m) => return Err(bad("mode", m, "expected server or client")),
    };
    let queues = match given("queues") {
        Some(v) => number("queues", v, 1, MAX_QUEUE_PAIRS)?,
        None => 1,
    };
    Ok(VhostUserOptions {
        socket,
        mode,
        queues,
    })
}

/// The options of `type=generator`, defaults for those not given.
fn generator_options<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
) -> Result<GeneratorOptions, PortSpecError> {
    let v = required(
        given,
        "profile",
        "type=generator needs a profile, e.g. size=64,flows=10,proto=udp",
    )?;
    let profile: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let parsed = parse_profile(&profile).map_err(|e| bad("profile", v, e.to_string()))?;
    parsed
        .validate()
        .map_err(|e| bad("profile", v, e.to_string()))?;
    let rate = match given("rate") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("max") => None,
        Some(v) => Some(number("rate", v, 1, u64::MAX)?),
    };
    let count = match given("count") {
        None => None,
        Some(v) => Some(number("count", v, 1, u64::MAX)?),
    };
    Ok(GeneratorOptions {
        profile,
        rate,
        count,
    })
}

/// The options of `type=dpdk`, defaults for those not given.
#[cfg(feature = "dpdk")]
fn dpdk_options<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
) -> Result<DpdkOptions, PortSpecError> {
    let devargs = required(
        given,
        "dpdk-devargs",
        "type=dpdk needs dpdk-devargs, e.g. net_af_packet0,iface=veth1 or a PCI address",
    )?;
    if devargs.split(',').next().is_none_or(str::is_empty) {
        return Err(bad("dpdk-devargs", devargs, "expected a device name first"));
    }
    if devargs.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "dpdk-devargs",
            devargs,
            "whitespace or control characters",
        ));
    }
    let mut o = DpdkOptions {
        devargs: devargs.to_string(),
        queues: 1,
        rxd: 1024,
        txd: 1024,
    };
    if let Some(v) = given("queues") {
        o.queues = number("queues", v, 1, MAX_QUEUES as u16)?;
    }
    if let Some(v) = given("rxd") {
        o.rxd = number("rxd", v, 32, 16384)?;
    }
    if let Some(v) = given("txd") {
        o.txd = number("txd", v, 32, 16384)?;
    }
    Ok(o)
}

/// The options of `type=pcap`, defaults for those not given.
fn pcap_options<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
) -> Result<PcapOptions, PortSpecError> {
    let rx = given("rx").map(|v| parse_path("rx", v)).transpose()?;
    let tx = given("tx").map(|v| parse_path("tx", v)).transpose()?;
    let looping = given("loop")
        .map(|v| parse_bool("loop", v))
        .transpose()?
        .unwrap_or(false);
    if rx.is_none() && tx.is_none() {
        return Err(PortSpecError::Invalid {
            key: "rx".to_string(),
            reason: "type=pcap needs rx=FILE, tx=FILE or both".to_string(),
        });
    }
    if looping && rx.is_none() {
        return Err(PortSpecError::Invalid {
            key: "loop".to_string(),
            reason: "loop=true needs rx=FILE".to_string(),
        });
    }
    Ok(PcapOptions { rx, tx, looping })
}

/// A key as compared: lower case, `_` for `-` (TOML style).
fn normal_key(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('_', "-")
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> PortSpecError {
    PortSpecError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: &str,
    lo: T,
    hi: T,
) -> Result<T, PortSpecError> {
    let n: T = value.parse().map_err(|_| bad(key, value, "not a number"))?;
    if n < lo || n > hi {
        return Err(bad(key, value, format!("must be {lo}..={hi}")));
    }
    Ok(n)
}

fn power_of_two(key: &str, value: &str, lo: u32, hi: u32) -> Result<u32, PortSpecError> {
    let n = number(key, value, lo, hi)?;
    if !n.is_power_of_two() {
        return Err(bad(
            key,
            value,
            format!("must be a power of two from {lo} to {hi}"),
        ));
    }
    Ok(n)
}

fn parse_vlan(value: &str) -> Result<VlanSpec, PortSpecError> {
    let vid = |s: &str| -> Result<u16, PortSpecError> {
        let n: u16 = s
            .trim()
            .parse()
            .map_err(|_| bad("vlan", value, format!("{s:?} is not a VLAN id")))?;
        if n > MAX_VLAN {
            return Err(bad("vlan", value, format!("VLAN ids are 0..={MAX_VLAN}")));
        }
        Ok(n)
    };
    match value.split_once(':') {
        Some((mode, id)) if mode.eq_ignore_ascii_case("access") => Ok(VlanSpec::Access(vid(id)?)),
        Some((mode, ids)) if mode.eq_ignore_ascii_case("trunk") => {
            let mut list = ids
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(vid)
                .collect::<Result<Vec<u16>, _>>()?;
            if list.is_empty() {
                return Err(bad("vlan", value, "a trunk needs at least one VLAN id"));
            }
            list.sort_unstable();
            list.dedup();
            Ok(VlanSpec::Trunk(list))
        }
        _ => Err(bad("vlan", value, "expected access:N or trunk:N,N,...")),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, PortSpecError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

fn parse_path(key: &str, value: &str) -> Result<PathBuf, PortSpecError> {
    if value.is_empty() {
        return Err(bad(key, value, "empty file name"));
    }
    if value.chars().any(char::is_whitespace) {
        // The control socket splits its words at whitespace.
        return Err(bad(
            key,
            value,
            "file names with whitespace are not supported",
        ));
    }
    Ok(PathBuf::from(value))
}

/// Checks a port name: what the control socket can carry as one word.
fn check_port_name(name: &str) -> Result<(), PortSpecError> {
    if name.is_empty() {
        return Err(PortSpecError::Invalid {
            key: "name".to_string(),
            reason: "empty port name".to_string(),
        });
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '=' || c.is_control())
    {
        return Err(PortSpecError::Invalid {
            key: "name".to_string(),
            reason: format!("port name {name:?} has whitespace, `=` or control characters"),
        });
    }
    Ok(())
}

impl PortSpec {
    /// Parses `key=value` words (each split at its first `=`, so values may hold `=` and `,`).
    pub fn parse_args(name: &str, args: &[&str]) -> Result<PortSpec, PortSpecError> {
        let mut options = Vec::with_capacity(args.len());
        for word in args {
            let Some((key, value)) = word.split_once('=') else {
                return Err(PortSpecError::Invalid {
                    key: word.to_string(),
                    reason: "expected key=value".to_string(),
                });
            };
            options.push((key.to_string(), value.to_string()));
        }
        PortSpec::parse(name, &options)
    }

    /// Parses a port's options, already split into (key, value) pairs. Keys are compared in
    /// lower case with `_` standing for `-`.
    pub fn parse(name: &str, options: &[(String, String)]) -> Result<PortSpec, PortSpecError> {
        check_port_name(name)?;
        let mut seen: Vec<String> = Vec::with_capacity(options.len());
        for (key, _) in options {
            let k = normal_key(key);
            if seen.contains(&k) {
                return Err(PortSpecError::Duplicate { key: key.clone() });
            }
            seen.push(k);
        }
        let given = |k: &str| {
            options
                .iter()
                .find(|(key, _)| normal_key(key) == k)
                .map(|(_, v)| v.trim())
        };
        let kind_name = kind_name(name, given("type"))?;
        if kind_name == "tap" {
            super::tap::check_name(name).map_err(|reason| PortSpecError::Invalid {
                key: "name".to_string(),
                reason: format!("{name:?} cannot be a tap device: {reason}"),
            })?;
        }
        check_keys(kind_name, options)?;
        let kind = match kind_name {
            "afxdp" => PortKind::Afxdp(afxdp_options(&given)?),
            "afpacket" => PortKind::Afpacket(afpacket_options(&given)?),
            "tap" => PortKind::Tap,
            "vhost-user" => PortKind::VhostUser(vhost_user_options(&given)?),
            "generator" => PortKind::Generator(generator_options(&given)?),
            #[cfg(feature = "dpdk")]
            "dpdk" => PortKind::Dpdk(dpdk_options(&given)?),
            _ => PortKind::Pcap(pcap_options(&given)?),
        };
        let ofport = given("ofport")
            .map(|v| number("ofport", v, 1, MAX_OFPORT))
            .transpose()?;
        let vlan = given("vlan").map(parse_vlan).transpose()?;
        Ok(PortSpec {
            name: name.to_string(),
            kind,
            ofport,
            vlan,
        })
    }

    /// The options in canonical form, every type option with its value (defaults included),
    /// then `ofport` and `vlan` when set: `type=afxdp queues=1 xdp-mode=auto ring-size=2048
    /// frames=4096 ofport=3`. Parses back to the same spec.
    pub fn options_text(&self) -> String {
        let mut s = format!("type={}", self.kind.name());
        // Writing to a String cannot fail.
        let _ = match &self.kind {
            PortKind::Afxdp(o) => write!(
                s,
                " queues={} xdp-mode={} ring-size={} frames={}",
                o.queues,
                match o.xdp_mode {
                    XdpModeRequest::Auto => "auto",
                    XdpModeRequest::Driver => "native",
                    XdpModeRequest::Generic => "generic",
                },
                o.ring_size,
                o.frames
            ),
            PortKind::Afpacket(o) => write!(
                s,
                " block-size={} blocks={} frame-size={} block-timeout-ms={}",
                o.block_size, o.blocks, o.frame_size, o.block_timeout_ms
            ),
            PortKind::Tap => Ok(()),
            PortKind::VhostUser(o) => {
                write!(
                    s,
                    " socket={} mode={} queues={}",
                    o.socket.display(),
                    o.mode.name(),
                    o.queues
                )
            }
            PortKind::Generator(o) => {
                let rate = o.rate.map_or("max".to_string(), |r| r.to_string());
                let count = o.count.map_or(String::new(), |c| format!(" count={c}"));
                write!(s, " profile={} rate={rate}{count}", o.profile)
            }
            PortKind::Pcap(o) => {
                let mut r = Ok(());
                if let Some(rx) = &o.rx {
                    r = r.and(write!(s, " rx={} loop={}", rx.display(), o.looping));
                }
                if let Some(tx) = &o.tx {
                    r = r.and(write!(s, " tx={}", tx.display()));
                }
                r
            }
            #[cfg(feature = "dpdk")]
            PortKind::Dpdk(o) => write!(
                s,
                " dpdk-devargs={} queues={} rxd={} txd={}",
                o.devargs, o.queues, o.rxd, o.txd
            ),
        };
        if let Some(p) = self.ofport {
            let _ = write!(s, " ofport={p}");
        }
        match &self.vlan {
            Some(VlanSpec::Access(v)) => {
                let _ = write!(s, " vlan=access:{v}");
            }
            Some(VlanSpec::Trunk(list)) => {
                let ids: Vec<String> = list.iter().map(u16::to_string).collect();
                let _ = write!(s, " vlan=trunk:{}", ids.join(","));
            }
            None => {}
        }
        s
    }

    /// Opens the port: one [`PortIo`] per queue (afxdp and dpdk: queues `0..queues`;
    /// vhost-user: one per queue pair; every other type has one). Errors name the port and
    /// the step.
    pub fn open(&self) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let name = self.name.as_str();
        let mut queues: Vec<Box<dyn PortIo>> = Vec::new();
        match &self.kind {
            PortKind::Afxdp(o) => {
                let config = XskConfig {
                    frames: o.frames,
                    ring_size: o.ring_size,
                    xdp_mode: o.xdp_mode,
                    max_queues: MAX_QUEUES,
                    ..XskConfig::default()
                };
                if let Some(have) = queue_pairs(name).filter(|&have| have < o.queues) {
                    // The kernel's bind would say only EINVAL.
                    return Err(PortError::Invalid {
                        port: name.to_string(),
                        step: "open AF_XDP queues".to_string(),
                        reason: format!(
                            "queues={}: {name} has {have} receive/transmit queue pairs",
                            o.queues
                        ),
                    });
                }
                // Queue 0 attaches the interface's one XDP program, the others put their
                // sockets into its map; it detaches when the last queue drops.
                let first = AfXdpQueue::open(name, name, 0, &config)?;
                let prog = first.program().clone();
                queues.push(Box::new(first));
                for q in 1..o.queues {
                    let queue = AfXdpQueue::open_with_program(name, name, q, &config, &prog)?;
                    queues.push(Box::new(queue));
                }
            }
            PortKind::Afpacket(o) => {
                let config = AfPacketConfig {
                    block_size: o.block_size,
                    block_count: o.blocks,
                    frame_size: o.frame_size,
                    block_timeout_ms: o.block_timeout_ms,
                    ..AfPacketConfig::default()
                };
                queues.push(Box::new(AfPacketQueue::open(name, name, &config)?));
            }
            PortKind::Tap => queues.push(Box::new(TapPort::open(name)?)),
            PortKind::VhostUser(o) => {
                for q in VhostUserQueue::open(name, o)? {
                    queues.push(Box::new(q));
                }
            }
            PortKind::Generator(o) => {
                let profile = parse_profile(&o.profile).map_err(|e| PortError::Invalid {
                    port: name.to_string(),
                    step: "parse the profile".to_string(),
                    reason: e.to_string(),
                })?;
                queues.push(Box::new(GeneratorPort::new(
                    name, profile, o.rate, o.count,
                )?));
            }
            PortKind::Pcap(o) => queues.push(Box::new(PcapPort::open(
                name,
                o.rx.as_deref(),
                o.tx.as_deref(),
                o.looping,
            )?)),
            #[cfg(feature = "dpdk")]
            PortKind::Dpdk(o) => {
                for q in super::dpdk::open(name, o)? {
                    queues.push(Box::new(q));
                }
            }
        }
        Ok(queues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, words: &str) -> Result<PortSpec, PortSpecError> {
        let words: Vec<&str> = words.split_whitespace().collect();
        PortSpec::parse_args(name, &words)
    }

    fn err(name: &str, words: &str) -> String {
        match args(name, words) {
            Ok(spec) => panic!("{name} {words}: accepted as {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// The error names `key` first, then says something containing `reason`.
    fn assert_refused(name: &str, words: &str, key: &str, reason: &str) {
        let e = err(name, words);
        assert!(e.starts_with(&format!("{key}:")), "{words}: {e}");
        assert!(e.contains(reason), "{words}: {e}");
    }

    fn round_trip(spec: &PortSpec) {
        let text = spec.options_text();
        let again = args(&spec.name, &text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&again, spec, "{text}");
    }

    #[test]
    fn afxdp_every_key() {
        let s = args(
            "eth9",
            "type=afxdp queues=2 xdp-mode=generic ring-size=1024 frames=8192",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::Afxdp(AfXdpOptions {
                queues: 2,
                xdp_mode: XdpModeRequest::Generic,
                ring_size: 1024,
                frames: 8192,
            })
        );
        assert_eq!(
            s.options_text(),
            "type=afxdp queues=2 xdp-mode=generic ring-size=1024 frames=8192"
        );
        round_trip(&s);
        let native = args("eth9", "type=afxdp xdp-mode=native").unwrap();
        assert!(matches!(
            native.kind,
            PortKind::Afxdp(AfXdpOptions {
                xdp_mode: XdpModeRequest::Driver,
                ..
            })
        ));
        round_trip(&native);
        let d = args("eth9", "type=AFXDP xdp_mode=Auto").unwrap();
        assert_eq!(d.kind, PortKind::Afxdp(AfXdpOptions::default()));
        assert_eq!(
            d.options_text(),
            "type=afxdp queues=1 xdp-mode=auto ring-size=2048 frames=4096"
        );
    }

    #[test]
    fn afxdp_bad_values_name_the_key() {
        assert_refused("e", "type=afxdp queues=0", "queues", "1..=64");
        assert_refused("e", "type=afxdp queues=65", "queues", "1..=64");
        assert_refused("e", "type=afxdp queues=two", "queues", "not a number");
        assert_refused(
            "e",
            "type=afxdp xdp-mode=fast",
            "xdp-mode",
            "auto, native or generic",
        );
        assert_refused(
            "e",
            "type=afxdp ring-size=1000",
            "ring-size",
            "power of two",
        );
        assert_refused("e", "type=afxdp ring-size=32", "ring-size", "64..=65536");
        assert_refused("e", "type=afxdp frames=10", "frames", "64..=1048576");
    }

    #[test]
    fn type_defaults_to_afxdp_for_an_existing_interface_only() {
        let lo = args("lo", "ofport=7").unwrap();
        assert_eq!(lo.kind, PortKind::Afxdp(AfXdpOptions::default()));
        assert_eq!(lo.ofport, Some(7));
        assert_refused(
            "no-such-if0",
            "ofport=7",
            "type",
            "no interface \"no-such-if0\"",
        );
        assert_refused("x", "type=vpp", "type", "expected afxdp, afpacket");
    }

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn dpdk_is_refused_without_the_feature() {
        assert_refused(
            "d0",
            "type=dpdk dpdk-devargs=net_null0",
            "type",
            "built without the dpdk feature (cargo build --features dpdk)",
        );
        assert_refused("d0", "type=DPDK", "type", "--features dpdk");
    }

    #[cfg(feature = "dpdk")]
    #[test]
    fn dpdk_every_key() {
        let s = args(
            "d0",
            "type=dpdk dpdk-devargs=net_af_packet0,iface=veth1,qpairs=2 queues=2 rxd=512 txd=256",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::Dpdk(DpdkOptions {
                devargs: "net_af_packet0,iface=veth1,qpairs=2".to_string(),
                queues: 2,
                rxd: 512,
                txd: 256,
            })
        );
        round_trip(&s);
        let d = args("d1", "type=dpdk dpdk-devargs=0000:01:00.0").unwrap();
        assert_eq!(
            d.options_text(),
            "type=dpdk dpdk-devargs=0000:01:00.0 queues=1 rxd=1024 txd=1024"
        );
        round_trip(&d);
        assert_refused("d", "type=dpdk", "dpdk-devargs", "needs dpdk-devargs");
        assert_refused(
            "d",
            "type=dpdk dpdk-devargs=,iface=x",
            "dpdk-devargs",
            "device name first",
        );
        assert_refused("d", "type=dpdk dpdk-devargs=n queues=0", "queues", "1..=64");
        assert_refused("d", "type=dpdk dpdk-devargs=n rxd=8", "rxd", "32..=16384");
        assert_refused("d", "type=dpdk dpdk-devargs=n txd=x", "txd", "not a number");
        assert_refused(
            "d",
            "type=dpdk dpdk-devargs=n frames=64",
            "frames",
            "not an option of type=dpdk",
        );
        assert_refused(
            "e",
            "type=afxdp dpdk-devargs=n",
            "dpdk-devargs",
            "not an option of type=afxdp",
        );
    }

    #[test]
    fn afpacket_every_key() {
        let s = args(
            "eth1",
            "type=afpacket block-size=65536 blocks=16 frame-size=4096 block-timeout-ms=5",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::Afpacket(AfPacketOptions {
                block_size: 65536,
                blocks: 16,
                frame_size: 4096,
                block_timeout_ms: 5,
            })
        );
        round_trip(&s);
        let d = args("eth1", "type=afpacket").unwrap();
        assert_eq!(d.kind, PortKind::Afpacket(AfPacketOptions::default()));
        assert_eq!(
            d.options_text(),
            "type=afpacket block-size=1048576 blocks=8 frame-size=2048 block-timeout-ms=1"
        );
        assert_refused(
            "e",
            "type=afpacket block-size=5000",
            "block-size",
            "power of two",
        );
        assert_refused(
            "e",
            "type=afpacket block-size=2048",
            "block-size",
            "4096..=",
        );
        assert_refused("e", "type=afpacket blocks=0", "blocks", "1..=65536");
        assert_refused(
            "e",
            "type=afpacket block-timeout-ms=0",
            "block-timeout-ms",
            "1..=1000",
        );
        assert_refused(
            "e",
            "type=afpacket frame-size=128",
            "frame-size",
            "256..=65536",
        );
        assert_refused(
            "e",
            "type=afpacket block-size=4096 frame-size=8192",
            "block-size",
            "smaller than frame-size",
        );
        assert_refused(
            "e",
            "type=afpacket block-size=1073741824 blocks=4",
            "blocks",
            "2 GiB",
        );
    }

    #[test]
    fn tap_takes_only_common_keys_and_a_device_name() {
        let s = args("br0", "type=tap ofport=65279 vlan=access:0").unwrap();
        assert_eq!(s.kind, PortKind::Tap);
        assert_eq!(s.ofport, Some(65279));
        assert_eq!(s.vlan, Some(VlanSpec::Access(0)));
        assert_eq!(s.options_text(), "type=tap ofport=65279 vlan=access:0");
        round_trip(&s);
        assert_refused("a-very-long-tap-name", "type=tap", "name", "1 to 15 bytes");
        assert_refused(
            "br0",
            "type=tap queues=2",
            "queues",
            "not an option of type=tap",
        );
    }

    #[test]
    fn generator_profile_keeps_its_equals_and_commas() {
        let s = args(
            "gen0",
            "type=generator profile=size=64,flows=10,proto=udp rate=1000 count=5",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::Generator(GeneratorOptions {
                profile: "size=64,flows=10,proto=udp".to_string(),
                rate: Some(1000),
                count: Some(5),
            })
        );
        assert_eq!(
            s.options_text(),
            "type=generator profile=size=64,flows=10,proto=udp rate=1000 count=5"
        );
        round_trip(&s);
        let max = args("gen0", "type=generator profile=size=128 rate=MAX").unwrap();
        assert!(
            matches!(&max.kind, PortKind::Generator(o) if o.rate.is_none() && o.count.is_none())
        );
        round_trip(&max);
        // Whitespace inside the profile (TOML) is dropped.
        let toml = PortSpec::parse(
            "gen1",
            &[
                ("type".to_string(), "generator".to_string()),
                ("profile".to_string(), "size=64, flows=2".to_string()),
            ],
        )
        .unwrap();
        assert!(matches!(&toml.kind, PortKind::Generator(o) if o.profile == "size=64,flows=2"));
        round_trip(&toml);
    }

    #[test]
    fn generator_bad_values_name_the_key() {
        assert_refused("g", "type=generator", "profile", "needs a profile");
        assert_refused("g", "type=generator profile=size=10", "profile", "size");
        assert_refused(
            "g",
            "type=generator profile=colour=red",
            "profile",
            "colour",
        );
        assert_refused("g", "type=generator profile=size=64 rate=0", "rate", "1..=");
        assert_refused(
            "g",
            "type=generator profile=size=64 rate=fast",
            "rate",
            "not a number",
        );
        assert_refused(
            "g",
            "type=generator profile=size=64 count=0",
            "count",
            "1..=",
        );
        assert_refused(
            "g",
            "type=generator profile=size=64 count=-1",
            "count",
            "not a number",
        );
    }

    #[test]
    fn pcap_every_key() {
        let s = args(
            "cap0",
            "type=pcap rx=/tmp/in.pcap tx=/tmp/out.pcap loop=true",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::Pcap(PcapOptions {
                rx: Some(PathBuf::from("/tmp/in.pcap")),
                tx: Some(PathBuf::from("/tmp/out.pcap")),
                looping: true,
            })
        );
        assert_eq!(
            s.options_text(),
            "type=pcap rx=/tmp/in.pcap loop=true tx=/tmp/out.pcap"
        );
        round_trip(&s);
        let tx = args("cap1", "type=pcap tx=o.pcap").unwrap();
        assert_eq!(tx.options_text(), "type=pcap tx=o.pcap");
        round_trip(&tx);
        assert_refused("c", "type=pcap", "rx", "rx=FILE, tx=FILE or both");
        assert_refused(
            "c",
            "type=pcap tx=o.pcap loop=true",
            "loop",
            "needs rx=FILE",
        );
        assert_refused(
            "c",
            "type=pcap rx=i.pcap loop=maybe",
            "loop",
            "true or false",
        );
        assert_refused("c", "type=pcap rx=", "rx", "empty file name");
    }

    #[test]
    fn vhost_user_every_key() {
        let s = args(
            "vhu0",
            "type=vhost-user socket=/tmp/vhu0.sock mode=Client queues=4",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::VhostUser(VhostUserOptions {
                socket: PathBuf::from("/tmp/vhu0.sock"),
                mode: VhostUserMode::Client,
                queues: 4,
            })
        );
        assert_eq!(
            s.options_text(),
            "type=vhost-user socket=/tmp/vhu0.sock mode=client queues=4"
        );
        round_trip(&s);
        let d = args("vhu1", "type=vhost-user socket=v.sock").unwrap();
        assert_eq!(
            d.options_text(),
            "type=vhost-user socket=v.sock mode=server queues=1"
        );
        round_trip(&d);
        assert_refused("v", "type=vhost-user", "socket", "needs socket=PATH");
        assert_refused("v", "type=vhost-user socket=", "socket", "empty file name");
        assert_refused(
            "v",
            "type=vhost-user socket=s mode=both",
            "mode",
            "server or client",
        );
        assert_refused("v", "type=vhost-user socket=s queues=0", "queues", "1..=16");
        assert_refused(
            "v",
            "type=vhost-user socket=s queues=17",
            "queues",
            "1..=16",
        );
        assert_refused(
            "v",
            "type=vhost-user socket=s ring-size=2",
            "ring-size",
            "not an option of type=vhost-user",
        );
        assert_refused(
            "e",
            "type=afpacket socket=s",
            "socket",
            "not an option of type=afpacket",
        );
    }

    #[test]
    fn common_keys_and_their_errors() {
        let s = args(
            "g",
            "type=generator profile=size=64 ofport=1 vlan=trunk:30,10,20,10",
        )
        .unwrap();
        assert_eq!(s.ofport, Some(1));
        assert_eq!(s.vlan, Some(VlanSpec::Trunk(vec![10, 20, 30])));
        assert!(s.options_text().ends_with(" ofport=1 vlan=trunk:10,20,30"));
        round_trip(&s);
        let g = "type=generator profile=size=64";
        assert_refused("g", &format!("{g} ofport=0"), "ofport", "1..=65279");
        assert_refused("g", &format!("{g} ofport=65280"), "ofport", "1..=65279");
        assert_refused("g", &format!("{g} ofport=x"), "ofport", "not a number");
        assert_refused("g", &format!("{g} vlan=access:4096"), "vlan", "0..=4095");
        assert_refused("g", &format!("{g} vlan=access:x"), "vlan", "not a VLAN id");
        assert_refused("g", &format!("{g} vlan=trunk:"), "vlan", "at least one");
        assert_refused(
            "g",
            &format!("{g} vlan=native:5"),
            "vlan",
            "access:N or trunk",
        );
        assert_refused("g", &format!("{g} vlan=10"), "vlan", "access:N or trunk");
    }

    #[test]
    fn structural_errors_name_the_key() {
        let g = "type=generator profile=size=64";
        assert_refused("g", &format!("{g} colour=red"), "colour", "unknown option");
        let e = err("g", &format!("{g} colour=red"));
        assert!(
            e.contains("profile, rate, count, type, ofport, vlan"),
            "{e}"
        );
        assert_refused(
            "g",
            &format!("{g} rx=a.pcap"),
            "rx",
            "not an option of type=generator",
        );
        assert_refused(
            "g",
            &format!("{g} ofport=1 OFPORT=2"),
            "OFPORT",
            "given twice",
        );
        assert_refused(
            "g",
            &format!("{g} novalue"),
            "novalue",
            "expected key=value",
        );
        assert_refused("", g, "name", "empty port name");
        let e = PortSpec::parse("a b", &[]).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("name:")));
    }

    #[test]
    fn opens_generator_and_pcap_queues() {
        let g = args("gen0", "type=generator profile=size=64,flows=4 count=3").unwrap();
        let mut queues = g.open().unwrap();
        assert_eq!(queues.len(), 1);
        let mut got = 0;
        assert_eq!(queues[0].rx_burst(32, &mut |b| got += b.len()), 3);
        assert_eq!(got, 3 * 60);
        assert_eq!(queues[0].info().kind, "generator");

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.pcap");
        let p = args("cap0", &format!("type=pcap tx={}", out.display())).unwrap();
        let mut queues = p.open().unwrap();
        assert_eq!(queues[0].tx_burst(&[&[1u8; 60]]), 1);
        drop(queues);
        assert_eq!(crate::pcapio::read_pcap(&out).unwrap().len(), 1);

        let missing = args("cap1", "type=pcap rx=/nonexistent/in.pcap").unwrap();
        let e = missing
            .open()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("cap1") && e.contains("open rx file"), "{e}");
    }
}
