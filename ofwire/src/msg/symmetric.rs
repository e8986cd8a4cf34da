//! HELLO (with the version bitmap element), ERROR and version negotiation. ECHO carries
//! opaque bytes and needs no struct.

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, Of10Error, OfpError, NXET_VENDOR, NX_VENDOR_ID};

/// `OFPHET_VERSIONBITMAP`.
const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// HELLO: the versions the sender speaks, when it says so with a bitmap element.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Hello {
    /// Bit N set: version N is spoken (versions above 31 are not defined).
    pub versions: Option<u32>,
}

impl Hello {
    /// A HELLO offering `versions` (bit N for version N).
    pub fn offering(versions: u32) -> Hello {
        Hello {
            versions: Some(versions),
        }
    }

    pub fn decode(mut r: Reader) -> Result<Hello, OfpError> {
        let mut h = Hello::default();
        // Elements are TLVs padded to 8 bytes; unknown ones are skipped, as the spec asks,
        // and so is what does not parse (OpenFlow 1.0 allows any bytes after the header).
        while r.remaining() >= 4 {
            let t = r.u16()?;
            let len = usize::from(r.u16()?);
            if len < 4 || len - 4 > r.remaining() {
                break;
            }
            let mut body = Reader::new(r.bytes(len - 4)?, E::BadRequestLen, "hello element");
            r.skip((len.div_ceil(8) * 8 - len).min(r.remaining()))?;
            if t == HELLO_ELEM_VERSIONBITMAP {
                h.versions = Some(if body.remaining() >= 4 {
                    body.u32()?
                } else {
                    0
                });
            }
        }
        Ok(h)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(v) = self.versions {
            out.put_u16(HELLO_ELEM_VERSIONBITMAP);
            out.put_u16(8);
            out.put_u32(v);
        }
    }
}

/// The version to speak: the highest both sides offer. `ours` is a bitmap (bit N: version
/// N); the peer's HELLO header version and bitmap, when it sent one. Without a bitmap the
/// peer speaks every version up to its header's (OpenFlow 1.3.5 section 6.3.1).
pub fn negotiate(ours: u32, peer_version: u8, peer: &Hello) -> Result<u8, OfpError> {
    let theirs = peer.versions.unwrap_or_else(|| {
        let v = u32::from(peer_version.min(31));
        (1u32 << v) | ((1u32 << v) - 1)
    });
    let common = ours & theirs & !1;
    if common == 0 {
        return err(E::HelloIncompatible, "hello.versions");
    }
    Ok((31 - common.leading_zeros()) as u8)
}

/// ERROR: a type, a code and (for refusals) the first bytes of the offending message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ErrorMsg {
    pub err_type: u16,
    pub code: u16,
    pub data: Vec<u8>,
}

impl ErrorMsg {
    /// The ERROR answering `offending` (a whole message) with `e`: its first 64 bytes, as the
    /// spec asks at least.
    /// An experimenter's error carries the experimenter id before the data.
    pub fn refusing(e: &OfpError, offending: &[u8]) -> ErrorMsg {
        let (err_type, code) = e.code.type_code();
        let mut data = Vec::with_capacity(68);
        if let Some(id) = e.code.experimenter() {
            data.put_u32(id);
        }
        data.extend_from_slice(&offending[..offending.len().min(64)]);
        ErrorMsg {
            err_type,
            code,
            data,
        }
    }

    /// [`ErrorMsg::refusing`] in `version`: OpenFlow 1.0's codes on a 1.0 connection
    /// ([`crate::ErrorCode::of10`]), 1.3's otherwise.
    pub fn refusing_in(version: u8, e: &OfpError, offending: &[u8]) -> ErrorMsg {
        if version != crate::OFP10_VERSION {
            return ErrorMsg::refusing(e, offending);
        }
        let quoted = &offending[..offending.len().min(64)];
        match e.code.of10() {
            Of10Error::Std(err_type, code) => ErrorMsg {
                err_type,
                code,
                data: quoted.to_vec(),
            },
            Of10Error::Nicira(t, c) => {
                let mut data = Vec::with_capacity(8 + quoted.len());
                data.put_u32(NX_VENDOR_ID);
                data.put_u16(t);
                data.put_u16(c);
                data.extend_from_slice(quoted);
                ErrorMsg {
                    err_type: NXET_VENDOR,
                    // NXVC_VENDOR_ERROR.
                    code: 0,
                    data,
                }
            }
        }
    }

    pub fn decode(mut r: Reader) -> Result<ErrorMsg, OfpError> {
        Ok(ErrorMsg {
            err_type: r.u16()?,
            code: r.u16()?,
            data: r.rest().to_vec(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.err_type);
        out.put_u16(self.code);
        out.extend_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_zero_errors_use_one_zero_codes_or_nicira_ones() {
        let offending = [1u8, 14, 0, 80, 0, 0, 0, 9];
        let e = |code| OfpError::new(code, "test");
        // FLOW_MOD_FAILED is type 3 in 1.0 (5 in 1.3), BAD_COMMAND code 4 (6 in 1.3).
        let m = ErrorMsg::refusing_in(1, &e(E::FlowModBadCommand), &offending);
        assert_eq!(
            (m.err_type, m.code, m.data.as_slice()),
            (3, 4, &offending[..])
        );
        let m = ErrorMsg::refusing_in(4, &e(E::FlowModBadCommand), &offending);
        assert_eq!((m.err_type, m.code), (5, 6));
        // A bad prerequisite has no 1.0 code: NXET_VENDOR / NXVC_VENDOR_ERROR, then
        // nx_vendor_error {0x2320, 1, 260} and the message.
        let m = ErrorMsg::refusing_in(1, &e(E::BadMatchPrereq), &offending);
        assert_eq!((m.err_type, m.code), (0xb0c2, 0));
        assert_eq!(m.data[..8], [0, 0, 0x23, 0x20, 0, 1, 1, 4]);
        assert_eq!(m.data[8..], offending);
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        let ours = (1 << 1) | (1 << 4);
        // ovs-ofctl -O OpenFlow13,OpenFlow14 sends a bitmap.
        let peer = Hello::offering((1 << 4) | (1 << 5));
        assert_eq!(negotiate(ours, 5, &peer), Ok(4));
        // ovs-ofctl's default: OpenFlow 1.0 only.
        assert_eq!(negotiate(ours, 1, &Hello::default()), Ok(1));
        // A 1.5 peer without a bitmap speaks everything below.
        assert_eq!(negotiate(ours, 6, &Hello::default()), Ok(4));
        // 1.1 / 1.2 only.
        let e = negotiate(ours, 3, &Hello::offering((1 << 2) | (1 << 3)));
        assert_eq!(e.err().map(|e| e.code.type_code()), Some((0, 0)));
    }
}
