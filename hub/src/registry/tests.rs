use std::sync::Arc;

use wardhub_adapters::model::SystemClock;

use super::model::StaticDevice;
use super::model::*;
use super::*;

fn open(dir: &std::path::Path) -> (sled::Db, SledRegistry) {
    let db = sled::open(dir).unwrap();
    let r = SledRegistry::open(&db, "ward-1", false, Arc::new(SystemClock)).unwrap();
    (db, r)
}

fn input(kind: &str, bed: Option<&str>) -> DeviceInput {
    DeviceInput {
        kind: Some(kind.into()),
        bed: bed.map(Into::into),
        ..DeviceInput::default()
    }
}

#[test]
fn create_bind_resolve_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_db, r) = open(dir.path());
        let u = r
            .upsert("ben", "mon-1", &input("patient_monitor", Some("bed-01")))
            .unwrap();
        assert!(u.created);
        let secret = u.secret.expect("a new device gets a secret");
        assert_eq!(secret.len(), 64);
        assert_eq!(
            r.resolve("mon-1"),
            Resolution::Bound {
                ward: "ward-1".into(),
                bed: "bed-01".into()
            }
        );
        assert!(matches!(
            r.authenticate("mon-1", Some(secret.as_bytes())),
            AuthOutcome::Device(_)
        ));
        assert!(matches!(
            r.authenticate("mon-1", Some(b"wrong")),
            AuthOutcome::Refused(AuthRefusal::BadCredentials)
        ));
        assert!(matches!(
            r.authenticate("mon-1", None),
            AuthOutcome::Refused(AuthRefusal::BadCredentials)
        ));
        assert!(matches!(
            r.authenticate("nobody", None),
            AuthOutcome::Refused(AuthRefusal::Unknown)
        ));
        // Idempotent: the same PUT again changes nothing and logs nothing.
        let again = r
            .upsert("ben", "mon-1", &input("patient_monitor", Some("bed-01")))
            .unwrap();
        assert!(!again.created && again.secret.is_none());
        assert_eq!(r.history("mon-1").unwrap().len(), 1);
    }
    // Everything is there after a reopen.
    let (_db, r) = open(dir.path());
    assert!(r.is_registered("mon-1"));
    assert_eq!(r.beds(None).len(), 1);
    assert_eq!(
        r.beds(None)[0].slots["patient_monitor"].as_deref(),
        Some("mon-1")
    );
    let h = r.history("mon-1").unwrap();
    assert_eq!(
        (h[0].who.as_str(), h[0].action.as_str()),
        ("ben", "created")
    );
}

#[test]
fn slots_conflict_unless_replace_and_retire_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, r) = open(dir.path());
    r.upsert("ben", "a", &input("infusion_pump", Some("bed-02")))
        .unwrap();
    let e = r
        .upsert("ben", "b", &input("infusion_pump", Some("bed-02")))
        .unwrap_err();
    assert!(matches!(e, RegistryError::Conflict(_)), "{e}");
    // The failed create left nothing behind.
    assert!(!r.is_registered("b"));
    // Another kind fits beside it.
    r.upsert("ben", "c", &input("ventilator", Some("bed-02")))
        .unwrap();
    r.upsert("ben", "b", &input("infusion_pump", None)).unwrap();
    let e = r.bind("ben", "b", None, "bed-02", false).unwrap_err();
    assert!(matches!(e, RegistryError::Conflict(_)));
    let v = r.bind("ben", "b", None, "bed-02", true).unwrap();
    assert_eq!(v.bed.as_deref(), Some("bed-02"));
    assert_eq!(r.resolve("a"), Resolution::Unbound);
    assert!(r
        .history("a")
        .unwrap()
        .iter()
        .any(|c| c.action == "unbound"));
    // A device is bound to at most one bed: binding elsewhere frees its slot.
    r.bind("ben", "b", None, "bed-03", false).unwrap();
    r.bind("ben", "a", None, "bed-02", false).unwrap();
    // Retired: refused everywhere, slot freed, not bindable.
    r.retire("ben", "a").unwrap();
    assert_eq!(r.resolve("a"), Resolution::Refused);
    assert!(matches!(
        r.authenticate("a", None),
        AuthOutcome::Refused(AuthRefusal::Retired)
    ));
    assert!(matches!(
        r.bind("ben", "a", None, "bed-02", false),
        Err(RegistryError::Conflict(_))
    ));
    r.bind("ben", "b", None, "bed-02", false).unwrap();
    let retired = r.list(&ListFilter {
        state: Some(DeviceState::Retired),
        ..ListFilter::default()
    });
    assert_eq!(retired.len(), 1);
}

