//! The `ct` action, Open vSwitch's connection tracking action, as rule text:
//! `ct([commit][,force][,table=T][,zone=N|zone=FIELD[a..b]][,alg=ftp|tftp][,nat[(...)]]
//! [,exec(ACTIONS)])`. Parsed ([`parse`]), checked against the rule's match
//! ([`CtAction::check`]) and printed ([`fmt::Display`]) as `ovs-ofctl` 3.1 does, which
//! reorders the arguments (`commit,force,table=,zone=`, a leading `nat`, `exec(...)`,
//! `alg=`), prints `zone=0` as nothing and a masked `set_field` as `load`s.
//!
//! `nat(src|dst[=ADDR[-ADDR][:PORT[-PORT]]][,persistent][,hash|random])`: IPv6 addresses
//! in brackets when a port follows. `exec(...)` holds `set_field`, `load` and `move` into
//! `ct_mark` and `ct_label`, the only fields a `ct` action may write (and only with
//! `commit`, as in OVS).

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use pipeline::field::{CT_LABEL, CT_MARK};
use pipeline::flowkey::{ct_state, ipproto};

use crate::error::RuleError;
use crate::parse::{field_ref_in, masked_write, split_top_level, uint};
use crate::rule::{ones, Action, Field, FieldRef, Match, Prereq};

/// The zone a `ct` action tracks in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CtZone {
    /// `zone=N` (0 when not given).
    Imm(u16),
    /// `zone=FIELD[a..b]`: 16 bits of a field (a register, typically).
    Field(FieldRef),
}

/// An application-layer gateway (`alg=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtAlg {
    Ftp,
    Tftp,
}

/// Which address a `nat` rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatKind {
    Src,
    Dst,
}

/// The addresses (and ports) a `nat` may choose from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatRange {
    pub min: IpAddr,
    pub max: IpAddr,
    /// The port range; `None`: the ports are kept where they can be.
    pub ports: Option<(u16, u16)>,
}

/// A `nat` argument of a `ct` action. Without a kind (`nat` alone) it translates only
/// connections that were committed with one (the replies and later packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Nat {
    pub kind: Option<NatKind>,
    pub range: Option<NatRange>,
    pub persistent: bool,
    pub hash: bool,
    pub random: bool,
}

/// What a `ct` action does besides tracking, in the order written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CtNested {
    Nat(Nat),
    /// A `set_field`, `load` or `move` into `ct_mark` or `ct_label` (from `exec(...)`).
    Set(Action),
}

/// A `ct(...)` action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CtAction {
    /// Store the connection (a new one) and what `exec` sets.
    pub commit: bool,
    /// With `commit`: a connection in the other direction is ended and this one started.
    pub force: bool,
    /// Recirculate the tracked packet into this table; `None`: the packet is tracked and
    /// the rule's actions go on with it untracked (OVS's `NX_CT_RECIRC_NONE`).
    pub table: Option<u8>,
    pub zone: CtZone,
    pub alg: Option<CtAlg>,
    pub nested: Vec<CtNested>,
}

impl CtAction {
    /// The action's `nat`, if any.
    pub fn nat(&self) -> Option<&Nat> {
        self.nested.iter().find_map(|n| match n {
            CtNested::Nat(nat) => Some(nat),
            CtNested::Set(_) => None,
        })
    }

    /// The `set_field` / `load` / `move` actions of `exec(...)`.
    pub fn exec(&self) -> impl Iterator<Item = &Action> {
        self.nested.iter().filter_map(|n| match n {
            CtNested::Set(a) => Some(a),
            CtNested::Nat(_) => None,
        })
    }

