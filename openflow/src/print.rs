//! Printing rules in ovs-ofctl syntax: matches with shorthands (`tcp`, `ip`, ...), action
//! lists, add-flow lines and dump-flows lines. Whatever is printed parses back to the same
//! rule (see the round-trip tests).

use std::fmt::{self, Write};

use pipeline::field::ofctl::{hex, masked_hex};
use pipeline::field::{
    format_action_value, format_match_value, FieldId, Print, Slot, ETH_TYPE, IN_PORT, IP_PROTO,
    SHORTHANDS,
};

use crate::rule::{
    ones, Action, ControllerArgs, FieldRef, Fields, FlowSpec, Match, DEFAULT_PRIORITY,
    FLOW_MOD_FLAGS, OFPP_LOCAL,
};

fn port(p: u32) -> String {
    if p == OFPP_LOCAL {
        "LOCAL".to_string()
    } else {
        p.to_string()
    }
}

impl Match {
    /// The match's fields in ovs-ofctl syntax: `recirc_id` and the conntrack fields, then the
    /// shorthand (or `dl_type`), then the other fields in the order of the match-field table
    /// (OVS's `match_format`). Of the entries on the same bits (`nw_src` and `arp_spa`,
    /// `tp_src` and `icmp_type`), the first whose print condition the match establishes
    /// prints them.
    pub fn to_parts(&self) -> Vec<String> {
        let (v, m) = (&self.value, &self.mask);
        let mut out = Vec::new();
        // Bits already printed.
        let mut done = Fields::default();
        self.print_fields(
            FieldId::all().filter(|f| f.def().before_shorthand()),
            &mut done,
            &mut out,
        );
        if m.get(ETH_TYPE) != 0 {
            let t = v.get(ETH_TYPE) as u16;
            let proto = (m.get(IP_PROTO) == IP_PROTO.max_value()).then(|| v.get(IP_PROTO) as u8);
            let with_proto = SHORTHANDS
                .iter()
                .find(|s| s.dl_type == t && s.proto.is_some() && s.proto == proto);
            if with_proto.is_some() {
                done.set(IP_PROTO, IP_PROTO.max_value());
            }
            match with_proto.or_else(|| {
                SHORTHANDS
                    .iter()
                    .find(|s| s.dl_type == t && s.proto.is_none())
            }) {
                Some(s) => out.push(s.name.to_string()),
                None => {
                    let d = ETH_TYPE.def();
                    if let Print::Shorthand(name) = d.print {
                        format_match_value(
                            d,
                            name,
                            v.slot(d.slot),
                            m.slot(d.slot),
                            OFPP_LOCAL,
                            &mut out,
                        );
                    }
                }
            }
            done.set(ETH_TYPE, ETH_TYPE.max_value());
        }
        self.print_fields(print_order(), &mut done, &mut out);
        out
    }

    /// Pushes the parts of the fields `ids` whose bits are not in `done` yet.
    fn print_fields(
        &self,
        ids: impl Iterator<Item = FieldId>,
        done: &mut Fields,
        out: &mut Vec<String>,
    ) {
        let (v, m) = (&self.value, &self.mask);
        for id in ids {
            let d = id.def();
            let Print::As(name, when) = d.print else {
                continue;
            };
            // A match on the option being there, whatever its value: the bare name.
            if let Slot::TunMetadata(i) = d.slot {
                if m.tun_md.present & (1 << i) != 0 && m.slot(d.slot) == 0 {
                    out.push(name.to_string());
                    continue;
                }
            }
            if m.slot(d.slot) & d.bits & !done.slot(d.slot) == 0 || !self.holds(when) {
                continue;
            }
            format_match_value(d, name, v.slot(d.slot), m.slot(d.slot), OFPP_LOCAL, out);
            done.set_slot(d.slot, done.slot(d.slot) | d.bits);
        }
    }
}

