//! The data model of a rule: what it matches ([`Match`] over [`Fields`], the packet key plus the
//! translation context registers and metadata), what it does ([`Action`]), and a whole rule as
//! written in a flow mod ([`FlowSpec`]). Parsing lives in `parse`, printing in `print`.

use std::hash::{Hash, Hasher};

use pipeline::flowkey::{hash_words, VLAN_PCP_SHIFT, VLAN_PRESENT, VLAN_VID_MASK};
use pipeline::{DpAction, FlowKey};

/// Number of registers (`reg0`..`reg7`), 32 bits each as in Open vSwitch.
pub const N_REGS: usize = 8;
/// Number of OpenFlow tables (0..=254; 255 means "all tables" on the wire).
pub const N_TABLES: usize = 255;
/// Priority of a rule that does not say (OpenFlow's `OFP_DEFAULT_PRIORITY`).
pub const DEFAULT_PRIORITY: u16 = 32768;
/// The bridge's own port (`LOCAL`).
pub const OFPP_LOCAL: u32 = 0xffff_fffe;

/// Everything a rule can match: the packet's key and the translation context.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Fields {
    pub key: FlowKey,
    pub regs: [u32; N_REGS],
    pub metadata: u64,
}

impl Fields {
    /// Context fields zeroed, as at the start of a translation.
    pub fn from_key(key: &FlowKey) -> Fields {
        Fields {
            key: *key,
            ..Fields::default()
        }
    }

    /// `self & mask`.
    #[inline]
    pub fn masked(&self, mask: &Fields) -> Fields {
        let mut regs = [0u32; N_REGS];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = self.regs[i] & mask.regs[i];
        }
        Fields {
            key: self.key.masked(&mask.key),
            regs,
            metadata: self.metadata & mask.metadata,
        }
    }

    /// OR `other` into `self` (mask union).
    pub fn or_assign(&mut self, other: &Fields) {
        self.key.or_assign(&other.key);
        for (r, o) in self.regs.iter_mut().zip(other.regs) {
            *r |= o;
        }
        self.metadata |= other.metadata;
    }

    /// `self & other`.
    pub fn and(&self, other: &Fields) -> Fields {
        self.masked(other)
    }

    /// True when no bit is set.
    pub fn is_zero(&self) -> bool {
        self.key.is_zero() && self.regs.iter().all(|r| *r == 0) && self.metadata == 0
    }

    /// True when every bit of `self` is also set in `other` (as masks: `self` is the less
    /// specific).
    pub fn is_subset_of(&self, other: &Fields) -> bool {
        self.masked(other) == *self
    }

    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.key
            .words()
            .iter()
            .copied()
            .chain(self.regs.chunks(2).map(|c| {
                let hi = c.get(1).copied().unwrap_or(0);
                u64::from(c[0]) | (u64::from(hi) << 32)
            }))
            .chain(std::iter::once(self.metadata))
    }
}

impl Hash for Fields {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(hash_words(self.words()));
    }
}

/// A rule's match: `value` holds only bits that are set in `mask`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct Match {
    pub value: Fields,
    pub mask: Fields,
}

impl Match {
    /// The match that matches everything.
    pub fn catch_all() -> Match {
        Match::default()
    }

    /// True when `f` is matched.
    #[inline]
    pub fn matches(&self, f: &Fields) -> bool {
        f.masked(&self.mask) == self.value
    }

    /// True when every packet `other` matches is matched by `self` as well, i.e. `other` is at
    /// least as specific (the OpenFlow rule for non-strict modify and delete).
    pub fn covers(&self, other: &Match) -> bool {
        self.mask.is_subset_of(&other.mask) && other.value.masked(&self.mask) == self.value
    }

    /// Merges `other` into `self`; `Err(())` when they disagree on a bit both constrain.
    pub(crate) fn merge(&mut self, other: &Match) -> Result<(), ()> {
        let common = self.mask.and(&other.mask);
        if self.value.masked(&common) != other.value.masked(&common) {
            return Err(());
        }
        self.value.or_assign(&other.value);
        self.mask.or_assign(&other.mask);
        Ok(())
    }

