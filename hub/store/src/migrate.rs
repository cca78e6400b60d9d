//! The one-time upgrade of a data directory written by wardhub before the chunked store
//! (format 1: one key per observation in the `timeseries` tree, see [`super::legacy`]).
//!
//! It runs when the store opens and finds that tree: raw observations are read series by
//! series (device, metric) and written as chunks with their rollups; the stored one-minute
//! rollups (which outlive raw data) then replace the computed ones minute by minute; each
//! series' old keys are removed once its new data is applied, and the old tree is dropped at
//! the end. Writing a chunk merges with one already there (a time in both: one sample), so an
//! interrupted migration simply resumes on the next start.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use wardhub_model::{DeviceId, Metric, Millis};

use super::chunk::{self, Sample};
use super::keys::{self, span_of, SpanRollups};
use super::legacy::{self, Record};
use super::memory::merge;
use super::series::SeriesDesc;
use super::{new_series, Result, SledStore, StoreError};

const OLD_TREE: &str = "timeseries";

/// Samples gathered before they are written (bounds the migration's memory).
const MAX_PENDING: usize = 500_000;

/// What a migration moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub observations: u64,
    pub rollups: u64,
    pub series: u64,
}

pub(super) fn migrate_if_needed(store: &SledStore, dir: &Path) -> Result<Option<MigrateReport>> {
    if !store
        .db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == OLD_TREE.as_bytes())
    {
        return Ok(None);
    }
    let old = store.db.open_tree(OLD_TREE)?;
    if old.is_empty() {
        store.db.drop_tree(OLD_TREE)?;
        return Ok(None);
    }
    let path = dir.display().to_string();
    tracing::info!(%path, "migrating the data directory to the chunked store (format 2); this runs once");
    let started = std::time::Instant::now();
    let report = migrate(store, &old)?;
    store.db.drop_tree(OLD_TREE)?;
    store.db.flush()?;
    tracing::info!(
        %path,
        observations = report.observations,
        rollups = report.rollups,
        series = report.series,
        seconds = started.elapsed().as_secs_f64(),
        "migration done"
    );
    Ok(Some(report))
}

type Group = HashMap<(Option<String>, Option<String>), BTreeMap<Millis, Vec<Sample>>>;

fn migrate(store: &SledStore, old: &sled::Tree) -> Result<MigrateReport> {
    let mut report = MigrateReport::default();
    // The beds each device had (format 1 kept a bed's latest value per device and metric).
    let mut beds: HashMap<String, Vec<String>> = HashMap::new();
    for k in old.scan_prefix([legacy::BED_LATEST]).keys() {
        let k = k?;
        let Some(zero) = k[1..].iter().position(|&b| b == 0) else {
            continue;
        };
        let (Ok(bed), Some((device, _, _))) = (
            std::str::from_utf8(&k[1..1 + zero]),
            legacy::split_series(&k[2 + zero..]),
        ) else {
            continue;
        };
        let list = beds.entry(device.to_owned()).or_default();
        if !list.iter().any(|b| b == bed) {
            list.push(bed.to_owned());
        }
    }

    // Raw observations, one (device, metric) at a time.
    let mut current: Option<(String, Metric)> = None;
    let mut group: Group = HashMap::new();
    let mut old_keys: Vec<sled::IVec> = Vec::new();
    let mut pending = 0;
    for item in old.scan_prefix([legacy::RAW]) {
        let (k, v) = item?;
        let parsed = legacy::split_series(&k[1..]).and_then(|(device, metric, rest)| {
            let rec = Record::decode(&v)?;
            Some((
                device.to_owned(),
                metric,
                legacy::channel_of(rest.get(8..)?),
                rec,
            ))
        });
        let Some((device, metric, channel, rec)) = parsed else {
            // Unreadable in format 1 as well: left out (and counted) rather than guessed at.
            store
                .corrupt
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!("a format-1 observation does not decode; not migrated");
            old_keys.push(k);
            continue;
        };
        let same = current
            .as_ref()
            .is_some_and(|(d, m)| *d == device && m.code == metric.code);
        if !same || pending >= MAX_PENDING {
            if let Some((d, m)) = current.take() {
                report.series += write_group(store, &d, m, std::mem::take(&mut group))?;
                remove(old, std::mem::take(&mut old_keys))?;
                pending = 0;
            }
        }
        current = Some((device, metric));
        let channel = rec.channel.clone().or(channel);
        group
            .entry((channel, rec.bed.clone()))
            .or_default()
            .entry(span_of(rec.observed_at))
            .or_default()
            .push(Sample {
                t: rec.observed_at,
                value: rec.value,
                status: rec.status,
                received_at: rec.received_at,
            });
        old_keys.push(k);
        pending += 1;
        report.observations += 1;
    }
    if let Some((d, m)) = current.take() {
        report.series += write_group(store, &d, m, group)?;
    }
    remove(old, old_keys)?;

    // Rollups: format 1's are exact for minutes whose raw data is gone; they win.
    let mut by_span: HashMap<(u32, Millis), Vec<(Millis, keys::Agg)>> = HashMap::new();
    let mut old_keys = Vec::new();
    for item in old.scan_prefix([legacy::ROLLUP]) {
        let (k, v) = item?;
        old_keys.push(k.clone());
        let Some((device, metric, rest)) = legacy::split_series(&k[1..]) else {
            continue;
        };
        let (Some(minute), Some(agg)) = (legacy::time_from(rest), legacy::agg_decode(&v)) else {
            continue;
        };
        if agg.count == 0 {
            continue;
        }
        let channel = legacy::channel_of(&rest[8..]);
        let bed = beds.get(device).and_then(|list| {
            list.iter()
                .find(|bed| {
                    old.contains_key(legacy::bed_rollup(
                        bed,
                        minute,
                        device,
                        metric.code,
                        channel.as_deref(),
                    ))
                    .unwrap_or(false)
                })
                .cloned()
        });
        let Ok(device_id) = DeviceId::new(device) else {
            continue;
        };
        let desc = SeriesDesc {
            device: device_id,
            metric,
            channel,
            bed,
        };
        let sid = series(store, desc)?;
        by_span
            .entry((sid, span_of(minute)))
            .or_default()
            .push((minute, agg));
        report.rollups += 1;
        if by_span.len() >= 10_000 {
            write_rollups(store, std::mem::take(&mut by_span))?;
            remove(old, std::mem::take(&mut old_keys))?;
        }
    }
    write_rollups(store, by_span)?;
    remove(old, old_keys)?;
    Ok(report)
}

