use proptest::prelude::*;

use super::values::MDC_DIMENSIONS;
use super::*;
use crate::hl7::codes::Codes;
use crate::hl7::message::escape;
use crate::model::{Status, TimeLimits, MDC_NOT_AVAILABLE, METRICS};

const NOW: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/hl7/",
            $name
        ))
    };
}

fn ok(bytes: &[u8]) -> DecodedOru {
    decode(bytes, NOW, &OruOptions::default()).unwrap()
}

fn err(bytes: &[u8]) -> OruError {
    decode(bytes, NOW, &OruOptions::default()).unwrap_err()
}

type Row = (String, &'static str, f64, Millis, Status);

fn rows(d: &DecodedOru) -> Vec<Row> {
    d.observations
        .iter()
        .map(|o| {
            assert_eq!(o.bed, None);
            assert_eq!(o.received_at, NOW);
            (
                o.device_id.to_string(),
                o.metric.name,
                (o.value * 1e6).round() / 1e6,
                o.observed_at,
                o.status,
            )
        })
        .collect()
}

fn row(dev: &str, m: &'static str, v: f64, at: Millis, s: Status) -> Row {
    (dev.to_owned(), m, v, at, s)
}

const SEC: i64 = 1000;
const V: Status = Status::Valid;
const NA: Status = Status::NotAvailable;

#[test]
fn fixture_ihe_pcd01() {
    let d = ok(fixture!("ihe_pcd01_spo2.hl7"));
    let dev = "0012345678ABCDEF";
    let t = NOW - 3 * SEC;
    assert_eq!(
        rows(&d),
        [row(dev, "spo2", 97.0, t, V), row(dev, "pr", 72.0, t, V)]
    );
    assert_eq!(d.obx_of, [4, 5]);
    assert!(d.rejects.is_empty());
    assert_eq!((d.header_rows(), d.ignored_rows()), (3, 1));
    assert_eq!(d.header.control_id, "MSG00001");
    assert_eq!(d.header.version, "2.6");
    assert_eq!(
        d.bed_claim,
        Some(BedClaim {
            point_of_care: "ICU".into(),
            room: String::new(),
            bed: "Bed-07".into()
        })
    );
}

#[test]
fn fixture_ge_like() {
    let d = ok(fixture!("ge_like_vitals.hl7"));
    let dev = "GEB450-0142";
    let t = NOW - 30 * SEC;
    assert_eq!(
        rows(&d),
        [
            row(dev, "hr", 88.0, t, V),
            row(dev, "rr", 16.0, t, V),
            row(dev, "etco2", 38.0, t, V),
            // No OBX-14: the OBR-7 time.
            row(dev, "temp", 37.2, t, V),
        ]
    );
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    assert_eq!(d.ignored_rows(), 1);
    assert_eq!(d.header.version, "2.4");
    assert_eq!(d.bed_claim.as_ref().unwrap().bed, "B");
    assert_eq!(d.bed_claim.as_ref().unwrap().room, "312");
    // The string row's escapes and repetitions, through the parser.
    let bytes = fixture!("ge_like_vitals.hl7");
    let m = Message::parse(bytes).unwrap();
    let st = m
        .segments()
        .iter()
        .filter(|s| s.name() == "OBX")
        .nth(4)
        .unwrap()
        .field(5);
    assert_eq!(st.rep(1).text(), "Sinus & regular");
    assert_eq!(st.rep(2).text(), "Paced");
    assert_eq!(
        m.segment("NTE").unwrap().field(3).text(),
        "Lead II | filter-on"
    );
}

#[test]
fn fixture_ge_like_with_local_time_offset() {
    // The same feed from a gateway configured for UTC+1.
    let opts = OruOptions {
        default_utc_offset_minutes: 60,
        ..OruOptions::default()
    };
    let d = decode(fixture!("ge_like_vitals.hl7"), NOW, &opts).unwrap();
    assert!(d
        .observations
        .iter()
        .all(|o| o.observed_at == NOW - 30 * SEC - 3_600_000));
}

#[test]
fn fixture_mindray_like() {
    let d = ok(fixture!("mindray_like_nibp.hl7"));
    let dev = "00A037FEEDC0FFEE";
    let nibp = NOW - 29 * SEC;
    let t = NOW - 20 * SEC;
    assert_eq!(
        rows(&d),
        [
            row(dev, "nibp_sys", 121.0, nibp, V),
            row(dev, "nibp_dia", 79.0, nibp, V),
            row(dev, "nibp_mean", 93.0, nibp, V),
            row(dev, "temp", 36.8, t, V),
            row(dev, "rr", MDC_NOT_AVAILABLE, t, NA),
        ]
    );
    // Cuff codes are stored under the NIBP metrics.
    assert_eq!(d.observations[0].metric.code, 150021);
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    // NIBP pulse rate and the body position are not wardhub metrics.
    assert_eq!(d.ignored_rows(), 2);
    assert_eq!(d.bed_claim.as_ref().unwrap().bed, "24");
    assert_eq!(d.obx_of, [1, 2, 3, 5, 6]);
}

#[test]
fn fixture_philips_like() {
    let d = ok(fixture!("philips_like_headers.hl7"));
    // The MDS row's id is not a valid device id; the VMD row's serial encloses both rows.
    let dev = "XW25200213";
    let t = NOW - 9_504;
    assert_eq!(
        rows(&d),
        [row(dev, "hr", 60.0, t, V), row(dev, "rr", 14.0, t, V)]
    );
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    assert_eq!((d.header_rows(), d.ignored_rows()), (3, 2));
    assert_eq!(
        d.bed_claim,
        Some(BedClaim {
            point_of_care: "My Unit".into(),
            room: String::new(),
            bed: "Bed1".into()
        })
    );
}

#[test]
fn fixture_multi_obx_with_headers() {
    let d = ok(fixture!("multi_obx_headers.hl7"));
    let dev = "mon-a17";
    let nibp = NOW - 120 * SEC;
    let t = NOW - 2 * SEC;
    assert_eq!(
        rows(&d),
        [
            row(dev, "nibp_sys", 118.0, nibp, V),
            row(dev, "nibp_dia", 76.0, nibp, V),
            row(dev, "nibp_mean", MDC_NOT_AVAILABLE, nibp, NA),
            row(dev, "spo2", 94.0, t, Status::Questionable),
            row(dev, "pr", 0.0, t, NA),
            row(dev, "temp", 37.0, t, V),
        ]
    );
    let rejects: Vec<_> = d
        .rejects
        .iter()
        .map(|r| {
            (
                r.obx,
                r.field,
                r.reject.reason,
                r.device.as_ref().map(|d| d.to_string()),
            )
        })
        .collect();
    assert_eq!(
        rejects,
        [
            (10, 5, RejectReason::OutOfRange, Some(dev.to_owned())),
            (11, 6, RejectReason::UnitMismatch, Some(dev.to_owned())),
        ]
    );
    assert!(d.rejects[0].reject.detail.starts_with("OBX 10: "));
    assert_eq!(d.header_rows(), 3);
}

#[test]
fn fixture_malformed_and_unsupported() {
    let e = err(fixture!("malformed_missing_msh.hl7"));
    assert_eq!(
        (e.ack, e.reject.reason, e.error.code),
        (AckCode::Error, RejectReason::Malformed, 100)
    );
    assert!(e.header.is_none());

    let e = err(fixture!("malformed_bad_delimiters.hl7"));
    assert_eq!(
        (e.ack, e.reject.reason),
        (AckCode::Error, RejectReason::Malformed)
    );
    assert!(e.header.is_none());

    let e = err(fixture!("malformed_truncated.hl7"));
    assert_eq!(
        (e.ack, e.reject.reason, e.error.code),
        (AckCode::Reject, RejectReason::Unsupported, 200)
    );
    assert_eq!(e.header.unwrap().sending_application, ["MON-1"]);

    let e = err(fixture!("unsupported_adt_a01.hl7"));
    assert_eq!(
        (e.ack, e.reject.reason, e.error.code),
        (AckCode::Reject, RejectReason::Unsupported, 200)
    );
    assert_eq!(e.header.unwrap().control_id, "ADT-0001");

    let e = err(fixture!("binary_garbage.bin"));
    assert_eq!(
        (e.ack, e.reject.reason),
        (AckCode::Error, RejectReason::Malformed)
    );
}

#[test]
fn every_fixture_decodes_or_fails_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/hl7");
    let mut n = 0;
    for sub in ["", "real-world"] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str());
            if !path.is_file() || !matches!(ext, Some("hl7" | "bin")) {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let _ = decode(&bytes, NOW, &OruOptions::default());
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} fixtures");
}

