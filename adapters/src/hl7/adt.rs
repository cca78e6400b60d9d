//! HL7 v2 ADT (the hospital's admit / transfer / discharge feed) → [`AdtEvent`]: who the
//! patient is (PID) and where they lie (PV1). Pure and synchronous; the listener is
//! [`crate::hl7::adt_listener`].
//!
//! # Mapping
//!
//! - Message: `MSH-9.1` must be `ADT` (else AR 200); the trigger is `MSH-9.2` (up to a `_`:
//!   ORBIS sends `ADT^A11_A09`), or `EVN-1` when that is empty, one of A01 admit, A02 transfer, A03 discharge, A04 register, A08
//!   update, A11 / A12 / A13 cancel admit / transfer / discharge (else AR 201, as for A05 or
//!   A28); `MSH-12` 2.3 to 2.8 or empty (else AR 203); `MSH-10` present (else AE 101).
//! - `PID-3`: the first repetition with a non-empty id (`.1`); its assigning authority is
//!   `.4`, the HD's namespace id, or its universal id when that is empty. No id: AE 101.
//! - `PID-5`: the first repetition naming anyone, `.1` family (its surname, the FN's first
//!   subcomponent) and `.2` given. `PID-7`: the date part, `YYYY`, `YYYY-MM` or
//!   `YYYY-MM-DD` as precise as sent (a time and offset after it are ignored: a birth date is
//!   the local date written); a value that is not an HL7 date is AE 102. `PID-8`: one of
//!   `F M O U A N` (table 0001), else none.
//! - `PV1-3` the location, `PV1-6` the prior one (point of care ^ room ^ bed; of an HD the
//!   namespace id, else its universal id), none when all three are empty. A transfer must
//!   name the new bed (else AE 101); the other triggers may lack a location. `PV1-19.1` the
//!   visit number.
//! - The event time: `EVN-6` (event occurred), else `EVN-2` (recorded), else `MSH-7`, else
//!   receipt time; times without an offset are at the configured UTC offset.
//! - The HL7 null `""` reads as empty. Z-segments and fields not named here are ignored.
//!
//! Patient data never goes into an error's detail (it reaches the sender's ACK and the hub's
//! log): details name fields, never their values.

use std::borrow::Cow;

use crate::hl7::message::{parse_hl7_time, AckCode, AckError, Header, Message, Value};
use crate::model::{Location, Millis, Patient, Reject, RejectReason};

/// Versions accepted in `MSH-12` (and an empty one).
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2",
];

/// What an ADT message says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdtKind {
    /// A01.
    Admit,
    /// A02.
    Transfer,
    /// A03.
    Discharge,
    /// A04 (an outpatient or emergency registration).
    Register,
    /// A08 (patient information changed).
    Update,
    /// A11.
    CancelAdmit,
    /// A12.
    CancelTransfer,
    /// A13.
    CancelDischarge,
}

impl AdtKind {
    pub const ALL: [AdtKind; 8] = [
        AdtKind::Admit,
        AdtKind::Transfer,
        AdtKind::Discharge,
        AdtKind::Register,
        AdtKind::Update,
        AdtKind::CancelAdmit,
        AdtKind::CancelTransfer,
        AdtKind::CancelDischarge,
    ];

    /// The trigger event code (`A01`).
    pub fn trigger(self) -> &'static str {
        match self {
            AdtKind::Admit => "A01",
            AdtKind::Transfer => "A02",
            AdtKind::Discharge => "A03",
            AdtKind::Register => "A04",
            AdtKind::Update => "A08",
            AdtKind::CancelAdmit => "A11",
            AdtKind::CancelTransfer => "A12",
            AdtKind::CancelDischarge => "A13",
        }
    }

    /// The kind of a trigger event code (any case), when it is one of the supported.
    pub fn from_trigger(trigger: &str) -> Option<AdtKind> {
        AdtKind::ALL
            .into_iter()
            .find(|k| k.trigger().eq_ignore_ascii_case(trigger.trim()))
    }
}

/// One decoded ADT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtEvent {
    pub kind: AdtKind,
    /// The trigger as sent, upper case (`A01`).
    pub trigger: String,
    /// `MSH-10`.
    pub control_id: String,
    /// `MSH-3.1`.
    pub sending_application: String,
    /// From PID-3, PID-5, PID-7, PID-8.
    pub patient: Patient,
    /// `PV1-3`.
    pub location: Option<Location>,
    /// `PV1-6`.
    pub prior_location: Option<Location>,
    /// `PV1-19.1`, the visit number.
    pub visit: Option<String>,
    /// `EVN-6`, else `EVN-2`, else `MSH-7`, else receipt time.
    pub occurred_at: Millis,
}

