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
//!
//! The shipped presets are `rules/presets.rs`, the serde helpers of the rule's fields
//! `rules/serde_fields.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wardhub_model::{is_valid_id, Metric, METRICS};

use super::error::{AlarmError, Result};
use super::Priority;

mod presets;
mod serde_fields;

pub use presets::{default_adult, default_paediatric, Preset};
pub use wardhub_model::duration::{humane, opt_humane};

/// The longest condition delay a rule may have: a longer one would hide sustained events.
pub const MAX_DELAY: Duration = Duration::from_secs(120);

/// One metric's alarm rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Short name (`spo2`), MDC reference id, or MDC code.
    #[serde(with = "serde_fields::metric_name")]
    pub metric: Metric,
    /// `false` switches this metric's alarm off at this layer.
    #[serde(
        default = "serde_fields::yes",
        skip_serializing_if = "serde_fields::is_true"
    )]
    pub enabled: bool,
    /// Alarm when the value is below this (strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// Alarm when the value is above this (strictly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Priority of a `low`/`high` excursion.
    #[serde(default = "serde_fields::medium")]
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
    #[serde(default = "serde_fields::high")]
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
    /// per-priority escalation time of [`EscalationConfig`](crate::EscalationConfig).
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

#[cfg(test)]
mod tests;
