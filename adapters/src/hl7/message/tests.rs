use proptest::prelude::*;

use super::*;
use crate::model::Millis;

const NOW: Millis = 1_795_168_800_000; // 2026-11-20T10:00:00Z

fn parse(s: &str) -> Message<'_> {
    Message::parse(s.as_bytes()).unwrap()
}

#[test]
fn fields_components_repetitions_subcomponents() {
    let m = parse(
        "MSH|^~\\&|APP^EUI^EUI-64|FAC|||20261120||ORU^R01^ORU_R01|C1|P|2.6\r\
         PV1||I|ICU^12^&B7^H\r\
         OBX|1|ST|X^Y^L||a^b~c^d&e|",
    );
    let msh = m.msh();
    assert_eq!(msh.name(), "MSH");
    assert_eq!(msh.field(2).raw(), b"^~\\&");
    assert_eq!(msh.field(3).comp(2).text(), "EUI");
    assert_eq!(msh.field(9).comp(1).text(), "ORU");
    assert_eq!(msh.field(10).text(), "C1");
    assert_eq!(msh.field(99).text(), "");
    let pv1 = m.segment("PV1").unwrap();
    assert_eq!(pv1.field(3).comp(3).sub(2).text(), "B7");
    assert_eq!(pv1.field(3).comp(3).sub(1).text(), "");
    let obx = m.segment("OBX").unwrap();
    let v = obx.field(5);
    assert_eq!(v.comp(2).text(), "b");
    assert_eq!(v.rep(2).comp(1).text(), "c");
    assert_eq!(v.rep(2).comp(2).sub(2).text(), "e");
    assert_eq!(v.reps().count(), 2);
    assert_eq!(obx.field(6).text(), "");
    assert_eq!(obx.field(5).comp(1).comp(1).text(), "a");
    assert_eq!(obx.field(5).comp(1).comp(2).text(), "");
    assert_eq!(v.components(), ["a", "b"]);
    assert_eq!(m.segments().len(), 3);
}

#[test]
fn segment_terminators() {
    for sep in ["\r", "\n", "\r\n", "\n\r"] {
        let s = format!("MSH|^~\\&|A||||||ORU^R01|1|P|2.6{sep}PID|1{sep}OBX|1{sep}");
        let m = parse(&s);
        let names: Vec<_> = m.segments().iter().map(Segment::name).collect();
        assert_eq!(names, ["MSH", "PID", "OBX"], "{sep:?}");
    }
    // Leading blank lines and whitespace before MSH are tolerated.
    assert!(Message::parse(b"\r\n  MSH|^~\\&|A\r").is_ok());
}