fn msg(obx: &[&str]) -> String {
    let mut s = String::from("MSH|^~\\&|MON-9||||20261120095959+0000||ORU^R01|C-1|P|2.6\r");
    for o in obx {
        s.push_str(o);
        s.push('\r');
    }
    s
}

#[test]
fn header_checks() {
    let e = |m: &str| err(m.as_bytes());
    let r = e("MSH|^~\\&|A||||||ORU^R30|1|P|2.6");
    assert_eq!((r.ack, r.error.code), (AckCode::Reject, 201));
    let r = e("MSH|^~\\&|A||||||ORU^R01|1|P|2.7");
    assert_eq!((r.ack, r.error.code), (AckCode::Reject, 203));
    let r = e("MSH|^~\\&|A||||||ORU^R01|1|P|2.2");
    assert_eq!((r.ack, r.error.code), (AckCode::Reject, 203));
    let r = e("MSH|^~\\&|A||||||ORU^R01||P|2.6");
    assert_eq!(
        (r.ack, r.error.code, r.reject.reason),
        (AckCode::Error, 101, RejectReason::Schema)
    );
    for v in ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", ""] {
        assert!(
            decode(
                format!("MSH|^~\\&|A||||||ORU^R01|1|P|{v}").as_bytes(),
                NOW,
                &OruOptions::default()
            )
            .is_ok(),
            "{v}"
        );
    }
}

