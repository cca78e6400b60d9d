//! The patient context over HTTP: who is in a bed (as `[patients] display` allows), a
//! nurse's manual association for sites without an ADT feed (recorded with who and when),
//! and a patient's data across bed moves.
//!
//! A value belongs to the patient who was in its bed when the hub received it: a patient's
//! observations are their beds' observations received during their stays, nothing else.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wardhub_adapters::model::{format_rfc3339, Millis, Observation, Patient};

use super::access::{Access, Routes};
use super::{
    blocking, check_id, ApiError, ApiResult, AppState, Authenticated, ObservationJson, RangeQuery,
};
use crate::patients::{BedRef, Display, Kind, Source, Stay};
use crate::store::TimeRange;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/beds/{bed}/patient", Access::Read, bed_patient)
        .put("/api/v1/beds/{bed}/patient", Access::Acknowledge, admit)
        .delete("/api/v1/beds/{bed}/patient", Access::Acknowledge, discharge)
        .get("/api/v1/patients/{patient}", Access::Read, patient)
        .get(
            "/api/v1/patients/{patient}/observations",
            Access::Read,
            patient_observations,
        )
        .get(
            "/api/v1/patients/{patient}/alarms",
            Access::Read,
            patient_alarms,
        )
}

/// A patient identifier as the API takes it: what an ADT feed's PID-3.1 may hold, printable,
/// at most 64 characters (never echoed in an error).
pub(crate) fn check_patient_id(id: &str) -> ApiResult<()> {
    let ok = !id.trim().is_empty()
        && id.chars().count() <= 64
        && !id
            .chars()
            .any(|c| c.is_control() || matches!(c, '|' | '^' | '~' | '\\' | '&'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "a patient id is 1-64 printable characters, without HL7 delimiters (| ^ ~ \\ &)",
        ))
    }
}

/// `YYYY-MM-DD`, a real date.
fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d.get(r).and_then(|x| x.parse::<u8>().ok());
    match (
        d.get(0..4).and_then(|y| y.parse::<i32>().ok()),
        num(5..7),
        num(8..10),
    ) {
        (Some(y), Some(m), Some(day)) => time::Month::try_from(m)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(y, m, day).ok())
            .is_some(),
        _ => false,
    }
}

fn stay_json(s: &Stay) -> serde_json::Value {
    json!({
        "ward": s.bed.ward,
        "bed": s.bed.bed,
        "from": format_rfc3339(s.from),
        "to": s.to.map(format_rfc3339),
    })
}

