//! Reading: raw samples from sealed chunks and open chunks, rollups from the stored span
//! rollups and (for spans still open) from the samples themselves, latest values from memory.
//!
//! A series is read span by span in time order and stops once it has more than the limit, so
//! a query costs about its limit, not the range. The open chunks of a series are copied
//! before the sealed ones are read: a fold between the two shows a span twice (merged, the
//! same samples), never not at all.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use wardhub_model::{Metric, Millis, Observation};

use super::chunk::{self, Sample};
use super::keys::{self, minute_of, span_of, Agg, SpanRollups};
use super::memory::{merge, Memory};
use super::series::SeriesDesc;
use super::{Result, Rollup, SledStore, TimeRange};

type Open = Vec<(Millis, Vec<Sample>)>;

/// Where a query is in one series: its next sealed chunk and next open span.
struct Cursor {
    sealed: std::iter::Peekable<sled::Iter>,
    open: std::iter::Peekable<std::vec::IntoIter<(Millis, Vec<Sample>)>>,
}

impl Cursor {
    fn peek_span(&mut self) -> Result<Option<Millis>> {
        let sealed = match self.sealed.peek() {
            Some(Ok((k, _))) => keys::split_span_key(k).map(|(_, s)| s),
            Some(Err(_)) => {
                // Surface the storage error.
                return Err(self
                    .sealed
                    .next()
                    .and_then(|r| r.err())
                    .map_or(super::StoreError::Closed, Into::into));
            }
            None => None,
        };
        let open = self.open.peek().map(|(s, _)| *s);
        Ok(match (sealed, open) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

fn observation(d: &SeriesDesc, s: &Sample) -> Observation {
    Observation {
        device_id: d.device.clone(),
        bed: d.bed.clone(),
        metric: d.metric,
        value: s.value,
        observed_at: s.t,
        received_at: s.received_at,
        status: s.status,
        channel: d.channel.clone(),
        clock_correction_ms: 0,
    }
}

fn rollup(d: &SeriesDesc, minute: Millis, a: &Agg) -> Rollup {
    Rollup {
        device_id: d.device.clone(),
        metric: d.metric,
        channel: d.channel.clone(),
        minute,
        min: a.min,
        max: a.max,
        mean: a.mean(),
        count: a.count,
    }
}

/// Adds `b` into `a` (two rollups of the same minute and channel).
pub fn merge_rollup(a: &mut Rollup, b: &Rollup) {
    let total = a.count + b.count;
    if total > 0 {
        a.mean = (a.mean * a.count as f64 + b.mean * b.count as f64) / total as f64;
    }
    a.min = a.min.min(b.min);
    a.max = a.max.max(b.max);
    a.count = total;
}

/// The newest sample per metric (or per device and metric) over several series: the newest
/// wins; of two at the same time, a clinically usable one wins over one that is not (a valid
/// SpO2 of 97 on one channel is not hidden by "not available" on another).
#[derive(Default)]
pub struct Latest {
    best: HashMap<(String, u32), (Sample, SeriesDesc)>,
}

impl Latest {
    pub fn offer(&mut self, m: &Memory, sid: u32, by_device: bool) {
        let Some(s) = m.series.get(&sid) else { return };
        let Some(l) = s.latest else { return };
        let device = if by_device {
            s.desc.device.as_str()
        } else {
            ""
        };
        let key = (device.to_owned(), s.desc.metric.code);
        let better = self.best.get(&key).is_none_or(|(cur, _)| {
            l.t > cur.t
                || (l.t == cur.t
                    && l.status.is_clinically_usable()
                    && !cur.status.is_clinically_usable())
        });
        if better {
            self.best.insert(key, (l, s.desc.clone()));
        }
    }

    pub fn into_observations(self) -> Vec<Observation> {
        self.best.values().map(|(s, d)| observation(d, s)).collect()
    }
}

impl SledStore {
    pub(super) fn series_of_device(&self, device: &str, metric: Option<Metric>) -> Vec<u32> {
        let m = self.mem();
        m.sids_of_device(device)
            .into_iter()
            .filter(|sid| {
                metric.is_none_or(|want| {
                    m.series
                        .get(sid)
                        .is_some_and(|s| s.desc.metric.code == want.code)
                })
            })
            .collect()
    }

    /// The description and open samples of each series, copied under the lock.
    fn snapshot(&self, sids: &[u32], from: Millis, to: Millis) -> Vec<(u32, SeriesDesc, Open)> {
        let m = self.mem();
        sids.iter()
            .filter_map(|&sid| {
                let s = m.series.get(&sid)?;
                Some((
                    sid,
                    s.desc.clone(),
                    m.open_samples(sid, span_of(from), span_of(to)),
                ))
            })
            .collect()
    }

    fn decode_chunk(&self, sid: u32, span: Millis, v: &[u8]) -> Vec<Sample> {
        match chunk::decode(v) {
            Ok(s) => s,
            Err(e) => {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sid, span, error = %e, "a stored chunk does not decode; its samples are not shown");
                Vec::new()
            }
        }
    }

    /// The first `limit + 1` observations of these series in the range, in time order (of
    /// two at one time, the series given first first). Spans are read in time order across
    /// all series, and reading stops after the span that passes the limit: a page costs
    /// about its size, not the range's.
    pub(super) fn observations(
        &self,
        sids: &[u32],
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<Observation>> {
        let series = self.snapshot(sids, range.from, range.to);
        let mut cursors: Vec<Cursor> = series
            .iter()
            .map(|(sid, _, open)| Cursor {
                sealed: self
                    .tree
                    .range(
                        keys::span_key(keys::CHUNK, *sid, span_of(range.from))
                            ..=keys::span_key(keys::CHUNK, *sid, span_of(range.to)),
                    )
                    .peekable(),
                open: open.clone().into_iter().peekable(),
            })
            .collect();
        let mut out: Vec<Observation> = Vec::new();
        let mut span_samples: Vec<(Millis, usize, Sample)> = Vec::new();
        while out.len() <= limit {
            // The earliest span any series has next.
            let mut next: Option<Millis> = None;
            for c in &mut cursors {
                if let Some(span) = c.peek_span()? {
                    next = Some(next.map_or(span, |n| n.min(span)));
                }
            }
            let Some(span) = next else { break };
            span_samples.clear();
            for (rank, c) in cursors.iter_mut().enumerate() {
                let sid = series[rank].0;
                let sealed = match c.sealed.next_if(|item| {
                    item.as_ref()
                        .ok()
                        .and_then(|(k, _)| keys::split_span_key(k))
                        .is_some_and(|(_, s)| s == span)
                }) {
                    Some(item) => self.decode_chunk(sid, span, &item?.1),
                    None => Vec::new(),
                };
                let samples = match c.open.next_if(|(o, _)| *o == span) {
                    Some((_, o)) => merge(sealed, o),
                    None => sealed,
                };
                span_samples.extend(
                    samples
                        .into_iter()
                        .filter(|s| s.t >= range.from && s.t <= range.to)
                        .map(|s| (s.t, rank, s)),
                );
            }
            span_samples.sort_unstable_by_key(|(t, rank, _)| (*t, *rank));
            let room = limit + 1 - out.len();
            out.extend(
                span_samples
                    .iter()
                    .take(room)
                    .map(|(_, rank, s)| observation(&series[*rank].1, s)),
            );
        }
        Ok(out)
    }

    /// Up to `limit + 1` rollups of each series in the range (unsorted across series).
    pub(super) fn rollups(
        &self,
        sids: &[u32],
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<Rollup>> {
        let first = minute_of(range.from);
        let mut out = Vec::new();
        for (sid, desc, open) in self.snapshot(sids, first, range.to) {
            for (minute, agg) in self.series_rollups(sid, open, first, range.to, limit)? {
                out.push(rollup(&desc, minute, &agg));
            }
        }
        Ok(out)
    }

    fn series_rollups(
        &self,
        sid: u32,
        open: Open,
        first: Millis,
        last: Millis,
        limit: usize,
    ) -> Result<Vec<(Millis, Agg)>> {
        let start = keys::span_key(keys::ROLLUP, sid, span_of(first));
        let end = keys::span_key(keys::ROLLUP, sid, span_of(last));
        let mut open = open.into_iter().peekable();
        let mut out: Vec<(Millis, Agg)> = Vec::new();
        let keep = |r: SpanRollups, out: &mut Vec<(Millis, Agg)>| {
            out.extend(
                r.minutes
                    .into_iter()
                    .filter(|(m, _)| *m >= first && *m <= last),
            );
        };
        for item in self.tree.range(start..=end) {
            if out.len() > limit {
                return Ok(out);
            }
            let (k, v) = item?;
            let Some((_, span)) = keys::split_span_key(&k) else {
                continue;
            };
            while let Some((o, samples)) = open.next_if(|(o, _)| *o < span) {
                keep(self.open_rollups(sid, o, samples)?, &mut out);
            }
            if let Some((o, samples)) = open.next_if(|(o, _)| *o == span) {
                // Open samples for a sealed span: computed from both, as sealing will.
                keep(self.open_rollups(sid, o, samples)?, &mut out);
                continue;
            }
            match SpanRollups::decode(span, &v) {
                Some(r) => keep(r, &mut out),
                None => {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(sid, span, "stored rollups do not decode; not shown");
                }
            }
        }
        for (o, samples) in open {
            if out.len() > limit {
                break;
            }
            keep(self.open_rollups(sid, o, samples)?, &mut out);
        }
        Ok(out)
    }

    /// The rollups a span will have once sealed: its sealed chunk (if any) and open samples.
    fn open_rollups(&self, sid: u32, span: Millis, open: Vec<Sample>) -> Result<SpanRollups> {
        Ok(
            match self.tree.get(keys::span_key(keys::CHUNK, sid, span))? {
                Some(v) => SpanRollups::of(span, &merge(self.decode_chunk(sid, span, &v), open)),
                None => {
                    let fresh = SpanRollups::of(span, &open);
                    match self.tree.get(keys::span_key(keys::ROLLUP, sid, span))? {
                        // The chunk is past the raw retention; its rollups are not.
                        Some(v) => match SpanRollups::decode(span, &v) {
                            Some(prior) => fresh.merged(&prior),
                            None => fresh,
                        },
                        None => fresh,
                    }
                }
            },
        )
    }
}
