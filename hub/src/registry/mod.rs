//! The device registry: which devices may send data, with which credential, and to which bed
//! their data belongs.
//!
//! The bed of an observation comes from the binding at the time it is received, never from
//! the device's own claim.
//!
//! Layout:
//! - [`model`]: a device, its kind and state, a change of the history, API inputs;
//! - [`db`]: [`SledRegistry`], persisted in the hub's sled database with an in-memory index,
//!   and the one serialized, transactional way anything is written;
//! - [`commands`]: register, update, bind, unbind, retire, rotate credentials, add a bed;
//! - [`bulk`]: the config's `[[devices]]` and CSV imports, many devices in one commit;
//! - [`views`]: what the biomed reads back (device views, lists, history, beds, problems);
//! - [`ingest`]: the [`Registry`] lookups of the ingest path (the ingest path's
//!   [`Registry::resolve`] is one hash lookup under a read lock);
//! - [`live`]: what is known only while the hub runs (online, last seen, message rate,
//!   battery, rejects, connection flapping);
//! - [`csv`]: import and export;
//! - [`events`]: the [`AdapterEvents`](wardhub_adapters::adapter::AdapterEvents) wrapper that
//!   counts per-device rejects and cross-checks HL7 bed claims against the binding.

pub mod bulk;
pub mod commands;
pub mod csv;
pub mod db;
pub mod events;
pub mod ingest;
pub mod live;
pub mod model;
#[cfg(test)]
mod tests;
pub mod views;

pub use bulk::{ImportError, ImportReport, ImportSecret};
pub use commands::Upserted;
pub use db::{AlarmCounter, CredentialHook, SledRegistry};
pub use live::Live;
pub use model::{Device, DeviceInput, DeviceState, RegistryError};
pub use views::{
    BedView, DeviceView, ListFilter, Problem, BATTERY_LOW_PCT, FLAPPING_CONNECTS, HIGH_REJECT_SHARE,
};

use std::sync::Arc;

/// Where a device's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Registered and bound to a bed.
    Bound { ward: String, bed: String },
    /// Registered (or allowed unregistered) but not bound: data is stored without a bed.
    Unbound,
    /// Not registered, or retired: data is refused.
    Refused,
}

/// The answer to a device's credentials.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    /// A registered, active device; the handle records its liveness.
    Device(Arc<Live>),
    /// Not registered, but `ingest.allow_unregistered_devices` is on (lab setups).
    Unregistered,
    /// Refused, and why.
    Refused(AuthRefusal),
}

/// Why a device was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    Unknown,
    Retired,
    /// Wrong or missing password, or a user name that is not the client id.
    BadCredentials,
    /// Authenticated, but asked for something it may not have (a last will on another
    /// device's topic).
    Forbidden,
}

impl AuthRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthRefusal::Unknown => "unknown device",
            AuthRefusal::Retired => "retired device",
            AuthRefusal::BadCredentials => "bad credentials",
            AuthRefusal::Forbidden => "last will outside its own topics",
        }
    }
}

/// Device lookups the pipeline and the adapters need.
pub trait Registry: Send + Sync {
    fn resolve(&self, device: &str) -> Resolution;

    /// Whether the device is registered (whatever its binding or state).
    fn is_registered(&self, device: &str) -> bool;

    /// Checks a device's credentials (`secret` is the MQTT password, `None` without one).
    fn authenticate(&self, _device: &str, _secret: Option<&[u8]>) -> AuthOutcome {
        AuthOutcome::Refused(AuthRefusal::Unknown)
    }

    /// A device that presented a verified client certificate naming it (mTLS): registered and
    /// active is enough; unregistered devices are never admitted this way.
    fn authenticate_certificate(&self, _device: &str) -> AuthOutcome {
        AuthOutcome::Refused(AuthRefusal::Unknown)
    }

    /// Where data of `device` goes when a gateway placed it (HL7 gateway mode): the bed must be
    /// a registry bed; an unknown device is registered under the gateway when it may, else
    /// refused. `Err` says why the data is refused.
    fn place(
        &self,
        device: &str,
        _placement: &wardhub_adapters::adapter::Placement,
    ) -> Result<Resolution, String> {
        match self.resolve(device) {
            Resolution::Refused => Err("device is not registered, or is retired".into()),
            r => Ok(r),
        }
    }

    /// Data of `device` reached the pipeline at `now_ms` (called once per device per batch).
    fn seen(&self, _device: &str, _now_ms: i64) {}

    /// A status message of the device (`wardhub/v1/devices/{id}/status`): battery, firmware.
    fn status_reported(&self, _device: &str, _status: &crate::device_status::DeviceStatus) {}
}
