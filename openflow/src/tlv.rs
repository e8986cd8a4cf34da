//! Geneve TLV maps, as Open vSwitch's (`ovs-ofctl add-tlv-map BR
//! "{class=0xffff,type=0,len=4}->tun_metadata0"`): which Geneve option (class, type, length)
//! each `tun_metadataN` field stands for. A translation decodes the packet's options into the
//! fields ([`TlvMap::decode`]); a tunnel output encodes the fields set back into options
//! ([`TlvMap::encode`]); the `tunnel-decap` node knows the critical options a map names.
//!
//! Option data here is at most 16 bytes (the fields are 128 bits wide; OVS allows 124). A
//! packet's options take up to 252 bytes, as on the wire (those past the key's 32 in
//! `tunnels::OptionStore`).

use std::fmt::Write as _;

use pipeline::field::N_TUN_METADATA;
use smallvec::SmallVec;

/// Longest option data a field holds, in bytes.
pub const MAX_OPTION_LEN: u8 = 16;

/// Most option data a map's fields take together, in bytes (OVS's
/// `TUN_METADATA_TOT_OPT_SIZE`).
pub const MAX_OPTION_SPACE: usize = 256;

/// One mapping: option (class, type, len) ↔ `tun_metadata{index}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvEntry {
    pub class: u16,
    /// The whole type byte (its top bit is the critical bit).
    pub ty: u8,
    /// Data length in bytes: a multiple of 4, 4..=16.
    pub len: u8,
    pub index: u8,
}

/// The `tun_metadataN` values of a flow: bit N of `present` says option N was there (or was
/// set); its data, as a big-endian number, is [`TunMetadata::get`]`(N)`.
///
/// Only the present fields hold a value (in index order, two inline), so that a flow's
/// fields, and the value and mask of every rule's match, stay small: a flat array of the 64
/// made each rule's match 2.5 KB, and installing rules and translating packets 2–4 times
/// slower (BENCHMARKS.md, "Speed targets").
#[derive(Clone, PartialEq, Eq, Debug, Default, Hash)]
pub struct TunMetadata {
    pub present: u64,
    /// One per bit of `present`, lowest index first.
    values: SmallVec<[u128; 2]>,
}

impl TunMetadata {
    /// Where field `i`'s value is (or goes) in `values`.
    fn rank(&self, i: u8) -> usize {
        let below = if i >= 64 { u64::MAX } else { (1u64 << i) - 1 };
        (self.present & below).count_ones() as usize
    }

    /// The value of field `i`; 0 when it is not present.
    pub fn get(&self, i: u8) -> u128 {
        if i >= 64 || self.present & (1 << i) == 0 {
            return 0;
        }
        self.values.get(self.rank(i)).copied().unwrap_or(0)
    }

    /// Sets field `i` to `v` and makes it present (an index past 63 is ignored).
    pub fn set(&mut self, i: u8, v: u128) {
        if i >= 64 {
            return;
        }
        let at = self.rank(i);
        if self.present & (1 << i) != 0 {
            if let Some(x) = self.values.get_mut(at) {
                *x = v;
            }
        } else {
            self.values.insert(at.min(self.values.len()), v);
            self.present |= 1 << i;
        }
    }

    /// The present fields as `(index, value)`, lowest index first.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u128)> + '_ {
        (0..64u8)
            .filter(move |&i| self.present & (1 << i) != 0)
            .zip(self.values.iter().copied())
    }

    /// The fields present in both, each `self & mask`.
    pub fn masked(&self, mask: &TunMetadata) -> TunMetadata {
        let mut out = TunMetadata::default();
        for (i, v) in self.iter() {
            if mask.present & (1 << i) != 0 {
                out.set(i, v & mask.get(i));
            }
        }
        out
    }

    /// The union of the fields, each `self | other`.
    pub fn or_assign(&mut self, other: &TunMetadata) {
        for (i, v) in other.iter() {
            let mine = self.get(i);
            self.set(i, mine | v);
        }
    }
}

