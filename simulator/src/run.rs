//! The runner: a [`Ward`] paced in (scaled) real time over the transports.
//!
//! Simulated time runs `speed` times faster than the wall clock. Timestamps are compressed by
//! the same factor (see [`TimeBase`]), so the hub always sees data stamped near its own time.
//!
//! Time compression and alarms: the hub times its alarm delays in its own time. At speed N a
//! 15 s delay spans 15·N simulated seconds, so a simulated 60 s desaturation that alarms at 1×
//! may not alarm at 10×. For an alarm run, run at 1× or divide the hub's delays (and
//! `technical.offline_after`, escalation times) by N; ward-sim warns when the speed is not 1.
//! `wardhub bench alarm-quality` runs the engine on simulated time directly.
//!
//! This file is the configuration and the run itself; `report` is what a run did ([`Report`],
//! re-exported here).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::encode::{self, TimeBase};
use crate::scenario::Scenario;
use crate::transport::register::{register_all, RegisterError};
use crate::transport::{hl7, mqtt, secret_for, Command, Stats};
use crate::ward::{Payload, Protocol, Ward};

mod report;

use report::latency;
pub use report::{Latency, Report};

/// Where the hub is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub mqtt: SocketAddr,
    /// The hub's HL7/MLLP listener; without it HL7 devices speak MQTT JSON.
    pub hl7: Option<SocketAddr>,
    /// The hub's HTTP base URL (`http://127.0.0.1:8080`), for registration.
    pub http: Option<String>,
}

/// Registration on start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Don't register (`--no-register`).
    Off,
    /// Register; an error (other than "no registry") stops the run.
    Required,
    /// Register; an error is logged and the run carries on (the demo).
    BestEffort,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    pub seed: u64,
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Simulated time after which the run stops (default: the scenario's, else never).
    pub duration: Option<Duration>,
    pub targets: Targets,
    pub registration: Registration,
    pub token: Option<String>,
    /// Key the device secrets are derived from ([`secret_for`]).
    pub secret_key: String,
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

impl RunConfig {
    pub fn new(scenario: Scenario, targets: Targets) -> RunConfig {
        RunConfig {
            scenario,
            seed: 1,
            speed: 1.0,
            duration: None,
            targets,
            registration: Registration::Required,
            token: None,
            secret_key: DEFAULT_SECRET_KEY.into(),
            progress: false,
        }
    }
}

/// The default key device secrets are derived from.
pub const DEFAULT_SECRET_KEY: &str = "ward-sim-insecure-default-key";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error("speed must be a positive number")]
    BadSpeed,
}

/// A run in the background.
#[derive(Debug)]
pub struct Running {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<Report, RunError>>,
}

impl Running {
    /// Stops the run (devices finish what is in flight and disconnect) and returns its report.
    pub async fn stop(self) -> Result<Report, RunError> {
        self.cancel.cancel();
        match self.task.await {
            Ok(r) => r,
            Err(e) => panic!("ward-sim runner panicked: {e}"),
        }
    }
}

/// Starts [`run`] on a task.
pub fn spawn(config: RunConfig) -> Running {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(config, cancel.clone()));
    Running { cancel, task }
}

