use proptest::prelude::*;

use super::*;
use crate::hl7::message::{parse_hl7_time, Header, Message, Segment};
use crate::model::metric_by_name;

const T0: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z
const NOW: Millis = T0 + 500;

fn patient() -> Patient {
    Patient {
        id: "MRN-4711".into(),
        authority: Some("HOSP".into()),
        family: Some("Doe".into()),
        given: Some("Jane".into()),
        birth_date: Some("1980-04-12".into()),
        sex: Some("F".into()),
    }
}

/// SpO2 82 % under a low limit of 90, high priority, first indication.
fn spo2_low() -> AcmAlarm {
    AcmAlarm {
        id: 42,
        ward: "ICU".into(),
        bed: Some("B-07".into()),
        patient: Some(patient()),
        device_id: "MON-7".into(),
        priority: AcmPriority::High,
        kind: AcmKind::Physiological,
        metric: metric_by_name("spo2"),
        value: Some(82.0),
        limit: Some(90.0),
        text: "SpO2 low 82 < 90".into(),
        phase: AcmPhase::Start,
        state: AcmState::Active,
        acknowledged: false,
        occurred_at: T0,
        raised_at: T0,
        recipient: Some("N-0815".into()),
    }
}

/// A lead-off alarm of a bed with no known patient, ending.
fn lead_off_end() -> AcmAlarm {
    AcmAlarm {
        id: 7,
        ward: "W3".into(),
        bed: None,
        patient: None,
        device_id: "MON-9".into(),
        priority: AcmPriority::Low,
        kind: AcmKind::Technical,
        metric: None,
        value: None,
        limit: None,
        text: "ECG leads off".into(),
        phase: AcmPhase::End,
        state: AcmState::Inactive,
        acknowledged: true,
        occurred_at: T0 + 60_000,
        raised_at: T0,
        recipient: None,
    }
}

fn opts() -> Pcd04Options {
    Pcd04Options {
        sending_application: "WARDHUB".into(),
        sending_facility: "ICU".into(),
        receiving_application: "AM".into(),
        receiving_facility: "HOSP".into(),
        patient_authority_default: None,
    }
}

fn segments(msg: &str) -> Vec<&str> {
    msg.split_terminator('\r').collect()
}

fn obx<'a>(m: &'a Message<'a>, n: usize) -> &'a Segment<'a> {
    m.segments()
        .iter()
        .filter(|s| s.name() == "OBX")
        .nth(n - 1)
        .expect("that many OBX")
}

#[test]
fn golden_first_indication_of_a_physiological_alarm() {
    let msg = build_report_alarm(&spo2_low(), "A42-1", NOW, &opts());
    assert!(msg.ends_with('\r'));
    assert_eq!(
        segments(&msg),
        [
            "MSH|^~\\&|WARDHUB|ICU|AM|HOSP|20261120100000.500+0000||ORU^R40^ORU_R40|A42-1|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO",
            "PID|||MRN-4711^^^HOSP^MR||Doe^Jane^^^^^L||19800412|F",
            "PV1||I|ICU^^B-07",
            "OBR|1||42^WARDHUB|196616^MDC_EVT_ALARM^MDC|||20261120100000.500+0000",
            "PRT|42^WARDHUB|AD||AR^Alert Recipient^HL70912|N-0815",
            "OBX|1|ST|196670^MDC_EVT_LO^MDC|1.0.0.0.1|SpO2 low 82 < 90|||L|||F|||20261120100000.000+0000||||MON-7^WARDHUB",
            "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.0.2|82|%^%^UCUM|>90||||F|||20261120100000.000+0000",
            "OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.0.0.0.3|start||||||F",
            "OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.0.0.0.4|active||||||F",
            "OBX|5|ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|1.0.0.0.5|enabled||||||F",
            "OBX|6|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.0.0.0.6|PH||||||F",
            "OBX|7|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|1.0.0.0.7|SP||||||F",
        ]
    );
}