/// A refused TLV map change, naming the field; the map is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("tlv-map: {0:?}: expected {{class=C,type=T,len=L}}->tun_metadataN")]
    Syntax(String),
    #[error("tlv-map: {field}: {value:?} {reason}")]
    Bad {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("tlv-map: tun_metadata{0} is mapped already")]
    IndexTaken(u8),
    #[error("tlv-map: option class={class:#x},type={ty:#x} is mapped already")]
    OptionTaken { class: u16, ty: u8 },
    #[error("tlv-map: tun_metadata{0} is not mapped")]
    NotMapped(u8),
    #[error("tlv-map: len: the map's options would take {0} bytes, more than 256")]
    NoSpace(usize),
}

/// A bridge's TLV map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlvMap {
    entries: Vec<TlvEntry>,
}

impl TlvMap {
    pub fn entries(&self) -> &[TlvEntry] {
        &self.entries
    }

    /// Adds the mappings of `text` (all or none): an index or an option mapped twice, in the
    /// map or in `text`, is refused.
    pub fn add(&mut self, text: &str) -> Result<(), TlvError> {
        let mut next = self.clone();
        for e in parse(text)? {
            if next.entries.iter().any(|x| x.index == e.index) {
                return Err(TlvError::IndexTaken(e.index));
            }
            if next
                .entries
                .iter()
                .any(|x| x.class == e.class && x.ty == e.ty)
            {
                return Err(TlvError::OptionTaken {
                    class: e.class,
                    ty: e.ty,
                });
            }
            next.entries.push(e);
        }
        let space = next.space();
        if space > MAX_OPTION_SPACE {
            return Err(TlvError::NoSpace(space));
        }
        next.entries.sort_by_key(|e| e.index);
        *self = next;
        Ok(())
    }

    /// Removes the mappings of `text` (each must be there, as given), or all without `text`.
    pub fn del(&mut self, text: Option<&str>) -> Result<(), TlvError> {
        let Some(text) = text else {
            self.entries.clear();
            return Ok(());
        };
        let mut next = self.clone();
        for e in parse(text)? {
            let at = next
                .entries
                .iter()
                .position(|x| *x == e)
                .ok_or(TlvError::NotMapped(e.index))?;
            next.entries.remove(at);
        }
        *self = next;
        Ok(())
    }

    /// The options a map names, `(class, type)`, for the critical-option check.
    pub fn known(&self) -> impl Iterator<Item = (u16, u8)> + '_ {
        self.entries.iter().map(|e| (e.class, e.ty))
    }

    /// The fields of the Geneve `options` (as on the wire) that the map names with their
    /// length.
    pub fn decode(&self, options: &[u8]) -> TunMetadata {
        let mut md = TunMetadata::default();
        if self.entries.is_empty() {
            return md;
        }
        let mut rest = options;
        while let [c0, c1, ty, len, tail @ ..] = rest {
            let data_len = usize::from(len & 0x1f) * 4;
            let Some(data) = tail.get(..data_len) else {
                break;
            };
            let class = u16::from_be_bytes([*c0, *c1]);
            let found = self
                .entries
                .iter()
                .find(|e| e.class == class && e.ty == *ty && usize::from(e.len) == data_len);
            if let Some(e) = found {
                md.set(
                    e.index,
                    data.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b)),
                );
            }
            rest = tail.get(data_len..).unwrap_or_default();
        }
        md
    }

    /// The Geneve options for the fields present in `md`, in index order; `None` when none
    /// is.
    pub fn encode(&self, md: &TunMetadata) -> Option<Vec<u8>> {
        if md.present == 0 {
            return None;
        }
        let mut out = Vec::new();
        for e in &self.entries {
            if md.present & (1 << e.index) == 0 {
                continue;
            }
            out.extend_from_slice(&e.class.to_be_bytes());
            out.push(e.ty);
            out.push(e.len / 4);
            let v = md.get(e.index).to_be_bytes();
            out.extend_from_slice(&v[16 - usize::from(e.len)..]);
        }
        Some(out)
    }

    /// Bytes of option data the map's fields take.
    fn space(&self) -> usize {
        self.entries.iter().map(|e| usize::from(e.len)).sum()
    }

    /// `dump-tlv-map`, as `ovs-ofctl dump-tlv-map` prints it.
    pub fn dump_text(&self) -> String {
        let space = self.space();
        let mut s = format!(
            " max option space={MAX_OPTION_SPACE} max fields={N_TUN_METADATA}\n \
             allocated option space={space}\n\n mapping table:\n  class  type  length  \
             match field\n ------  ----  ------  --------------\n"
        );
        for e in &self.entries {
            let _ = writeln!(
                s,
                " {:#6x}  {:>4}  {:>6}  tun_metadata{}",
                e.class,
                if e.ty < 10 {
                    e.ty.to_string()
                } else {
                    format!("{:#x}", e.ty)
                },
                e.len,
                e.index
            );
        }
        s
    }
}

