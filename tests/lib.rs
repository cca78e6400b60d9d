//! Shared helpers of the end-to-end tests: a [`TestServer`] (a real hub on loopback port 0
//! with a temporary data directory) and small MQTT/HTTP clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod load;
pub mod raw;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
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

    /// GET a path of the API as JSON, as the viewer (a wall display); returns the status and
    /// the body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{}", self.http(), path))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .expect("HTTP request");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
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
    /// A request with a bearer token (or none); returns the status and the JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req =
            reqwest::Client::new().request(method, format!("http://{}{}", self.http(), path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Subscribes to the server-sent events of `path`; events arrive as (event, data JSON).
    pub async fn sse(
        &self,
        path: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value)> {
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
                    let json = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
                    if tx.send((event, json)).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// A connected MQTT device client whose event loop is polled in the background; `publish`
/// returns once the broker acknowledged (QoS 1).
pub struct Device {
    pub client: AsyncClient,
    acks: tokio::sync::mpsc::UnboundedReceiver<Packet>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    pub async fn connect(addr: SocketAddr, id: &str) -> Device {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 22, 1 << 22);
        let (client, eventloop) = AsyncClient::new(opts, 100);
        let (tx, acks) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(poll(eventloop, tx));
        let mut d = Device { client, acks, task };
        // Wait for the CONNACK.
        match tokio::time::timeout(Duration::from_secs(10), d.acks.recv()).await {
            Ok(Some(Packet::ConnAck(_))) => {}
            other => panic!("{id}: no CONNACK: {other:?}"),
        }
        d
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish queued");
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.acks.recv()).await {
                Ok(Some(Packet::PubAck(_))) => return,
                Ok(Some(_)) => continue,
                other => panic!("no PUBACK: {other:?}"),
            }
        }
    }

    /// Publishes an observation document on this device's own topic.
    pub async fn publish_obs(&mut self, id: &str, doc: &str) {
        self.publish(&format!("wardhub/v1/devices/{id}/obs"), doc)
            .await;
    }

    /// Whether the connection has been closed (the event loop reported an error).
    pub async fn closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(100), self.acks.recv()).await {
                Ok(None) => return true,
                Ok(Some(Packet::Disconnect)) => return true,
                _ => {}
            }
        }
        false
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll(mut eventloop: EventLoop, tx: tokio::sync::mpsc::UnboundedSender<Packet>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(p)) => {
                if tx.send(p).is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(_)) => {}
            // The connection is gone: report it by closing the channel.
            Err(_) => return,
        }
    }
}

/// Current epoch milliseconds.
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
