//! Issue 6: the pure simulation is deterministic, physically plausible, and its artefacts are
//! not clinical events.

use std::collections::BTreeSet;

use ward_sim::ward::Reading;
use ward_sim::{Emission, EventKind, Payload, Scenario, Ward};
use wardhub_adapters::model::{Status, MDC_NOT_AVAILABLE};

fn stream(scenario: &str, seed: u64, seconds: u64) -> Vec<Emission> {
    let mut ward = Ward::new(Scenario::builtin(scenario), seed);
    ward.step(seconds * 1000)
}

#[test]
fn same_seed_same_stream_different_seed_different_stream() {
    for name in ["deteriorating-patient", "device-chaos"] {
        let a = stream(name, 7, 900);
        let b = stream(name, 7, 900);
        assert!(!a.is_empty());
        assert_eq!(a, b, "{name}: same seed, different stream");
        let c = stream(name, 8, 900);
        assert_ne!(a, c, "{name}: different seeds, same stream");
    }
}

#[test]
fn stepping_in_pieces_gives_the_same_stream() {
    let whole = stream("device-chaos", 3, 300);
    let mut ward = Ward::new(Scenario::builtin("device-chaos"), 3);
    let mut pieces = Vec::new();
    let mut t = 0;
    while t < 300_000 {
        t += 7_300;
        pieces.extend(ward.step(t.min(300_000)));
    }
    assert_eq!(whole, pieces);
}

#[test]
fn a_beds_stream_does_not_depend_on_the_ward_size() {
    let bed3 = |beds: usize| {
        let mut s = Scenario::builtin("quiet-night");
        s.beds = beds;
        let mut ward = Ward::new(s, 11);
        let devices = ward.devices().to_vec();
        ward.step(300_000)
            .into_iter()
            .filter(|e| devices[e.device].bed_index == 2)
            .map(|e| (devices[e.device].id.clone(), e.payload))
            .collect::<Vec<_>>()
    };
    let small = bed3(5);
    let big = bed3(300);
    // Ids are wider in a 300-bed ward (b003-mon); the payloads are the same.
    assert_eq!(small.len(), big.len());
    for ((a, pa), (b, pb)) in small.iter().zip(&big) {
        assert_eq!(a.replace("b03", "b003"), *b);
        assert_eq!(pa, pb);
    }
}

#[test]
fn device_ids_and_beds() {
    let ward = Ward::new(Scenario::builtin("demo"), 1);
    let ids: Vec<_> = ward.devices().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 180);
    assert_eq!(
        &ids[..6],
        ["b01-mon", "b01-pump", "b01-vent", "b01-bed", "b01-call", "b01-wear"]
    );
    assert_eq!(ward.devices()[6 * 6 + 1].bed, "bed-07");
    assert_eq!(ward.devices()[179].id, "b30-wear");
    let mut s = Scenario::builtin("demo");
    s.beds = 2000;
    s.events.clear();
    let ward = Ward::new(s, 1);
    assert_eq!(ward.devices()[0].id, "b0001-mon");
    assert_eq!(ward.devices()[0].bed, "bed-0001");
}

fn readings(e: &Emission) -> &[Reading] {
    match &e.payload {
        Payload::Observations(r) => r,
        _ => &[],
    }
}

/// The adult preset's medium limits (docs/ALARM_PRESETS.md; inclusive "no alarm" ranges).
fn within_adult_limits(metric: &str, v: f64) -> bool {
    let (lo, hi) = match metric {
        "hr" | "pr" => (50.0, 120.0),
        "spo2" => (90.0, 100.0),
        "nibp_sys" => (90.0, 160.0),
        "nibp_dia" => (50.0, 90.0),
        "nibp_mean" => (60.0, 110.0),
        "rr" => (8.0, 30.0),
        "temp" => (35.0, 39.0),
        "etco2" => (15.0, 50.0),
        other => panic!("unexpected metric {other}"),
    };
    (lo..=hi).contains(&v)
}

#[test]
fn every_value_is_one_the_hub_accepts() {
    for (name, seconds) in [("deteriorating-patient", 3 * 3600), ("device-chaos", 3600)] {
        for e in stream(name, 5, seconds) {
            for r in readings(&e) {
                assert!(r.value.is_finite());
                if r.status == Status::NotAvailable {
                    assert_eq!(r.value, MDC_NOT_AVAILABLE);
                } else {
                    assert!(
                        (r.metric.min..=r.metric.max).contains(&r.value),
                        "{name}: {} = {} at {}",
                        r.metric.name,
                        r.value,
                        e.at
                    );
                }
            }
        }
    }
}

#[test]
fn artefacts_and_faults_never_look_like_clinical_events() {
    // device-chaos: probe off, motion, lead off, disconnects, garbage, skew, battery; stable
    // patients. quiet-night: artefacts and nurse calls.
    for (name, seconds) in [("device-chaos", 2 * 3600), ("quiet-night", 3 * 3600)] {
        let scenario = Scenario::builtin(name);
        assert!(
            scenario.events.iter().all(|e| !e.kind.is_clinical())
                && scenario.random.keys().all(|k| !k.is_clinical()),
            "{name} must have no clinical events"
        );
        for seed in [1, 2] {
            let mut unusable = 0;
            let mut kinds = std::collections::HashSet::new();
            for e in stream(name, seed, seconds) {
                kinds.insert(std::mem::discriminant(&e.payload));
                for r in readings(&e) {
                    if !r.status.is_clinically_usable() {
                        unusable += 1;
                        continue;
                    }
                    assert!(
                        within_adult_limits(r.metric.name, r.value),
                        "{name} seed {seed}: usable {} = {} at {} ms crosses an adult limit",
                        r.metric.name,
                        r.value,
                        e.at
                    );
                }
            }
            assert!(unusable > 0, "{name}: artefacts produce invalid readings");
            if name == "device-chaos" {
                // Observations, status, events, garbage, disconnect, reconnect.
                assert_eq!(kinds.len(), 6, "{name}: every kind of emission");
            }
        }
    }
}

