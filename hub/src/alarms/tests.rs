//! The hub's alarm tests: the engine's decisions through the sled [`AlarmStore`] across a
//! restart, and what-if replay over observations stored the way the pipeline stores them.

use std::time::Duration;

use wardhub_adapters::model::{Millis, Status};
use wardhub_alarm_engine::testing::{dev, engine, obs, S};

use super::*;

#[test]
fn restart_keeps_states() {
    let dir = tempfile::tempdir().unwrap();
    let mut e =
        engine(r#"{"rules": [{"metric": "hr", "low": 50, "high": 120, "latching": true}]}"#);
    let mut log = Vec::new();
    let feed = |e: &mut AlarmEngine, d: &str, m: &str, v: f64, t: Millis| {
        e.on_observation(&obs(d, d, m, v, Status::Valid, t), t)
    };
    // active (paused), latched with ended condition, acknowledged, and one cleared.
    log.extend(feed(&mut e, "bed-a", "spo2", 80.0, 0));
    log.extend(feed(&mut e, "bed-b", "hr", 130.0, 0));
    log.extend(feed(&mut e, "bed-b", "hr", 100.0, S));
    log.extend(feed(&mut e, "bed-c", "rr", 40.0, 0));
    log.extend(feed(&mut e, "bed-d", "temp", 40.0, 0));
    log.extend(feed(&mut e, "bed-d", "temp", 37.0, S));
    let paused = log[0].alarm.id;
    log.extend(
        e.pause_audio(PauseTarget::Alarm(paused), "nurse.b", None, 2 * S)
            .unwrap(),
    );
    let rr = log
        .iter()
        .find(|t| t.alarm.bed.as_deref() == Some("bed-c"))
        .unwrap()
        .alarm
        .id;
    log.extend(e.acknowledge(rr, "nurse.a", None, None, 3 * S).unwrap());
    let before: Vec<Alarm> = e.open_alarms().cloned().collect();
    assert_eq!(before.len(), 3);
    {
        let db = reopen(dir.path());
        let store = AlarmStore::open(&db).unwrap();
        // Appended in two batches, as the hub would.
        store.append(&log[..3]).unwrap();
        store.append(&log[3..]).unwrap();
        db.flush().unwrap();
    }
    let db = reopen(dir.path());
    let store = AlarmStore::open(&db).unwrap();
    let restored = store.load().unwrap();
    assert_eq!(restored.alarms, before);
    assert_eq!(restored.next_id, e.next_id());
    let mut e2 = AlarmEngine::restore(
        "icu",
        e.config().clone(),
        restored.alarms,
        restored.next_id,
        4 * S,
    )
    .unwrap();
    let after: Vec<Alarm> = e2.open_alarms().cloned().collect();
    assert_eq!(after, before);

    let mut log2 = Vec::new();
    // The paused alarm re-announces when its pause (2 min from 2 s) runs out; it escalated
    // at 60 s of being unacknowledged, which also survives.
    let t = e2.tick(60 * S);
    assert_eq!(
        t.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Escalated]
    );
    log2.extend(t);
    let t = e2.tick(122 * S);
    assert!(
        t.iter()
            .any(|t| t.event == Event::Reannounced && t.alarm.id == paused),
        "{t:#?}"
    );
    log2.extend(t.into_iter().filter(|t| t.event == Event::Reannounced));
    // The latched alarm still waits for its acknowledgement, then clears.
    let latched = after
        .iter()
        .find(|a| a.bed.as_deref() == Some("bed-b"))
        .unwrap();
    assert!(!latched.condition_present && latched.state == AlarmState::Active);
    let t = e2
        .acknowledge(latched.id, "nurse.c", None, None, 123 * S)
        .unwrap();
    assert_eq!(
        t.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Acknowledged, Event::Cleared]
    );
    log2.extend(t);
    // The acknowledged alarm clears on recovery; its condition was restored as present.
    let t = feed(&mut e2, "bed-c", "rr", 40.0, 124 * S);
    assert!(t.is_empty());
    let t = feed(&mut e2, "bed-c", "rr", 20.0, 125 * S);
    assert_eq!((t[0].event, t[0].alarm.id), (Event::Cleared, rr));
    log2.extend(t);
    // New alarms get new ids (never reusing the suppressed / cleared ones).
    let t = feed(&mut e2, "bed-e", "spo2", 70.0, 126 * S);
    assert!(t[0].alarm.id.0 >= restored.next_id);
    log2.extend(t);
    store.append(&log2).unwrap();

    let open: Vec<AlarmId> = store.load_active().unwrap().iter().map(|a| a.id).collect();
    assert_eq!(open, e2.open_alarms().map(|a| a.id).collect::<Vec<_>>());

    // The audit log answers by time and bed, oldest first.
    let all = store.history(0, 1000 * S, None, 1000).unwrap();
    assert_eq!(all.len(), log.len() + log2.len());
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
    let b = store.history(0, 1000 * S, Some("bed-b"), 1000).unwrap();
    assert_eq!(
        b.iter().map(|t| t.event).collect::<Vec<_>>(),
        [
            Event::Raised,
            Event::ConditionEnded,
            Event::Acknowledged,
            Event::Cleared
        ]
    );
    assert_eq!(store.history(S, 2 * S, None, 1000).unwrap().len(), 2);
    assert_eq!(store.history(0, 1000 * S, None, 3).unwrap().len(), 3);
    // Guards "the history silently returns only the oldest 1,000": pages of 3 say that more
    // follow, and following `next` gives every record once, in order.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.history_page(0, 1000 * S, None, 3, cursor).unwrap();
        assert!(page.transitions.len() <= 3);
        paged.extend(page.transitions);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let key = |t: &Transition| serde_json::to_string(t).unwrap();
    assert_eq!(
        paged.iter().map(key).collect::<Vec<_>>(),
        all.iter().map(key).collect::<Vec<_>>()
    );
    let whole = store
        .history_page(0, 1000 * S, None, all.len(), None)
        .unwrap();
    assert!(whole.next.is_none(), "an exact fit is not truncated");
    let c = store
        .history_page(0, 1000 * S, None, 1, None)
        .unwrap()
        .next
        .unwrap();
    assert_eq!(
        crate::alarms::store::HistoryCursor::parse(&c.to_string()),
        Some(c)
    );
    assert_eq!(
        store.alarm_history(latched.id, 0, 1000 * S).unwrap().len(),
        4
    );
}

