//! The options of `type=vhost-user` ports: what `add-port` and the config take, their
//! canonical text and how the port's queue pairs open.

use std::fmt::Write as _;

use crate::option::{bad, number, parse_path, required, PortSpecError};
use crate::{PortError, PortIo};

use super::{VhostUserMode, VhostUserOptions, VhostUserQueue, MAX_QUEUE_PAIRS};

/// The keys of `type=vhost-user`.
pub const KEYS: &[&str] = &["socket", "mode", "queues"];

impl VhostUserOptions {
    /// The options of `type=vhost-user`, defaults for those not given.
    pub(crate) fn parse<'o>(
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let v = required(given, "socket", "type=vhost-user needs socket=PATH")?;
        let socket = parse_path("socket", v)?;
        let mode = match given("mode") {
            None => VhostUserMode::Server,
            Some(m) if m.eq_ignore_ascii_case("server") => VhostUserMode::Server,
            Some(m) if m.eq_ignore_ascii_case("client") => VhostUserMode::Client,
            Some(m) => return Err(bad("mode", m, "expected server or client")),
        };
        let queues = match given("queues") {
            Some(v) => number("queues", v, 1, MAX_QUEUE_PAIRS)?,
            None => 1,
        };
        Ok(VhostUserOptions {
            socket,
            mode,
            queues,
        })
    }

    /// The options as `options_text` prints them.
    pub(crate) fn write(&self, s: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            " socket={} mode={} queues={}",
            self.socket.display(),
            self.mode.name(),
            self.queues
        );
    }

    /// Opens one queue per queue pair.
    pub(crate) fn open(&self, name: &str) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let mut queues: Vec<Box<dyn PortIo>> = Vec::new();
        for q in VhostUserQueue::open(name, self)? {
            queues.push(Box::new(q));
        }
        Ok(queues)
    }
}
