use super::*;
use crate::hl7::message::{Message, Segment};
use crate::hl7::oru::{decode, OruOptions};
use crate::model::charting::{ChartBatch, ChartMethod, ChartedValue};
use crate::model::{Location, Millis, Patient, Status};

use crate::emr::testing::{batch, value, T0};

fn opts() -> Pcd01Options {
    Pcd01Options {
        sending_application: "WARDHUB".into(),
        sending_facility: "WARD".into(),
        receiving_application: "EMR".into(),
        receiving_facility: "HOSP".into(),
        patient_authority_default: None,
        processing_id: "P".into(),
    }
}

fn obx<'m>(msg: &'m Message<'m>) -> Vec<&'m Segment<'m>> {
    msg.segments()
        .iter()
        .filter(|s| s.name() == "OBX")
        .collect()
}

fn names(msg: &Message<'_>) -> Vec<String> {
    msg.segments().iter().map(|s| s.name().to_owned()).collect()
}

/// The small message of the golden test: one monitor, a heart rate as stored on a channel,
/// and a median SpO2 without one.
fn golden_batch() -> ChartBatch {
    let hr = ChartedValue {
        channel: Some("1.5.1.1".into()),
        ..value("B1.0", "mon-1", "hr", Some(72.0), T0)
    };
    let spo2 = ChartedValue {
        method: ChartMethod::Median,
        period: Some((T0 - 900_000, T0)),
        count: 15,
        ..value("B1.1", "mon-1", "spo2", Some(96.5), T0)
    };
    batch(vec![hr, spo2])
}

#[test]
fn golden_message() {
    let oru = build_oru(&golden_batch(), &opts());
    let expected = "MSH|^~\\&|WARDHUB|WARD|EMR|HOSP|20261120100005.000+0000||ORU^R01^ORU_R01|B1|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\r\
PID|||4711^^^HOSP^MR||Doe^Jane^^^^^L||19610101|F\r\
PV1||I|ICU^3^B2\r\
OBR|1||B1^WARDHUB|182777000^monitoring of patient^SCT|||20261120100000.000+0000|20261120100000.000+0000\r\
OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||mon-1^WARDHUB\r\
OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.5.1.1|72|/min^/min^UCUM|||||R|||20261120100000.000+0000|||AMEAS^auto-measurement^MDC|mon-1^WARDHUB\r\
OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.0.1|96.5|%^%^UCUM|||||R|||20261120100000.000+0000|||MEDIAN^median of the valid values of the charting period^99WARDHUB|mon-1^WARDHUB\r\
NTE|1|L|median of 15 valid values from 2026-11-20T09:45:00.000Z until 2026-11-20T10:00:00.000Z\r";
    assert_eq!(oru, expected);
    // Deterministic: a resend is the same message, with the same control id.
    assert_eq!(build_oru(&golden_batch(), &opts()), oru);
}

