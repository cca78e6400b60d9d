//! The kinds of bedside device and the protocols they speak.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The six information points of a bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    PatientMonitor,
    InfusionPump,
    Ventilator,
    SmartBed,
    NurseCall,
    Wearable,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 6] = [
        DeviceKind::PatientMonitor,
        DeviceKind::InfusionPump,
        DeviceKind::Ventilator,
        DeviceKind::SmartBed,
        DeviceKind::NurseCall,
        DeviceKind::Wearable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::PatientMonitor => "patient_monitor",
            DeviceKind::InfusionPump => "infusion_pump",
            DeviceKind::Ventilator => "ventilator",
            DeviceKind::SmartBed => "smart_bed",
            DeviceKind::NurseCall => "nurse_call",
            DeviceKind::Wearable => "wearable",
        }
    }

    /// The suffix of the device id (`b07-mon`).
    pub fn suffix(self) -> &'static str {
        match self {
            DeviceKind::PatientMonitor => "mon",
            DeviceKind::InfusionPump => "pump",
            DeviceKind::Ventilator => "vent",
            DeviceKind::SmartBed => "bed",
            DeviceKind::NurseCall => "call",
            DeviceKind::Wearable => "wear",
        }
    }

    /// Whether the device sends numeric observations (and so may speak HL7).
    pub fn has_observations(self) -> bool {
        matches!(
            self,
            DeviceKind::PatientMonitor | DeviceKind::Ventilator | DeviceKind::Wearable
        )
    }

    /// The simulated model name.
    pub fn model(self) -> &'static str {
        match self {
            DeviceKind::PatientMonitor => "SimVitals 700",
            DeviceKind::InfusionPump => "SimFlow P2",
            DeviceKind::Ventilator => "SimBreath V5",
            DeviceKind::SmartBed => "SimRest B3",
            DeviceKind::NurseCall => "SimCall N1",
            DeviceKind::Wearable => "SimPatch W2",
        }
    }

    pub fn firmware(self) -> &'static str {
        match self {
            DeviceKind::PatientMonitor => "7.2.1",
            DeviceKind::InfusionPump => "2.0.9",
            DeviceKind::Ventilator => "5.1.0",
            DeviceKind::SmartBed => "3.3.2",
            DeviceKind::NurseCall => "1.0.4",
            DeviceKind::Wearable => "2.4.0",
        }
    }

    /// Whether it runs on a battery (else mains-powered with a backup battery, charging).
    pub(crate) fn battery_powered(self) -> bool {
        self == DeviceKind::Wearable
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a device talks to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    MqttJson,
    Hl7Mllp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::MqttJson => "mqtt_json",
            Protocol::Hl7Mllp => "hl7_mllp",
        }
    }
}
