//! Shared helpers of the end-to-end tests: a [`TestServer`] (a real hub on loopback port 0
//! with a temporary data directory) and small MQTT/HTTP clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod hl7;
pub mod load;
pub mod mqtt;
pub mod raw;

pub use mqtt::{Connect, Device};
use wardhub::config::{Config, StaticDevice};
use wardhub::server::Hub;

/// The MQTT service account (subscribe only) every test hub knows, for pager-like clients.
pub const PAGER_USER: &str = "test-pager";
pub const PAGER_PASSWORD: &str = "test-pager-password-0123456789";

/// A hub for one test.
pub struct TestServer {
    pub hub: Option<Hub>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestServer {
    /// A hub with these devices bound to beds (`(device, bed)`), config overlay applied.
    pub async fn start_with(devices: &[(&str, &str)], overlay: &str) -> TestServer {
        init_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::merged(overlay, "test overlay").expect("test config");
        config.hub.data_dir = dir.path().join("data");
        config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config
            .mqtt
            .service_accounts
            .push(wardhub::config::ServiceAccount {
                name: PAGER_USER.into(),
                password_sha256: wardhub::auth::hex(&wardhub::auth::sha256(
                    PAGER_PASSWORD.as_bytes(),
                )),
                subscribe: vec!["wardhub/#".into()],
            });
        config.metrics.listen = "127.0.0.1:0".parse().unwrap();
        config.set_hl7_listen("127.0.0.1:0".parse().unwrap());
        config
            .devices
            .extend(devices.iter().map(|(id, bed)| StaticDevice {
                id: (*id).into(),
                bed: (*bed).into(),
                ward: None,
                kind: None,
                secret_sha256: None,
            }));
        let hub = Hub::start_with_users(config.clone(), test_users())
            .await
            .expect("hub starts");
        TestServer {
            hub: Some(hub),
            dir,
            config,
        }
    }

    pub async fn start(devices: &[(&str, &str)]) -> TestServer {
        Self::start_with(devices, "").await
    }

    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("hub running")
    }

    pub fn mqtt(&self) -> SocketAddr {
        self.hub().addresses.mqtt
    }

    pub fn http(&self) -> SocketAddr {
        self.hub().addresses.http
    }

    /// The metrics listener (`GET /metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.hub().addresses.metrics
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.hub.data_dir.clone()
    }

    /// Stops the hub (drain, flush) and starts a new one on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(h) = self.hub.take() {
            h.shutdown().await;
        }
        self.hub = Some(
            Hub::start_with_users(self.config.clone(), test_users())
                .await
                .expect("hub restarts"),
        );
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.hub.take() {
            h.shutdown().await;
        }
    }

    /// GET a path of the API as the viewer (a wall display); returns the status and the JSON
    /// body (`Null` only for an empty body; a body that is not JSON fails the test).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::GET, path, Some(VIEWER_TOKEN), None)
            .await
    }

    /// GET a path of the API as the viewer; anything but 200 fails the test.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Every raw observation of `device` from `from` (epoch ms) to a minute from now, in one
    /// page (a truncated page or a status other than 200 fails the test).
    pub async fn observations(&self, device: &str, from: i64) -> Vec<serde_json::Value> {
        let path = format!(
            "/api/v1/devices/{device}/observations?from={from}&to={}&resolution=raw&limit=100000",
            now_ms() + 60_000
        );
        let body = self.json(&path).await;
        assert_eq!(body["truncated"], false, "GET {path}: {body}");
        body["observations"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no observations list: {body}"))
            .clone()
    }

    /// How many raw observations of `device` are stored (of any time up to a minute ahead).
    pub async fn stored(&self, device: &str) -> usize {
        self.observations(device, 0).await.len()
    }

    /// The alarms of `GET /api/v1/alarms?{query}` (e.g. `bed=bed-07&state=active`).
    pub async fn alarms(&self, query: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/alarms?{query}");
        let body = self.json(&path).await;
        body["alarms"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no alarms list: {body}"))
            .clone()
    }

    /// `wardhub_ingest_rejects_total` of one adapter and reason.
    pub async fn rejects(&self, adapter: &str, reason: &str) -> f64 {
        self.metric(&format!(
            r#"wardhub_ingest_rejects_total{{adapter="{adapter}",reason="{reason}"}}"#
        ))
        .await
    }

    /// Every alarm transition of `query` (e.g. `bed=bed-07&from=…`), oldest first, following
    /// the history's pages to the end.
    pub async fn alarm_history(&self, query: &str) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/alarms/history?{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.json(&path).await;
            all.extend(
                page["transitions"]
                    .as_array()
                    .unwrap_or_else(|| panic!("GET {path}: no transitions: {page}"))
                    .iter()
                    .cloned(),
            );
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return all,
            }
        }
    }

    /// The Prometheus text of the hub.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The value of one sample line (`name{labels}`) in the metrics. A series that is not
    /// there fails the test (a renamed metric must not read as 0).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        sample(&text, series).unwrap_or_else(|| {
            let family = series.split('{').next().unwrap_or(series);
            let near: Vec<&str> = text.lines().filter(|l| l.starts_with(family)).collect();
            panic!("no series {series} in /metrics; of that family: {near:?}")
        })
    }

    /// Polls `f` until it returns true or `timeout` passes.
    pub async fn eventually<F, Fut>(&self, timeout: Duration, mut f: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if f().await {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The events of one server-sent event stream ([`TestServer::sse`]).
pub type Sse = tokio::sync::mpsc::UnboundedReceiver<Result<(String, serde_json::Value), String>>;

/// The next event of `rx` that `f` accepts, within `timeout`; `None` when the time passes or
/// the stream ends first. An event whose data is not JSON fails the test.
pub async fn next_event(
    rx: &mut Sse,
    timeout: Duration,
    mut f: impl FnMut(&str, &serde_json::Value) -> bool,
) -> Option<(String, serde_json::Value)> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Ok((e, v)))) if f(&e, &v) => return Some((e, v)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("{e}"),
            _ => return None,
        }
    }
}

