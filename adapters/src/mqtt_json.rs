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
//! (see [`check_value_and_time`](crate::model::check_value_and_time)).
//!
//! Reject details name the observation's index, fields and limits; they never echo values
//! from the payload.
//!
//! This file is the contract, the topics and the [`Decoder`]; `document` walks an observation
//! document, `fields` checks one observation; `ingest` is the adapter the hub's MQTT edge
//! drives.

use bytes::Bytes;

use crate::model::{DeviceId, Millis, Observation, Reject, RejectReason, TimeLimits};

mod document;
mod fields;
mod ingest;

pub use document::decode_observations;
pub use ingest::{MqttJsonConfig, MqttJsonIngest, PendingPublish, PublishOutcome, Refusal};

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

#[cfg(test)]
mod tests;
