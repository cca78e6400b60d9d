//! Patient context: which patient lay in which bed when (docs/PATIENTS.md).
//!
//! ```text
//!  hospital ADT feed ──HL7 v2 ADT/MLLP──▶ adt_listener (adapters) ─▶ PatientContext::apply_adt
//!  nurse (PUT/DELETE /api/v1/beds/{bed}/patient) ───────────────────▶ PatientContext::record
//!         │ one event appended to the sled tree `patients.events`, then the history is
//!         │ replayed (timeline.rs); the ADT sender's AA waits for the store's flush
//!         ▼
//!  at(bed, received_at): the patient a stored observation or an alarm belongs to;
//!  stays(patient): their beds over time, for "this patient's data" across moves and for
//!  the EMR exports (emr/), which chart nothing from a bed without a patient.
//! ```
//!
//! Patient identifiers and names never go to logs or metric labels: events are counted by
//! trigger and outcome only.
//!
//! Layout: [`config`], [`timeline`] (the pure replay), [`metrics`], `adt.rs` (the ADT
//! feed's handler).

mod adt;
pub mod config;
pub mod metrics;
pub mod timeline;

use std::sync::{Arc, Mutex, RwLock};

use wardhub_adapters::model::{Clock, Location, Millis, Patient};

pub use config::{Display, PatientsConfig};
use metrics::PatientMetrics;
pub use timeline::{BedRef, Kind, Recorded, Source, Stay, Timeline};

use crate::registry::SledRegistry;
use crate::store::SledStore;

const TREE: &str = "patients.events";

#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    #[error("patients: {0}")]
    Db(#[from] sled::Error),
    #[error("patients: a recorded event does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("patients: the store is closed")]
    Closed,
    #[error("{0}")]
    Invalid(String),
}

/// The bed ↔ patient history of this hub.
pub struct PatientContext {
    config: PatientsConfig,
    ward: String,
    tree: sled::Tree,
    store: Arc<SledStore>,
    registry: Arc<SledRegistry>,
    clock: Arc<dyn Clock>,
    metrics: PatientMetrics,
    /// Every recorded event; appends are serialised here.
    events: Mutex<Vec<Recorded>>,
    timeline: RwLock<Arc<Timeline>>,
}

impl std::fmt::Debug for PatientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientContext")
            .field("ward", &self.ward)
            .finish_non_exhaustive()
    }
}

/// A patient as the configured display policy lets the dashboard show them.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Shown {
    /// Initials or the full name; `None` with `display = "none"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The identifier and demographics, with `display = "full"` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<Patient>,
    /// Since when they are in this bed.
    pub since: Millis,
}

impl PatientContext {
    pub fn open(
        config: PatientsConfig,
        ward: &str,
        store: Arc<SledStore>,
        registry: Arc<SledRegistry>,
        clock: Arc<dyn Clock>,
        prometheus: &prometheus::Registry,
    ) -> Result<Arc<PatientContext>, PatientError> {
        let tree = store.db().open_tree(TREE)?;
        let mut events = Vec::new();
        for kv in tree.iter() {
            let (_, v) = kv?;
            events.push(serde_json::from_slice::<Recorded>(&v)?);
        }
        let timeline = Timeline::replay(&events);
        let metrics = PatientMetrics::register(prometheus);
        metrics.occupied.set(timeline.occupied() as i64);
        Ok(Arc::new(PatientContext {
            config,
            ward: ward.to_owned(),
            tree,
            store,
            registry,
            clock,
            metrics,
            events: Mutex::new(events),
            timeline: RwLock::new(Arc::new(timeline)),
        }))
    }

    pub fn config(&self) -> &PatientsConfig {
        &self.config
    }

