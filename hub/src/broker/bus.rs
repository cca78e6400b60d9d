//! The broker as the hub's bus: subscriptions and publishing through rumqttd local links.
//!
//! rumqttd's local links block (`LinkBuilder::build`, `LinkTx::publish`), so links are built
//! in `spawn_blocking` and publishing happens on a dedicated thread fed by a bounded channel.
//! A link whose outgoing buffer fills is unscheduled by the router and must answer
//! `Notification::Unschedule` with `wake()`, or delivery stalls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttd::Notification;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wardhub_adapters::adapter::{Bus, BusError, BusMessage};

use super::LinkFactory;

/// How long a draining subscription waits for more messages before it closes.
const DRAIN_QUIET: Duration = Duration::from_millis(300);

/// The [`Bus`] over the embedded broker.
pub struct BrokerBus {
    links: LinkFactory,
    publisher: Mutex<Option<rumqttc::AsyncClient>>,
    publisher_stop: CancellationToken,
    publisher_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    drain: CancellationToken,
    tracker: TaskTracker,
    capacity: usize,
    /// Subscriptions asked for but not yet active at the router.
    pending: Arc<tokio::sync::watch::Sender<usize>>,
    /// Since when the publisher has had no connection to the broker (`None`: connected).
    publisher_down: Arc<Mutex<Option<std::time::Instant>>>,
}

impl std::fmt::Debug for BrokerBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerBus").finish_non_exhaustive()
    }
}

impl BrokerBus {
    /// A bus over `links` for subscriptions, publishing through an MQTT client connected to
    /// the internal listener at `internal` (rumqttd's local links can only publish at QoS 0;
    /// announcements go out at QoS 1). Subscriptions deliver through channels of `capacity`.
    pub fn start(
        links: LinkFactory,
        internal: std::net::SocketAddr,
        internal_login: &(String, String),
        capacity: usize,
    ) -> Result<Arc<BrokerBus>, BusError> {
        let mut opts =
            rumqttc::MqttOptions::new("wardhub-hub", internal.ip().to_string(), internal.port());
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_credentials(internal_login.0.clone(), internal_login.1.clone());
        opts.set_clean_session(false);
        opts.set_max_packet_size(16 << 20, 16 << 20);
        opts.set_inflight(1000);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, capacity);
        let publisher_stop = CancellationToken::new();
        let stop = publisher_stop.clone();
        let publisher_down = Arc::new(Mutex::new(Some(std::time::Instant::now())));
        let down = publisher_down.clone();
        let set_down = move |d: bool| {
            let mut g = down.lock().unwrap_or_else(|e| e.into_inner());
            match (d, g.is_some()) {
                (true, false) => *g = Some(std::time::Instant::now()),
                (false, true) => *g = None,
                _ => {}
            }
        };
        let publisher_task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                let ev = tokio::select! {
                    ev = eventloop.poll() => ev,
                    _ = stop.cancelled() => break,
                };
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        set_down(false);
                        backoff = Duration::from_millis(50);
                    }
                    Ok(_) => backoff = Duration::from_millis(50),
                    Err(e) => {
                        set_down(true);
                        tracing::warn!(error = %e, "hub publisher connection to the broker failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            // Give queued publishes a moment to leave.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while let Ok(ev) = eventloop.poll().await {
                    if matches!(ev, rumqttc::Event::Outgoing(rumqttc::Outgoing::PingReq)) {
                        break;
                    }
                }
            })
            .await;
        });
        Ok(Arc::new(BrokerBus {
            links,
            publisher: Mutex::new(Some(client)),
            publisher_stop,
            publisher_task: Mutex::new(Some(publisher_task)),
            drain: CancellationToken::new(),
            tracker: TaskTracker::new(),
            capacity,
            pending: Arc::new(tokio::sync::watch::channel(0).0),
            publisher_down,
        }))
    }

    /// How long the hub's publisher has been without a broker connection (`None`: connected).
    pub fn publisher_down_for(&self) -> Option<Duration> {
        self.publisher_down
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// Waits until every subscription asked for so far is active, so that nothing a device
    /// publishes after this returns can be missed.
    pub async fn wait_subscribed(&self) {
        let mut rx = self.pending.subscribe();
        let _ = rx.wait_for(|p| *p == 0).await;
    }

    /// Lets every subscription deliver what the router still holds, then closes them (their
    /// receivers see the end of the stream). Call after devices have been disconnected.
    /// Publishing still works until [`BrokerBus::close`].
    pub async fn drain(&self) {
        self.drain.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Stops publishing (after a short grace for queued messages).
    pub async fn close(&self) {
        if let Ok(mut p) = self.publisher.lock() {
            p.take();
        }
        self.publisher_stop.cancel();
        let task = self.publisher_task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

impl BrokerBus {
    /// Hands a device message that was stored to the broker for integrations subscribed to
    /// device topics (QoS 1 towards the broker; an `Err` when its queue is full: the caller
    /// counts the drop, the data itself is safe in the store).
    pub fn forward(&self, topic: &str, payload: Bytes, retain: bool) -> Result<(), BusError> {
        self.try_publish(topic, payload, retain)
    }

    /// QoS 1 through the hub's publisher, without waiting (an `Err` when its queue is full
    /// or the bus is shutting down).
    fn try_publish(&self, topic: &str, payload: Bytes, retain: bool) -> Result<(), BusError> {
        let guard = self
            .publisher
            .lock()
            .map_err(|_| BusError("bus poisoned".into()))?;
        match guard.as_ref() {
            Some(client) => client
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
                .map_err(|e| BusError(format!("publish queue: {e}"))),
            None => Err(BusError("the bus is shutting down".into())),
        }
    }
}

impl Bus for BrokerBus {
    fn subscribe(&self, filter: &str) -> Result<mpsc::Receiver<BusMessage>, BusError> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let links = self.links.clone();
        let filter = filter.to_owned();
        let drain = self.drain.clone();
        let pending = self.pending.clone();
        pending.send_modify(|p| *p += 1);
        self.tracker.spawn(async move {
            let name = format!("wardhub-sub-{}", filter.replace(['/', '+', '#'], "_"));
            let built = tokio::task::spawn_blocking(move || {
                let (mut link_tx, link_rx) = (links)(&name)?;
                link_tx
                    .subscribe(filter.clone())
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((link_tx, link_rx))
            })
            .await;
            pending.send_modify(|p| *p -= 1);
            let (_link_tx, mut link_rx) = match built {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "bus subscription failed");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "bus subscription task failed");
                    return;
                }
            };
            loop {
                let next = if drain.is_cancelled() {
                    match tokio::time::timeout(DRAIN_QUIET, link_rx.next()).await {
                        Ok(n) => n,
                        Err(_) => break,
                    }
                } else {
                    tokio::select! {
                        n = link_rx.next() => n,
                        _ = drain.cancelled() => continue,
                    }
                };
                match next {
                    Ok(Some(Notification::Forward(f))) => {
                        let msg = BusMessage {
                            topic: String::from_utf8_lossy(&f.publish.topic).into_owned(),
                            payload: f.publish.payload,
                        };
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(Notification::Unschedule)) => {
                        if link_rx.wake().await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "bus link closed");
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    fn publish(&self, topic: String, payload: Bytes) -> Result<(), BusError> {
        self.try_publish(&topic, payload, false)
    }
}
