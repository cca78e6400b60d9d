//! IHE PCD-01 (Communicate PCD Data, Device Observation Reporter → Device Observation
//! Consumer): one ORU^R01 (HL7 v2.6) per [`ChartBatch`], built by [`build_oru`].
//!
//! # Layout of the message
//!
//! ```text
//! MSH|^~\&|WARDHUB|fac|EMR|hosp|<created_at>||ORU^R01^ORU_R01|<batch id>|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO
//! PID|||<id>^^^<authority>^MR||<family>^<given>^^^^^L||<YYYYMMDD>|<sex>
//! PV1||I|<point of care>^<room>^<bed>
//! OBR|1||<batch id>^WARDHUB|182777000^monitoring of patient^SCT|||<earliest>|<latest>
//! OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||<device>^WARDHUB
//! OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|%^%^UCUM|||||R|||<observed_at>|||AMEAS^auto-measurement^MDC|<device>^WARDHUB
//! NTE|1|L|median of 12 valid values from … until …      (only after a median or last value)
//! ```
//!
//! Every segment ends with `\r` (HL7's segment terminator, as in the ACKs); there is no MLLP
//! framing. Every text from data (names, ids, the options) is escaped with [`escape`], so no
//! `|`, `^`, `~`, `\` or `&` from data reaches the message bare.
//!
//! The layout follows real PCD-01 messages (the NIST PCD test tool's "ACME_Gateway" NIBP
//! message, kept as `pcd01/nist_acme_gateway_nibp.hl7` with its source in
//! `pcd01/SOURCE.md`; GE's B40 and Mindray's VS900 PCD-01 output):
//!
//! - `OBR-4` is `182777000^monitoring of patient^SCT`: `SCT` is SNOMED CT's code in HL7
//!   table 0396, as the NIST, GE and Mindray messages write it (older IHE examples write
//!   `SNOMED-CT`, which the table does not have).
//! - One MDS row per device (`69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC`, `OBX-4`
//!   `n.0.0.0`, no value type, status `X`, the device in `OBX-18`), then its metrics. A
//!   metric's `OBX-4` is its channel when that is a PCD containment path
//!   (`MDS.VMD.CHAN.METRIC`, four numbers, the metric not 0), with the MDS number replaced by
//!   this message's (a device's own `1.` would otherwise put it under another device's MDS);
//!   else `n.0.0.k`, the flat form ("a not-applicable level is 0"). A path already used in
//!   the message (the same channel at two times) takes the flat form, as `OBX-4` must be
//!   unique within a message. VMD and channel header rows are not written: the hub does not
//!   know their codes, and PCD-01 does not require them (IHE's own AwareGateway sample has
//!   none).
//! - `OBX-6` is UCUM written `code^code^UCUM`, as in the NIST message (`mm[Hg]^mm[Hg]^UCUM`).
//! - `OBX-7` is empty: in PCD-01 it is the alarm range set on the device, which the hub does
//!   not chart.
//! - `OBX-18` is `device id^sending application` (EI: entity id, namespace), as GE
//!   (`080019FFFE0B4020^B40_GE`) and NIST (`…^GATEWAY_ACME`) write it; wardhub's device ids
//!   are not EUI-64s, so the universal-id components stay empty.
//!
//! # Status: OBX-8 and OBX-11
//!
//! PCD TF-2 maps the IEEE 11073 measurement status to `OBX-8` and `OBX-11`: a raw device
//! measurement that no one has validated is `R` ("results entered – not verified"; `F` only
//! once a clinician has validated it, which the hub never does); `questionable` is `QUES`
//! with `R`; `invalid` is `INV` with `X` ("results cannot be obtained"); `not-available` is
//! `NAV` with `X`. So:
//!
//! | value | `OBX-5` | `OBX-8` | `OBX-11` |
//! |---|---|---|---|
//! | valid | the number | | `R` |
//! | questionable | the number | `QUES` | `R` |
//! | invalid | empty | `INV` | `X` |
//! | not available | empty | `NAV` | `X` |
//! | no value (`None`), status valid or questionable | empty | `NI` (no information) | `X` |
//! | not finite | empty | `NAN` / `PINF` / `NINF` | `X` |
//!
//! A number the device flagged invalid or not available is never written, even when the
//! batch carries one: `X` with a value would contradict itself.
//!
//! # Method: OBX-17 and NTE
//!
//! `OBX-17` (CWE, repeating) is `AMEAS^auto-measurement^MDC` for a value charted as it was
//! stored. A value the hub chose from a charting period is told apart, as HL7 allows, with a
//! local code (`99WARDHUB`, the `99zzz` form of table 0396) and an `NTE` after its `OBX`
//! saying how many values it summarises and over which period:
//!
//! - last valid value: `AMEAS^auto-measurement^MDC~LAST^last valid value of the charting
//!   period^99WARDHUB` (the number is one of the device's measurements, unchanged);
//! - median: `MEDIAN^median of the valid values of the charting period^99WARDHUB` alone (the
//!   number is the hub's calculation, which no device measured; MDC has no calculation code
//!   that PCD-01 uses).
//!
//! `OBX-14` is `observed_at` (for a periodic value, the end of its period or the last value's
//! time); `OBR-7` and `OBR-8` are the earliest and the latest `observed_at` of the batch.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::hl7::message::{escape, format_hl7_time, hl7_date, number};
use crate::model::charting::{ChartBatch, ChartMethod, ChartedValue};
use crate::model::Status;

