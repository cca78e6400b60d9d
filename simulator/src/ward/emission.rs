//! What the ward's devices send: each [`Emission`] is one device's [`Payload`] at one
//! simulated time (readings, a status report, a device event, garbage, a dropped or restored
//! connection). These are the simulation's output; [`crate::encode`] turns them into MQTT
//! JSON documents and HL7 messages.

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::{Metric, Status};

use super::SimMillis;

/// One measured value; its time is the emission's.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: Metric,
    pub value: f64,
    pub status: Status,
}

/// Device status (the hub's `DeviceStatus` contract, plus device-specific fields).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub online: bool,
    pub battery_pct: f64,
    pub charging: bool,
    pub firmware: &'static str,
    pub pump: Option<PumpReport>,
    /// Smart beds: whether the patient is in bed.
    pub occupied: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PumpReport {
    pub infusing: bool,
    pub rate_ml_h: f64,
    pub volume_remaining_ml: f64,
}

/// The events of the event contract (`wardhub/v1/devices/{id}/event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceEventKind {
    NurseCall,
    BedExit,
    PumpOcclusion,
    EndOfInfusion,
}

impl DeviceEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventKind::NurseCall => "nurse_call",
            DeviceEventKind::BedExit => "bed_exit",
            DeviceEventKind::PumpOcclusion => "pump_occlusion",
            DeviceEventKind::EndOfInfusion => "end_of_infusion",
        }
    }
}

/// A device event: it starts (`active`) and later ends.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    pub kind: DeviceEventKind,
    pub active: bool,
    /// Per device, increasing from 1: lets a receiver spot duplicates (QoS 1) and gaps.
    pub seq: u64,
}

/// What a device sends (or does) at one moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Observations(Vec<Reading>),
    Status(StatusReport),
    Event(DeviceEvent),
    /// A malformed message, sent as is on the device's observation channel.
    Garbage(Vec<u8>),
    /// The connection drops without a clean close (the MQTT last will fires).
    Disconnect,
    /// The device comes back (a status follows).
    Reconnect,
}

/// One thing a device sends, at simulated time `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Emission {
    pub at: SimMillis,
    /// Index into [`Ward::devices`](super::Ward::devices).
    pub device: usize,
    /// The device clock's error: add to the time when stamping.
    pub clock_offset_ms: i64,
    pub payload: Payload,
}