/// A message refused as a whole, with what its ACK needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reject}")]
pub struct AdtError {
    /// The MSH when it could be read, to answer the sender.
    pub header: Option<Box<Header>>,
    /// AR (not ADT, an unsupported trigger or version) or AE (the content is wrong).
    pub ack: AckCode,
    /// The ERR segment.
    pub error: AckError,
    /// For the `rejected` counter and the log; the detail is the ERR's.
    pub reject: Reject,
}

impl AdtError {
    fn new(
        header: Option<Header>,
        ack: AckCode,
        reason: RejectReason,
        code: u16,
        location: (Option<(&'static str, usize)>, Option<usize>),
        detail: impl Into<String>,
    ) -> AdtError {
        let detail = detail.into();
        AdtError {
            header: header.map(Box::new),
            ack,
            error: AckError {
                segment: location.0,
                field: location.1,
                code,
                detail: detail.clone(),
            },
            reject: Reject::new(reason, detail),
        }
    }
}

/// Decodes one ADT message (the content of an MLLP frame) received at `now`; times without
/// an offset are taken at `default_utc_offset_minutes` from UTC.
pub fn decode(
    frame: &[u8],
    now: Millis,
    default_utc_offset_minutes: i32,
) -> Result<(Header, AdtEvent), AdtError> {
    let msg = Message::parse(frame).map_err(|e| {
        AdtError::new(
            Header::read(frame).ok(),
            AckCode::Error,
            RejectReason::Malformed,
            100,
            (None, None),
            e.to_string(),
        )
    })?;
    let header = Header::from_msh(msg.msh());
    let evn = msg.segment("EVN");
    let kind = check_header(&header, evn.map(|e| e.field(1)))?;
    let trigger = kind.trigger().to_owned();
    let fail = |ack, reason, code, location, detail: &str| {
        AdtError::new(
            Some(header.clone()),
            ack,
            reason,
            code,
            location,
            detail.to_owned(),
        )
    };

    let Some(pid) = msg.segment("PID") else {
        return Err(fail(
            AckCode::Error,
            RejectReason::Schema,
            100,
            (Some(("PID", 1)), None),
            "the PID segment is missing",
        ));
    };
    let Some(id_rep) = pid
        .field(3)
        .reps()
        .find(|r| present(r.comp(1).trimmed()).is_some())
    else {
        return Err(fail(
            AckCode::Error,
            RejectReason::Schema,
            101,
            (Some(("PID", 1)), Some(3)),
            "PID-3 (patient identifier) is empty",
        ));
    };
    let name = pid
        .field(5)
        .reps()
        .find(|r| {
            present(r.comp(1).sub(1).trimmed()).is_some() || present(r.comp(2).trimmed()).is_some()
        })
        .unwrap_or(pid.field(5).rep(1));
    let birth = pid.field(7).comp(1).trimmed();
    let birth_date = match present(birth) {
        None => None,
        Some(s) => Some(birth_date(&s).ok_or_else(|| {
            fail(
                AckCode::Error,
                RejectReason::Schema,
                102,
                (Some(("PID", 1)), Some(7)),
                "PID-7 (date of birth) is not an HL7 date",
            )
        })?),
    };
    let sex = present(pid.field(8).comp(1).trimmed())
        .map(|s| s.to_ascii_uppercase())
        .filter(|s| matches!(s.as_str(), "F" | "M" | "O" | "U" | "A" | "N"));
    let patient = Patient {
        id: present(id_rep.comp(1).trimmed()).unwrap_or_default(),
        authority: hd(id_rep.comp(4)),
        family: present(name.comp(1).sub(1).trimmed()),
        given: present(name.comp(2).trimmed()),
        birth_date,
        sex,
    };

    let pv1 = msg.segment("PV1");
    let location = pv1.and_then(|s| place(s.field(3)));
    let prior_location = pv1.and_then(|s| place(s.field(6)));
    let visit = pv1.and_then(|s| present(s.field(19).comp(1).trimmed()));
    // A transfer must say where to; a room without a bed is a place too (real ORBIS feeds
    // transfer to rooms): the hub decides whether it is one of its beds.
    if kind == AdtKind::Transfer && location.is_none() {
        return Err(fail(
            AckCode::Error,
            RejectReason::Schema,
            101,
            (Some(("PV1", 1)), Some(3)),
            "a transfer's PV1-3 must name the new location (point of care^room^bed)",
        ));
    }

    let time = |v: Option<Value<'_>>| {
        v.and_then(|v| parse_hl7_time(&v.comp(1).trimmed(), default_utc_offset_minutes))
    };
    let occurred_at = time(evn.map(|e| e.field(6)))
        .or_else(|| time(evn.map(|e| e.field(2))))
        .or_else(|| parse_hl7_time(&header.time, default_utc_offset_minutes))
        .unwrap_or(now);

    let event = AdtEvent {
        kind,
        trigger,
        control_id: header.control_id.clone(),
        sending_application: header
            .sending_application
            .first()
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        patient,
        location,
        prior_location,
        visit,
        occurred_at,
    };
    Ok((header, event))
}

/// Checks the MSH (and EVN-1, the trigger when MSH-9.2 is empty); returns the event's kind.
fn check_header(h: &Header, evn1: Option<Value<'_>>) -> Result<AdtKind, AdtError> {
    let err = |ack, reason, code, field, detail: String| {
        Err(AdtError::new(
            Some(h.clone()),
            ack,
            reason,
            code,
            (Some(("MSH", 1)), Some(field)),
            detail,
        ))
    };
    if !h.message_type.eq_ignore_ascii_case("ADT") {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            200,
            9,
            "only ADT messages are accepted here".into(),
        );
    }
    let trigger: Cow<'_, str> = if h.trigger.is_empty() {
        evn1.map_or(Cow::Borrowed(""), |v| v.comp(1).trimmed())
    } else {
        // ORBIS writes the message structure into MSH-9.2 too: `ADT^A11_A09`.
        Cow::Borrowed(h.trigger.split('_').next().unwrap_or(""))
    };
    let Some(kind) = AdtKind::from_trigger(&trigger) else {
        // The code is named only when it looks like one: the field is the sender's text.
        let named = if (1..=3).contains(&trigger.len())
            && trigger.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            format!(" {}", trigger.to_ascii_uppercase())
        } else {
            String::new()
        };
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            201,
            9,
            format!(
                "unsupported trigger event{named}: A01, A02, A03, A04, A08, A11, A12 and A13 are accepted"
            ),
        );
    };
    if !(h.version.is_empty() || SUPPORTED_VERSIONS.contains(&h.version.as_str())) {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            203,
            12,
            "HL7 versions 2.3 to 2.8 are accepted".into(),
        );
    }
    if h.control_id.is_empty() {
        return err(
            AckCode::Error,
            RejectReason::Schema,
            101,
            10,
            "MSH-10 (message control id) is missing".into(),
        );
    }
    Ok(kind)
}

