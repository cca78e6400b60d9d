//! MQTT 3.1.1 and 5 packets as the edge reads and writes them: pure functions over bytes,
//! framing as check → parse → advance. Nothing here allocates for an incomplete packet or
//! panics on garbage (property-tested).

use bytes::{BufMut, Bytes, BytesMut};

use super::CloseReason;

/// Packet types (the fixed header's high nibble).
pub mod kind {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const UNSUBACK: u8 = 11;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
    pub const AUTH: u8 = 15;
}

/// MQTT 5 reason codes the edge sends.
pub mod reason {
    pub const SUCCESS: u8 = 0x00;
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    pub const UNSPECIFIED: u8 = 0x80;
    pub const MALFORMED: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
}

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

pub(super) fn take_u16(b: &mut &[u8]) -> Option<u16> {
    if b.len() < 2 {
        return None;
    }
    let v = u16::from_be_bytes([b[0], b[1]]);
    *b = &b[2..];
    Some(v)
}

fn take_u32(b: &mut &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    *b = &b[4..];
    Some(v)
}

pub(super) fn take_bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
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
fn take_str<'a>(b: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(take_bytes(b)?)
        .ok()
        .filter(|s| !s.contains('\0'))
}

/// A variable byte integer at the start of `b`: (its length, its value).
fn varint(b: &[u8]) -> Option<(usize, usize)> {
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

/// Takes an MQTT 5 property block (its length and the block).
pub(super) fn take_props<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
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

/// A last will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 Will Delay Interval, seconds.
    pub delay_secs: u32,
}

/// A CONNECT, as far as the hub uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// 3 (3.1), 4 (3.1.1) or 5.
    pub level: u8,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub will: Option<Will>,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Seconds; 0 turns the keep-alive off.
    pub keep_alive: u16,
    /// MQTT 5 Session Expiry Interval (seconds; 0 ends the session with the connection,
    /// `u32::MAX` never). For 3.1.1: 0 with a clean session, else never.
    pub session_expiry: u32,
    /// The largest packet the client accepts (MQTT 5), if it says.
    pub max_packet_size: Option<u32>,
}

impl Connect {
    /// The will's topic, when there is a will.
    pub fn will_topic(&self) -> Option<&str> {
        self.will.as_ref().map(|w| w.topic.as_str())
    }
}

/// Parses a whole CONNECT packet (fixed header included).
pub fn parse_connect(packet: &[u8]) -> Result<Connect, CloseReason> {
    if packet.first().map(|b| b >> 4) != Some(kind::CONNECT) {
        return Err(CloseReason::NotConnect);
    }
    let (h, _) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    let mut b = &packet[h..];
    let bad = CloseReason::Malformed;
    let name = take_bytes(&mut b).ok_or(bad)?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return Err(CloseReason::Protocol);
    }
    let level = *b.first().ok_or(bad)?;
    if !matches!(level, 3..=5) {
        return Err(CloseReason::Protocol);
    }
    let flags = *b.get(1).ok_or(bad)?;
    if flags & 0x01 != 0 {
        return Err(bad); // reserved bit
    }
    let keep_alive = u16::from_be_bytes([*b.get(2).ok_or(bad)?, *b.get(3).ok_or(bad)?]);
    b = &b[4..];
    let clean_start = flags & 0x02 != 0;
    let mut session_expiry = if clean_start { 0 } else { u32::MAX };
    let mut max_packet_size = None;
    if level == 5 {
        session_expiry = 0;
        let block = take_props(&mut b).ok_or(bad)?;
        props(block, |id, v| match (id, v) {
            (0x11, Prop::U32(s)) => session_expiry = s,
            (0x27, Prop::U32(s)) => max_packet_size = Some(s),
            _ => {}
        })
        .ok_or(bad)?;
    }
    let client_id = take_str(&mut b).ok_or(bad)?.to_owned();
    let mut will = None;
    if flags & 0x04 != 0 {
        let mut delay_secs = 0;
        if level == 5 {
            let block = take_props(&mut b).ok_or(bad)?;
            props(block, |id, v| {
                if let (0x18, Prop::U32(d)) = (id, v) {
                    delay_secs = d;
                }
            })
            .ok_or(bad)?;
        }
        let topic = take_str(&mut b).ok_or(bad)?.to_owned();
        let payload = Bytes::copy_from_slice(take_bytes(&mut b).ok_or(bad)?);
        let qos = (flags >> 3) & 0x03;
        if qos == 3 {
            return Err(bad);
        }
        will = Some(Will {
            topic,
            payload,
            qos,
            retain: flags & 0x20 != 0,
            delay_secs,
        });
    } else if flags & 0x38 != 0 {
        return Err(bad); // will QoS or retain without a will
    }
    let username = if flags & 0x80 != 0 {
        Some(take_str(&mut b).ok_or(bad)?.to_owned())
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(take_bytes(&mut b).ok_or(bad)?.to_vec())
    } else {
        None
    };
    Ok(Connect {
        level,
        client_id,
        username,
        password,
        will,
        clean_start,
        keep_alive,
        session_expiry,
        max_packet_size,
    })
}

