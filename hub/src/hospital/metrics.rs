//! `wardhub_hospital_*`: the hospital view's own metrics (its own registry, served at
//! `/metrics`).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

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
        let r = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| r.register(c).expect("unique metric");
        let connected = IntGauge::new(
            "wardhub_hospital_connected",
            "1 while the hospital view has a cluster connection.",
        )
        .expect("valid metric");
        reg(Box::new(connected.clone()));
        let reconnects = IntCounter::new(
            "wardhub_hospital_reconnects_total",
            "Cluster connections made after the first one.",
        )
        .expect("valid metric");
        reg(Box::new(reconnects.clone()));
        let messages = IntCounterVec::new(
            Opts::new(
                "wardhub_hospital_messages_total",
                "Uplink messages received (duplicates not included), by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        reg(Box::new(messages.clone()));
        for k in Kind::ALL {
            messages.with_label_values(&[k.as_str()]);
        }
        let duplicates = IntCounter::new(
            "wardhub_hospital_duplicates_total",
            "Uplink messages received again (same id) and dropped.",
        )
        .expect("valid metric");
        reg(Box::new(duplicates.clone()));
        let invalid = IntCounter::new(
            "wardhub_hospital_invalid_messages_total",
            "Messages on the uplink topics that are not a wardhub.uplink.v1 envelope (skipped).",
        )
        .expect("valid metric");
        reg(Box::new(invalid.clone()));
        let wards =
            IntGauge::new("wardhub_hospital_wards", "Wards the view knows.").expect("valid metric");
        reg(Box::new(wards.clone()));
        let alarm_delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "wardhub_hospital_alarm_delivery_seconds",
                "From a ward hub queueing an alarm transition to the view receiving it.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0,
            ]),
        )
        .expect("valid metric");
        reg(Box::new(alarm_delivery_seconds.clone()));
        let resend_requests = IntCounter::new(
            "wardhub_hospital_resend_requests_total",
            "Requests to a ward hub to send missing messages again.",
        )
        .expect("valid metric");
        reg(Box::new(resend_requests.clone()));
        let repaired = IntGauge::new(
            "wardhub_hospital_repaired_messages",
            "Messages that arrived after the view asked for them again.",
        )
        .expect("valid metric");
        reg(Box::new(repaired.clone()));
        let lost = IntGauge::new(
            "wardhub_hospital_lost_messages",
            "Messages never received and given up (dropped by a ward's outbox, or lost on the way and no longer kept).",
        )
        .expect("valid metric");
        reg(Box::new(lost.clone()));
        HospitalMetrics {
            resend_requests,
            repaired,
            lost,
            registry: r,
            connected,
            reconnects,
            messages,
            duplicates,
            invalid,
            wards,
            alarm_delivery_seconds,
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
