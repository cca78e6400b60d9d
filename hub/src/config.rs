//! Hub configuration: serde structs over `deploy/hub.toml`, which is embedded and is the
//! default. A user file is merged over it (tables merge, arrays replace), so a file needs only
//! the keys it changes; unknown keys are an error. Command-line flags and `WARDHUB_…`
//! environment variables win over both (applied by the CLI).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The embedded default configuration, printed by `wardhub generate-config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/hub.toml");

/// A configuration error: always names the file and the key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub hub: HubConfig,
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub ingest: IngestConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub devices: Vec<StaticDevice>,
    #[serde(default)]
    pub users: Vec<crate::auth::UserConfig>,
    #[serde(default)]
    pub alarms: crate::alarms::AlarmsConfig,
    /// The protocol adapters to run.
    pub adapters: Vec<AdapterConfig>,
    /// Forwarding to the hospital's clustered broker (off by default).
    pub uplink: crate::uplink::UplinkConfig,
    /// Patient context: the ADT feed, manual association, what the dashboard shows.
    #[serde(default)]
    pub patients: crate::patients::PatientsConfig,
    /// Charting to the patient record (HL7 PCD-01, FHIR R4; off by default).
    #[serde(default)]
    pub emr: crate::emr::EmrConfig,
    /// Alarms to a person: the roster and escalation chains (off by default).
    #[serde(default)]
    pub dissemination: crate::dissemination::DisseminationConfig,
}

/// One protocol adapter (`[[adapters]]`), chosen by `type`. (Few, read once at start: the
/// size of the HL7 variant does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdapterConfig {
    /// JSON documents on the embedded broker (`[mqtt]` listener, `[ingest]` limits).
    MqttJson,
    /// HL7 v2 ORU^R01 (IHE PCD-01) over MLLP: the adapter's own settings.
    Hl7Mllp(wardhub_adapters::hl7::Hl7Settings),
}

/// The PEM files of a TLS listener, and client certificates (mTLS) when `client_ca` is given
/// (the adapters' type: the HL7 adapter's settings use it too).
pub use wardhub_adapters::tls::TlsFiles as TlsFilesConfig;

impl AdapterConfig {
    pub fn name(&self) -> &'static str {
        match self {
            AdapterConfig::MqttJson => "mqtt_json",
            AdapterConfig::Hl7Mllp(_) => "hl7_mllp",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    pub ward: String,
    /// An internal part down this long stops the hub (exit status 70, for a restart).
    #[serde(with = "humane")]
    pub exit_after_component_down: Duration,
    /// How often TLS certificate files are checked for changes (reloaded without a restart).
    #[serde(with = "humane")]
    pub tls_reload_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub listen: SocketAddr,
    pub max_packet_bytes: usize,
    #[serde(with = "humane")]
    pub connect_timeout: Duration,
    pub max_connections: usize,
    /// Connections at once from one source address.
    pub max_connections_per_source: usize,
    /// Unacknowledged publishes per device connection (MQTT 5 Receive Maximum).
    pub receive_maximum: u16,
    /// A second, TLS-only listener (`[mqtt.tls]`).
    #[serde(default)]
    pub tls: Option<MqttTlsConfig>,
    /// Integrations (pagers, EMR bridges) that subscribe but never publish.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
}

/// MQTT over TLS (rustls): PEM certificate chain and private key; with `client_ca`, devices
/// may log in with a client certificate whose subject CN is their id (mTLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTlsConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub require_client_cert: bool,
}

impl MqttTlsConfig {
    pub fn files(&self) -> wardhub_adapters::tls::TlsFiles {
        wardhub_adapters::tls::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
            require_client_cert: self.require_client_cert,
        }
    }
}

/// An MQTT login for an integration: user name `name`, password whose SHA-256 is given; it may
/// subscribe to filters within `subscribe` and may not publish.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    pub name: String,
    pub password_sha256: String,
    pub subscribe: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Connections at once, in total and from one source address.
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    /// A request's headers must arrive within this (also the keep-alive idle limit).
    #[serde(with = "humane")]
    pub header_timeout: Duration,
    /// A request (body included) must be answered within this (the live stream's headers too).
    #[serde(with = "humane")]
    pub request_timeout: Duration,
    /// How long a dashboard login lasts.
    #[serde(with = "humane")]
    pub session_ttl: Duration,
    /// Failed logins from one source address within `login_window` before it is locked out
    /// for the rest of the window.
    pub login_failures: u32,
    #[serde(with = "humane")]
    pub login_window: Duration,
    /// HTTPS (the listener then speaks only TLS, with HSTS).
    #[serde(default)]
    pub tls: Option<TlsFilesConfig>,
}

