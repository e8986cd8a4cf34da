//! Bundles in OpenFlow 1.3: the ONF extension (EXT-230) that OpenFlow 1.4 made
//! `OFPT_BUNDLE_CONTROL` / `OFPT_BUNDLE_ADD_MESSAGE`, carried in 1.3 as EXPERIMENTER
//! messages of the ONF (`0x4f4e4600`), types 2300 and 2301. `ovs-ofctl -O OpenFlow13
//! --bundle` speaks it. The body after the experimenter header is `ofp14_bundle_ctrl_msg`:
//! bundle id, control type, flags; an add message follows it with the whole inner message
//! (whose xid is the outer one) and, optionally, padding and properties.

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::header::{Header, OFP_HEADER_LEN};

/// The ONF's experimenter id.
pub const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
/// `ONFT_BUNDLE_CONTROL`.
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
/// `ONFT_BUNDLE_ADD_MESSAGE`.
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

/// `OFPBF_ATOMIC`.
pub const OFPBF_ATOMIC: u16 = 1 << 0;
/// `OFPBF_ORDERED`.
pub const OFPBF_ORDERED: u16 = 1 << 1;

/// `ofp14_bundle_ctrl_type`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BundleCtrlType {
    OpenRequest = 0,
    OpenReply = 1,
    CloseRequest = 2,
    CloseReply = 3,
    CommitRequest = 4,
    CommitReply = 5,
    DiscardRequest = 6,
    DiscardReply = 7,
}

impl BundleCtrlType {
    fn from_u16(v: u16) -> Option<BundleCtrlType> {
        use BundleCtrlType as T;
        [
            T::OpenRequest,
            T::OpenReply,
            T::CloseRequest,
            T::CloseReply,
            T::CommitRequest,
            T::CommitReply,
            T::DiscardRequest,
            T::DiscardReply,
        ]
        .get(usize::from(v))
        .copied()
    }

    /// The reply a request gets (`None` for a reply).
    pub fn reply(self) -> Option<BundleCtrlType> {
        use BundleCtrlType as T;
        match self {
            T::OpenRequest => Some(T::OpenReply),
            T::CloseRequest => Some(T::CloseReply),
            T::CommitRequest => Some(T::CommitReply),
            T::DiscardRequest => Some(T::DiscardReply),
            _ => None,
        }
    }
}

/// `ONFT_BUNDLE_CONTROL`. Properties are kept as bytes: none is defined for 1.3.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BundleCtrl {
    pub bundle_id: u32,
    pub ctrl_type: BundleCtrlType,
    pub flags: u16,
    pub properties: Vec<u8>,
}

