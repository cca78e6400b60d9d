use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use wardhub_adapters::model::{metric_by_name, Clock, DeviceId, Observation, Patient, Status};

use super::config::{FhirExport, Hl7Export};
use super::*;
use crate::outbound::Dest;
use crate::patients::{BedRef, Kind, PatientContext, PatientsConfig, Source};
use crate::pipeline::StoredObserver;
use crate::registry::SledRegistry;
use crate::store::{Retention, SledStore};

const MIN: i64 = 60_000;
/// 2026-12-02T10:00:00Z, the start of a 15-minute period.
const T0: i64 = 1_796_205_600_000;

#[derive(Debug)]
struct TestClock(AtomicI64);
impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct World {
    store: Arc<SledStore>,
    patients: Arc<PatientContext>,
    clock: Arc<TestClock>,
    registry: Arc<SledRegistry>,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), 1 << 20, Retention::default()).unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let registry = Arc::new(
        SledRegistry::open(store.db(), "icu", false, clock.clone() as Arc<dyn Clock>).unwrap(),
    );
    for b in ["bed-03", "bed-07", "bed-09"] {
        registry.add_bed("test", Some("icu".into()), b).unwrap();
    }
    let patients = PatientContext::open(
        PatientsConfig::default(),
        "icu",
        store.clone(),
        registry.clone(),
        clock.clone(),
        &prometheus::Registry::new(),
    )
    .unwrap();
    World {
        store,
        patients,
        clock,
        registry,
        _dir: dir,
    }
}

fn config() -> EmrConfig {
    EmrConfig {
        hl7: Some(Hl7Export {
            connect: "127.0.0.1:9".into(),
            ..Hl7Export::default()
        }),
        fhir: Some(FhirExport {
            base_url: "http://127.0.0.1:9/fhir".into(),
            ..FhirExport::default()
        }),
        ..EmrConfig::default()
    }
}

fn obs(bed: &str, metric: &str, value: f64, at: i64) -> Observation {
    Observation {
        device_id: DeviceId::new("mon-1").unwrap(),
        bed: Some(bed.into()),
        metric: metric_by_name(metric).unwrap(),
        value,
        observed_at: at,
        received_at: at,
        status: Status::Valid,
        channel: None,
        clock_correction_ms: 0,
    }
}

async fn admit(w: &World, id: &str, bed: &str, at: i64) {
    let flusher = tokio::spawn(w.store.clone().run_flusher(
        std::time::Duration::from_millis(5),
        tokio_util::sync::CancellationToken::new(),
        |_| {},
    ));
    w.patients
        .record(
            Kind::Admit,
            Patient {
                id: id.into(),
                family: Some("Doe".into()),
                ..Default::default()
            },
            Some(BedRef {
                ward: "icu".into(),
                bed: bed.into(),
            }),
            true,
            Some(at),
            Source::Manual { user: "n".into() },
        )
        .await
        .unwrap();
    flusher.abort();
}

fn open_emr(w: &World, registry: &prometheus::Registry) -> Arc<Emr> {
    Emr::open(
        config(),
        &w.store,
        w.registry.beds(None).into_iter().map(|b| b.bed).collect(),
        w.patients.clone(),
        registry,
        w.clock.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn every_value_goes_to_both_destinations_and_a_bed_without_a_patient_to_none() {
    let w = world();
    admit(&w, "MRN-1", "bed-03", T0 - MIN).await;
    let prom = prometheus::Registry::new();
    let emr = open_emr(&w, &prom);
    emr.on_stored(&[
        obs("bed-03", "nibp_sys", 120.0, T0),
        obs("bed-03", "nibp_dia", 80.0, T0),
        obs("bed-09", "nibp_sys", 99.0, T0),
    ]);
    let (_, hl7) = emr.outbox().oldest(Dest::Hl7).unwrap().unwrap();
    assert!(hl7.payload.contains("MRN-1"), "PID-3 carries the patient");
    assert!(hl7.payload.contains("|120|"), "{}", hl7.payload);
    assert!(!hl7.payload.contains("|99|"), "bed 9 has no patient");
    let (_, fhir) = emr.outbox().oldest(Dest::Fhir).unwrap().unwrap();
    assert_eq!(fhir.batch_id, hl7.batch_id, "one batch, two forms");
    assert_eq!(emr.outbox().depth(Dest::Hl7), 1);
    assert_eq!(
        emr.metrics.values.with_label_values(&["no_patient"]).get(),
        1
    );
    assert_eq!(emr.metrics.values.with_label_values(&["charted"]).get(), 2);
}

#[tokio::test]
async fn a_period_is_charted_once_after_its_delay_even_across_a_restart() {
    let w = world();
    admit(&w, "MRN-1", "bed-03", T0 - MIN).await;
    {
        let emr = open_emr(&w, &prometheus::Registry::new());
        let values: Vec<_> = [60.0, 62.0, 64.0, 200.0, 61.0]
            .iter()
            .enumerate()
            .map(|(i, v)| obs("bed-03", "hr", *v, T0 + i as i64 * 1000))
            .collect();
        // What the pipeline stores, the rebuild finds.
        w.store.write(&values).unwrap();
        w.clock.0.store(T0 + 5_000, Ordering::Relaxed);
        emr.on_stored(&values);
        emr.tick();
        assert_eq!(emr.outbox().depth(Dest::Hl7), 0, "the period is still open");
    } // a crash: the open period was in memory only
    let emr = open_emr(&w, &prometheus::Registry::new());
    w.clock.0.store(T0 + 16 * MIN, Ordering::Relaxed);
    emr.tick();
    assert_eq!(
        emr.outbox().depth(Dest::Hl7),
        1,
        "rebuilt from the store, charted once"
    );
    let (_, e) = emr.outbox().oldest(Dest::Hl7).unwrap().unwrap();
    assert!(
        e.payload.contains("|62|"),
        "the median of 60 61 62 64 200: {}",
        e.payload
    );
    emr.tick();
    assert_eq!(emr.outbox().depth(Dest::Hl7), 1, "nothing twice");
    drop(emr);
    let emr = open_emr(&w, &prometheus::Registry::new());
    emr.tick();
    assert_eq!(
        emr.outbox().depth(Dest::Hl7),
        1,
        "not charted again after a restart"
    );
    emr.on_stored(&[obs("bed-03", "hr", 70.0, T0 + 2000)]);
    assert_eq!(emr.metrics.values.with_label_values(&["late"]).get(), 1);
}
