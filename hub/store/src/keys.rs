//! Key and value layout of the chunked time-series tree (`ts`), format 2.
//!
//! Everything lives in one sled tree so that one write is one atomic `Batch`. A key starts
//! with a kind byte; series ids are 4 bytes big-endian; times are 8 bytes big-endian with the
//! sign bit flipped, so byte order is time order. `docs/STORAGE.md` is the specification.
//! The append log is not in sled but in files beside it ([`crate::wal`]).
//!
//! | kind | key | value |
//! |---|---|---|
//! | `V` format | — | format version, chunk span in seconds (u32 BE) |
//! | `S` series | sid | [`crate::series::SeriesDesc`] |
//! | `c` chunk | sid span_start | [`crate::chunk`] samples of one span |
//! | `r` rollups | sid span_start | [`SpanRollups`]: that span's one-minute aggregates |
//! | `l` latest | sid | the series' newest sample ([`encode_sample`]) |
//! | `q` quarantine | sid span_start seq | a chunk that did not decode, kept as it was |

use wardhub_model::{Millis, Status};

use super::chunk::Sample;

pub const META: &[u8] = b"V";
pub const FORMAT: u8 = 2;
pub const SERIES: u8 = b'S';
pub const CHUNK: u8 = b'c';
pub const ROLLUP: u8 = b'r';
pub const LATEST: u8 = b'l';
pub const QUARANTINE: u8 = b'q';

/// The span of a chunk: two minutes of device time, aligned to the epoch (so spans are whole
/// minutes and a minute's rollup is never split between two chunks).
pub const SPAN_MS: Millis = 120_000;

pub fn time_bytes(ms: Millis) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn time_from(b: &[u8]) -> Option<Millis> {
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

/// The start of the span `t` falls in.
pub fn span_of(t: Millis) -> Millis {
    t.checked_sub(t.rem_euclid(SPAN_MS)).unwrap_or(i64::MIN)
}

/// The start of the minute `t` falls in.
pub fn minute_of(t: Millis) -> Millis {
    t.checked_sub(t.rem_euclid(60_000)).unwrap_or(i64::MIN)
}

/// `kind sid`
pub fn sid_key(kind: u8, sid: u32) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = kind;
    k[1..5].copy_from_slice(&sid.to_be_bytes());
    k
}

/// `kind sid span_start`
pub fn span_key(kind: u8, sid: u32, span: Millis) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = kind;
    k[1..5].copy_from_slice(&sid.to_be_bytes());
    k[5..13].copy_from_slice(&time_bytes(span));
    k
}

pub fn sid_of(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.get(1..5)?.try_into().ok()?))
}

/// The series and span of a `c`, `r` or `q` key.
pub fn split_span_key(key: &[u8]) -> Option<(u32, Millis)> {
    Some((sid_of(key)?, time_from(key.get(5..13)?)?))
}

pub fn meta_value() -> [u8; 5] {
    let mut v = [0u8; 5];
    v[0] = FORMAT;
    v[1..5].copy_from_slice(&((SPAN_MS / 1000) as u32).to_be_bytes());
    v
}

/// One sample alone (the `l` values): t, value bits, status, received_at.
pub fn encode_sample(s: &Sample) -> [u8; 25] {
    let mut v = [0u8; 25];
    v[0..8].copy_from_slice(&s.t.to_le_bytes());
    v[8..16].copy_from_slice(&s.value.to_le_bytes());
    v[16] = s.status.to_u8();
    v[17..25].copy_from_slice(&s.received_at.to_le_bytes());
    v
}

pub fn decode_sample(b: &[u8]) -> Option<Sample> {
    let f = |r: std::ops::Range<usize>| -> Option<[u8; 8]> { b.get(r)?.try_into().ok() };
    let value = f64::from_le_bytes(f(8..16)?);
    value.is_finite().then_some(())?;
    Some(Sample {
        t: i64::from_le_bytes(f(0..8)?),
        value,
        status: Status::from_u8(*b.get(16)?)?,
        received_at: i64::from_le_bytes(f(17..25)?),
    })
}

/// A one-minute aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
}

impl Agg {
    /// No values yet (adding the first sets min and max).
    pub const EMPTY: Agg = Agg {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        count: 0,
    };

    pub fn add(&mut self, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.count += 1;
    }

    /// Both minutes' values together.
    pub fn merge(&mut self, o: &Agg) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// The one-minute aggregates of one span of one series (only minutes with a clinically
/// usable value). Layout: version 1, then per minute: the minute's index in the span (u8),
/// the count (LEB128), a flags byte (bit i set: number i is an f64, else a whole number),
/// then min, max and sum, each a zigzag LEB128 whole number or an f64 LE.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanRollups {
    /// (minute start, aggregate), in minute order.
    pub minutes: Vec<(Millis, Agg)>,
}

const ROLLUPS_V1: u8 = 1;

impl SpanRollups {
    /// The aggregates of these samples of the span starting at `span` (valid ones only:
    /// invalid and not-available values are stored raw but never averaged).
    pub fn of(span: Millis, samples: &[Sample]) -> SpanRollups {
        let mut minutes: Vec<(Millis, Agg)> = Vec::new();
        for s in samples {
            if !s.status.is_clinically_usable() || span_of(s.t) != span {
                continue;
            }
            let m = minute_of(s.t);
            match minutes.iter_mut().find(|(mm, _)| *mm == m) {
                Some((_, a)) => a.add(s.value),
                None => {
                    let mut a = Agg::EMPTY;
                    a.add(s.value);
                    minutes.push((m, a));
                }
            }
        }
        minutes.sort_by_key(|(m, _)| *m);
        SpanRollups { minutes }
    }

