//! `wardhub bench`: reproducible load measurements whose figures go to BENCHMARKS.md.
//!
//! `bench ingest` starts a hub in-process (temporary data directory, loopback, port 0) unless
//! `--target` names a running one, connects `--devices` MQTT clients (rumqttc, QoS 1), has each
//! publish documents of `--obs-per-msg` observations at `--rate` documents per second, and
//! reports observations stored per second (from the hub's own counter), publish
//! acknowledgements, and the hub process's peak RSS.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::Hub;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Sustained MQTT JSON ingest from many devices.
    Ingest(IngestArgs),
}

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Simulated devices (one MQTT connection each).
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Documents per second per device.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Observations per document.
    #[arg(long, default_value_t = 6)]
    pub obs_per_msg: usize,
    /// How long to measure, after a warm-up of a quarter of it.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ingest(a) => ingest(a).await,
    }
}

const METRICS: [(&str, &str); 6] = [
    ("MDC_ECG_HEART_RATE", "/min"),
    ("MDC_PULS_OXIM_SAT_O2", "%"),
    ("MDC_PULS_OXIM_PULS_RATE", "/min"),
    ("MDC_RESP_RATE", "/min"),
    ("MDC_PRESS_BLD_NONINV_SYS", "mm[Hg]"),
    ("MDC_TEMP_BODY", "Cel"),
];

fn document(n: usize, t: i64, seq: u64) -> String {
    let mut s = String::from("{\"observations\":[");
    for i in 0..n {
        let (metric, unit) = METRICS[i % METRICS.len()];
        if i > 0 {
            s.push(',');
        }
        // Distinct times per observation keep every one a distinct stored point.
        let value = 60.0 + (seq % 30) as f64 * 0.5;
        let value = if metric == "MDC_TEMP_BODY" {
            37.0
        } else {
            value
        };
        s.push_str(&format!(
            "{{\"metric\":\"{metric}\",\"value\":{value},\"unit\":\"{unit}\",\"time\":{}}}",
            t + (i / METRICS.len()) as i64
        ));
    }
    s.push_str("]}");
    s
}

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.devices > 0 && a.rate > 0.0 && a.obs_per_msg > 0,
        "devices, rate and obs-per-msg must be positive"
    );
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let mut config = Config::default();
    config.hub.data_dir = dir.path().to_owned();
    config.mqtt.listen = "127.0.0.1:0".parse()?;
    config.http.listen = "127.0.0.1:0".parse()?;
    config.mqtt.max_connections = a.devices + 100;
    config.devices = (0..a.devices)
        .map(|i| crate::config::StaticDevice {
            id: format!("bench-{i:05}"),
            bed: format!("bed-{:04}", i / 6),
            ward: None,
            kind: None,
            secret_sha256: None,
        })
        .collect();
    let hub = Hub::start(config).await.context("starting the hub")?;
    let mqtt = hub.addresses.mqtt;
    println!(
        "bench ingest: {} devices x {} docs/s x {} obs = {:.0} obs/s offered, for {:?}",
        a.devices,
        a.rate,
        a.obs_per_msg,
        a.devices as f64 * a.rate * a.obs_per_msg as f64,
        a.duration
    );
    let stop = CancellationToken::new();
    let acked = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..a.devices {
        let id = format!("bench-{i:05}");
        let mut opts = MqttOptions::new(id.clone(), mqtt.ip().to_string(), mqtt.port());
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (stop2, acked2, published2) = (stop.clone(), acked.clone(), published.clone());
        let rate = a.rate;
        let n = a.obs_per_msg;
        tasks.push(tokio::spawn(async move {
            let topic = format!("wardhub/v1/devices/{id}/obs");
            let poller = {
                let stop = stop2.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            ev = eventloop.poll() => match ev {
                                Ok(Event::Incoming(Packet::PubAck(_))) => { acked2.fetch_add(1, Ordering::Relaxed); }
                                Ok(_) => {}
                                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                            },
                            _ = stop.cancelled() => break,
                        }
                    }
                })
            };
            // Spread the devices over the first period.
            let period = Duration::from_secs_f64(1.0 / rate);
            tokio::time::sleep(period.mul_f64((i % 1000) as f64 / 1000.0)).await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop2.cancelled() => break,
                }
                let t = wardhub_adapters::model::Clock::now_ms(&wardhub_adapters::model::SystemClock);
                seq += 1;
                if client.publish(topic.clone(), QoS::AtLeastOnce, false, document(n, t, seq)).await.is_err() {
                    break;
                }
                published2.fetch_add(1, Ordering::Relaxed);
            }
            let _ = client.disconnect().await;
            poller.abort();
        }));
    }
    let warmup = a.duration / 4;
    tokio::time::sleep(warmup).await;
    let stored0 = hub.telemetry.observations_stored.get();
    let acked0 = acked.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < a.duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(rss_kib());
    }
    let secs = started.elapsed().as_secs_f64();
    let stored = hub.telemetry.observations_stored.get() - stored0;
    let acks = acked.load(Ordering::Relaxed) - acked0;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let rejects: u64 = wardhub_adapters::model::RejectReason::ALL
        .iter()
        .map(|r| {
            hub.telemetry
                .rejects
                .with_label_values(&["mqtt_json", r.as_str()])
                .get()
        })
        .sum();
    hub.shutdown().await;
    println!("results over {secs:.1} s (after {warmup:?} warm-up):");
    println!("  observations stored/s : {:.0}", stored as f64 / secs);
    println!("  documents acked/s     : {:.0}", acks as f64 / secs);
    println!(
        "  documents published   : {}",
        published.load(Ordering::Relaxed)
    );
    println!("  rejects               : {rejects}");
    println!(
        "  peak RSS (hub + load generator, one process): {} MiB",
        peak_rss / 1024
    );
    Ok(())
}

/// Resident set size of this process, KiB (Linux), 0 elsewhere.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
