//! One publishing connection to a cluster broker, MQTT 5 or 3.1.1, over rumqttc: connect
//! (until CONNACK), publish QoS 1, and the events the forwarder needs (a publish written
//! with its packet id, a PUBACK with its verdict).
//!
//! Every connection starts a clean session and is dropped whole on any error: the outbox,
//! not the broker's session or rumqttc's queue, is what holds unacknowledged messages, and
//! the forwarder sends them again on the next connection (same ids, so receivers drop the
//! duplicates).

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{TlsConfiguration, Transport};

use super::config::{ClusterConnection, ServerUrl};

/// The MQTT version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V5,
    V311,
}

impl Version {
    /// The protocol level (the `wardhub_uplink_protocol_version` gauge).
    pub fn level(self) -> i64 {
        match self {
            Version::V5 => 5,
            Version::V311 => 4,
        }
    }
}

/// How the broker answered one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Refused for a reason sending again cannot mend (MQTT 5 topic name or payload format
    /// invalid): the message is dropped and counted.
    Refused(String),
    /// Refused for now (not authorized, quota exceeded, unspecified): sent again later.
    Retry(String),
}

/// What happened on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// A publish went out with this packet id (in the order they were handed over).
    Sent(u16),
    Acked(u16, Verdict),
    /// A message on a subscribed topic (the hub's resend requests).
    Message(Bytes),
    Other,
}

/// What a connection needs beyond the server.
#[derive(Debug, Clone)]
pub struct Login {
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<TlsConfiguration>,
    pub keep_alive: Duration,
    pub connect_timeout: Duration,
    pub max_inflight: u16,
    pub max_packet_bytes: usize,
}

impl Login {
    /// Reads the password and TLS files of `c` (once, at start).
    pub fn of(
        c: &ClusterConnection,
        client_id: String,
        max_inflight: u16,
    ) -> Result<Login, String> {
        let read =
            |p: &std::path::PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let tls = match &c.ca {
            Some(ca) => Some(TlsConfiguration::Simple {
                ca: read(ca)?,
                alpn: None,
                client_auth: match (&c.client_cert, &c.client_key) {
                    (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                    _ => None,
                },
            }),
            None => None,
        };
        Ok(Login {
            client_id,
            username: c.username.clone(),
            password: c.password()?,
            tls,
            keep_alive: c.keep_alive.max(Duration::from_secs(1)),
            connect_timeout: c.connect_timeout.max(Duration::from_secs(1)),
            max_inflight: max_inflight.max(1),
            max_packet_bytes: 4 << 20,
        })
    }
}

enum Inner {
    V311(rumqttc::AsyncClient, Box<rumqttc::EventLoop>),
    V5(rumqttc::v5::AsyncClient, Box<rumqttc::v5::EventLoop>),
}

/// A connected session (CONNACK accepted).
pub struct Connection {
    inner: Inner,
    pub version: Version,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn transport(server: &ServerUrl, login: &Login) -> Result<Transport, String> {
    match (server.tls, &login.tls) {
        (false, _) => Ok(Transport::Tcp),
        (true, Some(tls)) => Ok(Transport::tls_with_config(tls.clone())),
        (true, None) => Err(format!("{server}: mqtts:// needs a CA (ca = …)")),
    }
}

impl Connection {
    /// Connects and waits for the broker's CONNACK (within the connect timeout).
    pub async fn open(
        server: &ServerUrl,
        version: Version,
        login: &Login,
    ) -> Result<Connection, String> {
        let transport = transport(server, login)?;
        let secs = login.connect_timeout.as_secs().max(1);
        let inner = match version {
            Version::V311 => {
                let mut o = rumqttc::MqttOptions::new(&login.client_id, &server.host, server.port);
                o.set_keep_alive(login.keep_alive)
                    .set_clean_session(true)
                    .set_inflight(login.max_inflight)
                    .set_max_packet_size(login.max_packet_bytes, login.max_packet_bytes)
                    .set_request_channel_capacity(usize::from(login.max_inflight) + 16)
                    .set_transport(transport);
                if let Some(u) = &login.username {
                    o.set_credentials(u, login.password.clone().unwrap_or_default());
                }
                let (client, mut events) =
                    rumqttc::AsyncClient::new(o, usize::from(login.max_inflight) + 16);
                let mut net = rumqttc::NetworkOptions::new();
                net.set_connection_timeout(secs);
                events.set_network_options(net);
                Inner::V311(client, Box::new(events))
            }
            Version::V5 => {
                let mut o =
                    rumqttc::v5::MqttOptions::new(&login.client_id, &server.host, server.port);
                o.set_keep_alive(login.keep_alive)
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(login.max_inflight)
                    .set_max_packet_size(Some(login.max_packet_bytes as u32))
                    .set_request_channel_capacity(usize::from(login.max_inflight) + 16)
                    .set_connection_timeout(secs)
                    .set_transport(transport);
                if let Some(u) = &login.username {
                    o.set_credentials(u, login.password.clone().unwrap_or_default());
                }
                let (client, events) =
                    rumqttc::v5::AsyncClient::new(o, usize::from(login.max_inflight) + 16);
                Inner::V5(client, Box::new(events))
            }
        };
        let mut c = Connection { inner, version };
        let wait = async {
            loop {
                match &mut c.inner {
                    Inner::V311(_, ev) => match ev.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => {
                            return if a.code == rumqttc::ConnectReturnCode::Success {
                                Ok(())
                            } else {
                                Err(format!("CONNACK {:?}", a.code))
                            };
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    },
                    Inner::V5(_, ev) => match ev.poll().await {
                        Ok(rumqttc::v5::Event::Incoming(
                            rumqttc::v5::mqttbytes::v5::Packet::ConnAck(a),
                        )) => {
                            return if a.code
                                == rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success
                            {
                                Ok(())
                            } else {
                                Err(format!("CONNACK {:?}", a.code))
                            };
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    },
                }
            }
        };
        match tokio::time::timeout(login.connect_timeout + Duration::from_secs(1), wait).await {
            Ok(Ok(())) => Ok(c),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("no CONNACK in time".into()),
        }
    }

    /// Hands one QoS 1 publish to the connection (never waits: the forwarder keeps fewer in
    /// flight than the request channel holds). MQTT 5 publishes carry the message id as the
    /// user property `wardhub-id` and say they are JSON.
    pub fn publish(&self, topic: &str, payload: Bytes, id: &str) -> Result<(), String> {
        match &self.inner {
            Inner::V311(c, _) => c
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .map_err(|e| e.to_string()),
            Inner::V5(c, _) => {
                let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
                    payload_format_indicator: Some(1),
                    content_type: Some("application/json".into()),
                    user_properties: vec![("wardhub-id".into(), id.to_owned())],
                    ..Default::default()
                };
                c.try_publish_with_properties(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                    props,
                )
                .map_err(|e| e.to_string())
            }
        }
    }

