//! The evaluation side fed by devices: observations, device status and events, connection and
//! unbinding. Each first makes sure the device is tracked and bound to its bed; each but the
//! last will is a sign of life.

use wardhub_model::device_status::DeviceStatus;
use wardhub_model::{DeviceId, Millis, Observation};

use crate::book::{Book, Ctx};
use crate::compiled::{CompiledRules, SLOTS};
use crate::event::DeviceEvent;
use crate::record::{Cause, Transition};
use crate::rules::metric_index;
use crate::technical::TechTiers;
use crate::track::{edges_of, flag, step, DeviceState, Spec, Track};

use super::AlarmEngine;

/// Percentage points above the low threshold a battery must reach to clear its alarm.
const BATTERY_HYSTERESIS: f64 = 5.0;

/// What an input is evaluated with: its device's state, the open alarms, the tiers.
struct Input<'e> {
    book: &'e mut Book,
    dev: &'e mut DeviceState,
    tech: &'e TechTiers,
    rules: &'e CompiledRules,
}

impl AlarmEngine {
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

    /// Binds the device ([`Self::device`]), then evaluates `f` on its state; the transitions
    /// of both.
    fn input(
        &mut self,
        device: &DeviceId,
        bed: Option<&str>,
        now: Millis,
        f: impl FnOnce(Input<'_>, &mut Vec<Transition>),
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        self.device(device, bed, now, &mut out);
        let Self {
            devices,
            book,
            rules,
            tech,
            ..
        } = self;
        if let Some(dev) = devices.get_mut(device.as_str()) {
            f(
                Input {
                    book,
                    dev,
                    tech,
                    rules,
                },
                &mut out,
            );
        }
        out
    }

    /// Evaluates one accepted observation (its `bed` is the registry binding).
    pub fn on_observation(&mut self, obs: &Observation, now: Millis) -> Vec<Transition> {
        let bed = obs.bed.as_deref();
        self.input(&obs.device_id, bed, now, |x, out| {
            let Input {
                book,
                dev,
                tech,
                rules,
            } = x;
            let ctx = |cause, metric| Ctx {
                device: &obs.device_id,
                bed,
                cause,
                metric,
            };
            alive(book, dev, tech, now, out);
            // The device's own time: a clock running ahead was corrected to hub time for
            // storage (`clock_correction_ms`), and that is exactly what this alarm reports.
            let skew = obs
                .observed_at
                .saturating_add(obs.clock_correction_ms)
                .saturating_sub(obs.received_at);
            clock_skew(book, dev, tech, skew, ctx(Cause::ClockSkew, None), now, out);
            let i = metric_index(obs.metric);
            let usable = obs.status.is_clinically_usable();
            step(
                book,
                &mut dev.sensor[i],
                tech.sensor_spec(),
                flag(!usable),
                None,
                ctx(Cause::SensorOff, Some(obs.metric)),
                now,
                out,
            );
            if usable {
                let rule = rules.get(bed, i);
                let edges = rule.map_or([Some(false); SLOTS], |r| {
                    edges_of(&r.tiers, obs.value, r.hysteresis)
                });
                step(
                    book,
                    &mut dev.limits[i],
                    Spec::rule(rule),
                    edges,
                    Some(obs.value),
                    ctx(Cause::Limit, Some(obs.metric)),
                    now,
                    out,
                );
            }
        })
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
        self.input(device, bed, now, |x, out| {
            let Input {
                book, dev, tech, ..
            } = x;
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
                    Spec::technical(&tech.offline),
                    flag(true),
                    Some(now.saturating_sub(dev.last_seen) as f64 / 1000.0),
                    ctx(Cause::Offline),
                    now,
                    out,
                );
                return;
            }
            alive(book, dev, tech, now, out);
            // Charging ends the condition; otherwise a usable percentage is evaluated.
            let battery = if status.charging == Some(true) {
                Some(([Some(false); SLOTS], status.battery_pct))
            } else {
                status
                    .battery_pct
                    .filter(|p| p.is_finite())
                    .map(|pct| (edges_of(&tech.battery, pct, BATTERY_HYSTERESIS), Some(pct)))
            };
            if let Some((edges, value)) = battery {
                step(
                    book,
                    &mut dev.battery,
                    Spec::technical(&tech.battery),
                    edges,
                    value,
                    ctx(Cause::BatteryLow),
                    now,
                    out,
                );
            }
            if let Some(t) = status.time {
                let skew = t.saturating_sub(now);
                clock_skew(book, dev, tech, skew, ctx(Cause::ClockSkew), now, out);
            }
        })
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
        self.input(device, bed, now, |x, out| {
            let Input {
                book, dev, tech, ..
            } = x;
            alive(book, dev, tech, now, out);
            let i = event.event.index();
            let (tiers, latching) = &tech.events[i];
            step(
                book,
                &mut dev.events[i],
                Spec {
                    latching: *latching,
                    ..Spec::technical(tiers)
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
                out,
            );
        })
    }

    /// The device is connected (MQTT connect, HL7 connection): watch it for silence from now.
    pub fn on_device_seen(
        &mut self,
        device: &DeviceId,
        bed: Option<&str>,
        now: Millis,
    ) -> Vec<Transition> {
        self.input(device, bed, now, |x, out| {
            alive(x.book, x.dev, x.tech, now, out)
        })
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
            Spec::technical(&tech.offline),
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

/// The device's time is `skew` ms from hub time (an observation's or a status message's).
fn clock_skew(
    book: &mut Book,
    dev: &mut DeviceState,
    tech: &TechTiers,
    skew: Millis,
    ctx: Ctx<'_>,
    now: Millis,
    out: &mut Vec<Transition>,
) {
    step(
        book,
        &mut dev.skew,
        Spec::technical(&tech.skew),
        flag(skew.saturating_abs() > tech.skew_max_ms),
        Some(skew as f64 / 1000.0),
        ctx,
        now,
        out,
    );
}
