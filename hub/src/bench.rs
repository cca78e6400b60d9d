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
//! - `bench storage` (`bench_storage.rs`): bytes on disk per observation, today and in the chunk
//!   format.
//! - `bench alarm-quality` (`bench_alarms.rs`): the shipped scenarios through the alarm engine,
//!   classified against the simulator's ground truth, beside a naive-threshold baseline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, SystemClock};

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
    Storage(crate::bench_storage::StorageArgs),
    /// Alarm quality against the simulator's ground truth, and a naive-threshold baseline.
    AlarmQuality(crate::bench_alarms::AlarmQualityArgs),
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
        BenchCommand::Ingest(a) => ingest(a).await,
        BenchCommand::Alarms(a) => alarms(a).await,
        BenchCommand::Hl7(a) => hl7(a).await,
        BenchCommand::Storage(a) => crate::bench_storage::run(a).await,
        BenchCommand::AlarmQuality(a) => {
            tokio::task::spawn_blocking(move || crate::bench_alarms::run(a)).await?
        }
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

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.devices > 0 && a.rate > 0.0 && a.obs_per_msg > 0,
        "devices, rate and obs-per-msg must be positive"
    );
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let ids: Vec<String> = (0..a.devices).map(|i| format!("bench-{i:05}")).collect();
    let hub = bench_hub(dir.path(), &ids, "").await?;
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
    let tasks = load(&hub, &ids, a.rate, a.obs_per_msg, &stop, &acked, &published);
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
    let connections = hub.telemetry.mqtt_connections.get();
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
    println!("  MQTT connections held : {connections}");
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn alarms(a: AlarmArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let mut ids: Vec<String> = (0..500).map(|i| format!("bench-{i:05}")).collect();
    ids.push("trigger".into());
    let hub = bench_hub(dir.path(), &ids, "").await?;
    let stop = CancellationToken::new();
    let acked = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    // 500 devices x 2 documents/s x n observations = background.
    let n = (a.background / 1000).max(1);
    let tasks = load(&hub, &ids[..500], 2.0, n, &stop, &acked, &published);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Live stream.
    let url = format!("http://{}/api/v1/alarms/stream", hub.addresses.http);
    let mut resp = reqwest::get(&url).await.context("SSE")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let reader = tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let at = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                if block.contains("event: transition") {
                    let _ = tx.send((at, block));
                }
            }
        }
    });
    let (trigger, poller) = device(&hub, "trigger", acked.clone(), stop.clone());
    let evaluated0 = hub.telemetry.observations_stored.get();
    let started = Instant::now();
    let mut latencies = Vec::new();
    // SpO2 80 raises the high-priority desaturation at once; 97 clears it (hysteresis passed).
    for i in 0..a.events {
        let (value, want) = if i % 2 == 0 {
            (80, "\"raised\"")
        } else {
            (97, "\"cleared\"")
        };
        let doc = format!(r#"{{"metric":"spo2","value":{value}}}"#);
        let sent = Instant::now();
        trigger
            .publish(
                "wardhub/v1/devices/trigger/obs",
                QoS::AtLeastOnce,
                false,
                doc,
            )
            .await?;
        let deadline = sent + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((at, block))) if block.contains(want) => {
                    latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    break;
                }
                Ok(Some(_)) => continue,
                _ => anyhow::bail!("no {want} transition within 5 s"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let evaluated = hub.telemetry.observations_stored.get() - evaluated0;
    stop.cancel();
    poller.abort();
    reader.abort();
    for t in tasks {
        let _ = t.await;
    }
    hub.shutdown().await;
    latencies.sort_by(f64::total_cmp);
    println!(
        "bench alarms: background {} obs/s offered ({} devices), {} transitions timed",
        1000 * n,
        500,
        latencies.len()
    );
    println!(
        "  observations evaluated by the alarm engine/s : {:.0}",
        evaluated as f64 / secs
    );
    println!(
        "  publish -> SSE transition latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn hl7_message(control: &str, eui: &str, t: i64) -> Vec<u8> {
    let ts = {
        let secs = t.div_euclid(1000);
        let ms = t.rem_euclid(1000);
        let dt = time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}.{ms:03}+0000",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    };
    let msg = [
        format!("MSH|^~\\&|Gateway^{eui}^EUI-64|Hospital|WARDHUB|ICU|{ts}||ORU^R01^ORU_R01|{control}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"),
        "PV1||I|ICU^^bed^Hospital".to_owned(),
        format!("OBR|1|||182777000^monitoring of patient^SCT|||{ts}"),
        format!("OBX|1||69642^MDC_DEV_ANALY_SAT_O2_MDS^MDC|1.0.0.0|||||||X|||||||{eui}^^{eui}^EUI-64"),
        format!("OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||R|||{ts}"),
        format!("OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{ts}"),
        format!("OBX|4|NM|151562^MDC_RESP_RATE^MDC|1.3.1.151562|16|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||{ts}"),
        format!("OBX|5|NM|147842^MDC_ECG_HEART_RATE^MDC|1.3.1.147842|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{ts}"),
    ]
    .join("\r");
    let mut frame = vec![0x0b];
    frame.extend_from_slice(msg.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    frame
}

async fn hl7(a: Hl7Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.connections > 0, "connections must be positive");
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let ids: Vec<String> = (0..a.connections)
        .map(|i| format!("00B0{i:012X}"))
        .collect();
    let hub = bench_hub(dir.path(), &ids, "").await?;
    let addr = hub.addresses.hl7.context("the HL7 adapter is off")?;
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for eui in ids.clone() {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            let t0 = SystemClock.now_ms() - 3_600_000;
            let mut i = 0i64;
            while !stop.is_cancelled() {
                let sent = Instant::now();
                s.write_all(&hl7_message(&format!("M{i}"), &eui, t0 + i))
                    .await?;
                loop {
                    if let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                        let ack = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 2);
                        anyhow::ensure!(ack.contains("MSA|AA|"), "not AA: {ack}");
                        break;
                    }
                    let mut chunk = [0u8; 1024];
                    let n = s.read(&mut chunk).await?;
                    anyhow::ensure!(n > 0, "connection closed");
                    buf.extend_from_slice(&chunk[..n]);
                }
                lat.push(sent.elapsed().as_secs_f64() * 1000.0);
                i += 1;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    tokio::time::sleep(a.duration).await;
    stop.cancel();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    hub.shutdown().await;
    all.sort_by(f64::total_cmp);
    let secs = a.duration.as_secs_f64();
    println!(
        "bench hl7: {} connection(s), {:?}, 4 observations per message, ACK AA after flush",
        a.connections, a.duration
    );
    println!("  messages acked/s     : {:.0}", all.len() as f64 / secs);
    println!(
        "  observations/s       : {:.0}",
        all.len() as f64 * 4.0 / secs
    );
    println!(
        "  ACK latency ms       : p50 {:.1}  p99 {:.1}",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
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