    /// Subscribes at QoS 1 (never waits, as [`Connection::publish`]).
    pub fn subscribe(&self, filter: &str) -> Result<(), String> {
        match &self.inner {
            Inner::V311(c, _) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Inner::V5(c, _) => c
                .try_subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    /// The next thing that happened; an `Err` ends the connection.
    pub async fn next(&mut self) -> Result<Happened, String> {
        match &mut self.inner {
            Inner::V311(_, ev) => {
                use rumqttc::{Event, Outgoing, Packet};
                match ev.poll().await.map_err(|e| e.to_string())? {
                    Event::Outgoing(Outgoing::Publish(pkid)) => Ok(Happened::Sent(pkid)),
                    Event::Incoming(Packet::PubAck(a)) => {
                        Ok(Happened::Acked(a.pkid, Verdict::Accepted))
                    }
                    Event::Incoming(Packet::Publish(p)) => Ok(Happened::Message(p.payload)),
                    Event::Incoming(Packet::Disconnect) => Err("the broker disconnected".into()),
                    _ => Ok(Happened::Other),
                }
            }
            Inner::V5(_, ev) => {
                use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
                use rumqttc::v5::Event;
                use rumqttc::Outgoing;
                match ev.poll().await.map_err(|e| e.to_string())? {
                    Event::Outgoing(Outgoing::Publish(pkid)) => Ok(Happened::Sent(pkid)),
                    Event::Incoming(Packet::PubAck(a)) => {
                        let verdict = match a.reason {
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => {
                                Verdict::Accepted
                            }
                            r @ (PubAckReason::TopicNameInvalid
                            | PubAckReason::PayloadFormatInvalid) => {
                                Verdict::Refused(format!("{r:?}"))
                            }
                            r => Verdict::Retry(format!("{r:?}")),
                        };
                        Ok(Happened::Acked(a.pkid, verdict))
                    }
                    Event::Incoming(Packet::Publish(p)) => Ok(Happened::Message(p.payload)),
                    Event::Incoming(Packet::Disconnect(d)) => {
                        Err(format!("the broker disconnected ({:?})", d.reason_code))
                    }
                    _ => Ok(Happened::Other),
                }
            }
        }
    }

    /// Says DISCONNECT (best effort: the connection is going anyway).
    pub async fn close(mut self) {
        let _ = match &self.inner {
            Inner::V311(c, _) => c.try_disconnect().map_err(|e| e.to_string()),
            Inner::V5(c, _) => c.try_disconnect().map_err(|e| e.to_string()),
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while self.next().await.is_ok() {}
        })
        .await;
    }
}
