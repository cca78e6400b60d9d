//! The layout of format 1 (the `timeseries` tree, one key per observation), read only to
//! migrate a data directory written by an earlier wardhub (see `migrate.rs`).
//!
//! Everything lived in one sled tree so that one write was one atomic `Batch`. A key starts
//! with a kind byte; ids are followed by `0x00` (ids never contain it, and `0x00` sorts before
//! every id character, so `bed-1` never prefixes `bed-10`); times are 8 bytes big-endian with
//! the sign bit flipped, so byte order is time order.
//!
//! | kind | key | value |
//! |---|---|---|
//! | `o` raw | device 0 code time \[channel\] | [`Record`] |
//! | `b` bed index | bed 0 time device 0 code \[channel\] | empty |
//! | `l` device latest | device 0 code | [`Record`] |
//! | `L` bed latest | bed 0 device 0 code | [`Record`] |
//! | `r` device rollup | device 0 code minute | [`Agg`] |
//! | `R` bed rollup | bed 0 minute device 0 code | [`Agg`] |
//! | `B` known bed | bed | empty |

use wardhub_model::{metric_by_code, Metric, Millis, Status};

use super::keys::Agg;

pub const RAW: u8 = b'o';
#[cfg(test)]
pub const BED_INDEX: u8 = b'b';
#[cfg(test)]
pub const LATEST: u8 = b'l';
pub const BED_LATEST: u8 = b'L';
pub const ROLLUP: u8 = b'r';
pub const BED_ROLLUP: u8 = b'R';
#[cfg(test)]
pub const BED: u8 = b'B';

pub use super::keys::{time_bytes, time_from};

/// `kind id 0`
pub fn prefix(kind: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + id.len() + 16);
    k.push(kind);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

#[cfg(test)]
/// `kind device 0 code`
pub fn series(kind: u8, device: &str, code: u32) -> Vec<u8> {
    let mut k = prefix(kind, device);
    k.extend_from_slice(&code.to_be_bytes());
    k
}

#[cfg(test)]
/// `o device 0 code time [channel]`: an observation's channel (its OBX-4 path, …) follows
/// the time, so two channels of one metric at one time are two keys, and a time range is
/// still one range scan.
pub fn raw(device: &str, code: u32, t: Millis, channel: Option<&str>) -> Vec<u8> {
    let mut k = series(RAW, device, code);
    k.extend_from_slice(&time_bytes(t));
    if let Some(c) = channel {
        k.extend_from_slice(c.as_bytes());
    }
    k
}

#[cfg(test)]
/// `b bed 0 time device 0 code [channel]`
pub fn bed_index(bed: &str, t: Millis, device: &str, code: u32, channel: Option<&str>) -> Vec<u8> {
    let mut k = prefix(BED_INDEX, bed);
    k.extend_from_slice(&time_bytes(t));
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(&code.to_be_bytes());
    if let Some(c) = channel {
        k.extend_from_slice(c.as_bytes());
    }
    k
}

#[cfg(test)]
/// `L bed 0 device 0 code`
pub fn bed_latest(bed: &str, device: &str, code: u32) -> Vec<u8> {
    let mut k = prefix(BED_LATEST, bed);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(&code.to_be_bytes());
    k
}

#[cfg(test)]
/// `r device 0 code minute [channel]`: one minute of one channel (rollups never mix two
/// channels of a metric: their mean would be a value nobody measured).
pub fn rollup(device: &str, code: u32, minute: Millis, channel: Option<&str>) -> Vec<u8> {
    let mut k = series(ROLLUP, device, code);
    k.extend_from_slice(&time_bytes(minute));
    if let Some(c) = channel {
        k.extend_from_slice(c.as_bytes());
    }
    k
}

/// `R bed 0 minute device 0 code [channel]`
pub fn bed_rollup(
    bed: &str,
    minute: Millis,
    device: &str,
    code: u32,
    channel: Option<&str>,
) -> Vec<u8> {
    let mut k = prefix(BED_ROLLUP, bed);
    k.extend_from_slice(&time_bytes(minute));
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(&code.to_be_bytes());
    if let Some(c) = channel {
        k.extend_from_slice(c.as_bytes());
    }
    k
}

/// The channel at the end of a key (`None` when there is none).
pub fn channel_of(rest: &[u8]) -> Option<String> {
    (!rest.is_empty())
        .then(|| std::str::from_utf8(rest).ok().map(str::to_owned))
        .flatten()
}

/// Splits `device 0 code` at the start of `rest`; returns device, metric and what follows.
pub fn split_series(rest: &[u8]) -> Option<(&str, Metric, &[u8])> {
    let zero = rest.iter().position(|&b| b == 0)?;
    let device = std::str::from_utf8(&rest[..zero]).ok()?;
    let code_bytes: [u8; 4] = rest.get(zero + 1..zero + 5)?.try_into().ok()?;
    let metric = metric_by_code(u32::from_be_bytes(code_bytes))?;
    Some((device, metric, &rest[zero + 5..]))
}

/// The stored form of one observation (without the parts that are in its key).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub value: f64,
    pub status: Status,
    pub observed_at: Millis,
    pub received_at: Millis,
    pub bed: Option<String>,
    /// Also in the raw key; kept here for the latest values, whose keys have none.
    pub channel: Option<String>,
}

const RECORD_V1: u8 = 1;

