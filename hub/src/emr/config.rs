//! `[emr]`: what is charted to the patient record, and where it goes (HL7 v2 IHE PCD-01 over
//! MLLP, FHIR R4). Both exports are off unless their section is present.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use wardhub_adapters::duration::humane;
use wardhub_adapters::model::{metric_by_name, Metric};

/// How a metric is charted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Not charted.
    None,
    /// Every stored value (spot measurements: a blood pressure cuff).
    Every,
    /// The median of each period's valid values.
    Median,
    /// The last valid value of each period.
    Last,
}

/// `[emr]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmrConfig {
    /// The charting period of `median` and `last` (IHE PCD calls it the charting interval;
    /// nurses chart vital signs every 15 minutes to 4 hours).
    #[serde(with = "humane")]
    pub period: Duration,
    /// How long after a period has ended its value is charted: late device data gets this
    /// long (a later value for a charted period is counted, never charted).
    #[serde(with = "humane")]
    pub delay: Duration,
    /// The mode of a metric not in `metrics`.
    pub default: Mode,
    /// Per metric (by name, `hr`, or MDC reference id).
    pub metrics: BTreeMap<String, Mode>,
    /// Chart values that are not clinically usable (invalid, not available) as a
    /// data-absent reason instead of leaving them out.
    pub include_unusable: bool,
    pub hl7: Option<Hl7Export>,
    pub fhir: Option<FhirExport>,
}

impl Default for EmrConfig {
    fn default() -> Self {
        EmrConfig {
            period: Duration::from_secs(15 * 60),
            delay: Duration::from_secs(60),
            default: Mode::Median,
            metrics: [
                ("nibp_sys", Mode::Every),
                ("nibp_dia", Mode::Every),
                ("nibp_mean", Mode::Every),
                ("temp", Mode::Last),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            include_unusable: false,
            hl7: None,
            fhir: None,
        }
    }
}

impl EmrConfig {
    pub fn enabled(&self) -> bool {
        self.hl7.is_some() || self.fhir.is_some()
    }

    /// How `metric` is charted.
    pub fn mode(&self, metric: Metric) -> Mode {
        self.metrics
            .iter()
            .find(|(k, _)| metric_by_name(k).is_some_and(|m| m.code == metric.code))
            .map(|(_, m)| *m)
            .unwrap_or(self.default)
    }

    pub fn validate(&self) -> Result<(), String> {
        for k in self.metrics.keys() {
            if metric_by_name(k).is_none() {
                return Err(format!("emr.metrics: {k:?} is not a metric the hub knows"));
            }
        }
        if self.period < Duration::from_secs(60) {
            return Err("emr.period: at least one minute".into());
        }
        if let Some(h) = &self.hl7 {
            if h.connect.trim().is_empty() {
                return Err("emr.hl7.connect: the interface engine's host:port".into());
            }
        }
        if let Some(f) = &self.fhir {
            if !(f.base_url.starts_with("http://") || f.base_url.starts_with("https://")) {
                return Err(format!(
                    "emr.fhir.base_url {:?}: an http:// or https:// URL",
                    f.base_url
                ));
            }
            for (key, p) in [("token_file", &f.token_file), ("ca", &f.ca)] {
                if let Some(p) = p {
                    std::fs::metadata(p)
                        .map_err(|e| format!("emr.fhir.{key}: {}: {e}", p.display()))?;
                }
            }
        }
        Ok(())
    }
}

pub use crate::outbound::backoff::Retry;

/// `[emr.hl7]`: ORU^R01 (IHE PCD-01) over MLLP to the hospital's interface engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hl7Export {
    /// `host:port` of the interface engine's MLLP listener.
    pub connect: String,
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// PID-3.4 when the ADT feed gave none.
    pub patient_authority: Option<String>,
    /// No ACK within this: the connection is closed and the message sent again.
    #[serde(with = "humane")]
    pub ack_timeout: Duration,
    /// AE answers to one message before it is set aside (counted, kept in the refused list);
    /// an AR sets it aside at once.
    pub error_attempts: u32,
    pub retry: Retry,
    /// The outbox holds at most this many bytes (oldest dropped, counted).
    pub outbox_max_bytes: u64,
}

impl Default for Hl7Export {
    fn default() -> Self {
        Hl7Export {
            connect: String::new(),
            sending_application: "WARDHUB".into(),
            sending_facility: String::new(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            patient_authority: None,
            ack_timeout: Duration::from_secs(30),
            error_attempts: 3,
            retry: Retry::default(),
            outbox_max_bytes: 256 << 20,
        }
    }
}

/// `[emr.fhir]`: transaction Bundles to a FHIR R4 server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FhirExport {
    /// The server's base URL (`https://fhir.hospital.example/r4`); Bundles are POSTed to it.
    pub base_url: String,
    /// A file holding a bearer token (first line), sent as `Authorization: Bearer`.
    pub token_file: Option<PathBuf>,
    /// PEM CA certificates for an https:// server signed by the hospital's own CA (the
    /// system's roots are trusted too).
    pub ca: Option<PathBuf>,
    #[serde(with = "humane")]
    pub timeout: Duration,
    /// The identifier system of the ADT feed's patient ids (PID-3), e.g. the hospital's
    /// `urn:oid:…` for its medical record numbers.
    pub patient_system: String,
    pub device_system: String,
    pub observation_system: String,
    pub retry: Retry,
    pub outbox_max_bytes: u64,
}

impl Default for FhirExport {
    fn default() -> Self {
        FhirExport {
            base_url: String::new(),
            token_file: None,
            ca: None,
            timeout: Duration::from_secs(30),
            patient_system: "urn:wardhub:patient".into(),
            device_system: "urn:wardhub:device".into(),
            observation_system: "urn:wardhub:observation".into(),
            retry: Retry::default(),
            outbox_max_bytes: 256 << 20,
        }
    }
}
