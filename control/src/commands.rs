//! The control socket's verbs: each takes the request's words (and the file contents
//! `add-flows` sends along) and answers with a text for people and a JSON value for
//! programs. Every verb validates all of its input before it changes anything, and a refusal
//! names the field.

mod controller;
mod flows;
mod groups;
mod netflow;
mod packet_out;

pub use controller::{
    parse_bundle_idle_timeout, parse_datapath_id, parse_probe, parse_targets, set_controllers,
};

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use datapath::daemon::pmd::{PmdSettings, PmdSnapshot};
use datapath::daemon::{Daemon, PortState};
use pipeline::VlanLimit;
use ports::spec::PortSpec;

/// A verb's answer.
pub struct Reply {
    pub text: String,
    pub json: Value,
}

impl Reply {
    fn new(text: String, json: Value) -> Reply {
        Reply { text, json }
    }

    fn done(text: impl Into<String>) -> Reply {
        let text = text.into();
        Reply {
            json: json!({ "result": text }),
            text,
        }
    }
}

/// The verbs, for `help` and for the CLI's usage text.
pub const VERBS: &[(&str, &str)] = &[
    (
        "add-br BRIDGE [local=true|false]",
        "create a bridge (NORMAL; LOCAL tap unless local=false)",
    ),
    ("del-br BRIDGE", "delete a bridge and its ports"),
    (
        "add-port BRIDGE IF [type=afxdp|afpacket|tap|generator|pcap|vhost-user|vxlan|geneve] \
         [KEY=VALUE...]",
        "add a port",
    ),
    ("del-port BRIDGE IF", "delete a port"),
    (
        "mod-port BRIDGE PORT up|down|flood|no-flood|receive|no-receive|forward|no-forward|packet-in|no-packet-in",
        "change a port's OpenFlow configuration, as ovs-ofctl mod-port (down: neither receives nor sends; no-flood: FLOOD and NORMAL skip it)",
    ),
    (
        "set-port IF mtu_request=N|[]",
        "set or clear a port's MTU (68..9702; afxdp at most 3822 without XDP multi-buffer, vhost-user 9198), as \
         ovs-vsctl set Interface IF mtu_request=N",
    ),
    ("list-ports BRIDGE", "the bridge's port names"),
    (
        "show",
        "bridges, ports (OpenFlow number, type, mode, state, datapath number) and queue placement",
    ),
    (
        "add-flow BRIDGE FLOW",
        "add a rule (ovs-ofctl syntax; ports by number or by name)",
    ),
    (
        "add-flows BRIDGE FILE [--bundle]",
        "add the rules of a file (all or none)",
    ),
    (
        "mod-flows BRIDGE FLOW [--strict]",
        "change the actions of the rules at least as specific as FLOW's match (adds FLOW when none is)",
    ),
    (
        "del-flows BRIDGE [FILTER] [--strict]",
        "delete the rules FILTER selects (all without it)",
    ),
    (
        "add-group BRIDGE GROUP",
        "add a group (ovs-ofctl syntax: 'group_id=1,type=select,bucket=output:1,bucket=output:2')",
    ),
    (
        "add-groups BRIDGE FILE",
        "apply the group mods of a file, one a line (add, modify, add_or_mod, delete; all or none)",
    ),
    (
        "mod-group BRIDGE GROUP",
        "replace an existing group's type and buckets (its counters restart)",
    ),
    (
        "del-groups BRIDGE [group_id=N]",
        "delete a group (all without one) and the rules that use it",
    ),
    ("dump-groups BRIDGE [N]", "the groups, as ovs-ofctl -O OpenFlow13 dump-groups"),
    (
        "packet-out BRIDGE [in_port=PORT] packet=HEX [actions=ACTIONS]",
        "send a frame through ACTIONS on the datapath, as from PORT (also: IN_PORT ACTIONS HEX...)",
    ),
    (
        "dump-group-stats BRIDGE [N]",
        "group and bucket packet and byte counts, as ovs-ofctl dump-group-stats",
    ),
    (
        "dump-flows BRIDGE [FILTER] [--no-stats] [--names|--no-names] [--sort[=FIELD]] [--rsort[=FIELD]]",
        "the rules FILTER selects (all without it), with their counters",
    ),
    (
        "set-frags BRIDGE normal|nx-match|drop",
        "how the rules see IP fragments (as ovs-ofctl set-frags)",
    ),
    ("get-frags BRIDGE", "the bridge's fragment handling"),
    (
        "dump-megaflows [BRIDGE] [--names|--no-names]",
        "the datapath's megaflows (masks and stats) per PMD and bridge, in OpenFlow port numbers or names",
    ),
    ("port-stats [BRIDGE]", "per-port counters"),
    ("pmd-stats", "per-PMD cycles per packet, cache hits, queues"),
    (
        "runtime",
        "per-node calls, vectors, cycles (like VPP show runtime)",
    ),
    ("drop-reasons", "every non-zero drop counter"),
    (
        "clear-stats",
        "zero the counters: ports (their types' own too), nodes, classifier, PMDs",
    ),
    (
        "set KEY=VALUE...",
        "batch-size, busy-poll, pmd-sleep-max-us, flow-limit, vlan-limit, pmd-cores",
    ),
    (
        "rebalance",
        "place the receive queues again by measured cycles",
    ),
    (
        "add-tlv-map BRIDGE {class=C,type=T,len=L}->tun_metadataN[,...]",
        "map Geneve options to tun_metadata fields (as ovs-ofctl add-tlv-map)",
    ),
    (
        "del-tlv-map BRIDGE [MAPPINGS]",
        "remove those mappings (all without MAPPINGS)",
    ),
    ("dump-tlv-map BRIDGE", "the bridge's Geneve TLV map"),
    (
        "route-add PREFIX BRIDGE [GW] [src=IP]",
        "an underlay route for tunnels (as ovs-appctl ovs/route/add)",
    ),
    ("route-del PREFIX", "delete an underlay route"),
    (
        "show-routes",
        "the underlay routes: connected (the bridges' LOCAL addresses) and added",
    ),
    (
        "neigh-add BRIDGE IP MAC",
        "a static underlay neighbour (as ovs-appctl tnl/neigh/set)",
    ),
    ("neigh-del BRIDGE IP", "delete an underlay neighbour"),
    (
        "show-neighbours",
        "the underlay neighbours, static and learned from ARP / ND",
    ),
    ("neigh-flush", "forget the learned underlay neighbours"),
    (
        "dump-conntrack [zone=N]",
        "the tracked connections (as ovs-appctl dpctl/dump-conntrack)",
    ),
    (
        "flush-conntrack [zone=N]",
        "forget the tracked connections (of one zone)",
    ),
    (
        "ct-stats",
        "connection tracking counters: connections, commits, expiries, refusals, recirculation states",
    ),
    (
        "ct-set-maxconns N, ct-get-maxconns",
        "the table's limit of connections (as ovs-appctl dpctl/ct-*-maxconns)",
    ),
    (
        "ct-set-limits [default=N] [zone=Z,limit=N]..., ct-del-limits zone=Z[,Z]..., ct-get-limits [zone=Z[,Z]...]",
        "per-zone limits of connections (as ovs-appctl dpctl/ct-*-limits; 0: unlimited)",
    ),
    (
        "ipf-get-status",
        "IP fragment reassembly for ct(): settings and counters (as ovs-appctl dpctl/ipf-get-status)",
    ),
    (
        "ipf-set-enabled [v4|v6] [0|1], ipf-set-disabled [v4|v6]",
        "turn fragment reassembly on or off (both families without v4|v6)",
    ),
    (
        "ipf-set-min-frag v4|v6 N",
        "the smallest non-last fragment reassembled, in IP bytes (400..; OVS's defaults 1200, 1280)",
    ),
    (
        "ipf-set-max-nfrags N",
        "the most fragments held, all datagrams together (0..5000; default 1000)",
    ),
    (
        "ct-set-timeouts [zone=Z] NAME=SECONDS..., ct-get-timeouts [zone=Z], ct-del-timeouts zone=Z",
        "conntrack timeouts, the default ones or a zone's (OVS's timeout policy names: tcp_syn_sent, tcp_established, udp_first, icmp_reply, ...)",
    ),
    (
        "set-controller BRIDGE TARGET... [inactivity_probe=MS] [bundle_idle_timeout=S] [protocols=OpenFlow10,OpenFlow13]",
        "OpenFlow 1.3 connections of a bridge, as ovs-vsctl set-controller: tcp:IP[:PORT] (connect, reconnect), ptcp:PORT[:IP] and punix:PATH (listen; mode 0600)",
    ),
    ("del-controller BRIDGE", "close the bridge's OpenFlow targets and connections"),
    ("get-controller BRIDGE", "the bridge's OpenFlow targets"),
    (
        "set-fail-mode BRIDGE standalone|secure",
        "without a connected controller: standalone fails open (rules flushed, NORMAL), secure keeps the rules",
    ),
    ("get-fail-mode BRIDGE", "the bridge's fail mode"),
    (
        "set-datapath-id BRIDGE ID|default",
        "the datapath id controllers see (16 hex digits; default: from the bridge's MAC)",
    ),
    (
        "set-netflow BRIDGE targets=IP:PORT[,...] [active_timeout=S] [engine_type=N] [engine_id=N] [add_id_to_interface=true|false]",
        "NetFlow v5 export on a bridge, as OVS's NetFlow table (active_timeout 0 or -1: 600 s)",
    ),
    ("clear-netflow BRIDGE", "NetFlow off"),
    (
        "show-netflow [BRIDGE]",
        "NetFlow settings and counters: records, datagrams, send failures per target",
    ),
];

