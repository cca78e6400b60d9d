//! The exposition: every metric named in the docs is there from the first scrape.

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
