//! Alarm endpoints: lists, history, acknowledge, audio pause, rules, and the live SSE stream.
//!
//! The route table is here; the handlers are by resource: `alarms` the open alarms and what
//! is done to them (acknowledge, pause), `history` the history, KPIs and what-if replay,
//! `rules` the ward's and the beds' rules, `stream` the live SSE stream.

mod alarms;
mod history;
mod rules;
mod stream;

use axum::http::StatusCode;

use super::access::{Access, Routes};
use super::{ApiError, ApiResult, AppState};
use crate::alarms::AlarmError;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/alarms", Access::Read, alarms::list)
        .get("/api/v1/alarms/history", Access::Read, history::history)
        .get("/api/v1/alarms/kpis", Access::Read, history::kpis)
        .post("/api/v1/alarms/replay", Access::Admin, history::replay)
        .get("/api/v1/alarms/stream", Access::Read, stream::stream)
        .get("/api/v1/alarms/{id}", Access::Read, alarms::one)
        .post("/api/v1/alarms/{id}/ack", Access::Acknowledge, alarms::ack)
        .post(
            "/api/v1/alarms/{id}/pause",
            Access::Acknowledge,
            alarms::pause,
        )
        .post(
            "/api/v1/beds/{bed}/pause",
            Access::Acknowledge,
            alarms::pause_bed,
        )
        .get("/api/v1/rules", Access::Read, rules::get_rules)
        .put("/api/v1/rules", Access::Admin, rules::put_rules)
        .get(
            "/api/v1/beds/{bed}/rules",
            Access::Read,
            rules::get_bed_rules,
        )
        .put(
            "/api/v1/beds/{bed}/rules",
            Access::Acknowledge,
            rules::put_bed_rules,
        )
        .delete(
            "/api/v1/beds/{bed}/rules",
            Access::Acknowledge,
            rules::delete_bed_rules,
        )
}

impl From<AlarmError> for ApiError {
    fn from(e: AlarmError) -> Self {
        let status = match &e {
            AlarmError::UnknownAlarm(_) => StatusCode::NOT_FOUND,
            AlarmError::InvalidState { .. } => StatusCode::CONFLICT,
            AlarmError::InvalidRule { .. }
            | AlarmError::InvalidConfig(_)
            | AlarmError::InvalidUser
            | AlarmError::NoteTooLong
            | AlarmError::PauseTooLong { .. }
            | AlarmError::InvalidStatus(_)
            | AlarmError::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            AlarmError::Store(_) => {
                tracing::error!(error = %e, "alarm store failed");
                return ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "alarm storage error".into(),
                );
            }
        };
        ApiError(status, e.to_string())
    }
}

/// 404 unless the registry knows the bed (rules and pauses for a bed that does not exist would
/// silently do nothing, or apply to the wrong one later).
fn known_bed(s: &AppState, bed: &str) -> ApiResult<()> {
    super::check_id("bed", bed)?;
    if !s.registry.beds_named(bed).iter().any(|(_, b)| b == bed) {
        return Err(ApiError::not_found(format!(
            "no bed {bed} in the registry (add it with wardhub bed add)"
        )));
    }
    Ok(())
}
