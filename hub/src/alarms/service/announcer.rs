//! The announcer: transitions the engine committed are made durable (sled flushed), then
//! published on MQTT (`wardhub/v1/wards/{ward}/alarms`, escalations also on
//! `…/escalations`) and to the live stream, in the order they were committed.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use wardhub_adapters::adapter::Bus;
use wardhub_adapters::model::Millis;

use super::AlarmService;
use crate::alarms::{Event, Transition};

/// A batch of transitions on its way to being announced.
pub(super) struct Pending {
    pub transitions: Vec<Transition>,
    /// Hub receipt time of the observation that caused them, for the latency metric.
    pub received_at: Option<Millis>,
    /// Answered once everything queued before it has been announced.
    pub barrier: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Makes queued transitions durable, then announces them, in order.
pub(super) async fn announcer(
    service: Arc<AlarmService>,
    db: sled::Db,
    bus: Arc<dyn Bus>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let alarms_topic = format!("wardhub/v1/wards/{}/alarms", service.ward);
    let escalations_topic = format!("wardhub/v1/wards/{}/escalations", service.ward);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(p) = rx.try_recv() {
            batch.push(p);
        }
        // The audit records are in sled already; flushing makes them survive a crash. Only
        // then may anyone hear of them.
        if let Err(e) = db.flush_async().await {
            service.telemetry.store_errors.inc();
            tracing::error!(error = %e, "flushing the alarm log failed; announcing anyway (the alarm matters more)");
        }
        let now = service.clock.now_ms();
        for p in batch {
            if let Some(b) = p.barrier {
                let _ = b.send(());
                continue;
            }
            if let Some(r) = p.received_at {
                service
                    .telemetry
                    .alarm_latency_seconds
                    .observe((now - r).max(0) as f64 / 1000.0);
            }
            for t in p.transitions.into_iter().filter(Transition::announce) {
                match serde_json::to_vec(&t) {
                    Ok(json) => {
                        let payload = Bytes::from(json);
                        if t.event == Event::Escalated {
                            if let Err(e) = bus.publish(escalations_topic.clone(), payload.clone())
                            {
                                tracing::error!(error = %e, "escalation not published on MQTT");
                            }
                        }
                        if let Err(e) = bus.publish(alarms_topic.clone(), payload) {
                            tracing::error!(error = %e, "alarm not published on MQTT");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "alarm not serialisable"),
                }
                let _ = service.live.send(Arc::new(t));
            }
        }
    }
}
