//! The options of `type=afxdp` ports: what `add-port` and the config take, their defaults,
//! their canonical text and how the port's queues open.

use std::fmt::Write as _;

use crate::option::{bad, number, parse_bool, power_of_two, PortSpecError, MAX_QUEUES};
use crate::{PortError, PortIo};

use super::port::{single_buffer, AfXdpQueue};
use super::{XdpModeRequest, XskConfig};

/// The keys of `type=afxdp`.
pub const KEYS: &[&str] = &["queues", "xdp-mode", "ring-size", "frames", "multi-buffer"];

/// Options of an AF_XDP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpOptions {
    /// Sockets, one per receive queue `0..queues`.
    pub queues: u32,
    /// XDP hook to ask for.
    pub xdp_mode: XdpModeRequest,
    /// Entries of each ring.
    pub ring_size: u32,
    /// UMEM frames per queue.
    pub frames: u32,
    /// Ask for XDP multi-buffer (`XDP_USE_SG`, frames up to 9702 + 18 bytes as chains);
    /// `false` (or a kernel that refuses it) binds without, in UMEM frames of 4,096 bytes.
    pub multi_buffer: bool,
}

impl Default for AfXdpOptions {
    fn default() -> AfXdpOptions {
        let c = XskConfig::default();
        AfXdpOptions {
            queues: 1,
            xdp_mode: c.xdp_mode,
            ring_size: c.ring_size,
            frames: c.frames,
            multi_buffer: c.multi_buffer,
        }
    }
}

impl AfXdpOptions {
    /// The options of `type=afxdp`, defaults for those not given.
    pub(crate) fn parse<'o>(
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let mut o = AfXdpOptions::default();
        if let Some(v) = given("queues") {
            o.queues = number("queues", v, 1, MAX_QUEUES)?;
        }
        if let Some(v) = given("xdp-mode") {
            o.xdp_mode = match v.to_ascii_lowercase().as_str() {
                "auto" => XdpModeRequest::Auto,
                "native" | "driver" => XdpModeRequest::Driver,
                "generic" | "skb" => XdpModeRequest::Generic,
                _ => return Err(bad("xdp-mode", v, "expected auto, native or generic")),
            };
        }
        if let Some(v) = given("ring-size") {
            o.ring_size = power_of_two("ring-size", v, 64, 65536)?;
        }
        if let Some(v) = given("frames") {
            o.frames = number("frames", v, 64, 1 << 20)?;
        }
        if let Some(v) = given("multi-buffer") {
            o.multi_buffer = parse_bool("multi-buffer", v)?;
        }
        Ok(o)
    }

    /// The options as `options_text` prints them.
    pub(crate) fn write(&self, s: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            " queues={} xdp-mode={} ring-size={} frames={} multi-buffer={}",
            self.queues,
            match self.xdp_mode {
                XdpModeRequest::Auto => "auto",
                XdpModeRequest::Driver => "native",
                XdpModeRequest::Generic => "generic",
            },
            self.ring_size,
            self.frames,
            self.multi_buffer
        );
    }

    /// Opens queues `0..queues` of interface `name`.
    pub(crate) fn open(&self, name: &str) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let config = XskConfig {
            frames: self.frames,
            ring_size: self.ring_size,
            xdp_mode: self.xdp_mode,
            max_queues: MAX_QUEUES,
            ..XskConfig::default()
        };
        let config = if self.multi_buffer {
            config
        } else {
            single_buffer(&config)
        };
        if let Some(have) = queue_pairs(name).filter(|&have| have < self.queues) {
            // The kernel's bind would say only EINVAL.
            return Err(PortError::Invalid {
                port: name.to_string(),
                step: "open AF_XDP queues".to_string(),
                reason: format!(
                    "queues={}: {name} has {have} receive/transmit queue pairs",
                    self.queues
                ),
            });
        }
        // Queue 0 attaches the interface's one XDP program, the others put their sockets
        // into its map; it detaches when the last queue drops.
        let mut queues: Vec<Box<dyn PortIo>> = Vec::new();
        let first = AfXdpQueue::open(name, name, 0, &config)?;
        let prog = first.program().clone();
        queues.push(Box::new(first));
        for q in 1..self.queues {
            let queue = AfXdpQueue::open_with_program(name, name, q, &config, &prog)?;
            queues.push(Box::new(queue));
        }
        Ok(queues)
    }
}

/// How many queues of `ifname` an AF_XDP socket (rx and tx ring) can bind to: the fewer of its
/// receive and transmit queues as sysfs lists them; `None` when sysfs does not say.
fn queue_pairs(ifname: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{ifname}/queues")).ok()?;
    let (mut rx, mut tx) = (0u32, 0u32);
    for entry in dir.flatten() {
        let entry = entry.file_name();
        let entry = entry.to_string_lossy();
        if entry.starts_with("rx-") {
            rx += 1;
        } else if entry.starts_with("tx-") {
            tx += 1;
        }
    }
    Some(rx.min(tx))
}