/// `OBX-3` of the MDS row of each device.
pub const MDS_CODE: &str = "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC";
/// `MSH-21`, the IHE PCD-01 message profile.
pub const PROFILE: &str = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO";
/// `OBR-4`.
pub const SERVICE: &str = "182777000^monitoring of patient^SCT";
/// The coding system of wardhub's own codes (HL7 table 0396, `99zzz`: local).
pub const LOCAL_CODING_SYSTEM: &str = "99WARDHUB";

const AMEAS: &str = "AMEAS^auto-measurement^MDC";
const LAST: &str = "LAST^last valid value of the charting period^99WARDHUB";
const MEDIAN: &str = "MEDIAN^median of the valid values of the charting period^99WARDHUB";

/// What the hub puts in the header of its ORU^R01 messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcd01Options {
    /// MSH-3 (and the namespace of OBR-3 and OBX-18), e.g. `WARDHUB`.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-5.
    pub receiving_application: String,
    /// MSH-6.
    pub receiving_facility: String,
    /// PID-3.4 when the patient's identifier names no assigning authority.
    pub patient_authority_default: Option<String>,
    /// MSH-11: `P` (production), `D` (debugging) or `T` (training).
    pub processing_id: String,
}

impl Default for Pcd01Options {
    fn default() -> Self {
        Pcd01Options {
            sending_application: "WARDHUB".into(),
            sending_facility: String::new(),
            receiving_application: String::new(),
            receiving_facility: String::new(),
            patient_authority_default: None,
            processing_id: "P".into(),
        }
    }
}

/// Builds the ORU^R01 of a batch: segments ended by `\r`, without MLLP framing.
pub fn build_oru(batch: &ChartBatch, opts: &Pcd01Options) -> String {
    let mut out = String::with_capacity(256 + 160 * batch.values.len());
    let app = escape(&opts.sending_application);

    // MSH-1 is the field separator itself, so the fields are written from MSH-2 on.
    let msh = [
        Cow::Borrowed("^~\\&"),
        app.clone(),
        escape(&opts.sending_facility),
        escape(&opts.receiving_application),
        escape(&opts.receiving_facility),
        Cow::Owned(format_hl7_time(batch.created_at)),
        Cow::Borrowed(""),
        Cow::Borrowed("ORU^R01^ORU_R01"),
        escape(&batch.id),
        escape(&opts.processing_id),
        Cow::Borrowed("2.6"),
        Cow::Borrowed(""),
        Cow::Borrowed(""),
        Cow::Borrowed("AL"),
        Cow::Borrowed("NE"),
        Cow::Borrowed(""),
        Cow::Borrowed("UNICODE UTF-8"),
        Cow::Borrowed(""),
        Cow::Borrowed(""),
        Cow::Borrowed(PROFILE),
    ];
    push_segment(&mut out, "MSH", &msh);

    let p = &batch.patient;
    let authority = p
        .authority
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .or(opts.patient_authority_default.as_deref())
        .unwrap_or("");
    let name = components(&[
        p.family.as_deref().unwrap_or(""),
        p.given.as_deref().unwrap_or(""),
    ]);
    let name = if name.is_empty() {
        name
    } else {
        format!("{name}^^^^^L")
    };
    push_segment(
        &mut out,
        "PID",
        &[
            "".into(),
            "".into(),
            components(&[&p.id, "", "", authority, "MR"]).into(),
            "".into(),
            name.into(),
            "".into(),
            p.birth_date
                .as_deref()
                .and_then(hl7_date)
                .unwrap_or_default()
                .into(),
            escape(p.sex.as_deref().unwrap_or("").trim()),
        ],
    );

    let l = &batch.location;
    push_segment(
        &mut out,
        "PV1",
        &[
            "".into(),
            "I".into(),
            components(&[&l.point_of_care, &l.room, &l.bed]).into(),
        ],
    );

    let times = batch.values.iter().map(|v| v.observed_at);
    let (first, last) = (times.clone().min(), times.max());
    push_segment(
        &mut out,
        "OBR",
        &[
            "1".into(),
            "".into(),
            components(&[&batch.id, &opts.sending_application]).into(),
            SERVICE.into(),
            "".into(),
            "".into(),
            first.map(format_hl7_time).unwrap_or_default().into(),
            last.map(format_hl7_time).unwrap_or_default().into(),
        ],
    );

    let mut set_id = 0usize;
    let mut paths: HashSet<String> = HashSet::new();
    for (mds, (device, values)) in by_device(&batch.values).into_iter().enumerate() {
        let mds = mds + 1;
        let equipment: Cow<'_, str> = components(&[device, &opts.sending_application]).into();
        set_id += 1;
        let mut row = fields(18);
        row[0] = set_id.to_string().into();
        row[2] = MDS_CODE.into();
        row[3] = format!("{mds}.0.0.0").into();
        row[10] = "X".into();
        row[17] = equipment.clone();
        push_segment(&mut out, "OBX", &row);

        let mut next_metric = 0u64;
        for v in values {
            let path = match channel_path(v.channel.as_deref(), mds) {
                Some(p) if !paths.contains(&p) => p,
                _ => loop {
                    next_metric += 1;
                    let p = format!("{mds}.0.0.{next_metric}");
                    if !paths.contains(&p) {
                        break p;
                    }
                },
            };
            paths.insert(path.clone());
            set_id += 1;
            let (value, flag, status) = result(v);
            let unit = escape(v.metric.unit);
            let mut row = fields(18);
            row[0] = set_id.to_string().into();
            row[1] = "NM".into();
            row[2] = components(&[&v.metric.code.to_string(), v.metric.refid, "MDC"]).into();
            row[3] = path.into();
            row[4] = value.into();
            row[5] = format!("{unit}^{unit}^UCUM").into();
            row[7] = flag.into();
            row[10] = status.into();
            row[13] = format_hl7_time(v.observed_at).into();
            row[16] = match v.method {
                ChartMethod::Every => AMEAS.into(),
                ChartMethod::Last => format!("{AMEAS}~{LAST}").into(),
                ChartMethod::Median => MEDIAN.into(),
            };
            row[17] = equipment.clone();
            push_segment(&mut out, "OBX", &row);
            if let Some(note) = super::method_note(v) {
                push_segment(&mut out, "NTE", &["1".into(), "L".into(), escape(&note)]);
            }
        }
    }
    out
}

