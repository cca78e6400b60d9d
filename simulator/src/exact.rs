//! Exact publishers: MQTT clients written at the byte level that record which of their
//! messages were acknowledged (by packet id), so that a test or a benchmark can check that
//! every acknowledged observation was stored — per device and per time stamp — and measure
//! PUBACK latency without a client library's queues in between.
//!
//! Message `n` of a publisher carries `obs_per_message` SpO2 observations timed
//! `t0 + n * obs_per_message + k` milliseconds (`k` from 0), so a time stamp names its
//! message.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A whole MQTT packet: first byte, remaining length, body.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// An MQTT string or binary field.
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A clean-session CONNECT without a will.
pub fn connect_packet(
    level: u8,
    client_id: &str,
    login: Option<(&str, &str)>,
    keep_alive: u16,
) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(level);
    body.push(if login.is_some() { 0xC2 } else { 0x02 });
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    put_str(&mut body, client_id.as_bytes());
    if let Some((u, p)) = login {
        put_str(&mut body, u.as_bytes());
        put_str(&mut body, p.as_bytes());
    }
    packet(0x10, &body)
}

/// A PUBLISH packet.
pub fn publish_packet(
    level: u8,
    qos: u8,
    dup: bool,
    pkid: u16,
    topic: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 8);
    put_str(&mut body, topic.as_bytes());
    if qos > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | if dup { 0x08 } else { 0 }, &body)
}

/// The length of the whole packet at the start of `buf`, when it is all there.
pub fn whole(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    let mut shift = 0;
    for i in 1..5 {
        let b = *buf.get(i)?;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let n = i + 1 + len;
            return (buf.len() >= n).then_some(n);
        }
        shift += 7;
    }
    None
}

/// What one exact publisher did.
#[derive(Debug, Clone, Default)]
pub struct Exact {
    pub device: String,
    pub obs_per_message: u32,
    pub t0: i64,
    pub sent: u64,
    /// Sequence numbers of the messages acknowledged with success.
    pub acked: Vec<u64>,
    /// Acknowledged with an MQTT 5 error reason code.
    pub refused: u64,
    /// PUBACK latency of each acknowledged message.
    pub latencies: Vec<Duration>,
    /// Whether the connection was refused or lost.
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

    /// The sequence number of the message that holds the observation at `t`.
    pub fn message_of(&self, t: i64) -> Option<u64> {
        let k = i64::from(self.obs_per_message.max(1));
        (t >= self.t0).then(|| ((t - self.t0) / k) as u64)
    }

    /// The `q` quantile (0..=1) of the PUBACK latency.
    pub fn latency(&self, q: f64) -> Duration {
        quantile(&self.latencies, q)
    }
}

/// The `q` quantile of some durations.
pub fn quantile(d: &[Duration], q: f64) -> Duration {
    let mut l = d.to_vec();
    l.sort();
    if l.is_empty() {
        return Duration::ZERO;
    }
    l[((l.len() - 1) as f64 * q).round() as usize]
}

/// How an exact publisher sends.
#[derive(Debug, Clone)]
pub struct Plan {
    pub device: String,
    pub level: u8,
    pub login: Option<(String, String)>,
    pub obs_per_message: u32,
    pub t0: i64,
    /// Unacknowledged messages it keeps in flight.
    pub inflight: usize,
    /// `None`: as fast as acknowledgements allow; else one message per interval.
    pub every: Option<Duration>,
    pub run_for: Duration,
    /// How long to wait for the last acknowledgements after sending stops.
    pub settle: Duration,
}

impl Plan {
    pub fn new(
        device: &str,
        t0: i64,
        obs_per_message: u32,
        inflight: usize,
        run_for: Duration,
    ) -> Plan {
        Plan {
            device: device.into(),
            level: 4,
            login: None,
            obs_per_message,
            t0,
            inflight,
            every: None,
            run_for,
            settle: Duration::from_secs(60),
        }
    }
}

/// The observation document of message `n`.
pub fn document(plan: &Plan, n: u64) -> Vec<u8> {
    let k = i64::from(plan.obs_per_message);
    let mut s = String::with_capacity(plan.obs_per_message as usize * 48 + 20);
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

/// The first observation time in a document made by [`document`].
pub fn first_time(payload: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(payload).ok()?;
    let i = s.find("\"time\":")? + 7;
    let rest = &s[i..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// (sequence number, latency) of each success, and the count of error reason codes.
type Acked = (Vec<(u64, Duration)>, u64);

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
    let login = plan.login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    if wr
        .write_all(&connect_packet(plan.level, &plan.device, login, 0))
        .await
        .is_err()
    {
        report.lost = true;
        return report;
    }
    // pkid -> (sequence number, sent at)
    let pending: Arc<Mutex<HashMap<u16, (u64, Instant)>>> = Arc::default();
    let window = Arc::new(tokio::sync::Semaphore::new(0));
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let reader = {
        let (pending, window, acked) = (pending.clone(), window.clone(), acked.clone());
        let inflight = plan.inflight;
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                while let Some(n) = whole(&buf) {
                    let p: Vec<u8> = buf.drain(..n).collect();
                    match p[0] >> 4 {
                        2 if p.get(3) == Some(&0) => window.add_permits(inflight),
                        4 if p.len() >= 4 => {
                            let pkid = u16::from_be_bytes([p[2], p[3]]);
                            let code = p.get(4).copied().unwrap_or(0);
                            let entry = pending
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&pkid);
                            if let Some((n, at)) = entry {
                                let mut a = acked.lock().unwrap_or_else(|e| e.into_inner());
                                if code < 0x80 {
                                    a.0.push((n, at.elapsed()));
                                } else {
                                    a.1 += 1;
                                }
                                window.add_permits(1);
                            }
                        }
                        _ => {}
                    }
                }
                let mut chunk = [0u8; 16384];
                match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
    };
    let topic = format!("wardhub/v1/devices/{}/obs", plan.device);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < plan.run_for {
        let left = plan.run_for.saturating_sub(start.elapsed()) + Duration::from_millis(1);
        let Ok(Ok(permit)) = tokio::time::timeout(left, window.acquire()).await else {
            break;
        };
        permit.forget();
        let pkid = (n % 65_535) as u16 + 1;
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pkid, (n, Instant::now()));
        let p = publish_packet(plan.level, 1, false, pkid, &topic, &document(&plan, n));
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
    while !pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty() && Instant::now() < deadline
    {
        if reader.is_finished() {
            report.lost = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = wr.write_all(&[0xE0, 0]).await;
    drop(wr);
    reader.abort();
    let (acked, refused) = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
    report.acked = acked.iter().map(|(n, _)| *n).collect();
    report.latencies = acked.iter().map(|(_, l)| *l).collect();
    report.refused = refused;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_their_message() {
        let p = Plan::new("d", 1_000, 3, 1, Duration::ZERO);
        let doc = document(&p, 2);
        assert_eq!(first_time(&doc), Some(1_006));
        let e = Exact {
            obs_per_message: 3,
            t0: 1_000,
            acked: vec![2],
            ..Exact::default()
        };
        assert_eq!(e.message_of(1_008), Some(2));
        assert_eq!(e.acked_times(), [1_006, 1_007, 1_008].into_iter().collect());
        let pkt = publish_packet(4, 1, false, 1, "t", &doc);
        assert_eq!(whole(&pkt), Some(pkt.len()));
        assert_eq!(whole(&pkt[..pkt.len() - 1]), None);
    }
}
