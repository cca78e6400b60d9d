//! A device's MQTT connection, terminated by the edge.
//!
//! The edge, not the broker, answers a device: each PUBLISH is handed to the MQTT JSON
//! adapter ([`MqttJsonIngest`]) and its PUBACK (QoS 1) or PUBREC (QoS 2) is written only once
//! everything it carried is durable in the store, or was refused and counted. Two halves run
//! side by side:
//!
//! - the reader parses packets and hands publishes over; it stops reading while the
//!   connection has `receive_maximum` publishes in flight, or while the hub-wide budget or
//!   the pipeline queue is full: that is how back-pressure reaches the device (TCP), and why
//!   a flooding device slows itself rather than the others;
//! - the writer answers in order: control packets (PINGRESP, SUBACK, PUBCOMP) at once, and
//!   the acknowledgement of each publish when its outcome is known.
//!
//! A publish that could not be made durable (storage failure, shutdown) is never
//! acknowledged: the connection is closed and the device sends it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, DeviceId, SystemClock};
use wardhub_adapters::mqtt_json::{MqttJsonIngest, PublishOutcome};

use super::acl::{topic_matches, Acl};
use super::packet::{self, kind, reason, Connect, ServerLimits, Will};
use super::session::{AwaitingRelease, Sessions};
use super::{CloseReason, EdgeConfig};
use crate::registry::Live;
use crate::telemetry::Telemetry;

type Outcome = Pin<Box<dyn Future<Output = PublishOutcome> + Send>>;

/// A publish waiting for its acknowledgement.
struct Inflight {
    qos: u8,
    pkid: u16,
    outcome: Outcome,
    /// Forward to the broker (and echo to the device's own subscriptions) once accepted.
    topic: Option<(String, Bytes, bool)>,
    echo: bool,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// DISCONNECT from the client; `will` for MQTT 5 reason 0x04.
    Disconnect { will: bool },
    /// The connection closed or failed without a DISCONNECT.
    Lost,
    /// The hub closed it: protocol violation, keep-alive, too large, ACL.
    Closed(CloseReason),
    /// Another connection took the session over.
    TakenOver,
    /// The hub is shutting down.
    Shutdown,
    /// A publish could not be made durable.
    Failed,
}

impl End {
    fn publishes_will(self) -> bool {
        matches!(
            self,
            End::Disconnect { will: true } | End::Lost | End::Closed(_)
        )
    }
}

/// What one device connection needs.
pub(super) struct Device<'a> {
    pub config: &'a EdgeConfig,
    pub ingest: &'a Arc<MqttJsonIngest>,
    pub telemetry: &'a Telemetry,
    pub cancel: &'a CancellationToken,
    pub id: DeviceId,
    pub live: Option<Arc<Live>>,
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

