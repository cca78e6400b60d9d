//! HL7 v2 messages: delimiters from MSH, segments, fields, repetitions, components,
//! subcomponents, escape sequences; and the ACK builder.
//!
//! Parsing borrows from the frame: a [`Message`] is a list of segments, each a list of field
//! slices; repetitions, components and subcomponents are split on demand. Segments end with
//! `\r`; `\n` and `\r\n` are accepted too. Text is read as UTF-8 where it is, and lossily
//! otherwise (8859/1 senders exist), so a non-UTF-8 byte never rejects a message.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::Millis;

/// Why a byte string is not an HL7 v2 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("the message does not start with an MSH segment")]
    NoMsh,
    #[error("MSH does not define usable delimiters")]
    BadDelimiters,
    #[error("segment {0} does not start with a segment name")]
    BadSegment(usize),
}

/// The delimiters a message declares in MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: u8,
    pub component: u8,
    pub repetition: u8,
    pub escape: u8,
    pub subcomponent: u8,
}

impl Delimiters {
    /// `|^~\&`, what wardhub emits.
    pub const STANDARD: Delimiters = Delimiters {
        field: b'|',
        component: b'^',
        repetition: b'~',
        escape: b'\\',
        subcomponent: b'&',
    };

    /// Reads MSH-1 and MSH-2 from the start of `msh` (`MSH|^~\&|…`).
    ///
    /// MSH-2 may be shorter than four characters (old senders); a missing delimiter is then
    /// one that cannot occur in data (`\r`, which ends segments anyway). A fifth character (the
    /// HL7 2.7 truncation character) is ignored.
    fn read(msh: &[u8]) -> Result<Delimiters, ParseError> {
        let field = *msh.get(3).ok_or(ParseError::BadDelimiters)?;
        let enc_end = msh[4..]
            .iter()
            .position(|&b| b == field || b == b'\r' || b == b'\n')
            .map_or(msh.len(), |p| p + 4);
        let enc = &msh[4..enc_end];
        if enc.is_empty() || enc.len() > 5 {
            return Err(ParseError::BadDelimiters);
        }
        let at = |i: usize| enc.get(i).copied().unwrap_or(b'\r');
        let d = Delimiters {
            field,
            component: at(0),
            repetition: at(1),
            escape: at(2),
            subcomponent: at(3),
        };
        let all = [d.field, d.component, d.repetition, d.escape, d.subcomponent];
        for (i, &c) in all.iter().enumerate() {
            if c.is_ascii_alphanumeric() || c == b'\n' || (c == b'\r' && i < 2) {
                return Err(ParseError::BadDelimiters);
            }
            if c != b'\r' && all[..i].contains(&c) {
                return Err(ParseError::BadDelimiters);
            }
        }
        Ok(d)
    }
}

/// A parsed message: its delimiters and segments.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub delimiters: Delimiters,
    segments: Vec<Segment<'a>>,
}

/// One segment: its name and its fields (field 0 is the name).
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    d: Delimiters,
    fields: Vec<&'a [u8]>,
    is_msh: bool,
}

fn split_segments(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'\r' || b == b'\n')
        .filter(|s| !s.iter().all(u8::is_ascii_whitespace))
}

impl<'a> Message<'a> {
    /// Parses a message (the content of one MLLP frame).
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let mut lines = split_segments(bytes);
        let msh = lines.next().ok_or(ParseError::Empty)?;
        let msh = trim_start(msh);
        if !msh.starts_with(b"MSH") {
            return Err(ParseError::NoMsh);
        }
        let d = Delimiters::read(msh)?;
        let mut segments = vec![Segment::new(msh, d, true)];
        for (i, line) in lines.enumerate() {
            let name = line.get(..3).ok_or(ParseError::BadSegment(i + 2))?;
            let name_ok = name[0].is_ascii_uppercase()
                && name[1..]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !name_ok || line.get(3).is_some_and(|&b| b != d.field) {
                return Err(ParseError::BadSegment(i + 2));
            }
            segments.push(Segment::new(line, d, false));
        }
        Ok(Message {
            delimiters: d,
            segments,
        })
    }

    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }

    /// The first segment with this name.
    pub fn segment(&self, name: &str) -> Option<&Segment<'a>> {
        self.segments.iter().find(|s| s.name() == name)
    }

    /// The MSH segment.
    pub fn msh(&self) -> &Segment<'a> {
        // parse() puts MSH first and never builds a message without it.
        &self.segments[0]
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