/// A PUBLISH from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    pub topic: String,
    /// 0 at QoS 0.
    pub pkid: u16,
    /// MQTT 5 Topic Alias, when given.
    pub topic_alias: Option<u16>,
    pub payload: Bytes,
}

/// Parses a whole PUBLISH packet (fixed header included) of a connection at `level`.
pub fn parse_publish(packet: &Bytes, level: u8) -> Result<Publish, CloseReason> {
    let bad = CloseReason::Malformed;
    let first = *packet.first().ok_or(bad)?;
    let (h, _) = fixed_header(packet)?.ok_or(bad)?;
    let qos = (first >> 1) & 0x03;
    if qos == 3 {
        return Err(bad);
    }
    let mut b = &packet[h..];
    let topic = take_str(&mut b).ok_or(bad)?.to_owned();
    let pkid = if qos > 0 {
        let id = take_u16(&mut b).ok_or(bad)?;
        if id == 0 {
            return Err(bad);
        }
        id
    } else {
        0
    };
    let mut topic_alias = None;
    if level == 5 {
        let block = take_props(&mut b).ok_or(bad)?;
        props(block, |id, v| {
            if let (0x23, Prop::U16(a)) = (id, v) {
                topic_alias = Some(a);
            }
        })
        .ok_or(bad)?;
    }
    let start = packet.len() - b.len();
    Ok(Publish {
        qos,
        dup: first & 0x08 != 0,
        retain: first & 0x01 != 0,
        topic,
        pkid,
        topic_alias,
        payload: packet.slice(start..),
    })
}

/// The packet id of a PUBACK, PUBREC, PUBREL or PUBCOMP (whole packet).
pub fn parse_ack(packet: &[u8]) -> Result<u16, CloseReason> {
    let (h, _) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    let mut b = &packet[h..];
    take_u16(&mut b).ok_or(CloseReason::Malformed)
}

/// The packet id of a SUBSCRIBE or UNSUBSCRIBE and what follows its properties.
fn id_and_payload(packet: &[u8], level: u8) -> Result<(u16, &[u8]), CloseReason> {
    let bad = CloseReason::Malformed;
    let (h, _) = fixed_header(packet)?.ok_or(bad)?;
    let mut b = &packet[h..];
    let pkid = take_u16(&mut b).ok_or(bad)?;
    if level == 5 {
        take_props(&mut b).ok_or(bad)?;
    }
    Ok((pkid, b))
}

/// A SUBSCRIBE: packet id and (filter, requested QoS).
pub fn parse_subscribe(packet: &[u8], level: u8) -> Result<(u16, Vec<(String, u8)>), CloseReason> {
    let bad = CloseReason::Malformed;
    if packet.first() != Some(&0x82) {
        return Err(bad);
    }
    let (pkid, mut b) = id_and_payload(packet, level)?;
    let mut filters = Vec::new();
    while !b.is_empty() {
        let f = take_str(&mut b).ok_or(bad)?.to_owned();
        let options = *b.first().ok_or(bad)?;
        b = &b[1..];
        filters.push((f, options & 0x03));
    }
    if filters.is_empty() {
        return Err(bad);
    }
    Ok((pkid, filters))
}

/// An UNSUBSCRIBE: packet id and filters.
pub fn parse_unsubscribe(packet: &[u8], level: u8) -> Result<(u16, Vec<String>), CloseReason> {
    let (pkid, mut b) = id_and_payload(packet, level)?;
    let mut filters = Vec::new();
    while !b.is_empty() {
        filters.push(take_str(&mut b).ok_or(CloseReason::Malformed)?.to_owned());
    }
    Ok((pkid, filters))
}

