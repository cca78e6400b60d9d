//! Which devices may send data, and to which bed their data belongs.
//!
//! The bed of an observation comes from the binding at the time it is received, never from
//! the device's own claim.

use std::collections::HashMap;

use crate::config::Config;

/// Where a device's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Registered and bound to a bed.
    Bound { ward: String, bed: String },
    /// Registered (or allowed unregistered) but not bound: data is stored without a bed.
    Unbound,
    /// Not registered, or retired: data is refused.
    Refused,
}

/// Device lookups the pipeline needs.
pub trait Registry: Send + Sync {
    fn resolve(&self, device: &str) -> Resolution;

    /// Whether the device is registered (whatever its binding).
    fn is_registered(&self, device: &str) -> bool;
}

/// The static bindings of the config file (`[[devices]]`).
#[derive(Debug, Clone)]
pub struct StaticRegistry {
    bindings: HashMap<String, (String, String)>,
    allow_unregistered: bool,
}

impl StaticRegistry {
    pub fn from_config(config: &Config) -> StaticRegistry {
        let bindings = config
            .devices
            .iter()
            .map(|d| {
                let ward = d.ward.clone().unwrap_or_else(|| config.hub.ward.clone());
                (d.id.clone(), (ward, d.bed.clone()))
            })
            .collect();
        StaticRegistry {
            bindings,
            allow_unregistered: config.ingest.allow_unregistered_devices,
        }
    }
}

impl Registry for StaticRegistry {
    fn resolve(&self, device: &str) -> Resolution {
        match self.bindings.get(device) {
            Some((ward, bed)) => Resolution::Bound {
                ward: ward.clone(),
                bed: bed.clone(),
            },
            None if self.allow_unregistered => Resolution::Unbound,
            None => Resolution::Refused,
        }
    }

    fn is_registered(&self, device: &str) -> bool {
        self.bindings.contains_key(device)
    }
}
