//! The uplink's metrics (registered in the hub's registry; labels are closed sets).

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Registry};

use super::envelope::Kind;

/// Why the outbox dropped a message (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The outbox was over `outbox_max_bytes`: its oldest data message made room.
    Full,
    /// Older than `outbox_max_age` before it could be sent.
    Expired,
    /// The broker refused it for good (MQTT 5: topic name or payload format invalid).
    Refused,
    /// It could not be written to the outbox (a sled error, logged); the data itself is
    /// stored on the ward.
    Error,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::Full,
        DropReason::Expired,
        DropReason::Refused,
        DropReason::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Full => "full",
            DropReason::Expired => "expired",
            DropReason::Refused => "refused",
            DropReason::Error => "error",
        }
    }
}

/// `wardhub_uplink_*`.
#[derive(Debug, Clone)]
pub struct UplinkMetrics {
    pub connected: IntGauge,
    /// 5 or 4 (3.1.1) while connected, 0 otherwise.
    pub protocol: IntGauge,
    pub outbox_messages: IntGauge,
    pub outbox_bytes: IntGauge,
    pub outbox_oldest_age_seconds: Gauge,
    pub queued: IntCounterVec,
    pub forwarded: IntCounterVec,
    pub dropped: IntCounterVec,
    pub reconnects: IntCounter,
    pub connect_failures: IntCounter,
    /// Publishes the broker answered with an error reason (MQTT 5), sent again later.
    pub broker_refusals: IntCounter,
    /// Observations whose minute was sent already (`rollups` mode).
    pub late_observations: IntCounter,
    pub resend_requests: IntCounter,
    pub resend_requests_invalid: IntCounter,
    pub resent: IntCounter,
    pub resend_unavailable: IntCounter,
}

impl UplinkMetrics {
    pub fn register(r: &Registry) -> UplinkMetrics {
        use crate::telemetry::{
            counter as counter_in, counter_vec as counter_vec_in, gauge as gauge_in,
        };
        let gauge = |name: &str, help: &str| gauge_in(r, name, help);
        let counter = |name: &str, help: &str| counter_in(r, name, help);
        let counter_vec =
            |name: &str, help: &str, label: &str| counter_vec_in(r, name, help, &[label]);
        let oldest = Gauge::new(
            "wardhub_uplink_outbox_oldest_age_seconds",
            "Age of the oldest message waiting in the uplink outbox (0 when empty).",
        )
        .expect("valid metric");
        r.register(Box::new(oldest.clone())).expect("unique metric");
        let m = UplinkMetrics {
            connected: gauge(
                "wardhub_uplink_connected",
                "1 while the uplink has a broker connection (CONNACK accepted).",
            ),
            protocol: gauge(
                "wardhub_uplink_protocol_version",
                "MQTT protocol level of the uplink connection (5 or 4 = 3.1.1; 0 when none).",
            ),
            outbox_messages: gauge(
                "wardhub_uplink_outbox_messages",
                "Messages in the uplink outbox (queued, not yet acknowledged by the broker).",
            ),
            outbox_bytes: gauge(
                "wardhub_uplink_outbox_bytes",
                "Bytes of the messages in the uplink outbox.",
            ),
            outbox_oldest_age_seconds: oldest,
            queued: counter_vec(
                "wardhub_uplink_queued_total",
                "Messages put in the uplink outbox, by kind.",
                "kind",
            ),
            forwarded: counter_vec(
                "wardhub_uplink_forwarded_total",
                "Messages the broker acknowledged (PUBACK), by kind.",
                "kind",
            ),
            dropped: counter_vec(
                "wardhub_uplink_dropped_total",
                "Messages the outbox dropped unsent, by reason (full, expired, refused, error).",
                "reason",
            ),
            reconnects: counter(
                "wardhub_uplink_reconnects_total",
                "Uplink connections made after the first one.",
            ),
            connect_failures: counter(
                "wardhub_uplink_connect_failures_total",
                "Uplink connection attempts that failed.",
            ),
            broker_refusals: counter(
                "wardhub_uplink_broker_refusals_total",
                "Publishes the broker answered with an error reason; sent again after a reconnect.",
            ),
            late_observations: counter(
                "wardhub_uplink_late_observations_total",
                "Observations that arrived after their minute's rollups were sent (not in any rollup).",
            ),
            resend_requests: counter(
                "wardhub_uplink_resend_requests_total",
                "Requests from receivers (a gap downstream) to send messages of this hub again.",
            ),
            resend_requests_invalid: counter(
                "wardhub_uplink_resend_requests_invalid_total",
                "Messages on the resend topic that are not a resend request (ignored).",
            ),
            resent: counter(
                "wardhub_uplink_resent_total",
                "Messages put back in the outbox because a receiver asked for them again.",
            ),
            resend_unavailable: counter(
                "wardhub_uplink_resend_unavailable_total",
                "Messages asked for again that the hub no longer keeps (uplink.keep_sent).",
            ),
        };
        for k in Kind::ALL {
            m.queued.with_label_values(&[k.as_str()]);
            m.forwarded.with_label_values(&[k.as_str()]);
        }
        for d in DropReason::ALL {
            m.dropped.with_label_values(&[d.as_str()]);
        }
        m
    }
}
