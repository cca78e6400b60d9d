//! What each `wardhub device …` and `wardhub bed …` command asks the hub, and what it prints:
//! the API's JSON with `--json`, else a line, a table or a key-value list (see [`super::tables`]).

use serde_json::{json, Value};

use super::answers::{
    read, BedList, BedWithDevices, DeviceList, DeviceStatus, History, ProblemList, Rotated,
};
use super::args::{BedCommand, CredentialsCommand, DeviceCommand, HubArgs};
use super::client::{encode, query, Body, Client};
use super::tables::*;
use super::{print_json, CliResult, Failure, EXIT_ERROR, EXIT_INVALID};
use crate::registry::{BedView, DeviceView, ImportReport, Upserted};

pub(super) async fn device(a: &HubArgs, cmd: DeviceCommand) -> CliResult<()> {
    let c = Client::new(a)?;
    match cmd {
        DeviceCommand::Add { id, fields } => {
            let v = c.post("/api/v1/devices", fields.body(Some(&id))).await?;
            if c.json {
                print_json(&v);
            } else {
                let u: Upserted = read(&v)?;
                println!("registered {}", describe(&u.device));
                print_secret(&id, u.secret.as_deref());
            }
        }
        DeviceCommand::Update { id, fields } => {
            let (status, v, _) = c
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/devices/{}", encode(&id)),
                    Some(Body::Json(fields.body(None))),
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
                let u: Upserted = read(&v)?;
                println!("{what} {}", describe(&u.device));
                print_secret(&id, u.secret.as_deref());
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
                device_table(&read::<DeviceList>(&v)?.devices);
            }
        }
        DeviceCommand::Show { id } => {
            let v = c.get(&format!("/api/v1/devices/{}", encode(&id))).await?;
            if c.json {
                print_json(&v);
            } else {
                show(&read::<DeviceView>(&v)?);
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
            if c.json {
                print_json(&v);
            } else {
                println!("bound {}", describe(&read::<DeviceView>(&v)?));
            }
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
                print_secret(&id, read::<Rotated>(&v)?.secret.as_deref());
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
                problems(&read::<ProblemList>(&v)?.problems);
            }
        }
        DeviceCommand::History { id } => {
            let v = c
                .get(&format!("/api/v1/devices/{}/history", encode(&id)))
                .await?;
            if c.json {
                print_json(&v);
            } else {
                history(&read::<History>(&v)?.history);
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
                .send(reqwest::Method::POST, &path, Some(Body::Text(text)))
                .await;
            let (v, applied) = match r {
                Ok((_, v, _)) => (v, true),
                Err(Failure(EXIT_INVALID, _, Some(v))) if v.get("errors").is_some() => (v, false),
                Err(e) => return Err(e),
            };
            if c.json {
                print_json(&v);
            }
            let report: ImportReport = read(&v)?;
            let errors = &report.errors;
            if !c.json {
                for e in errors {
                    eprintln!("{}:{}: {}", file.display(), e.line, e.error);
                }
                if applied {
                    println!(
                        "imported: {} created, {} updated{}",
                        report.created,
                        report.updated,
                        if errors.is_empty() {
                            String::new()
                        } else {
                            format!(", {} bad rows skipped", errors.len())
                        }
                    );
                    for sec in &report.secrets {
                        print_secret(&sec.id, Some(&sec.secret));
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
                .send(reqwest::Method::GET, "/api/v1/devices/export", None)
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
                bed_table(&read::<BedList>(&v)?.beds);
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
                let b: BedWithDevices = read(&v)?;
                bed_table(std::slice::from_ref(&b.bed));
                println!();
                device_table(&b.device_status);
            }
        }
        BedCommand::Add { bed, ward } => {
            let v = c
                .post("/api/v1/beds", json!({ "bed": bed, "ward": ward }))
                .await?;
            if c.json {
                print_json(&v);
            } else {
                // The hub answers null when it cannot find the bed it just recorded.
                let (w, b) = match read::<Option<BedView>>(&v)? {
                    Some(b) => (b.ward, b.bed),
                    None => ("-".into(), "-".into()),
                };
                println!("bed {w}/{b} recorded");
            }
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
            device_status(&read::<DeviceStatus>(&v)?);
        }
        return Ok(());
    }
    let q = query(&[("ward", ward.clone()), ("bed", bed.clone())]);
    let devices = c.get(&format!("/api/v1/devices{q}")).await?;
    let beds = c
        .get(&format!("/api/v1/beds{}", query(&[("ward", ward)])))
        .await?;
    if c.json {
        // The API's JSON as it came, only the beds filtered.
        let beds: Vec<Value> = beds["beds"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|b| bed.as_ref().is_none_or(|x| b["bed"].as_str() == Some(x)))
            .collect();
        print_json(&json!({ "devices": devices["devices"], "beds": beds }));
        return Ok(());
    }
    let devices: DeviceList = read(&devices)?;
    let beds: Vec<BedView> = read::<BedList>(&beds)?
        .beds
        .into_iter()
        .filter(|b| bed.as_ref().is_none_or(|x| &b.bed == x))
        .collect();
    ward_status(&devices.devices, &beds);
    Ok(())
}

fn done(c: &Client, v: &Value, message: &str) {
    if c.json {
        print_json(v);
    } else {
        println!("{message}");
    }
}
