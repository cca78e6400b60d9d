//! Devices publishing JSON observations over MQTT.
//!
//! # Contract
//!
//! Devices publish to `wardhub/v1/devices/{device_id}/obs`:
//!
//! ```json
//! {"observations": [
//!   {"metric": "MDC_PULS_OXIM_SAT_O2", "value": 97, "unit": "%", "time": "2026-11-20T10:00:00.000Z"},
//!   {"metric": 147842, "value": 72, "unit": "/min", "time": 1795168800000, "status": "valid"}
//! ]}
//! ```
//!
//! The formal description is `adapters/schema/observation-document.schema.json`.
//!
//! - The document is an object with an `observations` array, a bare array of observation
//!   objects, or a single observation object.
//! - `metric` (required): an MDC reference id (`MDC_PULS_OXIM_SAT_O2`), a short name (`spo2`), or
//!   a numeric MDC code (`150456`).
//! - `value` (required): a JSON number. Strings are refused, even numeric ones. The IEEE 11073
//!   "not available" value 8388607 makes the observation `not-available` whatever its `status`.
//! - `unit` (optional): UCUM or a common spelling, converted to the metric's canonical unit
//!   (`[degF]` → `Cel`); absent or empty means the canonical unit.
//! - `time` (optional): RFC 3339 with any offset, or epoch milliseconds; absent means the hub's
//!   time of receipt.
//! - `status` (optional): `valid` (default), `questionable`, `invalid`, `not-available`.
//! - Other fields are ignored.
//!
//! The device id comes from the topic, never from the payload. Two more topics are classified
//! and handed over raw, because the hub's alarm engine owns their contracts:
//! `wardhub/v1/devices/{id}/status` carries device status (battery, online, clock;
//! [`Message::Status`]) and `wardhub/v1/devices/{id}/event` carries device events
//! (`{"event": "nurse_call", "active": true, "seq": 3, "time": "…"}`: nurse call, bed exit,
//! pump occlusion, end of infusion; [`Message::Event`]). Any other topic is refused
//! ([`RejectReason::UnknownTopic`]).
//!
//! # Rejection rule
//!
//! Document-level errors reject the whole document and nothing of it is stored:
//! a payload over the size limit ([`RejectReason::TooLarge`]), not JSON
//! ([`RejectReason::Malformed`]; `NaN` and `Infinity` are not JSON, and numbers too large for
//! an `f64` are refused by the parser, so both land here), not an object or array, or an
//! `observations` member that is not an array ([`RejectReason::Schema`]), more observations than
//! allowed ([`RejectReason::TooMany`]).
//!
//! Otherwise every observation is checked on its own and the valid ones are kept. One
//! observation is refused for a wrong type, a missing `metric` or `value`, or a repeated field
//! ([`RejectReason::Schema`]), an unknown metric, an incompatible unit, a non-finite or
//! impossible value, or a time too far in the future or older than raw retention
//! (see [`check_value_and_time`]).
//!
//! Reject details name the observation's index, fields and limits; they never echo values
//! from the payload.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{
    check_value_and_time, metric_by_code, metric_by_name, parse_rfc3339, to_canonical_unit,
    DeviceId, Metric, Millis, Observation, Reject, RejectReason, Status, TimeLimits,
    MDC_NOT_AVAILABLE,
};

/// The adapter's name, its `adapter` metric label.
pub const NAME: &str = "mqtt_json";

/// The topics devices publish to.
pub const TOPIC_FILTER: &str = "wardhub/v1/devices/#";

const TOPIC_PREFIX: &str = "wardhub/v1/devices/";

/// Default payload limit: room for the default number of observations with long names.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Default limit of observations in one document.
pub const DEFAULT_MAX_OBSERVATIONS: usize = 1000;

/// What a topic under `wardhub/v1/devices/{id}/` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// `…/{id}/obs`: an observation document.
    Observations(DeviceId),
    /// `…/{id}/status`: device status (battery, firmware, …).
    Status(DeviceId),
    /// `…/{id}/event`: a device event (nurse call, bed exit, pump occlusion, …).
    Event(DeviceId),
}