    /// What the action needs from the rule's match, as OVS's `check_CT`: an IP match (IPv4
    /// or IPv6), no `commit` of packets the match says are invalid, `alg=ftp` over TCP and
    /// `alg=tftp` over UDP, NAT addresses of the match's family, a zone field whose own
    /// prerequisites hold.
    pub fn check(&self, m: &Match) -> Result<(), RuleError> {
        let (v4, v6) = (m.holds(Prereq::Ipv4), m.holds(Prereq::Ipv6));
        if !v4 && !v6 {
            return Err(RuleError::new("ct", "needs an ip or ipv6 match"));
        }
        if self.commit {
            let (sv, sm) = (m.value.key.ct_state, m.mask.key.ct_state);
            if sm & sv & ct_state::INVALID != 0 {
                return Err(RuleError::new(
                    "ct",
                    "commit of packets the match says are invalid (ct_state=+inv)",
                ));
            }
        }
        match self.alg {
            Some(CtAlg::Ftp) if !m.proto_is(ipproto::TCP) => {
                return Err(RuleError::new("alg", "ftp needs a tcp match"));
            }
            Some(CtAlg::Tftp) if !m.proto_is(ipproto::UDP) => {
                return Err(RuleError::new("alg", "tftp needs a udp match"));
            }
            _ => {}
        }
        if let Some(r) = self.nat().and_then(|n| n.range) {
            if r.min.is_ipv4() != v4 {
                return Err(RuleError::new(
                    "nat",
                    "addresses of the other IP version than the match",
                ));
            }
        }
        if let CtZone::Field(f) = &self.zone {
            if !m.holds(f.field.def().prereq) {
                return Err(RuleError::new(
                    "zone",
                    format!("{} {}", f.field.name(), f.field.def().prereq.describe()),
                ));
            }
        }
        Ok(())
    }
}

/// The fields `zone=` and the source of a `move` may name (as elsewhere in actions).
fn any_field(name: &str) -> Option<Field> {
    Field::by_action_name(name)
}

/// The fields `exec(...)` may write.
fn ct_field(name: &str) -> Option<Field> {
    match name.to_ascii_lowercase().as_str() {
        "ct_mark" | "nxm_nx_ct_mark" => Some(CT_MARK),
        "ct_label" | "nxm_nx_ct_label" => Some(CT_LABEL),
        _ => None,
    }
}

/// Parses the arguments of `ct(...)`.
pub(crate) fn parse(args: &str) -> Result<CtAction, RuleError> {
    let mut ct = CtAction {
        commit: false,
        force: false,
        table: None,
        zone: CtZone::Imm(0),
        alg: None,
        nested: Vec::new(),
    };
    for item in split_top_level(args.trim()).into_iter().map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let (key, value) = match item.split_once(['=', '(']) {
            Some((k, v)) if item.as_bytes().get(k.len()) == Some(&b'(') => {
                let inner = v
                    .strip_suffix(')')
                    .ok_or_else(|| RuleError::new(k, "missing closing parenthesis"))?;
                (k.trim(), Some(inner))
            }
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item, None),
        };
        match (key, value) {
            ("commit", None) => ct.commit = true,
            ("force", None) => ct.force = true,
            ("table", Some(v)) => {
                let t = uint("table", v, 254).map_err(|_| {
                    RuleError::new("table", format!("\"{v}\" is not a table (0..254)"))
                })?;
                ct.table = Some(t as u8);
            }
            ("zone", Some(v)) => {
                ct.zone = if let Ok(n) = uint("zone", v, u128::from(u16::MAX)) {
                    CtZone::Imm(n as u16)
                } else {
                    let f = field_ref_in("zone", v, &any_field).map_err(|_| {
                        RuleError::new(
                            "zone",
                            format!("\"{v}\" is neither a zone (0..65535) nor a field"),
                        )
                    })?;
                    if f.n_bits != 16 {
                        return Err(RuleError::new(
                            "zone",
                            format!("\"{v}\" has {} bits, a zone 16", f.n_bits),
                        ));
                    }
                    CtZone::Field(f)
                };
            }
            ("alg", Some(v)) => {
                ct.alg = Some(match v {
                    "ftp" => CtAlg::Ftp,
                    "tftp" => CtAlg::Tftp,
                    _ => return Err(RuleError::new("alg", format!("\"{v}\" is not ftp or tftp"))),
                });
            }
            ("nat", v) => {
                if ct.nat().is_some() {
                    return Err(RuleError::new("nat", "given twice"));
                }
                ct.nested.push(CtNested::Nat(parse_nat(v.unwrap_or(""))?));
            }
            ("exec", Some(v)) => {
                // OVS prints a `nat` that is not first inside `exec(...)`.
                for a in split_top_level(v).into_iter().map(str::trim) {
                    if a == "nat" || a.starts_with("nat(") {
                        let args = a.strip_prefix("nat(").and_then(|x| x.strip_suffix(')'));
                        if ct.nat().is_some() {
                            return Err(RuleError::new("nat", "given twice"));
                        }
                        ct.nested
                            .push(CtNested::Nat(parse_nat(args.unwrap_or(""))?));
                    } else if !a.is_empty() {
                        ct.nested
                            .extend(parse_exec(a)?.into_iter().map(CtNested::Set));
                    }
                }
            }
            _ => {
                return Err(RuleError::new(
                    "ct",
                    format!("\"{item}\" is not an argument of ct"),
                ))
            }
        }
    }
    if ct.force && !ct.commit {
        return Err(RuleError::new("force", "needs commit"));
    }
    if !ct.commit && ct.exec().next().is_some() {
        return Err(RuleError::new("exec", "needs commit"));
    }
    Ok(ct)
}

