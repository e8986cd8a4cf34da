//! The options of `type=afpacket` ports: what `add-port` and the config take, their
//! defaults, their canonical text and how the port opens.

use std::fmt::Write as _;

use crate::option::{number, power_of_two, PortSpecError};
use crate::{PortError, PortIo};

use super::port::AfPacketQueue;
use super::AfPacketConfig;

/// The keys of `type=afpacket`.
pub const KEYS: &[&str] = &["block-size", "blocks", "frame-size", "block-timeout-ms"];

/// Options of an AF_PACKET port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfPacketOptions {
    /// Bytes per receive block.
    pub block_size: u32,
    /// Receive blocks.
    pub blocks: u32,
    /// Bytes per transmit frame.
    pub frame_size: u32,
    /// Milliseconds before the kernel hands over a partly filled receive block: the
    /// latency of a port that receives less than a block's worth in that time.
    pub block_timeout_ms: u32,
}

impl Default for AfPacketOptions {
    fn default() -> AfPacketOptions {
        let c = AfPacketConfig::default();
        AfPacketOptions {
            block_size: c.block_size,
            blocks: c.block_count,
            frame_size: c.frame_size,
            block_timeout_ms: c.block_timeout_ms,
        }
    }
}

impl AfPacketOptions {
    /// The options of `type=afpacket`, defaults for those not given.
    pub(crate) fn parse<'o>(
        given: &impl Fn(&str) -> Option<&'o str>,
    ) -> Result<Self, PortSpecError> {
        let mut o = AfPacketOptions::default();
        if let Some(v) = given("frame-size") {
            o.frame_size = power_of_two("frame-size", v, 256, 65536)?;
        }
        if let Some(v) = given("block-size") {
            o.block_size = power_of_two("block-size", v, 4096, 1 << 30)?;
        }
        if let Some(v) = given("blocks") {
            o.blocks = number("blocks", v, 1, 1 << 16)?;
        }
        if let Some(v) = given("block-timeout-ms") {
            o.block_timeout_ms = number("block-timeout-ms", v, 1, 1000)?;
        }
        if o.block_size < o.frame_size {
            return Err(PortSpecError::Invalid {
                key: "block-size".to_string(),
                reason: format!(
                    "{} is smaller than frame-size {}",
                    o.block_size, o.frame_size
                ),
            });
        }
        if u64::from(o.block_size) * u64::from(o.blocks) > 1 << 31 {
            return Err(PortSpecError::Invalid {
                key: "blocks".to_string(),
                reason: "block-size times blocks is more than 2 GiB".to_string(),
            });
        }
        Ok(o)
    }

    /// The options as `options_text` prints them.
    pub(crate) fn write(&self, s: &mut String) {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            " block-size={} blocks={} frame-size={} block-timeout-ms={}",
            self.block_size, self.blocks, self.frame_size, self.block_timeout_ms
        );
    }

    /// The transmit frame size the port opens with: `frame-size`, raised to the power of two
    /// that holds a frame of `mtu` (plus [`pipeline::FRAME_OVERHEAD`] and the ring's 32-byte
    /// frame header), as a larger `mtu_request` needs.
    pub fn frame_size_for(&self, mtu: Option<u16>) -> u32 {
        let need = mtu.map_or(0, |m| usize::from(m) + pipeline::FRAME_OVERHEAD + 32);
        self.frame_size.max(need.next_power_of_two() as u32)
    }

    /// Opens the port's one queue on interface `name`, its transmit frames sized for `mtu`.
    pub(crate) fn open(
        &self,
        name: &str,
        mtu: Option<u16>,
    ) -> Result<Vec<Box<dyn PortIo>>, PortError> {
        let frame_size = self.frame_size_for(mtu);
        let config = AfPacketConfig {
            block_size: self.block_size.max(frame_size),
            block_count: self.blocks,
            frame_size,
            block_timeout_ms: self.block_timeout_ms,
            ..AfPacketConfig::default()
        };
        Ok(vec![Box::new(AfPacketQueue::open(name, name, &config)?)])
    }
}