impl Record {
    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        let bed = self.bed.as_deref().unwrap_or("");
        let mut v = Vec::with_capacity(27 + bed.len());
        v.push(RECORD_V1);
        v.extend_from_slice(&self.value.to_le_bytes());
        v.push(self.status.to_u8());
        v.extend_from_slice(&self.observed_at.to_le_bytes());
        v.extend_from_slice(&self.received_at.to_le_bytes());
        // Bed ids are at most 64 bytes (validated), so the length fits in a byte.
        v.push(bed.len() as u8);
        v.extend_from_slice(bed.as_bytes());
        // A channel is at most 32 bytes; records written before channels end here.
        if let Some(c) = &self.channel {
            v.push(c.len() as u8);
            v.extend_from_slice(c.as_bytes());
        }
        v
    }

    pub fn decode(b: &[u8]) -> Option<Record> {
        if b.first() != Some(&RECORD_V1) || b.len() < 27 {
            return None;
        }
        let f = |r: std::ops::Range<usize>| -> Option<[u8; 8]> { b.get(r)?.try_into().ok() };
        let value = f64::from_le_bytes(f(1..9)?);
        let status = Status::from_u8(b[9])?;
        let observed_at = i64::from_le_bytes(f(10..18)?);
        let received_at = i64::from_le_bytes(f(18..26)?);
        let len = usize::from(b[26]);
        let bed = std::str::from_utf8(b.get(27..27 + len)?).ok()?;
        let rest = &b[27 + len..];
        let channel = match rest.split_first() {
            None => None,
            Some((&n, c)) => Some(
                std::str::from_utf8(c.get(..usize::from(n))?)
                    .ok()?
                    .to_owned(),
            ),
        };
        Some(Record {
            value,
            status,
            observed_at,
            received_at,
            bed: (!bed.is_empty()).then(|| bed.to_owned()),
            channel,
        })
    }
}

/// A format-1 one-minute aggregate: min, max, sum (f64 LE), count (u64 LE).
pub fn agg_decode(b: &[u8]) -> Option<Agg> {
    let f = |r: std::ops::Range<usize>| -> Option<[u8; 8]> { b.get(r)?.try_into().ok() };
    Some(Agg {
        min: f64::from_le_bytes(f(0..8)?),
        max: f64::from_le_bytes(f(8..16)?),
        sum: f64::from_le_bytes(f(16..24)?),
        count: u64::from_le_bytes(f(24..32)?),
    })
}

#[cfg(test)]
pub fn agg_encode(a: &Agg) -> [u8; 32] {
    let mut v = [0u8; 32];
    v[0..8].copy_from_slice(&a.min.to_le_bytes());
    v[8..16].copy_from_slice(&a.max.to_le_bytes());
    v[16..24].copy_from_slice(&a.sum.to_le_bytes());
    v[24..32].copy_from_slice(&a.count.to_le_bytes());
    v
}

/// Writes observations as wardhub before the chunked store did (to test the migration).
#[cfg(test)]
pub fn write_v1(tree: &sled::Tree, obs: &[wardhub_model::Observation]) {
    for o in obs {
        let (device, code, ch) = (o.device_id.as_str(), o.metric.code, o.channel.as_deref());
        let rec = Record {
            value: o.value,
            status: o.status,
            observed_at: o.observed_at,
            received_at: o.received_at,
            bed: o.bed.clone(),
            channel: o.channel.clone(),
        }
        .encode();
        tree.insert(raw(device, code, o.observed_at, ch), rec.clone())
            .unwrap();
        tree.insert(series(LATEST, device, code), rec.clone())
            .unwrap();
        if let Some(bed) = &o.bed {
            tree.insert(bed_index(bed, o.observed_at, device, code, ch), &[])
                .unwrap();
            tree.insert(bed_latest(bed, device, code), rec).unwrap();
            tree.insert(prefix(BED, bed), &[]).unwrap();
        }
        if o.status.is_clinically_usable() {
            let minute = super::keys::minute_of(o.observed_at);
            let key = rollup(device, code, minute, ch);
            let mut agg = tree
                .get(&key)
                .unwrap()
                .and_then(|v| agg_decode(&v))
                .unwrap_or(Agg::EMPTY);
            agg.add(o.value);
            tree.insert(&key, &agg_encode(&agg)[..]).unwrap();
            if let Some(bed) = &o.bed {
                tree.insert(
                    bed_rollup(bed, minute, device, code, ch),
                    &agg_encode(&agg)[..],
                )
                .unwrap();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn id_prefixes_do_not_collide() {
        let a = prefix(RAW, "bed-1");
        let b = raw("bed-10", 1, 0, None);
        assert!(!b.starts_with(&a));
    }

    proptest! {
        #[test]
        fn record_round_trips(value in any::<f64>().prop_filter("finite", |v| v.is_finite()),
                              s in 0u8..4, o in any::<i64>(), r in any::<i64>(),
                              bed in proptest::option::of("[A-Za-z0-9._-]{1,64}"),
                              channel in proptest::option::of("[0-9.]{1,32}")) {
            let rec = Record { value, status: Status::from_u8(s).unwrap(), observed_at: o, received_at: r, bed, channel };
            prop_assert_eq!(Record::decode(&rec.encode()), Some(rec));
        }

        #[test]
        fn record_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Record::decode(&bytes);
            let _ = agg_decode(&bytes);
        }
    }
}