/// One action of `exec(...)`: `set_field:V[/M]->F` (a masked one as the `load`s of its
/// contiguous bit runs, as OVS stores it), `load:V->F[a..b]` or `move:SRC->F[a..b]`, F
/// being `ct_mark` or `ct_label`.
fn parse_exec(item: &str) -> Result<Vec<Action>, RuleError> {
    // `load(V->F)` is `load:V->F`, as everywhere in ovs-ofctl's actions.
    let paren = item
        .split_once('(')
        .and_then(|(n, rest)| Some((n, rest.strip_suffix(')')?)));
    let (name, arg) = item
        .split_once(':')
        .filter(|(n, _)| !n.contains('('))
        .or(paren)
        .filter(|(n, _)| matches!(*n, "set_field" | "load" | "move"))
        .ok_or_else(|| {
            RuleError::new(
                "exec",
                format!("\"{item}\" is not allowed in ct (set_field, load, move, nat)"),
            )
        })?;
    let (src, dst) = arg
        .split_once("->")
        .ok_or_else(|| RuleError::new(name, "expects VALUE->FIELD"))?;
    let not_ct = |f: &str| {
        RuleError::new(
            "exec",
            format!("ct can set only ct_mark and ct_label, not \"{f}\""),
        )
    };
    match name {
        "set_field" => {
            let field = ct_field(dst).ok_or_else(|| not_ct(dst))?;
            let max = field.max_value();
            let (v, mask) = match src.split_once('/') {
                Some((v, m)) => (uint(name, v, max)?, uint(name, m, max)?),
                None => (uint(name, src, max)?, max),
            };
            Ok(masked_write(field, v, mask))
        }
        "load" => {
            let dst = field_ref_in(name, dst, &ct_field)
                .map_err(|_| not_ct(dst.split('[').next().unwrap_or(dst)))?;
            let value = uint(name, src, ones(dst.n_bits))?;
            Ok(vec![Action::Load { dst, value }])
        }
        "move" => {
            let dst = field_ref_in(name, dst, &ct_field)
                .map_err(|_| not_ct(dst.split('[').next().unwrap_or(dst)))?;
            let src = field_ref_in(name, src, &any_field)?;
            if src.n_bits != dst.n_bits {
                return Err(RuleError::new(
                    name,
                    format!(
                        "source has {} bits but destination {}",
                        src.n_bits, dst.n_bits
                    ),
                ));
            }
            Ok(vec![Action::Move { src, dst }])
        }
        _ => Err(RuleError::new(
            "exec",
            format!("\"{name}\" is not allowed in ct (set_field, load, move)"),
        )),
    }
}

