//! What the edge writes to a client: CONNACK (with its MQTT 5 limits), the publish
//! acknowledgements, SUBACK, UNSUBACK, PINGRESP, a server DISCONNECT and QoS 0 PUBLISH.

use bytes::{BufMut, BytesMut};

use super::frame::{packet, put_remaining_length};
use super::kind;

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

#[cfg(test)]
mod tests {
    use super::super::properties::{props, Prop};
    use super::*;

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
}
