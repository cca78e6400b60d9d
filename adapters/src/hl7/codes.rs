//! Which metric an `OBX-3` names, by coding system.
//!
//! - **MDC** (`…^…^MDC`, or no coding system): the numeric code decides, through wardhub's
//!   metric table and the vendor variants below; the reference id (component 2) must agree
//!   with it when it is an `MDC_…` name (`150021^MDC_PRESS_BLD_ART_SYS^MDC` names an arterial
//!   pressure, not the non-invasive one its code says: refused, never guessed). A row whose
//!   numeric code wardhub does not know is an unknown metric, whatever its text. Without a
//!   numeric code, an `MDC_…` reference id selects the metric.
//! - **Any other coding system** (LOINC `LN`, vendor-local `99…`, Philips `MDIL`, …): only
//!   through a mapping table for that system: the built-in LOINC table below, or entries in
//!   the configuration (`[[adapters.codes]]`). A display text alone never selects a metric.
//! - An alternate coding (components 4–6, e.g. `8889-8^…^LN^150456^…^MDC`) is tried when the
//!   first one names nothing.

use crate::model::{metric_by_code, metric_by_name, Metric};

/// One configured mapping: `(coding system, code) → metric`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeMap {
    /// As written in OBX-3 component 3 (compared without case).
    pub system: String,
    pub code: String,
    /// A metric reference id or short name (`MDC_ECG_HEART_RATE`, `hr`).
    pub metric: String,
}

/// LOINC codes of the vital signs wardhub stores (from LOINC's vital signs panel, 85353-1, the
/// pulse oximetry codes and the non-invasive blood pressure codes). Other LOINC codes (e.g.
/// 8625-6, the ECG P-R interval) are unknown metrics. The panel's generic blood pressure codes
/// (8480-6, 8462-4, 8478-0) are deliberately not mapped: they do not say how the pressure was
/// measured, and a Dräger Infinity feed in the real-world corpus sends arterial-line
/// pressures under them; storing those as NIBP would be inventing.
static LOINC: &[(&str, &str)] = &[
    ("8867-4", "hr"),         // Heart rate
    ("8889-8", "pr"),         // Heart rate by Pulse oximetry
    ("59408-5", "spo2"),      // Oxygen saturation in Arterial blood by Pulse oximetry
    ("59407-7", "spo2"),      // Oxygen saturation in Blood Preductal by Pulse oximetry
    ("2710-2", "spo2"),       // Oxygen saturation in Capillary blood by Oximetry
    ("9279-1", "rr"),         // Respiratory rate
    ("8310-5", "temp"),       // Body temperature
    ("76534-7", "nibp_sys"),  // Systolic blood pressure by Noninvasive
    ("76535-4", "nibp_dia"),  // Diastolic blood pressure by Noninvasive
    ("76536-2", "nibp_mean"), // Mean blood pressure by Noninvasive
    ("19889-5", "etco2"),     // Carbon dioxide [Partial pressure] in Exhaled gas at end expiration
];

/// MDC codes and reference ids of variants stored under a canonical metric (verified in
/// published PCD-01 feeds: Mindray, Comen, Philips).
static MDC_VARIANTS: &[(u32, &str, &str)] = &[
    (150344, "MDC_TEMP", "temp"),
    (188496, "MDC_TEMP_AXIL", "temp"),
    (188424, "MDC_TEMP_ORAL", "temp"),
    (151578, "MDC_TTHOR_RESP_RATE", "rr"),
    (147842, "MDC_ECG_CARD_BEAT_RATE", "hr"),
];

/// Vendor-local codes with a public source each (`vendor_codes.toml` beside this file holds
/// the same rows with their sources; `VENDOR_CODES.md` the rows considered and not mapped):
/// `(coding system, code, metric)`. Philips MDIL codes are `partition-term` in hex.
static VENDOR: &[(&str, &str, &str)] = &[
    ("MDIL", "0002-4182", "hr"),
    ("MDIL", "0002-4bb8", "spo2"),
    ("MDIL", "0002-f09c", "spo2"),
    ("MDIL", "0002-4822", "pr"),
    ("MDIL", "0002-4a05", "nibp_sys"),
    ("MDIL", "0002-4a06", "nibp_dia"),
    ("MDIL", "0002-4a07", "nibp_mean"),
    ("MDIL", "0002-500a", "rr"),
    ("MDIL", "0002-50b0", "etco2"),
    ("MDIL", "0002-4b60", "temp"),
];

