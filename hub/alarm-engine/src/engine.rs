//! The pure, deterministic alarm engine.
//!
//! Every method takes the hub time `now` explicitly; nothing here reads a clock, spawns, or
//! does I/O, so a test drives it with plain numbers. Iteration is over ordered maps, so the
//! same inputs give the same transitions (and the same alarm ids) in the same order.
//!
//! # Conditions, delays and evidence
//!
//! Each (device, metric) has up to four tiers (low, extra low, high, extra high). A tier's
//! condition *starts* when a usable value crosses its limit and *ends* only when a usable value
//! is back past the limit by the hysteresis; values inside the clear margin leave it as it is.
//! The hysteresis also applies while a condition is still within its delay, so a value
//! wobbling around the limit does not restart the delay on every sample.
//!
//! A condition *persists* until evidence says it ended. Invalid / not-available data and
//! silence are not evidence: a desaturation followed by the probe falling off, or by the
//! device going quiet, still matures at `start + delay` (on [`AlarmEngine::tick`]) with the
//! last usable value, next to the sensor-off / offline technical alarm. A true sustained
//! event is never dropped because the data stopped; the price is that a condition whose
//! recovery was never seen needs an acknowledgement or a usable value to go away.
//!
//! A condition that ends before its delay is recorded as a [`Event::Suppressed`](crate::Event::Suppressed) transition
//! (audit only, not announced): every suppression is auditable.
//!
//! # Alarm life
//!
//! One open alarm per condition: a bed's clinical [`Condition`](crate::Condition) whichever devices and metrics
//! show it (its sources), or one device's technical condition ([`super::book`] says how
//! priority and clearing combine across sources). The bed is the device's binding. Priority
//! follows the most severe *matured* tier upward ([`Event::PriorityChanged`](crate::Event::PriorityChanged), same alarm; an
//! acknowledged alarm becomes active again and an audio pause ends). While active it never
//! falls, so a recovering value cannot quietly lower the urgency of an unanswered alarm; once
//! acknowledged it follows the condition down as well (so a renewed worsening re-announces).
//! A non-latching alarm clears when its condition ends, acknowledged or not; a latching one
//! that is not acknowledged reports [`Event::ConditionEnded`](crate::Event::ConditionEnded) and clears on acknowledgement.
//!
//! Audio pause (per alarm or per bed) applies to active alarms; when it runs out and the alarm
//! is still active it is re-announced. Pausing does not stop escalation: only an
//! acknowledgement does. An active alarm escalates once its priority is older than the
//! escalation time of its rule or priority; it can escalate again only at a higher priority or
//! after an acknowledgement re-arms it.
//!
//! # Technical alarms
//!
//! - offline: a device that sent data or status (or was announced with
//!   [`AlarmEngine::on_device_seen`]) is watched; silence longer than `offline_after`, or an
//!   `{"online": false}` status (the MQTT last will), raises it; any sign of life clears it;
//! - sensor off: invalid / not-available data of a metric for `sensor_off_delay`, one alarm
//!   per device whichever of its metrics lost the signal; usable data of each of them for
//!   `sensor_off_clear` clears it;
//! - battery low: `battery_pct` below the threshold and not charging, one alarm whose
//!   priority rises below the critical threshold; clears 5 points above or when charging;
//! - clock skew: `|device time - received_at|` (the device time before the pipeline corrected
//!   a clock running ahead, `observed_at + clock_correction_ms`; or a status `time` against
//!   hub time) above
//!   `clock_skew_max` for `clock_skew_delay`; a delay because a backlog replayed after a
//!   reconnect legitimately carries old times.
//!
//! Technical alarms never latch. Pending (not yet matured) conditions are not persisted: after
//! a restart a still-present condition starts its delay again.
//!
//! # Device events
//!
//! [`AlarmEngine::on_device_event`] ([`DeviceEvent`](crate::DeviceEvent): nurse call, bed exit, pump occlusion, end
//! of infusion) drives one condition per (device, event kind) with the same machinery: no
//! delay, the priority and latching of `[alarms.events]`. `active: true` starts the condition
//! (a repeat changes nothing: no second alarm), `active: false` ends it (a latched alarm waits
//! for its acknowledgement, as a nurse call does by default). An event is also a sign of life.
//!
//! # Time
//!
//! Conditions are timed in hub time (`now`), never in device time: a device with a wrong clock
//! must not delay or hide an alarm. The other side of that choice: a backlog replayed after a
//! reconnect is evaluated as if it were current (it can raise, and clear, alarms for a few
//! seconds); the clock-skew alarm's delay keeps such a replay from raising a skew alarm.
//!
//! # Other choices
//!
//! - A bed audio pause applies to the alarms active at that moment; an alarm raised later on
//!   that bed announces normally, as does one whose priority rises.
//! - A latched alarm still active when its audio pause runs out is re-announced even if its
//!   condition has ended: it is still waiting for someone to look.
//! - A device bound to another bed has its open alarms cleared (they concern the previous
//!   patient), with a note in the audit record.
//! - One engine serves one ward; `ward` is a label on every record.
//!
//! # Cost
//!
//! [`AlarmEngine::on_observation`] allocates nothing unless a transition happens: an ordered map
//! lookup of the device, a table lookup of the rule, and a few comparisons.

