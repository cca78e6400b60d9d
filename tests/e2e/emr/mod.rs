//! Issue #18: patient context from a real ADT feed, and charting to the EMR through peers
//! others wrote — public ADT samples sent with python-hl7's `mllp_send`; the HL7 export
//! received by python-hl7's asyncio MLLP server through a minute's outage; the FHIR export
//! received by a real FHIR server and validated with PyPI `fhir.resources`.

mod peers;

use std::time::Duration;

use peers::{at_time, sample, samples, FhirServer, Hl7Receiver};
use reqwest::Method;
use serde_json::json;
use wardhub_e2e::hl7::mllp_send;
use wardhub_e2e::{now_ms, Device, TestServer, NURSE_TOKEN, VIEWER_TOKEN};

const DEVICES: [(&str, &str); 3] = [
    ("mon-3", "bed-03"),
    ("mon-7", "bed-07"),
    ("mon-9", "bed-09"),
];

/// The public samples' locations mapped onto this test's beds (`[patients.locations]`).
const LOCATIONS: &str = r#"
[patients]
display = "full"
[patients.locations]
"PREOP^101^" = "bed-03"
"IN1^214^1" = "bed-07"
"NOC-Ward B^Day Room^Chair 6" = "bed-09"
[patients.adt]
listen = "127.0.0.1:0"
"#;

