//! The MQTT JSON adapter as the hub's MQTT edge drives it: one device PUBLISH in, a pending
//! outcome out.
//!
//! The edge owns device connections, so it (not the broker) answers each PUBLISH: it hands the
//! publish to [`MqttJsonIngest::publish`], which decodes it, takes room in the hub-wide
//! in-flight budget, and queues it for the pipeline; the returned [`PendingPublish`] resolves
//! once everything the publish carried is durable (or was refused, counted). Only then may the
//! edge send PUBACK or PUBREC: an acknowledgement is a promise that the data is kept.
//!
//! Back-pressure: the budget counts observations and device messages that were decoded but are
//! not yet durable. A publish waits for room (tokio's semaphore is first come, first served, so
//! a flooding device waits in line behind the others instead of starving them), and a full
//! pipeline queue makes it wait too; the edge stops reading a connection while it waits, so a
//! device that sends faster than the hub stores is slowed through TCP, never dropped.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::{Decoder, Message, NAME};
use crate::adapter::{
    AdapterEvents, DeviceMessage, DeviceMessageKind, IngestReport, Sink, SinkClosed,
};
use crate::model::{Clock, DeviceId, Reject, RejectReason, TimeLimits};

/// The MQTT JSON adapter's configuration (`[[adapters]] type = "mqtt_json"` with `[ingest]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttJsonConfig {
    pub max_payload_bytes: usize,
    pub max_observations: usize,
    /// Observations and device messages decoded but not yet durable, hub-wide: memory and
    /// the queue ahead of any one publish stay bounded.
    pub max_inflight: usize,
}

impl Default for MqttJsonConfig {
    fn default() -> Self {
        Self {
            max_payload_bytes: super::DEFAULT_MAX_PAYLOAD_BYTES,
            max_observations: super::DEFAULT_MAX_OBSERVATIONS,
            max_inflight: 16_384,
        }
    }
}

/// Why a publish was refused whole (every refusal is also counted as a reject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, not of the contract, or nothing in it valid.
    PayloadFormatInvalid,
    /// Larger than the payload limit, or more observations than allowed.
    QuotaExceeded,
    /// The device is not registered, or retired.
    NotAuthorized,
    /// Not `…/obs`, `…/status` or `…/event` of the publishing device.
    TopicNameInvalid,
}

impl Refusal {
    /// The MQTT 5 PUBACK / PUBREC reason code.
    pub fn mqtt5_reason(self) -> u8 {
        match self {
            Refusal::PayloadFormatInvalid => 0x99,
            Refusal::QuotaExceeded => 0x97,
            Refusal::NotAuthorized => 0x87,
            Refusal::TopicNameInvalid => 0x90,
        }
    }

    fn of(reason: RejectReason) -> Refusal {
        match reason {
            RejectReason::TooLarge | RejectReason::TooMany => Refusal::QuotaExceeded,
            RejectReason::UnknownDevice => Refusal::NotAuthorized,
            RejectReason::UnknownTopic | RejectReason::BadDeviceId => Refusal::TopicNameInvalid,
            _ => Refusal::PayloadFormatInvalid,
        }
    }
}

/// What became of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Everything valid in it is durable: `stored` observations and device messages;
    /// `rejected` parts of it were refused and counted.
    Accepted { stored: usize, rejected: usize },
    /// Refused whole, counted.
    Refused(Refusal),
    /// Not made durable (storage failure, shutdown): it must not be acknowledged.
    Failed(String),
}

/// A publish on its way to the store. Holds its share of the in-flight budget until it
/// resolves.
#[derive(Debug)]
pub struct PendingPublish {
    state: State,
}

#[derive(Debug)]
enum State {
    Ready(PublishOutcome),
    Queued {
        reply: oneshot::Receiver<IngestReport>,
        /// Refused before the pipeline (decode), counted already.
        rejected_before: usize,
        first_reject: Option<RejectReason>,
        _permit: OwnedSemaphorePermit,
    },
}

impl PendingPublish {
    fn ready(outcome: PublishOutcome) -> PendingPublish {
        PendingPublish {
            state: State::Ready(outcome),
        }
    }

    /// Whether the outcome is known without waiting (refused at decode, or empty).
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// Waits for the pipeline's answer.
    pub async fn outcome(self) -> PublishOutcome {
        match self.state {
            State::Ready(o) => o,
            State::Queued {
                reply,
                rejected_before,
                first_reject,
                _permit,
            } => match reply.await {
                Err(_) => PublishOutcome::Failed("the pipeline stopped".into()),
                Ok(report) => outcome_of(&report, rejected_before, first_reject),
            },
        }
    }
}

