//! The EMR tests' peers, none written here: python-hl7's asyncio MLLP server (wrapped by
//! `tests/peers/hl7_receiver.py`, which parses every message with the library), a FHIR server
//! implementation (`tests/peers/fhir/`), PyPI `fhir.resources` as validator, and python-hl7's
//! `mllp_send` as the ADT feed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Waits for a peer's port file (written once it listens).
fn wait_port(file: &Path, child: &mut Child, what: &str) -> u16 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(file) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// python-hl7's MLLP server, recording every message it parsed to `out` (JSON lines).
pub struct Hl7Receiver {
    child: Child,
    pub port: u16,
    pub out: PathBuf,
}

impl Hl7Receiver {
    /// Starts it on `port` (0: any) in `dir`.
    pub fn start(dir: &Path, port: u16) -> Hl7Receiver {
        let port_file = dir.join(format!("hl7-port-{port}"));
        let _ = std::fs::remove_file(&port_file);
        let out = dir.join("received.jsonl");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/peers/hl7_receiver.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--out")
            .arg(&out)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs tests/peers/hl7_receiver.py (tests/run installs PyPI hl7)");
        let port = wait_port(&port_file, &mut child, "hl7_receiver.py");
        Hl7Receiver { child, port, out }
    }

    /// Every message it received, parsed by python-hl7.
    pub fn received(out: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hl7Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The FHIR server of `tests/peers/fhir/` (in memory), on `base()`.
pub struct FhirServer {
    child: Child,
    pub port: u16,
}

impl FhirServer {
    pub fn start(dir: &Path, fail_first: u32) -> FhirServer {
        let port_file = dir.join("fhir-port");
        let mut child = Command::new("node")
            .arg(repo().join("tests/peers/fhir/server.mjs"))
            .arg("--port-file")
            .arg(&port_file)
            .args(["--fail-first", &fail_first.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("fhir-server.log")).expect("log file"),
            ))
            .spawn()
            .expect("node runs tests/peers/fhir/server.mjs (tests/run installs its packages)");
        let port = wait_port(&port_file, &mut child, "the FHIR server");
        FhirServer { child, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir", self.port)
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base()))
            .header("accept", "application/fhir+json")
            .send()
            .await
            .expect("FHIR server answers");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("FHIR JSON")
    }
}

impl Drop for FhirServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Validates FHIR JSON with PyPI `fhir.resources` (R4B models) and the vital-signs checks of
/// `tests/peers/validate_fhir.py`; returns its output, failing the test when invalid.
pub fn validate_fhir(json: &serde_json::Value) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(repo().join("tests/peers/validate_fhir.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs tests/peers/validate_fhir.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "fhir.resources refused it:\n{text}\n{json:#}"
    );
    text
}

/// One public ADT sample (`tests/fixtures/hl7/adt/`, sources in its SOURCES.md).
pub fn sample(name: &str) -> String {
    let path = repo().join("tests/fixtures/hl7/adt").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every public ADT sample, by file name.
pub fn samples() -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir(repo().join("tests/fixtures/hl7/adt"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A sample as if sent at `at`: MSH-7 and the EVN times (EVN-2, EVN-6) set to it, nothing
/// else changed. Public samples carry the times of years ago; the hub places an event at
/// the time it happened, so a test that mixes them with live data moves them to now.
pub fn at_time(msg: &str, at: i64) -> String {
    let ts = wardhub_e2e::hl7::hl7_time(at);
    msg.split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .map(|seg| {
            let mut f: Vec<String> = seg.split('|').map(str::to_owned).collect();
            let set = |f: &mut Vec<String>, i: usize| {
                if f.len() > i && !f[i].is_empty() {
                    f[i] = ts.clone();
                }
            };
            if seg.starts_with("MSH") {
                set(&mut f, 6); // MSH-7 (MSH-1 is the separator itself)
            } else if seg.starts_with("EVN") {
                set(&mut f, 2);
                set(&mut f, 6);
            }
            f.join("|")
        })
        .collect::<Vec<_>>()
        .join("\r")
}
