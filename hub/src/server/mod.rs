//! Starting and stopping a whole hub: store, broker, adapters, pipeline, HTTP.
//!
//! [`Hub::start`] binds every listener first ([`listeners`]: a taken port or an unusable data
//! directory fails start-up with a clear [`StartError`]), then starts the components in the
//! order data flows backwards (store, broker and bus, registry, alarms, pipeline, adapters,
//! the device edge, HTTP), and declares, as it goes, the [`Shutdown`] that stops them in the
//! order that loses nothing: device connections close (no new data is acknowledged), the bus
//! delivers what the broker still holds, the adapters hand over what they have, the pipeline
//! drains, the store seals and flushes, and the HTTP server stops last.
//!
//! Layout: [`listeners`] (bind, TLS), [`adapters`] (each `[[adapters]]` entry builds itself),
//! [`devices`] (the MQTT edge's wiring), [`web`] (the API and metrics servers),
//! [`shutdown`], `retention.rs` (the retention task), `health_checks.rs` (what "up" means
//! for each internal part), [`error`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wardhub_adapters::adapter::{AdapterContext, AdapterEvents, Sink};
use wardhub_adapters::model::{Clock, SystemClock, TimeLimits};

use crate::alarms::AlarmService;
use crate::broker::bus::BrokerBus;
use crate::broker::Broker;
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::registry::SledRegistry;
use crate::store::{Retention, SledStore};
use crate::telemetry::Telemetry;

pub mod adapters;
pub mod devices;
pub mod error;
mod health_checks;
pub mod listeners;
mod retention;
pub mod shutdown;
pub mod web;

use error::blocking;
pub use error::StartError;
use health_checks::{register_health_checks, HealthParts};
pub use listeners::Addresses;
use retention::spawn_retention;
pub use shutdown::Shutdown;

/// How long one shutdown step may take before the next one starts anyway.
const SHUTDOWN_STEP: Duration = Duration::from_secs(10);

