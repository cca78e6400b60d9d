//! The [`Adapter`] trait and what an adapter is given to run: a [`Sink`] into the hub's
//! pipeline, the message [`Bus`] (the embedded broker), [`AdapterEvents`] for telemetry, a
//! [`Clock`], and a cancellation token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::model::{Clock, Observation, Reject, RejectReason, TimeLimits};

/// A boxed future, as returned by [`Adapter::run`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A protocol adapter: turns device traffic into canonical observations and hands them to
/// the pipeline through [`AdapterContext::sink`].
///
/// `run` returns when `ctx.cancel` fires, after the adapter has stopped accepting input and
/// handed everything it accepted to the sink. An error return means the adapter could not
/// start or cannot go on (e.g. its listener could not bind); one bad message is never an error.
pub trait Adapter: Send + 'static {
    /// A short, stable name (`mqtt_json`, `hl7_mllp`): the `adapter` metric label.
    fn name(&self) -> &'static str;

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>>;
}

/// Why an adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{adapter}: cannot listen on {addr}: {source}")]
    Bind {
        adapter: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{adapter}: message bus: {message}")]
    Bus {
        adapter: &'static str,
        message: String,
    },
    #[error("{adapter}: the pipeline has stopped")]
    PipelineClosed { adapter: &'static str },
    #[error("{adapter}: {message}")]
    Other {
        adapter: &'static str,
        message: String,
    },
}

/// Everything an adapter needs from the hub.
#[derive(Clone)]
pub struct AdapterContext {
    pub sink: Sink,
    pub bus: Arc<dyn Bus>,
    pub events: Arc<dyn AdapterEvents>,
    pub clock: Arc<dyn Clock>,
    pub limits: TimeLimits,
    pub cancel: CancellationToken,
}

impl fmt::Debug for AdapterContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterContext").finish_non_exhaustive()
    }
}

/// One batch of observations (and device messages) handed to the pipeline.
#[derive(Debug)]
pub struct Ingest {
    /// The adapter's [`Adapter::name`].
    pub adapter: &'static str,
    pub observations: Vec<Observation>,
    /// Device status and event messages, applied after the observations, in order.
    pub messages: Vec<DeviceMessage>,
    /// When set, the pipeline answers once the batch is durable (flushed to disk) or refused.
    pub reply: Option<oneshot::Sender<IngestReport>>,
    /// Set by a gateway (HL7 gateway mode): the bed the message's data belongs to, which the
    /// hub checks against its registry instead of taking each device's binding.
    pub placement: Option<Placement>,
}

/// Where an authenticated gateway (an IHE PCD Device Observation Reporter carrying many beds)
/// says a message's data belongs: its PV1-3 location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The gateway's peer name (for the registry's history and logs).
    pub gateway: String,
    /// PV1-3.1, the point of care (ward); may be empty.
    pub point_of_care: String,
    /// PV1-3.3, the bed: it must be a bed of the registry.
    pub bed: String,
    /// Devices the registry does not know are registered under the gateway (bound to this
    /// bed); otherwise they are refused.
    pub auto_create: bool,
}

/// What a [`DeviceMessage`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMessageKind {
    /// Device status: battery, firmware, online (the last will), clock.
    Status,
    /// A device event: nurse call, bed exit, pump occlusion, end of infusion.
    Event,
}

/// A device status or event message, raw: the hub owns these contracts (its alarm engine
/// parses them), adapters only classify them.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMessage {
    pub device: crate::model::DeviceId,
    pub kind: DeviceMessageKind,
    pub payload: Bytes,
    /// Hub time of receipt.
    pub received_at: crate::model::Millis,
}

/// The pipeline's answer to an [`Ingest`] with a reply channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Observations written and flushed.
    pub stored: usize,
    /// Observations refused by the pipeline, by index into the batch.
    pub rejected: Vec<(usize, Reject)>,
    /// Device messages applied (and flushed).
    pub messages_applied: usize,
    /// Device messages refused (unknown device, not of their contract), by index.
    pub messages_rejected: Vec<(usize, Reject)>,
    /// Set when nothing could be stored (storage failure, shutdown): the sender must not
    /// consider any of it durable.
    pub failed: Option<String>,
}

/// The pipeline's input: a bounded channel. A full channel makes `submit` wait, which is how
/// back-pressure reaches the adapters (and through them the devices).
#[derive(Clone, Debug)]
pub struct Sink {
    tx: mpsc::Sender<Ingest>,
}

/// See [`Sink::watch`].
#[derive(Debug, Clone)]
pub struct SinkWatch {
    tx: mpsc::WeakSender<Ingest>,
}

impl SinkWatch {
    /// Batches waiting in the queue (0 once the pipeline's input is closed).
    pub fn queued(&self) -> usize {
        self.tx
            .upgrade()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }
}

/// The pipeline has stopped.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the pipeline has stopped")]
pub struct SinkClosed;

