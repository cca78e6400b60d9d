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

use std::borrow::Cow;

use crate::hl7::codes::{Codes, NoMetric};
use crate::hl7::message::{AckCode, AckError, Header, Message, Value};
use crate::model::{
    check_value_and_time, to_canonical_unit, DeviceId, Millis, Observation, Reject, RejectReason,
    Status, TimeLimits, MDC_NOT_AVAILABLE,
};

/// Versions accepted in `MSH-12`.
pub const SUPPORTED_VERSIONS: &[&str] = &["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"];

/// "No value" sentinels found in real feeds: IEEE 11073's 8388607 (2^23-1, "not a number"),
/// Mindray's -999, Mindray's temperature with the probe off (-99.9), and -100. A row holding
/// one is stored as not-available; the rest of the message is kept. (Text `NaN` is one too.)
pub const DEFAULT_SENTINELS: &[f64] = &[MDC_NOT_AVAILABLE, -999.0, -99.9, -100.0];

/// How to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct OruOptions {
    pub limits: TimeLimits,
    /// The UTC offset of HL7 times that carry none.
    pub default_utc_offset_minutes: i32,
    /// Which metric an OBX-3 names, by coding system.
    pub codes: Codes,
    /// Values that mean "no value" from any sender.
    pub sentinels: Vec<f64>,
    /// Rules for one sender, by its MSH-3 namespace id (often a product name).
    pub senders: Vec<(String, SenderRule)>,
}

/// Where a message's device id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// `OBX-18`, else the enclosing header row's, else the message's only one, else MSH-3,
    /// else MSH-4 (see the module docs).
    #[default]
    Auto,
    /// `OBX-18` (the row's, its header row's, or the message's only one); never MSH.
    Obx18,
    /// MSH-3 for every row (a device that names itself in MSH-3).
    Msh3,
    /// MSH-4 for every row (a device whose MSH-3 is its product name and MSH-4 its serial:
    /// otherwise every monitor of that model would be one device).
    Msh4,
}

/// What is particular to one sender.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderRule {
    #[serde(default)]
    pub identity: Identity,
    /// The UTC offset of its times that carry none (else the adapter's default).
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
    /// Its own "no value" sentinels, besides the common ones.
    #[serde(default)]
    pub sentinels: Vec<f64>,
}

impl Default for OruOptions {
    fn default() -> Self {
        OruOptions {
            limits: TimeLimits::default(),
            default_utc_offset_minutes: 0,
            codes: Codes::default(),
            sentinels: DEFAULT_SENTINELS.to_vec(),
            senders: Vec::new(),
        }
    }
}

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
    let msh = msg.msh();
    let sender = msh.field(3).comp(1).trimmed();
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

    // Which devices the OBX rows name, to know whether a row without one is unambiguous.
    let mut named: Vec<String> = Vec::new();
    for s in msg.segments().iter().filter(|s| s.name() == "OBX") {
        if let Some(id) = ei_device(s.field(18)) {
            if DeviceId::new(id.as_ref()).is_ok() && !named.iter().any(|n| *n == id) {
                named.push(id.into_owned());
            }
        }
    }
    let msh_device =
        |n: usize| hd_device(msh.field(n)).and_then(|id| DeviceId::new(id.as_ref()).ok());
    let fallback: Option<DeviceId> = match rule.identity {
        Identity::Msh3 => msh_device(3),
        Identity::Msh4 => msh_device(4),
        _ if named.len() == 1 => DeviceId::new(named[0].as_str()).ok(),
        Identity::Auto if named.is_empty() => msh_device(3).or_else(|| msh_device(4)),
        _ => None,
    };
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

/// The device named by an EI (`OBX-18`): its entity id, or for an EUI-64 whose entity id is
/// empty, its universal id.
fn ei_device<'a>(v: Value<'a>) -> Option<Cow<'a, str>> {
    let id = v.comp(1).trimmed();
    if !id.is_empty() {
        return Some(id);
    }
    if v.comp(4).trimmed().eq_ignore_ascii_case("EUI-64") {
        let u = v.comp(3).trimmed();
        return (!u.is_empty()).then_some(u);
    }
    None
}

/// The device named by an HD (`MSH-3`, `MSH-4`): the universal id of an EUI-64, else the
/// namespace id.
fn hd_device<'a>(v: Value<'a>) -> Option<Cow<'a, str>> {
    if v.comp(3).trimmed().eq_ignore_ascii_case("EUI-64") {
        let u = v.comp(2).trimmed();
        if !u.is_empty() {
            return Some(u);
        }
    }
    let id = v.comp(1).trimmed();
    (!id.is_empty()).then_some(id)
}

