//! Issue #3: alarms end to end — raised from MQTT data, announced on MQTT and SSE, listed by
//! the API, acknowledged with a token, kept across a restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use wardhub_e2e::{next_event, now_ms, Device, TestServer, ADMIN_TOKEN, NURSE_TOKEN};

/// SpO2 below 90 for 2 s is a medium alarm; below 85 it is high at once.
const RULES: &str = r#"
[hub]
ward = "icu-3"
[[alarms.rules]]
metric = "spo2"
low = 90
priority = "medium"
delay = "2s"
extra_low = 85
extra_priority = "high"
extra_delay = "0s"
hysteresis = 1
"#;

async fn subscribe(
    server: &TestServer,
    filter: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
    let addr = server.mqtt();
    let mut opts = MqttOptions::new(
        format!("pager-{}", now_ms()),
        addr.ip().to_string(),
        addr.port(),
    );
    opts.set_max_packet_size(1 << 20, 1 << 20);
    // A subscriber is a service account (issue #4: anonymous clients are refused).
    opts.set_credentials(wardhub_e2e::PAGER_USER, wardhub_e2e::PAGER_PASSWORD);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(json!({"event": "subscribed"}));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    rx
}

async fn next_matching<T: Clone>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    timeout: Duration,
    mut f: impl FnMut(&T) -> bool,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(v)) if f(&v) => return Some(v),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desaturation_is_raised_announced_acknowledged_and_survives_restart() {
    let mut server = TestServer::start_with(&[("mon-7", "bed-07")], RULES).await;
    let mut mqtt = subscribe(&server, "wardhub/v1/wards/icu-3/#").await;
    assert!(
        next_matching(&mut mqtt, Duration::from_secs(5), |v| v["event"]
            == "subscribed")
        .await
        .is_some()
    );
    let mut sse = server.sse("/api/v1/alarms/stream").await;
    let (ev, snap) = next_event(&mut sse, Duration::from_secs(5), |_, _| true)
        .await
        .unwrap();
    assert_eq!(
        (ev.as_str(), snap["alarms"].as_array().map(Vec::len)),
        ("snapshot", Some(0))
    );

    let mut dev = Device::connect(server.mqtt(), "mon-7").await;
    // Normal, then a sustained desaturation at 1 Hz.
    dev.publish_obs("mon-7", r#"{"metric":"spo2","value":97}"#)
        .await;
    let started = Instant::now();
    let feeder = tokio::spawn(async move {
        for _ in 0..6 {
            dev.publish_obs("mon-7", r#"{"metric":"spo2","value":88}"#)
                .await;
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        dev
    });
    // Announced on SSE within delay + 1 s, as a medium physiological alarm of bed-07.
    let (_, raised) = next_event(&mut sse, Duration::from_secs(4), |e, v| {
        e == "transition" && v["event"] == "raised"
    })
    .await
    .expect("raised on SSE within delay + 1 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let alarm = &raised["alarm"];
    assert_eq!(alarm["bed"], "bed-07");
    assert_eq!(alarm["priority"], "medium");
    assert_eq!(alarm["kind"], "physiological");
    assert_eq!(alarm["metric"]["name"], "spo2");
    let id = alarm["id"].as_str().unwrap().to_owned();
    // On MQTT.
    let on_mqtt = next_matching(&mut mqtt, Duration::from_secs(3), |v| {
        v["event"] == "raised"
    })
    .await
    .expect("raised on MQTT");
    assert_eq!(on_mqtt["alarm"]["id"], id.as_str());
    // In the API.
    let (status, body) = server.get("/api/v1/alarms?state=active&bed=bed-07").await;
    assert_eq!(status, 200);
    assert_eq!(body["alarms"][0]["id"], id.as_str());
    let mut dev = feeder.await.unwrap();

    // Acknowledge: no token 401, bad token 401, nurse OK and announced with the name.
    let path = format!("/api/v1/alarms/{id}/ack");
    let (s, _) = server
        .send(Method::POST, &path, None, Some(json!({})))
        .await;
    assert_eq!(s, 401);
    let (s, _) = server
        .send(Method::POST, &path, Some("wrong"), Some(json!({})))
        .await;
    assert_eq!(s, 401);
    let (s, body) = server
        .send(
            Method::POST,
            &path,
            Some(NURSE_TOKEN),
            Some(json!({"reason": "actionable", "note": "repositioned"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, acked) = next_event(&mut sse, Duration::from_secs(3), |e, v| {
        e == "transition" && v["event"] == "acknowledged"
    })
    .await
    .expect("acknowledgement on SSE");
    assert_eq!(acked["alarm"]["acknowledged_by"], "nurse-ana");
    assert!(
        next_matching(&mut mqtt, Duration::from_secs(3), |v| v["event"]
            == "acknowledged")
        .await
        .is_some()
    );
    // Acknowledging twice is a conflict, an unknown id 404.
    let (s, _) = server
        .send(Method::POST, &path, Some(NURSE_TOKEN), None)
        .await;
    assert_eq!(s, 409);
    let (s, _) = server
        .send(
            Method::POST,
            "/api/v1/alarms/A999999/ack",
            Some(NURSE_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Deeper desaturation: the same alarm goes high (no second alarm).
    dev.publish_obs("mon-7", r#"{"metric":"spo2","value":82}"#)
        .await;
    let (_, changed) = next_event(&mut sse, Duration::from_secs(3), |e, _| e == "transition")
        .await
        .expect("priority change");
    assert_eq!(changed["alarm"]["id"], id.as_str());
    assert_eq!(changed["alarm"]["priority"], "high");

    // History has every transition, with who.
    let (_, hist) = server.get("/api/v1/alarms/history?bed=bed-07").await;
    let events: Vec<&str> = hist["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert!(
        events.starts_with(&["raised", "acknowledged"]),
        "{events:?}"
    );

    // Restart: the open alarm is still there, same id and state.
    let before = server.get("/api/v1/alarms").await.1;
    server.restart().await;
    let after = server.get("/api/v1/alarms").await.1;
    assert_eq!(before["alarms"][0]["id"], after["alarms"][0]["id"]);
    assert_eq!(before["alarms"][0]["state"], after["alarms"][0]["state"]);
    assert_eq!(after["alarms"][0]["priority"], "high");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_need_the_right_role_and_are_kept() {
    let mut server = TestServer::start_with(&[("mon-3", "bed-03")], RULES).await;
    let (s, rules) = server.get("/api/v1/rules").await;
    assert_eq!(s, 200);
    assert_eq!(rules["rules"][0]["metric"], "spo2");
    // A nurse may not change ward rules, but may set a bed's.
    let (s, _) = server
        .send(
            Method::PUT,
            "/api/v1/rules",
            Some(NURSE_TOKEN),
            Some(rules.clone()),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = server
        .send(Method::PUT, "/api/v1/rules", None, Some(rules.clone()))
        .await;
    assert_eq!(s, 401);
    // An admin replaces the ward rules (and with them every bed's overrides).
    let (s, _) = server
        .send(Method::PUT, "/api/v1/rules", Some(ADMIN_TOKEN), Some(rules))
        .await;
    assert_eq!(s, 200);
    let hr = json!([{"metric": "hr", "low": 40, "high": 130, "priority": "medium"}]);
    // Wider than the ward's 50-120: a reason is needed.
    let (s, body) = server
        .send(
            Method::PUT,
            "/api/v1/beds/bed-03/rules",
            Some(NURSE_TOKEN),
            Some(hr.clone()),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = server
        .send(
            Method::PUT,
            "/api/v1/beds/bed-03/rules",
            Some(NURSE_TOKEN),
            Some(json!({ "rules": hr, "reason": "athlete, resting HR 45" })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["change"]["widened"], json!(["hr"]));
    assert_eq!(body["change"]["by"], "nurse-ana");
    // Invalid rules are refused with the reason.
    let bad = json!([{"metric": "hr", "low": 130, "high": 40, "priority": "medium"}]);
    let (s, body) = server
        .send(
            Method::PUT,
            "/api/v1/beds/bed-03/rules",
            Some(NURSE_TOKEN),
            Some(bad),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    server.restart().await;
    let (_, bed) = server.get("/api/v1/beds/bed-03/rules").await;
    assert_eq!(bed["overrides"][0]["low"], 40.0);
    assert_eq!(bed["change"]["reason"], "athlete, resting HR 45");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_data_raises_no_physiological_alarm() {
    let server = TestServer::start_with(&[("mon-8", "bed-08")], RULES).await;
    let mut dev = Device::connect(server.mqtt(), "mon-8").await;
    for _ in 0..3 {
        dev.publish_obs(
            "mon-8",
            r#"{"metric":"spo2","value":40,"status":"invalid"}"#,
        )
        .await;
    }
    dev.publish_obs("mon-8", r#"{"metric":"spo2","value":8388607}"#)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, body) = server.get("/api/v1/alarms").await;
    assert!(
        body["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "physiological"),
        "{body}"
    );
}

/// Guards "a device whose clock runs more than 5 minutes fast hides all its physiological
/// alarms" (issue 15): a desaturation from a monitor whose clock is 10 minutes ahead raises
/// the same alarm as from a monitor with a correct clock, its data is stored at hub time
/// (visible in the bed's chart now, not in ten minutes), counted as clock-corrected, and the
/// device gets its clock-skew alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_clock_ten_minutes_ahead_still_raises_its_desaturation() {
    let overlay = format!("{RULES}\n[alarms.technical]\nclock_skew_delay = \"1s\"\n");
    let server =
        TestServer::start_with(&[("mon-ok", "bed-01"), ("mon-fast", "bed-02")], &overlay).await;
    let mut ok = Device::connect(server.mqtt(), "mon-ok").await;
    let mut fast = Device::connect(server.mqtt(), "mon-fast").await;
    let ahead = 10 * 60_000;
    for _ in 0..4 {
        let t = now_ms();
        let doc = |t: i64| format!(r#"{{"metric":"spo2","value":88,"time":{t}}}"#);
        ok.publish_obs("mon-ok", &doc(t)).await;
        fast.publish_obs("mon-fast", &doc(t + ahead)).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let raised = |bed: &'static str| {
        let server = &server;
        async move {
            let (_, body) = server
                .get(&format!("/api/v1/alarms?bed={bed}&state=active"))
                .await;
            body["alarms"].as_array().cloned().unwrap_or_default()
        }
    };
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                raised("bed-02").await.iter().any(|a| a["cause"] == "limit")
            })
            .await,
        "the fast clock's desaturation raised no alarm: {:?}",
        raised("bed-02").await
    );
    let phys = |alarms: Vec<serde_json::Value>| {
        alarms
            .into_iter()
            .filter(|a| a["cause"] == "limit")
            .map(|a| {
                (
                    a["priority"].clone(),
                    a["metric"]["name"].clone(),
                    a["value"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        phys(raised("bed-02").await),
        phys(raised("bed-01").await),
        "the same alarm as from a correct clock"
    );
    // Stored at hub time: the chart up to now shows all four.
    let (s, body) = server
        .get("/api/v1/devices/mon-fast/observations?metric=spo2")
        .await;
    assert_eq!(s, 200, "{body}");
    let stored = body["observations"].as_array().unwrap();
    assert_eq!(stored.len(), 4, "{body}");
    assert!(
        server
            .metric("wardhub_ingest_clock_corrected_total{adapter=\"mqtt_json\"}")
            .await
            >= 4.0
    );
    // And the device's clock is flagged.
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                raised("bed-02")
                    .await
                    .iter()
                    .any(|a| a["cause"] == "clock_skew")
            })
            .await,
        "no clock-skew alarm: {:?}",
        raised("bed-02").await
    );
    assert!(
        !raised("bed-01")
            .await
            .iter()
            .any(|a| a["cause"] == "clock_skew"),
        "the correct clock is not flagged"
    );
}

/// Issue 15's what-if replay, end to end: a desaturation acknowledged as actionable, then
/// `wardhub alarms replay` with a lower SpO2 limit says the alarm would be gone and the
/// actionable one missed; the API is admin only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_lower_limit_names_the_actionable_alarm_it_would_miss() {
    let server = TestServer::start_with(&[("mon-7", "bed-07")], RULES).await;
    let started = now_ms();
    let mut dev = Device::connect(server.mqtt(), "mon-7").await;
    for _ in 0..5 {
        dev.publish_obs("mon-7", r#"{"metric":"spo2","value":88}"#)
            .await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let (_, body) = server.get("/api/v1/alarms?bed=bed-07").await;
    let id = body["alarms"][0]["id"]
        .as_str()
        .expect("an alarm")
        .to_owned();
    let (s, _) = server
        .send(
            Method::POST,
            &format!("/api/v1/alarms/{id}/ack"),
            Some(NURSE_TOKEN),
            Some(json!({"reason": "actionable"})),
        )
        .await;
    assert_eq!(s, 200);
    let lower = json!({"preset": "adult", "rules": [{"metric": "spo2", "low": 85, "delay": "2s"}]});
    let body = json!({"rules": lower, "from": (started - 60_000).to_string()});
    let (s, _) = server
        .send(
            Method::POST,
            "/api/v1/alarms/replay",
            Some(NURSE_TOKEN),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 403, "a replay is the admin's");
    let (s, r) = server
        .send(
            Method::POST,
            "/api/v1/alarms/replay",
            Some(ADMIN_TOKEN),
            Some(body),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let r = &r["replay"];
    assert!(r["observations"].as_u64().unwrap() >= 5, "{r}");
    assert_eq!(
        (r["current"].as_u64(), r["proposed"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    assert_eq!(r["gone"], 1);
    assert_eq!(r["actionable"][0]["alarm"], id.as_str());
    assert_eq!(r["actionable"][0]["outcome"], "missed");

    // The command line says the same, for people.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("lower.toml");
    std::fs::write(
        &rules,
        "[alarms]\npreset = \"adult\"\n[[alarms.rules]]\nmetric = \"spo2\"\nlow = 85\ndelay = \"2s\"\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(wardhub_e2e::wardhub_bin())
        .args(["alarms", "replay", "--from", "5m", "--rules"])
        .arg(&rules)
        .args(["--hub", &format!("http://{}", server.http())])
        .env("WARDHUB_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("gone 1"), "{text}");
    assert!(
        text.contains(&format!("MISSED {id} bed-07 desaturation")),
        "{text}"
    );
}
