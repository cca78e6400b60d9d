//! The baseline: a naive threshold alarm (raise on the first sample past a limit, clear on
//! the first back inside), the figure the engine's delays and conditions are compared with.

use super::*;

/// The naive monitor: per (device, metric), out of the base limits or not.
#[derive(Default)]
pub(super) struct Naive {
    out: HashMap<(String, u32), Millis>,
    pub alarms: usize,
    pub self_clearing: usize,
    /// When the data of a bed first crossed a limit, per entry: (bed, condition, time).
    pub crossings: Vec<(String, Condition, Millis)>,
}

impl Naive {
    pub fn observe(
        &mut self,
        o: &Observation,
        base: &[(u32, Option<f64>, Option<f64>)],
        now: Millis,
    ) {
        if !o.status.is_clinically_usable() {
            return;
        }
        let Some(&(_, low, high)) = base.iter().find(|(c, _, _)| *c == o.metric.code) else {
            return;
        };
        let below = low.is_some_and(|l| o.value < l);
        let outside = below || high.is_some_and(|h| o.value > h);
        let key = (o.device_id.as_str().to_owned(), o.metric.code);
        match (outside, self.out.get(&key).copied()) {
            (true, None) => {
                self.out.insert(key, now);
                self.alarms += 1;
                let side = if below { Side::Below } else { Side::Above };
                self.crossings.push((
                    o.bed.clone().unwrap_or_default(),
                    Condition::of(Cause::Limit, Some(o.metric), Some(side)),
                    now,
                ));
            }
            (false, Some(since)) => {
                self.out.remove(&key);
                if now - since < 10_000 {
                    self.self_clearing += 1;
                }
            }
            _ => {}
        }
    }
}
