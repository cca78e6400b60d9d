//! A byte-level MQTT 3.1.1 / 5 client for tests that must see exactly what the hub answers:
//! which packet ids were acknowledged, reason codes, CONNACK properties, a connection dropped
//! between PUBREC and PUBREL. Nothing is hidden behind a client library's retries.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a CONNECT says.
#[derive(Debug, Clone)]
pub struct Opts {
    pub level: u8,
    pub client_id: String,
    pub login: Option<(String, String)>,
    pub clean: bool,
    pub keep_alive: u16,
    /// (topic, payload, will delay seconds for MQTT 5).
    pub will: Option<(String, String, u32)>,
    /// MQTT 5 Session Expiry Interval.
    pub session_expiry: Option<u32>,
}

impl Opts {
    pub fn new(level: u8, client_id: &str) -> Opts {
        Opts {
            level,
            client_id: client_id.into(),
            login: None,
            clean: true,
            keep_alive: 30,
            will: None,
            session_expiry: None,
        }
    }
}

pub use ward_sim::exact::{packet, publish_packet, put_str, whole};

/// The CONNECT packet for `o`.
pub fn connect_packet(o: &Opts) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(o.level);
    let mut flags = 0u8;
    if o.clean {
        flags |= 0x02;
    }
    if o.will.is_some() {
        flags |= 0x04 | 0x08; // will at QoS 1
    }
    if o.login.is_some() {
        flags |= 0xC0;
    }
    body.push(flags);
    body.extend_from_slice(&o.keep_alive.to_be_bytes());
    if o.level == 5 {
        match o.session_expiry {
            Some(s) => {
                body.push(5);
                body.push(0x11);
                body.extend_from_slice(&s.to_be_bytes());
            }
            None => body.push(0),
        }
    }
    put_str(&mut body, o.client_id.as_bytes());
    if let Some((topic, payload, delay)) = &o.will {
        if o.level == 5 {
            body.push(5);
            body.push(0x18);
            body.extend_from_slice(&delay.to_be_bytes());
        }
        put_str(&mut body, topic.as_bytes());
        put_str(&mut body, payload.as_bytes());
    }
    if let Some((u, p)) = &o.login {
        put_str(&mut body, u.as_bytes());
        put_str(&mut body, p.as_bytes());
    }
    packet(0x10, &body)
}

/// One connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub level: u8,
}

impl Raw {
    /// Connects and sends the CONNECT; returns the connection and the CONNACK (`None` when
    /// the hub closed without one).
    pub async fn connect(addr: SocketAddr, o: &Opts) -> (Raw, Option<Vec<u8>>) {
        let stream = TcpStream::connect(addr).await.expect("TCP connect");
        let _ = stream.set_nodelay(true);
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
            level: o.level,
        };
        raw.send(&connect_packet(o)).await;
        let connack = raw.read(Duration::from_secs(10)).await;
        (raw, connack)
    }

    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    pub async fn publish(&mut self, qos: u8, pkid: u16, topic: &str, payload: &[u8]) -> bool {
        let p = publish_packet(self.level, qos, false, pkid, topic, payload);
        self.send(&p).await
    }

    /// The next whole packet, `None` on close or timeout.
    pub async fn read(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(n) = whole(&self.buf) {
                return Some(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 8192];
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Reads packets until one of type `kind` (high nibble) arrives; `None` on close/timeout.
    pub async fn read_kind(&mut self, kind: u8, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.read(left).await?;
            if p[0] >> 4 == kind {
                return Some(p);
            }
        }
    }

    /// Whether the hub closes the connection within `timeout` (packets before are skipped).
    pub async fn closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut chunk = [0u8; 8192];
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return false,
            }
        }
    }
}

/// The packet id of a PUBACK / PUBREC / PUBREL / PUBCOMP and its MQTT 5 reason code (0 when
/// absent).
pub fn ack_of(p: &[u8]) -> (u16, u8) {
    (
        u16::from_be_bytes([p[2], p[3]]),
        p.get(4).copied().unwrap_or(0),
    )
}

/// The MQTT 5 properties of a CONNACK: (identifier, value as u32) for the integer ones.
pub fn connack_props(p: &[u8]) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    if p.len() < 5 {
        return out;
    }
    let mut b = &p[5..];
    while !b.is_empty() {
        let id = b[0];
        b = &b[1..];
        let (v, n) = match id {
            0x21 | 0x22 | 0x13 => (u32::from(u16::from_be_bytes([b[0], b[1]])), 2),
            0x11 | 0x27 => (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), 4),
            0x24 | 0x25 | 0x28 | 0x29 | 0x2A => (u32::from(b[0]), 1),
            _ => break,
        };
        out.push((id, v));
        b = &b[n..];
    }
    out
}
