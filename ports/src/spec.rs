//! The one parser of port options, shared by the control socket (`add-port br0 IF type=afxdp
//! queues=2 xdp-mode=generic`) and the TOML configuration: a [`PortSpec`] is a port's name,
//! its type with that type's options, and the options every port has (`ofport`, `vlan`). It
//! checks every value when parsed (a refusal names the key and the reason), prints itself back
//! in one canonical form ([`PortSpec::options_text`]) that parses to the same spec, and opens
//! the port's queues ([`PortSpec::open`]). Without `type=`, a name that is an existing
//! interface means `type=afxdp`.

use std::fmt::Write as _;

#[cfg(feature = "dpdk")]
use crate::dpdk::options::DpdkOptions;
use crate::option::{bad, number};
pub use crate::option::{PortSpecError, MAX_QUEUES};
use crate::tap::TapPort;
use crate::tunnel::options::{TunnelOptions, TunnelType};
use crate::{afpacket, afxdp, generator, pcap, tunnel, vhost};
use crate::{AfPacketOptions, AfXdpOptions, GeneratorOptions, PcapOptions, VhostUserOptions};
use crate::{PortError, PortIo};

/// Highest OpenFlow port number a port may be given (`OFPP_MAX`).
pub const MAX_OFPORT: u32 = 0xfeff;
/// Highest VLAN id.
pub const MAX_VLAN: u16 = 4095;
/// A port's MTU when `mtu_request` is not set (Open vSwitch's default; a kernel interface
/// keeps the MTU it has then).
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest `mtu_request`: IPv4's minimum (RFC 791), as the kernel's `ETH_MIN_MTU`.
pub const MIN_MTU: u16 = 68;
/// Largest `mtu_request` of any port: OVS-DPDK's (`NETDEV_DPDK_MAX_PKT_LEN` 9728 less 26 for
/// the Ethernet header, CRC and two VLAN tags).
pub const MAX_MTU: u16 = 9702;
/// Largest `mtu_request` of an afxdp port whose socket has no XDP multi-buffer
/// (`XDP_USE_SG`, which the port asks for): a frame must fit one 2048-byte UMEM chunk after
/// the 256 bytes of headroom (1792 bytes), less 18 for the Ethernet header and a VLAN tag.
/// With multi-buffer an afxdp port takes [`MAX_MTU`]; which one it got is known once it is
/// open ([`check_frame_limit`]).
pub const AFXDP_SINGLE_BUFFER_MTU: u16 = (pipeline::MAX_PACKET - pipeline::FRAME_OVERHEAD) as u16;
/// Largest `mtu_request` of a vhost-user port: the ring code's largest frame less 18.
pub const VHOST_USER_MAX_MTU: u16 = (vhost_user::ring::MAX_FRAME - pipeline::FRAME_OVERHEAD) as u16;

/// The VLAN role of a port, for the NORMAL action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanSpec {
    /// Untagged frames belong to this VLAN (`vlan=access:N`).
    Access(u16),
    /// Tagged frames of these VLANs, ascending, no repeats (`vlan=trunk:1,2,3`).
    Trunk(Vec<u16>),
    /// A trunk of `trunks` (empty: every VLAN) whose untagged frames are VLAN `tag`, sent out
    /// tagged (`vlan=native-tagged:TAG[:1,2,3]`, Open vSwitch's `vlan_mode=native-tagged`).
    NativeTagged { tag: u16, trunks: Vec<u16> },
    /// The same, with the native VLAN's frames sent out untagged
    /// (`vlan=native-untagged:TAG[:1,2,3]`).
    NativeUntagged { tag: u16, trunks: Vec<u16> },
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
    /// `type=vxlan` or `type=geneve`: no queues; the datapath's tunnel nodes carry its packets.
    Tunnel(TunnelOptions),
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
            PortKind::Tunnel(o) => o.ty.name(),
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
    /// Requested MTU (`mtu_request`, as Open vSwitch's Interface column): frames longer than
    /// it plus [`pipeline::FRAME_OVERHEAD`] are dropped on receive and transmit, and a kernel
    /// interface is given it. `None`: [`DEFAULT_MTU`], or a kernel interface's own MTU.
    pub mtu_request: Option<u16>,
}

