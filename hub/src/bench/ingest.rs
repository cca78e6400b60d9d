//! `bench ingest`: sustained MQTT JSON ingest from many devices.

use super::*;

pub(super) async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
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
