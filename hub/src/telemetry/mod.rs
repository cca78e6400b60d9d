//! Telemetry: one struct owning the Prometheus registry and every metric (registered in
//! `register.rs`), with methods that log and count together (`events.rs`). Labels are bounded: adapter names, reject reasons, event kinds,
//! device kinds, priorities — never device ids or anything about a patient.
//!
//! Values that are cheaper to read than to maintain (uptime, device counts, the process's
//! memory and CPU) are collected when Prometheus scrapes: [`Telemetry::render`] runs the hooks
//! registered with [`Telemetry::on_scrape`] first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicI64;
use std::sync::Mutex;

use prometheus::{
    Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};

/// All of the hub's metrics.
pub struct Telemetry {
    pub registry: Registry,
    pub messages_received: IntCounterVec,
    pub message_bytes: IntCounterVec,
    pub rejects: IntCounterVec,
    pub observations_stored: IntCounter,
    /// Observations moved back to hub time because their device's clock ran ahead, by adapter.
    pub clock_corrected: IntCounterVec,
    pub store_write_seconds: Histogram,
    pub store_flush_seconds: Histogram,
    pub store_errors: IntCounter,
    pub retention_deleted: IntCounterVec,
    pub db_size_bytes: IntGauge,
    pub store_open_chunk_bytes: IntGauge,
    pub store_corrupt_values: IntGauge,
    pub data_dir_available_bytes: IntGauge,
    pub data_dir_capacity_bytes: IntGauge,
    pub mqtt_connections: IntGauge,
    pub mqtt_connects: IntCounter,
    pub mqtt_disconnects: IntCounter,
    pub mqtt_refused: IntCounterVec,
    /// Stored device messages the broker's queue could not take for integrations.
    pub mqtt_forward_dropped: IntCounter,
    /// 1 while an internal part of the hub works (see `health`).
    pub component_up: IntGaugeVec,
    pub adapter_connections: prometheus::IntGaugeVec,
    pub framing_skipped_bytes: IntCounterVec,
    pub pipeline_batch_size: Histogram,
    pub ingest_latency_seconds: HistogramVec,
    pub alarms_raised: IntCounterVec,
    /// Alarms raised per bed: bounded by the beds of the registry (a location, never a
    /// patient); for "alarm load per bed" and "top beds".
    pub bed_alarms_raised: IntCounterVec,
    pub alarms_active: prometheus::IntGaugeVec,
    /// Alarms raised per condition (a closed set) and priority: the ward's top causes.
    pub condition_alarms_raised: IntCounterVec,
    /// Acknowledgements per priority and the nurse's reason (actionable, non_actionable,
    /// artefact, none).
    pub alarm_acknowledgements: IntCounterVec,
    pub alarms_suppressed: IntCounter,
    pub alarm_escalations: IntCounter,
    pub alarm_time_to_ack_seconds: HistogramVec,
    pub alarm_latency_seconds: Histogram,
    pub live_clients: IntGauge,
    /// HTTP requests refused for their credentials, by reason.
    pub http_auth_failures: IntCounterVec,
    /// Access-audit records that could not be written.
    pub audit_failures: IntCounter,
    /// Connections closed at accept by a face's limits, by face and limit.
    pub connections_refused: IntCounterVec,
    /// Open connections, by face.
    pub connections_open: IntGaugeVec,
    pub uptime_start: std::time::Instant,
    pub uptime_seconds: Gauge,
    pub devices_registered: IntGaugeVec,
    pub devices_online: IntGaugeVec,
    /// Device kinds with a series, so a kind whose last device goes reads 0 instead of vanishing.
    device_kinds: Mutex<BTreeSet<String>>,
    scrape_hooks: Mutex<Vec<ScrapeHook>>,
    /// Last time a reject was logged, per reason, for rate-limiting the log.
    reject_log_at: Vec<AtomicI64>,
    /// Rows of messages skipped on purpose (HL7 OBX: waveforms, unknown metrics, …).
    pub skipped: IntCounterVec,
    /// (device, reason) pairs already logged as skipped: each is logged once.
    skip_logged: Mutex<std::collections::HashSet<(String, &'static str)>>,
}

/// Devices × reasons logged as skipped, at most (then only counted).
const SKIP_LOG_MAX: usize = 10_000;

/// Runs before every scrape (see [`Telemetry::on_scrape`]).
pub type ScrapeHook = Box<dyn Fn(&Telemetry) + Send + Sync>;

/// Devices of one kind, for [`Telemetry::set_device_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceCounts {
    /// In service (registered and not retired).
    pub registered: u64,
    /// Of those, online now.
    pub online: u64,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

mod events;
mod register;
pub(crate) use register::{counter, counter_vec, gauge, gauge_vec, histogram};
#[cfg(test)]
mod tests;

/// Collected at scrape time.
impl Telemetry {
    /// Registers `hook` to run before every scrape (to refresh gauges that are read, not
    /// maintained, like device counts). Hooks must be quick: a scrape waits for them.
    pub fn on_scrape(&self, hook: impl Fn(&Telemetry) + Send + Sync + 'static) {
        self.scrape_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(hook));
    }

    /// Sets the device gauges from a full count by kind; kinds seen before and absent now
    /// read 0.
    pub fn set_device_counts(&self, counts: &BTreeMap<String, DeviceCounts>) {
        let mut kinds = self.device_kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds.extend(counts.keys().cloned());
        for kind in kinds.iter() {
            let c = counts.get(kind).copied().unwrap_or_default();
            self.devices_registered
                .with_label_values(&[kind])
                .set(i64::try_from(c.registered).unwrap_or(i64::MAX));
            self.devices_online
                .with_label_values(&[kind])
                .set(i64::try_from(c.online).unwrap_or(i64::MAX));
        }
    }

    /// Prometheus text exposition of every metric, after running the scrape hooks.
    pub fn render(&self) -> String {
        self.uptime_seconds
            .set(self.uptime_start.elapsed().as_secs_f64());
        for hook in self
            .scrape_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            hook(self);
        }
        let mut buf = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = prometheus::Encoder::encode(&encoder, &self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
