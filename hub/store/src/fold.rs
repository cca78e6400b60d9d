//! Sealing: open chunks whose span is over become compressed chunks on disk, with their
//! one-minute rollups, in one atomic batch; append-log segments whose entries are all sealed
//! are deleted after that batch is flushed, so a crash at any point leaves the log entries,
//! the chunks or both (replaying into a sealed span merges: a time in both is one sample).
//!
//! A chunk is due when its span ended [`GRACE_MS`] ago (by the device's clock) and it has been
//! open that long (by the hub's), or when it has been open for a span and the grace whatever
//! the device's clock says, or when open chunks take more than their memory bound (oldest
//! first). Samples arriving for a span already sealed open a new chunk of that span; sealing
//! it merges both into one (a replayed time overwrites), so a span is always one chunk and
//! its rollups are computed from exactly its samples: replays and restarts never double count.

use std::sync::atomic::Ordering;

use wardhub_model::Millis;

use super::chunk;
use super::keys::{self, SpanRollups, SPAN_MS};
use super::memory::{merge, OpenChunk};
use super::{Result, SledStore};

/// How long a span stays open for late samples after it ends.
pub const GRACE_MS: Millis = 30_000;

/// What one fold did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldReport {
    /// Chunks written.
    pub sealed: usize,
    /// Of them, chunks merged with one already on disk (late or replayed samples).
    pub merged: usize,
    /// Append-log segments deleted.
    pub log_removed: usize,
    /// Latest values written.
    pub latest_written: usize,
}

fn due(span: Millis, c: &OpenChunk, now: Millis) -> bool {
    let span_over = now >= span.saturating_add(SPAN_MS + GRACE_MS)
        && now >= c.opened_at.saturating_add(GRACE_MS);
    span_over || now >= c.opened_at.saturating_add(SPAN_MS + GRACE_MS)
}

impl SledStore {
    /// Seals every open chunk that is due at hub time `now` (see the module docs).
    pub fn fold(&self, now: Millis) -> Result<FoldReport> {
        self.fold_where(now, false)
    }

    /// Seals every open chunk whatever its time (before a compaction, and in tests).
    pub fn fold_all(&self, now: Millis) -> Result<FoldReport> {
        self.fold_where(now, true)
    }

    fn fold_where(&self, now: Millis, all: bool) -> Result<FoldReport> {
        let mut guard = self.mem();
        let m = &mut *guard;
        let mut chosen: Vec<(u32, Millis)> = Vec::new();
        let mut others: Vec<(Millis, usize, u32, Millis)> = Vec::new();
        for (&sid, s) in &m.series {
            for (&span, c) in &s.open {
                if all || due(span, c, now) {
                    chosen.push((sid, span));
                } else {
                    others.push((c.opened_at, c.bytes(), sid, span));
                }
            }
        }
        // Over the memory bound: seal the oldest open chunks early, down to three quarters.
        let limit = self.open_chunk_limit.load(Ordering::Relaxed);
        if m.open_bytes > limit {
            others.sort_unstable();
            let mut bytes = m.open_bytes;
            for (_, b, sid, span) in others {
                if bytes <= limit / 4 * 3 {
                    break;
                }
                bytes = bytes.saturating_sub(b);
                chosen.push((sid, span));
            }
            tracing::warn!(
                limit,
                "open chunks reached their memory bound; sealing the oldest early"
            );
        }
        let mut report = FoldReport::default();
        let mut batch = sled::Batch::default();
        let mut sealed = std::collections::HashSet::new();
        for &(sid, span) in &chosen {
            let Some(open) = m.series.get(&sid).and_then(|s| s.open.get(&span)) else {
                continue;
            };
            let fresh = open.samples();
            let key = keys::span_key(keys::CHUNK, sid, span);
            let rkey = keys::span_key(keys::ROLLUP, sid, span);
            // Rollups of a span whose chunk retention already deleted (samples older than
            // the raw retention): the new samples' aggregates are added to them.
            let mut prior = None;
            let samples = match self.tree.get(key)? {
                None => {
                    prior = self
                        .tree
                        .get(rkey)?
                        .and_then(|v| SpanRollups::decode(span, &v));
                    fresh
                }
                Some(old) => match chunk::decode(&old) {
                    Ok(old) => {
                        report.merged += 1;
                        merge(old, fresh)
                    }
                    Err(e) => {
                        // Never mixed with a guess: the old bytes are kept aside as they were.
                        self.corrupt.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(sid, span, error = %e, "a stored chunk does not decode; kept in quarantine, new samples sealed alone");
                        let mut q = keys::span_key(keys::QUARANTINE, sid, span).to_vec();
                        q.extend_from_slice(&keys::time_bytes(now));
                        batch.insert(q, old);
                        fresh
                    }
                },
            };
            let bytes = match chunk::encode(&samples) {
                Ok(b) => b,
                Err(e) => {
                    // Cannot happen (the store takes finite values only); the samples stay
                    // in the log rather than being dropped.
                    tracing::error!(sid, span, error = %e, "a chunk does not encode");
                    continue;
                }
            };
            batch.insert(&key[..], bytes);
            let mut rollups = SpanRollups::of(span, &samples);
            if let Some(prior) = &prior {
                rollups = rollups.merged(prior);
            }
            if rollups.minutes.is_empty() {
                batch.remove(&rkey[..]);
            } else {
                batch.insert(&rkey[..], rollups.encode(span));
            }
            report.sealed += 1;
            sealed.insert((sid, span));
        }
        // Log entries below the oldest one an unsealed chunk still needs are all sealed.
        let mut floor = m.next_seq;
        for (&sid, s) in &m.series {
            for (&span, c) in &s.open {
                if !sealed.contains(&(sid, span)) {
                    floor = floor.min(c.min_seq);
                }
            }
        }
        // Latest values, at most once a minute per series ("persisted when a minute closes").
        let minute = keys::minute_of(now);
        let mut wrote_latest = Vec::new();
        for (&sid, s) in &m.series {
            if let (true, Some(l)) = (
                s.latest_dirty && (all || s.latest_written < minute),
                s.latest,
            ) {
                batch.insert(
                    &keys::sid_key(keys::LATEST, sid)[..],
                    &keys::encode_sample(&l)[..],
                );
                wrote_latest.push(sid);
            }
        }
        report.latest_written = wrote_latest.len();
        self.tree.apply_batch(batch)?;
        for (sid, span) in sealed {
            if let Some(s) = m.series.get_mut(&sid) {
                if let Some(c) = s.open.remove(&span) {
                    m.open_bytes = m.open_bytes.saturating_sub(c.bytes());
                }
            }
        }
        for sid in wrote_latest {
            if let Some(s) = m.series.get_mut(&sid) {
                s.latest_dirty = false;
                s.latest_written = minute;
            }
        }
        m.log_floor = m.log_floor.max(floor);
        // Log segments all sealed: deleted once the chunks are on disk.
        let removable = {
            let mut wal = self.wal();
            wal.rotate_if_sealed(floor).map_err(sled::Error::Io)?;
            wal.removable(floor)
        };
        drop(guard);
        if !removable.is_empty() {
            self.db.flush()?;
            self.wal().remove(&removable).map_err(sled::Error::Io)?;
            report.log_removed = removable.len();
        }
        Ok(report)
    }
}
