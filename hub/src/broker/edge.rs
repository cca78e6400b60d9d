//! The hub's public MQTT listener: a packet-aware relay in front of rumqttd.
//!
//! Per connection: read the CONNECT (within `connect_timeout`, at most `max_packet_bytes`),
//! route by protocol level to the internal 3.1.1 or 5 listener, then relay. Device → broker
//! traffic is framed (check the fixed header → wait for the whole packet → forward), so a
//! packet over the limit closes the connection before it is buffered. Broker → device is a
//! plain copy.
//!
//! Authentication and the topic ACL live here (rumqttd 0.20 has no ACL, and refuses a bad
//! login by closing without a CONNACK):
//! - the CONNECT's client id must be a registered, active device id; the user name, when
//!   given, must equal it; the password must match the device's credential (devices seeded
//!   from the config without `secret_sha256` connect by id alone). A refusal is answered with
//!   a CONNACK (3.1.1: 5 "not authorized" / 4 "bad user name or password"; 5: 0x87 / 0x86);
//! - a device may publish only under `wardhub/v1/devices/{its id}/` and subscribe only to
//!   filters under it (its last will included); anything else closes the connection before
//!   the packet reaches the broker;
//! - a service account (`[[mqtt.service_accounts]]`) may subscribe to filters within its list
//!   and may not publish;
//! - the CONNECT forwarded to the internal listener carries the hub's own internal login
//!   instead of the device's, and the internal listeners accept nothing else, so a local
//!   process cannot bypass the edge by connecting to them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use wardhub_adapters::model::{is_valid_id, Clock, SystemClock};

use crate::registry::{AuthOutcome, AuthRefusal, Live, Registry};
use crate::telemetry::Telemetry;

/// What the edge needs to know.
#[derive(Clone)]
pub struct EdgeConfig {
    pub internal_v4: SocketAddr,
    pub internal_v5: SocketAddr,
    pub max_packet_bytes: usize,
    pub connect_timeout: Duration,
    pub max_connections: usize,
    /// Who may connect.
    pub registry: Arc<dyn Registry>,
    pub service_accounts: Vec<ServiceLogin>,
    /// The login the internal listeners accept (user, password); the edge puts it in every
    /// CONNECT it forwards.
    pub internal_login: Option<(String, String)>,
    /// Accepts TLS on the second listener given to [`run`].
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("internal_v4", &self.internal_v4)
            .field("internal_v5", &self.internal_v5)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .field("service_accounts", &self.service_accounts.len())
            .field("tls", &self.tls.is_some())
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

/// Loads a PEM certificate chain and key into a TLS acceptor.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", cert.display()));
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no PEM private key", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Why the edge closed a connection (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ConnectTimeout,
    NotConnect,
    Malformed,
    TooLarge,
    Protocol,
    TooManyConnections,
    Upstream,
    /// Refused at CONNECT: unknown, retired, bad credentials.
    Auth,
    /// Published or subscribed outside what the identity may.
    Acl,
    /// The TLS handshake failed (or was not TLS at all).
    Tls,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ConnectTimeout => "connect_timeout",
            CloseReason::NotConnect => "not_connect",
            CloseReason::Malformed => "malformed",
            CloseReason::TooLarge => "too_large",
            CloseReason::Protocol => "protocol_version",
            CloseReason::TooManyConnections => "too_many_connections",
            CloseReason::Upstream => "broker_unavailable",
            CloseReason::Auth => "auth",
            CloseReason::Acl => "acl",
            CloseReason::Tls => "tls",
        }
    }
}

/// The parts of a CONNECT the hub uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    /// 3 (3.1), 4 (3.1.1) or 5.
    pub level: u8,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// The last will's topic, when there is one.
    pub will_topic: Option<String>,
}

/// Parses the fixed header at the start of `buf`: `Ok(None)` until it is complete, then the
/// header length and the remaining length.
pub fn fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, CloseReason> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut value = 0usize;
    let mut shift = 0;
    for i in 1..5 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
        shift += 7;
    }
    Err(CloseReason::Malformed)
}

fn take_u16(b: &mut &[u8]) -> Option<u16> {
    if b.len() < 2 {
        return None;
    }
    let v = u16::from_be_bytes([b[0], b[1]]);
    *b = &b[2..];
    Some(v)
}

fn take_bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::from(take_u16(b)?);
    if b.len() < len {
        return None;
    }
    let (head, tail) = b.split_at(len);
    *b = tail;
    Some(head)
}

