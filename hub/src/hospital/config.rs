//! `wardhub hospital`'s configuration: `deploy/hospital.toml`, embedded and the default, with a
//! user file merged over it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{humane, ConfigError};
use crate::uplink::config::{ClusterConnection, Protocol};

/// The embedded default.
pub const DEFAULT_HOSPITAL_CONFIG: &str = include_str!("../../../deploy/hospital.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HospitalConfig {
    pub hospital: HospitalSection,
    pub cluster: ClusterConnection,
    #[serde(default)]
    pub users: Vec<crate::auth::UserConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HospitalSection {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    #[serde(with = "humane")]
    pub keep: Duration,
    #[serde(with = "humane")]
    pub stale_after: Duration,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
}

impl HospitalConfig {
    /// The default with the file at `path` (if any) merged over it.
    pub fn load(path: Option<&Path>) -> Result<HospitalConfig, ConfigError> {
        let (text, origin) = match path {
            None => (String::new(), "embedded default".to_owned()),
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?,
                p.display().to_string(),
            ),
        };
        HospitalConfig::merged(&text, &origin)
    }

    pub fn merged(overlay: &str, origin: &str) -> Result<HospitalConfig, ConfigError> {
        let text = crate::config::merged_text(DEFAULT_HOSPITAL_CONFIG, overlay, origin)?;
        let c: HospitalConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::uplink::config::is_topic_level(&self.hospital.name) {
            return Err(ConfigError::Invalid(
                "hospital.name: 1-64 characters of [A-Za-z0-9_-]".into(),
            ));
        }
        if self.cluster.protocol == Protocol::V5 {
            return Err(ConfigError::Invalid(
                "cluster.protocol: the hospital view subscribes over MQTT 3.1.1 (\"3.1.1\" or \"auto\")".into(),
            ));
        }
        self.cluster
            .validate("cluster")
            .map_err(ConfigError::Invalid)
    }

    pub fn client_id(&self) -> String {
        self.cluster
            .client_id
            .clone()
            .unwrap_or_else(|| format!("wardhub-hospital-{}", self.hospital.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_loads_and_a_file_changes_only_its_keys() {
        let c = HospitalConfig::load(None).unwrap();
        assert_eq!(c.client_id(), "wardhub-hospital-main");
        let c = HospitalConfig::merged(
            "[cluster]\nservers = [\"mqtt://10.0.0.1:1883\", \"mqtt://10.0.0.2:1883\"]\n",
            "test",
        )
        .unwrap();
        assert_eq!(c.cluster.servers.len(), 2);
        assert_eq!(c.hospital.keep, Duration::from_secs(12 * 3600));
        let e = HospitalConfig::merged("[cluster]\nprotocol = \"5\"\n", "test").unwrap_err();
        assert!(e.to_string().contains("3.1.1"), "{e}");
        let e = HospitalConfig::merged("[hospital]\nnmae = \"x\"\n", "test").unwrap_err();
        assert!(e.to_string().contains("nmae"), "{e}");
    }
}
