//! The MLLP listener of the hospital's ADT feed: each message is decoded
//! ([`crate::hl7::adt::decode`]), handed to the hub's [`AdtHandler`] (which stores patient
//! context durably), and answered once the handler says it is durable (or refused).
//!
//! Acknowledgments (original mode):
//! - `AA` only once the handler has applied the event durably;
//! - `AE` with one `ERR` for a message the decoder refused (unparsable, PID-3 empty, a transfer
//!   without a bed, …) or the handler refused with [`AckCode::Error`];
//! - `AR` for a message that is not ADT, an unsupported trigger (A05, A28, …) or version, a
//!   message over the size limit, or one the handler refused with [`AckCode::Reject`].
//!
//! The messages of one connection are handled strictly one after the other, each answered
//! before the next is read: an ADT feed's order is its meaning (an admission before the
//! transfer of the same patient).
//!
//! Who may connect is an address allow-list ([`AdtConfig::allow`], addresses or CIDR blocks);
//! others are closed at accept. There is no TLS on this listener: transport security is the
//! site's (a VPN, an stunnel in front of it, or a closed interface-engine VLAN), so bind it to
//! loopback or that network. Patient identifiers and names never reach logs or metric labels:
//! logs name the peer address, the trigger and the control id only.
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

use crate::adapter::{Adapter, AdapterContext, AdapterError, BoxFuture};
use crate::duration::humane;
use crate::hl7::adapter::{accept_loop, serve_mllp, Answer, MllpConnection};
use crate::hl7::adt::{decode, AdtEvent};
use crate::hl7::message::{build_ack, AckCode, AckError, AckSender, Header};
use crate::hl7::peers::Cidr;
use crate::model::{Reject, RejectReason};
use crate::net::{ConnectionLimiter, ConnectionPermit};

/// The listener's name, its `adapter` metric label.
pub const ADT_NAME: &str = "hl7_adt";

/// Why the handler did not apply an event: what the ACK says (one ERR segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtRefusal {
    /// [`AckCode::Error`] (the content) or [`AckCode::Reject`] (not processed at all); any
    /// other code is answered AE.
    pub code: AckCode,
    /// HL7 table 0357 (101 required field missing, 204 unknown key identifier, 207
    /// application internal error, …).
    pub hl7_code: u16,
    /// The segment at fault and its position among segments of its name (`PV1`, 1).
    pub segment: Option<(&'static str, usize)>,
    /// The field at fault in that segment.
    pub field: Option<usize>,
    /// For the sender (ERR-8) and the hub's log: never patient data.
    pub detail: String,
}

impl AdtRefusal {
    /// AE with this HL7 code, at no particular place.
    pub fn error(hl7_code: u16, detail: impl Into<String>) -> AdtRefusal {
        AdtRefusal {
            code: AckCode::Error,
            hl7_code,
            segment: None,
            field: None,
            detail: detail.into(),
        }
    }

    /// AE 207: the hub could not store it now (the sender should send it again).
    pub fn internal(detail: impl Into<String>) -> AdtRefusal {
        AdtRefusal::error(207, detail)
    }

    /// The same refusal, located at `segment`-`field` (`("PV1", 1)`, 3).
    pub fn at(self, segment: (&'static str, usize), field: usize) -> AdtRefusal {
        AdtRefusal {
            segment: Some(segment),
            field: Some(field),
            ..self
        }
    }
}

/// Applies the feed's events to the hub's patient context.
pub trait AdtHandler: Send + Sync {
    /// Applies one event; Ok only once it is durable (the listener then answers AA).
    fn apply(&self, event: AdtEvent) -> BoxFuture<'_, Result<(), AdtRefusal>>;
}

/// Settings of the ADT listener; every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdtConfig {
    /// Where to listen. Default `127.0.0.1:2576` (next to the ORU listener's 2575).
    pub listen: SocketAddr,
    /// Source addresses or CIDR blocks that may connect (the interface engine). Default this
    /// host only (`127.0.0.1`, `::1`); empty: nobody.
    pub allow: Vec<String>,
    /// MSH-3 of the ACKs. Default `WARDHUB`.
    pub application: String,
    /// The largest message accepted, framing excluded. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// A frame begun must be whole within this. Default 10 s.
    #[serde(with = "humane")]
    pub frame_timeout: Duration,
    /// A connection with nothing received for this long is closed. Default 1 h: an interface
    /// engine holds one connection open, and a ward's feed is quiet for long stretches at
    /// night (closing it every few minutes only makes the engine reconnect and alert).
    #[serde(with = "humane")]
    pub idle_timeout: Duration,
    /// Connections held at once. Default 16.
    pub max_connections: usize,
    /// Connections held at once from one source address. Default 4.
    pub max_connections_per_source: usize,
    /// The UTC offset assumed for HL7 times without one, in minutes. Default 0 (UTC).
    pub default_utc_offset_minutes: i32,
}

impl Default for AdtConfig {
    fn default() -> Self {
        AdtConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            allow: vec!["127.0.0.1".into(), "::1".into()],
            application: "WARDHUB".into(),
            max_frame_bytes: crate::hl7::config::DEFAULT_MAX_FRAME_BYTES,
            frame_timeout: crate::hl7::config::DEFAULT_FRAME_TIMEOUT,
            idle_timeout: Duration::from_secs(3600),
            max_connections: 16,
            max_connections_per_source: 4,
            default_utc_offset_minutes: 0,
        }
    }
}

pub const DEFAULT_PORT: u16 = 2576;

/// A setting of [`AdtConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hl7_adt: {0}")]
pub struct AdtConfigError(pub String);

