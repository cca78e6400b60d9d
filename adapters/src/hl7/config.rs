//! Configuration of the HL7 v2 / MLLP listener.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Settings of [`Hl7MllpAdapter`](super::Hl7MllpAdapter). The hub maps its own configuration
/// file onto this; every field has a default.
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
    pub peers: Vec<crate::hl7::peers::Peer>,
    /// Admit connections that match no peer (lab setups only). Default false.
    pub allow_unknown_peers: bool,
    /// MLLP over TLS (the listener speaks only TLS then).
    pub tls: Option<crate::tls::ReloadingTls>,
    /// The UTC offset assumed for HL7 times without one (HL7 says "the sender's local time").
    /// Default 0 (UTC).
    pub default_utc_offset_minutes: i32,
    /// MSH-3 of wardhub's ACKs. Default `WARDHUB`.
    pub application: String,
    /// Codes of other coding systems (vendor-local, LOINC beyond the built-in table) and the
    /// metric each names.
    pub codes: Vec<crate::hl7::codes::CodeMap>,
    /// Values meaning "no value" from any sender. Default [`oru::DEFAULT_SENTINELS`](crate::hl7::oru::DEFAULT_SENTINELS).
    pub sentinels: Vec<f64>,
    /// Rules for one sender (by MSH-3 namespace id): device identity, UTC offset,
    /// sentinels.
    pub senders: Vec<(String, crate::hl7::oru::SenderRule)>,
}

pub const DEFAULT_PORT: u16 = 2575;
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_CONNECTIONS_PER_SOURCE: usize = 16;
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Hl7Config {
    fn default() -> Self {
        Hl7Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_source: DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            peers: Vec::new(),
            allow_unknown_peers: false,
            tls: None,
            default_utc_offset_minutes: 0,
            application: "WARDHUB".to_owned(),
            codes: Vec::new(),
            sentinels: crate::hl7::oru::DEFAULT_SENTINELS.to_vec(),
            senders: Vec::new(),
        }
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