#[test]
fn concurrent_binds_to_one_slot_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, r) = open(dir.path());
    let r = Arc::new(r);
    for i in 0..8 {
        r.upsert("ben", &format!("pump-{i}"), &input("infusion_pump", None))
            .unwrap();
    }
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let r = r.clone();
            std::thread::spawn(move || r.bind("ben", &format!("pump-{i}"), None, "bed-09", false))
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(Result::is_ok)
        .count();
    assert_eq!(wins, 1);
    let bound = r.list(&ListFilter {
        bed: Some("bed-09".into()),
        ..ListFilter::default()
    });
    assert_eq!(bound.len(), 1);
}

#[test]
fn rotate_and_caller_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, r) = open(dir.path());
    let short = DeviceInput {
        secret: Some("short".into()),
        ..input("wearable", None)
    };
    assert!(matches!(
        r.upsert("ben", "w", &short),
        Err(RegistryError::Invalid(_))
    ));
    let mine = DeviceInput {
        secret: Some("a-secret-of-20-chars".into()),
        ..input("wearable", None)
    };
    let u = r.upsert("ben", "w", &mine).unwrap();
    assert!(u.secret.is_none(), "a caller's secret is not echoed");
    assert!(matches!(
        r.authenticate("w", Some(b"a-secret-of-20-chars")),
        AuthOutcome::Device(_)
    ));
    let new = r.rotate("ben", "w").unwrap();
    assert!(matches!(
        r.authenticate("w", Some(b"a-secret-of-20-chars")),
        AuthOutcome::Refused(AuthRefusal::BadCredentials)
    ));
    assert!(matches!(
        r.authenticate("w", Some(new.as_bytes())),
        AuthOutcome::Device(_)
    ));
}

#[test]
fn config_seeds_keep_registry_changes() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = vec![
        StaticDevice {
            id: "m1".into(),
            bed: "bed-01".into(),
            ward: None,
            kind: None,
            secret_sha256: None,
        },
        StaticDevice {
            id: "m2".into(),
            bed: "bed-01".into(),
            ward: None,
            kind: None,
            secret_sha256: None,
        },
    ];
    let secret;
    {
        let (_db, r) = open(dir.path());
        r.seed(&seeds);
        // Two unspecified devices share a bed (they hold no slot) and need no password.
        assert!(matches!(r.authenticate("m1", None), AuthOutcome::Device(_)));
        assert!(matches!(r.authenticate("m2", None), AuthOutcome::Device(_)));
        secret = r.rotate("ben", "m1").unwrap();
    }
    let (_db, r) = open(dir.path());
    r.seed(&seeds);
    assert!(matches!(
        r.authenticate("m1", None),
        AuthOutcome::Refused(AuthRefusal::BadCredentials)
    ));
    assert!(matches!(
        r.authenticate("m1", Some(secret.as_bytes())),
        AuthOutcome::Device(_)
    ));
    assert!(r
        .problems(None)
        .iter()
        .any(|p| p.device == "m2" && p.problem == "no_credential"));
}

