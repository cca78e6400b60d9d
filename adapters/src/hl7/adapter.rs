//! The MLLP listener: one task per connection; each message is decoded, handed to the
//! pipeline with [`Sink::submit_durable`](crate::adapter::Sink::submit_durable), and answered
//! once the pipeline says it is durable (or refused).
//!
//! Acknowledgments (original mode):
//! - `AA` only when every observation of the message is stored and flushed and no OBX row was
//!   refused (rows skipped on purpose, like unknown metrics and header rows, do not count);
//! - `AE` with one `ERR` per problem when rows were refused (by the decoder or the pipeline,
//!   e.g. unknown devices), the message could not be parsed, or nothing could be stored (then
//!   nothing of it is durable and the sender should send it again);
//! - `AR` for unsupported message types and versions and for messages over the size limit.
//!
//! On cancellation the listener stops accepting, and each connection finishes the message it
//! is working on (answering it), then closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use crate::adapter::{Adapter, AdapterContext, AdapterError, BoxFuture, Placement};
use crate::hl7::config::Hl7Config;
use crate::hl7::message::{build_ack, AckCode, AckError, AckSender, Header};
use crate::hl7::mllp::{self, Framer, Item};
use crate::hl7::oru::{self, hl7_error_code, DecodedOru, OruOptions};
use crate::hl7::peers::{Admitted, Peers};
use crate::model::{DeviceId, Reject, RejectReason};
use crate::net::{ConnectionLimiter, ConnectionPermit};

/// The adapter's name, its `adapter` metric label.
pub const NAME: &str = "hl7_mllp";

/// At most this many ERR segments in one ACK; the last one says how many more there were.
const MAX_ERR_SEGMENTS: usize = 20;

/// The HL7 v2 / MLLP listener adapter. Bound on construction, so the hub can report a bind
/// error (and the bound address, for port 0) before it starts anything else.
#[derive(Debug)]
pub struct Hl7MllpAdapter {
    config: Hl7Config,
    /// The config's code tables, checked at bind.
    codes: crate::hl7::codes::Codes,
    /// The config's peers, checked at bind.
    peers: Peers,
    listener: TcpListener,
}

