//! Alarm rules: one [`Rule`] per metric, the presets, and a ward's [`RuleSet`].
//!
//! One [`Rule`] per metric: a low and/or a high limit at a base priority, optionally an extra
//! tier beyond each limit at a higher priority (SpO2 < 90 medium, < 85 high), a condition delay
//! per tier, a hysteresis (clear margin), latching, and an escalation time.
//! The tiers belong to ONE alarm: crossing the extra tier raises that alarm's priority, it never
//! opens a second alarm.
//!
//! Rules resolve in three layers, each replacing the previous one metric by metric:
//! the [`Preset`] (docs/ALARM_PRESETS.md), the ward `rules`, and the per-bed `beds`
//! overrides. `enabled = false` switches a metric's alarm off at that layer (and is visible in
//! the configuration, so the suppression is auditable).
//!
//! The same serde shape is used in the hub TOML and in the JSON API:
//!
//! ```toml
//! [alarms]
//! preset = "adult"
//! audio_pause = "2m"
//!
//! [[alarms.rules]]
//! metric = "spo2"            # short name, MDC reference id, or MDC code
//! low = 90
//! priority = "medium"
//! delay = "15s"
//! extra_low = 85
//! extra_priority = "high"
//! hysteresis = 1
//!
//! [[alarms.beds."12"]]       # bed 12 replaces the ward's HR rule
//! metric = "hr"
//! low = 45
//! high = 130
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wardhub_model::{is_valid_id, metric_by_code, metric_by_name, Metric, METRICS};

use super::error::{AlarmError, Result};
use super::Priority;

/// The longest condition delay a rule may have: a longer one would hide sustained events.
pub const MAX_DELAY: Duration = Duration::from_secs(120);

/// One metric's alarm rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Short name (`spo2`), MDC reference id, or MDC code.
    #[serde(with = "metric_name")]
    pub metric: Metric,
    /// `false` switches this metric's alarm off at this layer.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Alarm when the value is below this (strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// Alarm when the value is above this (strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Priority of a `low`/`high` excursion.
    #[serde(default = "medium")]
    pub priority: Priority,
    /// How long a `low`/`high` condition must persist before the alarm exists.
    #[serde(default, with = "humane")]
    pub delay: Duration,
    /// A second, more severe tier below `low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_low: Option<f64>,
    /// A second, more severe tier above `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_high: Option<f64>,
    /// Priority of an extra-tier excursion (default high).
    #[serde(default = "high")]
    pub extra_priority: Priority,
    /// Condition delay of the extra tier (default 0: a high-priority condition is not delayed).
    #[serde(default, with = "humane")]
    pub extra_delay: Duration,
    /// Clear margin: a condition below `low` ends only at `low + hysteresis` or above (and
    /// symmetrically for `high`). Applies to every tier.
    #[serde(default)]
    pub hysteresis: f64,
    /// How long a raised alarm's values must stay past the clear margin before its condition
    /// ends (a value hovering at the margin does not clear and re-raise it every few seconds).
    /// A condition still within its delay ends at once.
    #[serde(default, with = "humane", skip_serializing_if = "Duration::is_zero")]
    pub clear_delay: Duration,
    /// A latching alarm stays after its condition ends until it is acknowledged.
    #[serde(default)]
    pub latching: bool,
    /// Escalate an unacknowledged alarm of this rule after this long; default: the
    /// per-priority escalation time of [`EscalationConfig`].
    #[serde(default, with = "opt_humane", skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<Duration>,
}

impl Rule {
    /// A rule with only the metric set (no limits, medium priority, no delay).
    pub fn new(metric: Metric) -> Self {
        Self {
            metric,
            enabled: true,
            low: None,
            high: None,
            priority: Priority::Medium,
            delay: Duration::ZERO,
            extra_low: None,
            extra_high: None,
            extra_priority: Priority::High,
            extra_delay: Duration::ZERO,
            hysteresis: 0.0,
            clear_delay: Duration::ZERO,
            latching: false,
            escalate_after: None,
        }
    }

