//! The device event contract: `wardhub/v1/devices/{device_id}/event`.
//!
//! ```json
//! {"event": "nurse_call", "active": true, "seq": 3, "time": "2026-11-20T10:00:00.000Z"}
//! ```
//!
//! - `event` (required): `nurse_call` (call button pressed / answered at the bedside),
//!   `bed_exit` (patient left / back in bed), `pump_occlusion` (detected / cleared),
//!   `end_of_infusion` (bag empty / new bag hung). Any other value is refused: an event the hub
//!   does not understand must not look as if it had been handled.
//! - `active` (optional, default `true`): `true` when the condition starts, `false` when it ends.
//! - `seq` (optional): per device, increasing; lets a reader of the log spot QoS 1 duplicates
//!   and gaps. The engine does not need it: a repeated `active: true` never opens a second alarm.
//! - `time` (optional): device time, RFC 3339 or epoch milliseconds. Like every alarm input,
//!   events are timed in hub time; a device with a wrong clock must not delay an alarm.
//! - Other fields are ignored (devices add their own).

use serde::{Deserialize, Serialize};
use wardhub_model::Millis;

use super::error::{AlarmError, Result};
use super::record::Cause;

/// What a device reports on its event topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    NurseCall,
    BedExit,
    PumpOcclusion,
    EndOfInfusion,
}

impl EventKind {
    /// Every kind, in the order of `EventKind::index`.
    pub const ALL: [EventKind; 4] = [
        EventKind::NurseCall,
        EventKind::BedExit,
        EventKind::PumpOcclusion,
        EventKind::EndOfInfusion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::NurseCall => "nurse_call",
            EventKind::BedExit => "bed_exit",
            EventKind::PumpOcclusion => "pump_occlusion",
            EventKind::EndOfInfusion => "end_of_infusion",
        }
    }

    /// The cause of the alarm this event raises.
    pub fn cause(self) -> Cause {
        match self {
            EventKind::NurseCall => Cause::NurseCall,
            EventKind::BedExit => Cause::BedExit,
            EventKind::PumpOcclusion => Cause::PumpOcclusion,
            EventKind::EndOfInfusion => Cause::EndOfInfusion,
        }
    }

    /// The event kind behind an alarm cause, if it is one.
    pub fn of_cause(cause: Cause) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.cause() == cause)
    }

    /// The position in [`EventKind::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            EventKind::NurseCall => 0,
            EventKind::BedExit => 1,
            EventKind::PumpOcclusion => 2,
            EventKind::EndOfInfusion => 3,
        }
    }
}

/// A device event message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    pub event: EventKind,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(
        default,
        with = "wardhub_model::device_status::opt_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub time: Option<Millis>,
}

fn yes() -> bool {
    true
}

impl DeviceEvent {
    /// The start (`active: true`) or end of a condition, without `seq` or `time`.
    pub fn new(event: EventKind, active: bool) -> Self {
        Self {
            event,
            active,
            seq: None,
            time: None,
        }
    }

    /// Parses and checks an event payload (a JSON object with a known `event`).
    pub fn from_json(payload: &[u8]) -> Result<Self> {
        // serde would also accept a JSON array for a struct; the contract is an object.
        if !payload.trim_ascii_start().starts_with(b"{") {
            return Err(AlarmError::InvalidEvent("expected a JSON object".into()));
        }
        serde_json::from_slice(payload).map_err(|e| AlarmError::InvalidEvent(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract() {
        let e = DeviceEvent::from_json(
            br#"{"event": "nurse_call", "active": true, "seq": 3,
                 "time": "2025-11-20T10:00:00Z", "room": "4b"}"#,
        )
        .unwrap();
        assert_eq!(e.event, EventKind::NurseCall);
        assert!(e.active);
        assert_eq!(e.seq, Some(3));
        assert_eq!(e.time, Some(1_763_632_800_000));
        let back: DeviceEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        // Epoch ms, and `active` defaulting to true; `seq` and `time` optional.
        let ms =
            DeviceEvent::from_json(br#"{"event": "bed_exit", "time": 1763632800000}"#).unwrap();
        assert_eq!(
            (ms.event, ms.active, ms.seq),
            (EventKind::BedExit, true, None)
        );
        assert_eq!(ms.time, e.time);
        assert_eq!(
            DeviceEvent::from_json(br#"{"event": "pump_occlusion", "active": false}"#).unwrap(),
            DeviceEvent::new(EventKind::PumpOcclusion, false)
        );
        // What the ward simulator publishes (simulator/src/encode.rs `event_json`).
        let sim = DeviceEvent::from_json(
            br#"{"event":"end_of_infusion","active":true,"seq":1,"time":"2026-11-20T10:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(sim.event, EventKind::EndOfInfusion);
    }

    #[test]
    fn refused() {
        for bad in [
            &br#"{"event": "fire_alarm", "active": true}"#[..],
            br#"{"event": "Nurse_Call"}"#,
            br#"{"event": ""}"#,
            br#"{"event": 1}"#,
            br#"{"active": true}"#,
            br#"{"event": "bed_exit", "active": "yes"}"#,
            br#"{"event": "bed_exit", "active": 1}"#,
            br#"{"event": "bed_exit", "seq": -1}"#,
            br#"{"event": "bed_exit", "seq": "3"}"#,
            br#"{"event": "bed_exit", "time": "yesterday"}"#,
            br#"["nurse_call", true]"#,
            b"",
            b"{not json",
        ] {
            let e = DeviceEvent::from_json(bad).unwrap_err();
            assert!(
                matches!(e, AlarmError::InvalidEvent(_)),
                "{}: {e}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn kinds_and_causes() {
        for (i, k) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(EventKind::of_cause(k.cause()), Some(k));
            assert_eq!(k.cause().as_str(), k.as_str());
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::from(k.as_str())
            );
        }
        assert_eq!(EventKind::of_cause(Cause::Limit), None);
    }
}