/// The fields after the shorthand in the order OVS's `match_format` prints them: the
/// registers, the tunnel fields, `metadata`, `in_port`, then the rest in table order.
fn print_order() -> impl Iterator<Item = FieldId> {
    let rank = |f: &FieldId| match f.def().slot {
        Slot::Reg(_) | Slot::XReg(_) | Slot::XXReg(_) => 0,
        Slot::TunMetadata(_) => 1,
        _ if f.name().starts_with("tun_") => 1,
        Slot::Metadata => 2,
        _ if *f == IN_PORT => 3,
        _ => 4,
    };
    let mut ids: Vec<FieldId> = FieldId::all().collect();
    ids.sort_by_key(rank);
    ids.into_iter()
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_parts().join(","))
    }
}

/// The name ovs-ofctl prints for a field in `load`, `move`, `push` and `pop`: its first
/// NXM (or OXM) name, as `mf_format_subfield` does, else its own name.
fn nxm_name(field: FieldId) -> &'static str {
    field.def().nxm.first().map_or(field.name(), |n| n.name)
}

fn range(f: &mut fmt::Formatter<'_>, start: u32, n_bits: u32, whole: bool) -> fmt::Result {
    if whole {
        f.write_str("[]")
    } else if n_bits == 1 {
        write!(f, "[{start}]")
    } else {
        write!(f, "[{}..{}]", start, start + n_bits - 1)
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(nxm_name(self.field))?;
        range(f, self.start, self.n_bits, self.is_whole())
    }
}

/// `load:` as OVS's NXAST_REG_LOAD prints it: 64 bits at most per load, low bits first.
fn write_load(f: &mut fmt::Formatter<'_>, r: &FieldRef, value: u128) -> fmt::Result {
    let mut off = 0;
    while off < r.n_bits {
        let n = (r.n_bits - off).min(64);
        if off > 0 {
            f.write_char(',')?;
        }
        let v = (value >> off) & ones(n);
        let whole = r.is_whole() && n == r.n_bits;
        write!(f, "load:{}->{}", hex(v), nxm_name(r.field))?;
        range(f, r.start + off, n, whole)?;
        off += n;
    }
    Ok(())
}

