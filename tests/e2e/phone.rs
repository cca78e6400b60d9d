//! The phone page (`/m`, a nurse's own alarms) in a real browser, with the escalation chain
//! behind it.
//!
//! A hub with `[dissemination] enabled = true` (the default chains: high to the primary
//! nurse at once, the buddy at 30 s, the charge nurse at 60 s, the ward at 120 s), a roster
//! (bed-01: the nurse and no buddy; bed-02: the nurse and a buddy; a charge nurse), two
//! monitors fed over MQTT once a second, and `node --test tests/browser/phone.test.mjs`
//! driving Debian's headless Chromium through playwright-core at 390×844 beside a ward
//! dashboard at 1920×1080. The node side steers through the control socket of
//! tests/e2e/browser.rs (`set <device> <metric> <value>`, `stop`, `start`): SpO₂ 82 raises
//! a high desaturation after the rule's 3 s. Here, afterwards: what went out on the
//! per-person MQTT topics agrees with what the pages showed.
//!
//! Missing Chromium or `node_modules` is a failure, not a skip; `WARDHUB_SKIP_BROWSER=1`
//! skips on purpose.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use wardhub_e2e::{
    Connect, Device, TestServer, ADMIN_TOKEN, BIOMED_TOKEN, NURSE_TOKEN, VIEWER_TOKEN,
};

const NURSE: &str = "nurse-ana";
/// bed-02's buddy.
const BUDDY: &str = "biomed-ben";
const CHARGE: &str = "admin-ada";

const OVERLAY: &str = r#"
[hub]
ward = "icu-3"

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

# SpO2 below 85 for 3 s is high; below 90 for 15 s medium.
[[alarms.rules]]
metric = "spo2"
low = 90
priority = "medium"
delay = "15s"
extra_low = 85
extra_priority = "high"
extra_delay = "3s"
hysteresis = 1
"#;

const MONITORS: [&str; 2] = ["b1-mon", "b2-mon"];

/// What each monitor sends every second; the control socket changes it.
type Values = Arc<Mutex<BTreeMap<String, BTreeMap<String, f64>>>>;

