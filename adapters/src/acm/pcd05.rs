//! IHE PCD-05 Report Alert Status (`ORA^R41^ORA_R41`, Alert Manager → Alert Reporter): what
//! became of an alarm the hub reported with PCD-04, decoded by [`decode_status`]. Pure and
//! synchronous; the listener is [`super::status_listener`]. [`build_status`] writes one, for
//! tests and test peers.
//!
//! # Mapping
//!
//! The message (TF-2 Rev. 9.0 3.5.4.1.4: MSH, OBR and, optional, MSA, PID, PV1, ORC, PRT, OBX,
//! NTE; at most one alarm per message):
//!
//! - `MSH-9` must be `ORA^R41` (`ORA_R41` or nothing as the structure; else AR 200, or AR
//!   201 for another trigger), `MSH-12` 2.3 to 2.8 or empty (else AR 203; Dräger's AM sends
//!   2.7), `MSH-10` present (else AE 101).
//! - The alarm: the first OBR (none: AE 100). The alarm id the hub sent is read from
//!   `OBR-29` (EIP, the filler part, else the placer part: TF-2 B.7 has every actor carry
//!   the alarm's `OBR-29` in its status messages), else from `OBR-3.1` (the indication the
//!   status is about, as Dräger's AM echoes it). Either is `<alarm id>` or
//!   `<alarm id>-<control id>` ([`super::pcd04`]); the digits before the first `-` are the
//!   id. Neither present: AE 101; not a number: AE 204 (unknown key).
//! - The status: `PRT-3` (CWE) of the first PRT that has one, its text (`PRT-3.2`, TF-2
//!   B.10.2: "the PCD-07 status text value", coding system `IHE_PCD_ACM`), else its
//!   identifier (`PRT-3.1`, where Dräger's AM writes it), matched without regard to case
//!   against TF-2 table B.10.2-2 ([`DeliveryStatus`]). No PRT-3: AE 101; another value: AE
//!   103.
//! - The recipient: that PRT's `PRT-5` (XCN: the identifier, else `given family`), else its
//!   `PRT-15` (XTN: the communication address, the unformatted number, or the local number,
//!   e.g. a pager PIN).
//! - The time: that PRT's `PRT-11` (TF-2 B.10.3: "the timestamp of the message
//!   dissemination status or operator response"), else `MSH-7`, else none; times without
//!   an offset are UTC. An unreadable `PRT-11` falls back to `MSH-7`: the time is
//!   informative, the status is what matters.
//! - `PRT-2` (`AD`/`UP`), `PRT-4` (the TF names `AAP`, `RO` and `AR` in three places), an
//!   `MSA` (TF work in progress: `MSA-2` the control id of the alarm's first PCD-04), PID,
//!   PV1 and OBX rows are not needed and not read.
//!
//! Details of errors name fields, never their values, except a status value that looks like
//! a code (the sender's own vocabulary, never patient data).

use std::borrow::Cow;

use super::{components, fields, join, push_segment, SERVICE};
use crate::hl7::adt::SUPPORTED_VERSIONS;
use crate::hl7::message::{
    escape, format_hl7_time, parse_hl7_time, AckCode, AckError, Header, Message, Segment,
};
use crate::model::{Millis, Reject, RejectReason};

/// `MSH-9` of [`build_status`].
pub const MESSAGE_TYPE: &str = "ORA^R41^ORA_R41";
/// `MSH-21` of [`build_status`]: the OID TF-2 B.1 assigns to PCD-05 (the name is the TF's
/// `IHE_PCD_XXX` pattern; receivers go by the OID).
pub const PROFILE: &str = "IHE_PCD_005^IHE PCD^1.3.6.1.4.1.19376.1.6.1.5.1^ISO";
/// The coding system of `PRT-3` (TF-2 B.10.2).
pub const CODING_SYSTEM: &str = "IHE_PCD_ACM";
/// `PRT-4` of [`build_status`] (TF-2 3.5.4.1.3, table 0912).
pub const ACKNOWLEDGING_PROVIDER: &str = "AAP^Alert Acknowledging Provider^HL70912";