/// Runs one request.
pub fn execute(d: &mut Daemon, argv: &[String], data: Option<&str>) -> Result<Reply> {
    let Some((verb, rest)) = argv.split_first() else {
        bail!("verb: empty request");
    };
    let (args, mut flags) = split_flags(rest);
    // Every answer carries both forms; --json only tells the client which to print.
    flags.retain(|f| f != "--json");
    let allow = |allowed: &[&str]| -> Result<()> {
        for f in &flags {
            if !allowed.contains(&f.as_str()) {
                bail!("{verb}: unknown option {f}");
            }
        }
        Ok(())
    };
    let strict = flags.iter().any(|f| f == "--strict");
    match verb.as_str() {
        "add-br" => {
            allow(&[])?;
            let name = arg(&args, 0, "bridge")?;
            let mut local = true;
            for a in &args[1..] {
                match a.split_once('=') {
                    Some(("local", v)) => local = parse_bool("local", v)?,
                    _ => bail!("add-br: unknown option {a:?} (local=true|false)"),
                }
            }
            d.add_bridge(name, local)?;
            Ok(Reply::done(format!("added bridge {name}")))
        }
        "del-br" => {
            allow(&[])?;
            let name = arg(&args, 0, "bridge")?;
            d.del_bridge(name)?;
            Ok(Reply::done(format!("deleted bridge {name}")))
        }
        "add-port" => {
            allow(&[])?;
            let bridge = arg(&args, 0, "bridge")?;
            let name = arg(&args, 1, "port")?;
            d.bridge(bridge)?;
            let opts: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            let spec = PortSpec::parse_args(name, &opts).map_err(|e| anyhow!("{e}"))?;
            let ofport = d.add_port(bridge, spec)?;
            let mode = d
                .bridge(bridge)?
                .ports
                .iter()
                .find(|p| p.name == *name)
                .and_then(|p| p.queues.first())
                .map(|q| {
                    let info = q.info();
                    format!("{} {}", info.kind, info.mode)
                })
                .unwrap_or_default();
            Ok(Reply::new(
                format!("added port {name} to {bridge} as ofport {ofport} ({mode})"),
                json!({ "bridge": bridge, "port": name, "ofport": ofport, "mode": mode }),
            ))
        }
        "del-port" => {
            allow(&[])?;
            let bridge = arg(&args, 0, "bridge")?;
            let name = arg(&args, 1, "port")?;
            d.del_port(bridge, name)?;
            Ok(Reply::done(format!("deleted port {name} from {bridge}")))
        }
        "mod-port" => {
            allow(&[])?;
            let bridge = arg(&args, 0, "bridge")?;
            let name = arg(&args, 1, "port")?;
            let action = arg(&args, 2, "action")?;
            mod_port(d, bridge, name, action)
        }
        "set-port" => {
            allow(&[])?;
            let name = arg(&args, 0, "port")?;
            if args.len() < 2 {
                bail!("set-port: missing mtu_request=N");
            }
            let mut mtu = None;
            for a in &args[1..] {
                match a.split_once('=') {
                    Some(("mtu_request" | "mtu-request", "[]")) => mtu = Some(None),
                    Some(("mtu_request" | "mtu-request", v)) => {
                        let n: u32 = v.parse().map_err(|_| {
                            anyhow!("mtu_request: bad value {v:?}: not a number (68..=9702, or [] to clear)")
                        })?;
                        let n = u16::try_from(n).map_err(|_| {
                            anyhow!("mtu_request: bad value {v:?}: must be 68..=9702")
                        })?;
                        mtu = Some(Some(n));
                    }
                    _ => bail!("set-port: unknown option {a:?} (mtu_request=N|[])"),
                }
            }
            let mtu = mtu.unwrap_or(None);
            d.set_port_mtu(name, mtu)?;
            Ok(Reply::done(match mtu {
                Some(m) => format!("set port {name} mtu_request={m}"),
                None => format!("cleared port {name} mtu_request"),
            }))
        }
        "list-ports" => {
            allow(&[])?;
            let b = d.bridge(arg(&args, 0, "bridge")?)?;
            let mut names: Vec<&str> = b.ports.iter().map(|p| p.name.as_str()).collect();
            names.sort();
            Ok(Reply::new(names.join("\n"), json!(names)))
        }
        "show" => {
            allow(&[])?;
            Ok(show(d))
        }
        "set-controller" => {
            allow(&[])?;
            controller::set_controller(d, &args)
        }
        "del-controller" => {
            allow(&[])?;
            controller::del_controller(d, &args)
        }
        "get-controller" => {
            allow(&[])?;
            controller::get_controller(d, &args)
        }
        "set-fail-mode" => {
            allow(&[])?;
            controller::set_fail_mode(d, &args)
        }
        "get-fail-mode" => {
            allow(&[])?;
            controller::get_fail_mode(d, &args)
        }
        "set-datapath-id" => {
            allow(&[])?;
            controller::set_datapath_id(d, &args)
        }
        "add-flow" => {
            allow(&[])?;
            let bridge = arg(&args, 0, "bridge")?;
            let text = args.get(1..).map(|a| a.join(" ")).unwrap_or_default();
            let text = flows::resolve(d, bridge, &text)?;
            let m = openflow::parse_flow_mod(&format!("add {text}")).map_err(|e| anyhow!("{e}"))?;
            apply(d, bridge, &[m])
        }
        "add-flows" => {
            allow(&["--bundle"])?;
            let bridge = arg(&args, 0, "bridge")?;
            let text = data.ok_or_else(|| anyhow!("file: the request carries no file contents"))?;
            add_flows(d, bridge, text, flags.iter().any(|f| f == "--bundle"))
        }
        "mod-flows" => {
            allow(&["--strict"])?;
            let bridge = arg(&args, 0, "bridge")?;
            let text = args.get(1..).map(|a| a.join(" ")).unwrap_or_default();
            let text = flows::resolve(d, bridge, &text)?;
            let m = openflow::parse_mod_flow(&text, strict).map_err(|e| anyhow!("{e}"))?;
            apply(d, bridge, &[m])
        }
        "del-flows" => {
            allow(&["--strict"])?;
            let bridge = arg(&args, 0, "bridge")?;
            let text = args.get(1..).map(|a| a.join(" ")).unwrap_or_default();
            let text = flows::resolve(d, bridge, &text)?;
            if !strict {
                flows::check_loose_filter("del-flows", &text)?;
            }
            let m = openflow::parse_del_flow(&text, strict).map_err(|e| anyhow!("{e}"))?;
            apply(d, bridge, &[m])
        }
        "dump-flows" => flows::dump_flows(d, &args, &flags),
        "set-frags" => {
            allow(&[])?;
            let bridge = arg(&args, 0, "bridge")?;
            let mode = frag_mode(arg(&args, 1, "frag_mode")?)?;
            d.bridge(bridge)?.of.set_frag_mode(mode);
            // As after a rule change: no fragment is handled the old way once this answers.
            d.barrier()?;
            Ok(Reply::new(
                format!("{bridge}: frag_mode {}", mode.name()),
                json!({ "bridge": bridge, "frag_mode": mode.name() }),
            ))
        }
        "get-frags" => {
            allow(&[])?;
            let bridge = arg(&args, 0, "bridge")?;
            let mode = d.bridge(bridge)?.of.frag_mode();
            Ok(Reply::new(
                mode.name().to_string(),
                json!({ "bridge": bridge, "frag_mode": mode.name() }),
            ))
        }
        "dump-megaflows" => {
            allow(&["--names", "--no-names"])?;
            // The last of --names/--no-names wins; numbers by default, as OVS without -m.
            let names =
                flags.iter().rev().find(|f| f.ends_with("names")) == Some(&"--names".into());
            dump_megaflows(d, args.first().cloned(), names)
        }
        "port-stats" => {
            allow(&[])?;
            let only = args.first();
            if let Some(b) = only {
                d.bridge(b)?;
            }
            port_stats(d, only.map(String::as_str))
        }
        "pmd-stats" => {
            allow(&[])?;
            pmd_stats(d)
        }
        "runtime" => {
            allow(&[])?;
            runtime(d)
        }
        "drop-reasons" => {
            allow(&[])?;
            drop_reasons(d)
        }
        "clear-stats" => {
            allow(&[])?;
            d.pmd_call_all(|p| p.clear_stats())?;
            for p in d.bridges.iter_mut().flat_map(|b| b.ports.iter_mut()) {
                p.clear_counters();
            }
            Ok(Reply::done("counters cleared"))
        }
        "set" => {
            allow(&[])?;
            set(d, &args)
        }
        "rebalance" => {
            allow(&[])?;
            d.replan()?;
            Ok(show(d))
        }
        "add-tlv-map" | "del-tlv-map" | "dump-tlv-map" => {
            allow(&[])?;
            tlv_map(d, verb, &args)
        }
        "route-add" | "route-del" | "show-routes" | "neigh-add" | "neigh-del"
        | "show-neighbours" | "show-neighbors" | "neigh-flush" => {
            allow(&[])?;
            underlay(d, verb, &args)
        }
        "dump-conntrack" | "flush-conntrack" | "ct-stats" => {
            allow(&[])?;
            conntrack(d, verb, &args)
        }
        "ct-set-maxconns" | "ct-get-maxconns" | "ct-set-limits" | "ct-del-limits"
        | "ct-get-limits" => {
            allow(&[])?;
            ct_limits(d, verb, &args)
        }
        "ipf-get-status" | "ipf-set-enabled" | "ipf-set-disabled" | "ipf-set-min-frag"
        | "ipf-set-max-nfrags" => {
            allow(&[])?;
            ipf_verbs(d.conntrack.ipf(), verb, &args)
        }
        "ct-set-timeouts" | "ct-get-timeouts" | "ct-del-timeouts" => {
            allow(&[])?;
            ct_timeouts(d, verb, &args)
        }
        "add-group" | "add-groups" | "mod-group" | "del-groups" | "dump-groups"
        | "dump-group-stats" => {
            allow(&[])?;
            groups::groups(d, verb, &args, data)
        }
        "packet-out" => {
            allow(&[])?;
            packet_out::packet_out(d, &args)
        }
        "set-netflow" | "clear-netflow" | "show-netflow" => {
            allow(&[])?;
            netflow::netflow(d, verb, &args)
        }
        "help" => match args.first() {
            None => Ok(Reply::new(crate::help::overview(), json!(VERBS))),
            Some(v) => crate::help::verb_help(v)
                .map(|text| Reply::new(text.clone(), json!({ "verb": v, "help": text })))
                .ok_or_else(|| anyhow!("help: unknown verb {v:?}")),
        },
        other => bail!("verb: unknown verb {other:?} (try help)"),
    }
}

