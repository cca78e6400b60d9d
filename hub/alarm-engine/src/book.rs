//! The open alarms and their life: one alarm per condition (issue 15, "one event, many
//! alarms").
//!
//! The engine tracks each *source* — a device's metric (or a device, for technical alarms) —
//! through its tiers and delays, and hands the book a `View` of it: present or not, the most
//! severe tier whose delay is over, its value. The book groups sources by `GroupKey`: a
//! bed's clinical [`Condition`] (ECG heart rate and pulse rate are one tachycardia; the
//! monitor's and the wearable's SpO2 one desaturation), or one device's technical condition
//! (sensor off is per device, whichever of its metrics lost the signal). A group has at most
//! one open alarm, and the alarm lists its present sources.
//!
//! How priority and clearing combine:
//! - the alarm is raised when the first source's tier matures, at that tier's priority;
//! - its priority is the most severe matured tier of any present source: it rises when any
//!   source worsens (an acknowledged alarm becomes active again); while active it never falls;
//!   once acknowledged it follows the sources down;
//! - its condition is present while any source shows it (pending or matured); it ends only
//!   when every source has evidence that it ended (a usable value back past its limit by the
//!   hysteresis). Then a non-latching alarm clears; a latching one waits for acknowledgement;
//! - a group whose sources all ended before any tier matured is one audit-only suppression.

use std::collections::BTreeMap;

use wardhub_model::{DeviceId, Metric, Millis};

use super::compiled::Tier;
use super::record::{
    Alarm, AlarmId, AlarmSource, AlarmState, Cause, Condition, Event, MetricRef, Side, Transition,
};

/// What a transition is about (borrowed; strings are made only when a transition happens).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub device: &'a DeviceId,
    pub bed: Option<&'a str>,
    pub cause: Cause,
    pub metric: Option<Metric>,
}

/// Which alarm a source belongs to: a bed's clinical condition, or one device's condition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GroupKey {
    bed: Option<String>,
    condition: Condition,
    /// Set for per-device conditions, and for any condition of a device bound to no bed.
    device: Option<String>,
}

impl GroupKey {
    pub fn new(bed: Option<&str>, condition: Condition, device: &DeviceId) -> Self {
        let per_device = !condition.per_bed() || bed.is_none();
        Self {
            bed: bed.map(str::to_owned),
            condition,
            device: per_device.then(|| device.as_str().to_owned()),
        }
    }

    pub fn of_alarm(a: &Alarm) -> Self {
        let condition = a
            .condition
            .unwrap_or_else(|| Condition::of(a.cause, a.metric.map(|m| m.0), a.side));
        Self::new(a.bed.as_deref(), condition, &a.device_id)
    }
}

/// A source's condition that ended before any of its tiers matured (for the audit record).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    pub start: Millis,
    pub tier: Option<Tier>,
    pub worst: Option<f64>,
}

/// What one source says about its condition now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub present: bool,
    /// Start of its earliest present tier.
    pub since: Option<Millis>,
    /// Its most severe tier whose delay is over.
    pub best: Option<Tier>,
    pub value: Option<f64>,
    pub latching: bool,
    /// Set when its condition just ended.
    pub ended: Option<Ended>,
}

#[derive(Debug, Clone)]
struct Source {
    device: DeviceId,
    metric: Option<Metric>,
    since: Millis,
    best: Option<Tier>,
    value: Option<f64>,
    latching: bool,
}

impl Source {
    fn is(&self, device: &DeviceId, metric: Option<Metric>) -> bool {
        self.device == *device && self.metric.map(|m| m.code) == metric.map(|m| m.code)
    }
}

#[derive(Debug, Clone)]
struct Group {
    key: GroupKey,
    alarm: Option<AlarmId>,
    /// The sources that show the condition now, in the order they joined.
    sources: Vec<Source>,
}

impl Group {
    fn snapshot(&self) -> Vec<AlarmSource> {
        self.sources
            .iter()
            .map(|s| AlarmSource {
                device_id: s.device.clone(),
                metric: s.metric.map(MetricRef),
                value: s.value,
                priority: s.best.map(|t| t.priority),
                since: s.since,
            })
            .collect()
    }

    /// The source with the most severe matured tier (the earliest joined on a tie).
    fn best(&self) -> Option<(usize, Tier)> {
        let mut best: Option<(usize, Tier)> = None;
        for (i, s) in self.sources.iter().enumerate() {
            if let Some(t) = s.best {
                if best.is_none_or(|(_, b)| t.priority > b.priority) {
                    best = Some((i, t));
                }
            }
        }
        best
    }
}

pub(crate) fn transition(
    event: Event,
    alarm: &Alarm,
    now: Millis,
    by: Option<&str>,
    note: Option<String>,
) -> Transition {
    Transition {
        event,
        at: now,
        by: by.map(str::to_owned),
        note,
        alarm: alarm.clone(),
    }
}

pub(crate) fn set_tier(alarm: &mut Alarm, tier: &Tier) {
    alarm.priority = tier.priority;
    alarm.limit = tier.limit.is_finite().then_some(tier.limit);
    alarm.side = alarm
        .limit
        .map(|_| if tier.below { Side::Below } else { Side::Above });
}