/// Runs until the duration has been simulated or `cancel` fires.
pub async fn run(config: RunConfig, cancel: CancellationToken) -> Result<Report, RunError> {
    if !(config.speed.is_finite() && config.speed > 0.0) {
        return Err(RunError::BadSpeed);
    }
    let duration = config.duration.or(config.scenario.duration);
    let mut ward = Ward::new(config.scenario.clone(), config.seed);
    let devices = ward.devices().to_vec();
    let secrets: Vec<String> = devices
        .iter()
        .map(|d| secret_for(&config.secret_key, &d.id))
        .collect();

    let mut registered = None;
    if let (Some(http), true) = (
        &config.targets.http,
        config.registration != Registration::Off,
    ) {
        match register_all(http, config.token.as_deref(), &devices, &secrets).await {
            Ok(r) => registered = Some(r),
            Err(e) if config.registration == Registration::BestEffort => {
                tracing::warn!(error = %e, "ward-sim: registration failed; carrying on");
            }
            Err(e) => return Err(e.into()),
        }
    }

    if config.targets.hl7.is_none() && devices.iter().any(|d| d.protocol == Protocol::Hl7Mllp) {
        tracing::warn!(
            "ward-sim: no HL7 address given: the scenario's HL7 devices speak MQTT JSON"
        );
    }
    let stats = Arc::new(Stats::default());
    let mut tasks = JoinSet::new();
    let mut senders = Vec::with_capacity(devices.len());
    let mut hl7_of = Vec::with_capacity(devices.len());
    let grace = Duration::from_secs(3);
    for (d, secret) in devices.iter().zip(&secrets) {
        let (tx, rx) = mpsc::channel(256);
        senders.push(tx);
        let on_hl7 = d.protocol == Protocol::Hl7Mllp && config.targets.hl7.is_some();
        hl7_of.push(on_hl7);
        match (on_hl7, config.targets.hl7) {
            (true, Some(addr)) => {
                tasks.spawn(hl7::run_device(d.id.clone(), addr, rx, stats.clone()));
            }
            _ => {
                tasks.spawn(mqtt::run_device(
                    d.id.clone(),
                    secret.clone(),
                    config.targets.mqtt,
                    rx,
                    stats.clone(),
                    grace,
                ));
            }
        }
    }

    let bar = if config.progress {
        let bar = match duration {
            Some(d) => ProgressBar::new(d.as_secs()),
            None => ProgressBar::new_spinner(),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} sim {pos}/{len} s  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let start = Instant::now();
    let time = TimeBase {
        epoch_ms: wardhub_adapters::model::Clock::now_ms(&wardhub_adapters::model::SystemClock),
        speed: config.speed,
    };
    let mut control = 0u64;
    'run: loop {
        if duration.is_some_and(|d| ward.now() >= d.as_millis() as u64) {
            break;
        }
        let batch = ward.next_second();
        for e in batch {
            let due = start + Duration::from_secs_f64(e.at as f64 / 1000.0 / config.speed);
            if due > Instant::now() {
                tokio::select! {
                    _ = cancel.cancelled() => break 'run,
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
            } else if cancel.is_cancelled() {
                break 'run;
            }
            let d = &devices[e.device];
            let stamp = time.stamp(&e);
            let cmd = match &e.payload {
                Payload::Observations(r) => {
                    Stats::add(&stats.points, r.len() as u64);
                    if hl7_of[e.device] {
                        control += 1;
                        let id = format!("{}-{control}", d.id);
                        Command::Send {
                            channel: "obs",
                            payload: encode::oru(d, r, stamp, &id),
                            points: r.len() as u32,
                        }
                    } else {
                        Command::Send {
                            channel: "obs",
                            payload: encode::observations_json(r, stamp),
                            points: r.len() as u32,
                        }
                    }
                }
                Payload::Status(s) => Command::Send {
                    channel: "status",
                    payload: encode::status_json(d, s, stamp),
                    points: 0,
                },
                Payload::Event(ev) => Command::Send {
                    channel: "event",
                    payload: encode::event_json(ev, stamp),
                    points: 0,
                },
                Payload::Garbage(g) => Command::Send {
                    channel: "obs",
                    payload: g.clone(),
                    points: 0,
                },
                Payload::Disconnect => Command::Drop,
                Payload::Reconnect => Command::Reconnect,
            };
            if senders[e.device].try_send(cmd).is_err() {
                Stats::add(&stats.dropped, 1);
            }
        }
        let sim_s = ward.now() / 1000;
        bar.set_position(sim_s);
        if sim_s % 5 == 0 {
            bar.set_message(format!(
                "sent {} acked {} refused {} errors {} dropped {}",
                Stats::get(&stats.sent),
                Stats::get(&stats.acked),
                Stats::get(&stats.refused),
                Stats::get(&stats.errors),
                Stats::get(&stats.dropped)
            ));
        }
    }
    let simulated = Duration::from_millis(ward.now());
    drop(senders);
    // Devices finish what is in flight (bounded by their grace time), then disconnect.
    let deadline = tokio::time::sleep(grace + Duration::from_secs(2));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = tasks.join_next() => if r.is_none() { break },
            _ = &mut deadline => {
                tasks.abort_all();
                break;
            }
        }
    }
    let wall = start.elapsed();
    bar.finish_and_clear();
    Ok(Report {
        devices: devices.len(),
        sent: Stats::get(&stats.sent),
        acknowledged: Stats::get(&stats.acked),
        refused: Stats::get(&stats.refused),
        errors: Stats::get(&stats.errors),
        dropped: Stats::get(&stats.dropped),
        points: Stats::get(&stats.points),
        queued: Stats::get(&stats.queued),
        unacknowledged: Stats::get(&stats.queued).saturating_sub(Stats::get(&stats.acked)),
        points_acked: Stats::get(&stats.points_acked),
        points_unacked: Stats::get(&stats.points_queued)
            .saturating_sub(Stats::get(&stats.points_acked)),
        simulated,
        wall,
        registered,
        mqtt_latency: latency(&stats.mqtt_latency),
        hl7_latency: latency(&stats.hl7_latency),
        truth: ward.truth().to_vec(),
        epoch_ms: time.epoch_ms,
        speed: config.speed,
    })
}

/// Numeric points per simulated second of one bed of `scenario` (measured over ten simulated
/// minutes), for turning a load rate into a speed.
pub fn points_per_bed_second(scenario: &Scenario) -> f64 {
    let mut one = scenario.clone();
    one.beds = 1;
    one.events.clear();
    let mut ward = Ward::new(one, 0);
    let points: usize = ward
        .step(600_000)
        .iter()
        .map(|e| match &e.payload {
            Payload::Observations(r) => r.len(),
            _ => 0,
        })
        .sum();
    points as f64 / 600.0
}
