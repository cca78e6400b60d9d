//! Issue #4: the device registry. Unknown, retired and wrong-credential devices are refused
//! at CONNECT with nothing stored; a device cannot publish or subscribe as another; MQTT over
//! TLS; the registry API (PUT contract, roles, concurrent binds, CSV import).

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use rumqttc::{ConnectReturnCode, QoS, TlsConfiguration, Transport};
use serde_json::json;
use wardhub_e2e::{now_ms, Connect, Device, TestServer, BIOMED_TOKEN, NURSE_TOKEN};

/// Registers a device through the API and returns its secret.
async fn register(server: &TestServer, id: &str, kind: &str, bed: &str) -> String {
    let (status, body) = server
        .send(
            Method::PUT,
            &format!("/api/v1/devices/{id}"),
            Some(BIOMED_TOKEN),
            Some(json!({ "kind": kind, "bed": bed })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["secret"].as_str().expect("a new secret").to_owned()
}

/// Connects as device `id` with its secret (or none), over `transport` (or plain TCP).
async fn connect(
    addr: SocketAddr,
    id: &str,
    password: Option<&str>,
    transport: Option<Transport>,
) -> (Connect, Device) {
    let mut opts = wardhub_e2e::mqtt::options(addr, id);
    if let Some(p) = password {
        opts.set_credentials(id, p);
    }
    if let Some(t) = transport {
        opts.set_transport(t);
    }
    Device::try_connect(opts).await
}

fn obs(value: u32) -> String {
    format!(
        r#"{{"metric":"MDC_PULS_OXIM_SAT_O2","value":{value},"time":{}}}"#,
        now_ms() - 1000
    )
}

/// Unknown device, wrong password, no password, retired device: refused with a CONNACK,
/// counted, and nothing of theirs is stored. The right password works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_retired_and_wrong_password_are_refused() {
    let server = TestServer::start(&[]).await;
    let secret = register(&server, "mon-a", "patient_monitor", "bed-01").await;
    let addr = server.mqtt();

    let (c, _) = connect(addr, "ghost", Some("whatever-password"), None).await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::NotAuthorized));
    let (c, _) = connect(addr, "mon-a", Some("not-the-secret-at-all"), None).await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::BadUserNamePassword));
    let (c, _) = connect(addr, "mon-a", None, None).await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::BadUserNamePassword));

    let (c, mut dev) = connect(addr, "mon-a", Some(&secret), None).await;
    assert_eq!(c, Connect::Accepted);
    assert!(
        dev.try_publish("wardhub/v1/devices/mon-a/obs", obs(97))
            .await
    );
    // A PUBACK comes once the observation is stored.
    let stored = server.observations("mon-a", 0).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["bed"], "bed-01");
    drop(dev);

    // Retired: refused even with the right secret.
    let (status, _) = server
        .send(
            Method::POST,
            "/api/v1/devices/mon-a/retire",
            Some(BIOMED_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (c, _) = connect(addr, "mon-a", Some(&secret), None).await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::NotAuthorized));

    assert_eq!(server.stored("mon-a").await, 1);
    let (status, body) = server.get("/api/v1/devices/ghost/observations").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        server
            .metric(r#"wardhub_mqtt_refused_total{reason="auth"}"#)
            .await
            >= 4.0
    );
    // The status shows the device retired and offline, and its history who did what.
    let offline = server
        .eventually(Duration::from_secs(10), || async {
            server.json("/api/v1/devices/mon-a/status").await["online"] == false
        })
        .await;
    let status = server.json("/api/v1/devices/mon-a/status").await;
    assert!(offline, "{status}");
    assert_eq!(status["state"], "retired", "{status}");
    let (s, h) = server
        .send(
            reqwest::Method::GET,
            "/api/v1/devices/mon-a/history",
            Some(BIOMED_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{h}");
    let actions: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["created", "retired"]);
    assert_eq!(h["history"][0]["who"], "biomed-ben");
}

