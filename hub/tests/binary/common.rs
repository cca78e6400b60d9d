//! What the binary tests share: reading the addresses a started hub prints, and plain HTTP
//! GETs that fail the test when the hub does not answer.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The addresses (and the demo's nurse token) a starting hub prints before "Stop with".
#[derive(Debug, Default)]
pub struct Banner {
    /// `host:port` of the MQTT listener.
    pub mqtt: String,
    /// `host:port` of the HTTP API.
    pub http: String,
    /// `host:port` of the metrics listener.
    pub metrics: String,
    /// The demo's nurse login token (empty for `serve`).
    pub nurse_token: String,
}

impl Banner {
    /// Reads lines up to "Stop with"; fails the test when MQTT or HTTP is not printed.
    pub fn read(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Banner {
        let mut b = Banner::default();
        for line in lines.by_ref() {
            let line = line.expect("the hub's stdout");
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("login      nurse token ") {
                b.nurse_token = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            if let Some(a) = line.strip_prefix("MQTT       mqtt://") {
                a.clone_into(&mut b.mqtt);
            }
            if let Some(a) = line.strip_prefix("HTTP API   http://") {
                b.http = a.trim_end_matches("/api/v1").to_owned();
            }
            if let Some(a) = line.strip_prefix("metrics    http://") {
                b.metrics = a.trim_end_matches("/metrics").to_owned();
            }
            if line.starts_with("Stop with") {
                break;
            }
        }
        assert!(
            !b.mqtt.is_empty() && !b.http.is_empty(),
            "addresses not printed: {b:?}"
        );
        b
    }

    /// Reads the banner from a child's stdout; returns the rest of its lines, which the
    /// caller keeps reading so that the hub never blocks on a full pipe.
    pub fn of(
        stdout: std::process::ChildStdout,
    ) -> (
        Banner,
        std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    ) {
        let mut lines = std::io::BufReader::new(stdout).lines();
        (Banner::read(&mut lines), lines)
    }
}

/// GET `path` from `addr` with a bearer token (HTTP/1.1, one request per connection): the
/// status and the body. A hub that does not answer fails the test.
pub fn get(addr: &str, token: &str, path: &str) -> (u16, String) {
    let fail = |e: std::io::Error| -> ! { panic!("GET http://{addr}{path}: {e}") };
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| fail(e));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| fail(e));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| fail(e));
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap_or_else(|e| fail(e));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no HTTP response: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status: {head:?}"));
    (status, body.to_owned())
}

/// GET a JSON document: the status and the body (a body that is not JSON fails the test).
pub fn get_json(addr: &str, token: &str, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(addr, token, path);
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path}: {status}, not JSON ({e}): {body}"));
    (status, json)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
