//! What IT needs to look after a data directory: [`SledStore::stats`], [`SledStore::verify`]
//! and [`compact`] (behind `wardhub admin stats|verify|compact`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde::Serialize;
use wardhub_model::Millis;

use super::keys::{self, SPAN_MS};
use super::series::SeriesDesc;
use super::{chunk, open_db, Result, SledStore, StoreError};

/// The store's size and content.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StorageStats {
    pub series: u64,
    pub chunks: u64,
    /// Observations in sealed chunks.
    pub observations_sealed: u64,
    /// Observations in open chunks (in the append log, sealed within minutes).
    pub observations_open: u64,
    pub chunk_bytes: u64,
    pub rollup_minutes: u64,
    pub rollup_bytes: u64,
    /// The append log's files (`wal/`): segments and bytes.
    pub log_segments: u64,
    pub log_bytes: u64,
    pub quarantined_chunks: u64,
    /// The oldest and newest observation time in sealed chunks (span starts), epoch ms.
    pub oldest: Option<Millis>,
    pub newest: Option<Millis>,
    /// Bytes of the whole database on disk (every tree, sled's own overhead included).
    pub size_on_disk: u64,
    /// `size_on_disk` per stored observation.
    pub bytes_per_observation: Option<f64>,
    /// Of those, the chunks' own bytes per sealed observation.
    pub chunk_bytes_per_observation: Option<f64>,
}

/// What [`SledStore::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    pub chunks_checked: u64,
    pub observations_checked: u64,
    pub rollups_checked: u64,
    /// One line per problem (key and reason).
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl SledStore {
    /// Counts series, chunks, observations and bytes (a scan of the keys and chunk headers).
    pub fn stats(&self) -> Result<StorageStats> {
        let mut s = StorageStats {
            series: self.tree.scan_prefix([keys::SERIES]).count() as u64,
            ..Default::default()
        };
        for item in self.tree.scan_prefix([keys::CHUNK]) {
            let (k, v) = item?;
            s.chunks += 1;
            s.chunk_bytes += v.len() as u64;
            s.observations_sealed += chunk::count(&v).unwrap_or(0);
            if let Some((_, span)) = keys::split_span_key(&k) {
                s.oldest = Some(s.oldest.map_or(span, |o: Millis| o.min(span)));
                s.newest = Some(s.newest.map_or(span, |o: Millis| o.max(span)));
            }
        }
        for item in self.tree.scan_prefix([keys::ROLLUP]) {
            let (k, v) = item?;
            s.rollup_bytes += v.len() as u64;
            if let Some((_, span)) = keys::split_span_key(&k) {
                s.rollup_minutes +=
                    keys::SpanRollups::decode(span, &v).map_or(0, |r| r.minutes.len() as u64);
            }
        }
        {
            let wal = self.wal();
            s.log_segments = wal.segment_count() as u64;
            s.log_bytes = wal.bytes();
        }
        s.quarantined_chunks = self.tree.scan_prefix([keys::QUARANTINE]).count() as u64;
        s.observations_open = self
            .mem()
            .series
            .values()
            .flat_map(|x| x.open.values())
            .map(|c| c.len() as u64)
            .sum();
        s.size_on_disk = self.size_on_disk();
        let total = s.observations_sealed + s.observations_open;
        s.bytes_per_observation = (total > 0).then(|| s.size_on_disk as f64 / total as f64);
        s.chunk_bytes_per_observation = (s.observations_sealed > 0)
            .then(|| s.chunk_bytes as f64 / s.observations_sealed as f64);
        Ok(s)
    }

    /// Decodes every chunk, rollup and series, and checks each chunk's samples lie
    /// in its span and belong to a known series.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut r = VerifyReport::default();
        let mut known = std::collections::HashSet::new();
        for item in self.tree.scan_prefix([keys::SERIES]) {
            let (k, v) = item?;
            match (keys::sid_of(&k), SeriesDesc::decode(&v)) {
                (Some(sid), Some(_)) => {
                    known.insert(sid);
                }
                _ => r
                    .problems
                    .push(format!("series {:?}: does not decode", keys::sid_of(&k))),
            }
        }
        for item in self.tree.scan_prefix([keys::CHUNK]) {
            let (k, v) = item?;
            r.chunks_checked += 1;
            let Some((sid, span)) = keys::split_span_key(&k) else {
                r.problems.push("a chunk key is malformed".into());
                continue;
            };
            if !known.contains(&sid) {
                r.problems
                    .push(format!("chunk {sid}/{span}: no such series"));
            }
            match chunk::decode(&v) {
                Ok(samples) => {
                    r.observations_checked += samples.len() as u64;
                    if samples.iter().any(|s| keys::span_of(s.t) != span) {
                        r.problems
                            .push(format!("chunk {sid}/{span}: a sample outside its span"));
                    }
                    if samples.is_empty() {
                        r.problems.push(format!("chunk {sid}/{span}: empty"));
                    }
                }
                Err(e) => r.problems.push(format!("chunk {sid}/{span}: {e}")),
            }
        }
        for item in self.tree.scan_prefix([keys::ROLLUP]) {
            let (k, v) = item?;
            r.rollups_checked += 1;
            let Some((sid, span)) = keys::split_span_key(&k) else {
                r.problems.push("a rollup key is malformed".into());
                continue;
            };
            if keys::SpanRollups::decode(span, &v).is_none() {
                r.problems
                    .push(format!("rollups {sid}/{span}: do not decode"));
            }
        }
        let quarantined = self.tree.scan_prefix([keys::QUARANTINE]).count();
        if quarantined > 0 {
            r.problems.push(format!(
                "{quarantined} chunk(s) in quarantine (did not decode when merged)"
            ));
        }
        let corrupt = self.corrupt.load(Ordering::Relaxed);
        if corrupt > 0 {
            r.problems
                .push(format!("{corrupt} undecodable value(s) met since start"));
        }
        Ok(r)
    }
}