    /// These minutes and `other`'s together (a minute in both: both aggregates added).
    pub fn merged(mut self, other: &SpanRollups) -> SpanRollups {
        for (m, a) in &other.minutes {
            match self.minutes.iter_mut().find(|(mm, _)| mm == m) {
                Some((_, mine)) => mine.merge(a),
                None => self.minutes.push((*m, *a)),
            }
        }
        self.minutes.sort_by_key(|(m, _)| *m);
        self
    }

    pub fn encode(&self, span: Millis) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + self.minutes.len() * 27);
        v.push(ROLLUPS_V1);
        for (m, a) in &self.minutes {
            v.push(((m - span) / 60_000) as u8);
            put_varint(&mut v, a.count);
            let nums = [a.min, a.max, a.sum];
            let flags = nums
                .iter()
                .enumerate()
                .fold(0u8, |f, (i, x)| if whole(*x) { f } else { f | 1 << i });
            v.push(flags);
            for x in nums {
                if whole(x) {
                    put_varint(&mut v, zigzag(x as i64));
                } else {
                    v.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
        v
    }

    pub fn decode(span: Millis, b: &[u8]) -> Option<SpanRollups> {
        let (&version, mut rest) = b.split_first()?;
        if version != ROLLUPS_V1 {
            return None;
        }
        let mut minutes = Vec::new();
        while let Some((&index, r)) = rest.split_first() {
            if i64::from(index) * 60_000 >= SPAN_MS {
                return None;
            }
            let (count, r) = get_varint(r)?;
            let (&flags, mut r) = r.split_first()?;
            if flags > 7 {
                return None;
            }
            let mut nums = [0f64; 3];
            for (i, x) in nums.iter_mut().enumerate() {
                if flags & (1 << i) == 0 {
                    let (n, rest) = get_varint(r)?;
                    *x = unzigzag(n) as f64;
                    r = rest;
                } else {
                    *x = f64::from_le_bytes(r.get(..8)?.try_into().ok()?);
                    r = &r[8..];
                }
            }
            let agg = Agg {
                min: nums[0],
                max: nums[1],
                sum: nums[2],
                count,
            };
            if !nums.iter().all(|v| v.is_finite()) || count == 0 {
                return None;
            }
            minutes.push((span + i64::from(index) * 60_000, agg));
            rest = r;
        }
        Some(SpanRollups { minutes })
    }
}

/// A whole number that round-trips through an i64 varint exactly (not -0.0).
pub fn whole(x: f64) -> bool {
    x.fract() == 0.0 && x.abs() < (1u64 << 52) as f64 && x.to_bits() != (-0.0f64).to_bits()
}

pub fn put_varint(v: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            v.push(b);
            return;
        }
        v.push(b | 0x80);
    }
}

pub fn get_varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((n, &b[i + 1..]));
        }
    }
    None
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn series_ids_that_prefix_each_other_do_not_collide() {
        // Fixed-width ids: series 1 never prefixes series 256.
        assert!(!span_key(CHUNK, 256, 0).starts_with(&sid_key(CHUNK, 1)));
    }

    #[test]
    fn rollups_skip_unusable_values_and_other_spans() {
        let s = |t, value, status| Sample {
            t,
            value,
            status,
            received_at: t,
        };
        let r = SpanRollups::of(
            0,
            &[
                s(1_000, 60.0, Status::Valid),
                s(2_000, 8_388_607.0, Status::NotAvailable),
                s(61_000, 70.0, Status::Valid),
                s(SPAN_MS, 99.0, Status::Valid),
            ],
        );
        assert_eq!(r.minutes.len(), 2);
        assert_eq!(r.minutes[0].1.count, 1);
        assert_eq!(
            r.minutes[1],
            (
                60_000,
                Agg {
                    min: 70.0,
                    max: 70.0,
                    sum: 70.0,
                    count: 1
                }
            )
        );
    }

    proptest! {
        #[test]
        fn time_order_is_byte_order(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(a.cmp(&b), time_bytes(a).cmp(&time_bytes(b)));
            prop_assert_eq!(time_from(&time_bytes(a)), Some(a));
        }

        #[test]
        fn spans_hold_their_times(t in -(1i64 << 50)..(1i64 << 50)) {
            let s = span_of(t);
            prop_assert!(s <= t && t < s + SPAN_MS);
            prop_assert!(minute_of(t) >= s);
        }

        #[test]
        fn rollups_round_trip(span in (-(1i64 << 40)..(1i64 << 40)).prop_map(span_of),
                              values in proptest::collection::vec((0i64..SPAN_MS, -1e6f64..1e6, any::<bool>()), 0..50)) {
            let samples: Vec<Sample> = values.iter().map(|&(o, v, round)| Sample {
                t: span + o, value: if round { v.round() } else { v }, status: Status::Valid, received_at: span + o,
            }).collect();
            let r = SpanRollups::of(span, &samples);
            prop_assert_eq!(SpanRollups::decode(span, &r.encode(span)), Some(r));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = SpanRollups::decode(0, &bytes);
            let _ = decode_sample(&bytes);
            let _ = get_varint(&bytes);
        }

        #[test]
        fn samples_round_trip(t in any::<i64>(), v in -1e12f64..1e12, st in 0u8..4, r in any::<i64>()) {
            let s = Sample { t, value: v, status: Status::from_u8(st).unwrap(), received_at: r };
            prop_assert_eq!(decode_sample(&encode_sample(&s)), Some(s));
        }
    }
}