#[test]
fn row_variants() {
    let one = |obx: &str| {
        let d = ok(msg(&[obx]).as_bytes());
        (
            rows(&d),
            d.rejects
                .iter()
                .map(|r| (r.field, r.reject.reason))
                .collect::<Vec<_>>(),
            d.ignored_rows(),
        )
    };
    let t = NOW - SEC;
    // Refid only (private code first), UCUM unit, OBX-8 flags.
    let (r, _, _) = one("OBX|1|NM|1.2.3^MDC_PULS_OXIM_SAT_O2^MDC||96|%|||||F");
    assert_eq!(r, [row("MON-9", "spo2", 96.0, t, V)]);
    let (r, _, _) = one("OBX|1|NM|MDC_ECG_HEART_RATE||70|bpm");
    assert_eq!(r, [row("MON-9", "hr", 70.0, t, V)]);
    let (r, _, _) = one("OBX|1|NM|147842^HR^MDC||70|/min||H~OFF");
    assert_eq!(r[0].4, NA);
    let (r, _, _) = one("OBX|1|NM|147842^HR^MDC||70|/min||DEMO");
    assert_eq!(r[0].4, Status::Invalid);
    let (r, _, _) = one("OBX|1|NM|147842^HR^MDC||70|/min||HH");
    assert_eq!(r[0].4, V);
    // Status X with a value: cannot be obtained.
    let (r, _, _) = one("OBX|1|NM|147842^HR^MDC||70|/min|||||X");
    assert_eq!(r[0].4, NA);
    // Own OBX-18 EUI-64 with only the universal id.
    let (r, _, _) = one("OBX|1|NM|147842^^MDC||70||||||F|||||||^^0012345678ABCDEF^EUI-64");
    assert_eq!(r[0].0, "0012345678ABCDEF");
    // Deleted or wrong-patient rows, unknown metrics, rows without a value, private systems.
    for obx in [
        "OBX|1|NM|147842^HR^MDC||70|/min|||||D",
        "OBX|1|NM|147842^HR^MDC||70|/min|||||W",
        "OBX|1|NM|999999^MDC_FOO^MDC||70",
        "OBX|1|NM|147842^HR^MDC|||/min",
        "OBX|1|NM|147842^LOCAL^99VENDOR||70",
    ] {
        let (r, rej, ignored) = one(obx);
        assert!(r.is_empty() && rej.is_empty() && ignored == 1, "{obx}");
    }
    // Refusals name their field.
    for (obx, field, reason) in [
        (
            "OBX|1|NM|147842^HR^MDC||seventy|/min",
            5,
            RejectReason::Schema,
        ),
        // (NaN is a "no value" sentinel: see vendor_sentinels_are_not_available_for_that_row_only.)
        ("OBX|1|NM|147842^HR^MDC||inf|/min", 5, RejectReason::Schema),
        (
            "OBX|1|NM|147842^HR^MDC||1e999|/min",
            5,
            RejectReason::NonFinite,
        ),
        (
            "OBX|1|NM|147842^HR^MDC||400|/min",
            5,
            RejectReason::OutOfRange,
        ),
        (
            "OBX|1|NM|147842^HR^MDC||70|266016^MDC_DIM_MMHG^MDC",
            6,
            RejectReason::UnitMismatch,
        ),
        (
            "OBX|1|NM|147842^HR^MDC||70|999999^MDC_DIM_FOO^MDC",
            6,
            RejectReason::UnitMismatch,
        ),
        (
            "OBX|1|NM|147842^HR^MDC||70|/min|||||F|||tomorrow",
            14,
            RejectReason::Schema,
        ),
        (
            "OBX|1|NM|147842^HR^MDC||70|/min|||||F|||20201120110000+0000",
            14,
            RejectReason::TooOld,
        ),
        (
            "OBX|1|NM|147842^HR^MDC||70|/min|||||F|||||||bad id^^^",
            18,
            RejectReason::BadDeviceId,
        ),
    ] {
        let (r, rej, _) = one(obx);
        assert!(r.is_empty(), "{obx}");
        assert_eq!(rej, [(field, reason)], "{obx}");
    }
}

#[test]
fn ambiguous_devices_are_refused_not_guessed() {
    let d = ok(msg(&[
        "OBX|1|NM|147842^HR^MDC|1.2.1.1|70|/min|||||F|||||||dev-a",
        "OBX|2|NM|150456^SPO2^MDC|1.3.1.1|97|%|||||F|||||||dev-b",
        "OBX|3|NM|151562^RR^MDC|1.4.1.1|12|/min|||||F",
    ])
    .as_bytes());
    let devs: Vec<_> = d
        .observations
        .iter()
        .map(|o| o.device_id.to_string())
        .collect();
    assert_eq!(devs, ["dev-a", "dev-b"]);
    assert_eq!(d.rejects.len(), 1);
    assert_eq!(
        (d.rejects[0].obx, d.rejects[0].reject.reason),
        (3, RejectReason::BadDeviceId)
    );

    // With one device named anywhere, rows without OBX-18 are that device's.
    let d = ok(msg(&[
        "OBX|1|NM|147842^HR^MDC|1.2.1.1|70|/min|||||F|||||||dev-a",
        "OBX|2|NM|151562^RR^MDC|1.4.1.1|12|/min|||||F",
    ])
    .as_bytes());
    assert!(d
        .observations
        .iter()
        .all(|o| o.device_id.as_str() == "dev-a"));

    // Header rows scope their ids by OBX-4 path.
    let d = ok(msg(&[
        "OBX|1||69965^MDS^MDC|1.0.0.0|||||||X|||||||mon-1",
        "OBX|2||69965^MDS^MDC|2.0.0.0|||||||X|||||||pump-2",
        "OBX|3|NM|147842^HR^MDC|1.2.1.147842|70|/min|||||F",
        "OBX|4|NM|150456^SPO2^MDC|2.3.1.150456|97|%|||||F",
    ])
    .as_bytes());
    let devs: Vec<_> = d
        .observations
        .iter()
        .map(|o| o.device_id.to_string())
        .collect();
    assert_eq!(devs, ["mon-1", "pump-2"]);
}

#[test]
fn no_device_anywhere_is_refused() {
    let d = ok(b"MSH|^~\\&|||||||ORU^R01|1|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min");
    assert_eq!(d.rejects[0].reject.reason, RejectReason::BadDeviceId);
    // MSH-4 when MSH-3 is empty.
    let d = ok(b"MSH|^~\\&||FAC-MON-2|||||ORU^R01|1|P|2.6\rOBX|1|NM|147842^HR^MDC||70|/min");
    assert_eq!(d.observations[0].device_id.as_str(), "FAC-MON-2");
}

#[test]
fn details_never_echo_patient_data() {
    // PID content must not surface anywhere in what the decoder returns for logs.
    let secret = "DOE_JANE_HOSP123456";
    let bytes = format!(
        "MSH|^~\\&|MON-9||||20261120095959||ORU^R01|1|P|2.6\rPID|||{secret}||{secret}\r\
         OBX|1|NM|147842^HR^MDC||{secret}|/min\rOBX|2|NM|147842^HR^MDC||70|{secret}\r\
         OBX|3|NM|147842^HR^MDC||70|/min|||||F|||{secret}"
    );
    let d = ok(bytes.as_bytes());
    assert_eq!(d.rejects.len(), 3);
    for r in &d.rejects {
        assert!(!r.reject.detail.contains(secret), "{}", r.reject.detail);
    }
}

