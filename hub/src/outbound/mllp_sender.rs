//! An MLLP sender: one destination's oldest message in the outbox, over one MLLP connection
//! to its receiver (the EMR's interface engine, the alarm manager), then its ACK, then the
//! next (original-mode acknowledgement: one message in flight, so the receiver's order is
//! the outbox's).
//!
//! - AA (or CA): the message leaves the outbox, and the removal is made durable before the
//!   next message goes, so only a crash in that moment can send it again (same MSH-10).
//! - AE: sent again after the back-off, up to `error_attempts` answers, then set aside.
//! - AR: set aside at once (the receiver will never take it).
//! - No connection, no ACK within `ack_timeout`, an ACK for another control id, garbage: the
//!   connection is closed and the same message sent again after the back-off.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::hl7::message::Message;
use wardhub_adapters::hl7::mllp::{self, Framer, Item};
use wardhub_adapters::model::Clock;

use super::backoff::sleep_or_stop;
use super::metrics::OutboundMetrics;
use super::outbox::{Dest, Outbox};
use crate::store::SledStore;

/// Where and how an MLLP sender sends.
#[derive(Debug, Clone)]
pub struct MllpSettings {
    /// `host:port` of the receiver's MLLP listener.
    pub connect: String,
    /// No ACK within this: the connection is closed and the message sent again.
    pub ack_timeout: Duration,
    /// AE answers to one message before it is set aside; an AR sets it aside at once.
    pub error_attempts: u32,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

const MAX_ACK_BYTES: usize = 1 << 20;

/// What the receiver answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Accepted,
    Error(String),
    Rejected(String),
}

/// Reads MSA-1/MSA-2 (and ERR, for the record) of an ACK to `control_id`.
fn read_ack(frame: &[u8], control_id: &str) -> Result<Answer, String> {
    let msg = Message::parse(frame).map_err(|e| format!("the ACK does not parse: {e}"))?;
    let msa = msg.segment("MSA").ok_or("the ACK has no MSA segment")?;
    let code = msa.field(1).trimmed().to_ascii_uppercase();
    let acked = msa.field(2).trimmed().into_owned();
    if acked != control_id {
        return Err(format!(
            "the ACK is for control id {acked:?}, not {control_id:?}"
        ));
    }
    let text: String = String::from_utf8_lossy(frame)
        .split(['\r', '\n'])
        .filter(|s| s.starts_with("MSA") || s.starts_with("ERR"))
        .collect::<Vec<_>>()
        .join("\n");
    match code.as_str() {
        "AA" | "CA" => Ok(Answer::Accepted),
        "AE" | "CE" => Ok(Answer::Error(text)),
        "AR" | "CR" => Ok(Answer::Rejected(text)),
        other => Err(format!(
            "the ACK's MSA-1 {other:?} is not an acknowledgement code"
        )),
    }
}

