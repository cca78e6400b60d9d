use std::time::Duration;

use wardhub_model::{metric_by_name, DeviceId, Observation, Status};

use super::*;

const H: i64 = 3_600_000;

fn store(dir: &tempfile::TempDir) -> Arc<SledStore> {
    SledStore::open(dir.path(), 64 << 20, Retention::default()).unwrap()
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
        clock_correction_ms: 0,
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
    let mut waiter = std::pin::pin!(s.wait_durable(ticket));
    // Polled, and still waiting when the timeout ends it (a sleep and a look could pass on a
    // waiter that had not run at all).
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut waiter)
            .await
            .is_err(),
        "durable before any flush"
    );
    s.flush().await.unwrap();
    waiter.await.unwrap();
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

fn at(device: &str, bed: &str, metric: &str, value: f64, t: i64, received: i64) -> Observation {
    let mut o = obs(device, Some(bed), metric, value, t);
    o.received_at = received;
    o
}

/// Guards "sealing loses or repeats samples": an hour of 1 Hz data is sealed into chunks,
/// and raw data, rollups and latest values read the same before and after sealing and after
/// a reopen, with no log left behind.
#[test]
fn sealed_chunks_read_as_the_samples_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let t0 = 1_000 * H;
    for i in 0..3600 {
        s.write(&[at(
            "mon-1",
            "bed-1",
            "hr",
            (60 + i % 7) as f64,
            t0 + i * 1000,
            t0 + i * 1000 + 40,
        )])
        .unwrap();
    }
    let before = s.bed_observations("bed-1", all(), 10_000).unwrap().items;
    let rolls = s.bed_rollups("bed-1", all(), 10_000).unwrap().items;
    assert_eq!((before.len(), rolls.len()), (3600, 60));
    let report = s.fold(t0 + 2 * H).unwrap();
    assert_eq!(report.sealed, 30);
    assert_eq!(report.log_removed, 1);
    assert_eq!(
        s.bed_observations("bed-1", all(), 10_000).unwrap().items,
        before
    );
    assert_eq!(s.bed_rollups("bed-1", all(), 10_000).unwrap().items, rolls);
    let stats = s.stats().unwrap();
    assert_eq!(
        (
            stats.chunks,
            stats.observations_sealed,
            stats.observations_open
        ),
        (30, 3600, 0)
    );
    assert!(
        stats.chunk_bytes_per_observation.unwrap() < 3.0,
        "{stats:?}"
    );
    drop(s);
    let s = store(&dir);
    assert_eq!(
        s.bed_observations("bed-1", all(), 10_000).unwrap().items,
        before
    );
    assert_eq!(s.bed_rollups("bed-1", all(), 10_000).unwrap().items, rolls);
    assert_eq!(
        s.bed_latest("bed-1").unwrap()[0].observed_at,
        t0 + 3599 * 1000
    );
    assert!(s.verify().unwrap().ok());
}

/// Guards "a restart replays the append log on top of sealed chunks and counts twice": data
/// half sealed, half only in the log, reopened: every sample once, every rollup exact.
#[tokio::test]
async fn a_reopen_replays_the_log_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_000 * H;
    {
        let s = store(&dir);
        let batch: Vec<_> = (0..240)
            .map(|i| at("mon-1", "bed-1", "hr", 70.0, t0 + i * 1000, t0 + i * 1000))
            .collect();
        s.write(&batch[..180]).unwrap();
        // Seals the first span (0-2 min); the second (2-4 min) stays open.
        assert_eq!(s.fold(t0 + 150_000).unwrap().sealed, 1);
        // A replay of sealed samples and the rest, then a crash-like stop (flushed, not folded).
        s.write(&batch[60..]).unwrap();
        s.flush().await.unwrap();
    }
    let s = store(&dir);
    let raw = s
        .device_observations("mon-1", None, all(), 1000)
        .unwrap()
        .items;
    assert_eq!(raw.len(), 240);
    let counts: Vec<u64> = s
        .device_rollups("mon-1", None, all(), 100)
        .unwrap()
        .items
        .iter()
        .map(|r| r.count)
        .collect();
    assert_eq!(counts, [60, 60, 60, 60]);
    s.fold_all(t0 + H).unwrap();
    let counts: Vec<u64> = s
        .device_rollups("mon-1", None, all(), 100)
        .unwrap()
        .items
        .iter()
        .map(|r| r.count)
        .collect();
    assert_eq!(counts, [60, 60, 60, 60]);
    assert_eq!(s.stats().unwrap().observations_sealed, 240);
}

