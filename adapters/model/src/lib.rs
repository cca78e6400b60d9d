//! # wardhub-model
//!
//! The canonical observation model every adapter produces and the store, the alarm engine and
//! the HTTP API consume (ARCHITECTURE.md). A crate of its own so that those can share it
//! without depending on the protocol adapters.
//!
//! An [`Observation`] is one numeric value of one metric from one device at one time. Metrics are
//! IEEE 11073 MDC codes; only metrics in [`METRICS`] are accepted, so every stored value has a
//! known unit and a known physically possible range. [`duration`] is the one humane duration
//! format of every configuration file.
//!
//! ```
//! let spo2 = wardhub_model::metric_by_name("MDC_PULS_OXIM_SAT_O2").unwrap();
//! assert_eq!((spo2.code, spo2.unit), (150456, "%"));
//! ```

use std::fmt;

pub mod device_status;
pub mod duration;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// The IEEE 11073 "not available" numeric value (0x7FFFFF), seen in real device data.
pub const MDC_NOT_AVAILABLE: f64 = 8_388_607.0;

/// A device identifier: 1–64 characters of `[A-Za-z0-9._-]`.
///
/// The restricted alphabet keeps ids safe in MQTT topics, sled keys (where `0x00` separates
/// key parts), URLs and log lines.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    pub const MAX_LEN: usize = 64;

    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        if is_valid_id(&id) {
            Ok(Self(id))
        } else {
            Err(InvalidId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` is a valid device or bed id (1–64 of `[A-Za-z0-9._-]`).
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DeviceId::MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The error of [`DeviceId::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an id must be 1-64 characters of [A-Za-z0-9._-]")]
pub struct InvalidId;

impl TryFrom<String> for DeviceId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        DeviceId::new(s)
    }
}

impl From<DeviceId> for String {
    fn from(d: DeviceId) -> String {
        d.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// IEEE 11073 measurement status, reduced to what alarms and displays need.
///
/// Invalid and not-available data never raises a physiological alarm; it may raise a technical
/// one (sensor off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Valid,
    Questionable,
    Invalid,
    NotAvailable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Questionable => "questionable",
            Status::Invalid => "invalid",
            Status::NotAvailable => "not-available",
        }
    }

    /// Liberal parse: `not-available`, `not_available`, `na` and any case are accepted.
    pub fn parse(s: &str) -> Option<Status> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "valid" | "ok" => Some(Status::Valid),
            "questionable" => Some(Status::Questionable),
            "invalid" => Some(Status::Invalid),
            "not-available" | "na" | "unavailable" => Some(Status::NotAvailable),
            _ => None,
        }
    }

    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Valid,
            1 => Status::Questionable,
            2 => Status::Invalid,
            3 => Status::NotAvailable,
            _ => return None,
        })
    }

    /// Whether the value may drive physiological alarms and be shown as a current reading.
    pub fn is_clinically_usable(self) -> bool {
        matches!(self, Status::Valid | Status::Questionable)
    }
}

/// One metric wardhub knows: its MDC code and reference id, a short name for displays and
/// APIs, the canonical UCUM unit values are stored in, and the physically possible range
/// (values outside it are rejected as device or transport faults, not stored).
#[derive(Debug, PartialEq)]
pub struct MetricInfo {
    pub code: u32,
    pub refid: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
}

/// A known metric. Copy, compares by identity of its table row.
pub type Metric = &'static MetricInfo;

/// The metric table. Codes from IEEE 11073-10101 (the MDC nomenclature).
pub static METRICS: &[MetricInfo] = &[
    MetricInfo {
        code: 147842,
        refid: "MDC_ECG_HEART_RATE",
        name: "hr",
        unit: "/min",
        min: 0.0,
        max: 350.0,
    },
    MetricInfo {
        code: 149530,
        refid: "MDC_PULS_OXIM_PULS_RATE",
        name: "pr",
        unit: "/min",
        min: 0.0,
        max: 350.0,
    },
    MetricInfo {
        code: 150456,
        refid: "MDC_PULS_OXIM_SAT_O2",
        name: "spo2",
        unit: "%",
        min: 0.0,
        max: 100.0,
    },
    MetricInfo {
        code: 150021,
        refid: "MDC_PRESS_BLD_NONINV_SYS",
        name: "nibp_sys",
        unit: "mm[Hg]",
        min: 0.0,
        max: 400.0,
    },
    MetricInfo {
        code: 150022,
        refid: "MDC_PRESS_BLD_NONINV_DIA",
        name: "nibp_dia",
        unit: "mm[Hg]",
        min: 0.0,
        max: 400.0,
    },
    MetricInfo {
        code: 150023,
        refid: "MDC_PRESS_BLD_NONINV_MEAN",
        name: "nibp_mean",
        unit: "mm[Hg]",
        min: 0.0,
        max: 400.0,
    },
    MetricInfo {
        code: 151562,
        refid: "MDC_RESP_RATE",
        name: "rr",
        unit: "/min",
        min: 0.0,
        max: 200.0,
    },
    MetricInfo {
        code: 150364,
        refid: "MDC_TEMP_BODY",
        name: "temp",
        unit: "Cel",
        min: 15.0,
        max: 50.0,
    },
    MetricInfo {
        code: 151708,
        refid: "MDC_AWAY_CO2_ET",
        name: "etco2",
        unit: "mm[Hg]",
        min: 0.0,
        max: 150.0,
    },
];

