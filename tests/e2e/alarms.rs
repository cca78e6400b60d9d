//! Issue #3: alarms end to end — raised from MQTT data, announced on MQTT and SSE, listed by
//! the API, acknowledged with a token, kept across a restart.

use std::time::Duration;

use reqwest::Method;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desaturation_is_raised_announced_acknowledged_and_survives_restart() {
    let mut server = TestServer::start_with(&[("mon-7", "bed-07")], RULES).await;
    // A subscriber is a service account (issue #4: anonymous clients are refused).
    let mut mqtt = Device::pager(server.mqtt()).await;
    assert!(mqtt.subscribe("wardhub/v1/wards/icu-3/#").await);
    let mut sse = server.sse("/api/v1/alarms/stream").await;
    let (ev, snap) = next_event(&mut sse, Duration::from_secs(5), |_, _| true)
        .await
        .expect("a snapshot first");
    assert_eq!(
        (ev.as_str(), snap["alarms"].as_array().map(Vec::len)),
        ("snapshot", Some(0))
    );

    let mut dev = Device::connect(server.mqtt(), "mon-7").await;
    // Normal, then a sustained desaturation at 1 Hz (the pace is the input: a monitor's
    // reading a second) until the alarm is raised.
    dev.publish_obs("mon-7", r#"{"metric":"spo2","value":97}"#)
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let feeder = tokio::spawn(async move {
        let mut stopped = stopped;
        for _ in 0..30 {
            dev.publish_obs("mon-7", r#"{"metric":"spo2","value":88}"#)
                .await;
            if tokio::time::timeout(Duration::from_secs(1), &mut stopped)
                .await
                .is_ok()
            {
                break;
            }
        }
        dev
    });
    // Announced on SSE as a medium physiological alarm of bed-07 (30 s is a timeout, not the
    // behaviour).
    let (_, raised) = next_event(&mut sse, Duration::from_secs(30), |e, v| {
        e == "transition" && v["event"] == "raised"
    })
    .await
    .expect("raised on SSE");
    let alarm = &raised["alarm"];
    assert_eq!(alarm["bed"], "bed-07");
    assert_eq!(alarm["priority"], "medium");
    assert_eq!(alarm["kind"], "physiological");
    assert_eq!(alarm["metric"]["name"], "spo2");
    // The timing here is the behaviour: not before the rule's 2 s delay, counted in hub time
    // from the start of the condition.
    let waited = alarm["raised_at"].as_i64().unwrap() - alarm["condition_since"].as_i64().unwrap();
    assert!(
        waited >= 2000,
        "raised {waited} ms into a 2 s delay: {alarm}"
    );
    let id = alarm["id"].as_str().unwrap().to_owned();
    // On MQTT.
    let on_mqtt = mqtt
        .next_json(Duration::from_secs(10), |v| v["event"] == "raised")
        .await
        .expect("raised on MQTT");
    assert_eq!(on_mqtt["alarm"]["id"], id.as_str());
    // In the API.
    let body = server.json("/api/v1/alarms?state=active&bed=bed-07").await;
    assert_eq!(body["alarms"][0]["id"], id.as_str());
    let _ = stop.send(());
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
    let (_, acked) = next_event(&mut sse, Duration::from_secs(10), |e, v| {
        e == "transition" && v["event"] == "acknowledged"
    })
    .await
    .expect("acknowledgement on SSE");
    assert_eq!(acked["alarm"]["acknowledged_by"], "nurse-ana");
    assert!(
        mqtt.next_json(Duration::from_secs(10), |v| v["event"] == "acknowledged")
            .await
            .is_some(),
        "acknowledgement on MQTT"
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
    let (_, changed) = next_event(&mut sse, Duration::from_secs(10), |e, _| e == "transition")
        .await
        .expect("priority change");
    assert_eq!(changed["alarm"]["id"], id.as_str());
    assert_eq!(changed["alarm"]["priority"], "high");

    // History has every transition, with who.
    let hist = server.alarm_history("bed=bed-07").await;
    let events: Vec<(&str, &str)> = hist
        .iter()
        .map(|t| (t["event"].as_str().unwrap(), t["by"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        events,
        [
            ("raised", ""),
            ("acknowledged", "nurse-ana"),
            ("priority_changed", "")
        ]
    );

    // Restart: the open alarm is still there, same id and state.
    let before = server.json("/api/v1/alarms").await;
    server.restart().await;
    let after = server.json("/api/v1/alarms").await;
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
    let bed = server.json("/api/v1/beds/bed-03/rules").await;
    assert_eq!(bed["overrides"][0]["low"], 40.0);
    assert_eq!(bed["change"]["reason"], "athlete, resting HR 45");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_data_raises_no_physiological_alarm() {
    let server = TestServer::start_with(&[("mon-8", "bed-08")], RULES).await;
    let mut dev = Device::connect(server.mqtt(), "mon-8").await;
    // Distinct times: observations of one metric at one time are one stored value.
    let t0 = now_ms() - 4000;
    for k in 0..3 {
        dev.publish_obs(
            "mon-8",
            &format!(
                r#"{{"metric":"spo2","value":40,"status":"invalid","time":{}}}"#,
                t0 + k * 1000
            ),
        )
        .await;
    }
    dev.publish_obs(
        "mon-8",
        &format!(
            r#"{{"metric":"spo2","value":8388607,"time":{}}}"#,
            t0 + 3000
        ),
    )
    .await;
    // Evidence the engine has judged all four: a PUBACK comes only after the pipeline stored
    // the observations and handed them to the alarm engine, and all four are stored (none
    // was rejected before the engine could see it). Below 85, a value the engine took as
    // valid would raise a high alarm at once, with no delay to wait out.
    let stored = server.observations("mon-8", 0).await;
    let statuses: Vec<&str> = stored
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 4, "{stored:?}");
    assert!(statuses.iter().all(|s| *s != "valid"), "{stored:?}");
    let alarms = server.alarms("state=open").await;
    assert!(
        alarms.iter().all(|a| a["kind"] != "physiological"),
        "{alarms:?}"
    );
}

/// Publishes SpO2 88 from each of `devices` once a second (a monitor's pace) until `done`
/// holds, for at most 30 readings; returns how many each sent. `doc` makes the document
/// of one device at hub time `t`.
async fn desaturate_until<F, Fut>(
    devices: &mut [(&str, &mut Device)],
    doc: impl Fn(&str, i64) -> String,
    mut done: F,
) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for sent in 1..=30 {
        let t = now_ms();
        for (id, dev) in devices.iter_mut() {
            dev.publish_obs(id, &doc(id, t)).await;
        }
        if done().await {
            return sent;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("30 s of desaturation and the awaited alarm is not there");
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
    let raised = |bed: &'static str| {
        let server = &server;
        async move { server.alarms(&format!("bed={bed}&state=active")).await }
    };
    let limit_alarm = |bed: &'static str| {
        let raised = &raised;
        async move { raised(bed).await.iter().any(|a| a["cause"] == "limit") }
    };
    // Until both beds have their desaturation: the correct clock's proves the delay is over.
    let sent = desaturate_until(
        &mut [("mon-ok", &mut ok), ("mon-fast", &mut fast)],
        |id, t| {
            let t = if id == "mon-fast" { t + ahead } else { t };
            format!(r#"{{"metric":"spo2","value":88,"time":{t}}}"#)
        },
        || async { limit_alarm("bed-01").await && limit_alarm("bed-02").await },
    )
    .await;
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
    // Stored at hub time: the chart up to now shows every reading.
    let body = server
        .json("/api/v1/devices/mon-fast/observations?metric=spo2")
        .await;
    let stored = body["observations"].as_array().unwrap();
    assert_eq!(stored.len(), sent, "{body}");
    assert_eq!(
        server
            .metric("wardhub_ingest_clock_corrected_total{adapter=\"mqtt_json\"}")
            .await,
        sent as f64
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
    let alarm_id = || async {
        server
            .alarms("bed=bed-07")
            .await
            .first()
            .map(|a| a["id"].as_str().expect("an alarm has an id").to_owned())
    };
    let sent = desaturate_until(
        &mut [("mon-7", &mut dev)],
        |_, _| r#"{"metric":"spo2","value":88}"#.to_owned(),
        || async { alarm_id().await.is_some() },
    )
    .await;
    let id = alarm_id().await.unwrap();
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
    assert_eq!(r["observations"].as_u64(), Some(sent as u64), "{r}");
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
