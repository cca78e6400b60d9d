//! The hub's answers as types, for the tables: most are the registry's own view types
//! ([`DeviceView`], [`BedView`], [`Problem`], [`Change`], …); the envelopes around them and the
//! few answers the HTTP API builds on the spot (a device's status, a bed with its devices, a
//! rotated secret) are mirrored here, field for field. [`read`] turns an answer that does not
//! fit into exit code 1 ("the hub answered something unexpected").

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use wardhub_adapters::model::Millis;

use super::{CliResult, Failure, EXIT_ERROR};
use crate::registry::live::LiveView;
use crate::registry::model::Change;
use crate::registry::{BedView, DeviceState, DeviceView, Problem};

/// Reads an answer of the hub as `T`.
pub(super) fn read<T: DeserializeOwned>(v: &Value) -> CliResult<T> {
    T::deserialize(v).map_err(|e| {
        Failure(
            EXIT_ERROR,
            format!("the hub answered something unexpected: {e}"),
            None,
        )
    })
}

/// `GET /api/v1/devices`.
#[derive(Debug, Deserialize)]
pub(super) struct DeviceList {
    pub devices: Vec<DeviceView>,
}

/// `GET /api/v1/beds`.
#[derive(Debug, Deserialize)]
pub(super) struct BedList {
    pub beds: Vec<BedView>,
}

/// `GET /api/v1/beds/{bed}`: the bed and the views of its devices.
#[derive(Debug, Deserialize)]
pub(super) struct BedWithDevices {
    #[serde(flatten)]
    pub bed: BedView,
    pub device_status: Vec<DeviceView>,
}

/// `GET /api/v1/problems`.
#[derive(Debug, Deserialize)]
pub(super) struct ProblemList {
    pub problems: Vec<Problem>,
}

/// `GET /api/v1/devices/{id}/history`.
#[derive(Debug, Deserialize)]
pub(super) struct History {
    pub history: Vec<Change>,
}

/// `POST /api/v1/devices/{id}/credentials/rotate`.
#[derive(Debug, Deserialize)]
pub(super) struct Rotated {
    pub secret: Option<String>,
}

/// `GET /api/v1/devices/{id}/status`: the device's binding and state, its liveness (also
/// whole, as `live`), and its bed's alarms of the last 24 h.
#[derive(Debug, Deserialize)]
pub(super) struct DeviceStatus {
    pub id: String,
    pub kind: String,
    pub ward: Option<String>,
    pub bed: Option<String>,
    pub state: DeviceState,
    pub firmware: Option<String>,
    pub online: bool,
    pub last_seen: Option<Millis>,
    pub message_rate_per_min: f64,
    pub battery_pct: Option<f64>,
    pub charging: Option<bool>,
    pub firmware_reported: Option<String>,
    pub alarms_24h: Option<u64>,
    pub live: LiveView,
}
