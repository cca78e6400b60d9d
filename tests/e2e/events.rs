//! Device events end to end: a nurse call published by a device on its event topic (the payload
//! the ward simulator sends) is an alarm in the ward's list, latched until a nurse
//! acknowledges it, and the event topic is no longer an unknown topic.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use ward_sim::encode::event_json;
use ward_sim::ward::{DeviceEvent, DeviceEventKind};
use wardhub_e2e::{now_ms, Device, TestServer, NURSE_TOKEN};

const UNKNOWN_TOPIC: &str =
    r#"wardhub_ingest_rejects_total{adapter="mqtt_json",reason="unknown_topic"}"#;
const SCHEMA: &str = r#"wardhub_ingest_rejects_total{adapter="mqtt_json",reason="schema"}"#;

/// The open nurse-call alarms of bed 12.
async fn calls(server: &TestServer) -> Vec<Value> {
    server
        .alarms("bed=bed-12")
        .await
        .into_iter()
        .filter(|a| a["cause"] == "nurse_call")
        .collect()
}

fn call(active: bool, seq: u64) -> Vec<u8> {
    let ev = DeviceEvent {
        kind: DeviceEventKind::NurseCall,
        active,
        seq,
    };
    event_json(&ev, now_ms())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurse_call_is_an_alarm_until_acknowledged() {
    let server = TestServer::start(&[("call-12", "bed-12")]).await;
    let unknown_before = server.metric(UNKNOWN_TOPIC).await;
    let schema_before = server.metric(SCHEMA).await;
    let mut dev = Device::connect(server.mqtt(), "call-12").await;
    let topic = "wardhub/v1/devices/call-12/event";

    // Pressed: a medium "call" alarm of bed 12.
    dev.publish(topic, call(true, 1)).await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                calls(&server).await.len() == 1
            })
            .await,
        "nurse call not in the alarm list"
    );
    let alarm = calls(&server).await.remove(0);
    assert_eq!(alarm["kind"], "call");
    assert_eq!(alarm["cause"], "nurse_call");
    assert_eq!(alarm["priority"], "medium");
    assert_eq!(alarm["state"], "active");
    assert_eq!(alarm["device_id"], "call-12");
    assert_eq!(alarm["latching"], true);
    let id = alarm["id"].as_str().unwrap().to_owned();

    // A repeat opens no second alarm; the released button leaves it waiting for a nurse.
    dev.publish(topic, call(true, 2)).await;
    dev.publish(topic, call(false, 3)).await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                let c = calls(&server).await;
                c.len() == 1 && c[0]["condition_present"] == false
            })
            .await,
        "released call: {:?}",
        calls(&server).await
    );
    assert_eq!(calls(&server).await[0]["id"], id.as_str());
    assert_eq!(calls(&server).await[0]["state"], "active");

    // An event the contract does not know is a schema reject and raises nothing.
    dev.publish(topic, r#"{"event":"fire_alarm","active":true}"#)
        .await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                server.metric(SCHEMA).await > schema_before
            })
            .await,
        "bad event payload not counted as a schema reject"
    );

    // Acknowledged by a nurse: the call is answered and leaves the list.
    let (s, body) = server
        .send(
            Method::POST,
            &format!("/api/v1/alarms/{id}/ack"),
            Some(NURSE_TOKEN),
            Some(json!({"reason": "actionable", "note": "patient wanted water"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                calls(&server).await.is_empty()
            })
            .await,
        "acknowledged call still open: {:?}",
        calls(&server).await
    );
    // Every step is in the audit log.
    let history = server.alarm_history("bed=bed-12").await;
    let steps: Vec<(&str, &str)> = history
        .iter()
        .filter(|t| t["alarm"]["id"] == id.as_str())
        .map(|t| (t["event"].as_str().unwrap(), t["by"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        steps,
        [
            ("raised", ""),
            ("condition_ended", ""),
            ("acknowledged", "nurse-ana"),
            ("cleared", "nurse-ana")
        ]
    );

    assert_eq!(server.metric(UNKNOWN_TOPIC).await, unknown_before);
    assert!(
        server
            .metric(r#"wardhub_alarms_raised_total{kind="call",priority="medium"}"#)
            .await
            >= 1.0
    );
}
