//! Telemetry: one struct owning the Prometheus registry and every metric, with methods that
//! log and count together. Labels are bounded: adapter names, reject reasons, event kinds,
//! device kinds, priorities — never device ids or anything about a patient.
//!
//! Values that are cheaper to read than to maintain (uptime, device counts, the process's
//! memory and CPU) are collected when Prometheus scrapes: [`Telemetry::render`] runs the hooks
//! registered with [`Telemetry::on_scrape`] first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use wardhub_adapters::model::{Reject, RejectReason, SystemClock};
use wardhub_adapters::{adapter::AdapterEvents, model::Clock};

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

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    // Metric names and help texts are constants, so registration cannot fail; the
    // `expect`s above only guard against a duplicate name introduced by an edit.
    pub fn new() -> Telemetry {
        Self::with_device_kinds(&[])
    }

    /// Telemetry whose device gauges have a series for each of `kinds` from the start (the
    /// registry's kinds: dashboards and alert rules then see 0 rather than nothing on a hub
    /// without devices yet).
    pub fn with_device_kinds(kinds: &[&str]) -> Telemetry {
        let r = Registry::new();
        let rejects = counter_vec(
            &r,
            "wardhub_ingest_rejects_total",
            "Inputs or observations rejected, by adapter and reason.",
            &["adapter", "reason"],
        );
        for adapter in ["mqtt_json", "hl7_mllp"] {
            for reason in RejectReason::ALL {
                rejects.with_label_values(&[adapter, reason.as_str()]);
            }
        }
        let adapter_connections = prometheus::IntGaugeVec::new(
            Opts::new(
                "wardhub_adapter_connections",
                "Open connections of connection-oriented adapters.",
            ),
            &["adapter"],
        )
        .expect("valid metric");
        r.register(Box::new(adapter_connections.clone()))
            .expect("unique metric");
        // Series of the connection-oriented adapter exist from the start (rate() and alert
        // rules see 0, not nothing).
        adapter_connections.with_label_values(&["hl7_mllp"]).set(0);
        let ingest_latency_seconds = HistogramVec::new(
            HistogramOpts::new(
                "wardhub_ingest_latency_seconds",
                "From hub receipt of an observation to its write being applied.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["adapter"],
        )
        .expect("valid metric");
        r.register(Box::new(ingest_latency_seconds.clone()))
            .expect("unique metric");
        let alarms_active = prometheus::IntGaugeVec::new(
            Opts::new(
                "wardhub_alarms_active",
                "Active (unacknowledged) alarms, by priority.",
            ),
            &["priority"],
        )
        .expect("valid metric");
        r.register(Box::new(alarms_active.clone()))
            .expect("unique metric");
        let alarm_time_to_ack_seconds = HistogramVec::new(
            HistogramOpts::new(
                "wardhub_alarm_time_to_acknowledge_seconds",
                "From an alarm being raised to its acknowledgement, by priority.",
            )
            .buckets(vec![
                5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
            ]),
            &["priority"],
        )
        .expect("valid metric");
        r.register(Box::new(alarm_time_to_ack_seconds.clone()))
            .expect("unique metric");
        let build_info = gauge_vec(
            &r,
            "wardhub_build_info",
            "Always 1; the labels say which wardhub is running.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let uptime_seconds = Gauge::new("wardhub_uptime_seconds", "Seconds since the hub started.")
            .expect("valid metric");
        r.register(Box::new(uptime_seconds.clone()))
            .expect("unique metric");
        let devices_registered = gauge_vec(
            &r,
            "wardhub_devices_registered",
            "Devices in service (registered, not retired), by kind.",
            &["kind"],
        );
        let devices_online = gauge_vec(
            &r,
            "wardhub_devices_online",
            "Devices in service that are online now, by kind.",
            &["kind"],
        );
        let device_kinds: BTreeSet<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        for k in &device_kinds {
            devices_registered.with_label_values(&[k]).set(0);
            devices_online.with_label_values(&[k]).set(0);
        }
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, …:
        // what hospital IT graphs for "resources". Linux only (read from /proc).
        #[cfg(target_os = "linux")]
        if let Err(e) = r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(error = %e, "process metrics are not available");
        }
        let framing_skipped_bytes = counter_vec(
            &r,
            "wardhub_framing_skipped_bytes_total",
            "Bytes skipped between frames, by adapter.",
            &["adapter"],
        );
        framing_skipped_bytes.with_label_values(&["hl7_mllp"]);
        let skipped = counter_vec(
            &r,
            "wardhub_ingest_skipped_total",
            "Rows of messages skipped on purpose (neither stored nor refused), by adapter and reason: header, waveform, not_numeric, unknown_metric, no_value, deleted.",
            &["adapter", "reason"],
        );
        for reason in wardhub_adapters::hl7::oru::SkipReason::ALL {
            skipped.with_label_values(&["hl7_mllp", reason.as_str()]);
        }
        let clock_corrected = counter_vec(
            &r,
            "wardhub_ingest_clock_corrected_total",
            "Observations stored at hub time because their device's clock ran more than ingest.max_future_skew ahead (kept, never refused), by adapter.",
            &["adapter"],
        );
        for a in ["mqtt_json", "hl7_mllp"] {
            clock_corrected.with_label_values(&[a]);
        }
        let condition_alarms_raised = counter_vec(
            &r,
            "wardhub_alarm_conditions_raised_total",
            "Alarms raised, by condition (tachycardia, desaturation, sensor_off, ...) and priority.",
            &["condition", "priority"],
        );
        let alarm_acknowledgements = counter_vec(
            &r,
            "wardhub_alarm_acknowledgements_total",
            "Alarm acknowledgements, by priority and the reason given: actionable, non_actionable, artefact or none.",
            &["priority", "reason"],
        );
        for p in ["low", "medium", "high"] {
            for reason in ["actionable", "non_actionable", "artefact", "none"] {
                alarm_acknowledgements.with_label_values(&[p, reason]);
            }
        }
        Telemetry {
            clock_corrected,
            condition_alarms_raised,
            alarm_acknowledgements,
            alarms_raised: counter_vec(
                &r,
                "wardhub_alarms_raised_total",
                "Alarms raised, by priority and kind.",
                &["priority", "kind"],
            ),
            bed_alarms_raised: counter_vec(
                &r,
                "wardhub_bed_alarms_raised_total",
                "Alarms raised on beds, by ward, bed and priority (alarms of unbound devices are not counted here).",
                &["ward", "bed", "priority"],
            ),
            alarms_active,
            alarms_suppressed: counter(
                &r,
                "wardhub_alarm_conditions_suppressed_total",
                "Alarm conditions that ended before their condition delay (audited, not announced).",
            ),
            alarm_escalations: counter(&r, "wardhub_alarm_escalations_total", "Alarms escalated."),
            alarm_time_to_ack_seconds,
            alarm_latency_seconds: histogram(
                &r,
                "wardhub_alarm_pipeline_latency_seconds",
                "From hub receipt of an observation to the announcement of the alarm transition it caused.",
                LATENCY_BUCKETS.to_vec(),
            ),
            live_clients: gauge(&r, "wardhub_live_clients", "Connected live (SSE) clients."),
            http_auth_failures: counter_vec(
                &r,
                "wardhub_http_auth_failures_total",
                "HTTP requests refused for their credentials (missing, unknown, expired, revoked, session, locked_out).",
                &["reason"],
            ),
            audit_failures: counter(
                &r,
                "wardhub_audit_write_failures_total",
                "Access-audit records that could not be written.",
            ),
            connections_refused: counter_vec(
                &r,
                "wardhub_connections_refused_total",
                "Connections closed at accept by a face's limits (face: http, mqtt, hl7; limit: total, per_source, not_allowed).",
                &["face", "limit"],
            ),
            connections_open: gauge_vec(
                &r,
                "wardhub_connections_open",
                "Open connections, by face (http, mqtt, hl7).",
                &["face"],
            ),
            messages_received: counter_vec(
                &r,
                "wardhub_messages_received_total",
                "Messages received, by adapter.",
                &["adapter"],
            ),
            message_bytes: counter_vec(
                &r,
                "wardhub_message_bytes_total",
                "Bytes of messages received, by adapter.",
                &["adapter"],
            ),
            rejects,
            observations_stored: counter(
                &r,
                "wardhub_observations_stored_total",
                "Observations written to the store.",
            ),
            store_write_seconds: histogram(
                &r,
                "wardhub_store_write_seconds",
                "Time to apply one write batch.",
                LATENCY_BUCKETS.to_vec(),
            ),
            store_flush_seconds: histogram(
                &r,
                "wardhub_store_flush_seconds",
                "Time of one flush to disk.",
                LATENCY_BUCKETS.to_vec(),
            ),
            store_errors: counter(
                &r,
                "wardhub_store_errors_total",
                "Failed writes or flushes.",
            ),
            retention_deleted: counter_vec(
                &r,
                "wardhub_retention_deleted_total",
                "Entries deleted by retention, by kind (raw, rollup).",
                &["kind"],
            ),
            db_size_bytes: gauge(&r, "wardhub_db_size_bytes", "Size of the database on disk."),
            store_open_chunk_bytes: gauge(
                &r,
                "wardhub_store_open_chunk_bytes",
                "Memory of samples not yet sealed into chunks (bounded by store.open_chunk_bytes).",
            ),
            store_corrupt_values: gauge(
                &r,
                "wardhub_store_corrupt_values",
                "Stored chunks, rollups or log entries that did not decode since start (skipped, never guessed at).",
            ),
            data_dir_available_bytes: gauge(
                &r,
                "wardhub_data_dir_available_bytes",
                "Space left for the hub on the filesystem of its data directory.",
            ),
            data_dir_capacity_bytes: gauge(
                &r,
                "wardhub_data_dir_capacity_bytes",
                "Size of the filesystem of the data directory.",
            ),
            mqtt_connections: gauge(&r, "wardhub_mqtt_connections", "Open MQTT connections."),
            mqtt_connects: counter(
                &r,
                "wardhub_mqtt_connects_total",
                "MQTT connections accepted.",
            ),
            mqtt_disconnects: counter(
                &r,
                "wardhub_mqtt_disconnects_total",
                "MQTT connections closed.",
            ),
            mqtt_refused: counter_vec(
                &r,
                "wardhub_mqtt_refused_total",
                "MQTT connections refused or closed by the hub, by reason.",
                &["reason"],
            ),
            component_up: gauge_vec(
                &r,
                "wardhub_component_up",
                "1 while an internal part of the hub works, 0 while it is down (GET /healthz names it).",
                &["component"],
            ),
            mqtt_forward_dropped: counter(
                &r,
                "wardhub_mqtt_forward_dropped_total",
                "Stored device messages not copied to integrations subscribed to device topics (the broker's queue was full).",
            ),
            adapter_connections,
            framing_skipped_bytes,
            pipeline_batch_size: histogram(
                &r,
                "wardhub_pipeline_batch_observations",
                "Observations per store write.",
                vec![1.0, 10.0, 100.0, 1000.0, 10000.0],
            ),
            ingest_latency_seconds,
            registry: r,
            uptime_start: std::time::Instant::now(),
            uptime_seconds,
            devices_registered,
            devices_online,
            device_kinds: Mutex::new(device_kinds),
            scrape_hooks: Mutex::new(Vec::new()),
            reject_log_at: RejectReason::ALL
                .iter()
                .map(|_| AtomicI64::new(0))
                .collect(),
            skipped,
            skip_logged: Mutex::new(std::collections::HashSet::new()),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
    }

    #[test]
    fn build_info_uptime_and_process_metrics_are_exported() {
        let t = Telemetry::new();
        let text = t.render();
        let version = format!(
            "wardhub_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(sample(&text, &version), Some(1.0), "{text}");
        assert!(sample(&text, "wardhub_uptime_seconds").is_some());
        #[cfg(target_os = "linux")]
        assert!(
            sample(&text, "process_resident_memory_bytes").unwrap_or(0.0) > 0.0,
            "{text}"
        );
    }

    #[test]
    fn device_counts_cover_every_kind_and_go_back_to_zero() {
        let t = Telemetry::with_device_kinds(&crate::registry::model::KINDS);
        // Known kinds read 0 before anything is registered.
        let text = t.render();
        assert_eq!(
            sample(
                &text,
                "wardhub_devices_registered{kind=\"patient_monitor\"}"
            ),
            Some(0.0)
        );
        let mut counts = BTreeMap::new();
        counts.insert(
            "patient_monitor".to_owned(),
            DeviceCounts {
                registered: 30,
                online: 28,
            },
        );
        counts.insert(
            "thermometer".to_owned(),
            DeviceCounts {
                registered: 2,
                online: 1,
            },
        );
        t.set_device_counts(&counts);
        let text = t.render();
        assert_eq!(
            sample(&text, "wardhub_devices_online{kind=\"patient_monitor\"}"),
            Some(28.0)
        );
        assert_eq!(
            sample(&text, "wardhub_devices_registered{kind=\"thermometer\"}"),
            Some(2.0)
        );
        // The thermometers are retired: the series stays, at 0.
        counts.remove("thermometer");
        t.set_device_counts(&counts);
        let text = t.render();
        assert_eq!(
            sample(&text, "wardhub_devices_registered{kind=\"thermometer\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn scrape_hooks_run_before_rendering() {
        let t = Telemetry::new();
        t.on_scrape(|t| t.live_clients.set(7));
        assert_eq!(sample(&t.render(), "wardhub_live_clients"), Some(7.0));
    }
}
