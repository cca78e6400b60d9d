//! Configuration of the HL7 v2 / MLLP listener: [`Hl7Settings`] is what an operator writes
//! (`[[adapters]] type = "hl7_mllp"`), [`Hl7Config`] what the running adapter uses.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use crate::duration::humane;
use crate::hl7::codes::CodeMap;
use crate::hl7::oru::SenderRule;
use crate::hl7::peers::Peer;
use crate::tls::{ReloadingTls, TlsFiles};

/// The `[[adapters]] type = "hl7_mllp"` section of the hub's configuration file; every field
/// but `listen` has a default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hl7Settings {
    pub listen: SocketAddr,
    #[serde(default = "defaults::max_frame_bytes")]
    pub max_frame_bytes: usize,
    #[serde(default = "defaults::idle_timeout", with = "humane")]
    pub idle_timeout: Duration,
    /// Connections at once (the hub may lower it to fit its file-descriptor limit).
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Connections at once from one source address.
    #[serde(default = "defaults::max_connections_per_source")]
    pub max_connections_per_source: usize,
    /// A frame begun must be whole within this.
    #[serde(default = "defaults::frame_timeout", with = "humane")]
    pub frame_timeout: Duration,
    /// Who may connect (`[[adapters.peers]]`: name, allow_from, certificate_cn,
    /// certificate_sha256, senders).
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Admit connections no peer matches (lab setups only).
    #[serde(default)]
    pub allow_unknown_peers: bool,
    /// MLLP over TLS: the listener then speaks only TLS.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// UTC offset assumed for HL7 times that carry none, in minutes.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Values meaning "no value" (stored as not-available).
    #[serde(default = "defaults::sentinels")]
    pub sentinels: Vec<f64>,
    /// Rules for one sender, by MSH-3 namespace id: `identity` (auto, obx18, msh3, msh4),
    /// `utc_offset_minutes`, `sentinels`.
    #[serde(default)]
    pub senders: BTreeMap<String, SenderRule>,
    /// Codes of other coding systems and the metric each names.
    #[serde(default)]
    pub codes: Vec<CodeMap>,
}

mod defaults {
    use std::time::Duration;

    pub fn max_frame_bytes() -> usize {
        super::DEFAULT_MAX_FRAME_BYTES
    }
    pub fn idle_timeout() -> Duration {
        super::DEFAULT_IDLE_TIMEOUT
    }
    pub fn max_connections() -> usize {
        super::DEFAULT_MAX_CONNECTIONS
    }
    pub fn max_connections_per_source() -> usize {
        super::DEFAULT_MAX_CONNECTIONS_PER_SOURCE
    }
    pub fn frame_timeout() -> Duration {
        super::DEFAULT_FRAME_TIMEOUT
    }
    pub fn sentinels() -> Vec<f64> {
        crate::hl7::oru::DEFAULT_SENTINELS.to_vec()
    }
}

impl Hl7Settings {
    /// A listener on `listen` with every default and no peer (nobody may connect until a peer
    /// is added or `allow_unknown_peers` is set).
    pub fn new(listen: SocketAddr) -> Hl7Settings {
        Hl7Settings {
            listen,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_source: DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            peers: Vec::new(),
            allow_unknown_peers: false,
            tls: None,
            utc_offset_minutes: 0,
            sentinels: defaults::sentinels(),
            senders: BTreeMap::new(),
            codes: Vec::new(),
        }
    }

    /// The running adapter's configuration: at most `max_connections` at once (the hub's
    /// share of its file descriptors), TLS from `tls` (loaded from [`Hl7Settings::tls`]).
    pub fn to_config(&self, max_connections: usize, tls: Option<ReloadingTls>) -> Hl7Config {
        Hl7Config {
            listen: self.listen,
            max_frame_bytes: self.max_frame_bytes,
            idle_timeout: self.idle_timeout,
            max_connections,
            max_connections_per_source: self.max_connections_per_source,
            frame_timeout: self.frame_timeout,
            peers: self.peers.clone(),
            allow_unknown_peers: self.allow_unknown_peers,
            tls,
            default_utc_offset_minutes: self.utc_offset_minutes,
            sentinels: self.sentinels.clone(),
            senders: self
                .senders
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            codes: self.codes.clone(),
            application: "WARDHUB".to_owned(),
        }
    }
}

