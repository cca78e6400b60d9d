//! The hub's public MQTT listener (the edge).
//!
//! Per connection: read the CONNECT (within `connect_timeout`, at most `max_packet_bytes`),
//! decide who it is, then:
//! - a **device** connection is terminated here ([`device`]): the edge answers every packet
//!   itself and acknowledges a PUBLISH only once what it carried is durable in the store
//!   (through the MQTT JSON adapter and the pipeline); sessions, QoS 2 exactly-once and last
//!   wills are the edge's ([`session`]). Devices never reach the embedded broker, so no
//!   device can lose data in the broker's in-memory logs or take its listeners down;
//! - a **service account** (an integration that subscribes) is relayed to the embedded
//!   broker's internal listener ([`relay`]).
//!
//! Authentication and the topic ACL ([`acl`]) live here (rumqttd 0.20 has no ACL):
//! - a device's client id must be a registered, active device id; the user name, when given,
//!   must equal it; the password must match the device's credential (devices seeded from the
//!   config without `secret_sha256` connect by id alone). A refusal is answered with a CONNACK
//!   (3.1.1: 5 "not authorized" / 4 "bad user name or password" / 2 "identifier rejected";
//!   5: 0x87 / 0x86 / 0x85);
//! - a device may publish only under `wardhub/v1/devices/{its id}/` and subscribe only to
//!   filters under it (its last will included);
//! - a service account may subscribe within its filters and may not publish;
//! - client ids starting with `wardhub-` are the hub's own and refused to everyone, and a
//!   service account may not use a registered device's id.

pub mod acl;
pub mod device;
pub mod packet;
pub mod relay;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use wardhub_adapters::model::{is_valid_id, DeviceId};
use wardhub_adapters::mqtt_json::MqttJsonIngest;

pub use acl::{filter_within, Acl};
pub use packet::{fixed_header, parse_connect, rewrite_connect, Connect};
pub use session::Sessions;

use crate::registry::{AuthOutcome, AuthRefusal, Live, Registry};
use crate::telemetry::Telemetry;

/// Hands an accepted device message to the broker for other subscribers (topic, payload,
/// retain).
pub type Forward = Arc<dyn Fn(&str, Bytes, bool) + Send + Sync>;

/// What the edge needs to know.
#[derive(Clone)]
pub struct EdgeConfig {
    pub internal_v4: SocketAddr,
    pub internal_v5: SocketAddr,
    pub max_packet_bytes: usize,
    pub connect_timeout: Duration,
    /// Connections at once, in total and per source address.
    pub limiter: wardhub_adapters::net::ConnectionLimiter,
    /// Unacknowledged publishes a device connection may have (advertised to MQTT 5 clients
    /// as Receive Maximum; a 3.1.1 client beyond it is simply not read until acks go out).
    pub receive_maximum: u16,
    /// Who may connect.
    pub registry: Arc<dyn Registry>,
    pub service_accounts: Vec<ServiceLogin>,
    /// The login the internal listeners accept (user, password); the edge puts it in every
    /// CONNECT it relays.
    pub internal_login: Option<(String, String)>,
    /// Accepts TLS on the second listener given to [`run`].
    pub tls: Option<wardhub_adapters::tls::ReloadingTls>,
    /// The MQTT JSON adapter; without it device connections are refused (0x88).
    pub ingest: Option<Arc<MqttJsonIngest>>,
    pub sessions: Arc<Sessions>,
    /// One relayed connection per client id at a time (see [`relay::RelayGate`]).
    pub relays: Arc<relay::RelayGate>,
    /// Set when some service account may subscribe to device topics.
    pub forward: Option<Forward>,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("internal_v4", &self.internal_v4)
            .field("internal_v5", &self.internal_v5)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("receive_maximum", &self.receive_maximum)
            .field("service_accounts", &self.service_accounts.len())
            .field("tls", &self.tls.is_some())
            .field("forward", &self.forward.is_some())
            .finish_non_exhaustive()
    }
}

/// A service account as the edge checks it.
#[derive(Debug, Clone)]
pub struct ServiceLogin {
    pub name: String,
    pub password_sha256: [u8; 32],
    pub subscribe: Vec<String>,
}

impl ServiceLogin {
    pub fn from_config(a: &crate::config::ServiceAccount) -> Option<ServiceLogin> {
        Some(ServiceLogin {
            name: a.name.clone(),
            password_sha256: crate::auth::parse_hex32(&a.password_sha256)?,
            subscribe: a.subscribe.clone(),
        })
    }
}

