//! `wardhub device …` and `wardhub bed …`: the biomedical engineer's registry commands.
//!
//! They talk to a running hub over its HTTP API (`--hub URL`, default `http://127.0.0.1:8080`;
//! the bearer token from `WARDHUB_TOKEN` or `--token-file`), print aligned tables for people
//! and the API's JSON with `--json`.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the hub failed (5xx) or answered something unexpected |
//! | 2 | bad command line (clap) |
//! | 3 | not found (device, bed) |
//! | 4 | conflict (slot taken, device exists or is retired) |
//! | 5 | authentication or permission refused (401/403), or no token |
//! | 6 | hub unreachable |
//! | 7 | invalid input (a bad field, a CSV with bad rows) |

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_NOT_FOUND: u8 = 3;
pub const EXIT_CONFLICT: u8 = 4;
pub const EXIT_AUTH: u8 = 5;
pub const EXIT_UNREACHABLE: u8 = 6;
pub const EXIT_INVALID: u8 = 7;

/// How to reach the hub, and how to print.
#[derive(Debug, Clone, Args)]
pub struct HubArgs {
    /// The hub's HTTP address.
    #[arg(
        long,
        global = true,
        env = "WARDHUB_HUB",
        default_value = "http://127.0.0.1:8080"
    )]
    pub hub: String,
    /// A file holding the bearer token (else the WARDHUB_TOKEN environment variable).
    #[arg(long, global = true, env = "WARDHUB_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Print JSON (the API's answer) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(subcommand)]
    pub command: DeviceCommand,
}

#[derive(Debug, Args)]
pub struct BedArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(subcommand)]
    pub command: BedCommand,
}

/// The fields of a device.
#[derive(Debug, Clone, Default, Args)]
pub struct DeviceFields {
    /// patient_monitor, infusion_pump, ventilator, smart_bed, nurse_call, wearable (or another).
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub manufacturer: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub serial: Option<String>,
    #[arg(long)]
    pub firmware: Option<String>,
    /// The adapter it talks through (mqtt_json, hl7_mllp).
    #[arg(long)]
    pub protocol: Option<String>,
    /// The ward (default: the hub's ward).
    #[arg(long)]
    pub ward: Option<String>,
    /// Bind to this bed.
    #[arg(long)]
    pub bed: Option<String>,
    /// The device's secret (16+ characters); without it the hub makes one and prints it once.
    #[arg(long, env = "WARDHUB_DEVICE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Maintenance due date, YYYY-MM-DD.
    #[arg(long)]
    pub maintenance_due: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    /// Take the bed's slot from the device holding it (which is unbound).
    #[arg(long)]
    pub replace: bool,
}

