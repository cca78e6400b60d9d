//! Read-only views for the nurse dashboard: who is logged in, the ward at a glance (every
//! bed's latest numerics and the connection state of its devices), and a bed's trends in a
//! compact form with the limits that apply to it.
//!
//! The dashboard polls `/api/v1/ward` every two seconds for numerics; alarms come live over
//! the SSE stream of [`super::alarms_api`].

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wardhub_adapters::model::{Millis, Observation, Status};

use super::access::{Access, Routes};
use super::Authenticated;
use super::{blocking, check_id, ApiError, ApiResult, AppState};
use crate::registry::DeviceState;
use crate::registry::ListFilter;
use crate::store::TimeRange;

/// A device whose data arrived this recently counts as connected even when the registry
/// knows nothing better (e.g. data relayed by an HL7 gateway without a connection of its own).
const DATA_ONLINE_MS: Millis = 60_000;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/me", Access::Read, me)
        .get("/api/v1/ward", Access::Read, ward)
        .get("/api/v1/beds/{bed}/trends", Access::Read, trends)
}

/// The user behind the bearer token: the dashboard's login check.
async fn me(Authenticated(user): Authenticated) -> Json<serde_json::Value> {
    Json(json!({ "name": user.name, "role": user.role }))
}

/// The latest value of one metric of a bed.
#[derive(Debug, Serialize)]
struct Numeric {
    value: f64,
    unit: &'static str,
    status: &'static str,
    device_id: String,
    observed_at: Millis,
    received_at: Millis,
    /// Hub time minus `received_at`: the dashboard greys values out by age.
    age_ms: Millis,
}

/// One device of a bed and whether it is connected.
#[derive(Debug, Serialize)]
struct DeviceConn {
    id: String,
    kind: String,
    /// `online`, `offline`, or `unknown` (never seen since the hub started, no data).
    connection: &'static str,
    /// Epoch ms of the last message or datum, when known.
    last_seen: Option<Millis>,
    battery_pct: Option<f64>,
}

/// A bed of the ward view.
#[derive(Debug, Serialize)]
struct BedJson {
    bed: String,
    ward: Option<String>,
    /// The standard kinds of bedside device, each with the device in that slot (or none).
    slots: Vec<Slot>,
    /// Every device bound to the bed.
    devices: Vec<DeviceConn>,
    /// By metric short name (`hr`, `spo2`, `nibp_sys`, …): the freshest value of any device.
    latest: BTreeMap<&'static str, Numeric>,
    /// Alarms of this bed switched off or widened: who, why, until when (the ALARM OFF
    /// indicator of the tile).
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm_change: Option<crate::alarms::rules::BedChange>,
    /// Whether a patient is in the bed (ADT feed or a nurse's association): a bed without
    /// one is shown as such, and nothing of it is charted.
    admitted: bool,
    /// What `[patients] display` lets the dashboard show of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<crate::patients::Shown>,
}

#[derive(Debug, Serialize)]
struct Slot {
    kind: String,
    device: Option<String>,
    connection: &'static str,
}