/// Why the edge closed a connection (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ConnectTimeout,
    NotConnect,
    Malformed,
    TooLarge,
    /// An unsupported protocol name or level.
    Protocol,
    /// A packet out of place (a second CONNECT, a topic alias, AUTH).
    ProtocolError,
    TooManyConnections,
    Upstream,
    /// Refused at CONNECT: unknown, retired, bad credentials.
    Auth,
    /// A client id that is the hub's own, or a service account using a device's id.
    ReservedId,
    /// Published or subscribed outside what the identity may.
    Acl,
    /// The TLS handshake failed (or was not TLS at all).
    Tls,
    /// Silent for one and a half keep-alive intervals.
    KeepAlive,
    /// Another connection with the same client id took over.
    TakenOver,
    /// The device was retired or its credentials rotated: its live session is closed.
    CredentialsChanged,
    /// The pipeline could not make a publish durable.
    Unavailable,
}

impl CloseReason {
    pub const ALL: [CloseReason; 16] = [
        CloseReason::ConnectTimeout,
        CloseReason::NotConnect,
        CloseReason::Malformed,
        CloseReason::TooLarge,
        CloseReason::Protocol,
        CloseReason::ProtocolError,
        CloseReason::TooManyConnections,
        CloseReason::Upstream,
        CloseReason::Auth,
        CloseReason::ReservedId,
        CloseReason::Acl,
        CloseReason::Tls,
        CloseReason::KeepAlive,
        CloseReason::TakenOver,
        CloseReason::CredentialsChanged,
        CloseReason::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ConnectTimeout => "connect_timeout",
            CloseReason::NotConnect => "not_connect",
            CloseReason::Malformed => "malformed",
            CloseReason::TooLarge => "too_large",
            CloseReason::Protocol => "protocol_version",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::TooManyConnections => "too_many_connections",
            CloseReason::Upstream => "broker_unavailable",
            CloseReason::Auth => "auth",
            CloseReason::ReservedId => "reserved_id",
            CloseReason::Acl => "acl",
            CloseReason::Tls => "tls",
            CloseReason::KeepAlive => "keep_alive",
            CloseReason::TakenOver => "taken_over",
            CloseReason::CredentialsChanged => "credentials_changed",
            CloseReason::Unavailable => "not_durable",
        }
    }
}

/// Binds the public listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections (plain on `listener`, TLS on `tls_listener` when given) until
/// `cancel`; then closes every open connection and returns once they are gone (device
/// connections first acknowledge what the pipeline makes durable meanwhile).
pub async fn run(
    listener: TcpListener,
    tls_listener: Option<TcpListener>,
    config: EdgeConfig,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
    // Every reason has a series from the start: a refusal that never happened reads 0.
    for r in CloseReason::ALL {
        telemetry.mqtt_refused.with_label_values(&[r.as_str()]);
    }
    let tracker = TaskTracker::new();
    let config = Arc::new(config);
    loop {
        let (accepted, tls) = tokio::select! {
            a = listener.accept() => (a, false),
            a = accept_opt(tls_listener.as_ref()) => (a, true),
            _ = cancel.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "mqtt accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match config.limiter.try_acquire(peer.ip()) {
            Ok(p) => p,
            Err(limit) => {
                telemetry
                    .mqtt_refused
                    .with_label_values(&[CloseReason::TooManyConnections.as_str()])
                    .inc();
                telemetry
                    .connections_refused
                    .with_label_values(&["mqtt", limit.as_str()])
                    .inc();
                drop(stream);
                continue;
            }
        };
        let (config, telemetry, cancel) = (config.clone(), telemetry.clone(), cancel.clone());
        tracker.spawn(async move {
            let _permit = permit;
            telemetry.mqtt_connects.inc();
            telemetry.mqtt_connections.inc();
            let _ = stream.set_nodelay(true);
            let result = match (&config.tls, tls) {
                (Some(tls), true) => {
                    match tokio::time::timeout(config.connect_timeout, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => {
                            let cert = wardhub_adapters::tls::peer_identity(s.get_ref().1);
                            connection(s, peer, cert, &config, &telemetry, &cancel).await
                        }
                        _ => Err(CloseReason::Tls),
                    }
                }
                _ => connection(stream, peer, None, &config, &telemetry, &cancel).await,
            };
            telemetry.mqtt_connections.dec();
            telemetry.mqtt_disconnects.inc();
            if let Err(reason) = result {
                telemetry
                    .mqtt_refused
                    .with_label_values(&[reason.as_str()])
                    .inc();
                tracing::info!(%peer, reason = reason.as_str(), "mqtt connection closed by the hub");
            }
        });
    }
    drop(listener);
    drop(tls_listener);
    tracker.close();
    tracker.wait().await;
}

