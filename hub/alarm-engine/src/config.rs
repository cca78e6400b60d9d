//! The `[alarms]` section of the hub configuration: the rules (preset, ward, beds), technical
//! alarm settings, escalation, device events, audio pause and the bounds of bed changes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wardhub_model::duration::{humane, opt_humane};

use super::error::{AlarmError, Result};
use super::rules::{Preset, Rule, RuleSet, MAX_DELAY};
use super::Priority;

/// Escalation times per priority; `"off"` disables escalation of that priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    #[serde(with = "opt_humane")]
    pub high: Option<Duration>,
    #[serde(with = "opt_humane")]
    pub medium: Option<Duration>,
    #[serde(with = "opt_humane")]
    pub low: Option<Duration>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            high: Some(Duration::from_secs(60)),
            medium: None,
            low: None,
        }
    }
}

impl EscalationConfig {
    pub fn for_priority(&self, p: Priority) -> Option<Duration> {
        match p {
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        }
    }
}

/// Technical alarm settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TechnicalConfig {
    /// A watched device that sent nothing for this long is offline.
    #[serde(with = "humane")]
    pub offline_after: Duration,
    pub offline_priority: Priority,
    /// Invalid / not-available data for this long raises "sensor off".
    #[serde(with = "humane")]
    pub sensor_off_delay: Duration,
    /// Usable data for this long ends a raised "sensor off" (a probe that slips on and off is
    /// one alarm).
    #[serde(with = "humane")]
    pub sensor_off_clear: Duration,
    pub sensor_off_priority: Priority,
    /// Battery below this percentage (and not charging) raises "battery low".
    pub battery_low_pct: f64,
    pub battery_priority: Priority,
    /// Below this percentage the same alarm goes to `battery_critical_priority`.
    pub battery_critical_pct: f64,
    pub battery_critical_priority: Priority,
    /// Device time further than this from hub time is a clock skew.
    #[serde(with = "humane")]
    pub clock_skew_max: Duration,
    /// A skew must persist this long (a replayed backlog after a reconnect is not a skew).
    #[serde(with = "humane")]
    pub clock_skew_delay: Duration,
    pub clock_skew_priority: Priority,
}

impl Default for TechnicalConfig {
    fn default() -> Self {
        Self {
            offline_after: Duration::from_secs(30),
            offline_priority: Priority::Medium,
            sensor_off_delay: Duration::from_secs(15),
            sensor_off_clear: Duration::from_secs(10),
            sensor_off_priority: Priority::Low,
            battery_low_pct: 20.0,
            battery_priority: Priority::Low,
            battery_critical_pct: 10.0,
            battery_critical_priority: Priority::Medium,
            clock_skew_max: Duration::from_secs(30),
            clock_skew_delay: Duration::from_secs(30),
            clock_skew_priority: Priority::Low,
        }
    }
}

/// How the alarm of one device event kind behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventConfig {
    pub priority: Priority,
    /// A latching alarm stays after its condition ended (`active: false`) until it is
    /// acknowledged.
    pub latching: bool,
}

/// Alarms of device events (`[alarms.events.<kind>]`, see [`DeviceEvent`]).
///
/// ```toml
/// [alarms.events.bed_exit]
/// priority = "medium"     # default high (fall risk)
/// [alarms.events.nurse_call]
/// latching = false        # default true: a released call button must still be answered
/// ```
///
/// A field left out keeps that kind's default, not a generic one.
///
/// [`DeviceEvent`]: super::DeviceEvent
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EventsRepr")]
pub struct EventsConfig {
    /// Default medium, latching.
    pub nurse_call: EventConfig,
    /// Default high, not latching.
    pub bed_exit: EventConfig,
    /// Default high, not latching.
    pub pump_occlusion: EventConfig,
    /// Default low, not latching.
    pub end_of_infusion: EventConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let c = |priority, latching| EventConfig { priority, latching };
        Self {
            nurse_call: c(Priority::Medium, true),
            bed_exit: c(Priority::High, false),
            pump_occlusion: c(Priority::High, false),
            end_of_infusion: c(Priority::Low, false),
        }
    }
}

impl EventsConfig {
    pub fn get(&self, kind: super::EventKind) -> EventConfig {
        use super::EventKind as K;
        match kind {
            K::NurseCall => self.nurse_call,
            K::BedExit => self.bed_exit,
            K::PumpOcclusion => self.pump_occlusion,
            K::EndOfInfusion => self.end_of_infusion,
        }
    }
}