/// Codes some monitors send instead of a canonical one (NIBP as cuff pressure); they are
/// stored under the canonical metric.
static METRIC_ALIASES: &[(u32, &str, u32)] = &[
    (150301, "MDC_PRESS_CUFF_SYS", 150021),
    (150302, "MDC_PRESS_CUFF_DIA", 150022),
    (150303, "MDC_PRESS_CUFF_MEAN", 150023),
];

/// The metric with this MDC code (aliases resolve to their canonical metric).
pub fn metric_by_code(code: u32) -> Option<Metric> {
    let code = METRIC_ALIASES
        .iter()
        .find(|(alias, _, _)| *alias == code)
        .map_or(code, |(_, _, canonical)| *canonical);
    METRICS.iter().find(|m| m.code == code)
}

/// The metric with this reference id (`MDC_…`, any case), alias, or short name (`spo2`).
pub fn metric_by_name(name: &str) -> Option<Metric> {
    if let Some(m) = METRICS
        .iter()
        .find(|m| m.refid.eq_ignore_ascii_case(name) || m.name.eq_ignore_ascii_case(name))
    {
        return Some(m);
    }
    METRIC_ALIASES
        .iter()
        .find(|(_, refid, _)| refid.eq_ignore_ascii_case(name))
        .and_then(|(_, _, canonical)| metric_by_code(*canonical))
}

/// 1 kPa in mm[Hg] (101.325 kPa = 760 mm[Hg]).
pub const MMHG_PER_KPA: f64 = 760.0 / 101.325;
/// 1 cm[H2O] in mm[Hg] (98.0665 Pa; 1 mm[Hg] = 133.322387415 Pa).
pub const MMHG_PER_CMH2O: f64 = 98.0665 / 133.322_387_415;

/// Converts a value given in `unit` into the metric's canonical unit.
///
/// Accepts the canonical UCUM unit, common spellings (`bpm`, `mmHg`, `°C`), and `[degF]` for
/// temperatures. An empty unit means the canonical one.
pub fn to_canonical_unit(metric: Metric, unit: &str, value: f64) -> Result<f64, UnitError> {
    let u = unit.trim();
    if u.is_empty() || u == metric.unit {
        return Ok(value);
    }
    let lower = u.to_ascii_lowercase();
    let ok = match metric.unit {
        "/min" => matches!(
            lower.as_str(),
            "bpm"
                | "1/min"
                | "{beats}/min"
                | "{beat}/min"
                | "{breaths}/min"
                | "{breath}/min"
                | "/min"
                | "rpm"
                | "brpm"
                | "min-1"
        ),
        "%" => matches!(lower.as_str(), "%" | "percent" | "pct"),
        "mm[Hg]" => {
            // kPa is common for etCO2 and pressures in Europe; cmH2O on ventilators.
            if matches!(lower.as_str(), "kpa" | "kilopascal") {
                return Ok(value * MMHG_PER_KPA);
            }
            if matches!(lower.as_str(), "cm[h2o]" | "cmh2o" | "cm h2o" | "cmh20") {
                return Ok(value * MMHG_PER_CMH2O);
            }
            matches!(lower.as_str(), "mmhg" | "mm[hg]" | "mm hg" | "torr")
        }
        "Cel" => {
            if matches!(lower.as_str(), "[degf]" | "degf" | "°f" | "f") {
                return Ok((value - 32.0) * 5.0 / 9.0);
            }
            matches!(lower.as_str(), "cel" | "°c" | "degc" | "c" | "celsius")
        }
        _ => false,
    };
    if ok {
        Ok(value)
    } else {
        Err(UnitError {
            expected: metric.unit,
        })
    }
}

