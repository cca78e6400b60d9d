//! Issue #2: MQTT JSON observations reach the store and the API, survive a restart.

use std::time::Duration;

use wardhub_e2e::{now_ms, Device, TestServer};

/// 50 devices publish at QoS 1; every observation is queryable by device and by bed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_devices_every_observation_stored() {
    let ids: Vec<String> = (0..50).map(|i| format!("mon-{i:02}")).collect();
    let beds: Vec<String> = (0..50).map(|i| format!("bed-{:02}", i / 2)).collect();
    let pairs: Vec<(&str, &str)> = ids
        .iter()
        .map(String::as_str)
        .zip(beds.iter().map(String::as_str))
        .collect();
    let server = TestServer::start(&pairs).await;
    let t0 = now_ms() - 60_000;
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (addr, id) = (server.mqtt(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut dev = Device::connect(addr, &id).await;
            for k in 0..10i64 {
                let t = t0 + k * 1000;
                let doc = format!(
                    r#"{{"observations":[{{"metric":"MDC_PULS_OXIM_SAT_O2","value":{},"unit":"%","time":{t}}},{{"metric":147842,"value":{},"time":{t}}}]}}"#,
                    90 + (i % 10),
                    60 + k
                );
                dev.publish_obs(&id, &doc).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every observation of every device is there, with the bed from the binding.
    // A PUBACK comes once stored: no waiting.
    for (i, id) in ids.iter().enumerate() {
        let stored = server.observations(id, t0 - 1).await;
        assert_eq!(stored.len(), 20, "{id}: {stored:?}");
        assert!(
            stored
                .iter()
                .all(|o| o["bed"] == beds[i].as_str() && o["unit"].is_string()),
            "{id}: {stored:?}"
        );
    }
    // By bed: two devices per bed, 40 observations.
    let (status, body) = server
        .get(&format!(
            "/api/v1/beds/bed-07/observations?from={}&to={}",
            t0 - 1,
            t0 + 20_000
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["observations"].as_array().unwrap().len(), 40);
    // Latest of a bed holds both devices' two metrics.
    let body = server.json("/api/v1/beds/bed-07/latest").await;
    assert_eq!(body["latest"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(
        server.metric("wardhub_observations_stored_total").await,
        1000.0
    );
}

/// A client no one here wrote: Debian's mosquitto_pub, MQTT 3.1.1 and 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_is_a_device() {
    let server = TestServer::start(&[("mosq-1", "bed-01")]).await;
    let addr = server.mqtt();
    for (version, value) in [("mqttv311", 95), ("mqttv5", 94)] {
        let status = tokio::process::Command::new("mosquitto_pub")
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-V", version, "-q", "1", "-i", "mosq-1"])
            .args(["-t", "wardhub/v1/devices/mosq-1/obs"])
            .args(["-m", &format!(r#"{{"metric":"MDC_PULS_OXIM_SAT_O2","value":{value},"time":{}}}"#, now_ms() - (value as i64))])
            .status()
            .await
            .expect("mosquitto_pub must be installed (Debian package mosquitto-clients; .ci/run installs it)");
        assert!(status.success(), "mosquitto_pub {version} failed");
    }
    // mosquitto_pub exits once its PUBACK came: both are stored.
    let stored = server.observations("mosq-1", 0).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
}

/// Observations acknowledged before a shutdown are there after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_observations_survive_restart() {
    let mut server = TestServer::start(&[("mon-r", "bed-09")]).await;
    let mut dev = Device::connect(server.mqtt(), "mon-r").await;
    let t0 = now_ms() - 10_000;
    for k in 0..200i64 {
        let doc = format!(
            r#"{{"metric":"hr","value":{},"time":{}}}"#,
            60 + k % 40,
            t0 + k
        );
        dev.publish_obs("mon-r", &doc).await;
    }
    // Shut down right after the last PUBACK: the drain must still store everything.
    server.restart().await;
    let (status, body) = server
        .get(&format!(
            "/api/v1/devices/mon-r/observations?from={}&to={}",
            t0,
            t0 + 1000
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["observations"].as_array().unwrap().len(), 200);
    // The rollup of those minutes survived too.
    let body = server
        .json(&format!(
            "/api/v1/devices/mon-r/observations?from={}&to={}&resolution=1m",
            t0,
            t0 + 1000
        ))
        .await;
    let count: u64 = body["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 200);
}

/// Port 0 works, addresses are reported, and a second hub on a taken port fails clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_port_is_a_clear_error() {
    let server = TestServer::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = server.config.clone();
    config.hub.data_dir = dir.path().to_owned();
    config.mqtt.listen = server.mqtt();
    let err = wardhub::server::Hub::start(config).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("MQTT") && msg.contains(&server.mqtt().to_string()),
        "{msg}"
    );
}

/// A data directory that is in use by another hub is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_in_use_is_a_clear_error() {
    let server = TestServer::start(&[]).await;
    let mut config = server.config.clone();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    let err = wardhub::server::Hub::start(config).await.unwrap_err();
    assert!(err.to_string().contains("data directory"), "{err}");
}

/// Queries: unknown device 404, bad times 400, JSON errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_errors_are_json() {
    let server = TestServer::start(&[("mon-q", "bed-01")]).await;
    let (s, b) = server.get("/api/v1/devices/nobody/latest").await;
    assert_eq!((s, b["error"].as_str().is_some()), (404, true));
    let (s, b) = server
        .get("/api/v1/devices/mon-q/observations?from=yesterday")
        .await;
    assert_eq!(s, 400);
    assert!(b["error"].as_str().unwrap().contains("RFC 3339"));
    let (s, _) = server
        .get("/api/v1/devices/mon-q/observations?from=20&to=10")
        .await;
    assert_eq!(s, 400);
    let (s, _) = server
        .get("/api/v1/devices/mon-q/observations?metric=nonsense")
        .await;
    assert_eq!(s, 400);
    let (s, _) = server
        .get("/api/v1/beds/bed-01/observations?resolution=5m")
        .await;
    assert_eq!(s, 400);
    // A registered device with no data yet is an empty list, not an error.
    let (s, b) = server.get("/api/v1/devices/mon-q/latest").await;
    assert_eq!((s, b["latest"].as_array().unwrap().len()), (200, 0));
    let (s, b) = server.get("/healthz").await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
}

/// A burst far faster than the pipeline stores loses nothing: the broker's log of device topics
/// holds the backlog (regression: with small segments rumqttd rolled past the hub's cursor and
/// dropped acknowledged data without a word).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_stored_completely() {
    let ids: Vec<String> = (0..10).map(|i| format!("burst-{i}")).collect();
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (i.as_str(), "bed-01")).collect();
    let server = TestServer::start(&pairs).await;
    let t0 = now_ms() - 3_000_000;
    let mut tasks = Vec::new();
    for id in ids.clone() {
        let addr = server.mqtt();
        tasks.push(tokio::spawn(async move {
            let mut opts = rumqttc::MqttOptions::new(id.clone(), addr.ip().to_string(), addr.port());
            opts.set_inflight(100);
            let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 1000);
            let topic = format!("wardhub/v1/devices/{id}/obs");
            let sender = tokio::spawn(async move {
                for k in 0..1000i64 {
                    let doc = format!(
                        r#"{{"observations":[{{"metric":"hr","value":70,"time":{}}},{{"metric":"spo2","value":97,"time":{}}}]}}"#,
                        t0 + k,
                        t0 + k
                    );
                    client.publish(topic.clone(), rumqttc::QoS::AtLeastOnce, false, doc).await.unwrap();
                }
                client
            });
            let mut acks = 0;
            while acks < 1000 {
                if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = eventloop.poll().await {
                    acks += 1;
                }
            }
            drop(sender.await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let want = 10 * 1000 * 2;
    let ok = server
        .eventually(Duration::from_secs(30), || async {
            server.metric("wardhub_observations_stored_total").await as usize >= want
        })
        .await;
    assert!(
        ok,
        "stored {} of {want}",
        server.metric("wardhub_observations_stored_total").await
    );
}

/// Guards "`wardhub_db_size_bytes` reads 0 until the retention task first runs (10 min)": the
/// size is read on every scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_size_is_reported_from_the_first_scrape() {
    let server = TestServer::start(&[("mon-z", "bed-01")]).await;
    let before = server.metric("wardhub_db_size_bytes").await;
    let mut dev = Device::connect(server.mqtt(), "mon-z").await;
    let t = now_ms() - 60_000;
    for i in 0..50 {
        let obs: Vec<String> = (0..100)
            .map(|k| {
                format!(
                    r#"{{"metric":"spo2","value":97,"time":{}}}"#,
                    t + i * 100 + k
                )
            })
            .collect();
        dev.publish_obs(
            "mon-z",
            &format!(r#"{{"observations":[{}]}}"#, obs.join(",")),
        )
        .await;
    }
    // Acknowledged means flushed: the size on disk grew, and the next scrape says so.
    let ok = server
        .eventually(Duration::from_secs(10), || async {
            server.metric("wardhub_db_size_bytes").await > before
        })
        .await;
    assert!(ok, "still {before} after 5,000 stored observations");
}
