use proptest::prelude::*;

use super::*;
use crate::acm::pcd04::{
    build_report_alarm, AcmAlarm, AcmKind, AcmPhase, AcmPriority, AcmState, Pcd04Options,
};
use crate::hl7::message::parse_hl7_time;

const T0: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z

fn ok(bytes: &[u8]) -> AlarmStatus {
    match decode_status(bytes) {
        Ok((_, s)) => s,
        Err(e) => panic!("{e:?}"),
    }
}

fn err(bytes: &[u8]) -> StatusError {
    decode_status(bytes).unwrap_err()
}

/// A PCD-05 with this MSH-9 and these segments after the MSH.
fn ora(msh9: &str, segments: &[&str]) -> String {
    let mut s = format!("MSH|^~\\&|AM||WARDHUB||20261120100500+0000||{msh9}|S-1|P|2.6\r");
    for seg in segments {
        s.push_str(seg);
        s.push('\r');
    }
    s
}

const OBR: &str = "OBR|1||42^WARDHUB|196616^MDC_EVT_ALARM^MDC";

/// An OBR with this OBR-3 and OBR-29.
fn obr_with(obr3: &str, obr29: &str) -> String {
    format!(
        "OBR|1||{obr3}|196616^MDC_EVT_ALARM^MDC{}|{obr29}",
        "|".repeat(24)
    )
}

fn status(text: &str) -> AlarmStatus {
    ok(ora(
        "ORA^R41^ORA_R41",
        &[OBR, &format!("PRT|1|AD|^{text}^IHE_PCD_ACM")],
    )
    .as_bytes())
}

#[test]
fn the_draeger_sample() {
    let sample = include_bytes!("../samples/draeger_pcd05_delivered.hl7");
    let (h, s) = decode_status(sample).unwrap();
    assert_eq!(
        (h.message_type.as_str(), h.version.as_str()),
        ("ORA", "2.7")
    );
    assert_eq!(
        s,
        AlarmStatus {
            alarm_id: 1,
            status: DeliveryStatus::Delivered,
            recipient: None,
            at: parse_hl7_time("20191105183942", 0),
            control_id: "79".into(),
        }
    );
}

#[test]
fn every_status_round_trips_through_the_builder() {
    for (i, st) in DeliveryStatus::ALL.into_iter().enumerate() {
        let s = AlarmStatus {
            alarm_id: 1_000 + i as u64,
            status: st,
            recipient: Some(format!("N-{i} ^&|")),
            at: Some(T0 + i as i64 * 1000),
            control_id: format!("S-{i}"),
        };
        let msg = build_status(&s, "AM", "WARDHUB", T0 + 99_000);
        let (h, back) = decode_status(msg.as_bytes()).unwrap();
        assert_eq!(back, s, "{msg}");
        assert_eq!(h.trigger, "R41");
        assert_eq!(DeliveryStatus::from_text(st.as_str()), Some(st));
        assert_eq!(
            DeliveryStatus::from_text(&format!(" {} ", st.as_str().to_lowercase())),
            Some(st)
        );
    }
    let accepted: Vec<_> = DeliveryStatus::ALL
        .into_iter()
        .filter(|s| s.is_accepted())
        .collect();
    assert_eq!(accepted.len(), 4);
    assert!(!DeliveryStatus::Rejected.is_accepted());
}

#[test]
fn golden_built_status() {
    let s = AlarmStatus {
        alarm_id: 42,
        status: DeliveryStatus::Read,
        recipient: Some("N-0815".into()),
        at: Some(T0),
        control_id: "S-9".into(),
    };
    assert_eq!(
        build_status(&s, "AM", "WARDHUB", T0 + 500),
        "MSH|^~\\&|AM||WARDHUB||20261120100000.500+0000||ORA^R41^ORA_R41|S-9|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_005^IHE PCD^1.3.6.1.4.1.19376.1.6.1.5.1^ISO\r\
         OBR|1||42^WARDHUB|196616^MDC_EVT_ALARM^MDC|||20261120100000.500+0000||||||||||||||||||||||^42&WARDHUB\r\
         PRT|42^AM|AD|Read^Read^IHE_PCD_ACM|AAP^Alert Acknowledging Provider^HL70912|N-0815||||||20261120100000.000+0000\r"
    );
}

