use std::sync::Arc;

use wardhub_adapters::model::{Clock, Patient};

use super::*;
use crate::registry::SledRegistry;
use crate::store::{Retention, SledStore};

#[derive(Debug)]
struct Fixed(std::sync::atomic::AtomicI64);
impl Clock for Fixed {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn open(dir: &std::path::Path) -> (Arc<PatientContext>, Arc<SledStore>) {
    let store = SledStore::open(dir, 1 << 20, Retention::default()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(Fixed(1_000.into()));
    let registry = Arc::new(SledRegistry::open(store.db(), "icu", false, clock.clone()).unwrap());
    for b in ["bed-03", "bed-07"] {
        registry.add_bed("test", Some("icu".into()), b).unwrap();
    }
    let ctx = PatientContext::open(
        PatientsConfig::default(),
        "icu",
        store.clone(),
        registry,
        clock,
        &prometheus::Registry::new(),
    )
    .unwrap();
    (ctx, store)
}

fn patient(id: &str) -> Patient {
    Patient {
        id: id.into(),
        family: Some("Doe".into()),
        given: Some("Jane".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_recorded_admit_survives_a_restart_and_other_wards_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (ctx, store) = open(dir.path());
        let flusher = tokio::spawn(store.clone().run_flusher(
            std::time::Duration::from_millis(10),
            tokio_util::sync::CancellationToken::new(),
            |_| {},
        ));
        let here = ctx.resolve(&Location {
            point_of_care: "ICU".into(),
            room: "1".into(),
            bed: "BED-03".into(),
        });
        assert_eq!(here.as_ref().map(|b| b.bed.as_str()), Some("bed-03"));
        let elsewhere = ctx.resolve(&Location {
            point_of_care: "4WEST".into(),
            room: "1".into(),
            bed: "bed-03".into(),
        });
        assert!(elsewhere.is_none(), "bed-03 of another ward is not ours");
        let src = Source::Manual {
            user: "nurse".into(),
        };
        assert!(ctx
            .record(
                Kind::Admit,
                patient("p1"),
                here,
                false,
                Some(500),
                src.clone()
            )
            .await
            .unwrap());
        assert!(!ctx
            .record(Kind::Admit, patient("p9"), None, false, Some(500), src)
            .await
            .unwrap());
        flusher.abort();
        let _ = flusher.await;
        drop(ctx);
        drop(store);
    }
    let (ctx, _) = open(dir.path());
    assert_eq!(
        ctx.at("bed-03", 600).unwrap().1.family.as_deref(),
        Some("Doe")
    );
    assert_eq!(ctx.events().len(), 1, "the other ward's admit was not kept");
    assert_eq!(ctx.shown("bed-03").unwrap().label.as_deref(), Some("J.D."));
    assert!(ctx.shown("bed-07").is_none());
}