/// Device A, with valid credentials, publishes on device B's topic: the connection is closed
/// and nothing is stored for B. Subscribing to B's topics is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_publish_as_another() {
    let server = TestServer::start(&[]).await;
    let secret_a = register(&server, "pump-a", "infusion_pump", "bed-01").await;
    let _secret_b = register(&server, "pump-b", "infusion_pump", "bed-02").await;
    let addr = server.mqtt();

    let (c, mut a) = connect(addr, "pump-a", Some(&secret_a), None).await;
    assert_eq!(c, Connect::Accepted);
    assert!(
        !a.try_publish("wardhub/v1/devices/pump-b/obs", obs(91))
            .await,
        "a publish on another device's topic was acknowledged"
    );
    // Also through a user name that is not the client id.
    let mut opts = wardhub_e2e::mqtt::options(addr, "pump-a");
    opts.set_credentials("pump-b", secret_a.clone());
    let (c, _) = Device::try_connect(opts).await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::BadUserNamePassword));

    let (c, mut a) = connect(addr, "pump-a", Some(&secret_a), None).await;
    assert_eq!(c, Connect::Accepted);
    assert!(!a.subscribe("wardhub/v1/devices/pump-b/#").await);
    let (_, mut a) = connect(addr, "pump-a", Some(&secret_a), None).await;
    assert!(!a.subscribe("wardhub/v1/devices/#").await);
    let (_, mut a) = connect(addr, "pump-a", Some(&secret_a), None).await;
    assert!(!a.try_publish("wardhub/v1/wards/ward-1/alarms", "{}").await);

    // Its own topics work.
    let (_, mut a) = connect(addr, "pump-a", Some(&secret_a), None).await;
    assert!(a.subscribe("wardhub/v1/devices/pump-a/#").await);
    assert!(
        a.try_publish("wardhub/v1/devices/pump-a/obs", obs(96))
            .await
    );
    // Its PUBACK means it is stored. It is the marker: sent after everything above, through
    // one pipeline that keeps order, so a publish for B that had slipped through would be
    // stored by now too.
    assert_eq!(server.stored("pump-a").await, 1);
    assert_eq!(server.stored("pump-b").await, 0);
    assert!(
        server
            .metric(r#"wardhub_mqtt_refused_total{reason="acl"}"#)
            .await
            >= 4.0
    );
}

/// A device whose CONNECT carries a last will on another device's topic is refused at
/// CONNECT: it cannot have the broker speak for another device after it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_on_another_devices_topic_is_refused() {
    let server = TestServer::start(&[]).await;
    let secret = register(&server, "mon-w", "patient_monitor", "bed-01").await;
    let mut opts = wardhub_e2e::mqtt::options(server.mqtt(), "mon-w");
    opts.set_credentials("mon-w", secret.clone());
    opts.set_last_will(rumqttc::LastWill::new(
        "wardhub/v1/devices/other/status",
        r#"{"online":false}"#,
        QoS::AtLeastOnce,
        false,
    ));
    let (c, _) = Device::try_connect(opts).await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::NotAuthorized));
}

/// MQTT over TLS (rustls) on the TLS port; a plain CONNECT there gets no CONNACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_and_plain_refused_on_the_tls_port() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let overlay = format!(
        "[mqtt.tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let server = TestServer::start_with(&[], &overlay).await;
    let tls_addr = server.hub().addresses.mqtt_tls.expect("TLS listener");
    let secret = register(&server, "vent-t", "ventilator", "bed-04").await;

    let transport = Transport::Tls(TlsConfiguration::Simple {
        ca: certified.cert.pem().into_bytes(),
        alpn: None,
        client_auth: None,
    });
    let (c, mut dev) = connect(tls_addr, "vent-t", Some(&secret), Some(transport)).await;
    assert_eq!(c, Connect::Accepted);
    assert!(
        dev.try_publish("wardhub/v1/devices/vent-t/obs", obs(98))
            .await
    );
    assert_eq!(server.stored("vent-t").await, 1, "a PUBACK means stored");

    // Plain MQTT to the TLS port: no CONNACK, counted as a TLS failure.
    let (c, _) = connect(tls_addr, "vent-t", Some(&secret), None).await;
    assert_eq!(c, Connect::Closed);
    // A wrong password over TLS is still refused.
    let transport = Transport::Tls(TlsConfiguration::Simple {
        ca: certified.cert.pem().into_bytes(),
        alpn: None,
        client_auth: None,
    });
    let (c, _) = connect(
        tls_addr,
        "vent-t",
        Some("wrong-password-123"),
        Some(transport),
    )
    .await;
    assert_eq!(c, Connect::Refused(ConnectReturnCode::BadUserNamePassword));
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                server
                    .metric(r#"wardhub_mqtt_refused_total{reason="tls"}"#)
                    .await
                    >= 1.0
            })
            .await
    );
}

