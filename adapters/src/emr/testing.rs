//! The builders' tests' shared batch: one patient in one bed, values made to order.

use crate::model::charting::{ChartBatch, ChartMethod, ChartedValue};
use crate::model::{metric_by_name, Location, Millis, Patient, Status};

/// 2026-11-20T10:00:00Z.
pub(crate) const T0: Millis = 1_795_168_800_000;

pub(crate) fn value(
    id: &str,
    device: &str,
    metric: &str,
    v: Option<f64>,
    at: Millis,
) -> ChartedValue {
    ChartedValue {
        id: id.into(),
        device_id: device.into(),
        metric: metric_by_name(metric).unwrap(),
        value: v,
        status: Status::Valid,
        observed_at: at,
        period: None,
        channel: None,
        method: ChartMethod::Every,
        count: 1,
    }
}

pub(crate) fn batch(values: Vec<ChartedValue>) -> ChartBatch {
    ChartBatch {
        id: "B1".into(),
        patient: Patient {
            id: "4711".into(),
            authority: Some("HOSP".into()),
            family: Some("Doe".into()),
            given: Some("Jane".into()),
            birth_date: Some("1961-01-01".into()),
            sex: Some("F".into()),
        },
        location: Location {
            point_of_care: "ICU".into(),
            room: "3".into(),
            bed: "B2".into(),
        },
        values,
        created_at: T0 + 5_000,
    }
}
