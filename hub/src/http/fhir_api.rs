//! A FHIR R4 read endpoint so an app can pull a patient's device data:
//! `GET /fhir/Observation?patient={id}&date=ge…&date=le…&_count=N` (authenticated like every
//! patient read, audited with the patient it named). The Observations are those the export
//! would send for each stored value (`adapters/src/emr/fhir.rs`), from the patient's beds
//! during their stays, oldest first, as a `searchset` Bundle. Errors are OperationOutcomes.
//!
//! Search parameters: `patient` (or `subject`; `Patient/{id}` or `{id}`), `date` (repeatable,
//! prefixes `ge gt le lt eq`, RFC 3339 or `YYYY-MM-DD`), `_count` (default 100, at most 1000).
//! Any other parameter is refused (400): a filter the hub would ignore would hide nothing but
//! look as if it did.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wardhub_adapters::emr::fhir::{self as fhirb, FhirOptions};
use wardhub_adapters::model::charting::ChartBatch;
use wardhub_adapters::model::{parse_rfc3339, Location, Millis, Patient};

use super::access::{Access, Routes};
use super::patients_api::{check_patient_id, observations_of};
use super::{blocking, ApiError, AppState};
use crate::store::TimeRange;

const DEFAULT_COUNT: usize = 100;
const MAX_COUNT: usize = 1000;

pub fn routes(r: Routes) -> Routes {
    r.get("/fhir/Observation", Access::Read, search)
}

fn outcome(status: StatusCode, code: &str, text: &str) -> Response {
    fhir_json(
        status,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": text }],
        }),
    )
}

fn fhir_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// A FHIR `date` search value: the instant range it stands for.
fn date_bounds(v: &str) -> Option<(Millis, Millis)> {
    if let Some(t) = parse_rfc3339(v) {
        return Some((t, t));
    }
    // YYYY-MM-DD: the whole day (UTC).
    let t = parse_rfc3339(&format!("{v}T00:00:00Z"))?;
    Some((t, t + 86_400_000 - 1))
}

/// The search's time range from its `date` parameters.
fn range_of(dates: &[String], now: Millis) -> Result<TimeRange, String> {
    let (mut from, mut to) = (Millis::MIN / 2, now);
    for d in dates {
        let (prefix, value) = match d.get(..2) {
            Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &d[2..]),
            _ => ("eq", d.as_str()),
        };
        let (lo, hi) = date_bounds(value).ok_or_else(|| {
            format!("date {d:?}: a prefix (ge, gt, le, lt, eq) and RFC 3339 or YYYY-MM-DD")
        })?;
        match prefix {
            "ge" => from = from.max(lo),
            "gt" => from = from.max(hi + 1),
            "le" => to = to.min(hi),
            "lt" => to = to.min(lo - 1),
            _ => {
                from = from.max(lo);
                to = to.min(hi);
            }
        }
    }
    if from > to {
        return Err("the date parameters leave no time".into());
    }
    Ok(TimeRange { from, to })
}

async fn search(
    State(s): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let mut patient = None;
    let mut dates = Vec::new();
    let mut count = DEFAULT_COUNT;
    for (k, v) in &params {
        match k.as_str() {
            "patient" | "subject" => patient = Some(v.trim_start_matches("Patient/").to_owned()),
            "date" => dates.push(v.clone()),
            "_count" => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_COUNT).contains(&n) => count = n,
                _ => {
                    return outcome(
                        StatusCode::BAD_REQUEST,
                        "invalid",
                        &format!("_count must be 1 to {MAX_COUNT}"),
                    )
                }
            },
            "_format" if v.contains("json") => {}
            other => {
                return outcome(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    &format!("search parameter {other:?} is not supported (patient, date, _count)"),
                )
            }
        }
    }
    let Some(patient) = patient else {
        return outcome(
            StatusCode::BAD_REQUEST,
            "required",
            "patient is required: a patient's data only",
        );
    };
    if check_patient_id(&patient).is_err() {
        return outcome(
            StatusCode::BAD_REQUEST,
            "invalid",
            "patient is not a valid identifier",
        );
    }
    let range = match range_of(&dates, s.clock.now_ms()) {
        Ok(r) => r,
        Err(e) => return outcome(StatusCode::BAD_REQUEST, "invalid", &e),
    };
    let opts = FhirOptions {
        patient_system: s
            .emr
            .as_ref()
            .and_then(|e| e.fhir_options().map(|o| o.patient_system.clone()))
            .unwrap_or_else(|| "urn:wardhub:patient".into()),
        device_system: "urn:wardhub:device".into(),
        observation_system: "urn:wardhub:observation".into(),
    };
    let self_link = format!(
        "/fhir/Observation?{}",
        params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let result = blocking(move || {
        let (stays, truncated) = observations_of(&s, &patient, range, count)?;
        let tl = s.patients.timeline();
        let person = tl.patient(&patient).cloned().unwrap_or(Patient {
            id: patient.clone(),
            ..Default::default()
        });
        let mut entries = Vec::new();
        for (stay, obs) in stays {
            let batch = ChartBatch {
                id: String::new(),
                patient: person.clone(),
                location: Location {
                    point_of_care: stay.bed.ward.clone(),
                    room: String::new(),
                    bed: stay.bed.bed.clone(),
                },
                values: obs
                    .iter()
                    .map(|o| crate::emr::every_value(o, read_id(o)))
                    .collect(),
                created_at: s.clock.now_ms(),
            };
            let subject = fhirb::Reference::patient(&opts, &person);
            entries.extend(fhirb::observations(&batch, &opts, subject, |d| {
                fhirb::Reference::device(&opts, d)
            }));
        }
        Ok::<_, ApiError>((entries, truncated))
    })
    .await;
    match result {
        Ok((entries, truncated)) => {
            let total = (!truncated).then_some(entries.len());
            fhir_json(
                StatusCode::OK,
                fhirb::searchset(entries, "/fhir", &self_link, total),
            )
        }
        Err(e) => outcome(e.0, "exception", &e.1),
    }
}

/// A stable id for a stored value: the same value always has the same id
/// (`[A-Za-z0-9.-]`, as FHIR ids must be).
fn read_id(o: &wardhub_adapters::model::Observation) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(o.device_id.as_str().as_bytes());
    h.update([0]);
    h.update(o.metric.code.to_be_bytes());
    h.update(o.observed_at.to_be_bytes());
    h.update(o.channel.as_deref().unwrap_or("").as_bytes());
    let d = h.finalize();
    format!(
        "wh-{}",
        d[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_prefixes_make_a_range() {
        let r = range_of(
            &["ge2026-12-02".into(), "lt2026-12-03".into()],
            i64::MAX / 4,
        )
        .unwrap();
        assert_eq!(r.from, parse_rfc3339("2026-12-02T00:00:00Z").unwrap());
        assert_eq!(r.to, parse_rfc3339("2026-12-03T00:00:00Z").unwrap() - 1);
        let day = range_of(&["2026-12-02".into()], i64::MAX / 4).unwrap();
        assert_eq!(day.to - day.from, 86_400_000 - 1);
        assert!(range_of(
            &["ge2026-12-03".into(), "le2026-12-02".into()],
            i64::MAX / 4
        )
        .is_err());
        assert!(range_of(&["gex".into()], 0).is_err());
    }
}
