//! The device status contract: `wardhub/v1/devices/{device_id}/status` (read by the alarm
//! engine for battery, clock and the last will, and by the registry for what the biomed sees).
//!
//! ```json
//! {"online": true, "battery_pct": 14, "charging": false, "firmware": "1.2.3",
//!  "time": "2026-11-20T10:00:00.000Z"}
//! ```
//!
//! Every field is optional; unknown fields are ignored (devices add their own). `time` is the
//! device clock when the message was sent, RFC 3339 or epoch milliseconds; it is compared with
//! hub time for the clock-skew alarm. `{"online": false}` is the payload a device should
//! register as its MQTT last will on this topic: the hub then raises "device offline" at once
//! instead of after the silence timeout.

use crate::{format_rfc3339, parse_time, Millis};
use serde::{Deserialize, Serialize};

/// A device status message that does not follow the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device status: {0}")]
pub struct InvalidStatus(pub String);

type Result<T, E = InvalidStatus> = std::result::Result<T, E>;

/// A device status message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub time: Option<Millis>,
}

impl DeviceStatus {
    /// Parses and checks a status payload (JSON object; battery 0–100; firmware 1–64
    /// printable characters).
    pub fn from_json(payload: &[u8]) -> Result<Self> {
        // serde would also accept a JSON array for a struct; the contract is an object.
        if !payload.trim_ascii_start().starts_with(b"{") {
            return Err(InvalidStatus("expected a JSON object".into()));
        }
        let s: DeviceStatus =
            serde_json::from_slice(payload).map_err(|e| InvalidStatus(e.to_string()))?;
        if let Some(b) = s.battery_pct {
            if !(0.0..=100.0).contains(&b) {
                return Err(InvalidStatus(format!(
                    "battery_pct {b} is not within 0..100"
                )));
            }
        }
        if let Some(f) = &s.firmware {
            if f.is_empty() || f.len() > 64 || f.chars().any(char::is_control) {
                return Err(InvalidStatus(
                    "firmware must be 1-64 printable characters".into(),
                ));
            }
        }
        Ok(s)
    }

    /// The LWT / disconnect message.
    pub fn offline() -> Self {
        Self {
            online: Some(false),
            ..Self::default()
        }
    }
}

/// Serde of an optional device time: RFC 3339 or epoch milliseconds in, RFC 3339 out.
pub mod opt_time {
    use super::*;
    use serde::de::Error;

    pub fn serialize<S: serde::Serializer>(t: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Ms(i64),
        Text(String),
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Ms(ms)) => Ok(Some(ms)),
            Some(Raw::Text(t)) => parse_time(&t)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("time {t:?} is not RFC 3339 or epoch ms"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract() {
        let s = DeviceStatus::from_json(
            br#"{"battery_pct": 14, "charging": false, "firmware": "1.2.3",
                 "time": "2025-11-20T10:00:00Z", "rssi": -60}"#,
        )
        .unwrap();
        assert_eq!(s.battery_pct, Some(14.0));
        assert_eq!(s.charging, Some(false));
        assert_eq!(s.time, Some(1_763_632_800_000));
        assert_eq!(s.online, None);
        let ms = DeviceStatus::from_json(br#"{"time": 1763632800000}"#).unwrap();
        assert_eq!(ms.time, s.time);
        assert_eq!(
            DeviceStatus::from_json(br#"{"online": false}"#).unwrap(),
            DeviceStatus::offline()
        );
        let back: DeviceStatus = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, DeviceStatus { ..s });
        assert!(DeviceStatus::from_json(br#"{"battery_pct": 140}"#).is_err());
        assert!(DeviceStatus::from_json(br#"{"battery_pct": "low"}"#).is_err());
        assert!(DeviceStatus::from_json(br#"{"time": "yesterday"}"#).is_err());
        assert!(DeviceStatus::from_json(br#"{"firmware": ""}"#).is_err());
        assert!(DeviceStatus::from_json(b"[]").is_err());
    }
}
