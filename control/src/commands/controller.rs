//! The OpenFlow verbs, as `ovs-vsctl` has them: `set-controller` (active `tcp:` targets and
//! `ptcp:` / `punix:` listeners), `del-controller`, `get-controller`, and the bridge's
//! `datapath-id`; and the connections' lines of `show`.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use datapath::daemon::{BridgeState, Daemon};
use ofconn::{FailMode, Target};

use super::{arg, Reply};

fn bridge_mut<'a>(d: &'a mut Daemon, name: &str) -> Result<&'a mut BridgeState> {
    d.bridges
        .iter_mut()
        .find(|b| b.name == name)
        .ok_or_else(|| anyhow!("bridge: no bridge named {name:?}"))
}

/// Parses targets; an error names the target's position and part.
pub fn parse_targets<S: AsRef<str>>(words: &[S]) -> Result<Vec<Target>> {
    let mut out: Vec<Target> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let t = Target::parse(w.as_ref()).map_err(|e| anyhow!("target {}: {e}", i + 1))?;
        if out.contains(&t) {
            bail!("target {}: {t} is given twice", i + 1);
        }
        out.push(t);
    }
    Ok(out)
}

/// Sets the bridge's targets (all listeners bound, or nothing changed). A standalone
/// bridge left without targets gets Open vSwitch's default rule (priority 0, NORMAL) again,
/// as `ovs-vsctl del-controller` gives it.
pub fn set_controllers(d: &mut Daemon, bridge: &str, targets: Vec<Target>) -> Result<()> {
    let now_ns = d.now_ns();
    let b = bridge_mut(d, bridge)?;
    let had = !b.controllers.targets().is_empty();
    let none = targets.is_empty();
    b.controllers
        .set_targets(targets, Instant::now())
        .map_err(|e| anyhow!("target: {e}"))?;
    if had && none && b.controllers.fail_mode == FailMode::Standalone {
        b.of.add_flows_text(openflow::DEFAULT_RULES, now_ns)
            .map_err(|e| anyhow!("default rule: {e}"))?;
        d.barrier()?;
    }
    Ok(())
}

/// `set-fail-mode BRIDGE standalone|secure`.
pub(super) fn set_fail_mode(d: &mut Daemon, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let v = arg(args, 1, "fail-mode")?;
    let mode = FailMode::parse(v)
        .ok_or_else(|| anyhow!("fail-mode: {v:?} is not standalone or secure"))?;
    bridge_mut(d, bridge)?.controllers.fail_mode = mode;
    Ok(Reply::done(format!("{bridge}: fail-mode {}", mode.name())))
}

/// `get-fail-mode BRIDGE`.
pub(super) fn get_fail_mode(d: &Daemon, args: &[String]) -> Result<Reply> {
    let b = d.bridge(arg(args, 0, "bridge")?)?;
    let mode = b.controllers.fail_mode.name();
    Ok(Reply::new(
        mode.to_string(),
        json!({ "fail_mode": mode, "fail_open": b.of.fail_open() }),
    ))
}

/// `set-controller BRIDGE TARGET...`.
pub(super) fn set_controller(d: &mut Daemon, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    if args.len() < 2 {
        bail!("target: missing (tcp:IP[:PORT], ptcp:PORT[:IP] or punix:PATH)");
    }
    let (options, words): (Vec<&String>, Vec<&String>) =
        args[1..].iter().partition(|w| w.contains('='));
    let mut probe = None;
    let mut bundle_idle = None;
    let mut versions = None;
    for o in options {
        match o.split_once('=') {
            Some(("inactivity_probe", v)) => probe = Some(parse_probe(v)?),
            Some(("bundle_idle_timeout", v)) => bundle_idle = Some(parse_bundle_idle_timeout(v)?),
            Some(("protocols", v)) => {
                versions = Some(ofconn::conn::parse_protocols(v).map_err(|e| anyhow!(e))?)
            }
            _ => bail!(
                "set-controller: unknown option {o:?} (inactivity_probe=MS, bundle_idle_timeout=S, \
                 protocols=OpenFlow10,OpenFlow13)"
            ),
        }
    }
    if words.is_empty() {
        bail!("target: missing (tcp:IP[:PORT], ptcp:PORT[:IP] or punix:PATH)");
    }
    let targets = parse_targets(&words)?;
    let text: Vec<String> = targets.iter().map(Target::to_string).collect();
    set_controllers(d, bridge, targets)?;
    // Connections are accepted and opened later (`Controllers::run`): they offer these.
    if let Some(v) = versions {
        bridge_mut(d, bridge)?.controllers.versions = v;
    }
    if let Some(p) = probe {
        bridge_mut(d, bridge)?.controllers.probe = p;
    }
    if let Some(t) = bundle_idle {
        bridge_mut(d, bridge)?.controllers.bundle_idle_timeout = t;
    }
    Ok(Reply::new(
        format!("{bridge}: controller {}", text.join(" ")),
        json!({ "bridge": bridge, "targets": text }),
    ))
}

