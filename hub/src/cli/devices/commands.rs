//! What each `wardhub device …` and `wardhub bed …` command asks the hub, and what it prints:
//! the API's JSON with `--json`, else a line, a table or a key-value list (see [`super::tables`]).

use serde_json::{json, Value};

use super::args::{BedCommand, CredentialsCommand, DeviceCommand, HubArgs};
use super::client::{encode, query, Body, Client};
use super::tables::*;
use super::{print_json, CliResult, Failure, EXIT_ERROR, EXIT_INVALID};

pub(super) async fn device(a: &HubArgs, cmd: DeviceCommand) -> CliResult<()> {
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

pub(super) async fn bed(a: &HubArgs, cmd: BedCommand) -> CliResult<()> {
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
