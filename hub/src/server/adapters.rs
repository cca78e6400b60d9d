//! The protocol adapters of `[[adapters]]`: each configuration builds its adapter (binding
//! its listener at start-up, with the hub's own), and the built adapters run as tasks.
//! Adding an adapter is one arm in `AdapterConfig::build`.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::adapter::{Adapter, AdapterContext, AdapterError};
use wardhub_adapters::tls::ReloadingTls;

use super::listeners::load_tls;
use super::StartError;
use crate::config::AdapterConfig;
use crate::fd_budget::Caps;

/// What one `[[adapters]]` entry became.
pub(super) enum Built {
    /// The MQTT JSON adapter runs inside the edge: it answers every device publish.
    InEdge,
    /// An adapter with its own listener, bound.
    Listening {
        adapter: Box<dyn Adapter>,
        addr: SocketAddr,
        /// Its TLS configuration, to reload when the files change.
        tls: Option<ReloadingTls>,
    },
}

impl AdapterConfig {
    /// Builds the adapter and binds its listener; `caps` is the hub's file-descriptor split.
    pub(super) async fn build(&self, caps: &Caps) -> Result<Built, StartError> {
        match self {
            AdapterConfig::MqttJson => Ok(Built::InEdge),
            AdapterConfig::Hl7Mllp(settings) => {
                let tls = match &settings.tls {
                    Some(t) => Some(load_tls("adapters.tls", t.clone())?),
                    None => None,
                };
                if settings.allow_unknown_peers {
                    tracing::warn!(
                        "HL7 allow_unknown_peers is ON: any host may send HL7 (lab setups only)"
                    );
                }
                let cfg = settings.to_config(caps.hl7, tls.clone());
                let (adapter, addr) = wardhub_adapters::hl7::Hl7MllpAdapter::bind(cfg)
                    .await
                    .map_err(|e| match e {
                        AdapterError::Bind { source, .. } => StartError::Bind {
                            what: "HL7 MLLP",
                            addr: settings.listen,
                            source,
                        },
                        source => StartError::Adapter {
                            name: "hl7_mllp",
                            source,
                        },
                    })?;
                Ok(Built::Listening {
                    adapter: Box::new(adapter),
                    addr,
                    tls,
                })
            }
        }
    }
}

/// Runs each adapter until `ctx.cancel`. An adapter that ends with an error once `draining`
/// is cancelled (the bus ends its subscriptions while draining, before the adapters are
/// cancelled) stopped as part of the shutdown, not a failure.
pub(super) fn spawn(
    adapters: Vec<Box<dyn Adapter>>,
    ctx: &AdapterContext,
    draining: &CancellationToken,
) -> Vec<(&'static str, JoinHandle<()>)> {
    adapters
        .into_iter()
        .map(|adapter| {
            let name = adapter.name();
            let ctx = ctx.clone();
            let draining = draining.clone();
            let task = tokio::spawn(async move {
                match adapter.run(ctx).await {
                    Ok(()) => tracing::debug!(adapter = name, "adapter stopped"),
                    Err(e) if draining.is_cancelled() => {
                        tracing::debug!(adapter = name, error = %e, "adapter stopped")
                    }
                    Err(e) => tracing::error!(adapter = name, error = %e, "adapter failed"),
                }
            });
            (name, task)
        })
        .collect()
}