#[test]
fn parses_back_field_by_field() {
    let oru = build_oru(&golden_batch(), &opts());
    let msg = Message::parse(oru.as_bytes()).unwrap();
    assert_eq!(
        names(&msg),
        ["MSH", "PID", "PV1", "OBR", "OBX", "OBX", "OBX", "NTE"]
    );

    let msh = msg.msh();
    assert_eq!(msh.field(2).raw(), b"^~\\&");
    assert_eq!(msh.field(3).text(), "WARDHUB");
    assert_eq!(msh.field(4).text(), "WARD");
    assert_eq!(msh.field(5).text(), "EMR");
    assert_eq!(msh.field(6).text(), "HOSP");
    assert_eq!(msh.field(7).text(), "20261120100005.000+0000");
    assert_eq!(msh.field(9).components(), ["ORU", "R01", "ORU_R01"]);
    assert_eq!(msh.field(10).text(), "B1");
    assert_eq!(msh.field(11).text(), "P");
    assert_eq!(msh.field(12).text(), "2.6");
    assert_eq!(msh.field(15).text(), "AL");
    assert_eq!(msh.field(16).text(), "NE");
    assert_eq!(msh.field(18).text(), "UNICODE UTF-8");
    assert_eq!(
        msh.field(21).components(),
        [
            "IHE_PCD_001",
            "IHE PCD",
            "1.3.6.1.4.1.19376.1.6.1.1.1",
            "ISO"
        ]
    );
    assert_eq!(
        crate::hl7::message::parse_hl7_time(&msh.field(7).text(), 0),
        Some(T0 + 5_000)
    );

    let pid = msg.segment("PID").unwrap();
    assert_eq!(pid.field(3).components(), ["4711", "", "", "HOSP", "MR"]);
    assert_eq!(pid.field(5).comp(1).text(), "Doe");
    assert_eq!(pid.field(5).comp(2).text(), "Jane");
    assert_eq!(pid.field(5).comp(7).text(), "L");
    assert_eq!(pid.field(7).text(), "19610101");
    assert_eq!(pid.field(8).text(), "F");

    let pv1 = msg.segment("PV1").unwrap();
    assert_eq!(pv1.field(2).text(), "I");
    assert_eq!(pv1.field(3).components(), ["ICU", "3", "B2"]);

    let obr = msg.segment("OBR").unwrap();
    assert_eq!(obr.field(1).text(), "1");
    assert_eq!(obr.field(3).components(), ["B1", "WARDHUB"]);
    assert_eq!(
        obr.field(4).components(),
        ["182777000", "monitoring of patient", "SCT"]
    );
    assert_eq!(obr.field(7).text(), "20261120100000.000+0000");
    assert_eq!(obr.field(8).text(), "20261120100000.000+0000");

    let rows = obx(&msg);
    let mds = rows[0];
    assert_eq!(mds.field(1).text(), "1");
    assert!(mds.field(2).is_empty());
    assert_eq!(
        mds.field(3).components(),
        ["69965", "MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS", "MDC"]
    );
    assert_eq!(mds.field(4).text(), "1.0.0.0");
    assert!(mds.field(5).is_empty());
    assert_eq!(mds.field(11).text(), "X");
    assert_eq!(mds.field(18).components(), ["mon-1", "WARDHUB"]);

    let hr = rows[1];
    assert_eq!(hr.field(1).text(), "2");
    assert_eq!(hr.field(2).text(), "NM");
    assert_eq!(
        hr.field(3).components(),
        ["147842", "MDC_ECG_HEART_RATE", "MDC"]
    );
    assert_eq!(hr.field(4).text(), "1.5.1.1");
    assert_eq!(hr.field(5).text(), "72");
    assert_eq!(hr.field(6).components(), ["/min", "/min", "UCUM"]);
    assert!(hr.field(7).is_empty());
    assert!(hr.field(8).is_empty());
    assert_eq!(hr.field(11).text(), "R");
    assert_eq!(hr.field(14).text(), "20261120100000.000+0000");
    assert_eq!(
        hr.field(17).components(),
        ["AMEAS", "auto-measurement", "MDC"]
    );
    assert_eq!(hr.field(18).components(), ["mon-1", "WARDHUB"]);
    assert_eq!(hr.len(), 18);

    let spo2 = rows[2];
    assert_eq!(spo2.field(4).text(), "1.0.0.1");
    assert_eq!(spo2.field(5).text(), "96.5");
    assert_eq!(spo2.field(6).components(), ["%", "%", "UCUM"]);
    assert_eq!(spo2.field(17).comp(1).text(), "MEDIAN");
    assert_eq!(spo2.field(17).comp(3).text(), LOCAL_CODING_SYSTEM);
    let nte = msg.segment("NTE").unwrap();
    assert_eq!(nte.field(1).text(), "1");
    assert_eq!(nte.field(2).text(), "L");
    assert!(nte.field(3).text().starts_with("median of 15 valid values"));
}

