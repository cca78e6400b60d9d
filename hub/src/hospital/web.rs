//! The hospital view's HTTP face: the page (`dashboards/web/hospital.*`, open: it holds no
//! patient data), `/healthz` and `/metrics` (open), and the API behind a bearer token
//! (`GET /api/v1/me`, `GET /api/v1/hospital`). Failed logins count against the source
//! address (429 past the limit). Read-only: acknowledging stays on each ward's dashboard.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use wardhub_adapters::model::Clock;

use super::metrics::HospitalMetrics;
use super::view::View;
use crate::auth::{FailureLimiter, Revocations, User, Users};
use crate::http::dashboard::asset;

const HOSPITAL_HTML: &str = include_str!("../../../dashboards/web/hospital.html");
const HOSPITAL_JS: &str = include_str!("../../../dashboards/web/hospital.js");
const HOSPITAL_CSS: &str = include_str!("../../../dashboards/web/hospital.css");

/// What the handlers share.
pub struct WebState {
    pub view: Arc<Mutex<View>>,
    pub users: Users,
    pub revoked: Revocations,
    pub limiter: FailureLimiter,
    pub metrics: HospitalMetrics,
    pub clock: Arc<dyn Clock>,
    pub stale_after: Duration,
}

fn error(status: StatusCode, message: &str) -> Refusal {
    Refusal(status, message.to_owned())
}

/// A refused request: its status and message.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The user of the request's bearer token, or the answer to give.
fn authenticate(s: &WebState, headers: &HeaderMap, peer: SocketAddr) -> Result<User, Refusal> {
    if let Some(wait) = s.limiter.blocked(peer.ip()) {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "too many failed logins; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "this needs a login (Authorization: Bearer …)",
        ));
    };
    match s.users.authenticate(token, s.clock.now_ms(), &s.revoked) {
        Ok(u) => {
            s.limiter.success(peer.ip());
            Ok(u.clone())
        }
        Err(_) => {
            s.limiter.failure(peer.ip());
            Err(error(StatusCode::UNAUTHORIZED, "the token was refused"))
        }
    }
}

async fn me(
    State(s): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match authenticate(&s, &headers, peer) {
        Ok(u) => Json(json!({ "name": u.name, "role": u.role })).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn hospital(
    State(s): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &headers, peer) {
        return r.into_response();
    }
    let now = s.clock.now_ms();
    let stale = i64::try_from(s.stale_after.as_millis()).unwrap_or(i64::MAX);
    let body = s
        .view
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .snapshot(now, stale);
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn metrics(State(s): State<Arc<WebState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<WebState>>) -> Response {
    let connected = s.metrics.connected.get() == 1;
    let status = if connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "cluster_connected": connected }))).into_response()
}

/// The view's routes.
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| asset("text/html; charset=utf-8", HOSPITAL_HTML)),
        )
        .route(
            "/hospital.js",
            get(|| asset("text/javascript; charset=utf-8", HOSPITAL_JS)),
        )
        .route(
            "/hospital.css",
            get(|| asset("text/css; charset=utf-8", HOSPITAL_CSS)),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/me", get(me))
        .route("/api/v1/hospital", get(hospital))
        .with_state(state)
}
