//! Engine tests (issue 3): table-driven transitions with explicit times, property tests for
//! condition delay and hysteresis. Restart through the store is tested in the hub
//! (`hub/src/alarms/tests.rs`).

use std::time::Duration;

use proptest::prelude::*;
use wardhub_model::{Millis, Status, MDC_NOT_AVAILABLE};

use super::*;

use crate::testing::{dev, engine, obs, S};

/// One input of a scenario, applied to device `mon-1` on bed `1` unless it says otherwise.
#[derive(Debug, Clone)]
enum In {
    /// A valid value of a metric.
    V(&'static str, f64),
    /// A value of a metric with a status.
    St(&'static str, f64, Status),
    /// A value whose device time is `skew` ms from hub time.
    Skewed(&'static str, f64, Millis),
    /// A valid value from the device now bound to another bed.
    OnBed(&'static str, &'static str, f64),
    Tick,
    /// Acknowledge the newest open alarm.
    Ack,
    /// Audio-pause the newest open alarm (seconds; None = default).
    Pause(Option<u64>),
    PauseBed(&'static str),
    Seen,
    Lwt,
    Status(&'static str),
    /// A device event payload (the JSON of the event topic).
    Ev(&'static str),
}

type Exp = (Event, Cause, Priority, AlarmState);

fn run(name: &str, e: &mut AlarmEngine, steps: &[(Millis, In, &[Exp])]) {
    for (i, (t, input, expected)) in steps.iter().enumerate() {
        let t = *t;
        let d = dev("mon-1");
        let newest = || e.open_alarms().map(|a| a.id).max().expect("an open alarm");
        let got = match input.clone() {
            In::V(m, v) => e.on_observation(&obs("mon-1", "1", m, v, Status::Valid, t), t),
            In::St(m, v, s) => e.on_observation(&obs("mon-1", "1", m, v, s, t), t),
            In::Skewed(m, v, skew) => {
                let mut o = obs("mon-1", "1", m, v, Status::Valid, t);
                o.observed_at = t + skew;
                e.on_observation(&o, t)
            }
            In::OnBed(bed, m, v) => e.on_observation(&obs("mon-1", bed, m, v, Status::Valid, t), t),
            In::Tick => e.tick(t),
            In::Ack => {
                let id = newest();
                e.acknowledge(id, "nurse.a", Some(AckReason::Actionable), Some("seen"), t)
                    .unwrap()
            }
            In::Pause(secs) => {
                let id = newest();
                e.pause_audio(
                    PauseTarget::Alarm(id),
                    "nurse.b",
                    secs.map(Duration::from_secs),
                    t,
                )
                .unwrap()
            }
            In::PauseBed(bed) => e
                .pause_audio(PauseTarget::Bed(bed), "nurse.b", None, t)
                .unwrap(),
            In::Seen => e.on_device_seen(&d, Some("1"), t),
            In::Lwt => e.on_device_offline(&d, Some("1"), t),
            In::Status(json) => {
                let s = DeviceStatus::from_json(json.as_bytes()).unwrap();
                e.on_device_status(&d, Some("1"), &s, t)
            }
            In::Ev(json) => {
                let ev = DeviceEvent::from_json(json.as_bytes()).unwrap();
                e.on_device_event(&d, Some("1"), &ev, t)
            }
        };
        let got_summary: Vec<Exp> = got
            .iter()
            .map(|t| (t.event, t.alarm.cause, t.alarm.priority, t.alarm.state))
            .collect();
        assert_eq!(
            got_summary, *expected,
            "scenario {name:?}, step {i} at {t} ms: {input:?}\n{got:#?}"
        );
        for tr in &got {
            assert_eq!(tr.at, t);
            assert_eq!(tr.alarm.kind, tr.alarm.cause.kind());
            assert_eq!(tr.announce(), tr.event != Event::Suppressed);
            // Every record survives the JSON of the audit log and the announcement.
            let back: Transition =
                serde_json::from_slice(&serde_json::to_vec(tr).unwrap()).unwrap();
            assert_eq!(&back, tr);
        }
    }
}

use AlarmState::{Acknowledged as Ackd, Active, Cleared as Clr, Suppressed as Sup};
use Cause::{BatteryLow, ClockSkew, Limit, Offline, SensorOff};
use Event::*;
use Priority::{High, Low, Medium};

#[test]
fn transitions_table() {
    // (name, alarms config JSON ("" = defaults), steps)
    #[allow(clippy::type_complexity)]
    let scenarios: Vec<(&str, &str, Vec<(Millis, In, &[Exp])>)> =
        vec![
        (
            "spo2 low matures after 15 s, desat raises the same alarm, clears with hysteresis",
            "",
            vec![
                (0, In::V("spo2", 97.0), &[]),
                (S, In::V("spo2", 88.0), &[]),
                (10 * S, In::V("spo2", 89.0), &[]),
                (16 * S - 1, In::Tick, &[]),
                (16 * S, In::Tick, &[(Raised, Limit, Medium, Active)]),
                (
                    17 * S,
                    In::V("spo2", 84.0),
                    &[(PriorityChanged, Limit, High, Active)],
                ),
                // No downgrade while unacknowledged.
                (18 * S, In::V("spo2", 88.0), &[]),
                (19 * S, In::V("spo2", 90.5), &[]),
                (20 * S, In::V("spo2", 91.0), &[(Cleared, Limit, High, Clr)]),
                (21 * S, In::Tick, &[]),
            ],
        ),
        (
            "a dip shorter than the delay is suppressed and audited",
            "",
            vec![
                (0, In::V("spo2", 88.0), &[]),
                (14 * S, In::V("spo2", 89.0), &[]),
                (
                    15 * S - 1,
                    In::V("spo2", 95.0),
                    &[(Suppressed, Limit, Medium, Sup)],
                ),
                (40 * S, In::Tick, &[]),
            ],
        ),
        (
            "values inside the clear margin keep the delay running",
            "",
            vec![
                (0, In::V("spo2", 89.0), &[]),
                (5 * S, In::V("spo2", 90.5), &[]),
                (10 * S, In::V("spo2", 89.5), &[]),
                (
                    15 * S,
                    In::V("spo2", 90.9),
                    &[(Raised, Limit, Medium, Active)],
                ),
            ],
        ),
        (
            "deep desaturation is high at once (extra tier delay 0)",
            "",
            vec![
                (0, In::V("spo2", 83.0), &[(Raised, Limit, High, Active)]),
                (5 * S, In::V("spo2", 99.0), &[(Cleared, Limit, High, Clr)]),
            ],
        ),
        (
            "HR high with 2/min hysteresis, per-bed override elsewhere",
            r#"{"beds": {"2": [{"metric": "hr", "low": 40, "high": 100}]}}"#,
            vec![
                (0, In::V("hr", 110.0), &[]),
                (S, In::V("hr", 121.0), &[(Raised, Limit, Medium, Active)]),
                (2 * S, In::V("hr", 119.0), &[]),
                (3 * S, In::V("hr", 118.0), &[(Cleared, Limit, Medium, Clr)]),
                // Moved to bed 2 (limit 100): the bed's override applies.
                (
                    4 * S,
                    In::OnBed("2", "hr", 110.0),
                    &[(Raised, Limit, Medium, Active)],
                ),
                // Moved back: alarms of the previous binding are cleared.
                (
                    5 * S,
                    In::OnBed("1", "hr", 110.0),
                    &[(Cleared, Limit, Medium, Clr)],
                ),
            ],
        ),
        (
            "latching: stays after the condition ends until acknowledged",
            r#"{"rules": [{"metric": "hr", "low": 50, "high": 120, "latching": true}]}"#,
            vec![
                (0, In::V("hr", 130.0), &[(Raised, Limit, Medium, Active)]),
                (
                    S,
                    In::V("hr", 100.0),
                    &[(ConditionEnded, Limit, Medium, Active)],
                ),
                (2 * S, In::Tick, &[]),
                (
                    3 * S,
                    In::V("hr", 125.0),
                    &[(ConditionReturned, Limit, Medium, Active)],
                ),
                (
                    4 * S,
                    In::V("hr", 100.0),
                    &[(ConditionEnded, Limit, Medium, Active)],
                ),
                (
                    5 * S,
                    In::Ack,
                    &[
                        (Acknowledged, Limit, Medium, Ackd),
                        (Cleared, Limit, Medium, Clr),
                    ],
                ),
                (6 * S, In::V("hr", 100.0), &[]),
            ],
        ),
        (
            "latching acknowledged while present clears when the condition ends",
            r#"{"rules": [{"metric": "hr", "low": 50, "high": 120, "latching": true}]}"#,
            vec![
                (0, In::V("hr", 130.0), &[(Raised, Limit, Medium, Active)]),
                (S, In::Ack, &[(Acknowledged, Limit, Medium, Ackd)]),
                (2 * S, In::V("hr", 131.0), &[]),
                (3 * S, In::V("hr", 100.0), &[(Cleared, Limit, Medium, Clr)]),
            ],
        ),
        (
            "non-latching acknowledged: follows the condition down, re-activates when worse",
            "",
            vec![
                (0, In::V("spo2", 84.0), &[(Raised, Limit, High, Active)]),
                (S, In::Ack, &[(Acknowledged, Limit, High, Ackd)]),
                (2 * S, In::V("spo2", 88.0), &[]),
                // The low tier (15 s) has matured: the acknowledged alarm drops to medium.
                (
                    15 * S,
                    In::V("spo2", 88.0),
                    &[(PriorityChanged, Limit, Medium, Ackd)],
                ),
                (
                    20 * S,
                    In::V("spo2", 84.0),
                    &[(PriorityChanged, Limit, High, Active)],
                ),
                (21 * S, In::V("spo2", 95.0), &[(Cleared, Limit, High, Clr)]),
            ],
        ),
        (
            "invalid / not-available data: sensor off, never physiological",
            "",
            vec![
                (0, In::St("spo2", 50.0, Status::Invalid), &[]),
                (
                    S,
                    In::St("spo2", MDC_NOT_AVAILABLE, Status::NotAvailable),
                    &[],
                ),
                (10 * S - 1, In::Tick, &[]),
                (10 * S, In::Tick, &[(Raised, SensorOff, Low, Active)]),
                (60 * S, In::St("spo2", 20.0, Status::Invalid), &[]),
                (
                    61 * S,
                    In::V("spo2", 97.0),
                    &[(Cleared, SensorOff, Low, Clr)],
                ),
                // A short probe-off is suppressed (and audited).
                (62 * S, In::St("spo2", 0.0, Status::Invalid), &[]),
                (
                    63 * S,
                    In::V("spo2", 97.0),
                    &[(Suppressed, SensorOff, Low, Sup)],
                ),
            ],
        ),
        (
            "questionable data is clinically usable: it raises and it clears",
            "",
            vec![
                (0, In::St("hr", 150.0, Status::Questionable), &[(Raised, Limit, Medium, Active)]),
                (S, In::St("hr", 80.0, Status::Questionable), &[(Cleared, Limit, Medium, Clr)]),
            ],
        ),
        (
            "a desaturation followed by the probe falling off still matures",
            "",
            vec![
                (0, In::V("spo2", 87.0), &[]),
                (
                    3 * S,
                    In::St("spo2", MDC_NOT_AVAILABLE, Status::NotAvailable),
                    &[],
                ),
                (13 * S, In::Tick, &[(Raised, SensorOff, Low, Active)]),
                (15 * S, In::Tick, &[(Raised, Limit, Medium, Active)]),
                (
                    16 * S,
                    In::V("spo2", 96.0),
                    &[
                        (Cleared, SensorOff, Low, Clr),
                        (Cleared, Limit, Medium, Clr),
                    ],
                ),
            ],
        ),
        (
            "audio pause runs out with the condition present: re-announced; ack ends escalation",
            "",
            vec![
                (0, In::V("spo2", 80.0), &[(Raised, Limit, High, Active)]),
                (
                    S,
                    In::Pause(Some(30)),
                    &[(AudioPaused, Limit, High, Active)],
                ),
                (31 * S - 1, In::Tick, &[]),
                (31 * S, In::Tick, &[(Reannounced, Limit, High, Active)]),
                (
                    32 * S,
                    In::PauseBed("1"),
                    &[(AudioPaused, Limit, High, Active)],
                ),
                // Pause does not stop escalation of an unacknowledged high alarm.
                (60 * S, In::Tick, &[(Escalated, Limit, High, Active)]),
                (61 * S, In::Tick, &[]),
                (152 * S, In::Tick, &[(Reannounced, Limit, High, Active)]),
                (153 * S, In::Ack, &[(Acknowledged, Limit, High, Ackd)]),
                (400 * S, In::Tick, &[]),
            ],
        ),
        (
            "escalation only when unacknowledged; medium does not escalate by default",
            "",
            vec![
                (0, In::V("spo2", 80.0), &[(Raised, Limit, High, Active)]),
                (30 * S, In::Ack, &[(Acknowledged, Limit, High, Ackd)]),
                (90 * S, In::Tick, &[]),
                (
                    91 * S,
                    In::V("hr", 130.0),
                    &[(Raised, Limit, Medium, Active)],
                ),
                (500 * S, In::Tick, &[]),
            ],
        ),
        (
            "per-rule escalation time",
            r#"{"rules": [{"metric": "hr", "low": 50, "high": 120, "escalate_after": "2m"}]}"#,
            vec![
                (0, In::V("hr", 130.0), &[(Raised, Limit, Medium, Active)]),
                (120 * S - 1, In::Tick, &[]),
                (120 * S, In::Tick, &[(Escalated, Limit, Medium, Active)]),
            ],
        ),
        (
            "priority escalation resets the escalation timer and can escalate again",
            "",
            vec![
                (0, In::V("spo2", 88.0), &[]),
                (15 * S, In::Tick, &[(Raised, Limit, Medium, Active)]),
                (
                    20 * S,
                    In::V("spo2", 82.0),
                    &[(PriorityChanged, Limit, High, Active)],
                ),
                (79 * S, In::Tick, &[]),
                (80 * S, In::Tick, &[(Escalated, Limit, High, Active)]),
            ],
        ),
        (
            "offline after 30 s of silence; data clears it",
            r#"{"technical": {"offline_after": "30s"}}"#,
            vec![
                (0, In::Seen, &[]),
                (30 * S, In::Tick, &[]),
                (30 * S + 1, In::Tick, &[(Raised, Offline, Medium, Active)]),
                (31 * S, In::Tick, &[]),
                (
                    40 * S,
                    In::V("hr", 70.0),
                    &[(Cleared, Offline, Medium, Clr)],
                ),
                (41 * S, In::Tick, &[]),
            ],
        ),
        (
            "MQTT last will: offline at once; a status clears it",
            "",
            vec![
                (0, In::V("hr", 70.0), &[]),
                (S, In::Lwt, &[(Raised, Offline, Medium, Active)]),
                (2 * S, In::Tick, &[]),
                (
                    3 * S,
                    In::Status(r#"{"online": true}"#),
                    &[(Cleared, Offline, Medium, Clr)],
                ),
            ],
        ),
        (
            "battery low, critical raises the same alarm, charging clears",
            "",
            vec![
                (
                    0,
                    In::Status(r#"{"battery_pct": 30, "charging": false}"#),
                    &[],
                ),
                (
                    S,
                    In::Status(r#"{"battery_pct": 14, "charging": false}"#),
                    &[(Raised, BatteryLow, Low, Active)],
                ),
                (
                    2 * S,
                    In::Status(r#"{"battery_pct": 9}"#),
                    &[(PriorityChanged, BatteryLow, Medium, Active)],
                ),
                (3 * S, In::Status(r#"{"battery_pct": 24}"#), &[]),
                (
                    4 * S,
                    In::Status(r#"{"battery_pct": 25}"#),
                    &[(Cleared, BatteryLow, Medium, Clr)],
                ),
                (
                    5 * S,
                    In::Status(r#"{"battery_pct": 5}"#),
                    &[(Raised, BatteryLow, Medium, Active)],
                ),
                (
                    6 * S,
                    In::Status(r#"{"battery_pct": 5, "charging": true}"#),
                    &[(Cleared, BatteryLow, Medium, Clr)],
                ),
            ],
        ),
        (
            "clock skew: must persist 30 s; a replayed backlog is not a skew",
            "",
            vec![
                (0, In::Skewed("hr", 70.0, -120 * S), &[]),
                (S, In::V("hr", 70.0), &[(Suppressed, ClockSkew, Low, Sup)]),
                (2 * S, In::Skewed("hr", 70.0, 45 * S), &[]),
                (32 * S, In::Tick, &[(Raised, ClockSkew, Low, Active)]),
                (
                    33 * S,
                    In::Skewed("hr", 70.0, 29 * S),
                    &[(Cleared, ClockSkew, Low, Clr)],
                ),
                (34 * S, In::Status(r#"{"time": 1}"#), &[]),
                (64 * S, In::Tick, &[(Raised, ClockSkew, Low, Active)]),
            ],
        ),
    ];
    for (name, rules, steps) in scenarios {
        assert!(!name.is_empty() && !steps.is_empty());
        run(name, &mut engine(rules), &steps);
    }
}

#[test]
fn alarm_record_fields() {
    let mut e = engine("");
    e.on_observation(&obs("mon-1", "7", "spo2", 88.0, Status::Valid, 1000), 1000);
    let t = e.on_observation(
        &obs("mon-1", "7", "spo2", 87.0, Status::Valid, 16_000),
        16_000,
    );
    let a = &t[0].alarm;
    assert_eq!(a.id, AlarmId(1));
    assert_eq!((a.ward.as_str(), a.bed.as_deref()), ("icu", Some("7")));
    assert_eq!(a.device_id.as_str(), "mon-1");
    assert_eq!((a.kind, a.cause), (Kind::Physiological, Cause::Limit));
    assert_eq!(a.metric.unwrap().0.name, "spo2");
    assert_eq!(
        (a.value, a.limit, a.side),
        (Some(87.0), Some(90.0), Some(Side::Below))
    );
    assert_eq!((a.condition_since, a.raised_at), (1000, 16_000));
    let json = serde_json::to_value(&t[0]).unwrap();
    assert_eq!(json["event"], "raised");
    assert_eq!(json["alarm"]["id"], "A000001");
    assert_eq!(json["alarm"]["kind"], "physiological");
    assert_eq!(json["alarm"]["metric"]["refid"], "MDC_PULS_OXIM_SAT_O2");
    assert_eq!(json["alarm"]["state"], "active");
    let back: Transition = serde_json::from_value(json).unwrap();
    assert_eq!(back, t[0]);

    let ack = e
        .acknowledge(
            a.id,
            "nurse.a",
            Some(AckReason::Artefact),
            Some("probe moved"),
            17_000,
        )
        .unwrap();
    let a = &ack[0].alarm;
    assert_eq!(ack[0].by.as_deref(), Some("nurse.a"));
    assert_eq!(a.acknowledged_by.as_deref(), Some("nurse.a"));
    assert_eq!(
        (a.acknowledged_at, a.ack_reason),
        (Some(17_000), Some(AckReason::Artefact))
    );
    assert_eq!(a.ack_note.as_deref(), Some("probe moved"));
}

#[test]
fn command_errors() {
    let mut e = engine("");
    assert!(matches!(
        e.acknowledge(AlarmId(9), "n", None, None, 0),
        Err(AlarmError::UnknownAlarm(AlarmId(9)))
    ));
    let t = e.on_observation(&obs("mon-1", "1", "spo2", 80.0, Status::Valid, 0), 0);
    let id = t[0].alarm.id;
    assert!(matches!(
        e.acknowledge(id, "", None, None, 1),
        Err(AlarmError::InvalidUser)
    ));
    assert!(matches!(
        e.acknowledge(id, "n", None, Some(&"x".repeat(501)), 1),
        Err(AlarmError::NoteTooLong)
    ));
    assert!(matches!(
        e.pause_audio(
            PauseTarget::Alarm(id),
            "n",
            Some(Duration::from_secs(3600)),
            1
        ),
        Err(AlarmError::PauseTooLong { .. })
    ));
    e.acknowledge(id, "n", None, None, 1).unwrap();
    assert!(matches!(
        e.acknowledge(id, "n", None, None, 2),
        Err(AlarmError::InvalidState { .. })
    ));
    assert!(matches!(
        e.pause_audio(PauseTarget::Alarm(id), "n", None, 2),
        Err(AlarmError::InvalidState { .. })
    ));
    // Bed pause skips acknowledged alarms.
    assert!(e
        .pause_audio(PauseTarget::Bed("1"), "n", None, 2)
        .unwrap()
        .is_empty());
}

#[test]
fn rule_changes_apply_to_open_alarms() {
    let mut e = engine("");
    let t = e.on_observation(&obs("mon-1", "1", "hr", 125.0, Status::Valid, 0), 0);
    assert_eq!(t[0].event, Event::Raised);
    let mut rs = e.rules().clone();
    rs.rules = serde_json::from_str(r#"[{"metric": "hr", "enabled": false}]"#).unwrap();
    e.set_rules(rs).unwrap();
    let t = e.tick(S);
    assert_eq!(
        (t[0].event, t[0].alarm.cause),
        (Event::Cleared, Cause::Limit)
    );
    assert!(e
        .on_observation(&obs("mon-1", "1", "hr", 200.0, Status::Valid, 2 * S), 2 * S)
        .is_empty());
    let bad: RuleSet =
        serde_json::from_str(r#"{"rules": [{"metric": "hr", "low": 9, "high": 1}]}"#).unwrap();
    assert!(e.set_rules(bad).is_err());
}

#[test]
fn forget_device_clears_its_alarms() {
    let mut e = engine("");
    e.on_observation(&obs("mon-1", "1", "hr", 125.0, Status::Valid, 0), 0);
    let t = e.forget_device(&dev("mon-1"), S);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].event, Event::Cleared);
    assert!(
        e.tick(100 * S).is_empty(),
        "a forgotten device is not watched"
    );
}

#[test]
fn deterministic_order_and_ids() {
    let drive = || {
        let mut e = engine("");
        let mut all = Vec::new();
        for d in ["z-9", "a-1", "m-5"] {
            e.on_device_seen(&dev(d), Some(d), 0);
            let mut o = obs(d, d, "spo2", 88.0, Status::Valid, 0);
            o.device_id = dev(d);
            all.extend(e.on_observation(&o, 0));
        }
        all.extend(e.tick(40 * S));
        all
    };
    let a = drive();
    assert_eq!(a, drive());
    // Matured in device order, numbered in that order, whatever the arrival order.
    let got: Vec<(u64, &str)> = a
        .iter()
        .map(|t| (t.alarm.id.0, t.alarm.device_id.as_str()))
        .collect();
    assert_eq!(got, [(1, "a-1"), (2, "m-5"), (3, "z-9")]);
}

#[test]
fn restored_offline_device_goes_offline_if_it_never_returns() {
    let mut e = engine(r#"{"technical": {"offline_after": "30s"}}"#);
    let t = e.on_observation(&obs("mon-1", "1", "hr", 130.0, Status::Valid, 0), 0);
    let mut e2 = AlarmEngine::restore(
        "icu",
        e.config().clone(),
        vec![t[0].alarm.clone()],
        2,
        100 * S,
    )
    .unwrap();
    assert!(e2.tick(130 * S).is_empty());
    let t = e2.tick(131 * S);
    assert_eq!(
        (t[0].event, t[0].alarm.cause),
        (Event::Raised, Cause::Offline)
    );
}

/// Counts events of one kind.
fn count(ts: &[Transition], ev: Event) -> usize {
    ts.iter().filter(|t| t.event == ev).count()
}

proptest! {
    /// Invalid / not-available data never raises (or touches) a physiological alarm, whatever
    /// its value; it raises sensor-off instead.
    #[test]
    fn unusable_data_never_raises_physiological(
        samples in prop::collection::vec(
            (0usize..9, -10.0f64..9e6, prop::bool::ANY, 0i64..3000),
            1..200,
        ),
    ) {
        let mut e = engine("");
        let mut t = 0;
        let mut ts = Vec::new();
        for (m, v, na, dt) in samples {
            t += dt;
            let status = if na { Status::NotAvailable } else { Status::Invalid };
            let metric = wardhub_model::METRICS[m].name;
            ts.extend(e.on_observation(&obs("m", "b", metric, v, status, t), t));
            ts.extend(e.tick(t));
        }
        ts.extend(e.tick(t + 60 * S));
        prop_assert!(ts.iter().all(|t| t.alarm.cause == Cause::SensorOff), "{:#?}", ts);
        prop_assert!(ts.iter().any(|t| t.event == Event::Raised));
    }

    /// A condition sustained at least its delay raises exactly one alarm; a shorter one raises
    /// none (and is audited as suppressed). Samples and ticks arrive every second; `silent`
    /// makes the data stop (probe off) after the first sample instead.
    #[test]
    fn delay_gives_exactly_one_or_none(
        delay_s in 0u64..60,
        k in 0i64..90,
        lows in prop::collection::vec(30.0f64..49.9, 90),
        recovery in 52.0f64..110.0,
        silent in any::<bool>(),
    ) {
        let rules = format!(
            r#"{{"preset": "none", "rules": [{{"metric": "hr", "low": 50, "hysteresis": 2, "delay": "{delay_s}s", "priority": "high"}}]}}"#
        );
        let mut e = engine(&rules);
        let mut ts = Vec::new();
        ts.extend(e.on_observation(&obs("m", "b", "hr", 70.0, Status::Valid, 0), 0));
        let t0 = S;
        for j in 0..=k {
            let t = t0 + j * S;
            let status = if silent && j > 0 { Status::NotAvailable } else { Status::Valid };
            ts.extend(e.on_observation(&obs("m", "b", "hr", lows[j as usize], status, t), t));
            ts.extend(e.tick(t + S / 2));
        }
        let end = t0 + (k + 1) * S;
        let limits: Vec<Transition> = {
            ts.extend(e.on_observation(&obs("m", "b", "hr", recovery, Status::Valid, end), end));
            ts.extend(e.tick(end + 200 * S));
            ts.into_iter().filter(|t| t.alarm.cause == Cause::Limit).collect()
        };
        // The condition lasted from `t0` until `end`. Guards "a condition that outlasted its
        // delay is logged as suppressed when its end arrives before the next tick": whether it
        // matured does not depend on where the ticks fell.
        let matured = (delay_s as i64) * S <= end - t0;
        let raised = count(&limits, Event::Raised);
        prop_assert_eq!(raised, usize::from(matured), "{:#?}", limits);
        prop_assert_eq!(count(&limits, Event::Suppressed), usize::from(!matured));
        prop_assert_eq!(count(&limits, Event::Cleared), raised);
        prop_assert!(e.open_alarms().all(|a| a.cause != Cause::Limit));
    }

    /// Values flapping around a limit with hysteresis give at most one alarm per excursion
    /// (an excursion starts below the limit and ends at limit + hysteresis or above), and each
    /// finished excursion is either one alarm or one audited suppression.
    #[test]
    fn hysteresis_one_alarm_per_excursion(
        values in prop::collection::vec(87.0f64..93.0, 1..300),
        delay_s in prop::sample::select(vec![0u64, 2, 5]),
        hysteresis in prop::sample::select(vec![0.0f64, 0.5, 1.0, 2.0]),
        latching in any::<bool>(),
    ) {
        let rules = format!(
            r#"{{"preset": "none", "rules": [{{"metric": "spo2", "low": 90, "hysteresis": {hysteresis}, "delay": "{delay_s}s", "latching": {latching}}}]}}"#
        );
        let mut e = engine(&rules);
        let mut ts = Vec::new();
        let (mut excursions, mut inside) = (0usize, false);
        for (i, v) in values.iter().enumerate() {
            let t = i as i64 * S;
            if !inside && *v < 90.0 {
                inside = true;
                excursions += 1;
            } else if inside && *v >= 90.0 + hysteresis {
                inside = false;
            }
            ts.extend(e.on_observation(&obs("m", "b", "spo2", *v, Status::Valid, t), t));
        }
        let raised = count(&ts, Event::Raised);
        let suppressed = count(&ts, Event::Suppressed);
        let returned = count(&ts, Event::ConditionReturned);
        // A latched alarm absorbs later excursions as "condition returned" instead.
        prop_assert!(raised + returned <= excursions);
        prop_assert!(raised + suppressed + returned <= excursions);
        prop_assert!(excursions <= raised + suppressed + returned + usize::from(inside));
        if delay_s == 0 && !latching {
            prop_assert_eq!(raised, excursions);
            prop_assert_eq!(suppressed, 0);
        }
        // At most one open alarm for the metric at any time.
        prop_assert!(e.open_alarms().count() <= 1);
    }
}

/// Rough per-observation cost on the no-transition path (run with `--release --ignored`).
#[test]
#[ignore]
fn throughput() {
    let mut e = engine("");
    let devices: Vec<String> = (0..2000).map(|i| format!("mon-{i:04}")).collect();
    let metrics = ["hr", "spo2", "rr", "nibp_sys", "temp", "pr"];
    let values = [70.0, 97.0, 14.0, 120.0, 37.0, 70.0];
    let mut batch = Vec::new();
    for d in &devices {
        for (m, v) in metrics.iter().zip(values) {
            batch.push(obs(d, d, m, v, Status::Valid, 0));
        }
    }
    let start = std::time::Instant::now();
    let mut n = 0u64;
    let mut transitions = 0;
    for round in 0..50i64 {
        let now = round * S;
        for o in &batch {
            transitions += e.on_observation(o, now).len();
            n += 1;
        }
        transitions += e.tick(now).len();
    }
    let el = start.elapsed();
    assert_eq!(transitions, 0);
    eprintln!(
        "{n} observations + 50 ticks over 2000 devices in {el:?}: {:.0} obs/s",
        n as f64 / el.as_secs_f64()
    );
}

#[test]
fn restored_acknowledged_desat_keeps_its_priority() {
    let mut e = engine("");
    let t = e.on_observation(&obs("m", "b", "spo2", 80.0, Status::Valid, 0), 0);
    e.acknowledge(t[0].alarm.id, "n", None, None, S).unwrap();
    let open: Vec<Alarm> = e.open_alarms().cloned().collect();
    let mut e2 =
        AlarmEngine::restore("icu", e.config().clone(), open.clone(), e.next_id(), 2 * S).unwrap();
    assert!(e2.tick(20 * S).is_empty());
    assert_eq!(e2.open_alarms().cloned().collect::<Vec<_>>(), open);
    let t = e2.on_observation(&obs("m", "b", "spo2", 97.0, Status::Valid, 21 * S), 21 * S);
    assert_eq!(
        (t[0].event, t[0].alarm.priority),
        (Event::Cleared, Priority::High)
    );
}

const CALL_ON: In = In::Ev(r#"{"event": "nurse_call", "active": true, "seq": 1}"#);
const CALL_OFF: In = In::Ev(r#"{"event": "nurse_call", "active": false}"#);
const EXIT_ON: In = In::Ev(r#"{"event": "bed_exit"}"#);
const EXIT_OFF: In = In::Ev(r#"{"event": "bed_exit", "active": false}"#);
const OCCL_ON: In = In::Ev(r#"{"event": "pump_occlusion", "active": true}"#);
const OCCL_OFF: In = In::Ev(r#"{"event": "pump_occlusion", "active": false}"#);
const EOI_ON: In = In::Ev(r#"{"event": "end_of_infusion", "active": true}"#);
const EOI_OFF: In = In::Ev(r#"{"event": "end_of_infusion", "active": false}"#);

/// Device events (nurse call, bed exit, pump occlusion, end of infusion) through the same
/// alarm life as every other alarm.
#[test]
fn device_events_table() {
    use Cause::{BedExit, EndOfInfusion, NurseCall, PumpOcclusion};
    #[allow(clippy::type_complexity)]
    let scenarios: Vec<(&str, &str, Vec<(Millis, In, &[Exp])>)> = vec![
        (
            "nurse call: medium, latching: a released call still needs its acknowledgement",
            "",
            vec![
                (0, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
                // A QoS 1 duplicate (or a second press) opens no second alarm.
                (S, CALL_ON, &[]),
                (
                    2 * S,
                    CALL_OFF,
                    &[(ConditionEnded, NurseCall, Medium, Active)],
                ),
                (3 * S, CALL_OFF, &[]),
                (30 * S, In::Tick, &[]),
                (
                    40 * S,
                    In::Ack,
                    &[
                        (Acknowledged, NurseCall, Medium, Ackd),
                        (Cleared, NurseCall, Medium, Clr),
                    ],
                ),
                (41 * S, CALL_OFF, &[]),
                // A new call is a new alarm.
                (42 * S, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
            ],
        ),
        (
            "nurse call acknowledged while pressed clears when released",
            "",
            vec![
                (0, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
                (S, In::Ack, &[(Acknowledged, NurseCall, Medium, Ackd)]),
                (2 * S, CALL_ON, &[]),
                (3 * S, CALL_OFF, &[(Cleared, NurseCall, Medium, Clr)]),
            ],
        ),
        (
            "nurse call pressed again before the acknowledgement: the same alarm returns",
            "",
            vec![
                (0, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
                (S, CALL_OFF, &[(ConditionEnded, NurseCall, Medium, Active)]),
                (
                    2 * S,
                    CALL_ON,
                    &[(ConditionReturned, NurseCall, Medium, Active)],
                ),
                (
                    3 * S,
                    CALL_OFF,
                    &[(ConditionEnded, NurseCall, Medium, Active)],
                ),
            ],
        ),
        (
            "bed exit: high, not latching, escalates when unacknowledged for 60 s",
            "",
            vec![
                (0, EXIT_ON, &[(Raised, BedExit, High, Active)]),
                (S, EXIT_ON, &[]),
                (60 * S - 1, In::Tick, &[]),
                (60 * S, In::Tick, &[(Escalated, BedExit, High, Active)]),
                (61 * S, In::Tick, &[]),
                (62 * S, EXIT_OFF, &[(Cleared, BedExit, High, Clr)]),
                (63 * S, EXIT_OFF, &[]),
            ],
        ),
        (
            "pump occlusion: high; an audio pause reminds, an acknowledgement stops escalation",
            "",
            vec![
                (0, OCCL_ON, &[(Raised, PumpOcclusion, High, Active)]),
                (
                    S,
                    In::Pause(Some(30)),
                    &[(AudioPaused, PumpOcclusion, High, Active)],
                ),
                (
                    31 * S,
                    In::Tick,
                    &[(Reannounced, PumpOcclusion, High, Active)],
                ),
                (
                    32 * S,
                    In::Ack,
                    &[(Acknowledged, PumpOcclusion, High, Ackd)],
                ),
                (200 * S, In::Tick, &[]),
                (201 * S, OCCL_OFF, &[(Cleared, PumpOcclusion, High, Clr)]),
            ],
        ),
        (
            "end of infusion: low, clears when a new bag is hung",
            "",
            vec![
                (0, EOI_ON, &[(Raised, EndOfInfusion, Low, Active)]),
                (S, EOI_ON, &[]),
                (600 * S, In::Tick, &[]),
                (601 * S, EOI_OFF, &[(Cleared, EndOfInfusion, Low, Clr)]),
            ],
        ),
        (
            "an end without a start changes nothing",
            "",
            vec![
                (0, EXIT_OFF, &[]),
                (S, CALL_OFF, &[]),
                (2 * S, In::Tick, &[]),
            ],
        ),
        (
            "each kind is its own alarm; a bed audio pause covers them",
            "",
            vec![
                (0, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
                (0, EXIT_ON, &[(Raised, BedExit, High, Active)]),
                (0, OCCL_ON, &[(Raised, PumpOcclusion, High, Active)]),
                (
                    S,
                    In::PauseBed("1"),
                    &[
                        (AudioPaused, NurseCall, Medium, Active),
                        (AudioPaused, BedExit, High, Active),
                        (AudioPaused, PumpOcclusion, High, Active),
                    ],
                ),
                (2 * S, EXIT_OFF, &[(Cleared, BedExit, High, Clr)]),
            ],
        ),
        (
            "configured: a field left out keeps the kind's default",
            r#"{"events": {"nurse_call": {"latching": false},
                           "bed_exit": {"priority": "medium", "latching": true}}}"#,
            vec![
                (0, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
                (S, CALL_OFF, &[(Cleared, NurseCall, Medium, Clr)]),
                (2 * S, EXIT_ON, &[(Raised, BedExit, Medium, Active)]),
                (
                    3 * S,
                    EXIT_OFF,
                    &[(ConditionEnded, BedExit, Medium, Active)],
                ),
                (4 * S, OCCL_ON, &[(Raised, PumpOcclusion, High, Active)]),
            ],
        ),
        (
            "an event is a sign of life",
            r#"{"technical": {"offline_after": "30s"}}"#,
            vec![
                (0, In::Seen, &[]),
                (20 * S, EOI_ON, &[(Raised, EndOfInfusion, Low, Active)]),
                (45 * S, In::Tick, &[]),
                (51 * S, In::Tick, &[(Raised, Offline, Medium, Active)]),
                (52 * S, EOI_ON, &[(Cleared, Offline, Medium, Clr)]),
            ],
        ),
        (
            "a device bound to another bed: its event alarms end",
            "",
            vec![
                (0, CALL_ON, &[(Raised, NurseCall, Medium, Active)]),
                (
                    S,
                    In::OnBed("2", "hr", 70.0),
                    &[(Cleared, NurseCall, Medium, Clr)],
                ),
            ],
        ),
    ];
    for (name, config, steps) in scenarios {
        let mut e = engine(config);
        run(name, &mut e, &steps);
    }
}

#[test]
fn device_event_alarm_records() {
    let mut e = engine("");
    let d = dev("call-4");
    let ev = |k, active| DeviceEvent::new(k, active);
    let t = e.on_device_event(&d, Some("4"), &ev(EventKind::NurseCall, true), 5 * S);
    let a = &t[0].alarm;
    assert_eq!((a.kind, a.cause), (Kind::Call, Cause::NurseCall));
    assert_eq!(
        (a.bed.as_deref(), a.device_id.as_str()),
        (Some("4"), "call-4")
    );
    assert!(a.latching && a.condition_present);
    assert_eq!(
        (a.metric, a.value, a.limit, a.side),
        (None, None, None, None)
    );
    assert_eq!((a.condition_since, a.raised_at), (5 * S, 5 * S));
    let json = serde_json::to_value(&t[0]).unwrap();
    assert_eq!(json["alarm"]["kind"], "call");
    assert_eq!(json["alarm"]["cause"], "nurse_call");
    assert_eq!(json["alarm"]["priority"], "medium");
    assert_eq!(json["alarm"]["metric"], serde_json::Value::Null);

    let expect = [
        (EventKind::BedExit, Kind::Call, Priority::High, "bed_exit"),
        (
            EventKind::PumpOcclusion,
            Kind::Technical,
            Priority::High,
            "pump_occlusion",
        ),
        (
            EventKind::EndOfInfusion,
            Kind::Technical,
            Priority::Low,
            "end_of_infusion",
        ),
    ];
    for (k, kind, priority, cause) in expect {
        let t = e.on_device_event(&d, Some("4"), &ev(k, true), 6 * S);
        let a = &t[0].alarm;
        assert_eq!((a.kind, a.priority, a.latching), (kind, priority, false));
        assert_eq!(serde_json::to_value(a).unwrap()["cause"], cause);
        assert_eq!(Kind::Call.as_str(), "call");
    }
    assert_eq!(e.open_alarms().count(), 4);
    // Unbinding the device ends them.
    let t = e.forget_device(&d, 7 * S);
    assert_eq!(count(&t, Event::Cleared), 4);
}

#[test]
fn events_config_shape() {
    let cfg: AlarmsConfig = toml::from_str(
        r#"
        [events.bed_exit]
        priority = "medium"
        [events.nurse_call]
        latching = false
        "#,
    )
    .unwrap();
    let ev = cfg.events;
    assert_eq!(
        ev.bed_exit,
        EventConfig {
            priority: Priority::Medium,
            latching: false
        }
    );
    assert_eq!(
        ev.nurse_call,
        EventConfig {
            priority: Priority::Medium,
            latching: false
        }
    );
    assert_eq!(ev.pump_occlusion, EventsConfig::default().pump_occlusion);
    let d = EventsConfig::default();
    assert_eq!(
        [
            d.nurse_call,
            d.bed_exit,
            d.pump_occlusion,
            d.end_of_infusion
        ]
        .map(|c| (c.priority, c.latching)),
        [
            (Priority::Medium, true),
            (Priority::High, false),
            (Priority::High, false),
            (Priority::Low, false)
        ]
    );
    // Round trips (TOML and the JSON of the API), and typos are refused.
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<AlarmsConfig>(&text).unwrap(), cfg);
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<AlarmsConfig>(&json).unwrap(), cfg);
    assert!(toml::from_str::<AlarmsConfig>("[events.nurse_cal]\nlatching = true").is_err());
    assert!(toml::from_str::<AlarmsConfig>("[events.bed_exit]\nlatch = true").is_err());
    assert!(toml::from_str::<AlarmsConfig>("[events.bed_exit]\npriority = \"urgent\"").is_err());
}