    // Protocol predicates used by prerequisites and printing.
    pub(crate) fn dl_type_is(&self, t: u16) -> bool {
        self.mask.key.dl_type == 0xffff && self.value.key.dl_type == t
    }
    pub(crate) fn is_ipv4(&self) -> bool {
        self.dl_type_is(pipeline::flowkey::ethertype::IPV4)
    }
    pub(crate) fn is_ipv6(&self) -> bool {
        self.dl_type_is(pipeline::flowkey::ethertype::IPV6)
    }
    pub(crate) fn is_arp(&self) -> bool {
        self.dl_type_is(pipeline::flowkey::ethertype::ARP)
    }
    pub(crate) fn is_ip_any(&self) -> bool {
        self.is_ipv4() || self.is_ipv6()
    }
    pub(crate) fn proto_is(&self, p: u8) -> bool {
        self.is_ip_any() && self.mask.key.nw_proto == 0xff && self.value.key.nw_proto == p
    }
}

/// A field that actions can write (`set_field`, `load`, `move`) or read (`move`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Field {
    EthSrc,
    EthDst,
    Ipv4Src,
    Ipv4Dst,
    Ipv6Src,
    Ipv6Dst,
    TcpSrc,
    TcpDst,
    UdpSrc,
    UdpDst,
    SctpSrc,
    SctpDst,
    VlanVid,
    VlanPcp,
    IpDscp,
    IpEcn,
    NwTtl,
    Reg(u8),
    Metadata,
}

/// What a rule's match must establish before a field may be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Prereq {
    None,
    Ipv4,
    Ipv6,
    IpAny,
    Ipv4OrArp,
    Arp,
    L4,
    Proto(u8),
    IcmpAny,
    Icmp6,
    NdTarget,
    NdSll,
    NdTll,
}

impl Prereq {
    pub(crate) fn holds(self, m: &Match) -> bool {
        use pipeline::flowkey::ipproto;
        let icmp6_type = |t: u16| {
            m.proto_is(ipproto::ICMPV6) && m.mask.key.tp_src == 0xffff && m.value.key.tp_src == t
        };
        match self {
            Prereq::None => true,
            Prereq::Ipv4 => m.is_ipv4(),
            Prereq::Ipv6 => m.is_ipv6(),
            Prereq::IpAny => m.is_ip_any(),
            Prereq::Ipv4OrArp => m.is_ipv4() || m.is_arp(),
            Prereq::Arp => m.is_arp(),
            Prereq::L4 => {
                m.proto_is(ipproto::TCP) || m.proto_is(ipproto::UDP) || m.proto_is(ipproto::SCTP)
            }
            Prereq::Proto(p) => m.proto_is(p),
            Prereq::IcmpAny => {
                (m.is_ipv4() && m.proto_is(ipproto::ICMP))
                    || (m.is_ipv6() && m.proto_is(ipproto::ICMPV6))
            }
            Prereq::Icmp6 => m.is_ipv6() && m.proto_is(ipproto::ICMPV6),
            Prereq::NdTarget => m.is_ipv6() && (icmp6_type(135) || icmp6_type(136)),
            Prereq::NdSll => m.is_ipv6() && icmp6_type(135),
            Prereq::NdTll => m.is_ipv6() && icmp6_type(136),
        }
    }

