//! One alarm per condition (issue 15, "one event, many alarms") and the shipped presets.

use wardhub_model::{Millis, Status};

use super::*;
use crate::testing::{engine, obs, S};

fn feed(e: &mut AlarmEngine, t: Millis, data: &[(&str, &str, f64)]) -> Vec<Transition> {
    let mut out = Vec::new();
    for (device, metric, v) in data {
        out.extend(e.on_observation(&obs(device, "7", metric, *v, Status::Valid, t), t));
    }
    out.extend(e.tick(t));
    out
}

fn open_physiological(e: &AlarmEngine) -> Vec<&Alarm> {
    e.open_alarms()
        .filter(|a| a.kind == Kind::Physiological)
        .collect()
}

fn sources(a: &Alarm) -> Vec<(String, String)> {
    let mut v: Vec<_> = a
        .sources
        .iter()
        .map(|s| {
            (
                s.device_id.to_string(),
                s.metric.map_or("", |m| m.0.name).to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Guards "a tachycardia gave 3 alarms (ECG HR, pulse rate, wearable HR)": one alarm, three
/// sources; it clears only when the last source recovers.
#[test]
fn ecg_pulse_and_wearable_heart_rate_are_one_tachycardia() {
    let mut e = engine("");
    let mut all = Vec::new();
    for i in 0..10 {
        all.extend(feed(
            &mut e,
            i * S,
            &[
                ("mon-7", "hr", 135.0),
                ("mon-7", "pr", 134.0),
                ("wear-7", "hr", 133.0),
            ],
        ));
    }
    let raised: Vec<_> = all.iter().filter(|t| t.event == Event::Raised).collect();
    assert_eq!(raised.len(), 1, "{raised:#?}");
    let open = open_physiological(&e);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].condition, Some(Condition::Tachycardia));
    assert_eq!(
        sources(open[0]),
        [
            ("mon-7".into(), "hr".into()),
            ("mon-7".into(), "pr".into()),
            ("wear-7".into(), "hr".into())
        ]
    );
    // Two of three recover: still one alarm, one source.
    feed(
        &mut e,
        10 * S,
        &[("mon-7", "hr", 80.0), ("mon-7", "pr", 80.0)],
    );
    let open = open_physiological(&e);
    assert_eq!(sources(open[0]), [("wear-7".into(), "hr".into())]);
    assert!(open[0].condition_present);
    // The last one recovers: cleared.
    let t = feed(&mut e, 11 * S, &[("wear-7", "hr", 80.0)]);
    assert_eq!(
        t.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Cleared]
    );
    assert!(open_physiological(&e).is_empty());
}

/// The alarm's priority is the most severe matured tier of any source: the wearable's SpO2 at
/// 83 makes the bed's one desaturation high, though the monitor reads 88.
#[test]
fn desaturation_seen_by_monitor_and_wearable_takes_the_worse() {
    let mut e = engine("");
    let mut all = Vec::new();
    for i in 0..16 {
        all.extend(feed(
            &mut e,
            i * S,
            &[("mon-7", "spo2", 88.0), ("wear-7", "spo2", 88.0)],
        ));
    }
    assert_eq!(all.iter().filter(|t| t.event == Event::Raised).count(), 1);
    let t = feed(
        &mut e,
        16 * S,
        &[("mon-7", "spo2", 88.0), ("wear-7", "spo2", 83.0)],
    );
    assert_eq!(
        t.iter()
            .map(|t| (t.event, t.alarm.priority))
            .collect::<Vec<_>>(),
        [(Event::PriorityChanged, Priority::High)]
    );
    let a = &open_physiological(&e)[0];
    assert_eq!((a.value, a.device_id.as_str()), (Some(83.0), "mon-7"));
    assert_eq!(open_physiological(&e).len(), 1);
}

/// Guards "an apnoea gave 5 alarms": RR 0 and etCO2 0 are one high-priority low-breathing
/// alarm in the adult preset, raised within 10 s.
#[test]
fn apnoea_is_one_high_priority_alarm_in_the_adult_preset() {
    let mut e = engine(r#"{"preset": "adult"}"#);
    let mut all = Vec::new();
    for i in 0..45 {
        all.extend(feed(
            &mut e,
            i * S,
            &[
                ("mon-7", "rr", 0.0),
                ("mon-7", "etco2", 0.0),
                ("vent-7", "rr", 0.0),
            ],
        ));
    }
    let raised: Vec<_> = all.iter().filter(|t| t.event == Event::Raised).collect();
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0].at, 10 * S, "the apnoea tier's 10 s delay");
    let a = &open_physiological(&e)[0];
    assert_eq!(
        (a.condition, a.priority),
        (Some(Condition::LowBreathing), Priority::High)
    );
    assert_eq!(a.sources.len(), 3);
}