    fn limits(mut self, low: Option<f64>, high: Option<f64>) -> Self {
        self.low = low;
        self.high = high;
        self
    }

    fn validate(&self, scope: &str) -> Result<()> {
        let err = |reason: String| AlarmError::InvalidRule {
            scope: scope.to_owned(),
            metric: self.metric.name.to_owned(),
            reason,
        };
        if !self.enabled {
            return Ok(());
        }
        let m = self.metric;
        for (name, v) in [
            ("low", self.low),
            ("high", self.high),
            ("extra_low", self.extra_low),
            ("extra_high", self.extra_high),
        ] {
            if let Some(v) = v {
                if !v.is_finite() || v < m.min || v > m.max {
                    return Err(err(format!(
                        "{name} = {v} is outside the possible range {}..{} {}",
                        m.min, m.max, m.unit
                    )));
                }
            }
        }
        if self.low.is_none() && self.high.is_none() {
            return Err(err("an enabled rule needs `low` and/or `high`".into()));
        }
        if let (Some(l), Some(h)) = (self.low, self.high) {
            if l >= h {
                return Err(err(format!("low ({l}) must be below high ({h})")));
            }
            if self.hysteresis >= h - l {
                return Err(err(format!(
                    "hysteresis ({}) must be smaller than high - low ({})",
                    self.hysteresis,
                    h - l
                )));
            }
        }
        match (self.extra_low, self.low) {
            (Some(_), None) => return Err(err("`extra_low` needs `low`".into())),
            (Some(x), Some(l)) if x >= l => {
                return Err(err(format!("extra_low ({x}) must be below low ({l})")))
            }
            _ => {}
        }
        match (self.extra_high, self.high) {
            (Some(_), None) => return Err(err("`extra_high` needs `high`".into())),
            (Some(x), Some(h)) if x <= h => {
                return Err(err(format!("extra_high ({x}) must be above high ({h})")))
            }
            _ => {}
        }
        if !(self.hysteresis.is_finite() && self.hysteresis >= 0.0) {
            return Err(err(format!(
                "hysteresis must be a number >= 0, not {}",
                self.hysteresis
            )));
        }
        // A clear margin that reaches past the possible range would make the alarm uncleareable.
        if self.low.is_some_and(|l| l + self.hysteresis > m.max)
            || self.high.is_some_and(|h| h - self.hysteresis < m.min)
        {
            return Err(err("hysteresis reaches past the possible range".into()));
        }
        if (self.extra_low.is_some() || self.extra_high.is_some())
            && self.extra_priority < self.priority
        {
            return Err(err("extra_priority must not be lower than priority".into()));
        }
        for (name, d) in [
            ("delay", self.delay),
            ("extra_delay", self.extra_delay),
            ("clear_delay", self.clear_delay),
        ] {
            if d > MAX_DELAY {
                return Err(err(format!(
                    "{name} of {} s exceeds the maximum of {} s (a long delay hides sustained events)",
                    d.as_secs(),
                    MAX_DELAY.as_secs()
                )));
            }
        }
        if self.escalate_after == Some(Duration::ZERO) {
            return Err(err("escalate_after must be longer than 0 s".into()));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn medium() -> Priority {
    Priority::Medium
}
fn high() -> Priority {
    Priority::High
}

/// Who changed a bed's alarms, why, until when, and what the change does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedChange {
    pub by: String,
    pub role: String,
    pub reason: String,
    /// RFC 3339.
    pub at: String,
    /// Epoch ms when the overrides are removed again (the ward's rules apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// Metrics whose alarm is off on this bed (short names).
    #[serde(default)]
    pub off: Vec<String>,
    /// Metrics whose limits are wider than the ward's on this bed.
    #[serde(default)]
    pub widened: Vec<String>,
}

/// Built-in default rules that the ward rules refine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Adult defaults (see [`default_adult`]).
    #[default]
    Adult,
    /// Children of about 1–12 years (see [`default_paediatric`]); `pediatric` is accepted too.
    #[serde(alias = "pediatric")]
    Paediatric,
    /// No built-in rules: only the configured ones.
    None,
}

impl Preset {
    /// The preset's rules.
    pub fn rules(self) -> Vec<Rule> {
        match self {
            Preset::Adult => default_adult(),
            Preset::Paediatric => default_paediatric(),
            Preset::None => Vec::new(),
        }
    }
}

/// The rules of a ward: a preset, ward rules, and per-bed overrides. This is the shape the
/// API serves and accepts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSet {
    pub preset: Preset,
    /// Ward rules; each replaces the preset's rule for its metric.
    pub rules: Vec<Rule>,
    /// Per-bed rules; each replaces the ward rule for its metric on that bed.
    pub beds: BTreeMap<String, Vec<Rule>>,
    /// Who changed a bed's rules away from the ward's, why, and until when (beds whose
    /// overrides switch an alarm off or widen it, or are time-limited).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, BedChange>,
}

