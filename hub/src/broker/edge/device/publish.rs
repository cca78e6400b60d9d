//! A device's PUBLISH: checked (topic alias, its own topics, a QoS 2 repeat) and handed to
//! the MQTT JSON adapter; what the pipeline will answer is queued for the writer.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, SystemClock};
use wardhub_adapters::mqtt_json::PublishOutcome;

use super::writer::Inflight;
use super::Device;
use crate::broker::edge::acl::{topic_matches, Acl};
use crate::broker::edge::packet::{self, reason};
use crate::broker::edge::session::AwaitingRelease;
use crate::broker::edge::CloseReason;

impl Device<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn on_publish(
        &self,
        p: &Bytes,
        level: u8,
        acl: &Acl,
        subscriptions: &[String],
        awaiting: &AwaitingRelease,
        inflight: &mpsc::Sender<Inflight>,
        taken_over: &CancellationToken,
    ) -> Result<(), PublishStop> {
        let publish = packet::parse_publish(p, level)
            .map_err(|r| PublishStop::Violation(r, reason::MALFORMED))?;
        if publish.topic_alias.is_some() {
            // The CONNACK offered no topic aliases (Topic Alias Maximum 0).
            return Err(PublishStop::Violation(
                CloseReason::ProtocolError,
                reason::TOPIC_ALIAS_INVALID,
            ));
        }
        if let Some(l) = &self.live {
            l.message(SystemClock.now_ms());
        }
        let ready = |code: u8| Inflight {
            qos: publish.qos,
            pkid: publish.pkid,
            outcome: Box::pin(std::future::ready(if code == 0 {
                PublishOutcome::Accepted {
                    stored: 0,
                    rejected: 0,
                }
            } else {
                PublishOutcome::Refused(wardhub_adapters::mqtt_json::Refusal::NotAuthorized)
            })),
            topic: None,
            echo: false,
        };
        if !acl.may_publish(&publish.topic) {
            self.telemetry
                .mqtt_refused
                .with_label_values(&[CloseReason::Acl.as_str()])
                .inc();
            if level < 5 {
                return Err(PublishStop::Violation(
                    CloseReason::Acl,
                    reason::NOT_AUTHORIZED,
                ));
            }
            tracing::warn!(device = %self.id, "mqtt publish outside its own topics refused (0x87)");
            return self
                .queue(inflight, ready(reason::NOT_AUTHORIZED), taken_over)
                .await;
        }
        if publish.qos == 2
            && awaiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&publish.pkid)
        {
            // Stored already (its PUBREC was sent): exactly once means answer, not store.
            return self.queue(inflight, ready(0), taken_over).await;
        }
        let echo = subscriptions
            .iter()
            .any(|f| topic_matches(&publish.topic, f));
        let keep = echo || self.config.forward.is_some();
        let topic = keep.then(|| {
            (
                publish.topic.clone(),
                publish.payload.clone(),
                publish.retain,
            )
        });
        let pending = tokio::select! {
            r = self.ingest.publish(&self.id, &publish.topic, publish.payload) => r,
            _ = taken_over.cancelled() => return Err(PublishStop::TakenOver),
            _ = self.cancel.cancelled() => return Err(PublishStop::Shutdown),
        };
        let Ok(pending) = pending else {
            return Err(PublishStop::Shutdown);
        };
        let item = Inflight {
            qos: publish.qos,
            pkid: publish.pkid,
            outcome: Box::pin(pending.outcome()),
            topic,
            echo,
        };
        self.queue(inflight, item, taken_over).await
    }

    async fn queue(
        &self,
        inflight: &mpsc::Sender<Inflight>,
        item: Inflight,
        taken_over: &CancellationToken,
    ) -> Result<(), PublishStop> {
        tokio::select! {
            r = inflight.send(item) => r.map_err(|_| PublishStop::WriterGone),
            _ = taken_over.cancelled() => Err(PublishStop::TakenOver),
            _ = self.cancel.cancelled() => Err(PublishStop::Shutdown),
        }
    }
}

/// Why the reader stops at a publish.
pub(super) enum PublishStop {
    Violation(CloseReason, u8),
    TakenOver,
    Shutdown,
    WriterGone,
}
