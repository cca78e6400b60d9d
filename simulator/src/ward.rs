//! The pure simulation: [`Ward::new`] and [`Ward::step`].
//!
//! Nothing here reads a clock or does I/O: time is the simulated millisecond since the start,
//! randomness comes from ChaCha8 streams seeded by the run's seed (one stream per bed, so bed 7
//! behaves the same whether the ward has 30 beds or 2000). The same scenario and seed give the
//! same [`Emission`]s, in the same order.
//!
//! # Layout
//!
//! This file is the [`Ward`], its state, and the second-by-second loop ([`Ward::step`]):
//! every second each bed runs its events, its patient's physiology, its pump and its
//! devices. `roster` is who is on the ward (ids, [`DeviceInfo`], [`Ward::new`]); `emission`
//! what devices send ([`Emission`], [`Payload`]); `events` starting and ending events and
//! their ground truth ([`TruthEvent`]); `readings` what each device measures and reports.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use wardhub_adapters::model::{metric_by_name, Metric};

pub use crate::device::{DeviceKind, Protocol};
use crate::physiology::Patient;
use crate::scenario::{EventKind, Scenario};

mod emission;
mod events;
mod readings;
mod roster;

pub use emission::{
    DeviceEvent, DeviceEventKind, Emission, Payload, PumpReport, Reading, StatusReport,
};
pub use events::TruthEvent;
pub use roster::{bed_id, device_id, DeviceInfo};

/// Simulated milliseconds since the start of the run.
pub type SimMillis = u64;

#[derive(Debug, Clone)]
struct DeviceState {
    online: bool,
    offline_until: Option<u64>,
    battery: f64,
    charging: bool,
    extra_drain: f64,
    skew_ms: i64,
    skew_until: Option<u64>,
    drain_until: Option<u64>,
    garbage_until: Option<u64>,
    motion_until: Option<u64>,
    status_phase: u64,
    event_seq: u64,
}

#[derive(Debug, Clone)]
struct PumpState {
    rate_ml_h: f64,
    volume_ml: f64,
    occluded_until: Option<u64>,
    /// The bag ran out; a new one is hung at this time.
    empty_until: Option<u64>,
}

#[derive(Debug, Clone)]
struct Bed {
    rng: ChaCha8Rng,
    patient: Patient,
    /// Device index by [`DeviceKind`] position in [`DeviceKind::ALL`].
    devices: [Option<usize>; 6],
    phase_ms: u64,
    nibp_phase: u64,
    wearable_phase: u64,
    probe_off_until: Option<u64>,
    lead_off_until: Option<u64>,
    out_of_bed_until: Option<u64>,
    call_until: Option<u64>,
    pump: PumpState,
    /// Scripted events of this bed, by start time.
    script: VecDeque<Planned>,
}

#[derive(Debug, Clone)]
struct Planned {
    at_s: u64,
    kind: EventKind,
    duration_s: u64,
    severity: f64,
    device: DeviceKind,
    skew_ms: i64,
    rate: f64,
}

/// A simulated ward.
#[derive(Debug, Clone)]
pub struct Ward {
    scenario: Scenario,
    devices: Vec<DeviceInfo>,
    state: Vec<DeviceState>,
    beds: Vec<Bed>,
    /// The next second to simulate.
    next_s: u64,
    metrics: Metrics,
    /// Every event that took effect, in start order.
    truth: Vec<TruthEvent>,
}

#[derive(Debug, Clone, Copy)]
struct Metrics {
    hr: Metric,
    pr: Metric,
    spo2: Metric,
    sys: Metric,
    dia: Metric,
    mean: Metric,
    rr: Metric,
    temp: Metric,
    etco2: Metric,
}

impl Metrics {
    fn new() -> Metrics {
        // The names are those of the adapters' built-in metric table.
        let m = |n| metric_by_name(n).expect("built-in metric");
        Metrics {
            hr: m("hr"),
            pr: m("pr"),
            spo2: m("spo2"),
            sys: m("nibp_sys"),
            dia: m("nibp_dia"),
            mean: m("nibp_mean"),
            rr: m("rr"),
            temp: m("temp"),
            etco2: m("etco2"),
        }
    }
}