/// One preset rule: limits, the base tier's priority is medium.
struct P {
    metric: &'static str,
    low: Option<f64>,
    high: Option<f64>,
    delay_s: u64,
    hysteresis: f64,
    extra_low: Option<f64>,
    extra_high: Option<f64>,
    extra_delay_s: u64,
    clear_s: u64,
}

impl P {
    fn rule(&self) -> Rule {
        let m = metric_by_name(self.metric).expect("metric of the built-in table");
        let mut r = Rule::new(m).limits(self.low, self.high);
        r.delay = Duration::from_secs(self.delay_s);
        r.hysteresis = self.hysteresis;
        r.extra_low = self.extra_low;
        r.extra_high = self.extra_high;
        r.extra_priority = Priority::High;
        r.extra_delay = Duration::from_secs(self.extra_delay_s);
        r.clear_delay = Duration::from_secs(self.clear_s);
        r
    }
}

/// A continuously measured metric: its alarm clears after 10 s back within limits.
const fn p(metric: &'static str, low: f64, high: f64, delay_s: u64, hysteresis: f64) -> P {
    P {
        metric,
        low: Some(low),
        high: if high.is_nan() { None } else { Some(high) },
        delay_s,
        hysteresis,
        extra_low: None,
        extra_high: None,
        extra_delay_s: 0,
        clear_s: 10,
    }
}

/// An intermittent measurement (NIBP): one new reading within limits clears it.
const fn intermittent(mut r: P) -> P {
    r.clear_s = 0;
    r
}

const fn extra(mut r: P, low: f64, high: f64, delay_s: u64) -> P {
    r.extra_low = if low.is_nan() { None } else { Some(low) };
    r.extra_high = if high.is_nan() { None } else { Some(high) };
    r.extra_delay_s = delay_s;
    r
}

const NO: f64 = f64::NAN;