/// Guards "HR 153 and systolic 71 / mean 50 were medium": extreme tachycardia and severe
/// hypotension are high priority in the adult preset; an ordinary excursion is medium.
#[test]
fn adult_preset_priorities() {
    let cases: &[(&str, f64, u64, Condition, Priority)] = &[
        ("hr", 153.0, 3, Condition::Tachycardia, Priority::High),
        ("hr", 130.0, 10, Condition::Tachycardia, Priority::Medium),
        ("hr", 38.0, 3, Condition::Bradycardia, Priority::High),
        ("nibp_sys", 71.0, 0, Condition::Hypotension, Priority::High),
        ("nibp_mean", 50.0, 0, Condition::Hypotension, Priority::High),
        (
            "nibp_sys",
            85.0,
            0,
            Condition::Hypotension,
            Priority::Medium,
        ),
        ("spo2", 84.0, 5, Condition::Desaturation, Priority::High),
        ("spo2", 88.0, 15, Condition::Desaturation, Priority::Medium),
        ("temp", 39.6, 30, Condition::Fever, Priority::Medium),
    ];
    for &(metric, v, delay_s, condition, priority) in cases {
        let mut e = engine(r#"{"preset": "adult"}"#);
        let mut first = None;
        for i in 0..=delay_s as i64 + 1 {
            let t = feed(&mut e, i * S, &[("mon-7", metric, v)]);
            if let Some(r) = t.iter().find(|t| t.event == Event::Raised) {
                first.get_or_insert((i, r.alarm.condition, r.alarm.priority));
            }
        }
        assert_eq!(
            first,
            Some((delay_s as i64, Some(condition), priority)),
            "{metric} = {v}"
        );
    }
}

#[test]
fn paediatric_preset_validates_and_differs_where_children_do() {
    let rs = RuleSet {
        preset: Preset::Paediatric,
        ..RuleSet::default()
    };
    rs.validate().unwrap();
    let eff = rs.effective(None);
    let get = |n: &str| eff.iter().find(|r| r.metric.name == n).unwrap();
    assert_eq!((get("hr").low, get("hr").high), (Some(60.0), Some(160.0)));
    assert_eq!((get("rr").low, get("rr").high), (Some(12.0), Some(40.0)));
    assert_eq!(get("rr").extra_low, Some(1.0), "apnoea");
    let cfg: AlarmsConfig = toml::from_str("preset = \"pediatric\"").unwrap();
    assert_eq!(cfg.preset, Preset::Paediatric);
    // A child's HR of 150 is no alarm; an adult's is.
    let mut child = engine(r#"{"preset": "paediatric"}"#);
    let mut adult = engine(r#"{"preset": "adult"}"#);
    let (mut c, mut a) = (0, 0);
    for i in 0..20 {
        c += feed(&mut child, i * S, &[("mon-7", "hr", 150.0)]).len();
        a += feed(&mut adult, i * S, &[("mon-7", "hr", 150.0)]).len();
    }
    assert_eq!((c, a), (0, 1));
}

/// Guards "sensor off is raised per metric, so one motion artefact gives 3 technical alarms":
/// one sensor-off alarm per device, listing the metrics without signal.
#[test]
fn sensor_off_is_one_alarm_per_device() {
    let mut e = engine("");
    let mut all = Vec::new();
    for i in 0..12 {
        let t = i * S;
        for m in ["hr", "pr", "spo2"] {
            all.extend(e.on_observation(&obs("mon-7", "7", m, 0.0, Status::Invalid, t), t));
        }
        all.extend(e.tick(t));
    }
    let raised: Vec<_> = all.iter().filter(|t| t.event == Event::Raised).collect();
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0].alarm.condition, Some(Condition::SensorOff));
    assert_eq!(raised[0].alarm.sources.len(), 3);
    // Another device's probe is its own alarm.
    for i in 12..24 {
        let t = i * S;
        all.extend(e.on_observation(&obs("wear-7", "7", "spo2", 0.0, Status::Invalid, t), t));
        all.extend(e.tick(t));
    }
    assert_eq!(all.iter().filter(|t| t.event == Event::Raised).count(), 2);
}

/// Two sources within their delay that both recover are one audited suppression, not two.
#[test]
fn a_short_dip_seen_twice_is_one_suppression() {
    let mut e = engine("");
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend(feed(
            &mut e,
            i * S,
            &[("mon-7", "spo2", 88.0), ("wear-7", "spo2", 88.0)],
        ));
    }
    all.extend(feed(
        &mut e,
        5 * S,
        &[("mon-7", "spo2", 97.0), ("wear-7", "spo2", 97.0)],
    ));
    assert_eq!(
        all.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Suppressed]
    );
}