async fn hr(dev: &mut Device, id: &str, v: f64) {
    dev.publish_obs(id, &format!(r#"{{"metric":"hr","value":{v}}}"#))
        .await;
}

/// The heart rates of a patient's observations, by bed.
async fn values_of(server: &TestServer, patient: &str) -> Vec<(String, f64)> {
    let (status, body) = server
        .get(&format!(
            "/api/v1/patients/{patient}/observations?from={}",
            now_ms() - 3_600_000
        ))
        .await;
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{body}");
    let mut out = Vec::new();
    for stay in body["stays"].as_array().unwrap() {
        for o in stay["observations"].as_array().unwrap() {
            out.push((
                stay["bed"].as_str().unwrap().to_owned(),
                o["value"].as_f64().unwrap(),
            ));
        }
    }
    out
}

async fn bed(server: &TestServer, bed: &str) -> serde_json::Value {
    server.json(&format!("/api/v1/beds/{bed}/patient")).await
}

/// Every public sample is acknowledged AA by the ADT listener (the decoder takes real
/// messages of 10 sources), and none about another ward is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_adt_sample_is_acknowledged_and_other_wards_are_not_kept() {
    let server =
        TestServer::start_with(&DEVICES, "[patients.adt]\nlisten = \"127.0.0.1:0\"\n").await;
    let addr = server.hub().addresses.adt.expect("ADT listener");
    let all = samples();
    assert!(all.len() >= 20, "the corpus: {}", all.len());
    let msgs: Vec<String> = all.iter().map(|(_, m)| m.clone()).collect();
    let stdout = mllp_send(addr, &msgs).await;
    assert_eq!(stdout.matches("MSA|AA").count(), all.len(), "{stdout}");
    // None of these locations is a bed of this hub: nothing is kept, every one counted.
    let other = server
        .metrics()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("wardhub_patients_events_total{") && l.contains("outcome=\"other_ward\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum::<f64>();
    assert_eq!(other as usize, all.len());
    for (b, _) in DEVICES.iter().map(|(d, b)| (b, d)) {
        assert_eq!(bed(&server, b).await["admitted"], false);
    }
}

/// A patient moved from bed 3 to bed 7 (a real A02) has their data on the right patient
/// before and after the move; a real A12 undoes the move and the history follows; a real
/// A01 cancelled by an A11 leaves no association and charts nothing to anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_keeps_each_value_on_the_right_patient_and_cancels_revert() {
    let server = TestServer::start_with(&DEVICES, LOCATIONS).await;
    let adt = server.hub().addresses.adt.expect("ADT listener");
    let mut m3 = Device::connect(server.mqtt(), "mon-3").await;
    let mut m7 = Device::connect(server.mqtt(), "mon-7").await;
    let mut m9 = Device::connect(server.mqtt(), "mon-9").await;

    // DUCK^DONALD (10006579) is in PREOP^101 = bed 3: a nurse associates him (the public
    // set has no A01 for him), recorded with who and when.
    let (status, body) = server
        .send(
            Method::PUT,
            "/api/v1/beds/bed-03/patient",
            Some(NURSE_TOKEN),
            Some(json!({"id": "10006579", "family": "DUCK", "given": "DONALD"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patient"]["label"], "DONALD DUCK");
    let (viewer_put, _) = server
        .send(
            Method::PUT,
            "/api/v1/beds/bed-07/patient",
            Some(VIEWER_TOKEN),
            Some(json!({"id": "x"})),
        )
        .await;
    assert_eq!(viewer_put, 403, "a viewer may not associate patients");

    hr(&mut m3, "mon-3", 61.0).await;
    hr(&mut m7, "mon-7", 71.0).await; // bed 7 is empty: nobody's
    tokio::time::sleep(Duration::from_millis(20)).await;

    // The real A02: PREOP^101 → IN1^214^1 (bed 7).
    let out = mllp_send(
        adt,
        &[at_time(&sample("07-a02-accmgr-machete.hl7"), now_ms())],
    )
    .await;
    assert!(out.contains("MSA|AA"), "{out}");
    assert_eq!(
        bed(&server, "bed-07").await["patient"]["patient"]["id"],
        "10006579"
    );
    assert_eq!(bed(&server, "bed-03").await["admitted"], false);
    hr(&mut m3, "mon-3", 62.0).await; // bed 3 is empty now
    hr(&mut m7, "mon-7", 72.0).await;

    let mut got = values_of(&server, "10006579").await;
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        got,
        vec![("bed-03".into(), 61.0), ("bed-07".into(), 72.0)],
        "before the move bed 3's value, after it bed 7's; the others are nobody's"
    );

    // The real A12 cancels the transfer: he never left bed 3, and its values are his again.
    let out = mllp_send(
        adt,
        &[at_time(&sample("18-a12-accmgr-machete.hl7"), now_ms())],
    )
    .await;
    assert!(out.contains("MSA|AA"), "{out}");
    assert_eq!(
        bed(&server, "bed-03").await["patient"]["patient"]["id"],
        "10006579"
    );
    assert_eq!(bed(&server, "bed-07").await["admitted"], false);
    let mut got = values_of(&server, "10006579").await;
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(got, vec![("bed-03".into(), 61.0), ("bed-03".into(), 62.0)]);

    // A real A01 into Chair 6 (bed 9), then its cancel: an A11 made as ADT systems make one,
    // the admit's content under the cancel trigger (MSH-9 and EVN-1 changed, nothing else).
    let a01 = at_time(&sample("04-a01-cerner-oxford-polaris.hl7"), now_ms());
    let out = mllp_send(adt, std::slice::from_ref(&a01)).await;
    assert!(out.contains("MSA|AA"), "{out}");
    assert_eq!(
        bed(&server, "bed-09").await["patient"]["patient"]["id"],
        "654321"
    );
    hr(&mut m9, "mon-9", 91.0).await;
    let a11 = a01
        .replacen("ADT^A01", "ADT^A11", 1)
        .replacen("\rEVN|A01", "\rEVN|A11", 1);
    assert!(a11.contains("ADT^A11") && a11.contains("EVN|A11"));
    let out = mllp_send(adt, &[a11]).await;
    assert!(out.contains("MSA|AA"), "{out}");
    assert_eq!(bed(&server, "bed-09").await["admitted"], false);
    assert_eq!(
        values_of(&server, "654321").await,
        vec![],
        "a cancelled admit leaves no association"
    );
    let (status, _) = server.get("/api/v1/patients/654321").await;
    assert_eq!(status, 404);

    // The ward view says the same.
    let ward = server.json("/api/v1/ward").await;
    let beds = ward["beds"].as_array().unwrap();
    let admitted: Vec<_> = beds
        .iter()
        .filter(|b| b["admitted"] == true)
        .map(|b| b["bed"].as_str().unwrap())
        .collect();
    assert_eq!(admitted, vec!["bed-03"]);
}

const HL7_EXPORT: &str = r#"
[patients]
[emr]
default = "every"
[emr.metrics]
temp = "every"
[emr.hl7]
connect = "127.0.0.1:PORT"
sending_facility = "ICU3"
receiving_application = "EMR"
patient_authority = "HOSP"
ack_timeout = "5s"
retry = { min = "200ms", max = "1s" }
"#;

async fn admit(server: &TestServer, bed: &str, id: &str) {
    let (status, body) = server
        .send(
            Method::PUT,
            &format!("/api/v1/beds/{bed}/patient"),
            Some(NURSE_TOKEN),
            Some(json!({"id": id, "family": "Doe", "given": "Jane", "birth_date": "1950-03-01", "sex": "F"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn wait_metric(server: &TestServer, series: &str, want: f64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = server.metric(series).await;
        if v == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} = {v}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The HL7 export reaches python-hl7's MLLP server, which parses every message; with the
/// receiver down for a minute while the ward goes on, everything arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_export_reaches_python_hl7_once_through_a_minute_of_receiver_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Hl7Receiver::start(dir.path(), 0);
    let port = receiver.port;
    let overlay = HL7_EXPORT.replace("PORT", &port.to_string());
    let server = TestServer::start_with(&DEVICES, &overlay).await;
    admit(&server, "bed-03", "MRN-0042").await;
    let mut m3 = Device::connect(server.mqtt(), "mon-3").await;
    let mut m9 = Device::connect(server.mqtt(), "mon-9").await;
    let mut sent = Vec::new();
    for i in 0..20 {
        let v = 60.0 + f64::from(i);
        hr(&mut m3, "mon-3", v).await;
        sent.push(v);
        hr(&mut m9, "mon-9", 150.0).await; // bed 9 has no patient: never exported
    }
    wait_metric(
        &server,
        "wardhub_emr_outbox_messages{destination=\"hl7\"}",
        0.0,
        Duration::from_secs(20),
    )
    .await;

    // The receiver goes away for a minute; the ward goes on.
    receiver.kill();
    let outage_end = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while tokio::time::Instant::now() < outage_end {
        let v = 100.0 + f64::from(i);
        hr(&mut m3, "mon-3", v).await;
        sent.push(v);
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        server
            .metric("wardhub_emr_outbox_messages{destination=\"hl7\"}")
            .await
            > 0.0
    );
    assert!(
        server
            .metric("wardhub_emr_retries_total{destination=\"hl7\",reason=\"connect\"}")
            .await
            > 0.0
    );
    let receiver = Hl7Receiver::start(dir.path(), port);
    wait_metric(
        &server,
        "wardhub_emr_outbox_messages{destination=\"hl7\"}",
        0.0,
        Duration::from_secs(30),
    )
    .await;

    let got = Hl7Receiver::received(&receiver.out);
    let mut ids: Vec<&str> = got
        .iter()
        .map(|m| m["control_id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no message arrived twice");
    let mut values = Vec::new();
    for m in &got {
        assert!(m.get("error").is_none(), "python-hl7 could not parse: {m}");
        assert_eq!(m["message_type"], "ORU^R01^ORU_R01");
        assert!(
            m["profile"].as_str().unwrap().starts_with("IHE_PCD_001"),
            "{m}"
        );
        assert_eq!(m["patient_id"], "MRN-0042");
        assert_eq!(m["patient_authority"], "HOSP");
        assert_eq!(
            (m["family"].as_str(), m["given"].as_str()),
            (Some("Doe"), Some("Jane"))
        );
        for obx in m["obx"].as_array().unwrap() {
            if obx["value_type"] == "NM" {
                assert_eq!(obx["code"], "147842", "{obx}");
                assert_eq!(obx["system"], "MDC");
                assert!(obx["unit"].as_str().unwrap().contains("/min"), "{obx}");
                assert!(
                    obx["device"].as_str().unwrap().starts_with("mon-3"),
                    "{obx}"
                );
                values.push(obx["value"].as_str().unwrap().parse::<f64>().unwrap());
            }
        }
    }
    assert_eq!(
        values, sent,
        "every value once, in order; nothing from bed 9"
    );
    assert_eq!(
        server
            .metric("wardhub_emr_values_total{outcome=\"no_patient\"}")
            .await,
        20.0
    );
}

const FHIR_EXPORT: &str = r#"
[patients]
[emr]
default = "every"
[emr.metrics]
temp = "every"
[emr.fhir]
base_url = "BASE"
patient_system = "urn:oid:1.2.36.146.595.217.0.1"
retry = { min = "200ms", max = "1s" }
"#;

/// The FHIR export reaches a real FHIR server (which refuses the first attempts, to be
/// retried), every resource there and on the hub's own read endpoint valid for
/// `fhir.resources`; the blood pressure is one panel; nothing is charted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_export_reaches_a_fhir_server_valid_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let fhir = FhirServer::start(dir.path(), 2);
    let overlay = FHIR_EXPORT.replace("BASE", &fhir.base());
    let mut server = TestServer::start_with(&DEVICES, &overlay).await;
    admit(&server, "bed-03", "MRN-0042").await;
    let mut m3 = Device::connect(server.mqtt(), "mon-3").await;
    m3.publish_obs(
        "mon-3",
        r#"[{"metric":"hr","value":72},{"metric":"spo2","value":97},{"metric":"rr","value":16},
            {"metric":"temp","value":37.2},{"metric":"nibp_sys","value":120},{"metric":"nibp_dia","value":80}]"#,
    )
    .await;
    wait_metric(
        &server,
        "wardhub_emr_outbox_messages{destination=\"fhir\"}",
        0.0,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        server
            .metric("wardhub_emr_retries_total{destination=\"fhir\",reason=\"server_error\"}")
            .await
            >= 2.0,
        "the server's 503s were retried"
    );
    assert_eq!(
        server
            .metric("wardhub_emr_refused_total{destination=\"fhir\"}")
            .await,
        0.0
    );

    let patients = fhir
        .get("/Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-0042")
        .await;
    assert_eq!(
        patients["entry"].as_array().map(Vec::len),
        Some(1),
        "{patients:#}"
    );
    let pid = patients["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let obs = fhir
        .get(&format!("/Observation?subject=Patient/{pid}"))
        .await;
    let entries = obs["entry"].as_array().cloned().unwrap_or_default();
    let codes: std::collections::BTreeSet<String> = entries
        .iter()
        .flat_map(|e| {
            e["resource"]["code"]["coding"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["system"] == "http://loinc.org")
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    for loinc in ["8867-4", "2708-6", "9279-1", "8310-5", "85354-9"] {
        assert!(codes.contains(loinc), "{loinc} missing: {codes:?}");
    }
    assert_eq!(
        entries.len(),
        5,
        "hr, spo2, rr, temp and ONE blood pressure panel: {obs:#}"
    );
    for e in &entries {
        peers::validate_fhir(&e["resource"]);
    }

    // The hub's own read endpoint: a searchset the validator takes.
    let (status, bundle) = server
        .get(&format!(
            "/fhir/Observation?patient=MRN-0042&date=ge{}",
            wardhub_adapters::model::format_rfc3339(now_ms() - 3_600_000)
        ))
        .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["type"], "searchset");
    peers::validate_fhir(&bundle);
    // The read is in the access audit with the patient it named (the query's `patient`).
    let (_, audit) = server
        .send(
            Method::GET,
            "/api/v1/audit",
            Some(wardhub_e2e::ADMIN_TOKEN),
            None,
        )
        .await;
    assert!(
        audit["accesses"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["route"] == "/fhir/Observation" && r["patient"] == "MRN-0042"),
        "{audit}"
    );
    let (unauth, _) = server
        .send(
            Method::GET,
            "/fhir/Observation?patient=MRN-0042",
            None,
            None,
        )
        .await;
    assert_eq!(unauth, 401, "patient data for authenticated users only");

    // A restart re-sends nothing acknowledged; the server still has one of each.
    server.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = fhir
        .get(&format!("/Observation?subject=Patient/{pid}"))
        .await;
    assert_eq!(again["entry"].as_array().map(Vec::len), Some(5));
}

/// Guards "an acknowledgement is a promise" into the patient record: a hub whose interface
/// engine is away is killed with SIGKILL while a device sends; started again, with the engine
/// back (python-hl7's MLLP server), every value the device was told "received" is charted, once,
/// to the patient in its bed — and nothing of the bed without a patient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_value_on_its_way_to_the_emr() {
    use wardhub_e2e::load::{exact_publisher, Plan};
    let dir = tempfile::tempdir().unwrap();
    let (engine_port, adt_port) = (wardhub_e2e::free_port(), wardhub_e2e::free_port());
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[hub]\nward = \"icu-5\"\n\
             [[devices]]\nid = \"k1\"\nbed = \"bed-01\"\n[[devices]]\nid = \"k2\"\nbed = \"bed-02\"\n\
             [patients.locations]\n\"W^389^1\" = \"bed-01\"\n\
             [patients.adt]\nlisten = \"127.0.0.1:{adt_port}\"\n\
             [emr]\ndefault = \"every\"\n\
             [emr.hl7]\nconnect = \"127.0.0.1:{engine_port}\"\nack_timeout = \"3s\"\n\
             retry = {{ min = \"200ms\", max = \"1s\" }}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut hub = wardhub_e2e::spawn_hub(&config, &data);
    // KLEINSAMPLE^BARRY of the public A01 (Wikipedia's sample) is admitted to W^389^1 = bed 1.
    let adt = std::net::SocketAddr::from(([127, 0, 0, 1], adt_port));
    let out = mllp_send(
        adt,
        &[at_time(
            &sample("01-a01-wikipedia-elixir-hl7.hl7"),
            now_ms() - 1000,
        )],
    )
    .await;
    assert!(out.contains("MSA|AA"), "{out}");
    let t0 = now_ms() - 600 * 1000;
    let mut tasks = Vec::new();
    for (i, d) in ["k1", "k2"].iter().enumerate() {
        let mut p = Plan::new(d, t0, 10, 8, Duration::from_secs(20));
        p.level = if i == 0 { 4 } else { 5 };
        p.every = Some(Duration::from_millis(20));
        p.settle = Duration::from_secs(1);
        tasks.push(tokio::spawn(exact_publisher(hub.mqtt, p)));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    hub.child.kill().expect("SIGKILL");
    let _ = hub.child.wait();
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap());
    }
    let acked = reports[0].acked_times();
    assert!(
        acked.len() > 100,
        "too little load to mean anything: {}",
        acked.len()
    );

    let receiver = Hl7Receiver::start(dir.path(), engine_port);
    let mut again = wardhub_e2e::spawn_hub(&config, &data);
    let metrics = format!("http://{}/metrics", again.metrics);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        if wardhub_e2e::sample(&text, "wardhub_emr_outbox_messages{destination=\"hl7\"}")
            == Some(0.0)
            && wardhub_e2e::sample(&text, "wardhub_emr_acknowledged_total{destination=\"hl7\"}")
                .is_some_and(|n| n > 0.0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the EMR outbox did not drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = Hl7Receiver::received(&receiver.out);
    let mut ids: Vec<&str> = got
        .iter()
        .map(|m| m["control_id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no message charted twice");
    let mut charted = std::collections::HashMap::new();
    for m in &got {
        assert_eq!(m["patient_id"], "56782445", "the A01's patient");
        for obx in m["obx"].as_array().unwrap() {
            if obx["value_type"] != "NM" {
                continue;
            }
            let device = obx["device"].as_str().unwrap();
            assert!(device.starts_with("k1"), "bed 2 has no patient: {obx}");
            let t =
                wardhub_adapters::hl7::message::parse_hl7_time(obx["time"].as_str().unwrap(), 0)
                    .expect("OBX-14 is a time");
            *charted.entry(t).or_insert(0) += 1;
        }
    }
    let lost: Vec<_> = acked.iter().filter(|t| !charted.contains_key(t)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged values never reached the EMR",
        lost.len(),
        acked.len()
    );
    assert!(charted.values().all(|&c| c == 1), "a value charted twice");
    eprintln!(
        "kill -9: {} acknowledged values, all charted once",
        acked.len()
    );
    again.child.kill().ok();
    let _ = again.child.wait();
}
