//! One-minute rollups for `observations = "rollups"`: min, max, mean and count per bed,
//! device, metric and channel, sent once a minute has ended and `rollup_delay` has passed
//! (late data gets that long). An observation of a minute already sent is counted
//! (`wardhub_uplink_late_observations_total`), never folded into another minute.
//!
//! The open minutes live in memory; the outbox's meta key `m/rolled` says up to where
//! minutes were queued, written in the same sled batch as their messages. After a restart,
//! the open minutes are rebuilt from the store, so a crash loses no minute and sends none
//! twice.

use std::collections::BTreeMap;

use serde::Serialize;
use wardhub_adapters::model::{Millis, Observation};

const MINUTE: Millis = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    minute: Millis,
    bed: Option<String>,
    device: String,
    code: u32,
    channel: Option<String>,
}

impl Key {
    /// The smallest key of `minute` (the bound of a range of whole minutes).
    fn first_of(minute: Millis) -> Key {
        Key {
            minute,
            bed: None,
            device: String::new(),
            code: 0,
            channel: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Acc {
    metric: &'static str,
    name: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
}

/// One rollup as the uplink sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollupBody {
    pub device_id: String,
    pub metric: &'static str,
    pub code: u32,
    pub name: &'static str,
    pub unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The minute's start, epoch ms (device time).
    pub minute: Millis,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

/// Rollups grouped by bed (none: devices without one).
pub type PerBed = Vec<(Option<String>, Vec<RollupBody>)>;

/// The open minutes.
#[derive(Debug)]
pub struct Rollups {
    open: BTreeMap<Key, Acc>,
    /// Every minute before this has been queued.
    pub rolled_to: Millis,
    delay_ms: Millis,
}

/// The minute that holds `t`.
pub fn minute_of(t: Millis) -> Millis {
    t.div_euclid(MINUTE) * MINUTE
}

impl Rollups {
    pub fn new(rolled_to: Millis, delay_ms: Millis) -> Rollups {
        Rollups {
            open: BTreeMap::new(),
            rolled_to,
            delay_ms,
        }
    }

    /// Adds stored observations (every stored value of the minute, whatever its status).
    /// Returns how many came too late (their minute was sent already).
    pub fn add(&mut self, observations: &[Observation]) -> u64 {
        let mut late = 0;
        for o in observations {
            let minute = minute_of(o.observed_at);
            if minute < self.rolled_to {
                late += 1;
                continue;
            }
            let key = Key {
                minute,
                bed: o.bed.clone(),
                device: o.device_id.as_str().to_owned(),
                code: o.metric.code,
                channel: o.channel.clone(),
            };
            let a = self.open.entry(key).or_insert(Acc {
                metric: o.metric.refid,
                name: o.metric.name,
                unit: o.metric.unit,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                sum: 0.0,
                count: 0,
            });
            a.min = a.min.min(o.value);
            a.max = a.max.max(o.value);
            a.sum += o.value;
            a.count += 1;
        }
        late
    }

    /// The minutes that may be sent at `now` (hub time), per bed, oldest minute first; the
    /// new `rolled_to` comes with them (set it once they are queued: [`Rollups::sent`]).
    pub fn due(&self, now: Millis) -> Option<(Millis, PerBed)> {
        let closed_before = minute_of(now - self.delay_ms - MINUTE) + MINUTE;
        if closed_before <= self.rolled_to {
            return None;
        }
        let mut per_bed: BTreeMap<Option<String>, Vec<RollupBody>> = BTreeMap::new();
        for (k, a) in self.open.range(..Key::first_of(closed_before)) {
            per_bed.entry(k.bed.clone()).or_default().push(RollupBody {
                device_id: k.device.clone(),
                metric: a.metric,
                code: k.code,
                name: a.name,
                unit: a.unit,
                channel: k.channel.clone(),
                minute: k.minute,
                min: a.min,
                max: a.max,
                mean: a.sum / a.count as f64,
                count: a.count,
            });
        }
        Some((closed_before, per_bed.into_iter().collect()))
    }

    /// The minutes before `rolled_to` are queued: forget them.
    pub fn sent(&mut self, rolled_to: Millis) {
        self.open = self.open.split_off(&Key::first_of(rolled_to));
        self.rolled_to = rolled_to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardhub_adapters::model::{metric_by_name, DeviceId, Status};

    fn obs(device: &str, bed: &str, metric: &str, at: Millis, value: f64) -> Observation {
        Observation {
            device_id: DeviceId::new(device).unwrap(),
            bed: Some(bed.into()),
            metric: metric_by_name(metric).unwrap(),
            value,
            observed_at: at,
            received_at: at,
            status: Status::Valid,
            channel: None,
            clock_correction_ms: 0,
        }
    }

    #[test]
    fn a_minute_is_sent_once_it_and_its_delay_are_over_and_late_data_is_counted() {
        let mut r = Rollups::new(0, 10_000);
        let t0 = 600_000; // minute 10
        r.add(&[
            obs("m1", "bed-01", "hr", t0 + 1_000, 60.0),
            obs("m1", "bed-01", "hr", t0 + 59_000, 90.0),
            obs("m2", "bed-02", "spo2", t0 + 5_000, 97.0),
            obs("m1", "bed-01", "hr", t0 + 61_000, 70.0),
        ]);
        let (to, beds) = r.due(t0 + 65_000).unwrap();
        assert_eq!((to, beds.len()), (t0, 0), "minute 10 waits for its delay");
        let (to, beds) = r.due(t0 + 70_000).unwrap();
        assert_eq!(to, t0 + 60_000);
        assert_eq!(beds.len(), 2);
        let hr = &beds[0].1[0];
        assert_eq!((hr.min, hr.max, hr.mean, hr.count), (60.0, 90.0, 75.0, 2));
        assert_eq!(hr.minute, t0);
        r.sent(to);
        assert_eq!(
            r.add(&[obs("m1", "bed-01", "hr", t0 + 30_000, 1.0)]),
            1,
            "late"
        );
        let (to2, beds) = r.due(t0 + 130_000).unwrap();
        assert_eq!(to2, t0 + 120_000);
        assert_eq!(beds[0].1[0].count, 1, "minute 11 holds only its own value");
    }
}