fn arb_obx() -> impl Strategy<Value = (String, Option<(u32, f64, Millis, Status)>)> {
    (
        0..METRICS.len(),
        0.0..=1.0f64,
        0..72 * 3600i64,
        0..3usize,
        any::<bool>(),
        prop::sample::select(vec!["", "NAV", "questionable", "invalid", "H"]),
    )
        .prop_map(|(m, frac, age_s, unit_form, with_time, flag)| {
            let metric = &METRICS[m];
            // Two decimals, as monitors send them.
            let value = ((metric.min + frac * (metric.max - metric.min)) * 100.0).round() / 100.0;
            let value = value.clamp(metric.min, metric.max);
            let unit = match unit_form {
                0 => String::new(),
                1 => format!("{}^^UCUM", escape(metric.unit)),
                _ => {
                    let (code, refid, _) = MDC_DIMENSIONS
                        .iter()
                        .find(|(_, _, u)| *u == metric.unit)
                        .unwrap();
                    format!("{code}^{refid}^MDC")
                }
            };
            let at = NOW - age_s * 1000;
            let time = if with_time {
                crate::hl7::message::format_hl7_time(at)
            } else {
                String::new()
            };
            let status = match flag {
                "NAV" => Status::NotAvailable,
                "questionable" => Status::Questionable,
                "invalid" => Status::Invalid,
                _ => Status::Valid,
            };
            let obx = format!(
                "OBX|1|NM|{}^{}^MDC|1.1.1.{}|{}|{}||{}|||R|||{}",
                metric.code, metric.refid, metric.code, value, unit, flag, time
            );
            let obs_time = if with_time { at } else { NOW - SEC };
            (obx, Some((metric.code, value, obs_time, status)))
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes, NOW, &OruOptions::default());
    }

    /// Random bytes alone almost never start with `MSH`, so they stop at the header check;
    /// behind a valid header they reach the segment, field and OBX parsing.
    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        segment in prop::sample::select(vec!["", "OBX|", "OBX|1|NM|", "PID|", "OBR|"]),
    ) {
        let mut m = msg(&[]).into_bytes();
        m.extend_from_slice(segment.as_bytes());
        m.extend_from_slice(&bytes);
        let _ = decode(&m, NOW, &OruOptions::default());
    }

    #[test]
    fn arbitrary_obx_fields_never_panic(fields in proptest::collection::vec("[ -~]{0,20}", 0..20)) {
        let obx = format!("OBX|{}", fields.join("|"));
        let _ = decode(msg(&[&obx, "PV1||I|a^b^c&d"]).as_bytes(), NOW, &OruOptions::default());
    }

    #[test]
    fn generated_messages_round_trip(obx in proptest::collection::vec(arb_obx(), 1..15)) {
        let segs: Vec<&str> = obx.iter().map(|(s, _)| s.as_str()).collect();
        let d = ok(msg(&segs).as_bytes());
        prop_assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        let got: Vec<_> = d
            .observations
            .iter()
            .map(|o| (o.metric.code, o.value, o.observed_at, o.status))
            .collect();
        let want: Vec<_> = obx.iter().filter_map(|(_, e)| *e).collect();
        prop_assert_eq!(got, want);
    }
}

// ---- Issue 12: real-world HL7, no fabricated values, every row accounted for ----

fn oru12(obx: &[&str]) -> Vec<u8> {
    let mut m = String::from(
        "MSH|^~\\&|MON-1||WARDHUB||20261120095955+0000||ORU^R01|7|P|2.6\rOBR|1|||x|||20261120095955+0000",
    );
    for o in obx {
        m.push('\r');
        m.push_str(o);
    }
    m.into_bytes()
}

fn reasons(d: &DecodedOru) -> Vec<SkipReason> {
    d.skipped.iter().map(|s| s.reason).collect()
}

/// Guards "waveform rows become numerics": an NA row of `MDC_PULS_OXIM_SAT_O2_WAVEFORM` was
/// stored as a valid SpO2 of 0 %, and raised a desaturation alarm.
#[test]
fn waveform_rows_are_never_numerics() {
    let d = ok(&oru12(&[
        "OBX|1014|NA|150456^MDC_PULS_OXIM_SAT_O2_WAVEFORM^MDC|1.1.1.1004|0.0^0.0290^0.1^0.2|262688^MDC_DIM_PERCENT^MDC|||||F",
        "OBX|1015|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.1.1.1004.1|125|264640^MDC_DIM_HZ^MDC|||||F",
        "OBX|1016|MA|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1005|1^2~3^4|262688^MDC_DIM_PERCENT^MDC|||||F",
    ]));
    assert!(d.observations.is_empty(), "{:?}", rows(&d));
    assert_eq!(reasons(&d), [SkipReason::Waveform; 3]);
}

#[test]
fn only_nm_and_plain_sn_are_numbers() {
    let d = ok(&oru12(&[
        "OBX|1|ST|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|97|%|||||F",
        "OBX|2|CWE|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|97^x^y|%|||||F",
        "OBX|3|SN|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|<^90|%|||||F",
        "OBX|4|SN|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|^90^-^95|%|||||F",
        "OBX|5|SN|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|^96|%|||||F",
        "OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|98|%|||||F",
    ]));
    assert_eq!(
        d.observations.iter().map(|o| o.value).collect::<Vec<_>>(),
        [96.0, 98.0]
    );
    assert_eq!(reasons(&d), [SkipReason::NotNumeric; 4]);
}