/// A unit that cannot be converted into the metric's canonical unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unit is not compatible with {expected}")]
pub struct UnitError {
    pub expected: &'static str,
}

/// One observation in canonical form.
///
/// `bed` is filled in by the hub from the registry binding at the time the observation was
/// received; adapters leave it `None` (a device's claim about its bed is never trusted).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub device_id: DeviceId,
    pub bed: Option<String>,
    pub metric: Metric,
    /// In the metric's canonical unit; always finite.
    pub value: f64,
    /// Device time.
    pub observed_at: Millis,
    /// Hub time.
    pub received_at: Millis,
    pub status: Status,
    /// Where on the device it was measured, when the device says: the HL7 `OBX-4` path
    /// (`1.3.2.150456`), or an MQTT observation's `channel`. Two channels of one metric at
    /// one time are two observations, never one overwriting the other.
    pub channel: Option<String>,
    /// How far (ms) the hub moved `observed_at` back because the device's clock ran ahead of
    /// hub time (`observed_at + clock_correction_ms` is what the device said); 0 when the
    /// device's time was kept. A device cannot observe the future, so such data is kept at
    /// hub time rather than refused (a refusal would hide its alarms) and flagged here, in
    /// `wardhub_ingest_clock_corrected_total` and by the device's clock-skew alarm.
    pub clock_correction_ms: i64,
}

/// Whether `s` can be a channel: 1-32 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_channel(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Observation {
    pub fn unit(&self) -> &'static str {
        self.metric.unit
    }
}

/// Why an input, or one observation of it, was not accepted. The label set is closed so that
/// it can be a Prometheus label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not parseable at all (bad JSON, bad HL7 framing or segments).
    Malformed,
    /// Parseable but not of the contract's shape (wrong types, missing fields).
    Schema,
    /// NaN or ±infinity.
    NonFinite,
    /// Outside the metric's physically possible range.
    OutOfRange,
    /// Observation time older than raw retention: it would be deleted at once.
    TooOld,
    /// Payload or frame larger than the configured limit.
    TooLarge,
    /// A topic that is not one of the contract's shapes.
    UnknownTopic,
    /// A metric that is not in the metric table.
    UnknownMetric,
    /// A unit that does not convert into the metric's unit.
    UnitMismatch,
    /// Device id not of the allowed alphabet or length.
    BadDeviceId,
    /// Device not registered, or retired.
    UnknownDevice,
    /// More observations in one document than allowed.
    TooMany,
    /// Unsupported message type or version.
    Unsupported,
    /// The hub could not store it (storage error, shutting down).
    Internal,
}

impl RejectReason {
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::Malformed,
        RejectReason::Schema,
        RejectReason::NonFinite,
        RejectReason::OutOfRange,
        RejectReason::TooOld,
        RejectReason::TooLarge,
        RejectReason::UnknownTopic,
        RejectReason::UnknownMetric,
        RejectReason::UnitMismatch,
        RejectReason::BadDeviceId,
        RejectReason::UnknownDevice,
        RejectReason::TooMany,
        RejectReason::Unsupported,
        RejectReason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Schema => "schema",
            RejectReason::NonFinite => "non_finite",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::TooOld => "too_old",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnknownTopic => "unknown_topic",
            RejectReason::UnknownMetric => "unknown_metric",
            RejectReason::UnitMismatch => "unit_mismatch",
            RejectReason::BadDeviceId => "bad_device_id",
            RejectReason::UnknownDevice => "unknown_device",
            RejectReason::TooMany => "too_many",
            RejectReason::Unsupported => "unsupported",
            RejectReason::Internal => "internal",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected input or observation: a reason (bounded, for metrics) and a detail for the log
/// and the sender. The detail names fields and limits, never patient data.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reason: RejectReason,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// Checks shared by every adapter: finite, in range (for usable statuses), not older than
/// `max_age_ms`. A time in the future is not refused here: a device whose clock runs ahead
/// still measured its patient now, so the hub keeps its data and moves its times back to hub
/// time (the pipeline, per message and device, see `clock_correction_ms`).
pub fn check_value_and_time(
    metric: Metric,
    value: f64,
    status: Status,
    observed_at: Millis,
    now: Millis,
    limits: &TimeLimits,
) -> Result<(), Reject> {
    if !value.is_finite() {
        return Err(Reject::new(
            RejectReason::NonFinite,
            format!("{} value is not a finite number", metric.name),
        ));
    }
    if status.is_clinically_usable() && !(metric.min..=metric.max).contains(&value) {
        return Err(Reject::new(
            RejectReason::OutOfRange,
            format!(
                "{} value outside the possible range {}..{} {}",
                metric.name, metric.min, metric.max, metric.unit
            ),
        ));
    }
    if observed_at < now.saturating_sub(limits.max_age_ms) {
        return Err(Reject::new(
            RejectReason::TooOld,
            format!(
                "time is older than raw retention ({} h)",
                limits.max_age_ms / 3_600_000
            ),
        ));
    }
    Ok(())
}

/// Time bounds of observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimits {
    /// A device time further ahead of hub time than this is a clock running ahead: the hub
    /// corrects it (never refuses the data).
    pub max_future_ms: i64,
    pub max_age_ms: i64,
}