#[test]
fn golden_later_indication_of_a_technical_alarm_without_patient() {
    let msg = build_report_alarm(&lead_off_end(), "A7-3", NOW, &Pcd04Options::default());
    assert_eq!(
        segments(&msg),
        [
            "MSH|^~\\&|WARDHUB||||20261120100000.500+0000||ORU^R40^ORU_R40|A7-3|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO",
            "PID|||||||||||||||||||||||||||||||Y",
            "PV1||I|W3",
            "OBR|1||7-A7-3^WARDHUB|196616^MDC_EVT_ALARM^MDC|||20261120100000.500+0000||||||||||||||||||||||^7&WARDHUB",
            "OBX|1|ST|196616^MDC_EVT_ALARM^MDC|1.0.0.0.1|ECG leads off||||||F|||20261120100100.000+0000||||MON-9^WARDHUB",
            "OBX|2|ST|68480^MDC_ATTR_ALERT_SOURCE^MDC|1.0.0.0.2|MON-9||||||F",
            "OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.0.0.0.3|end||||||F",
            "OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.0.0.0.4|inactive||||||F",
            "OBX|5|ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|1.0.0.0.5|alert-acknowledged||||||F",
            "OBX|6|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.0.0.0.6|PL||||||F",
            "OBX|7|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|1.0.0.0.7|ST||||||F",
        ]
    );
}