/// What became of an alarm's notification: TF-2 table B.10.2-2, the PCD-07 statuses the AM
/// passes on in `PRT-3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Received by the Alert Communicator (the messaging gateway).
    Received,
    /// Could not be delivered to the endpoint.
    Undeliverable,
    /// Delivered to the endpoint (the phone, the pager).
    Delivered,
    /// Read at the endpoint.
    Read,
    /// Accepted by the endpoint's user.
    Accepted,
    /// Accepted as a true positive.
    AcceptedPositive,
    /// Accepted as a true positive, but not clinically relevant.
    AcceptedNotRelevant,
    /// Accepted as a false positive.
    AcceptedFalse,
    /// Rejected by the endpoint's user.
    Rejected,
    /// Cancelled at the endpoint (the alarm at the source is not cancelled).
    Cancelled,
    /// Cancelled by other than the endpoint.
    CancelledOther,
    /// A call back from the endpoint began.
    CallbackStart,
    /// That call ended.
    CallbackEnd,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 13] = [
        DeliveryStatus::Received,
        DeliveryStatus::Undeliverable,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
        DeliveryStatus::Accepted,
        DeliveryStatus::AcceptedPositive,
        DeliveryStatus::AcceptedNotRelevant,
        DeliveryStatus::AcceptedFalse,
        DeliveryStatus::Rejected,
        DeliveryStatus::Cancelled,
        DeliveryStatus::CancelledOther,
        DeliveryStatus::CallbackStart,
        DeliveryStatus::CallbackEnd,
    ];

    /// The value in `PRT-3.2` (TF-2 table B.10.2-2).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Received => "Received",
            DeliveryStatus::Undeliverable => "Undeliverable",
            DeliveryStatus::Delivered => "Delivered",
            DeliveryStatus::Read => "Read",
            DeliveryStatus::Accepted => "Accepted",
            DeliveryStatus::AcceptedPositive => "AcceptedPositive",
            DeliveryStatus::AcceptedNotRelevant => "AcceptedNotRelevant",
            DeliveryStatus::AcceptedFalse => "AcceptedFalse",
            DeliveryStatus::Rejected => "Rejected",
            DeliveryStatus::Cancelled => "Cancelled",
            DeliveryStatus::CancelledOther => "CancelledOther",
            DeliveryStatus::CallbackStart => "CallbackStart",
            DeliveryStatus::CallbackEnd => "CallbackEnd",
        }
    }

    /// The status a `PRT-3` value names (any case, surrounding spaces ignored).
    pub fn from_text(text: &str) -> Option<DeliveryStatus> {
        let t = text.trim();
        DeliveryStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(t))
    }

    /// Whether someone took the alarm on (one of the `Accepted` statuses).
    pub fn is_accepted(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Accepted
                | DeliveryStatus::AcceptedPositive
                | DeliveryStatus::AcceptedNotRelevant
                | DeliveryStatus::AcceptedFalse
        )
    }
}

/// One decoded PCD-05.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmStatus {
    /// The id of the alarm, as the hub sent it in PCD-04 (`OBR-29`, else `OBR-3`).
    pub alarm_id: u64,
    /// `PRT-3`.
    pub status: DeliveryStatus,
    /// `PRT-5`, else `PRT-15`: who (or which device) it was delivered to, or who answered.
    pub recipient: Option<String>,
    /// `PRT-11`, else `MSH-7`.
    pub at: Option<Millis>,
    /// `MSH-10` of the PCD-05.
    pub control_id: String,
}

/// A message refused as a whole, with what its ACK needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reject}")]
pub struct StatusError {
    /// The MSH when it could be read, to answer the sender.
    pub header: Option<Box<Header>>,
    /// AR (not ORA^R41, an unsupported version) or AE (the content is wrong).
    pub ack: AckCode,
    /// The ERR segment.
    pub error: AckError,
    /// For the `rejected` counter and the log; the detail is the ERR's.
    pub reject: Reject,
}

