//! Alarm-burden KPIs for the charge nurse (issue 15): what the alarms of a period cost the
//! ward and how they were answered, computed from the audit log.
//!
//! - raised alarms per bed per day, by priority, kind and cause (condition);
//! - how they were acknowledged: actionable, non-actionable, artefact (the nurse's reason),
//!   acknowledged without a reason, or never (cleared by themselves, or still open);
//! - time to acknowledge (p50, p90, max) from raising;
//! - the share that cleared by themselves within 10 s;
//! - the top beds and top causes.
//!
//! Beds are locations, never patients; nothing here names a person.

use std::collections::BTreeMap;

use serde::Serialize;
use wardhub_model::Millis;

use super::lives::{lives, Life};
use super::record::{AckReason, Priority, Transition};

/// How many top beds and causes are listed.
pub const TOP: usize = 5;

/// The KPIs of a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Kpis {
    pub from: Millis,
    pub to: Millis,
    /// Beds the rate is per (the ward's beds).
    pub beds: usize,
    pub raised: usize,
    pub per_bed_per_day: f64,
    pub by_priority: BTreeMap<&'static str, usize>,
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Per cause: the condition (`tachycardia`, `sensor_off`, …), or the cause of a record
    /// written before conditions existed.
    pub by_cause: BTreeMap<&'static str, usize>,
    /// `actionable`, `non_actionable`, `artefact`, `no_reason` (acknowledged without one),
    /// `not_acknowledged` (cleared by itself or still open).
    pub acknowledged: BTreeMap<&'static str, usize>,
    /// Seconds from raising to acknowledgement.
    pub time_to_ack_s: Percentiles,
    /// Share (0..1) of raised alarms cleared without acknowledgement within 10 s.
    pub self_cleared_within_10s: f64,
    pub top_beds: Vec<Count>,
    pub top_causes: Vec<Count>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    pub name: String,
    pub raised: usize,
    pub high: usize,
}

/// The KPI name of an alarm's cause: its condition, or the cause of a record of before
/// conditions.
fn cause_name(l: &Life) -> &'static str {
    match l.condition {
        Some(c) => c.as_str(),
        None => l.cause.as_str(),
    }
}

