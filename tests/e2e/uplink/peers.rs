//! The real peers of the uplink tests: a NATS JetStream cluster (Debian's `nats-server`, MQTT
//! interface on), Debian's `mosquitto` broker, and `mosquitto_sub` as an independent
//! subscriber that writes down every message it receives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wardhub::uplink::envelope::{Envelope, Topics};
pub use wardhub_e2e::free_port;

fn require(tool: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} is missing: tests/run installs it (Debian package)");
}

/// Waits until `addr` takes an MQTT 3.1.1 CONNECT (NATS answers MQTT only once JetStream is
/// up).
pub async fn wait_mqtt(addr: SocketAddr, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        n += 1;
        let opts = wardhub_e2e::mqtt::options(addr, &format!("probe-{}-{n}", addr.port()));
        let (c, d) = wardhub_e2e::Device::try_connect(opts).await;
        drop(d);
        if c == wardhub_e2e::mqtt::Connect::Accepted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} at {addr} never took an MQTT CONNECT ({c:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One `nats-server` of a cluster.
pub struct NatsNode {
    pub name: String,
    conf: PathBuf,
    log: PathBuf,
    pub mqtt: SocketAddr,
    child: Option<Child>,
}

impl NatsNode {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("nats log");
        self.child = Some(
            Command::new(require("nats-server"))
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("nats-server starts"),
        );
    }

    /// SIGKILL: the node is gone at once, as a crashed machine.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A NATS cluster with JetStream and the MQTT interface on every node, on loopback.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub async fn start(n: usize) -> NatsCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let mqtt: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let store = dir.path().join(&name);
            let conf = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                     jetstream {{ store_dir: \"{store}\" }}\n\
                     cluster {{\n  name: wardhub-test\n  listen: 127.0.0.1:{route}\n  routes: [{route_list}]\n}}\n\
                     mqtt {{ listen: {mqtt}, stream_replicas: 3, consumer_replicas: 3 }}\n",
                    client = free_port(),
                    store = store.display(),
                ),
            )
            .expect("nats config");
            let mut node = NatsNode {
                log: dir.path().join(format!("{name}.log")),
                name,
                conf,
                mqtt,
                child: None,
            };
            node.spawn();
            nodes.push(node);
        }
        let cluster = NatsCluster { nodes, _dir: dir };
        cluster.wait_up().await;
        cluster
    }

    pub async fn wait_up(&self) {
        for n in &self.nodes {
            if n.child.is_some() {
                wait_mqtt(
                    n.mqtt,
                    &format!("NATS node {} (log: {})", n.name, n.log.display()),
                )
                .await;
            }
        }
    }

    /// Starts every node that is not running (same configuration and JetStream store).
    pub async fn start_stopped(&mut self) {
        for n in &mut self.nodes {
            if n.child.is_none() {
                n.spawn();
            }
        }
        self.wait_up().await;
    }

    pub fn kill_all(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }

    /// SIGTERM to every node, then waits for each to exit: the cluster stopped, as an
    /// operator stops it.
    pub fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = &n.child {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
            }
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.wait();
            }
        }
    }

    pub fn servers_toml(&self, first: usize) -> String {
        let n = self.nodes.len();
        (0..n)
            .map(|k| format!("\"mqtt://{}\"", self.nodes[(first + k) % n].mqtt))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Debian's mosquitto broker with a configuration of the test's.
pub struct Mosquitto {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts mosquitto with `listener {port} 127.0.0.1` followed by `extra`.
    pub async fn start(port: u16, extra: &str, dir: tempfile::TempDir) -> Mosquitto {
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\npersistence false\n{extra}\n"),
        )
        .expect("mosquitto config");
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("log");
        let child = Command::new(require("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("mosquitto starts");
        // Up once it accepts a TCP connection.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Mosquitto { child, _dir: dir }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_sub` with a persistent session (`-c`), QoS 1, writing `topic payload` lines.
pub struct Collector {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Collector {
    pub fn start(addr: SocketAddr, id: &str, extra: &[&str]) -> Collector {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received.txt");
        let child = Command::new(require("mosquitto_sub"))
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args([
                "-t",
                "wardhub/v1/sites/+/wards/+/#",
                "-q",
                "1",
                "-c",
                "-i",
                id,
                "-v",
            ])
            .args(["-V", "mqttv311"])
            .args(extra)
            .stdout(Stdio::from(std::fs::File::create(&out).expect("out")))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub starts");
        Collector {
            child,
            out,
            _dir: dir,
        }
    }

    /// Every payload received so far, as it came.
    pub fn payloads(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(topic, _)| !Topics::is_resend(topic))
            .map(|(_, p)| p.to_owned())
            .collect()
    }

    /// Every message received so far, in arrival order (duplicates included).
    pub fn received(&self) -> Vec<(String, Envelope)> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (topic, payload) = l.split_once(' ')?;
                if Topics::is_resend(topic) {
                    return None;
                }
                let e: Envelope = serde_json::from_str(payload)
                    .unwrap_or_else(|e| panic!("not an uplink envelope ({e}): {l}"));
                Some((topic.to_owned(), e))
            })
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks `payloads` against the published uplink schema with Python's `jsonschema` (a
/// validator no one here wrote; tests/run installs it); panics naming the first that fails.
pub fn check_against_schema(payloads: &[String]) {
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
n = 0
for line in sys.stdin:
    doc = json.loads(line)
    errors = [e.message for e in v.iter_errors(doc)]
    if errors:
        print(json.dumps({"message": doc, "errors": errors})[:2000])
        sys.exit(1)
    n += 1
print(n)
"#;
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters/schema/uplink-message.schema.json");
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (tests/run installs the PyPI package jsonschema)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for p in payloads {
            writeln!(stdin, "{p}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "an uplink message does not match adapters/schema/uplink-message.schema.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(n, payloads.len(), "the validator saw every message");
}
