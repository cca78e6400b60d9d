//! The uplink's wire format: topics under `wardhub/v1/sites/{site}/wards/{ward}/…` and one
//! versioned JSON envelope (`adapters/schema/uplink-message.schema.json`, docs/UPLINK.md).
//!
//! Every message carries an idempotent id, `{stream}:{seq}`: `stream` is made once per data
//! directory, `seq` counts the outbox's messages without gaps. A message sent again after a
//! reconnect has the same id, so a receiver that has seen it drops it; a gap in `seq` is a
//! message the outbox dropped (counted on the hub as `wardhub_uplink_dropped_total`).

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::Millis;

/// The envelope's `schema` value; a new major version is a new value (and topic prefix).
pub const SCHEMA: &str = "wardhub.uplink.v1";

/// What a message carries (a closed set: also the `kind` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Observations,
    Rollups,
    Alarm,
    DeviceStatus,
    Health,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Observations,
        Kind::Rollups,
        Kind::Alarm,
        Kind::DeviceStatus,
        Kind::Health,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Observations => "observations",
            Kind::Rollups => "rollups",
            Kind::Alarm => "alarm",
            Kind::DeviceStatus => "device_status",
            Kind::Health => "health",
        }
    }

    /// Alarms are kept over everything else when the outbox is full.
    pub fn is_alarm(self) -> bool {
        self == Kind::Alarm
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Kind::Observations => 0,
            Kind::Rollups => 1,
            Kind::Alarm => 2,
            Kind::DeviceStatus => 3,
            Kind::Health => 4,
        }
    }

    pub fn from_u8(b: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.to_u8() == b)
    }
}

/// One uplink message as it is sent (and as the hospital view reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub schema: String,
    /// `{stream}:{seq}`, the same on every redelivery.
    pub id: String,
    pub stream: String,
    pub seq: u64,
    pub site: String,
    pub ward: String,
    pub kind: Kind,
    /// When the hub queued it (epoch ms, hub time).
    pub queued_at: Millis,
    /// The kind's content: `{bed, observations}`, `{bed, rollups}`, an alarm transition as
    /// the ward publishes it, `{device, bed, status}`, or the hub's health.
    pub body: serde_json::Value,
}

/// The topics of one ward hub.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(site: &str, ward: &str) -> Topics {
        Topics {
            prefix: format!("wardhub/v1/sites/{}/wards/{}", level(site), level(ward)),
        }
    }

    /// The filter a hospital view subscribes to (every site's every ward).
    pub const ALL: &'static str = "wardhub/v1/sites/+/wards/+/#";

    pub fn of(&self, kind: Kind, bed: Option<&str>, device: Option<&str>) -> String {
        let bed = bed.map_or_else(|| "_none".to_owned(), level);
        match kind {
            Kind::Observations => format!("{}/beds/{bed}/observations", self.prefix),
            Kind::Rollups => format!("{}/beds/{bed}/rollups", self.prefix),
            Kind::Alarm => format!("{}/alarms", self.prefix),
            Kind::DeviceStatus => format!(
                "{}/devices/{}/status",
                self.prefix,
                level(device.unwrap_or("_none"))
            ),
            Kind::Health => format!("{}/health", self.prefix),
        }
    }

    /// Where receivers ask this ward hub for messages again:
    /// `{"stream": "…", "from": 17, "to": 20}`.
    pub fn resend(&self) -> String {
        format!("{}/resend", self.prefix)
    }

    /// Whether `topic` is a resend request rather than an uplink message.
    pub fn is_resend(topic: &str) -> bool {
        topic.ends_with("/resend")
    }
}

/// One topic level: `[A-Za-z0-9_-]` as it is, every other byte as `%XX` (ids may hold `.`,
/// which NATS reads as a subject separator). The payload always carries the id itself.
pub fn level(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_scheme() {
        let t = Topics::new("st-mary", "icu-3");
        assert_eq!(
            t.of(Kind::Observations, Some("bed-01"), None),
            "wardhub/v1/sites/st-mary/wards/icu-3/beds/bed-01/observations"
        );
        assert_eq!(
            t.of(Kind::Observations, None, None),
            "wardhub/v1/sites/st-mary/wards/icu-3/beds/_none/observations"
        );
        assert_eq!(
            t.of(Kind::Alarm, Some("x"), None),
            "wardhub/v1/sites/st-mary/wards/icu-3/alarms"
        );
        assert_eq!(
            t.of(Kind::DeviceStatus, Some("bed-01"), Some("mon.7")),
            "wardhub/v1/sites/st-mary/wards/icu-3/devices/mon%2E7/status"
        );
        assert_eq!(
            t.of(Kind::Health, None, None),
            "wardhub/v1/sites/st-mary/wards/icu-3/health"
        );
    }

    #[test]
    fn kinds_round_trip_through_their_byte() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_u8(k.to_u8()), Some(k));
        }
        assert_eq!(Kind::from_u8(9), None);
    }
}
