//! Issue #7: the nurse dashboard in a real browser.
//!
//! A hub with four monitored beds, fed over MQTT once a second, and `node --test
//! tests/browser/dashboard.test.mjs` driving Debian's headless Chromium through
//! playwright-core. The node test steers the world through a line-based control socket
//! (`set <device> <metric> <value>`, `status <device> <json>`, `stop`, `start`): it raises
//! alarms by changing what a monitor sends, and stops and restarts the hub (on the same
//! ports) to see the page lose and regain its live state. Screenshots go to
//! `tests/browser/artifacts/`.
//!
//! Missing Chromium or `node_modules` is a failure, not a skip (`tests/run` installs both);
//! `WARDHUB_SKIP_BROWSER=1` skips on purpose.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use wardhub_e2e::{TestServer, ADMIN_TOKEN, NURSE_TOKEN, VIEWER_TOKEN};

const OVERLAY: &str = r#"
[hub]
ward = "icu-3"

# Alarms to people (the default chains): the roster view, and "Alarms to people" on the
# alarm load.
[dissemination]
enabled = true

[[devices]]
id = "b1-mon"
bed = "bed-01"
kind = "patient_monitor"
[[devices]]
id = "b2-mon"
bed = "bed-02"
kind = "patient_monitor"
[[devices]]
id = "b3-mon"
bed = "bed-03"
kind = "patient_monitor"
[[devices]]
id = "b4-mon"
bed = "bed-04"
kind = "patient_monitor"
[[devices]]
id = "b4-pump"
bed = "bed-04"
kind = "infusion_pump"

# An unacknowledged high alarm escalates after 2 s.
[alarms.escalation]
high = "2s"

# SpO2 below 85 is high at once; HR above 120 for 1 s is medium.
[[alarms.rules]]
metric = "spo2"
low = 90
priority = "medium"
delay = "1s"
extra_low = 85
extra_priority = "high"
extra_delay = "0s"
hysteresis = 1
[[alarms.rules]]
metric = "hr"
low = 50
high = 120
priority = "medium"
delay = "1s"
"#;

const MONITORS: [&str; 4] = ["b1-mon", "b2-mon", "b3-mon", "b4-mon"];

/// What each monitor sends every second; the control socket changes it.
type Values = Arc<Mutex<BTreeMap<String, BTreeMap<String, f64>>>>;

