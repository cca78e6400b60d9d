//! `wardhub bench`: reproducible load measurements whose figures go to BENCHMARKS.md.
//!
//! Every bench starts a hub in-process (temporary data directory, loopback, port 0) and drives
//! it with real clients over loopback, so the figures include the load generator's own CPU on
//! the same cores: they are what one machine does with everything on it.
//!
//! - `bench ingest`: `--devices` MQTT clients (rumqttc, QoS 1, each with its own password) each
//!   publish documents of `--obs-per-msg` observations at `--rate` documents per second; reports
//!   observations stored per second (the hub's own counter), PUBACKs, rejects and peak RSS.
//! - `bench alarms`: a background load of `--background` observations per second, plus one
//!   monitor whose SpO2 swings across the high-priority limit; reports publish → SSE announce
//!   latency percentiles of the alarm transitions, and rule evaluations per second.
//! - `bench hl7`: `--connections` MLLP clients each sending ORU^R01 messages one at a time
//!   (the next after the ACK AA, as MLLP senders do); reports messages and observations per
//!   second with durable acknowledgement and ACK latency percentiles.
//! - `bench storage` (`storage.rs`): bytes on disk per observation, today and in the chunk
//!   format.
//! - `bench alarm-quality` (`alarm_quality.rs`): the shipped scenarios through the alarm engine,
//!   classified against the simulator's ground truth, beside a naive-threshold baseline.
//! - `bench uplink` (`uplink.rs`): the uplink against a real broker: ingest with it off and on,
//!   observations delivered downstream, alarm → hospital view latency, drain after an outage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, SystemClock};

pub mod alarm_quality;
mod hl7;
mod ingest;
mod latency;
pub mod storage;
mod uplink;

use crate::config::{Config, StaticDevice};
use crate::server::Hub;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Sustained MQTT JSON ingest from many devices.
    Ingest(IngestArgs),
    /// Alarm latency (publish → SSE) under background load, and rule evaluations/s.
    Alarms(AlarmArgs),
    /// HL7 ORU^R01 over MLLP with durable ACKs.
    Hl7(Hl7Args),
    /// Bytes on disk per observation today, and in the chunk format, for a simulated ward.
    Storage(storage::StorageArgs),
    /// Alarm quality against the simulator's ground truth, and a naive-threshold baseline.
    AlarmQuality(alarm_quality::AlarmQualityArgs),
    /// The uplink to a real cluster broker: throughput, cost to ingest, drain after an
    /// outage, ward alarm → hospital view latency (tests/bench/uplink.sh).
    Uplink(uplink::UplinkArgs),
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

#[derive(Debug, Clone, Args)]
pub struct AlarmArgs {
    /// Background observations per second (spread over 500 devices).
    #[arg(long, default_value_t = 10_000)]
    pub background: usize,
    /// Alarm transitions to time.
    #[arg(long, default_value_t = 100)]
    pub events: usize,
}

#[derive(Debug, Clone, Args)]
pub struct Hl7Args {
    /// Concurrent MLLP connections.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// How long to measure.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ingest(a) => ingest::ingest(a).await,
        BenchCommand::Alarms(a) => latency::alarms(a).await,
        BenchCommand::Hl7(a) => hl7::hl7(a).await,
        BenchCommand::Storage(a) => storage::run(a).await,
        BenchCommand::AlarmQuality(a) => {
            tokio::task::spawn_blocking(move || alarm_quality::run(a)).await?
        }
        BenchCommand::Uplink(a) => uplink::uplink(a).await,
    }
}

const METRICS: [(&str, &str, f64); 6] = [
    ("MDC_ECG_HEART_RATE", "/min", 72.0),
    ("MDC_PULS_OXIM_SAT_O2", "%", 97.0),
    ("MDC_PULS_OXIM_PULS_RATE", "/min", 72.0),
    ("MDC_RESP_RATE", "/min", 16.0),
    ("MDC_PRESS_BLD_NONINV_SYS", "mm[Hg]", 120.0),
    ("MDC_TEMP_BODY", "Cel", 37.0),
];