/// `1.2.0.0` → `[1, 2]`: the rows it encloses start with this path.
fn header_prefix(path: &[u8]) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = path.split(|&b| b == b'.').collect();
    while parts.last().is_some_and(|p| p.is_empty() || *p == b"0") {
        parts.pop();
    }
    parts
}

struct Row<'a> {
    value_type: Cow<'a, str>,
    obx3: Value<'a>,
    path: &'a [u8],
    value: Value<'a>,
    unit: Value<'a>,
    flags: Value<'a>,
    status: Cow<'a, str>,
    time: Cow<'a, str>,
    device: Value<'a>,
}

struct RowCtx<'c, 'a> {
    now: Millis,
    opts: &'c OruOptions,
    obr_time: Option<Millis>,
    fallback: Option<&'c DeviceId>,
    header_ids: &'c [(Vec<&'a [u8]>, DeviceId)],
    sentinels: &'c [f64],
    utc_offset: i32,
    /// The sender's rule names the device (MSH-3 / MSH-4): `fallback` for every row.
    forced: bool,
}

enum RowOutcome {
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

fn map_row(row: &Row<'_>, ctx: &RowCtx<'_, '_>) -> RowOutcome {
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
    let own_id = if ctx.forced { None } else { own_id };
    let device = match own_id {
        Some(id) => match DeviceId::new(id.as_ref()) {
            Ok(d) => d,
            Err(_) => {
                return rejected(
                    18,
                    None,
                    RejectReason::BadDeviceId,
                    "OBX-18 is not a valid device id (1-64 of A-Z a-z 0-9 . _ -)".into(),
                )
            }
        },
        None => {
            let path: Vec<&[u8]> = row.path.split(|&b| b == b'.').collect();
            let headers: &[(Vec<&[u8]>, DeviceId)] = if ctx.forced { &[] } else { ctx.header_ids };
            let enclosing = headers
                .iter()
                .filter(|(prefix, _)| prefix.len() < path.len() && path.starts_with(prefix))
                .min_by_key(|(prefix, _)| prefix.len())
                .map(|(_, id)| id);
            match enclosing.or(ctx.fallback) {
                Some(d) => d.clone(),
                None => {
                    return rejected(
                        18,
                        None,
                        RejectReason::BadDeviceId,
                        "no device id: OBX-18 is empty and the message names no single device"
                            .into(),
                    )
                }
            }
        }
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

/// The OBX-4 path as a channel (`1.3.2.150456`), when it is one.
fn channel_of(path: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(path).ok()?.trim();
    crate::model::is_valid_channel(s).then(|| s.to_owned())
}

/// An SN (structured numeric) that is a plain number: no comparator (or `=`), no second
/// number. `<5`, `2-4`, `1:128` are not plain numbers.
fn plain_sn<'a>(v: Value<'a>) -> Option<Cow<'a, str>> {
    let comparator = v.comp(1).trimmed();
    let (sep, num2) = (v.comp(3).trimmed(), v.comp(4).trimmed());
    if !(comparator.is_empty() || comparator == "=") || !sep.is_empty() || !num2.is_empty() {
        return None;
    }
    Some(v.comp(2).trimmed())
}

/// HL7 NM: optional sign, digits, optional decimal point. Exponents are tolerated.
fn parse_number(s: &str) -> Option<f64> {
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
static MDC_DIMENSIONS: &[(u32, &str, &str)] = &[
    (262688, "MDC_DIM_PERCENT", "%"),
    (264864, "MDC_DIM_BEAT_PER_MIN", "/min"),
    (264928, "MDC_DIM_RESP_PER_MIN", "/min"),
    (266016, "MDC_DIM_MMHG", "mm[Hg]"),
    (265987, "MDC_DIM_KILO_PASCAL", "kPa"),
    (266048, "MDC_DIM_CM_H2O", "cm[H2O]"),
    (268192, "MDC_DIM_DEGC", "Cel"),
    (266560, "MDC_DIM_FAHR", "[degF]"),
];

/// The unit of `OBX-6` as a string [`to_canonical_unit`] knows, or `None` for an MDC
/// dimension wardhub does not know.
fn unit_of<'a>(obx6: Value<'a>) -> Option<Cow<'a, str>> {
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
fn flag_status(flags: Value<'_>) -> Status {
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

#[cfg(test)]
mod tests;
