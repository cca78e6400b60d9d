//! What-if replay (issue 15): re-runs the alarm engine over stored data with proposed rules
//! and tells what would change, so that a unit changes limits with evidence.
//!
//! For each bed, the stored observations of the period (and a warm-up before it, so that a
//! condition already present at its start is seen) are fed, in hub-time order and with a
//! tick every second, to two engines: one with the rules in force, one with the proposed
//! rules. Their physiological alarms are compared per bed and condition:
//!
//! - **kept**: both raise it within a second of each other;
//! - **later** / **earlier**: the proposed rules raise it, but more than a second after (or
//!   before) the rules in force — with by how much;
//! - **gone**: only the rules in force raise it; **new**: only the proposed ones.
//!
//! A proposed alarm answers one in force when it is of the same bed and condition and raised
//! between a minute before it and its end. Then every alarm that really happened in the period
//! and was acknowledged as **actionable** (the audit log) is looked up the same way among the
//! proposed alarms: kept, delayed (by how much), or missed.
//!
//! Only physiological alarms are compared: device status and events are not time series the
//! store keeps, and limit rules are what a rule change changes. Beds are replayed one after
//! another (their conditions are independent), a window of observations at a time, so memory
//! stays bounded by a window whatever the period.

use std::collections::BTreeMap;

use serde::Serialize;
use wardhub_model::{Millis, Observation};

use super::lives::{lives, Life, Lives};
use super::record::{AckReason, Condition, Kind, Priority, Transition};
use super::{AlarmEngine, AlarmsConfig, RuleSet};

/// How much data before the period is replayed so that conditions present at its start exist.
pub const WARMUP_MS: Millis = 10 * 60_000;
/// The longest period one replay covers.
pub const MAX_PERIOD_MS: Millis = 72 * 3_600_000;
/// A proposed alarm raised this close to the one in force is the same alarm, on time.
const ON_TIME_MS: Millis = 1_000;
/// ... and this much earlier still answers it.
const EARLY_MS: Millis = 60_000;
/// Listed changes (the counts are complete).
const MAX_LISTED: usize = 500;

/// One physiological alarm of a replay or of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raised {
    pub bed: String,
    pub condition: Condition,
    pub priority: Priority,
    pub raised_at: Millis,
    /// When it cleared (none: still open at the end).
    pub cleared_at: Option<Millis>,
}

/// One difference between the rules in force and the proposed ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub bed: String,
    pub condition: Condition,
    /// `gone`, `new`, `later`, `earlier`.
    pub change: &'static str,
    /// When the rules in force raise it (none for `new`).
    pub current_at: Option<Millis>,
    /// When the proposed rules raise it (none for `gone`).
    pub proposed_at: Option<Millis>,
    /// `proposed_at - current_at`, seconds (later: positive).
    pub shift_s: Option<f64>,
    pub current_priority: Option<Priority>,
    pub proposed_priority: Option<Priority>,
}

/// Per bed and condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub bed: String,
    pub condition: String,
    pub current: usize,
    pub proposed: usize,
    pub kept: usize,
    pub later: usize,
    pub earlier: usize,
    pub gone: usize,
    pub new: usize,
    /// The largest delay of a `later` alarm, seconds.
    pub max_later_s: Option<f64>,
}

/// What became of an alarm acknowledged as actionable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actionable {
    pub alarm: String,
    pub bed: String,
    pub condition: Condition,
    pub raised_at: Millis,
    /// `kept`, `delayed` or `missed`.
    pub outcome: &'static str,
    pub delayed_s: Option<f64>,
}

/// The answer of a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub from: Millis,
    pub to: Millis,
    pub beds: usize,
    pub observations: u64,
    pub current: usize,
    pub proposed: usize,
    pub kept: usize,
    pub later: usize,
    pub earlier: usize,
    pub gone: usize,
    pub new: usize,
    pub rows: Vec<Row>,
    /// Every change, up to 500 (the counts above are complete).
    pub changes: Vec<Change>,
    pub changes_truncated: bool,
    /// Every alarm of the period acknowledged as actionable, and what the proposed rules do
    /// with it.
    pub actionable: Vec<Actionable>,
    pub actionable_missed: usize,
    pub actionable_delayed: usize,
}

/// The physiological alarm of a bed that a life raised in `from..to` is.
fn raised_of(l: Life, from: Millis, to: Millis) -> Option<Raised> {
    if l.kind != Kind::Physiological || !(from..to).contains(&l.raised_at) {
        return None;
    }
    Some(Raised {
        condition: l.condition_or_derived(),
        bed: l.bed?,
        priority: l.priority,
        raised_at: l.raised_at,
        cleared_at: l.cleared_at,
    })
}

