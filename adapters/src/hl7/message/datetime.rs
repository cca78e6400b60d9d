//! HL7 date/times: [`parse_hl7_time`] reads a DTM/TS of any precision, with or without an
//! offset, into epoch milliseconds; [`format_hl7_time`] writes one in UTC with milliseconds.

use crate::model::Millis;

/// HL7 DTM in UTC with milliseconds: `20261120100000.000+0000`.
pub fn format_hl7_time(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an HL7 DTM/TS (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`) into epoch milliseconds.
/// Without an offset the time is taken to be at `default_offset_minutes` from UTC (HL7 says
/// "the sender's local time", which only configuration can know).
pub fn parse_hl7_time(s: &str, default_offset_minutes: i32) -> Option<Millis> {
    let s = s.trim();
    let (body, offset) = match s.find(['+', '-']) {
        Some(i) => {
            let (b, o) = s.split_at(i);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let o = &o[1..];
            if o.len() != 4 || !o.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let hh: i32 = o[..2].parse().ok()?;
            let mm: i32 = o[2..].parse().ok()?;
            if hh > 23 || mm > 59 {
                return None;
            }
            (b, sign * (hh * 60 + mm))
        }
        None => (s, default_offset_minutes),
    };
    let (digits, frac) = match body.split_once('.') {
        Some((d, f)) => (d, f),
        None => (body, ""),
    };
    if !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
        || !digits.bytes().all(|c| c.is_ascii_digit())
        || frac.len() > 4
        || !frac.bytes().all(|c| c.is_ascii_digit())
        || (!frac.is_empty() && digits.len() != 14)
    {
        return None;
    }
    let part = |from: usize, default: u32| -> Option<u32> {
        match digits.get(from..from + 2) {
            Some(p) => p.parse().ok(),
            None => Some(default),
        }
    };
    let year: i32 = digits[..4].parse().ok()?;
    let month = time::Month::try_from(u8::try_from(part(4, 1)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(part(6, 1)?).ok()?).ok()?;
    let millis = if frac.is_empty() {
        0
    } else {
        let f: u32 = frac.parse().ok()?;
        f * 10u32.pow(4 - u32::try_from(frac.len()).ok()?) / 10
    };
    let t = time::Time::from_hms_milli(
        u8::try_from(part(8, 0)?).ok()?,
        u8::try_from(part(10, 0)?).ok()?,
        u8::try_from(part(12, 0)?).ok()?,
        u16::try_from(millis).ok()?,
    )
    .ok()?;
    let offset = time::UtcOffset::from_whole_seconds(offset.checked_mul(60)?).ok()?;
    let dt = time::PrimitiveDateTime::new(date, t).assume_offset(offset);
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}