/// The PUT contract: 201 created (secret once), 200 updated, 409 on another active device's
/// slot unless replace; 401 without a token, 403 for a nurse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_contract_and_roles() {
    let server = TestServer::start(&[]).await;
    let put = |id: &str, body: serde_json::Value, token: Option<&'static str>| {
        let path = format!("/api/v1/devices/{id}");
        let server = &server;
        async move { server.send(Method::PUT, &path, token, Some(body)).await }
    };
    let body = json!({"kind": "smart_bed", "bed": "bed-07", "model": "X1"});
    let (s, b) = put("sb-1", body.clone(), Some(BIOMED_TOKEN)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["secret"].as_str().map(str::len), Some(64));
    let (s, b) = put("sb-1", body.clone(), Some(BIOMED_TOKEN)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get("secret").is_none());
    let (s, b) = put(
        "sb-2",
        json!({"kind": "smart_bed", "bed": "bed-07"}),
        Some(BIOMED_TOKEN),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert!(b["error"].as_str().unwrap().contains("sb-1"));
    let (s, _) = put(
        "sb-2",
        json!({"kind": "smart_bed", "bed": "bed-07", "replace": true, "secret": "my-own-secret-0123"}),
        Some(BIOMED_TOKEN),
    )
    .await;
    assert_eq!(s, 201);
    let d = server.json("/api/v1/devices/sb-1").await;
    assert_eq!(d["bed"], serde_json::Value::Null);
    let beds = server.json("/api/v1/beds/bed-07").await;
    assert_eq!(beds["slots"]["smart_bed"], "sb-2");
    assert_eq!(put("sb-3", body.clone(), None).await.0, 401);
    assert_eq!(put("sb-3", body.clone(), Some("not-a-token")).await.0, 401);
    assert_eq!(put("sb-3", body.clone(), Some(NURSE_TOKEN)).await.0, 403);
    let (s, _) = put("sb-3", json!({"kind": "smart bed!"}), Some(BIOMED_TOKEN)).await;
    assert_eq!(s, 400);
    // Reads are open.
    let (s, l) = server.get("/api/v1/devices?kind=smart_bed").await;
    assert_eq!(s, 200);
    assert_eq!(l["devices"].as_array().unwrap().len(), 2);
    assert_eq!(server.get("/api/v1/devices/nobody").await.0, 404);
}

/// Eight binds race for one slot: exactly one wins, the others get 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_binds_over_http_to_one_slot_exactly_one_wins() {
    let server = TestServer::start(&[]).await;
    for i in 0..8 {
        let (s, _) = server
            .send(
                Method::POST,
                "/api/v1/devices",
                Some(BIOMED_TOKEN),
                Some(json!({"id": format!("np-{i}"), "kind": "infusion_pump"})),
            )
            .await;
        assert_eq!(s, 201);
    }
    let base = format!("http://{}", server.http());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{base}/api/v1/devices/np-{i}/bind"))
                    .bearer_auth(BIOMED_TOKEN)
                    .json(&json!({"bed": "bed-05"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, vec![200, 409, 409, 409, 409, 409, 409, 409]);
    let l = server.json("/api/v1/devices?bed=bed-05").await;
    assert_eq!(l["devices"].as_array().unwrap().len(), 1);
}

/// CSV import: every bad row reported with its line; nothing imported unless all are good or
/// partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_with_bad_rows() {
    let server = TestServer::start(&[]).await;
    let csv = "id,kind,bed,firmware,maintenance_due\n\
               m-1,patient_monitor,bed-01,2.1,2030-01-01\n\
               m-2,patient_monitor,bed-01,2.1,\n\
               m-3,,bed-02,,\n\
               m 4,wearable,bed-02,,\n\
               m-5,wearable,bed-02,,31/12/2030\n\
               m-6,wearable,bed-03,,\n";
    let post = |partial: bool| {
        let url = format!(
            "http://{}/api/v1/devices/import{}",
            server.http(),
            if partial { "?partial=true" } else { "" }
        );
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(BIOMED_TOKEN)
                .body(csv)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (s, r) = post(false).await;
    assert_eq!(s, 422, "{r}");
    let lines: Vec<u64> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{r}");
    let l = server.json("/api/v1/devices").await;
    assert_eq!(l["devices"].as_array().unwrap().len(), 0);
    let (s, r) = post(true).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["created"], 2);
    assert_eq!(r["secrets"].as_array().unwrap().len(), 2);
    let export = reqwest::Client::new()
        .get(format!("http://{}/api/v1/devices/export", server.http()))
        .bearer_auth(BIOMED_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(export.starts_with("id,kind,"), "{export}");
    assert!(
        export.contains("m-1,patient_monitor,,,,2.1,,ward-1,bed-01,2030-01-01,,active"),
        "{export}"
    );
}