/// What [`compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Where an interrupted compaction leaves the original data (see [`compact`]).
pub fn compact_backup(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".before-compact");
    dir.with_file_name(name)
}

fn compact_target(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    dir.with_file_name(name)
}

/// Rewrites a data directory (the hub must be stopped): seals every open chunk, copies every
/// tree into a fresh database beside it, checks the copy's checksum, then swaps the two. sled
/// is log-structured: space of deleted and rewritten keys is only reclaimed this way.
///
/// The swap is two renames; if it is interrupted, the original is at
/// [`compact_backup`] and [`SledStore::open`] refuses to start on an empty directory beside it.
pub fn compact(
    dir: &Path,
    cache_capacity: u64,
    retention: super::Retention,
    now: Millis,
) -> Result<CompactReport> {
    let backup = compact_backup(dir);
    let target = compact_target(dir);
    if backup.exists() {
        return Err(StoreError::Migrate(format!(
            "{} exists (an earlier compaction was interrupted); move it back or away first",
            backup.display()
        )));
    }
    {
        let store = SledStore::open(dir, cache_capacity, retention)?;
        store.fold_all(now)?;
        store.db.flush()?;
    }
    let bytes_before = dir_size(dir);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
    }
    {
        let old = open_db(dir, cache_capacity)?;
        let new = open_db(&target, cache_capacity)?;
        for name in old.tree_names() {
            let from = old.open_tree(&name)?;
            let to = new.open_tree(&name)?;
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in from.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
                n += 1;
                if n == 10_000 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                    n = 0;
                }
            }
            to.apply_batch(batch)?;
        }
        new.flush()?;
        if old.checksum()? != new.checksum()? {
            return Err(StoreError::Migrate(
                "the compacted copy differs from the original; nothing was changed".into(),
            ));
        }
    }
    let io = |e| StoreError::Sled(sled::Error::Io(e));
    std::fs::rename(dir, &backup).map_err(io)?;
    std::fs::rename(&target, dir).map_err(io)?;
    std::fs::remove_dir_all(&backup).map_err(io)?;
    Ok(CompactReport {
        bytes_before,
        bytes_after: dir_size(dir),
    })
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The span length this build writes (for `admin stats`).
pub const CHUNK_SPAN_MS: Millis = SPAN_MS;
