//! MQTT 5 properties: taking a property block and walking its (identifier, value) pairs.

use super::frame::{take_bytes, take_u16, take_u32, varint};

/// Takes an MQTT 5 property block (its length and the block).
pub(in crate::broker::edge) fn take_props<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (h, len) = varint(b)?;
    if b.len() < h + len {
        return None;
    }
    let block = &b[h..h + len];
    *b = &b[h + len..];
    Some(block)
}

/// One MQTT 5 property value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Var(usize),
    Bytes(&'a [u8]),
    Pair(&'a [u8], &'a [u8]),
}

/// Walks a property block, calling `f` with each (identifier, value); `None` when the block
/// is malformed or holds an unknown identifier.
pub fn props<'a>(mut b: &'a [u8], mut f: impl FnMut(u8, Prop<'a>)) -> Option<()> {
    while !b.is_empty() {
        let id = b[0];
        b = &b[1..];
        let value = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                let v = *b.first()?;
                b = &b[1..];
                Prop::Byte(v)
            }
            0x13 | 0x21 | 0x22 | 0x23 => Prop::U16(take_u16(&mut b)?),
            0x02 | 0x11 | 0x18 | 0x27 => Prop::U32(take_u32(&mut b)?),
            0x0B => {
                let (h, v) = varint(b)?;
                b = &b[h..];
                Prop::Var(v)
            }
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                Prop::Bytes(take_bytes(&mut b)?)
            }
            0x26 => {
                let k = take_bytes(&mut b)?;
                let v = take_bytes(&mut b)?;
                Prop::Pair(k, v)
            }
            _ => return None,
        };
        f(id, value);
    }
    Some(())
}