#[test]
fn the_deteriorating_patient_scenario_crosses_the_expected_limits() {
    let mut ward = Ward::new(Scenario::builtin("deteriorating-patient"), 1);
    let devices = ward.devices().to_vec();
    let mut seen = BTreeSet::new();
    for e in ward.step(100 * 60 * 1000) {
        let d = &devices[e.device];
        for r in readings(&e) {
            if r.status != Status::Valid {
                continue;
            }
            let crossing = match r.metric.name {
                "spo2" if r.value < 85.0 => "spo2<85",
                "hr" if r.value > 120.0 => "hr>120",
                "nibp_sys" if r.value < 90.0 => "sys<90",
                "rr" if r.value < 8.0 => "rr<8",
                "rr" if r.value > 30.0 => "rr>30",
                _ => continue,
            };
            seen.insert((d.bed.clone(), crossing, e.at / 60_000));
        }
    }
    let has = |bed: &str, c: &str| seen.iter().any(|(b, x, _)| b == bed && *x == c);
    assert!(has("bed-07", "spo2<85"), "desaturation at bed 7");
    assert!(has("bed-12", "hr>120"), "tachycardia at bed 12");
    assert!(has("bed-18", "sys<90"), "hypotension at bed 18");
    assert!(has("bed-25", "rr<8"), "apnoea at bed 25");
    assert!(has("bed-03", "hr>120"), "deterioration at bed 3");
    // The desaturation starts after its scripted time (2 min) and ends within ~8 min.
    let desat_minutes: Vec<u64> = seen
        .iter()
        .filter(|(b, c, _)| b == "bed-07" && *c == "spo2<85")
        .map(|(_, _, m)| *m)
        .collect();
    assert!(
        desat_minutes.iter().all(|m| (2..9).contains(m)),
        "{desat_minutes:?}"
    );
    // Beds without a clinical event stay quiet.
    let quiet: Vec<_> = seen
        .iter()
        .filter(|(b, _, _)| {
            !["bed-03", "bed-07", "bed-12", "bed-18", "bed-21", "bed-25"].contains(&b.as_str())
        })
        .collect();
    assert!(quiet.is_empty(), "{quiet:?}");
}

/// Guards "ward-sim cannot say what really happened": the ground truth lists every scripted
/// clinical event with its bed, kind, start, end and severity, the artefacts with their
/// device, and only what took effect.
#[test]
fn the_ground_truth_lists_what_happened() {
    let mut ward = Ward::new(Scenario::builtin("deteriorating-patient"), 7);
    ward.step(20 * 60_000);
    let truth = ward.truth();
    let clinical: Vec<_> = truth
        .iter()
        .filter(|e| e.class == "clinical")
        .map(|e| (e.bed.as_str(), e.kind, e.start_ms, e.end_ms, e.severity))
        .collect();
    assert_eq!(
        clinical,
        [
            (
                "bed-03",
                EventKind::Deterioration,
                60_000,
                7_260_000,
                Some(1.0)
            ),
            (
                "bed-07",
                EventKind::Desaturation,
                120_000,
                360_000,
                Some(1.0)
            ),
            (
                "bed-12",
                EventKind::Tachycardia,
                180_000,
                480_000,
                Some(1.0)
            ),
            (
                "bed-18",
                EventKind::Hypotension,
                600_000,
                1_800_000,
                Some(1.0)
            ),
            ("bed-25", EventKind::Apnoea, 900_000, 945_000, Some(1.0)),
        ]
    );
    // Artefacts name their device and are not clinical.
    let artefacts: Vec<_> = truth.iter().filter(|e| e.class == "artefact").collect();
    assert!(!artefacts.is_empty());
    assert!(artefacts
        .iter()
        .all(|e| e.device.as_deref().is_some_and(|d| d.ends_with("-mon")) && e.severity.is_none()));
    // In start order, and the same for the same seed.
    assert!(truth.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
    let mut again = Ward::new(Scenario::builtin("deteriorating-patient"), 7);
    again.step(20 * 60_000);
    assert_eq!(again.truth(), truth);
}

/// `ward-sim dump --truth` and `run --truth FILE` write one JSON object per event, with the
/// simulated times and the hub times they were sent at.
#[test]
fn the_truth_file_is_json_lines_with_hub_times() {
    let mut ward = Ward::new(Scenario::builtin("deteriorating-patient"), 7);
    ward.step(5 * 60_000);
    let epoch = 1_795_168_800_000_i64;
    let lines = ward_sim::Report::truth_only(ward.truth().to_vec(), epoch).truth_json_lines();
    let events: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), ward.truth().len());
    let desat = events.iter().find(|e| e["kind"] == "desaturation").unwrap();
    assert_eq!(
        (&desat["bed"], &desat["class"], &desat["severity"]),
        (&"bed-07".into(), &"clinical".into(), &1.0.into())
    );
    assert_eq!(desat["start"], epoch + 120_000);
    assert_eq!(desat["end"], epoch + 360_000);
}
