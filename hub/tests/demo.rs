//! Issue 6: `wardhub demo` starts a hub with a simulated ward, serves data within seconds, and
//! stops on SIGINT with exit 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// GET `path` from `addr` and parse the body as JSON (HTTP/1.1, one request per connection).
fn get_json(addr: &str, token: &str, path: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

#[test]
fn demo_serves_a_living_ward_and_stops_on_sigint() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wardhub"))
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
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut mqtt, mut http, mut token) = (String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The demo makes a nurse login and prints its token.
        if let Some(rest) = line.trim().strip_prefix("login      nurse token ") {
            token = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if let Some(a) = line.trim().strip_prefix("MQTT       mqtt://") {
            mqtt = a.to_owned();
        }
        if let Some(a) = line.trim().strip_prefix("HTTP API   http://") {
            http = a.trim_end_matches("/api/v1").to_owned();
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    assert!(
        !mqtt.is_empty() && !http.is_empty() && token.len() == 64,
        "addresses and the login token not printed"
    );
    // Without the token, no patient data.
    assert!(get_json(&http, "no-such-token", "/api/v1/beds/bed-01/latest").is_none());
    // Keep reading stdout so the demo never blocks on a full pipe.
    let drain = std::thread::spawn(move || lines.for_each(drop));

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut latest = None;
    while Instant::now() < deadline {
        if let Some(body) = get_json(&http, &token, "/api/v1/beds/bed-01/latest") {
            if body["latest"].as_array().is_some_and(|a| a.len() >= 5) {
                latest = Some(body);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let latest = latest.expect("bed-01 has data within 20 s");
    assert!(latest["latest"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["device_id"] == "b01-mon"));
    // Another bed of the ward, and the metrics endpoint.
    assert!(get_json(&http, &token, "/api/v1/beds/bed-30/latest").is_some());

    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t0 = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "demo exit status");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        t0.elapsed()
    );
    drain.join().unwrap();
}
