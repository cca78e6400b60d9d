//! Who is sent which alarm (`[dissemination]`, docs/DISSEMINATION.md): the shift's roster,
//! a bed's assignment, and a nurse accepting or passing on an alarm sent to them.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::json;

use super::access::{Access, Routes};
use super::{check_id, ApiError, ApiResult, AppState, Authenticated};
use crate::alarms::AlarmId;
use crate::dissemination::{Assignment, DisseminationError, Disseminator, Roster};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/roster", Access::Read, get_roster)
        .put("/api/v1/roster", Access::Admin, put_roster)
        .put("/api/v1/beds/{bed}/assignment", Access::Acknowledge, assign)
        .post("/api/v1/alarms/{id}/accept", Access::Acknowledge, accept)
        .post("/api/v1/alarms/{id}/reject", Access::Acknowledge, reject)
        .get("/api/v1/alarms/{id}/dissemination", Access::Read, history)
        .get("/api/v1/dissemination", Access::Read, status)
}

/// Every open alarm's dissemination (the ward dashboard: "accepted by …").
async fn status(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let d = service(&s)?;
    let open: Vec<AlarmId> = s.alarms.open_alarms().iter().map(|a| a.id).collect();
    Ok(Json(json!({ "alarms": d.status(&open) })))
}

fn service(s: &AppState) -> ApiResult<&std::sync::Arc<Disseminator>> {
    s.dissemination.as_ref().ok_or_else(|| {
        ApiError::not_found("alarm dissemination is off ([dissemination] enabled = false)")
    })
}

fn refused(e: DisseminationError) -> ApiError {
    match e {
        DisseminationError::Invalid(m) => ApiError(axum::http::StatusCode::CONFLICT, m),
        other => {
            tracing::error!(error = %other, "dissemination store failed");
            ApiError(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "storage error".into(),
            )
        }
    }
}

fn alarm_id(id: &str) -> ApiResult<AlarmId> {
    id.parse::<AlarmId>()
        .map_err(|_| ApiError::bad_request("an alarm id is A followed by digits (A000042)"))
}

/// The roster, and the beds no nurse looks after (their alarms go to the charge nurse).
fn roster_json(s: &AppState, r: &Roster) -> serde_json::Value {
    let unassigned: Vec<String> = s
        .registry
        .beds(None)
        .into_iter()
        .map(|b| b.bed)
        .filter(|b| r.beds.get(b).is_none_or(|a| a.primary.is_none()))
        .collect();
    json!({ "roster": r, "unassigned_beds": unassigned })
}

async fn get_roster(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let d = service(&s)?;
    Ok(Json(roster_json(&s, &d.roster())))
}

async fn put_roster(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Json(r): Json<Roster>,
) -> ApiResult<Json<serde_json::Value>> {
    let d = service(&s)?;
    if let Some(bed) = r.beds.keys().find(|b| s.registry.beds_named(b).is_empty()) {
        return Err(ApiError::not_found(format!(
            "no bed {bed:?} in the registry"
        )));
    }
    d.set_roster(r, &user.name).map_err(refused)?;
    Ok(Json(roster_json(&s, &d.roster())))
}

async fn assign(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(bed): Path<String>,
    Json(a): Json<Assignment>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    let d = service(&s)?;
    if s.registry.beds_named(&bed).is_empty() {
        return Err(ApiError::not_found(format!(
            "no bed {bed:?} in the registry"
        )));
    }
    let r = d
        .assign(&bed, a.primary, a.buddy, &user.name)
        .map_err(refused)?;
    Ok(Json(roster_json(&s, &r)))
}

async fn accept(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = alarm_id(&id)?;
    service(&s)?.accept(id, &user.name).map_err(refused)?;
    Ok(Json(json!({ "alarm": id, "accepted_by": user.name })))
}

async fn reject(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = alarm_id(&id)?;
    service(&s)?.reject(id, &user.name).map_err(refused)?;
    Ok(Json(json!({ "alarm": id, "rejected_by": user.name })))
}

async fn history(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = alarm_id(&id)?;
    let d = service(&s)?.clone();
    let steps = tokio::task::spawn_blocking(move || d.history(Some(id), 10_000))
        .await
        .map_err(|_| {
            ApiError(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "query failed".into(),
            )
        })?;
    Ok(Json(json!({ "alarm": id, "steps": steps })))
}
