//! Issue #5: HL7 v2 ORU^R01 over MLLP end to end — ACK AA only after a durable write, many
//! connections, a real peer (PyPI `hl7`'s mllp_send), and nothing ACKed lost across a restart.

use std::time::Duration;

use wardhub_e2e::hl7::{hl7_time, mllp_send, oru, Mllp};
use wardhub_e2e::{now_ms, TestServer};

const EUIS: [&str; 4] = [
    "00A0000000000001",
    "00A0000000000002",
    "00A0000000000003",
    "00A0000000000004",
];

fn devices() -> Vec<(&'static str, &'static str)> {
    vec![
        (EUIS[0], "bed-01"),
        (EUIS[1], "bed-02"),
        (EUIS[2], "bed-03"),
        (EUIS[3], "bed-04"),
    ]
}

async fn count(server: &TestServer, device: &str, from: i64) -> usize {
    server.observations(device, from).await.len()
}

/// 1,000 messages over 4 connections: every one ACKed AA, every observation queryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_messages_over_four_connections_all_acked_and_stored() {
    let server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.expect("HL7 listener");
    let t0 = now_ms() - 600_000;
    let mut tasks = Vec::new();
    for (c, eui) in EUIS.iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut client = Mllp::connect(addr).await;
            let bed = format!("bed-0{}", c + 1);
            for i in 0..250i64 {
                let msg = oru(&format!("C{c}M{i}"), eui, &bed, t0 + i * 100, 95.0, 70.0);
                let (code, ack) = client.send(&msg).await.expect("ACK");
                assert_eq!(code, "AA", "{ack}");
                assert!(ack.contains(&format!("MSA|AA|C{c}M{i}")), "{ack}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // AA means durable and stored: no waiting needed.
    for (eui, bed) in devices() {
        assert_eq!(count(&server, eui, t0 - 1).await, 500, "{eui}");
        let latest = server.json(&format!("/api/v1/beds/{bed}/latest")).await;
        assert_eq!(latest["latest"].as_array().unwrap().len(), 2);
    }
    assert_eq!(
        server
            .metric(r#"wardhub_messages_received_total{adapter="hl7_mllp"}"#)
            .await,
        1000.0
    );
}

/// Unknown devices, unsupported messages and garbage get AE/AR, each counted, and nothing of
/// them is stored; the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_acked_with_errors_and_store_nothing() {
    let server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.unwrap();
    let unknown = server.rejects("hl7_mllp", "unknown_device").await;
    let malformed = server.rejects("hl7_mllp", "malformed").await;
    let mut client = Mllp::connect(addr).await;
    let (code, ack) = client
        .send(&oru(
            "X1",
            "00FFFFFFFFFFFFFF",
            "bed-09",
            now_ms(),
            95.0,
            70.0,
        ))
        .await
        .unwrap();
    assert_eq!(code, "AE", "{ack}");
    assert!(ack.contains("ERR|"), "{ack}");
    let adt = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hl7/unsupported_adt_a01.hl7"
    ))
    .unwrap();
    let (code, _) = client.send(&adt).await.unwrap();
    assert_eq!(code, "AR");
    // Garbage in a frame: no MSH, no segments, not HL7 at all.
    let (code, ack) = client
        .send("\u{1}garbage ¤%& that is no HL7 message\r\u{7f}")
        .await
        .expect("garbage is answered");
    assert_eq!(code, "AE", "{ack}");
    // The connection still works after refusals.
    let t = now_ms();
    let (code, _) = client
        .send(&oru("X3", EUIS[0], "bed-01", t, 96.0, 71.0))
        .await
        .unwrap();
    assert_eq!(code, "AA");
    let (s, _) = server.get("/api/v1/devices/00FFFFFFFFFFFFFF/latest").await;
    assert_eq!(s, 404);
    // Only X3's two numerics are stored, and each refusal is counted.
    assert_eq!(count(&server, EUIS[0], 0).await, 2);
    // X1's two numerics, each counted once (regression: the HL7 adapter counted the
    // pipeline's refusals a second time, from the pipeline's report).
    assert_eq!(
        server.rejects("hl7_mllp", "unknown_device").await,
        unknown + 2.0,
        "X1's unknown device is counted once per observation"
    );
    assert_eq!(
        server.rejects("hl7_mllp", "malformed").await,
        malformed + 1.0
    );
}