#[test]
fn parses_back_with_the_crates_parser() {
    let mut alarm = spo2_low();
    alarm.phase = AcmPhase::Escalate;
    alarm.text = "SpO2 | low ^ 82 ~ < 90 & \\ falling\nnow".into();
    alarm.ward = "ICU^North".into();
    alarm.recipient = Some("Dr. O'Brien & Co".into());
    alarm.patient.as_mut().unwrap().family = Some("O^Neil|".into());
    let msg = build_report_alarm(&alarm, "C|1", NOW, &opts());
    let m = Message::parse(msg.as_bytes()).unwrap();
    let names: Vec<&str> = m.segments().iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        ["MSH", "PID", "PV1", "OBR", "PRT", "OBX", "OBX", "OBX", "OBX", "OBX", "OBX", "OBX"]
    );
    let h = Header::from_msh(m.msh());
    assert_eq!(
        (h.message_type.as_str(), h.trigger.as_str()),
        ("ORU", "R40")
    );
    assert_eq!((h.control_id.as_str(), h.version.as_str()), ("C|1", "2.6"));
    assert_eq!(
        m.msh().field(21).comp(3).text(),
        "1.3.6.1.4.1.19376.1.6.1.4.1"
    );
    let pid = m.segment("PID").unwrap();
    assert_eq!(pid.field(3).comp(1).text(), "MRN-4711");
    assert_eq!(pid.field(3).comp(4).text(), "HOSP");
    assert_eq!(pid.field(5).comp(1).text(), "O^Neil|");
    assert_eq!(pid.field(7).text(), "19800412");
    let pv1 = m.segment("PV1").unwrap();
    assert_eq!(pv1.field(3).comp(1).text(), "ICU^North");
    assert_eq!(pv1.field(3).comp(3).text(), "B-07");
    let obr = m.segment("OBR").unwrap();
    assert_eq!(obr.field(3).comp(1).text(), "42-C|1");
    assert_eq!(obr.field(29).comp(2).sub(1).text(), "42");
    assert_eq!(obr.field(29).comp(2).sub(2).text(), "WARDHUB");
    assert_eq!(obr.field(4).comp(2).text(), "MDC_EVT_ALARM");
    let prt = m.segment("PRT").unwrap();
    assert_eq!(prt.field(5).comp(1).text(), "Dr. O'Brien & Co");
    let event = obx(&m, 1);
    assert_eq!(
        event.field(5).text(),
        "SpO2 | low ^ 82 ~ < 90 & \\ falling\nnow"
    );
    assert_eq!(event.field(3).text(), EVT_LO);
    assert_eq!(event.field(4).text(), "1.0.0.0.1");
    assert_eq!(
        parse_hl7_time(&event.field(14).text(), 0),
        Some(alarm.occurred_at)
    );
    assert_eq!(event.field(18).comp(1).text(), "MON-7");
    let facets: Vec<(String, String, String)> = (2..=7)
        .map(|n| {
            let s = obx(&m, n);
            (
                s.field(3).comp(2).text().into_owned(),
                s.field(4).text().into_owned(),
                s.field(5).comp(1).text().into_owned(),
            )
        })
        .collect();
    let want = [
        ("MDC_PULS_OXIM_SAT_O2", "1.0.0.0.2", "82"),
        ("MDC_ATTR_EVENT_PHASE", "1.0.0.0.3", "escalate"),
        ("MDC_ATTR_ALARM_STATE", "1.0.0.0.4", "active"),
        ("MDC_ATTR_ALARM_INACTIVATION_STATE", "1.0.0.0.5", "enabled"),
        ("MDC_ATTR_ALARM_PRIORITY", "1.0.0.0.6", "PH"),
        ("MDC_ATTR_ALERT_TYPE", "1.0.0.0.7", "SP"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(facets, want);
    for n in 1..=7 {
        assert_eq!(obx(&m, n).field(11).text(), "F");
        assert_eq!(obx(&m, n).field(1).text(), n.to_string());
    }
}

/// The TF's own example (TF-2 E.3.1, `samples/ihe_tf2_e31_spo2_low_start.hl7`) and ours of
/// the same alarm have the same shape: segments, header, OBR-4, the event code and its
/// flag, the value row, and the facets both carry in the same order with the same codes.
#[test]
fn structure_matches_the_tf_numeric_alarm_example() {
    let sample = include_bytes!("../samples/ihe_tf2_e31_spo2_low_start.hl7");
    let tf = Message::parse(sample).unwrap();
    let mut alarm = spo2_low();
    alarm.recipient = None;
    alarm.limit = Some(90.0);
    alarm.value = Some(88.0);
    alarm.priority = AcmPriority::Medium;
    let built = build_report_alarm(&alarm, "1", NOW, &opts());
    let ours = Message::parse(built.as_bytes()).unwrap();

    let names = |m: &Message<'_>| -> Vec<String> {
        m.segments().iter().map(|s| s.name().to_owned()).collect()
    };
    let (tf_names, our_names) = (names(&tf), names(&ours));
    // TF E.3.1 predates the separate priority and type rows (it carries them in OBX-8):
    // ours has those two rows more, and is otherwise the same sequence.
    assert_eq!(tf_names[..], our_names[..our_names.len() - 2]);
    assert_eq!(&our_names[our_names.len() - 2..], ["OBX", "OBX"]);

    for f in [9, 12, 15, 16] {
        assert_eq!(
            tf.msh().field(f).text(),
            ours.msh().field(f).text(),
            "MSH-{f}"
        );
    }
    assert_eq!(
        tf.msh().field(21).comp(1).text(),
        ours.msh().field(21).comp(1).text()
    );
    assert_eq!(
        tf.segment("PV1").unwrap().field(2).text(),
        ours.segment("PV1").unwrap().field(2).text()
    );
    let (tf_obr, our_obr) = (tf.segment("OBR").unwrap(), ours.segment("OBR").unwrap());
    assert_eq!(tf_obr.field(4).text(), our_obr.field(4).text());

    for n in 1..=5 {
        let (a, b) = (obx(&tf, n), obx(&ours, n));
        assert_eq!(a.field(2).text(), b.field(2).text(), "OBX {n} OBX-2");
        assert_eq!(
            a.field(3).comp(1).text(),
            b.field(3).comp(1).text(),
            "OBX {n} OBX-3"
        );
        let facet = |s: &Segment<'_>| s.field(4).text().rsplit('.').next().map(str::to_owned);
        assert_eq!(facet(a), facet(b), "OBX {n} facet");
    }
    // Event row: the flag (TF: `L~PM~SP`, ours `L` and the rows), the time, the device.
    assert_eq!(
        obx(&tf, 1).field(8).rep(1).text(),
        obx(&ours, 1).field(8).text()
    );
    assert!(!obx(&ours, 1).field(14).is_empty() && !obx(&ours, 1).field(18).is_empty());
    // Value row: the value and a reference range.
    assert_eq!(obx(&tf, 2).field(5).text(), obx(&ours, 2).field(5).text());
    assert!(!obx(&tf, 2).field(7).is_empty() && !obx(&ours, 2).field(7).is_empty());
    // The TF's values of the facets it has; ours carries the TF's priority and type as rows.
    for n in 3..=5 {
        assert_eq!(obx(&tf, n).field(5).text(), obx(&ours, n).field(5).text());
    }
    let flags: Vec<String> = obx(&tf, 1)
        .field(8)
        .reps()
        .map(|r| r.text().into_owned())
        .collect();
    assert_eq!(flags, ["L", "PM", "SP"]);
    assert_eq!(obx(&ours, 6).field(5).text(), flags[1]);
    assert_eq!(obx(&ours, 7).field(5).text(), flags[2]);
}