async fn accept_opt(l: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Who a CONNECT is.
enum Identity {
    /// A device, and the MQTT JSON adapter that takes its publishes.
    Device(DeviceId, Option<Arc<Live>>, Arc<MqttJsonIngest>),
    Service(Acl),
}

/// Why a CONNECT is refused: the MQTT 5 CONNACK reason code, a log text, the metric reason.
struct Refused(u8, &'static str, CloseReason);

impl From<AuthRefusal> for Refused {
    fn from(r: AuthRefusal) -> Refused {
        let code = if r == AuthRefusal::BadCredentials {
            0x86
        } else {
            0x87
        };
        Refused(code, r.as_str(), CloseReason::Auth)
    }
}

/// Who a CONNECT is, or why it is refused. `cert` is the connection's verified client
/// certificate (mTLS): a device whose certificate's subject CN is its client id needs no
/// password.
fn identify(
    info: &Connect,
    cert: Option<&wardhub_adapters::tls::PeerIdentity>,
    config: &EdgeConfig,
) -> Result<Identity, Refused> {
    if acl::is_reserved(&info.client_id) {
        return Err(Refused(
            0x85,
            "client id reserved for the hub",
            CloseReason::ReservedId,
        ));
    }
    if let Some(user) = &info.username {
        if let Some(a) = config.service_accounts.iter().find(|a| &a.name == user) {
            let ok = info
                .password
                .as_deref()
                .is_some_and(|p| crate::auth::sha256(p) == a.password_sha256);
            if !ok || info.client_id.is_empty() {
                return Err(AuthRefusal::BadCredentials.into());
            }
            if config.registry.is_registered(&info.client_id) {
                return Err(Refused(
                    0x85,
                    "a service account may not use a device's client id",
                    CloseReason::ReservedId,
                ));
            }
            return Ok(Identity::Service(Acl::Service {
                filters: a.subscribe.clone(),
                level: info.level,
            }));
        }
        if user != &info.client_id {
            return Err(AuthRefusal::BadCredentials.into());
        }
    }
    let Ok(id) = DeviceId::new(&info.client_id) else {
        return Err(AuthRefusal::Unknown.into());
    };
    let by_certificate = cert.and_then(|c| c.common_name.as_deref()) == Some(id.as_str());
    let outcome = if by_certificate {
        config.registry.authenticate_certificate(&info.client_id)
    } else {
        config
            .registry
            .authenticate(&info.client_id, info.password.as_deref())
    };
    let live = match outcome {
        AuthOutcome::Device(live) => Some(live),
        AuthOutcome::Unregistered => None,
        AuthOutcome::Refused(r) => return Err(r.into()),
    };
    if info
        .will_topic()
        .is_some_and(|t| !Acl::device(id.as_str()).may_publish(t))
    {
        return Err(AuthRefusal::Forbidden.into());
    }
    let Some(ingest) = config.ingest.clone() else {
        return Err(Refused(
            0x88,
            "the MQTT JSON adapter is off",
            CloseReason::Upstream,
        ));
    };
    Ok(Identity::Device(id, live, ingest))
}

async fn connection<S>(
    mut client: S,
    peer: SocketAddr,
    cert: Option<wardhub_adapters::tls::PeerIdentity>,
    config: &EdgeConfig,
    telemetry: &Telemetry,
    cancel: &CancellationToken,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut buf = BytesMut::with_capacity(512);
    let connect_len = tokio::select! {
        r = tokio::time::timeout(config.connect_timeout, read_connect(&mut client, &mut buf, config.max_packet_bytes)) => {
            match r {
                Err(_) => return Err(CloseReason::ConnectTimeout),
                Ok(Err(reason)) => return Err(reason),
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(n))) => n,
            }
        }
        _ = cancel.cancelled() => return Ok(()),
    };
    let info = parse_connect(&buf[..connect_len])?;
    let identity = match identify(&info, cert.as_ref(), config) {
        Ok(i) => i,
        Err(Refused(code, why, reason)) => {
            let who = if is_valid_id(&info.client_id) {
                info.client_id.as_str()
            } else {
                "(not a device id)"
            };
            tracing::warn!(%peer, client_id = who, reason = why, "mqtt connection refused");
            let _ = client
                .write_all(&packet::connack_refused(info.level, code))
                .await;
            let _ = client.flush().await;
            let _ = client.shutdown().await;
            return Err(reason);
        }
    };
    let connect = buf.split_to(connect_len);
    match identity {
        Identity::Device(id, live, ingest) => {
            device::Device {
                config,
                ingest: &ingest,
                telemetry,
                cancel,
                id,
                live,
            }
            .serve(client, buf, info)
            .await
        }
        Identity::Service(acl) => {
            let name = info.username.clone().unwrap_or_default();
            let r = relay::serve(client, &info, &connect, buf, acl, config, cancel).await;
            if r == Err(CloseReason::Acl) {
                tracing::warn!(%peer, client = %name, "mqtt connection closed: a service account may only subscribe within its filters");
            }
            r
        }
    }
}

/// Reads until `buf` holds the CONNECT; returns its length (`None` on a clean EOF).
async fn read_connect<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<usize>, CloseReason> {
    loop {
        if let Some((h, len)) = fixed_header(buf)? {
            if len > max {
                return Err(CloseReason::TooLarge);
            }
            if buf.len() >= h + len {
                return Ok(Some(h + len));
            }
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_distinct_labels() {
        let all = CloseReason::ALL;
        let labels: std::collections::HashSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