    /// The current history (cheap: shared).
    pub fn timeline(&self) -> Arc<Timeline> {
        self.timeline
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The patient who was in `bed` at `t` (hub time), with their latest demographics.
    pub fn at(&self, bed: &str, t: Millis) -> Option<(Stay, Patient)> {
        let tl = self.timeline();
        let stay = tl.at(bed, t)?.clone();
        let patient = tl.patient(&stay.patient_id).cloned().unwrap_or(Patient {
            id: stay.patient_id.clone(),
            ..Default::default()
        });
        Some((stay, patient))
    }

    /// What the dashboard may show of the patient in `bed` now.
    pub fn shown(&self, bed: &str) -> Option<Shown> {
        let tl = self.timeline();
        let stay = tl.current(bed)?;
        let patient = tl.patient(&stay.patient_id);
        let (label, patient) = match self.config.display {
            Display::None => (None, None),
            Display::Initials => (patient.map(Patient::initials), None),
            Display::Full => (
                patient.map(|p| {
                    let n = p.full_name();
                    if n.is_empty() {
                        p.id.clone()
                    } else {
                        n
                    }
                }),
                patient.cloned(),
            ),
        };
        Some(Shown {
            label,
            patient,
            since: stay.from,
        })
    }

    /// The bed of this hub a PV1-3 location names, if any.
    pub fn resolve(&self, loc: &Location) -> Option<BedRef> {
        let key = format!("{}^{}^{}", loc.point_of_care, loc.room, loc.bed);
        if let Some(bed) = self.config.locations.get(key.trim()) {
            return self
                .registry
                .beds_named(bed)
                .into_iter()
                .next()
                .map(|(ward, bed)| BedRef { ward, bed });
        }
        let poc = loc.point_of_care.trim();
        let ours = if self.config.points_of_care.is_empty() {
            poc.eq_ignore_ascii_case(&self.ward)
        } else {
            self.config
                .points_of_care
                .iter()
                .any(|p| p.trim().eq_ignore_ascii_case(poc))
        };
        if !ours || loc.bed.trim().is_empty() {
            return None;
        }
        let beds = self.registry.beds_named(loc.bed.trim());
        let chosen = match beds.as_slice() {
            [one] => Some(one.clone()),
            many => many
                .iter()
                .find(|(w, _)| w.eq_ignore_ascii_case(&self.ward))
                .cloned(),
        };
        chosen.map(|(ward, bed)| BedRef { ward, bed })
    }

    /// Whether the patient has any recorded event here.
    fn knows(&self, events: &[Recorded], patient_id: &str) -> bool {
        events.iter().any(|e| e.patient.id == patient_id)
    }

    /// Records one event and waits until it is durable. `relevant` false (an event of
    /// another ward about a patient this hub never had) records nothing and returns `false`.
    pub async fn record(
        &self,
        kind: Kind,
        patient: Patient,
        bed: Option<BedRef>,
        relevant_elsewhere: bool,
        at: Option<Millis>,
        source: Source,
    ) -> Result<bool, PatientError> {
        if patient.id.trim().is_empty() {
            return Err(PatientError::Invalid(
                "the patient identifier is empty".into(),
            ));
        }
        let trigger = match &source {
            Source::Adt { trigger, .. } => trigger.clone(),
            Source::Manual { .. } => "manual".into(),
        };
        let ticket = {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            let keep = bed.is_some() || relevant_elsewhere || self.knows(&events, &patient.id);
            if !keep {
                self.metrics.event(&trigger, "other_ward");
                return Ok(false);
            }
            let now = self.clock.now_ms();
            let seq = events.last().map_or(1, |e| e.seq + 1);
            let e = Recorded {
                seq,
                kind,
                patient,
                bed,
                at: at.unwrap_or(now),
                received_at: now,
                source,
            };
            let bytes = serde_json::to_vec(&e)?;
            self.tree.insert(seq.to_be_bytes(), bytes)?;
            events.push(e);
            let before = self.timeline();
            let tl = Timeline::replay(&events);
            self.metrics.occupied.set(tl.occupied() as i64);
            let d_cancel = tl.oddities.cancel_without_event
                - before
                    .oddities
                    .cancel_without_event
                    .min(tl.oddities.cancel_without_event);
            let d_taken = tl.oddities.bed_taken_over
                - before
                    .oddities
                    .bed_taken_over
                    .min(tl.oddities.bed_taken_over);
            self.metrics.oddities(d_cancel, d_taken);
            *self.timeline.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tl);
            self.store.barrier()
        };
        self.store
            .wait_durable(ticket)
            .await
            .map_err(|_| PatientError::Closed)?;
        self.metrics.event(&trigger, "recorded");
        Ok(true)
    }

    /// Every recorded event, oldest first (the API's history of a bed or patient).
    pub fn events(&self) -> Vec<Recorded> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests;
