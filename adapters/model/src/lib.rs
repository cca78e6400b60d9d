//! # wardhub-model
//!
//! The canonical observation model every adapter produces and the store, the alarm engine and
//! the HTTP API consume (ARCHITECTURE.md). A crate of its own so that those can share it
//! without depending on the protocol adapters.
//!
//! An [`Observation`] is one numeric value of one metric from one device at one time. Metrics are
//! IEEE 11073 MDC codes; only metrics in [`METRICS`] are accepted, so every stored value has a
//! known unit and a known physically possible range. [`duration`] is the one humane duration
//! format of every configuration file.
//!
//! ```
//! let spo2 = wardhub_model::metric_by_name("MDC_PULS_OXIM_SAT_O2").unwrap();
//! assert_eq!((spo2.code, spo2.unit), (150456, "%"));
//! ```

pub mod charting;
pub mod device_status;
pub mod duration;

mod clock;
mod ids;
mod metrics;
mod observation;
mod patient;
mod reject;
mod status;

pub use clock::*;
pub use ids::*;
pub use metrics::*;
pub use observation::*;
pub use patient::*;
pub use reject::*;
pub use status::*;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// The IEEE 11073 "not available" numeric value (0x7FFFFF), seen in real device data.
pub const MDC_NOT_AVAILABLE: f64 = 8_388_607.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(DeviceId::new("mon-01.a_b").is_ok());
        assert!(DeviceId::new("").is_err());
        assert!(DeviceId::new("a/b").is_err());
        assert!(DeviceId::new("a".repeat(65)).is_err());
        assert!(DeviceId::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn metrics_resolve_by_code_refid_name_and_alias() {
        assert_eq!(metric_by_code(150456).unwrap().name, "spo2");
        assert_eq!(metric_by_name("mdc_puls_oxim_sat_o2").unwrap().code, 150456);
        assert_eq!(metric_by_name("SpO2").unwrap().code, 150456);
        assert_eq!(metric_by_code(150301).unwrap().code, 150021);
        assert_eq!(metric_by_name("MDC_PRESS_CUFF_DIA").unwrap().code, 150022);
        assert!(metric_by_code(1).is_none());
    }

    #[test]
    fn units_convert() {
        let t = metric_by_name("temp").unwrap();
        assert!((to_canonical_unit(t, "[degF]", 98.6).unwrap() - 37.0).abs() < 1e-9);
        let hr = metric_by_name("hr").unwrap();
        assert_eq!(to_canonical_unit(hr, "bpm", 70.0), Ok(70.0));
        assert!(to_canonical_unit(hr, "mm[Hg]", 70.0).is_err());
    }

    #[test]
    fn times() {
        let ms = parse_rfc3339("2026-11-20T10:00:00.000Z").unwrap();
        assert_eq!(ms, 1_795_168_800_000);
        assert_eq!(parse_rfc3339("2026-11-20T11:00:00+01:00"), Some(ms));
        assert_eq!(format_rfc3339(ms), "2026-11-20T10:00:00.000Z");
        assert_eq!(parse_time("1795168800000"), Some(ms));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn value_checks() {
        let spo2 = metric_by_name("spo2").unwrap();
        let l = TimeLimits::default();
        let now = 1_000_000_000_000;
        assert!(check_value_and_time(spo2, 97.0, Status::Valid, now, now, &l).is_ok());
        let r = |v, s, t| {
            check_value_and_time(spo2, v, s, t, now, &l)
                .unwrap_err()
                .reason
        };
        assert_eq!(r(f64::NAN, Status::Valid, now), RejectReason::NonFinite);
        assert_eq!(r(101.0, Status::Valid, now), RejectReason::OutOfRange);
        // A clock running ahead is corrected by the pipeline, never refused here.
        assert!(check_value_and_time(spo2, 97.0, Status::Valid, now + 3_600_000, now, &l).is_ok());
        assert_eq!(
            r(97.0, Status::Valid, now - 73 * 3_600_000),
            RejectReason::TooOld
        );
        // Not-available data carries the 11073 sentinel, which is outside any range.
        assert!(
            check_value_and_time(spo2, MDC_NOT_AVAILABLE, Status::NotAvailable, now, now, &l)
                .is_ok()
        );
    }
}
