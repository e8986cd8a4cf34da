//! METER_MOD, and the meter entries of the METER and METER_CONFIG multipart replies.
//! vecswitch's datapath has no meters, so a switch answers as Open vSwitch does for a datapath
//! without meter support (`ofproto.c`'s `handle_meter_mod` with `max_meters` 0): a delete is
//! a no-op, an add or modify is refused `OFPMMFC_INVALID_METER` ([`MeterMod::without_meters`]),
//! and so is a FLOW_MOD's meter instruction (both through [`no_meter`]). The decoder refuses
//! what OVS's `ofputil_decode_meter_mod` refuses, with the same codes.

use crate::buf::{Put, Reader};
use crate::error::{err, ErrorCode as E, OfpError};

/// `OFPM_ALL`: every meter (delete, stats and config requests).
pub const OFPM_ALL: u32 = 0xffff_ffff;
/// `OFPMF_KBPS` / `OFPMF_PKTPS`: the rate unit (one of them, not both).
pub const OFPMF_KBPS: u16 = 1;
pub const OFPMF_PKTPS: u16 = 2;
/// `OFPMBT_DROP` / `OFPMBT_DSCP_REMARK`.
pub const OFPMBT_DROP: u16 = 1;
pub const OFPMBT_DSCP_REMARK: u16 = 2;
/// Every band type of OpenFlow 1.3 is 16 bytes long.
const BAND_LEN: usize = 16;

/// `ofp_meter_mod_command`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MeterModCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
}

/// One band of a meter: drop or DSCP remark above `rate`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MeterBand {
    pub band_type: u16,
    pub rate: u32,
    pub burst_size: u32,
    /// DSCP remark only: how many drop-precedence levels to add.
    pub prec_level: u8,
}

impl MeterBand {
    fn decode(r: &mut Reader) -> Result<MeterBand, OfpError> {
        let band_type = r.u16()?;
        if usize::from(r.u16()?) != BAND_LEN {
            return err(E::BadRequestLen, "meter_band.len");
        }
        if band_type != OFPMBT_DROP && band_type != OFPMBT_DSCP_REMARK {
            return err(E::MeterModBadBand, "meter_band.type");
        }
        let rate = r.u32()?;
        let burst_size = r.u32()?;
        let prec_level = r.u8()?;
        r.skip(3)?;
        Ok(MeterBand {
            band_type,
            rate,
            burst_size,
            prec_level: if band_type == OFPMBT_DSCP_REMARK {
                prec_level
            } else {
                0
            },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.band_type);
        out.put_u16(BAND_LEN as u16);
        out.put_u32(self.rate);
        out.put_u32(self.burst_size);
        out.put_u8(self.prec_level);
        out.put_zeros(3);
    }
}

/// Bands filling `r`.
fn decode_bands(mut r: Reader) -> Result<Vec<MeterBand>, OfpError> {
    if !r.remaining().is_multiple_of(BAND_LEN) {
        return err(E::BadRequestLen, "meter_band.len");
    }
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(MeterBand::decode(&mut r)?);
    }
    Ok(v)
}

/// METER_MOD.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MeterMod {
    pub command: MeterModCommand,
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    /// As OVS: the command first (`OFPMMFC_BAD_COMMAND`); a delete's flags and bands are not
    /// read; an add or modify with both rate units is `OFPMMFC_BAD_FLAGS`, a band of another
    /// type `OFPMMFC_BAD_BAND`, a band not 16 bytes long `OFPBRC_BAD_LEN`.
    pub fn decode(mut r: Reader) -> Result<MeterMod, OfpError> {
        let command = match r.u16()? {
            0 => MeterModCommand::Add,
            1 => MeterModCommand::Modify,
            2 => MeterModCommand::Delete,
            _ => return err(E::MeterModBadCommand, "meter_mod.command"),
        };
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        if command == MeterModCommand::Delete {
            return Ok(MeterMod {
                command,
                flags: 0,
                meter_id,
                bands: Vec::new(),
            });
        }
        if flags & OFPMF_KBPS != 0 && flags & OFPMF_PKTPS != 0 {
            return err(E::MeterModBadFlags, "meter_mod.flags");
        }
        let bands = decode_bands(Reader::new(r.rest(), E::BadRequestLen, "meter_band"))?;
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command as u16);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        for b in &self.bands {
            b.encode(out);
        }
    }

    /// What a switch without meters does with this request: a delete (of one meter or of
    /// `OFPM_ALL`) deletes nothing and succeeds; an add or modify names a meter the switch
    /// cannot have (`OFPMMFC_INVALID_METER`).
    pub fn without_meters(&self) -> Result<(), OfpError> {
        match self.command {
            MeterModCommand::Delete => Ok(()),
            MeterModCommand::Add | MeterModCommand::Modify => no_meter("meter_mod"),
        }
    }
}