/// `set_field` as ovs-ofctl prints it by default (OpenFlow 1.0 with Nicira extensions): the
/// OpenFlow 1.0 action where there is one, `set_tunnel`, else `load`.
fn write_set_field(f: &mut fmt::Formatter<'_>, field: FieldId, value: u128) -> fmt::Result {
    let of10 = match field.name() {
        "eth_src" => Some("mod_dl_src"),
        "eth_dst" => Some("mod_dl_dst"),
        "ip_src" => Some("mod_nw_src"),
        "ip_dst" => Some("mod_nw_dst"),
        "tcp_src" | "udp_src" => Some("mod_tp_src"),
        "tcp_dst" | "udp_dst" => Some("mod_tp_dst"),
        "vlan_vid" => Some("mod_vlan_vid"),
        "vlan_pcp" => Some("mod_vlan_pcp"),
        _ => None,
    };
    match (of10, field.name()) {
        (Some(name), _) => write!(f, "{name}:{}", format_action_value(field.def(), value)),
        (None, "ip_dscp") => write!(f, "mod_nw_tos:{}", value << 2),
        (None, "tun_id") if value <= u128::from(u32::MAX) => write!(f, "set_tunnel:{value:#x}"),
        (None, "tun_id") => write!(f, "set_tunnel64:{value:#x}"),
        _ => write_load(f, &FieldRef::whole(field), value),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(p) if *p == OFPP_LOCAL => f.write_str("LOCAL"),
            Action::Output(p) => write!(f, "output:{p}"),
            Action::InPort => f.write_str("IN_PORT"),
            Action::Normal => f.write_str("NORMAL"),
            Action::Flood => f.write_str("FLOOD"),
            Action::All => f.write_str("ALL"),
            Action::Local => f.write_str("LOCAL"),
            Action::Controller(c) => write!(f, "{c}"),
            Action::SetField { field, value } => write_set_field(f, *field, *value),
            Action::Load { dst, value } => write_load(f, dst, *value),
            Action::Move { src, dst } => write!(f, "move:{src}->{dst}"),
            Action::StackPush(r) => write!(f, "push:{r}"),
            Action::StackPop(r) => write!(f, "pop:{r}"),
            Action::PushVlan(t) => write!(f, "push_vlan:{t:#06x}"),
            Action::PopVlan => f.write_str("strip_vlan"),
            Action::DecTtl => f.write_str("dec_ttl"),
            Action::DecTtlIds(ids) => {
                let ids: Vec<String> = ids.iter().map(u16::to_string).collect();
                write!(f, "dec_ttl({})", ids.join(","))
            }
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
                write!(
                    f,
                    "write_metadata:{}",
                    masked_hex(u128::from(*value), u128::from(*mask), u128::from(u64::MAX))
                )
            }
            Action::Ct(ct) => write!(f, "{ct}"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::WriteActions(v) => {
                f.write_str("write_actions(")?;
                for (i, a) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Action::ClearActions => f.write_str("clear_actions"),
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

impl fmt::Display for ControllerArgs {
    /// `CONTROLLER:MAX_LEN`, or `controller(...)` with the arguments that are not defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(r) = self.reason.as_deref().filter(|r| *r != "action") {
            parts.push(format!("reason={r}"));
        }
        if self.max_len != u16::MAX {
            parts.push(format!("max_len={}", self.max_len));
        }
        if self.id != 0 {
            parts.push(format!("id={}", self.id));
        }
        if !self.userdata.is_empty() {
            let hex: Vec<String> = self.userdata.iter().map(|b| format!("{b:02x}")).collect();
            parts.push(format!("userdata={}", hex.join(".")));
        }
        if self.pause {
            parts.push("pause".to_string());
        }
        if let Some(m) = self.meter_id {
            parts.push(format!("meter_id={m}"));
        }
        if parts.iter().all(|p| p.starts_with("max_len=")) {
            // OVS's short form.
            write!(f, "CONTROLLER:{}", self.max_len)
        } else {
            write!(f, "controller({})", parts.join(","))
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

/// An action list as `ovs-ofctl -O OpenFlow13` prints it (a group's buckets): field writes
/// as OpenFlow 1.3's `set_field` (`mod_vlan_vid` and `mod_vlan_pcp` as the push and set
/// they become; L4 ports stay `mod_tp_*`), `pop_vlan`; the rest as [`format_actions`].
pub fn format_actions_of13(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "drop".to_string();
    }
    let items: Vec<String> = actions
        .iter()
        .map(|a| match a {
            Action::SetField { field, value } => {
                let v = format_action_value(field.def(), *value);
                match field.name() {
                    "tcp_src" | "udp_src" => format!("mod_tp_src:{v}"),
                    "tcp_dst" | "udp_dst" => format!("mod_tp_dst:{v}"),
                    "vlan_vid" => {
                        format!("push_vlan:0x8100,set_field:{}->vlan_vid", value | 0x1000)
                    }
                    "vlan_pcp" => format!("push_vlan:0x8100,set_field:{v}->vlan_pcp"),
                    name => format!("set_field:{v}->{name}"),
                }
            }
            Action::PopVlan => "pop_vlan".to_string(),
            a => a.to_string(),
        })
        .collect();
    items.join(",")
}

/// `priority=P,<match>` as dump-flows prints it (priority omitted when it is the default).
fn priority_and_match(priority: u16, m: &Match) -> String {
    let mut parts = m.to_parts();
    if priority != DEFAULT_PRIORITY {
        parts.insert(0, format!("priority={priority}"));
    }
    parts.join(",")
}

/// The flow-mod flags as ovs-ofctl writes them, each followed by a space.
pub fn flag_words(flags: u16) -> String {
    FLOW_MOD_FLAGS
        .iter()
        .filter(|(_, bit)| flags & bit != 0)
        .map(|(name, _)| format!("{name} "))
        .collect()
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
    format!(" {}", format_flow(spec, Some((stats, None)), None))
}

/// Ages of a rule in whole seconds, as ovs-ofctl prints them after the timeouts: `idle_age`
/// since the last packet (or since the rule was made; a modify does not restart it),
/// `hard_age` since it was added or modified (printed only when it differs from the
/// duration's seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpAges {
    pub idle_age: u64,
    pub hard_age: u64,
}

/// A dump-flows line without its leading space, as OVS's `ofputil_flow_stats_format`: with
/// `stats`, the cookie, duration, table and counters; without, the cookie and the table only
/// when not zero (`--no-stats`). `names` prints ports by name (`--names`).
pub fn format_flow(
    spec: &FlowSpec,
    stats: Option<(DumpStats, Option<DumpAges>)>,
    names: Option<&crate::portnames::PortNames>,
) -> String {
    let mut s = String::new();
    let table = spec.table.unwrap_or(0);
    match stats {
        Some((st, _)) => {
            let _ = write!(
                s,
                "cookie={:#x}, duration={}.{:03}s, table={table}, n_packets={}, n_bytes={}, ",
                spec.cookie,
                st.duration_ns / 1_000_000_000,
                (st.duration_ns % 1_000_000_000) / 1_000_000,
                st.n_packets,
                st.n_bytes
            );
        }
        None => {
            if spec.cookie != 0 {
                let _ = write!(s, "cookie={:#x}, ", spec.cookie);
            }
            if table != 0 {
                let _ = write!(s, "table={table}, ");
            }
        }
    }
    if spec.idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={}, ", spec.idle_timeout);
    }
    if spec.hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={}, ", spec.hard_timeout);
    }
    // As OVS's flow stats with OpenFlow 1.3+ (ofputil_flow_stats_format).
    s.push_str(&flag_words(spec.flags));
    if spec.importance != 0 {
        let _ = write!(s, "importance={}, ", spec.importance);
    }
    if let Some((st, Some(ages))) = stats {
        let _ = write!(s, "idle_age={}, ", ages.idle_age);
        if ages.hard_age != st.duration_ns / 1_000_000_000 {
            let _ = write!(s, "hard_age={}, ", ages.hard_age);
        }
    }
    let pm = match names {
        None => priority_and_match(spec.priority, &spec.matches),
        Some(n) => {
            let mut parts = n.match_parts(&spec.matches);
            if spec.priority != DEFAULT_PRIORITY {
                parts.insert(0, format!("priority={}", spec.priority));
            }
            parts.join(",")
        }
    };
    if !pm.is_empty() {
        s.push_str(&pm);
        s.push(' ');
    }
    s.push_str("actions=");
    match names {
        Some(n) if !spec.actions.is_empty() => {
            let acts: Vec<String> = spec.actions.iter().map(|a| n.action(a)).collect();
            s.push_str(&acts.join(","));
        }
        _ => s.push_str(&format_actions(&spec.actions)),
    }
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
        if self.importance != 0 {
            write!(f, "importance={}, ", self.importance)?;
        }
        f.write_str(&flag_words(self.flags).replace(' ', ", "))?;
        let pm = priority_and_match(self.priority, &self.matches);
        if !pm.is_empty() {
            write!(f, "{pm} ")?;
        }
        write!(f, "actions={}", format_actions(&self.actions))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

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
            // The match is the same; the actions print the same (ovs-ofctl's names: a
            // set_field may come back as the loads that print it, which do the same).
            assert_eq!(spec.matches, back.matches, "{text} -> {printed}");
            assert_eq!(printed, back.to_string(), "{text} -> {printed}");
            let dumped = format_dump(
                &spec,
                DumpStats {
                    duration_ns: 1_234_000_000,
                    n_packets: 10,
                    n_bytes: 980,
                },
            );
            let back = parse_flow(&dumped).unwrap_or_else(|e| panic!("{text} -> {dumped}: {e}"));
            assert_eq!(spec.matches, back.matches, "{text} -> {dumped}");
            assert_eq!(printed, back.to_string(), "{text} -> {dumped}");
        }
    }

    #[test]
    fn pipeline_fields_print_in_ovs_order() {
        // `ovs-ofctl parse-flow` 3.1: registers, tunnel, metadata, in_port, then the rest.
        let spec = parse_flow(
            "dl_src=00:00:00:00:00:01,in_port=1,reg3=9,metadata=0x42,tun_id=5,actions=drop",
        )
        .unwrap();
        assert_eq!(
            spec.matches.to_string(),
            "reg3=0x9,tun_id=0x5,metadata=0x42,in_port=1,dl_src=00:00:00:00:00:01"
        );
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