fn normal_values() -> Values {
    let all = MONITORS
        .iter()
        .map(|id| {
            let v = [("hr", 76.0), ("spo2", 97.0), ("rr", 14.0)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            ((*id).to_owned(), v)
        })
        .collect();
    Arc::new(Mutex::new(all))
}

/// One monitor: connects (again, after a hub restart), publishes its values once a second
/// at QoS 1 until the connection goes.
async fn feed(mqtt: SocketAddr, id: &'static str, values: Values) {
    loop {
        let (outcome, mut dev) = Device::try_connect(wardhub_e2e::mqtt::options(mqtt, id)).await;
        if outcome == Connect::Accepted {
            loop {
                let doc = {
                    let values = values.lock().unwrap();
                    let obs: Vec<serde_json::Value> = values[id]
                        .iter()
                        .map(|(m, x)| json!({ "metric": m, "value": x }))
                        .collect();
                    json!({ "observations": obs }).to_string()
                };
                if !dev
                    .try_publish(&format!("wardhub/v1/devices/{id}/obs"), doc)
                    .await
                {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Carries out one control command.
async fn command(line: &str, server: &mut TestServer, values: &Values) -> Result<(), String> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("set") => {
            let (Some(dev), Some(metric), Some(v)) = (words.next(), words.next(), words.next())
            else {
                return Err("usage: set <device> <metric> <value>".into());
            };
            let v: f64 = v.parse().map_err(|_| format!("bad value {v}"))?;
            let mut values = values.lock().unwrap();
            values
                .get_mut(dev)
                .ok_or_else(|| format!("unknown device {dev}"))?
                .insert(metric.to_owned(), v);
            Ok(())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_page_accept_and_pass_on_in_headless_chromium() {
    if wardhub_e2e::skipped("WARDHUB_SKIP_BROWSER", "the phone page's browser test") {
        return;
    }
    let dir = browser_dir();
    let chromium = std::env::var("WARDHUB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the browser test cannot run: no Chromium at {chromium} (tests/run installs it; WARDHUB_SKIP_BROWSER=1 skips)"
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser test cannot run: no {}/node_modules (npm ci there)",
        dir.display()
    );
    std::fs::create_dir_all(dir.join("artifacts")).expect("artifacts directory");

    let mut server = TestServer::start_with(&[], OVERLAY).await;
    // The restarted hub must be where the pages and the monitors look for it.
    server.config.http.listen = server.http();
    server.config.mqtt.listen = server.mqtt();

    // The shift: the nurse has both beds; bed-01 has no buddy (the charge nurse stands in).
    let roster = json!({
        "beds": {
            "bed-01": { "primary": NURSE, "buddy": null },
            "bed-02": { "primary": NURSE, "buddy": BUDDY },
        },
        "charge": CHARGE,
        "team": [],
    });
    let (s, body) = server
        .send(
            Method::PUT,
            "/api/v1/roster",
            Some(ADMIN_TOKEN),
            Some(roster.clone()),
        )
        .await;
    assert_eq!(s, 200, "PUT /api/v1/roster: {body}");
    assert_eq!(body["roster"], roster, "the roster as stored");
    let (s, _) = server
        .send(
            Method::PUT,
            "/api/v1/roster",
            Some(NURSE_TOKEN),
            Some(roster),
        )
        .await;
    assert_eq!(s, 403, "the roster is the admin's");

    // Everything sent to people, on their MQTT topics.
    let mut pager = Device::pager(server.mqtt()).await;
    assert!(pager.subscribe("wardhub/v1/staff/#").await);

    let values = normal_values();
    let feeders: Vec<_> = MONITORS
        .iter()
        .map(|id| tokio::spawn(feed(server.mqtt(), id, values.clone())))
        .collect();
    let fed = server
        .eventually(Duration::from_secs(15), || async {
            let w = server.json("/api/v1/ward").await;
            w["beds"].as_array().is_some_and(|beds| {
                beds.iter()
                    .filter(|b| b["latest"]["spo2"]["value"] == 97.0)
                    .count()
                    == 2
            })
        })
        .await;
    assert!(fed, "both monitors' values reached the ward view");

    let control = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("control socket");
    let mut child = tokio::process::Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "phone.test.mjs",
        ])
        .current_dir(&dir)
        .env("WARDHUB_URL", format!("http://{}", server.http()))
        .env("WARDHUB_CONTROL", control.local_addr().unwrap().to_string())
        .env("WARDHUB_NURSE_TOKEN", NURSE_TOKEN)
        .env("WARDHUB_NURSE_NAME", NURSE)
        .env("WARDHUB_BUDDY_TOKEN", BIOMED_TOKEN)
        .env("WARDHUB_BUDDY_NAME", BUDDY)
        .env("WARDHUB_CHARGE_NAME", CHARGE)
        .env("WARDHUB_VIEWER_TOKEN", VIEWER_TOKEN)
        .env("WARDHUB_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (apt-get install nodejs)");
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
                let reply = match command(line.trim(), &mut server, &values).await {
                    Ok(()) => "ok\n".to_owned(),
                    Err(e) => format!("error {e}\n"),
                };
                let _ = w.write_all(reply.as_bytes()).await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = child.kill().await;
                panic!("the phone page's browser test did not finish in 240 s");
            }
        }
    };
    for f in &feeders {
        f.abort();
    }
    let stdout = out_task.await.unwrap_or_default();
    let stderr = err_task.await.unwrap_or_default();
    let _ = std::fs::write(
        dir.join("artifacts/phone-node-output.txt"),
        format!("{stdout}\n{stderr}"),
    );
    assert!(
        status.success(),
        "phone browser tests failed ({status}):\n{stdout}\n{stderr}"
    );
    // node --test exits 0 with no tests found too: make sure they ran.
    assert!(
        stdout.contains("ℹ pass") && !stdout.contains("ℹ pass 0") && stdout.contains("ℹ fail 0"),
        "no test ran or passed:\n{stdout}"
    );

    // What went out on MQTT (up to the restart, which ends the pager's connection): the same
    // story as the pages told.
    let mut sent = Vec::new();
    while let Some(v) = pager
        .next_json(Duration::from_secs(1), |v| {
            v["alarm"]["kind"] == "physiological"
        })
        .await
    {
        sent.push(v);
    }
    let to = |user: &str, bed: &str| -> Vec<&serde_json::Value> {
        sent.iter()
            .filter(|v| v["user"] == user && v["alarm"]["bed"] == bed)
            .collect()
    };
    let first = to(NURSE, "bed-01");
    assert!(
        !first.is_empty() && first.iter().all(|v| v["target"] == "primary"),
        "bed-01's alarm went to the nurse as primary: {sent:?}"
    );
    assert!(
        to(CHARGE, "bed-01").is_empty(),
        "accepted: bed-01's alarm never went on to the charge nurse: {sent:?}"
    );
    let passed = to(BUDDY, "bed-02");
    assert!(
        passed
            .iter()
            .any(|v| v["target"] == "buddy" && v["reminder"] == false),
        "passed on: bed-02's alarm went to the buddy: {sent:?}"
    );
    assert!(
        to(CHARGE, "bed-02").is_empty(),
        "bed-02's alarm was acknowledged before the charge nurse's turn: {sent:?}"
    );
}
