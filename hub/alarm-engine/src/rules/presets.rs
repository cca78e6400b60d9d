//! The shipped presets: the built-in rules ([`default_adult`], [`default_paediatric`]) that a
//! ward's rules refine, chosen by [`Preset`]. The reasoning behind every number is in
//! `docs/ALARM_PRESETS.md`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wardhub_model::metric_by_name;

use super::Rule;
use crate::Priority;

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
