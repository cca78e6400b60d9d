//! Framing and field primitives: the fixed header (check → parse → advance), the remaining
//! length, and the big-endian integers and length-prefixed strings every packet is made of.

use bytes::{BufMut, BytesMut};

use crate::broker::edge::CloseReason;

/// Parses the fixed header at the start of `buf`: `Ok(None)` until it is complete, then the
/// header length and the remaining length.
pub fn fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, CloseReason> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut value = 0usize;
    let mut shift = 0;
    for i in 1..5 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
        shift += 7;
    }
    Err(CloseReason::Malformed)
}

pub(in crate::broker::edge) fn take_u16(b: &mut &[u8]) -> Option<u16> {
    if b.len() < 2 {
        return None;
    }
    let v = u16::from_be_bytes([b[0], b[1]]);
    *b = &b[2..];
    Some(v)
}

pub(super) fn take_u32(b: &mut &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    *b = &b[4..];
    Some(v)
}

pub(in crate::broker::edge) fn take_bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::from(take_u16(b)?);
    if b.len() < len {
        return None;
    }
    let (head, tail) = b.split_at(len);
    *b = tail;
    Some(head)
}

/// An MQTT UTF-8 string: well-formed, and without U+0000 (MQTT-1.5.3-2; a NUL in a topic
/// must be refused, MQTT-4.7.3-2), else the packet is malformed.
pub(super) fn take_str<'a>(b: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(take_bytes(b)?)
        .ok()
        .filter(|s| !s.contains('\0'))
}

/// A variable byte integer at the start of `b`: (its length, its value).
pub(super) fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    let mut shift = 0;
    for i in 0..4 {
        let byte = *b.get(i)?;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((i + 1, value));
        }
        shift += 7;
    }
    None
}

pub(super) fn put_remaining_length(out: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

/// A whole packet: the first byte, the remaining length, the body.
pub(super) fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(first);
    put_remaining_length(&mut out, body.len());
    out.extend_from_slice(body);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_header_lengths() {
        assert_eq!(fixed_header(&[0x30]), Ok(None));
        assert_eq!(fixed_header(&[0x30, 0x05]), Ok(Some((2, 5))));
        assert_eq!(fixed_header(&[0x30, 0x80, 0x01]), Ok(Some((3, 128))));
        assert_eq!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0x7f]),
            Ok(Some((5, 268_435_455)))
        );
        assert_eq!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff]),
            Err(CloseReason::Malformed)
        );
    }
}
