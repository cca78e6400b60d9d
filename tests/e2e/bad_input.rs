//! Issue #2: every kind of bad input is refused with a counted reason, and nothing else is
//! lost: the connection, the adapter and the valid observations of the same document stay.

use std::time::Duration;

use wardhub_e2e::{now_ms, Connect, Device, TestServer};

async fn rejects(server: &TestServer, reason: &str) -> f64 {
    server.rejects("mqtt_json", reason).await
}

/// One device sends each kind of bad document between good ones, on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_is_counted_and_nothing_else_lost() {
    let server = TestServer::start_with(
        &[("mon-b", "bed-01")],
        "[ingest]\nmax_payload_bytes = 4096\nmax_observations_per_message = 50\n",
    )
    .await;
    let mut dev = Device::connect(server.mqtt(), "mon-b").await;
    let now = now_ms();
    let mut good = 0;
    let mut t = now - 100_000;
    let mut next_good = |good: &mut usize| {
        *good += 1;
        t += 1;
        format!(r#"{{"metric":"spo2","value":97,"time":{t}}}"#)
    };
    let cases: Vec<(&str, String)> = vec![
        ("malformed", "{not json".into()),
        ("malformed", r#"{"metric":"spo2","value":NaN}"#.into()),
        ("schema", r#"{"metric":"spo2","value":"97"}"#.into()),
        ("schema", r#"42"#.into()),
        ("out_of_range", r#"{"metric":"spo2","value":140}"#.into()),
        // JSON cannot carry NaN or infinities: numbers beyond f64 are malformed JSON.
        ("malformed", r#"{"metric":"spo2","value":1e999}"#.into()),
        (
            "too_old",
            format!(
                r#"{{"metric":"spo2","value":97,"time":{}}}"#,
                now - 100 * 3_600_000
            ),
        ),
        (
            "unknown_metric",
            r#"{"metric":"MDC_NOT_A_METRIC","value":1}"#.into(),
        ),
        (
            "unit_mismatch",
            r#"{"metric":"spo2","value":97,"unit":"mm[Hg]"}"#.into(),
        ),
        (
            "too_large",
            format!(r#"{{"observations":[],"pad":"{}"}}"#, "x".repeat(5000)),
        ),
        (
            "too_many",
            format!(
                r#"{{"observations":[{}]}}"#,
                vec![r#"{"metric":"hr","value":70}"#; 51].join(",")
            ),
        ),
    ];
    for (reason, doc) in &cases {
        let before = rejects(&server, reason).await;
        dev.publish_obs("mon-b", doc).await;
        let g = next_good(&mut good);
        dev.publish_obs("mon-b", &g).await;
        let counted = server
            .eventually(Duration::from_secs(5), || async {
                rejects(&server, reason).await > before
            })
            .await;
        assert!(counted, "{reason} not counted for {doc:.80}");
    }
    // Unknown topic shape and bad device id in the topic.
    let before = rejects(&server, "unknown_topic").await;
    dev.publish("wardhub/v1/devices/mon-b/whatever", "{}").await;
    dev.publish("wardhub/v1/devices/mon-b/obs/extra", "{}")
        .await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                rejects(&server, "unknown_topic").await >= before + 2.0
            })
            .await
    );
    // Unknown device: refused at CONNECT (issue #4), counted, nothing stored.
    let before = server
        .metric(r#"wardhub_mqtt_refused_total{reason="auth"}"#)
        .await;
    let (refused, _) =
        Device::try_connect(wardhub_e2e::mqtt::options(server.mqtt(), "stranger")).await;
    assert!(matches!(refused, Connect::Refused(_)), "{refused:?}");
    assert!(
        server
            .metric(r#"wardhub_mqtt_refused_total{reason="auth"}"#)
            .await
            > before
    );
    let (status, _) = server.get("/api/v1/devices/stranger/latest").await;
    assert_eq!(status, 404);

    // A document mixing good and bad observations keeps the good ones.
    t += 1;
    let mixed = format!(
        r#"{{"observations":[{{"metric":"hr","value":70,"time":{t}}},{{"metric":"hr","value":-5,"time":{t}}},{{"metric":"rr","value":16,"time":{t}}}]}}"#
    );
    dev.publish_obs("mon-b", &mixed).await;
    // The same connection still works, and every good observation is there.
    let expected = good + 2;
    let all = server
        .eventually(Duration::from_secs(5), || async {
            server.stored("mon-b").await == expected
        })
        .await;
    assert!(all, "stored {} of {expected}", server.stored("mon-b").await);
}

/// An MQTT packet over the broker's limit closes that connection only; others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_packet_closes_only_that_connection() {
    let server = TestServer::start_with(
        &[("mon-big", "bed-01"), ("mon-ok", "bed-02")],
        "[mqtt]\nmax_packet_bytes = 2048\n",
    )
    .await;
    let mut ok = Device::connect(server.mqtt(), "mon-ok").await;
    let mut big = Device::connect(server.mqtt(), "mon-big").await;
    big.client
        .publish(
            "wardhub/v1/devices/mon-big/obs",
            rumqttc::QoS::AtLeastOnce,
            false,
            vec![b' '; 10_000],
        )
        .await
        .unwrap();
    assert!(
        big.closed(Duration::from_secs(5)).await,
        "oversized packet did not close the connection"
    );
    assert!(
        server
            .metric(r#"wardhub_mqtt_refused_total{reason="too_large"}"#)
            .await
            >= 1.0
    );
    ok.publish_obs("mon-ok", r#"{"metric":"hr","value":70}"#)
        .await;
    let got = server
        .eventually(Duration::from_secs(5), || async {
            server.stored("mon-ok").await == 1
        })
        .await;
    assert!(
        got,
        "{}",
        server
            .metrics()
            .await
            .lines()
            .filter(|l| !l.starts_with('#') && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