/// The Prometheus metrics listener (`GET /metrics`), apart from the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub max_payload_bytes: usize,
    pub max_observations_per_message: usize,
    #[serde(with = "humane")]
    pub max_future_skew: Duration,
    pub queue_capacity: usize,
    /// MQTT observations and device messages received but not yet durable, hub-wide.
    pub max_inflight_observations: usize,
    pub allow_unregistered_devices: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(with = "humane")]
    pub flush_interval: Duration,
    #[serde(with = "humane")]
    pub raw_retention: Duration,
    #[serde(with = "humane")]
    pub rollup_retention: Duration,
    #[serde(with = "humane")]
    pub retention_interval: Duration,
    pub cache_capacity_bytes: u64,
    /// Memory for samples not yet sealed into chunks; past it the oldest are sealed early.
    #[serde(default = "open_chunk_bytes")]
    pub open_chunk_bytes: usize,
}

fn open_chunk_bytes() -> usize {
    crate::store::DEFAULT_OPEN_CHUNK_BYTES
}

/// A device bound to a bed in the config file (`[[devices]]`; the registry's type).
pub use crate::registry::model::StaticDevice;

impl Default for Config {
    fn default() -> Self {
        // The embedded file is checked by a unit test, so this cannot fail in a built binary.
        Config::from_toml(DEFAULT_CONFIG, "embedded default").expect("embedded default config")
    }
}

impl Config {
    /// Sets the HL7 listener's address (adding the adapter when the config has none).
    pub fn set_hl7_listen(&mut self, addr: SocketAddr) {
        for a in &mut self.adapters {
            if let AdapterConfig::Hl7Mllp(hl7) = a {
                hl7.listen = addr;
                return;
            }
        }
        let mut hl7 = wardhub_adapters::hl7::Hl7Settings::new(addr);
        hl7.peers.push(wardhub_adapters::hl7::peers::Peer {
            name: "this-host".into(),
            allow_from: vec!["127.0.0.1".into(), "::1".into()],
            certificate_cn: None,
            certificate_sha256: None,
            senders: Vec::new(),
            gateway: false,
            auto_create_devices: false,
        });
        self.adapters.push(AdapterConfig::Hl7Mllp(hl7));
    }

    /// The HL7 listener's configured address, if the adapter is on.
    pub fn hl7_listen(&self) -> Option<SocketAddr> {
        self.adapters.iter().find_map(|a| match a {
            AdapterConfig::Hl7Mllp(hl7) => Some(hl7.listen),
            _ => None,
        })
    }