/// TF-2 E.3.2's occlusion end: a later indication (OBR-29 set, filler part) of a technical
/// alarm whose source row is `MDC_ATTR_ALERT_SOURCE` with a CWE value.
#[test]
fn structure_matches_the_tf_technical_alarm_end_example() {
    let sample = include_bytes!("../samples/ihe_tf2_e32_occlusion_end.hl7");
    let tf = Message::parse(sample).unwrap();
    let mut alarm = lead_off_end();
    alarm.metric = metric_by_name("hr");
    alarm.acknowledged = false;
    let built = build_report_alarm(&alarm, "A7-3", NOW, &opts());
    let ours = Message::parse(built.as_bytes()).unwrap();

    let (a, b) = (tf.segment("OBR").unwrap(), ours.segment("OBR").unwrap());
    assert!(a.field(29).comp(1).is_empty() && b.field(29).comp(1).is_empty());
    assert!(!a.field(29).comp(2).sub(1).is_empty() && !b.field(29).comp(2).sub(1).is_empty());
    assert_ne!(b.field(3).comp(1).text(), b.field(29).comp(2).sub(1).text());
    for n in 1..=5 {
        let (x, y) = (obx(&tf, n), obx(&ours, n));
        assert_eq!(
            x.field(3).comp(1).text(),
            y.field(3).comp(1).text(),
            "OBX {n}"
        );
        assert_eq!(x.field(4).text(), y.field(4).text(), "OBX {n}");
        // TF E.3.2's fifth row has its `F` in OBX-10 (one `|` short): a typo of the TF.
        if n < 5 {
            assert_eq!(x.field(11).text(), y.field(11).text(), "OBX {n}");
        }
    }
    assert_eq!(obx(&tf, 2).field(2).text(), obx(&ours, 2).field(2).text());
    assert_eq!(
        obx(&ours, 2).field(5).text(),
        "147842^MDC_ECG_HEART_RATE^MDC"
    );
    assert_eq!(obx(&tf, 3).field(5).text(), obx(&ours, 3).field(5).text());
    assert_eq!(obx(&tf, 4).field(5).text(), obx(&ours, 4).field(5).text());
    assert_eq!(obx(&tf, 5).field(5).text(), obx(&ours, 5).field(5).text());
}

/// Every public PCD-04 in `samples/` reads with the crate's parser and has what the hub
/// writes too: `ORU^R40`, `OBR-4` `MDC_EVT_ALARM`, an event phase and an alarm state row
/// (found by REFID: Dräger and GE use other codes for them than the TF).
#[test]
fn the_public_samples_have_the_rows_the_hub_writes() {
    let samples: [(&str, &[u8], &str, &str); 5] = [
        (
            "TF E.3.1",
            include_bytes!("../samples/ihe_tf2_e31_spo2_low_start.hl7"),
            "start",
            "active",
        ),
        (
            "TF E.3.2 start",
            include_bytes!("../samples/ihe_tf2_e32_occlusion_start.hl7"),
            "start",
            "active",
        ),
        (
            "TF E.3.2 end",
            include_bytes!("../samples/ihe_tf2_e32_occlusion_end.hl7"),
            "end",
            "inactive",
        ),
        (
            "Dräger watchdog",
            include_bytes!("../samples/draeger_watchdog_pcd04.hl7"),
            "start",
            "active",
        ),
        (
            "GE advisory",
            include_bytes!("../samples/ge_mural_advisory_update_pcd04.hl7"),
            "update",
            "active",
        ),
    ];
    for (name, bytes, phase, state) in samples {
        let m = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let h = Header::from_msh(m.msh());
        assert_eq!(
            (h.message_type.as_str(), h.trigger.as_str()),
            ("ORU", "R40"),
            "{name}"
        );
        assert_eq!(m.segment("OBR").unwrap().field(4).text(), SERVICE, "{name}");
        let row = |refids: &[&str]| {
            m.segments()
                .iter()
                .filter(|s| s.name() == "OBX")
                .find(|s| refids.contains(&s.field(3).comp(2).text().as_ref()))
                .map(|s| s.field(5).text().into_owned())
        };
        assert_eq!(
            row(&["MDC_ATTR_EVENT_PHASE"]).as_deref(),
            Some(phase),
            "{name}"
        );
        let got = row(&["MDC_ATTR_ALARM_STATE", "MDC_ATTR_ALERT_STATE"]);
        assert_eq!(got.as_deref(), Some(state), "{name}");
    }
}

