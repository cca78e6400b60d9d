//! Issue #13: patient data behind authentication, and no face that one client can exhaust.
//! Real sockets throughout; peers nobody here wrote where they exist (curl, openssl s_client,
//! mosquitto_pub).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use wardhub::http::access::Access;
use wardhub_e2e::{
    now_ms, Device, TestServer, ADMIN_TOKEN, BIOMED_TOKEN, NURSE_TOKEN, VIEWER_TOKEN,
};

use wardhub_e2e::hl7::Mllp;

/// A path of the route table with its parameters filled in.
fn fill(path: &str) -> String {
    path.replace("{id}", "mon-1")
        .replace("{bed}", "bed-01")
        .replace("{name}", "nobody-at-all")
        .replace("{patient}", "MRN-0001")
}

fn callers() -> [(&'static str, Option<&'static str>); 5] {
    [
        ("anonymous", None),
        ("viewer", Some(VIEWER_TOKEN)),
        ("nurse", Some(NURSE_TOKEN)),
        ("biomed", Some(BIOMED_TOKEN)),
        ("admin", Some(ADMIN_TOKEN)),
    ]
}

fn allowed(access: Access, role: &str) -> bool {
    match access {
        Access::Open | Access::Login => true,
        Access::Read => role != "anonymous",
        Access::Acknowledge => matches!(role, "nurse" | "biomed" | "admin"),
        Access::Registry => matches!(role, "biomed" | "admin"),
        Access::Admin => role == "admin",
    }
}