/// A hub stopped mid-stream: after the restart, every observation of every message that got
/// AA is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_a_stop_mid_stream() {
    let mut server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.unwrap();
    let t0 = now_ms() - 600_000;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (c, eui) in EUIS.iter().enumerate() {
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Mllp::connect(addr).await;
            for i in 0..10_000i64 {
                let t = t0 + i * 10;
                let msg = oru(&format!("S{c}M{i}"), eui, "bed-01", t, 95.0, 70.0);
                match client.send(&msg).await {
                    Some((code, _)) if code == "AA" => acked.lock().unwrap().push((*eui, t)),
                    _ => return,
                }
            }
        }));
    }
    // Mid-stream: once the four streams are flowing (200 messages acknowledged), not after a
    // guess at how long that takes.
    let flowing = server
        .eventually(Duration::from_secs(60), || async {
            acked.lock().unwrap().len() >= 200
        })
        .await;
    assert!(
        flowing,
        "{} acknowledged in 60 s",
        acked.lock().unwrap().len()
    );
    server.stop().await;
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < EUIS.len() * 10_000,
        "the streams had ended before the stop"
    );
    server.restart().await;
    for eui in EUIS {
        let want = acked.iter().filter(|(e, _)| *e == eui).count() * 2;
        let got = count(&server, eui, t0 - 1).await;
        assert!(got >= want, "{eui}: {got} stored < {want} acknowledged");
    }
}

/// A peer no one here wrote: `mllp_send` from PyPI's `hl7` package.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_send_is_a_device() {
    let server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.unwrap();
    let t = now_ms() - 1000;
    let msgs = [
        oru("P1", EUIS[2], "bed-03", t, 94.0, 80.0),
        oru("P2", EUIS[2], "bed-03", t + 1, 93.0, 81.0),
    ];
    let stdout = mllp_send(addr, &msgs).await;
    assert_eq!(stdout.matches("MSA|AA").count(), 2, "{stdout}");
    assert_eq!(count(&server, EUIS[2], t - 1).await, 4);
}

/// Issue #12, end to end through `mllp_send`: a message with only a SpO2 waveform (OBX-2 NA,
/// whose first sample is 0.0) stores nothing, raises no alarm, is acknowledged AA, and its
/// rows are counted as skipped waveforms. (It was stored as a valid SpO2 of 0 % and raised a
/// high-priority desaturation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waveform_only_message_raises_no_alarm() {
    let server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.unwrap();
    let eui = EUIS[1];
    let t = now_ms() - 1000;
    let ts = hl7_time(t);
    let msg = [
        format!("MSH|^~\\&|Gateway^{eui}^EUI-64|Hospital|WARDHUB|ICU|{ts}||ORU^R01^ORU_R01|W1|P|2.6"),
        "PID|||HOSP123456^^^Hospital^MR||Doe^Jane".to_owned(),
        format!("OBR|1|||182777000^monitoring of patient^SCT|||{ts}"),
        format!("OBX|1||69642^MDC_DEV_ANALY_SAT_O2_MDS^MDC|1.0.0.0|||||||X|||||||{eui}^^{eui}^EUI-64"),
        format!("OBX|2|NA|150456^MDC_PULS_OXIM_SAT_O2_WAVEFORM^MDC|1.1.1.1004|0.0^0.0290^0.0581^0.0871|262688^MDC_DIM_PERCENT^MDC|||||F|||{ts}"),
        format!("OBX|3|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.1.1.1004.1|125|264640^MDC_DIM_HZ^MDC|||||F|||{ts}"),
    ]
    .join("\r");
    let stdout = mllp_send(addr, &[msg]).await;
    assert_eq!(stdout.matches("MSA|AA").count(), 1, "{stdout}");
    // The AA is the evidence the message was processed: it comes once the pipeline is done
    // with it (stored, handed to the alarm engine, flushed), and the skipped rows below say
    // the waveform was seen and set aside. No value reached the engine, so no alarm.
    assert_eq!(count(&server, eui, t - 60_000).await, 0, "nothing stored");
    let alarms = server.alarms("state=open").await;
    assert!(alarms.is_empty(), "no alarm: {alarms:?}");
    assert_eq!(
        server
            .metric(r#"wardhub_ingest_skipped_total{adapter="hl7_mllp",reason="waveform"}"#)
            .await,
        2.0
    );
    assert_eq!(
        server
            .metric(r#"wardhub_ingest_skipped_total{adapter="hl7_mllp",reason="header"}"#)
            .await,
        1.0
    );
}

/// Issue #12, end to end through `mllp_send`: SpO2 on two channels at one time (1.3.2 valid
/// 97, 1.6.1 "not available" 8388607, as a Comen NC5 sends it) keeps both, and the latest
/// value is the valid one. (The second overwrote the first, silently, with AA.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_channels_of_one_metric_are_both_kept() {
    let server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.unwrap();
    let eui = EUIS[3];
    let t = now_ms() - 1000;
    let ts = hl7_time(t);
    let msg = [
        format!("MSH|^~\\&|Gateway^{eui}^EUI-64|Hospital|WARDHUB|ICU|{ts}||ORU^R01^ORU_R01|C2|P|2.6"),
        format!("OBR|1|||182777000^monitoring of patient^SCT|||{ts}"),
        format!("OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.2|97|262688^MDC_DIM_PERCENT^MDC|||||R|||{ts}|||||{eui}^^{eui}^EUI-64"),
        format!("OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.6.1|8388607|262688^MDC_DIM_PERCENT^MDC|||||X|||{ts}|||||{eui}^^{eui}^EUI-64"),
    ]
    .join("\r");
    let stdout = mllp_send(addr, &[msg]).await;
    assert_eq!(stdout.matches("MSA|AA").count(), 1, "{stdout}");
    let got: Vec<(String, String)> = server
        .observations(eui, t - 1)
        .await
        .iter()
        .map(|o| {
            (
                o["channel"].as_str().unwrap_or("").to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1.3.2".to_owned(), "valid".to_owned()),
            ("1.6.1".to_owned(), "not-available".to_owned())
        ]
    );
    let latest = server.json(&format!("/api/v1/devices/{eui}/latest")).await;
    let spo2 = latest["latest"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["name"] == "spo2").cloned())
        .unwrap_or_else(|| panic!("{latest}"));
    assert_eq!(
        (spo2["value"].as_f64(), spo2["status"].as_str()),
        (Some(97.0), Some("valid"))
    );
}

