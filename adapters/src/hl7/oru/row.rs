//! One OBX row → one [`RowOutcome`]: a header row, a skip with its reason, an observation, or
//! a reject naming the field at fault. The checks run in a fixed order (header or deleted
//! row, value type, code, device, value, unit, flags, time, then the model's value and time
//! limits); the device comes before the value so that every later reject can name it. The
//! rules themselves are listed in the module docs of [`crate::hl7::oru`]; walking the
//! message's segments, and what a row's outcome does to the rest of it, is `decode`'s job.

use std::borrow::Cow;

use super::identity::{ei_device, row_device};
use super::values::{channel_of, flag_status, parse_number, plain_sn, unit_of};
use super::{parse_time, OruOptions, SkipReason};
use crate::hl7::codes::NoMetric;
use crate::hl7::message::Value;
use crate::model::{
    check_value_and_time, to_canonical_unit, DeviceId, Millis, Observation, Reject, RejectReason,
    Status, MDC_NOT_AVAILABLE,
};

/// The fields of one OBX segment that decoding reads.
pub(super) struct Row<'a> {
    pub(super) value_type: Cow<'a, str>,
    pub(super) obx3: Value<'a>,
    pub(super) path: &'a [u8],
    pub(super) value: Value<'a>,
    pub(super) unit: Value<'a>,
    pub(super) flags: Value<'a>,
    pub(super) status: Cow<'a, str>,
    pub(super) time: Cow<'a, str>,
    pub(super) device: Value<'a>,
}

/// What a row is decoded against: the message around it and the options.
pub(super) struct RowCtx<'c, 'a> {
    pub(super) now: Millis,
    pub(super) opts: &'c OruOptions,
    pub(super) obr_time: Option<Millis>,
    pub(super) fallback: Option<&'c DeviceId>,
    pub(super) header_ids: &'c [(Vec<&'a [u8]>, DeviceId)],
    pub(super) sentinels: &'c [f64],
    pub(super) utc_offset: i32,
    /// The sender's rule names the device (MSH-3 / MSH-4): `fallback` for every row.
    pub(super) forced: bool,
}

/// What one row is.
pub(super) enum RowOutcome {
    Header(Option<DeviceId>),
    Skipped(SkipReason),
    /// The observation, and whether its value was a sentinel.
    Observation(Observation, bool),
    Rejected {
        field: usize,
        device: Option<DeviceId>,
        reject: Reject,
    },
}

fn rejected(
    field: usize,
    device: Option<DeviceId>,
    reason: RejectReason,
    detail: String,
) -> RowOutcome {
    RowOutcome::Rejected {
        field,
        device,
        reject: Reject::new(reason, detail),
    }
}

pub(super) fn map_row(row: &Row<'_>, ctx: &RowCtx<'_, '_>) -> RowOutcome {
    let own_id = ei_device(row.device);
    let value_text = row.value.comp(1).trimmed();
    if value_text.is_empty() && (row.value_type.is_empty() || row.status.eq_ignore_ascii_case("X"))
    {
        return RowOutcome::Header(own_id.and_then(|id| DeviceId::new(id.as_ref()).ok()));
    }
    if matches!(row.status.as_ref(), "D" | "W" | "d" | "w") {
        return RowOutcome::Skipped(SkipReason::Deleted);
    }
    // Only numbers become numeric observations: NM, and SN when it is a plain number.
    let value_text = match row.value_type.to_ascii_uppercase().as_str() {
        "NM" => value_text,
        "SN" => match plain_sn(row.value) {
            Some(v) => v,
            None => return RowOutcome::Skipped(SkipReason::NotNumeric),
        },
        "NA" | "MA" => return RowOutcome::Skipped(SkipReason::Waveform),
        _ => return RowOutcome::Skipped(SkipReason::NotNumeric),
    };
    // Codes are the first subcomponent (`8867-4&1`: code and instance, in Dräger feeds).
    let c = |i: usize| {
        if i % 3 == 1 {
            row.obx3.comp(i).sub(1).trimmed()
        } else {
            row.obx3.comp(i).trimmed()
        }
    };
    let (c1, c2, c3, c4, c5, c6) = (c(1), c(2), c(3), c(4), c(5), c(6));
    let metric = match ctx.opts.codes.metric([&c1, &c2, &c3, &c4, &c5, &c6]) {
        Ok(m) => m,
        Err(NoMetric::Unknown) => return RowOutcome::Skipped(SkipReason::UnknownMetric),
        Err(NoMetric::Conflict(why)) => {
            let device = ei_device(row.device).and_then(|id| DeviceId::new(id.as_ref()).ok());
            return rejected(3, device, RejectReason::Schema, why);
        }
    };
    if value_text.is_empty() {
        return RowOutcome::Skipped(SkipReason::NoValue);
    }

    // Device first, so that every later reject can name it.
    let device = match row_device(own_id, row.path, ctx.header_ids, ctx.fallback, ctx.forced) {
        Ok(d) => d,
        Err(why) => return rejected(18, None, RejectReason::BadDeviceId, why.into()),
    };
    let dev = || Some(device.clone());

    let raw = if value_text.eq_ignore_ascii_case("nan") {
        Some(f64::NAN)
    } else {
        parse_number(&value_text)
    };
    let raw = match raw {
        Some(v) => v,
        None => {
            return rejected(
                5,
                dev(),
                RejectReason::Schema,
                format!("{} value (OBX-5) is not a number", metric.name),
            )
        }
    };
    let unit = match unit_of(row.unit) {
        Some(u) => u,
        None => {
            return rejected(
                6,
                dev(),
                RejectReason::UnitMismatch,
                format!("unit (OBX-6) is not a known unit for {}", metric.name),
            )
        }
    };
    let mut status = flag_status(row.flags);
    if row.status.eq_ignore_ascii_case("X") {
        status = Status::NotAvailable;
    }
    let sentinel = raw.is_nan() || ctx.sentinels.contains(&raw);
    let converted = to_canonical_unit(metric, &unit, raw).map_err(|e| {
        rejected(
            6,
            dev(),
            RejectReason::UnitMismatch,
            format!("{} unit (OBX-6) {e}", metric.name),
        )
    });
    let value = match converted {
        Err(r) => return r,
        Ok(_) if sentinel => {
            status = Status::NotAvailable;
            MDC_NOT_AVAILABLE
        }
        Ok(v) => v,
    };
    let observed_at = if row.time.is_empty() {
        ctx.obr_time.unwrap_or(ctx.now)
    } else {
        match parse_time(&row.time, ctx.utc_offset) {
            Some(t) => t,
            None => {
                return rejected(
                    14,
                    dev(),
                    RejectReason::Schema,
                    "time (OBX-14) is not an HL7 date/time".into(),
                )
            }
        }
    };
    if let Err(reject) = check_value_and_time(
        metric,
        value,
        status,
        observed_at,
        ctx.now,
        &ctx.opts.limits,
    ) {
        let field = match reject.reason {
            RejectReason::TooOld => 14,
            _ => 5,
        };
        return RowOutcome::Rejected {
            field,
            device: dev(),
            reject,
        };
    }
    RowOutcome::Observation(
        Observation {
            device_id: device,
            bed: None,
            metric,
            value,
            observed_at,
            received_at: ctx.now,
            status,
            channel: channel_of(row.path),
            clock_correction_ms: 0,
        },
        sentinel,
    )
}
