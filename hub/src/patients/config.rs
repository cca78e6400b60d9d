//! `[patients]`: how the hub learns who lies in which bed, and what it shows of them.

use std::collections::BTreeMap;

use serde::Deserialize;
use wardhub_adapters::hl7::adt_listener::AdtConfig;

/// What the dashboard and the API show of a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Display {
    /// Only that a bed has a patient.
    None,
    /// `J.S.`
    #[default]
    Initials,
    /// Name, identifier, birth date and sex.
    Full,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PatientsConfig {
    pub display: Display,
    /// The PV1-3.1 point-of-care values that name this hub's ward (compared without case).
    /// Empty: `hub.ward` itself.
    pub points_of_care: Vec<String>,
    /// Explicit PV1-3 locations, `"POC^ROOM^BED" = "bed-id"`, for a hospital whose bed codes
    /// are not the registry's bed ids. Looked up before the rule above.
    pub locations: BTreeMap<String, String>,
    /// The hospital's ADT feed (HL7 v2 over MLLP). Off unless this section is present.
    pub adt: Option<AdtConfig>,
}
