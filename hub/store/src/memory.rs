//! What the store keeps in memory: the series table, each series' newest sample and its open
//! chunks (samples not sealed yet; they are also in the append log on disk).
//!
//! Bounded by configuration, not by the data volume: open chunks are sealed when their span
//! is over (plus a grace for late data) or, past `store.open_chunk_bytes`, oldest first.

use std::collections::{BTreeMap, HashMap};

use wardhub_model::Millis;

use super::chunk::{self, ChunkWriter, Sample};
use super::keys::span_of;
use super::series::SeriesDesc;

/// Samples that arrive out of order wait here (merged when read or sealed) instead of
/// re-encoding the chunk each time; past this many the chunk is re-encoded at once.
const MAX_LATE: usize = 256;

/// The samples of one series in one span that are not sealed yet.
pub struct OpenChunk {
    writer: ChunkWriter,
    /// Samples older than (or as old as) the writer's newest, in arrival order.
    late: Vec<Sample>,
    /// The oldest append-log entry holding one of these samples.
    pub min_seq: u64,
    /// The hub's receipt time of the first sample (bounds how long the chunk stays open
    /// whatever the device's clock says).
    pub opened_at: Millis,
}

impl OpenChunk {
    fn new(min_seq: u64, opened_at: Millis) -> Self {
        OpenChunk {
            writer: ChunkWriter::default(),
            late: Vec::new(),
            min_seq,
            opened_at,
        }
    }

    /// Bytes it takes (roughly: the encoded samples and the waiting late ones).
    pub fn bytes(&self) -> usize {
        self.writer.body_len() + self.late.len() * std::mem::size_of::<Sample>() + 96
    }

    pub fn len(&self) -> usize {
        self.writer.len() + self.late.len()
    }

    fn push(&mut self, s: Sample) {
        if self.writer.last_time().is_none_or(|t| s.t > t) && self.writer.push(&s).is_ok() {
            return;
        }
        self.late.push(s);
        if self.late.len() >= MAX_LATE {
            let all = self.samples();
            let mut w = ChunkWriter::default();
            for s in &all {
                // Sorted, deduplicated and finite: push cannot fail.
                let _ = w.push(s);
            }
            self.writer = w;
            self.late.clear();
        }
    }

    /// Every sample, in time order; of two at the same time the one given last.
    pub fn samples(&self) -> Vec<Sample> {
        let written = chunk::decode(&self.writer.finish()).unwrap_or_default();
        if self.late.is_empty() {
            return written;
        }
        merge(written, self.late.clone())
    }
}

/// `old` and `new` in time order; of two samples at the same time, the one from `new` (and
/// of two in `new`, the later one) wins: a replay overwrites.
pub fn merge(old: Vec<Sample>, new: Vec<Sample>) -> Vec<Sample> {
    let mut all: Vec<(usize, Sample)> = old.into_iter().chain(new).enumerate().collect();
    all.sort_by_key(|(i, s)| (s.t, *i));
    let mut out: Vec<Sample> = Vec::with_capacity(all.len());
    for (_, s) in all {
        match out.last_mut() {
            Some(last) if last.t == s.t => *last = s,
            _ => out.push(s),
        }
    }
    out
}

pub struct Series {
    pub desc: SeriesDesc,
    /// The newest sample (of two at the same time, the later given).
    pub latest: Option<Sample>,
    /// The latest changed since it was last written to disk (`l sid`).
    pub latest_dirty: bool,
    /// The minute (hub time) the latest was last written in.
    pub latest_written: Millis,
    pub open: BTreeMap<Millis, OpenChunk>,
}

#[derive(Default)]
pub struct Memory {
    pub series: HashMap<u32, Series>,
    pub by_device: HashMap<String, Vec<u32>>,
    pub by_bed: HashMap<String, Vec<u32>>,
    pub next_sid: u32,
    /// The sequence number of the next append-log entry.
    pub next_seq: u64,
    /// Every log entry below this has been removed.
    pub log_floor: u64,
    pub open_bytes: usize,
}

impl Memory {
    pub fn find(
        &self,
        device: &str,
        code: u32,
        channel: Option<&str>,
        bed: Option<&str>,
    ) -> Option<u32> {
        self.by_device.get(device)?.iter().copied().find(|sid| {
            self.series
                .get(sid)
                .is_some_and(|s| s.desc.same(device, code, channel, bed))
        })
    }

