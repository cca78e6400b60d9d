//! The `wardhub` binary as a user runs it: exit codes, messages, signals.

use std::process::{Child, Command, Stdio};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use crate::common::{get_json, now_ms, Banner};

fn wardhub() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wardhub"));
    c.env_remove("WARDHUB_CONFIG")
        .env_remove("WARDHUB_DATA_DIR")
        .env_remove("WARDHUB_MQTT_LISTEN")
        .env_remove("WARDHUB_HTTP_LISTEN")
        // Tests never use fixed ports: the HL7 listener too binds an ephemeral one.
        .env("WARDHUB_HL7_LISTEN", "127.0.0.1:0")
        .env("WARDHUB_METRICS_LISTEN", "127.0.0.1:0");
    c
}

#[test]
fn generate_config_prints_the_embedded_default() {
    let out = wardhub().arg("generate-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[store]") && text.contains("raw_retention"));
    // What it prints is a valid config file.
    wardhub::config::Config::merged(&text, "generated").unwrap();
}

#[test]
fn bad_config_exits_78_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(&file, "[store]\nflush_intervall = \"1s\"\n").unwrap();
    let out = wardhub()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flush_intervall") && err.contains("hub.toml"),
        "{err}"
    );
    let out = wardhub()
        .args(["serve", "--config", "/nonexistent/hub.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

/// `wardhub serve` on an ephemeral HTTP port, MQTT on `mqtt`, with `args`, its data in
/// `data`, run to its exit.
fn serve(data: &std::path::Path, mqtt: &str, args: &[&str]) -> std::process::Output {
    wardhub()
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            mqtt,
        ])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn taken_port_exits_69_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = serve(dir.path(), &addr, &[]);
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MQTT") && err.contains(&addr), "{err}");
}

/// Issue 8: the metrics listener is bound with the others; a taken port stops start-up.
#[test]
fn taken_metrics_port_exits_69_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = serve(dir.path(), "127.0.0.1:0", &["--metrics-listen", &addr]);
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metrics") && err.contains(&addr), "{err}");
}

#[test]
fn unusable_data_dir_exits_69() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = serve(&file, "127.0.0.1:0", &[]);
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data directory"), "{err}");
}

const VIEWER: &str = "cli-test-viewer-token-0123456789";

struct Running {
    child: Child,
    mqtt: String,
    http: String,
}

fn start(config: &std::path::Path, data: &std::path::Path) -> Running {
    let mut child = wardhub()
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("WARDHUB_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (banner, _) = Banner::of(child.stdout.take().unwrap());
    let (mqtt, http) = (banner.mqtt, banner.http);
    Running { child, mqtt, http }
}

fn sigterm(child: &mut Child) -> Option<i32> {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    child.wait().unwrap().code()
}

/// SIGTERM stops accepting, drains and flushes, exits 0; acknowledged data is there after a
/// restart.
#[test]
fn sigterm_drains_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    // Reads need a login: a viewer whose token is VIEWER.
    std::fs::write(
        &config,
        format!(
            "[[devices]]\nid = \"mon-s\"\nbed = \"bed-01\"\n\n[[users]]\nname = \"wall\"\nrole = \"viewer\"\ntoken_sha256 = \"{}\"\n",
            wardhub::auth::hex(&wardhub::auth::sha256(VIEWER.as_bytes()))
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut hub = start(&config, &data);

    let (host, port) = hub.mqtt.rsplit_once(':').unwrap();
    let opts = MqttOptions::new("mon-s", host, port.parse().unwrap());
    let (client, mut conn) = Client::new(opts, 1000);
    let t0 = 1_700_000_000_000i64.max(now_ms() - 3_600_000);
    let n = 300;
    for k in 0..n {
        client
            .publish(
                "wardhub/v1/devices/mon-s/obs",
                QoS::AtLeastOnce,
                false,
                format!(r#"{{"metric":"spo2","value":97,"time":{}}}"#, t0 + k),
            )
            .unwrap();
    }
    let mut acks = 0;
    for ev in conn.iter() {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = ev {
            acks += 1;
            if acks == n {
                break;
            }
        }
    }
    // Signal at once: everything acknowledged must still be stored.
    assert_eq!(sigterm(&mut hub.child), Some(0));

    let hub2 = start(&config, &data);
    let path = format!(
        "/api/v1/devices/mon-s/observations?from={t0}&to={}&resolution=raw",
        t0 + n
    );
    let (status, body) = get_json(&hub2.http, VIEWER, &path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["observations"].as_array().map(Vec::len),
        Some(n as usize),
        "{body}"
    );
    let mut child = hub2.child;
    assert_eq!(sigterm(&mut child), Some(0));
}
