//! OpenFlow 1.3.5 (and 1.0, `of10`) on the wire: the framing of a byte stream into messages ([`Framer`]), each
//! message as a struct with `decode` / `encode` (one module per message family under `msg`),
//! OXM matches converted to and from vecswitch's [`openflow::Match`] (`oxm`), and
//! instructions and actions converted to and from [`openflow::Action`] (`action`). Every
//! refusal is an [`OfpError`] that names the ERROR type and code the spec gives for it, so
//! the connection layer can answer with an ERROR message. No sockets here.
#![forbid(unsafe_code)]

pub mod action;
pub mod buf;
pub mod error;
pub mod header;
pub mod msg;
pub mod of10;
pub mod oxm;

pub use error::{ErrorCode, OfpError};
pub use header::{Framer, Header, OFP_HEADER_LEN, OFP_MAX_LEN};
pub use msg::{Message, MsgType};

/// OpenFlow 1.0's version byte.
pub const OFP10_VERSION: u8 = 0x01;
/// OpenFlow 1.3's version byte.
pub const OFP13_VERSION: u8 = 0x04;
