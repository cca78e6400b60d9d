//! The uplink: what the ward hub forwards to the hospital's clustered broker (`[uplink]`,
//! off by default), durably and in order. docs/UPLINK.md has the topics, the payload and
//! the guarantees; `adapters/schema/uplink-message.schema.json` the envelope.
//!
//! ```text
//!  pipeline (stored observations, device status) ─┐   same sled database, before the
//!  alarm engine (committed transitions) ──────────┼─▶ durability ticket: outbox.rs
//!  timer (health, closed rollup minutes) ─────────┘        │ oldest first, rate-limited
//!                                                          ▼
//!                                forwarder.rs ─ client.rs (rumqttc, MQTT 5 or 3.1.1, QoS 1)
//!                                                          ▼
//!                                   cluster broker ─▶ `wardhub hospital` (hospital/)
//! ```
//!
//! Local alarming never waits for the uplink: queueing is one sled insert on the paths
//! above, and nothing there waits for the broker.
//!
//! Layout: [`config`] (`[uplink]` and the connection settings the hospital view shares),
//! [`envelope`] (topics, JSON), [`outbox`], [`forwarder`], [`client`], [`rollup`],
//! [`metrics`].

pub mod client;
pub mod config;
pub mod envelope;
pub mod forwarder;
pub mod metrics;
pub mod outbox;
pub mod rollup;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, Millis, Observation};

use crate::alarms::{DeviceStatus, Transition};
use crate::health::Health;
use crate::store::{SledStore, TimeRange};
pub use config::UplinkConfig;
use config::{Forward, ObservationMode};
use envelope::{Kind, Topics};
use metrics::{DropReason, UplinkMetrics};
use outbox::{Bounds, Outbox};
use rollup::Rollups;

/// Most observations in one message.
const MAX_PER_MESSAGE: usize = 500;
const META_ROLLED: &[u8] = b"m/rolled";

/// Why the uplink could not start.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
    #[error("uplink: {0}")]
    Config(String),
    #[error("uplink: rebuilding the open rollup minutes: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The uplink's queueing side, seen by the pipeline and the alarm engine; [`Uplink::spawn`]
/// starts its forwarder and timer.
pub struct Uplink {
    config: UplinkConfig,
    ward: String,
    outbox: Arc<Outbox>,
    topics: Topics,
    metrics: Arc<UplinkMetrics>,
    clock: Arc<dyn Clock>,
    rollups: Option<Mutex<Rollups>>,
    health: OnceLock<Arc<Health>>,
}

impl std::fmt::Debug for Uplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uplink")
            .field("site", &self.config.site)
            .field("ward", &self.ward)
            .finish_non_exhaustive()
    }
}