/// Feeds one bed's observations (in windows, each in any order) to an engine with `cfg`,
/// ticking every second; returns the physiological alarms raised in `from..to`.
struct Run {
    engine: AlarmEngine,
    lives: Lives,
    next_tick: Millis,
    from: Millis,
    to: Millis,
}

impl Run {
    fn new(
        ward: &str,
        cfg: &AlarmsConfig,
        start: Millis,
        from: Millis,
        to: Millis,
    ) -> super::Result<Self> {
        Ok(Self {
            engine: AlarmEngine::new(ward, cfg.clone())?,
            lives: Lives::default(),
            next_tick: start,
            from,
            to,
        })
    }

    fn take(&mut self, ts: Vec<Transition>) {
        for t in &ts {
            self.lives.take(t);
        }
    }

    /// The physiological alarms raised in `from..to`, by alarm id.
    fn raised(self) -> impl Iterator<Item = Raised> {
        let (from, to) = (self.from, self.to);
        let lives = self.lives.into_lives().into_iter();
        lives.filter_map(move |l| raised_of(l, from, to))
    }

    fn until(&mut self, now: Millis) {
        while self.next_tick <= now {
            let t = self.engine.tick(self.next_tick);
            self.take(t);
            self.next_tick += 1000;
        }
    }

    fn observe(&mut self, o: &Observation) {
        self.until(o.received_at);
        let t = self.engine.on_observation(o, o.received_at);
        self.take(t);
    }
}

/// What a replay compares.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    pub ward: &'a str,
    /// The configuration in force (its rules are the "current" side).
    pub current: &'a AlarmsConfig,
    pub proposed: &'a RuleSet,
    pub beds: &'a [String],
    pub from: Millis,
    pub to: Millis,
    /// The audit log of the period (and after it, for acknowledgements).
    pub actual: &'a [Transition],
}

/// Replays, for each bed, its stored observations: `windows(bed, from, to)` gives those
/// observed in `from..to` (called for consecutive windows of ten minutes).
pub fn replay<E>(
    r: Replay<'_>,
    mut windows: impl FnMut(&str, Millis, Millis) -> Result<Vec<Observation>, E>,
) -> Result<Report, ReplayError<E>> {
    let Replay {
        ward,
        current: cfg,
        proposed,
        beds,
        from,
        to,
        actual,
    } = r;
    proposed.validate().map_err(ReplayError::Rules)?;
    let mut proposed_cfg = cfg.clone();
    proposed_cfg.preset = proposed.preset;
    proposed_cfg.rules = proposed.rules.clone();
    proposed_cfg.beds = proposed.beds.clone();
    let start = from - WARMUP_MS;
    let mut report = Report {
        from,
        to,
        beds: beds.len(),
        ..Report::default()
    };
    let mut current_all = Vec::new();
    let mut proposed_all = Vec::new();
    const WINDOW: Millis = 10 * 60_000;
    for bed in beds {
        let mut a = Run::new(ward, cfg, start, from, to).map_err(ReplayError::Rules)?;
        let mut b = Run::new(ward, &proposed_cfg, start, from, to).map_err(ReplayError::Rules)?;
        let mut w = start;
        while w < to {
            let end = (w + WINDOW).min(to);
            let mut obs = windows(bed, w, end).map_err(ReplayError::Store)?;
            obs.sort_by_key(|o| (o.received_at, o.observed_at));
            report.observations += obs.len() as u64;
            for o in &obs {
                a.observe(o);
                b.observe(o);
            }
            w = end;
        }
        a.until(to);
        b.until(to);
        current_all.extend(a.raised());
        proposed_all.extend(b.raised());
    }
    report.current = current_all.len();
    report.proposed = proposed_all.len();
    compare(&mut report, current_all, proposed_all.clone());
    report.actionable = actionable(actual, &proposed_all, from, to);
    report.actionable_missed = report
        .actionable
        .iter()
        .filter(|a| a.outcome == "missed")
        .count();
    report.actionable_delayed = report
        .actionable
        .iter()
        .filter(|a| a.outcome == "delayed")
        .count();
    Ok(report)
}

/// A replay that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    #[error("proposed rules: {0}")]
    Rules(super::AlarmError),
    #[error("reading stored data: {0}")]
    Store(E),
}

/// Finds the proposed alarm that answers `a`: same bed and condition, raised between a minute
/// before it and its end, not taken yet.
fn answer(
    a_bed: &str,
    c: Condition,
    at: Millis,
    end: Millis,
    pool: &[Raised],
    taken: &[bool],
) -> Option<usize> {
    pool.iter().enumerate().position(|(i, b)| {
        !taken[i]
            && b.bed == a_bed
            && b.condition == c
            && b.raised_at >= at - EARLY_MS
            && b.raised_at <= end
    })
}