#[test]
fn codes_of_every_phase_priority_kind_and_state() {
    let codes: Vec<&str> = AcmPhase::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        codes,
        [
            "start",
            "start_only",
            "tpoint",
            "continue",
            "present",
            "update",
            "escalate",
            "deescalate",
            "inactivate",
            "acknowledged",
            "reset",
            "stop",
            "end"
        ]
    );
    let first: Vec<AcmPhase> = AcmPhase::ALL.into_iter().filter(|p| p.is_first()).collect();
    assert_eq!(
        first,
        [AcmPhase::Start, AcmPhase::StartOnly, AcmPhase::TimePoint]
    );
    assert_eq!(
        [AcmPriority::High, AcmPriority::Medium, AcmPriority::Low].map(AcmPriority::code),
        ["PH", "PM", "PL"]
    );
    assert_eq!(
        [AcmKind::Physiological, AcmKind::Technical, AcmKind::Call].map(AcmKind::code),
        ["SP", "ST", "SA"]
    );
    assert_eq!(
        [AcmState::Active, AcmState::Latched, AcmState::Inactive].map(AcmState::as_str),
        ["active", "latched", "inactive"]
    );
    for phase in AcmPhase::ALL {
        let alarm = AcmAlarm {
            phase,
            ..spo2_low()
        };
        let msg = build_report_alarm(&alarm, "X-1", NOW, &opts());
        let m = Message::parse(msg.as_bytes()).unwrap();
        assert_eq!(obx(&m, 3).field(5).text(), phase.as_str());
        let obr = m.segment("OBR").unwrap();
        assert_eq!(obr.field(29).is_empty(), phase.is_first(), "{phase:?}");
    }
}

#[test]
fn high_values_calls_and_missing_data() {
    // Above a high limit.
    let alarm = AcmAlarm {
        metric: metric_by_name("hr"),
        value: Some(151.5),
        limit: Some(120.0),
        text: "HR high".into(),
        ..spo2_low()
    };
    let msg = build_report_alarm(&alarm, "1", NOW, &opts());
    assert!(msg.contains("OBX|1|ST|196648^MDC_EVT_HI^MDC|1.0.0.0.1|HR high|||H|||F|"));
    assert!(msg.contains(
        "OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.0.0.2|151.5|/min^/min^UCUM|<120||||F|"
    ));

    // A value at its limit, or no limit: no direction, the generic event code, no range.
    for limit in [Some(82.0), None] {
        let alarm = AcmAlarm {
            limit,
            ..spo2_low()
        };
        let msg = build_report_alarm(&alarm, "1", NOW, &opts());
        assert!(
            msg.contains("OBX|1|ST|196616^MDC_EVT_ALARM^MDC|1.0.0.0.1|SpO2 low 82 < 90||||||F|")
        );
        assert!(msg.contains("|82|%^%^UCUM|||||F|"), "{msg}");
    }

    // No value (or not a finite one): the source row names the metric.
    for value in [None, Some(f64::NAN), Some(f64::INFINITY)] {
        let alarm = AcmAlarm {
            value,
            ..spo2_low()
        };
        let msg = build_report_alarm(&alarm, "1", NOW, &opts());
        assert!(msg.contains(
            "OBX|2|CWE|68480^MDC_ATTR_ALERT_SOURCE^MDC|1.0.0.0.2|150456^MDC_PULS_OXIM_SAT_O2^MDC||||||F\r"
        ));
        assert!(!msg.contains("NaN") && !msg.contains("inf"));
    }

    // A patient call: advisory, generic event code, the device as source.
    let call = AcmAlarm {
        kind: AcmKind::Call,
        metric: None,
        value: None,
        limit: None,
        text: "Patient call".into(),
        ..spo2_low()
    };
    let msg = build_report_alarm(&call, "1", NOW, &opts());
    assert!(msg.contains("OBX|1|ST|196616^MDC_EVT_ALARM^MDC|1.0.0.0.1|Patient call||||||F|"));
    assert!(msg.contains("OBX|2|ST|68480^MDC_ATTR_ALERT_SOURCE^MDC|1.0.0.0.2|MON-7||||||F\r"));
    assert!(msg.contains("OBX|7|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|1.0.0.0.7|SA||||||F\r"));

    // A technical alarm is never flagged low or high, whatever its numbers.
    let technical = AcmAlarm {
        kind: AcmKind::Technical,
        ..spo2_low()
    };
    let msg = build_report_alarm(&technical, "1", NOW, &opts());
    assert!(msg.contains("OBX|1|ST|196616^MDC_EVT_ALARM^MDC|1.0.0.0.1|"));
    assert!(msg.contains("|82|%^%^UCUM|||||F|"));

    // -0 is 0; a blank recipient is none.
    let zero = AcmAlarm {
        value: Some(-0.0),
        limit: Some(90.0),
        recipient: Some("  ".into()),
        ..spo2_low()
    };
    let msg = build_report_alarm(&zero, "1", NOW, &opts());
    assert!(msg.contains("|1.0.0.0.2|0|"));
    assert!(!msg.contains("PRT|"));
}

