//! The `wardhub` command line. `main` only calls [`main`] here. The tools are apart from the
//! hub's components: `admin` (the data directory, hub stopped), `devices` (the registry, over
//! HTTP), `alarms` (what-if replay, over HTTP).

pub mod admin;
pub mod alarms;
pub mod assign;
pub mod devices;
pub mod hospital;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, DEFAULT_CONFIG};
use crate::server::{Hub, StartError};

/// Exit code for a bad configuration (sysexits EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code for a listener that cannot bind or a data directory that cannot be used.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// An internal part of the hub stayed down (`hub.exit_after_component_down`): restart it.
pub const EXIT_SOFTWARE: u8 = 70;

#[derive(Debug, Parser)]
#[command(
    name = "wardhub",
    version,
    about = "A hub for the bedside devices of a hospital ward"
)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `wardhub=debug`.
    #[arg(long, global = true, env = "WARDHUB_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: MQTT broker, adapters, store, alarms, HTTP API.
    Serve(ServeArgs),
    /// Run the hub with a simulated ward (data in a temporary directory unless --data-dir).
    Demo(ServeArgs),
    /// Print the default configuration (the embedded deploy/hub.toml).
    GenerateConfig,
    /// API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Benchmarks (results go to BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// The device registry (talks to a running hub; see `wardhub device --help`).
    Device(crate::cli::devices::DeviceArgs),
    /// Beds and their slots (talks to a running hub).
    Bed(crate::cli::devices::BedArgs),
    /// The data directory: stats, verify, compact, migrate (with the hub stopped).
    Admin(crate::cli::admin::AdminArgs),
    /// Alarm tools (talk to a running hub): what-if replay of proposed rules.
    Alarms(crate::cli::alarms::AlarmsArgs),
    /// The hospital view: every ward hub that uplinks to the cluster, on one page.
    Hospital(crate::cli::hospital::HospitalArgs),
    /// The shift's roster: who is sent which bed's alarms (talks to a running hub).
    Assign(crate::cli::assign::AssignArgs),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Print a new bearer token for a user and the `[[users]]` entry for the config.
    Token {
        /// The user's name (recorded on every acknowledgement and change).
        name: String,
        /// viewer, nurse, biomed or admin.
        #[arg(value_parser = parse_role)]
        role: crate::auth::Role,
        /// The token stops working this long from now ("90days"); never when absent.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
}

fn parse_role(s: &str) -> Result<crate::auth::Role, String> {
    match s {
        "viewer" => Ok(crate::auth::Role::Viewer),
        "nurse" => Ok(crate::auth::Role::Nurse),
        "biomed" => Ok(crate::auth::Role::Biomed),
        "admin" => Ok(crate::auth::Role::Admin),
        _ => Err("role must be viewer, nurse, biomed or admin".into()),
    }
}

/// Settings of `serve` and `demo`; each flag wins over the config file.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file merged over the embedded default configuration.
    #[arg(long, env = "WARDHUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the database lives.
    #[arg(long, env = "WARDHUB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// MQTT listen address (3.1.1 and 5).
    #[arg(long, env = "WARDHUB_MQTT_LISTEN")]
    pub mqtt_listen: Option<SocketAddr>,
    /// HTTP listen address (API and dashboard).
    #[arg(long, env = "WARDHUB_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// HL7 v2 / MLLP listen address (turns the HL7 adapter on if the config has it off).
    #[arg(long, env = "WARDHUB_HL7_LISTEN")]
    pub hl7_listen: Option<SocketAddr>,
    /// Prometheus metrics listen address (`GET /metrics`).
    #[arg(long, env = "WARDHUB_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// The configuration these arguments describe.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut c = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            c.hub.data_dir = d.clone();
        }
        if let Some(a) = self.mqtt_listen {
            c.mqtt.listen = a;
        }
        if let Some(a) = self.http_listen {
            c.http.listen = a;
        }
        if let Some(a) = self.hl7_listen {
            c.set_hl7_listen(a);
        }
        if let Some(a) = self.metrics_listen {
            c.metrics.listen = a;
        }
        Ok(c)
    }
}

