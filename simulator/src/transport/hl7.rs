//! One simulated device on HL7 v2 over MLLP: one message at a time, each awaiting its ACK.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wardhub_adapters::hl7::mllp::{encode, Framer, Item};

use super::{Command, Stats};

const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The acknowledgment code (`AA`, `AE`, `AR`, `CA`…) of an ACK message.
pub fn ack_code(ack: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(ack);
    let msa = text
        .split(['\r', '\n'])
        .find(|seg| seg.starts_with("MSA"))?;
    let sep = msa.chars().nth(3)?;
    msa.split(sep).nth(1).map(|c| c.trim().to_owned())
}

/// Outcome of sending one message.
enum Sent {
    Acked,
    Refused(String),
}

async fn exchange(
    stream: &mut TcpStream,
    framer: &mut Framer,
    buf: &mut BytesMut,
    message: &[u8],
) -> std::io::Result<Sent> {
    let mut out = BytesMut::new();
    encode(message, &mut out);
    stream.write_all(&out).await?;
    loop {
        while let Some(item) = framer.next(buf) {
            if let Item::Frame(ack) = item {
                return Ok(match ack_code(&ack).as_deref() {
                    Some("AA") | Some("CA") => Sent::Acked,
                    Some(code) => Sent::Refused(code.to_owned()),
                    None => Sent::Refused("no MSA".into()),
                });
            }
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the hub closed the connection",
            ));
        }
    }
}

/// Runs one device until its command channel closes.
pub async fn run_device(
    id: String,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Command>,
    stats: Arc<Stats>,
) {
    let mut stream: Option<TcpStream> = None;
    let mut online = true;
    let mut framer = Framer::new(1 << 20);
    let mut buf = BytesMut::with_capacity(4096);
    while let Some(cmd) = rx.recv().await {
        let (payload, points) = match cmd {
            Command::Send {
                payload, points, ..
            } => (payload, u64::from(points)),
            Command::Drop => {
                stream = None;
                online = false;
                continue;
            }
            Command::Reconnect => {
                online = true;
                continue;
            }
        };
        if !online {
            Stats::add(&stats.dropped, 1);
            continue;
        }
        if stream.is_none() {
            match tokio::time::timeout(ACK_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                    framer = Framer::new(1 << 20);
                    buf.clear();
                }
                _ => {
                    Stats::add(&stats.errors, 1);
                    tracing::debug!(device = %id, "cannot connect to the HL7 listener");
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        let t0 = Instant::now();
        Stats::add(&stats.sent, 1);
        Stats::add(&stats.queued, 1);
        Stats::add(&stats.points_queued, points);
        match tokio::time::timeout(ACK_TIMEOUT, exchange(s, &mut framer, &mut buf, &payload)).await
        {
            Ok(Ok(Sent::Acked)) => {
                stats.hl7_latency.record(t0.elapsed());
                Stats::add(&stats.acked, 1);
                Stats::add(&stats.points_acked, points);
            }
            Ok(Ok(Sent::Refused(code))) => {
                stats.hl7_latency.record(t0.elapsed());
                Stats::add(&stats.refused, 1);
                tracing::debug!(device = %id, %code, "the hub refused an HL7 message");
            }
            Ok(Err(e)) => {
                Stats::add(&stats.errors, 1);
                tracing::debug!(device = %id, error = %e, "HL7 connection error");
                stream = None;
            }
            Err(_) => {
                Stats::add(&stats.errors, 1);
                tracing::debug!(device = %id, "no HL7 ACK in time");
                stream = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_codes() {
        assert_eq!(ack_code(b"MSH|^~\\&|A\rMSA|AA|42\r").as_deref(), Some("AA"));
        assert_eq!(
            ack_code(b"MSH|^~\\&|A\rMSA|AE|42|bad\rERR|x").as_deref(),
            Some("AE")
        );
        assert_eq!(ack_code(b"MSH|^~\\&|A\r"), None);
    }
}
