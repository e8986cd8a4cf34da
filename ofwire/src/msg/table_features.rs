//! TABLE_FEATURES (OpenFlow 1.3.5 section 7.3.5.5): `ofp_table_features` with its properties,
//! and [`describe`], the features of a vecswitch table: the instructions, actions and fields
//! the FLOW_MOD decoder accepts, told the way the spec lists them.

use openflow::Field;
use pipeline::field::Write;

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};
use crate::oxm::{oxm_header, preferred_nxm};

/// Property types (`OFPTFPT_*`).
pub mod prop {
    pub const INSTRUCTIONS: u16 = 0;
    pub const NEXT_TABLES: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 4;
    pub const APPLY_ACTIONS: u16 = 6;
    pub const MATCH: u16 = 8;
    pub const WILDCARDS: u16 = 10;
    pub const WRITE_SETFIELD: u16 = 12;
    pub const APPLY_SETFIELD: u16 = 14;
}

/// Bytes of `ofp_table_features` before its properties.
const HEAD_LEN: usize = 64;

/// One property, its payload as the wire has it (without padding).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableFeatureProp {
    pub prop_type: u16,
    pub payload: Vec<u8>,
}

/// `ofp_table_features`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableFeatures {
    pub table_id: u8,
    pub name: String,
    pub metadata_match: u64,
    pub metadata_write: u64,
    pub config: u32,
    pub max_entries: u32,
    pub properties: Vec<TableFeatureProp>,
}

impl TableFeatures {
    pub fn decode(r: &mut Reader) -> Result<TableFeatures, OfpError> {
        let len = usize::from(r.u16()?);
        if len < HEAD_LEN || len % 8 != 0 {
            return err(E::TableFeaturesBadLen, "table_features.length");
        }
        let mut b = Reader::new(r.bytes(len - 2)?, E::TableFeaturesBadLen, "table_features");
        let table_id = b.u8()?;
        b.skip(5)?;
        let name = b.string(32)?;
        let metadata_match = b.u64()?;
        let metadata_write = b.u64()?;
        let config = b.u32()?;
        let max_entries = b.u32()?;
        let mut properties = Vec::new();
        while !b.is_empty() {
            let prop_type = b.u16()?;
            let plen = usize::from(b.u16()?);
            if plen < 4 {
                return err(E::TableFeaturesBadLen, "table_feature_prop.length");
            }
            let payload = b.bytes(plen - 4)?.to_vec();
            b.skip((plen.div_ceil(8) * 8 - plen).min(b.remaining()))?;
            properties.push(TableFeatureProp { prop_type, payload });
        }
        Ok(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(5);
        out.put_string(&self.name, 32);
        out.put_u64(self.metadata_match);
        out.put_u64(self.metadata_write);
        out.put_u32(self.config);
        out.put_u32(self.max_entries);
        for p in &self.properties {
            let len = 4 + p.payload.len();
            out.put_u16(p.prop_type);
            out.put_u16(len as u16);
            out.extend_from_slice(&p.payload);
            out.put_zeros(len.div_ceil(8) * 8 - len);
        }
        let len = out.len() - start;
        out.set_u16(start, len as u16);
    }
}

/// Instruction types (`OFPIT_*`) and action types (`OFPAT_*`) the decoder accepts.
const INSTRUCTIONS: [u16; 5] = [
    1, /* goto */
    2, /* write-metadata */
    3, /* write-actions */
    4, /* apply */
    5, /* clear-actions */
];
const ACTIONS: [u16; 6] = [
    0,  /* output */
    17, /* push_vlan */
    18, /* pop_vlan */
    23, /* set_nw_ttl */
    24, /* dec_nw_ttl */
    25, /* set_field */
];

fn ids(list: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    for t in list {
        v.put_u16(*t);
        v.put_u16(4);
    }
    v
}

/// The OXM headers of every field with an OXM or NXM number that `keep` selects.
fn oxms(keep: impl Fn(Field) -> bool, with_mask: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for f in Field::all().filter(|f| keep(*f)) {
        if let Some(nxm) = preferred_nxm(f) {
            let masked = with_mask && f.def().maskable;
            v.put_u32(oxm_header(f, &nxm, masked));
        }
    }
    v
}

/// The features of table `table_id` of `n_tables`: goto-table to any later table,
/// write-metadata, apply-actions with output, VLAN push/pop, TTL and set_field (to every
/// writable field), write-actions and clear-actions with the same actions and fields; every
/// field matchable (with a mask where it is maskable) and wildcardable.
pub fn describe(table_id: u8, n_tables: u8) -> TableFeatures {
    let last = table_id.saturating_add(1) >= n_tables;
    let instructions: Vec<u16> = INSTRUCTIONS
        .iter()
        .copied()
        .filter(|t| *t != 1 || !last)
        .collect();
    let next: Vec<u8> = (table_id.saturating_add(1)..n_tables).collect();
    let p = |prop_type: u16, payload: Vec<u8>| TableFeatureProp { prop_type, payload };
    TableFeatures {
        table_id,
        name: String::new(),
        metadata_match: u64::MAX,
        metadata_write: u64::MAX,
        config: 0,
        max_entries: u32::MAX,
        properties: vec![
            p(prop::INSTRUCTIONS, ids(&instructions)),
            p(prop::NEXT_TABLES, next),
            p(prop::WRITE_ACTIONS, ids(&ACTIONS)),
            p(prop::APPLY_ACTIONS, ids(&ACTIONS)),
            p(prop::MATCH, oxms(|_| true, true)),
            p(prop::WILDCARDS, oxms(|_| true, false)),
            p(
                prop::WRITE_SETFIELD,
                oxms(|f| f.def().write != Write::No, false),
            ),
            p(
                prop::APPLY_SETFIELD,
                oxms(|f| f.def().write != Write::No, false),
            ),
        ],
    }
}