#[test]
fn escapes() {
    let d = Delimiters::STANDARD;
    let u = |s: &str| unescape(s.as_bytes(), &d).into_owned();
    assert_eq!(u(r"a\F\b\S\c\T\d\R\e\E\f"), "a|b^c&d~e\\f");
    assert_eq!(u(r"line\.br\two"), "line\ntwo");
    assert_eq!(u(r"\X41424344\"), "ABCD");
    assert_eq!(u(r"\XC3A9\"), "é");
    assert_eq!(u(r"\H\bold\N\"), "bold");
    assert_eq!(u(r"unknown \Q\ kept"), r"unknown \Q\ kept");
    assert_eq!(u(r"unterminated \F"), r"unterminated \F");
    assert_eq!(u(r"\X4\"), r"\X4\");
    assert_eq!(u(r"\\"), r"\\");
    // Non-standard delimiters in the message are honoured.
    let m = parse("MSH#$*!@#A#B\rOBX#1#ST#X##x!F!y$z*w");
    let obx = m.segment("OBX").unwrap();
    assert_eq!(obx.field(5).comp(1).text(), "x#y");
    assert_eq!(obx.field(5).comp(2).text(), "z");
    assert_eq!(obx.field(5).rep(2).text(), "w");
    assert_eq!(m.msh().field(3).text(), "A");
}

#[test]
fn non_utf8_text_is_read_lossily() {
    let mut bytes = b"MSH|^~\\&|A||||||ORU^R01|1|P|2.6\rPID|||1||M\xfcller\r".to_vec();
    bytes.push(b'\r');
    let m = Message::parse(&bytes).unwrap();
    assert!(m.segment("PID").unwrap().field(5).text().starts_with('M'));
}

#[test]
fn parse_errors() {
    assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
    assert_eq!(Message::parse(b"\r\n\r").unwrap_err(), ParseError::Empty);
    assert_eq!(
        Message::parse(b"PID|1\rMSH|^~\\&|").unwrap_err(),
        ParseError::NoMsh
    );
    for bad in [
        &b"MSH"[..],
        b"MSH|",
        b"MSH||",
        b"MSH|^^\\&|A",
        b"MSHA^~\\&",
        b"MSH|a~\\&|",
        b"MSH|^~\\&#!x|",
    ] {
        assert_eq!(
            Message::parse(bad).unwrap_err(),
            ParseError::BadDelimiters,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        Message::parse(b"MSH|^~\\&|A\rPID|1\rpid|2").unwrap_err(),
        ParseError::BadSegment(3)
    );
    assert_eq!(
        Message::parse(b"MSH|^~\\&|A\rOB").unwrap_err(),
        ParseError::BadSegment(2)
    );
    assert_eq!(
        Message::parse(b"MSH|^~\\&|A\rOBXX|1").unwrap_err(),
        ParseError::BadSegment(2)
    );
    // Short encoding characters (old senders) still parse.
    let m = Message::parse(b"MSH|^~|A\rOBX|1|ST|c||v^w").unwrap();
    assert_eq!(m.segment("OBX").unwrap().field(5).comp(2).text(), "w");
}

#[test]
fn header() {
    let h = Header::read(
        b"MSH|^~\\&|MON^0012^EUI-64|FAC|WH||20261120||ORU^R01^ORU_R01| id-7 |P|2.6\rgarbage",
    )
    .unwrap();
    assert_eq!(h.sending_application, ["MON", "0012", "EUI-64"]);
    assert_eq!(h.sending_facility, ["FAC"]);
    assert_eq!(
        (h.message_type.as_str(), h.trigger.as_str()),
        ("ORU", "R01")
    );
    assert_eq!(h.control_id, "id-7");
    assert_eq!((h.processing_id.as_str(), h.version.as_str()), ("P", "2.6"));
    assert_eq!(Header::read(b"PID|1").unwrap_err(), ParseError::NoMsh);
}

#[test]
fn ack_format() {
    let h =
        Header::read(b"MSH|^~\\&|MON^00A0^EUI-64|WARD\\T\\3|||20261120||ORU^R01|C|P|2.5").unwrap();
    let sender = AckSender {
        application: "WARDHUB",
        control_id: "WH1",
        now: NOW,
    };
    let ack = build_ack(Some(&h), AckCode::Accept, &[], &sender);
    assert_eq!(
        ack,
        "MSH|^~\\&|WARDHUB||MON^00A0^EUI-64|WARD\\T\\3|20261120100000.000+0000||ACK^R01^ACK|WH1|P|2.5\r\
         MSA|AA|C\r"
    );
    let errors = [
        AckError {
            segment: Some(("OBX", 3)),
            field: Some(5),
            code: 102,
            detail: "OBX 3: spo2 value outside 0..100 | % ^".into(),
        },
        AckError {
            segment: None,
            field: None,
            code: 207,
            detail: "storage\nfailed".into(),
        },
    ];
    let ack = build_ack(Some(&h), AckCode::Error, &errors, &sender);
    let lines: Vec<&str> = ack.split('\r').collect();
    assert_eq!(lines[1], "MSA|AE|C");
    assert_eq!(
        lines[2],
        "ERR||OBX^3^5|102^Data type error^HL70357|E||||OBX 3: spo2 value outside 0..100 \\F\\ % \\S\\"
    );
    assert_eq!(
        lines[3],
        "ERR|||207^Application internal error^HL70357|E||||storage\\.br\\failed"
    );
    assert_eq!(lines[4], "");
    // The ACK parses as HL7 itself.
    let m = Message::parse(ack.as_bytes()).unwrap();
    assert_eq!(m.segment("MSA").unwrap().field(1).text(), "AE");
    assert_eq!(m.segment("ERR").unwrap().field(3).comp(1).text(), "102");
    // Without a readable original: still an answer, with an empty MSA-2.
    let ack = build_ack(None, AckCode::Reject, &[], &sender);
    assert!(ack.contains("\rMSA|AR|\r"), "{ack}");
    assert!(ack.starts_with("MSH|^~\\&|WARDHUB||||"), "{ack}");
    assert!(ack.contains("||ACK|WH1|P|2.6\r"), "{ack}");
}

#[test]
fn control_ids_are_escaped_in_acks() {
    let h = Header::read(b"MSH|^~\\&|A||||||ORU^R01|id\\F\\x|P|2.6").unwrap();
    assert_eq!(h.control_id, "id|x");
    let sender = AckSender {
        application: "WARDHUB",
        control_id: "WH1",
        now: NOW,
    };
    let ack = build_ack(Some(&h), AckCode::Accept, &[], &sender);
    assert!(ack.contains("MSA|AA|id\\F\\x\r"), "{ack}");
}

#[test]
fn hl7_times() {
    let t = |s| parse_hl7_time(s, 0);
    assert_eq!(t("20261120100000"), Some(NOW));
    assert_eq!(t("20261120100000+0000"), Some(NOW));
    assert_eq!(t("20261120110000+0100"), Some(NOW));
    assert_eq!(t("20261120060000-0400"), Some(NOW));
    assert_eq!(t("20261120100000.5"), Some(NOW + 500));
    assert_eq!(t("20261120100000.835-0000"), Some(NOW + 835));
    assert_eq!(t("20261120100000.8350+0000"), Some(NOW + 835));
    assert_eq!(t("202611201000"), Some(NOW));
    assert_eq!(t("2026112010"), Some(NOW));
    assert_eq!(t("20261120"), Some(NOW - 10 * 3_600_000));
    assert_eq!(t("2026"), parse_hl7_time("20260101000000", 0));
    assert_eq!(parse_hl7_time("20261120180000", 8 * 60), Some(NOW));
    for bad in [
        "",
        "2026112",
        "20261320100000",
        "20261120250000",
        "20261120100000+01",
        "20261120100000+2500",
        "2026112010000x",
        "20261120.5",
        "20261120100000.12345",
        "yesterday",
    ] {
        assert_eq!(t(bad), None, "{bad}");
    }
    assert_eq!(format_hl7_time(NOW + 7), "20261120100000.007+0000");
}

fn text() -> impl Strategy<Value = String> {
    // Delimiters, escapes, non-ASCII and the odd control character included.
    proptest::string::string_regex("[a-zA-Z0-9 .|^~&\\\\é%/-]{0,12}").unwrap()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::parse(&bytes) {
            for s in m.segments() {
                for f in 0..s.len() + 2 {
                    let v = s.field(f);
                    let _ = v.text();
                    let _ = v.comp(2).sub(2).text();
                    let _ = v.rep(2).comp(3).text();
                    let _ = v.components();
                }
            }
        }
        let _ = Header::read(&bytes);
    }

    #[test]
    fn msh_prefixed_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut m = b"MSH|^~\\&|".to_vec();
        m.extend_from_slice(&bytes);
        if let Ok(msg) = Message::parse(&m) {
            let _ = Header::from_msh(msg.msh());
        }
        let _ = unescape(&bytes, &Delimiters::STANDARD);
    }

    #[test]
    fn escape_round_trips(fields in proptest::collection::vec(
        proptest::collection::vec(text(), 1..4), 1..6)
    ) {
        // Encode a segment whose fields have components, then read every component back.
        let mut seg = String::from("MSH|^~\\&|A||||||ORU^R01|1|P|2.6\rZZZ");
        for comps in &fields {
            seg.push('|');
            let encoded: Vec<String> = comps.iter().map(|c| escape(c).into_owned()).collect();
            seg.push_str(&encoded.join("^"));
        }
        let m = Message::parse(seg.as_bytes()).unwrap();
        let z = m.segment("ZZZ").unwrap();
        for (i, comps) in fields.iter().enumerate() {
            for (j, c) in comps.iter().enumerate() {
                prop_assert_eq!(&z.field(i + 1).comp(j + 1).text(), c);
            }
        }
    }

    #[test]
    fn times_round_trip(ms in 0i64..4_102_444_800_000) {
        prop_assert_eq!(parse_hl7_time(&format_hl7_time(ms), 0), Some(ms));
    }
}