impl Device<'_> {
    /// Serves the connection after its CONNECT was accepted; `buf` holds what the client
    /// sent after the CONNECT.
    pub async fn serve<S>(
        self,
        mut client: S,
        buf: BytesMut,
        connect: Connect,
    ) -> Result<(), CloseReason>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let sessions: &Sessions = &self.config.sessions;
        let attached = sessions.attach(&connect.client_id, connect.clean_start);
        let limits = ServerLimits {
            receive_maximum: self.config.receive_maximum,
            maximum_packet_size: u32::try_from(self.config.max_packet_bytes).unwrap_or(u32::MAX),
        };
        let connack = packet::connack_ok(connect.level, attached.session_present, limits);
        if client.write_all(&connack).await.is_err() {
            sessions.detach(
                &connect.client_id,
                attached.generation,
                connect.session_expiry,
            );
            return Ok(());
        }
        let _connected = Connected(self.live.clone());
        if let Some(l) = &self.live {
            l.connected(SystemClock.now_ms());
        }
        let level = connect.level;
        let (rd, wr) = tokio::io::split(client);
        let (ctl_tx, ctl_rx) = mpsc::channel::<Vec<u8>>(64);
        let (inflight_tx, inflight_rx) =
            mpsc::channel::<Inflight>(usize::from(self.config.receive_maximum.max(1)));
        let write_failed = CancellationToken::new();
        let writer = write_loop(
            wr,
            ctl_rx,
            inflight_rx,
            level,
            attached.awaiting.clone(),
            self.config.forward.clone(),
            write_failed.clone(),
        );
        let mut session_expiry = connect.session_expiry;
        let reader = self.read_loop(
            rd,
            buf,
            &connect,
            &attached.awaiting,
            &attached.taken_over,
            &write_failed,
            ctl_tx,
            inflight_tx,
            &mut session_expiry,
        );
        let (end, writer_failed) = tokio::join!(reader, writer);
        let end = if writer_failed && end == End::Lost {
            End::Failed
        } else {
            end
        };
        drop(_connected);
        let still_ours = sessions.detach(&connect.client_id, attached.generation, session_expiry);
        if end.publishes_will() && still_ours {
            if let Some(will) = connect.will.clone() {
                self.publish_will(will, session_expiry);
            }
        }
        match end {
            End::Closed(r) => Err(r),
            End::TakenOver if sessions.was_disconnected(attached.generation) => {
                Err(CloseReason::CredentialsChanged)
            }
            End::TakenOver => Err(CloseReason::TakenOver),
            End::Failed => Err(CloseReason::Unavailable),
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_loop<R: AsyncRead + Unpin>(
        &self,
        mut rd: R,
        mut buf: BytesMut,
        connect: &Connect,
        awaiting: &AwaitingRelease,
        taken_over: &CancellationToken,
        write_failed: &CancellationToken,
        ctl: mpsc::Sender<Vec<u8>>,
        inflight: mpsc::Sender<Inflight>,
        session_expiry: &mut u32,
    ) -> End {
        let level = connect.level;
        let acl = Acl::device(self.id.as_str());
        let mut subscriptions: Vec<String> = Vec::new();
        // MQTT: the server closes a connection silent for one and a half keep-alives.
        let keep_alive = (connect.keep_alive > 0)
            .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
        loop {
            let read = read_packet(&mut rd, &mut buf, self.config.max_packet_bytes);
            let read = async {
                match keep_alive {
                    Some(k) => tokio::time::timeout(k, read).await.ok(),
                    None => Some(read.await),
                }
            };
            let p = tokio::select! {
                r = read => r,
                _ = taken_over.cancelled() => {
                    self.say(&ctl, level, reason::SESSION_TAKEN_OVER).await;
                    return End::TakenOver;
                }
                _ = self.cancel.cancelled() => {
                    self.say(&ctl, level, reason::SERVER_SHUTTING_DOWN).await;
                    return End::Shutdown;
                }
                _ = write_failed.cancelled() => return End::Lost,
            };
            let p = match p {
                None => {
                    self.say(&ctl, level, reason::KEEP_ALIVE_TIMEOUT).await;
                    return End::Closed(CloseReason::KeepAlive);
                }
                Some(Ok(Some(p))) => p,
                Some(Ok(None)) => return End::Lost,
                Some(Err(CloseReason::TooLarge)) => {
                    self.say(&ctl, level, reason::PACKET_TOO_LARGE).await;
                    return End::Closed(CloseReason::TooLarge);
                }
                Some(Err(r)) => {
                    self.say(&ctl, level, reason::MALFORMED).await;
                    return End::Closed(r);
                }
            };
            let handled: Result<(), (CloseReason, u8)> = match p[0] >> 4 {
                kind::PUBLISH => {
                    match self
                        .on_publish(
                            &p,
                            level,
                            &acl,
                            &subscriptions,
                            awaiting,
                            &inflight,
                            taken_over,
                        )
                        .await
                    {
                        Ok(()) => Ok(()),
                        Err(PublishStop::Violation(r, code)) => Err((r, code)),
                        Err(PublishStop::TakenOver) => {
                            self.say(&ctl, level, reason::SESSION_TAKEN_OVER).await;
                            return End::TakenOver;
                        }
                        Err(PublishStop::Shutdown) => {
                            self.say(&ctl, level, reason::SERVER_SHUTTING_DOWN).await;
                            return End::Shutdown;
                        }
                        Err(PublishStop::WriterGone) => return End::Lost,
                    }
                }
                kind::PUBREL => match packet::parse_ack(&p) {
                    Ok(pkid) if p[0] & 0x0F == 0x02 => {
                        let known = awaiting
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&pkid);
                        let code = if known {
                            0
                        } else {
                            reason::PACKET_ID_NOT_FOUND
                        };
                        let a = packet::ack(kind::PUBCOMP, level, pkid, code);
                        let _ = ctl.send(a[..packet::ack_len(&a)].to_vec()).await;
                        Ok(())
                    }
                    _ => Err((CloseReason::Malformed, reason::MALFORMED)),
                },
                kind::SUBSCRIBE => match packet::parse_subscribe(&p, level) {
                    Ok((pkid, filters)) => {
                        let mut codes = Vec::with_capacity(filters.len());
                        let mut refused = false;
                        for (f, _qos) in filters {
                            if !valid_filter(&f) {
                                codes.push(0x8F);
                                refused = true;
                            } else if acl.may_subscribe(&f) {
                                // Granted at QoS 0: only the device itself publishes under
                                // its own topics, and it hears them back once stored.
                                codes.push(0);
                                if !subscriptions.contains(&f) {
                                    subscriptions.push(f);
                                }
                            } else {
                                codes.push(reason::NOT_AUTHORIZED);
                                refused = true;
                            }
                        }
                        if refused && level < 5 {
                            // 3.1.1 has no "not authorized" SUBACK code: close, as before.
                            Err((CloseReason::Acl, reason::NOT_AUTHORIZED))
                        } else {
                            let _ = ctl.send(packet::suback(level, pkid, &codes)).await;
                            Ok(())
                        }
                    }
                    Err(r) => Err((r, reason::MALFORMED)),
                },
                kind::UNSUBSCRIBE => match packet::parse_unsubscribe(&p, level) {
                    Ok((pkid, filters)) => {
                        subscriptions.retain(|s| !filters.contains(s));
                        let _ = ctl.send(packet::unsuback(level, pkid, filters.len())).await;
                        Ok(())
                    }
                    Err(r) => Err((r, reason::MALFORMED)),
                },
                kind::PINGREQ => {
                    let _ = ctl.send(packet::PINGRESP.to_vec()).await;
                    Ok(())
                }
                kind::DISCONNECT => {
                    return match packet::parse_disconnect(&p, level) {
                        Ok((code, expiry)) => {
                            // A session that ended with the connection cannot be revived
                            // by the DISCONNECT (MQTT 5 3.14.2.2.2).
                            if let Some(e) = expiry.filter(|_| *session_expiry != 0) {
                                *session_expiry = e;
                            }
                            End::Disconnect {
                                will: code == reason::DISCONNECT_WITH_WILL,
                            }
                        }
                        Err(r) => End::Closed(r),
                    };
                }
                // The edge sends devices QoS 0 only: acknowledgements from them are stray
                // but harmless.
                kind::PUBACK | kind::PUBREC | kind::PUBCOMP => Ok(()),
                _ => Err((CloseReason::ProtocolError, reason::PROTOCOL_ERROR)),
            };
            if let Err((r, code)) = handled {
                self.say(&ctl, level, code).await;
                return End::Closed(r);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn on_publish(
        &self,
        p: &Bytes,
        level: u8,
        acl: &Acl,
        subscriptions: &[String],
        awaiting: &AwaitingRelease,
        inflight: &mpsc::Sender<Inflight>,
        taken_over: &CancellationToken,
    ) -> Result<(), PublishStop> {
        let publish = packet::parse_publish(p, level)
            .map_err(|r| PublishStop::Violation(r, reason::MALFORMED))?;
        if publish.topic_alias.is_some() {
            // The CONNACK offered no topic aliases (Topic Alias Maximum 0).
            return Err(PublishStop::Violation(
                CloseReason::ProtocolError,
                reason::TOPIC_ALIAS_INVALID,
            ));
        }
        if let Some(l) = &self.live {
            l.message(SystemClock.now_ms());
        }
        let ready = |code: u8| Inflight {
            qos: publish.qos,
            pkid: publish.pkid,
            outcome: Box::pin(std::future::ready(if code == 0 {
                PublishOutcome::Accepted {
                    stored: 0,
                    rejected: 0,
                }
            } else {
                PublishOutcome::Refused(wardhub_adapters::mqtt_json::Refusal::NotAuthorized)
            })),
            topic: None,
            echo: false,
        };
        if !acl.may_publish(&publish.topic) {
            self.telemetry
                .mqtt_refused
                .with_label_values(&[CloseReason::Acl.as_str()])
                .inc();
            if level < 5 {
                return Err(PublishStop::Violation(
                    CloseReason::Acl,
                    reason::NOT_AUTHORIZED,
                ));
            }
            tracing::warn!(device = %self.id, "mqtt publish outside its own topics refused (0x87)");
            return self
                .queue(inflight, ready(reason::NOT_AUTHORIZED), taken_over)
                .await;
        }
        if publish.qos == 2
            && awaiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&publish.pkid)
        {
            // Stored already (its PUBREC was sent): exactly once means answer, not store.
            return self.queue(inflight, ready(0), taken_over).await;
        }
        let echo = subscriptions
            .iter()
            .any(|f| topic_matches(&publish.topic, f));
        let keep = echo || self.config.forward.is_some();
        let topic = keep.then(|| {
            (
                publish.topic.clone(),
                publish.payload.clone(),
                publish.retain,
            )
        });
        let pending = tokio::select! {
            r = self.ingest.publish(&self.id, &publish.topic, publish.payload) => r,
            _ = taken_over.cancelled() => return Err(PublishStop::TakenOver),
            _ = self.cancel.cancelled() => return Err(PublishStop::Shutdown),
        };
        let Ok(pending) = pending else {
            return Err(PublishStop::Shutdown);
        };
        let item = Inflight {
            qos: publish.qos,
            pkid: publish.pkid,
            outcome: Box::pin(pending.outcome()),
            topic,
            echo,
        };
        self.queue(inflight, item, taken_over).await
    }

    async fn queue(
        &self,
        inflight: &mpsc::Sender<Inflight>,
        item: Inflight,
        taken_over: &CancellationToken,
    ) -> Result<(), PublishStop> {
        tokio::select! {
            r = inflight.send(item) => r.map_err(|_| PublishStop::WriterGone),
            _ = taken_over.cancelled() => Err(PublishStop::TakenOver),
            _ = self.cancel.cancelled() => Err(PublishStop::Shutdown),
        }
    }

    /// An MQTT 5 DISCONNECT with `code` (3.1.1 servers just close).
    async fn say(&self, ctl: &mpsc::Sender<Vec<u8>>, level: u8, code: u8) {
        if level == 5 {
            let _ = ctl.send(packet::disconnect(code).to_vec()).await;
        }
    }

    /// Publishes the will through the same road as any publish of the device, after its
    /// delay (MQTT 5: the earlier of the Will Delay Interval and the session's end) unless the
    /// device connects again first.
    fn publish_will(&self, will: Will, session_expiry: u32) {
        let delay = Duration::from_secs(u64::from(will.delay_secs.min(session_expiry)));
        let wait = if delay.is_zero() {
            None
        } else {
            self.config.sessions.will_waits(self.id.as_str())
        };
        let (ingest, id, forward) = (
            self.ingest.clone(),
            self.id.clone(),
            self.config.forward.clone(),
        );
        tokio::spawn(async move {
            if let Some(token) = wait {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = token.cancelled() => return,
                }
            }
            tracing::info!(device = %id, "last will published");
            let Ok(pending) = ingest.publish(&id, &will.topic, will.payload.clone()).await else {
                return;
            };
            if let PublishOutcome::Accepted { .. } = pending.outcome().await {
                if let Some(f) = forward {
                    f(&will.topic, will.payload, will.retain);
                }
            }
        });
    }
}