/// The Geneve TLV map verbs, as `ovs-ofctl add-tlv-map` / `del-tlv-map` / `dump-tlv-map`. A
/// change revalidates the bridge's megaflows and tells the `tunnel-decap` nodes which
/// critical options are now known.
fn tlv_map(d: &mut Daemon, verb: &str, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let of = d.bridge(bridge)?.of.clone();
    let text = args.get(1).map(String::as_str);
    if let Some(extra) = args.get(2) {
        bail!("{verb}: unexpected {extra:?}");
    }
    match verb {
        "dump-tlv-map" => {
            let map = of.tlv_map();
            let entries: Vec<Value> = map
                .entries()
                .iter()
                .map(|e| json!({ "class": e.class, "type": e.ty, "len": e.len, "index": e.index }))
                .collect();
            return Ok(Reply::new(map.dump_text(), json!({ "mappings": entries })));
        }
        "add-tlv-map" => {
            let text = text.ok_or_else(|| anyhow!("tlv-map: missing"))?;
            of.change_tlv_map(|m| m.add(text))?;
        }
        _ => of.change_tlv_map(|m| m.del(text))?,
    }
    d.push_tunnel_config()?;
    d.barrier()?;
    Ok(Reply::done("OK"))
}

/// The underlay verbs, Open vSwitch's `ovs/route/*` and `tnl/neigh/*`: the route table that
/// says which bridge sends a tunnel's packets from which address, and the neighbour table of
/// next-hop MACs. A route or an entry for a bridge that does not exist is refused.
/// `dump-conntrack`, `flush-conntrack` (each with an optional `zone=N`) and `ct-stats`.
fn conntrack(d: &mut Daemon, verb: &str, args: &[String]) -> Result<Reply> {
    let now = d.now_ns();
    let mut zone = None;
    for a in args {
        match a.strip_prefix("zone=") {
            Some(z) if verb != "ct-stats" => {
                zone = Some(
                    z.parse::<u16>()
                        .map_err(|_| anyhow!("zone: {z:?} is not a zone (0..65535)"))?,
                );
            }
            _ => bail!("{verb}: unexpected {a:?}"),
        }
    }
    let ct = &d.conntrack;
    match verb {
        "dump-conntrack" => {
            let mut lines: Vec<String> = ct
                .entries(zone, now)
                .iter()
                .map(|e| e.to_string())
                .collect();
            lines.sort();
            let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
            Ok(Reply::new(text, json!({ "connections": lines })))
        }
        "flush-conntrack" => {
            let n = ct.flush(zone);
            Ok(Reply::done(format!("OK: {n} connections flushed")))
        }
        _ => {
            let s = ct.stats();
            let e = &s.events;
            let (recirc_states, recirc_freed) = d.recirc_states();
            let rows = [
                ("connections", u64::from(s.conns)),
                ("limit", u64::from(ct.max_conns())),
                ("committed", e.committed),
                ("expired", e.expired),
                ("flushed", e.flushed),
                ("refused-table-full", e.table_full),
                ("refused-zone-full", e.zone_full),
                ("refused-nat-exhausted", e.nat_exhausted),
                ("refused-reply-taken", e.reply_taken),
                ("invalid", e.invalid),
                ("reopened", e.reopened),
                ("recirc-states", recirc_states as u64),
                ("recirc-freed", recirc_freed),
            ];
            let text = rows
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect::<String>();
            let obj: serde_json::Map<String, Value> = rows
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            Ok(Reply::new(text, Value::Object(obj)))
        }
    }
}

