//! Exact publishers for load tests: each one records which of its messages the hub
//! acknowledged (by packet id), so a test can check that every acknowledged observation is
//! stored, per device and per time stamp.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::raw::{connect_packet, publish_packet, whole, Opts};

/// What one exact publisher did.
#[derive(Debug, Clone, Default)]
pub struct Exact {
    pub device: String,
    pub obs_per_message: u32,
    /// First observation time; message `n` holds `t0 + n * obs_per_message + k`.
    pub t0: i64,
    pub sent: u64,
    /// Sequence numbers of acknowledged messages.
    pub acked: Vec<u64>,
    /// PUBACK latency of each acknowledged message.
    pub latencies: Vec<Duration>,
    /// Whether the connection was lost before the end.
    pub lost: bool,
}

impl Exact {
    /// Time stamps of every acknowledged observation.
    pub fn acked_times(&self) -> HashSet<i64> {
        let k = i64::from(self.obs_per_message);
        self.acked
            .iter()
            .flat_map(|n| (0..k).map(move |i| self.t0 + *n as i64 * k + i))
            .collect()
    }

    /// The `q` quantile (0..=1) of the PUBACK latency.
    pub fn latency(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l[((l.len() - 1) as f64 * q).round() as usize]
    }
}

/// How an exact publisher sends.
#[derive(Debug, Clone)]
pub struct Plan {
    pub device: String,
    pub level: u8,
    pub obs_per_message: u32,
    pub t0: i64,
    /// Unacknowledged messages it keeps in flight (more than the hub's receive maximum
    /// tests that a 3.1.1 client is slowed, not dropped).
    pub inflight: usize,
    /// `None`: as fast as acknowledgements allow; else one message per interval.
    pub every: Option<Duration>,
    pub run_for: Duration,
    /// How long to wait for the last acknowledgements after sending stops.
    pub settle: Duration,
}

fn document(plan: &Plan, n: u64) -> Vec<u8> {
    let k = i64::from(plan.obs_per_message);
    let mut s = String::with_capacity(plan.obs_per_message as usize * 60 + 20);
    s.push_str("{\"observations\":[");
    for i in 0..k {
        if i > 0 {
            s.push(',');
        }
        let t = plan.t0 + n as i64 * k + i;
        let v = 90 + (t % 10);
        s.push_str(&format!(
            "{{\"metric\":\"spo2\",\"value\":{v},\"time\":{t}}}"
        ));
    }
    s.push_str("]}");
    s.into_bytes()
}

/// Connects and publishes at QoS 1 according to `plan`; returns what was acknowledged.
pub async fn exact_publisher(addr: SocketAddr, plan: Plan) -> Exact {
    let mut report = Exact {
        device: plan.device.clone(),
        obs_per_message: plan.obs_per_message,
        t0: plan.t0,
        ..Exact::default()
    };
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        report.lost = true;
        return report;
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut o = Opts::new(plan.level, &plan.device);
    o.keep_alive = 0;
    if wr.write_all(&connect_packet(&o)).await.is_err() {
        report.lost = true;
        return report;
    }
    // pkid -> (sequence number, sent at)
    let pending: Arc<Mutex<HashMap<u16, (u64, Instant)>>> = Arc::default();
    let window = Arc::new(tokio::sync::Semaphore::new(0));
    let acked: Arc<Mutex<Vec<(u64, Duration)>>> = Arc::default();
    let reader = {
        let (pending, window, acked) = (pending.clone(), window.clone(), acked.clone());
        let inflight = plan.inflight;
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut connected = false;
            loop {
                while let Some(n) = whole(&buf) {
                    let p: Vec<u8> = buf.drain(..n).collect();
                    match p[0] >> 4 {
                        2 => {
                            connected = p.get(3) == Some(&0);
                            window.add_permits(inflight);
                        }
                        4 => {
                            let pkid = u16::from_be_bytes([p[2], p[3]]);
                            let code = p.get(4).copied().unwrap_or(0);
                            if let Some((n, at)) = pending.lock().unwrap().remove(&pkid) {
                                if code == 0 {
                                    acked.lock().unwrap().push((n, at.elapsed()));
                                }
                                window.add_permits(1);
                            }
                        }
                        _ => {}
                    }
                }
                let mut chunk = [0u8; 16384];
                match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => return connected,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
    };
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < plan.run_for {
        let Ok(Ok(permit)) = tokio::time::timeout(
            plan.run_for.saturating_sub(start.elapsed()) + Duration::from_millis(1),
            window.acquire(),
        )
        .await
        else {
            break;
        };
        permit.forget();
        let pkid = (n % 65_535) as u16 + 1;
        pending.lock().unwrap().insert(pkid, (n, Instant::now()));
        let p = publish_packet(
            plan.level,
            1,
            false,
            pkid,
            &format!("wardhub/v1/devices/{}/obs", plan.device),
            &document(&plan, n),
        );
        if wr.write_all(&p).await.is_err() {
            report.lost = true;
            break;
        }
        n += 1;
        if let Some(every) = plan.every {
            tokio::time::sleep(every).await;
        }
    }
    report.sent = n;
    let deadline = Instant::now() + plan.settle;
    while !pending.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = wr.write_all(&[0xE0, 0]).await;
    drop(wr);
    reader.abort();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    report.acked = acked.iter().map(|(n, _)| *n).collect();
    report.latencies = acked.iter().map(|(_, l)| *l).collect();
    report
}

/// Every stored time stamp of `device` (one metric, raw), read from a stopped hub's data
/// directory.
pub fn stored_times(data_dir: &Path, device: &str) -> HashSet<i64> {
    use wardhub::store::{Retention, SledStore, TimeRange, TimeSeriesStore};
    let store = SledStore::open(
        data_dir,
        64 << 20,
        Retention {
            raw: Duration::from_secs(72 * 3600),
            rollup: Duration::from_secs(30 * 86400),
        },
    )
    .expect("store opens");
    let page = store
        .device_observations(
            device,
            None,
            TimeRange {
                from: 0,
                to: i64::MAX,
            },
            100_000_000,
        )
        .expect("query");
    page.items.iter().map(|o| o.observed_at).collect()
}

/// The acknowledged observations of `e` that are not stored.
pub fn missing(e: &Exact, stored: &HashSet<i64>) -> Vec<i64> {
    let mut m: Vec<i64> = e.acked_times().difference(stored).copied().collect();
    m.sort();
    m
}
