//! The device side's wiring: the MQTT JSON adapter inside the edge, and the edge itself
//! (sessions that close when credentials change, service accounts, the copy of device
//! messages to the broker for integrations).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::adapter::{AdapterEvents, Sink};
use wardhub_adapters::model::{Clock, TimeLimits};
use wardhub_adapters::mqtt_json::{MqttJsonConfig, MqttJsonIngest};
use wardhub_adapters::tls::ReloadingTls;

use crate::broker::bus::BrokerBus;
use crate::broker::{edge, Broker};
use crate::config::Config;
use crate::fd_budget::Caps;
use crate::registry::SledRegistry;
use crate::telemetry::Telemetry;

/// The MQTT JSON adapter, run by the edge for every device publish.
pub(super) fn mqtt_json_ingest(
    config: &Config,
    limits: TimeLimits,
    sink: &Sink,
    events: &Arc<dyn AdapterEvents>,
    clock: &Arc<dyn Clock>,
) -> Arc<MqttJsonIngest> {
    Arc::new(MqttJsonIngest::new(
        MqttJsonConfig {
            max_payload_bytes: config.ingest.max_payload_bytes,
            max_observations: config.ingest.max_observations_per_message,
            max_inflight: config.ingest.max_inflight_observations,
        },
        limits,
        sink.clone(),
        events.clone(),
        clock.clone(),
    ))
}

/// What the edge is made of.
pub(super) struct EdgeParts<'a> {
    pub config: &'a Config,
    pub caps: &'a Caps,
    pub listener: TcpListener,
    pub tls: Option<(TcpListener, ReloadingTls)>,
    pub broker: &'a Broker,
    pub bus: &'a Arc<BrokerBus>,
    pub registry: &'a Arc<SledRegistry>,
    pub telemetry: &'a Arc<Telemetry>,
    /// The MQTT JSON adapter, when `[[adapters]]` has it.
    pub mqtt_json: Option<Arc<MqttJsonIngest>>,
    pub cancel: CancellationToken,
}

/// Starts the edge on the MQTT listeners; it runs until `cancel`.
pub(super) fn spawn_edge(p: EdgeParts<'_>) -> JoinHandle<()> {
    let config = p.config;
    let (tls_listener, tls_acceptor) = match p.tls {
        Some((l, a)) => (Some(l), Some(a)),
        None => (None, None),
    };
    // Retiring a device or rotating its credentials closes its live MQTT session.
    let sessions = Arc::new(edge::Sessions::default());
    {
        let sessions = sessions.clone();
        p.registry.on_credentials_changed(Box::new(move |id| {
            if sessions.disconnect(id) {
                tracing::info!(device = id, "credentials changed: live MQTT session closed");
            }
        }));
    }
    let service_accounts: Vec<edge::ServiceLogin> = config
        .mqtt
        .service_accounts
        .iter()
        .filter_map(edge::ServiceLogin::from_config)
        .collect();
    // Device messages go on to the broker only when some integration may subscribe to them
    // (rumqttd drops a publish nobody subscribed to, but the relay costs a hop).
    let forward = service_accounts
        .iter()
        .flat_map(|a| a.subscribe.iter())
        .any(|f| edge::acl::filters_overlap(f, "wardhub/v1/devices/+/+"))
        .then(|| {
            let bus = p.bus.clone();
            let dropped = p.telemetry.mqtt_forward_dropped.clone();
            Arc::new(move |topic: &str, payload: bytes::Bytes, retain: bool| {
                if bus.forward(topic, payload, retain).is_err() {
                    dropped.inc();
                }
            }) as edge::Forward
        });
    tokio::spawn(edge::run(
        p.listener,
        tls_listener,
        edge::EdgeConfig {
            registry: p.registry.clone(),
            service_accounts,
            internal_login: Some(p.broker.internal_login.clone()),
            tls: tls_acceptor,
            internal_v4: p.broker.internal_v4,
            internal_v5: p.broker.internal_v5,
            max_packet_bytes: config.mqtt.max_packet_bytes,
            connect_timeout: config.mqtt.connect_timeout,
            limiter: wardhub_adapters::net::ConnectionLimiter::new(
                p.caps.mqtt,
                config.mqtt.max_connections_per_source,
            ),
            receive_maximum: config.mqtt.receive_maximum,
            ingest: p.mqtt_json,
            sessions,
            relays: Arc::default(),
            forward,
        },
        p.telemetry.clone(),
        p.cancel,
    ))
}
