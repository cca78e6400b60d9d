//! The ingest pipeline: the single consumer of the adapters' [`Sink`](wardhub_adapters::Sink).
//!
//! For each batch it takes everything queued (up to [`MAX_WRITE`] observations), resolves each
//! device against the registry (refusing unknown and retired devices, setting the bed from the
//! binding), writes the lot as one atomic store batch, hands the stored observations to the
//! observers (alarm engine, live streams), and answers durable ingests once the flusher has
//! made their write durable. It ends when every sender is gone and the queue is empty.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use wardhub_adapters::adapter::{AdapterEvents, Ingest, IngestReport};
use wardhub_adapters::model::{Clock, Observation, Reject, RejectReason};

use crate::registry::{Registry, Resolution};
use crate::store::{SledStore, TimeSeriesStore};
use crate::telemetry::Telemetry;

/// Most observations written in one store batch.
pub const MAX_WRITE: usize = 8192;

/// Something that sees every stored observation, in order, right after it is written.
pub trait StoredObserver: Send + Sync {
    fn on_stored(&self, observations: &[Observation]);
}

/// The pipeline's parts.
pub struct Pipeline {
    pub store: Arc<SledStore>,
    pub registry: Arc<dyn Registry>,
    pub telemetry: Arc<Telemetry>,
    pub clock: Arc<dyn Clock>,
    pub observers: Vec<Arc<dyn StoredObserver>>,
}

impl Pipeline {
    /// Runs until the channel is closed and drained.
    pub async fn run(self, mut rx: mpsc::Receiver<Ingest>) {
        let this = Arc::new(self);
        while let Some(first) = rx.recv().await {
            let mut batches = vec![first];
            let mut count = batches[0].observations.len();
            while count < MAX_WRITE {
                match rx.try_recv() {
                    Ok(b) => {
                        count += b.observations.len();
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
        }
        tracing::debug!("pipeline drained");
    }

    fn process(self: &Arc<Self>, batches: Vec<Ingest>) {
        let mut all: Vec<Observation> = Vec::new();
        let mut replies = Vec::new();
        let mut resolved: HashMap<String, Resolution> = HashMap::new();
        let now = self.clock.now_ms();
        for batch in batches {
            let mut report = IngestReport::default();
            for (i, mut o) in batch.observations.into_iter().enumerate() {
                let res = resolved
                    .entry(o.device_id.as_str().to_owned())
                    .or_insert_with(|| self.registry.resolve(o.device_id.as_str()));
                match res {
                    Resolution::Bound { bed, .. } => o.bed = Some(bed.clone()),
                    Resolution::Unbound => o.bed = None,
                    Resolution::Refused => {
                        let reject = Reject::new(
                            RejectReason::UnknownDevice,
                            "device is not registered, or is retired",
                        );
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
            if let Some(reply) = batch.reply {
                replies.push((reply, report));
            }
        }
        for (device, res) in &resolved {
            if *res != Resolution::Refused {
                self.registry.seen(device, now);
            }
        }
        let started = std::time::Instant::now();
        let written = self.store.write(&all);
        self.telemetry
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        match written {
            Ok(ticket) => {
                self.telemetry.observations_stored.inc_by(all.len() as u64);
                self.telemetry.pipeline_batch_size.observe(all.len() as f64);
                for o in &self.observers {
                    o.on_stored(&all);
                }
                if !replies.is_empty() {
                    let store = self.store.clone();
                    tokio::runtime::Handle::current().spawn(async move {
                        let durable = store.wait_durable(ticket).await;
                        for (reply, mut report) in replies {
                            if let Err(e) = &durable {
                                report.failed = Some(e.to_string());
                                report.stored = 0;
                            }
                            let _ = reply.send(report);
                        }
                    });
                }
            }
            Err(e) => {
                self.telemetry.store_errors.inc();
                tracing::error!(error = %e, observations = all.len(), "store write failed");
                for (reply, mut report) in replies {
                    report.failed = Some(e.to_string());
                    report.stored = 0;
                    let _ = reply.send(report);
                }
            }
        }
    }
}
