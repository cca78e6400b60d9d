//! The ingest pipeline: the single consumer of the adapters' [`Sink`](wardhub_adapters::Sink).
//!
//! For each batch it takes everything queued (up to [`MAX_WRITE`] observations), resolves each
//! device against the registry (refusing unknown and retired devices, setting the bed from the
//! binding), writes the lot as one atomic store batch, hands the stored observations to the
//! observers (alarm engine, live streams), applies the device messages (status, events) in
//! order, and answers each ingest once the flusher has made all of that durable. It ends when
//! every sender is gone and the queue is empty.

pub mod clock;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use wardhub_adapters::adapter::{AdapterEvents, DeviceMessage, Ingest, IngestReport};
use wardhub_adapters::model::{Clock, Observation, Reject, RejectReason};

use crate::registry::{Registry, Resolution};
use crate::store::SledStore;
use crate::telemetry::Telemetry;

/// Most observations written in one store batch.
pub const MAX_WRITE: usize = 8192;

/// Something that sees every stored observation, in order, right after it is written.
pub trait StoredObserver: Send + Sync {
    fn on_stored(&self, observations: &[Observation]);
}

/// What the hub does with a device status or event message (the registry and the alarm
/// engine own those contracts). Runs on the blocking pool, after the batch's observations
/// are stored; whatever it writes to the database is covered by the batch's durability.
pub trait DeviceMessages: Send + Sync {
    /// Applies one message of a device bound to `bed` (or unbound); an `Err` refuses it as
    /// not of its contract (counted as a `schema` reject).
    fn apply(&self, message: &DeviceMessage, bed: Option<&str>) -> Result<(), String>;
}

/// The pipeline's parts.
pub struct Pipeline {
    pub store: Arc<SledStore>,
    pub registry: Arc<dyn Registry>,
    pub telemetry: Arc<Telemetry>,
    pub clock: Arc<dyn Clock>,
    pub observers: Vec<Arc<dyn StoredObserver>>,
    /// See every stored observation, every channel (the uplink), also before the ticket.
    pub forwarders: Vec<Arc<dyn StoredObserver>>,
    pub messages: Option<Arc<dyn DeviceMessages>>,
    /// Set (epoch ms) each time a batch has been processed, for the health check.
    pub progress: Arc<std::sync::atomic::AtomicI64>,
    /// `ingest.max_future_skew`: a device time further ahead is a clock running ahead.
    pub max_future_ms: i64,
    /// The time shifts of devices whose clocks run ahead ([`clock`]).
    pub clocks: Mutex<clock::ClockCorrection>,
}

impl Pipeline {
    /// Runs until the channel is closed and drained.
    pub async fn run(self, mut rx: mpsc::Receiver<Ingest>) {
        let this = Arc::new(self);
        while let Some(first) = rx.recv().await {
            let mut batches = vec![first];
            let mut count = batches[0].observations.len() + batches[0].messages.len();
            while count < MAX_WRITE {
                match rx.try_recv() {
                    Ok(b) => {
                        count += b.observations.len() + b.messages.len();
                        batches.push(b);
                    }
                    Err(_) => break,
                }
            }
            let this2 = this.clone();
            // sled calls block; keep them off the async workers.
            let joined = tokio::task::spawn_blocking(move || this2.process(batches)).await;
            if let Err(e) = joined {
                tracing::error!(error = %e, "pipeline batch panicked");
            }
            this.progress
                .store(this.clock.now_ms(), std::sync::atomic::Ordering::Relaxed);
        }
        tracing::debug!("pipeline drained");
    }

