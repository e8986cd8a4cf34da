//! Refusals: each names the ERROR type and code OpenFlow 1.3.5 gives for it (section 7.4.4)
//! and the field that was wrong, so the connection layer can answer with an ERROR message.

use std::fmt;

/// One ERROR type/code pair of OpenFlow 1.3.5 (`OFPET_*` / `OFP*C_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorCode {
    HelloIncompatible,
    HelloEperm,
    BadRequestVersion,
    BadRequestType,
    BadRequestMultipart,
    BadRequestExperimenter,
    BadRequestExpType,
    BadRequestEperm,
    BadRequestLen,
    BadRequestBufferUnknown,
    BadRequestTableId,
    BadRequestPort,
    BadRequestIsSlave,
    BadActionType,
    BadActionLen,
    BadActionExperimenter,
    BadActionOutPort,
    BadActionArgument,
    BadActionOutGroup,
    BadActionSetType,
    BadActionSetLen,
    BadActionSetArgument,
    BadActionMatchInconsistent,
    BadInstructionUnknown,
    BadInstructionUnsupported,
    BadInstructionTableId,
    BadInstructionLen,
    BadMatchType,
    BadMatchLen,
    BadMatchField,
    BadMatchValue,
    BadMatchMask,
    BadMatchPrereq,
    BadMatchDupField,
    FlowModUnknown,
    FlowModTableFull,
    FlowModBadTableId,
    FlowModOverlap,
    FlowModBadCommand,
    FlowModBadFlags,
    /// OpenFlow 1.0's emergency flow cache, which vecswitch does not have; 1.3 has no such
    /// flag, so the error is only ever sent in 1.0.
    FlowModBadEmergTimeout,
    GroupModGroupExists,
    GroupModInvalidGroup,
    GroupModWatchUnsupported,
    GroupModLoop,
    GroupModUnknownGroup,
    GroupModBadType,
    GroupModBadCommand,
    GroupModBadBucket,
    GroupModBadWatch,
    MeterModInvalidMeter,
    MeterModUnknownMeter,
    MeterModBadCommand,
    MeterModBadFlags,
    MeterModBadBand,
    PortModBadPort,
    PortModBadHwAddr,
    PortModBadConfig,
    PortModEperm,
    SwitchConfigBadFlags,
    RoleRequestStale,
    TableFeaturesBadTable,
    TableFeaturesBadLen,
    TableFeaturesEperm,
    RoleRequestBadRole,
    // OFPET_BUNDLE_FAILED of OpenFlow 1.4, sent in 1.3 as the ONF's experimenter errors.
    BundleUnknown,
    BundleEperm,
    BundleBadId,
    BundleExist,
    BundleClosed,
    BundleOutOfBundles,
    BundleBadType,
    BundleBadFlags,
    BundleMsgBadLen,
    BundleMsgBadXid,
    BundleMsgUnsup,
    BundleMsgConflict,
    BundleMsgTooMany,
    BundleMsgFailed,
    BundleTimeout,
}