/// The role × route matrix, over every route the router has (the table the router is built
/// from, so a new route is in it by construction): anonymous gets 401 wherever a login is
/// needed, a role without the permission 403, and a role with it neither. Guards "15
/// endpoints and the SSE stream answer with vitals without any token".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let server = TestServer::start(&[("mon-1", "bed-01")]).await;
    let table = wardhub::http::route_table();
    assert!(
        table.len() >= 40,
        "the table lists every route: {}",
        table.len()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut checked = 0;
    for route in &table {
        for (role, token) in callers() {
            let url = format!("http://{}{}", server.http(), fill(route.path));
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            let mut req = client.request(method, &url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if route.method != "GET" && route.method != "DELETE" {
                req = req.json(&json!({}));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let is_json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.starts_with("application/json") || v.starts_with("application/fhir+json")
                });
            if route.path == "/api/v1/alarms/stream" && status == 200 {
                drop(resp);
                checked += 1;
                continue;
            }
            let body = resp.text().await.unwrap_or_default();
            let ctx = format!("{} {} as {role}: {status} {body}", route.method, route.path);
            if allowed(route.access, role) {
                assert!(status != 401 && status != 403, "{ctx}");
            } else if role == "anonymous" {
                assert_eq!(status, 401, "{ctx}");
                assert!(!body.contains("bed-01") && !body.contains("mon-1"), "{ctx}");
            } else {
                assert_eq!(status, 403, "{ctx}");
            }
            if status >= 400 {
                assert!(is_json, "every error body is JSON: {ctx}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table.len() * 5);
}

/// docs/SECURITY.md states the same matrix as the router, route for route.
#[test]
fn the_documented_matrix_is_the_routers() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SECURITY.md"))
        .unwrap();
    let mut documented: Vec<(String, String, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            if cells.len() < 5 {
                return None;
            }
            let (m, p, a) = (
                cells[1].trim_matches('`'),
                cells[2].trim_matches('`'),
                cells[3].trim_matches('`'),
            );
            ["GET", "POST", "PUT", "DELETE"]
                .contains(&m)
                .then(|| (m.to_owned(), p.to_owned(), a.to_owned()))
        })
        .collect();
    let mut routes: Vec<(String, String, String)> = wardhub::http::route_table()
        .iter()
        .map(|r| (r.method.into(), r.path.into(), r.access.as_str().into()))
        .collect();
    documented.sort();
    routes.sort();
    assert_eq!(
        documented, routes,
        "docs/SECURITY.md's matrix must list every route with its access"
    );
}

/// A connection from `source` (a loopback address other than 127.0.0.1, so per-source limits
/// apply to it and not to the canaries).
async fn connect_from(source: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{source}:0").parse().unwrap())?;
    s.connect(to).await
}

const HL7_CANARY: &str = "MSH|^~\\&|CANARY||WARDHUB||{ts}||ORU^R01^ORU_R01|{id}|P|2.6\rPID|1||X\rOBR|1\rOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{ts}||||hl7-canary\r";

fn hl7_canary(i: usize) -> String {
    let ts = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap();
    HL7_CANARY
        .replace("{ts}", &format!("{ts}+0000"))
        .replace("{id}", &format!("C{i}"))
}

/// Slowloris against HTTP and half-open frames against MLLP, both from an attacker address,
/// while a canary device publishes over MQTT, a canary HL7 sender gets AA and /healthz stays
/// fast. Guards "2,000 partial requests were all still open after 60 s; MQTT, HL7 and
/// /healthz all time out" and "1,030 half-open frames fill all MLLP slots".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_half_open_frames_do_not_starve_the_other_faces() {
    let overlay = r#"
[http]
header_timeout = "1s"
max_connections_per_source = 50

[[adapters]]
type = "mqtt_json"

[[adapters]]
type = "hl7_mllp"
listen = "127.0.0.1:0"
frame_timeout = "1s"
max_connections_per_source = 10
peers = [{ name = "loopback", allow_from = ["127.0.0.0/8"] }]
"#;
    let server =
        TestServer::start_with(&[("canary", "bed-01"), ("hl7-canary", "bed-02")], overlay).await;
    let http = server.http();
    let hl7 = server.hub().addresses.hl7.unwrap();

    // 600 partial HTTP requests and 300 half-open MLLP frames from 127.0.0.9.
    let mut held = Vec::new();
    for _ in 0..600 {
        if let Ok(mut s) = connect_from("127.0.0.9", http).await {
            let _ = s
                .write_all(b"GET /api/v1/ward HTTP/1.1\r\nHost: x\r\nX-a: ")
                .await;
            held.push(s);
        }
    }
    for _ in 0..300 {
        if let Ok(mut s) = connect_from("127.0.0.9", hl7).await {
            let _ = s.write_all(&[0x0b; 1]).await;
            let _ = s.write_all(&[b'A'; 1024]).await;
            held.push(s);
        }
    }
    let mut dev = Device::connect(server.mqtt(), "canary").await;
    let mut worst_health = Duration::ZERO;
    let mut hl7_acks = 0;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for i in 0..6 {
        // Keep trickling: one byte per connection per round renews nothing.
        for s in held.iter_mut() {
            let _ = s.write_all(b"x").await;
        }
        let t = Instant::now();
        let h = client
            .get(format!("http://{http}/healthz"))
            .send()
            .await
            .expect("/healthz answers under attack");
        assert_eq!(h.status(), 200);
        worst_health = worst_health.max(t.elapsed());
        dev.publish_obs(
            "canary",
            &format!(
                r#"{{"metric":"MDC_ECG_HEART_RATE","value":70,"unit":"/min","ts":{}}}"#,
                now_ms()
            ),
        )
        .await;
        let mut m = Mllp::connect(hl7).await;
        if let Some((code, _)) = m.send(&hl7_canary(i)).await {
            assert_eq!(code, "AA");
            hl7_acks += 1;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(hl7_acks, 6, "the HL7 canary got every AA");
    assert!(
        worst_health < Duration::from_secs(1),
        "/healthz took {worst_health:?}"
    );
    // The attacker held at most its per-source share, and the timeouts closed it.
    let refused_http = server
        .metric(r#"wardhub_connections_refused_total{face="http",limit="per_source"}"#)
        .await;
    let refused_hl7 = server
        .metric(r#"wardhub_connections_refused_total{face="hl7",limit="per_source"}"#)
        .await;
    assert!(
        refused_http >= 500.0,
        "HTTP per-source refusals: {refused_http}"
    );
    assert!(
        refused_hl7 >= 250.0,
        "HL7 per-source refusals: {refused_hl7}"
    );
    let open_http = server
        .metric(r#"wardhub_connections_open{face="http"}"#)
        .await;
    assert!(
        open_http <= 5.0,
        "slow requests were closed by the header timeout: {open_http} open"
    );
    let timed_out = server
        .metric(r#"wardhub_connections_refused_total{face="hl7",limit="frame_timeout"}"#)
        .await;
    assert!(
        timed_out >= 10.0,
        "half-open frames closed by the frame timeout: {timed_out}"
    );
    assert_eq!(server.stored("canary").await, 6);
    drop(held);
}

/// Failed logins are limited per source: after `login_failures` bad tokens the source gets
/// 429 even with a good one, until the window passes; a missing token is not a guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited() {
    let server =
        TestServer::start_with(&[], "[http]\nlogin_failures = 3\nlogin_window = \"1h\"\n").await;
    for _ in 0..5 {
        let (s, _) = server.send(Method::GET, "/api/v1/ward", None, None).await;
        assert_eq!(s, 401);
    }
    for _ in 0..3 {
        let (s, b) = server
            .send(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"token": "guess-guess"})),
            )
            .await;
        assert_eq!(s, 401, "{b}");
    }
    let (s, b) = server
        .send(Method::GET, "/api/v1/ward", Some(NURSE_TOKEN), None)
        .await;
    assert_eq!(s, 429, "locked out: {b}");
    assert!(b["error"]
        .as_str()
        .unwrap()
        .contains("too many failed logins"));
    assert!(
        server
            .metric(r#"wardhub_http_auth_failures_total{reason="unknown"}"#)
            .await
            >= 3.0
    );
}

/// A dashboard session: login sets an HttpOnly, SameSite=Strict cookie that reads work with,
/// logout ends it; revoking the user's token at run time ends both the token and the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_log_out_and_revocation_needs_no_restart() {
    let server = TestServer::start(&[("mon-1", "bed-01")]).await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http());
    let login = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "token": NURSE_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Max-Age="),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "not Secure over plain HTTP");
    let session = cookie.split(';').next().unwrap().to_owned();
    let read = |c: String| {
        let client = client.clone();
        let url = format!("{base}/api/v1/ward");
        async move {
            client
                .get(url)
                .header("cookie", c)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(read(session.clone()).await, 200);
    // Revoked by an admin: the token and its sessions stop at once.
    let (s, b) = server
        .send(
            Method::POST,
            "/api/v1/users/nurse-ana/revoke",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["ended_sessions"], 1);
    assert_eq!(read(session).await, 401);
    let (s, _) = server
        .send(Method::GET, "/api/v1/ward", Some(NURSE_TOKEN), None)
        .await;
    assert_eq!(s, 401);
    let (s, users) = server
        .send(Method::GET, "/api/v1/users", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(s, 200, "{users}");
    let ana = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "nurse-ana")
        .unwrap();
    assert_eq!(ana["revoked"]["by"], "admin-ada");
    // Logout ends a session.
    let login = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "token": BIOMED_TOKEN }))
        .send()
        .await
        .unwrap();
    let session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let out = client
        .delete(format!("{base}/api/v1/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(read(session).await, 401);
}

/// Who looked at this patient: a nurse's reads of bed-01 (directly and through its device)
/// are in the access audit, which only an admin may read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_a_bed_are_audited() {
    let server = TestServer::start(&[("mon-1", "bed-01"), ("mon-2", "bed-02")]).await;
    let since = now_ms() - 1000;
    server
        .send(
            Method::GET,
            "/api/v1/beds/bed-01/latest",
            Some(NURSE_TOKEN),
            None,
        )
        .await;
    server
        .send(
            Method::GET,
            "/api/v1/devices/mon-1/observations",
            Some(NURSE_TOKEN),
            None,
        )
        .await;
    server
        .send(
            Method::GET,
            "/api/v1/beds/bed-02/latest",
            Some(BIOMED_TOKEN),
            None,
        )
        .await;
    let (s, _) = server
        .send(Method::GET, "/api/v1/audit", Some(NURSE_TOKEN), None)
        .await;
    assert_eq!(s, 403);
    let (s, a) = server
        .send(
            Method::GET,
            &format!("/api/v1/audit?bed=bed-01&from={since}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{a}");
    let rows = a["accesses"].as_array().unwrap();
    let routes: Vec<&str> = rows.iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert!(routes.contains(&"/api/v1/beds/{bed}/latest"), "{a}");
    assert!(routes.contains(&"/api/v1/devices/{id}/observations"), "{a}");
    assert!(
        rows.iter()
            .all(|r| r["user"] == "nurse-ana" && r["source"] == "127.0.0.1"),
        "{a}"
    );
}

/// Retiring a connected device closes its live session (it stayed connected before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_a_connected_device_disconnects_it() {
    let server = TestServer::start(&[("mon-r", "bed-01")]).await;
    let mut dev = Device::connect(server.mqtt(), "mon-r").await;
    dev.publish_obs(
        "mon-r",
        &format!(
            r#"{{"metric":"MDC_ECG_HEART_RATE","value":70,"unit":"/min","ts":{}}}"#,
            now_ms()
        ),
    )
    .await;
    let (s, b) = server
        .send(
            Method::POST,
            "/api/v1/devices/mon-r/retire",
            Some(BIOMED_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        dev.closed(Duration::from_secs(5)).await,
        "the retired device is still connected"
    );
    assert!(
        server
            .metric(r#"wardhub_mqtt_refused_total{reason="credentials_changed"}"#)
            .await
            >= 1.0
    );
}

/// Rotating a connected device's credentials closes its live session: the old secret no
/// longer holds a connection (it did before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_connected_devices_secret_disconnects_it() {
    let server = TestServer::start(&[("mon-k", "bed-01")]).await;
    let dev = Device::connect(server.mqtt(), "mon-k").await;
    let mut dev = dev;
    let (s, b) = server
        .send(
            Method::POST,
            "/api/v1/devices/mon-k/credentials/rotate",
            Some(BIOMED_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["secret"].as_str().is_some_and(|x| x.len() == 64), "{b}");
    assert!(
        dev.closed(Duration::from_secs(5)).await,
        "the session of the old secret is still open"
    );
}

/// axum's own rejections (bad JSON, wrong method) come back as {"error": …} too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_body_is_json() {
    let server = TestServer::start(&[]).await;
    let client = reqwest::Client::new();
    let r = client
        .put(format!("http://{}/api/v1/beds/bed-01/rules", server.http()))
        .bearer_auth(NURSE_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 422), "{}", r.status());
    let v: serde_json::Value = r.json().await.expect("a JSON body");
    assert!(v["error"].is_string(), "{v}");
    let r = client
        .patch(format!("http://{}/api/v1/ward", server.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: serde_json::Value = r.json().await.expect("a JSON body");
    assert!(v["error"].is_string(), "{v}");
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "wardhub test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(p, ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let issue = |name: &str, cn: &str, sans: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(
                dir.path().join(format!("{name}-key.pem")),
                key.serialize_pem(),
            )
            .unwrap();
        };
        issue(
            "server",
            "wardhub",
            vec!["127.0.0.1".into(), "localhost".into()],
        );
        issue("vent-m", "vent-m", vec![]);
        issue("intruder", "mon-unknown", vec![]);
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// HTTPS with HSTS, checked by curl against our CA; MLLP over TLS, checked by
/// `openssl s_client`; device login by client certificate with `mosquitto_pub --cert/--key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_every_face_with_peers_nobody_here_wrote() {
    for tool in ["curl", "openssl", "mosquitto_pub"] {
        if !have(tool) {
            panic!("{tool} is needed (tests/run installs it)");
        }
    }
    let pki = Pki::new();
    let overlay = format!(
        r#"
[http.tls]
cert = "{server}"
key = "{server_key}"

[mqtt.tls]
listen = "127.0.0.1:0"
cert = "{server}"
key = "{server_key}"
client_ca = "{ca}"

[[adapters]]
type = "mqtt_json"

[[adapters]]
type = "hl7_mllp"
listen = "127.0.0.1:0"
peers = [{{ name = "gw", certificate_cn = "vent-m" }}]
tls = {{ cert = "{server}", key = "{server_key}", client_ca = "{ca}", require_client_cert = true }}

# vent-m has a secret: its certificate is what lets it in without one.
[[devices]]
id = "vent-m"
bed = "bed-04"
secret_sha256 = "{secret}"
"#,
        server = pki.path("server.pem"),
        server_key = pki.path("server-key.pem"),
        ca = pki.path("ca.pem"),
        secret = wardhub::auth::hex(&wardhub::auth::sha256(b"vent-m-secret-0123456789")),
    );
    let server = TestServer::start_with(&[], &overlay).await;
    let http = server.http();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-i", "--cacert", &pki.path("ca.pem"), "-H"])
        .arg(format!("Authorization: Bearer {VIEWER_TOKEN}"))
        .arg(format!("https://127.0.0.1:{}/api/v1/ward", http.port()))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains("strict-transport-security: max-age="),
        "{text}"
    );
    // Plain HTTP to the HTTPS port gets nothing.
    let plain = reqwest::Client::new()
        .get(format!("http://{http}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // MLLP over TLS: openssl s_client with the gateway's certificate gets an AA.
    let hl7 = server.hub().addresses.hl7.unwrap();
    let msg = format!(
        "\x0b{}\x1c\r",
        hl7_canary(1).replace("hl7-canary", "vent-m")
    );
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{}", hl7.port()))
        .args([
            "-CAfile",
            &pki.path("ca.pem"),
            "-cert",
            &pki.path("vent-m.pem"),
            "-key",
            &pki.path("vent-m-key.pem"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(msg.as_bytes()).await.unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !got.windows(2).any(|w| w == [0x1c, b'\r']) {
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncReadExt::read(&mut stdout, &mut chunk),
        )
        .await
        {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            _ => {}
        }
    }
    drop(stdin);
    let _ = child.kill().await;
    let ack = String::from_utf8_lossy(&got);
    assert!(ack.contains("MSA|AA"), "the TLS MLLP sender got: {ack:?}");
    // Without a client certificate the MLLP handshake fails.
    let no_cert = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{}", hl7.port()))
        .args(["-CAfile", &pki.path("ca.pem")])
        .stdin(std::process::Stdio::piped())
        .output();
    let no_cert = tokio::time::timeout(Duration::from_secs(10), no_cert)
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&no_cert.stdout).contains("MSA|"));

    // mTLS device login: mosquitto_pub with vent-m's certificate and no password.
    let tls = server.hub().addresses.mqtt_tls.unwrap();
    // mosquitto_pub as client id vent-m with the certificate `name`, no password.
    let publish = |name: &str, payload: String| {
        let (port, ca) = (tls.port().to_string(), pki.path("ca.pem"));
        let (cert, key) = (
            pki.path(&format!("{name}.pem")),
            pki.path(&format!("{name}-key.pem")),
        );
        async move {
            tokio::process::Command::new("mosquitto_pub")
                .args(["-h", "localhost", "-p", &port, "-i", "vent-m", "-q", "1"])
                .args(["--cafile", &ca, "--cert", &cert, "--key", &key])
                .args(["-t", "wardhub/v1/devices/vent-m/obs", "-m", &payload])
                .output()
                .await
                .unwrap()
        }
    };
    let pubd = publish(
        "vent-m",
        format!(
            r#"{{"metric":"MDC_PULS_OXIM_SAT_O2","value":96,"unit":"%","ts":{}}}"#,
            now_ms()
        ),
    )
    .await;
    assert!(
        pubd.status.success(),
        "{}",
        String::from_utf8_lossy(&pubd.stderr)
    );
    // A certificate whose CN is not the client id is no login.
    let wrong = publish("intruder", "{}".into()).await;
    assert!(
        !wrong.status.success(),
        "a certificate of another name logged in"
    );
    let curl_get = |path: String| {
        let (ca, port) = (pki.path("ca.pem"), http.port());
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-sS", "--cacert", &ca, "-H"])
                .arg(format!("Authorization: Bearer {VIEWER_TOKEN}"))
                .arg(format!("https://127.0.0.1:{port}{path}"))
                .output()
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "curl {path}: not JSON ({e}): {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        }
    };
    let mut stored = false;
    for _ in 0..50 {
        let v = curl_get("/api/v1/devices/vent-m/observations?resolution=raw".into()).await;
        if v["observations"]
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o["value"] == 96.0))
        {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the certificate-authenticated publish was stored");
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Guards "a nurse can disable a bed's HR alarm and a 6-second HR of 230 raised nothing;
/// rules can be set for beds that do not exist": switching off needs a reason and a time
/// limit, limits outside the safe range need the admin role, unknown beds are refused, and
/// the change is shown with who and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinical_changes_to_alarms_are_bounded_and_recorded() {
    let server = TestServer::start(&[("mon-1", "bed-01")]).await;
    let put = |bed: &'static str, token: &'static str, body: serde_json::Value| {
        let server = &server;
        async move {
            server
                .send(
                    Method::PUT,
                    &format!("/api/v1/beds/{bed}/rules"),
                    Some(token),
                    Some(body),
                )
                .await
        }
    };
    let off = json!([{ "metric": "hr", "enabled": false }]);
    let (s, b) = put(
        "bed-99",
        NURSE_TOKEN,
        json!({ "rules": off, "reason": "x", "for": "1h" }),
    )
    .await;
    assert_eq!(s, 404, "a bed the registry does not know: {b}");
    let (s, b) = put("bed-01", NURSE_TOKEN, off.clone()).await;
    assert_eq!(s, 400, "switching off needs a reason: {b}");
    let (s, b) = put(
        "bed-01",
        NURSE_TOKEN,
        json!({ "rules": off, "reason": "pacemaker check" }),
    )
    .await;
    assert_eq!(s, 400, "and a time limit: {b}");
    let (s, b) = put(
        "bed-01",
        NURSE_TOKEN,
        json!({ "rules": off, "reason": "pacemaker check", "for": "9h" }),
    )
    .await;
    assert_eq!(s, 400, "of at most max_alarm_off: {b}");
    let (s, b) = put(
        "bed-01",
        NURSE_TOKEN,
        json!({ "rules": off, "reason": "pacemaker check", "for": "1h" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["change"]["off"], json!(["hr"]));
    assert_eq!(b["change"]["by"], "nurse-ana");
    assert!(b["change"]["until_ms"].as_i64().unwrap() > now_ms());
    let ward = server.json("/api/v1/ward").await;
    let bed = ward["beds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bed"] == "bed-01")
        .unwrap();
    assert_eq!(bed["alarm_change"]["reason"], "pacemaker check", "{bed}");
    // Outside the safe range (HR high above 180): admin only.
    let wide = json!({ "rules": [{ "metric": "hr", "low": 50, "high": 230 }], "reason": "tachycardic athlete" });
    let (s, b) = put("bed-01", NURSE_TOKEN, wide.clone()).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("safe maximum 180"),
        "{b}"
    );
    let (s, b) = put("bed-01", ADMIN_TOKEN, wide).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["change"]["widened"], json!(["hr"]));
    // Pausing the audio of a bed that does not exist is refused too.
    let (s, _) = server
        .send(
            Method::POST,
            "/api/v1/beds/bed-99/pause",
            Some(NURSE_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

/// An open live stream ends once its login is revoked (it does not outlive the token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_login_ends_its_live_stream() {
    let server = TestServer::start(&[]).await;
    let mut rx = server.sse("/api/v1/alarms/stream").await;
    let (first, _) = wardhub_e2e::next_event(&mut rx, Duration::from_secs(5), |_, _| true)
        .await
        .expect("a first event");
    assert_eq!(first, "snapshot");
    let (s, b) = server
        .send(
            Method::POST,
            "/api/v1/users/wall-display/revoke",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the revoked token");
    let (s, _) = server.get("/api/v1/alarms").await;
    assert_eq!(s, 401);
}