impl<'a> Segment<'a> {
    fn new(line: &'a [u8], d: Delimiters, is_msh: bool) -> Self {
        Segment {
            d,
            fields: line.split(|&b| b == d.field).collect(),
            is_msh,
        }
    }

    /// The segment name (`MSH`, `OBX`, …).
    pub fn name(&self) -> &str {
        // parse() checked the name is three ASCII characters.
        std::str::from_utf8(self.fields[0]).unwrap_or("")
    }

    /// Field `n` (1-based, as in `OBX-5`); empty when absent. In MSH, field 1 is the field
    /// separator itself and field 2 the encoding characters, as in the standard.
    pub fn field(&self, n: usize) -> Value<'a> {
        let raw: &'a [u8] = if self.is_msh {
            match n {
                0 => self.fields[0],
                1 => b"",
                n => self.fields.get(n - 1).copied().unwrap_or(b""),
            }
        } else {
            self.fields.get(n).copied().unwrap_or(b"")
        };
        Value {
            raw,
            d: self.d,
            level: Level::Field,
        }
    }

    /// The number of fields, not counting the name.
    pub fn len(&self) -> usize {
        self.fields.len() - 1 + usize::from(self.is_msh)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Field,
    Repetition,
    Component,
    Subcomponent,
}

/// A field, repetition, component or subcomponent: raw (escaped) bytes and the delimiters to
/// split them further.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    raw: &'a [u8],
    d: Delimiters,
    level: Level,
}

fn nth(raw: &[u8], sep: u8, n: usize) -> &[u8] {
    if n == 0 {
        return b"";
    }
    raw.split(|&b| b == sep).nth(n - 1).unwrap_or(b"")
}

impl<'a> Value<'a> {
    /// The raw bytes, escape sequences and inner delimiters included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Repetition `n` (1-based) of a field.
    pub fn rep(&self, n: usize) -> Value<'a> {
        let raw = match self.level {
            Level::Field => nth(self.raw, self.d.repetition, n),
            _ if n == 1 => self.raw,
            _ => b"",
        };
        Value {
            raw,
            d: self.d,
            level: Level::Repetition.max(self.level),
        }
    }

    /// All repetitions of a field.
    pub fn reps(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let d = self.d;
        let sep = if self.level == Level::Field {
            d.repetition
        } else {
            // Never present in a repetition or below: the whole value is one repetition.
            b'\r'
        };
        self.raw.split(move |&b| b == sep).map(move |raw| Value {
            raw,
            d,
            level: Level::Repetition,
        })
    }

    /// Component `n` (1-based) of the first repetition.
    pub fn comp(&self, n: usize) -> Value<'a> {
        let (raw, level) = match self.level {
            Level::Field | Level::Repetition => {
                (nth(self.rep(1).raw, self.d.component, n), Level::Component)
            }
            _ if n == 1 => (self.raw, self.level),
            _ => (&b""[..], self.level),
        };
        Value {
            raw,
            d: self.d,
            level,
        }
    }

    /// Subcomponent `n` (1-based) of the first component.
    pub fn sub(&self, n: usize) -> Value<'a> {
        let raw = match self.level {
            Level::Subcomponent if n == 1 => self.raw,
            Level::Subcomponent => b"",
            _ => nth(self.comp(1).raw, self.d.subcomponent, n),
        };
        Value {
            raw,
            d: self.d,
            level: Level::Subcomponent,
        }
    }

    /// The unescaped text.
    pub fn text(&self) -> Cow<'a, str> {
        unescape(self.raw, &self.d)
    }

    /// The unescaped text, trimmed; for codes and numbers.
    pub fn trimmed(&self) -> Cow<'a, str> {
        match self.text() {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
        }
    }

    /// All components of the first repetition, unescaped.
    pub fn components(&self) -> Vec<String> {
        let rep = self.rep(1).raw;
        if rep.is_empty() {
            return Vec::new();
        }
        rep.split(|&b| b == self.d.component)
            .map(|c| unescape(c, &self.d).into_owned())
            .collect()
    }
}