/// Settings of [`Hl7MllpAdapter`](super::Hl7MllpAdapter), built from [`Hl7Settings`]; every
/// field has a default.
#[derive(Debug, Clone)]
pub struct Hl7Config {
    /// Where to listen. Default `127.0.0.1:2575` (2575 is HL7's registered port).
    pub listen: SocketAddr,
    /// The largest message accepted, framing excluded. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// A connection with nothing received for this long is closed. Default 5 min.
    pub idle_timeout: Duration,
    /// Connections held at once; more are closed at once. Default 1024.
    pub max_connections: usize,
    /// Connections held at once from one source address. Default 16.
    pub max_connections_per_source: usize,
    /// A frame begun (start byte received) must be complete within this. Default 10 s.
    pub frame_timeout: Duration,
    /// Who may connect (address allow-lists, client certificates).
    pub peers: Vec<Peer>,
    /// Admit connections that match no peer (lab setups only). Default false.
    pub allow_unknown_peers: bool,
    /// MLLP over TLS (the listener speaks only TLS then).
    pub tls: Option<ReloadingTls>,
    /// The UTC offset assumed for HL7 times without one (HL7 says "the sender's local time").
    /// Default 0 (UTC).
    pub default_utc_offset_minutes: i32,
    /// MSH-3 of wardhub's ACKs. Default `WARDHUB`.
    pub application: String,
    /// Codes of other coding systems (vendor-local, LOINC beyond the built-in table) and the
    /// metric each names.
    pub codes: Vec<CodeMap>,
    /// Values meaning "no value" from any sender. Default [`oru::DEFAULT_SENTINELS`](crate::hl7::oru::DEFAULT_SENTINELS).
    pub sentinels: Vec<f64>,
    /// Rules for one sender (by MSH-3 namespace id): device identity, UTC offset,
    /// sentinels.
    pub senders: Vec<(String, SenderRule)>,
}

pub const DEFAULT_PORT: u16 = 2575;
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_CONNECTIONS_PER_SOURCE: usize = 16;
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Hl7Config {
    /// The settings' defaults ([`Hl7Settings::new`]) on `127.0.0.1:2575`.
    fn default() -> Self {
        Hl7Settings::new(SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)))
            .to_config(DEFAULT_MAX_CONNECTIONS, None)
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hl7: {0}")]
pub struct ConfigError(pub &'static str);

impl Hl7Config {
    /// Checks the settings; [`Hl7MllpAdapter::bind`](super::Hl7MllpAdapter::bind) calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame_bytes < 64 {
            return Err(ConfigError("max_frame_bytes must be at least 64"));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError("idle_timeout must be more than zero"));
        }
        if self.max_connections == 0 || self.max_connections_per_source == 0 {
            return Err(ConfigError(
                "max_connections and max_connections_per_source must be at least 1",
            ));
        }
        if self.frame_timeout.is_zero() {
            return Err(ConfigError("frame_timeout must be more than zero"));
        }
        let sender_offsets = self
            .senders
            .iter()
            .filter_map(|(_, r)| r.utc_offset_minutes);
        if self.default_utc_offset_minutes.abs() >= 24 * 60
            || sender_offsets.clone().any(|o| o.abs() >= 24 * 60)
        {
            return Err(ConfigError(
                "default_utc_offset_minutes must be within a day",
            ));
        }
        if self.application.is_empty()
            || !self
                .application
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b' '))
        {
            return Err(ConfigError(
                "application must be letters, digits, '_', '-', '.' or spaces",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Hl7Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:2575");
        assert_eq!(c.max_frame_bytes, 1 << 20);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validation() {
        let bad = [
            Hl7Config {
                max_frame_bytes: 10,
                ..Hl7Config::default()
            },
            Hl7Config {
                idle_timeout: Duration::ZERO,
                ..Hl7Config::default()
            },
            Hl7Config {
                max_connections: 0,
                ..Hl7Config::default()
            },
            Hl7Config {
                default_utc_offset_minutes: 24 * 60,
                ..Hl7Config::default()
            },
            Hl7Config {
                application: "A|B".into(),
                ..Hl7Config::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