fn compare(report: &mut Report, mut current: Vec<Raised>, mut proposed: Vec<Raised>) {
    current.sort_by_key(|r| r.raised_at);
    proposed.sort_by_key(|r| r.raised_at);
    let mut taken = vec![false; proposed.len()];
    let mut rows: BTreeMap<(String, Condition), Row> = BTreeMap::new();
    let mut changes = Vec::new();
    let row = |rows: &mut BTreeMap<(String, Condition), Row>, bed: &str, c: Condition| {
        rows.entry((bed.to_owned(), c))
            .or_insert_with(|| Row {
                bed: bed.to_owned(),
                condition: c.as_str().to_owned(),
                ..Row::default()
            })
            .clone()
    };
    for a in &current {
        let mut r = row(&mut rows, &a.bed, a.condition);
        r.current += 1;
        let end = a.cleared_at.unwrap_or(report.to);
        match answer(&a.bed, a.condition, a.raised_at, end, &proposed, &taken) {
            Some(i) => {
                taken[i] = true;
                let b = &proposed[i];
                let shift = b.raised_at - a.raised_at;
                let kind = if shift > ON_TIME_MS {
                    r.later += 1;
                    let s = shift as f64 / 1000.0;
                    r.max_later_s = Some(r.max_later_s.map_or(s, |m: f64| m.max(s)));
                    "later"
                } else if shift < -ON_TIME_MS {
                    r.earlier += 1;
                    "earlier"
                } else {
                    r.kept += 1;
                    "kept"
                };
                if kind != "kept" {
                    changes.push(Change {
                        bed: a.bed.clone(),
                        condition: a.condition,
                        change: kind,
                        current_at: Some(a.raised_at),
                        proposed_at: Some(b.raised_at),
                        shift_s: Some(shift as f64 / 1000.0),
                        current_priority: Some(a.priority),
                        proposed_priority: Some(b.priority),
                    });
                }
            }
            None => {
                r.gone += 1;
                changes.push(Change {
                    bed: a.bed.clone(),
                    condition: a.condition,
                    change: "gone",
                    current_at: Some(a.raised_at),
                    proposed_at: None,
                    shift_s: None,
                    current_priority: Some(a.priority),
                    proposed_priority: None,
                });
            }
        }
        rows.insert((a.bed.clone(), a.condition), r);
    }
    for (i, b) in proposed.iter().enumerate() {
        let mut r = row(&mut rows, &b.bed, b.condition);
        r.proposed += 1;
        if !taken[i] {
            r.new += 1;
            changes.push(Change {
                bed: b.bed.clone(),
                condition: b.condition,
                change: "new",
                current_at: None,
                proposed_at: Some(b.raised_at),
                shift_s: None,
                current_priority: None,
                proposed_priority: Some(b.priority),
            });
        }
        rows.insert((b.bed.clone(), b.condition), r);
    }
    for r in rows.values() {
        report.kept += r.kept;
        report.later += r.later;
        report.earlier += r.earlier;
        report.gone += r.gone;
        report.new += r.new;
    }
    report.rows = rows.into_values().collect();
    changes.sort_by_key(|c| (c.current_at.or(c.proposed_at), c.bed.clone()));
    report.changes_truncated = changes.len() > MAX_LISTED;
    changes.truncate(MAX_LISTED);
    report.changes = changes;
}

/// The actionable alarms of the audit log and what the proposed rules do with them.
fn actionable(
    actual: &[Transition],
    proposed: &[Raised],
    from: Millis,
    to: Millis,
) -> Vec<Actionable> {
    let taken = vec![false; proposed.len()];
    lives(actual)
        .into_iter()
        .filter(|l| l.ack_reason() == Some(AckReason::Actionable))
        .filter_map(|l| Some((l.id.to_string(), raised_of(l, from, to)?)))
        .map(|(id, r)| {
            let end = r.cleared_at.unwrap_or(to);
            let found = answer(&r.bed, r.condition, r.raised_at, end, proposed, &taken);
            let (outcome, delayed_s) = match found.map(|i| proposed[i].raised_at - r.raised_at) {
                None => ("missed", None),
                Some(d) if d > ON_TIME_MS => ("delayed", Some(d as f64 / 1000.0)),
                Some(_) => ("kept", None),
            };
            Actionable {
                alarm: id,
                bed: r.bed,
                condition: r.condition,
                raised_at: r.raised_at,
                outcome,
                delayed_s,
            }
        })
        .collect()
}
