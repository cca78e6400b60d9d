//! The device registry's REST API: `/api/v1/devices…`, `/api/v1/beds…`, `/api/v1/problems`.
//!
//! Reads are open like the rest of the API; every change needs a bearer token whose role
//! allows [`Permission::Registry`] (biomed, admin), and the user's name goes into the
//! device's history.
//!
//! `PUT /api/v1/devices/{id}` (create or update, and bind when a bed is given) is idempotent:
//! 201 when created, 200 when updated or unchanged, 409 when the bed's slot for the device's
//! kind is held by another active device and `"replace": true` is not given. A new device
//! without a `"secret"` gets one, returned once in the response (`"secret"`).

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::access::{Access, Routes};
use super::Authenticated;
use super::{blocking, check_id, ApiError, ApiResult, AppState};
use crate::auth::Permission;
use crate::registry::model::{DeviceInput, DeviceState, RegistryError};
use crate::registry::ListFilter;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::NotFound(_) | RegistryError::BedNotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Conflict(_) => StatusCode::CONFLICT,
            RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
            RegistryError::Storage(_) => {
                tracing::error!(error = %e, "registry storage failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, e.to_string())
    }
}

/// The registry routes (added to [`super::routes`]).
pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/devices", Access::Read, list)
        .post("/api/v1/devices", Access::Registry, create)
        .get("/api/v1/devices/export", Access::Registry, export)
        .post("/api/v1/devices/import", Access::Registry, import)
        .get("/api/v1/devices/{id}", Access::Read, show)
        .put("/api/v1/devices/{id}", Access::Registry, put)
        .post("/api/v1/devices/{id}/bind", Access::Registry, bind)
        .post("/api/v1/devices/{id}/unbind", Access::Registry, unbind)
        .post("/api/v1/devices/{id}/retire", Access::Registry, retire)
        .post(
            "/api/v1/devices/{id}/credentials/rotate",
            Access::Registry,
            rotate,
        )
        .get("/api/v1/devices/{id}/history", Access::Registry, history)
        .get("/api/v1/devices/{id}/status", Access::Read, status)
        .get("/api/v1/beds", Access::Read, beds)
        .post("/api/v1/beds", Access::Registry, add_bed)
        .get("/api/v1/beds/{bed}", Access::Read, bed)
        .get("/api/v1/problems", Access::Registry, problems)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    ward: Option<String>,
    bed: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    online: Option<bool>,
}

async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let state = match q.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some("active") => Some(DeviceState::Active),
        Some("retired") => Some(DeviceState::Retired),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "state must be active, retired or all, not {other:?}"
            )))
        }
    };
    let filter = ListFilter {
        ward: q.ward,
        bed: q.bed,
        kind: q.kind,
        state,
        online: q.online,
    };
    Ok(Json(json!({ "devices": s.registry.list(&filter) })))
}

async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("device", &id)?;
    let v = s
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("unknown device {id}")))?;
    Ok(Json(json!(v)))
}

async fn create(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Json(input): Json<DeviceInput>,
) -> ApiResult<Response> {
    user.require(Permission::Registry)?;
    let id = input
        .id
        .clone()
        .ok_or_else(|| ApiError::bad_request("id is required"))?;
    let u = blocking(move || Ok(s.registry.create(&user.name, &id, &input)?)).await?;
    Ok((StatusCode::CREATED, Json(json!(u))).into_response())
}

async fn put(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
    Json(input): Json<DeviceInput>,
) -> ApiResult<Response> {
    user.require(Permission::Registry)?;
    if input.id.as_deref().is_some_and(|i| i != id) {
        return Err(ApiError::bad_request(
            "the id in the body differs from the path",
        ));
    }
    let u = blocking(move || Ok(s.registry.upsert(&user.name, &id, &input)?)).await?;
    let code = if u.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(json!(u))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindBody {
    ward: Option<String>,
    bed: String,
    #[serde(default)]
    replace: bool,
}

async fn bind(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
    Json(b): Json<BindBody>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Registry)?;
    let v = blocking(move || {
        Ok(s.registry
            .bind(&user.name, &id, b.ward, &b.bed, b.replace)?)
    })
    .await?;
    Ok(Json(json!(v)))
}