const COMMON_KEYS: [&str; 4] = ["type", "ofport", "vlan", "mtu-request"];

/// The largest `mtu_request` a port type carries.
pub fn max_mtu(kind: &PortKind) -> u16 {
    match kind {
        PortKind::VhostUser(_) => VHOST_USER_MAX_MTU,
        PortKind::Afxdp(o) if !o.multi_buffer => AFXDP_SINGLE_BUFFER_MAX_MTU,
        _ => MAX_MTU,
    }
}

/// The largest MTU of an afxdp port without XDP multi-buffer: a frame fits one UMEM frame of
/// 4,096 bytes after the 256 bytes of headroom (3822 + 18 = 3840).
pub const AFXDP_SINGLE_BUFFER_MAX_MTU: u16 = (afxdp::SINGLE_BUFFER_FRAME_SIZE
    - pipeline::buffer::HEADROOM
    - pipeline::FRAME_OVERHEAD) as u16;

/// Checks `mtu_request=value` for a port of `kind`; the refusal names `mtu_request`.
pub fn parse_mtu_request(kind: &PortKind, value: &str) -> Result<u16, PortSpecError> {
    if let PortKind::Tunnel(_) = kind {
        return Err(bad(
            "mtu_request",
            value,
            "a tunnel port sends through its underlay port: set mtu_request there (inner \
             MTU plus 50 for VXLAN or Geneve)",
        ));
    }
    let mtu = number("mtu_request", value, MIN_MTU, MAX_MTU)?;
    let max = max_mtu(kind);
    if mtu > max {
        let why = match kind {
            PortKind::Afxdp(_) => format!(
                "an afxdp port with multi-buffer=false carries mtu_request at most {max} (a \
                 frame fits one 4096-byte UMEM frame after 256 bytes of headroom)"
            ),
            _ => format!("a {} port carries mtu_request at most {max}", kind.name()),
        };
        return Err(bad("mtu_request", value, why));
    }
    Ok(mtu)
}

/// Checks `mtu_request` against what an open port's queues take
/// ([`crate::PortIo::max_frame_len`], the least of them): its frames, MTU + 18, must fit.
/// The refusal names `mtu_request` and says why for an afxdp port.
pub fn check_frame_limit(
    kind: &PortKind,
    mtu: u16,
    max_frame: Option<usize>,
) -> Result<(), PortSpecError> {
    let Some(max_frame) = max_frame else {
        return Ok(());
    };
    let max = max_frame
        .saturating_sub(pipeline::FRAME_OVERHEAD)
        .min(MAX_MTU as usize);
    if usize::from(mtu) <= max {
        return Ok(());
    }
    let why = match kind {
        PortKind::Afxdp(_) if max_frame < afxdp::MAX_CHAIN_FRAME => format!(
            "this afxdp port runs without XDP multi-buffer (the kernel refused XDP_USE_SG, or \
             multi-buffer=false), so a frame must fit one UMEM frame less headroom \
             ({max_frame} bytes): mtu_request at most {max}"
        ),
        _ => format!(
            "a {} port takes frames of at most {max_frame} bytes: mtu_request at most {max}",
            kind.name()
        ),
    };
    Err(bad("mtu_request", &mtu.to_string(), why))
}

/// The keys of each port type (a type not listed takes only the common ones).
fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "afxdp" => afxdp::options::KEYS,
        "afpacket" => afpacket::options::KEYS,
        "generator" => generator::options::KEYS,
        "pcap" => pcap::options::KEYS,
        "vhost-user" => vhost::options::KEYS,
        #[cfg(feature = "dpdk")]
        "dpdk" => crate::dpdk::options::KEYS,
        "vxlan" | "geneve" => tunnel::options::KEYS,
        _ => &[],
    }
}

