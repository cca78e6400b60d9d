//! The alarm record and its transitions: what is stored, audited and announced.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use wardhub_model::{metric_by_code, DeviceId, Metric, Millis};

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
/// wearable's SpO2): they are its [`Alarm::sources`]. Technical alarms and calls are per
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

/// One device (and metric) that shows an alarm's condition right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmSource {
    pub device_id: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricRef>,
    /// Its latest usable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The priority of the tier it reached, once that tier's delay is over (none while it is
    /// still within its delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Since when it shows the condition.
    pub since: Millis,
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

/// One alarm: the current state that is stored, restored after a restart, and announced.
///
/// Times are epoch milliseconds of hub time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: AlarmId,
    pub ward: String,
    pub bed: Option<String>,
    /// The device that raised it (for a bed's condition seen by several, the first whose tier
    /// matured; all are in `sources`).
    pub device_id: DeviceId,
    pub kind: Kind,
    pub cause: Cause,
    /// What the alarm is about: one open alarm per condition and bed (physiological) or
    /// device (technical, calls). Records written before conditions existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// The devices and metrics that show the condition now (empty once it ended).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<AlarmSource>,
    /// The metric of a physiological or sensor-off alarm.
    pub metric: Option<MetricRef>,
    pub priority: Priority,
    pub state: AlarmState,
    /// False once the condition ended while a latched alarm waits for acknowledgement.
    pub condition_present: bool,
    /// The value behind the last transition (metric unit; battery %, skew s, silence s for
    /// technical alarms).
    pub value: Option<f64>,
    /// The limit crossed (of the tier that set the current priority).
    pub limit: Option<f64>,
    pub side: Option<Side>,
    pub latching: bool,
    /// When the condition began (before the condition delay).
    pub condition_since: Millis,
    pub raised_at: Millis,
    pub updated_at: Millis,
    /// When the alarm reached its current priority or was last re-activated: the escalation
    /// timer's start.
    pub priority_since: Millis,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Millis>,
    pub ack_reason: Option<AckReason>,
    pub ack_note: Option<String>,
    pub audio_paused_until: Option<Millis>,
    pub escalated_at: Option<Millis>,
    /// The priority at which the alarm escalated; it escalates again only at a higher one or
    /// after an acknowledgement re-arms it.
    pub escalated_priority: Option<Priority>,
    pub cleared_at: Option<Millis>,
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

/// One alarm transition: appended to the audit log, then announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub event: Event,
    pub at: Millis,
    /// The person who caused it (acknowledge, audio pause); none for the engine's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why the engine did it, when not obvious (e.g. "condition ended before the 15 s delay").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The alarm after the transition.
    pub alarm: Alarm,
}

impl Transition {
    /// Whether the transition is published to dashboards and subscribers (all but suppressed
    /// conditions, which are audit-only).
    pub fn announce(&self) -> bool {
        self.event != Event::Suppressed
    }
}

/// What an audio pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseTarget<'a> {
    Alarm(AlarmId),
    /// Every active (unacknowledged) alarm of the bed at this moment.
    Bed(&'a str),
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
