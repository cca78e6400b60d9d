//! Charting to the patient record (EMR): device data attributed to the patient who was in
//! the bed when the hub received it, sent as HL7 v2 ORU^R01 (IHE PCD-01) over MLLP and/or as
//! FHIR R4 transaction Bundles (docs/EMR.md). Both off by default.
//!
//! ```text
//!  pipeline (stored observations, before the durability ticket)
//!      │ Emr::on_stored: mode per metric; patient = patients.at(bed, received_at)
//!      │   no patient → kept in the store, never exported (counted no_patient)
//!      ├─ every  → one batch per patient and bed ─────────────┐
//!      └─ median/last → periodic.rs (open periods in memory)   │ built at once (pcd01, fhir)
//!  timer (1 s): closed periods → batches + `charted_to` ───────┤ outbox.rs: sled, same db,
//!                                                              ▼ one batch with its meta
//!                      hl7_sender.rs (MLLP, waits for the ACK) · fhir_sender.rs (POST)
//!                      leave the outbox on AA / 2xx only; retried with back-off
//! ```
//!
//! Every value queued for "every" is in the outbox before the device's acknowledgement;
//! periods open at a crash are rebuilt from the store at start, so no acknowledged value is
//! lost and none is charted twice. HL7: a message resent after a crash between its AA and
//! the outbox's flush carries the same MSH-10, so the receiver can tell; FHIR: Observations
//! are PUT under deterministic ids and the Patient and Devices created conditionally, so a
//! resend changes nothing.

pub mod config;
mod fhir_sender;
pub mod http_client;
pub mod metrics;
pub mod periodic;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wardhub_adapters::emr::fhir::FhirOptions;
use wardhub_adapters::emr::pcd01::Pcd01Options;
use wardhub_adapters::model::charting::{ChartBatch, ChartMethod, ChartedValue};
use wardhub_adapters::model::{Clock, Location, Millis, Observation, Patient, Status};

use crate::outbound::outbox::META_CHARTED;
use crate::outbound::{Dest, Entry, Outbox};
pub use config::EmrConfig;
use config::Mode;
use metrics::EmrMetrics;
use periodic::{Closed, Key, Periodic};

use crate::patients::{PatientContext, Timeline};
use crate::store::{SledStore, TimeRange};

