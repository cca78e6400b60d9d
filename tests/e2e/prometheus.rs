//! Issue 8: metrics, dashboards and deployment for hospital IT, checked with the real tools:
//! Debian's `promtool` on the hub's `/metrics` under load and on the shipped alert rules and
//! scrape config, a real Prometheus server scraping a loaded hub, the Grafana dashboards
//! type-checked against `@grafana/schema`, and every metric name the dashboards and rules use
//! cross-checked against what the hub really exports.
//!
//! These tests fail when `promtool` or `prometheus` is missing (tests/run installs Debian's
//! `prometheus`), unless `WARDHUB_SKIP_PROMETHEUS=1`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use wardhub_e2e::{free_port, now_ms, Device, TestServer, NURSE_TOKEN};

/// SpO2 below 85 raises a high alarm at once (so the alarm metrics have data quickly).
const RULES: &str = r#"
[hub]
ward = "icu-8"
[[alarms.rules]]
metric = "spo2"
low = 90
priority = "medium"
delay = "10s"
extra_low = 85
extra_priority = "high"
extra_delay = "0s"
hysteresis = 1
"#;

/// The monitors that publish all the time, and one more that desaturates and sends garbage.
const DEVICES: [(&str, &str); 5] = [
    ("mon-p1", "bed-01"),
    ("mon-p2", "bed-02"),
    ("mon-p3", "bed-03"),
    ("mon-p4", "bed-04"),
    ("mon-a5", "bed-05"),
];
const FEEDERS: usize = 4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Whether the Prometheus tools may be missing (never by default).
fn skip_prometheus() -> bool {
    wardhub_e2e::skipped("WARDHUB_SKIP_PROMETHEUS", "the Prometheus tools' checks")
}

/// The path of a Debian `prometheus` package tool; `None` only when skipping is allowed.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if skip_prometheus() => {
            eprintln!("{name} not found; skipped (WARDHUB_SKIP_PROMETHEUS=1)");
            None
        }
        None => panic!(
            "{name} not found: install Debian's prometheus package (tests/run does), \
             or set WARDHUB_SKIP_PROMETHEUS=1 to skip"
        ),
    }
}

/// A hub with four monitors publishing at 10 Hz each until the token fires, one high alarm
/// raised and acknowledged, a rejected document and a refused connection: every metric family
/// has samples.
struct Loaded {
    server: TestServer,
    stop: Arc<AtomicBool>,
    feeders: Vec<tokio::task::JoinHandle<()>>,
}