/// A restart keeps a condition's alarm with all its sources: the next evaluations neither
/// raise a second one nor lose a source.
#[test]
fn a_restored_alarm_keeps_its_sources() {
    let mut e = engine("");
    for i in 0..3 {
        feed(
            &mut e,
            i * S,
            &[("mon-7", "hr", 135.0), ("wear-7", "hr", 134.0)],
        );
    }
    let open: Vec<Alarm> = e.open_alarms().cloned().collect();
    assert_eq!(open.len(), 1);
    let mut e2 =
        AlarmEngine::restore("icu", e.config().clone(), open.clone(), e.next_id(), 10 * S).unwrap();
    let t = feed(
        &mut e2,
        10 * S,
        &[("mon-7", "hr", 135.0), ("wear-7", "hr", 134.0)],
    );
    assert!(t.is_empty(), "{t:#?}");
    assert_eq!(open_physiological(&e2).len(), 1);
    assert_eq!(open_physiological(&e2)[0].sources.len(), 2);
    // One recovers, then the other: one clear, no second alarm.
    assert!(feed(&mut e2, 11 * S, &[("mon-7", "hr", 80.0)]).is_empty());
    let t = feed(&mut e2, 12 * S, &[("wear-7", "hr", 80.0)]);
    assert_eq!(
        t.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Cleared]
    );
}

/// A device moved to another bed leaves the previous bed's alarm, which stays while another
/// device still shows the condition.
#[test]
fn a_moved_device_leaves_the_condition_of_its_old_bed() {
    let mut e = engine("");
    for i in 0..3 {
        feed(
            &mut e,
            i * S,
            &[("mon-7", "hr", 135.0), ("wear-7", "hr", 134.0)],
        );
    }
    let t = 3 * S;
    let moved = e.on_observation(&obs("wear-7", "8", "hr", 70.0, Status::Valid, t), t);
    assert!(moved.is_empty(), "{moved:#?}");
    let a = &open_physiological(&e)[0];
    assert_eq!(sources(a), [("mon-7".into(), "hr".into())]);
    // And when the last source moves, the alarm goes with a note.
    let gone = e.on_observation(&obs("mon-7", "9", "hr", 70.0, Status::Valid, t), t);
    assert_eq!(
        gone.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Cleared]
    );
    assert!(gone[0]
        .note
        .as_deref()
        .unwrap_or("")
        .contains("bound to bed 9"));
}

/// Guards "a febrile bed (HR ≈ 121) raised 80 alarms in an hour with a median duration of
/// 1.1 s": with a clear delay, a value hovering at the clear margin keeps one alarm instead of
/// clearing and re-raising it; a condition still within its delay ends at once.
#[test]
fn a_value_hovering_at_the_limit_is_one_alarm_with_a_clear_delay() {
    let rules = |clear: &str| {
        format!(
            r#"{{"preset": "none", "rules": [{{"metric": "hr", "high": 120, "hysteresis": 3, "delay": "10s", "clear_delay": "{clear}"}}]}}"#
        )
    };
    // 20 s at 123, then 5 s at 115, over and over for ten minutes.
    let hover = |e: &mut AlarmEngine| {
        let mut raised = 0;
        for i in 0..600 {
            let v = if i % 25 < 20 { 123.0 } else { 115.0 };
            raised += feed(e, i * S, &[("mon-7", "hr", v)])
                .iter()
                .filter(|t| t.event == Event::Raised)
                .count();
        }
        raised
    };
    assert_eq!(
        hover(&mut engine(&rules("0s"))),
        24,
        "without: every excursion"
    );
    assert_eq!(hover(&mut engine(&rules("10s"))), 1, "with: one alarm");
    // Within its delay, a recovery ends the condition at once (audited, never raised).
    let mut e = engine(&rules("10s"));
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend(feed(&mut e, i * S, &[("mon-7", "hr", 125.0)]));
    }
    all.extend(feed(&mut e, 5 * S, &[("mon-7", "hr", 100.0)]));
    assert_eq!(
        all.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Suppressed]
    );
    // A raised alarm clears 10 s after the values came back, not before.
    let mut e = engine(&rules("10s"));
    for i in 0..12 {
        feed(&mut e, i * S, &[("mon-7", "hr", 125.0)]);
    }
    let mut cleared_at = None;
    for i in 12..40 {
        if feed(&mut e, i * S, &[("mon-7", "hr", 100.0)])
            .iter()
            .any(|t| t.event == Event::Cleared)
        {
            cleared_at.get_or_insert(i);
        }
    }
    assert_eq!(cleared_at, Some(22));
}

/// The default sensor-off clear delay: a probe that slips off and on is one alarm.
#[test]
fn a_slipping_probe_is_one_sensor_off_alarm() {
    let mut e = engine(
        r#"{"technical": {"offline_after": "1h", "sensor_off_delay": "15s", "sensor_off_clear": "10s"}}"#,
    );
    let mut raised = 0;
    for i in 0..300 {
        // 20 s off, 4 s on.
        let status = if i % 24 < 20 {
            Status::Invalid
        } else {
            Status::Valid
        };
        let t = i * S;
        let out = e.on_observation(&obs("mon-7", "7", "spo2", 97.0, status, t), t);
        raised += out.iter().filter(|t| t.event == Event::Raised).count();
        raised += e
            .tick(t)
            .iter()
            .filter(|t| t.event == Event::Raised)
            .count();
    }
    assert_eq!(raised, 1);
}