/// Guards "skipped rows leave no trace": unknown codes are skipped with a reason, one per
/// row, so the adapter can count and log them.
#[test]
fn every_skipped_row_has_a_reason() {
    let d = ok(&oru12(&[
        "OBX|1||69642^MDC_DEV_ANALY_SAT_O2_MDS^MDC|1.0.0.0|||||||X",
        "OBX|2|NM|149522^MDC_PULS_RATE^MDC|1.3.1.149522|59|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F",
        "OBX|3|NM|149546^MDC_PULS_RATE_NON_INV^MDC|1.1.1.4|63|{beat}/min|||||F",
        "OBX|4|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456||262688^MDC_DIM_PERCENT^MDC|||||F",
        "OBX|5|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||D",
        "OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||F",
    ]));
    assert_eq!(
        reasons(&d),
        [
            SkipReason::Header,
            SkipReason::UnknownMetric,
            SkipReason::UnknownMetric,
            SkipReason::NoValue,
            SkipReason::Deleted
        ]
    );
    assert_eq!(d.observations.len(), 1);
    assert_eq!(
        d.skipped.iter().map(|s| s.obx).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

/// Guards `8625-6^PR^LN` (an ECG P-R interval in ms) stored as a pulse rate of 160/min.
#[test]
fn a_display_text_never_selects_a_metric() {
    let d = ok(&oru12(&[
        "OBX|1|NM|8625-6^PR^LN||160|ms|||||F",
        "OBX|2|NM|8867-4^Heart rate^LN||72|/min|||||F",
    ]));
    assert_eq!(rows(&d).iter().map(|r| r.1).collect::<Vec<_>>(), ["hr"]);
    assert_eq!(reasons(&d), [SkipReason::UnknownMetric]);
    // An MDC code whose reference id names something else is refused, not guessed.
    let d = ok(&oru12(&[
        "OBX|1|NM|150021^MDC_PRESS_BLD_ART_SYS^MDC|1.1.1|132|266016^MDC_DIM_MMHG^MDC|||||F",
    ]));
    assert!(d.observations.is_empty());
    assert_eq!(d.rejects.len(), 1);
    assert_eq!(
        (d.rejects[0].field, d.rejects[0].reject.reason),
        (3, RejectReason::Schema)
    );
}

/// Guards "vendor no-value sentinels are answered AE forever": -99.9 (Mindray, probe off) and
/// -100 are not-available for that row; the rest of the message is kept.
#[test]
fn vendor_sentinels_are_not_available_for_that_row_only() {
    let d = ok(&oru12(&[
        "OBX|1|NM|150344^MDC_TEMP^MDC|1.13.1.150344|-99.9|268192^MDC_DIM_DEGC^MDC|||||F",
        "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|-100|262688^MDC_DIM_PERCENT^MDC|||||F",
        "OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842|NaN|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F",
        "OBX|4|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|71|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F",
    ]));
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    let got: Vec<(&str, Status)> = d
        .observations
        .iter()
        .map(|o| (o.metric.name, o.status))
        .collect();
    assert_eq!(got, [("temp", NA), ("spo2", NA), ("hr", NA), ("pr", V)]);
    assert_eq!(d.sentinel_rows, 3);
    // A sender's own sentinel, configured for it alone.
    let mut opts = OruOptions::default();
    opts.senders.push((
        "MON-1".into(),
        SenderRule {
            sentinels: vec![71.0],
            ..SenderRule::default()
        },
    ));
    let d = decode(
        &oru12(&["OBX|1|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1|71|/min|||||F"]),
        NOW,
        &opts,
    )
    .unwrap();
    assert_eq!(d.observations[0].status, NA);
}

/// Guards "MDC_DIM_KILO_PASCAL is not a known unit": etCO2 in kPa is converted.
#[test]
fn kilopascal_and_cm_h2o_are_converted() {
    let d = ok(&oru12(&[
        "OBX|1|NM|151708^MDC_AWAY_CO2_ET^MDC|1.5.1|5.3|265987^MDC_DIM_KILO_PASCAL^MDC|||||F",
        "OBX|2|NM|151708^MDC_AWAY_CO2_ET^MDC|1.5.2|40|266016^MDC_DIM_MMHG^MDC|||||F",
    ]));
    let v: Vec<f64> = d
        .observations
        .iter()
        .map(|o| (o.value * 10.0).round() / 10.0)
        .collect();
    assert_eq!(v, [39.8, 40.0]);
    assert!((crate::model::MMHG_PER_CMH2O * 10.0 - 7.355).abs() < 0.001);
}

proptest! {
    /// No OBX row of a random mix of types, codes and values is both unstored and
    /// unaccounted for: observations + rejects + skips = OBX rows, and a row of a type that
    /// is not a number never becomes an observation.
    #[test]
    fn every_row_is_accounted_for(rows in proptest::collection::vec(
        (
            prop_oneof![Just(""), Just("NM"), Just("SN"), Just("NA"), Just("MA"), Just("ST"), Just("CWE"), Just("TX")],
            prop_oneof![Just("150456^MDC_PULS_OXIM_SAT_O2^MDC"), Just("149522^MDC_PULS_RATE^MDC"), Just("8867-4^HR^LN"), Just("8625-6^PR^LN"), Just("x^HR^99X"), Just("150021^MDC_PRESS_BLD_ART_SYS^MDC")],
            prop_oneof![Just(""), Just("97"), Just("-99.9"), Just("8388607"), Just("abc"), Just("^96"), Just("1^2^3"), Just("400")],
            prop_oneof![Just("F"), Just("X"), Just("D")],
        ),
        0..20,
    )) {
        let obx: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, (t, c, v, st))| format!("OBX|{}|{t}|{c}|1.{i}.1|{v}|%|||||{st}", i + 1))
            .collect();
        let refs: Vec<&str> = obx.iter().map(String::as_str).collect();
        let d = ok(&oru12(&refs));
        prop_assert_eq!(d.observations.len() + d.rejects.len() + d.skipped.len(), rows.len());
        for (i, o) in d.obx_of.iter().enumerate() {
            let t = rows[o - 1].0;
            prop_assert!(t == "NM" || t == "SN", "row {} of type {} became {:?}", o, t, d.observations[i]);
        }
        let mut seen: Vec<usize> = d.obx_of.clone();
        seen.extend(d.rejects.iter().map(|r| r.obx));
        seen.extend(d.skipped.iter().map(|s| s.obx));
        seen.sort();
        prop_assert_eq!(seen, (1..=rows.len()).collect::<Vec<_>>());
    }
}