#[test]
fn patient_variants() {
    let alarm = |p: Patient| AcmAlarm {
        patient: Some(p),
        ..spo2_low()
    };
    let o = Pcd04Options {
        patient_authority_default: Some("DEFAULT".into()),
        ..opts()
    };
    let no_auth = Patient {
        authority: None,
        family: None,
        given: None,
        birth_date: Some("1980-04".into()),
        sex: None,
        ..patient()
    };
    let msg = build_report_alarm(&alarm(no_auth), "1", NOW, &o);
    assert!(
        msg.contains("\rPID|||MRN-4711^^^DEFAULT^MR||||198004\r"),
        "{msg}"
    );
    let bad_date = Patient {
        birth_date: Some("12.04.1980".into()),
        ..patient()
    };
    let msg = build_report_alarm(&alarm(bad_date), "1", NOW, &o);
    assert!(
        msg.contains("\rPID|||MRN-4711^^^HOSP^MR||Doe^Jane^^^^^L|||F\r"),
        "{msg}"
    );
}

proptest! {
    /// Whatever the text of the data, the message parses back into the same segments and
    /// the same text.
    #[test]
    fn text_round_trips(
        text in "[ -~]{0,40}",
        ward in "[ -~]{0,12}",
        bed in proptest::option::of("[ -~]{0,8}"),
        device in "[ -~]{1,16}",
        recipient in proptest::option::of("[!-~]{1,16}"),
        family in proptest::option::of("[ -~]{1,16}"),
        control in "[ -~]{1,20}",
        id in any::<u64>(),
        phase in proptest::sample::select(AcmPhase::ALL.to_vec()),
    ) {
        let alarm = AcmAlarm {
            id,
            ward: ward.clone(),
            bed: bed.clone(),
            device_id: device.clone(),
            text: text.clone(),
            recipient: recipient.clone(),
            patient: Some(Patient { family: family.clone(), ..patient() }),
            phase,
            ..spo2_low()
        };
        let msg = build_report_alarm(&alarm, &control, NOW, &opts());
        let m = Message::parse(msg.as_bytes()).unwrap();
        let want = if recipient.is_some() { 12 } else { 11 };
        prop_assert_eq!(m.segments().len(), want);
        prop_assert_eq!(Header::from_msh(m.msh()).control_id, control.trim());
        prop_assert_eq!(obx(&m, 1).field(5).text(), text.as_str());
        prop_assert_eq!(obx(&m, 1).field(18).comp(1).text(), device.as_str());
        let pv1 = m.segment("PV1").unwrap();
        prop_assert_eq!(pv1.field(3).comp(1).text(), ward.as_str());
        prop_assert_eq!(pv1.field(3).comp(3).text(), bed.as_deref().unwrap_or(""));
        let pid = m.segment("PID").unwrap();
        prop_assert_eq!(pid.field(5).comp(1).text(), family.as_deref().unwrap_or(""));
        if let Some(r) = &recipient {
            prop_assert_eq!(m.segment("PRT").unwrap().field(5).comp(1).text(), r.as_str());
        }
        let obr = m.segment("OBR").unwrap();
        let first = obr.field(3).comp(1).text().into_owned();
        if phase.is_first() {
            prop_assert_eq!(first, id.to_string());
        } else {
            prop_assert_eq!(first, format!("{id}-{control}"));
            prop_assert_eq!(obr.field(29).comp(2).sub(1).text(), id.to_string());
        }
        for n in 1..=7 {
            prop_assert_eq!(obx(&m, n).field(4).text(), format!("1.0.0.0.{n}"));
        }
    }
}
