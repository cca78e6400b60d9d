//! Who is on the ward: the ids of beds and devices ([`bed_id`], [`device_id`]), each
//! [`DeviceInfo`], and [`Ward::new`], which gives every bed its random stream, patient,
//! devices (with their initial battery and status phase), pump and scripted events.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{kind_pos, Bed, DeviceState, Metrics, Planned, PumpState, Ward};
use crate::device::{DeviceKind, Protocol};
use crate::physiology::Patient;
use crate::scenario::{parse_signed_duration, Scenario};

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
}
