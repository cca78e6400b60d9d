//! `wardhub_patients_*`: events by trigger and outcome, occupied beds. Never a patient
//! identifier in a label.

use prometheus::{IntCounterVec, IntGauge, Registry};

use crate::telemetry::{counter_vec, gauge};

/// The triggers a label may carry; anything else is `other`.
const TRIGGERS: [&str; 9] = [
    "A01", "A02", "A03", "A04", "A08", "A11", "A12", "A13", "manual",
];

#[derive(Debug, Clone)]
pub struct PatientMetrics {
    /// `{trigger, outcome}`: outcome `recorded`, `other_ward` (not about this hub's beds or
    /// patients: nothing kept), `refused`.
    pub events: IntCounterVec,
    /// `{kind}`: `cancel_without_event`, `bed_taken_over`.
    pub oddities: IntCounterVec,
    pub occupied: IntGauge,
}

impl PatientMetrics {
    pub fn register(r: &Registry) -> PatientMetrics {
        let m = PatientMetrics {
            events: counter_vec(
                r,
                "wardhub_patients_events_total",
                "Patient context events (ADT feed and manual), by trigger and outcome.",
                &["trigger", "outcome"],
            ),
            oddities: counter_vec(
                r,
                "wardhub_patients_oddities_total",
                "Patient context events that did not fit the history: a cancel that found nothing to cancel, an admit into a bed someone else still occupied.",
                &["kind"],
            ),
            occupied: gauge(
                r,
                "wardhub_patients_beds_occupied",
                "Beds of this hub with a patient now.",
            ),
        };
        for t in TRIGGERS {
            for o in ["recorded", "other_ward", "refused"] {
                m.events.with_label_values(&[t, o]);
            }
        }
        for k in ["cancel_without_event", "bed_taken_over"] {
            m.oddities.with_label_values(&[k]);
        }
        m
    }

    pub fn event(&self, trigger: &str, outcome: &str) {
        let t = TRIGGERS
            .iter()
            .find(|t| t.eq_ignore_ascii_case(trigger))
            .copied()
            .unwrap_or("other");
        self.events.with_label_values(&[t, outcome]).inc();
    }

    pub fn oddities(&self, cancels: u64, taken: u64) {
        self.oddities
            .with_label_values(&["cancel_without_event"])
            .inc_by(cancels);
        self.oddities
            .with_label_values(&["bed_taken_over"])
            .inc_by(taken);
    }
}
