//! HL7 v2 messages: delimiters from MSH, segments, fields, repetitions, components,
//! subcomponents, escape sequences; and the ACK builder.
//!
//! Parsing borrows from the frame: a [`Message`] is a list of segments, each a list of field
//! slices; repetitions, components and subcomponents are split on demand. Segments end with
//! `\r`; `\n` and `\r\n` are accepted too. Text is read as UTF-8 where it is, and lossily
//! otherwise (8859/1 senders exist), so a non-UTF-8 byte never rejects a message.
//!
//! This file is the parser and the reading of the MSH ([`Header`]); `escape` is the escape
//! sequences, `ack` the ACK builder, `datetime` HL7 date/times, each re-exported here.

use std::borrow::Cow;

mod ack;
mod datetime;
mod escape;
mod fields;

pub use ack::{build_ack, AckCode, AckError, AckSender};
pub use datetime::{format_hl7_time, parse_hl7_time};
pub use escape::{escape, unescape};
pub use fields::{hl7_date, number};

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

#[cfg(test)]
mod tests;
