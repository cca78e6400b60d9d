//! `bench alarms`: publish → SSE announce latency of alarm transitions under background
//! load, and rule evaluations per second.

use super::*;

pub(super) async fn alarms(a: AlarmArgs) -> anyhow::Result<()> {
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
