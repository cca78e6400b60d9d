//! The hub's own health checks: each internal part (internal MQTT listeners, edge, pipeline,
//! flusher, alarm announcer and ticker, the hub's publisher) is registered with what "up"
//! means for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use wardhub_adapters::adapter::Sink;
use wardhub_adapters::model::Clock;

use crate::broker::bus::BrokerBus;
use crate::broker::Broker;
use crate::store::SledStore;

/// What the health checks look at.
pub(super) struct HealthParts<'a> {
    pub broker: &'a Broker,
    pub bus: &'a Arc<BrokerBus>,
    pub store: &'a Arc<SledStore>,
    pub sink: &'a Sink,
    pub progress: &'a Arc<std::sync::atomic::AtomicI64>,
    pub clock: &'a Arc<dyn Clock>,
    pub edge: &'a JoinHandle<()>,
    pub pipeline: &'a JoinHandle<()>,
    pub flusher: &'a JoinHandle<()>,
    pub announcer: &'a JoinHandle<()>,
    pub ticker: &'a JoinHandle<()>,
}

/// How long a part may be stuck before it counts as down.
const STUCK: Duration = Duration::from_secs(30);

pub(super) fn register_health_checks(health: &crate::health::Health, p: HealthParts<'_>) {
    use crate::health::task_alive;
    for (name, addr, level) in [
        ("mqtt_internal_v4", p.broker.internal_v4, 4u8),
        ("mqtt_internal_v5", p.broker.internal_v5, 5u8),
    ] {
        // A CONNECT every 5 s: the listener must answer with a CONNACK (a listener whose
        // lock was poisoned accepted TCP and never answered). A busy machine can be slow to
        // answer one probe, so it is down only after three failed probes in a row.
        let login = p.broker.internal_login.clone();
        let last = std::sync::Mutex::new((None::<std::time::Instant>, 0u32));
        health.register(
            name,
            Box::new(move || {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
                if due {
                    let ok = crate::broker::probe_within(
                        addr,
                        level,
                        &login,
                        Duration::from_secs(1),
                        Duration::from_secs(3),
                    );
                    *last = (
                        Some(std::time::Instant::now()),
                        if ok { 0 } else { last.1 + 1 },
                    );
                }
                if last.1 >= 3 {
                    Err(format!(
                        "the internal MQTT {level} listener did not answer {} CONNECTs in a row",
                        last.1
                    ))
                } else {
                    Ok(())
                }
            }),
        );
    }
    health.register("mqtt_edge", task_alive("MQTT edge", p.edge));
    {
        let alive = task_alive("pipeline", p.pipeline);
        // A watch, not a Sink: the health check must not keep the pipeline from ending.
        let (sink, progress, clock) = (p.sink.watch(), p.progress.clone(), p.clock.clone());
        health.register(
            "ingest",
            Box::new(move || {
                alive()?;
                let idle = clock.now_ms() - progress.load(std::sync::atomic::Ordering::Relaxed);
                if sink.queued() > 0 && idle > STUCK.as_millis() as i64 {
                    return Err(format!(
                        "{} batches queued and none processed for {} s",
                        sink.queued(),
                        idle / 1000
                    ));
                }
                Ok(())
            }),
        );
    }
    {
        let alive = task_alive("store flusher", p.flusher);
        let store = p.store.clone();
        health.register(
            "store_flusher",
            Box::new(move || {
                alive()?;
                match store.durability_lag() {
                    Some(lag) if lag > STUCK => Err(format!(
                        "writes not durable: no successful flush for {} s",
                        lag.as_secs()
                    )),
                    _ => Ok(()),
                }
            }),
        );
    }
    health.register(
        "alarm_announcer",
        task_alive("alarm announcer", p.announcer),
    );
    health.register("alarm_ticker", task_alive("alarm ticker", p.ticker));
    let bus = p.bus.clone();
    health.register(
        "hub_publisher",
        Box::new(move || match bus.publisher_down_for() {
            Some(d) if d > Duration::from_secs(10) => Err(format!(
                "the hub's publisher has had no broker connection for {} s",
                d.as_secs()
            )),
            _ => Ok(()),
        }),
    );
}