/// A DISCONNECT: the MQTT 5 reason code (0 when absent) and a new Session Expiry Interval,
/// when given.
pub fn parse_disconnect(packet: &[u8], level: u8) -> Result<(u8, Option<u32>), CloseReason> {
    let (h, len) = fixed_header(packet)?.ok_or(CloseReason::Malformed)?;
    if level < 5 || len == 0 {
        return Ok((0, None));
    }
    let mut b = &packet[h..];
    let code = *b.first().ok_or(CloseReason::Malformed)?;
    b = &b[1..];
    let mut expiry = None;
    if !b.is_empty() {
        let block = take_props(&mut b).ok_or(CloseReason::Malformed)?;
        props(block, |id, v| {
            if let (0x11, Prop::U32(s)) = (id, v) {
                expiry = Some(s);
            }
        })
        .ok_or(CloseReason::Malformed)?;
    }
    Ok((code, expiry))
}

fn put_remaining_length(out: &mut BytesMut, mut len: usize) {
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

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(first);
    put_remaining_length(&mut out, body.len());
    out.extend_from_slice(body);
    out.to_vec()
}

/// What the edge tells an MQTT 5 client in its CONNACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Unacknowledged QoS 1 and 2 publishes the hub takes per connection.
    pub receive_maximum: u16,
    /// The largest packet the hub takes.
    pub maximum_packet_size: u32,
}

/// A successful CONNACK.
pub fn connack_ok(level: u8, session_present: bool, limits: ServerLimits) -> Vec<u8> {
    let flags = u8::from(session_present);
    if level < 5 {
        return vec![0x20, 2, flags, 0];
    }
    let mut props = BytesMut::new();
    props.put_u8(0x21);
    props.put_u16(limits.receive_maximum.max(1));
    props.put_u8(0x27);
    props.put_u32(limits.maximum_packet_size);
    // No topic aliases (Topic Alias Maximum absent = 0); no shared subscriptions and no
    // subscription identifiers (the broker behind the edge has none for devices).
    props.put_u8(0x2A);
    props.put_u8(0);
    props.put_u8(0x29);
    props.put_u8(0);
    let mut body = BytesMut::new();
    body.put_u8(flags);
    body.put_u8(0);
    put_remaining_length(&mut body, props.len());
    body.extend_from_slice(&props);
    packet(0x20, &body)
}