fn skip_varint_block(b: &mut &[u8]) -> Option<()> {
    let (h, len) = fixed_header_like(b)?;
    if b.len() < h + len {
        return None;
    }
    *b = &b[h + len..];
    Some(())
}

/// A variable byte integer at the start of `b`: (its length, its value).
fn fixed_header_like(b: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    let mut shift = 0;
    for i in 0..4 {
        let byte = *b.get(i)?;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((i + 1, value));
        }
        shift += 7;
    }
    None
}

/// Parses a whole CONNECT packet (fixed header included).
pub fn parse_connect(packet: &[u8]) -> Result<ConnectInfo, CloseReason> {
    if packet.first().map(|b| b >> 4) != Some(1) {
        return Err(CloseReason::NotConnect);
    }
    let (h, _) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    let mut b = &packet[h..];
    let bad = CloseReason::Malformed;
    let name = take_bytes(&mut b).ok_or(bad)?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return Err(CloseReason::Protocol);
    }
    let level = *b.first().ok_or(bad)?;
    if !matches!(level, 3..=5) {
        return Err(CloseReason::Protocol);
    }
    let flags = *b.get(1).ok_or(bad)?;
    b = b.get(4..).ok_or(bad)?; // level, flags, keep alive
    if level == 5 {
        skip_varint_block(&mut b).ok_or(bad)?; // properties
    }
    let client_id = String::from_utf8(take_bytes(&mut b).ok_or(bad)?.to_vec()).map_err(|_| bad)?;
    let mut will_topic = None;
    if flags & 0x04 != 0 {
        if level == 5 {
            skip_varint_block(&mut b).ok_or(bad)?; // will properties
        }
        will_topic =
            Some(String::from_utf8(take_bytes(&mut b).ok_or(bad)?.to_vec()).map_err(|_| bad)?);
        take_bytes(&mut b).ok_or(bad)?; // will payload
    }
    let username = if flags & 0x80 != 0 {
        Some(String::from_utf8(take_bytes(&mut b).ok_or(bad)?.to_vec()).map_err(|_| bad)?)
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(take_bytes(&mut b).ok_or(bad)?.to_vec())
    } else {
        None
    };
    Ok(ConnectInfo {
        level,
        client_id,
        username,
        password,
        will_topic,
    })
}

