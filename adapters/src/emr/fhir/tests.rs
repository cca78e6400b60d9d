use serde_json::{json, Value};

use super::*;
use crate::model::charting::{ChartMethod, ChartedValue};
use crate::model::{metric_by_name, Patient, Status};

use crate::emr::testing::{batch, value, T0};

fn opts() -> FhirOptions {
    FhirOptions {
        patient_system: "urn:oid:1.2.3".into(),
        device_system: "urn:wardhub:device".into(),
        observation_system: "urn:wardhub:observation".into(),
    }
}

/// The Observations of a transaction, in entry order.
fn obs(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect()
}

fn codes(concept: &Value) -> Vec<(String, String)> {
    concept["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["system"].as_str().unwrap().to_owned(),
                c["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn loinc_and_mdc(loinc: &[&str], mdc: u32) -> Vec<(String, String)> {
    loinc
        .iter()
        .map(|c| (LOINC.to_owned(), (*c).to_owned()))
        .chain([(MDC.to_owned(), mdc.to_string())])
        .collect()
}

#[test]
fn a_heart_rate_observation_in_full() {
    let b = batch(vec![value("B1.0", "mon-1", "hr", Some(72.0), T0)]);
    let t = transaction(&b, &opts());
    let patient = t["entry"][0]["fullUrl"].clone();
    let device = t["entry"][1]["fullUrl"].clone();
    assert_eq!(
        *obs(&t)[0],
        json!({
            "resourceType": "Observation",
            "id": "B1.0",
            "meta": { "profile": [
                "http://hl7.org/fhir/StructureDefinition/vitalsigns",
                "http://hl7.org/fhir/StructureDefinition/heartrate",
            ] },
            "identifier": [{ "system": "urn:wardhub:observation", "value": "B1.0" }],
            "status": "final",
            "category": [{
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }],
                "text": "Vital Signs",
            }],
            "code": {
                "coding": [
                    { "system": "http://loinc.org", "code": "8867-4", "display": "Heart rate" },
                    {
                        "system": "urn:iso:std:iso:11073:10101",
                        "code": "147842",
                        "display": "MDC_ECG_HEART_RATE",
                    },
                ],
                "text": "Heart rate",
            },
            "subject": { "reference": patient },
            "effectiveDateTime": "2026-11-20T10:00:00.000Z",
            "valueQuantity": {
                "value": 72.0,
                "unit": "beats/minute",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
            "device": { "reference": device },
        })
    );
}

#[test]
fn each_metric_has_its_codes_profile_and_unit() {
    // (metric, LOINC codes, profile, vital-signs category, UCUM code, display unit)
    type Row = (
        &'static str,
        &'static [&'static str],
        Option<&'static str>,
        bool,
        &'static str,
        &'static str,
    );
    let table: [Row; 7] = [
        (
            "hr",
            &["8867-4"],
            Some("heartrate"),
            true,
            "/min",
            "beats/minute",
        ),
        (
            "pr",
            &["8867-4", "8889-8"],
            Some("heartrate"),
            true,
            "/min",
            "beats/minute",
        ),
        (
            "spo2",
            &["2708-6", "59408-5"],
            Some("oxygensat"),
            true,
            "%",
            "%",
        ),
        (
            "rr",
            &["9279-1"],
            Some("resprate"),
            true,
            "/min",
            "breaths/minute",
        ),
        ("temp", &["8310-5"], Some("bodytemp"), true, "Cel", "°C"),
        ("etco2", &["19891-1"], None, false, "mm[Hg]", "mmHg"),
        ("nibp_mean", &["8478-0"], None, true, "mm[Hg]", "mmHg"),
    ];
    for (name, loinc, profile, vital, ucum, unit) in table {
        let m = metric_by_name(name).unwrap();
        let b = batch(vec![value("B1.0", "mon-1", name, Some(42.5), T0)]);
        let t = transaction(&b, &opts());
        let o = obs(&t)[0];
        assert_eq!(codes(&o["code"]), loinc_and_mdc(loinc, m.code), "{name}");
        assert_eq!(
            o["code"]["coding"].as_array().unwrap().last().unwrap()["display"],
            m.refid
        );
        match profile {
            Some(p) => assert_eq!(
                o["meta"]["profile"],
                json!([
                    VITAL_SIGNS_PROFILE,
                    format!("http://hl7.org/fhir/StructureDefinition/{p}")
                ]),
                "{name}"
            ),
            None => assert!(o.get("meta").is_none(), "{name}"),
        }
        assert_eq!(o.get("category").is_some(), vital, "{name}");
        assert_eq!(
            o["valueQuantity"],
            json!({ "value": 42.5, "unit": unit, "system": UCUM, "code": ucum }),
            "{name}"
        );
        assert_eq!(o["status"], "final");
        assert!(o.get("component").is_none());
    }
}