    /// The explanation of an unmet prerequisite, as it appears in errors.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Prereq::None => "",
            Prereq::Ipv4 => "requires ip (dl_type=0x0800)",
            Prereq::Ipv6 => "requires ipv6 (dl_type=0x86dd)",
            Prereq::IpAny => "requires ip or ipv6 (set dl_type first)",
            Prereq::Ipv4OrArp => "requires ip or arp (dl_type=0x0800 or 0x0806)",
            Prereq::Arp => "requires arp (dl_type=0x0806)",
            Prereq::L4 => "requires tcp, udp or sctp (set dl_type and nw_proto first)",
            Prereq::Proto(6) => "requires tcp or tcp6 (set dl_type and nw_proto=6 first)",
            Prereq::Proto(17) => "requires udp or udp6 (set dl_type and nw_proto=17 first)",
            Prereq::Proto(_) => "requires sctp or sctp6 (set dl_type and nw_proto=132 first)",
            Prereq::IcmpAny => "requires icmp or icmp6",
            Prereq::Icmp6 => "requires icmp6 (dl_type=0x86dd,nw_proto=58)",
            Prereq::NdTarget => "requires icmp6 with icmp_type=135 or 136",
            Prereq::NdSll => "requires icmp6 with icmp_type=135",
            Prereq::NdTll => "requires icmp6 with icmp_type=136",
        }
    }
}

fn mac_to_u128(b: [u8; 6]) -> u128 {
    b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x))
}

fn u128_to_mac(v: u128) -> [u8; 6] {
    let mut b = [0u8; 6];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (v >> (8 * (5 - i))) as u8;
    }
    b
}

