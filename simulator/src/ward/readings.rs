//! What each device measures and reports in one second: the monitor's, ventilator's and
//! wearable's readings from the patient's vitals (with the artefacts and absences the bed's
//! events cause), status reports with battery and pump state, and the garbage a faulty device
//! sends.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use wardhub_adapters::model::{Metric, Status, MDC_NOT_AVAILABLE};

use super::{Emission, Payload, PumpReport, Reading, StatusReport, Ward};
use crate::device::{DeviceKind, Protocol};
use crate::physiology::{Patient, Vital, Vitals};

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
    pub(super) fn device_second(
        &mut self,
        b: usize,
        d: usize,
        t: u64,
        v: &Vitals,
        out: &mut Vec<Emission>,
    ) {
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