/// Sends `d`'s messages until `cancel`.
pub async fn run(
    d: Dest,
    config: MllpSettings,
    outbox: Arc<Outbox>,
    store: Arc<SledStore>,
    metrics: OutboundMetrics,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let mut conn: Option<TcpStream> = None;
    let mut backoff = config.retry_min;
    // AE answers to the message now at the head.
    let mut errors: (u64, u32) = (0, 0);
    let connected = metrics.connected.with_label_values(&[d.as_str()]);
    while !cancel.is_cancelled() {
        let Some((seq, entry)) = outbox.next(d, &cancel).await else {
            break;
        };
        if conn.is_none() {
            match tokio::time::timeout(config.ack_timeout, TcpStream::connect(&config.connect))
                .await
            {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                    connected.set(1);
                }
                Ok(Err(e)) => {
                    connected.set(0);
                    metrics.retry(d, "connect");
                    tracing::warn!(destination = d.as_str(), to = %config.connect, error = %e, "MLLP: cannot connect; will retry");
                    if sleep_or_stop(&cancel, &mut backoff, config.retry_max).await {
                        break;
                    }
                    continue;
                }
                Err(_) => {
                    connected.set(0);
                    metrics.retry(d, "timeout");
                    if sleep_or_stop(&cancel, &mut backoff, config.retry_max).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let stream = conn.as_mut().expect("connected just above");
        metrics.sent.with_label_values(&[d.as_str()]).inc();
        let outcome = tokio::select! {
            () = cancel.cancelled() => break,
            r = exchange(stream, entry.payload.as_bytes(), &entry.batch_id, config.ack_timeout) => r,
        };
        let now = clock.now_ms();
        match outcome {
            Ok(Answer::Accepted) => {
                backoff = config.retry_min;
                errors = (0, 0);
                metrics.acknowledged.with_label_values(&[d.as_str()]).inc();
                if let Err(e) = outbox.acknowledged(d, seq) {
                    tracing::error!(error = %e, "outbox: an acknowledged message could not be removed");
                }
                // Durable before the next message goes: a crash cannot resend this one
                // after its successor was accepted.
                let _ = store.wait_durable(store.barrier()).await;
            }
            Ok(Answer::Rejected(why)) => {
                metrics.refused.with_label_values(&[d.as_str()]).inc();
                tracing::warn!(destination = d.as_str(), batch = %entry.batch_id, "MLLP: the receiver rejected a message (AR); set aside");
                let _ = outbox.refused(d, seq, &why, now);
                errors = (0, 0);
            }
            Ok(Answer::Error(why)) => {
                if errors.0 != seq {
                    errors = (seq, 0);
                }
                errors.1 += 1;
                if errors.1 >= config.error_attempts.max(1) {
                    metrics.refused.with_label_values(&[d.as_str()]).inc();
                    tracing::warn!(destination = d.as_str(), batch = %entry.batch_id, attempts = errors.1, "MLLP: the receiver answered AE; set aside");
                    let _ = outbox.refused(d, seq, &why, now);
                    errors = (0, 0);
                } else {
                    metrics.retry(d, "error_answer");
                    if sleep_or_stop(&cancel, &mut backoff, config.retry_max).await {
                        break;
                    }
                }
            }
            Err((reason, why)) => {
                conn = None;
                connected.set(0);
                metrics.retry(d, reason);
                tracing::warn!(destination = d.as_str(), to = %config.connect, reason, error = %why, "MLLP: no acknowledgement; will send again");
                if sleep_or_stop(&cancel, &mut backoff, config.retry_max).await {
                    break;
                }
            }
        }
    }
    connected.set(0);
}

/// Sends one message and reads its ACK.
async fn exchange(
    stream: &mut TcpStream,
    message: &[u8],
    control_id: &str,
    timeout: Duration,
) -> Result<Answer, (&'static str, String)> {
    let mut out = BytesMut::with_capacity(message.len() + 3);
    mllp::encode(message, &mut out);
    tokio::time::timeout(timeout, stream.write_all(&out))
        .await
        .map_err(|_| ("timeout", "write timed out".to_owned()))?
        .map_err(|e| ("connect", e.to_string()))?;
    let mut framer = Framer::new(MAX_ACK_BYTES);
    let mut buf = BytesMut::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        while let Some(item) = framer.next(&mut buf) {
            match item {
                Item::Frame(frame) => {
                    return read_ack(&frame, control_id).map_err(|e| ("bad_answer", e));
                }
                Item::Skipped(_) => {}
                Item::TooLarge { .. } => {
                    return Err(("bad_answer", "the ACK is larger than 1 MiB".into()));
                }
            }
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Err(("timeout", format!("no ACK within {timeout:?}"))),
            Ok(Ok(0)) => return Err(("connect", "the receiver closed the connection".into())),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(("connect", e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_read_by_code_and_control_id() {
        let ack = |code: &str, id: &str| {
            format!("MSH|^~\\&|EMR|H|WARDHUB||20261202||ACK^R01^ACK|9|P|2.6\rMSA|{code}|{id}\rERR|||207^x^HL70357|E")
        };
        assert_eq!(
            read_ack(ack("AA", "x1").as_bytes(), "x1"),
            Ok(Answer::Accepted)
        );
        assert_eq!(
            read_ack(ack("CA", "x1").as_bytes(), "x1"),
            Ok(Answer::Accepted)
        );
        assert!(
            matches!(read_ack(ack("AE", "x1").as_bytes(), "x1"), Ok(Answer::Error(e)) if e.contains("ERR"))
        );
        assert!(matches!(
            read_ack(ack("AR", "x1").as_bytes(), "x1"),
            Ok(Answer::Rejected(_))
        ));
        assert!(
            read_ack(ack("AA", "x2").as_bytes(), "x1").is_err(),
            "another message's ACK"
        );
        assert!(read_ack(ack("ZZ", "x1").as_bytes(), "x1").is_err());
        assert!(read_ack(b"garbage", "x1").is_err());
    }
}
