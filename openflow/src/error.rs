//! Control-plane errors: each names the field (or flow mod) at fault and the reason.

/// A rule that cannot be accepted: `field` is the field, action or keyword at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RuleError {
    pub field: String,
    pub reason: String,
}

impl RuleError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> RuleError {
        RuleError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A rule of a flows file (or a bundle file) that cannot be accepted; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct FileError {
    pub line: usize,
    pub error: RuleError,
}

/// A bundle (or a single flow mod) that was refused; nothing was changed. `index` is the
/// 0-based position of the offending flow mod in the bundle, `line` its 1-based line when the
/// bundle came from text. Displayed as `line N: field: reason`, or `flow mod N: ...` (1-based)
/// without text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", line.map(|l| format!("line {l}")).unwrap_or_else(|| format!("flow mod {}", index + 1)))]
pub struct BundleError {
    pub index: usize,
    pub line: Option<usize>,
    pub error: RuleError,
}
