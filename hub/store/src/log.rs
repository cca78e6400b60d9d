//! The append log's entries: each [`super::SledStore::write`] is one entry holding its
//! samples (and the descriptions of series it starts), appended to the log files
//! ([`super::wal`]) before the write returns its durability ticket. A background fold seals the
//! samples into chunks; log segments whose entries are all sealed are deleted; on start the
//! remaining entries are replayed into the open chunks.
//!
//! Entry layout (`docs/STORAGE.md`): version 1; the count of new series (LEB128), each as its
//! sid (LEB128) and description (LEB128 length + [`SeriesDesc`] bytes); the sample count
//! (LEB128), then per sample
//!
//! ```text
//! sid            LEB128
//! t              zigzag LEB128: absolute for the first sample, else the delta to the previous
//! head           status (2 bits) | kind << 2: kind 0 = integer value, 1 = f64
//! value          kind 0: zigzag LEB128 of the integer; kind 1: the f64's 8 bytes, LE
//! lag            zigzag LEB128 of received_at - t
//! ```
//!
//! Whole numbers (most vital signs) take one or two bytes; a sample is 6 to 8 bytes.

use wardhub_model::Status;

use super::chunk::Sample;
use super::keys::{get_varint, put_varint, unzigzag, whole, zigzag};
use super::series::SeriesDesc;

/// A decoded entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Series this write started (their descriptions are in sled too, once it is flushed).
    pub series: Vec<(u32, SeriesDesc)>,
    pub samples: Vec<(u32, Sample)>,
}

const V1: u8 = 1;

pub fn encode(series: &[(u32, &SeriesDesc)], samples: &[(u32, Sample)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 + series.len() * 40 + samples.len() * 8);
    v.push(V1);
    put_varint(&mut v, series.len() as u64);
    for (sid, desc) in series {
        put_varint(&mut v, u64::from(*sid));
        let d = desc.encode();
        put_varint(&mut v, d.len() as u64);
        v.extend_from_slice(&d);
    }
    put_varint(&mut v, samples.len() as u64);
    let mut prev_t = 0i64;
    for (i, (sid, s)) in samples.iter().enumerate() {
        put_varint(&mut v, u64::from(*sid));
        let dt = if i == 0 {
            s.t
        } else {
            s.t.wrapping_sub(prev_t)
        };
        prev_t = s.t;
        put_varint(&mut v, zigzag(dt));
        let integral = whole(s.value);
        let head = s.status.to_u8() | if integral { 0 } else { 1 << 2 };
        v.push(head);
        if integral {
            put_varint(&mut v, zigzag(s.value as i64));
        } else {
            v.extend_from_slice(&s.value.to_le_bytes());
        }
        put_varint(&mut v, zigzag(s.received_at.wrapping_sub(s.t)));
    }
    v
}

/// A log entry that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log entry: {0}")]
pub struct LogError(&'static str);

pub fn decode(b: &[u8]) -> Result<Entry, LogError> {
    let (&version, rest) = b.split_first().ok_or(LogError("empty"))?;
    if version != V1 {
        return Err(LogError("unknown version"));
    }
    let (n, mut rest) = get_varint(rest).ok_or(LogError("series count"))?;
    let mut series = Vec::new();
    for _ in 0..n {
        let (sid, r) = get_varint(rest).ok_or(LogError("series id"))?;
        let sid = u32::try_from(sid).map_err(|_| LogError("series id"))?;
        let (len, r) = get_varint(r).ok_or(LogError("series length"))?;
        let d = r.get(..len as usize).ok_or(LogError("series length"))?;
        series.push((
            sid,
            SeriesDesc::decode(d).ok_or(LogError("series description"))?,
        ));
        rest = &r[len as usize..];
    }
    let (n, mut rest) = get_varint(rest).ok_or(LogError("count"))?;
    // Every sample takes at least 4 bytes: no allocation follows a forged count.
    if n > rest.len() as u64 / 4 + 1 {
        return Err(LogError("count larger than the data"));
    }
    let mut out = Vec::with_capacity(n as usize);
    let mut t = 0i64;
    for i in 0..n {
        let (sid, r) = get_varint(rest).ok_or(LogError("sid"))?;
        let sid = u32::try_from(sid).map_err(|_| LogError("sid"))?;
        let (dt, r) = get_varint(r).ok_or(LogError("time"))?;
        t = if i == 0 {
            unzigzag(dt)
        } else {
            t.wrapping_add(unzigzag(dt))
        };
        let (&head, r) = r.split_first().ok_or(LogError("head"))?;
        let status = Status::from_u8(head & 3).ok_or(LogError("status"))?;
        let (value, r) = match head >> 2 {
            0 => {
                let (x, r) = get_varint(r).ok_or(LogError("value"))?;
                (unzigzag(x) as f64, r)
            }
            1 => {
                let bytes: [u8; 8] = r
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(LogError("value"))?;
                (f64::from_le_bytes(bytes), &r[8..])
            }
            _ => return Err(LogError("value kind")),
        };
        if !value.is_finite() {
            return Err(LogError("value not finite"));
        }
        let (lag, r) = get_varint(r).ok_or(LogError("lag"))?;
        rest = r;
        out.push((
            sid,
            Sample {
                t,
                value,
                status,
                received_at: t.wrapping_add(unzigzag(lag)),
            },
        ));
    }
    if !rest.is_empty() {
        return Err(LogError("trailing bytes"));
    }
    Ok(Entry {
        series,
        samples: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> impl Strategy<Value = (u32, Sample)> {
        (
            any::<u32>(),
            any::<i64>(),
            prop_oneof![
                (-1000i64..1000).prop_map(|v| v as f64),
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                Just(-0.0),
                Just(8_388_607.0)
            ],
            0u8..4,
            any::<i64>(),
        )
            .prop_map(|(sid, t, value, st, r)| {
                (
                    sid,
                    Sample {
                        t,
                        value,
                        status: Status::from_u8(st).unwrap(),
                        received_at: r,
                    },
                )
            })
    }

    #[test]
    fn whole_numbers_take_few_bytes() {
        let samples: Vec<(u32, Sample)> = (0..100)
            .map(|i| {
                (
                    i % 7,
                    Sample {
                        t: 1_700_000_000_000 + i64::from(i) * 10,
                        value: 97.0,
                        status: Status::Valid,
                        received_at: 1_700_000_000_000 + i64::from(i) * 10 + 40,
                    },
                )
            })
            .collect();
        // sid, time delta, head, value and lag: a byte or two each.
        assert!(encode(&[], &samples).len() < 100 * 7);
    }

    proptest! {
        #[test]
        fn entries_round_trip(samples in proptest::collection::vec(sample(), 0..40), device in "[a-z0-9-]{1,64}") {
            let desc = SeriesDesc {
                device: wardhub_model::DeviceId::new(device).unwrap(),
                metric: wardhub_model::metric_by_name("hr").unwrap(),
                channel: Some("1.3.2".into()),
                bed: None,
            };
            let entry = decode(&encode(&[(7, &desc)], &samples)).unwrap();
            prop_assert_eq!(entry.series, vec![(7, desc)]);
            let back = entry.samples;
            prop_assert_eq!(back.len(), samples.len());
            for ((a, x), (b, y)) in back.iter().zip(&samples) {
                prop_assert_eq!(a, b);
                prop_assert_eq!((x.t, x.value.to_bits(), x.status, x.received_at),
                                (y.t, y.value.to_bits(), y.status, y.received_at));
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
