//! `wardhub assign …`: the shift's roster on a running hub (`[dissemination]`): who looks
//! after which bed, their buddy, the charge nurse, the ward team.
//!
//! - `wardhub assign show`: the roster, and the beds no nurse looks after (their alarms go to
//!   the charge nurse);
//! - `wardhub assign bed BED --primary NAME [--buddy NAME]` (nurse token or above);
//! - `wardhub assign roster FILE` (admin): a whole shift from TOML or JSON
//!   (`charge = "…"`, `team = […]`, `[beds.bed-01] primary = "…"`, `buddy = "…"`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::devices::{finish, print_json, CliResult, Client, Failure, HubArgs, EXIT_INVALID};

#[derive(Debug, Args)]
pub struct AssignArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(subcommand)]
    pub command: AssignCommand,
}

#[derive(Debug, Subcommand)]
pub enum AssignCommand {
    /// The roster and the unassigned beds.
    Show,
    /// Assign one bed's nurse (and buddy); without --primary the bed is unassigned.
    Bed {
        bed: String,
        #[arg(long)]
        primary: Option<String>,
        #[arg(long)]
        buddy: Option<String>,
    },
    /// Replace the whole roster (a new shift) from a TOML or JSON file (admin token).
    Roster { file: PathBuf },
}

pub async fn run(args: AssignArgs) -> ExitCode {
    finish(&args.hub, assign(&args.hub, args.command).await)
}

fn invalid(m: String) -> Failure {
    Failure(EXIT_INVALID, m, None)
}

async fn assign(a: &HubArgs, cmd: AssignCommand) -> CliResult<()> {
    let c = Client::new(a)?;
    let v = match cmd {
        AssignCommand::Show => c.get("/api/v1/roster").await?,
        AssignCommand::Bed {
            bed,
            primary,
            buddy,
        } => {
            c.put(
                &format!("/api/v1/beds/{bed}/assignment"),
                json!({ "primary": primary, "buddy": buddy }),
            )
            .await?
        }
        AssignCommand::Roster { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
            let v: Value = if text.trim_start().starts_with('{') {
                serde_json::from_str(&text)
                    .map_err(|e| invalid(format!("{}: {e}", file.display())))?
            } else {
                let t: toml::Value = toml::from_str(&text)
                    .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
                serde_json::to_value(t).map_err(|e| invalid(e.to_string()))?
            };
            // Checked here too, so that a typo is told before the hub is asked.
            serde_json::from_value::<crate::dissemination::Roster>(v.clone())
                .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
            c.put("/api/v1/roster", v).await?
        }
    };
    if c.json {
        print_json(&v);
    } else {
        print!("{}", table(&v));
    }
    Ok(())
}

/// The roster for people.
fn table(v: &Value) -> String {
    let r = &v["roster"];
    let name = |x: &Value| x.as_str().unwrap_or("-").to_owned();
    let mut out = format!("charge nurse: {}\n", name(&r["charge"]));
    let team: Vec<String> = r["team"]
        .as_array()
        .into_iter()
        .flatten()
        .map(name)
        .collect();
    out.push_str(&format!(
        "ward team:    {}\n\n",
        if team.is_empty() {
            "-".into()
        } else {
            team.join(", ")
        }
    ));
    out.push_str(&format!(
        "{:<12} {:<20} {:<20}\n",
        "bed", "primary", "buddy"
    ));
    if let Some(beds) = r["beds"].as_object() {
        for (bed, pair) in beds {
            out.push_str(&format!(
                "{:<12} {:<20} {:<20}\n",
                bed,
                name(&pair["primary"]),
                name(&pair["buddy"])
            ));
        }
    }
    let un: Vec<String> = v["unassigned_beds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(name)
        .collect();
    if !un.is_empty() {
        out.push_str(&format!(
            "\nunassigned (alarms go to the charge nurse): {}\n",
            un.join(", ")
        ));
    }
    out
}
