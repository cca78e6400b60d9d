//! The one rumqttc client of the tests: a device, a service account (pager) or anyone else
//! whose CONNECT outcome a test checks. Its event loop runs in the background; every packet
//! and the error that ends the connection reach the test, nothing is retried behind its back.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
};

type Incoming = Result<Packet, ConnectionError>;

/// How a connection attempt ended.
#[derive(Debug, PartialEq)]
pub enum Connect {
    Accepted,
    Refused(ConnectReturnCode),
    /// Closed (or failed) without a CONNACK.
    Closed,
}

/// The options every test client starts from: client id `id`, keep-alive 30 s, packets up
/// to 4 MiB.
pub fn options(addr: SocketAddr, id: &str) -> MqttOptions {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 22, 1 << 22);
    opts
}

/// A connected MQTT client whose event loop is polled in the background.
pub struct Device {
    pub client: AsyncClient,
    events: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    /// A device that must be accepted (a test hub's static devices need no password).
    pub async fn connect(addr: SocketAddr, id: &str) -> Device {
        Self::connect_accepted(options(addr, id), id).await
    }

    /// The test hub's service account (subscribe only), with a client id of its own.
    pub async fn pager(addr: SocketAddr) -> Device {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "pager-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut opts = options(addr, &id);
        opts.set_credentials(crate::PAGER_USER, crate::PAGER_PASSWORD);
        Self::connect_accepted(opts, &id).await
    }

    async fn connect_accepted(opts: MqttOptions, id: &str) -> Device {
        match Self::try_connect(opts).await {
            (Connect::Accepted, d) => d,
            (other, _) => panic!("{id}: not accepted: {other:?}"),
        }
    }

    /// Connects with `opts` and says how the CONNECT ended; the client is returned either
    /// way (a refused one is closed).
    pub async fn try_connect(opts: MqttOptions) -> (Connect, Device) {
        let (client, eventloop) = AsyncClient::new(opts, 100);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(poll(eventloop, tx));
        let outcome = match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Ok(Packet::ConnAck(_)))) => Connect::Accepted,
            Ok(Some(Err(ConnectionError::ConnectionRefused(code)))) => Connect::Refused(code),
            _ => Connect::Closed,
        };
        (
            outcome,
            Device {
                client,
                events,
                task,
            },
        )
    }

    /// Publishes at QoS 1 and waits for the PUBACK; fails the test without one.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) {
        assert!(
            self.try_publish(topic, payload).await,
            "no PUBACK for a publish on {topic}"
        );
    }

    /// Publishes an observation document on this device's own topic; fails the test
    /// without a PUBACK.
    pub async fn publish_obs(&mut self, id: &str, doc: &str) {
        self.publish(&format!("wardhub/v1/devices/{id}/obs"), doc)
            .await;
    }

    /// Publishes at QoS 1: `true` once acknowledged, `false` when the connection closed (or
    /// 10 s passed) first. Packets other than the PUBACK are passed over.
    pub async fn try_publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) -> bool {
        if self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .is_err()
        {
            return false;
        }
        self.until(|p| matches!(p, Packet::PubAck(_))).await
    }

    /// Subscribes at QoS 1: `true` once the SUBACK came, `false` when the connection closed
    /// (or 10 s passed) first.
    pub async fn subscribe(&mut self, filter: &str) -> bool {
        if self
            .client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .is_err()
        {
            return false;
        }
        self.until(|p| matches!(p, Packet::SubAck(_))).await
    }

    /// Waits for a packet that `f` accepts; `false` on close or after 10 s.
    async fn until(&mut self, f: impl Fn(&Packet) -> bool) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
                Ok(Some(Ok(p))) if f(&p) => return true,
                Ok(Some(Ok(_))) => continue,
                _ => return false,
            }
        }
    }

    /// The next message delivered to this client whose JSON payload `f` accepts, within
    /// `timeout`. A payload that is not JSON fails the test.
    pub async fn next_json(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(Ok(Packet::Publish(p)))) => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_else(|e| {
                            panic!(
                                "{}: payload is not JSON ({e}): {:?}",
                                p.topic,
                                String::from_utf8_lossy(&p.payload)
                            )
                        });
                    if f(&v) {
                        return Some(v);
                    }
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Whether the connection is closed within `timeout` (packets before are passed over).
    pub async fn closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Packet::Disconnect))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll(mut eventloop: EventLoop, tx: tokio::sync::mpsc::UnboundedSender<Incoming>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(p)) => {
                if tx.send(Ok(p)).is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(_)) => {}
            // The connection is gone: report why, then close the channel.
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}
