//! The pure simulation: [`Ward::new`] and [`Ward::step`].
//!
//! Nothing here reads a clock or does I/O: time is the simulated millisecond since the start,
//! randomness comes from ChaCha8 streams seeded by the run's seed (one stream per bed, so bed 7
//! behaves the same whether the ward has 30 beds or 2000). The same scenario and seed give the
//! same [`Emission`]s, in the same order.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use wardhub_adapters::model::{metric_by_name, Metric, Status, MDC_NOT_AVAILABLE};

pub use crate::device::{DeviceKind, Protocol};
use crate::physiology::{ClinicalEvent, Patient, Vital, Vitals};
use crate::scenario::{parse_signed_duration, EventKind, Scenario};

/// Simulated milliseconds since the start of the run.
pub type SimMillis = u64;

/// One simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `b07-mon`
    pub id: String,
    pub kind: DeviceKind,
    /// `bed-07`
    pub bed: String,
    pub bed_index: usize,
    pub ward: String,
    pub protocol: Protocol,
    pub serial: String,
}

/// Device ids and bed ids of bed `index` (0-based) in a ward of `beds` beds: the number is
/// zero-padded to at least two digits and to the width of the largest bed number.
pub fn bed_id(index: usize, beds: usize) -> String {
    format!("bed-{:0w$}", index + 1, w = width(beds))
}

pub fn device_id(index: usize, beds: usize, kind: DeviceKind) -> String {
    format!("b{:0w$}-{}", index + 1, kind.suffix(), w = width(beds))
}

fn width(beds: usize) -> usize {
    beds.to_string().len().max(2)
}

/// One measured value; its time is the emission's.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: Metric,
    pub value: f64,
    pub status: Status,
}

/// Device status (the hub's `DeviceStatus` contract, plus device-specific fields).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub online: bool,
    pub battery_pct: f64,
    pub charging: bool,
    pub firmware: &'static str,
    pub pump: Option<PumpReport>,
    /// Smart beds: whether the patient is in bed.
    pub occupied: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PumpReport {
    pub infusing: bool,
    pub rate_ml_h: f64,
    pub volume_remaining_ml: f64,
}

/// The events of the event contract (`wardhub/v1/devices/{id}/event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceEventKind {
    NurseCall,
    BedExit,
    PumpOcclusion,
    EndOfInfusion,
}

impl DeviceEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventKind::NurseCall => "nurse_call",
            DeviceEventKind::BedExit => "bed_exit",
            DeviceEventKind::PumpOcclusion => "pump_occlusion",
            DeviceEventKind::EndOfInfusion => "end_of_infusion",
        }
    }
}

/// A device event: it starts (`active`) and later ends.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    pub kind: DeviceEventKind,
    pub active: bool,
    /// Per device, increasing from 1: lets a receiver spot duplicates (QoS 1) and gaps.
    pub seq: u64,
}

/// What a device sends (or does) at one moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Observations(Vec<Reading>),
    Status(StatusReport),
    Event(DeviceEvent),
    /// A malformed message, sent as is on the device's observation channel.
    Garbage(Vec<u8>),
    /// The connection drops without a clean close (the MQTT last will fires).
    Disconnect,
    /// The device comes back (a status follows).
    Reconnect,
}

/// One thing a device sends, at simulated time `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Emission {
    pub at: SimMillis,
    /// Index into [`Ward::devices`].
    pub device: usize,
    /// The device clock's error: add to the time when stamping.
    pub clock_offset_ms: i64,
    pub payload: Payload,
}