/// Gateway mode (issue 12): an IHE PCD gateway, admitted once as a peer, carries many beds;
/// each message's data goes to its PV1-3 bed, which must be a registry bed, and its devices
/// are registered under the gateway (or refused when it may not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_files_each_message_under_its_pv1_bed() {
    use reqwest::Method;
    use wardhub_e2e::BIOMED_TOKEN;
    let overlay = r#"
[[adapters]]
type = "mqtt_json"

[[adapters]]
type = "hl7_mllp"
listen = "127.0.0.1:0"
peers = [{ name = "pcd-gw", allow_from = ["127.0.0.1"], gateway = true, auto_create_devices = true, senders = ["Gateway"] }]
"#;
    let server = TestServer::start_with(&[], overlay).await;
    for bed in ["bed-07", "bed-08"] {
        let (s, b) = server
            .send(
                Method::POST,
                "/api/v1/beds",
                Some(BIOMED_TOKEN),
                Some(serde_json::json!({ "bed": bed })),
            )
            .await;
        assert!(s == 200 || s == 201, "{s} {b}");
    }
    let addr = server.hub().addresses.hl7.unwrap();
    let mut m = Mllp::connect(addr).await;
    let t = now_ms() - 5_000;
    let (a, e) = ("00A0C9FFFE000001", "00A0C9FFFE000002");
    let (code, ack) = m
        .send(&oru("G1", a, "bed-07", t, 97.0, 71.0))
        .await
        .unwrap();
    assert_eq!(code, "AA", "{ack}");
    let (code, ack) = m
        .send(&oru("G2", e, "bed-08", t, 95.0, 88.0))
        .await
        .unwrap();
    assert_eq!(code, "AA", "{ack}");
    let (s, dev) = server.get(&format!("/api/v1/devices/{a}")).await;
    assert_eq!(s, 200, "{dev}");
    assert_eq!(dev["bed"], "bed-07", "{dev}");
    assert!(dev["notes"].as_str().unwrap().contains("pcd-gw"), "{dev}");
    let b8 = server.json("/api/v1/beds/bed-08/latest").await;
    assert!(
        b8["latest"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["device_id"] == e && o["value"] == 95.0),
        "{b8}"
    );
    // A bed the registry does not know: refused, nothing stored.
    let (code, ack) = m
        .send(&oru("G3", a, "bed-99", t + 1000, 96.0, 70.0))
        .await
        .unwrap();
    assert_eq!(code, "AE", "{ack}");
    assert!(ack.contains("not a bed of the registry"), "{ack}");
    // No PV1-3: the message cannot be placed.
    let no_bed = oru("G4", a, "bed-07", t + 2000, 96.0, 70.0)
        .replace("PV1||I|ICU^^bed-07^Hospital", "PV1||I");
    let (code, ack) = m.send(&no_bed).await.unwrap();
    assert_eq!(code, "AE", "{ack}");
    assert!(ack.contains("PV1-3"), "{ack}");
    assert_eq!(
        count(&server, a, t - 1).await,
        2,
        "only G1's two numerics are stored for {a}"
    );
}

