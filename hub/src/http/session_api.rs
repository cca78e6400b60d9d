//! Dashboard login: `POST /api/v1/session {"token": …}` trades a bearer token for a session
//! cookie (`HttpOnly`, `SameSite=Strict`, `Secure` under TLS, expiring with the session);
//! `DELETE /api/v1/session` logs out. The token is never stored in the browser.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wardhub_adapters::model::format_rfc3339;

use super::access::{auth_failed, session_cookie, source_of, Access, Routes};
use super::Authenticated;
use super::{ApiError, ApiResult, AppState};
use crate::auth::{sha256, SESSION_COOKIE};

pub fn routes(r: Routes) -> Routes {
    r.post("/api/v1/session", Access::Login, login)
        .delete("/api/v1/session", Access::Read, logout)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    token: String,
}

fn cookie(s: &AppState, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if s.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

async fn login(State(s): State<AppState>, req: Request) -> ApiResult<Response> {
    let source = source_of(&req);
    let body = axum::body::to_bytes(req.into_body(), 4096)
        .await
        .map_err(|_| ApiError::bad_request("the login body is too large"))?;
    let body: LoginBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("login body: {e} (expected {{\"token\": …}})"))
    })?;
    let now = s.clock.now_ms();
    let hash = sha256(body.token.trim().as_bytes());
    let user = match s.users.by_token_hash(&hash, now, &s.revoked) {
        Ok(u) => u.clone(),
        Err(r) => {
            auth_failed(&s, source, r.as_str());
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "unknown, expired or revoked token".into(),
            ));
        }
    };
    s.login_limiter.success(source);
    let (id, expires) = s.sessions.create(user.clone(), hash, now);
    tracing::info!(user = %user.name, role = user.role.as_str(), %source, "dashboard login");
    let mut resp = Json(json!({
        "name": user.name,
        "role": user.role,
        "expires_at": format_rfc3339(expires),
    }))
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&s, &id, s.sessions.ttl_ms() / 1000),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn logout(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    req: Request,
) -> Response {
    if let Some(id) = session_cookie(&req) {
        s.sessions.remove(id);
    }
    tracing::info!(user = %user.name, "dashboard logout");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, "", 0));
    resp
}