/// Most values in one message.
const MAX_PER_BATCH: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum EmrError {
    #[error("emr: {0}")]
    Config(String),
    #[error(transparent)]
    Outbox(#[from] crate::outbound::OutboxError),
    #[error("emr: rebuilding the open periods: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The exports' queueing side (a pipeline forwarder); [`Emr::spawn`] starts the senders.
pub struct Emr {
    config: EmrConfig,
    outbox: Arc<Outbox>,
    patients: Arc<PatientContext>,
    metrics: EmrMetrics,
    clock: Arc<dyn Clock>,
    periodic: Mutex<Periodic>,
    /// The mode of each metric (by MDC code), resolved once from the config.
    modes: BTreeMap<u32, Mode>,
    pcd01: Option<Pcd01Options>,
    fhir: Option<FhirOptions>,
}

impl std::fmt::Debug for Emr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emr").finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Emr {
    /// Opens the outbox and rebuilds the periods open at the last stop from the store.
    pub fn open(
        config: EmrConfig,
        store: &SledStore,
        beds: Vec<String>,
        patients: Arc<PatientContext>,
        registry: &prometheus::Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Emr>, EmrError> {
        config.validate().map_err(EmrError::Config)?;
        let metrics = EmrMetrics::register(registry);
        let mut bounds = BTreeMap::new();
        if let Some(h) = &config.hl7 {
            bounds.insert(Dest::Hl7, h.outbox_max_bytes);
        }
        if let Some(f) = &config.fhir {
            bounds.insert(Dest::Fhir, f.outbox_max_bytes);
        }
        let outbox = Arc::new(Outbox::open(
            store.db(),
            "emr.outbox",
            bounds,
            metrics.queue.clone(),
        )?);
        let now = clock.now_ms();
        let (period, delay) = (ms(config.period), ms(config.delay));
        let fresh = Periodic::new(period, delay, 0);
        // The first start charts from the current period on (nothing from before the export
        // was switched on), and says so durably, so a later start does not skip periods.
        let charted_to = match outbox.meta(META_CHARTED)? {
            Some(t) => t,
            None => {
                let t = fresh.closable_to(now);
                outbox.queue(Vec::new(), Some((META_CHARTED, t)))?;
                t
            }
        };
        let pcd01 = config.hl7.as_ref().map(|h| Pcd01Options {
            sending_application: h.sending_application.clone(),
            sending_facility: h.sending_facility.clone(),
            receiving_application: h.receiving_application.clone(),
            receiving_facility: h.receiving_facility.clone(),
            patient_authority_default: h.patient_authority.clone(),
            processing_id: "P".into(),
        });
        let fhir = config.fhir.as_ref().map(|f| FhirOptions {
            patient_system: f.patient_system.clone(),
            device_system: f.device_system.clone(),
            observation_system: f.observation_system.clone(),
        });
        let modes = wardhub_adapters::model::METRICS
            .iter()
            .map(|m| (m.code, config.mode(m)))
            .collect();
        let emr = Arc::new(Emr {
            periodic: Mutex::new(Periodic::new(period, delay, charted_to)),
            modes,
            config,
            outbox,
            patients,
            metrics,
            clock,
            pcd01,
            fhir,
        });
        // Rebuild: every stored value of a periodic metric since `charted_to`, attributed as
        // it was when it arrived.
        for bed in beds {
            let page = store.bed_observations(
                &bed,
                TimeRange {
                    from: charted_to,
                    to: now + 1,
                },
                10_000_000,
            )?;
            let tl = emr.patients.timeline();
            let mut p = emr.periodic.lock().unwrap_or_else(|e| e.into_inner());
            for o in &page.items {
                if matches!(emr.mode(o.metric), Mode::Median | Mode::Last) {
                    emr.offer_periodic(&tl, &mut p, o, false);
                }
            }
        }
        Ok(emr)
    }

    /// The FHIR export's identifier systems, when it is on (the read endpoint uses them).
    pub fn fhir_options(&self) -> Option<&FhirOptions> {
        self.fhir.as_ref()
    }

    fn mode(&self, metric: wardhub_adapters::model::Metric) -> Mode {
        self.modes
            .get(&metric.code)
            .copied()
            .unwrap_or(self.config.default)
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// One value into its period; counts what happened (when `count`).
    fn offer_periodic(&self, tl: &Timeline, p: &mut Periodic, o: &Observation, count: bool) {
        let Some(bed) = &o.bed else {
            if count {
                self.metrics.value("no_patient", 1);
            }
            return;
        };
        let Some(stay) = tl.at(bed, o.received_at) else {
            if count {
                self.metrics.value("no_patient", 1);
            }
            return;
        };
        let usable = is_usable(o);
        if !usable && !self.config.include_unusable {
            if count {
                self.metrics.value("unusable", 1);
            }
            return;
        }
        let method = match self.mode(o.metric) {
            Mode::Last => ChartMethod::Last,
            _ => ChartMethod::Median,
        };
        let key = Key {
            start: 0,
            patient_id: stay.patient_id.clone(),
            ward: stay.bed.ward.clone(),
            bed: stay.bed.bed.clone(),
            device: o.device_id.as_str().to_owned(),
            code: o.metric.code,
            channel: o.channel.clone(),
        };
        let fresh = p.add(
            key,
            o.metric,
            method,
            o.observed_at,
            o.value,
            o.status,
            usable,
        );
        if count {
            self.metrics
                .value(if fresh { "charted" } else { "late" }, 1);
        }
    }

    /// Closes the periods that are over and queues their values (the timer's tick).
    pub fn tick(&self) {
        let now = self.clock.now_ms();
        let mut p = self.periodic.lock().unwrap_or_else(|e| e.into_inner());
        let before = p.charted_to;
        let closed = p.close(now);
        if p.charted_to == before {
            return;
        }
        let mut groups: BTreeMap<(String, String, String, Millis), Vec<Closed>> = BTreeMap::new();
        for c in closed {
            groups
                .entry((
                    c.key.patient_id.clone(),
                    c.key.ward.clone(),
                    c.key.bed.clone(),
                    c.period.0,
                ))
                .or_default()
                .push(c);
        }
        let mut messages = Vec::new();
        for ((patient_id, ward, bed, _), values) in groups {
            let values: Vec<ChartedValue> = values
                .into_iter()
                .map(|c| ChartedValue {
                    id: String::new(),
                    device_id: c.key.device,
                    metric: c.metric,
                    value: c.value,
                    status: c.status,
                    observed_at: c.observed_at,
                    period: Some(c.period),
                    channel: c.key.channel,
                    method: c.method,
                    count: c.count,
                })
                .collect();
            messages.extend(self.build(&patient_id, &ward, &bed, values, now));
        }
        let to = p.charted_to;
        if let Err(e) = self.outbox.queue(messages, Some((META_CHARTED, to))) {
            // The periods are charted in memory already; their values are in the store.
            tracing::error!(error = %e, "EMR outbox: closed periods could not be queued");
            for d in self.destinations() {
                self.metrics.queue.dropped(d, "error");
            }
        }
    }

    fn destinations(&self) -> Vec<Dest> {
        let mut d = Vec::new();
        if self.pcd01.is_some() {
            d.push(Dest::Hl7);
        }
        if self.fhir.is_some() {
            d.push(Dest::Fhir);
        }
        d
    }

    /// Batches (at most [`MAX_PER_BATCH`] values each) for one patient in one bed, built
    /// for every destination; the values get their ids here.
    fn build(
        &self,
        patient_id: &str,
        ward: &str,
        bed: &str,
        values: Vec<ChartedValue>,
        now: Millis,
    ) -> Vec<(Dest, u64, Entry)> {
        let patient = self
            .patients
            .timeline()
            .patient(patient_id)
            .cloned()
            .unwrap_or(Patient {
                id: patient_id.to_owned(),
                ..Default::default()
            });
        let mut out = Vec::new();
        for chunk in values.chunks(MAX_PER_BATCH) {
            let (seq, id) = self.outbox.next_id();
            let batch = ChartBatch {
                id: id.clone(),
                patient: patient.clone(),
                location: Location {
                    point_of_care: ward.to_owned(),
                    room: String::new(),
                    bed: bed.to_owned(),
                },
                values: chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ChartedValue {
                        id: format!("{id}.{i}"),
                        ..v.clone()
                    })
                    .collect(),
                created_at: now,
            };
            if let Some(o) = &self.pcd01 {
                out.push((
                    Dest::Hl7,
                    seq,
                    Entry {
                        queued_at: now,
                        batch_id: id.clone(),
                        payload: wardhub_adapters::emr::pcd01::build_oru(&batch, o),
                    },
                ));
            }
            if let Some(o) = &self.fhir {
                out.push((
                    Dest::Fhir,
                    seq,
                    Entry {
                        queued_at: now,
                        batch_id: id.clone(),
                        payload: wardhub_adapters::emr::fhir::transaction(&batch, o).to_string(),
                    },
                ));
            }
        }
        out
    }

    /// Starts the senders and the period timer.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<SledStore>,
        cancel: CancellationToken,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, EmrError> {
        let mut tasks = Vec::new();
        if let Some(h) = &self.config.hl7 {
            tasks.push(tokio::spawn(crate::outbound::mllp_sender::run(
                Dest::Hl7,
                crate::outbound::mllp_sender::MllpSettings {
                    connect: h.connect.clone(),
                    ack_timeout: h.ack_timeout,
                    error_attempts: h.error_attempts,
                    retry_min: h.retry.min,
                    retry_max: h.retry.max,
                },
                self.outbox.clone(),
                store.clone(),
                self.metrics.queue.clone(),
                self.clock.clone(),
                cancel.clone(),
            )));
        }
        if let Some(f) = &self.config.fhir {
            let client = fhir_sender::client(f).map_err(EmrError::Config)?;
            tasks.push(tokio::spawn(fhir_sender::run(
                f.clone(),
                client,
                self.outbox.clone(),
                store.clone(),
                self.metrics.queue.clone(),
                self.clock.clone(),
                cancel.clone(),
            )));
        }
        let this = self.clone();
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = every.tick() => {
                        let this = this.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            this.tick();
                            this.publish_ages();
                        })
                        .await;
                    }
                }
            }
        }));
        Ok(tasks)
    }

    fn publish_ages(&self) {
        let now = self.clock.now_ms();
        for d in self.destinations() {
            let age = self
                .outbox
                .oldest_queued_at(d)
                .map_or(0, |t| ((now - t) / 1000).max(0));
            self.metrics.queue.age(d, age);
        }
    }
}