/// Classifies a topic. A bad device id is [`RejectReason::BadDeviceId`]; anything not of the
/// contract's shapes is [`RejectReason::UnknownTopic`].
pub fn parse_topic(topic: &str) -> Result<Topic, Reject> {
    let unknown = || {
        Reject::new(
            RejectReason::UnknownTopic,
            "topic is not wardhub/v1/devices/{id}/obs, /status or /event",
        )
    };
    let rest = topic.strip_prefix(TOPIC_PREFIX).ok_or_else(unknown)?;
    let (id, kind) = rest.split_once('/').ok_or_else(unknown)?;
    let kind = match kind {
        "obs" => Topic::Observations,
        "status" => Topic::Status,
        "event" => Topic::Event,
        _ => return Err(unknown()),
    };
    let id =
        DeviceId::new(id).map_err(|e| Reject::new(RejectReason::BadDeviceId, e.to_string()))?;
    Ok(kind(id))
}

/// The result of decoding one observation document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// The valid observations, `bed: None`, values in canonical units.
    pub observations: Vec<Observation>,
    /// One entry for a document-level error (and then no observations), else one per refused
    /// observation.
    pub rejects: Vec<Reject>,
}

/// One decoded bus message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// An observation document from `device` (possibly with rejects, possibly empty).
    Observations { device: DeviceId, decoded: Decoded },
    /// A device status message, raw: the hub's alarm engine parses it.
    Status { device: DeviceId, payload: Bytes },
    /// A device event message, raw: the hub's alarm engine parses it.
    Event { device: DeviceId, payload: Bytes },
    /// Refused as a whole: unknown topic, bad device id, or an oversized status or event
    /// payload.
    Rejected {
        device: Option<DeviceId>,
        reject: Reject,
    },
}

/// The pure decoder of bus messages, with its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    pub max_payload_bytes: usize,
    pub max_observations: usize,
    pub limits: TimeLimits,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_observations: DEFAULT_MAX_OBSERVATIONS,
            limits: TimeLimits::default(),
        }
    }
}

impl Decoder {
    /// Classifies the topic, checks the size, and decodes observation documents.
    pub fn decode(&self, topic: &str, payload: &Bytes, now: Millis) -> Message {
        let topic = match parse_topic(topic) {
            Ok(t) => t,
            Err(reject) => {
                return Message::Rejected {
                    device: None,
                    reject,
                }
            }
        };
        let too_large = (payload.len() > self.max_payload_bytes).then(|| {
            Reject::new(
                RejectReason::TooLarge,
                format!("payload is larger than {} bytes", self.max_payload_bytes),
            )
        });
        match (topic, too_large) {
            (Topic::Observations(device), Some(reject)) => Message::Observations {
                device,
                decoded: Decoded {
                    observations: Vec::new(),
                    rejects: vec![reject],
                },
            },
            (Topic::Status(device) | Topic::Event(device), Some(reject)) => Message::Rejected {
                device: Some(device),
                reject,
            },
            (Topic::Status(device), None) => Message::Status {
                device,
                payload: payload.clone(),
            },
            (Topic::Event(device), None) => Message::Event {
                device,
                payload: payload.clone(),
            },
            (Topic::Observations(device), None) => {
                let decoded =
                    decode_observations(&device, payload, now, &self.limits, self.max_observations);
                Message::Observations { device, decoded }
            }
        }
    }
}

/// Decodes one observation document from `device` (see the module docs for the rules).
///
/// The size limit is not checked here; [`Decoder::decode`] checks it first.
pub fn decode_observations(
    device: &DeviceId,
    payload: &[u8],
    now: Millis,
    limits: &TimeLimits,
    max_observations: usize,
) -> Decoded {
    let mut st = State {
        device,
        now,
        limits,
        max: max_observations,
        out: Decoded::default(),
        count: 0,
        doc_error: None,
    };
    let mut de = serde_json::Deserializer::from_slice(payload);
    let result = DocSeed { st: &mut st }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) => st.out,
        Err(e) => {
            let reject = st.doc_error.take().unwrap_or_else(|| {
                if e.is_data() {
                    Reject::new(
                        RejectReason::Schema,
                        "document must be an object or an array of objects",
                    )
                } else {
                    Reject::new(
                        RejectReason::Malformed,
                        format!(
                            "payload is not valid JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    )
                }
            });
            Decoded {
                observations: Vec::new(),
                rejects: vec![reject],
            }
        }
    }
}

/// Decoding state shared by the nested visitors.
struct State<'d> {
    device: &'d DeviceId,
    now: Millis,
    limits: &'d TimeLimits,
    max: usize,
    out: Decoded,
    count: usize,
    /// A document-level reject found by a visitor; the visitor then aborts the parse.
    doc_error: Option<Reject>,
}

