//! GROUP_MOD, the group description shared with the GROUP_DESC reply, the GROUP stats
//! entries and the GROUP_FEATURES vecswitch has; each converted to and from the group model
//! of the `openflow` crate ([`GroupMod::to_model`], [`GroupDesc::from_model`],
//! [`group_stats`], [`group_features`], [`group_mod_error`]), so the connection layer only
//! applies and answers.

use openflow::group::{self as model, GroupModFailed, OFPG_ALL, OFPG_ANY, OFPG_MAX, OFPP_ANY};

use crate::action::{
    decode_actions, encode_actions, from_action, port, to_action, Context, WireAction,
};
use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::msg::multipart::GroupFeatures;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
    /// Open vSwitch's extension (`OFPGC11_ADD_OR_MOD`, what `ovs-ofctl --may-create
    /// mod-group` sends): a modify that adds the group when it does not exist.
    AddOrModify = 0x8000,
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
            0x8000 => GroupCommand::AddOrModify,
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

fn to_model_type(t: GroupType) -> model::GroupType {
    match t {
        GroupType::All => model::GroupType::All,
        GroupType::Select => model::GroupType::Select,
        GroupType::Indirect => model::GroupType::Indirect,
        GroupType::FastFailover => model::GroupType::FastFailover,
    }
}

fn from_model_type(t: model::GroupType) -> GroupType {
    match t {
        model::GroupType::All => GroupType::All,
        model::GroupType::Select => GroupType::Select,
        model::GroupType::Indirect => GroupType::Indirect,
        model::GroupType::FastFailover => GroupType::FastFailover,
    }
}

impl Bucket {
    /// The bucket as the model has it: `OFPP_ANY` / `OFPG_ANY` watch nothing; another
    /// reserved port or group is `OFPGMFC_BAD_WATCH`; actions as a FLOW_MOD's.
    fn to_model(&self) -> Result<model::Bucket, OfpError> {
        let watch_port = match self.watch_port {
            OFPP_ANY => None,
            p if p < port::MAX => Some(p),
            _ => return err(E::GroupModBadWatch, "bucket.watch_port"),
        };
        let watch_group = match self.watch_group {
            OFPG_ANY => None,
            g if g <= OFPG_MAX => Some(g),
            _ => return err(E::GroupModBadWatch, "bucket.watch_group"),
        };
        let actions = self
            .actions
            .iter()
            .map(|a| to_action(a, Context::FlowMod))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(model::Bucket {
            weight: self.weight,
            watch_port,
            watch_group,
            actions,
        })
    }

    fn from_model(b: &model::Bucket) -> Result<Bucket, OfpError> {
        let mut actions = Vec::with_capacity(b.actions.len());
        for a in &b.actions {
            if let Some(w) = from_action(a)? {
                actions.push(w);
            }
        }
        Ok(Bucket {
            weight: b.weight,
            watch_port: b.watch_port.unwrap_or(OFPP_ANY),
            watch_group: b.watch_group.unwrap_or(OFPG_ANY),
            actions,
        })
    }
}

