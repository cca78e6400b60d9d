use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use tokio::sync::mpsc;

use super::*;
use crate::adapter::{AdapterEvents, DeviceMessageKind, Ingest, IngestReport, Sink};
use crate::model::{format_rfc3339, metric_by_name, Clock, Status, MDC_NOT_AVAILABLE, METRICS};

const NOW: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z

fn dev() -> DeviceId {
    DeviceId::new("mon-01").unwrap()
}

fn decode(payload: &str) -> Decoded {
    decode_observations(&dev(), payload.as_bytes(), NOW, &TimeLimits::default(), 100)
}

fn only_obs(payload: &str) -> Observation {
    let d = decode(payload);
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    assert_eq!(d.observations.len(), 1);
    d.observations.into_iter().next().unwrap()
}

fn only_reject(payload: &str) -> Reject {
    let d = decode(payload);
    assert!(d.observations.is_empty(), "{:?}", d.observations);
    assert_eq!(d.rejects.len(), 1, "{:?}", d.rejects);
    d.rejects.into_iter().next().unwrap()
}

fn reason(payload: &str) -> RejectReason {
    only_reject(payload).reason
}

#[test]
fn topics() {
    assert_eq!(
        parse_topic("wardhub/v1/devices/mon-01/obs"),
        Ok(Topic::Observations(dev()))
    );
    assert_eq!(
        parse_topic("wardhub/v1/devices/mon-01/status"),
        Ok(Topic::Status(dev()))
    );
    assert_eq!(
        parse_topic("wardhub/v1/devices/mon-01/event"),
        Ok(Topic::Event(dev()))
    );
    for t in [
        "wardhub/v1/devices/mon-01/alarm",
        "wardhub/v1/devices/mon-01/events",
        "wardhub/v1/devices/mon-01/event/x",
        "wardhub/v1/devices/mon-01/obs/x",
        "wardhub/v1/devices/mon-01",
        "wardhub/v1/devices/",
        "wardhub/v2/devices/mon-01/obs",
        "other",
        "",
    ] {
        assert_eq!(
            parse_topic(t).unwrap_err().reason,
            RejectReason::UnknownTopic,
            "{t}"
        );
    }
    for t in [
        "wardhub/v1/devices//obs",
        "wardhub/v1/devices/mon 01/obs",
        "wardhub/v1/devices/mon+/obs",
        "wardhub/v1/devices/mon 01/event",
        &format!("wardhub/v1/devices/{}/obs", "a".repeat(65)),
    ] {
        assert_eq!(
            parse_topic(t).unwrap_err().reason,
            RejectReason::BadDeviceId,
            "{t}"
        );
    }
}

#[test]
fn contract_example() {
    let d = decode(
        r#"{"observations": [
          {"metric": "MDC_PULS_OXIM_SAT_O2", "value": 97, "unit": "%", "time": "2026-11-20T10:00:00.000Z"},
          {"metric": 147842, "value": 72, "unit": "/min", "time": 1795168800000, "status": "valid"}
        ]}"#,
    );
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    let got: Vec<_> = d
        .observations
        .iter()
        .map(|o| (o.metric.name, o.value, o.observed_at, o.status))
        .collect();
    assert_eq!(
        got,
        [
            ("spo2", 97.0, NOW, Status::Valid),
            ("hr", 72.0, NOW, Status::Valid)
        ]
    );
    let o = &d.observations[0];
    assert_eq!(o.device_id, dev());
    assert_eq!(o.bed, None);
    assert_eq!(o.received_at, NOW);
}

