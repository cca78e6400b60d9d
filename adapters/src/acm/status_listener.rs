//! The MLLP listener the Alert Manager sends IHE PCD-05 Report Alert Status to: each message
//! is decoded ([`crate::acm::pcd05::decode_status`]), handed to the hub's [`StatusHandler`]
//! (which records it with the alarm), and answered once the handler says it is recorded (or
//! refused). TF-2 3.4.4.1.5 has the status come on its own connection, opened by the AM:
//! the hub's PCD-04 connection to the AM carries only PCD-04 and its ACKs.
//!
//! Acknowledgments (original mode, `ACK^R41^ACK`):
//! - `AA` only once the handler has recorded the status;
//! - `AE` with one `ERR` for a message the decoder refused (unparsable, no alarm id, no or
//!   an unknown status, …) or the handler refused with [`AckCode::Error`] (e.g. an alarm id
//!   the hub does not know: 204);
//! - `AR` for a message that is not `ORA^R41` or of an unsupported version, one over the
//!   size limit, or one the handler refused with [`AckCode::Reject`].
//!
//! The messages of one connection are handled one after the other, each answered before
//! the next is read: the statuses of one alarm come in order (delivered before read before
//! accepted), and a later one must not be recorded before an earlier one.
//!
//! Who may connect is an address allow-list ([`StatusListenerConfig::allow`]); others are
//! closed at accept. There is no TLS on this listener, as on the ADT feed's: bind it to
//! loopback or the AM's network. Recipients (staff) never reach logs or metric labels: logs
//! name the peer address, the control id, the alarm id and the status only.
//!
//! On cancellation the listener stops accepting, and each connection finishes the message it
//! is working on (waiting for the handler, answering it), then closes. The accept and
//! connection loops (framing, timeouts) are the ORU listener's ([`crate::hl7::adapter`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::acm::pcd05::{decode_status, AlarmStatus};
use crate::adapter::{Adapter, AdapterContext, AdapterError, BoxFuture};
use crate::duration::humane;
use crate::hl7::adapter::{accept_loop, serve_mllp, Answer, MllpConnection};
use crate::hl7::message::{build_ack, AckCode, AckError, AckSender, Header};
use crate::hl7::peers::Cidr;
use crate::model::{Reject, RejectReason};
use crate::net::{ConnectionLimiter, ConnectionPermit};

/// The listener's name, its `adapter` metric label.
pub const ACM_NAME: &str = "hl7_acm";

/// Why the handler did not record a status: what the ACK says (one ERR segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRefusal {
    /// [`AckCode::Error`] (the content) or [`AckCode::Reject`] (not processed at all); any
    /// other code is answered AE.
    pub code: AckCode,
    /// HL7 table 0357 (204 unknown key identifier, 207 application internal error, …).
    pub hl7_code: u16,
    /// The segment at fault and its position among segments of its name (`OBR`, 1).
    pub segment: Option<(&'static str, usize)>,
    /// The field at fault in that segment.
    pub field: Option<usize>,
    /// For the sender (ERR-8) and the hub's log: never patient or staff data.
    pub detail: String,
}

impl StatusRefusal {
    /// AE with this HL7 code, at no particular place.
    pub fn error(hl7_code: u16, detail: impl Into<String>) -> StatusRefusal {
        StatusRefusal {
            code: AckCode::Error,
            hl7_code,
            segment: None,
            field: None,
            detail: detail.into(),
        }
    }

    /// AE 204 at `OBR-29`: the hub knows no alarm of this id.
    pub fn unknown_alarm() -> StatusRefusal {
        StatusRefusal::error(204, "no alarm of this id is known to the hub").at(("OBR", 1), 29)
    }

    /// AE 207: the hub could not record it now (the sender should send it again).
    pub fn internal(detail: impl Into<String>) -> StatusRefusal {
        StatusRefusal::error(207, detail)
    }

