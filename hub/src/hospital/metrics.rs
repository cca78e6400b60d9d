//! `wardhub_hospital_*`: the hospital view's own metrics (its own registry, served at
//! `/metrics`).

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

use crate::uplink::envelope::Kind;

#[derive(Debug, Clone)]
pub struct HospitalMetrics {
    pub registry: Registry,
    pub connected: IntGauge,
    pub reconnects: IntCounter,
    pub messages: IntCounterVec,
    pub duplicates: IntCounter,
    pub invalid: IntCounter,
    pub wards: IntGauge,
    /// From the ward hub queueing an alarm transition to its arrival here.
    pub alarm_delivery_seconds: Histogram,
    pub resend_requests: IntCounter,
    /// Messages that arrived after the view asked for them again (as kept in its store).
    pub repaired: IntGauge,
    /// Messages given up: still missing two minutes after they were noticed.
    pub lost: IntGauge,
}

impl HospitalMetrics {
    pub fn new() -> HospitalMetrics {
        use crate::telemetry::{counter as counter_in, counter_vec, gauge as gauge_in, histogram};
        let r = Registry::new();
        let gauge = |name: &str, help: &str| gauge_in(&r, name, help);
        let counter = |name: &str, help: &str| counter_in(&r, name, help);
        let messages = counter_vec(
            &r,
            "wardhub_hospital_messages_total",
            "Uplink messages received (duplicates not included), by kind.",
            &["kind"],
        );
        for k in Kind::ALL {
            messages.with_label_values(&[k.as_str()]);
        }
        let alarm_delivery_seconds = histogram(
            &r,
            "wardhub_hospital_alarm_delivery_seconds",
            "From a ward hub queueing an alarm transition to the view receiving it.",
            vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0,
            ],
        );
        HospitalMetrics {
            connected: gauge(
                "wardhub_hospital_connected",
                "1 while the hospital view has a cluster connection.",
            ),
            reconnects: counter(
                "wardhub_hospital_reconnects_total",
                "Cluster connections made after the first one.",
            ),
            duplicates: counter(
                "wardhub_hospital_duplicates_total",
                "Uplink messages received again (same id) and dropped.",
            ),
            invalid: counter(
                "wardhub_hospital_invalid_messages_total",
                "Messages on the uplink topics that are not a wardhub.uplink.v1 envelope (skipped).",
            ),
            wards: gauge("wardhub_hospital_wards", "Wards the view knows."),
            resend_requests: counter(
                "wardhub_hospital_resend_requests_total",
                "Requests to a ward hub to send missing messages again.",
            ),
            repaired: gauge(
                "wardhub_hospital_repaired_messages",
                "Messages that arrived after the view asked for them again.",
            ),
            lost: gauge(
                "wardhub_hospital_lost_messages",
                "Messages never received and given up (dropped by a ward's outbox, or lost on the way and no longer kept).",
            ),
            messages,
            alarm_delivery_seconds,
            registry: r,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let enc = prometheus::TextEncoder::new();
        let _ = enc.encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for HospitalMetrics {
    fn default() -> Self {
        Self::new()
    }
}
