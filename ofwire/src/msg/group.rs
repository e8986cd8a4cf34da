//! GROUP_MOD and the group description shared with the GROUP_DESC reply. Groups decode and
//! encode; executing them is not in vecswitch yet.

use crate::action::{decode_actions, encode_actions, WireAction};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupType {
    All = 0,
    Select = 1,
    Indirect = 2,
    FastFailover = 3,
}

fn group_type(t: u8) -> Result<GroupType, OfpError> {
    Ok(match t {
        0 => GroupType::All,
        1 => GroupType::Select,
        2 => GroupType::Indirect,
        3 => GroupType::FastFailover,
        _ => return err(E::GroupModBadType, "group.type"),
    })
}

/// `ofp_bucket`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<WireAction>,
}

impl Bucket {
    fn decode(r: &mut Reader) -> Result<Bucket, OfpError> {
        let len = usize::from(r.u16()?);
        if len < 16 || len % 8 != 0 {
            return err(E::GroupModBadBucket, "bucket.len");
        }
        let mut b = Reader::new(r.bytes(len - 2)?, E::GroupModBadBucket, "bucket.len");
        let weight = b.u16()?;
        let watch_port = b.u32()?;
        let watch_group = b.u32()?;
        b.skip(4)?;
        Ok(Bucket {
            weight,
            watch_port,
            watch_group,
            actions: decode_actions(Reader::new(b.rest(), E::BadActionLen, "bucket.actions"))?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(self.weight);
        out.put_u32(self.watch_port);
        out.put_u32(self.watch_group);
        out.put_zeros(4);
        encode_actions(&self.actions, out);
        let len = out.len() - start;
        out.set_u16(start, len as u16);
    }
}

fn decode_buckets(mut r: Reader) -> Result<Vec<Bucket>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(Bucket::decode(&mut r)?);
    }
    Ok(v)
}

/// GROUP_MOD.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupMod {
    pub command: GroupCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub fn decode(mut r: Reader) -> Result<GroupMod, OfpError> {
        let command = match r.u16()? {
            0 => GroupCommand::Add,
            1 => GroupCommand::Modify,
            2 => GroupCommand::Delete,
            _ => return err(E::GroupModBadCommand, "group_mod.command"),
        };
        let group_type = group_type(r.u8()?)?;
        r.skip(1)?;
        Ok(GroupMod {
            command,
            group_type,
            group_id: r.u32()?,
            buckets: decode_buckets(r)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command as u16);
        out.put_u8(self.group_type as u8);
        out.put_u8(0);
        out.put_u32(self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
    }
}

/// One entry of the GROUP_DESC reply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupDesc {
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    pub fn decode(r: &mut Reader) -> Result<GroupDesc, OfpError> {
        let len = usize::from(r.u16()?);
        if len < 8 {
            return err(E::BadRequestLen, "group_desc.length");
        }
        let mut b = Reader::new(r.bytes(len - 2)?, E::BadRequestLen, "group_desc.length");
        let group_type = group_type(b.u8()?)?;
        b.skip(1)?;
        Ok(GroupDesc {
            group_type,
            group_id: b.u32()?,
            buckets: decode_buckets(b)?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.group_type as u8);
        out.put_u8(0);
        out.put_u32(self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
        let len = out.len() - start;
        out.set_u16(start, len as u16);
    }
}
