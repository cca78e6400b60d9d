//! `ward-sim flood`: overload with exact accounting, the same against any MQTT broker.
//!
//! Steady devices publish `--obs-per-msg` observations per message as fast as their
//! acknowledgements allow (`--inflight` unacknowledged each), flooding devices do the same with
//! `--flood-obs` observations per message, and a canary sends one message a second. Every
//! PUBACK is recorded. Then what was kept is checked per device and per time stamp:
//!
//! - `--http URL` (a wardhub): every acknowledged observation must be readable from the hub's
//!   API (`GET /api/v1/devices/{id}/observations`);
//! - `--subscribe` (any broker, e.g. mosquitto): a QoS 1 subscriber to the devices' topics,
//!   started first, counts what the broker delivered.
//!
//! The report gives offered, acknowledged, kept and missing observations, the kept rate, and
//! PUBACK latency of the flooding, steady and canary devices.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wardhub_adapters::model::Clock;

use crate::exact::{exact_publisher, first_time, quantile, Exact, Plan};

/// What to run.
#[derive(Debug, Clone)]
pub struct Flood {
    pub mqtt: SocketAddr,
    pub prefix: String,
    pub steady: usize,
    pub floods: usize,
    pub canary: bool,
    pub obs_per_msg: u32,
    pub flood_obs: u32,
    pub inflight: usize,
    pub level: u8,
    pub duration: Duration,
    pub http: Option<String>,
    pub subscribe: bool,
}

/// The device ids a run uses (to register them first).
pub fn device_ids(f: &Flood) -> Vec<String> {
    let mut ids: Vec<String> = (1..=f.floods)
        .map(|i| format!("{}-flood-{i}", f.prefix))
        .collect();
    ids.extend((1..=f.steady).map(|i| format!("{}-dev-{i}", f.prefix)));
    if f.canary {
        ids.push(format!("{}-canary", f.prefix));
    }
    ids
}

/// Everything delivered to a subscriber: device → first observation times.
type Delivered = Arc<Mutex<HashMap<String, HashSet<i64>>>>;

