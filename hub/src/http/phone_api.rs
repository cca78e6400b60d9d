//! The phone page (`/m`, `dashboards/web/m.*`): a nurse's own alarms — what the escalation
//! chains sent them and is still theirs — listed and live, to accept or pass on
//! (`POST /api/v1/alarms/{id}/accept|reject`, in `roster_api`).
//!
//! `GET /api/v1/me/alarms` lists them; `GET /api/v1/me/alarms/stream` is server-sent events:
//! a `snapshot` (the list), then `notified` (a notification or reminder, with the alarm) and
//! `gone` (`{alarm, why}`: accepted, acknowledged, cleared, passed_on) for this user only.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::access::{Access, Routes};
use super::dashboard::asset;
use super::{ApiError, ApiResult, AppState, Authenticated};
use crate::dissemination::Live;

const M_HTML: &str = include_str!("../../../dashboards/web/m.html");
const M_JS: &str = include_str!("../../../dashboards/web/m.js");
const M_CSS: &str = include_str!("../../../dashboards/web/m.css");

pub fn routes(r: Routes) -> Routes {
    r.get("/m", Access::Open, || {
        asset("text/html; charset=utf-8", M_HTML)
    })
    .get("/m.js", Access::Open, || {
        asset("text/javascript; charset=utf-8", M_JS)
    })
    .get("/m.css", Access::Open, || {
        asset("text/css; charset=utf-8", M_CSS)
    })
    .get("/api/v1/me/alarms", Access::Read, my_alarms)
    .get("/api/v1/me/alarms/stream", Access::Read, my_stream)
}

async fn my_alarms(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
) -> ApiResult<Json<serde_json::Value>> {
    let d = s
        .dissemination
        .as_ref()
        .ok_or_else(|| ApiError::not_found("alarm dissemination is off"))?;
    Ok(Json(
        json!({ "user": user.name, "alarms": d.mine(&user.name) }),
    ))
}

/// How often an open stream checks that its login is still good (a logout, an expiry or a
/// revocation ends it, as the ward dashboard's stream does).
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(5);

async fn my_stream(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    credential: Option<axum::Extension<crate::http::access::Credential>>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let d = s
        .dissemination
        .clone()
        .ok_or_else(|| ApiError::not_found("alarm dissemination is off"))?;
    // Subscribed before the snapshot is taken: nothing falls between the two.
    let rx = d.subscribe();
    let first = SseEvent::default()
        .event("snapshot")
        .data(json!({ "user": user.name, "alarms": d.mine(&user.name) }).to_string());
    struct St {
        rx: tokio::sync::broadcast::Receiver<std::sync::Arc<Live>>,
        first: Option<SseEvent>,
        user: String,
        done: bool,
        cancel: tokio_util::sync::CancellationToken,
        credential: Option<crate::http::access::Credential>,
        state: AppState,
        checked: tokio::time::Instant,
    }
    let st = St {
        rx,
        first: Some(first),
        user: user.name.clone(),
        done: false,
        cancel: s.shutdown.clone(),
        credential: credential.map(|c| c.0),
        state: s.clone(),
        checked: tokio::time::Instant::now(),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if let Some(f) = st.first.take() {
            return Some((Ok(f), st));
        }
        if st.done {
            return None;
        }
        loop {
            let recheck = st.checked + CREDENTIAL_RECHECK;
            let r = tokio::select! {
                r = st.rx.recv() => r,
                _ = st.cancel.cancelled() => return None,
                _ = tokio::time::sleep_until(recheck) => {
                    st.checked = tokio::time::Instant::now();
                    if st.credential.as_ref().is_some_and(|c| !c.still_valid(&st.state)) {
                        return None;
                    }
                    continue;
                }
            };
            let ev = match r {
                Ok(live) if live.user() == st.user => match &*live {
                    Live::Notified { body, .. } => {
                        SseEvent::default().event("notified").data(body.to_string())
                    }
                    Live::Gone { alarm, why, .. } => SseEvent::default()
                        .event("gone")
                        .data(json!({ "alarm": alarm, "why": why }).to_string()),
                },
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    // Too slow: the page reconnects and starts from a snapshot.
                    st.done = true;
                    SseEvent::default()
                        .event("resync")
                        .data(json!({ "missed": n }).to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(ev), st));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}