/// `src=RANGE` / `dst=RANGE` / `src` / `dst` and the flags `persistent`, `hash`, `random`.
fn parse_nat(args: &str) -> Result<Nat, RuleError> {
    let mut nat = Nat::default();
    for item in split_top_level(args).into_iter().map(str::trim) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item, None),
        };
        match key {
            "src" | "dst" => {
                if nat.kind.is_some() {
                    return Err(RuleError::new("nat", "only one of src and dst"));
                }
                nat.kind = Some(if key == "src" {
                    NatKind::Src
                } else {
                    NatKind::Dst
                });
                if let Some(v) = value {
                    nat.range = Some(parse_range(v)?);
                }
            }
            "persistent" if value.is_none() => nat.persistent = true,
            "hash" if value.is_none() => nat.hash = true,
            "random" if value.is_none() => nat.random = true,
            "" => {}
            _ => {
                return Err(RuleError::new(
                    "nat",
                    format!("\"{item}\" is not an argument of nat"),
                ))
            }
        }
    }
    if nat.hash && nat.random {
        return Err(RuleError::new("nat", "hash and random exclude each other"));
    }
    if nat.kind.is_none() && (nat.persistent || nat.hash || nat.random) {
        return Err(RuleError::new("nat", "flags need src or dst"));
    }
    Ok(nat)
}

/// `ADDR[-ADDR][:PORT[-PORT]]`; IPv6 addresses in brackets when a port follows.
fn parse_range(s: &str) -> Result<NatRange, RuleError> {
    let bad = |why: &str| RuleError::new("nat", format!("\"{s}\": {why}"));
    let (addrs, ports) = split_ports(s);
    let (lo, hi) = match addrs.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (addrs, None),
    };
    let addr = |a: &str| -> Result<IpAddr, RuleError> {
        let a = a.trim();
        let a = a
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(a);
        a.parse().map_err(|_| bad("not an IP address range"))
    };
    let min = addr(lo)?;
    let max = hi.map(addr).transpose()?.unwrap_or(min);
    if min.is_ipv4() != max.is_ipv4() || min > max {
        return Err(bad("not an IP address range"));
    }
    let ports = match ports {
        None => None,
        Some(p) => {
            let port = |x: &str| {
                x.trim()
                    .parse::<u16>()
                    .map_err(|_| bad("not a port range (1..65535)"))
            };
            let (a, b) = match p.split_once('-') {
                Some((a, b)) => (port(a)?, port(b)?),
                None => {
                    let a = port(p)?;
                    (a, a)
                }
            };
            if a > b || (a == 0 && b != 0) {
                return Err(bad("not a port range (1..65535)"));
            }
            (a != 0).then_some((a, b))
        }
    };
    Ok(NatRange { min, max, ports })
}

/// Splits `ADDRS[:PORTS]`: IPv4 at the first colon; IPv6 only after a closing bracket.
fn split_ports(s: &str) -> (&str, Option<&str>) {
    if s.contains('[') {
        return match s.rfind("]:") {
            Some(i) => (&s[..=i], Some(&s[i + 2..])),
            None => (s, None),
        };
    }
    if s.matches(':').count() == 1 {
        if let Some((a, p)) = s.split_once(':') {
            return (a, Some(p));
        }
    }
    (s, None)
}

