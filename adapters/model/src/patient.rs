//! Patient context: who a patient is (from an HL7 ADT feed's PID, or entered by a nurse) and
//! where they lie (PV1-3, `point of care^room^bed`). Patient data: never in logs or metric
//! labels (docs/PATIENTS.md).

use serde::{Deserialize, Serialize};

/// A patient as the hospital's ADT system names them (PID-3, PID-5, PID-7, PID-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Patient {
    /// The identifier (PID-3.1, e.g. the medical record number). Never empty.
    pub id: String,
    /// Who issued it (PID-3.4, assigning authority), when the message says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Family name (PID-5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given name (PID-5.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// Birth date `YYYY-MM-DD` (PID-7, the date part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Administrative sex, HL7 table 0001 (`F`, `M`, `O`, `U`, `A`, `N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
}

impl Patient {
    /// Initials (`J.S.`) for a dashboard that may show no more; `?` when no name is known.
    pub fn initials(&self) -> String {
        let first = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| s.trim().chars().next())
                .map(|c| c.to_uppercase().collect::<String>())
        };
        match (first(&self.given), first(&self.family)) {
            (None, None) => "?".into(),
            (g, f) => [g, f]
                .into_iter()
                .flatten()
                .map(|c| format!("{c}."))
                .collect(),
        }
    }

    /// `Given Family`, or the parts known; empty when none.
    pub fn full_name(&self) -> String {
        [self.given.as_deref(), self.family.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A place in the hospital (PV1-3 or PV1-6: point of care, room, bed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Location {
    pub point_of_care: String,
    pub room: String,
    pub bed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_and_full_name() {
        let p = Patient {
            id: "1".into(),
            family: Some("smith".into()),
            given: Some("jane".into()),
            ..Default::default()
        };
        assert_eq!(p.initials(), "J.S.");
        assert_eq!(p.full_name(), "jane smith");
        let none = Patient {
            id: "2".into(),
            ..Default::default()
        };
        assert_eq!(none.initials(), "?");
        assert_eq!(none.full_name(), "");
    }
}