    /// The same refusal, located at `segment`-`field` (`("OBR", 1)`, 29).
    pub fn at(self, segment: (&'static str, usize), field: usize) -> StatusRefusal {
        StatusRefusal {
            segment: Some(segment),
            field: Some(field),
            ..self
        }
    }
}

/// Records the Alert Manager's statuses with the hub's alarms.
pub trait StatusHandler: Send + Sync {
    /// Records one status; Ok only once it is recorded (the listener then answers AA).
    fn status(&self, s: AlarmStatus) -> BoxFuture<'_, Result<(), StatusRefusal>>;
}

/// Settings of the PCD-05 listener; every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusListenerConfig {
    /// Where to listen. Default `127.0.0.1:2577` (next to the ORU listener's 2575 and the
    /// ADT feed's 2576).
    pub listen: SocketAddr,
    /// Source addresses or CIDR blocks that may connect (the Alert Manager). Default this
    /// host only (`127.0.0.1`, `::1`); empty: nobody.
    pub allow: Vec<String>,
    /// MSH-3 of the ACKs. Default `WARDHUB`.
    pub application: String,
    /// The largest message accepted, framing excluded. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// A frame begun must be whole within this. Default 10 s.
    #[serde(with = "humane")]
    pub frame_timeout: Duration,
    /// A connection with nothing received for this long is closed. Default 1 h: an AM holds
    /// its connection open, and statuses are rare at night.
    #[serde(with = "humane")]
    pub idle_timeout: Duration,
    /// Connections held at once. Default 16.
    pub max_connections: usize,
    /// Connections held at once from one source address. Default 4.
    pub max_connections_per_source: usize,
}

impl Default for StatusListenerConfig {
    fn default() -> Self {
        StatusListenerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            allow: vec!["127.0.0.1".into(), "::1".into()],
            application: "WARDHUB".into(),
            max_frame_bytes: crate::hl7::config::DEFAULT_MAX_FRAME_BYTES,
            frame_timeout: crate::hl7::config::DEFAULT_FRAME_TIMEOUT,
            idle_timeout: Duration::from_secs(3600),
            max_connections: 16,
            max_connections_per_source: 4,
        }
    }
}

pub const DEFAULT_PORT: u16 = 2577;

/// A setting of [`StatusListenerConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hl7_acm: {0}")]
pub struct StatusConfigError(pub String);

impl StatusListenerConfig {
    /// Checks the settings and returns the allow-list; [`StatusListener::bind`] calls it.
    pub fn validate(&self) -> Result<Vec<Cidr>, StatusConfigError> {
        let err = |s: &str| Err(StatusConfigError(s.to_owned()));
        if self.max_frame_bytes < 64 {
            return err("max_frame_bytes must be at least 64");
        }
        if self.idle_timeout.is_zero() || self.frame_timeout.is_zero() {
            return err("idle_timeout and frame_timeout must be more than zero");
        }
        if self.max_connections == 0 || self.max_connections_per_source == 0 {
            return err("max_connections and max_connections_per_source must be at least 1");
        }
        if self.application.is_empty()
            || !self
                .application
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b' '))
        {
            return err("application must be letters, digits, '_', '-', '.' or spaces");
        }
        self.allow
            .iter()
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| StatusConfigError(format!("allow: {e}")))
            })
            .collect()
    }
}

/// The PCD-05 MLLP listener. Bound on construction, so the hub can report a bind error (and
/// the bound address, for port 0) before it starts anything else.
pub struct StatusListener {
    config: StatusListenerConfig,
    allow: Vec<Cidr>,
    handler: Arc<dyn StatusHandler>,
    listener: TcpListener,
}

impl std::fmt::Debug for StatusListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusListener")
            .field("config", &self.config)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl StatusListener {
    /// Validates `config` and binds its listen address; statuses go to `handler`.
    pub async fn bind(
        config: StatusListenerConfig,
        handler: Arc<dyn StatusHandler>,
    ) -> Result<(Self, SocketAddr), AdapterError> {
        let allow = config.validate().map_err(|e| AdapterError::Other {
            adapter: ACM_NAME,
            message: e.to_string(),
        })?;
        let bind_error = |source| AdapterError::Bind {
            adapter: ACM_NAME,
            addr: config.listen.to_string(),
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok((
            StatusListener {
                config,
                allow,
                handler,
                listener,
            },
            addr,
        ))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl Adapter for StatusListener {
    fn name(&self) -> &'static str {
        ACM_NAME
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(run(*self, ctx))
    }
}

struct Shared {
    config: StatusListenerConfig,
    allow: Vec<Cidr>,
    handler: Arc<dyn StatusHandler>,
    ctx: AdapterContext,
    ack_seq: AtomicU64,
}

async fn run(listener: StatusListener, ctx: AdapterContext) -> Result<(), AdapterError> {
    let StatusListener {
        config,
        allow,
        handler,
        listener,
    } = listener;
    let limiter = ConnectionLimiter::new(config.max_connections, config.max_connections_per_source);
    let shared = Arc::new(Shared {
        config,
        allow,
        handler,
        ctx,
        ack_seq: AtomicU64::new(0),
    });
    accept_loop(
        ACM_NAME,
        listener,
        &limiter,
        &shared.ctx,
        |ip| shared.allow.iter().any(|c| c.contains(ip)),
        "this address may not send alarm statuses",
        |stream, peer, permit| connection(shared.clone(), stream, peer, permit),
    )
    .await;
    Ok(())
}

async fn connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    _permit: ConnectionPermit,
) {
    let events = &shared.ctx.events;
    let _ = stream.set_nodelay(true);
    events.connection(ACM_NAME, true);
    let conn = MllpConnection {
        name: ACM_NAME,
        ctx: &shared.ctx,
        max_frame_bytes: shared.config.max_frame_bytes,
        frame_timeout: shared.config.frame_timeout,
        idle_timeout: shared.config.idle_timeout,
    };
    let why = serve_mllp(
        &conn,
        &mut stream,
        &StatusAnswer {
            shared: &shared,
            peer,
        },
    )
    .await;
    let _ = stream.shutdown().await;
    events.connection(ACM_NAME, false);
    tracing::debug!(adapter = ACM_NAME, %peer, reason = why, "connection closed");
}

struct StatusAnswer<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
}