    /// The embedded default merged with `path` (when given).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Config::merged(&text, &p.display().to_string())
            }
        }
    }

    /// The embedded default with `overlay` (TOML text) merged over it.
    pub fn merged(overlay: &str, origin: &str) -> Result<Config, ConfigError> {
        let text = merged_text(DEFAULT_CONFIG, overlay, origin)?;
        Config::from_toml(&text, origin)
    }

    fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges and ids.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !wardhub_adapters::model::is_valid_id(&self.hub.ward) {
            return bad(format!(
                "hub.ward {:?} must be 1-64 characters of [A-Za-z0-9._-]",
                self.hub.ward
            ));
        }
        if let Err(e) = self.emr.validate() {
            return Err(ConfigError::Invalid(e));
        }
        if let Err(e) = self.dissemination.chains() {
            return Err(ConfigError::Invalid(e));
        }
        if let Err(e) = self.uplink.validate() {
            return bad(e);
        }
        if self.uplink.enabled && !crate::uplink::config::is_topic_level(&self.hub.ward) {
            return bad(format!(
                "hub.ward {:?}: with the uplink on, a ward is 1-64 characters of [A-Za-z0-9_-] (a topic level)",
                self.hub.ward
            ));
        }
        if self.mqtt.max_packet_bytes < 1024 || self.mqtt.max_packet_bytes > 256 * 1024 * 1024 {
            return bad("mqtt.max_packet_bytes must be between 1024 and 268435456".into());
        }
        if self.ingest.max_payload_bytes == 0 {
            return bad("ingest.max_payload_bytes must be positive".into());
        }
        if self.ingest.max_observations_per_message == 0 {
            return bad("ingest.max_observations_per_message must be positive".into());
        }
        if self.ingest.queue_capacity == 0 {
            return bad("ingest.queue_capacity must be positive".into());
        }
        if self.mqtt.receive_maximum == 0 {
            return bad("mqtt.receive_maximum must be between 1 and 65535".into());
        }
        if self.ingest.max_inflight_observations < self.ingest.max_observations_per_message {
            return bad(format!(
                "ingest.max_inflight_observations must be at least \
                 ingest.max_observations_per_message ({}): one document must fit",
                self.ingest.max_observations_per_message
            ));
        }
        if self.store.flush_interval.is_zero() || self.store.flush_interval > Duration::from_secs(5)
        {
            return bad("store.flush_interval must be between 1ms and 5s".into());
        }
        if self.store.raw_retention < Duration::from_secs(3600) {
            return bad("store.raw_retention must be at least 1h".into());
        }
        if self.store.rollup_retention < self.store.raw_retention {
            return bad(
                "store.rollup_retention must not be shorter than store.raw_retention".into(),
            );
        }
        if self.store.open_chunk_bytes < 1 << 20 {
            return bad("store.open_chunk_bytes must be at least 1 MiB (1048576)".into());
        }
        if self.store.retention_interval < Duration::from_secs(1) {
            return bad("store.retention_interval must be at least 1s".into());
        }
        crate::alarms::AlarmEngine::new(&self.hub.ward, self.alarms.clone())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        crate::auth::Users::from_config(&self.users)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut kinds = std::collections::HashSet::new();
        for a in &self.adapters {
            if !kinds.insert(a.name()) {
                return bad(format!("adapters: {} is configured twice", a.name()));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in &self.devices {
            if !wardhub_adapters::model::is_valid_id(&d.id) {
                return bad(format!(
                    "devices: id {:?} must be 1-64 characters of [A-Za-z0-9._-]",
                    d.id
                ));
            }
            if !wardhub_adapters::model::is_valid_id(&d.bed) {
                return bad(format!(
                    "devices: bed {:?} of {} must be 1-64 characters of [A-Za-z0-9._-]",
                    d.bed, d.id
                ));
            }
            if !seen.insert(d.id.as_str()) {
                return bad(format!("devices: {} is listed twice", d.id));
            }
            if let Some(k) = &d.kind {
                crate::registry::model::check_kind(k)
                    .or_else(|e| bad(format!("devices: {}: {e}", d.id)))?;
            }
            if let Some(h) = &d.secret_sha256 {
                if crate::auth::parse_hex32(h).is_none() {
                    return bad(format!(
                        "devices: secret_sha256 of {} must be 64 hex digits",
                        d.id
                    ));
                }
            }
        }
        for a in &self.mqtt.service_accounts {
            if a.name.is_empty() || a.name.len() > 64 || a.name.chars().any(char::is_control) {
                return bad(format!(
                    "mqtt.service_accounts: name {:?} must be 1-64 printable characters",
                    a.name
                ));
            }
            if crate::auth::parse_hex32(&a.password_sha256).is_none() {
                return bad(format!(
                    "mqtt.service_accounts: password_sha256 of {} must be 64 hex digits",
                    a.name
                ));
            }
            if a.subscribe
                .iter()
                .any(|f| f.is_empty() || f.starts_with('$'))
            {
                return bad(format!(
                    "mqtt.service_accounts: {} has an empty or $-topic filter",
                    a.name
                ));
            }
        }
        Ok(())
    }
}

/// `overlay` merged over `default` (tables merge, arrays replace), as TOML text again.
pub fn merged_text(default: &str, overlay: &str, origin: &str) -> Result<String, ConfigError> {
    let parse = |text: &str, origin: &str| {
        text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })
    };
    let mut base = parse(default, "embedded default")?;
    merge(&mut base, parse(overlay, origin)?);
    toml::to_string(&base).map_err(|e| ConfigError::Invalid(e.to_string()))
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Durations: a humane string or integer seconds (one definition for every file).
pub use wardhub_adapters::duration::humane;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::default();
        assert_eq!(c.mqtt.listen.port(), 1883);
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.metrics.listen.port(), 9464);
        assert_eq!(c.store.raw_retention, Duration::from_secs(72 * 3600));
        assert!(!c.ingest.allow_unregistered_devices);
    }

    #[test]
    fn overlay_merges_and_arrays_replace() {
        let c = Config::merged(
            "[store]\nflush_interval = \"50ms\"\n[[devices]]\nid = \"mon-1\"\nbed = \"bed-01\"\n",
            "test",
        )
        .unwrap();
        assert_eq!(c.store.flush_interval, Duration::from_millis(50));
        assert_eq!(c.store.raw_retention, Duration::from_secs(72 * 3600));
        assert_eq!(c.devices.len(), 1);
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let e = Config::merged("[store]\nflush_intervall = \"50ms\"\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("flush_intervall"), "{e}");
        let e = Config::merged("[store]\nflush_interval = \"soon\"\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("duration \"soon\""), "{e}");
        let e = Config::merged("[mqtt]\nlisten = \"nowhere\"\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("x.toml"), "{e}");
        let e = Config::merged("[[devices]]\nid = \"a/b\"\nbed = \"1\"\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("a/b"), "{e}");
        let e = Config::merged("[store]\nflush_interval = \"0s\"\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("flush_interval"), "{e}");
    }
}