#[test]
fn two_devices_and_a_bp_triple() {
    let cuff = |id: &str, metric: &str, v: f64, chan: &str| ChartedValue {
        channel: Some(chan.into()),
        ..value(id, "nibp-1", metric, Some(v), T0)
    };
    let b = batch(vec![
        cuff("B1.0", "nibp_sys", 120.0, "1.1.1.1"),
        value("B1.1", "mon-2", "hr", Some(64.0), T0 + 1_000),
        cuff("B1.2", "nibp_dia", 80.0, "1.1.1.2"),
        cuff("B1.3", "nibp_mean", 93.0, "1.1.1.3"),
        ChartedValue {
            channel: Some("1.3.1.150456".into()),
            ..value("B1.4", "mon-2", "spo2", Some(98.0), T0 + 1_000)
        },
    ]);
    let oru = build_oru(&b, &opts());
    let msg = Message::parse(oru.as_bytes()).unwrap();
    let rows = obx(&msg);
    let summary: Vec<(String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.field(1).text().into_owned(),
                r.field(3).comp(2).text().into_owned(),
                r.field(4).text().into_owned(),
                r.field(5).text().into_owned(),
                r.field(18).comp(1).text().into_owned(),
            )
        })
        .collect();
    let row = |n: &str, refid: &str, path: &str, v: &str, dev: &str| {
        (n.into(), refid.into(), path.into(), v.into(), dev.into())
    };
    assert_eq!(
        summary,
        [
            row(
                "1",
                "MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS",
                "1.0.0.0",
                "",
                "nibp-1"
            ),
            row("2", "MDC_PRESS_BLD_NONINV_SYS", "1.1.1.1", "120", "nibp-1"),
            row("3", "MDC_PRESS_BLD_NONINV_DIA", "1.1.1.2", "80", "nibp-1"),
            row("4", "MDC_PRESS_BLD_NONINV_MEAN", "1.1.1.3", "93", "nibp-1"),
            row(
                "5",
                "MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS",
                "2.0.0.0",
                "",
                "mon-2"
            ),
            row("6", "MDC_ECG_HEART_RATE", "2.0.0.1", "64", "mon-2"),
            // The device's own MDS number (1) is replaced: it is the second device here.
            row("7", "MDC_PULS_OXIM_SAT_O2", "2.3.1.150456", "98", "mon-2"),
        ]
    );
    for r in &rows[1..4] {
        assert_eq!(r.field(6).components(), ["mm[Hg]", "mm[Hg]", "UCUM"]);
        assert_eq!(r.field(11).text(), "R");
    }
    let obr = msg.segment("OBR").unwrap();
    assert_eq!(obr.field(7).text(), format_hl7_time(T0));
    assert_eq!(obr.field(8).text(), format_hl7_time(T0 + 1_000));
}

#[test]
fn round_trips_through_the_hub_decoder() {
    let b = batch(vec![
        ChartedValue {
            channel: Some("1.1.1.1".into()),
            ..value("B1.0", "nibp-1", "nibp_sys", Some(121.0), T0)
        },
        value("B1.1", "nibp-1", "nibp_dia", Some(79.0), T0),
        value("B1.2", "mon-2", "temp", Some(36.8), T0 - 60_000),
        value("B1.3", "mon-2", "etco2", Some(35.25), T0 - 30_000),
        value("B1.4", "mon-2", "rr", Some(14.0), T0 - 30_000),
    ]);
    let oru = build_oru(&b, &opts());
    let d = decode(oru.as_bytes(), T0 + 10_000, &OruOptions::default()).unwrap();
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    assert_eq!(d.header_rows(), 2);
    assert_eq!(d.ignored_rows(), 0);
    assert_eq!(d.header.control_id, "B1");
    // (device, metric, value, time, status, channel)
    type Stored<'a> = (&'a str, &'a str, f64, Millis, Status, Option<&'a str>);
    let got: Vec<Stored<'_>> = d
        .observations
        .iter()
        .map(|o| {
            (
                o.device_id.as_str(),
                o.metric.name,
                o.value,
                o.observed_at,
                o.status,
                o.channel.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "nibp-1",
                "nibp_sys",
                121.0,
                T0,
                Status::Valid,
                Some("1.1.1.1")
            ),
            (
                "nibp-1",
                "nibp_dia",
                79.0,
                T0,
                Status::Valid,
                Some("1.0.0.1")
            ),
            (
                "mon-2",
                "temp",
                36.8,
                T0 - 60_000,
                Status::Valid,
                Some("2.0.0.1")
            ),
            (
                "mon-2",
                "etco2",
                35.25,
                T0 - 30_000,
                Status::Valid,
                Some("2.0.0.2")
            ),
            (
                "mon-2",
                "rr",
                14.0,
                T0 - 30_000,
                Status::Valid,
                Some("2.0.0.3")
            ),
        ]
    );
    let claim = d.bed_claim.unwrap();
    assert_eq!(
        (
            claim.point_of_care.as_str(),
            claim.room.as_str(),
            claim.bed.as_str()
        ),
        ("ICU", "3", "B2")
    );
}

