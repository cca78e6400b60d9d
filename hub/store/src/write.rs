//! The write path: one append-log entry per batch, then the series' open chunks in memory.

use std::sync::atomic::Ordering;
use wardhub_model::Observation;

use super::*;

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
}
