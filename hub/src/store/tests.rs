use std::time::Duration;

use wardhub_adapters::model::{metric_by_name, DeviceId, Observation, Status};

use super::*;

const H: i64 = 3_600_000;

fn store(dir: &tempfile::TempDir) -> Arc<SledStore> {
    SledStore::open(
        dir.path(),
        64 << 20,
        Retention {
            raw: Duration::from_secs(72 * 3600),
            rollup: Duration::from_secs(30 * 24 * 3600),
        },
    )
    .unwrap()
}

fn obs(device: &str, bed: Option<&str>, metric: &str, value: f64, t: i64) -> Observation {
    Observation {
        device_id: DeviceId::new(device).unwrap(),
        bed: bed.map(Into::into),
        metric: metric_by_name(metric).unwrap(),
        value,
        observed_at: t,
        received_at: t,
        status: Status::Valid,
        channel: None,
    }
}

fn all() -> TimeRange {
    TimeRange {
        from: i64::MIN,
        to: i64::MAX,
    }
}

#[test]
fn device_range_is_by_metric_and_time_with_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let base = 1_000 * H;
    let batch: Vec<_> = (0..100)
        .flat_map(|i| {
            [
                obs(
                    "mon-1",
                    Some("bed-1"),
                    "spo2",
                    90.0 + (i % 10) as f64,
                    base + i * 1000,
                ),
                obs(
                    "mon-1",
                    Some("bed-1"),
                    "hr",
                    60.0 + (i % 10) as f64,
                    base + i * 1000,
                ),
            ]
        })
        .collect();
    s.write(&batch).unwrap();
    let spo2 = metric_by_name("spo2");
    let r = TimeRange {
        from: base + 10_000,
        to: base + 19_000,
    };
    let p = s.device_observations("mon-1", spo2, r, 100).unwrap();
    assert_eq!(p.items.len(), 10);
    assert!(!p.truncated);
    assert!(p
        .items
        .windows(2)
        .all(|w| w[0].observed_at < w[1].observed_at));
    assert_eq!(p.items[0].bed.as_deref(), Some("bed-1"));
    let p = s.device_observations("mon-1", None, r, 100).unwrap();
    assert_eq!(p.items.len(), 20);
    let p = s.device_observations("mon-1", None, all(), 50).unwrap();
    assert_eq!((p.items.len(), p.truncated), (50, true));
}

#[test]
fn ids_that_prefix_each_other_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    s.write(&[
        obs("mon-1", Some("bed-1"), "hr", 60.0, H),
        obs("mon-10", Some("bed-10"), "hr", 70.0, H),
    ])
    .unwrap();
    assert_eq!(
        s.device_observations("mon-1", None, all(), 10)
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        s.bed_observations("bed-1", all(), 10).unwrap().items.len(),
        1
    );
    assert_eq!(s.bed_latest("bed-1").unwrap().len(), 1);
    assert_eq!(s.bed_latest("bed-1").unwrap()[0].value, 60.0);
}

#[test]
fn latest_keeps_the_newest_even_when_older_data_arrives_later() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    s.write(&[obs("mon-1", Some("bed-1"), "hr", 80.0, 2 * H)])
        .unwrap();
    s.write(&[obs("mon-1", Some("bed-1"), "hr", 60.0, H)])
        .unwrap();
    assert_eq!(s.device_latest("mon-1").unwrap()[0].value, 80.0);
    assert_eq!(s.bed_latest("bed-1").unwrap()[0].value, 80.0);
    // Survives a reopen (the writer's cache is rebuilt from disk).
    drop(s);
    let s = store(&dir);
    s.write(&[obs("mon-1", Some("bed-1"), "hr", 50.0, H + 1)])
        .unwrap();
    assert_eq!(s.device_latest("mon-1").unwrap()[0].value, 80.0);
}

#[test]
fn rollups_aggregate_per_minute_and_replays_do_not_double_count() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let m0 = 1_000 * H;
    let batch: Vec<_> = (0..120)
        .map(|i| obs("mon-1", Some("bed-1"), "hr", i as f64, m0 + i * 1000))
        .collect();
    s.write(&batch).unwrap();
    s.write(&batch[..30]).unwrap(); // a replay (e.g. a device resending unacknowledged data)
    let p = s.device_rollups("mon-1", None, all(), 10).unwrap();
    assert_eq!(p.items.len(), 2);
    let first = &p.items[0];
    assert_eq!(
        (first.minute, first.count, first.min, first.max),
        (m0, 60, 0.0, 59.0)
    );
    assert!((first.mean - 29.5).abs() < 1e-9);
    assert_eq!(
        s.device_observations("mon-1", None, all(), 1000)
            .unwrap()
            .items
            .len(),
        120
    );
    let bed = s.bed_rollups("bed-1", all(), 10).unwrap();
    assert_eq!(bed.items.len(), 2);
    assert_eq!(bed.items[1].count, 60);
    // Invalid data is stored raw but not averaged into rollups.
    let mut bad = obs("mon-1", Some("bed-1"), "hr", 8_388_607.0, m0 + 500);
    bad.status = Status::NotAvailable;
    s.write(&[bad]).unwrap();
    assert_eq!(
        s.device_rollups("mon-1", None, all(), 10).unwrap().items[0].max,
        59.0
    );
}

