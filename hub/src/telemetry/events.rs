//! What the hub's parts report: adapter events (messages, rejects, skipped rows,
//! connections), raised alarms and flushes, each counted and, where a person needs it,
//! logged (rate-limited: a flood of bad input must not flood the log).

use std::sync::atomic::Ordering;
use std::time::Duration;

use wardhub_adapters::adapter::AdapterEvents;
use wardhub_adapters::model::{Clock, Reject, RejectReason, SystemClock};

use super::{Telemetry, SKIP_LOG_MAX};

impl Telemetry {
    /// Counts a raised alarm (by priority and kind, and by bed when it has one).
    pub fn alarm_raised(&self, priority: &str, kind: &str, ward: &str, bed: Option<&str>) {
        self.alarms_raised
            .with_label_values(&[priority, kind])
            .inc();
        if let Some(bed) = bed {
            self.bed_alarms_raised
                .with_label_values(&[ward, bed, priority])
                .inc();
        }
    }

    pub fn observe_flush(&self, took: Duration) {
        self.store_flush_seconds.observe(took.as_secs_f64());
    }

    /// Logs a reject at most once a second per reason (a flood of bad input must not flood
    /// the log); every reject is counted.
    fn log_reject(&self, adapter: &'static str, device: Option<&str>, reject: &Reject) {
        let idx = RejectReason::ALL
            .iter()
            .position(|r| *r == reject.reason)
            .unwrap_or(0);
        let now = SystemClock.now_ms();
        let last = self.reject_log_at[idx].load(Ordering::Relaxed);
        if now - last >= 1000
            && self.reject_log_at[idx]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                adapter,
                device = device.unwrap_or("-"),
                reason = reject.reason.as_str(),
                detail = %reject.detail,
                "rejected input (further rejects for this reason within 1 s are counted, not logged)"
            );
        }
    }
}

impl AdapterEvents for Telemetry {
    fn message_received(&self, adapter: &'static str, bytes: usize) {
        self.messages_received.with_label_values(&[adapter]).inc();
        self.message_bytes
            .with_label_values(&[adapter])
            .inc_by(bytes as u64);
    }

    fn rejected(&self, adapter: &'static str, device: Option<&str>, reject: &Reject) {
        self.rejects
            .with_label_values(&[adapter, reject.reason.as_str()])
            .inc();
        self.log_reject(adapter, device, reject);
    }

    fn row_skipped(&self, adapter: &'static str, device: Option<&str>, reason: &'static str) {
        self.skipped.with_label_values(&[adapter, reason]).inc();
        let device = device.unwrap_or("-");
        let mut logged = self.skip_logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() < SKIP_LOG_MAX && logged.insert((device.to_owned(), reason)) {
            tracing::info!(
                adapter,
                device,
                reason,
                "rows skipped (logged once per device and reason; all are counted in wardhub_ingest_skipped_total)"
            );
        }
    }

    fn connection(&self, adapter: &'static str, open: bool) {
        let g = self.adapter_connections.with_label_values(&[adapter]);
        if open {
            g.inc();
        } else {
            g.dec();
        }
    }

    fn skipped_bytes(&self, adapter: &'static str, bytes: usize) {
        self.framing_skipped_bytes
            .with_label_values(&[adapter])
            .inc_by(bytes as u64);
    }

    fn connection_refused(&self, adapter: &'static str, limit: &'static str) {
        let face = if adapter == "hl7_mllp" {
            "hl7"
        } else {
            adapter
        };
        self.connections_refused
            .with_label_values(&[face, limit])
            .inc();
    }
}
