//! Access control for every route: each route is declared with the [`Access`] it needs, in one
//! table ([`Routes`]), and one guard enforces the table before any handler runs.
//!
//! A route cannot be added without a decision: [`Routes`] takes the access level with the
//! path, and the guard refuses (500, fail closed) any route it finds no decision for. The
//! table is public ([`crate::http::route_table`]) so the tests check every route for every
//! role, and that docs/SECURITY.md lists the same matrix.
//!
//! Credentials: `Authorization: Bearer <token>` (tools, the CLI) or the session cookie the
//! dashboard gets from `POST /api/v1/session`. Each failure counts against the source address
//! ([`crate::auth::FailureLimiter`]); a source over the limit gets 429 for the rest of the
//! window, whatever it sends. Reads of patient data are recorded in the access audit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;

use super::{ApiError, AppState};
use crate::audit::AccessRecord;
use crate::auth::{Permission, User, SESSION_COOKIE};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone: `/healthz` and the dashboard's static files (they hold no patient data).
    Open,
    /// Anyone, but failures count against the source: the login itself.
    Login,
    /// Any authenticated user, viewer included.
    Read,
    /// Nurse, biomed, admin.
    Acknowledge,
    /// Biomed, admin.
    Registry,
    /// Admin.
    Admin,
}

impl Access {
    /// The permission it needs, if any.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Access::Open | Access::Login => None,
            Access::Read => Some(Permission::Read),
            Access::Acknowledge => Some(Permission::Acknowledge),
            Access::Registry => Some(Permission::Registry),
            Access::Admin => Some(Permission::Admin),
        }
    }

    /// As docs/SECURITY.md writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Login => "login",
            Access::Read => "read",
            Access::Acknowledge => "acknowledge",
            Access::Registry => "registry",
            Access::Admin => "admin",
        }
    }
}

/// Reads that show no patient data, so they are not audited.
const NOT_PATIENT_DATA: &[&str] = &[
    "/api/v1/me",
    "/api/v1/session",
    "/api/v1/rules",
    "/api/v1/audit",
    "/api/v1/users",
    "/api/v1/roster",
];

/// One route and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecl {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

impl RouteDecl {
    /// Whether an allowed request is recorded in the access audit.
    pub fn audited(&self) -> bool {
        self.method == "GET"
            && !matches!(self.access, Access::Open | Access::Login)
            && !NOT_PATIENT_DATA.contains(&self.path)
    }
}

/// The router under construction, and its access table.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteDecl>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }
}

impl Routes {
    fn add<H, T>(
        mut self,
        (method, filter): (&'static str, MethodFilter),
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, h));
        self.table.push(RouteDecl {
            method,
            path,
            access,
        });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.add(("GET", MethodFilter::GET), path, access, h)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.add(("POST", MethodFilter::POST), path, access, h)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.add(("PUT", MethodFilter::PUT), path, access, h)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.add(("DELETE", MethodFilter::DELETE), path, access, h)
    }

    pub fn table(&self) -> &[RouteDecl] {
        &self.table
    }

    /// The router with the guard in front of every route.
    pub fn into_router(self, state: AppState) -> Router {
        let table: Arc<[RouteDecl]> = self.table.into();
        self.router
            .route_layer(axum::middleware::from_fn_with_state(
                Guard {
                    state: state.clone(),
                    table,
                },
                guard,
            ))
            .with_state(state)
    }
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    table: Arc<[RouteDecl]>,
}

