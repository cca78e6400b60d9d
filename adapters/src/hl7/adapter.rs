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
//!
//! This file is the listener and its connections (admission, TLS, framing, timeouts);
//! `answer` decodes, stores and answers each message. The accept loop (`accept_loop`) and
//! the connection loop (`serve_mllp`) are shared with the ADT feed's listener
//! ([`crate::hl7::adt_listener`]).

mod answer;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use crate::adapter::{Adapter, AdapterContext, AdapterError, BoxFuture};
use crate::hl7::config::Hl7Config;
use crate::hl7::mllp::{self, Framer, Item};
use crate::hl7::oru::OruOptions;
use crate::hl7::peers::{Admitted, Peers};
use crate::net::{ConnectionLimiter, ConnectionPermit};

/// The adapter's name, its `adapter` metric label.
pub const NAME: &str = "hl7_mllp";

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
    accept_loop(
        NAME,
        listener,
        &limiter,
        &shared.ctx,
        |ip| shared.address_may_connect(ip),
        "no HL7 peer is allowed from this address",
        |stream, peer, permit| connection(shared.clone(), stream, peer, permit),
    )
    .await;
    Ok(())
}

/// Accepts connections until `ctx.cancel` fires, then waits for the open ones to finish.
/// A source `allowed` refuses (logged with `not_allowed` as the reason) and a connection
/// over the limiter's caps are closed at once, before a byte is read.
pub(crate) async fn accept_loop<C, F>(
    name: &'static str,
    listener: TcpListener,
    limiter: &ConnectionLimiter,
    ctx: &AdapterContext,
    allowed: impl Fn(IpAddr) -> bool,
    not_allowed: &'static str,
    mut connection: C,
) where
    C: FnMut(TcpStream, SocketAddr, ConnectionPermit) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    loop {
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !allowed(peer.ip()) {
                        ctx.events.connection_refused(name, "not_allowed");
                        tracing::warn!(adapter = name, %peer, "connection refused: {not_allowed}");
                        continue;
                    }
                    match limiter.try_acquire(peer.ip()) {
                        Ok(permit) => {
                            tracker.spawn(connection(stream, peer, permit));
                        }
                        Err(limit) => {
                            ctx.events.connection_refused(name, limit.as_str());
                            tracing::warn!(
                                adapter = name,
                                %peer,
                                limit = limit.as_str(),
                                max = limiter.max_total(),
                                per_source = limiter.max_per_source(),
                                "connection refused: too many connections"
                            );
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(adapter = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
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
    let conn = MllpConnection {
        name: NAME,
        ctx: &shared.ctx,
        max_frame_bytes: cfg.max_frame_bytes,
        frame_timeout: cfg.frame_timeout,
        idle_timeout: cfg.idle_timeout,
    };
    let answer = OruAnswer {
        shared,
        peer,
        admitted,
    };
    serve_mllp(&conn, stream, &answer).await
}

struct OruAnswer<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    admitted: &'a Admitted,
}

impl Answer for OruAnswer<'_> {
    async fn message(&self, frame: &[u8]) -> String {
        self.shared.handle(frame, self.peer, self.admitted).await
    }

    fn too_large(&self, head: &[u8]) -> String {
        self.shared.too_large(head)
    }
}

/// One MLLP connection's face (its `adapter` label, its context) and limits.
pub(crate) struct MllpConnection<'a> {
    pub(crate) name: &'static str,
    pub(crate) ctx: &'a AdapterContext,
    pub(crate) max_frame_bytes: usize,
    pub(crate) frame_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

/// What a connection answers to the frames it reads.
pub(crate) trait Answer {
    /// The reply (an ACK) to one complete message. The connection reads on only once it has
    /// it, so the messages of one connection are handled one at a time, in order.
    fn message(&self, frame: &[u8]) -> impl Future<Output = String> + Send;

    /// The reply to a message over `max_frame_bytes`, of which `head` is the beginning.
    fn too_large(&self, head: &[u8]) -> String;
}

/// Serves one MLLP connection (frames in, one framed reply each); returns why it ended:
/// closed by the peer, a timeout (a frame must be whole within `frame_timeout` of its start,
/// a silent connection ends after `idle_timeout`), or cancellation (the message in hand is
/// finished and answered first; one read whole afterwards is left unanswered, so that its
/// sender sends it again).
pub(crate) async fn serve_mllp<S, A>(
    conn: &MllpConnection<'_>,
    stream: &mut S,
    answer: &A,
) -> &'static str
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: Answer + Sync,
{
    let cancel = &conn.ctx.cancel;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut framer = Framer::new(conn.max_frame_bytes);
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
                    answer.message(&frame).await
                }
                Item::Skipped(n) => {
                    conn.ctx.events.skipped_bytes(conn.name, n);
                    continue;
                }
                Item::TooLarge { head } => {
                    frame_began = None;
                    answer.too_large(&head)
                }
            };
            let mut out = BytesMut::with_capacity(reply.len() + 3);
            mllp::encode(reply.as_bytes(), &mut out);
            match tokio::time::timeout(conn.idle_timeout, stream.write_all(&out)).await {
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
            Some(t) => (t + conn.frame_timeout, "frame timeout"),
            None => (now + conn.idle_timeout, "idle timeout"),
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
                        conn.ctx.events.connection_refused(conn.name, "frame_timeout");
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
}

#[cfg(test)]
mod tests;
