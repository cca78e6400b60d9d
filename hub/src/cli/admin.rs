//! `wardhub admin`: looking after the data directory (the hub must be stopped: the database
//! is locked while it runs).
//!
//! | command | does |
//! |---|---|
//! | `stats` | series, chunks, observations, bytes per observation, oldest and newest data |
//! | `verify` | decodes every chunk, rollup and log entry; exit 1 on any problem |
//! | `compact` | seals open chunks and rewrites the database to reclaim space |
//! | `migrate` | upgrades a data directory from an earlier wardhub (start does it too) |

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use wardhub_adapters::model::{format_rfc3339, Clock, SystemClock};

use crate::cli::ServeArgs;
use crate::store::{admin, Retention, SledStore};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// What is stored and what it takes on disk.
    Stats(DataArgs),
    /// Check that every stored chunk, rollup and log entry decodes.
    Verify(DataArgs),
    /// Rewrite the database to reclaim the space of deleted data.
    Compact(DataArgs),
    /// Upgrade a data directory written by an earlier wardhub.
    Migrate(DataArgs),
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// A TOML file merged over the embedded default configuration (for the data directory).
    #[arg(long, env = "WARDHUB_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// The data directory (wins over the config).
    #[arg(long, env = "WARDHUB_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

pub fn run(a: AdminArgs) -> ExitCode {
    match run_inner(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wardhub admin: {e:#}");
            ExitCode::from(crate::cli::EXIT_UNAVAILABLE)
        }
    }
}

fn run_inner(a: AdminArgs) -> anyhow::Result<ExitCode> {
    let data = match &a.command {
        AdminCommand::Stats(d)
        | AdminCommand::Verify(d)
        | AdminCommand::Compact(d)
        | AdminCommand::Migrate(d) => d,
    };
    let serve = ServeArgs {
        config: data.config.clone(),
        data_dir: data.data_dir.clone(),
        mqtt_listen: None,
        http_listen: None,
        hl7_listen: None,
        metrics_listen: None,
    };
    let config = serve.load()?;
    let dir = config.hub.data_dir.clone();
    let retention = Retention {
        raw: config.store.raw_retention,
        rollup: config.store.rollup_retention,
    };
    let cache = config.store.cache_capacity_bytes;
    let open = || -> anyhow::Result<std::sync::Arc<SledStore>> {
        SledStore::open(&dir, cache, retention)
            .map_err(|e| anyhow::anyhow!("{e} (is the hub running? `admin` needs it stopped)"))
    };
    match a.command {
        AdminCommand::Stats(_) => {
            let s = open()?.stats()?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_stats(&dir, &s);
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Verify(_) => {
            let r = open()?.verify()?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "checked {} chunks ({} observations), {} rollup spans",
                    r.chunks_checked, r.observations_checked, r.rollups_checked
                );
                for p in &r.problems {
                    println!("problem: {p}");
                }
                println!("{}", if r.ok() { "ok" } else { "PROBLEMS FOUND" });
            }
            Ok(if r.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AdminCommand::Compact(_) => {
            let now = SystemClock.now_ms();
            let r = admin::compact(&dir, cache, retention, now).map_err(|e| {
                anyhow::anyhow!("{e} (is the hub running? `admin` needs it stopped)")
            })?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "compacted {}: {} -> {} bytes",
                    dir.display(),
                    r.bytes_before,
                    r.bytes_after
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Migrate(_) => {
            // Opening migrates (and says so in the log); a second run finds nothing to do.
            let store = open()?;
            let s = store.stats()?;
            drop(store);
            println!(
                "{} is in the chunked format (2): {} observations in {} chunks",
                dir.display(),
                s.observations_sealed + s.observations_open,
                s.chunks
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_stats(dir: &std::path::Path, s: &admin::StorageStats) {
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_rfc3339);
    let per = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    println!("data directory        {}", dir.display());
    println!("size on disk          {} bytes", s.size_on_disk);
    println!("series                {}", s.series);
    println!(
        "observations          {} sealed, {} open (in the append log)",
        s.observations_sealed, s.observations_open
    );
    println!(
        "chunks                {} ({} bytes, {} span each)",
        s.chunks,
        s.chunk_bytes,
        humantime::format_duration(Duration::from_millis(admin::CHUNK_SPAN_MS as u64))
    );
    println!(
        "rollups               {} minutes ({} bytes)",
        s.rollup_minutes, s.rollup_bytes
    );
    println!(
        "append log            {} segments ({} bytes)",
        s.log_segments, s.log_bytes
    );
    println!(
        "bytes per observation {} on disk, {} in chunks",
        per(s.bytes_per_observation),
        per(s.chunk_bytes_per_observation)
    );
    println!("oldest data           {}", time(s.oldest));
    println!("newest data           {}", time(s.newest));
    if s.quarantined_chunks > 0 {
        println!(
            "quarantined chunks    {} (run `wardhub admin verify`)",
            s.quarantined_chunks
        );
    }
}
