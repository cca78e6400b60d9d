//! `[uplink]`: where and what the hub forwards beyond the ward, and how the outbox is bounded.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use wardhub_adapters::duration::humane;

/// One broker of the cluster: `mqtt://host:port` (plain) or `mqtts://host:port` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<ServerUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "{s:?}: a server is mqtt://host:port or mqtts://host:port"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{s:?}: {p:?} is not a port"))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        Ok(ServerUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl<'de> Deserialize<'de> for ServerUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ServerUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Which MQTT version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Protocol {
    /// MQTT 5, and 3.1.1 with a server that does not take a version 5 CONNECT.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "5")]
    V5,
    #[serde(rename = "3.1.1")]
    V311,
}

/// How to reach and log in to the cluster (the uplink's and the hospital view's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConnection {
    /// The cluster's brokers, tried in turn (the next one when one fails).
    #[serde(default)]
    pub servers: Vec<ServerUrl>,
    #[serde(default)]
    pub protocol: Protocol,
    /// Default: `wardhub-{site}-{ward}` (uplink), `wardhub-hospital-{site}` (hospital view).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (its first line), so that no secret sits in the config.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates for `mqtts://` servers (default: none but these are trusted).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A PEM client certificate and key, for brokers that want mTLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    #[serde(with = "humane", default = "default_keep_alive")]
    pub keep_alive: Duration,
    /// A broker that does not answer a CONNECT within this is tried again later.
    #[serde(with = "humane", default = "default_connect_timeout")]
    pub connect_timeout: Duration,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl ClusterConnection {
    /// Checks what can be checked without connecting: servers given, TLS files readable.
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err(format!("{what}.servers: at least one broker is needed"));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(format!("{what}: client_cert and client_key go together"));
        }
        for (key, p) in [
            ("password_file", &self.password_file),
            ("ca", &self.ca),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ] {
            if let Some(p) = p {
                std::fs::metadata(p).map_err(|e| format!("{what}.{key}: {}: {e}", p.display()))?;
            }
        }
        if self.servers.iter().any(|s| s.tls) && self.ca.is_none() {
            return Err(format!(
                "{what}.ca: an mqtts:// server needs the CA that signed its certificate"
            ));
        }
        Ok(())
    }

    /// The password, read from `password_file` (first line, trailing spaces trimmed).
    pub fn password(&self) -> Result<Option<String>, String> {
        match &self.password_file {
            None => Ok(None),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("password_file {}: {e}", p.display()))?;
                Ok(Some(
                    text.lines().next().unwrap_or("").trim_end().to_owned(),
                ))
            }
        }
    }
}

/// What kinds of message the hub forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forward {
    Observations,
    Alarms,
    DeviceStatus,
    Health,
}

/// How observations go up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ObservationMode {
    /// Every stored observation, a message per bed and pipeline batch.
    #[default]
    Raw,
    /// One-minute rollups (min, max, mean, count per device, metric and channel), sent once a
    /// minute has closed.
    Rollups,
}

/// `[uplink]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    pub enabled: bool,
    /// The hospital (site) this ward belongs to: a topic level, `[A-Za-z0-9_-]`.
    pub site: String,
    pub forward: Vec<Forward>,
    #[serde(default)]
    pub observations: ObservationMode,
    /// The ward dashboard's address, shown as a link by the hospital view.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// The outbox holds at most this many bytes; past it the oldest data message is dropped
    /// (counted), alarms last.
    pub outbox_max_bytes: u64,
    /// Messages older than this are dropped (counted) rather than sent.
    #[serde(with = "humane")]
    pub outbox_max_age: Duration,
    /// The drain rate: at most this many messages a second, so a hub coming back after an
    /// outage does not flood the cluster.
    pub max_messages_per_second: u32,
    /// Messages sent and not yet acknowledged by the broker, at most.
    pub max_inflight: u16,
    /// How often the hub publishes its own health.
    #[serde(with = "humane")]
    pub health_interval: Duration,
    /// In `rollups` mode, how long after a minute ends its rollups are sent (late data).
    #[serde(with = "humane")]
    pub rollup_delay: Duration,
    /// Messages the broker acknowledged are kept this long (and at most `keep_sent_bytes`)
    /// so that a receiver that finds a gap can ask for them again (`…/resend`).
    #[serde(with = "humane")]
    pub keep_sent: Duration,
    pub keep_sent_bytes: u64,
    /// `[uplink.cluster]`: the brokers and the login.
    #[serde(rename = "cluster")]
    pub connection: ClusterConnection,
}

impl UplinkConfig {
    pub fn forwards(&self, f: Forward) -> bool {
        self.forward.contains(&f)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if !is_topic_level(&self.site) {
            return Err(format!(
                "uplink.site {:?}: 1-64 characters of [A-Za-z0-9_-]",
                self.site
            ));
        }
        self.connection.validate("uplink.cluster")?;
        if self.max_messages_per_second == 0 || self.max_inflight == 0 {
            return Err("uplink: max_messages_per_second and max_inflight must be above 0".into());
        }
        if self.outbox_max_bytes < 1 << 16 {
            return Err("uplink.outbox_max_bytes: at least 65536".into());
        }
        Ok(())
    }
}

/// Whether `s` may be one level of an uplink topic (it is one on every broker: NATS maps
/// `.` and MQTT reserves `+ # /`).
pub fn is_topic_level(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_parse_and_name_their_faults() {
        assert_eq!(
            ServerUrl::parse("mqtt://127.0.0.1:4222").unwrap(),
            ServerUrl {
                host: "127.0.0.1".into(),
                port: 4222,
                tls: false
            }
        );
        assert_eq!(
            ServerUrl::parse("mqtts://broker.example").unwrap().port,
            8883
        );
        assert_eq!(ServerUrl::parse("mqtt://[::1]:1883").unwrap().host, "::1");
        assert!(ServerUrl::parse("tcp://x:1")
            .unwrap_err()
            .contains("mqtt://"));
        assert!(ServerUrl::parse("mqtt://x:http")
            .unwrap_err()
            .contains("port"));
    }

    #[test]
    fn topic_levels_exclude_what_a_broker_would_read_as_structure() {
        assert!(is_topic_level("st-mary_2"));
        for bad in ["", "a/b", "a+b", "a#", "a.b", "a b", &"x".repeat(65)] {
            assert!(!is_topic_level(bad), "{bad}");
        }
    }
}
