//! The `ward-sim` command line. `main` only calls [`main`] here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::encode::{self, TimeBase};
use crate::run::{
    points_per_bed_second, run, Registration, RunConfig, Targets, DEFAULT_SECRET_KEY,
};
use crate::scenario::{Scenario, BUILTIN};
use crate::transport::secret_for;
use crate::ward::{Payload, Ward};

/// Exit code for bad arguments or a bad scenario (sysexits EX_USAGE).
pub const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "ward-sim",
    version,
    about = "A simulated hospital ward for wardhub: demo, tests and load",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, global = true, env = "WARD_SIM_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a ward against a running hub (the default).
    Run(RunArgs),
    /// Print the simulated stream as JSON lines, without a hub (no clock, no network).
    Dump(DumpArgs),
    /// Overload with exact accounting: record every PUBACK, then check that every
    /// acknowledged observation was kept (wardhub: read back over HTTP; any broker: delivered
    /// to a subscriber).
    Flood(FloodArgs),
    /// List the built-in scenarios.
    Scenarios,
    /// Print the MQTT password ward-sim uses for a device id.
    Secret {
        device: String,
        #[arg(long, env = "WARD_SIM_SECRET_KEY", default_value = DEFAULT_SECRET_KEY)]
        secret_key: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct FloodArgs {
    /// The broker (a wardhub's MQTT listener, or any MQTT broker).
    #[arg(long)]
    pub mqtt: String,
    /// A wardhub's HTTP address (`http://127.0.0.1:8080`): check the store through its API.
    #[arg(long)]
    pub http: Option<String>,
    /// Check what a QoS 1 subscriber receives instead (for other brokers).
    #[arg(long)]
    pub subscribe: bool,
    /// Device ids are PREFIX-flood-N, PREFIX-dev-N, PREFIX-canary.
    #[arg(long, default_value = "fl")]
    pub prefix: String,
    /// Steady devices.
    #[arg(long, default_value_t = 4)]
    pub devices: usize,
    /// Flooding devices.
    #[arg(long, default_value_t = 1)]
    pub floods: usize,
    /// A device sending one message a second.
    #[arg(long)]
    pub canary: bool,
    /// Observations per message of the steady devices.
    #[arg(long, default_value_t = 50)]
    pub obs_per_msg: u32,
    /// Observations per message of the flooding devices.
    #[arg(long, default_value_t = 1000)]
    pub flood_obs: u32,
    /// Unacknowledged messages each device keeps in flight.
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// MQTT protocol level (4 = 3.1.1, 5).
    #[arg(long, default_value_t = 4)]
    pub level: u8,
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Print the device ids and exit (to register them).
    #[arg(long)]
    pub list_devices: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// A built-in scenario (quiet-night, deteriorating-patient, device-chaos, demo) or a TOML file.
    #[arg(long, default_value = "quiet-night")]
    pub scenario: String,
    /// Same seed, same observation stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of beds (default: the scenario's).
    #[arg(long)]
    pub beds: Option<usize>,
    /// Simulated time to run, e.g. 10m, 8h (default: the scenario's, else until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Simulated seconds per wall second (60 = a minute per second).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Load mode: numeric points per second across the ward (sets the speed; shows progress).
    #[arg(long)]
    pub rate: Option<f64>,
    /// The hub's MQTT address.
    #[arg(long, env = "WARD_SIM_MQTT", default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// The hub's HL7/MLLP address; without it, HL7 devices speak MQTT JSON.
    #[arg(long, env = "WARD_SIM_HL7")]
    pub hl7: Option<String>,
    /// The hub's HTTP base URL, for registering the devices.
    #[arg(long, env = "WARD_SIM_HTTP", default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// Bearer token for the registry API.
    #[arg(long, env = "WARDHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Do not register devices (the hub has them already, or static bindings).
    #[arg(long)]
    pub no_register: bool,
    /// Key the device MQTT passwords are derived from.
    #[arg(long, env = "WARD_SIM_SECRET_KEY", default_value = DEFAULT_SECRET_KEY, hide_env_values = true)]
    pub secret_key: String,
    /// Show the progress bar even without --rate.
    #[arg(long)]
    pub progress: bool,
    /// Write the ground truth (every clinical event, artefact, device fault and device event,
    /// with simulated and hub times) to this file as JSON lines when the run ends.
    #[arg(long)]
    pub truth: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Stamp times from this epoch (ms); default 2026-11-20T10:00:00Z.
    #[arg(long, default_value_t = 1_795_168_800_000)]
    pub epoch_ms: i64,
    /// Print the ground truth instead of the stream: every clinical event, artefact, device
    /// fault and device event with its bed, kind, start, end and severity.
    #[arg(long)]
    pub truth: bool,
}

fn load_scenario(a: &ScenarioArgs) -> Result<Scenario, String> {
    let mut s = Scenario::load(&a.scenario).map_err(|e| e.to_string())?;
    if let Some(b) = a.beds {
        // Scripted events beyond the new bed count are dropped.
        s = s.with_beds(b);
        s.validate().map_err(|e| format!("--beds: {e}"))?;
    }
    if let Some(d) = a.duration {
        s.duration = Some(d);
    }
    Ok(s)
}

fn resolve(what: &str, a: &str) -> Result<SocketAddr, String> {
    a.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("--{what} {a:?} is not a host:port that resolves"))
}

