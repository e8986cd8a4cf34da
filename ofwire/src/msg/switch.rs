//! The switch-wide messages: FEATURES_REPLY, GET_CONFIG_REPLY / SET_CONFIG, ROLE_REQUEST /
//! ROLE_REPLY and GET_ASYNC_REPLY / SET_ASYNC.

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};

/// FEATURES_REPLY.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Features {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    /// `OFPC_*` bits.
    pub capabilities: u32,
}

impl Features {
    pub fn decode(mut r: Reader) -> Result<Features, OfpError> {
        let f = Features {
            datapath_id: r.u64()?,
            n_buffers: r.u32()?,
            n_tables: r.u8()?,
            auxiliary_id: r.u8()?,
            capabilities: {
                r.skip(2)?;
                r.u32()?
            },
        };
        r.skip(4)?;
        Ok(f)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.datapath_id);
        out.put_u32(self.n_buffers);
        out.put_u8(self.n_tables);
        out.put_u8(self.auxiliary_id);
        out.put_zeros(2);
        out.put_u32(self.capabilities);
        out.put_u32(0);
    }
}

/// `OFPC_FRAG_MASK`: the fragment handling bits of the config flags.
pub const OFPC_FRAG_MASK: u16 = 3;

/// GET_CONFIG_REPLY and SET_CONFIG.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SwitchConfig {
    /// `OFPC_FRAG_*`.
    pub flags: u16,
    /// Bytes of a packet sent to the controller by table-miss and `CONTROLLER` without a
    /// `max_len`.
    pub miss_send_len: u16,
}

impl SwitchConfig {
    pub fn decode(mut r: Reader) -> Result<SwitchConfig, OfpError> {
        let c = SwitchConfig {
            flags: r.u16()?,
            miss_send_len: r.u16()?,
        };
        if c.flags & !OFPC_FRAG_MASK != 0 {
            return err(E::SwitchConfigBadFlags, "switch_config.flags");
        }
        Ok(c)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.flags);
        out.put_u16(self.miss_send_len);
    }
}

/// A controller's role.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ControllerRole {
    NoChange = 0,
    Equal = 1,
    Master = 2,
    Slave = 3,
}

/// ROLE_REQUEST and ROLE_REPLY.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Role {
    pub role: ControllerRole,
    pub generation_id: u64,
}

impl Role {
    pub fn decode(mut r: Reader) -> Result<Role, OfpError> {
        let role = match r.u32()? {
            0 => ControllerRole::NoChange,
            1 => ControllerRole::Equal,
            2 => ControllerRole::Master,
            3 => ControllerRole::Slave,
            _ => return err(E::RoleRequestBadRole, "role"),
        };
        r.skip(4)?;
        Ok(Role {
            role,
            generation_id: r.u64()?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.role as u32);
        out.put_zeros(4);
        out.put_u64(self.generation_id);
    }
}

/// GET_ASYNC_REPLY and SET_ASYNC: which asynchronous messages a controller gets, for the
/// master-or-equal role (index 0) and the slave role (index 1), as bitmaps of reasons.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

impl AsyncConfig {
    pub fn decode(mut r: Reader) -> Result<AsyncConfig, OfpError> {
        let mut pair = || -> Result<[u32; 2], OfpError> { Ok([r.u32()?, r.u32()?]) };
        Ok(AsyncConfig {
            packet_in_mask: pair()?,
            port_status_mask: pair()?,
            flow_removed_mask: pair()?,
        })
    }

    /// The configuration with only the reasons OpenFlow 1.3 names kept: packet-in no_match,
    /// action and invalid_ttl; port status add, delete and modify; flow removed idle and hard
    /// timeout, delete, group delete, meter delete and eviction. Open vSwitch drops the other
    /// bits of a SET_ASYNC without an error (`decode_async_mask`, loose for 1.3), so its
    /// GET_ASYNC_REPLY shows none of them.
    pub fn named_reasons_only(self) -> AsyncConfig {
        let keep = |m: [u32; 2], named: u32| [m[0] & named, m[1] & named];
        AsyncConfig {
            packet_in_mask: keep(self.packet_in_mask, 0x7),
            port_status_mask: keep(self.port_status_mask, 0x7),
            flow_removed_mask: keep(self.flow_removed_mask, 0x3f),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        for m in [
            self.packet_in_mask,
            self.port_status_mask,
            self.flow_removed_mask,
        ] {
            out.put_u32(m[0]);
            out.put_u32(m[1]);
        }
    }
}