/// How many vendor rows are built in (for the test that checks them against their sources).
pub fn vendor_rows() -> usize {
    VENDOR.len()
}

/// Why an `OBX-3` names no metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMetric {
    /// No table of its coding system knows it.
    Unknown,
    /// The code and the reference id name different things.
    Conflict(String),
}

/// The metric tables: built-in plus configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codes {
    extra: Vec<CodeMap>,
}

impl Codes {
    /// The built-in tables plus `extra` (configured entries win). An entry naming no known
    /// metric is an error.
    pub fn new(extra: Vec<CodeMap>) -> Result<Codes, String> {
        for m in &extra {
            if metric_by_name(&m.metric).is_none() {
                return Err(format!(
                    "codes: {:?} is not a metric wardhub knows (system {}, code {})",
                    m.metric, m.system, m.code
                ));
            }
        }
        Ok(Codes { extra })
    }

    /// The metric of one coding (code, text, system).
    fn lookup(&self, code: &str, text: &str, system: &str) -> Result<Metric, NoMetric> {
        if let Some(m) = self
            .extra
            .iter()
            .find(|m| m.system.eq_ignore_ascii_case(system) && m.code.eq_ignore_ascii_case(code))
        {
            return metric_by_name(&m.metric).ok_or(NoMetric::Unknown);
        }
        if let Some((_, _, name)) = VENDOR
            .iter()
            .find(|(sys, c, _)| sys.eq_ignore_ascii_case(system) && c.eq_ignore_ascii_case(code))
        {
            return metric_by_name(name).ok_or(NoMetric::Unknown);
        }
        if system.is_empty() || system.eq_ignore_ascii_case("MDC") {
            return mdc(code, text);
        }
        if system.eq_ignore_ascii_case("LN") || system.eq_ignore_ascii_case("LOINC") {
            return LOINC
                .iter()
                .find(|(c, _)| *c == code)
                .and_then(|(_, name)| metric_by_name(name))
                .ok_or(NoMetric::Unknown);
        }
        Err(NoMetric::Unknown)
    }

    /// The metric `OBX-3` names: its first coding, else its alternate one.
    pub fn metric(&self, c: [&str; 6]) -> Result<Metric, NoMetric> {
        match self.lookup(c[0], c[1], c[2]) {
            Ok(m) => Ok(m),
            Err(NoMetric::Unknown) if !(c[3].is_empty() && c[4].is_empty()) => {
                self.lookup(c[3], c[4], c[5])
            }
            Err(e) => Err(e),
        }
    }
}

