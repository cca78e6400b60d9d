//! Scenarios: TOML files describing a ward, its protocol mix, and what happens to it.
//!
//! ```toml
//! name = "deteriorating-patient"
//! description = "Bed 3 deteriorates slowly; bed 7 desaturates twice."
//! beds = 30                  # default 30
//! duration = "6h"            # optional: the run stops after this much simulated time
//! start_hour = 22.0          # clock of day at t = 0 (circadian rhythm), default 8.0
//!
//! [protocols]                # per device kind: "mqtt_json", "hl7_mllp", or the HL7 share 0..1
//! patient_monitor = "mqtt_json"
//! ventilator = 0.5
//!
//! [random]                   # random events per bed per hour
//! desaturation = 0.02
//! probe_off = 0.5
//!
//! [[events]]                 # scripted events, in simulated time from the start
//! at = "2m"
//! bed = 3                    # or "bed-03"
//! kind = "desaturation"
//! duration = "4m"
//! severity = 1.0             # optional, default 1
//! ```
//!
//! Every [`EventKind`] can be scripted or random. Durations are humane (`"90s"`, `"2h"`);
//! a clock skew is a signed duration (`skew = "-10m"`).
//!
//! This file is the format, loading and checking; `event_kind` is the catalogue of events
//! ([`EventKind`], re-exported here).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::device::{DeviceKind, Protocol};

mod event_kind;

pub use event_kind::EventKind;

/// The scenarios shipped in `simulator/scenarios/`, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("quiet-night", include_str!("../scenarios/quiet-night.toml")),
    (
        "deteriorating-patient",
        include_str!("../scenarios/deteriorating-patient.toml"),
    ),
    (
        "device-chaos",
        include_str!("../scenarios/device-chaos.toml"),
    ),
    ("demo", include_str!("../scenarios/demo.toml")),
];

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("scenario {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("no scenario file or built-in scenario named {0:?} (built-ins: quiet-night, deteriorating-patient, device-chaos, demo)")]
    Unknown(String),
}

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_beds")]
    pub beds: usize,
    #[serde(default, with = "opt_humane", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    #[serde(default = "default_start_hour")]
    pub start_hour: f64,
    #[serde(default = "default_ward")]
    pub ward: String,
    /// Device kinds present at every bed (default: all six).
    #[serde(default = "all_kinds")]
    pub devices: Vec<DeviceKind>,
    #[serde(default)]
    pub protocols: BTreeMap<DeviceKind, ProtocolMix>,
    #[serde(default)]
    pub timing: Timing,
    /// Random events per bed per hour.
    #[serde(default)]
    pub random: BTreeMap<EventKind, f64>,
    #[serde(default)]
    pub events: Vec<ScriptedEvent>,
}

fn default_beds() -> usize {
    30
}
fn default_start_hour() -> f64 {
    8.0
}
fn default_ward() -> String {
    "ward-1".into()
}
fn all_kinds() -> Vec<DeviceKind> {
    DeviceKind::ALL.to_vec()
}

/// The protocol of one device kind: all on one, or a share on HL7.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProtocolMix {
    All(Protocol),
    /// The share (0..1) of these devices that speak HL7/MLLP; the rest speak MQTT JSON.
    Hl7Share(f64),
}

/// How often devices report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Non-invasive blood pressure cycle of the monitors.
    #[serde(with = "humane")]
    pub nibp_interval: Duration,
    /// Monitor temperature reading interval.
    #[serde(with = "humane")]
    pub temp_interval: Duration,
    /// Wearable numerics interval.
    #[serde(with = "humane")]
    pub wearable_interval: Duration,
    /// Device status (battery, online, firmware) interval. It is also the heartbeat of devices
    /// that send no numerics (pump, smart bed, nurse call): the hub calls a device offline after
    /// 30 s of silence, so this stays well under that.
    #[serde(with = "humane")]
    pub status_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            nibp_interval: Duration::from_secs(300),
            temp_interval: Duration::from_secs(10),
            wearable_interval: Duration::from_secs(5),
            status_interval: Duration::from_secs(10),
        }
    }
}

/// A bed named by number (`3`) or id (`"bed-03"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BedRef {
    Number(usize),
    Id(String),
}

/// A scripted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedEvent {
    #[serde(with = "humane")]
    pub at: Duration,
    pub bed: BedRef,
    pub kind: EventKind,
    /// Default: the middle of the kind's random duration range.
    #[serde(default, with = "opt_humane", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// How far towards the event's target the vitals go (1 = all the way). Clinical only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<f64>,
    /// The device it concerns (artefacts and faults), default [`EventKind::default_device`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceKind>,
    /// Clock skew, signed (`"-10m"`), for `clock_skew`; default 10 minutes ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<String>,
    /// Battery drain in % per hour, for `battery_drain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