impl ErrorCode {
    /// The `(type, code)` pair of the ERROR message; for an experimenter error
    /// ([`ErrorCode::experimenter`]) `OFPET_EXPERIMENTER` and the experimenter's type.
    pub fn type_code(self) -> (u16, u16) {
        use ErrorCode as E;
        match self {
            E::BundleUnknown => (OFPET_EXPERIMENTER, 2300),
            E::BundleEperm => (OFPET_EXPERIMENTER, 2301),
            E::BundleBadId => (OFPET_EXPERIMENTER, 2302),
            E::BundleExist => (OFPET_EXPERIMENTER, 2303),
            E::BundleClosed => (OFPET_EXPERIMENTER, 2304),
            E::BundleOutOfBundles => (OFPET_EXPERIMENTER, 2305),
            E::BundleBadType => (OFPET_EXPERIMENTER, 2306),
            E::BundleBadFlags => (OFPET_EXPERIMENTER, 2307),
            E::BundleMsgBadLen => (OFPET_EXPERIMENTER, 2308),
            E::BundleMsgBadXid => (OFPET_EXPERIMENTER, 2309),
            E::BundleMsgUnsup => (OFPET_EXPERIMENTER, 2310),
            E::BundleMsgConflict => (OFPET_EXPERIMENTER, 2311),
            E::BundleMsgTooMany => (OFPET_EXPERIMENTER, 2312),
            E::BundleMsgFailed => (OFPET_EXPERIMENTER, 2313),
            E::BundleTimeout => (OFPET_EXPERIMENTER, 2314),
            E::HelloIncompatible => (0, 0),
            E::HelloEperm => (0, 1),
            E::BadRequestVersion => (1, 0),
            E::BadRequestType => (1, 1),
            E::BadRequestMultipart => (1, 2),
            E::BadRequestExperimenter => (1, 3),
            E::BadRequestExpType => (1, 4),
            E::BadRequestEperm => (1, 5),
            E::BadRequestLen => (1, 6),
            E::BadRequestBufferUnknown => (1, 8),
            E::BadRequestTableId => (1, 9),
            E::BadRequestPort => (1, 11),
            E::BadRequestIsSlave => (1, 10),
            E::BadActionType => (2, 0),
            E::BadActionLen => (2, 1),
            E::BadActionExperimenter => (2, 2),
            E::BadActionOutPort => (2, 4),
            E::BadActionArgument => (2, 5),
            E::BadActionOutGroup => (2, 9),
            E::BadActionSetType => (2, 13),
            E::BadActionSetLen => (2, 14),
            E::BadActionSetArgument => (2, 15),
            E::BadActionMatchInconsistent => (2, 10),
            E::BadInstructionUnknown => (3, 0),
            E::BadInstructionUnsupported => (3, 1),
            E::BadInstructionTableId => (3, 2),
            E::BadInstructionLen => (3, 7),
            E::BadMatchType => (4, 0),
            E::BadMatchLen => (4, 1),
            E::BadMatchField => (4, 6),
            E::BadMatchValue => (4, 7),
            E::BadMatchMask => (4, 8),
            E::BadMatchPrereq => (4, 9),
            E::BadMatchDupField => (4, 10),
            E::FlowModUnknown => (5, 0),
            E::FlowModTableFull => (5, 1),
            E::FlowModBadTableId => (5, 2),
            E::FlowModOverlap => (5, 3),
            E::FlowModBadCommand => (5, 6),
            E::FlowModBadFlags => (5, 7),
            // No 1.3 code: OFPFMFC_UNKNOWN.
            E::FlowModBadEmergTimeout => (5, 0),
            E::GroupModGroupExists => (6, 0),
            E::GroupModInvalidGroup => (6, 1),
            E::GroupModWatchUnsupported => (6, 6),
            E::GroupModLoop => (6, 7),
            E::GroupModUnknownGroup => (6, 8),
            E::GroupModBadType => (6, 10),
            E::GroupModBadCommand => (6, 11),
            E::GroupModBadBucket => (6, 12),
            E::GroupModBadWatch => (6, 13),
            E::MeterModInvalidMeter => (12, 2),
            E::MeterModUnknownMeter => (12, 3),
            E::MeterModBadCommand => (12, 4),
            E::MeterModBadFlags => (12, 5),
            E::MeterModBadBand => (12, 8),
            E::PortModBadPort => (7, 0),
            E::PortModBadHwAddr => (7, 1),
            E::PortModBadConfig => (7, 2),
            E::PortModEperm => (7, 4),
            E::SwitchConfigBadFlags => (10, 0),
            E::RoleRequestStale => (11, 0),
            E::TableFeaturesBadTable => (13, 0),
            E::TableFeaturesBadLen => (13, 3),
            E::TableFeaturesEperm => (13, 5),
            E::RoleRequestBadRole => (11, 2),
        }
    }
}

/// `OFPET_EXPERIMENTER`: the ERROR's type when an experimenter defines the code.
pub const OFPET_EXPERIMENTER: u16 = 0xffff;

impl ErrorCode {
    /// The experimenter whose error this is (the ONF for bundle errors in 1.3): its id goes
    /// between the code and the data (`ofp_error_experimenter_msg`).
    pub fn experimenter(self) -> Option<u32> {
        (self.type_code().0 == OFPET_EXPERIMENTER)
            .then_some(crate::msg::bundle::ONF_EXPERIMENTER_ID)
    }
}