#[test]
fn retention_deletes_old_raw_then_old_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let now = 10_000 * H;
    s.write(&[
        obs("mon-1", Some("bed-1"), "hr", 60.0, now - 100 * H),
        obs("mon-1", Some("bed-1"), "hr", 61.0, now - H),
        obs("mon-1", Some("bed-1"), "hr", 62.0, now - 40 * 24 * H),
    ])
    .unwrap();
    let report = s.enforce_retention(now).unwrap();
    assert_eq!(report.raw_deleted, 2);
    assert_eq!(report.rollups_deleted, 1);
    let raw = s
        .device_observations("mon-1", None, all(), 10)
        .unwrap()
        .items;
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].value, 61.0);
    assert_eq!(
        s.bed_observations("bed-1", all(), 10).unwrap().items.len(),
        1
    );
    // The 100 h old minute's rollup outlives its raw data.
    assert_eq!(
        s.device_rollups("mon-1", None, all(), 10)
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(s.bed_rollups("bed-1", all(), 10).unwrap().items.len(), 2);
    // The latest value is never deleted by retention.
    assert_eq!(s.device_latest("mon-1").unwrap().len(), 1);
}

#[tokio::test]
async fn durability_tickets_resolve_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let ticket = s.write(&[obs("mon-1", None, "hr", 60.0, H)]).unwrap();
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.wait_durable(ticket).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "durable before any flush");
    s.flush().await.unwrap();
    waiter.await.unwrap().unwrap();
    // Unbound devices' data has no bed index.
    assert!(s.bed_latest("bed-1").unwrap().is_empty());
    assert!(s.has_device("mon-1").unwrap());
    assert!(!s.has_device("mon-2").unwrap());
}

/// Guards "two channels of the same metric overwrite each other, silently": SpO2 from
/// channel 1.3.2 (valid 97) and 1.6.1 (not available) at the same time are both kept, in
/// raw data and the bed's view, and the latest value is the valid one whichever came last.
#[test]
fn two_channels_at_one_time_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let t = 1_000 * H;
    let mut a = obs("mon-1", Some("bed-1"), "spo2", 97.0, t);
    a.channel = Some("1.3.2.150456".into());
    let mut b = obs("mon-1", Some("bed-1"), "spo2", 8_388_607.0, t);
    b.channel = Some("1.6.1.150456".into());
    b.status = Status::NotAvailable;
    s.write(&[a.clone(), b.clone()]).unwrap();
    let raw = s
        .device_observations("mon-1", None, all(), 100)
        .unwrap()
        .items;
    assert_eq!(raw.len(), 2, "{raw:?}");
    assert_eq!(
        raw.iter().map(|o| o.channel.clone()).collect::<Vec<_>>(),
        [a.channel.clone(), b.channel.clone()]
    );
    assert_eq!(
        s.bed_observations("bed-1", all(), 100).unwrap().items.len(),
        2
    );
    let latest = s.device_latest("mon-1").unwrap();
    assert_eq!((latest[0].value, latest[0].status), (97.0, Status::Valid));
    assert_eq!(s.bed_latest("bed-1").unwrap()[0].value, 97.0);
    // The same channel again is a replay: it overwrites, one row.
    s.write(&[a.clone()]).unwrap();
    assert_eq!(
        s.device_observations("mon-1", None, all(), 100)
            .unwrap()
            .items
            .len(),
        2
    );
    // A newer value wins whatever its status.
    let mut c = b.clone();
    c.observed_at = t + 1000;
    s.write(&[c]).unwrap();
    assert_eq!(
        s.device_latest("mon-1").unwrap()[0].status,
        Status::NotAvailable
    );
}

/// Guards "respiration from two sources (impedance 18, capnography 30) ... the rollup still
/// counts it": each channel has rollups of its own, so a minute's mean is never a mix of two
/// sources (24 breaths/min that nobody measured).
#[test]
fn rollups_never_mix_two_channels() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let t = 1_000 * H;
    let mut imp = obs("mon-1", Some("bed-1"), "rr", 18.0, t);
    imp.channel = Some("1.20.1.1".into());
    let mut cap = obs("mon-1", Some("bed-1"), "rr", 30.0, t);
    cap.channel = Some("1.6.1.1".into());
    s.write(&[imp.clone(), cap.clone()]).unwrap();
    let mut rolls = s.device_rollups("mon-1", None, all(), 100).unwrap().items;
    rolls.sort_by(|a, b| a.channel.cmp(&b.channel));
    let means: Vec<(Option<String>, f64, u64)> = rolls
        .iter()
        .map(|r| (r.channel.clone(), r.mean, r.count))
        .collect();
    assert_eq!(
        means,
        [
            (Some("1.20.1.1".to_owned()), 18.0, 1),
            (Some("1.6.1.1".to_owned()), 30.0, 1)
        ]
    );
    let mut bed = s.bed_rollups("bed-1", all(), 100).unwrap().items;
    bed.sort_by(|a, b| a.channel.cmp(&b.channel));
    assert_eq!(bed.iter().map(|r| r.mean).collect::<Vec<_>>(), [18.0, 30.0]);
    // Without a channel (MQTT devices that give none) it is one rollup as before.
    s.write(&[obs("mon-2", Some("bed-2"), "rr", 12.0, t)])
        .unwrap();
    let r = s.device_rollups("mon-2", None, all(), 100).unwrap().items;
    assert_eq!((r.len(), r[0].channel.clone()), (1, None));
}
