//! Starting and stopping a whole hub: store, broker, adapters, pipeline, HTTP.
//!
//! [`Hub::start`] binds every listener first (so a taken port or an unusable data directory
//! fails start-up with a clear error), then starts the components. [`Hub::shutdown`] stops
//! them in the order that loses nothing: device connections close (no new data is
//! acknowledged), the bus delivers what the broker still holds, the adapters hand over what
//! they have, the pipeline drains, the store flushes, and the HTTP server stops last.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::adapter::{Adapter, AdapterContext, AdapterEvents, Sink};
use wardhub_adapters::model::{Clock, SystemClock, TimeLimits};
use wardhub_adapters::mqtt_json::{MqttJsonConfig, MqttJsonIngest};

use crate::alarms::AlarmService;
use crate::broker::bus::BrokerBus;
use crate::broker::{edge, Broker};
use crate::config::Config;
use crate::http::{self, AppState};
use crate::pipeline::Pipeline;
use crate::registry::SledRegistry;
use crate::store::{Retention, SledStore};
use crate::telemetry::Telemetry;

mod health_checks;
mod retention;

use health_checks::{register_health_checks, HealthParts};
use retention::spawn_retention;

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen for {what} on {addr}: {source} (is another wardhub or service using it?)"
    )]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("message bus: {0}")]
    Bus(String),
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// The addresses a running hub listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub mqtt: SocketAddr,
    /// The MQTT over TLS listener, when `[mqtt.tls]` is configured.
    pub mqtt_tls: Option<SocketAddr>,
    pub http: SocketAddr,
    /// The Prometheus metrics listener (`GET /metrics`).
    pub metrics: SocketAddr,
    /// The HL7 MLLP listener, when that adapter is on.
    pub hl7: Option<SocketAddr>,
}