use std::collections::BTreeMap;

use wardhub_model::{DeviceId, Millis};

use super::book::Book;
use super::compiled::{CompiledRules, HIGH, LOW};
use super::config::AlarmsConfig;
use super::error::Result;
use super::record::{Alarm, AlarmId, Cause, MetricRef, Side};
use super::rules::{metric_index, RuleSet};
use super::technical::TechTiers;
use super::track::DeviceState;

// The entry points, by side: what devices send (`inputs`), what time does (`tick`), what
// people and the rules API ask (`commands`).
mod commands;
mod inputs;
mod tick;

/// The alarm engine of one hub. See the module documentation for the semantics.
#[derive(Debug, Clone)]
pub struct AlarmEngine {
    cfg: AlarmsConfig,
    rule_set: RuleSet,
    rules: CompiledRules,
    tech: TechTiers,
    devices: BTreeMap<String, DeviceState>,
    book: Book,
}

impl AlarmEngine {
    /// A fresh engine for `ward` (no open alarms, ids from 1).
    pub fn new(ward: &str, cfg: AlarmsConfig) -> Result<Self> {
        cfg.validate()?;
        let rule_set = cfg.rule_set();
        Ok(Self {
            rules: CompiledRules::of(&rule_set)?,
            rule_set,
            tech: TechTiers::new(&cfg),
            cfg,
            devices: BTreeMap::new(),
            book: Book::new(ward),
        })
    }

    /// An engine continuing after a restart from the stored open alarms
    /// (the hub's `AlarmStore::load`). Devices with open alarms are watched
    /// from `now` (so a device that never comes back goes offline after `offline_after`).
    pub fn restore(
        ward: &str,
        cfg: AlarmsConfig,
        alarms: Vec<Alarm>,
        next_id: u64,
        now: Millis,
    ) -> Result<Self> {
        let mut e = Self::new(ward, cfg)?;
        e.book.next_id = next_id.max(1);
        for a in alarms.into_iter().filter(|a| a.state.is_open()) {
            e.book.next_id = e.book.next_id.max(a.id.0 + 1);
            let above = a.cause == Cause::Limit && a.side == Some(Side::Above);
            let g = e.book.attach(a.clone());
            // Its sources, or (a record of before conditions) the device that raised it.
            let sources: Vec<(DeviceId, Option<MetricRef>, Option<f64>, Millis)> =
                if a.sources.is_empty() {
                    vec![(a.device_id.clone(), a.metric, a.value, a.condition_since)]
                } else {
                    a.sources
                        .iter()
                        .map(|s| (s.device_id.clone(), s.metric, s.value, s.since))
                        .collect()
                };
            for (device, metric, value, since) in sources {
                let dev = e
                    .devices
                    .entry(device.as_str().to_owned())
                    .or_insert_with(|| DeviceState::new(device.clone(), a.bed.as_deref(), now));
                dev.watched = true;
                let track = dev.track_mut(a.cause, metric);
                track.last = value;
                if !a.condition_present {
                    continue;
                }
                // A member again; the next tick puts it back among the alarm's sources.
                track.group[usize::from(above)] = Some(g);
                let base = if above { HIGH } else { LOW };
                track.since[base] = Some(since);
                // The extra tier too, when the stored value is beyond it: otherwise a restored
                // acknowledged high alarm would drop to the base priority on the first tick.
                let extra = base + 1;
                let rule = metric.and_then(|m| e.rules.get(a.bed.as_deref(), metric_index(m.0)));
                if let (Some(rule), Some(v)) = (rule.filter(|_| a.cause == Cause::Limit), value) {
                    if rule.tiers[extra].is_some_and(|t| t.edge(v, rule.hysteresis) == Some(true)) {
                        track.since[extra] = Some(since);
                    }
                }
            }
        }
        Ok(e)
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rule_set
    }

    pub fn config(&self) -> &AlarmsConfig {
        &self.cfg
    }

    /// Open (active or acknowledged) alarms, by id.
    pub fn open_alarms(&self) -> impl Iterator<Item = &Alarm> {
        self.book.open.values()
    }

    pub fn alarm(&self, id: AlarmId) -> Option<&Alarm> {
        self.book.open.get(&id)
    }

    /// The id the next alarm will get (persisted by the store).
    pub fn next_id(&self) -> u64 {
        self.book.next_id
    }
}
