//! The serde helpers of [`Rule`](super::Rule)'s fields: defaults, and a metric as its short
//! name.

use serde::Deserialize;
use wardhub_model::{metric_by_code, metric_by_name, Metric};

use crate::Priority;

pub(super) fn yes() -> bool {
    true
}
pub(super) fn is_true(b: &bool) -> bool {
    *b
}
pub(super) fn medium() -> Priority {
    Priority::Medium
}
pub(super) fn high() -> Priority {
    Priority::High
}

/// Serde of a metric as its short name; accepts a name, reference id or MDC code.
pub(super) mod metric_name {
    use super::*;
    use serde::de::Error;

    pub fn serialize<S: serde::Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.name)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrCode {
        Code(u32),
        Name(String),
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        match NameOrCode::deserialize(d)? {
            NameOrCode::Code(c) => {
                metric_by_code(c).ok_or_else(|| D::Error::custom(format!("unknown metric {c}")))
            }
            NameOrCode::Name(n) => metric_by_name(&n)
                .or_else(|| n.parse().ok().and_then(metric_by_code))
                .ok_or_else(|| D::Error::custom(format!("unknown metric {n:?}"))),
        }
    }
}
