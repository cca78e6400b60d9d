//! The alarm-quality bench on short runs: its classification can fail, and the engine keeps
//! 0 missed on the deteriorating-patient ward.

use super::*;

/// The alarm-quality figures as invariants that cannot flake (the engine is deterministic
/// and the ward seeded): on the first 40 minutes of the deteriorating-patient scenario —
/// a desaturation, a tachycardia, a hypotension and an apnoea (the fever and the slow
/// deterioration are still ramping up) — no true event is missed and no event raises its
/// condition twice.
#[test]
fn no_true_event_is_missed_and_none_alarms_twice() {
    let q = quality(
        Scenario::builtin("deteriorating-patient"),
        7,
        40 * 60_000,
        &AlarmsConfig::default(),
    )
    .unwrap();
    assert!(q.true_events >= 4, "{q:?}");
    assert!(q.missed.is_empty(), "missed: {:?}", q.missed);
    assert!(
        q.multi_alarm_events.is_empty(),
        "more than one alarm: {:?}",
        q.multi_alarm_events
    );
    // And the classification can fail: with SpO2 alarms off the desaturation is missed.
    let off = AlarmsConfig {
        rules: vec![serde_json::from_str(r#"{"metric":"spo2","enabled":false}"#).unwrap()],
        ..AlarmsConfig::default()
    };
    let q = quality(
        Scenario::builtin("deteriorating-patient"),
        7,
        40 * 60_000,
        &off,
    )
    .unwrap();
    assert_eq!(q.missed, ["bed-07 Desaturation @ 120 s"]);
}