/// A CONNACK refusing the connection with this MQTT 5 reason code; for 3.1.1 the nearest
/// return code (4 bad user name or password for 0x86, 3 server unavailable for 0x88 and
/// 0x89, else 5 not authorized).
pub fn connack_refused(level: u8, code5: u8) -> Vec<u8> {
    if level == 5 {
        vec![0x20, 3, 0, code5, 0]
    } else {
        let code = match code5 {
            0x86 => 4,
            0x88 | 0x89 => 3,
            0x85 => 2,
            _ => 5,
        };
        vec![0x20, 2, 0, code]
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP with a reason code (MQTT 5; dropped for 3.1.1, and
/// left out when it is success).
pub fn ack(kind: u8, level: u8, pkid: u16, code: u8) -> [u8; 5] {
    let first = (kind << 4) | if kind == kind::PUBREL { 0x02 } else { 0 };
    let [a, b] = pkid.to_be_bytes();
    if level == 5 && code != 0 {
        [first, 3, a, b, code]
    } else {
        [first, 2, a, b, 0]
    }
}

/// The length of what [`ack`] returned that is the packet.
pub fn ack_len(ack: &[u8; 5]) -> usize {
    usize::from(ack[1]) + 2
}

/// A SUBACK with one return code per filter.
pub fn suback(level: u8, pkid: u16, codes: &[u8]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(codes);
    packet(0x90, &body)
}

/// An UNSUBACK for `n` filters (MQTT 5: each "success").
pub fn unsuback(level: u8, pkid: u16, n: usize) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if level == 5 {
        body.push(0);
        body.extend(std::iter::repeat_n(0u8, n));
    }
    packet(0xB0, &body)
}

pub const PINGRESP: [u8; 2] = [0xD0, 0];

/// A server DISCONNECT (MQTT 5 only; 3.1.1 servers just close).
pub fn disconnect(code: u8) -> [u8; 4] {
    [0xE0, 2, code, 0]
}

/// A QoS 0 PUBLISH to a client.
pub fn publish_qos0(level: u8, topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = BytesMut::with_capacity(topic.len() + payload.len() + 3);
    body.put_u16(topic.len() as u16);
    body.extend_from_slice(topic.as_bytes());
    if level == 5 {
        body.put_u8(0);
    }
    body.extend_from_slice(payload);
    packet(0x30 | u8::from(retain), &body)
}

/// The CONNECT `packet` with its user name and password replaced (everything else kept).
/// With `client_id`, the client id is replaced too.
pub fn rewrite_connect(
    connect: &[u8],
    user: &str,
    pass: &str,
    client_id: Option<&str>,
) -> Result<Vec<u8>, CloseReason> {
    let bad = CloseReason::Malformed;
    let (h, _) = fixed_header(connect)?.ok_or(bad)?;
    let mut b = &connect[h..];
    let mut body = Vec::with_capacity(connect.len() + user.len() + pass.len());
    let start = b;
    take_bytes(&mut b).ok_or(bad)?; // protocol name
    let level = *b.first().ok_or(bad)?;
    let flags = *b.get(1).ok_or(bad)?;
    let keep_alive = b.get(2..4).ok_or(bad)?;
    body.extend_from_slice(&start[..start.len() - b.len()]);
    body.push(level);
    // User name and password present; bit 0 is reserved and zero.
    body.push((flags & 0x3E) | 0xC0);
    body.extend_from_slice(keep_alive);
    b = &b[4..];
    let copied = b;
    if level == 5 {
        take_props(&mut b).ok_or(bad)?;
    }
    let id_at = copied.len() - b.len();
    take_bytes(&mut b).ok_or(bad)?; // client id
    let will_at = copied.len() - b.len();
    if flags & 0x04 != 0 {
        if level == 5 {
            take_props(&mut b).ok_or(bad)?;
        }
        take_bytes(&mut b).ok_or(bad)?;
        take_bytes(&mut b).ok_or(bad)?;
    }
    let end = copied.len() - b.len();
    body.extend_from_slice(&copied[..id_at]);
    match client_id {
        Some(id) => {
            let len = u16::try_from(id.len()).map_err(|_| bad)?;
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(id.as_bytes());
        }
        None => body.extend_from_slice(&copied[id_at..will_at]),
    }
    body.extend_from_slice(&copied[will_at..end]);
    for field in [user.as_bytes(), pass.as_bytes()] {
        let len = u16::try_from(field.len()).map_err(|_| bad)?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(field);
    }
    Ok(packet(0x10, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn connect_v4(client_id: &str, user: Option<(&str, &str)>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 4]);
        body.extend_from_slice(b"MQTT");
        body.push(4);
        body.push(if user.is_some() { 0xC2 } else { 0x02 });
        body.extend_from_slice(&[0, 60]);
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        if let Some((u, p)) = user {
            body.extend_from_slice(&(u.len() as u16).to_be_bytes());
            body.extend_from_slice(u.as_bytes());
            body.extend_from_slice(&(p.len() as u16).to_be_bytes());
            body.extend_from_slice(p.as_bytes());
        }
        packet(0x10, &body)
    }

    fn connect_v5_with_will() -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x04 | 0x08, 0, 0];
        body.extend_from_slice(&[5, 0x11, 0, 0, 0, 60]); // session expiry 60 s
        body.extend_from_slice(&[0, 3, b'd', b'-', b'1']);
        body.extend_from_slice(&[5, 0x18, 0, 0, 0, 2]); // will delay 2 s
        let topic = b"wardhub/v1/devices/d-1/status";
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic);
        body.extend_from_slice(&[0, 2, b'{', b'}']);
        packet(0x10, &body)
    }

    #[test]
    fn parses_connect() {
        let c = parse_connect(&connect_v4("mon-1", Some(("mon-1", "s3cret")))).unwrap();
        assert_eq!(c.level, 4);
        assert_eq!(c.client_id, "mon-1");
        assert_eq!(c.username.as_deref(), Some("mon-1"));
        assert_eq!(c.password.as_deref(), Some(&b"s3cret"[..]));
        assert!(c.clean_start);
        assert_eq!((c.keep_alive, c.session_expiry), (60, 0));
        let c = parse_connect(&connect_v5_with_will()).unwrap();
        assert_eq!((c.level, c.keep_alive, c.session_expiry), (5, 0, 60));
        let w = c.will.unwrap();
        assert_eq!(w.topic, "wardhub/v1/devices/d-1/status");
        assert_eq!((w.qos, w.retain, w.delay_secs), (1, false, 2));
        assert_eq!(&w.payload[..], b"{}");
    }

    #[test]
    fn refuses_non_connect_and_bad_versions() {
        assert_eq!(parse_connect(&[0x30, 0]), Err(CloseReason::NotConnect));
        let mut p = connect_v4("x", None);
        p[8] = 9; // protocol level
        assert_eq!(parse_connect(&p), Err(CloseReason::Protocol));
    }

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

    #[test]
    fn publish_round_trip_and_properties() {
        let p = Bytes::from(publish_qos0(5, "a/b", b"{}", true));
        let got = parse_publish(&p, 5).unwrap();
        assert_eq!((got.qos, got.retain, got.pkid), (0, true, 0));
        assert_eq!((got.topic.as_str(), &got.payload[..]), ("a/b", &b"{}"[..]));
        // QoS 2, packet id 7, a topic alias property.
        let p = Bytes::from(vec![0x34, 10, 0, 1, b't', 0, 7, 3, 0x23, 0, 1, b'x']);
        let got = parse_publish(&p, 5).unwrap();
        assert_eq!((got.qos, got.pkid, got.topic_alias), (2, 7, Some(1)));
        assert_eq!(&got.payload[..], b"x");
        // Packet id 0 at QoS 1 is malformed.
        assert!(parse_publish(&Bytes::from_static(&[0x32, 5, 0, 1, b't', 0, 0]), 4).is_err());
    }

    /// Regression (issue 13): a PUBLISH whose topic held a NUL byte was accepted;
    /// MQTT-4.7.3-2 says it must be refused (the packet is malformed).
    #[test]
    fn a_topic_with_nul_is_malformed() {
        let p = Bytes::from(publish_qos0(4, "wardhub/v1/devices/a\0b/obs", b"{}", false));
        assert!(parse_publish(&p, 4).is_err());
        let ok = Bytes::from(publish_qos0(4, "wardhub/v1/devices/ab/obs", b"{}", false));
        assert!(parse_publish(&ok, 4).is_ok());
    }

    #[test]
    fn acks_carry_reason_codes_for_v5_only() {
        let a = ack(kind::PUBACK, 5, 258, 0x99);
        assert_eq!(&a[..ack_len(&a)], &[0x40, 3, 1, 2, 0x99]);
        let a = ack(kind::PUBACK, 4, 258, 0x99);
        assert_eq!(&a[..ack_len(&a)], &[0x40, 2, 1, 2]);
        let a = ack(kind::PUBREL, 4, 1, 0);
        assert_eq!(&a[..ack_len(&a)], &[0x62, 2, 0, 1]);
        let c = connack_ok(
            5,
            true,
            ServerLimits {
                receive_maximum: 32,
                maximum_packet_size: 65536,
            },
        );
        assert_eq!(&c[..4], &[0x20, 15, 1, 0]);
        let mut seen = Vec::new();
        props(&c[5..], |id, v| seen.push((id, v))).unwrap();
        assert!(seen.contains(&(0x21, Prop::U16(32))));
        assert!(seen.contains(&(0x27, Prop::U32(65536))));
        assert_eq!(connack_refused(4, 0x86), vec![0x20, 2, 0, 4]);
        assert_eq!(connack_refused(5, 0x87), vec![0x20, 3, 0, 0x87, 0]);
    }

    #[test]
    fn connect_rewrite_keeps_everything_but_the_login() {
        for user in [None, Some(("mon-1", "device-secret"))] {
            let original = connect_v4("mon-1", user);
            let rewritten = rewrite_connect(&original, "wardhub-edge", "internal", None).unwrap();
            let info = parse_connect(&rewritten).unwrap();
            assert_eq!(info.client_id, "mon-1");
            assert_eq!(info.level, 4);
            assert_eq!(info.username.as_deref(), Some("wardhub-edge"));
            assert_eq!(info.password.as_deref(), Some(&b"internal"[..]));
        }
        let rewritten = rewrite_connect(
            &connect_v5_with_will(),
            "wardhub-edge",
            "internal",
            Some("wardhub-svc-7"),
        )
        .unwrap();
        let info = parse_connect(&rewritten).unwrap();
        assert_eq!(info.client_id, "wardhub-svc-7");
        assert_eq!(info.session_expiry, 60, "properties kept");
        assert_eq!(info.will.unwrap().delay_secs, 2, "the will kept");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = fixed_header(&bytes);
            let _ = parse_connect(&bytes);
            let _ = rewrite_connect(&bytes, "u", "p", None);
            let _ = rewrite_connect(&bytes, "u", "p", Some("wardhub-svc-1"));
            let b = Bytes::from(bytes.clone());
            let _ = parse_publish(&b, 5);
            let _ = parse_publish(&b, 4);
            let _ = parse_subscribe(&bytes, 5);
            let _ = parse_unsubscribe(&bytes, 5);
            let _ = parse_disconnect(&bytes, 5);
            let _ = parse_ack(&bytes);
        }
    }
}
