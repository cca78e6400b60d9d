//! # wardhub
//!
//! A single-binary hub for the bedside devices of a hospital ward.
//!
//! Layout:
//! - [`config`]: the TOML configuration (embedded default `deploy/hub.toml`);
//! - [`broker`]: the embedded rumqttd broker, the public MQTT edge, the bus;
//! - [`pipeline`]: from adapters to the store (registry binding, batching, durability);
//! - [`device_messages`]: device status and events, applied by the pipeline;
//! - [`store`]: the sled time-series store (raw, latest, rollups, retention);
//! - [`alarms`]: the alarm engine;
//! - [`health`]: health checks of the internal parts (`/healthz`, `wardhub_component_up`);
//! - [`http`]: the REST API;
//! - [`server`]: starting and stopping a whole [`Hub`](server::Hub);
//! - [`cli`]: the `wardhub` command line, with `demo` and the `bench` commands (feature
//!   `tools`, on by default: the runtime above does not need them).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = wardhub::config::Config::default();
//! config.mqtt.listen = "127.0.0.1:0".parse()?;
//! config.http.listen = "127.0.0.1:0".parse()?;
//! let hub = wardhub::server::Hub::start(config).await?;
//! println!("MQTT on {}", hub.addresses.mqtt);
//! hub.shutdown().await;
//! # Ok(()) }
//! ```

pub mod alarms;
pub mod audit;
pub mod auth;
#[cfg(feature = "tools")]
pub mod bench;
pub mod broker;
#[cfg(feature = "tools")]
pub mod cli;
pub mod config;
#[cfg(feature = "tools")]
pub mod demo;
pub mod device_messages;
pub mod dissemination;
pub mod emr;
pub mod fd_budget;
pub mod health;
pub mod hospital;
pub mod http;
pub mod outbound;
pub mod patients;
pub mod pipeline;
pub mod registry;
pub mod server;
pub mod telemetry;
pub mod uplink;

/// The time-series store is its own crate ([`wardhub_store`]): it knows nothing of the hub.
pub use wardhub_store as store;

/// The device status contract is part of the canonical model (`wardhub_model`).
pub use wardhub_model::device_status;
