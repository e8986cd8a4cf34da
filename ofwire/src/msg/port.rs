//! Ports: `ofp_port` (PORT_STATUS and the PORT_DESC reply), PORT_STATUS and PORT_MOD.

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};

/// `OFPPC_*` bits a PORT_MOD may change.
pub const OFPPC_PORT_DOWN: u32 = 1 << 0;
pub const OFPPC_NO_RECV: u32 = 1 << 2;
pub const OFPPC_NO_FWD: u32 = 1 << 5;
pub const OFPPC_NO_PACKET_IN: u32 = 1 << 6;
const OFPPC_ALL: u32 = OFPPC_PORT_DOWN | OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN;
/// `OFPPS_LINK_DOWN`.
pub const OFPPS_LINK_DOWN: u32 = 1 << 0;

/// `ofp_port`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    /// At most 16 bytes on the wire (cut at a character boundary to fit).
    pub name: String,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    /// kbps.
    pub curr_speed: u32,
    pub max_speed: u32,
}

/// Bytes of `ofp_port`.
pub const PORT_LEN: usize = 64;

impl Port {
    pub fn decode(r: &mut Reader) -> Result<Port, OfpError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        Ok(Port {
            port_no,
            hw_addr,
            name: r.string(16)?,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no);
        out.put_zeros(4);
        out.extend_from_slice(&self.hw_addr);
        out.put_zeros(2);
        out.put_string(&self.name, 16);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            out.put_u32(v);
        }
    }
}

/// Why a PORT_STATUS is sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PortReason {
    Add = 0,
    Delete = 1,
    Modify = 2,
}

impl PortReason {
    /// The reason numbered `n` (the same in 1.0 and 1.3).
    pub(crate) fn from_wire(n: u8) -> Result<PortReason, OfpError> {
        Ok(match n {
            0 => PortReason::Add,
            1 => PortReason::Delete,
            2 => PortReason::Modify,
            _ => return err(E::BadRequestLen, "port_status.reason"),
        })
    }
}

/// PORT_STATUS.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PortStatus {
    pub reason: PortReason,
    pub port: Port,
}

impl PortStatus {
    pub fn decode(mut r: Reader) -> Result<PortStatus, OfpError> {
        let reason = PortReason::from_wire(r.u8()?)?;
        r.skip(7)?;
        Ok(PortStatus {
            reason,
            port: Port::decode(&mut r)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.reason as u8);
        out.put_zeros(7);
        self.port.encode(out);
    }
}

/// PORT_MOD.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    /// New values of the `OFPPC_*` bits in `mask`.
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

impl PortMod {
    pub fn decode(mut r: Reader) -> Result<PortMod, OfpError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        let m = PortMod {
            port_no,
            hw_addr,
            config: r.u32()?,
            mask: r.u32()?,
            advertise: r.u32()?,
        };
        r.skip(4)?;
        if m.mask & !OFPPC_ALL != 0 {
            return err(E::PortModBadConfig, "port_mod.mask");
        }
        Ok(m)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.port_no);
        out.put_zeros(4);
        out.extend_from_slice(&self.hw_addr);
        out.put_zeros(2);
        out.put_u32(self.config);
        out.put_u32(self.mask);
        out.put_u32(self.advertise);
        out.put_zeros(4);
    }
}