async fn subscriber(
    addr: SocketAddr,
    prefix: &str,
) -> (Delivered, Arc<Mutex<Instant>>, tokio::task::JoinHandle<()>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(
        format!("{prefix}-subscriber"),
        addr.ip().to_string(),
        addr.port(),
    );
    opts.set_max_packet_size(1 << 24, 1 << 24);
    opts.set_keep_alive(Duration::from_secs(60));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let delivered: Delivered = Arc::default();
    let last = Arc::new(Mutex::new(Instant::now()));
    let (d, l) = (delivered.clone(), last.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let task = tokio::spawn(async move {
        let _keep = client.clone();
        let _ = client
            .subscribe("wardhub/v1/devices/+/obs", QoS::AtLeastOnce)
            .await;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = p.topic.clone();
                    let device = topic.split('/').nth(3).unwrap_or("").to_owned();
                    if let Some(t) = first_time(&p.payload) {
                        d.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(device)
                            .or_default()
                            .insert(t);
                    }
                    *l.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "subscriber connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
    (delivered, last, task)
}

/// Times of `device` readable from a wardhub's API between `from` and `to`.
async fn stored_via_api(
    http: &str,
    device: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<HashSet<i64>> {
    let client = reqwest::Client::new();
    let mut out = HashSet::new();
    let step = 50_000;
    let mut at = from;
    while at < to {
        let url = format!(
            "{http}/api/v1/devices/{device}/observations?from={at}&to={}&resolution=raw&limit=100000",
            at + step
        );
        // Reads need a login: the token in WARDHUB_TOKEN (any role).
        let mut req = client.get(&url);
        if let Ok(t) = std::env::var("WARDHUB_TOKEN") {
            req = req.bearer_auth(t.trim());
        }
        let body: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
        for o in body["observations"].as_array().into_iter().flatten() {
            if let Some(t) = o["observed_at"]
                .as_str()
                .and_then(wardhub_adapters::model::parse_rfc3339)
            {
                out.insert(t);
            }
        }
        at += step;
    }
    Ok(out)
}

/// Runs the flood and prints the report; `Err` when an acknowledged observation is missing.
pub async fn run(f: Flood) -> anyhow::Result<()> {
    // One millisecond between observations: far enough back that no time is in the future.
    let t0 = wardhub_adapters::model::SystemClock.now_ms() - 70 * 3600 * 1000;
    let sub = if f.subscribe {
        Some(subscriber(f.mqtt, &f.prefix).await)
    } else {
        None
    };
    let mut tasks = Vec::new();
    let mut plan = |id: String, obs: u32, role: &'static str| {
        let mut p = Plan::new(&id, t0, obs, f.inflight, f.duration);
        p.level = f.level;
        p.settle = Duration::from_secs(120);
        if role == "canary" {
            p.every = Some(Duration::from_secs(1));
            p.inflight = 1;
            p.t0 = t0 - 3_600_000;
        }
        tasks.push((role, tokio::spawn(exact_publisher(f.mqtt, p))));
    };
    for i in 1..=f.floods {
        plan(format!("{}-flood-{i}", f.prefix), f.flood_obs, "flood");
    }
    for i in 1..=f.steady {
        plan(format!("{}-dev-{i}", f.prefix), f.obs_per_msg, "steady");
    }
    if f.canary {
        plan(format!("{}-canary", f.prefix), 1, "canary");
    }
    let started = Instant::now();
    let mut reports: Vec<(&str, Exact)> = Vec::new();
    for (role, t) in tasks {
        reports.push((role, t.await?));
    }
    let wall = started.elapsed();
    let obs = |r: &Exact, n: u64| n * u64::from(r.obs_per_message);
    let offered: u64 = reports.iter().map(|(_, r)| obs(r, r.sent)).sum();
    let acked: u64 = reports
        .iter()
        .map(|(_, r)| obs(r, r.acked.len() as u64))
        .sum();
    let refused: u64 = reports.iter().map(|(_, r)| obs(r, r.refused)).sum();
    let unacked_msgs: u64 = reports
        .iter()
        .map(|(_, r)| r.sent - r.acked.len() as u64 - r.refused)
        .sum();
    println!(
        "flood: {} devices for {:.1} s (QoS 1, MQTT {}, {} in flight each)",
        reports.len(),
        wall.as_secs_f64(),
        if f.level == 5 { "5" } else { "3.1.1" },
        f.inflight
    );
    println!(
        "  offered        {offered:>12} observations ({:.0}/s)",
        offered as f64 / wall.as_secs_f64()
    );
    println!("  acknowledged   {acked:>12} observations");
    println!("  refused        {refused:>12} observations (MQTT 5 error reason codes)");
    println!("  never acked    {unacked_msgs:>12} messages");
    for role in ["flood", "steady", "canary"] {
        let l: Vec<Duration> = reports
            .iter()
            .filter(|(r, _)| *r == role)
            .flat_map(|(_, e)| e.latencies.iter().copied())
            .collect();
        if !l.is_empty() {
            println!(
                "  PUBACK {role:7} p50 {:>9.2} ms  p99 {:>9.2} ms  max {:>9.2} ms  (n={})",
                quantile(&l, 0.5).as_secs_f64() * 1000.0,
                quantile(&l, 0.99).as_secs_f64() * 1000.0,
                quantile(&l, 1.0).as_secs_f64() * 1000.0,
                l.len()
            );
        }
    }
    let mut kept_total = 0u64;
    let mut missing_total = 0u64;
    let kept_of = |r: &Exact, kept: &HashSet<i64>| -> (u64, u64) {
        let want = r.acked_times();
        let missing = want.difference(kept).count() as u64;
        (kept.len() as u64, missing)
    };
    if let Some(http) = &f.http {
        for (_, r) in &reports {
            let to = r.t0 + (r.sent as i64 + 1) * i64::from(r.obs_per_message);
            let kept = stored_via_api(http, &r.device, r.t0, to).await?;
            let (k, m) = kept_of(r, &kept);
            kept_total += k;
            missing_total += m;
        }
        println!("  stored         {kept_total:>12} observations (read back from the hub's API)");
    }
    if let Some((delivered, last, task)) = sub {
        // Wait until the subscriber has heard nothing for 5 s.
        loop {
            let idle = last.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            if idle > Duration::from_secs(5) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        task.abort();
        let d = delivered.lock().unwrap_or_else(|e| e.into_inner());
        for (_, r) in &reports {
            // A delivered message carries all of its observations: compare by message (the
            // sets of observations of a fast broker run into hundreds of millions).
            let firsts = d.get(&r.device).cloned().unwrap_or_default();
            let seqs: HashSet<u64> = firsts.iter().filter_map(|t| r.message_of(*t)).collect();
            let k = u64::from(r.obs_per_message);
            kept_total += seqs.len() as u64 * k;
            missing_total += r.acked.iter().filter(|n| !seqs.contains(n)).count() as u64 * k;
        }
        println!("  delivered      {kept_total:>12} observations (to a QoS 1 subscriber)");
    }
    if f.http.is_some() || f.subscribe {
        println!(
            "  kept/s         {:>12.0} (over the sending time)",
            kept_total as f64 / f.duration.as_secs_f64()
        );
        println!("  MISSING        {missing_total:>12} acknowledged observations not kept");
        if missing_total > 0 {
            anyhow::bail!("{missing_total} acknowledged observations were not kept");
        }
    }
    Ok(())
}