async fn unbind(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Registry)?;
    let v = blocking(move || Ok(s.registry.unbind(&user.name, &id)?)).await?;
    Ok(Json(json!(v)))
}

async fn retire(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Registry)?;
    let v = blocking(move || Ok(s.registry.retire(&user.name, &id)?)).await?;
    Ok(Json(json!(v)))
}

async fn rotate(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Registry)?;
    let id2 = id.clone();
    let secret = blocking(move || Ok(s.registry.rotate(&user.name, &id2)?)).await?;
    Ok(Json(json!({ "id": id, "secret": secret })))
}

async fn history(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("device", &id)?;
    let id2 = id.clone();
    let h = blocking(move || Ok(s.registry.history(&id2)?)).await?;
    Ok(Json(json!({ "id": id, "history": h })))
}

async fn status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("device", &id)?;
    let v = s
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("unknown device {id}")))?;
    let alarms = {
        let s = s.clone();
        let id = id.clone();
        blocking(move || Ok(s.registry.device_alarms_24h(&id))).await?
    };
    Ok(Json(json!({
        "id": v.id, "kind": v.kind, "ward": v.ward, "bed": v.bed, "state": v.state,
        "firmware": v.firmware, "online": v.live.online, "last_seen": v.live.last_seen,
        "message_rate_per_min": v.live.message_rate_per_min,
        "battery_pct": v.live.battery_pct, "charging": v.live.charging,
        "firmware_reported": v.live.firmware_reported, "alarms_24h": alarms,
        "live": v.live,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WardQuery {
    ward: Option<String>,
}

async fn beds(
    State(s): State<AppState>,
    Query(q): Query<WardQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let beds = blocking(move || Ok(s.registry.beds(q.ward.as_deref()))).await?;
    Ok(Json(json!({ "beds": beds })))
}

async fn bed(
    State(s): State<AppState>,
    Path(bed): Path<String>,
    Query(q): Query<WardQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    blocking(move || {
        let view = s
            .registry
            .bed(q.ward.as_deref(), &bed)
            .ok_or_else(|| ApiError::not_found(format!("unknown bed {bed}")))?;
        let devices: Vec<_> = view
            .devices
            .iter()
            .filter_map(|id| s.registry.get(id))
            .collect();
        let mut out = json!(view);
        out["device_status"] = json!(devices);
        Ok(Json(out))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BedBody {
    ward: Option<String>,
    bed: String,
}

async fn add_bed(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Json(b): Json<BedBody>,
) -> ApiResult<Response> {
    user.require(Permission::Registry)?;
    let view = blocking(move || {
        s.registry.add_bed(&user.name, b.ward.clone(), &b.bed)?;
        Ok(s.registry.bed(b.ward.as_deref(), &b.bed))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!(view))).into_response())
}

async fn problems(
    State(s): State<AppState>,
    Query(q): Query<WardQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        json!({ "problems": s.registry.problems(q.ward.as_deref()) }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    partial: bool,
}

/// CSV in the body. 200 with a report when applied; 422 with the report (every bad row by
/// line) when nothing was imported.
async fn import(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Query(q): Query<ImportQuery>,
    body: String,
) -> ApiResult<Response> {
    user.require(Permission::Registry)?;
    let (rows, bad) = crate::registry::csv::parse(&body);
    let unreadable = bad
        .into_iter()
        .map(|e| crate::registry::ImportError {
            line: e.line,
            error: e.error,
        })
        .collect();
    let r = blocking(move || {
        Ok(s.registry
            .import(&user.name, &rows, unreadable, q.partial)?)
    })
    .await?;
    let code = if r.applied {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((code, Json(json!(r))).into_response())
}

async fn export(State(s): State<AppState>) -> ApiResult<Response> {
    let text = blocking(move || Ok(crate::registry::csv::export(&s.registry.all()))).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response())
}