impl Hl7MllpAdapter {
    /// Validates `config` and binds its listen address.
    pub async fn bind(config: Hl7Config) -> Result<(Self, SocketAddr), AdapterError> {
        config.validate().map_err(|e| AdapterError::Other {
            adapter: NAME,
            message: e.to_string(),
        })?;
        let codes = crate::hl7::codes::Codes::new(config.codes.clone()).map_err(|message| {
            AdapterError::Other {
                adapter: NAME,
                message,
            }
        })?;
        let peers = Peers::new(config.peers.clone()).map_err(|message| AdapterError::Other {
            adapter: NAME,
            message,
        })?;
        let bind_error = |source| AdapterError::Bind {
            adapter: NAME,
            addr: config.listen.to_string(),
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok((
            Hl7MllpAdapter {
                config,
                codes,
                peers,
                listener,
            },
            addr,
        ))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl Adapter for Hl7MllpAdapter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(run(*self, ctx))
    }
}

struct Shared {
    config: Hl7Config,
    peers: Peers,
    opts: OruOptions,
    ctx: AdapterContext,
    ack_seq: AtomicU64,
}

async fn run(adapter: Hl7MllpAdapter, ctx: AdapterContext) -> Result<(), AdapterError> {
    let Hl7MllpAdapter {
        config,
        codes,
        peers,
        listener,
    } = adapter;
    let limiter = ConnectionLimiter::new(config.max_connections, config.max_connections_per_source);
    let shared = Arc::new(Shared {
        opts: OruOptions {
            limits: ctx.limits,
            default_utc_offset_minutes: config.default_utc_offset_minutes,
            codes,
            sentinels: config.sentinels.clone(),
            senders: config.senders.clone(),
        },
        peers,
        config,
        ctx,
        ack_seq: AtomicU64::new(0),
    });
    let tracker = TaskTracker::new();
    let cancel = shared.ctx.cancel.clone();
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !shared.address_may_connect(peer.ip()) {
                        shared.ctx.events.connection_refused(NAME, "not_allowed");
                        tracing::warn!(adapter = NAME, %peer, "connection refused: no HL7 peer is allowed from this address");
                        continue;
                    }
                    match limiter.try_acquire(peer.ip()) {
                        Ok(permit) => {
                            tracker.spawn(connection(shared.clone(), stream, peer, permit));
                        }
                        Err(limit) => {
                            shared.ctx.events.connection_refused(NAME, limit.as_str());
                            tracing::warn!(
                                adapter = NAME,
                                %peer,
                                limit = limit.as_str(),
                                max = shared.config.max_connections,
                                per_source = shared.config.max_connections_per_source,
                                "connection refused: too many connections"
                            );
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(adapter = NAME, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    _permit: ConnectionPermit,
) {
    let events = &shared.ctx.events;
    let _ = stream.set_nodelay(true);
    let why = match &shared.config.tls {
        None => match shared.admit(peer.ip(), None) {
            Some(admitted) => {
                events.connection(NAME, true);
                let mut stream = stream;
                let why = serve(&shared, &mut stream, peer, &admitted).await;
                let _ = stream.shutdown().await;
                events.connection(NAME, false);
                why
            }
            None => "no peer matches",
        },
        Some(tls) => {
            let handshake =
                tokio::time::timeout(shared.config.frame_timeout, tls.acceptor().accept(stream))
                    .await;
            match handshake {
                Ok(Ok(mut stream)) => {
                    let cert = crate::tls::peer_identity(stream.get_ref().1);
                    match shared.admit(peer.ip(), cert.as_ref()) {
                        Some(admitted) => {
                            events.connection(NAME, true);
                            let why = serve(&shared, &mut stream, peer, &admitted).await;
                            let _ = stream.shutdown().await;
                            events.connection(NAME, false);
                            why
                        }
                        None => "no peer matches its certificate",
                    }
                }
                Ok(Err(_)) => "TLS handshake failed",
                Err(_) => "TLS handshake timed out",
            }
        }
    };
    if why.starts_with("no peer") || why.starts_with("TLS") {
        events.connection_refused(NAME, "not_allowed");
        tracing::warn!(adapter = NAME, %peer, reason = why, "connection refused");
    } else {
        tracing::debug!(adapter = NAME, %peer, reason = why, "connection closed");
    }
}

/// Serves one connection; returns why it ended.
async fn serve<S>(
    shared: &Shared,
    stream: &mut S,
    peer: SocketAddr,
    admitted: &Admitted,
) -> &'static str
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = &shared.config;
    let cancel = &shared.ctx.cancel;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut framer = Framer::new(cfg.max_frame_bytes);
    // When the frame now being received began: it must be whole within `frame_timeout`,
    // however slowly its bytes trickle in.
    let mut frame_began: Option<tokio::time::Instant> = None;
    loop {
        while let Some(item) = framer.next(&mut buf) {
            let reply = match item {
                Item::Frame(frame) => {
                    frame_began = None;
                    if cancel.is_cancelled() {
                        // Not answered, so the sender will send it again.
                        return "shutting down";
                    }
                    shared.handle(&frame, peer, admitted).await
                }
                Item::Skipped(n) => {
                    shared.ctx.events.skipped_bytes(NAME, n);
                    continue;
                }
                Item::TooLarge { head } => {
                    frame_began = None;
                    shared.too_large(&head)
                }
            };
            let mut out = BytesMut::with_capacity(reply.len() + 3);
            mllp::encode(reply.as_bytes(), &mut out);
            match tokio::time::timeout(cfg.idle_timeout, stream.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return "write failed",
                Err(_) => return "write timed out",
            }
        }
        let now = tokio::time::Instant::now();
        if buf.is_empty() && !framer.discarding() {
            frame_began = None;
        } else if frame_began.is_none() {
            frame_began = Some(now);
        }
        let (deadline, why) = match frame_began {
            Some(t) => (t + cfg.frame_timeout, "frame timeout"),
            None => (now + cfg.idle_timeout, "idle timeout"),
        };
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return "shutting down",
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => match read {
                Ok(Ok(0)) => return "closed by peer",
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return "read failed",
                Err(_) => {
                    if frame_began.is_some() {
                        shared.ctx.events.connection_refused(NAME, "frame_timeout");
                    }
                    return why;
                }
            },
        }
    }
}

impl Shared {
    /// Whether any peer (or the lab switch) could admit a connection from `ip`.
    fn address_may_connect(&self, ip: std::net::IpAddr) -> bool {
        self.config.allow_unknown_peers || self.peers.may_match_address(ip)
    }

    /// What a connection is admitted as, or `None` to refuse it.
    fn admit(
        &self,
        ip: std::net::IpAddr,
        cert: Option<&crate::tls::PeerIdentity>,
    ) -> Option<Admitted> {
        let matched = self.peers.admit(ip, cert);
        if !matched.is_empty() {
            Some(Admitted::Peers(matched))
        } else if self.config.allow_unknown_peers {
            Some(Admitted::Unknown)
        } else {
            None
        }
    }

    fn sender(&self) -> (String, i64) {
        let now = self.ctx.clock.now_ms();
        let seq = self.ack_seq.fetch_add(1, Ordering::Relaxed);
        // At most 20 characters, the MSH-10 length of HL7 2.3.
        (format!("WH{:x}{:04x}", now, seq & 0xffff), now)
    }

    fn ack(&self, original: Option<&Header>, code: AckCode, errors: &[AckError]) -> String {
        let (control_id, now) = self.sender();
        build_ack(
            original,
            code,
            errors,
            &AckSender {
                application: &self.config.application,
                control_id: &control_id,
                now,
            },
        )
    }

    fn too_large(&self, head: &[u8]) -> String {
        let reject = Reject::new(
            RejectReason::TooLarge,
            format!("message larger than {} bytes", self.config.max_frame_bytes),
        );
        self.ctx.events.rejected(NAME, None, &reject);
        let header = Header::read(head).ok();
        let error = AckError {
            segment: None,
            field: None,
            code: hl7_error_code(RejectReason::TooLarge),
            detail: reject.detail,
        };
        self.ack(header.as_ref(), AckCode::Reject, &[error])
    }

    /// Decodes, stores and answers one message.
    async fn handle(&self, frame: &[u8], peer: SocketAddr, admitted: &Admitted) -> String {
        let events = &self.ctx.events;
        events.message_received(NAME, frame.len());
        if let Ok(header) = Header::read(frame) {
            let sender = header
                .sending_application
                .first()
                .map(String::as_str)
                .unwrap_or("");
            if !admitted.may_send_as(sender) {
                let reject = Reject::new(
                    RejectReason::Unsupported,
                    format!(
                        "this connection ({}) may not send as MSH-3 {sender:?}",
                        admitted.name()
                    ),
                );
                events.rejected(NAME, None, &reject);
                events.connection_refused(NAME, "sender_not_allowed");
                tracing::warn!(adapter = NAME, %peer, peer_name = %admitted.name(), "message refused: sending application not allowed for this peer");
                let error = AckError {
                    segment: Some(("MSH", 1)),
                    field: Some(3),
                    code: 207,
                    detail: reject.detail,
                };
                return self.ack(Some(&header), AckCode::Reject, &[error]);
            }
        }
        let now = self.ctx.clock.now_ms();
        let decoded = match oru::decode(frame, now, &self.opts) {
            Ok(d) => d,
            Err(e) => {
                events.rejected(NAME, None, &e.reject);
                tracing::debug!(
                    adapter = NAME,
                    %peer,
                    reason = %e.reject.reason,
                    ack = e.ack.as_str(),
                    "message refused"
                );
                return self.ack(e.header.as_deref(), e.ack, &[e.error]);
            }
        };
        let (header, code, errors) = self.store(decoded, peer, admitted).await;
        self.ack(Some(&header), code, &errors)
    }

    async fn store(
        &self,
        mut d: DecodedOru,
        peer: SocketAddr,
        admitted: &Admitted,
    ) -> (Header, AckCode, Vec<AckError>) {
        let events = &self.ctx.events;
        let mut errors = Errors::default();
        // Gateway mode: the message's bed is its PV1-3 bed (checked by the hub against the
        // registry), so a message without one cannot be placed.
        let sender = d
            .header
            .sending_application
            .first()
            .cloned()
            .unwrap_or_default();
        let gateway = admitted.gateway_for(&sender);
        let placement = match (&gateway, &d.bed_claim) {
            (None, _) => None,
            (Some((name, auto)), Some(c)) if !c.bed.trim().is_empty() => Some(Placement {
                gateway: name.clone(),
                point_of_care: c.point_of_care.trim().to_owned(),
                bed: c.bed.trim().to_owned(),
                auto_create: *auto,
            }),
            (Some(_), _) => {
                if !d.observations.is_empty() {
                    let reject = Reject::new(
                        RejectReason::Schema,
                        "gateway mode: PV1-3 must name the bed (point of care^room^bed)",
                    );
                    events.rejected(NAME, None, &reject);
                    errors.push(AckError {
                        segment: Some(("PV1", 1)),
                        field: Some(3),
                        code: 101,
                        detail: reject.detail,
                    });
                    d.observations.clear();
                }
                None
            }
        };
        if gateway.is_some() {
            // The gateway's PV1-3 is the placement itself, not a claim to cross-check.
            d.bed_claim = None;
        }
        for s in &d.skipped {
            events.row_skipped(
                NAME,
                s.device.as_ref().map(DeviceId::as_str),
                s.reason.as_str(),
            );
        }
        for r in &d.rejects {
            events.rejected(NAME, r.device.as_ref().map(DeviceId::as_str), &r.reject);
            errors.push(AckError {
                segment: Some(("OBX", r.obx)),
                field: Some(r.field),
                code: hl7_error_code(r.reject.reason),
                detail: r.reject.detail.clone(),
            });
        }
        if let Some(claim) = &d.bed_claim {
            let mut seen: Vec<&DeviceId> = Vec::new();
            for o in &d.observations {
                if !seen.contains(&&o.device_id) {
                    seen.push(&o.device_id);
                    events.bed_claimed(
                        NAME,
                        o.device_id.as_str(),
                        &claim.point_of_care,
                        &claim.bed,
                    );
                }
            }
        }
        let n = d.observations.len();
        if n > 0 {
            let devices: Vec<DeviceId> =
                d.observations.iter().map(|o| o.device_id.clone()).collect();
            match self
                .ctx
                .sink
                .submit_durable_placed(NAME, d.observations, placement)
                .await
            {
                Err(_) => errors.push(internal(
                    "wardhub is not storing data now; nothing of this message was stored",
                )),
                Ok(report) if report.failed.is_some() => {
                    // The storage error text is for the hub's log, not for the sender.
                    tracing::warn!(adapter = NAME, %peer, "the pipeline could not store a message");
                    errors.push(internal(
                        "storage failed; nothing of this message was stored",
                    ));
                }
                Ok(report) => {
                    for (i, reject) in &report.rejected {
                        let device = devices.get(*i).map(DeviceId::as_str);
                        events.rejected(NAME, device, reject);
                        let obx = d.obx_of.get(*i).copied().unwrap_or(0);
                        let field = match reject.reason {
                            RejectReason::UnknownDevice | RejectReason::BadDeviceId => Some(18),
                            _ => None,
                        };
                        errors.push(AckError {
                            segment: Some(("OBX", obx)),
                            field,
                            code: hl7_error_code(reject.reason),
                            detail: format!("OBX {obx}: {}", reject.detail),
                        });
                    }
                    if report.stored + report.rejected.len() < n {
                        errors.push(internal("not every observation was stored"));
                    }
                }
            }
        }
        let code = if errors.is_empty() {
            AckCode::Accept
        } else {
            AckCode::Error
        };
        tracing::debug!(
            adapter = NAME,
            %peer,
            control_id = %d.header.control_id,
            observations = n,
            refused = errors.count,
            ack = code.as_str(),
            "message answered"
        );
        (d.header, code, errors.finish())
    }
}

fn internal(detail: &str) -> AckError {
    AckError {
        segment: None,
        field: None,
        code: hl7_error_code(RejectReason::Internal),
        detail: detail.to_owned(),
    }
}

/// ERR segments, capped.
#[derive(Default)]
struct Errors {
    list: Vec<AckError>,
    count: usize,
}

impl Errors {
    fn push(&mut self, e: AckError) {
        self.count += 1;
        if self.list.len() < MAX_ERR_SEGMENTS {
            self.list.push(e);
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn finish(mut self) -> Vec<AckError> {
        if self.count > self.list.len() {
            let more = self.count - self.list.len();
            let code = self.list.last().map_or(207, |e| e.code);
            self.list.push(AckError {
                segment: None,
                field: None,
                code,
                detail: format!("and {more} more errors"),
            });
        }
        self.list
    }
}

#[cfg(test)]
mod tests;
