//! Periodic charting values (`median`, `last`): the open periods of each patient, bed,
//! device, metric and channel, in memory, closed once a period has ended and `delay` has
//! passed. Pure: values and times in, charted values out.
//!
//! Periods are in device time (the clinical time of a value), aligned to the epoch (a
//! 15-minute period starts at :00, :15, :30, :45 UTC). A value for a period already charted
//! is late: counted by the caller, never folded into another period.

use std::collections::BTreeMap;

use wardhub_adapters::model::charting::ChartMethod;
use wardhub_adapters::model::{Metric, Millis, Status};

/// One open period of one series of one patient.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub start: Millis,
    pub patient_id: String,
    pub ward: String,
    pub bed: String,
    pub device: String,
    pub code: u32,
    pub channel: Option<String>,
}

#[derive(Debug, Clone)]
struct Window {
    metric: Metric,
    method: ChartMethod,
    /// Usable values: (device time, value).
    values: Vec<(Millis, f64)>,
    /// The status of the last unusable value, when there was one and no usable one.
    unusable: Option<(Millis, Status)>,
}

/// A closed period's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub key: Key,
    pub metric: Metric,
    pub method: ChartMethod,
    /// `None`: the period had only values that are not clinically usable.
    pub value: Option<f64>,
    pub status: Status,
    pub observed_at: Millis,
    pub period: (Millis, Millis),
    pub count: u32,
}

/// The open periods.
#[derive(Debug)]
pub struct Periodic {
    open: BTreeMap<Key, Window>,
    period: Millis,
    delay: Millis,
    /// Every period ending at or before this has been charted.
    pub charted_to: Millis,
}

impl Periodic {
    pub fn new(period: Millis, delay: Millis, charted_to: Millis) -> Periodic {
        Periodic {
            open: BTreeMap::new(),
            period: period.max(1),
            delay,
            charted_to,
        }
    }

    /// The start of the period `t` falls in.
    pub fn start_of(&self, t: Millis) -> Millis {
        t.div_euclid(self.period) * self.period
    }

    /// Where `charted_to` may go at hub time `now`.
    pub fn closable_to(&self, now: Millis) -> Millis {
        self.start_of(now - self.delay)
    }

    /// Adds one value; `false` when its period was charted already (late).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        mut key: Key,
        metric: Metric,
        method: ChartMethod,
        observed_at: Millis,
        value: f64,
        status: Status,
        usable: bool,
    ) -> bool {
        key.start = self.start_of(observed_at);
        if key.start < self.charted_to {
            return false;
        }
        let w = self.open.entry(key).or_insert_with(|| Window {
            metric,
            method,
            values: Vec::new(),
            unusable: None,
        });
        if usable {
            w.values.push((observed_at, value));
        } else if w.unusable.is_none_or(|(t, _)| t <= observed_at) {
            w.unusable = Some((observed_at, status));
        }
        true
    }

    /// Closes every period that ended by `closable_to(now)`, oldest first; moves
    /// `charted_to` there.
    pub fn close(&mut self, now: Millis) -> Vec<Closed> {
        let to = self.closable_to(now);
        if to <= self.charted_to {
            return Vec::new();
        }
        let mut out = Vec::new();
        let keep = self.open.split_off(&Key {
            start: to - self.period + 1,
            patient_id: String::new(),
            ward: String::new(),
            bed: String::new(),
            device: String::new(),
            code: 0,
            channel: None,
        });
        let done = std::mem::replace(&mut self.open, keep);
        for (key, mut w) in done {
            let period = (key.start, key.start + self.period);
            if w.values.is_empty() {
                if let Some((_, status)) = w.unusable {
                    out.push(Closed {
                        key,
                        metric: w.metric,
                        method: w.method,
                        value: None,
                        status,
                        observed_at: period.1,
                        period,
                        count: 0,
                    });
                }
                continue;
            }
            w.values.sort_by_key(|(t, _)| *t);
            let count = u32::try_from(w.values.len()).unwrap_or(u32::MAX);
            let (observed_at, value) = match w.method {
                ChartMethod::Last | ChartMethod::Every => {
                    *w.values.last().expect("not empty: checked above")
                }
                ChartMethod::Median => (period.1, median(&w.values)),
            };
            out.push(Closed {
                key,
                metric: w.metric,
                method: w.method,
                value: Some(value),
                status: Status::Valid,
                observed_at,
                period,
                count,
            });
        }
        self.charted_to = to;
        out
    }

    /// Open periods (for the tests and the health view).
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

/// The median of the values (the mean of the two middle ones for an even count), rounded
/// to the precision a device reports (two decimals: no invented digits).
fn median(values: &[(Millis, f64)]) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|(_, x)| *x).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (m * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardhub_adapters::model::metric_by_name;

    const MIN: Millis = 60_000;

    fn key() -> Key {
        Key {
            start: 0,
            patient_id: "p".into(),
            ward: "w".into(),
            bed: "b".into(),
            device: "d".into(),
            code: 0,
            channel: None,
        }
    }

    #[test]
    fn a_period_closes_after_its_delay_with_the_median_and_late_values_are_refused() {
        let hr = metric_by_name("hr").unwrap();
        let mut p = Periodic::new(15 * MIN, MIN, 0);
        for (t, v) in [(1, 70.0), (2, 90.0), (3, 71.0), (4, 200.0)] {
            assert!(p.add(
                key(),
                hr,
                ChartMethod::Median,
                t * 1000,
                v,
                Status::Valid,
                true
            ));
        }
        assert!(
            p.close(15 * MIN + MIN - 1).is_empty(),
            "the delay has not passed"
        );
        let closed = p.close(16 * MIN);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].value, Some(80.5));
        assert_eq!((closed[0].period, closed[0].count), ((0, 15 * MIN), 4));
        assert!(
            !p.add(
                key(),
                hr,
                ChartMethod::Median,
                5000,
                60.0,
                Status::Valid,
                true
            ),
            "a value of a charted period is late"
        );
        assert!(p.add(
            key(),
            hr,
            ChartMethod::Median,
            15 * MIN,
            60.0,
            Status::Valid,
            true
        ));
        assert_eq!(p.open_count(), 1);
    }

    #[test]
    fn last_takes_the_latest_usable_and_an_unusable_only_period_is_data_absent() {
        let t = metric_by_name("temp").unwrap();
        let mut p = Periodic::new(15 * MIN, 0, 0);
        p.add(key(), t, ChartMethod::Last, 2000, 37.5, Status::Valid, true);
        p.add(key(), t, ChartMethod::Last, 1000, 37.1, Status::Valid, true);
        p.add(
            key(),
            t,
            ChartMethod::Last,
            3000,
            0.0,
            Status::Invalid,
            false,
        );
        let mut k2 = key();
        k2.device = "e".into();
        p.add(
            k2,
            t,
            ChartMethod::Last,
            3000,
            0.0,
            Status::NotAvailable,
            false,
        );
        let c = p.close(15 * MIN);
        assert_eq!((c[0].value, c[0].observed_at), (Some(37.5), 2000));
        assert_eq!((c[1].value, c[1].status), (None, Status::NotAvailable));
    }
}
