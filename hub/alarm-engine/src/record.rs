//! The alarm record and its transitions: what is stored, audited and announced. The ids
//! are `record/ids.rs`, the enums of its vocabulary (priority, cause, condition, …)
//! `record/vocabulary.rs`.

use serde::{Deserialize, Serialize};
use wardhub_model::{DeviceId, Millis};

mod ids;
mod vocabulary;

pub use ids::{AlarmId, InvalidAlarmId, MetricRef};
pub use vocabulary::{AckReason, AlarmState, Cause, Condition, Event, Kind, Priority, Side};

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