/// The refusal of whatever names a meter, a METER_MOD add or modify or a FLOW_MOD's meter
/// instruction: the switch has none, so no meter can exist (`OFPMMFC_INVALID_METER`, as
/// Open vSwitch answers without meter support). `field` is what named it.
pub(crate) fn no_meter<T>(field: &'static str) -> Result<T, OfpError> {
    err(E::MeterModInvalidMeter, field)
}

/// The METER_FEATURES reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MeterFeatures {
    pub max_meter: u32,
    /// Bit N: band type N supported.
    pub band_types: u32,
    /// `OFPMF_*` flags supported.
    pub capabilities: u32,
    pub max_bands: u8,
    pub max_color: u8,
}

impl MeterFeatures {
    pub(crate) fn decode(r: &mut Reader) -> Result<MeterFeatures, OfpError> {
        let f = MeterFeatures {
            max_meter: r.u32()?,
            band_types: r.u32()?,
            capabilities: r.u32()?,
            max_bands: r.u8()?,
            max_color: r.u8()?,
        };
        r.skip(2)?;
        Ok(f)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.max_meter);
        out.put_u32(self.band_types);
        out.put_u32(self.capabilities);
        out.put_u8(self.max_bands);
        out.put_u8(self.max_color);
        out.put_zeros(2);
    }
}

/// One meter of the METER_CONFIG reply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MeterConfig {
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterConfig {
    pub(crate) fn decode(r: &mut Reader) -> Result<MeterConfig, OfpError> {
        let len = usize::from(r.u16()?);
        if len < 8 {
            return err(E::BadRequestLen, "meter_config.length");
        }
        let mut b = Reader::new(r.bytes(len - 2)?, E::BadRequestLen, "meter_config.length");
        let flags = b.u16()?;
        let meter_id = b.u32()?;
        Ok(MeterConfig {
            flags,
            meter_id,
            bands: decode_bands(b)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16((8 + BAND_LEN * self.bands.len()) as u16);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id);
        self.bands.iter().for_each(|b| b.encode(out));
    }
}

/// One meter of the METER (statistics) reply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MeterStats {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// Per band: packets and bytes.
    pub band_stats: Vec<(u64, u64)>,
}

