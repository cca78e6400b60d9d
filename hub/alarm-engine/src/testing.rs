//! Helpers the engine's tests and the hub's alarm tests share (feature `testing`): an
//! engine from a JSON `[alarms]` configuration tested against fixed mechanics rules, and
//! observations with explicit times.

use wardhub_model::{metric_by_name, DeviceId, Millis, Observation, Status};

use crate::AlarmEngine;

/// One second in hub milliseconds.
pub const S: Millis = 1000;

/// A device id that is known to be valid.
pub fn dev(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

/// An observation of `metric` (by name) with `status` from `device` on `bed`, observed and
/// received at hub time `t`.
pub fn obs(
    device: &str,
    bed: &str,
    metric: &str,
    value: f64,
    status: Status,
    t: Millis,
) -> Observation {
    Observation {
        device_id: dev(device),
        bed: Some(bed.to_owned()),
        metric: metric_by_name(metric).unwrap(),
        value,
        observed_at: t,
        received_at: t,
        status,
        channel: None,
        clock_correction_ms: 0,
    }
}

/// An engine from an `[alarms]` configuration in JSON ("" = all defaults). Unless the
/// configuration sets `technical`, devices go offline only after an hour, so that scenarios
/// about other things can leave gaps between samples.
pub fn engine(config_json: &str) -> AlarmEngine {
    let mut v: serde_json::Value = serde_json::from_str(if config_json.is_empty() {
        "{}"
    } else {
        config_json
    })
    .unwrap();
    if v.get("technical").is_none() {
        v["technical"] = serde_json::json!({"offline_after": "1h"});
    }
    // Sensor off as the mechanics tests know it: after 10 s, cleared by one usable value.
    for (k, d) in [("sensor_off_delay", "10s"), ("sensor_off_clear", "0s")] {
        if v["technical"].get(k).is_none() {
            v["technical"][k] = d.into();
        }
    }
    // The mechanics are tested against a fixed rule set, not the shipped preset (which is
    // tested on its own and may change with the evidence): the configuration's ward rules
    // replace these metric by metric, as they would replace a preset's.
    if v.get("preset").is_none() {
        let mut rules: Vec<serde_json::Value> = serde_json::from_str(MECHANICS_RULES).unwrap();
        if let Some(own) = v.get("rules").and_then(|r| r.as_array()) {
            rules.retain(|r| !own.iter().any(|o| o["metric"] == r["metric"]));
            rules.extend(own.iter().cloned());
        }
        v["preset"] = "none".into();
        v["rules"] = rules.into();
    }
    AlarmEngine::new("icu", serde_json::from_value(v).unwrap()).unwrap()
}

/// The rules the engine's mechanics are tested with: SpO2 < 90 medium after 15 s and < 85 high
/// at once, HR 50–120, and so on.
const MECHANICS_RULES: &str = r#"[
    {"metric": "hr", "low": 50, "high": 120, "hysteresis": 2},
    {"metric": "pr", "low": 50, "high": 120, "hysteresis": 2},
    {"metric": "spo2", "low": 90, "delay": "15s", "extra_low": 85, "hysteresis": 1},
    {"metric": "nibp_sys", "low": 90, "high": 160},
    {"metric": "nibp_dia", "low": 50, "high": 90},
    {"metric": "nibp_mean", "low": 60, "high": 110},
    {"metric": "rr", "low": 8, "high": 30, "hysteresis": 1},
    {"metric": "temp", "low": 35, "high": 39, "hysteresis": 0.1},
    {"metric": "etco2", "low": 15, "high": 50, "hysteresis": 1}
]"#;