/// Parses `{class=C,type=T,len=L}->tun_metadataN[,...]`.
fn parse(text: &str) -> Result<Vec<TlvEntry>, TlvError> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let syntax = || TlvError::Syntax(rest.to_string());
        let body = rest.strip_prefix('{').ok_or_else(syntax)?;
        let (fields, after) = body.split_once('}').ok_or_else(syntax)?;
        let after = after.trim_start().strip_prefix("->").ok_or_else(syntax)?;
        let (target, next) = after.split_once(',').unwrap_or((after, ""));
        let (mut class, mut ty, mut len) = (None, None, None);
        for kv in fields.split(',') {
            let (k, v) = kv.split_once('=').ok_or_else(syntax)?;
            let (k, v) = (k.trim(), v.trim());
            match k {
                "class" => class = Some(number(v, "class", 0xffff)? as u16),
                "type" => ty = Some(number(v, "type", 0xff)? as u8),
                "len" => len = Some(number(v, "len", 0xff)? as u8),
                _ => return Err(syntax()),
            }
        }
        let (Some(class), Some(ty), Some(len)) = (class, ty, len) else {
            return Err(syntax());
        };
        if len == 0 || len % 4 != 0 || len > MAX_OPTION_LEN {
            return Err(TlvError::Bad {
                field: "len",
                value: len.to_string(),
                reason: "must be 4, 8, 12 or 16 (bytes)",
            });
        }
        let target = target.trim();
        let index = target
            .strip_prefix("tun_metadata")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|&n| usize::from(n) < N_TUN_METADATA)
            .ok_or_else(|| TlvError::Bad {
                field: "field",
                value: target.to_string(),
                reason: "is not tun_metadata0..63",
            })?;
        out.push(TlvEntry {
            class,
            ty,
            len,
            index,
        });
        rest = next.trim();
    }
    if out.is_empty() {
        return Err(TlvError::Syntax(text.to_string()));
    }
    Ok(out)
}