#[test]
fn escapes_every_text_field() {
    let nasty = "a|b^c~d\\e&f";
    let mut b = batch(vec![value("B1.0", "mon^1&x", "hr", Some(60.0), T0)]);
    b.patient = Patient {
        id: "id|1".into(),
        authority: Some("Auth^X".into()),
        family: Some(nasty.into()),
        given: Some("Zoë\nAnn".into()),
        birth_date: Some("1961-01-01".into()),
        sex: Some("F|M".into()),
    };
    b.location = Location {
        point_of_care: "ICU~2".into(),
        room: "R&1".into(),
        bed: "B\\3".into(),
    };
    let o = Pcd01Options {
        sending_application: "WARD|HUB".into(),
        sending_facility: "F^1".into(),
        receiving_application: "E~MR".into(),
        receiving_facility: "H&OSP".into(),
        patient_authority_default: None,
        processing_id: "P".into(),
    };
    let oru = build_oru(&b, &o);
    // Nothing from data ends a segment.
    assert_eq!(oru.matches('\r').count(), 6);
    assert!(!oru.contains('\n'));
    let msg = Message::parse(oru.as_bytes()).unwrap();
    let msh = msg.msh();
    assert_eq!(msh.len(), 21);
    assert_eq!(msh.field(3).text(), "WARD|HUB");
    assert_eq!(msh.field(4).text(), "F^1");
    assert_eq!(msh.field(5).text(), "E~MR");
    assert_eq!(msh.field(6).text(), "H&OSP");
    let pid = msg.segment("PID").unwrap();
    assert_eq!(pid.len(), 8);
    assert_eq!(pid.field(3).comp(1).text(), "id|1");
    assert_eq!(pid.field(3).comp(4).text(), "Auth^X");
    assert_eq!(pid.field(3).comp(5).text(), "MR");
    assert_eq!(pid.field(5).comp(1).text(), nasty);
    assert_eq!(pid.field(5).comp(2).text(), "Zoë\nAnn");
    assert_eq!(pid.field(5).comp(7).text(), "L");
    assert_eq!(pid.field(8).text(), "F|M");
    let pv1 = msg.segment("PV1").unwrap();
    assert_eq!(pv1.field(3).components(), ["ICU~2", "R&1", "B\\3"]);
    assert_eq!(pv1.field(3).reps().count(), 1);
    let obr = msg.segment("OBR").unwrap();
    assert_eq!(obr.field(3).components(), ["B1", "WARD|HUB"]);
    for r in obx(&msg) {
        assert_eq!(r.len(), 18);
        assert_eq!(r.field(18).components(), ["mon^1&x", "WARD|HUB"]);
        assert_eq!(r.field(18).comp(1).sub(1).text(), "mon^1&x");
    }
}