    pub fn insert(&mut self, sid: u32, desc: SeriesDesc) {
        self.next_sid = self.next_sid.max(sid.saturating_add(1));
        self.by_device
            .entry(desc.device.as_str().to_owned())
            .or_default()
            .push(sid);
        if let Some(bed) = &desc.bed {
            self.by_bed.entry(bed.clone()).or_default().push(sid);
        }
        self.series.insert(
            sid,
            Series {
                desc,
                latest: None,
                latest_dirty: false,
                latest_written: Millis::MIN,
                open: BTreeMap::new(),
            },
        );
    }

    pub fn remove(&mut self, sid: u32) {
        let Some(s) = self.series.remove(&sid) else {
            return;
        };
        for (key, index) in [
            (Some(s.desc.device.as_str()), &mut self.by_device),
            (s.desc.bed.as_deref(), &mut self.by_bed),
        ] {
            let Some(key) = key else { continue };
            if let Some(list) = index.get_mut(key) {
                list.retain(|x| *x != sid);
                if list.is_empty() {
                    index.remove(key);
                }
            }
        }
        self.open_bytes = self
            .open_bytes
            .saturating_sub(s.open.values().map(OpenChunk::bytes).sum());
    }

    /// Adds a sample (from log entry `seq`) to its series' open chunk.
    pub fn push(&mut self, sid: u32, s: Sample, seq: u64) {
        let Some(series) = self.series.get_mut(&sid) else {
            return;
        };
        if series.latest.is_none_or(|l| s.t >= l.t) {
            series.latest = Some(s);
            series.latest_dirty = true;
        }
        let span = span_of(s.t);
        let before = series.open.get(&span).map_or(0, OpenChunk::bytes);
        let chunk = series
            .open
            .entry(span)
            .or_insert_with(|| OpenChunk::new(seq, s.received_at));
        chunk.min_seq = chunk.min_seq.min(seq);
        chunk.push(s);
        self.open_bytes = (self.open_bytes + chunk.bytes()).saturating_sub(before);
    }

    /// Sets a series' latest from disk (at start) unless a newer one is known.
    pub fn offer_latest(&mut self, sid: u32, s: Sample) {
        if let Some(series) = self.series.get_mut(&sid) {
            if series.latest.is_none_or(|l| s.t > l.t) {
                series.latest = Some(s);
            }
        }
    }

    /// The open samples of a series whose spans meet `[from_span, to_span]`.
    pub fn open_samples(
        &self,
        sid: u32,
        from_span: Millis,
        to_span: Millis,
    ) -> Vec<(Millis, Vec<Sample>)> {
        let Some(s) = self.series.get(&sid) else {
            return Vec::new();
        };
        if from_span > to_span {
            return Vec::new();
        }
        s.open
            .range(from_span..=to_span)
            .map(|(span, c)| (*span, c.samples()))
            .collect()
    }

    pub fn sids_of_device(&self, device: &str) -> Vec<u32> {
        self.by_device.get(device).cloned().unwrap_or_default()
    }

    pub fn sids_of_bed(&self, bed: &str) -> Vec<u32> {
        self.by_bed.get(bed).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardhub_model::Status;

    fn s(t: i64, value: f64) -> Sample {
        Sample {
            t,
            value,
            status: Status::Valid,
            received_at: t,
        }
    }

    #[test]
    fn late_and_repeated_samples_merge_in_order_and_the_last_given_wins() {
        let mut c = OpenChunk::new(0, 0);
        for t in [10, 20, 30] {
            c.push(s(t, t as f64));
        }
        c.push(s(15, 15.0));
        c.push(s(20, 99.0));
        let got: Vec<(i64, f64)> = c.samples().iter().map(|s| (s.t, s.value)).collect();
        assert_eq!(got, [(10, 10.0), (15, 15.0), (20, 99.0), (30, 30.0)]);
        // Many late samples re-encode the chunk and keep every one.
        for t in (0..600).rev() {
            c.push(s(1000 + t, 1.0));
        }
        assert_eq!(c.samples().len(), 604);
        assert!(c.late.len() < MAX_LATE);
    }
}