/// What `tests/peers/acm_manager.py` sends for a later indication of alarm 7 (with the MSA
/// of the TF's work in progress, and `PRT-2` `UP` after the first status).
#[test]
fn the_test_peers_status() {
    let msg = "MSH|^~\\&|ACM_TEST_AM||WARDHUB||20261202021038.715+0000||ORA^R41^ORA_R41|AM4242-3|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_005^IHE PCD^1.3.6.1.4.1.19376.1.6.1.5.1^ISO\r\
               MSA|AA|A7-3\r\
               OBR|1||7-A7-3^WARDHUB|196616^MDC_EVT_ALARM^MDC|||20261202021038.715+0000||||||||||||||||||||||^7&WARDHUB\r\
               PRT|7^ACM_TEST_AM|UP|Accepted^Accepted^IHE_PCD_ACM|AAP^Alert Acknowledging Provider^HL70912|AM-TEST-NURSE||||||20261202021038.715+0000\r";
    assert_eq!(
        ok(msg.as_bytes()),
        AlarmStatus {
            alarm_id: 7,
            status: DeliveryStatus::Accepted,
            recipient: Some("AM-TEST-NURSE".into()),
            at: parse_hl7_time("20261202021038.715+0000", 0),
            control_id: "AM4242-3".into(),
        }
    );
}

/// The hub's PCD-04 and an AM that echoes either identifier of it: the alarm id comes back.
#[test]
fn the_alarm_id_comes_back_from_what_pcd04_sent() {
    let alarm = AcmAlarm {
        id: 9_007_199_254_740_993,
        ward: "ICU".into(),
        bed: Some("B-07".into()),
        patient: None,
        device_id: "MON-7".into(),
        priority: AcmPriority::High,
        kind: AcmKind::Technical,
        metric: None,
        value: None,
        limit: None,
        text: "Leads off".into(),
        phase: AcmPhase::Update,
        state: AcmState::Active,
        acknowledged: false,
        occurred_at: T0,
        raised_at: T0,
        recipient: None,
    };
    let pcd04 = build_report_alarm(&alarm, "CTRL-17", T0, &Pcd04Options::default());
    let m = Message::parse(pcd04.as_bytes()).unwrap();
    let obr = m.segment("OBR").unwrap();
    let (obr3, obr29) = (
        std::str::from_utf8(obr.field(3).raw()).unwrap(),
        std::str::from_utf8(obr.field(29).raw()).unwrap(),
    );
    let prt = "PRT|1|AD|^Accepted^IHE_PCD_ACM";
    // OBR-3 only (as Dräger's AM), OBR-29 only, and both.
    for seg in [
        format!("OBR|1||{obr3}|196616^MDC_EVT_ALARM^MDC"),
        format!("OBR|1|||196616^MDC_EVT_ALARM^MDC{}|{obr29}", "|".repeat(24)),
        format!(
            "OBR|1||{obr3}|196616^MDC_EVT_ALARM^MDC{}|{obr29}",
            "|".repeat(24)
        ),
    ] {
        let s = ok(ora("ORA^R41^ORA_R41", &[&seg, prt]).as_bytes());
        assert_eq!(s.alarm_id, alarm.id, "{seg}");
        assert_eq!(s.status, DeliveryStatus::Accepted);
    }
}

#[test]
fn where_the_alarm_id_is_read() {
    let id = |obr: &str| ok(ora("ORA^R41^ORA_R41", &[obr, "PRT|||Read"]).as_bytes()).alarm_id;
    // OBR-29 filler beats placer beats OBR-3.
    assert_eq!(id(&obr_with("5^X", "7&WH^8&WH")), 8);
    assert_eq!(id(&obr_with("5^X", "7&WH")), 7);
    assert_eq!(id(&obr_with("5^X", "\"\"")), 5);
    assert_eq!(id("OBR|1||12-CTRL-9^WARDHUB"), 12);
    assert_eq!(id("OBR|1|| 12 ^WARDHUB"), 12);

    let e = err(ora("ORA^R41^ORA_R41", &["OBR|1", "PRT|||Read"]).as_bytes());
    assert_eq!((e.ack, e.error.code), (AckCode::Error, 101));
    assert_eq!(
        (e.error.segment, e.error.field),
        (Some(("OBR", 1)), Some(29))
    );
    for bad in [
        "OBR|1||abc^X",
        "OBR|1||-5^X",
        "OBR|1||99999999999999999999^X",
    ] {
        let e = err(ora("ORA^R41^ORA_R41", &[bad, "PRT|||Read"]).as_bytes());
        assert_eq!((e.ack, e.error.code), (AckCode::Error, 204), "{bad}");
        assert_eq!(e.error.field, Some(3));
        assert_eq!(e.reject.reason, RejectReason::Schema);
    }
    let e = err(ora("ORA^R41^ORA_R41", &[&obr_with("", "x&WH"), "PRT|||Read"]).as_bytes());
    assert_eq!((e.error.code, e.error.field), (204, Some(29)));
}