impl GroupMod {
    /// The group mod as the model has it, for `openflow::Bridge::apply_groups`. Refused here:
    /// an ADD or MODIFY of a group id beyond `OFPG_MAX` (`OFPGMFC_INVALID_GROUP`), a DELETE of
    /// one beyond it other than `OFPG_ALL`, bad watches, actions the switch does not have;
    /// the rest (existence, liveness rules, loops) when applied ([`group_mod_error`]).
    pub fn to_model(&self) -> Result<model::GroupMod, OfpError> {
        let command = match self.command {
            GroupCommand::Add => model::GroupModCommand::Add,
            GroupCommand::Modify => model::GroupModCommand::Modify,
            GroupCommand::Delete => model::GroupModCommand::Delete,
            GroupCommand::AddOrModify => model::GroupModCommand::AddOrModify,
        };
        let id_ok = match command {
            model::GroupModCommand::Delete => {
                self.group_id <= OFPG_MAX || self.group_id == OFPG_ALL
            }
            _ => self.group_id <= OFPG_MAX,
        };
        if !id_ok {
            return err(E::GroupModInvalidGroup, "group_mod.group_id");
        }
        let buckets = if command == model::GroupModCommand::Delete {
            Vec::new()
        } else {
            self.buckets
                .iter()
                .map(Bucket::to_model)
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(model::GroupMod {
            command,
            spec: model::GroupSpec {
                group_id: self.group_id,
                kind: to_model_type(self.group_type),
                buckets,
            },
        })
    }

    /// A model group mod on the wire (what a controller would send).
    pub fn from_model(m: &model::GroupMod) -> Result<GroupMod, OfpError> {
        let command = match m.command {
            model::GroupModCommand::Add => GroupCommand::Add,
            model::GroupModCommand::Modify => GroupCommand::Modify,
            model::GroupModCommand::Delete => GroupCommand::Delete,
            model::GroupModCommand::AddOrModify => GroupCommand::AddOrModify,
        };
        Ok(GroupMod {
            command,
            group_type: from_model_type(m.spec.kind),
            group_id: m.spec.group_id,
            buckets: m
                .spec
                .buckets
                .iter()
                .map(Bucket::from_model)
                .collect::<Result<Vec<_>, _>>()?,
        })
    }
}

/// The ERROR a refused group mod is answered with.
pub fn group_mod_error(code: GroupModFailed) -> E {
    match code {
        GroupModFailed::GroupExists => E::GroupModGroupExists,
        GroupModFailed::InvalidGroup => E::GroupModInvalidGroup,
        GroupModFailed::WatchUnsupported => E::GroupModWatchUnsupported,
        GroupModFailed::Loop => E::GroupModLoop,
        GroupModFailed::UnknownGroup => E::GroupModUnknownGroup,
        GroupModFailed::BadType => E::GroupModBadType,
        GroupModFailed::BadBucket => E::GroupModBadBucket,
        GroupModFailed::BadWatch => E::GroupModBadWatch,
        GroupModFailed::BadOutGroup => E::BadActionOutGroup,
    }
}

impl GroupDesc {
    /// A GROUP_DESC entry of an installed group; a bucket action OpenFlow 1.3 cannot carry
    /// (`resubmit`, `ct`, `load` of a part of a field...) is `OFPBAC_BAD_TYPE`.
    pub fn from_model(g: &model::Group) -> Result<GroupDesc, OfpError> {
        Ok(GroupDesc {
            group_type: from_model_type(g.spec.kind),
            group_id: g.spec.group_id,
            buckets: g
                .spec
                .buckets
                .iter()
                .map(Bucket::from_model)
                .collect::<Result<Vec<_>, _>>()?,
        })
    }
}

/// One entry of the GROUP stats reply (`ofp_group_stats`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// `(packet_count, byte_count)` of each bucket.
    pub buckets: Vec<(u64, u64)>,
}