/// What really happened at a bed: the ground truth of a run, against which an alarm system is
/// judged (`ward-sim dump --truth`, the file `ward-sim run --truth` writes, and
/// `wardhub bench alarm-quality`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthEvent {
    /// `bed-07`
    pub bed: String,
    pub kind: EventKind,
    /// `clinical` (the patient changes), `artefact` (the measurement is wrong, the patient is
    /// fine), `device_fault` or `device_event` (nurse call, bed exit, pump).
    pub class: &'static str,
    /// Simulated ms from the start of the run.
    pub start_ms: SimMillis,
    /// When the cause ends (a clinical event's vitals then take its onset time to recover).
    pub end_ms: SimMillis,
    /// How far towards the event's target the vitals go (clinical; 1 = all the way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<f64>,
    /// The device concerned (artefacts, faults, device events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// A clock skew's size (ms, signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew_ms: Option<i64>,
}

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
    /// A ward as `scenario` describes it; `seed` decides everything random.
    pub fn new(scenario: Scenario, seed: u64) -> Ward {
        let n = scenario.beds;
        let mut devices = Vec::new();
        let mut state = Vec::new();
        let mut beds = Vec::with_capacity(n);
        let status_every = scenario.timing.status_interval.as_secs().max(1);
        for b in 0..n {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(b as u64 + 1);
            let patient = Patient::new(&mut rng);
            let mut slots = [None; 6];
            for kind in DeviceKind::ALL {
                if !scenario.devices.contains(&kind) {
                    continue;
                }
                let idx = devices.len();
                slots[kind_pos(kind)] = Some(idx);
                devices.push(DeviceInfo {
                    id: device_id(b, n, kind),
                    kind,
                    bed: bed_id(b, n),
                    bed_index: b,
                    ward: scenario.ward.clone(),
                    protocol: scenario.protocol_of(kind, b),
                    serial: format!("SIM{:05}{}", b + 1, kind.suffix().to_ascii_uppercase()),
                });
                let battery = if kind.battery_powered() {
                    rng.gen_range(40.0..100.0)
                } else {
                    100.0
                };
                state.push(DeviceState {
                    online: true,
                    offline_until: None,
                    battery,
                    charging: !kind.battery_powered(),
                    extra_drain: 0.0,
                    skew_ms: 0,
                    skew_until: None,
                    drain_until: None,
                    garbage_until: None,
                    motion_until: None,
                    status_phase: rng.gen_range(0..status_every),
                    event_seq: 0,
                });
            }
            let pump = PumpState {
                rate_ml_h: f64::from(rng.gen_range(4u8..25)) * 5.0,
                volume_ml: f64::from(rng.gen_range(4u8..20)) * 50.0,
                occluded_until: None,
                empty_until: None,
            };
            beds.push(Bed {
                nibp_phase: rng.gen_range(0..scenario.timing.nibp_interval.as_secs().max(1)),
                wearable_phase: rng
                    .gen_range(0..scenario.timing.wearable_interval.as_secs().max(1)),
                rng,
                patient,
                devices: slots,
                phase_ms: (b as u64 * 997 + 13) % 1000,
                probe_off_until: None,
                lead_off_until: None,
                out_of_bed_until: None,
                call_until: None,
                pump,
                script: VecDeque::new(),
            });
        }
        let mut script: Vec<_> = scenario.events.iter().collect();
        script.sort_by_key(|e| e.at);
        for e in script {
            let Some(b) = scenario.bed_index(&e.bed) else {
                continue; // validated: cannot happen
            };
            let (lo, hi) = e.kind.random_duration_s();
            beds[b].script.push_back(Planned {
                at_s: e.at.as_secs(),
                kind: e.kind,
                duration_s: e.duration.map_or((lo + hi) / 2, |d| d.as_secs().max(1)),
                severity: e.severity.unwrap_or(1.0),
                device: e.device.unwrap_or_else(|| e.kind.default_device()),
                skew_ms: e
                    .skew
                    .as_deref()
                    .and_then(|s| parse_signed_duration(s).ok())
                    .unwrap_or(600_000),
                rate: e.rate.unwrap_or(30.0),
            });
        }
        Ward {
            scenario,
            devices,
            state,
            beds,
            next_s: 0,
            metrics: Metrics::new(),
            truth: Vec::new(),
        }
    }

    /// The ground truth so far: every clinical event, artefact, device fault and device event
    /// that took effect, in start order.
    pub fn truth(&self) -> &[TruthEvent] {
        &self.truth
    }

    fn record(&mut self, b: usize, t: u64, p: &Planned, device: Option<usize>) {
        let clinical = p.kind.is_clinical();
        self.truth.push(TruthEvent {
            bed: bed_id(b, self.beds.len()),
            kind: p.kind,
            class: p.kind.class(),
            start_ms: t * 1000,
            end_ms: (t + p.duration_s) * 1000,
            severity: clinical.then_some(p.severity),
            device: device
                .filter(|_| !clinical)
                .map(|d| self.devices[d].id.clone()),
            skew_ms: (p.kind == EventKind::ClockSkew).then_some(p.skew_ms),
        });
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

    /// Starts an event at second `t`.
    fn begin(&mut self, b: usize, t: u64, p: Planned, out: &mut Vec<Emission>) {
        let until = t + p.duration_s;
        let extend = |slot: &mut Option<u64>| *slot = Some(slot.map_or(until, |u| u.max(until)));
        // What takes effect is the truth: a call while one is on, a second occlusion, an event
        // for a device the bed does not have change nothing.
        let dev = self.device_of(b, p.device);
        let bed = &self.beds[b];
        let effective = match p.kind {
            k if k.is_clinical() => true,
            EventKind::ProbeOff | EventKind::LeadOff => true,
            EventKind::NurseCall => {
                bed.call_until.is_none() && self.device_of(b, DeviceKind::NurseCall).is_some()
            }
            EventKind::BedExit => {
                bed.out_of_bed_until.is_none() && self.device_of(b, DeviceKind::SmartBed).is_some()
            }
            EventKind::PumpOcclusion => {
                bed.pump.occluded_until.is_none()
                    && bed.pump.empty_until.is_none()
                    && self.device_of(b, DeviceKind::InfusionPump).is_some()
            }
            EventKind::EndOfInfusion => {
                bed.pump.empty_until.is_none()
                    && self.device_of(b, DeviceKind::InfusionPump).is_some()
            }
            EventKind::Disconnect => dev.is_some_and(|d| self.state[d].online),
            _ => dev.is_some(),
        };
        if effective {
            let concerned = match p.kind {
                EventKind::NurseCall => self.device_of(b, DeviceKind::NurseCall),
                EventKind::BedExit => self.device_of(b, DeviceKind::SmartBed),
                EventKind::PumpOcclusion | EventKind::EndOfInfusion => {
                    self.device_of(b, DeviceKind::InfusionPump)
                }
                EventKind::ProbeOff | EventKind::LeadOff => {
                    self.device_of(b, DeviceKind::PatientMonitor)
                }
                _ => dev,
            };
            self.record(b, t, &p, concerned);
        }
        if p.kind.is_clinical() {
            self.beds[b].patient.events.push(ClinicalEvent {
                kind: p.kind,
                start_s: t,
                duration_s: p.duration_s,
                severity: p.severity,
            });
            return;
        }
        let bed = &mut self.beds[b];
        match p.kind {
            EventKind::ProbeOff => extend(&mut bed.probe_off_until),
            EventKind::LeadOff => extend(&mut bed.lead_off_until),
            EventKind::Motion => {
                if let Some(d) = dev {
                    extend(&mut self.state[d].motion_until);
                }
            }
            EventKind::Garbage => {
                if let Some(d) = dev {
                    extend(&mut self.state[d].garbage_until);
                }
            }
            EventKind::ClockSkew => {
                if let Some(d) = dev {
                    self.state[d].skew_ms = p.skew_ms;
                    extend(&mut self.state[d].skew_until);
                }
            }
            EventKind::BatteryDrain => {
                if let Some(d) = dev {
                    self.state[d].charging = false;
                    self.state[d].extra_drain = p.rate;
                    extend(&mut self.state[d].drain_until);
                }
            }
            EventKind::Disconnect => {
                if let Some(d) = dev {
                    if self.state[d].online {
                        self.state[d].online = false;
                        self.emit(b, d, t, Payload::Disconnect, out);
                    }
                    extend(&mut self.state[d].offline_until);
                }
            }
            EventKind::NurseCall if bed.call_until.is_none() => {
                bed.call_until = Some(until);
                self.device_event(
                    b,
                    DeviceKind::NurseCall,
                    t,
                    DeviceEventKind::NurseCall,
                    true,
                    out,
                );
            }
            EventKind::BedExit if bed.out_of_bed_until.is_none() => {
                bed.out_of_bed_until = Some(until);
                self.device_event(
                    b,
                    DeviceKind::SmartBed,
                    t,
                    DeviceEventKind::BedExit,
                    true,
                    out,
                );
            }
            EventKind::PumpOcclusion
                if bed.pump.occluded_until.is_none() && bed.pump.empty_until.is_none() =>
            {
                bed.pump.occluded_until = Some(until);
                self.device_event(
                    b,
                    DeviceKind::InfusionPump,
                    t,
                    DeviceEventKind::PumpOcclusion,
                    true,
                    out,
                );
            }
            EventKind::EndOfInfusion if bed.pump.empty_until.is_none() => {
                bed.pump.volume_ml = 0.0;
                bed.pump.empty_until = Some(until);
                self.device_event(
                    b,
                    DeviceKind::InfusionPump,
                    t,
                    DeviceEventKind::EndOfInfusion,
                    true,
                    out,
                );
            }
            _ => {}
        }
    }
}