impl fmt::Display for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nat")?;
        let Some(kind) = self.kind else {
            return Ok(());
        };
        f.write_str(match kind {
            NatKind::Src => "(src",
            NatKind::Dst => "(dst",
        })?;
        if let Some(r) = self.range {
            let bracket = r.ports.is_some();
            let addr = |a: IpAddr| match a {
                IpAddr::V6(v6) if bracket => format!("[{v6}]"),
                a => a.to_string(),
            };
            write!(f, "={}", addr(r.min))?;
            if r.max != r.min {
                write!(f, "-{}", addr(r.max))?;
            }
            if let Some((lo, hi)) = r.ports {
                write!(f, ":{lo}")?;
                if hi != lo {
                    write!(f, "-{hi}")?;
                }
            }
            // OVS prints the flags only with a range.
            for (on, name) in [
                (self.persistent, "persistent"),
                (self.hash, "hash"),
                (self.random, "random"),
            ] {
                if on {
                    write!(f, ",{name}")?;
                }
            }
        }
        f.write_char(')')
    }
}

/// An `exec` action as OVS prints it: `load` and `move` name the fields by NXM name.
/// A `set_field` is a `load` of the whole field there (OpenFlow 1.0 has no set_field), and a
/// load wider than 64 bits is two (NXAST_REG_LOAD carries 64 bits).
fn format_exec(a: &Action) -> String {
    match a {
        Action::SetField { field, value } => Action::Load {
            dst: FieldRef::whole(*field),
            value: *value,
        }
        .to_string(),
        other => other.to_string(),
    }
}

