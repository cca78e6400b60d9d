//! A patient's vital signs, second by second.
//!
//! Each vital is `baseline + drift + circadian`, kept inside a normal band (so a patient with
//! no clinical event never crosses the adult alarm limits), then pulled towards the targets of
//! the clinical events in progress, then given measurement noise. Drift is an
//! Ornstein–Uhlenbeck process (it wanders and returns); the circadian term is lowest at 04:00.

use rand::Rng;

use crate::scenario::EventKind;

/// The vitals the simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Vital {
    Hr = 0,
    Spo2,
    Sys,
    Dia,
    Rr,
    Temp,
    Etco2,
}

pub const VITALS: usize = 7;

/// Per vital: drift sd, drift time constant (s), noise sd, circadian amplitude, and the normal
/// band the event-free value stays in.
struct Model {
    drift_sd: f64,
    drift_tau_s: f64,
    noise_sd: f64,
    circadian: f64,
    band: (f64, f64),
    baseline: (f64, f64),
}

const MODELS: [Model; VITALS] = [
    // HR: adult limits 50–120.
    Model {
        drift_sd: 3.0,
        drift_tau_s: 600.0,
        noise_sd: 1.0,
        circadian: 5.0,
        band: (54.0, 112.0),
        baseline: (62.0, 92.0),
    },
    // SpO2: limit 90.
    Model {
        drift_sd: 0.7,
        drift_tau_s: 300.0,
        noise_sd: 0.4,
        circadian: 0.3,
        band: (92.5, 100.0),
        baseline: (95.0, 99.0),
    },
    // NIBP systolic: 90–160.
    Model {
        drift_sd: 5.0,
        drift_tau_s: 900.0,
        noise_sd: 2.0,
        circadian: 6.0,
        band: (96.0, 154.0),
        baseline: (108.0, 138.0),
    },
    // NIBP diastolic: 50–90 (mean 60–110 follows).
    Model {
        drift_sd: 3.0,
        drift_tau_s: 900.0,
        noise_sd: 1.5,
        circadian: 4.0,
        band: (56.0, 86.0),
        baseline: (64.0, 80.0),
    },
    // RR: 8–30.
    Model {
        drift_sd: 1.2,
        drift_tau_s: 300.0,
        noise_sd: 0.6,
        circadian: 1.0,
        band: (10.0, 26.0),
        baseline: (12.0, 18.0),
    },
    // Temperature: 35–39.
    Model {
        drift_sd: 0.12,
        drift_tau_s: 1800.0,
        noise_sd: 0.03,
        circadian: 0.3,
        band: (35.8, 38.0),
        baseline: (36.4, 37.1),
    },
    // etCO2: 15–50.
    Model {
        drift_sd: 1.5,
        drift_tau_s: 600.0,
        noise_sd: 0.6,
        circadian: 0.5,
        band: (30.0, 45.0),
        baseline: (34.0, 41.0),
    },
];

/// The noise of a reading is clamped to this many standard deviations.
const NOISE_CLAMP: f64 = 3.0;

/// A standard normal variate (Box–Muller; one of the pair is dropped for simplicity).
pub fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One clinical event acting on a patient.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalEvent {
    pub kind: EventKind,
    pub start_s: u64,
    pub duration_s: u64,
    pub severity: f64,
}

impl ClinicalEvent {
    /// How far in (0..1) the event is at `t`: ramps in and out; a deterioration only ramps in,
    /// over its whole duration, and stays.
    pub fn envelope(&self, t: u64) -> f64 {
        if t < self.start_s {
            return 0.0;
        }
        let u = (t - self.start_s) as f64;
        let d = self.duration_s.max(1) as f64;
        if self.kind == EventKind::Deterioration {
            return (u / d).min(1.0);
        }
        let onset = match self.kind {
            EventKind::Apnoea => 1.0,
            EventKind::Fever => (d / 4.0).min(1800.0),
            EventKind::Hypotension => (d / 5.0).min(300.0),
            _ => (d / 5.0).min(45.0),
        }
        .max(1.0);
        if u < onset {
            u / onset
        } else if u < d {
            1.0
        } else if u < d + onset {
            1.0 - (u - d) / onset
        } else {
            0.0
        }
    }

    /// Whether the event no longer acts at or after `t`.
    pub fn is_over(&self, t: u64) -> bool {
        self.kind != EventKind::Deterioration && t > self.start_s + self.duration_s * 2 + 3600
    }

    /// The targets the event pulls vitals towards: (vital, target, weight of the envelope).
    fn targets(&self, t: u64) -> &'static [(Vital, f64)] {
        let _ = t;
        match self.kind {
            EventKind::Desaturation => &[(Vital::Spo2, 81.0), (Vital::Hr, 112.0)],
            EventKind::Tachycardia => &[(Vital::Hr, 148.0)],
            EventKind::Bradycardia => &[(Vital::Hr, 38.0)],
            EventKind::Hypotension => &[(Vital::Sys, 72.0), (Vital::Dia, 40.0), (Vital::Hr, 112.0)],
            EventKind::Fever => &[(Vital::Temp, 39.7), (Vital::Hr, 118.0), (Vital::Rr, 24.0)],
            EventKind::Deterioration => &[
                (Vital::Hr, 132.0),
                (Vital::Rr, 33.0),
                (Vital::Sys, 82.0),
                (Vital::Dia, 46.0),
                (Vital::Spo2, 84.0),
                (Vital::Temp, 39.2),
            ],
            EventKind::Apnoea => &[(Vital::Rr, 0.0), (Vital::Etco2, 0.0)],
            _ => &[],
        }
    }
}

