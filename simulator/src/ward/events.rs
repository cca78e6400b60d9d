//! Events at a bed, and their ground truth: [`Ward`]'s `begin` starts a scripted or random
//! event (a clinical change, an artefact, a device fault or a device event) and records it
//! as a [`TruthEvent`] when it takes effect; `end_timed` ends what runs out; `pump_second`
//! runs the infusion down until the bag is empty, which is an event too.

use rand::Rng;
use serde::Serialize;

use super::{bed_id, DeviceEventKind, Emission, Payload, Planned, SimMillis, Ward};
use crate::device::DeviceKind;
use crate::physiology::ClinicalEvent;
use crate::scenario::EventKind;

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

impl Ward {
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

    /// Starts an event at second `t`.
    pub(super) fn begin(&mut self, b: usize, t: u64, p: Planned, out: &mut Vec<Emission>) {
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

    /// Ends what runs out at second `t`.
    pub(super) fn end_timed(&mut self, b: usize, t: u64, out: &mut Vec<Emission>) {
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

    pub(super) fn pump_second(&mut self, b: usize, t: u64, out: &mut Vec<Emission>) {
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
}