/// Guards "a late sample for a sealed span is lost or replaces the span": it is merged into
/// the span's one chunk, a repeated time overwrites, and the rollup is recomputed.
#[test]
fn late_samples_merge_into_their_sealed_span() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let t0 = 1_000 * H;
    s.write(&[
        at("mon-1", "bed-1", "spo2", 97.0, t0, t0),
        at("mon-1", "bed-1", "spo2", 96.0, t0 + 2000, t0 + 2000),
    ])
    .unwrap();
    s.fold(t0 + H).unwrap();
    s.write(&[
        at("mon-1", "bed-1", "spo2", 90.0, t0 + 1000, t0 + H),
        at("mon-1", "bed-1", "spo2", 95.0, t0 + 2000, t0 + H),
    ])
    .unwrap();
    let values = |s: &SledStore| -> Vec<f64> {
        s.device_observations("mon-1", None, all(), 10)
            .unwrap()
            .items
            .iter()
            .map(|o| o.value)
            .collect()
    };
    assert_eq!(values(&s), [97.0, 90.0, 95.0]);
    let r = s.device_rollups("mon-1", None, all(), 10).unwrap().items;
    assert_eq!((r[0].count, r[0].min), (3, 90.0));
    let report = s.fold(t0 + 2 * H).unwrap();
    assert_eq!((report.sealed, report.merged), (1, 1));
    assert_eq!(values(&s), [97.0, 90.0, 95.0]);
    assert_eq!(s.stats().unwrap().chunks, 1);
    let r = s.device_rollups("mon-1", None, all(), 10).unwrap().items;
    assert_eq!((r[0].count, r[0].min, r[0].max), (3, 90.0, 97.0));
}

/// Guards "a device moved to another bed mixes both beds in one chunk": each bed sees only
/// what was measured on it; the device sees both.
#[test]
fn a_device_moved_between_beds_keeps_each_beds_data_apart() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let t0 = 1_000 * H;
    s.write(&[at("mon-1", "bed-1", "hr", 60.0, t0, t0)])
        .unwrap();
    s.write(&[at("mon-1", "bed-2", "hr", 90.0, t0 + 1000, t0 + 1000)])
        .unwrap();
    s.fold_all(t0 + H).unwrap();
    let bed = |b| -> Vec<f64> {
        s.bed_observations(b, all(), 10)
            .unwrap()
            .items
            .iter()
            .map(|o| o.value)
            .collect()
    };
    assert_eq!((bed("bed-1"), bed("bed-2")), (vec![60.0], vec![90.0]));
    assert_eq!(
        s.device_observations("mon-1", None, all(), 10)
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(s.device_latest("mon-1").unwrap()[0].value, 90.0);
    assert_eq!(s.bed_latest("bed-1").unwrap()[0].value, 60.0);
    // One minute, two beds: one rollup of the device for that minute.
    let r = s.device_rollups("mon-1", None, all(), 10).unwrap().items;
    assert_eq!((r.len(), r[0].count, r[0].mean), (1, 2, 75.0));
}

/// Guards "memory grows with the data when devices keep their chunks open": past the bound,
/// the oldest open chunks are sealed early and nothing is lost.
#[test]
fn open_chunks_are_sealed_early_past_their_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    s.set_open_chunk_limit(1 << 20);
    let t0 = 1_000 * H;
    // 12,000 series with a sample each: about 1.4 MB of open chunks.
    for d in 0..12_000 {
        s.write(&[at(&format!("mon-{d:05}"), "bed-1", "hr", 60.0, t0, t0)])
            .unwrap();
    }
    let report = s.fold(t0 + 1000).unwrap();
    assert!(report.sealed > 0, "{report:?}");
    let open = s.mem().open_bytes;
    assert!(open <= (1 << 20) * 3 / 4, "{open} bytes open");
    assert_eq!(
        s.bed_observations("bed-1", all(), 20_000)
            .unwrap()
            .items
            .len(),
        12_000
    );
}

