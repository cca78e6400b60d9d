//! ORU^R01 (IHE PCD-01) → canonical observations.
//!
//! # Mapping
//!
//! - Message: `MSH-9` must be `ORU^R01` (else AR 200/201), `MSH-12` 2.3–2.6 or empty (else
//!   AR 203), `MSH-10` present (else AE 101). `PID` is never read: patient identity comes from
//!   the registry's bed binding, and patient identifiers must not reach logs or labels.
//! - `PV1-3` (point of care^room^bed) is returned as a [`BedClaim`] for the hub to
//!   cross-check against the registry; it never decides the bed.
//! - Each `OBX`, numbered by its position among the message's OBX segments (`OBX-1` is often
//!   empty in real feeds), is exactly one of: an observation, a reject ([`RowReject`], an ERR
//!   segment in the ACK), or a skip with its reason ([`SkippedRow`], counted in
//!   `wardhub_ingest_skipped_total{reason}` and logged once per device and reason):
//!   - header rows (no value type, no value: the MDS/VMD/channel rows of PCD-01, status `X`)
//!     only carry device identity in `OBX-18` ([`SkipReason::Header`]);
//!   - rows with status `D` or `W` (deleted, wrong patient): [`SkipReason::Deleted`];
//!   - `OBX-2`: only `NM`, and `SN` when it is a plain number (`^96`, not `<^90` or
//!     `^90^-^95`), are numbers; `NA` and `MA` are waveforms, and rows below a waveform's
//!     `OBX-4` path (sample rate, resolution) belong to it ([`SkipReason::Waveform`]); any
//!     other type (`ST`, `CWE`, `CE`, `TX`, …) is [`SkipReason::NotNumeric`];
//!   - `OBX-3` by coding system ([`crate::hl7::codes`]): MDC by code, with a reference id
//!     that must agree (else the row is refused); LOINC through the built-in vital-signs
//!     table; vendor-local systems only through configured tables; a display text alone
//!     never selects a metric. NIBP cuff codes and some vendor variants (`MDC_TEMP`,
//!     `MDC_TEMP_AXIL`, `MDC_TTHOR_RESP_RATE`, `MDC_ECG_CARD_BEAT_RATE`) map to the canonical
//!     metrics. Anything else is [`SkipReason::UnknownMetric`]; a known metric without a
//!     value is [`SkipReason::NoValue`];
//!   - `OBX-5` a decimal number; the sentinels of [`OruOptions::sentinels`] (by default
//!     8388607, IEEE 11073 "not available", and -999, -99.9, -100 seen in vendor feeds) and
//!     the text `NaN` make that row's observation not-available; more per sender (MSH-3)
//!     in [`SenderRule::sentinels`];
//!   - `OBX-6` an MDC dimension (`262688^MDC_DIM_PERCENT^MDC`; kPa and cmH2O are converted
//!     to mmHg) or UCUM / common spelling;
//!   - `OBX-7` reference ranges (`50-120`, `90^160`) are accepted and not used;
//!   - `OBX-8` null flavours (`NAV`, `OFF`, `NI`, …) and 11073 measurement states
//!     (`invalid`, `questionable`, `demo-data`, …) set the status; abnormal flags (`H`, `LL`)
//!     do not;
//!   - `OBX-14` the time, else the enclosing `OBR-7`, else `MSH-7`, else receipt time;
//!   - device id: the row's `OBX-18` (EI: first component, or the universal id of an EUI-64
//!     with an empty first component); else the `OBX-18` of the outermost enclosing header row
//!     by `OBX-4` path (`1.0.0.0` encloses `1.3.1.150456`); else the message's only
//!     `OBX-18` id when it names exactly one; else, when no OBX names a device, `MSH-3` then
//!     `MSH-4` (HD: the universal id when its type is EUI-64, else the namespace id). A row
//!     that could belong to one of several devices is refused rather than guessed. A sender
//!     can have its own rule ([`SenderRule::identity`], by MSH-3): `obx18` (never MSH),
//!     `msh3`, or `msh4` (a product name in MSH-3 and the serial in MSH-4, as Comen's
//!     `NC_Monitor` sends: otherwise every monitor of the model would be one device);
//! - times without an offset are the sender's local time: `utc_offset_minutes` of the
//!   adapter (default 0, UTC), or of the sender's rule.
//!
//! # Layout
//!
//! This file walks the message (header, sender rule, OBR times, waveform scopes, header rows)
//! and collects each row's outcome into a [`DecodedOru`]; `options` is how to decode
//! ([`OruOptions`], [`SenderRule`]); `row` decides what one OBX row is; `identity` which
//! device a row belongs to; `values` reads the numbers, units and flags of a row's fields.

