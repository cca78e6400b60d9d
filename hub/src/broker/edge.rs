//! The hub's public MQTT listener: a packet-aware relay in front of rumqttd.
//!
//! Per connection: read the CONNECT (within `connect_timeout`, at most `max_packet_bytes`),
//! route by protocol level to the internal 3.1.1 or 5 listener, then relay. Device → broker
//! traffic is framed (check the fixed header → wait for the whole packet → forward), so a
//! packet over the limit closes the connection before it is buffered. Broker → device is a
//! plain copy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::telemetry::Telemetry;

/// What the edge needs to know.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub internal_v4: SocketAddr,
    pub internal_v5: SocketAddr,
    pub max_packet_bytes: usize,
    pub connect_timeout: Duration,
    pub max_connections: usize,
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
    if flags & 0x04 != 0 {
        if level == 5 {
            skip_varint_block(&mut b).ok_or(bad)?; // will properties
        }
        take_bytes(&mut b).ok_or(bad)?; // will topic
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
    })
}

/// Binds the public listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections until `cancel`; then closes every open device connection and returns
/// once they are gone.
pub async fn run(
    listener: TcpListener,
    config: EdgeConfig,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
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
            let result = connection(stream, &config, &cancel).await;
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
    tracker.close();
    tracker.wait().await;
}

async fn connection(
    mut client: TcpStream,
    config: &EdgeConfig,
    cancel: &CancellationToken,
) -> Result<(), CloseReason> {
    let _ = client.set_nodelay(true);
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
    let internal = if info.level == 5 {
        config.internal_v5
    } else {
        config.internal_v4
    };
    let upstream = TcpStream::connect(internal)
        .await
        .map_err(|_| CloseReason::Upstream)?;
    let _ = upstream.set_nodelay(true);
    let (client_rd, mut client_wr) = client.into_split();
    let (mut broker_rd, broker_wr) = upstream.into_split();
    let up = relay_up(client_rd, broker_wr, buf, config.max_packet_bytes);
    let down = tokio::io::copy(&mut broker_rd, &mut client_wr);
    tokio::select! {
        r = up => r,
        _ = down => Ok(()),
        _ = cancel.cancelled() => Ok(()),
    }
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

/// Device → broker: forwards whole packets only, never one over `max`.
async fn relay_up<R, W>(
    mut rd: R,
    mut wr: W,
    mut buf: BytesMut,
    max: usize,
) -> Result<(), CloseReason>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let mut ready = 0;
        while let Some((h, len)) = fixed_header(&buf[ready..])? {
            if len > max {
                return Err(CloseReason::TooLarge);
            }
            if buf.len() - ready < h + len {
                break;
            }
            ready += h + len;
        }
        if ready > 0 {
            if wr.write_all(&buf[..ready]).await.is_err() {
                return Ok(());
            }
            buf.advance(ready);
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

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = fixed_header(&bytes);
            let _ = parse_connect(&bytes);
        }
    }

    #[tokio::test]
    async fn relay_forwards_whole_packets_and_cuts_oversized() {
        let (mut dev, dev_side) = tokio::io::duplex(1 << 16);
        let (broker_side, mut broker) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(relay_up(dev_side, broker_side, BytesMut::new(), 100));
        // One packet split in two writes arrives whole.
        dev.write_all(&[0x30, 4, 0, 1]).await.unwrap();
        dev.write_all(b"tx").await.unwrap();
        let mut got = [0u8; 6];
        broker.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0x30, 4, 0, 1, b't', b'x']);
        // A header announcing 200 bytes closes the relay at once.
        dev.write_all(&[0x30, 0xC8, 0x01]).await.unwrap();
        assert_eq!(task.await.unwrap(), Err(CloseReason::TooLarge));
    }
}