impl Uplink {
    /// Opens the outbox (what a previous run left is sent first) and, in `rollups` mode,
    /// rebuilds the open minutes from the store.
    pub fn open(
        config: UplinkConfig,
        ward: &str,
        store: &SledStore,
        registry: &prometheus::Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Uplink>, UplinkError> {
        config.validate().map_err(UplinkError::Config)?;
        if !config::is_topic_level(ward) {
            return Err(UplinkError::Config(format!(
                "hub.ward {ward:?} must be 1-64 characters of [A-Za-z0-9_-] for the uplink (a topic level)"
            )));
        }
        let metrics = Arc::new(UplinkMetrics::register(registry));
        let bounds = Bounds {
            max_bytes: config.outbox_max_bytes,
            max_age_ms: i64::try_from(config.outbox_max_age.as_millis()).unwrap_or(i64::MAX),
            keep_sent_bytes: config.keep_sent_bytes,
            keep_sent_ms: i64::try_from(config.keep_sent.as_millis()).unwrap_or(i64::MAX),
        };
        let outbox = Arc::new(Outbox::open(
            store.db(),
            &config.site,
            ward,
            bounds,
            metrics.clone(),
        )?);
        let rollups = if config.forwards(Forward::Observations)
            && config.observations == ObservationMode::Rollups
        {
            let delay = i64::try_from(config.rollup_delay.as_millis()).unwrap_or(0);
            let now = clock.now_ms();
            let rolled_to = outbox
                .meta(META_ROLLED)?
                .unwrap_or_else(|| rollup::minute_of(now));
            let mut r = Rollups::new(rolled_to, delay);
            // The open minutes of the previous run, from what the store holds.
            for device in store.devices() {
                let range = TimeRange {
                    from: rolled_to,
                    to: now + 1,
                };
                // Only the minutes not yet queued at the stop: a minute or two of data.
                let page = store.device_observations(&device, None, range, 1_000_000)?;
                if page.truncated {
                    tracing::warn!(device = %device, "uplink: more than a million observations in the open rollup minutes; the rest are not in the rollups");
                }
                r.add(&page.items);
            }
            Some(Mutex::new(r))
        } else {
            None
        };
        Ok(Arc::new(Uplink {
            topics: Topics::new(&config.site, ward),
            ward: ward.to_owned(),
            config,
            outbox,
            metrics,
            clock,
            rollups,
            health: OnceLock::new(),
        }))
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The hub's health, for the health messages (set once it exists).
    pub fn set_health(&self, health: Arc<Health>) {
        let _ = self.health.set(health);
    }

    fn push(&self, kind: Kind, topic: String, body: serde_json::Value) {
        if let Err(e) = self.outbox.push(kind, topic, self.clock.now_ms(), body) {
            self.metrics
                .dropped
                .with_label_values(&[DropReason::Error.as_str()])
                .inc();
            tracing::error!(error = %e, kind = kind.as_str(), "uplink: a message could not be queued");
        }
    }

    /// Stored observations (every channel), from the pipeline before its durability ticket.
    pub fn observations(&self, all: &[Observation]) {
        if !self.config.forwards(Forward::Observations) || all.is_empty() {
            return;
        }
        if let Some(r) = &self.rollups {
            let late = r.lock().unwrap_or_else(|e| e.into_inner()).add(all);
            self.metrics.late_observations.inc_by(late);
            return;
        }
        let mut per_bed: std::collections::BTreeMap<Option<&str>, Vec<&Observation>> =
            Default::default();
        for o in all {
            per_bed.entry(o.bed.as_deref()).or_default().push(o);
        }
        for (bed, obs) in per_bed {
            for chunk in obs.chunks(MAX_PER_MESSAGE) {
                let items: Vec<crate::http::ObservationJson> =
                    chunk.iter().map(|o| (*o).into()).collect();
                self.push(
                    Kind::Observations,
                    self.topics.of(Kind::Observations, bed, None),
                    serde_json::json!({ "bed": bed, "observations": items }),
                );
            }
        }
    }

    /// A device's status message, applied by the pipeline.
    pub fn device_status(&self, device: &str, bed: Option<&str>, status: &DeviceStatus) {
        if !self.config.forwards(Forward::DeviceStatus) {
            return;
        }
        self.push(
            Kind::DeviceStatus,
            self.topics.of(Kind::DeviceStatus, bed, Some(device)),
            serde_json::json!({ "device_id": device, "bed": bed, "status": status }),
        );
    }

    /// Alarm transitions the engine committed (called under its lock: engine order). Audit-only
    /// ones (suppressed conditions) stay on the ward, as on the ward's own MQTT topic.
    pub fn transitions(&self, transitions: &[Transition]) {
        if !self.config.forwards(Forward::Alarms) {
            return;
        }
        for t in transitions.iter().filter(|t| t.announce()) {
            match serde_json::to_value(t) {
                Ok(body) => self.push(Kind::Alarm, self.topics.of(Kind::Alarm, None, None), body),
                Err(e) => tracing::error!(error = %e, "uplink: alarm transition not serialisable"),
            }
        }
    }

    /// The hub's own health, as a message.
    pub fn health_body(&self, now: Millis) -> serde_json::Value {
        let depth = self.outbox.depth();
        let down: Vec<&str> = self
            .health
            .get()
            .map(|h| {
                h.report()
                    .components
                    .into_iter()
                    .filter(|c| !c.1)
                    .map(|c| c.0)
                    .collect()
            })
            .unwrap_or_default();
        let dropped: u64 = DropReason::ALL
            .iter()
            .map(|r| self.metrics.dropped.with_label_values(&[r.as_str()]).get())
            .sum();
        serde_json::json!({
            "reported_at": now,
            "version": env!("CARGO_PKG_VERSION"),
            "dashboard_url": self.config.dashboard_url,
            "uplink_connected": self.metrics.connected.get() == 1,
            "outbox_messages": depth.messages,
            "outbox_bytes": depth.bytes,
            "outbox_oldest_age_seconds": depth.oldest_queued_at.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0),
            "dropped_total": dropped,
            "components_down": down,
        })
    }

    /// Closed rollup minutes go to the outbox, with the new mark in the same batch.
    fn roll(&self, now: Millis) {
        let Some(r) = &self.rollups else { return };
        let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
        let Some((rolled_to, beds)) = r.due(now) else {
            return;
        };
        let messages = beds
            .into_iter()
            .flat_map(|(bed, rollups)| {
                rollups
                    .chunks(MAX_PER_MESSAGE)
                    .map(|c| {
                        (
                            Kind::Rollups,
                            self.topics.of(Kind::Rollups, bed.as_deref(), None),
                            serde_json::json!({ "bed": bed, "rollups": c }),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        match self
            .outbox
            .push_all(messages, now, Some((META_ROLLED, rolled_to)))
        {
            Ok(()) => r.sent(rolled_to),
            Err(e) => {
                self.metrics
                    .dropped
                    .with_label_values(&[DropReason::Error.as_str()])
                    .inc();
                tracing::error!(error = %e, "uplink: rollups could not be queued; tried again");
            }
        }
    }

    /// Starts the forwarder and the timer (health messages, rollups); they stop on `cancel`.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<SledStore>,
        cancel: CancellationToken,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, UplinkError> {
        let c = &self.config;
        let client_id = c
            .connection
            .client_id
            .clone()
            .unwrap_or_else(|| format!("wardhub-{}-{}", c.site, self.ward));
        let login = client::Login::of(&c.connection, client_id, c.max_inflight)
            .map_err(UplinkError::Config)?;
        let forwarder = forwarder::Forwarder {
            outbox: self.outbox.clone(),
            store,
            servers: c.connection.servers.clone(),
            protocol: c.connection.protocol,
            login,
            rate: c.max_messages_per_second,
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            resend_topic: self.topics.resend(),
        };
        let mut tasks = vec![tokio::spawn(forwarder.run(cancel.clone()))];
        let this = self.clone();
        tasks.push(tokio::spawn(async move {
            let health_every = this.config.health_interval.max(Duration::from_secs(1));
            let mut next_health = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = cancel.cancelled() => return,
                }
                let now = this.clock.now_ms();
                let this2 = this.clone();
                let due = tokio::time::Instant::now() >= next_health;
                if due {
                    next_health += health_every;
                }
                let _ = tokio::task::spawn_blocking(move || {
                    this2.roll(now);
                    if due && this2.config.forwards(Forward::Health) {
                        let body = this2.health_body(now);
                        this2.push(
                            Kind::Health,
                            this2.topics.of(Kind::Health, None, None),
                            body,
                        );
                    }
                })
                .await;
            }
        }));
        Ok(tasks)
    }
}

impl crate::pipeline::StoredObserver for Uplink {
    fn on_stored(&self, observations: &[Observation]) {
        self.observations(observations);
    }
}

impl crate::alarms::service::CommittedObserver for Uplink {
    fn committed(&self, transitions: &[Transition]) {
        self.transitions(transitions);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use wardhub_adapters::model::{metric_by_name, DeviceId, Status};

    use super::*;

    #[derive(Debug)]
    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now_ms(&self) -> Millis {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn config() -> UplinkConfig {
        crate::config::Config::merged(
            "[hub]\nward = \"icu-3\"\n[uplink]\nenabled = true\nsite = \"st-mary\"\n\
             observations = \"rollups\"\nrollup_delay = \"10s\"\n\
             [uplink.cluster]\nservers = [\"mqtt://127.0.0.1:1\"]\n",
            "test",
        )
        .unwrap()
        .uplink
    }

    fn hr(at: Millis, value: f64) -> Observation {
        Observation {
            device_id: DeviceId::new("mon-1").unwrap(),
            bed: Some("bed-01".into()),
            metric: metric_by_name("hr").unwrap(),
            value,
            observed_at: at,
            received_at: at,
            status: Status::Valid,
            channel: None,
            clock_correction_ms: 0,
        }
    }

    fn rollups_in(u: &Uplink) -> Vec<serde_json::Value> {
        let all = u
            .outbox()
            .read(outbox::Cursor::default(), 1000, u.clock.now_ms())
            .unwrap();
        all.iter()
            .filter(|e| e.kind == Kind::Rollups)
            .flat_map(|e| {
                let env: envelope::Envelope = serde_json::from_slice(&e.payload).unwrap();
                env.body["rollups"].as_array().unwrap().clone()
            })
            .collect()
    }

    /// Guards against a restart losing (or sending twice) the minute that was open: it is
    /// rebuilt from the store, and the minute already queued is not queued again.
    #[test]
    fn rollup_minutes_open_at_a_restart_are_rebuilt_from_the_store_and_sent_once() {
        let dir = tempfile::tempdir().unwrap();
        let retention = crate::store::Retention {
            raw: Duration::from_secs(72 * 3600),
            rollup: Duration::from_secs(30 * 86400),
        };
        let t0: Millis = 1_800_000_000_000; // a whole minute
        let clock = Arc::new(TestClock(AtomicI64::new(t0 + 1_000)));
        let store = SledStore::open(dir.path(), 8 << 20, retention).unwrap();
        // A start of the hub's uplink on this store (a fresh registry: metrics start at 0).
        let start = || {
            Uplink::open(
                config(),
                "icu-3",
                &store,
                &prometheus::Registry::new(),
                clock.clone(),
            )
            .unwrap()
        };
        {
            let u = start();
            // Minute t0: two values reach the uplink and the store; then the hub stops.
            let first = [hr(t0 + 5_000, 60.0), hr(t0 + 20_000, 80.0)];
            store.write(&first).unwrap();
            u.observations(&first);
        }
        // Back: one more value of the same minute, after the restart.
        clock.0.store(t0 + 40_000, Ordering::Relaxed);
        let u = start();
        let later = [hr(t0 + 45_000, 100.0)];
        store.write(&later).unwrap();
        u.observations(&later);
        u.roll(t0 + 65_000);
        assert!(rollups_in(&u).is_empty(), "the minute waits for its delay");
        u.roll(t0 + 70_000);
        let sent = rollups_in(&u);
        assert_eq!(sent.len(), 1, "{sent:?}");
        let r = &sent[0];
        assert_eq!(
            (
                r["count"].as_u64(),
                r["min"].as_f64(),
                r["max"].as_f64(),
                r["mean"].as_f64()
            ),
            (Some(3), Some(60.0), Some(100.0), Some(80.0))
        );
        assert_eq!(r["minute"].as_i64(), Some(t0));
        // A value of that minute now is late: counted, in no rollup.
        u.observations(&[hr(t0 + 50_000, 70.0)]);
        assert_eq!(u.metrics.late_observations.get(), 1);
        // Another restart: the minute was queued, it is not rebuilt nor queued again.
        drop(u);
        clock.0.store(t0 + 200_000, Ordering::Relaxed);
        let u = start();
        u.roll(t0 + 200_000);
        assert_eq!(rollups_in(&u).len(), 1, "minute t0 went once");
    }
}
