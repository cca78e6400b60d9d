//! Decode throughput, measured by hand:
//! `cargo test -p wardhub-adapters --release --test throughput -- --ignored --nocapture`.

use std::time::Instant;

use wardhub_adapters::model::{DeviceId, TimeLimits};
use wardhub_adapters::mqtt_json::decode_observations;

#[test]
#[ignore = "a measurement, run in release by hand"]
fn mqtt_json_decode_throughput() {
    let now = 1_795_168_800_000_i64;
    let doc = format!(
        r#"{{"observations": [
          {{"metric": "MDC_PULS_OXIM_SAT_O2", "value": 97, "unit": "%", "time": "2026-11-20T10:00:00.000Z"}},
          {{"metric": 147842, "value": 72, "unit": "/min", "time": {now}, "status": "valid"}},
          {{"metric": "MDC_PRESS_BLD_NONINV_SYS", "value": 121.5, "unit": "mm[Hg]", "time": {now}}},
          {{"metric": "MDC_RESP_RATE", "value": 14, "time": {now}}},
          {{"metric": "temp", "value": 98.6, "unit": "[degF]", "time": "2026-11-20T10:00:00.000Z"}}
        ]}}"#
    );
    let device = DeviceId::new("mon-01").unwrap();
    let limits = TimeLimits::default();
    let rounds = 200_000;
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += decode_observations(&device, doc.as_bytes(), now, &limits, 1000)
            .observations
            .len();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, rounds * 5);
    println!(
        "mqtt_json: {:.0} observations/s ({:.0} documents/s)",
        n as f64 / secs,
        rounds as f64 / secs
    );
}

#[test]
#[ignore = "a measurement, run in release by hand"]
fn hl7_oru_decode_throughput() {
    use wardhub_adapters::hl7::oru::{decode, OruOptions};
    let now = 1_795_168_800_000_i64;
    let msg = include_bytes!("../../tests/fixtures/hl7/multi_obx_headers.hl7");
    let rounds = 50_000;
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += decode(msg, now, &OruOptions::default())
            .unwrap()
            .observations
            .len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "hl7 ORU: {:.0} observations/s ({:.0} messages/s)",
        n as f64 / secs,
        rounds as f64 / secs
    );
}
