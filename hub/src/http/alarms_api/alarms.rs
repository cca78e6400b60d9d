//! The open alarms: the list, one alarm, and what a bedside user does to them (acknowledge,
//! pause the audio of an alarm or of a bed).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::known_bed;
use crate::alarms::{AckReason, AlarmId, PauseTarget, Priority};
use crate::auth::Permission;
use crate::http::{blocking, ApiError, ApiResult, AppState, Authenticated};

fn alarm_id(s: &str) -> ApiResult<AlarmId> {
    s.parse()
        .map_err(|e: crate::alarms::record::InvalidAlarmId| {
            ApiError(StatusCode::BAD_REQUEST, e.to_string())
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    state: Option<String>,
    ward: Option<String>,
    bed: Option<String>,
    priority: Option<Priority>,
}

pub(super) async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let state = q.state.as_deref().unwrap_or("open");
    if !matches!(state, "open" | "active" | "acknowledged") {
        return Err(ApiError::bad_request(
            "state must be open, active or acknowledged",
        ));
    }
    let alarms: Vec<_> = s
        .alarms
        .open_alarms()
        .into_iter()
        .filter(|a| state == "open" || a.state.as_str() == state)
        .filter(|a| q.ward.as_deref().is_none_or(|w| a.ward == w))
        .filter(|a| q.bed.as_deref().is_none_or(|b| a.bed.as_deref() == Some(b)))
        .filter(|a| q.priority.is_none_or(|p| a.priority == p))
        .collect();
    Ok(Json(json!({ "alarms": alarms })))
}

pub(super) async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = alarm_id(&id)?;
    match s.alarms.alarm(id) {
        Some(a) => Ok(Json(json!({ "alarm": a }))),
        None => Err(ApiError::not_found(format!("no open alarm {id}"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    reason: Option<AckReason>,
    note: Option<String>,
}

pub(super) async fn ack(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
    body: Option<Json<AckBody>>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Acknowledge)?;
    let id = alarm_id(&id)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let alarms = s.alarms.clone();
    let transitions = blocking(move || {
        Ok(alarms.acknowledge(id, &user.name, body.reason, body.note.as_deref())?)
    })
    .await?;
    Ok(Json(json!({ "transitions": transitions })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    /// Humane duration ("2m"); the configured default when absent.
    duration: Option<String>,
}

fn pause_duration(body: Option<Json<PauseBody>>) -> ApiResult<Option<Duration>> {
    body.and_then(|b| b.0.duration)
        .map(|d| {
            humantime::parse_duration(&d)
                .map_err(|e| ApiError::bad_request(format!("duration {d:?}: {e}")))
        })
        .transpose()
}

pub(super) async fn pause(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
    body: Option<Json<PauseBody>>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Acknowledge)?;
    let id = alarm_id(&id)?;
    let duration = pause_duration(body)?;
    let alarms = s.alarms.clone();
    let transitions =
        blocking(move || Ok(alarms.pause_audio(PauseTarget::Alarm(id), &user.name, duration)?))
            .await?;
    Ok(Json(json!({ "transitions": transitions })))
}

pub(super) async fn pause_bed(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(bed): Path<String>,
    body: Option<Json<PauseBody>>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Acknowledge)?;
    known_bed(&s, &bed)?;
    let duration = pause_duration(body)?;
    let alarms = s.alarms.clone();
    let transitions =
        blocking(move || Ok(alarms.pause_audio(PauseTarget::Bed(&bed), &user.name, duration)?))
            .await?;
    Ok(Json(json!({ "transitions": transitions })))
}