impl Sink {
    /// A sink and the receiving end for the pipeline, holding at most `capacity` batches.
    pub fn channel(capacity: usize) -> (Sink, mpsc::Receiver<Ingest>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Sink { tx }, rx)
    }

    /// Batches waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// A handle that sees the queue without keeping the pipeline open (the pipeline ends
    /// when every [`Sink`] is gone; a watcher does not count).
    pub fn watch(&self) -> SinkWatch {
        SinkWatch {
            tx: self.tx.downgrade(),
        }
    }

    /// Hands a batch over without waiting for durability.
    pub async fn submit(
        &self,
        adapter: &'static str,
        observations: Vec<Observation>,
    ) -> Result<(), SinkClosed> {
        self.tx
            .send(Ingest {
                adapter,
                observations,
                messages: Vec::new(),
                reply: None,
                placement: None,
            })
            .await
            .map_err(|_| SinkClosed)
    }

    /// Hands a batch over (waiting for room in the queue) and returns, without waiting for
    /// durability, the channel on which the pipeline will answer.
    pub async fn send(
        &self,
        adapter: &'static str,
        observations: Vec<Observation>,
        messages: Vec<DeviceMessage>,
    ) -> Result<oneshot::Receiver<IngestReport>, SinkClosed> {
        self.send_placed(adapter, observations, messages, None)
            .await
    }

    /// [`Sink::send`] with a gateway's placement.
    pub async fn send_placed(
        &self,
        adapter: &'static str,
        observations: Vec<Observation>,
        messages: Vec<DeviceMessage>,
        placement: Option<Placement>,
    ) -> Result<oneshot::Receiver<IngestReport>, SinkClosed> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Ingest {
                adapter,
                observations,
                messages,
                reply: Some(reply),
                placement,
            })
            .await
            .map_err(|_| SinkClosed)?;
        Ok(rx)
    }

    /// Hands a batch over and waits until it is durable or refused.
    pub async fn submit_durable(
        &self,
        adapter: &'static str,
        observations: Vec<Observation>,
    ) -> Result<IngestReport, SinkClosed> {
        self.submit_durable_placed(adapter, observations, None)
            .await
    }

    /// [`Sink::submit_durable`] with a gateway's placement.
    pub async fn submit_durable_placed(
        &self,
        adapter: &'static str,
        observations: Vec<Observation>,
        placement: Option<Placement>,
    ) -> Result<IngestReport, SinkClosed> {
        let rx = self
            .send_placed(adapter, observations, Vec::new(), placement)
            .await?;
        rx.await.map_err(|_| SinkClosed)
    }
}

/// A message from the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BusMessage {
    pub topic: String,
    pub payload: Bytes,
}

/// The hub's message bus (the embedded MQTT broker), as adapters see it.
pub trait Bus: Send + Sync {
    /// Messages on topics matching the MQTT `filter`, through a bounded channel.
    fn subscribe(&self, filter: &str) -> Result<mpsc::Receiver<BusMessage>, BusError>;

    /// Publishes a message (fire and forget; the bus may drop it when it is shutting down).
    fn publish(&self, topic: String, payload: Bytes) -> Result<(), BusError>;
}

/// A failure of the bus.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bus: {0}")]
pub struct BusError(pub String);

/// Telemetry an adapter reports. Every method has a no-op default, so tests can pass
/// [`NoEvents`] and an implementation only overrides what it records.
pub trait AdapterEvents: Send + Sync {
    /// A message (an MQTT publish, an HL7 message) arrived, of `bytes` length.
    fn message_received(&self, _adapter: &'static str, _bytes: usize) {}

    /// An input or one observation of it was rejected. `device` is the device id when known
    /// (never a patient identifier).
    fn rejected(&self, _adapter: &'static str, _device: Option<&str>, _reject: &Reject) {}

    /// A row of a message (an HL7 OBX) was skipped on purpose: neither stored nor refused.
    /// `reason` is a bounded label (`waveform`, `unknown_metric`, `not_numeric`, …).
    fn row_skipped(&self, _adapter: &'static str, _device: Option<&str>, _reason: &'static str) {}

    /// A connection-oriented adapter accepted or closed a connection.
    fn connection(&self, _adapter: &'static str, _open: bool) {}

    /// A connection was closed at accept: over a limit (`total`, `per_source`) or from a
    /// source no sender is allowed from (`not_allowed`).
    fn connection_refused(&self, _adapter: &'static str, _limit: &'static str) {}

    /// Bytes skipped by a framer (garbage between frames).
    fn skipped_bytes(&self, _adapter: &'static str, _bytes: usize) {}

    /// A message placed `device` at a location (HL7 PV1-3: point of care, bed; either may be
    /// empty). The bed comes from the registry binding, never from this claim: the hub
    /// compares the two and logs and counts a mismatch.
    fn bed_claimed(&self, _adapter: &'static str, _device: &str, _point_of_care: &str, _bed: &str) {
    }
}

/// A [`Bus`] that carries nothing: subscriptions fail, publishes vanish (tests, and hubs
/// without a broker).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBus;

impl Bus for NoBus {
    fn subscribe(&self, _filter: &str) -> Result<mpsc::Receiver<BusMessage>, BusError> {
        Err(BusError("no bus here".into()))
    }
    fn publish(&self, _topic: String, _payload: Bytes) -> Result<(), BusError> {
        Ok(())
    }
}

/// [`AdapterEvents`] that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl AdapterEvents for NoEvents {}

/// Shorthand for `Reject::new` used by adapters.
pub fn reject(reason: RejectReason, detail: impl Into<String>) -> Reject {
    Reject::new(reason, detail)
}
