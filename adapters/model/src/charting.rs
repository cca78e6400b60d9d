//! What the hub charts to a patient's record (the EMR exports, HL7 IHE PCD-01 and FHIR R4):
//! device values attributed to the patient who was in the bed when the hub received them.

use serde::{Deserialize, Serialize};

use crate::{Location, Metric, Millis, Patient, Status};

/// How a charted value was chosen from what the device sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartMethod {
    /// Every value, as stored.
    Every,
    /// The median of the valid values of the charting period.
    Median,
    /// The last valid value of the charting period.
    Last,
}

/// One value to chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartedValue {
    /// Stable across resends: `{batch id}.{index}`; the FHIR Observation's id and identifier.
    pub id: String,
    pub device_id: String,
    pub metric: Metric,
    /// `None` for a value that is not clinically usable (invalid, not available), charted only
    /// when configured, then as a data-absent reason.
    pub value: Option<f64>,
    pub status: Status,
    /// Device time (a periodic value: the end of its period, or the last value's time).
    pub observed_at: Millis,
    /// For a periodic value, the period `[start, end)` it summarises.
    pub period: Option<(Millis, Millis)>,
    /// The OBX-4 path / MQTT channel it came from, when the device said.
    pub channel: Option<String>,
    pub method: ChartMethod,
    /// How many values a periodic value summarises (1 for `Every`).
    pub count: u32,
}

/// One message's worth of values for one patient in one bed: one ORU^R01, one transaction
/// Bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartBatch {
    /// Stable across resends, unique per hub: the MSH-10 control id and the Bundle's
    /// identifier. At most 20 characters of `[A-Za-z0-9.-]`.
    pub id: String,
    pub patient: Patient,
    /// The ward (point of care) and bed the values came from.
    pub location: Location,
    pub values: Vec<ChartedValue>,
    /// When the hub made the batch (MSH-7).
    pub created_at: Millis,
}