/// Opens the database again: sled lets go of the directory's lock a moment after the last
/// handle is dropped (a lock error here was a flaky test, not a store fault).
fn reopen(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("reopen {}: {e}", path.display()),
        }
    }
}

/// Event alarms survive a restart through the store: latched, active, acknowledged; after it
/// a repeat opens no second alarm, an end clears the restored alarm, escalation still runs.
#[test]
fn restart_keeps_event_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine("");
    let ev = |k, active| DeviceEvent::new(k, active);
    let (call, bed, pump, pump2) = (dev("call-1"), dev("bed-2"), dev("pump-3"), dev("pump-4"));
    let mut log = Vec::new();
    log.extend(e.on_device_event(&call, Some("1"), &ev(EventKind::NurseCall, true), 0));
    log.extend(e.on_device_event(&call, Some("1"), &ev(EventKind::NurseCall, false), S));
    log.extend(e.on_device_event(&bed, Some("2"), &ev(EventKind::BedExit, true), 2 * S));
    log.extend(e.on_device_event(&pump, Some("3"), &ev(EventKind::PumpOcclusion, true), 3 * S));
    let occl = log.last().unwrap().alarm.id;
    log.extend(e.acknowledge(occl, "nurse.a", None, None, 4 * S).unwrap());
    log.extend(e.on_device_event(
        &pump2,
        Some("4"),
        &ev(EventKind::EndOfInfusion, true),
        5 * S,
    ));
    log.extend(e.on_device_event(
        &pump2,
        Some("4"),
        &ev(EventKind::EndOfInfusion, false),
        6 * S,
    ));
    let before: Vec<Alarm> = e.open_alarms().cloned().collect();
    assert_eq!(before.len(), 3);
    {
        let db = reopen(dir.path());
        let store = AlarmStore::open(&db).unwrap();
        store.append(&log).unwrap();
        db.flush().unwrap();
    }
    let db = reopen(dir.path());
    let store = AlarmStore::open(&db).unwrap();
    let restored = store.load().unwrap();
    assert_eq!(restored.alarms, before);
    let mut e2 = AlarmEngine::restore(
        "icu",
        e.config().clone(),
        restored.alarms,
        restored.next_id,
        10 * S,
    )
    .unwrap();
    assert_eq!(e2.open_alarms().cloned().collect::<Vec<_>>(), before);
    let id_of = |c: Cause| before.iter().find(|a| a.cause == c).unwrap().id;
    let (call_id, exit_id) = (id_of(Cause::NurseCall), id_of(Cause::BedExit));

    // The patient is still out of bed: no second alarm; unacknowledged, it escalates 60 s
    // after it was raised.
    assert!(e2
        .on_device_event(&bed, Some("2"), &ev(EventKind::BedExit, true), 11 * S)
        .is_empty());
    let t = e2.tick(62 * S);
    assert_eq!(
        t.iter().map(|t| (t.event, t.alarm.id)).collect::<Vec<_>>(),
        [(Event::Escalated, exit_id)]
    );
    // Back in bed: the restored alarm clears.
    let t = e2.on_device_event(&bed, Some("2"), &ev(EventKind::BedExit, false), 63 * S);
    assert_eq!(
        t.iter().map(|t| (t.event, t.alarm.id)).collect::<Vec<_>>(),
        [(Event::Cleared, exit_id)]
    );
    // The latched call still waits for its acknowledgement.
    let t = e2
        .acknowledge(call_id, "nurse.b", None, None, 64 * S)
        .unwrap();
    assert_eq!(
        t.iter().map(|t| t.event).collect::<Vec<_>>(),
        [Event::Acknowledged, Event::Cleared]
    );
    // The acknowledged occlusion clears when the pump reports it cleared.
    let t = e2.on_device_event(
        &pump,
        Some("3"),
        &ev(EventKind::PumpOcclusion, false),
        65 * S,
    );
    assert_eq!(
        t.iter().map(|t| (t.event, t.alarm.id)).collect::<Vec<_>>(),
        [(Event::Cleared, occl)]
    );
    assert_eq!(e2.open_alarms().count(), 0);
    // New alarms get new ids.
    let t = e2.on_device_event(&call, Some("1"), &ev(EventKind::NurseCall, true), 66 * S);
    assert!(t[0].alarm.id.0 >= restored.next_id);
    let mut log2 = Vec::new();
    log2.extend(t);
    store.append(&log2).unwrap();
    // The audit log holds the event alarms like any other.
    let calls: Vec<Event> = store
        .history(0, 1000 * S, Some("1"), 100)
        .unwrap()
        .iter()
        .map(|t| t.event)
        .collect();
    assert_eq!(calls, [Event::Raised, Event::ConditionEnded, Event::Raised]);
}