/// A running hub.
pub struct Hub {
    pub addresses: Addresses,
    pub data_dir: PathBuf,
    pub store: Arc<SledStore>,
    pub telemetry: Arc<Telemetry>,
    pub alarms: Arc<AlarmService>,
    /// The internal parts' health (`GET /healthz`, `wardhub_component_up`).
    pub health: Arc<crate::health::Health>,
    announcer_task: JoinHandle<()>,
    edge_cancel: CancellationToken,
    edge_task: JoinHandle<()>,
    health_cancel: CancellationToken,
    bus: Arc<BrokerBus>,
    adapters_cancel: CancellationToken,
    adapter_tasks: Vec<(&'static str, JoinHandle<()>)>,
    sink: Option<Sink>,
    pipeline_task: JoinHandle<()>,
    flusher_cancel: CancellationToken,
    flusher_task: JoinHandle<()>,
    /// The store's fold (sealing chunks); awaited at shutdown so nothing holds the store after.
    folder_task: JoinHandle<()>,
    background_cancel: CancellationToken,
    http_cancel: CancellationToken,
    http_task: JoinHandle<()>,
    metrics_task: JoinHandle<()>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

impl Hub {
    /// Starts a hub with `config`; returns once every listener is bound and serving.
    pub async fn start(config: Config) -> Result<Hub, StartError> {
        Self::start_with_users(config, Vec::new()).await
    }

    /// Starts a hub that also accepts these `(name, role, plain token)` users (the demo and
    /// tests make their tokens at start).
    pub async fn start_with_users(
        config: Config,
        extra_users: Vec<(String, crate::auth::Role, String)>,
    ) -> Result<Hub, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kinds: Vec<&str> = crate::registry::model::KINDS
            .iter()
            .copied()
            .chain([crate::registry::model::UNSPECIFIED_KIND])
            .collect();
        let telemetry = Arc::new(Telemetry::with_device_kinds(&kinds));
        let retention = Retention {
            raw: config.store.raw_retention,
            rollup: config.store.rollup_retention,
        };
        let data_dir = config.hub.data_dir.clone();
        let store = {
            let dir = data_dir.clone();
            let cache = config.store.cache_capacity_bytes;
            tokio::task::spawn_blocking(move || SledStore::open(&dir, cache, retention))
                .await
                .map_err(|e| StartError::Task(e.to_string()))??
        };

        let caps = crate::fd_budget::split(&config);
        let http_listener = bind("HTTP", config.http.listen).await?;
        let metrics_listener = bind("metrics", config.metrics.listen).await?;
        let mqtt_listener = bind("MQTT", config.mqtt.listen).await?;
        // Adapters with listeners bind now, with the others, so a taken port stops start-up.
        let mut adapters: Vec<Box<dyn Adapter>> = Vec::new();
        // TLS configurations that follow their files.
        let mut reloaders: Vec<(&'static str, wardhub_adapters::tls::ReloadingTls)> = Vec::new();
        let mut hl7_addr = None;
        let mut mqtt_json = false;
        for a in &config.adapters {
            match a {
                // The MQTT JSON adapter runs inside the edge (it answers every device publish).
                crate::config::AdapterConfig::MqttJson => mqtt_json = true,
                crate::config::AdapterConfig::Hl7Mllp {
                    listen,
                    max_frame_bytes,
                    idle_timeout,
                    max_connections: _,
                    max_connections_per_source,
                    frame_timeout,
                    peers,
                    allow_unknown_peers,
                    tls,
                    utc_offset_minutes,
                    sentinels,
                    senders,
                    codes,
                } => {
                    let tls = match tls {
                        Some(t) => {
                            let r = wardhub_adapters::tls::ReloadingTls::load(t.files())
                                .map_err(|e| StartError::Task(format!("adapters.tls: {e}")))?;
                            reloaders.push(("HL7 MLLP", r.clone()));
                            Some(r)
                        }
                        None => None,
                    };
                    if *allow_unknown_peers {
                        tracing::warn!("HL7 allow_unknown_peers is ON: any host may send HL7 (lab setups only)");
                    }
                    let cfg = wardhub_adapters::hl7::Hl7Config {
                        listen: *listen,
                        max_frame_bytes: *max_frame_bytes,
                        idle_timeout: *idle_timeout,
                        max_connections: caps.hl7,
                        max_connections_per_source: *max_connections_per_source,
                        frame_timeout: *frame_timeout,
                        peers: peers.clone(),
                        allow_unknown_peers: *allow_unknown_peers,
                        tls,
                        default_utc_offset_minutes: *utc_offset_minutes,
                        sentinels: sentinels.clone(),
                        senders: senders
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        codes: codes.clone(),
                        ..Default::default()
                    };
                    let (adapter, addr) = wardhub_adapters::hl7::Hl7MllpAdapter::bind(cfg)
                        .await
                        .map_err(|e| match e {
                            wardhub_adapters::adapter::AdapterError::Bind { source, .. } => {
                                StartError::Bind {
                                    what: "HL7 MLLP",
                                    addr: *listen,
                                    source,
                                }
                            }
                            other => StartError::Task(other.to_string()),
                        })?;
                    hl7_addr = Some(addr);
                    adapters.push(Box::new(adapter));
                }
            }
        }
        let mqtt_tls = match &config.mqtt.tls {
            Some(t) => {
                let acceptor = wardhub_adapters::tls::ReloadingTls::load(t.files())
                    .map_err(|e| StartError::Task(format!("mqtt.tls: {e}")))?;
                reloaders.push(("MQTT TLS", acceptor.clone()));
                Some((bind("MQTT TLS", t.listen).await?, acceptor))
            }
            None => None,
        };
        let http_tls = match &config.http.tls {
            Some(t) => {
                let r = wardhub_adapters::tls::ReloadingTls::load(t.files())
                    .map_err(|e| StartError::Task(format!("http.tls: {e}")))?;
                reloaders.push(("HTTPS", r.clone()));
                Some(r)
            }
            None => None,
        };
        let addresses = Addresses {
            mqtt_tls: mqtt_tls.as_ref().and_then(|(l, _)| l.local_addr().ok()),
            hl7: hl7_addr,
            mqtt: mqtt_listener
                .local_addr()
                .map_err(|source| StartError::Bind {
                    what: "MQTT",
                    addr: config.mqtt.listen,
                    source,
                })?,
            http: http_listener
                .local_addr()
                .map_err(|source| StartError::Bind {
                    what: "HTTP",
                    addr: config.http.listen,
                    source,
                })?,
            metrics: metrics_listener
                .local_addr()
                .map_err(|source| StartError::Bind {
                    what: "metrics",
                    addr: config.metrics.listen,
                    source,
                })?,
        };

        let mqtt_cfg = config.mqtt.clone();
        let broker = tokio::task::spawn_blocking(move || Broker::start(&mqtt_cfg))
            .await
            .map_err(|e| StartError::Task(e.to_string()))??;
        let bus = BrokerBus::start(
            broker.links.clone(),
            broker.internal_v4,
            &broker.internal_login,
            4096,
        )
        .map_err(|e| StartError::Bus(e.to_string()))?;

        if config.ingest.allow_unregistered_devices {
            tracing::warn!(
                "ingest.allow_unregistered_devices is ON: data from any device is accepted \
                 (without a bed). This is for lab setups only."
            );
        }
        let registry = {
            let (db, ward, clock) = (store.db().clone(), config.hub.ward.clone(), clock.clone());
            let (open, seeds) = (
                config.ingest.allow_unregistered_devices,
                config.devices.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let r = SledRegistry::open(&db, &ward, open, clock)?;
                r.seed(&seeds);
                Ok::<_, crate::registry::RegistryError>(Arc::new(r))
            })
            .await
            .map_err(|e| StartError::Task(e.to_string()))?
            .map_err(|e| StartError::Task(format!("registry: {e}")))?
        };
        let mut users = crate::auth::Users::from_config(&config.users)
            .map_err(|e| StartError::Task(e.to_string()))?;
        for (name, role, token) in &extra_users {
            users.add(name, *role, token);
        }

        // Alarms: restored before any data arrives.
        let (alarms, announcer_task) = AlarmService::start(
            store.db(),
            &config.hub.ward,
            config.alarms.clone(),
            bus.clone(),
            clock.clone(),
            telemetry.clone(),
        )
        .map_err(|e| StartError::Task(format!("alarms: {e}")))?;
        {
            // "Alarms in the last 24 h" of the biomed status views come from the audit log.
            let alarms = alarms.clone();
            registry.set_alarm_counter(Arc::new(move |bed, from, to| {
                alarms.history(from, to, Some(bed), 100_000).ok().map(|t| {
                    t.iter()
                        .filter(|t| t.event == crate::alarms::Event::Raised)
                        .count() as u64
                })
            }));
        }
        let background_cancel = CancellationToken::new();
        let ticker_task = tokio::spawn(alarms.clone().run_ticker(background_cancel.clone()));

        // Pipeline and flusher.
        let (sink, rx) = Sink::channel(config.ingest.queue_capacity);
        let progress = Arc::new(std::sync::atomic::AtomicI64::new(clock.now_ms()));
        let pipeline = Pipeline {
            store: store.clone(),
            registry: registry.clone(),
            telemetry: telemetry.clone(),
            clock: clock.clone(),
            progress: progress.clone(),
            observers: vec![alarms.clone() as Arc<dyn crate::pipeline::StoredObserver>],
            max_future_ms: i64::try_from(config.ingest.max_future_skew.as_millis())
                .unwrap_or(i64::MAX),
            clocks: Default::default(),
            messages: Some(Arc::new(crate::device_messages::ToRegistryAndAlarms {
                registry: registry.clone(),
                alarms: alarms.clone(),
            })),
        };
        let pipeline_task = tokio::spawn(pipeline.run(rx));
        let flusher_cancel = CancellationToken::new();
        let flusher_task = {
            let t = telemetry.clone();
            tokio::spawn(store.clone().run_flusher(
                config.store.flush_interval,
                flusher_cancel.clone(),
                move |r| match r {
                    Ok(took) => t.observe_flush(took),
                    Err(e) => {
                        t.store_errors.inc();
                        tracing::error!(error = %e, "flush failed");
                    }
                },
            ))
        };
        store.set_open_chunk_limit(config.store.open_chunk_bytes);
        let folder_task = {
            let clock = clock.clone();
            tokio::spawn(store.clone().run_folder(
                std::time::Duration::from_secs(1),
                move || clock.now_ms(),
                background_cancel.clone(),
            ))
        };
        spawn_retention(
            store.clone(),
            telemetry.clone(),
            clock.clone(),
            config.store.retention_interval,
            background_cancel.clone(),
        );

        // Adapters.
        let edge_cancel = CancellationToken::new();
        let adapters_cancel = CancellationToken::new();
        let events = Arc::new(crate::registry::events::RegistryEvents::new(
            telemetry.clone(),
            registry.clone(),
        )) as Arc<dyn AdapterEvents>;
        let limits = TimeLimits {
            max_future_ms: i64::try_from(config.ingest.max_future_skew.as_millis())
                .unwrap_or(i64::MAX),
            max_age_ms: i64::try_from(config.store.raw_retention.as_millis()).unwrap_or(i64::MAX),
        };
        let ctx = AdapterContext {
            sink: sink.clone(),
            bus: bus.clone(),
            events: events.clone(),
            clock: clock.clone(),
            limits,
            cancel: adapters_cancel.clone(),
        };
        let mqtt_ingest = mqtt_json.then(|| {
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
        });
        let mut adapter_tasks = Vec::new();
        for adapter in adapters {
            let name = adapter.name();
            let ctx = ctx.clone();
            // The bus ends its subscriptions while draining, before the adapters are
            // cancelled: an adapter stopping then is part of the shutdown, not a failure.
            let cancel = edge_cancel.clone();
            adapter_tasks.push((
                name,
                tokio::spawn(async move {
                    match adapter.run(ctx).await {
                        Ok(()) => tracing::debug!(adapter = name, "adapter stopped"),
                        Err(e) if cancel.is_cancelled() => {
                            tracing::debug!(adapter = name, error = %e, "adapter stopped")
                        }
                        Err(e) => tracing::error!(adapter = name, error = %e, "adapter failed"),
                    }
                }),
            ));
        }
        drop(ctx);
        // Adapters that subscribe to the bus are listening before devices can connect.
        bus.wait_subscribed().await;

        let http_cancel = CancellationToken::new();
        let (tls_listener, tls_acceptor) = match mqtt_tls {
            Some((l, a)) => (Some(l), Some(a)),
            None => (None, None),
        };
        // Retiring a device or rotating its credentials closes its live MQTT session.
        let mqtt_sessions = Arc::new(edge::Sessions::default());
        {
            let sessions = mqtt_sessions.clone();
            registry.on_credentials_changed(Box::new(move |id| {
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
        // Device messages go on to the broker only when some integration may subscribe to
        // them (rumqttd drops a publish nobody subscribed to, but the relay costs a hop).
        let forward = service_accounts
            .iter()
            .flat_map(|a| a.subscribe.iter())
            .any(|f| edge::acl::filters_overlap(f, "wardhub/v1/devices/+/+"))
            .then(|| {
                let bus = bus.clone();
                let dropped = telemetry.mqtt_forward_dropped.clone();
                Arc::new(move |topic: &str, payload: bytes::Bytes, retain: bool| {
                    if bus.forward(topic, payload, retain).is_err() {
                        dropped.inc();
                    }
                }) as edge::Forward
            });
        let edge_task = tokio::spawn(edge::run(
            mqtt_listener,
            tls_listener,
            edge::EdgeConfig {
                registry: registry.clone(),
                service_accounts,
                internal_login: Some(broker.internal_login.clone()),
                tls: tls_acceptor,
                internal_v4: broker.internal_v4,
                internal_v5: broker.internal_v5,
                max_packet_bytes: config.mqtt.max_packet_bytes,
                connect_timeout: config.mqtt.connect_timeout,
                limiter: wardhub_adapters::net::ConnectionLimiter::new(
                    caps.mqtt,
                    config.mqtt.max_connections_per_source,
                ),
                receive_maximum: config.mqtt.receive_maximum,
                ingest: mqtt_ingest,
                sessions: mqtt_sessions.clone(),
                relays: Arc::default(),
                forward,
            },
            telemetry.clone(),
            edge_cancel.clone(),
        ));

        http::metrics::collect_on_scrape(&telemetry, &registry, &store, &data_dir);
        let metrics_task =
            http::metrics::serve(metrics_listener, telemetry.clone(), http_cancel.clone());
        let health = crate::health::Health::new(
            telemetry.component_up.clone(),
            config.hub.exit_after_component_down,
        );
        register_health_checks(
            &health,
            HealthParts {
                broker: &broker,
                bus: &bus,
                store: &store,
                sink: &sink,
                progress: &progress,
                clock: &clock,
                edge: &edge_task,
                pipeline: &pipeline_task,
                flusher: &flusher_task,
                announcer: &announcer_task,
                ticker: &ticker_task,
            },
        );
        let health_cancel = CancellationToken::new();
        tokio::spawn(health.clone().run(health_cancel.clone()));
        let (revoked, audit, sessions) = {
            let db = store.db().clone();
            let ttl = i64::try_from(config.http.session_ttl.as_millis()).unwrap_or(i64::MAX);
            let now = clock.now_ms();
            tokio::task::spawn_blocking(move || {
                Ok::<_, sled::Error>((
                    crate::auth::Revocations::open(&db)?,
                    crate::audit::AccessAudit::open(&db)?,
                    crate::auth::Sessions::open(&db, ttl, 10_000, now)?,
                ))
            })
            .await
            .map_err(|e| StartError::Task(e.to_string()))?
            .map_err(|e| StartError::Task(format!("auth store: {e}")))?
        };
        let app = http::router(AppState {
            health: health.clone(),
            store: store.clone(),
            registry,
            telemetry: telemetry.clone(),
            clock,
            ward: config.hub.ward.clone(),
            users: Arc::new(users),
            revoked: Arc::new(revoked),
            sessions: Arc::new(sessions),
            login_limiter: Arc::new(crate::auth::FailureLimiter::new(
                config.http.login_failures,
                config.http.login_window,
            )),
            audit: Arc::new(audit),
            tls: http_tls.is_some(),
            alarms: alarms.clone(),
            shutdown: http_cancel.clone(),
        });
        for (what, r) in &reloaders {
            r.spawn_reloader(what, config.hub.tls_reload_interval, http_cancel.clone());
        }
        let http_task = tokio::spawn(http::serve::run(
            http_listener,
            app,
            http::serve::ServeOptions {
                limiter: wardhub_adapters::net::ConnectionLimiter::new(
                    caps.http,
                    config.http.max_connections_per_source,
                ),
                header_timeout: config.http.header_timeout,
                request_timeout: config.http.request_timeout,
                tls: http_tls,
            },
            telemetry.clone(),
            http_cancel.clone(),
        ));

        Ok(Hub {
            addresses,
            data_dir,
            store,
            telemetry,
            alarms,
            health,
            announcer_task,
            edge_cancel,
            edge_task,
            health_cancel,
            bus,
            adapters_cancel,
            adapter_tasks,
            sink: Some(sink),
            pipeline_task,
            flusher_cancel,
            flusher_task,
            folder_task,
            background_cancel,
            http_cancel,
            http_task,
            metrics_task,
        })
    }

    /// Stops the hub without losing acknowledged data (see the module docs for the order).
    pub async fn shutdown(mut self) {
        const STEP: Duration = Duration::from_secs(10);
        let step = |what: &'static str, r: Result<(), tokio::time::error::Elapsed>| {
            if r.is_err() {
                tracing::warn!("shutdown: {what} did not finish within {STEP:?}");
            }
        };
        // Parts stop on purpose from here on: they are no longer checked.
        self.health_cancel.cancel();
        self.edge_cancel.cancel();
        step(
            "device connections",
            tokio::time::timeout(STEP, async {
                let _ = (&mut self.edge_task).await;
            })
            .await,
        );
        step(
            "bus drain",
            tokio::time::timeout(STEP, self.bus.drain()).await,
        );
        self.adapters_cancel.cancel();
        for (name, task) in self.adapter_tasks.drain(..) {
            if tokio::time::timeout(STEP, task).await.is_err() {
                tracing::warn!(adapter = name, "shutdown: adapter did not stop in time");
            }
        }
        self.sink.take();
        step(
            "pipeline drain",
            tokio::time::timeout(STEP, async {
                let _ = (&mut self.pipeline_task).await;
            })
            .await,
        );
        self.background_cancel.cancel();
        step(
            "store fold",
            tokio::time::timeout(STEP, async {
                let _ = (&mut self.folder_task).await;
            })
            .await,
        );
        step(
            "alarm announcements",
            tokio::time::timeout(STEP, self.alarms.announced()).await,
        );
        self.flusher_cancel.cancel();
        step(
            "final flush",
            tokio::time::timeout(STEP, async {
                let _ = (&mut self.flusher_task).await;
            })
            .await,
        );
        self.bus.close().await;
        self.announcer_task.abort();
        self.http_cancel.cancel();
        step(
            "HTTP server",
            tokio::time::timeout(STEP, async {
                let _ = (&mut self.http_task).await;
                let _ = (&mut self.metrics_task).await;
            })
            .await,
        );
        tracing::info!("wardhub stopped; data flushed");
    }
}