/// Guards "an upgrade loses the data of the previous version": a format-1 directory (one key
/// per observation, rollups older than raw data) is migrated on open, old keys removed.
#[test]
fn a_format_1_directory_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_000 * H;
    let mut obs_v1: Vec<Observation> = (0..300)
        .map(|i| {
            at(
                "mon-1",
                "bed-1",
                "hr",
                60.0 + (i % 3) as f64,
                t0 + i * 1000,
                t0 + i * 1000,
            )
        })
        .collect();
    let mut two = obs("mon-1", Some("bed-1"), "spo2", 97.0, t0);
    two.channel = Some("1.3.2".into());
    obs_v1.push(two);
    obs_v1.push(obs("pump-1", None, "spo2", 95.0, t0));
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("timeseries").unwrap();
        super::legacy::write_v1(&tree, &obs_v1);
        // A minute whose raw data retention already removed: only its rollup is left.
        let old_minute = t0 - 10 * H;
        super::legacy::write_v1(
            &tree,
            &[at("mon-1", "bed-1", "hr", 50.0, old_minute, old_minute)],
        );
        tree.remove(super::legacy::raw(
            "mon-1",
            metric_by_name("hr").unwrap().code,
            old_minute,
            None,
        ))
        .unwrap();
        db.flush().unwrap();
    }
    let s = store(&dir);
    assert!(!s
        .db()
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == b"timeseries"));
    let raw = s
        .device_observations("mon-1", None, all(), 1000)
        .unwrap()
        .items;
    assert_eq!(raw.len(), 301);
    assert_eq!(
        raw.iter().find(|o| o.channel.is_some()).unwrap().value,
        97.0
    );
    assert_eq!(
        s.bed_observations("bed-1", all(), 1000)
            .unwrap()
            .items
            .len(),
        301
    );
    assert_eq!(
        s.device_observations("pump-1", None, all(), 10)
            .unwrap()
            .items
            .len(),
        1
    );
    let hr = metric_by_name("hr");
    let r = s.device_rollups("mon-1", hr, all(), 100).unwrap().items;
    assert_eq!(r.len(), 6, "{r:?}");
    assert_eq!((r[0].minute, r[0].mean), (t0 - 10 * H, 50.0));
    assert_eq!(r[1].count, 60);
    assert_eq!(s.bed_rollups("bed-1", all(), 100).unwrap().items.len(), 7);
    assert_eq!(s.bed_latest("bed-1").unwrap().len(), 2);
    assert!(s.verify().unwrap().ok());
    drop(s);
    // Opening again finds nothing to migrate and the same data.
    let s = store(&dir);
    assert_eq!(
        s.device_observations("mon-1", None, all(), 1000)
            .unwrap()
            .items
            .len(),
        301
    );
}

/// Guards "verify passes a damaged chunk": one corrupted value is reported, and queries skip
/// it (counted) instead of showing invented samples.
#[test]
fn verify_finds_a_damaged_chunk_and_queries_skip_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let t0 = 1_000 * H;
    s.write(&[
        at("mon-1", "bed-1", "hr", 60.0, t0, t0),
        at("mon-1", "bed-1", "hr", 61.0, t0 + 1000, t0 + 1000),
    ])
    .unwrap();
    s.fold_all(t0 + H).unwrap();
    assert!(s.verify().unwrap().ok());
    let (k, mut v) = s.tree.scan_prefix([keys::CHUNK]).next().unwrap().unwrap();
    let v2 = {
        let mut b = v.to_vec();
        b.truncate(4);
        v = b.into();
        v
    };
    s.tree.insert(k, v2).unwrap();
    let report = s.verify().unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(s
        .bed_observations("bed-1", all(), 10)
        .unwrap()
        .items
        .is_empty());
    assert_eq!(s.corrupt_count(), 1);
}

#[test]
fn compact_keeps_every_tree_and_reclaims_space() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t0 = 1_000 * H;
    {
        let db = sled::open(&data).unwrap();
        db.open_tree("registry").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    {
        let s = SledStore::open(&data, 64 << 20, Retention::default()).unwrap();
        for i in 0..2_000 {
            s.write(&[at(
                "mon-1",
                "bed-1",
                "hr",
                60.0,
                t0 + i * 1000,
                t0 + i * 1000,
            )])
            .unwrap();
        }
    }
    let r = super::admin::compact(&data, 64 << 20, Retention::default(), t0 + H).unwrap();
    assert!(r.bytes_after <= r.bytes_before, "{r:?}");
    let s = SledStore::open(&data, 64 << 20, Retention::default()).unwrap();
    assert_eq!(
        s.bed_observations("bed-1", all(), 10_000)
            .unwrap()
            .items
            .len(),
        2_000
    );
    assert_eq!(s.stats().unwrap().observations_open, 0);
    assert_eq!(
        s.db()
            .open_tree("registry")
            .unwrap()
            .get("k")
            .unwrap()
            .unwrap(),
        "v"
    );
    assert!(!super::admin::compact_backup(&data).exists());
}
