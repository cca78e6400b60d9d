//! The tiers of the technical alarms (offline, sensor off, battery, clock skew) and of device
//! events, built from the `[alarms]` configuration.

use std::time::Duration;

use super::compiled::{millis, Tier, EXTRA_LOW, SLOTS};
use super::config::AlarmsConfig;
use super::event::EventKind;
use super::track::Spec;

/// Technical alarm tiers, built from the configuration.
#[derive(Debug, Clone)]
pub(super) struct TechTiers {
    pub(super) offline: [Option<Tier>; SLOTS],
    pub(super) sensor: [Option<Tier>; SLOTS],
    pub(super) battery: [Option<Tier>; SLOTS],
    pub(super) skew: [Option<Tier>; SLOTS],
    /// By [`EventKind::index`]: one tier without delay, and latching.
    pub(super) events: [([Option<Tier>; SLOTS], bool); EventKind::ALL.len()],
    pub(super) offline_after_ms: i64,
    pub(super) skew_max_ms: i64,
    pub(super) sensor_clear_ms: i64,
}

impl TechTiers {
    /// The sensor-off condition's: it ends once usable data held `sensor_clear_ms`.
    pub(super) fn sensor_spec(&self) -> Spec<'_> {
        Spec {
            clear_ms: self.sensor_clear_ms,
            ..Spec::technical(&self.sensor)
        }
    }

    pub(super) fn new(cfg: &AlarmsConfig) -> Self {
        let t = &cfg.technical;
        let one = |limit: f64, below, priority, delay: Duration| {
            [
                Some(Tier {
                    limit,
                    below,
                    priority,
                    delay_ms: millis(delay),
                }),
                None,
                None,
                None,
            ]
        };
        let mut battery = one(t.battery_low_pct, true, t.battery_priority, Duration::ZERO);
        battery[EXTRA_LOW] = Some(Tier {
            limit: t.battery_critical_pct,
            below: true,
            priority: t.battery_critical_priority,
            delay_ms: 0,
        });
        Self {
            offline: one(
                t.offline_after.as_secs_f64(),
                false,
                t.offline_priority,
                Duration::ZERO,
            ),
            sensor: one(f64::NAN, true, t.sensor_off_priority, t.sensor_off_delay),
            battery,
            skew: one(
                t.clock_skew_max.as_secs_f64(),
                false,
                t.clock_skew_priority,
                t.clock_skew_delay,
            ),
            events: EventKind::ALL.map(|k| {
                let c = cfg.events.get(k);
                (one(f64::NAN, false, c.priority, Duration::ZERO), c.latching)
            }),
            offline_after_ms: millis(t.offline_after),
            sensor_clear_ms: millis(t.sensor_off_clear),
            skew_max_ms: millis(t.clock_skew_max),
        }
    }
}
