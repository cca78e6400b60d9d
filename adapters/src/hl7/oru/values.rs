//! One OBX row's fields read as wardhub's values: `OBX-5` numbers (NM, and SN when it is a
//! plain number), `OBX-6` units (MDC dimensions, Philips MDIL, UCUM or a common spelling),
//! `OBX-8` flags as a [`Status`], and `OBX-4` as a channel. Pure functions of one field each;
//! which of them a row needs, and what a failure means for it, is `row`'s job.

use std::borrow::Cow;

use crate::hl7::message::Value;
use crate::model::Status;

/// The OBX-4 path as a channel (`1.3.2.150456`), when it is one.
pub(super) fn channel_of(path: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(path).ok()?.trim();
    crate::model::is_valid_channel(s).then(|| s.to_owned())
}

/// An SN (structured numeric) that is a plain number: no comparator (or `=`), no second
/// number. `<5`, `2-4`, `1:128` are not plain numbers.
pub(super) fn plain_sn<'a>(v: Value<'a>) -> Option<Cow<'a, str>> {
    let comparator = v.comp(1).trimmed();
    let (sep, num2) = (v.comp(3).trimmed(), v.comp(4).trimmed());
    if !(comparator.is_empty() || comparator == "=") || !sep.is_empty() || !num2.is_empty() {
        return None;
    }
    Some(v.comp(2).trimmed())
}

/// HL7 NM: optional sign, digits, optional decimal point. Exponents are tolerated.
pub(super) fn parse_number(s: &str) -> Option<f64> {
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !ok {
        // Rejects "NaN", "inf" and the like, which Rust's parser would accept.
        return None;
    }
    s.parse().ok()
}

/// IEEE 11073-10101 dimension codes (partition 4) wardhub's metrics use, with their UCUM.
pub(super) static MDC_DIMENSIONS: &[(u32, &str, &str)] = &[
    (262688, "MDC_DIM_PERCENT", "%"),
    (264864, "MDC_DIM_BEAT_PER_MIN", "/min"),
    (264928, "MDC_DIM_RESP_PER_MIN", "/min"),
    (266016, "MDC_DIM_MMHG", "mm[Hg]"),
    (265987, "MDC_DIM_KILO_PASCAL", "kPa"),
    (266048, "MDC_DIM_CM_H2O", "cm[H2O]"),
    (268192, "MDC_DIM_DEGC", "Cel"),
    (266560, "MDC_DIM_FAHR", "[degF]"),
];

/// The unit of `OBX-6` as a string
/// [`to_canonical_unit`](crate::model::to_canonical_unit) knows, or `None` for an MDC
/// dimension wardhub does not know.
pub(super) fn unit_of<'a>(obx6: Value<'a>) -> Option<Cow<'a, str>> {
    let c1 = obx6.comp(1).trimmed();
    let c2 = obx6.comp(2).trimmed();
    let c3 = obx6.comp(3).trimmed();
    // Philips MDIL units are MDC dimensions written `0004-TTTT` (partition 4, term in hex).
    if c3.eq_ignore_ascii_case("MDIL") {
        let code = c1
            .split_once('-')
            .filter(|(p, _)| p.trim_start_matches('0') == "4")
            .and_then(|(_, t)| u32::from_str_radix(t, 16).ok())
            .map(|t| (4 << 16) | t);
        return match code.and_then(|c| MDC_DIMENSIONS.iter().find(|(dc, _, _)| *dc == c)) {
            Some((_, _, ucum)) => Some(Cow::Borrowed(*ucum)),
            None => Some(if c1.is_empty() { c2 } else { c1 }),
        };
    }
    let is_mdc = c3.eq_ignore_ascii_case("MDC")
        || (!c1.is_empty() && c1.bytes().all(|b| b.is_ascii_digit()))
        || c1.starts_with("MDC_DIM")
        || c2.starts_with("MDC_DIM");
    if !is_mdc {
        return Some(if c1.is_empty() { c2 } else { c1 });
    }
    let code: Option<u32> = c1.parse().ok();
    MDC_DIMENSIONS
        .iter()
        .find(|(dc, refid, _)| {
            Some(*dc) == code || c2.eq_ignore_ascii_case(refid) || c1.eq_ignore_ascii_case(refid)
        })
        .map(|(_, _, ucum)| Cow::Borrowed(*ucum))
}

/// The status told by `OBX-8` (null flavours, 11073 measurement states); the worst wins.
pub(super) fn flag_status(flags: Value<'_>) -> Status {
    let mut worst = Status::Valid;
    for rep in flags.reps() {
        let f = rep.comp(1).trimmed().to_ascii_lowercase().replace('_', "-");
        let s = match f.as_str() {
            "ni" | "na" | "nav" | "off" | "msk" | "oth" | "unk" | "not-available"
            | "unavailable" => Status::NotAvailable,
            "nan"
            | "pinf"
            | "ninf"
            | "invalid"
            | "demo"
            | "demo-data"
            | "test-data"
            | "calibration-ongoing" => Status::Invalid,
            "questionable" | "early-indication" => Status::Questionable,
            _ => Status::Valid,
        };
        if s.to_u8() > worst.to_u8() {
            worst = s;
        }
    }
    worst
}
