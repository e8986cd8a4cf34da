//! Flow caches of vecswitch: the per-PMD exact-match cache (EMC), the megaflow cache (tuple
//! space search over masked keys) and the `classify` node that cascades EMC → megaflow →
//! upcall, as Open vSwitch's dpif-netdev does.
#![forbid(unsafe_code)]

pub mod classify;
pub mod emc;
pub mod megaflow;
pub mod print;

pub use classify::{Classify, ClassifyConfig, ClassifyStats, ConfigError};
pub use emc::Emc;
pub use megaflow::{InstallRefused, Lookup, MegaflowCache, MegaflowInfo, MegaflowStats, NO_FLOW};
