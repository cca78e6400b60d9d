//! The ACK builder: [`build_ack`] answers a message (original-mode acknowledgment) with its
//! [`AckCode`] and one ERR segment per [`AckError`], in the HL7 2.5 ERR layout. What it needs
//! from the message it answers is its [`Header`]; what it puts in its own MSH is an
//! [`AckSender`].

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{escape, format_hl7_time, Header};
use crate::model::Millis;

/// Components joined with `^`, each escaped.
fn encode_components(parts: &[String]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('^');
        }
        out.push_str(&escape(p));
    }
    out
}

/// An HL7 acknowledgment code (table 0008, original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted: everything in the message that could be stored is durable.
    Accept,
    /// Error: (part of) the content was refused; retrying the same message will not help.
    Error,
    /// Reject: the message as a whole was not processed (type, version, framing).
    Reject,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// One ERR segment: where, what (HL7 table 0357), and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// Segment name and its position (1-based among segments of that name), e.g. `OBX`, 3.
    pub segment: Option<(&'static str, usize)>,
    /// The field number in that segment.
    pub field: Option<usize>,
    /// HL7 table 0357 code (100 segment sequence, 101 required field missing, 102 data type,
    /// 103 table value not found, 200 unsupported message type, 203 unsupported version,
    /// 204 unknown key identifier, 207 application internal error).
    pub code: u16,
    /// The detail for the sender (ERR-8). Never patient data.
    pub detail: String,
}

impl AckError {
    fn code_text(&self) -> &'static str {
        match self.code {
            0 => "Message accepted",
            100 => "Segment sequence error",
            101 => "Required field missing",
            102 => "Data type error",
            103 => "Table value not found",
            200 => "Unsupported message type",
            201 => "Unsupported event code",
            202 => "Unsupported processing id",
            203 => "Unsupported version id",
            204 => "Unknown key identifier",
            205 => "Duplicate key identifier",
            206 => "Application record locked",
            _ => "Application internal error",
        }
    }
}

/// What wardhub puts in the MSH of its ACKs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSender<'s> {
    /// MSH-3 of the ACK.
    pub application: &'s str,
    /// MSH-10 of the ACK (unique per ACK).
    pub control_id: &'s str,
    /// MSH-7 of the ACK.
    pub now: Millis,
}

/// Builds an ACK (without MLLP framing) answering `original` (whose MSH may be unreadable).
///
/// Original-mode acknowledgment: `MSH`, `MSA|<code>|<MSH-10>`, then one `ERR` per error in
/// the HL7 2.5 layout (ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 user message).
pub fn build_ack(
    original: Option<&Header>,
    code: AckCode,
    errors: &[AckError],
    sender: &AckSender<'_>,
) -> String {
    let empty = Header::default();
    let h = original.unwrap_or(&empty);
    let or = |s: &str, default: &'static str| -> String {
        if s.is_empty() {
            default.to_owned()
        } else {
            escape(s).into_owned()
        }
    };
    let mut out = String::with_capacity(256);
    // write! to a String cannot fail.
    let _ = write!(
        out,
        "MSH|^~\\&|{}||{}|{}|{}||{}|{}|{}|{}\r",
        escape(sender.application),
        encode_components(&h.sending_application),
        encode_components(&h.sending_facility),
        format_hl7_time(sender.now),
        if h.trigger.is_empty() {
            Cow::Borrowed("ACK")
        } else {
            Cow::Owned(format!("ACK^{}^ACK", escape(&h.trigger)))
        },
        escape(sender.control_id),
        or(&h.processing_id, "P"),
        or(&h.version, "2.6"),
    );
    let _ = write!(out, "MSA|{}|{}\r", code.as_str(), escape(&h.control_id));
    for e in errors {
        let location = match (e.segment, e.field) {
            (Some((seg, seq)), Some(f)) => format!("{seg}^{seq}^{f}"),
            (Some((seg, seq)), None) => format!("{seg}^{seq}"),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "ERR||{location}|{}^{}^HL70357|E||||{}\r",
            e.code,
            e.code_text(),
            escape(&e.detail)
        );
    }
    out
}