#[test]
fn statuses_map_to_obx8_and_obx11() {
    let with = |status: Status, v: Option<f64>| ChartedValue {
        status,
        ..value("x", "mon-1", "spo2", v, T0)
    };
    let b = batch(vec![
        with(Status::Valid, Some(97.0)),
        with(Status::Questionable, Some(91.0)),
        with(Status::Invalid, None),
        with(Status::Invalid, Some(55.0)),
        with(Status::NotAvailable, None),
        with(Status::Valid, None),
        with(Status::Valid, Some(f64::NAN)),
        with(Status::Valid, Some(f64::INFINITY)),
        with(Status::Valid, Some(f64::NEG_INFINITY)),
    ]);
    let oru = build_oru(&b, &opts());
    let msg = Message::parse(oru.as_bytes()).unwrap();
    let got: Vec<(String, String, String, String)> = obx(&msg)[1..]
        .iter()
        .map(|r| {
            (
                r.field(2).text().into_owned(),
                r.field(5).text().into_owned(),
                r.field(8).text().into_owned(),
                r.field(11).text().into_owned(),
            )
        })
        .collect();
    let row = |t: &str, v: &str, f: &str, s: &str| (t.into(), v.into(), f.into(), s.into());
    assert_eq!(
        got,
        [
            row("NM", "97", "", "R"),
            row("NM", "91", "QUES", "R"),
            row("NM", "", "INV", "X"),
            // A number flagged invalid is not charted.
            row("NM", "", "INV", "X"),
            row("NM", "", "NAV", "X"),
            row("NM", "", "NI", "X"),
            row("NM", "", "NAN", "X"),
            row("NM", "", "PINF", "X"),
            row("NM", "", "NINF", "X"),
        ]
    );
    // The hub's own decoder stores none of the X rows as a value.
    let d = decode(oru.as_bytes(), T0, &OruOptions::default()).unwrap();
    assert_eq!(d.observations.len(), 2);
    assert!(d.rejects.is_empty());
}

#[test]
fn periodic_values_carry_their_method_and_a_note() {
    let b = batch(vec![
        ChartedValue {
            method: ChartMethod::Last,
            period: Some((T0 - 3_600_000, T0)),
            count: 1,
            ..value("B1.0", "mon-1", "temp", Some(37.2), T0 - 120_000)
        },
        ChartedValue {
            method: ChartMethod::Median,
            period: None,
            count: 4,
            ..value("B1.1", "mon-1", "rr", Some(16.5), T0)
        },
    ]);
    let oru = build_oru(&b, &opts());
    let msg = Message::parse(oru.as_bytes()).unwrap();
    assert_eq!(
        names(&msg),
        ["MSH", "PID", "PV1", "OBR", "OBX", "OBX", "NTE", "OBX", "NTE"]
    );
    let rows = obx(&msg);
    let methods: Vec<Vec<String>> = rows[1]
        .field(17)
        .reps()
        .map(|r| vec![r.comp(1).text().into_owned(), r.comp(3).text().into_owned()])
        .collect();
    assert_eq!(methods, [["AMEAS", "MDC"], ["LAST", "99WARDHUB"]]);
    assert_eq!(rows[1].field(14).text(), format_hl7_time(T0 - 120_000));
    assert_eq!(rows[2].field(17).reps().count(), 1);
    assert_eq!(rows[2].field(17).comp(1).text(), "MEDIAN");
    let notes: Vec<String> = msg
        .segments()
        .iter()
        .filter(|s| s.name() == "NTE")
        .map(|s| s.field(3).text().into_owned())
        .collect();
    assert_eq!(
        notes,
        [
            "last valid value of 1 value from 2026-11-20T09:00:00.000Z until 2026-11-20T10:00:00.000Z",
            "median of 4 valid values",
        ]
    );
}

#[test]
fn channel_paths_fall_back_to_the_flat_form() {
    let chan = |id: &str, c: Option<&str>, at: Millis| ChartedValue {
        channel: c.map(Into::into),
        ..value(id, "mon-1", "spo2", Some(97.0), at)
    };
    let b = batch(vec![
        chan("a", Some("1.3.1.150456"), T0),
        // The same channel later: OBX-4 must stay unique in the message.
        chan("b", Some("1.3.1.150456"), T0 + 1_000),
        chan("c", Some("spo2-left"), T0),
        chan("d", Some("1.3.1.0"), T0),
        chan("e", Some("1.3.1"), T0),
        chan("f", Some("1.3.1.1.2"), T0),
        chan("g", Some("1.+3.1.4"), T0),
        chan("h", Some(""), T0),
        chan("i", Some("7.0.0.1"), T0),
        chan("j", None, T0),
    ]);
    let oru = build_oru(&b, &opts());
    let msg = Message::parse(oru.as_bytes()).unwrap();
    let paths: Vec<String> = obx(&msg)
        .iter()
        .map(|r| r.field(4).text().into_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "1.0.0.0",
            "1.3.1.150456",
            "1.0.0.1",
            "1.0.0.2",
            "1.0.0.3",
            "1.0.0.4",
            "1.0.0.5",
            "1.0.0.6",
            "1.0.0.7",
            // `7.0.0.1` moves under this MDS, where `1.0.0.1` is taken.
            "1.0.0.8",
            "1.0.0.9",
        ]
        .map(String::from)
    );
}