impl AdtConfig {
    /// Checks the settings and returns the allow-list; [`AdtListener::bind`] calls it.
    pub fn validate(&self) -> Result<Vec<Cidr>, AdtConfigError> {
        let err = |s: &str| Err(AdtConfigError(s.to_owned()));
        if self.max_frame_bytes < 64 {
            return err("max_frame_bytes must be at least 64");
        }
        if self.idle_timeout.is_zero() || self.frame_timeout.is_zero() {
            return err("idle_timeout and frame_timeout must be more than zero");
        }
        if self.max_connections == 0 || self.max_connections_per_source == 0 {
            return err("max_connections and max_connections_per_source must be at least 1");
        }
        if self.default_utc_offset_minutes.abs() >= 24 * 60 {
            return err("default_utc_offset_minutes must be within a day");
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
                    .map_err(|e| AdtConfigError(format!("allow: {e}")))
            })
            .collect()
    }
}

/// The ADT feed's MLLP listener. Bound on construction, so the hub can report a bind error
/// (and the bound address, for port 0) before it starts anything else.
pub struct AdtListener {
    config: AdtConfig,
    allow: Vec<Cidr>,
    handler: Arc<dyn AdtHandler>,
    listener: TcpListener,
}

impl std::fmt::Debug for AdtListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdtListener")
            .field("config", &self.config)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl AdtListener {
    /// Validates `config` and binds its listen address; events go to `handler`.
    pub async fn bind(
        config: AdtConfig,
        handler: Arc<dyn AdtHandler>,
    ) -> Result<(Self, SocketAddr), AdapterError> {
        let allow = config.validate().map_err(|e| AdapterError::Other {
            adapter: ADT_NAME,
            message: e.to_string(),
        })?;
        let bind_error = |source| AdapterError::Bind {
            adapter: ADT_NAME,
            addr: config.listen.to_string(),
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok((
            AdtListener {
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

impl Adapter for AdtListener {
    fn name(&self) -> &'static str {
        ADT_NAME
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(run(*self, ctx))
    }
}

struct Shared {
    config: AdtConfig,
    allow: Vec<Cidr>,
    handler: Arc<dyn AdtHandler>,
    ctx: AdapterContext,
    ack_seq: AtomicU64,
}

async fn run(listener: AdtListener, ctx: AdapterContext) -> Result<(), AdapterError> {
    let AdtListener {
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
        ADT_NAME,
        listener,
        &limiter,
        &shared.ctx,
        |ip| shared.allow.iter().any(|c| c.contains(ip)),
        "this address may not send the ADT feed",
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
    events.connection(ADT_NAME, true);
    let conn = MllpConnection {
        name: ADT_NAME,
        ctx: &shared.ctx,
        max_frame_bytes: shared.config.max_frame_bytes,
        frame_timeout: shared.config.frame_timeout,
        idle_timeout: shared.config.idle_timeout,
    };
    let why = serve_mllp(
        &conn,
        &mut stream,
        &AdtAnswer {
            shared: &shared,
            peer,
        },
    )
    .await;
    let _ = stream.shutdown().await;
    events.connection(ADT_NAME, false);
    tracing::debug!(adapter = ADT_NAME, %peer, reason = why, "connection closed");
}

struct AdtAnswer<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
}

impl Answer for AdtAnswer<'_> {
    async fn message(&self, frame: &[u8]) -> String {
        self.shared.handle(frame, self.peer).await
    }

    fn too_large(&self, head: &[u8]) -> String {
        let s = self.shared;
        let reject = Reject::new(
            RejectReason::TooLarge,
            format!("message larger than {} bytes", s.config.max_frame_bytes),
        );
        s.ctx.events.rejected(ADT_NAME, None, &reject);
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
        // At most 20 characters (the MSH-10 length of HL7 2.3); `WA`, not the ORU
        // listener's `WH`, so that the two never mint the same id.
        let control_id = format!("WA{:x}{:04x}", now, seq & 0xffff);
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

    /// Decodes, applies and answers one message.
    async fn handle(&self, frame: &[u8], peer: SocketAddr) -> String {
        let events = &self.ctx.events;
        events.message_received(ADT_NAME, frame.len());
        let now = self.ctx.clock.now_ms();
        let (header, event) = match decode(frame, now, self.config.default_utc_offset_minutes) {
            Ok(decoded) => decoded,
            Err(e) => {
                events.rejected(ADT_NAME, None, &e.reject);
                tracing::debug!(
                    adapter = ADT_NAME,
                    %peer,
                    control_id = e.header.as_ref().map_or("", |h| h.control_id.as_str()),
                    reason = %e.reject.reason,
                    ack = e.ack.as_str(),
                    "message refused"
                );
                return self.ack(e.header.as_deref(), e.ack, &[e.error]);
            }
        };
        let trigger = event.kind.trigger();
        let (code, errors) = match self.handler.apply(event).await {
            Ok(()) => (AckCode::Accept, Vec::new()),
            Err(r) => {
                let (code, reason) = match (r.code, r.hl7_code) {
                    (AckCode::Reject, _) => (AckCode::Reject, RejectReason::Unsupported),
                    // The hub could not store it: not the message's fault.
                    (_, 207) => (AckCode::Error, RejectReason::Internal),
                    _ => (AckCode::Error, RejectReason::Schema),
                };
                events.rejected(ADT_NAME, None, &Reject::new(reason, r.detail.clone()));
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
            adapter = ADT_NAME,
            %peer,
            trigger,
            control_id = %header.control_id,
            ack = code.as_str(),
            "message answered"
        );
        self.ack(Some(&header), code, &errors)
    }
}

#[cfg(test)]
mod tests;