/// `inactivity_probe=MS`: 0 turns the probe off; otherwise at least 1000, as in OVS.
pub fn parse_probe(v: &str) -> Result<Option<std::time::Duration>> {
    match v.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(ms) if (1000..=3_600_000).contains(&ms) => {
            Ok(Some(std::time::Duration::from_millis(ms)))
        }
        _ => bail!("inactivity_probe: {v:?} is not 0 (off) or 1000..=3600000 ms"),
    }
}

/// `bundle_idle_timeout=S`: seconds, at least 1, as Open vSwitch's
/// `other_config:bundle-idle-timeout`.
pub fn parse_bundle_idle_timeout(v: &str) -> Result<std::time::Duration> {
    match v.parse::<u64>() {
        Ok(s) if (1..=86_400).contains(&s) => Ok(std::time::Duration::from_secs(s)),
        _ => bail!("bundle_idle_timeout: {v:?} is not 1..=86400 s"),
    }
}

/// `del-controller BRIDGE`.
pub(super) fn del_controller(d: &mut Daemon, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    set_controllers(d, bridge, Vec::new())?;
    Ok(Reply::done(format!("{bridge}: no controller")))
}

/// `get-controller BRIDGE`: the targets, one a line, as ovs-vsctl prints them.
pub(super) fn get_controller(d: &Daemon, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let b = d.bridge(bridge)?;
    let text: Vec<String> = b
        .controllers
        .targets()
        .iter()
        .map(Target::to_string)
        .collect();
    Ok(Reply::new(text.join("\n"), json!(text)))
}

/// A datapath id as Open vSwitch's `other-config:datapath-id` takes it: exactly 16 hex
/// digits, or `0x` and up to 16.
pub fn parse_datapath_id(v: &str) -> Result<u64> {
    let digits = match v.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.len() <= 16 => h,
        None if v.len() == 16 => v,
        _ => bail!("datapath-id: {v:?} is not 16 hex digits (or 0x and up to 16)"),
    };
    u64::from_str_radix(digits, 16)
        .map_err(|_| anyhow!("datapath-id: {v:?} is not 16 hex digits (or 0x and up to 16)"))
}

/// `set-datapath-id BRIDGE ID|default`.
pub(super) fn set_datapath_id(d: &mut Daemon, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let v = arg(args, 1, "datapath-id")?;
    let id = match v {
        "default" | "[]" => None,
        v => Some(parse_datapath_id(v)?),
    };
    let b = bridge_mut(d, bridge)?;
    b.datapath_id = id;
    let now = b.datapath_id();
    Ok(Reply::new(
        format!("{bridge}: datapath-id {now:016x}"),
        json!({ "bridge": bridge, "datapath_id": format!("{now:016x}") }),
    ))
}

/// The lines `show` gives a bridge's OpenFlow side, and the same as JSON.
pub(super) fn show_lines(b: &BridgeState, text: &mut String) -> Value {
    let dpid = format!("{:016x}", b.datapath_id());
    let targets: Vec<String> = b
        .controllers
        .targets()
        .iter()
        .map(Target::to_string)
        .collect();
    let fail_mode = b.controllers.fail_mode.name();
    let fail_open = b.of.fail_open();
    if targets.is_empty() && !fail_open {
        return json!({ "datapath_id": dpid, "targets": targets, "connections": [],
                       "fail_mode": fail_mode, "fail_open": fail_open });
    }
    let _ = writeln!(
        text,
        "  openflow: datapath-id {dpid} fail-mode {fail_mode}{}",
        if fail_open {
            " (failed open: NORMAL)"
        } else {
            ""
        }
    );
    let mut conns = Vec::new();
    for s in b.controllers.status(Instant::now()) {
        let mut line = format!("    {}: {}", s.target, s.state);
        if !s.peer.is_empty() {
            let _ = write!(line, " peer={}", s.peer);
        }
        if let Some(v) = &s.version {
            let _ = write!(line, " version={v}");
        }
        if let Some(r) = &s.role {
            let _ = write!(line, " role={r}");
        }
        if let Some(p) = s.port {
            let _ = write!(line, " port={p}");
        }
        if let Some(d) = &s.detail {
            let _ = write!(line, " ({d})");
        }
        let _ = writeln!(text, "{line}");
        conns.push(json!({
            "target": s.target, "state": s.state, "peer": s.peer,
            "version": s.version, "role": s.role, "port": s.port, "detail": s.detail,
        }));
    }
    json!({ "datapath_id": dpid, "targets": targets, "connections": conns,
            "fail_mode": fail_mode, "fail_open": fail_open })
}