mod identity;
mod options;
mod row;
mod values;

pub use options::{Identity, OruOptions, SenderRule, DEFAULT_SENTINELS};

use identity::{ei_device, fallback_device, header_prefix};
use row::{map_row, Row, RowCtx, RowOutcome};

use crate::hl7::message::{AckCode, AckError, Header, Message, Value};
use crate::model::{DeviceId, Millis, Observation, Reject, RejectReason};

/// Versions accepted in `MSH-12`.
pub const SUPPORTED_VERSIONS: &[&str] = &["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"];

/// Why an OBX row was skipped (neither stored nor refused): a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// An MDS / VMD / channel row of the device hierarchy (no value).
    Header,
    /// A waveform (`OBX-2` NA or MA) or a row describing one (sample rate, resolution).
    Waveform,
    /// A value of a type that is not a number (ST, TX, CWE, CE, an SN range, …).
    NotNumeric,
    /// A code no table of its coding system knows.
    UnknownMetric,
    /// A known metric without a value.
    NoValue,
    /// Status D (deleted) or W (wrong patient).
    Deleted,
}

impl SkipReason {
    pub const ALL: [SkipReason; 6] = [
        SkipReason::Header,
        SkipReason::Waveform,
        SkipReason::NotNumeric,
        SkipReason::UnknownMetric,
        SkipReason::NoValue,
        SkipReason::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Header => "header",
            SkipReason::Waveform => "waveform",
            SkipReason::NotNumeric => "not_numeric",
            SkipReason::UnknownMetric => "unknown_metric",
            SkipReason::NoValue => "no_value",
            SkipReason::Deleted => "deleted",
        }
    }
}

/// One skipped OBX row.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRow {
    /// The row's position among the message's OBX segments, from 1.
    pub obx: usize,
    pub reason: SkipReason,
    /// The row's own device (OBX-18), when it names one.
    pub device: Option<DeviceId>,
}

/// The location a message claims in `PV1-3` (unescaped; subcomponents joined with `&`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BedClaim {
    pub point_of_care: String,
    pub room: String,
    pub bed: String,
}

/// One refused OBX row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowReject {
    /// The row's position among the message's OBX segments, from 1.
    pub obx: usize,
    /// The field at fault (`OBX-5` → 5).
    pub field: usize,
    /// The row's device, when it could be told.
    pub device: Option<DeviceId>,
    pub reject: Reject,
}

/// A decoded ORU^R01.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedOru {
    pub header: Header,
    /// Valid observations, `bed: None`.
    pub observations: Vec<Observation>,
    /// For each observation, its OBX position (for ERR locations).
    pub obx_of: Vec<usize>,
    pub rejects: Vec<RowReject>,
    /// Rows skipped on purpose, each with its reason: every OBX row is an observation, a
    /// reject or one of these.
    pub skipped: Vec<SkippedRow>,
    /// Observations stored as not-available because their value was a sentinel.
    pub sentinel_rows: usize,
    pub bed_claim: Option<BedClaim>,
}

impl DecodedOru {
    /// Device/channel header rows.
    pub fn header_rows(&self) -> usize {
        self.skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Header)
            .count()
    }

    /// Rows skipped for any other reason.
    pub fn ignored_rows(&self) -> usize {
        self.skipped.len() - self.header_rows()
    }
}

