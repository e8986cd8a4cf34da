//! The `packet-out` verb, as ovs-ofctl's: `packet-out BRIDGE in_port=PORT packet=HEX
//! actions=...`, or the older `packet-out BRIDGE IN_PORT ACTIONS HEX...` (one frame per
//! HEX). Each frame runs on a PMD as a controller's PACKET_OUT does; the answer comes once
//! every frame ran.

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use datapath::daemon::Daemon;
use datapath::packet_out::PacketOut;
use openflow::packet_out::{parse_frame, parse_in_port, parse_packet_out_actions};
use openflow::parse_packet_out;

use super::{arg, flows, Reply};

pub(super) fn packet_out(d: &mut Daemon, args: &[String]) -> Result<Reply> {
    let bridge = arg(args, 0, "bridge")?;
    let rest = args.get(1..).unwrap_or_default();
    let new_form = rest.first().is_some_and(|a| a.contains('='));
    let (in_port, actions, frames) = if new_form || rest.len() < 3 {
        let text = flows::resolve(d, bridge, &rest.join(","))?;
        let p = parse_packet_out(&text).map_err(|e| anyhow!("{e}"))?;
        (p.in_port, p.actions, vec![p.packet])
    } else {
        // IN_PORT ACTIONS HEX...: the port and actions resolved as a rule's.
        let text = format!("in_port={},actions={}", rest[0], rest[1]);
        let text = flows::resolve(d, bridge, &text)?;
        let (port, actions) = text
            .strip_prefix("in_port=")
            .and_then(|t| t.split_once(",actions="))
            .ok_or_else(|| anyhow!("in_port: {:?} is not a port", rest[0]))?;
        let in_port = parse_in_port(port).map_err(|e| anyhow!("{e}"))?;
        let actions = parse_packet_out_actions(actions).map_err(|e| anyhow!("{e}"))?;
        let frames = rest[2..]
            .iter()
            .map(|h| parse_frame(h).map_err(|e| anyhow!("{e}")))
            .collect::<Result<Vec<_>>>()?;
        (in_port, actions, frames)
    };
    if frames.is_empty() {
        bail!("packet: must specify packet");
    }
    let n = frames.len();
    for frame in frames {
        let po = PacketOut {
            bridge: bridge.to_string(),
            in_port,
            frame,
            actions: actions.clone(),
        };
        d.packet_out(po, true)?;
    }
    Ok(Reply::new(
        format!(
            "{n} packet(s) sent through {}",
            openflow::format_actions(&actions)
        ),
        json!({ "bridge": bridge, "in_port": in_port, "packets": n }),
    ))
}
