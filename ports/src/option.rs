//! Values of port options, shared by every kind's `options.rs` and the registry (`spec.rs`):
//! the error that names the refused key, and the parsers of numbers, powers of two, booleans
//! and file names with their refusals.

use std::path::PathBuf;

/// Most AF_XDP queues one port may have (the XSKMAP's slots).
pub const MAX_QUEUES: u32 = 64;
/// A refused port option, naming the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// A key no port type knows.
    #[error("{key}: unknown option (type={kind} takes {known})")]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The port's type.
        kind: &'static str,
        /// The keys the type takes.
        known: String,
    },
    /// A key of another port type.
    #[error("{key}: not an option of type={kind}")]
    NotForType {
        /// The key as given.
        key: String,
        /// The port's type.
        kind: &'static str,
    },
    /// A key given twice.
    #[error("{key}: given twice")]
    Duplicate {
        /// The key as given.
        key: String,
    },
    /// A value that does not parse or is out of range.
    #[error("{key}: bad value {value:?}: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// Why.
        reason: String,
    },
    /// Something missing or inconsistent.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key (or `name` for the port's name).
        key: String,
        /// Why.
        reason: String,
    },
}

/// The value of a key the type cannot do without; `reason` says so when it is missing.
pub(crate) fn required<'o>(
    given: &impl Fn(&str) -> Option<&'o str>,
    key: &str,
    reason: &str,
) -> Result<&'o str, PortSpecError> {
    given(key).ok_or_else(|| PortSpecError::Invalid {
        key: key.to_string(),
        reason: reason.to_string(),
    })
}

pub(crate) fn bad(key: &str, value: &str, reason: impl Into<String>) -> PortSpecError {
    PortSpecError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: &str,
    lo: T,
    hi: T,
) -> Result<T, PortSpecError> {
    let n: T = value.parse().map_err(|_| bad(key, value, "not a number"))?;
    if n < lo || n > hi {
        return Err(bad(key, value, format!("must be {lo}..={hi}")));
    }
    Ok(n)
}

pub(crate) fn power_of_two(key: &str, value: &str, lo: u32, hi: u32) -> Result<u32, PortSpecError> {
    let n = number(key, value, lo, hi)?;
    if !n.is_power_of_two() {
        return Err(bad(
            key,
            value,
            format!("must be a power of two from {lo} to {hi}"),
        ));
    }
    Ok(n)
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, PortSpecError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

pub(crate) fn parse_path(key: &str, value: &str) -> Result<PathBuf, PortSpecError> {
    if value.is_empty() {
        return Err(bad(key, value, "empty file name"));
    }
    if value.chars().any(char::is_whitespace) {
        // The control socket splits its words at whitespace.
        return Err(bad(
            key,
            value,
            "file names with whitespace are not supported",
        ));
    }
    Ok(PathBuf::from(value))
}
