//! One simulated device on MQTT: client id and username = device id, password = its secret,
//! QoS 1, last will `{"online":false}` on its status topic.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Command, Stats};
use crate::encode::{topic, LAST_WILL};

/// Messages a device may have queued in its client before new ones are dropped.
const CLIENT_QUEUE: usize = 256;

struct Connection {
    client: AsyncClient,
    poller: JoinHandle<()>,
    /// Publishes queued and not yet acknowledged.
    pending: Arc<AtomicUsize>,
    /// Points of the publishes queued in the client, in order (the client sends in order).
    points: Arc<std::sync::Mutex<VecDeque<u32>>>,
}

fn connect(id: &str, secret: &str, addr: SocketAddr, stats: &Arc<Stats>) -> Connection {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_credentials(id, secret);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(true);
    opts.set_inflight(100);
    opts.set_last_will(LastWill::new(
        topic(id, "status"),
        LAST_WILL.to_vec(),
        QoS::AtLeastOnce,
        false,
    ));
    let (client, eventloop) = AsyncClient::new(opts, CLIENT_QUEUE);
    let pending = Arc::new(AtomicUsize::new(0));
    let points = Arc::new(std::sync::Mutex::new(VecDeque::new()));
    let poller = tokio::spawn(poll(
        id.to_owned(),
        eventloop,
        stats.clone(),
        pending.clone(),
        points.clone(),
    ));
    Connection {
        client,
        poller,
        pending,
        points,
    }
}

async fn poll(
    id: String,
    mut eventloop: EventLoop,
    stats: Arc<Stats>,
    pending: Arc<AtomicUsize>,
    queued_points: Arc<std::sync::Mutex<VecDeque<u32>>>,
) {
    // pkid -> (first sent, points): a resend of an unacknowledged publish keeps its entry.
    let mut sent: HashMap<u16, (Instant, u32)> = HashMap::new();
    let mut failures = 0u32;
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                Stats::add(&stats.sent, 1);
                if let std::collections::hash_map::Entry::Vacant(e) = sent.entry(pkid) {
                    let points = queued_points
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pop_front()
                        .unwrap_or(0);
                    e.insert((Instant::now(), points));
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some((t0, points)) = sent.remove(&ack.pkid) {
                    stats.mqtt_latency.record(t0.elapsed());
                    Stats::add(&stats.acked, 1);
                    Stats::add(&stats.points_acked, u64::from(points));
                    pending.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => failures = 0,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => {
                Stats::add(&stats.refused, 1);
                tracing::warn!(device = %id, ?code, "the hub refused the MQTT connection");
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
            Err(e) => {
                Stats::add(&stats.errors, 1);
                tracing::debug!(device = %id, error = %e, "MQTT connection error");
                // Unacknowledged publishes are resent by rumqttc after it reconnects (and
                // counted as sent again).
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200 * u64::from(failures.min(10)))
}

/// Runs one device until its command channel closes; then waits (up to `grace`) for the
/// outstanding acknowledgements and disconnects cleanly.
pub async fn run_device(
    id: String,
    secret: String,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Command>,
    stats: Arc<Stats>,
    grace: Duration,
) {
    let mut conn = Some(connect(&id, &secret, addr, &stats));
    let topics = [
        ("obs", topic(&id, "obs")),
        ("status", topic(&id, "status")),
        ("event", topic(&id, "event")),
    ];
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Send {
                channel,
                payload,
                points,
            } => {
                let Some(c) = &conn else {
                    Stats::add(&stats.dropped, 1);
                    continue;
                };
                let t = topics
                    .iter()
                    .find(|(ch, _)| *ch == channel)
                    .map_or(&topics[0].1, |(_, t)| t);
                // The points go in the queue first: the poller takes them when the client
                // sends the publish.
                c.points
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back(points);
                if c.client
                    .try_publish(t, QoS::AtLeastOnce, false, payload)
                    .is_err()
                {
                    c.points
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pop_back();
                    Stats::add(&stats.dropped, 1);
                } else {
                    c.pending.fetch_add(1, Ordering::Relaxed);
                    Stats::add(&stats.queued, 1);
                    Stats::add(&stats.points_queued, u64::from(points));
                }
            }
            Command::Drop => {
                if let Some(c) = conn.take() {
                    // Dropping the event loop closes the socket without DISCONNECT: the broker
                    // publishes the last will.
                    c.poller.abort();
                }
            }
            Command::Reconnect => {
                if conn.is_none() {
                    conn = Some(connect(&id, &secret, addr, &stats));
                }
            }
        }
    }
    if let Some(c) = conn {
        let deadline = Instant::now() + grace;
        while c.pending.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = c.client.try_disconnect();
        let abort = c.poller.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), c.poller)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