fn normal_values() -> Values {
    let mut all = BTreeMap::new();
    for (i, id) in MONITORS.iter().enumerate() {
        let v: BTreeMap<String, f64> = [
            ("hr", 72.0 + i as f64),
            ("spo2", 97.0),
            ("rr", 14.0),
            ("temp", 36.8),
            ("nibp_sys", 118.0),
            ("nibp_dia", 76.0),
            ("nibp_mean", 90.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        all.insert((*id).to_owned(), v);
    }
    Arc::new(Mutex::new(all))
}

/// One MQTT client per device, reconnecting on its own (the hub is stopped and restarted
/// under it), publishing each monitor's values once a second.
struct Feeder {
    clients: BTreeMap<String, AsyncClient>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Feeder {
    fn start(mqtt: SocketAddr, values: Values) -> Feeder {
        let mut clients = BTreeMap::new();
        let mut tasks = Vec::new();
        for id in MONITORS.iter().chain(&["b4-pump"]) {
            let mut opts = MqttOptions::new(*id, mqtt.ip().to_string(), mqtt.port());
            opts.set_keep_alive(Duration::from_secs(5));
            opts.set_max_packet_size(1 << 20, 1 << 20);
            let (client, mut eventloop) = AsyncClient::new(opts, 10);
            tasks.push(tokio::spawn(async move {
                loop {
                    if eventloop.poll().await.is_err() {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
            }));
            clients.insert((*id).to_owned(), client);
        }
        let publishers = clients.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let docs: Vec<(String, String)> = {
                    let values = values.lock().unwrap();
                    values
                        .iter()
                        .map(|(id, v)| {
                            let obs: Vec<serde_json::Value> = v
                                .iter()
                                .map(|(m, x)| serde_json::json!({ "metric": m, "value": x }))
                                .collect();
                            (
                                id.clone(),
                                serde_json::json!({ "observations": obs }).to_string(),
                            )
                        })
                        .collect()
                };
                for (id, doc) in docs {
                    // Dropped while the hub is down: the page must show it is not live.
                    let _ = publishers[&id].try_publish(
                        format!("wardhub/v1/devices/{id}/obs"),
                        QoS::AtMostOnce,
                        false,
                        doc,
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
        Feeder { clients, tasks }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A day of bed-01's history (one value a minute, every 5 s in the last hour, NIBP every
/// 15 min), kept inside the limits, so that the trend charts have something to draw.
async fn backfill(client: &AsyncClient, device: &str, now: i64) {
    let mut obs = Vec::new();
    let start = now - 24 * 3_600_000;
    let mut t = start;
    while t < now - 10_000 {
        let m = (t - start) as f64 / 60_000.0;
        let wave = |period: f64| (m / period * std::f64::consts::TAU).sin();
        for (metric, v) in [
            ("hr", 78.0 + 18.0 * wave(240.0) + 4.0 * wave(17.0)),
            ("spo2", (95.0 + 2.0 * wave(300.0) + wave(23.0)).min(100.0)),
            ("rr", 16.0 + 5.0 * wave(180.0)),
            ("temp", 37.0 + 0.6 * wave(600.0)),
        ] {
            obs.push(serde_json::json!({ "metric": metric, "value": (v * 10.0).round() / 10.0, "time": t }));
        }
        if (t - start) % 900_000 == 0 {
            for (metric, v) in [
                ("nibp_sys", 125.0 + 20.0 * wave(360.0)),
                ("nibp_dia", 78.0 + 8.0 * wave(360.0)),
                ("nibp_mean", 94.0 + 12.0 * wave(360.0)),
            ] {
                obs.push(serde_json::json!({ "metric": metric, "value": v.round(), "time": t }));
            }
        }
        t += if now - t > 3_600_000 { 60_000 } else { 5_000 };
    }
    for chunk in obs.chunks(200) {
        let doc = serde_json::json!({ "observations": chunk }).to_string();
        client
            .publish(
                format!("wardhub/v1/devices/{device}/obs"),
                QoS::AtLeastOnce,
                false,
                doc,
            )
            .await
            .expect("backfill queued");
    }
}

/// Carries out one control command.
async fn command(
    line: &str,
    server: &mut TestServer,
    values: &Values,
    feeder: &Feeder,
) -> Result<(), String> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("set") => {
            let (Some(dev), Some(metric), Some(v)) = (words.next(), words.next(), words.next())
            else {
                return Err("usage: set <device> <metric> <value>".into());
            };
            let v: f64 = v.parse().map_err(|_| format!("bad value {v}"))?;
            let mut values = values.lock().unwrap();
            let dev = values
                .get_mut(dev)
                .ok_or_else(|| format!("unknown device {dev}"))?;
            dev.insert(metric.to_owned(), v);
            Ok(())
        }
        Some("status") => {
            let dev = words.next().ok_or("usage: status <device> <json>")?;
            let json: String = words.collect::<Vec<_>>().join(" ");
            let client = feeder
                .clients
                .get(dev)
                .ok_or_else(|| format!("unknown device {dev}"))?;
            client
                .publish(
                    format!("wardhub/v1/devices/{dev}/status"),
                    QoS::AtLeastOnce,
                    false,
                    json,
                )
                .await
                .map_err(|e| e.to_string())
        }
        Some("stop") => {
            server.stop().await;
            Ok(())
        }
        Some("start") => {
            server.restart().await;
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools(dir: &std::path::Path, chromium: &str) -> Option<String> {
    if !std::path::Path::new(chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Some(format!("no {}/node_modules (npm ci there)", dir.display()));
    }
    match std::process::Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("no node on PATH (apt-get install nodejs)".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurse_dashboard_in_headless_chromium() {
    if wardhub_e2e::skipped("WARDHUB_SKIP_BROWSER", "the browser test") {
        return;
    }
    let dir = browser_dir();
    let chromium = std::env::var("WARDHUB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if let Some(why) = missing_tools(&dir, &chromium) {
        panic!("the browser test cannot run: {why}. tests/run installs what it needs; WARDHUB_SKIP_BROWSER=1 skips it");
    }
    std::fs::create_dir_all(dir.join("artifacts")).expect("artifacts directory");

    let mut server = TestServer::start_with(&[], OVERLAY).await;
    // The restarted hub must be where the page and the devices look for it.
    server.config.http.listen = server.http();
    server.config.mqtt.listen = server.mqtt();
    let values = normal_values();
    let feeder = Feeder::start(server.mqtt(), values.clone());
    backfill(&feeder.clients["b1-mon"], "b1-mon", wardhub_e2e::now_ms()).await;
    let filled = server
        .eventually(Duration::from_secs(30), || async {
            let t = server.json("/api/v1/beds/bed-01/trends?range=24h").await;
            t["series"]["hr"]["points"].as_array().map_or(0, Vec::len) > 1000
        })
        .await;
    assert!(filled, "bed-01's backfilled day did not reach the store");
    let control = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("control socket");

    let mut child = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "dashboard.test.mjs"])
        .current_dir(&dir)
        .env("WARDHUB_URL", format!("http://{}", server.http()))
        .env("WARDHUB_MQTT", server.mqtt().to_string())
        .env("WARDHUB_CONTROL", control.local_addr().unwrap().to_string())
        .env("WARDHUB_NURSE_TOKEN", NURSE_TOKEN)
        .env("WARDHUB_VIEWER_TOKEN", VIEWER_TOKEN)
        .env("WARDHUB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WARDHUB_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s).await;
        s
    });
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s).await;
        s
    });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let status = loop {
        tokio::select! {
            s = child.wait() => break s.expect("node exit status"),
            conn = control.accept() => {
                let (stream, _) = conn.expect("control connection");
                let (r, mut w) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(r).read_line(&mut line).await.is_err() {
                    continue;
                }
                let reply = match command(line.trim(), &mut server, &values, &feeder).await {
                    Ok(()) => "ok\n".to_owned(),
                    Err(e) => format!("error {e}\n"),
                };
                let _ = w.write_all(reply.as_bytes()).await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = child.kill().await;
                panic!("the browser test did not finish in 240 s");
            }
        }
    };
    let stdout = out_task.await.unwrap_or_default();
    let stderr = err_task.await.unwrap_or_default();
    let _ = std::fs::write(
        dir.join("artifacts/node-output.txt"),
        format!("{stdout}\n{stderr}"),
    );
    assert!(
        status.success(),
        "browser tests failed ({status}):\n{stdout}\n{stderr}"
    );
    // node --test exits 0 with no tests found too: make sure they ran.
    assert!(
        stdout.contains("# pass") || stdout.contains("ℹ pass"),
        "no test ran:\n{stdout}"
    );
    assert!(!stdout.contains("ℹ pass 0"), "no test passed:\n{stdout}");
}
