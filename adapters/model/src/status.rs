//! The IEEE 11073 measurement status, reduced to what alarms and displays need.

use serde::{Deserialize, Serialize};

/// IEEE 11073 measurement status, reduced to what alarms and displays need.
///
/// Invalid and not-available data never raises a physiological alarm; it may raise a technical
/// one (sensor off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Valid,
    Questionable,
    Invalid,
    NotAvailable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Questionable => "questionable",
            Status::Invalid => "invalid",
            Status::NotAvailable => "not-available",
        }
    }

    /// Liberal parse: `not-available`, `not_available`, `na` and any case are accepted.
    pub fn parse(s: &str) -> Option<Status> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "valid" | "ok" => Some(Status::Valid),
            "questionable" => Some(Status::Questionable),
            "invalid" => Some(Status::Invalid),
            "not-available" | "na" | "unavailable" => Some(Status::NotAvailable),
            _ => None,
        }
    }

    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Valid,
            1 => Status::Questionable,
            2 => Status::Invalid,
            3 => Status::NotAvailable,
            _ => return None,
        })
    }

    /// Whether the value may drive physiological alarms and be shown as a current reading.
    pub fn is_clinically_usable(self) -> bool {
        matches!(self, Status::Valid | Status::Questionable)
    }
}
