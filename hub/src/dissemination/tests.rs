use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use wardhub_adapters::adapter::{Bus, BusError, BusMessage};
use wardhub_adapters::model::{Clock, Status};
use wardhub_alarm_engine::testing::{engine, obs, S};

use super::*;
use crate::alarms::service::CommittedObserver;

#[derive(Debug)]
struct TestClock(AtomicI64);
impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Captured(Mutex<Vec<(String, serde_json::Value)>>);
impl Bus for Captured {
    fn subscribe(&self, _: &str) -> Result<mpsc::Receiver<BusMessage>, BusError> {
        Err(BusError("not in this test".into()))
    }
    fn publish(&self, topic: String, payload: Bytes) -> Result<(), BusError> {
        self.0
            .lock()
            .unwrap()
            .push((topic, serde_json::from_slice(&payload).unwrap()));
        Ok(())
    }
}

/// A high-priority desaturation on bed-01, as the engine raises it: its transitions.
fn desaturation() -> Vec<Transition> {
    let mut e = engine("");
    let mut out = Vec::new();
    for i in 0..60 {
        let t = i * S;
        out.extend(e.on_observation(&obs("mon-1", "bed-01", "spo2", 75.0, Status::Valid, t), t));
        if out.iter().any(|t| t.event == Event::Raised) {
            break;
        }
    }
    assert!(out.iter().any(|t| t.event == Event::Raised), "{out:?}");
    out
}

#[test]
fn an_alarm_reaches_the_bed_s_nurse_escalates_and_stops_when_accepted_all_audited() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let bus = Arc::new(Captured::default());
    let clock = Arc::new(TestClock(AtomicI64::new(0)));
    let users = ["ann", "bob", "cat"].map(String::from).to_vec();
    let d = Disseminator::open(
        &DisseminationConfig::default(),
        "icu",
        users,
        &db,
        bus.clone(),
        clock.clone(),
        &prometheus::Registry::new(),
        None,
    )
    .unwrap();
    assert!(
        d.assign("bed-01", Some("mallory".into()), None, "admin")
            .is_err(),
        "a roster names users of the hub only"
    );
    d.set_roster(
        Roster {
            beds: [(
                "bed-01".into(),
                chain::Assignment {
                    primary: Some("ann".into()),
                    buddy: Some("bob".into()),
                },
            )]
            .into(),
            charge: Some("cat".into()),
            team: Default::default(),
        },
        "admin",
    )
    .unwrap();
    let ts = desaturation();
    let raised = ts.iter().find(|t| t.event == Event::Raised).unwrap();
    let id = raised.alarm.id;
    assert_eq!(raised.alarm.priority, crate::alarms::Priority::High);
    clock.0.store(raised.alarm.raised_at, Ordering::Relaxed);
    d.committed(&ts);
    let sent = bus.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "wardhub/v1/staff/ann/alarms");
    assert_eq!(sent[0].1["alarm"]["id"], id.to_string());
    assert_eq!(sent[0].1["target"], "primary");

    // 30 s later nobody has accepted: the buddy, and a reminder to the primary at 30 s.
    clock
        .0
        .store(raised.alarm.raised_at + 30 * S, Ordering::Relaxed);
    d.tick();
    let topics: Vec<String> = bus.0.lock().unwrap()[1..]
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(
        topics,
        ["wardhub/v1/staff/ann/alarms", "wardhub/v1/staff/bob/alarms"]
    );
    d.accept(id, "bob").unwrap();
    assert!(!d.is_running(id));
    clock
        .0
        .store(raised.alarm.raised_at + 300 * S, Ordering::Relaxed);
    d.tick();
    assert_eq!(bus.0.lock().unwrap().len(), 3, "nothing after the accept");
    assert!(d.accept(id, "bob").is_err(), "accepted once");
    let events: Vec<String> = d
        .history(Some(id), 100)
        .into_iter()
        .map(|s| s.event)
        .collect();
    assert_eq!(
        events,
        ["notified", "reminded", "notified", "accepted", "stopped"]
    );
    assert_eq!(d.history(Some(AlarmId(0)), 10)[0].event, "roster_changed");
}

/// Guards "after a hub restart an alarm that is still open is sent to nobody": the
/// dissemination state was in memory only.
#[test]
fn after_a_restart_open_unanswered_alarms_go_round_again_and_accepted_ones_stay_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(0)));
    let open = |bus: Arc<Captured>| {
        Disseminator::open(
            &DisseminationConfig::default(),
            "icu",
            ["ann", "bob", "cat"].map(String::from).to_vec(),
            &db,
            bus,
            clock.clone(),
            &prometheus::Registry::new(),
            None,
        )
        .unwrap()
    };
    let bus = Arc::new(Captured::default());
    let d = open(bus.clone());
    d.assign("bed-01", Some("ann".into()), Some("bob".into()), "admin")
        .unwrap();
    let ts = desaturation();
    let raised = ts
        .iter()
        .find(|t| t.event == Event::Raised)
        .unwrap()
        .alarm
        .clone();
    clock.0.store(raised.raised_at, Ordering::Relaxed);
    d.committed(&ts);
    drop(d);
    // Restarted 40 s later with the alarm still active: the nurse and (past 30 s) the buddy.
    clock.0.store(raised.raised_at + 40 * S, Ordering::Relaxed);
    let bus2 = Arc::new(Captured::default());
    let d = open(bus2.clone());
    d.resume(vec![raised.clone()]);
    let topics: Vec<String> = bus2
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(
        topics,
        ["wardhub/v1/staff/ann/alarms", "wardhub/v1/staff/bob/alarms"]
    );
    assert!(d.is_running(raised.id));
    d.accept(raised.id, "bob").unwrap();
    drop(d);
    let bus3 = Arc::new(Captured::default());
    let d = open(bus3.clone());
    d.resume(vec![raised.clone()]);
    assert!(
        bus3.0.lock().unwrap().is_empty(),
        "accepted before the restart: not again"
    );
    assert_eq!(
        d.status(&[raised.id])[0].accepted_by.as_deref(),
        Some("bob")
    );
}