/// A document of `n` observations at `t` (distinct times per repeated metric, so every one is
/// a distinct stored point), values in the normal range.
fn document(n: usize, t: i64, seq: u64) -> String {
    let mut s = String::from("{\"observations\":[");
    for i in 0..n {
        let (metric, unit, base) = METRICS[i % METRICS.len()];
        if i > 0 {
            s.push(',');
        }
        let value = base + (seq % 5) as f64 * 0.2;
        s.push_str(&format!(
            "{{\"metric\":\"{metric}\",\"value\":{value},\"unit\":\"{unit}\",\"time\":{}}}",
            t + (i / METRICS.len()) as i64
        ));
    }
    s.push_str("]}");
    s
}

fn secret(id: &str) -> String {
    format!("bench-secret-{id}-0123456789")
}

/// A hub on loopback port 0 in `dir` with `ids` bound (six per bed) and given passwords.
async fn bench_hub(dir: &std::path::Path, ids: &[String], overlay: &str) -> anyhow::Result<Hub> {
    let mut config = Config::merged(overlay, "bench")?;
    config.hub.data_dir = dir.to_owned();
    config.mqtt.listen = "127.0.0.1:0".parse()?;
    config.http.listen = "127.0.0.1:0".parse()?;
    config.set_hl7_listen("127.0.0.1:0".parse()?);
    config.metrics.listen = "127.0.0.1:0".parse()?;
    config.mqtt.max_connections = ids.len() + 100;
    // Every simulated device connects from this one host: the per-source caps (meant for
    // one attacker among many devices) are lifted to the run's size.
    config.mqtt.max_connections_per_source = ids.len() + 100;
    for a in &mut config.adapters {
        if let crate::config::AdapterConfig::Hl7Mllp(hl7) = a {
            hl7.max_connections_per_source = 100_000;
        }
    }
    config.devices = ids
        .iter()
        .enumerate()
        .map(|(i, id)| StaticDevice {
            id: id.clone(),
            bed: format!("bed-{:04}", i / 6),
            ward: None,
            kind: None,
            secret_sha256: Some(crate::auth::hex(&crate::auth::sha256(
                secret(id).as_bytes(),
            ))),
        })
        .collect();
    Hub::start(config).await.context("starting the hub")
}

/// An MQTT device connected with its password, its event loop polled, PUBACKs counted.
fn device(
    hub: &Hub,
    id: &str,
    acked: Arc<AtomicU64>,
    stop: CancellationToken,
) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mqtt = hub.addresses.mqtt;
    let mut opts = MqttOptions::new(id, mqtt.ip().to_string(), mqtt.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_credentials(id, secret(id));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let poller = tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = eventloop.poll() => match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => { acked.fetch_add(1, Ordering::Relaxed); }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                },
                _ = stop.cancelled() => break,
            }
        }
    });
    (client, poller)
}

/// Starts `ids.len()` devices publishing `n`-observation documents at `rate` per second each.
fn load(
    hub: &Hub,
    ids: &[String],
    rate: f64,
    n: usize,
    stop: &CancellationToken,
    acked: &Arc<AtomicU64>,
    published: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (client, poller) = device(hub, id, acked.clone(), stop.clone());
        let (stop, published, id) = (stop.clone(), published.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let topic = format!("wardhub/v1/devices/{id}/obs");
            let period = Duration::from_secs_f64(1.0 / rate);
            // Spread the devices over the first period.
            tokio::time::sleep(period.mul_f64((i % 1000) as f64 / 1000.0)).await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                seq += 1;
                let doc = document(n, SystemClock.now_ms(), seq);
                if client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, doc)
                    .await
                    .is_err()
                {
                    break;
                }
                published.fetch_add(1, Ordering::Relaxed);
            }
            let _ = client.disconnect().await;
            poller.abort();
        }));
    }
    tasks
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
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
