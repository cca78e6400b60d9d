//! The forwarder: drains the outbox to the cluster, at most `max_messages_per_second`, with
//! up to `max_inflight` publishes waiting for their PUBACK. Alarm transitions go first (a
//! backlog of observations after an outage never holds back an alarm), each class in the
//! order it was queued.
//!
//! It connects to the configured brokers in turn (MQTT 5 first in `auto`, then 3.1.1 on the
//! same broker, remembered), and on every new connection starts again from the oldest message
//! the outbox still holds: a message leaves the outbox only when the broker has acknowledged
//! it, so a connection lost with publishes in flight costs duplicates (same ids), never
//! losses. Before a message is sent, the store's flusher has made the database durable past it
//! (its group commit, shared with the data), so the cluster never hears of something a crash
//! could take back from the ward.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::Clock;

use super::client::{Connection, Happened, Login, Verdict, Version};
use super::config::{Protocol, ServerUrl};
use super::metrics::UplinkMetrics;
use super::outbox::{Cursor, Entry, Outbox};

/// How many messages one outbox read takes.
const READ_BATCH: usize = 64;
/// Acknowledged messages leave the outbox at least this often (in one go).
const ACK_EVERY: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The forwarder's parts.
pub struct Forwarder {
    pub outbox: Arc<Outbox>,
    /// Its flusher makes the outbox durable (the store's group commit, shared with the data).
    pub store: Arc<crate::store::SledStore>,
    pub servers: Vec<ServerUrl>,
    pub protocol: Protocol,
    pub login: Login,
    pub rate: u32,
    pub metrics: Arc<UplinkMetrics>,
    pub clock: Arc<dyn Clock>,
    /// Where receivers ask for messages again (`…/resend`).
    pub resend_topic: String,
}

/// A receiver's request for messages again: `from..=to` of `stream` (docs/UPLINK.md).
#[derive(Debug, serde::Deserialize)]
struct ResendRequest {
    stream: String,
    from: u64,
    to: u64,
}

/// Why a session ended.
enum End {
    Cancelled,
    Lost(String),
}

/// A token bucket: `rate` a second, bursts of a tenth of a second's worth.
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        let rate = f64::from(rate.max(1));
        let capacity = (rate / 10.0).max(1.0);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.at = now;
    }

    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until one token is there.
    fn wait(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0) / self.rate).max(0.001))
    }
}

/// `d` ± 25 %, so hubs that lost the cluster together do not all come back in one instant.
fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let r = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + r / 2.0)
}

