//! OpenFlow 1.3 on a socket, for one bridge at a time: targets as `ovs-vsctl
//! set-controller` writes them (`target`), non-blocking TCP and unix streams and listeners
//! (`stream`), a connection's state machine with HELLO version negotiation, echo and the
//! inactivity probe (`conn`), the answers to each message (`handle`), and a bridge's set of
//! listeners, active controllers and connections (`manager`). The bridge itself is reached
//! only through the [`Switch`] trait, which the daemon implements: this crate knows nothing
//! of PMDs or ports.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod conn;
pub mod handle;
pub mod manager;
pub mod stream;
pub mod switch;
pub mod target;

pub use manager::{ConnStatus, Controllers, FailMode};
pub use switch::Switch;
pub use target::{Target, TargetError};