/// The adult preset. Sources and the reasoning behind every number are in
/// `docs/ALARM_PRESETS.md` (and `docs/ALARM_PRESETS_SOURCES.md`); in short:
///
/// | metric | medium | high | delay medium / high | hysteresis |
/// |---|---|---|---|---|
/// | HR, pulse rate | < 50, > 120 | < 40, > 150 | 10 s / 3 s | 5 /min |
/// | SpO2 | < 90 | < 85 | 15 s / 5 s | 2 % |
/// | RR | < 8, > 30 | < 1 (apnoea) | 15 s / 10 s | 2 /min |
/// | etCO2 | < 15, > 50 mmHg | < 1 (no CO2: apnoea, disconnection) | 15 s / 10 s | 2 |
/// | NIBP systolic | < 90, > 160 | < 80 | 0 (intermittent) | 3 |
/// | NIBP diastolic | < 50, > 90 | — | 0 | 3 |
/// | NIBP mean | < 60, > 110 | < 55 | 0 | 3 |
/// | temperature | < 35, > 39 °C | — | 30 s | 0.2 |
///
/// Limits are the common monitor defaults (Mindray, Dräger, Edan, LIFEPAK manuals); high
/// priority for the life-threatening tiers (apnoea, extreme rates, severe hypotension,
/// SpO2 < 85); delays from the alarm-fatigue literature (Görges 2009: a 14 s delay removes half
/// of ineffective alarms; Welch 2011 / Rheineck-Leyssius 1998: 15 s for SpO2), kept at 10 s for
/// heart rate (IEC 60601-2-27 allows about 10 s to a heart-rate alarm) and short for the high
/// tiers. A raised alarm of a continuous metric clears after its values stayed 10 s past the
/// clear margin (`clear_delay`); an NIBP alarm at the next reading within limits.
pub fn default_adult() -> Vec<Rule> {
    [
        extra(p("hr", 50.0, 120.0, 10, 5.0), 40.0, 150.0, 3),
        extra(p("pr", 50.0, 120.0, 10, 5.0), 40.0, 150.0, 3),
        extra(p("spo2", 90.0, NO, 15, 2.0), 85.0, NO, 5),
        intermittent(extra(p("nibp_sys", 90.0, 160.0, 0, 3.0), 80.0, NO, 0)),
        intermittent(p("nibp_dia", 50.0, 90.0, 0, 3.0)),
        intermittent(extra(p("nibp_mean", 60.0, 110.0, 0, 3.0), 55.0, NO, 0)),
        extra(p("rr", 8.0, 30.0, 15, 2.0), 1.0, NO, 10),
        p("temp", 35.0, 39.0, 30, 0.2),
        extra(p("etco2", 15.0, 50.0, 15, 2.0), 1.0, NO, 10),
    ]
    .iter()
    .map(P::rule)
    .collect()
}

/// The paediatric preset (children of about 1–12 years; sources in `docs/ALARM_PRESETS.md`):
/// HR 60–160 (high < 50, > 170), SpO2 as adults, RR 12–40 (high: apnoea, ≥ 60), NIBP systolic
/// 80–130 (high < 70), diastolic 40–80, mean 50–95 (high < 40), temperature 36–39 °C, etCO2 as
/// adults. Delays and hysteresis as adults. A child of 1 and one of 12 differ: a unit with a
/// narrower age band sets its own rules on top.
pub fn default_paediatric() -> Vec<Rule> {
    [
        extra(p("hr", 60.0, 160.0, 10, 5.0), 50.0, 170.0, 3),
        extra(p("pr", 60.0, 160.0, 10, 5.0), 50.0, 170.0, 3),
        extra(p("spo2", 90.0, NO, 15, 2.0), 85.0, NO, 5),
        intermittent(extra(p("nibp_sys", 80.0, 130.0, 0, 3.0), 70.0, NO, 0)),
        intermittent(p("nibp_dia", 40.0, 80.0, 0, 3.0)),
        intermittent(extra(p("nibp_mean", 50.0, 95.0, 0, 3.0), 40.0, NO, 0)),
        extra(p("rr", 12.0, 40.0, 15, 2.0), 1.0, 59.0, 10),
        p("temp", 36.0, 39.0, 30, 0.2),
        extra(p("etco2", 15.0, 50.0, 15, 2.0), 1.0, NO, 10),
    ]
    .iter()
    .map(P::rule)
    .collect()
}

impl RuleSet {
    /// The adult preset with no ward rules or bed overrides.
    pub fn default_adult() -> Self {
        Self::default()
    }

    /// Checks every rule: limits ordered and possible, hysteresis ≥ 0 and not too wide, delays
    /// bounded, one rule per metric per layer, valid bed ids.
    pub fn validate(&self) -> Result<()> {
        check_layer(&self.rules, "ward")?;
        for (bed, rules) in &self.beds {
            if !is_valid_id(bed) {
                return Err(AlarmError::InvalidConfig(format!(
                    "bed id {bed:?} must be 1-64 characters of [A-Za-z0-9._-]"
                )));
            }
            check_layer(rules, &format!("bed {bed}"))?;
        }
        if let Some(bed) = self.changes.keys().find(|b| !self.beds.contains_key(*b)) {
            return Err(AlarmError::InvalidConfig(format!(
                "changes: bed {bed} has no rule overrides"
            )));
        }
        Ok(())
    }

