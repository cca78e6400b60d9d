//! Issue #19: alarms that reach a person, end to end — the roster set with `wardhub assign`,
//! an alarm raised over MQTT, its notifications received by Debian's `mosquitto_sub` on the
//! per-person topics, accept stopping the chain, a missing acceptance escalating to the buddy.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use wardhub_e2e::{
    wardhub_bin, Device, TestServer, ADMIN_TOKEN, NURSE_TOKEN, PAGER_PASSWORD, PAGER_USER,
};

/// Any alarm: the bed's nurse at once, the buddy after 3 s, no reminders.
const OVERLAY: &str = r#"
[dissemination]
enabled = true
[[dissemination.chains]]
steps = [{ to = "primary" }, { to = "buddy", after = "3s" }]
remind_every = "off"
"#;

/// `mosquitto_sub` on every person's topic, as the service account that may read them;
/// its lines are `topic payload`.
struct Sub(
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
);

impl Sub {
    fn start(server: &TestServer) -> Sub {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &server.mqtt().port().to_string()])
            .args(["-u", PAGER_USER, "-P", PAGER_PASSWORD, "-q", "1", "-v"])
            .args(["-i", "phone-gateway", "-t", "wardhub/v1/staff/+/alarms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (Debian mosquitto-clients; tests/run installs it)");
        let out = child.stdout.take().unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some((topic, payload)) = line.split_once(' ') {
                    if let Ok(v) = serde_json::from_str(payload) {
                        g.lock().unwrap().push((topic.to_owned(), v));
                    }
                }
            }
        });
        Sub(child, got)
    }

    fn topics(&self) -> Vec<String> {
        self.1
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wardhub assign …` against the test hub with `token`; its JSON answer.
fn assign(server: &TestServer, token: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, token).unwrap();
    let out = Command::new(wardhub_bin())
        .arg("assign")
        .args(args)
        .arg("--hub")
        .arg(format!("http://{}", server.http()))
        .arg("--token-file")
        .arg(&tf)
        .arg("--json")
        .output()
        .expect("wardhub assign runs");
    assert!(
        out.status.success(),
        "wardhub assign {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Feeds a deep desaturation to `bed` until an alarm is open there; its id.
async fn raise(server: &TestServer, dev: &mut Device, id: &str, bed: &str) -> String {
    for _ in 0..60 {
        dev.publish_obs(id, r#"{"metric":"spo2","value":80}"#).await;
        let open = server.alarms(&format!("bed={bed}")).await;
        if let Some(a) = open.first() {
            return a["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no alarm raised");
}

async fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_reaches_its_nurse_on_mqtt_escalates_to_the_buddy_and_accept_stops_it() {
    let server = TestServer::start_with(&[("mon-1", "bed-01"), ("mon-2", "bed-02")], OVERLAY).await;
    let sub = Sub::start(&server);
    // The roster from a file, as a charge nurse's tool would write it (admin).
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.toml");
    std::fs::write(
        &roster,
        "charge = \"admin-ada\"\n[beds.bed-01]\nprimary = \"nurse-ana\"\nbuddy = \"biomed-ben\"\n",
    )
    .unwrap();
    let r = assign(&server, ADMIN_TOKEN, &["roster", roster.to_str().unwrap()]);
    assert_eq!(r["roster"]["beds"]["bed-01"]["primary"], "nurse-ana");
    assert_eq!(
        r["unassigned_beds"],
        serde_json::json!(["bed-02"]),
        "bed 2 has no nurse"
    );
    let shown = assign(&server, NURSE_TOKEN, &["show"]);
    assert_eq!(shown["roster"]["charge"], "admin-ada");
    tokio::time::sleep(Duration::from_millis(500)).await; // mosquitto_sub subscribed

    // Nobody accepts: the nurse at once, the buddy 3 s later.
    let mut dev = Device::connect(server.mqtt(), "mon-1").await;
    let first = raise(&server, &mut dev, "mon-1", "bed-01").await;
    eventually("the nurse is told", 10, || {
        sub.topics()
            .contains(&"wardhub/v1/staff/nurse-ana/alarms".to_owned())
    })
    .await;
    eventually("the buddy is told after 3 s", 10, || {
        sub.topics()
            .contains(&"wardhub/v1/staff/biomed-ben/alarms".to_owned())
    })
    .await;
    let got = sub.1.lock().unwrap().clone();
    assert_eq!(got[0].1["alarm"]["id"], first.as_str());
    assert_eq!(got[0].1["target"], "primary");
    assert_eq!(got[0].1["alarm"]["bed"], "bed-01");
    // The buddy takes it: the chain stops, recorded.
    let (status, body) = server
        .send(
            Method::POST,
            &format!("/api/v1/alarms/{first}/accept"),
            Some(wardhub_e2e::BIOMED_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let h = server
        .json(&format!("/api/v1/alarms/{first}/dissemination"))
        .await;
    let events: Vec<&str> = h["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["notified", "notified", "accepted", "stopped"],
        "{h}"
    );
    let status = server.json("/api/v1/dissemination").await;
    assert_eq!(status["alarms"][0]["accepted_by"], "biomed-ben");
    let (again, _) = server
        .send(
            Method::POST,
            &format!("/api/v1/alarms/{first}/accept"),
            Some(NURSE_TOKEN),
            None,
        )
        .await;
    assert_eq!(again, 409, "accepted once");

    // The KPIs close the loop.
    let k = server.json("/api/v1/alarms/kpis").await;
    assert_eq!(k["dissemination"]["alarms_sent"], 1, "{k}");
    assert_eq!(k["dissemination"]["accepted"], 1);
    assert!(
        k["dissemination"]["first_delivery_s"]["p50"]
            .as_f64()
            .unwrap()
            < 2.0,
        "{k}"
    );
    assert_eq!(
        server
            .metric("wardhub_dissemination_reached_nobody_total")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_or_acknowledged_at_the_station_at_once_the_buddy_is_never_told() {
    let server = TestServer::start_with(&[("mon-1", "bed-01"), ("mon-2", "bed-02")], OVERLAY).await;
    let sub = Sub::start(&server);
    for bed in ["bed-01", "bed-02"] {
        assign(
            &server,
            NURSE_TOKEN,
            &[
                "bed",
                bed,
                "--primary",
                "nurse-ana",
                "--buddy",
                "biomed-ben",
            ],
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut d1 = Device::connect(server.mqtt(), "mon-1").await;
    let mut d2 = Device::connect(server.mqtt(), "mon-2").await;
    // Bed 1: the nurse accepts on her phone, at once (within the 3 s before the buddy).
    let a1 = raise(&server, &mut d1, "mon-1", "bed-01").await;
    eventually("the nurse is told of bed 1", 10, || {
        !sub.topics().is_empty()
    })
    .await;
    let (status, body) = server
        .send(
            Method::POST,
            &format!("/api/v1/alarms/{a1}/accept"),
            Some(NURSE_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Bed 2: acknowledged at the station, at once.
    let a2 = raise(&server, &mut d2, "mon-2", "bed-02").await;
    eventually("the nurse is told of bed 2", 10, || sub.topics().len() >= 2).await;
    let (ack, body) = server
        .send(
            Method::POST,
            &format!("/api/v1/alarms/{a2}/ack"),
            Some(NURSE_TOKEN),
            Some(serde_json::json!({"reason": "actionable"})),
        )
        .await;
    assert_eq!(ack, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        sub.topics()
            .iter()
            .all(|t| t == "wardhub/v1/staff/nurse-ana/alarms"),
        "the buddy's step (3 s) never came: {:?}",
        sub.topics()
    );
    let steps = |h: &Value| -> Vec<(String, String)> {
        h["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["event"].as_str().unwrap().to_owned(),
                    s["note"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let h1 = server
        .json(&format!("/api/v1/alarms/{a1}/dissemination"))
        .await;
    let h2 = server
        .json(&format!("/api/v1/alarms/{a2}/dissemination"))
        .await;
    let e = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        steps(&h1),
        [
            e("notified", ""),
            e("accepted", ""),
            e("stopped", "accepted")
        ]
    );
    assert_eq!(
        steps(&h2),
        [e("notified", ""), e("stopped", "acknowledged")]
    );
}

/// The Alarm Manager of `tests/peers/acm_manager.py` (python-hl7's MLLP server and client),
/// on `port`, answering with PCD-05 statuses to `status_to`.
struct Manager {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Manager {
    fn start(dir: &std::path::Path, port: u16, status_to: std::net::SocketAddr) -> Manager {
        let port_file = dir.join(format!("am-port-{}", wardhub_e2e::now_ms()));
        let out = dir.join("am.jsonl");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/acm_manager.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--out")
            .arg(&out)
            .args(["--port", &port.to_string()])
            .args(["--status-to", &status_to.to_string(), "--accept-after", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tests/peers/acm_manager.py (PyPI hl7)");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !port_file.exists() {
            assert!(child.try_wait().unwrap().is_none(), "acm_manager.py exited");
            assert!(
                std::time::Instant::now() < deadline,
                "acm_manager.py did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Manager { child, out }
    }

    /// What it received and sent, one JSON object per line.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.kill();
    }
}

/// IHE PCD ACM: each notification reaches the Alarm Manager (python-hl7) as a PCD-04 naming
/// its recipient; the manager's PCD-05 "accepted" stops the chain; with the manager down for a
/// minute, every PCD-04 of that minute arrives afterwards, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcd04_reaches_a_python_hl7_alarm_manager_and_its_pcd05_accept_stops_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let am_port = wardhub_e2e::free_port();
    let overlay = format!(
        "{OVERLAY}\n[dissemination.acm]\nconnect = \"127.0.0.1:{am_port}\"\n\
         receiving_application = \"ACM_TEST_AM\"\nack_timeout = \"3s\"\n\
         retry = {{ min = \"200ms\", max = \"1s\" }}\n\
         [dissemination.acm.status]\nlisten = \"127.0.0.1:0\"\n"
    );
    let server =
        TestServer::start_with(&[("mon-1", "bed-01"), ("mon-2", "bed-02")], &overlay).await;
    let status_addr = server.hub().addresses.acm_status.expect("PCD-05 listener");
    let mut am = Manager::start(dir.path(), am_port, status_addr);
    for bed in ["bed-01", "bed-02"] {
        assign(
            &server,
            NURSE_TOKEN,
            &[
                "bed",
                bed,
                "--primary",
                "nurse-ana",
                "--buddy",
                "biomed-ben",
            ],
        );
    }
    let mut d1 = Device::connect(server.mqtt(), "mon-1").await;
    let a1 = raise(&server, &mut d1, "mon-1", "bed-01").await;
    let n1: u64 = a1.trim_start_matches('A').parse().unwrap();
    // The PCD-04 start for the nurse, then (after its "accepted", 1 s later) the chain stops
    // before the buddy's step at 3 s, and the manager hears the end of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let events = loop {
        let h = server
            .json(&format!("/api/v1/alarms/{a1}/dissemination"))
            .await;
        let events: Vec<String> = h["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["event"].as_str().unwrap().to_owned())
            .collect();
        if events.contains(&"stopped".to_owned()) {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no PCD-05 accept: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        events,
        ["notified", "delivered", "read", "accepted", "stopped"],
        "the Alarm Manager's statuses, recorded"
    );
    let mine = |lines: &[Value], n: u64| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["kind"] == "alarm")
            .filter(|l| {
                l["alarm_id"]
                    .as_str()
                    .is_some_and(|a| a.split(['^', '&']).any(|p| p == n.to_string()))
            })
            .cloned()
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mine(&am.lines(), n1).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", am.lines());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = mine(&am.lines(), n1);
    assert_eq!(got[0]["message_type"], "ORU^R40^ORU_R40");
    assert!(
        got[0]["profile"]
            .as_str()
            .unwrap()
            .starts_with("IHE_PCD_ACM_001"),
        "{}",
        got[0]
    );
    assert_eq!(
        (got[0]["phase"].as_str(), got[0]["recipient"].as_str()),
        (Some("start"), Some("nurse-ana"))
    );
    assert_eq!(got[0]["priority"], "PH", "{}", got[0]);
    assert_eq!(
        got[1]["phase"], "acknowledged",
        "the end of the chain is reported: {}",
        got[1]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !am.lines().iter().any(|l| l["recipient"] == "biomed-ben"),
        "accepted through the Alarm Manager: the buddy is never sent it"
    );

    // The manager goes away for a minute: bed 2's alarm is sent to the nurse, then the buddy,
    // into the outbox; it comes back and gets all of it, once, in order.
    am.kill();
    let before = am.lines().len();
    let mut d2 = Device::connect(server.mqtt(), "mon-2").await;
    let a2 = raise(&server, &mut d2, "mon-2", "bed-02").await;
    let n2: u64 = a2.trim_start_matches('A').parse().unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        server
            .metric("wardhub_acm_outbox_messages{destination=\"acm\"}")
            .await
            >= 2.0
    );
    assert!(
        server
            .metric("wardhub_acm_retries_total{destination=\"acm\",reason=\"connect\"}")
            .await
            > 0.0
    );
    let am = Manager::start(dir.path(), am_port, status_addr);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server
        .metric("wardhub_acm_outbox_messages{destination=\"acm\"}")
        .await
        > 0.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ACM outbox did not drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after: Vec<Value> = am.lines()[before..].to_vec();
    let got = mine(&after, n2);
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|l| {
            (
                l["phase"].as_str().unwrap().to_owned(),
                l["recipient"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen[..2],
        [
            ("start".to_owned(), "nurse-ana".to_owned()),
            ("escalate".to_owned(), "biomed-ben".to_owned())
        ],
        "everything of the outage, in order: {seen:?}"
    );
    let mut ids: Vec<&str> = after
        .iter()
        .filter(|l| l["kind"] == "alarm")
        .map(|l| l["control_id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "nothing twice");
}