/// The open alarms, the conditions they belong to, and the id counter.
#[derive(Debug, Clone)]
pub(crate) struct Book {
    pub ward: String,
    pub open: BTreeMap<AlarmId, Alarm>,
    pub next_id: u64,
    groups: BTreeMap<u64, Group>,
    index: BTreeMap<GroupKey, u64>,
    next_group: u64,
}

impl Book {
    pub fn new(ward: &str) -> Self {
        Self {
            ward: ward.to_owned(),
            open: BTreeMap::new(),
            next_id: 1,
            groups: BTreeMap::new(),
            index: BTreeMap::new(),
            next_group: 1,
        }
    }

    /// The group of `key`, made when there is none.
    pub fn group(&mut self, key: GroupKey) -> u64 {
        if let Some(&g) = self.index.get(&key) {
            return g;
        }
        let g = self.next_group;
        self.next_group += 1;
        self.index.insert(key.clone(), g);
        self.groups.insert(
            g,
            Group {
                key,
                alarm: None,
                sources: Vec::new(),
            },
        );
        g
    }

    /// Whether the group has an open alarm.
    pub fn has_alarm(&self, g: u64) -> bool {
        self.groups.get(&g).is_some_and(|x| x.alarm.is_some())
    }

    /// Restores an open alarm into its group (after a restart); returns the group.
    pub fn attach(&mut self, alarm: Alarm) -> u64 {
        let g = self.group(GroupKey::of_alarm(&alarm));
        if let Some(group) = self.groups.get_mut(&g) {
            group.alarm = Some(alarm.id);
        }
        self.open.insert(alarm.id, alarm);
        g
    }

    fn remove_if_empty(&mut self, g: u64) {
        if let Some(group) = self.groups.get(&g) {
            if group.sources.is_empty() && group.alarm.is_none() {
                self.index.remove(&group.key);
                self.groups.remove(&g);
            }
        }
    }

    fn new_alarm(
        ward: &str,
        next_id: &mut u64,
        ctx: &Ctx<'_>,
        state: AlarmState,
        now: Millis,
    ) -> Alarm {
        let id = AlarmId(*next_id);
        *next_id += 1;
        Alarm {
            id,
            ward: ward.to_owned(),
            bed: ctx.bed.map(str::to_owned),
            device_id: ctx.device.clone(),
            kind: ctx.cause.kind(),
            cause: ctx.cause,
            condition: None,
            sources: Vec::new(),
            metric: ctx.metric.map(MetricRef),
            priority: super::Priority::Low,
            state,
            condition_present: true,
            value: None,
            limit: None,
            side: None,
            latching: false,
            condition_since: now,
            raised_at: now,
            updated_at: now,
            priority_since: now,
            acknowledged_by: None,
            acknowledged_at: None,
            ack_reason: None,
            ack_note: None,
            audio_paused_until: None,
            escalated_at: None,
            escalated_priority: None,
            cleared_at: None,
        }
    }

    /// Clears an open alarm and unlinks it from its group.
    pub fn clear(
        &mut self,
        id: AlarmId,
        now: Millis,
        by: Option<&str>,
        note: Option<String>,
        out: &mut Vec<Transition>,
    ) {
        if let Some(mut a) = self.open.remove(&id) {
            if let Some(&g) = self.index.get(&GroupKey::of_alarm(&a)) {
                if let Some(group) = self.groups.get_mut(&g) {
                    if group.alarm == Some(id) {
                        group.alarm = None;
                    }
                }
                self.remove_if_empty(g);
            }
            a.state = AlarmState::Cleared;
            a.cleared_at = Some(now);
            a.updated_at = now;
            a.audio_paused_until = None;
            out.push(transition(Event::Cleared, &a, now, by, note));
        }
    }