    /// The effective rules of the ward (`bed = None`) or of one bed, one per metric, in the
    /// order of the metric table. Disabled metrics are left out.
    pub fn effective(&self, bed: Option<&str>) -> Vec<Rule> {
        let mut table: Vec<Option<Rule>> = vec![None; METRICS.len()];
        let preset = self.preset.rules();
        let bed_rules = bed.and_then(|b| self.beds.get(b));
        for r in preset
            .iter()
            .chain(&self.rules)
            .chain(bed_rules.into_iter().flatten())
        {
            table[metric_index(r.metric)] = r.enabled.then(|| r.clone());
        }
        table.into_iter().flatten().collect()
    }
}

fn check_layer(rules: &[Rule], scope: &str) -> Result<()> {
    let mut seen = vec![false; METRICS.len()];
    for r in rules {
        let i = metric_index(r.metric);
        if std::mem::replace(&mut seen[i], true) {
            return Err(AlarmError::InvalidRule {
                scope: scope.to_owned(),
                metric: r.metric.name.to_owned(),
                reason: "more than one rule for this metric (use extra_low/extra_high for a \
                         second tier)"
                    .into(),
            });
        }
        r.validate(scope)?;
    }
    Ok(())
}

/// The position of a metric in the metric table.
pub(crate) fn metric_index(m: Metric) -> usize {
    METRICS
        .iter()
        .position(|x| std::ptr::eq(x, m) || x.code == m.code)
        // Every Metric is a row of METRICS (it is only obtainable from that table).
        .unwrap_or(0)
}

/// Serde of a metric as its short name; accepts a name, reference id or MDC code.
mod metric_name {
    use super::*;
    use serde::de::Error;

    pub fn serialize<S: serde::Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.name)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrCode {
        Code(u32),
        Name(String),
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        match NameOrCode::deserialize(d)? {
            NameOrCode::Code(c) => {
                metric_by_code(c).ok_or_else(|| D::Error::custom(format!("unknown metric {c}")))
            }
            NameOrCode::Name(n) => metric_by_name(&n)
                .or_else(|| n.parse().ok().and_then(metric_by_code))
                .ok_or_else(|| D::Error::custom(format!("unknown metric {n:?}"))),
        }
    }
}

pub use wardhub_model::duration::{humane, opt_humane};

#[cfg(test)]
mod tests {
    use super::super::config::AlarmsConfig;
    use super::*;

    #[test]
    fn adult_defaults_validate_and_cover_design() {
        let rs = RuleSet::default_adult();
        rs.validate().unwrap();
        let eff = rs.effective(None);
        let get = |n: &str| eff.iter().find(|r| r.metric.name == n).unwrap();
        assert_eq!((get("hr").low, get("hr").high), (Some(50.0), Some(120.0)));
        let spo2 = get("spo2");
        assert_eq!((spo2.low, spo2.extra_low), (Some(90.0), Some(85.0)));
        assert_eq!(spo2.extra_priority, Priority::High);
        assert_eq!(spo2.delay, Duration::from_secs(15));
        assert_eq!(get("nibp_mean").high, Some(110.0));
        assert_eq!(get("temp").low, Some(35.0));
        assert_eq!(get("etco2").high, Some(50.0));
        assert_eq!(eff.len(), 9);
    }