impl crate::pipeline::StoredObserver for Emr {
    fn on_stored(&self, observations: &[Observation]) {
        let mut every: BTreeMap<(String, String, String), Vec<_>> = BTreeMap::new();
        {
            // One look at the history for the whole batch.
            let tl = self.patients.timeline();
            let mut p = self.periodic.lock().unwrap_or_else(|e| e.into_inner());
            for o in observations {
                match self.mode(o.metric) {
                    Mode::None => self.metrics.value("not_charted", 1),
                    Mode::Median | Mode::Last => self.offer_periodic(&tl, &mut p, o, true),
                    Mode::Every => {
                        let Some(stay) = o.bed.as_deref().and_then(|b| tl.at(b, o.received_at))
                        else {
                            self.metrics.value("no_patient", 1);
                            continue;
                        };
                        let usable = is_usable(o);
                        if !usable && !self.config.include_unusable {
                            self.metrics.value("unusable", 1);
                            continue;
                        }
                        self.metrics.value("charted", 1);
                        every
                            .entry((
                                stay.patient_id.clone(),
                                stay.bed.ward.clone(),
                                stay.bed.bed.clone(),
                            ))
                            .or_default()
                            .push(every_value(o, String::new()));
                    }
                }
            }
        }
        if every.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let mut messages = Vec::new();
        for ((patient, ward, bed), values) in every {
            messages.extend(self.build(&patient, &ward, &bed, values, now));
        }
        if let Err(e) = self.outbox.queue(messages, None) {
            tracing::error!(error = %e, "EMR outbox: values could not be queued (they are stored)");
            for d in self.destinations() {
                self.metrics.queue.dropped(d, "error");
            }
        }
    }
}

/// A stored value charted as it is (`every`; the read endpoint's too): a value that is not
/// clinically usable goes as none (a data-absent reason), never as its number.
pub fn every_value(o: &Observation, id: String) -> ChartedValue {
    ChartedValue {
        id,
        device_id: o.device_id.as_str().to_owned(),
        metric: o.metric,
        value: is_usable(o).then_some(o.value),
        status: o.status,
        observed_at: o.observed_at,
        period: None,
        channel: o.channel.clone(),
        method: ChartMethod::Every,
        count: 1,
    }
}

/// Valid or questionable: a value a clinician may read.
fn is_usable(o: &Observation) -> bool {
    matches!(o.status, Status::Valid | Status::Questionable)
}

#[cfg(test)]
mod tests;
