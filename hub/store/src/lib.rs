//! # wardhub-store
//!
//! The time-series store: raw observations in compressed chunks, latest values, one-minute
//! rollups, retention.
//!
//! [`SledStore`] keeps the time series in one sled tree (layout in `keys.rs`, specification in
//! `docs/STORAGE.md`):
//!
//! 1. [`SledStore::write`] appends the batch's samples as one entry (`log.rs`) to the
//!    append log's files (`wal/` in the data directory, `wal.rs`), then adds them to the
//!    series' open chunks in memory (`memory.rs`). Writes are not durable until the flusher
//!    (see [`SledStore::run_flusher`]) has synced the log and flushed sled;
//!    [`SledStore::wait_durable`] waits for that, and is what the MQTT PUBACK and the HL7 ACK
//!    wait on.
//! 2. The fold ([`SledStore::fold`], every second) seals each open chunk whose span is over
//!    into one compressed chunk ([`chunk`]) with its one-minute rollups, in one sled batch;
//!    log segments whose entries are all sealed are deleted once that is flushed.
//! 3. Queries read sealed chunks, rollups and the open chunks; on start the log is replayed
//!    into open chunks, so a kill -9 loses nothing that was durable.
//!
//! Files: `lib.rs` opens the store and rebuilds it from the log; `write.rs`, `read.rs`,
//! `tasks.rs` (durability tickets, the flusher, the folder), `retention.rs`, `types.rs` (the
//! vocabulary), and the format's parts ([`chunk`], `keys.rs`, `log.rs`, `wal.rs`, `memory.rs`,
//! `fold.rs`, `query.rs`, `series.rs`, `migrate.rs`, `legacy.rs`, [`admin`]).
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
mod read;
mod retention;
mod series;
mod tasks;
mod types;
mod wal;
mod write;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use fold::FoldReport;
use memory::Memory;
use series::SeriesDesc;

pub use types::*;

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

#[cfg(test)]
mod tests;