/// The timeout policies: the default one, or a zone's. Every argument is checked before
/// anything changes.
fn ct_timeouts(d: &mut Daemon, verb: &str, args: &[String]) -> Result<Reply> {
    let ct = &d.conntrack;
    let mut zone = None;
    let mut values = Vec::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("{verb}: unexpected {a:?} (NAME=SECONDS)"))?;
        if k == "zone" {
            zone = Some(
                v.parse::<u16>()
                    .map_err(|_| anyhow!("zone: {v:?} is not a zone (0..65535)"))?,
            );
        } else if verb == "ct-set-timeouts" {
            let secs = v
                .parse::<u32>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| anyhow!("{k}: {v:?} is not a number of seconds (1..)"))?;
            values.push((k.to_string(), secs));
        } else {
            bail!("{verb}: unexpected {a:?}");
        }
    }
    match verb {
        "ct-set-timeouts" => {
            if values.is_empty() {
                bail!("ct-set-timeouts: nothing to set (NAME=SECONDS)");
            }
            let mut policy = ct.timeouts(zone);
            for (k, secs) in &values {
                if !policy.set(k, *secs) {
                    let names: Vec<&str> = policy.fields().iter().map(|f| f.0).collect();
                    bail!("{k}: not a timeout (one of {})", names.join(", "));
                }
            }
            ct.set_timeouts(zone, policy);
            Ok(Reply::done("OK"))
        }
        "ct-del-timeouts" => {
            let z = zone.ok_or_else(|| anyhow!("ct-del-timeouts: needs zone=Z"))?;
            ct.del_timeouts(z);
            Ok(Reply::done("OK"))
        }
        _ => {
            let fields = ct.timeouts(zone).fields();
            let text = fields
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>();
            let obj: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            Ok(Reply::new(text, Value::Object(obj)))
        }
    }
}

/// The fragment reassembly verbs, with OVS's `dpctl/ipf-*` texts. Every argument is checked
/// before anything changes.
fn ipf_verbs(ipf: &conntrack::Ipf, verb: &str, args: &[String]) -> Result<Reply> {
    let family = |v: &str| match v {
        "v4" => Ok(false),
        "v6" => Ok(true),
        _ => Err(anyhow!("family: {v:?} is not v4 or v6")),
    };
    let number = |field: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| anyhow!("{field}: {v:?} is not a number (0..4294967295)"))
    };
    match verb {
        "ipf-set-enabled" | "ipf-set-disabled" => {
            let mut families = vec![false, true];
            let mut on = verb == "ipf-set-enabled";
            for (i, a) in args.iter().enumerate() {
                match a.as_str() {
                    "v4" | "v6" if i == 0 => families = vec![family(a)?],
                    "0" | "1" if verb == "ipf-set-enabled" && i + 1 == args.len() => on = a == "1",
                    _ => bail!("{verb}: unexpected {a:?} ([v4|v6] [0|1])"),
                }
            }
            for v6 in families {
                ipf.set_enabled(v6, on);
            }
            let what = if on { "enabling" } else { "disabling" };
            Ok(Reply::done(format!(
                "{what} fragmentation reassembly successful"
            )))
        }
        "ipf-set-min-frag" => {
            let [v, n] = args else {
                bail!("ipf-set-min-frag: takes v4|v6 and a size");
            };
            let (v6, n) = (family(v)?, number("min-frag", n)?);
            ipf.set_min_frag(v6, n)?;
            Ok(Reply::done("setting minimum fragment size successful"))
        }
        "ipf-set-max-nfrags" => {
            let [n] = args else {
                bail!("ipf-set-max-nfrags: takes one number");
            };
            ipf.set_max_frags(number("max-nfrags", n)?)?;
            Ok(Reply::done("setting maximum fragments successful"))
        }
        _ => {
            if let Some(a) = args.first() {
                bail!("ipf-get-status: unexpected {a:?}");
            }
            let s = ipf.status();
            let family = |f: &conntrack::ipf::IpfFamilyStatus| {
                let mut obj = serde_json::Map::new();
                obj.insert("enabled".into(), json!(f.enabled));
                obj.insert("min_frag_size".into(), json!(f.min_frag_size));
                for c in conntrack::IpfCounter::ALL {
                    obj.insert(c.name().into(), json!(f.get(c)));
                }
                Value::Object(obj)
            };
            let obj = json!({
                "max_nfrags": s.max_frags,
                "nfrag": s.frags,
                "v4": family(&s.v4),
                "v6": family(&s.v6),
            });
            Ok(Reply::new(s.to_string(), obj))
        }
    }
}

/// The connection limits, with OVS's verbs and texts. Every argument is checked before
/// any limit changes.
fn ct_limits(d: &mut Daemon, verb: &str, args: &[String]) -> Result<Reply> {
    let ct = &d.conntrack;
    let number = |field: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| anyhow!("{field}: {v:?} is not a number (0..4294967295)"))
    };
    let zone = |v: &str| {
        v.parse::<u16>()
            .map_err(|_| anyhow!("zone: {v:?} is not a zone (0..65535)"))
    };
    // `zone=Z[,Z]...` lists (ct-del-limits, ct-get-limits).
    let zones = |args: &[String]| -> Result<Vec<u16>> {
        let mut out = Vec::new();
        for a in args {
            let list = a
                .strip_prefix("zone=")
                .ok_or_else(|| anyhow!("{verb}: unexpected {a:?} (zone=Z[,Z]...)"))?;
            for z in list.split(',') {
                out.push(zone(z)?);
            }
        }
        Ok(out)
    };
    match verb {
        "ct-set-maxconns" => {
            let [n] = args else {
                bail!("ct-set-maxconns: takes one number");
            };
            ct.set_max_conns(number("maxconns", n)?);
            Ok(Reply::done("OK"))
        }
        "ct-get-maxconns" => {
            if let Some(a) = args.first() {
                bail!("ct-get-maxconns: unexpected {a:?}");
            }
            let n = ct.max_conns();
            Ok(Reply::new(format!("{n}\n"), json!({ "maxconns": n })))
        }
        "ct-set-limits" => {
            let mut default = None;
            let mut limits = Vec::new();
            for a in args {
                if let Some(v) = a.strip_prefix("default=") {
                    default = Some(number("default", v)?);
                    continue;
                }
                let (mut z, mut l) = (None, None);
                for kv in a.split(',') {
                    match kv.split_once('=') {
                        Some(("zone", v)) => z = Some(zone(v)?),
                        Some(("limit", v)) => l = Some(number("limit", v)?),
                        _ => bail!("ct-set-limits: unexpected {kv:?} (zone=Z,limit=N)"),
                    }
                }
                match (z, l) {
                    (Some(z), Some(l)) => limits.push((z, l)),
                    _ => bail!("ct-set-limits: {a:?} needs zone=Z,limit=N"),
                }
            }
            if default.is_none() && limits.is_empty() {
                bail!("ct-set-limits: nothing to set");
            }
            if let Some(n) = default {
                ct.set_default_zone_limit(n);
            }
            for (z, l) in limits {
                ct.set_zone_limit(z, Some(l));
            }
            Ok(Reply::done("OK"))
        }
        "ct-del-limits" => {
            let list = zones(args)?;
            if list.is_empty() {
                bail!("ct-del-limits: needs zone=Z[,Z]...");
            }
            for z in list {
                ct.set_zone_limit(z, None);
            }
            Ok(Reply::done("OK"))
        }
        _ => {
            // OVS's text: the default, then each zone asked for (or each with a limit of
            // its own) as `zone=Z,limit=N,count=C`.
            let asked = zones(args)?;
            let list: Vec<u16> = if asked.is_empty() {
                ct.zone_limits().iter().map(|&(z, _)| z).collect()
            } else {
                asked
            };
            let default_limit = ct.default_zone_limit();
            let mut text = format!("default limit={default_limit}\n");
            let mut zones_json = Vec::new();
            for z in list {
                let (limit, count) = (ct.zone_limit(z), ct.zone_count(z));
                text.push_str(&format!("zone={z},limit={limit},count={count}\n"));
                zones_json.push(json!({ "zone": z, "limit": limit, "count": count }));
            }
            Ok(Reply::new(
                text,
                json!({ "default": default_limit, "zones": zones_json }),
            ))
        }
    }
}

