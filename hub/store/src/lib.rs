//! # wardhub-store
//!
//! The time-series store: raw observations in compressed chunks, latest values, one-minute
//! rollups, retention.
//!
//! [`SledStore`] keeps the time series in one sled tree (layout in [`keys`], specification in
//! `docs/STORAGE.md`):
//!
//! 1. [`SledStore::write`] appends the batch's samples as one entry ([`log`]) to the
//!    append log's files (`wal/` in the data directory, [`wal`]), then adds them to the
//!    series' open chunks in memory ([`memory`]). Writes are not durable until the flusher
//!    (see [`SledStore::run_flusher`]) has synced the log and flushed sled;
//!    [`SledStore::wait_durable`] waits for that, and is what the MQTT PUBACK and the HL7 ACK
//!    wait on.
//! 2. The fold ([`SledStore::fold`], every second) seals each open chunk whose span is over
//!    into one compressed chunk ([`chunk`]) with its one-minute rollups, in one sled batch;
//!    log segments whose entries are all sealed are deleted once that is flushed.
//! 3. Queries read sealed chunks, rollups and the open chunks; on start the log is replayed
//!    into open chunks, so a kill -9 loses nothing that was durable.
//!
//! ```
//! use wardhub_store::{Retention, SledStore, TimeRange};
//! use wardhub_model::{metric_by_name, DeviceId, Observation, Status};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SledStore::open(dir.path(), 16 << 20, Retention::default()).unwrap();
//! let o = Observation {
//!     device_id: DeviceId::new("mon-1").unwrap(), bed: Some("bed-01".into()),
//!     metric: metric_by_name("hr").unwrap(), value: 72.0, observed_at: 1_000,
//!     received_at: 1_040, status: Status::Valid, channel: None, clock_correction_ms: 0,
//! };
//! store.write(&[o]).unwrap();
//! store.fold(1_000_000).unwrap(); // seals the chunk
//! let all = TimeRange { from: 0, to: 10_000 };
//! assert_eq!(store.bed_observations("bed-01", all, 10).unwrap().items[0].value, 72.0);
//! ```

pub mod admin;
pub mod chunk;
mod fold;
mod keys;
mod legacy;
mod log;
mod memory;
mod migrate;
mod query;
mod series;
mod wal;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wardhub_model::{DeviceId, Metric, Millis, Observation};

pub use fold::FoldReport;
use memory::Memory;
use series::SeriesDesc;

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
    #[error("the data directory {path} is in format {found}; this wardhub reads format {wants}")]
    Format { path: String, found: u8, wants: u8 },
    #[error("migrating the data directory: {0}")]
    Migrate(String),
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

/// What a retention run deleted: observations (in whole chunks) and one-minute rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub raw_deleted: u64,
    pub rollups_deleted: u64,
    /// Series with nothing left (no chunk, no rollup, nothing open) that were forgotten.
    pub series_retired: u64,
}

/// Retention settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw: Duration,
    pub rollup: Duration,
}