/// A running hub.
pub struct Hub {
    pub addresses: Addresses,
    pub data_dir: PathBuf,
    pub store: Arc<SledStore>,
    pub telemetry: Arc<Telemetry>,
    pub alarms: Arc<AlarmService>,
    /// The internal parts' health (`GET /healthz`, `wardhub_component_up`).
    pub health: Arc<crate::health::Health>,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("addresses", &self.addresses)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
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
            let (dir, cache) = (data_dir.clone(), config.store.cache_capacity_bytes);
            blocking("open the store", move || {
                SledStore::open(&dir, cache, retention)
            })
            .await?
        };

        // Every listener, the adapters' too, is bound before anything starts.
        let caps = crate::fd_budget::split(&config);
        let mut listeners = listeners::Listeners::bind(&config).await?;
        let mut built = Vec::new();
        let mut hl7_addr = None;
        let mut mqtt_json = false;
        for a in &config.adapters {
            match a.build(&caps).await? {
                adapters::Built::InEdge => mqtt_json = true,
                adapters::Built::Listening { adapter, addr, tls } => {
                    hl7_addr = Some(addr);
                    if let Some(tls) = tls {
                        listeners.reloaders.push(("HL7 MLLP", tls));
                    }
                    built.push(adapter);
                }
            }
        }
        let mut addresses = listeners.addresses(&config, hl7_addr)?;

        let mqtt_cfg = config.mqtt.clone();
        let broker = blocking("start the broker", move || Broker::start(&mqtt_cfg)).await?;
        let bus = BrokerBus::start(
            broker.links.clone(),
            broker.internal_v4,
            &broker.internal_login,
            4096,
        )?;

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
            blocking("open the registry", move || {
                let r = SledRegistry::open(&db, &ward, open, clock)?;
                r.seed(&seeds);
                Ok::<_, crate::registry::RegistryError>(Arc::new(r))
            })
            .await?
        };
        let mut users = crate::auth::Users::from_config(&config.users)?;
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
        )?;
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
        // The uplink's outbox, before any data or alarm can be queued to it.
        let uplink = if config.uplink.enabled {
            let (cfg, ward, store2, registry2, clock2) = (
                config.uplink.clone(),
                config.hub.ward.clone(),
                store.clone(),
                telemetry.registry.clone(),
                clock.clone(),
            );
            let u = blocking("open the uplink outbox", move || {
                crate::uplink::Uplink::open(cfg, &ward, &store2, &registry2, clock2)
            })
            .await?;
            alarms.also_tell(u.clone());
            Some(u)
        } else {
            None
        };
        // Patient context (ADT feed, manual association) and the EMR exports: open before any
        // data arrives, so every stored value meets the context it belongs to.
        let patients = {
            let (cfg, ward, store2, registry2, clock2, prom) = (
                config.patients.clone(),
                config.hub.ward.clone(),
                store.clone(),
                registry.clone(),
                clock.clone(),
                telemetry.registry.clone(),
            );
            blocking("open the patient context", move || {
                crate::patients::PatientContext::open(cfg, &ward, store2, registry2, clock2, &prom)
            })
            .await?
        };
        if let Some(adt) = &config.patients.adt {
            let handler =
                patients.clone() as Arc<dyn wardhub_adapters::hl7::adt_listener::AdtHandler>;
            let (listener, addr) =
                wardhub_adapters::hl7::adt_listener::AdtListener::bind(adt.clone(), handler)
                    .await
                    .map_err(|source| StartError::Adapter {
                        name: wardhub_adapters::hl7::adt_listener::ADT_NAME,
                        source,
                    })?;
            addresses.adt = Some(addr);
            built.push(Box::new(listener));
        }
        let emr = if config.emr.enabled() {
            let (cfg, store2, patients2, prom, clock2) = (
                config.emr.clone(),
                store.clone(),
                patients.clone(),
                telemetry.registry.clone(),
                clock.clone(),
            );
            let beds: Vec<String> = registry.beds(None).into_iter().map(|b| b.bed).collect();
            Some(
                blocking("open the EMR outbox", move || {
                    crate::emr::Emr::open(cfg, &store2, beds, patients2, &prom, clock2)
                })
                .await?,
            )
        } else {
            None
        };
        // Alarms to a person: told of every committed transition, from the first.
        let dissemination = if config.dissemination.enabled {
            let d = crate::dissemination::Disseminator::open(
                &config.dissemination,
                &config.hub.ward,
                users.names_with(crate::auth::Permission::Acknowledge),
                store.db(),
                bus.clone() as Arc<dyn wardhub_adapters::adapter::Bus>,
                clock.clone(),
                &telemetry.registry,
                Some(patients.clone()),
            )?;
            alarms.also_tell(d.clone());
            d.resume(alarms.open_alarms());
            if let Some(status) = config
                .dissemination
                .acm
                .as_ref()
                .and_then(|a| a.status.clone())
            {
                let handler =
                    d.clone() as Arc<dyn wardhub_adapters::acm::status_listener::StatusHandler>;
                let (listener, addr) =
                    wardhub_adapters::acm::status_listener::StatusListener::bind(status, handler)
                        .await
                        .map_err(|source| StartError::Adapter {
                            name: wardhub_adapters::acm::status_listener::ACM_NAME,
                            source,
                        })?;
                addresses.acm_status = Some(addr);
                built.push(Box::new(listener));
            }
            Some(d)
        } else {
            None
        };
        let background_cancel = CancellationToken::new();
        let ticker_task = tokio::spawn(alarms.clone().run_ticker(background_cancel.clone()));

        // Pipeline, flusher, fold and retention.
        let (sink, rx) = Sink::channel(config.ingest.queue_capacity);
        let progress = Arc::new(std::sync::atomic::AtomicI64::new(clock.now_ms()));
        let max_future_ms =
            i64::try_from(config.ingest.max_future_skew.as_millis()).unwrap_or(i64::MAX);
        let pipeline = Pipeline {
            store: store.clone(),
            registry: registry.clone(),
            telemetry: telemetry.clone(),
            clock: clock.clone(),
            progress: progress.clone(),
            observers: vec![alarms.clone() as Arc<dyn crate::pipeline::StoredObserver>],
            forwarders: uplink
                .iter()
                .map(|u| u.clone() as Arc<dyn crate::pipeline::StoredObserver>)
                .chain(
                    emr.iter()
                        .map(|e| e.clone() as Arc<dyn crate::pipeline::StoredObserver>),
                )
                .collect(),
            max_future_ms,
            clocks: Default::default(),
            messages: Some(Arc::new(crate::device_messages::ToRegistryAndAlarms {
                registry: registry.clone(),
                alarms: alarms.clone(),
                uplink: uplink.clone(),
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
                Duration::from_secs(1),
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
            max_future_ms,
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
        let adapter_tasks = adapters::spawn(built, &ctx, &edge_cancel);
        drop(ctx);
        // Adapters that subscribe to the bus are listening before devices can connect.
        bus.wait_subscribed().await;

        // The device edge.
        let edge_task = devices::spawn_edge(devices::EdgeParts {
            config: &config,
            caps: &caps,
            listener: listeners.mqtt,
            tls: listeners.mqtt_tls,
            broker: &broker,
            bus: &bus,
            registry: &registry,
            telemetry: &telemetry,
            mqtt_json: mqtt_json
                .then(|| devices::mqtt_json_ingest(&config, limits, &sink, &events, &clock)),
            cancel: edge_cancel.clone(),
        });

        // Health, then the API and metrics servers.
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
        let uplink_cancel = CancellationToken::new();
        let uplink_tasks = match &uplink {
            Some(u) => {
                u.set_health(health.clone());
                u.spawn(store.clone(), uplink_cancel.clone())?
            }
            None => Vec::new(),
        };
        let dissemination_task = dissemination
            .as_ref()
            .map(|d| d.spawn(background_cancel.clone()));
        let emr_cancel = CancellationToken::new();
        let mut emr_tasks = match &emr {
            Some(e) => e.spawn(store.clone(), emr_cancel.clone())?,
            None => Vec::new(),
        };
        // The Alarm Manager's sender stops with the EMR senders, before the final flush.
        emr_tasks.extend(
            dissemination
                .as_ref()
                .and_then(|d| d.spawn_acm(store.clone(), emr_cancel.clone())),
        );
        let health_cancel = CancellationToken::new();
        tokio::spawn(health.clone().run(health_cancel.clone()));
        let http_cancel = CancellationToken::new();
        let web_tasks = web::start(web::WebParts {
            config: &config,
            caps: &caps,
            http: listeners.http,
            metrics: listeners.metrics,
            tls: listeners.http_tls,
            reloaders: listeners.reloaders,
            data_dir: &data_dir,
            health: &health,
            store: &store,
            registry,
            telemetry: &telemetry,
            clock,
            users,
            alarms: &alarms,
            patients: &patients,
            emr: emr.as_ref(),
            dissemination: dissemination.as_ref(),
            cancel: http_cancel.clone(),
        })
        .await?;

        // The order that loses nothing (module docs). Parts stop on purpose from the first
        // step on: they are no longer checked.
        let mut shutdown = Shutdown::new(SHUTDOWN_STEP);
        shutdown.then("health checks", async move { health_cancel.cancel() });
        shutdown.stop("device connections", edge_cancel, [edge_task]);
        {
            let bus = bus.clone();
            shutdown.then("bus drain", async move { bus.drain().await });
        }
        for (name, task) in adapter_tasks {
            shutdown.stop(name, adapters_cancel.clone(), [task]);
        }
        shutdown.then("pipeline drain", async move {
            drop(sink);
            let _ = pipeline_task.await;
        });
        shutdown.stop(
            "store fold",
            background_cancel,
            std::iter::once(folder_task).chain(dissemination_task),
        );
        {
            let alarms = alarms.clone();
            shutdown.then(
                "alarm announcements",
                async move { alarms.announced().await },
            );
        }
        // The uplink sends until the last alarm is announced; what it has not sent waits in
        // the outbox, and the final flush keeps what the broker acknowledged out of it.
        shutdown.stop("uplink", uplink_cancel, uplink_tasks);
        // The EMR senders stop before the final flush too: what they had acknowledged leaves
        // the outbox for good.
        shutdown.stop("EMR export and alarm manager", emr_cancel, emr_tasks);
        shutdown.stop("final flush", flusher_cancel, [flusher_task]);
        shutdown.then("bus close", async move {
            bus.close().await;
            announcer_task.abort();
        });
        shutdown.stop("HTTP server", http_cancel, web_tasks);

        Ok(Hub {
            addresses,
            data_dir,
            store,
            telemetry,
            alarms,
            health,
            shutdown,
        })
    }

    /// Stops the hub without losing acknowledged data (see the module docs for the order).
    pub async fn shutdown(self) {
        self.shutdown.run().await;
        tracing::info!("wardhub stopped; data flushed");
    }
}