impl MeterStats {
    pub(crate) fn decode(r: &mut Reader) -> Result<MeterStats, OfpError> {
        let meter_id = r.u32()?;
        let len = usize::from(r.u16()?);
        if len < 40 || !(len - 40).is_multiple_of(16) {
            return err(E::BadRequestLen, "meter_stats.len");
        }
        r.skip(6)?;
        let mut s = MeterStats {
            meter_id,
            flow_count: r.u32()?,
            packet_in_count: r.u64()?,
            byte_in_count: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            band_stats: Vec::new(),
        };
        for _ in 0..(len - 40) / 16 {
            s.band_stats.push((r.u64()?, r.u64()?));
        }
        Ok(s)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.meter_id);
        out.put_u16((40 + 16 * self.band_stats.len()) as u16);
        out.put_zeros(6);
        out.put_u32(self.flow_count);
        out.put_u64(self.packet_in_count);
        out.put_u64(self.byte_in_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for (p, b) in &self.band_stats {
            out.put_u64(*p);
            out.put_u64(*b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(b: &[u8]) -> Result<MeterMod, OfpError> {
        MeterMod::decode(Reader::new(b, E::BadRequestLen, "body"))
    }

    /// The METER_MOD body Faucet sends for `meters: {lossy: {meter_id: 1, entry: {flags:
    /// KBPS, bands: [{type: DROP, rate: 1000}]}}}` (captured from Faucet 1.10.12).
    const FAUCET_ADD: [u8; 24] = [
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // add, KBPS, meter 1
        0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x03, 0xe8, // drop, len 16, rate 1000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // burst 0, pad
    ];

    #[test]
    fn faucets_meter_add_decodes_round_trips_and_is_refused_invalid_meter() {
        let mm = decode(&FAUCET_ADD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            mm,
            MeterMod {
                command: MeterModCommand::Add,
                flags: OFPMF_KBPS,
                meter_id: 1,
                bands: vec![MeterBand {
                    band_type: OFPMBT_DROP,
                    rate: 1000,
                    burst_size: 0,
                    prec_level: 0,
                }],
            }
        );
        let mut out = Vec::new();
        mm.encode(&mut out);
        assert_eq!(out, FAUCET_ADD);
        assert_eq!(
            mm.without_meters().map_err(|e| e.code.type_code()),
            Err((12, 2))
        );
        let modify = MeterMod {
            command: MeterModCommand::Modify,
            ..mm
        };
        assert_eq!(
            modify.without_meters().map_err(|e| e.code),
            Err(E::MeterModInvalidMeter)
        );
    }

    #[test]
    fn a_delete_of_all_meters_succeeds_without_reading_flags_or_bands() {
        // Faucet's cold start: delete OFPM_ALL (flags and a band that would be refused in an
        // add are not read, as in OVS).
        let mut b = vec![0x00, 0x02, 0x00, 0x03, 0xff, 0xff, 0xff, 0xff];
        b.extend_from_slice(&[0x00, 0x09, 0x00, 0x04]);
        let mm = decode(&b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mm.command, MeterModCommand::Delete);
        assert_eq!(mm.meter_id, OFPM_ALL);
        assert_eq!(mm.without_meters(), Ok(()));
    }

    #[test]
    fn bad_meter_mods_are_refused_with_ovss_codes() {
        let code = |b: &[u8]| decode(b).map_err(|e| e.code);
        // Command 3.
        let mut b = FAUCET_ADD;
        b[1] = 3;
        assert_eq!(code(&b), Err(E::MeterModBadCommand));
        // KBPS and PKTPS.
        let mut b = FAUCET_ADD;
        b[3] = 3;
        assert_eq!(code(&b), Err(E::MeterModBadFlags));
        // Band type 5, and the experimenter band (0xffff).
        for t in [5u8, 0xff] {
            let mut b = FAUCET_ADD;
            b[8] = t;
            b[9] = t;
            assert_eq!(code(&b), Err(E::MeterModBadBand), "type {t}");
        }
        // A band of length 24; a truncated band; a truncated header.
        let mut b = FAUCET_ADD;
        b[11] = 24;
        assert_eq!(code(&b), Err(E::BadRequestLen));
        assert_eq!(code(&FAUCET_ADD[..20]), Err(E::BadRequestLen));
        assert_eq!(code(&FAUCET_ADD[..6]), Err(E::BadRequestLen));
        // A DSCP remark band keeps its precedence level; a drop band's pad is not read as one.
        let mut b = FAUCET_ADD;
        b[9] = 2;
        b[20] = 3;
        assert_eq!(decode(&b).map(|m| m.bands[0].prec_level), Ok(3));
        b[9] = 1;
        assert_eq!(decode(&b).map(|m| m.bands[0].prec_level), Ok(0));
    }

    #[test]
    fn meter_entries_round_trip() {
        let band = MeterBand {
            band_type: OFPMBT_DSCP_REMARK,
            rate: 5,
            burst_size: 6,
            prec_level: 1,
        };
        let cfg = MeterConfig {
            flags: OFPMF_PKTPS,
            meter_id: 7,
            bands: vec![band, band],
        };
        let mut out = Vec::new();
        cfg.encode(&mut out);
        assert_eq!(out.len(), 40);
        let mut r = Reader::new(&out, E::BadRequestLen, "x");
        assert_eq!(MeterConfig::decode(&mut r), Ok(cfg));
        let stats = MeterStats {
            meter_id: 7,
            flow_count: 2,
            packet_in_count: 3,
            byte_in_count: 4,
            duration_sec: 5,
            duration_nsec: 6,
            band_stats: vec![(8, 9)],
        };
        let mut out = Vec::new();
        stats.encode(&mut out);
        assert_eq!(out.len(), 56);
        let mut r = Reader::new(&out, E::BadRequestLen, "x");
        assert_eq!(MeterStats::decode(&mut r), Ok(stats));
        let f = MeterFeatures {
            max_meter: 1,
            band_types: 2,
            capabilities: 3,
            max_bands: 4,
            max_color: 5,
        };
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out.len(), 16);
        let mut r = Reader::new(&out, E::BadRequestLen, "x");
        assert_eq!(MeterFeatures::decode(&mut r), Ok(f));
    }

    #[test]
    fn a_meter_instruction_is_refused_as_a_meter_add_is() {
        use crate::action::{to_actions, Instruction};
        let add = decode(&FAUCET_ADD).unwrap_or_else(|e| panic!("{e}"));
        let from_meter_mod = add.without_meters().map_err(|e| (e.code, e.field));
        let from_flow_mod = to_actions(&[Instruction::Meter(1)], 0).map_err(|e| (e.code, e.field));
        assert_eq!(from_meter_mod, Err((E::MeterModInvalidMeter, "meter_mod")));
        assert_eq!(
            from_flow_mod,
            Err((E::MeterModInvalidMeter, "instruction.meter"))
        );
    }
}