/// Text that is there: not empty, and not the HL7 null `""`.
fn present(s: Cow<'_, str>) -> Option<String> {
    (!s.is_empty() && s != "\"\"").then(|| s.into_owned())
}

/// An HD (or an IS where the standard had one before): its namespace id, else its universal
/// id.
fn hd(v: Value<'_>) -> Option<String> {
    present(v.sub(1).trimmed()).or_else(|| present(v.sub(2).trimmed()))
}

/// A PL (point of care ^ room ^ bed), none when all three are empty.
fn place(pl: Value<'_>) -> Option<Location> {
    let part = |n| hd(pl.comp(n)).unwrap_or_default();
    let l = Location {
        point_of_care: part(1),
        room: part(2),
        bed: part(3),
    };
    (l != Location::default()).then_some(l)
}

/// The date part of an HL7 DTM/TS (`YYYY[MM[DD[HHMM…]]][±ZZZZ]`) as ISO 8601, as precise as
/// sent: `1980`, `1980-04`, `1980-04-12`.
fn birth_date(s: &str) -> Option<String> {
    // The whole value must be a valid date/time, whatever precision it has.
    parse_hl7_time(s, 0)?;
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    // parse_hl7_time checked these are digits, at least four of them.
    let (y, m, d) = (&s[..4], s.get(4..6), s.get(6..8));
    Some(match (digits, m, d) {
        (4, _, _) => y.to_owned(),
        (6, Some(m), _) => format!("{y}-{m}"),
        (_, Some(m), Some(d)) => format!("{y}-{m}-{d}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