impl Answer for StatusAnswer<'_> {
    async fn message(&self, frame: &[u8]) -> String {
        self.shared.handle(frame, self.peer).await
    }

    fn too_large(&self, head: &[u8]) -> String {
        let s = self.shared;
        let reject = Reject::new(
            RejectReason::TooLarge,
            format!("message larger than {} bytes", s.config.max_frame_bytes),
        );
        s.ctx.events.rejected(ACM_NAME, None, &reject);
        let error = AckError {
            segment: None,
            field: None,
            code: 207,
            detail: reject.detail,
        };
        s.ack(Header::read(head).ok().as_ref(), AckCode::Reject, &[error])
    }
}

impl Shared {
    fn ack(&self, original: Option<&Header>, code: AckCode, errors: &[AckError]) -> String {
        let now = self.ctx.clock.now_ms();
        let seq = self.ack_seq.fetch_add(1, Ordering::Relaxed);
        // At most 20 characters (the MSH-10 length of HL7 2.3); `WS`, not the ORU
        // listener's `WH` or the ADT listener's `WA`, so that no two mint the same id.
        let control_id = format!("WS{:x}{:04x}", now, seq & 0xffff);
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

    /// Decodes, records and answers one message.
    async fn handle(&self, frame: &[u8], peer: SocketAddr) -> String {
        let events = &self.ctx.events;
        events.message_received(ACM_NAME, frame.len());
        let (header, status) = match decode_status(frame) {
            Ok(decoded) => decoded,
            Err(e) => {
                events.rejected(ACM_NAME, None, &e.reject);
                tracing::debug!(
                    adapter = ACM_NAME,
                    %peer,
                    control_id = e.header.as_ref().map_or("", |h| h.control_id.as_str()),
                    reason = %e.reject.reason,
                    ack = e.ack.as_str(),
                    "message refused"
                );
                return self.ack(e.header.as_deref(), e.ack, &[e.error]);
            }
        };
        let (alarm_id, delivery) = (status.alarm_id, status.status.as_str());
        let (code, errors) = match self.handler.status(status).await {
            Ok(()) => (AckCode::Accept, Vec::new()),
            Err(r) => {
                let (code, reason) = match (r.code, r.hl7_code) {
                    (AckCode::Reject, _) => (AckCode::Reject, RejectReason::Unsupported),
                    // The hub could not record it: not the message's fault.
                    (_, 207) => (AckCode::Error, RejectReason::Internal),
                    _ => (AckCode::Error, RejectReason::Schema),
                };
                events.rejected(ACM_NAME, None, &Reject::new(reason, r.detail.clone()));
                let error = AckError {
                    segment: r.segment,
                    field: r.field,
                    code: r.hl7_code,
                    detail: r.detail,
                };
                (code, vec![error])
            }
        };
        tracing::debug!(
            adapter = ACM_NAME,
            %peer,
            control_id = %header.control_id,
            alarm_id,
            status = delivery,
            ack = code.as_str(),
            "message answered"
        );
        self.ack(Some(&header), code, &errors)
    }
}

#[cfg(test)]
mod tests;
