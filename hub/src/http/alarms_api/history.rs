//! What happened: the alarm history (paged), the alarm-burden KPIs of a period, and the
//! what-if replay of a period with proposed rules.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wardhub_adapters::model::{is_valid_id, parse_time};

use crate::alarms::store::HistoryCursor;
use crate::alarms::RuleSet;
use crate::auth::Permission;
use crate::http::{blocking, ApiError, ApiResult, AppState, Authenticated};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
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

pub(super) async fn history(
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
pub(super) struct KpiQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The longest period of one KPI request.
const KPI_MAX_MS: i64 = 31 * 86_400_000;

/// Alarm-burden KPIs of the alarms raised in a period (default the last 24 h).
pub(super) async fn kpis(
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
    // Closing the loop (with dissemination on): time to the first person told, to accepted,
    // and alarms that reached nobody.
    let dissemination = match s.dissemination.clone() {
        Some(d) => Some(blocking(move || Ok(d.kpis(from, to))).await?),
        None => None,
    };
    Ok(Json(json!({ "kpis": k, "dissemination": dissemination })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayBody {
    /// The proposed rules (the shape of `GET /api/v1/rules`).
    rules: RuleSet,
    from: String,
    to: Option<String>,
}

/// What-if replay: the stored data of a period through the engine with the rules in force and
/// with proposed ones (`alarms/replay.rs`). Admin: it is the evidence for a rule change.
pub(super) async fn replay(
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