impl Field {
    /// The canonical (OXM-style) name, as printed.
    pub fn name(self) -> &'static str {
        const REGS: [&str; N_REGS] = [
            "reg0", "reg1", "reg2", "reg3", "reg4", "reg5", "reg6", "reg7",
        ];
        match self {
            Field::EthSrc => "eth_src",
            Field::EthDst => "eth_dst",
            Field::Ipv4Src => "ip_src",
            Field::Ipv4Dst => "ip_dst",
            Field::Ipv6Src => "ipv6_src",
            Field::Ipv6Dst => "ipv6_dst",
            Field::TcpSrc => "tcp_src",
            Field::TcpDst => "tcp_dst",
            Field::UdpSrc => "udp_src",
            Field::UdpDst => "udp_dst",
            Field::SctpSrc => "sctp_src",
            Field::SctpDst => "sctp_dst",
            Field::VlanVid => "vlan_vid",
            Field::VlanPcp => "vlan_pcp",
            Field::IpDscp => "ip_dscp",
            Field::IpEcn => "ip_ecn",
            Field::NwTtl => "nw_ttl",
            Field::Reg(i) => REGS[usize::from(i) % N_REGS],
            Field::Metadata => "metadata",
        }
    }

    /// Looks a field up by any of the names ovs-ofctl accepts for it.
    pub fn from_name(name: &str) -> Option<Field> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "eth_src" | "dl_src" | "nxm_of_eth_src" => Field::EthSrc,
            "eth_dst" | "dl_dst" | "nxm_of_eth_dst" => Field::EthDst,
            "ip_src" | "ipv4_src" | "nw_src" | "nxm_of_ip_src" => Field::Ipv4Src,
            "ip_dst" | "ipv4_dst" | "nw_dst" | "nxm_of_ip_dst" => Field::Ipv4Dst,
            "ipv6_src" | "nxm_nx_ipv6_src" => Field::Ipv6Src,
            "ipv6_dst" | "nxm_nx_ipv6_dst" => Field::Ipv6Dst,
            "tcp_src" | "nxm_of_tcp_src" => Field::TcpSrc,
            "tcp_dst" | "nxm_of_tcp_dst" => Field::TcpDst,
            "udp_src" | "nxm_of_udp_src" => Field::UdpSrc,
            "udp_dst" | "nxm_of_udp_dst" => Field::UdpDst,
            "sctp_src" => Field::SctpSrc,
            "sctp_dst" => Field::SctpDst,
            "vlan_vid" => Field::VlanVid,
            "vlan_pcp" => Field::VlanPcp,
            "ip_dscp" => Field::IpDscp,
            "ip_ecn" | "nw_ecn" => Field::IpEcn,
            "nw_ttl" | "nxm_nx_ip_ttl" => Field::NwTtl,
            "metadata" | "oxm_of_metadata" => Field::Metadata,
            _ => {
                let idx = n
                    .strip_prefix("reg")
                    .or_else(|| n.strip_prefix("nxm_nx_reg"))?;
                let i: u8 = idx.parse().ok()?;
                if usize::from(i) >= N_REGS || idx.len() != 1 {
                    return None;
                }
                Field::Reg(i)
            }
        })
    }

    /// Width in bits.
    pub fn width(self) -> u32 {
        match self {
            Field::EthSrc | Field::EthDst => 48,
            Field::Ipv4Src | Field::Ipv4Dst | Field::Reg(_) => 32,
            Field::Ipv6Src | Field::Ipv6Dst => 128,
            Field::TcpSrc
            | Field::TcpDst
            | Field::UdpSrc
            | Field::UdpDst
            | Field::SctpSrc
            | Field::SctpDst => 16,
            Field::VlanVid => 12,
            Field::VlanPcp => 3,
            Field::IpDscp => 6,
            Field::IpEcn => 2,
            Field::NwTtl => 8,
            Field::Metadata => 64,
        }
    }

    /// All-ones value of the field's width.
    pub fn max_value(self) -> u128 {
        ones(self.width())
    }

    /// True for fields of the packet (writing them emits a datapath action).
    pub fn is_packet_field(self) -> bool {
        !matches!(self, Field::Reg(_) | Field::Metadata)
    }

    pub(crate) fn prereq(self) -> Prereq {
        use pipeline::flowkey::ipproto;
        match self {
            Field::Ipv4Src | Field::Ipv4Dst => Prereq::Ipv4,
            Field::Ipv6Src | Field::Ipv6Dst => Prereq::Ipv6,
            Field::TcpSrc | Field::TcpDst => Prereq::Proto(ipproto::TCP),
            Field::UdpSrc | Field::UdpDst => Prereq::Proto(ipproto::UDP),
            Field::SctpSrc | Field::SctpDst => Prereq::Proto(ipproto::SCTP),
            Field::IpDscp | Field::IpEcn | Field::NwTtl => Prereq::IpAny,
            _ => Prereq::None,
        }
    }

    /// Reads the field.
    pub fn get(self, f: &Fields) -> u128 {
        let k = &f.key;
        match self {
            Field::EthSrc => mac_to_u128(k.dl_src),
            Field::EthDst => mac_to_u128(k.dl_dst),
            Field::Ipv4Src => u128::from(k.nw_src),
            Field::Ipv4Dst => u128::from(k.nw_dst),
            Field::Ipv6Src => u128::from_be_bytes(k.ipv6_src),
            Field::Ipv6Dst => u128::from_be_bytes(k.ipv6_dst),
            Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => u128::from(k.tp_src),
            Field::TcpDst | Field::UdpDst | Field::SctpDst => u128::from(k.tp_dst),
            Field::VlanVid => u128::from(k.vlan_tci & VLAN_VID_MASK),
            Field::VlanPcp => u128::from(k.vlan_tci >> VLAN_PCP_SHIFT),
            Field::IpDscp => u128::from(k.nw_tos >> 2),
            Field::IpEcn => u128::from(k.nw_tos & 3),
            Field::NwTtl => u128::from(k.nw_ttl),
            Field::Reg(i) => u128::from(f.regs[usize::from(i) % N_REGS]),
            Field::Metadata => u128::from(f.metadata),
        }
    }

    /// Writes the field (the value is truncated to the field's width).
    pub fn set(self, f: &mut Fields, v: u128) {
        let v = v & self.max_value();
        let k = &mut f.key;
        match self {
            Field::EthSrc => k.dl_src = u128_to_mac(v),
            Field::EthDst => k.dl_dst = u128_to_mac(v),
            Field::Ipv4Src => k.nw_src = v as u32,
            Field::Ipv4Dst => k.nw_dst = v as u32,
            Field::Ipv6Src => k.ipv6_src = v.to_be_bytes(),
            Field::Ipv6Dst => k.ipv6_dst = v.to_be_bytes(),
            Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => k.tp_src = v as u16,
            Field::TcpDst | Field::UdpDst | Field::SctpDst => k.tp_dst = v as u16,
            Field::VlanVid => k.vlan_tci = (k.vlan_tci & !VLAN_VID_MASK) | v as u16,
            Field::VlanPcp => {
                k.vlan_tci = (k.vlan_tci & !(7 << VLAN_PCP_SHIFT)) | ((v as u16) << VLAN_PCP_SHIFT)
            }
            Field::IpDscp => k.nw_tos = (k.nw_tos & 3) | ((v as u8) << 2),
            Field::IpEcn => k.nw_tos = (k.nw_tos & 0xfc) | v as u8,
            Field::NwTtl => k.nw_ttl = v as u8,
            Field::Reg(i) => f.regs[usize::from(i) % N_REGS] = v as u32,
            Field::Metadata => f.metadata = v as u64,
        }
    }

    /// Marks `bits` of the field as consulted in a mask.
    pub fn or_mask(self, mask: &mut Fields, bits: u128) {
        let cur = self.get(mask);
        self.set(mask, cur | bits);
    }

    /// The datapath action that writes value `v` to this packet field (`None` for context
    /// fields). VLAN fields need a present header; translation handles the push.
    pub(crate) fn dp_action(self, v: u128) -> Option<DpAction> {
        Some(match self {
            Field::EthSrc => DpAction::SetEthSrc(u128_to_mac(v)),
            Field::EthDst => DpAction::SetEthDst(u128_to_mac(v)),
            Field::Ipv4Src => DpAction::SetIpv4Src(v as u32),
            Field::Ipv4Dst => DpAction::SetIpv4Dst(v as u32),
            Field::Ipv6Src => DpAction::SetIpv6Src(v.to_be_bytes()),
            Field::Ipv6Dst => DpAction::SetIpv6Dst(v.to_be_bytes()),
            Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => DpAction::SetTpSrc(v as u16),
            Field::TcpDst | Field::UdpDst | Field::SctpDst => DpAction::SetTpDst(v as u16),
            Field::VlanVid => DpAction::SetVlanVid(v as u16),
            Field::VlanPcp => DpAction::SetVlanPcp(v as u8),
            Field::IpDscp => DpAction::SetIpDscp((v as u8) << 2),
            Field::IpEcn => DpAction::SetIpEcn(v as u8),
            Field::NwTtl => DpAction::SetIpTtl(v as u8),
            Field::Reg(_) | Field::Metadata => return None,
        })
    }
}