/// One real-world message: what it must produce (`tests/fixtures/hl7/real-world`, each file
/// with its source in SOURCES.md and its rows described in `<name>.expect.toml`).
struct RealWorld {
    file: &'static str,
    /// Metric and status of each observation, in row order.
    stored: &'static [(&'static str, Status)],
    rejected: usize,
    /// How many rows are skipped for each reason.
    skipped: &'static [(SkipReason, usize)],
}

const INV: Status = Status::Invalid;
use SkipReason::{Header as HDR, NotNumeric as NN, UnknownMetric as UNK, Waveform as WAVE};

static REAL_WORLD: &[RealWorld] = &[
    RealWorld {
        file: "comen-php-sender_comen-nc-two-spo2",
        stored: &[
            ("spo2", V),
            ("spo2", V),
            ("rr", V),
            ("temp", V),
            ("nibp_sys", V),
            ("nibp_dia", V),
            ("nibp_mean", V),
        ],
        rejected: 0,
        skipped: &[(UNK, 5), (NN, 1)],
    },
    RealWorld {
        file: "egateway-tsx_mindray-egateway-gateway-dummy",
        stored: &[("spo2", V), ("pr", V), ("rr", V), ("hr", V)],
        rejected: 0,
        skipped: &[(UNK, 9)],
    },
    RealWorld {
        file: "hl7-mindray-rs_benevision-bench-loinc",
        stored: &[("spo2", V), ("hr", V), ("rr", V), ("temp", V)],
        rejected: 0,
        skipped: &[(NN, 1)],
    },
    RealWorld {
        file: "hl7-mindray-rs_benevision-n19-unknown-code",
        stored: &[("hr", V)],
        rejected: 0,
        skipped: &[(UNK, 1)],
    },
    RealWorld {
        file: "icu-heart_mindray-egateway-dummy-waveform",
        stored: &[],
        rejected: 0,
        skipped: &[(WAVE, 32)],
    },
    RealWorld {
        // 8480-6 / 8462-4 are blood pressures of no stated method: not NIBP.
        file: "nc5-py-test_bench-simulator-loinc",
        stored: &[("hr", V), ("spo2", V), ("temp", V)],
        rejected: 0,
        skipped: &[(UNK, 2)],
    },
    RealWorld {
        // MDC_PRESS_BLD_ART_* under the non-invasive codes: refused, never stored as NIBP.
        file: "nc5-py-test_comen-nc5-arterial",
        stored: &[],
        rejected: 2,
        skipped: &[],
    },
    RealWorld {
        file: "nc5-py-test_comen-nc5-mdc-coded",
        stored: &[
            ("hr", V),
            ("pr", V),
            ("spo2", V),
            ("temp", V),
            ("rr", V),
            ("spo2", NA),
        ],
        rejected: 0,
        skipped: &[(UNK, 5)],
    },
    RealWorld {
        file: "nist-hub-ts_nist-acme-gateway-nibp",
        stored: &[("nibp_sys", V), ("nibp_dia", V), ("nibp_mean", V)],
        rejected: 0,
        skipped: &[(HDR, 3), (UNK, 1)],
    },
    RealWorld {
        file: "panda666789_mindray-ecg-pleth-waveform",
        stored: &[],
        rejected: 0,
        skipped: &[(WAVE, 8)],
    },
    RealWorld {
        file: "vs900-hapi-notes_mindray-vs900-vitals",
        stored: &[
            ("spo2", V),
            ("pr", V),
            ("nibp_sys", V),
            ("nibp_mean", V),
            ("nibp_dia", V),
            ("temp", V),
        ],
        rejected: 0,
        skipped: &[(UNK, 1)],
    },
    RealWorld {
        // OBX-8 DEMO: demo data is never valid.
        file: "vs900-ts-parser_mindray-vs900-demo-mode",
        stored: &[
            ("spo2", INV),
            ("pr", INV),
            ("nibp_sys", INV),
            ("nibp_mean", INV),
            ("nibp_dia", INV),
        ],
        rejected: 0,
        skipped: &[(UNK, 1)],
    },
    RealWorld {
        file: "hapi-hl7v2_continua-bp-timesync-dtm",
        stored: &[("nibp_sys", V), ("nibp_dia", V), ("nibp_mean", V)],
        rejected: 0,
        skipped: &[(NN, 2), (HDR, 2)],
    },
    RealWorld {
        // SN values (`=^119`), codes in LOINC alternates with instances (`8867-4&1`), the
        // arterial pressures under generic LOINC codes unknown, ST rows without values.
        file: "inicu-java_draeger-infinity-sn-loinc",
        stored: &[("hr", V), ("pr", V), ("spo2", V)],
        rejected: 0,
        skipped: &[(UNK, 4), (NN, 12)],
    },
    RealWorld {
        // Display names as codes of a "Local" system: no table, unknown.
        file: "hl7lite-emory_capsule-ecg-local-codes",
        stored: &[],
        rejected: 0,
        skipped: &[(UNK, 2)],
    },
    RealWorld {
        file: "bbraun-engine-py_spacecom-lvp-pump",
        stored: &[],
        rejected: 0,
        skipped: &[(HDR, 1), (NN, 3)],
    },
    RealWorld {
        // Arterial, pulmonary artery and invasive pulse: not metrics wardhub stores yet.
        file: "ipf_aware-gateway-icu-multichannel",
        stored: &[("hr", V)],
        rejected: 0,
        skipped: &[(UNK, 8)],
    },
    RealWorld {
        // Two devices named in OBX-18: the row without one is refused, not guessed; status D
        // is skipped; non-MDC numbers under MDC names are unknown.
        file: "ipf_pcd01-maximum-status-flags",
        stored: &[("nibp_sys", V)],
        rejected: 1,
        skipped: &[(UNK, 4), (HDR, 3), (SkipReason::Deleted, 1)],
    },
    RealWorld {
        file: "ipf_continua-thermometer-fahr",
        stored: &[("temp", V)],
        rejected: 0,
        skipped: &[(HDR, 1)],
    },
    RealWorld {
        file: "ipf_continua-oximeter-pleth-na",
        stored: &[("spo2", V)],
        rejected: 0,
        skipped: &[(HDR, 1), (WAVE, 1)],
    },
    RealWorld {
        file: "ipf_continua-scale-two-groups",
        stored: &[],
        rejected: 0,
        skipped: &[(NN, 4), (HDR, 2), (UNK, 6)],
    },
    RealWorld {
        file: "cdog-storm-java_continua-glucose-mgdl",
        stored: &[],
        rejected: 0,
        skipped: &[(HDR, 1), (UNK, 1)],
    },
    RealWorld {
        file: "northern-go-selfcheck_anesthesia-pip-cmh2o",
        stored: &[],
        rejected: 0,
        skipped: &[(UNK, 1)],
    },
    RealWorld {
        // Mindray XH80X: -999 and -99.9 mean "no value".
        file: "xh80x-go-test_mindray-xh80x-sentinels",
        stored: &[("nibp_sys", NA), ("spo2", NA), ("hr", NA), ("temp", NA)],
        rejected: 0,
        skipped: &[],
    },
];

