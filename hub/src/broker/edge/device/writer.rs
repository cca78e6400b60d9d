//! The writer half of a device connection: control packets go out at once, and each
//! publish's acknowledgement (PUBACK, PUBREC) in the order the publishes came, once its
//! outcome is known; everything already decided goes out in one write.

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::mqtt_json::PublishOutcome;

use crate::broker::edge::packet::{self, kind, reason};
use crate::broker::edge::session::AwaitingRelease;
use crate::broker::edge::Forward;

pub(super) type Outcome = Pin<Box<dyn Future<Output = PublishOutcome> + Send>>;

/// A publish waiting for its acknowledgement.
pub(super) struct Inflight {
    pub(super) qos: u8,
    pub(super) pkid: u16,
    pub(super) outcome: Outcome,
    /// Forward to the broker (and echo to the device's own subscriptions) once accepted.
    pub(super) topic: Option<(String, Bytes, bool)>,
    pub(super) echo: bool,
}

/// Writes control packets at once and acknowledgements in order as outcomes arrive. Returns
/// `true` when a publish could not be made durable (the connection must close unacknowledged).
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut ctl: mpsc::Receiver<Vec<u8>>,
    mut inflight: mpsc::Receiver<Inflight>,
    level: u8,
    awaiting: AwaitingRelease,
    forward: Option<Forward>,
    write_failed: CancellationToken,
) -> bool {
    let mut out = BytesMut::with_capacity(512);
    let mut writable = true;
    let mut failed = false;
    let mut ctl_open = true;
    let mut head: Option<Inflight> = None;
    loop {
        if head.is_none() {
            tokio::select! {
                biased;
                c = ctl.recv(), if ctl_open => match c {
                    Some(c) => out.extend_from_slice(&c),
                    None => ctl_open = false,
                },
                i = inflight.recv() => match i {
                    Some(i) => head = Some(i),
                    None => break,
                },
            }
        } else if let Some(h) = head.as_mut() {
            tokio::select! {
                biased;
                c = ctl.recv(), if ctl_open => match c {
                    Some(c) => out.extend_from_slice(&c),
                    None => ctl_open = false,
                },
                o = &mut h.outcome => {
                    let done = head.take();
                    if let Some(done) = done {
                        failed |= answer(&mut out, level, &awaiting, forward.as_ref(), done, o, failed);
                    }
                    // Everything else already decided goes out in the same write.
                    while let Ok(mut next) = inflight.try_recv() {
                        match (&mut next.outcome).now_or_never() {
                            Some(o) => {
                                failed |= answer(&mut out, level, &awaiting, forward.as_ref(), next, o, failed);
                            }
                            None => {
                                head = Some(next);
                                break;
                            }
                        }
                    }
                }
            }
        }
        // Once, as the failure is found: `writable` is cleared below.
        if failed && level == 5 && writable {
            out.extend_from_slice(&packet::disconnect(reason::UNSPECIFIED));
        }
        if !out.is_empty() {
            if writable && wr.write_all(&out).await.is_err() {
                writable = false;
                write_failed.cancel();
            }
            out.clear();
        }
        if failed && !write_failed.is_cancelled() {
            // Nothing after an unstored publish may be acknowledged: close; the device sends
            // again what it had in flight.
            write_failed.cancel();
            writable = false;
        }
    }
    while let Ok(c) = ctl.try_recv() {
        out.extend_from_slice(&c);
    }
    if writable && !out.is_empty() {
        let _ = wr.write_all(&out).await;
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    failed
}

/// Appends the acknowledgement of one decided publish; `true` when it was not made durable.
fn answer(
    out: &mut BytesMut,
    level: u8,
    awaiting: &AwaitingRelease,
    forward: Option<&Forward>,
    item: Inflight,
    outcome: PublishOutcome,
    failed_before: bool,
) -> bool {
    let code = match &outcome {
        PublishOutcome::Accepted { .. } => 0,
        PublishOutcome::Refused(r) => r.mqtt5_reason(),
        PublishOutcome::Failed(e) => {
            tracing::error!(error = %e, "publish not made durable: closing the connection unacknowledged");
            return true;
        }
    };
    if item.qos == 2 && (code < 0x80 || level < 5) {
        // Stored (or refused and counted, for 3.1.1, which cannot say so): a repeated
        // PUBLISH of this id is answered without storing it again.
        awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(item.pkid);
    }
    if !failed_before {
        let k = match item.qos {
            1 => Some(kind::PUBACK),
            2 => Some(kind::PUBREC),
            _ => None,
        };
        if let Some(k) = k {
            let a = packet::ack(k, level, item.pkid, code);
            out.extend_from_slice(&a[..packet::ack_len(&a)]);
        }
    }
    if let (PublishOutcome::Accepted { .. }, Some((topic, payload, retain))) =
        (&outcome, &item.topic)
    {
        if let Some(f) = forward {
            f(topic, payload.clone(), *retain);
        }
        if item.echo && !failed_before {
            out.extend_from_slice(&packet::publish_qos0(level, topic, payload, false));
        }
    }
    false
}