/// A message refused as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct OruError {
    /// The MSH when it could be read, to answer the sender.
    pub header: Option<Box<Header>>,
    pub ack: AckCode,
    pub error: AckError,
    pub reject: Reject,
}

impl OruError {
    fn new(
        header: Option<Header>,
        ack: AckCode,
        reason: RejectReason,
        code: u16,
        segment: Option<(&'static str, usize)>,
        field: Option<usize>,
        detail: String,
    ) -> Self {
        OruError {
            header: header.map(Box::new),
            ack,
            error: AckError {
                segment,
                field,
                code,
                detail: detail.clone(),
            },
            reject: Reject::new(reason, detail),
        }
    }
}

/// The HL7 table 0357 code for a reject reason.
pub fn hl7_error_code(reason: RejectReason) -> u16 {
    match reason {
        RejectReason::Malformed => 100,
        RejectReason::Schema
        | RejectReason::NonFinite
        | RejectReason::OutOfRange
        | RejectReason::TooOld => 102,
        RejectReason::UnknownMetric | RejectReason::UnitMismatch => 103,
        RejectReason::Unsupported => 200,
        RejectReason::BadDeviceId | RejectReason::UnknownDevice => 204,
        RejectReason::TooLarge
        | RejectReason::TooMany
        | RejectReason::UnknownTopic
        | RejectReason::Internal => 207,
    }
}

/// Decodes one message (the content of an MLLP frame) received at `now`.
pub fn decode(frame: &[u8], now: Millis, opts: &OruOptions) -> Result<DecodedOru, OruError> {
    let msg = Message::parse(frame).map_err(|e| {
        OruError::new(
            Header::read(frame).ok(),
            AckCode::Error,
            RejectReason::Malformed,
            100,
            None,
            None,
            e.to_string(),
        )
    })?;
    let header = Header::from_msh(msg.msh());
    check_header(&header)?;

    let bed_claim = msg.segment("PV1").and_then(|pv1| bed_claim(pv1.field(3)));
    let sender = msg.msh().field(3).comp(1).trimmed();
    let rule = opts
        .senders
        .iter()
        .find(|(who, _)| who.eq_ignore_ascii_case(&sender))
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    let utc_offset = rule
        .utc_offset_minutes
        .unwrap_or(opts.default_utc_offset_minutes);
    let msh_time = parse_time(&header.time, utc_offset);

    let fallback: Option<DeviceId> = fallback_device(&msg, rule.identity);
    // MSH-3 / MSH-4 rules name the device of every row, whatever OBX-18 says.
    let forced = matches!(rule.identity, Identity::Msh3 | Identity::Msh4);
    if forced && fallback.is_none() {
        return Err(OruError::new(
            Some(header.clone()),
            AckCode::Error,
            RejectReason::BadDeviceId,
            204,
            Some(("MSH", 1)),
            Some(if rule.identity == Identity::Msh3 {
                3
            } else {
                4
            }),
            "this sender's device id comes from MSH-3/MSH-4, which names none".into(),
        ));
    }

    let mut out = DecodedOru {
        header,
        observations: Vec::new(),
        obx_of: Vec::new(),
        rejects: Vec::new(),
        skipped: Vec::new(),
        sentinel_rows: 0,
        bed_claim,
    };
    let mut sentinels = opts.sentinels.clone();
    sentinels.extend_from_slice(&rule.sentinels);
    // Paths of waveform rows: the rows below them describe the waveform.
    let mut waveforms: Vec<&[u8]> = Vec::new();
    // Header rows' device ids by OBX-4 path prefix, outermost first when searched.
    let mut header_ids: Vec<(Vec<&[u8]>, DeviceId)> = Vec::new();
    let mut obr_time: Option<Millis> = None;
    let mut obx_n = 0;
    for seg in msg.segments() {
        match seg.name() {
            "OBR" => obr_time = parse_time(&seg.field(7).comp(1).trimmed(), utc_offset),
            "OBX" => {
                obx_n += 1;
                let row = Row {
                    value_type: seg.field(2).comp(1).trimmed(),
                    obx3: seg.field(3),
                    path: seg.field(4).comp(1).raw(),
                    value: seg.field(5),
                    unit: seg.field(6),
                    flags: seg.field(8),
                    status: seg.field(11).comp(1).trimmed(),
                    time: seg.field(14).comp(1).trimmed(),
                    device: seg.field(18),
                };
                let ctx = RowCtx {
                    now,
                    opts,
                    obr_time: obr_time.or(msh_time),
                    fallback: fallback.as_ref(),
                    header_ids: &header_ids,
                    sentinels: &sentinels,
                    utc_offset,
                    forced,
                };
                let under_waveform = !row.path.is_empty()
                    && waveforms.iter().any(|w| {
                        row.path.len() > w.len()
                            && row.path.starts_with(w)
                            && row.path[w.len()] == b'.'
                    });
                let outcome = if under_waveform {
                    RowOutcome::Skipped(SkipReason::Waveform)
                } else {
                    map_row(&row, &ctx)
                };
                let skip = |out: &mut DecodedOru, reason| {
                    out.skipped.push(SkippedRow {
                        obx: obx_n,
                        reason,
                        device: ei_device(row.device)
                            .and_then(|id| DeviceId::new(id.as_ref()).ok()),
                    })
                };
                match outcome {
                    RowOutcome::Header(id) => {
                        skip(&mut out, SkipReason::Header);
                        if let Some(id) = id {
                            let prefix = header_prefix(row.path);
                            if !prefix.is_empty() {
                                header_ids.push((prefix, id));
                            }
                        }
                    }
                    RowOutcome::Skipped(reason) => {
                        if reason == SkipReason::Waveform && !row.path.is_empty() {
                            waveforms.push(row.path);
                        }
                        skip(&mut out, reason);
                    }
                    RowOutcome::Observation(o, sentinel) => {
                        out.sentinel_rows += usize::from(sentinel);
                        out.observations.push(o);
                        out.obx_of.push(obx_n);
                    }
                    RowOutcome::Rejected {
                        field,
                        device,
                        mut reject,
                    } => {
                        reject.detail = format!("OBX {obx_n}: {}", reject.detail);
                        out.rejects.push(RowReject {
                            obx: obx_n,
                            field,
                            device,
                            reject,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn check_header(h: &Header) -> Result<(), OruError> {
    let err = |ack, reason, code, field, detail: &str| {
        Err(OruError::new(
            Some(h.clone()),
            ack,
            reason,
            code,
            Some(("MSH", 1)),
            Some(field),
            detail.to_owned(),
        ))
    };
    if !h.message_type.eq_ignore_ascii_case("ORU") {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            200,
            9,
            "only ORU^R01 messages are accepted",
        );
    }
    if !h.trigger.eq_ignore_ascii_case("R01") {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            201,
            9,
            "only ORU^R01 messages are accepted",
        );
    }
    if !(h.version.is_empty() || SUPPORTED_VERSIONS.contains(&h.version.as_str())) {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            203,
            12,
            "HL7 versions 2.3 to 2.6 are accepted",
        );
    }
    if h.control_id.is_empty() {
        return err(
            AckCode::Error,
            RejectReason::Schema,
            101,
            10,
            "MSH-10 (message control id) is missing",
        );
    }
    Ok(())
}

fn parse_time(s: &str, utc_offset_minutes: i32) -> Option<Millis> {
    crate::hl7::message::parse_hl7_time(s, utc_offset_minutes)
}

fn bed_claim(pl: Value<'_>) -> Option<BedClaim> {
    let comp = |n: usize| -> String {
        let c = pl.comp(n);
        let parts: Vec<String> = (1..=8)
            .map(|i| c.sub(i).trimmed().into_owned())
            .filter(|s| !s.is_empty())
            .collect();
        parts.join("&")
    };
    let claim = BedClaim {
        point_of_care: comp(1),
        room: comp(2),
        bed: comp(3),
    };
    (claim != BedClaim::default()).then_some(claim)
}

#[cfg(test)]
mod tests;
