//! Issue #5: the contract every adapter passes — valid data is stored, bad data is refused
//! with a counted reason while the adapter goes on, and a shutdown drains what was
//! acknowledged. Add a `Driver` variant for each new adapter.

use std::time::Duration;

use wardhub_e2e::hl7::{oru, Mllp};
use wardhub_e2e::{now_ms, Device, TestServer};

const DEVICE: &str = "00C0000000000001";
const BED: &str = "bed-01";

/// Speaks one adapter's protocol as a device.
enum Driver {
    Mqtt(Device),
    Hl7(Mllp),
}

impl Driver {
    async fn connect(kind: &str, server: &TestServer) -> Driver {
        match kind {
            "mqtt_json" => Driver::Mqtt(Device::connect(server.mqtt(), DEVICE).await),
            "hl7_mllp" => Driver::Hl7(Mllp::connect(server.hub().addresses.hl7.unwrap()).await),
            other => panic!("no driver for {other}"),
        }
    }

    /// Sends SpO2 and pulse rate at `t`; returns once the adapter acknowledged it.
    async fn send_valid(&mut self, seq: i64, t: i64) {
        match self {
            Driver::Mqtt(d) => {
                let doc = format!(
                    r#"{{"observations":[{{"metric":"spo2","value":96,"time":{t}}},{{"metric":"pr","value":70,"time":{t}}}]}}"#
                );
                d.publish_obs(DEVICE, &doc).await;
            }
            Driver::Hl7(c) => {
                let (code, ack) = c
                    .send(&oru(&format!("K{seq}"), DEVICE, BED, t, 96.0, 70.0))
                    .await
                    .expect("ACK");
                assert_eq!(code, "AA", "{ack}");
            }
        }
    }

    /// Sends something malformed; returns once it has been answered or acknowledged.
    async fn send_bad(&mut self) {
        match self {
            Driver::Mqtt(d) => d.publish_obs(DEVICE, "{\"observations\": [").await,
            Driver::Hl7(c) => {
                let (code, _) = c.send("PID|||no header\rOBX|1|NM|").await.expect("answer");
                assert_ne!(code, "AA");
            }
        }
    }
}

async fn stored(server: &TestServer, from: i64) -> usize {
    server.observations(DEVICE, from).await.len()
}

async fn contract(kind: &str) {
    let mut server = TestServer::start(&[(DEVICE, BED)]).await;
    let mut driver = Driver::connect(kind, &server).await;
    let t0 = now_ms() - 60_000;

    // 1. Valid data is stored, with the bed of the binding.
    driver.send_valid(0, t0).await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                stored(&server, t0 - 1).await == 2
            })
            .await,
        "{kind}: not stored"
    );
    let stored_obs = server.observations(DEVICE, t0 - 1).await;
    assert!(
        stored_obs.iter().all(|o| o["bed"] == BED),
        "{kind}: not stored with the bed of the binding: {stored_obs:?}"
    );

    // 2. Bad data is refused with a counted reason; the adapter (and connection) go on.
    let before = server.rejects(kind, "malformed").await;
    driver.send_bad().await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                server.rejects(kind, "malformed").await > before
            })
            .await,
        "{kind}: bad input not counted as malformed"
    );
    driver.send_valid(1, t0 + 1).await;
    assert!(
        server
            .eventually(Duration::from_secs(5), || async {
                stored(&server, t0 - 1).await == 4
            })
            .await,
        "{kind}: adapter stopped after bad input"
    );

    // 3. Shutdown drains: everything acknowledged before the stop is there after a restart.
    for i in 2..200 {
        driver.send_valid(i, t0 + i).await;
    }
    drop(driver);
    server.restart().await;
    assert_eq!(
        stored(&server, t0 - 1).await,
        400,
        "{kind}: acknowledged data lost in shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_json_adapter_passes_the_contract() {
    contract("mqtt_json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_mllp_adapter_passes_the_contract() {
    contract("hl7_mllp").await;
}