/// `n` low bits set.
pub(crate) fn ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// A bit range of a field, `field[start..end]` in the syntax (inclusive end).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct FieldRef {
    pub field: Field,
    pub start: u32,
    pub n_bits: u32,
}

impl FieldRef {
    /// The whole field.
    pub fn whole(field: Field) -> FieldRef {
        FieldRef {
            field,
            start: 0,
            n_bits: field.width(),
        }
    }

    pub fn is_whole(&self) -> bool {
        self.start == 0 && self.n_bits == self.field.width()
    }

    /// The bits of the field this range covers.
    pub fn bit_mask(&self) -> u128 {
        ones(self.n_bits) << self.start
    }

    pub fn read(&self, f: &Fields) -> u128 {
        (self.field.get(f) >> self.start) & ones(self.n_bits)
    }

    /// Writes `v` into the range, keeping the field's other bits.
    pub fn write(&self, f: &mut Fields, v: u128) {
        let m = self.bit_mask();
        let cur = self.field.get(f);
        self.field.set(f, (cur & !m) | ((v << self.start) & m));
    }
}

/// One OpenFlow action (or instruction: `goto_table`, `write_metadata`).
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub enum Action {
    /// `output:N` or a bare port number.
    Output(u32),
    /// Back out of the input port.
    InPort,
    /// The L2 learning switch.
    Normal,
    /// Every port except the input port and ports marked no-flood.
    Flood,
    /// Every port except the input port.
    All,
    /// The bridge's own port, if it has one.
    Local,
    Controller,
    /// `set_field:VALUE->FIELD` and the `mod_*` shorthands.
    SetField {
        field: Field,
        value: u128,
    },
    /// `load:VALUE->FIELD[a..b]`.
    Load {
        dst: FieldRef,
        value: u128,
    },
    /// `move:SRC[a..b]->DST[c..d]`.
    Move {
        src: FieldRef,
        dst: FieldRef,
    },
    /// `push_vlan:ETHERTYPE`.
    PushVlan(u16),
    /// `pop_vlan` / `strip_vlan`.
    PopVlan,
    DecTtl,
    /// `resubmit(port,table)`: a missing port means the packet's in_port, a missing table the
    /// current table.
    Resubmit {
        port: Option<u32>,
        table: Option<u8>,
    },
    /// Continue in a later table after this rule's actions; always last.
    GotoTable(u8),
    WriteMetadata {
        value: u64,
        mask: u64,
    },
    /// Opaque bytes, ignored by translation.
    Note(Vec<u8>),
}

