//! `bench uplink`: the uplink at the hub's ingest rate, against a real broker the caller runs
//! (`tests/bench/uplink.sh` starts a 3-node NATS JetStream cluster).
//!
//! In one run: (1) ingest with the uplink off, then (2) the same load with the uplink on
//! (through a loopback TCP proxy the bench controls) and a `wardhub hospital` view on the
//! broker: observations/s stored and delivered to a subscriber of the cluster, the ratio of
//! the two ingest rates, and ward alarm → hospital view latency; (3) the proxy refuses the
//! broker for `--outage` while the load goes on, then lets it back: the backlog and how fast
//! it drains.

use std::net::SocketAddr;

use super::*;
use crate::uplink::envelope::{Envelope, Kind};

#[derive(Debug, Clone, Args)]
pub struct UplinkArgs {
    /// The cluster broker (mqtt://host:port) the uplink and the hospital view use.
    #[arg(long, value_parser = crate::uplink::config::ServerUrl::parse)]
    pub broker: crate::uplink::config::ServerUrl,
    #[arg(long, default_value_t = 180)]
    pub devices: usize,
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 6)]
    pub obs_per_msg: usize,
    /// Each ingest measurement (after a warm-up of a quarter of it).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long the broker is away in phase 3 (0: no outage phase).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub outage: Duration,
    /// uplink.max_messages_per_second.
    #[arg(long, default_value_t = 500)]
    pub drain_rate: u32,
}

/// A loopback TCP proxy to the broker that can be switched off (connections cut, new ones
/// closed at once): an outage the bench controls.
struct Proxy {
    addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watch = watch.clone();
                if !*watch.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, up })
    }
}

/// Counts what a subscriber of the cluster receives: observations and messages.
fn subscriber(broker: SocketAddr, observations: Arc<AtomicU64>, stop: CancellationToken) {
    let mut opts = MqttOptions::new("bench-downstream", broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut events) = AsyncClient::new(opts, 256);
    tokio::spawn(async move {
        let _ = client
            .subscribe(crate::uplink::envelope::Topics::ALL, QoS::AtMostOnce)
            .await;
        loop {
            tokio::select! {
                ev = events.poll() => match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(e) = serde_json::from_slice::<Envelope>(&p.payload) {
                            if e.kind == Kind::Observations {
                                let n = e.body["observations"].as_array().map_or(0, Vec::len);
                                observations.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                },
                () = stop.cancelled() => return,
            }
        }
    });
}

fn gauge(hub: &Hub, name: &str) -> f64 {
    wardhub_sample(&hub.telemetry.render(), name).unwrap_or(f64::NAN)
}

fn wardhub_sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.starts_with(' ')
            .then(|| rest.trim().parse().ok())
            .flatten()
    })
}

/// Stored observations per second over `duration` after a quarter of it.
async fn measure(hub: &Hub, duration: Duration) -> f64 {
    tokio::time::sleep(duration / 4).await;
    let s0 = hub.telemetry.observations_stored.get();
    let t0 = Instant::now();
    tokio::time::sleep(duration).await;
    (hub.telemetry.observations_stored.get() - s0) as f64 / t0.elapsed().as_secs_f64()
}