#[test]
fn a_channel_path_in_the_flat_form_is_not_used_twice() {
    let chan = |id: &str, c: Option<&str>| ChartedValue {
        channel: c.map(Into::into),
        ..value(id, "mon-1", "hr", Some(60.0), T0)
    };
    let b = batch(vec![
        chan("a", None),
        chan("b", Some("1.0.0.1")),
        chan("c", Some("1.0.0.3")),
        chan("d", None),
        chan("e", None),
    ]);
    let oru = build_oru(&b, &opts());
    let msg = Message::parse(oru.as_bytes()).unwrap();
    let paths: Vec<String> = obx(&msg)
        .iter()
        .map(|r| r.field(4).text().into_owned())
        .collect();
    assert_eq!(
        paths,
        ["1.0.0.0", "1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4", "1.0.0.5"]
    );
}

#[test]
fn numbers_are_shortest_and_never_exponential() {
    for (x, s) in [
        (97.0, "97"),
        (36.6, "36.6"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (-0.0, "0"),
        (-12.5, "-12.5"),
        (8_388_607.0, "8388607"),
    ] {
        assert_eq!(number(x), s);
        assert_eq!(s.parse::<f64>().unwrap(), if x == 0.0 { 0.0 } else { x });
    }
}

#[test]
fn patient_fields_and_defaults() {
    let mut b = batch(Vec::new());
    b.patient = Patient {
        id: "77".into(),
        authority: None,
        family: None,
        given: None,
        birth_date: Some("1961-01".into()),
        sex: None,
    };
    b.location = Location::default();
    let o = Pcd01Options {
        patient_authority_default: Some("MPI".into()),
        ..opts()
    };
    let oru = build_oru(&b, &o);
    let msg = Message::parse(oru.as_bytes()).unwrap();
    assert_eq!(names(&msg), ["MSH", "PID", "PV1", "OBR"]);
    let pid = msg.segment("PID").unwrap();
    assert_eq!(pid.field(3).components(), ["77", "", "", "MPI", "MR"]);
    assert!(pid.field(5).is_empty());
    assert_eq!(pid.field(7).text(), "196101");
    assert!(pid.field(8).is_empty());
    assert_eq!(msg.segment("PV1").unwrap().len(), 2);
    let obr = msg.segment("OBR").unwrap();
    assert!(obr.field(7).is_empty() && obr.field(8).is_empty());

    // The patient's own authority wins over the default; no authority at all leaves it empty.
    let oru = build_oru(&golden_batch(), &o);
    assert!(oru.contains("PID|||4711^^^HOSP^MR|"));
    b.patient.authority = Some("  ".into());
    let oru = build_oru(&b, &opts());
    assert!(oru.contains("PID|||77^^^^MR||||196101\r"));

    for (d, want) in [
        ("1961-01-01", Some("19610101")),
        ("19610101", Some("19610101")),
        ("1961", Some("1961")),
        ("1961-1-1", None),
        ("01.01.1961", None),
        ("", None),
        ("1961-01-0x", None),
    ] {
        assert_eq!(hl7_date(d).as_deref(), want, "{d}");
    }
}

/// The structure of wardhub's message against a real PCD-01 message: the NIST PCD test
/// tool's ACME_Gateway NIBP sample (`nist_acme_gateway_nibp.hl7`, see `SOURCE.md`).
#[test]
fn structure_matches_the_nist_pcd01_sample() {
    let sample = include_bytes!("nist_acme_gateway_nibp.hl7");
    let real = Message::parse(sample).unwrap();
    let b = batch(vec![
        value("B1.0", "nibp-1", "nibp_sys", Some(120.0), T0),
        value("B1.1", "nibp-1", "nibp_dia", Some(80.0), T0),
        value("B1.2", "nibp-1", "nibp_mean", Some(93.0), T0),
    ]);
    let oru = build_oru(&b, &opts());
    let ours = Message::parse(oru.as_bytes()).unwrap();

    // The same segment sequence, minus the sample's VMD and channel header rows.
    let header_rows = |m: &Message<'_>| {
        obx(m)
            .iter()
            .filter(|r| r.field(2).is_empty() && r.field(11).text() == "X")
            .count()
    };
    assert_eq!(header_rows(&real), 3);
    assert_eq!(header_rows(&ours), 1);
    let real_names: Vec<String> = names(&real);
    assert_eq!(&real_names[..4], ["MSH", "PID", "PV1", "OBR"]);
    assert_eq!(names(&ours)[..4], real_names[..4]);
    assert_eq!(obx(&ours).len() - 1, obx(&real).len() - 3 - 1);

    // MSH: type, version, acknowledgment modes, character set, profile (the sample names
    // the PCD DEC profile; the OID, namespace and type are those of IHE PCD-01).
    for f in [9, 12, 15, 16, 18] {
        assert_eq!(
            ours.msh().field(f).text(),
            real.msh().field(f).text(),
            "MSH-{f}"
        );
    }
    assert_eq!(
        ours.msh().field(21).components()[1..],
        real.msh().field(21).components()[1..]
    );
    assert_eq!(ours.msh().len(), real.msh().len());

    // PID-3 a CX with the authority in component 4 and an identifier type in 5; PID-5 an
    // XPN of name type L; PID-7 a date; PID-8 the sex.
    let (rp, op) = (real.segment("PID").unwrap(), ours.segment("PID").unwrap());
    assert_eq!(
        op.field(3).components().len(),
        rp.field(3).components().len()
    );
    assert_eq!(
        op.field(5).components().len(),
        rp.field(5).components().len()
    );
    assert_eq!(op.field(5).comp(7).text(), rp.field(5).comp(7).text());
    assert_eq!(op.field(7).text().len(), rp.field(7).text().len());
    assert_eq!(op.field(8).text().len(), rp.field(8).text().len());

    // PV1-2 the patient class; PV1-3 point of care, room, bed.
    let (rv, ov) = (real.segment("PV1").unwrap(), ours.segment("PV1").unwrap());
    assert_eq!(ov.field(2).text(), rv.field(2).text());
    assert_eq!(
        ov.field(3).components().len(),
        rv.field(3).components().len()
    );

    // OBR-4 the same service; OBR-3 an EI; OBR-7 a time.
    let (rr, or) = (real.segment("OBR").unwrap(), ours.segment("OBR").unwrap());
    assert_eq!(or.field(1).text(), rr.field(1).text());
    assert_eq!(or.field(4).components(), rr.field(4).components());
    assert!(!or.field(3).comp(1).is_empty() && !rr.field(3).comp(1).is_empty());
    assert!(!or.field(7).is_empty() && !rr.field(7).is_empty());

    // The MDS row: the same code, path, empty value type and status X.
    let (rm, om) = (obx(&real)[0], obx(&ours)[0]);
    for f in [2, 3, 4, 5, 6, 11] {
        assert_eq!(om.field(f).text(), rm.field(f).text(), "MDS OBX-{f}");
    }

    // The metric rows: the same codes, values, units, status; a time; the device in OBX-18
    // as entity id and namespace; OBX-4 four levels deep under the MDS.
    let real_metrics = &obx(&real)[3..6];
    let our_metrics = &obx(&ours)[1..4];
    for (r, o) in real_metrics.iter().zip(our_metrics) {
        for f in [2, 3, 5, 6, 7, 8, 11] {
            assert_eq!(o.field(f).text(), r.field(f).text(), "OBX-{f}");
        }
        let levels = |s: &Segment<'_>| s.field(4).text().split('.').count();
        assert_eq!(levels(o), levels(r));
        assert!(o.field(4).text().starts_with("1."));
        assert!(!o.field(14).is_empty() && !r.field(14).is_empty());
        assert_eq!(
            o.field(18).components().len(),
            r.field(18).components().len()
        );
    }
}