/// One `[alarms.events.<kind>]` table as written: what is left out keeps the kind's default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRepr {
    priority: Option<Priority>,
    latching: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EventsRepr {
    nurse_call: EventRepr,
    bed_exit: EventRepr,
    pump_occlusion: EventRepr,
    end_of_infusion: EventRepr,
}

impl From<EventsRepr> for EventsConfig {
    fn from(r: EventsRepr) -> Self {
        let d = EventsConfig::default();
        let merge = |r: EventRepr, d: EventConfig| EventConfig {
            priority: r.priority.unwrap_or(d.priority),
            latching: r.latching.unwrap_or(d.latching),
        };
        Self {
            nurse_call: merge(r.nurse_call, d.nurse_call),
            bed_exit: merge(r.bed_exit, d.bed_exit),
            pump_occlusion: merge(r.pump_occlusion, d.pump_occlusion),
            end_of_infusion: merge(r.end_of_infusion, d.end_of_infusion),
        }
    }
}

/// The `[alarms]` section of the hub configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    pub preset: Preset,
    pub rules: Vec<Rule>,
    pub beds: BTreeMap<String, Vec<Rule>>,
    pub technical: TechnicalConfig,
    pub escalation: EscalationConfig,
    /// Alarms of device events (nurse call, bed exit, pump occlusion, end of infusion).
    pub events: EventsConfig,
    /// Default length of an audio pause.
    #[serde(with = "humane")]
    pub audio_pause: Duration,
    /// Longest audio pause anyone may set.
    #[serde(with = "humane")]
    pub audio_pause_max: Duration,
    /// The widest bed limits anyone but an admin may set.
    pub safe_ranges: Vec<super::changes::SafeRange>,
    /// The longest a non-admin may switch a bed's alarm off (the off state must end by itself).
    #[serde(with = "humane")]
    pub max_alarm_off: Duration,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            preset: Preset::Adult,
            rules: Vec::new(),
            beds: BTreeMap::new(),
            technical: TechnicalConfig::default(),
            escalation: EscalationConfig::default(),
            events: EventsConfig::default(),
            audio_pause: Duration::from_secs(120),
            audio_pause_max: Duration::from_secs(600),
            safe_ranges: super::changes::default_safe_ranges(),
            max_alarm_off: Duration::from_secs(8 * 3600),
        }
    }
}

impl AlarmsConfig {
    /// The rule part of the configuration.
    pub fn rule_set(&self) -> RuleSet {
        RuleSet {
            preset: self.preset,
            rules: self.rules.clone(),
            beds: self.beds.clone(),
            changes: BTreeMap::new(),
        }
    }

    /// Validates rules and settings.
    pub fn validate(&self) -> Result<()> {
        self.rule_set().validate()?;
        super::changes::check_safe_ranges(&self.safe_ranges).map_err(AlarmError::InvalidConfig)?;
        let t = &self.technical;
        let bad = |s: &str| Err(AlarmError::InvalidConfig(s.to_owned()));
        if self.max_alarm_off.is_zero() {
            return bad("max_alarm_off must be more than 0 s");
        }
        if t.offline_after < Duration::from_secs(1) {
            return bad("technical.offline_after must be at least 1 s");
        }
        if !(0.0..=100.0).contains(&t.battery_low_pct)
            || !(0.0..=100.0).contains(&t.battery_critical_pct)
            || t.battery_critical_pct > t.battery_low_pct
        {
            return bad("technical battery thresholds must satisfy 0 <= critical <= low <= 100");
        }
        if t.battery_critical_priority < t.battery_priority {
            return bad("technical.battery_critical_priority must not be below battery_priority");
        }
        if t.sensor_off_delay > MAX_DELAY
            || t.sensor_off_clear > MAX_DELAY
            || t.clock_skew_delay > Duration::from_secs(3600)
        {
            return bad("technical delays are too long");
        }
        if t.clock_skew_max < Duration::from_secs(1) {
            return bad("technical.clock_skew_max must be at least 1 s");
        }
        let e = &self.escalation;
        if [e.high, e.medium, e.low].contains(&Some(Duration::ZERO)) {
            return bad("escalation times must be longer than 0 s (use \"off\")");
        }
        if self.audio_pause.is_zero() || self.audio_pause > self.audio_pause_max {
            return bad("audio_pause must be > 0 and <= audio_pause_max");
        }
        Ok(())
    }
}
