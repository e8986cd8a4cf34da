//! The options of `type=dpdk` ports (feature `dpdk`): what `add-port` and the config take,
//! their canonical text and how the port's queues open.

use std::fmt::Write as _;

use crate::option::{bad, number, required, PortSpecError, MAX_QUEUES};

/// The keys of `type=dpdk`.
pub const KEYS: &[&str] = &["dpdk-devargs", "queues", "rxd", "txd"];

/// Options of a DPDK port (feature `dpdk`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkOptions {
    /// What `rte_dev_probe` takes: a PCI address or a vdev with its arguments
    /// (`net_af_packet0,iface=veth1`); the part before the first comma is the ethdev's name.
    pub devargs: String,
    /// Receive/transmit queue pairs.
    pub queues: u16,
    /// Receive descriptors per queue (the driver may adjust it).
    pub rxd: u16,
    /// Transmit descriptors per queue (the driver may adjust it).
    pub txd: u16,
}

impl DpdkOptions {
    /// The options of `type=dpdk`, defaults for those not given.
    pub(crate) fn parse<'o>(
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let devargs = required(
            given,
            "dpdk-devargs",
            "type=dpdk needs dpdk-devargs, e.g. net_af_packet0,iface=veth1 or a PCI address",
        )?;
        if devargs.split(',').next().is_none_or(str::is_empty) {
            return Err(bad("dpdk-devargs", devargs, "expected a device name first"));
        }
        if devargs.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "dpdk-devargs",
                devargs,
                "whitespace or control characters",
            ));
        }
        let mut o = DpdkOptions {
            devargs: devargs.to_string(),
            queues: 1,
            rxd: 1024,
            txd: 1024,
        };
        if let Some(v) = given("queues") {
            o.queues = number("queues", v, 1, MAX_QUEUES as u16)?;
        }
        if let Some(v) = given("rxd") {
            o.rxd = number("rxd", v, 32, 16384)?;
        }
        if let Some(v) = given("txd") {
            o.txd = number("txd", v, 32, 16384)?;
        }
        Ok(o)
    }

    /// The options as `options_text` prints them.
    pub(crate) fn write(&self, s: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            " dpdk-devargs={} queues={} rxd={} txd={}",
            self.devargs, self.queues, self.rxd, self.txd
        );
    }
}
