//! HL7 v2 escape sequences: [`unescape`] resolves them when a [`Value`](super::Value) is read
//! as text, [`escape`] writes text safely into a field of a message wardhub builds (its ACKs,
//! the simulator's messages). Both work with the delimiters the message declares.

use std::borrow::Cow;

use super::Delimiters;

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
