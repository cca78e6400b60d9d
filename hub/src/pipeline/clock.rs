//! Device clocks running ahead of hub time (issue 15: "a device whose clock runs more than
//! 5 minutes fast hides all its physiological alarms").
//!
//! A device cannot observe the future: a time further ahead of hub time than
//! `ingest.max_future_skew` is the device's clock running ahead. Refusing such data hid every
//! physiological alarm of that device (only a low-priority clock-skew alarm showed). The hub
//! keeps it and moves it back to hub time instead, and flags it: the shift is
//! [`Observation::clock_correction_ms`], counted in `wardhub_ingest_clock_corrected_total`,
//! and the alarm engine's clock-skew alarm reads the device's own time.
//!
//! The shift is one number per device, not per sample: how far the newest time of a message
//! is ahead of its receipt. Every sample of the device moves by the same amount, so the
//! spacing of its samples is kept and two samples never fall on one time. While the device's
//! lead stays within [`JITTER_MS`] of the shift in use, the shift is kept (a steady clock
//! gives a steady series even when the transport delay jitters, at the price of a sample
//! landing up to that much ahead of its receipt); a lead further off sets a new shift.
//! A device whose times are no longer ahead is kept as it says.
//!
//! A clock running behind is not corrected: an old time is also what a backlog replayed after
//! a reconnect carries, and moving it to "now" would present old measurements as current.

use std::collections::HashMap;

use wardhub_adapters::model::{Millis, Observation};

/// How far a device's lead may move (transport jitter) before its shift is set anew.
pub const JITTER_MS: i64 = 2_000;

/// The shift in use per device.
#[derive(Debug, Default)]
pub struct ClockCorrection {
    shifts: HashMap<String, Millis>,
}

impl ClockCorrection {
    /// Corrects the observations of one message (one ingest) whose device clock runs more
    /// than `max_future_ms` ahead of hub time; returns how many were moved.
    pub fn apply(&mut self, observations: &mut [Observation], max_future_ms: i64) -> usize {
        // Every ingest passes here: with no clock ahead now or before, nothing to build.
        let ahead = |o: &Observation| o.observed_at.saturating_sub(o.received_at) > max_future_ms;
        if self.shifts.is_empty() && !observations.iter().any(ahead) {
            return 0;
        }
        let mut lead: HashMap<&str, Millis> = HashMap::new();
        for o in observations.iter() {
            let l = o.observed_at.saturating_sub(o.received_at);
            lead.entry(o.device_id.as_str())
                .and_modify(|x| *x = (*x).max(l))
                .or_insert(l);
        }
        let mut shift_of: HashMap<String, Millis> = HashMap::new();
        for (device, l) in lead {
            if l <= max_future_ms {
                self.shifts.remove(device);
                continue;
            }
            let shift = match self.shifts.get(device) {
                Some(&s) if (l - s).abs() <= JITTER_MS => s,
                _ => l,
            };
            self.shifts.insert(device.to_owned(), shift);
            shift_of.insert(device.to_owned(), shift);
        }
        if shift_of.is_empty() {
            return 0;
        }
        let mut moved = 0;
        for o in observations.iter_mut() {
            if let Some(&s) = shift_of.get(o.device_id.as_str()) {
                o.observed_at -= s;
                o.clock_correction_ms = s;
                moved += 1;
            }
        }
        moved
    }

    /// Forgets a device (retired, unbound): a later clock starts afresh.
    pub fn forget(&mut self, device: &str) {
        self.shifts.remove(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardhub_adapters::model::{metric_by_name, DeviceId, Status};

    fn obs(device: &str, observed_at: Millis, received_at: Millis) -> Observation {
        Observation {
            device_id: DeviceId::new(device).unwrap(),
            bed: None,
            metric: metric_by_name("spo2").unwrap(),
            value: 81.0,
            observed_at,
            received_at,
            status: Status::Valid,
            channel: None,
            clock_correction_ms: 0,
        }
    }

    const MIN: i64 = 60_000;

    /// Guards "a device whose clock runs 10 minutes fast has its data refused": its samples
    /// land at hub time, keep their spacing, and say by how much they moved.
    #[test]
    fn a_clock_ten_minutes_ahead_lands_at_hub_time_with_its_spacing() {
        let mut c = ClockCorrection::default();
        let now = 1_000 * MIN;
        let mut batch: Vec<_> = (0..5)
            .map(|i| obs("mon-1", now + 10 * MIN - 4_000 + i * 1_000, now))
            .collect();
        batch.push(obs("mon-2", now - 200, now));
        assert_eq!(c.apply(&mut batch, 30_000), 5);
        let times: Vec<_> = batch.iter().map(|o| o.observed_at).collect();
        assert_eq!(
            times,
            [
                now - 4_000,
                now - 3_000,
                now - 2_000,
                now - 1_000,
                now,
                now - 200
            ]
        );
        assert!(batch[..5].iter().all(|o| o.clock_correction_ms == 10 * MIN));
        assert_eq!(
            batch[5].clock_correction_ms, 0,
            "another device is not moved"
        );
    }

    /// Guards "two samples of a steady fast clock fall on one time": the shift is kept while
    /// the lead only jitters, so a series stays strictly ordered across messages.
    #[test]
    fn a_steady_clock_keeps_its_shift_across_jittery_messages() {
        let mut c = ClockCorrection::default();
        let t0 = 1_000 * MIN;
        let mut out = Vec::new();
        // Device time every second, 10 min ahead; transport jitter 0..900 ms.
        for i in 0..20i64 {
            let device_t = t0 + 10 * MIN + i * 1_000;
            let received = t0 + i * 1_000 + (i * 373) % 900;
            let mut b = vec![obs("mon-1", device_t, received)];
            c.apply(&mut b, 30_000);
            out.push(b[0].observed_at);
        }
        assert!(out.windows(2).all(|w| w[1] - w[0] == 1_000), "{out:?}");
        assert_eq!(out[0], t0, "the first message sets the shift");
    }

    #[test]
    fn within_the_tolerance_or_behind_nothing_moves_and_the_shift_is_forgotten() {
        let mut c = ClockCorrection::default();
        let now = 1_000 * MIN;
        let mut b = vec![
            obs("mon-1", now + 20_000, now),
            obs("mon-1", now - 5 * MIN, now),
        ];
        assert_eq!(c.apply(&mut b, 30_000), 0);
        assert_eq!(
            (b[0].observed_at, b[1].observed_at),
            (now + 20_000, now - 5 * MIN)
        );
        let mut ahead = vec![obs("mon-1", now + 10 * MIN, now)];
        assert_eq!(c.apply(&mut ahead, 30_000), 1);
        // The clock was fixed: its times are kept again.
        let mut fixed = vec![obs("mon-1", now + 1_000, now + 1_000)];
        assert_eq!(c.apply(&mut fixed, 30_000), 0);
        assert_eq!(fixed[0].observed_at, now + 1_000);
        assert!(c.shifts.is_empty());
    }
}