fn underlay(d: &mut Daemon, verb: &str, args: &[String]) -> Result<Reply> {
    use tunnels::underlay::{parse_neigh_del, parse_route_del, NeighSpec, RouteSpec};
    let now = d.now_ns();
    let no_args = |field: &str| match args.first() {
        Some(w) => Err(anyhow!("{field}: unexpected {w:?}")),
        None => Ok(()),
    };
    match verb {
        "route-add" => {
            let spec = RouteSpec::parse(args).map_err(|e| anyhow!("{e}"))?;
            d.bridge(&spec.bridge)?;
            let info = d.routes.add(spec).map_err(|e| anyhow!("{e}"))?;
            Ok(Reply::done(format!("OK: {info}")))
        }
        "route-del" => {
            let prefix = parse_route_del(args).map_err(|e| anyhow!("{e}"))?;
            let info = d.routes.del(prefix).map_err(|e| anyhow!("{e}"))?;
            Ok(Reply::done(format!("OK: deleted {info}")))
        }
        "show-routes" => {
            no_args("show-routes")?;
            let routes: Vec<String> = d.routes.routes().iter().map(|r| r.to_string()).collect();
            Ok(Reply::new(
                d.routes.show_text(),
                json!({ "routes": routes }),
            ))
        }
        "neigh-add" => {
            let spec = NeighSpec::parse(args).map_err(|e| anyhow!("{e}"))?;
            d.bridge(&spec.bridge)?;
            d.neighs
                .add_static(&spec, now)
                .map_err(|e| anyhow!("{e}"))?;
            Ok(Reply::done("OK"))
        }
        "neigh-del" => {
            let (bridge, ip) = parse_neigh_del(args).map_err(|e| anyhow!("{e}"))?;
            d.neighs
                .remove(&bridge, ip, now)
                .map_err(|e| anyhow!("{e}"))?;
            Ok(Reply::done("OK"))
        }
        "neigh-flush" => {
            no_args("neigh-flush")?;
            let n = d.neighs.flush();
            Ok(Reply::done(format!("OK: {n} dynamic entries flushed")))
        }
        _ => {
            no_args("show-neighbours")?;
            let entries: Vec<Value> = d
                .neighs
                .entries(now)
                .iter()
                .map(|n| {
                    json!({
                        "ip": n.ip.to_string(),
                        "mac": tunnels::underlay::format_mac(n.mac),
                        "bridge": n.bridge,
                        "kind": n.kind.label(),
                        "stale": n.stale,
                    })
                })
                .collect();
            Ok(Reply::new(
                d.neighs.show_text(now),
                json!({ "neighbours": entries }),
            ))
        }
    }
}

/// An OpenFlow port number as ovs-ofctl prints it (`LOCAL` for the bridge's own port).
fn ofport_text(ofport: u32) -> String {
    if ofport == openflow::OFPP_LOCAL {
        "LOCAL".to_string()
    } else {
        ofport.to_string()
    }
}

/// An OpenFlow port number in JSON: the number, or `"LOCAL"` for the bridge's own port.
fn ofport_json(ofport: u32) -> Value {
    if ofport == openflow::OFPP_LOCAL {
        json!("LOCAL")
    } else {
        json!(ofport)
    }
}

/// Words starting with `--` are flags; the rest are arguments.
fn split_flags(words: &[String]) -> (Vec<String>, Vec<String>) {
    words.iter().cloned().partition(|w| !w.starts_with("--"))
}

fn arg<'a>(args: &'a [String], i: usize, field: &str) -> Result<&'a str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| anyhow!("{field}: missing"))
}

/// A fragment mode by the name `set-frags` takes.
pub fn frag_mode(v: &str) -> Result<openflow::FragMode> {
    openflow::FragMode::from_name(v)
        .ok_or_else(|| anyhow!("frag_mode: {v:?} is not one of normal, nx-match, drop"))
}

fn parse_bool(field: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => bail!("{field}: {v:?} is not true or false"),
    }
}

/// Applies flow mods as one bundle and waits until every PMD has seen them.
fn apply(d: &mut Daemon, bridge: &str, mods: &[openflow::FlowMod]) -> Result<Reply> {
    let b = d.bridge(bridge)?;
    let r = b.of.apply(mods, d.now_ns()).map_err(|e| anyhow!("{e}"))?;
    d.barrier()?;
    Ok(Reply::new(
        format!(
            "{} added, {} modified, {} removed",
            r.added, r.modified, r.removed
        ),
        json!({ "added": r.added, "modified": r.modified, "removed": r.removed, "generation": r.generation }),
    ))
}

/// `mod-port BRIDGE PORT ACTION`, as `ovs-ofctl mod-port` (OpenFlow 1.0's bits, no-flood
/// included): sets or clears one configuration bit of the port and waits for the PMDs.
fn mod_port(d: &mut Daemon, bridge: &str, name: &str, action: &str) -> Result<Reply> {
    use openflow::bridge::{
        OFPPC_NO_FLOOD, OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV, OFPPC_PORT_DOWN,
    };
    let (bit, set) = match action {
        "up" => (OFPPC_PORT_DOWN, false),
        "down" => (OFPPC_PORT_DOWN, true),
        "flood" => (OFPPC_NO_FLOOD, false),
        "no-flood" => (OFPPC_NO_FLOOD, true),
        "receive" => (OFPPC_NO_RECV, false),
        "no-receive" => (OFPPC_NO_RECV, true),
        "forward" => (OFPPC_NO_FWD, false),
        "no-forward" => (OFPPC_NO_FWD, true),
        "packet-in" => (OFPPC_NO_PACKET_IN, false),
        "no-packet-in" => (OFPPC_NO_PACKET_IN, true),
        _ => bail!(
            "action: {action:?} is not one of up, down, flood, no-flood, receive, no-receive, \
             forward, no-forward, packet-in, no-packet-in"
        ),
    };
    let b = d.bridge(bridge)?;
    let Some(p) = b.ports.iter().find(|p| p.name == name) else {
        bail!("port: {bridge} has no port {name:?}");
    };
    let old = b.of.port_config(p.ofport);
    let new = if set { old | bit } else { old & !bit };
    if b.of.set_port_config(p.ofport, new) {
        d.refresh_liveness();
        d.barrier()?;
    }
    Ok(Reply::done(format!("{name}: {action}")))
}