impl BundleCtrl {
    fn decode(mut r: Reader) -> Result<BundleCtrl, OfpError> {
        let bundle_id = r.u32()?;
        let Some(ctrl_type) = BundleCtrlType::from_u16(r.u16()?) else {
            return err(E::BundleBadType, "bundle_ctrl.type");
        };
        Ok(BundleCtrl {
            bundle_id,
            ctrl_type,
            flags: r.u16()?,
            properties: r.rest().to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(ONF_EXPERIMENTER_ID);
        out.put_u32(ONFT_BUNDLE_CONTROL);
        out.put_u32(self.bundle_id);
        out.put_u16(self.ctrl_type as u16);
        out.put_u16(self.flags);
        out.extend_from_slice(&self.properties);
    }
}

/// `ONFT_BUNDLE_ADD_MESSAGE`: the inner message is kept whole (header included) and checked
/// as OVS checks it: a whole header, the outer version, a length that fits, the outer xid.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub inner: Vec<u8>,
}

impl BundleAdd {
    fn decode(outer: &Header, mut r: Reader) -> Result<BundleAdd, OfpError> {
        let bundle_id = r.u32()?;
        r.skip(2)?;
        let flags = r.u16()?;
        let rest = r.rest();
        if rest.len() < OFP_HEADER_LEN {
            return err(E::BundleMsgBadLen, "bundle_add.message");
        }
        let inner = raw_header(rest);
        // OVS answers NXBFC_BAD_VERSION, an error without a 1.3 encoding; this is the
        // standard code for it.
        if inner.version != outer.version {
            return err(E::BadRequestVersion, "bundle_add.message.version");
        }
        let len = usize::from(inner.length);
        if len < OFP_HEADER_LEN || len > rest.len() {
            return err(E::BundleMsgBadLen, "bundle_add.message.length");
        }
        if inner.xid != outer.xid {
            return err(E::BundleMsgBadXid, "bundle_add.message.xid");
        }
        // What follows the inner message (padding, properties) defines nothing for 1.3.
        Ok(BundleAdd {
            bundle_id,
            flags,
            inner: rest[..len].to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(ONF_EXPERIMENTER_ID);
        out.put_u32(ONFT_BUNDLE_ADD_MESSAGE);
        out.put_u32(self.bundle_id);
        out.put_u16(0);
        out.put_u16(self.flags);
        out.extend_from_slice(&self.inner);
    }

    /// The inner message's header and body.
    pub fn inner(&self) -> (Header, &[u8]) {
        (raw_header(&self.inner), &self.inner[OFP_HEADER_LEN..])
    }
}

/// The header at the start of `b` (at least 8 bytes), its length not checked.
fn raw_header(b: &[u8]) -> Header {
    Header {
        version: b[0],
        msg_type: b[1],
        length: u16::from_be_bytes([b[2], b[3]]),
        xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    }
}

/// An EXPERIMENTER message of the kinds this switch reads.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Experimenter {
    BundleControl(BundleCtrl),
    BundleAdd(BundleAdd),
}

impl Experimenter {
    /// Reads an EXPERIMENTER body: an unknown experimenter is `OFPBRC_BAD_EXPERIMENTER`, an
    /// unknown type of the ONF's `OFPBRC_BAD_EXPTYPE`, as the spec names them.
    pub fn decode(h: &Header, body: &[u8]) -> Result<Experimenter, OfpError> {
        let mut r = Reader::new(body, E::BadRequestLen, "experimenter");
        let experimenter = r.u32()?;
        let exp_type = r.u32()?;
        if experimenter != ONF_EXPERIMENTER_ID {
            return err(E::BadRequestExperimenter, "experimenter");
        }
        let r = Reader::new(r.rest(), E::BadRequestLen, "bundle");
        match exp_type {
            ONFT_BUNDLE_CONTROL => BundleCtrl::decode(r).map(Experimenter::BundleControl),
            ONFT_BUNDLE_ADD_MESSAGE => BundleAdd::decode(h, r).map(Experimenter::BundleAdd),
            _ => err(E::BadRequestExpType, "experimenter.exp_type"),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Experimenter::BundleControl(m) => m.encode(out),
            Experimenter::BundleAdd(m) => m.encode(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Message;
    use crate::OFP13_VERSION;

    fn header(len: usize, xid: u32) -> Header {
        Header {
            version: OFP13_VERSION,
            msg_type: crate::MsgType::Experimenter as u8,
            length: len as u16,
            xid,
        }
    }

    /// The bytes `ovs-ofctl -O OpenFlow13 --bundle add-flow` sends to open bundle 0 (read
    /// off the wire with tshark): ONF experimenter, type 2300, ATOMIC|ORDERED.
    #[test]
    fn a_control_message_reads_and_writes_back() {
        let body = [
            0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x08, 0xfc, 0, 0, 0, 0, 0, 0, 0, 3,
        ];
        let h = header(8 + body.len(), 7);
        let m = Message::decode(&h, &body).unwrap();
        let Message::Experimenter(Experimenter::BundleControl(c)) = &m else {
            panic!("{m:?}");
        };
        assert_eq!(c.ctrl_type, BundleCtrlType::OpenRequest);
        assert_eq!(c.flags, OFPBF_ATOMIC | OFPBF_ORDERED);
        assert_eq!(c.ctrl_type.reply(), Some(BundleCtrlType::OpenReply));
        let out = m.encode(OFP13_VERSION, 7).unwrap();
        assert_eq!(&out[8..], &body);
    }

    #[test]
    fn an_add_message_checks_its_inner_message() {
        let inner = |version: u8, len: u16, xid: u32| {
            let mut b = vec![version, 20, 0, 0, 0, 0, 0, 0];
            b[2..4].copy_from_slice(&len.to_be_bytes());
            b[4..8].copy_from_slice(&xid.to_be_bytes());
            b
        };
        let add = |inner: &[u8]| {
            let mut b = vec![
                0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x08, 0xfd, 0, 0, 0, 9, 0, 0, 0, 3,
            ];
            b.extend_from_slice(inner);
            b
        };
        let decode = |body: &[u8]| Message::decode(&header(8 + body.len(), 5), body);
        let m = decode(&add(&inner(4, 8, 5))).unwrap();
        let Message::Experimenter(Experimenter::BundleAdd(a)) = &m else {
            panic!("{m:?}");
        };
        assert_eq!((a.bundle_id, a.flags), (9, 3));
        assert_eq!(a.inner().0.msg_type, 20);
        assert_eq!(
            &m.encode(OFP13_VERSION, 5).unwrap()[8..],
            &add(&inner(4, 8, 5))[..]
        );
        let code = |body: &[u8]| decode(body).unwrap_err().code;
        assert_eq!(code(&add(&inner(1, 8, 5))), E::BadRequestVersion);
        assert_eq!(code(&add(&inner(4, 16, 5))), E::BundleMsgBadLen);
        assert_eq!(code(&add(&inner(4, 4, 5))), E::BundleMsgBadLen);
        assert_eq!(code(&add(&inner(4, 8, 6))), E::BundleMsgBadXid);
        assert_eq!(code(&add(&[4, 20, 0])), E::BundleMsgBadLen);
    }

    #[test]
    fn other_experimenters_and_types_are_refused_by_name() {
        let decode = |body: &[u8]| {
            Message::decode(&header(8 + body.len(), 1), body)
                .unwrap_err()
                .code
        };
        assert_eq!(
            decode(&[0, 0, 0x23, 0x20, 0, 0, 0, 1]),
            E::BadRequestExperimenter
        );
        assert_eq!(
            decode(&[0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x08, 0xfe]),
            E::BadRequestExpType
        );
        assert_eq!(
            decode(&[0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x08, 0xfc, 0, 0, 0, 0, 0, 8, 0, 0]),
            E::BundleBadType
        );
        assert_eq!(decode(&[0x4f, 0x4e]), E::BadRequestLen);
    }
}