/// How an ERROR is written in OpenFlow 1.0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Of10Error {
    /// A type and code of the OpenFlow 1.0 spec.
    Std(u16, u16),
    /// A Nicira extension error (Open vSwitch's `NX1.0(type,code)`), sent as
    /// `NXET_VENDOR` / `NXVC_VENDOR_ERROR` with an `nx_vendor_error` before the data.
    Nicira(u16, u16),
}

/// `NXET_VENDOR`: the ERROR type of a Nicira error in OpenFlow 1.0.
pub const NXET_VENDOR: u16 = 0xb0c2;
/// The Nicira vendor id.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

impl ErrorCode {
    /// The error as OpenFlow 1.0 writes it, as Open vSwitch 3.1 does (`ofp-errors.h`): the
    /// spec's own type and code where 1.0 has one, else the Nicira code Open vSwitch gives,
    /// else `NXBRC_UNENCODABLE_ERROR` (an error 1.0 cannot say; the messages that cause
    /// them, groups, meters, bundles and roles, do not exist in 1.0).
    pub fn of10(self) -> Of10Error {
        use ErrorCode as E;
        use Of10Error::{Nicira as Nx, Std};
        match self {
            E::HelloIncompatible => Std(0, 0),
            E::HelloEperm => Std(0, 1),
            E::BadRequestVersion => Std(1, 0),
            E::BadRequestType => Std(1, 1),
            E::BadRequestMultipart => Std(1, 2),
            E::BadRequestExperimenter => Std(1, 3),
            E::BadRequestExpType => Std(1, 4),
            E::BadRequestEperm | E::BadRequestIsSlave => Std(1, 5),
            E::BadRequestLen => Std(1, 6),
            E::BadRequestBufferUnknown => Std(1, 8),
            E::BadRequestTableId => Nx(1, 512),
            E::BadRequestPort => Nx(1, 514),
            E::BadActionType => Std(2, 0),
            E::BadActionLen => Std(2, 1),
            E::BadActionExperimenter => Std(2, 2),
            E::BadActionOutPort => Std(2, 4),
            E::BadActionArgument => Std(2, 5),
            E::BadActionOutGroup => Nx(2, 9),
            E::BadActionSetType => Nx(1, 523),
            E::BadActionSetLen => Nx(1, 524),
            E::BadActionSetArgument => Nx(1, 525),
            E::BadActionMatchInconsistent => Nx(1, 522),
            E::BadMatchField => Nx(0, 263),
            E::BadMatchValue => Nx(1, 258),
            E::BadMatchMask => Nx(1, 259),
            E::BadMatchPrereq => Nx(1, 260),
            E::BadMatchDupField => Nx(1, 261),
            E::FlowModTableFull => Std(3, 0),
            E::FlowModOverlap => Std(3, 1),
            E::FlowModBadCommand => Std(3, 4),
            E::FlowModBadFlags => Nx(3, 258),
            E::FlowModBadEmergTimeout => Std(3, 3),
            E::PortModBadPort => Std(4, 0),
            E::PortModBadHwAddr => Std(4, 1),
            E::GroupModGroupExists => Nx(6, 0),
            E::GroupModInvalidGroup => Nx(6, 1),
            _ => Nx(1, 521),
        }
    }
}

/// A refusal: the ERROR code to answer with and what was wrong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OfpError {
    pub code: ErrorCode,
    /// The field or element at fault (`"flow_mod.command"`, `"oxm"`), for logs.
    pub field: &'static str,
}

impl OfpError {
    pub fn new(code: ErrorCode, field: &'static str) -> OfpError {
        OfpError { code, field }
    }
}

impl fmt::Display for OfpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, c) = self.code.type_code();
        write!(f, "{}: {:?} (type {t}, code {c})", self.field, self.code)
    }
}

impl std::error::Error for OfpError {}

/// Shorthand used by the decoders.
pub(crate) fn err<T>(code: ErrorCode, field: &'static str) -> Result<T, OfpError> {
    Err(OfpError::new(code, field))
}