impl StatusError {
    fn new(
        header: Option<Header>,
        ack: AckCode,
        reason: RejectReason,
        code: u16,
        location: (Option<(&'static str, usize)>, Option<usize>),
        detail: impl Into<String>,
    ) -> StatusError {
        let detail = detail.into();
        StatusError {
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

/// Decodes one PCD-05 (the content of an MLLP frame).
pub fn decode_status(frame: &[u8]) -> Result<(Header, AlarmStatus), StatusError> {
    let msg = Message::parse(frame).map_err(|e| {
        StatusError::new(
            Header::read(frame).ok(),
            AckCode::Error,
            RejectReason::Malformed,
            100,
            (None, None),
            e.to_string(),
        )
    })?;
    let header = Header::from_msh(msg.msh());
    check_header(&header)?;
    let fail = |code, location, detail: String| {
        StatusError::new(
            Some(header.clone()),
            AckCode::Error,
            RejectReason::Schema,
            code,
            location,
            detail,
        )
    };

    let Some(obr) = msg.segment("OBR") else {
        return Err(fail(
            100,
            (Some(("OBR", 1)), None),
            "the OBR segment is missing".into(),
        ));
    };
    let alarm_id = alarm_id(obr).map_err(|(code, field, detail)| {
        fail(code, (Some(("OBR", 1)), Some(field)), detail.into())
    })?;

    let prts: Vec<&Segment<'_>> = msg
        .segments()
        .iter()
        .filter(|s| s.name() == "PRT")
        .collect();
    let Some((n, prt, text)) = prts.iter().enumerate().find_map(|(i, p)| {
        let reason = p.field(3);
        present(reason.comp(2).trimmed())
            .or_else(|| present(reason.comp(1).trimmed()))
            .map(|t| (i + 1, *p, t))
    }) else {
        return Err(fail(
            101,
            (Some(("PRT", 1)), Some(3)),
            "no PRT-3 (action reason) carries the dissemination status".into(),
        ));
    };
    let Some(status) = DeliveryStatus::from_text(&text) else {
        let named = if text.len() <= 32 && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            format!(" {text}")
        } else {
            String::new()
        };
        return Err(fail(
            103,
            (Some(("PRT", n)), Some(3)),
            format!(
                "unknown dissemination status{named}: the values of IHE PCD TF-2 table B.10.2-2 are accepted"
            ),
        ));
    };

    let at = parse_hl7_time(&prt.field(11).comp(1).trimmed(), 0)
        .or_else(|| parse_hl7_time(&header.time, 0));
    let status = AlarmStatus {
        alarm_id,
        status,
        recipient: recipient(prt),
        at,
        control_id: header.control_id.clone(),
    };
    Ok((header, status))
}

/// Checks MSH-9, MSH-12 and MSH-10.
fn check_header(h: &Header) -> Result<(), StatusError> {
    let err = |ack, reason, code, field, detail: &str| {
        Err(StatusError::new(
            Some(h.clone()),
            ack,
            reason,
            code,
            (Some(("MSH", 1)), Some(field)),
            detail.to_owned(),
        ))
    };
    if !h.message_type.eq_ignore_ascii_case("ORA") {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            200,
            9,
            "only ORA^R41 (IHE PCD-05 Report Alert Status) is accepted here",
        );
    }
    // Some senders write the structure into the trigger too (`R41_ORA`-like forms).
    let trigger = h.trigger.split('_').next().unwrap_or("");
    if !trigger.eq_ignore_ascii_case("R41") {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            201,
            9,
            "unsupported trigger event: only R41 (IHE PCD-05 Report Alert Status) is accepted",
        );
    }
    if !(h.version.is_empty() || SUPPORTED_VERSIONS.contains(&h.version.as_str())) {
        return err(
            AckCode::Reject,
            RejectReason::Unsupported,
            203,
            12,
            "HL7 versions 2.3 to 2.8 are accepted",
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

/// The alarm id from `OBR-29` (filler, then placer EI) or `OBR-3.1`; on failure the HL7
/// error code, the field and the detail.
fn alarm_id(obr: &Segment<'_>) -> Result<u64, (u16, usize, &'static str)> {
    let parent = obr.field(29);
    let (field, raw) = present(parent.comp(2).sub(1).trimmed())
        .or_else(|| present(parent.comp(1).sub(1).trimmed()))
        .map(|s| (29, s))
        .or_else(|| present(obr.field(3).comp(1).trimmed()).map(|s| (3, s)))
        .ok_or((
            101,
            29,
            "neither OBR-29 (parent) nor OBR-3 (filler order number) names the alarm",
        ))?;
    let digits = raw.split('-').next().unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err((
            204,
            field,
            "the alarm identifier is not one this hub issued (a number)",
        ));
    }
    digits.parse().map_err(|_| {
        (
            204,
            field,
            "the alarm identifier is not one this hub issued (too large)",
        )
    })
}

/// The recipient a PRT names: `PRT-5` (identifier, else name), else `PRT-15`.
fn recipient(prt: &Segment<'_>) -> Option<String> {
    let person = prt.field(5);
    let name = || {
        let given = present(person.comp(3).trimmed());
        let family = present(person.comp(2).sub(1).trimmed());
        match (given, family) {
            (None, None) => None,
            (g, f) => Some([g, f].into_iter().flatten().collect::<Vec<_>>().join(" ")),
        }
    };
    let telecom = prt.field(15);
    present(person.comp(1).trimmed())
        .or_else(name)
        .or_else(|| present(telecom.comp(4).sub(1).trimmed()))
        .or_else(|| present(telecom.comp(12).trimmed()))
        .or_else(|| present(telecom.comp(7).trimmed()))
}

/// Text that is there: not empty, and not the HL7 null `""`.
fn present(s: Cow<'_, str>) -> Option<String> {
    (!s.is_empty() && s != "\"\"").then(|| s.into_owned())
}

/// Builds a PCD-05 for `status` (segments ended by `\r`, without MLLP framing), as an Alert
/// Manager `sending_application` would send it at `now`; `alarm_application` is the
/// namespace of the hub's ids (its PCD-04 `MSH-3`). For tests and test peers: the hub never
/// sends one.
pub fn build_status(
    status: &AlarmStatus,
    sending_application: &str,
    alarm_application: &str,
    now: Millis,
) -> String {
    let mut out = String::with_capacity(512);
    let now_s = format_hl7_time(now);
    let mut msh = fields(20);
    msh[0] = "^~\\&".into();
    msh[1] = escape(sending_application);
    msh[3] = escape(alarm_application);
    msh[5] = now_s.as_str().into();
    msh[7] = MESSAGE_TYPE.into();
    msh[8] = escape(&status.control_id);
    msh[9] = "P".into();
    msh[10] = "2.6".into();
    msh[13] = "AL".into();
    msh[14] = "NE".into();
    msh[16] = "UNICODE UTF-8".into();
    msh[19] = PROFILE.into();
    push_segment(&mut out, "MSH", &msh);

    let id = status.alarm_id.to_string();
    let mut obr = fields(29);
    obr[0] = "1".into();
    obr[2] = components(&[&id, alarm_application]).into();
    obr[3] = SERVICE.into();
    obr[6] = now_s.as_str().into();
    obr[28] = format!("^{}", join(&[&id, alarm_application], '&')).into();
    push_segment(&mut out, "OBR", &obr);

    let text = status.status.as_str();
    let mut prt = fields(11);
    prt[0] = components(&[&id, sending_application]).into();
    prt[1] = "AD".into();
    prt[2] = format!("{text}^{text}^{CODING_SYSTEM}").into();
    prt[3] = ACKNOWLEDGING_PROVIDER.into();
    prt[4] = escape(status.recipient.as_deref().unwrap_or(""));
    prt[10] = status.at.map(format_hl7_time).unwrap_or_default().into();
    push_segment(&mut out, "PRT", &prt);
    out
}

#[cfg(test)]
mod tests;
