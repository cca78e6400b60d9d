//! Rules prepared for evaluation: per metric up to four tiers (low, extra low, high, extra
//! high), each a limit, a side, a priority and a delay; one table for the ward and one for
//! each bed with overrides, already merged.

use std::collections::HashMap;
use std::time::Duration;

use wardhub_model::METRICS;

use super::error::Result;
use super::rules::{metric_index, Rule, RuleSet};
use super::Priority;

/// Tier slots of a compiled rule.
pub(crate) const LOW: usize = 0;
pub(crate) const EXTRA_LOW: usize = 1;
pub(crate) const HIGH: usize = 2;
pub(crate) const SLOTS: usize = 4;

/// One threshold of a compiled rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tier {
    pub limit: f64,
    pub below: bool,
    pub priority: Priority,
    pub delay_ms: i64,
}

impl Tier {
    /// Whether `v` starts (`Some(true)`), ends (`Some(false)`) or does not change (`None`) this
    /// tier's condition, given the clear margin.
    pub fn edge(&self, v: f64, hysteresis: f64) -> Option<bool> {
        if self.below {
            if v < self.limit {
                Some(true)
            } else if v >= self.limit + hysteresis {
                Some(false)
            } else {
                None
            }
        } else if v > self.limit {
            Some(true)
        } else if v <= self.limit - hysteresis {
            Some(false)
        } else {
            None
        }
    }
}

/// A rule prepared for evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledRule {
    pub tiers: [Option<Tier>; SLOTS],
    pub hysteresis: f64,
    pub clear_ms: i64,
    pub latching: bool,
    pub escalate_after_ms: Option<i64>,
}

impl From<&Rule> for CompiledRule {
    fn from(r: &Rule) -> Self {
        let tier = |limit: Option<f64>, below, priority, delay: Duration| {
            limit.map(|limit| Tier {
                limit,
                below,
                priority,
                delay_ms: millis(delay),
            })
        };
        Self {
            tiers: [
                tier(r.low, true, r.priority, r.delay),
                tier(r.extra_low, true, r.extra_priority, r.extra_delay),
                tier(r.high, false, r.priority, r.delay),
                tier(r.extra_high, false, r.extra_priority, r.extra_delay),
            ],
            hysteresis: r.hysteresis,
            clear_ms: millis(r.clear_delay),
            latching: r.latching,
            escalate_after_ms: r.escalate_after.map(millis),
        }
    }
}

/// Rules by metric index, for the ward and for each bed with overrides (already merged).
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledRules {
    pub ward: Vec<Option<CompiledRule>>,
    pub beds: HashMap<String, Vec<Option<CompiledRule>>>,
}

impl CompiledRules {
    /// The rule for a bed and metric index; no allocation.
    pub fn get(&self, bed: Option<&str>, metric: usize) -> Option<&CompiledRule> {
        let table = bed.and_then(|b| self.beds.get(b)).unwrap_or(&self.ward);
        table.get(metric).and_then(Option::as_ref)
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CompiledRules {
    /// Validates `rules` and prepares them for evaluation.
    pub fn of(rules: &RuleSet) -> Result<CompiledRules> {
        rules.validate()?;
        let table = |bed: Option<&str>| {
            let mut t: Vec<Option<CompiledRule>> = vec![None; METRICS.len()];
            for r in rules.effective(bed) {
                t[metric_index(r.metric)] = Some(CompiledRule::from(&r));
            }
            t
        };
        Ok(CompiledRules {
            ward: table(None),
            beds: rules
                .beds
                .keys()
                .map(|b| (b.clone(), table(Some(b))))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_edges_apply_hysteresis() {
        let low = Tier {
            limit: 90.0,
            below: true,
            priority: Priority::Medium,
            delay_ms: 0,
        };
        assert_eq!(low.edge(89.9, 1.0), Some(true));
        assert_eq!(low.edge(90.0, 1.0), None);
        assert_eq!(low.edge(90.9, 1.0), None);
        assert_eq!(low.edge(91.0, 1.0), Some(false));
        assert_eq!(low.edge(90.0, 0.0), Some(false));
        let high = Tier {
            below: false,
            limit: 120.0,
            ..low
        };
        assert_eq!(high.edge(121.0, 2.0), Some(true));
        assert_eq!(high.edge(119.0, 2.0), None);
        assert_eq!(high.edge(118.0, 2.0), Some(false));
    }
}