impl GroupStats {
    pub fn decode(r: &mut Reader) -> Result<GroupStats, OfpError> {
        let len = usize::from(r.u16()?);
        if len < 40 || (len - 40) % 16 != 0 {
            return err(E::BadRequestLen, "group_stats.length");
        }
        let mut b = Reader::new(r.bytes(len - 2)?, E::BadRequestLen, "group_stats.length");
        b.skip(2)?;
        let group_id = b.u32()?;
        let ref_count = b.u32()?;
        b.skip(4)?;
        let (packet_count, byte_count) = (b.u64()?, b.u64()?);
        let (duration_sec, duration_nsec) = (b.u32()?, b.u32()?);
        let mut buckets = Vec::new();
        while !b.is_empty() {
            buckets.push((b.u64()?, b.u64()?));
        }
        Ok(GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            buckets,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16((40 + 16 * self.buckets.len()) as u16);
        out.put_zeros(2);
        out.put_u32(self.group_id);
        out.put_u32(self.ref_count);
        out.put_zeros(4);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for (p, b) in &self.buckets {
            out.put_u64(*p);
            out.put_u64(*b);
        }
    }
}

/// The GROUP stats reply's entries for a request of `group_id` (`OFPG_ALL`: every group;
/// a group that does not exist: none), from a rule-set snapshot at `now_ns`.
pub fn group_stats(rules: &openflow::RuleSet, group_id: u32, now_ns: u64) -> Vec<GroupStats> {
    rules
        .groups()
        .filter(|g| group_id == OFPG_ALL || g.spec.group_id == group_id)
        .map(|g| {
            let d = now_ns.saturating_sub(g.created_ns);
            GroupStats {
                group_id: g.spec.group_id,
                ref_count: rules.group_ref_count(g.spec.group_id) as u32,
                packet_count: g.stats.packets(),
                byte_count: g.stats.bytes(),
                duration_sec: (d / 1_000_000_000) as u32,
                duration_nsec: (d % 1_000_000_000) as u32,
                buckets: g.stats.buckets(),
            }
        })
        .collect()
}

/// The GROUP_DESC reply's entries: every group, by id.
pub fn group_descs(rules: &openflow::RuleSet) -> Result<Vec<GroupDesc>, OfpError> {
    rules.groups().map(|g| GroupDesc::from_model(g)).collect()
}

/// What vecswitch's groups can do (GROUP_FEATURES): the four types; select weights, select
/// liveness and chaining (as OVS); up to `OFPG_MAX` groups of each type; in buckets, the
/// actions `to_action` takes (output, push/pop VLAN, group, set/dec nw_ttl, set_field).
pub fn group_features() -> GroupFeatures {
    const SELECT_WEIGHT: u32 = 1;
    const SELECT_LIVENESS: u32 = 2;
    const CHAINING: u32 = 4;
    let actions = [0u32, 17, 18, 22, 23, 24, 25]
        .iter()
        .fold(0u32, |m, t| m | (1 << t));
    GroupFeatures {
        types: 0xf,
        capabilities: SELECT_WEIGHT | SELECT_LIVENESS | CHAINING,
        max_groups: [OFPG_MAX; 4],
        actions: [actions; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::group::{parse_group_mod, GroupModCommand};
    use openflow::{Bridge, GroupModFailed};

    fn wire(text: &str) -> GroupMod {
        let m = parse_group_mod(text, GroupModCommand::Add).unwrap();
        GroupMod::from_model(&m).unwrap()
    }

    #[test]
    fn group_mods_convert_both_ways() {
        for text in [
            "group_id=1,type=select,bucket=weight:3,output:1,bucket=output:2",
            "group_id=2,type=ff,bucket=watch_port:1,output:1,bucket=watch_group:1,group:1",
            "group_id=3,type=all,bucket=mod_dl_src:00:00:00:00:00:01,output:1,bucket=output:LOCAL",
            "group_id=4,type=indirect,bucket=push_vlan:0x8100,dec_ttl,output:2",
        ] {
            let model = parse_group_mod(text, GroupModCommand::Add).unwrap();
            let w = GroupMod::from_model(&model).unwrap();
            let mut b = Vec::new();
            w.encode(&mut b);
            let back = GroupMod::decode(Reader::new(&b, E::BadRequestLen, "t")).unwrap();
            assert_eq!(back, w);
            assert_eq!(back.to_model().unwrap(), model, "{text}");
        }
        let del = GroupMod {
            command: GroupCommand::Delete,
            group_type: GroupType::All,
            group_id: OFPG_ALL,
            buckets: Vec::new(),
        };
        assert_eq!(del.to_model().unwrap().spec.group_id, OFPG_ALL);
        // Open vSwitch's ADD_OR_MOD (0x8000), as `ovs-ofctl --may-create mod-group` sends it;
        // another unknown command is refused.
        let model = parse_group_mod(
            "group_id=5,type=all,bucket=output:1",
            GroupModCommand::AddOrModify,
        )
        .unwrap();
        let w = GroupMod::from_model(&model).unwrap();
        let mut b = Vec::new();
        w.encode(&mut b);
        assert_eq!(&b[..2], &[0x80, 0x00]);
        let back = GroupMod::decode(Reader::new(&b, E::BadRequestLen, "t")).unwrap();
        assert_eq!(back.to_model().unwrap(), model);
        b[0] = 0x40;
        let refused = GroupMod::decode(Reader::new(&b, E::BadRequestLen, "t"));
        assert_eq!(refused.err().map(|e| e.code.type_code()), Some((6, 11)));
    }

    #[test]
    fn wire_refusals_carry_the_spec_codes() {
        let code = |m: &GroupMod| m.to_model().err().map(|e| e.code.type_code());
        let mut m = wire("group_id=1,type=all,bucket=output:1");
        m.group_id = OFPG_ALL;
        assert_eq!(code(&m), Some((6, 1)));
        let mut m = wire("group_id=1,type=ff,bucket=watch_port:1,output:1");
        m.buckets[0].watch_port = port::CONTROLLER;
        assert_eq!(code(&m), Some((6, 13)));
        m.buckets[0].watch_port = 1;
        m.buckets[0].watch_group = OFPG_ALL;
        assert_eq!(code(&m), Some((6, 13)));
        m.buckets[0].watch_group = OFPG_ANY;
        m.buckets[0].actions = vec![WireAction::CopyTtlIn];
        assert_eq!(code(&m), Some((2, 0)));
        // What the switch refuses when applying maps to the spec's codes.
        let b = Bridge::new(Vec::new(), openflow::normal::MacTable::default());
        let add = wire("group_id=1,type=all,bucket=output:1")
            .to_model()
            .unwrap();
        b.apply_groups(std::slice::from_ref(&add), 0).unwrap();
        let e = b.apply_groups(&[add], 0).unwrap_err();
        assert_eq!(group_mod_error(e.error.code).type_code(), (6, 0));
        let mut modify = wire("group_id=9,type=all,bucket=output:1");
        modify.command = GroupCommand::Modify;
        let e = b
            .apply_groups(&[modify.to_model().unwrap()], 0)
            .unwrap_err();
        assert_eq!(e.error.code, GroupModFailed::UnknownGroup);
        assert_eq!(group_mod_error(e.error.code).type_code(), (6, 8));
        let mut bad = wire("group_id=2,type=all,bucket=output:1");
        bad.group_type = GroupType::Indirect;
        bad.buckets.push(bad.buckets[0].clone());
        let e = b.apply_groups(&[bad.to_model().unwrap()], 0).unwrap_err();
        assert_eq!(group_mod_error(e.error.code).type_code(), (6, 1));
        let lp = wire("group_id=1,type=all,bucket=group:1");
        let mut lp = lp;
        lp.command = GroupCommand::Modify;
        let e = b.apply_groups(&[lp.to_model().unwrap()], 0).unwrap_err();
        assert_eq!(group_mod_error(e.error.code).type_code(), (6, 7));
        let watch = wire("group_id=3,type=ff,bucket=watch_port:1,output:1");
        let mut watch = watch;
        watch.group_type = GroupType::All;
        let e = b.apply_groups(&[watch.to_model().unwrap()], 0).unwrap_err();
        assert_eq!(group_mod_error(e.error.code).type_code(), (6, 6));
    }

    #[test]
    fn replies_come_from_the_model() {
        let b = Bridge::new(Vec::new(), openflow::normal::MacTable::default());
        let mods = [
            "group_id=1,type=select,bucket=output:1,bucket=output:2",
            "group_id=2,type=indirect,bucket=output:3",
        ]
        .map(|t| parse_group_mod(t, GroupModCommand::Add).unwrap());
        b.apply_groups(&mods, 1_000).unwrap();
        b.add_flows_text("actions=group:1\n", 0).unwrap();
        let rules = b.rules().snapshot();
        let descs = group_descs(&rules).unwrap();
        assert_eq!(descs.len(), 2);
        assert_eq!(descs[0].buckets[0].weight, 1);
        assert_eq!(descs[0].buckets[0].watch_port, OFPP_ANY);
        let stats = group_stats(&rules, OFPG_ALL, 2_500_001_000);
        assert_eq!(stats.len(), 2);
        assert_eq!(
            (
                stats[0].ref_count,
                stats[0].duration_sec,
                stats[0].duration_nsec
            ),
            (1, 2, 500_000_000)
        );
        assert_eq!(stats[0].buckets, vec![(0, 0), (0, 0)]);
        assert_eq!(group_stats(&rules, 2, 0).len(), 1);
        assert!(group_stats(&rules, 7, 0).is_empty());
        let mut out = Vec::new();
        stats[0].encode(&mut out);
        assert_eq!(out.len(), 40 + 32);
        let back = GroupStats::decode(&mut Reader::new(&out, E::BadRequestLen, "t")).unwrap();
        assert_eq!(back, stats[0]);
        let f = group_features();
        assert_eq!((f.types, f.capabilities), (0xf, 7));
        assert_eq!(f.actions[0] & (1 << 22), 1 << 22);
    }
}
