//! The service over a real sled database and a manual clock: a time-limited bed change ends
//! by itself.

use std::sync::atomic::{AtomicI64, Ordering};

use wardhub_adapters::adapter::NoBus;

use super::*;
use crate::alarms::rules::BedChange;

#[derive(Debug)]
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A time-limited "alarm off" ends by itself: at its end the bed's overrides go and the
/// ward's rules apply again (guards an ALARM OFF state that would otherwise last forever).
#[tokio::test]
async fn a_time_limited_bed_change_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1_000_000)));
    let (alarms, _task) = AlarmService::start(
        &db,
        "icu",
        AlarmsConfig::default(),
        Arc::new(NoBus),
        clock.clone(),
        Arc::new(Telemetry::new()),
    )
    .unwrap();
    let mut rules = alarms.rules();
    let off: crate::alarms::Rule =
        serde_json::from_str(r#"{"metric":"hr","enabled":false}"#).unwrap();
    rules.beds.insert("bed-01".into(), vec![off]);
    rules.changes.insert(
        "bed-01".into(),
        BedChange {
            by: "nurse-ana".into(),
            role: "nurse".into(),
            reason: "pacemaker check".into(),
            at: String::new(),
            until_ms: Some(1_060_000),
            off: vec!["hr".into()],
            widened: vec![],
        },
    );
    alarms.set_rules(rules, "nurse-ana").unwrap();
    alarms.tick();
    assert!(alarms.rules().beds.contains_key("bed-01"), "not yet");
    clock.0.store(1_060_000, Ordering::SeqCst);
    alarms.tick();
    let now = alarms.rules();
    assert!(now.beds.is_empty() && now.changes.is_empty(), "{now:?}");
    // And it stays ended after a restart (the change was stored).
    drop(alarms);
    let (again, _task) = AlarmService::start(
        &db,
        "icu",
        AlarmsConfig::default(),
        Arc::new(NoBus),
        clock,
        Arc::new(Telemetry::new()),
    )
    .unwrap();
    assert!(again.rules().beds.is_empty());
}
