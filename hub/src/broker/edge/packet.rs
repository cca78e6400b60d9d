//! MQTT 3.1.1 and 5 packets as the edge reads and writes them: pure functions over bytes,
//! framing as check → parse → advance. Nothing here allocates for an incomplete packet or
//! panics on garbage (property-tested).
//!
//! `frame` is the fixed header and the field primitives, `properties` the MQTT 5 property
//! blocks; `connect` reads (and, for the relay, rewrites) a CONNECT, `decode` the packets
//! a client sends after it, and `encode` builds what the edge answers.

mod connect;
mod decode;
mod encode;
mod frame;
mod properties;

pub use connect::{parse_connect, rewrite_connect, Connect, Will};
pub use decode::{
    parse_ack, parse_disconnect, parse_publish, parse_subscribe, parse_unsubscribe, Publish,
};
pub use encode::{
    ack, ack_len, connack_ok, connack_refused, disconnect, publish_qos0, suback, unsuback,
    ServerLimits, PINGRESP,
};
pub use frame::fixed_header;
pub(super) use frame::{take_bytes, take_u16};
pub(super) use properties::take_props;
pub use properties::{props, Prop};

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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;

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