impl State<'_> {
    fn abort<E: de::Error>(&mut self, reject: Reject) -> E {
        self.doc_error = Some(reject);
        E::custom("document rejected")
    }

    /// Counts one more observation; errors (aborting the parse) past the limit.
    fn count_one<E: de::Error>(&mut self) -> Result<(), E> {
        self.count += 1;
        if self.count > self.max {
            let max = self.max;
            return Err(self.abort(Reject::new(
                RejectReason::TooMany,
                format!("more than {max} observations in one document"),
            )));
        }
        Ok(())
    }

    fn finish(&mut self, index: Option<usize>, fields: Fields<'_>) {
        match fields.to_observation(self.device, self.now, self.limits) {
            Ok(obs) => self.out.observations.push(obs),
            Err(mut r) => {
                r.detail = match index {
                    Some(i) => format!("observations[{i}]: {}", r.detail),
                    None => format!("observation: {}", r.detail),
                };
                self.out.rejects.push(r);
            }
        }
    }

    fn refuse(&mut self, index: usize, detail: &str) {
        self.out.rejects.push(Reject::new(
            RejectReason::Schema,
            format!("observations[{index}]: {detail}"),
        ));
    }
}

/// The top level: an object (wrapper or single observation) or an array.
struct DocSeed<'s, 'd> {
    st: &'s mut State<'d>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an observation document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        visit_list(self.st, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = Fields::default();
        let mut saw_list = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Observations if saw_list => {
                    return Err(self.st.abort(Reject::new(
                        RejectReason::Schema,
                        "observations appears twice",
                    )))
                }
                Key::Observations => {
                    saw_list = true;
                    map.next_value_seed(ListSeed { st: &mut *self.st })?;
                }
                Key::Field(f) => fields.set(f, map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_list {
            if fields.is_empty() {
                return Err(self.st.abort(Reject::new(
                    RejectReason::Schema,
                    "document has no observations array and is not an observation",
                )));
            }
            self.st.count_one()?;
            self.st.finish(None, fields);
        }
        Ok(())
    }
}

fn visit_list<'de, A: SeqAccess<'de>>(st: &mut State<'_>, mut seq: A) -> Result<(), A::Error> {
    let mut index = 0;
    while seq.next_element_seed(ObsSeed { st, index })?.is_some() {
        index += 1;
    }
    Ok(())
}

/// The value of `observations`: must be an array.
struct ListSeed<'s, 'd> {
    st: &'s mut State<'d>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of observations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        visit_list(self.st, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(self.not_array())
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_array())
    }
}

impl ListSeed<'_, '_> {
    fn not_array<E: de::Error>(self) -> E {
        self.st.abort(Reject::new(
            RejectReason::Schema,
            "observations must be an array",
        ))
    }
}

/// One element of the observation list: an object, or refused on its own.
struct ObsSeed<'s, 'd> {
    st: &'s mut State<'d>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for ObsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ObsSeed<'_, '_> {
    fn not_object<E: de::Error>(self) -> Result<(), E> {
        self.st.count_one()?;
        self.st.refuse(self.index, "not an object");
        Ok(())
    }
}

impl<'de> Visitor<'de> for ObsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an observation object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.st.count_one()?;
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Field(f) => fields.set(f, map.next_value()?),
                Key::Observations | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.st.finish(Some(self.index), fields);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_object()
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<(), E> {
        self.not_object()
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<(), E> {
        self.not_object()
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<(), E> {
        self.not_object()
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<(), E> {
        self.not_object()
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        self.not_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_object()
    }
}

/// The observation fields the contract knows.
#[derive(Debug, Clone, Copy)]
enum Field {
    Metric,
    Value,
    Unit,
    Time,
    Status,
    Channel,
}

enum Key {
    Observations,
    Field(Field),
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "observations" => Key::Observations,
                    "metric" => Key::Field(Field::Metric),
                    "value" => Key::Field(Field::Value),
                    "unit" => Key::Field(Field::Unit),
                    "time" => Key::Field(Field::Time),
                    "status" => Key::Field(Field::Status),
                    "channel" => Key::Field(Field::Channel),
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Any JSON value, borrowed where possible; objects and arrays are skipped, not kept.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
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
struct Fields<'a> {
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
    fn set(&mut self, field: Field, v: Scalar<'a>) {
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

    fn is_empty(&self) -> bool {
        self.metric.is_none()
            && self.value.is_none()
            && self.unit.is_none()
            && self.time.is_none()
            && self.status.is_none()
            && self.channel.is_none()
    }

    fn to_observation(
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

mod ingest;
pub use ingest::{MqttJsonConfig, MqttJsonIngest, PendingPublish, PublishOutcome, Refusal};

#[cfg(test)]
mod tests;