/// The port type `type=` names, or afxdp when it is not given and `name` is an interface.
fn kind_name(name: &str, given: Option<&str>) -> Result<&'static str, PortSpecError> {
    let Some(t) = given else {
        if crate::sys::if_index(name).is_some() {
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
        "vxlan" => "vxlan",
        "geneve" => "geneve",
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
                    "expected afxdp, afpacket, tap, generator, pcap, vhost-user, vxlan, geneve \
                     or dpdk"
                } else {
                    "expected afxdp, afpacket, tap, generator, pcap, vhost-user, vxlan or geneve"
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
            "vxlan",
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

/// A key as compared: lower case, `_` for `-` (TOML style).
fn normal_key(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('_', "-")
}

/// VLAN ids as `vlan=` lists them: `10,20,30`.
fn ids(list: &[u16]) -> String {
    let ids: Vec<String> = list.iter().map(u16::to_string).collect();
    ids.join(",")
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
    let list = |ids: &str| -> Result<Vec<u16>, PortSpecError> {
        let mut list = ids
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(vid)
            .collect::<Result<Vec<u16>, _>>()?;
        list.sort_unstable();
        list.dedup();
        Ok(list)
    };
    let (mode, rest) = value.split_once(':').unwrap_or((value, ""));
    match mode.to_ascii_lowercase().as_str() {
        "access" if !rest.is_empty() => Ok(VlanSpec::Access(vid(rest)?)),
        "trunk" => {
            let trunks = list(rest)?;
            if trunks.is_empty() {
                return Err(bad("vlan", value, "a trunk needs at least one VLAN id"));
            }
            Ok(VlanSpec::Trunk(trunks))
        }
        m @ ("native-tagged" | "native-untagged") if !rest.is_empty() => {
            let (tag, ids) = rest.split_once(':').unwrap_or((rest, ""));
            let (tag, trunks) = (vid(tag)?, list(ids)?);
            Ok(if m == "native-tagged" {
                VlanSpec::NativeTagged { tag, trunks }
            } else {
                VlanSpec::NativeUntagged { tag, trunks }
            })
        }
        _ => Err(bad(
            "vlan",
            value,
            "expected access:N, trunk:N,N,..., native-tagged:N[:N,N,...] or \
             native-untagged:N[:N,N,...]",
        )),
    }
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
            crate::tap::check_name(name).map_err(|reason| PortSpecError::Invalid {
                key: "name".to_string(),
                reason: format!("{name:?} cannot be a tap device: {reason}"),
            })?;
        }
        check_keys(kind_name, options)?;
        let kind = match kind_name {
            "afxdp" => PortKind::Afxdp(AfXdpOptions::parse(&given)?),
            "afpacket" => PortKind::Afpacket(AfPacketOptions::parse(&given)?),
            "tap" => PortKind::Tap,
            "vhost-user" => PortKind::VhostUser(VhostUserOptions::parse(&given)?),
            "generator" => PortKind::Generator(GeneratorOptions::parse(&given)?),
            #[cfg(feature = "dpdk")]
            "dpdk" => PortKind::Dpdk(DpdkOptions::parse(&given)?),
            "vxlan" => PortKind::Tunnel(TunnelOptions::parse(TunnelType::Vxlan, &given)?),
            "geneve" => PortKind::Tunnel(TunnelOptions::parse(TunnelType::Geneve, &given)?),
            _ => PortKind::Pcap(PcapOptions::parse(&given)?),
        };
        let ofport = given("ofport")
            .map(|v| number("ofport", v, 1, MAX_OFPORT))
            .transpose()?;
        let vlan = given("vlan").map(parse_vlan).transpose()?;
        let mtu_request = given("mtu-request")
            .map(|v| parse_mtu_request(&kind, v))
            .transpose()?;
        Ok(PortSpec {
            name: name.to_string(),
            kind,
            ofport,
            vlan,
            mtu_request,
        })
    }

    /// The options in canonical form, every type option with its value (defaults included),
    /// then `ofport` and `vlan` when set: `type=afxdp queues=1 xdp-mode=auto ring-size=2048
    /// frames=4096 ofport=3`. Parses back to the same spec.
    pub fn options_text(&self) -> String {
        let mut s = format!("type={}", self.kind.name());
        match &self.kind {
            PortKind::Afxdp(o) => o.write(&mut s),
            PortKind::Afpacket(o) => o.write(&mut s),
            PortKind::Tap => {}
            PortKind::VhostUser(o) => o.write(&mut s),
            PortKind::Generator(o) => o.write(&mut s),
            PortKind::Pcap(o) => o.write(&mut s),
            #[cfg(feature = "dpdk")]
            PortKind::Dpdk(o) => o.write(&mut s),
            PortKind::Tunnel(o) => o.write(&mut s),
        }
        // Writing to a String cannot fail.
        if let Some(p) = self.ofport {
            let _ = write!(s, " ofport={p}");
        }
        match &self.vlan {
            Some(VlanSpec::Access(v)) => {
                let _ = write!(s, " vlan=access:{v}");
            }
            Some(VlanSpec::Trunk(list)) => {
                let _ = write!(s, " vlan=trunk:{}", ids(list));
            }
            Some(VlanSpec::NativeTagged { tag, trunks }) => {
                let _ = write!(s, " vlan=native-tagged:{tag}");
                if !trunks.is_empty() {
                    let _ = write!(s, ":{}", ids(trunks));
                }
            }
            Some(VlanSpec::NativeUntagged { tag, trunks }) => {
                let _ = write!(s, " vlan=native-untagged:{tag}");
                if !trunks.is_empty() {
                    let _ = write!(s, ":{}", ids(trunks));
                }
            }
            None => {}
        }
        if let Some(mtu) = self.mtu_request {
            let _ = write!(s, " mtu_request={mtu}");
        }
        s
    }

    /// The MTU frames are checked against: `mtu_request`, else `kernel` (the interface's
    /// own, for kernel ports), else [`DEFAULT_MTU`].
    pub fn mtu(&self, kernel: Option<u16>) -> u16 {
        self.mtu_request.or(kernel).unwrap_or(DEFAULT_MTU)
    }

    /// Opens the port: one [`PortIo`] per queue (afxdp and dpdk: queues `0..queues`;
    /// vhost-user: one per queue pair; tunnels none; every other type has one). Errors name the port and
    /// the step.
    pub fn open(&self) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let name = self.name.as_str();
        match &self.kind {
            PortKind::Afxdp(o) => o.open(name),
            PortKind::Afpacket(o) => o.open(name, self.mtu_request),
            PortKind::Tap => Ok(vec![Box::new(TapPort::open(name)?)]),
            PortKind::VhostUser(o) => o.open(name),
            PortKind::Generator(o) => o.open(name),
            PortKind::Pcap(o) => o.open(name),
            #[cfg(feature = "dpdk")]
            PortKind::Dpdk(o) => o.open(name),
            PortKind::Tunnel(_) => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afxdp::XdpModeRequest;
    use crate::VhostUserMode;
    use std::path::PathBuf;

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
            "type=afxdp queues=2 xdp-mode=generic ring-size=1024 frames=8192 multi-buffer=FALSE",
        )
        .unwrap();
        assert_eq!(
            s.kind,
            PortKind::Afxdp(AfXdpOptions {
                queues: 2,
                xdp_mode: XdpModeRequest::Generic,
                ring_size: 1024,
                frames: 8192,
                multi_buffer: false,
            })
        );
        assert_eq!(
            s.options_text(),
            "type=afxdp queues=2 xdp-mode=generic ring-size=1024 frames=8192 multi-buffer=false"
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
            "type=afxdp queues=1 xdp-mode=auto ring-size=2048 frames=4096 multi-buffer=true"
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
        let expected = "access:N, trunk:N,N,..., native-tagged";
        assert_refused("g", &format!("{g} vlan=native:5"), "vlan", expected);
        assert_refused("g", &format!("{g} vlan=10"), "vlan", expected);
        assert_refused("g", &format!("{g} vlan=access"), "vlan", expected);
        assert_refused("g", &format!("{g} vlan=native-tagged"), "vlan", expected);
        assert_refused(
            "g",
            &format!("{g} vlan=native-untagged:x"),
            "vlan",
            "not a VLAN id",
        );
        assert_refused(
            "g",
            &format!("{g} vlan=native-tagged:5:9999"),
            "vlan",
            "0..=4095",
        );
        for (text, spec) in [
            (
                "vlan=native-tagged:5",
                VlanSpec::NativeTagged {
                    tag: 5,
                    trunks: vec![],
                },
            ),
            (
                "vlan=native-untagged:5:30,10",
                VlanSpec::NativeUntagged {
                    tag: 5,
                    trunks: vec![10, 30],
                },
            ),
        ] {
            let s = args("g", &format!("{g} {text}")).unwrap();
            assert_eq!(s.vlan, Some(spec), "{text}");
            round_trip(&s);
        }
    }

    #[test]
    fn mtu_request_is_checked_per_type_and_prints_back() {
        let g = "type=generator profile=size=64";
        let s = args("g", &format!("{g} mtu_request=9000")).unwrap();
        assert_eq!(
            (s.mtu_request, s.mtu(None), s.mtu(Some(1400))),
            (Some(9000), 9000, 9000)
        );
        assert!(s.options_text().ends_with(" mtu_request=9000"));
        round_trip(&s);
        // The TOML spelling with a dash is the same key.
        assert_eq!(
            args("g", &format!("{g} mtu-request=68"))
                .unwrap()
                .mtu_request,
            Some(68)
        );
        let plain = args("g", g).unwrap();
        assert_eq!((plain.mtu_request, plain.mtu(None)), (None, DEFAULT_MTU));
        assert_eq!(
            plain.mtu(Some(1400)),
            1400,
            "a kernel interface keeps its own"
        );
        assert_refused(
            "g",
            &format!("{g} mtu_request=67"),
            "mtu_request",
            "68..=9702",
        );
        assert_refused(
            "g",
            &format!("{g} mtu_request=9703"),
            "mtu_request",
            "68..=9702",
        );
        assert_refused(
            "g",
            &format!("{g} mtu_request=x"),
            "mtu_request",
            "not a number",
        );
        let vhost = "type=vhost-user socket=/tmp/x.sock";
        assert_eq!(
            args("v", &format!("{vhost} mtu_request=9198"))
                .unwrap()
                .mtu_request,
            Some(9198)
        );
        assert_refused(
            "v",
            &format!("{vhost} mtu_request=9199"),
            "mtu_request",
            "at most 9198",
        );
        let afxdp = args("lo", "type=afxdp mtu_request=9000").unwrap();
        assert_eq!(afxdp.mtu_request, Some(9000), "multi-buffer is asked for");
        // Once open, the socket says what it takes: without multi-buffer one 4 KiB UMEM frame.
        let single = Some(afxdp::SINGLE_BUFFER_FRAME_SIZE - pipeline::buffer::HEADROOM);
        assert!(check_frame_limit(&afxdp.kind, 3822, single).is_ok());
        let e = check_frame_limit(&afxdp.kind, 3823, single)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mtu_request:"), "{e}");
        assert!(
            e.contains("XDP_USE_SG") && e.contains("at most 3822"),
            "{e}"
        );
        // Asked without multi-buffer: refused before anything opens.
        let off = "type=afxdp multi-buffer=false";
        assert_eq!(
            args("lo", &format!("{off} mtu_request=3822"))
                .unwrap()
                .mtu_request,
            Some(3822)
        );
        assert_refused(
            "lo",
            &format!("{off} mtu_request=3823"),
            "mtu_request",
            "multi-buffer=false carries mtu_request at most 3822",
        );
        assert_refused(
            "lo",
            "type=afxdp multi-buffer=no",
            "multi-buffer",
            "true or false",
        );
        let single_spec = args("lo", off).unwrap();
        round_trip(&single_spec);
        let chained = Some(crate::afxdp::MAX_CHAIN_FRAME);
        assert!(check_frame_limit(&afxdp.kind, MAX_MTU, chained).is_ok());
        assert!(check_frame_limit(&afxdp.kind, MAX_MTU, None).is_ok());
        assert_refused(
            "vx",
            "type=vxlan remote_ip=10.0.0.1 mtu_request=1450",
            "mtu_request",
            "underlay port",
        );
        // An afpacket port's transmit frames grow to hold its MTU.
        let a = args("lo", "type=afpacket mtu_request=9000").unwrap();
        let PortKind::Afpacket(o) = &a.kind else {
            panic!("{a:?}")
        };
        assert_eq!(
            (o.frame_size_for(None), o.frame_size_for(Some(1500))),
            (2048, 2048)
        );
        assert_eq!(o.frame_size_for(Some(9000)), 16384);
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
        assert_eq!(crate::pcap::file::read_pcap(&out).unwrap().len(), 1);

        let missing = args("cap1", "type=pcap rx=/nonexistent/in.pcap").unwrap();
        let e = missing
            .open()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("port \"cap1\": rx file: /nonexistent/in.pcap: cannot read"),
            "{e}"
        );
    }
}
