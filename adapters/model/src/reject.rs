//! Why an input or an observation was not accepted (a closed set: a Prometheus label), and
//! the checks every adapter shares.

use std::fmt;

use crate::*;

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