/// The OpenFlow configuration bits a PORT_MOD set on a port, by ovs-ofctl's names.
fn port_config_names(config: u32) -> Vec<&'static str> {
    use openflow::bridge::{
        OFPPC_NO_FLOOD, OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV, OFPPC_PORT_DOWN,
    };
    [
        (OFPPC_PORT_DOWN, "port_down"),
        (OFPPC_NO_RECV, "no_recv"),
        (OFPPC_NO_FLOOD, "no_flood"),
        (OFPPC_NO_FWD, "no_fwd"),
        (OFPPC_NO_PACKET_IN, "no_packet_in"),
    ]
    .into_iter()
    .filter(|(bit, _)| config & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

fn show(d: &Daemon) -> Reply {
    let mut text = String::new();
    let mut bridges = Vec::new();
    let pmds = d.pmds();
    for b in &d.bridges {
        let _ = writeln!(text, "bridge {}", b.name);
        let mut ports = Vec::new();
        let mut sorted: Vec<_> = b.ports.iter().collect();
        sorted.sort_by_key(|p| p.ofport);
        for p in sorted {
            let state = p.link_state();
            let config = port_config_names(b.of.port_config(p.ofport));
            // Each queue's own (a vhost-user pair, an AF_XDP queue closed while it moves
            // between PMDs); the port line shows the first queue's.
            let infos: Vec<_> = p.queues.iter().map(|q| q.info()).collect();
            // A port without queues (a tunnel) shows its options as its mode.
            let options = p.spec.options_text();
            let (kind, mode) = infos.first().map_or_else(
                || {
                    let rest = options.split_once(' ').map_or("", |(_, r)| r);
                    (p.spec.kind.name(), rest)
                },
                |info| (info.kind, info.mode.as_str()),
            );
            let ofport = ofport_text(p.ofport);
            let mtu = p.effective_mtu();
            let _ = writeln!(
                text,
                "  port {ofport}: {} type={kind} mode=\"{mode}\" dp_port={} mtu={mtu} state={state}{}",
                p.name,
                p.dp_port,
                if config.is_empty() {
                    String::new()
                } else {
                    format!(" config={}", config.join(","))
                }
            );
            let mut queues = Vec::new();
            for (q, info) in p.queues.iter().zip(&infos) {
                let pmd = d.placement_of(&b.name, &p.name, q.queue_id);
                let core = pmd.and_then(|i| pmds.get(i)).and_then(|x| x.1);
                let where_ = match (pmd, core) {
                    (Some(i), Some(c)) => format!("pmd {i} (core {c})"),
                    (Some(i), None) => format!("pmd {i}"),
                    (None, _) => "not polled".to_string(),
                };
                let q_mode = &info.mode;
                let _ = writeln!(text, "    queue {}: {where_} mode=\"{q_mode}\"", q.queue_id);
                queues
                    .push(json!({ "queue": q.queue_id, "pmd": pmd, "core": core, "mode": q_mode }));
            }
            ports.push(json!({
                "name": p.name, "ofport": ofport_json(p.ofport), "dp_port": p.dp_port, "type": kind, "mode": mode,
                "mtu": mtu, "mtu_request": p.spec.mtu_request, "state": state, "config": config, "live": b.port_live(p), "options": p.spec.options_text(), "queues": queues,
            }));
        }
        let openflow = controller::show_lines(b, &mut text);
        bridges.push(json!({ "name": b.name, "ports": ports, "openflow": openflow }));
    }
    let pmd_json: Vec<Value> = pmds
        .iter()
        .map(|(id, core)| json!({ "id": id, "core": core }))
        .collect();
    let s = d.settings.pmd;
    let _ = write!(
        text,
        "pmds: {}; batch-size={} busy-poll={} pmd-sleep-max-us={} vlan-limit={}",
        pmds.iter()
            .map(|(i, c)| match c {
                Some(c) => format!("pmd {i} on core {c}"),
                None => format!("pmd {i} unpinned"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        s.batch,
        s.busy_poll,
        s.sleep_max_us,
        d.settings.classify.vlans
    );
    Reply::new(
        text,
        json!({
            "bridges": bridges,
            "pmds": pmd_json,
            "settings": s,
            "vlan_limit": d.settings.classify.vlans.headers(),
        }),
    )
}

/// One port's counters from every PMD (the switch's) and from its queues (the port type's).
pub(crate) struct PortTotals {
    pub(crate) stats: datapath::switch::PortStats,
    /// What the switch and the port type lost, by reason.
    pub(crate) losses: ports::PortLosses,
    counters: BTreeMap<&'static str, u64>,
}

pub(crate) fn port_totals(snaps: &[PmdSnapshot], bridge: &str, p: &PortState) -> PortTotals {
    let mut sum = datapath::switch::PortStats::default();
    for s in snaps {
        for sb in s.bridges.iter().filter(|x| x.name == bridge) {
            for (_, _, st) in sb.ports.iter().filter(|x| x.1 == p.ofport) {
                sum.rx_packets += st.rx_packets;
                sum.rx_bytes += st.rx_bytes;
                sum.rx_dropped += st.rx_dropped;
                sum.tx_packets += st.tx_packets;
                sum.tx_bytes += st.tx_bytes;
                sum.tx_dropped += st.tx_dropped;
                sum.losses.merge(&st.losses);
            }
        }
    }
    let own = p.losses();
    // A transmit burst counts as sent what the port took; what the port took and dropped
    // (too long, no guest, an error) is in its own losses, not on the wire.
    sum.tx_packets = sum
        .tx_packets
        .saturating_sub(own.total_of(ports::Direction::Tx));
    let mut losses = sum.losses;
    losses.merge(&own);
    PortTotals {
        stats: sum,
        losses,
        counters: p.counters(),
    }
}

fn port_stats(d: &Daemon, only: Option<&str>) -> Result<Reply> {
    use ports::Direction;
    let snaps = d.snapshots()?;
    let mut text = String::new();
    let mut out = Vec::new();
    for b in &d.bridges {
        if only.is_some_and(|o| o != b.name) {
            continue;
        }
        let _ = writeln!(text, "bridge {}:", b.name);
        let mut sorted: Vec<_> = b.ports.iter().collect();
        sorted.sort_by_key(|p| p.ofport);
        for p in sorted {
            let t = port_totals(&snaps, &b.name, p);
            let (sum, lost) = (&t.stats, &t.losses);
            let (rx_lost, tx_lost) = (lost.total_of(Direction::Rx), lost.total_of(Direction::Tx));
            let _ = writeln!(
                text,
                "  port {} ({}, mtu {}): rx pkts={} bytes={} drop={rx_lost}  tx pkts={} bytes={} drop={tx_lost}",
                ofport_text(p.ofport),
                p.name,
                p.effective_mtu(),
                sum.rx_packets,
                sum.rx_bytes,
                sum.tx_packets,
                sum.tx_bytes,
            );
            if !lost.is_empty() {
                let _ = writeln!(text, "    lost: {}", lost.text());
            }
            let nonzero: Vec<String> = t
                .counters
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !nonzero.is_empty() {
                let _ = writeln!(text, "    {}", nonzero.join(" "));
            }
            out.push(json!({
                "bridge": b.name, "port": p.name, "ofport": ofport_json(p.ofport),
                "mtu": p.effective_mtu(),
                "stats": {
                    "rx_packets": sum.rx_packets, "rx_bytes": sum.rx_bytes, "rx_dropped": rx_lost,
                    "tx_packets": sum.tx_packets, "tx_bytes": sum.tx_bytes, "tx_dropped": tx_lost,
                },
                "losses": lost,
                "counters": t.counters,
            }));
        }
    }
    Ok(Reply::new(text.trim_end().to_string(), json!(out)))
}

/// Per packet received, `x` (0 without packets).
fn per_packet(x: u64, packets: u64) -> f64 {
    if packets == 0 {
        0.0
    } else {
        x as f64 / packets as f64
    }
}

fn pmd_stats(d: &Daemon) -> Result<Reply> {
    let snaps = d.snapshots()?;
    let mut text = String::new();
    let mut out = Vec::new();
    for s in &snaps {
        let st = &s.stats;
        let c = &s.classify;
        let get = |k: &str| c.get(k).copied().unwrap_or(0);
        let per_pkt = |x: u64| per_packet(x, st.rx_packets);
        let total = st.busy_cycles + st.idle_cycles;
        let busy_pct = if total == 0 {
            0.0
        } else {
            100.0 * st.busy_cycles as f64 / total as f64
        };
        let avg_batch = if st.rx_batches == 0 {
            0.0
        } else {
            st.rx_packets as f64 / st.rx_batches as f64
        };
        // The graph's share as `runtime` measures it, node by node.
        let node_cycles: u64 = s.nodes.iter().map(|n| n.3).sum();
        let parts =
            st.busy_rx_cycles + st.busy_graph_cycles + st.busy_tx_cycles + st.busy_upkeep_cycles;
        let other = st.busy_cycles.saturating_sub(parts);
        let core = s.core.map(|c| c.to_string()).unwrap_or("-".into());
        let _ = writeln!(text, "pmd {} core {core}:", s.id);
        let _ = writeln!(
            text,
            "  iterations: {} ({} busy)  sleeps: {}",
            st.iterations, st.busy_iterations, st.sleeps
        );
        let _ = writeln!(
            text,
            "  processing cycles: {} ({busy_pct:.1} % of polling)  idle cycles: {}",
            st.busy_cycles, st.idle_cycles
        );
        let _ = writeln!(
            text,
            "  rx packets: {}  avg batch: {avg_batch:.1}  avg cycles/pkt: {:.1}  \
             avg processing cycles/pkt: {:.1}",
            st.rx_packets,
            per_pkt(total),
            per_pkt(st.busy_cycles)
        );
        let _ = writeln!(
            text,
            "    (as OVS: the cycles of the iterations that received packets, over the packets \
             received) = rx {:.1} + graph {:.1} + tx {:.1} + upkeep {:.1} + other {:.1}",
            per_pkt(st.busy_rx_cycles),
            per_pkt(st.busy_graph_cycles),
            per_pkt(st.busy_tx_cycles),
            per_pkt(st.busy_upkeep_cycles),
            per_pkt(other)
        );
        let _ = writeln!(
            text,
            "    graph: nodes {:.1} (the runtime table's cycles over the packets received) + \
             dispatch {:.1}",
            per_pkt(node_cycles),
            per_pkt(st.busy_graph_cycles.saturating_sub(node_cycles))
        );
        let _ = writeln!(
            text,
            "  emc hits: {}  megaflow hits: {}  upcalls: {}  (avg subtable lookups/hit: {:.2})",
            get("emc-hits"),
            get("megaflow-hits"),
            get("upcalls"),
            if get("megaflow-hits") == 0 {
                0.0
            } else {
                get("masked-hit-lookups") as f64 / get("megaflow-hits") as f64
            }
        );
        let _ = writeln!(
            text,
            "  copies: rx {} (into the packet pool), tx {} (out to the ports); \
             zero-copy: rx {}, tx {}",
            st.rx_copies, st.tx_copies, st.rx_zero_copy, st.tx_zero_copy
        );
        if s.encapsulated + s.decapsulated + s.too_big_answers > 0 {
            let _ = writeln!(
                text,
                "  tunnels: encapsulated {}  decapsulated {}  too-big answers {}",
                s.encapsulated, s.decapsulated, s.too_big_answers
            );
        }
        let qtotal: u64 = s.rxqs.iter().map(|q| q.cycles).sum();
        for q in &s.rxqs {
            let pct = if qtotal == 0 {
                0.0
            } else {
                100.0 * q.cycles as f64 / qtotal as f64
            };
            let _ = write!(
                text,
                "  rxq {} queue {} ({}): {} packets, {pct:.0} % of the pmd's queue cycles",
                q.port, q.queue, q.bridge, q.packets
            );
            if !q.losses.is_empty() {
                let _ = write!(text, "; lost by the port: {}", q.losses.text());
            }
            text.push('\n');
        }
        // Everything that entered this PMD's graph and did not leave (dropped in the graph
        // or not taken by a transmit burst), from the same snapshot as the rest; and what
        // its receive bursts could not take in, and its queues' ports lost.
        let graph_dropped: u64 = s.drops.iter().map(|d| d.1).sum();
        let mut port_lost = ports::PortLosses::default();
        for p in s.bridges.iter().flat_map(|b| b.ports.iter()) {
            port_lost.merge(&p.2.losses);
        }
        let not_taken_in = port_lost.total_of(ports::Direction::Rx);
        let queue_lost: u64 = s.rxqs.iter().map(|q| q.losses.total()).sum();
        let dropped = graph_dropped + port_lost.total_of(ports::Direction::Tx);
        let p = &s.pool;
        let _ = writeln!(
            text,
            "  pool ({}): {} frames, {} free, {} lent to AF_XDP queues, {} unaccounted",
            if p.umem { "umem" } else { "heap" },
            p.frames,
            p.free,
            p.lent,
            p.unaccounted
        );
        let _ = writeln!(
            text,
            "  dropped: {dropped} of the packets received (graph {graph_dropped}, transmit \
             bursts {}); not taken in: {not_taken_in}; lost by its queues' ports: {queue_lost} \
             (see drop-reasons)",
            dropped - graph_dropped
        );
        out.push(json!({
            "pmd": s.id, "core": s.core, "stats": st, "classify": c, "dropped": dropped,
            "graph_dropped": graph_dropped, "port_losses": port_lost,
            "not_taken_in": not_taken_in, "queue_losses": queue_lost,
            "cycles_per_packet": per_pkt(total),
            "processing_cycles_per_packet": per_pkt(st.busy_cycles),
            "processing_per_packet": {
                "rx": per_pkt(st.busy_rx_cycles), "graph": per_pkt(st.busy_graph_cycles),
                "tx": per_pkt(st.busy_tx_cycles), "upkeep": per_pkt(st.busy_upkeep_cycles),
                "other": per_pkt(other), "nodes": per_pkt(node_cycles),
            },
            "node_cycles": node_cycles,
            "busy_percent": busy_pct,
            "avg_batch": avg_batch, "rxqs": s.rxqs, "pool": s.pool,
            "megaflows": s.megaflows, "encapsulated": s.encapsulated,
            "decapsulated": s.decapsulated, "too_big_answers": s.too_big_answers,
        }));
    }
    Ok(Reply::new(text.trim_end().to_string(), json!(out)))
}

fn runtime(d: &Daemon) -> Result<Reply> {
    let snaps = d.snapshots()?;
    let mut text = String::new();
    let mut out = Vec::new();
    for s in &snaps {
        let _ = writeln!(text, "pmd {}:", s.id);
        let _ = writeln!(
            text,
            "  {:<12} {:>12} {:>14} {:>16} {:>12} {:>12}",
            "node", "calls", "vectors", "cycles", "vec/call", "cycles/vec"
        );
        for (name, calls, vectors, cycles) in &s.nodes {
            let vpc = if *calls == 0 {
                0.0
            } else {
                *vectors as f64 / *calls as f64
            };
            let cpv = if *vectors == 0 {
                0.0
            } else {
                *cycles as f64 / *vectors as f64
            };
            let _ = writeln!(
                text,
                "  {name:<12} {calls:>12} {vectors:>14} {cycles:>16} {vpc:>12.1} {cpv:>12.1}"
            );
            out.push(json!({
                "pmd": s.id, "node": name, "calls": calls,
                "vectors": vectors, "cycles": cycles, "vectors_per_call": vpc,
                "cycles_per_vector": cpv,
            }));
        }
    }
    Ok(Reply::new(text.trim_end().to_string(), json!(out)))
}

/// Every non-zero drop counter: the graph's `<node>.<reason>` and the ports'
/// `port.<port>.<reason>` (what the switch's bursts lost and what the port type lost).
fn drop_reasons(d: &Daemon) -> Result<Reply> {
    let snaps = d.snapshots()?;
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for s in &snaps {
        for (k, v) in &s.drops {
            *m.entry(k.clone()).or_default() += v;
        }
    }
    for b in &d.bridges {
        for p in &b.ports {
            for (reason, n) in port_totals(&snaps, &b.name, p).losses.iter() {
                *m.entry(format!("port.{}.{}", p.name, reason.name()))
                    .or_default() += n;
            }
        }
        // Packet-ins lost: the bridge's queue was full, or no controller took them.
        let lost = [
            ("packet-in-queue-full", b.of.packet_ins().overflows()),
            ("packet-in-unsent", b.packet_ins_unsent),
            ("flow-removed-queue-full", b.of.flow_removed().overflows()),
        ];
        for (reason, n) in lost.into_iter().filter(|(_, n)| *n > 0) {
            m.insert(format!("bridge.{}.{reason}", b.name), n);
        }
    }
    let text = if m.is_empty() {
        "no drops".to_string()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k:<40} {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Reply::new(text, json!(m)))
}

/// `add-flows BRIDGE` with the file's contents: checked whole first, then applied as one
/// bundle (`--bundle`) or rule by rule, as ovs-ofctl does without it (a rule in the middle
/// may be seen by packets before the last is in).
fn add_flows(d: &mut Daemon, bridge: &str, text: &str, bundle: bool) -> Result<Reply> {
    let text = flows::resolve_file(d, bridge, text)?;
    let mods = openflow::parse_bundle_file(&text).map_err(|e| anyhow!("file: {e}"))?;
    let mods: Vec<openflow::FlowMod> = mods.into_iter().map(|(_, m)| m).collect();
    if bundle {
        return apply(d, bridge, &mods);
    }
    let b = d.bridge(bridge)?;
    let now = d.now_ns();
    let mut added = 0;
    for m in &mods {
        added +=
            b.of.apply(std::slice::from_ref(m), now)
                .map_err(|e| anyhow!("{e}"))?
                .added;
    }
    d.barrier()?;
    Ok(Reply::new(
        format!("{added} rules added"),
        json!({ "added": added }),
    ))
}

/// `dump-megaflows [BRIDGE] [--names|--no-names]`: the megaflows of every PMD whose in_port
/// is a port of the bridge (of each bridge, one section each), printed with its OpenFlow port
/// numbers, or its port names with `names`.
fn dump_megaflows(d: &mut Daemon, only: Option<String>, names: bool) -> Result<Reply> {
    if let Some(b) = &only {
        d.bridge(b)?;
    }
    let now = d.now_ns();
    let per_pmd = d.pmd_call_all(move |p| (p.id, p.dump_megaflows(only.as_deref(), now, names)))?;
    let mut text = String::new();
    let mut j = Vec::new();
    for (id, bridges) in per_pmd {
        for (name, lines) in bridges {
            let _ = writeln!(text, "pmd {id} bridge {name}: {} megaflows", lines.len());
            for l in &lines {
                let _ = writeln!(text, "  {l}");
            }
            let objects: Vec<Value> = lines.iter().map(|l| flows::megaflow_json(l)).collect();
            j.push(json!({ "pmd": id, "bridge": name, "megaflows": objects }));
        }
    }
    Ok(Reply::new(text.trim_end().to_string(), json!(j)))
}

/// `set KEY=VALUE...`: every pair is checked before any takes effect.
fn set(d: &mut Daemon, args: &[String]) -> Result<Reply> {
    if args.is_empty() {
        bail!("set: missing KEY=VALUE");
    }
    let mut s: PmdSettings = d.settings.pmd;
    let mut cores: Option<Vec<Option<usize>>> = None;
    let mut flow_limit: Option<usize> = None;
    let mut vlan_limit: Option<VlanLimit> = None;
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("set: {a:?} is not KEY=VALUE"))?;
        match k {
            "batch-size" => s.batch = parse_batch(v)?,
            "busy-poll" => s.busy_poll = parse_bool(k, v)?,
            "pmd-sleep-max-us" => {
                s.sleep_max_us = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| anyhow!("pmd-sleep-max-us: {v:?} is not 1..=1000000"))?
            }
            "flow-limit" => {
                flow_limit = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| anyhow!("flow-limit: {v:?} is not a positive number"))?,
                )
            }
            "vlan-limit" => vlan_limit = Some(parse_vlan_limit(v)?),
            "pmd-cores" => cores = Some(parse_cores(v)?),
            _ => bail!(
                "set: unknown key {k:?} (batch-size, busy-poll, pmd-sleep-max-us, flow-limit, vlan-limit, pmd-cores)"
            ),
        }
    }
    d.set_pmd_settings(s)?;
    if let Some(limit) = flow_limit {
        // Kept for the PMDs that `pmd-cores` starts.
        d.settings.classify.flow_limit = limit;
        d.pmd_call_all(move |p| p.set_flow_limit(limit))?;
    }
    if let Some(vlans) = vlan_limit {
        d.settings.classify.vlans = vlans;
        d.pmd_call_all(move |p| p.set_vlan_limit(vlans))?;
    }
    if let Some(c) = cores {
        d.set_pmd_cores(c)?;
    }
    Ok(Reply::done(format!("set {}", args.join(" "))))
}

