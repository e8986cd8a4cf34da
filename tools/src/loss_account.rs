//! Where pktgen's lost frames went: the difference, over a run, of every drop counter on the
//! way that pktgen can read. The switch's named drops come over its control socket
//! (`drop-reasons`: the graph's `<node>.<reason>` and the ports' `port.<port>.<reason>`), the
//! kernel's from the interfaces pktgen sends and receives on (`tx_dropped`, `rx_dropped` in
//! sysfs), and pktgen's own receive socket says what it could not take (its ring full, no
//! free frame). What the named reasons do not cover is `unexplained`: frames still in flight,
//! or lost where no counter looks. The switch's counters count every frame, pktgen's or not:
//! on a busy switch they can explain more than pktgen lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The counters before or after a run.
#[derive(Clone, Debug, Default)]
pub struct LossSnapshot {
    /// `drop-reasons` of the switch, when a socket was given.
    switch: BTreeMap<String, u64>,
    /// `(counter name, value)` of the kernel's interfaces.
    kernel: Vec<(String, u64)>,
}

/// Where the frames a run lost went.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LossBreakdown {
    /// Sent minus received.
    pub lost: i64,
    /// Each counter that grew during the run, by name (`switch port.veth1.rx-ring-full`,
    /// `kernel veth0 tx_dropped`, `pktgen rx-ring-full`), and by how much.
    pub reasons: Vec<(String, u64)>,
    /// Their sum.
    pub named: u64,
    /// `lost - named`: in flight, or lost where no counter looks (negative: the counters
    /// also counted frames that were not pktgen's).
    pub unexplained: i64,
}

/// Which counters to read.
#[derive(Clone, Debug, Default)]
pub struct LossSources {
    /// The switch's control socket.
    pub socket: Option<PathBuf>,
    /// The interface pktgen sends on.
    pub tx_if: String,
    /// The interface it receives on.
    pub rx_if: Option<String>,
}

/// A kernel counter of an interface (`/sys/class/net/IF/statistics/NAME`), 0 if unreadable.
fn sysfs_stat(ifname: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The other end of a veth (or any link with a peer) in this namespace, if there is one.
fn veth_peer(ifname: &str) -> Option<String> {
    let read = |path: String| std::fs::read_to_string(path).ok();
    let index = read(format!("/sys/class/net/{ifname}/ifindex"))?;
    let link = read(format!("/sys/class/net/{ifname}/iflink"))?;
    if link.trim() == index.trim() {
        return None;
    }
    std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (read(format!("/sys/class/net/{name}/ifindex"))?.trim() == link.trim()).then_some(name)
        })
}

/// The switch's `drop-reasons` as a map.
fn switch_drops(socket: &Path) -> Result<BTreeMap<String, u64>, String> {
    let r = control::client::call(socket, &["drop-reasons"]).map_err(|e| format!("{e:#}"))?;
    let map = r
        .json
        .as_object()
        .ok_or_else(|| "drop-reasons: the answer is not a map".to_string())?;
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect())
}

impl LossSnapshot {
    /// Reads every counter `src` names. Errors say why the switch could not be asked.
    pub fn take(src: &LossSources) -> Result<LossSnapshot, String> {
        let switch = match &src.socket {
            Some(s) => switch_drops(s).map_err(|e| format!("socket {}: {e}", s.display()))?,
            None => BTreeMap::new(),
        };
        let mut kernel = vec![(
            format!("kernel {} tx_dropped", src.tx_if),
            sysfs_stat(&src.tx_if, "tx_dropped"),
        )];
        if let Some(rx) = &src.rx_if {
            kernel.push((
                format!("kernel {rx} rx_dropped"),
                sysfs_stat(rx, "rx_dropped"),
            ));
            // A veth's peer counts what it could not hand over (the receiving end's ring
            // full) as its own transmit drops.
            if let Some(peer) = veth_peer(rx) {
                kernel.push((
                    format!("kernel {peer} tx_dropped"),
                    sysfs_stat(&peer, "tx_dropped"),
                ));
            }
        }
        Ok(LossSnapshot { switch, kernel })
    }
}

/// What grew from `before` to `after`, with `own` (pktgen's receive socket counters, which
/// start with the run), against `lost`.
pub fn breakdown(
    before: &LossSnapshot,
    after: &LossSnapshot,
    own: &[(&str, u64)],
    lost: i64,
) -> LossBreakdown {
    let mut reasons = Vec::new();
    for (k, v) in &after.switch {
        let d = v.saturating_sub(before.switch.get(k).copied().unwrap_or(0));
        if d > 0 {
            reasons.push((format!("switch {k}"), d));
        }
    }
    // The receiving interface's `rx_dropped` (the one kernel counter of that name) also
    // counts what pktgen's own AF_XDP socket dropped (its ring full, no fill frame): those
    // frames are named once, as pktgen's.
    let own_total: u64 = own.iter().map(|o| o.1).sum();
    for (k, v) in &after.kernel {
        let was = before
            .kernel
            .iter()
            .find(|(n, _)| n == k)
            .map_or(0, |e| e.1);
        let mut d = v.saturating_sub(was);
        if k.ends_with(" rx_dropped") {
            d = d.saturating_sub(own_total);
        }
        if d > 0 {
            reasons.push((k.clone(), d));
        }
    }
    for (k, v) in own {
        if *v > 0 {
            reasons.push((format!("pktgen {k}"), *v));
        }
    }
    let named: u64 = reasons.iter().map(|r| r.1).sum();
    LossBreakdown {
        lost,
        reasons,
        named,
        unexplained: lost - named as i64,
    }
}

impl LossBreakdown {
    /// Lines for the report.
    pub fn text(&self) -> String {
        let mut s = format!(
            "  where the {} lost frames went ({} named, {} unexplained: in flight, or lost \
             where no counter looks):\n",
            self.lost, self.named, self.unexplained
        );
        for (k, v) in &self.reasons {
            s += &format!("    {k:<48} {v}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_grew_is_named_and_the_rest_is_unexplained() {
        let before = LossSnapshot {
            switch: [("port.p1.rx-ring-full".to_string(), 5)].into(),
            kernel: vec![
                ("kernel v0 tx_dropped".to_string(), 2),
                ("kernel v1 rx_dropped".to_string(), 7),
            ],
        };
        let after = LossSnapshot {
            switch: [
                ("port.p1.rx-ring-full".to_string(), 105),
                ("classify.no-output".to_string(), 3),
            ]
            .into(),
            // v1's rx_dropped holds the 4 frames pktgen's socket counts, and 1 more.
            kernel: vec![
                ("kernel v0 tx_dropped".to_string(), 12),
                ("kernel v1 rx_dropped".to_string(), 12),
            ],
        };
        let b = breakdown(
            &before,
            &after,
            &[("rx-ring-full", 4), ("rx-dropped", 0)],
            120,
        );
        assert_eq!(
            b.reasons,
            vec![
                ("switch classify.no-output".to_string(), 3),
                ("switch port.p1.rx-ring-full".to_string(), 100),
                ("kernel v0 tx_dropped".to_string(), 10),
                ("kernel v1 rx_dropped".to_string(), 1),
                ("pktgen rx-ring-full".to_string(), 4),
            ]
        );
        assert_eq!((b.named, b.unexplained), (118, 2));
        assert!(b.text().contains("switch port.p1.rx-ring-full"));
    }
}