/// `n` empty fields.
fn fields<'a>(n: usize) -> Vec<Cow<'a, str>> {
    vec![Cow::Borrowed(""); n]
}

/// Writes `name|f1|f2|…\r`, without trailing empty fields. The fields are already encoded.
fn push_segment(out: &mut String, name: &str, fields: &[Cow<'_, str>]) {
    let n = fields
        .iter()
        .rposition(|f| !f.is_empty())
        .map_or(0, |i| i + 1);
    out.push_str(name);
    for f in &fields[..n] {
        out.push('|');
        out.push_str(f);
    }
    out.push('\r');
}

/// Text components, each escaped, joined with `^`, without trailing empty components.
fn components(parts: &[&str]) -> String {
    let n = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    let mut out = String::new();
    for (i, p) in parts[..n].iter().enumerate() {
        if i > 0 {
            out.push('^');
        }
        out.push_str(&escape(p));
    }
    out
}

/// The values of each device, devices in the order they first appear.
fn by_device(values: &[ChartedValue]) -> Vec<(&str, Vec<&ChartedValue>)> {
    let mut out: Vec<(&str, Vec<&ChartedValue>)> = Vec::new();
    for v in values {
        match out.iter_mut().find(|(d, _)| *d == v.device_id) {
            Some((_, vs)) => vs.push(v),
            None => out.push((&v.device_id, vec![v])),
        }
    }
    out
}

/// A channel that is a PCD containment path (`MDS.VMD.CHAN.METRIC`, the metric not 0),
/// moved under MDS `mds`.
fn channel_path(channel: Option<&str>, mds: usize) -> Option<String> {
    let parts: Vec<u32> = channel?
        .split('.')
        .map(|p| {
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    match parts[..] {
        [_, vmd, chan, metric] if metric != 0 => Some(format!("{mds}.{vmd}.{chan}.{metric}")),
        _ => None,
    }
}

/// `OBX-5`, `OBX-8` and `OBX-11` of a value (see the module docs).
fn result(v: &ChartedValue) -> (String, &'static str, &'static str) {
    match (v.status, v.value) {
        (Status::Invalid, _) => (String::new(), "INV", "X"),
        (Status::NotAvailable, _) => (String::new(), "NAV", "X"),
        (_, None) => (String::new(), "NI", "X"),
        (_, Some(x)) if x.is_nan() => (String::new(), "NAN", "X"),
        (_, Some(x)) if x == f64::INFINITY => (String::new(), "PINF", "X"),
        (_, Some(x)) if x == f64::NEG_INFINITY => (String::new(), "NINF", "X"),
        (Status::Questionable, Some(x)) => (number(x), "QUES", "R"),
        (Status::Valid, Some(x)) => (number(x), "", "R"),
    }
}

#[cfg(test)]
mod tests;
