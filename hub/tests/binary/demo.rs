//! Issue 6: `wardhub demo` starts a hub with a simulated ward, serves data within seconds, and
//! stops on SIGINT with exit 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{get, get_json, Banner};

/// GET a JSON document that must be there (200).
fn get_ok(addr: &str, token: &str, path: &str) -> serde_json::Value {
    let (status, body) = get_json(addr, token, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The demo's process, killed if the test fails before it stops.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_serves_a_living_ward_and_stops_on_sigint() {
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_wardhub"))
            .env_remove("WARDHUB_CONFIG")
            .env_remove("WARDHUB_DATA_DIR")
            .env_remove("WARDHUB_MQTT_LISTEN")
            .env_remove("WARDHUB_HTTP_LISTEN")
            // Never fixed ports in tests: HL7 and metrics listeners bind ephemeral ones too.
            .env("WARDHUB_HL7_LISTEN", "127.0.0.1:0")
            .env("WARDHUB_METRICS_LISTEN", "127.0.0.1:0")
            .env("WARDHUB_LOG", "warn")
            .args([
                "demo",
                "--http-listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut demo.0;
    let (banner, lines) = Banner::of(child.stdout.take().unwrap());
    let Banner {
        http,
        metrics,
        nurse_token: token,
        ..
    } = banner;
    assert!(
        !metrics.is_empty() && token.len() == 64,
        "the metrics address and the login token not printed"
    );
    // Without the token, no patient data.
    let (status, body) = get(&http, "no-such-token", "/api/v1/beds/bed-01/latest");
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("b01-mon"), "{body}");
    // Keep reading stdout so the demo never blocks on a full pipe.
    let drain = std::thread::spawn(move || lines.for_each(drop));

    // "Within seconds": 60 s is the timeout of a slow machine, not the behaviour.
    let deadline = Instant::now() + Duration::from_secs(60);
    let with_data = |bed: &str, at_least: usize| loop {
        let body = get_ok(&http, &token, &format!("/api/v1/beds/{bed}/latest"));
        if body["latest"]
            .as_array()
            .is_some_and(|a| a.len() >= at_least)
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "{bed} has no data after 60 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let latest = with_data("bed-01", 5);
    assert!(
        latest["latest"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["device_id"] == "b01-mon"),
        "{latest}"
    );
    // Another bed of the ward has data, and the metrics endpoint counts what was stored.
    with_data("bed-30", 1);
    let (status, text) = get(&metrics, "", "/metrics");
    assert_eq!(status, 200, "{text}");
    let stored: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("wardhub_observations_stored_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no wardhub_observations_stored_total:\n{text}"));
    assert!(stored > 0.0, "{stored}");

    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // It stops on SIGINT; 60 s is a timeout, not a speed the test asks for.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "demo exit status");
    drain.join().unwrap();
}
