//! The time-series store: raw observations, latest values, one-minute rollups, retention.
//!
//! [`SledStore`] keeps everything in one sled tree (layout in [`keys`]) so that every
//! [`TimeSeriesStore::write`] is one atomic batch. Writes are not durable until the flusher
//! (see [`SledStore::run_flusher`]) has called `flush_async`; [`SledStore::wait_durable`] waits
//! for that, and is what the HL7 adapter's ACK waits on.

pub mod chunk;
mod keys;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{DeviceId, Metric, Millis, Observation};

use keys::{Agg, Record};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("the store is shut down")]
    Closed,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An inclusive time range in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Millis,
    pub to: Millis,
}

/// Results of a query, with `truncated` set when the limit cut them.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub truncated: bool,
}

/// One minute of one device's metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub device_id: DeviceId,
    pub metric: Metric,
    /// The channel it aggregates (each channel has rollups of its own).
    pub channel: Option<String>,
    pub minute: Millis,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

/// What a retention run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub raw_deleted: u64,
    pub rollups_deleted: u64,
}

/// The storage the pipeline and the API need.
pub trait TimeSeriesStore: Send + Sync {
    /// Applies the observations atomically (not yet durable); returns a ticket for
    /// durability waits. Same device, metric and time overwrites (replays are idempotent).
    fn write(&self, obs: &[Observation]) -> Result<u64>;
    fn device_observations(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>>;
    fn device_latest(&self, device: &str) -> Result<Vec<Observation>>;
    fn bed_latest(&self, bed: &str) -> Result<Vec<Observation>>;
    fn bed_observations(
        &self,
        bed: &str,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>>;
    fn device_rollups(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Rollup>>;
    fn bed_rollups(&self, bed: &str, range: TimeRange, limit: usize) -> Result<Page<Rollup>>;
    /// Whether any observation of this device was ever stored (and not retired by retention).
    fn has_device(&self, device: &str) -> Result<bool>;
}

/// Retention settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw: Duration,
    pub rollup: Duration,
}

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    writer: Mutex<WriterState>,
    written: AtomicU64,
    durable: watch::Sender<u64>,
    /// Woken by a durability waiter: the flusher flushes at once (group commit) instead of
    /// waiting for its interval.
    flush_wanted: tokio::sync::Notify,
    retention: Retention,
    /// When a flush last succeeded.
    flushed_at: Mutex<Instant>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

/// State only the (single) writer touches: caches that spare a read per observation.
#[derive(Default)]
struct WriterState {
    /// Latest time (and whether that value is clinically usable) per series.
    latest: HashMap<Vec<u8>, (Millis, bool)>,
    beds: HashSet<String>,
    rollups: HashMap<Vec<u8>, (Agg, Option<String>)>,
    rollup_minute: Millis,
    evicted_for: Millis,
}

/// How many minutes of rollups stay cached for late data.
const ROLLUP_CACHE_MINUTES: i64 = 10;

impl SledStore {
    /// Opens (creating if needed) the store in `dir`. A directory that is not writable, or is
    /// in use by another hub, is an error naming it.
    pub fn open(dir: &Path, cache_capacity: u64, retention: Retention) -> Result<Arc<SledStore>> {
        let open_err = |source| StoreError::Open {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(sled::Error::Io(e)))?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity)
            // The flusher owns durability; sled's own periodic flush would only add jitter.
            .flush_every_ms(None);
        // A hub that has just stopped (a restart, systemd's or a test's) may take a moment to
        // let go of the directory's lock; another hub that keeps it is an error after 3 s.
        let deadline = Instant::now() + Duration::from_secs(3);
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(open_err(e)),
            }
        };
        let tree = db.open_tree("timeseries").map_err(open_err)?;
        let (durable, _) = watch::channel(0);
        Ok(Arc::new(SledStore {
            db,
            tree,
            writer: Mutex::new(WriterState::default()),
            written: AtomicU64::new(0),
            durable,
            flush_wanted: tokio::sync::Notify::new(),
            retention,
            flushed_at: Mutex::new(Instant::now()),
        }))
    }

    /// The database, for other components' trees (alarms, registry).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Waits until the write with this ticket has been flushed to disk.
    pub async fn wait_durable(&self, ticket: u64) -> Result<()> {
        let mut rx = self.durable.subscribe();
        if *rx.borrow() < ticket {
            self.flush_wanted.notify_one();
        }
        rx.wait_for(|d| *d >= ticket)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Closed)
    }

    /// A ticket covering everything applied to the database before this call (the time
    /// series and the other components' trees alike): [`SledStore::wait_durable`] on it
    /// returns once a flush that started after it has finished.
    pub fn barrier(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// How long writes have waited to become durable: `None` when everything written is
    /// durable, else the time since the last successful flush.
    pub fn durability_lag(&self) -> Option<Duration> {
        if self.written.load(Ordering::Acquire) <= *self.durable.borrow() {
            return None;
        }
        Some(
            self.flushed_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed(),
        )
    }

    /// Flushes everything written so far; returns how long it took.
    pub async fn flush(&self) -> Result<Duration> {
        let target = self.written.load(Ordering::Acquire);
        let started = Instant::now();
        self.db.flush_async().await?;
        *self.flushed_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.durable.send_if_modified(|d| {
            let changed = *d < target;
            *d = (*d).max(target);
            changed
        });
        Ok(started.elapsed())
    }

    /// Flushes every `interval` while there is something new, and at once when someone waits
    /// for durability (every waiter that arrives during a flush shares the next one), until
    /// `cancel`; then flushes a last time. `on_flush` sees each flush's duration (for metrics).
    pub async fn run_flusher(
        self: Arc<Self>,
        interval: Duration,
        cancel: CancellationToken,
        on_flush: impl Fn(Result<Duration>) + Send,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.flush_wanted.notified() => {}
                _ = cancel.cancelled() => break,
            }
            if self.written.load(Ordering::Acquire) > *self.durable.borrow() {
                on_flush(self.flush().await);
            }
        }
        on_flush(self.flush().await);
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Deletes raw data older than `now - raw` and rollups older than `now - rollup`.
    pub fn enforce_retention(&self, now: Millis) -> Result<RetentionReport> {
        let raw_cutoff = now.saturating_sub(ms(self.retention.raw));
        let roll_cutoff = now.saturating_sub(ms(self.retention.rollup));
        let mut report = RetentionReport::default();
        for item in self.tree.scan_prefix([keys::LATEST]) {
            let (key, _) = item?;
            let Some((device, metric, _)) = keys::split_series(&key[1..]) else {
                continue;
            };
            let raw = keys::series(keys::RAW, device, metric.code);
            report.raw_deleted += self.delete_before(&raw, raw_cutoff)?;
            let roll = keys::series(keys::ROLLUP, device, metric.code);
            report.rollups_deleted += self.delete_before(&roll, roll_cutoff)?;
        }
        for item in self.tree.scan_prefix([keys::BED]) {
            let (key, _) = item?;
            let Ok(bed) = std::str::from_utf8(&key[1..]) else {
                continue;
            };
            self.delete_before(&keys::prefix(keys::BED_INDEX, bed), raw_cutoff)?;
            self.delete_before(&keys::prefix(keys::BED_ROLLUP, bed), roll_cutoff)?;
        }
        Ok(report)
    }

    /// Deletes keys `prefix ++ time` with time before `cutoff`, in bounded batches.
    fn delete_before(&self, prefix: &[u8], cutoff: Millis) -> Result<u64> {
        let mut end = prefix.to_vec();
        end.extend_from_slice(&keys::time_bytes(cutoff));
        let mut deleted = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for key in self
                .tree
                .range(prefix.to_vec()..end.clone())
                .keys()
                .take(10_000)
            {
                batch.remove(key?);
                n += 1;
            }
            if n == 0 {
                return Ok(deleted);
            }
            self.tree.apply_batch(batch)?;
            deleted += n;
        }
    }

    fn observation(device: &str, metric: Metric, rec: Record) -> Option<Observation> {
        Some(Observation {
            device_id: DeviceId::new(device).ok()?,
            bed: rec.bed,
            metric,
            value: rec.value,
            observed_at: rec.observed_at,
            received_at: rec.received_at,
            status: rec.status,
            channel: rec.channel,
        })
    }

    /// `metric` alone, or every metric the device has sent.
    fn metrics_of(&self, device: &str, metric: Option<Metric>) -> Result<Vec<Metric>> {
        match metric {
            Some(m) => Ok(vec![m]),
            None => self.series_metrics(device),
        }
    }

    fn series_metrics(&self, device: &str) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        for item in self
            .tree
            .scan_prefix(keys::prefix(keys::LATEST, device))
            .keys()
        {
            let key = item?;
            if let Some((_, metric, _)) = keys::split_series(&key[1..]) {
                out.push(metric);
            }
        }
        Ok(out)
    }

    fn scan_raw(
        &self,
        device: &str,
        metric: Metric,
        range: TimeRange,
        limit: usize,
        out: &mut Vec<Observation>,
    ) -> Result<()> {
        let start = keys::raw(device, metric.code, range.from, None);
        // Through every channel of the last millisecond.
        let mut end = keys::raw(device, metric.code, range.to, None);
        end.push(0xff);
        for item in self.tree.range(start..=end).take(limit) {
            let (_, v) = item?;
            if let Some(o) = Record::decode(&v).and_then(|r| Self::observation(device, metric, r)) {
                out.push(o);
            }
        }
        Ok(())
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `prefix ++ time(from)` and `prefix ++ time(to)` (with `0xff` after it when keys go on past
/// the time, so every key at `to` is inside): the bounds of a time-range scan.
fn span(prefix: &[u8], from: Millis, to: Millis, more_after_time: bool) -> (Vec<u8>, Vec<u8>) {
    let mut start = prefix.to_vec();
    start.extend_from_slice(&keys::time_bytes(from));
    let mut end = prefix.to_vec();
    end.extend_from_slice(&keys::time_bytes(to));
    if more_after_time {
        end.push(0xff);
    }
    (start, end)
}

fn page<T>(mut items: Vec<T>, limit: usize) -> Page<T> {
    let truncated = items.len() > limit;
    items.truncate(limit);
    Page { items, truncated }
}

impl TimeSeriesStore for SledStore {
    fn write(&self, obs: &[Observation]) -> Result<u64> {
        if obs.is_empty() {
            return Ok(self.written.load(Ordering::Acquire));
        }
        // The writer lock also orders tickets: a ticket is only handed out after its batch
        // is applied, so "flushed up to ticket N" covers every batch with ticket <= N.
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = sled::Batch::default();
        let mut in_batch: HashSet<Vec<u8>> = HashSet::new();
        let mut dirty: HashSet<Vec<u8>> = HashSet::new();
        for o in obs {
            let device = o.device_id.as_str();
            let code = o.metric.code;
            let rec = Record {
                value: o.value,
                status: o.status,
                observed_at: o.observed_at,
                received_at: o.received_at,
                bed: o.bed.clone(),
                channel: o.channel.clone(),
            }
            .encode();
            let channel = o.channel.as_deref();
            let raw_key = keys::raw(device, code, o.observed_at, channel);
            let duplicate =
                !in_batch.insert(raw_key.clone()) || self.tree.contains_key(&raw_key)?;
            batch.insert(raw_key, rec.clone());

            // The latest value of a metric: the newest; of two at the same time (two
            // channels), a clinically usable one wins over one that is not (a valid SpO2 of
            // 97 on one channel is not hidden by "not available" on another).
            let latest_key = keys::series(keys::LATEST, device, code);
            let previous = match w.latest.get(&latest_key) {
                Some(t) => Some(*t),
                None => self
                    .tree
                    .get(&latest_key)?
                    .and_then(|v| Record::decode(&v))
                    .map(|r| (r.observed_at, r.status.is_clinically_usable())),
            };
            let usable = o.status.is_clinically_usable();
            let newest = previous.is_none_or(|(t, prev_usable)| {
                o.observed_at > t || (o.observed_at == t && (usable || !prev_usable))
            });
            if newest {
                w.latest.insert(latest_key.clone(), (o.observed_at, usable));
                batch.insert(latest_key, rec.clone());
            }
            if let Some(bed) = &o.bed {
                batch.insert(
                    keys::bed_index(bed, o.observed_at, device, code, channel),
                    &[],
                );
                if newest {
                    batch.insert(keys::bed_latest(bed, device, code), rec);
                }
                if !w.beds.contains(bed) {
                    w.beds.insert(bed.clone());
                    let mut k = vec![keys::BED];
                    k.extend_from_slice(bed.as_bytes());
                    batch.insert(k, &[]);
                }
            }
            if !duplicate && o.status.is_clinically_usable() {
                let minute = keys::minute_of(o.observed_at);
                let roll_key = keys::rollup(device, code, minute, channel);
                if !w.rollups.contains_key(&roll_key) {
                    let stored = self.tree.get(&roll_key)?.and_then(|v| Agg::decode(&v));
                    w.rollups
                        .insert(roll_key.clone(), (stored.unwrap_or(Agg::EMPTY), None));
                }
                if let Some(entry) = w.rollups.get_mut(&roll_key) {
                    entry.0.add(o.value);
                    entry.1.clone_from(&o.bed);
                }
                w.rollup_minute = w.rollup_minute.max(minute);
                dirty.insert(roll_key);
            }
        }
        for roll_key in &dirty {
            let Some((agg, bed)) = w.rollups.get(roll_key) else {
                continue;
            };
            batch.insert(roll_key.as_slice(), &agg.encode()[..]);
            if let (Some(bed), Some((device, metric, rest))) =
                (bed, keys::split_series(&roll_key[1..]))
            {
                if let Some(minute) = keys::time_from(rest) {
                    let channel = keys::channel_of(&rest[8..]);
                    batch.insert(
                        keys::bed_rollup(bed, minute, device, metric.code, channel.as_deref()),
                        &agg.encode()[..],
                    );
                }
            }
        }
        // Minutes far behind the newest are complete: drop them from the cache (late data
        // for them reloads the stored aggregate).
        let horizon = w.rollup_minute - ROLLUP_CACHE_MINUTES * 60_000;
        if w.rollup_minute > w.evicted_for {
            w.evicted_for = w.rollup_minute;
            w.rollups.retain(|k, _| {
                k.len() >= 8 && keys::time_from(&k[k.len() - 8..]).is_some_and(|m| m >= horizon)
            });
        }
        self.tree.apply_batch(batch)?;
        Ok(self.written.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn device_observations(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>> {
        let metrics = self.metrics_of(device, metric)?;
        let mut out = Vec::new();
        for m in metrics {
            self.scan_raw(device, m, range, limit + 1, &mut out)?;
        }
        out.sort_by_key(|o| (o.observed_at, o.metric.code));
        Ok(page(out, limit))
    }

    fn device_latest(&self, device: &str) -> Result<Vec<Observation>> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(keys::prefix(keys::LATEST, device)) {
            let (k, v) = item?;
            if let Some((d, metric, _)) = keys::split_series(&k[1..]) {
                if let Some(o) = Record::decode(&v).and_then(|r| Self::observation(d, metric, r)) {
                    out.push(o);
                }
            }
        }
        Ok(out)
    }

    fn bed_latest(&self, bed: &str) -> Result<Vec<Observation>> {
        let prefix = keys::prefix(keys::BED_LATEST, bed);
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, v) = item?;
            if let Some((d, metric, _)) = keys::split_series(&k[prefix.len()..]) {
                if let Some(o) = Record::decode(&v).and_then(|r| Self::observation(d, metric, r)) {
                    out.push(o);
                }
            }
        }
        out.sort_by(|a, b| {
            (a.device_id.as_str(), a.metric.code).cmp(&(b.device_id.as_str(), b.metric.code))
        });
        Ok(out)
    }

    fn bed_observations(
        &self,
        bed: &str,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>> {
        let prefix = keys::prefix(keys::BED_INDEX, bed);
        let (start, end) = span(&prefix, range.from, range.to, true);
        let mut out = Vec::new();
        for item in self.tree.range(start..end).keys().take(limit + 1) {
            let k = item?;
            let rest = &k[prefix.len()..];
            let Some(t) = keys::time_from(rest) else {
                continue;
            };
            let Some((device, metric, channel)) = keys::split_series(&rest[8..]) else {
                continue;
            };
            let channel = std::str::from_utf8(channel).ok().filter(|c| !c.is_empty());
            if let Some(v) = self.tree.get(keys::raw(device, metric.code, t, channel))? {
                if let Some(o) =
                    Record::decode(&v).and_then(|r| Self::observation(device, metric, r))
                {
                    out.push(o);
                }
            }
        }
        Ok(page(out, limit))
    }

    fn device_rollups(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Rollup>> {
        let metrics = self.metrics_of(device, metric)?;
        let mut out = Vec::new();
        for m in metrics {
            let series = keys::series(keys::ROLLUP, device, m.code);
            let (start, end) = span(&series, keys::minute_of(range.from), range.to, false);
            for item in self.tree.range(start..=end).take(limit + 1) {
                let (k, v) = item?;
                let (Some(minute), Some(agg), Ok(device_id)) = (
                    keys::time_from(&k[series.len()..]),
                    Agg::decode(&v),
                    DeviceId::new(device),
                ) else {
                    continue;
                };
                let channel = keys::channel_of(k.get(series.len() + 8..).unwrap_or_default());
                out.push(rollup(device_id, m, channel, minute, agg));
            }
        }
        out.sort_by_key(|r| (r.minute, r.metric.code));
        Ok(page(out, limit))
    }

    fn bed_rollups(&self, bed: &str, range: TimeRange, limit: usize) -> Result<Page<Rollup>> {
        let prefix = keys::prefix(keys::BED_ROLLUP, bed);
        let (start, end) = span(&prefix, keys::minute_of(range.from), range.to, true);
        let mut out = Vec::new();
        for item in self.tree.range(start..end).take(limit + 1) {
            let (k, v) = item?;
            let rest = &k[prefix.len()..];
            let Some(minute) = keys::time_from(rest) else {
                continue;
            };
            let Some((device, metric, after)) = keys::split_series(&rest[8..]) else {
                continue;
            };
            let (Some(agg), Ok(device_id)) = (Agg::decode(&v), DeviceId::new(device)) else {
                continue;
            };
            out.push(rollup(
                device_id,
                metric,
                keys::channel_of(after),
                minute,
                agg,
            ));
        }
        Ok(page(out, limit))
    }

    fn has_device(&self, device: &str) -> Result<bool> {
        Ok(self
            .tree
            .scan_prefix(keys::prefix(keys::LATEST, device))
            .next()
            .transpose()?
            .is_some())
    }
}

fn rollup(
    device_id: DeviceId,
    metric: Metric,
    channel: Option<String>,
    minute: Millis,
    agg: Agg,
) -> Rollup {
    Rollup {
        device_id,
        metric,
        channel,
        minute,
        min: agg.min,
        max: agg.max,
        mean: agg.mean(),
        count: agg.count,
    }
}

#[cfg(test)]
mod tests;