fn real_world(name: &str) -> (Vec<u8>, toml::Value) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hl7/real-world"
    );
    let hl7 = std::fs::read(format!("{dir}/{name}.hl7")).unwrap();
    let facts = std::fs::read_to_string(format!("{dir}/{name}.expect.toml")).unwrap();
    (hl7, toml::from_str(&facts).unwrap())
}

/// The real-world corpus, table-driven: what each message must produce, and for every
/// message that each OBX row is accounted for, that only NM/SN rows become observations,
/// and that a stored value is the row's OBX-5 (or not-available).
#[test]
fn real_world_messages() {
    let opts = OruOptions {
        // These messages are years old, some from the future of their senders' clocks.
        limits: TimeLimits {
            max_future_ms: i64::MAX / 4,
            max_age_ms: i64::MAX / 4,
        },
        ..OruOptions::default()
    };
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hl7/real-world"
    );
    let on_disk = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "hl7")
        })
        .count();
    assert_eq!(
        on_disk,
        REAL_WORLD.len(),
        "every real-world message has an expectation"
    );
    for case in REAL_WORLD {
        let (bytes, facts) = real_world(case.file);
        let d = decode(&bytes, NOW, &opts).unwrap_or_else(|e| panic!("{}: {e:?}", case.file));
        let obx = facts["obx"].as_array().unwrap();
        assert_eq!(
            d.observations.len() + d.rejects.len() + d.skipped.len(),
            obx.len(),
            "{}: every row accounted for",
            case.file
        );
        let got: Vec<(&str, Status)> = d
            .observations
            .iter()
            .map(|o| (o.metric.name, o.status))
            .collect();
        assert_eq!(got, case.stored, "{}", case.file);
        assert_eq!(
            d.rejects.len(),
            case.rejected,
            "{}: {:?}",
            case.file,
            d.rejects
        );
        for (reason, n) in SkipReason::ALL
            .iter()
            .map(|r| (*r, d.skipped.iter().filter(|s| s.reason == *r).count()))
        {
            let want = case
                .skipped
                .iter()
                .find(|(r, _)| *r == reason)
                .map_or(0, |(_, n)| *n);
            assert_eq!(
                n,
                want,
                "{}: rows skipped as {}",
                case.file,
                reason.as_str()
            );
        }
        for (o, n) in d.observations.iter().zip(&d.obx_of) {
            let row = &obx[n - 1];
            let t = row["type"].as_str().unwrap();
            assert!(
                t == "NM" || t == "SN",
                "{}: OBX {n} of type {t} stored",
                case.file
            );
            if o.status != NA {
                // An SN is `comparator^number`.
                let text = row["value"].as_str().unwrap();
                let written: f64 = text.rsplit('^').next().unwrap().parse().unwrap();
                let unit = row["unit"].as_str().unwrap_or("");
                let converted = if unit.contains("FAHR") || unit.eq_ignore_ascii_case("degF") {
                    (written - 32.0) * 5.0 / 9.0
                } else {
                    written
                };
                assert!(
                    (o.value - converted).abs() < 1e-9,
                    "{}: OBX {n} {} != {}",
                    case.file,
                    o.value,
                    converted
                );
            }
        }
    }
}

