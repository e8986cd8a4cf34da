//! The options of `type=generator` ports: what `add-port` and the config take, their
//! canonical text and how the port opens.

use std::fmt::Write as _;

use crate::option::{bad, number, required, PortSpecError};
use crate::{PortError, PortIo};

use super::traffic::parse_profile;
use super::GeneratorPort;

/// The keys of `type=generator`.
pub const KEYS: &[&str] = &["profile", "rate", "count"];

/// Options of a generator port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorOptions {
    /// Traffic profile (`traffic::parse_profile` syntax), whitespace removed.
    pub profile: String,
    /// Packets per second; `None` is `rate=max`.
    pub rate: Option<u64>,
    /// Frames after which the port stops; `None` for never.
    pub count: Option<u64>,
}

impl GeneratorOptions {
    /// The options of `type=generator`, defaults for those not given.
    pub(crate) fn parse<'o>(
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let v = required(
            given,
            "profile",
            "type=generator needs a profile, e.g. size=64,flows=10,proto=udp",
        )?;
        let profile: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        let parsed = parse_profile(&profile).map_err(|e| bad("profile", v, e.to_string()))?;
        parsed
            .validate()
            .map_err(|e| bad("profile", v, e.to_string()))?;
        let rate = match given("rate") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("max") => None,
            Some(v) => Some(number("rate", v, 1, u64::MAX)?),
        };
        let count = match given("count") {
            None => None,
            Some(v) => Some(number("count", v, 1, u64::MAX)?),
        };
        Ok(GeneratorOptions {
            profile,
            rate,
            count,
        })
    }

    /// The options as `options_text` prints them.
    pub(crate) fn write(&self, s: &mut String) {
        let rate = self.rate.map_or("max".to_string(), |r| r.to_string());
        let count = self.count.map_or(String::new(), |c| format!(" count={c}"));
        // Writing to a String cannot fail.
        let _ = write!(s, " profile={} rate={rate}{count}", self.profile);
    }

    /// Opens the generator port `name`.
    pub(crate) fn open(&self, name: &str) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let profile = parse_profile(&self.profile).map_err(|e| PortError::Invalid {
            port: name.to_string(),
            step: "parse the profile".to_string(),
            reason: e.to_string(),
        })?;
        Ok(vec![Box::new(GeneratorPort::new(
            name, profile, self.rate, self.count,
        )?)])
    }
}