/// One patient.
#[derive(Debug, Clone)]
pub struct Patient {
    baseline: [f64; VITALS],
    drift: [f64; VITALS],
    pub events: Vec<ClinicalEvent>,
}

/// The true values of one second (before measurement noise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vitals(pub [f64; VITALS]);

impl Vitals {
    pub fn get(&self, v: Vital) -> f64 {
        self.0[v as usize]
    }
}

impl Patient {
    pub fn new<R: Rng>(rng: &mut R) -> Patient {
        let mut baseline = [0.0; VITALS];
        for (b, m) in baseline.iter_mut().zip(&MODELS) {
            *b = rng.gen_range(m.baseline.0..m.baseline.1);
        }
        // A wide pulse pressure patient must still have diastolic below systolic.
        baseline[Vital::Dia as usize] =
            baseline[Vital::Dia as usize].min(baseline[Vital::Sys as usize] - 30.0);
        Patient {
            baseline,
            drift: [0.0; VITALS],
            events: Vec::new(),
        }
    }

    /// Advances the drift by one second and returns the true vitals at second `t`, clock of day
    /// `hour`.
    pub fn step<R: Rng>(&mut self, rng: &mut R, t: u64, hour: f64) -> Vitals {
        let circ = -((hour - 4.0) / 24.0 * std::f64::consts::TAU).cos();
        let mut v = [0.0; VITALS];
        for i in 0..VITALS {
            let m = &MODELS[i];
            let a = (-1.0 / m.drift_tau_s).exp();
            self.drift[i] = self.drift[i] * a + m.drift_sd * (1.0 - a * a).sqrt() * normal(rng);
            let d = self.drift[i].clamp(-2.5 * m.drift_sd, 2.5 * m.drift_sd);
            v[i] = (self.baseline[i] + d + m.circadian * circ).clamp(m.band.0, m.band.1);
        }
        self.events.retain(|e| !e.is_over(t));
        for e in &self.events {
            let f = (e.envelope(t) * e.severity).clamp(0.0, 1.5);
            if f <= 0.0 {
                continue;
            }
            for (vital, target) in e.targets(t) {
                let i = *vital as usize;
                v[i] += f * (target - v[i]);
            }
            if e.kind == EventKind::Apnoea && t >= e.start_s {
                // Oxygen falls some 20 s after breathing stops, and recovers after it restarts.
                let u = (t - e.start_s) as f64;
                let since_end = u - e.duration_s as f64;
                let low = if since_end < 0.0 {
                    ((u - 20.0) / 60.0).clamp(0.0, 1.0)
                } else {
                    (((e.duration_s as f64 - 20.0) / 60.0).clamp(0.0, 1.0) - since_end / 40.0)
                        .max(0.0)
                };
                let i = Vital::Spo2 as usize;
                v[i] += low * e.severity.min(1.0) * (78.0 - v[i]);
            }
        }
        // Keep the pressures consistent after independent pulls.
        let (s, d) = (Vital::Sys as usize, Vital::Dia as usize);
        v[d] = v[d].min(v[s] - 15.0);
        Vitals(v)
    }

    /// A measured value: the true one with clamped noise (scaled by `noise`).
    pub fn measure<R: Rng>(rng: &mut R, vitals: &Vitals, vital: Vital, noise: f64) -> f64 {
        let m = &MODELS[vital as usize];
        let n = normal(rng).clamp(-NOISE_CLAMP, NOISE_CLAMP) * m.noise_sd * noise;
        let x = vitals.get(vital);
        // Noise does not push a value in its normal band out of the band: an event-free
        // patient stays inside the adult alarm limits.
        if (m.band.0..=m.band.1).contains(&x) {
            (x + n).clamp(m.band.0, m.band.1)
        } else {
            x + n
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn event_free_patients_stay_in_their_bands() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let mut p = Patient::new(&mut rng);
            for t in 0..6 * 3600 {
                let v = p.step(&mut rng, t, (t as f64 / 3600.0) % 24.0);
                for (i, m) in MODELS.iter().enumerate() {
                    let x = Patient::measure(
                        &mut rng,
                        &v,
                        [
                            Vital::Hr,
                            Vital::Spo2,
                            Vital::Sys,
                            Vital::Dia,
                            Vital::Rr,
                            Vital::Temp,
                            Vital::Etco2,
                        ][i],
                        1.0,
                    );
                    assert!((m.band.0..=m.band.1).contains(&x), "vital {i} = {x}");
                }
            }
        }
    }

    #[test]
    fn desaturation_reaches_its_target() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut p = Patient::new(&mut rng);
        p.events.push(ClinicalEvent {
            kind: EventKind::Desaturation,
            start_s: 10,
            duration_s: 120,
            severity: 1.0,
        });
        let mut low = 100.0f64;
        for t in 0..400 {
            let v = p.step(&mut rng, t, 12.0);
            low = low.min(v.get(Vital::Spo2));
        }
        assert!(low < 84.0, "{low}");
    }
}
