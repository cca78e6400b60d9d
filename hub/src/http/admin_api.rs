//! Admin views: the users and their tokens' state, revoking a token at run time, and the
//! access audit ("who looked at this patient").

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wardhub_adapters::model::parse_time;

use super::access::{Access, Routes};
use super::Authenticated;
use super::{blocking, ApiError, ApiResult, AppState};
use crate::audit::AuditQuery;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/users", Access::Admin, users)
        .post("/api/v1/users/{name}/revoke", Access::Admin, revoke)
        .get("/api/v1/audit", Access::Admin, audit)
}

async fn users(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "users": s.users.list(&s.revoked) }))
}

/// Revokes every token of a user at once (stored, so a restart keeps it) and ends their
/// dashboard sessions. A new token needs a new `[[users]]` entry.
async fn revoke(
    State(s): State<AppState>,
    Authenticated(admin): Authenticated,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let hashes = s.users.hashes_of(&name);
    if hashes.is_empty() {
        return Err(ApiError::not_found(format!("no user {name:?}")));
    }
    let now = s.clock.now_ms();
    let revoked = s.revoked.clone();
    let (n, by) = (name.clone(), admin.name.clone());
    let h = hashes.clone();
    blocking(move || {
        revoked.revoke(&h, &n, &by, now).map_err(|e| {
            tracing::error!(error = %e, "token revocation could not be stored");
            ApiError(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "storage error".into(),
            )
        })
    })
    .await?;
    let sessions = s.sessions.end_for_tokens(&hashes);
    tracing::warn!(user = %name, by = %admin.name, sessions, "token revoked");
    Ok(Json(
        json!({ "user": name, "revoked_tokens": hashes.len(), "ended_sessions": sessions }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    from: Option<String>,
    to: Option<String>,
    user: Option<String>,
    bed: Option<String>,
    limit: Option<usize>,
}

async fn audit(
    State(s): State<AppState>,
    Query(q): Query<AuditParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let time = |name: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
        v.as_deref()
            .map(|t| {
                parse_time(t)
                    .ok_or_else(|| ApiError::bad_request(format!("{name}: not a time: {t:?}")))
            })
            .transpose()
    };
    let query = AuditQuery {
        from_ms: time("from", &q.from)?,
        to_ms: time("to", &q.to)?,
        user: q.user,
        bed: q.bed,
        limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
    };
    let audit = s.audit.clone();
    let records = blocking(move || {
        audit.query(&query).map_err(|e| {
            tracing::error!(error = %e, "access audit query failed");
            ApiError(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "storage error".into(),
            )
        })
    })
    .await?;
    Ok(Json(
        json!({ "accesses": records, "coalesce_ms": s.audit.coalesce() }),
    ))
}
