//! `wardhub demo`: the hub with a simulated ward.
//!
//! Until the ward simulator lands this only logs that no devices are simulated.

use crate::config::Config;
use crate::server::Hub;

/// A running demo ward.
#[derive(Debug)]
pub struct DemoWard;

/// Starts the simulated ward against `hub`.
pub fn start(_hub: &Hub, _config: &Config) -> DemoWard {
    tracing::info!("demo: the ward simulator is not part of this build yet; the hub runs empty");
    DemoWard
}

impl DemoWard {
    pub async fn stop(self) {}
}
