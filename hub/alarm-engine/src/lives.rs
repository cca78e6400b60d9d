//! Alarm lives: the transitions of the audit log (or of a replay, or of a bench run) folded
//! back into one [`Life`] per alarm: when it was raised, the highest priority it reached, how
//! it was acknowledged, when it cleared. The KPIs ([`super::kpi`]), the what-if replay
//! ([`super::replay`]) and the hub's alarm-quality bench read alarms this way.
//!
//! A life starts at its alarm's [`Event::Raised`]; transitions of an alarm whose raising is not
//! among them (raised before the slice of the log) are passed over. Which lives count (a
//! period, a kind) is the reader's choice: a life depends only on its own alarm's transitions.

use std::collections::BTreeMap;

use wardhub_model::Millis;

use super::record::{
    AckReason, AlarmId, Cause, Condition, Event, Kind, MetricRef, Priority, Side, Transition,
};

/// What happened to one alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Life {
    pub id: AlarmId,
    pub bed: Option<String>,
    pub kind: Kind,
    pub cause: Cause,
    /// As recorded (none in records written before conditions existed; see
    /// [`Life::condition_or_derived`]).
    pub condition: Option<Condition>,
    pub metric: Option<MetricRef>,
    pub side: Option<Side>,
    pub raised_at: Millis,
    /// The highest priority it reached (raised, or a more severe tier later).
    pub priority: Priority,
    /// Every acknowledgement, in order (a worsened alarm is acknowledged again).
    pub acknowledgements: Vec<Ack>,
    /// When it first cleared (none: still open at the end of the transitions).
    pub cleared_at: Option<Millis>,
}

/// One acknowledgement of an alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub at: Millis,
    pub by: Option<String>,
    pub reason: Option<AckReason>,
}

impl Life {
    /// The first acknowledgement.
    pub fn acknowledged(&self) -> Option<&Ack> {
        self.acknowledgements.first()
    }

    /// The first reason a nurse gave, whichever acknowledgement gave it.
    pub fn ack_reason(&self) -> Option<AckReason> {
        self.acknowledgements.iter().find_map(|a| a.reason)
    }

    /// Whether it cleared by itself (never acknowledged) less than `ms` after it was raised.
    pub fn self_cleared_within(&self, ms: Millis) -> bool {
        self.acknowledgements.is_empty() && self.cleared_at.is_some_and(|c| c - self.raised_at < ms)
    }

    /// Its condition, or for a record of before conditions the one of its cause, metric and
    /// side.
    pub fn condition_or_derived(&self) -> Condition {
        self.condition
            .unwrap_or_else(|| Condition::of(self.cause, self.metric.map(|m| m.0), self.side))
    }
}

/// Folds transitions as they come (a replay's engine hands them out call by call).
#[derive(Debug, Clone, Default)]
pub struct Lives {
    lives: BTreeMap<AlarmId, Life>,
}

impl Lives {
    /// Adds one transition to its alarm's life.
    pub fn take(&mut self, t: &Transition) {
        let a = &t.alarm;
        if t.event == Event::Raised {
            self.lives.insert(
                a.id,
                Life {
                    id: a.id,
                    bed: a.bed.clone(),
                    kind: a.kind,
                    cause: a.cause,
                    condition: a.condition,
                    metric: a.metric,
                    side: a.side,
                    raised_at: t.at,
                    priority: a.priority,
                    acknowledgements: Vec::new(),
                    cleared_at: None,
                },
            );
            return;
        }
        let Some(life) = self.lives.get_mut(&a.id) else {
            return;
        };
        match t.event {
            Event::PriorityChanged => life.priority = life.priority.max(a.priority),
            Event::Acknowledged => life.acknowledgements.push(Ack {
                at: t.at,
                by: t.by.clone(),
                reason: a.ack_reason,
            }),
            Event::Cleared => {
                life.cleared_at.get_or_insert(t.at);
            }
            _ => {}
        }
    }

    /// The lives so far, by alarm id.
    pub fn into_lives(self) -> Vec<Life> {
        self.lives.into_values().collect()
    }
}

/// The lives of the alarms raised among `transitions`, by alarm id.
pub fn lives(transitions: &[Transition]) -> Vec<Life> {
    let mut l = Lives::default();
    for t in transitions {
        l.take(t);
    }
    l.into_lives()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine, obs, S};
    use wardhub_model::Status;

    #[test]
    fn a_life_from_raised_to_cleared() {
        let mut e = engine("");
        let mut log = e.on_observation(&obs("mon-1", "1", "spo2", 88.0, Status::Valid, 0), 0);
        log.extend(e.on_observation(
            &obs("mon-1", "1", "spo2", 80.0, Status::Valid, 15 * S),
            15 * S,
        ));
        let id = log[0].alarm.id;
        log.extend(e.acknowledge(id, "nurse.a", None, None, 20 * S).unwrap());
        log.extend(e.on_observation(
            &obs("mon-1", "1", "spo2", 97.0, Status::Valid, 30 * S),
            30 * S,
        ));
        let l = lives(&log);
        assert_eq!(l.len(), 1, "{log:#?}");
        let l = &l[0];
        assert_eq!((l.id, l.bed.as_deref()), (id, Some("1")));
        assert_eq!(l.condition_or_derived(), Condition::Desaturation);
        assert_eq!(l.priority, Priority::High);
        let ack = l.acknowledged().unwrap();
        assert_eq!(
            (ack.at, ack.by.as_deref(), ack.reason),
            (20 * S, Some("nurse.a"), None)
        );
        assert_eq!(l.cleared_at, Some(30 * S));
        assert!(!l.self_cleared_within(60 * S));
        // Without its raising, an alarm's later transitions start no life.
        assert!(lives(&log[1..]).is_empty());
    }
}
