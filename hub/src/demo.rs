//! `wardhub demo`: the hub with a simulated ward.
//!
//! [`demo_config`] binds the simulated devices statically (before the hub starts); [`start`]
//! then runs the `demo` scenario of ward-sim in-process (30 beds × 6 devices, a desaturation,
//! a tachycardia, a nurse call, a probe-off and a pump occlusion in the first minutes, one
//! patient slowly deteriorating) against the hub's own MQTT listener over loopback, in real
//! time, until [`DemoWard::stop`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sha2::{Digest, Sha256};
use ward_sim::run::{Registration, RunConfig, Running, Targets, DEFAULT_SECRET_KEY};
use ward_sim::Scenario;

use crate::config::{Config, StaticDevice};
use crate::server::Hub;

/// Beds of the demo ward.
pub const DEMO_BEDS: usize = 30;

/// The demo scenario with `beds` beds (scripted events beyond them dropped).
fn scenario(beds: usize) -> Scenario {
    Scenario::builtin("demo").with_beds(beds.max(1))
}

/// `base` with a static binding for every simulated device of a `beds`-bed demo ward (kept
/// when the config binds the id already), with its kind and the SHA-256 of the MQTT password
/// ward-sim uses for it.
pub fn demo_config(mut base: Config, beds: usize) -> Config {
    let ward = ward_sim::Ward::new(scenario(beds), 0);
    for d in ward.devices() {
        if base.devices.iter().any(|s| s.id == d.id) {
            continue;
        }
        let secret = ward_sim::transport::secret_for(DEFAULT_SECRET_KEY, &d.id);
        let hash: String = Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let full = serde_json::json!({
            "id": d.id, "bed": d.bed, "kind": d.kind.as_str(), "secret_sha256": hash,
        });
        // A hub whose static devices know no kind or secret takes the id and bed alone.
        let device = serde_json::from_value::<StaticDevice>(full)
            .or_else(|_| serde_json::from_value(serde_json::json!({ "id": d.id, "bed": d.bed })));
        match device {
            Ok(device) => base.devices.push(device),
            Err(e) => tracing::warn!(device = %d.id, error = %e, "demo: cannot bind device"),
        }
    }
    base
}

/// A running demo ward.
#[derive(Debug)]
pub struct DemoWard {
    running: Running,
}

/// A listener address a local client can connect to (`0.0.0.0` → loopback).
fn reachable(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        let ip = match a.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, a.port())
    } else {
        a
    }
}

/// Starts the simulated ward against `hub`.
pub fn start(hub: &Hub, _config: &Config) -> DemoWard {
    let scenario = scenario(DEMO_BEDS);
    println!(
        "  demo       {} simulated beds, {} devices (scenario \"{}\")",
        scenario.beds,
        scenario.beds * scenario.devices.len(),
        scenario.name
    );
    let targets = Targets {
        mqtt: reachable(hub.addresses.mqtt),
        // The demo ward speaks MQTT JSON only (the scenario has no HL7 devices).
        hl7: None,
        http: Some(format!("http://{}", reachable(hub.addresses.http))),
    };
    let mut config = RunConfig::new(scenario, targets);
    // Devices are bound statically, with their secrets, by `demo_config`; with an admin token
    // in WARDHUB_TOKEN they are also registered through the API.
    config.token = std::env::var("WARDHUB_TOKEN").ok();
    config.registration = if config.token.is_some() {
        Registration::BestEffort
    } else {
        Registration::Off
    };
    config.seed = std::env::var("WARDHUB_DEMO_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    DemoWard {
        running: ward_sim::run::spawn(config),
    }
}

impl DemoWard {
    /// Stops the simulated devices (they finish what is in flight and disconnect).
    pub async fn stop(self) {
        match self.running.stop().await {
            Ok(report) => tracing::info!(
                sent = report.sent,
                acknowledged = report.acknowledged,
                errors = report.errors,
                "demo ward stopped"
            ),
            Err(e) => tracing::warn!(error = %e, "demo ward stopped with an error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulated_device_is_bound() {
        let c = demo_config(Config::default(), DEMO_BEDS);
        assert_eq!(c.devices.len(), DEMO_BEDS * 6);
        assert!(c
            .devices
            .iter()
            .any(|d| d.id == "b07-mon" && d.bed == "bed-07"));
        c.validate().unwrap();
        // Idempotent.
        assert_eq!(demo_config(c, DEMO_BEDS).devices.len(), DEMO_BEDS * 6);
    }
}