enum PublishStop {
    Violation(CloseReason, u8),
    TakenOver,
    Shutdown,
    WriterGone,
}

/// Whether an MQTT filter is well formed (`#` last and alone in its level, `+` alone).
fn valid_filter(f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    let levels: Vec<&str> = f.split('/').collect();
    levels
        .iter()
        .enumerate()
        .all(|(i, l)| (*l == "#" && i == levels.len() - 1) || *l == "+" || !l.contains(['#', '+']))
}

/// Reads until `buf` holds one whole packet and returns it (`None` on a clean EOF or a
/// failed read).
async fn read_packet<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, CloseReason> {
    loop {
        if let Some((h, len)) = packet::fixed_header(buf)? {
            if len > max {
                return Err(CloseReason::TooLarge);
            }
            if buf.len() >= h + len {
                return Ok(Some(buf.split_to(h + len).freeze()));
            }
            buf.reserve(h + len - buf.len());
        } else {
            buf.reserve(1024);
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Writes control packets at once and acknowledgements in order as outcomes arrive. Returns
/// `true` when a publish could not be made durable (the connection must close unacknowledged).
#[allow(clippy::too_many_arguments)]
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut ctl: mpsc::Receiver<Vec<u8>>,
    mut inflight: mpsc::Receiver<Inflight>,
    level: u8,
    awaiting: AwaitingRelease,
    forward: Option<super::Forward>,
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
    forward: Option<&super::Forward>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for f in ["a/#", "a/+/b", "#", "a/b"] {
            assert!(valid_filter(f), "{f}");
        }
        for f in ["", "a/#/b", "a/b#", "a+/b"] {
            assert!(!valid_filter(f), "{f}");
        }
    }
}
