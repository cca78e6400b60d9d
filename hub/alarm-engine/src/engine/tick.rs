//! The time-driven side: delays maturing without new data, offline detection, audio pauses
//! running out, escalations.

use wardhub_model::{Millis, METRICS};

use super::AlarmEngine;
use crate::book::{transition, Ctx};
use crate::compiled::millis;
use crate::record::{AlarmState, Cause, Event, Transition};
use crate::rules::metric_index;
use crate::track::{step, Spec, Track, HOLD};

impl AlarmEngine {
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
                    Spec::technical(&tech.offline),
                    [edge, None, None, None],
                    Some(silence as f64 / 1000.0),
                    ctx(Cause::Offline, None),
                    now,
                    &mut out,
                );
            }
            // The conditions under way go on without new data: their delays mature.
            let mut hold = |track: &mut Track, spec, cause, metric| {
                if !track.idle() {
                    step(
                        book,
                        track,
                        spec,
                        HOLD,
                        None,
                        ctx(cause, metric),
                        now,
                        &mut out,
                    );
                }
            };
            for (i, m) in METRICS.iter().enumerate() {
                hold(
                    &mut dev.limits[i],
                    Spec::rule(rules.get(bed, i)),
                    Cause::Limit,
                    Some(m),
                );
                hold(
                    &mut dev.sensor[i],
                    tech.sensor_spec(),
                    Cause::SensorOff,
                    Some(m),
                );
            }
            hold(
                &mut dev.battery,
                Spec::technical(&tech.battery),
                Cause::BatteryLow,
                None,
            );
            hold(
                &mut dev.skew,
                Spec::technical(&tech.skew),
                Cause::ClockSkew,
                None,
            );
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
}
