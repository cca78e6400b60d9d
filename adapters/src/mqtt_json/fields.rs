//! One observation's fields, as found in the document ([`Fields`] of [`Scalar`]s), checked
//! against the contract and turned into an [`Observation`] or the [`Reject`] that refuses this
//! observation alone: types, the metric by reference id, name or code, the unit converted to
//! the metric's canonical one, the time, the status, the channel, then the model's limits.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{
    check_value_and_time, metric_by_code, metric_by_name, parse_rfc3339, to_canonical_unit,
    DeviceId, Metric, Millis, Observation, Reject, RejectReason, Status, TimeLimits,
    MDC_NOT_AVAILABLE,
};

/// The observation fields the contract knows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field {
    Metric,
    Value,
    Unit,
    Time,
    Status,
    Channel,
}

/// Any JSON value, borrowed where possible; objects and arrays are skipped, not kept.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool,
    Null,
    Compound,
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                // Only strings with escapes get here.
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_bool<E: de::Error>(self, _v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound)
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// The fields of one observation as found, before validation.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    metric: Option<Scalar<'a>>,
    value: Option<Scalar<'a>>,
    unit: Option<Scalar<'a>>,
    time: Option<Scalar<'a>>,
    status: Option<Scalar<'a>>,
    channel: Option<Scalar<'a>>,
    duplicate: Option<&'static str>,
}

fn schema(detail: &str) -> Reject {
    Reject::new(RejectReason::Schema, detail)
}

impl<'a> Fields<'a> {
    pub(super) fn set(&mut self, field: Field, v: Scalar<'a>) {
        let (slot, name) = match field {
            Field::Metric => (&mut self.metric, "metric"),
            Field::Value => (&mut self.value, "value"),
            Field::Unit => (&mut self.unit, "unit"),
            Field::Time => (&mut self.time, "time"),
            Field::Status => (&mut self.status, "status"),
            Field::Channel => (&mut self.channel, "channel"),
        };
        if slot.replace(v).is_some() {
            // Two values for one field: which one the device meant is unknowable.
            self.duplicate = Some(name);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.metric.is_none()
            && self.value.is_none()
            && self.unit.is_none()
            && self.time.is_none()
            && self.status.is_none()
            && self.channel.is_none()
    }

    pub(super) fn to_observation(
        &self,
        device: &DeviceId,
        now: Millis,
        limits: &TimeLimits,
    ) -> Result<Observation, Reject> {
        if let Some(name) = self.duplicate {
            return Err(Reject::new(
                RejectReason::Schema,
                format!("{name} appears twice"),
            ));
        }
        let metric = self.metric()?;
        let raw = match self.value {
            None => return Err(schema("value is missing")),
            Some(Scalar::U64(v)) => v as f64,
            Some(Scalar::I64(v)) => v as f64,
            Some(Scalar::F64(v)) => v,
            Some(_) => return Err(schema("value must be a JSON number")),
        };
        let mut status = match &self.status {
            None | Some(Scalar::Null) => Status::Valid,
            Some(Scalar::Str(s)) => Status::parse(s).ok_or_else(|| {
                schema("status must be valid, questionable, invalid or not-available")
            })?,
            Some(_) => return Err(schema("status must be a string")),
        };
        let unit = match &self.unit {
            None | Some(Scalar::Null) => "",
            Some(Scalar::Str(s)) => s.as_ref(),
            Some(_) => return Err(schema("unit must be a string")),
        };
        let observed_at = match &self.time {
            None | Some(Scalar::Null) => now,
            Some(Scalar::Str(s)) => parse_time_str(s)?,
            Some(Scalar::I64(ms)) => *ms,
            Some(Scalar::U64(ms)) => {
                i64::try_from(*ms).map_err(|_| schema("time in epoch milliseconds is too large"))?
            }
            // 1.7951688e12 is an integer written as a float: fine.
            Some(Scalar::F64(ms)) if ms.fract() == 0.0 && ms.abs() < 9.0e15 => *ms as i64,
            Some(_) => return Err(schema("time must be RFC 3339 or epoch milliseconds")),
        };
        let unit_mismatch = |e: crate::model::UnitError| {
            Reject::new(RejectReason::UnitMismatch, format!("{} {e}", metric.name))
        };
        let value = if raw == MDC_NOT_AVAILABLE {
            // The sentinel is not a measurement: it is never converted, only its unit checked.
            status = Status::NotAvailable;
            to_canonical_unit(metric, unit, raw).map_err(unit_mismatch)?;
            raw
        } else {
            to_canonical_unit(metric, unit, raw).map_err(unit_mismatch)?
        };
        let channel = match &self.channel {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Str(s)) if crate::model::is_valid_channel(s) => Some(s.to_string()),
            Some(_) => {
                return Err(schema(
                    "channel must be 1-32 characters of A-Z a-z 0-9 . _ -",
                ))
            }
        };
        check_value_and_time(metric, value, status, observed_at, now, limits)?;
        Ok(Observation {
            device_id: device.clone(),
            bed: None,
            metric,
            value,
            observed_at,
            received_at: now,
            status,
            channel,
            clock_correction_ms: 0,
        })
    }

    fn metric(&self) -> Result<Metric, Reject> {
        let unknown = || {
            Reject::new(
                RejectReason::UnknownMetric,
                "metric is not a known MDC code, reference id or name",
            )
        };
        match &self.metric {
            None => Err(schema("metric is missing")),
            Some(Scalar::Str(s)) => metric_by_name(s)
                .or_else(|| s.parse::<u32>().ok().and_then(metric_by_code))
                .ok_or_else(unknown),
            Some(Scalar::U64(code)) => u32::try_from(*code)
                .ok()
                .and_then(metric_by_code)
                .ok_or_else(unknown),
            Some(_) => Err(schema("metric must be a string or an integer code")),
        }
    }
}

fn parse_time_str(s: &str) -> Result<Millis, Reject> {
    let parsed = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        parse_rfc3339(s)
    };
    parsed.ok_or_else(|| schema("time must be RFC 3339 or epoch milliseconds"))
}
