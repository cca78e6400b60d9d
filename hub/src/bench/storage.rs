//! `wardhub bench storage`: what the store costs on disk per observation and how fast its day
//! queries are.
//!
//! It writes `--beds` beds × 6 devices × a monitor's metrics at 1 Hz for `--minutes` of device
//! time straight into a [`SledStore`] (in batches of about a second of the ward, as the
//! pipeline writes them, folding every 10 s of device time as the hub's fold task does), and
//! one more bed with `--day-hours` of its monitor at 1 Hz; then flushes and reports the
//! database's size on disk per observation (every key: chunks, rollups, series, log, sled's
//! own overhead), and times the queries of the day bed (raw, one-minute) and the ward view
//! (latest values of every bed), each the median of 5 runs.

use std::collections::HashMap;
use std::time::Instant;

use clap::Args;
use wardhub_adapters::model::{metric_by_name, DeviceId, Observation, Status};

use crate::store::{Retention, SledStore, TimeRange};

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Beds (six devices each; the monitor reports five metrics, the others one).
    #[arg(long, default_value_t = 30)]
    pub beds: usize,
    /// Minutes of 1 Hz data to write.
    #[arg(long, default_value_t = 30)]
    pub minutes: usize,
    /// Hours of the day bed (`bed-day`: a monitor at 1 Hz, five metrics).
    #[arg(long, default_value_t = 24)]
    pub day_hours: usize,
    /// Write into this (new) directory and keep it, instead of a temporary one.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
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
    let tmp = tempfile::tempdir()?;
    let path = a.data_dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let store = SledStore::open(&path, 64 << 20, Retention::default())?;
    let now = wardhub_adapters::model::Clock::now_ms(&wardhub_adapters::model::SystemClock);
    let mut values: HashMap<(String, &'static str), f64> = HashMap::new();
    let mut rng = Lcg(7);
    let mut written = 0u64;
    let started = Instant::now();
    // The ward, then the day bed; each second of device time is one batch.
    let ward_t0 = now - (a.minutes as i64) * 60_000;
    let day_t0 = now - (a.day_hours as i64) * 3_600_000;
    let plan: Vec<(i64, usize, bool)> = vec![
        (ward_t0, a.minutes * 60, false),
        (day_t0, a.day_hours * 3600, true),
    ];
    for (t0, seconds, day) in plan {
        for sec in 0..seconds as i64 {
            let mut batch = Vec::with_capacity(a.beds * 10);
            let beds: Vec<String> = if day {
                vec!["bed-day".to_owned()]
            } else {
                (0..a.beds).map(|b| format!("bed-{b:03}")).collect()
            };
            for bed in &beds {
                for dev in 0..if day { 1 } else { 6 } {
                    let id = format!("{bed}-d{dev}");
                    let metrics: &[(&str, f64)] = if dev == 0 {
                        &MONITOR
                    } else {
                        &OTHERS[dev - 1..dev]
                    };
                    for (name, base) in metrics {
                        let v = values.entry((id.clone(), name)).or_insert(*base);
                        let r = rng.next();
                        if r % 7 == 0 {
                            *v += if r & 8 == 0 { 1.0 } else { -1.0 };
                        }
                        let t = t0 + sec * 1000 + (r % 17) as i64 - 8;
                        let received_at = t + 20 + ((r >> 8) % 15) as i64;
                        batch.push(Observation {
                            device_id: DeviceId::new(&id)?,
                            bed: Some(bed.clone()),
                            metric: metric_by_name(name).expect("a metric of the table"),
                            value: *v,
                            observed_at: t,
                            received_at,
                            status: Status::Valid,
                            channel: None,
                            clock_correction_ms: 0,
                        });
                    }
                }
            }
            written += batch.len() as u64;
            let s = store.clone();
            let fold_at = (sec % 10 == 9).then_some(t0 + sec * 1000);
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                s.write(&batch)?;
                if let Some(at) = fold_at {
                    s.fold(at)?;
                }
                Ok(())
            })
            .await??;
            // The hub flushes whenever a write waits for durability; here with each fold.
            if fold_at.is_some() {
                store.flush().await?;
            }
        }
    }
    let wrote_in = started.elapsed();
    {
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.fold(now + 10 * 60_000)).await??;
    }
    store.flush().await?;
    let stats = store.stats()?;
    let median = |f: &dyn Fn() -> anyhow::Result<usize>| -> anyhow::Result<(usize, f64)> {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            let q = Instant::now();
            n = f()?;
            times.push(q.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        Ok((n, times[2]))
    };
    let day = TimeRange {
        from: now - 24 * 3_600_000,
        to: now,
    };
    let (raw_all, raw_all_ms) = median(&|| {
        Ok(store
            .bed_observations("bed-day", day, 10_000_000)?
            .items
            .len())
    })?;
    let (raw_page, raw_page_ms) =
        median(&|| Ok(store.bed_observations("bed-day", day, 100_000)?.items.len()))?;
    let (raw_default, raw_default_ms) =
        median(&|| Ok(store.bed_observations("bed-day", day, 10_000)?.items.len()))?;
    let (rolled, roll_ms) =
        median(&|| Ok(store.bed_rollups("bed-day", day, 100_000)?.items.len()))?;
    let (one, one_ms) = median(&|| {
        Ok(store
            .device_observations("bed-day-d0", metric_by_name("hr"), day, 100_000)?
            .items
            .len())
    })?;
    let (ward, ward_ms) = median(&|| {
        let mut n = 0;
        for b in 0..a.beds {
            n += store.bed_latest(&format!("bed-{b:03}"))?.len();
        }
        Ok(n)
    })?;
    println!(
        "wrote {written} observations ({} beds × 6 devices for {} min, and one bed's monitor for {} h; 1 Hz) in {:.1} s ({:.0}/s)",
        a.beds,
        a.minutes,
        a.day_hours,
        wrote_in.as_secs_f64(),
        written as f64 / wrote_in.as_secs_f64()
    );
    println!(
        "  on disk            {:>12} bytes  {:>6.2} B/observation (every tree, sled overhead included)",
        stats.size_on_disk,
        stats.size_on_disk as f64 / written as f64
    );
    println!(
        "  chunks             {:>12} bytes  {:>6.2} B/observation ({} chunks); rollups {} bytes ({:.2} B/observation); append log {} bytes",
        stats.chunk_bytes,
        stats.chunk_bytes_per_observation.unwrap_or(0.0),
        stats.chunks,
        stats.rollup_bytes,
        stats.rollup_bytes as f64 / written as f64,
        stats.log_bytes
    );
    println!("  bed-day, 24 h      raw (all)   {raw_all} points in {raw_all_ms:.1} ms");
    println!("                     raw (page)  {raw_page} points in {raw_page_ms:.1} ms (limit 100,000, the API's maximum)");
    println!("                     raw (page)  {raw_default} points in {raw_default_ms:.1} ms (limit 10,000, the API's default)");
    println!("                     1-minute    {rolled} rollups in {roll_ms:.1} ms");
    println!("                     one metric  {one} points in {one_ms:.1} ms");
    println!(
        "  ward view          latest of {} beds ({ward} values) in {ward_ms:.2} ms",
        a.beds
    );
    Ok(())
}