async fn bed_patient(
    State(s): State<AppState>,
    Path(bed): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    let shown = s.patients.shown(&bed);
    Ok(Json(json!({
        "bed": bed,
        "admitted": shown.is_some(),
        "display": match s.patients.config().display {
            Display::None => "none",
            Display::Initials => "initials",
            Display::Full => "full",
        },
        "patient": shown.map(|p| json!({
            "label": p.label,
            "since": format_rfc3339(p.since),
            "patient": p.patient,
        })),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdmitBody {
    id: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    given: Option<String>,
    #[serde(default)]
    birth_date: Option<String>,
    #[serde(default)]
    sex: Option<String>,
}

fn bed_ref(s: &AppState, bed: &str) -> ApiResult<BedRef> {
    s.registry
        .beds_named(bed)
        .into_iter()
        .find(|(_, b)| b == bed)
        .map(|(ward, bed)| BedRef { ward, bed })
        .ok_or_else(|| ApiError::not_found(format!("no bed {bed:?} in the registry")))
}

/// Records a nurse's event (who and when), durable before the answer.
async fn manual(
    s: &AppState,
    user: &str,
    kind: Kind,
    patient: Patient,
    bed: BedRef,
) -> ApiResult<()> {
    let source = Source::Manual { user: user.into() };
    s.patients
        .record(kind, patient, Some(bed), true, None, source)
        .await
        .map(|_| ())
        .map_err(|e| ApiError(axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

/// A nurse puts a patient in a bed (recorded as a manual admit, by this user, now).
async fn admit(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(bed): Path<String>,
    Json(body): Json<AdmitBody>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    check_patient_id(&body.id)?;
    if let Some(d) = &body.birth_date {
        if !is_date(d) {
            return Err(ApiError::bad_request("birth_date must be YYYY-MM-DD"));
        }
    }
    if let Some(x) = &body.sex {
        if !matches!(x.as_str(), "F" | "M" | "O" | "U" | "A" | "N") {
            return Err(ApiError::bad_request(
                "sex must be an HL7 table 0001 code: F, M, O, U, A or N",
            ));
        }
    }
    let place = bed_ref(&s, &bed)?;
    let patient = Patient {
        id: body.id.trim().to_owned(),
        authority: body.authority,
        family: body.family,
        given: body.given,
        birth_date: body.birth_date,
        sex: body.sex,
    };
    manual(&s, &user.name, Kind::Admit, patient, place).await?;
    bed_patient(State(s), Path(bed)).await
}

/// A nurse ends the association of a bed (the patient left; recorded as a manual discharge).
async fn discharge(
    State(s): State<AppState>,
    Authenticated(user): Authenticated,
    Path(bed): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    let now = s.clock.now_ms();
    let Some((stay, patient)) = s.patients.at(&bed, now) else {
        return Err(ApiError::not_found(format!("bed {bed:?} has no patient")));
    };
    manual(&s, &user.name, Kind::Discharge, patient, stay.bed).await?;
    bed_patient(State(s), Path(bed)).await
}

/// A patient's stays here (and demographics when the display policy is `full`).
async fn patient(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    check_patient_id(&id)?;
    let tl = s.patients.timeline();
    if !tl.knows(&id) {
        return Err(ApiError::not_found("no stay of this patient on this hub"));
    }
    let demographics =
        (s.patients.config().display == Display::Full).then(|| tl.patient(&id).cloned());
    Ok(Json(json!({
        "stays": tl.stays(&id).iter().map(stay_json).collect::<Vec<_>>(),
        "patient": demographics.flatten(),
    })))
}

/// Each stay with the observations attributed to it, and whether the limit cut them.
pub(crate) type StayObservations = (Vec<(Stay, Vec<Observation>)>, bool);

/// A patient's observations in `range`, across their stays: each bed's values received while
/// they lay in it, oldest stay first; at most `limit`.
pub(crate) fn observations_of(
    s: &AppState,
    id: &str,
    range: TimeRange,
    limit: usize,
) -> ApiResult<StayObservations> {
    let tl = s.patients.timeline();
    let mut out = Vec::new();
    let mut left = limit;
    let mut truncated = false;
    for stay in tl.stays(id) {
        let to = stay.to.unwrap_or(Millis::MAX);
        if stay.from > range.to || to <= range.from || left == 0 {
            truncated |= left == 0 && stay.from <= range.to && to > range.from;
            continue;
        }
        // Stored by device time; attributed by receipt time (a value received during the
        // stay, whatever its device clock said, within the asked range).
        let page = s.store.bed_observations(&stay.bed.bed, range, left)?;
        truncated |= page.truncated;
        let mine: Vec<Observation> = page
            .items
            .into_iter()
            .filter(|o| stay.covers(o.received_at))
            .collect();
        left = left.saturating_sub(mine.len());
        out.push((stay.clone(), mine));
    }
    Ok((out, truncated))
}

async fn patient_observations(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    check_patient_id(&id)?;
    let range = q.range(s.clock.now_ms())?;
    let limit = q.limit()?;
    if !s.patients.timeline().knows(&id) {
        return Err(ApiError::not_found("no stay of this patient on this hub"));
    }
    blocking(move || {
        let (stays, truncated) = observations_of(&s, &id, range, limit)?;
        let stays: Vec<_> = stays
            .iter()
            .map(|(stay, obs)| {
                let mut j = stay_json(stay);
                j["observations"] =
                    json!(obs.iter().map(ObservationJson::from).collect::<Vec<_>>());
                j
            })
            .collect();
        Ok(Json(json!({ "stays": stays, "truncated": truncated })))
    })
    .await
}

/// The alarms raised for a patient: each bed's alarm transitions during their stays.
async fn patient_alarms(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    check_patient_id(&id)?;
    let range = q.range(s.clock.now_ms())?;
    let limit = q.limit()?;
    let tl = s.patients.timeline();
    if !tl.knows(&id) {
        return Err(ApiError::not_found("no stay of this patient on this hub"));
    }
    let stays: Vec<Stay> = tl.stays(&id).to_vec();
    blocking(move || {
        let mut out = Vec::new();
        for stay in &stays {
            let from = range.from.max(stay.from);
            let to = range
                .to
                .min(stay.to.unwrap_or(Millis::MAX).saturating_sub(1));
            if from > to {
                continue;
            }
            let t = s
                .alarms
                .history(from, to.saturating_add(1), Some(&stay.bed.bed), limit)
                .map_err(|e| {
                    tracing::error!(error = %e, "alarm history failed");
                    ApiError(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "storage error".into(),
                    )
                })?;
            let mut j = stay_json(stay);
            j["transitions"] = serde_json::to_value(&t).unwrap_or_default();
            out.push(j);
        }
        Ok(Json(json!({ "stays": out })))
    })
    .await
}
