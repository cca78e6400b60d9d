//! The metrics of an outbound integration's queues and senders, under its own prefix
//! (`wardhub_emr_*`, `wardhub_acm_*`), labelled by `destination` (a closed set).

use prometheus::{IntCounterVec, IntGaugeVec, Registry};

use super::outbox::Dest;
use crate::telemetry::{counter_vec, gauge_vec};

/// Why a send is tried again (the `reason` label).
pub const RETRY_REASONS: [&str; 5] = [
    "connect",
    "timeout",
    "error_answer",
    "server_error",
    "bad_answer",
];

#[derive(Debug, Clone)]
pub struct OutboundMetrics {
    pub queued: IntCounterVec,
    /// Sent (each attempt).
    pub sent: IntCounterVec,
    /// Acknowledged by the receiver (AA, 2xx): left the outbox.
    pub acknowledged: IntCounterVec,
    /// Refused for good (AR, AE past `error_attempts`, 4xx): set aside.
    pub refused: IntCounterVec,
    /// A send that failed and will be tried again, by reason.
    pub retries: IntCounterVec,
    /// Dropped unsent: `{destination, reason}` (full, error).
    pub dropped: IntCounterVec,
    pub outbox_messages: IntGaugeVec,
    pub outbox_bytes: IntGaugeVec,
    pub outbox_oldest_age: IntGaugeVec,
    /// 1 while the last attempt reached the receiver.
    pub connected: IntGaugeVec,
}

impl OutboundMetrics {
    /// Registers `{prefix}_queued_total` … for `what` ("EMR", "alarm manager"), with the
    /// label values of `dests` made at once (a dashboard shows 0, not nothing).
    pub fn register(r: &Registry, prefix: &str, what: &str, dests: &[Dest]) -> OutboundMetrics {
        let d = &["destination"];
        let dr = &["destination", "reason"];
        let name = |n: &str| format!("{prefix}_{n}");
        let m = OutboundMetrics {
            queued: counter_vec(r, &name("queued_total"), &format!("Messages queued for an {what} destination."), d),
            sent: counter_vec(r, &name("sent_total"), &format!("Messages sent to an {what} destination (each attempt)."), d),
            acknowledged: counter_vec(
                r,
                &name("acknowledged_total"),
                &format!("Messages the {what} destination acknowledged (HL7 AA, HTTP 2xx): they left the outbox."),
                d,
            ),
            refused: counter_vec(
                r,
                &name("refused_total"),
                &format!("Messages the {what} destination refused for good (HL7 AR, AE past error_attempts, HTTP 4xx): set aside, not sent again."),
                d,
            ),
            retries: counter_vec(
                r,
                &name("retries_total"),
                &format!("Sends to an {what} destination that failed and will be tried again, by reason."),
                dr,
            ),
            dropped: counter_vec(
                r,
                &name("dropped_total"),
                "Messages dropped unsent (full: the outbox was over its bound; error: could not be queued).",
                dr,
            ),
            outbox_messages: gauge_vec(r, &name("outbox_messages"), &format!("Messages waiting in the {what} outbox."), d),
            outbox_bytes: gauge_vec(r, &name("outbox_bytes"), &format!("Bytes waiting in the {what} outbox."), d),
            outbox_oldest_age: gauge_vec(
                r,
                &name("outbox_oldest_age_seconds"),
                &format!("Age of the oldest message waiting in the {what} outbox (0 when empty)."),
                d,
            ),
            connected: gauge_vec(
                r,
                &name("connected"),
                &format!("1 while the last attempt reached the {what} destination."),
                d,
            ),
        };
        for dest in dests {
            let n = dest.as_str();
            for c in [&m.queued, &m.sent, &m.acknowledged, &m.refused] {
                c.with_label_values(&[n]);
            }
            for g in [
                &m.outbox_messages,
                &m.outbox_bytes,
                &m.outbox_oldest_age,
                &m.connected,
            ] {
                g.with_label_values(&[n]);
            }
            for reason in RETRY_REASONS {
                m.retries.with_label_values(&[n, reason]);
            }
            for reason in ["full", "error"] {
                m.dropped.with_label_values(&[n, reason]);
            }
        }
        m
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
    pub fn age(&self, d: Dest, seconds: i64) {
        self.outbox_oldest_age
            .with_label_values(&[d.as_str()])
            .set(seconds);
    }
}