/// Resolves escape sequences (`\F\ \S\ \T\ \R\ \E\ \Xhh…\ \.br\`); formatting and character
/// set sequences are dropped, unknown or unterminated ones kept as they are.
pub fn unescape<'a>(raw: &'a [u8], d: &Delimiters) -> Cow<'a, str> {
    let esc = d.escape;
    if esc == b'\r' || !raw.contains(&esc) {
        return String::from_utf8_lossy(raw);
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != esc {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(len) = raw[i + 1..].iter().position(|&c| c == esc) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        let seq = &raw[i + 1..i + 1 + len];
        match seq {
            b"F" => out.push(d.field),
            b"S" => out.push(d.component),
            b"T" => out.push(d.subcomponent),
            b"R" => out.push(d.repetition),
            b"E" => out.push(esc),
            b".br" => out.push(b'\n'),
            [b'X', hex @ ..] if hex.len() % 2 == 0 && hex.iter().all(u8::is_ascii_hexdigit) => {
                out.extend(hex.chunks(2).map(|p| (hex_val(p[0]) << 4) | hex_val(p[1])));
            }
            b"H" | b"N" => {}
            [b'C' | b'M' | b'Z', ..] | [b'.', ..] => {}
            _ => out.extend_from_slice(&raw[i..i + len + 2]),
        }
        i += len + 2;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Escapes text for a field of a message with the standard delimiters. Line breaks become
/// `\.br\` and other control characters are dropped, so the text cannot end a segment.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text
        .bytes()
        .any(|b| matches!(b, b'|' | b'^' | b'~' | b'\\' | b'&') || b.is_ascii_control())
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '&' => out.push_str("\\T\\"),
            '\n' => out.push_str("\\.br\\"),
            c if c.is_ascii_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

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

/// What an ACK needs from the MSH of the message it answers (unescaped text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// MSH-3 components.
    pub sending_application: Vec<String>,
    /// MSH-4 components.
    pub sending_facility: Vec<String>,
    /// MSH-5 components.
    pub receiving_application: Vec<String>,
    /// MSH-6 components.
    pub receiving_facility: Vec<String>,
    /// MSH-7, first component.
    pub time: String,
    /// MSH-9.1 (`ORU`).
    pub message_type: String,
    /// MSH-9.2 (`R01`).
    pub trigger: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-11.1 (`P`).
    pub processing_id: String,
    /// MSH-12.1 (`2.6`).
    pub version: String,
}

impl Header {
    pub fn from_msh(msh: &Segment<'_>) -> Header {
        Header {
            sending_application: msh.field(3).components(),
            sending_facility: msh.field(4).components(),
            receiving_application: msh.field(5).components(),
            receiving_facility: msh.field(6).components(),
            time: msh.field(7).comp(1).trimmed().into_owned(),
            message_type: msh.field(9).comp(1).trimmed().into_owned(),
            trigger: msh.field(9).comp(2).trimmed().into_owned(),
            control_id: msh.field(10).trimmed().into_owned(),
            processing_id: msh.field(11).comp(1).trimmed().into_owned(),
            version: msh.field(12).comp(1).trimmed().into_owned(),
        }
    }

    /// Reads only the MSH of a message that may be broken further on (or cut short), to
    /// answer it.
    pub fn read(bytes: &[u8]) -> Result<Header, ParseError> {
        let msh = split_segments(bytes).next().ok_or(ParseError::Empty)?;
        let msh = trim_start(msh);
        if !msh.starts_with(b"MSH") {
            return Err(ParseError::NoMsh);
        }
        let d = Delimiters::read(msh)?;
        Ok(Header::from_msh(&Segment::new(msh, d, true)))
    }
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

#[cfg(test)]
mod tests;
