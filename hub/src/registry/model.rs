//! What the registry stores and what its API accepts.

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::{is_valid_id, Millis};

/// The six kinds of bedside device (each a slot of a bed). Other kinds are accepted too
/// (`[a-z0-9_]`, 1-32 characters), each with a slot of its own.
pub const KINDS: [&str; 6] = [
    "patient_monitor",
    "infusion_pump",
    "ventilator",
    "smart_bed",
    "nurse_call",
    "wearable",
];

/// The kind of devices seeded from the config's `[[devices]]` without a `kind`: bound to the
/// bed but holding no slot (so several may share a bed).
pub const UNSPECIFIED_KIND: &str = "unspecified";

/// Shortest secret a caller may choose.
pub const MIN_SECRET_LEN: usize = 16;

/// Whether a device is in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Active,
    Retired,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Active => "active",
            DeviceState::Retired => "retired",
        }
    }
}

/// A registered device, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub firmware: Option<String>,
    /// The adapter it talks through (`mqtt_json`, `hl7_mllp`, …).
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub ward: Option<String>,
    #[serde(default)]
    pub bed: Option<String>,
    /// Hex SHA-256 of the device's secret (its MQTT password); the secret itself is never kept.
    #[serde(default)]
    pub secret_sha256: Option<String>,
    pub state: DeviceState,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub maintenance_due: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Device {
    /// The slot this device holds, when it is active, bound and of a slotted kind.
    pub fn slot(&self) -> Option<String> {
        match (&self.ward, &self.bed) {
            (Some(w), Some(b))
                if self.state == DeviceState::Active && self.kind != UNSPECIFIED_KIND =>
            {
                Some(slot_key(w, b, &self.kind))
            }
            _ => None,
        }
    }
}

/// The key of a slot: `ward/bed/kind` (ids cannot contain `/`).
pub fn slot_key(ward: &str, bed: &str, kind: &str) -> String {
    format!("{ward}/{bed}/{kind}")
}

/// The fields of a create or update (`PUT /api/v1/devices/{id}`, a CSV row). Absent fields are
/// left as they are on an update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    /// Only in `POST /api/v1/devices` bodies (elsewhere the id is in the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub firmware: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub ward: Option<String>,
    #[serde(default)]
    pub bed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub maintenance_due: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Take the slot from the device holding it (which is unbound).
    #[serde(default)]
    pub replace: bool,
}

/// One entry of a device's change history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub at: Millis,
    /// The user (API token name), `config` or `hub`.
    pub who: String,
    /// `created`, `updated`, `bound`, `unbound`, `retired`, `credentials_rotated`, …
    pub action: String,
    pub detail: String,
}

/// A refused registry operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown device {0}")]
    NotFound(String),
    #[error("unknown bed {0}")]
    BedNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("registry storage: {0}")]
    Storage(String),
}

impl From<sled::Error> for RegistryError {
    fn from(e: sled::Error) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

pub fn check_id(what: &str, id: &str) -> Result<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{what} {id:?} must be 1-64 characters of [A-Za-z0-9._-]"
        )))
    }
}

pub fn check_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= 32
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "kind {kind:?} must be one of {} (or another 1-32 characters of [a-z0-9_])",
            KINDS.join(", ")
        )))
    }
}

/// A free-text field: at most 256 printable characters.
pub fn check_text(what: &str, v: &str) -> Result<()> {
    if v.len() > 256 || v.chars().any(char::is_control) {
        Err(RegistryError::Invalid(format!(
            "{what} must be at most 256 printable characters"
        )))
    } else {
        Ok(())
    }
}

pub fn check_secret(s: &str) -> Result<()> {
    if s.len() < MIN_SECRET_LEN || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        Err(RegistryError::Invalid(format!(
            "a secret must be {MIN_SECRET_LEN}-256 printable ASCII characters without spaces"
        )))
    } else {
        Ok(())
    }
}

/// `YYYY-MM-DD`, a real date.
pub fn check_date(what: &str, s: &str) -> Result<()> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|_| ())
        .map_err(|_| RegistryError::Invalid(format!("{what} {s:?} must be a date YYYY-MM-DD")))
}

/// Today's date (UTC) as `YYYY-MM-DD` for `now` in epoch ms.
pub fn date_of(now: Millis) -> String {
    wardhub_adapters::model::format_rfc3339(now)
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

impl DeviceInput {
    /// Checks every field that is present.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.id {
            check_id("device id", id)?;
        }
        if let Some(k) = &self.kind {
            check_kind(k)?;
        }
        for (what, v) in [
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
            ("firmware", &self.firmware),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        if let Some(n) = &self.notes {
            // Notes may span lines.
            check_text("notes", &n.replace('\n', " "))?;
        }
        if let Some(p) = &self.protocol {
            check_id("protocol", p)?;
        }
        if let Some(w) = &self.ward {
            check_id("ward", w)?;
        }
        if let Some(b) = &self.bed {
            check_id("bed", b)?;
        }
        if self.ward.is_some() && self.bed.is_none() {
            return Err(RegistryError::Invalid("a ward needs a bed".into()));
        }
        if let Some(s) = &self.secret {
            check_secret(s)?;
        }
        if let Some(d) = &self.maintenance_due {
            check_date("maintenance_due", d)?;
        }
        Ok(())
    }
}

/// A device bound to a bed in the config file (`[[devices]]`): the registry loads these at
/// start as static bindings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticDevice {
    pub id: String,
    pub bed: String,
    #[serde(default)]
    pub ward: Option<String>,
    /// One of the registry's kinds; without it the device holds no slot of the bed.
    #[serde(default)]
    pub kind: Option<String>,
    /// Hex SHA-256 of the device's MQTT password; without it the device connects by id alone.
    #[serde(default)]
    pub secret_sha256: Option<String>,
}
