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
//! A condition that ends before its delay is recorded as a [`Event::Suppressed`] transition
//! (audit only, not announced): every suppression is auditable.
//!
//! # Alarm life
//!
//! One open alarm per condition: a bed's clinical [`Condition`] whichever devices and metrics
//! show it (its sources), or one device's technical condition ([`super::book`] says how
//! priority and clearing combine across sources). The bed is the device's binding. Priority
//! follows the most severe *matured* tier upward ([`Event::PriorityChanged`], same alarm; an
//! acknowledged alarm becomes active again and an audio pause ends). While active it never
//! falls, so a recovering value cannot quietly lower the urgency of an unanswered alarm; once
//! acknowledged it follows the condition down as well (so a renewed worsening re-announces).
//! A non-latching alarm clears when its condition ends, acknowledged or not; a latching one
//! that is not acknowledged reports [`Event::ConditionEnded`] and clears on acknowledgement.
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
//! [`AlarmEngine::on_device_event`] ([`DeviceEvent`]: nurse call, bed exit, pump occlusion, end
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
use std::time::Duration;

use wardhub_model::{DeviceId, Millis, Observation, METRICS};

use super::book::{transition, Book, Ctx};
use super::compiled::{millis, CompiledRules, HIGH, LOW, SLOTS};
use super::config::AlarmsConfig;
use super::error::{AlarmError, Result};
use super::event::DeviceEvent;
use super::record::{
    AckReason, Alarm, AlarmId, AlarmState, Cause, Event, MetricRef, PauseTarget, Side, Transition,
};
use super::rules::{metric_index, RuleSet};
use super::technical::TechTiers;
use super::track::{edges_of, flag, step, DeviceState, Spec, Track, HOLD};
use wardhub_model::device_status::DeviceStatus;