fn outcome_of(
    report: &IngestReport,
    rejected_before: usize,
    first_reject: Option<RejectReason>,
) -> PublishOutcome {
    if let Some(e) = &report.failed {
        return PublishOutcome::Failed(e.clone());
    }
    let stored = report.stored + report.messages_applied;
    let rejected = rejected_before + report.rejected.len() + report.messages_rejected.len();
    if stored == 0 && rejected > 0 {
        // Refused whole: an unknown device says most, then what the decoder found, then
        // what the pipeline did.
        let in_pipeline = || {
            report
                .rejected
                .iter()
                .chain(&report.messages_rejected)
                .map(|(_, r)| r.reason)
        };
        let reason = in_pipeline()
            .find(|r| *r == RejectReason::UnknownDevice)
            .or(first_reject)
            .or_else(|| in_pipeline().next())
            .unwrap_or(RejectReason::Schema);
        return PublishOutcome::Refused(Refusal::of(reason));
    }
    PublishOutcome::Accepted { stored, rejected }
}

/// Decodes device publishes and queues them for the pipeline (see the module docs).
pub struct MqttJsonIngest {
    decoder: Decoder,
    sink: Sink,
    events: Arc<dyn AdapterEvents>,
    clock: Arc<dyn Clock>,
    budget: Arc<Semaphore>,
    budget_total: u32,
}

impl std::fmt::Debug for MqttJsonIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttJsonIngest")
            .field("decoder", &self.decoder)
            .field("budget_total", &self.budget_total)
            .finish_non_exhaustive()
    }
}

impl MqttJsonIngest {
    pub fn new(
        config: MqttJsonConfig,
        limits: TimeLimits,
        sink: Sink,
        events: Arc<dyn AdapterEvents>,
        clock: Arc<dyn Clock>,
    ) -> MqttJsonIngest {
        // One document must always fit the budget, or it would wait forever.
        let total = config
            .max_inflight
            .max(config.max_observations)
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        MqttJsonIngest {
            decoder: Decoder {
                max_payload_bytes: config.max_payload_bytes,
                max_observations: config.max_observations,
                limits,
            },
            sink,
            events,
            clock,
            budget: Arc::new(Semaphore::new(total)),
            budget_total: total as u32,
        }
    }

    /// Room left in the in-flight budget (observations and device messages).
    pub fn budget_available(&self) -> usize {
        self.budget.available_permits()
    }

    /// Takes one publish of the authenticated `device` on `topic`. Waits while the hub-wide
    /// budget or the pipeline queue is full (that wait is the back-pressure); then returns
    /// the pending outcome. `Err` only when the pipeline has stopped.
    pub async fn publish(
        &self,
        device: &DeviceId,
        topic: &str,
        payload: Bytes,
    ) -> Result<PendingPublish, SinkClosed> {
        self.events.message_received(NAME, payload.len());
        let now = self.clock.now_ms();
        let (observations, messages, rejects) = match self.decoder.decode(topic, &payload, now) {
            Message::Rejected { device: d, reject } => {
                let who = d.as_ref().map(DeviceId::as_str).or(Some(device.as_str()));
                self.events.rejected(NAME, who, &reject);
                return Ok(PendingPublish::ready(PublishOutcome::Refused(Refusal::of(
                    reject.reason,
                ))));
            }
            Message::Observations { device: d, decoded } => {
                if &d != device {
                    return Ok(self.not_its_topic(device));
                }
                for r in &decoded.rejects {
                    self.events.rejected(NAME, Some(device.as_str()), r);
                }
                (decoded.observations, Vec::new(), decoded.rejects)
            }
            Message::Status { device: d, payload } => {
                if &d != device {
                    return Ok(self.not_its_topic(device));
                }
                (
                    Vec::new(),
                    vec![message(d, DeviceMessageKind::Status, payload, now)],
                    Vec::new(),
                )
            }
            Message::Event { device: d, payload } => {
                if &d != device {
                    return Ok(self.not_its_topic(device));
                }
                (
                    Vec::new(),
                    vec![message(d, DeviceMessageKind::Event, payload, now)],
                    Vec::new(),
                )
            }
        };
        let first_reject = rejects.first().map(|r| r.reason);
        if observations.is_empty() && messages.is_empty() {
            return Ok(PendingPublish::ready(match first_reject {
                Some(r) => PublishOutcome::Refused(Refusal::of(r)),
                None => PublishOutcome::Accepted {
                    stored: 0,
                    rejected: 0,
                },
            }));
        }
        let wanted = u32::try_from(observations.len() + messages.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_total);
        // The semaphore is never closed, so acquiring fails only if it were: treat as stopped.
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(wanted)
            .await
            .map_err(|_| SinkClosed)?;
        let reply = self.sink.send(NAME, observations, messages).await?;
        Ok(PendingPublish {
            state: State::Queued {
                reply,
                rejected_before: rejects.len(),
                first_reject,
                _permit: permit,
            },
        })
    }

    fn not_its_topic(&self, device: &DeviceId) -> PendingPublish {
        let reject = Reject::new(
            RejectReason::UnknownTopic,
            "topic is not under the publishing device's own id",
        );
        self.events.rejected(NAME, Some(device.as_str()), &reject);
        PendingPublish::ready(PublishOutcome::Refused(Refusal::TopicNameInvalid))
    }
}

fn message(
    device: DeviceId,
    kind: DeviceMessageKind,
    payload: Bytes,
    now: crate::model::Millis,
) -> DeviceMessage {
    DeviceMessage {
        device,
        kind,
        payload,
        received_at: now,
    }
}
