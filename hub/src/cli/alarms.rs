//! `wardhub alarms …`: alarm tools that talk to a running hub (like `wardhub device`).
//!
//! `wardhub alarms replay --rules FILE --from TIME [--to TIME]` asks the hub to re-run the
//! alarm engine over its stored data with the proposed rules (`POST /api/v1/alarms/replay`,
//! admin) and prints what would change, per bed and condition, and what would become of every
//! alarm that nurses acknowledged as actionable. The rules file is TOML or JSON in the shape of
//! `GET /api/v1/rules` (`preset`, `rules`, `beds`), or a hub configuration whose `[alarms]`
//! section holds them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::devices::{finish, print_json, CliResult, Client, Failure, HubArgs, EXIT_INVALID};

#[derive(Debug, Args)]
pub struct AlarmsArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(subcommand)]
    pub command: AlarmsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// What-if: replay the stored data of a period with proposed rules (admin token).
    Replay {
        /// The proposed rules (TOML or JSON: preset, rules, beds; or a config's `[alarms]`).
        #[arg(long)]
        rules: PathBuf,
        /// Start of the period: RFC 3339, epoch ms, or a duration ago ("24h").
        #[arg(long)]
        from: String,
        /// End of the period (default now).
        #[arg(long)]
        to: Option<String>,
    },
}

/// Runs `wardhub alarms …`.
pub async fn run(args: AlarmsArgs) -> ExitCode {
    finish(&args.hub, alarms(&args.hub, args.command).await)
}

fn invalid(m: String) -> Failure {
    Failure(EXIT_INVALID, m, None)
}

/// A time as the API takes it; "24h" means 24 hours ago.
fn time_arg(s: &str) -> CliResult<String> {
    if let Ok(d) = humantime::parse_duration(s) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return Ok((now.saturating_sub(d).as_millis() as i64).to_string());
    }
    if wardhub_adapters::model::parse_time(s).is_none() {
        return Err(invalid(format!(
            "{s:?} is not a time: RFC 3339, epoch milliseconds, or a duration ago (\"24h\")"
        )));
    }
    Ok(s.to_owned())
}

/// The rule set of a rules file.
fn rules_of(path: &PathBuf) -> CliResult<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let v: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?
    } else {
        let t: toml::Value =
            toml::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        serde_json::to_value(t).map_err(|e| invalid(e.to_string()))?
    };
    let section = v.get("alarms").cloned().unwrap_or(v);
    let mut out = serde_json::Map::new();
    for key in ["preset", "rules", "beds"] {
        if let Some(x) = section.get(key) {
            out.insert(key.into(), x.clone());
        }
    }
    // Checked here too, so that a typo is told before the hub is asked.
    serde_json::from_value::<crate::alarms::RuleSet>(Value::Object(out.clone()))
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .validate()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    Ok(Value::Object(out))
}

async fn alarms(a: &HubArgs, cmd: AlarmsCommand) -> CliResult<()> {
    match cmd {
        AlarmsCommand::Replay { rules, from, to } => {
            let body = json!({
                "rules": rules_of(&rules)?,
                "from": time_arg(&from)?,
                "to": to.as_deref().map(time_arg).transpose()?,
            });
            let c = Client::with_timeout(a, Duration::from_secs(600))?;
            let v = c.post("/api/v1/alarms/replay", body).await?;
            if c.json {
                print_json(&v);
            } else {
                print!("{}", table(&v["replay"]));
            }
            Ok(())
        }
    }
}

fn time_text(v: &Value) -> String {
    v.as_i64()
        .map(wardhub_adapters::model::format_rfc3339)
        .unwrap_or_else(|| "-".into())
}

/// The replay report for people.
fn table(r: &Value) -> String {
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let mut out = format!(
        "replayed {} observations of {} beds, {} to {}\n\
         physiological alarms: {} with the rules in force, {} with the proposed rules\n\
         kept {}, later {}, earlier {}, gone {}, new {}\n\n",
        n("observations"),
        n("beds"),
        time_text(&r["from"]),
        time_text(&r["to"]),
        n("current"),
        n("proposed"),
        n("kept"),
        n("later"),
        n("earlier"),
        n("gone"),
        n("new"),
    );
    out.push_str(&format!(
        "{:<10} {:<16} {:>7} {:>8} {:>5} {:>6} {:>8} {:>5} {:>4} {:>10}\n",
        "BED",
        "CONDITION",
        "IN FORCE",
        "PROPOSED",
        "KEPT",
        "LATER",
        "EARLIER",
        "GONE",
        "NEW",
        "MAX LATER"
    ));
    for row in r["rows"].as_array().into_iter().flatten() {
        let c = |k: &str| row[k].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "{:<10} {:<16} {:>7} {:>8} {:>5} {:>6} {:>8} {:>5} {:>4} {:>10}\n",
            row["bed"].as_str().unwrap_or(""),
            row["condition"].as_str().unwrap_or(""),
            c("current"),
            c("proposed"),
            c("kept"),
            c("later"),
            c("earlier"),
            c("gone"),
            c("new"),
            row["max_later_s"]
                .as_f64()
                .map_or("-".into(), |s| format!("{s:.0} s")),
        ));
    }
    let changes = r["changes"].as_array().cloned().unwrap_or_default();
    if !changes.is_empty() {
        out.push_str("\nchanges:\n");
        for c in &changes {
            out.push_str(&format!(
                "  {:<8} {:<10} {:<16} in force {:<24} proposed {:<24}{}\n",
                c["change"].as_str().unwrap_or(""),
                c["bed"].as_str().unwrap_or(""),
                c["condition"].as_str().unwrap_or(""),
                time_text(&c["current_at"]),
                time_text(&c["proposed_at"]),
                c["shift_s"]
                    .as_f64()
                    .map_or(String::new(), |s| format!(" ({s:+.0} s)")),
            ));
        }
        if r["changes_truncated"].as_bool() == Some(true) {
            out.push_str("  … (more; --json has the first 500)\n");
        }
    }
    let actionable = r["actionable"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!(
        "\nalarms acknowledged as actionable: {} ({} missed, {} delayed by the proposed rules)\n",
        actionable.len(),
        n("actionable_missed"),
        n("actionable_delayed")
    ));
    for x in actionable.iter().filter(|x| x["outcome"] != "kept") {
        out.push_str(&format!(
            "  {} {} {} {} at {}{}\n",
            x["outcome"].as_str().unwrap_or("").to_uppercase(),
            x["alarm"].as_str().unwrap_or(""),
            x["bed"].as_str().unwrap_or(""),
            x["condition"].as_str().unwrap_or(""),
            time_text(&x["raised_at"]),
            x["delayed_s"]
                .as_f64()
                .map_or(String::new(), |s| format!(" by {s:.0} s")),
        ));
    }
    out
}