/// The CONNECT `packet` with its user name and password replaced (everything else kept).
pub fn rewrite_connect(packet: &[u8], user: &str, pass: &str) -> Result<Vec<u8>, CloseReason> {
    let bad = CloseReason::Malformed;
    let (h, _) = fixed_header(packet)?.ok_or(bad)?;
    let mut b = &packet[h..];
    let mut body = Vec::with_capacity(packet.len() + user.len() + pass.len());
    let start = b;
    take_bytes(&mut b).ok_or(bad)?; // protocol name
    let level = *b.first().ok_or(bad)?;
    let flags = *b.get(1).ok_or(bad)?;
    let keep_alive = b.get(2..4).ok_or(bad)?;
    body.extend_from_slice(&start[..start.len() - b.len()]);
    body.push(level);
    // User name and password present; bit 0 is reserved and zero.
    body.push((flags & 0x3E) | 0xC0);
    body.extend_from_slice(keep_alive);
    b = &b[4..];
    let copied = b;
    if level == 5 {
        skip_varint_block(&mut b).ok_or(bad)?;
    }
    take_bytes(&mut b).ok_or(bad)?; // client id
    if flags & 0x04 != 0 {
        if level == 5 {
            skip_varint_block(&mut b).ok_or(bad)?;
        }
        take_bytes(&mut b).ok_or(bad)?;
        take_bytes(&mut b).ok_or(bad)?;
    }
    body.extend_from_slice(&copied[..copied.len() - b.len()]);
    for field in [user.as_bytes(), pass.as_bytes()] {
        let len = u16::try_from(field.len()).map_err(|_| bad)?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(field);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0x10);
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// A CONNACK refusing the connection: not authorized (unknown, retired, no permission) or bad
/// user name or password.
pub fn connack_refusal(level: u8, refusal: AuthRefusal) -> Vec<u8> {
    let bad_login = refusal == AuthRefusal::BadCredentials;
    if level == 5 {
        vec![0x20, 3, 0, if bad_login { 0x86 } else { 0x87 }, 0]
    } else {
        vec![0x20, 2, 0, if bad_login { 4 } else { 5 }]
    }
}

/// Whether the MQTT filter `req` matches only topics that `allowed` matches.
pub fn filter_within(req: &str, allowed: &str) -> bool {
    if req.starts_with('$') {
        return false;
    }
    let mut r = req.split('/');
    let mut a = allowed.split('/');
    loop {
        match (a.next(), r.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(x)) if x != "#" => {}
            (Some(l), Some(x)) if l == x && x != "+" && x != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// What a connection may do.
#[derive(Debug, Clone)]
pub enum Acl {
    /// A device: its own topics only (`wardhub/v1/devices/{id}/…`).
    Device { prefix: String, level: u8 },
    /// A service account: subscribe within these filters, never publish.
    Service { filters: Vec<String>, level: u8 },
}

impl Acl {
    pub fn device(id: &str, level: u8) -> Acl {
        Acl::Device {
            prefix: format!("wardhub/v1/devices/{id}/"),
            level,
        }
    }

    fn level(&self) -> u8 {
        match self {
            Acl::Device { level, .. } | Acl::Service { level, .. } => *level,
        }
    }

    pub fn may_publish(&self, topic: &str) -> bool {
        match self {
            // An empty topic (MQTT 5) uses a topic alias, which only a checked topic can set.
            Acl::Device { prefix, level } => {
                (topic.is_empty() && *level == 5)
                    || (topic.len() > prefix.len()
                        && topic.starts_with(prefix.as_str())
                        && !topic.contains(['+', '#']))
            }
            Acl::Service { .. } => false,
        }
    }

    pub fn may_subscribe(&self, filter: &str) -> bool {
        match self {
            Acl::Device { prefix, .. } => {
                filter.len() > prefix.len() && filter.starts_with(prefix.as_str())
            }
            Acl::Service { filters, .. } => filters.iter().any(|a| filter_within(filter, a)),
        }
    }

    /// Checks one whole packet (fixed header included): `false` means close the connection.
    pub fn allows(&self, packet: &[u8]) -> bool {
        let Ok(Some((h, _))) = fixed_header(packet) else {
            return false;
        };
        let mut b = &packet[h..];
        match packet[0] >> 4 {
            3 => match take_bytes(&mut b).map(std::str::from_utf8) {
                Some(Ok(topic)) => self.may_publish(topic),
                _ => false,
            },
            8 => {
                if take_u16(&mut b).is_none() {
                    return false;
                }
                if self.level() == 5 && skip_varint_block(&mut b).is_none() {
                    return false;
                }
                let mut any = false;
                while !b.is_empty() {
                    match take_bytes(&mut b).map(std::str::from_utf8) {
                        Some(Ok(f)) if self.may_subscribe(f) => {}
                        _ => return false,
                    }
                    if b.is_empty() {
                        return false; // the options byte is missing
                    }
                    b = &b[1..];
                    any = true;
                }
                any
            }
            _ => true,
        }
    }
}

/// Binds the public listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections (plain on `listener`, TLS on `tls_listener` when given) until
/// `cancel`; then closes every open device connection and returns once they are gone.
pub async fn run(
    listener: TcpListener,
    tls_listener: Option<TcpListener>,
    config: EdgeConfig,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
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
        if tracker.len() >= config.max_connections {
            telemetry
                .mqtt_refused
                .with_label_values(&[CloseReason::TooManyConnections.as_str()])
                .inc();
            drop(stream);
            continue;
        }
        let (config, telemetry, cancel) = (config.clone(), telemetry.clone(), cancel.clone());
        tracker.spawn(async move {
            telemetry.mqtt_connects.inc();
            telemetry.mqtt_connections.inc();
            let _ = stream.set_nodelay(true);
            let result = match (&config.tls, tls) {
                (Some(acceptor), true) => {
                    match tokio::time::timeout(config.connect_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => connection(s, peer, &config, &cancel).await,
                        _ => Err(CloseReason::Tls),
                    }
                }
                _ => connection(stream, peer, &config, &cancel).await,
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

/// Who a CONNECT is, or why it is refused.
fn identify(
    info: &ConnectInfo,
    config: &EdgeConfig,
) -> Result<(Acl, Option<Arc<Live>>), AuthRefusal> {
    if let Some(user) = &info.username {
        if let Some(a) = config.service_accounts.iter().find(|a| &a.name == user) {
            let ok = info
                .password
                .as_deref()
                .is_some_and(|p| crate::auth::sha256(p) == a.password_sha256);
            return if ok && !info.client_id.is_empty() {
                Ok((
                    Acl::Service {
                        filters: a.subscribe.clone(),
                        level: info.level,
                    },
                    None,
                ))
            } else {
                Err(AuthRefusal::BadCredentials)
            };
        }
        if user != &info.client_id {
            return Err(AuthRefusal::BadCredentials);
        }
    }
    if !is_valid_id(&info.client_id) {
        return Err(AuthRefusal::Unknown);
    }
    let live = match config
        .registry
        .authenticate(&info.client_id, info.password.as_deref())
    {
        AuthOutcome::Device(live) => Some(live),
        AuthOutcome::Unregistered => None,
        AuthOutcome::Refused(r) => return Err(r),
    };
    Ok((Acl::device(&info.client_id, info.level), live))
}

/// Marks a device connected for as long as this lives.
struct Connected(Option<Arc<Live>>);

impl Drop for Connected {
    fn drop(&mut self) {
        if let Some(l) = &self.0 {
            l.disconnected(SystemClock.now_ms());
        }
    }
}

async fn connection<S>(
    mut client: S,
    peer: SocketAddr,
    config: &EdgeConfig,
    cancel: &CancellationToken,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut buf = BytesMut::with_capacity(512);
    let connect_len = tokio::select! {
        r = tokio::time::timeout(config.connect_timeout, read_packet(&mut client, &mut buf, config.max_packet_bytes)) => {
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
    let identified = identify(&info, config).and_then(|(acl, live)| match &info.will_topic {
        Some(t) if !acl.may_publish(t) || t.is_empty() => Err(AuthRefusal::Forbidden),
        _ => Ok((acl, live)),
    });
    let (acl, live) = match identified {
        Ok(x) => x,
        Err(refusal) => {
            let who = if is_valid_id(&info.client_id) {
                info.client_id.as_str()
            } else {
                "(not a device id)"
            };
            tracing::warn!(%peer, client_id = who, reason = refusal.as_str(), "mqtt connection refused");
            let _ = client
                .write_all(&connack_refusal(info.level, refusal))
                .await;
            let _ = client.flush().await;
            let _ = client.shutdown().await;
            return Err(CloseReason::Auth);
        }
    };
    let connect = match &config.internal_login {
        Some((user, pass)) => rewrite_connect(&buf[..connect_len], user, pass)?,
        None => buf[..connect_len].to_vec(),
    };
    buf.advance(connect_len);
    let internal = if info.level == 5 {
        config.internal_v5
    } else {
        config.internal_v4
    };
    let mut upstream = TcpStream::connect(internal)
        .await
        .map_err(|_| CloseReason::Upstream)?;
    let _ = upstream.set_nodelay(true);
    upstream
        .write_all(&connect)
        .await
        .map_err(|_| CloseReason::Upstream)?;
    let _connected = Connected(live.clone());
    if let Some(l) = &live {
        l.connected(SystemClock.now_ms());
    }
    let (client_rd, mut client_wr) = tokio::io::split(client);
    let (mut broker_rd, broker_wr) = upstream.into_split();
    let up = relay_up(
        client_rd,
        broker_wr,
        buf,
        config.max_packet_bytes,
        &acl,
        live.as_deref(),
    );
    let down = tokio::io::copy(&mut broker_rd, &mut client_wr);
    let result = tokio::select! {
        r = up => r,
        _ = down => Ok(()),
        _ = cancel.cancelled() => Ok(()),
    };
    if result == Err(CloseReason::Acl) {
        let who = match &acl {
            Acl::Device { .. } => info.client_id.as_str(),
            Acl::Service { .. } => info.username.as_deref().unwrap_or("-"),
        };
        tracing::warn!(%peer, client = who, "mqtt connection closed: publish or subscribe outside its own topics");
    }
    result
}

/// Reads until `buf` holds one whole packet; returns its length (`None` on a clean EOF).
async fn read_packet<R: AsyncRead + Unpin>(
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
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
}

/// Device → broker: forwards whole packets only, never one over `max` and never one the ACL
/// refuses (the connection is closed at that packet; the ones before it are forwarded).
async fn relay_up<R, W>(
    mut rd: R,
    mut wr: W,
    mut buf: BytesMut,
    max: usize,
    acl: &Acl,
    live: Option<&Live>,
) -> Result<(), CloseReason>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let mut ready = 0;
        let mut refused = false;
        let mut publishes = 0u32;
        while let Some((h, len)) = fixed_header(&buf[ready..])? {
            if len > max {
                return Err(CloseReason::TooLarge);
            }
            if buf.len() - ready < h + len {
                break;
            }
            let packet = &buf[ready..ready + h + len];
            if !acl.allows(packet) {
                refused = true;
                break;
            }
            if packet[0] >> 4 == 3 {
                publishes += 1;
            }
            ready += h + len;
        }
        if ready > 0 {
            if wr.write_all(&buf[..ready]).await.is_err() {
                return Ok(());
            }
            buf.advance(ready);
        }
        if publishes > 0 {
            if let Some(l) = live {
                let now = SystemClock.now_ms();
                for _ in 0..publishes {
                    l.message(now);
                }
            }
        }
        if refused {
            return Err(CloseReason::Acl);
        }
        buf.reserve(4096);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn connect_v4(client_id: &str, user: Option<(&str, &str)>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 4]);
        body.extend_from_slice(b"MQTT");
        body.push(4);
        body.push(if user.is_some() { 0xC2 } else { 0x02 });
        body.extend_from_slice(&[0, 60]);
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        if let Some((u, p)) = user {
            body.extend_from_slice(&(u.len() as u16).to_be_bytes());
            body.extend_from_slice(u.as_bytes());
            body.extend_from_slice(&(p.len() as u16).to_be_bytes());
            body.extend_from_slice(p.as_bytes());
        }
        let mut p = vec![0x10, body.len() as u8];
        p.extend(body);
        p
    }

    #[test]
    fn parses_connect() {
        let info = parse_connect(&connect_v4("mon-1", Some(("mon-1", "s3cret")))).unwrap();
        assert_eq!(info.level, 4);
        assert_eq!(info.client_id, "mon-1");
        assert_eq!(info.username.as_deref(), Some("mon-1"));
        assert_eq!(info.password.as_deref(), Some(&b"s3cret"[..]));
        let info = parse_connect(&connect_v4("x", None)).unwrap();
        assert_eq!(info.username, None);
    }

    #[test]
    fn refuses_non_connect_and_bad_versions() {
        assert_eq!(parse_connect(&[0x30, 0]), Err(CloseReason::NotConnect));
        let mut p = connect_v4("x", None);
        p[8] = 9; // protocol level
        assert_eq!(parse_connect(&p), Err(CloseReason::Protocol));
    }

    #[test]
    fn fixed_header_lengths() {
        assert_eq!(fixed_header(&[0x30]), Ok(None));
        assert_eq!(fixed_header(&[0x30, 0x05]), Ok(Some((2, 5))));
        assert_eq!(fixed_header(&[0x30, 0x80, 0x01]), Ok(Some((3, 128))));
        assert_eq!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0x7f]),
            Ok(Some((5, 268_435_455)))
        );
        assert_eq!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff]),
            Err(CloseReason::Malformed)
        );
    }

    fn publish(topic: &str) -> Vec<u8> {
        let mut p = vec![0x32, (2 + topic.len() + 2 + 2) as u8];
        p.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        p.extend_from_slice(topic.as_bytes());
        p.extend_from_slice(&[0, 1]); // packet id
        p.extend_from_slice(b"{}");
        p
    }

    fn subscribe(filters: &[&str]) -> Vec<u8> {
        let mut body = vec![0, 1];
        for f in filters {
            body.extend_from_slice(&(f.len() as u16).to_be_bytes());
            body.extend_from_slice(f.as_bytes());
            body.push(1);
        }
        let mut p = vec![0x82, body.len() as u8];
        p.extend(body);
        p
    }

    #[test]
    fn acl_confines_a_device_to_its_topics() {
        let acl = Acl::device("mon-1", 4);
        assert!(acl.allows(&publish("wardhub/v1/devices/mon-1/obs")));
        assert!(acl.allows(&publish("wardhub/v1/devices/mon-1/status")));
        assert!(!acl.allows(&publish("wardhub/v1/devices/mon-2/obs")));
        assert!(!acl.allows(&publish("wardhub/v1/devices/mon-10/obs")));
        assert!(!acl.allows(&publish("wardhub/v1/devices/mon-1")));
        assert!(!acl.allows(&publish("wardhub/v1/wards/ward-1/alarms")));
        assert!(!acl.allows(&publish("")), "topic aliases are MQTT 5 only");
        assert!(Acl::device("mon-1", 5).allows(&publish("")));
        assert!(acl.allows(&subscribe(&["wardhub/v1/devices/mon-1/#"])));
        assert!(!acl.allows(&subscribe(&["wardhub/v1/devices/mon-1/#", "#"])));
        assert!(!acl.allows(&subscribe(&["wardhub/v1/devices/+/obs"])));
        assert!(!acl.allows(&subscribe(&[])));
        // Truncated packets are refused, other packet types pass.
        assert!(!acl.allows(&[0x30, 1, 0]));
        assert!(acl.allows(&[0xC0, 0]));
    }

    #[test]
    fn service_filters_are_subsets() {
        assert!(filter_within(
            "wardhub/v1/wards/w1/alarms",
            "wardhub/v1/wards/#"
        ));
        assert!(filter_within(
            "wardhub/v1/wards/+/alarms",
            "wardhub/v1/wards/#"
        ));
        assert!(filter_within(
            "wardhub/v1/wards/+/alarms",
            "wardhub/v1/wards/+/alarms"
        ));
        assert!(!filter_within("wardhub/v1/#", "wardhub/v1/wards/#"));
        assert!(!filter_within(
            "wardhub/v1/wards/#",
            "wardhub/v1/wards/+/alarms"
        ));
        assert!(!filter_within(
            "wardhub/v1/devices/x/obs",
            "wardhub/v1/wards/#"
        ));
        assert!(!filter_within(
            "$share/g/wardhub/v1/wards/#",
            "wardhub/v1/wards/#"
        ));
        let acl = Acl::Service {
            filters: vec!["wardhub/v1/wards/#".into()],
            level: 4,
        };
        assert!(acl.allows(&subscribe(&["wardhub/v1/wards/w1/alarms"])));
        assert!(!acl.allows(&publish("wardhub/v1/wards/w1/alarms")));
    }

    #[test]
    fn connect_rewrite_keeps_everything_but_the_login() {
        for user in [None, Some(("mon-1", "device-secret"))] {
            let original = connect_v4("mon-1", user);
            let rewritten = rewrite_connect(&original, "wardhub-edge", "internal").unwrap();
            let info = parse_connect(&rewritten).unwrap();
            assert_eq!(info.client_id, "mon-1");
            assert_eq!(info.level, 4);
            assert_eq!(info.username.as_deref(), Some("wardhub-edge"));
            assert_eq!(info.password.as_deref(), Some(&b"internal"[..]));
        }
        assert_eq!(
            connack_refusal(4, AuthRefusal::BadCredentials),
            vec![0x20, 2, 0, 4]
        );
        assert_eq!(
            connack_refusal(5, AuthRefusal::Unknown),
            vec![0x20, 3, 0, 0x87, 0]
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = fixed_header(&bytes);
            let _ = parse_connect(&bytes);
            let _ = rewrite_connect(&bytes, "u", "p");
            let _ = Acl::device("d", 5).allows(&bytes);
        }
    }

    #[tokio::test]
    async fn relay_forwards_whole_packets_and_cuts_oversized() {
        let (mut dev, dev_side) = tokio::io::duplex(1 << 16);
        let (broker_side, mut broker) = tokio::io::duplex(1 << 16);
        let acl = Acl::device("x", 4);
        let task = tokio::spawn(async move {
            relay_up(dev_side, broker_side, BytesMut::new(), 100, &acl, None).await
        });
        // One packet split in two writes arrives whole.
        let topic = b"wardhub/v1/devices/x/obs";
        let mut p = vec![0x30, (2 + topic.len() + 2) as u8, 0, topic.len() as u8];
        p.extend_from_slice(topic);
        p.extend_from_slice(b"{}");
        dev.write_all(&p[..5]).await.unwrap();
        dev.write_all(&p[5..]).await.unwrap();
        let mut got = vec![0u8; p.len()];
        broker.read_exact(&mut got).await.unwrap();
        assert_eq!(got, p);
        // A header announcing 200 bytes closes the relay at once.
        dev.write_all(&[0x30, 0xC8, 0x01]).await.unwrap();
        assert_eq!(task.await.unwrap(), Err(CloseReason::TooLarge));
    }
}
