//! Printing rules in ovs-ofctl syntax: matches with shorthands (`tcp`, `ip`, ...), action
//! lists, add-flow lines and dump-flows lines. Whatever is printed parses back to the same
//! rule (see the round-trip tests).

use std::fmt::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use pipeline::flowkey::{ethertype, ipproto, FRAG_ANY, FRAG_LATER, VLAN_PCP_SHIFT, VLAN_PRESENT};

use crate::parse::{CT_STATE_NAMES, TCP_FLAG_NAMES};
use crate::rule::{Action, Field, FieldRef, FlowSpec, Match, DEFAULT_PRIORITY, N_REGS, OFPP_LOCAL};

fn mac(b: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

fn masked_mac(v: [u8; 6], m: [u8; 6]) -> String {
    if m == [0xff; 6] {
        mac(v)
    } else {
        format!("{}/{}", mac(v), mac(m))
    }
}

fn masked_ipv4(v: u32, m: u32) -> String {
    if m == u32::MAX {
        Ipv4Addr::from(v).to_string()
    } else if m.leading_ones() + m.trailing_zeros() == 32 {
        format!("{}/{}", Ipv4Addr::from(v), m.leading_ones())
    } else {
        format!("{}/{}", Ipv4Addr::from(v), Ipv4Addr::from(m))
    }
}

fn masked_ipv6(v: [u8; 16], m: [u8; 16]) -> String {
    let mm = u128::from_be_bytes(m);
    if mm == u128::MAX {
        Ipv6Addr::from(v).to_string()
    } else if mm.leading_ones() + mm.trailing_zeros() == 128 {
        format!("{}/{}", Ipv6Addr::from(v), mm.leading_ones())
    } else {
        format!("{}/{}", Ipv6Addr::from(v), Ipv6Addr::from(m))
    }
}

/// Decimal when exact, `0xV/0xM` when masked.
fn masked_dec(v: u64, m: u64, full: u64) -> String {
    if m == full {
        v.to_string()
    } else {
        format!("{v:#x}/{m:#x}")
    }
}

/// Hexadecimal, with `/0xM` when masked.
fn masked_hex(v: u64, m: u64, full: u64) -> String {
    if m == full {
        format!("{v:#x}")
    } else {
        format!("{v:#x}/{m:#x}")
    }
}

fn port(p: u32) -> String {
    if p == OFPP_LOCAL {
        "LOCAL".to_string()
    } else {
        p.to_string()
    }
}

impl Match {
    /// The match's fields in ovs-ofctl syntax, shorthands first.
    pub fn to_parts(&self) -> Vec<String> {
        let (v, m) = (&self.value.key, &self.mask.key);
        let mut out = Vec::new();
        let mut proto_done = false;
        if m.dl_type != 0 {
            let short = match (v.dl_type, m.nw_proto == 0xff) {
                (ethertype::IPV4, true) => match v.nw_proto {
                    ipproto::TCP => Some("tcp"),
                    ipproto::UDP => Some("udp"),
                    ipproto::SCTP => Some("sctp"),
                    ipproto::ICMP => Some("icmp"),
                    _ => None,
                },
                (ethertype::IPV6, true) => match v.nw_proto {
                    ipproto::TCP => Some("tcp6"),
                    ipproto::UDP => Some("udp6"),
                    ipproto::SCTP => Some("sctp6"),
                    ipproto::ICMPV6 => Some("icmp6"),
                    _ => None,
                },
                _ => None,
            };
            if let Some(s) = short {
                out.push(s.to_string());
                proto_done = true;
            } else {
                out.push(match v.dl_type {
                    ethertype::IPV4 => "ip".to_string(),
                    ethertype::IPV6 => "ipv6".to_string(),
                    ethertype::ARP => "arp".to_string(),
                    t => format!("dl_type={t:#06x}"),
                });
            }
        }
        if m.tun_id != 0 {
            out.push(format!(
                "tun_id={}",
                masked_hex(v.tun_id, m.tun_id, u64::MAX)
            ));
        }
        if m.ct_state != 0 {
            out.push(format!(
                "ct_state={}",
                flags(
                    u16::from(v.ct_state),
                    u16::from(m.ct_state),
                    &CT_STATE_NAMES
                )
            ));
        }
        if m.ct_zone != 0 {
            out.push(format!("ct_zone={}", v.ct_zone));
        }
        if m.ct_mark != 0 {
            out.push(format!(
                "ct_mark={}",
                masked_hex(
                    u64::from(v.ct_mark),
                    u64::from(m.ct_mark),
                    u64::from(u32::MAX)
                )
            ));
        }
        if m.in_port != 0 {
            out.push(format!("in_port={}", port(v.in_port)));
        }
        if self.mask.metadata != 0 {
            out.push(format!(
                "metadata={}",
                masked_hex(self.value.metadata, self.mask.metadata, u64::MAX)
            ));
        }
        for i in 0..N_REGS {
            if self.mask.regs[i] != 0 {
                out.push(format!(
                    "reg{i}={}",
                    masked_hex(
                        u64::from(self.value.regs[i]),
                        u64::from(self.mask.regs[i]),
                        u64::from(u32::MAX)
                    )
                ));
            }
        }
        if m.dl_src != [0; 6] {
            out.push(format!("dl_src={}", masked_mac(v.dl_src, m.dl_src)));
        }
        if m.dl_dst != [0; 6] {
            out.push(format!("dl_dst={}", masked_mac(v.dl_dst, m.dl_dst)));
        }
        let (tv, tm) = (v.vlan_tci, m.vlan_tci);
        if tm != 0 {
            let vid = tv & 0x0fff;
            let pcp = tv >> VLAN_PCP_SHIFT;
            match tm {
                0x1fff if tv & VLAN_PRESENT != 0 => out.push(format!("dl_vlan={vid}")),
                0xf000 if tv & VLAN_PRESENT != 0 => out.push(format!("dl_vlan_pcp={pcp}")),
                0xffff if tv & VLAN_PRESENT != 0 => {
                    out.push(format!("dl_vlan={vid}"));
                    out.push(format!("dl_vlan_pcp={pcp}"));
                }
                0xffff => out.push(format!("vlan_tci={tv:#06x}")),
                _ => out.push(format!("vlan_tci={tv:#06x}/{tm:#06x}")),
            }
        }
        let arp = self.is_arp();
        if m.nw_src != 0 {
            let n = if arp { "arp_spa" } else { "nw_src" };
            out.push(format!("{n}={}", masked_ipv4(v.nw_src, m.nw_src)));
        }
        if m.nw_dst != 0 {
            let n = if arp { "arp_tpa" } else { "nw_dst" };
            out.push(format!("{n}={}", masked_ipv4(v.nw_dst, m.nw_dst)));
        }
        if m.ipv6_src != [0; 16] {
            out.push(format!("ipv6_src={}", masked_ipv6(v.ipv6_src, m.ipv6_src)));
        }
        if m.ipv6_dst != [0; 16] {
            out.push(format!("ipv6_dst={}", masked_ipv6(v.ipv6_dst, m.ipv6_dst)));
        }
        if m.ipv6_label != 0 {
            out.push(format!(
                "ipv6_label={}",
                masked_hex(u64::from(v.ipv6_label), u64::from(m.ipv6_label), 0xf_ffff)
            ));
        }
        if m.nw_proto != 0 && !proto_done {
            let n = if arp { "arp_op" } else { "nw_proto" };
            out.push(format!("{n}={}", v.nw_proto));
        }
        if m.nw_tos & 0xfc != 0 {
            out.push(format!("nw_tos={}", v.nw_tos & 0xfc));
        }
        if m.nw_tos & 0x03 != 0 {
            out.push(format!("nw_ecn={}", v.nw_tos & 0x03));
        }
        if m.nw_ttl != 0 {
            out.push(format!("nw_ttl={}", v.nw_ttl));
        }
        if m.nw_frag != 0 {
            let f = match (v.nw_frag, m.nw_frag) {
                (0, FRAG_ANY) => "no",
                (FRAG_ANY, FRAG_ANY) => "yes",
                (0, FRAG_LATER) => "not_later",
                (FRAG_ANY, _) => "first",
                _ => "later",
            };
            out.push(format!("ip_frag={f}"));
        }
        let icmp = if self.is_ipv4() && self.proto_is(ipproto::ICMP) {
            Some("icmp")
        } else if self.is_ipv6() && self.proto_is(ipproto::ICMPV6) {
            Some("icmpv6")
        } else {
            None
        };
        if m.tp_src != 0 {
            out.push(match icmp {
                Some(p) => format!("{p}_type={}", v.tp_src),
                None => format!(
                    "tp_src={}",
                    masked_dec(u64::from(v.tp_src), u64::from(m.tp_src), 0xffff)
                ),
            });
        }
        if m.tp_dst != 0 {
            out.push(match icmp {
                Some(p) => format!("{p}_code={}", v.tp_dst),
                None => format!(
                    "tp_dst={}",
                    masked_dec(u64::from(v.tp_dst), u64::from(m.tp_dst), 0xffff)
                ),
            });
        }
        if m.tcp_flags != 0 {
            out.push(format!("tcp_flags={}", tcp_flags(v.tcp_flags, m.tcp_flags)));
        }
        let nd = icmp == Some("icmpv6");
        if m.arp_sha != [0; 6] {
            let n = if nd { "nd_sll" } else { "arp_sha" };
            out.push(format!("{n}={}", masked_mac(v.arp_sha, m.arp_sha)));
        }
        if m.arp_tha != [0; 6] {
            let n = if nd { "nd_tll" } else { "arp_tha" };
            out.push(format!("{n}={}", masked_mac(v.arp_tha, m.arp_tha)));
        }
        if m.nd_target != [0; 16] {
            out.push(format!(
                "nd_target={}",
                masked_ipv6(v.nd_target, m.nd_target)
            ));
        }
        out
    }
}

fn flags(v: u16, m: u16, names: &[(&str, u16)]) -> String {
    let mut s = String::new();
    for (name, bit) in names {
        if m & bit != 0 {
            s.push(if v & bit != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

fn tcp_flags(v: u16, m: u16) -> String {
    if m & !0x1ff == 0 && m != 0 {
        flags(v, m, &TCP_FLAG_NAMES)
    } else if m == 0x0fff {
        format!("{v:#05x}")
    } else {
        format!("{v:#05x}/{m:#05x}")
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_parts().join(","))
    }
}

fn field_value(field: Field, v: u128) -> String {
    match field {
        Field::EthSrc | Field::EthDst => {
            let b = v.to_be_bytes();
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[10..16]);
            mac(m)
        }
        Field::Ipv4Src | Field::Ipv4Dst => Ipv4Addr::from(v as u32).to_string(),
        Field::Ipv6Src | Field::Ipv6Dst => Ipv6Addr::from(v).to_string(),
        Field::Reg(_) | Field::Metadata => format!("{v:#x}"),
        _ => v.to_string(),
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_whole() {
            write!(f, "{}[]", self.field.name())
        } else {
            write!(
                f,
                "{}[{}..{}]",
                self.field.name(),
                self.start,
                self.start + self.n_bits - 1
            )
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(p) => write!(f, "output:{p}"),
            Action::InPort => f.write_str("in_port"),
            Action::Normal => f.write_str("NORMAL"),
            Action::Flood => f.write_str("FLOOD"),
            Action::All => f.write_str("ALL"),
            Action::Local => f.write_str("LOCAL"),
            Action::Controller => f.write_str("CONTROLLER"),
            Action::SetField { field, value } => {
                write!(
                    f,
                    "set_field:{}->{}",
                    field_value(*field, *value),
                    field.name()
                )
            }
            Action::Load { dst, value } => write!(f, "load:{value:#x}->{dst}"),
            Action::Move { src, dst } => write!(f, "move:{src}->{dst}"),
            Action::PushVlan(t) => write!(f, "push_vlan:{t:#06x}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::DecTtl => f.write_str("dec_ttl"),
            Action::Resubmit {
                port: Some(p),
                table: None,
            } => write!(f, "resubmit:{}", port(*p)),
            Action::Resubmit { port: p, table: t } => {
                let p = p.map(port).unwrap_or_default();
                let t = t.map(|t| t.to_string()).unwrap_or_default();
                write!(f, "resubmit({p},{t})")
            }
            Action::GotoTable(t) => write!(f, "goto_table:{t}"),
            Action::WriteMetadata { value, mask } => {
                write!(f, "write_metadata:{}", masked_hex(*value, *mask, u64::MAX))
            }
            Action::Note(bytes) => {
                f.write_str("note:")?;
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        f.write_char('.')?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// An action list as written after `actions=` (`drop` when empty).
pub fn format_actions(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "drop".to_string();
    }
    let mut s = String::new();
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{a}");
    }
    s
}

/// `priority=P,<match>` as dump-flows prints it (priority omitted when it is the default).
fn priority_and_match(priority: u16, m: &Match) -> String {
    let mut parts = m.to_parts();
    if priority != DEFAULT_PRIORITY {
        parts.insert(0, format!("priority={priority}"));
    }
    parts.join(",")
}

/// Statistics shown by a dump-flows line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpStats {
    pub duration_ns: u64,
    pub n_packets: u64,
    pub n_bytes: u64,
}

/// One line of `dump-flows` output, in ovs-ofctl's format.
pub fn format_dump(spec: &FlowSpec, stats: DumpStats) -> String {
    let mut s = format!(
        " cookie={:#x}, duration={}.{:03}s, table={}, n_packets={}, n_bytes={}, ",
        spec.cookie,
        stats.duration_ns / 1_000_000_000,
        (stats.duration_ns % 1_000_000_000) / 1_000_000,
        spec.table.unwrap_or(0),
        stats.n_packets,
        stats.n_bytes
    );
    if spec.idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={}, ", spec.idle_timeout);
    }
    if spec.hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={}, ", spec.hard_timeout);
    }
    let pm = priority_and_match(spec.priority, &spec.matches);
    if !pm.is_empty() {
        s.push_str(&pm);
        s.push(' ');
    }
    s.push_str("actions=");
    s.push_str(&format_actions(&spec.actions));
    s
}

/// The add-flow form (`table=1, cookie=0x5, priority=100,tcp actions=output:2`), which
/// `parse_flow` accepts; mod/del specs print their cookie mask and no table when they span
/// every table.
impl fmt::Display for FlowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.table {
            write!(f, "table={t}, ")?;
        }
        match self.cookie_mask {
            Some(m) => write!(f, "cookie={:#x}/{m:#x}, ", self.cookie)?,
            None if self.cookie != 0 => write!(f, "cookie={:#x}, ", self.cookie)?,
            None => {}
        }
        if self.idle_timeout != 0 {
            write!(f, "idle_timeout={}, ", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, "hard_timeout={}, ", self.hard_timeout)?;
        }
        let pm = priority_and_match(self.priority, &self.matches);
        if !pm.is_empty() {
            write!(f, "{pm} ")?;
        }
        write!(f, "actions={}", format_actions(&self.actions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_flow;

    /// xorshift64*: a deterministic generator for the round-trip property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn coin(&mut self) -> bool {
            self.below(2) == 0
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len() as u64) as usize]
        }
        fn mac(&mut self) -> String {
            let b = self.next().to_be_bytes();
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            )
        }
        fn ip(&mut self) -> String {
            Ipv4Addr::from(self.next() as u32).to_string()
        }
        fn ip6(&mut self) -> String {
            Ipv6Addr::from(u128::from(self.next()) << 64 | u128::from(self.next())).to_string()
        }
    }

    /// A random rule in ovs-ofctl syntax that the parser must accept.
    fn random_rule(r: &mut Rng) -> String {
        let mut f: Vec<String> = Vec::new();
        let base = r.pick(&[
            "",
            "ip",
            "ipv6",
            "arp",
            "tcp",
            "udp",
            "sctp",
            "icmp",
            "icmp6",
            "tcp6",
            "udp6",
            "dl_type=0x88cc",
        ]);
        if !base.is_empty() {
            f.push(base.to_string());
        }
        if r.coin() {
            f.push(format!("priority={}", r.below(65536)));
        }
        if r.coin() {
            f.push(format!("table={}", r.below(200)));
        }
        if r.coin() {
            f.push(format!("cookie={:#x}", r.next()));
        }
        if r.coin() {
            f.push(format!("idle_timeout={}", r.below(65536)));
        }
        if r.coin() {
            f.push(format!("hard_timeout={}", r.below(65536)));
        }
        if r.coin() {
            f.push(format!("in_port={}", r.below(100)));
        }
        if r.coin() {
            f.push(format!("dl_src={}", r.mac()));
        }
        if r.coin() {
            f.push(format!("dl_dst={}/ff:ff:ff:00:00:00", r.mac()));
        }
        match r.below(4) {
            0 => f.push(format!("dl_vlan={}", r.below(4096))),
            1 => f.push(format!(
                "dl_vlan={},dl_vlan_pcp={}",
                r.below(4096),
                r.below(8)
            )),
            2 => f.push(format!(
                "vlan_tci={:#06x}/{:#06x}",
                r.below(65536),
                r.below(65536)
            )),
            _ => {}
        }
        if r.coin() {
            f.push(format!(
                "reg{}={:#x}/{:#x}",
                r.below(8),
                r.next() as u32,
                r.next() as u32
            ));
        }
        if r.coin() {
            f.push(format!("metadata={:#x}", r.next()));
        }
        if r.coin() {
            f.push(format!(
                "ct_state={:#x}/{:#x},ct_mark={}",
                r.below(256),
                r.below(256),
                r.next() as u32
            ));
        }
        let is = |s: &[&str]| s.contains(&base);
        if is(&["ip", "tcp", "udp", "sctp", "icmp", "arp"]) {
            if r.coin() {
                f.push(format!("nw_src={}/{}", r.ip(), r.below(33)));
            }
            if r.coin() {
                f.push(format!("nw_dst={}/{}", r.ip(), r.ip()));
            }
        }
        if is(&[
            "ip", "tcp", "udp", "sctp", "icmp", "ipv6", "icmp6", "tcp6", "udp6",
        ]) {
            if r.coin() {
                f.push(format!("nw_tos={}", r.below(64) * 4));
            }
            if r.coin() {
                f.push(format!("nw_ecn={}", r.below(4)));
            }
            if r.coin() {
                f.push(format!("nw_ttl={}", r.below(256)));
            }
            if r.coin() {
                f.push(format!(
                    "ip_frag={}",
                    r.pick(&["no", "yes", "first", "later", "not_later"])
                ));
            }
        }
        if is(&["ip", "ipv6"]) && r.coin() {
            f.push(format!("nw_proto={}", r.below(256)));
        }
        if is(&["ipv6", "icmp6", "tcp6", "udp6"]) {
            if r.coin() {
                f.push(format!("ipv6_src={}/{}", r.ip6(), r.below(129)));
            }
            if r.coin() {
                f.push(format!("ipv6_dst={}", r.ip6()));
            }
            if r.coin() {
                f.push(format!("ipv6_label={:#x}", r.below(0x10_0000)));
            }
        }
        if is(&["tcp", "udp", "sctp", "tcp6", "udp6"]) {
            if r.coin() {
                f.push(format!("tp_src={}", r.below(65536)));
            }
            if r.coin() {
                f.push(format!(
                    "tp_dst={:#x}/{:#x}",
                    r.below(65536),
                    r.below(65536)
                ));
            }
        }
        if is(&["tcp", "tcp6"]) && r.coin() {
            if r.coin() {
                f.push("tcp_flags=+syn-ack+fin".to_string());
            } else {
                f.push(format!(
                    "tcp_flags={:#x}/{:#x}",
                    r.below(4096),
                    r.below(4096)
                ));
            }
        }
        if is(&["icmp", "icmp6"]) {
            if base == "icmp6" && r.coin() {
                f.push("icmp_type=135".to_string());
                f.push(format!("nd_target={}", r.ip6()));
                f.push(format!("nd_sll={}", r.mac()));
            } else {
                f.push(format!("icmp_type={}", r.below(256)));
            }
            if r.coin() {
                f.push(format!("icmp_code={}", r.below(256)));
            }
        }
        if base == "arp" {
            if r.coin() {
                f.push(format!("arp_op={}", r.below(256)));
            }
            if r.coin() {
                f.push(format!("arp_sha={}", r.mac()));
            }
        }
        // Fields in any order: order must not matter to the parser.
        for i in (1..f.len()).rev() {
            let j = r.below(i as u64 + 1) as usize;
            f.swap(i, j);
        }
        let mut acts: Vec<String> = Vec::new();
        for _ in 0..r.below(5) {
            acts.push(match r.below(12) {
                0 => format!("output:{}", r.below(1000)),
                1 => r
                    .pick(&[
                        "NORMAL",
                        "FLOOD",
                        "ALL",
                        "in_port",
                        "LOCAL",
                        "CONTROLLER",
                        "dec_ttl",
                        "pop_vlan",
                        "push_vlan:0x8100",
                    ])
                    .to_string(),
                2 => format!("mod_dl_src:{}", r.mac()),
                3 => format!("mod_vlan_vid:{}", r.below(4096)),
                4 => format!("load:{:#x}->reg{}[0..15]", r.below(65536), r.below(8)),
                5 => format!("move:reg{}[8..15]->reg{}[0..7]", r.below(8), r.below(8)),
                6 => format!("resubmit(,{})", r.below(255)),
                7 => format!("resubmit:{}", r.below(100)),
                8 => format!("write_metadata:{:#x}/{:#x}", r.next(), r.next()),
                9 => "note:01.02.03".to_string(),
                10 => format!("set_field:{:#x}->metadata", r.next()),
                _ => format!("move:eth_src[0..15]->reg{}[16..31]", r.below(8)),
            });
        }
        if is(&["ip", "tcp", "udp"]) && r.coin() {
            acts.push(format!("mod_nw_dst:{}", r.ip()));
        }
        if is(&["tcp", "udp", "tcp6", "udp6"]) && r.coin() {
            acts.push(format!("mod_tp_dst:{}", r.below(65536)));
        }
        let sep = if r.coin() { "," } else { " " };
        format!("{}{sep}actions={}", f.join(","), acts.join(","))
    }

    #[test]
    fn printed_rules_parse_back_to_the_same_rule() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for _ in 0..3000 {
            let text = random_rule(&mut r);
            let spec = parse_flow(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            // What the parser accepts, the flow-mod validation accepts too.
            crate::parse::check_spec(&spec).unwrap_or_else(|e| panic!("{text}: {e}"));
            let printed = spec.to_string();
            let back = parse_flow(&printed).unwrap_or_else(|e| panic!("{text} -> {printed}: {e}"));
            assert_eq!(spec, back, "{text} -> {printed}");
            let dumped = format_dump(
                &spec,
                DumpStats {
                    duration_ns: 1_234_000_000,
                    n_packets: 10,
                    n_bytes: 980,
                },
            );
            let back = parse_flow(&dumped).unwrap_or_else(|e| panic!("{text} -> {dumped}: {e}"));
            assert_eq!(spec, back, "{text} -> {dumped}");
        }
    }

    #[test]
    fn dump_format_matches_ovs_ofctl() {
        let spec = parse_flow(
            "idle_timeout=10,priority=100,tcp,nw_dst=10.0.0.0/24,tp_dst=80,actions=output:2",
        )
        .unwrap();
        let stats = DumpStats {
            duration_ns: 1_234_000_000,
            n_packets: 10,
            n_bytes: 980,
        };
        assert_eq!(
            format_dump(&spec, stats),
            " cookie=0x0, duration=1.234s, table=0, n_packets=10, n_bytes=980, idle_timeout=10, priority=100,tcp,nw_dst=10.0.0.0/24,tp_dst=80 actions=output:2"
        );
        let spec = parse_flow("actions=drop").unwrap();
        assert_eq!(
            format_dump(&spec, DumpStats::default()),
            " cookie=0x0, duration=0.000s, table=0, n_packets=0, n_bytes=0, actions=drop"
        );
        let spec = parse_flow("priority=0,in_port=1,actions=NORMAL").unwrap();
        assert_eq!(
            spec.to_string(),
            "table=0, priority=0,in_port=1 actions=NORMAL"
        );
    }
}