/// A rule as written in an add-flow / mod-flows / del-flows request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FlowSpec {
    /// `None` means "every table" (mod/del); add-flow fills in table 0.
    pub table: Option<u8>,
    pub priority: u16,
    pub cookie: u64,
    /// Set for mod/del when the request filters on `cookie=VALUE/MASK`.
    pub cookie_mask: Option<u64>,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub matches: Match,
    pub actions: Vec<Action>,
}

impl Default for FlowSpec {
    fn default() -> FlowSpec {
        FlowSpec {
            table: Some(0),
            priority: DEFAULT_PRIORITY,
            cookie: 0,
            cookie_mask: None,
            idle_timeout: 0,
            hard_timeout: 0,
            matches: Match::catch_all(),
            actions: Vec::new(),
        }
    }
}

/// What a flow mod does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlowModCommand {
    Add,
    Modify,
    ModifyStrict,
    Delete,
    DeleteStrict,
}

/// One request to change the rule set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FlowMod {
    pub command: FlowModCommand,
    pub spec: FlowSpec,
}

/// VLAN TCI bits for `dl_vlan=N`.
pub(crate) fn tci_for_vid(vid: u16) -> u16 {
    VLAN_PRESENT | (vid & VLAN_VID_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_at_least_as_specific() {
        let mut general = Match::default();
        general.mask.key.nw_dst = 0xffff_ff00;
        general.value.key.nw_dst = 0x0a00_0000;
        let mut specific = general;
        specific.mask.key.nw_dst = 0xffff_ffff;
        specific.value.key.nw_dst = 0x0a00_0005;
        assert!(general.covers(&specific));
        assert!(!specific.covers(&general));
        specific.value.key.nw_dst = 0x0b00_0005;
        assert!(!general.covers(&specific));
    }

    #[test]
    fn field_ranges_read_and_write() {
        let mut f = Fields::default();
        let r = FieldRef {
            field: Field::Reg(1),
            start: 8,
            n_bits: 8,
        };
        r.write(&mut f, 0x1ab);
        assert_eq!(f.regs[1], 0xab00);
        assert_eq!(r.read(&f), 0xab);
        Field::VlanPcp.set(&mut f, 5);
        Field::VlanVid.set(&mut f, 100);
        assert_eq!(f.key.vlan_tci, (5 << 13) | 100);
        Field::EthSrc.set(&mut f, 0x0102_0304_0506);
        assert_eq!(f.key.dl_src, [1, 2, 3, 4, 5, 6]);
        assert_eq!(Field::EthSrc.get(&f), 0x0102_0304_0506);
    }
}