impl DeviceFields {
    fn body(&self, id: Option<&str>) -> Value {
        let mut v = json!({
            "kind": self.kind, "manufacturer": self.manufacturer, "model": self.model,
            "serial": self.serial, "firmware": self.firmware, "protocol": self.protocol,
            "ward": self.ward, "bed": self.bed, "secret": self.secret,
            "maintenance_due": self.maintenance_due, "notes": self.notes,
            "replace": self.replace,
        });
        if let (Some(id), Some(o)) = (id, v.as_object_mut()) {
            o.insert("id".into(), json!(id));
        }
        if let Some(o) = v.as_object_mut() {
            o.retain(|_, x| !x.is_null());
        }
        v
    }
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device (prints its new secret once unless --secret is given).
    Add {
        id: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    /// Change fields of a registered device (only those given).
    Update {
        id: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    /// List devices.
    List {
        #[arg(long)]
        ward: Option<String>,
        #[arg(long)]
        bed: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        /// active, retired or all.
        #[arg(long)]
        state: Option<String>,
        /// Only online devices.
        #[arg(long, conflicts_with = "offline")]
        online: bool,
        /// Only offline devices.
        #[arg(long)]
        offline: bool,
    },
    /// Everything about one device.
    Show { id: String },
    /// Bind a device to a bed (its kind's slot).
    Bind {
        id: String,
        bed: String,
        #[arg(long)]
        ward: Option<String>,
        /// Take the slot from the device holding it.
        #[arg(long)]
        replace: bool,
    },
    /// Unbind a device from its bed.
    Unbind { id: String },
    /// Retire a device: it is refused from now on and its slot is freed.
    Retire { id: String },
    /// Device credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Online, last seen, message rate, battery, firmware, alarms (one device, a bed, a ward).
    Status {
        id: Option<String>,
        #[arg(long)]
        ward: Option<String>,
        #[arg(long)]
        bed: Option<String>,
    },
    /// Devices that need attention: offline, flapping, rejects, maintenance, battery.
    Problems {
        #[arg(long)]
        ward: Option<String>,
    },
    /// Who changed what, when.
    History { id: String },
    /// Import devices from CSV (header: id,kind,manufacturer,model,serial,firmware,protocol,
    /// ward,bed,maintenance_due,notes,secret). Nothing is imported unless every row is good.
    Import {
        file: PathBuf,
        /// Import the good rows even when some are bad.
        #[arg(long)]
        partial: bool,
    },
    /// Export every device as CSV (no secrets).
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Issue a new secret (printed once; the old one stops working).
    Rotate { id: String },
}

#[derive(Debug, Subcommand)]
pub enum BedCommand {
    /// Beds with their six slots.
    List {
        #[arg(long)]
        ward: Option<String>,
    },
    /// One bed: slots and the status of its devices.
    Show {
        bed: String,
        #[arg(long)]
        ward: Option<String>,
    },
    /// Record a bed (beds also appear when a device is bound to them).
    Add {
        bed: String,
        #[arg(long)]
        ward: Option<String>,
    },
}

/// A failed command: the message and the exit code.
#[derive(Debug)]
pub(crate) struct Failure(pub u8, pub String, pub Option<Value>);

pub(crate) type CliResult<T> = Result<T, Failure>;

/// The HTTP client of the hub's command-line tools.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    pub json: bool,
}

impl Client {
    pub(crate) fn new(a: &HubArgs) -> CliResult<Client> {
        Self::with_timeout(a, Duration::from_secs(30))
    }

    /// A client whose requests may take up to `timeout` (a replay of days of data).
    pub(crate) fn with_timeout(a: &HubArgs, timeout: Duration) -> CliResult<Client> {
        let token = match &a.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        Failure(
                            EXIT_AUTH,
                            format!("cannot read token file {}: {e}", p.display()),
                            None,
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("WARDHUB_TOKEN")
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Failure(EXIT_ERROR, e.to_string(), None))?;
        Ok(Client {
            http,
            base: a.hub.trim_end_matches('/').to_owned(),
            token,
            json: a.json,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
        write: bool,
    ) -> CliResult<(u16, Value, String)> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        // Every read of the registry needs a login too (docs/SECURITY.md).
        let _ = write;
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        } else {
            return Err(Failure(
                EXIT_AUTH,
                "this needs a token: set WARDHUB_TOKEN or --token-file (wardhub user token NAME biomed makes one)".into(),
                None,
            ));
        }
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Text(t)) => req.header("content-type", "text/csv").body(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            Failure(
                EXIT_UNREACHABLE,
                format!("cannot reach the hub at {}: {}", self.base, root_cause(&e)),
                None,
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| {
            Failure(
                EXIT_UNREACHABLE,
                format!("the hub's answer was cut: {e}"),
                None,
            )
        })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok((status, value, text));
        }
        let message = value["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )
            });
        let code = match status {
            404 => EXIT_NOT_FOUND,
            409 => EXIT_CONFLICT,
            401 | 403 => EXIT_AUTH,
            400 | 422 => EXIT_INVALID,
            _ => EXIT_ERROR,
        };
        Err(Failure(code, message, Some(value)))
    }

    pub(crate) async fn get(&self, path: &str) -> CliResult<Value> {
        Ok(self.send(reqwest::Method::GET, path, None, false).await?.1)
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> CliResult<Value> {
        Ok(self
            .send(reqwest::Method::POST, path, Some(Body::Json(body)), true)
            .await?
            .1)
    }
}

