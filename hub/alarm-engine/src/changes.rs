//! Clinical changes to a bed's alarms: what a bed's overrides switch off or widen compared
//! with the ward's rules, whether they stay within the configured safe ranges, and the record
//! of who changed them, why, and until when (IEC 60601-1-8 requires an ALARM OFF state to be
//! indicated; the dashboard shows this record on the bed's tile and in the alarm list).

use serde::{Deserialize, Serialize};
use wardhub_model::{metric_by_name, Metric};

use super::rules::{metric_index, Rule};

/// The widest limits anyone but an admin may set for a metric (`[[alarms.safe_ranges]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafeRange {
    /// Short name, reference id or code.
    pub metric: String,
    /// `low` (and `extra_low`) may not be set below this, nor left out.
    #[serde(default)]
    pub low_min: Option<f64>,
    /// `high` (and `extra_high`) may not be set above this, nor left out.
    #[serde(default)]
    pub high_max: Option<f64>,
}

/// Adult safe ranges: wide enough for a bedside decision, narrow enough that a limit outside
/// them is a decision for the ward's admin (the clinical lead), not one nurse at 3 a.m.
pub fn default_safe_ranges() -> Vec<SafeRange> {
    let r = |m: &str, low_min: Option<f64>, high_max: Option<f64>| SafeRange {
        metric: m.into(),
        low_min,
        high_max,
    };
    vec![
        r("hr", Some(30.0), Some(180.0)),
        r("pr", Some(30.0), Some(180.0)),
        r("spo2", Some(80.0), None),
        r("nibp_sys", Some(70.0), Some(220.0)),
        r("nibp_dia", Some(35.0), Some(130.0)),
        r("nibp_mean", Some(45.0), Some(150.0)),
        r("rr", Some(5.0), Some(45.0)),
        r("temp", Some(34.0), Some(40.5)),
        r("etco2", Some(10.0), Some(70.0)),
    ]
}

/// Checks the configured ranges name known metrics.
pub fn check_safe_ranges(ranges: &[SafeRange]) -> Result<(), String> {
    for r in ranges {
        if metric_by_name(&r.metric).is_none() {
            return Err(format!("alarms.safe_ranges: unknown metric {:?}", r.metric));
        }
    }
    Ok(())
}

/// What a bed's overrides do compared with the ward's rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    pub off: Vec<String>,
    pub widened: Vec<String>,
    /// Limits outside the safe ranges (each a sentence).
    pub outside_safe: Vec<String>,
}

impl Assessment {
    /// Whether the change makes any alarm less likely to sound.
    pub fn loosens(&self) -> bool {
        !self.off.is_empty() || !self.widened.is_empty()
    }
}

fn wider_low(bed: Option<f64>, ward: Option<f64>) -> bool {
    match (bed, ward) {
        (None, Some(_)) => true,
        (Some(b), Some(w)) => b < w,
        _ => false,
    }
}

fn wider_high(bed: Option<f64>, ward: Option<f64>) -> bool {
    match (bed, ward) {
        (None, Some(_)) => true,
        (Some(b), Some(w)) => b > w,
        _ => false,
    }
}

/// Compares `overrides` (a bed's rules) with `ward` (the ward's effective rules).
pub fn assess(ward: &[Rule], overrides: &[Rule], safe: &[SafeRange]) -> Assessment {
    let mut a = Assessment::default();
    let ward_rule = |m: Metric| -> Option<&Rule> {
        ward.iter()
            .find(|r| metric_index(r.metric) == metric_index(m))
    };
    let safe_of = |m: Metric| {
        safe.iter()
            .find(|s| metric_by_name(&s.metric).is_some_and(|x| metric_index(x) == metric_index(m)))
    };
    for r in overrides {
        let name = r.metric.name.to_owned();
        let w = ward_rule(r.metric);
        if !r.enabled {
            if w.is_some() {
                a.off.push(name);
            }
            continue;
        }
        if let Some(w) = w {
            if wider_low(r.low, w.low)
                || wider_high(r.high, w.high)
                || wider_low(r.extra_low, w.extra_low)
                || wider_high(r.extra_high, w.extra_high)
                || r.delay > w.delay
                || r.priority < w.priority
                || ((r.extra_low.is_some() || r.extra_high.is_some())
                    && (r.extra_delay > w.extra_delay || r.extra_priority < w.extra_priority))
            {
                a.widened.push(name.clone());
            }
        }
        if let Some(s) = safe_of(r.metric) {
            if let Some(min) = s.low_min {
                match r.low {
                    Some(l) if l < min => a
                        .outside_safe
                        .push(format!("{name}: low {l} is below the safe minimum {min}")),
                    None => a
                        .outside_safe
                        .push(format!("{name}: no low limit (the safe minimum is {min})")),
                    _ => {}
                }
            }
            if let Some(max) = s.high_max {
                match r.high {
                    Some(h) if h > max => a
                        .outside_safe
                        .push(format!("{name}: high {h} is above the safe maximum {max}")),
                    None => a
                        .outside_safe
                        .push(format!("{name}: no high limit (the safe maximum is {max})")),
                    _ => {}
                }
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::rules::default_adult;
    use super::*;

    fn rule(json: &str) -> Rule {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn switching_off_and_widening_are_told_apart_from_tightening() {
        let ward = default_adult();
        let safe = default_safe_ranges();
        let a = assess(&ward, &[rule(r#"{"metric":"hr","enabled":false}"#)], &safe);
        assert_eq!(a.off, ["hr"]);
        assert!(a.loosens());
        let a = assess(
            &ward,
            &[rule(r#"{"metric":"hr","low":40,"high":140}"#)],
            &safe,
        );
        assert_eq!(
            (a.off.len(), a.widened.as_slice()),
            (0, &["hr".to_owned()][..])
        );
        assert!(a.outside_safe.is_empty());
        let a = assess(
            &ward,
            &[rule(
                r#"{"metric":"hr","low":55,"high":110,"extra_low":40,"extra_high":150,"delay":"10s","extra_delay":"3s"}"#,
            )],
            &safe,
        );
        assert!(!a.loosens(), "tighter limits loosen nothing: {a:?}");
        // Dropping the high-priority tier, or delaying it, loosens.
        for r in [
            r#"{"metric":"hr","low":55,"high":110}"#,
            r#"{"metric":"hr","low":55,"high":110,"extra_low":40,"extra_high":150,"extra_delay":"20s"}"#,
        ] {
            assert_eq!(assess(&ward, &[rule(r)], &safe).widened, ["hr"], "{r}");
        }
    }

    #[test]
    fn limits_outside_the_safe_range_are_named() {
        let a = assess(
            &default_adult(),
            &[rule(r#"{"metric":"hr","low":50,"high":230}"#)],
            &default_safe_ranges(),
        );
        assert_eq!(a.outside_safe.len(), 1, "{a:?}");
        assert!(a.outside_safe[0].contains("above the safe maximum 180"));
        let a = assess(
            &default_adult(),
            &[rule(r#"{"metric":"hr","low":50}"#)],
            &default_safe_ranges(),
        );
        assert!(a.outside_safe[0].contains("no high limit"), "{a:?}");
    }
}