impl Default for TimeLimits {
    fn default() -> Self {
        Self {
            max_future_ms: 30 * 1000,
            max_age_ms: 72 * 3600 * 1000,
        }
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn format_rfc3339(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => t
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .unwrap_or_else(|_| ms.to_string()),
        Err(_) => ms.to_string(),
    }
}

/// Parses RFC 3339 (any offset) into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parses a time given as RFC 3339 or as epoch milliseconds.
pub fn parse_time(s: &str) -> Option<Millis> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_rfc3339(s)
}

/// A source of hub time, injectable for tests.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> Millis;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(DeviceId::new("mon-01.a_b").is_ok());
        assert!(DeviceId::new("").is_err());
        assert!(DeviceId::new("a/b").is_err());
        assert!(DeviceId::new("a".repeat(65)).is_err());
        assert!(DeviceId::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn metrics_resolve_by_code_refid_name_and_alias() {
        assert_eq!(metric_by_code(150456).unwrap().name, "spo2");
        assert_eq!(metric_by_name("mdc_puls_oxim_sat_o2").unwrap().code, 150456);
        assert_eq!(metric_by_name("SpO2").unwrap().code, 150456);
        assert_eq!(metric_by_code(150301).unwrap().code, 150021);
        assert_eq!(metric_by_name("MDC_PRESS_CUFF_DIA").unwrap().code, 150022);
        assert!(metric_by_code(1).is_none());
    }

    #[test]
    fn units_convert() {
        let t = metric_by_name("temp").unwrap();
        assert!((to_canonical_unit(t, "[degF]", 98.6).unwrap() - 37.0).abs() < 1e-9);
        let hr = metric_by_name("hr").unwrap();
        assert_eq!(to_canonical_unit(hr, "bpm", 70.0), Ok(70.0));
        assert!(to_canonical_unit(hr, "mm[Hg]", 70.0).is_err());
    }

    #[test]
    fn times() {
        let ms = parse_rfc3339("2026-11-20T10:00:00.000Z").unwrap();
        assert_eq!(ms, 1_795_168_800_000);
        assert_eq!(parse_rfc3339("2026-11-20T11:00:00+01:00"), Some(ms));
        assert_eq!(format_rfc3339(ms), "2026-11-20T10:00:00.000Z");
        assert_eq!(parse_time("1795168800000"), Some(ms));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn value_checks() {
        let spo2 = metric_by_name("spo2").unwrap();
        let l = TimeLimits::default();
        let now = 1_000_000_000_000;
        assert!(check_value_and_time(spo2, 97.0, Status::Valid, now, now, &l).is_ok());
        let r = |v, s, t| {
            check_value_and_time(spo2, v, s, t, now, &l)
                .unwrap_err()
                .reason
        };
        assert_eq!(r(f64::NAN, Status::Valid, now), RejectReason::NonFinite);
        assert_eq!(r(101.0, Status::Valid, now), RejectReason::OutOfRange);
        // A clock running ahead is corrected by the pipeline, never refused here.
        assert!(check_value_and_time(spo2, 97.0, Status::Valid, now + 3_600_000, now, &l).is_ok());
        assert_eq!(
            r(97.0, Status::Valid, now - 73 * 3_600_000),
            RejectReason::TooOld
        );
        // Not-available data carries the 11073 sentinel, which is outside any range.
        assert!(
            check_value_and_time(spo2, MDC_NOT_AVAILABLE, Status::NotAvailable, now, now, &l)
                .is_ok()
        );
    }
}