/// The client's address (set by the HTTP server; tests driving the router directly have none).
pub fn source_of(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The bearer token of a request, if it carries one.
pub fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

/// The session cookie of a request.
pub fn session_cookie(req: &Request) -> Option<&str> {
    cookie(req, SESSION_COOKIE)
}

fn too_many(retry: std::time::Duration) -> Response {
    let mut r = ApiError(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins from this address; try again later".into(),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Counts and logs a failed authentication (source and reason; never the credential).
pub fn auth_failed(s: &AppState, source: IpAddr, reason: &'static str) {
    s.telemetry
        .http_auth_failures
        .with_label_values(&[reason])
        .inc();
    let locked = s.login_limiter.failure(source);
    tracing::warn!(%source, reason, locked_out = locked, "HTTP authentication failed");
}

async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let Some(decl) = path.as_deref().and_then(|p| {
        g.table
            .iter()
            .find(|d| d.path == p && d.method == method)
            .copied()
    }) else {
        // Another method of a declared path: axum answers 405 without running a handler.
        if path
            .as_deref()
            .is_some_and(|p| g.table.iter().any(|d| d.path == p))
        {
            return next.run(req).await;
        }
        tracing::error!(?path, %method, "route without an access decision refused");
        return ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this route has no access decision".into(),
        )
        .into_response();
    };
    let s = &g.state;
    let source = source_of(&req);
    if decl.access == Access::Open {
        return next.run(req).await;
    }
    if let Some(retry) = s.login_limiter.blocked(source) {
        s.telemetry
            .http_auth_failures
            .with_label_values(&["locked_out"])
            .inc();
        return too_many(retry);
    }
    if decl.access == Access::Login {
        return next.run(req).await;
    }
    let now = s.clock.now_ms();
    let credential = match (bearer(&req), session_cookie(&req)) {
        (Some(t), _) => Some(Credential::Token(crate::auth::sha256(t.as_bytes()))),
        (None, Some(id)) => Some(Credential::Session(id.to_owned())),
        (None, None) => None,
    };
    let user = match &credential {
        Some(c) => c.user(s, now),
        None => Err("missing"),
    };
    let user = match user {
        Ok(u) => u,
        Err(reason) => {
            // No credential at all is not a guess: it does not count against the source.
            if reason != "missing" {
                auth_failed(s, source, reason);
            } else {
                s.telemetry
                    .http_auth_failures
                    .with_label_values(&["missing"])
                    .inc();
            }
            return ApiError(
                StatusCode::UNAUTHORIZED,
                match reason {
                    "missing" => "this needs a login (a session or Authorization: Bearer …)",
                    "session" => "the session has expired or was ended; log in again",
                    _ => "unknown, expired or revoked token",
                }
                .into(),
            )
            .into_response();
        }
    };
    if let Some(p) = decl.access.permission() {
        if let Err(e) = user.require(p) {
            return ApiError::from(e).into_response();
        }
    }
    let (mut parts, body) = req.into_parts();
    if decl.audited() {
        audit(s, &decl, &user, source, &mut parts, now).await;
    }
    parts.extensions.insert(user);
    if let Some(c) = credential {
        parts.extensions.insert(c);
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The credential a request was allowed with, so a long-lived response (the live stream) can
/// check it is still good.
#[derive(Debug, Clone)]
pub enum Credential {
    /// SHA-256 of a bearer token.
    Token([u8; 32]),
    /// A session cookie's value.
    Session(String),
}

impl Credential {
    /// Its user now, or why not (a bounded reason: `unknown`, `expired`, `revoked`, `session`).
    fn user(&self, s: &AppState, now: i64) -> Result<User, &'static str> {
        match self {
            Credential::Token(h) => s
                .users
                .by_token_hash(h, now, &s.revoked)
                .cloned()
                .map_err(|r| r.as_str()),
            Credential::Session(id) => s
                .sessions
                .get(id, now)
                .and_then(|sess| {
                    s.users
                        .by_token_hash(&sess.token_hash, now, &s.revoked)
                        .ok()
                        .cloned()
                })
                .ok_or("session"),
        }
    }

    /// Whether it still lets its user in (not expired, not revoked, session not ended).
    pub fn still_valid(&self, s: &AppState) -> bool {
        self.user(s, s.clock.now_ms()).is_ok()
    }
}

async fn audit(
    s: &AppState,
    decl: &RouteDecl,
    user: &User,
    source: IpAddr,
    parts: &mut axum::http::request::Parts,
    now: i64,
) {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok();
    let param = |name: &str| {
        params.as_ref().and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
        })
    };
    let mut bed = param("bed");
    let device = decl
        .path
        .starts_with("/api/v1/devices/{id}")
        .then(|| param("id"))
        .flatten();
    if let Some(d) = &device {
        if wardhub_adapters::model::is_valid_id(d) {
            bed = s.registry.get(d).and_then(|v| v.bed);
        }
    }
    let patient = param("patient").or_else(|| {
        decl.path.starts_with("/fhir/").then(|| {
            parts.uri.query().and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "patient" || *k == "subject")
                    .map(|(_, v)| v.trim_start_matches("Patient/").to_owned())
            })
        })?
    });
    let ward_wide = bed.is_none() && device.is_none() && patient.is_none();
    let record = AccessRecord {
        at: wardhub_adapters::model::format_rfc3339(now),
        user: user.name.clone(),
        role: user.role.as_str().into(),
        route: decl.path.into(),
        bed,
        device,
        patient,
        ward_wide,
        source: source.to_string(),
    };
    // A repeat within the coalescing window costs no store write (a wall display polls).
    if !s.audit.admit(now, &record) {
        return;
    }
    let audit = s.audit.clone();
    let written = tokio::task::spawn_blocking(move || audit.append(now, &record)).await;
    if !matches!(written, Ok(Ok(()))) {
        s.telemetry.audit_failures.inc();
        tracing::error!("access audit could not be written");
    }
}