fn round0(x: f64) -> f64 {
    x.round()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn reading(metric: Metric, value: f64, status: Status) -> Reading {
    let value = if status.is_clinically_usable() || status == Status::Invalid {
        value.clamp(metric.min, metric.max)
    } else {
        value
    };
    Reading {
        metric,
        value,
        status,
    }
}

fn not_available(metric: Metric) -> Reading {
    Reading {
        metric,
        value: MDC_NOT_AVAILABLE,
        status: Status::NotAvailable,
    }
}

impl Ward {
    /// Ends what runs out at second `t`.
    fn end_timed(&mut self, b: usize, t: u64, out: &mut Vec<Emission>) {
        let due = |slot: &mut Option<u64>| {
            if slot.is_some_and(|u| t >= u) {
                *slot = None;
                true
            } else {
                false
            }
        };
        let bed = &mut self.beds[b];
        due(&mut bed.probe_off_until);
        due(&mut bed.lead_off_until);
        let back_in_bed = due(&mut bed.out_of_bed_until);
        let call_answered = due(&mut bed.call_until);
        let occlusion_cleared = due(&mut bed.pump.occluded_until);
        let new_bag = due(&mut bed.pump.empty_until);
        if new_bag {
            bed.pump.volume_ml = f64::from(bed.rng.gen_range(4u8..20)) * 50.0;
        }
        if back_in_bed {
            self.device_event(
                b,
                DeviceKind::SmartBed,
                t,
                DeviceEventKind::BedExit,
                false,
                out,
            );
        }
        if call_answered {
            self.device_event(
                b,
                DeviceKind::NurseCall,
                t,
                DeviceEventKind::NurseCall,
                false,
                out,
            );
        }
        if occlusion_cleared {
            self.device_event(
                b,
                DeviceKind::InfusionPump,
                t,
                DeviceEventKind::PumpOcclusion,
                false,
                out,
            );
        }
        if new_bag {
            self.device_event(
                b,
                DeviceKind::InfusionPump,
                t,
                DeviceEventKind::EndOfInfusion,
                false,
                out,
            );
        }
        for pos in 0..6 {
            let Some(d) = self.beds[b].devices[pos] else {
                continue;
            };
            let battery_powered = self.devices[d].kind.battery_powered();
            let s = &mut self.state[d];
            due(&mut s.motion_until);
            due(&mut s.garbage_until);
            if due(&mut s.skew_until) {
                s.skew_ms = 0;
            }
            if due(&mut s.drain_until) {
                s.extra_drain = 0.0;
                s.charging = !battery_powered;
            }
            if due(&mut s.offline_until) {
                s.online = true;
                self.emit(b, d, t, Payload::Reconnect, out);
            }
        }
    }

    fn pump_second(&mut self, b: usize, t: u64, out: &mut Vec<Emission>) {
        let bed = &mut self.beds[b];
        let p = &mut bed.pump;
        if p.occluded_until.is_some() || p.empty_until.is_some() {
            return;
        }
        p.volume_ml -= p.rate_ml_h / 3600.0;
        if p.volume_ml <= 0.0 {
            p.volume_ml = 0.0;
            let until = t + bed.rng.gen_range(300..900);
            p.empty_until = Some(until);
            let pump = self.device_of(b, DeviceKind::InfusionPump);
            self.truth.push(TruthEvent {
                bed: bed_id(b, self.beds.len()),
                kind: EventKind::EndOfInfusion,
                class: EventKind::EndOfInfusion.class(),
                start_ms: t * 1000,
                end_ms: until * 1000,
                severity: None,
                device: pump.map(|d| self.devices[d].id.clone()),
                skew_ms: None,
            });
            self.device_event(
                b,
                DeviceKind::InfusionPump,
                t,
                DeviceEventKind::EndOfInfusion,
                true,
                out,
            );
        }
    }

    fn device_second(&mut self, b: usize, d: usize, t: u64, v: &Vitals, out: &mut Vec<Emission>) {
        let kind = self.devices[d].kind;
        let mqtt = self.devices[d].protocol == Protocol::MqttJson;
        {
            let s = &mut self.state[d];
            if s.charging {
                s.battery = (s.battery + 20.0 / 3600.0).min(100.0);
            } else {
                let base = if kind.battery_powered() { 1.5 } else { 5.0 };
                s.battery = (s.battery - (base + s.extra_drain) / 3600.0).max(0.0);
                if kind.battery_powered() && s.battery <= 5.0 && s.drain_until.is_none() {
                    // A nurse swaps the patch's battery.
                    s.battery = 100.0;
                }
            }
            if !s.online {
                return;
            }
        }
        let timing = &self.scenario.timing;
        let status_every = timing.status_interval.as_secs().max(1);
        if mqtt && (t == 0 || (t + self.state[d].status_phase) % status_every == 0) {
            let report = self.status_report(b, d);
            self.emit(b, d, t, Payload::Status(report), out);
        }
        if self.state[d].garbage_until.is_some() && self.beds[b].rng.gen::<f64>() < 0.3 {
            let g = garbage(&mut self.beds[b].rng, mqtt);
            self.emit(b, d, t, Payload::Garbage(g), out);
        }
        let readings = match kind {
            DeviceKind::PatientMonitor => self.monitor_readings(b, d, t, v),
            DeviceKind::Ventilator => self.ventilator_readings(b, v),
            DeviceKind::Wearable => self.wearable_readings(b, d, t, v),
            _ => Vec::new(),
        };
        if !readings.is_empty() {
            self.emit(b, d, t, Payload::Observations(readings), out);
        }
    }

    fn status_report(&self, b: usize, d: usize) -> StatusReport {
        let s = &self.state[d];
        let kind = self.devices[d].kind;
        let bed = &self.beds[b];
        StatusReport {
            online: true,
            battery_pct: round1(s.battery),
            charging: s.charging,
            firmware: kind.firmware(),
            pump: (kind == DeviceKind::InfusionPump).then(|| {
                let infusing = bed.pump.occluded_until.is_none() && bed.pump.empty_until.is_none();
                PumpReport {
                    infusing,
                    rate_ml_h: if infusing { bed.pump.rate_ml_h } else { 0.0 },
                    volume_remaining_ml: round1(bed.pump.volume_ml),
                }
            }),
            occupied: (kind == DeviceKind::SmartBed).then_some(bed.out_of_bed_until.is_none()),
        }
    }

    fn monitor_readings(&mut self, b: usize, d: usize, t: u64, v: &Vitals) -> Vec<Reading> {
        let m = self.metrics;
        let timing = self.scenario.timing.clone();
        let motion = self.state[d].motion_until.is_some();
        let bed = &mut self.beds[b];
        let rng = &mut bed.rng;
        let away = bed.out_of_bed_until.is_some();
        let lead_off = away || bed.lead_off_until.is_some();
        let probe_off = away || bed.probe_off_until.is_some();
        let mut r = Vec::with_capacity(9);
        let hr = Patient::measure(rng, v, Vital::Hr, 1.0);
        r.push(if lead_off {
            not_available(m.hr)
        } else if motion {
            reading(
                m.hr,
                round0(hr + crate::physiology::normal(rng) * 35.0),
                Status::Invalid,
            )
        } else {
            reading(m.hr, round0(hr), Status::Valid)
        });
        let pr = Patient::measure(rng, v, Vital::Hr, 1.0);
        let spo2 = Patient::measure(rng, v, Vital::Spo2, 1.0).min(100.0);
        if probe_off {
            r.push(not_available(m.pr));
            r.push(not_available(m.spo2));
        } else if motion {
            let jolt = crate::physiology::normal(rng) * 40.0;
            r.push(reading(m.pr, round0(pr + jolt), Status::Invalid));
            let dip = rng.gen_range(0.0..30.0);
            r.push(reading(m.spo2, round0(spo2 - dip), Status::Invalid));
        } else {
            r.push(reading(m.pr, round0(pr), Status::Valid));
            r.push(reading(m.spo2, round0(spo2), Status::Valid));
        }
        if away {
            r.push(not_available(m.rr));
            r.push(not_available(m.etco2));
        } else {
            let rr = Patient::measure(rng, v, Vital::Rr, 1.0);
            let et = Patient::measure(rng, v, Vital::Etco2, 1.0);
            r.push(reading(m.rr, round0(rr), Status::Valid));
            r.push(reading(m.etco2, round0(et), Status::Valid));
        }
        let temp_every = timing.temp_interval.as_secs().max(1);
        if (t + bed.phase_ms) % temp_every == 0 {
            r.push(if away {
                not_available(m.temp)
            } else {
                reading(
                    m.temp,
                    round1(Patient::measure(rng, v, Vital::Temp, 1.0)),
                    Status::Valid,
                )
            });
        }
        let nibp_every = timing.nibp_interval.as_secs().max(1);
        if (t + bed.nibp_phase) % nibp_every == 0 && !away && !motion {
            let sys = round0(Patient::measure(rng, v, Vital::Sys, 1.0));
            let dia = round0(Patient::measure(rng, v, Vital::Dia, 1.0)).min(sys - 10.0);
            r.push(reading(m.sys, sys, Status::Valid));
            r.push(reading(m.dia, dia, Status::Valid));
            r.push(reading(
                m.mean,
                round0(dia + (sys - dia) / 3.0),
                Status::Valid,
            ));
        }
        r
    }

    fn ventilator_readings(&mut self, b: usize, v: &Vitals) -> Vec<Reading> {
        let m = self.metrics;
        let bed = &mut self.beds[b];
        if bed.out_of_bed_until.is_some() {
            return vec![not_available(m.rr), not_available(m.etco2)];
        }
        let rng = &mut bed.rng;
        let rr = Patient::measure(rng, v, Vital::Rr, 0.5);
        let et = Patient::measure(rng, v, Vital::Etco2, 0.5);
        vec![
            reading(m.rr, round0(rr), Status::Valid),
            reading(m.etco2, round0(et), Status::Valid),
        ]
    }

    fn wearable_readings(&mut self, b: usize, d: usize, t: u64, v: &Vitals) -> Vec<Reading> {
        let m = self.metrics;
        let every = self.scenario.timing.wearable_interval.as_secs().max(1);
        let motion = self.state[d].motion_until.is_some();
        let bed = &mut self.beds[b];
        if (t + bed.wearable_phase) % every != 0 {
            return Vec::new();
        }
        let rng = &mut bed.rng;
        let hr = Patient::measure(rng, v, Vital::Hr, 1.5);
        let spo2 = Patient::measure(rng, v, Vital::Spo2, 1.5).min(100.0);
        let rr = Patient::measure(rng, v, Vital::Rr, 1.5);
        let temp = Patient::measure(rng, v, Vital::Temp, 1.0);
        let mut r = Vec::with_capacity(4);
        if motion {
            let jolt = crate::physiology::normal(rng) * 40.0;
            r.push(reading(m.hr, round0(hr + jolt), Status::Invalid));
            let dip = rng.gen_range(0.0..30.0);
            r.push(reading(m.spo2, round0(spo2 - dip), Status::Invalid));
        } else {
            r.push(reading(m.hr, round0(hr), Status::Valid));
            r.push(reading(m.spo2, round0(spo2), Status::Valid));
        }
        r.push(reading(m.rr, round0(rr), Status::Valid));
        r.push(reading(m.temp, round1(temp), Status::Valid));
        r
    }
}

/// A malformed message of one of the kinds real devices produce.
fn garbage(rng: &mut ChaCha8Rng, json: bool) -> Vec<u8> {
    match (json, rng.gen_range(0..5u8)) {
        (_, 0) => (0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>()).collect(),
        (true, 1) => br#"{"observations": [{"metric": "MDC_PULS_OXIM_SAT_O2", "value": 9"#.to_vec(),
        (true, 2) => {
            br#"{"observations": [{"metric": "MDC_ECG_HEART_RATE", "value": "72"}]}"#.to_vec()
        }
        (true, 3) => {
            br#"{"observations": [{"metric": "MDC_PULS_OXIM_SAT_O2", "value": 140}]}"#.to_vec()
        }
        (true, _) => br#"{"observations": [{"metric": "MDC_NOT_A_METRIC", "value": 1}]}"#.to_vec(),
        (false, 1) => b"MSH|^~\\&|GARBLED".to_vec(),
        (false, 2) => b"MSH|^~\\&|X||||20261120100000||ADT^A01|1|P|2.6\rPID|1".to_vec(),
        (false, _) => b"not hl7 at all".to_vec(),
    }
}
