//! # wardhub-alarm-engine
//!
//! The alarm engine (IEC 60601-1-8 vocabulary; issues 3 and 15; presets in docs/ALARM_PRESETS.md).
//! A crate of its own so that "pure, no clock, no I/O" is guaranteed by its dependencies
//! (the model, serde, thiserror), not by a comment; the hub's `alarms` module runs it
//! (`AlarmService`) and stores what it decides (`AlarmStore`).
//!
//! Layout:
//! - [`rules`]: [`Rule`], [`RuleSet`] (adult and paediatric presets, ward rules, per-bed
//!   overrides); [`compiled`]: the rules as tiers ready for evaluation; [`config`]: the
//!   `[alarms]` configuration section [`AlarmsConfig`];
//! - [`book`]: the open alarms, one per condition (a bed's clinical condition whichever
//!   devices show it; a device's technical one), and how their sources combine;
//! - [`engine`]: [`AlarmEngine`], pure and deterministic: every call takes the hub time, nothing
//!   reads a clock or does I/O; it returns the [`Transition`]s to store and announce (its
//!   per-source tracking is `track.rs`, the technical tiers `technical.rs`);
//! - [`record`]: the [`Alarm`] record and [`Transition`] (the JSON that is stored and announced);
//! - the device status contract ([`DeviceStatus`], from `wardhub_model::device_status`, shared
//!   with the registry);
//! - [`event`]: the device event contract ([`DeviceEvent`]: nurse call, bed exit, pump
//!   occlusion, end of infusion), evaluated by [`AlarmEngine::on_device_event`];
//! - [`lives`]: transitions folded back into one [`lives::Life`] per alarm (raised, priority
//!   reached, acknowledged, cleared), which the KPIs, the replay and the hub's bench read;
//! - [`kpi`]: the alarm-burden KPIs of a period, from the audit log's transitions;
//! - [`replay`]: what-if replay of stored data with proposed rules;
//! - `testing` (feature `testing`): the engine and observation helpers the hub's own tests share.
//!
//! The hub's loop (`wardhub::alarms`): for each accepted observation `engine.on_observation(&obs, now)`; once a
//! second `engine.tick(now)`; commands `acknowledge` / `pause_audio`; then, for a non-empty
//! result, `store.append(&transitions)`, `db.flush_async().await`, and only then publish the
//! transitions with [`Transition::announce`]. At start-up:
//! `AlarmEngine::restore(ward, cfg, restored.alarms, restored.next_id, now)` from
//! `AlarmStore::load`.
//!
//! ```
//! use wardhub_alarm_engine::{AlarmEngine, AlarmsConfig, Event, Priority};
//! use wardhub_model::{metric_by_name, DeviceId, Observation, Status};
//!
//! let mut engine = AlarmEngine::new("icu", AlarmsConfig::default()).unwrap();
//! let obs = |value, t| Observation {
//!     device_id: DeviceId::new("mon-1").unwrap(),
//!     bed: Some("12".into()),
//!     metric: metric_by_name("spo2").unwrap(),
//!     value,
//!     observed_at: t,
//!     received_at: t,
//!     status: Status::Valid,
//!     channel: None,
//!     clock_correction_ms: 0,
//! };
//! // SpO2 < 90 must persist 15 s (adult preset) before the alarm exists.
//! assert!(engine.on_observation(&obs(88.0, 0), 0).is_empty());
//! let t = engine.on_observation(&obs(88.0, 15_000), 15_000);
//! assert_eq!((t[0].event, t[0].alarm.priority), (Event::Raised, Priority::Medium));
//! // Below 85 for 5 s the same alarm becomes high priority.
//! assert!(engine.on_observation(&obs(84.0, 16_000), 16_000).is_empty());
//! let t = engine.on_observation(&obs(84.0, 21_000), 21_000);
//! assert_eq!((t[0].event, t[0].alarm.priority), (Event::PriorityChanged, Priority::High));
//! // One alarm per condition: the bed's desaturation, with the monitor as its source.
//! assert_eq!(t[0].alarm.condition, Some(wardhub_alarm_engine::Condition::Desaturation));
//! assert_eq!(t[0].alarm.sources.len(), 1);
//! ```

pub mod book;
pub mod changes;
pub mod compiled;
pub mod config;
pub mod engine;
pub mod error;
pub mod event;
pub mod kpi;
pub mod lives;
pub mod record;
pub mod replay;
pub mod rules;
mod technical;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod track;

pub use config::{AlarmsConfig, EscalationConfig, EventConfig, EventsConfig, TechnicalConfig};
pub use engine::AlarmEngine;
pub use error::{AlarmError, Result};
pub use event::{DeviceEvent, EventKind};
pub use record::{
    AckReason, Alarm, AlarmId, AlarmSource, AlarmState, Cause, Condition, Event, Kind, MetricRef,
    PauseTarget, Priority, Side, Transition,
};
pub use rules::{default_adult, default_paediatric, Preset, Rule, RuleSet};
pub use wardhub_model::device_status::{self, DeviceStatus};

#[cfg(test)]
mod condition_tests;
#[cfg(test)]
mod tests;
