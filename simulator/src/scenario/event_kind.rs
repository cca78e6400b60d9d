//! The catalogue of what can happen at a bed: every [`EventKind`] a scenario can script or
//! make random, with what the simulation needs to know of each (its class in the ground
//! truth, the device it concerns by default, how long a random one lasts).

use serde::{Deserialize, Serialize};

use crate::device::DeviceKind;

/// What can happen at a bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    // Clinical events: the patient changes.
    Desaturation,
    Tachycardia,
    Bradycardia,
    Hypotension,
    Fever,
    Apnoea,
    /// A slow deterioration over hours (sepsis-like): HR, RR, temperature up; BP, SpO2 down.
    Deterioration,
    // Artefacts: the measurement is wrong, the patient is fine.
    /// SpO2 probe off: SpO2 and pulse rate not available.
    ProbeOff,
    /// Motion: HR, pulse rate and SpO2 erratic, flagged invalid by the device.
    Motion,
    /// ECG lead off: HR not available.
    LeadOff,
    // Device faults.
    /// The device drops off the network (no clean DISCONNECT: its last will fires) and
    /// reconnects after the duration.
    Disconnect,
    /// Unplugged: the battery drains at `rate` %/h (default 30).
    BatteryDrain,
    /// The device clock is off by `skew`.
    ClockSkew,
    /// The device sends malformed payloads (about one in three messages).
    Garbage,
    // Device events.
    NurseCall,
    BedExit,
    PumpOcclusion,
    EndOfInfusion,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::Desaturation,
        EventKind::Tachycardia,
        EventKind::Bradycardia,
        EventKind::Hypotension,
        EventKind::Fever,
        EventKind::Apnoea,
        EventKind::Deterioration,
        EventKind::ProbeOff,
        EventKind::Motion,
        EventKind::LeadOff,
        EventKind::Disconnect,
        EventKind::BatteryDrain,
        EventKind::ClockSkew,
        EventKind::Garbage,
        EventKind::NurseCall,
        EventKind::BedExit,
        EventKind::PumpOcclusion,
        EventKind::EndOfInfusion,
    ];

    /// Whether the patient's physiology changes (as opposed to a measurement or a device).
    pub fn is_clinical(self) -> bool {
        matches!(
            self,
            EventKind::Desaturation
                | EventKind::Tachycardia
                | EventKind::Bradycardia
                | EventKind::Hypotension
                | EventKind::Fever
                | EventKind::Apnoea
                | EventKind::Deterioration
        )
    }

    pub fn is_artefact(self) -> bool {
        matches!(
            self,
            EventKind::ProbeOff | EventKind::Motion | EventKind::LeadOff
        )
    }

    /// The class of a ground-truth event (`ward::TruthEvent`).
    pub fn class(self) -> &'static str {
        if self.is_clinical() {
            "clinical"
        } else if self.is_artefact() {
            "artefact"
        } else if matches!(
            self,
            EventKind::NurseCall
                | EventKind::BedExit
                | EventKind::PumpOcclusion
                | EventKind::EndOfInfusion
        ) {
            "device_event"
        } else {
            "device_fault"
        }
    }

    /// The device an event concerns when the scenario does not say.
    pub fn default_device(self) -> DeviceKind {
        match self {
            EventKind::BatteryDrain => DeviceKind::Wearable,
            EventKind::NurseCall => DeviceKind::NurseCall,
            EventKind::BedExit => DeviceKind::SmartBed,
            EventKind::PumpOcclusion | EventKind::EndOfInfusion => DeviceKind::InfusionPump,
            _ => DeviceKind::PatientMonitor,
        }
    }

    /// The duration of a random event when the scenario does not say: (min, max) seconds.
    pub fn random_duration_s(self) -> (u64, u64) {
        match self {
            EventKind::Desaturation => (60, 300),
            EventKind::Tachycardia | EventKind::Bradycardia => (60, 600),
            EventKind::Hypotension => (300, 1800),
            EventKind::Fever => (3600, 4 * 3600),
            EventKind::Apnoea => (20, 60),
            EventKind::Deterioration => (2 * 3600, 6 * 3600),
            EventKind::ProbeOff => (5, 120),
            EventKind::Motion => (5, 60),
            EventKind::LeadOff => (5, 90),
            EventKind::Disconnect => (5, 120),
            EventKind::BatteryDrain => (1800, 3 * 3600),
            EventKind::ClockSkew => (600, 3600),
            EventKind::Garbage => (10, 120),
            EventKind::NurseCall => (30, 300),
            EventKind::BedExit => (60, 600),
            EventKind::PumpOcclusion => (30, 300),
            EventKind::EndOfInfusion => (300, 900),
        }
    }
}
