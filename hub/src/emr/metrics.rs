//! `wardhub_emr_*` (labels: `destination` hl7|fhir, closed reasons and outcomes; never a
//! patient).

use prometheus::{IntCounterVec, IntGaugeVec, Registry};

use super::outbox::Dest;
use crate::telemetry::{counter_vec, gauge_vec};

/// Outcomes of the values the charting saw (the `outcome` label).
pub const VALUE_OUTCOMES: [&str; 5] = ["charted", "no_patient", "unusable", "late", "not_charted"];

#[derive(Debug, Clone)]
pub struct EmrMetrics {
    /// Stored values by what the charting did with them.
    pub values: IntCounterVec,
    pub queued: IntCounterVec,
    /// Sent (each attempt).
    pub sent: IntCounterVec,
    /// Acknowledged by the receiver (AA, 2xx): left the outbox.
    pub acknowledged: IntCounterVec,
    /// Refused for good (AR, AE past `error_attempts`, 4xx): set aside.
    pub refused: IntCounterVec,
    /// A send that failed and will be tried again: `{destination, reason}` (connect, timeout,
    /// error_answer, server_error, bad_answer).
    pub retries: IntCounterVec,
    /// Dropped unsent: `{destination, reason}` (full, error).
    pub dropped: IntCounterVec,
    pub outbox_messages: IntGaugeVec,
    pub outbox_bytes: IntGaugeVec,
    pub outbox_oldest_age: IntGaugeVec,
    /// 1 while the last attempt reached the receiver.
    pub connected: IntGaugeVec,
}

impl EmrMetrics {
    pub fn register(r: &Registry) -> EmrMetrics {
        let d = &["destination"];
        let dr = &["destination", "reason"];
        let m = EmrMetrics {
            values: counter_vec(
                r,
                "wardhub_emr_values_total",
                "Stored values seen by the EMR charting, by outcome: charted (queued alone or in a periodic value), no_patient (no patient in the bed: kept, never exported), unusable (invalid or not available), late (its period was charted already), not_charted (the metric is not charted).",
                &["outcome"],
            ),
            queued: counter_vec(r, "wardhub_emr_queued_total", "Messages queued for an EMR destination.", d),
            sent: counter_vec(r, "wardhub_emr_sent_total", "Messages sent to an EMR destination (each attempt).", d),
            acknowledged: counter_vec(
                r,
                "wardhub_emr_acknowledged_total",
                "Messages the EMR destination acknowledged (HL7 AA, FHIR 2xx): they left the outbox.",
                d,
            ),
            refused: counter_vec(
                r,
                "wardhub_emr_refused_total",
                "Messages the EMR destination refused for good (HL7 AR, AE past emr.hl7.error_attempts, FHIR 4xx): set aside, not sent again.",
                d,
            ),
            retries: counter_vec(
                r,
                "wardhub_emr_retries_total",
                "Sends to an EMR destination that failed and will be tried again, by reason.",
                dr,
            ),
            dropped: counter_vec(
                r,
                "wardhub_emr_dropped_total",
                "Messages dropped unsent (full: the outbox was over its bound; error: could not be queued).",
                dr,
            ),
            outbox_messages: gauge_vec(r, "wardhub_emr_outbox_messages", "Messages waiting in the EMR outbox.", d),
            outbox_bytes: gauge_vec(r, "wardhub_emr_outbox_bytes", "Bytes waiting in the EMR outbox.", d),
            outbox_oldest_age: gauge_vec(
                r,
                "wardhub_emr_outbox_oldest_age_seconds",
                "Age of the oldest message waiting in the EMR outbox (0 when empty).",
                d,
            ),
            connected: gauge_vec(
                r,
                "wardhub_emr_connected",
                "1 while the last attempt reached the EMR destination.",
                d,
            ),
        };
        for o in VALUE_OUTCOMES {
            m.values.with_label_values(&[o]);
        }
        for dest in Dest::ALL {
            let n = dest.as_str();
            for c in [&m.queued, &m.sent, &m.acknowledged, &m.refused] {
                c.with_label_values(&[n]);
            }
            for reason in [
                "connect",
                "timeout",
                "error_answer",
                "server_error",
                "bad_answer",
            ] {
                m.retries.with_label_values(&[n, reason]);
            }
            for reason in ["full", "error"] {
                m.dropped.with_label_values(&[n, reason]);
            }
        }
        m
    }

    pub fn value(&self, outcome: &str, n: u64) {
        self.values.with_label_values(&[outcome]).inc_by(n);
    }
    pub fn queued(&self, d: Dest, n: u64) {
        self.queued.with_label_values(&[d.as_str()]).inc_by(n);
    }
    pub fn dropped(&self, d: Dest, reason: &str) {
        self.dropped.with_label_values(&[d.as_str(), reason]).inc();
    }
    pub fn retry(&self, d: Dest, reason: &str) {
        self.retries.with_label_values(&[d.as_str(), reason]).inc();
    }
    pub fn depth(&self, d: Dest, messages: u64, bytes: u64) {
        let n = d.as_str();
        self.outbox_messages
            .with_label_values(&[n])
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
        self.outbox_bytes
            .with_label_values(&[n])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
