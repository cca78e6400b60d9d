//! Durations in configuration files and APIs, one way everywhere (hub config, alarm rules,
//! simulator scenarios): a humane string (`"15s"`, `"2m"`, `"1h 30m"`) or an integer number of
//! seconds; optional ones also take `"off"` / `"never"` / `"none"`. Written back as humane
//! strings (`"off"` for none).
//!
//! ```
//! use std::time::Duration;
//! #[derive(serde::Deserialize)]
//! struct C {
//!     #[serde(with = "wardhub_model::duration::humane")]
//!     delay: Duration,
//!     #[serde(with = "wardhub_model::duration::opt_humane")]
//!     escalate: Option<Duration>,
//! }
//! let c: C = serde_json::from_str(r#"{"delay": "1m 30s", "escalate": "off"}"#).unwrap();
//! assert_eq!((c.delay, c.escalate), (Duration::from_secs(90), None));
//! let c: C = serde_json::from_str(r#"{"delay": 15, "escalate": "2m"}"#).unwrap();
//! assert_eq!((c.delay, c.escalate), (Duration::from_secs(15), Some(Duration::from_secs(120))));
//! ```

/// A required duration.
pub mod humane {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// As written: integer seconds or text.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Raw {
        Secs(u64),
        Text(String),
    }

    pub fn parse<E: Error>(raw: Raw) -> Result<Duration, E> {
        match raw {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => humantime::parse_duration(t.trim())
                .map_err(|e| E::custom(format!("duration {t:?}: {e} (e.g. \"15s\", \"2m\")"))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse(Raw::deserialize(d)?)
    }
}

/// An optional duration: `"off"`, `"never"` or `"none"` mean none.
pub mod opt_humane {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::humane::{parse, Raw};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(t) if matches!(t.trim(), "off" | "never" | "none") => Ok(None),
            raw => parse(raw).map(Some),
        }
    }
}