/// OVS's `vlan-limit`: how many VLAN headers the parser reads (0: as many as it can, 2).
pub fn parse_vlan_limit(v: &str) -> Result<VlanLimit> {
    v.parse()
        .map(VlanLimit::from_setting)
        .map_err(|_| anyhow!("vlan-limit: {v:?} is not a number (0 = no limit)"))
}

/// A batch size: 1 to 256.
pub fn parse_batch(v: &str) -> Result<usize> {
    v.parse()
        .ok()
        .filter(|n| (1..=pipeline::MAX_BATCH).contains(n))
        .ok_or_else(|| anyhow!("batch-size: {v:?} is not 1..={}", pipeline::MAX_BATCH))
}

/// `1,3` → PMDs on cores 1 and 3 (each must exist on this machine).
pub fn parse_cores(v: &str) -> Result<Vec<Option<usize>>> {
    let online = core_affinity::get_core_ids().unwrap_or_default();
    let mut out = Vec::new();
    for w in v.split(',') {
        let c: usize = w
            .trim()
            .parse()
            .map_err(|_| anyhow!("pmd-cores: {w:?} is not a core number"))?;
        if !online.iter().any(|x| x.id == c) {
            bail!("pmd-cores: core {c} is not one of this machine's cores");
        }
        if out.contains(&Some(c)) {
            bail!("pmd-cores: core {c} is listed twice");
        }
        out.push(Some(c));
    }
    if out.is_empty() {
        bail!("pmd-cores: empty");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ipf: &conntrack::Ipf, words: &[&str]) -> Result<Reply> {
        let args: Vec<String> = words[1..].iter().map(|w| w.to_string()).collect();
        ipf_verbs(ipf, words[0], &args)
    }

    fn err(ipf: &conntrack::Ipf, words: &[&str]) -> String {
        run(ipf, words)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn ipf_verbs_set_what_they_say_and_refuse_bad_arguments_unchanged() {
        let f = conntrack::Ipf::new();
        let before = f.status();
        assert_eq!(
            err(&f, &["ipf-set-min-frag", "v5", "1000"]),
            "family: \"v5\" is not v4 or v6"
        );
        assert_eq!(
            err(&f, &["ipf-set-min-frag", "v4", "399"]),
            "min-frag: 399 is below the smallest fragment size accepted (400)"
        );
        assert_eq!(
            err(&f, &["ipf-set-min-frag", "v4", "x"]),
            "min-frag: \"x\" is not a number (0..4294967295)"
        );
        assert_eq!(
            err(&f, &["ipf-set-max-nfrags", "5001"]),
            "max-nfrags: 5001 is above the largest number of fragments accepted (5000)"
        );
        assert_eq!(
            err(&f, &["ipf-set-enabled", "v4", "2"]),
            "ipf-set-enabled: unexpected \"2\" ([v4|v6] [0|1])"
        );
        assert_eq!(
            err(&f, &["ipf-get-status", "x"]),
            "ipf-get-status: unexpected \"x\""
        );
        assert_eq!(f.status(), before, "nothing changed");

        let r = run(&f, &["ipf-set-min-frag", "v6", "1500"]).unwrap();
        assert_eq!(r.text, "setting minimum fragment size successful");
        run(&f, &["ipf-set-max-nfrags", "10"]).unwrap();
        let r = run(&f, &["ipf-set-enabled", "v4", "0"]).unwrap();
        assert_eq!(r.text, "disabling fragmentation reassembly successful");
        let s = f.status();
        assert_eq!((s.v6.min_frag_size, s.max_frags), (1500, 10));
        assert!(!s.v4.enabled && s.v6.enabled);
        run(&f, &["ipf-set-disabled"]).unwrap();
        assert!(!f.status().v6.enabled);
        let r = run(&f, &["ipf-set-enabled"]).unwrap();
        assert_eq!(r.text, "enabling fragmentation reassembly successful");
        assert!(f.status().v4.enabled && f.status().v6.enabled);

        let r = run(&f, &["ipf-get-status"]).unwrap();
        assert!(
            r.text.contains("        min v6 frag size: 1500\n"),
            "{}",
            r.text
        );
        assert_eq!(r.json["max_nfrags"], 10);
        assert_eq!(r.json["v6"]["min_frag_size"], 1500);
        assert_eq!(r.json["v4"]["accepted"], 0);
        assert_eq!(r.json["v4"]["enabled"], true);
    }

    #[test]
    fn ipf_verbs_reach_the_daemons_table() {
        use datapath::daemon::{Daemon, DaemonSettings};
        let mut d = Daemon::new(DaemonSettings {
            pmd_cores: vec![None],
            ..DaemonSettings::default()
        })
        .unwrap();
        let argv = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        execute(&mut d, &argv(&["ipf-set-max-nfrags", "7"]), None).unwrap();
        execute(&mut d, &argv(&["ipf-set-disabled", "v6"]), None).unwrap();
        let r = execute(&mut d, &argv(&["ipf-get-status", "--json"]), None).unwrap();
        assert_eq!(r.json["max_nfrags"], 7);
        assert_eq!(r.json["v6"]["enabled"], false);
        let s = d.conntrack.ipf().status();
        assert_eq!((s.max_frags, s.v6.enabled, s.v4.enabled), (7, false, true));
        assert!(execute(&mut d, &argv(&["ipf-set-max-nfrags", "-1"]), None).is_err());
        assert_eq!(d.conntrack.ipf().status().max_frags, 7);
    }
}