impl Loaded {
    async fn start() -> Loaded {
        let server = TestServer::start_with(&DEVICES, RULES).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut feeders = Vec::new();
        for (id, _) in &DEVICES[..FEEDERS] {
            let id = *id;
            let mut dev = Device::connect(server.mqtt(), id).await;
            let stop = stop.clone();
            feeders.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let doc = json!({"observations": [
                        {"metric": "hr", "value": 72, "time": now_ms()},
                        {"metric": "spo2", "value": 97, "time": now_ms()},
                    ]});
                    dev.publish_obs(id, &doc.to_string()).await;
                }
            }));
        }
        let loaded = Loaded {
            server,
            stop,
            feeders,
        };
        let mut dev = Device::connect(loaded.server.mqtt(), "mon-a5").await;
        loaded.alarm_and_acknowledge(&mut dev).await;
        loaded.bad_input(&mut dev).await;
        // Everything above is counted once the pipeline has stored some batches.
        let s = &loaded.server;
        assert!(
            s.eventually(Duration::from_secs(10), || async {
                s.metric("wardhub_observations_stored_total").await > 100.0
            })
            .await,
            "observations are stored"
        );
        loaded
    }

    /// A deep desaturation on bed-05: a high alarm, acknowledged by a nurse.
    async fn alarm_and_acknowledge(&self, dev: &mut Device) {
        let s = &self.server;
        dev.publish_obs(
            "mon-a5",
            &json!({"metric": "spo2", "value": 80, "time": now_ms()}).to_string(),
        )
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let id = loop {
            let body = s.json("/api/v1/alarms?state=active&bed=bed-05").await;
            if let Some(id) = body["alarms"][0]["id"].as_str() {
                break id.to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the desaturation is raised"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (status, body) = s
            .send(
                Method::POST,
                &format!("/api/v1/alarms/{id}/ack"),
                Some(NURSE_TOKEN),
                Some(json!({"reason": "actionable"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// A document that is not JSON (a reject) and a device that is not registered (refused).
    async fn bad_input(&self, dev: &mut Device) {
        let s = &self.server;
        dev.publish("wardhub/v1/devices/mon-a5/obs", "not json")
            .await;
        assert!(
            s.eventually(Duration::from_secs(10), || async {
                s.rejects("mqtt_json", "malformed").await >= 1.0
            })
            .await,
            "the document is rejected and counted"
        );
        let (refused, _) =
            Device::try_connect(wardhub_e2e::mqtt::options(s.mqtt(), "intruder-1")).await;
        assert!(
            matches!(refused, wardhub_e2e::Connect::Refused(_)),
            "{refused:?}"
        );
        // Counted just after the refusing CONNACK goes out: the CONNACK can win the race to
        // this check (CI: "the unknown device is refused and counted" failed once).
        assert!(
            s.eventually(Duration::from_secs(10), || async {
                s.metric(r#"wardhub_mqtt_refused_total{reason="auth"}"#)
                    .await
                    >= 1.0
            })
            .await,
            "the unknown device is refused and counted"
        );
    }

    async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for f in self.feeders.drain(..) {
            let _ = f.await;
        }
        self.server.stop().await;
    }
}

/// The metric names a `/metrics` text offers (histograms also as `_bucket`, `_sum`, `_count`).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        // The family name itself (prose names histograms so), and for histograms the
        // series PromQL queries.
        names.insert(name.to_owned());
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// Every `wardhub_…` and `process_…` metric name in `text`.
fn used_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for prefix in ["wardhub_", "process_"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(prefix) {
            let start = from + at;
            let end = text[start..]
                .find(|c: char| !ident(c))
                .map_or(text.len(), |e| start + e);
            let preceded = text[..start].chars().next_back().is_some_and(ident);
            if !preceded {
                names.insert(text[start..end].to_owned());
            }
            from = end;
        }
    }
    names
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_metrics_under_load_pass_promtool_check_metrics() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let loaded = Loaded::start().await;
    let text = loaded.server.metrics().await;
    loaded.stop().await;
    // Histograms with data, build info, process metrics, devices by kind.
    for series in [
        "wardhub_store_write_seconds_count",
        "wardhub_ingest_latency_seconds_count",
        "wardhub_alarm_time_to_acknowledge_seconds_count",
        "wardhub_alarm_pipeline_latency_seconds_count",
    ] {
        let n: f64 = text
            .lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(n > 0.0, "{series} has no observations:\n{text}");
    }
    assert!(text.contains("wardhub_build_info{version=\""), "{text}");
    assert!(text.contains("process_resident_memory_bytes "), "{text}");
    assert!(
        text.contains("wardhub_devices_registered{kind=\"unspecified\"} 5"),
        "{text}"
    );
    assert!(
        text.contains(
            "wardhub_bed_alarms_raised_total{bed=\"bed-05\",priority=\"high\",ward=\"icu-8\"} 1"
        ),
        "{text}"
    );
    // No device id and nothing about a patient in any label.
    for (id, _) in DEVICES {
        assert!(!text.contains(id), "device id {id} in the metrics");
    }

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write metrics");
    }
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let dir = repo().join("deploy/prometheus");
    run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(dir.join("alerts.yml")));
    // Also checks the rule files the config names.
    run(Command::new(&promtool)
        .args(["check", "config"])
        .arg(dir.join("prometheus.yml")));
    // Unit tests of the alerts: each fires on its condition and stays quiet otherwise.
    run(Command::new(&promtool)
        .args(["test", "rules"])
        .arg(dir.join("alerts_test.yml")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alert_rules_use_only_exported_metrics() {
    let loaded = Loaded::start().await;
    let mut exported = exported_names(&loaded.server.metrics().await);
    loaded.stop().await;
    // The uplink's, the EMR export's and the dissemination's series exist only on a hub with
    // them on (their alert rules then mean something): one whose cluster and interface engine
    // are not there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut uplinked = TestServer::start_with(
        &[],
        &format!(
            "[hub]\nward = \"icu-3\"\n[uplink]\nenabled = true\nsite = \"st-mary\"\n\
             [uplink.cluster]\nservers = [\"mqtt://{dead}\"]\n\
             [emr.hl7]\nconnect = \"{dead}\"\n[dissemination]\nenabled = true\n"
        ),
    )
    .await;
    exported.extend(exported_names(&uplinked.metrics().await));
    uplinked.stop().await;

    let mut checked = Vec::new();
    let grafana = repo().join("dashboards/grafana/dashboards");
    let dashboards = files_with_ext(&grafana, "json");
    assert!(dashboards.len() >= 2, "at least two dashboards");
    let mut sources = dashboards.clone();
    sources.push(repo().join("deploy/prometheus/alerts.yml"));
    for file in &sources {
        let text = std::fs::read_to_string(file).expect("readable");
        let used = used_names(&text);
        assert!(used.len() >= 3, "{} uses almost no metrics", file.display());
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{} uses metrics the hub does not export: {unknown:?}",
            file.display()
        );
        checked.push((file.clone(), used.len()));
    }
    // Dashboards are importable anywhere: one Prometheus datasource input, used by every panel.
    for file in &dashboards {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).expect("valid JSON");
        let inputs = d["__inputs"].as_array().expect("__inputs");
        assert!(
            inputs
                .iter()
                .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
            "{}: no DS_PROMETHEUS input",
            file.display()
        );
        let mut panels: Vec<&serde_json::Value> = Vec::new();
        for p in d["panels"].as_array().expect("panels") {
            panels.push(p);
            if let Some(inner) = p["panels"].as_array() {
                panels.extend(inner);
            }
        }
        for p in panels
            .iter()
            .filter(|p| p["type"] != "row" && p["type"] != "text")
        {
            assert_eq!(
                p["datasource"]["uid"],
                "${DS_PROMETHEUS}",
                "{}: panel {} does not use the DS_PROMETHEUS input",
                file.display(),
                p["title"]
            );
            assert!(
                p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{}: panel {} has no query",
                file.display(),
                p["title"]
            );
        }
    }
    eprintln!("checked metric names: {checked:?}");
}

#[test]
fn grafana_dashboards_type_check_against_grafana_schema() {
    let dir = repo().join("dashboards/grafana/check");
    // Installed by tests/run before cargo test: a test does not reach for the network.
    assert!(
        dir.join("node_modules/.bin/tsc").exists(),
        "no {}/node_modules: run `npm ci` there (tests/run does)",
        dir.display()
    );
    run(Command::new("npm")
        .args(["run", "--silent", "check"])
        .current_dir(&dir));
}

/// A Prometheus server that is killed when dropped.
struct PrometheusServer {
    child: Child,
    addr: String,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrometheusServer {
    async fn query(&self, promql: &str) -> Option<Vec<serde_json::Value>> {
        let resp = reqwest::Client::new()
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = resp.json().await.ok()?;
        body["data"]["result"].as_array().cloned()
    }

    /// The value of a query that returns one sample.
    async fn scalar(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql).await?;
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_a_hub_under_load() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let loaded = Loaded::start().await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("prometheus.yml");
    // The shipped alert rules are loaded too: they must evaluate without errors on real data.
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: wardhub\n    static_configs:\n      - targets: ['{target}']\n",
            rules = repo().join("deploy/prometheus/alerts.yml").display(),
            target = loaded.server.metrics_addr(),
        ),
    )
    .expect("write config");
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(tmp.path().join("prometheus.log")).expect("log file"),
        ))
        .spawn()
        .expect("prometheus starts");
    let prom = PrometheusServer { child, addr };

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let rate = loop {
        let rate = prom
            .scalar("sum(rate(wardhub_observations_stored_total{job=\"wardhub\"}[10s]))")
            .await;
        let registered = prom.scalar("sum(wardhub_devices_registered)").await;
        let online = prom.scalar("sum(wardhub_devices_online)").await;
        if rate.is_some_and(|r| r > 5.0)
            && registered == Some(DEVICES.len() as f64)
            && online.is_some_and(|o| o > 0.0)
        {
            break rate;
        }
        if tokio::time::Instant::now() > deadline {
            let log =
                std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default();
            panic!(
                "Prometheus did not see the hub: ingest rate {rate:?}, devices registered \
                 {registered:?}, online {online:?}\n{log}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Four devices at 10 Hz x 2 observations offer about 80/s; the loop waited for a rate
    // that only real ingest explains.
    eprintln!("Prometheus sees {rate:?} observations/s stored");
    assert_eq!(prom.scalar("up{job=\"wardhub\"}").await, Some(1.0));
    let by_adapter = prom
        .query("sum by (adapter) (rate(wardhub_messages_received_total[10s]))")
        .await
        .unwrap_or_default();
    assert!(
        by_adapter
            .iter()
            .any(|s| s["metric"]["adapter"] == "mqtt_json"),
        "{by_adapter:?}"
    );

    // Every shipped alert rule evaluates cleanly against the live hub.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value = reqwest::get(format!("http://{}/api/v1/rules", prom.addr))
            .await
            .expect("rules API")
            .json()
            .await
            .expect("rules JSON");
        let rules: Vec<&serde_json::Value> = body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let bad: Vec<String> = rules
            .iter()
            .filter(|r| r["health"] != "ok")
            .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
            .collect();
        if rules.len() >= 6 && bad.is_empty() {
            // A healthy hub under load fires none of them. Every rule waits a minute or more
            // (`for:`) before firing, longer than this test runs, so "not firing" alone could
            // not fail: a rule whose expression is true now is "pending", and none may be.
            //
            // One rule looks at the machine, not the hub: WardhubDiskAlmostFull is right to be
            // pending on a CI runner whose disk is over 90 % full (it was, once: "true on a
            // healthy hub: WardhubDiskAlmostFull pending"). `df`, not the hub, says which state
            // is right, so the rule is checked both ways; near the 10 % line it is left out.
            let free = disk_free_fraction(&loaded.server.data_dir());
            let active: Vec<_> = rules
                .iter()
                .filter(|r| r["state"] == "firing" || r["state"] == "pending")
                .map(|r| format!("{} {}", r["name"], r["state"]))
                .filter(|a| !a.starts_with("\"WardhubDiskAlmostFull\""))
                .collect();
            assert!(active.is_empty(), "true on a healthy hub: {active:?}");
            let disk = rules
                .iter()
                .find(|r| r["name"] == "WardhubDiskAlmostFull")
                .map(|r| r["state"].as_str().unwrap_or_default().to_owned())
                .expect("WardhubDiskAlmostFull is shipped");
            if free > 0.12 {
                assert_eq!(
                    disk,
                    "inactive",
                    "{:.1} % of the disk is free",
                    free * 100.0
                );
            } else if free < 0.09 {
                assert_eq!(disk, "pending", "{:.1} % of the disk is free", free * 100.0);
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alert rules not loaded or failing: {} rules, {bad:?}",
            rules.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(prom);
    loaded.stop().await;
}

/// The free share of the filesystem holding `dir`, as `df` (not the hub) reports it.
fn disk_free_fraction(dir: &Path) -> f64 {
    let out = Command::new("df")
        .args(["-P", "-B1"])
        .arg(dir)
        .output()
        .expect("df runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text
        .lines()
        .nth(1)
        .expect("df prints a filesystem line")
        .split_whitespace()
        .collect();
    // Filesystem 1-blocks Used Available Capacity Mounted-on
    let size: f64 = fields[1].parse().expect("df size");
    let available: f64 = fields[3].parse().expect("df available");
    available / size
}