/// A gateway that may not register devices: its unknown devices are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_auto_create_refuses_unknown_devices() {
    let overlay = r#"
[[adapters]]
type = "mqtt_json"

[[adapters]]
type = "hl7_mllp"
listen = "127.0.0.1:0"
peers = [{ name = "pcd-gw", allow_from = ["127.0.0.1"], gateway = true }]
"#;
    let server = TestServer::start_with(&[("00A0C9FFFE000003", "bed-03")], overlay).await;
    let mut m = Mllp::connect(server.hub().addresses.hl7.unwrap()).await;
    let t = now_ms() - 5_000;
    let (code, ack) = m
        .send(&oru("K1", "00A0C9FFFE000009", "bed-03", t, 97.0, 71.0))
        .await
        .unwrap();
    assert_eq!(code, "AE", "{ack}");
    assert!(ack.contains("may not register devices"), "{ack}");
    let (code, ack) = m
        .send(&oru("K2", "00A0C9FFFE000003", "bed-03", t, 97.0, 71.0))
        .await
        .unwrap();
    assert_eq!(code, "AA", "a registered device is placed: {ack}");
}

/// Trends state their source: of respiration from impedance (18/min) and capnography
/// (30/min), the trend shows one source (the one of the bed's latest value), names it, and
/// counts the other; it never mixes the two lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trend_shows_one_source_per_metric_and_says_which() {
    let server = TestServer::start(&devices()).await;
    let addr = server.hub().addresses.hl7.unwrap();
    let eui = EUIS[2];
    let bed = devices()
        .into_iter()
        .find(|(d, _)| *d == eui)
        .map(|(_, b)| b)
        .unwrap();
    let mut m = Mllp::connect(addr).await;
    for i in 0..3 {
        let t = now_ms() - 30_000 + i * 1000;
        let ts = hl7_time(t);
        let msg = [
            format!("MSH|^~\\&|Gateway^{eui}^EUI-64|Hospital|WARDHUB|ICU|{ts}||ORU^R01^ORU_R01|R{i}|P|2.6"),
            format!("OBR|1|||182777000^monitoring of patient^SCT|||{ts}"),
            format!("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.20.1.1|18|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||{ts}|||||{eui}^^{eui}^EUI-64"),
            format!("OBX|2|NM|151562^MDC_RESP_RATE^MDC|1.6.1.1|30|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||{ts}|||||{eui}^^{eui}^EUI-64"),
        ]
        .join("\r");
        let (code, ack) = m.send(&msg).await.unwrap();
        assert_eq!(code, "AA", "{ack}");
    }
    let (s, trend) = server
        .get(&format!("/api/v1/beds/{bed}/trends?range=1h"))
        .await;
    assert_eq!(s, 200, "{trend}");
    let rr = &trend["series"]["rr"];
    let values: Vec<f64> = rr["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 3, "{rr}");
    assert!(
        values.iter().all(|v| *v == values[0]),
        "one source only, not a zigzag of two: {values:?}"
    );
    assert_eq!(rr["other_sources"], 1, "{rr}");
    assert_eq!(rr["source"]["device_id"], eui);
    let channel = rr["source"]["channel"].as_str().unwrap();
    assert_eq!(
        values[0],
        if channel == "1.20.1.1" { 18.0 } else { 30.0 },
        "{rr}"
    );
}