/// Every bed of the hub with its latest numerics and device connections.
async fn ward(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
        let now = s.clock.now_ms();
        let registry_beds = s.registry.beds(None);
        let mut names: BTreeSet<(Option<String>, String)> = registry_beds
            .iter()
            .map(|b| (Some(b.ward.clone()), b.bed.clone()))
            .collect();
        // Beds with an open alarm are shown even when the registry lost them.
        for a in s.alarms.open_alarms() {
            if let Some(b) = a.bed {
                if !names.iter().any(|(_, n)| *n == b) {
                    names.insert((Some(a.ward.clone()), b));
                }
            }
        }
        let changes = s.alarms.rules().changes;
        let mut beds = Vec::with_capacity(names.len());
        for (ward, bed) in names {
            let obs = s.store.bed_latest(&bed)?;
            let registered = s.registry.list(&ListFilter {
                ward: ward.clone(),
                bed: Some(bed.clone()),
                state: Some(DeviceState::Active),
                ..ListFilter::default()
            });
            let mut devices: Vec<DeviceConn> = registered
                .iter()
                .map(|d| {
                    let data_at = obs
                        .iter()
                        .filter(|o| o.device_id.as_str() == d.id)
                        .map(|o| o.received_at)
                        .max();
                    let last_seen = d.live.last_seen.max(data_at);
                    let connection =
                        if d.live.online || data_at.is_some_and(|t| now - t < DATA_ONLINE_MS) {
                            "online"
                        } else if last_seen.is_some() {
                            "offline"
                        } else {
                            "unknown"
                        };
                    DeviceConn {
                        id: d.id.clone(),
                        kind: d.kind.clone(),
                        connection,
                        last_seen,
                        battery_pct: d.live.battery_pct,
                    }
                })
                .collect();
            // Data from a device the registry no longer binds here still tells its state.
            for o in &obs {
                if !devices.iter().any(|d| d.id == o.device_id.as_str()) {
                    let at = obs
                        .iter()
                        .filter(|x| x.device_id == o.device_id)
                        .map(|x| x.received_at)
                        .max()
                        .unwrap_or(o.received_at);
                    devices.push(DeviceConn {
                        id: o.device_id.to_string(),
                        kind: "unspecified".into(),
                        connection: if now - at < DATA_ONLINE_MS {
                            "online"
                        } else {
                            "offline"
                        },
                        last_seen: Some(at),
                        battery_pct: None,
                    });
                }
            }
            let slots = registry_beds
                .iter()
                .find(|b| b.bed == bed && Some(&b.ward) == ward.as_ref())
                .map(|b| {
                    b.slots
                        .iter()
                        .map(|(kind, device)| Slot {
                            kind: kind.clone(),
                            connection: device
                                .as_ref()
                                .and_then(|id| devices.iter().find(|d| &d.id == id))
                                .map_or("empty", |d| d.connection),
                            device: device.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let patient = s.patients.shown(&bed);
            beds.push(BedJson {
                admitted: patient.is_some(),
                patient,
                latest: latest_by_metric(&obs, now),
                alarm_change: changes.get(&bed).cloned(),
                bed,
                ward,
                slots,
                devices,
            });
        }
        beds.sort_by_key(|b| natural_key(&b.bed));
        Ok(Json(json!({ "ward": s.ward, "now": now, "beds": beds })))
    })
    .await
}

/// The freshest usable value of each metric.
fn latest_by_metric(obs: &[Observation], now: Millis) -> BTreeMap<&'static str, Numeric> {
    let mut out: BTreeMap<&'static str, Numeric> = BTreeMap::new();
    for o in obs {
        let fresher = out
            .get(o.metric.name)
            .is_none_or(|n| o.received_at > n.received_at);
        if fresher {
            out.insert(
                o.metric.name,
                Numeric {
                    value: o.value,
                    unit: o.metric.unit,
                    status: o.status.as_str(),
                    device_id: o.device_id.to_string(),
                    observed_at: o.observed_at,
                    received_at: o.received_at,
                    age_ms: (now - o.received_at).max(0),
                },
            );
        }
    }
    out
}

/// `bed-2` before `bed-10`.
/// Sorts bed names as a nurse reads them: `bed-2` before `bed-10`.
pub(crate) fn natural_key(s: &str) -> (String, u64, String) {
    let digits_at = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let (head, rest) = s.split_at(digits_at);
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let n = rest[..end].parse().unwrap_or(0);
    (head.to_owned(), n, rest[end..].to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrendQuery {
    /// `1h` (raw points), `8h` or `24h` (one-minute rollups).
    range: Option<String>,
}

/// Effective alarm limits of one metric of a bed.
#[derive(Debug, Serialize)]
struct Limits {
    low: Option<f64>,
    high: Option<f64>,
    extra_low: Option<f64>,
    extra_high: Option<f64>,
}

/// A bed's trends: per metric, `[t, value]` points (raw) or `[t, mean, min, max]` (rollups),
/// and the limits of the rules that apply to the bed.
async fn trends(
    State(s): State<AppState>,
    Path(bed): Path<String>,
    Query(q): Query<TrendQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    check_id("bed", &bed)?;
    let hours: i64 = match q.range.as_deref().unwrap_or("1h") {
        "1h" => 1,
        "8h" => 8,
        "24h" => 24,
        other => {
            return Err(ApiError::bad_request(format!(
                "range must be 1h, 8h or 24h, not {other:?}"
            )))
        }
    };
    let to = s.clock.now_ms();
    let range = TimeRange {
        from: to - hours * 3_600_000,
        to,
    };
    let limits: BTreeMap<&'static str, Limits> = s
        .alarms
        .rules()
        .effective(Some(&bed))
        .into_iter()
        .map(|r| {
            (
                r.metric.name,
                Limits {
                    low: r.low,
                    high: r.high,
                    extra_low: r.extra_low,
                    extra_high: r.extra_high,
                },
            )
        })
        .collect();
    blocking(move || {
        // One source per metric: the device and channel of the bed's latest clinically usable
        // value (the one the tile shows); other sources of the metric are counted, not mixed
        // in (two sources' points in one line, or their mean, would be values nobody measured).
        let latest = s.store.bed_latest(&bed)?;
        let mut chosen: BTreeMap<&'static str, (String, Option<String>, Millis)> = BTreeMap::new();
        for o in latest.iter().filter(|o| o.status.is_clinically_usable()) {
            let better = chosen
                .get(o.metric.name)
                .is_none_or(|(_, _, t)| o.observed_at > *t);
            if better {
                chosen.insert(
                    o.metric.name,
                    (o.device_id.to_string(), o.channel.clone(), o.observed_at),
                );
            }
        }
        type Source = (String, Option<String>);
        type Series = (&'static str, Vec<Vec<f64>>, BTreeSet<Source>, Source);
        let mut series: BTreeMap<&'static str, Series> = BTreeMap::new();
        let mut take = |name: &'static str,
                        unit: &'static str,
                        device: &str,
                        channel: &Option<String>,
                        point: Vec<f64>| {
            let this: Source = (device.to_owned(), channel.clone());
            let e = series.entry(name).or_insert_with(|| {
                // Without a usable latest value, the first source seen stands for the metric.
                let source = chosen
                    .get(name)
                    .map(|(d, c, _)| (d.clone(), c.clone()))
                    .unwrap_or_else(|| this.clone());
                (unit, Vec::new(), BTreeSet::new(), source)
            });
            e.2.insert(this.clone());
            if e.3 == this {
                e.1.push(point);
            }
        };
        let (resolution, truncated) = if hours == 1 {
            let page = s.store.bed_observations(&bed, range, super::MAX_LIMIT)?;
            for o in &page.items {
                if matches!(o.status, Status::Valid | Status::Questionable) {
                    take(
                        o.metric.name,
                        o.metric.unit,
                        o.device_id.as_str(),
                        &o.channel,
                        vec![o.observed_at as f64, o.value],
                    );
                }
            }
            ("raw", page.truncated)
        } else {
            let page = s.store.bed_rollups(&bed, range, super::MAX_LIMIT)?;
            for r in &page.items {
                take(
                    r.metric.name,
                    r.metric.unit,
                    r.device_id.as_str(),
                    &r.channel,
                    vec![r.minute as f64, r.mean, r.min, r.max],
                );
            }
            ("1m", page.truncated)
        };
        let series: BTreeMap<_, _> = series
            .into_iter()
            .map(|(name, (unit, mut points, sources, (device, channel)))| {
                points.sort_by(|a, b| a[0].total_cmp(&b[0]));
                (
                    name,
                    json!({
                        "unit": unit,
                        "points": points,
                        "source": { "device_id": device, "channel": channel },
                        "other_sources": sources.len().saturating_sub(1),
                    }),
                )
            })
            .collect();
        Ok(Json(json!({
            "bed": bed, "from": range.from, "to": range.to, "resolution": resolution,
            "truncated": truncated, "series": series, "limits": limits,
        })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::natural_key;

    #[test]
    fn beds_sort_naturally() {
        let mut beds = vec!["bed-10", "bed-2", "bed-01", "a", "bed-2b"];
        beds.sort_by_key(|b| natural_key(b));
        assert_eq!(beds, ["a", "bed-01", "bed-2", "bed-2b", "bed-10"]);
    }
}