fn kind_pos(kind: DeviceKind) -> usize {
    DeviceKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Ward {
    /// The ground truth so far: every clinical event, artefact, device fault and device event
    /// that took effect, in start order.
    pub fn truth(&self) -> &[TruthEvent] {
        &self.truth
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Every simulated device, in emission index order.
    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// The simulated time up to which the ward has been stepped.
    pub fn now(&self) -> SimMillis {
        self.next_s * 1000
    }

    /// Simulates every second that starts before `until` and returns what the devices send
    /// in those seconds, ordered by time (then device). Emissions of a second are spread
    /// over it, so some may be timed after `until`.
    pub fn step(&mut self, until: SimMillis) -> Vec<Emission> {
        let mut out = Vec::new();
        while self.next_s * 1000 < until {
            self.second(&mut out);
        }
        out
    }

    /// Simulates the next second.
    pub fn next_second(&mut self) -> Vec<Emission> {
        let mut out = Vec::new();
        self.second(&mut out);
        out
    }

    fn second(&mut self, out: &mut Vec<Emission>) {
        let t = self.next_s;
        self.next_s += 1;
        let start = out.len();
        let hour = (self.scenario.start_hour + t as f64 / 3600.0) % 24.0;
        for b in 0..self.beds.len() {
            self.bed_second(b, t, hour, out);
        }
        out[start..].sort_by_key(|e| (e.at, e.device));
    }

    fn bed_second(&mut self, b: usize, t: u64, hour: f64, out: &mut Vec<Emission>) {
        // Scripted, then random events.
        while self.beds[b].script.front().is_some_and(|p| p.at_s <= t) {
            if let Some(p) = self.beds[b].script.pop_front() {
                self.begin(b, t, p, out);
            }
        }
        for (kind, rate) in self.scenario.random.clone() {
            let bed = &mut self.beds[b];
            if rate > 0.0 && bed.rng.gen::<f64>() < rate / 3600.0 {
                let (lo, hi) = kind.random_duration_s();
                let duration_s = bed.rng.gen_range(lo..=hi);
                let severity = bed.rng.gen_range(0.85..1.1);
                let skew_ms = if bed.rng.gen::<bool>() { 1 } else { -1 }
                    * bed.rng.gen_range(60_000..1_800_000);
                let p = Planned {
                    at_s: t,
                    kind,
                    duration_s,
                    severity,
                    device: kind.default_device(),
                    skew_ms,
                    rate: 30.0,
                };
                self.begin(b, t, p, out);
            }
        }
        self.end_timed(b, t, out);
        let vitals = {
            let bed = &mut self.beds[b];
            bed.patient.step(&mut bed.rng, t, hour)
        };
        self.pump_second(b, t, out);
        for pos in 0..6 {
            let Some(d) = self.beds[b].devices[pos] else {
                continue;
            };
            self.device_second(b, d, t, &vitals, out);
        }
    }

    fn emit(&mut self, b: usize, d: usize, t: u64, payload: Payload, out: &mut Vec<Emission>) {
        let offset = kind_pos(self.devices[d].kind) as u64 * 7;
        out.push(Emission {
            at: t * 1000 + (self.beds[b].phase_ms + offset) % 1000,
            device: d,
            clock_offset_ms: self.state[d].skew_ms,
            payload,
        });
    }

    fn device_event(
        &mut self,
        b: usize,
        kind: DeviceKind,
        t: u64,
        ev: DeviceEventKind,
        active: bool,
        out: &mut Vec<Emission>,
    ) {
        let Some(d) = self.beds[b].devices[kind_pos(kind)] else {
            return;
        };
        if self.devices[d].protocol != Protocol::MqttJson {
            return;
        }
        self.state[d].event_seq += 1;
        let seq = self.state[d].event_seq;
        self.emit(
            b,
            d,
            t,
            Payload::Event(DeviceEvent {
                kind: ev,
                active,
                seq,
            }),
            out,
        );
    }

    fn device_of(&self, b: usize, kind: DeviceKind) -> Option<usize> {
        self.beds[b].devices[kind_pos(kind)]
    }
}