pub(super) async fn uplink(a: UplinkArgs) -> anyhow::Result<()> {
    use std::net::ToSocketAddrs;
    let broker: SocketAddr = (a.broker.host.as_str(), a.broker.port)
        .to_socket_addrs()?
        .next()
        .context("the broker's address")?;
    let ids: Vec<String> = (0..a.devices).map(|i| format!("bench-{i:05}")).collect();
    println!(
        "bench uplink: {} devices x {} docs/s x {} obs = {:.0} obs/s offered; broker {}; drain rate {}/s",
        a.devices,
        a.rate,
        a.obs_per_msg,
        a.devices as f64 * a.rate * a.obs_per_msg as f64,
        a.broker,
        a.drain_rate
    );

    // 1. Uplink off.
    let off = {
        let dir = tempfile::tempdir()?;
        let hub = bench_hub(dir.path(), &ids, "[hub]\nward = \"bench\"\n").await?;
        let stop = CancellationToken::new();
        let (acked, published) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let tasks = load(&hub, &ids, a.rate, a.obs_per_msg, &stop, &acked, &published);
        let rate = measure(&hub, a.duration).await;
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        hub.shutdown().await;
        rate
    };
    println!("  uplink off: {off:.0} observations stored/s");

    // 2. Uplink on, a hospital view and a downstream subscriber on the broker.
    let proxy = Proxy::start(broker).await?;
    let view_dir = tempfile::tempdir()?;
    let token = crate::auth::new_secret();
    let view_config = crate::hospital::config::HospitalConfig::merged(
        &format!(
            "[hospital]\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[cluster]\nservers = [\"mqtt://{broker}\"]\n",
            view_dir.path().display()
        ),
        "bench",
    )?;
    let view = crate::hospital::Hospital::start(
        view_config,
        vec![("bench".into(), crate::auth::Role::Viewer, token.clone())],
    )
    .await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let stop_sub = CancellationToken::new();
    subscriber(broker, delivered.clone(), stop_sub.clone());
    let dir = tempfile::tempdir()?;
    let mut trigger_ids = ids.clone();
    trigger_ids.push("trigger".into());
    let overlay = format!(
        "[hub]\nward = \"bench\"\n\
         [[alarms.rules]]\nmetric = \"spo2\"\nlow = 90\npriority = \"high\"\ndelay = \"0s\"\nhysteresis = 1\n\
         [uplink]\nenabled = true\nsite = \"bench\"\nmax_messages_per_second = {}\n\
         [uplink.cluster]\nservers = [\"mqtt://{}\"]\n",
        a.drain_rate, proxy.addr
    );
    let hub = bench_hub(dir.path(), &trigger_ids, &overlay).await?;
    let stop = CancellationToken::new();
    let (acked, published) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks = load(&hub, &ids, a.rate, a.obs_per_msg, &stop, &acked, &published);
    tokio::time::sleep(a.duration / 4).await;
    let (s0, d0, f0) = (
        hub.telemetry.observations_stored.get(),
        delivered.load(Ordering::Relaxed),
        gauge(
            &hub,
            "wardhub_uplink_forwarded_total{kind=\"observations\"}",
        ),
    );
    let t0 = Instant::now();
    // Meanwhile: alarms raised and cleared every 2 s, timed to the hospital view.
    let (trigger, poller) = device(&hub, "trigger", acked.clone(), stop.clone());
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v1/hospital", view.addr);
    let mut latencies = Vec::new();
    let mut i = 0u64;
    while t0.elapsed() < a.duration {
        i += 1;
        let doc = format!(
            r#"{{"metric":"spo2","value":{}}}"#,
            if i % 2 == 1 { 80 } else { 97 }
        );
        trigger
            .publish(
                "wardhub/v1/devices/trigger/obs",
                QoS::AtLeastOnce,
                false,
                doc,
            )
            .await?;
        if i % 2 == 1 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                let snap: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                let now = SystemClock.now_ms();
                if let Some(since) = snap["alarms"]
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|a| a["since"].as_i64())
                {
                    latencies.push((now - since) as f64);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let on = (hub.telemetry.observations_stored.get() - s0) as f64 / secs;
    let down = (delivered.load(Ordering::Relaxed) - d0) as f64 / secs;
    let messages = (gauge(
        &hub,
        "wardhub_uplink_forwarded_total{kind=\"observations\"}",
    ) - f0)
        / secs;
    latencies.sort_by(f64::total_cmp);
    println!(
        "  uplink on : {on:.0} observations stored/s (ratio on/off {:.3})",
        on / off
    );
    println!("  delivered to a cluster subscriber: {down:.0} observations/s in {messages:.0} observation messages/s");
    println!(
        "  outbox at the end: {} messages, oldest {:.2} s",
        gauge(&hub, "wardhub_uplink_outbox_messages"),
        gauge(&hub, "wardhub_uplink_outbox_oldest_age_seconds")
    );
    println!(
        "  ward alarm -> hospital view (API polled every 5 ms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} alarms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    poller.abort();

    // 3. The broker away for `outage`, the load going on; then back.
    if !a.outage.is_zero() {
        let _ = proxy.up.send(false);
        println!("  outage: the broker is unreachable for {:?}", a.outage);
        let t = Instant::now();
        while t.elapsed() < a.outage {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let backlog = gauge(&hub, "wardhub_uplink_outbox_messages");
        let bytes = gauge(&hub, "wardhub_uplink_outbox_bytes");
        let age = gauge(&hub, "wardhub_uplink_outbox_oldest_age_seconds");
        let forwarded = |hub: &Hub| -> f64 {
            Kind::ALL
                .iter()
                .map(|k| {
                    gauge(
                        hub,
                        &format!("wardhub_uplink_forwarded_total{{kind=\"{}\"}}", k.as_str()),
                    )
                })
                .sum()
        };
        let fw0 = forwarded(&hub);
        let _ = proxy.up.send(true);
        let back = Instant::now();
        while gauge(&hub, "wardhub_uplink_outbox_oldest_age_seconds") > 5.0 {
            if back.elapsed() > Duration::from_secs(3600) {
                println!("  the backlog did not drain within an hour");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let took = back.elapsed().as_secs_f64();
        let sent = forwarded(&hub) - fw0;
        let dropped: f64 = ["full", "expired", "refused", "error"]
            .iter()
            .map(|r| {
                gauge(
                    &hub,
                    &format!("wardhub_uplink_dropped_total{{reason=\"{r}\"}}"),
                )
            })
            .sum();
        println!(
            "  backlog at reconnect: {backlog} messages, {:.1} MiB, oldest {age:.0} s",
            bytes / 1048576.0
        );
        println!(
            "  caught up (oldest < 5 s) {took:.1} s after the broker came back: {sent} messages sent, {:.0} messages/s; dropped {dropped}",
            sent / took
        );
    }
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    hub.shutdown().await;
    stop_sub.cancel();
    view.shutdown().await;
    Ok(())
}
