//! The options of `type=pcap` ports: what `add-port` and the config take, their canonical
//! text and how the port opens.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::option::{parse_bool, parse_path, PortSpecError};
use crate::{PortError, PortIo};

use super::PcapPort;

/// The keys of `type=pcap`.
pub const KEYS: &[&str] = &["rx", "tx", "loop"];

/// Options of a pcap port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapOptions {
    /// File to replay.
    pub rx: Option<PathBuf>,
    /// File to write.
    pub tx: Option<PathBuf>,
    /// Replay forever.
    pub looping: bool,
}

impl PcapOptions {
    /// The options of `type=pcap`, defaults for those not given.
    pub(crate) fn parse<'o>(
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let rx = given("rx").map(|v| parse_path("rx", v)).transpose()?;
        let tx = given("tx").map(|v| parse_path("tx", v)).transpose()?;
        let looping = given("loop")
            .map(|v| parse_bool("loop", v))
            .transpose()?
            .unwrap_or(false);
        if rx.is_none() && tx.is_none() {
            return Err(PortSpecError::Invalid {
                key: "rx".to_string(),
                reason: "type=pcap needs rx=FILE, tx=FILE or both".to_string(),
            });
        }
        if looping && rx.is_none() {
            return Err(PortSpecError::Invalid {
                key: "loop".to_string(),
                reason: "loop=true needs rx=FILE".to_string(),
            });
        }
        Ok(PcapOptions { rx, tx, looping })
    }

    /// The options as `options_text` prints them.
    pub(crate) fn write(&self, s: &mut String) {
        // Writing to a String cannot fail.
        if let Some(rx) = &self.rx {
            let _ = write!(s, " rx={} loop={}", rx.display(), self.looping);
        }
        if let Some(tx) = &self.tx {
            let _ = write!(s, " tx={}", tx.display());
        }
    }

    /// Opens the pcap port `name`.
    pub(crate) fn open(&self, name: &str) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        Ok(vec![Box::new(PcapPort::open(
            name,
            self.rx.as_deref(),
            self.tx.as_deref(),
            self.looping,
        )?)])
    }
}