    #[test]
    fn toml_shape_with_bed_overrides() {
        let cfg: AlarmsConfig = toml::from_str(
            r#"
            audio_pause = "90s"
            [technical]
            offline_after = "45s"
            [escalation]
            high = "1m"
            medium = "5m"
            [[rules]]
            metric = "MDC_PULS_OXIM_SAT_O2"
            low = 92
            delay = "10s"
            extra_low = 86
            hysteresis = 1
            latching = true
            [[rules]]
            metric = 151708
            enabled = false
            [[beds."12"]]
            metric = "hr"
            low = 40
            high = 130
            priority = "high"
            escalate_after = "30s"
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.audio_pause, Duration::from_secs(90));
        assert_eq!(cfg.escalation.medium, Some(Duration::from_secs(300)));
        let rs = cfg.rule_set();
        let ward = rs.effective(None);
        assert!(ward.iter().all(|r| r.metric.name != "etco2"));
        let spo2 = ward.iter().find(|r| r.metric.name == "spo2").unwrap();
        assert_eq!(spo2.low, Some(92.0));
        assert!(spo2.latching);
        let bed = rs.effective(Some("12"));
        let hr = bed.iter().find(|r| r.metric.name == "hr").unwrap();
        assert_eq!((hr.low, hr.priority), (Some(40.0), Priority::High));
        assert_eq!(hr.escalate_after, Some(Duration::from_secs(30)));
        // Other beds keep the ward rule.
        let other = rs.effective(Some("13"));
        assert_eq!(
            other.iter().find(|r| r.metric.name == "hr").unwrap().low,
            Some(50.0)
        );
    }

    #[test]
    fn json_round_trip() {
        let mut rs = RuleSet::default_adult();
        rs.rules = default_adult();
        rs.beds.insert("3".into(), vec![default_adult()[0].clone()]);
        let json = serde_json::to_string(&rs).unwrap();
        assert!(json.contains(r#""delay":"15s""#), "{json}");
        let back: RuleSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rs);
        let cfg = AlarmsConfig::default();
        let back: AlarmsConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let toml_text = toml::to_string(&cfg).unwrap();
        assert_eq!(toml::from_str::<AlarmsConfig>(&toml_text).unwrap(), cfg);
    }

    #[test]
    fn validation_errors() {
        let parse = |s: &str| serde_json::from_str::<RuleSet>(s);
        let invalid = |s: &str| {
            let e = parse(s).unwrap().validate().unwrap_err().to_string();
            assert!(e.contains("alarm rule") || e.contains("bed id"), "{e}");
            e
        };
        assert!(invalid(r#"{"rules":[{"metric":"hr","low":120,"high":50}]}"#).contains("below"));
        assert!(
            invalid(r#"{"rules":[{"metric":"hr","low":50,"hysteresis":-1}]}"#)
                .contains("hysteresis")
        );
        assert!(invalid(r#"{"rules":[{"metric":"hr"}]}"#).contains("low"));
        assert!(
            invalid(r#"{"rules":[{"metric":"spo2","low":90,"extra_low":95}]}"#)
                .contains("extra_low")
        );
        assert!(invalid(r#"{"rules":[{"metric":"spo2","extra_low":80}]}"#).contains("needs"));
        assert!(invalid(r#"{"rules":[{"metric":"spo2","low":190}]}"#).contains("range"));
        assert!(
            invalid(r#"{"rules":[{"metric":"spo2","low":90,"delay":"10m"}]}"#).contains("maximum")
        );
        assert!(
            invalid(r#"{"rules":[{"metric":"hr","low":50},{"metric":"hr","high":9}]}"#)
                .contains("more than one")
        );
        assert!(invalid(r#"{"beds":{"bad bed":[]}}"#).contains("bed id"));
        assert!(invalid(
            r#"{"rules":[{"metric":"hr","high":100,"extra_high":150,"priority":"high","extra_priority":"low"}]}"#
        )
        .contains("extra_priority"));
        // Serde-level errors: unknown metric, unknown field, bad duration.
        assert!(parse(r#"{"rules":[{"metric":"glucose","low":1}]}"#).is_err());
        assert!(parse(r#"{"rules":[{"metric":"hr","low":1,"lo":2}]}"#).is_err());
        assert!(parse(r#"{"rules":[{"metric":"hr","low":1,"delay":"soon"}]}"#).is_err());
        assert!(parse(r#"{"rule":[]}"#).is_err());
    }
}
