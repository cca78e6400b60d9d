//! The HTTP API (JSON). Errors are `{"error": "..."}` with a fitting status code.
//!
//! `router(state)` is the whole API, served as is in production and by the end-to-end tests
//! over real sockets (`tests/`, a `TestServer` on port 0).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wardhub_adapters::model::{
    format_rfc3339, is_valid_id, metric_by_code, metric_by_name, parse_time, Clock, Metric,
    Observation,
};

pub mod access;
mod admin_api;
mod alarms_api;
mod authenticated;
pub mod dashboard;
mod fhir_api;
pub mod metrics;
mod patients_api;
mod phone_api;
mod registry_api;
mod roster_api;
pub mod serve;
mod session_api;
pub(crate) mod ward_api;

pub use authenticated::Authenticated;

use crate::registry::Registry;
use crate::store::{Rollup, SledStore, TimeRange};
use crate::telemetry::Telemetry;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<SledStore>,
    pub registry: Arc<crate::registry::SledRegistry>,
    pub telemetry: Arc<Telemetry>,
    pub clock: Arc<dyn Clock>,
    pub ward: String,
    pub users: Arc<crate::auth::Users>,
    /// Tokens revoked at run time.
    pub revoked: Arc<crate::auth::Revocations>,
    /// Dashboard sessions (cookies).
    pub sessions: Arc<crate::auth::Sessions>,
    /// Failed logins per source.
    pub login_limiter: Arc<crate::auth::FailureLimiter>,
    /// Who read which bed's data.
    pub audit: Arc<crate::audit::AccessAudit>,
    /// Served over TLS: cookies are `Secure`.
    pub tls: bool,
    pub alarms: Arc<crate::alarms::AlarmService>,
    /// Who lies in which bed (ADT feed, manual association).
    pub patients: Arc<crate::patients::PatientContext>,
    /// The EMR exports, when on (their refused messages, for an admin).
    pub emr: Option<Arc<crate::emr::Emr>>,
    /// Alarms to a person (roster, chains), when on.
    pub dissemination: Option<Arc<crate::dissemination::Disseminator>>,
    pub health: Arc<crate::health::Health>,
    /// Fires when the HTTP server stops: long-lived streams end.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// An API error: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub(crate) fn bad_request(m: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, m.into())
    }
    pub(crate) fn not_found(m: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, m.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store query failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "storage error".into())
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Every route with its access decision.
fn routes() -> access::Routes {
    let r = access::Routes::default()
        .get("/healthz", access::Access::Open, healthz)
        .get(
            "/api/v1/devices/{id}/observations",
            access::Access::Read,
            device_observations,
        )
        .get(
            "/api/v1/devices/{id}/latest",
            access::Access::Read,
            device_latest,
        )
        .get(
            "/api/v1/beds/{bed}/latest",
            access::Access::Read,
            bed_latest,
        )
        .get(
            "/api/v1/beds/{bed}/observations",
            access::Access::Read,
            bed_observations,
        );
    let r = alarms_api::routes(r);
    let r = dashboard::routes(r);
    let r = ward_api::routes(r);
    let r = session_api::routes(r);
    let r = admin_api::routes(r);
    let r = patients_api::routes(r);
    let r = fhir_api::routes(r);
    let r = roster_api::routes(r);
    let r = phone_api::routes(r);
    registry_api::routes(r)
}

/// The access matrix: every route of the API, its method and what it needs.
pub fn route_table() -> Vec<access::RouteDecl> {
    routes().table().to_vec()
}

/// The API router: every route behind the access guard; every error body JSON.
pub fn router(state: AppState) -> Router {
    routes()
        .into_router(state)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn(json_errors))
}

/// Rejections that axum makes itself (a malformed JSON body, a wrong method, a bad query)
/// come as plain text; the API promises `{"error": …}` for every error.
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/fhir+json")
        });
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let json = Json(json!({ "error": text })).into_response();
    let (jparts, jbody) = json.into_parts();
    for (k, v) in jparts.headers.iter() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, jbody)
}

/// 200 while every internal part works; 503 naming the parts that do not.
async fn healthz(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let report = s.health.report();
    let mut components = serde_json::Map::new();
    let mut failed = Vec::new();
    for (name, up, reason) in &report.components {
        components.insert((*name).to_owned(), json!({ "up": up, "reason": reason }));
        if !up {
            failed.push(*name);
        }
    }
    let status = if report.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if report.ok() { "ok" } else { "failing" },
            "failed": failed,
            "components": components,
            "ward": s.ward,
            "uptime_s": s.telemetry.uptime_start.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
}

/// One observation as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ObservationJson {
    pub device_id: String,
    pub bed: Option<String>,
    pub metric: String,
    pub code: u32,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub status: String,
    pub observed_at: String,
    pub received_at: String,
    /// Where on the device (HL7 OBX-4 path, MQTT `channel`), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl From<&Observation> for ObservationJson {
    fn from(o: &Observation) -> Self {
        ObservationJson {
            device_id: o.device_id.to_string(),
            bed: o.bed.clone(),
            metric: o.metric.refid.into(),
            code: o.metric.code,
            name: o.metric.name.into(),
            value: o.value,
            unit: o.metric.unit.into(),
            status: o.status.as_str().into(),
            observed_at: format_rfc3339(o.observed_at),
            received_at: format_rfc3339(o.received_at),
            channel: o.channel.clone(),
        }
    }
}

/// One minute of a metric as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RollupJson {
    pub device_id: String,
    pub metric: String,
    pub code: u32,
    pub name: String,
    pub unit: String,
    /// The channel it aggregates (each channel of a metric has rollups of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub minute: String,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

