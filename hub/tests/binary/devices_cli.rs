//! Issue #4: `wardhub device …` and `wardhub bed …` against a real hub on port 0: tables,
//! `--json`, and the exit codes (3 not found, 4 conflict, 5 auth, 6 unreachable, 7 invalid).

use std::process::{Command, Output};

use wardhub::auth::Role;
use wardhub::config::Config;
use wardhub::server::Hub;

const TOKEN: &str = "biomed-cli-test-token-0123456789";
const NURSE: &str = "nurse-cli-test-token-0123456789";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `wardhub ARGS` against `hub` (off the async workers: the hub runs on them).
async fn wardhub(hub: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wardhub"));
    c.env_remove("WARDHUB_TOKEN")
        .env_remove("WARDHUB_TOKEN_FILE")
        .env_remove("WARDHUB_HUB")
        .env("WARDHUB_LOG", "warn")
        .args(args)
        .args(["--hub", hub]);
    if let Some(t) = token {
        c.env("WARDHUB_TOKEN", t);
    }
    let out: Output = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn start() -> (Hub, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.hub.data_dir = dir.path().join("data");
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.metrics.listen = "127.0.0.1:0".parse().unwrap();
    config.set_hl7_listen("127.0.0.1:0".parse().unwrap());
    let hub = Hub::start_with_users(
        config,
        vec![
            ("bio".into(), Role::Biomed, TOKEN.into()),
            ("nina".into(), Role::Nurse, NURSE.into()),
        ],
    )
    .await
    .unwrap();
    let url = format!("http://{}", hub.addresses.http);
    (hub, dir, url)
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_bind_list_show_status_history() {
    let (hub, _dir, url) = start().await;
    let t = Some(TOKEN);

    // add: table output prints the secret once.
    let r = wardhub(
        &url,
        t,
        &[
            "device",
            "add",
            "mon-1",
            "--kind",
            "patient_monitor",
            "--bed",
            "bed-01",
            "--model",
            "MX40",
            "--firmware",
            "1.2",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("registered mon-1 (patient_monitor) at ward-1/bed-01"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("shown once"), "{}", r.stdout);
    // add --json: the API's answer.
    let r = wardhub(
        &url,
        t,
        &[
            "device",
            "add",
            "pump-1",
            "--kind",
            "infusion_pump",
            "--json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(v["created"], true);
    assert_eq!(v["secret"].as_str().unwrap().len(), 64);
    // add again: conflict.
    let r = wardhub(
        &url,
        t,
        &["device", "add", "pump-1", "--kind", "infusion_pump"],
    )
    .await;
    assert_eq!(r.code, 4, "{}", r.stderr);

    // bind; a second pump to the same slot is a conflict unless --replace.
    assert_eq!(
        wardhub(&url, t, &["device", "bind", "pump-1", "bed-01"])
            .await
            .code,
        0
    );
    wardhub(
        &url,
        t,
        &["device", "add", "pump-2", "--kind", "infusion_pump"],
    )
    .await;
    let r = wardhub(&url, t, &["device", "bind", "pump-2", "bed-01"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("pump-1"), "{}", r.stderr);
    let r = wardhub(
        &url,
        t,
        &["device", "bind", "pump-2", "bed-01", "--replace"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);

    // list: a table for people, JSON for scripts, filters.
    // Reading the registry needs a login too.
    let r = wardhub(&url, None, &["device", "list"]).await;
    assert_eq!(r.code, 5, "no token: {}", r.stderr);
    let r = wardhub(&url, t, &["device", "list"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("DEVICE") && lines[0].contains("ONLINE"),
        "{}",
        r.stdout
    );
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("mon-1") && l.contains("ward-1/bed-01") && l.contains("MX40")));
    let r = wardhub(
        &url,
        t,
        &[
            "device",
            "list",
            "--bed",
            "bed-01",
            "--kind",
            "infusion_pump",
            "--json",
        ],
    )
    .await;
    let v = json(&r);
    let ids: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["pump-2"]);
    let r = wardhub(&url, t, &["device", "list", "--online", "--json"]).await;
    assert_eq!(json(&r)["devices"].as_array().unwrap().len(), 0);

    // show, status, bed views.
    let r = wardhub(&url, t, &["device", "show", "mon-1"]).await;
    assert!(
        r.stdout.contains("MX40") && r.stdout.contains("credential"),
        "{}",
        r.stdout
    );
    let r = wardhub(&url, t, &["device", "status", "mon-1"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("offline") && r.stdout.contains("never"),
        "{}",
        r.stdout
    );
    let r = wardhub(&url, t, &["device", "status", "--ward", "ward-1"]).await;
    assert!(
        r.stdout.contains("ward-1/bed-01") && r.stdout.contains("0/2"),
        "{}",
        r.stdout
    );
    let r = wardhub(&url, t, &["bed", "list"]).await;
    assert!(
        r.stdout.contains("patient_monitor") && r.stdout.contains("pump-2"),
        "{}",
        r.stdout
    );
    let r = wardhub(&url, t, &["bed", "show", "bed-01", "--json"]).await;
    assert_eq!(json(&r)["slots"]["infusion_pump"], "pump-2");

    // unbind, retire, rotate, history, problems.
    assert_eq!(
        wardhub(&url, t, &["device", "unbind", "pump-2"]).await.code,
        0
    );
    assert_eq!(
        wardhub(&url, t, &["device", "retire", "pump-1"]).await.code,
        0
    );
    let r = wardhub(
        &url,
        t,
        &["device", "credentials", "rotate", "mon-1", "--json"],
    )
    .await;
    assert_eq!(json(&r)["secret"].as_str().unwrap().len(), 64);
    let r = wardhub(&url, t, &["device", "credentials", "rotate", "pump-1"]).await;
    assert_eq!(r.code, 4, "retired: {}", r.stderr);
    let r = wardhub(&url, t, &["device", "history", "pump-1"]).await;
    let text = &r.stdout;
    assert!(
        text.contains("created")
            && text.contains("bound")
            && text.contains("retired")
            && text.contains("bio"),
        "{text}"
    );
    let r = wardhub(&url, t, &["device", "problems", "--json"]).await;
    let v = json(&r);
    assert!(v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["device"] == "mon-1" && p["problem"] == "never_seen"));

    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes() {
    let (hub, _dir, url) = start().await;
    let r = wardhub(&url, Some(NURSE), &["device", "show", "nobody"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("unknown device nobody"), "{}", r.stderr);
    let r = wardhub(&url, None, &["device", "add", "x-1", "--kind", "wearable"]).await;
    assert_eq!(r.code, 5, "no token: {}", r.stderr);
    assert!(r.stderr.contains("WARDHUB_TOKEN"), "{}", r.stderr);
    let r = wardhub(
        &url,
        Some("wrong-token"),
        &["device", "add", "x-1", "--kind", "wearable"],
    )
    .await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    let r = wardhub(
        &url,
        Some(NURSE),
        &["device", "add", "x-1", "--kind", "wearable"],
    )
    .await;
    assert_eq!(r.code, 5, "nurse: {}", r.stderr);
    let r = wardhub(
        &url,
        Some(TOKEN),
        &["device", "add", "x-1", "--kind", "Not A Kind"],
    )
    .await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    let r = wardhub(
        &url,
        Some(TOKEN),
        &[
            "device", "add", "x-1", "--kind", "wearable", "--secret", "short",
        ],
    )
    .await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    // Token from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let r = wardhub(
        &url,
        None,
        &[
            "device",
            "add",
            "x-1",
            "--kind",
            "wearable",
            "--token-file",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Unreachable: a port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = wardhub(&format!("http://{free}"), Some(TOKEN), &["device", "list"]).await;
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach the hub"), "{}", r.stderr);
    // Usage error: clap's 2.
    assert_eq!(
        wardhub(&url, None, &["device", "bind", "x-1"]).await.code,
        2
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_bad_rows_and_export_round_trips() {
    let (hub, dir, url) = start().await;
    let csv = dir.path().join("devices.csv");
    std::fs::write(
        &csv,
        "id,kind,manufacturer,bed\n\
         mon-10,patient_monitor,\"Acme, Inc.\",bed-10\n\
         mon-11,patient_monitor,Acme,bed-10\n\
         vent-10,ventilator,,bed-10\n\
         bad/id,wearable,,bed-11\n",
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let r = wardhub(&url, Some(TOKEN), &["device", "import", path]).await;
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("devices.csv:3:") && r.stderr.contains("held by mon-10"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("devices.csv:5:"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing imported"), "{}", r.stderr);
    let r = wardhub(&url, Some(TOKEN), &["device", "list", "--json"]).await;
    assert_eq!(json(&r)["devices"].as_array().unwrap().len(), 0);

    let r = wardhub(&url, Some(TOKEN), &["device", "import", path, "--partial"]).await;
    assert_eq!(r.code, 7, "bad rows remain: {}", r.stderr);
    assert!(r.stdout.contains("imported: 2 created"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("shown once").count(), 2, "{}", r.stdout);

    let out = dir.path().join("export.csv");
    let r = wardhub(
        &url,
        Some(TOKEN),
        &["device", "export", "-o", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.contains("\"Acme, Inc.\""), "{exported}");
    // The export imports again cleanly (nothing changes).
    let r = wardhub(
        &url,
        Some(TOKEN),
        &["device", "import", out.to_str().unwrap(), "--json"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(
        (v["created"].as_u64(), v["updated"].as_u64()),
        (Some(0), Some(2))
    );
    hub.shutdown().await;
}
