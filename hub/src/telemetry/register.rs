//! Registration: every metric, its name, help and labels, created once in the hub's registry;
//! series of closed label sets exist from the start so that rate() and alert rules see 0,
//! not nothing.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicI64;
use std::sync::Mutex;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use wardhub_adapters::model::RejectReason;

use super::Telemetry;

/// Makes and registers one metric (also for the components with metrics of their own).
pub(crate) fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

/// Makes and registers one metric (also for the components with metrics of their own).
pub(crate) fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

/// Makes and registers one metric (also for the components with metrics of their own).
pub(crate) fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

pub(crate) fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// Makes and registers one metric (also for the components with metrics of their own).
pub(crate) fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
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
}