enum Body {
    Json(Value),
    Text(String),
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::eq(cause as *const _ as *const u8, e as *const _ as *const u8) {
        e.to_string()
    } else {
        format!("{e}: {cause}")
    }
}

/// Query string of the given pairs (values are ids: no escaping beyond a check).
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `wardhub device …`.
pub async fn run_device(args: DeviceArgs) -> ExitCode {
    finish(&args.hub, device(&args.hub, args.command).await)
}

/// Runs `wardhub bed …`.
pub async fn run_bed(args: BedArgs) -> ExitCode {
    finish(&args.hub, bed(&args.hub, args.command).await)
}

pub(crate) fn finish(a: &HubArgs, r: CliResult<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message, body)) => {
            if a.json {
                if let Some(b) = body.filter(|b| !b.is_null()) {
                    println!("{b}");
                }
            }
            eprintln!("wardhub: {message}");
            ExitCode::from(code)
        }
    }
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn device(a: &HubArgs, cmd: DeviceCommand) -> CliResult<()> {
    let c = Client::new(a)?;
    match cmd {
        DeviceCommand::Add { id, fields } => {
            let v = c.post("/api/v1/devices", fields.body(Some(&id))).await?;
            if c.json {
                print_json(&v);
            } else {
                println!("registered {}", describe(&v["device"]));
                print_secret(&id, &v["secret"]);
            }
        }
        DeviceCommand::Update { id, fields } => {
            let (status, v, _) = c
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/devices/{}", encode(&id)),
                    Some(Body::Json(fields.body(None))),
                    true,
                )
                .await?;
            if c.json {
                print_json(&v);
            } else {
                let what = if status == 201 {
                    "registered"
                } else {
                    "updated"
                };
                println!("{what} {}", describe(&v["device"]));
                print_secret(&id, &v["secret"]);
            }
        }
        DeviceCommand::List {
            ward,
            bed,
            kind,
            state,
            online,
            offline,
        } => {
            let online = if online {
                Some("true".to_owned())
            } else if offline {
                Some("false".to_owned())
            } else {
                None
            };
            let q = query(&[
                ("ward", ward),
                ("bed", bed),
                ("kind", kind),
                ("state", state),
                ("online", online),
            ]);
            let v = c.get(&format!("/api/v1/devices{q}")).await?;
            if c.json {
                print_json(&v);
            } else {
                device_table(&v["devices"]);
            }
        }
        DeviceCommand::Show { id } => {
            let v = c.get(&format!("/api/v1/devices/{}", encode(&id))).await?;
            if c.json {
                print_json(&v);
            } else {
                show(&v);
            }
        }
        DeviceCommand::Bind {
            id,
            bed,
            ward,
            replace,
        } => {
            let v = c
                .post(
                    &format!("/api/v1/devices/{}/bind", encode(&id)),
                    json!({ "bed": bed, "ward": ward, "replace": replace }),
                )
                .await?;
            done(&c, &v, &format!("bound {}", describe(&v)));
        }
        DeviceCommand::Unbind { id } => {
            let v = c
                .post(
                    &format!("/api/v1/devices/{}/unbind", encode(&id)),
                    json!({}),
                )
                .await?;
            done(&c, &v, &format!("unbound {id}"));
        }
        DeviceCommand::Retire { id } => {
            let v = c
                .post(
                    &format!("/api/v1/devices/{}/retire", encode(&id)),
                    json!({}),
                )
                .await?;
            done(&c, &v, &format!("retired {id}: it is refused from now on"));
        }
        DeviceCommand::Credentials(CredentialsCommand::Rotate { id }) => {
            let v = c
                .post(
                    &format!("/api/v1/devices/{}/credentials/rotate", encode(&id)),
                    json!({}),
                )
                .await?;
            if c.json {
                print_json(&v);
            } else {
                print_secret(&id, &v["secret"]);
                println!("the old secret no longer works for new connections");
            }
        }
        DeviceCommand::Status { id, ward, bed } => status(&c, id, ward, bed).await?,
        DeviceCommand::Problems { ward } => {
            let v = c
                .get(&format!("/api/v1/problems{}", query(&[("ward", ward)])))
                .await?;
            if c.json {
                print_json(&v);
            } else {
                let rows: Vec<Vec<String>> = arr(&v["problems"])
                    .iter()
                    .map(|p| {
                        vec![
                            s(&p["device"]),
                            binding(p),
                            s(&p["problem"]),
                            s(&p["detail"]),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    println!("no problems");
                } else {
                    table(&["DEVICE", "BED", "PROBLEM", "DETAIL"], rows);
                }
            }
        }
        DeviceCommand::History { id } => {
            let v = c
                .get(&format!("/api/v1/devices/{}/history", encode(&id)))
                .await?;
            if c.json {
                print_json(&v);
            } else {
                let rows = arr(&v["history"])
                    .iter()
                    .map(|h| {
                        vec![
                            h["at"]
                                .as_i64()
                                .map(wardhub_adapters::model::format_rfc3339)
                                .unwrap_or_default(),
                            s(&h["who"]),
                            s(&h["action"]),
                            s(&h["detail"]),
                        ]
                    })
                    .collect();
                table(&["WHEN", "WHO", "WHAT", "DETAIL"], rows);
            }
        }
        DeviceCommand::Import { file, partial } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Failure(
                    EXIT_INVALID,
                    format!("cannot read {}: {e}", file.display()),
                    None,
                )
            })?;
            let path = format!(
                "/api/v1/devices/import{}",
                if partial { "?partial=true" } else { "" }
            );
            let r = c
                .send(reqwest::Method::POST, &path, Some(Body::Text(text)), true)
                .await;
            let (v, applied) = match r {
                Ok((_, v, _)) => (v, true),
                Err(Failure(EXIT_INVALID, _, Some(v))) if v.get("errors").is_some() => (v, false),
                Err(e) => return Err(e),
            };
            if c.json {
                print_json(&v);
            }
            let errors = arr(&v["errors"]);
            if !c.json {
                for e in &errors {
                    eprintln!("{}:{}: {}", file.display(), e["line"], s(&e["error"]));
                }
                if applied {
                    println!(
                        "imported: {} created, {} updated{}",
                        v["created"],
                        v["updated"],
                        if errors.is_empty() {
                            String::new()
                        } else {
                            format!(", {} bad rows skipped", errors.len())
                        }
                    );
                    for sec in arr(&v["secrets"]) {
                        print_secret(&s(&sec["id"]), &sec["secret"]);
                    }
                }
            }
            if !applied {
                return Err(Failure(
                    EXIT_INVALID,
                    format!(
                        "{} bad rows: nothing imported (fix them, or --partial to import the good rows)",
                        errors.len()
                    ),
                    None,
                ));
            }
            if !errors.is_empty() {
                return Err(Failure(
                    EXIT_INVALID,
                    format!("{} bad rows were not imported", errors.len()),
                    None,
                ));
            }
        }
        DeviceCommand::Export { output } => {
            let (_, _, text) = c
                .send(reqwest::Method::GET, "/api/v1/devices/export", None, false)
                .await?;
            match output {
                Some(p) => std::fs::write(&p, text).map_err(|e| {
                    Failure(
                        EXIT_ERROR,
                        format!("cannot write {}: {e}", p.display()),
                        None,
                    )
                })?,
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

async fn bed(a: &HubArgs, cmd: BedCommand) -> CliResult<()> {
    let c = Client::new(a)?;
    match cmd {
        BedCommand::List { ward } => {
            let v = c
                .get(&format!("/api/v1/beds{}", query(&[("ward", ward)])))
                .await?;
            if c.json {
                print_json(&v);
            } else {
                bed_table(&v["beds"]);
            }
        }
        BedCommand::Show { bed, ward } => {
            let v = c
                .get(&format!(
                    "/api/v1/beds/{}{}",
                    encode(&bed),
                    query(&[("ward", ward)])
                ))
                .await?;
            if c.json {
                print_json(&v);
            } else {
                bed_table(&json!([v.clone()]));
                println!();
                device_table(&v["device_status"]);
            }
        }
        BedCommand::Add { bed, ward } => {
            let v = c
                .post("/api/v1/beds", json!({ "bed": bed, "ward": ward }))
                .await?;
            done(
                &c,
                &v,
                &format!("bed {}/{} recorded", s(&v["ward"]), s(&v["bed"])),
            );
        }
    }
    Ok(())
}

async fn status(
    c: &Client,
    id: Option<String>,
    ward: Option<String>,
    bed: Option<String>,
) -> CliResult<()> {
    if let Some(id) = id {
        let v = c
            .get(&format!("/api/v1/devices/{}/status", encode(&id)))
            .await?;
        if c.json {
            print_json(&v);
        } else {
            let l = &v["live"];
            let rows = vec![
                vec!["device".into(), s(&v["id"])],
                vec!["kind".into(), s(&v["kind"])],
                vec!["bed".into(), binding(&v)],
                vec!["state".into(), s(&v["state"])],
                vec!["online".into(), yes_no(&v["online"])],
                vec!["last seen".into(), ago(&v["last_seen"])],
                vec!["messages/min".into(), s(&v["message_rate_per_min"])],
                vec!["connects (10 min)".into(), s(&l["connects_last_10m"])],
                vec!["rejects".into(), s(&l["rejects"])],
                vec!["battery".into(), battery(&v)],
                vec![
                    "firmware".into(),
                    firmware(&v["firmware"], &v["firmware_reported"]),
                ],
                vec!["alarms (24 h)".into(), s(&v["alarms_24h"])],
            ];
            kv(rows);
        }
        return Ok(());
    }
    let q = query(&[("ward", ward.clone()), ("bed", bed.clone())]);
    let devices = c.get(&format!("/api/v1/devices{q}")).await?;
    let beds = c
        .get(&format!("/api/v1/beds{}", query(&[("ward", ward)])))
        .await?;
    let beds: Vec<Value> = arr(&beds["beds"])
        .into_iter()
        .filter(|b| bed.as_ref().is_none_or(|x| b["bed"].as_str() == Some(x)))
        .collect();
    if c.json {
        print_json(&json!({ "devices": devices["devices"], "beds": beds }));
        return Ok(());
    }
    let rows = arr(&devices["devices"])
        .iter()
        .map(|d| {
            let l = &d["live"];
            vec![
                s(&d["id"]),
                s(&d["kind"]),
                binding(d),
                if d["state"] == "retired" {
                    "retired".into()
                } else {
                    yes_no(&l["online"])
                },
                ago(&l["last_seen"]),
                s(&l["message_rate_per_min"]),
                battery(l),
                firmware(&d["firmware"], &l["firmware_reported"]),
            ]
        })
        .collect();
    table(
        &[
            "DEVICE",
            "KIND",
            "BED",
            "ONLINE",
            "LAST SEEN",
            "MSG/MIN",
            "BATTERY",
            "FIRMWARE",
        ],
        rows,
    );
    println!();
    let rows: Vec<Vec<String>> = beds
        .iter()
        .map(|b| {
            vec![
                format!("{}/{}", s(&b["ward"]), s(&b["bed"])),
                format!("{}/{}", b["online"], arr(&b["devices"]).len()),
                s(&b["alarms_24h"]),
            ]
        })
        .collect();
    let (online, total) = beds.iter().fold((0, 0), |(o, t), b| {
        (
            o + b["online"].as_u64().unwrap_or(0),
            t + arr(&b["devices"]).len(),
        )
    });
    table(&["BED", "ONLINE", "ALARMS 24H"], rows);
    println!(
        "total: {online}/{total} bound devices online in {} beds",
        beds.len()
    );
    Ok(())
}

fn done(c: &Client, v: &Value, message: &str) {
    if c.json {
        print_json(v);
    } else {
        println!("{message}");
    }
}

fn print_secret(id: &str, secret: &Value) {
    if let Some(sec) = secret.as_str() {
        println!("secret for {id} (shown once; configure it as the device's MQTT password):");
        println!("  {sec}");
    }
}

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// A JSON value as a cell: strings bare, null as `-`.
fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn yes_no(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "online".into(),
        Some(false) => "offline".into(),
        None => "-".into(),
    }
}

fn binding(v: &Value) -> String {
    match (v["ward"].as_str(), v["bed"].as_str()) {
        (Some(w), Some(b)) => format!("{w}/{b}"),
        _ => "-".into(),
    }
}

fn describe(d: &Value) -> String {
    format!("{} ({}) at {}", s(&d["id"]), s(&d["kind"]), binding(d))
}

fn battery(l: &Value) -> String {
    match l["battery_pct"].as_f64() {
        Some(b) if l["charging"].as_bool() == Some(true) => format!("{b:.0}% charging"),
        Some(b) => format!("{b:.0}%"),
        None => "-".into(),
    }
}

fn firmware(registered: &Value, reported: &Value) -> String {
    match (registered.as_str(), reported.as_str()) {
        (Some(a), Some(b)) if a != b => format!("{b} (registered {a})"),
        (_, Some(b)) => b.to_owned(),
        (Some(a), None) => a.to_owned(),
        (None, None) => "-".into(),
    }
}

fn ago(t: &Value) -> String {
    let Some(t) = t.as_i64() else {
        return "never".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(t);
    let secs = (now - t).max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

fn show(v: &Value) {
    let l = &v["live"];
    kv(vec![
        vec!["device".into(), s(&v["id"])],
        vec!["kind".into(), s(&v["kind"])],
        vec!["state".into(), s(&v["state"])],
        vec!["bed".into(), binding(v)],
        vec!["manufacturer".into(), s(&v["manufacturer"])],
        vec!["model".into(), s(&v["model"])],
        vec!["serial".into(), s(&v["serial"])],
        vec![
            "firmware".into(),
            firmware(&v["firmware"], &l["firmware_reported"]),
        ],
        vec!["protocol".into(), s(&v["protocol"])],
        vec![
            "credential".into(),
            if v["has_credential"] == true {
                "set".into()
            } else {
                "NONE (connects by id)".into()
            },
        ],
        vec!["maintenance due".into(), s(&v["maintenance_due"])],
        vec!["notes".into(), s(&v["notes"])],
        vec!["online".into(), yes_no(&l["online"])],
        vec!["last seen".into(), ago(&l["last_seen"])],
        vec!["battery".into(), battery(l)],
    ]);
}

fn device_table(devices: &Value) {
    let rows = arr(devices)
        .iter()
        .map(|d| {
            vec![
                s(&d["id"]),
                s(&d["kind"]),
                binding(d),
                s(&d["state"]),
                yes_no(&d["live"]["online"]),
                ago(&d["live"]["last_seen"]),
                s(&d["model"]),
                s(&d["firmware"]),
            ]
        })
        .collect();
    table(
        &[
            "DEVICE",
            "KIND",
            "BED",
            "STATE",
            "ONLINE",
            "LAST SEEN",
            "MODEL",
            "FIRMWARE",
        ],
        rows,
    );
}

fn bed_table(beds: &Value) {
    let kinds = crate::registry::model::KINDS;
    let mut headers = vec!["BED"];
    headers.extend(kinds.iter().copied());
    headers.push("ONLINE");
    let rows = arr(beds)
        .iter()
        .map(|b| {
            let mut row = vec![format!("{}/{}", s(&b["ward"]), s(&b["bed"]))];
            for k in kinds {
                row.push(s(&b["slots"][k]));
            }
            row.push(format!("{}/{}", b["online"], arr(&b["devices"]).len()));
            row
        })
        .collect();
    table(&headers, rows);
}

fn kv(rows: Vec<Vec<String>>) {
    let w = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    for r in rows {
        println!("{:<w$}  {}", r[0], r[1]);
    }
}

/// Prints an aligned plain-text table.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r);
    }
}