/// What-if replay over a stored ward (the ward comes from the alarm-quality bench, a tool).
#[cfg(feature = "tools")]
mod replay {
    use super::*;
    use crate::alarms::{AckReason, Event};
    use crate::bench::alarm_quality::{sim_observations, EPOCH};
    use crate::pipeline::clock::ClockCorrection;
    use crate::store::{Retention, SledStore, TimeRange};
    use ward_sim::{Payload, Scenario, Ward};
    use wardhub_alarm_engine::replay::*;
    use wardhub_model::DeviceId;

    /// 12 minutes of the deteriorating-patient ward (13 beds: bed 7 desaturates at 2 min, bed
    /// 12 becomes tachycardic at 3 min) stored the way the pipeline stores it.
    fn stored_ward(dir: &tempfile::TempDir) -> std::sync::Arc<SledStore> {
        let store = SledStore::open(dir.path(), 16 << 20, Retention::default()).unwrap();
        let mut s = Scenario::builtin("deteriorating-patient").with_beds(13);
        s.random.clear();
        let mut ward = Ward::new(s, 7);
        let devices = ward.devices().to_vec();
        let mut clocks = ClockCorrection::default();
        while ward.now() < 12 * 60_000 {
            let mut batch = Vec::new();
            for e in ward.next_second() {
                if let Payload::Observations(r) = &e.payload {
                    let d = &devices[e.device];
                    let now = EPOCH + e.at as Millis;
                    let id = DeviceId::new(&d.id).unwrap();
                    let stamped = now + e.clock_offset_ms;
                    batch.extend(sim_observations(&mut clocks, d, &id, r, now, stamped).0);
                }
            }
            store.write(&batch).unwrap();
        }
        store
    }

    fn beds() -> Vec<String> {
        (1..=13).map(|b| format!("bed-{b:02}")).collect()
    }

    fn run(store: &SledStore, proposed: &RuleSet, actual: &[Transition]) -> Report {
        let cfg = AlarmsConfig::default();
        let beds = beds();
        let what = Replay {
            ward: "ward-1",
            current: &cfg,
            proposed,
            beds: &beds,
            from: EPOCH + 60_000,
            to: EPOCH + 12 * 60_000,
            actual,
        };
        replay(what, |bed, a, b| {
            store
                .bed_observations(bed, TimeRange { from: a, to: b - 1 }, 1_000_000)
                .map(|p| p.items)
        })
        .unwrap()
    }