/// Percentage points above the low threshold a battery must reach to clear its alarm.
const BATTERY_HYSTERESIS: f64 = 5.0;

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
    /// ([`AlarmStore::load`](super::AlarmStore::load)). Devices with open alarms are watched
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

    /// Replaces the rules. Open alarms stay; the next evaluation applies the new limits (a
    /// removed rule ends its alarms' conditions).
    pub fn set_rules(&mut self, rules: RuleSet) -> Result<()> {
        self.rules = CompiledRules::of(&rules)?;
        self.cfg.preset = rules.preset;
        self.cfg.rules = rules.rules.clone();
        self.cfg.beds = rules.beds.clone();
        self.rule_set = rules;
        Ok(())
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

    /// Makes sure the device is tracked and bound to `bed`; a device bound to another bed
    /// than before has its open alarms cleared (they belong to the previous patient).
    fn device(&mut self, id: &DeviceId, bed: Option<&str>, now: Millis, out: &mut Vec<Transition>) {
        match self.devices.get_mut(id.as_str()) {
            Some(d) if d.bed.as_deref() == bed => {}
            Some(d) => {
                let note = format!("device {} bound to bed {}", d.id, bed.unwrap_or("(none)"));
                self.book.drop_device(&d.id, now, &note, out);
                for t in d.tracks_mut() {
                    *t = Track::default();
                }
                d.bed = bed.map(str::to_owned);
            }
            None => {
                self.devices.insert(
                    id.as_str().to_owned(),
                    DeviceState::new(id.clone(), bed, now),
                );
            }
        }
    }

    /// Evaluates one accepted observation (its `bed` is the registry binding).
    pub fn on_observation(&mut self, obs: &Observation, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        let bed = obs.bed.as_deref();
        self.device(&obs.device_id, bed, now, &mut out);
        let Self {
            devices,
            book,
            rules,
            tech,
            ..
        } = self;
        let Some(dev) = devices.get_mut(obs.device_id.as_str()) else {
            return out;
        };
        let ctx = |cause, metric| Ctx {
            device: &obs.device_id,
            bed,
            cause,
            metric,
        };
        alive(book, dev, tech, now, &mut out);
        // The device's own time: a clock running ahead was corrected to hub time for storage
        // (`clock_correction_ms`), and that is exactly what this alarm reports.
        let skew = obs
            .observed_at
            .saturating_add(obs.clock_correction_ms)
            .saturating_sub(obs.received_at);
        step(
            book,
            &mut dev.skew,
            Spec {
                tiers: &tech.skew,
                latching: false,
                clear_ms: 0,
            },
            flag(skew.saturating_abs() > tech.skew_max_ms),
            Some(skew as f64 / 1000.0),
            ctx(Cause::ClockSkew, None),
            now,
            &mut out,
        );
        let i = metric_index(obs.metric);
        let usable = obs.status.is_clinically_usable();
        step(
            book,
            &mut dev.sensor[i],
            Spec {
                tiers: &tech.sensor,
                latching: false,
                clear_ms: tech.sensor_clear_ms,
            },
            flag(!usable),
            None,
            ctx(Cause::SensorOff, Some(obs.metric)),
            now,
            &mut out,
        );
        if usable {
            let track = &mut dev.limits[i];
            match rules.get(bed, i) {
                Some(rule) => step(
                    book,
                    track,
                    Spec {
                        tiers: &rule.tiers,
                        latching: rule.latching,
                        clear_ms: rule.clear_ms,
                    },
                    edges_of(&rule.tiers, obs.value, rule.hysteresis),
                    Some(obs.value),
                    ctx(Cause::Limit, Some(obs.metric)),
                    now,
                    &mut out,
                ),
                None => step(
                    book,
                    track,
                    Spec {
                        tiers: &[None; SLOTS],
                        latching: false,
                        clear_ms: 0,
                    },
                    [Some(false); SLOTS],
                    Some(obs.value),
                    ctx(Cause::Limit, Some(obs.metric)),
                    now,
                    &mut out,
                ),
            }
        }
        out
    }

    /// A device status message (see [`DeviceStatus`]): sign of life (or, with
    /// `online: false`, the last will), battery and clock.
    pub fn on_device_status(
        &mut self,
        device: &DeviceId,
        bed: Option<&str>,
        status: &DeviceStatus,
        now: Millis,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        self.device(device, bed, now, &mut out);
        let Self {
            devices,
            book,
            tech,
            ..
        } = self;
        let Some(dev) = devices.get_mut(device.as_str()) else {
            return out;
        };
        let ctx = |cause| Ctx {
            device,
            bed,
            cause,
            metric: None,
        };
        if status.online == Some(false) {
            dev.watched = true;
            step(
                book,
                &mut dev.offline,
                Spec {
                    tiers: &tech.offline,
                    latching: false,
                    clear_ms: 0,
                },
                flag(true),
                Some(now.saturating_sub(dev.last_seen) as f64 / 1000.0),
                ctx(Cause::Offline),
                now,
                &mut out,
            );
            return out;
        }
        alive(book, dev, tech, now, &mut out);
        if status.charging == Some(true) {
            step(
                book,
                &mut dev.battery,
                Spec {
                    tiers: &tech.battery,
                    latching: false,
                    clear_ms: 0,
                },
                [Some(false); SLOTS],
                status.battery_pct,
                ctx(Cause::BatteryLow),
                now,
                &mut out,
            );
        } else if let Some(pct) = status.battery_pct.filter(|p| p.is_finite()) {
            step(
                book,
                &mut dev.battery,
                Spec {
                    tiers: &tech.battery,
                    latching: false,
                    clear_ms: 0,
                },
                edges_of(&tech.battery, pct, BATTERY_HYSTERESIS),
                Some(pct),
                ctx(Cause::BatteryLow),
                now,
                &mut out,
            );
        }
        if let Some(t) = status.time {
            let skew = t.saturating_sub(now);
            step(
                book,
                &mut dev.skew,
                Spec {
                    tiers: &tech.skew,
                    latching: false,
                    clear_ms: 0,
                },
                flag(skew.saturating_abs() > tech.skew_max_ms),
                Some(skew as f64 / 1000.0),
                ctx(Cause::ClockSkew),
                now,
                &mut out,
            );
        }
        out
    }

    /// A device event (see [`DeviceEvent`]): `active` starts or keeps the condition of its kind,
    /// `!active` ends it. Also a sign of life.
    pub fn on_device_event(
        &mut self,
        device: &DeviceId,
        bed: Option<&str>,
        event: &DeviceEvent,
        now: Millis,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        self.device(device, bed, now, &mut out);
        let Self {
            devices,
            book,
            tech,
            ..
        } = self;
        let Some(dev) = devices.get_mut(device.as_str()) else {
            return out;
        };
        alive(book, dev, tech, now, &mut out);
        let i = event.event.index();
        let (tiers, latching) = &tech.events[i];
        step(
            book,
            &mut dev.events[i],
            Spec {
                tiers,
                latching: *latching,
                clear_ms: 0,
            },
            flag(event.active),
            None,
            Ctx {
                device,
                bed,
                cause: event.event.cause(),
                metric: None,
            },
            now,
            &mut out,
        );
        out
    }

    /// The device is connected (MQTT connect, HL7 connection): watch it for silence from now.
    pub fn on_device_seen(
        &mut self,
        device: &DeviceId,
        bed: Option<&str>,
        now: Millis,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        self.device(device, bed, now, &mut out);
        if let Some(dev) = self.devices.get_mut(device.as_str()) {
            alive(&mut self.book, dev, &self.tech, now, &mut out);
        }
        out
    }

    /// The device's MQTT last will arrived or its connection dropped: offline at once.
    pub fn on_device_offline(
        &mut self,
        device: &DeviceId,
        bed: Option<&str>,
        now: Millis,
    ) -> Vec<Transition> {
        self.on_device_status(device, bed, &DeviceStatus::offline(), now)
    }

    /// The device was unbound or retired: clear its open alarms and stop watching it.
    pub fn forget_device(&mut self, device: &DeviceId, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        if self.devices.remove(device.as_str()).is_some() {
            self.book
                .drop_device(device, now, "device unbound", &mut out);
        }
        out
    }

    /// Time-driven transitions: delays maturing without new data, offline detection, audio
    /// pauses running out, escalations. Call it about once a second.
    pub fn tick(&mut self, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        let Self {
            devices,
            book,
            rules,
            tech,
            cfg,
            ..
        } = self;
        for dev in devices.values_mut() {
            let bed = dev.bed.as_deref();
            let ctx = |cause, metric| Ctx {
                device: &dev.id,
                bed,
                cause,
                metric,
            };
            if dev.watched {
                let silence = now.saturating_sub(dev.last_seen);
                let edge = if silence > tech.offline_after_ms {
                    Some(true)
                } else {
                    None
                };
                step(
                    book,
                    &mut dev.offline,
                    Spec {
                        tiers: &tech.offline,
                        latching: false,
                        clear_ms: 0,
                    },
                    [edge, None, None, None],
                    Some(silence as f64 / 1000.0),
                    ctx(Cause::Offline, None),
                    now,
                    &mut out,
                );
            }
            for (i, m) in METRICS.iter().enumerate() {
                if !dev.limits[i].idle() {
                    let (tiers, latching, clear_ms) = match rules.get(bed, i) {
                        Some(r) => (&r.tiers, r.latching, r.clear_ms),
                        None => (&[None; SLOTS], false, 0),
                    };
                    step(
                        book,
                        &mut dev.limits[i],
                        Spec {
                            tiers,
                            latching,
                            clear_ms,
                        },
                        HOLD,
                        None,
                        ctx(Cause::Limit, Some(m)),
                        now,
                        &mut out,
                    );
                }
                if !dev.sensor[i].idle() {
                    step(
                        book,
                        &mut dev.sensor[i],
                        Spec {
                            tiers: &tech.sensor,
                            latching: false,
                            clear_ms: tech.sensor_clear_ms,
                        },
                        HOLD,
                        None,
                        ctx(Cause::SensorOff, Some(m)),
                        now,
                        &mut out,
                    );
                }
            }
            for (track, tiers, cause) in [
                (&mut dev.battery, &tech.battery, Cause::BatteryLow),
                (&mut dev.skew, &tech.skew, Cause::ClockSkew),
            ] {
                if !track.idle() {
                    step(
                        book,
                        track,
                        Spec {
                            tiers,
                            latching: false,
                            clear_ms: 0,
                        },
                        HOLD,
                        None,
                        ctx(cause, None),
                        now,
                        &mut out,
                    );
                }
            }
        }
        for alarm in book.open.values_mut() {
            if alarm.state != AlarmState::Active {
                continue;
            }
            if alarm.audio_paused_until.is_some_and(|u| now >= u) {
                alarm.audio_paused_until = None;
                alarm.updated_at = now;
                out.push(transition(Event::Reannounced, alarm, now, None, None));
            }
            let after = (alarm.cause == Cause::Limit)
                .then(|| {
                    let i = alarm.metric.map(|m| metric_index(m.0))?;
                    rules.get(alarm.bed.as_deref(), i)?.escalate_after_ms
                })
                .flatten()
                .or_else(|| cfg.escalation.for_priority(alarm.priority).map(millis));
            if let Some(after) = after {
                let armed = alarm.escalated_priority.is_none_or(|p| p < alarm.priority);
                if armed && now.saturating_sub(alarm.priority_since) >= after {
                    alarm.escalated_at = Some(now);
                    alarm.escalated_priority = Some(alarm.priority);
                    alarm.updated_at = now;
                    let note = format!(
                        "unacknowledged for {} s",
                        (now - alarm.priority_since) / 1000
                    );
                    out.push(transition(Event::Escalated, alarm, now, None, Some(note)));
                }
            }
        }
        out
    }

    /// Acknowledges an open alarm. A latched alarm whose condition already ended clears too.
    pub fn acknowledge(
        &mut self,
        id: AlarmId,
        user: &str,
        reason: Option<AckReason>,
        note: Option<&str>,
        now: Millis,
    ) -> Result<Vec<Transition>> {
        check_user(user)?;
        if note.is_some_and(|n| n.chars().count() > 500) {
            return Err(AlarmError::NoteTooLong);
        }
        let alarm = self
            .book
            .open
            .get_mut(&id)
            .ok_or(AlarmError::UnknownAlarm(id))?;
        if alarm.state != AlarmState::Active {
            return Err(AlarmError::InvalidState {
                id,
                state: alarm.state.as_str(),
                action: "acknowledge",
            });
        }
        alarm.state = AlarmState::Acknowledged;
        alarm.acknowledged_by = Some(user.to_owned());
        alarm.acknowledged_at = Some(now);
        alarm.ack_reason = reason;
        alarm.ack_note = note.map(str::to_owned);
        alarm.audio_paused_until = None;
        alarm.escalated_priority = None;
        alarm.updated_at = now;
        let mut out = vec![transition(
            Event::Acknowledged,
            alarm,
            now,
            Some(user),
            None,
        )];
        if !alarm.condition_present {
            self.book.clear(
                id,
                now,
                Some(user),
                Some("acknowledged after its condition ended".to_owned()),
                &mut out,
            );
        }
        Ok(out)
    }

    /// Pauses the audio of one active alarm, or of every active alarm of a bed, for
    /// `duration` (default: the configured audio pause).
    pub fn pause_audio(
        &mut self,
        target: PauseTarget<'_>,
        user: &str,
        duration: Option<Duration>,
        now: Millis,
    ) -> Result<Vec<Transition>> {
        check_user(user)?;
        let d = duration.unwrap_or(self.cfg.audio_pause);
        if d.is_zero() || d > self.cfg.audio_pause_max {
            return Err(AlarmError::PauseTooLong {
                requested_s: d.as_secs(),
                max_s: self.cfg.audio_pause_max.as_secs(),
            });
        }
        let until = now.saturating_add(millis(d));
        let mut out = Vec::new();
        let mut pause = |a: &mut Alarm| {
            a.audio_paused_until = Some(until);
            a.updated_at = now;
            out.push(transition(Event::AudioPaused, a, now, Some(user), None));
        };
        match target {
            PauseTarget::Alarm(id) => {
                let a = self
                    .book
                    .open
                    .get_mut(&id)
                    .ok_or(AlarmError::UnknownAlarm(id))?;
                if a.state != AlarmState::Active {
                    return Err(AlarmError::InvalidState {
                        id,
                        state: a.state.as_str(),
                        action: "pause audio",
                    });
                }
                pause(a);
            }
            PauseTarget::Bed(bed) => {
                for a in self.book.open.values_mut() {
                    if a.state == AlarmState::Active && a.bed.as_deref() == Some(bed) {
                        pause(a);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A sign of life: the device is watched and not offline.
fn alive(
    book: &mut Book,
    dev: &mut DeviceState,
    tech: &TechTiers,
    now: Millis,
    out: &mut Vec<Transition>,
) {
    dev.watched = true;
    dev.last_seen = now;
    if !dev.offline.idle() {
        step(
            book,
            &mut dev.offline,
            Spec {
                tiers: &tech.offline,
                latching: false,
                clear_ms: 0,
            },
            flag(false),
            Some(0.0),
            Ctx {
                device: &dev.id,
                bed: dev.bed.as_deref(),
                cause: Cause::Offline,
                metric: None,
            },
            now,
            out,
        );
    }
}

fn check_user(user: &str) -> Result<()> {
    let n = user.chars().count();
    if n == 0 || n > 64 || user.trim() != user || user.chars().any(char::is_control) {
        return Err(AlarmError::InvalidUser);
    }
    Ok(())
}
