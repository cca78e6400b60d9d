//! The metrics wardhub knows (IEEE 11073 MDC codes, UCUM units, physically possible
//! ranges), their lookup by code or name, and unit conversion into the canonical unit.

/// One metric wardhub knows: its MDC code and reference id, a short name for displays and
/// APIs, the canonical UCUM unit values are stored in, and the physically possible range
/// (values outside it are rejected as device or transport faults, not stored).
#[derive(Debug, PartialEq)]
pub struct MetricInfo {
    pub code: u32,
    pub refid: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
}

/// A known metric. Copy, compares by identity of its table row.
pub type Metric = &'static MetricInfo;

/// The metric table. Codes from IEEE 11073-10101 (the MDC nomenclature).
pub static METRICS: &[MetricInfo] = &[
    MetricInfo {
        code: 147842,
        refid: "MDC_ECG_HEART_RATE",
        name: "hr",
        unit: "/min",
        min: 0.0,
        max: 350.0,
    },
    MetricInfo {
        code: 149530,
        refid: "MDC_PULS_OXIM_PULS_RATE",
        name: "pr",
        unit: "/min",
        min: 0.0,
        max: 350.0,
    },
    MetricInfo {
        code: 150456,
        refid: "MDC_PULS_OXIM_SAT_O2",
        name: "spo2",
        unit: "%",
        min: 0.0,
        max: 100.0,
    },
    MetricInfo {
        code: 150021,
        refid: "MDC_PRESS_BLD_NONINV_SYS",
        name: "nibp_sys",
        unit: "mm[Hg]",
        min: 0.0,
        max: 400.0,
    },
    MetricInfo {
        code: 150022,
        refid: "MDC_PRESS_BLD_NONINV_DIA",
        name: "nibp_dia",
        unit: "mm[Hg]",
        min: 0.0,
        max: 400.0,
    },
    MetricInfo {
        code: 150023,
        refid: "MDC_PRESS_BLD_NONINV_MEAN",
        name: "nibp_mean",
        unit: "mm[Hg]",
        min: 0.0,
        max: 400.0,
    },
    MetricInfo {
        code: 151562,
        refid: "MDC_RESP_RATE",
        name: "rr",
        unit: "/min",
        min: 0.0,
        max: 200.0,
    },
    MetricInfo {
        code: 150364,
        refid: "MDC_TEMP_BODY",
        name: "temp",
        unit: "Cel",
        min: 15.0,
        max: 50.0,
    },
    MetricInfo {
        code: 151708,
        refid: "MDC_AWAY_CO2_ET",
        name: "etco2",
        unit: "mm[Hg]",
        min: 0.0,
        max: 150.0,
    },
];

/// Codes some monitors send instead of a canonical one (NIBP as cuff pressure); they are
/// stored under the canonical metric.
static METRIC_ALIASES: &[(u32, &str, u32)] = &[
    (150301, "MDC_PRESS_CUFF_SYS", 150021),
    (150302, "MDC_PRESS_CUFF_DIA", 150022),
    (150303, "MDC_PRESS_CUFF_MEAN", 150023),
];

/// The metric with this MDC code (aliases resolve to their canonical metric).
pub fn metric_by_code(code: u32) -> Option<Metric> {
    let code = METRIC_ALIASES
        .iter()
        .find(|(alias, _, _)| *alias == code)
        .map_or(code, |(_, _, canonical)| *canonical);
    METRICS.iter().find(|m| m.code == code)
}

/// The metric with this reference id (`MDC_…`, any case), alias, or short name (`spo2`).
pub fn metric_by_name(name: &str) -> Option<Metric> {
    if let Some(m) = METRICS
        .iter()
        .find(|m| m.refid.eq_ignore_ascii_case(name) || m.name.eq_ignore_ascii_case(name))
    {
        return Some(m);
    }
    METRIC_ALIASES
        .iter()
        .find(|(_, refid, _)| refid.eq_ignore_ascii_case(name))
        .and_then(|(_, _, canonical)| metric_by_code(*canonical))
}

/// 1 kPa in `mm[Hg]` (101.325 kPa = 760 `mm[Hg]`).
pub const MMHG_PER_KPA: f64 = 760.0 / 101.325;
/// 1 `cm[H2O]` in `mm[Hg]` (98.0665 Pa; 1 `mm[Hg]` = 133.322387415 Pa).
pub const MMHG_PER_CMH2O: f64 = 98.0665 / 133.322_387_415;

/// Converts a value given in `unit` into the metric's canonical unit.
///
/// Accepts the canonical UCUM unit, common spellings (`bpm`, `mmHg`, `°C`), and `[degF]` for
/// temperatures. An empty unit means the canonical one.
pub fn to_canonical_unit(metric: Metric, unit: &str, value: f64) -> Result<f64, UnitError> {
    let u = unit.trim();
    if u.is_empty() || u == metric.unit {
        return Ok(value);
    }
    let lower = u.to_ascii_lowercase();
    let ok = match metric.unit {
        "/min" => matches!(
            lower.as_str(),
            "bpm"
                | "1/min"
                | "{beats}/min"
                | "{beat}/min"
                | "{breaths}/min"
                | "{breath}/min"
                | "/min"
                | "rpm"
                | "brpm"
                | "min-1"
        ),
        "%" => matches!(lower.as_str(), "%" | "percent" | "pct"),
        "mm[Hg]" => {
            // kPa is common for etCO2 and pressures in Europe; cmH2O on ventilators.
            if matches!(lower.as_str(), "kpa" | "kilopascal") {
                return Ok(value * MMHG_PER_KPA);
            }
            if matches!(lower.as_str(), "cm[h2o]" | "cmh2o" | "cm h2o" | "cmh20") {
                return Ok(value * MMHG_PER_CMH2O);
            }
            matches!(lower.as_str(), "mmhg" | "mm[hg]" | "mm hg" | "torr")
        }
        "Cel" => {
            if matches!(lower.as_str(), "[degf]" | "degf" | "°f" | "f") {
                return Ok((value - 32.0) * 5.0 / 9.0);
            }
            matches!(lower.as_str(), "cel" | "°c" | "degc" | "c" | "celsius")
        }
        _ => false,
    };
    if ok {
        Ok(value)
    } else {
        Err(UnitError {
            expected: metric.unit,
        })
    }
}

/// A unit that cannot be converted into the metric's canonical unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unit is not compatible with {expected}")]
pub struct UnitError {
    pub expected: &'static str,
}