/// Bearer tokens of the users every test hub knows.
pub const NURSE_TOKEN: &str = "test-nurse-token-0123456789abcdef";
pub const BIOMED_TOKEN: &str = "test-biomed-token-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const VIEWER_TOKEN: &str = "test-viewer-token-0123456789abcdef";

fn test_users() -> Vec<(String, wardhub::auth::Role, String)> {
    use wardhub::auth::Role;
    vec![
        ("nurse-ana".into(), Role::Nurse, NURSE_TOKEN.into()),
        ("biomed-ben".into(), Role::Biomed, BIOMED_TOKEN.into()),
        ("admin-ada".into(), Role::Admin, ADMIN_TOKEN.into()),
        ("wall-display".into(), Role::Viewer, VIEWER_TOKEN.into()),
    ]
}

impl TestServer {
    /// A request with a bearer token (or none); returns the status and the JSON body (`Null`
    /// only for an empty body, e.g. a 204; a body that is not JSON fails the test).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new()
            .request(method.clone(), format!("http://{}{}", self.http(), path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {status}, body unreadable: {e}"));
        if text.is_empty() {
            return (status, serde_json::Value::Null);
        }
        let body = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{method} {path}: {status}, body is not JSON ({e}): {text}")
        });
        (status, body)
    }

    /// Subscribes to the server-sent events of `path`; events arrive as (event, data JSON),
    /// or as an error naming data that is not JSON. The channel closes with the stream.
    pub async fn sse(&self, path: &str) -> Sse {
        let mut resp = reqwest::Client::new()
            .get(format!("http://{}{}", self.http(), path))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .expect("SSE request");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let mut event = String::from("message");
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event:") {
                            event = e.trim().to_owned();
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data.push_str(d.trim_start());
                        }
                    }
                    if data.is_empty() {
                        continue;
                    }
                    let item = serde_json::from_str(&data)
                        .map(|json| (event.clone(), json))
                        .map_err(|e| format!("{event} event data is not JSON ({e}): {data}"));
                    if tx.send(item).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// The value of the sample line `series` (`name{labels}`) of a Prometheus text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.starts_with(' ')
            .then(|| rest.trim().parse().ok())
            .flatten()
    })
}

/// Whether a test is skipped on purpose (`var=1`, for a machine without `what`). A skip is
/// said loudly, and refused under CI (`CI` set): there a skip would pass for a test that ran.
pub fn skipped(var: &str, what: &str) -> bool {
    if std::env::var(var).as_deref() != Ok("1") {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{var}=1 under CI: {what} must run there (tests/run installs what it needs)"
    );
    eprintln!("\n*** SKIPPED: {what} ({var}=1). This test did not run. ***\n");
    true
}

/// The `wardhub` binary next to the test executable (tests/run builds it).
pub fn wardhub_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir");
    let bin = dir.join("wardhub");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p wardhub` (tests/run does)",
        bin.display()
    );
    bin
}

/// The addresses a started `wardhub serve` prints (its banner), read up to "Stop with".
#[derive(Debug, Default)]
pub struct Banner {
    pub mqtt: Option<SocketAddr>,
    pub hl7: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

impl Banner {
    /// Reads the banner from the hub's standard output; an address that does not parse
    /// fails the test.
    pub fn read(out: impl std::io::BufRead) -> Banner {
        let mut b = Banner::default();
        let addr = |a: &str| -> Option<SocketAddr> {
            let a = a.split('/').next().unwrap_or(a);
            Some(
                a.parse()
                    .unwrap_or_else(|e| panic!("banner address {a:?}: {e}")),
            )
        };
        for line in out.lines() {
            let line = line.expect("hub standard output");
            let line = line.trim();
            if let Some(a) = line.strip_prefix("MQTT       mqtt://") {
                b.mqtt = addr(a);
            } else if let Some(a) = line.strip_prefix("HL7 MLLP   ") {
                b.hl7 = addr(a);
            } else if let Some(a) = line.strip_prefix("HTTP API   http://") {
                b.http = addr(a);
            } else if let Some(a) = line.strip_prefix("metrics    http://") {
                b.metrics = addr(a);
            } else if line.starts_with("Stop with") {
                break;
            }
        }
        b
    }
}

/// Current epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Logs to the test output (`WARDHUB_TEST_LOG=debug cargo test …`).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("WARDHUB_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// A `wardhub serve` process of a test (SIGKILL-able), with the addresses it printed.
pub struct Spawned {
    pub child: std::process::Child,
    pub mqtt: SocketAddr,
    pub hl7: SocketAddr,
    pub metrics: SocketAddr,
}

/// Starts `wardhub serve --config config --data-dir data` on loopback port 0 everywhere.
pub fn spawn_hub(config: &std::path::Path, data: &std::path::Path) -> Spawned {
    use std::process::{Command, Stdio};
    let mut child = Command::new(wardhub_bin())
        .args(["serve", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--mqtt-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--hl7-listen",
            "127.0.0.1:0",
        ])
        .env("WARDHUB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wardhub starts");
    let banner = Banner::read(std::io::BufReader::new(child.stdout.take().unwrap()));
    Spawned {
        child,
        mqtt: banner.mqtt.expect("MQTT address printed"),
        hl7: banner.hl7.expect("HL7 address printed"),
        metrics: banner.metrics.expect("metrics address printed"),
    }
}

/// A port free now, for a peer that cannot be told to bind port 0 and report it (Prometheus,
/// nats-server, mosquitto).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
