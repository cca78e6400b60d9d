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
//!
//! Layout: `args` the command line (clap), `client` the HTTP client and what each status
//! code of the hub means as an exit code, `commands` what each command asks the hub and
//! prints, `answers` the hub's answers as types (mostly the registry's view types),
//! `tables` the tables and key-value lists people read.

mod answers;
mod args;
mod client;
mod commands;
mod tables;

use std::process::ExitCode;

use serde_json::Value;

pub use args::{
    BedArgs, BedCommand, CredentialsCommand, DeviceArgs, DeviceCommand, DeviceFields, HubArgs,
};
pub(crate) use client::Client;

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_NOT_FOUND: u8 = 3;
pub const EXIT_CONFLICT: u8 = 4;
pub const EXIT_AUTH: u8 = 5;
pub const EXIT_UNREACHABLE: u8 = 6;
pub const EXIT_INVALID: u8 = 7;

/// A failed command: the message and the exit code.
#[derive(Debug)]
pub(crate) struct Failure(pub u8, pub String, pub Option<Value>);

pub(crate) type CliResult<T> = Result<T, Failure>;

/// Runs `wardhub device …`.
pub async fn run_device(args: DeviceArgs) -> ExitCode {
    finish(&args.hub, commands::device(&args.hub, args.command).await)
}

/// Runs `wardhub bed …`.
pub async fn run_bed(args: BedArgs) -> ExitCode {
    finish(&args.hub, commands::bed(&args.hub, args.command).await)
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