impl Forwarder {
    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let mut remembered: HashMap<usize, Version> = HashMap::new();
        let mut next = 0usize;
        let mut backoff = Duration::from_millis(200);
        let mut connected_before = false;
        let mut bucket = Bucket::new(self.rate);
        loop {
            if cancel.is_cancelled() {
                return;
            }
            self.housekeeping();
            let i = next % self.servers.len().max(1);
            let server = &self.servers[i];
            let versions: Vec<Version> = match (self.protocol, remembered.get(&i)) {
                (Protocol::V5, _) => vec![Version::V5],
                (Protocol::V311, _) => vec![Version::V311],
                (Protocol::Auto, Some(v)) => vec![*v],
                (Protocol::Auto, None) => vec![Version::V5, Version::V311],
            };
            let mut conn = None;
            for v in versions {
                let attempt = tokio::select! {
                    r = Connection::open(server, v, &self.login) => r,
                    () = cancel.cancelled() => return,
                };
                match attempt {
                    Ok(c) => {
                        conn = Some(c);
                        break;
                    }
                    Err(e) => {
                        self.metrics.connect_failures.inc();
                        tracing::warn!(server = %server, version = ?v, error = %e, "uplink: connection failed");
                    }
                }
            }
            let Some(conn) = conn else {
                next += 1;
                tokio::select! {
                    () = tokio::time::sleep(jittered(backoff)) => {}
                    () = cancel.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            };
            if self.protocol == Protocol::Auto {
                remembered.insert(i, conn.version);
            }
            if connected_before {
                self.metrics.reconnects.inc();
            }
            connected_before = true;
            backoff = Duration::from_millis(200);
            self.metrics.connected.set(1);
            self.metrics.protocol.set(conn.version.level());
            tracing::info!(server = %server, version = ?conn.version, "uplink: connected");
            let end = self.session(conn, &mut bucket, &cancel).await;
            self.metrics.connected.set(0);
            self.metrics.protocol.set(0);
            match end {
                End::Cancelled => return,
                End::Lost(e) => {
                    tracing::warn!(server = %server, error = %e, "uplink: connection lost; sending the unacknowledged again on the next");
                    next += 1;
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = cancel.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Answers a resend request for this hub's stream (others are not ours: ignored).
    fn resend(&self, payload: &[u8]) {
        match serde_json::from_slice::<ResendRequest>(payload) {
            Ok(r) if r.stream == self.outbox.stream() => {
                self.metrics.resend_requests.inc();
                match self.outbox.requeue(r.from, r.to) {
                    Ok(q) => {
                        self.metrics.resent.inc_by(q.requeued);
                        self.metrics.resend_unavailable.inc_by(q.unavailable);
                        tracing::warn!(
                            from = r.from,
                            to = r.to,
                            requeued = q.requeued,
                            unavailable = q.unavailable,
                            "uplink: a receiver asked for messages again (a gap downstream)"
                        );
                    }
                    Err(e) => tracing::error!(error = %e, "uplink: a resend request failed"),
                }
            }
            Ok(_) => {}
            Err(e) => {
                self.metrics.resend_requests_invalid.inc();
                tracing::warn!(error = %e, "uplink: a resend request that is not one; ignored");
            }
        }
    }

    /// Drops what has outlived the age bound and sets the age gauge.
    fn housekeeping(&self) {
        let now = self.clock.now_ms();
        if let Err(e) = self.outbox.expire(now) {
            tracing::error!(error = %e, "uplink: outbox expiry failed");
        }
        let age = self
            .outbox
            .depth()
            .oldest_queued_at
            .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        self.metrics.outbox_oldest_age_seconds.set(age);
    }

    async fn session(
        &self,
        mut conn: Connection,
        bucket: &mut Bucket,
        cancel: &CancellationToken,
    ) -> End {
        let max_inflight = usize::from(self.login.max_inflight);
        let mut cursor = Cursor::default();
        let mut durable_to = 0u64;
        let mut ready: VecDeque<Entry> = VecDeque::new();
        let mut handed: VecDeque<Entry> = VecDeque::new();
        let mut inflight: HashMap<u16, Entry> = HashMap::new();
        let mut acked: Vec<Entry> = Vec::new();
        let mut tick = tokio::time::interval(ACK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping_at = Instant::now();
        let mut rewinds = self.outbox.rewinds();
        if let Err(e) = conn.subscribe(&self.resend_topic) {
            return End::Lost(e);
        }
        loop {
            // Messages were put back (a resend request): read from the start again (what is
            // in flight goes again too: same ids).
            if self.outbox.rewinds() != rewinds {
                rewinds = self.outbox.rewinds();
                ready.clear();
                cursor = Cursor::default();
            }
            // Hand over what the window and the rate allow.
            let mut throttled = false;
            while handed.len() + inflight.len() < max_inflight {
                if ready.is_empty() {
                    match self.outbox.read(cursor, READ_BATCH, self.clock.now_ms()) {
                        Ok(batch) => ready.extend(batch),
                        Err(e) => return End::Lost(e.to_string()),
                    }
                }
                let Some(last) = ready.iter().map(|e| e.seq).max() else {
                    break;
                };
                if !bucket.take(Instant::now()) {
                    throttled = true;
                    break;
                }
                if ready.iter().any(|e| e.seq > durable_to) {
                    let ticket = self.store.barrier();
                    if let Err(e) = self.store.wait_durable(ticket).await {
                        return End::Lost(format!("flush before sending: {e}"));
                    }
                    durable_to = durable_to.max(last);
                }
                let e = ready.pop_front().expect("not empty");
                let id = format!("{}:{}", self.outbox.stream(), e.seq);
                if let Err(err) = conn.publish(&e.topic, Bytes::from(e.payload.clone()), &id) {
                    return End::Lost(err);
                }
                cursor.past(&e);
                handed.push_back(e);
            }
            let idle = ready.is_empty() && !throttled;
            tokio::select! {
                happened = conn.next() => match happened {
                    Err(e) => {
                        let _ = self.outbox.acknowledged(&acked);
                        return End::Lost(e);
                    }
                    Ok(Happened::Sent(pkid)) => {
                        if let Some(e) = handed.pop_front() {
                            inflight.insert(pkid, e);
                        }
                    }
                    Ok(Happened::Acked(pkid, verdict)) => {
                        if let Some(e) = inflight.remove(&pkid) {
                            match verdict {
                                Verdict::Accepted => acked.push(e),
                                Verdict::Refused(why) => {
                                    tracing::error!(seq = e.seq, kind = e.kind.as_str(), reason = %why, "uplink: the broker refused a message for good; dropped");
                                    if let Err(err) = self.outbox.refused(&e) {
                                        return End::Lost(err.to_string());
                                    }
                                }
                                Verdict::Retry(why) => {
                                    self.metrics.broker_refusals.inc();
                                    let _ = self.outbox.acknowledged(&acked);
                                    return End::Lost(format!("the broker refused seq {} ({why}); sent again after a reconnect", e.seq));
                                }
                            }
                        }
                        if acked.len() >= READ_BATCH {
                            if let Err(e) = self.outbox.acknowledged(&std::mem::take(&mut acked)) {
                                return End::Lost(e.to_string());
                            }
                        }
                    }
                    Ok(Happened::Message(payload)) => self.resend(&payload),
                    Ok(Happened::Other) => {}
                },
                () = self.outbox.queued.notified(), if idle => {}
                () = tokio::time::sleep(bucket.wait()), if throttled => {}
                _ = tick.tick() => {
                    if let Err(e) = self.outbox.acknowledged(&std::mem::take(&mut acked)) {
                        return End::Lost(e.to_string());
                    }
                    if housekeeping_at.elapsed() >= Duration::from_secs(1) {
                        housekeeping_at = Instant::now();
                        self.housekeeping();
                    }
                }
                () = cancel.cancelled() => {
                    // What the broker acknowledged leaves; the rest waits for the next run.
                    let _ = self.outbox.acknowledged(&acked);
                    conn.close().await;
                    return End::Cancelled;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Bucket;

    #[test]
    fn the_bucket_lets_through_its_rate_and_no_more() {
        let mut b = Bucket::new(100);
        let start = b.at;
        let mut n = 0;
        // One try a millisecond for 3 s of its clock: a burst of 10, then 100 a second.
        for ms in 0..3000 {
            if b.take(start + Duration::from_millis(ms)) {
                n += 1;
            }
        }
        assert!((308..=311).contains(&n), "{n}");
        assert!(b.wait() > Duration::ZERO);
        let _ = Instant::now();
    }
}
