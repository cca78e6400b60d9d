//! The embedded MQTT broker.
//!
//! rumqttd's router runs on its own thread; its MQTT servers (3.1.1 and 5) listen on loopback
//! ports only the hub knows. Everyone connects to the hub's own listener, the [`edge`], which
//! binds the public address itself (so a taken port is a clear startup error, and port 0
//! works). The edge terminates device connections itself (their data is acknowledged once
//! durable) and relays service accounts (subscribers) to the internal server of their
//! protocol version. The hub publishes through an MQTT client and subscribes through local
//! links ([`bus`]).

pub mod bus;
pub mod edge;

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttd::local::{LinkBuilder, LinkRx, LinkTx};
use rumqttd::{ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};

use crate::config::MqttConfig;

/// Creates local links to the router (type-erased: the router's channel type is private to
/// rumqttd).
pub type LinkFactory =
    Arc<dyn Fn(&str) -> Result<(LinkTx, LinkRx), String> + Send + Sync + 'static>;

/// A failure to start the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the embedded MQTT broker could not start its internal {version} listener: {message}")]
    Internal {
        version: &'static str,
        message: String,
    },
}

/// A running router with its internal listeners.
#[derive(Clone)]
pub struct Broker {
    pub links: LinkFactory,
    /// Internal MQTT 3.1.1 listener (loopback).
    pub internal_v4: SocketAddr,
    /// Internal MQTT 5 listener (loopback).
    pub internal_v5: SocketAddr,
    /// The only login the internal listeners accept (user, password; random per start):
    /// the edge sends it, so nothing else on the host can bypass the edge.
    pub internal_login: (String, String),
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("internal_v4", &self.internal_v4)
            .field("internal_v5", &self.internal_v5)
            .finish_non_exhaustive()
    }
}

/// The next probe's client id number.
static NEXT_PROBE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Whether an MQTT server answers a CONNECT at `addr` with a CONNACK. (A plain TCP connect
/// would do to see the port open, but rumqttd logs an error for every connection that closes
/// before its CONNECT.)
pub fn probe(addr: SocketAddr, level: u8, login: &(String, String)) -> bool {
    probe_within(
        addr,
        level,
        login,
        Duration::from_millis(200),
        Duration::from_secs(2),
    )
}

/// [`probe`] with its connect and answer timeouts (the health check gives a busy machine
/// longer).
pub fn probe_within(
    addr: SocketAddr,
    level: u8,
    login: &(String, String),
    connect: Duration,
    answer: Duration,
) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = StdStream::connect_timeout(&addr, connect) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(answer));
    // A client id of its own for every probe: rumqttd 0.20 can leave a CONNECT unanswered
    // when one client id moves between its 3.1.1 and 5 listeners (see `edge/relay.rs`), and
    // the probes of both listeners ran under one id, at start-up back to back and every 5 s
    // in the health checks. Seen as a relayed service account's CONNECT that got no CONNACK
    // right after a hub start (`edge::fifty_hub_starts_never_leave_a_dead_listener`).
    let n = NEXT_PROBE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("wardhub-probe-{n}");
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0xC2, 0, 10];
    if level == 5 {
        body.push(0); // no properties
    }
    for field in [id.as_bytes(), login.0.as_bytes(), login.1.as_bytes()] {
        body.extend_from_slice(&(field.len() as u16).to_be_bytes());
        body.extend_from_slice(field);
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        // The remaining length as MQTT's variable-length integer.
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend(body);
    let mut connack = [0u8; 2];
    let ok =
        s.write_all(&packet).is_ok() && s.read_exact(&mut connack).is_ok() && connack[0] == 0x20;
    let _ = s.write_all(&[0xE0, 0x00]);
    ok
}

impl Broker {
    /// Starts the router thread and the internal listeners. Blocks for up to a few seconds
    /// while the listeners come up; call from `spawn_blocking`.
    pub fn start(cfg: &MqttConfig) -> Result<Broker, BrokerError> {
        // rumqttd keeps one in-memory log per subscription filter, a ring that rolls past a
        // slow reader without a word. No device data depends on it any more: devices are
        // terminated by the edge and acknowledged after the durable write; the broker only
        // carries announcements and, for integrations that subscribe to device topics, a copy
        // of what was stored. Small logs keep its memory bounded.
        let router_config = RouterConfig {
            max_connections: cfg.max_connections + 64,
            max_outgoing_packet_count: 1000,
            max_segment_size: 64 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        };
        let router_tx = Router::new(0, router_config).spawn();
        let internal_login = ("wardhub-edge".to_owned(), crate::auth::new_secret());
        let connections = ConnectionSettings {
            connection_timeout_ms: u16::try_from(cfg.connect_timeout.as_millis())
                .unwrap_or(u16::MAX)
                .max(1000),
            max_payload_size: cfg.max_packet_bytes,
            max_inflight_count: 100,
            auth: Some(std::collections::HashMap::from([internal_login.clone()])),
            external_auth: None,
            dynamic_filters: true,
        };
        let mut internal = Vec::new();
        for version in ["v4", "v5"] {
            let mut last_err = String::new();
            let mut bound = None;
            // A port picked by binding port 0 can be taken by someone else before rumqttd binds
            // it; rumqttd then only logs. Probe, and pick again if it did not come up.
            for _ in 0..5 {
                let port = match StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                    Ok(a) => a.port(),
                    Err(e) => {
                        last_err = e.to_string();
                        continue;
                    }
                };
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let settings = ServerSettings {
                    name: format!("internal-{version}"),
                    listen: addr,
                    tls: None,
                    next_connection_delay_ms: 0,
                    connections: connections.clone(),
                };
                let (err_tx, err_rx) = std::sync::mpsc::channel::<String>();
                let router_tx = router_tx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("mqtt-{version}"))
                    .spawn(move || {
                        let rt = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => rt,
                            Err(e) => {
                                let _ = err_tx.send(e.to_string());
                                return;
                            }
                        };
                        let result = rt.block_on(async move {
                            if version == "v4" {
                                Server::new(settings, router_tx, rumqttd::protocol::v4::V4)
                                    .start(LinkType::Remote)
                                    .await
                            } else {
                                Server::new(settings, router_tx, rumqttd::protocol::v5::V5)
                                    .start(LinkType::Remote)
                                    .await
                            }
                        });
                        if let Err(e) = result {
                            let _ = err_tx.send(e.to_string());
                        }
                    });
                if let Err(e) = spawned {
                    last_err = e.to_string();
                    continue;
                }
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    if let Ok(e) = err_rx.try_recv() {
                        last_err = e;
                        break;
                    }
                    if probe(addr, if version == "v4" { 4 } else { 5 }, &internal_login) {
                        bound = Some(addr);
                        break;
                    }
                    if Instant::now() > deadline {
                        last_err = "listener did not come up within 5 s".into();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                if bound.is_some() {
                    break;
                }
            }
            match bound {
                Some(a) => internal.push(a),
                None => {
                    return Err(BrokerError::Internal {
                        version,
                        message: last_err,
                    })
                }
            }
        }
        let links: LinkFactory = Arc::new(move |client_id: &str| {
            LinkBuilder::new(client_id, router_tx.clone())
                .build()
                .map(|(tx, rx, _ack)| (tx, rx))
                .map_err(|e| e.to_string())
        });
        Ok(Broker {
            links,
            internal_v4: internal[0],
            internal_v5: internal[1],
            internal_login,
        })
    }
}