/// Parses the command line, runs the command, maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match cli.command {
        Some(Command::Scenarios) => {
            for (name, _) in BUILTIN {
                let s = Scenario::builtin(name);
                println!("{name:24} {} beds  {}", s.beds, s.description);
            }
            ExitCode::SUCCESS
        }
        Some(Command::Secret { device, secret_key }) => {
            println!("{}", secret_for(&secret_key, &device));
            ExitCode::SUCCESS
        }
        Some(Command::Dump(a)) => dump(&a),
        Some(Command::Flood(a)) => flood_cmd(a),
        Some(Command::Run(a)) => run_cmd(a),
        None => run_cmd(cli.run),
    }
}

fn dump(a: &DumpArgs) -> ExitCode {
    let s = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ward-sim: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let until = s.duration.unwrap_or(Duration::from_secs(60)).as_millis() as u64;
    let mut ward = Ward::new(s, a.scenario.seed);
    let time = TimeBase {
        epoch_ms: a.epoch_ms,
        speed: 1.0,
    };
    let devices = ward.devices().to_vec();
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.truth {
        while ward.now() < until {
            ward.next_second();
        }
        let report = crate::run::Report::truth_only(ward.truth().to_vec(), a.epoch_ms);
        let _ = out.write_all(report.truth_json_lines().as_bytes());
        return ExitCode::SUCCESS;
    }
    while ward.now() < until {
        for e in ward.next_second() {
            let d = &devices[e.device];
            let t = time.stamp(&e);
            let (channel, payload) = match &e.payload {
                Payload::Observations(r) => ("obs", encode::observations_json(r, t)),
                Payload::Status(st) => ("status", encode::status_json(d, st, t)),
                Payload::Event(ev) => ("event", encode::event_json(ev, t)),
                Payload::Garbage(g) => (
                    "garbage",
                    serde_json::to_vec(&String::from_utf8_lossy(g)).unwrap_or_default(),
                ),
                Payload::Disconnect => ("disconnect", b"null".to_vec()),
                Payload::Reconnect => ("reconnect", b"null".to_vec()),
            };
            let payload = String::from_utf8_lossy(&payload);
            if writeln!(
                out,
                r#"{{"at":{},"device":"{}","channel":"{channel}","payload":{payload}}}"#,
                e.at, d.id
            )
            .is_err()
            {
                return ExitCode::SUCCESS; // stdout closed (| head)
            }
        }
    }
    ExitCode::SUCCESS
}

fn run_cmd(a: RunArgs) -> ExitCode {
    let usage = |m: String| {
        eprintln!("ward-sim: {m}");
        ExitCode::from(EXIT_USAGE)
    };
    let scenario = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let mqtt = match resolve("mqtt", &a.mqtt) {
        Ok(m) => m,
        Err(e) => return usage(e),
    };
    let hl7 = match a.hl7.as_deref().map(|h| resolve("hl7", h)).transpose() {
        Ok(h) => h,
        Err(e) => return usage(e),
    };
    let mut speed = a.speed;
    if let Some(rate) = a.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return usage("--rate must be a positive number of points per second".into());
        }
        let natural = points_per_bed_second(&scenario) * scenario.beds as f64;
        speed = rate / natural.max(1e-9);
        eprintln!(
            "ward-sim: {} beds produce {natural:.0} points/s at 1x; running at {speed:.2}x for {rate:.0} points/s",
            scenario.beds
        );
    }
    let clinical = scenario.events.iter().any(|e| e.kind.is_clinical())
        || scenario.random.keys().any(|k| k.is_clinical());
    if speed != 1.0 && clinical {
        eprintln!(
            "ward-sim: warning: at {speed:.2}x the hub's alarm delays last {speed:.2}x longer in simulated time \
             (a 15 s delay spans {:.0} simulated s); divide the hub's delays by {speed:.2} for a faithful alarm run \
             (or use `wardhub bench alarm-quality`)",
            15.0 * speed
        );
    }
    let truth_file = a.truth.clone();
    let config = RunConfig {
        seed: a.scenario.seed,
        speed,
        duration: scenario.duration,
        targets: Targets {
            mqtt,
            hl7,
            http: Some(a.http.clone()),
        },
        registration: if a.no_register {
            Registration::Off
        } else {
            Registration::Required
        },
        token: a.token.clone(),
        secret_key: a.secret_key.clone(),
        progress: a.progress || a.rate.is_some(),
        scenario,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ward-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            on_signal.cancel();
        });
        match run(config, cancel).await {
            Ok(report) => {
                print!("{report}");
                if let Some(path) = truth_file {
                    if let Err(e) = std::fs::write(&path, report.truth_json_lines()) {
                        eprintln!("ward-sim: cannot write {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ward-sim: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn flood_cmd(a: FloodArgs) -> ExitCode {
    let mqtt = match resolve("mqtt", &a.mqtt) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("ward-sim: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let f = crate::flood::Flood {
        mqtt,
        prefix: a.prefix,
        steady: a.devices,
        floods: a.floods,
        canary: a.canary,
        obs_per_msg: a.obs_per_msg,
        flood_obs: a.flood_obs,
        inflight: a.inflight,
        level: a.level,
        duration: a.duration,
        http: a.http,
        subscribe: a.subscribe,
    };
    if a.list_devices {
        for id in crate::flood::device_ids(&f) {
            println!("{id}");
        }
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ward-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::flood::run(f)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ward-sim flood: {e:#}");
            ExitCode::FAILURE
        }
    }
}