impl Default for Retention {
    /// The defaults of `deploy/hub.toml`: 72 h of raw data, 30 days of rollups.
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(72 * 3600),
            rollup: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The default bound of the open chunks' memory (`store.open_chunk_bytes`).
pub const DEFAULT_OPEN_CHUNK_BYTES: usize = 64 << 20;

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    /// Locked after `mem` when both are needed.
    wal: Mutex<wal::Wal>,
    mem: Mutex<Memory>,
    written: AtomicU64,
    durable: watch::Sender<u64>,
    /// Woken by a durability waiter: the flusher flushes at once (group commit) instead of
    /// waiting for its interval.
    flush_wanted: tokio::sync::Notify,
    retention: Retention,
    /// When a flush last succeeded.
    flushed_at: Mutex<Instant>,
    open_chunk_limit: AtomicUsize,
    /// Chunks or log entries that did not decode (skipped, never guessed at).
    corrupt: AtomicU64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`. A directory that is not writable, or is
    /// in use by another hub, is an error naming it. A directory written by an earlier
    /// wardhub (format 1, one key per observation) is migrated into chunks first.
    pub fn open(dir: &Path, cache_capacity: u64, retention: Retention) -> Result<Arc<SledStore>> {
        let db = open_db(dir, cache_capacity)?;
        let tree = db.open_tree("ts")?;
        match tree.get(keys::META)? {
            None => {
                tree.insert(keys::META, &keys::meta_value()[..])?;
            }
            Some(v) if v.first() == Some(&keys::FORMAT) => {}
            Some(v) => {
                return Err(StoreError::Format {
                    path: dir.display().to_string(),
                    found: v.first().copied().unwrap_or(0),
                    wants: keys::FORMAT,
                })
            }
        }
        let (wal, replay, torn) =
            wal::Wal::open(&dir.join("wal")).map_err(|e| StoreError::Open {
                path: dir.join("wal").display().to_string(),
                source: sled::Error::Io(e),
            })?;
        if torn > 0 {
            tracing::warn!(bytes = torn, "the append log ends in a torn entry (a crash during a write that was never acknowledged); cut");
        }
        let (durable, _) = watch::channel(0);
        let store = SledStore {
            db,
            tree,
            wal: Mutex::new(wal),
            mem: Mutex::new(Memory::default()),
            written: AtomicU64::new(0),
            durable,
            flush_wanted: tokio::sync::Notify::new(),
            retention,
            flushed_at: Mutex::new(Instant::now()),
            open_chunk_limit: AtomicUsize::new(DEFAULT_OPEN_CHUNK_BYTES),
            corrupt: AtomicU64::new(0),
        };
        store.load(replay)?;
        migrate::migrate_if_needed(&store, dir)?;
        Ok(Arc::new(store))
    }

    /// Bounds the memory of open chunks: past it, the oldest are sealed early.
    pub fn set_open_chunk_limit(&self, bytes: usize) {
        self.open_chunk_limit
            .store(bytes.max(1 << 20), Ordering::Relaxed);
    }

    /// The database, for other components' trees (alarms, registry).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn mem(&self) -> MutexGuard<'_, Memory> {
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wal(&self) -> MutexGuard<'_, wal::Wal> {
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the series table, the latest values and the append log (replayed into open
    /// chunks).
    fn load(&self, replay: Vec<wal::Replayed>) -> Result<()> {
        let mut m = self.mem();
        for item in self.tree.scan_prefix([keys::SERIES]) {
            let (k, v) = item?;
            match (keys::sid_of(&k), SeriesDesc::decode(&v)) {
                (Some(sid), Some(desc)) => m.insert(sid, desc),
                _ => {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("a series description does not decode; its data is not shown");
                }
            }
        }
        let sids: Vec<u32> = m.series.keys().copied().collect();
        for sid in sids {
            if let Some(v) = self.tree.get(keys::sid_key(keys::LATEST, sid))? {
                if let Some(s) = keys::decode_sample(&v) {
                    m.offer_latest(sid, s);
                }
            }
            if let Some((_, v)) = self
                .tree
                .scan_prefix(keys::sid_key(keys::CHUNK, sid))
                .next_back()
                .transpose()?
            {
                if let Some(s) = chunk::decode(&v).ok().and_then(|s| s.last().copied()) {
                    m.offer_latest(sid, s);
                }
            }
            if let Some(series) = m.series.get_mut(&sid) {
                series.latest_dirty = false;
            }
        }
        let mut first = None;
        let mut batch = sled::Batch::default();
        for entry in replay {
            let seq = entry.seq;
            first.get_or_insert(seq);
            m.next_seq = m.next_seq.max(seq + 1);
            match log::decode(&entry.payload) {
                Ok(e) => {
                    // A series started just before a crash: its description may not have
                    // reached sled, but it is in the entry.
                    for (sid, desc) in e.series {
                        if !m.series.contains_key(&sid) {
                            batch.insert(&keys::sid_key(keys::SERIES, sid)[..], desc.encode());
                            m.insert(sid, desc);
                        }
                    }
                    for (sid, s) in e.samples {
                        m.push(sid, s, seq);
                    }
                }
                Err(e) => {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(seq, error = %e, "an append-log entry does not decode; it is kept, not replayed");
                }
            }
        }
        self.tree.apply_batch(batch)?;
        m.log_floor = first.unwrap_or(m.next_seq);
        Ok(())
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

    /// Flushes everything written so far (syncs the append log, flushes sled); returns how
    /// long it took.
    pub async fn flush(&self) -> Result<Duration> {
        let target = self.written.load(Ordering::Acquire);
        let started = Instant::now();
        let file = self.wal().current();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(sled::Error::Io)?;
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

    /// Folds every `interval` (see [`SledStore::fold`]) with the hub's clock, until `cancel`.
    pub async fn run_folder(
        self: Arc<Self>,
        interval: Duration,
        now: impl Fn() -> Millis + Send,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            let store = self.clone();
            let at = now();
            match tokio::task::spawn_blocking(move || store.fold(at)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "sealing chunks failed; the samples stay in the append log")
                }
                Err(e) => tracing::error!(error = %e, "the fold task failed"),
            }
        }
    }

    /// Bytes on disk: sled's files and the append log's.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0) + self.wal().bytes()
    }

    /// Memory of the open chunks.
    pub fn open_chunk_bytes(&self) -> usize {
        self.mem().open_bytes
    }

    /// Chunks, rollups or log entries that did not decode since start (each skipped and
    /// logged, never read as something else).
    pub fn corrupt_count(&self) -> u64 {
        self.corrupt.load(Ordering::Relaxed)
    }

    /// Seals what is due, then deletes whole chunks older than `now - raw` and rollups older
    /// than `now - rollup`, and forgets series with nothing left.
    pub fn enforce_retention(&self, now: Millis) -> Result<RetentionReport> {
        self.fold(now)?;
        let raw_cutoff = now.saturating_sub(ms(self.retention.raw));
        let roll_cutoff = now.saturating_sub(ms(self.retention.rollup));
        let mut report = RetentionReport::default();
        let sids: Vec<u32> = self.mem().series.keys().copied().collect();
        for &sid in &sids {
            report.raw_deleted += self.delete_spans(keys::CHUNK, sid, raw_cutoff, |v| {
                chunk::count(v).unwrap_or(0)
            })?;
            report.rollups_deleted += self.delete_spans(keys::ROLLUP, sid, roll_cutoff, |v| {
                keys::SpanRollups::decode(0, v).map_or(0, |r| r.minutes.len() as u64)
            })?;
        }
        let mut m = self.mem();
        for sid in sids {
            let idle = m.series.get(&sid).is_some_and(|s| s.open.is_empty());
            if !idle {
                continue;
            }
            let empty = |kind| -> Result<bool> {
                Ok(self
                    .tree
                    .scan_prefix(keys::sid_key(kind, sid))
                    .next()
                    .transpose()?
                    .is_none())
            };
            if empty(keys::CHUNK)? && empty(keys::ROLLUP)? {
                let mut batch = sled::Batch::default();
                batch.remove(&keys::sid_key(keys::SERIES, sid)[..]);
                batch.remove(&keys::sid_key(keys::LATEST, sid)[..]);
                self.tree.apply_batch(batch)?;
                m.remove(sid);
                report.series_retired += 1;
            }
        }
        Ok(report)
    }

    /// Deletes the `kind` values of `sid` whose whole span ends by `cutoff`, in bounded
    /// batches; returns the sum of `weigh` over them.
    fn delete_spans(
        &self,
        kind: u8,
        sid: u32,
        cutoff: Millis,
        weigh: impl Fn(&[u8]) -> u64,
    ) -> Result<u64> {
        let start = keys::span_key(kind, sid, Millis::MIN);
        let end = keys::span_key(kind, sid, cutoff.saturating_sub(keys::SPAN_MS - 1));
        let mut deleted = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in self.tree.range(start..end).take(1_000) {
                let (k, v) = item?;
                deleted += weigh(&v);
                batch.remove(k);
                n += 1;
            }
            if n == 0 {
                return Ok(deleted);
            }
            self.tree.apply_batch(batch)?;
        }
    }
}

fn open_db(dir: &Path, cache_capacity: u64) -> Result<sled::Db> {
    let open_err = |source| StoreError::Open {
        path: dir.display().to_string(),
        source,
    };
    let backup = admin::compact_backup(dir);
    if backup.exists() && !dir.join("db").exists() {
        return Err(open_err(sled::Error::Unsupported(format!(
            "an interrupted `wardhub admin compact` left the data in {}; move it back to {}",
            backup.display(),
            dir.display()
        ))));
    }
    std::fs::create_dir_all(dir).map_err(|e| open_err(sled::Error::Io(e)))?;
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_capacity)
        // The flusher owns durability; sled's own periodic flush would only add jitter.
        .flush_every_ms(None);
    // A hub that has just stopped (a restart, systemd's or a test's) may take a moment to
    // let go of the directory's lock; another hub that keeps it is an error after 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(open_err(e)),
        }
    }
}

/// Adds a series (its description to `batch`); returns its id.
fn new_series(m: &mut Memory, desc: SeriesDesc, batch: &mut sled::Batch) -> u32 {
    let sid = m.next_sid;
    batch.insert(&keys::sid_key(keys::SERIES, sid)[..], desc.encode());
    m.insert(sid, desc);
    sid
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

type SeriesOrder = (String, u32, Option<String>, Option<String>);

impl SledStore {
    /// Sorts series ids by a key of their descriptions (the order of same-time samples).
    fn order_series(&self, sids: &mut [u32], key: impl Fn(&SeriesDesc) -> SeriesOrder) {
        let m = self.mem();
        sids.sort_by_cached_key(|sid| m.series.get(sid).map(|s| key(&s.desc)));
    }
}

fn page<T>(mut items: Vec<T>, limit: usize) -> Page<T> {
    let truncated = items.len() > limit;
    items.truncate(limit);
    Page { items, truncated }
}

/// The storage the pipeline and the API use.
impl SledStore {
    /// Applies the observations atomically (not yet durable); returns a ticket for
    /// durability waits. Same device, metric and time overwrites (replays are idempotent).
    pub fn write(&self, obs: &[Observation]) -> Result<u64> {
        if obs.is_empty() {
            return Ok(self.written.load(Ordering::Acquire));
        }
        // The memory lock also orders tickets: a ticket is only handed out after its batch
        // is applied, so "flushed up to ticket N" covers every batch with ticket <= N.
        let mut m = self.mem();
        let mut batch = sled::Batch::default();
        let mut created = Vec::new();
        let mut samples = Vec::with_capacity(obs.len());
        for o in obs {
            if !o.value.is_finite() {
                // The model never holds one; refused here too rather than stored as anything.
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::error!(device = %o.device_id.as_str(), "a non-finite value reached the store; not stored");
                continue;
            }
            let channel = o.channel.as_deref();
            let bed = o.bed.as_deref();
            let sid = match m.find(o.device_id.as_str(), o.metric.code, channel, bed) {
                Some(sid) => sid,
                None => {
                    let desc = SeriesDesc {
                        device: o.device_id.clone(),
                        metric: o.metric,
                        channel: o.channel.clone(),
                        bed: o.bed.clone(),
                    };
                    let sid = new_series(&mut m, desc, &mut batch);
                    created.push(sid);
                    sid
                }
            };
            samples.push((
                sid,
                chunk::Sample {
                    t: o.observed_at,
                    value: o.value,
                    status: o.status,
                    received_at: o.received_at,
                },
            ));
        }
        let seq = m.next_seq;
        let new: Vec<(u32, &SeriesDesc)> = created
            .iter()
            .filter_map(|sid| Some((*sid, &m.series.get(sid)?.desc)))
            .collect();
        let entry = log::encode(&new, &samples);
        if let Err(e) = self.wal().append(seq, &entry) {
            for sid in created {
                m.remove(sid);
            }
            return Err(sled::Error::Io(e).into());
        }
        m.next_seq += 1;
        // The new series' descriptions (also in the entry, for a crash before sled's flush).
        self.tree.apply_batch(batch)?;
        for (sid, s) in samples {
            m.push(sid, s, seq);
        }
        Ok(self.written.fetch_add(1, Ordering::AcqRel) + 1)
    }

    pub fn device_observations(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>> {
        let mut sids = self.series_of_device(device, metric);
        self.order_series(&mut sids, |d| {
            (
                String::new(),
                d.metric.code,
                d.channel.clone(),
                d.bed.clone(),
            )
        });
        Ok(page(self.observations(&sids, range, limit)?, limit))
    }

    pub fn device_latest(&self, device: &str) -> Result<Vec<Observation>> {
        let m = self.mem();
        let mut best = query::Latest::default();
        for sid in m.sids_of_device(device) {
            best.offer(&m, sid, false);
        }
        let mut out = best.into_observations();
        out.sort_by_key(|o| o.metric.code);
        Ok(out)
    }

    pub fn bed_latest(&self, bed: &str) -> Result<Vec<Observation>> {
        let m = self.mem();
        let mut best = query::Latest::default();
        for sid in m.sids_of_bed(bed) {
            best.offer(&m, sid, true);
        }
        let mut out = best.into_observations();
        out.sort_by(|a, b| {
            (a.device_id.as_str(), a.metric.code).cmp(&(b.device_id.as_str(), b.metric.code))
        });
        Ok(out)
    }

    pub fn bed_observations(
        &self,
        bed: &str,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>> {
        let mut sids = self.mem().sids_of_bed(bed);
        self.order_series(&mut sids, |d| {
            (
                d.device.as_str().to_owned(),
                d.metric.code,
                d.channel.clone(),
                None,
            )
        });
        Ok(page(self.observations(&sids, range, limit)?, limit))
    }

    pub fn device_rollups(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Rollup>> {
        let sids = self.series_of_device(device, metric);
        let mut out = self.rollups(&sids, range, limit)?;
        out.sort_by(|a, b| {
            (a.minute, a.metric.code, &a.channel).cmp(&(b.minute, b.metric.code, &b.channel))
        });
        // A device moved between beds within a minute has a rollup for each: one minute of
        // one channel is one rollup on the device's view.
        out.dedup_by(|b, a| {
            let same =
                a.minute == b.minute && a.metric.code == b.metric.code && a.channel == b.channel;
            if same {
                query::merge_rollup(a, b);
            }
            same
        });
        Ok(page(out, limit))
    }

    pub fn bed_rollups(&self, bed: &str, range: TimeRange, limit: usize) -> Result<Page<Rollup>> {
        let sids = self.mem().sids_of_bed(bed);
        let mut out = self.rollups(&sids, range, limit)?;
        out.sort_by(|a, b| {
            (a.minute, a.device_id.as_str(), a.metric.code, &a.channel).cmp(&(
                b.minute,
                b.device_id.as_str(),
                b.metric.code,
                &b.channel,
            ))
        });
        Ok(page(out, limit))
    }

    /// Whether any observation of this device was ever stored (and not retired by retention).
    pub fn has_device(&self, device: &str) -> Result<bool> {
        Ok(!self.mem().sids_of_device(device).is_empty())
    }
}

#[cfg(test)]
mod tests;
