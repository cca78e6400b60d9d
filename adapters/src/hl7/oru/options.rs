//! How to decode an ORU^R01: [`OruOptions`] for every sender (time limits, code tables,
//! "no value" sentinels, the default UTC offset) and [`SenderRule`]s for one sender, by its
//! MSH-3 (where its device id comes from, its own offset and sentinels). These are the
//! decoder's configuration, built by the adapter from `[hl7]`; the decoding itself is in
//! [`crate::hl7::oru`].

use crate::hl7::codes::Codes;
use crate::model::{TimeLimits, MDC_NOT_AVAILABLE};

/// "No value" sentinels found in real feeds: IEEE 11073's 8388607 (2^23-1, "not a number"),
/// Mindray's -999, Mindray's temperature with the probe off (-99.9), and -100. A row holding
/// one is stored as not-available; the rest of the message is kept. (Text `NaN` is one too.)
pub const DEFAULT_SENTINELS: &[f64] = &[MDC_NOT_AVAILABLE, -999.0, -99.9, -100.0];

/// How to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct OruOptions {
    pub limits: TimeLimits,
    /// The UTC offset of HL7 times that carry none.
    pub default_utc_offset_minutes: i32,
    /// Which metric an OBX-3 names, by coding system.
    pub codes: Codes,
    /// Values that mean "no value" from any sender.
    pub sentinels: Vec<f64>,
    /// Rules for one sender, by its MSH-3 namespace id (often a product name).
    pub senders: Vec<(String, SenderRule)>,
}

/// Where a message's device id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// `OBX-18`, else the enclosing header row's, else the message's only one, else MSH-3,
    /// else MSH-4 (see the module docs).
    #[default]
    Auto,
    /// `OBX-18` (the row's, its header row's, or the message's only one); never MSH.
    Obx18,
    /// MSH-3 for every row (a device that names itself in MSH-3).
    Msh3,
    /// MSH-4 for every row (a device whose MSH-3 is its product name and MSH-4 its serial:
    /// otherwise every monitor of that model would be one device).
    Msh4,
}

/// What is particular to one sender.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderRule {
    #[serde(default)]
    pub identity: Identity,
    /// The UTC offset of its times that carry none (else the adapter's default).
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
    /// Its own "no value" sentinels, besides the common ones.
    #[serde(default)]
    pub sentinels: Vec<f64>,
}

impl Default for OruOptions {
    fn default() -> Self {
        OruOptions {
            limits: TimeLimits::default(),
            default_utc_offset_minutes: 0,
            codes: Codes::default(),
            sentinels: DEFAULT_SENTINELS.to_vec(),
            senders: Vec::new(),
        }
    }
}