/// Parses the command line, runs the command, and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wardhub: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // rumqttd logs ordinary disconnects of its internal connections as errors; the edge logs
    // what devices do, so rumqttd stays quiet unless the filter names it.
    let filter = if filter.to_string().contains("rumqttd") {
        filter
    } else {
        filter.add_directive("rumqttd=off".parse().expect("static directive"))
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::GenerateConfig => {
            print!("{DEFAULT_CONFIG}");
            ExitCode::SUCCESS
        }
        Command::User(UserCommand::Token {
            name,
            role,
            expires_in,
        }) => {
            let token = crate::auth::new_secret();
            println!("token for {name} (shown once; give it to the user):\n  {token}\n");
            println!(
                "add to the hub config:\n[[users]]\nname = {name:?}\nrole = \"{}\"",
                role.as_str()
            );
            println!(
                "token_sha256 = \"{}\"",
                crate::auth::hex(&crate::auth::sha256(token.as_bytes()))
            );
            if let Some(d) = expires_in {
                let now =
                    wardhub_adapters::model::Clock::now_ms(&wardhub_adapters::model::SystemClock);
                let at = now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                println!(
                    "expires = \"{}\"",
                    wardhub_adapters::model::format_rfc3339(at)
                );
            }
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(args, false).await,
        Command::Demo(args) => serve(args, true).await,
        Command::Device(a) => crate::cli::devices::run_device(a).await,
        Command::Bed(a) => crate::cli::devices::run_bed(a).await,
        Command::Alarms(a) => crate::cli::alarms::run(a).await,
        Command::Hospital(a) => crate::cli::hospital::run(a).await,
        Command::Assign(a) => crate::cli::assign::run(a).await,
        Command::Admin(a) => tokio::task::block_in_place(|| crate::cli::admin::run(a)),
        Command::Bench(b) => match crate::bench::run(b).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wardhub bench: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(args: ServeArgs, demo: bool) -> ExitCode {
    let mut config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wardhub: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The demo keeps its data in a temporary directory unless told otherwise.
    let _tmp = if demo && args.data_dir.is_none() {
        match tempfile::Builder::new().prefix("wardhub-demo-").tempdir() {
            Ok(t) => {
                config.hub.data_dir = t.path().to_owned();
                Some(t)
            }
            Err(e) => {
                eprintln!("wardhub: cannot create a temporary data directory: {e}");
                return ExitCode::from(EXIT_UNAVAILABLE);
            }
        }
    } else {
        None
    };
    // The demo makes a nurse login at start (every read of patient data needs one).
    let demo_token = demo.then(crate::auth::new_secret);
    if demo {
        config = crate::demo::demo_config(config, crate::demo::DEMO_BEDS);
    }
    let users: Vec<(String, crate::auth::Role, String)> = demo_token
        .iter()
        .map(|t| ("demo-nurse".to_owned(), crate::auth::Role::Nurse, t.clone()))
        .collect();
    let hub = match Hub::start_with_users(config.clone(), users).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("wardhub: {e}");
            return ExitCode::from(match e {
                StartError::Bind { .. } | StartError::Store(_) => EXIT_UNAVAILABLE,
                _ => 1,
            });
        }
    };
    let a = hub.addresses;
    println!("wardhub {} is running", env!("CARGO_PKG_VERSION"));
    println!("  MQTT       mqtt://{}", a.mqtt);
    if let Some(h) = a.hl7 {
        println!("  HL7 MLLP   {h}");
    }
    if let Some(h) = a.adt {
        println!("  ADT feed   {h}");
    }
    let scheme = if config.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("  HTTP API   {scheme}://{}/api/v1", a.http);
    println!("  dashboard  {scheme}://{}/", a.http);
    println!("  metrics    http://{}/metrics", a.metrics);
    println!("  data       {}", hub.data_dir.display());
    if let Some(t) = &demo_token {
        println!("  login      nurse token {t} (paste it into the dashboard; valid until the demo stops)");
    }
    println!("Stop with Ctrl-C.");
    let demo_task = if demo {
        Some(crate::demo::start(&hub, &config))
    } else {
        None
    };
    let health = hub.health.clone();
    let failed = tokio::select! {
        _ = wait_for_signal() => false,
        _ = health.failed() => true,
    };
    if failed {
        let down: Vec<String> = health
            .report()
            .components
            .into_iter()
            .filter(|c| !c.1)
            .map(|c| format!("{} ({})", c.0, c.2.unwrap_or_default()))
            .collect();
        eprintln!(
            "wardhub: an internal part is down ({}): stopping so that it can be restarted",
            down.join(", ")
        );
    }
    eprintln!("wardhub: stopping (draining and flushing)…");
    if let Some(t) = demo_task {
        t.stop().await;
    }
    hub.shutdown().await;
    if failed {
        return ExitCode::from(EXIT_SOFTWARE);
    }
    ExitCode::SUCCESS
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