#[test]
fn where_the_status_recipient_and_time_are_read() {
    // PRT-3.2, else PRT-3.1; the first PRT that has one.
    assert_eq!(
        status("Undeliverable").status,
        DeliveryStatus::Undeliverable
    );
    let s = ok(ora(
        "ORA^R41^ORA_R41",
        &[OBR, "PRT|1|AD", "PRT|2|UP|rejected^^IHE_PCD_ACM|AAP|N-1"],
    )
    .as_bytes());
    assert_eq!(s.status, DeliveryStatus::Rejected);
    assert_eq!(s.recipient.as_deref(), Some("N-1"));
    // The recipient: PRT-5.1, else the name, else PRT-15.
    let prt15 = |xtn: &str| format!("PRT||AD|^Read|AAP{}|{xtn}", "|".repeat(10));
    let rec = |prt: &str| ok(ora("ORA^R41^ORA_R41", &[OBR, prt]).as_bytes()).recipient;
    assert_eq!(
        rec("PRT||AD|^Read|AAP|^Adams^Jane").as_deref(),
        Some("Jane Adams")
    );
    assert_eq!(rec("PRT||AD|^Read|AAP|^Adams").as_deref(), Some("Adams"));
    assert_eq!(rec(&prt15("^^^4711&PAGERCO")).as_deref(), Some("4711"));
    assert_eq!(
        rec(&prt15("^^^^^^^^^^^+49 30 1234")).as_deref(),
        Some("+49 30 1234")
    );
    assert_eq!(rec(&prt15("^^^^^^555")).as_deref(), Some("555"));
    assert_eq!(rec("PRT||AD|^Read|AAP|\"\"").as_deref(), None);
    // The time: PRT-11, else MSH-7 (also when PRT-11 is unreadable), else none.
    let at = |msh7: &str, prt11: &str| {
        let msg = format!(
            "MSH|^~\\&|AM||||{msh7}||ORA^R41|S-1\r{OBR}\rPRT||AD|^Read{}|{prt11}\r",
            "|".repeat(7)
        );
        ok(msg.as_bytes()).at
    };
    assert_eq!(at("20261120100500", "20261120100000+0000"), Some(T0));
    assert_eq!(at("20261120100000+0000", ""), Some(T0));
    assert_eq!(at("20261120100000+0000", "yesterday"), Some(T0));
    assert_eq!(at("", ""), None);
}