impl fmt::Display for CtAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.commit {
            parts.push("commit".into());
        }
        if self.force {
            parts.push("force".into());
        }
        if let Some(t) = self.table {
            parts.push(format!("table={t}"));
        }
        match &self.zone {
            CtZone::Imm(0) => {}
            CtZone::Imm(z) => parts.push(format!("zone={z}")),
            CtZone::Field(r) => parts.push(format!("zone={r}")),
        }
        let mut nested = self.nested.as_slice();
        if let Some((CtNested::Nat(n), rest)) = nested.split_first() {
            parts.push(n.to_string());
            nested = rest;
        }
        if !nested.is_empty() {
            let inner: Vec<String> = nested
                .iter()
                .map(|n| match n {
                    CtNested::Nat(nat) => nat.to_string(),
                    CtNested::Set(a) => format_exec(a),
                })
                .collect();
            parts.push(format!("exec({})", inner.join(",")));
        }
        match self.alg {
            Some(CtAlg::Ftp) => parts.push("alg=ftp".into()),
            Some(CtAlg::Tftp) => parts.push("alg=tftp".into()),
            None => {}
        }
        write!(f, "ct({})", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_flow;

    /// `ct(args)` parsed, then printed.
    fn printed(args: &str) -> String {
        match parse(args) {
            Ok(ct) => ct.to_string(),
            Err(e) => panic!("ct({args}): {e:?}"),
        }
    }

    fn refused(args: &str) -> RuleError {
        match parse(args) {
            Ok(ct) => panic!("ct({args}) was accepted: {ct}"),
            Err(e) => e,
        }
    }

    fn match_of(text: &str) -> Match {
        parse_flow(&format!("{text},actions=drop")).unwrap().matches
    }

    #[test]
    fn printed_as_ovs_ofctl_prints_it() {
        // Each pair: what was written, what `ovs-ofctl parse-flow` (3.1) printed in
        // OpenFlow 1.0 with Nicira extensions (its default, and dump-flows'): a `set_field` in
        // `exec` is a `load`.
        for (text, ovs) in [
            ("commit,zone=1,table=1", "ct(commit,table=1,zone=1)"),
            ("", "ct()"),
            ("commit,zone=0", "ct(commit)"),
            ("zone=5,commit,table=3", "ct(commit,table=3,zone=5)"),
            ("commit,force,zone=5", "ct(commit,force,zone=5)"),
            ("table=2,nat", "ct(table=2,nat)"),
            ("commit,table=0", "ct(commit,table=0)"),
            (
                "commit,zone=NXM_NX_REG0[0..15],exec(set_field:0x1->ct_mark,set_field:0x5->ct_label),nat(src=10.0.0.1-10.0.0.2:1000-2000)",
                "ct(commit,zone=NXM_NX_REG0[0..15],exec(load:0x1->NXM_NX_CT_MARK[],load:0x5->NXM_NX_CT_LABEL[0..63],load:0->NXM_NX_CT_LABEL[64..127],nat(src=10.0.0.1-10.0.0.2:1000-2000)))",
            ),
            (
                "commit,nat(src=10.0.0.1-10.0.0.2:1000-2000),exec(set_field:0x1/0xff->ct_mark),table=3,zone=7",
                "ct(commit,table=3,zone=7,nat(src=10.0.0.1-10.0.0.2:1000-2000),exec(load:0x1->NXM_NX_CT_MARK[0..7]))",
            ),
            ("table=1,zone=NXM_NX_REG0[16..31]", "ct(table=1,zone=NXM_NX_REG0[16..31])"),
            ("commit,nat(dst=10.1.1.1:80,random)", "ct(commit,nat(dst=10.1.1.1:80,random))"),
            ("commit,nat(src=10.0.0.1:1000)", "ct(commit,nat(src=10.0.0.1:1000))"),
            ("commit,nat(dst=10.0.0.1:1000-1000)", "ct(commit,nat(dst=10.0.0.1:1000))"),
            ("commit,nat(src=10.0.0.1-10.0.0.1)", "ct(commit,nat(src=10.0.0.1))"),
            ("commit,nat(src=10.0.0.1:0)", "ct(commit,nat(src=10.0.0.1))"),
            ("commit,nat(src=10.0.0.1,hash,persistent)", "ct(commit,nat(src=10.0.0.1,persistent,hash))"),
            ("commit,nat(src,random)", "ct(commit,nat(src))"),
            ("commit,nat(src)", "ct(commit,nat(src))"),
            ("commit,nat", "ct(commit,nat)"),
            (
                "commit,nat(src=[fd00::1]-[fd00::2]:100-200,persistent,hash)",
                "ct(commit,nat(src=[fd00::1]-[fd00::2]:100-200,persistent,hash))",
            ),
            ("commit,nat(src=fd00::1-fd00::2)", "ct(commit,nat(src=fd00::1-fd00::2))"),
            ("commit,nat(src=[fd00::1]:80)", "ct(commit,nat(src=[fd00::1]:80))"),
            ("commit,nat(src=fd00::1:80)", "ct(commit,nat(src=fd00::1:80))"),
            ("commit,exec(load:0x1->NXM_NX_CT_MARK[])", "ct(commit,exec(load:0x1->NXM_NX_CT_MARK[]))"),
            (
                "commit,exec(set_field:0x1->ct_label)",
                "ct(commit,exec(load:0x1->NXM_NX_CT_LABEL[0..63],load:0->NXM_NX_CT_LABEL[64..127]))",
            ),
            (
                "commit,exec(load(0x1234567890ABCDEF->ct_label[32..95]))",
                "ct(commit,exec(load:0x1234567890abcdef->NXM_NX_CT_LABEL[32..95]))",
            ),
            ("commit,exec(load(1->ct_mark))", "ct(commit,exec(load:0x1->NXM_NX_CT_MARK[]))"),
            ("commit,exec()", "ct(commit)"),
            (
                "commit,exec(set_field:0x5/0x5->ct_mark)",
                "ct(commit,exec(load:0x1->NXM_NX_CT_MARK[0],load:0x1->NXM_NX_CT_MARK[2]))",
            ),
            ("commit,exec(set_field:0x1/0xffffffff->ct_mark)", "ct(commit,exec(load:0x1->NXM_NX_CT_MARK[]))"),
            (
                "commit,exec(set_field:0xffff0000000000000000000000000000/0xffff0000000000000000000000000000->ct_label)",
                "ct(commit,exec(load:0xffff->NXM_NX_CT_LABEL[112..127]))",
            ),
            (
                "commit,exec(move:NXM_NX_REG0[]->NXM_NX_CT_MARK[])",
                "ct(commit,exec(move:NXM_NX_REG0[]->NXM_NX_CT_MARK[]))",
            ),
            ("commit,alg=ftp", "ct(commit,alg=ftp)"),
        ] {
            assert_eq!(printed(text), ovs, "ct({text})");
            // What is printed reads back the same.
            let again = ovs.strip_prefix("ct(").and_then(|s| s.strip_suffix(')')).unwrap();
            assert_eq!(printed(again), ovs, "{ovs} read back");
        }
    }

    #[test]
    fn parenthesised_exec_actions_are_the_colon_forms() {
        // ovs-ofctl.at: `exec(load(1->NXM_NX_CT_MARK[]))`, `exec(set_field(0x1->ct_label))`.
        for (paren, colon) in [
            ("load(1->NXM_NX_CT_MARK[])", "load:1->NXM_NX_CT_MARK[]"),
            (
                "load(0x1234->ct_label[32..95])",
                "load:0x1234->ct_label[32..95]",
            ),
            ("set_field(0x1->ct_label)", "set_field:0x1->ct_label"),
            (
                "move(NXM_NX_REG0[]->ct_mark)",
                "move:NXM_NX_REG0[]->ct_mark",
            ),
        ] {
            let a = parse(&format!("commit,exec({paren})")).unwrap();
            assert_eq!(
                a,
                parse(&format!("commit,exec({colon})")).unwrap(),
                "{paren}"
            );
        }
        assert_eq!(refused("commit,exec(load(1->ct_mark)").field, "exec");
    }

    #[test]
    fn bad_arguments_name_the_field() {
        for (text, field) in [
            ("force,table=1", "force"),
            ("commit,exec(set_field:1->reg0)", "exec"),
            ("exec(set_field:1->ct_mark)", "exec"),
            ("commit,exec(output:1)", "exec"),
            ("commit,zone=NXM_NX_REG0[0..7]", "zone"),
            ("commit,zone=65536", "zone"),
            ("commit,table=255", "table"),
            ("commit,nat(src=10.0.0.1:2000-1000)", "nat"),
            ("commit,nat(src=10.0.0.2-10.0.0.1)", "nat"),
            ("commit,nat(src=10.0.0.1-fd00::1)", "nat"),
            ("commit,nat(src=10.0.0.1:65536)", "nat"),
            ("commit,nat(src=10.0.0.1:0-10)", "nat"),
            ("commit,nat(src=10.0.0.1,random,hash)", "nat"),
            ("commit,nat(random)", "nat"),
            ("commit,nat(src=10.0.0.1,dst=10.0.0.2)", "nat"),
            ("commit,nat(src=10.0.0.1),nat(dst=10.0.0.2)", "nat"),
            ("commit,nat(src=bogus)", "nat"),
            ("commit,alg=sip", "alg"),
            ("commit,bogus", "ct"),
            ("commit,exec(set_field:0x1ffffffff->ct_mark)", "set_field"),
        ] {
            assert_eq!(refused(text).field, field, "ct({text})");
        }
    }

    #[test]
    fn checked_against_the_match() {
        let check = |m: &str, args: &str| parse(args).unwrap().check(&match_of(m));
        assert!(check("ip", "commit,zone=1").is_ok());
        assert!(check("ipv6", "commit,nat(src=fd00::1)").is_ok());
        assert!(check("tcp", "commit,alg=ftp").is_ok());
        assert!(check("udp", "commit,alg=tftp").is_ok());
        assert!(check("ct_state=+trk,ip", "commit").is_ok());
        for (m, args) in [
            ("arp", "commit"),
            ("in_port=1", "commit"),
            ("ip", "commit,nat(src=fd00::1)"),
            ("ipv6", "commit,nat(src=10.0.0.1)"),
            ("udp", "commit,alg=ftp"),
            ("tcp", "commit,alg=tftp"),
            ("ct_state=+inv+trk,ip", "commit"),
        ] {
            assert!(check(m, args).is_err(), "{m} with ct({args})");
        }
    }
}