fn number(v: &str, field: &'static str, max: u32) -> Result<u32, TlvError> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    };
    n.filter(|&n| n <= max).ok_or_else(|| TlvError::Bad {
        field,
        value: v.to_string(),
        reason: "is not a number in range",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVN: &str = "{class=0x102,type=0x80,len=4}->tun_metadata0";

    #[test]
    fn add_del_and_dump_as_ovs_ofctl() {
        let mut m = TlvMap::default();
        m.add(OVN).unwrap();
        m.add("{class=0xffff,type=0,len=8}->tun_metadata5").unwrap();
        assert_eq!(m.entries().len(), 2);
        let dump = m.dump_text();
        assert!(
            dump.contains(" 0x102  0x80       4  tun_metadata0"),
            "{dump}"
        );
        assert!(
            dump.contains(" 0xffff     0       8  tun_metadata5"),
            "{dump}"
        );
        assert!(dump.contains("allocated option space=12"), "{dump}");
        assert_eq!(m.add(OVN), Err(TlvError::IndexTaken(0)));
        assert_eq!(
            m.add("{class=0x102,type=0x80,len=4}->tun_metadata1"),
            Err(TlvError::OptionTaken {
                class: 0x102,
                ty: 0x80
            })
        );
        m.del(Some(OVN)).unwrap();
        assert_eq!(m.del(Some(OVN)), Err(TlvError::NotMapped(0)));
        m.del(None).unwrap();
        assert!(m.entries().is_empty());
    }

    #[test]
    fn bad_maps_name_the_field_and_change_nothing() {
        let mut m = TlvMap::default();
        m.add(OVN).unwrap();
        let before = m.clone();
        for (text, what) in [
            ("{class=0x1,type=0,len=6}->tun_metadata1", "len"),
            ("{class=0x1,type=0,len=20}->tun_metadata1", "len"),
            ("{class=0x1,type=0,len=4}->tun_metadata64", "field"),
            ("{class=0x10000,type=0,len=4}->tun_metadata1", "class"),
            ("{class=0x1,type=0,len=4}->reg0", "field"),
            ("class=0x1,type=0,len=4->tun_metadata1", "expected"),
            ("{class=0x1,len=4}->tun_metadata1", "expected"),
            // The second mapping is bad: the first is not added either.
            (
                "{class=0x1,type=0,len=4}->tun_metadata1,{class=0x1,type=1,len=3}->tun_metadata2",
                "len",
            ),
        ] {
            let e = m.add(text).unwrap_err().to_string();
            assert!(e.contains(what), "{text}: {e}");
            assert_eq!(m, before);
        }
        // 16 fields of 16 bytes fill the 256 bytes: one more byte is refused whole.
        let full: Vec<String> = (1..16)
            .map(|i| format!("{{class=0x2,type={i},len=16}}->tun_metadata{i}"))
            .collect();
        m.add(&full.join(",")).unwrap();
        assert!(m.dump_text().contains("allocated option space=244"));
        let before = m.clone();
        let e = m.add("{class=0x2,type=20,len=16}->tun_metadata20");
        assert_eq!(e, Err(TlvError::NoSpace(260)));
        assert_eq!(m, before);
        m.add("{class=0x2,type=20,len=12}->tun_metadata20").unwrap();
    }

    #[test]
    fn options_decode_into_fields_and_encode_back() {
        let mut m = TlvMap::default();
        m.add(OVN).unwrap();
        m.add("{class=0xffff,type=3,len=8}->tun_metadata2").unwrap();
        // An option the map does not name (class 0x5), then ours.
        let opts: Vec<u8> = [
            &[0x00, 0x05, 0x01, 0x01, 9, 9, 9, 9][..],
            &[0x01, 0x02, 0x80, 0x01, 0, 0, 0x12, 0x34],
            &[0xff, 0xff, 0x03, 0x02, 1, 2, 3, 4, 5, 6, 7, 8],
        ]
        .concat();
        let md = m.decode(&opts);
        assert_eq!(md.present, 0b101);
        assert_eq!(md.get(0), 0x1234);
        assert_eq!(md.get(2), 0x0102_0304_0506_0708);
        assert_eq!((md.get(1), md.get(63), md.get(64)), (0, 0, 0));
        // Encoded in index order; the unnamed option is not carried.
        let out = m.encode(&md).unwrap();
        assert_eq!(out, opts[8..].to_vec());
        assert_eq!(m.encode(&TunMetadata::default()), None);
        // A length other than the map's is not that field.
        let mut opts = opts;
        opts[11] = 0x02;
        assert_eq!(m.decode(&opts).present & 1, 0);
    }
}
