//! The NetFlow verbs: `set-netflow BRIDGE targets=IP:PORT[,...] [active_timeout=S]
//! [engine_type=N] [engine_id=N] [add_id_to_interface=true|false]`, `clear-netflow BRIDGE`,
//! `show-netflow [BRIDGE]`. A refused setting names its field and changes nothing.

use anyhow::{anyhow, Result};
use datapath::daemon::Daemon;
use serde_json::{json, Value};

use super::{arg, Reply};

pub(super) fn netflow(d: &mut Daemon, verb: &str, args: &[String]) -> Result<Reply> {
    match verb {
        "set-netflow" => {
            let bridge = arg(args, 0, "bridge")?;
            d.bridge(bridge)?;
            let opts =
                netflow::NetflowOptions::parse_args(&args[1..]).map_err(|e| anyhow!("{e}"))?;
            d.set_netflow(bridge, Some(opts))?;
            show(d, Some(bridge))
        }
        "clear-netflow" => {
            let bridge = arg(args, 0, "bridge")?;
            d.set_netflow(bridge, None)?;
            Ok(Reply::done(format!("{bridge}: netflow off")))
        }
        _ => {
            let only = args.first().map(String::as_str);
            if let Some(b) = only {
                d.bridge(b)?;
            }
            show(d, only)
        }
    }
}

fn show(d: &Daemon, only: Option<&str>) -> Result<Reply> {
    let mut text = String::new();
    let mut out: Vec<Value> = Vec::new();
    for b in &d.bridges {
        if only.is_some_and(|o| o != b.name) {
            continue;
        }
        let Some(nf) = b.of.netflow() else {
            if only.is_some() {
                text.push_str(&format!("{}: netflow off\n", b.name));
                out.push(json!({ "bridge": b.name, "netflow": Value::Null }));
            }
            continue;
        };
        let st = nf.status();
        let o = &st.options;
        text.push_str(&format!(
            "{}: engine_type={} engine_id={} active_timeout={} ({} s) add_id_to_interface={}\n  \
             records sent {}, datagrams {}, impossible counters {}; flows {}, megaflows {}\n",
            b.name,
            o.engine_type,
            o.engine_id,
            o.active_timeout,
            st.active_timeout_s,
            o.add_id_to_interface,
            st.exporter.records,
            st.exporter.datagrams,
            st.exporter.impossible_counters,
            st.flows,
            st.megaflows
        ));
        let mut targets = Vec::new();
        for (addr, sent, failed, err) in &st.targets {
            text.push_str(&format!(
                "  target {addr}: sent {sent}, send failures {failed}"
            ));
            if let Some(e) = err {
                text.push_str(&format!(" (last error: {e})"));
            }
            text.push('\n');
            targets.push(json!({
                "target": addr.to_string(), "sent": sent, "send_failures": failed,
                "last_error": err,
            }));
        }
        out.push(json!({
            "bridge": b.name,
            "netflow": {
                "engine_type": o.engine_type,
                "engine_id": o.engine_id,
                "active_timeout": o.active_timeout,
                "active_timeout_in_effect": st.active_timeout_s,
                "add_id_to_interface": o.add_id_to_interface,
                "records": st.exporter.records,
                "datagrams": st.exporter.datagrams,
                "impossible_counters": st.exporter.impossible_counters,
                "flows": st.flows,
                "megaflows": st.megaflows,
                "targets": targets,
            }
        }));
    }
    Ok(Reply::new(text.trim_end().to_string(), json!(out)))
}