/// Computes the KPIs of the alarms raised in `from..to` from their transitions (the audit log
/// of the period and a little after, so that their acknowledgements are seen), for a ward of
/// `beds` beds.
pub fn compute(transitions: &[Transition], from: Millis, to: Millis, beds: usize) -> Kpis {
    let lives: Vec<Life> = lives(transitions)
        .into_iter()
        .filter(|l| (from..to).contains(&l.raised_at))
        .collect();
    let mut k = Kpis {
        from,
        to,
        beds,
        raised: lives.len(),
        ..Kpis::default()
    };
    let days = ((to - from) as f64 / 86_400_000.0).max(1e-9);
    k.per_bed_per_day = lives.len() as f64 / beds.max(1) as f64 / days;
    for p in [Priority::High, Priority::Medium, Priority::Low] {
        k.by_priority.insert(p.as_str(), 0);
    }
    for key in [
        "actionable",
        "non_actionable",
        "artefact",
        "no_reason",
        "not_acknowledged",
    ] {
        k.acknowledged.insert(key, 0);
    }
    let mut to_ack = Vec::new();
    let mut quick = 0;
    let mut per_bed: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut per_cause: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for l in &lives {
        let p = l.priority;
        *k.by_priority.entry(p.as_str()).or_default() += 1;
        *k.by_kind.entry(l.kind.as_str()).or_default() += 1;
        let cause = cause_name(l);
        *k.by_cause.entry(cause).or_default() += 1;
        let high = usize::from(p == Priority::High);
        let c = per_cause.entry(cause).or_default();
        c.0 += 1;
        c.1 += high;
        if let Some(bed) = &l.bed {
            let b = per_bed.entry(bed.clone()).or_default();
            b.0 += 1;
            b.1 += high;
        }
        // The first acknowledgement counts (a worsened alarm is acknowledged again).
        let answer = match l.acknowledged() {
            Some(ack) => {
                to_ack.push((ack.at - l.raised_at).max(0) as f64 / 1000.0);
                ack.reason.map_or("no_reason", AckReason::as_str)
            }
            None => {
                if l.self_cleared_within(10_000) {
                    quick += 1;
                }
                "not_acknowledged"
            }
        };
        *k.acknowledged.entry(answer).or_default() += 1;
    }
    k.self_cleared_within_10s = quick as f64 / lives.len().max(1) as f64;
    to_ack.sort_by(f64::total_cmp);
    let q = |f: f64| -> Option<f64> {
        (!to_ack.is_empty()).then(|| to_ack[((to_ack.len() - 1) as f64 * f).round() as usize])
    };
    k.time_to_ack_s = Percentiles {
        count: to_ack.len(),
        p50: q(0.5),
        p90: q(0.9),
        max: to_ack.last().copied(),
    };
    let top = |m: Vec<(String, (usize, usize))>| -> Vec<Count> {
        let mut v: Vec<Count> = m
            .into_iter()
            .map(|(name, (raised, high))| Count { name, raised, high })
            .collect();
        v.sort_by(|a, b| b.raised.cmp(&a.raised).then(a.name.cmp(&b.name)));
        v.truncate(TOP);
        v
    };
    k.top_beds = top(per_bed.into_iter().collect());
    k.top_causes = top(per_cause
        .into_iter()
        .map(|(c, n)| (c.to_owned(), n))
        .collect());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine, obs, S};
    use wardhub_model::Status;

    /// A day of a small ward, table-driven: who raised what, who answered how.
    #[test]
    fn kpis_of_a_known_day() {
        let mut e = engine("");
        let mut log = Vec::new();
        // bed 1: a high desaturation, acknowledged as actionable after 30 s.
        log.extend(e.on_observation(&obs("mon-1", "1", "spo2", 80.0, Status::Valid, 0), 0));
        let desat = log[0].alarm.id;
        log.extend(
            e.acknowledge(desat, "nurse.a", Some(AckReason::Actionable), None, 30 * S)
                .unwrap(),
        );
        // bed 2: a medium tachycardia, acknowledged as artefact after 90 s.
        let t = e.on_observation(&obs("mon-2", "2", "hr", 140.0, Status::Valid, S), S);
        let tachy = t[0].alarm.id;
        log.extend(t);
        log.extend(
            e.acknowledge(tachy, "nurse.b", Some(AckReason::Artefact), None, 91 * S)
                .unwrap(),
        );
        // bed 3: a bradycardia that clears by itself after 4 s.
        log.extend(e.on_observation(
            &obs("mon-3", "3", "hr", 40.0, Status::Valid, 100 * S),
            100 * S,
        ));
        log.extend(e.on_observation(
            &obs("mon-3", "3", "hr", 70.0, Status::Valid, 104 * S),
            104 * S,
        ));
        // Raised after the period: not counted.
        log.extend(e.on_observation(
            &obs("mon-4", "4", "hr", 140.0, Status::Valid, 2_000 * S),
            2_000 * S,
        ));
        let k = compute(&log, 0, 1_000 * S, 4);
        assert_eq!(k.raised, 3);
        assert_eq!(
            (
                k.by_priority["high"],
                k.by_priority["medium"],
                k.by_priority["low"]
            ),
            (1, 2, 0)
        );
        assert_eq!(k.by_cause["desaturation"], 1);
        assert_eq!(k.by_cause["tachycardia"], 1);
        assert_eq!(k.by_cause["bradycardia"], 1);
        assert_eq!(k.acknowledged["actionable"], 1);
        assert_eq!(k.acknowledged["artefact"], 1);
        assert_eq!(k.acknowledged["not_acknowledged"], 1);
        assert_eq!(k.time_to_ack_s.count, 2);
        assert_eq!(k.time_to_ack_s.p50, Some(90.0));
        assert_eq!(k.time_to_ack_s.max, Some(90.0));
        assert!((k.self_cleared_within_10s - 1.0 / 3.0).abs() < 1e-9);
        // 3 alarms, 4 beds, 1000 s.
        assert!((k.per_bed_per_day - 3.0 / 4.0 / (1000.0 / 86_400.0)).abs() < 1e-6);
        assert_eq!(k.top_beds[0].name, "1");
        assert_eq!(k.top_beds.len(), 3);
        assert_eq!(k.top_causes.iter().map(|c| c.raised).sum::<usize>(), 3);
    }
}