    /// Takes a device out of every group (it was bound to another bed, or unbound): an alarm
    /// left without sources that the device raised or showed is cleared with `note`.
    pub fn drop_device(
        &mut self,
        device: &DeviceId,
        now: Millis,
        note: &str,
        out: &mut Vec<Transition>,
    ) {
        let mut to_clear = Vec::new();
        for group in self.groups.values_mut() {
            let before = group.sources.len();
            group.sources.retain(|s| s.device != *device);
            let touched = group.sources.len() != before;
            if let Some(id) = group.alarm {
                let raised_by_it = self.open.get(&id).is_some_and(|a| a.device_id == *device);
                if group.sources.is_empty() && (touched || raised_by_it) {
                    to_clear.push(id);
                } else if touched {
                    if let Some(a) = self.open.get_mut(&id) {
                        a.sources = group.snapshot();
                    }
                }
            }
        }
        for id in to_clear {
            self.clear(id, now, None, Some(note.to_owned()), out);
        }
        let empty: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| g.sources.is_empty() && g.alarm.is_none())
            .map(|(&k, _)| k)
            .collect();
        for g in empty {
            self.remove_if_empty(g);
        }
    }

    /// Applies one source's view to its group and advances the group's alarm. Returns whether
    /// the source is still a member (it is while its condition is present).
    pub fn settle(
        &mut self,
        g: u64,
        ctx: &Ctx<'_>,
        view: View,
        now: Millis,
        out: &mut Vec<Transition>,
    ) -> bool {
        let Self {
            ward,
            open,
            next_id,
            groups,
            ..
        } = self;
        let Some(group) = groups.get_mut(&g) else {
            return false;
        };
        let was_present = !group.sources.is_empty();
        let pos = group
            .sources
            .iter()
            .position(|s| s.is(ctx.device, ctx.metric));
        let mut joined_or_left = false;
        match (view.present, pos) {
            (true, Some(i)) => {
                let s = &mut group.sources[i];
                if let Some(since) = view.since {
                    s.since = since;
                }
                if s.best.map(|t| t.priority) != view.best.map(|t| t.priority) {
                    joined_or_left = true;
                }
                s.best = view.best;
                if view.value.is_some() {
                    s.value = view.value;
                }
                s.latching = view.latching;
            }
            (true, None) => {
                group.sources.push(Source {
                    device: ctx.device.clone(),
                    metric: ctx.metric,
                    since: view.since.unwrap_or(now),
                    best: view.best,
                    value: view.value,
                    latching: view.latching,
                });
                joined_or_left = true;
            }
            (false, Some(i)) => {
                group.sources.remove(i);
                joined_or_left = true;
            }
            (false, None) => {}
        }
        let present = !group.sources.is_empty();
        let best = group.best();
        match group.alarm {
            None => {
                if let Some((i, tier)) = best {
                    let src = &group.sources[i];
                    let raiser = Ctx {
                        device: &src.device,
                        bed: ctx.bed,
                        cause: ctx.cause,
                        metric: src.metric,
                    };
                    let mut a = Self::new_alarm(ward, next_id, &raiser, AlarmState::Active, now);
                    set_tier(&mut a, &tier);
                    a.condition = Some(group.key.condition);
                    a.value = src.value;
                    a.latching = src.latching;
                    a.condition_since = group.sources.iter().map(|s| s.since).min().unwrap_or(now);
                    a.sources = group.snapshot();
                    group.alarm = Some(a.id);
                    out.push(transition(Event::Raised, &a, now, None, None));
                    open.insert(a.id, a);
                } else if was_present && !present {
                    // Every source ended within its delay: audit it, once.
                    let ended = view.ended.unwrap_or(Ended {
                        start: now,
                        tier: None,
                        worst: view.value,
                    });
                    let mut a = Self::new_alarm(ward, next_id, ctx, AlarmState::Suppressed, now);
                    if let Some(t) = ended.tier {
                        set_tier(&mut a, &t);
                    }
                    a.condition = Some(group.key.condition);
                    a.value = ended.worst.or(view.value);
                    a.condition_present = false;
                    a.condition_since = ended.start;
                    a.latching = view.latching;
                    a.cleared_at = Some(now);
                    let note = format!(
                        "condition lasted {} ms, ended before its delay of {} ms",
                        now - ended.start,
                        ended.tier.map_or(0, |t| t.delay_ms)
                    );
                    out.push(transition(Event::Suppressed, &a, now, None, Some(note)));
                }
            }
            Some(id) => {
                let Some(alarm) = open.get_mut(&id) else {
                    group.alarm = None;
                    self.remove_if_empty(g);
                    return view.present;
                };
                if joined_or_left {
                    alarm.sources = group.snapshot();
                }
                if present {
                    if !alarm.condition_present {
                        alarm.condition_present = true;
                        alarm.updated_at = now;
                        alarm.value = view.value.or(alarm.value);
                        out.push(transition(Event::ConditionReturned, alarm, now, None, None));
                    }
                    if let Some((i, tier)) = best {
                        let up = tier.priority > alarm.priority;
                        let down = tier.priority < alarm.priority
                            && alarm.state == AlarmState::Acknowledged;
                        if up || down {
                            set_tier(alarm, &tier);
                            alarm.value = group.sources[i].value;
                            alarm.updated_at = now;
                            alarm.priority_since = now;
                            alarm.sources = group.snapshot();
                            let mut note = None;
                            if up && alarm.state == AlarmState::Acknowledged {
                                // A worsening condition needs a new acknowledgement.
                                alarm.state = AlarmState::Active;
                                alarm.acknowledged_by = None;
                                alarm.acknowledged_at = None;
                                alarm.ack_reason = None;
                                alarm.ack_note = None;
                                note = Some("condition worsened after acknowledgement".to_owned());
                            }
                            if up {
                                alarm.audio_paused_until = None;
                            }
                            out.push(transition(Event::PriorityChanged, alarm, now, None, note));
                        }
                    }
                } else if alarm.condition_present {
                    alarm.condition_present = false;
                    alarm.updated_at = now;
                    alarm.value = view.value.or(alarm.value);
                    if view.latching && alarm.latching && alarm.state == AlarmState::Active {
                        out.push(transition(Event::ConditionEnded, alarm, now, None, None));
                    } else {
                        self.clear(id, now, None, None, out);
                        return false;
                    }
                }
            }
        }
        self.remove_if_empty(g);
        view.present
    }
}