/// A message, and the ACK code, HL7 error code, segment and field it is refused with.
type Refusal = (
    String,
    AckCode,
    u16,
    Option<(&'static str, usize)>,
    Option<usize>,
);

#[test]
fn what_is_refused() {
    let cases: Vec<Refusal> = vec![
        (
            ora("ORU^R40^ORU_R40", &[OBR, "PRT|||Read"]),
            AckCode::Reject,
            200,
            Some(("MSH", 1)),
            Some(9),
        ),
        (
            ora("ACK^R41", &[OBR, "PRT|||Read"]),
            AckCode::Reject,
            200,
            Some(("MSH", 1)),
            Some(9),
        ),
        (
            ora("ORA^R33^ORA_R33", &[OBR, "PRT|||Read"]),
            AckCode::Reject,
            201,
            Some(("MSH", 1)),
            Some(9),
        ),
        (
            ora("ORA", &[OBR, "PRT|||Read"]),
            AckCode::Reject,
            201,
            Some(("MSH", 1)),
            Some(9),
        ),
        (
            ora("ORA^R41^ORA_R41", &[OBR, "PRT|||Read"]).replace("|2.6\r", "|3.0\r"),
            AckCode::Reject,
            203,
            Some(("MSH", 1)),
            Some(12),
        ),
        (
            ora("ORA^R41^ORA_R41", &[OBR, "PRT|||Read"]).replace("|S-1|", "||"),
            AckCode::Error,
            101,
            Some(("MSH", 1)),
            Some(10),
        ),
        (
            ora("ORA^R41^ORA_R41", &["PRT|||Read"]),
            AckCode::Error,
            100,
            Some(("OBR", 1)),
            None,
        ),
        (
            ora("ORA^R41^ORA_R41", &[OBR]),
            AckCode::Error,
            101,
            Some(("PRT", 1)),
            Some(3),
        ),
        (
            ora("ORA^R41^ORA_R41", &[OBR, "PRT|1|AD||AAP"]),
            AckCode::Error,
            101,
            Some(("PRT", 1)),
            Some(3),
        ),
        (
            ora("ORA^R41^ORA_R41", &[OBR, "PRT|1|AD", "PRT|2|AD|^Seen"]),
            AckCode::Error,
            103,
            Some(("PRT", 2)),
            Some(3),
        ),
        ("garbage".into(), AckCode::Error, 100, None, None),
        ("MSH|^~\\&|AM\rOB".into(), AckCode::Error, 100, None, None),
    ];
    for (msg, ack, code, segment, field) in cases {
        let e = err(msg.as_bytes());
        assert_eq!(
            (e.ack, e.error.code, e.error.segment, e.error.field),
            (ack, code, segment, field),
            "{msg:?}: {e:?}"
        );
        assert_eq!(e.error.detail, e.reject.detail);
        let reason = match (ack, code) {
            (_, 100) if segment.is_none() => RejectReason::Malformed,
            (AckCode::Reject, _) => RejectReason::Unsupported,
            _ => RejectReason::Schema,
        };
        assert_eq!(e.reject.reason, reason, "{msg:?}");
        // Whatever could be read of the MSH is kept, to answer the sender.
        assert_eq!(e.header.is_some(), msg.starts_with("MSH"), "{msg:?}");
    }
    let e = err(ora("ORA^R41^ORA_R41", &[OBR, "PRT|||^Seen"]).as_bytes());
    assert!(e.error.detail.contains("status Seen"), "{}", e.error.detail);
    let e = err(ora("ORA^R41^ORA_R41", &[OBR, "PRT|||^John Doe read it"]).as_bytes());
    assert!(!e.error.detail.contains("John"), "{}", e.error.detail);
    // Earlier versions and the structure in MSH-9.2 are fine.
    for (v, t) in [("2.3", "ORA^R41"), ("2.8", "ORA^R41_ORA"), ("", "ora^r41")] {
        let msg = ora(t, &[OBR, "PRT|||Read"]).replace("|2.6\r", &format!("|{v}\r"));
        assert_eq!(ok(msg.as_bytes()).status, DeliveryStatus::Read, "{msg}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_status(&bytes);
    }

    #[test]
    fn arbitrary_prt_and_obr_fields_never_panic(
        obr in proptest::collection::vec("[ -~]{0,12}", 0..32),
        prt in proptest::collection::vec("[ -~]{0,12}", 0..16),
    ) {
        let msg = ora("ORA^R41^ORA_R41", &[
            &format!("OBR|{}", obr.join("|")),
            &format!("PRT|{}", prt.join("|")),
        ]);
        let _ = decode_status(msg.as_bytes());
    }

    #[test]
    fn built_statuses_decode_to_themselves(
        alarm_id in any::<u64>(),
        st in proptest::sample::select(DeliveryStatus::ALL.to_vec()),
        recipient in proptest::option::of("[!-~]([ -~]{0,14}[!-~])?"),
        at in proptest::option::of(0i64..4_102_444_800_000),
        control in "[!-~]{1,20}",
    ) {
        prop_assume!(recipient.as_deref() != Some("\"\""));
        let s = AlarmStatus { alarm_id, status: st, recipient, at, control_id: control };
        let msg = build_status(&s, "AM", "WARDHUB", T0);
        let (_, back) = decode_status(msg.as_bytes()).unwrap();
        // No PRT-11: the time is MSH-7's.
        prop_assert_eq!(back, AlarmStatus { at: s.at.or(Some(T0)), ..s });
    }
}
