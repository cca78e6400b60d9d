//! Retention: whole chunks past raw retention and rollups past rollup retention are deleted;
//! a series with nothing left is forgotten.

use wardhub_model::Millis;

use super::*;

impl SledStore {
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
