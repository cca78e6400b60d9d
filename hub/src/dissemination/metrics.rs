//! `wardhub_dissemination_*`: closing the loop from an alarm to a person.

use prometheus::{Histogram, IntCounter, IntCounterVec, Registry};
use wardhub_adapters::model::Millis;

use super::chain::Target;
use crate::alarms::Alarm;
use crate::telemetry::{counter, counter_vec, histogram};

const SECONDS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

#[derive(Debug, Clone)]
pub struct DisseminationMetrics {
    /// `{target, reminder}`.
    pub notifications: IntCounterVec,
    pub reached_nobody: IntCounter,
    pub rejected: IntCounter,
    pub undelivered: IntCounter,
    /// From the alarm being raised to its first person told.
    pub first_delivery: Histogram,
    /// From the alarm being raised to someone accepting it.
    pub accept: Histogram,
}

impl DisseminationMetrics {
    pub fn register(r: &Registry) -> DisseminationMetrics {
        let m = DisseminationMetrics {
            notifications: counter_vec(
                r,
                "wardhub_dissemination_notifications_total",
                "Alarm notifications sent to a person, by chain target and whether a reminder.",
                &["target", "reminder"],
            ),
            reached_nobody: counter(
                r,
                "wardhub_dissemination_reached_nobody_total",
                "Alarms whose whole escalation chain reached nobody (no one on the roster for them).",
            ),
            rejected: counter(
                r,
                "wardhub_dissemination_rejected_total",
                "Alarms a person rejected (sent on to the next step at once).",
            ),
            undelivered: counter(
                r,
                "wardhub_dissemination_undelivered_total",
                "Notifications that could not be published (the hub's publisher was down).",
            ),
            first_delivery: histogram(
                r,
                "wardhub_dissemination_first_delivery_seconds",
                "From an alarm being raised to the first person told.",
                SECONDS.to_vec(),
            ),
            accept: histogram(
                r,
                "wardhub_dissemination_accept_seconds",
                "From an alarm being raised to a person accepting it.",
                SECONDS.to_vec(),
            ),
        };
        for t in [Target::Primary, Target::Buddy, Target::Charge, Target::Ward] {
            for rem in ["false", "true"] {
                m.notifications.with_label_values(&[t.as_str(), rem]);
            }
        }
        m
    }

    pub fn notified(&self, t: Target, reminder: bool) {
        self.notifications
            .with_label_values(&[t.as_str(), if reminder { "true" } else { "false" }])
            .inc();
    }

    pub fn first_delivery(&self, a: &Alarm, now: Millis) {
        self.first_delivery
            .observe(((now - a.raised_at).max(0)) as f64 / 1000.0);
    }

    pub fn accepted(&self, a: &Alarm, now: Millis) {
        self.accept
            .observe(((now - a.raised_at).max(0)) as f64 / 1000.0);
    }
}
