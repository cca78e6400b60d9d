//! `wardhub bench storage`: what the store costs on disk per observation, and what the chunk
//! format (`store/chunk.rs`, `docs/STORAGE.md`) would take for the same samples.
//!
//! It writes `--beds` beds × 6 devices × a monitor's metrics at 1 Hz for `--minutes` of device
//! time straight into a [`SledStore`] (in batches of about a second of the ward, as the
//! pipeline writes them), flushes, and reports the database's size on disk per observation,
//! then encodes the same samples as 10-minute chunks per series and reports their bytes per
//! observation. It also times a bed's raw and one-minute queries over the written span.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Args;
use wardhub_adapters::model::{metric_by_name, DeviceId, Observation, Status};

use crate::store::chunk::{self, Sample};
use crate::store::{Retention, SledStore, TimeRange, TimeSeriesStore};

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Beds (six devices each; the monitor reports five metrics, the others one).
    #[arg(long, default_value_t = 30)]
    pub beds: usize,
    /// Minutes of 1 Hz data to write.
    #[arg(long, default_value_t = 30)]
    pub minutes: usize,
    /// Samples per chunk span (10 minutes at 1 Hz).
    #[arg(long, default_value_t = 600)]
    pub chunk_samples: usize,
}

const MONITOR: [(&str, f64); 5] = [
    ("hr", 72.0),
    ("spo2", 97.0),
    ("rr", 16.0),
    ("temp", 37.0),
    ("pr", 72.0),
];
const OTHERS: [(&str, f64); 5] = [
    ("spo2", 96.0),
    ("hr", 70.0),
    ("rr", 14.0),
    ("temp", 36.8),
    ("pr", 70.0),
];

/// A deterministic pseudo-random stream (the same ward every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

pub async fn run(a: StorageArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(
        dir.path(),
        64 << 20,
        Retention {
            raw: Duration::from_secs(72 * 3600),
            rollup: Duration::from_secs(30 * 86400),
        },
    )?;
    let t0 = wardhub_adapters::model::Clock::now_ms(&wardhub_adapters::model::SystemClock)
        - (a.minutes as i64) * 60_000;
    // Series: (device, metric) → (value, samples).
    let mut series: BTreeMap<(String, &'static str), (f64, Vec<Sample>)> = BTreeMap::new();
    let mut rng = Lcg(7);
    let mut written = 0u64;
    let started = Instant::now();
    for sec in 0..(a.minutes * 60) as i64 {
        let mut batch = Vec::with_capacity(a.beds * 10);
        for bed in 0..a.beds {
            for dev in 0..6 {
                let id = format!("b{bed:03}-d{dev}");
                let metrics: &[(&str, f64)] = if dev == 0 {
                    &MONITOR
                } else {
                    &OTHERS[dev - 1..dev]
                };
                for (name, base) in metrics {
                    let e = series
                        .entry((id.clone(), name))
                        .or_insert_with(|| (*base, Vec::new()));
                    let r = rng.next();
                    if r % 7 == 0 {
                        e.0 += if r & 8 == 0 { 1.0 } else { -1.0 };
                    }
                    let t = t0 + sec * 1000 + (r % 17) as i64 - 8;
                    let received_at = t + 20 + ((r >> 8) % 15) as i64;
                    e.1.push(Sample {
                        t,
                        value: e.0,
                        status: Status::Valid,
                        received_at,
                    });
                    batch.push(Observation {
                        device_id: DeviceId::new(&id)?,
                        bed: Some(format!("bed-{bed:03}")),
                        metric: metric_by_name(name).expect("a metric of the table"),
                        value: e.0,
                        observed_at: t,
                        received_at,
                        status: Status::Valid,
                        channel: None,
                    });
                }
            }
        }
        written += batch.len() as u64;
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.write(&batch)).await??;
    }
    let wrote_in = started.elapsed();
    store.flush().await?;
    let disk = store.size_on_disk();
    let mut chunk_bytes = 0u64;
    let mut chunks = 0u64;
    for (_, samples) in series.values() {
        for c in samples.chunks(a.chunk_samples.max(1)) {
            chunk_bytes += chunk::encode(c)?.len() as u64;
            chunks += 1;
        }
    }
    let range = TimeRange {
        from: t0 - 60_000,
        to: t0 + (a.minutes as i64 + 1) * 60_000,
    };
    let q = Instant::now();
    let raw = store.bed_observations("bed-000", range, 10_000_000)?;
    let raw_ms = q.elapsed().as_secs_f64() * 1000.0;
    let q = Instant::now();
    let rolled = store.bed_rollups("bed-000", range, 10_000_000)?;
    let roll_ms = q.elapsed().as_secs_f64() * 1000.0;
    println!(
        "wrote {written} observations ({} beds × 6 devices, {} min at 1 Hz) in {:.1} s ({:.0}/s)",
        a.beds,
        a.minutes,
        wrote_in.as_secs_f64(),
        written as f64 / wrote_in.as_secs_f64()
    );
    println!(
        "  sled store today   {:>12} bytes on disk  {:>7.1} B/observation (raw, bed index, latest, rollups)",
        disk,
        disk as f64 / written as f64
    );
    println!(
        "  chunk format v1    {:>12} bytes          {:>7.2} B/observation ({chunks} chunks of ≤ {} samples; samples only)",
        chunk_bytes,
        chunk_bytes as f64 / written as f64,
        a.chunk_samples
    );
    println!(
        "  bed-000 queries    raw {} points in {raw_ms:.1} ms; 1-minute {} rollups in {roll_ms:.1} ms",
        raw.items.len(),
        rolled.items.len()
    );
    Ok(())
}