#[test]
fn import_is_all_or_nothing_unless_partial() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, r) = open(dir.path());
    let text = "id,kind,bed,maintenance_due\n\
                p1,infusion_pump,bed-01,2030-01-01\n\
                p2,infusion_pump,bed-01,\n\
                p3,bad kind,bed-02,\n\
                p4,ventilator,bed-02,2030-02-30\n\
                p5,ventilator,bed-03\n\
                p6,smart_bed,bed-03,\n";
    let (rows, bad) = csv::parse(text);
    let unreadable: Vec<_> = bad
        .into_iter()
        .map(|e| ImportError {
            line: e.line,
            error: e.error,
        })
        .collect();
    let report = r.import("ben", &rows, unreadable.clone(), false).unwrap();
    assert!(!report.applied);
    let lines: Vec<usize> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{report:?}");
    assert!(r.all().is_empty());
    let report = r.import("ben", &rows, unreadable, true).unwrap();
    assert!(report.applied);
    assert_eq!(report.created, 2);
    assert_eq!(report.secrets.len(), 2);
    let ids: Vec<String> = r.all().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, vec!["p1", "p6"]);
    // An export imports again unchanged.
    let exported = csv::export(&r.all());
    let (rows, bad) = csv::parse(&exported);
    assert!(bad.is_empty(), "{bad:?}");
    let report = r.import("ben", &rows, Vec::new(), false).unwrap();
    assert!(report.applied && report.errors.is_empty() && report.created == 0);
}

#[test]
fn csv_quotes_and_line_numbers() {
    let text = "id,kind,notes\r\nx1,wearable,\"left arm, \"\"blue\"\"\nstrap\"\r\nx2,wearable\n";
    let (rows, bad) = csv::parse(text);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].1.notes.as_deref(),
        Some("left arm, \"blue\"\nstrap")
    );
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 4);
    let (_, bad) = csv::parse("id,colour\nx,red\n");
    assert_eq!(bad[0].line, 1);
}

#[test]
fn bed_claims() {
    use events::claim_matches;
    let b = Some(("ward-1", "bed-01"));
    assert!(claim_matches(b, "", ""));
    assert!(claim_matches(b, "ward-1", "bed-01"));
    assert!(claim_matches(b, "", "BED-01"));
    assert!(!claim_matches(b, "", "bed-02"));
    assert!(!claim_matches(b, "icu", "bed-01"));
    assert!(!claim_matches(None, "", "bed-01"));
}

/// The command-line tools read the API's JSON back into these types: each must come back as
/// it went out.
#[test]
fn views_read_back_from_their_json() {
    fn round_trip<T>(v: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_value(serde_json::to_value(v).unwrap()).unwrap()
    }
    let dir = tempfile::tempdir().unwrap();
    let (_db, r) = open(dir.path());
    let u = r
        .upsert("ben", "mon-1", &input("patient_monitor", Some("bed-01")))
        .unwrap();
    let back = round_trip(&u);
    assert_eq!(
        (back.created, &back.secret, &back.device),
        (u.created, &u.secret, &u.device)
    );
    let u = r
        .upsert("ben", "mon-1", &input("patient_monitor", None))
        .unwrap();
    assert!(u.secret.is_none());
    assert_eq!(round_trip(&u).secret, None);
    for v in r.list(&ListFilter::default()) {
        assert_eq!(round_trip(&v), v);
    }
    for b in r.beds(None) {
        assert_eq!(round_trip(&b), b);
    }
    let problems = r.problems(None);
    assert!(!problems.is_empty());
    for p in problems {
        assert_eq!(round_trip(&p), p);
    }
    for c in r.history("mon-1").unwrap() {
        assert_eq!(round_trip(&c), c);
    }
    let (rows, _) = csv::parse("id,kind,bed\np1,infusion_pump,bed-01\np2,infusion_pump,bed-01\n");
    let report = r.import("ben", &rows, Vec::new(), true).unwrap();
    assert!(!report.errors.is_empty() && !report.secrets.is_empty());
    assert_eq!(round_trip(&report), report);
}
