//! The IEC 60601-1-8 vocabulary of an alarm record: priority, kind, cause, condition, state,
//! side, acknowledgement reason and transition event, each with its string form.

use serde::{Deserialize, Serialize};
use wardhub_model::Metric;

/// IEC 60601-1-8 alarm priority. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// Its place in `[low, medium, high]` (for counts per priority).
    pub fn index(self) -> usize {
        match self {
            Priority::Low => 0,
            Priority::Medium => 1,
            Priority::High => 2,
        }
    }
}

/// Physiological (about the patient), technical (about the equipment), or a call (the patient
/// or the bed asks for someone: nurse call, bed exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Physiological,
    Technical,
    Call,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Physiological => "physiological",
            Kind::Technical => "technical",
            Kind::Call => "call",
        }
    }
}

/// What the alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A physiological limit of a rule.
    Limit,
    /// No data from the device for too long, or its MQTT last will.
    Offline,
    /// The device reports the metric as invalid / not available.
    SensorOff,
    /// Device battery low and not charging.
    BatteryLow,
    /// Device time too far from hub time.
    ClockSkew,
    /// The patient pressed the call button (device event `nurse_call`).
    NurseCall,
    /// The patient left the bed (device event `bed_exit`): fall risk.
    BedExit,
    /// An infusion pump detected an occlusion (device event `pump_occlusion`).
    PumpOcclusion,
    /// An infusion ended: bag empty (device event `end_of_infusion`).
    EndOfInfusion,
}

impl Cause {
    pub fn kind(self) -> Kind {
        match self {
            Cause::Limit => Kind::Physiological,
            Cause::NurseCall | Cause::BedExit => Kind::Call,
            Cause::Offline
            | Cause::SensorOff
            | Cause::BatteryLow
            | Cause::ClockSkew
            | Cause::PumpOcclusion
            | Cause::EndOfInfusion => Kind::Technical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Limit => "limit",
            Cause::Offline => "offline",
            Cause::SensorOff => "sensor_off",
            Cause::BatteryLow => "battery_low",
            Cause::ClockSkew => "clock_skew",
            Cause::NurseCall => "nurse_call",
            Cause::BedExit => "bed_exit",
            Cause::PumpOcclusion => "pump_occlusion",
            Cause::EndOfInfusion => "end_of_infusion",
        }
    }
}

/// The condition an alarm is about. A bed has at most one open alarm per clinical condition,
/// whichever devices and metrics show it (ECG heart rate and pulse rate; the monitor's and the
/// wearable's SpO2): they are its [`Alarm::sources`](super::Alarm::sources). Technical alarms and calls are per
/// device (sensor off: per device, whichever of its metrics lost its signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// HR or pulse rate below its limit.
    Bradycardia,
    /// HR or pulse rate above its limit.
    Tachycardia,
    /// SpO2 below its limit.
    Desaturation,
    SpO2High,
    /// Respiration rate or etCO2 below its limit; its high tier is apnoea (no breath).
    LowBreathing,
    /// Respiration rate above its limit.
    Tachypnoea,
    /// etCO2 above its limit.
    Hypercapnia,
    /// Systolic, diastolic or mean pressure below its limit.
    Hypotension,
    /// Systolic, diastolic or mean pressure above its limit.
    Hypertension,
    Hypothermia,
    Fever,
    Offline,
    SensorOff,
    BatteryLow,
    ClockSkew,
    NurseCall,
    BedExit,
    PumpOcclusion,
    EndOfInfusion,
}

impl Condition {
    pub const ALL: [Condition; 19] = [
        Condition::Bradycardia,
        Condition::Tachycardia,
        Condition::Desaturation,
        Condition::SpO2High,
        Condition::LowBreathing,
        Condition::Tachypnoea,
        Condition::Hypercapnia,
        Condition::Hypotension,
        Condition::Hypertension,
        Condition::Hypothermia,
        Condition::Fever,
        Condition::Offline,
        Condition::SensorOff,
        Condition::BatteryLow,
        Condition::ClockSkew,
        Condition::NurseCall,
        Condition::BedExit,
        Condition::PumpOcclusion,
        Condition::EndOfInfusion,
    ];

