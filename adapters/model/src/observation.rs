//! One observation in canonical form.

use crate::*;

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