/// Guards "a message whose MSH-3 is a product name (`NC_Monitor`) with the serial in MSH-4 is
/// filed under the product name": with the sender's rule `msh4`, each monitor is itself.
#[test]
fn a_senders_identity_rule_names_its_device() {
    let m = |serial: &str| {
        format!(
            "MSH|^~\\&|NC_Monitor|{serial}|||20261120095955||ORU^R01|1|P|2.6\rOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1|97|262688^MDC_DIM_PERCENT^MDC|||||F"
        )
        .into_bytes()
    };
    // By default MSH-3 names it: every monitor of the model would be one device.
    assert_eq!(
        ok(&m("KC261551373G")).observations[0].device_id.as_str(),
        "NC_Monitor"
    );
    let mut opts = OruOptions::default();
    opts.senders.push((
        "nc_monitor".into(),
        SenderRule {
            identity: Identity::Msh4,
            utc_offset_minutes: Some(60),
            ..SenderRule::default()
        },
    ));
    let d = decode(&m("KC261551373G"), NOW, &opts).unwrap();
    assert_eq!(d.observations[0].device_id.as_str(), "KC261551373G");
    // Its times are its local time, UTC+1: 09:59:55 local is 08:59:55 UTC.
    assert_eq!(d.observations[0].observed_at, NOW - 3600 * SEC - 5 * SEC);
    assert_eq!(
        decode(&m("KC2"), NOW, &opts).unwrap().observations[0]
            .device_id
            .as_str(),
        "KC2"
    );
    // An MSH-4 rule with an empty MSH-4: refused, not guessed.
    assert!(decode(&m(""), NOW, &opts).is_err());
}

/// Philips MDIL (IntelliVue Information Center, Efficia, SureSigns): vendor-local codes are
/// read only through the shipped table (codes.rs `VENDOR`, sources in vendor_codes.toml), and
/// MDIL units (`0004-0aa0^bpm^MDIL`) as MDC dimensions. The rows follow the shape of the
/// Philips central capture and the "Sample from Philips Center Doc" listed in VENDOR_CODES.md.
#[test]
fn philips_mdil_codes_and_units_are_read_through_the_shipped_table() {
    let msg = [
        "MSH|^~\\&|PIIC|Philips|||20261120095955||ORU^R01|77|P|2.3",
        "PID|1||X",
        "OBR|1",
        "OBX|1|NM|0002-4182^HR^MDIL|1|72|0004-0aa0^bpm^MDIL|||||F||||||mon-ph",
        "OBX|2|NM|0002-4bb8^SpO2^MDIL|2|97|0004-0220^%^MDIL|||||F||||||mon-ph",
        "OBX|3|NM|0002-4a05^NBPs^MDIL|3|121|0004-0f20^mmHg^MDIL|||||F||||||mon-ph",
        "OBX|4|NM|0002-500a^RR^MDIL|4|16|0004-0ae0^rpm^MDIL|||||F||||||mon-ph",
        "OBX|5|NM|0002-4b60^Tcore^MDIL|5|37.2|0004-17a0^°C^MDIL|||||F||||||mon-ph",
        // Not in the table: the generic "Resp" code and an unknown MDIL code are skipped as
        // unknown metrics, never guessed from their display text.
        "OBX|6|NM|0002-5000^Resp^MDIL|6|16|0004-0ae0^rpm^MDIL|||||F||||||mon-ph",
        "OBX|7|NM|0002-4bb0^Perf^MDIL|7|1.2|0004-0200^^MDIL|||||F||||||mon-ph",
    ]
    .join("\r");
    let d = ok(msg.as_bytes());
    let got: Vec<(&str, f64)> = d
        .observations
        .iter()
        .map(|o| (o.metric.name, o.value))
        .collect();
    assert_eq!(
        got,
        [
            ("hr", 72.0),
            ("spo2", 97.0),
            ("nibp_sys", 121.0),
            ("rr", 16.0),
            ("temp", 37.2)
        ]
    );
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    let skipped: Vec<(usize, SkipReason)> = d.skipped.iter().map(|s| (s.obx, s.reason)).collect();
    assert_eq!(
        skipped,
        [
            (6, SkipReason::UnknownMetric),
            (7, SkipReason::UnknownMetric)
        ]
    );
    // An MDIL unit that is not the metric's is refused for that row only.
    let bad = "MSH|^~\\&|PIIC|Philips|||20261120095955||ORU^R01|78|P|2.3\rOBX|1|NM|0002-4182^HR^MDIL|1|72|0004-0f20^mmHg^MDIL|||||F||||||mon-ph\rOBX|2|NM|0002-4bb8^SpO2^MDIL|2|97|0004-0220^%^MDIL|||||F||||||mon-ph";
    let d = ok(bad.as_bytes());
    assert_eq!(d.observations.len(), 1);
    assert_eq!(d.rejects.len(), 1);
}

/// The built-in vendor table is the documented one (vendor_codes.toml, every row with its
/// source), row for row.
#[test]
fn the_shipped_vendor_table_is_the_documented_one() {
    #[derive(serde::Deserialize)]
    struct File {
        codes: Vec<Row>,
    }
    #[derive(serde::Deserialize)]
    struct Row {
        system: String,
        code: String,
        metric: String,
        source: String,
        note: String,
    }
    let f: File = toml::from_str(include_str!("../vendor_codes.toml")).unwrap();
    assert!(!f.codes.is_empty());
    for r in &f.codes {
        assert!(
            !r.source.trim().is_empty() && !r.note.trim().is_empty(),
            "{}",
            r.code
        );
        let c = Codes::default()
            .metric([&r.code, "", &r.system, "", "", ""])
            .unwrap_or_else(|e| panic!("{} {}: {e:?}", r.system, r.code));
        assert_eq!(c.name, r.metric, "{} {}", r.system, r.code);
    }
    assert_eq!(
        crate::hl7::codes::vendor_rows(),
        f.codes.len(),
        "every shipped row is documented"
    );
}
