//! Alarm rules: the ward's (admin) and each bed's overrides (a bedside decision, within
//! limits), with who changed them, why and until when.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::known_bed;
use crate::alarms::{Rule, RuleSet};
use crate::auth::Permission;
use crate::http::{ApiError, ApiResult, AppState, Authenticated};

pub(super) async fn get_rules(State(s): State<AppState>) -> Json<RuleSet> {
    Json(s.alarms.rules())
}

/// Ward rules: admin only.
pub(super) async fn put_rules(
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

pub(super) async fn get_bed_rules(
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
pub(super) enum BedRulesBody {
    Plain(Vec<Rule>),
    Full(BedRulesChange),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BedRulesChange {
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
pub(super) async fn put_bed_rules(
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

pub(super) async fn delete_bed_rules(
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
