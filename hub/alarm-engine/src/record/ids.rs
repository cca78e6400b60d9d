//! The identities in an alarm record: [`AlarmId`] (`A000123`) and [`MetricRef`] (a metric
//! as code, reference id, name and unit), with their string and JSON forms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use wardhub_model::{metric_by_code, Metric};

/// A stable alarm identity, shown as `A000123`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmId(pub u64);

impl fmt::Display for AlarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{:06}", self.0)
    }
}

impl FromStr for AlarmId {
    type Err = InvalidAlarmId;
    fn from_str(s: &str) -> Result<Self, InvalidAlarmId> {
        let digits = s.strip_prefix('A').ok_or(InvalidAlarmId)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidAlarmId);
        }
        digits.parse().map(AlarmId).map_err(|_| InvalidAlarmId)
    }
}

/// An alarm id that is not `A` followed by digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an alarm id is `A` followed by digits, e.g. A000123")]
pub struct InvalidAlarmId;

impl Serialize for AlarmId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AlarmId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A metric in an alarm record: `{"code":150456,"refid":"MDC_PULS_OXIM_SAT_O2","name":"spo2","unit":"%"}`.
/// Deserializes through the code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRef(pub Metric);

#[derive(Serialize, Deserialize)]
struct MetricRepr {
    code: u32,
    #[serde(default)]
    refid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    unit: String,
}

impl Serialize for MetricRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Metric", 4)?;
        st.serialize_field("code", &self.0.code)?;
        st.serialize_field("refid", self.0.refid)?;
        st.serialize_field("name", self.0.name)?;
        st.serialize_field("unit", self.0.unit)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for MetricRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = MetricRepr::deserialize(d)?;
        metric_by_code(r.code)
            .map(MetricRef)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metric code {}", r.code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_ids() {
        assert_eq!(AlarmId(123).to_string(), "A000123");
        assert_eq!(AlarmId(12_345_678).to_string(), "A12345678");
        assert_eq!("A000123".parse(), Ok(AlarmId(123)));
        assert!("A".parse::<AlarmId>().is_err());
        assert!("B1".parse::<AlarmId>().is_err());
        assert!("A-1".parse::<AlarmId>().is_err());
        assert_eq!(serde_json::to_string(&AlarmId(7)).unwrap(), r#""A000007""#);
    }

    #[test]
    fn metric_ref_round_trip() {
        let m = MetricRef(wardhub_model::metric_by_name("spo2").unwrap());
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(
            j,
            r#"{"code":150456,"refid":"MDC_PULS_OXIM_SAT_O2","name":"spo2","unit":"%"}"#
        );
        assert_eq!(serde_json::from_str::<MetricRef>(&j).unwrap(), m);
    }
}