    /// What really happened: the rules in force over the same data, with the desaturation
    /// acknowledged as actionable 20 s after it was raised.
    fn audit(store: &SledStore) -> Vec<Transition> {
        let mut e = AlarmEngine::new("ward-1", AlarmsConfig::default()).unwrap();
        let mut log = Vec::new();
        let obs = store
            .bed_observations(
                "bed-07",
                TimeRange {
                    from: EPOCH,
                    to: EPOCH + 12 * 60_000,
                },
                1_000_000,
            )
            .unwrap()
            .items;
        let mut tick = EPOCH;
        let mut ack_at = None;
        for o in obs {
            while tick <= o.received_at {
                log.extend(e.tick(tick));
                tick += 1000;
            }
            log.extend(e.on_observation(&o, o.received_at));
            if ack_at.is_none() {
                if let Some(r) = log.iter().find(|t| t.event == Event::Raised) {
                    ack_at = Some((r.alarm.id, r.at + 20_000));
                }
            }
            if let Some((id, at)) = ack_at.filter(|(_, at)| o.received_at >= *at) {
                log.extend(
                    e.acknowledge(id, "nurse.a", Some(AckReason::Actionable), None, at)
                        .unwrap(),
                );
                ack_at = Some((id, Millis::MAX));
            }
        }
        log
    }

    /// Guards "a rule change is made without evidence": replaying the stored ward with a
    /// change whose effect is known says exactly that — the rules in force change nothing; a
    /// 40 s heart-rate delay makes bed 12's tachycardia 30 s later; SpO2 alarms off lose bed
    /// 7's desaturation, which a nurse had acknowledged as actionable.
    #[test]
    fn replay_shows_what_a_rule_change_would_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = stored_ward(&dir);
        let actual = audit(&store);
        assert!(actual.iter().any(|t| t.event == Event::Acknowledged));

        let same = run(&store, &RuleSet::default(), &actual);
        eprintln!(
            "replayed {} observations of {} beds: {} alarms",
            same.observations, same.beds, same.current
        );
        assert!(same.observations > 50_000, "{}", same.observations);
        assert!(same.current >= 2, "{same:#?}");
        assert_eq!((same.proposed, same.kept), (same.current, same.current));
        assert!(same.changes.is_empty(), "{:#?}", same.changes);
        assert_eq!(same.actionable.len(), 1);
        assert_eq!(same.actionable[0].outcome, "kept");

        let slow: RuleSet = serde_json::from_str(
            r#"{"rules": [
                {"metric": "hr", "low": 50, "high": 120, "delay": "40s", "hysteresis": 5, "clear_delay": "10s"},
                {"metric": "pr", "low": 50, "high": 120, "delay": "40s", "hysteresis": 5, "clear_delay": "10s"}
            ]}"#,
        )
        .unwrap();
        let r = run(&store, &slow, &actual);
        let tachy: Vec<_> = r
            .changes
            .iter()
            .filter(|c| c.bed == "bed-12" && c.condition == Condition::Tachycardia)
            .collect();
        assert_eq!(tachy.len(), 1, "{:#?}", r.changes);
        assert_eq!(tachy[0].change, "later");
        let shift = tachy[0].shift_s.unwrap();
        eprintln!("bed 12's tachycardia {shift} s later");
        assert!((29.0..=31.0).contains(&shift), "{shift}");
        let row = r
            .rows
            .iter()
            .find(|x| x.bed == "bed-12" && x.condition == "tachycardia")
            .unwrap();
        assert_eq!(
            (row.later, row.max_later_s.map(f64::round)),
            (1, Some(shift.round()))
        );
        assert_eq!(
            r.actionable[0].outcome, "kept",
            "the desaturation is not touched"
        );

        let off: RuleSet =
            serde_json::from_str(r#"{"rules": [{"metric": "spo2", "enabled": false}]}"#).unwrap();
        let r = run(&store, &off, &actual);
        assert!(r.changes.iter().any(|c| c.bed == "bed-07"
            && c.condition == Condition::Desaturation
            && c.change == "gone"));
        assert_eq!(
            (r.actionable_missed, r.actionable[0].outcome),
            (1, "missed")
        );
        assert_eq!(r.actionable[0].bed, "bed-07");
    }
}