impl Scenario {
    /// Parses scenario TOML; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        s.validate().map_err(|message| ScenarioError::Invalid {
            origin: origin.into(),
            message,
        })?;
        Ok(s)
    }

    /// A built-in scenario by name, or a scenario file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::from_toml(text, &format!("built-in {name}"));
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
                path: name_or_path.into(),
                source,
            })?;
            return Scenario::from_toml(&text, name_or_path);
        }
        Err(ScenarioError::Unknown(name_or_path.into()))
    }

    /// A built-in scenario (panics on an unknown name: the names are constants).
    pub fn builtin(name: &str) -> Scenario {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no built-in scenario {name}"));
        // The built-ins are parsed by a unit test, so this cannot fail in a built binary.
        Scenario::from_toml(text, name).expect("built-in scenario parses")
    }

    /// The scenario cut down (or grown) to `beds` beds; scripted events of beds beyond them
    /// are dropped.
    pub fn with_beds(mut self, beds: usize) -> Scenario {
        self.beds = beds;
        let keep: Vec<_> = self
            .events
            .iter()
            .filter(|e| self.bed_index(&e.bed).is_some())
            .cloned()
            .collect();
        self.events = keep;
        self
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.beds == 0 || self.beds > 100_000 {
            return Err("beds must be between 1 and 100000".into());
        }
        if !(0.0..24.0).contains(&self.start_hour) {
            return Err("start_hour must be within 0..24".into());
        }
        if !wardhub_adapters::model::is_valid_id(&self.ward) {
            return Err(format!("ward {:?} is not a valid id", self.ward));
        }
        if self.devices.is_empty() {
            return Err("devices must name at least one device kind".into());
        }
        for (kind, mix) in &self.protocols {
            let hl7 = match mix {
                ProtocolMix::All(p) => *p == Protocol::Hl7Mllp,
                ProtocolMix::Hl7Share(f) => {
                    if !(0.0..=1.0).contains(f) {
                        return Err(format!("protocols.{kind}: the HL7 share must be 0..1"));
                    }
                    *f > 0.0
                }
            };
            if hl7 && !kind.has_observations() {
                return Err(format!(
                    "protocols.{kind}: only devices with observations (patient_monitor, ventilator, wearable) can speak HL7"
                ));
            }
        }
        let t = &self.timing;
        for (name, d) in [
            ("nibp_interval", t.nibp_interval),
            ("temp_interval", t.temp_interval),
            ("wearable_interval", t.wearable_interval),
            ("status_interval", t.status_interval),
        ] {
            if d < Duration::from_secs(1) {
                return Err(format!("timing.{name} must be at least 1s"));
            }
        }
        for (kind, rate) in &self.random {
            if !rate.is_finite() || *rate < 0.0 || *rate > 3600.0 {
                return Err(format!(
                    "random.{kind:?}: the rate (per bed per hour) must be within 0..3600"
                ));
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            let at = format!("events[{i}] ({:?})", e.kind);
            if self.bed_index(&e.bed).is_none() {
                return Err(format!(
                    "{at}: bed {:?} is not one of the {} beds",
                    e.bed, self.beds
                ));
            }
            if let Some(s) = e.severity {
                if !(0.0..=1.5).contains(&s) {
                    return Err(format!("{at}: severity must be within 0..1.5"));
                }
            }
            if let Some(skew) = &e.skew {
                parse_signed_duration(skew).map_err(|m| format!("{at}: skew: {m}"))?;
            }
            if let Some(r) = e.rate {
                if !(0.0..=1000.0).contains(&r) {
                    return Err(format!("{at}: rate must be within 0..1000 %/h"));
                }
            }
            if let Some(d) = e.device {
                if !self.devices.contains(&d) {
                    return Err(format!("{at}: the ward has no {d} devices"));
                }
            }
        }
        Ok(())
    }

    /// The 0-based index of a bed reference.
    pub fn bed_index(&self, bed: &BedRef) -> Option<usize> {
        let n = match bed {
            BedRef::Number(n) => *n,
            BedRef::Id(id) => id.strip_prefix("bed-")?.parse().ok()?,
        };
        (1..=self.beds).contains(&n).then(|| n - 1)
    }

    /// The protocol of the `index`-th device of `kind` (its bed index).
    pub fn protocol_of(&self, kind: DeviceKind, index: usize) -> Protocol {
        match self.protocols.get(&kind) {
            None => Protocol::MqttJson,
            Some(ProtocolMix::All(p)) => *p,
            Some(ProtocolMix::Hl7Share(share)) => {
                // Spread evenly and deterministically: device i is on HL7 when the running
                // share crosses an integer.
                let before = (index as f64 * share).floor();
                let after = ((index + 1) as f64 * share).floor();
                if after > before {
                    Protocol::Hl7Mllp
                } else {
                    Protocol::MqttJson
                }
            }
        }
    }
}

/// Parses `"10m"`, `"+10m"`, `"-90s"` into signed milliseconds.
pub fn parse_signed_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = humantime::parse_duration(rest.trim()).map_err(|e| format!("{s:?}: {e}"))?;
    let ms = i64::try_from(d.as_millis()).map_err(|_| format!("{s:?} is too long"))?;
    Ok(sign * ms)
}

use wardhub_adapters::duration::{humane, opt_humane};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for (name, _) in BUILTIN {
            let s = Scenario::builtin(name);
            assert_eq!(&s.name, name);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Scenario::from_toml(
            "name = \"x\"\nbeds = 2\n[[events]]\nat = \"1m\"\nbed = 3\nkind = \"fever\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bed"), "{e}");
        let e = Scenario::from_toml("name = \"x\"\nbogus = 1\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Scenario::from_toml(
            "name = \"x\"\n[protocols]\ninfusion_pump = \"hl7_mllp\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("HL7"), "{e}");
    }

    #[test]
    fn bed_refs_and_shares() {
        let mut s = Scenario::from_toml("name = \"x\"\nbeds = 10\n", "t").unwrap();
        assert_eq!(s.bed_index(&BedRef::Number(1)), Some(0));
        assert_eq!(s.bed_index(&BedRef::Id("bed-07".into())), Some(6));
        assert_eq!(s.bed_index(&BedRef::Number(11)), None);
        s.protocols
            .insert(DeviceKind::Ventilator, ProtocolMix::Hl7Share(0.3));
        let hl7 = (0..10)
            .filter(|i| s.protocol_of(DeviceKind::Ventilator, *i) == Protocol::Hl7Mllp)
            .count();
        assert_eq!(hl7, 3);
        assert_eq!(parse_signed_duration("-10m"), Ok(-600_000));
        assert_eq!(parse_signed_duration("+2s"), Ok(2000));
    }
}