#[test]
fn bare_object_and_bare_array() {
    let o = only_obs(r#"{"metric": "spo2", "value": 95.5}"#);
    assert_eq!((o.metric.code, o.value), (150456, 95.5));
    let d = decode(r#"[{"metric": "hr", "value": 60}, {"metric": "rr", "value": 14}]"#);
    assert_eq!(d.observations.len(), 2);
    assert!(d.rejects.is_empty());
    assert!(decode("[]").observations.is_empty());
    assert!(decode("[]").rejects.is_empty());
    assert!(decode(r#"{"observations": []}"#).rejects.is_empty());
}

#[test]
fn metric_forms() {
    for m in [
        r#""MDC_ECG_HEART_RATE""#,
        r#""mdc_ecg_heart_rate""#,
        r#""HR""#,
        "147842",
        r#""147842""#,
        // An escaped string (not borrowable) decodes the same.
        r#""MDC_ECG_HEART\u005fRATE""#,
    ] {
        let o = only_obs(&format!(r#"{{"metric": {m}, "value": 60}}"#));
        assert_eq!(o.metric.code, 147842, "{m}");
    }
    // NIBP sent as cuff pressure is stored as NIBP.
    let o = only_obs(r#"{"metric": "MDC_PRESS_CUFF_SYS", "value": 120, "unit": "mmHg"}"#);
    assert_eq!(o.metric.refid, "MDC_PRESS_BLD_NONINV_SYS");
    let o = only_obs(r#"{"metric": 150302, "value": 80}"#);
    assert_eq!(o.metric.refid, "MDC_PRESS_BLD_NONINV_DIA");
}

#[test]
fn times() {
    let t = |time: &str| {
        only_obs(&format!(
            r#"{{"metric": "hr", "value": 60, "time": {time}}}"#
        ))
    };
    assert_eq!(t(r#""2026-11-20T10:00:00Z""#).observed_at, NOW);
    assert_eq!(t(r#""2026-11-20T11:00:00+01:00""#).observed_at, NOW);
    assert_eq!(
        t(r#""2026-11-20T04:59:59.250-05:00""#).observed_at,
        NOW - 750
    );
    assert_eq!(t("1795168800000").observed_at, NOW);
    assert_eq!(t(r#""1795168800000""#).observed_at, NOW);
    assert_eq!(t("1.7951688e12").observed_at, NOW);
    assert_eq!(t("null").observed_at, NOW);
    let o = only_obs(r#"{"metric": "hr", "value": 60}"#);
    assert_eq!(o.observed_at, NOW);
}

#[test]
fn statuses() {
    let s = |st: &str| {
        only_obs(&format!(
            r#"{{"metric": "hr", "value": 60, "status": "{st}"}}"#
        ))
        .status
    };
    assert_eq!(s("valid"), Status::Valid);
    assert_eq!(s("Questionable"), Status::Questionable);
    assert_eq!(s("INVALID"), Status::Invalid);
    assert_eq!(s("not-available"), Status::NotAvailable);
    assert_eq!(s("not_available"), Status::NotAvailable);
    // Invalid data may be outside the possible range: it is kept, and never alarms.
    let o = only_obs(r#"{"metric": "spo2", "value": 127, "status": "invalid"}"#);
    assert_eq!((o.value, o.status), (127.0, Status::Invalid));
}

#[test]
fn not_available_sentinel() {
    let o = only_obs(r#"{"metric": "spo2", "value": 8388607, "status": "valid"}"#);
    assert_eq!(
        (o.value, o.status),
        (MDC_NOT_AVAILABLE, Status::NotAvailable)
    );
    // Never converted as if it were a temperature.
    let o = only_obs(r#"{"metric": "temp", "value": 8388607, "unit": "[degF]"}"#);
    assert_eq!(
        (o.value, o.status),
        (MDC_NOT_AVAILABLE, Status::NotAvailable)
    );
    // But its unit must still fit the metric.
    assert_eq!(
        reason(r#"{"metric": "spo2", "value": 8388607, "unit": "mmHg"}"#),
        RejectReason::UnitMismatch
    );
}

#[test]
fn units() {
    let v = |m: &str, value: f64, unit: &str| {
        only_obs(&format!(
            r#"{{"metric": "{m}", "value": {value}, "unit": "{unit}"}}"#
        ))
        .value
    };
    assert_eq!(v("hr", 70.0, "bpm"), 70.0);
    assert_eq!(v("rr", 12.0, "{breaths}/min"), 12.0);
    assert_eq!(v("nibp_sys", 120.0, "mmHg"), 120.0);
    assert_eq!(v("spo2", 97.0, "percent"), 97.0);
    assert_eq!(v("temp", 37.0, "°C"), 37.0);
    assert_eq!(v("temp", 37.0, ""), 37.0);
    assert!((v("temp", 98.6, "[degF]") - 37.0).abs() < 1e-9);
    assert!((v("temp", 98.6, "°F") - 37.0).abs() < 1e-9);
    let o = only_obs(r#"{"metric": "etco2", "value": 38, "unit": null}"#);
    assert_eq!(o.value, 38.0);
}

#[test]
fn extra_fields_are_ignored() {
    let o = only_obs(
        r#"{"metric": "hr", "value": 60, "seq": 5, "meta": {"a": [1, {"b": null}]}, "tags": ["x"]}"#,
    );
    assert_eq!(o.value, 60.0);
    let d = decode(r#"{"firmware": "1.2", "observations": [{"metric": "hr", "value": 60}]}"#);
    assert_eq!(d.observations.len(), 1);
}

#[test]
fn document_level_rejects() {
    use RejectReason::*;
    for (payload, want) in [
        ("", Malformed),
        ("{", Malformed),
        ("not json", Malformed),
        (r#"{"metric": "hr", "value": NaN}"#, Malformed),
        (r#"{"metric": "hr", "value": Infinity}"#, Malformed),
        (r#"{"metric": "hr", "value": 1e999}"#, Malformed),
        (r#"{"metric": "hr", "value": 60} trailing"#, Malformed),
        (r#"[{"metric": "hr", "value": 60},]"#, Malformed),
        (r#""a string""#, Schema),
        ("42", Schema),
        ("null", Schema),
        ("true", Schema),
        ("{}", Schema),
        (r#"{"device": "x"}"#, Schema),
        (r#"{"observations": {"metric": "hr", "value": 60}}"#, Schema),
        (r#"{"observations": "none"}"#, Schema),
        (r#"{"observations": null}"#, Schema),
        (r#"{"observations": [], "observations": []}"#, Schema),
    ] {
        assert_eq!(reason(payload), want, "{payload}");
    }
    // A syntax error after valid observations still rejects all of them.
    let d = decode(r#"{"observations": [{"metric": "hr", "value": 60}], "#);
    assert!(d.observations.is_empty());
    assert_eq!(d.rejects[0].reason, Malformed);
}

#[test]
fn too_many() {
    let one = r#"{"metric": "hr", "value": 60}"#;
    let doc = |n: usize| format!("[{}]", vec![one; n].join(","));
    let l = TimeLimits::default();
    let d = decode_observations(&dev(), doc(3).as_bytes(), NOW, &l, 3);
    assert_eq!((d.observations.len(), d.rejects.len()), (3, 0));
    let d = decode_observations(&dev(), doc(4).as_bytes(), NOW, &l, 3);
    assert!(d.observations.is_empty());
    assert_eq!(d.rejects.len(), 1);
    assert_eq!(d.rejects[0].reason, RejectReason::TooMany);
    // Refused elements count too.
    let d = decode_observations(&dev(), b"[1, 2, 3, 4]", NOW, &l, 3);
    assert_eq!(d.rejects[0].reason, RejectReason::TooMany);
    let d = decode_observations(&dev(), one.as_bytes(), NOW, &l, 0);
    assert_eq!(d.rejects[0].reason, RejectReason::TooMany);
}

#[test]
fn too_large() {
    let decoder = Decoder {
        max_payload_bytes: 40,
        ..Decoder::default()
    };
    let small = Bytes::from_static(br#"{"metric": "hr", "value": 60}"#);
    let big = Bytes::from(format!(
        r#"{{"metric": "hr", "value": 60, "x": "{}"}}"#,
        "y".repeat(20)
    ));
    let topic = "wardhub/v1/devices/mon-01/obs";
    match decoder.decode(topic, &small, NOW) {
        Message::Observations { decoded, .. } => assert_eq!(decoded.observations.len(), 1),
        other => panic!("{other:?}"),
    }
    match decoder.decode(topic, &big, NOW) {
        Message::Observations { device, decoded } => {
            assert_eq!(device, dev());
            assert!(decoded.observations.is_empty());
            assert_eq!(decoded.rejects[0].reason, RejectReason::TooLarge);
        }
        other => panic!("{other:?}"),
    }
    match decoder.decode("wardhub/v1/devices/mon-01/status", &big, NOW) {
        Message::Rejected { device, reject } => {
            assert_eq!(device, Some(dev()));
            assert_eq!(reject.reason, RejectReason::TooLarge);
        }
        other => panic!("{other:?}"),
    }
    match decoder.decode("wardhub/v1/devices/mon-01/event", &big, NOW) {
        Message::Rejected { device, reject } => {
            assert_eq!(device, Some(dev()));
            assert_eq!(reject.reason, RejectReason::TooLarge);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_and_unknown_topics_through_decoder() {
    let d = Decoder::default();
    let p = Bytes::from_static(br#"{"battery": 80}"#);
    assert_eq!(
        d.decode("wardhub/v1/devices/mon-01/status", &p, NOW),
        Message::Status {
            device: dev(),
            payload: p.clone()
        }
    );
    let e = Bytes::from_static(br#"{"event": "nurse_call", "active": true}"#);
    assert_eq!(
        d.decode("wardhub/v1/devices/mon-01/event", &e, NOW),
        Message::Event {
            device: dev(),
            payload: e.clone()
        }
    );
    match d.decode("wardhub/v1/devices/mon-01/what", &p, NOW) {
        Message::Rejected {
            device: None,
            reject,
        } => {
            assert_eq!(reject.reason, RejectReason::UnknownTopic)
        }
        other => panic!("{other:?}"),
    }
    match d.decode("wardhub/v1/devices/a#b/obs", &p, NOW) {
        Message::Rejected {
            device: None,
            reject,
        } => {
            assert_eq!(reject.reason, RejectReason::BadDeviceId)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn observation_level_rejects() {
    use RejectReason::*;
    let hour = 3_600_000;
    let cases: Vec<(String, RejectReason)> = vec![
        (r#"{"value": 60}"#.into(), Schema),
        (r#"{"metric": "hr"}"#.into(), Schema),
        (r#"{"metric": "hr", "value": "60"}"#.into(), Schema),
        (r#"{"metric": "hr", "value": null}"#.into(), Schema),
        (r#"{"metric": "hr", "value": true}"#.into(), Schema),
        (r#"{"metric": "hr", "value": [60]}"#.into(), Schema),
        (r#"{"metric": true, "value": 60}"#.into(), Schema),
        (r#"{"metric": 147842.5, "value": 60}"#.into(), Schema),
        (
            r#"{"metric": {"code": 147842}, "value": 60}"#.into(),
            Schema,
        ),
        (r#"{"metric": "hr", "value": 60, "unit": 5}"#.into(), Schema),
        (
            r#"{"metric": "hr", "value": 60, "status": "great"}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "hr", "value": 60, "status": 1}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "hr", "value": 60, "time": "yesterday"}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "hr", "value": 60, "time": 1.5}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "hr", "value": 60, "time": true}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "hr", "value": 60, "time": 18446744073709551615}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "hr", "value": 60, "value": 61}"#.into(),
            Schema,
        ),
        (
            r#"{"metric": "MDC_FOO", "value": 60}"#.into(),
            UnknownMetric,
        ),
        (r#"{"metric": 1, "value": 60}"#.into(), UnknownMetric),
        (
            r#"{"metric": 99999999999, "value": 60}"#.into(),
            UnknownMetric,
        ),
        (r#"{"metric": -147842, "value": 60}"#.into(), Schema),
        (
            r#"{"metric": "hr", "value": 60, "unit": "mmHg"}"#.into(),
            UnitMismatch,
        ),
        (
            r#"{"metric": "spo2", "value": 97, "unit": "[degF]"}"#.into(),
            UnitMismatch,
        ),
        // A huge but finite Fahrenheit value overflows to -inf on conversion.
        (
            r#"{"metric": "temp", "value": -1.7e308, "unit": "[degF]"}"#.into(),
            NonFinite,
        ),
        (r#"{"metric": "spo2", "value": 101}"#.into(), OutOfRange),
        (r#"{"metric": "hr", "value": -1}"#.into(), OutOfRange),
        (
            r#"{"metric": "temp", "value": 200, "unit": "[degF]"}"#.into(),
            OutOfRange,
        ),
        (
            format!(
                r#"{{"metric": "hr", "value": 60, "time": {}}}"#,
                NOW - 73 * hour
            ),
            TooOld,
        ),
        (
            r#"{"metric": "hr", "value": 60, "time": -5}"#.into(),
            TooOld,
        ),
        (
            r#"{"metric": "hr", "value": 60, "time": "2020-01-01T00:00:00Z"}"#.into(),
            TooOld,
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(reason(&payload), want, "{payload}");
        // The same observation inside a wrapper is refused alone; its neighbour is kept.
        let d = decode(&format!(
            r#"{{"observations": [{{"metric": "rr", "value": 12}}, {payload}]}}"#
        ));
        assert_eq!(d.observations.len(), 1, "{payload}");
        assert_eq!(d.rejects.len(), 1, "{payload}");
        assert_eq!(d.rejects[0].reason, want, "{payload}");
        assert!(
            d.rejects[0].detail.starts_with("observations[1]: "),
            "{}",
            d.rejects[0].detail
        );
    }
}

#[test]
fn array_elements_that_are_not_objects() {
    let d = decode(r#"[1, "x", null, [1], {"metric": "hr", "value": 60}, true]"#);
    assert_eq!(d.observations.len(), 1);
    assert_eq!(d.rejects.len(), 5);
    assert!(d.rejects.iter().all(|r| r.reason == RejectReason::Schema));
}

#[test]
fn details_never_echo_the_payload() {
    let secret = "DOE_JOHN_1234";
    for payload in [
        format!(r#"{{"metric": "{secret}", "value": 60}}"#),
        format!(r#"{{"metric": "hr", "value": "{secret}"}}"#),
        format!(r#"{{"metric": "hr", "value": 60, "unit": "{secret}"}}"#),
        format!(r#"{{"metric": "hr", "value": 60, "time": "{secret}"}}"#),
        format!(r#"{{"metric": "hr", "value": 60, "status": "{secret}"}}"#),
        format!(r#"{{"observations": "{secret}"}}"#),
        format!(r#""{secret}""#),
        format!(r#"{{"metric": "hr", "value": {secret}}}"#),
        format!(r#"{{"{secret}": 1}}"#),
    ] {
        let r = only_reject(&payload);
        assert!(!r.detail.contains(secret), "{payload} -> {}", r.detail);
        assert!(!r.detail.is_empty());
    }
}

// --- property tests ---

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let d = decode_observations(&dev(), &bytes, NOW, &TimeLimits::default(), 10);
        prop_assert!(d.observations.len() <= 10);
        let _ = Decoder::default().decode("wardhub/v1/devices/x/obs", &Bytes::from(bytes), NOW);
    }

    #[test]
    fn arbitrary_topics_never_panic(topic in ".{0,100}") {
        let _ = parse_topic(&topic);
    }

    #[test]
    fn mangled_documents_never_panic(
        doc in valid_document(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = serde_json::to_vec(&doc.0).unwrap();
        let i = flip.index(bytes.len());
        bytes[i] = byte;
        let _ = decode_observations(&dev(), &bytes, NOW, &TimeLimits::default(), 100);
        bytes.truncate(cut.index(bytes.len()));
        let _ = decode_observations(&dev(), &bytes, NOW, &TimeLimits::default(), 100);
    }

    #[test]
    fn valid_documents_round_trip(doc in valid_document()) {
        let (json, expected) = doc;
        let bytes = serde_json::to_vec(&json).unwrap();
        let d = decode_observations(&dev(), &bytes, NOW, &TimeLimits::default(), 100);
        prop_assert!(d.rejects.is_empty(), "{:?} {}", d.rejects, json);
        let got: Vec<_> = d
            .observations
            .iter()
            .map(|o| (o.metric.code, o.value, o.observed_at, o.status))
            .collect();
        prop_assert_eq!(got, expected);
    }
}

type Expected = Vec<(u32, f64, Millis, Status)>;

fn valid_observation() -> impl Strategy<Value = (serde_json::Value, (u32, f64, Millis, Status))> {
    (
        0..METRICS.len(),
        0..3usize,
        0.0..=1.0f64,
        prop::option::of(-72 * 3_600_000 + 1..300_000i64),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![
            Status::Valid,
            Status::Questionable,
            Status::Invalid,
            Status::NotAvailable,
        ])),
        any::<bool>(),
    )
        .prop_map(|(m, metric_form, frac, offset, rfc, status, with_unit)| {
            let metric = &METRICS[m];
            let value = metric.min + frac * (metric.max - metric.min);
            let mut obj = serde_json::Map::new();
            obj.insert(
                "metric".into(),
                match metric_form {
                    0 => json!(metric.refid),
                    1 => json!(metric.name),
                    _ => json!(metric.code),
                },
            );
            obj.insert("value".into(), json!(value));
            if with_unit {
                obj.insert("unit".into(), json!(metric.unit));
            }
            let observed_at = match offset {
                Some(off) => {
                    let t = NOW + off;
                    obj.insert(
                        "time".into(),
                        if rfc {
                            json!(format_rfc3339(t))
                        } else {
                            json!(t)
                        },
                    );
                    t
                }
                None => NOW,
            };
            if let Some(s) = status {
                obj.insert("status".into(), json!(s.as_str()));
            }
            (
                serde_json::Value::Object(obj),
                (metric.code, value, observed_at, status.unwrap_or_default()),
            )
        })
}

fn valid_document() -> impl Strategy<Value = (serde_json::Value, Expected)> {
    (
        proptest::collection::vec(valid_observation(), 1..20),
        0..3usize,
    )
        .prop_map(|(obs, shape)| {
            let expected: Expected = obs.iter().map(|(_, e)| *e).collect();
            let list: Vec<_> = obs.into_iter().map(|(v, _)| v).collect();
            let json = match shape {
                0 => json!({ "observations": list }),
                1 => json!(list),
                _ if list.len() == 1 => list[0].clone(),
                _ => json!({ "observations": list, "sent_by": "proptest" }),
            };
            (json, expected)
        })
}

// --- the adapter ---

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> Millis {
        NOW
    }
}

#[derive(Default)]
struct RecordingEvents {
    received: Mutex<usize>,
    rejected: Mutex<Vec<(Option<String>, RejectReason)>>,
}

impl AdapterEvents for RecordingEvents {
    fn message_received(&self, adapter: &'static str, _bytes: usize) {
        assert_eq!(adapter, NAME);
        *self.received.lock().unwrap() += 1;
    }
    fn rejected(&self, adapter: &'static str, device: Option<&str>, reject: &Reject) {
        assert_eq!(adapter, NAME);
        self.rejected
            .lock()
            .unwrap()
            .push((device.map(str::to_owned), reject.reason));
    }
}

fn ingest(max_inflight: usize) -> (MqttJsonIngest, mpsc::Receiver<Ingest>, Arc<RecordingEvents>) {
    let (sink, rx) = Sink::channel(64);
    let events = Arc::new(RecordingEvents::default());
    let ingest = MqttJsonIngest::new(
        MqttJsonConfig {
            max_inflight,
            max_observations: 10,
            ..MqttJsonConfig::default()
        },
        TimeLimits::default(),
        sink,
        events.clone(),
        Arc::new(FixedClock),
    );
    (ingest, rx, events)
}

async fn next_batch(rx: &mut mpsc::Receiver<Ingest>) -> Ingest {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a batch in time")
        .expect("sink open")
}

fn topic(device: &str, kind: &str) -> String {
    format!("wardhub/v1/devices/{device}/{kind}")
}

#[tokio::test]
async fn a_publish_resolves_only_when_the_pipeline_answers() {
    let (ingest, mut rx, events) = ingest(100);
    let p = ingest
        .publish(
            &dev(),
            &topic("mon-01", "obs"),
            Bytes::from_static(
                br#"[{"metric": "hr", "value": 60}, {"metric": "hr", "value": 900}]"#,
            ),
        )
        .await
        .unwrap();
    assert!(!p.is_ready());
    let b = next_batch(&mut rx).await;
    assert_eq!(b.adapter, "mqtt_json");
    assert_eq!(b.observations.len(), 1);
    assert_eq!(b.observations[0].received_at, NOW);
    // The budget holds the queued observation until the answer.
    assert_eq!(ingest.budget_available(), 99);
    let outcome = tokio::spawn(p.outcome());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !outcome.is_finished(),
        "no outcome before the pipeline answers"
    );
    b.reply
        .unwrap()
        .send(IngestReport {
            stored: 1,
            ..IngestReport::default()
        })
        .unwrap();
    assert_eq!(
        outcome.await.unwrap(),
        PublishOutcome::Accepted {
            stored: 1,
            rejected: 1
        }
    );
    assert_eq!(ingest.budget_available(), 100);
    assert_eq!(*events.received.lock().unwrap(), 1);
    assert_eq!(
        *events.rejected.lock().unwrap(),
        [(Some("mon-01".to_owned()), RejectReason::OutOfRange)]
    );
}

#[tokio::test]
async fn refused_publishes_are_counted_and_never_queued() {
    let (ingest, mut rx, events) = ingest(100);
    let cases: [(&str, &str, Refusal); 5] = [
        ("obs", "{not json", Refusal::PayloadFormatInvalid),
        (
            "obs",
            r#"{"metric": "hr", "value": 900}"#,
            Refusal::PayloadFormatInvalid,
        ),
        ("nope", "{}", Refusal::TopicNameInvalid),
        (
            "obs",
            r#"[1,2,3,4,5,6,7,8,9,10,11]"#,
            Refusal::QuotaExceeded,
        ),
        ("../obs", "{}", Refusal::TopicNameInvalid),
    ];
    for (kind, payload, want) in cases {
        let p = ingest
            .publish(
                &dev(),
                &topic("mon-01", kind),
                Bytes::from(payload.to_owned()),
            )
            .await
            .unwrap();
        assert!(p.is_ready(), "{kind} {payload}");
        assert_eq!(
            p.outcome().await,
            PublishOutcome::Refused(want),
            "{kind} {payload}"
        );
    }
    // Another device's topic (the edge's ACL stops it first; this is the second line).
    let p = ingest
        .publish(&dev(), &topic("mon-02", "obs"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        p.outcome().await,
        PublishOutcome::Refused(Refusal::TopicNameInvalid)
    );
    assert!(
        rx.try_recv().is_err(),
        "nothing refused reaches the pipeline"
    );
    assert_eq!(events.rejected.lock().unwrap().len(), 6);
    assert_eq!(ingest.budget_available(), 100);
}

#[tokio::test]
async fn status_and_events_take_the_same_road() {
    let (ingest, mut rx, _) = ingest(100);
    for kind in ["status", "event"] {
        let p = ingest
            .publish(
                &dev(),
                &topic("mon-01", kind),
                Bytes::from_static(br#"{"online": false}"#),
            )
            .await
            .unwrap();
        let b = next_batch(&mut rx).await;
        assert!(b.observations.is_empty());
        assert_eq!(b.messages.len(), 1);
        assert_eq!(b.messages[0].device, dev());
        assert_eq!(
            b.messages[0].kind,
            if kind == "status" {
                DeviceMessageKind::Status
            } else {
                DeviceMessageKind::Event
            }
        );
        // The pipeline refused it as not of its contract: refused whole.
        b.reply
            .unwrap()
            .send(IngestReport {
                messages_rejected: vec![(0, Reject::new(RejectReason::Schema, "x"))],
                ..IngestReport::default()
            })
            .unwrap();
        assert_eq!(
            p.outcome().await,
            PublishOutcome::Refused(Refusal::PayloadFormatInvalid)
        );
    }
}

#[tokio::test]
async fn a_full_budget_makes_the_next_publish_wait() {
    let (ingest, mut rx, _) = ingest(10);
    let ten: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"metric": "hr", "value": {}}}"#, 60 + i))
        .collect();
    let ten = Bytes::from(format!("[{}]", ten.join(",")));
    let first = ingest
        .publish(&dev(), &topic("mon-01", "obs"), ten.clone())
        .await
        .unwrap();
    assert_eq!(ingest.budget_available(), 0);
    let ingest = Arc::new(ingest);
    let second = {
        let ingest = ingest.clone();
        let ten = ten.clone();
        tokio::spawn(async move {
            ingest
                .publish(&dev(), &topic("mon-01", "obs"), ten)
                .await
                .map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !second.is_finished(),
        "waits for room: back-pressure, not loss"
    );
    let b = next_batch(&mut rx).await;
    b.reply
        .unwrap()
        .send(IngestReport {
            stored: 10,
            ..IngestReport::default()
        })
        .unwrap();
    assert!(matches!(
        first.outcome().await,
        PublishOutcome::Accepted { stored: 10, .. }
    ));
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_stopped_pipeline_is_never_an_acceptance() {
    let (ingest, mut rx, _) = ingest(100);
    let (device, obs) = (dev(), topic("mon-01", "obs"));
    let one = || {
        ingest.publish(
            &device,
            &obs,
            Bytes::from_static(br#"{"metric": "hr", "value": 60}"#),
        )
    };
    let p = one().await.unwrap();
    let b = next_batch(&mut rx).await;
    drop(b);
    assert!(matches!(p.outcome().await, PublishOutcome::Failed(_)));
    let p = one().await.unwrap();
    let b = next_batch(&mut rx).await;
    b.reply
        .unwrap()
        .send(IngestReport {
            failed: Some("disk full".into()),
            ..IngestReport::default()
        })
        .unwrap();
    assert!(matches!(p.outcome().await, PublishOutcome::Failed(_)));
    drop(rx);
    assert!(one().await.is_err());
}

#[test]
fn metric_by_name_agrees_with_table() {
    // Guards the round-trip generator: every short name resolves to its own row.
    for m in METRICS {
        assert_eq!(metric_by_name(m.name).map(|x| x.code), Some(m.code));
    }
}

#[test]
fn channels_are_kept_and_checked() {
    let d = decode(
        r#"[{"metric": "spo2", "value": 97, "channel": "finger-1"}, {"metric": "spo2", "value": 95, "channel": "ear"}, {"metric": "spo2", "value": 95, "channel": "no spaces"}, {"metric": "spo2", "value": 95, "channel": 3}]"#,
    );
    assert_eq!(
        d.observations
            .iter()
            .map(|o| o.channel.as_deref())
            .collect::<Vec<_>>(),
        [Some("finger-1"), Some("ear")]
    );
    assert_eq!(d.rejects.len(), 2);
    assert!(d.rejects.iter().all(|r| r.reason == RejectReason::Schema));
    assert_eq!(only_obs(r#"{"metric": "hr", "value": 60}"#).channel, None);
}

/// Real-world MQTT JSON that other projects' devices publish (tests/fixtures/mqtt/real-world,
/// sources in its SOURCES.md): none is of wardhub's contract, so published on a device's
/// observation topic each is refused, with the reason, and nothing is stored. A foreign field
/// that happens to be named like a metric (`spo2`, `temp`) is never read as one.
#[test]
fn real_world_mqtt_json_is_refused_never_misread() {
    use RejectReason::{Malformed, Schema};
    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/mqtt/real-world"
    );
    let expected: &[(&str, RejectReason)] = &[
        ("ayudar-esp8266_connect-announce-plain-text", Malformed),
        ("ayudar-esp8266_ehealth-relay-reconstructed", Schema),
        ("ha-docs_climate-state-trailing-comma", Malformed),
        ("ha-docs_discovery-config-temperature", Schema),
        ("ha-docs_sensor-state-temp-humidity", Schema),
        ("healthdata2mqtt_omron-blood-pressure", Schema),
        ("jiotsensorhub_tasmota-ble-atc-sensor", Schema),
        ("max3010xboard_spo2-connect-announce-bare-number", Schema),
        ("owntracks-android_location", Schema),
        ("shelly-htg3_status-temperature0", Schema),
        ("tasmota-docs_ds18b20-sensor", Schema),
        ("tely01-ava4_bp-biolight", Schema),
        ("tely01-ava4_gateway-heartbeat", Schema),
        ("tely01-ava4_glucose-contour-string-value", Schema),
        ("tely01-ava4_oximeter-jumper", Schema),
        ("tely01-ava4_thermometer-jumper-ir", Schema),
        ("tely01-qube-vital_bp-jumper-patient-fields", Schema),
        ("thingsboard_telemetry-with-ts", Schema),
        ("wifi-thermometer_ha-state-c-literal", Schema),
        ("zigbee2mqtt-io_bridge-groups-bare-array", Schema),
        ("zigbee2mqtt-io_wsdcgq01lm-temp-humidity", Schema),
    ];
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = expected.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every sample needs a row here (and a line in SOURCES.md)"
    );
    let sources = std::fs::read_to_string(format!("{DIR}/SOURCES.md")).unwrap();
    for (name, want) in expected {
        assert!(sources.contains(name), "{name} is not in SOURCES.md");
        let payload = std::fs::read(format!("{DIR}/{name}.json")).unwrap();
        let d = decode_observations(&dev(), &payload, NOW, &TimeLimits::default(), 100);
        assert!(
            d.observations.is_empty(),
            "{name} was read as {:?}",
            d.observations
        );
        assert!(!d.rejects.is_empty(), "{name}: refused and counted");
        assert!(
            d.rejects.iter().all(|r| r.reason == *want),
            "{name}: {:?}",
            d.rejects
        );
    }
}

/// Guards "a device whose clock runs ahead hides its alarms": a time an hour ahead is decoded
/// as the device said (the pipeline corrects it to hub time), never refused.
#[test]
fn a_time_in_the_future_is_kept_for_the_pipeline_to_correct() {
    let hour = 3_600_000;
    let o = only_obs(&format!(
        r#"{{"metric": "spo2", "value": 81, "time": {}}}"#,
        NOW + 10 * 60_000 + hour
    ));
    assert_eq!(o.observed_at, NOW + 10 * 60_000 + hour);
    assert_eq!((o.received_at, o.clock_correction_ms), (NOW, 0));
}
