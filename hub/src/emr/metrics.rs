//! `wardhub_emr_*` (labels: `destination` hl7|fhir, closed reasons and outcomes; never a
//! patient): what the charting did with each stored value, and the exports' queues and
//! senders (`crate::outbound`).

use prometheus::{IntCounterVec, Registry};

use crate::outbound::{Dest, OutboundMetrics};
use crate::telemetry::counter_vec;

/// Outcomes of the values the charting saw (the `outcome` label).
pub const VALUE_OUTCOMES: [&str; 5] = ["charted", "no_patient", "unusable", "late", "not_charted"];

#[derive(Debug, Clone)]
pub struct EmrMetrics {
    /// Stored values by what the charting did with them.
    pub values: IntCounterVec,
    /// The outbox and the senders.
    pub queue: OutboundMetrics,
}

impl EmrMetrics {
    pub fn register(r: &Registry) -> EmrMetrics {
        let m = EmrMetrics {
            values: counter_vec(
                r,
                "wardhub_emr_values_total",
                "Stored values seen by the EMR charting, by outcome: charted (queued alone or in a periodic value), no_patient (no patient in the bed: kept, never exported), unusable (invalid or not available), late (its period was charted already), not_charted (the metric is not charted).",
                &["outcome"],
            ),
            queue: OutboundMetrics::register(r, "wardhub_emr", "EMR", &[Dest::Hl7, Dest::Fhir]),
        };
        for o in VALUE_OUTCOMES {
            m.values.with_label_values(&[o]);
        }
        m
    }

    pub fn value(&self, outcome: &str, n: u64) {
        self.values.with_label_values(&[outcome]).inc_by(n);
    }
}
