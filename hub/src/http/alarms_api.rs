//! Alarm endpoints: lists, history, acknowledge, audio pause, rules, and the live SSE stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use wardhub_adapters::model::{is_valid_id, parse_time};

use super::access::{Access, Routes};
use super::Authenticated;
use super::{blocking, ApiError, ApiResult, AppState};
use crate::alarms::store::HistoryCursor;
use crate::alarms::{AckReason, AlarmError, AlarmId, PauseTarget, Priority, Rule, RuleSet};
use crate::auth::Permission;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/alarms", Access::Read, list)
        .get("/api/v1/alarms/history", Access::Read, history)
        .get("/api/v1/alarms/kpis", Access::Read, kpis)
        .post("/api/v1/alarms/replay", Access::Admin, replay)
        .get("/api/v1/alarms/stream", Access::Read, stream)
        .get("/api/v1/alarms/{id}", Access::Read, one)
        .post("/api/v1/alarms/{id}/ack", Access::Acknowledge, ack)
        .post("/api/v1/alarms/{id}/pause", Access::Acknowledge, pause)
        .post("/api/v1/beds/{bed}/pause", Access::Acknowledge, pause_bed)
        .get("/api/v1/rules", Access::Read, get_rules)
        .put("/api/v1/rules", Access::Admin, put_rules)
        .get("/api/v1/beds/{bed}/rules", Access::Read, get_bed_rules)
        .put(
            "/api/v1/beds/{bed}/rules",
            Access::Acknowledge,
            put_bed_rules,
        )
        .delete(
            "/api/v1/beds/{bed}/rules",
            Access::Acknowledge,
            delete_bed_rules,
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

fn alarm_id(s: &str) -> ApiResult<AlarmId> {
    s.parse()
        .map_err(|e: crate::alarms::record::InvalidAlarmId| {
            ApiError(StatusCode::BAD_REQUEST, e.to_string())
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    ward: Option<String>,
    bed: Option<String>,
    priority: Option<Priority>,
}

async fn list(
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

async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = alarm_id(&id)?;
    match s.alarms.alarm(id) {
        Some(a) => Ok(Json(json!({ "alarm": a }))),
        None => Err(ApiError::not_found(format!("no open alarm {id}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    bed: Option<String>,
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// A time parameter (RFC 3339 or epoch ms), `default` when absent.
fn time_param(name: &str, v: &Option<String>, default: i64) -> ApiResult<i64> {
    match v {
        None => Ok(default),
        Some(v) => parse_time(v).ok_or_else(|| {
            ApiError::bad_request(format!("{name} must be RFC 3339 or epoch milliseconds"))
        }),
    }
}

/// Default and largest page of `GET /api/v1/alarms/history`.
const HISTORY_LIMIT: usize = 1000;
const HISTORY_MAX_LIMIT: usize = 10_000;

async fn history(
    State(s): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let now = s.clock.now_ms();
    let t = time_param;
    let to = t("to", &q.to, now + 1)?;
    let from = t("from", &q.from, to - 24 * 3_600_000)?;
    if from > to {
        return Err(ApiError::bad_request("from is after to"));
    }
    if let Some(b) = &q.bed {
        if !is_valid_id(b) {
            return Err(ApiError::bad_request(
                "bed id must be 1-64 characters of [A-Za-z0-9._-]",
            ));
        }
    }
    let limit = q.limit.unwrap_or(HISTORY_LIMIT);
    if !(1..=HISTORY_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={HISTORY_MAX_LIMIT}"
        )));
    }
    let cursor = match &q.cursor {
        None => None,
        Some(c) => Some(HistoryCursor::parse(c).ok_or_else(|| {
            ApiError::bad_request("cursor must be the `next` of a previous page")
        })?),
    };
    let alarms = s.alarms.clone();
    let bed = q.bed.clone();
    let page =
        blocking(move || Ok(alarms.history_page(from, to, bed.as_deref(), limit, cursor)?)).await?;
    Ok(Json(json!({
        "transitions": page.transitions,
        "limit": limit,
        "truncated": page.next.is_some(),
        "next": page.next.map(|c| c.to_string()),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The longest period of one KPI request.
const KPI_MAX_MS: i64 = 31 * 86_400_000;

/// Alarm-burden KPIs of the alarms raised in a period (default the last 24 h).
async fn kpis(
    State(s): State<AppState>,
    Query(q): Query<KpiQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let now = s.clock.now_ms();
    let t = time_param;
    let to = t("to", &q.to, now + 1)?;
    let from = t("from", &q.from, to - 86_400_000)?;
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to - from > KPI_MAX_MS {
        return Err(ApiError::bad_request("a period of at most 31 days"));
    }
    let beds = s.registry.beds(None).len().max(1);
    let alarms = s.alarms.clone();
    let k = blocking(move || Ok(alarms.kpis(from, to, now, beds)?)).await?;
    Ok(Json(json!({ "kpis": k })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// The proposed rules (the shape of `GET /api/v1/rules`).
    rules: RuleSet,
    from: String,
    to: Option<String>,
}

/// What-if replay: the stored data of a period through the engine with the rules in force and
/// with proposed ones (`alarms/replay.rs`). Admin: it is the evidence for a rule change.
async fn replay(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Json(body): Json<ReplayBody>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Admin)?;
    let now = s.clock.now_ms();
    let time = |name: &str, v: &str| {
        parse_time(v).ok_or_else(|| {
            ApiError::bad_request(format!("{name} must be RFC 3339 or epoch milliseconds"))
        })
    };
    let from = time("from", &body.from)?;
    let to = match &body.to {
        Some(t) => time("to", t)?,
        None => now,
    }
    .min(now);
    if from >= to {
        return Err(ApiError::bad_request(
            "from must be before to (and before now)",
        ));
    }
    if to - from > crate::alarms::replay::MAX_PERIOD_MS {
        return Err(ApiError::bad_request("a replay covers at most 72 hours"));
    }
    body.rules
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let report = blocking(move || {
        let actual = s.alarms.history_all(from, now.saturating_add(1))?;
        // The registry's beds and any bed the period's alarms name, once each, in order.
        let beds: Vec<String> = s
            .registry
            .beds(None)
            .into_iter()
            .map(|b| b.bed)
            .chain(actual.iter().filter_map(|t| t.alarm.bed.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let cfg = s.alarms.config();
        let store = s.store.clone();
        let windows = |bed: &str, a: i64, b: i64| -> ApiResult<Vec<_>> {
            let range = crate::store::TimeRange { from: a, to: b - 1 };
            let page = store.bed_observations(bed, range, 2_000_000)?;
            if page.truncated {
                return Err(ApiError::bad_request(format!(
                    "bed {bed} has more than 2,000,000 observations in 10 minutes: too many to replay"
                )));
            }
            Ok(page.items)
        };
        use crate::alarms::replay::{replay, Replay, ReplayError};
        let what = Replay {
            ward: &s.ward,
            current: &cfg,
            proposed: &body.rules,
            beds: &beds,
            from,
            to,
            actual: &actual,
        };
        replay(what, windows).map_err(|e| match e {
            ReplayError::Rules(e) => ApiError::bad_request(e.to_string()),
            ReplayError::Store(e) => e,
        })
    })
    .await?;
    Ok(Json(json!({ "replay": report })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    reason: Option<AckReason>,
    note: Option<String>,
}

async fn ack(
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
struct PauseBody {
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

async fn pause(
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

async fn pause_bed(
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

async fn get_rules(State(s): State<AppState>) -> Json<RuleSet> {
    Json(s.alarms.rules())
}

/// Ward rules: admin only.
async fn put_rules(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Json(rules): Json<RuleSet>,
) -> ApiResult<Json<RuleSet>> {
    user.require(Permission::Admin)?;
    if let Some(bed) = rules.beds.keys().find(|b| known_bed(&s, b).is_err()) {
        return Err(ApiError::bad_request(format!(
            "rules for bed {bed}, which the registry does not know"
        )));
    }
    s.alarms.set_rules(rules, &user.name)?;
    Ok(Json(s.alarms.rules()))
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

async fn get_bed_rules(
    State(s): State<AppState>,
    Path(bed): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    known_bed(&s, &bed)?;
    let rules = s.alarms.rules();
    let own = rules.beds.get(&bed).cloned().unwrap_or_default();
    Ok(Json(json!({
        "bed": bed,
        "overrides": own,
        "change": rules.changes.get(&bed),
        "ward": rules.rules,
        "preset": rules.preset,
    })))
}

/// A bed's overrides: the rules alone (`[…]`), or with why and for how long.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BedRulesBody {
    Plain(Vec<Rule>),
    Full(BedRulesChange),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BedRulesChange {
    rules: Vec<Rule>,
    /// Why (needed when an alarm is switched off or widened).
    reason: Option<String>,
    /// How long the overrides last ("2h"); after that the ward's rules apply again.
    #[serde(rename = "for")]
    duration: Option<String>,
}

/// Per-bed limits are a bedside decision: every role that may acknowledge may set them,
/// within limits. Switching an alarm off or widening it needs a reason; switching one off
/// needs a time limit (at most `alarms.max_alarm_off`) unless the user is an admin; limits
/// outside `alarms.safe_ranges` need the admin role. Who, why and until when are kept with
/// the rules and shown on the dashboard.
async fn put_bed_rules(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(bed): Path<String>,
    Json(body): Json<BedRulesBody>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(Permission::Acknowledge)?;
    known_bed(&s, &bed)?;
    let (overrides, reason, duration) = match body {
        BedRulesBody::Plain(r) => (r, None, None),
        BedRulesBody::Full(c) => (c.rules, c.reason, c.duration),
    };
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::bad_request(
            "the reason is longer than 500 characters",
        ));
    }
    let now = s.clock.now_ms();
    let until_ms = duration
        .as_deref()
        .map(|d| {
            humantime::parse_duration(d)
                .map_err(|e| ApiError::bad_request(format!("for {d:?}: {e}")))
                .map(|d| now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
        })
        .transpose()?;
    let (safe, max_off) = s.alarms.limits_policy();
    let mut rules = s.alarms.rules();
    let ward = {
        let mut w = rules.clone();
        w.beds.clear();
        w.effective(None)
    };
    let a = crate::alarms::changes::assess(&ward, &overrides, &safe);
    let admin = user.role.allows(Permission::Admin);
    if !a.outside_safe.is_empty() && !admin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "limits outside the safe range need the admin role: {}",
                a.outside_safe.join("; ")
            ),
        ));
    }
    if a.loosens() && reason.is_none() {
        return Err(ApiError::bad_request(format!(
            "switching off or widening an alarm needs a reason (off: {:?}, widened: {:?})",
            a.off, a.widened
        )));
    }
    if !a.off.is_empty() && !admin {
        let max_ms = i64::try_from(max_off.as_millis()).unwrap_or(i64::MAX);
        match until_ms {
            None => {
                return Err(ApiError::bad_request(format!(
                    "switching an alarm off needs a time limit (\"for\": at most {})",
                    humantime::format_duration(max_off)
                )))
            }
            Some(u) if u - now > max_ms => {
                return Err(ApiError::bad_request(format!(
                    "an alarm may be off for at most {} without the admin role",
                    humantime::format_duration(max_off)
                )))
            }
            _ => {}
        }
    }
    rules.beds.insert(bed.clone(), overrides);
    if a.loosens() || until_ms.is_some() {
        rules.changes.insert(
            bed.clone(),
            crate::alarms::rules::BedChange {
                by: user.name.clone(),
                role: user.role.as_str().into(),
                reason: reason.unwrap_or_default(),
                at: wardhub_adapters::model::format_rfc3339(now),
                until_ms,
                off: a.off.clone(),
                widened: a.widened.clone(),
            },
        );
    } else {
        rules.changes.remove(&bed);
    }
    s.alarms.set_rules(rules, &user.name)?;
    if a.loosens() {
        tracing::warn!(
            user = %user.name,
            bed = %bed,
            off = ?a.off,
            widened = ?a.widened,
            "a bed's alarms were switched off or widened"
        );
    }
    get_bed_rules(State(s), Path(bed)).await
}

async fn delete_bed_rules(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(bed): Path<String>,
) -> ApiResult<StatusCode> {
    user.require(Permission::Acknowledge)?;
    known_bed(&s, &bed)?;
    let mut rules = s.alarms.rules();
    if rules.beds.remove(&bed).is_none() {
        return Err(ApiError::not_found(format!(
            "bed {bed} has no rule overrides"
        )));
    }
    rules.changes.remove(&bed);
    s.alarms.set_rules(rules, &user.name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Server-sent events: first a `snapshot` of the open alarms, then every `transition`. A
/// client too slow to keep up gets a `resync` event and the stream ends: it reconnects and
/// starts again from a snapshot, rather than slowing the hub down.
async fn stream(
    State(s): State<AppState>,
    credential: Option<axum::Extension<super::access::Credential>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.alarms.subscribe();
    let snapshot = json!({ "alarms": s.alarms.open_alarms() });
    let first = SseEvent::default()
        .event("snapshot")
        .data(snapshot.to_string());
    let telemetry = s.telemetry.clone();
    telemetry.live_clients.inc();
    let guard = Arc::new(LiveGuard(telemetry));
    let cancel = s.shutdown.clone();
    struct St {
        rx: tokio::sync::broadcast::Receiver<Arc<crate::alarms::Transition>>,
        first: Option<SseEvent>,
        done: bool,
        cancel: tokio_util::sync::CancellationToken,
        _guard: Arc<LiveGuard>,
        /// Checked every few seconds: a revoked token or an ended session ends the stream.
        credential: Option<super::access::Credential>,
        state: AppState,
        checked: tokio::time::Instant,
    }
    let st = St {
        rx,
        first: Some(first),
        done: false,
        cancel,
        _guard: guard,
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
        let next = loop {
            let recheck = st.checked + CREDENTIAL_RECHECK;
            tokio::select! {
                r = st.rx.recv() => break r,
                _ = st.cancel.cancelled() => return None,
                _ = tokio::time::sleep_until(recheck) => {
                    st.checked = tokio::time::Instant::now();
                    if st.credential.as_ref().is_some_and(|c| !c.still_valid(&st.state)) {
                        return None;
                    }
                }
            }
        };
        let ev = match next {
            Ok(t) => SseEvent::default()
                .event("transition")
                .data(serde_json::to_string(&*t).unwrap_or_default()),
            Err(RecvError::Lagged(n)) => {
                st.done = true;
                SseEvent::default()
                    .event("resync")
                    .data(json!({ "missed": n }).to_string())
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), st))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// How often an open live stream checks that its login is still good.
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(5);

struct LiveGuard(Arc<crate::telemetry::Telemetry>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live_clients.dec();
    }
}
