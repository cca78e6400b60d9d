//! The HTTP server: one hyper HTTP/1.1 connection per accepted socket, with the limits that
//! keep one client from exhausting the face (a slowloris attack held every file descriptor
//! with partial requests when there were none):
//!
//! - a connection cap, in total and per source address ([`ConnectionLimiter`]);
//! - a header-read timeout (which also closes idle keep-alive connections);
//! - a request timeout around every handler, body reading included (the live stream's body,
//!   once its headers are out, is not bounded);
//! - optional TLS (rustls, reloadable certificates) with HSTS on every response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use wardhub_adapters::net::ConnectionLimiter;
use wardhub_adapters::tls::ReloadingTls;

use crate::telemetry::Telemetry;

/// How the server protects itself.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub limiter: ConnectionLimiter,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub tls: Option<ReloadingTls>,
}

const HSTS: &str = "max-age=31536000";

/// Wraps every request in the request timeout (503 JSON when it passes) and, under TLS, adds
/// HSTS. Applied to the router by [`run`].
pub fn with_limits(app: Router, request_timeout: Duration, tls: bool) -> Router {
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            let mut resp = match tokio::time::timeout(request_timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => axum::response::IntoResponse::into_response(super::ApiError(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "the request took too long".into(),
                )),
            };
            if tls {
                resp.headers_mut().insert(
                    axum::http::header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            resp
        },
    ))
}

/// Serves `app` on `listener` until `cancel`; then lets open requests finish (bounded by the
/// request timeout) and returns.
pub async fn run(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
    let app = with_limits(app, opts.request_timeout, opts.tls.is_some());
    let tracker = TaskTracker::new();
    let open = telemetry.connections_open.with_label_values(&["http"]);
    loop {
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = cancel.cancelled() => break,
        };
        let permit = match opts.limiter.try_acquire(peer.ip()) {
            Ok(p) => p,
            Err(limit) => {
                telemetry
                    .connections_refused
                    .with_label_values(&["http", limit.as_str()])
                    .inc();
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, opts, cancel, open) = (app.clone(), opts.clone(), cancel.clone(), open.clone());
        tracker.spawn(async move {
            let _permit = permit;
            open.inc();
            match &opts.tls {
                None => serve_conn(TokioIo::new(stream), peer, app, &opts, &cancel).await,
                Some(tls) => {
                    let hs =
                        tokio::time::timeout(opts.header_timeout, tls.acceptor().accept(stream));
                    if let Ok(Ok(s)) = hs.await {
                        serve_conn(TokioIo::new(s), peer, app, &opts, &cancel).await;
                    }
                }
            }
            open.dec();
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn serve_conn<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    opts: &ServeOptions,
    cancel: &CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let svc = hyper_util::service::TowerToHyperService::new(svc);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => { let _ = r; }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(opts.request_timeout, conn).await;
        }
    }
}