    fn process(self: &Arc<Self>, batches: Vec<Ingest>) {
        let mut all: Vec<Observation> = Vec::new();
        let mut replies = Vec::new();
        let mut messages: Vec<(usize, DeviceMessage, &'static str)> = Vec::new();
        let mut resolved: HashMap<String, Resolution> = HashMap::new();
        let mut placements: HashMap<(String, String), Result<Resolution, String>> = HashMap::new();
        let now = self.clock.now_ms();
        for mut batch in batches {
            let mut report = IngestReport::default();
            let slot = replies.len();
            let moved = self
                .clocks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .apply(&mut batch.observations, self.max_future_ms);
            if moved > 0 {
                self.telemetry
                    .clock_corrected
                    .with_label_values(&[batch.adapter])
                    .inc_by(moved as u64);
            }
            for (i, mut o) in batch.observations.into_iter().enumerate() {
                // A gateway's message goes to the bed it names (checked by the registry).
                let placed = batch.placement.as_ref().map(|p| {
                    placements
                        .entry((o.device_id.as_str().to_owned(), p.bed.clone()))
                        .or_insert_with(|| self.registry.place(o.device_id.as_str(), p))
                        .clone()
                });
                if let Some(Err(detail)) = &placed {
                    let reject = Reject::new(RejectReason::UnknownDevice, detail.clone());
                    self.telemetry
                        .rejected(batch.adapter, Some(o.device_id.as_str()), &reject);
                    report.rejected.push((i, reject));
                    continue;
                }
                let owned;
                let res: &Resolution = match placed {
                    Some(Ok(r)) => {
                        owned = r;
                        &owned
                    }
                    _ => resolved
                        .entry(o.device_id.as_str().to_owned())
                        .or_insert_with(|| self.registry.resolve(o.device_id.as_str())),
                };
                match res {
                    Resolution::Bound { bed, .. } => o.bed = Some(bed.clone()),
                    Resolution::Unbound => o.bed = None,
                    Resolution::Refused => {
                        let reject = refused_device();
                        self.telemetry
                            .rejected(batch.adapter, Some(o.device_id.as_str()), &reject);
                        report.rejected.push((i, reject));
                        continue;
                    }
                }
                let latency = (now - o.received_at).max(0) as f64 / 1000.0;
                self.telemetry
                    .ingest_latency_seconds
                    .with_label_values(&[batch.adapter])
                    .observe(latency);
                report.stored += 1;
                all.push(o);
            }
            for m in batch.messages {
                messages.push((slot, m, batch.adapter));
            }
            replies.push((batch.reply, report));
        }
        let started = std::time::Instant::now();
        let written = self.store.write(&all);
        self.telemetry
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = written {
            self.telemetry.store_errors.inc();
            tracing::error!(error = %e, observations = all.len(), "store write failed");
            for (reply, mut report) in replies {
                report.failed = Some(e.to_string());
                report.stored = 0;
                if let Some(reply) = reply {
                    let _ = reply.send(report);
                }
            }
            return;
        }
        self.telemetry.observations_stored.inc_by(all.len() as u64);
        self.telemetry.pipeline_batch_size.observe(all.len() as f64);
        // The alarm engine sees one value per device, metric and time: of two channels at
        // the same time, a clinically usable one hides one that is not (a probe off on a
        // second SpO2 channel raises no sensor-off while the first reads 97). Both are stored.
        let for_alarms = preferred_channels(&all);
        for o in &self.observers {
            o.on_stored(for_alarms.as_deref().unwrap_or(&all));
        }
        for f in &self.forwarders {
            f.on_stored(&all);
        }
        // Device messages after the observations stored with them, in order.
        let mut per_message: Vec<usize> = vec![0; replies.len()];
        for (slot, m, adapter) in &messages {
            let index = per_message[*slot];
            per_message[*slot] += 1;
            let res = resolved
                .entry(m.device.as_str().to_owned())
                .or_insert_with(|| self.registry.resolve(m.device.as_str()))
                .clone();
            let bed = match &res {
                Resolution::Bound { bed, .. } => Some(bed.as_str()),
                Resolution::Unbound => None,
                Resolution::Refused => {
                    let reject = refused_device();
                    self.telemetry
                        .rejected(adapter, Some(m.device.as_str()), &reject);
                    replies[*slot].1.messages_rejected.push((index, reject));
                    continue;
                }
            };
            let applied = match &self.messages {
                Some(h) => h.apply(m, bed),
                None => Err("device messages are not handled by this hub".into()),
            };
            match applied {
                Ok(()) => replies[*slot].1.messages_applied += 1,
                Err(e) => {
                    let reject = Reject::new(RejectReason::Schema, e);
                    self.telemetry
                        .rejected(adapter, Some(m.device.as_str()), &reject);
                    replies[*slot].1.messages_rejected.push((index, reject));
                }
            }
        }
        for (device, res) in &resolved {
            if *res != Resolution::Refused {
                self.registry.seen(device, now);
            }
        }
        for ((device, _), res) in &placements {
            if res.is_ok() && !resolved.contains_key(device) {
                self.registry.seen(device, now);
            }
        }
        // Everything applied above (observations, the alarm audit log, the registry) is in the
        // database now: one flush that starts after this ticket covers it all.
        let ticket = self.store.barrier();
        let replies: Vec<_> = replies
            .into_iter()
            .filter_map(|(reply, report)| reply.map(|r| (r, report)))
            .collect();
        if !replies.is_empty() {
            let store = self.store.clone();
            tokio::runtime::Handle::current().spawn(async move {
                let durable = store.wait_durable(ticket).await;
                for (reply, mut report) in replies {
                    if let Err(e) = &durable {
                        report.failed = Some(e.to_string());
                        report.stored = 0;
                        report.messages_applied = 0;
                    }
                    let _ = reply.send(report);
                }
            });
        }
    }
}

/// `None` when no two observations share device, metric and time; else the observations
/// without those that a clinically usable sibling (another channel) hides.
fn preferred_channels(all: &[Observation]) -> Option<Vec<Observation>> {
    use std::collections::HashMap as Map;
    let mut usable: Map<(&str, u32, i64), (usize, bool)> = Map::new();
    let mut shared = false;
    for o in all {
        let e = usable
            .entry((o.device_id.as_str(), o.metric.code, o.observed_at))
            .or_insert((0, false));
        e.0 += 1;
        e.1 |= o.status.is_clinically_usable();
        shared |= e.0 > 1;
    }
    if !shared {
        return None;
    }
    Some(
        all.iter()
            .filter(|o| {
                let (n, any_usable) = usable[&(o.device_id.as_str(), o.metric.code, o.observed_at)];
                n == 1 || o.status.is_clinically_usable() || !any_usable
            })
            .cloned()
            .collect(),
    )
}

fn refused_device() -> Reject {
    Reject::new(
        RejectReason::UnknownDevice,
        "device is not registered, or is retired",
    )
}
