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
//!
//! This file is the connection and its read loop; `publish` handles a PUBLISH, `control`
//! the packets answered at once (PUBREL, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT), `writer` is
//! the writer half (the acknowledgements in order) and `will` the last will.

mod control;
mod publish;
mod will;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wardhub_adapters::model::{Clock, DeviceId, SystemClock};
use wardhub_adapters::mqtt_json::MqttJsonIngest;

use super::acl::Acl;
use super::packet::{self, kind, reason, Connect, ServerLimits};
use super::session::{AwaitingRelease, Sessions};
use super::{CloseReason, EdgeConfig};
use crate::registry::Live;
use crate::telemetry::Telemetry;
use publish::PublishStop;
use writer::{write_loop, Inflight};

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
            let handled: Result<Option<Vec<u8>>, (CloseReason, u8)> = match p[0] >> 4 {
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
                        Ok(()) => Ok(None),
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
                kind::PUBREL => control::pubrel(&p, level, awaiting).map(Some),
                kind::SUBSCRIBE => {
                    control::subscribe(&p, level, &acl, &mut subscriptions).map(Some)
                }
                kind::UNSUBSCRIBE => control::unsubscribe(&p, level, &mut subscriptions).map(Some),
                kind::PINGREQ => Ok(Some(packet::PINGRESP.to_vec())),
                kind::DISCONNECT => return control::disconnect(&p, level, session_expiry),
                // The edge sends devices QoS 0 only: acknowledgements from them are stray
                // but harmless.
                kind::PUBACK | kind::PUBREC | kind::PUBCOMP => Ok(None),
                _ => Err((CloseReason::ProtocolError, reason::PROTOCOL_ERROR)),
            };
            match handled {
                Ok(Some(answer)) => {
                    let _ = ctl.send(answer).await;
                }
                Ok(None) => {}
                Err((r, code)) => {
                    self.say(&ctl, level, code).await;
                    return End::Closed(r);
                }
            }
        }
    }

    /// An MQTT 5 DISCONNECT with `code` (3.1.1 servers just close).
    async fn say(&self, ctl: &mpsc::Sender<Vec<u8>>, level: u8, code: u8) {
        if level == 5 {
            let _ = ctl.send(packet::disconnect(code).to_vec()).await;
        }
    }
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