#[test]
fn a_bp_triple_is_one_panel() {
    let b = batch(vec![
        value("B1.0", "nibp-1", "nibp_sys", Some(120.0), T0),
        value("B1.1", "nibp-1", "nibp_dia", Some(80.0), T0),
        value("B1.2", "mon-2", "hr", Some(64.0), T0),
        value("B1.3", "nibp-1", "nibp_mean", Some(93.0), T0),
    ]);
    let t = transaction(&b, &opts());
    let o = obs(&t);
    assert_eq!(o.len(), 2);
    let bp = o[0];
    assert_eq!(bp["id"], "B1.0");
    assert_eq!(
        bp["meta"]["profile"],
        json!([
            VITAL_SIGNS_PROFILE,
            "http://hl7.org/fhir/StructureDefinition/bp"
        ])
    );
    assert_eq!(codes(&bp["code"]), loinc_and_mdc(&["85354-9"], 150_020));
    assert!(bp.get("valueQuantity").is_none() && bp.get("dataAbsentReason").is_none());
    let ids: Vec<&str> = bp["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["B1.0", "B1.1", "B1.3"]);
    let comps = bp["component"].as_array().unwrap();
    let got: Vec<(Vec<(String, String)>, Value)> = comps
        .iter()
        .map(|c| (codes(&c["code"]), c["valueQuantity"]["value"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (loinc_and_mdc(&["8480-6"], 150_021), json!(120.0)),
            (loinc_and_mdc(&["8462-4"], 150_022), json!(80.0)),
            (loinc_and_mdc(&["8478-0"], 150_023), json!(93.0)),
        ]
    );
    for c in comps {
        assert_eq!(c["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(c["valueQuantity"]["unit"], "mmHg");
    }
    assert_eq!(bp["effectiveDateTime"], "2026-11-20T10:00:00.000Z");
    assert_eq!(
        bp["device"]["reference"],
        device_full_url(&b, "nibp-1").as_str()
    );
    assert_eq!(o[1]["id"], "B1.2");
    // The PUT is of the panel's id; nothing else is sent for its members.
    let urls: Vec<&str> = t["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["request"]["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "Patient",
            "Device",
            "Device",
            "Observation/B1.0",
            "Observation/B1.2"
        ]
    );
}

#[test]
fn panels_are_per_device_time_and_method() {
    let median = |v: ChartedValue| ChartedValue {
        method: ChartMethod::Median,
        period: Some((T0 - 900_000, T0)),
        count: 3,
        ..v
    };
    let b = batch(vec![
        value("a", "nibp-1", "nibp_sys", Some(120.0), T0),
        value("b", "nibp-2", "nibp_sys", Some(130.0), T0),
        value("c", "nibp-1", "nibp_sys", Some(125.0), T0 + 60_000),
        value("d", "nibp-2", "nibp_dia", Some(85.0), T0),
        value("e", "nibp-1", "nibp_dia", Some(82.0), T0 + 60_000),
        value("f", "nibp-1", "nibp_dia", Some(81.0), T0),
        median(value("g", "nibp-1", "nibp_dia", Some(79.0), T0)),
        // A second systolic of the same device and time is a second panel.
        value("h", "nibp-1", "nibp_sys", Some(119.0), T0),
    ]);
    let t = transaction(&b, &opts());
    let panels: Vec<(String, Vec<String>)> = obs(&t)
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["identifier"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["value"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let p = |id: &str, members: &[&str]| {
        (
            id.to_owned(),
            members.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        panels,
        [
            p("a", &["a", "f"]),
            p("b", &["b", "d"]),
            p("c", &["c", "e"]),
            p("g", &["g"]),
            p("h", &["h"]),
        ]
    );
    let g = obs(&t)[3];
    assert_eq!(
        g["effectivePeriod"],
        json!({ "start": "2026-11-20T09:45:00.000Z", "end": "2026-11-20T10:00:00.000Z" })
    );
    assert_eq!(
        g["note"][0]["text"],
        "median of 3 valid values from 2026-11-20T09:45:00.000Z until 2026-11-20T10:00:00.000Z"
    );
}

#[test]
fn a_lone_systolic_is_a_panel_with_an_absent_diastolic() {
    let b = batch(vec![value("B1.0", "nibp-1", "nibp_sys", Some(118.0), T0)]);
    let t = transaction(&b, &opts());
    let bp = obs(&t)[0];
    assert_eq!(codes(&bp["code"]), loinc_and_mdc(&["85354-9"], 150_020));
    let comps = bp["component"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    assert_eq!(comps[0]["valueQuantity"]["value"], json!(118.0));
    assert_eq!(
        codes(&comps[1]["code"]),
        loinc_and_mdc(&["8462-4"], 150_022)
    );
    assert!(comps[1].get("valueQuantity").is_none());
    assert_eq!(
        codes(&comps[1]["dataAbsentReason"]),
        [(DATA_ABSENT_REASON.to_owned(), "unknown".to_owned())]
    );

    let b = batch(vec![value("B1.0", "nibp-1", "nibp_dia", Some(70.0), T0)]);
    let t = transaction(&b, &opts());
    let comps = obs(&t)[0]["component"].as_array().unwrap().clone();
    assert_eq!(
        codes(&comps[0]["code"]),
        loinc_and_mdc(&["8480-6"], 150_021)
    );
    assert_eq!(comps[0]["dataAbsentReason"]["coding"][0]["code"], "unknown");
    assert_eq!(comps[1]["valueQuantity"]["value"], json!(70.0));
}

#[test]
fn a_lone_mean_is_a_plain_observation() {
    let b = batch(vec![
        value("B1.0", "nibp-1", "nibp_mean", Some(90.0), T0),
        value("B1.1", "nibp-1", "nibp_sys", Some(120.0), T0 + 1_000),
    ]);
    let t = transaction(&b, &opts());
    let o = obs(&t);
    assert_eq!(codes(&o[0]["code"]), loinc_and_mdc(&["8478-0"], 150_023));
    assert_eq!(o[0]["valueQuantity"]["value"], json!(90.0));
    assert!(o[0].get("meta").is_none());
    assert_eq!(codes(&o[1]["code"]), loinc_and_mdc(&["85354-9"], 150_020));
}

#[test]
fn the_transaction() {
    let b = batch(vec![
        value("B1.0", "mon-1", "hr", Some(72.0), T0),
        value("B1.1", "mon-2", "spo2", Some(97.0), T0),
        value("B1.2", "mon-1", "rr", Some(15.0), T0),
    ]);
    let t = transaction(&b, &opts());
    assert_eq!(t["resourceType"], "Bundle");
    assert_eq!(t["type"], "transaction");
    assert_eq!(
        t["identifier"],
        json!({ "system": BATCH_SYSTEM, "value": "B1" })
    );
    assert_eq!(t["timestamp"], "2026-11-20T10:00:05.000Z");
    let e = t["entry"].as_array().unwrap();
    assert_eq!(e.len(), 6);

    assert_eq!(e[0]["fullUrl"], patient_full_url(&b).as_str());
    assert_eq!(
        e[0]["request"],
        json!({ "method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:oid:1.2.3|4711" })
    );
    assert_eq!(
        e[0]["resource"],
        json!({
            "resourceType": "Patient",
            "identifier": [{ "system": "urn:oid:1.2.3", "value": "4711" }],
            "name": [{ "family": "Doe", "given": ["Jane"] }],
            "gender": "female",
            "birthDate": "1961-01-01",
        })
    );
    for (i, d) in [(1, "mon-1"), (2, "mon-2")] {
        assert_eq!(e[i]["fullUrl"], device_full_url(&b, d).as_str());
        assert_eq!(
            e[i]["resource"],
            json!({
                "resourceType": "Device",
                "identifier": [{ "system": "urn:wardhub:device", "value": d }],
            })
        );
        assert_eq!(
            e[i]["request"],
            json!({
                "method": "POST",
                "url": "Device",
                "ifNoneExist": format!("identifier=urn:wardhub:device|{d}"),
            })
        );
    }
    for (i, (id, dev)) in [(3, ("B1.0", 1)), (4, ("B1.1", 2)), (5, ("B1.2", 1))] {
        assert_eq!(
            e[i]["request"],
            json!({ "method": "PUT", "url": format!("Observation/{id}") })
        );
        assert_eq!(e[i]["resource"]["id"], id);
        assert_eq!(e[i]["resource"]["subject"]["reference"], e[0]["fullUrl"]);
        assert_eq!(e[i]["resource"]["device"]["reference"], e[dev]["fullUrl"]);
        assert!(e[i]["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
    }
    // Every fullUrl differs.
    let mut urls: Vec<&str> = e.iter().map(|x| x["fullUrl"].as_str().unwrap()).collect();
    urls.sort_unstable();
    urls.dedup();
    assert_eq!(urls.len(), 6);
}

#[test]
fn the_same_batch_gives_the_same_bytes() {
    let make = || {
        batch(vec![
            value("B1.0", "mon-1", "hr", Some(72.0), T0),
            value("B1.1", "nibp-1", "nibp_sys", Some(120.0), T0),
            value("B1.2", "nibp-1", "nibp_dia", Some(80.0), T0),
        ])
    };
    let a = serde_json::to_string(&transaction(&make(), &opts())).unwrap();
    let b = serde_json::to_string(&transaction(&make(), &opts())).unwrap();
    assert_eq!(a, b);
    let mut other = make();
    other.id = "B2".into();
    let c = serde_json::to_string(&transaction(&other, &opts())).unwrap();
    assert_ne!(a, c);
    assert_ne!(patient_full_url(&make()), patient_full_url(&other));

    // The UUIDs are RFC 9562 version 8 (name-based, SHA-256), and stable across releases:
    // a resend after an upgrade must still be the same Bundle.
    assert_eq!(
        patient_full_url(&make()),
        "urn:uuid:".to_owned() + &uuid_of("patient\0B1")
    );
    let u = patient_full_url(&make());
    let u = u.strip_prefix("urn:uuid:").unwrap();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "8");
    assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    assert_eq!(urn_uuid("x"), urn_uuid("x"));
    assert_ne!(urn_uuid("x"), urn_uuid("y"));
}

/// The UUID of a name, computed here independently of `urn_uuid`.
fn uuid_of(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("wardhub\0{name}"));
    let mut b: Vec<u8> = h[..16].to_vec();
    b[6] = 0x80 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex[..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..].concat()
    )
}

#[test]
fn unusable_values_have_a_data_absent_reason() {
    let with = |id: &str, status: Status, v: Option<f64>| ChartedValue {
        status,
        ..value(id, "mon-1", "spo2", v, T0)
    };
    let b = batch(vec![
        with("a", Status::Invalid, None),
        with("b", Status::Invalid, Some(55.0)),
        with("c", Status::NotAvailable, None),
        with("d", Status::Valid, None),
        with("e", Status::Questionable, None),
        with("f", Status::Valid, Some(f64::NAN)),
        with("g", Status::Valid, Some(f64::INFINITY)),
        with("h", Status::Valid, Some(f64::NEG_INFINITY)),
    ]);
    let t = transaction(&b, &opts());
    let got: Vec<String> = obs(&t)
        .iter()
        .map(|o| {
            assert!(o.get("valueQuantity").is_none(), "{o}");
            assert!(o.get("interpretation").is_none(), "{o}");
            assert_eq!(o["status"], "final");
            // Still a vital sign in its profile: vs-2 takes a data-absent reason for a value.
            assert!(o["meta"]["profile"][1]
                .as_str()
                .unwrap()
                .ends_with("oxygensat"));
            let c = &o["dataAbsentReason"]["coding"][0];
            assert_eq!(c["system"], DATA_ABSENT_REASON);
            c["code"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        got,
        [
            "error",
            "error",
            "not-performed",
            "unknown",
            "unknown",
            "not-a-number",
            "positive-infinity",
            "negative-infinity",
        ]
    );
    // In a panel, per component.
    let b = batch(vec![
        ChartedValue {
            status: Status::Invalid,
            ..value("s", "nibp-1", "nibp_sys", None, T0)
        },
        value("d", "nibp-1", "nibp_dia", Some(80.0), T0),
    ]);
    let t = transaction(&b, &opts());
    let comps = obs(&t)[0]["component"].as_array().unwrap().clone();
    assert_eq!(comps[0]["dataAbsentReason"]["coding"][0]["code"], "error");
    assert!(comps[0].get("valueQuantity").is_none());
    assert_eq!(comps[1]["valueQuantity"]["value"], json!(80.0));
}

#[test]
fn a_questionable_value_is_final_and_interpreted() {
    let b = batch(vec![
        ChartedValue {
            status: Status::Questionable,
            ..value("q", "mon-1", "rr", Some(31.0), T0)
        },
        ChartedValue {
            status: Status::Questionable,
            ..value("s", "nibp-1", "nibp_sys", Some(190.0), T0)
        },
    ]);
    let t = transaction(&b, &opts());
    let o = obs(&t);
    assert_eq!(o[0]["status"], "final");
    assert_eq!(o[0]["valueQuantity"]["value"], json!(31.0));
    assert_eq!(
        codes(&o[0]["interpretation"][0]),
        [(MEASUREMENT_STATUS.to_owned(), "questionable".to_owned())]
    );
    let comp = &o[1]["component"][0];
    assert_eq!(
        comp["interpretation"][0]["coding"][0]["code"],
        "questionable"
    );
    assert!(o[1].get("interpretation").is_none());
}

#[test]
fn periodic_values_have_their_period_and_a_note() {
    let b = batch(vec![
        ChartedValue {
            method: ChartMethod::Median,
            period: Some((T0 - 900_000, T0)),
            count: 15,
            ..value("m", "mon-1", "spo2", Some(96.5), T0)
        },
        ChartedValue {
            method: ChartMethod::Last,
            period: Some((T0 - 3_600_000, T0)),
            count: 2,
            ..value("l", "mon-1", "temp", Some(37.1), T0 - 120_000)
        },
        ChartedValue {
            method: ChartMethod::Median,
            period: None,
            count: 1,
            ..value("n", "mon-1", "rr", Some(14.0), T0)
        },
    ]);
    let t = transaction(&b, &opts());
    let o = obs(&t);
    assert_eq!(
        o[0]["effectivePeriod"],
        json!({ "start": "2026-11-20T09:45:00.000Z", "end": "2026-11-20T10:00:00.000Z" })
    );
    assert!(o[0].get("effectiveDateTime").is_none());
    assert_eq!(
        o[0]["note"],
        json!([{ "text": "median of 15 valid values from 2026-11-20T09:45:00.000Z until 2026-11-20T10:00:00.000Z" }])
    );
    // The last valid value is one measurement, at its own time.
    assert_eq!(o[1]["effectiveDateTime"], "2026-11-20T09:58:00.000Z");
    assert!(o[1].get("effectivePeriod").is_none());
    assert_eq!(
        o[1]["note"][0]["text"],
        "last valid value of 2 values from 2026-11-20T09:00:00.000Z until 2026-11-20T10:00:00.000Z"
    );
    assert_eq!(o[2]["effectiveDateTime"], "2026-11-20T10:00:00.000Z");
    assert_eq!(o[2]["note"][0]["text"], "median of 1 valid value");
}

#[test]
fn odd_names_and_ids_stay_intact() {
    let mut b = batch(vec![
        value("B1 .0", "mon|1,$x", "hr", Some(-0.0), T0),
        value("B1.1", "mon|1,$x", "spo2", Some(0.1 + 0.2), T0),
    ]);
    b.patient = Patient {
        id: "id|42, a$b\\c&d=e f#".into(),
        authority: None,
        family: Some("O'Brien \"Bob\" \\ </script> \u{1}".into()),
        given: Some("Zoë 李".into()),
        birth_date: Some("19610101".into()),
        sex: Some("a".into()),
    };
    let o = FhirOptions {
        patient_system: "urn:oid:1.2.3|x".into(),
        ..opts()
    };
    let t = transaction(&b, &o);
    let text = serde_json::to_string(&t).unwrap();
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, t);

    let p = &t["entry"][0];
    assert_eq!(
        p["resource"]["name"],
        json!([{ "family": "O'Brien \"Bob\" \\ </script> \u{1}", "given": ["Zoë 李"] }])
    );
    assert_eq!(
        p["resource"]["identifier"][0]["value"],
        "id|42, a$b\\c&d=e f#"
    );
    assert_eq!(p["resource"]["gender"], "other");
    assert_eq!(p["resource"]["birthDate"], "1961-01-01");
    assert_eq!(
        p["request"]["ifNoneExist"],
        "identifier=urn:oid:1.2.3%5C%7Cx|id%5C%7C42%5C%2C%20a%5C%24b%5C%5Cc%26d%3De%20f%23"
    );
    assert_eq!(
        t["entry"][1]["request"]["ifNoneExist"],
        "identifier=urn:wardhub:device|mon%5C%7C1%5C%2C%5C%24x"
    );
    assert_eq!(
        t["entry"][1]["resource"]["identifier"][0]["value"],
        "mon|1,$x"
    );

    // An id that is not a FHIR id is replaced (deterministically); its identifier keeps it.
    let hr = &t["entry"][2];
    let id = hr["resource"]["id"].as_str().unwrap();
    assert!(id.starts_with("wh-") && id.len() == 35, "{id}");
    assert_eq!(fhir_id("B1 .0"), id);
    assert_eq!(hr["request"]["url"], format!("Observation/{id}"));
    assert_eq!(hr["resource"]["identifier"][0]["value"], "B1 .0");
    assert_eq!(hr["resource"]["valueQuantity"]["value"], json!(0.0));
    assert!(!text.contains("-0.0"));
    assert_eq!(
        t["entry"][3]["resource"]["valueQuantity"]["value"],
        json!(0.30000000000000004)
    );
    assert_eq!(fhir_id("B1.1"), "B1.1");
    assert_eq!(fhir_id(&"a".repeat(64)), "a".repeat(64));
    assert!(fhir_id(&"a".repeat(65)).starts_with("wh-"));
    assert!(fhir_id("").starts_with("wh-"));
}

#[test]
fn gender_and_birth_date() {
    let gender = |sex: Option<&str>| {
        let mut b = batch(Vec::new());
        b.patient.sex = sex.map(Into::into);
        transaction(&b, &opts())["entry"][0]["resource"]
            .get("gender")
            .cloned()
    };
    for (sex, want) in [
        (Some("F"), Some("female")),
        (Some("m"), Some("male")),
        (Some("O"), Some("other")),
        (Some("A"), Some("other")),
        (Some("N"), Some("other")),
        (Some(" U "), Some("unknown")),
        (Some("X"), None),
        (Some(""), None),
        (None, None),
    ] {
        assert_eq!(gender(sex), want.map(Value::from), "{sex:?}");
    }
    for (d, want) in [
        ("1961-01-01", Some("1961-01-01")),
        ("19610101", Some("1961-01-01")),
        ("1961-01", Some("1961-01")),
        ("1961", Some("1961")),
        ("1961-13-01", None),
        ("1961-02-32", None),
        ("1961-1-1", None),
        ("01.01.1961", None),
        ("", None),
    ] {
        assert_eq!(fhir_date(d).as_deref(), want, "{d}");
    }
    // No name, no sex, no birth date: the identifier alone.
    let mut b = batch(Vec::new());
    b.patient = Patient {
        id: "9".into(),
        family: Some("  ".into()),
        ..Default::default()
    };
    assert_eq!(
        transaction(&b, &opts())["entry"][0]["resource"],
        json!({
            "resourceType": "Patient",
            "identifier": [{ "system": "urn:oid:1.2.3", "value": "9" }],
        })
    );
    assert_eq!(
        transaction(&b, &opts())["entry"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn observations_and_a_searchset_for_the_read_endpoint() {
    let b = batch(vec![
        value("B1.0", "mon-1", "hr", Some(72.0), T0),
        value("B1.1", "nibp-1", "nibp_sys", Some(120.0), T0),
        value("B1.2", "nibp-1", "nibp_dia", Some(80.0), T0),
    ]);
    let subject = Reference::Identifier {
        system: "urn:oid:1.2.3".into(),
        value: "4711".into(),
    };
    let o = observations(&b, &opts(), subject, |d| {
        Reference::Literal(format!("Device/{d}"))
    });
    assert_eq!(o.len(), 2);
    assert_eq!(
        o[0]["subject"],
        json!({ "identifier": { "system": "urn:oid:1.2.3", "value": "4711" } })
    );
    assert_eq!(o[0]["device"], json!({ "reference": "Device/mon-1" }));
    assert_eq!(o[1]["device"], json!({ "reference": "Device/nibp-1" }));
    // The same resources as in the transaction, but for the references.
    let t = transaction(&b, &opts());
    let mut in_t = obs(&t)[0].clone();
    in_t["subject"] = o[0]["subject"].clone();
    in_t["device"] = o[0]["device"].clone();
    assert_eq!(in_t, o[0]);

    let s = searchset(
        o,
        "https://hub.example/fhir/",
        "https://hub.example/fhir/Observation?patient=4711",
        Some(2),
    );
    assert_eq!(s["resourceType"], "Bundle");
    assert_eq!(s["type"], "searchset");
    assert_eq!(s["total"], 2);
    assert_eq!(
        s["link"],
        json!([{ "relation": "self", "url": "https://hub.example/fhir/Observation?patient=4711" }])
    );
    let e = s["entry"].as_array().unwrap();
    assert_eq!(e[0]["fullUrl"], "https://hub.example/fhir/Observation/B1.0");
    assert_eq!(e[1]["fullUrl"], "https://hub.example/fhir/Observation/B1.1");
    assert_eq!(e[0]["search"], json!({ "mode": "match" }));
    assert_eq!(e[1]["resource"]["code"]["coding"][0]["code"], "85354-9");

    // Logical references by the configured identifier systems.
    let o = observations(&b, &opts(), Reference::patient(&opts(), &b.patient), |d| {
        Reference::device(&opts(), d)
    });
    assert_eq!(
        o[1]["subject"],
        json!({ "identifier": { "system": "urn:oid:1.2.3", "value": "4711" } })
    );
    assert_eq!(
        o[1]["device"],
        json!({ "identifier": { "system": "urn:wardhub:device", "value": "nibp-1" } })
    );

    let empty = searchset(Vec::new(), "https://hub.example/fhir", "x", None);
    assert!(empty.get("total").is_none());
    assert_eq!(empty["entry"], json!([]));
}

/// Validates Bundles with the `fhir.resources` Python package (R4B models) when it is
/// installed; skipped with a note otherwise.
#[test]
fn bundles_validate_with_fhir_resources() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let probe = Command::new("python3")
        .args(["-c", "import fhir.resources.R4B.bundle"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("note: python3 with fhir.resources (R4B) is not available; validation skipped");
        return;
    }
    let b = batch(vec![
        value("B1.0", "mon-1", "hr", Some(72.0), T0),
        value("B1.1", "mon-1", "pr", Some(71.0), T0),
        ChartedValue {
            method: ChartMethod::Median,
            period: Some((T0 - 900_000, T0)),
            count: 15,
            status: Status::Questionable,
            ..value("B1.2", "mon-1", "spo2", Some(96.5), T0)
        },
        value("B1.3", "mon-1", "rr", None, T0),
        ChartedValue {
            method: ChartMethod::Last,
            period: Some((T0 - 3_600_000, T0)),
            count: 2,
            ..value("B1.4", "mon-1", "temp", Some(37.1), T0 - 60_000)
        },
        ChartedValue {
            status: Status::Invalid,
            ..value("B1.5", "mon-1", "etco2", None, T0)
        },
        value("B1.6", "nibp-1", "nibp_sys", Some(120.0), T0),
        value("B1.7", "nibp-1", "nibp_dia", Some(80.0), T0),
        value("B1.8", "nibp-1", "nibp_mean", Some(93.0), T0),
        value("B1.9", "nibp-1", "nibp_sys", Some(118.0), T0 + 60_000),
        value("B1 10", "nibp-1", "nibp_mean", Some(91.0), T0 + 120_000),
    ]);
    let t = transaction(&b, &opts());
    let s = searchset(
        observations(
            &b,
            &opts(),
            Reference::Identifier {
                system: "urn:oid:1.2.3".into(),
                value: "4711".into(),
            },
            |d| Reference::Literal(format!("Device/{d}")),
        ),
        "https://hub.example/fhir",
        "https://hub.example/fhir/Observation",
        Some(7),
    );
    for bundle in [t, s] {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import sys\n\
                 from fhir.resources.R4B.bundle import Bundle\n\
                 b = Bundle.model_validate_json(sys.stdin.read())\n\
                 print(len(b.entry))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(serde_json::to_string(&bundle).unwrap().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "fhir.resources refused the Bundle:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            serde_json::to_string_pretty(&bundle).unwrap()
        );
        let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(n, bundle["entry"].as_array().unwrap().len());
    }
}