impl From<&Rollup> for RollupJson {
    fn from(r: &Rollup) -> Self {
        RollupJson {
            device_id: r.device_id.to_string(),
            metric: r.metric.refid.into(),
            code: r.metric.code,
            name: r.metric.name.into(),
            unit: r.metric.unit.into(),
            channel: r.channel.clone(),
            minute: format_rfc3339(r.minute),
            min: r.min,
            max: r.max,
            mean: r.mean,
            count: r.count,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    resolution: Option<String>,
}

const DEFAULT_LIMIT: usize = 10_000;
const MAX_LIMIT: usize = 100_000;
/// Ranges longer than this default to one-minute rollups.
const RAW_AUTO_MAX_MS: i64 = 6 * 3600 * 1000;

impl RangeQuery {
    pub(crate) fn range(&self, now: i64) -> ApiResult<TimeRange> {
        let parse = |name: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
            v.as_deref()
                .map(|s| {
                    parse_time(s).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{name} must be RFC 3339 (2026-11-20T10:00:00Z) or epoch milliseconds"
                        ))
                    })
                })
                .transpose()
        };
        let to = parse("to", &self.to)?.unwrap_or(now);
        let from = parse("from", &self.from)?.unwrap_or(to - 3600 * 1000);
        if from > to {
            return Err(ApiError::bad_request("from is after to"));
        }
        Ok(TimeRange { from, to })
    }

    pub(crate) fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(0) => Err(ApiError::bad_request("limit must be at least 1")),
            Some(n) if n > MAX_LIMIT => Err(ApiError::bad_request(format!(
                "limit must be at most {MAX_LIMIT}"
            ))),
            Some(n) => Ok(n),
        }
    }

    fn metric(&self) -> ApiResult<Option<Metric>> {
        self.metric
            .as_deref()
            .map(|m| {
                m.parse::<u32>()
                    .ok()
                    .and_then(metric_by_code)
                    .or_else(|| metric_by_name(m))
                    .ok_or_else(|| ApiError::bad_request(format!("unknown metric {m:?}")))
            })
            .transpose()
    }

    /// `raw` or `1m`; `auto` (the default) picks rollups for ranges over six hours.
    fn rollups(&self, range: TimeRange) -> ApiResult<bool> {
        match self.resolution.as_deref().unwrap_or("auto") {
            "raw" => Ok(false),
            "1m" => Ok(true),
            "auto" => Ok(range.to - range.from > RAW_AUTO_MAX_MS),
            other => Err(ApiError::bad_request(format!(
                "resolution must be raw, 1m or auto, not {other:?}"
            ))),
        }
    }
}

pub(crate) fn check_id(kind: &str, id: &str) -> ApiResult<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{kind} id must be 1-64 characters of [A-Za-z0-9._-]"
        )))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "query task failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "query failed".into())
    })?
}

/// A device the hub has never heard of is a 404; a known one with no data is an empty list.
fn known_device(s: &AppState, id: &str) -> ApiResult<()> {
    if s.registry.is_registered(id) || s.store.has_device(id)? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("unknown device {id}")))
    }
}

async fn device_observations(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("device", &id)?;
    let range = q.range(s.clock.now_ms())?;
    let limit = q.limit()?;
    let metric = q.metric()?;
    let rollups = q.rollups(range)?;
    blocking(move || {
        known_device(&s, &id)?;
        if rollups {
            let page = s.store.device_rollups(&id, metric, range, limit)?;
            let items: Vec<RollupJson> = page.items.iter().map(Into::into).collect();
            Ok(Json(json!({
                "device_id": id, "resolution": "1m", "rollups": items, "truncated": page.truncated,
            })))
        } else {
            let page = s.store.device_observations(&id, metric, range, limit)?;
            let items: Vec<ObservationJson> = page.items.iter().map(Into::into).collect();
            Ok(Json(json!({
                "device_id": id, "resolution": "raw", "observations": items, "truncated": page.truncated,
            })))
        }
    })
    .await
}

async fn device_latest(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("device", &id)?;
    blocking(move || {
        known_device(&s, &id)?;
        let items: Vec<ObservationJson> =
            s.store.device_latest(&id)?.iter().map(Into::into).collect();
        Ok(Json(json!({ "device_id": id, "latest": items })))
    })
    .await
}

async fn bed_latest(
    State(s): State<AppState>,
    Path(bed): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    blocking(move || {
        let items: Vec<ObservationJson> =
            s.store.bed_latest(&bed)?.iter().map(Into::into).collect();
        Ok(Json(json!({ "bed": bed, "latest": items })))
    })
    .await
}

async fn bed_observations(
    State(s): State<AppState>,
    Path(bed): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    if q.metric.is_some() {
        return Err(ApiError::bad_request(
            "metric is not a filter of bed observations; use the device endpoint",
        ));
    }
    let range = q.range(s.clock.now_ms())?;
    let limit = q.limit()?;
    let rollups = q.rollups(range)?;
    blocking(move || {
        if rollups {
            let page = s.store.bed_rollups(&bed, range, limit)?;
            let items: Vec<RollupJson> = page.items.iter().map(Into::into).collect();
            Ok(Json(json!({
                "bed": bed, "resolution": "1m", "rollups": items, "truncated": page.truncated,
            })))
        } else {
            let page = s.store.bed_observations(&bed, range, limit)?;
            let items: Vec<ObservationJson> = page.items.iter().map(Into::into).collect();
            Ok(Json(json!({
                "bed": bed, "resolution": "raw", "observations": items, "truncated": page.truncated,
            })))
        }
    })
    .await
}