/// The metric an MDC-coded row names (see the module docs).
fn mdc(code: &str, refid: &str) -> Result<Metric, NoMetric> {
    let named = |s: &str| -> Option<Metric> {
        metric_by_name(s)
            .filter(|m| !m.name.eq_ignore_ascii_case(s))
            .or_else(|| {
                MDC_VARIANTS
                    .iter()
                    .find(|(_, r, _)| r.eq_ignore_ascii_case(s))
                    .and_then(|(_, _, name)| metric_by_name(name))
            })
    };
    if let Ok(c) = code.parse::<u32>() {
        let m = metric_by_code(c)
            .or_else(|| {
                MDC_VARIANTS
                    .iter()
                    .find(|(vc, _, _)| *vc == c)
                    .and_then(|(_, _, name)| metric_by_name(name))
            })
            .ok_or(NoMetric::Unknown)?;
        // The reference id, when it is an MDC name, must name the same metric.
        if refid.len() > 4
            && refid.as_bytes()[..4].eq_ignore_ascii_case(b"MDC_")
            && named(refid) != Some(m)
        {
            return Err(NoMetric::Conflict(format!(
                "OBX-3 code {c} is {} but its reference id says otherwise",
                m.refid
            )));
        }
        return Ok(m);
    }
    // No numeric code: an MDC reference id, in either component (never a short name).
    for s in [refid, code] {
        if s.len() > 4 && s.as_bytes()[..4].eq_ignore_ascii_case(b"MDC_") {
            if let Some(m) = named(s) {
                return Ok(m);
            }
        }
    }
    Err(NoMetric::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: [&str; 6]) -> Result<&'static str, NoMetric> {
        Codes::default().metric(c).map(|m| m.name)
    }

    /// Guards "a multi-byte character across byte 4 of a code panics the decoder" (found by
    /// fuzzing bytes behind a valid MSH): the MDC_ prefix is compared as bytes.
    #[test]
    fn a_code_with_a_multibyte_character_at_the_prefix_is_refused_not_a_panic() {
        for i in 0..6 {
            let mut c = [""; 6];
            c[i] = "MD\u{20ac}x";
            assert!(m(c).is_err(), "{c:?}");
            c[i] = "\u{fffd}\u{fffd}";
            assert!(m(c).is_err(), "{c:?}");
        }
        let mut c = ["150456", "\u{fffd}\u{fffd}", "", "", "", ""];
        assert_eq!(m(c), Ok("spo2"));
        c[1] = "MDC_\u{20ac}";
        assert!(m(c).is_err());
    }

    #[test]
    fn mdc_by_code_and_reference_id() {
        assert_eq!(
            m(["150456", "MDC_PULS_OXIM_SAT_O2", "MDC", "", "", ""]),
            Ok("spo2")
        );
        assert_eq!(m(["150456", "", "", "", "", ""]), Ok("spo2"));
        assert_eq!(
            m(["150301", "MDC_PRESS_CUFF_SYS", "MDC", "", "", ""]),
            Ok("nibp_sys")
        );
        assert_eq!(m(["150344", "MDC_TEMP", "MDC", "", "", ""]), Ok("temp"));
        assert_eq!(m(["", "MDC_ECG_HEART_RATE", "MDC", "", "", ""]), Ok("hr"));
        // Seen in a Comen NC5 feed (tests/fixtures/hl7/real-world): code and text disagree.
        assert!(matches!(
            m(["150021", "MDC_PRESS_BLD_ART_SYS", "MDC", "", "", ""]),
            Err(NoMetric::Conflict(_))
        ));
        // An unknown code is unknown, whatever the text says.
        assert_eq!(
            m(["150017", "MDC_PRESS_BLD_NONINV_SYS", "MDC", "", "", ""]),
            Err(NoMetric::Unknown)
        );
        assert_eq!(
            m(["149522", "MDC_PULS_RATE", "MDC", "", "", ""]),
            Err(NoMetric::Unknown)
        );
    }

    #[test]
    fn display_text_alone_never_selects() {
        // Guards `8625-6^PR^LN` (an ECG P-R interval) stored as a pulse rate of 160/min.
        assert_eq!(
            m(["8625-6", "PR", "LN", "", "", ""]),
            Err(NoMetric::Unknown)
        );
        assert_eq!(
            m(["x", "HR", "99MNDRY", "", "", ""]),
            Err(NoMetric::Unknown)
        );
        assert_eq!(m(["", "spo2", "", "", "", ""]), Err(NoMetric::Unknown));
        assert_eq!(
            m(["12", "MDC_PULS_OXIM_SAT_O2", "99XYZ", "", "", ""]),
            Err(NoMetric::Unknown)
        );
    }

    #[test]
    fn loinc_and_configured_tables_and_alternates() {
        assert_eq!(m(["8867-4", "Heart rate", "LN", "", "", ""]), Ok("hr"));
        assert_eq!(m(["59408-5", "SpO2", "LN", "", "", ""]), Ok("spo2"));
        assert_eq!(
            m([
                "8889-8",
                "Pulse",
                "LN",
                "149530",
                "MDC_PULS_OXIM_PULS_RATE",
                "MDC"
            ]),
            Ok("pr")
        );
        let codes = Codes::new(vec![CodeMap {
            system: "99MNDRY".into(),
            code: "99MNDRY-NIBP-SYS".into(),
            metric: "MDC_PRESS_BLD_NONINV_SYS".into(),
        }])
        .unwrap();
        assert_eq!(
            codes
                .metric(["99MNDRY-NIBP-SYS", "NIBP Sys", "99mndry", "", "", ""])
                .map(|m| m.name),
            Ok("nibp_sys")
        );
        assert!(Codes::new(vec![CodeMap {
            system: "X".into(),
            code: "1".into(),
            metric: "nope".into()
        }])
        .is_err());
    }
}
