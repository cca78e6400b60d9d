//! `wardhub hospital`: runs the hospital view ([`crate::hospital`]) until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{wait_for_signal, EXIT_CONFIG, EXIT_UNAVAILABLE};
use crate::hospital::config::HospitalConfig;
use crate::hospital::{Hospital, HospitalError};

/// Settings of `hospital`; each flag wins over the config file.
#[derive(Debug, Clone, Args)]
pub struct HospitalArgs {
    /// A TOML file merged over the embedded default (deploy/hospital.toml).
    #[arg(long, env = "WARDHUB_HOSPITAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the view keeps what it received.
    #[arg(long, env = "WARDHUB_HOSPITAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The page's listen address.
    #[arg(long, env = "WARDHUB_HOSPITAL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The cluster's brokers (mqtt://host:port), instead of the config's.
    #[arg(long = "server", value_parser = crate::uplink::config::ServerUrl::parse)]
    pub servers: Vec<crate::uplink::config::ServerUrl>,
    /// Print the default configuration and stop.
    #[arg(long)]
    pub generate_config: bool,
}

pub async fn run(args: HospitalArgs) -> ExitCode {
    if args.generate_config {
        print!("{}", crate::hospital::config::DEFAULT_HOSPITAL_CONFIG);
        return ExitCode::SUCCESS;
    }
    let mut config = match HospitalConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wardhub hospital: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(d) = args.data_dir {
        config.hospital.data_dir = d;
    }
    if let Some(a) = args.listen {
        config.hospital.listen = a;
    }
    if !args.servers.is_empty() {
        config.cluster.servers = args.servers;
    }
    if config.users.is_empty() {
        eprintln!(
            "wardhub hospital: no [[users]] in the config: nobody can log in to the page \
             (`wardhub user token NAME viewer` makes one)"
        );
    }
    let view = match Hospital::start(config.clone(), Vec::new()).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("wardhub hospital: {e}");
            return ExitCode::from(match e {
                HospitalError::Bind { .. } | HospitalError::Store(_) => EXIT_UNAVAILABLE,
                _ => 1,
            });
        }
    };
    println!("wardhub hospital {} is running", env!("CARGO_PKG_VERSION"));
    println!("  page       http://{}/", view.addr);
    println!("  metrics    http://{}/metrics", view.addr);
    for s in &config.cluster.servers {
        println!("  cluster    {s}");
    }
    println!("  data       {}", config.hospital.data_dir.display());
    println!("Stop with Ctrl-C.");
    wait_for_signal().await;
    eprintln!("wardhub hospital: stopping…");
    view.shutdown().await;
    ExitCode::SUCCESS
}