    /// The condition of a cause; for a limit, of its metric and side.
    pub fn of(cause: Cause, metric: Option<Metric>, side: Option<Side>) -> Condition {
        let below = side != Some(Side::Above);
        match cause {
            Cause::Limit => match (metric.map_or("", |m| m.name), below) {
                ("hr" | "pr", true) => Condition::Bradycardia,
                ("hr" | "pr", false) => Condition::Tachycardia,
                ("spo2", true) => Condition::Desaturation,
                ("spo2", false) => Condition::SpO2High,
                ("rr" | "etco2", true) => Condition::LowBreathing,
                ("rr", false) => Condition::Tachypnoea,
                ("etco2", false) => Condition::Hypercapnia,
                ("temp", true) => Condition::Hypothermia,
                ("temp", false) => Condition::Fever,
                (_, true) => Condition::Hypotension,
                (_, false) => Condition::Hypertension,
            },
            Cause::Offline => Condition::Offline,
            Cause::SensorOff => Condition::SensorOff,
            Cause::BatteryLow => Condition::BatteryLow,
            Cause::ClockSkew => Condition::ClockSkew,
            Cause::NurseCall => Condition::NurseCall,
            Cause::BedExit => Condition::BedExit,
            Cause::PumpOcclusion => Condition::PumpOcclusion,
            Cause::EndOfInfusion => Condition::EndOfInfusion,
        }
    }

    /// Whether one alarm covers the whole bed (physiological), or one device.
    pub fn per_bed(self) -> bool {
        matches!(
            self,
            Condition::Bradycardia
                | Condition::Tachycardia
                | Condition::Desaturation
                | Condition::SpO2High
                | Condition::LowBreathing
                | Condition::Tachypnoea
                | Condition::Hypercapnia
                | Condition::Hypotension
                | Condition::Hypertension
                | Condition::Hypothermia
                | Condition::Fever
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Bradycardia => "bradycardia",
            Condition::Tachycardia => "tachycardia",
            Condition::Desaturation => "desaturation",
            Condition::SpO2High => "spo2_high",
            Condition::LowBreathing => "low_breathing",
            Condition::Tachypnoea => "tachypnoea",
            Condition::Hypercapnia => "hypercapnia",
            Condition::Hypotension => "hypotension",
            Condition::Hypertension => "hypertension",
            Condition::Hypothermia => "hypothermia",
            Condition::Fever => "fever",
            Condition::Offline => "offline",
            Condition::SensorOff => "sensor_off",
            Condition::BatteryLow => "battery_low",
            Condition::ClockSkew => "clock_skew",
            Condition::NurseCall => "nurse_call",
            Condition::BedExit => "bed_exit",
            Condition::PumpOcclusion => "pump_occlusion",
            Condition::EndOfInfusion => "end_of_infusion",
        }
    }
}

/// Alarm state (IEC 60601-1-8: active, acknowledged, cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Announcing; not acknowledged.
    Active,
    /// Acknowledged by a person; no longer announcing.
    Acknowledged,
    /// Over.
    Cleared,
    /// A condition that ended before its delay: never an alarm, recorded only for the audit
    /// (every suppression must be auditable). Never announced.
    Suppressed,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Active => "active",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Cleared => "cleared",
            AlarmState::Suppressed => "suppressed",
        }
    }

    /// Active or acknowledged: kept in the engine and the store's active set.
    pub fn is_open(self) -> bool {
        matches!(self, AlarmState::Active | AlarmState::Acknowledged)
    }
}

/// On which side of its limit the value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Below,
    Above,
}

/// Why the nurse says the alarm happened (for alarm-fatigue statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckReason {
    Actionable,
    NonActionable,
    Artefact,
}

impl AckReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AckReason::Actionable => "actionable",
            AckReason::NonActionable => "non_actionable",
            AckReason::Artefact => "artefact",
        }
    }
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Raised,
    /// The condition reached a more severe tier (same alarm, higher priority).
    PriorityChanged,
    Acknowledged,
    AudioPaused,
    /// An audio pause ran out with the alarm still active.
    Reannounced,
    /// An unacknowledged alarm outlived its escalation time.
    Escalated,
    /// A latched alarm's condition ended; it stays until acknowledged.
    ConditionEnded,
    /// The condition of a latched alarm came back before acknowledgement.
    ConditionReturned,
    Cleared,
    /// A condition ended before its delay matured (audit only, not announced).
    Suppressed,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Raised => "raised",
            Event::PriorityChanged => "priority_changed",
            Event::Acknowledged => "acknowledged",
            Event::AudioPaused => "audio_paused",
            Event::Reannounced => "reannounced",
            Event::Escalated => "escalated",
            Event::ConditionEnded => "condition_ended",
            Event::ConditionReturned => "condition_returned",
            Event::Cleared => "cleared",
            Event::Suppressed => "suppressed",
        }
    }
}
