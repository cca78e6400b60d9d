//! Device (and bed) identifiers: the alphabet that keeps them safe in topics, keys, URLs
//! and logs.

use std::fmt;

use serde::{Deserialize, Serialize};

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