fn series(store: &SledStore, desc: SeriesDesc) -> Result<u32> {
    let mut m = store.mem();
    if let Some(sid) = m.find(
        desc.device.as_str(),
        desc.metric.code,
        desc.channel.as_deref(),
        desc.bed.as_deref(),
    ) {
        return Ok(sid);
    }
    let mut batch = sled::Batch::default();
    let sid = new_series(&mut m, desc, &mut batch);
    store.tree.apply_batch(batch)?;
    Ok(sid)
}

/// Writes one (device, metric)'s samples as chunks with rollups; returns the series count.
fn write_group(store: &SledStore, device: &str, metric: Metric, group: Group) -> Result<u64> {
    let Ok(device_id) = DeviceId::new(device) else {
        return Ok(0);
    };
    let n = group.len() as u64;
    for ((channel, bed), spans) in group {
        let desc = SeriesDesc {
            device: device_id.clone(),
            metric,
            channel,
            bed,
        };
        let sid = series(store, desc)?;
        let mut batch = sled::Batch::default();
        let mut newest = None;
        for (span, samples) in spans {
            let key = keys::span_key(keys::CHUNK, sid, span);
            let samples = match store.tree.get(key)? {
                Some(v) => merge(
                    chunk::decode(&v).map_err(|e| StoreError::Migrate(e.to_string()))?,
                    samples,
                ),
                None => merge(Vec::new(), samples),
            };
            newest = samples.last().copied().or(newest);
            let bytes = chunk::encode(&samples).map_err(|e| StoreError::Migrate(e.to_string()))?;
            batch.insert(&key[..], bytes);
            let r = SpanRollups::of(span, &samples);
            if !r.minutes.is_empty() {
                batch.insert(&keys::span_key(keys::ROLLUP, sid, span)[..], r.encode(span));
            }
        }
        if let Some(l) = newest {
            batch.insert(
                &keys::sid_key(keys::LATEST, sid)[..],
                &keys::encode_sample(&l)[..],
            );
            store.mem().offer_latest(sid, l);
        }
        store.tree.apply_batch(batch)?;
    }
    Ok(n)
}

fn write_rollups(
    store: &SledStore,
    by_span: HashMap<(u32, Millis), Vec<(Millis, keys::Agg)>>,
) -> Result<()> {
    let mut batch = sled::Batch::default();
    for ((sid, span), minutes) in by_span {
        let key = keys::span_key(keys::ROLLUP, sid, span);
        let mut r = store
            .tree
            .get(key)?
            .and_then(|v| SpanRollups::decode(span, &v))
            .unwrap_or_default();
        for (minute, agg) in minutes {
            r.minutes.retain(|(m, _)| *m != minute);
            r.minutes.push((minute, agg));
        }
        r.minutes.sort_by_key(|(m, _)| *m);
        batch.insert(&key[..], r.encode(span));
    }
    store.tree.apply_batch(batch)?;
    Ok(())
}

fn remove(old: &sled::Tree, keys: Vec<sled::IVec>) -> Result<()> {
    for part in keys.chunks(10_000) {
        let mut batch = sled::Batch::default();
        for k in part {
            batch.remove(k);
        }
        old.apply_batch(batch)?;
    }
    Ok(())
}
